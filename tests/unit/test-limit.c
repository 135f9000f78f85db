#include "config.h"

#include <gio/gio.h>

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

	g_assert_true(lgd_limit_acquire(s->limit, NULL));
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
	g_assert_true(lgd_limit_acquire(s.limit, NULL)); /* everyone queues behind the test */
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
	g_assert_cmpuint(lgd_limit_get_slots(s.limit), ==, 3);
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

typedef struct {
	LgdLimit *limit;
	GCancellable *cancellable;
	gint got; /* -1 while waiting, then 0 or 1 */
} Waiter;

static gpointer
waiter_thread(gpointer data)
{
	Waiter *w = data;
	gboolean got = lgd_limit_acquire(w->limit, w->cancellable);

	g_atomic_int_set(&w->got, got);
	return NULL;
}

/* A cancelled waiter leaves at once, holding nothing, and the one behind
 * it keeps its place; a call cancelled before it asks gets nothing. */
static void
test_cancel_while_waiting(void)
{
	LgdLimit *limit = lgd_limit_new(1);
	g_autoptr(GCancellable) first_cancellable = g_cancellable_new();
	g_autoptr(GCancellable) cancelled = g_cancellable_new();
	Waiter first = {limit, first_cancellable, -1};
	Waiter second = {limit, NULL, -1};
	GThread *first_thread, *second_thread;

	g_assert_true(lgd_limit_acquire(limit, NULL));
	first_thread = g_thread_new("first", waiter_thread, &first);
	while (lgd_limit_waiting(limit) < 1)
		g_usleep(1000);
	second_thread = g_thread_new("second", waiter_thread, &second);
	while (lgd_limit_waiting(limit) < 2)
		g_usleep(1000);

	g_cancellable_cancel(first_cancellable);
	g_thread_join(first_thread);
	g_assert_cmpint(g_atomic_int_get(&first.got), ==, 0);
	g_assert_cmpuint(lgd_limit_waiting(limit), ==, 1);
	g_assert_cmpuint(lgd_limit_in_use(limit), ==, 1);
	g_assert_cmpint(g_atomic_int_get(&second.got), ==, -1);

	lgd_limit_release(limit);
	g_thread_join(second_thread);
	g_assert_cmpint(g_atomic_int_get(&second.got), ==, 1);
	g_assert_cmpuint(lgd_limit_in_use(limit), ==, 1);
	lgd_limit_release(limit);

	g_cancellable_cancel(cancelled);
	g_assert_false(lgd_limit_acquire(limit, cancelled));
	g_assert_cmpuint(lgd_limit_in_use(limit), ==, 0);
	g_assert_cmpuint(lgd_limit_waiting(limit), ==, 0);
	lgd_limit_free(limit);
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
	g_test_add_func("/limit/cancel-while-waiting", test_cancel_while_waiting);
	g_test_add_func("/limit/default-slots", test_default_slots);
	return g_test_run();
}
