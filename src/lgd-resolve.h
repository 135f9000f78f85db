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

/*
 * What the walk learnt of directories and links, kept between walks while
 * nothing can change them (a read-only appliance, one mount layout: the
 * session drops it on any relaunch or remount). Only directories and
 * links are kept, with a link's target: a walk that finds them here asks
 * the filesystem nothing about them. Bounded: emptied when full.
 */
typedef struct _LgdResolveCache LgdResolveCache;

LgdResolveCache *lgd_resolve_cache_new(void);

void lgd_resolve_cache_clear(LgdResolveCache *cache);

void lgd_resolve_cache_free(LgdResolveCache *cache);

guint lgd_resolve_cache_size(LgdResolveCache *cache);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(LgdResolveCache, lgd_resolve_cache_free)

gchar *lgd_resolve_with(const LgdResolveOps *ops,
			gpointer fs,
			const gchar *path,
			LgdResolveFlags flags,
			gchar **reached,
			GError **error);

/* The same, with @cache (may be NULL) consulted and filled. */
gchar *lgd_resolve_with_cache(const LgdResolveOps *ops,
			      gpointer fs,
			      LgdResolveCache *cache,
			      const gchar *path,
			      LgdResolveFlags flags,
			      gchar **reached,
			      GError **error);

/* In the appliance. When the walk's last lstat was of the resolved path
 * itself, @final_stat (may be NULL) gets it: what an lstatns of the
 * result would answer (a statns too, unless the result is a link),
 * without asking again. NULL when the walk did not stat the result (a
 * cached directory, a missing final component). */
gchar *lgd_resolve(guestfs_h *g,
		   LgdResolveCache *cache,
		   const gchar *path,
		   LgdResolveFlags flags,
		   gchar **reached,
		   struct guestfs_statns **final_stat,
		   GError **error);

G_END_DECLS
