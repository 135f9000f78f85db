/*
 * Serving a shut-off domain's disks read-only over NBD, without taking
 * qemu's image locks: one qemu-storage-daemon per appliance session, with
 * force-share, so that the domain itself can start while an appliance
 * reads its disks.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct {
	const gchar *name;   /* the export name: the disk's target, e.g. "vda" */
	const gchar *path;   /* host path, as libvirt declares it */
	const gchar *format; /* as the definition declares it ("raw" when none) */
} LgdNbdExport;

typedef struct _LgdNbdShare LgdNbdShare;

LgdNbdShare *lgd_nbd_share_start(const gchar *run_dir,
				 const gchar *id,
				 const LgdNbdExport *exports,
				 guint n_exports,
				 GError **error);

const gchar *lgd_nbd_share_get_server(LgdNbdShare *self);

void lgd_nbd_share_stop(LgdNbdShare *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(LgdNbdShare, lgd_nbd_share_stop)

G_END_DECLS
