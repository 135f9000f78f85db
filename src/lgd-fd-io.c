#include "config.h"

#include <errno.h>
#include <poll.h>
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
 * and with ETIMEDOUT when a client's fd (@client) made no progress for
 * the idle timeout: a client that never reads or writes must not hold an
 * appliance or a thread for ever. */
static gboolean
lgd_fd_io_wait(gint fd, gshort events, gboolean client)
{
	struct pollfd pfd = {.fd = fd, .events = events};
	int n;

	while ((n = poll(&pfd, 1, client ? lgd_fd_io_idle_ms : -1)) < 0) {
		if (errno != EINTR)
			return FALSE;
	}
	if (n == 0) {
		errno = ETIMEDOUT;
		return FALSE;
	}
	return TRUE;
}

/* Like read(2), retried on EINTR and waited out on EAGAIN: bytes read, 0
 * at the end, or -1 with errno set. */
gssize
lgd_fd_io_read(gint fd, gchar *buf, gsize len, gboolean client)
{
	for (;;) {
		gssize n = read(fd, buf, len);

		if (n >= 0)
			return n;
		if (errno == EINTR)
			continue;
		if ((errno == EAGAIN || errno == EWOULDBLOCK) && lgd_fd_io_wait(fd, POLLIN, client))
			continue;
		return -1;
	}
}

/* Writes all of @buf; FALSE with errno set on failure. @written (may be
 * NULL) gets how much went out before it. */
gboolean
lgd_fd_io_write_all(gint fd, const gchar *buf, gsize len, gsize *written, gboolean client)
{
	gsize done = 0;

	while (done < len) {
		gssize n = write(fd, buf + done, len - done);

		if (n >= 0) {
			done += (gsize)n;
			continue;
		}
		if (errno == EINTR)
			continue;
		if ((errno == EAGAIN || errno == EWOULDBLOCK) &&
		    lgd_fd_io_wait(fd, POLLOUT, client))
			continue;
		break;
	}
	if (written != NULL)
		*written = done;
	return done == len;
}
