/*
 * Whether a running domain uses a storage volume: its disks, their backing
 * chains, block-job mirrors and data files, as the live definition gives
 * them.
 */
#pragma once

#include <glib.h>
#include <libvirt/libvirt.h>

G_BEGIN_DECLS

gboolean lgd_volume_usage_check_unused(virConnectPtr conn, virStorageVolPtr vol, GError **error);

/* Something a running domain's disk refers to: its own source or an image
 * of its backing chain (or a block job's mirror, or a data file). */
typedef struct {
	gchar *target;	/* the disk's target, "vda" */
	guint depth;	/* 0: the disk's source; 1...: down its backing chain */
	gchar *path;	/* file, block and dir sources */
	gchar *pool;	/* volume sources */
	gchar *volume;	/* volume sources */
	gchar *network; /* network sources: the name ("rbdpool/image") */
} LgdVolumeRef;

GPtrArray *lgd_volume_refs_parse(const gchar *domain_xml, GError **error);

gboolean lgd_volume_ref_matches(const LgdVolumeRef *ref,
				const gchar *path,
				const gchar *pool,
				const gchar *name);

G_END_DECLS
