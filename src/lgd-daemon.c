#include "config.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <unistd.h>

#include "lgd-admit.h"
#include "lgd-appliance-kernel.h"
#include "lgd-appliance.h"
#include "lgd-args.h"
#include "lgd-auth.h"
#include "lgd-call.h"
#include "lgd-connection.h"
#include "lgd-context.h"
#include "lgd-daemon.h"
#include "lgd-fd-io.h"
#include "lgd-manager.h"
#include "lgd-path.h"

#define LGD_BUS_NAME "org.libvirt.GuestFS"
/* libguestfs 1.48's default appliance memory, for sizing the limit */
#define LGD_GUESTFS_DEFAULT_MEMSIZE 1280
/* how long exiting waits for appliances to shut down */
#define LGD_EXIT_GRACE_SECONDS 60

struct _LgdDaemon {
	GObject parent_instance;
	LgdOptions *options; /* borrowed: lives as long as main() */
	GDBusConnection *bus;
	GDBusObjectManagerServer *server;
	GPtrArray *connections; /* of LgdConnection */
	LgdDBusObjectSkeleton *manager;
	LgdAuth *auth;
	LgdContext context;
	gchar *appliance_cachedir;
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

static guint64
lgd_daemon_mem_total(void)
{
	long pages = sysconf(_SC_PHYS_PAGES);
	long page_size = sysconf(_SC_PAGESIZE);

	return pages > 0 && page_size > 0 ? (guint64)pages * (guint64)page_size : 0;
}

static gboolean
lgd_daemon_init_context(LgdDaemon *self, GError **error)
{
	LgdOptions *options = self->options;
	guint memsize =
	    options->appliance_memory > 0 ? options->appliance_memory : LGD_GUESTFS_DEFAULT_MEMSIZE;
	guint slots = options->max_appliances > 0
			  ? options->max_appliances
			  : lgd_limit_default_slots(lgd_daemon_mem_total(), memsize);

	/* root's is reached by qemu running as another user; a user's qemu
	 * (qemu:///session) runs as that user */
	if (g_mkdir_with_parents(options->run_dir, getuid() == 0 ? 0755 : 0700) < 0) {
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "Cannot create %s: %s",
			    options->run_dir, g_strerror(errno));
		return FALSE;
	}
	self->context.auth = self->auth;
	lgd_auth_set_timeouts(self->auth, options->auth_timeout, options->interactive_auth_timeout);
	self->context.run_dir = options->run_dir;
	self->context.max_read_size = options->max_read_size;
	self->context.cache = lgd_cache_new(options->cache_dir, options->cache_max_size, error);
	if (self->context.cache == NULL)
		return FALSE;
	self->context.batch_inspection = options->batch_inspection;
	/* on the session bus every disk is the caller's own */
	self->context.batch_results_shared = options->bus_type == LGD_BUS_SESSION;
	self->context.session.idle_timeout = options->idle_timeout;
	self->context.session.write_grace = options->write_grace;
	lgd_fd_io_set_idle_timeout(options->transfer_idle_timeout);
	lgd_call_set_max_transfers(options->max_volume_transfers);
	lgd_admit_set_max(options->max_calls_per_caller);
	self->context.session.launch_timeout = options->launch_timeout;
	self->context.session.memsize = options->appliance_memory;
	self->context.session.force_tcg = options->force_tcg;
	self->context.session.limit = lgd_limit_new(slots);
	g_info("up to %u appliances at once, idle timeout %u s", slots, options->idle_timeout);
	/* where a sandbox must let the service write (see the systemd unit) */
	g_info("runtime files in %s, inspection cache in %s", options->run_dir, options->cache_dir);
	return TRUE;
}

/* Withdraws every object and waits (bounded) for their appliances to shut
 * down, so that none is left running behind the service. */
void
lgd_daemon_stop(LgdDaemon *self)
{
	g_clear_handle_id(&self->name_id, g_bus_unown_name);
	for (guint i = 0; self->connections != NULL && i < self->connections->len; i++)
		lgd_connection_stop(g_ptr_array_index(self->connections, i));
	lgd_appliance_abort_launches();
	if (!lgd_session_wait_all(LGD_EXIT_GRACE_SECONDS))
		g_warning("appliances still shutting down after %d s; exiting anyway",
			  LGD_EXIT_GRACE_SECONDS);
}

/* Without KVM the stock appliance spends seconds unpacking its kernel;
 * anything in the way of the faster one leaves the stock one in use. */
static void
lgd_daemon_prepare_kernel(LgdDaemon *self)
{
	g_autoptr(GError) error = NULL;

	self->appliance_cachedir = lgd_appliance_kernel_prepare(&error);
	if (self->appliance_cachedir == NULL)
		g_info("appliances use libguestfs's stock kernel: %s", error->message);
	else
		g_info("appliances use an uncompressed kernel, built in %s",
		       self->appliance_cachedir);
	self->context.session.appliance_cachedir = self->appliance_cachedir;
}

gboolean
lgd_daemon_start(LgdDaemon *self, GError **error)
{
	GBusType bus_type =
	    self->options->bus_type == LGD_BUS_SYSTEM ? G_BUS_TYPE_SYSTEM : G_BUS_TYPE_SESSION;

	/* before the first thread: it may set supermin's environment */
	if (self->options->force_tcg)
		lgd_daemon_prepare_kernel(self);
	self->bus = g_bus_get_sync(bus_type, NULL, error);
	if (self->bus == NULL)
		return FALSE;
	/* The service cannot do anything once its bus is gone. */
	g_dbus_connection_set_exit_on_close(self->bus, TRUE);
	/* oversized calls refused in GDBus's worker (see the filter) */
	g_dbus_connection_add_filter(self->bus, lgd_args_bound_filter, NULL, NULL);

	self->auth = lgd_auth_new(self->options->bus_type, error);
	if (self->auth == NULL)
		return FALSE;
	if (!lgd_daemon_init_context(self, error))
		return FALSE;

	/* Objects are exported before the server has a connection: setting
	 * it afterwards registers them all at once, without one
	 * InterfacesAdded signal each that nobody can be listening to yet. */
	self->server = g_dbus_object_manager_server_new(LGD_ROOT_PATH);
	self->context.jobs = lgd_jobs_new(self->server, self->auth);
	for (guint i = 0; self->options->connect_uris[i] != NULL; i++) {
		LgdConnection *conn =
		    lgd_connection_new(self->options->connect_uris[i], self->server, &self->context,
				       self->options->volume_rescan_interval);
		g_ptr_array_add(self->connections, conn);
		lgd_connection_start(conn);
	}
	self->manager = lgd_manager_new(self->connections, &self->context);
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

	lgd_daemon_stop(self);
	g_clear_object(&self->manager);
	g_clear_object(&self->server);
	g_clear_pointer(&self->connections, g_ptr_array_unref);
	g_clear_object(&self->auth);
	g_clear_pointer(&self->context.session.limit, lgd_limit_free);
	g_clear_pointer(&self->context.cache, lgd_cache_free);
	g_clear_pointer(&self->context.jobs, lgd_jobs_free);
	g_clear_object(&self->bus);
	g_clear_pointer(&self->appliance_cachedir, g_free);
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
