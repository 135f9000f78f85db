#include "config.h"

#include "lgd-limit.h"

struct _LgdLimit {
	GMutex lock;
	GCond changed;
	guint slots;
	guint in_use;
	GQueue waiters; /* one stack address per waiting caller, oldest first */
};

LgdLimit *
lgd_limit_new(guint slots)
{
	LgdLimit *self = g_new0(LgdLimit, 1);

	g_mutex_init(&self->lock);
	g_cond_init(&self->changed);
	self->slots = MAX(slots, 1);
	return self;
}

void
lgd_limit_free(LgdLimit *self)
{
	if (self == NULL)
		return;
	g_mutex_clear(&self->lock);
	g_cond_clear(&self->changed);
	g_free(self);
}

static void
lgd_limit_wake(GCancellable *cancellable, gpointer data)
{
	LgdLimit *self = data;

	g_mutex_lock(&self->lock);
	g_cond_broadcast(&self->changed);
	g_mutex_unlock(&self->lock);
}

/* First come, first served: a caller proceeds only when it is the oldest
 * waiter and a slot is free. A cancelled caller leaves the queue at once
 * (its place goes to the next) and gets FALSE, holding no slot. */
gboolean
lgd_limit_acquire(LgdLimit *self, GCancellable *cancellable)
{
	gint me; /* only its address is used: who is waiting */
	gulong handler = 0;
	gboolean got;

	if (cancellable != NULL)
		handler =
		    g_cancellable_connect(cancellable, G_CALLBACK(lgd_limit_wake), self, NULL);
	g_mutex_lock(&self->lock);
	g_queue_push_tail(&self->waiters, &me);
	while (!g_cancellable_is_cancelled(cancellable) &&
	       (g_queue_peek_head(&self->waiters) != &me || self->in_use >= self->slots))
		g_cond_wait(&self->changed, &self->lock);
	got = !g_cancellable_is_cancelled(cancellable);
	g_queue_remove(&self->waiters, &me);
	if (got)
		self->in_use++;
	g_cond_broadcast(&self->changed);
	g_mutex_unlock(&self->lock);
	/* waits for a wake-up running in another thread; needs the lock free */
	g_cancellable_disconnect(cancellable, handler);
	return got;
}

void
lgd_limit_release(LgdLimit *self)
{
	g_mutex_lock(&self->lock);
	g_assert(self->in_use > 0);
	self->in_use--;
	g_cond_broadcast(&self->changed);
	g_mutex_unlock(&self->lock);
}

/* How many appliances may run at once. */
guint
lgd_limit_get_slots(LgdLimit *self)
{
	return self->slots; /* set once, at creation */
}

guint
lgd_limit_in_use(LgdLimit *self)
{
	guint n;

	g_mutex_lock(&self->lock);
	n = self->in_use;
	g_mutex_unlock(&self->lock);
	return n;
}

/* How many callers wait for a slot now. */
guint
lgd_limit_waiting(LgdLimit *self)
{
	guint n;

	g_mutex_lock(&self->lock);
	n = g_queue_get_length(&self->waiters);
	g_mutex_unlock(&self->lock);
	return n;
}

/* Half of the host's memory for appliances, at least one. */
guint
lgd_limit_default_slots(guint64 mem_total_bytes, guint appliance_mib)
{
	guint64 per = (guint64)MAX(appliance_mib, 1) * 1024 * 1024;
	guint64 n = (mem_total_bytes / 2) / per;

	return (guint)CLAMP(n, 1, 64);
}
