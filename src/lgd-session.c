#include "config.h"

#include <string.h>

#include "lgd-appliance.h"
#include "lgd-call.h"
#include "lgd-error.h"
#include "lgd-resolve.h"
#include "lgd-session.h"

/* Calls closer together than this skip the liveness ping. */
#define LGD_SESSION_PING_AFTER_US (2 * G_USEC_PER_SEC)

/* Queued after the last call of a closed session: stops its thread. */
static LgdCall *const lgd_session_quit = (LgdCall *)&lgd_session_quit;
/* queued by lgd_session_drop(): stop the appliance, keep the session */
static LgdCall *const lgd_session_drop_marker = (LgdCall *)&lgd_session_drop_marker;

struct _LgdSession {
	gint ref_count;
	const LgdSessionConfig *config;
	LgdDriveSource *source;
	GObject *state_iface; /* has an "appliance-state" property */
	GMainContext *main_context;

	GMutex lock; /* guards queue hand-over and the thread's life */
	GAsyncQueue *calls;
	gboolean thread_running;
	gboolean closed;
	/* set by lgd_session_drop(), atomic: the disks' view may be changing
	 * under the appliance until it is stopped (nothing learnt is kept) */
	gint view_changed;
	gint disk_writes_at_launch; /* lgd_sessions_disk_writes then */

	/* owned by the session thread */
	guestfs_h *g;
	gboolean g_read_only;
	gboolean holds_slot;
	LgdDrivesLease *lease;
	gchar *mount_tag; /* what is mounted now, see lgd-mount.c */
	/* what cannot change while this appliance runs with this mount
	 * layout: dropped on relaunch and on any remount or inspection */
	GStrv roots;			/* the inspection's, see lgd-mount.c */
	LgdResolveCache *resolve_cache; /* used only by a read-only appliance */
	gint64 last_used;		/* monotonic time of the last call */
	LgdCall *current;		/* the call running, whose launch is a job of its own */
};

/* Raw writes to volumes (Volume.Upload), which may be under a running
 * appliance's feet: those in flight, and a count of every start and end.
 * An appliance trusts nothing it learnt of its filesystems while one runs
 * or once one has run since its launch. */
static gint lgd_sessions_disk_writers;
static gint lgd_sessions_disk_writes;

/* Sessions alive, so that exiting can wait for their appliances. */
static GMutex lgd_sessions_lock;
static GCond lgd_sessions_cond;
static guint lgd_sessions_alive;

static const gchar *const lgd_appliance_states[] = {
    [LGD_APPLIANCE_STOPPED] = "stopped",
    [LGD_APPLIANCE_STARTING] = "starting",
    [LGD_APPLIANCE_RUNNING] = "running",
    [LGD_APPLIANCE_FAILED] = "failed",
};

const gchar *
lgd_appliance_state_to_string(LgdApplianceState state)
{
	return lgd_appliance_states[state];
}

static void lgd_session_free(LgdSession *self);

/* ---- appliance state, published from the main loop --------------------- */

typedef struct {
	GObject *iface;
	LgdApplianceState state;
} LgdStateUpdate;

static gboolean
lgd_session_publish_state(gpointer user_data)
{
	LgdStateUpdate *update = user_data;

	g_object_set(update->iface, "appliance-state", lgd_appliance_state_to_string(update->state),
		     NULL);
	g_object_unref(update->iface);
	g_free(update);
	return G_SOURCE_REMOVE;
}

static void
lgd_session_set_state(LgdSession *self, LgdApplianceState state)
{
	LgdStateUpdate *update = g_new0(LgdStateUpdate, 1);

	update->iface = g_object_ref(self->state_iface);
	update->state = state;
	g_main_context_invoke(self->main_context, lgd_session_publish_state, update);
}

/* ---- the handle -------------------------------------------------------- */

static void
lgd_session_shutdown(LgdSession *self)
{
	lgd_session_set_mount_tag(self, NULL);
	if (self->g != NULL) {
		/* flushes and closes the drives; errors only mean it was dead */
		guestfs_shutdown(self->g);
		guestfs_close(self->g);
		self->g = NULL;
	}
	g_clear_pointer(&self->lease, lgd_drives_lease_release);
	if (self->holds_slot) {
		lgd_limit_release(self->config->limit);
		self->holds_slot = FALSE;
	}
}

static gboolean
lgd_session_launch_appliance(LgdSession *self,
			     gboolean read_only,
			     GCancellable *cancellable,
			     GError **error)
{
	const gchar *uri = lgd_drive_source_get_uri(self->source);

	lgd_session_set_state(self, LGD_APPLIANCE_STARTING);
	/* a view of the disks as they are now (a drop after this one stops
	 * this appliance as well) */
	g_atomic_int_set(&self->view_changed, 0);
	self->disk_writes_at_launch = g_atomic_int_get(&lgd_sessions_disk_writes);
	if (!lgd_limit_acquire(self->config->limit, cancellable)) {
		g_set_error_literal(error, LGD_ERROR, LGD_ERROR_CANCELLED,
				    "The call was cancelled while it waited for an appliance slot "
				    "(--max-appliances)");
		lgd_session_set_state(self, LGD_APPLIANCE_STOPPED);
		return FALSE;
	}
	self->holds_slot = TRUE;

	self->g = lgd_appliance_create(self->config, uri, error);
	if (self->g == NULL)
		goto failed;
	self->lease = lgd_drives_add(self->source, self->g, read_only, NULL, error);
	if (self->lease == NULL ||
	    !lgd_appliance_launch(self->g, self->config, uri, cancellable, error))
		goto failed;
	self->g_read_only = read_only;
	lgd_session_set_state(self, LGD_APPLIANCE_RUNNING);
	return TRUE;

failed:
	lgd_session_shutdown(self);
	lgd_session_set_state(self, LGD_APPLIANCE_FAILED);
	return FALSE;
}

/* A launch is a job of its own, for the call that needs the appliance;
 * it shares that call's cancellable, so cancelling either ends both. */
static gboolean
lgd_session_launch(LgdSession *self, gboolean read_only, GError **error)
{
	LgdCall *call = self->current;
	LgdJob *job = NULL;
	GError *launch_error = NULL;
	gboolean ok;

	if (call != NULL)
		job = lgd_call_start_job(call, "appliance-launch", call->cancellable);
	ok = lgd_session_launch_appliance(
	    self, read_only, job != NULL ? lgd_job_get_cancellable(job) : NULL, &launch_error);
	lgd_job_complete(job, launch_error);
	if (!ok)
		g_propagate_error(error, launch_error);
	return ok;
}

static gboolean
lgd_session_ensure(LgdSession *self, gboolean read_only, GError **error)
{
	gint64 now = g_get_monotonic_time();
	gboolean idle = now - self->last_used > LGD_SESSION_PING_AFTER_US;

	self->last_used = now;
	/* An appliance that died while idle is only noticed by talking to
	 * it: after a pause, a ping costs one round trip and spares the
	 * caller an ApplianceFailed. */
	if (self->g != NULL && idle && guestfs_is_ready(self->g) > 0)
		guestfs_ping_daemon(self->g);
	if (self->g != NULL && guestfs_is_ready(self->g) > 0 && (read_only || !self->g_read_only))
		return TRUE;
	if (self->g != NULL) {
		/* dead, or read-only where a write needs read-write */
		lgd_session_shutdown(self);
		lgd_session_set_state(self, LGD_APPLIANCE_STOPPED);
	}
	return lgd_session_launch(self, read_only, error);
}

/* The handle of a running appliance, launched if needed. Reads take any
 * appliance; the read-write one is for writes. */
guestfs_h *
lgd_session_get_handle(LgdSession *self, GError **error)
{
	if (!lgd_session_ensure(self, TRUE, error))
		return NULL;
	return self->g;
}

guestfs_h *
lgd_session_get_handle_rw(LgdSession *self, GError **error)
{
	if (!lgd_session_ensure(self, FALSE, error))
		return NULL;
	return self->g;
}

gboolean
lgd_session_is_read_write(LgdSession *self)
{
	return self->g != NULL && !self->g_read_only;
}

const gchar *
lgd_session_get_mount_tag(LgdSession *self)
{
	return self->mount_tag;
}

/* Every remount (and NULL: unmounted, inspected, shut down) drops what was
 * learnt of the filesystems; NULL drops the roots too, which only a new
 * inspection or appliance changes. */
void
lgd_session_set_mount_tag(LgdSession *self, const gchar *tag)
{
	if (g_strcmp0(tag, self->mount_tag) != 0)
		lgd_resolve_cache_clear(self->resolve_cache);
	if (tag == NULL)
		g_clear_pointer(&self->roots, g_strfreev);
	g_free(self->mount_tag);
	self->mount_tag = g_strdup(tag);
}

const gchar *const *
lgd_session_get_roots(LgdSession *self)
{
	return (const gchar *const *)self->roots;
}

void
lgd_session_set_roots(LgdSession *self, const gchar *const *roots)
{
	g_strfreev(self->roots);
	self->roots = g_strdupv((gchar **)roots);
}

/* Where path resolution keeps the directories and links it found, or NULL
 * when they may change: only a read-only appliance (nothing in the call's
 * path can write to its disks) with the guest mounted as it is now. A
 * read-write one walks every component at every call. */
LgdResolveCache *
lgd_session_get_resolve_cache(LgdSession *self)
{
	if (g_atomic_int_get(&self->view_changed) || g_atomic_int_get(&lgd_sessions_disk_writers) ||
	    g_atomic_int_get(&lgd_sessions_disk_writes) != self->disk_writes_at_launch) {
		/* the domain started or stopped, or a volume was written: until
		 * the appliance is stopped, its disks may be changing under it */
		lgd_resolve_cache_clear(self->resolve_cache);
		return NULL;
	}
	if (self->g == NULL || !self->g_read_only || self->mount_tag == NULL)
		return NULL;
	if (self->resolve_cache == NULL)
		self->resolve_cache = lgd_resolve_cache_new();
	return self->resolve_cache;
}

void
lgd_session_stop_now(LgdSession *self)
{
	lgd_session_shutdown(self);
	lgd_session_set_state(self, LGD_APPLIANCE_STOPPED);
}

LgdDriveSource *
lgd_session_get_source(LgdSession *self)
{
	return self->source;
}

/* A failed libguestfs call either is the guest's answer (no such file)
 * or means the appliance died; the latter is ApplianceFailed, and the
 * next call launches a new one. */
void
lgd_session_set_error_from_guestfs(LgdSession *self, GError **error, const gchar *what)
{
	const char *msg = guestfs_last_error(self->g);
	int errnum = guestfs_last_errno(self->g);

	if (guestfs_is_ready(self->g) <= 0) {
		g_set_error(error, LGD_ERROR, LGD_ERROR_APPLIANCE_FAILED,
			    "%s: the appliance died: %s", what,
			    msg != NULL ? msg : "unknown error");
		return;
	}
	g_set_error(error, LGD_ERROR, lgd_error_code_from_errno(errnum), "%s: %s", what,
		    msg != NULL ? msg : g_strerror(errnum));
}

/* Around a raw write to a volume (any thread). */
void
lgd_session_begin_disk_write(void)
{
	g_atomic_int_inc(&lgd_sessions_disk_writers);
	g_atomic_int_inc(&lgd_sessions_disk_writes);
}

void
lgd_session_end_disk_write(void)
{
	g_atomic_int_inc(&lgd_sessions_disk_writes);
	(void)g_atomic_int_add(&lgd_sessions_disk_writers, -1);
}

/* ---- the thread -------------------------------------------------------- */

static void
lgd_session_run(LgdSession *self, LgdCall *call)
{
	GError *error = NULL;
	GVariant *reply;

	self->current = call;
	reply = lgd_call_run_func(self, call, &error);
	self->current = NULL;

	if (self->g != NULL && guestfs_is_ready(self->g) <= 0) {
		lgd_session_shutdown(self);
		lgd_session_set_state(self, LGD_APPLIANCE_FAILED);
	}
	lgd_call_complete(call, reply, error);
}

/* A session counts as alive (lgd_session_wait_all) until it is closed and
 * its thread, if any, has shut its appliance down: references that calls
 * still hold keep its memory, not an appliance. */
static void
lgd_sessions_release(void)
{
	g_mutex_lock(&lgd_sessions_lock);
	lgd_sessions_alive--;
	g_cond_broadcast(&lgd_sessions_cond);
	g_mutex_unlock(&lgd_sessions_lock);
}

/* The thread ends (TRUE) on @quit, or when nothing is queued. */
static gboolean
lgd_session_thread_may_exit(LgdSession *self, gboolean quit)
{
	gboolean done;
	gboolean release;

	g_mutex_lock(&self->lock);
	done = quit || g_async_queue_length(self->calls) == 0;
	if (done)
		self->thread_running = FALSE;
	release = done && self->closed;
	g_mutex_unlock(&self->lock);
	if (release)
		lgd_sessions_release();
	return done;
}

/* Exits when the queue is empty and no appliance is up, or when the
 * session is closed; an idle appliance is shut down after the idle
 * timeout. Holds a reference to the session while it runs. */
static gpointer
lgd_session_thread(gpointer user_data)
{
	LgdSession *self = user_data;

	for (;;) {
		/* a read-write appliance holds the domain's disks (qemu's locks
		 * keep the domain from starting): it goes soon after the last
		 * write, and the next read launches a read-only one */
		guint seconds = self->g != NULL && !self->g_read_only ? self->config->write_grace
								      : self->config->idle_timeout;
		guint64 timeout = (guint64)seconds * G_USEC_PER_SEC;
		LgdCall *call;

		if (self->g != NULL)
			call = g_async_queue_timeout_pop(self->calls, timeout);
		else
			call = g_async_queue_try_pop(self->calls);
		if (call == lgd_session_quit) {
			lgd_session_shutdown(self);
			lgd_session_thread_may_exit(self, TRUE);
			break;
		}
		if (call == lgd_session_drop_marker) {
			if (self->g != NULL) {
				g_info("the domain started or stopped: stopping the appliance that "
				       "read its disks before");
				lgd_session_shutdown(self);
				lgd_session_set_state(self, LGD_APPLIANCE_STOPPED);
			}
			continue;
		}
		if (call != NULL) {
			lgd_session_run(self, call);
			continue;
		}
		if (self->g != NULL) {
			g_debug("appliance idle for %u s; stopping it", seconds);
			lgd_session_shutdown(self);
			lgd_session_set_state(self, LGD_APPLIANCE_STOPPED);
		}
		if (lgd_session_thread_may_exit(self, FALSE))
			break;
	}
	lgd_session_unref(self);
	return NULL;
}

/* Queues @call (taken), which the session's thread runs and completes;
 * the call of a closed session ends at once with NotFound. */
void
lgd_session_push(LgdSession *self, LgdCall *call)
{
	g_mutex_lock(&self->lock);
	if (self->closed) {
		g_mutex_unlock(&self->lock);
		lgd_call_complete(
		    call, NULL,
		    g_error_new_literal(LGD_ERROR, LGD_ERROR_NOT_FOUND, "The object is gone"));
		return;
	}
	g_async_queue_push(self->calls, call);
	if (!self->thread_running) {
		self->thread_running = TRUE;
		g_thread_unref(
		    g_thread_new("lgd-session", lgd_session_thread, lgd_session_ref(self)));
	}
	g_mutex_unlock(&self->lock);
}

LgdSession *
lgd_session_new(const LgdSessionConfig *config, LgdDriveSource *source, GObject *state_iface)
{
	LgdSession *self = g_new0(LgdSession, 1);

	self->ref_count = 1;
	self->config = config;
	self->source = source;
	self->state_iface = g_object_ref(state_iface);
	self->main_context = g_main_context_ref_thread_default();
	g_mutex_init(&self->lock);
	self->calls = g_async_queue_new();
	g_mutex_lock(&lgd_sessions_lock);
	lgd_sessions_alive++;
	g_mutex_unlock(&lgd_sessions_lock);
	g_object_set(state_iface, "appliance-state",
		     lgd_appliance_state_to_string(LGD_APPLIANCE_STOPPED), NULL);
	return self;
}

static void
lgd_session_free(LgdSession *self)
{
	lgd_session_shutdown(self);
	lgd_resolve_cache_free(self->resolve_cache);
	g_async_queue_unref(self->calls);
	g_mutex_clear(&self->lock);
	g_main_context_unref(self->main_context);
	g_object_unref(self->state_iface);
	lgd_drive_source_free(self->source);
	g_free(self);
}

/* TRUE when every closed session has shut its appliance down in time. */
gboolean
lgd_session_wait_all(guint timeout_seconds)
{
	gint64 deadline = g_get_monotonic_time() + (gint64)timeout_seconds * G_USEC_PER_SEC;
	gboolean done;

	g_mutex_lock(&lgd_sessions_lock);
	while (lgd_sessions_alive > 0 &&
	       g_cond_wait_until(&lgd_sessions_cond, &lgd_sessions_lock, deadline))
		;
	done = lgd_sessions_alive == 0;
	g_mutex_unlock(&lgd_sessions_lock);
	return done;
}

LgdSession *
lgd_session_ref(LgdSession *self)
{
	g_atomic_int_inc(&self->ref_count);
	return self;
}

void
lgd_session_unref(LgdSession *self)
{
	if (g_atomic_int_dec_and_test(&self->ref_count))
		lgd_session_free(self);
}

/* The object is gone: the session finishes what is queued, stops its
 * appliance and refuses further calls, without the caller waiting for any
 * of it. Drops the caller's reference. */
void
lgd_session_close(LgdSession *self)
{
	gboolean release;

	if (self == NULL)
		return;
	g_mutex_lock(&self->lock);
	self->closed = TRUE;
	if (self->thread_running)
		g_async_queue_push(self->calls, lgd_session_quit);
	release = !self->thread_running;
	g_mutex_unlock(&self->lock);
	if (release)
		lgd_sessions_release();
	lgd_session_unref(self);
}

/* The disks' view changed under the appliance (the domain started, so a
 * shut-off view is stale; or stopped, ending its backup job): the
 * appliance is stopped after the calls already queued, and the next call
 * launches one on the current view. */
void
lgd_session_drop(LgdSession *self)
{
	g_mutex_lock(&self->lock);
	g_atomic_int_set(&self->view_changed, 1);
	/* no thread, no appliance: nothing to drop */
	if (self->thread_running && !self->closed)
		g_async_queue_push(self->calls, lgd_session_drop_marker);
	g_mutex_unlock(&self->lock);
}
