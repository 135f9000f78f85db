#include "config.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <grp.h>
#include <sys/wait.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "lgd-error.h"
#include "lgd-nbd-share.h"

#define LGD_NBD_START_TIMEOUT_US (30 * G_USEC_PER_SEC)
#define LGD_NBD_STOP_TIMEOUT_US (5 * G_USEC_PER_SEC)

struct _LgdNbdShare {
	gchar *dir;	/* holds the socket; root's, readable by qemu's group */
	gchar *pidfile; /* outside @dir: nobody but root can forge it */
	gchar *server;	/* "unix:/path/to/socket", as libguestfs takes it */
	GPid pid;
};

/* A JSON string, for qemu's JSON option syntax: host paths may hold any
 * byte but NUL, and a comma would break qemu's key=value syntax. */
static void
lgd_nbd_share_json_string(GString *out, const gchar *value)
{
	g_string_append_c(out, '"');
	for (const guchar *p = (const guchar *)value; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			g_string_append_printf(out, "\\%c", *p);
		else if (*p < 0x20)
			g_string_append_printf(out, "\\u%04x", *p);
		else
			g_string_append_c(out, (gchar)*p);
	}
	g_string_append_c(out, '"');
}

static void
lgd_nbd_share_add_option(GPtrArray *argv, const gchar *option, GString *json)
{
	g_ptr_array_add(argv, g_strdup(option));
	g_ptr_array_add(argv, g_string_free(json, FALSE));
}

/* --blockdev for the host file (or device) and the format on top of it,
 * both read-only and sharing: no lock keeps the domain's own qemu out. */
static void
lgd_nbd_share_add_blockdevs(GPtrArray *argv, guint i, const LgdNbdExport *export)
{
	GString *file = g_string_new(NULL);
	GString *format = g_string_new(NULL);
	struct stat st;
	/* stat() opens nothing; qemu itself refuses what is neither */
	gboolean block = stat(export->path, &st) == 0 && S_ISBLK(st.st_mode);

	g_string_append_printf(file,
			       "{\"driver\": \"%s\", \"node-name\": \"file%u\", \"filename\": ",
			       block ? "host_device" : "file", i);
	lgd_nbd_share_json_string(file, export->path);
	g_string_append(file, ", \"read-only\": true, \"force-share\": true}");
	g_string_append(format, "{\"driver\": ");
	lgd_nbd_share_json_string(format, export->format);
	g_string_append_printf(format,
			       ", \"node-name\": \"disk%u\", \"file\": \"file%u\", "
			       "\"read-only\": true, \"force-share\": true}",
			       i, i);
	lgd_nbd_share_add_option(argv, "--blockdev", file);
	lgd_nbd_share_add_option(argv, "--blockdev", format);
}

static void
lgd_nbd_share_add_export(GPtrArray *argv, guint i, const LgdNbdExport *export)
{
	GString *json = g_string_new(NULL);

	g_string_append_printf(json,
			       "{\"type\": \"nbd\", \"id\": \"export%u\", \"node-name\": "
			       "\"disk%u\", \"writable\": false, \"name\": ",
			       i, i);
	lgd_nbd_share_json_string(json, export->name);
	g_string_append_c(json, '}');
	lgd_nbd_share_add_option(argv, "--export", json);
}

static void
lgd_nbd_share_add_server(GPtrArray *argv, const gchar *socket)
{
	GString *json = g_string_new("{\"addr\": {\"type\": \"unix\", \"path\": ");

	lgd_nbd_share_json_string(json, socket);
	g_string_append(json, "}}");
	lgd_nbd_share_add_option(argv, "--nbd-server", json);
}

static void
lgd_nbd_share_remove_files(LgdNbdShare *self)
{
	g_autofree gchar *socket = g_build_filename(self->dir, "nbd.sock", NULL);

	g_unlink(socket);
	g_rmdir(self->dir);
	g_unlink(self->pidfile);
}

/* The appliance's qemu runs as libvirt's qemu user (system mode) and must
 * connect to the socket: the directory and socket are root's, group
 * readable and writable by that user's group only. Root owns the
 * directory, so nobody else can swap the socket for something else. */
static void
lgd_nbd_share_grant_qemu(const gchar *path, mode_t mode)
{
	const gchar *groups[] = {"libvirt-qemu", "qemu"};

	for (guint i = 0; i < G_N_ELEMENTS(groups); i++) {
		struct group *gr = getgrnam(groups[i]);
		if (gr != NULL && chown(path, 0, gr->gr_gid) == 0) {
			g_chmod(path, mode);
			return;
		}
	}
	/* no such group, or we are not root (session mode: chown to root
	 * fails): qemu runs as we do */
}

/* qemu-storage-daemon writes its pid file once every option is processed:
 * then the exports are served. Bounded; a daemon that exits is reaped. */
static gboolean
lgd_nbd_share_wait_ready(LgdNbdShare *self, GError **error)
{
	gint64 deadline = g_get_monotonic_time() + LGD_NBD_START_TIMEOUT_US;
	int status;

	while (!g_file_test(self->pidfile, G_FILE_TEST_EXISTS)) {
		if (waitpid(self->pid, &status, WNOHANG) == self->pid) {
			self->pid = 0;
			g_set_error(error, LGD_ERROR, LGD_ERROR_APPLIANCE_FAILED,
				    "Cannot serve the disks read-only: qemu-storage-daemon "
				    "exited with status %d (see the service's log)",
				    WIFEXITED(status) ? WEXITSTATUS(status) : -1);
			return FALSE;
		}
		if (g_get_monotonic_time() > deadline) {
			g_set_error(error, LGD_ERROR, LGD_ERROR_APPLIANCE_FAILED,
				    "Cannot serve the disks read-only: qemu-storage-daemon "
				    "did not start within %d s",
				    (int)(LGD_NBD_START_TIMEOUT_US / G_USEC_PER_SEC));
			return FALSE;
		}
		g_usleep(10 * 1000);
	}
	return TRUE;
}

static gint lgd_nbd_share_serial = 1;

/* Starts qemu-storage-daemon serving @exports on a unix socket under
 * @run_dir; returns once they are served. @id names the session (a UUID). */
LgdNbdShare *
lgd_nbd_share_start(const gchar *run_dir,
		    const gchar *id,
		    const LgdNbdExport *exports,
		    guint n_exports,
		    GError **error)
{
	g_autoptr(LgdNbdShare) self = g_new0(LgdNbdShare, 1);
	g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
	g_autofree gchar *socket = NULL;
	g_autofree gchar *program = g_find_program_in_path("qemu-storage-daemon");
	guint serial;

	if (program == NULL) {
		g_set_error_literal(error, LGD_ERROR, LGD_ERROR_FAILED,
				    "qemu-storage-daemon is not installed (Debian package "
				    "qemu-system-common); it serves shut-off domains' disks");
		return NULL;
	}
	/* a domain's own session and an InspectDomains batch may each share
	 * the same domain's disks at once: each share has its own files */
	serial = (guint)g_atomic_int_add(&lgd_nbd_share_serial, 1);
	self->dir = g_strdup_printf("%s/share-%s-%u", run_dir, id, serial);
	self->pidfile = g_strdup_printf("%s.pid", self->dir);
	self->pid = 0;
	socket = g_build_filename(self->dir, "nbd.sock", NULL);
	/* a user's default run dir is under their home without
	 * XDG_RUNTIME_DIR; qemu would say so only in our log */
	if (strlen(socket) >= sizeof(((struct sockaddr_un *)NULL)->sun_path)) {
		g_set_error(error, LGD_ERROR, LGD_ERROR_FAILED,
			    "Cannot serve the disks read-only: the socket path %s is longer than "
			    "a unix socket allows; start the service with a shorter --run-dir",
			    socket);
		return NULL;
	}
	lgd_nbd_share_remove_files(self); /* left over by a crash */
	if (g_mkdir(self->dir, 0700) < 0) {
		g_set_error(error, LGD_ERROR, LGD_ERROR_FAILED, "Cannot create %s: %s", self->dir,
			    g_strerror(errno));
		return NULL;
	}
	lgd_nbd_share_grant_qemu(self->dir, 0750);
	self->server = g_strdup_printf("unix:%s", socket);

	g_ptr_array_add(argv, g_strdup(program));
	for (guint i = 0; i < n_exports; i++)
		lgd_nbd_share_add_blockdevs(argv, i, &exports[i]);
	lgd_nbd_share_add_server(argv, socket);
	for (guint i = 0; i < n_exports; i++)
		lgd_nbd_share_add_export(argv, i, &exports[i]);
	g_ptr_array_add(argv, g_strdup("--pidfile"));
	g_ptr_array_add(argv, g_strdup(self->pidfile));
	g_ptr_array_add(argv, NULL);

	/* our own child, reaped by lgd_nbd_share_stop(); its messages go to
	 * the service's log */
	if (!g_spawn_async(NULL, (gchar **)argv->pdata, NULL,
			   G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDOUT_TO_DEV_NULL |
			       G_SPAWN_STDIN_FROM_DEV_NULL,
			   NULL, NULL, &self->pid, error))
		return NULL;
	if (!lgd_nbd_share_wait_ready(self, error))
		return NULL;
	lgd_nbd_share_grant_qemu(socket, 0660);
	return g_steal_pointer(&self);
}

const gchar *
lgd_nbd_share_get_server(LgdNbdShare *self)
{
	return self->server;
}

/* Ends the daemon (after the appliance that read from it is gone) and
 * removes its files. Bounded: SIGTERM, then SIGKILL after a few seconds. */
void
lgd_nbd_share_stop(LgdNbdShare *self)
{
	if (self == NULL)
		return;
	if (self->pid > 0) {
		gint64 deadline = g_get_monotonic_time() + LGD_NBD_STOP_TIMEOUT_US;
		int status;

		kill(self->pid, SIGTERM);
		while (waitpid(self->pid, &status, WNOHANG) == 0) {
			if (g_get_monotonic_time() > deadline) {
				kill(self->pid, SIGKILL);
				waitpid(self->pid, &status, 0);
				break;
			}
			g_usleep(10 * 1000);
		}
	}
	lgd_nbd_share_remove_files(self);
	g_free(self->dir);
	g_free(self->pidfile);
	g_free(self->server);
	g_free(self);
}
