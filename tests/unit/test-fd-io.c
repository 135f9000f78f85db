#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <gio/gunixfdlist.h>
#include <glib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lgd-fd-io.h"
#include "lgd-fd.h"

/* Every fd here is blocking, as os.pipe() gives them: without a bound a
 * read or write on one that nobody serves would wait for ever, and the
 * test with it (meson's timeout says so). */

#define MIB (1024 * 1024)

static gboolean
is_blocking(gint fd)
{
	gint flags = fcntl(fd, F_GETFL);

	g_assert_cmpint(flags, >=, 0);
	return (flags & O_NONBLOCK) == 0;
}

static void
test_read_idle(gconstpointer data)
{
	gboolean socket = GPOINTER_TO_INT(data);
	gint fds[2];
	gchar buf[16];
	gint64 start;
	gssize n;

	if (socket)
		g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), ==, 0);
	else
		g_assert_cmpint(pipe2(fds, O_CLOEXEC), ==, 0);
	g_assert_true(is_blocking(fds[0]));
	start = g_get_monotonic_time();
	n = lgd_fd_io_read(fds[0], buf, sizeof(buf), TRUE);
	g_assert_cmpint(n, ==, -1);
	g_assert_cmpint(errno, ==, ETIMEDOUT);
	/* it was the idle timeout that ended it */
	g_assert_cmpint(g_get_monotonic_time() - start, >=, 900 * 1000);
	/* the client's flags are as the client set them */
	g_assert_true(is_blocking(fds[0]));

	/* data that comes is read, and so is the end */
	g_assert_cmpint(write(fds[1], "abc", 3), ==, 3);
	g_assert_cmpint(lgd_fd_io_read(fds[0], buf, sizeof(buf), TRUE), ==, 3);
	g_assert_cmpmem(buf, 3, "abc", 3);
	close(fds[1]);
	g_assert_cmpint(lgd_fd_io_read(fds[0], buf, sizeof(buf), TRUE), ==, 0);
	close(fds[0]);
}

static void
test_write_idle(gconstpointer data)
{
	gboolean socket = GPOINTER_TO_INT(data);
	g_autofree gchar *buf = g_malloc0(8 * MIB);
	gsize written = 0;
	gint fds[2];

	if (socket)
		g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), ==, 0);
	else
		g_assert_cmpint(pipe2(fds, O_CLOEXEC), ==, 0);
	g_assert_true(is_blocking(fds[1]));
	g_assert_false(lgd_fd_io_write_all(fds[1], buf, 8 * MIB, &written, TRUE));
	g_assert_cmpint(errno, ==, ETIMEDOUT);
	/* what the buffer held went out, and no more */
	g_assert_cmpuint(written, >, 0);
	g_assert_cmpuint(written, <, 8 * MIB);
	g_assert_true(is_blocking(fds[1]));
	close(fds[0]);
	close(fds[1]);
}

typedef struct {
	gint fd;
	GByteArray *got;
} SlowReader;

static gpointer
slow_reader(gpointer data)
{
	SlowReader *r = data;
	gchar buf[64 * 1024];
	gssize n;

	while ((n = read(r->fd, buf, sizeof(buf))) > 0) {
		g_byte_array_append(r->got, (guint8 *)buf, (guint)n);
		g_usleep(2 * 1000);
	}
	return NULL;
}

/* A blocking pipe whose reader keeps up, slowly: everything arrives,
 * through writes that do not block. */
static void
test_write_blocking_pipe_all(void)
{
	gsize len = 3 * MIB + 123;
	g_autofree gchar *buf = g_malloc(len);
	SlowReader r = {.got = g_byte_array_new()};
	gsize written = 0;
	GThread *thread;
	gint fds[2];

	for (gsize i = 0; i < len; i++)
		buf[i] = (gchar)(i * 7 + i / 4096);
	g_assert_cmpint(pipe2(fds, O_CLOEXEC), ==, 0);
	r.fd = fds[0];
	thread = g_thread_new("reader", slow_reader, &r);
	g_assert_true(lgd_fd_io_write_all(fds[1], buf, len, &written, TRUE));
	g_assert_cmpuint(written, ==, len);
	close(fds[1]);
	g_thread_join(thread);
	g_assert_cmpmem(r.got->data, r.got->len, buf, len);
	g_byte_array_unref(r.got);
	close(fds[0]);
}

static gint
take(gint fd, LgdFdDirection direction)
{
	g_autoptr(GUnixFDList) list = g_unix_fd_list_new();
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) handle = g_variant_ref_sink(g_variant_new_handle(0));
	gint taken;

	g_assert_cmpint(g_unix_fd_list_append(list, fd, &error), ==, 0);
	g_assert_no_error(error);
	taken = lgd_fd_take(list, handle, direction, &error);
	g_assert_no_error(error);
	g_assert_cmpint(taken, >=, 0);
	return taken;
}

/* A pipe is taken as a non-blocking description of our own, on the same
 * pipe: the client's stays blocking. */
static void
test_take_pipe(void)
{
	gint fds[2];
	gint sink;
	gint source;
	gchar buf[8];

	g_assert_cmpint(pipe2(fds, O_CLOEXEC), ==, 0);
	sink = take(fds[1], LGD_FD_WRITE);
	source = take(fds[0], LGD_FD_READ);
	g_assert_false(is_blocking(sink));
	g_assert_false(is_blocking(source));
	g_assert_true(is_blocking(fds[0]));
	g_assert_true(is_blocking(fds[1]));
	g_assert_true(lgd_fd_io_write_all(sink, "hello", 5, NULL, TRUE));
	g_assert_cmpint(read(fds[0], buf, sizeof(buf)), ==, 5);
	g_assert_cmpint(write(fds[1], "world", 5), ==, 5);
	g_assert_cmpint(lgd_fd_io_read(source, buf, sizeof(buf), TRUE), ==, 5);
	g_assert_cmpmem(buf, 5, "world", 5);
	/* the reader sees the end once the client's and ours are closed */
	close(fds[1]);
	close(sink);
	g_assert_cmpint(read(fds[0], buf, sizeof(buf)), ==, 0);
	close(fds[0]);
	close(source);
}

/* A job's Cancel ends a wait on a client that does not move at once, not
 * after the idle timeout, and says so with ECANCELED. */
static void
test_cancel(gconstpointer data)
{
	gboolean write_side = GPOINTER_TO_INT(data);
	g_autoptr(GCancellable) cancellable = g_cancellable_new();
	gint cancel_fd = g_cancellable_get_fd(cancellable);
	g_autofree gchar *buf = g_malloc0(MIB);
	gint fds[2];
	gint64 start;
	gboolean ok;

	g_assert_cmpint(cancel_fd, >=, 0);
	g_assert_cmpint(pipe2(fds, O_CLOEXEC), ==, 0);
	/* not yet cancelled: data moves as without a cancel fd */
	g_assert_cmpint(write(fds[1], "abc", 3), ==, 3);
	g_assert_cmpint(lgd_fd_io_read_cancellable(fds[0], buf, 16, TRUE, cancel_fd), ==, 3);
	g_cancellable_cancel(cancellable);
	start = g_get_monotonic_time();
	if (write_side) {
		gsize written = 0;

		/* a full pipe nobody reads */
		ok = lgd_fd_io_write_all_cancellable(fds[1], buf, MIB, &written, TRUE, cancel_fd);
		g_assert_false(ok);
		g_assert_cmpuint(written, <, MIB);
	} else {
		g_assert_cmpint(lgd_fd_io_read_cancellable(fds[0], buf, 16, TRUE, cancel_fd), ==,
				-1);
	}
	g_assert_cmpint(errno, ==, ECANCELED);
	g_assert_cmpint(g_get_monotonic_time() - start, <, 500 * 1000);
	g_cancellable_release_fd(cancellable);
	close(fds[0]);
	close(fds[1]);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	lgd_fd_io_set_idle_timeout(1);
	g_test_add_data_func("/fd-io/read-idle/pipe", GINT_TO_POINTER(FALSE), test_read_idle);
	g_test_add_data_func("/fd-io/read-idle/socket", GINT_TO_POINTER(TRUE), test_read_idle);
	g_test_add_data_func("/fd-io/write-idle/pipe", GINT_TO_POINTER(FALSE), test_write_idle);
	g_test_add_data_func("/fd-io/write-idle/socket", GINT_TO_POINTER(TRUE), test_write_idle);
	g_test_add_func("/fd-io/write/blocking-pipe-all", test_write_blocking_pipe_all);
	g_test_add_func("/fd-io/take/pipe", test_take_pipe);
	g_test_add_data_func("/fd-io/cancel/read", GINT_TO_POINTER(FALSE), test_cancel);
	g_test_add_data_func("/fd-io/cancel/write", GINT_TO_POINTER(TRUE), test_cancel);
	return g_test_run();
}
