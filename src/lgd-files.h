/*
 * org.libvirt.GuestFS.Files: files inside an object's disks. lgd-files.c
 * holds the handlers and the steps every job shares; the jobs are in
 * lgd-files-read.c, lgd-files-write.c and lgd-transfer.c.
 */
#pragma once

#include "lgd-args.h"
#include "lgd-call.h"
#include "lgd-guest.h"
#include "lgd-replace.h"

G_BEGIN_DECLS

/* libguestfs's protocol carries at most 4 MiB a message: reads and
 * writes of small files go in pieces of this size. */
#define LGD_FILES_CHUNK (2 * 1024 * 1024)

LgdDBusFiles *lgd_files_new(void);

/* ---- the steps every job shares (session thread) ---- */

guestfs_h *lgd_files_prepare(LgdSession *session, LgdCall *call, gboolean write, GError **error);

GVariant *lgd_files_finish_write(LgdSession *session, LgdCall *call, guestfs_h *g, GError **error);

LgdReplaceAttrs lgd_files_replace_attrs(LgdCall *call, gboolean create);

gboolean lgd_files_begin_write(LgdSession *session, LgdCall *call, guestfs_h *g, GError **error);

gboolean
lgd_files_check_exists(LgdSession *session, guestfs_h *g, const gchar *path, GError **error);

gboolean lgd_files_check_type(
    LgdSession *session, guestfs_h *g, const gchar *path, guint32 type, GError **error);

/* ---- the jobs ---- */

GVariant *lgd_files_read_dir_job(LgdSession *session, LgdCall *call, GError **error);
GVariant *lgd_files_stat_job(LgdSession *session, LgdCall *call, GError **error);
GVariant *lgd_files_read_file_job(LgdSession *session, LgdCall *call, GError **error);
GVariant *lgd_files_readlink_job(LgdSession *session, LgdCall *call, GError **error);
GVariant *lgd_files_write_file_job(LgdSession *session, LgdCall *call, GError **error);
GVariant *lgd_files_mkdir_job(LgdSession *session, LgdCall *call, GError **error);
GVariant *lgd_files_remove_job(LgdSession *session, LgdCall *call, GError **error);
GVariant *lgd_files_rename_job(LgdSession *session, LgdCall *call, GError **error);
GVariant *lgd_files_chmod_job(LgdSession *session, LgdCall *call, GError **error);
GVariant *lgd_files_chown_job(LgdSession *session, LgdCall *call, GError **error);
GVariant *lgd_files_symlink_job(LgdSession *session, LgdCall *call, GError **error);

G_END_DECLS
