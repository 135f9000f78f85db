/*
 * Moves bulk data between a client's fd and libguestfs. libguestfs takes a
 * host path; "/dev/fd/N" of a pipe works for it where a socket or a
 * non-blocking fd would not, so a thread pumps between the client's fd and
 * a pipe, counting bytes and noticing a client that goes away.
 */
#pragma once

#include <glib.h>

#include "lgd-job.h"

G_BEGIN_DECLS

typedef struct _LgdPump LgdPump;

#define LGD_PUMP_SIZE_UNKNOWN G_MAXUINT64

LgdPump *lgd_pump_new_source(gint client_fd, guint64 expected_size, LgdJob *job, GError **error);

LgdPump *lgd_pump_new_sink(gint client_fd, LgdJob *job, GError **error);

const gchar *lgd_pump_get_path(LgdPump *self);

gboolean lgd_pump_finish(LgdPump *self, GError **error);

guint64 lgd_pump_get_bytes(LgdPump *self);

gboolean lgd_pump_check_delivered(LgdPump *self, GError **error);

void lgd_pump_free(LgdPump *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(LgdPump, lgd_pump_free)

G_END_DECLS
