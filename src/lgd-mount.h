/*
 * Mounting a guest's filesystems in its appliance the way the guest mounts
 * them, or one filesystem alone, kept mounted between calls.
 */
#pragma once

#include "lgd-call.h"
#include "lgd-guestfs.h"
#include "lgd-session.h"

G_BEGIN_DECLS

gboolean
lgd_mount_guest(LgdSession *session, guestfs_h *g, LgdCall *call, gboolean rw, GError **error);

void lgd_mount_release(LgdSession *session, guestfs_h *g);

G_END_DECLS
