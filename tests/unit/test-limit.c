#include "config.h"

#include <glib.h>

#include "lgd-limit.h"

typedef struct {
	LgdLimit *limit;
	GMutex lock;
	GArray *order; /* of gint: who got a slot, in order */
	gint active;
	gint max_active;
} Shared;

typedef struct {
	Shared *shared;
	gint id;
} Worker;

static gpointer
worker_thread(gpointer data)
{
	Worker *w = data;
	Shared *s = w->shared;

	lgd_limit_acquire(s->limit);
	g_mutex_lock(&s->lock);
	g_array_append_val(s->order, w->id);
	s->active++;
	s->max_active = MAX(s->max_active, s->active);
	g_mutex_unlock(&s->lock);
	g_usleep(20 * 1000);
	g_mutex_lock(&s->lock);
	s->active--;
	g_mutex_unlock(&s->lock);
	lgd_limit_release(s->limit);
	return NULL;
}

/* Never more than the slots at once, and waiters served in arrival order. */
static void
test_bound_and_order(void)
{
	Shared s = {0};
	Worker workers[8];
	GThread *threads[8];

	s.limit = lgd_limit_new(1);
	s.order = g_array_new(FALSE, FALSE, sizeof(gint));
	g_mutex_init(&s.lock);
	lgd_limit_acquire(s.limit); /* everyone queues behind the test */
	for (gint i = 0; i < 8; i++) {
		workers[i] = (Worker){&s, i};
		threads[i] = g_thread_new("worker", worker_thread, &workers[i]);
		/* arrival order = i: the next starts once this one waits */
		while (lgd_limit_waiting(s.limit) < (guint)i + 1)
			g_usleep(1000);
	}
	lgd_limit_release(s.limit);
	for (gint i = 0; i < 8; i++)
		g_thread_join(threads[i]);

	g_assert_cmpint(s.max_active, ==, 1);
	g_assert_cmpuint(s.order->len, ==, 8);
	for (gint i = 0; i < 8; i++)
		g_assert_cmpint(g_array_index(s.order, gint, i), ==, i);
	g_assert_cmpuint(lgd_limit_in_use(s.limit), ==, 0);
	g_array_unref(s.order);
	g_mutex_clear(&s.lock);
	lgd_limit_free(s.limit);
}

static void
test_parallel_slots(void)
{
	Shared s = {0};
	Worker workers[6];
	GThread *threads[6];

	s.limit = lgd_limit_new(3);
	s.order = g_array_new(FALSE, FALSE, sizeof(gint));
	g_mutex_init(&s.lock);
	for (gint i = 0; i < 6; i++) {
		workers[i] = (Worker){&s, i};
		threads[i] = g_thread_new("worker", worker_thread, &workers[i]);
	}
	for (gint i = 0; i < 6; i++)
		g_thread_join(threads[i]);
	g_assert_cmpint(s.max_active, <=, 3);
	g_assert_cmpint(s.max_active, >=, 2);
	g_array_unref(s.order);
	g_mutex_clear(&s.lock);
	lgd_limit_free(s.limit);
}

static void
test_default_slots(void)
{
	guint64 gib = 1024ull * 1024 * 1024;

	g_assert_cmpuint(lgd_limit_default_slots(24 * gib, 1280), ==, 9);
	g_assert_cmpuint(lgd_limit_default_slots(1 * gib, 1280), ==, 1);
	g_assert_cmpuint(lgd_limit_default_slots(0, 1280), ==, 1);
	g_assert_cmpuint(lgd_limit_default_slots(4096 * gib, 512), ==, 64);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/limit/bound-and-order", test_bound_and_order);
	g_test_add_func("/limit/parallel-slots", test_parallel_slots);
	g_test_add_func("/limit/default-slots", test_default_slots);
	return g_test_run();
}
