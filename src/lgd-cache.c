#include "config.h"

#include <errno.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>

#include "lgd-cache.h"
#include "lgd-error.h"

#define LGD_CACHE_MAGIC "libvirt-guestfs-dbus cache"
/* 2: version 1's never-written batch list is gone; a version 1 file is
 * removed and rewritten like any unusable one */
#define LGD_CACHE_VERSION 2
/* (magic, version, uri, id, identity, inspected_at, systems, icons) */
#define LGD_CACHE_TYPE "(susssxaa{sv}a{say})"
/* Far above any real entry: a bigger file is not ours. */
#define LGD_CACHE_MAX_FILE (8 * 1024 * 1024)

struct _LgdCache {
	gchar *dir;
	guint64 max_bytes;
	GMutex lock; /* writes and eviction */
};

LgdCache *
lgd_cache_new(const gchar *dir, guint64 max_bytes, GError **error)
{
	LgdCache *self;

	if (g_mkdir_with_parents(dir, 0700) < 0) {
		g_set_error(error, LGD_ERROR, LGD_ERROR_FAILED,
			    "Cannot create the cache directory %s: %s", dir, g_strerror(errno));
		return NULL;
	}
	self = g_new0(LgdCache, 1);
	self->dir = g_strdup(dir);
	self->max_bytes = max_bytes;
	g_mutex_init(&self->lock);
	return self;
}

void
lgd_cache_free(LgdCache *self)
{
	if (self == NULL)
		return;
	g_mutex_clear(&self->lock);
	g_free(self->dir);
	g_free(self);
}

LgdCacheEntry *
lgd_cache_entry_new(const gchar *identity, GVariant *systems)
{
	LgdCacheEntry *entry = g_new0(LgdCacheEntry, 1);

	entry->identity = g_strdup(identity);
	entry->inspected_at = g_get_real_time() / G_USEC_PER_SEC;
	entry->systems = g_variant_ref_sink(systems);
	entry->icons = g_variant_ref_sink(g_variant_new_array(G_VARIANT_TYPE("{say}"), NULL, 0));
	return entry;
}

LgdCacheEntry *
lgd_cache_entry_copy(const LgdCacheEntry *entry)
{
	LgdCacheEntry *copy = g_new0(LgdCacheEntry, 1);

	copy->identity = g_strdup(entry->identity);
	copy->inspected_at = entry->inspected_at;
	copy->systems = g_variant_ref(entry->systems);
	copy->icons = g_variant_ref(entry->icons);
	return copy;
}

void
lgd_cache_entry_free(LgdCacheEntry *entry)
{
	if (entry == NULL)
		return;
	g_free(entry->identity);
	g_clear_pointer(&entry->systems, g_variant_unref);
	g_clear_pointer(&entry->icons, g_variant_unref);
	g_free(entry);
}

/* A file name that no URI or id can steer out of the directory. */
static gchar *
lgd_cache_path(LgdCache *self, const gchar *uri, const gchar *id)
{
	g_autofree gchar *key = g_strdup_printf("%s\n%s", uri, id);
	g_autofree gchar *digest = g_compute_checksum_for_string(G_CHECKSUM_SHA256, key, -1);
	g_autofree gchar *name = g_strdup_printf("%s.inspection", digest);

	return g_build_filename(self->dir, name, NULL);
}

/* Whether an entry may exist for this object: a stat, no read. Lets the
 * caller skip working out the disks' identity (libvirt round trips per
 * disk) for the many objects that were never inspected. */
gboolean
lgd_cache_has(LgdCache *self, const gchar *uri, const gchar *id)
{
	g_autofree gchar *path = lgd_cache_path(self, uri, id);
	struct stat st;

	return g_stat(path, &st) == 0;
}

/* Anything that is not exactly an entry of ours for this object is
 * ignored and removed: truncated, corrupt, of another version, or
 * another object's. */
LgdCacheEntry *
lgd_cache_load(LgdCache *self, const gchar *uri, const gchar *id)
{
	g_autofree gchar *path = lgd_cache_path(self, uri, id);
	g_autofree gchar *contents = NULL;
	g_autoptr(GVariant) v = NULL;
	g_autoptr(GBytes) bytes = NULL;
	g_autoptr(LgdCacheEntry) entry = NULL;
	const gchar *magic, *f_uri, *f_id;
	guint32 version;
	gsize len;
	struct stat st;

	if (g_stat(path, &st) < 0)
		return NULL;
	if (st.st_size > LGD_CACHE_MAX_FILE || !g_file_get_contents(path, &contents, &len, NULL))
		goto corrupt;
	bytes = g_bytes_new_take(g_steal_pointer(&contents), len);
	v = g_variant_ref_sink(
	    g_variant_new_from_bytes(G_VARIANT_TYPE(LGD_CACHE_TYPE), bytes, FALSE));
	if (!g_variant_is_normal_form(v))
		goto corrupt;
	entry = g_new0(LgdCacheEntry, 1);
	g_variant_get(v, "(&su&s&ssx@aa{sv}@a{say})", &magic, &version, &f_uri, &f_id,
		      &entry->identity, &entry->inspected_at, &entry->systems, &entry->icons);
	if (g_strcmp0(magic, LGD_CACHE_MAGIC) != 0 || version != LGD_CACHE_VERSION ||
	    g_strcmp0(f_uri, uri) != 0 || g_strcmp0(f_id, id) != 0)
		goto corrupt;
	return g_steal_pointer(&entry);

corrupt:
	g_warning("ignoring and removing the unusable cache file %s", path);
	g_unlink(path);
	return NULL;
}

typedef struct {
	gchar *path;
	gint64 mtime;
	guint64 size;
} LgdCacheFile;

static gint
lgd_cache_file_compare(gconstpointer a, gconstpointer b)
{
	const LgdCacheFile *fa = a;
	const LgdCacheFile *fb = b;
	return fa->mtime < fb->mtime ? -1 : fa->mtime > fb->mtime ? 1 : 0;
}

/* Oldest entries go first once the directory holds more than allowed. */
static void
lgd_cache_evict(LgdCache *self)
{
	g_autoptr(GDir) dir = g_dir_open(self->dir, 0, NULL);
	g_autoptr(GArray) files = g_array_new(FALSE, FALSE, sizeof(LgdCacheFile));
	guint64 total = 0;
	const gchar *name;

	if (dir == NULL)
		return;
	while ((name = g_dir_read_name(dir)) != NULL) {
		LgdCacheFile file = {0};
		struct stat st;

		if (!g_str_has_suffix(name, ".inspection"))
			continue;
		file.path = g_build_filename(self->dir, name, NULL);
		if (g_stat(file.path, &st) < 0) {
			g_free(file.path);
			continue;
		}
		file.mtime = st.st_mtime;
		file.size = (guint64)st.st_size;
		total += file.size;
		g_array_append_val(files, file);
	}
	g_array_sort(files, lgd_cache_file_compare);
	for (guint i = 0; i < files->len; i++) {
		LgdCacheFile *file = &g_array_index(files, LgdCacheFile, i);
		if (total > self->max_bytes) {
			g_unlink(file->path);
			total -= file->size;
		}
		g_free(file->path);
	}
}

gboolean
lgd_cache_store(
    LgdCache *self, const gchar *uri, const gchar *id, const LgdCacheEntry *entry, GError **error)
{
	g_autofree gchar *path = lgd_cache_path(self, uri, id);
	g_autoptr(GVariant) v = g_variant_ref_sink(
	    g_variant_new("(susssx@aa{sv}@a{say})", LGD_CACHE_MAGIC, LGD_CACHE_VERSION, uri, id,
			  entry->identity, entry->inspected_at, entry->systems, entry->icons));
	gboolean ok;

	g_mutex_lock(&self->lock);
	/* g_file_set_contents writes a temporary file and renames it */
	ok = g_file_set_contents_full(path, g_variant_get_data(v), (gssize)g_variant_get_size(v),
				      G_FILE_SET_CONTENTS_CONSISTENT, 0600, error);
	if (ok)
		lgd_cache_evict(self);
	g_mutex_unlock(&self->lock);
	return ok;
}

void
lgd_cache_drop(LgdCache *self, const gchar *uri, const gchar *id)
{
	g_autofree gchar *path = lgd_cache_path(self, uri, id);

	g_mutex_lock(&self->lock);
	g_unlink(path);
	g_mutex_unlock(&self->lock);
}
