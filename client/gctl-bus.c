/* Talking to the service: calls with the right timeout and flags, finding
 * objects by the names people use, and turning D-Bus errors into a
 * message that says what to do and an exit status. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "gctl.h"

GQuark
gctl_error_quark(void)
{
	return g_quark_from_static_string("gctl-error-quark");
}

void
gctl_object_free(GctlObject *obj)
{
	if (obj == NULL)
		return;
	g_free(obj->path);
	g_free(obj->name);
	g_free(obj);
}

static GDBusCallFlags
gctl_call_flags(GctlContext *ctx)
{
	return ctx->interactive ? G_DBUS_CALL_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION
				: G_DBUS_CALL_FLAGS_NONE;
}

typedef struct {
	GMainLoop *loop;
	GVariant *reply;
	GError *error;
} GctlSyncCall;

static void
gctl_call_done(GObject *source, GAsyncResult *result, gpointer user_data)
{
	GctlSyncCall *call = user_data;

	call->reply =
	    g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, &call->error);
	g_main_loop_quit(call->loop);
}

/* A method call that may launch an appliance (15-40 s under TCG): the
 * timeout is the --timeout option's, infinite by default. The main loop
 * runs meanwhile, so that progress can be shown. */
GVariant *
gctl_call(GctlContext *ctx,
	  const gchar *path,
	  const gchar *iface,
	  const gchar *method,
	  GVariant *args,
	  const GVariantType *reply_type,
	  GError **error)
{
	g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
	GctlSyncCall call = {.loop = loop};
	GctlProgress *progress = NULL;
	g_autofree gchar *job_id = NULL;

	/* these take a job-id (in their last argument, the options): their
	 * jobs, and the launches made for them, are then the call's */
	if ((g_strcmp0(method, "StartAppliance") == 0 ||
	     g_strcmp0(method, "InspectDomains") == 0) &&
	    args != NULL) {
		job_id = gctl_job_id_new();
		args = gctl_args_with_job_id(args, job_id);
	}
	if (g_strcmp0(iface, GCTL_IFACE_INSPECTOR) == 0 ||
	    g_strcmp0(iface, GCTL_IFACE_FILES) == 0 || job_id != NULL)
		progress = gctl_progress_start(ctx, path, method, job_id);
	g_dbus_connection_call(ctx->bus, GCTL_BUS_NAME, path, iface, method, args, reply_type,
			       gctl_call_flags(ctx), ctx->timeout_msec, NULL, gctl_call_done,
			       &call);
	g_main_loop_run(loop);
	gctl_progress_stop(progress);
	if (call.error != NULL)
		g_propagate_error(error, call.error);
	return call.reply;
}

GVariant *
gctl_managed_objects(GctlContext *ctx, GError **error)
{
	g_autoptr(GVariant) reply = NULL;

	reply = gctl_call(ctx, GCTL_ROOT_PATH, "org.freedesktop.DBus.ObjectManager",
			  "GetManagedObjects", NULL, G_VARIANT_TYPE("(a{oa{sa{sv}}})"), error);
	if (reply == NULL)
		return NULL;
	return g_variant_get_child_value(reply, 0);
}

/* The changed properties (a{sv}, ours) of a PropertiesChanged signal's
 * @params; @iface (theirs) is set to their interface and, unless NULL,
 * @invalidated (ours) to the invalidated names. */
static GVariant *
gctl_changed_properties(GVariant *params, const gchar **iface, GVariant **invalidated)
{
	GVariant *changed = NULL;

	g_variant_get(params, "(&s@a{sv}@as)", iface, &changed, invalidated);
	return changed;
}

typedef struct {
	GctlObjectFunc object_func;   /* an ObjectManager signal's, or NULL */
	GctlChangedFunc changed_func; /* PropertiesChanged's, or NULL */
	gpointer user_data;
} GctlSignalWatch;

/* The one GDBusSignalCallback of the client's watches: it reads the
 * signal's arguments and calls the watch's function with them. */
static void
gctl_signal_watch_dispatch(GDBusConnection *bus,
			   const gchar *sender,
			   const gchar *path,
			   const gchar *iface,
			   const gchar *signal,
			   GVariant *params,
			   gpointer user_data)
{
	GctlSignalWatch *watch = user_data;

	if (watch->changed_func != NULL) {
		const gchar *changed_iface = NULL;
		g_autoptr(GVariant) invalidated = NULL;
		g_autoptr(GVariant) changed =
		    gctl_changed_properties(params, &changed_iface, &invalidated);

		watch->changed_func(path, changed_iface, changed, invalidated, watch->user_data);
	} else {
		const gchar *object = NULL;
		g_autoptr(GVariant) value = NULL;

		g_variant_get(params, "(&o@*)", &object, &value);
		watch->object_func(object, value, watch->user_data);
	}
}

static guint
gctl_signal_watch(GctlContext *ctx,
		  const gchar *iface,
		  const gchar *signal,
		  const gchar *path,
		  const gchar *arg0,
		  GctlSignalWatch *watch)
{
	return g_dbus_connection_signal_subscribe(ctx->bus, GCTL_BUS_NAME, iface, signal, path,
						  arg0, G_DBUS_SIGNAL_FLAGS_NONE,
						  gctl_signal_watch_dispatch, watch, g_free);
}

/* Calls @func with the object path and the second argument
 * (InterfacesAdded's a{sa{sv}}, InterfacesRemoved's as) of each of the
 * service's ObjectManager @signal. */
guint
gctl_subscribe_objects(GctlContext *ctx,
		       const gchar *signal,
		       GctlObjectFunc func,
		       gpointer user_data)
{
	GctlSignalWatch *watch = g_new0(GctlSignalWatch, 1);

	watch->object_func = func;
	watch->user_data = user_data;
	return gctl_signal_watch(ctx, "org.freedesktop.DBus.ObjectManager", signal, GCTL_ROOT_PATH,
				 NULL, watch);
}

/* Calls @func with each PropertiesChanged of the object @path (NULL: any)
 * for the interface @iface (NULL: any). */
guint
gctl_subscribe_properties(GctlContext *ctx,
			  const gchar *path,
			  const gchar *iface,
			  GctlChangedFunc func,
			  gpointer user_data)
{
	GctlSignalWatch *watch = g_new0(GctlSignalWatch, 1);

	watch->changed_func = func;
	watch->user_data = user_data;
	return gctl_signal_watch(ctx, "org.freedesktop.DBus.Properties", "PropertiesChanged", path,
				 iface, watch);
}

/* The Job interface's properties (a{sv}, ours) among an object's
 * interfaces @ifaces (a{sa{sv}}), or NULL when it is no job. */
GVariant *
gctl_job_properties(GVariant *ifaces)
{
	return g_variant_lookup_value(ifaces, GCTL_IFACE_JOB, G_VARIANT_TYPE_VARDICT);
}

GVariant *
gctl_get_property(
    GctlContext *ctx, const gchar *path, const gchar *iface, const gchar *name, GError **error)
{
	g_autoptr(GVariant) reply = NULL;
	GVariant *value = NULL;

	reply = gctl_call(ctx, path, "org.freedesktop.DBus.Properties", "Get",
			  g_variant_new("(ss)", iface, name), G_VARIANT_TYPE("(v)"), error);
	if (reply == NULL)
		return NULL;
	g_variant_get(reply, "(v)", &value);
	return value;
}

const gchar *
gctl_object_iface(GctlObject *obj)
{
	return obj->kind == GCTL_KIND_VOLUME ? GCTL_IFACE_VOLUME : GCTL_IFACE_DOMAIN;
}

static gboolean
gctl_is_dbus_error(const GError *error, const gchar *name)
{
	g_autofree gchar *remote = NULL;

	if (error == NULL || !g_dbus_error_is_remote_error(error))
		return FALSE;
	remote = g_dbus_error_get_remote_error(error);
	return g_strcmp0(remote, name) == 0;
}

static gboolean
gctl_is_not_found(const GError *error)
{
	return gctl_is_dbus_error(error, GCTL_ERROR_PREFIX "NotFound");
}

static gchar *
gctl_lookup(GctlContext *ctx, const gchar *method, const gchar *name, GError **error)
{
	g_autoptr(GVariant) reply = NULL;
	gchar *path = NULL;

	reply = gctl_call(ctx, GCTL_MANAGER_PATH, GCTL_IFACE_MANAGER, method,
			  g_variant_new("(s)", name), G_VARIANT_TYPE("(o)"), error);
	if (reply == NULL)
		return NULL;
	g_variant_get(reply, "(o)", &path);
	return path;
}

/* POOL/VOLUME: the service has no look-up for it, GetManagedObjects does. */
static gchar *
gctl_find_pool_volume(GctlContext *ctx, const gchar *name, GError **error)
{
	g_autoptr(GVariant) objects = NULL;
	g_autofree gchar *pool = g_strdup(name);
	gchar *volume = strchr(pool, '/');
	GVariantIter iter;
	const gchar *path;
	GVariant *ifaces;
	gchar *found = NULL;

	*volume++ = '\0';
	objects = gctl_managed_objects(ctx, error);
	if (objects == NULL)
		return NULL;
	g_variant_iter_init(&iter, objects);
	while (found == NULL && g_variant_iter_loop(&iter, "{&o@a{sa{sv}}}", &path, &ifaces)) {
		g_autoptr(GVariant) props =
		    g_variant_lookup_value(ifaces, GCTL_IFACE_VOLUME, G_VARIANT_TYPE("a{sv}"));
		const gchar *p = NULL;
		const gchar *n = NULL;

		if (props == NULL)
			continue;
		if (g_variant_lookup(props, "Pool", "&s", &p) &&
		    g_variant_lookup(props, "Name", "&s", &n) && g_strcmp0(p, pool) == 0 &&
		    g_strcmp0(n, volume) == 0)
			found = g_strdup(path);
	}
	if (found == NULL)
		g_set_error(error, GCTL_ERROR, GCTL_EXIT_NOT_FOUND,
			    "No volume '%s' in a pool '%s' is known; 'guestfsctl list' shows "
			    "the volumes",
			    volume, pool);
	return found;
}

/* A domain by name or UUID, a volume by key, host path or POOL/VOLUME.
 * Domains come first: a domain name cannot hold '/', a volume's path
 * always does. */
GctlObject *
gctl_resolve(GctlContext *ctx, const gchar *name, GctlKind kinds, GError **error)
{
	g_autoptr(GctlObject) obj = g_new0(GctlObject, 1);
	g_autoptr(GError) local = NULL;

	obj->name = g_strdup(name);
	if (kinds & GCTL_KIND_DOMAIN) {
		obj->path = gctl_lookup(ctx, "LookupDomain", name, &local);
		if (obj->path != NULL) {
			obj->kind = GCTL_KIND_DOMAIN;
			return g_steal_pointer(&obj);
		}
		if (!gctl_is_not_found(local) || !(kinds & GCTL_KIND_VOLUME)) {
			g_propagate_error(error, g_steal_pointer(&local));
			return NULL;
		}
		g_clear_error(&local);
	}
	obj->kind = GCTL_KIND_VOLUME;
	obj->path = gctl_lookup(ctx, "LookupVolume", name, &local);
	if (obj->path != NULL)
		return g_steal_pointer(&obj);
	if (gctl_is_not_found(local) && name[0] != '/' && strchr(name, '/') != NULL) {
		obj->path = gctl_find_pool_volume(ctx, name, error);
		return obj->path != NULL ? g_steal_pointer(&obj) : NULL;
	}
	if (gctl_is_not_found(local)) {
		g_clear_error(&local);
		g_set_error(error, GCTL_ERROR, GCTL_EXIT_NOT_FOUND,
			    "No %s '%s' is known; 'guestfsctl list' shows the domains and "
			    "volumes (a volume is named by its path, its key or POOL/VOLUME)",
			    kinds == GCTL_KIND_VOLUME ? "volume" : "domain or volume", name);
		return NULL;
	}
	g_propagate_error(error, g_steal_pointer(&local));
	return NULL;
}

void
gctl_add_root_options(GVariantBuilder *options, const gchar *root, const gchar *filesystem)
{
	if (root != NULL)
		g_variant_builder_add(options, "{sv}", "root", g_variant_new_string(root));
	if (filesystem != NULL)
		g_variant_builder_add(options, "{sv}", "filesystem",
				      g_variant_new_string(filesystem));
}

static const struct {
	const gchar *name;
	GctlExit status;
} gctl_error_classes[] = {
    {"Failed", GCTL_EXIT_FAILED},
    {"InvalidArgument", GCTL_EXIT_INVALID_ARGUMENT},
    {"NotFound", GCTL_EXIT_NOT_FOUND},
    {"NotAuthorized", GCTL_EXIT_NOT_AUTHORIZED},
    {"DomainRunning", GCTL_EXIT_DOMAIN_RUNNING},
    {"InUse", GCTL_EXIT_IN_USE},
    {"ApplianceFailed", GCTL_EXIT_APPLIANCE_FAILED},
    {"TooLarge", GCTL_EXIT_TOO_LARGE},
    {"Cancelled", GCTL_EXIT_CANCELLED},
    {"NotSupported", GCTL_EXIT_NOT_SUPPORTED},
    {"Unavailable", GCTL_EXIT_UNAVAILABLE},
    {"AuthorizationFailed", GCTL_EXIT_UNAVAILABLE},
    {"Busy", GCTL_EXIT_IN_USE},
};

/* The polkit action a method needs, as the README's table says. */
static const gchar *
gctl_polkit_action(const gchar *method)
{
	static const struct {
		const gchar *method;
		const gchar *action;
	} actions[] = {
	    {"Inspector.", "org.libvirt.guestfs.inspect"},
	    {"Manager.InspectDomains", "org.libvirt.guestfs.inspect"},
	    {"Files.ReadDir", "org.libvirt.guestfs.read"},
	    {"Files.Stat", "org.libvirt.guestfs.read"},
	    {"Files.ReadFile", "org.libvirt.guestfs.read"},
	    {"Files.Readlink", "org.libvirt.guestfs.read"},
	    {"Files.Download", "org.libvirt.guestfs.read"},
	    {"Files.TarOut", "org.libvirt.guestfs.read"},
	    {"Files.", "org.libvirt.guestfs.write"},
	    {"Domain.", "org.libvirt.guestfs.manage"},
	    {"Volume.Upload", "org.libvirt.guestfs.volume-write"},
	    {"Volume.", "org.libvirt.guestfs.volume-read"},
	    {"Job.Cancel", "org.libvirt.guestfs.manage"},
	};

	if (method == NULL)
		return NULL;
	for (gsize i = 0; i < G_N_ELEMENTS(actions); i++) {
		if (g_str_has_prefix(method, actions[i].method))
			return actions[i].action;
	}
	return NULL;
}

gint
gctl_exit_for_dbus_error(const gchar *remote)
{
	if (g_str_has_prefix(remote, GCTL_ERROR_PREFIX)) {
		const gchar *name = remote + strlen(GCTL_ERROR_PREFIX);
		for (gsize i = 0; i < G_N_ELEMENTS(gctl_error_classes); i++) {
			if (g_strcmp0(name, gctl_error_classes[i].name) == 0)
				return gctl_error_classes[i].status;
		}
		return GCTL_EXIT_FAILED;
	}
	if (g_strcmp0(remote, "org.freedesktop.DBus.Error.ServiceUnknown") == 0 ||
	    g_strcmp0(remote, "org.freedesktop.DBus.Error.NameHasNoOwner") == 0)
		return GCTL_EXIT_UNAVAILABLE;
	if (g_strcmp0(remote, "org.freedesktop.DBus.Error.AccessDenied") == 0)
		return GCTL_EXIT_NOT_AUTHORIZED;
	if (g_strcmp0(remote, "org.freedesktop.DBus.Error.NoReply") == 0 ||
	    g_strcmp0(remote, "org.freedesktop.DBus.Error.Timeout") == 0)
		return GCTL_EXIT_TIMEOUT;
	return GCTL_EXIT_FAILED;
}

/* Prints @error on stderr with a hint of what to do, and returns the
 * exit status of its class. @method ("Files.Download") names the call
 * for NotAuthorized, or NULL. */
gint
gctl_report_error(const GError *error, const gchar *method)
{
	g_autofree gchar *remote = NULL;
	g_autofree gchar *message = NULL;
	gint status = GCTL_EXIT_FAILED;
	const gchar *hint = NULL;
	g_autofree gchar *hint_owned = NULL;

	if (error->domain == GCTL_ERROR) {
		g_printerr("guestfsctl: %s\n", error->message);
		return error->code;
	}
	if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT)) {
		g_printerr("guestfsctl: %s\n(a longer --timeout, or none, lets the call "
			   "finish)\n",
			   error->message);
		return GCTL_EXIT_TIMEOUT;
	}
	if (!g_dbus_error_is_remote_error(error)) {
		g_printerr("guestfsctl: %s\n", error->message);
		return GCTL_EXIT_FAILED;
	}
	remote = g_dbus_error_get_remote_error(error);
	{
		GError *copy = g_error_copy(error);
		g_dbus_error_strip_remote_error(copy);
		message = g_strdup(copy->message);
		g_error_free(copy);
	}
	status = gctl_exit_for_dbus_error(remote);
	switch (status) {
	case GCTL_EXIT_UNAVAILABLE:
		if (!g_str_has_prefix(remote, GCTL_ERROR_PREFIX))
			hint = "is libvirt-guestfs-dbus running on this bus? (--system is the "
			       "default; --session for a user's own service)";
		break;
	case GCTL_EXIT_NOT_AUTHORIZED: {
		const gchar *action = gctl_polkit_action(method);
		if (action != NULL)
			hint = hint_owned = g_strdup_printf(
			    "polkit refused the action %s: ask an administrator for it (a "
			    "polkit rule, see 50-libvirt-guestfs-dbus.rules.example), or run "
			    "from a session where you can authenticate",
			    action);
		break;
	}
	case GCTL_EXIT_DOMAIN_RUNNING:
		hint = "shut the domain down first (virsh shutdown), then try again";
		break;
	case GCTL_EXIT_IN_USE:
		hint = "stop what uses it first ('guestfsctl stop-appliance' for the "
		       "service's own appliance)";
		break;
	case GCTL_EXIT_APPLIANCE_FAILED:
		hint = "the service's log says why; the next call launches a new appliance";
		break;
	case GCTL_EXIT_TIMEOUT:
		hint = "a longer --timeout, or none, lets the call finish";
		break;
	default:
		break;
	}
	g_printerr("guestfsctl: %s\n", message);
	if (hint != NULL)
		g_printerr("(%s)\n", hint);
	return status;
}
