#include "config.h"

#include <errno.h>
#include <libvirt/virterror.h>

#include "lgd-error.h"

static const GDBusErrorEntry lgd_error_entries[] = {
    {LGD_ERROR_FAILED, "org.libvirt.GuestFS.Error.Failed"},
    {LGD_ERROR_INVALID_ARGUMENT, "org.libvirt.GuestFS.Error.InvalidArgument"},
    {LGD_ERROR_NOT_FOUND, "org.libvirt.GuestFS.Error.NotFound"},
    {LGD_ERROR_NOT_AUTHORIZED, "org.libvirt.GuestFS.Error.NotAuthorized"},
    {LGD_ERROR_DOMAIN_RUNNING, "org.libvirt.GuestFS.Error.DomainRunning"},
    {LGD_ERROR_IN_USE, "org.libvirt.GuestFS.Error.InUse"},
    {LGD_ERROR_APPLIANCE_FAILED, "org.libvirt.GuestFS.Error.ApplianceFailed"},
    {LGD_ERROR_TOO_LARGE, "org.libvirt.GuestFS.Error.TooLarge"},
    {LGD_ERROR_CANCELLED, "org.libvirt.GuestFS.Error.Cancelled"},
    {LGD_ERROR_NOT_SUPPORTED, "org.libvirt.GuestFS.Error.NotSupported"},
    {LGD_ERROR_UNAVAILABLE, "org.libvirt.GuestFS.Error.Unavailable"},
    {LGD_ERROR_AUTHORIZATION_FAILED, "org.libvirt.GuestFS.Error.AuthorizationFailed"},
    {LGD_ERROR_BUSY, "org.libvirt.GuestFS.Error.Busy"},
};

G_STATIC_ASSERT(G_N_ELEMENTS(lgd_error_entries) == LGD_ERROR_LAST);

GQuark
lgd_error_quark(void)
{
	static gsize quark = 0;
	g_dbus_error_register_error_domain("lgd-error-quark", &quark, lgd_error_entries,
					   G_N_ELEMENTS(lgd_error_entries));
	return (GQuark)quark;
}

const gchar *
lgd_error_to_dbus_name(LgdError code)
{
	g_return_val_if_fail(code < LGD_ERROR_LAST, NULL);
	return lgd_error_entries[code].dbus_error_name;
}

LgdError
lgd_error_code_from_libvirt(int vir_error_code)
{
	switch (vir_error_code) {
	case VIR_ERR_NO_DOMAIN:
	case VIR_ERR_NO_STORAGE_POOL:
	case VIR_ERR_NO_STORAGE_VOL:
	case VIR_ERR_NO_SECRET:
		return LGD_ERROR_NOT_FOUND;
	case VIR_ERR_INVALID_ARG:
	case VIR_ERR_XML_ERROR:
	case VIR_ERR_XML_DETAIL:
		return LGD_ERROR_INVALID_ARGUMENT;
	case VIR_ERR_AUTH_FAILED:
	case VIR_ERR_AUTH_CANCELLED:
	case VIR_ERR_AUTH_UNAVAILABLE:
	case VIR_ERR_ACCESS_DENIED:
		return LGD_ERROR_NOT_AUTHORIZED;
	case VIR_ERR_NO_SUPPORT:
	case VIR_ERR_ARGUMENT_UNSUPPORTED:
		return LGD_ERROR_NOT_SUPPORTED;
	case VIR_ERR_NO_CONNECT:
	case VIR_ERR_INVALID_CONN:
	case VIR_ERR_RPC:
	case VIR_ERR_SYSTEM_ERROR:
		return LGD_ERROR_UNAVAILABLE;
	case VIR_ERR_RESOURCE_BUSY:
		return LGD_ERROR_IN_USE;
	case VIR_ERR_OPERATION_ABORTED:
		return LGD_ERROR_CANCELLED;
	default:
		return LGD_ERROR_FAILED;
	}
}

LgdError
lgd_error_code_from_errno(int errnum)
{
	switch (errnum) {
	case ENOENT:
	case ESRCH:
		return LGD_ERROR_NOT_FOUND;
	case EINVAL:
	case EISDIR:
	case ENOTDIR:
	case ENAMETOOLONG:
	case EBADF:
	case ELOOP:
	case EEXIST:
	case ENOTEMPTY:
		return LGD_ERROR_INVALID_ARGUMENT;
	case EFBIG:
	case E2BIG:
	case ENOSPC:
		return LGD_ERROR_TOO_LARGE;
	case EBUSY:
	case ETXTBSY:
		return LGD_ERROR_IN_USE;
	case ECANCELED:
	case EPIPE:
		return LGD_ERROR_CANCELLED;
	case ENOTSUP:
		return LGD_ERROR_NOT_SUPPORTED;
	default:
		return LGD_ERROR_FAILED;
	}
}

static LgdError
lgd_error_code_from_gio(gint code)
{
	switch (code) {
	case G_IO_ERROR_NOT_FOUND:
		return LGD_ERROR_NOT_FOUND;
	case G_IO_ERROR_INVALID_ARGUMENT:
	case G_IO_ERROR_INVALID_FILENAME:
	case G_IO_ERROR_IS_DIRECTORY:
	case G_IO_ERROR_NOT_DIRECTORY:
	case G_IO_ERROR_NOT_REGULAR_FILE:
	case G_IO_ERROR_FILENAME_TOO_LONG:
	case G_IO_ERROR_EXISTS:
	case G_IO_ERROR_NOT_EMPTY:
	case G_IO_ERROR_INVALID_DATA:
		return LGD_ERROR_INVALID_ARGUMENT;
	case G_IO_ERROR_PERMISSION_DENIED:
		return LGD_ERROR_NOT_AUTHORIZED;
	case G_IO_ERROR_CANCELLED:
	case G_IO_ERROR_BROKEN_PIPE:
		return LGD_ERROR_CANCELLED;
	case G_IO_ERROR_NOT_SUPPORTED:
		return LGD_ERROR_NOT_SUPPORTED;
	case G_IO_ERROR_BUSY:
		return LGD_ERROR_IN_USE;
	case G_IO_ERROR_NO_SPACE:
	case G_IO_ERROR_MESSAGE_TOO_LARGE:
		return LGD_ERROR_TOO_LARGE;
	default:
		return LGD_ERROR_FAILED;
	}
}

static LgdError
lgd_error_code_from_dbus(gint code)
{
	switch (code) {
	case G_DBUS_ERROR_INVALID_ARGS:
	case G_DBUS_ERROR_UNKNOWN_METHOD:
	case G_DBUS_ERROR_UNKNOWN_PROPERTY:
		return LGD_ERROR_INVALID_ARGUMENT;
	case G_DBUS_ERROR_ACCESS_DENIED:
	case G_DBUS_ERROR_AUTH_FAILED:
		return LGD_ERROR_NOT_AUTHORIZED;
	case G_DBUS_ERROR_NOT_SUPPORTED:
		return LGD_ERROR_NOT_SUPPORTED;
	case G_DBUS_ERROR_SERVICE_UNKNOWN:
	case G_DBUS_ERROR_NAME_HAS_NO_OWNER:
	case G_DBUS_ERROR_NO_SERVER:
	case G_DBUS_ERROR_DISCONNECTED:
		return LGD_ERROR_UNAVAILABLE;
	default:
		return LGD_ERROR_FAILED;
	}
}

/* Rewrites any error into LGD_ERROR, keeping its message. */
void
lgd_error_convert(GError **error)
{
	GError *err;
	LgdError code;

	if (error == NULL || *error == NULL)
		return;
	err = *error;
	if (err->domain == LGD_ERROR)
		return;
	if (err->domain == G_IO_ERROR)
		code = lgd_error_code_from_gio(err->code);
	else if (err->domain == G_DBUS_ERROR)
		code = lgd_error_code_from_dbus(err->code);
	else if (err->domain == G_FILE_ERROR)
		code = lgd_error_code_from_gio(g_io_error_from_file_error(err->code));
	else
		code = LGD_ERROR_FAILED;
	err->domain = LGD_ERROR;
	err->code = code;
}

void
lgd_error_set_from_libvirt(GError **error, const gchar *format, ...)
{
	const virError *last = virGetLastError();
	g_autofree gchar *context = NULL;
	va_list args;

	va_start(args, format);
	context = g_strdup_vprintf(format, args);
	va_end(args);

	if (last == NULL) {
		g_set_error(error, LGD_ERROR, LGD_ERROR_FAILED, "%s: unknown libvirt error",
			    context);
		return;
	}
	g_set_error(error, LGD_ERROR, lgd_error_code_from_libvirt(last->code), "%s: %s", context,
		    last->message != NULL ? last->message : "unknown libvirt error");
}

/* The one exit for errors: takes ownership of @error. */
void
lgd_error_return(GDBusMethodInvocation *invocation, GError *error)
{
	lgd_error_convert(&error);
	g_dbus_method_invocation_take_error(invocation, error);
}
