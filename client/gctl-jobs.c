/* jobs and cancel: the service's Job objects (org.libvirt.GuestFS.Job at
 * /org/libvirt/GuestFS/jobs/N), as the ObjectManager lists them, and
 * their Cancel method. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "gctl.h"

typedef struct {
	gchar *path;
	guint64 number;
	GVariant *props; /* a{sv} of the Job interface */
} GctlJob;

static void
gctl_job_free(GctlJob *job)
{
	g_free(job->path);
	g_variant_unref(job->props);
	g_free(job);
}

/* N of /org/libvirt/GuestFS/jobs/N, G_MAXUINT64 for anything else */
static guint64
gctl_job_number(const gchar *path)
{
	guint64 number = G_MAXUINT64;

	if (g_str_has_prefix(path, GCTL_JOBS_PATH "/") &&
	    !g_ascii_string_to_unsigned(path + strlen(GCTL_JOBS_PATH "/"), 10, 0, G_MAXUINT64,
					&number, NULL))
		number = G_MAXUINT64;
	return number;
}

static gint
gctl_job_compare(gconstpointer a, gconstpointer b)
{
	const GctlJob *ja = *(GctlJob *const *)a;
	const GctlJob *jb = *(GctlJob *const *)b;

	if (ja->number != jb->number)
		return ja->number < jb->number ? -1 : 1;
	return g_strcmp0(ja->path, jb->path);
}

/* The current jobs, by number. */
static GPtrArray *
gctl_list_jobs(GctlContext *ctx, GError **error)
{
	g_autoptr(GVariant) objects = gctl_managed_objects(ctx, error);
	GPtrArray *jobs;
	GVariantIter iter;
	const gchar *path;
	GVariant *ifaces;

	if (objects == NULL)
		return NULL;
	jobs = g_ptr_array_new_with_free_func((GDestroyNotify)gctl_job_free);
	g_variant_iter_init(&iter, objects);
	while (g_variant_iter_loop(&iter, "{&o@a{sa{sv}}}", &path, &ifaces)) {
		GVariant *props = gctl_job_properties(ifaces);
		GctlJob *job;

		if (props == NULL)
			continue;
		job = g_new0(GctlJob, 1);
		job->path = g_strdup(path);
		job->number = gctl_job_number(path);
		job->props = props;
		g_ptr_array_add(jobs, job);
	}
	g_ptr_array_sort(jobs, gctl_job_compare);
	return jobs;
}

static void
gctl_jobs_json(GPtrArray *jobs)
{
	/* Job property -> JSON key; the values as the service gives them */
	static const gchar *const keys[] = {
	    "JobId",
	    "job-id",
	    "Operation",
	    "operation",
	    "Objects",
	    "objects",
	    "StartedByUid",
	    "uid",
	    "Progress",
	    "progress",
	    "BytesDone",
	    "bytes-done",
	    "BytesTotal",
	    "bytes-total",
	    "Rate",
	    "rate",
	    "ExpectedEndTime",
	    "expected-end-time",
	    "Cancelable",
	    "cancelable",
	};
	g_autoptr(GString) doc = g_string_new("{\"jobs\":[");

	for (guint i = 0; i < jobs->len; i++) {
		GctlJob *job = g_ptr_array_index(jobs, i);

		if (i > 0)
			g_string_append_c(doc, ',');
		g_string_append(doc, "{\"object-path\":");
		gctl_json_append_string(doc, job->path);
		g_string_append(doc, ",\"number\":");
		if (job->number != G_MAXUINT64)
			g_string_append_printf(doc, "%" G_GUINT64_FORMAT, job->number);
		else
			g_string_append(doc, "null");
		for (gsize k = 0; k < G_N_ELEMENTS(keys); k += 2) {
			g_autoptr(GVariant) value =
			    g_variant_lookup_value(job->props, keys[k], NULL);
			g_string_append_printf(doc, ",\"%s\":", keys[k + 1]);
			if (value != NULL)
				gctl_json_append_variant(doc, value);
			else
				g_string_append(doc, "null");
		}
		g_string_append_c(doc, '}');
	}
	g_string_append(doc, "]}");
	gctl_json_print(doc);
}

static gchar *
gctl_job_bytes(GVariant *props)
{
	guint64 done = 0, total = 0;
	const gchar *operation = "";
	g_autofree gchar *d = NULL;
	g_autofree gchar *t = NULL;

	g_variant_lookup(props, "Operation", "&s", &operation);
	g_variant_lookup(props, "BytesDone", "t", &done);
	g_variant_lookup(props, "BytesTotal", "t", &total);
	/* InspectDomains counts domains there */
	if (g_strcmp0(operation, "inspect-domains") == 0)
		return g_strdup_printf("%" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT, done, total);
	if (done == 0 && total == 0)
		return g_strdup("-");
	d = gctl_format_bytes(done);
	if (total == 0)
		return g_steal_pointer(&d);
	t = gctl_format_bytes(total);
	return g_strdup_printf("%s/%s", d, t);
}

gint
gctl_cmd_jobs(GctlContext *ctx, gint argc, gchar **argv)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) jobs = NULL;

	if (!gctl_parse(ctx, &argc, &argv, NULL, "",
			"List the service's jobs: appliance launches, transfers and "
			"inspections in progress.",
			0, 0))
		return GCTL_EXIT_USAGE;
	jobs = gctl_list_jobs(ctx, &error);
	if (jobs == NULL)
		return gctl_report_error(error, NULL);
	if (ctx->json) {
		gctl_jobs_json(jobs);
		return GCTL_EXIT_OK;
	}
	g_print("%-28s %-16s %8s %-22s %-12s %6s %s\n", "JOB", "OPERATION", "PROGRESS", "BYTES",
		"RATE", "UID", "OBJECTS");
	for (guint i = 0; i < jobs->len; i++) {
		GctlJob *job = g_ptr_array_index(jobs, i);
		const gchar *operation = "";
		gdouble progress = -1;
		guint64 rate = 0;
		guint32 uid = 0;
		g_autofree const gchar **objects = NULL;
		g_autofree gchar *objects_text = NULL;
		g_autofree gchar *progress_text = NULL;
		g_autofree gchar *bytes_text = gctl_job_bytes(job->props);
		g_autofree gchar *rate_text = NULL;

		g_variant_lookup(job->props, "Operation", "&s", &operation);
		g_variant_lookup(job->props, "Progress", "d", &progress);
		g_variant_lookup(job->props, "Rate", "t", &rate);
		g_variant_lookup(job->props, "StartedByUid", "u", &uid);
		if (!g_variant_lookup(job->props, "Objects", "^a&o", &objects))
			objects = g_new0(const gchar *, 1);
		objects_text = g_strjoinv(",", (gchar **)objects);
		progress_text =
		    progress >= 0 ? g_strdup_printf("%d%%", (gint)(progress * 100)) : g_strdup("-");
		if (rate > 0) {
			g_autofree gchar *r = gctl_format_bytes(rate);
			rate_text = g_strdup_printf("%s/s", r);
		} else {
			rate_text = g_strdup("-");
		}
		g_print("%-28s %-16s %8s %-22s %-12s %6u %s\n", job->path, operation, progress_text,
			bytes_text, rate_text, uid, objects_text);
	}
	return GCTL_EXIT_OK;
}

/* JOB as the object path, its number N or the JobId its caller chose. */
static gchar *
gctl_find_job(GctlContext *ctx, const gchar *name, GError **error)
{
	g_autoptr(GPtrArray) jobs = gctl_list_jobs(ctx, error);
	guint64 number;
	gboolean is_number;

	if (jobs == NULL)
		return NULL;
	is_number = g_ascii_string_to_unsigned(name, 10, 0, G_MAXUINT64, &number, NULL);
	for (guint i = 0; i < jobs->len; i++) {
		GctlJob *job = g_ptr_array_index(jobs, i);
		if (g_strcmp0(job->path, name) == 0 || (is_number && job->number == number))
			return g_strdup(job->path);
	}
	for (guint i = 0; i < jobs->len; i++) {
		GctlJob *job = g_ptr_array_index(jobs, i);
		const gchar *job_id = NULL;
		if (g_variant_lookup(job->props, "JobId", "&s", &job_id) && job_id[0] != '\0' &&
		    g_strcmp0(job_id, name) == 0)
			return g_strdup(job->path);
	}
	g_set_error(error, GCTL_ERROR, GCTL_EXIT_NOT_FOUND,
		    "No job '%s' is running; 'guestfsctl jobs' lists the jobs (a job is named "
		    "by its object path, its number or its job-id)",
		    name);
	return NULL;
}

typedef struct {
	gchar *path;
	gboolean removed;
	GMainLoop *loop;
} GctlCancelWait;

static void
gctl_cancel_removed(const gchar *object, GVariant *names, gpointer user_data)
{
	GctlCancelWait *wait = user_data;

	if (g_strcmp0(object, wait->path) != 0)
		return;
	wait->removed = TRUE;
	if (wait->loop != NULL)
		g_main_loop_quit(wait->loop);
}

static gboolean
gctl_cancel_timeout(gpointer user_data)
{
	GctlCancelWait *wait = user_data;

	g_main_loop_quit(wait->loop);
	return G_SOURCE_REMOVE;
}

#define GCTL_CANCEL_WAIT_SECONDS 60

gint
gctl_cmd_cancel(GctlContext *ctx, gint argc, gchar **argv)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autofree gchar *path = NULL;
	GctlCancelWait wait = {0};
	guint subscription;

	if (!gctl_parse(ctx, &argc, &argv, NULL, "JOB",
			"Cancel a job: JOB is its object path, its number or its job-id, as "
			"'guestfsctl jobs' shows them. Returns once the job has ended.",
			1, 1))
		return GCTL_EXIT_USAGE;
	path = gctl_find_job(ctx, argv[1], &error);
	if (path == NULL)
		return gctl_report_error(error, NULL);

	/* watched before the call: the job may end as Cancel returns (arg0
	 * is an object path, which an arg0 match rule would never match) */
	wait.path = path;
	subscription = gctl_subscribe_objects(ctx, "InterfacesRemoved", gctl_cancel_removed, &wait);
	reply = gctl_call(ctx, path, GCTL_IFACE_JOB, "Cancel", g_variant_new("(a{sv})", NULL), NULL,
			  &error);
	if (reply == NULL) {
		g_autofree gchar *remote = g_dbus_error_get_remote_error(error);
		g_dbus_connection_signal_unsubscribe(ctx->bus, subscription);
		/* it ended between the look-up and the call */
		if (wait.removed ||
		    g_strcmp0(remote, "org.freedesktop.DBus.Error.UnknownMethod") == 0 ||
		    g_strcmp0(remote, "org.freedesktop.DBus.Error.UnknownObject") == 0) {
			g_printerr("guestfsctl: job %s has already ended\n", path);
			return GCTL_EXIT_NOT_FOUND;
		}
		return gctl_report_error(error, "Job.Cancel");
	}
	if (!wait.removed) {
		g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
		guint timeout =
		    g_timeout_add_seconds(GCTL_CANCEL_WAIT_SECONDS, gctl_cancel_timeout, &wait);
		wait.loop = loop;
		g_main_loop_run(loop);
		wait.loop = NULL;
		if (wait.removed)
			g_source_remove(timeout);
	}
	g_dbus_connection_signal_unsubscribe(ctx->bus, subscription);
	if (!wait.removed && !ctx->quiet)
		g_printerr("guestfsctl: %s was told to end but has not ended yet\n", path);
	return GCTL_EXIT_OK;
}
