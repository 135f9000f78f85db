/*
 * Resolving a path inside a guest as the guest's own kernel would: every
 * symbolic link followed relative to the guest's root (an absolute target
 * means the guest's /, never the appliance's), "." and ".." applied to
 * what the links led to. The result names no link in any component, so
 * that neither the appliance's kernel nor tar can follow one afterwards,
 * and so that what polkit is told ("path") is where the call really goes.
 *
 * Walked with lstat and readlink, one component at a time: libguestfs's
 * realpath chroots for every call and costs far more.
 */
#pragma once

#include <glib.h>
#include <guestfs.h>

G_BEGIN_DECLS

typedef enum {
	/* follow a link in the last component too (like open(2)) */
	LGD_RESOLVE_FOLLOW_FINAL = 1 << 0,
	/* the last component may be missing (a file about to be created) */
	LGD_RESOLVE_MISSING_FINAL = 1 << 1,
	/* a link in the last component is an error (option "no-follow") */
	LGD_RESOLVE_REFUSE_FINAL_LINK = 1 << 2,
	/* missing directories may follow the first missing one (mkdir -p) */
	LGD_RESOLVE_MISSING_TAIL = 1 << 3,
} LgdResolveFlags;

/* What the walk needs of a filesystem: the appliance, or a test's fake. */
typedef struct {
	/* st_mode of @path without following a last link, or 0 with errno */
	guint32 (*lstat_mode)(gpointer fs, const gchar *path, int *errnum, gchar **message);
	/* the target of the link @path, or NULL */
	gchar *(*readlink)(gpointer fs, const gchar *path, gchar **message);
} LgdResolveOps;

gchar *lgd_resolve_with(const LgdResolveOps *ops,
			gpointer fs,
			const gchar *path,
			LgdResolveFlags flags,
			gchar **reached,
			GError **error);

gchar *lgd_resolve(
    guestfs_h *g, const gchar *path, LgdResolveFlags flags, gchar **reached, GError **error);

G_END_DECLS
