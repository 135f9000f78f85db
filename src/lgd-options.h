/* The daemon's command line. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
	LGD_BUS_SESSION,
	LGD_BUS_SYSTEM,
} LgdBusType;

typedef struct {
	LgdBusType bus_type;
	gchar **connect_uris; /* never empty after parsing */
	gboolean verbose;
	guint volume_rescan_interval;	/* seconds */
	guint idle_timeout;		/* seconds */
	guint write_grace;		/* seconds a read-write appliance outlives its last call */
	guint transfer_idle_timeout;	/* seconds a client fd may stall a transfer */
	guint launch_timeout;		/* seconds */
	guint auth_timeout;		/* seconds polkit may take */
	guint interactive_auth_timeout; /* the same with a dialog */
	guint max_appliances;		/* 0: derived from memory */
	guint max_calls_per_caller;	/* calls one client may have in progress */
	guint max_volume_transfers;	/* volume streams running at once */
	guint appliance_memory;		/* MiB, 0: libguestfs's default */
	gboolean force_tcg;
	guint64 max_read_size;	   /* bytes */
	gchar *run_dir;		   /* never NULL after parsing */
	gchar *cache_dir;	   /* never NULL after parsing */
	guint64 cache_max_size;	   /* bytes */
	gboolean batch_inspection; /* default: on for the session bus only */
} LgdOptions;

LgdOptions *lgd_options_parse(gint *argc, gchar ***argv, GError **error);

void lgd_options_free(LgdOptions *options);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(LgdOptions, lgd_options_free)

G_END_DECLS
