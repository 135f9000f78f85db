/*
 * The inspection cache on disk: one small file per domain or volume,
 * keyed on the identity of its disks' contents, bounded in total size.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _LgdCache LgdCache;

typedef struct {
	gchar *identity;     /* what the disks were when inspected */
	gint64 inspected_at; /* Unix time */
	GVariant *systems;   /* aa{sv}, as Inspect returns */
	GVariant *icons;     /* a{say}: root -> PNG, default GetIcon options */
} LgdCacheEntry;

LgdCache *lgd_cache_new(const gchar *dir, guint64 max_bytes, GError **error);

void lgd_cache_free(LgdCache *self);

LgdCacheEntry *lgd_cache_load(LgdCache *self, const gchar *uri, const gchar *id);

gboolean lgd_cache_store(
    LgdCache *self, const gchar *uri, const gchar *id, const LgdCacheEntry *entry, GError **error);

gboolean lgd_cache_has(LgdCache *self, const gchar *uri, const gchar *id);
void lgd_cache_drop(LgdCache *self, const gchar *uri, const gchar *id);

LgdCacheEntry *lgd_cache_entry_new(const gchar *identity, GVariant *systems);

LgdCacheEntry *lgd_cache_entry_copy(const LgdCacheEntry *entry);

void lgd_cache_entry_free(LgdCacheEntry *entry);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(LgdCacheEntry, lgd_cache_entry_free)

G_END_DECLS
