#include "config.h"

#include <libvirt/virterror.h>

#include "lgd-error.h"
#include "lgd-libvirt.h"

/* A peer that stops answering is given up on after about 20 s instead of
 * hanging whoever waits on it. */
#define LGD_KEEPALIVE_INTERVAL 5
#define LGD_KEEPALIVE_COUNT 3

/* Keepalive needs an event loop to send its pings from: the daemon
 * registers libvirt-glib's (main.c) before it connects anywhere. Where
 * there is none (unit tests) or the driver has no keepalive (test:///,
 * the local drivers), libvirtd exiting is still seen as EOF: that
 * failure is not one. */
virConnectPtr
lgd_libvirt_connect(const gchar *uri, GError **error)
{
	virConnectPtr conn = virConnectOpen(uri);

	if (conn == NULL) {
		lgd_error_set_from_libvirt(error, "Cannot connect to %s", uri);
		return NULL;
	}
	if (virConnectSetKeepAlive(conn, LGD_KEEPALIVE_INTERVAL, LGD_KEEPALIVE_COUNT) < 0)
		virResetLastError();
	return conn;
}
