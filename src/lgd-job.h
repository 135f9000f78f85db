/*
 * Job objects (org.libvirt.GuestFS.Job, after udisks' Job): a long
 * operation published at /org/libvirt/GuestFS/jobs/N while it runs, with
 * its progress, and a Cancel that trips the GCancellable the operation
 * watches.
 *
 * Threads: a job is started, fed and completed from the thread doing the
 * work; everything a client sees (the object, its properties, Completed)
 * changes on the main loop only, where a timer copies the counters into
 * the properties a few times a second.
 */
#pragma once

#include <gio/gio.h>

#include "lgd-auth.h"

G_BEGIN_DECLS

/* The longest job-id option a caller may give, in bytes. */
#define LGD_JOB_ID_MAX 255

typedef struct _LgdJobs LgdJobs;
typedef struct _LgdJob LgdJob;

LgdJobs *lgd_jobs_new(GDBusObjectManagerServer *server, LgdAuth *auth);

void lgd_jobs_free(LgdJobs *jobs);

gboolean lgd_job_check_id(GVariant *options, GError **error);

LgdJob *lgd_job_new(LgdJobs *jobs,
		    const gchar *operation,
		    const gchar *const *objects,
		    guint32 uid,
		    const gchar *job_id,
		    GCancellable *cancellable);

void lgd_job_publish(LgdJob *job);

LgdJob *lgd_job_start(LgdJobs *jobs,
		      const gchar *operation,
		      const gchar *const *objects,
		      guint32 uid,
		      const gchar *job_id,
		      GCancellable *cancellable);

GCancellable *lgd_job_get_cancellable(LgdJob *job);

gint lgd_job_get_cancel_fd(LgdJob *job);

void lgd_job_set_total(LgdJob *job, guint64 total);

void lgd_job_add_done(LgdJob *job, guint64 n);

void lgd_job_set_counts_items(LgdJob *job);

void lgd_job_set_transport(LgdJob *job, const gchar *transport);

gboolean lgd_job_is_cancelled(LgdJob *job);

void lgd_job_complete(LgdJob *job, const GError *error);

gboolean lgd_job_lookup_uid(GDBusMethodInvocation *invocation, guint32 *uid, GError **error);

G_END_DECLS
