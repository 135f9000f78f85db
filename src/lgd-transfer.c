#include "config.h"

#include <sys/stat.h>

#include "lgd-error.h"
#include "lgd-pump.h"
#include "lgd-replace.h"
#include "lgd-transfer.h"

/* The client's fd belongs to the pump from here on. */
static gint
lgd_transfer_steal_fd(LgdCall *call)
{
	return g_steal_fd(&call->fd);
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
	return TRUE;
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

	if (g == NULL || !lgd_files_check_not_link(session, g, call->path, error) ||
	    !lgd_files_check_type(session, g, call->path, S_IFREG, error))
		return NULL;
	pump = lgd_pump_new_sink(lgd_transfer_steal_fd(call), error);
	if (pump == NULL)
		return NULL;
	ok = guestfs_download(g, call->path, lgd_pump_get_path(pump)) == 0;
	if (!lgd_transfer_finish(session, pump, ok, call->path, error))
		return NULL;
	return g_variant_new("()");
}

typedef struct {
	LgdCall *call;
	LgdPump *pump;
} LgdUploadFill;

static gboolean
lgd_transfer_fill_from_pump(
    LgdSession *session, guestfs_h *g, const gchar *tmp, gpointer user_data, GError **error)
{
	LgdUploadFill *fill = user_data;
	gboolean ok = guestfs_upload(g, lgd_pump_get_path(fill->pump), tmp) == 0;

	/* a short source fails here, before the rename: the old file stays */
	return lgd_transfer_finish(session, fill->pump, ok, fill->call->path, error);
}

GVariant *
lgd_transfer_upload(LgdSession *session, LgdCall *call, GError **error)
{
	guestfs_h *g;
	g_autoptr(LgdPump) pump = NULL;
	LgdUploadFill fill = {call, NULL};
	LgdReplaceAttrs attrs = lgd_files_replace_attrs(call, TRUE);

	g = lgd_files_prepare(session, call, TRUE, error);
	if (g == NULL)
		return NULL;
	pump = lgd_pump_new_source(lgd_transfer_steal_fd(call),
				   lgd_args_get_u64(call->options, "size", LGD_PUMP_SIZE_UNKNOWN),
				   error);
	if (pump == NULL)
		return NULL;
	fill.pump = pump;
	if (!lgd_replace_file(session, g, call->path, &attrs, lgd_transfer_fill_from_pump, &fill,
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
	pump = lgd_pump_new_sink(lgd_transfer_steal_fd(call), error);
	if (pump == NULL)
		return NULL;
	ok = guestfs_tar_out_opts_argv(g, call->path, lgd_pump_get_path(pump), &args) == 0;
	if (!lgd_transfer_finish(session, pump, ok, call->path, error))
		return NULL;
	return g_variant_new("()");
}

GVariant *
lgd_transfer_tar_in(LgdSession *session, LgdCall *call, GError **error)
{
	guestfs_h *g = lgd_files_prepare(session, call, TRUE, error);
	const gchar *compress = NULL;
	g_autoptr(LgdPump) pump = NULL;
	struct guestfs_tar_in_opts_argv args = {0};
	gboolean ok;

	if (g == NULL || !lgd_transfer_compress(call->options, &compress, error) ||
	    !lgd_files_check_type(session, g, call->path, S_IFDIR, error) ||
	    !lgd_files_begin_write(session, call, g, error))
		return NULL;
	args.bitmask = GUESTFS_TAR_IN_OPTS_XATTRS_BITMASK;
	args.xattrs = 1;
	if (compress != NULL) {
		args.bitmask |= GUESTFS_TAR_IN_OPTS_COMPRESS_BITMASK;
		args.compress = compress;
	}
	pump = lgd_pump_new_source(lgd_transfer_steal_fd(call), LGD_PUMP_SIZE_UNKNOWN, error);
	if (pump == NULL)
		return NULL;
	ok = guestfs_tar_in_opts_argv(g, lgd_pump_get_path(pump), call->path, &args) == 0;
	if (!lgd_transfer_finish(session, pump, ok, call->path, error))
		return NULL;
	return lgd_files_finish_write(session, call, g, error);
}
