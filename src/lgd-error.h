/*
 * One error domain for everything a client can see. Every error leaves the
 * service through lgd_error_return() so that no libvirt, libguestfs or GIO
 * error reaches a client as an unmapped GError.
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define LGD_ERROR (lgd_error_quark())

typedef enum {
	LGD_ERROR_FAILED,
	LGD_ERROR_INVALID_ARGUMENT,
	LGD_ERROR_NOT_FOUND,
	LGD_ERROR_NOT_AUTHORIZED,
	LGD_ERROR_DOMAIN_RUNNING,
	LGD_ERROR_IN_USE,
	LGD_ERROR_APPLIANCE_FAILED,
	LGD_ERROR_TOO_LARGE,
	LGD_ERROR_CANCELLED,
	LGD_ERROR_NOT_SUPPORTED,
	LGD_ERROR_UNAVAILABLE,
	LGD_ERROR_AUTHORIZATION_FAILED,
	LGD_ERROR_BUSY,
	LGD_ERROR_LAST /*< skip >*/
} LgdError;

GQuark lgd_error_quark(void);

const gchar *lgd_error_to_dbus_name(LgdError code);

LgdError lgd_error_code_from_libvirt(int vir_error_code);

LgdError lgd_error_code_from_errno(int errnum);

void lgd_error_convert(GError **error);

void lgd_error_set_from_libvirt(GError **error, const gchar *format, ...) G_GNUC_PRINTF(2, 3);

void lgd_error_return(GDBusMethodInvocation *invocation, GError *error);

G_END_DECLS
