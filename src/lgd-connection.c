#include "config.h"

#include <libvirt/libvirt.h>
#include <string.h>
#include <libvirt/virterror.h>

#include "lgd-connection.h"
#include "lgd-domain.h"
#include "lgd-error.h"
#include "lgd-generated.h"
#include "lgd-guest.h"
#include "lgd-identity.h"
#include "lgd-libvirt.h"
#include "lgd-path.h"
#include "lgd-volume.h"

/* How often to try again while libvirtd is away. */
#define LGD_RECONNECT_INTERVAL_MS 1000

struct _LgdConnection {
	GObject parent_instance;
	gchar *uri;
	gchar *prefix; /* object path element for this connection */
	GDBusObjectManagerServer *server;
	LgdContext *context;
	guint volume_rescan_interval;

	virConnectPtr conn;
	gint domain_event_id;
	gint pool_lifecycle_event_id;
	gint pool_refresh_event_id;
	guint reconnect_id;
	guint rescan_id;
	guint closed_id;
	gboolean warned_down;

	GHashTable *domains; /* uuid -> LgdGuest */
	GHashTable *volumes; /* key -> LgdGuest */
};

G_DEFINE_TYPE(LgdConnection, lgd_connection, G_TYPE_OBJECT)

static void lgd_connection_schedule_reconnect(LgdConnection *self);
static void lgd_connection_on_closed(virConnectPtr conn, int reason, void *opaque);

/* ---- objects ----------------------------------------------------------- */

static const gchar *
lgd_guest_path(LgdGuest *guest)
{
	return g_dbus_object_get_object_path(G_DBUS_OBJECT(lgd_guest_get_object(guest)));
}

/* Table entries are withdrawn from the bus as they are removed. */
static void
lgd_connection_withdraw(LgdConnection *self, LgdGuest *guest)
{
	g_debug("%s: withdrawing %s", self->uri, lgd_guest_path(guest));
	g_dbus_object_manager_server_unexport(self->server, lgd_guest_path(guest));
	lgd_guest_close(guest);
}

static void
lgd_connection_publish(LgdConnection *self, GHashTable *table, const gchar *id, LgdGuest *guest)
{
	g_dbus_object_manager_server_export(self->server,
					    G_DBUS_OBJECT_SKELETON(lgd_guest_get_object(guest)));
	g_hash_table_insert(table, g_strdup(id), guest);
	g_debug("%s: published %s", self->uri, lgd_guest_path(guest));
}

static void
lgd_connection_unexport(LgdConnection *self, GHashTable *table, const gchar *id)
{
	LgdGuest *guest = g_hash_table_lookup(table, id);

	if (guest == NULL)
		return;
	lgd_connection_withdraw(self, guest);
	g_hash_table_remove(table, id);
}

static void
lgd_connection_unexport_all(LgdConnection *self, GHashTable *table)
{
	GHashTableIter iter;
	gpointer guest;

	g_hash_table_iter_init(&iter, table);
	while (g_hash_table_iter_next(&iter, NULL, &guest)) {
		lgd_connection_withdraw(self, guest);
		g_hash_table_iter_remove(&iter);
	}
}

/* A new reference to the published guest @id (a domain's UUID, a
 * volume's key), or to a new unpublished one. */
static LgdGuest *
lgd_connection_guest_ref(LgdConnection *self, LgdGuestKind kind, const gchar *id)
{
	gboolean is_domain = kind == LGD_GUEST_DOMAIN;
	LgdGuest *guest = g_hash_table_lookup(is_domain ? self->domains : self->volumes, id);
	g_autofree gchar *path = NULL;

	if (guest != NULL)
		return g_object_ref(guest);
	path = is_domain ? lgd_path_for_domain(self->prefix, id)
			 : lgd_path_for_volume(self->prefix, id);
	return lgd_guest_new_drive(self->context, self->uri, kind, id, path);
}

/* ---- domains ----------------------------------------------------------- */

static void
lgd_connection_sync_domain(LgdConnection *self,
			   virDomainPtr dom,
			   gint persistent,
			   const gchar *prefetched)
{
	char uuid[VIR_UUID_STRING_BUFLEN];
	g_autoptr(LgdGuest) guest = NULL;
	g_autoptr(LgdDBusDomain) iface = NULL;
	g_autoptr(GError) error = NULL;
	g_autofree gchar *identity = NULL;
	gboolean was_active;
	gboolean is_new;
	gboolean cached;

	if (virDomainGetUUIDString(dom, uuid) < 0)
		return;
	is_new = !g_hash_table_contains(self->domains, uuid);
	guest = lgd_connection_guest_ref(self, LGD_GUEST_DOMAIN, uuid);
	iface = lgd_dbus_object_get_domain(LGD_DBUS_OBJECT(lgd_guest_get_object(guest)));
	was_active = lgd_dbus_domain_get_active(iface);
	/* the identity costs libvirt round trips: only for a cached inspection */
	cached = is_new && lgd_guest_has_cached_inspection(guest);

	switch (lgd_domain_read(iface, dom, self->uri, persistent, prefetched,
				cached ? &identity : NULL, &error)) {
	case LGD_DOMAIN_READ_OK:
		break;
	case LGD_DOMAIN_READ_GONE:
	case LGD_DOMAIN_READ_APPLIANCE:
		if (is_new)
			lgd_guest_close(guest);
		else
			lgd_connection_unexport(self, self->domains, uuid);
		return;
	case LGD_DOMAIN_READ_FAILED:
	default:
		g_warning("%s: %s", self->uri, error->message);
		if (is_new)
			lgd_guest_close(guest);
		return;
	}
	if (is_new) {
		if (cached)
			lgd_guest_load_inspection(guest, identity);
		lgd_connection_publish(self, self->domains, uuid, g_steal_pointer(&guest));
	} else if (was_active != lgd_dbus_domain_get_active(iface)) {
		/* starting or stopping may change anything on the disks, and
		 * changes how an appliance must read them */
		lgd_guest_forget_inspection(guest);
		LgdSession *session = lgd_guest_ref_session(guest);
		if (session != NULL) {
			lgd_session_drop(session);
			lgd_session_unref(session);
		}
	}
}

static void
lgd_connection_sync_domain_uuid(LgdConnection *self, const gchar *uuid)
{
	g_autoptr(virDomain) dom = virDomainLookupByUUIDString(self->conn, uuid);

	if (dom == NULL) {
		if (virGetLastErrorCode() == VIR_ERR_NO_DOMAIN)
			lgd_connection_unexport(self, self->domains, uuid);
		else
			g_warning("%s: cannot look up domain %s: %s", self->uri, uuid,
				  virGetLastErrorMessage());
		return;
	}
	lgd_connection_sync_domain(self, dom, -1, NULL);
}

/* libvirt hands us a domain handle whose state is the event's; looking the
 * domain up again by UUID gives its state now, which also covers renames
 * (same UUID, new name) and transient domains that are gone. */
static int
lgd_connection_on_domain_event(
    virConnectPtr conn, virDomainPtr dom, int event, int detail, void *opaque)
{
	LgdConnection *self = opaque;
	char uuid[VIR_UUID_STRING_BUFLEN];

	if (virDomainGetUUIDString(dom, uuid) < 0)
		return 0;
	g_debug("%s: domain %s event %d detail %d", self->uri, virDomainGetName(dom), event,
		detail);
	lgd_connection_sync_domain_uuid(self, uuid);
	return 0;
}

/* Fetching definitions one round trip after the other dominates start-up
 * with thousands of domains; libvirt multiplexes calls on a connection,
 * so a few threads fetch them at once. */
#define LGD_FETCH_THREADS 4

typedef struct {
	virDomainPtr *doms;
	gchar **xmls;
	gint n;
	gint next; /* atomic */
} LgdFetch;

static gpointer
lgd_connection_fetch_thread(gpointer user_data)
{
	LgdFetch *fetch = user_data;
	gint i;

	while ((i = g_atomic_int_add(&fetch->next, 1)) < fetch->n)
		fetch->xmls[i] = virDomainGetXMLDesc(fetch->doms[i], 0);
	return NULL;
}

static gboolean
lgd_connection_load_domains(LgdConnection *self, guint flags, gint persistent)
{
	LgdFetch fetch = {0};
	GThread *threads[LGD_FETCH_THREADS];
	int n = virConnectListAllDomains(self->conn, &fetch.doms, flags);

	if (n < 0) {
		g_warning("%s: cannot list domains: %s", self->uri, virGetLastErrorMessage());
		return FALSE;
	}
	fetch.n = n;
	fetch.xmls = g_new0(gchar *, n + 1);
	for (guint t = 0; t < LGD_FETCH_THREADS; t++)
		threads[t] = g_thread_new("lgd-fetch", lgd_connection_fetch_thread, &fetch);
	for (guint t = 0; t < LGD_FETCH_THREADS; t++)
		g_thread_join(threads[t]);
	for (int i = 0; i < n; i++) {
		/* a failed fetch is retried, with its error, by the plain path */
		lgd_connection_sync_domain(self, fetch.doms[i], persistent, fetch.xmls[i]);
		free(fetch.xmls[i]);
		virDomainFree(fetch.doms[i]);
	}
	g_free(fetch.xmls);
	free(fetch.doms);
	return TRUE;
}

/* ---- volumes ----------------------------------------------------------- */

static void
lgd_connection_sync_volume(LgdConnection *self,
			   virStorageVolPtr vol,
			   const gchar *pool,
			   gboolean reread)
{
	const char *key = virStorageVolGetKey(vol);
	g_autoptr(LgdGuest) guest = NULL;
	g_autoptr(LgdDBusVolume) iface = NULL;
	g_autoptr(GError) error = NULL;
	gboolean is_new;

	if (key == NULL)
		return;
	is_new = !g_hash_table_contains(self->volumes, key);
	if (!is_new && !reread)
		return;
	guest = lgd_connection_guest_ref(self, LGD_GUEST_VOLUME, key);
	iface = lgd_dbus_object_get_volume(LGD_DBUS_OBJECT(lgd_guest_get_object(guest)));
	if (!lgd_volume_read(iface, vol, pool, self->uri, &error)) {
		/* deleted between listing and reading: the next listing settles it */
		g_debug("%s: %s", self->uri, error->message);
		if (is_new)
			lgd_guest_close(guest);
		return;
	}
	if (is_new) {
		/* the identity costs libvirt round trips: only for a cached inspection */
		if (lgd_guest_has_cached_inspection(guest)) {
			g_autofree gchar *vol_identity = lgd_identity_of_volume(self->conn, vol);

			lgd_guest_load_inspection(guest, vol_identity);
		}
		lgd_connection_publish(self, self->volumes, key, g_steal_pointer(&guest));
	}
}

/* Withdraws the volumes of @pool whose keys are not in @keep (NULL: all). */
static const gchar *
lgd_connection_volume_pool(LgdGuest *guest)
{
	LgdDBusObject *object = LGD_DBUS_OBJECT(lgd_guest_get_object(guest));
	g_autoptr(LgdDBusVolume) iface = lgd_dbus_object_get_volume(object);

	/* the object keeps the interface, and so the string, alive */
	return lgd_dbus_volume_get_pool(iface);
}

static void
lgd_connection_prune_volumes(LgdConnection *self, const gchar *pool, GHashTable *keep)
{
	GHashTableIter iter;
	gpointer key;
	gpointer guest;

	g_hash_table_iter_init(&iter, self->volumes);
	while (g_hash_table_iter_next(&iter, &key, &guest)) {
		if (g_strcmp0(lgd_connection_volume_pool(guest), pool) != 0)
			continue;
		if (keep != NULL && g_hash_table_contains(keep, key))
			continue;
		lgd_connection_withdraw(self, guest);
		g_hash_table_iter_remove(&iter);
	}
}

/* Brings the volumes of @pool in line with libvirt. @reread also refreshes
 * the properties of volumes already published (sizes change on refresh). */
static void
lgd_connection_sync_pool(LgdConnection *self, virStoragePoolPtr pool, gboolean reread)
{
	const char *name = virStoragePoolGetName(pool);
	virStorageVolPtr *vols = NULL;
	g_autoptr(GHashTable) seen = NULL;
	int active = virStoragePoolIsActive(pool);
	int n;

	if (active <= 0) {
		lgd_connection_prune_volumes(self, name, NULL);
		return;
	}
	n = virStoragePoolListAllVolumes(pool, &vols, 0);
	if (n < 0) {
		g_debug("%s: cannot list volumes of pool %s: %s", self->uri, name,
			virGetLastErrorMessage());
		return;
	}
	seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	for (int i = 0; i < n; i++) {
		const char *key = virStorageVolGetKey(vols[i]);

		if (key != NULL)
			g_hash_table_add(seen, g_strdup(key));
		lgd_connection_sync_volume(self, vols[i], name, reread);
		virStorageVolFree(vols[i]);
	}
	free(vols);
	lgd_connection_prune_volumes(self, name, seen);
}

static void
lgd_connection_on_pool_event(virConnectPtr conn, virStoragePoolPtr pool, void *opaque)
{
	LgdConnection *self = opaque;

	g_debug("%s: pool %s changed", self->uri, virStoragePoolGetName(pool));
	lgd_connection_sync_pool(self, pool, TRUE);
}

static int
lgd_connection_on_pool_lifecycle(
    virConnectPtr conn, virStoragePoolPtr pool, int event, int detail, void *opaque)
{
	lgd_connection_on_pool_event(conn, pool, opaque);
	return 0;
}

/* Pools that stopped or vanished without an event we saw (e.g. undefined
 * while we were reconnecting) lose their volumes here. */
static void
lgd_connection_prune_inactive_pools(LgdConnection *self, GHashTable *active_pools)
{
	g_autoptr(GHashTable) gone = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	GHashTableIter iter;
	gpointer guest;
	gpointer pool;

	g_hash_table_iter_init(&iter, self->volumes);
	while (g_hash_table_iter_next(&iter, NULL, &guest)) {
		const gchar *name = lgd_connection_volume_pool(guest);

		if (!g_hash_table_contains(active_pools, name))
			g_hash_table_add(gone, g_strdup(name));
	}
	g_hash_table_iter_init(&iter, gone);
	while (g_hash_table_iter_next(&iter, &pool, NULL))
		lgd_connection_prune_volumes(self, pool, NULL);
}

static void
lgd_connection_load_pools(LgdConnection *self, gboolean reread)
{
	virStoragePoolPtr *pools = NULL;
	g_autoptr(GHashTable) active = NULL;
	int n = virConnectListAllStoragePools(self->conn, &pools,
					      VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE);

	if (n < 0) {
		/* a driver without storage (e.g. some remote setups) has no volumes */
		g_debug("%s: cannot list storage pools: %s", self->uri, virGetLastErrorMessage());
		return;
	}
	active = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	for (int i = 0; i < n; i++) {
		g_hash_table_add(active, g_strdup(virStoragePoolGetName(pools[i])));
		lgd_connection_sync_pool(self, pools[i], reread);
		virStoragePoolFree(pools[i]);
	}
	free(pools);
	lgd_connection_prune_inactive_pools(self, active);
}

/* libvirt has no event for volumes created or deleted: re-listing is a call
 * answered from libvirtd's memory, cheap at this interval. */
static gboolean
lgd_connection_on_rescan(gpointer user_data)
{
	LgdConnection *self = user_data;

	if (self->conn != NULL)
		lgd_connection_load_pools(self, FALSE);
	return G_SOURCE_CONTINUE;
}

/* ---- connection lifecycle ---------------------------------------------- */

static void
lgd_connection_close(LgdConnection *self)
{
	g_clear_handle_id(&self->rescan_id, g_source_remove);
	if (self->conn == NULL)
		return;
	/* on a dead connection these fail; the references still go away */
	if (self->domain_event_id >= 0)
		virConnectDomainEventDeregisterAny(self->conn, self->domain_event_id);
	if (self->pool_lifecycle_event_id >= 0)
		virConnectStoragePoolEventDeregisterAny(self->conn, self->pool_lifecycle_event_id);
	if (self->pool_refresh_event_id >= 0)
		virConnectStoragePoolEventDeregisterAny(self->conn, self->pool_refresh_event_id);
	self->domain_event_id = -1;
	self->pool_lifecycle_event_id = -1;
	self->pool_refresh_event_id = -1;
	virConnectUnregisterCloseCallback(self->conn, lgd_connection_on_closed);
	virConnectClose(self->conn);
	self->conn = NULL;
	lgd_connection_unexport_all(self, self->domains);
	lgd_connection_unexport_all(self, self->volumes);
}

static gboolean
lgd_connection_on_closed_idle(gpointer user_data)
{
	LgdConnection *self = user_data;

	self->closed_id = 0;
	g_warning("%s: connection to libvirt lost; withdrawing its objects and reconnecting",
		  self->uri);
	lgd_connection_close(self);
	lgd_connection_schedule_reconnect(self);
	return G_SOURCE_REMOVE;
}

/* Runs inside libvirt's event dispatch: tear down from an idle instead. */
static void
lgd_connection_on_closed(virConnectPtr conn, int reason, void *opaque)
{
	LgdConnection *self = opaque;

	if (self->closed_id == 0)
		self->closed_id = g_idle_add(lgd_connection_on_closed_idle, self);
}

static gboolean
lgd_connection_open(LgdConnection *self)
{
	g_autoptr(GError) error = NULL;

	/* keepalive: notice a libvirtd that hangs, not only one that exits */
	self->conn = lgd_libvirt_connect(self->uri, &error);
	if (self->conn == NULL) {
		if (!self->warned_down)
			g_warning("%s (will keep trying)", error->message);
		self->warned_down = TRUE;
		return FALSE;
	}
	self->warned_down = FALSE;
	g_info("%s: connected", self->uri);

	virConnectRegisterCloseCallback(self->conn, lgd_connection_on_closed, self, NULL);

	/* Register before listing so that nothing between the two is missed. */
	self->domain_event_id = virConnectDomainEventRegisterAny(
	    self->conn, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
	    VIR_DOMAIN_EVENT_CALLBACK(lgd_connection_on_domain_event), self, NULL);
	if (self->domain_event_id < 0)
		g_warning("%s: no domain events, domain objects will not follow changes: %s",
			  self->uri, virGetLastErrorMessage());
	self->pool_lifecycle_event_id = virConnectStoragePoolEventRegisterAny(
	    self->conn, NULL, VIR_STORAGE_POOL_EVENT_ID_LIFECYCLE,
	    VIR_STORAGE_POOL_EVENT_CALLBACK(lgd_connection_on_pool_lifecycle), self, NULL);
	self->pool_refresh_event_id = virConnectStoragePoolEventRegisterAny(
	    self->conn, NULL, VIR_STORAGE_POOL_EVENT_ID_REFRESH,
	    VIR_STORAGE_POOL_EVENT_CALLBACK(lgd_connection_on_pool_event), self, NULL);

	/* Listing persistent and transient domains apart saves a call per
	 * domain, which matters with thousands of them. */
	lgd_connection_load_domains(self, VIR_CONNECT_LIST_DOMAINS_PERSISTENT, 1);
	lgd_connection_load_domains(self, VIR_CONNECT_LIST_DOMAINS_TRANSIENT, 0);
	lgd_connection_load_pools(self, TRUE);
	self->rescan_id =
	    g_timeout_add_seconds(self->volume_rescan_interval, lgd_connection_on_rescan, self);
	return TRUE;
}

static gboolean
lgd_connection_on_reconnect(gpointer user_data)
{
	LgdConnection *self = user_data;

	if (!lgd_connection_open(self))
		return G_SOURCE_CONTINUE;
	self->reconnect_id = 0;
	return G_SOURCE_REMOVE;
}

static void
lgd_connection_schedule_reconnect(LgdConnection *self)
{
	if (self->reconnect_id == 0)
		self->reconnect_id =
		    g_timeout_add(LGD_RECONNECT_INTERVAL_MS, lgd_connection_on_reconnect, self);
}

/* Connects and publishes synchronously, so that objects are there before
 * the service takes its bus name; retries in the background on failure. */
void
lgd_connection_start(LgdConnection *self)
{
	if (!lgd_connection_open(self))
		lgd_connection_schedule_reconnect(self);
}

void
lgd_connection_stop(LgdConnection *self)
{
	g_clear_handle_id(&self->reconnect_id, g_source_remove);
	g_clear_handle_id(&self->closed_id, g_source_remove);
	lgd_connection_close(self);
}

/* ---- look-ups ---------------------------------------------------------- */

const gchar *
lgd_connection_get_uri(LgdConnection *self)
{
	return self->uri;
}

const gchar *
lgd_connection_lookup_domain_uuid(LgdConnection *self, const gchar *uuid)
{
	g_autofree gchar *lower = g_ascii_strdown(uuid, -1);
	LgdGuest *guest = g_hash_table_lookup(self->domains, lower);

	return guest != NULL ? lgd_guest_path(guest) : NULL;
}

/* The paths of the guests in @table whose property @get gives @value. */
static GPtrArray *
lgd_connection_lookup_by(GHashTable *table,
			 const gchar *(*get)(LgdDBusObject *object),
			 const gchar *value)
{
	GPtrArray *paths = g_ptr_array_new();
	GHashTableIter iter;
	gpointer guest;

	g_hash_table_iter_init(&iter, table);
	while (g_hash_table_iter_next(&iter, NULL, &guest)) {
		if (g_strcmp0(get(LGD_DBUS_OBJECT(lgd_guest_get_object(guest))), value) == 0)
			g_ptr_array_add(paths, (gpointer)lgd_guest_path(guest));
	}
	return paths;
}

static const gchar *
lgd_connection_domain_name(LgdDBusObject *object)
{
	return lgd_dbus_domain_get_name(lgd_dbus_object_peek_domain(object));
}

static const gchar *
lgd_connection_volume_path(LgdDBusObject *object)
{
	return lgd_dbus_volume_get_path(lgd_dbus_object_peek_volume(object));
}

/* The paths of the domains named @name (names are unique per connection,
 * but a caller may ask across connections). */
GPtrArray *
lgd_connection_lookup_domain_name(LgdConnection *self, const gchar *name)
{
	return lgd_connection_lookup_by(self->domains, lgd_connection_domain_name, name);
}

/* The published domain or volume at @object_path, or NULL. */
LgdGuest *
lgd_connection_find_guest(LgdConnection *self, const gchar *object_path)
{
	/* a hash look-up of the unescaped UUID or key: InspectDomains asks
	 * for many paths before anything is authorized */
	const gchar *kinds[] = {"domain", "volume"};
	GHashTable *tables[] = {self->domains, self->volumes};

	for (guint t = 0; t < G_N_ELEMENTS(tables); t++) {
		g_autofree gchar *prefix =
		    g_strdup_printf("%s/%s/%s/", LGD_ROOT_PATH, self->prefix, kinds[t]);
		g_autofree gchar *id = NULL;
		LgdGuest *guest;

		if (!g_str_has_prefix(object_path, prefix))
			continue;
		id = lgd_path_unescape(object_path + strlen(prefix));
		guest = id != NULL ? g_hash_table_lookup(tables[t], id) : NULL;
		if (guest != NULL && g_strcmp0(lgd_guest_path(guest), object_path) == 0)
			return guest;
	}
	return NULL;
}

const gchar *
lgd_connection_lookup_volume_key(LgdConnection *self, const gchar *key)
{
	LgdGuest *guest = g_hash_table_lookup(self->volumes, key);

	return guest != NULL ? lgd_guest_path(guest) : NULL;
}

GPtrArray *
lgd_connection_lookup_volume_path(LgdConnection *self, const gchar *path)
{
	return lgd_connection_lookup_by(self->volumes, lgd_connection_volume_path, path);
}

/* ---- GObject ----------------------------------------------------------- */

static void
lgd_connection_finalize(GObject *object)
{
	LgdConnection *self = LGD_CONNECTION(object);

	lgd_connection_stop(self);
	g_hash_table_unref(self->domains);
	g_hash_table_unref(self->volumes);
	g_clear_object(&self->server);
	g_free(self->prefix);
	g_free(self->uri);
	G_OBJECT_CLASS(lgd_connection_parent_class)->finalize(object);
}

static void
lgd_connection_class_init(LgdConnectionClass *klass)
{
	G_OBJECT_CLASS(klass)->finalize = lgd_connection_finalize;
}

static void
lgd_connection_init(LgdConnection *self)
{
	self->domain_event_id = -1;
	self->pool_lifecycle_event_id = -1;
	self->pool_refresh_event_id = -1;
	self->domains = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_object_unref);
	self->volumes = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_object_unref);
}

LgdConnection *
lgd_connection_new(const gchar *uri,
		   GDBusObjectManagerServer *server,
		   LgdContext *context,
		   guint volume_rescan_interval)
{
	LgdConnection *self = g_object_new(LGD_TYPE_CONNECTION, NULL);

	self->uri = g_strdup(uri);
	self->prefix = lgd_path_connection_prefix(uri);
	self->server = g_object_ref(server);
	self->context = context;
	self->volume_rescan_interval = volume_rescan_interval;
	return self;
}
