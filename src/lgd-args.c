#include "config.h"

#include "lgd-args.h"
#include "lgd-error.h"

#include <string.h>

#define LGD_ARGS_PATH_MAX 4096
#define LGD_ARGS_NAME_MAX 255

/* Unknown keys and wrong types are errors, not ignored: a misspelt option
 * silently doing the default is a surprise. @specs ends with a NULL key. */
gboolean
lgd_args_check_options(GVariant *options, const LgdOptionSpec *specs, GError **error)
{
	GVariantIter iter;
	const gchar *key;
	GVariant *value;

	g_variant_iter_init(&iter, options);
	while (g_variant_iter_loop(&iter, "{&sv}", &key, &value)) {
		const LgdOptionSpec *spec = specs;

		while (spec->key != NULL && g_strcmp0(spec->key, key) != 0)
			spec++;
		if (spec->key == NULL) {
			g_autoptr(GString) known = g_string_new(NULL);
			for (spec = specs; spec->key != NULL; spec++)
				g_string_append_printf(known, "%s'%s'", known->len ? ", " : "",
						       spec->key);
			g_set_error(error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT,
				    "Unknown option '%s' (known: %s)", key,
				    known->len ? known->str : "none");
			g_variant_unref(value);
			return FALSE;
		}
		if (!g_variant_is_of_type(value, G_VARIANT_TYPE(spec->type))) {
			g_set_error(error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT,
				    "Option '%s' must be of type '%s', not '%s'", key, spec->type,
				    g_variant_get_type_string(value));
			g_variant_unref(value);
			return FALSE;
		}
	}
	return TRUE;
}

gboolean
lgd_args_get_bool(GVariant *options, const gchar *key, gboolean default_value)
{
	gboolean value;

	if (!g_variant_lookup(options, key, "b", &value))
		return default_value;
	return value;
}

/* -1 style defaults let callers tell "not given" from any real value. */
gint64
lgd_args_get_u32(GVariant *options, const gchar *key, gint64 default_value)
{
	guint32 value;

	if (!g_variant_lookup(options, key, "u", &value))
		return default_value;
	return value;
}

guint64
lgd_args_get_u64(GVariant *options, const gchar *key, guint64 default_value)
{
	guint64 value;

	if (!g_variant_lookup(options, key, "t", &value))
		return default_value;
	return value;
}

const gchar *
lgd_args_get_string(GVariant *options, const gchar *key, const gchar *default_value)
{
	const gchar *value;

	if (!g_variant_lookup(options, key, "&s", &value))
		return default_value;
	return value;
}

/* Guest paths: absolute, and within the limits of Linux paths, so that a
 * bad one is refused here with a clear message rather than deep inside
 * the appliance. */
gboolean
lgd_args_check_path(const gchar *what, const gchar *path, GError **error)
{
	g_auto(GStrv) parts = NULL;

	if (path[0] == '\0') {
		g_set_error(error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT, "The %s is empty", what);
		return FALSE;
	}
	if (path[0] != '/') {
		g_set_error(error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT,
			    "The %s '%s' is relative; guest paths start with '/'", what, path);
		return FALSE;
	}
	if (strlen(path) >= LGD_ARGS_PATH_MAX) {
		g_set_error(error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT,
			    "The %s is %zu bytes long; the limit is %d", what, strlen(path),
			    LGD_ARGS_PATH_MAX - 1);
		return FALSE;
	}
	parts = g_strsplit(path, "/", -1);
	for (guint i = 0; parts[i] != NULL; i++) {
		/* "..": a polkit rule on the path must see where the call goes */
		if (g_str_equal(parts[i], ".") || g_str_equal(parts[i], "..")) {
			g_set_error(error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT,
				    "The %s '%s' has a '%s' component; pass the path it means",
				    what, path, parts[i]);
			return FALSE;
		}
		if (strlen(parts[i]) > LGD_ARGS_NAME_MAX) {
			g_set_error(error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT,
				    "A name in the %s is longer than %d bytes", what,
				    LGD_ARGS_NAME_MAX);
			return FALSE;
		}
	}
	return TRUE;
}
