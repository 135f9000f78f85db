#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gunixfdlist.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lgd-error.h"
#include "lgd-fd.h"

/* The message keeps its own copies of the fds for as long as the
 * invocation lives: a pipe's reader would see no end of file, and a
 * writer no broken pipe, until the reply. Only ours is to stay open. */
static void
lgd_fd_list_drop(GUnixFDList *fd_list)
{
	g_autofree gint *fds = NULL;
	gint n = 0;

	if (fd_list == NULL)
		return;
	fds = g_unix_fd_list_steal_fds(fd_list, &n);
	for (gint i = 0; i < n; i++)
		close(fds[i]);
}

/* A pipe gets a non-blocking file description of our own, on the same
 * pipe: the one passed shares its file status (O_NONBLOCK included) with
 * the client's, which the client may change, and through which it may
 * read or write the pipe itself between our poll() and our read() or
 * write(). With ours, no read or write can block, and lgd-fd-io.c bounds
 * every wait with poll(). Where the pipe cannot be opened again (its
 * reader is gone, which the write will tell; no /proc), the passed fd
 * serves: lgd-fd-io.c bounds the waits on a blocking pipe too. */
static gint
lgd_fd_own_pipe(gint fd, LgdFdDirection direction)
{
	g_autofree gchar *path = g_strdup_printf("/proc/self/fd/%d", fd);
	gint own = open(path, (direction == LGD_FD_READ ? O_RDONLY : O_WRONLY) | O_NONBLOCK |
				  O_CLOEXEC | O_NOCTTY);

	if (own < 0) {
		g_debug("Cannot open the pipe passed again (%s); using the client's "
			"file description",
			g_strerror(errno));
		return fd;
	}
	close(fd);
	return own;
}

/* Takes the fd that @handle (a D-Bus 'h') names in @fd_list: checks the
 * index, duplicates the fd (the caller owns and closes the result), and
 * checks that it is a pipe, socket or regular file opened in the right
 * direction. Returns -1 with @error set otherwise. A pipe comes back as a
 * file description of our own (lgd_fd_own_pipe()); a socket or a file
 * shares its file status with the client's and may be non-blocking or
 * not. The message's own copies are closed, whatever the outcome. */
gint
lgd_fd_take(GUnixFDList *fd_list, GVariant *handle, LgdFdDirection direction, GError **error)
{
	gint32 index = g_variant_get_handle(handle);
	gint fd;
	gint flags;
	gint mode;
	struct stat st;

	if (fd_list == NULL || index < 0 || index >= g_unix_fd_list_get_length(fd_list)) {
		g_set_error(error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT,
			    "File descriptor index %d does not name a file descriptor passed "
			    "with the call (%d passed)",
			    index, fd_list != NULL ? g_unix_fd_list_get_length(fd_list) : 0);
		return -1;
	}
	fd = g_unix_fd_list_get(fd_list, index, error);
	lgd_fd_list_drop(fd_list);
	if (fd < 0)
		return -1;
	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fstat(fd, &st) < 0) {
		g_set_error(error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT,
			    "Cannot use the file descriptor passed: %s", g_strerror(errno));
		close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode) && !S_ISSOCK(st.st_mode)) {
		g_set_error(error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT,
			    "The file descriptor passed is %s; pass a pipe, a socket or a "
			    "regular file",
			    S_ISDIR(st.st_mode) ? "a directory" : "not a pipe, socket or file");
		close(fd);
		return -1;
	}
	mode = flags & O_ACCMODE;
	if ((direction == LGD_FD_READ && mode == O_WRONLY) ||
	    (direction == LGD_FD_WRITE && mode == O_RDONLY)) {
		g_set_error(error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT,
			    "The file descriptor passed is open for %s only, but this call %s it",
			    mode == O_WRONLY ? "writing" : "reading",
			    direction == LGD_FD_READ ? "reads from" : "writes to");
		close(fd);
		return -1;
	}
	if (S_ISFIFO(st.st_mode))
		return lgd_fd_own_pipe(fd, direction);
	return fd;
}
