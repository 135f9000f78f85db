#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "lgd-error.h"
#include "lgd-fd-io.h"
#include "lgd-job.h"
#include "lgd-pump.h"

#define LGD_PUMP_BUFFER (1024 * 1024)

struct _LgdPump {
	gboolean to_client; /* sink: libguestfs -> pipe -> client */
	gint client_fd;	    /* owned */
	gint pump_fd;	    /* our end of the pipe, used by the thread */
	gint guestfs_fd;    /* the end libguestfs opens as /dev/fd/N */
	gchar *path;
	guint64 expected;
	LgdJob *job; /* may be NULL; counts the bytes, may cancel */
	gint cancel_fd;
	GThread *thread;

	/* written by the thread, read after joining it */
	guint64 bytes;
	gint client_errno;  /* the client's fd failed */
	gint guestfs_errno; /* a source: the pipe to libguestfs failed */
	gboolean client_gone;
};

static gpointer
lgd_pump_thread(gpointer user_data)
{
	LgdPump *self = user_data;
	g_autofree gchar *buf = g_malloc(LGD_PUMP_BUFFER);
	gint in = self->to_client ? self->pump_fd : self->client_fd;
	gint out = self->to_client ? self->client_fd : self->pump_fd;

	for (;;) {
		gsize want = LGD_PUMP_BUFFER;
		gssize n;

		/* an announced size is all we take: a client that keeps its end
		 * open must not keep the transfer waiting */
		if (!self->to_client && self->expected != LGD_PUMP_SIZE_UNKNOWN)
			want = (gsize)MIN((guint64)want, self->expected - self->bytes);
		if (want == 0)
			break;
		/* two checks of one Cancel: this flag stops a client that
		 * never makes us wait, the cancel fd a read or write that
		 * waits in poll() */
		if (self->job != NULL && lgd_job_is_cancelled(self->job)) {
			self->client_errno = ECANCELED;
			break;
		}
		n = lgd_fd_io_read_cancellable(in, buf, want, !self->to_client, self->cancel_fd);

		if (n < 0 && (!self->to_client || errno == ECANCELED)) {
			self->client_errno = errno;
			break;
		}
		if (n <= 0)
			break;
		if (!lgd_fd_io_write_all_cancellable(out, buf, (gsize)n, NULL, self->to_client,
						     self->cancel_fd)) {
			if (self->to_client || errno == ECANCELED)
				self->client_errno = errno;
			else
				self->guestfs_errno = errno;
			break;
		}
		self->bytes += (guint64)n;
		if (self->job != NULL)
			lgd_job_add_done(self->job, (guint64)n);
	}
	/* Closing our end tells the other side: EOF for libguestfs reading a
	 * source, EPIPE for libguestfs writing to a sink whose client left. */
	close(self->pump_fd);
	self->pump_fd = -1;
	return NULL;
}

/* Everything the thread reads is set before it starts. */
static LgdPump *
lgd_pump_new(gint client_fd, gboolean to_client, guint64 expected, LgdJob *job, GError **error)
{
	LgdPump *self = g_new0(LgdPump, 1);
	gint fds[2];

	self->client_fd = client_fd;
	self->to_client = to_client;
	self->expected = expected;
	self->job = job;
	self->cancel_fd = job != NULL ? lgd_job_get_cancel_fd(job) : -1;
	self->pump_fd = -1;
	self->guestfs_fd = -1;
	if (pipe2(fds, O_CLOEXEC) < 0) {
		g_set_error(error, LGD_ERROR, LGD_ERROR_FAILED, "Cannot create a pipe: %s",
			    g_strerror(errno));
		lgd_pump_free(self);
		return NULL;
	}
	/* fds[0] reads, fds[1] writes */
	self->pump_fd = to_client ? fds[0] : fds[1];
	self->guestfs_fd = to_client ? fds[1] : fds[0];
	self->path = g_strdup_printf("/dev/fd/%d", self->guestfs_fd);
	self->thread = g_thread_new("lgd-pump", lgd_pump_thread, self);
	return self;
}

/* Client data flows into libguestfs, which reads lgd_pump_get_path().
 * @job (may be NULL, must outlive the pump) counts the bytes; cancelling
 * it ends the pump as a client that went away would. */
LgdPump *
lgd_pump_new_source(gint client_fd, guint64 expected_size, LgdJob *job, GError **error)
{
	return lgd_pump_new(client_fd, FALSE, expected_size, job, error);
}

/* libguestfs writes to lgd_pump_get_path(); the bytes go to the client. */
LgdPump *
lgd_pump_new_sink(gint client_fd, LgdJob *job, GError **error)
{
	return lgd_pump_new(client_fd, TRUE, LGD_PUMP_SIZE_UNKNOWN, job, error);
}

const gchar *
lgd_pump_get_path(LgdPump *self)
{
	return self->path;
}

/* Called once libguestfs is done with the path: ends the pump and tells
 * whether the client's side of the transfer was whole. */
gboolean
lgd_pump_finish(LgdPump *self, GError **error)
{
	/* libguestfs has closed its own copy; ours would keep the pump
	 * waiting for more (sink) or writing into a full pipe (source). */
	if (self->guestfs_fd >= 0) {
		close(self->guestfs_fd);
		self->guestfs_fd = -1;
	}
	if (self->thread != NULL) {
		g_thread_join(self->thread);
		self->thread = NULL;
	}
	if (self->client_errno == ECANCELED) {
		g_set_error(error, LGD_ERROR, LGD_ERROR_CANCELLED,
			    "The transfer was cancelled after %" G_GUINT64_FORMAT " bytes",
			    self->bytes);
		return FALSE;
	}
	if (self->client_errno == ETIMEDOUT) {
		g_set_error(error, LGD_ERROR, LGD_ERROR_CANCELLED,
			    "The transfer ended after %" G_GUINT64_FORMAT
			    " bytes: the client's file descriptor made no progress for %u s",
			    self->bytes, lgd_fd_io_get_idle_timeout());
		return FALSE;
	}
	if (self->client_errno != 0) {
		g_set_error(error, LGD_ERROR,
			    self->client_errno == EPIPE || self->client_errno == ECONNRESET
				? LGD_ERROR_CANCELLED
				: LGD_ERROR_FAILED,
			    "The transfer ended after %" G_GUINT64_FORMAT
			    " bytes: the client's file descriptor failed: %s",
			    self->bytes, g_strerror(self->client_errno));
		return FALSE;
	}
	if (!self->to_client && self->expected != LGD_PUMP_SIZE_UNKNOWN &&
	    self->bytes < self->expected) {
		g_set_error(error, LGD_ERROR, LGD_ERROR_CANCELLED,
			    "The source ended after %" G_GUINT64_FORMAT " of the %" G_GUINT64_FORMAT
			    " bytes announced",
			    self->bytes, self->expected);
		return FALSE;
	}
	return TRUE;
}

/* After lgd_pump_finish(): the bytes that passed. */
guint64
lgd_pump_get_bytes(LgdPump *self)
{
	return self->bytes;
}

/* After lgd_pump_finish() of a source whose libguestfs call succeeded:
 * FALSE (@error set) when not all the client's bytes reached libguestfs,
 * so that a write cannot succeed with less than was sent. */
gboolean
lgd_pump_check_delivered(LgdPump *self, GError **error)
{
	if (self->to_client || self->guestfs_errno == 0)
		return TRUE;
	g_set_error(error, LGD_ERROR, LGD_ERROR_FAILED,
		    "Only %" G_GUINT64_FORMAT " bytes reached the appliance: %s", self->bytes,
		    g_strerror(self->guestfs_errno));
	return FALSE;
}

void
lgd_pump_free(LgdPump *self)
{
	if (self == NULL)
		return;
	lgd_pump_finish(self, NULL);
	if (self->client_fd >= 0)
		close(self->client_fd);
	g_free(self->path);
	g_free(self);
}
