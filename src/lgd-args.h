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

G_END_DECLS
