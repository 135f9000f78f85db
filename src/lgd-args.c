#include "config.h"

#include "lgd-args.h"
#include "lgd-error.h"

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
