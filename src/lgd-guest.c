#include "config.h"

#include "lgd-args.h"
#include "lgd-call.h"
#include "lgd-error.h"
#include "lgd-impl.h"
#include "lgd-guest.h"
#include "lgd-files.h"
#include "lgd-inspector.h"
#include "lgd-volume-stream.h"

struct _LgdGuest {
	GObject parent_instance;
	LgdContext *context;
	gchar *uri;
	gchar *uuid; /* domains */
	gchar *key;  /* volumes */
	LgdDBusObjectSkeleton *object;
	LgdSession *session;

	GMutex cache_lock;
	LgdCacheEntry *cache; /* the last inspection, as on disk */
	GMainContext *main_context;
};

G_DEFINE_TYPE(LgdGuest, lgd_guest, G_TYPE_OBJECT)

/* ---- appliance control ------------------------------------------------- */

static const LgdOptionSpec lgd_start_options[] = {
    {"read-only", "b"},
    {"job-id", "s"}, /* given to the launch's job */
    {NULL},
};

static GVariant *
lgd_guest_start_job(LgdSession *session, LgdCall *call, GError **error)
{
	guestfs_h *g = call->flag ? lgd_session_get_handle(session, error)
				  : lgd_session_get_handle_rw(session, error);

	return g != NULL ? g_variant_new("()") : NULL;
}

static GVariant *
lgd_guest_stop_job(LgdSession *session, LgdCall *call, GError **error)
{
	lgd_session_stop_now(session);
	return g_variant_new("()");
}

/* The replies of both methods on both interfaces. */
static void
lgd_guest_reply(gpointer iface, GDBusMethodInvocation *invocation, GVariant *reply)
{
	const gchar *method = g_dbus_method_invocation_get_method_name(invocation);
	gboolean start = g_str_equal(method, "StartAppliance");

	if (LGD_DBUS_IS_DOMAIN(iface) && start)
		lgd_dbus_domain_complete_start_appliance(iface, invocation);
	else if (LGD_DBUS_IS_DOMAIN(iface))
		lgd_dbus_domain_complete_stop_appliance(iface, invocation);
	else if (start)
		lgd_dbus_volume_complete_start_appliance(iface, invocation);
	else
		lgd_dbus_volume_complete_stop_appliance(iface, invocation);
}

/* StartAppliance, for domains and volumes alike: a read-write appliance
 * is a write. */
static gboolean
lgd_guest_handle_start(gpointer iface, GDBusMethodInvocation *invocation, GVariant *options)
{
	gboolean read_only = lgd_args_get_bool(options, "read-only", TRUE);
	const gchar *action;
	LgdCall *call;
	GError *error = NULL;

	if (LGD_DBUS_IS_DOMAIN(iface))
		action = read_only ? LGD_ACTION_MANAGE : LGD_ACTION_WRITE;
	else
		action = read_only ? LGD_ACTION_VOLUME_READ : LGD_ACTION_VOLUME_WRITE;
	call = lgd_call_new_for_iface(iface, invocation, action, lgd_guest_reply);
	call->flag = read_only;
	call->options = g_variant_ref(options);
	if (!lgd_args_check_options(options, lgd_start_options, &error) ||
	    !lgd_job_check_id(options, &error))
		return lgd_call_return_error(call, error);
	return lgd_call_run_on_session(call, lgd_guest_start_job);
}

static gboolean
lgd_guest_handle_stop(gpointer iface, GDBusMethodInvocation *invocation)
{
	const gchar *action =
	    LGD_DBUS_IS_DOMAIN(iface) ? LGD_ACTION_MANAGE : LGD_ACTION_VOLUME_READ;

	return lgd_call_run_on_session(
	    lgd_call_new_for_iface(iface, invocation, action, lgd_guest_reply), lgd_guest_stop_job);
}

/* ---- the implementations of Domain and Volume ------------------------- */

#define LGD_TYPE_DOMAIN_IMPL (lgd_domain_impl_get_type())
G_DECLARE_FINAL_TYPE(LgdDomainImpl, lgd_domain_impl, LGD, DOMAIN_IMPL, LgdDBusDomainSkeleton)

#define LGD_TYPE_VOLUME_IMPL (lgd_volume_impl_get_type())
G_DECLARE_FINAL_TYPE(LgdVolumeImpl, lgd_volume_impl, LGD, VOLUME_IMPL, LgdDBusVolumeSkeleton)

struct _LgdDomainImpl {
	LgdDBusDomainSkeleton parent_instance;
};

struct _LgdVolumeImpl {
	LgdDBusVolumeSkeleton parent_instance;
};

/* The generated interfaces give StartAppliance and StopAppliance the
 * type of their own interface: these typed handlers of each forward to
 * the one implementation above. */
#define LGD_GUEST_DEFINE_APPLIANCE_HANDLERS(prefix, IfaceType)                                     \
	static gboolean prefix##_handle_start(IfaceType *iface, GDBusMethodInvocation *inv,        \
					      GVariant *options)                                   \
	{                                                                                          \
		return lgd_guest_handle_start(iface, inv, options);                                \
	}                                                                                          \
	static gboolean prefix##_handle_stop(IfaceType *iface, GDBusMethodInvocation *inv)         \
	{                                                                                          \
		return lgd_guest_handle_stop(iface, inv);                                          \
	}

LGD_GUEST_DEFINE_APPLIANCE_HANDLERS(lgd_domain_impl, LgdDBusDomain)
LGD_GUEST_DEFINE_APPLIANCE_HANDLERS(lgd_volume_impl, LgdDBusVolume)

static const LgdHandler lgd_domain_handlers[] = {
    LGD_HANDLER(Domain, start_appliance, lgd_domain_impl_handle_start),
    LGD_HANDLER(Domain, stop_appliance, lgd_domain_impl_handle_stop),
};

static const LgdHandler lgd_volume_handlers[] = {
    LGD_HANDLER(Volume, start_appliance, lgd_volume_impl_handle_start),
    LGD_HANDLER(Volume, stop_appliance, lgd_volume_impl_handle_stop),
    LGD_HANDLER(Volume, download, lgd_volume_stream_handle_download),
    LGD_HANDLER(Volume, upload, lgd_volume_stream_handle_upload),
};

LGD_DEFINE_IMPL(LgdDomainImpl, lgd_domain_impl, DOMAIN, LGD_HANDLERS(lgd_domain_handlers))

LGD_DEFINE_IMPL(LgdVolumeImpl, lgd_volume_impl, VOLUME, LGD_HANDLERS(lgd_volume_handlers))

/* ---- inspection cache -------------------------------------------------- */

/* The cache's key for this object. */
static const gchar *
lgd_guest_cache_id(LgdGuest *self)
{
	return self->uuid != NULL ? self->uuid : self->key;
}

typedef struct {
	LgdGuest *guest;
	GVariant *systems;
	gint64 inspected_at;
} LgdPublish;

static gboolean
lgd_guest_publish_idle(gpointer user_data)
{
	LgdPublish *publish = user_data;
	g_autoptr(LgdDBusInspector) iface =
	    lgd_dbus_object_get_inspector(LGD_DBUS_OBJECT(publish->guest->object));

	lgd_dbus_inspector_set_operating_systems(iface, publish->systems);
	lgd_dbus_inspector_set_inspected_at(iface, publish->inspected_at);
	g_variant_unref(publish->systems);
	g_object_unref(publish->guest);
	g_free(publish);
	return G_SOURCE_REMOVE;
}

/* Properties change on the main loop, whatever thread learnt the facts.
 * A call's reply is queued to the main loop after this, and flushes the
 * interfaces before it is sent (lgd-call.c): it never overtakes the new
 * values. */
static void
lgd_guest_publish(LgdGuest *self, const LgdCacheEntry *entry)
{
	LgdPublish *publish = g_new0(LgdPublish, 1);

	publish->guest = g_object_ref(self);
	publish->systems =
	    entry != NULL
		? g_variant_ref(entry->systems)
		: g_variant_ref_sink(g_variant_new_array(G_VARIANT_TYPE_VARDICT, NULL, 0));
	publish->inspected_at = entry != NULL ? entry->inspected_at : 0;
	g_main_context_invoke(self->main_context, lgd_guest_publish_idle, publish);
}

/* Sends the PropertiesChanged signals that property changes so far have
 * scheduled. Main loop. */
void
lgd_guest_flush(LgdGuest *self)
{
	g_autolist(GDBusInterface) ifaces =
	    g_dbus_object_get_interfaces(G_DBUS_OBJECT(self->object));

	for (GList *l = ifaces; l != NULL; l = l->next)
		g_dbus_interface_skeleton_flush(G_DBUS_INTERFACE_SKELETON(l->data));
}

/* The last inspection when the disks are still what it saw, else NULL. */
LgdCacheEntry *
lgd_guest_cached_inspection(LgdGuest *self, const gchar *identity)
{
	LgdCacheEntry *entry = NULL;

	g_mutex_lock(&self->cache_lock);
	if (identity != NULL && self->cache != NULL &&
	    g_strcmp0(identity, self->cache->identity) == 0)
		entry = lgd_cache_entry_copy(self->cache);
	g_mutex_unlock(&self->cache_lock);
	return entry;
}

/* Keeps @entry (taken) in memory, on disk and in the properties. An entry
 * without identity (disks that cannot be identified) is published only. */
void
lgd_guest_store_inspection(LgdGuest *self, LgdCacheEntry *entry)
{
	g_autoptr(GError) error = NULL;

	if (entry->identity == NULL)
		lgd_cache_drop(self->context->cache, self->uri, lgd_guest_cache_id(self));
	else if (!lgd_cache_store(self->context->cache, self->uri, lgd_guest_cache_id(self), entry,
				  &error))
		g_warning("cannot store the inspection of %s: %s", lgd_guest_cache_id(self),
			  error->message);
	g_mutex_lock(&self->cache_lock);
	g_clear_pointer(&self->cache, lgd_cache_entry_free);
	if (entry->identity != NULL)
		self->cache = lgd_cache_entry_copy(entry);
	g_mutex_unlock(&self->cache_lock);
	lgd_guest_publish(self, entry);
	lgd_cache_entry_free(entry);
}

/* The disks changed (a write, the domain started or stopped): what was
 * found is no longer known. */
void
lgd_guest_forget_inspection(LgdGuest *self)
{
	g_mutex_lock(&self->cache_lock);
	g_clear_pointer(&self->cache, lgd_cache_entry_free);
	g_mutex_unlock(&self->cache_lock);
	lgd_cache_drop(self->context->cache, self->uri, lgd_guest_cache_id(self));
	/* also what a running domain's inspection published without caching
	 * it; unchanged properties emit nothing */
	lgd_guest_publish(self, NULL);
}

/* Whether lgd_guest_load_inspection() may find something: worth working
 * out the identity it needs. */
gboolean
lgd_guest_has_cached_inspection(LgdGuest *self)
{
	return lgd_cache_has(self->context->cache, self->uri, lgd_guest_cache_id(self));
}

/* At start-up: what an earlier run of the service found, if the disks
 * (@identity, NULL when unknowable) are unchanged since. */
void
lgd_guest_load_inspection(LgdGuest *self, const gchar *identity)
{
	LgdCacheEntry *entry =
	    lgd_cache_load(self->context->cache, self->uri, lgd_guest_cache_id(self));

	if (entry == NULL)
		return;
	if (identity == NULL || g_strcmp0(identity, entry->identity) != 0) {
		lgd_cache_drop(self->context->cache, self->uri, lgd_guest_cache_id(self));
		lgd_cache_entry_free(entry);
		return;
	}
	g_mutex_lock(&self->cache_lock);
	g_clear_pointer(&self->cache, lgd_cache_entry_free);
	self->cache = lgd_cache_entry_copy(entry);
	g_mutex_unlock(&self->cache_lock);
	lgd_guest_publish(self, entry);
	lgd_cache_entry_free(entry);
}

/* ---- life -------------------------------------------------------------- */

LgdDBusObjectSkeleton *
lgd_guest_get_object(LgdGuest *self)
{
	return self->object;
}

/* The domain UUID or the volume key. */
const gchar *
lgd_guest_get_id(LgdGuest *self)
{
	return self->uuid != NULL ? self->uuid : self->key;
}

gboolean
lgd_guest_is_domain(LgdGuest *self)
{
	return self->uuid != NULL;
}

/* A reference to the object's session, NULL once the object is
 * withdrawn. Main loop. */
LgdSession *
lgd_guest_ref_session(LgdGuest *self)
{
	return self->session != NULL ? lgd_session_ref(self->session) : NULL;
}

/* The guest that publishes @iface (a new reference), or NULL once it is
 * gone. */
LgdGuest *
lgd_guest_from_iface(gpointer iface)
{
	g_autoptr(GDBusObject) object = g_dbus_interface_dup_object(G_DBUS_INTERFACE(iface));
	GWeakRef *ref = object != NULL ? g_object_get_data(G_OBJECT(object), "lgd-guest") : NULL;

	return ref != NULL ? g_weak_ref_get(ref) : NULL;
}

const gchar *
lgd_guest_get_uri(LgdGuest *self)
{
	return self->uri;
}

/* The volume key, NULL for a domain. */
const gchar *
lgd_guest_get_volume_key(LgdGuest *self)
{
	return self->key;
}

LgdContext *
lgd_guest_get_context(LgdGuest *self)
{
	return self->context;
}

/* The object is withdrawn: queued calls finish, the appliance stops, and
 * new calls find no session. */
void
lgd_guest_close(LgdGuest *self)
{
	g_clear_pointer(&self->session, lgd_session_close);
}

static void
lgd_guest_finalize(GObject *object)
{
	LgdGuest *self = LGD_GUEST(object);

	lgd_guest_close(self);
	g_clear_object(&self->object);
	g_clear_pointer(&self->cache, lgd_cache_entry_free);
	g_mutex_clear(&self->cache_lock);
	g_main_context_unref(self->main_context);
	g_free(self->uri);
	g_free(self->uuid);
	g_free(self->key);
	G_OBJECT_CLASS(lgd_guest_parent_class)->finalize(object);
}

static void
lgd_guest_class_init(LgdGuestClass *klass)
{
	G_OBJECT_CLASS(klass)->finalize = lgd_guest_finalize;
}

static void
lgd_guest_init(LgdGuest *self)
{
	g_mutex_init(&self->cache_lock);
	self->main_context = g_main_context_ref_thread_default();
}

static void
lgd_guest_weak_ref_free(gpointer data)
{
	g_weak_ref_clear(data);
	g_free(data);
}

static LgdGuest *
lgd_guest_new(LgdContext *context, const gchar *uri, const gchar *object_path)
{
	LgdGuest *self = g_object_new(LGD_TYPE_GUEST, NULL);
	g_autoptr(LgdDBusInspector) inspector = NULL;
	g_autoptr(LgdDBusFiles) files = NULL;
	GWeakRef *ref = g_new0(GWeakRef, 1);

	self->context = context;
	self->uri = g_strdup(uri);
	self->object = lgd_dbus_object_skeleton_new(object_path);
	g_weak_ref_init(ref, self);
	g_object_set_data_full(G_OBJECT(self->object), "lgd-guest", ref, lgd_guest_weak_ref_free);
	inspector = lgd_inspector_new();
	lgd_dbus_inspector_set_operating_systems(
	    inspector, g_variant_new_array(G_VARIANT_TYPE_VARDICT, NULL, 0));
	lgd_dbus_object_skeleton_set_inspector(self->object, inspector);
	files = lgd_files_new();
	lgd_dbus_object_skeleton_set_files(self->object, files);
	return self;
}

/* A domain and a volume differ only in their interface and in how the
 * session finds the drives: the rest of a guest is the same. */
LgdGuest *
lgd_guest_new_drive(LgdContext *context,
		    const gchar *uri,
		    LgdGuestKind kind,
		    const gchar *id,
		    const gchar *object_path)
{
	LgdGuest *self = lgd_guest_new(context, uri, object_path);
	gboolean is_domain = kind == LGD_GUEST_DOMAIN;
	g_autoptr(GDBusInterfaceSkeleton) iface =
	    g_object_new(is_domain ? LGD_TYPE_DOMAIN_IMPL : LGD_TYPE_VOLUME_IMPL, NULL);
	LgdDriveSource *source = is_domain ? lgd_drive_source_new_domain(uri, id, context->run_dir)
					   : lgd_drive_source_new_volume(uri, id, context->run_dir);

	if (is_domain)
		self->uuid = g_strdup(id);
	else
		self->key = g_strdup(id);
	g_dbus_object_skeleton_add_interface(G_DBUS_OBJECT_SKELETON(self->object), iface);
	self->session = lgd_session_new(&context->session, source, G_OBJECT(iface));
	return self;
}
