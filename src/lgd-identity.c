#include "config.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lgd-identity.h"

#define LGD_QCOW2_MAGIC 0x514649fbu /* "QFI\xfb" */
#define LGD_MAX_CHAIN 16
#define LGD_MAX_BACKING_NAME 1023

static guint64
lgd_be64(const guint8 *p)
{
	guint64 v = 0;
	for (guint i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

static guint32
lgd_be32(const guint8 *p)
{
	return ((guint32)p[0] << 24) | ((guint32)p[1] << 16) | ((guint32)p[2] << 8) | p[3];
}

/* The backing file named in a qcow2 header, resolved against the image's
 * directory as qemu does; NULL for other files and qcow2 without one. */
gchar *
lgd_identity_qcow2_backing(const gchar *path)
{
	guint8 header[20];
	g_autofree gchar *name = NULL;
	guint64 offset;
	guint32 size;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return NULL;
	if (pread(fd, header, sizeof(header), 0) != (ssize_t)sizeof(header) ||
	    lgd_be32(header) != LGD_QCOW2_MAGIC) {
		close(fd);
		return NULL;
	}
	offset = lgd_be64(header + 8);
	size = lgd_be32(header + 16);
	if (offset == 0 || size == 0 || size > LGD_MAX_BACKING_NAME) {
		close(fd);
		return NULL;
	}
	name = g_malloc0(size + 1);
	if (pread(fd, name, size, (off_t)offset) != (ssize_t)size) {
		close(fd);
		return NULL;
	}
	close(fd);
	if (strstr(name, "://") != NULL || g_path_is_absolute(name))
		return g_steal_pointer(&name);
	{
		g_autofree gchar *dir = g_path_get_dirname(path);
		return g_build_filename(dir, name, NULL);
	}
}

static void
lgd_identity_add_file(GString *id, const gchar *path)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		g_string_append_printf(id, "%s:missing;", path);
		return;
	}
	g_string_append_printf(
	    id, "%s:%" G_GUINT64_FORMAT ":%" G_GUINT64_FORMAT ":%lld.%09ld:%lld;", path,
	    (guint64)st.st_dev, (guint64)st.st_ino, (long long)st.st_mtim.tv_sec,
	    st.st_mtim.tv_nsec, (long long)st.st_size);
}

/* A change to any image of a chain changes the guest's disks. */
gchar *
lgd_identity_of_paths(GPtrArray *paths)
{
	GString *id = g_string_new(NULL);

	for (guint i = 0; i < paths->len; i++) {
		g_autofree gchar *current = g_strdup(g_ptr_array_index(paths, i));

		for (guint depth = 0; current != NULL && depth < LGD_MAX_CHAIN; depth++) {
			gchar *next;

			if (strstr(current, "://") != NULL) {
				/* a network backing file: its contents are unknowable */
				g_string_free(id, TRUE);
				return NULL;
			}
			lgd_identity_add_file(id, current);
			next = lgd_identity_qcow2_backing(current);
			g_free(current);
			current = next;
		}
	}
	return g_string_free(id, FALSE);
}
