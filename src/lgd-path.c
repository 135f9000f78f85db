#include "config.h"

#include <gio/gio.h>
#include <string.h>

#include "lgd-path.h"

/* GLib's rule: every byte but ASCII letters and digits becomes _xx. It is
 * reversible, and the empty string has its own escape ("_"). */
gchar *
lgd_path_escape(const gchar *s)
{
	return g_dbus_escape_object_path(s);
}

/* Returns NULL when @element is not the escape of any string. */
gchar *
lgd_path_unescape(const gchar *element)
{
	return (gchar *)g_dbus_unescape_object_path(element);
}

static gboolean
lgd_path_is_word(const gchar *s)
{
	if (*s == '\0')
		return FALSE;
	for (; *s != '\0'; s++) {
		if (!g_ascii_isalnum(*s))
			return FALSE;
	}
	return TRUE;
}

/* "driver:///word" gives "driver_word" (qemu:///system -> qemu_system), the
 * short names administrators expect. Any other URI is escaped whole; its
 * escape holds "_3a" for the colon, which a short name never does, so the
 * two forms cannot collide for ASCII URIs. */
gchar *
lgd_path_connection_prefix(const gchar *uri)
{
	const gchar *sep = strstr(uri, ":///");

	if (sep != NULL && sep != uri) {
		g_autofree gchar *driver = g_strndup(uri, sep - uri);
		const gchar *word = sep + 4;
		if (lgd_path_is_word(driver) && lgd_path_is_word(word) && g_ascii_isalpha(word[0]))
			return g_strdup_printf("%s_%s", driver, word);
	}
	return lgd_path_escape(uri);
}

gchar *
lgd_path_for_domain(const gchar *conn_prefix, const gchar *uuid)
{
	g_autofree gchar *element = lgd_path_escape(uuid);
	return g_strdup_printf(LGD_ROOT_PATH "/%s/domain/%s", conn_prefix, element);
}

gchar *
lgd_path_for_volume(const gchar *conn_prefix, const gchar *key)
{
	g_autofree gchar *element = lgd_path_escape(key);
	return g_strdup_printf(LGD_ROOT_PATH "/%s/volume/%s", conn_prefix, element);
}
