/* What a long call shows on a terminal while it runs. Every long call
 * passes a job-id of its own (gctl_job_id_new()) when the method takes
 * one; the service's Job object with that JobId (org.libvirt.GuestFS.Job,
 * appearing through the ObjectManager) then drives one line on stderr:
 * the operation, the percentage, bytes done and total, the rate and the
 * time left. Calls that take no job-id (Inspector, ReadDir...) follow the
 * appliance-launch Job of their object instead, and, when there is none
 * (an older service), its ApplianceState. Never on a non-terminal, never
 * with --quiet or --json; the line is erased before the command's own
 * output and at the end. */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "gctl.h"

typedef struct {
	gchar *path;
	GVariantDict *props;
} GctlWatchedJob;

static void
gctl_watched_job_free(GctlWatchedJob *job)
{
	g_free(job->path);
	g_variant_dict_unref(job->props);
	g_free(job);
}

struct _GctlProgress {
	GctlContext *ctx;
	gchar *path;   /* the object the call concerns */
	gchar *job_id; /* the call's job-id, or NULL */
	guint state_subscription;
	guint added_subscription;
	guint removed_subscription;
	guint job_subscription;
	guint timer;
	/* the call's jobs still there, in the order they appeared: the line
	 * shows the latest (a transfer after its launch, a launch during
	 * InspectDomains) */
	GPtrArray *jobs;
	gboolean launching; /* ApplianceState says "starting" */
	gboolean hidden;    /* the command's output is on the terminal */
	gboolean shown;
};

gchar *
gctl_job_id_new(void)
{
	static guint counter = 0;

	return g_strdup_printf("guestfsctl-%d-%u", (gint)getpid(), ++counter);
}

GVariant *
gctl_options_with_job_id(GVariant *options, const gchar *job_id)
{
	/* the caller's reference (or the floating one) is ours */
	g_autoptr(GVariant) sunk = g_variant_take_ref(options);
	GVariantDict dict;

	g_variant_dict_init(&dict, sunk);
	g_variant_dict_insert(&dict, "job-id", "s", job_id);
	return g_variant_dict_end(&dict);
}

/* @args (a tuple whose last member is the options a{sv}, floating or
 * the caller's reference, taken) with job-id added to the options */
GVariant *
gctl_args_with_job_id(GVariant *args, const gchar *job_id)
{
	g_autoptr(GVariant) sunk = g_variant_take_ref(args);
	gsize n = g_variant_n_children(sunk);
	GVariantBuilder builder;

	g_variant_builder_init(&builder, G_VARIANT_TYPE_TUPLE);
	for (gsize i = 0; i < n; i++) {
		g_autoptr(GVariant) child = g_variant_get_child_value(sunk, i);
		if (i + 1 == n && g_variant_is_of_type(child, G_VARIANT_TYPE_VARDICT))
			g_variant_builder_add_value(
			    &builder, gctl_options_with_job_id(g_steal_pointer(&child), job_id));
		else
			g_variant_builder_add_value(&builder, child);
	}
	return g_variant_builder_end(&builder);
}

/* 1536 -> "1.5 KiB" */
gchar *
gctl_format_bytes(guint64 bytes)
{
	static const gchar *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
	gdouble value = (gdouble)bytes;
	gsize unit = 0;

	if (bytes < 1024)
		return g_strdup_printf("%" G_GUINT64_FORMAT " B", bytes);
	while (value >= 1024 && unit + 1 < G_N_ELEMENTS(units)) {
		value /= 1024;
		unit++;
	}
	return g_strdup_printf("%.1f %s", value, units[unit]);
}

static const gchar *
gctl_operation_label(const gchar *operation)
{
	static const struct {
		const gchar *operation;
		const gchar *label;
	} labels[] = {
	    {"appliance-launch", "launching the appliance"},
	    {"files-download", "downloading"},
	    {"files-upload", "uploading"},
	    {"files-tar-out", "archiving"},
	    {"files-tar-in", "unpacking"},
	    {"volume-download", "downloading the volume"},
	    {"volume-upload", "uploading the volume"},
	    {"inspect-domains", "inspecting"},
	};

	for (gsize i = 0; i < G_N_ELEMENTS(labels); i++) {
		if (g_strcmp0(operation, labels[i].operation) == 0)
			return labels[i].label;
	}
	return operation;
}

/* The job's line: "downloading 45% 115.2 MiB of 256.0 MiB, 2.5 MiB/s,
 * 0:56 left". */
static gchar *
gctl_progress_job_line(GVariantDict *job)
{
	GString *line = g_string_new(NULL);
	const gchar *operation = "working";
	gdouble progress = -1;
	guint64 done = 0, total = 0, rate = 0, end = 0;

	g_variant_dict_lookup(job, "Operation", "&s", &operation);
	g_variant_dict_lookup(job, "Progress", "d", &progress);
	g_variant_dict_lookup(job, "BytesDone", "t", &done);
	g_variant_dict_lookup(job, "BytesTotal", "t", &total);
	g_variant_dict_lookup(job, "Rate", "t", &rate);
	g_variant_dict_lookup(job, "ExpectedEndTime", "t", &end);

	g_string_append(line, gctl_operation_label(operation));
	if (g_strcmp0(operation, "appliance-launch") == 0 && progress < 0)
		g_string_append(line, "...");
	if (progress >= 0)
		g_string_append_printf(line, " %d%%", MIN((gint)(progress * 100), 100));
	if (g_strcmp0(operation, "inspect-domains") == 0) {
		if (total > 0)
			g_string_append_printf(
			    line, " %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT " domains", done,
			    total);
	} else if (done > 0 || total > 0) {
		g_autofree gchar *d = gctl_format_bytes(done);
		if (total > 0) {
			g_autofree gchar *t = gctl_format_bytes(total);
			g_string_append_printf(line, " %s of %s", d, t);
		} else {
			g_string_append_printf(line, " %s", d);
		}
	}
	if (rate > 0) {
		g_autofree gchar *r = gctl_format_bytes(rate);
		g_string_append_printf(line, ", %s/s", r);
	}
	if (end > 0) {
		gint64 left = ((gint64)end - g_get_real_time()) / G_USEC_PER_SEC;
		if (left < 0)
			left = 0;
		if (left >= 3600)
			g_string_append_printf(line, ", %d:%02d:%02d left", (gint)(left / 3600),
					       (gint)(left / 60 % 60), (gint)(left % 60));
		else
			g_string_append_printf(line, ", %d:%02d left", (gint)(left / 60),
					       (gint)(left % 60));
	}
	return g_string_free(line, FALSE);
}

static void
gctl_progress_clear(GctlProgress *self)
{
	if (!self->shown)
		return;
	/* erase the line: the command's own output comes next */
	g_printerr("\r\033[K");
	self->shown = FALSE;
}

static void
gctl_progress_render(GctlProgress *self)
{
	g_autofree gchar *text = NULL;
	g_autofree gchar *line = NULL;
	struct winsize size = {0};

	if (self->hidden)
		return;
	if (self->jobs->len > 0) {
		GctlWatchedJob *job = g_ptr_array_index(self->jobs, self->jobs->len - 1);
		text = gctl_progress_job_line(job->props);
	} else if (self->launching) {
		text = g_strdup("launching the appliance...");
	}
	if (text == NULL) {
		gctl_progress_clear(self);
		return;
	}
	line = g_strdup_printf("guestfsctl: %s", text);
	/* a line that wraps could not be erased by \r */
	if (ioctl(STDERR_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 1 &&
	    strlen(line) >= size.ws_col)
		line[size.ws_col - 1] = '\0';
	g_printerr("\r\033[K%s", line);
	self->shown = TRUE;
}

static gboolean
gctl_progress_tick(gpointer user_data)
{
	GctlProgress *self = user_data;

	/* the time left changes without a property change */
	if (self->jobs->len > 0)
		gctl_progress_render(self);
	return G_SOURCE_CONTINUE;
}

static void
gctl_progress_state_changed(const gchar *path,
			    const gchar *iface,
			    GVariant *changed,
			    GVariant *invalidated,
			    gpointer user_data)
{
	GctlProgress *self = user_data;
	const gchar *state = NULL;

	if (g_variant_lookup(changed, "ApplianceState", "&s", &state)) {
		self->launching = g_strcmp0(state, "starting") == 0;
		gctl_progress_render(self);
	}
}

static gboolean
gctl_progress_find_job(GctlProgress *self, const gchar *path, guint *index)
{
	for (guint i = 0; i < self->jobs->len; i++) {
		GctlWatchedJob *job = g_ptr_array_index(self->jobs, i);
		if (g_strcmp0(job->path, path) == 0) {
			*index = i;
			return TRUE;
		}
	}
	return FALSE;
}

static void
gctl_progress_job_changed(const gchar *path,
			  const gchar *iface,
			  GVariant *changed,
			  GVariant *invalidated,
			  gpointer user_data)
{
	GctlProgress *self = user_data;
	GctlWatchedJob *job;
	GVariantIter iter;
	const gchar *name;
	GVariant *value;
	guint index;

	if (!gctl_progress_find_job(self, path, &index))
		return;
	if (g_strcmp0(iface, GCTL_IFACE_JOB) != 0)
		return;
	job = g_ptr_array_index(self->jobs, index);
	g_variant_iter_init(&iter, changed);
	while (g_variant_iter_loop(&iter, "{&sv}", &name, &value))
		g_variant_dict_insert_value(job->props, name, value);
	gctl_progress_render(self);
}

/* Whether the job with properties @props is the call's: its job-id, or,
 * for a call without one, a launch of the call's object. */
static gboolean
gctl_progress_is_ours(GctlProgress *self, GVariant *props)
{
	const gchar *job_id = NULL;
	const gchar *operation = NULL;
	g_autofree const gchar **objects = NULL;

	if (self->job_id != NULL)
		return g_variant_lookup(props, "JobId", "&s", &job_id) &&
		       g_strcmp0(job_id, self->job_id) == 0;
	if (!g_variant_lookup(props, "Operation", "&s", &operation) ||
	    g_strcmp0(operation, "appliance-launch") != 0 ||
	    !g_variant_lookup(props, "Objects", "^a&o", &objects))
		return FALSE;
	return g_strv_contains((const gchar *const *)objects, self->path);
}

static void
gctl_progress_added(const gchar *object, GVariant *ifaces, gpointer user_data)
{
	GctlProgress *self = user_data;
	g_autoptr(GVariant) props = NULL;
	GctlWatchedJob *job;
	guint index;

	props = gctl_job_properties(ifaces);
	if (props == NULL || !gctl_progress_is_ours(self, props) ||
	    gctl_progress_find_job(self, object, &index))
		return;
	job = g_new0(GctlWatchedJob, 1);
	job->path = g_strdup(object);
	job->props = g_variant_dict_new(props);
	g_ptr_array_add(self->jobs, job);
	gctl_progress_render(self);
}

static void
gctl_progress_removed(const gchar *object, GVariant *names, gpointer user_data)
{
	GctlProgress *self = user_data;
	guint index;

	if (!gctl_progress_find_job(self, object, &index))
		return;
	g_ptr_array_remove_index(self->jobs, index);
	gctl_progress_render(self);
}

GctlProgress *
gctl_progress_start(GctlContext *ctx,
		    const gchar *object_path,
		    const gchar *what,
		    const gchar *job_id)
{
	GctlProgress *self;

	if (ctx->quiet || ctx->json || !isatty(STDERR_FILENO))
		return NULL;
	self = g_new0(GctlProgress, 1);
	self->ctx = ctx;
	self->path = g_strdup(object_path);
	self->job_id = g_strdup(job_id);
	self->jobs = g_ptr_array_new_with_free_func((GDestroyNotify)gctl_watched_job_free);
	/* subscribed before the call is made: its jobs cannot be missed */
	self->added_subscription =
	    gctl_subscribe_objects(ctx, "InterfacesAdded", gctl_progress_added, self);
	self->removed_subscription =
	    gctl_subscribe_objects(ctx, "InterfacesRemoved", gctl_progress_removed, self);
	self->job_subscription =
	    gctl_subscribe_properties(ctx, NULL, GCTL_IFACE_JOB, gctl_progress_job_changed, self);
	self->state_subscription =
	    gctl_subscribe_properties(ctx, object_path, NULL, gctl_progress_state_changed, self);
	self->timer = g_timeout_add_seconds(1, gctl_progress_tick, self);
	return self;
}

void
gctl_progress_hide(GctlProgress *self)
{
	if (self == NULL || self->hidden)
		return;
	gctl_progress_clear(self);
	self->hidden = TRUE;
}

void
gctl_progress_stop(GctlProgress *self)
{
	if (self == NULL)
		return;
	g_dbus_connection_signal_unsubscribe(self->ctx->bus, self->added_subscription);
	g_dbus_connection_signal_unsubscribe(self->ctx->bus, self->removed_subscription);
	g_dbus_connection_signal_unsubscribe(self->ctx->bus, self->job_subscription);
	g_dbus_connection_signal_unsubscribe(self->ctx->bus, self->state_subscription);
	g_source_remove(self->timer);
	gctl_progress_clear(self);
	g_ptr_array_unref(self->jobs);
	g_free(self->job_id);
	g_free(self->path);
	g_free(self);
}
