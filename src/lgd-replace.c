#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "lgd-error.h"
#include "lgd-guestfs.h"
#include "lgd-replace.h"

#define LGD_SELINUX_XATTR "security.selinux"

/* The file to replace. A symbolic link is refused rather than followed:
 * its target may lie where the caller was not authorized to write. */
static gchar *
lgd_replace_resolve(LgdSession *session,
		    guestfs_h *g,
		    const gchar *path,
		    struct guestfs_statns **st,
		    GError **error)
{
	g_autofree gchar *real = NULL;
	char *r;

	*st = guestfs_lstatns(g, path);
	if (*st == NULL) {
		g_autofree gchar *parent = g_path_get_dirname(path);

		if (guestfs_last_errno(g) != ENOENT) {
			lgd_session_set_error_from_guestfs(session, error, path);
			return NULL;
		}
		/* a new file: its directory must be there before anything is
		 * mounted read-write */
		if (guestfs_is_dir(g, parent) <= 0) {
			g_set_error(error, LGD_ERROR, LGD_ERROR_NOT_FOUND,
				    "%s: the directory %s does not exist", path, parent);
			return NULL;
		}
		return g_strdup(path);
	}
	if (((*st)->st_mode & S_IFMT) == S_IFLNK) {
		guestfs_free_statns(*st);
		*st = NULL;
		g_set_error(error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT,
			    "%s is a symbolic link; pass the path of the file it points to", path);
		return NULL;
	}
	if (!S_ISREG((*st)->st_mode)) {
		guestfs_free_statns(*st);
		*st = NULL;
		g_set_error(error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT,
			    "%s is not a regular file", path);
		return NULL;
	}
	r = guestfs_realpath(g, path);
	if (r == NULL) {
		lgd_session_set_error_from_guestfs(session, error, path);
		return NULL;
	}
	real = g_strdup(r);
	free(r);
	return g_steal_pointer(&real);
}

static gchar *
lgd_replace_temp_name(const gchar *path)
{
	g_autofree gchar *dir = g_path_get_dirname(path);
	g_autofree gchar *base = g_path_get_basename(path);

	/* hidden, recognisable, and short enough for NAME_MAX */
	if (strlen(base) > 200)
		base[200] = '\0';
	return g_strdup_printf("%s%s.lgd-%08x-%s", dir, g_str_equal(dir, "/") ? "" : "/",
			       g_random_int(), base);
}

/* The old file's label goes to the new one, as virt-edit keeps it. */
static gboolean
lgd_replace_copy_label(
    LgdSession *session, guestfs_h *g, const gchar *from, const gchar *to, GError **error)
{
	size_t size;
	char *label = guestfs_lgetxattr(g, from, LGD_SELINUX_XATTR, &size);
	int rc;

	if (label == NULL)
		return TRUE; /* no label, or no xattrs on this filesystem */
	rc = guestfs_lsetxattr(g, LGD_SELINUX_XATTR, label, (int)size, to);
	free(label);
	if (rc < 0) {
		lgd_session_set_error_from_guestfs(session, error, "Cannot keep the SELinux label");
		return FALSE;
	}
	return TRUE;
}

static gboolean
lgd_replace_set_attrs(LgdSession *session,
		      guestfs_h *g,
		      const gchar *tmp,
		      const gchar *target,
		      const struct guestfs_statns *old,
		      const LgdReplaceAttrs *attrs,
		      GError **error)
{
	gint64 mode = attrs->mode >= 0 ? attrs->mode : old != NULL ? (old->st_mode & 07777) : 0644;
	gint64 uid = attrs->uid >= 0 ? attrs->uid : old != NULL ? old->st_uid : 0;
	gint64 gid = attrs->gid >= 0 ? attrs->gid : old != NULL ? old->st_gid : 0;

	/* owner first: chown clears set-id bits that chmod then sets */
	if (guestfs_lchown(g, (int)uid, (int)gid, tmp) < 0 ||
	    guestfs_chmod(g, (int)mode, tmp) < 0) {
		lgd_session_set_error_from_guestfs(session, error, "Cannot set the attributes");
		return FALSE;
	}
	if (old != NULL && !lgd_replace_copy_label(session, g, target, tmp, error))
		return FALSE;
	return TRUE;
}

/* Replaces @path with what @fill writes, atomically: until the final
 * rename the old file is untouched, and a failure removes the temporary
 * file. Synced before returning. */
gboolean
lgd_replace_file(LgdSession *session,
		 guestfs_h *g,
		 const gchar *path,
		 const LgdReplaceAttrs *attrs,
		 LgdReplaceFill fill,
		 gpointer user_data,
		 GError **error)
{
	g_autoptr(LgdStatns) old = NULL;
	g_autofree gchar *target = lgd_replace_resolve(session, g, path, &old, error);
	g_autofree gchar *tmp = NULL;
	gboolean ok = FALSE;

	if (target == NULL)
		return FALSE;
	if (old == NULL && !attrs->create) {
		g_set_error(error, LGD_ERROR, LGD_ERROR_NOT_FOUND,
			    "%s does not exist (and the 'create' option is false)", path);
		return FALSE;
	}
	if (attrs->begin != NULL && !attrs->begin(session, g, attrs->begin_data, error))
		return FALSE;
	tmp = lgd_replace_temp_name(target);
	if (!fill(session, g, tmp, user_data, error))
		goto out;
	if (!lgd_replace_set_attrs(session, g, tmp, target, old, attrs, error))
		goto out;
	if (guestfs_rename(g, tmp, target) < 0) {
		lgd_session_set_error_from_guestfs(session, error, path);
		goto out;
	}
	ok = TRUE;
out:
	if (!ok)
		guestfs_rm_f(g, tmp);
	if (guestfs_sync(g) < 0 && ok) {
		lgd_session_set_error_from_guestfs(session, error, "Cannot sync");
		ok = FALSE;
	}
	return ok;
}
