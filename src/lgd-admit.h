/*
 * How many calls one caller (a unique bus name) may have in progress at
 * once: waiting for polkit, queued on an object's session or running. A
 * caller beyond the bound is refused at once, before polkit is asked, so
 * that one client cannot fill the service's queues for everyone.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define LGD_DEFAULT_CALLS_PER_CALLER 64
#define LGD_MAX_CALLS_PER_CALLER 4096

void lgd_admit_set_max(guint n);

gboolean lgd_admit_take(const gchar *caller, GError **error);

void lgd_admit_release(const gchar *caller);

G_END_DECLS
