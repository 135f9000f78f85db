#include "config.h"

#include <glib-unix.h>
#include <glib/gi18n.h>
#include <libvirt-glib/libvirt-glib.h>
#include <libvirt/virterror.h>
#include <locale.h>
#include <signal.h>

#include "lgd-daemon.h"
#include "lgd-options.h"

/* libvirt prints every error to stderr by default; the service reports
 * the ones that matter itself, with context. */
static void
lgd_libvirt_error_quiet(void *user_data, virErrorPtr error)
{
	g_debug("libvirt: %s", error->message);
}

static gboolean
lgd_on_signal(gpointer user_data)
{
	g_main_loop_quit(user_data);
	return G_SOURCE_CONTINUE;
}

int
main(int argc, char *argv[])
{
	g_autoptr(LgdOptions) options = NULL;
	g_autoptr(LgdDaemon) daemon = NULL;
	g_autoptr(GMainLoop) loop = NULL;
	g_autoptr(GError) error = NULL;

	setlocale(LC_ALL, "");
	bindtextdomain(GETTEXT_PACKAGE, LOCALEDIR);
	bind_textdomain_codeset(GETTEXT_PACKAGE, "UTF-8");

	options = lgd_options_parse(&argc, &argv, &error);
	if (options == NULL) {
		g_printerr("libvirt-guestfs-dbus: %s (see --help)\n", error->message);
		return EXIT_FAILURE;
	}
	/* Our own debug messages only: libvirt-glib's event loop logs every
	 * file descriptor it watches. */
	if (options->verbose)
		g_setenv("G_MESSAGES_DEBUG", G_LOG_DOMAIN, FALSE);

	virSetErrorFunc(NULL, lgd_libvirt_error_quiet);
	/* libvirt events (domain lifecycle, pools, connection close) are
	 * dispatched from the GLib main loop. */
	gvir_event_register();

	/* a client that closes its end of a transfer is an error to report,
	 * not a reason to die */
	signal(SIGPIPE, SIG_IGN);

	loop = g_main_loop_new(NULL, FALSE);
	g_unix_signal_add(SIGTERM, lgd_on_signal, loop);
	g_unix_signal_add(SIGINT, lgd_on_signal, loop);

	daemon = lgd_daemon_new(options);
	if (!lgd_daemon_start(daemon, &error)) {
		g_printerr("libvirt-guestfs-dbus: %s\n", error->message);
		return EXIT_FAILURE;
	}
	g_main_loop_run(loop);
	g_info("exiting");
	lgd_daemon_stop(daemon);
	return EXIT_SUCCESS;
}
