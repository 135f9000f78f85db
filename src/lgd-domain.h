/* Reads a libvirt domain into its org.libvirt.GuestFS.Domain interface. */
#pragma once

#include <libvirt/libvirt.h>

#include "lgd-generated.h"

G_BEGIN_DECLS

typedef enum {
	LGD_DOMAIN_READ_OK,
	LGD_DOMAIN_READ_GONE,	   /* undefined meanwhile */
	LGD_DOMAIN_READ_APPLIANCE, /* libguestfs's own: never published */
	LGD_DOMAIN_READ_FAILED,
} LgdDomainRead;

LgdDomainRead lgd_domain_read(LgdDBusDomain *iface,
			      virDomainPtr dom,
			      const gchar *uri,
			      gint persistent,
			      const gchar *prefetched,
			      gchar **identity,
			      GError **error);

G_END_DECLS
