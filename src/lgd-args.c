#include "config.h"

#include "lgd-args.h"
#include "lgd-error.h"

#include <string.h>

#define LGD_ARGS_PATH_MAX 4096
#define LGD_ARGS_NAME_MAX 255
/* Option names are short words; a longer key is refused without being
 * echoed back in the error. */
#define LGD_ARGS_KEY_MAX 64

/* Unknown keys and wrong types are errors, not ignored: a misspelt option
 * silently doing the default is a surprise. @specs ends with a NULL key.
 * At most one entry more than the method knows keys is looked at, so that
 * a huge dictionary is refused at once (before polkit is asked): more
 * entries than known keys means an unknown or a repeated key. A key longer
 * than any option name is refused without being quoted back. */
gboolean
lgd_args_check_options(GVariant *options, const LgdOptionSpec *specs, GError **error)
{
	GVariantIter iter;
	const gchar *key;
	GVariant *value;
	gsize n_specs = 0, n_seen = 0;

	while (specs[n_specs].key != NULL)
		n_specs++;
	g_variant_iter_init(&iter, options);
	while (g_variant_iter_loop(&iter, "{&sv}", &key, &value)) {
		const LgdOptionSpec *spec = specs;

		if (strlen(key) > LGD_ARGS_KEY_MAX) {
			g_set_error(error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT,
				    "An option name is %zu bytes long; none is longer than %d",
				    strlen(key), LGD_ARGS_KEY_MAX);
			g_variant_unref(value);
			return FALSE;
		}
		if (++n_seen > n_specs && n_specs > 0) {
			g_set_error(error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT,
				    "%" G_GSIZE_FORMAT " options given; this method knows "
				    "%" G_GSIZE_FORMAT ", each taken once",
				    g_variant_n_children(options), n_specs);
			g_variant_unref(value);
			return FALSE;
		}
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

/* The getters differ only in the GVariant format and the C type, so one
 * definition makes them all. A key that is absent gives @default_value;
 * its type was checked by lgd_args_check_options. */
#define LGD_ARGS_DEFINE_GETTER(name, ret_type, value_type, format)                                 \
	ret_type lgd_args_get_##name(GVariant *options, const gchar *key, ret_type default_value)  \
	{                                                                                          \
		value_type value;                                                                  \
                                                                                                   \
		if (!g_variant_lookup(options, key, format, &value))                               \
			return default_value;                                                      \
		return value;                                                                      \
	}

LGD_ARGS_DEFINE_GETTER(bool, gboolean, gboolean, "b")
/* -1 style defaults let callers tell "not given" from any real value. */
LGD_ARGS_DEFINE_GETTER(u32, gint64, guint32, "u")
LGD_ARGS_DEFINE_GETTER(u64, guint64, guint64, "t")
LGD_ARGS_DEFINE_GETTER(string, const gchar *, const gchar *, "&s")

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
	/* first: the messages below quote the path */
	if (strlen(path) >= LGD_ARGS_PATH_MAX) {
		g_set_error(error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT,
			    "The %s is %zu bytes long; the limit is %d", what, strlen(path),
			    LGD_ARGS_PATH_MAX - 1);
		return FALSE;
	}
	if (path[0] != '/') {
		g_set_error(error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT,
			    "The %s '%s' is relative; guest paths start with '/'", what, path);
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

/* ---- a bound on what a message may hold (GDBus's worker thread) ------- */

/* More values than any method takes: InspectDomains' 1024 objects and an
 * options dictionary, with room to spare. */
#define LGD_ARGS_MAX_VALUES 4096

/* @count plus the values in @value, counted only until @limit is passed,
 * so that the count costs at most @limit steps however big @value is. A
 * container counts as one and its children each; an array of numbers or
 * bytes is one block (its size is the bus's to bound), not one value an
 * element. */
static gsize
lgd_args_count_values(GVariant *value, gsize count, gsize limit)
{
	gsize n;

	count++;
	if (count > limit || !g_variant_is_container(value))
		return count;
	if (g_variant_is_of_type(value, G_VARIANT_TYPE_ARRAY) &&
	    strchr("ybnqiuxtdh", g_variant_get_type_string(value)[1]) != NULL)
		return count;
	n = g_variant_n_children(value);
	for (gsize i = 0; i < n && count <= limit; i++) {
		g_autoptr(GVariant) child = g_variant_get_child_value(value, i);

		count = lgd_args_count_values(child, count, limit);
	}
	return count;
}

gboolean
lgd_args_within_bounds(GVariant *body)
{
	return body == NULL ||
	       lgd_args_count_values(body, 0, LGD_ARGS_MAX_VALUES) <= LGD_ARGS_MAX_VALUES;
}

static void
lgd_args_unref_message(gpointer message, gpointer user_data)
{
	g_object_unref(message);
}

/* GDBus parses a message into one GVariant a value before anything sees
 * it, in its worker thread, which reads the service's messages one after
 * another; the handlers' code then converts arrays of paths value by
 * value, and the message is freed value by value, both in the main loop.
 * A call with hundreds of thousands of values thus held up every other
 * caller's calls three times over (three seconds for 200,000 paths under
 * the sanitizers). This filter, run in the worker as soon as a message is
 * parsed, refuses a method call whose arguments hold more values than any
 * method takes with TooLarge, before the main loop or polkit sees it, and
 * hands the message to a thread of its own to be freed: what remains is
 * GDBus's parsing, which no service code can shorten. */
GDBusMessage *
lgd_args_bound_filter(GDBusConnection *connection,
		      GDBusMessage *message,
		      gboolean incoming,
		      gpointer user_data)
{
	static GThreadPool *reaper;
	g_autoptr(GDBusMessage) reply = NULL;

	if (!incoming ||
	    g_dbus_message_get_message_type(message) != G_DBUS_MESSAGE_TYPE_METHOD_CALL ||
	    lgd_args_within_bounds(g_dbus_message_get_body(message)))
		return message;
	if (!(g_dbus_message_get_flags(message) & G_DBUS_MESSAGE_FLAGS_NO_REPLY_EXPECTED)) {
		reply = g_dbus_message_new_method_error(
		    message, lgd_error_to_dbus_name(LGD_ERROR_TOO_LARGE),
		    "The arguments of %s hold more than %d values; no method takes that many",
		    g_dbus_message_get_member(message), LGD_ARGS_MAX_VALUES);
		g_dbus_connection_send_message(connection, reply, G_DBUS_SEND_MESSAGE_FLAGS_NONE,
					       NULL, NULL);
	}
	if (g_once_init_enter(&reaper)) {
		/* one thread at most, from GLib's shared ones */
		g_once_init_leave(&reaper,
				  g_thread_pool_new(lgd_args_unref_message, NULL, 1, FALSE, NULL));
	}
	g_thread_pool_push(reaper, message, NULL);
	return NULL;
}
