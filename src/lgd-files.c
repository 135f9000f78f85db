#include "config.h"

#include <errno.h>
#include <gio/gunixfdlist.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lgd-error.h"
#include "lgd-fd.h"
#include "lgd-files.h"
#include "lgd-guestfs.h"
#include "lgd-mount.h"
#include "lgd-replace.h"
#include "lgd-transfer.h"

/* libguestfs's protocol carries at most 4 MiB a message: reads and
 * writes of small files go in pieces of this size. */
#define LGD_FILES_CHUNK (2 * 1024 * 1024)
/* Chunks of names for lstatnslist, for the same reason. */
#define LGD_FILES_STAT_BATCH 1000

/* ---- call data ---------------------------------------------------------- */

static void
lgd_files_call_free(LgdFilesCall *call)
{
	g_object_unref(call->guest);
	g_free(call->path);
	g_free(call->path2);
	g_free(call->link_target);
	g_clear_pointer(&call->options, g_variant_unref);
	g_clear_pointer(&call->data, g_variant_unref);
	if (call->fd >= 0)
		close(call->fd);
	g_free(call);
}

static LgdFilesCall *
lgd_files_call_new(LgdGuest *guest, const gchar *path, GVariant *options)
{
	LgdFilesCall *call = g_new0(LgdFilesCall, 1);

	call->guest = g_object_ref(guest);
	call->path = g_strdup(path);
	call->options = g_variant_ref(options);
	call->fd = -1;
	return call;
}

/* ---- the steps every job takes ----------------------------------------- */

/* Options every Files method accepts, added to the method's own. */
static const LgdOptionSpec lgd_files_common_options[] = {
    {"root", "s"},
    {"filesystem", "s"},
    {NULL},
};

static gboolean
lgd_files_check_options(GVariant *options, const LgdOptionSpec *method, GError **error)
{
	g_autoptr(GArray) all = g_array_new(TRUE, TRUE, sizeof(LgdOptionSpec));

	for (const LgdOptionSpec *s = lgd_files_common_options; s->key != NULL; s++)
		g_array_append_val(all, *s);
	for (const LgdOptionSpec *s = method; s != NULL && s->key != NULL; s++)
		g_array_append_val(all, *s);
	return lgd_args_check_options(options, (const LgdOptionSpec *)all->data, error);
}

/* The directories leading to @path must be what they say: a symbolic
 * link among them would take the call (and what polkit was told of it)
 * somewhere else in the guest. */
static gboolean
lgd_files_check_no_links(LgdSession *session, guestfs_h *g, const gchar *path, GError **error)
{
	g_autofree gchar *parent = g_path_get_dirname(path);
	char *real;
	gboolean same;

	if (g_str_equal(parent, "/"))
		return TRUE;
	real = guestfs_realpath(g, parent);
	if (real == NULL)
		return TRUE; /* missing: the call itself says NotFound */
	same = g_str_equal(real, parent);
	if (!same)
		g_set_error(error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT,
			    "%s goes through a symbolic link (%s is %s); pass the resolved path",
			    path, parent, real);
	free(real);
	return same;
}

/* For calls that would follow a link at @path itself. */
gboolean
lgd_files_check_not_link(LgdSession *session, guestfs_h *g, const gchar *path, GError **error)
{
	g_autoptr(LgdStatns) st = guestfs_lstatns(g, path);
	char *target = NULL;

	if (st == NULL)
		return TRUE; /* missing: the call itself says NotFound */
	if ((st->st_mode & S_IFMT) != S_IFLNK)
		return TRUE;
	target = guestfs_readlink(g, path);
	g_set_error(error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT,
		    "%s is a symbolic link to %s; pass the path of the file it points to", path,
		    target != NULL ? target : "?");
	free(target);
	return FALSE;
}

/* Validates the call, gets the appliance (read-write for writes, which
 * need the domain shut off: checked before anything is launched) and
 * mounts the guest's filesystems. */
guestfs_h *
lgd_files_prepare(LgdSession *session,
		  LgdFilesCall *call,
		  const LgdOptionSpec *method_options,
		  gboolean write,
		  GError **error)
{
	LgdDriveSource *source = lgd_session_get_source(session);
	guestfs_h *g;

	if (!lgd_files_check_options(call->options, method_options, error) ||
	    !lgd_args_check_path("path", call->path, error))
		return NULL;
	if (call->path2 != NULL && !lgd_args_check_path("second path", call->path2, error))
		return NULL;
	if (write && !lgd_drives_check_writable(source, error))
		return NULL;
	g = write ? lgd_session_get_handle_rw(session, error)
		  : lgd_session_get_handle(session, error);
	if (g == NULL)
		return NULL;
	if (!lgd_mount_guest(session, g, lgd_args_get_string(call->options, "root", NULL),
			     lgd_args_get_string(call->options, "filesystem", NULL), FALSE, error))
		return NULL;
	if (!lgd_files_check_no_links(session, g, call->path, error) ||
	    (call->path2 != NULL && !lgd_files_check_no_links(session, g, call->path2, error)))
		return NULL;
	return g;
}

/* A write job calls this once its checks have passed, just before it
 * changes anything: the filesystems are mounted read-write from here. */
gboolean
lgd_files_begin_write(LgdSession *session, LgdFilesCall *call, guestfs_h *g, GError **error)
{
	return lgd_mount_guest(session, g, lgd_args_get_string(call->options, "root", NULL),
			       lgd_args_get_string(call->options, "filesystem", NULL), TRUE, error);
}

/* lgd_files_begin_write() as lgd_replace_file() calls it. */
gboolean
lgd_files_replace_begin(LgdSession *session, guestfs_h *g, gpointer call, GError **error)
{
	return lgd_files_begin_write(session, call, g, error);
}

/* Fails with NotFound unless @path exists (a link counts). */
static gboolean
lgd_files_check_exists(LgdSession *session, guestfs_h *g, const gchar *path, GError **error)
{
	g_autoptr(LgdStatns) st = guestfs_lstatns(g, path);

	if (st == NULL) {
		lgd_session_set_error_from_guestfs(session, error, path);
		return FALSE;
	}
	return TRUE;
}

/* After a successful write: on disk before the reply, and the disks'
 * inspection is no longer known. */
gboolean
lgd_files_finish_write(LgdSession *session, LgdFilesCall *call, guestfs_h *g, GError **error)
{
	lgd_guest_forget_inspection(call->guest);
	if (guestfs_sync(g) < 0) {
		lgd_session_set_error_from_guestfs(session, error, "Cannot sync the disks");
		return FALSE;
	}
	return TRUE;
}

/* Checks that @path (followed) is of @type (S_IFREG, S_IFDIR). */
gboolean
lgd_files_check_type(
    LgdSession *session, guestfs_h *g, const gchar *path, guint32 type, GError **error)
{
	g_autoptr(LgdStatns) st = guestfs_statns(g, path);

	if (st == NULL) {
		lgd_session_set_error_from_guestfs(session, error, path);
		return FALSE;
	}
	if (((guint32)st->st_mode & S_IFMT) == type)
		return TRUE;
	g_set_error(error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT, "%s is %s", path,
		    type == S_IFDIR ? "not a directory" : "a directory, not a regular file");
	return FALSE;
}

/* ---- stat results ------------------------------------------------------- */

static const gchar *
lgd_files_type_name(gint64 mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG:
		return "regular";
	case S_IFDIR:
		return "directory";
	case S_IFLNK:
		return "symlink";
	case S_IFCHR:
		return "char";
	case S_IFBLK:
		return "block";
	case S_IFIFO:
		return "fifo";
	case S_IFSOCK:
		return "socket";
	default:
		return "unknown";
	}
}

static GVariant *
lgd_files_stat_dict(const gchar *name, const struct guestfs_statns *st, const gchar *link)
{
	GVariantBuilder dict;

	g_variant_builder_init(&dict, G_VARIANT_TYPE_VARDICT);
	g_variant_builder_add(&dict, "{sv}", "name", g_variant_new_string(name));
	g_variant_builder_add(&dict, "{sv}", "type",
			      g_variant_new_string(lgd_files_type_name(st->st_mode)));
	g_variant_builder_add(&dict, "{sv}", "size", g_variant_new_uint64((guint64)st->st_size));
	g_variant_builder_add(&dict, "{sv}", "mode", g_variant_new_uint32((guint32)st->st_mode));
	g_variant_builder_add(&dict, "{sv}", "uid", g_variant_new_uint32((guint32)st->st_uid));
	g_variant_builder_add(&dict, "{sv}", "gid", g_variant_new_uint32((guint32)st->st_gid));
	g_variant_builder_add(&dict, "{sv}", "mtime", g_variant_new_int64(st->st_mtime_sec));
	if (link != NULL && (st->st_mode & S_IFMT) == S_IFLNK)
		g_variant_builder_add(&dict, "{sv}", "link-target", g_variant_new_string(link));
	return g_variant_builder_end(&dict);
}

/* ---- read jobs ---------------------------------------------------------- */

static gboolean
lgd_files_read_dir_batch(LgdSession *session,
			 guestfs_h *g,
			 const gchar *dir,
			 char **names,
			 GVariantBuilder *entries,
			 GError **error)
{
	g_autoptr(LgdStatnsList) st = guestfs_lstatnslist(g, dir, names);
	g_auto(LgdStrv) links = NULL;

	if (st == NULL) {
		lgd_session_set_error_from_guestfs(session, error, dir);
		return FALSE;
	}
	links = guestfs_readlinklist(g, dir, names);
	if (links == NULL) {
		lgd_session_set_error_from_guestfs(session, error, dir);
		return FALSE;
	}
	for (guint32 i = 0; i < st->len; i++)
		g_variant_builder_add_value(entries,
					    lgd_files_stat_dict(names[i], &st->val[i], links[i]));
	return TRUE;
}

static GVariant *
lgd_files_read_dir_job(LgdSession *session, gpointer data, GError **error)
{
	LgdFilesCall *call = data;
	guestfs_h *g = lgd_files_prepare(session, call, NULL, FALSE, error);
	GVariantBuilder entries;
	g_auto(LgdStrv) names = NULL;
	guint n;

	if (g == NULL || !lgd_files_check_type(session, g, call->path, S_IFDIR, error))
		return NULL;
	names = guestfs_ls(g, call->path);
	if (names == NULL) {
		lgd_session_set_error_from_guestfs(session, error, call->path);
		return NULL;
	}
	n = g_strv_length(names);
	g_variant_builder_init(&entries, G_VARIANT_TYPE("aa{sv}"));
	for (guint i = 0; i < n; i += LGD_FILES_STAT_BATCH) {
		guint end = MIN(n, i + LGD_FILES_STAT_BATCH);
		gchar *saved = names[end];

		names[end] = NULL;
		if (!lgd_files_read_dir_batch(session, g, call->path, names + i, &entries, error)) {
			names[end] = saved;
			g_variant_builder_clear(&entries);
			return NULL;
		}
		names[end] = saved;
	}
	return g_variant_new("(aa{sv})", &entries);
}

static const LgdOptionSpec lgd_stat_options[] = {{"follow-symlinks", "b"}, {NULL}};

static GVariant *
lgd_files_stat_job(LgdSession *session, gpointer data, GError **error)
{
	LgdFilesCall *call = data;
	guestfs_h *g = lgd_files_prepare(session, call, lgd_stat_options, FALSE, error);
	gboolean follow = lgd_args_get_bool(call->options, "follow-symlinks", FALSE);
	g_autofree gchar *name = NULL;
	g_autoptr(LgdStatns) st = NULL;
	char *link = NULL;
	GVariant *info;

	if (g == NULL)
		return NULL;
	st = follow ? guestfs_statns(g, call->path) : guestfs_lstatns(g, call->path);
	if (st == NULL) {
		lgd_session_set_error_from_guestfs(session, error, call->path);
		return NULL;
	}
	if ((st->st_mode & S_IFMT) == S_IFLNK)
		link = guestfs_readlink(g, call->path);
	name = g_path_get_basename(call->path);
	info = lgd_files_stat_dict(name, st, link);
	free(link);
	return g_variant_new("(@a{sv})", info);
}

static const LgdOptionSpec lgd_read_file_options[] = {
    {"offset", "t"},
    {"length", "t"},
    {NULL},
};

static GVariant *
lgd_files_read_file_job(LgdSession *session, gpointer data, GError **error)
{
	LgdFilesCall *call = data;
	guestfs_h *g = lgd_files_prepare(session, call, lgd_read_file_options, FALSE, error);
	guint64 offset = lgd_args_get_u64(call->options, "offset", 0);
	guint64 length = lgd_args_get_u64(call->options, "length", 0);
	guint64 max = lgd_guest_get_context(call->guest)->max_read_size;
	g_autoptr(GByteArray) bytes = NULL;
	int64_t size;

	if (g == NULL || !lgd_files_check_not_link(session, g, call->path, error) ||
	    !lgd_files_check_type(session, g, call->path, S_IFREG, error))
		return NULL;
	size = guestfs_filesize(g, call->path);
	if (size < 0) {
		lgd_session_set_error_from_guestfs(session, error, call->path);
		return NULL;
	}
	if (offset > (guint64)size) {
		g_set_error(error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT,
			    "Offset %" G_GUINT64_FORMAT
			    " is beyond the end of %s (%" G_GINT64_FORMAT " bytes)",
			    offset, call->path, (gint64)size);
		return NULL;
	}
	if (length == 0 || length > (guint64)size - offset)
		length = (guint64)size - offset;
	if (length > max) {
		g_set_error(error, LGD_ERROR, LGD_ERROR_TOO_LARGE,
			    "Reading %" G_GUINT64_FORMAT " bytes is more than ReadFile's limit of "
			    "%" G_GUINT64_FORMAT "; use Download, or offset and length",
			    length, max);
		return NULL;
	}
	bytes = g_byte_array_sized_new((guint)length);
	while (bytes->len < length) {
		size_t got;
		gsize want = (gsize)MIN(length - bytes->len, LGD_FILES_CHUNK);
		char *chunk =
		    guestfs_pread(g, call->path, (int)want, (int64_t)(offset + bytes->len), &got);

		if (chunk == NULL) {
			lgd_session_set_error_from_guestfs(session, error, call->path);
			return NULL;
		}
		g_byte_array_append(bytes, (guint8 *)chunk, (guint)got);
		free(chunk);
		if (got == 0)
			break; /* the file shrank meanwhile */
	}
	return g_variant_new(
	    "(@ay)", g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, bytes->data, bytes->len, 1));
}

static GVariant *
lgd_files_readlink_job(LgdSession *session, gpointer data, GError **error)
{
	LgdFilesCall *call = data;
	guestfs_h *g = lgd_files_prepare(session, call, NULL, FALSE, error);
	char *target;
	GVariant *reply;

	if (g == NULL)
		return NULL;
	target = guestfs_readlink(g, call->path);
	if (target == NULL) {
		lgd_session_set_error_from_guestfs(session, error, call->path);
		return NULL;
	}
	reply = g_variant_new("(s)", target);
	free(target);
	return reply;
}

/* ---- write jobs --------------------------------------------------------- */

static const LgdOptionSpec lgd_write_file_options[] = {
    {"mode", "u"}, {"uid", "u"}, {"gid", "u"}, {"create", "b"}, {"append", "b"}, {NULL},
};

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

gboolean
lgd_files_check_mode(gint64 mode, GError **error)
{
	if (mode <= 07777)
		return TRUE;
	g_set_error(error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT,
		    "Mode %#" G_GINT64_MODIFIER "o has bits beyond the permission bits (07777)",
		    mode);
	return FALSE;
}

static GVariant *
lgd_files_write_file_job(LgdSession *session, gpointer data, GError **error)
{
	LgdFilesCall *call = data;
	guestfs_h *g = NULL;
	gsize len = g_variant_get_size(call->data);
	guint64 max = lgd_guest_get_context(call->guest)->max_read_size;
	LgdReplaceAttrs attrs = {
	    .begin = lgd_files_replace_begin,
	    .begin_data = call,
	    .create = lgd_args_get_bool(call->options, "create", TRUE),
	    .mode = lgd_args_get_u32(call->options, "mode", -1),
	    .uid = lgd_args_get_u32(call->options, "uid", -1),
	    .gid = lgd_args_get_u32(call->options, "gid", -1),
	};

	if (len > max) {
		g_set_error(error, LGD_ERROR, LGD_ERROR_TOO_LARGE,
			    "%zu bytes is more than WriteFile's limit of %" G_GUINT64_FORMAT
			    "; use Upload",
			    len, max);
		return NULL;
	}
	if (!lgd_files_check_mode(attrs.mode, error))
		return NULL;
	g = lgd_files_prepare(session, call, lgd_write_file_options, TRUE, error);
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
		    (!lgd_files_check_not_link(session, g, call->path, error) ||
		     !lgd_files_check_type(session, g, call->path, S_IFREG, error)))
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
	if (!lgd_files_finish_write(session, call, g, error))
		return NULL;
	return g_variant_new("()");
}

static const LgdOptionSpec lgd_mkdir_options[] = {{"parents", "b"}, {"mode", "u"}, {NULL}};

static GVariant *
lgd_files_mkdir_job(LgdSession *session, gpointer data, GError **error)
{
	LgdFilesCall *call = data;
	gint64 mode = lgd_args_get_u32(call->options, "mode", 0755);
	guestfs_h *g;
	int rc;

	if (!lgd_files_check_mode(mode, error))
		return NULL;
	g = lgd_files_prepare(session, call, lgd_mkdir_options, TRUE, error);
	if (g == NULL)
		return NULL;
	if (!lgd_args_get_bool(call->options, "parents", FALSE)) {
		g_autofree gchar *parent = g_path_get_dirname(call->path);
		g_autoptr(LgdStatns) st = guestfs_lstatns(g, call->path);

		if (st != NULL) {
			g_set_error(error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT, "%s exists",
				    call->path);
			return NULL;
		}
		if (!lgd_files_check_type(session, g, parent, S_IFDIR, error))
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
	if (rc < 0) {
		lgd_session_set_error_from_guestfs(session, error, call->path);
		return NULL;
	}
	return lgd_files_finish_write(session, call, g, error) ? g_variant_new("()") : NULL;
}

static const LgdOptionSpec lgd_remove_options[] = {{"recursive", "b"}, {NULL}};

static GVariant *
lgd_files_remove_job(LgdSession *session, gpointer data, GError **error)
{
	LgdFilesCall *call = data;
	guestfs_h *g = lgd_files_prepare(session, call, lgd_remove_options, TRUE, error);
	g_autoptr(LgdStatns) st = NULL;
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
	if (is_dir && !lgd_args_get_bool(call->options, "recursive", FALSE)) {
		g_auto(LgdStrv) entries = guestfs_ls(g, call->path);

		if (entries == NULL || entries[0] != NULL) {
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
	if (rc < 0) {
		lgd_session_set_error_from_guestfs(session, error, call->path);
		return NULL;
	}
	return lgd_files_finish_write(session, call, g, error) ? g_variant_new("()") : NULL;
}

static GVariant *
lgd_files_rename_job(LgdSession *session, gpointer data, GError **error)
{
	LgdFilesCall *call = data;
	guestfs_h *g = lgd_files_prepare(session, call, NULL, TRUE, error);

	if (g == NULL || !lgd_files_check_exists(session, g, call->path, error))
		return NULL;
	{
		g_autofree gchar *parent = g_path_get_dirname(call->path2);
		if (!lgd_files_check_type(session, g, parent, S_IFDIR, error))
			return NULL;
	}
	if (!lgd_files_begin_write(session, call, g, error))
		return NULL;
	if (guestfs_rename(g, call->path, call->path2) < 0) {
		lgd_session_set_error_from_guestfs(session, error, call->path);
		return NULL;
	}
	return lgd_files_finish_write(session, call, g, error) ? g_variant_new("()") : NULL;
}

static GVariant *
lgd_files_chmod_job(LgdSession *session, gpointer data, GError **error)
{
	LgdFilesCall *call = data;
	guestfs_h *g;

	if (!lgd_files_check_mode(call->mode, error))
		return NULL;
	g = lgd_files_prepare(session, call, NULL, TRUE, error);
	if (g == NULL || !lgd_files_check_exists(session, g, call->path, error) ||
	    !lgd_files_check_not_link(session, g, call->path, error) ||
	    !lgd_files_begin_write(session, call, g, error))
		return NULL;
	if (guestfs_chmod(g, (int)call->mode, call->path) < 0) {
		lgd_session_set_error_from_guestfs(session, error, call->path);
		return NULL;
	}
	return lgd_files_finish_write(session, call, g, error) ? g_variant_new("()") : NULL;
}

static GVariant *
lgd_files_chown_job(LgdSession *session, gpointer data, GError **error)
{
	LgdFilesCall *call = data;
	guestfs_h *g = lgd_files_prepare(session, call, NULL, TRUE, error);

	if (g == NULL || !lgd_files_check_exists(session, g, call->path, error) ||
	    !lgd_files_begin_write(session, call, g, error))
		return NULL;
	if (guestfs_lchown(g, (int)call->uid, (int)call->gid, call->path) < 0) {
		lgd_session_set_error_from_guestfs(session, error, call->path);
		return NULL;
	}
	return lgd_files_finish_write(session, call, g, error) ? g_variant_new("()") : NULL;
}

/* Symlink(target, linkpath): the link is the path; the target is any
 * string and is not checked as a path. */
static GVariant *
lgd_files_symlink_job(LgdSession *session, gpointer data, GError **error)
{
	LgdFilesCall *call = data;
	guestfs_h *g;

	if (call->link_target[0] == '\0') {
		g_set_error_literal(error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT,
				    "The link target is empty");
		return NULL;
	}
	g = lgd_files_prepare(session, call, NULL, TRUE, error);
	if (g == NULL)
		return NULL;
	/* ln(1) reports no errno: find the usual mistakes first */
	{
		g_autofree gchar *parent = g_path_get_dirname(call->path);
		g_autoptr(LgdStatns) st = guestfs_lstatns(g, call->path);

		if (st != NULL) {
			g_set_error(error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT, "%s exists",
				    call->path);
			return NULL;
		}
		if (guestfs_is_dir(g, parent) <= 0) {
			g_set_error(error, LGD_ERROR, LGD_ERROR_NOT_FOUND,
				    "%s: the directory %s does not exist", call->path, parent);
			return NULL;
		}
	}
	if (!lgd_files_begin_write(session, call, g, error))
		return NULL;
	if (guestfs_ln_s(g, call->link_target, call->path) < 0) {
		lgd_session_set_error_from_guestfs(session, error, call->path);
		return NULL;
	}
	return lgd_files_finish_write(session, call, g, error) ? g_variant_new("()") : NULL;
}

/* ---- handlers ----------------------------------------------------------- */

static void
lgd_files_dispatch(LgdFilesCall *call,
		   GDBusMethodInvocation *invocation,
		   gboolean write,
		   LgdJobFunc job)
{
	lgd_guest_call_paths(call->guest, invocation, write ? LGD_ACTION_WRITE : LGD_ACTION_READ,
			     call->path, call->path2, job, call,
			     (GDestroyNotify)lgd_files_call_free);
}

static gboolean
lgd_files_handle_read_dir(LgdDBusFiles *iface,
			  GDBusMethodInvocation *invocation,
			  const gchar *path,
			  GVariant *options,
			  LgdGuest *guest)
{
	lgd_files_dispatch(lgd_files_call_new(guest, path, options), invocation, FALSE,
			   lgd_files_read_dir_job);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
lgd_files_handle_stat(LgdDBusFiles *iface,
		      GDBusMethodInvocation *invocation,
		      const gchar *path,
		      GVariant *options,
		      LgdGuest *guest)
{
	lgd_files_dispatch(lgd_files_call_new(guest, path, options), invocation, FALSE,
			   lgd_files_stat_job);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
lgd_files_handle_read_file(LgdDBusFiles *iface,
			   GDBusMethodInvocation *invocation,
			   const gchar *path,
			   GVariant *options,
			   LgdGuest *guest)
{
	lgd_files_dispatch(lgd_files_call_new(guest, path, options), invocation, FALSE,
			   lgd_files_read_file_job);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
lgd_files_handle_readlink(LgdDBusFiles *iface,
			  GDBusMethodInvocation *invocation,
			  const gchar *path,
			  GVariant *options,
			  LgdGuest *guest)
{
	lgd_files_dispatch(lgd_files_call_new(guest, path, options), invocation, FALSE,
			   lgd_files_readlink_job);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
lgd_files_handle_write_file(LgdDBusFiles *iface,
			    GDBusMethodInvocation *invocation,
			    const gchar *path,
			    GVariant *data,
			    GVariant *options,
			    LgdGuest *guest)
{
	LgdFilesCall *call = lgd_files_call_new(guest, path, options);

	call->data = g_variant_ref(data);
	lgd_files_dispatch(call, invocation, TRUE, lgd_files_write_file_job);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
lgd_files_handle_mkdir(LgdDBusFiles *iface,
		       GDBusMethodInvocation *invocation,
		       const gchar *path,
		       GVariant *options,
		       LgdGuest *guest)
{
	lgd_files_dispatch(lgd_files_call_new(guest, path, options), invocation, TRUE,
			   lgd_files_mkdir_job);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
lgd_files_handle_remove(LgdDBusFiles *iface,
			GDBusMethodInvocation *invocation,
			const gchar *path,
			GVariant *options,
			LgdGuest *guest)
{
	lgd_files_dispatch(lgd_files_call_new(guest, path, options), invocation, TRUE,
			   lgd_files_remove_job);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
lgd_files_handle_rename(LgdDBusFiles *iface,
			GDBusMethodInvocation *invocation,
			const gchar *from,
			const gchar *to,
			GVariant *options,
			LgdGuest *guest)
{
	LgdFilesCall *call = lgd_files_call_new(guest, from, options);

	call->path2 = g_strdup(to);
	lgd_files_dispatch(call, invocation, TRUE, lgd_files_rename_job);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
lgd_files_handle_chmod(LgdDBusFiles *iface,
		       GDBusMethodInvocation *invocation,
		       const gchar *path,
		       guint32 mode,
		       GVariant *options,
		       LgdGuest *guest)
{
	LgdFilesCall *call = lgd_files_call_new(guest, path, options);

	call->mode = mode;
	lgd_files_dispatch(call, invocation, TRUE, lgd_files_chmod_job);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
lgd_files_handle_chown(LgdDBusFiles *iface,
		       GDBusMethodInvocation *invocation,
		       const gchar *path,
		       guint32 uid,
		       guint32 gid,
		       GVariant *options,
		       LgdGuest *guest)
{
	LgdFilesCall *call = lgd_files_call_new(guest, path, options);

	call->uid = uid;
	call->gid = gid;
	lgd_files_dispatch(call, invocation, TRUE, lgd_files_chown_job);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* The link is what is created, so it is the call's path (and what polkit
 * sees); the target only goes into it. */
static gboolean
lgd_files_handle_symlink(LgdDBusFiles *iface,
			 GDBusMethodInvocation *invocation,
			 const gchar *target,
			 const gchar *linkpath,
			 GVariant *options,
			 LgdGuest *guest)
{
	LgdFilesCall *call = lgd_files_call_new(guest, linkpath, options);

	call->link_target = g_strdup(target);
	lgd_files_dispatch(call, invocation, TRUE, lgd_files_symlink_job);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* Transfers take their fd at once, so that a bad one is refused before
 * authorization and nothing holds it longer than the call. */
static void
lgd_files_dispatch_transfer(LgdGuest *guest,
			    GDBusMethodInvocation *invocation,
			    GUnixFDList *fd_list,
			    const gchar *path,
			    GVariant *handle,
			    GVariant *options,
			    LgdFdDirection direction,
			    LgdJobFunc job)
{
	LgdFilesCall *call = lgd_files_call_new(guest, path, options);
	GError *error = NULL;

	call->fd = lgd_fd_take(fd_list, handle, direction, &error);
	if (call->fd < 0) {
		lgd_error_return(invocation, error);
		lgd_files_call_free(call);
		return;
	}
	lgd_files_dispatch(call, invocation, direction == LGD_FD_READ, job);
}

static gboolean
lgd_files_handle_download(LgdDBusFiles *iface,
			  GDBusMethodInvocation *invocation,
			  GUnixFDList *fd_list,
			  const gchar *path,
			  GVariant *sink,
			  GVariant *options,
			  LgdGuest *guest)
{
	lgd_files_dispatch_transfer(guest, invocation, fd_list, path, sink, options, LGD_FD_WRITE,
				    lgd_transfer_download);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
lgd_files_handle_upload(LgdDBusFiles *iface,
			GDBusMethodInvocation *invocation,
			GUnixFDList *fd_list,
			const gchar *path,
			GVariant *source,
			GVariant *options,
			LgdGuest *guest)
{
	lgd_files_dispatch_transfer(guest, invocation, fd_list, path, source, options, LGD_FD_READ,
				    lgd_transfer_upload);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
lgd_files_handle_tar_out(LgdDBusFiles *iface,
			 GDBusMethodInvocation *invocation,
			 GUnixFDList *fd_list,
			 const gchar *dir,
			 GVariant *sink,
			 GVariant *options,
			 LgdGuest *guest)
{
	lgd_files_dispatch_transfer(guest, invocation, fd_list, dir, sink, options, LGD_FD_WRITE,
				    lgd_transfer_tar_out);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
lgd_files_handle_tar_in(LgdDBusFiles *iface,
			GDBusMethodInvocation *invocation,
			GUnixFDList *fd_list,
			const gchar *dir,
			GVariant *source,
			GVariant *options,
			LgdGuest *guest)
{
	lgd_files_dispatch_transfer(guest, invocation, fd_list, dir, source, options, LGD_FD_READ,
				    lgd_transfer_tar_in);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* The handlers hold @guest without a reference: the guest owns the
 * interface through its object, and disconnects them when it closes. */
LgdDBusFiles *
lgd_files_new(LgdGuest *guest)
{
	LgdDBusFiles *iface = lgd_dbus_files_skeleton_new();
	const struct {
		const gchar *signal;
		GCallback handler;
	} handlers[] = {
	    {"handle-read-dir", G_CALLBACK(lgd_files_handle_read_dir)},
	    {"handle-stat", G_CALLBACK(lgd_files_handle_stat)},
	    {"handle-read-file", G_CALLBACK(lgd_files_handle_read_file)},
	    {"handle-readlink", G_CALLBACK(lgd_files_handle_readlink)},
	    {"handle-write-file", G_CALLBACK(lgd_files_handle_write_file)},
	    {"handle-mkdir", G_CALLBACK(lgd_files_handle_mkdir)},
	    {"handle-remove", G_CALLBACK(lgd_files_handle_remove)},
	    {"handle-rename", G_CALLBACK(lgd_files_handle_rename)},
	    {"handle-chmod", G_CALLBACK(lgd_files_handle_chmod)},
	    {"handle-chown", G_CALLBACK(lgd_files_handle_chown)},
	    {"handle-symlink", G_CALLBACK(lgd_files_handle_symlink)},
	    {"handle-download", G_CALLBACK(lgd_files_handle_download)},
	    {"handle-upload", G_CALLBACK(lgd_files_handle_upload)},
	    {"handle-tar-out", G_CALLBACK(lgd_files_handle_tar_out)},
	    {"handle-tar-in", G_CALLBACK(lgd_files_handle_tar_in)},
	};

	for (guint i = 0; i < G_N_ELEMENTS(handlers); i++)
		g_signal_connect(iface, handlers[i].signal, handlers[i].handler, guest);
	return iface;
}
