#include "config.h"

#include <libvirt/virterror.h>
#include <string.h>
#include <sys/stat.h>

#include "lgd-error.h"
#include "lgd-identity.h"
#include "lgd-libvirt.h"

/* Longer chains than this are refused: qemu's own limit is in the same
 * range, and a chain is walked with one libvirt call per image. */
#define LGD_MAX_CHAIN 16

/* Disks, CD-ROMs and floppies with a medium: what an appliance gets. */
gboolean
lgd_disk_is_drive(const LgdDisk *disk)
{
	if (g_strcmp0(disk->device, "disk") != 0 && g_strcmp0(disk->device, "cdrom") != 0 &&
	    g_strcmp0(disk->device, "floppy") != 0)
		return FALSE;
	return disk->path != NULL || disk->volume != NULL || disk->name != NULL;
}

/* The host path of a disk, or NULL (with @error) when the appliance cannot
 * use it: network disks, volumes that do not resolve. */
gchar *
lgd_disk_host_path(virConnectPtr conn, const LgdDisk *disk, GError **error)
{
	g_autoptr(virStoragePool) pool = NULL;
	g_autoptr(virStorageVol) vol = NULL;
	gchar *path = NULL;

	if (disk->path != NULL)
		return g_strdup(disk->path);
	if (disk->pool == NULL || disk->volume == NULL) {
		g_set_error(error, LGD_ERROR, LGD_ERROR_NOT_SUPPORTED,
			    "disk %s (%s) has no local source the appliance can open", disk->target,
			    disk->type != NULL ? disk->type : "unknown type");
		return NULL;
	}
	pool = virStoragePoolLookupByName(conn, disk->pool);
	if (pool != NULL)
		vol = virStorageVolLookupByName(pool, disk->volume);
	if (vol != NULL)
		path = virStorageVolGetPath(vol);
	if (path == NULL)
		lgd_error_set_from_libvirt(error, "disk %s: volume %s of pool %s", disk->target,
					   disk->volume, disk->pool);
	return path;
}

/* Appends to @chain the backing files of @vol, top first, as libvirt
 * declares them (<backingStore> of each volume's XML). Each must itself be
 * a volume of an active pool on the same connection: otherwise launching
 * an appliance on @vol would make libvirt open, and relabel for qemu, a
 * host file that a guest named by writing a qcow2 header into its disk.
 * Fails with NotSupported then, before anything is opened. */
gboolean
lgd_volume_check_backing(virConnectPtr conn, virStorageVolPtr vol, GPtrArray *chain, GError **error)
{
	const gchar *name = virStorageVolGetKey(vol);
	virStorageVolPtr current = vol;
	gboolean ok = FALSE;

	virStorageVolRef(current);
	for (guint depth = 0;; depth++) {
		g_autofree gchar *xml = virStorageVolGetXMLDesc(current, 0);
		g_autofree gchar *backing = NULL;
		gboolean has_backing = FALSE;
		virStorageVolPtr next;

		if (xml == NULL) {
			lgd_error_set_from_libvirt(error, "Cannot read volume %s", name);
			break;
		}
		backing = lgd_volume_xml_backing(xml, &has_backing);
		if (!has_backing) {
			ok = TRUE;
			break;
		}
		if (backing == NULL || strstr(backing, "://") != NULL) {
			g_set_error(error, LGD_ERROR, LGD_ERROR_NOT_SUPPORTED,
				    "Volume %s has a backing file that is not a local file; "
				    "only volumes whose backing chain is made of storage volumes "
				    "can be opened",
				    name);
			break;
		}
		if (depth >= LGD_MAX_CHAIN) {
			g_set_error(error, LGD_ERROR, LGD_ERROR_NOT_SUPPORTED,
				    "Volume %s has a backing chain longer than %d images", name,
				    LGD_MAX_CHAIN);
			break;
		}
		next = virStorageVolLookupByPath(conn, backing);
		if (next == NULL) {
			if (virGetLastErrorCode() != VIR_ERR_NO_STORAGE_VOL) {
				lgd_error_set_from_libvirt(error, "Volume %s: backing file %s",
							   name, backing);
				break;
			}
			g_set_error(
			    error, LGD_ERROR, LGD_ERROR_NOT_SUPPORTED,
			    "Volume %s is backed by %s, which is not a volume of an active "
			    "storage pool; refusing to open it (a backing file named in an "
			    "image header is not trusted: put the backing file in a storage "
			    "pool, or rebase the volume with qemu-img)",
			    name, backing);
			break;
		}
		if (chain != NULL)
			g_ptr_array_add(chain, g_strdup(backing));
		virStorageVolFree(current);
		current = next;
	}
	virStorageVolFree(current);
	return ok;
}

static void
lgd_identity_add_file(GString *id, const gchar *path)
{
	struct stat st;

	/* stat() opens nothing: a FIFO or device named here cannot block us */
	if (stat(path, &st) < 0) {
		g_string_append_printf(id, "%s:missing;", path);
		return;
	}
	g_string_append_printf(
	    id, "%s:%" G_GUINT64_FORMAT ":%" G_GUINT64_FORMAT ":%lld.%09ld:%lld;", path,
	    (guint64)st.st_dev, (guint64)st.st_ino, (long long)st.st_mtim.tv_sec,
	    st.st_mtim.tv_nsec, (long long)st.st_size);
}

/* Adds @path and, when it is a storage volume read in a format that can
 * have one, its backing chain. FALSE when the chain cannot be known. */
static gboolean
lgd_identity_add_image(GString *id, virConnectPtr conn, const gchar *path, const gchar *format)
{
	g_autoptr(GPtrArray) chain = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(virStorageVol) vol = NULL;
	gboolean ok;

	lgd_identity_add_file(id, path);
	if (format == NULL || g_str_equal(format, "raw"))
		return TRUE; /* read as raw: no backing file, whatever it holds */
	vol = virStorageVolLookupByPath(conn, path);
	if (vol == NULL)
		return TRUE; /* not in a pool: libvirt declares no chain for it */
	ok = lgd_volume_check_backing(conn, vol, chain, NULL);
	for (guint i = 0; ok && i < chain->len; i++)
		lgd_identity_add_file(id, g_ptr_array_index(chain, i));
	return ok;
}

/* What identifies the contents of a shut-off domain's disks; NULL when it
 * cannot be known: the domain runs (its disks change under us), or a disk
 * is not local. The same at start-up and at call time. */
gchar *
lgd_identity_of_domain(virConnectPtr conn, const LgdDomainXml *info)
{
	g_autoptr(GString) id = g_string_new(NULL);
	guint n = 0;

	if (info->has_id)
		return NULL;
	for (guint i = 0; i < info->disks->len; i++) {
		const LgdDisk *disk = g_ptr_array_index(info->disks, i);
		g_autofree gchar *path = NULL;

		if (!lgd_disk_is_drive(disk))
			continue;
		path = lgd_disk_host_path(conn, disk, NULL);
		if (path == NULL)
			return NULL; /* a network disk: its contents are unknowable */
		if (!lgd_identity_add_image(id, conn, path, disk->format))
			return NULL;
		n++;
	}
	return n > 0 ? g_string_free(g_steal_pointer(&id), FALSE) : NULL;
}

gchar *
lgd_identity_of_volume(virConnectPtr conn, virStorageVolPtr vol)
{
	g_autoptr(GString) id = g_string_new(NULL);
	g_autoptr(GPtrArray) chain = g_ptr_array_new_with_free_func(g_free);
	g_autofree gchar *path = virStorageVolGetPath(vol);

	if (path == NULL || !lgd_volume_check_backing(conn, vol, chain, NULL))
		return NULL;
	lgd_identity_add_file(id, path);
	for (guint i = 0; i < chain->len; i++)
		lgd_identity_add_file(id, g_ptr_array_index(chain, i));
	return g_string_free(g_steal_pointer(&id), FALSE);
}
