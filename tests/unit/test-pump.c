#include "config.h"

#include <fcntl.h>
#include <glib.h>
#include <string.h>
#include <unistd.h>

#include "lgd-pump.h"

/* The pump between a client's fd and the path libguestfs opens, without
 * libguestfs: what the client sends is what comes out of the path, every
 * time (the pump's thread starts racing with its creator), and an
 * announced size is both a limit and a promise. */

#define ROUNDS 2000

static void
fill(gchar *buf, gsize len, guint seed)
{
	for (gsize i = 0; i < len; i++)
		buf[i] = (gchar)((i * 31 + seed) & 0xff);
}

/* All of what @path gives until its end. */
static GByteArray *
drain_path(const gchar *path)
{
	GByteArray *out = g_byte_array_new();
	gchar buf[65536];
	gint fd = open(path, O_RDONLY | O_CLOEXEC);
	gssize n;

	g_assert_cmpint(fd, >=, 0);
	while ((n = read(fd, buf, sizeof buf)) > 0)
		g_byte_array_append(out, (const guint8 *)buf, (guint)n);
	g_assert_cmpint(n, ==, 0);
	close(fd);
	return out;
}

/* A client that wrote its data and closed its end before the pump even
 * existed: the data must all come through, whatever thread runs first. */
static void
test_source_whole(gconstpointer data)
{
	gboolean announce = GPOINTER_TO_INT(data);
	gsize len = 4096 + 17;
	g_autofree gchar *sent = g_malloc(len);

	for (guint round = 0; round < ROUNDS; round++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GByteArray) got = NULL;
		g_autoptr(LgdPump) pump = NULL;
		gint fds[2];

		fill(sent, len, round);
		g_assert_cmpint(pipe2(fds, O_CLOEXEC), ==, 0);
		g_assert_cmpint(write(fds[1], sent, len), ==, (gssize)len);
		close(fds[1]);
		pump = lgd_pump_new_source(fds[0], announce ? len : LGD_PUMP_SIZE_UNKNOWN, NULL,
					   &error);
		g_assert_no_error(error);
		got = drain_path(lgd_pump_get_path(pump));
		g_assert_true(lgd_pump_finish(pump, &error));
		g_assert_no_error(error);
		g_assert_true(lgd_pump_check_delivered(pump, &error));
		g_assert_cmpuint(lgd_pump_get_bytes(pump), ==, len);
		g_assert_cmpmem(got->data, got->len, sent, len);
	}
}

/* An announced size ends the transfer even though the client keeps its
 * end open; a source that ends short of it is an error. */
static void
test_source_announced(void)
{
	gchar sent[100];
	gint fds[2];
	g_autoptr(GError) error = NULL;
	g_autoptr(GByteArray) got = NULL;
	LgdPump *pump;

	fill(sent, sizeof sent, 7);
	g_assert_cmpint(pipe2(fds, O_CLOEXEC), ==, 0);
	g_assert_cmpint(write(fds[1], sent, sizeof sent), ==, (gssize)sizeof sent);
	pump = lgd_pump_new_source(fds[0], 60, NULL, &error);
	g_assert_no_error(error);
	got = drain_path(lgd_pump_get_path(pump)); /* fds[1] is still open */
	g_assert_cmpuint(got->len, ==, 60);
	g_assert_true(lgd_pump_finish(pump, &error));
	lgd_pump_free(pump);
	close(fds[1]);

	g_clear_pointer(&got, g_byte_array_unref);
	g_assert_cmpint(pipe2(fds, O_CLOEXEC), ==, 0);
	g_assert_cmpint(write(fds[1], sent, sizeof sent), ==, (gssize)sizeof sent);
	close(fds[1]);
	pump = lgd_pump_new_source(fds[0], 1000, NULL, &error);
	g_assert_no_error(error);
	got = drain_path(lgd_pump_get_path(pump));
	g_assert_cmpuint(got->len, ==, sizeof sent);
	g_assert_false(lgd_pump_finish(pump, &error));
	g_assert_nonnull(error);
	g_assert_nonnull(strstr(error->message, "100 of the 1000 bytes"));
	lgd_pump_free(pump);
}

/* What is written to the path reaches the client, all of it. */
static void
test_sink_whole(void)
{
	gsize len = 70000;
	g_autofree gchar *sent = g_malloc(len);

	for (guint round = 0; round < ROUNDS / 10; round++) {
		g_autoptr(GError) error = NULL;
		g_autoptr(GByteArray) got = g_byte_array_new();
		LgdPump *pump;
		gchar buf[65536];
		gssize n;
		gint fds[2];
		gint out;

		fill(sent, len, round);
		g_assert_cmpint(pipe2(fds, O_CLOEXEC), ==, 0);
		pump = lgd_pump_new_sink(fds[1], NULL, &error);
		g_assert_no_error(error);
		out = open(lgd_pump_get_path(pump), O_WRONLY | O_CLOEXEC);
		g_assert_cmpint(out, >=, 0);
		/* more than a pipe holds: the client reads while we write */
		for (gsize done = 0; done < len;) {
			n = write(out, sent + done, MIN(len - done, 8192));
			g_assert_cmpint(n, >, 0);
			done += (gsize)n;
			while (got->len < done && (n = read(fds[0], buf, sizeof buf)) > 0)
				g_byte_array_append(got, (const guint8 *)buf, (guint)n);
		}
		close(out);
		g_assert_true(lgd_pump_finish(pump, &error));
		lgd_pump_free(pump); /* closes the client's write end */
		while ((n = read(fds[0], buf, sizeof buf)) > 0)
			g_byte_array_append(got, (const guint8 *)buf, (guint)n);
		close(fds[0]);
		g_assert_cmpmem(got->data, got->len, sent, len);
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_data_func("/pump/source/whole", GINT_TO_POINTER(FALSE), test_source_whole);
	g_test_add_data_func("/pump/source/whole-announced", GINT_TO_POINTER(TRUE),
			     test_source_whole);
	g_test_add_func("/pump/source/announced", test_source_announced);
	g_test_add_func("/pump/sink/whole", test_sink_whole);
	return g_test_run();
}
