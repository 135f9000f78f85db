#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <string.h>
#include <unistd.h>

#include "lgd-error.h"
#include "lgd-generated.h"
#include "lgd-job.h"
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

static void
on_completed(LgdDBusJob *iface, gboolean success, const gchar *message, gpointer user_data)
{
	gchar **outcome = user_data;

	g_assert_null(*outcome);
	*outcome = g_strdup_printf("%s: %s", success ? "ok" : "failed", message);
}

/* A sink whose client reads nothing, with a job: cancelling the job ends
 * the pump at once (not after the idle timeout) with Cancelled, and the
 * job, published at its start, shows every byte the client got, says
 * Completed and is withdrawn. Everything runs in this thread, which owns
 * the default main context, so the job's main-loop side runs inline. */
static void
test_sink_cancelled(void)
{
	g_autoptr(GDBusObjectManagerServer) server =
	    g_dbus_object_manager_server_new("/org/libvirt/GuestFS");
	g_autoptr(LgdAuth) auth = lgd_auth_new(LGD_BUS_SESSION, NULL);
	LgdJobs *jobs = lgd_jobs_new(server, auth);
	const gchar *objects[] = {"/org/libvirt/GuestFS/test/domain/x", NULL};
	LgdJob *job = lgd_job_start(jobs, "files-download", objects, 1000, "unit-1", NULL);
	g_autoptr(GDBusObject) object = NULL;
	g_autoptr(LgdDBusJob) iface = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *outcome = NULL;
	g_autofree gchar *expected = NULL;
	g_autofree gchar *sent = g_malloc0(64 * 1024);
	const gchar *path;
	LgdPump *pump;
	gint64 start;
	gint fds[2];
	gint out;

	object = g_dbus_object_manager_get_object(G_DBUS_OBJECT_MANAGER(server),
						  "/org/libvirt/GuestFS/jobs/0");
	g_assert_nonnull(object);
	iface = lgd_dbus_object_get_job(LGD_DBUS_OBJECT(object));
	g_assert_cmpstr(lgd_dbus_job_get_operation(iface), ==, "files-download");
	g_assert_cmpstr(lgd_dbus_job_get_job_id(iface), ==, "unit-1");
	g_assert_cmpuint(lgd_dbus_job_get_started_by_uid(iface), ==, 1000);
	g_assert_cmpstr(lgd_dbus_job_get_objects(iface)[0], ==, objects[0]);
	g_assert_cmpfloat(lgd_dbus_job_get_progress(iface), ==, -1.0);
	g_signal_connect(iface, "completed", G_CALLBACK(on_completed), &outcome);

	g_assert_cmpint(pipe2(fds, O_CLOEXEC), ==, 0);
	pump = lgd_pump_new_sink(fds[1], job, &error);
	g_assert_no_error(error);
	path = lgd_pump_get_path(pump);
	out = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	g_assert_cmpint(out, >=, 0);
	/* fill both pipes and the pump's buffer: the pump then waits on the
	 * client, who reads nothing */
	for (guint idle = 0; idle < 20;) {
		if (write(out, sent, 64 * 1024) > 0) {
			idle = 0;
			continue;
		}
		g_assert_cmpint(errno, ==, EAGAIN);
		idle++;
		g_usleep(10 * 1000);
	}
	start = g_get_monotonic_time();
	g_cancellable_cancel(lgd_job_get_cancellable(job));
	close(out);
	g_assert_false(lgd_pump_finish(pump, &error));
	g_assert_error(error, LGD_ERROR, LGD_ERROR_CANCELLED);
	g_assert_cmpint(g_get_monotonic_time() - start, <, 500 * 1000);
	/* the client's pipe holds what was counted */
	g_assert_cmpuint(lgd_pump_get_bytes(pump), >, 0);

	lgd_job_complete(job, error);
	expected =
	    g_strdup_printf("failed: The transfer was cancelled after %" G_GUINT64_FORMAT " bytes",
			    lgd_pump_get_bytes(pump));
	g_assert_cmpstr(outcome, ==, expected);
	g_assert_cmpuint(lgd_dbus_job_get_bytes_done(iface), ==, lgd_pump_get_bytes(pump));
	g_assert_null(g_dbus_object_manager_get_object(G_DBUS_OBJECT_MANAGER(server),
						       "/org/libvirt/GuestFS/jobs/0"));
	lgd_pump_free(pump);
	close(fds[0]);
	lgd_jobs_free(jobs);
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
	g_test_add_func("/pump/sink/cancelled", test_sink_cancelled);
	return g_test_run();
}
