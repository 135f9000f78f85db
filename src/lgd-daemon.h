/* The service: bus, object manager, libvirt connections, authorization. */
#pragma once

#include <gio/gio.h>

#include "lgd-options.h"

G_BEGIN_DECLS

#define LGD_TYPE_DAEMON (lgd_daemon_get_type())
G_DECLARE_FINAL_TYPE(LgdDaemon, lgd_daemon, LGD, DAEMON, GObject)

LgdDaemon *lgd_daemon_new(LgdOptions *options);

gboolean lgd_daemon_start(LgdDaemon *self, GError **error);

void lgd_daemon_stop(LgdDaemon *self);

G_END_DECLS
