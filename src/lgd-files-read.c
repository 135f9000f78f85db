#include "config.h"

#include <sys/stat.h>

#include "lgd-call.h"
#include "lgd-error.h"
#include "lgd-files.h"
#include "lgd-mount.h"

/* Chunks of names for lstatnslist: libguestfs's protocol carries at most
 * 4 MiB a message. */
#define LGD_FILES_STAT_BATCH 1000

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
	struct guestfs_statns_list *st = guestfs_lstatnslist(g, dir, names);
	char **links;

	if (st == NULL) {
		lgd_session_set_error_from_guestfs(session, error, dir);
		return FALSE;
	}
	links = guestfs_readlinklist(g, dir, names);
	if (links == NULL) {
		guestfs_free_statns_list(st);
		lgd_session_set_error_from_guestfs(session, error, dir);
		return FALSE;
	}
	for (guint32 i = 0; i < st->len; i++)
		g_variant_builder_add_value(entries,
					    lgd_files_stat_dict(names[i], &st->val[i], links[i]));
	guestfs_free_statns_list(st);
	lgd_strv_free(links);
	return TRUE;
}

GVariant *
lgd_files_read_dir_job(LgdSession *session, LgdCall *call, GError **error)
{
	guestfs_h *g = lgd_files_prepare(session, call, FALSE, error);
	GVariantBuilder entries;
	char **names;
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
			lgd_strv_free(names);
			g_variant_builder_clear(&entries);
			return NULL;
		}
		names[end] = saved;
	}
	lgd_strv_free(names);
	return g_variant_new("(aa{sv})", &entries);
}

GVariant *
lgd_files_stat_job(LgdSession *session, LgdCall *call, GError **error)
{
	guestfs_h *g = lgd_files_prepare(session, call, FALSE, error);
	gboolean follow = lgd_args_get_bool(call->options, "follow-symlinks", FALSE);
	g_autofree gchar *name = NULL;
	struct guestfs_statns *st;
	char *link = NULL;
	GVariant *info;

	if (g == NULL)
		return NULL;
	/* the resolved path names no link but, without follow-symlinks, its
	 * last: resolving's lstat of it is what either call would answer */
	st = g_steal_pointer(&call->path_stat);
	if (st == NULL)
		st = follow ? guestfs_statns(g, call->path) : guestfs_lstatns(g, call->path);
	if (st == NULL) {
		lgd_session_set_error_from_guestfs(session, error, call->path);
		return NULL;
	}
	if ((st->st_mode & S_IFMT) == S_IFLNK)
		link = guestfs_readlink(g, call->path);
	/* the name the caller asked for, also when a link was followed */
	name =
	    g_path_get_basename(call->requested_path != NULL ? call->requested_path : call->path);
	info = lgd_files_stat_dict(name, st, link);
	guestfs_free_statns(st);
	free(link);
	return g_variant_new("(@a{sv})", info);
}

GVariant *
lgd_files_read_file_job(LgdSession *session, LgdCall *call, GError **error)
{
	guestfs_h *g = lgd_files_prepare(session, call, FALSE, error);
	guint64 offset = lgd_args_get_u64(call->options, "offset", 0);
	guint64 length = lgd_args_get_u64(call->options, "length", 0);
	guint64 max = lgd_guest_get_context(call->guest)->max_read_size;
	g_autoptr(GByteArray) bytes = NULL;
	g_autoptr(LgdStatns) st = NULL;
	int64_t size;

	if (g == NULL)
		return NULL;
	/* resolving followed every link, so its lstat of the result, when it
	 * made one, is the file's own: type and size without asking again */
	st = g_steal_pointer(&call->path_stat);
	if (st == NULL && (st = guestfs_statns(g, call->path)) == NULL) {
		lgd_session_set_error_from_guestfs(session, error, call->path);
		return NULL;
	}
	if ((st->st_mode & S_IFMT) != S_IFREG) {
		g_set_error(error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT, "%s is %s", call->path,
			    (st->st_mode & S_IFMT) == S_IFDIR ? "a directory, not a regular file"
							      : "not a regular file");
		return NULL;
	}
	size = st->st_size;
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

GVariant *
lgd_files_readlink_job(LgdSession *session, LgdCall *call, GError **error)
{
	guestfs_h *g = lgd_files_prepare(session, call, FALSE, error);
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
