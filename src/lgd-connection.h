/*
 * One libvirt connection: its domain and volume objects, kept live by
 * libvirt events, withdrawn while libvirtd is away and republished when it
 * is back.
 */
#pragma once

#include <gio/gio.h>

#include "lgd-context.h"
#include "lgd-guest.h"

G_BEGIN_DECLS

#define LGD_TYPE_CONNECTION (lgd_connection_get_type())
G_DECLARE_FINAL_TYPE(LgdConnection, lgd_connection, LGD, CONNECTION, GObject)

LgdConnection *lgd_connection_new(const gchar *uri,
				  GDBusObjectManagerServer *server,
				  LgdContext *context,
				  guint volume_rescan_interval);

void lgd_connection_start(LgdConnection *self);

void lgd_connection_stop(LgdConnection *self);

const gchar *lgd_connection_get_uri(LgdConnection *self);

const gchar *lgd_connection_lookup_domain_uuid(LgdConnection *self, const gchar *uuid);

GPtrArray *lgd_connection_lookup_domain_name(LgdConnection *self, const gchar *name);

const gchar *lgd_connection_lookup_volume_key(LgdConnection *self, const gchar *key);

GPtrArray *lgd_connection_lookup_volume_path(LgdConnection *self, const gchar *path);

LgdGuest *lgd_connection_find_guest(LgdConnection *self, const gchar *object_path);

G_END_DECLS
