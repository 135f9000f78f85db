#include "config.h"

#include <string.h>
#include <unistd.h>

#include "lgd-args.h"
#include "lgd-error.h"
#include "lgd-generated.h"
#include "lgd-impl.h"
#include "lgd-job-rate.h"
#include "lgd-job.h"
#include "lgd-path.h"

/* Properties follow the counters at most this often: a transfer moves a
 * buffer many times a second, a client needs a few updates. */
#define LGD_JOB_UPDATE_MS 250
/* The bus daemon answers GetConnectionUnixUser at once; this only bounds
 * a bus that does not. */
#define LGD_JOB_UID_TIMEOUT_MS (10 * 1000)

struct _LgdJobs {
	GDBusObjectManagerServer *server;
	LgdAuth *auth;
	GMainContext *main_context;
	gint next_id; /* atomic */
};

typedef struct _LgdJobImpl LgdJobImpl;

struct _LgdJob {
	gint ref_count; /* atomic */
	LgdJobs *jobs;
	gchar *path;
	gchar *operation;
	GStrv objects;
	guint32 uid;
	gchar *job_id;
	GCancellable *cancellable;
	gint cancel_fd; /* readable once cancelled, for poll() */
	gint completed; /* atomic: lgd_job_complete() was called */

	GMutex lock; /* guards the counters, which the working thread feeds */
	guint64 done;
	guint64 total;
	gboolean counts_items;
	const gchar *transport; /* static; NULL until known */

	/* main loop only */
	LgdDBusObjectSkeleton *object;
	LgdJobImpl *iface;
	GSource *timer;
	LgdJobRate rate;
};

LgdJobs *
lgd_jobs_new(GDBusObjectManagerServer *server, LgdAuth *auth)
{
	LgdJobs *jobs = g_new0(LgdJobs, 1);

	jobs->server = g_object_ref(server);
	jobs->auth = g_object_ref(auth);
	jobs->main_context = g_main_context_ref_thread_default();
	return jobs;
}

void
lgd_jobs_free(LgdJobs *jobs)
{
	if (jobs == NULL)
		return;
	g_object_unref(jobs->server);
	g_object_unref(jobs->auth);
	g_main_context_unref(jobs->main_context);
	g_free(jobs);
}

/* The job-id option of a method, for its handler: refused before polkit
 * when too long. Its type was checked with the method's other options. */
gboolean
lgd_job_check_id(GVariant *options, GError **error)
{
	const gchar *id = NULL;

	if (options == NULL || !g_variant_lookup(options, "job-id", "&s", &id))
		return TRUE;
	if (strlen(id) <= LGD_JOB_ID_MAX)
		return TRUE;
	g_set_error(error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT,
		    "The option 'job-id' is %zu bytes long; the limit is %d", strlen(id),
		    LGD_JOB_ID_MAX);
	return FALSE;
}

/* The Unix user behind @invocation's caller, asked of the bus daemon; for
 * a thread that may wait (bounded). */
gboolean
lgd_job_lookup_uid(GDBusMethodInvocation *invocation, guint32 *uid, GError **error)
{
	const gchar *sender = g_dbus_method_invocation_get_sender(invocation);
	g_autoptr(GVariant) reply = NULL;

	if (sender == NULL) {
		/* a peer-to-peer connection: the peer is the service's user */
		*uid = getuid();
		return TRUE;
	}
	reply = g_dbus_connection_call_sync(
	    g_dbus_method_invocation_get_connection(invocation), "org.freedesktop.DBus",
	    "/org/freedesktop/DBus", "org.freedesktop.DBus", "GetConnectionUnixUser",
	    g_variant_new("(s)", sender), G_VARIANT_TYPE("(u)"), G_DBUS_CALL_FLAGS_NONE,
	    LGD_JOB_UID_TIMEOUT_MS, NULL, error);
	if (reply == NULL)
		return FALSE;
	g_variant_get(reply, "(u)", uid);
	return TRUE;
}

static LgdJob *
lgd_job_ref(LgdJob *job)
{
	g_atomic_int_inc(&job->ref_count);
	return job;
}

static void
lgd_job_unref(LgdJob *job)
{
	if (!g_atomic_int_dec_and_test(&job->ref_count))
		return;
	g_clear_object(&job->iface);
	g_clear_object(&job->object);
	if (job->cancel_fd >= 0)
		g_cancellable_release_fd(job->cancellable);
	g_object_unref(job->cancellable);
	g_mutex_clear(&job->lock);
	g_free(job->path);
	g_free(job->operation);
	g_strfreev(job->objects);
	g_free(job->job_id);
	g_free(job);
}

/* ---- org.libvirt.GuestFS.Job: Cancel ------------------------------------ */

#define LGD_TYPE_JOB_IMPL (lgd_job_impl_get_type())
G_DECLARE_FINAL_TYPE(LgdJobImpl, lgd_job_impl, LGD, JOB_IMPL, LgdDBusJobSkeleton)

struct _LgdJobImpl {
	LgdDBusJobSkeleton parent_instance;
	LgdJob *job; /* the job owns its interface: set while it is published */
};

typedef struct {
	LgdJob *job; /* a reference: the job may end meanwhile */
	GDBusMethodInvocation *invocation;
} LgdJobCancel;

static void
lgd_job_cancel_free(LgdJobCancel *cancel)
{
	lgd_job_unref(cancel->job);
	g_clear_object(&cancel->invocation);
	g_free(cancel);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(LgdJobCancel, lgd_job_cancel_free)

static void
lgd_job_cancel_now(LgdJobCancel *cancel)
{
	g_info("job %s (%s) cancelled", cancel->job->path, cancel->job->operation);
	g_cancellable_cancel(cancel->job->cancellable);
	lgd_dbus_job_complete_cancel(LGD_DBUS_JOB(cancel->job->iface),
				     g_steal_pointer(&cancel->invocation));
}

static void
lgd_job_cancel_authorized(GObject *source, GAsyncResult *result, gpointer user_data)
{
	g_autoptr(LgdJobCancel) cancel = user_data;
	GError *error = NULL;

	if (!lgd_auth_check_finish(LGD_AUTH(source), result, &error)) {
		lgd_error_return(g_steal_pointer(&cancel->invocation), error);
		return;
	}
	lgd_job_cancel_now(cancel);
}

/* The user who started the job may end it; anyone else needs polkit's
 * manage action. */
static void
lgd_job_cancel_got_uid(GObject *source, GAsyncResult *result, gpointer user_data)
{
	g_autoptr(LgdJobCancel) cancel = user_data;
	g_autoptr(GVariant) reply = NULL;
	GError *error = NULL;
	LgdAuthDetails details = {.action_id = LGD_ACTION_MANAGE};
	GDBusMethodInvocation *invocation;
	LgdAuth *auth;
	guint32 uid;

	reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, &error);
	if (reply == NULL) {
		lgd_error_return(g_steal_pointer(&cancel->invocation), error);
		return;
	}
	g_variant_get(reply, "(u)", &uid);
	if (uid == cancel->job->uid) {
		lgd_job_cancel_now(cancel);
		return;
	}
	auth = cancel->job->jobs->auth;
	invocation = cancel->invocation;
	lgd_auth_check_async(auth, invocation, &details, lgd_job_cancel_authorized,
			     g_steal_pointer(&cancel));
}

static gboolean
lgd_job_handle_cancel(LgdDBusJob *iface, GDBusMethodInvocation *invocation, GVariant *options)
{
	static const LgdOptionSpec specs[] = {{NULL}};
	LgdJob *job = LGD_JOB_IMPL(iface)->job;
	const gchar *sender = g_dbus_method_invocation_get_sender(invocation);
	LgdJobCancel *cancel;
	GError *error = NULL;

	if (!lgd_args_check_options(options, specs, &error)) {
		lgd_error_return(invocation, error);
		return G_DBUS_METHOD_INVOCATION_HANDLED;
	}
	if (job == NULL || g_atomic_int_get(&job->completed) ||
	    g_cancellable_is_cancelled(job->cancellable)) {
		g_set_error(&error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT,
			    "The job %s is already ending; there is nothing to cancel",
			    g_dbus_method_invocation_get_object_path(invocation));
		lgd_error_return(invocation, error);
		return G_DBUS_METHOD_INVOCATION_HANDLED;
	}
	cancel = g_new0(LgdJobCancel, 1);
	cancel->job = lgd_job_ref(job);
	cancel->invocation = invocation;
	if (sender == NULL) {
		/* a peer-to-peer connection: the peer is the service's user */
		lgd_job_cancel_now(cancel);
		lgd_job_cancel_free(cancel);
		return G_DBUS_METHOD_INVOCATION_HANDLED;
	}
	g_dbus_connection_call(
	    g_dbus_method_invocation_get_connection(invocation), "org.freedesktop.DBus",
	    "/org/freedesktop/DBus", "org.freedesktop.DBus", "GetConnectionUnixUser",
	    g_variant_new("(s)", sender), G_VARIANT_TYPE("(u)"), G_DBUS_CALL_FLAGS_NONE,
	    LGD_JOB_UID_TIMEOUT_MS, NULL, lgd_job_cancel_got_uid, cancel);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static const LgdHandler lgd_job_handlers[] = {
    LGD_HANDLER(Job, cancel, lgd_job_handle_cancel),
};

LGD_DEFINE_IMPL(LgdJobImpl, lgd_job_impl, JOB, LGD_HANDLERS(lgd_job_handlers))

/* ---- the object, on the main loop --------------------------------------- */

/* Copies the counters into the properties; the generated skeleton sends
 * only those that changed. */
static void
lgd_job_update(LgdJob *job)
{
	LgdDBusJob *iface = LGD_DBUS_JOB(job->iface);
	guint64 done;
	guint64 total;
	gboolean items;
	const gchar *transport;

	g_mutex_lock(&job->lock);
	done = job->done;
	total = job->total;
	items = job->counts_items;
	transport = job->transport;
	g_mutex_unlock(&job->lock);
	lgd_dbus_job_set_transport(iface, transport != NULL ? transport : "");
	lgd_job_rate_sample(&job->rate, g_get_monotonic_time(), done);
	lgd_dbus_job_set_bytes_done(iface, done);
	lgd_dbus_job_set_bytes_total(iface, total);
	lgd_dbus_job_set_progress(iface, lgd_job_rate_progress(done, total));
	/* items per second would read as bytes per second */
	lgd_dbus_job_set_rate(iface, items ? 0 : lgd_job_rate_get(&job->rate));
	lgd_dbus_job_set_expected_end_time(
	    iface, lgd_job_rate_expected_end(&job->rate, g_get_real_time(), done, total));
}

static gboolean
lgd_job_tick(gpointer user_data)
{
	lgd_job_update(user_data);
	return G_SOURCE_CONTINUE;
}

static gboolean
lgd_job_publish_idle(gpointer user_data)
{
	LgdJob *job = user_data; /* the main loop's reference */
	LgdDBusJob *iface;

	job->iface = g_object_new(LGD_TYPE_JOB_IMPL, NULL);
	job->iface->job = job;
	iface = LGD_DBUS_JOB(job->iface);
	lgd_dbus_job_set_operation(iface, job->operation);
	lgd_dbus_job_set_objects(iface, (const gchar *const *)job->objects);
	lgd_dbus_job_set_started_by_uid(iface, job->uid);
	lgd_dbus_job_set_cancelable(iface, TRUE);
	lgd_dbus_job_set_job_id(iface, job->job_id);
	lgd_job_update(job);
	job->object = lgd_dbus_object_skeleton_new(job->path);
	lgd_dbus_object_skeleton_set_job(job->object, iface);
	g_dbus_object_manager_server_export(job->jobs->server, G_DBUS_OBJECT_SKELETON(job->object));
	job->timer = g_timeout_source_new(LGD_JOB_UPDATE_MS);
	g_source_set_callback(job->timer, lgd_job_tick, job, NULL);
	g_source_attach(job->timer, job->jobs->main_context);
	return G_SOURCE_REMOVE;
}

typedef struct {
	LgdJob *job; /* the working thread's reference */
	gboolean success;
	gchar *message;
} LgdJobEnd;

/* The last values, then Completed, then the object goes. */
static gboolean
lgd_job_finish(gpointer user_data)
{
	LgdJobEnd *end = user_data;
	LgdJob *job = end->job;

	lgd_job_update(job);
	g_dbus_interface_skeleton_flush(G_DBUS_INTERFACE_SKELETON(job->iface));
	lgd_dbus_job_emit_completed(LGD_DBUS_JOB(job->iface), end->success, end->message);
	g_source_destroy(job->timer);
	g_clear_pointer(&job->timer, g_source_unref);
	g_dbus_object_manager_server_unexport(job->jobs->server, job->path);
	job->iface->job = NULL;
	lgd_job_unref(job); /* the main loop's */
	lgd_job_unref(job); /* the working thread's */
	g_free(end->message);
	g_free(end);
	return G_SOURCE_REMOVE;
}

/* ---- the working thread's side ----------------------------------------- */

/* A job (any thread) for @operation on @objects, started by @uid with the
 * caller's @job_id (NULL: none), not published yet: what is known before
 * the work begins (lgd_job_set_total()) is set first, then
 * lgd_job_publish() shows it. The job watches @cancellable when given (a
 * launch for a call that has a job of its own: cancelling either ends
 * both), else one of its own. The caller owns the job until
 * lgd_job_complete(). */
LgdJob *
lgd_job_new(LgdJobs *jobs,
	    const gchar *operation,
	    const gchar *const *objects,
	    guint32 uid,
	    const gchar *job_id,
	    GCancellable *cancellable)
{
	LgdJob *job = g_new0(LgdJob, 1);
	guint id = (guint)g_atomic_int_add(&jobs->next_id, 1);

	job->ref_count = 1;
	job->jobs = jobs;
	job->path = g_strdup_printf(LGD_ROOT_PATH "/jobs/%u", id);
	job->operation = g_strdup(operation);
	job->objects = g_strdupv((gchar **)objects);
	job->uid = uid;
	job->job_id = g_strdup(job_id != NULL ? job_id : "");
	job->cancellable = cancellable != NULL ? g_object_ref(cancellable) : g_cancellable_new();
	job->cancel_fd = g_cancellable_get_fd(job->cancellable);
	g_mutex_init(&job->lock);
	return job;
}

/* The object appears on the main loop (any thread), before anything the
 * caller queues there later. Once per job, before lgd_job_complete(). */
void
lgd_job_publish(LgdJob *job)
{
	g_debug("job %s: %s", job->path, job->operation);
	g_main_context_invoke(job->jobs->main_context, lgd_job_publish_idle, lgd_job_ref(job));
}

/* lgd_job_new() and lgd_job_publish() at once, for a job whose totals
 * come later or never. */
LgdJob *
lgd_job_start(LgdJobs *jobs,
	      const gchar *operation,
	      const gchar *const *objects,
	      guint32 uid,
	      const gchar *job_id,
	      GCancellable *cancellable)
{
	LgdJob *job = lgd_job_new(jobs, operation, objects, uid, job_id, cancellable);

	lgd_job_publish(job);
	return job;
}

GCancellable *
lgd_job_get_cancellable(LgdJob *job)
{
	return job->cancellable;
}

/* Readable once the job is cancelled: for a thread that waits in poll(). */
gint
lgd_job_get_cancel_fd(LgdJob *job)
{
	return job->cancel_fd;
}

gboolean
lgd_job_is_cancelled(LgdJob *job)
{
	return g_cancellable_is_cancelled(job->cancellable);
}

/* What the operation moves in all (0: unknown). */
void
lgd_job_set_total(LgdJob *job, guint64 total)
{
	g_mutex_lock(&job->lock);
	job->total = total;
	g_mutex_unlock(&job->lock);
}

void
lgd_job_add_done(LgdJob *job, guint64 n)
{
	g_mutex_lock(&job->lock);
	job->done += n;
	g_mutex_unlock(&job->lock);
}

/* How a transfer moves its bytes (a static string), once it is known:
 * "libvirt-stream" or "local-copy" for a volume's. */
void
lgd_job_set_transport(LgdJob *job, const gchar *transport)
{
	g_mutex_lock(&job->lock);
	job->transport = transport;
	g_mutex_unlock(&job->lock);
}

/* The job counts items (domains), not bytes: no rate is shown. */
void
lgd_job_set_counts_items(LgdJob *job)
{
	g_mutex_lock(&job->lock);
	job->counts_items = TRUE;
	g_mutex_unlock(&job->lock);
}

/* Ends @job (taken) with @error's message, or success when NULL: queued
 * to the main loop, where Completed is sent and the object removed before
 * anything queued after this, such as the reply of the call. */
void
lgd_job_complete(LgdJob *job, const GError *error)
{
	LgdJobEnd *end;

	if (job == NULL)
		return;
	g_atomic_int_set(&job->completed, TRUE);
	end = g_new0(LgdJobEnd, 1);
	end->job = job;
	end->success = error == NULL;
	end->message = g_strdup(error != NULL ? error->message : "");
	g_main_context_invoke(job->jobs->main_context, lgd_job_finish, end);
}
