/*
 * A bound on how many appliances run at once. Callers beyond it wait in
 * the order they asked, or until their call is cancelled.
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct _LgdLimit LgdLimit;

LgdLimit *lgd_limit_new(guint slots);

void lgd_limit_free(LgdLimit *self);

gboolean lgd_limit_acquire(LgdLimit *self, GCancellable *cancellable);

void lgd_limit_release(LgdLimit *self);

guint lgd_limit_get_slots(LgdLimit *self);

guint lgd_limit_in_use(LgdLimit *self);

guint lgd_limit_waiting(LgdLimit *self);

guint lgd_limit_default_slots(guint64 mem_total_bytes, guint appliance_mib);

G_END_DECLS
