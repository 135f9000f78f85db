/*
 * A guest's disks as libvirt declares them, never as their contents say:
 * which disks an appliance gets, their host paths, the backing chains of
 * storage volumes, and what identifies the disks' contents for the
 * inspection cache (path, device, inode, size and mtime of each image).
 *
 * Nothing here opens a disk image or parses its header: a guest writes
 * its own disk, and a raw disk can carry any header it likes.
 */
#pragma once

#include <glib.h>
#include <libvirt/libvirt.h>

#include "lgd-xml.h"

G_BEGIN_DECLS

gboolean lgd_disk_is_drive(const LgdDisk *disk);

gchar *lgd_disk_host_path(virConnectPtr conn, const LgdDisk *disk, GError **error);

gboolean lgd_volume_check_backing(virConnectPtr conn,
				  virStorageVolPtr vol,
				  GPtrArray *chain,
				  GError **error);

gchar *lgd_identity_of_domain(virConnectPtr conn, const LgdDomainXml *info);

gchar *lgd_identity_of_volume(virConnectPtr conn, virStorageVolPtr vol);

G_END_DECLS
