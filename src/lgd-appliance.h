/* Launching one libguestfs appliance the way the service does. */
#pragma once

#include "lgd-session.h"

G_BEGIN_DECLS

guestfs_h *lgd_appliance_create(const LgdSessionConfig *config, const gchar *uri, GError **error);

gboolean lgd_appliance_launch(guestfs_h *g,
			      const LgdSessionConfig *config,
			      const gchar *uri,
			      GCancellable *cancellable,
			      GError **error);

void lgd_appliance_abort_launches(void);

G_END_DECLS
