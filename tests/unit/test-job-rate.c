#include "config.h"

#include <glib.h>

#include "lgd-job-rate.h"

#define SEC G_USEC_PER_SEC
#define MIB (1024 * 1024)

/* The first sample starts the clock; a steady rate is found from the
 * second on, and stays. */
static void
test_steady(void)
{
	LgdJobRate rate = {0};

	lgd_job_rate_sample(&rate, 10 * SEC, 0);
	g_assert_cmpuint(lgd_job_rate_get(&rate), ==, 0);
	for (guint i = 1; i <= 20; i++) {
		lgd_job_rate_sample(&rate, 10 * SEC + i * SEC / 4, (guint64)i * MIB / 4);
		g_assert_cmpuint(lgd_job_rate_get(&rate), ==, MIB);
	}
}

/* A change of pace moves the rate towards the new one, without jumping
 * there on one interval. */
static void
test_change(void)
{
	LgdJobRate rate = {0};
	guint64 done = 0;
	gint64 now = SEC;
	guint64 last;

	lgd_job_rate_sample(&rate, now, done);
	for (guint i = 0; i < 8; i++) {
		now += SEC / 4;
		done += MIB / 4; /* 1 MiB/s */
		lgd_job_rate_sample(&rate, now, done);
	}
	g_assert_cmpuint(lgd_job_rate_get(&rate), ==, MIB);
	now += SEC / 4;
	done += 2 * MIB / 4; /* 2 MiB/s for one interval */
	lgd_job_rate_sample(&rate, now, done);
	last = lgd_job_rate_get(&rate);
	g_assert_cmpuint(last, >, MIB);
	g_assert_cmpuint(last, <, MIB + MIB / 4);
	/* and after a while at the new pace, it is close to it */
	for (guint i = 0; i < 80; i++) {
		now += SEC / 4;
		done += 2 * MIB / 4;
		lgd_job_rate_sample(&rate, now, done);
	}
	g_assert_cmpuint(lgd_job_rate_get(&rate), >, 2 * MIB - MIB / 100);
	g_assert_cmpuint(lgd_job_rate_get(&rate), <=, 2 * MIB);
}

/* A stall brings the rate down; a clock that does not move, or bytes
 * that go back, restart the measure instead of dividing by zero. */
static void
test_stall_and_odd_samples(void)
{
	LgdJobRate rate = {0};

	lgd_job_rate_sample(&rate, SEC, 0);
	lgd_job_rate_sample(&rate, 2 * SEC, MIB);
	g_assert_cmpuint(lgd_job_rate_get(&rate), ==, MIB);
	lgd_job_rate_sample(&rate, 2 * SEC, 2 * MIB); /* same time */
	g_assert_cmpuint(lgd_job_rate_get(&rate), ==, MIB);
	lgd_job_rate_sample(&rate, 3 * SEC, MIB); /* fewer bytes */
	g_assert_cmpuint(lgd_job_rate_get(&rate), ==, MIB);
	for (guint i = 4; i < 40; i++)
		lgd_job_rate_sample(&rate, i * SEC, MIB);
	g_assert_cmpuint(lgd_job_rate_get(&rate), <, MIB / 100);
}

static void
test_expected_end(void)
{
	LgdJobRate rate = {0};
	gint64 now_real = G_GINT64_CONSTANT(1800000000) * SEC;

	/* no rate yet: unknown */
	g_assert_cmpuint(lgd_job_rate_expected_end(&rate, now_real, 0, 10 * MIB), ==, 0);
	lgd_job_rate_sample(&rate, SEC, 0);
	lgd_job_rate_sample(&rate, 2 * SEC, MIB);
	/* 9 MiB left at 1 MiB/s */
	g_assert_cmpuint(lgd_job_rate_expected_end(&rate, now_real, MIB, 10 * MIB), ==,
			 (guint64)now_real + 9 * SEC);
	/* no total, or more done than announced: unknown */
	g_assert_cmpuint(lgd_job_rate_expected_end(&rate, now_real, MIB, 0), ==, 0);
	g_assert_cmpuint(lgd_job_rate_expected_end(&rate, now_real, 11 * MIB, 10 * MIB), ==, 0);
	/* done: now */
	g_assert_cmpuint(lgd_job_rate_expected_end(&rate, now_real, 10 * MIB, 10 * MIB), ==,
			 (guint64)now_real);
	/* so far off that it does not fit: unknown, not wrapped around */
	g_assert_cmpuint(lgd_job_rate_expected_end(&rate, now_real, 0, G_MAXUINT64), ==, 0);
}

static void
test_progress(void)
{
	g_assert_cmpfloat(lgd_job_rate_progress(5, 0), ==, -1.0);
	g_assert_cmpfloat(lgd_job_rate_progress(0, 4), ==, 0.0);
	g_assert_cmpfloat(lgd_job_rate_progress(1, 4), ==, 0.25);
	g_assert_cmpfloat(lgd_job_rate_progress(4, 4), ==, 1.0);
	g_assert_cmpfloat(lgd_job_rate_progress(5, 4), ==, 1.0);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/job-rate/steady", test_steady);
	g_test_add_func("/job-rate/change", test_change);
	g_test_add_func("/job-rate/stall-and-odd-samples", test_stall_and_odd_samples);
	g_test_add_func("/job-rate/expected-end", test_expected_end);
	g_test_add_func("/job-rate/progress", test_progress);
	return g_test_run();
}
