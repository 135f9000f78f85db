/* guestfsctl: the command-line client of libvirt-guestfs-dbus. It talks
 * only D-Bus to the service, like any other client: the service does the
 * work, checks polkit and moves the data through the file descriptors
 * this program passes. */
#include "config.h"

#include <locale.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gctl.h"

gchar *gctl_opt_root = NULL;
gchar *gctl_opt_filesystem = NULL;

static const struct {
	const gchar *name;
	GctlCommandFunc func;
	const gchar *summary;
} gctl_commands[] = {
    {"list", gctl_cmd_list, "List domains and volumes, their state and operating system"},
    {"inspect", gctl_cmd_inspect, "Show the operating systems on a domain's disks"},
    {"apps", gctl_cmd_apps, "List the installed applications"},
    {"icon", gctl_cmd_icon, "Write the operating system's icon (PNG) to stdout"},
    {"filesystems", gctl_cmd_filesystems, "List filesystems, partitions and volumes"},
    {"df", gctl_cmd_df, "Show filesystem usage, like virt-df"},
    {"ls", gctl_cmd_ls, "List a directory"},
    {"stat", gctl_cmd_stat, "Show a file's type, size, mode, owner and time"},
    {"cat", gctl_cmd_cat, "Write files to stdout"},
    {"copy-out", gctl_cmd_copy_out, "Copy files and directories out to a host directory"},
    {"copy-in", gctl_cmd_copy_in, "Copy host files and directories into a guest directory"},
    {"tar-out", gctl_cmd_tar_out, "Write a directory as a tar archive"},
    {"tar-in", gctl_cmd_tar_in, "Unpack a tar archive into a directory"},
    {"write", gctl_cmd_write, "Replace a file with stdin, atomically"},
    {"edit", gctl_cmd_edit, "Edit a file with $EDITOR, replacing it atomically"},
    {"mkdir", gctl_cmd_mkdir, "Create a directory"},
    {"rm", gctl_cmd_rm, "Remove a file or directory"},
    {"mv", gctl_cmd_mv, "Rename a file"},
    {"chmod", gctl_cmd_chmod, "Change a file's permission bits"},
    {"chown", gctl_cmd_chown, "Change a file's owner and group (numbers)"},
    {"ln", gctl_cmd_ln, "Create a symbolic link (ln -s TARGET LINK)"},
    {"vol-download", gctl_cmd_vol_download, "Write a volume's raw bytes to a file or stdout"},
    {"vol-upload", gctl_cmd_vol_upload, "Write a file or stdin into a volume"},
    {"start-appliance", gctl_cmd_start_appliance, "Launch an object's appliance now"},
    {"stop-appliance", gctl_cmd_stop_appliance, "Stop an object's appliance"},
    {"monitor", gctl_cmd_monitor, "Print objects and property changes as they happen"},
    {"jobs", gctl_cmd_jobs, "List the service's jobs (launches, transfers) in progress"},
    {"cancel", gctl_cmd_cancel, "Cancel a job, by its path, number or job-id"},
};

gint
gctl_usage_error(const gchar *command, const gchar *format, ...)
{
	va_list args;
	g_autofree gchar *message = NULL;

	va_start(args, format);
	message = g_strdup_vprintf(format, args);
	va_end(args);
	g_printerr("guestfsctl: %s\n(see 'guestfsctl %s--help')\n", message,
		   command != NULL ? command : "");
	return GCTL_EXIT_USAGE;
}

gboolean
gctl_parse(GctlContext *ctx,
	   gint *argc,
	   gchar ***argv,
	   const GOptionEntry *entries,
	   const gchar *params,
	   const gchar *summary,
	   gint min_args,
	   gint max_args)
{
	const GOptionEntry common[] = {
	    {"json", 'j', 0, G_OPTION_ARG_NONE, &ctx->json,
	     "Print one JSON document (see guestfsctl(1))", NULL},
	    {"quiet", 'q', 0, G_OPTION_ARG_NONE, &ctx->quiet, "Show no progress", NULL},
	    G_OPTION_ENTRY_NULL,
	};
	g_autoptr(GOptionContext) octx = g_option_context_new(params);
	g_autoptr(GError) error = NULL;
	g_autofree gchar *command = g_strdup((*argv)[0]);
	g_autofree gchar *prgname = g_strdup_printf("guestfsctl %s", command);
	gint n;

	g_set_prgname(prgname);
	g_option_context_set_summary(octx, summary);
	if (entries != NULL)
		g_option_context_add_main_entries(octx, entries, NULL);
	g_option_context_add_main_entries(octx, common, NULL);
	if (!g_option_context_parse(octx, argc, argv, &error)) {
		g_autofree gchar *with_space = g_strdup_printf("%s ", command);
		gctl_usage_error(with_space, "%s", error->message);
		return FALSE;
	}
	n = *argc - 1;
	if (n < min_args || (max_args >= 0 && n > max_args)) {
		g_autofree gchar *with_space = g_strdup_printf("%s ", command);
		gctl_usage_error(with_space, "usage: guestfsctl %s %s", command, params);
		return FALSE;
	}
	return TRUE;
}

static gchar *
gctl_commands_help(void)
{
	GString *text = g_string_new("Commands:\n");

	for (gsize i = 0; i < G_N_ELEMENTS(gctl_commands); i++)
		g_string_append_printf(text, "  %-16s %s\n", gctl_commands[i].name,
				       gctl_commands[i].summary);
	g_string_append(text, "\n'guestfsctl COMMAND --help' shows a command's options; "
			      "guestfsctl(1) documents exit statuses and JSON output.");
	return g_string_free(text, FALSE);
}

static GDBusConnection *
gctl_connect(gboolean session, const gchar *address, GError **error)
{
	if (address != NULL)
		return g_dbus_connection_new_for_address_sync(
		    address,
		    G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
			G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
		    NULL, NULL, error);
	return g_bus_get_sync(session ? G_BUS_TYPE_SESSION : G_BUS_TYPE_SYSTEM, NULL, error);
}

int
main(int argc, char **argv)
{
	gboolean opt_system = FALSE;
	gboolean opt_session = FALSE;
	gboolean opt_version = FALSE;
	gboolean opt_no_interaction = FALSE;
	g_autofree gchar *opt_address = NULL;
	gint opt_timeout = 0;
	GctlContext ctx = {0};
	const GOptionEntry entries[] = {
	    {"system", 0, 0, G_OPTION_ARG_NONE, &opt_system,
	     "Talk to the service on the system bus (the default)", NULL},
	    {"session", 0, 0, G_OPTION_ARG_NONE, &opt_session,
	     "Talk to the service on the session bus", NULL},
	    {"address", 0, 0, G_OPTION_ARG_STRING, &opt_address,
	     "Talk to the service on the bus at this D-Bus address", "ADDRESS"},
	    {"timeout", 't', 0, G_OPTION_ARG_INT, &opt_timeout,
	     "Give up a call after SECONDS (default 0: wait as long as it takes)", "SECONDS"},
	    {"no-user-interaction", 0, 0, G_OPTION_ARG_NONE, &opt_no_interaction,
	     "Never let polkit ask for a password", NULL},
	    {"json", 'j', 0, G_OPTION_ARG_NONE, &ctx.json,
	     "Print one JSON document (see guestfsctl(1))", NULL},
	    {"quiet", 'q', 0, G_OPTION_ARG_NONE, &ctx.quiet, "Show no progress", NULL},
	    {"version", 0, 0, G_OPTION_ARG_NONE, &opt_version, "Print the version", NULL},
	    G_OPTION_ENTRY_NULL,
	};
	g_autoptr(GOptionContext) octx = g_option_context_new("COMMAND [ARGUMENTS...]");
	g_autoptr(GError) error = NULL;
	g_autofree gchar *description = gctl_commands_help();
	g_autoptr(GDBusConnection) bus = NULL;
	GctlCommandFunc func = NULL;

	setlocale(LC_ALL, "");
	/* a reader that went away is an error to report, not a signal */
	signal(SIGPIPE, SIG_IGN);

	g_option_context_set_summary(octx, "Inspect and change the disks of libvirt domains "
					   "and volumes through libvirt-guestfs-dbus.");
	g_option_context_set_description(octx, description);
	g_option_context_add_main_entries(octx, entries, NULL);
	/* options after the command are the command's */
	g_option_context_set_strict_posix(octx, TRUE);
	if (!g_option_context_parse(octx, &argc, &argv, &error))
		return gctl_usage_error(NULL, "%s", error->message);
	if (opt_version) {
		g_print("guestfsctl %s\n", VERSION);
		return GCTL_EXIT_OK;
	}
	if (argc < 2)
		return gctl_usage_error(NULL, "no command given");
	for (gsize i = 0; i < G_N_ELEMENTS(gctl_commands); i++) {
		if (g_strcmp0(argv[1], gctl_commands[i].name) == 0)
			func = gctl_commands[i].func;
	}
	if (func == NULL)
		return gctl_usage_error(NULL, "unknown command '%s'", argv[1]);
	if (opt_system + opt_session + (opt_address != NULL) > 1)
		return gctl_usage_error(NULL,
					"--system, --session and --address exclude each other");
	if (opt_timeout < 0 || opt_timeout > G_MAXINT / 1000)
		return gctl_usage_error(NULL, "--timeout must be 0 or a number of seconds");

	bus = gctl_connect(opt_session, opt_address, &error);
	if (bus == NULL) {
		g_printerr("guestfsctl: cannot connect to the %s bus: %s\n",
			   opt_session	 ? "session"
			   : opt_address ? "given"
					 : "system",
			   error->message);
		return GCTL_EXIT_UNAVAILABLE;
	}
	ctx.bus = bus;
	ctx.timeout_msec = opt_timeout > 0 ? opt_timeout * 1000 : G_MAXINT;
	ctx.interactive = !opt_no_interaction;
	return func(&ctx, argc - 1, argv + 1);
}
