#include "config.h"

#include <errno.h>
#include <gio/gio.h>
#include <libvirt/virterror.h>

#include "lgd-error.h"

static void
test_names(void)
{
	const gchar *required[] = {"Failed",	      "InvalidArgument", "NotFound",
				   "NotAuthorized",   "DomainRunning",	 "InUse",
				   "ApplianceFailed", "TooLarge"};

	for (guint i = 0; i < G_N_ELEMENTS(required); i++) {
		g_autofree gchar *name =
		    g_strdup_printf("org.libvirt.GuestFS.Error.%s", required[i]);
		gboolean found = FALSE;
		for (guint code = 0; code < LGD_ERROR_LAST; code++)
			found |= g_strcmp0(lgd_error_to_dbus_name(code), name) == 0;
		g_assert_true(found);
	}
}

/* An LgdError encodes to its D-Bus name and decodes back to itself. */
static void
test_dbus_round_trip(void)
{
	for (guint code = 0; code < LGD_ERROR_LAST; code++) {
		g_autoptr(GError) error = g_error_new(LGD_ERROR, code, "message %u", code);
		g_autofree gchar *name = g_dbus_error_encode_gerror(error);
		g_autoptr(GError) back = g_dbus_error_new_for_dbus_error(name, "again");

		g_assert_cmpstr(name, ==, lgd_error_to_dbus_name(code));
		g_assert_error(back, LGD_ERROR, (gint)code);
	}
}

static void
test_convert(void)
{
	const struct {
		GQuark domain;
		gint code;
		LgdError expected;
	} cases[] = {
	    {G_IO_ERROR, G_IO_ERROR_NOT_FOUND, LGD_ERROR_NOT_FOUND},
	    {G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, LGD_ERROR_INVALID_ARGUMENT},
	    {G_IO_ERROR, G_IO_ERROR_IS_DIRECTORY, LGD_ERROR_INVALID_ARGUMENT},
	    {G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED, LGD_ERROR_NOT_AUTHORIZED},
	    {G_IO_ERROR, G_IO_ERROR_CANCELLED, LGD_ERROR_CANCELLED},
	    {G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE, LGD_ERROR_CANCELLED},
	    {G_IO_ERROR, G_IO_ERROR_NO_SPACE, LGD_ERROR_TOO_LARGE},
	    {G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK, LGD_ERROR_FAILED},
	    {G_DBUS_ERROR, G_DBUS_ERROR_ACCESS_DENIED, LGD_ERROR_NOT_AUTHORIZED},
	    {G_DBUS_ERROR, G_DBUS_ERROR_INVALID_ARGS, LGD_ERROR_INVALID_ARGUMENT},
	    {G_FILE_ERROR, G_FILE_ERROR_NOENT, LGD_ERROR_NOT_FOUND},
	    {G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, LGD_ERROR_FAILED},
	    {LGD_ERROR, LGD_ERROR_IN_USE, LGD_ERROR_IN_USE},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = g_error_new(cases[i].domain, cases[i].code, "m%u", i);
		g_autofree gchar *message = g_strdup_printf("m%u", i);

		lgd_error_convert(&error);
		g_assert_error(error, LGD_ERROR, (gint)cases[i].expected);
		g_assert_cmpstr(error->message, ==, message);
	}
}

static void
test_libvirt_codes(void)
{
	g_assert_cmpint(lgd_error_code_from_libvirt(VIR_ERR_NO_DOMAIN), ==, LGD_ERROR_NOT_FOUND);
	g_assert_cmpint(lgd_error_code_from_libvirt(VIR_ERR_NO_STORAGE_VOL), ==,
			LGD_ERROR_NOT_FOUND);
	g_assert_cmpint(lgd_error_code_from_libvirt(VIR_ERR_INVALID_ARG), ==,
			LGD_ERROR_INVALID_ARGUMENT);
	g_assert_cmpint(lgd_error_code_from_libvirt(VIR_ERR_ACCESS_DENIED), ==,
			LGD_ERROR_NOT_AUTHORIZED);
	g_assert_cmpint(lgd_error_code_from_libvirt(VIR_ERR_RESOURCE_BUSY), ==, LGD_ERROR_IN_USE);
	g_assert_cmpint(lgd_error_code_from_libvirt(VIR_ERR_NO_CONNECT), ==, LGD_ERROR_UNAVAILABLE);
	g_assert_cmpint(lgd_error_code_from_libvirt(VIR_ERR_INTERNAL_ERROR), ==, LGD_ERROR_FAILED);
}

static void
test_libvirt_last_error(void)
{
	g_autoptr(GError) error = NULL;
	virConnectPtr conn = virConnectOpen("test:///default");

	g_assert_nonnull(conn);
	g_assert_null(virDomainLookupByName(conn, "no-such-domain"));
	lgd_error_set_from_libvirt(&error, "looking up %s", "no-such-domain");
	g_assert_error(error, LGD_ERROR, LGD_ERROR_NOT_FOUND);
	g_assert_true(g_str_has_prefix(error->message, "looking up no-such-domain: "));
	virConnectClose(conn);
}

static void
test_errno(void)
{
	g_assert_cmpint(lgd_error_code_from_errno(ENOENT), ==, LGD_ERROR_NOT_FOUND);
	g_assert_cmpint(lgd_error_code_from_errno(EISDIR), ==, LGD_ERROR_INVALID_ARGUMENT);
	g_assert_cmpint(lgd_error_code_from_errno(EFBIG), ==, LGD_ERROR_TOO_LARGE);
	g_assert_cmpint(lgd_error_code_from_errno(EBUSY), ==, LGD_ERROR_IN_USE);
	g_assert_cmpint(lgd_error_code_from_errno(EIO), ==, LGD_ERROR_FAILED);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	virSetErrorFunc(NULL, NULL);
	g_test_add_func("/error/names", test_names);
	g_test_add_func("/error/dbus-round-trip", test_dbus_round_trip);
	g_test_add_func("/error/convert", test_convert);
	g_test_add_func("/error/libvirt-codes", test_libvirt_codes);
	g_test_add_func("/error/libvirt-last-error", test_libvirt_last_error);
	g_test_add_func("/error/errno", test_errno);
	return g_test_run();
}
