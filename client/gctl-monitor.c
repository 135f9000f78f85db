/* monitor: objects appearing and vanishing, and property changes, live,
 * from the ObjectManager's and the Properties signals. With --json, one
 * JSON document a line (JSON Lines), as the stream has no end. The
 * "service" lines say when the service comes and goes. */
#include "config.h"

#include <glib-unix.h>
#include <stdio.h>

#include "gctl.h"

typedef struct {
	GctlContext *ctx;
	GHashTable *names; /* object path -> "domain NAME" / "volume POOL/NAME" */
} GctlMonitor;

static gchar *
gctl_monitor_label(GVariant *ifaces)
{
	g_autoptr(GVariant) domain =
	    g_variant_lookup_value(ifaces, GCTL_IFACE_DOMAIN, G_VARIANT_TYPE("a{sv}"));
	g_autoptr(GVariant) volume =
	    g_variant_lookup_value(ifaces, GCTL_IFACE_VOLUME, G_VARIANT_TYPE("a{sv}"));
	const gchar *name = "?";
	const gchar *pool = "?";

	if (domain != NULL) {
		g_variant_lookup(domain, "Name", "&s", &name);
		return g_strdup_printf("domain %s", name);
	}
	if (volume != NULL) {
		g_variant_lookup(volume, "Name", "&s", &name);
		g_variant_lookup(volume, "Pool", "&s", &pool);
		return g_strdup_printf("volume %s/%s", pool, name);
	}
	return NULL;
}

/* One line: text for people, or one JSON document (@json_tail holds the
 * keys after "event" and "object-path"). */
static void
gctl_monitor_emit(
    GctlMonitor *self, const gchar *event, const gchar *path, const gchar *text, GString *json_tail)
{
	if (self->ctx->json) {
		g_autoptr(GString) doc = g_string_new("{\"event\":");
		gctl_json_append_string(doc, event);
		g_string_append(doc, ",\"object-path\":");
		gctl_json_append_string(doc, path);
		if (json_tail != NULL && json_tail->len > 0)
			g_string_append_printf(doc, ",%s", json_tail->str);
		g_string_append_c(doc, '}');
		gctl_json_print(doc);
	} else {
		g_autoptr(GDateTime) now = g_date_time_new_now_local();
		g_autofree gchar *stamp = g_date_time_format(now, "%H:%M:%S");
		const gchar *label = g_hash_table_lookup(self->names, path);
		g_print("%s %-8s %s%s%s\n", stamp, event, label ? label : path, text ? " " : "",
			text ? text : "");
		fflush(stdout);
	}
}

static void
gctl_monitor_added(const gchar *path, GVariant *ifaces, gpointer user_data)
{
	GctlMonitor *self = user_data;
	g_autoptr(GString) json = g_string_new("\"interfaces\":");
	gchar *label = gctl_monitor_label(ifaces);

	if (label != NULL)
		g_hash_table_replace(self->names, g_strdup(path), label);
	gctl_json_append_variant(json, ifaces);
	gctl_monitor_emit(self, "added", path, NULL, json);
}

static void
gctl_monitor_removed(const gchar *path, GVariant *names, gpointer user_data)
{
	GctlMonitor *self = user_data;
	g_autoptr(GString) json = g_string_new("\"interfaces\":");

	gctl_json_append_variant(json, names);
	gctl_monitor_emit(self, "removed", path, NULL, json);
	g_hash_table_remove(self->names, path);
}

static void
gctl_monitor_changed(const gchar *path,
		     const gchar *iface,
		     GVariant *changed,
		     GVariant *invalidated,
		     gpointer user_data)
{
	GctlMonitor *self = user_data;
	g_autoptr(GString) json = g_string_new("\"interface\":");
	g_autoptr(GString) text = g_string_new(NULL);
	GVariantIter iter;
	const gchar *name;
	GVariant *value;

	gctl_json_append_string(json, iface);
	g_string_append(json, ",\"properties\":");
	gctl_json_append_variant(json, changed);
	g_string_append(json, ",\"invalidated\":");
	gctl_json_append_variant(json, invalidated);
	g_variant_iter_init(&iter, changed);
	while (g_variant_iter_loop(&iter, "{&sv}", &name, &value)) {
		g_autofree gchar *printed = g_variant_print(value, FALSE);
		g_string_append_printf(text, "%s%s=%s", text->len ? " " : "", name, printed);
	}
	gctl_monitor_emit(self, "changed", path, text->str, json);
}

static void
gctl_monitor_owner(GDBusConnection *bus, const gchar *name, const gchar *owner, gpointer data)
{
	g_autoptr(GString) json = g_string_new("\"state\":\"started\"");

	gctl_monitor_emit(data, "service", GCTL_ROOT_PATH, "started", json);
}

static void
gctl_monitor_no_owner(GDBusConnection *bus, const gchar *name, gpointer data)
{
	g_autoptr(GString) json = g_string_new("\"state\":\"stopped\"");

	gctl_monitor_emit(data, "service", GCTL_ROOT_PATH, "stopped", json);
}

/* The names of the objects there already, for the lines about them. */
static void
gctl_monitor_load(GctlMonitor *self)
{
	g_autoptr(GVariant) objects = gctl_managed_objects(self->ctx, NULL);
	GVariantIter iter;
	const gchar *path;
	GVariant *ifaces;

	if (objects == NULL)
		return;
	g_variant_iter_init(&iter, objects);
	while (g_variant_iter_loop(&iter, "{&o@a{sa{sv}}}", &path, &ifaces)) {
		gchar *label = gctl_monitor_label(ifaces);
		if (label != NULL)
			g_hash_table_replace(self->names, g_strdup(path), label);
	}
}

static gboolean
gctl_monitor_quit(gpointer loop)
{
	g_main_loop_quit(loop);
	return G_SOURCE_REMOVE;
}

gint
gctl_cmd_monitor(GctlContext *ctx, gint argc, gchar **argv)
{
	g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
	g_autoptr(GHashTable) names =
	    g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	GctlMonitor self = {.ctx = ctx, .names = names};
	guint watch;
	guint subs[3];

	if (!gctl_parse(ctx, &argc, &argv, NULL, "",
			"Print objects as they appear and vanish, and their property changes, "
			"until interrupted.",
			0, 0))
		return GCTL_EXIT_USAGE;
	gctl_monitor_load(&self);
	/* the sender is the bus name: the match follows a restarted service */
	subs[0] = gctl_subscribe_objects(ctx, "InterfacesAdded", gctl_monitor_added, &self);
	subs[1] = gctl_subscribe_objects(ctx, "InterfacesRemoved", gctl_monitor_removed, &self);
	subs[2] = gctl_subscribe_properties(ctx, NULL, NULL, gctl_monitor_changed, &self);
	watch =
	    g_bus_watch_name_on_connection(ctx->bus, GCTL_BUS_NAME, G_BUS_NAME_WATCHER_FLAGS_NONE,
					   gctl_monitor_owner, gctl_monitor_no_owner, &self, NULL);
	if (!ctx->json && !ctx->quiet)
		g_printerr("Monitoring %s. Press Ctrl-C to stop.\n", GCTL_BUS_NAME);
	g_unix_signal_add(SIGINT, gctl_monitor_quit, loop);
	g_unix_signal_add(SIGTERM, gctl_monitor_quit, loop);
	g_main_loop_run(loop);
	g_bus_unwatch_name(watch);
	for (gsize i = 0; i < G_N_ELEMENTS(subs); i++)
		g_dbus_connection_signal_unsubscribe(ctx->bus, subs[i]);
	return GCTL_EXIT_OK;
}
