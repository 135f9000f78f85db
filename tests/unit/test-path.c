#include "config.h"

#include <gio/gio.h>

#include "lgd-path.h"

static void
test_round_trip(void)
{
	const gchar *keys[] = {
	    "/var/lib/libvirt/images/disk.qcow2",
	    "under_score",
	    "dot.dot..dot",
	    "caf\xc3\xa9/\xe2\x82\xac.img",
	    "\xff\xfe raw bytes",
	    "_2f looks escaped already",
	    "6695eb01-f6a4-8304-79aa-97f2502e193f",
	    "",
	};

	for (guint i = 0; i < G_N_ELEMENTS(keys); i++) {
		g_autofree gchar *element = lgd_path_escape(keys[i]);
		g_autofree gchar *back = lgd_path_unescape(element);
		g_autofree gchar *path = g_strdup_printf("/org/x/%s", element);

		g_assert_true(g_variant_is_object_path(path));
		g_assert_cmpstr(back, ==, keys[i]);
	}
}

static void
test_distinct(void)
{
	/* escaping is injective on these look-alikes */
	g_autofree gchar *a = lgd_path_escape("a/b");
	g_autofree gchar *b = lgd_path_escape("a_b");
	g_autofree gchar *c = lgd_path_escape("a_2fb");

	g_assert_cmpstr(a, !=, b);
	g_assert_cmpstr(a, !=, c);
	g_assert_cmpstr(b, !=, c);
}

static void
test_known_values(void)
{
	g_autofree gchar *uuid = lgd_path_escape("6695eb01-f6a4");
	g_autofree gchar *key = lgd_path_escape("/a_b.c");

	g_assert_cmpstr(uuid, ==, "6695eb01_2df6a4");
	g_assert_cmpstr(key, ==, "_2fa_5fb_2ec");
}

static void
test_unescape_rejects(void)
{
	g_autofree gchar *bad1 = lgd_path_unescape("_zz");
	g_autofree gchar *bad2 = lgd_path_unescape("a_2");

	g_assert_null(bad1);
	g_assert_null(bad2);
}

static void
test_connection_prefix(void)
{
	const struct {
		const gchar *uri;
		const gchar *prefix;
	} cases[] = {
	    {"qemu:///system", "qemu_system"},
	    {"qemu:///session", "qemu_session"},
	    {"test:///default", "test_default"},
	    {"lxc:///", "lxc_3a_2f_2f_2f"},
	    {"test:///tmp/x.xml", "test_3a_2f_2f_2ftmp_2fx_2exml"},
	    {"qemu+tcp://127.0.0.1/system", "qemu_2btcp_3a_2f_2f127_2e0_2e0_2e1_2fsystem"},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree gchar *prefix = lgd_path_connection_prefix(cases[i].uri);
		g_assert_cmpstr(prefix, ==, cases[i].prefix);
	}
}

static void
test_object_paths(void)
{
	g_autofree gchar *dom = lgd_path_for_domain("qemu_system", "ab-cd");
	g_autofree gchar *vol = lgd_path_for_volume("qemu_system", "/x");

	g_assert_cmpstr(dom, ==, "/org/libvirt/GuestFS/qemu_system/domain/ab_2dcd");
	g_assert_cmpstr(vol, ==, "/org/libvirt/GuestFS/qemu_system/volume/_2fx");
	g_assert_true(g_variant_is_object_path(dom));
	g_assert_true(g_variant_is_object_path(vol));
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/path/round-trip", test_round_trip);
	g_test_add_func("/path/distinct", test_distinct);
	g_test_add_func("/path/known-values", test_known_values);
	g_test_add_func("/path/unescape-rejects", test_unescape_rejects);
	g_test_add_func("/path/connection-prefix", test_connection_prefix);
	g_test_add_func("/path/object-paths", test_object_paths);
	return g_test_run();
}
