/* monitor: objects appearing and vanishing, and property changes, live,
 * from the ObjectManager's and the Properties signals. With --json, one
 * JSON document a line (JSON Lines), as the stream has no end. */
#include "config.h"

#include <glib-unix.h>
#include <stdio.h>

#include "gctl.h"

static void
gctl_monitor_emit(
    GctlContext *ctx, const gchar *event, const gchar *path, const gchar *iface, GVariant *data)
{
	g_autoptr(GDateTime) now = g_date_time_new_now_local();
	g_autofree gchar *stamp = g_date_time_format(now, "%H:%M:%S");

	if (ctx->json) {
		g_autoptr(GString) doc = g_string_new("{\"event\":");
		gctl_json_append_string(doc, event);
		g_string_append(doc, ",\"object-path\":");
		gctl_json_append_string(doc, path);
		if (iface != NULL) {
			g_string_append(doc, ",\"interface\":");
			gctl_json_append_string(doc, iface);
		}
		if (data != NULL) {
			g_string_append(doc, ",\"data\":");
			gctl_json_append_variant(doc, data);
		}
		g_string_append_c(doc, '}');
		gctl_json_print(doc);
		return;
	}
	{
		g_autofree gchar *text = data != NULL ? g_variant_print(data, FALSE) : NULL;
		g_print("%s %s %s%s%s%s%s\n", stamp, event, path, iface ? " " : "",
			iface ? iface : "", text ? " " : "", text ? text : "");
		fflush(stdout);
	}
}

static void
gctl_monitor_signal(GDBusConnection *bus,
		    const gchar *sender,
		    const gchar *path,
		    const gchar *iface,
		    const gchar *signal,
		    GVariant *params,
		    gpointer user_data)
{
	GctlContext *ctx = user_data;

	if (g_strcmp0(signal, "InterfacesAdded") == 0) {
		const gchar *object;
		g_autoptr(GVariant) ifaces = NULL;
		GVariantIter iter;
		const gchar *name;
		GVariant *props;

		g_variant_get(params, "(&o@a{sa{sv}})", &object, &ifaces);
		g_variant_iter_init(&iter, ifaces);
		while (g_variant_iter_loop(&iter, "{&s@a{sv}}", &name, &props)) {
			if (g_str_has_prefix(name, "org.libvirt.GuestFS."))
				gctl_monitor_emit(ctx, "added", object, name, props);
		}
	} else if (g_strcmp0(signal, "InterfacesRemoved") == 0) {
		const gchar *object;
		g_autofree const gchar **ifaces = NULL;

		g_variant_get(params, "(&o^a&s)", &object, &ifaces);
		for (gsize i = 0; ifaces[i] != NULL; i++) {
			if (g_str_has_prefix(ifaces[i], "org.libvirt.GuestFS."))
				gctl_monitor_emit(ctx, "removed", object, ifaces[i], NULL);
		}
	} else if (g_strcmp0(signal, "PropertiesChanged") == 0) {
		const gchar *changed_iface;
		g_autoptr(GVariant) changed = NULL;

		g_variant_get(params, "(&s@a{sv}@as)", &changed_iface, &changed, NULL);
		gctl_monitor_emit(ctx, "changed", path, changed_iface, changed);
	}
}

static void
gctl_monitor_owner(GDBusConnection *bus, const gchar *name, const gchar *owner, gpointer data)
{
	gctl_monitor_emit(data, "service-started", GCTL_ROOT_PATH, NULL, NULL);
}

static void
gctl_monitor_no_owner(GDBusConnection *bus, const gchar *name, gpointer data)
{
	gctl_monitor_emit(data, "service-stopped", GCTL_ROOT_PATH, NULL, NULL);
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
	guint watch;
	guint sub;

	if (!gctl_parse(ctx, &argc, &argv, NULL, "",
			"Print objects as they appear and vanish, and their property changes, "
			"until interrupted.",
			0, 0))
		return GCTL_EXIT_USAGE;
	/* the sender is the bus name: the match follows a restarted service */
	sub = g_dbus_connection_signal_subscribe(ctx->bus, GCTL_BUS_NAME, NULL, NULL, NULL, NULL,
						 G_DBUS_SIGNAL_FLAGS_NONE, gctl_monitor_signal, ctx,
						 NULL);
	watch =
	    g_bus_watch_name_on_connection(ctx->bus, GCTL_BUS_NAME, G_BUS_NAME_WATCHER_FLAGS_NONE,
					   gctl_monitor_owner, gctl_monitor_no_owner, ctx, NULL);
	if (!ctx->json && !ctx->quiet)
		g_printerr("Monitoring %s. Press Ctrl-C to stop.\n", GCTL_BUS_NAME);
	g_unix_signal_add(SIGINT, gctl_monitor_quit, loop);
	g_unix_signal_add(SIGTERM, gctl_monitor_quit, loop);
	g_main_loop_run(loop);
	g_bus_unwatch_name(watch);
	g_dbus_connection_signal_unsubscribe(ctx->bus, sub);
	return GCTL_EXIT_OK;
}
