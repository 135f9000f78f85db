#include "config.h"

#include "lgd-job-rate.h"

/* How long the rate remembers: a few seconds, so that a stall or a burst
 * shows soon but one slow read of the client does not make it jump. */
#define LGD_JOB_RATE_TAU_US (3.0 * G_USEC_PER_SEC)

/* Takes the bytes @done at monotonic time @now (µs). The first sample only
 * starts the clock; later ones move the smoothed rate towards the rate of
 * the last interval, the more the longer it was. */
void
lgd_job_rate_sample(LgdJobRate *self, gint64 now, guint64 done)
{
	gdouble elapsed;
	gdouble instant;
	gdouble weight;

	if (self->last_time == 0 || now <= self->last_time || done < self->last_done) {
		self->last_time = now;
		self->last_done = done;
		return;
	}
	elapsed = (gdouble)(now - self->last_time);
	instant = (gdouble)(done - self->last_done) * G_USEC_PER_SEC / elapsed;
	weight = elapsed / (elapsed + LGD_JOB_RATE_TAU_US);
	/* the first interval is all there is to go on */
	self->rate = self->rate == 0.0 ? instant : self->rate + weight * (instant - self->rate);
	self->last_time = now;
	self->last_done = done;
}

/* Bytes per second, 0 while unknown. */
guint64
lgd_job_rate_get(const LgdJobRate *self)
{
	return (guint64)(self->rate + 0.5);
}

/* When the rest of @total is expected to be done, in µs of the real clock
 * (@now_real, since the epoch); 0 when unknown: no total, no rate yet,
 * or more done than announced. */
guint64
lgd_job_rate_expected_end(const LgdJobRate *self, gint64 now_real, guint64 done, guint64 total)
{
	gdouble left;

	if (total == 0 || done > total || self->rate <= 0.0 || now_real <= 0)
		return 0;
	left = (gdouble)(total - done) * G_USEC_PER_SEC / self->rate;
	if (left > (gdouble)(G_MAXINT64 - now_real))
		return 0;
	return (guint64)now_real + (guint64)left;
}

/* From 0.0 to 1.0; -1 when the total is unknown. */
gdouble
lgd_job_rate_progress(guint64 done, guint64 total)
{
	if (total == 0)
		return -1.0;
	return done >= total ? 1.0 : (gdouble)done / (gdouble)total;
}
