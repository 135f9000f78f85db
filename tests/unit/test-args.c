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

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/args/accepts", test_accepts);
	g_test_add_func("/args/rejects", test_rejects);
	g_test_add_func("/args/no-options-known", test_no_options_known);
	return g_test_run();
}
