#include "config.h"

#include "lgd-error.h"
#include "lgd-volume.h"
#include "lgd-xml.h"

gboolean
lgd_volume_read(
    LgdDBusVolume *iface, virStorageVolPtr vol, const gchar *pool, const gchar *uri, GError **error)
{
	const char *name = virStorageVolGetName(vol);
	const char *key = virStorageVolGetKey(vol);
	g_autofree gchar *path = NULL;
	g_autofree gchar *xml = NULL;
	g_autofree gchar *format = NULL;
	virStorageVolInfo info;

	path = virStorageVolGetPath(vol);
	if (path == NULL || virStorageVolGetInfo(vol, &info) < 0) {
		lgd_error_set_from_libvirt(error, "cannot read volume %s of pool %s", name, pool);
		return FALSE;
	}
	xml = virStorageVolGetXMLDesc(vol, 0);
	if (xml == NULL) {
		lgd_error_set_from_libvirt(error, "cannot read volume %s of pool %s", name, pool);
		return FALSE;
	}
	format = lgd_volume_xml_format(xml);

	lgd_dbus_volume_set_name(iface, name);
	lgd_dbus_volume_set_key(iface, key);
	lgd_dbus_volume_set_path(iface, path);
	lgd_dbus_volume_set_pool(iface, pool);
	lgd_dbus_volume_set_format(iface, format != NULL ? format : "");
	lgd_dbus_volume_set_capacity(iface, info.capacity);
	lgd_dbus_volume_set_allocation(iface, info.allocation);
	lgd_dbus_volume_set_connection(iface, uri);
	return TRUE;
}
