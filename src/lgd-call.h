/*
 * One method call, from its handler to its reply: the one record every
 * call carries along its one path (see HACKING.md):
 *
 *   handler (main loop): parse and validate -> lgd_call_run_*()
 *   main loop: polkit asked asynchronously, bounded (lgd_auth_check_async)
 *   the object's session thread, or the bounded transfer pool: the work
 *   main loop: state applied and flushed, then the reply
 */
#pragma once

#include <sys/stat.h>

#include "lgd-auth.h"
#include "lgd-job.h"
#include "lgd-session.h"

G_BEGIN_DECLS

typedef struct _LgdGuest LgdGuest;

/* The work of a call, in the session's thread (@session set) or in a
 * thread of the transfer pool (@session NULL): the reply (a tuple), or
 * NULL with @error set. */
typedef GVariant *(*LgdJobFunc)(LgdSession *session, LgdCall *call, GError **error);

/* Gets the outcome of a call that is part of another (InspectDomains),
 * instead of a reply: @reply and @error are its own; @call is not. */
typedef void (*LgdCallDone)(LgdCall *call, GVariant *reply, GError *error);

/* Sends a call's successful @reply (a tuple) with the generated, typed
 * complete function of its method. Takes @invocation. Main loop. */
typedef void (*LgdCallReply)(gpointer iface, GDBusMethodInvocation *invocation, GVariant *reply);

struct _LgdCall {
	LgdGuest *guest;     /* a reference */
	gpointer iface;	     /* the interface called, a reference, or NULL */
	LgdCallReply reply;  /* NULL: the tuple is sent as it is */
	LgdSession *session; /* a reference; NULL once the object is gone */
	GDBusMethodInvocation *invocation;
	GMainContext *main_context; /* where the reply is sent */
	const gchar *action_id;

	/* what polkit is told, copied on the main loop */
	gchar *domain;
	gchar *pool;
	gchar *volume;
	gchar *volume_path;
	gchar *message;

	/* the arguments, validated by the handler */
	gchar *path;
	gchar *path2; /* a second path the call changes (Rename's destination) */
	/* what the caller gave, once the paths are resolved in the guest */
	gchar *requested_path;
	gchar *requested_path2;
	/* the lstat of the resolved path, when resolving made one just now
	 * (lgd_resolve's final_stat): for the job to take, not to ask again */
	struct guestfs_statns *path_stat;
	gchar *link_target; /* Symlink's target: any string */
	gchar *root;	    /* an operating system's root (Inspector) */
	GVariant *options;
	GVariant *data; /* WriteFile's bytes */
	gint64 mode;	/* Chmod's mode, -1 when none */
	guint32 uid;
	guint32 gid;
	gint fd; /* transfers: owned, -1 when none */
	struct stat fd_stat;
	gint fd_flags;
	guint64 offset; /* volume streams */
	guint64 length;
	gboolean sparse;
	gboolean flag; /* the method's own switch (upload, read-only) */

	LgdJobFunc func;
	gboolean own_thread; /* runs on the transfer pool, not on the session */
	guint auth_step;     /* which of its paths polkit is asked about */
	gchar *caller;	     /* counted against its bound (lgd-admit.h) */
	LgdCallDone done;
	gpointer done_data;

	/* a long operation is published as a Job while it runs (lgd-job.h) */
	const gchar *job_operation; /* set by the handler; NULL: no job */
	LgdJob *job;		    /* the running work's, until completed */
	GCancellable *cancellable;  /* what the work watches, or NULL */
	gchar *object_path;	    /* the object called, copied on the main loop */
	gint64 caller_uid;	    /* -1 until looked up (lgd_call_start_job) */
};

LgdCall *lgd_call_new(LgdGuest *guest, GDBusMethodInvocation *invocation, const gchar *action_id);

LgdCall *lgd_call_new_for_iface(gpointer iface,
				GDBusMethodInvocation *invocation,
				const gchar *action_id,
				LgdCallReply reply);

void lgd_call_free(LgdCall *call);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(LgdCall, lgd_call_free)

const gchar *lgd_call_root(LgdCall *call);

const gchar *lgd_call_filesystem(LgdCall *call);

gboolean lgd_call_authorize(LgdCall *call, GError **error);

void lgd_call_check_async(LgdCall *call, GAsyncReadyCallback callback, gpointer user_data);

gboolean lgd_call_check_finish(LgdCall *call, GAsyncResult *result, GError **error);

gboolean lgd_call_authorize_path(LgdCall *call,
				 const gchar *path,
				 const gchar *requested_path,
				 GError **error);

gboolean lgd_call_return_error(LgdCall *call, GError *error);

gboolean lgd_call_run_on_session(LgdCall *call, LgdJobFunc func);

gboolean lgd_call_run_in_thread(LgdCall *call, LgdJobFunc func);

void lgd_call_set_max_transfers(guint n);

void lgd_call_complete(LgdCall *call, GVariant *reply, GError *error);

GVariant *lgd_call_run_func(LgdSession *session, LgdCall *call, GError **error);

LgdJob *lgd_call_start_job(LgdCall *call, const gchar *operation, GCancellable *cancellable);

/* The entry of a handler's method table for the method @invocation calls.
 * Each entry is a struct whose first member is the D-Bus method name, and
 * the table lists every method the handler is set for. */
gconstpointer lgd_call_find_method(GDBusMethodInvocation *invocation,
				   gconstpointer table,
				   gsize n_entries,
				   gsize entry_size);

#define LGD_CALL_FIND_METHOD(invocation, table)                                                    \
	lgd_call_find_method((invocation), (table), G_N_ELEMENTS(table), sizeof((table)[0]))

G_END_DECLS
