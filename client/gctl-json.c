/* A small JSON emitter for what the service returns (a{sv}, aa{sv}, ...):
 * enough for --json, without another library. Dictionaries with string
 * keys become objects, other arrays and tuples arrays, variants their
 * value; 64-bit integers are written as numbers (JSON parsers that use
 * doubles lose precision above 2^53, which no size here reaches). */
#include "config.h"

#include <stdio.h>

#include "gctl.h"

void
gctl_json_append_string(GString *out, const gchar *text)
{
	g_string_append_c(out, '"');
	for (const guchar *p = (const guchar *)text; *p != '\0'; p++) {
		switch (*p) {
		case '"':
			g_string_append(out, "\\\"");
			break;
		case '\\':
			g_string_append(out, "\\\\");
			break;
		case '\n':
			g_string_append(out, "\\n");
			break;
		case '\r':
			g_string_append(out, "\\r");
			break;
		case '\t':
			g_string_append(out, "\\t");
			break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				g_string_append_printf(out, "\\u%04x", *p);
			else
				g_string_append_c(out, (gchar)*p);
		}
	}
	g_string_append_c(out, '"');
}

/* Guest data (file names, labels) need not be UTF-8; JSON must be. */
static void
gctl_json_append_text(GString *out, const gchar *text)
{
	g_autofree gchar *valid = g_utf8_make_valid(text, -1);

	gctl_json_append_string(out, valid);
}

static void
gctl_json_append_dict(GString *out, GVariant *value)
{
	GVariantIter iter;
	GVariant *entry;
	gboolean first = TRUE;

	g_string_append_c(out, '{');
	g_variant_iter_init(&iter, value);
	while ((entry = g_variant_iter_next_value(&iter)) != NULL) {
		g_autoptr(GVariant) key = g_variant_get_child_value(entry, 0);
		g_autoptr(GVariant) val = g_variant_get_child_value(entry, 1);

		if (!first)
			g_string_append_c(out, ',');
		first = FALSE;
		gctl_json_append_text(out, g_variant_get_string(key, NULL));
		g_string_append_c(out, ':');
		gctl_json_append_variant(out, val);
		g_variant_unref(entry);
	}
	g_string_append_c(out, '}');
}

static void
gctl_json_append_array(GString *out, GVariant *value)
{
	gsize n = g_variant_n_children(value);

	g_string_append_c(out, '[');
	for (gsize i = 0; i < n; i++) {
		g_autoptr(GVariant) child = g_variant_get_child_value(value, i);
		if (i > 0)
			g_string_append_c(out, ',');
		gctl_json_append_variant(out, child);
	}
	g_string_append_c(out, ']');
}

void
gctl_json_append_variant(GString *out, GVariant *value)
{
	const GVariantType *type = g_variant_get_type(value);

	if (g_variant_type_is_variant(type)) {
		g_autoptr(GVariant) inner = g_variant_get_variant(value);
		gctl_json_append_variant(out, inner);
		return;
	}
	if (g_variant_type_is_array(type)) {
		const GVariantType *element = g_variant_type_element(type);
		if (g_variant_type_is_dict_entry(element) &&
		    g_variant_type_equal(g_variant_type_key(element), G_VARIANT_TYPE_STRING))
			gctl_json_append_dict(out, value);
		else
			gctl_json_append_array(out, value);
		return;
	}
	if (g_variant_type_is_tuple(type)) {
		gctl_json_append_array(out, value);
		return;
	}
	switch (g_variant_classify(value)) {
	case G_VARIANT_CLASS_BOOLEAN:
		g_string_append(out, g_variant_get_boolean(value) ? "true" : "false");
		break;
	case G_VARIANT_CLASS_BYTE:
		g_string_append_printf(out, "%u", g_variant_get_byte(value));
		break;
	case G_VARIANT_CLASS_INT16:
		g_string_append_printf(out, "%d", g_variant_get_int16(value));
		break;
	case G_VARIANT_CLASS_UINT16:
		g_string_append_printf(out, "%u", g_variant_get_uint16(value));
		break;
	case G_VARIANT_CLASS_INT32:
		g_string_append_printf(out, "%d", g_variant_get_int32(value));
		break;
	case G_VARIANT_CLASS_UINT32:
		g_string_append_printf(out, "%u", g_variant_get_uint32(value));
		break;
	case G_VARIANT_CLASS_INT64:
		g_string_append_printf(out, "%" G_GINT64_FORMAT, g_variant_get_int64(value));
		break;
	case G_VARIANT_CLASS_UINT64:
		g_string_append_printf(out, "%" G_GUINT64_FORMAT, g_variant_get_uint64(value));
		break;
	case G_VARIANT_CLASS_HANDLE:
		g_string_append_printf(out, "%d", g_variant_get_handle(value));
		break;
	case G_VARIANT_CLASS_DOUBLE: {
		gchar buf[G_ASCII_DTOSTR_BUF_SIZE];
		g_string_append(out, g_ascii_dtostr(buf, sizeof buf, g_variant_get_double(value)));
		break;
	}
	case G_VARIANT_CLASS_STRING:
	case G_VARIANT_CLASS_OBJECT_PATH:
	case G_VARIANT_CLASS_SIGNATURE:
		gctl_json_append_text(out, g_variant_get_string(value, NULL));
		break;
	default:
		g_string_append(out, "null");
	}
}

/* Prints one document and a newline, in one write. */
void
gctl_json_print(GString *doc)
{
	g_string_append_c(doc, '\n');
	fwrite(doc->str, 1, doc->len, stdout);
	fflush(stdout);
}
