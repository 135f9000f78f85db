#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <libvirt/virterror.h>
#include <poll.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lgd-error.h"
#include "lgd-fd-io.h"
#include "lgd-libvirt.h"
#include "lgd-volume-local.h"
#include "lgd-xml.h"

/* How much one system call moves: large enough that the calls cost
 * nothing next to the copy, small enough that a cancel is seen at once. */
#define LGD_LOCAL_CHUNK (8 * 1024 * 1024)
/* The buffer of a read and write copy (a socket, a file open for
 * appending, a file system that takes neither of the others). */
#define LGD_LOCAL_BUFFER (1024 * 1024)

/* ---- whether the volume's file may be copied ---------------------------- */

/* A connection to the libvirt daemon of this host: no host in the URI and
 * no transport but the local socket's (qemu:///system, qemu+unix:///session). */
gboolean
lgd_volume_local_uri_is_local(const gchar *uri)
{
	g_autoptr(GUri) parsed = uri != NULL ? g_uri_parse(uri, G_URI_FLAGS_NONE, NULL) : NULL;
	const gchar *scheme;
	const gchar *plus;
	const gchar *host;

	if (parsed == NULL)
		return FALSE;
	scheme = g_uri_get_scheme(parsed);
	host = g_uri_get_host(parsed);
	if (host != NULL && host[0] != '\0')
		return FALSE;
	plus = strchr(scheme, '+');
	return plus == NULL || g_ascii_strcasecmp(plus + 1, "unix") == 0;
}

/* The pool types whose volumes libvirt itself reads and writes as a local
 * file or block device (virStorageBackendVolDownloadLocal). */
static gboolean
lgd_volume_local_pool_type_ok(const gchar *type)
{
	static const gchar *const types[] = {"dir",   "fs",   "netfs", "logical",  "disk",
					     "iscsi", "scsi", "mpath", "vstorage", NULL};

	return type != NULL && g_strv_contains(types, type);
}

/* "1796585535.424456134" as libvirt writes a timestamp. */
static gboolean
lgd_volume_local_parse_time(const gchar *text, gint64 *sec, glong *nsec)
{
	gchar *end = NULL;
	guint64 s;
	gsize digits;

	if (text == NULL || !g_ascii_isdigit(text[0]))
		return FALSE;
	s = g_ascii_strtoull(text, &end, 10);
	if (s > G_MAXINT64)
		return FALSE;
	*sec = (gint64)s;
	*nsec = 0;
	if (*end == '\0')
		return TRUE;
	if (*end != '.')
		return FALSE;
	end++;
	for (digits = 0; digits < 9 && g_ascii_isdigit(end[digits]); digits++)
		*nsec = *nsec * 10 + (end[digits] - '0');
	if (digits == 0 || end[digits] != '\0')
		return FALSE;
	for (; digits < 9; digits++)
		*nsec *= 10;
	return TRUE;
}

static gchar *
lgd_volume_local_child_text(xmlNode *node, const gchar *name)
{
	xmlNode *child = node != NULL ? lgd_xml_child(node, name) : NULL;
	xmlChar *content;
	gchar *text;

	if (child == NULL)
		return NULL;
	content = xmlNodeGetContent(child);
	text = g_strdup((const gchar *)content);
	xmlFree(content);
	return text;
}

/* Whether the file open as @fd (@st) is the volume libvirt describes in
 * @xml, which libvirt read from the file system after @fd was opened: the
 * same path, a file or block volume that is not a ploop directory, and the
 * same change time to the nanosecond. A file put in the volume's place, a
 * file of another mount namespace, or one changed meanwhile fails. */
gboolean
lgd_volume_local_is_volume(const gchar *xml, const gchar *path, const struct stat *st, gchar **why)
{
	g_autoptr(xmlDoc) doc = lgd_xml_read(xml);
	xmlNode *root = doc != NULL ? xmlDocGetRootElement(doc) : NULL;
	xmlNode *target = root != NULL ? lgd_xml_child(root, "target") : NULL;
	xmlNode *format = target != NULL ? lgd_xml_child(target, "format") : NULL;
	g_autofree gchar *type = root != NULL ? lgd_xml_prop(root, "type") : NULL;
	g_autofree gchar *format_type = format != NULL ? lgd_xml_prop(format, "type") : NULL;
	g_autofree gchar *target_path = lgd_volume_local_child_text(target, "path");
	g_autofree gchar *ctime = NULL;
	gint64 sec;
	glong nsec;

	if (target == NULL) {
		*why = g_strdup("libvirt's description of the volume has no target");
		return FALSE;
	}
	if (g_strcmp0(type, "file") != 0 && g_strcmp0(type, "block") != 0) {
		*why = g_strdup_printf("the volume is of type '%s', not a file or block device",
				       type != NULL ? type : "");
		return FALSE;
	}
	if (g_strcmp0(format_type, "ploop") == 0) {
		*why = g_strdup("a ploop volume's bytes are not its file's");
		return FALSE;
	}
	if (g_strcmp0(target_path, path) != 0) {
		*why = g_strdup("libvirt describes the volume with another path");
		return FALSE;
	}
	ctime = lgd_volume_local_child_text(lgd_xml_child(target, "timestamps"), "ctime");
	if (!lgd_volume_local_parse_time(ctime, &sec, &nsec)) {
		*why = g_strdup("libvirt gives no change time to check the file against");
		return FALSE;
	}
	if (sec != (gint64)st->st_ctim.tv_sec || nsec != st->st_ctim.tv_nsec) {
		*why = g_strdup("the file opened is not the one libvirt describes (its change "
				"time differs: another file, or changed meanwhile)");
		return FALSE;
	}
	return TRUE;
}

static gchar *
lgd_volume_local_pool_type(virStorageVolPtr vol)
{
	g_autoptr(virStoragePool) pool = virStoragePoolLookupByVolume(vol);
	g_autofree gchar *xml = pool != NULL ? virStoragePoolGetXMLDesc(pool, 0) : NULL;
	g_autoptr(xmlDoc) doc = xml != NULL ? lgd_xml_read(xml) : NULL;
	xmlNode *root = doc != NULL ? xmlDocGetRootElement(doc) : NULL;

	virResetLastError();
	return root != NULL ? lgd_xml_prop(root, "type") : NULL;
}

/*
 * The volume's own file or block device, opened for reading (@upload:
 * writing) when the service may copy it itself; -1 with the reason in
 * @why_not otherwise, and the transfer goes through libvirt's stream.
 *
 * Only where libvirt's stream would copy the same bytes of the same file:
 * a local connection (the daemon on this host, whose paths are ours too),
 * a pool of local files or block devices, a file or block volume. The
 * file is opened without following a final symbolic link (a link that a
 * pool's directory may hold to a host file is never followed here), not
 * blocking on a FIFO, and checked on the opened descriptor: a regular
 * file or block device whose size is the volume's @stored size, and whose
 * change time is the one libvirt reports when asked after the open, so
 * that it is the very file libvirt describes, not one swapped in or seen
 * through another mount namespace. Anything that fails, permissions too
 * (a sandbox that keeps the pool read-only), leaves the stream.
 */
gint
lgd_volume_local_open(virStorageVolPtr vol,
		      const gchar *uri,
		      const gchar *path,
		      guint64 stored,
		      gboolean upload,
		      gchar **why_not)
{
	g_autofree gchar *pool_type = NULL;
	g_autofree gchar *xml = NULL;
	struct stat st;
	off_t size;
	gint fd;

	if (!lgd_volume_local_uri_is_local(uri)) {
		*why_not = g_strdup("the connection is not to this host's libvirt daemon");
		return -1;
	}
	pool_type = lgd_volume_local_pool_type(vol);
	if (!lgd_volume_local_pool_type_ok(pool_type)) {
		*why_not = g_strdup_printf("volumes of a pool of type '%s' are not local files",
					   pool_type != NULL ? pool_type : "(unknown)");
		return -1;
	}
	if (path == NULL || path[0] != '/') {
		*why_not = g_strdup("the volume's path is not a local absolute path");
		return -1;
	}
	fd = open(path,
		  (upload ? O_WRONLY : O_RDONLY) | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		*why_not = errno == ELOOP ? g_strdup("the volume's path is a symbolic link")
					  : g_strdup_printf("cannot open the volume's file: %s",
							    g_strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))) {
		*why_not = g_strdup("the volume's path is not a regular file or block device");
		close(fd);
		return -1;
	}
	size = S_ISREG(st.st_mode) ? st.st_size : lseek(fd, 0, SEEK_END);
	if (size < 0 || (guint64)size != stored) {
		*why_not = g_strdup_printf("the file holds %" G_GINT64_FORMAT
					   " bytes, libvirt says %" G_GUINT64_FORMAT,
					   (gint64)size, stored);
		close(fd);
		return -1;
	}
	/* asked after the open: libvirt looks at the path again for it */
	xml = virStorageVolGetXMLDesc(vol, 0);
	if (xml == NULL) {
		*why_not = g_strdup_printf("cannot read the volume's description: %s",
					   virGetLastErrorMessage());
		virResetLastError();
		close(fd);
		return -1;
	}
	if (!lgd_volume_local_is_volume(xml, path, &st, why_not)) {
		close(fd);
		return -1;
	}
	/* opened so as not to block on a FIFO; the copy itself is allowed to
	 * wait for the disk, so the flag goes: a copy must never take EAGAIN
	 * from the volume's side for bytes not yet in the page cache */
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0) {
		*why_not = g_strdup_printf("cannot make the volume's file blocking: %s",
					   g_strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* ---- the copy ----------------------------------------------------------- */

typedef enum {
	LGD_COPY_RANGE,	   /* copy_file_range: file to file */
	LGD_COPY_SENDFILE, /* file or block device to a file or block device */
	LGD_COPY_SPLICE,   /* a pipe on one side */
	LGD_COPY_RW,	   /* read and write through a buffer */
} LgdCopyWay;

/* Moves bytes from @in to @out, each at its own file offset. */
typedef struct {
	gint in;
	gint out;
	gboolean in_client;  /* the caller's pipe or socket: every wait bounded */
	gboolean out_client; /* the same for a sink */
	LgdCopyWay way;
	LgdJob *job;
	gint cancel_fd;
	gboolean in_failed;  /* the error was the source's */
	gboolean out_failed; /* the error was the sink's */
	gchar *buf;
} LgdCopy;

static gboolean
lgd_copy_cancelled(LgdCopy *c)
{
	return c->job != NULL && lgd_job_is_cancelled(c->job);
}

/* Whether a way of copying does not apply to these descriptors (or this
 * kernel): the next one is tried, nothing having moved. */
static gboolean
lgd_copy_unsupported(gint errnum)
{
	return errnum == EXDEV || errnum == EINVAL || errnum == EOPNOTSUPP || errnum == ENOSYS ||
	       errnum == EBADF;
}

/* Up to @len bytes through the buffer. */
static gssize
lgd_copy_rw(LgdCopy *c, gsize len)
{
	gssize n;

	if (c->buf == NULL)
		c->buf = g_malloc(LGD_LOCAL_BUFFER);
	len = MIN(len, LGD_LOCAL_BUFFER);
	if (c->in_client)
		n = lgd_fd_io_read_cancellable(c->in, c->buf, len, TRUE, c->cancel_fd);
	else
		do
			n = read(c->in, c->buf, len);
		while (n < 0 && errno == EINTR);
	if (n < 0)
		c->in_failed = TRUE;
	if (n <= 0)
		return n;
	if (!lgd_fd_io_write_all_cancellable(c->out, c->buf, (gsize)n, NULL, c->out_client,
					     c->cancel_fd)) {
		c->out_failed = TRUE;
		return -1;
	}
	return n;
}

/* Up to @len bytes: how many moved, 0 at the end of @in, -1 with errno. */
static gssize
lgd_copy_once(LgdCopy *c, gsize len)
{
	gssize n;

	for (;;) {
		if (lgd_copy_cancelled(c)) {
			errno = ECANCELED;
			return -1;
		}
		switch (c->way) {
		case LGD_COPY_RANGE:
			n = copy_file_range(c->in, NULL, c->out, NULL, len, 0);
			if (n < 0 && lgd_copy_unsupported(errno)) {
				c->way = LGD_COPY_SENDFILE;
				continue;
			}
			break;
		case LGD_COPY_SENDFILE:
			n = sendfile(c->out, c->in, NULL, len);
			if (n < 0 && lgd_copy_unsupported(errno)) {
				c->way = LGD_COPY_RW;
				continue;
			}
			break;
		case LGD_COPY_SPLICE:
			if (c->in_client && !lgd_fd_io_wait(c->in, POLLIN, TRUE, c->cancel_fd)) {
				c->in_failed = errno != ECANCELED;
				return -1;
			}
			if (c->out_client && !lgd_fd_io_wait(c->out, POLLOUT, TRUE, c->cancel_fd)) {
				c->out_failed = errno != ECANCELED;
				return -1;
			}
			n = splice(c->in, NULL, c->out, NULL, len,
				   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (n < 0 && lgd_copy_unsupported(errno)) {
				c->way = LGD_COPY_RW;
				continue;
			}
			if (n < 0 && c->out_client && (errno == EPIPE || errno == ECONNRESET))
				c->out_failed = TRUE;
			break;
		default:
			n = lgd_copy_rw(c, len);
			break;
		}
		if (n < 0 && errno == EINTR)
			continue;
		return n;
	}
}

/* Moves @count bytes, or fewer when @in ends first: FALSE with errno on
 * failure. @moved gets how many moved, which the job counts as they go. */
static gboolean
lgd_copy_run(LgdCopy *c, guint64 count, guint64 *moved)
{
	*moved = 0;
	while (*moved < count) {
		gssize n = lgd_copy_once(c, (gsize)MIN(count - *moved, LGD_LOCAL_CHUNK));

		if (n < 0)
			return FALSE;
		if (n == 0)
			break;
		*moved += (guint64)n;
		if (c->job != NULL)
			lgd_job_add_done(c->job, (guint64)n);
	}
	return TRUE;
}

static LgdCopyWay
lgd_copy_way(gint in_mode, gint out_mode, gint out_flags)
{
	if (S_ISFIFO(in_mode) || S_ISFIFO(out_mode))
		return LGD_COPY_SPLICE;
	if (S_ISSOCK(in_mode) || S_ISSOCK(out_mode) || (out_flags & O_APPEND))
		return LGD_COPY_RW;
	return LGD_COPY_RANGE;
}

static gboolean
lgd_local_seek(gint fd, off_t offset, const gchar *path, GError **error)
{
	if (lseek(fd, offset, SEEK_SET) >= 0)
		return TRUE;
	g_set_error(error, LGD_ERROR, lgd_error_code_from_errno(errno),
		    "Cannot seek in volume %s: %s", path, g_strerror(errno));
	return FALSE;
}

/* Where the section of @fd at @pos ends (at most @limit bytes on), and
 * whether it is data: SEEK_DATA and SEEK_HOLE, as libvirt looks for holes. */
static gboolean
lgd_local_section(gint fd, off_t pos, guint64 limit, gboolean *in_data, guint64 *length)
{
	off_t data = lseek(fd, pos, SEEK_DATA);
	off_t hole;

	*in_data = TRUE;
	*length = limit;
	if (data < 0 && errno == ENXIO) {
		*in_data = FALSE; /* a hole up to the end of the file */
		return TRUE;
	}
	if (data < 0 && (errno == EINVAL || errno == EOPNOTSUPP))
		return TRUE; /* no hole support: all data */
	if (data < 0)
		return FALSE;
	if (data > pos) {
		*in_data = FALSE;
		*length = MIN(limit, (guint64)(data - pos));
		return TRUE;
	}
	hole = lseek(fd, pos, SEEK_HOLE);
	if (hole > pos)
		*length = MIN(limit, (guint64)(hole - pos));
	return TRUE;
}

static void
lgd_copy_download_error(LgdCopy *c, LgdSink *sink, gint errnum, const gchar *path, GError **error)
{
	if (c->out_failed || errnum == ECANCELED || errnum == ETIMEDOUT || errnum == EPIPE ||
	    errnum == ECONNRESET)
		lgd_volume_sink_set_error(errnum, sink->done, error);
	else
		g_set_error(error, LGD_ERROR, lgd_error_code_from_errno(errnum),
			    "Cannot copy volume %s to the sink after %" G_GUINT64_FORMAT
			    " bytes: %s",
			    path, sink->done, g_strerror(errnum));
}

/*
 * @count bytes of the volume open as @vol_fd from @offset into @sink at its
 * position, as the libvirt stream would write them: all of them, holes as
 * zeros, or with @sparse (a regular file, not appending) the volume's holes
 * as holes (punched where the sink had bytes, and the sink extended to its
 * end). Fewer bytes when the volume shrank: the caller compares @sink's
 * done with @count.
 */
gboolean
lgd_volume_local_download(gint vol_fd,
			  LgdSink *sink,
			  gint sink_mode,
			  gint sink_flags,
			  guint64 offset,
			  guint64 count,
			  gboolean sparse,
			  const gchar *path,
			  GError **error)
{
	LgdCopy c = {.in = vol_fd,
		     .out = sink->fd,
		     .out_client = !S_ISREG(sink_mode),
		     .way = lgd_copy_way(S_IFREG, sink_mode, sink_flags),
		     .job = sink->job,
		     .cancel_fd = sink->cancel_fd};
	off_t pos = (off_t)offset;
	guint64 left = count;
	gboolean ok = TRUE;

	while (ok && left > 0) {
		gboolean in_data = TRUE;
		guint64 len = left;
		guint64 moved = 0;

		if (sparse && !lgd_local_section(vol_fd, pos, left, &in_data, &len)) {
			g_set_error(error, LGD_ERROR, lgd_error_code_from_errno(errno),
				    "Cannot look for data in volume %s: %s", path,
				    g_strerror(errno));
			ok = FALSE;
			break;
		}
		if (!in_data) {
			if (!lgd_sink_make_hole(sink, (off_t)len)) {
				g_propagate_error(error, g_steal_pointer(&sink->error));
				ok = FALSE;
				break;
			}
			pos += (off_t)len;
			left -= len;
			continue;
		}
		if (!lgd_local_seek(vol_fd, pos, path, error)) {
			ok = FALSE;
			break;
		}
		ok = lgd_copy_run(&c, len, &moved);
		sink->done += moved;
		sink->pos += (off_t)moved;
		sink->size = MAX(sink->size, sink->pos);
		if (!ok)
			lgd_copy_download_error(&c, sink, errno, path, error);
		if (moved < len)
			break; /* the volume ended: the caller says so */
		pos += (off_t)moved;
		left -= moved;
	}
	g_free(c.buf);
	return ok;
}

/* Zeros over [@offset, +@len) of the volume, where it cannot punch. */
static gboolean
lgd_local_write_zeros(gint vol_fd, off_t offset, guint64 len)
{
	static const gchar zeros[64 * 1024];

	while (len > 0) {
		gssize n = pwrite(vol_fd, zeros, (gsize)MIN(len, sizeof(zeros)), offset);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return FALSE;
		offset += n;
		len -= (guint64)n;
	}
	return TRUE;
}

static void
lgd_copy_upload_error(LgdCopy *c, LgdSource *source, gint errnum, const gchar *path, GError **error)
{
	if (c->in_failed || errnum == ECANCELED || errnum == ETIMEDOUT || errnum == ECONNRESET)
		lgd_volume_source_set_error(errnum, error);
	else
		g_set_error(error, LGD_ERROR, lgd_error_code_from_errno(errnum),
			    "Cannot copy the source to volume %s after %" G_GUINT64_FORMAT
			    " bytes: %s",
			    path, source->count - source->remaining, g_strerror(errnum));
}

/*
 * @source's bytes from its position into the volume open as @vol_fd at
 * @offset, as the libvirt stream would write them (lgd-volume-stream.c
 * decided @source's count and checked the range): exactly @source->count
 * bytes, or (fit_only) up to the source's end but no more than the room.
 * With @sparse (a regular file reaching the end of the volume) the
 * source's holes become holes in the volume: punched, or zeros written
 * where the volume cannot punch.
 */
gboolean
lgd_volume_local_upload(gint vol_fd,
			LgdSource *source,
			gint source_mode,
			guint64 offset,
			gboolean sparse,
			const gchar *path,
			GError **error)
{
	LgdCopy c = {.in = source->fd,
		     .out = vol_fd,
		     .in_client = !S_ISREG(source_mode),
		     .way = lgd_copy_way(source_mode, S_IFREG, 0),
		     .job = source->job,
		     .cancel_fd = source->cancel_fd};
	off_t pos = (off_t)offset;
	gboolean ok = TRUE;

	while (ok && source->remaining > 0) {
		gboolean in_data = TRUE;
		guint64 len = source->remaining;
		guint64 moved = 0;

		if (sparse && !lgd_local_section(source->fd, source->pos, len, &in_data, &len)) {
			g_set_error(error, LGD_ERROR, lgd_error_code_from_errno(errno),
				    "Cannot look for data in the source: %s", g_strerror(errno));
			ok = FALSE;
			break;
		}
		if (!in_data) {
			if (fallocate(vol_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, pos,
				      (off_t)len) < 0 &&
			    (errno != EOPNOTSUPP || !lgd_local_write_zeros(vol_fd, pos, len))) {
				g_set_error(error, LGD_ERROR, lgd_error_code_from_errno(errno),
					    "Cannot make a hole in volume %s: %s", path,
					    g_strerror(errno));
				ok = FALSE;
				break;
			}
			if (c.job != NULL)
				lgd_job_add_done(c.job, len);
			source->pos += (off_t)len;
			source->remaining -= len;
			pos += (off_t)len;
			continue;
		}
		if ((sparse && lseek(source->fd, source->pos, SEEK_SET) < 0)) {
			lgd_volume_source_set_error(errno, error);
			ok = FALSE;
			break;
		}
		if (!lgd_local_seek(vol_fd, pos, path, error)) {
			ok = FALSE;
			break;
		}
		ok = lgd_copy_run(&c, len, &moved);
		source->remaining -= moved;
		source->pos += (off_t)moved;
		pos += (off_t)moved;
		if (!ok) {
			lgd_copy_upload_error(&c, source, errno, path, error);
			break;
		}
		if (moved < len)
			break; /* the source ended */
	}
	/* the source's offset where the stream would leave it: after the
	 * bytes read */
	if (sparse && lseek(source->fd, source->pos, SEEK_SET) < 0 && ok) {
		lgd_volume_source_set_error(errno, error);
		ok = FALSE;
	}
	g_free(c.buf);
	if (!ok)
		return FALSE;
	if (source->remaining > 0 && source->exact) {
		lgd_source_ended_early(source, error);
		return FALSE;
	}
	if (source->remaining == 0 && source->fit_only && lgd_source_has_more(source)) {
		g_propagate_error(error, g_steal_pointer(&source->error));
		return FALSE;
	}
	return TRUE;
}
