#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gunixinputstream.h>
#include <gio/gunixoutputstream.h>
#include <glib/gstdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lgd-error.h"
#include "lgd-pump.h"
#include "lgd-replace.h"
#include "lgd-tar-check.h"
#include "lgd-transfer.h"

/* The client's fd belongs to the pump from here on. */
static gint
lgd_transfer_steal_fd(LgdCall *call)
{
	return g_steal_fd(&call->fd);
}

/* What the call's job moves in all, when known (@size < 0: not). */
static void
lgd_transfer_set_total(LgdCall *call, gint64 size)
{
	if (call->job != NULL && size > 0)
		lgd_job_set_total(call->job, (guint64)size);
}

/* An Upload's size: as announced, or the caller's regular file's rest. */
static gint64
lgd_transfer_source_size(LgdCall *call)
{
	guint64 size = lgd_args_get_u64(call->options, "size", LGD_PUMP_SIZE_UNKNOWN);
	struct stat st;
	off_t pos;

	if (size != LGD_PUMP_SIZE_UNKNOWN)
		return size > G_MAXINT64 ? -1 : (gint64)size;
	if (fstat(call->fd, &st) < 0 || !S_ISREG(st.st_mode))
		return -1;
	pos = lseek(call->fd, 0, SEEK_CUR);
	return pos >= 0 && st.st_size > pos ? st.st_size - pos : -1;
}

/* Ends @pump after libguestfs's part (@ok) and merges both outcomes: a
 * client that went away explains a libguestfs failure better than the
 * broken pipe libguestfs saw. */
static gboolean
lgd_transfer_finish(
    LgdSession *session, LgdPump *pump, gboolean ok, const gchar *what, GError **error)
{
	g_autoptr(GError) guestfs_error = NULL;
	g_autoptr(GError) pump_error = NULL;
	gboolean pump_ok;

	if (!ok)
		lgd_session_set_error_from_guestfs(session, &guestfs_error, what);
	pump_ok = lgd_pump_finish(pump, &pump_error);
	if (!pump_ok) {
		g_propagate_error(error, g_steal_pointer(&pump_error));
		return FALSE;
	}
	if (!ok) {
		g_propagate_error(error, g_steal_pointer(&guestfs_error));
		return FALSE;
	}
	return lgd_pump_check_delivered(pump, error);
}

/* The 'compress' option as libguestfs takes it: NULL for none. */
static gboolean
lgd_transfer_compress(GVariant *options, const gchar **compress, GError **error)
{
	*compress = lgd_args_get_string(options, "compress", "none");
	if (g_str_equal(*compress, "none")) {
		*compress = NULL;
		return TRUE;
	}
	if (g_str_equal(*compress, "gzip") || g_str_equal(*compress, "xz"))
		return TRUE;
	g_set_error(error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT,
		    "Unknown compression '%s' (known: 'none', 'gzip', 'xz')", *compress);
	return FALSE;
}

/* For the handler: a bad 'compress' option is refused before polkit. */
gboolean
lgd_transfer_check_compress(GVariant *options, GError **error)
{
	const gchar *compress;

	return lgd_transfer_compress(options, &compress, error);
}

GVariant *
lgd_transfer_download(LgdSession *session, LgdCall *call, GError **error)
{
	guestfs_h *g = lgd_files_prepare(session, call, FALSE, error);
	g_autoptr(LgdPump) pump = NULL;
	gboolean ok;

	if (g == NULL || !lgd_files_check_type(session, g, call->path, S_IFREG, error))
		return NULL;
	lgd_transfer_set_total(call, guestfs_filesize(g, call->path));
	pump = lgd_pump_new_sink(lgd_transfer_steal_fd(call), call->job, error);
	if (pump == NULL)
		return NULL;
	ok = guestfs_download(g, call->path, lgd_pump_get_path(pump)) == 0;
	if (!lgd_transfer_finish(session, pump, ok, call->path, error))
		return NULL;
	return g_variant_new("()");
}

/* The pump starts only here, once the target is known to be fine: an
 * Upload refused earlier never waits on its client's fd. */
static gboolean
lgd_transfer_fill_from_pump(
    LgdSession *session, guestfs_h *g, const gchar *tmp, gpointer user_data, GError **error)
{
	LgdCall *call = user_data;
	g_autoptr(LgdPump) pump = NULL;
	gboolean ok;
	gint64 size;

	pump = lgd_pump_new_source(lgd_transfer_steal_fd(call),
				   lgd_args_get_u64(call->options, "size", LGD_PUMP_SIZE_UNKNOWN),
				   call->job, error);
	if (pump == NULL)
		return FALSE;
	ok = guestfs_upload(g, lgd_pump_get_path(pump), tmp) == 0;
	/* a short source fails here, before the rename: the old file stays */
	if (!lgd_transfer_finish(session, pump, ok, call->path, error))
		return FALSE;
	/* and so does a file that did not get every byte that came */
	size = guestfs_filesize(g, tmp);
	if (size < 0) {
		lgd_session_set_error_from_guestfs(session, error, call->path);
		return FALSE;
	}
	if ((guint64)size != lgd_pump_get_bytes(pump)) {
		g_set_error(error, LGD_ERROR, LGD_ERROR_FAILED,
			    "%s: the appliance wrote %" G_GINT64_FORMAT
			    " bytes of the %" G_GUINT64_FORMAT " received; the file is unchanged",
			    call->path, size, lgd_pump_get_bytes(pump));
		return FALSE;
	}
	return TRUE;
}

GVariant *
lgd_transfer_upload(LgdSession *session, LgdCall *call, GError **error)
{
	guestfs_h *g;
	LgdReplaceAttrs attrs = lgd_files_replace_attrs(call, TRUE);

	g = lgd_files_prepare(session, call, TRUE, error);
	if (g == NULL)
		return NULL;
	lgd_transfer_set_total(call, lgd_transfer_source_size(call));
	if (!lgd_replace_file(session, g, call->path, &attrs, lgd_transfer_fill_from_pump, call,
			      error))
		return NULL;
	return lgd_files_finish_write(session, call, g, error);
}

GVariant *
lgd_transfer_tar_out(LgdSession *session, LgdCall *call, GError **error)
{
	guestfs_h *g = lgd_files_prepare(session, call, FALSE, error);
	const gchar *compress = NULL;
	g_autofree const gchar **excludes = NULL;
	g_autoptr(LgdPump) pump = NULL;
	struct guestfs_tar_out_opts_argv args = {0};
	gboolean ok;

	if (g == NULL || !lgd_transfer_compress(call->options, &compress, error) ||
	    !lgd_files_check_type(session, g, call->path, S_IFDIR, error))
		return NULL;
	/* numeric owners: the guest's users, not the appliance's, own files */
	args.bitmask =
	    GUESTFS_TAR_OUT_OPTS_NUMERICOWNER_BITMASK | GUESTFS_TAR_OUT_OPTS_XATTRS_BITMASK;
	args.numericowner = 1;
	args.xattrs = 1;
	if (compress != NULL) {
		args.bitmask |= GUESTFS_TAR_OUT_OPTS_COMPRESS_BITMASK;
		args.compress = compress;
	}
	if (g_variant_lookup(call->options, "excludes", "^a&s", &excludes)) {
		args.bitmask |= GUESTFS_TAR_OUT_OPTS_EXCLUDES_BITMASK;
		args.excludes = (char *const *)excludes;
	}
	pump = lgd_pump_new_sink(lgd_transfer_steal_fd(call), call->job, error);
	if (pump == NULL)
		return NULL;
	ok = guestfs_tar_out_opts_argv(g, call->path, lgd_pump_get_path(pump), &args) == 0;
	if (!lgd_transfer_finish(session, pump, ok, call->path, error))
		return NULL;
	return g_variant_new("()");
}

/* The caller's archive, uncompressed, as lgd_tar_check reads it: zlib
 * for gzip; for xz, xz itself in a process of its own. */
static GInputStream *
lgd_transfer_tar_source(gint fd, const gchar *compress, GSubprocess **xz, GError **error)
{
	g_autoptr(GSubprocessLauncher) launcher = NULL;
	g_autoptr(GInputStream) raw = NULL;
	g_autoptr(GZlibDecompressor) gunzip = NULL;

	if (compress != NULL && g_str_equal(compress, "xz")) {
		launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE);
		g_subprocess_launcher_take_stdin_fd(launcher, fd);
		*xz = g_subprocess_launcher_spawn(launcher, error, "xz", "-dc", NULL);
		return *xz != NULL ? g_object_ref(g_subprocess_get_stdout_pipe(*xz)) : NULL;
	}
	raw = g_unix_input_stream_new(fd, TRUE);
	if (compress == NULL)
		return g_steal_pointer(&raw);
	gunzip = g_zlib_decompressor_new(G_ZLIB_COMPRESSOR_FORMAT_GZIP);
	return g_converter_input_stream_new(raw, G_CONVERTER(gunzip));
}

/* What the archive writes to or through must not be a symbolic link
 * already on the disk: tar would follow it out of the target. Paths come
 * parents first; below a missing directory everything is new. */
static gboolean
lgd_transfer_tar_check_disk(
    LgdSession *session, guestfs_h *g, const gchar *target, GPtrArray *paths, GError **error)
{
	g_autoptr(GHashTable) missing =
	    g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);

	for (guint i = 0; i < paths->len; i++) {
		const gchar *rel = g_ptr_array_index(paths, i);
		g_autofree gchar *parent = g_path_get_dirname(rel);
		g_autofree gchar *path = g_build_filename(target, rel, NULL);
		struct guestfs_statns *st;
		gboolean link;

		if (g_hash_table_contains(missing, parent)) {
			g_hash_table_add(missing, g_strdup(rel));
			continue;
		}
		st = guestfs_lstatns(g, path);
		if (st == NULL) {
			if (guestfs_last_errno(g) != ENOENT) {
				lgd_session_set_error_from_guestfs(session, error, path);
				return FALSE;
			}
			g_hash_table_add(missing, g_strdup(rel));
			continue;
		}
		link = (st->st_mode & S_IFMT) == S_IFLNK;
		guestfs_free_statns(st);
		if (link) {
			g_set_error(
			    error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT,
			    "Archive entry %s would be written through the symbolic link %s "
			    "on the disk; nothing was written",
			    rel, path);
			return FALSE;
		}
	}
	return TRUE;
}

/* The archive is read whole and checked before anything is written: into
 * a spool file, which the appliance then unpacks. */
GVariant *
lgd_transfer_tar_in(LgdSession *session, LgdCall *call, GError **error)
{
	guestfs_h *g = lgd_files_prepare(session, call, TRUE, error);
	gboolean preserve = lgd_args_get_bool(call->options, "preserve-special", FALSE);
	LgdTarPolicy policy = {.preserve_special = preserve};
	const gchar *compress = NULL;
	g_autoptr(LgdPump) pump = NULL;
	g_autoptr(GInputStream) in = NULL;
	g_autoptr(GOutputStream) out = NULL;
	g_autoptr(GSubprocess) xz = NULL;
	g_autofree gchar *spool = NULL;
	LgdTarReport report = {0};
	struct guestfs_tar_in_opts_argv args = {0};
	gint spool_fd;
	gint source_fd;
	gboolean ok;

	if (g == NULL || !lgd_transfer_compress(call->options, &compress, error) ||
	    !lgd_files_check_type(session, g, call->path, S_IFDIR, error) ||
	    /* keeping setuid files, capabilities and device nodes can
	     * change any file of the guest in effect */
	    (preserve && !lgd_call_authorize_path(call, "/", NULL, error)))
		return NULL;
	policy.target = call->path;
	pump = lgd_pump_new_source(lgd_transfer_steal_fd(call), LGD_PUMP_SIZE_UNKNOWN, call->job,
				   error);
	if (pump == NULL)
		return NULL;
	source_fd = open(lgd_pump_get_path(pump), O_RDONLY | O_CLOEXEC);
	spool_fd = g_file_open_tmp("lgd-tar-in-XXXXXX", &spool, error);
	if (source_fd < 0 || spool_fd < 0) {
		if (source_fd < 0)
			g_set_error(error, LGD_ERROR, LGD_ERROR_FAILED,
				    "Cannot read the archive: %s", g_strerror(errno));
		else
			close(source_fd);
		if (spool_fd >= 0)
			close(spool_fd);
		lgd_pump_finish(pump, NULL);
		goto out;
	}
	out = g_unix_output_stream_new(spool_fd, TRUE);
	in = lgd_transfer_tar_source(source_fd, compress, &xz, error);
	ok = in != NULL && lgd_tar_check(in, out, &policy, &report, NULL, error);
	/* what follows the end marker (tar pads to whole records) is read
	 * and dropped, so that xz does not die writing it */
	while (ok && g_input_stream_skip(in, 1024 * 1024, NULL, NULL) > 0)
		;
	if (in != NULL)
		g_input_stream_close(in, NULL, NULL);
	if (xz != NULL && ok && !g_subprocess_wait_check(xz, NULL, error))
		ok = FALSE;
	if (!ok) {
		g_autoptr(GError) pump_error = NULL;

		/* an archive cut short by a client that stalled or went away
		 * is the client's failure, not a bad archive; the pipe the
		 * check stopped reading is not (lgd_pump_finish() reports the
		 * client's side only) */
		if (!lgd_pump_finish(pump, &pump_error)) {
			g_clear_error(error);
			g_propagate_error(error, g_steal_pointer(&pump_error));
		}
		goto out;
	}
	if (!lgd_transfer_finish(session, pump, TRUE, call->path, error) ||
	    !g_output_stream_close(out, NULL, error))
		goto out;
	if (report.dropped > 0 || report.cleared > 0)
		g_info("TarIn to %s: %u device nodes or FIFOs left out, %u setuid/setgid bits or "
		       "capabilities removed",
		       call->path, report.dropped, report.cleared);
	if (!lgd_transfer_tar_check_disk(session, g, call->path, report.paths, error) ||
	    !lgd_files_begin_write(session, call, g, error))
		goto out;
	args.bitmask = GUESTFS_TAR_IN_OPTS_XATTRS_BITMASK;
	args.xattrs = 1;
	if (guestfs_tar_in_opts_argv(g, spool, call->path, &args) < 0) {
		lgd_session_set_error_from_guestfs(session, error, call->path);
		goto out;
	}
	g_unlink(spool);
	lgd_tar_report_clear(&report);
	return lgd_files_finish_write(session, call, g, error);
out:
	if (spool != NULL)
		g_unlink(spool);
	lgd_tar_report_clear(&report);
	return NULL;
}
