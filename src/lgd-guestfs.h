/*
 * Auto-cleanups for what libguestfs returns: its structs and struct lists
 * have their own free functions, its string lists are malloc'ed arrays of
 * malloc'ed strings.
 */
#pragma once

#include <glib.h>
#include <guestfs.h>
#include <stdlib.h>

G_BEGIN_DECLS

/* guestfs.h names a struct and the call that returns it alike (struct
 * guestfs_statns, guestfs_statns()), and g_autoptr wants a one-word type:
 * these are the names to use with it. */
typedef struct guestfs_statns LgdStatns;
typedef struct guestfs_statns_list LgdStatnsList;
typedef struct guestfs_statvfs LgdStatvfs;
typedef struct guestfs_application2_list LgdApplication2List;
typedef struct guestfs_lvm_pv_list LgdLvmPvList;

G_DEFINE_AUTOPTR_CLEANUP_FUNC(LgdStatns, guestfs_free_statns)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(LgdStatnsList, guestfs_free_statns_list)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(LgdStatvfs, guestfs_free_statvfs)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(LgdApplication2List, guestfs_free_application2_list)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(LgdLvmPvList, guestfs_free_lvm_pv_list)

/* A string list from libguestfs: free(), not g_free(), is its allocator's
 * pair. */
static inline void
lgd_strv_free(char **strv)
{
	if (strv == NULL)
		return;
	for (char **p = strv; *p != NULL; p++)
		free(*p);
	free(strv);
}

/* g_auto(LgdStrv) for a string list from libguestfs. */
typedef char **LgdStrv;
G_DEFINE_AUTO_CLEANUP_FREE_FUNC(LgdStrv, lgd_strv_free, NULL)

G_END_DECLS
