/* vol-download, vol-upload (raw volume bytes through libvirt streams),
 * start-appliance and stop-appliance. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gctl.h"

static gchar *opt_sparse_mode = NULL;
static gint64 opt_offset = 0;
static gint64 opt_length = 0;

static const GOptionEntry gctl_volume_entries[] = {
    {"sparse", 0, 0, G_OPTION_ARG_STRING, &opt_sparse_mode,
     "Holes as holes: auto (the default: when FILE is a regular file that can hold "
     "them), always or never",
     "auto|always|never"},
    {"offset", 0, 0, G_OPTION_ARG_INT64, &opt_offset, "The first byte of the volume", "BYTES"},
    {"length", 0, 0, G_OPTION_ARG_INT64, &opt_length, "How many bytes (default: to the end)",
     "BYTES"},
    G_OPTION_ENTRY_NULL,
};

static gboolean
gctl_is_regular(gint fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
}

/* Whether a regular file has a hole before its end. */
static gboolean
gctl_has_hole(gint fd)
{
	struct stat st;
	off_t pos = lseek(fd, 0, SEEK_CUR);
	off_t hole;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || pos < 0)
		return FALSE;
	hole = lseek(fd, pos, SEEK_HOLE);
	lseek(fd, pos, SEEK_SET);
	return hole >= 0 && hole < st.st_size;
}

static GVariant *
gctl_volume_options(gboolean sparse)
{
	GVariantBuilder options;

	g_variant_builder_init(&options, G_VARIANT_TYPE_VARDICT);
	if (opt_offset > 0)
		g_variant_builder_add(&options, "{sv}", "offset",
				      g_variant_new_uint64((guint64)opt_offset));
	if (opt_length > 0)
		g_variant_builder_add(&options, "{sv}", "length",
				      g_variant_new_uint64((guint64)opt_length));
	if (sparse)
		g_variant_builder_add(&options, "{sv}", "sparse", g_variant_new_boolean(TRUE));
	return g_variant_builder_end(&options);
}

static gboolean
gctl_check_volume_options(const gchar *command)
{
	if (opt_sparse_mode != NULL && g_strcmp0(opt_sparse_mode, "auto") != 0 &&
	    g_strcmp0(opt_sparse_mode, "always") != 0 && g_strcmp0(opt_sparse_mode, "never") != 0) {
		gctl_usage_error(command, "--sparse is auto, always or never");
		return FALSE;
	}
	if (opt_offset < 0 || opt_length < 0) {
		gctl_usage_error(command, "--offset and --length cannot be negative");
		return FALSE;
	}
	return TRUE;
}

gint
gctl_cmd_vol_download(GctlContext *ctx, gint argc, gchar **argv)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GctlObject) obj = NULL;
	gboolean sparse;
	gboolean ok;
	gint fd;

	if (!gctl_parse(ctx, &argc, &argv, gctl_volume_entries, "VOLUME -|FILE",
			"Write a volume's raw bytes, as stored on the host, to FILE or stdout.", 2,
			2) ||
	    !gctl_check_volume_options("vol-download "))
		return GCTL_EXIT_USAGE;
	obj = gctl_resolve(ctx, argv[1], GCTL_KIND_VOLUME, &error);
	if (obj == NULL)
		return gctl_report_error(error, NULL);
	fd = gctl_open_sink(argv[2], &error);
	if (fd < 0)
		return gctl_report_error(error, NULL);
	/* a file opened by the shell with >> cannot take holes; libvirt's
	 * sparse stream needs a regular file it can seek in */
	sparse = g_strcmp0(opt_sparse_mode, "always") == 0 ||
		 (g_strcmp0(opt_sparse_mode, "never") != 0 && gctl_is_regular(fd) &&
		  !(fcntl(fd, F_GETFL) & O_APPEND));
	fflush(stdout);
	ok = gctl_call_with_fd(ctx, obj->path, GCTL_IFACE_VOLUME, "Download", NULL, fd, TRUE,
			       gctl_volume_options(sparse), &error);
	if (ok && sparse && gctl_is_regular(fd)) {
		/* a volume ending in a hole leaves the file short: its size is
		 * where the last byte went */
		off_t end = lseek(fd, 0, SEEK_CUR);
		struct stat st;
		if (end > 0 && fstat(fd, &st) == 0 && st.st_size < end && ftruncate(fd, end) < 0)
			ok = FALSE;
	}
	if (!ok && fd == STDOUT_FILENO && gctl_reader_gone(fd))
		return GCTL_EXIT_CANCELLED;
	if (fd != STDOUT_FILENO)
		close(fd);
	return ok ? GCTL_EXIT_OK : gctl_report_error(error, "Volume.Download");
}

gint
gctl_cmd_vol_upload(GctlContext *ctx, gint argc, gchar **argv)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GctlObject) obj = NULL;
	gboolean sparse;
	gboolean ok;
	gint fd;

	if (!gctl_parse(ctx, &argc, &argv, gctl_volume_entries, "-|FILE VOLUME",
			"Write FILE, or stdin, into a volume's raw storage.", 2, 2) ||
	    !gctl_check_volume_options("vol-upload "))
		return GCTL_EXIT_USAGE;
	obj = gctl_resolve(ctx, argv[2], GCTL_KIND_VOLUME, &error);
	if (obj == NULL)
		return gctl_report_error(error, NULL);
	fd = gctl_open_source(argv[1], &error);
	if (fd < 0)
		return gctl_report_error(error, NULL);
	/* A sparse upload must end at the volume's end (libvirt truncates at
	 * holes): by default only a whole raw volume from offset 0 whose
	 * file has holes goes sparse. */
	sparse = g_strcmp0(opt_sparse_mode, "always") == 0;
	if (opt_sparse_mode == NULL || g_strcmp0(opt_sparse_mode, "auto") == 0) {
		g_autoptr(GVariant) format =
		    gctl_get_property(ctx, obj->path, GCTL_IFACE_VOLUME, "Format", NULL);
		g_autoptr(GVariant) capacity =
		    gctl_get_property(ctx, obj->path, GCTL_IFACE_VOLUME, "Capacity", NULL);
		struct stat st;

		sparse = opt_offset == 0 && opt_length == 0 && format != NULL && capacity != NULL &&
			 g_strcmp0(g_variant_get_string(format, NULL), "raw") == 0 &&
			 fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
			 (guint64)st.st_size == g_variant_get_uint64(capacity) && gctl_has_hole(fd);
	}
	ok = gctl_call_with_fd(ctx, obj->path, GCTL_IFACE_VOLUME, "Upload", NULL, fd, FALSE,
			       gctl_volume_options(sparse), &error);
	if (fd != STDIN_FILENO)
		close(fd);
	return ok ? GCTL_EXIT_OK : gctl_report_error(error, "Volume.Upload");
}

static gint
gctl_appliance(GctlContext *ctx, gint argc, gchar **argv, gboolean start)
{
	gboolean read_write = FALSE;
	const GOptionEntry entries[] = {
	    {"read-write", 'w', 0, G_OPTION_ARG_NONE, &read_write,
	     "Launch with read-write drives (for writes to follow)", NULL},
	    G_OPTION_ENTRY_NULL,
	};
	g_autoptr(GError) error = NULL;
	g_autoptr(GctlObject) obj = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autofree gchar *what = NULL;
	GVariant *args = NULL;

	if (!gctl_parse(ctx, &argc, &argv, start ? entries : NULL, "DOMAIN|VOLUME",
			start ? "Launch the object's appliance now, so that later commands "
				"answer quickly."
			      : "Stop the object's appliance (after the calls already queued).",
			1, 1))
		return GCTL_EXIT_USAGE;
	obj = gctl_resolve(ctx, argv[1], GCTL_KIND_ANY, &error);
	if (obj == NULL)
		return gctl_report_error(error, NULL);
	if (start) {
		GVariantBuilder options;
		g_variant_builder_init(&options, G_VARIANT_TYPE_VARDICT);
		if (read_write)
			g_variant_builder_add(&options, "{sv}", "read-only",
					      g_variant_new_boolean(FALSE));
		args = g_variant_new("(a{sv})", &options);
	}
	what = g_strdup_printf("%s.%s", obj->kind == GCTL_KIND_VOLUME ? "Volume" : "Domain",
			       start ? "StartAppliance" : "StopAppliance");
	reply = gctl_call(ctx, obj->path, gctl_object_iface(obj),
			  start ? "StartAppliance" : "StopAppliance", args, NULL, &error);
	if (reply == NULL) {
		/* read-write needs the write action on a domain */
		return gctl_report_error(error, read_write && obj->kind == GCTL_KIND_DOMAIN
						    ? "Files.StartAppliance"
						    : what);
	}
	return GCTL_EXIT_OK;
}

gint
gctl_cmd_start_appliance(GctlContext *ctx, gint argc, gchar **argv)
{
	return gctl_appliance(ctx, argc, argv, TRUE);
}

gint
gctl_cmd_stop_appliance(GctlContext *ctx, gint argc, gchar **argv)
{
	return gctl_appliance(ctx, argc, argv, FALSE);
}
