#include "config.h"

#include <unistd.h>

#include "lgd-admit.h"
#include "lgd-call.h"
#include "lgd-error.h"
#include "lgd-guest.h"

/* Takes the handler's reference to @invocation. Copies what polkit is
 * told about the object: it may change before the check runs in another
 * thread. Main loop. */
LgdCall *
lgd_call_new(LgdGuest *guest, GDBusMethodInvocation *invocation, const gchar *action_id)
{
	LgdCall *call = g_new0(LgdCall, 1);
	LgdDBusObject *object = LGD_DBUS_OBJECT(lgd_guest_get_object(guest));
	const gchar *what;

	call->guest = g_object_ref(guest);
	call->session = lgd_guest_ref_session(guest);
	call->invocation = invocation;
	call->main_context = g_main_context_ref_thread_default();
	call->action_id = action_id;
	call->mode = -1;
	call->fd = -1;
	call->caller_uid = -1;
	call->object_path = g_strdup(g_dbus_object_get_object_path(G_DBUS_OBJECT(object)));
	if (lgd_guest_is_domain(guest)) {
		g_autoptr(LgdDBusDomain) domain = lgd_dbus_object_get_domain(object);
		call->domain = g_strdup(lgd_dbus_domain_get_name(domain));
		what = call->domain;
	} else {
		g_autoptr(LgdDBusVolume) volume = lgd_dbus_object_get_volume(object);
		call->pool = g_strdup(lgd_dbus_volume_get_pool(volume));
		call->volume = g_strdup(lgd_dbus_volume_get_name(volume));
		call->volume_path = g_strdup(lgd_dbus_volume_get_path(volume));
		what = call->volume_path;
	}
	call->message = lgd_auth_message(action_id, what);
	return call;
}

/* The same for a handler of @iface: the guest is the one publishing it,
 * and @reply sends the typed reply. */
LgdCall *
lgd_call_new_for_iface(gpointer iface,
		       GDBusMethodInvocation *invocation,
		       const gchar *action_id,
		       LgdCallReply reply)
{
	g_autoptr(LgdGuest) guest = lgd_guest_from_iface(iface);
	LgdCall *call = lgd_call_new(guest, invocation, action_id);

	call->iface = g_object_ref(iface);
	call->reply = reply;
	return call;
}

void
lgd_call_free(LgdCall *call)
{
	if (call == NULL)
		return;
	if (call->job != NULL) {
		g_autoptr(GError) error = g_error_new_literal(LGD_ERROR, LGD_ERROR_FAILED,
							      "The call ended without an outcome");
		lgd_job_complete(g_steal_pointer(&call->job), error);
	}
	g_clear_object(&call->cancellable);
	g_free(call->object_path);
	if (call->caller != NULL)
		lgd_admit_release(call->caller);
	g_free(call->caller);
	g_clear_object(&call->invocation);
	g_clear_pointer(&call->session, lgd_session_unref);
	g_object_unref(call->guest);
	g_clear_object(&call->iface);
	g_main_context_unref(call->main_context);
	g_free(call->domain);
	g_free(call->pool);
	g_free(call->volume);
	g_free(call->volume_path);
	g_free(call->message);
	g_free(call->path);
	g_free(call->path2);
	g_free(call->requested_path);
	g_free(call->requested_path2);
	g_clear_pointer(&call->path_stat, guestfs_free_statns);
	g_free(call->link_target);
	g_free(call->root);
	g_clear_pointer(&call->options, g_variant_unref);
	g_clear_pointer(&call->data, g_variant_unref);
	if (call->fd >= 0)
		close(call->fd);
	g_free(call);
}

static const gchar *
lgd_call_option(LgdCall *call, const gchar *key)
{
	const gchar *value = NULL;

	if (call->options != NULL && g_variant_is_of_type(call->options, G_VARIANT_TYPE_VARDICT))
		g_variant_lookup(call->options, key, "&s", &value);
	return value;
}

/* What @call mounts, as polkit is told: the operating system (Inspector's
 * root argument or the 'root' option), or the one filesystem. */
const gchar *
lgd_call_root(LgdCall *call)
{
	return call->root != NULL ? call->root : lgd_call_option(call, "root");
}

const gchar *
lgd_call_filesystem(LgdCall *call)
{
	return lgd_call_option(call, "filesystem");
}

/* What polkit is told of @call, with @path (and @requested_path) as the
 * path the check is about; @details' strings belong to @call. */
static void
lgd_call_details(LgdCall *call,
		 const gchar *path,
		 const gchar *requested_path,
		 LgdAuthDetails *details)
{
	*details = (LgdAuthDetails){
	    .action_id = call->action_id,
	    .message = call->message,
	    .connection = lgd_guest_get_uri(call->guest),
	    .domain = call->domain,
	    .domain_uuid = lgd_guest_is_domain(call->guest) ? lgd_guest_get_id(call->guest) : NULL,
	    .pool = call->pool,
	    .volume = call->volume,
	    .volume_key = lgd_guest_get_volume_key(call->guest),
	    .volume_path = call->volume_path,
	    .path = path,
	    .requested_path = requested_path,
	    .root = lgd_call_root(call),
	    .filesystem = lgd_call_filesystem(call),
	};
}

static LgdAuth *
lgd_call_auth(LgdCall *call)
{
	return lgd_guest_get_context(call->guest)->auth;
}

static gboolean
lgd_call_check(LgdCall *call, const gchar *path, const gchar *requested_path, GError **error)
{
	LgdAuthDetails details;

	lgd_call_details(call, path, requested_path, &details);
	return lgd_auth_check(lgd_call_auth(call), call->invocation, &details, error);
}

/* For a thread that may wait; the handlers' path is lgd_call_run_*(). */
gboolean
lgd_call_authorize(LgdCall *call, GError **error)
{
	/* each path the call touches is authorized on its own, so that a
	 * rule on "path" cannot be escaped by renaming out of its tree */
	return lgd_call_check(call, call->path, call->requested_path, error) &&
	       (call->path2 == NULL ||
		lgd_call_check(call, call->path2, call->requested_path2, error));
}

/* Asks polkit about @call's own path without running it, for a call that
 * is part of another (InspectDomains runs once all of its are decided).
 * Main loop; @callback gets lgd_call_check_finish(). */
void
lgd_call_check_async(LgdCall *call, GAsyncReadyCallback callback, gpointer user_data)
{
	LgdAuthDetails details;

	lgd_call_details(call, call->path, call->requested_path, &details);
	lgd_auth_check_async(lgd_call_auth(call), call->invocation, &details, callback, user_data);
}

gboolean
lgd_call_check_finish(LgdCall *call, GAsyncResult *result, GError **error)
{
	return lgd_auth_check_finish(lgd_call_auth(call), result, error);
}

/* Authorizes @call for one other path than its own (where a link led,
 * "/" for special files); the call's own paths are left as they are. */
gboolean
lgd_call_authorize_path(LgdCall *call,
			const gchar *path,
			const gchar *requested_path,
			GError **error)
{
	return lgd_call_check(call, path, requested_path, error);
}

/* ---- the reply, on the main loop --------------------------------------- */

typedef struct {
	LgdCall *call;
	GVariant *reply;
	GError *error;
} LgdCallOutcome;

/* State the call changed was set on the main loop before this ran (same
 * context, earlier in the queue); flushing sends its PropertiesChanged
 * now, so that the reply never overtakes it. */
static gboolean
lgd_call_reply_idle(gpointer user_data)
{
	LgdCallOutcome *outcome = user_data;
	LgdCall *call = outcome->call;

	lgd_guest_flush(call->guest);
	if (outcome->reply != NULL && call->reply != NULL)
		call->reply(call->iface, g_steal_pointer(&call->invocation), outcome->reply);
	else if (outcome->reply != NULL)
		g_dbus_method_invocation_return_value(g_steal_pointer(&call->invocation),
						      outcome->reply);
	else
		lgd_error_return(g_steal_pointer(&call->invocation), outcome->error);
	g_clear_pointer(&outcome->reply, g_variant_unref);
	lgd_call_free(call);
	g_free(outcome);
	return G_SOURCE_REMOVE;
}

/* ---- jobs ---------------------------------------------------------------- */

/* Publishes a Job for @call's @operation (any thread that may wait: the
 * caller's uid is asked of the bus once per call), watching @cancellable
 * when given. NULL when the uid cannot be known: the work goes on
 * without a job. */
LgdJob *
lgd_call_start_job(LgdCall *call, const gchar *operation, GCancellable *cancellable)
{
	const gchar *objects[] = {call->object_path, NULL};
	g_autoptr(GError) error = NULL;
	guint32 uid;

	if (call->caller_uid < 0) {
		if (!lgd_job_lookup_uid(call->invocation, &uid, &error)) {
			g_info("no job for %s: cannot find the caller's uid: %s", operation,
			       error->message);
			return NULL;
		}
		call->caller_uid = uid;
	}
	return lgd_job_start(lgd_guest_get_context(call->guest)->jobs, operation, objects,
			     (guint32)call->caller_uid, lgd_call_option(call, "job-id"),
			     cancellable);
}

/* Runs @call's work in the current thread (a session's or the transfer
 * pool's), as a Job when it is a long operation. */
GVariant *
lgd_call_run_func(LgdSession *session, LgdCall *call, GError **error)
{
	if (call->job_operation != NULL && call->job == NULL) {
		call->job = lgd_call_start_job(call, call->job_operation, call->cancellable);
		if (call->job != NULL && call->cancellable == NULL)
			call->cancellable = g_object_ref(lgd_job_get_cancellable(call->job));
	}
	return call->func(session, call, error);
}

/* Whatever a cancelled call failed with (a pipe closed under libguestfs,
 * a launch that died), the caller learns it was cancelled. */
static GError *
lgd_call_cancelled_error(LgdCall *call, GError *error)
{
	GError *cancelled;

	if (error == NULL || call->cancellable == NULL ||
	    !g_cancellable_is_cancelled(call->cancellable) ||
	    g_error_matches(error, LGD_ERROR, LGD_ERROR_CANCELLED))
		return error;
	cancelled = g_error_new(LGD_ERROR, LGD_ERROR_CANCELLED, "Cancelled: %s", error->message);
	g_error_free(error);
	return cancelled;
}

/* Ends @call (taken), from any thread, with @reply or @error (taken). Its
 * job ends first: Completed comes before the reply. */
void
lgd_call_complete(LgdCall *call, GVariant *reply, GError *error)
{
	LgdCallOutcome *outcome;

	error = lgd_call_cancelled_error(call, error);
	if (call->job != NULL)
		lgd_job_complete(g_steal_pointer(&call->job), error);
	if (reply != NULL)
		g_variant_ref_sink(reply);
	if (call->done != NULL) {
		call->done(call, reply, error);
		lgd_call_free(call);
		return;
	}
	outcome = g_new0(LgdCallOutcome, 1);
	outcome->call = call;
	outcome->reply = reply;
	outcome->error = error;
	g_main_context_invoke(call->main_context, lgd_call_reply_idle, outcome);
}

/* Refuses @call (taken) with @error (taken), from its handler: nothing was
 * asked or queued. */
gboolean
lgd_call_return_error(LgdCall *call, GError *error)
{
	lgd_error_return(g_steal_pointer(&call->invocation), error);
	lgd_call_free(call);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---- authorize, then run ----------------------------------------------- */

/* Transfers that need no appliance (volume streams) each take a thread
 * and a libvirt connection: at most this many run at once, on a pool of
 * their own; the others wait in the pool's queue, holding neither. A
 * running one ends when done, or when its client has made no progress
 * for the transfer idle timeout (lgd-fd-io.c). */
static guint lgd_call_max_transfers = 16;

/* Set once at start-up (--max-volume-transfers), before any call. */
void
lgd_call_set_max_transfers(guint n)
{
	lgd_call_max_transfers = MAX(n, 1);
}

static void
lgd_call_thread(gpointer data, gpointer user_data)
{
	LgdCall *call = data;
	GError *error = NULL;
	/* bytes written to a volume behind any appliance that reads it */
	gboolean raw_write = g_strcmp0(call->action_id, LGD_ACTION_VOLUME_WRITE) == 0;
	GVariant *reply;

	if (raw_write)
		lgd_session_begin_disk_write();
	reply = lgd_call_run_func(NULL, call, &error);
	if (raw_write)
		lgd_session_end_disk_write();
	lgd_call_complete(call, reply, error);
}

static GThreadPool *
lgd_call_transfer_pool(void)
{
	static GThreadPool *pool;

	if (g_once_init_enter(&pool)) {
		/* not exclusive: its threads come and go with the work */
		GThreadPool *p = g_thread_pool_new(lgd_call_thread, NULL,
						   (gint)lgd_call_max_transfers, FALSE, NULL);

		g_once_init_leave(&pool, p);
	}
	return pool;
}

/* A denied call reaches neither the session nor a thread, so it starts
 * no appliance and opens no stream. */
static void
lgd_call_dispatch(LgdCall *call)
{
	if (call->session == NULL)
		lgd_call_complete(
		    call, NULL,
		    g_error_new_literal(LGD_ERROR, LGD_ERROR_NOT_FOUND, "The object is gone"));
	else if (call->own_thread)
		/* a transfer: may take long, so not a thread of GLib's shared
		 * pool, but of a bounded one */
		g_thread_pool_push(lgd_call_transfer_pool(), call, NULL);
	else
		lgd_session_push(call->session, call);
}

static void lgd_call_authorize_step(LgdCall *call, guint step);

static void
lgd_call_authorized(GObject *source, GAsyncResult *result, gpointer user_data)
{
	LgdCall *call = user_data;
	GError *error = NULL;

	if (!lgd_auth_check_finish(LGD_AUTH(source), result, &error)) {
		lgd_call_complete(call, NULL, error);
		return;
	}
	lgd_call_authorize_step(call, call->auth_step + 1);
}

/* Step 0 checks the call's path, step 1 its second path (Rename), then
 * the call runs. On the main loop: polkit's answer holds no thread. */
static void
lgd_call_authorize_step(LgdCall *call, guint step)
{
	const gchar *path = step == 0 ? call->path : call->path2;
	const gchar *requested = step == 0 ? call->requested_path : call->requested_path2;
	LgdAuthDetails details;

	call->auth_step = step;
	if (step > 1 || (step == 1 && call->path2 == NULL)) {
		lgd_call_dispatch(call);
		return;
	}
	lgd_call_details(call, path, requested, &details);
	lgd_auth_check_async(lgd_call_auth(call), call->invocation, &details, lgd_call_authorized,
			     call);
}

/* Counted against its caller's bound from here until it is freed; refused
 * with Busy beyond it, before polkit is asked. */
static void
lgd_call_authorize_async(LgdCall *call)
{
	const gchar *sender = g_dbus_method_invocation_get_sender(call->invocation);
	GError *error = NULL;

	if (sender != NULL) { /* NULL: a peer-to-peer connection, the only caller */
		if (!lgd_admit_take(sender, &error)) {
			lgd_call_complete(call, NULL, error);
			return;
		}
		call->caller = g_strdup(sender);
	}
	lgd_call_authorize_step(call, 0);
}

/* Authorizes @call (taken) off the main loop, then queues @func on the
 * object's session, and replies. */
gboolean
lgd_call_run_on_session(LgdCall *call, LgdJobFunc func)
{
	call->func = func;
	lgd_call_authorize_async(call);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* The same for work that needs no appliance (a volume stream): @func runs
 * in a thread of the bounded transfer pool, in the order the calls were
 * authorized. */
gboolean
lgd_call_run_in_thread(LgdCall *call, LgdJobFunc func)
{
	call->func = func;
	call->own_thread = TRUE;
	lgd_call_authorize_async(call);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

gconstpointer
lgd_call_find_method(GDBusMethodInvocation *invocation,
		     gconstpointer table,
		     gsize n_entries,
		     gsize entry_size)
{
	const gchar *name = g_dbus_method_invocation_get_method_name(invocation);

	for (gsize i = 0; i < n_entries; i++) {
		const gchar *const *entry =
		    (const gchar *const *)((const guint8 *)table + i * entry_size);

		if (g_str_equal(*entry, name))
			return entry;
	}
	g_assert_not_reached();
}
