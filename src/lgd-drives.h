/*
 * Which drives an appliance gets: a domain's disks as its definition gives
 * them (read-only, or through a point-in-time NBD export when the domain
 * runs), or a volume's file.
 */
#pragma once

#include <gio/gio.h>
#include <guestfs.h>

G_BEGIN_DECLS

typedef struct _LgdDriveSource LgdDriveSource;
typedef struct _LgdDrivesLease LgdDrivesLease;

LgdDriveSource *
lgd_drive_source_new_domain(const gchar *uri, const gchar *uuid, const gchar *run_dir);

LgdDriveSource *
lgd_drive_source_new_volume(const gchar *uri, const gchar *key, const gchar *run_dir);

void lgd_drive_source_free(LgdDriveSource *self);

const gchar *lgd_drive_source_get_uri(LgdDriveSource *self);

LgdDrivesLease *lgd_drives_add(
    LgdDriveSource *self, guestfs_h *g, gboolean read_only, guint *n_added, GError **error);

void lgd_drives_lease_release(LgdDrivesLease *lease);

gboolean lgd_drives_check_writable(LgdDriveSource *self, GError **error);

gchar *lgd_drives_identity(LgdDriveSource *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(LgdDrivesLease, lgd_drives_lease_release)

G_END_DECLS
