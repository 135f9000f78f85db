#include "config.h"

#include "lgd-batch.h"
#include "lgd-connection.h"
#include "lgd-error.h"
#include "lgd-impl.h"
#include "lgd-manager.h"
#include "lgd-path.h"

#define LGD_TYPE_MANAGER_IMPL (lgd_manager_impl_get_type())
G_DECLARE_FINAL_TYPE(LgdManagerImpl, lgd_manager_impl, LGD, MANAGER_IMPL, LgdDBusManagerSkeleton)

/* The implementation of org.libvirt.GuestFS.Manager. */
struct _LgdManagerImpl {
	LgdDBusManagerSkeleton parent_instance;
	GPtrArray *connections; /* of LgdConnection, not owned */
	LgdContext *context;
};

typedef const gchar *(*LgdLookupExact)(LgdConnection *conn, const gchar *id);
typedef GPtrArray *(*LgdLookupAll)(LgdConnection *conn, const gchar *id);

/* The shared rule of both look-ups: an exact identifier (UUID, key) wins;
 * otherwise the secondary one (name, path) must match exactly one object
 * across all connections. */
static const gchar *
lgd_manager_lookup(GPtrArray *connections,
		   const gchar *what,
		   const gchar *id,
		   LgdLookupExact exact,
		   LgdLookupAll all,
		   GError **error)
{
	g_autoptr(GPtrArray) found = g_ptr_array_new();

	if (id[0] == '\0') {
		g_set_error(error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT,
			    "An empty string names no %s", what);
		return NULL;
	}
	for (guint i = 0; i < connections->len; i++) {
		const gchar *path = exact(g_ptr_array_index(connections, i), id);
		if (path != NULL)
			return path;
	}
	for (guint i = 0; i < connections->len; i++) {
		g_autoptr(GPtrArray) paths = all(g_ptr_array_index(connections, i), id);
		g_ptr_array_extend(found, paths, NULL, NULL);
	}
	if (found->len == 0) {
		g_set_error(error, LGD_ERROR, LGD_ERROR_NOT_FOUND, "No %s '%s' is known", what, id);
		return NULL;
	}
	if (found->len > 1) {
		g_set_error(error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT,
			    "%u %ss match '%s' on different connections; look it up by "
			    "its unique identifier instead",
			    found->len, what, id);
		return NULL;
	}
	return g_ptr_array_index(found, 0);
}

/* LookupDomain and LookupVolume: the same rule on other identifiers. */
static gboolean
lgd_manager_handle_lookup(LgdDBusManager *iface, GDBusMethodInvocation *invocation, const gchar *id)
{
	LgdManagerImpl *self = LGD_MANAGER_IMPL(iface);
	gboolean domain =
	    g_str_equal(g_dbus_method_invocation_get_method_name(invocation), "LookupDomain");
	GError *error = NULL;
	const gchar *path = domain ? lgd_manager_lookup(self->connections, "domain", id,
							lgd_connection_lookup_domain_uuid,
							lgd_connection_lookup_domain_name, &error)
				   : lgd_manager_lookup(self->connections, "volume", id,
							lgd_connection_lookup_volume_key,
							lgd_connection_lookup_volume_path, &error);

	if (path == NULL)
		lgd_error_return(invocation, error);
	else if (domain)
		lgd_dbus_manager_complete_lookup_domain(iface, invocation, path);
	else
		lgd_dbus_manager_complete_lookup_volume(iface, invocation, path);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
lgd_manager_handle_inspect_domains(LgdDBusManager *iface,
				   GDBusMethodInvocation *invocation,
				   const gchar *const *objects,
				   GVariant *options)
{
	LgdManagerImpl *self = LGD_MANAGER_IMPL(iface);

	lgd_batch_inspect(iface, self->context, self->connections, invocation, objects, options);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static const LgdHandler lgd_manager_handlers[] = {
    LGD_HANDLER(Manager, lookup_domain, lgd_manager_handle_lookup),
    LGD_HANDLER(Manager, lookup_volume, lgd_manager_handle_lookup),
    LGD_HANDLER(Manager, inspect_domains, lgd_manager_handle_inspect_domains),
};

LGD_DEFINE_IMPL(LgdManagerImpl, lgd_manager_impl, MANAGER, LGD_HANDLERS(lgd_manager_handlers))

/* @connections (of LgdConnection) and @context must outlive the returned
 * object. */
LgdDBusObjectSkeleton *
lgd_manager_new(GPtrArray *connections, LgdContext *context)
{
	LgdDBusObjectSkeleton *object = lgd_dbus_object_skeleton_new(LGD_MANAGER_PATH);
	g_autoptr(LgdManagerImpl) iface = g_object_new(LGD_TYPE_MANAGER_IMPL, NULL);
	g_autoptr(GPtrArray) uris = g_ptr_array_new();

	for (guint i = 0; i < connections->len; i++)
		g_ptr_array_add(
		    uris, (gpointer)lgd_connection_get_uri(g_ptr_array_index(connections, i)));
	g_ptr_array_add(uris, NULL);

	lgd_dbus_manager_set_version(LGD_DBUS_MANAGER(iface), VERSION);
	lgd_dbus_manager_set_connections(LGD_DBUS_MANAGER(iface),
					 (const gchar *const *)uris->pdata);
	iface->connections = connections;
	iface->context = context;
	lgd_dbus_object_skeleton_set_manager(object, LGD_DBUS_MANAGER(iface));
	return object;
}
