#include "config.h"

#include <glib/gi18n.h>

#include "lgd-args.h"
#include "lgd-error.h"
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

/* ---- the call path ----------------------------------------------------- */

typedef struct {
	LgdGuest *guest;
	GDBusMethodInvocation *invocation;
	const gchar *action_id;
	/* copies of what polkit is told: the objects may change meanwhile */
	gchar *domain;
	gchar *pool;
	gchar *volume;
	gchar *volume_path;
	gchar *path;
	gchar *path2; /* a second path the call changes (Rename's destination) */
	gchar *message;
	LgdJobFunc func;     /* runs on the session */
	LgdThreadFunc tfunc; /* or runs in a thread of its own */
	gpointer data;
	GDestroyNotify data_free;
} LgdCall;

static void
lgd_call_free(LgdCall *call)
{
	if (call->data_free != NULL && call->data != NULL)
		call->data_free(call->data);
	g_clear_object(&call->invocation);
	g_object_unref(call->guest);
	g_free(call->domain);
	g_free(call->pool);
	g_free(call->volume);
	g_free(call->volume_path);
	g_free(call->path);
	g_free(call->path2);
	g_free(call->message);
	g_free(call);
}

/* The message an authentication dialog shows, translated, naming the
 * domain or volume. */
static gchar *
lgd_guest_action_message(const gchar *action_id, const gchar *what)
{
	const struct {
		const gchar *action_id;
		const gchar *message;
	} messages[] = {
	    {LGD_ACTION_INSPECT, N_("Authentication is required to inspect the disks of {object}")},
	    {LGD_ACTION_READ, N_("Authentication is required to read files on {object}")},
	    {LGD_ACTION_WRITE, N_("Authentication is required to change files on {object}")},
	    {LGD_ACTION_MANAGE, N_("Authentication is required to start or stop the appliance "
				   "of {object}")},
	    {LGD_ACTION_VOLUME_READ,
	     N_("Authentication is required to read storage volume {object}")},
	    {LGD_ACTION_VOLUME_WRITE,
	     N_("Authentication is required to write storage volume {object}")},
	};

	for (guint i = 0; i < G_N_ELEMENTS(messages); i++) {
		if (g_strcmp0(messages[i].action_id, action_id) == 0) {
			GString *message = g_string_new(_(messages[i].message));
			g_string_replace(message, "{object}", what != NULL ? what : "?", 0);
			return g_string_free(message, FALSE);
		}
	}
	return NULL;
}

/* Asks polkit (or, on the session bus, checks the caller); may block. */
static gboolean
lgd_call_check(LgdCall *call, GError **error)
{
	LgdAuthDetails details = {
	    .connection = call->guest->uri,
	    .domain = call->domain,
	    .domain_uuid = call->guest->uuid,
	    .pool = call->pool,
	    .volume = call->volume,
	    .volume_key = call->guest->key,
	    .volume_path = call->volume_path,
	    .path = call->path,
	};

	if (!lgd_auth_check(call->guest->context->auth, call->invocation, call->action_id, &details,
			    call->message, error))
		return FALSE;
	/* each path the call touches is authorized on its own, so that a
	 * rule on "path" cannot be escaped by renaming out of its tree */
	if (call->path2 == NULL)
		return TRUE;
	details.path = call->path2;
	return lgd_auth_check(call->guest->context->auth, call->invocation, call->action_id,
			      &details, call->message, error);
}

static void
lgd_call_auth_thread(GTask *task, gpointer source, gpointer task_data, GCancellable *cancel)
{
	GError *error = NULL;

	if (lgd_call_check(task_data, &error))
		g_task_return_boolean(task, TRUE);
	else
		g_task_return_error(task, error);
}

/* A call that needs no appliance but may take long (a transfer): it gets
 * a thread of its own rather than one of GLib's shared pool. */
typedef struct {
	GDBusMethodInvocation *invocation;
	LgdThreadFunc func;
	gpointer data;
	GDestroyNotify data_free;
} LgdThreadCall;

static gpointer
lgd_thread_call_run(gpointer user_data)
{
	LgdThreadCall *tcall = user_data;
	GError *error = NULL;
	GVariant *reply = tcall->func(tcall->invocation, tcall->data, &error);

	if (reply != NULL)
		g_dbus_method_invocation_return_value(tcall->invocation, reply);
	else
		lgd_error_return(tcall->invocation, error);
	if (tcall->data_free != NULL && tcall->data != NULL)
		tcall->data_free(tcall->data);
	g_free(tcall);
	return NULL;
}

static void
lgd_call_auth_done(GObject *source, GAsyncResult *result, gpointer user_data)
{
	LgdCall *call = g_task_get_task_data(G_TASK(result));
	GError *error = NULL;

	if (!g_task_propagate_boolean(G_TASK(result), &error)) {
		lgd_error_return(g_steal_pointer(&call->invocation), error);
		return;
	}
	if (call->guest->session == NULL) {
		g_dbus_method_invocation_return_error_literal(g_steal_pointer(&call->invocation),
							      LGD_ERROR, LGD_ERROR_NOT_FOUND,
							      "The object is gone");
		return;
	}
	if (call->tfunc != NULL) {
		LgdThreadCall *tcall = g_new0(LgdThreadCall, 1);

		tcall->invocation = g_steal_pointer(&call->invocation);
		tcall->func = call->tfunc;
		tcall->data = g_steal_pointer(&call->data);
		tcall->data_free = call->data_free;
		g_thread_unref(g_thread_new("lgd-call", lgd_thread_call_run, tcall));
		return;
	}
	lgd_session_call(call->guest->session, g_steal_pointer(&call->invocation), call->func,
			 g_steal_pointer(&call->data), call->data_free);
}

/* Copies what polkit is told about this object: the object may change
 * before the check runs in another thread. */
static void
lgd_call_fill(LgdGuest *self,
	      LgdCall *call,
	      GDBusMethodInvocation *invocation,
	      const gchar *action_id,
	      const gchar *path)
{
	const gchar *what;

	call->guest = g_object_ref(self);
	call->invocation = invocation;
	call->action_id = action_id;
	call->path = g_strdup(path);
	if (self->uuid != NULL) {
		g_autoptr(LgdDBusDomain) domain =
		    lgd_dbus_object_get_domain(LGD_DBUS_OBJECT(self->object));
		call->domain = g_strdup(lgd_dbus_domain_get_name(domain));
		what = call->domain;
	} else {
		g_autoptr(LgdDBusVolume) volume =
		    lgd_dbus_object_get_volume(LGD_DBUS_OBJECT(self->object));
		call->pool = g_strdup(lgd_dbus_volume_get_pool(volume));
		call->volume = g_strdup(lgd_dbus_volume_get_name(volume));
		call->volume_path = g_strdup(lgd_dbus_volume_get_path(volume));
		what = call->volume_path;
	}
	call->message = lgd_guest_action_message(action_id, what);
}

/* Takes the handler's reference to @invocation. */
static void
lgd_guest_authorize(LgdGuest *self,
		    GDBusMethodInvocation *invocation,
		    const gchar *action_id,
		    const gchar *path,
		    LgdCall *call)
{
	g_autoptr(GTask) task = NULL;

	lgd_call_fill(self, call, invocation, action_id, path);
	task = g_task_new(NULL, NULL, lgd_call_auth_done, NULL);
	g_task_set_task_data(task, call, (GDestroyNotify)lgd_call_free);
	g_task_run_in_thread(task, lgd_call_auth_thread);
}

/* For a method that authorizes several objects itself (InspectDomains):
 * a ticket made in the main loop, checked in any thread. */
LgdAuthTicket *
lgd_guest_auth_ticket_new(LgdGuest *self, GDBusMethodInvocation *invocation, const gchar *action_id)
{
	LgdCall *call = g_new0(LgdCall, 1);

	lgd_call_fill(self, call, g_object_ref(invocation), action_id, NULL);
	return (LgdAuthTicket *)call;
}

gboolean
lgd_guest_auth_ticket_check(LgdAuthTicket *ticket, GError **error)
{
	return lgd_call_check((LgdCall *)ticket, error);
}

void
lgd_guest_auth_ticket_free(LgdAuthTicket *ticket)
{
	if (ticket != NULL)
		lgd_call_free((LgdCall *)ticket);
}

/* The one path of every content-touching method: authorize the caller
 * for @action_id (in a thread: polkit may wait for the user), then queue
 * @func on the object's session, which replies. A denied call never
 * reaches the session, so it starts no appliance. Takes @data. */
void
lgd_guest_call(LgdGuest *self,
	       GDBusMethodInvocation *invocation,
	       const gchar *action_id,
	       const gchar *path,
	       LgdJobFunc func,
	       gpointer data,
	       GDestroyNotify data_free)
{
	lgd_guest_call_paths(self, invocation, action_id, path, NULL, func, data, data_free);
}

/* The same, for a call that touches two paths: both are authorized. */
void
lgd_guest_call_paths(LgdGuest *self,
		     GDBusMethodInvocation *invocation,
		     const gchar *action_id,
		     const gchar *path,
		     const gchar *path2,
		     LgdJobFunc func,
		     gpointer data,
		     GDestroyNotify data_free)
{
	LgdCall *call = g_new0(LgdCall, 1);

	call->path2 = g_strdup(path2);

	call->func = func;
	call->data = data;
	call->data_free = data_free;
	lgd_guest_authorize(self, invocation, action_id, path, call);
}

/* The same for work that needs no appliance: @func runs, once the caller
 * is authorized, in a thread of its own, and its reply is sent. */
void
lgd_guest_call_in_thread(LgdGuest *self,
			 GDBusMethodInvocation *invocation,
			 const gchar *action_id,
			 LgdThreadFunc func,
			 gpointer data,
			 GDestroyNotify data_free)
{
	LgdCall *call = g_new0(LgdCall, 1);

	call->tfunc = func;
	call->data = data;
	call->data_free = data_free;
	lgd_guest_authorize(self, invocation, action_id, NULL, call);
}

/* ---- appliance control ------------------------------------------------- */

static const LgdOptionSpec lgd_start_options[] = {
    {"read-only", "b"},
    {NULL},
};

typedef struct {
	gboolean read_only;
} LgdStartData;

static GVariant *
lgd_guest_start_job(LgdSession *session, gpointer data, GError **error)
{
	LgdStartData *start = data;

	if (start->read_only)
		return lgd_session_get_handle(session, error) != NULL ? g_variant_new("()") : NULL;
	return lgd_session_get_handle_rw(session, error) != NULL ? g_variant_new("()") : NULL;
}

static GVariant *
lgd_guest_stop_job(LgdSession *session, gpointer data, GError **error)
{
	lgd_session_stop_now(session);
	return g_variant_new("()");
}

static gboolean
lgd_guest_handle_start(GObject *iface,
		       GDBusMethodInvocation *invocation,
		       GVariant *options,
		       LgdGuest *self)
{
	GError *error = NULL;
	LgdStartData *start;
	const gchar *action;

	if (!lgd_args_check_options(options, lgd_start_options, &error)) {
		lgd_error_return(invocation, error);
		return G_DBUS_METHOD_INVOCATION_HANDLED;
	}
	start = g_new0(LgdStartData, 1);
	start->read_only = lgd_args_get_bool(options, "read-only", TRUE);
	if (self->uuid != NULL)
		action = start->read_only ? LGD_ACTION_MANAGE : LGD_ACTION_WRITE;
	else
		action = start->read_only ? LGD_ACTION_VOLUME_READ : LGD_ACTION_VOLUME_WRITE;
	lgd_guest_call(self, invocation, action, NULL, lgd_guest_start_job, start, g_free);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
lgd_guest_handle_stop(GObject *iface, GDBusMethodInvocation *invocation, LgdGuest *self)
{
	lgd_guest_call(self, invocation,
		       self->uuid != NULL ? LGD_ACTION_MANAGE : LGD_ACTION_VOLUME_READ, NULL,
		       lgd_guest_stop_job, NULL, NULL);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---- inspection cache -------------------------------------------------- */

/* The cache's key for this object. */
static const gchar *
lgd_guest_cache_id(LgdGuest *self)
{
	return self->uuid != NULL ? self->uuid : self->key;
}

/* How long a worker waits for the main loop to publish (it may have
 * stopped, at exit). */
#define LGD_PUBLISH_WAIT_US (2 * G_USEC_PER_SEC)

typedef struct {
	GMutex lock;
	GCond cond;
	gboolean done;
} LgdPublishDone;

typedef struct {
	LgdGuest *guest;
	GVariant *systems;
	gint64 inspected_at;
	LgdPublishDone *done; /* atomic rc box, or NULL */
} LgdPublish;

static void
lgd_publish_done_clear(gpointer data)
{
	LgdPublishDone *done = data;

	g_mutex_clear(&done->lock);
	g_cond_clear(&done->cond);
}

static gboolean
lgd_guest_publish_idle(gpointer user_data)
{
	LgdPublish *publish = user_data;
	g_autoptr(LgdDBusInspector) iface =
	    lgd_dbus_object_get_inspector(LGD_DBUS_OBJECT(publish->guest->object));

	lgd_dbus_inspector_set_operating_systems(iface, publish->systems);
	lgd_dbus_inspector_set_inspected_at(iface, publish->inspected_at);
	if (publish->done != NULL) {
		g_mutex_lock(&publish->done->lock);
		publish->done->done = TRUE;
		g_cond_broadcast(&publish->done->cond);
		g_mutex_unlock(&publish->done->lock);
		g_atomic_rc_box_release_full(publish->done, lgd_publish_done_clear);
	}
	g_variant_unref(publish->systems);
	g_object_unref(publish->guest);
	g_free(publish);
	return G_SOURCE_REMOVE;
}

/* Properties change in the main loop, whatever thread learnt the facts.
 * A worker waits for it, so that its reply, sent next, never overtakes
 * the new property values. */
static void
lgd_guest_publish(LgdGuest *self, const LgdCacheEntry *entry)
{
	LgdPublish *publish = g_new0(LgdPublish, 1);
	LgdPublishDone *done = NULL;

	publish->guest = g_object_ref(self);
	publish->systems =
	    entry != NULL
		? g_variant_ref(entry->systems)
		: g_variant_ref_sink(g_variant_new_array(G_VARIANT_TYPE_VARDICT, NULL, 0));
	publish->inspected_at = entry != NULL ? entry->inspected_at : 0;
	if (!g_main_context_is_owner(self->main_context)) {
		done = g_atomic_rc_box_new0(LgdPublishDone);
		g_mutex_init(&done->lock);
		g_cond_init(&done->cond);
		publish->done = g_atomic_rc_box_acquire(done);
	}
	g_main_context_invoke(self->main_context, lgd_guest_publish_idle, publish);
	if (done != NULL) {
		gint64 deadline = g_get_monotonic_time() + LGD_PUBLISH_WAIT_US;

		g_mutex_lock(&done->lock);
		while (!done->done && g_cond_wait_until(&done->cond, &done->lock, deadline))
			;
		g_mutex_unlock(&done->lock);
		g_atomic_rc_box_release_full(done, lgd_publish_done_clear);
	}
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

/* NULL once the object is withdrawn. */
LgdSession *
lgd_guest_get_session(LgdGuest *self)
{
	return self->session;
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
 * no handler refers to the guest any more. */
void
lgd_guest_close(LgdGuest *self)
{
	g_autolist(GDBusInterface) ifaces = NULL;

	g_clear_pointer(&self->session, lgd_session_close);
	if (self->object == NULL)
		return;
	ifaces = g_dbus_object_get_interfaces(G_DBUS_OBJECT(self->object));
	for (GList *l = ifaces; l != NULL; l = l->next)
		g_signal_handlers_disconnect_by_data(l->data, self);
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

static LgdGuest *
lgd_guest_new(LgdContext *context, const gchar *uri, const gchar *object_path)
{
	LgdGuest *self = g_object_new(LGD_TYPE_GUEST, NULL);
	g_autoptr(LgdDBusInspector) inspector = NULL;
	g_autoptr(LgdDBusFiles) files = NULL;

	self->context = context;
	self->uri = g_strdup(uri);
	self->object = lgd_dbus_object_skeleton_new(object_path);
	inspector = lgd_inspector_new(self);
	lgd_dbus_inspector_set_operating_systems(
	    inspector, g_variant_new_array(G_VARIANT_TYPE_VARDICT, NULL, 0));
	lgd_dbus_object_skeleton_set_inspector(self->object, inspector);
	files = lgd_files_new(self);
	lgd_dbus_object_skeleton_set_files(self->object, files);
	return self;
}

/* Both interfaces have the same appliance methods and property. */
static void
lgd_guest_connect_appliance(LgdGuest *self, GObject *iface)
{
	g_signal_connect(iface, "handle-start-appliance", G_CALLBACK(lgd_guest_handle_start), self);
	g_signal_connect(iface, "handle-stop-appliance", G_CALLBACK(lgd_guest_handle_stop), self);
}

LgdGuest *
lgd_guest_new_domain(LgdContext *context,
		     const gchar *uri,
		     const gchar *uuid,
		     const gchar *object_path)
{
	LgdGuest *self = lgd_guest_new(context, uri, object_path);
	g_autoptr(LgdDBusDomain) iface = lgd_dbus_domain_skeleton_new();

	self->uuid = g_strdup(uuid);
	lgd_dbus_object_skeleton_set_domain(self->object, iface);
	lgd_guest_connect_appliance(self, G_OBJECT(iface));
	self->session = lgd_session_new(&context->session,
					lgd_drive_source_new_domain(uri, uuid, context->run_dir),
					G_OBJECT(iface));
	return self;
}

LgdGuest *
lgd_guest_new_volume(LgdContext *context,
		     const gchar *uri,
		     const gchar *key,
		     const gchar *object_path)
{
	LgdGuest *self = lgd_guest_new(context, uri, object_path);
	g_autoptr(LgdDBusVolume) iface = lgd_dbus_volume_skeleton_new();

	self->key = g_strdup(key);
	lgd_dbus_object_skeleton_set_volume(self->object, iface);
	lgd_guest_connect_appliance(self, G_OBJECT(iface));
	lgd_volume_stream_attach(self, iface);
	self->session = lgd_session_new(&context->session,
					lgd_drive_source_new_volume(uri, key, context->run_dir),
					G_OBJECT(iface));
	return self;
}
