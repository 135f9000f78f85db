#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lgd-fd-io.h"

/* Set once at start-up (--transfer-idle-timeout), before any transfer. */
static gint lgd_fd_io_idle_ms = 60 * 1000;

void
lgd_fd_io_set_idle_timeout(guint seconds)
{
	lgd_fd_io_idle_ms = (gint)MIN(seconds, (guint)(G_MAXINT / 1000)) * 1000;
}

guint
lgd_fd_io_get_idle_timeout(void)
{
	return (guint)(lgd_fd_io_idle_ms / 1000);
}

/* Waits until @fd is ready for @events; FALSE (errno set) if poll fails,
 * with ETIMEDOUT when a client's fd (@client) made no progress for the
 * idle timeout: a client that never reads or writes must not hold an
 * appliance or a thread for ever; and with ECANCELED once @cancel_fd (a
 * job's, -1 for none) is readable: the job was cancelled. */
gboolean
lgd_fd_io_wait(gint fd, gshort events, gboolean client, gint cancel_fd)
{
	struct pollfd pfd[2] = {{.fd = fd, .events = events}, {.fd = cancel_fd, .events = POLLIN}};
	int n;

	while ((n = poll(pfd, cancel_fd >= 0 ? 2 : 1, client ? lgd_fd_io_idle_ms : -1)) < 0) {
		if (errno != EINTR)
			return FALSE;
	}
	if (cancel_fd >= 0 && pfd[1].revents != 0) {
		errno = ECANCELED;
		return FALSE;
	}
	if (n == 0) {
		errno = ETIMEDOUT;
		return FALSE;
	}
	return TRUE;
}

/*
 * A client's fd is read or written only once poll() has said it is ready,
 * and then with a call that cannot block for long, whatever the fd's
 * flags: O_NONBLOCK belongs to the open file, which the client shares, so
 * it is left as the client set it, and a blocking fd (os.pipe()'s
 * default) would otherwise make read() or write() wait for ever on a
 * client that never reads or writes.
 *
 * - A socket: recv() and send() with MSG_DONTWAIT do not block, whatever
 *   the socket's flags.
 * - A pipe: lgd_fd_take() gives it a non-blocking file description of our
 *   own where it can. Should it be the client's blocking one after all, a
 *   read after POLLIN finds data or the end; a write after POLLOUT finds at
 *   least one free page-sized slot of the pipe (that is when Linux reports
 *   POLLOUT), and a write of at most PIPE_BUF bytes is atomic and needs
 *   only one such slot, so it does not block (lgd_fd_io_write_cap()). Only
 *   a client that reads or writes the same end of the pipe itself between
 *   our poll() and our call could still make it wait: that is what the
 *   description of our own rules out.
 * - A regular file is always ready and never waits for a client.
 */

static gssize
lgd_fd_io_read_once(gint fd, gchar *buf, gsize len, gboolean client)
{
	gssize n;

	if (!client)
		return read(fd, buf, len);
	n = recv(fd, buf, len, MSG_DONTWAIT);
	if (n >= 0 || errno != ENOTSOCK)
		return n;
	return read(fd, buf, len);
}

/* How much one write to @fd may carry without blocking after POLLOUT. */
static gsize
lgd_fd_io_write_cap(gint fd, gboolean client)
{
	struct stat st;
	gint flags;

	if (!client)
		return G_MAXSSIZE;
	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || (flags & O_NONBLOCK) || fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode))
		return G_MAXSSIZE;
	return PIPE_BUF;
}

static gssize
lgd_fd_io_write_once(gint fd, const gchar *buf, gsize len, gboolean client, gsize cap)
{
	gssize n;

	if (!client)
		return write(fd, buf, len);
	n = send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n >= 0 || errno != ENOTSOCK)
		return n;
	return write(fd, buf, MIN(len, cap));
}

/* Like read(2), retried on EINTR and waited out on EAGAIN: bytes read, 0
 * at the end, or -1 with errno set (ETIMEDOUT: a client's fd made no
 * progress for the idle timeout; ECANCELED: @cancel_fd became readable
 * while waiting for a client's fd). */
gssize
lgd_fd_io_read_cancellable(gint fd, gchar *buf, gsize len, gboolean client, gint cancel_fd)
{
	for (;;) {
		gssize n;

		if (client && !lgd_fd_io_wait(fd, POLLIN, TRUE, cancel_fd))
			return -1;
		n = lgd_fd_io_read_once(fd, buf, len, client);
		if (n >= 0)
			return n;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			/* a client's fd is polled at the top of the loop */
			if (client || lgd_fd_io_wait(fd, POLLIN, FALSE, cancel_fd))
				continue;
		}
		return -1;
	}
}

gssize
lgd_fd_io_read(gint fd, gchar *buf, gsize len, gboolean client)
{
	return lgd_fd_io_read_cancellable(fd, buf, len, client, -1);
}

/* Writes all of @buf; FALSE with errno set on failure (ETIMEDOUT and
 * ECANCELED as for lgd_fd_io_read_cancellable()). @written (may be NULL)
 * gets how much went out before it. */
gboolean
lgd_fd_io_write_all_cancellable(
    gint fd, const gchar *buf, gsize len, gsize *written, gboolean client, gint cancel_fd)
{
	gsize cap = lgd_fd_io_write_cap(fd, client);
	gsize done = 0;

	while (done < len) {
		gssize n;

		if (client && !lgd_fd_io_wait(fd, POLLOUT, TRUE, cancel_fd))
			break;
		n = lgd_fd_io_write_once(fd, buf + done, len - done, client, cap);
		if (n >= 0) {
			done += (gsize)n;
			continue;
		}
		if (errno == EINTR)
			continue;
		if ((errno == EAGAIN || errno == EWOULDBLOCK) &&
		    (client || lgd_fd_io_wait(fd, POLLOUT, FALSE, cancel_fd)))
			continue;
		break;
	}
	if (written != NULL)
		*written = done;
	return done == len;
}

gboolean
lgd_fd_io_write_all(gint fd, const gchar *buf, gsize len, gsize *written, gboolean client)
{
	return lgd_fd_io_write_all_cancellable(fd, buf, len, written, client, -1);
}
