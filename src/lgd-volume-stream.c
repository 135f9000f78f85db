#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lgd-args.h"
#include "lgd-call.h"
#include "lgd-error.h"
#include "lgd-fd.h"
#include "lgd-libvirt.h"
#include "lgd-fd-io.h"
#include "lgd-volume-local.h"
#include "lgd-volume-stream.h"
#include "lgd-volume-usage.h"

static const LgdOptionSpec lgd_volume_stream_options[] = {
    {"offset", "t"}, {"length", "t"}, {"sparse", "b"}, {"job-id", "s"}, {"transport", "s"}, {NULL},
};

/* ---- ranges ------------------------------------------------------------ */

/* @count is how many bytes move: @length, or up to the end when it is 0.
 * Written so that no sum can overflow. */
gboolean
lgd_volume_stream_check_range(
    guint64 size, guint64 offset, guint64 length, guint64 *count, GError **error)
{
	if (offset > size) {
		g_set_error(error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT,
			    "Offset %" G_GUINT64_FORMAT
			    " is past the end of the volume (%" G_GUINT64_FORMAT " bytes)",
			    offset, size);
		return FALSE;
	}
	if (length > size - offset) {
		g_set_error(error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT,
			    "Offset %" G_GUINT64_FORMAT " plus length %" G_GUINT64_FORMAT
			    " goes past the end of the volume (%" G_GUINT64_FORMAT " bytes)",
			    offset, length, size);
		return FALSE;
	}
	*count = length != 0 ? length : size - offset;
	return TRUE;
}

/* ---- the caller's descriptor ------------------------------------------- */

/* The readable end of the call's job's cancellation, -1 without a job. */
static gint
lgd_volume_stream_cancel_fd(LgdCall *call)
{
	return call->job != NULL ? lgd_job_get_cancel_fd(call->job) : -1;
}

/* What went wrong (@errnum) writing to the sink, @done bytes into the
 * transfer. */
void
lgd_volume_sink_set_error(gint errnum, guint64 done, GError **error)
{
	if (errnum == ECANCELED) {
		g_set_error(error, LGD_ERROR, LGD_ERROR_CANCELLED,
			    "The transfer was cancelled after %" G_GUINT64_FORMAT " bytes", done);
		return;
	}
	if (errnum == ETIMEDOUT) {
		g_set_error(error, LGD_ERROR, LGD_ERROR_CANCELLED,
			    "The sink made no progress for %u s after %" G_GUINT64_FORMAT
			    " bytes; the transfer was aborted",
			    lgd_fd_io_get_idle_timeout(), done);
		return;
	}
	if (errnum == EPIPE || errnum == ECONNRESET) {
		g_set_error(error, LGD_ERROR, LGD_ERROR_CANCELLED,
			    "The sink was closed after %" G_GUINT64_FORMAT
			    " bytes; the transfer was aborted",
			    done);
		return;
	}
	g_set_error(error, LGD_ERROR, lgd_error_code_from_errno(errnum),
		    "Cannot write to the sink after %" G_GUINT64_FORMAT " bytes: %s", done,
		    g_strerror(errnum));
}

/* Writes to the sink (lgd-fd-io.c) and says what went wrong, @done bytes
 * into the transfer; ends when @cancel_fd (a job's) becomes readable. */
static gboolean
lgd_fd_write_all(
    gint fd, const gchar *data, gsize len, guint64 done, gint cancel_fd, GError **error)
{
	gsize written = 0;

	if (lgd_fd_io_write_all_cancellable(fd, data, len, &written, TRUE, cancel_fd))
		return TRUE;
	lgd_volume_sink_set_error(errno, done + written, error);
	return FALSE;
}

/* What went wrong (@errnum) reading from the source. */
void
lgd_volume_source_set_error(gint errnum, GError **error)
{
	if (errnum == ECANCELED)
		g_set_error_literal(error, LGD_ERROR, LGD_ERROR_CANCELLED,
				    "The transfer was cancelled");
	else if (errnum == ETIMEDOUT)
		g_set_error(error, LGD_ERROR, LGD_ERROR_CANCELLED,
			    "The source made no progress for %u s; the transfer was aborted",
			    lgd_fd_io_get_idle_timeout());
	else
		g_set_error(error, LGD_ERROR, lgd_error_code_from_errno(errnum),
			    "Cannot read from the source: %s", g_strerror(errnum));
}

static gssize
lgd_fd_read(gint fd, gchar *data, gsize len, gint cancel_fd, GError **error)
{
	gssize n = lgd_fd_io_read_cancellable(fd, data, len, TRUE, cancel_fd);

	if (n < 0)
		lgd_volume_source_set_error(errno, error);
	return n;
}

/* ---- download: the stream into the sink -------------------------------- */

static int
lgd_sink_data(virStreamPtr st, const char *data, size_t nbytes, void *opaque)
{
	LgdSink *sink = opaque;

	if (!lgd_fd_write_all(sink->fd, data, nbytes, sink->done, sink->cancel_fd, &sink->error))
		return -1;
	sink->done += nbytes;
	if (sink->job != NULL)
		lgd_job_add_done(sink->job, nbytes);
	sink->pos += nbytes;
	sink->size = MAX(sink->size, sink->pos);
	return (int)nbytes;
}

static gboolean
lgd_sink_zero(LgdSink *sink, off_t len)
{
	static const gchar zeros[64 * 1024];

	while (len > 0) {
		gsize n = MIN((gsize)len, sizeof(zeros));

		if (!lgd_fd_write_all(sink->fd, zeros, n, sink->done, sink->cancel_fd,
				      &sink->error))
			return FALSE;
		len -= n;
	}
	return TRUE;
}

/* A hole over bytes the sink already has must clear them: punch it, or
 * write zeros where the file system cannot. Past the end a seek does.
 * Counted as done; FALSE with the sink's error set. */
gboolean
lgd_sink_make_hole(LgdSink *sink, off_t length)
{
	off_t end;

	end = sink->pos + length;
	if (sink->pos < sink->size) {
		off_t covered = MIN(end, sink->size) - sink->pos;

		if (fallocate(sink->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, sink->pos,
			      covered) < 0) {
			if (errno != EOPNOTSUPP || !lgd_sink_zero(sink, covered)) {
				if (sink->error == NULL)
					g_set_error(&sink->error, LGD_ERROR,
						    lgd_error_code_from_errno(errno),
						    "Cannot make a hole in the sink: %s",
						    g_strerror(errno));
				return FALSE;
			}
		}
	}
	if (lseek(sink->fd, end, SEEK_SET) < 0) {
		g_set_error(&sink->error, LGD_ERROR, lgd_error_code_from_errno(errno),
			    "Cannot seek in the sink: %s", g_strerror(errno));
		return FALSE;
	}
	sink->done += length;
	if (sink->job != NULL)
		lgd_job_add_done(sink->job, (guint64)length);
	sink->pos = end;
	return TRUE;
}

static int
lgd_sink_hole(virStreamPtr st, long long length, void *opaque)
{
	LgdSink *sink = opaque;

	if (length < 0 || length > G_MAXINT64 - sink->pos) {
		g_set_error(&sink->error, LGD_ERROR, LGD_ERROR_FAILED,
			    "libvirt sent a hole of %lld bytes", length);
		return -1;
	}
	return lgd_sink_make_hole(sink, length) ? 0 : -1;
}

/* A file that ends with a hole still needs its size. */
static gboolean
lgd_sink_finish_sparse(LgdSink *sink, GError **error)
{
	if (sink->size >= sink->pos)
		return TRUE;
	if (ftruncate(sink->fd, sink->pos) < 0) {
		g_set_error(error, LGD_ERROR, lgd_error_code_from_errno(errno),
			    "Cannot extend the sink to %" G_GUINT64_FORMAT " bytes: %s",
			    (guint64)sink->pos, g_strerror(errno));
		return FALSE;
	}
	return TRUE;
}

/* ---- upload: the source into the stream -------------------------------- */

/* Reads one byte past what fits: TRUE (the source's error set) when there
 * is one, or when the read failed. */
gboolean
lgd_source_has_more(LgdSource *source)
{
	gchar byte;
	gssize n = lgd_fd_read(source->fd, &byte, 1, source->cancel_fd, &source->error);

	if (n > 0)
		g_set_error(&source->error, LGD_ERROR, LGD_ERROR_TOO_LARGE,
			    "The source holds more than the %" G_GUINT64_FORMAT
			    " bytes that fit in the volume from the offset; the transfer was "
			    "aborted after writing them",
			    source->count);
	return n != 0;
}

void
lgd_source_ended_early(LgdSource *source, GError **error)
{
	g_set_error(error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT,
		    "The source ended after %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT
		    " bytes; the transfer was aborted",
		    source->count - source->remaining, source->count);
}

static int
lgd_source_data(virStreamPtr st, char *data, size_t nbytes, void *opaque)
{
	LgdSource *source = opaque;
	gssize n;

	if (source->remaining == 0)
		return source->fit_only && lgd_source_has_more(source) ? -1 : 0;
	n = lgd_fd_read(source->fd, data, MIN(nbytes, source->remaining), source->cancel_fd,
			&source->error);
	if (n < 0)
		return -1;
	if (n == 0 && source->exact) {
		lgd_source_ended_early(source, &source->error);
		return -1;
	}
	source->remaining -= n;
	source->pos += n;
	if (source->job != NULL)
		lgd_job_add_done(source->job, (guint64)n);
	return (int)n;
}

/* Puts the source's file offset back at @source->pos, where the next
 * read starts: 0, or -1 with the source's error set. */
static int
lgd_source_seek(LgdSource *source)
{
	if (lseek(source->fd, source->pos, SEEK_SET) < 0) {
		g_set_error(&source->error, LGD_ERROR, lgd_error_code_from_errno(errno),
			    "Cannot seek in the source: %s", g_strerror(errno));
		return -1;
	}
	return 0;
}

/* Where the next section of a sparse source ends, and whether it is data:
 * SEEK_DATA and SEEK_HOLE, bounded by what is left to send. */
static int
lgd_source_section(virStreamPtr st, int *in_data, long long *length, void *opaque)
{
	LgdSource *source = opaque;
	off_t data;
	off_t hole;

	*in_data = 1;
	*length = (long long)source->remaining;
	if (source->remaining == 0)
		return 0;
	if (source->first_as_data) {
		source->first_as_data = FALSE;
		*length = 1;
		return 0;
	}
	data = lseek(source->fd, source->pos, SEEK_DATA);
	if (data < 0 && errno == ENXIO) {
		*in_data = 0; /* a hole up to the end of the file */
	} else if (data < 0 && (errno == EINVAL || errno == EOPNOTSUPP)) {
		/* no hole support: all data */
	} else if (data < 0) {
		g_set_error(&source->error, LGD_ERROR, lgd_error_code_from_errno(errno),
			    "Cannot look for data in the source: %s", g_strerror(errno));
		return -1;
	} else if (data > source->pos) {
		*in_data = 0;
		*length = MIN(*length, (long long)(data - source->pos));
	} else {
		hole = lseek(source->fd, source->pos, SEEK_HOLE);
		if (hole > source->pos)
			*length = MIN(*length, (long long)(hole - source->pos));
	}
	return lgd_source_seek(source);
}

static int
lgd_source_skip(virStreamPtr st, long long length, void *opaque)
{
	LgdSource *source = opaque;

	source->pos += length;
	source->remaining -= length;
	if (source->job != NULL)
		lgd_job_add_done(source->job, (guint64)length);
	return lgd_source_seek(source);
}

/* ---- the transfer thread ----------------------------------------------- */

/* libvirt reports a connection that died under a stream (closed, or
 * given up on by keepalive) as an internal error: say what happened. */
static void
lgd_volume_stream_set_libvirt_error(virConnectPtr conn,
				    const gchar *what,
				    const gchar *path,
				    GError **error)
{
	lgd_error_set_from_libvirt(error, "%s of volume %s failed", what, path);
	if (virConnectIsAlive(conn) == 0) {
		(*error)->code = LGD_ERROR_UNAVAILABLE;
		g_prefix_error(error, "The connection to libvirt was lost: ");
	}
}

/* The error of a failed stream: ours (the sink or source) if we caused
 * it, libvirt's otherwise. Then the stream is aborted, which tells the
 * other end, and libvirt's error is taken before the abort replaces it. */
static void
lgd_volume_stream_fail(virConnectPtr conn,
		       virStreamPtr st,
		       GError **own_error,
		       const gchar *what,
		       const gchar *path,
		       GError **error)
{
	if (*own_error != NULL)
		g_propagate_error(error, g_steal_pointer(own_error));
	else
		lgd_volume_stream_set_libvirt_error(conn, what, path, error);
	virStreamAbort(st);
	virResetLastError();
}

/* Ends a stream whose transfer returned @rc: on failure with our error
 * (@own_error) or libvirt's, else once libvirt has confirmed the end. */
static gboolean
lgd_volume_stream_end(virConnectPtr conn,
		      virStreamPtr st,
		      int rc,
		      GError **own_error,
		      const gchar *what,
		      const gchar *path,
		      GError **error)
{
	if (rc < 0) {
		lgd_volume_stream_fail(conn, st, own_error, what, path, error);
		return FALSE;
	}
	if (virStreamFinish(st) < 0) {
		lgd_volume_stream_set_libvirt_error(conn, what, path, error);
		return FALSE;
	}
	return TRUE;
}

/* The volume a transfer reads or writes, with its sizes. */
typedef struct {
	virConnectPtr conn;
	virStorageVolPtr vol;
	const gchar *path;
	const gchar *uri;
	guint64 stored;
	guint64 capacity;
	gint local_fd; /* the volume's file, opened for a local copy; -1: the stream */
} LgdVolumeTarget;

#define LGD_TRANSPORT_LOCAL "local-copy"
#define LGD_TRANSPORT_STREAM "libvirt-stream"

static const gchar *
lgd_volume_stream_transport_option(LgdCall *t)
{
	const gchar *value = NULL;

	g_variant_lookup(t->options, "transport", "&s", &value);
	return value != NULL ? value : "auto";
}

/* Chooses how the bytes move, once the call's checks have passed: a copy
 * of the volume's own file when the connection is local and the file can
 * be opened safely (lgd_volume_local_open()), the libvirt stream
 * otherwise, or what the option 'transport' asks for. The log and the
 * job say which. FALSE only when 'local-copy' was asked for and cannot
 * be done. */
static gboolean
lgd_volume_stream_choose(LgdCall *t, LgdVolumeTarget *v, GError **error)
{
	const gchar *want = lgd_volume_stream_transport_option(t);
	const gchar *what = t->flag ? "upload to" : "download of";
	g_autofree gchar *why_not = NULL;

	if (g_str_equal(want, LGD_TRANSPORT_STREAM))
		why_not = g_strdup("the caller asked for the libvirt stream");
	else
		v->local_fd =
		    lgd_volume_local_open(v->vol, v->uri, v->path, v->stored, t->flag, &why_not);
	if (v->local_fd < 0 && g_str_equal(want, LGD_TRANSPORT_LOCAL)) {
		g_set_error(error, LGD_ERROR, LGD_ERROR_NOT_SUPPORTED,
			    "Volume %s cannot be copied locally (transport 'local-copy'): %s",
			    v->path, why_not);
		return FALSE;
	}
	if (v->local_fd >= 0)
		g_info("%s volume %s on %s: local copy of its file", what, v->path, v->uri);
	else
		g_info("%s volume %s on %s: libvirt stream (%s)", what, v->path, v->uri, why_not);
	if (t->job != NULL)
		lgd_job_set_transport(t->job, v->local_fd >= 0 ? LGD_TRANSPORT_LOCAL
							       : LGD_TRANSPORT_STREAM);
	return TRUE;
}

/* The volume's bytes as stored: the file's or device's size, which is
 * less than the capacity for a qcow2 image. */
static gboolean
lgd_volume_stream_sizes(
    virStorageVolPtr vol, const gchar *path, guint64 *stored, guint64 *capacity, GError **error)
{
	virStorageVolInfo info;

	if (virStorageVolGetInfoFlags(vol, &info, VIR_STORAGE_VOL_GET_PHYSICAL) < 0) {
		lgd_error_set_from_libvirt(error, "Cannot read the size of volume %s", path);
		return FALSE;
	}
	*capacity = info.capacity;
	/* backends that know no physical size give 0: the capacity it is */
	*stored = info.allocation != 0 ? info.allocation : info.capacity;
	return TRUE;
}

/* A stream over @count bytes of @vol from @offset, read from the volume
 * or (@upload) written to it; NULL when libvirt refuses. */
static virStreamPtr
lgd_volume_stream_open(virConnectPtr conn,
		       virStorageVolPtr vol,
		       gboolean upload,
		       guint64 offset,
		       guint64 count,
		       gboolean sparse,
		       const gchar *path,
		       GError **error)
{
	g_autoptr(virStream) st = virStreamNew(conn, 0);
	int rc = -1;

	if (st != NULL && upload)
		rc = virStorageVolUpload(vol, st, offset, count,
					 sparse ? VIR_STORAGE_VOL_UPLOAD_SPARSE_STREAM : 0);
	else if (st != NULL)
		rc = virStorageVolDownload(vol, st, offset, count,
					   sparse ? VIR_STORAGE_VOL_DOWNLOAD_SPARSE_STREAM : 0);
	if (rc < 0) {
		lgd_error_set_from_libvirt(error, "Cannot %s volume %s",
					   upload ? "upload to" : "download", path);
		return NULL;
	}
	return g_steal_pointer(&st);
}

static gboolean
lgd_volume_stream_download(LgdCall *t, LgdVolumeTarget *v, GError **error)
{
	g_autoptr(virStream) st = NULL;
	LgdSink sink = {.fd = t->fd, .job = t->job, .cancel_fd = lgd_volume_stream_cancel_fd(t)};
	guint64 count;
	int rc;

	if (!lgd_volume_stream_check_range(v->stored, t->offset, t->length, &count, error))
		return FALSE;
	if (count == 0)
		return TRUE; /* and libvirt would read 0 as "to the end" */
	if (t->job != NULL)
		lgd_job_set_total(t->job, count);
	if (t->sparse) {
		sink.pos = lseek(t->fd, 0, SEEK_CUR);
		sink.size = t->fd_stat.st_size;
		if (sink.pos < 0) {
			g_set_error(error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT,
				    "Cannot seek in the sink: %s", g_strerror(errno));
			return FALSE;
		}
	}
	if (!lgd_volume_stream_choose(t, v, error))
		return FALSE;
	if (v->local_fd >= 0) {
		if (!lgd_volume_local_download(v->local_fd, &sink, t->fd_stat.st_mode, t->fd_flags,
					       t->offset, count, t->sparse, v->path, error))
			return FALSE;
	} else {
		st = lgd_volume_stream_open(v->conn, v->vol, FALSE, t->offset, count, t->sparse,
					    v->path, error);
		if (st == NULL)
			return FALSE;
		if (t->sparse)
			rc = virStreamSparseRecvAll(st, lgd_sink_data, lgd_sink_hole, &sink);
		else
			rc = virStreamRecvAll(st, lgd_sink_data, &sink);
		if (!lgd_volume_stream_end(v->conn, st, rc, &sink.error, "Download", v->path,
					   error))
			return FALSE;
	}
	if (sink.done != count) {
		g_set_error(error, LGD_ERROR, LGD_ERROR_FAILED,
			    "Volume %s gave %" G_GUINT64_FORMAT
			    " bytes instead of %" G_GUINT64_FORMAT " (did it shrink?)",
			    v->path, sink.done, count);
		return FALSE;
	}
	return !t->sparse || lgd_sink_finish_sparse(&sink, error);
}

/* How many bytes to send, checked before anything is written: a regular
 * file says how much it holds; a pipe tells only as it goes. */
static gboolean
lgd_volume_stream_upload_count(
    LgdCall *t, LgdSource *source, guint64 stored, guint64 room, GError **error)
{
	gboolean seekable = S_ISREG(t->fd_stat.st_mode);
	guint64 avail = 0;

	if (seekable) {
		source->pos = lseek(t->fd, 0, SEEK_CUR);
		seekable = source->pos >= 0;
		avail = seekable && t->fd_stat.st_size > source->pos
			    ? t->fd_stat.st_size - source->pos
			    : 0;
	}
	if (!lgd_volume_stream_check_range(room, t->offset, t->length, &source->count, error))
		return FALSE;
	source->exact = TRUE;
	if (t->length == 0 && seekable) {
		if (avail > source->count) {
			g_set_error(error, LGD_ERROR, LGD_ERROR_TOO_LARGE,
				    "The source holds %" G_GUINT64_FORMAT
				    " bytes but only %" G_GUINT64_FORMAT
				    " fit in the volume from offset %" G_GUINT64_FORMAT,
				    avail, source->count, t->offset);
			return FALSE;
		}
		source->count = avail;
	} else if (t->length == 0) {
		source->exact = FALSE;
		source->fit_only = TRUE;
	} else if (seekable && avail < source->count) {
		g_set_error(error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT,
			    "The source holds only %" G_GUINT64_FORMAT
			    " bytes from its position, less than the length %" G_GUINT64_FORMAT,
			    avail, source->count);
		return FALSE;
	}
	/* libvirt writes a sparse stream by truncating the file at each hole
	 * and extending it again: whatever follows the range would be lost */
	if (t->sparse && t->offset + source->count != stored) {
		g_set_error(error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT,
			    "A sparse upload must reach the end of the volume (%" G_GUINT64_FORMAT
			    " bytes), but offset %" G_GUINT64_FORMAT " plus %" G_GUINT64_FORMAT
			    " bytes ends elsewhere; leave out 'sparse' to write a range",
			    stored, t->offset, source->count);
		return FALSE;
	}
	source->remaining = source->count;
	return TRUE;
}

/* libvirt writes a hole of a sparse upload by seeking past it and cutting
 * the file there, so the bytes the file already had inside the first hole
 * would stay. Cutting the file one byte after @offset first (a stream of
 * one hole byte), and sending that byte as data, makes every hole start at
 * or past the end of the file, where it reads as zeros. */
static gboolean
lgd_volume_stream_cut(
    virConnectPtr conn, virStorageVolPtr vol, guint64 offset, const gchar *path, GError **error)
{
	g_autoptr(virStream) st =
	    lgd_volume_stream_open(conn, vol, TRUE, offset, 1, TRUE, path, error);

	if (st == NULL)
		return FALSE;
	if (virStreamSendHole(st, 1, 0) < 0 || virStreamFinish(st) < 0) {
		lgd_error_set_from_libvirt(error, "Sparse upload to volume %s failed", path);
		virStreamAbort(st);
		return FALSE;
	}
	return TRUE;
}

static gboolean
lgd_volume_stream_upload(LgdCall *t, LgdVolumeTarget *v, GError **error)
{
	g_autoptr(virStream) st = NULL;
	LgdSource source = {
	    .fd = t->fd, .job = t->job, .cancel_fd = lgd_volume_stream_cancel_fd(t)};
	int rc;

	if (!lgd_volume_stream_upload_count(t, &source, v->stored, MAX(v->stored, v->capacity),
					    error) ||
	    !lgd_volume_usage_check_unused(v->conn, v->vol, error))
		return FALSE;
	if (source.count == 0) {
		/* libvirt would read 0 as "no limit" */
		if (source.fit_only && lgd_source_has_more(&source)) {
			g_propagate_error(error, source.error);
			return FALSE;
		}
		return TRUE;
	}
	if (t->job != NULL && !source.fit_only)
		lgd_job_set_total(t->job, source.count);
	if (!lgd_volume_stream_choose(t, v, error))
		return FALSE;
	if (v->local_fd >= 0)
		return lgd_volume_local_upload(v->local_fd, &source, t->fd_stat.st_mode, t->offset,
					       t->sparse, v->path, error);
	if (t->sparse && !lgd_volume_stream_cut(v->conn, v->vol, t->offset, v->path, error))
		return FALSE;
	source.first_as_data = t->sparse;
	st = lgd_volume_stream_open(v->conn, v->vol, TRUE, t->offset, source.count, t->sparse,
				    v->path, error);
	if (st == NULL)
		return FALSE;
	if (t->sparse)
		rc = virStreamSparseSendAll(st, lgd_source_data, lgd_source_section,
					    lgd_source_skip, &source);
	else
		rc = virStreamSendAll(st, lgd_source_data, &source);
	if (!lgd_volume_stream_end(v->conn, st, rc, &source.error, "Upload", v->path, error))
		return FALSE;
	return TRUE;
}

/* libvirt refreshes a volume's pool once a stream upload has closed, so
 * that the pool's and volume's sizes (and the refresh event) follow; after
 * a local copy the service does it. Best effort, as libvirt's: a pool busy
 * with another upload is left for the next refresh. */
static void
lgd_volume_stream_refresh_pool(virStorageVolPtr vol, const gchar *path)
{
	g_autoptr(virStoragePool) pool = virStoragePoolLookupByVolume(vol);

	if (pool == NULL || virStoragePoolRefresh(pool, 0) < 0)
		g_debug("the pool of volume %s was not refreshed after the upload: %s", path,
			virGetLastErrorMessage());
	virResetLastError();
}

static GVariant *
lgd_volume_stream_run(LgdSession *session, LgdCall *t, GError **error)
{
	const gchar *key = lgd_guest_get_volume_key(t->guest);
	g_autoptr(virConnect) conn = lgd_libvirt_connect(lgd_guest_get_uri(t->guest), error);
	g_autoptr(virStorageVol) vol = NULL;
	g_autofree gchar *path = NULL;
	LgdVolumeTarget target;
	gboolean ok;
	gint local_fd;

	if (conn == NULL)
		return NULL;
	vol = virStorageVolLookupByKey(conn, key);
	if (vol == NULL || (path = virStorageVolGetPath(vol)) == NULL) {
		lgd_error_set_from_libvirt(error, "Volume %s", key);
		return NULL;
	}
	target = (LgdVolumeTarget){.conn = conn,
				   .vol = vol,
				   .path = path,
				   .uri = lgd_guest_get_uri(t->guest),
				   .local_fd = -1};
	if (!lgd_volume_stream_sizes(vol, path, &target.stored, &target.capacity, error))
		return NULL;
	if (t->flag)
		ok = lgd_volume_stream_upload(t, &target, error);
	else
		ok = lgd_volume_stream_download(t, &target, error);
	local_fd = target.local_fd;
	/* a local upload's bytes are on the disk before the call returns */
	if (ok && local_fd >= 0 && t->flag && fdatasync(local_fd) < 0 && errno != EINVAL) {
		g_set_error(error, LGD_ERROR, lgd_error_code_from_errno(errno),
			    "Cannot flush volume %s: %s", path, g_strerror(errno));
		ok = FALSE;
	}
	if (local_fd >= 0)
		close(local_fd);
	if (ok && local_fd >= 0 && t->flag)
		lgd_volume_stream_refresh_pool(vol, path);
	if (!ok)
		return NULL;
	/* a file system may report a failed write only now (NFS) */
	if (close(g_steal_fd(&t->fd)) < 0 && errno != EINTR && !t->flag) {
		g_set_error(error, LGD_ERROR, lgd_error_code_from_errno(errno),
			    "Cannot close the sink: %s", g_strerror(errno));
		return NULL;
	}
	return g_variant_new("()");
}

/* ---- the handlers ------------------------------------------------------ */

/* The caller's descriptor, checked by the shared helper, and what the
 * transfer needs to know of it: its size and whether it appends. */
static gboolean
lgd_volume_stream_take_fd(LgdCall *call, GUnixFDList *fd_list, GVariant *handle, GError **error)
{
	call->fd = lgd_fd_take(fd_list, handle, call->flag ? LGD_FD_READ : LGD_FD_WRITE, error);
	if (call->fd < 0)
		return FALSE;
	call->fd_flags = fcntl(call->fd, F_GETFL);
	if (call->fd_flags < 0 || fstat(call->fd, &call->fd_stat) < 0) {
		g_set_error(error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT,
			    "Cannot use the file descriptor passed: %s", g_strerror(errno));
		return FALSE;
	}
	return TRUE;
}

static gboolean
lgd_volume_stream_check_sparse(LgdCall *t, GError **error)
{
	if (!t->sparse)
		return TRUE;
	if (S_ISREG(t->fd_stat.st_mode) && !t->flag && (t->fd_flags & O_APPEND)) {
		g_set_error(error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT,
			    "'sparse' cannot keep holes in a sink open for appending, which "
			    "moves every write to the end of the file");
		return FALSE;
	}
	if (S_ISREG(t->fd_stat.st_mode))
		return TRUE;
	if (t->flag)
		g_set_error(error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT,
			    "'sparse' needs a regular file as source: holes can only be "
			    "found in a file; leave it out for a pipe or socket");
	else
		g_set_error(error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT,
			    "'sparse' needs a regular file as sink: a pipe or socket carries "
			    "bytes only and cannot keep holes; leave it out to get zeros");
	return FALSE;
}

static gboolean
lgd_volume_stream_check_transport(LgdCall *t, GError **error)
{
	const gchar *want = lgd_volume_stream_transport_option(t);

	if (g_str_equal(want, "auto") || g_str_equal(want, LGD_TRANSPORT_LOCAL) ||
	    g_str_equal(want, LGD_TRANSPORT_STREAM))
		return TRUE;
	g_set_error(error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT,
		    "The option 'transport' is '%s'; it takes 'auto', '" LGD_TRANSPORT_LOCAL
		    "' or '" LGD_TRANSPORT_STREAM "'",
		    want);
	return FALSE;
}

static void
lgd_volume_stream_reply(gpointer iface, GDBusMethodInvocation *invocation, GVariant *reply)
{
	if (g_str_equal(g_dbus_method_invocation_get_method_name(invocation), "Upload"))
		lgd_dbus_volume_complete_upload(iface, invocation, NULL);
	else
		lgd_dbus_volume_complete_download(iface, invocation, NULL);
}

/* Download and Upload: validate (the descriptor, the options), then
 * authorize and stream in a thread of the call's own. */
static gboolean
lgd_volume_stream_handle(GDBusMethodInvocation *invocation,
			 LgdDBusVolume *iface,
			 GUnixFDList *fd_list,
			 GVariant *handle,
			 GVariant *options,
			 gboolean upload)
{
	LgdCall *call = lgd_call_new_for_iface(
	    iface, invocation, upload ? LGD_ACTION_VOLUME_WRITE : LGD_ACTION_VOLUME_READ,
	    lgd_volume_stream_reply);
	GError *error = NULL;

	call->flag = upload;
	call->options = g_variant_ref(options);
	call->job_operation = upload ? "volume-upload" : "volume-download";
	call->offset = lgd_args_get_u64(options, "offset", 0);
	call->length = lgd_args_get_u64(options, "length", 0);
	call->sparse = lgd_args_get_bool(options, "sparse", FALSE);
	if (!lgd_volume_stream_take_fd(call, fd_list, handle, &error) ||
	    !lgd_args_check_options(options, lgd_volume_stream_options, &error) ||
	    !lgd_job_check_id(options, &error) ||
	    !lgd_volume_stream_check_transport(call, &error) ||
	    !lgd_volume_stream_check_sparse(call, &error))
		return lgd_call_return_error(call, error);
	return lgd_call_run_in_thread(call, lgd_volume_stream_run);
}

gboolean
lgd_volume_stream_handle_download(LgdDBusVolume *iface,
				  GDBusMethodInvocation *invocation,
				  GUnixFDList *fd_list,
				  GVariant *sink,
				  GVariant *options)
{
	return lgd_volume_stream_handle(invocation, iface, fd_list, sink, options, FALSE);
}

gboolean
lgd_volume_stream_handle_upload(LgdDBusVolume *iface,
				GDBusMethodInvocation *invocation,
				GUnixFDList *fd_list,
				GVariant *source,
				GVariant *options)
{
	return lgd_volume_stream_handle(invocation, iface, fd_list, source, options, TRUE);
}
