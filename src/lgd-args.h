/* Validation of method arguments shared by every handler. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* One accepted key of an a{sv} options argument. */
typedef struct {
	const gchar *key;
	const gchar *type; /* GVariant type string */
} LgdOptionSpec;

gboolean lgd_args_check_options(GVariant *options, const LgdOptionSpec *specs, GError **error);

gboolean lgd_args_get_bool(GVariant *options, const gchar *key, gboolean default_value);

gint64 lgd_args_get_u32(GVariant *options, const gchar *key, gint64 default_value);

guint64 lgd_args_get_u64(GVariant *options, const gchar *key, guint64 default_value);

const gchar *lgd_args_get_string(GVariant *options, const gchar *key, const gchar *default_value);

gboolean lgd_args_check_path(const gchar *what, const gchar *path, GError **error);

gboolean lgd_args_within_bounds(GVariant *body);

GDBusMessage *lgd_args_bound_filter(GDBusConnection *connection,
				    GDBusMessage *message,
				    gboolean incoming,
				    gpointer user_data);

G_END_DECLS
