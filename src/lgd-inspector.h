/* org.libvirt.GuestFS.Inspector: the operating systems on an object's disks. */
#pragma once

#include "lgd-call.h"
#include "lgd-guest.h"

G_BEGIN_DECLS

LgdDBusInspector *lgd_inspector_new(void);

GVariant *lgd_inspect_roots(guestfs_h *g, char **roots);

GVariant *lgd_inspector_inspect_job(LgdSession *session, LgdCall *call, GError **error);

G_END_DECLS
