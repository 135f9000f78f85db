#include "config.h"

#include <string.h>

#include "lgd-args.h"
#include "lgd-call.h"
#include "lgd-error.h"
#include "lgd-impl.h"
#include "lgd-inspector.h"
#include "lgd-mount.h"

static const LgdOptionSpec lgd_no_options[] = {{NULL}};
static const LgdOptionSpec lgd_inspect_options[] = {{"refresh", "b"}, {NULL}};
static const LgdOptionSpec lgd_icon_options[] = {
    {"favicon", "b"},
    {"highquality", "b"},
    {NULL},
};

/* ---- building results -------------------------------------------------- */

static void
lgd_dict_add_string(GVariantBuilder *dict, const gchar *key, gchar *value)
{
	if (value == NULL)
		return;
	g_variant_builder_add(dict, "{sv}", key, g_variant_new_string(value));
	free(value);
}

static void
lgd_dict_add_strv(GVariantBuilder *dict, const gchar *key, const gchar *value)
{
	if (value != NULL && value[0] != '\0')
		g_variant_builder_add(dict, "{sv}", key, g_variant_new_string(value));
}

static GVariant *
lgd_inspect_root(guestfs_h *g, const gchar *root)
{
	GVariantBuilder dict;
	GVariantBuilder mounts;
	char **mountpoints;

	g_variant_builder_init(&dict, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(&dict, "{sv}", "root", g_variant_new_string(root));
	lgd_dict_add_string(&dict, "type", guestfs_inspect_get_type(g, root));
	lgd_dict_add_string(&dict, "distro", guestfs_inspect_get_distro(g, root));
	lgd_dict_add_string(&dict, "product-name", guestfs_inspect_get_product_name(g, root));
	g_variant_builder_add(&dict, "{sv}", "major-version",
			      g_variant_new_int32(guestfs_inspect_get_major_version(g, root)));
	g_variant_builder_add(&dict, "{sv}", "minor-version",
			      g_variant_new_int32(guestfs_inspect_get_minor_version(g, root)));
	lgd_dict_add_string(&dict, "arch", guestfs_inspect_get_arch(g, root));
	lgd_dict_add_string(&dict, "hostname", guestfs_inspect_get_hostname(g, root));
	lgd_dict_add_string(&dict, "osinfo", guestfs_inspect_get_osinfo(g, root));
	lgd_dict_add_string(&dict, "package-format", guestfs_inspect_get_package_format(g, root));
	lgd_dict_add_string(&dict, "package-management",
			    guestfs_inspect_get_package_management(g, root));

	g_variant_builder_init(&mounts, G_VARIANT_TYPE("a{ss}"));
	mountpoints = guestfs_inspect_get_mountpoints(g, root);
	for (guint i = 0; mountpoints != NULL && mountpoints[i] != NULL; i += 2)
		g_variant_builder_add(&mounts, "{ss}", mountpoints[i], mountpoints[i + 1]);
	lgd_strv_free(mountpoints);
	g_variant_builder_add(&dict, "{sv}", "mountpoints", g_variant_builder_end(&mounts));
	return g_variant_builder_end(&dict);
}

/* ---- roots and mounting ------------------------------------------------ */

/* ---- jobs (in the session thread) -------------------------------------- */

/* Inspects the operating systems on the appliance's disks, one dict per
 * root as the Inspect method returns them. Shared with batch inspection. */
GVariant *
lgd_inspect_roots(guestfs_h *g, char **roots)
{
	GVariantBuilder builder;

	g_variant_builder_init(&builder, G_VARIANT_TYPE("aa{sv}"));
	for (guint i = 0; roots[i] != NULL; i++)
		g_variant_builder_add_value(&builder, lgd_inspect_root(g, roots[i]));
	return g_variant_builder_end(&builder);
}

/* Inspect, and InspectDomains without a shared appliance. */
GVariant *
lgd_inspector_inspect_job(LgdSession *session, LgdCall *data, GError **error)
{
	g_autofree gchar *identity = NULL;
	g_autoptr(LgdCacheEntry) cached = NULL;
	LgdCacheEntry *entry;
	GVariant *systems;
	guestfs_h *g;
	char **roots;

	/* unchanged disks give the same answer: no need for an appliance */
	identity = lgd_drives_identity(lgd_session_get_source(session));
	if (!lgd_args_get_bool(data->options, "refresh", FALSE))
		cached = lgd_guest_cached_inspection(data->guest, identity);
	if (cached != NULL)
		return g_variant_new("(@aa{sv})", cached->systems);

	g = lgd_session_get_handle(session, error);
	if (g == NULL)
		return NULL;
	roots = guestfs_inspect_os(g);
	/* inspection unmounts everything it looked at */
	lgd_session_set_mount_tag(session, NULL);
	if (roots == NULL) {
		lgd_session_set_error_from_guestfs(session, error, "Inspection failed");
		return NULL;
	}
	systems = lgd_inspect_roots(g, roots);
	lgd_strv_free(roots);
	entry = lgd_cache_entry_new(identity, systems);
	lgd_guest_store_inspection(data->guest, lgd_cache_entry_copy(entry));
	systems = g_variant_new("(@aa{sv})", entry->systems);
	lgd_cache_entry_free(entry);
	return systems;
}

static GVariant *
lgd_list_applications_job(LgdSession *session, LgdCall *data, GError **error)
{
	struct guestfs_application2_list *apps;
	GVariantBuilder builder;
	guestfs_h *g;

	g = lgd_session_get_handle(session, error);
	if (g == NULL || !lgd_mount_guest(session, g, data, FALSE, error))
		return NULL;
	apps = guestfs_inspect_list_applications2(g, data->root);
	if (apps == NULL) {
		lgd_session_set_error_from_guestfs(session, error, "Cannot list applications");
		return NULL;
	}
	g_variant_builder_init(&builder, G_VARIANT_TYPE("aa{sv}"));
	for (guint32 i = 0; i < apps->len; i++) {
		struct guestfs_application2 *app = &apps->val[i];

		g_variant_builder_open(&builder, G_VARIANT_TYPE_VARDICT);
		lgd_dict_add_strv(&builder, "name", app->app2_name);
		lgd_dict_add_strv(&builder, "display-name", app->app2_display_name);
		g_variant_builder_add(&builder, "{sv}", "epoch",
				      g_variant_new_int32(app->app2_epoch));
		lgd_dict_add_strv(&builder, "version", app->app2_version);
		lgd_dict_add_strv(&builder, "release", app->app2_release);
		lgd_dict_add_strv(&builder, "arch", app->app2_arch);
		lgd_dict_add_strv(&builder, "summary", app->app2_summary);
		lgd_dict_add_strv(&builder, "description", app->app2_description);
		lgd_dict_add_strv(&builder, "url", app->app2_url);
		g_variant_builder_close(&builder);
	}
	guestfs_free_application2_list(apps);
	return g_variant_new("(aa{sv})", &builder);
}

/* Icons with the default options are kept with the inspection they
 * belong to, so that a desktop showing many guests needs no appliance. */
static GVariant *
lgd_icon_cache_add(GVariant *icons, const gchar *root, GVariant *icon)
{
	GVariantBuilder builder;
	GVariantIter iter;
	const gchar *key;
	GVariant *value;

	g_variant_builder_init(&builder, G_VARIANT_TYPE("a{say}"));
	g_variant_iter_init(&iter, icons);
	while (g_variant_iter_next(&iter, "{&s@ay}", &key, &value)) {
		if (g_strcmp0(key, root) != 0)
			g_variant_builder_add(&builder, "{s@ay}", key, value);
		g_variant_unref(value);
	}
	g_variant_builder_add(&builder, "{s@ay}", root, icon);
	return g_variant_builder_end(&builder);
}

static GVariant *
lgd_get_icon_job(LgdSession *session, LgdCall *data, GError **error)
{
	gboolean favicon = lgd_args_get_bool(data->options, "favicon", TRUE);
	gboolean highquality = lgd_args_get_bool(data->options, "highquality", FALSE);
	gboolean cacheable = favicon && !highquality;
	g_autofree gchar *identity = NULL;
	g_autoptr(LgdCacheEntry) cached = NULL;
	GVariant *icon = NULL;
	guestfs_h *g;
	char *png;
	size_t size;

	if (cacheable) {
		identity = lgd_drives_identity(lgd_session_get_source(session));
		cached = lgd_guest_cached_inspection(data->guest, identity);
	}
	if (cached != NULL && g_variant_lookup(cached->icons, data->root, "@ay", &icon)) {
		GVariant *reply = g_variant_new("(@ay)", icon);
		g_variant_unref(icon);
		return reply;
	}

	g = lgd_session_get_handle(session, error);
	if (g == NULL || !lgd_mount_guest(session, g, data, FALSE, error))
		return NULL;
	png = guestfs_inspect_get_icon(g, data->root, &size, GUESTFS_INSPECT_GET_ICON_FAVICON,
				       favicon ? 1 : 0, GUESTFS_INSPECT_GET_ICON_HIGHQUALITY,
				       highquality ? 1 : 0, -1);
	if (png == NULL) {
		lgd_session_set_error_from_guestfs(session, error, "Cannot get the icon");
		return NULL;
	}
	icon = g_variant_ref_sink(g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, png, size, 1));
	free(png);
	if (cached != NULL) {
		LgdCacheEntry *entry = lgd_cache_entry_copy(cached);
		GVariant *icons = lgd_icon_cache_add(entry->icons, data->root, icon);

		g_variant_unref(entry->icons);
		entry->icons = g_variant_ref_sink(icons);
		lgd_guest_store_inspection(data->guest, entry);
	}
	{
		GVariant *reply = g_variant_new("(@ay)", icon);
		g_variant_unref(icon);
		return reply;
	}
}

/* The filesystems on the disks, as pairs of device and type. */
static char **
lgd_inspector_filesystems(LgdSession *session, guestfs_h **g, GError **error)
{
	char **fs;

	*g = lgd_session_get_handle(session, error);
	if (*g == NULL)
		return NULL;
	fs = guestfs_list_filesystems(*g);
	if (fs == NULL)
		lgd_session_set_error_from_guestfs(session, error, "Cannot list filesystems");
	return fs;
}

/* A filesystem on the disks of the appliance of @session. */
typedef struct {
	LgdSession *session;
	guestfs_h *g;
	const gchar *device;
	const gchar *type;
} LgdFilesystem;

/* Adds to @builder the a{sv} that describes @fs, or nothing to leave it
 * out. */
typedef void (*LgdFilesystemDescribe)(const LgdFilesystem *fs, GVariantBuilder *builder);

/* The (aa{sv}) reply of ListFilesystems and DiskUsage: one dict per
 * filesystem that @describe keeps. @unmount first releases what earlier
 * calls left mounted, for a @describe that mounts. */
static GVariant *
lgd_inspector_describe_filesystems(LgdSession *session,
				   gboolean unmount,
				   LgdFilesystemDescribe describe,
				   GError **error)
{
	GVariantBuilder builder;
	guestfs_h *g;
	char **fs = lgd_inspector_filesystems(session, &g, error);

	if (fs == NULL)
		return NULL;
	if (unmount)
		lgd_mount_release(session, g);
	g_variant_builder_init(&builder, G_VARIANT_TYPE("aa{sv}"));
	for (guint i = 0; fs[i] != NULL; i += 2) {
		LgdFilesystem one = {session, g, fs[i], fs[i + 1]};
		describe(&one, &builder);
	}
	lgd_strv_free(fs);
	return g_variant_new("(aa{sv})", &builder);
}

static void
lgd_list_filesystems_describe(const LgdFilesystem *fs, GVariantBuilder *builder)
{
	int64_t size;

	g_variant_builder_open(builder, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(builder, "{sv}", "device", g_variant_new_string(fs->device));
	g_variant_builder_add(builder, "{sv}", "type", g_variant_new_string(fs->type));
	/* not every content has a label, a UUID or a size */
	lgd_dict_add_string(builder, "label", guestfs_vfs_label(fs->g, fs->device));
	lgd_dict_add_string(builder, "uuid", guestfs_vfs_uuid(fs->g, fs->device));
	size = guestfs_blockdev_getsize64(fs->g, fs->device);
	if (size >= 0)
		g_variant_builder_add(builder, "{sv}", "size", g_variant_new_uint64((guint64)size));
	g_variant_builder_close(builder);
}

static GVariant *
lgd_list_filesystems_job(LgdSession *session, LgdCall *data, GError **error)
{
	return lgd_inspector_describe_filesystems(session, FALSE, lgd_list_filesystems_describe,
						  error);
}

static void
lgd_disk_usage_describe(const LgdFilesystem *fs, GVariantBuilder *builder)
{
	struct guestfs_statvfs *st;

	if (strcmp(fs->type, "swap") == 0 || strcmp(fs->type, "unknown") == 0)
		return;
	if (guestfs_mount_ro(fs->g, fs->device, "/") < 0)
		return; /* as virt-df: what does not mount is left out */
	st = guestfs_statvfs(fs->g, "/");
	lgd_mount_release(fs->session, fs->g);
	if (st == NULL)
		return;
	g_variant_builder_open(builder, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(builder, "{sv}", "device", g_variant_new_string(fs->device));
	g_variant_builder_add(builder, "{sv}", "size",
			      g_variant_new_uint64((guint64)(st->frsize * st->blocks)));
	g_variant_builder_add(
	    builder, "{sv}", "used",
	    g_variant_new_uint64((guint64)(st->frsize * (st->blocks - st->bfree))));
	g_variant_builder_add(builder, "{sv}", "available",
			      g_variant_new_uint64((guint64)(st->frsize * st->bavail)));
	g_variant_builder_add(builder, "{sv}", "inodes", g_variant_new_uint64((guint64)st->files));
	g_variant_builder_add(builder, "{sv}", "inodes-free",
			      g_variant_new_uint64((guint64)st->ffree));
	g_variant_builder_close(builder);
	guestfs_free_statvfs(st);
}

static GVariant *
lgd_disk_usage_job(LgdSession *session, LgdCall *data, GError **error)
{
	return lgd_inspector_describe_filesystems(session, TRUE, lgd_disk_usage_describe, error);
}

/* ---- handlers (main loop) ----------------------------------------------- */

/* A method: its options, its job, the generated function that sends its
 * reply (every Inspector method replies with one value), and its handler. */
typedef struct {
	const gchar *name;
	const LgdOptionSpec *options;
	LgdJobFunc job;
	void (*complete)(LgdDBusInspector *iface, GDBusMethodInvocation *inv, GVariant *value);
	LgdHandler handler;
} LgdInspectorMethod;

static const LgdInspectorMethod *lgd_inspector_method(GDBusMethodInvocation *invocation);

static void
lgd_inspector_reply(gpointer iface, GDBusMethodInvocation *invocation, GVariant *reply)
{
	g_autoptr(GVariant) value = g_variant_get_child_value(reply, 0);

	lgd_inspector_method(invocation)->complete(iface, invocation, value);
}

/* The one path of every Inspector method: validate the options,
 * authorize, run on the object's session, reply. */
static gboolean
lgd_inspector_handle_root(LgdDBusInspector *iface,
			  GDBusMethodInvocation *invocation,
			  const gchar *root,
			  GVariant *options)
{
	const LgdInspectorMethod *method = lgd_inspector_method(invocation);
	LgdCall *call =
	    lgd_call_new_for_iface(iface, invocation, LGD_ACTION_INSPECT, lgd_inspector_reply);
	GError *error = NULL;

	call->root = g_strdup(root);
	call->options = g_variant_ref(options);
	if (!lgd_args_check_options(options, method->options, &error))
		return lgd_call_return_error(call, error);
	return lgd_call_run_on_session(call, method->job);
}

/* Inspect, ListFilesystems, DiskUsage: the methods without a root. */
static gboolean
lgd_inspector_handle(LgdDBusInspector *iface, GDBusMethodInvocation *invocation, GVariant *options)
{
	return lgd_inspector_handle_root(iface, invocation, NULL, options);
}

/* What the generated code has of a method: its reply, and the member of
 * the vtable that @func fills. */
#define LGD_INSPECTOR_DBUS(what, func)                                                             \
	.complete = lgd_dbus_inspector_complete_##what,                                            \
	.handler = LGD_HANDLER(Inspector, what, func)

static const LgdInspectorMethod lgd_inspector_methods[] = {
    {"Inspect", lgd_inspect_options, lgd_inspector_inspect_job,
     LGD_INSPECTOR_DBUS(inspect, lgd_inspector_handle)},
    {"ListApplications", lgd_no_options, lgd_list_applications_job,
     LGD_INSPECTOR_DBUS(list_applications, lgd_inspector_handle_root)},
    {"GetIcon", lgd_icon_options, lgd_get_icon_job,
     LGD_INSPECTOR_DBUS(get_icon, lgd_inspector_handle_root)},
    {"ListFilesystems", lgd_no_options, lgd_list_filesystems_job,
     LGD_INSPECTOR_DBUS(list_filesystems, lgd_inspector_handle)},
    {"DiskUsage", lgd_no_options, lgd_disk_usage_job,
     LGD_INSPECTOR_DBUS(disk_usage, lgd_inspector_handle)},
};

/* lgd_call_find_method reads the name at the start of each entry */
G_STATIC_ASSERT(G_STRUCT_OFFSET(LgdInspectorMethod, name) == 0);

static const LgdInspectorMethod *
lgd_inspector_method(GDBusMethodInvocation *invocation)
{
	return LGD_CALL_FIND_METHOD(invocation, lgd_inspector_methods);
}

/* ---- the implementation of org.libvirt.GuestFS.Inspector --------------- */

#define LGD_TYPE_INSPECTOR_IMPL (lgd_inspector_impl_get_type())
G_DECLARE_FINAL_TYPE(
    LgdInspectorImpl, lgd_inspector_impl, LGD, INSPECTOR_IMPL, LgdDBusInspectorSkeleton)

struct _LgdInspectorImpl {
	LgdDBusInspectorSkeleton parent_instance;
};

LGD_DEFINE_IMPL(LgdInspectorImpl,
		lgd_inspector_impl,
		INSPECTOR,
		LGD_METHOD_HANDLERS(lgd_inspector_methods))

/* The handlers find their guest through the object the interface is on. */
LgdDBusInspector *
lgd_inspector_new(void)
{
	return g_object_new(LGD_TYPE_INSPECTOR_IMPL, NULL);
}
