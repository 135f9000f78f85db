/*
 * Object paths: a per-connection prefix plus a reversible escaping of the
 * domain UUID or the volume key.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define LGD_ROOT_PATH "/org/libvirt/GuestFS"
#define LGD_MANAGER_PATH LGD_ROOT_PATH "/Manager"

gchar *lgd_path_escape(const gchar *s);

gchar *lgd_path_unescape(const gchar *element);

gchar *lgd_path_connection_prefix(const gchar *uri);

gchar *lgd_path_for_domain(const gchar *conn_prefix, const gchar *uuid);

gchar *lgd_path_for_volume(const gchar *conn_prefix, const gchar *key);

G_END_DECLS
