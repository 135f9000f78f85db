#include "config.h"

#include <glib/gi18n.h>
#include <polkit/polkit.h>
#include <unistd.h>

#include "lgd-auth.h"
#include "lgd-error.h"

struct _LgdAuth {
	GObject parent_instance;
	LgdBusType bus_type;
	PolkitAuthority *authority; /* system bus only */
};

G_DEFINE_TYPE(LgdAuth, lgd_auth, G_TYPE_OBJECT)

static void
lgd_auth_finalize(GObject *object)
{
	LgdAuth *self = LGD_AUTH(object);
	g_clear_object(&self->authority);
	G_OBJECT_CLASS(lgd_auth_parent_class)->finalize(object);
}

static void
lgd_auth_class_init(LgdAuthClass *klass)
{
	G_OBJECT_CLASS(klass)->finalize = lgd_auth_finalize;
}

static void
lgd_auth_init(LgdAuth *self)
{
}

LgdAuth *
lgd_auth_new(LgdBusType bus_type, GError **error)
{
	g_autoptr(LgdAuth) self = g_object_new(LGD_TYPE_AUTH, NULL);

	self->bus_type = bus_type;
	if (bus_type == LGD_BUS_SYSTEM) {
		self->authority = polkit_authority_get_sync(NULL, error);
		if (self->authority == NULL) {
			g_prefix_error(error, "cannot reach polkit: ");
			return NULL;
		}
	}
	return g_steal_pointer(&self);
}

/* On the session bus the bus owner is the only peer that matters: the bus
 * is the user's own, and so is qemu:///session. */
static gboolean
lgd_auth_check_session(GDBusMethodInvocation *invocation, GError **error)
{
	GDBusConnection *bus = g_dbus_method_invocation_get_connection(invocation);
	const gchar *sender = g_dbus_method_invocation_get_sender(invocation);
	g_autoptr(GVariant) reply = NULL;
	guint32 uid;

	if (sender == NULL)
		return TRUE; /* peer-to-peer connection: the peer is the owner */
	reply = g_dbus_connection_call_sync(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
					    "org.freedesktop.DBus", "GetConnectionUnixUser",
					    g_variant_new("(s)", sender), G_VARIANT_TYPE("(u)"),
					    G_DBUS_CALL_FLAGS_NONE, -1, NULL, error);
	if (reply == NULL)
		return FALSE;
	g_variant_get(reply, "(u)", &uid);
	if (uid != getuid()) {
		g_set_error(error, LGD_ERROR, LGD_ERROR_NOT_AUTHORIZED,
			    "Only the owner of this session bus (uid %u) may do this; "
			    "the caller is uid %u",
			    (guint)getuid(), uid);
		return FALSE;
	}
	return TRUE;
}

static PolkitDetails *
lgd_auth_details_new(const LgdAuthDetails *details, const gchar *message)
{
	PolkitDetails *pk = polkit_details_new();
	const struct {
		const gchar *key;
		const gchar *value;
	} items[] = {
	    {"connection", details->connection},
	    {"domain", details->domain},
	    {"domain-uuid", details->domain_uuid},
	    {"pool", details->pool},
	    {"volume", details->volume},
	    {"volume-key", details->volume_key},
	    {"volume-path", details->volume_path},
	    {"path", details->path},
	    {"requested-path", details->requested_path},
	    {"root", details->root},
	    {"filesystem", details->filesystem},
	};

	for (guint i = 0; i < G_N_ELEMENTS(items); i++) {
		if (items[i].value != NULL)
			polkit_details_insert(pk, items[i].key, items[i].value);
	}
	if (message != NULL) {
		polkit_details_insert(pk, "polkit.message", message);
		polkit_details_insert(pk, "polkit.gettext_domain", GETTEXT_PACKAGE);
	}
	return pk;
}

/* Returns TRUE when the caller of @invocation may perform @action_id on the
 * object that @details describe; @message is shown in authentication
 * dialogs and is already translated. */
gboolean
lgd_auth_check(LgdAuth *self,
	       GDBusMethodInvocation *invocation,
	       const gchar *action_id,
	       const LgdAuthDetails *details,
	       const gchar *message,
	       GError **error)
{
	GDBusMessage *msg = g_dbus_method_invocation_get_message(invocation);
	PolkitCheckAuthorizationFlags flags = POLKIT_CHECK_AUTHORIZATION_FLAGS_NONE;
	g_autoptr(PolkitSubject) subject = NULL;
	g_autoptr(PolkitDetails) pk_details = NULL;
	g_autoptr(PolkitAuthorizationResult) result = NULL;
	g_autoptr(GError) local_error = NULL;

	g_return_val_if_fail(LGD_IS_AUTH(self), FALSE);
	g_return_val_if_fail(action_id != NULL, FALSE);

	if (self->bus_type == LGD_BUS_SESSION)
		return lgd_auth_check_session(invocation, error);
	/* The caller says whether it can wait for an authentication dialog. */
	if (g_dbus_message_get_flags(msg) & G_DBUS_MESSAGE_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION)
		flags |= POLKIT_CHECK_AUTHORIZATION_FLAGS_ALLOW_USER_INTERACTION;

	subject = polkit_system_bus_name_new(g_dbus_method_invocation_get_sender(invocation));
	pk_details = lgd_auth_details_new(details, message);
	result = polkit_authority_check_authorization_sync(self->authority, subject, action_id,
							   pk_details, flags, NULL, &local_error);
	if (result == NULL) {
		g_set_error(error, LGD_ERROR, LGD_ERROR_NOT_AUTHORIZED,
			    "Could not check authorization for %s with polkit: %s", action_id,
			    local_error->message);
		return FALSE;
	}
	if (polkit_authorization_result_get_is_authorized(result))
		return TRUE;
	if (polkit_authorization_result_get_is_challenge(result)) {
		g_set_error(error, LGD_ERROR, LGD_ERROR_NOT_AUTHORIZED,
			    "Authentication is required for %s; call again allowing "
			    "interactive authorization",
			    action_id);
		return FALSE;
	}
	g_set_error(error, LGD_ERROR, LGD_ERROR_NOT_AUTHORIZED, "Not authorized for %s", action_id);
	return FALSE;
}

/* The message an authentication dialog shows for @action_id, translated,
 * naming the domain or volume (@what). */
gchar *
lgd_auth_message(const gchar *action_id, const gchar *what)
{
	const struct {
		const gchar *action_id;
		const gchar *message;
	} messages[] = {
	    {LGD_ACTION_INSPECT, N_("Authentication is required to inspect the disks of {object}")},
	    {LGD_ACTION_READ, N_("Authentication is required to read files on {object}")},
	    {LGD_ACTION_WRITE, N_("Authentication is required to change files on {object}")},
	    {LGD_ACTION_MANAGE, N_("Authentication is required to start or stop the appliance "
				   "of {object}")},
	    {LGD_ACTION_VOLUME_READ,
	     N_("Authentication is required to read storage volume {object}")},
	    {LGD_ACTION_VOLUME_WRITE,
	     N_("Authentication is required to write storage volume {object}")},
	};

	for (guint i = 0; i < G_N_ELEMENTS(messages); i++) {
		if (g_strcmp0(messages[i].action_id, action_id) == 0) {
			GString *message = g_string_new(_(messages[i].message));
			g_string_replace(message, "{object}", what != NULL ? what : "?", 0);
			return g_string_free(message, FALSE);
		}
	}
	return NULL;
}
