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
	guint timeout;		    /* seconds a check may take */
	guint interactive_timeout;  /* the same when a dialog may be shown */
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
	self->timeout = LGD_AUTH_DEFAULT_TIMEOUT;
	self->interactive_timeout = LGD_AUTH_DEFAULT_INTERACTIVE_TIMEOUT;
	if (bus_type == LGD_BUS_SYSTEM) {
		self->authority = polkit_authority_get_sync(NULL, error);
		if (self->authority == NULL) {
			g_prefix_error(error, "cannot reach polkit: ");
			return NULL;
		}
	}
	return g_steal_pointer(&self);
}

static PolkitDetails *
lgd_auth_details_new(const LgdAuthDetails *details)
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
	if (details->message != NULL) {
		polkit_details_insert(pk, "polkit.message", details->message);
		polkit_details_insert(pk, "polkit.gettext_domain", GETTEXT_PACKAGE);
	}
	return pk;
}

/* Bounds every check: @seconds without a dialog, @interactive_seconds
 * when the caller allowed one. Set once at start-up. */
void
lgd_auth_set_timeouts(LgdAuth *self, guint seconds, guint interactive_seconds)
{
	self->timeout = seconds;
	self->interactive_timeout = MAX(seconds, interactive_seconds);
}

/* ---- one check, asynchronous and bounded ------------------------------- */

typedef struct {
	gchar *action_id;
	GCancellable *cancellable;
	GSource *timeout;
	guint seconds;
	gboolean timed_out;
} LgdAuthCheck;

static void
lgd_auth_check_free(gpointer data)
{
	LgdAuthCheck *check = data;

	if (check->timeout != NULL) {
		g_source_destroy(check->timeout);
		g_source_unref(check->timeout);
	}
	g_clear_object(&check->cancellable);
	g_free(check->action_id);
	g_free(check);
}

static gboolean
lgd_auth_check_expired(gpointer user_data)
{
	LgdAuthCheck *check = user_data;

	check->timed_out = TRUE;
	g_cancellable_cancel(check->cancellable);
	return G_SOURCE_REMOVE;
}

/* The one error of a check that got no answer: a timeout is told as a
 * refusal saying so, anything else (polkitd gone, the caller gone) as
 * AuthorizationFailed, which is not a denial. */
static void
lgd_auth_check_failed(GTask *task, GError *cause)
{
	LgdAuthCheck *check = g_task_get_task_data(task);

	if (check->timed_out)
		g_task_return_new_error(task, LGD_ERROR, LGD_ERROR_NOT_AUTHORIZED,
					"Authorization for %s got no answer within %u s; try "
					"again (an authentication dialog must be answered in time)",
					check->action_id, check->seconds);
	else
		g_task_return_new_error(task, LGD_ERROR, LGD_ERROR_AUTHORIZATION_FAILED,
					"Could not check authorization for %s: %s",
					check->action_id, cause->message);
}

static void
lgd_auth_unix_user_done(GObject *source, GAsyncResult *result, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply =
	    g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, &error);
	guint32 uid;

	if (reply == NULL) {
		lgd_auth_check_failed(task, error);
		return;
	}
	g_variant_get(reply, "(u)", &uid);
	if (uid != getuid()) {
		g_task_return_new_error(task, LGD_ERROR, LGD_ERROR_NOT_AUTHORIZED,
					"Only the owner of this session bus (uid %u) may do "
					"this; the caller is uid %u",
					(guint)getuid(), uid);
		return;
	}
	g_task_return_boolean(task, TRUE);
}

/* On the session bus the bus owner is the only peer that matters: the bus
 * is the user's own, and so is qemu:///session. */
static void
lgd_auth_check_session(GTask *task, GDBusMethodInvocation *invocation)
{
	LgdAuthCheck *check = g_task_get_task_data(task);
	GDBusConnection *bus = g_dbus_method_invocation_get_connection(invocation);
	const gchar *sender = g_dbus_method_invocation_get_sender(invocation);

	if (sender == NULL) {
		/* peer-to-peer connection: the peer is the owner */
		g_task_return_boolean(task, TRUE);
		g_object_unref(task);
		return;
	}
	g_dbus_connection_call(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
			       "org.freedesktop.DBus", "GetConnectionUnixUser",
			       g_variant_new("(s)", sender), G_VARIANT_TYPE("(u)"),
			       G_DBUS_CALL_FLAGS_NONE, (gint)check->seconds * 1000,
			       check->cancellable, lgd_auth_unix_user_done, task);
}

static void
lgd_auth_polkit_done(GObject *source, GAsyncResult *res, gpointer user_data)
{
	g_autoptr(GTask) task = user_data;
	LgdAuthCheck *check = g_task_get_task_data(task);
	g_autoptr(GError) error = NULL;
	g_autoptr(PolkitAuthorizationResult) result =
	    polkit_authority_check_authorization_finish(POLKIT_AUTHORITY(source), res, &error);

	if (result == NULL)
		lgd_auth_check_failed(task, error);
	else if (polkit_authorization_result_get_is_authorized(result))
		g_task_return_boolean(task, TRUE);
	else if (polkit_authorization_result_get_is_challenge(result))
		g_task_return_new_error(task, LGD_ERROR, LGD_ERROR_NOT_AUTHORIZED,
					"Authentication is required for %s; call again allowing "
					"interactive authorization",
					check->action_id);
	else
		g_task_return_new_error(task, LGD_ERROR, LGD_ERROR_NOT_AUTHORIZED,
					"Not authorized for %s", check->action_id);
}

/* Asks whether the caller of @invocation may perform the action of
 * @details on the object that they describe. Holds no thread while polkit (or an
 * authentication dialog) decides, and gives up after the timeout;
 * @callback runs in the thread-default main context of the caller. */
void
lgd_auth_check_async(LgdAuth *self,
		     GDBusMethodInvocation *invocation,
		     const LgdAuthDetails *details,
		     GAsyncReadyCallback callback,
		     gpointer user_data)
{
	const gchar *action_id = details->action_id;
	GDBusMessage *msg = g_dbus_method_invocation_get_message(invocation);
	gboolean interactive = (g_dbus_message_get_flags(msg) &
				G_DBUS_MESSAGE_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION) != 0;
	PolkitCheckAuthorizationFlags flags = POLKIT_CHECK_AUTHORIZATION_FLAGS_NONE;
	GTask *task = g_task_new(self, NULL, callback, user_data);
	LgdAuthCheck *check = g_new0(LgdAuthCheck, 1);
	g_autoptr(PolkitSubject) subject = NULL;
	g_autoptr(PolkitDetails) pk_details = NULL;

	g_return_if_fail(LGD_IS_AUTH(self));
	g_return_if_fail(action_id != NULL);

	check->action_id = g_strdup(action_id);
	check->cancellable = g_cancellable_new();
	/* a person answering a dialog gets longer than polkitd alone */
	check->seconds = interactive ? self->interactive_timeout : self->timeout;
	g_task_set_task_data(task, check, lgd_auth_check_free);
	check->timeout = g_timeout_source_new_seconds(check->seconds);
	g_source_set_callback(check->timeout, lgd_auth_check_expired, check, NULL);
	g_source_attach(check->timeout, g_main_context_get_thread_default());

	if (self->bus_type == LGD_BUS_SESSION) {
		lgd_auth_check_session(task, invocation);
		return;
	}
	/* The caller says whether it can wait for an authentication dialog. */
	if (interactive)
		flags |= POLKIT_CHECK_AUTHORIZATION_FLAGS_ALLOW_USER_INTERACTION;
	subject = polkit_system_bus_name_new(g_dbus_method_invocation_get_sender(invocation));
	pk_details = lgd_auth_details_new(details);
	polkit_authority_check_authorization(self->authority, subject, action_id, pk_details, flags,
					     check->cancellable, lgd_auth_polkit_done, task);
}

gboolean
lgd_auth_check_finish(LgdAuth *self, GAsyncResult *result, GError **error)
{
	g_return_val_if_fail(g_task_is_valid(result, self), FALSE);
	return g_task_propagate_boolean(G_TASK(result), error);
}

static void
lgd_auth_sync_done(GObject *source, GAsyncResult *result, gpointer user_data)
{
	*(GAsyncResult **)user_data = g_object_ref(result);
}

/* The same, for a thread that may wait (a session's, InspectDomains'):
 * runs the check in a main context of its own, so still bounded. */
gboolean
lgd_auth_check(LgdAuth *self,
	       GDBusMethodInvocation *invocation,
	       const LgdAuthDetails *details,
	       GError **error)
{
	g_autoptr(GMainContext) context = g_main_context_new();
	g_autoptr(GAsyncResult) result = NULL;

	g_main_context_push_thread_default(context);
	lgd_auth_check_async(self, invocation, details, lgd_auth_sync_done, &result);
	while (result == NULL)
		g_main_context_iteration(context, TRUE);
	g_main_context_pop_thread_default(context);
	return lgd_auth_check_finish(self, result, error);
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
