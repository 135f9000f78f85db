#include "config.h"

#include "lgd-batch.h"
#include "lgd-connection.h"
#include "lgd-error.h"
#include "lgd-manager.h"
#include "lgd-path.h"

/* What the handlers need; owned by the interface. */
typedef struct {
	GPtrArray *connections; /* of LgdConnection */
	LgdContext *context;
} LgdManagerData;

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

static gboolean
lgd_manager_handle_lookup_domain(LgdDBusManager *iface,
				 GDBusMethodInvocation *invocation,
				 const gchar *name_or_uuid,
				 gpointer user_data)
{
	LgdManagerData *data = user_data;
	GError *error = NULL;
	const gchar *path = lgd_manager_lookup(data->connections, "domain", name_or_uuid,
					       lgd_connection_lookup_domain_uuid,
					       lgd_connection_lookup_domain_name, &error);

	if (path == NULL)
		lgd_error_return(invocation, error);
	else
		lgd_dbus_manager_complete_lookup_domain(iface, invocation, path);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
lgd_manager_handle_lookup_volume(LgdDBusManager *iface,
				 GDBusMethodInvocation *invocation,
				 const gchar *path_or_key,
				 gpointer user_data)
{
	LgdManagerData *data = user_data;
	GError *error = NULL;
	const gchar *path = lgd_manager_lookup(data->connections, "volume", path_or_key,
					       lgd_connection_lookup_volume_key,
					       lgd_connection_lookup_volume_path, &error);

	if (path == NULL)
		lgd_error_return(invocation, error);
	else
		lgd_dbus_manager_complete_lookup_volume(iface, invocation, path);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
lgd_manager_handle_inspect_domains(LgdDBusManager *iface,
				   GDBusMethodInvocation *invocation,
				   const gchar *const *objects,
				   GVariant *options,
				   gpointer user_data)
{
	LgdManagerData *data = user_data;

	lgd_batch_inspect(data->context, data->connections, invocation, objects, options);
	return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* @connections (of LgdConnection) and @context must outlive the returned
 * object. */
LgdDBusObjectSkeleton *
lgd_manager_new(GPtrArray *connections, LgdContext *context)
{
	LgdDBusObjectSkeleton *object = lgd_dbus_object_skeleton_new(LGD_MANAGER_PATH);
	g_autoptr(LgdDBusManager) iface = lgd_dbus_manager_skeleton_new();
	g_autoptr(GPtrArray) uris = g_ptr_array_new();
	LgdManagerData *data = g_new0(LgdManagerData, 1);

	for (guint i = 0; i < connections->len; i++)
		g_ptr_array_add(
		    uris, (gpointer)lgd_connection_get_uri(g_ptr_array_index(connections, i)));
	g_ptr_array_add(uris, NULL);

	lgd_dbus_manager_set_version(iface, VERSION);
	lgd_dbus_manager_set_connections(iface, (const gchar *const *)uris->pdata);
	data->connections = connections;
	data->context = context;
	g_object_set_data_full(G_OBJECT(iface), "lgd-manager-data", data, g_free);
	g_signal_connect(iface, "handle-lookup-domain",
			 G_CALLBACK(lgd_manager_handle_lookup_domain), data);
	g_signal_connect(iface, "handle-lookup-volume",
			 G_CALLBACK(lgd_manager_handle_lookup_volume), data);
	g_signal_connect(iface, "handle-inspect-domains",
			 G_CALLBACK(lgd_manager_handle_inspect_domains), data);
	lgd_dbus_object_skeleton_set_manager(object, iface);
	return object;
}
