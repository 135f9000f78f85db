#include "config.h"

#include "lgd-limit.h"

struct _LgdLimit {
	GMutex lock;
	GCond changed;
	guint slots;
	guint in_use;
	guint64 next_ticket;	/* handed to the next caller */
	guint64 serving_ticket; /* the oldest caller still waiting */
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

/* Tickets make waiting first-come, first-served: a caller proceeds only
 * when it is the oldest waiter and a slot is free. */
void
lgd_limit_acquire(LgdLimit *self)
{
	guint64 ticket;

	g_mutex_lock(&self->lock);
	ticket = self->next_ticket++;
	while (ticket != self->serving_ticket || self->in_use >= self->slots)
		g_cond_wait(&self->changed, &self->lock);
	self->in_use++;
	self->serving_ticket++;
	g_cond_broadcast(&self->changed);
	g_mutex_unlock(&self->lock);
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
	n = (guint)(self->next_ticket - self->serving_ticket);
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
