#include "config.h"

#include <gio/gio.h>

#include "lgd-options.h"

#define LGD_DEFAULT_VOLUME_RESCAN_INTERVAL 2
#define LGD_MAX_VOLUME_RESCAN_INTERVAL 3600

void
lgd_options_free(LgdOptions *options)
{
	if (options == NULL)
		return;
	g_strfreev(options->connect_uris);
	g_free(options);
}

LgdOptions *
lgd_options_parse(gint *argc, gchar ***argv, GError **error)
{
	gboolean system = FALSE;
	gboolean session = FALSE;
	gboolean verbose = FALSE;
	gint rescan = LGD_DEFAULT_VOLUME_RESCAN_INTERVAL;
	g_auto(GStrv) uris = NULL;
	g_autoptr(LgdOptions) options = g_new0(LgdOptions, 1);
	g_autoptr(GOptionContext) context = NULL;
	const GOptionEntry entries[] = {
	    {"system", 0, 0, G_OPTION_ARG_NONE, &system, "Serve on the system bus", NULL},
	    {"session", 0, 0, G_OPTION_ARG_NONE, &session, "Serve on the session bus (default)",
	     NULL},
	    {"connect", 'c', 0, G_OPTION_ARG_STRING_ARRAY, &uris,
	     "libvirt URI to serve (repeatable; default qemu:///system on the system bus, "
	     "qemu:///session on the session bus)",
	     "URI"},
	    {"verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose, "Log debug messages", NULL},
	    {"volume-rescan-interval", 0, 0, G_OPTION_ARG_INT, &rescan,
	     "Seconds between re-listings of storage volumes (libvirt sends no event for "
	     "volume creation or deletion; default 2)",
	     "SECONDS"},
	    {NULL},
	};

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
	if (rescan < 1 || rescan > LGD_MAX_VOLUME_RESCAN_INTERVAL) {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
			    "--volume-rescan-interval must be between 1 and %d seconds",
			    LGD_MAX_VOLUME_RESCAN_INTERVAL);
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
