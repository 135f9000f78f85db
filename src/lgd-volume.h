/* Reads a libvirt storage volume into its org.libvirt.GuestFS.Volume interface. */
#pragma once

#include <libvirt/libvirt.h>

#include "lgd-generated.h"

G_BEGIN_DECLS

gboolean lgd_volume_read(LgdDBusVolume *iface,
			 virStorageVolPtr vol,
			 const gchar *pool,
			 const gchar *uri,
			 GError **error);

G_END_DECLS
