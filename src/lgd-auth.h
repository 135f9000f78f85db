/*
 * The one authorization step every content-touching method takes first.
 */
#pragma once

#include <gio/gio.h>

#include "lgd-options.h"

G_BEGIN_DECLS

#define LGD_ACTION_INSPECT "org.libvirt.guestfs.inspect"
#define LGD_ACTION_READ "org.libvirt.guestfs.read"
#define LGD_ACTION_WRITE "org.libvirt.guestfs.write"
#define LGD_ACTION_MANAGE "org.libvirt.guestfs.manage"
#define LGD_ACTION_VOLUME_READ "org.libvirt.guestfs.volume-read"
#define LGD_ACTION_VOLUME_WRITE "org.libvirt.guestfs.volume-write"

/* What polkit is asked: the action, what its rules can match on (NULL
 * members are left out) and the message of the authentication dialog. */
typedef struct {
	const gchar *action_id;
	const gchar *message; /* translated already; NULL: polkit's own */
	const gchar *connection;
	const gchar *domain;
	const gchar *domain_uuid;
	const gchar *pool;
	const gchar *volume;
	const gchar *volume_key;
	const gchar *volume_path;
	const gchar *path;	     /* resolved in the guest: no link in it */
	const gchar *requested_path; /* as the caller gave it, when it differs */
	const gchar *root;	     /* the operating system the call is about */
	const gchar *filesystem;     /* the one filesystem the call mounts */
} LgdAuthDetails;

#define LGD_TYPE_AUTH (lgd_auth_get_type())
G_DECLARE_FINAL_TYPE(LgdAuth, lgd_auth, LGD, AUTH, GObject)

/* How long polkit may take to decide, without and with a dialog. */
#define LGD_AUTH_DEFAULT_TIMEOUT 30
#define LGD_AUTH_DEFAULT_INTERACTIVE_TIMEOUT 300

LgdAuth *lgd_auth_new(LgdBusType bus_type, GError **error);

void lgd_auth_set_timeouts(LgdAuth *self, guint seconds, guint interactive_seconds);

void lgd_auth_check_async(LgdAuth *self,
			  GDBusMethodInvocation *invocation,
			  const LgdAuthDetails *details,
			  GAsyncReadyCallback callback,
			  gpointer user_data);

gboolean lgd_auth_check_finish(LgdAuth *self, GAsyncResult *result, GError **error);

gboolean lgd_auth_check(LgdAuth *self,
			GDBusMethodInvocation *invocation,
			const LgdAuthDetails *details,
			GError **error);

gchar *lgd_auth_message(const gchar *action_id, const gchar *what);

G_END_DECLS
