#include "config.h"

#include <gio/gio.h>

#include "lgd-args.h"
#include "lgd-error.h"

static const LgdOptionSpec specs[] = {
    {"read-only", "b"},
    {"offset", "t"},
    {NULL},
};

static GVariant *
opts(const gchar *text)
{
	return g_variant_ref_sink(g_variant_new_parsed(text));
}

static void
test_accepts(void)
{
	g_autoptr(GVariant) empty = opts("@a{sv} {}");
	g_autoptr(GVariant) full = opts("{'read-only': <false>, 'offset': <uint64 7>}");
	g_autoptr(GError) error = NULL;

	g_assert_true(lgd_args_check_options(empty, specs, &error));
	g_assert_true(lgd_args_check_options(full, specs, &error));
	g_assert_no_error(error);
	g_assert_true(lgd_args_get_bool(empty, "read-only", TRUE));
	g_assert_false(lgd_args_get_bool(full, "read-only", TRUE));
}

static void
test_rejects(void)
{
	const gchar *bad[] = {
	    "{'readonly': <true>}",
	    "{'read-only': <'yes'>}",
	    "{'offset': <int32 1>}",
	};

	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(GVariant) o = opts(bad[i]);
		g_autoptr(GError) error = NULL;

		g_assert_false(lgd_args_check_options(o, specs, &error));
		g_assert_error(error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT);
	}
}

static void
test_no_options_known(void)
{
	static const LgdOptionSpec none[] = {{NULL}};
	g_autoptr(GVariant) o = opts("{'x': <1>}");
	g_autoptr(GError) error = NULL;

	g_assert_false(lgd_args_check_options(o, none, &error));
	g_assert_nonnull(strstr(error->message, "known: none"));
}

/* A huge dictionary is refused after looking at one entry more than the
 * method knows keys: here a repeated known key, 100000 times. */
static void
test_too_many_options(void)
{
	g_auto(GVariantBuilder) builder = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE_VARDICT);
	g_autoptr(GVariant) o = NULL;
	g_autoptr(GError) error = NULL;

	for (guint i = 0; i < 100000; i++)
		g_variant_builder_add(&builder, "{sv}", "read-only", g_variant_new_boolean(TRUE));
	o = g_variant_ref_sink(g_variant_builder_end(&builder));
	g_assert_false(lgd_args_check_options(o, specs, &error));
	g_assert_error(error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT);
	g_assert_nonnull(strstr(error->message, "100000 options given; this method knows 2"));
}

/* A key longer than any option name is refused without being quoted. */
static void
test_long_key(void)
{
	g_autofree gchar *key = g_strnfill(100000, 'k');
	g_autoptr(GVariant) o = NULL;
	g_autoptr(GError) error = NULL;
	GVariantDict dict;

	g_variant_dict_init(&dict, NULL);
	g_variant_dict_insert(&dict, key, "b", TRUE);
	o = g_variant_ref_sink(g_variant_dict_end(&dict));
	g_assert_false(lgd_args_check_options(o, specs, &error));
	g_assert_error(error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT);
	g_assert_cmpuint(strlen(error->message), <, 200);
}

/* A path over the length limit is refused as such, and not quoted back,
 * whatever else is wrong with it. */
static void
test_long_relative_path(void)
{
	g_autofree gchar *path = g_strnfill(100000, 'a');
	g_autoptr(GError) error = NULL;

	g_assert_false(lgd_args_check_path("path", path, &error));
	g_assert_error(error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT);
	g_assert_nonnull(strstr(error->message, "100000 bytes long"));
	g_assert_cmpuint(strlen(error->message), <, 200);
}

static GVariant *
paths_call(guint n)
{
	g_auto(GVariantBuilder) paths = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE_OBJECT_PATH_ARRAY);

	for (guint i = 0; i < n; i++) {
		g_autofree gchar *path = g_strdup_printf("/org/libvirt/GuestFS/x/domain/d%u", i);
		g_variant_builder_add(&paths, "o", path);
	}
	return g_variant_ref_sink(
	    g_variant_new("(ao@a{sv})", &paths, g_variant_new_parsed("{'refresh': <true>}")));
}

/* What a message may hold: the most any method takes is in (1024 objects,
 * a 16 MiB byte array, which counts as one value), more values are not. */
static void
test_message_bounds(void)
{
	g_autoptr(GVariant) inspect = paths_call(1024);
	g_autoptr(GVariant) too_many = paths_call(5000);
	g_autofree guint8 *data = g_malloc0(16 << 20);
	g_autoptr(GVariant) bytes = g_variant_ref_sink(g_variant_new(
	    "(@ay@a{sv})", g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, data, 16 << 20, 1),
	    g_variant_new_parsed("@a{sv} {}")));
	g_auto(GVariantBuilder) dict = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE_VARDICT);
	g_autoptr(GVariant) huge_dict = NULL;

	for (guint i = 0; i < 50000; i++)
		g_variant_builder_add(&dict, "{sv}", "k", g_variant_new_uint32(i));
	huge_dict = g_variant_ref_sink(g_variant_new("(@a{sv})", g_variant_builder_end(&dict)));
	g_assert_true(lgd_args_within_bounds(NULL));
	g_assert_true(lgd_args_within_bounds(inspect));
	g_assert_true(lgd_args_within_bounds(bytes));
	g_assert_false(lgd_args_within_bounds(too_many));
	g_assert_false(lgd_args_within_bounds(huge_dict));
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/args/accepts", test_accepts);
	g_test_add_func("/args/rejects", test_rejects);
	g_test_add_func("/args/no-options-known", test_no_options_known);
	g_test_add_func("/args/too-many-options", test_too_many_options);
	g_test_add_func("/args/long-key", test_long_key);
	g_test_add_func("/args/long-relative-path", test_long_relative_path);
	g_test_add_func("/args/message-bounds", test_message_bounds);
	return g_test_run();
}
