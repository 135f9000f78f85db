#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "lgd-error.h"
#include "lgd-mount.h"

/* A copy of @strv as libguestfs allocates its string lists. */
static char **
lgd_mount_strv_copy(const gchar *const *strv)
{
	guint n = g_strv_length((gchar **)strv);
	char **copy = calloc(n + 1, sizeof(char *));

	g_assert(copy != NULL);
	for (guint i = 0; i < n; i++) {
		copy[i] = strdup(strv[i]);
		g_assert(copy[i] != NULL);
	}
	return copy;
}

/* The roots of this appliance's inspection, inspecting first if this
 * appliance has not (a cached Inspect may have come from an earlier one).
 * Roots found are kept by the session until the next inspection, unmount
 * or relaunch: only an inspection changes what libguestfs answers. */
static char **
lgd_mount_roots(LgdSession *session, guestfs_h *g, GError **error)
{
	const gchar *const *kept = lgd_session_get_roots(session);
	char **roots;

	if (kept != NULL)
		return lgd_mount_strv_copy(kept);
	roots = guestfs_inspect_get_roots(g);
	if (roots != NULL && roots[0] == NULL) {
		lgd_strv_free(roots);
		roots = guestfs_inspect_os(g);
		lgd_session_set_mount_tag(session, NULL); /* it unmounts all */
	}
	if (roots == NULL)
		lgd_session_set_error_from_guestfs(session, error, "Inspection failed");
	else if (roots[0] != NULL)
		/* none found: inspected again next time, as before (a write may
		 * have made one) */
		lgd_session_set_roots(session, (const gchar *const *)roots);
	return roots;
}

/* Picks @root, or the only operating system when none is named. */
static gchar *
lgd_mount_choose_root(LgdSession *session, guestfs_h *g, const gchar *root, GError **error)
{
	g_auto(LgdStrv) roots = lgd_mount_roots(session, g, error);
	g_autofree gchar *list = NULL;
	gchar *chosen = NULL;
	guint n;

	if (roots == NULL)
		return NULL;
	n = g_strv_length(roots);
	for (guint i = 0; root != NULL && i < n; i++) {
		if (strcmp(roots[i], root) == 0)
			chosen = g_strdup(root);
	}
	if (root == NULL && n == 1)
		chosen = g_strdup(roots[0]);
	list = g_strjoinv(", ", roots);
	if (chosen != NULL)
		return chosen;
	if (root != NULL)
		g_set_error(error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT,
			    "'%s' is not an operating system root of this object (roots: %s)", root,
			    n > 0 ? list : "none");
	else if (n == 0)
		g_set_error_literal(error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT,
				    "No operating system was found on these disks; name a "
				    "filesystem to mount with the 'filesystem' option");
	else
		g_set_error(error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT,
			    "These disks hold %u operating systems; choose one with the 'root' "
			    "option (%s)",
			    n, list);
	return NULL;
}

static gint
lgd_mount_compare_length(gconstpointer a, gconstpointer b)
{
	const gchar *const *pa = a;
	const gchar *const *pb = b;
	return (gint)strlen(pa[0]) - (gint)strlen(pb[0]);
}

static gboolean
lgd_mount_one(guestfs_h *g, const gchar *device, const gchar *where, gboolean rw)
{
	return (rw ? guestfs_mount(g, device, where) : guestfs_mount_ro(g, device, where)) == 0;
}

/* Parents first. A filesystem that does not mount is left out, as
 * virt-inspector does; only "/" is required. */
static gboolean
lgd_mount_root(LgdSession *session, guestfs_h *g, const gchar *root, gboolean rw, GError **error)
{
	g_auto(LgdStrv) mps = guestfs_inspect_get_mountpoints(g, root);
	guint n = 0;

	if (mps == NULL) {
		lgd_session_set_error_from_guestfs(session, error, "Cannot read mount points");
		return FALSE;
	}
	while (mps[n] != NULL)
		n += 2;
	qsort(mps, n / 2, 2 * sizeof(char *), lgd_mount_compare_length);
	for (guint i = 0; i < n; i += 2) {
		if (!lgd_mount_one(g, mps[i + 1], mps[i], rw) && strcmp(mps[i], "/") == 0) {
			lgd_session_set_error_from_guestfs(session, error,
							   "Cannot mount the root filesystem");
			return FALSE;
		}
	}
	return TRUE;
}

/* Only what ListFilesystems lists is mounted for the 'filesystem' option:
 * never the appliance's own disk, nor whatever other name the appliance's
 * kernel happens to know. Aliases (/dev/vda1, /dev/hda1) are taken. */
static gboolean
lgd_mount_check_filesystem(LgdSession *session,
			   guestfs_h *g,
			   const gchar *filesystem,
			   GError **error)
{
	g_autofree gchar *canonical = guestfs_canonical_device_name(g, filesystem);
	gboolean found = FALSE;
	g_auto(LgdStrv) listed = NULL;

	if (canonical == NULL) {
		lgd_session_set_error_from_guestfs(session, error, "Cannot read the device name");
		return FALSE;
	}
	listed = guestfs_list_filesystems(g);
	if (listed == NULL) {
		lgd_session_set_error_from_guestfs(session, error, "Cannot list the filesystems");
		return FALSE;
	}
	for (guint i = 0; listed[i] != NULL && listed[i + 1] != NULL && !found; i += 2)
		found = strcmp(listed[i], canonical) == 0;
	if (!found)
		g_set_error(error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT,
			    "'%s' is not a filesystem of this guest's disks (ListFilesystems lists "
			    "them)",
			    filesystem);
	return found;
}

/* Mounts what @call names (lgd_call_filesystem() and lgd_call_root()):
 * the filesystem alone at "/", or else the operating system (or the only
 * one) as the guest does, read-write when @rw. What is mounted
 * stays mounted for the next call that wants the same. Writes mount
 * read-only until their checks pass: mounting read-write changes the
 * filesystem (mount count and times), and a refused call must not. */
gboolean
lgd_mount_guest(LgdSession *session, guestfs_h *g, LgdCall *call, gboolean rw, GError **error)
{
	const gchar *root = lgd_call_root(call);
	const gchar *filesystem = lgd_call_filesystem(call);
	g_autofree gchar *chosen = NULL;
	g_autofree gchar *tag = NULL;
	g_autofree gchar *tag_rw = NULL;

	if (rw && !lgd_session_is_read_write(session)) {
		g_set_error_literal(error, LGD_ERROR, LGD_ERROR_FAILED,
				    "Internal error: a read-write mount on a read-only appliance");
		return FALSE;
	}
	if (filesystem == NULL) {
		chosen = lgd_mount_choose_root(session, g, root, error);
		if (chosen == NULL)
			return FALSE;
	}
	tag = g_strdup_printf("%s:%s:%s", filesystem != NULL ? "fs" : "os",
			      filesystem != NULL ? filesystem : chosen, rw ? "rw" : "ro");
	tag_rw = g_strdup_printf("%s:%s:rw", filesystem != NULL ? "fs" : "os",
				 filesystem != NULL ? filesystem : chosen);
	/* what is mounted read-write serves reads as well */
	if (g_strcmp0(tag, lgd_session_get_mount_tag(session)) == 0 ||
	    g_strcmp0(tag_rw, lgd_session_get_mount_tag(session)) == 0)
		return TRUE;
	lgd_mount_release(session, g);
	if (filesystem != NULL) {
		if (!lgd_mount_check_filesystem(session, g, filesystem, error))
			return FALSE;
		if (!lgd_mount_one(g, filesystem, "/", rw)) {
			g_set_error(error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT,
				    "Cannot mount filesystem '%s': %s (ListFilesystems lists them)",
				    filesystem, guestfs_last_error(g));
			return FALSE;
		}
	} else if (!lgd_mount_root(session, g, chosen, rw, error)) {
		lgd_mount_release(session, g);
		return FALSE;
	}
	lgd_session_set_mount_tag(session, tag);
	return TRUE;
}

/* Unmounts everything, for callers that mount on their own. */
void
lgd_mount_release(LgdSession *session, guestfs_h *g)
{
	guestfs_umount_all(g);
	lgd_session_set_mount_tag(session, NULL);
}
