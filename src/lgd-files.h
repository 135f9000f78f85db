/* org.libvirt.GuestFS.Files: files inside an object's disks. */
#pragma once

#include "lgd-args.h"
#include "lgd-guest.h"

G_BEGIN_DECLS

/* One Files call, from handler to job. */
typedef struct {
	LgdGuest *guest;
	gchar *path;
	gchar *path2;	    /* Rename's destination */
	gchar *link_target; /* Symlink's target: any string */
	GVariant *options;
	GVariant *data; /* WriteFile's bytes */
	guint32 mode;
	guint32 uid;
	guint32 gid;
	gint fd; /* transfers: owned, -1 when none */
} LgdFilesCall;

LgdDBusFiles *lgd_files_new(LgdGuest *guest);

guestfs_h *lgd_files_prepare(LgdSession *session,
			     LgdFilesCall *call,
			     const LgdOptionSpec *method_options,
			     gboolean write,
			     GError **error);

gboolean
lgd_files_finish_write(LgdSession *session, LgdFilesCall *call, guestfs_h *g, GError **error);

gboolean lgd_files_check_mode(gint64 mode, GError **error);

gboolean lgd_files_replace_begin(LgdSession *session, guestfs_h *g, gpointer call, GError **error);

gboolean
lgd_files_begin_write(LgdSession *session, LgdFilesCall *call, guestfs_h *g, GError **error);

gboolean
lgd_files_check_not_link(LgdSession *session, guestfs_h *g, const gchar *path, GError **error);

gboolean lgd_files_check_type(
    LgdSession *session, guestfs_h *g, const gchar *path, guint32 type, GError **error);

G_END_DECLS
