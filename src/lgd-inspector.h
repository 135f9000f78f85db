/* org.libvirt.GuestFS.Inspector: the operating systems on an object's disks. */
#pragma once

#include "lgd-guest.h"

G_BEGIN_DECLS

LgdDBusInspector *lgd_inspector_new(LgdGuest *guest);

GVariant *lgd_inspect_roots(guestfs_h *g, char **roots);

void lgd_inspector_submit_inspect(LgdGuest *guest,
				  gboolean refresh,
				  LgdJobDone done,
				  gpointer done_data);

G_END_DECLS
