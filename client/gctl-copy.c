/* cat, copy-out, copy-in, tar-out, tar-in, write, edit: file data in and
 * out of the guest through passed file descriptors. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gctl.h"

static GVariantBuilder *
gctl_guest_builder(void)
{
	GVariantBuilder *options = g_variant_builder_new(G_VARIANT_TYPE_VARDICT);

	gctl_add_root_options(options, gctl_opt_root, gctl_opt_filesystem);
	return options;
}

static gboolean
gctl_download(GctlContext *ctx, GctlObject *obj, const gchar *path, gint fd, GError **error)
{
	g_autoptr(GVariantBuilder) options = gctl_guest_builder();

	return gctl_call_with_fd(ctx, obj->path, GCTL_IFACE_FILES, "Download",
				 g_variant_new("(s)", path), fd, TRUE,
				 g_variant_builder_end(options), error);
}

/* Upload from @fd, with its size when it is a regular file (a source
 * that ends early then leaves the target as it was). */
static gboolean
gctl_upload(
    GctlContext *ctx, GctlObject *obj, const gchar *path, gint fd, gint mode, GError **error)
{
	g_autoptr(GVariantBuilder) options = gctl_guest_builder();
	struct stat st;

	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
		off_t pos = lseek(fd, 0, SEEK_CUR);
		if (pos >= 0 && pos <= st.st_size)
			g_variant_builder_add(options, "{sv}", "size",
					      g_variant_new_uint64((guint64)(st.st_size - pos)));
	}
	if (mode >= 0)
		g_variant_builder_add(options, "{sv}", "mode", g_variant_new_uint32((guint32)mode));
	return gctl_call_with_fd(ctx, obj->path, GCTL_IFACE_FILES, "Upload",
				 g_variant_new("(s)", path), fd, FALSE,
				 g_variant_builder_end(options), error);
}

gint
gctl_cmd_cat(GctlContext *ctx, gint argc, gchar **argv)
{
	const GOptionEntry entries[] = {GCTL_GUEST_OPTIONS, G_OPTION_ENTRY_NULL};
	g_autoptr(GError) error = NULL;
	g_autoptr(GctlObject) obj = NULL;

	if (!gctl_parse(ctx, &argc, &argv, entries, "DOMAIN|VOLUME PATH...",
			"Write guest files to stdout, as they are (binary safe).", 2, -1))
		return GCTL_EXIT_USAGE;
	obj = gctl_resolve(ctx, argv[1], GCTL_KIND_ANY, &error);
	if (obj == NULL)
		return gctl_report_error(error, NULL);
	fflush(stdout);
	for (gint i = 2; i < argc; i++) {
		if (!gctl_download(ctx, obj, argv[i], STDOUT_FILENO, &error)) {
			if (gctl_reader_gone(STDOUT_FILENO))
				return GCTL_EXIT_CANCELLED;
			return gctl_report_error(error, "Files.Download");
		}
	}
	return GCTL_EXIT_OK;
}

/* tar, run here with its stdin or stdout being @fd (closed here). */
static GSubprocess *
gctl_spawn_tar(const gchar *const *args, gint fd, gboolean fd_is_stdin, GError **error)
{
	g_autoptr(GSubprocessLauncher) launcher =
	    g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_NONE);

	if (fd_is_stdin)
		g_subprocess_launcher_take_stdin_fd(launcher, fd);
	else
		g_subprocess_launcher_take_stdout_fd(launcher, fd);
	return g_subprocess_launcher_spawnv(launcher, args, error);
}

static gboolean
gctl_wait_tar(GSubprocess *tar, GError **error)
{
	if (!g_subprocess_wait_check(tar, NULL, error)) {
		g_prefix_error(error, "tar: ");
		return FALSE;
	}
	return TRUE;
}

/* A guest directory goes out as a tar archive unpacked by tar here, as
 * virt-copy-out does. */
static gboolean
gctl_copy_out_dir(
    GctlContext *ctx, GctlObject *obj, const gchar *path, const gchar *hostdir, GError **error)
{
	g_autofree gchar *base = g_path_get_basename(path);
	g_autofree gchar *target = g_build_filename(hostdir, base, NULL);
	g_autoptr(GSubprocess) tar = NULL;
	g_autoptr(GVariantBuilder) options = gctl_guest_builder();
	const gchar *args[] = {"tar", "-x", "-C", target, "-f", "-", NULL};
	gint fds[2];
	gboolean ok;

	if (g_mkdir_with_parents(target, 0755) < 0) {
		g_set_error(error, GCTL_ERROR, GCTL_EXIT_FAILED, "Cannot create %s: %s", target,
			    g_strerror(errno));
		return FALSE;
	}
	if (pipe2(fds, O_CLOEXEC) < 0) {
		g_set_error(error, GCTL_ERROR, GCTL_EXIT_FAILED, "Cannot create a pipe: %s",
			    g_strerror(errno));
		return FALSE;
	}
	tar = gctl_spawn_tar(args, fds[0], TRUE, error);
	if (tar == NULL) {
		close(fds[1]);
		return FALSE;
	}
	ok = gctl_call_with_fd(ctx, obj->path, GCTL_IFACE_FILES, "TarOut",
			       g_variant_new("(s)", path), fds[1], TRUE,
			       g_variant_builder_end(options), error);
	close(fds[1]);
	if (!ok) {
		g_subprocess_force_exit(tar);
		g_subprocess_wait(tar, NULL, NULL);
		return FALSE;
	}
	return gctl_wait_tar(tar, error);
}

/* A directory as a tree below HOSTDIR, anything else as a file there. */
static gint
gctl_copy_out_one(GctlContext *ctx, GctlObject *obj, const gchar *path, const gchar *hostdir)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GVariant) info = NULL;
	g_autoptr(GVariantBuilder) options = gctl_guest_builder();
	g_autofree gchar *base = g_path_get_basename(path);
	g_autofree gchar *target = g_build_filename(hostdir, base, NULL);
	const gchar *type = "";
	gboolean ok;
	gint fd;

	reply =
	    gctl_call(ctx, obj->path, GCTL_IFACE_FILES, "Stat",
		      g_variant_new("(sa{sv})", path, options), G_VARIANT_TYPE("(a{sv})"), &error);
	if (reply == NULL)
		return gctl_report_error(error, "Files.Stat");
	info = g_variant_get_child_value(reply, 0);
	g_variant_lookup(info, "type", "&s", &type);
	if (g_strcmp0(type, "directory") == 0) {
		if (!gctl_copy_out_dir(ctx, obj, path, hostdir, &error))
			return gctl_report_error(error, "Files.TarOut");
		return GCTL_EXIT_OK;
	}
	fd = gctl_open_sink(target, &error);
	if (fd < 0)
		return gctl_report_error(error, NULL);
	ok = gctl_download(ctx, obj, path, fd, &error);
	close(fd);
	return ok ? GCTL_EXIT_OK : gctl_report_error(error, "Files.Download");
}

gint
gctl_cmd_copy_out(GctlContext *ctx, gint argc, gchar **argv)
{
	const GOptionEntry entries[] = {GCTL_GUEST_OPTIONS, G_OPTION_ENTRY_NULL};
	g_autoptr(GError) error = NULL;
	g_autoptr(GctlObject) obj = NULL;
	const gchar *hostdir;

	if (!gctl_parse(ctx, &argc, &argv, entries, "DOMAIN|VOLUME PATH... HOSTDIR",
			"Copy guest files and directories (recursively) into a host directory.", 3,
			-1))
		return GCTL_EXIT_USAGE;
	hostdir = argv[argc - 1];
	if (!g_file_test(hostdir, G_FILE_TEST_IS_DIR))
		return gctl_usage_error("copy-out ", "%s is not a directory", hostdir);
	obj = gctl_resolve(ctx, argv[1], GCTL_KIND_ANY, &error);
	if (obj == NULL)
		return gctl_report_error(error, NULL);
	for (gint i = 2; i < argc - 1; i++) {
		gint status = gctl_copy_out_one(ctx, obj, argv[i], hostdir);
		if (status != GCTL_EXIT_OK)
			return status;
	}
	return GCTL_EXIT_OK;
}

/* A host directory goes in as a tar archive made by tar here, as
 * virt-copy-in does. */
static gboolean
gctl_copy_in_dir(
    GctlContext *ctx, GctlObject *obj, const gchar *hostdir, const gchar *dir, GError **error)
{
	g_autofree gchar *parent = g_path_get_dirname(hostdir);
	g_autofree gchar *base = g_path_get_basename(hostdir);
	g_autoptr(GSubprocess) tar = NULL;
	g_autoptr(GVariantBuilder) options = gctl_guest_builder();
	const gchar *args[] = {"tar", "-c", "-C", parent, "-f", "-", base, NULL};
	gint fds[2];
	gboolean ok;

	if (pipe2(fds, O_CLOEXEC) < 0) {
		g_set_error(error, GCTL_ERROR, GCTL_EXIT_FAILED, "Cannot create a pipe: %s",
			    g_strerror(errno));
		return FALSE;
	}
	tar = gctl_spawn_tar(args, fds[1], FALSE, error);
	if (tar == NULL) {
		close(fds[0]);
		return FALSE;
	}
	ok = gctl_call_with_fd(ctx, obj->path, GCTL_IFACE_FILES, "TarIn", g_variant_new("(s)", dir),
			       fds[0], FALSE, g_variant_builder_end(options), error);
	close(fds[0]);
	if (!ok) {
		g_subprocess_force_exit(tar);
		g_subprocess_wait(tar, NULL, NULL);
		return FALSE;
	}
	return gctl_wait_tar(tar, error);
}

/* A host file keeps its permission bits. */
static gint
gctl_copy_in_one(GctlContext *ctx, GctlObject *obj, const gchar *hostfile, const gchar *dir)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *base = g_path_get_basename(hostfile);
	g_autofree gchar *target = g_build_filename(dir, base, NULL);
	struct stat st;
	gboolean ok;
	gint fd;

	if (stat(hostfile, &st) < 0) {
		g_printerr("guestfsctl: cannot read %s: %s\n", hostfile, g_strerror(errno));
		return errno == ENOENT ? GCTL_EXIT_NOT_FOUND : GCTL_EXIT_FAILED;
	}
	if (S_ISDIR(st.st_mode)) {
		if (!gctl_copy_in_dir(ctx, obj, hostfile, dir, &error))
			return gctl_report_error(error, "Files.TarIn");
		return GCTL_EXIT_OK;
	}
	fd = gctl_open_source(hostfile, &error);
	if (fd < 0)
		return gctl_report_error(error, NULL);
	ok = gctl_upload(ctx, obj, target, fd, st.st_mode & 07777, &error);
	close(fd);
	return ok ? GCTL_EXIT_OK : gctl_report_error(error, "Files.Upload");
}

gint
gctl_cmd_copy_in(GctlContext *ctx, gint argc, gchar **argv)
{
	const GOptionEntry entries[] = {GCTL_GUEST_OPTIONS, G_OPTION_ENTRY_NULL};
	g_autoptr(GError) error = NULL;
	g_autoptr(GctlObject) obj = NULL;
	const gchar *dir;

	if (!gctl_parse(ctx, &argc, &argv, entries, "HOSTFILE... DOMAIN|VOLUME DIR",
			"Copy host files and directories (recursively) into a guest directory.", 3,
			-1))
		return GCTL_EXIT_USAGE;
	dir = argv[argc - 1];
	obj = gctl_resolve(ctx, argv[argc - 2], GCTL_KIND_ANY, &error);
	if (obj == NULL)
		return gctl_report_error(error, NULL);
	for (gint i = 1; i < argc - 2; i++) {
		gint status = gctl_copy_in_one(ctx, obj, argv[i], dir);
		if (status != GCTL_EXIT_OK)
			return status;
	}
	return GCTL_EXIT_OK;
}

static gchar **opt_excludes = NULL;

gint
gctl_cmd_tar_out(GctlContext *ctx, gint argc, gchar **argv)
{
	gboolean gzip = FALSE;
	gboolean xz = FALSE;
	const GOptionEntry entries[] = {
	    {"gzip", 'z', 0, G_OPTION_ARG_NONE, &gzip, "Compress with gzip", NULL},
	    {"xz", 'J', 0, G_OPTION_ARG_NONE, &xz, "Compress with xz", NULL},
	    {"exclude", 'x', 0, G_OPTION_ARG_STRING_ARRAY, &opt_excludes,
	     "Leave out files matching PATTERN (repeatable)", "PATTERN"},
	    GCTL_GUEST_OPTIONS,
	    G_OPTION_ENTRY_NULL,
	};
	g_autoptr(GError) error = NULL;
	g_autoptr(GctlObject) obj = NULL;
	g_autoptr(GVariantBuilder) options = NULL;
	gint fd;
	gboolean ok;

	if (!gctl_parse(ctx, &argc, &argv, entries, "DOMAIN|VOLUME DIR -|FILE",
			"Write a guest directory as a tar archive to FILE, or stdout with -.", 3,
			3))
		return GCTL_EXIT_USAGE;
	if (gzip && xz)
		return gctl_usage_error("tar-out ", "--gzip and --xz exclude each other");
	obj = gctl_resolve(ctx, argv[1], GCTL_KIND_ANY, &error);
	if (obj == NULL)
		return gctl_report_error(error, NULL);
	options = gctl_guest_builder();
	if (gzip || xz)
		g_variant_builder_add(options, "{sv}", "compress",
				      g_variant_new_string(gzip ? "gzip" : "xz"));
	if (opt_excludes != NULL)
		g_variant_builder_add(options, "{sv}", "excludes",
				      g_variant_new_strv((const gchar *const *)opt_excludes, -1));
	fd = gctl_open_sink(argv[3], &error);
	if (fd < 0)
		return gctl_report_error(error, NULL);
	fflush(stdout);
	ok = gctl_call_with_fd(ctx, obj->path, GCTL_IFACE_FILES, "TarOut",
			       g_variant_new("(s)", argv[2]), fd, TRUE,
			       g_variant_builder_end(options), &error);
	if (!ok && fd == STDOUT_FILENO && gctl_reader_gone(fd))
		return GCTL_EXIT_CANCELLED;
	if (fd != STDOUT_FILENO)
		close(fd);
	return ok ? GCTL_EXIT_OK : gctl_report_error(error, "Files.TarOut");
}

gint
gctl_cmd_tar_in(GctlContext *ctx, gint argc, gchar **argv)
{
	gboolean gzip = FALSE;
	gboolean xz = FALSE;
	const GOptionEntry entries[] = {
	    {"gzip", 'z', 0, G_OPTION_ARG_NONE, &gzip, "The archive is gzip-compressed", NULL},
	    {"xz", 'J', 0, G_OPTION_ARG_NONE, &xz, "The archive is xz-compressed", NULL},
	    GCTL_GUEST_OPTIONS,
	    G_OPTION_ENTRY_NULL,
	};
	g_autoptr(GError) error = NULL;
	g_autoptr(GctlObject) obj = NULL;
	g_autoptr(GVariantBuilder) options = NULL;
	gint fd;
	gboolean ok;

	if (!gctl_parse(ctx, &argc, &argv, entries, "-|FILE DOMAIN|VOLUME DIR",
			"Unpack a tar archive from FILE, or stdin with -, into a guest "
			"directory.",
			3, 3))
		return GCTL_EXIT_USAGE;
	if (gzip && xz)
		return gctl_usage_error("tar-in ", "--gzip and --xz exclude each other");
	obj = gctl_resolve(ctx, argv[2], GCTL_KIND_ANY, &error);
	if (obj == NULL)
		return gctl_report_error(error, NULL);
	options = gctl_guest_builder();
	if (gzip || xz)
		g_variant_builder_add(options, "{sv}", "compress",
				      g_variant_new_string(gzip ? "gzip" : "xz"));
	fd = gctl_open_source(argv[1], &error);
	if (fd < 0)
		return gctl_report_error(error, NULL);
	ok = gctl_call_with_fd(ctx, obj->path, GCTL_IFACE_FILES, "TarIn",
			       g_variant_new("(s)", argv[3]), fd, FALSE,
			       g_variant_builder_end(options), &error);
	if (fd != STDIN_FILENO)
		close(fd);
	return ok ? GCTL_EXIT_OK : gctl_report_error(error, "Files.TarIn");
}

gint
gctl_cmd_write(GctlContext *ctx, gint argc, gchar **argv)
{
	gchar *mode_text = NULL;
	const GOptionEntry entries[] = {
	    {"mode", 'm', 0, G_OPTION_ARG_STRING, &mode_text,
	     "Permission bits, in octal (default: kept, or 0644 for a new file)", "MODE"},
	    GCTL_GUEST_OPTIONS,
	    G_OPTION_ENTRY_NULL,
	};
	g_autoptr(GError) error = NULL;
	g_autoptr(GctlObject) obj = NULL;
	gint mode = -1;

	if (!gctl_parse(ctx, &argc, &argv, entries, "DOMAIN|VOLUME PATH",
			"Replace a guest file with what stdin holds, atomically: the file is "
			"replaced whole or not at all.",
			2, 2))
		return GCTL_EXIT_USAGE;
	if (mode_text != NULL) {
		guint64 m;
		if (!g_ascii_string_to_unsigned(mode_text, 8, 0, 07777, &m, NULL))
			return gctl_usage_error("write ", "--mode must be octal, at most 07777");
		mode = (gint)m;
	}
	obj = gctl_resolve(ctx, argv[1], GCTL_KIND_ANY, &error);
	if (obj == NULL)
		return gctl_report_error(error, NULL);
	if (!gctl_upload(ctx, obj, argv[2], STDIN_FILENO, mode, &error))
		return gctl_report_error(error, "Files.Upload");
	return GCTL_EXIT_OK;
}

static gchar *
gctl_file_digest(const gchar *path)
{
	g_autofree gchar *data = NULL;
	gsize len = 0;

	if (!g_file_get_contents(path, &data, &len, NULL))
		return NULL;
	return g_compute_checksum_for_data(G_CHECKSUM_SHA256, (const guchar *)data, len);
}

static gboolean
gctl_run_editor(const gchar *file, GError **error)
{
	const gchar *editor = g_getenv("VISUAL");
	gint status = 0;
	const gchar *args[] = {"/bin/sh", "-c", "exec $GCTL_EDITOR \"$1\"", "sh", file, NULL};
	g_auto(GStrv) env = g_get_environ();

	if (editor == NULL || *editor == '\0')
		editor = g_getenv("EDITOR");
	if (editor == NULL || *editor == '\0')
		editor = "vi";
	/* through the shell: EDITOR may carry arguments ("emacs -nw") */
	env = g_environ_setenv(env, "GCTL_EDITOR", editor, TRUE);
	if (!g_spawn_sync(NULL, (gchar **)args, env, G_SPAWN_CHILD_INHERITS_STDIN, NULL, NULL, NULL,
			  NULL, &status, error))
		return FALSE;
	if (!g_spawn_check_wait_status(status, error)) {
		g_prefix_error(error, "The editor %s failed, nothing was written: ", editor);
		return FALSE;
	}
	return TRUE;
}

gint
gctl_cmd_edit(GctlContext *ctx, gint argc, gchar **argv)
{
	const GOptionEntry entries[] = {GCTL_GUEST_OPTIONS, G_OPTION_ENTRY_NULL};
	g_autoptr(GError) error = NULL;
	g_autoptr(GctlObject) obj = NULL;
	g_autofree gchar *dir = NULL;
	g_autofree gchar *base = NULL;
	g_autofree gchar *file = NULL;
	g_autofree gchar *before = NULL;
	g_autofree gchar *after = NULL;
	gint status = GCTL_EXIT_OK;
	gint fd;

	if (!gctl_parse(ctx, &argc, &argv, entries, "DOMAIN|VOLUME PATH",
			"Edit a guest file with $VISUAL or $EDITOR on a copy; the file is "
			"replaced atomically, and not at all when the copy is unchanged.",
			2, 2))
		return GCTL_EXIT_USAGE;
	obj = gctl_resolve(ctx, argv[1], GCTL_KIND_ANY, &error);
	if (obj == NULL)
		return gctl_report_error(error, NULL);
	dir = g_dir_make_tmp("guestfsctl-edit-XXXXXX", &error);
	if (dir == NULL)
		return gctl_report_error(error, NULL);
	/* the same name, so the editor recognises the file type */
	base = g_path_get_basename(argv[2]);
	file = g_build_filename(dir, base, NULL);
	fd = open(file, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		g_printerr("guestfsctl: cannot create %s: %s\n", file, g_strerror(errno));
		status = GCTL_EXIT_FAILED;
		goto out;
	}
	if (!gctl_download(ctx, obj, argv[2], fd, &error)) {
		close(fd);
		status = gctl_report_error(error, "Files.Download");
		goto out;
	}
	close(fd);
	before = gctl_file_digest(file);
	if (!gctl_run_editor(file, &error)) {
		status = gctl_report_error(error, NULL);
		goto out;
	}
	after = gctl_file_digest(file);
	if (g_strcmp0(before, after) == 0) {
		if (!ctx->quiet)
			g_printerr("guestfsctl: %s unchanged, nothing written\n", argv[2]);
		goto out;
	}
	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || !gctl_upload(ctx, obj, argv[2], fd, -1, &error)) {
		if (error != NULL)
			status = gctl_report_error(error, "Files.Upload");
		else
			status = GCTL_EXIT_FAILED;
		g_printerr("guestfsctl: your edited copy is kept in %s\n", file);
		if (fd >= 0)
			close(fd);
		g_clear_pointer(&dir, g_free); /* keep it */
		return status;
	}
	close(fd);
out:
	if (file != NULL)
		unlink(file);
	if (dir != NULL)
		rmdir(dir);
	return status;
}
