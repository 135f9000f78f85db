/* list, inspect, apps, icon, filesystems, df: what is on the disks. */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "gctl.h"

/* "Debian GNU/Linux 12 (bookworm)" from an OperatingSystems entry */
static gchar *
gctl_os_summary(GVariant *systems)
{
	g_autoptr(GString) text = g_string_new(NULL);
	GVariantIter iter;
	GVariant *os;

	g_variant_iter_init(&iter, systems);
	while ((os = g_variant_iter_next_value(&iter)) != NULL) {
		const gchar *product = NULL;
		const gchar *distro = NULL;
		gint32 major = 0;
		gint32 minor = 0;

		if (text->len > 0)
			g_string_append(text, ", ");
		if (g_variant_lookup(os, "product-name", "&s", &product) &&
		    g_strcmp0(product, "unknown") != 0) {
			g_string_append(text, product);
		} else if (g_variant_lookup(os, "distro", "&s", &distro)) {
			g_variant_lookup(os, "major-version", "i", &major);
			g_variant_lookup(os, "minor-version", "i", &minor);
			g_string_append_printf(text, "%s %d.%d", distro, major, minor);
		} else {
			g_string_append(text, "unknown");
		}
		g_variant_unref(os);
	}
	return text->len > 0 ? g_string_free(g_steal_pointer(&text), FALSE) : g_strdup("-");
}

static void
gctl_json_key(GString *out, const gchar *key)
{
	gctl_json_append_string(out, key);
	g_string_append_c(out, ':');
}

/* "name":value pairs for the properties of one interface, under our own
 * stable key names */
static void
gctl_json_props(GString *out, GVariant *props, const gchar *const *map)
{
	for (gsize i = 0; map[i] != NULL; i += 2) {
		g_autoptr(GVariant) value = g_variant_lookup_value(props, map[i], NULL);
		if (value == NULL)
			continue;
		gctl_json_key(out, map[i + 1]);
		gctl_json_append_variant(out, value);
		g_string_append_c(out, ',');
	}
}

typedef struct {
	gchar *sort_key;
	gchar *json;
	gchar *name;
	const gchar *type;
	const gchar *state;
	gchar *appliance;
	gchar *os;
} GctlListRow;

static void
gctl_list_row_free(gpointer data)
{
	GctlListRow *row = data;

	g_free(row->sort_key);
	g_free(row->appliance);
	g_free(row->os);
	g_free(row->json);
	g_free(row->name);
	g_free(row);
}

static gint
gctl_list_row_compare(gconstpointer a, gconstpointer b)
{
	const GctlListRow *ra = *(GctlListRow *const *)a;
	const GctlListRow *rb = *(GctlListRow *const *)b;

	return g_strcmp0(ra->sort_key, rb->sort_key);
}

static GctlListRow *
gctl_list_row(const gchar *path, GVariant *ifaces, gboolean volume)
{
	static const gchar *const domain_map[] = {
	    "Name",   "name",	"UUID",	      "uuid",	    "Connection",     "connection",
	    "Active", "active", "Persistent", "persistent", "ApplianceState", "appliance-state",
	    NULL};
	static const gchar *const volume_map[] = {"Name",
						  "name",
						  "Pool",
						  "pool",
						  "Key",
						  "key",
						  "Path",
						  "path",
						  "Format",
						  "format",
						  "Capacity",
						  "capacity",
						  "Allocation",
						  "allocation",
						  "Connection",
						  "connection",
						  "ApplianceState",
						  "appliance-state",
						  NULL};
	g_autoptr(GVariant) props = g_variant_lookup_value(
	    ifaces, volume ? GCTL_IFACE_VOLUME : GCTL_IFACE_DOMAIN, G_VARIANT_TYPE("a{sv}"));
	g_autoptr(GVariant) inspector =
	    g_variant_lookup_value(ifaces, GCTL_IFACE_INSPECTOR, G_VARIANT_TYPE("a{sv}"));
	g_autoptr(GVariant) systems = NULL;
	g_autoptr(GString) json = g_string_new("{");
	GctlListRow *row = g_new0(GctlListRow, 1);
	const gchar *name = "";
	const gchar *pool = "";
	const gchar *appliance = "-";
	gboolean active = FALSE;

	g_variant_lookup(props, "Name", "&s", &name);
	g_variant_lookup(props, "Pool", "&s", &pool);
	g_variant_lookup(props, "ApplianceState", "&s", &appliance);
	g_variant_lookup(props, "Active", "b", &active);
	if (inspector != NULL)
		systems =
		    g_variant_lookup_value(inspector, "OperatingSystems", G_VARIANT_TYPE("aa{sv}"));
	if (systems == NULL)
		systems = g_variant_ref_sink(g_variant_new_array(G_VARIANT_TYPE("a{sv}"), NULL, 0));
	row->os = gctl_os_summary(systems);

	row->name = volume ? g_strdup_printf("%s/%s", pool, name) : g_strdup(name);
	row->sort_key = g_strdup_printf("%d%s", volume, row->name);
	row->type = volume ? "volume" : "domain";
	row->state = volume ? "-" : active ? "running" : "shut-off";
	row->appliance = g_strdup(appliance);
	gctl_json_props(json, props, volume ? volume_map : domain_map);
	gctl_json_key(json, "object-path");
	gctl_json_append_string(json, path);
	g_string_append_c(json, ',');
	gctl_json_key(json, "operating-systems");
	gctl_json_append_variant(json, systems);
	g_string_append_c(json, '}');
	row->json = g_string_free(g_steal_pointer(&json), FALSE);
	return row;
}

static void
gctl_list_json(GString *doc, const gchar *key, GPtrArray *rows)
{
	gctl_json_key(doc, key);
	g_string_append_c(doc, '[');
	for (guint i = 0; i < rows->len; i++) {
		GctlListRow *row = g_ptr_array_index(rows, i);
		if (i > 0)
			g_string_append_c(doc, ',');
		g_string_append(doc, row->json);
	}
	g_string_append_c(doc, ']');
}

gint
gctl_cmd_list(GctlContext *ctx, gint argc, gchar **argv)
{
	gboolean names = FALSE;
	const GOptionEntry entries[] = {
	    {"names", 0, 0, G_OPTION_ARG_NONE, &names,
	     "Print only the names, one a line (domains, then POOL/VOLUME)", NULL},
	    G_OPTION_ENTRY_NULL,
	};
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) objects = NULL;
	g_autoptr(GPtrArray) domains = g_ptr_array_new_with_free_func(gctl_list_row_free);
	g_autoptr(GPtrArray) volumes = g_ptr_array_new_with_free_func(gctl_list_row_free);
	GVariantIter iter;
	const gchar *path;
	GVariant *ifaces;
	gint width = 4;

	if (!gctl_parse(ctx, &argc, &argv, entries, "",
			"List the domains and volumes the service publishes, with their "
			"state and the operating system last found on them.",
			0, 0))
		return GCTL_EXIT_USAGE;
	objects = gctl_managed_objects(ctx, &error);
	if (objects == NULL)
		return gctl_report_error(error, NULL);
	g_variant_iter_init(&iter, objects);
	while (g_variant_iter_loop(&iter, "{&o@a{sa{sv}}}", &path, &ifaces)) {
		g_autoptr(GVariant) domain =
		    g_variant_lookup_value(ifaces, GCTL_IFACE_DOMAIN, NULL);
		g_autoptr(GVariant) volume =
		    g_variant_lookup_value(ifaces, GCTL_IFACE_VOLUME, NULL);

		if (domain != NULL)
			g_ptr_array_add(domains, gctl_list_row(path, ifaces, FALSE));
		else if (volume != NULL)
			g_ptr_array_add(volumes, gctl_list_row(path, ifaces, TRUE));
	}
	g_ptr_array_sort(domains, gctl_list_row_compare);
	g_ptr_array_sort(volumes, gctl_list_row_compare);

	if (ctx->json) {
		g_autoptr(GString) doc = g_string_new("{");
		gctl_list_json(doc, "domains", domains);
		g_string_append_c(doc, ',');
		gctl_list_json(doc, "volumes", volumes);
		g_string_append_c(doc, '}');
		gctl_json_print(doc);
		return GCTL_EXIT_OK;
	}
	for (guint pass = 0; pass < 2; pass++) {
		GPtrArray *rows = pass == 0 ? domains : volumes;
		for (guint i = 0; i < rows->len; i++) {
			GctlListRow *row = g_ptr_array_index(rows, i);
			width = MAX(width, (gint)strlen(row->name));
		}
	}
	if (!names)
		g_print("%-7s %-*s %-9s %-10s %s\n", "TYPE", width, "NAME", "STATE", "APPLIANCE",
			"OS");
	for (guint pass = 0; pass < 2; pass++) {
		GPtrArray *rows = pass == 0 ? domains : volumes;
		for (guint i = 0; i < rows->len; i++) {
			GctlListRow *row = g_ptr_array_index(rows, i);
			if (names)
				g_print("%s\n", row->name);
			else
				g_print("%-7s %-*s %-9s %-10s %s\n", row->type, width, row->name,
					row->state, row->appliance, row->os);
		}
	}
	return GCTL_EXIT_OK;
}

static GVariant *
gctl_inspect(GctlContext *ctx, GctlObject *obj, gboolean refresh, GError **error)
{
	GVariantBuilder options;
	g_autoptr(GVariant) reply = NULL;

	g_variant_builder_init(&options, G_VARIANT_TYPE_VARDICT);
	if (refresh)
		g_variant_builder_add(&options, "{sv}", "refresh", g_variant_new_boolean(TRUE));
	reply = gctl_call(ctx, obj->path, GCTL_IFACE_INSPECTOR, "Inspect",
			  g_variant_new("(a{sv})", &options), G_VARIANT_TYPE("(aa{sv})"), error);
	return reply != NULL ? g_variant_get_child_value(reply, 0) : NULL;
}

static void
gctl_print_os(GVariant *os)
{
	static const gchar *const order[] = {
	    "type",   "distro",		"product-name",	      "version", "arch", "hostname",
	    "osinfo", "package-format", "package-management", NULL};
	const gchar *root = "?";
	gint32 major = 0;
	gint32 minor = 0;
	g_autoptr(GVariant) mounts = NULL;

	g_variant_lookup(os, "root", "&s", &root);
	g_print("%s:\n", root);
	for (gsize i = 0; order[i] != NULL; i++) {
		const gchar *value = NULL;
		if (g_strcmp0(order[i], "version") == 0) {
			if (g_variant_lookup(os, "major-version", "i", &major)) {
				g_variant_lookup(os, "minor-version", "i", &minor);
				g_print("  %-20s %d.%d\n", "version:", major, minor);
			}
			continue;
		}
		if (g_variant_lookup(os, order[i], "&s", &value)) {
			g_autofree gchar *key = g_strconcat(order[i], ":", NULL);
			g_print("  %-20s %s\n", key, value);
		}
	}
	mounts = g_variant_lookup_value(os, "mountpoints", G_VARIANT_TYPE("a{ss}"));
	if (mounts != NULL && g_variant_n_children(mounts) > 0) {
		GVariantIter iter;
		const gchar *point;
		const gchar *device;
		g_print("  mountpoints:\n");
		g_variant_iter_init(&iter, mounts);
		while (g_variant_iter_next(&iter, "{&s&s}", &point, &device))
			g_print("    %-18s %s\n", point, device);
	}
}

static void
gctl_print_json_result(GctlObject *obj, const gchar *key, GVariant *value, const gchar *root)
{
	g_autoptr(GString) doc = g_string_new("{");

	gctl_json_key(doc, "name");
	gctl_json_append_string(doc, obj->name);
	g_string_append_c(doc, ',');
	gctl_json_key(doc, "object-path");
	gctl_json_append_string(doc, obj->path);
	g_string_append_c(doc, ',');
	if (root != NULL) {
		gctl_json_key(doc, "root");
		gctl_json_append_string(doc, root);
		g_string_append_c(doc, ',');
	}
	gctl_json_key(doc, key);
	gctl_json_append_variant(doc, value);
	g_string_append_c(doc, '}');
	gctl_json_print(doc);
}

/* inspect DOMAIN DOMAIN...: Manager.InspectDomains, in as few appliance
 * launches as the service can; each domain gets its result or its error.
 * The exit status is that of the first domain that failed. */
static gint
gctl_inspect_several(GctlContext *ctx, gint n, gchar **names, gboolean refresh)
{
	g_autoptr(GPtrArray) objects =
	    g_ptr_array_new_with_free_func((GDestroyNotify)gctl_object_free);
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GVariant) results = NULL;
	g_autoptr(GString) doc = g_string_new("{\"domains\":[");
	GVariantBuilder paths;
	GVariantBuilder options;
	gint status = GCTL_EXIT_OK;

	g_variant_builder_init(&paths, G_VARIANT_TYPE_OBJECT_PATH_ARRAY);
	for (gint i = 0; i < n; i++) {
		GctlObject *obj = gctl_resolve(ctx, names[i], GCTL_KIND_DOMAIN, &error);
		if (obj == NULL) {
			g_variant_builder_clear(&paths);
			return gctl_report_error(error, NULL);
		}
		g_ptr_array_add(objects, obj);
		g_variant_builder_add(&paths, "o", obj->path);
	}
	g_variant_builder_init(&options, G_VARIANT_TYPE_VARDICT);
	if (refresh)
		g_variant_builder_add(&options, "{sv}", "refresh", g_variant_new_boolean(TRUE));
	reply = gctl_call(ctx, GCTL_MANAGER_PATH, GCTL_IFACE_MANAGER, "InspectDomains",
			  g_variant_new("(aoa{sv})", &paths, &options),
			  G_VARIANT_TYPE("(a{oa{sv}})"), &error);
	if (reply == NULL)
		return gctl_report_error(error, "Manager.InspectDomains");
	results = g_variant_get_child_value(reply, 0);

	for (guint i = 0; i < objects->len; i++) {
		GctlObject *obj = g_ptr_array_index(objects, i);
		g_autoptr(GVariant) result =
		    g_variant_lookup_value(results, obj->path, G_VARIANT_TYPE_VARDICT);
		g_autoptr(GVariant) systems = NULL;
		const gchar *error_name = "org.libvirt.GuestFS.Error.Failed";
		const gchar *message = "The service gave no result";
		gboolean cached = FALSE;

		if (result != NULL) {
			systems =
			    g_variant_lookup_value(result, "systems", G_VARIANT_TYPE("aa{sv}"));
			g_variant_lookup(result, "cached", "b", &cached);
			g_variant_lookup(result, "error", "&s", &error_name);
			g_variant_lookup(result, "message", "&s", &message);
		}
		if (ctx->json) {
			if (i > 0)
				g_string_append_c(doc, ',');
			g_string_append(doc, "{\"name\":");
			gctl_json_append_string(doc, obj->name);
			g_string_append(doc, ",\"object-path\":");
			gctl_json_append_string(doc, obj->path);
			if (systems != NULL) {
				g_string_append_printf(doc, ",\"cached\":%s,\"operating-systems\":",
						       cached ? "true" : "false");
				gctl_json_append_variant(doc, systems);
			} else {
				g_string_append(doc, ",\"error\":");
				gctl_json_append_string(doc, error_name);
				g_string_append(doc, ",\"message\":");
				gctl_json_append_string(doc, message);
			}
			g_string_append_c(doc, '}');
		} else if (systems != NULL) {
			g_print("%s%s:\n", i > 0 ? "\n" : "", obj->name);
			if (g_variant_n_children(systems) == 0)
				g_print("No operating system found on %s.\n", obj->name);
			for (gsize k = 0; k < g_variant_n_children(systems); k++) {
				g_autoptr(GVariant) os = g_variant_get_child_value(systems, k);
				gctl_print_os(os);
			}
		}
		if (systems == NULL) {
			gint code = gctl_exit_for_dbus_error(error_name);
			g_printerr("guestfsctl: %s: %s\n", obj->name, message);
			if (status == GCTL_EXIT_OK)
				status = code;
		}
	}
	if (ctx->json) {
		g_string_append(doc, "]}");
		gctl_json_print(doc);
	}
	return status;
}

gint
gctl_cmd_inspect(GctlContext *ctx, gint argc, gchar **argv)
{
	gboolean refresh = FALSE;
	const GOptionEntry entries[] = {
	    {"refresh", 0, 0, G_OPTION_ARG_NONE, &refresh,
	     "Inspect again even when the cache has a result", NULL},
	    G_OPTION_ENTRY_NULL,
	};
	g_autoptr(GError) error = NULL;
	g_autoptr(GctlObject) obj = NULL;
	g_autoptr(GVariant) systems = NULL;

	if (!gctl_parse(ctx, &argc, &argv, entries, "DOMAIN|VOLUME [DOMAIN...]",
			"Show the operating systems found on the disks, like virt-inspector. "
			"Several domains are inspected in one call (InspectDomains).",
			1, -1))
		return GCTL_EXIT_USAGE;
	if (argc > 2)
		return gctl_inspect_several(ctx, argc - 1, argv + 1, refresh);
	obj = gctl_resolve(ctx, argv[1], GCTL_KIND_ANY, &error);
	if (obj == NULL)
		return gctl_report_error(error, NULL);
	systems = gctl_inspect(ctx, obj, refresh, &error);
	if (systems == NULL)
		return gctl_report_error(error, "Inspector.Inspect");
	if (ctx->json) {
		gctl_print_json_result(obj, "operating-systems", systems, NULL);
		return GCTL_EXIT_OK;
	}
	if (g_variant_n_children(systems) == 0)
		g_print("No operating system found on %s.\n", obj->name);
	for (gsize i = 0; i < g_variant_n_children(systems); i++) {
		g_autoptr(GVariant) os = g_variant_get_child_value(systems, i);
		if (i > 0)
			g_print("\n");
		gctl_print_os(os);
	}
	return GCTL_EXIT_OK;
}

/* The root to use: --root, or the one operating system there is. */
static gchar *
gctl_pick_root(GctlContext *ctx, GctlObject *obj, GError **error)
{
	g_autoptr(GVariant) systems = NULL;
	g_autoptr(GString) roots = g_string_new(NULL);
	gchar *root = NULL;

	if (gctl_opt_root != NULL)
		return g_strdup(gctl_opt_root);
	systems = gctl_inspect(ctx, obj, FALSE, error);
	if (systems == NULL)
		return NULL;
	for (gsize i = 0; i < g_variant_n_children(systems); i++) {
		g_autoptr(GVariant) os = g_variant_get_child_value(systems, i);
		const gchar *r = NULL;
		if (g_variant_lookup(os, "root", "&s", &r)) {
			g_string_append_printf(roots, " %s", r);
			if (root == NULL)
				root = g_strdup(r);
		}
	}
	if (root == NULL) {
		g_set_error(error, GCTL_ERROR, GCTL_EXIT_NOT_FOUND,
			    "No operating system found on %s", obj->name);
	} else if (g_variant_n_children(systems) > 1) {
		g_set_error(error, GCTL_ERROR, GCTL_EXIT_USAGE,
			    "%s holds several operating systems: pass --root, one of%s", obj->name,
			    roots->str);
		g_clear_pointer(&root, g_free);
	}
	return root;
}

gint
gctl_cmd_apps(GctlContext *ctx, gint argc, gchar **argv)
{
	const GOptionEntry entries[] = {GCTL_GUEST_OPTIONS, G_OPTION_ENTRY_NULL};
	g_autoptr(GError) error = NULL;
	g_autoptr(GctlObject) obj = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GVariant) apps = NULL;
	g_autofree gchar *root = NULL;

	if (!gctl_parse(ctx, &argc, &argv, entries, "DOMAIN|VOLUME",
			"List the applications installed in the guest's package database.", 1, 1))
		return GCTL_EXIT_USAGE;
	obj = gctl_resolve(ctx, argv[1], GCTL_KIND_ANY, &error);
	if (obj == NULL)
		return gctl_report_error(error, NULL);
	root = gctl_pick_root(ctx, obj, &error);
	if (root == NULL)
		return gctl_report_error(error, "Inspector.Inspect");
	reply =
	    gctl_call(ctx, obj->path, GCTL_IFACE_INSPECTOR, "ListApplications",
		      g_variant_new("(sa{sv})", root, NULL), G_VARIANT_TYPE("(aa{sv})"), &error);
	if (reply == NULL)
		return gctl_report_error(error, "Inspector.ListApplications");
	apps = g_variant_get_child_value(reply, 0);
	if (ctx->json) {
		gctl_print_json_result(obj, "applications", apps, root);
		return GCTL_EXIT_OK;
	}
	for (gsize i = 0; i < g_variant_n_children(apps); i++) {
		g_autoptr(GVariant) app = g_variant_get_child_value(apps, i);
		g_autoptr(GString) version = g_string_new(NULL);
		const gchar *name = "";
		const gchar *ver = "";
		const gchar *release = "";
		const gchar *arch = "";
		gint32 epoch = 0;

		g_variant_lookup(app, "name", "&s", &name);
		g_variant_lookup(app, "version", "&s", &ver);
		g_variant_lookup(app, "release", "&s", &release);
		g_variant_lookup(app, "arch", "&s", &arch);
		g_variant_lookup(app, "epoch", "i", &epoch);
		if (epoch > 0)
			g_string_append_printf(version, "%d:", epoch);
		g_string_append(version, ver);
		if (*release != '\0')
			g_string_append_printf(version, "-%s", release);
		g_print("%-32s %-28s %s\n", name, version->str, arch);
	}
	return GCTL_EXIT_OK;
}

gint
gctl_cmd_icon(GctlContext *ctx, gint argc, gchar **argv)
{
	gboolean no_favicon = FALSE;
	gboolean high_quality = FALSE;
	const GOptionEntry entries[] = {
	    {"no-favicon", 0, 0, G_OPTION_ARG_NONE, &no_favicon, "Do not use a favicon", NULL},
	    {"high-quality", 0, 0, G_OPTION_ARG_NONE, &high_quality, "Only a high-quality icon",
	     NULL},
	    GCTL_GUEST_OPTIONS,
	    G_OPTION_ENTRY_NULL,
	};
	g_autoptr(GError) error = NULL;
	g_autoptr(GctlObject) obj = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GVariant) icon = NULL;
	g_autofree gchar *root = NULL;
	GVariantBuilder options;
	gsize size = 0;
	const guint8 *data;

	if (!gctl_parse(ctx, &argc, &argv, entries, "DOMAIN|VOLUME",
			"Write the guest's icon (PNG) to stdout; --json gives it in base64.", 1, 1))
		return GCTL_EXIT_USAGE;
	if (!ctx->json && isatty(STDOUT_FILENO))
		return gctl_usage_error("icon ", "stdout is a terminal: redirect it to a file "
						 "(guestfsctl icon DOMAIN > icon.png)");
	obj = gctl_resolve(ctx, argv[1], GCTL_KIND_ANY, &error);
	if (obj == NULL)
		return gctl_report_error(error, NULL);
	root = gctl_pick_root(ctx, obj, &error);
	if (root == NULL)
		return gctl_report_error(error, "Inspector.Inspect");
	g_variant_builder_init(&options, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(&options, "{sv}", "favicon", g_variant_new_boolean(!no_favicon));
	g_variant_builder_add(&options, "{sv}", "highquality", g_variant_new_boolean(high_quality));
	reply =
	    gctl_call(ctx, obj->path, GCTL_IFACE_INSPECTOR, "GetIcon",
		      g_variant_new("(sa{sv})", root, &options), G_VARIANT_TYPE("(ay)"), &error);
	if (reply == NULL)
		return gctl_report_error(error, "Inspector.GetIcon");
	icon = g_variant_get_child_value(reply, 0);
	data = g_variant_get_fixed_array(icon, &size, 1);
	if (ctx->json) {
		g_autoptr(GString) doc = g_string_new("{");
		g_autofree gchar *b64 = g_base64_encode(data, size);
		gctl_json_key(doc, "name");
		gctl_json_append_string(doc, obj->name);
		g_string_append(doc, ",");
		gctl_json_key(doc, "root");
		gctl_json_append_string(doc, root);
		g_string_append(doc, ",");
		gctl_json_key(doc, "png-base64");
		gctl_json_append_string(doc, b64);
		g_string_append_c(doc, '}');
		gctl_json_print(doc);
		return size > 0 ? GCTL_EXIT_OK : GCTL_EXIT_NOT_FOUND;
	}
	if (size == 0) {
		g_printerr("guestfsctl: %s has no icon the service can find\n", obj->name);
		return GCTL_EXIT_NOT_FOUND;
	}
	if (fwrite(data, 1, size, stdout) != size || fflush(stdout) != 0) {
		g_printerr("guestfsctl: cannot write the icon to stdout\n");
		return GCTL_EXIT_FAILED;
	}
	return GCTL_EXIT_OK;
}

/* filesystems and df: parse, find the object, call @method, and print
 * the JSON document; returns the list for the text output, or NULL with
 * *status set (GCTL_EXIT_OK once the JSON is printed). */
static GVariant *
gctl_fs_list(GctlContext *ctx,
	     gint argc,
	     gchar **argv,
	     const GOptionEntry *entries,
	     const gchar *method,
	     const gchar *summary,
	     GctlObject **obj,
	     gint *status)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GVariant) list = NULL;
	g_autofree gchar *what = g_strconcat("Inspector.", method, NULL);

	*status = GCTL_EXIT_OK;
	if (!gctl_parse(ctx, &argc, &argv, entries, "DOMAIN|VOLUME", summary, 1, 1)) {
		*status = GCTL_EXIT_USAGE;
		return NULL;
	}
	*obj = gctl_resolve(ctx, argv[1], GCTL_KIND_ANY, &error);
	if (*obj == NULL) {
		*status = gctl_report_error(error, NULL);
		return NULL;
	}
	reply = gctl_call(ctx, (*obj)->path, GCTL_IFACE_INSPECTOR, method,
			  g_variant_new("(a{sv})", NULL), G_VARIANT_TYPE("(aa{sv})"), &error);
	if (reply == NULL) {
		*status = gctl_report_error(error, what);
		return NULL;
	}
	list = g_variant_get_child_value(reply, 0);
	if (ctx->json) {
		gctl_print_json_result(*obj, "filesystems", list, NULL);
		return NULL;
	}
	return g_steal_pointer(&list);
}

static gchar *
gctl_human_size(guint64 bytes, gboolean human)
{
	if (human)
		return g_format_size_full(bytes, G_FORMAT_SIZE_IEC_UNITS);
	return g_strdup_printf("%" G_GUINT64_FORMAT, bytes);
}

gint
gctl_cmd_filesystems(GctlContext *ctx, gint argc, gchar **argv)
{
	gboolean human = FALSE;
	const GOptionEntry entries[] = {
	    {"human-readable", 'h', 0, G_OPTION_ARG_NONE, &human, "Sizes in KiB, MiB, GiB", NULL},
	    G_OPTION_ENTRY_NULL,
	};
	g_autoptr(GctlObject) obj = NULL;
	g_autoptr(GVariant) list = NULL;
	gint status;

	list = gctl_fs_list(ctx, argc, argv, entries, "ListFilesystems",
			    "List the filesystems, partitions and other content on the disks.",
			    &obj, &status);
	if (list == NULL)
		return status;
	g_print("%-16s %-10s %-16s %-38s %s\n", "DEVICE", "TYPE", "LABEL", "UUID", "SIZE");
	for (gsize i = 0; i < g_variant_n_children(list); i++) {
		g_autoptr(GVariant) fs = g_variant_get_child_value(list, i);
		const gchar *device = "", *type = "", *label = "", *uuid = "";
		guint64 size = 0;
		g_autofree gchar *size_text = NULL;

		g_variant_lookup(fs, "device", "&s", &device);
		g_variant_lookup(fs, "type", "&s", &type);
		g_variant_lookup(fs, "label", "&s", &label);
		g_variant_lookup(fs, "uuid", "&s", &uuid);
		g_variant_lookup(fs, "size", "t", &size);
		size_text = gctl_human_size(size, human);
		g_print("%-16s %-10s %-16s %-38s %s\n", device, type, *label ? label : "-",
			*uuid ? uuid : "-", size_text);
	}
	return GCTL_EXIT_OK;
}

gint
gctl_cmd_df(GctlContext *ctx, gint argc, gchar **argv)
{
	gboolean human = FALSE;
	gboolean inodes = FALSE;
	const GOptionEntry entries[] = {
	    {"human-readable", 'h', 0, G_OPTION_ARG_NONE, &human, "Sizes in KiB, MiB, GiB", NULL},
	    {"inodes", 'i', 0, G_OPTION_ARG_NONE, &inodes, "Show inodes instead of blocks", NULL},
	    G_OPTION_ENTRY_NULL,
	};
	g_autoptr(GctlObject) obj = NULL;
	g_autoptr(GVariant) list = NULL;
	gint status;

	list = gctl_fs_list(ctx, argc, argv, entries, "DiskUsage",
			    "Show how full each filesystem is, like virt-df.", &obj, &status);
	if (list == NULL)
		return status;
	if (inodes)
		g_print("%-32s %10s %10s %10s %5s\n", "Filesystem", "Inodes", "IUsed", "IFree",
			"IUse%");
	else
		g_print("%-32s %10s %10s %10s %5s\n", "Filesystem", human ? "Size" : "1K-blocks",
			"Used", "Available", "Use%");
	for (gsize i = 0; i < g_variant_n_children(list); i++) {
		g_autoptr(GVariant) fs = g_variant_get_child_value(list, i);
		g_autofree gchar *label = NULL;
		const gchar *device = "";
		guint64 total = 0, used = 0, avail = 0;

		g_variant_lookup(fs, "device", "&s", &device);
		label = g_strdup_printf("%s:%s", obj->name, device);
		if (inodes) {
			g_variant_lookup(fs, "inodes", "t", &total);
			g_variant_lookup(fs, "inodes-free", "t", &avail);
			used = total - MIN(avail, total);
		} else {
			g_variant_lookup(fs, "size", "t", &total);
			g_variant_lookup(fs, "used", "t", &used);
			g_variant_lookup(fs, "available", "t", &avail);
		}
		if (!inodes && !human) {
			total /= 1024;
			used /= 1024;
			avail /= 1024;
		}
		{
			g_autofree gchar *t = gctl_human_size(total, human && !inodes);
			g_autofree gchar *u = gctl_human_size(used, human && !inodes);
			g_autofree gchar *a = gctl_human_size(avail, human && !inodes);
			guint pct = total > 0 ? (guint)((used * 100 + total - 1) / total) : 0;
			g_print("%-32s %10s %10s %10s %4u%%\n", label, t, u, a, pct);
		}
	}
	return GCTL_EXIT_OK;
}
