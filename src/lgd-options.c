#include "config.h"

#include <gio/gio.h>
#include <unistd.h>

#include "lgd-admit.h"
#include "lgd-auth.h"
#include "lgd-options.h"

#define LGD_DEFAULT_VOLUME_RESCAN_INTERVAL 2
#define LGD_MAX_VOLUME_RESCAN_INTERVAL 3600
#define LGD_DEFAULT_IDLE_TIMEOUT 60
#define LGD_DEFAULT_WRITE_GRACE 5
#define LGD_DEFAULT_TRANSFER_IDLE_TIMEOUT 60
#define LGD_DEFAULT_LAUNCH_TIMEOUT 300
#define LGD_MAX_TIMEOUT (24 * 3600)
#define LGD_MAX_APPLIANCES 64
#define LGD_DEFAULT_VOLUME_TRANSFERS 16
#define LGD_MAX_VOLUME_TRANSFERS 256
#define LGD_MIN_APPLIANCE_MEMORY 256
#define LGD_MAX_APPLIANCE_MEMORY (64 * 1024)
#define LGD_DEFAULT_MAX_READ_MIB 16
#define LGD_DEFAULT_CACHE_MIB 64
#define LGD_MAX_CACHE_MIB (64 * 1024)
/* D-Bus messages are at most 128 MiB */
#define LGD_MAX_MAX_READ_MIB 100

/* An option of the command line; an integer one with the range that its
 * value must be in. */
typedef struct {
	GOptionEntry entry;
	gint min;
	gint max;
	gboolean or_zero; /* 0, the default, is accepted too */
} LgdOptionDef;

#define LGD_RANGE(lowest, highest) .min = (lowest), .max = (highest)

/* The one range check of the integer options. */
static gboolean
lgd_options_check_range(const LgdOptionDef *def, GError **error)
{
	gint value;

	if (def->entry.arg != G_OPTION_ARG_INT)
		return TRUE;
	value = *(const gint *)def->entry.arg_data;
	if ((value >= def->min && value <= def->max) || (def->or_zero && value == 0))
		return TRUE;
	g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
		    "--%s must be between %d and %d", def->entry.long_name, def->min, def->max);
	return FALSE;
}

/* The directory systemd made for the service when its unit asks for one
 * (RuntimeDirectory=, CacheDirectory=): systemd passes it in VARIABLE, a
 * colon-separated list when the unit names several. Taking it keeps the
 * daemon inside what its sandbox lets it write, whatever the build's
 * prefix. */
static gchar *
lgd_options_systemd_dir(const gchar *variable)
{
	const gchar *value = g_getenv(variable);
	g_auto(GStrv) dirs = NULL;

	if (value == NULL)
		return NULL;
	dirs = g_strsplit(value, ":", 2);
	if (dirs[0] == NULL || !g_path_is_absolute(dirs[0]))
		return NULL;
	return g_strdup(dirs[0]);
}

void
lgd_options_free(LgdOptions *options)
{
	if (options == NULL)
		return;
	g_strfreev(options->connect_uris);
	g_free(options->run_dir);
	g_free(options->cache_dir);
	g_free(options);
}

LgdOptions *
lgd_options_parse(gint *argc, gchar ***argv, GError **error)
{
	gboolean system = FALSE;
	gboolean session = FALSE;
	gboolean verbose = FALSE;
	gint rescan = LGD_DEFAULT_VOLUME_RESCAN_INTERVAL;
	gint idle_timeout = LGD_DEFAULT_IDLE_TIMEOUT;
	gint write_grace = LGD_DEFAULT_WRITE_GRACE;
	gint transfer_idle = LGD_DEFAULT_TRANSFER_IDLE_TIMEOUT;
	gint launch_timeout = LGD_DEFAULT_LAUNCH_TIMEOUT;
	gint auth_timeout = LGD_AUTH_DEFAULT_TIMEOUT;
	gint interactive_auth_timeout = LGD_AUTH_DEFAULT_INTERACTIVE_TIMEOUT;
	gint max_appliances = 0;
	gint max_volume_transfers = LGD_DEFAULT_VOLUME_TRANSFERS;
	gint max_caller_calls = LGD_DEFAULT_CALLS_PER_CALLER;
	gint appliance_memory = 0;
	gboolean force_tcg = FALSE;
	gint max_read_mib = LGD_DEFAULT_MAX_READ_MIB;
	g_autofree gchar *run_dir = NULL;
	g_autofree gchar *cache_dir = NULL;
	gint cache_max_mib = LGD_DEFAULT_CACHE_MIB;
	gboolean batch = FALSE;
	gboolean no_batch = FALSE;
	g_auto(GStrv) uris = NULL;
	g_autoptr(LgdOptions) options = g_new0(LgdOptions, 1);
	g_autoptr(GOptionContext) context = NULL;
	const LgdOptionDef defs[] = {
	    {{"system", 0, 0, G_OPTION_ARG_NONE, &system, "Serve on the system bus", NULL}},
	    {{"session", 0, 0, G_OPTION_ARG_NONE, &session, "Serve on the session bus (default)",
	      NULL}},
	    {{"connect", 'c', 0, G_OPTION_ARG_STRING_ARRAY, &uris,
	      "libvirt URI to serve (repeatable; default qemu:///system on the system bus, "
	      "qemu:///session on the session bus)",
	      "URI"}},
	    {{"verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose, "Log debug messages", NULL}},
	    {{"volume-rescan-interval", 0, 0, G_OPTION_ARG_INT, &rescan,
	      "Seconds between re-listings of storage volumes (libvirt sends no event for "
	      "volume creation or deletion; default 2)",
	      "SECONDS"},
	     LGD_RANGE(1, LGD_MAX_VOLUME_RESCAN_INTERVAL)},
	    {{"idle-timeout", 0, 0, G_OPTION_ARG_INT, &idle_timeout,
	      "Seconds an appliance is kept running without calls (default 60)", "SECONDS"},
	     LGD_RANGE(1, LGD_MAX_TIMEOUT)},
	    {{"transfer-idle-timeout", 0, 0, G_OPTION_ARG_INT, &transfer_idle,
	      "Seconds a transfer waits for a client's file descriptor to move before it "
	      "ends with Cancelled (default 60)",
	      "SECONDS"},
	     LGD_RANGE(1, LGD_MAX_TIMEOUT)},
	    {{"write-grace", 0, 0, G_OPTION_ARG_INT, &write_grace,
	      "Seconds a read-write appliance is kept after the last write; it holds the "
	      "domain's disks, so the domain cannot start meanwhile (default 5)",
	      "SECONDS"},
	     LGD_RANGE(1, LGD_MAX_TIMEOUT)},
	    {{"auth-timeout", 0, 0, G_OPTION_ARG_INT, &auth_timeout,
	      "Seconds polkit may take to decide on a call before it is refused (default 30)",
	      "SECONDS"},
	     LGD_RANGE(1, LGD_MAX_TIMEOUT)},
	    {{"interactive-auth-timeout", 0, 0, G_OPTION_ARG_INT, &interactive_auth_timeout,
	      "The same for a call that allows an authentication dialog (default 300)", "SECONDS"},
	     LGD_RANGE(1, LGD_MAX_TIMEOUT)},
	    {{"launch-timeout", 0, 0, G_OPTION_ARG_INT, &launch_timeout,
	      "Seconds an appliance may take to launch before it is given up (default 300)",
	      "SECONDS"},
	     LGD_RANGE(1, LGD_MAX_TIMEOUT)},
	    {{"max-appliances", 0, 0, G_OPTION_ARG_INT, &max_appliances,
	      "How many appliances may run at once; further calls wait their turn (default: "
	      "as many as half of the memory holds)",
	      "N"},
	     LGD_RANGE(0, LGD_MAX_APPLIANCES)},
	    {{"max-volume-transfers", 0, 0, G_OPTION_ARG_INT, &max_volume_transfers,
	      "How many volume downloads and uploads may run at once; further ones wait "
	      "their turn (default 16)",
	      "N"},
	     LGD_RANGE(1, LGD_MAX_VOLUME_TRANSFERS)},
	    {{"max-calls-per-caller", 0, 0, G_OPTION_ARG_INT, &max_caller_calls,
	      "How many calls one client may have in progress at once; beyond that its calls "
	      "are refused with Busy (default 64)",
	      "N"},
	     LGD_RANGE(1, LGD_MAX_CALLS_PER_CALLER)},
	    {{"appliance-memory", 0, 0, G_OPTION_ARG_INT, &appliance_memory,
	      "Memory of each appliance in MiB (default: libguestfs's)", "MIB"},
	     LGD_RANGE(LGD_MIN_APPLIANCE_MEMORY, LGD_MAX_APPLIANCE_MEMORY),
	     .or_zero = TRUE},
	    {{"force-tcg", 0, 0, G_OPTION_ARG_NONE, &force_tcg,
	      "Run appliances under software emulation (TCG) even where KVM exists; for hosts "
	      "where KVM is broken or nested",
	      NULL}},
	    {{"max-read-size", 0, 0, G_OPTION_ARG_INT, &max_read_mib,
	      "Most MiB that ReadFile returns and WriteFile takes; bigger files go through "
	      "Download and Upload (default 16)",
	      "MIB"},
	     LGD_RANGE(1, LGD_MAX_MAX_READ_MIB)},
	    {{"cache-dir", 0, 0, G_OPTION_ARG_FILENAME, &cache_dir,
	      "Directory of the inspection cache (default $CACHE_DIRECTORY when systemd sets it, "
	      "else /var/cache/libvirt-guestfs-dbus on the system bus, the XDG cache directory "
	      "on the session bus)",
	      "DIR"}},
	    {{"cache-max-size", 0, 0, G_OPTION_ARG_INT, &cache_max_mib,
	      "Most MiB the inspection cache keeps; the oldest entries go first (default 64)",
	      "MIB"},
	     LGD_RANGE(1, LGD_MAX_CACHE_MIB)},
	    {{"batch-inspection", 0, 0, G_OPTION_ARG_NONE, &batch,
	      "Let InspectDomains put several domains' disks into one appliance (default on the "
	      "session bus only: see the README for the security trade-off)",
	      NULL}},
	    {{"no-batch-inspection", 0, 0, G_OPTION_ARG_NONE, &no_batch,
	      "One appliance per domain in InspectDomains", NULL}},
	    {{"run-dir", 0, 0, G_OPTION_ARG_FILENAME, &run_dir,
	      "Directory for runtime files such as backup sockets (default $RUNTIME_DIRECTORY "
	      "when systemd sets it, else /run/libvirt-guestfs-dbus for root, "
	      "$XDG_RUNTIME_DIR/libvirt-guestfs-dbus otherwise, "
	      "$XDG_CACHE_HOME/libvirt-guestfs-dbus-run without XDG_RUNTIME_DIR)",
	      "DIR"}},
	};
	GOptionEntry entries[G_N_ELEMENTS(defs) + 1] = {{NULL}};

	for (guint i = 0; i < G_N_ELEMENTS(defs); i++)
		entries[i] = defs[i].entry;
	context = g_option_context_new(NULL);
	g_option_context_set_summary(
	    context, "Publishes libvirt domains and storage volumes on D-Bus and gives "
		     "polkit-authorized access to their disks through libguestfs.");
	g_option_context_add_main_entries(context, entries, NULL);
	if (!g_option_context_parse(context, argc, argv, error))
		return NULL;

	if (system && session) {
		g_set_error_literal(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
				    "--system and --session cannot be used together");
		return NULL;
	}
	if (*argc > 1) {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
			    "unexpected argument '%s'", (*argv)[1]);
		return NULL;
	}
	if (batch && no_batch) {
		g_set_error_literal(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
				    "--batch-inspection and --no-batch-inspection cannot be used "
				    "together");
		return NULL;
	}
	for (guint i = 0; i < G_N_ELEMENTS(defs); i++) {
		if (!lgd_options_check_range(&defs[i], error))
			return NULL;
	}
	if (cache_dir != NULL && !g_path_is_absolute(cache_dir)) {
		g_set_error_literal(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
				    "--cache-dir needs an absolute path");
		return NULL;
	}
	if (run_dir != NULL && !g_path_is_absolute(run_dir)) {
		g_set_error_literal(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
				    "--run-dir needs an absolute path");
		return NULL;
	}
	for (guint i = 0; uris != NULL && uris[i] != NULL; i++) {
		if (uris[i][0] == '\0') {
			g_set_error_literal(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
					    "--connect needs a libvirt URI");
			return NULL;
		}
		for (guint j = 0; j < i; j++) {
			if (g_strcmp0(uris[i], uris[j]) == 0) {
				g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
					    "--connect %s is given twice", uris[i]);
				return NULL;
			}
		}
	}

	options->bus_type = system ? LGD_BUS_SYSTEM : LGD_BUS_SESSION;
	options->verbose = verbose;
	options->volume_rescan_interval = (guint)rescan;
	options->idle_timeout = (guint)idle_timeout;
	options->write_grace = (guint)write_grace;
	options->transfer_idle_timeout = (guint)transfer_idle;
	options->launch_timeout = (guint)launch_timeout;
	options->auth_timeout = (guint)auth_timeout;
	options->interactive_auth_timeout = (guint)interactive_auth_timeout;
	options->max_appliances = (guint)max_appliances;
	options->max_volume_transfers = (guint)max_volume_transfers;
	options->max_calls_per_caller = (guint)max_caller_calls;
	options->appliance_memory = (guint)appliance_memory;
	options->force_tcg = force_tcg;
	options->max_read_size = (guint64)max_read_mib * 1024 * 1024;
	options->cache_max_size = (guint64)cache_max_mib * 1024 * 1024;
	options->batch_inspection = batch || (!no_batch && options->bus_type == LGD_BUS_SESSION);
	if (cache_dir == NULL)
		cache_dir = lgd_options_systemd_dir("CACHE_DIRECTORY");
	if (run_dir == NULL)
		run_dir = lgd_options_systemd_dir("RUNTIME_DIRECTORY");
	if (cache_dir != NULL)
		options->cache_dir = g_steal_pointer(&cache_dir);
	else if (options->bus_type == LGD_BUS_SYSTEM)
		options->cache_dir = g_strdup(LGD_CACHE_DIR);
	else
		options->cache_dir =
		    g_build_filename(g_get_user_cache_dir(), "libvirt-guestfs-dbus", NULL);
	if (run_dir != NULL)
		options->run_dir = g_steal_pointer(&run_dir);
	else if (getuid() == 0)
		/* qemu (another user) must reach backup sockets in here */
		options->run_dir = g_strdup("/run/libvirt-guestfs-dbus");
	else if (g_getenv("XDG_RUNTIME_DIR") != NULL)
		options->run_dir =
		    g_build_filename(g_get_user_runtime_dir(), "libvirt-guestfs-dbus", NULL);
	else
		/* GLib's runtime directory would then be the cache directory,
		 * and ours the inspection cache's: keep sockets out of it */
		options->run_dir =
		    g_build_filename(g_get_user_cache_dir(), "libvirt-guestfs-dbus-run", NULL);
	if (uris != NULL && uris[0] != NULL) {
		options->connect_uris = g_steal_pointer(&uris);
	} else {
		const gchar *def =
		    options->bus_type == LGD_BUS_SYSTEM ? "qemu:///system" : "qemu:///session";
		options->connect_uris = g_new0(gchar *, 2);
		options->connect_uris[0] = g_strdup(def);
	}
	return g_steal_pointer(&options);
}
