/* What a long call shows on a terminal while it runs: for now the
 * appliance launch (from the object's ApplianceState). When the service
 * publishes Job objects (org.libvirt.GuestFS.Job, issue 12 item 3), a
 * job watcher belongs here: gctl_progress_start() is already called
 * around every long call with the object it concerns, so a watcher that
 * follows the Job whose Objects hold that path (or whose job-id the call
 * chose) renders its Progress, BytesDone, Rate and ExpectedEndTime in
 * the same line. Never on a non-terminal, never with --quiet. */
#include "config.h"

#include <stdio.h>
#include <unistd.h>

#include "gctl.h"

struct _GctlProgress {
	GctlContext *ctx;
	gchar *path;
	guint subscription;
	gboolean shown;
};

static void
gctl_progress_clear(GctlProgress *self)
{
	if (!self->shown)
		return;
	/* erase the line: the command's own output comes next */
	g_printerr("\r\033[K");
	self->shown = FALSE;
}

static void
gctl_progress_state(GctlProgress *self, const gchar *state)
{
	if (g_strcmp0(state, "starting") == 0) {
		g_printerr("\r\033[Kguestfsctl: launching the appliance...");
		self->shown = TRUE;
	} else {
		gctl_progress_clear(self);
	}
}

static void
gctl_progress_changed(GDBusConnection *bus,
		      const gchar *sender,
		      const gchar *path,
		      const gchar *iface,
		      const gchar *signal,
		      GVariant *params,
		      gpointer user_data)
{
	GctlProgress *self = user_data;
	g_autoptr(GVariant) changed = NULL;
	const gchar *changed_iface = NULL;
	const gchar *state = NULL;

	g_variant_get(params, "(&s@a{sv}@as)", &changed_iface, &changed, NULL);
	if (g_variant_lookup(changed, "ApplianceState", "&s", &state))
		gctl_progress_state(self, state);
}

GctlProgress *
gctl_progress_start(GctlContext *ctx, const gchar *object_path, const gchar *what)
{
	GctlProgress *self;

	if (ctx->quiet || ctx->json || !isatty(STDERR_FILENO))
		return NULL;
	self = g_new0(GctlProgress, 1);
	self->ctx = ctx;
	self->path = g_strdup(object_path);
	self->subscription = g_dbus_connection_signal_subscribe(
	    ctx->bus, GCTL_BUS_NAME, "org.freedesktop.DBus.Properties", "PropertiesChanged",
	    object_path, NULL, G_DBUS_SIGNAL_FLAGS_NONE, gctl_progress_changed, self, NULL);
	return self;
}

void
gctl_progress_stop(GctlProgress *self)
{
	if (self == NULL)
		return;
	g_dbus_connection_signal_unsubscribe(self->ctx->bus, self->subscription);
	gctl_progress_clear(self);
	g_free(self->path);
	g_free(self);
}
