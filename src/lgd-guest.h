/*
 * A published domain or volume: its D-Bus object (with the implementations
 * of its interfaces), its appliance session and its inspection cache.
 */
#pragma once

#include "lgd-cache.h"
#include "lgd-context.h"
#include "lgd-generated.h"

G_BEGIN_DECLS

#define LGD_TYPE_GUEST (lgd_guest_get_type())
G_DECLARE_FINAL_TYPE(LgdGuest, lgd_guest, LGD, GUEST, GObject)

/* What a guest publishes: a domain (found by UUID) or a storage volume
 * (found by key). */
typedef enum {
	LGD_GUEST_DOMAIN,
	LGD_GUEST_VOLUME,
} LgdGuestKind;

/* @id is the domain's UUID or the volume's key. */
LgdGuest *lgd_guest_new_drive(LgdContext *context,
			      const gchar *uri,
			      LgdGuestKind kind,
			      const gchar *id,
			      const gchar *object_path);

LgdDBusObjectSkeleton *lgd_guest_get_object(LgdGuest *self);

const gchar *lgd_guest_get_uri(LgdGuest *self);

const gchar *lgd_guest_get_volume_key(LgdGuest *self);

LgdContext *lgd_guest_get_context(LgdGuest *self);

void lgd_guest_close(LgdGuest *self);

LgdCacheEntry *lgd_guest_cached_inspection(LgdGuest *self, const gchar *identity);

void lgd_guest_store_inspection(LgdGuest *self, LgdCacheEntry *entry);

void lgd_guest_forget_inspection(LgdGuest *self);

gboolean lgd_guest_has_cached_inspection(LgdGuest *self);
void lgd_guest_load_inspection(LgdGuest *self, const gchar *identity);

gboolean lgd_guest_is_domain(LgdGuest *self);

const gchar *lgd_guest_get_id(LgdGuest *self);

LgdSession *lgd_guest_ref_session(LgdGuest *self);

LgdGuest *lgd_guest_from_iface(gpointer iface);

void lgd_guest_flush(LgdGuest *self);

G_END_DECLS
