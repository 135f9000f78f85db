/* org.libvirt.GuestFS.Inspector: the operating systems on an object's disks. */
#pragma once

#include "lgd-guest.h"

G_BEGIN_DECLS

LgdDBusInspector *lgd_inspector_new(LgdGuest *guest);

G_END_DECLS
