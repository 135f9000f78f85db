#include "config.h"

#include <errno.h>
#include <poll.h>
#include <unistd.h>

#include "lgd-fd-io.h"

/* Waits until @fd is ready for @events; FALSE (errno set) if poll fails. */
static gboolean
lgd_fd_io_wait(gint fd, gshort events)
{
	struct pollfd pfd = {.fd = fd, .events = events};

	while (poll(&pfd, 1, -1) < 0) {
		if (errno != EINTR)
			return FALSE;
	}
	return TRUE;
}

/* Like read(2), retried on EINTR and waited out on EAGAIN: bytes read, 0
 * at the end, or -1 with errno set. */
gssize
lgd_fd_io_read(gint fd, gchar *buf, gsize len)
{
	for (;;) {
		gssize n = read(fd, buf, len);

		if (n >= 0)
			return n;
		if (errno == EINTR)
			continue;
		if ((errno == EAGAIN || errno == EWOULDBLOCK) && lgd_fd_io_wait(fd, POLLIN))
			continue;
		return -1;
	}
}

/* Writes all of @buf; FALSE with errno set on failure. @written (may be
 * NULL) gets how much went out before it. */
gboolean
lgd_fd_io_write_all(gint fd, const gchar *buf, gsize len, gsize *written)
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
		if ((errno == EAGAIN || errno == EWOULDBLOCK) && lgd_fd_io_wait(fd, POLLOUT))
			continue;
		break;
	}
	if (written != NULL)
		*written = done;
	return done == len;
}
