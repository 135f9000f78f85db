#include "config.h"

#include <gio/gio.h>
#include <string.h>

#include "lgd-options.h"

/* Parses a NULL-terminated argument list the way main() would. */
static LgdOptions *
parse(GError **error, ...)
{
	g_autoptr(GPtrArray) args = g_ptr_array_new_with_free_func(g_free);
	/* A shallow copy: g_option_context_parse() drops the strings it
	 * consumes from argv without freeing them, so args keeps them. */
	g_autofree gchar **argv = NULL;
	gint argc;
	va_list ap;
	LgdOptions *options;

	g_ptr_array_add(args, g_strdup("libvirt-guestfs-dbus"));
	va_start(ap, error);
	for (const gchar *a = va_arg(ap, const gchar *); a != NULL; a = va_arg(ap, const gchar *))
		g_ptr_array_add(args, g_strdup(a));
	va_end(ap);
	argc = (gint)args->len;
	argv = g_new0(gchar *, args->len + 1);
	memcpy(argv, args->pdata, args->len * sizeof(gchar *));
	options = lgd_options_parse(&argc, &argv, error);
	return options;
}

static void
test_defaults(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(LgdOptions) options = parse(&error, NULL);

	g_assert_no_error(error);
	g_assert_cmpint(options->bus_type, ==, LGD_BUS_SESSION);
	g_assert_cmpuint(g_strv_length(options->connect_uris), ==, 1);
	g_assert_cmpstr(options->connect_uris[0], ==, "qemu:///session");
	g_assert_false(options->verbose);
	g_assert_cmpuint(options->volume_rescan_interval, ==, 2);
	g_assert_cmpuint(options->idle_timeout, ==, 60);
	g_assert_cmpuint(options->launch_timeout, ==, 300);
	g_assert_cmpuint(options->max_appliances, ==, 0);
	g_assert_cmpuint(options->max_volume_transfers, ==, 16);
	g_assert_cmpuint(options->appliance_memory, ==, 0);
	g_assert_false(options->force_tcg);
	g_assert_nonnull(options->run_dir);
	g_assert_true(g_path_is_absolute(options->run_dir));
}

static void
test_appliance_options(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(LgdOptions) options =
	    parse(&error, "--idle-timeout", "5", "--launch-timeout", "30", "--max-appliances", "3",
		  "--appliance-memory", "512", "--force-tcg", "--run-dir", "/tmp/lgd-run",
		  "--max-volume-transfers", "2", NULL);

	g_assert_no_error(error);
	g_assert_cmpuint(options->idle_timeout, ==, 5);
	g_assert_cmpuint(options->launch_timeout, ==, 30);
	g_assert_cmpuint(options->max_appliances, ==, 3);
	g_assert_cmpuint(options->max_volume_transfers, ==, 2);
	g_assert_cmpuint(options->appliance_memory, ==, 512);
	g_assert_true(options->force_tcg);
	g_assert_cmpstr(options->run_dir, ==, "/tmp/lgd-run");
}

static void
test_system_default_uri(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(LgdOptions) options = parse(&error, "--system", "--verbose", NULL);

	g_assert_no_error(error);
	g_assert_cmpint(options->bus_type, ==, LGD_BUS_SYSTEM);
	g_assert_cmpstr(options->connect_uris[0], ==, "qemu:///system");
	g_assert_null(options->connect_uris[1]);
	g_assert_true(options->verbose);
}

static void
test_connect_repeated(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(LgdOptions) options =
	    parse(&error, "--system", "--connect", "test:///default", "-c", "qemu:///system",
		  "--volume-rescan-interval", "7", NULL);

	g_assert_no_error(error);
	g_assert_cmpuint(g_strv_length(options->connect_uris), ==, 2);
	g_assert_cmpstr(options->connect_uris[0], ==, "test:///default");
	g_assert_cmpstr(options->connect_uris[1], ==, "qemu:///system");
	g_assert_cmpuint(options->volume_rescan_interval, ==, 7);
}

/* What systemd sets for a unit with RuntimeDirectory= and CacheDirectory=
 * is the default; the command line still wins. */
static void
test_systemd_dirs(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(LgdOptions) options = NULL;
	g_autoptr(LgdOptions) explicit = NULL;
	g_autoptr(LgdOptions) relative = NULL;

	g_setenv("RUNTIME_DIRECTORY", "/run/lgd-a:/run/lgd-b", TRUE);
	g_setenv("CACHE_DIRECTORY", "/var/cache/lgd-c", TRUE);
	options = parse(&error, "--system", NULL);
	g_assert_no_error(error);
	g_assert_cmpstr(options->run_dir, ==, "/run/lgd-a");
	g_assert_cmpstr(options->cache_dir, ==, "/var/cache/lgd-c");

	explicit = parse(&error, "--system", "--run-dir", "/tmp/lgd-run", "--cache-dir",
			 "/tmp/lgd-cache", NULL);
	g_assert_no_error(error);
	g_assert_cmpstr(explicit->run_dir, ==, "/tmp/lgd-run");
	g_assert_cmpstr(explicit->cache_dir, ==, "/tmp/lgd-cache");

	/* not systemd's doing: ignored */
	g_setenv("RUNTIME_DIRECTORY", "relative", TRUE);
	g_setenv("CACHE_DIRECTORY", "", TRUE);
	relative = parse(&error, "--system", NULL);
	g_assert_no_error(error);
	g_assert_cmpstr(relative->run_dir, !=, "relative");
	g_assert_cmpstr(relative->cache_dir, ==, LGD_CACHE_DIR);
	g_unsetenv("RUNTIME_DIRECTORY");
	g_unsetenv("CACHE_DIRECTORY");
}

static void
test_errors(void)
{
	const gchar *bad[][4] = {
	    {"--system", "--session", NULL},
	    {"--connect", "", NULL},
	    {"-c", "test:///default", "--connect=test:///default", NULL},
	    {"--volume-rescan-interval", "0", NULL},
	    {"--volume-rescan-interval", "x", NULL},
	    {"--no-such-option", NULL},
	    {"stray", NULL},
	    {"--idle-timeout", "0", NULL},
	    {"--launch-timeout", "-1", NULL},
	    {"--max-appliances", "1000", NULL},
	    {"--max-volume-transfers", "0", NULL},
	    {"--max-volume-transfers", "100000", NULL},
	    {"--appliance-memory", "10", NULL},
	    {"--run-dir", "relative/dir", NULL},
	};

	for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(LgdOptions) options =
		    parse(&error, bad[i][0], bad[i][1], bad[i][2], bad[i][3], NULL);

		g_assert_null(options);
		g_assert_error(error, G_OPTION_ERROR, error->code);
		g_assert_nonnull(error->message);
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/options/defaults", test_defaults);
	g_test_add_func("/options/system-default-uri", test_system_default_uri);
	g_test_add_func("/options/connect-repeated", test_connect_repeated);
	g_test_add_func("/options/appliance", test_appliance_options);
	g_test_add_func("/options/systemd-dirs", test_systemd_dirs);
	g_test_add_func("/options/errors", test_errors);
	return g_test_run();
}
