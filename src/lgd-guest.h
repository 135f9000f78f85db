/*
 * A published domain or volume: its D-Bus object, its appliance session,
 * and the one path every content-touching call takes (authorize, then run
 * on the session).
 */
#pragma once

#include "lgd-cache.h"
#include "lgd-context.h"
#include "lgd-generated.h"

G_BEGIN_DECLS

typedef struct _LgdAuthTicket LgdAuthTicket;

/* Runs in a thread of its own for one call; returns the reply (a tuple)
 * or NULL with @error set. */
typedef GVariant *(*LgdThreadFunc)(GDBusMethodInvocation *invocation,
				   gpointer data,
				   GError **error);

#define LGD_TYPE_GUEST (lgd_guest_get_type())
G_DECLARE_FINAL_TYPE(LgdGuest, lgd_guest, LGD, GUEST, GObject)

LgdGuest *lgd_guest_new_domain(LgdContext *context,
			       const gchar *uri,
			       const gchar *uuid,
			       const gchar *object_path);

LgdGuest *lgd_guest_new_volume(LgdContext *context,
			       const gchar *uri,
			       const gchar *key,
			       const gchar *object_path);

LgdDBusObjectSkeleton *lgd_guest_get_object(LgdGuest *self);

const gchar *lgd_guest_get_uri(LgdGuest *self);

const gchar *lgd_guest_get_volume_key(LgdGuest *self);

LgdContext *lgd_guest_get_context(LgdGuest *self);

void lgd_guest_call_paths(LgdGuest *self,
			  GDBusMethodInvocation *invocation,
			  const gchar *action_id,
			  const gchar *path,
			  const gchar *path2,
			  LgdJobFunc func,
			  gpointer data,
			  GDestroyNotify data_free);

LgdAuthTicket *lgd_guest_auth_ticket_new(LgdGuest *self,
					 GDBusMethodInvocation *invocation,
					 const gchar *action_id);

gboolean lgd_guest_auth_ticket_check(LgdAuthTicket *ticket, GError **error);

void lgd_guest_auth_ticket_free(LgdAuthTicket *ticket);

void lgd_guest_call_in_thread(LgdGuest *self,
			      GDBusMethodInvocation *invocation,
			      const gchar *action_id,
			      LgdThreadFunc func,
			      gpointer data,
			      GDestroyNotify data_free);

void lgd_guest_close(LgdGuest *self);

void lgd_guest_call(LgdGuest *self,
		    GDBusMethodInvocation *invocation,
		    const gchar *action_id,
		    const gchar *path,
		    LgdJobFunc func,
		    gpointer data,
		    GDestroyNotify data_free);

LgdCacheEntry *lgd_guest_cached_inspection(LgdGuest *self, const gchar *identity);

void lgd_guest_store_inspection(LgdGuest *self, LgdCacheEntry *entry);

void lgd_guest_forget_inspection(LgdGuest *self);

void lgd_guest_load_inspection(LgdGuest *self, const gchar *identity);

gboolean lgd_guest_is_domain(LgdGuest *self);

const gchar *lgd_guest_get_id(LgdGuest *self);

LgdSession *lgd_guest_get_session(LgdGuest *self);

G_END_DECLS
