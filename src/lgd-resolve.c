#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "lgd-error.h"
#include "lgd-resolve.h"

/* Linux's own limit on links followed in one lookup. */
#define LGD_RESOLVE_MAX_LINKS 40

/* Entries a cache holds before it is emptied: a caller walking a huge
 * tree costs memory no more than this. */
#define LGD_RESOLVE_CACHE_MAX 4096

/* ---- the cache ---------------------------------------------------------- */

typedef struct {
	guint32 mode;
	gchar *target; /* a link's, once read */
} LgdResolveEntry;

struct _LgdResolveCache {
	GHashTable *entries; /* link-free absolute path -> LgdResolveEntry */
};

static void
lgd_resolve_entry_free(gpointer data)
{
	LgdResolveEntry *entry = data;

	g_free(entry->target);
	g_free(entry);
}

LgdResolveCache *
lgd_resolve_cache_new(void)
{
	LgdResolveCache *cache = g_new0(LgdResolveCache, 1);

	cache->entries =
	    g_hash_table_new_full(g_str_hash, g_str_equal, g_free, lgd_resolve_entry_free);
	return cache;
}

void
lgd_resolve_cache_clear(LgdResolveCache *cache)
{
	if (cache != NULL)
		g_hash_table_remove_all(cache->entries);
}

void
lgd_resolve_cache_free(LgdResolveCache *cache)
{
	if (cache == NULL)
		return;
	g_hash_table_unref(cache->entries);
	g_free(cache);
}

guint
lgd_resolve_cache_size(LgdResolveCache *cache)
{
	return cache != NULL ? g_hash_table_size(cache->entries) : 0;
}

/* st_mode of @here, from @cache or the filesystem (0 with errno). */
static guint32
lgd_resolve_lstat(const LgdResolveOps *ops,
		  gpointer fs,
		  LgdResolveCache *cache,
		  const gchar *here,
		  int *errnum,
		  gchar **message)
{
	LgdResolveEntry *entry = cache != NULL ? g_hash_table_lookup(cache->entries, here) : NULL;
	guint32 mode;

	if (entry != NULL)
		return entry->mode;
	mode = ops->lstat_mode(fs, here, errnum, message);
	if (cache != NULL && (S_ISDIR(mode) || S_ISLNK(mode))) {
		if (g_hash_table_size(cache->entries) >= LGD_RESOLVE_CACHE_MAX)
			g_hash_table_remove_all(cache->entries);
		entry = g_new0(LgdResolveEntry, 1);
		entry->mode = mode;
		g_hash_table_insert(cache->entries, g_strdup(here), entry);
	}
	return mode;
}

/* The target of the link @here, from @cache or the filesystem. */
static gchar *
lgd_resolve_readlink(const LgdResolveOps *ops,
		     gpointer fs,
		     LgdResolveCache *cache,
		     const gchar *here,
		     gchar **message)
{
	LgdResolveEntry *entry = cache != NULL ? g_hash_table_lookup(cache->entries, here) : NULL;
	gchar *target;

	if (entry != NULL && entry->target != NULL)
		return g_strdup(entry->target);
	target = ops->readlink(fs, here, message);
	if (entry != NULL && target != NULL && S_ISLNK(entry->mode))
		entry->target = g_strdup(target);
	return target;
}

/* "/a/b" from components a, b; "/" from none. */
static gchar *
lgd_resolve_join(GPtrArray *parts, const gchar *last)
{
	GString *out = g_string_new(NULL);

	for (guint i = 0; i < parts->len; i++)
		g_string_append_printf(out, "/%s", (const gchar *)g_ptr_array_index(parts, i));
	if (last != NULL)
		g_string_append_printf(out, "/%s", last);
	if (out->len == 0)
		g_string_append_c(out, '/');
	return g_string_free(out, FALSE);
}

/* Puts the components of @path in front of @todo, in order. */
static void
lgd_resolve_push_front(GQueue *todo, const gchar *path)
{
	g_auto(GStrv) parts = g_strsplit(path, "/", -1);

	for (gint i = (gint)g_strv_length(parts) - 1; i >= 0; i--) {
		if (parts[i][0] != '\0' && strcmp(parts[i], ".") != 0)
			g_queue_push_head(todo, g_strdup(parts[i]));
	}
}

static void
lgd_resolve_set_errno(
    GError **error, int errnum, const gchar *path, const gchar *requested, const gchar *message)
{
	g_set_error(error, LGD_ERROR,
		    errnum == ENOENT ? LGD_ERROR_NOT_FOUND : lgd_error_code_from_errno(errnum),
		    "%s: %s%s%s%s%s", requested, g_strerror(errnum),
		    g_strcmp0(path, requested) != 0 ? " (at " : "",
		    g_strcmp0(path, requested) != 0 ? path : "",
		    g_strcmp0(path, requested) != 0 ? ")" : "",
		    message != NULL && errnum != ENOENT ? message : "");
}

gchar *
lgd_resolve_with(const LgdResolveOps *ops,
		 gpointer fs,
		 const gchar *path,
		 LgdResolveFlags flags,
		 gchar **reached,
		 GError **error)
{
	return lgd_resolve_with_cache(ops, fs, NULL, path, flags, reached, error);
}

gchar *
lgd_resolve_with_cache(const LgdResolveOps *ops,
		       gpointer fs,
		       LgdResolveCache *cache,
		       const gchar *path,
		       LgdResolveFlags flags,
		       gchar **reached,
		       GError **error)
{
	g_autoptr(GPtrArray) done = g_ptr_array_new_with_free_func(g_free);
	GQueue todo = G_QUEUE_INIT;
	guint links = 0;
	gboolean missing = FALSE; /* a component was missing: the rest must be */
	gchar *result = NULL;

	if (path == NULL || path[0] != '/') {
		g_set_error(error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT,
			    "%s: guest paths must be absolute", path != NULL ? path : "(null)");
		return NULL;
	}
	lgd_resolve_push_front(&todo, path);
	while (!g_queue_is_empty(&todo)) {
		g_autofree gchar *name = g_queue_pop_head(&todo);
		gboolean final = g_queue_is_empty(&todo);
		g_autofree gchar *here = NULL;
		g_autofree gchar *message = NULL;
		g_autofree gchar *target = NULL;
		int errnum = 0;
		guint32 mode;

		if (strcmp(name, "..") == 0) {
			if (missing) {
				g_autofree gchar *at = lgd_resolve_join(done, NULL);
				lgd_resolve_set_errno(error, ENOENT, at, path, NULL);
				goto out;
			}
			if (done->len > 0)
				g_ptr_array_remove_index(done, done->len - 1);
			continue;
		}
		here = lgd_resolve_join(done, name);
		if (missing) {
			g_ptr_array_add(done, g_steal_pointer(&name));
			continue;
		}
		mode = lgd_resolve_lstat(ops, fs, cache, here, &errnum, &message);
		if (mode == 0) {
			if (errnum == ENOENT && ((final && (flags & LGD_RESOLVE_MISSING_FINAL)) ||
						 (flags & LGD_RESOLVE_MISSING_TAIL))) {
				missing = TRUE;
				g_ptr_array_add(done, g_steal_pointer(&name));
				continue;
			}
			lgd_resolve_set_errno(error, errnum != 0 ? errnum : EIO, here, path,
					      message);
			goto out;
		}
		if (S_ISLNK(mode) && final && !(flags & LGD_RESOLVE_FOLLOW_FINAL)) {
			if (flags & LGD_RESOLVE_REFUSE_FINAL_LINK) {
				target = lgd_resolve_readlink(ops, fs, cache, here, NULL);
				g_set_error(error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT,
					    "%s is a symbolic link (to %s), and option no-follow "
					    "refuses links",
					    here, target != NULL ? target : "?");
				goto out;
			}
			g_ptr_array_add(done, g_steal_pointer(&name)); /* the link itself */
			continue;
		}
		if (S_ISLNK(mode)) {
			if (++links > LGD_RESOLVE_MAX_LINKS) {
				lgd_resolve_set_errno(error, ELOOP, here, path, NULL);
				goto out;
			}
			target = lgd_resolve_readlink(ops, fs, cache, here, &message);
			if (target == NULL || target[0] == '\0') {
				lgd_resolve_set_errno(error, target == NULL ? EIO : ENOENT, here,
						      path, message);
				goto out;
			}
			if (target[0] == '/')
				g_ptr_array_set_size(done, 0); /* the guest's root */
			lgd_resolve_push_front(&todo, target);
			continue;
		}
		if (!final && !S_ISDIR(mode)) {
			lgd_resolve_set_errno(error, ENOTDIR, here, path, NULL);
			goto out;
		}
		g_ptr_array_add(done, g_steal_pointer(&name));
	}
	result = lgd_resolve_join(done, NULL);
out:
	/* where a walk that links led elsewhere stopped: the caller's
	 * authorization must cover it before an error says what is there */
	if (result == NULL && reached != NULL && links > 0)
		*reached = lgd_resolve_join(done, NULL);
	g_queue_clear_full(&todo, g_free);
	return result;
}

/* ---- the appliance ------------------------------------------------------ */

typedef struct {
	guestfs_h *g;
	struct guestfs_statns *last; /* the last lstat that succeeded */
	gchar *last_path;	     /* of what */
} LgdResolveGuestfs;

static guint32
lgd_resolve_guestfs_lstat(gpointer fs, const gchar *path, int *errnum, gchar **message)
{
	LgdResolveGuestfs *self = fs;
	struct guestfs_statns *st = guestfs_lstatns(self->g, path);
	guint32 mode;

	if (st == NULL) {
		*errnum = guestfs_last_errno(self->g);
		*message = g_strdup_printf(": %s", guestfs_last_error(self->g));
		return 0;
	}
	mode = (guint32)st->st_mode;
	if (mode == 0) {
		guestfs_free_statns(st);
		*errnum = EIO; /* no file has mode 0, but a guest can claim it */
		return 0;
	}
	g_clear_pointer(&self->last, guestfs_free_statns);
	g_free(self->last_path);
	self->last = st;
	self->last_path = g_strdup(path);
	return mode;
}

static gchar *
lgd_resolve_guestfs_readlink(gpointer fs, const gchar *path, gchar **message)
{
	guestfs_h *g = ((LgdResolveGuestfs *)fs)->g;
	char *target = guestfs_readlink(g, path);
	gchar *copy;

	if (target == NULL) {
		if (message != NULL)
			*message = g_strdup_printf(": %s", guestfs_last_error(g));
		return NULL;
	}
	copy = g_strdup(target);
	free(target);
	return copy;
}

static const LgdResolveOps lgd_resolve_guestfs_ops = {
    .lstat_mode = lgd_resolve_guestfs_lstat,
    .readlink = lgd_resolve_guestfs_readlink,
};

/* In the session's thread, with the guest's filesystems mounted. */
gchar *
lgd_resolve(guestfs_h *g,
	    LgdResolveCache *cache,
	    const gchar *path,
	    LgdResolveFlags flags,
	    gchar **reached,
	    struct guestfs_statns **final_stat,
	    GError **error)
{
	LgdResolveGuestfs fs = {.g = g};
	gchar *result = lgd_resolve_with_cache(&lgd_resolve_guestfs_ops, &fs, cache, path, flags,
					       reached, error);

	/* the stat of the result only: a cached walk may have stopped asking
	 * after an earlier component, and ".." leaves what was stat'ed */
	if (final_stat != NULL && result != NULL && fs.last != NULL &&
	    g_str_equal(fs.last_path, result))
		*final_stat = g_steal_pointer(&fs.last);
	g_clear_pointer(&fs.last, guestfs_free_statns);
	g_free(fs.last_path);
	return result;
}
