/* Calls that pass a file descriptor (Download, Upload, TarOut, TarIn,
 * Volume.Download/Upload). The caller's own fd goes to the service as it
 * is, so the data never flows through this process: a regular file, a
 * pipe or a socket. The service refuses anything else (a terminal,
 * /dev/null), so for those a pipe is passed instead and this process
 * relays between it and the fd. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gunixfdlist.h>
#include <glib-unix.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gctl.h"

#define GCTL_RELAY_BUFFER (256 * 1024)

typedef struct {
	GMainLoop *loop;
	GVariant *reply;
	GError *error;
	/* relay, when the fd cannot be passed itself */
	gint fd;       /* the caller's fd (not owned) */
	gint relay_fd; /* our end of the pipe, owned; -1 when unused or done */
	gboolean sink; /* service -> relay_fd -> fd */
	guint relay_source;
	GError *relay_error;
	GctlProgress *progress; /* NULL when none is shown */
	gboolean fd_is_tty;	/* the progress line goes once data flows */
} GctlFdCall;

static gboolean
gctl_write_all(gint fd, const gchar *buf, gsize len)
{
	while (len > 0) {
		gssize n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return FALSE;
		buf += n;
		len -= (gsize)n;
	}
	return TRUE;
}

static void
gctl_relay_close(GctlFdCall *call)
{
	if (call->relay_source != 0) {
		g_source_remove(call->relay_source);
		call->relay_source = 0;
	}
	if (call->relay_fd >= 0) {
		close(call->relay_fd);
		call->relay_fd = -1;
	}
}

/* Moves what is there; FALSE once there is nothing more to move. */
static gboolean
gctl_relay_step(GctlFdCall *call)
{
	g_autofree gchar *buf = g_malloc(GCTL_RELAY_BUFFER);
	gint from = call->sink ? call->relay_fd : call->fd;
	gint to = call->sink ? call->fd : call->relay_fd;
	gssize n;

	/* the command's output (or the user's typing) owns the terminal */
	if (call->fd_is_tty)
		gctl_progress_hide(call->progress);
	do
		n = read(from, buf, GCTL_RELAY_BUFFER);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return TRUE;
	if (n < 0) {
		g_set_error(&call->relay_error, G_IO_ERROR, g_io_error_from_errno(errno),
			    "Cannot read %s: %s", call->sink ? "from the service" : "the input",
			    g_strerror(errno));
		return FALSE;
	}
	if (n == 0)
		return FALSE;
	if (!gctl_write_all(to, buf, (gsize)n)) {
		/* the service gone (source) is its error to report */
		if (call->sink)
			g_set_error(&call->relay_error, G_IO_ERROR, g_io_error_from_errno(errno),
				    "Cannot write the output: %s", g_strerror(errno));
		return FALSE;
	}
	return TRUE;
}

/* After the reply: everything still buffered in the pipe, without
 * waiting for an end of file. */
static void
gctl_relay_drain(GctlFdCall *call)
{
	g_autofree gchar *buf = g_malloc(GCTL_RELAY_BUFFER);

	for (;;) {
		gssize n = read(call->relay_fd, buf, GCTL_RELAY_BUFFER);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		if (!gctl_write_all(call->fd, buf, (gsize)n)) {
			g_set_error(&call->relay_error, G_IO_ERROR, g_io_error_from_errno(errno),
				    "Cannot write the output: %s", g_strerror(errno));
			return;
		}
	}
}

static gboolean
gctl_relay_ready(gint fd, GIOCondition condition, gpointer user_data)
{
	GctlFdCall *call = user_data;

	if (gctl_relay_step(call))
		return G_SOURCE_CONTINUE;
	call->relay_source = 0;
	/* closing our write end is the end of file the service waits for */
	if (call->relay_fd >= 0) {
		close(call->relay_fd);
		call->relay_fd = -1;
	}
	return G_SOURCE_REMOVE;
}

static void
gctl_fd_call_done(GObject *source, GAsyncResult *result, gpointer user_data)
{
	GctlFdCall *call = user_data;

	call->reply = g_dbus_connection_call_with_unix_fd_list_finish(G_DBUS_CONNECTION(source),
								      NULL, result, &call->error);
	g_main_loop_quit(call->loop);
}

static gboolean
gctl_fd_passable(gint fd)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return FALSE;
	return S_ISREG(st.st_mode) || S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode);
}

/* Calls @method with (@args_before_fd..., handle, @options) and @fd in the
 * message, and returns once the service has replied (the transfer is
 * over then). @fd stays the caller's. */
gboolean
gctl_call_with_fd(GctlContext *ctx,
		  const gchar *path,
		  const gchar *iface,
		  const gchar *method,
		  GVariant *args_before_fd,
		  gint fd,
		  gboolean fd_is_sink,
		  GVariant *options,
		  GError **error)
{
	g_autoptr(GUnixFDList) fd_list = g_unix_fd_list_new();
	g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
	g_autoptr(GVariant) before = args_before_fd ? g_variant_ref_sink(args_before_fd) : NULL;
	g_autofree gchar *job_id = gctl_job_id_new();
	/* every method here takes a job-id: its Job drives the progress */
	g_autoptr(GVariant) opts = g_variant_ref_sink(gctl_options_with_job_id(options, job_id));
	GctlFdCall call = {.loop = loop, .fd = fd, .relay_fd = -1, .sink = fd_is_sink};
	GVariantBuilder args;
	GctlProgress *progress;
	gint pass_fd = fd;
	gint index;

	if (!gctl_fd_passable(fd)) {
		gint fds[2];
		if (pipe2(fds, O_CLOEXEC) < 0) {
			g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
				    "Cannot create a pipe: %s", g_strerror(errno));
			return FALSE;
		}
		call.relay_fd = fd_is_sink ? fds[0] : fds[1];
		pass_fd = fd_is_sink ? fds[1] : fds[0];
		/* a sink is drained without blocking after the reply; a
		 * source's writes may block: the service reads meanwhile */
		if (fd_is_sink)
			g_unix_set_fd_nonblocking(call.relay_fd, TRUE, NULL);
	}
	index = g_unix_fd_list_append(fd_list, pass_fd, error);
	if (pass_fd != fd)
		close(pass_fd); /* the message's copy is the service's */
	if (index < 0) {
		gctl_relay_close(&call);
		return FALSE;
	}

	g_variant_builder_init(&args, G_VARIANT_TYPE_TUPLE);
	for (gsize i = 0; before != NULL && i < g_variant_n_children(before); i++) {
		g_autoptr(GVariant) child = g_variant_get_child_value(before, i);
		g_variant_builder_add_value(&args, child);
	}
	g_variant_builder_add(&args, "h", index);
	g_variant_builder_add_value(&args, opts);

	progress = gctl_progress_start(ctx, path, method, job_id);
	call.progress = progress;
	call.fd_is_tty = isatty(fd);
	g_dbus_connection_call_with_unix_fd_list(
	    ctx->bus, GCTL_BUS_NAME, path, iface, method, g_variant_builder_end(&args), NULL,
	    ctx->interactive ? G_DBUS_CALL_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION
			     : G_DBUS_CALL_FLAGS_NONE,
	    ctx->timeout_msec, fd_list, NULL, gctl_fd_call_done, &call);
	/* Only the message holds the fds now: they are closed here once it
	 * is sent, so that a reader of the pipe sees its end. */
	g_clear_object(&fd_list);

	if (call.relay_fd >= 0) {
		/* a terminal or device fd: blocking reads and writes on it are
		 * what a terminal expects, our pipe end polls */
		if (fd_is_sink)
			call.relay_source = g_unix_fd_add(call.relay_fd, G_IO_IN | G_IO_HUP,
							  gctl_relay_ready, &call);
		else
			call.relay_source =
			    g_unix_fd_add(fd, G_IO_IN | G_IO_HUP, gctl_relay_ready, &call);
	}
	g_main_loop_run(loop);
	gctl_progress_stop(progress);

	/* The service closes its end before it replies: what is left in the
	 * pipe is all there is (reading to end of file could wait on a copy
	 * a D-Bus library still holds). */
	if (call.relay_fd >= 0 && fd_is_sink && call.relay_error == NULL)
		gctl_relay_drain(&call);
	gctl_relay_close(&call);
	if (call.error != NULL) {
		g_propagate_error(error, call.error);
		g_clear_error(&call.relay_error);
		return FALSE;
	}
	g_clear_pointer(&call.reply, g_variant_unref);
	if (call.relay_error != NULL) {
		g_propagate_error(error, call.relay_error);
		return FALSE;
	}
	return TRUE;
}

/* Whether @fd is a pipe or socket whose reader went away: a transfer
 * into it ended for that reason, which a command writing to stdout
 * treats as a tool killed by SIGPIPE would (quietly). */
gboolean
gctl_reader_gone(gint fd)
{
	struct pollfd pfd = {.fd = fd, .events = POLLOUT};

	return poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLERR) != 0;
}

gint
gctl_open_sink(const gchar *name, GError **error)
{
	gint fd;

	if (g_strcmp0(name, "-") == 0)
		return STDOUT_FILENO;
	fd = open(name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
	if (fd < 0)
		g_set_error(error, GCTL_ERROR, GCTL_EXIT_FAILED, "Cannot create %s: %s", name,
			    g_strerror(errno));
	return fd;
}

gint
gctl_open_source(const gchar *name, GError **error)
{
	gint fd;

	if (g_strcmp0(name, "-") == 0)
		return STDIN_FILENO;
	fd = open(name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		g_set_error(error, GCTL_ERROR,
			    errno == ENOENT ? GCTL_EXIT_NOT_FOUND : GCTL_EXIT_FAILED,
			    "Cannot open %s: %s", name, g_strerror(errno));
	return fd;
}
