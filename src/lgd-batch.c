#include "config.h"

#include <string.h>

#include "lgd-appliance.h"
#include "lgd-args.h"
#include "lgd-batch.h"
#include "lgd-call.h"
#include "lgd-error.h"
#include "lgd-guestfs.h"
#include "lgd-inspector.h"
#include "lgd-mount.h"

/* More than a desktop lists, far less than a message can carry (millions). */
#define LGD_BATCH_MAX_OBJECTS 1024

/* One object of an InspectDomains call. */
typedef struct {
	gchar *path;
	LgdGuest *guest;	/* NULL when the path names no domain */
	LgdCall *call;		/* authorizes, then inspects apart */
	LgdDriveSource *source; /* used by one thread at a time */
	gchar *identity;
	GVariant *result; /* a{sv}, once known */
	/* in a shared appliance */
	LgdDrivesLease *lease;
	guint first_drive;
	guint n_drives;
	GPtrArray *roots;
} LgdBatchItem;

typedef struct {
	LgdContext *context;
	LgdDBusManager *iface; /* a reference */
	GDBusMethodInvocation *invocation;
	GMainContext *main_context; /* where the reply is sent */
	GVariant *results;	    /* a{oa{sv}} */
	gboolean refresh;
	GPtrArray *items; /* of LgdBatchItem */
	guint auth_next;  /* the next item polkit is asked about */
	/* per-domain appliances report here */
	GMutex lock;
	GCond cond;
	guint pending;
	/* published while the thread runs; counts domains */
	gchar *job_id; /* the caller's option, or NULL */
	LgdJob *job;
	GCancellable *cancellable;
} LgdBatch;

static void
lgd_batch_item_free(LgdBatchItem *item)
{
	g_free(item->path);
	g_clear_object(&item->guest);
	lgd_call_free(item->call);
	lgd_drive_source_free(item->source);
	g_free(item->identity);
	g_clear_pointer(&item->result, g_variant_unref);
	g_clear_pointer(&item->lease, lgd_drives_lease_release);
	g_clear_pointer(&item->roots, g_ptr_array_unref);
	g_free(item);
}

static void
lgd_batch_free(LgdBatch *batch)
{
	g_ptr_array_unref(batch->items);
	g_main_context_unref(batch->main_context);
	g_clear_pointer(&batch->results, g_variant_unref);
	g_object_unref(batch->iface);
	g_mutex_clear(&batch->lock);
	g_cond_clear(&batch->cond);
	g_free(batch->job_id);
	g_clear_object(&batch->cancellable);
	g_free(batch);
}

static void
lgd_batch_count_done(LgdBatch *batch, guint n)
{
	if (batch->job != NULL)
		lgd_job_add_done(batch->job, n);
}

static gboolean
lgd_batch_is_cancelled(LgdBatch *batch)
{
	return g_cancellable_is_cancelled(batch->cancellable);
}

static GVariant *
lgd_batch_error_result(const GError *error)
{
	GVariantDict dict;
	g_autoptr(GError) copy = g_error_copy(error);
	g_autofree gchar *name = NULL;

	lgd_error_convert(&copy);
	name = g_dbus_error_encode_gerror(copy);
	g_variant_dict_init(&dict, NULL);
	g_variant_dict_insert(&dict, "error", "s", name);
	g_variant_dict_insert(&dict, "message", "s", copy->message);
	return g_variant_ref_sink(g_variant_dict_end(&dict));
}

static GVariant *
lgd_batch_systems_result(GVariant *systems, gboolean cached)
{
	GVariantDict dict;

	g_variant_dict_init(&dict, NULL);
	g_variant_dict_insert_value(&dict, "systems", systems);
	g_variant_dict_insert(&dict, "cached", "b", cached);
	return g_variant_ref_sink(g_variant_dict_end(&dict));
}

static void
lgd_batch_fail(LgdBatchItem *item, const GError *error)
{
	g_clear_pointer(&item->result, g_variant_unref);
	item->result = lgd_batch_error_result(error);
}

static void
lgd_batch_fail_cancelled(LgdBatchItem *item)
{
	g_autoptr(GError) error =
	    g_error_new_literal(LGD_ERROR, LGD_ERROR_CANCELLED, "InspectDomains was cancelled");

	lgd_batch_fail(item, error);
}

/* ---- without sharing: one appliance per domain ------------------------- */

typedef struct {
	LgdBatch *batch;
	LgdBatchItem *item;
} LgdBatchWait;

static void
lgd_batch_on_inspected(LgdCall *call, GVariant *reply, GError *error)
{
	LgdBatchWait *wait = call->done_data;
	LgdBatch *batch = wait->batch;

	g_mutex_lock(&batch->lock);
	if (reply != NULL) {
		g_autoptr(GVariant) systems = g_variant_get_child_value(reply, 0);
		wait->item->result = lgd_batch_systems_result(systems, FALSE);
		g_variant_unref(reply);
	} else {
		lgd_batch_fail(wait->item, error);
		g_error_free(error);
	}
	batch->pending--;
	g_cond_broadcast(&batch->cond);
	g_mutex_unlock(&batch->lock);
	lgd_batch_count_done(batch, 1);
	g_free(wait);
}

/* A domain whose turn comes after Cancel is not inspected. */
static GVariant *
lgd_batch_inspect_item_job(LgdSession *session, LgdCall *call, GError **error)
{
	if (g_cancellable_is_cancelled(call->cancellable)) {
		g_set_error_literal(error, LGD_ERROR, LGD_ERROR_CANCELLED,
				    "InspectDomains was cancelled");
		return NULL;
	}
	return lgd_inspector_inspect_job(session, call, error);
}

/* Each domain's own session inspects it (and caches the result), as many
 * at once as the appliance limit lets run. */
static void
lgd_batch_inspect_apart(LgdBatch *batch, GPtrArray *todo)
{
	g_mutex_lock(&batch->lock);
	batch->pending = todo->len;
	g_mutex_unlock(&batch->lock);
	for (guint i = 0; i < todo->len; i++) {
		LgdBatchWait *wait = g_new0(LgdBatchWait, 1);

		LgdCall *call;
		GVariantDict options;

		wait->batch = batch;
		wait->item = g_ptr_array_index(todo, i);
		call = g_steal_pointer(&wait->item->call);
		g_variant_dict_init(&options, NULL);
		g_variant_dict_insert(&options, "refresh", "b", batch->refresh);
		/* a launch for this domain is a job with the caller's job-id */
		if (batch->job_id != NULL)
			g_variant_dict_insert(&options, "job-id", "s", batch->job_id);
		call->options = g_variant_ref_sink(g_variant_dict_end(&options));
		call->func = lgd_batch_inspect_item_job;
		call->cancellable = g_object_ref(batch->cancellable);
		call->done = lgd_batch_on_inspected;
		call->done_data = wait;
		/* the session was referenced on the main loop: the object may be
		 * gone meanwhile, the session is not */
		if (call->session != NULL)
			lgd_session_push(call->session, call);
		else
			lgd_call_complete(call, NULL,
					  g_error_new_literal(LGD_ERROR, LGD_ERROR_NOT_FOUND,
							      "The object is gone"));
	}
	g_mutex_lock(&batch->lock);
	while (batch->pending > 0)
		g_cond_wait(&batch->cond, &batch->lock);
	g_mutex_unlock(&batch->lock);
}

/* ---- with sharing: one appliance for many domains ---------------------- */

/* The whole disk (e.g. /dev/sdb) holding @device (a partition, a whole
 * disk, or a btrfs subvolume "btrfsvol:/dev/sdb2/sub"). */
static gchar *
lgd_batch_disk_of(guestfs_h *g, const gchar *device)
{
	g_autofree gchar *dev = NULL;
	char *whole;

	if (g_str_has_prefix(device, "btrfsvol:")) {
		const gchar *p = device + strlen("btrfsvol:");
		const gchar *end = strchr(p + strlen("/dev/"), '/');
		dev = end != NULL ? g_strndup(p, end - p) : g_strdup(p);
	} else {
		dev = g_strdup(device);
	}
	whole = guestfs_part_to_dev(g, dev);
	if (whole == NULL)
		return g_steal_pointer(&dev); /* a whole disk already */
	dev = g_strdup(whole);
	free(whole);
	return g_steal_pointer(&dev);
}

/* An LVM logical volume lives on the physical volumes of its group: the
 * first of them names its disk. */
static gchar *
lgd_batch_disk_of_lv(guestfs_h *g, const gchar *lv)
{
	char *vg = guestfs_lvm_canonical_lv_name(g, lv);
	g_autoptr(LgdLvmPvList) pvs = NULL;
	g_auto(LgdStrv) pv_uuids = NULL;
	g_auto(GStrv) parts = NULL;
	gchar *disk = NULL;

	if (vg == NULL)
		return NULL;
	parts = g_strsplit(vg, "/", -1); /* "", "dev", VG, LV */
	free(vg);
	if (g_strv_length(parts) < 4)
		return NULL;
	pv_uuids = guestfs_vgpvuuids(g, parts[2]);
	pvs = guestfs_pvs_full(g);
	for (guint32 i = 0; pv_uuids != NULL && pvs != NULL && i < pvs->len && disk == NULL; i++) {
		if (pv_uuids[0] != NULL && strncmp(pvs->val[i].pv_uuid, pv_uuids[0], 32) == 0)
			disk = lgd_batch_disk_of(g, pvs->val[i].pv_name);
	}
	return disk;
}

static gint
lgd_batch_device_index(char **devices, const gchar *disk)
{
	for (gint i = 0; disk != NULL && devices[i] != NULL; i++) {
		if (g_strcmp0(devices[i], disk) == 0)
			return i;
	}
	return -1;
}

/* Gives each root to the domain whose drives hold it. */
static void
lgd_batch_assign_roots(guestfs_h *g, GPtrArray *group, char **roots)
{
	g_auto(LgdStrv) devices = guestfs_list_devices(g);

	for (guint r = 0; devices != NULL && roots[r] != NULL; r++) {
		g_autofree gchar *disk = guestfs_is_lv(g, roots[r]) > 0
					     ? lgd_batch_disk_of_lv(g, roots[r])
					     : lgd_batch_disk_of(g, roots[r]);
		gint index = lgd_batch_device_index(devices, disk);

		for (guint i = 0; index >= 0 && i < group->len; i++) {
			LgdBatchItem *item = g_ptr_array_index(group, i);
			if ((guint)index >= item->first_drive &&
			    (guint)index < item->first_drive + item->n_drives)
				g_ptr_array_add(item->roots, g_strdup(roots[r]));
		}
	}
}

/* @name as the domain's own appliance would call it: in the shared one
 * its drives start at @first, in its own at the first device. */
static gchar *
lgd_batch_rename_device(const gchar *name, char **devices, guint first, guint n)
{
	const gchar *prefix = g_str_has_prefix(name, "btrfsvol:") ? "btrfsvol:" : "";
	const gchar *dev = name + strlen(prefix);

	for (guint k = 0; k < n && devices[first + k] != NULL; k++) {
		const gchar *shared = devices[first + k];
		const gchar *rest;

		if (!g_str_has_prefix(dev, shared))
			continue;
		rest = dev + strlen(shared);
		while (g_ascii_isdigit(*rest))
			rest++; /* a partition number */
		/* /dev/sdb must not match /dev/sdba */
		if (*rest != '\0' && *rest != '/')
			continue;
		return g_strdup_printf("%s%s%s", prefix, devices[k], dev + strlen(shared));
	}
	return g_strdup(name);
}

/* Device names in @systems (a root, mount points' devices) made the ones
 * the domain's own appliance uses, so that results match Inspect's and
 * a root can be passed to the domain's other methods. */
static GVariant *
lgd_batch_rename_devices(GVariant *systems, char **devices, guint first, guint n)
{
	GVariantBuilder list;
	GVariantIter iter;
	GVariant *system;

	g_variant_builder_init(&list, G_VARIANT_TYPE("aa{sv}"));
	g_variant_iter_init(&iter, systems);
	while ((system = g_variant_iter_next_value(&iter)) != NULL) {
		GVariantDict dict;
		const gchar *root;
		g_autofree gchar *renamed_root = NULL;
		GVariant *mounts;

		g_variant_dict_init(&dict, system);
		if (g_variant_dict_lookup(&dict, "root", "&s", &root)) {
			renamed_root = lgd_batch_rename_device(root, devices, first, n);
			g_variant_dict_insert(&dict, "root", "s", renamed_root);
		}
		mounts = g_variant_dict_lookup_value(&dict, "mountpoints", G_VARIANT_TYPE("a{ss}"));
		if (mounts != NULL) {
			GVariantBuilder renamed;
			GVariantIter m;
			const gchar *where, *device;

			g_variant_builder_init(&renamed, G_VARIANT_TYPE("a{ss}"));
			g_variant_iter_init(&m, mounts);
			while (g_variant_iter_next(&m, "{&s&s}", &where, &device)) {
				g_autofree gchar *d =
				    lgd_batch_rename_device(device, devices, first, n);
				/* "/" is the root by definition; an fstab naming it by a
				 * UUID that clones share may resolve to another guest's
				 * disk in a shared appliance */
				if (g_str_equal(where, "/") && renamed_root != NULL)
					g_variant_builder_add(&renamed, "{ss}", where,
							      renamed_root);
				else
					g_variant_builder_add(&renamed, "{ss}", where, d);
			}
			g_variant_dict_insert_value(&dict, "mountpoints",
						    g_variant_builder_end(&renamed));
			g_variant_unref(mounts);
		}
		g_variant_builder_add_value(&list, g_variant_dict_end(&dict));
		g_variant_unref(system);
	}
	return g_variant_builder_end(&list);
}

/* One appliance for @group (domains of one connection): all their disks
 * read-only, each operating system mapped back to its domain. */
static void
lgd_batch_inspect_group(LgdBatch *batch, GPtrArray *group, const gchar *uri)
{
	const LgdSessionConfig *config = &batch->context->session;
	g_autoptr(GPtrArray) added = g_ptr_array_new();
	g_autoptr(GError) error = NULL;
	guestfs_h *g;
	guint drives = 0;
	char **roots = NULL;
	char **devices = NULL;

	if (!lgd_limit_acquire(config->limit, batch->cancellable)) {
		for (guint i = 0; i < group->len; i++)
			lgd_batch_fail_cancelled(g_ptr_array_index(group, i));
		return;
	}
	g = lgd_appliance_create(config, uri, &error);
	for (guint i = 0; g != NULL && i < group->len; i++) {
		LgdBatchItem *item = g_ptr_array_index(group, i);
		g_autoptr(GError) local_error = NULL;

		item->lease = lgd_drives_add(item->source, g, TRUE, &item->n_drives, &local_error);
		if (item->lease == NULL) {
			lgd_batch_fail(item, local_error);
			continue;
		}
		item->first_drive = drives;
		item->roots = g_ptr_array_new_with_free_func(g_free);
		drives += item->n_drives;
		g_ptr_array_add(added, item);
	}
	if (g != NULL && added->len > 0 &&
	    lgd_appliance_launch(g, config, uri, batch->cancellable, &error)) {
		roots = guestfs_inspect_os(g);
		if (roots == NULL)
			g_set_error(&error, LGD_ERROR, LGD_ERROR_FAILED, "Inspection failed: %s",
				    guestfs_last_error(g));
	}
	if (roots != NULL) {
		lgd_batch_assign_roots(g, added, roots);
		devices = guestfs_list_devices(g);
	}
	for (guint i = 0; i < added->len; i++) {
		LgdBatchItem *item = g_ptr_array_index(added, i);
		g_autoptr(GVariant) systems = NULL;
		GVariant *raw = NULL;

		if (roots != NULL && devices == NULL && error == NULL)
			g_set_error(&error, LGD_ERROR, LGD_ERROR_FAILED, "Cannot list devices: %s",
				    guestfs_last_error(g));
		if (roots == NULL || devices == NULL) {
			lgd_batch_fail(item, error);
			continue;
		}
		g_ptr_array_add(item->roots, NULL);
		raw = g_variant_ref_sink(lgd_inspect_roots(g, (char **)item->roots->pdata));
		systems = g_variant_ref_sink(
		    lgd_batch_rename_devices(raw, devices, item->first_drive, item->n_drives));
		g_clear_pointer(&raw, g_variant_unref);
		item->result = lgd_batch_systems_result(systems, FALSE);
		/* see InspectDomains in the API: a shared appliance's results are
		 * trusted only where every disk is the caller's own anyway */
		if (batch->context->batch_results_shared)
			lgd_guest_store_inspection(item->guest,
						   lgd_cache_entry_new(item->identity, systems));
	}
	lgd_strv_free(roots);
	lgd_strv_free(devices);
	if (g != NULL) {
		guestfs_shutdown(g);
		guestfs_close(g);
	}
	for (guint i = 0; i < added->len; i++) {
		LgdBatchItem *item = g_ptr_array_index(added, i);
		g_clear_pointer(&item->lease, lgd_drives_lease_release);
	}
	lgd_limit_release(config->limit);
	if (g == NULL) {
		for (guint i = 0; i < group->len; i++)
			lgd_batch_fail(g_ptr_array_index(group, i), error);
	}
}

/* A part of a connection's domains, inspected in a thread of its own. */
typedef struct {
	LgdBatch *batch;
	GPtrArray *group;
	const gchar *uri;
} LgdBatchPart;

static gpointer
lgd_batch_part_thread(gpointer user_data)
{
	LgdBatchPart *part = user_data;

	lgd_batch_inspect_group(part->batch, part->group, part->uri);
	lgd_batch_count_done(part->batch, part->group->len);
	return NULL;
}

/* Under TCG an appliance inspects its operating systems one after the
 * other on one processor: @domains (of one connection) are split evenly,
 * in order, over as many appliances at once as there are processors and
 * appliance slots. Each part waits for its own slot, so a lower limit
 * still works, only more slowly. */
static void
lgd_batch_inspect_split(LgdBatch *batch, GPtrArray *domains, const gchar *uri)
{
	LgdLimit *limit = batch->context->session.limit;
	guint n = MIN(MIN(g_get_num_processors(), domains->len), lgd_limit_get_slots(limit));
	g_autofree LgdBatchPart *parts = g_new0(LgdBatchPart, n);
	g_autofree GThread **threads = g_new0(GThread *, n);
	guint next = 0;

	for (guint k = 0; k < n; k++) {
		guint size = domains->len / n + (k < domains->len % n ? 1 : 0);

		parts[k] = (LgdBatchPart){batch, g_ptr_array_new(), uri};
		for (guint i = 0; i < size; i++)
			g_ptr_array_add(parts[k].group, g_ptr_array_index(domains, next++));
		threads[k] = g_thread_new("lgd-batch-part", lgd_batch_part_thread, &parts[k]);
	}
	for (guint k = 0; k < n; k++) {
		g_thread_join(threads[k]);
		g_ptr_array_unref(parts[k].group);
	}
}

/* Domains of one connection together, as many as an appliance's drive
 * limit takes (counted as one drive a disk; libguestfs allows hundreds). */
static void
lgd_batch_inspect_shared(LgdBatch *batch, GPtrArray *todo)
{
	const guint max_items = 64;
	g_autoptr(GHashTable) done = g_hash_table_new(g_direct_hash, g_direct_equal);

	for (guint i = 0; i < todo->len; i++) {
		LgdBatchItem *first = g_ptr_array_index(todo, i);
		const gchar *uri = lgd_guest_get_uri(first->guest);
		g_autoptr(GPtrArray) group = g_ptr_array_new();

		if (g_hash_table_contains(done, first))
			continue;
		if (lgd_batch_is_cancelled(batch)) {
			lgd_batch_fail_cancelled(first);
			g_hash_table_add(done, first);
			continue;
		}
		for (guint j = i; j < todo->len && group->len < max_items; j++) {
			LgdBatchItem *item = g_ptr_array_index(todo, j);
			if (!g_hash_table_contains(done, item) &&
			    g_strcmp0(lgd_guest_get_uri(item->guest), uri) == 0) {
				g_ptr_array_add(group, item);
				g_hash_table_add(done, item);
			}
		}
		lgd_batch_inspect_split(batch, group, uri);
	}
}

/* ---- the call ---------------------------------------------------------- */

/* As every call's (lgd-call.c): the inspections published, flushed, then
 * the reply. */
static gboolean
lgd_batch_reply_idle(gpointer user_data)
{
	LgdBatch *batch = user_data;

	for (guint i = 0; i < batch->items->len; i++) {
		LgdBatchItem *item = g_ptr_array_index(batch->items, i);
		if (item->guest != NULL)
			lgd_guest_flush(item->guest);
	}
	if (lgd_batch_is_cancelled(batch))
		lgd_error_return(batch->invocation,
				 g_error_new_literal(LGD_ERROR, LGD_ERROR_CANCELLED,
						     "InspectDomains was cancelled"));
	else
		lgd_dbus_manager_complete_inspect_domains(batch->iface, batch->invocation,
							  batch->results);
	lgd_batch_free(batch);
	return G_SOURCE_REMOVE;
}

/* Every item has its result: the reply, from the main loop. Any thread. */
static void
lgd_batch_reply(LgdBatch *batch)
{
	GVariantBuilder results;

	g_variant_builder_init(&results, G_VARIANT_TYPE("a{oa{sv}}"));
	for (guint i = 0; i < batch->items->len; i++) {
		LgdBatchItem *item = g_ptr_array_index(batch->items, i);
		g_variant_builder_add(&results, "{o@a{sv}}", item->path, item->result);
	}
	batch->results = g_variant_ref_sink(g_variant_builder_end(&results));
	if (batch->job != NULL) {
		g_autoptr(GError) error = NULL;

		if (lgd_batch_is_cancelled(batch))
			error = g_error_new_literal(LGD_ERROR, LGD_ERROR_CANCELLED,
						    "InspectDomains was cancelled");
		/* Completed goes out before the reply */
		lgd_job_complete(g_steal_pointer(&batch->job), error);
	}
	g_main_context_invoke(batch->main_context, lgd_batch_reply_idle, batch);
}

/* The batch's Job, for the domains it was allowed to inspect; the batch
 * goes on without one if the caller's uid cannot be known. */
static void
lgd_batch_start_job(LgdBatch *batch)
{
	g_autoptr(GPtrArray) objects = g_ptr_array_new();
	g_autoptr(GError) error = NULL;
	guint32 uid;

	if (!lgd_job_lookup_uid(batch->invocation, &uid, &error)) {
		g_info("no job for InspectDomains: cannot find the caller's uid: %s",
		       error->message);
		return;
	}
	for (guint i = 0; i < batch->items->len; i++) {
		LgdBatchItem *item = g_ptr_array_index(batch->items, i);
		if (item->result == NULL)
			g_ptr_array_add(objects, item->path);
	}
	g_ptr_array_add(objects, NULL);
	batch->job = lgd_job_new(batch->context->jobs, "inspect-domains",
				 (const gchar *const *)objects->pdata, uid, batch->job_id,
				 batch->cancellable);
	lgd_job_set_counts_items(batch->job);
	lgd_job_set_total(batch->job, objects->len - 1);
	lgd_job_publish(batch->job);
}

static gpointer
lgd_batch_thread(gpointer user_data)
{
	LgdBatch *batch = user_data;
	g_autoptr(GPtrArray) todo = g_ptr_array_new();

	lgd_batch_start_job(batch);
	for (guint i = 0; i < batch->items->len; i++) {
		LgdBatchItem *item = g_ptr_array_index(batch->items, i);
		g_autoptr(LgdCacheEntry) cached = NULL;

		if (item->result != NULL)
			continue; /* already an error, or refused */
		item->identity = lgd_drives_identity(item->source);
		if (!batch->refresh)
			cached = lgd_guest_cached_inspection(item->guest, item->identity);
		if (cached != NULL) {
			item->result = lgd_batch_systems_result(cached->systems, TRUE);
			lgd_batch_count_done(batch, 1);
		} else
			g_ptr_array_add(todo, item);
	}
	if (todo->len > 0 && batch->context->batch_inspection)
		lgd_batch_inspect_shared(batch, todo);
	else if (todo->len > 0)
		lgd_batch_inspect_apart(batch, todo);
	lgd_batch_reply(batch);
	return NULL;
}

/* ---- authorization, on the main loop, before any thread ---------------- */

static void lgd_batch_authorize_next(LgdBatch *batch);

static void
lgd_batch_authorized(GObject *source, GAsyncResult *result, gpointer user_data)
{
	LgdBatch *batch = user_data;
	LgdBatchItem *item = g_ptr_array_index(batch->items, batch->auth_next - 1);
	g_autoptr(GError) error = NULL;

	if (!lgd_call_check_finish(item->call, result, &error))
		lgd_batch_fail(item, error);
	lgd_batch_authorize_next(batch);
}

/* Polkit is asked about one domain after the other (its answers hold no
 * thread); the thread that looks at disks starts once every domain is
 * decided, and only if one was allowed. */
static void
lgd_batch_authorize_next(LgdBatch *batch)
{
	gboolean allowed = FALSE;

	while (batch->auth_next < batch->items->len) {
		LgdBatchItem *item = g_ptr_array_index(batch->items, batch->auth_next++);

		if (item->result == NULL) {
			lgd_call_check_async(item->call, lgd_batch_authorized, batch);
			return;
		}
	}
	for (guint i = 0; i < batch->items->len; i++)
		allowed |= ((LgdBatchItem *)g_ptr_array_index(batch->items, i))->result == NULL;
	if (allowed)
		g_thread_unref(g_thread_new("lgd-batch", lgd_batch_thread, batch));
	else
		lgd_batch_reply(batch);
}

static LgdGuest *
lgd_batch_find(GPtrArray *connections, const gchar *path)
{
	for (guint i = 0; i < connections->len; i++) {
		LgdGuest *guest =
		    lgd_connection_find_guest(g_ptr_array_index(connections, i), path);
		if (guest != NULL)
			return guest;
	}
	return NULL;
}

/* InspectDomains: objects are found and polkit asked in the main loop;
 * cache look-ups and appliances run in a thread of the call's own. Takes
 * the handler's reference to @invocation. */
void
lgd_batch_inspect(LgdDBusManager *iface,
		  LgdContext *context,
		  GPtrArray *connections,
		  GDBusMethodInvocation *invocation,
		  const gchar *const *paths,
		  GVariant *options)
{
	static const LgdOptionSpec specs[] = {{"refresh", "b"}, {"job-id", "s"}, {NULL}};
	g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
	guint n_paths = g_strv_length((gchar **)paths);
	LgdBatch *batch;
	GError *error = NULL;

	/* refused before anything is looked up: the list is the caller's */
	if (n_paths > LGD_BATCH_MAX_OBJECTS) {
		g_set_error(&error, LGD_ERROR, LGD_ERROR_TOO_LARGE,
			    "%u objects is more than InspectDomains takes at once (%u); "
			    "split the list",
			    n_paths, LGD_BATCH_MAX_OBJECTS);
		lgd_error_return(invocation, error);
		return;
	}
	if (!lgd_args_check_options(options, specs, &error) || !lgd_job_check_id(options, &error)) {
		lgd_error_return(invocation, error);
		return;
	}
	batch = g_new0(LgdBatch, 1);
	batch->context = context;
	batch->iface = g_object_ref(iface);
	batch->invocation = invocation;
	batch->main_context = g_main_context_ref_thread_default();
	batch->refresh = lgd_args_get_bool(options, "refresh", FALSE);
	batch->job_id = g_strdup(lgd_args_get_string(options, "job-id", NULL));
	batch->cancellable = g_cancellable_new();
	batch->items = g_ptr_array_new_with_free_func((GDestroyNotify)lgd_batch_item_free);
	g_mutex_init(&batch->lock);
	g_cond_init(&batch->cond);
	for (guint i = 0; paths[i] != NULL; i++) {
		LgdBatchItem *item = g_new0(LgdBatchItem, 1);
		LgdGuest *guest = lgd_batch_find(connections, paths[i]);
		g_autoptr(GError) item_error = NULL;

		item->path = g_strdup(paths[i]);
		if (!g_hash_table_add(seen, (gpointer)paths[i])) {
			lgd_batch_item_free(item); /* asked twice: answered once */
			continue;
		}
		g_ptr_array_add(batch->items, item);
		if (guest == NULL || !lgd_guest_is_domain(guest)) {
			g_set_error(&item_error, LGD_ERROR,
				    guest == NULL ? LGD_ERROR_NOT_FOUND
						  : LGD_ERROR_INVALID_ARGUMENT,
				    guest == NULL ? "No domain is published at %s"
						  : "%s is a volume; InspectDomains takes domains",
				    paths[i]);
			lgd_batch_fail(item, item_error);
			continue;
		}
		item->guest = g_object_ref(guest);
		item->call = lgd_call_new(guest, g_object_ref(invocation), LGD_ACTION_INSPECT);
		item->source = lgd_drive_source_new_domain(
		    lgd_guest_get_uri(guest), lgd_guest_get_id(guest), context->run_dir);
	}
	lgd_batch_authorize_next(batch);
}
