#include "config.h"

#include <libvirt/virterror.h>

#include "lgd-domain.h"
#include "lgd-error.h"
#include "lgd-identity.h"
#include "lgd-xml.h"

/* Fills @iface from @dom. @persistent is -1 when the caller does not know
 * it already (listing persistent and transient domains separately saves a
 * round trip per domain at start-up). Setting an unchanged property emits
 * nothing; a changed one is sent in one PropertiesChanged signal.
 * @prefetched is the definition when the caller has it already. When
 * @identity is given, it receives what identifies the disks' contents. */
LgdDomainRead
lgd_domain_read(LgdDBusDomain *iface,
		virDomainPtr dom,
		const gchar *uri,
		gint persistent,
		const gchar *prefetched,
		gchar **identity,
		GError **error)
{
	char uuid[VIR_UUID_STRING_BUFLEN];
	g_autofree gchar *xml = NULL;
	g_autoptr(LgdDomainXml) info = NULL;

	if (virDomainGetUUIDString(dom, uuid) < 0) {
		lgd_error_set_from_libvirt(error, "cannot read a domain UUID");
		return LGD_DOMAIN_READ_FAILED;
	}
	xml = prefetched != NULL ? g_strdup(prefetched) : virDomainGetXMLDesc(dom, 0);
	if (xml == NULL) {
		if (virGetLastErrorCode() == VIR_ERR_NO_DOMAIN)
			return LGD_DOMAIN_READ_GONE;
		lgd_error_set_from_libvirt(error, "cannot read the definition of domain %s", uuid);
		return LGD_DOMAIN_READ_FAILED;
	}
	info = lgd_domain_xml_parse(xml, error);
	if (info == NULL)
		return LGD_DOMAIN_READ_FAILED;
	if (persistent < 0) {
		persistent = virDomainIsPersistent(dom);
		if (persistent < 0) {
			if (virGetLastErrorCode() == VIR_ERR_NO_DOMAIN)
				return LGD_DOMAIN_READ_GONE;
			lgd_error_set_from_libvirt(error, "cannot read domain %s", uuid);
			return LGD_DOMAIN_READ_FAILED;
		}
	}
	/* libguestfs's appliances are transient; a persistent domain that
	 * merely looks like one is somebody's */
	if (info->is_appliance && persistent == 0)
		return LGD_DOMAIN_READ_APPLIANCE;

	lgd_dbus_domain_set_name(iface, info->name != NULL ? info->name : virDomainGetName(dom));
	lgd_dbus_domain_set_uuid(iface, uuid);
	lgd_dbus_domain_set_active(iface, info->has_id);
	lgd_dbus_domain_set_persistent(iface, persistent != 0);
	lgd_dbus_domain_set_connection(iface, uri);
	lgd_dbus_domain_set_disks(iface, lgd_disks_to_variant(info->disks));
	if (identity != NULL)
		*identity = lgd_identity_of_domain(virDomainGetConnect(dom), info);
	return LGD_DOMAIN_READ_OK;
}
