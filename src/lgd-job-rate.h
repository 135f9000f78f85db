/*
 * The numbers a Job shows of a transfer: its progress, its recent rate and
 * when it is expected to end, from samples of the bytes done. Pure
 * arithmetic, so that it can be tested without a clock.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct {
	gint64 last_time;  /* monotonic µs of the last sample; 0: none yet */
	guint64 last_done; /* the bytes done then */
	gdouble rate;	   /* bytes per second, smoothed; 0 while unknown */
} LgdJobRate;

void lgd_job_rate_sample(LgdJobRate *self, gint64 now, guint64 done);

guint64 lgd_job_rate_get(const LgdJobRate *self);

guint64
lgd_job_rate_expected_end(const LgdJobRate *self, gint64 now_real, guint64 done, guint64 total);

gdouble lgd_job_rate_progress(guint64 done, guint64 total);

G_END_DECLS
