/*
 * Whether a running domain uses a storage volume: its disks, their backing
 * chains, block-job mirrors and data files, as the live definition gives
 * them.
 */
#pragma once

#include <glib.h>
#include <libvirt/libvirt.h>

#include "lgd-xml.h"

G_BEGIN_DECLS

gboolean lgd_volume_usage_check_unused(virConnectPtr conn, virStorageVolPtr vol, GError **error);

/* Everything the disks of a running domain refer to (of LgdDisk): their
 * own sources and the images of their backing chains, block jobs' mirrors
 * and data files, with the target of the disk. */
GPtrArray *lgd_volume_refs_parse(const gchar *domain_xml, GError **error);

gboolean
lgd_volume_ref_matches(const LgdDisk *ref, const gchar *path, const gchar *pool, const gchar *name);

G_END_DECLS
