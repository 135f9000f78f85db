#include "config.h"

#include "lgd-auth.h"
#include "lgd-connection.h"
#include "lgd-daemon.h"
#include "lgd-manager.h"
#include "lgd-path.h"

#define LGD_BUS_NAME "org.libvirt.GuestFS"

struct _LgdDaemon {
	GObject parent_instance;
	LgdOptions *options; /* borrowed: lives as long as main() */
	GDBusConnection *bus;
	GDBusObjectManagerServer *server;
	GPtrArray *connections; /* of LgdConnection */
	LgdDBusObjectSkeleton *manager;
	LgdAuth *auth;
	guint name_id;
};

G_DEFINE_TYPE(LgdDaemon, lgd_daemon, G_TYPE_OBJECT)

static void
lgd_daemon_on_name_acquired(GDBusConnection *bus, const gchar *name, gpointer user_data)
{
	g_info("serving as %s", name);
}

static void
lgd_daemon_on_name_lost(GDBusConnection *bus, const gchar *name, gpointer user_data)
{
	/* Either the bus went away or another instance owns the name:
	 * nothing useful is left to do. */
	g_printerr("libvirt-guestfs-dbus: lost or could not own the bus name %s "
		   "(another instance running, or the bus policy does not allow it)\n",
		   name);
	exit(EXIT_FAILURE);
}

gboolean
lgd_daemon_start(LgdDaemon *self, GError **error)
{
	GBusType bus_type =
	    self->options->bus_type == LGD_BUS_SYSTEM ? G_BUS_TYPE_SYSTEM : G_BUS_TYPE_SESSION;

	self->bus = g_bus_get_sync(bus_type, NULL, error);
	if (self->bus == NULL)
		return FALSE;
	/* The service cannot do anything once its bus is gone. */
	g_dbus_connection_set_exit_on_close(self->bus, TRUE);

	self->auth = lgd_auth_new(self->options->bus_type, error);
	if (self->auth == NULL)
		return FALSE;

	/* Objects are exported before the server has a connection: setting
	 * it afterwards registers them all at once, without one
	 * InterfacesAdded signal each that nobody can be listening to yet. */
	self->server = g_dbus_object_manager_server_new(LGD_ROOT_PATH);
	for (guint i = 0; self->options->connect_uris[i] != NULL; i++) {
		LgdConnection *conn =
		    lgd_connection_new(self->options->connect_uris[i], self->server,
				       self->options->volume_rescan_interval);
		g_ptr_array_add(self->connections, conn);
		lgd_connection_start(conn);
	}
	self->manager = lgd_manager_new(self->connections);
	g_dbus_object_manager_server_export(self->server, G_DBUS_OBJECT_SKELETON(self->manager));
	g_dbus_object_manager_server_set_connection(self->server, self->bus);

	/* Taking the name last means a client that waits for it finds every
	 * object already there. */
	self->name_id = g_bus_own_name_on_connection(
	    self->bus, LGD_BUS_NAME, G_BUS_NAME_OWNER_FLAGS_NONE, lgd_daemon_on_name_acquired,
	    lgd_daemon_on_name_lost, self, NULL);
	return TRUE;
}

static void
lgd_daemon_dispose(GObject *object)
{
	LgdDaemon *self = LGD_DAEMON(object);

	g_clear_handle_id(&self->name_id, g_bus_unown_name);
	if (self->connections != NULL) {
		for (guint i = 0; i < self->connections->len; i++)
			lgd_connection_stop(g_ptr_array_index(self->connections, i));
	}
	g_clear_object(&self->manager);
	g_clear_object(&self->server);
	g_clear_pointer(&self->connections, g_ptr_array_unref);
	g_clear_object(&self->auth);
	g_clear_object(&self->bus);
	G_OBJECT_CLASS(lgd_daemon_parent_class)->dispose(object);
}

static void
lgd_daemon_class_init(LgdDaemonClass *klass)
{
	G_OBJECT_CLASS(klass)->dispose = lgd_daemon_dispose;
}

static void
lgd_daemon_init(LgdDaemon *self)
{
	self->connections = g_ptr_array_new_with_free_func(g_object_unref);
}

LgdDaemon *
lgd_daemon_new(LgdOptions *options)
{
	LgdDaemon *self = g_object_new(LGD_TYPE_DAEMON, NULL);
	self->options = options;
	return self;
}
