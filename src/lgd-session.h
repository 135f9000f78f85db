/*
 * An appliance session: one libguestfs handle driven by one worker
 * thread, launched on demand and stopped when idle. Calls on one session
 * run one after the other; the main loop never waits on libguestfs.
 * Reference-counted: the guest, every call queued or in flight and the
 * worker thread each hold one, so no thread uses a freed session.
 */
#pragma once

#include <gio/gio.h>
#include <guestfs.h>

#include "lgd-drives.h"
#include "lgd-limit.h"

G_BEGIN_DECLS

typedef enum {
	LGD_APPLIANCE_STOPPED,
	LGD_APPLIANCE_STARTING,
	LGD_APPLIANCE_RUNNING,
	LGD_APPLIANCE_FAILED,
} LgdApplianceState;

typedef struct {
	guint idle_timeout;   /* seconds */
	guint write_grace;    /* seconds, for a read-write appliance */
	guint launch_timeout; /* seconds */
	guint memsize;	      /* MiB, 0 for libguestfs's default */
	gboolean force_tcg;
	/* libguestfs's cache directory, NULL for its default */
	const gchar *appliance_cachedir;
	LgdLimit *limit;
} LgdSessionConfig;

typedef struct _LgdSession LgdSession;
typedef struct _LgdCall LgdCall;

const gchar *lgd_appliance_state_to_string(LgdApplianceState state);

LgdSession *
lgd_session_new(const LgdSessionConfig *config, LgdDriveSource *source, GObject *state_iface);

LgdSession *lgd_session_ref(LgdSession *self);

void lgd_session_unref(LgdSession *self);

void lgd_session_close(LgdSession *self);

gboolean lgd_session_wait_all(guint timeout_seconds);

void lgd_session_push(LgdSession *self, LgdCall *call);

/* For job functions, in the session's thread. */
guestfs_h *lgd_session_get_handle(LgdSession *self, GError **error);

guestfs_h *lgd_session_get_handle_rw(LgdSession *self, GError **error);

void lgd_session_stop_now(LgdSession *self);

void lgd_session_drop(LgdSession *self);

gboolean lgd_session_is_read_write(LgdSession *self);

const gchar *lgd_session_get_mount_tag(LgdSession *self);

void lgd_session_set_mount_tag(LgdSession *self, const gchar *tag);

const gchar *const *lgd_session_get_roots(LgdSession *self);

void lgd_session_set_roots(LgdSession *self, const gchar *const *roots);

typedef struct _LgdResolveCache LgdResolveCache;

LgdResolveCache *lgd_session_get_resolve_cache(LgdSession *self);

void lgd_session_begin_disk_write(void);

void lgd_session_end_disk_write(void);

LgdDriveSource *lgd_session_get_source(LgdSession *self);

void lgd_session_set_error_from_guestfs(LgdSession *self, GError **error, const gchar *what);

G_END_DECLS
