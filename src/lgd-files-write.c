#include "config.h"

#include <string.h>
#include <sys/stat.h>

#include "lgd-call.h"
#include "lgd-error.h"
#include "lgd-files.h"
#include "lgd-mount.h"
#include "lgd-replace.h"

/* ---- write jobs (session thread) ---------------------------------------- */

/* Fails unless @path is free for a new file (no link there either). */
static gboolean
lgd_files_check_absent(guestfs_h *g, const gchar *path, GError **error)
{
	struct guestfs_statns *st = guestfs_lstatns(g, path);

	if (st == NULL)
		return TRUE;
	guestfs_free_statns(st);
	g_set_error(error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT, "%s exists", path);
	return FALSE;
}

/* The end of every write job: @rc is what the change returned. */
static GVariant *
lgd_files_write_done(LgdSession *session, LgdCall *call, guestfs_h *g, int rc, GError **error)
{
	if (rc < 0) {
		lgd_session_set_error_from_guestfs(session, error, call->path);
		return NULL;
	}
	return lgd_files_finish_write(session, call, g, error);
}

static gboolean
lgd_files_fill_from_bytes(
    LgdSession *session, guestfs_h *g, const gchar *tmp, gpointer user_data, GError **error)
{
	GVariant *data = user_data;
	gsize len;
	const gchar *bytes = g_variant_get_fixed_array(data, &len, 1);
	gsize done = 0;

	if (bytes == NULL)
		bytes = ""; /* an empty array has no data pointer */

	/* the first piece creates the file, the others append */
	do {
		gsize n = MIN(len - done, LGD_FILES_CHUNK);
		int rc = done == 0 ? guestfs_write(g, tmp, bytes, n)
				   : guestfs_write_append(g, tmp, bytes + done, n);
		if (rc < 0) {
			lgd_session_set_error_from_guestfs(session, error, tmp);
			return FALSE;
		}
		done += n;
	} while (done < len);
	return TRUE;
}

GVariant *
lgd_files_write_file_job(LgdSession *session, LgdCall *call, GError **error)
{
	guestfs_h *g = NULL;
	gsize len = g_variant_get_size(call->data);
	LgdReplaceAttrs attrs =
	    lgd_files_replace_attrs(call, lgd_args_get_bool(call->options, "create", TRUE));

	g = lgd_files_prepare(session, call, TRUE, error);
	if (g == NULL)
		return NULL;
	if (lgd_args_get_bool(call->options, "append", FALSE)) {
		if (!attrs.create && guestfs_exists(g, call->path) == 0) {
			g_set_error(error, LGD_ERROR, LGD_ERROR_NOT_FOUND,
				    "%s does not exist (and the 'create' option is false)",
				    call->path);
			return NULL;
		}
		if (guestfs_exists(g, call->path) > 0 &&
		    !lgd_files_check_type(session, g, call->path, S_IFREG, error))
			return NULL;
		if (!lgd_files_begin_write(session, call, g, error))
			return NULL;
		for (gsize done = 0; done < len; done += LGD_FILES_CHUNK) {
			const gchar *bytes = g_variant_get_data(call->data);
			if (guestfs_write_append(g, call->path, bytes + done,
						 MIN(len - done, LGD_FILES_CHUNK)) < 0) {
				lgd_session_set_error_from_guestfs(session, error, call->path);
				return NULL;
			}
		}
	} else if (!lgd_replace_file(session, g, call->path, &attrs, lgd_files_fill_from_bytes,
				     call->data, error)) {
		return NULL;
	}
	return lgd_files_finish_write(session, call, g, error);
}

GVariant *
lgd_files_mkdir_job(LgdSession *session, LgdCall *call, GError **error)
{
	gint64 mode = lgd_args_get_u32(call->options, "mode", 0755);
	guestfs_h *g = lgd_files_prepare(session, call, TRUE, error);
	int rc;

	if (g == NULL)
		return NULL;
	if (!lgd_args_get_bool(call->options, "parents", FALSE)) {
		g_autofree gchar *parent = g_path_get_dirname(call->path);

		if (!lgd_files_check_absent(g, call->path, error) ||
		    !lgd_files_check_type(session, g, parent, S_IFDIR, error))
			return NULL;
	}
	if (!lgd_files_begin_write(session, call, g, error))
		return NULL;
	if (lgd_args_get_bool(call->options, "parents", FALSE))
		rc = guestfs_mkdir_p(g, call->path) < 0 ? -1
							: guestfs_chmod(g, (int)mode, call->path);
	else /* mkdir(2) applies the appliance's umask: set the mode after */
		rc = guestfs_mkdir_mode(g, call->path, (int)mode) < 0
			 ? -1
			 : guestfs_chmod(g, (int)mode, call->path);
	return lgd_files_write_done(session, call, g, rc, error);
}

GVariant *
lgd_files_remove_job(LgdSession *session, LgdCall *call, GError **error)
{
	guestfs_h *g = lgd_files_prepare(session, call, TRUE, error);
	struct guestfs_statns *st;
	gboolean is_dir;
	int rc;

	if (g == NULL)
		return NULL;
	if (strcmp(call->path, "/") == 0) {
		g_set_error_literal(error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT,
				    "The root directory cannot be removed");
		return NULL;
	}
	st = guestfs_lstatns(g, call->path);
	if (st == NULL) {
		lgd_session_set_error_from_guestfs(session, error, call->path);
		return NULL;
	}
	is_dir = (st->st_mode & S_IFMT) == S_IFDIR;
	guestfs_free_statns(st);
	if (is_dir && !lgd_args_get_bool(call->options, "recursive", FALSE)) {
		char **entries = guestfs_ls(g, call->path);
		gboolean empty = entries != NULL && entries[0] == NULL;

		lgd_strv_free(entries);
		if (!empty) {
			g_set_error(error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT,
				    "%s is a directory that is not empty; use the 'recursive' "
				    "option to remove it with its contents",
				    call->path);
			return NULL;
		}
	}
	if (!lgd_files_begin_write(session, call, g, error))
		return NULL;
	if (!is_dir)
		rc = guestfs_rm(g, call->path);
	else if (lgd_args_get_bool(call->options, "recursive", FALSE))
		rc = guestfs_rm_rf(g, call->path);
	else
		rc = guestfs_rmdir(g, call->path);
	return lgd_files_write_done(session, call, g, rc, error);
}

GVariant *
lgd_files_rename_job(LgdSession *session, LgdCall *call, GError **error)
{
	guestfs_h *g = lgd_files_prepare(session, call, TRUE, error);

	if (g == NULL || !lgd_files_check_exists(session, g, call->path, error))
		return NULL;
	{
		g_autofree gchar *parent = g_path_get_dirname(call->path2);
		if (!lgd_files_check_type(session, g, parent, S_IFDIR, error))
			return NULL;
	}
	if (!lgd_files_begin_write(session, call, g, error))
		return NULL;
	return lgd_files_write_done(session, call, g, guestfs_rename(g, call->path, call->path2),
				    error);
}

/* Chmod and Chown: the path must exist; NULL when the call was refused. */
static guestfs_h *
lgd_files_begin_attrs(LgdSession *session, LgdCall *call, GError **error)
{
	guestfs_h *g = lgd_files_prepare(session, call, TRUE, error);

	if (g == NULL || !lgd_files_check_exists(session, g, call->path, error) ||
	    !lgd_files_begin_write(session, call, g, error))
		return NULL;
	return g;
}

GVariant *
lgd_files_chmod_job(LgdSession *session, LgdCall *call, GError **error)
{
	guestfs_h *g = lgd_files_begin_attrs(session, call, error);

	if (g == NULL)
		return NULL;
	return lgd_files_write_done(session, call, g, guestfs_chmod(g, (int)call->mode, call->path),
				    error);
}

GVariant *
lgd_files_chown_job(LgdSession *session, LgdCall *call, GError **error)
{
	guestfs_h *g = lgd_files_begin_attrs(session, call, error);

	if (g == NULL)
		return NULL;
	return lgd_files_write_done(
	    session, call, g, guestfs_lchown(g, (int)call->uid, (int)call->gid, call->path), error);
}

/* Symlink(target, linkpath): the link is the path; the target is any
 * string and is not checked as a path. */
GVariant *
lgd_files_symlink_job(LgdSession *session, LgdCall *call, GError **error)
{
	guestfs_h *g = lgd_files_prepare(session, call, TRUE, error);

	if (g == NULL)
		return NULL;
	/* ln(1) reports no errno: find the usual mistakes first */
	{
		g_autofree gchar *parent = g_path_get_dirname(call->path);

		if (!lgd_files_check_absent(g, call->path, error))
			return NULL;
		if (guestfs_is_dir(g, parent) <= 0) {
			g_set_error(error, LGD_ERROR, LGD_ERROR_NOT_FOUND,
				    "%s: the directory %s does not exist", call->path, parent);
			return NULL;
		}
	}
	if (!lgd_files_begin_write(session, call, g, error))
		return NULL;
	return lgd_files_write_done(session, call, g,
				    guestfs_ln_s(g, call->link_target, call->path), error);
}
