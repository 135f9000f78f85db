/* ls, stat, mkdir, rm, mv, chmod, chown, ln: the Files calls that pass
 * no data. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gctl.h"

static GVariant *
gctl_guest_options(void)
{
	GVariantBuilder options;

	g_variant_builder_init(&options, G_VARIANT_TYPE_VARDICT);
	gctl_add_root_options(&options, gctl_opt_root, gctl_opt_filesystem);
	return g_variant_builder_end(&options);
}

/* "drwxr-xr-x" */
static void
gctl_mode_string(guint32 mode, gchar out[11])
{
	static const gchar *rwx = "rwxrwxrwx";

	switch (mode & S_IFMT) {
	case S_IFDIR:
		out[0] = 'd';
		break;
	case S_IFLNK:
		out[0] = 'l';
		break;
	case S_IFCHR:
		out[0] = 'c';
		break;
	case S_IFBLK:
		out[0] = 'b';
		break;
	case S_IFIFO:
		out[0] = 'p';
		break;
	case S_IFSOCK:
		out[0] = 's';
		break;
	default:
		out[0] = '-';
	}
	for (gint i = 0; i < 9; i++)
		out[i + 1] = (mode & (1u << (8 - i))) ? rwx[i] : '-';
	if (mode & S_ISUID)
		out[3] = (mode & S_IXUSR) ? 's' : 'S';
	if (mode & S_ISGID)
		out[6] = (mode & S_IXGRP) ? 's' : 'S';
	if (mode & S_ISVTX)
		out[9] = (mode & S_IXOTH) ? 't' : 'T';
	out[10] = '\0';
}

static void
gctl_print_entry(GVariant *entry, gboolean long_format)
{
	const gchar *name = "";
	const gchar *target = NULL;
	guint32 mode = 0, uid = 0, gid = 0;
	guint64 size = 0;
	gint64 mtime = 0;
	gchar mode_text[11];
	g_autoptr(GDateTime) when = NULL;
	g_autofree gchar *when_text = NULL;

	g_variant_lookup(entry, "name", "&s", &name);
	if (!long_format) {
		g_print("%s\n", name);
		return;
	}
	g_variant_lookup(entry, "mode", "u", &mode);
	g_variant_lookup(entry, "uid", "u", &uid);
	g_variant_lookup(entry, "gid", "u", &gid);
	g_variant_lookup(entry, "size", "t", &size);
	g_variant_lookup(entry, "mtime", "x", &mtime);
	g_variant_lookup(entry, "link-target", "&s", &target);
	gctl_mode_string(mode, mode_text);
	when = g_date_time_new_from_unix_utc(mtime);
	when_text = when != NULL ? g_date_time_format(when, "%Y-%m-%d %H:%M") : g_strdup("?");
	g_print("%s %5u %5u %10" G_GUINT64_FORMAT " %s %s%s%s\n", mode_text, uid, gid, size,
		when_text, name, target ? " -> " : "", target ? target : "");
}

static gchar *
gctl_join(const gchar *dir, const gchar *name)
{
	return g_str_has_suffix(dir, "/") ? g_strconcat(dir, name, NULL)
					  : g_strconcat(dir, "/", name, NULL);
}

/* Lists @dir (and, with @recursive, every directory below it); JSON
 * entries get their full "path". */
static gboolean
gctl_ls_dir(GctlContext *ctx,
	    GctlObject *obj,
	    const gchar *dir,
	    gboolean long_format,
	    gboolean recursive,
	    gboolean first,
	    GString *json,
	    GError **error)
{
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GVariant) entries = NULL;
	g_autoptr(GPtrArray) subdirs = g_ptr_array_new_with_free_func(g_free);

	reply = gctl_call(ctx, obj->path, GCTL_IFACE_FILES, "ReadDir",
			  g_variant_new("(s@a{sv})", dir, gctl_guest_options()),
			  G_VARIANT_TYPE("(aa{sv})"), error);
	if (reply == NULL)
		return FALSE;
	entries = g_variant_get_child_value(reply, 0);
	if (recursive && json == NULL)
		g_print("%s%s:\n", first ? "" : "\n", dir);
	for (gsize i = 0; i < g_variant_n_children(entries); i++) {
		g_autoptr(GVariant) entry = g_variant_get_child_value(entries, i);
		const gchar *name = "";
		const gchar *type = "";
		g_autofree gchar *full = NULL;

		g_variant_lookup(entry, "name", "&s", &name);
		g_variant_lookup(entry, "type", "&s", &type);
		full = gctl_join(dir, name);
		if (json != NULL) {
			g_autofree gchar *body = NULL;
			GString *tmp = g_string_new(NULL);
			gctl_json_append_variant(tmp, entry);
			body = g_string_free(tmp, FALSE);
			if (json->len > 1)
				g_string_append_c(json, ',');
			/* {"path":...,<the entry's own keys>} */
			g_string_append(json, "{\"path\":");
			gctl_json_append_string(json, full);
			if (strlen(body) > 2)
				g_string_append_printf(json, ",%s", body + 1);
			else
				g_string_append_c(json, '}');
		} else {
			gctl_print_entry(entry, long_format);
		}
		if (recursive && g_strcmp0(type, "directory") == 0)
			g_ptr_array_add(subdirs, g_steal_pointer(&full));
	}
	for (guint i = 0; i < subdirs->len; i++) {
		if (!gctl_ls_dir(ctx, obj, g_ptr_array_index(subdirs, i), long_format, TRUE, FALSE,
				 json, error))
			return FALSE;
	}
	return TRUE;
}

gint
gctl_cmd_ls(GctlContext *ctx, gint argc, gchar **argv)
{
	gboolean long_format = FALSE;
	gboolean recursive = FALSE;
	const GOptionEntry entries[] = {
	    {"long", 'l', 0, G_OPTION_ARG_NONE, &long_format,
	     "Mode, owner, size, time and link target", NULL},
	    {"recursive", 'R', 0, G_OPTION_ARG_NONE, &recursive, "List subdirectories too", NULL},
	    GCTL_GUEST_OPTIONS,
	    G_OPTION_ENTRY_NULL,
	};
	g_autoptr(GError) error = NULL;
	g_autoptr(GctlObject) obj = NULL;
	g_autoptr(GString) json = NULL;

	if (!gctl_parse(ctx, &argc, &argv, entries, "DOMAIN|VOLUME DIR",
			"List a directory inside the guest.", 2, 2))
		return GCTL_EXIT_USAGE;
	obj = gctl_resolve(ctx, argv[1], GCTL_KIND_ANY, &error);
	if (obj == NULL)
		return gctl_report_error(error, NULL);
	if (ctx->json)
		json = g_string_new("[");
	if (!gctl_ls_dir(ctx, obj, argv[2], long_format, recursive, TRUE, json, &error))
		return gctl_report_error(error, "Files.ReadDir");
	if (json != NULL) {
		g_autoptr(GString) doc = g_string_new("{\"path\":");
		g_string_append_c(json, ']');
		gctl_json_append_string(doc, argv[2]);
		g_string_append_printf(doc, ",\"entries\":%s}", json->str);
		gctl_json_print(doc);
	}
	return GCTL_EXIT_OK;
}

gint
gctl_cmd_stat(GctlContext *ctx, gint argc, gchar **argv)
{
	gboolean follow = FALSE;
	const GOptionEntry entries[] = {
	    {"dereference", 'L', 0, G_OPTION_ARG_NONE, &follow,
	     "Describe what a symbolic link points to", NULL},
	    GCTL_GUEST_OPTIONS,
	    G_OPTION_ENTRY_NULL,
	};
	g_autoptr(GError) error = NULL;
	g_autoptr(GctlObject) obj = NULL;
	g_autoptr(GString) json = g_string_new("[");
	GVariantBuilder options;
	gint status = GCTL_EXIT_OK;

	if (!gctl_parse(ctx, &argc, &argv, entries, "DOMAIN|VOLUME PATH...",
			"Show the type, size, mode, owner and time of files in the guest.", 2, -1))
		return GCTL_EXIT_USAGE;
	obj = gctl_resolve(ctx, argv[1], GCTL_KIND_ANY, &error);
	if (obj == NULL)
		return gctl_report_error(error, NULL);
	for (gint i = 2; i < argc; i++) {
		g_autoptr(GVariant) reply = NULL;
		g_autoptr(GVariant) info = NULL;
		const gchar *type = "?";
		const gchar *target = NULL;
		guint32 mode = 0, uid = 0, gid = 0;
		guint64 size = 0;
		gint64 mtime = 0;
		gchar mode_text[11];
		g_autoptr(GDateTime) when = NULL;
		g_autofree gchar *when_text = NULL;

		g_variant_builder_init(&options, G_VARIANT_TYPE_VARDICT);
		gctl_add_root_options(&options, gctl_opt_root, gctl_opt_filesystem);
		if (follow)
			g_variant_builder_add(&options, "{sv}", "follow-symlinks",
					      g_variant_new_boolean(TRUE));
		reply = gctl_call(ctx, obj->path, GCTL_IFACE_FILES, "Stat",
				  g_variant_new("(sa{sv})", argv[i], &options),
				  G_VARIANT_TYPE("(a{sv})"), &error);
		if (reply == NULL) {
			status = gctl_report_error(error, "Files.Stat");
			g_clear_error(&error);
			continue;
		}
		info = g_variant_get_child_value(reply, 0);
		if (ctx->json) {
			if (json->len > 1)
				g_string_append_c(json, ',');
			g_string_append(json, "{\"path\":");
			gctl_json_append_string(json, argv[i]);
			g_string_append(json, ",\"info\":");
			gctl_json_append_variant(json, info);
			g_string_append_c(json, '}');
			continue;
		}
		g_variant_lookup(info, "type", "&s", &type);
		g_variant_lookup(info, "mode", "u", &mode);
		g_variant_lookup(info, "uid", "u", &uid);
		g_variant_lookup(info, "gid", "u", &gid);
		g_variant_lookup(info, "size", "t", &size);
		g_variant_lookup(info, "mtime", "x", &mtime);
		g_variant_lookup(info, "link-target", "&s", &target);
		gctl_mode_string(mode, mode_text);
		when = g_date_time_new_from_unix_utc(mtime);
		when_text = when ? g_date_time_format(when, "%Y-%m-%d %H:%M:%S UTC") : NULL;
		g_print("  File: %s%s%s\n", argv[i], target ? " -> " : "", target ? target : "");
		g_print("  Type: %s\n  Size: %" G_GUINT64_FORMAT "\n", type, size);
		g_print("Access: (%04o/%s)  Uid: %u  Gid: %u\nModify: %s\n", mode & 07777,
			mode_text, uid, gid, when_text ? when_text : "?");
	}
	if (ctx->json) {
		g_autoptr(GString) doc = g_string_new("{\"files\":");
		g_string_append_printf(doc, "%s]}", json->str);
		gctl_json_print(doc);
	}
	return status;
}

/* mkdir and rm: one call per path, with one boolean option (-p, -r);
 * the first failure ends it. */
static gint
gctl_each_path(GctlContext *ctx,
	       gint argc,
	       gchar **argv,
	       const gchar *method,
	       const GOptionEntry *flag,
	       const gchar *params,
	       const gchar *summary)
{
	g_autofree gchar *what = g_strconcat("Files.", method, NULL);
	const GOptionEntry entries[] = {*flag, GCTL_GUEST_OPTIONS, G_OPTION_ENTRY_NULL};
	g_autoptr(GError) error = NULL;
	g_autoptr(GctlObject) obj = NULL;

	if (!gctl_parse(ctx, &argc, &argv, entries, params, summary, 2, -1))
		return GCTL_EXIT_USAGE;
	obj = gctl_resolve(ctx, argv[1], GCTL_KIND_ANY, &error);
	if (obj == NULL)
		return gctl_report_error(error, NULL);
	for (gint i = 2; i < argc; i++) {
		g_autoptr(GVariant) reply = NULL;
		GVariantBuilder options;

		g_variant_builder_init(&options, G_VARIANT_TYPE_VARDICT);
		gctl_add_root_options(&options, gctl_opt_root, gctl_opt_filesystem);
		if (*(gboolean *)flag->arg_data)
			g_variant_builder_add(&options, "{sv}", flag->long_name,
					      g_variant_new_boolean(TRUE));
		reply = gctl_call(ctx, obj->path, GCTL_IFACE_FILES, method,
				  g_variant_new("(sa{sv})", argv[i], &options), NULL, &error);
		if (reply == NULL)
			return gctl_report_error(error, what);
	}
	return GCTL_EXIT_OK;
}

gint
gctl_cmd_mkdir(GctlContext *ctx, gint argc, gchar **argv)
{
	gboolean parents = FALSE;
	/* the long name is the service's option */
	const GOptionEntry flag = {"parents", 'p',
				   0,	      G_OPTION_ARG_NONE,
				   &parents,  "Create missing parents; no error if it exists",
				   NULL};

	return gctl_each_path(ctx, argc, argv, "Mkdir", &flag, "DOMAIN|VOLUME DIR...",
			      "Create directories in the guest.");
}

gint
gctl_cmd_rm(GctlContext *ctx, gint argc, gchar **argv)
{
	gboolean recursive = FALSE;
	const GOptionEntry flag = {"recursive", 'r',
				   0,		G_OPTION_ARG_NONE,
				   &recursive,	"Remove directories and everything in them",
				   NULL};

	return gctl_each_path(ctx, argc, argv, "Remove", &flag, "DOMAIN|VOLUME PATH...",
			      "Remove files, links or empty directories (-r: any directory).");
}

/* A call on one object with fixed arguments; no reply data. */
static gint
gctl_simple(GctlContext *ctx, const gchar *name, const gchar *method, GVariant *args)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GctlObject) obj = NULL;
	g_autoptr(GVariant) reply = NULL;
	g_autoptr(GVariant) owned = g_variant_ref_sink(args);
	g_autofree gchar *what = g_strconcat("Files.", method, NULL);

	obj = gctl_resolve(ctx, name, GCTL_KIND_ANY, &error);
	if (obj == NULL)
		return gctl_report_error(error, NULL);
	reply = gctl_call(ctx, obj->path, GCTL_IFACE_FILES, method, owned, NULL, &error);
	if (reply == NULL)
		return gctl_report_error(error, what);
	return GCTL_EXIT_OK;
}

gint
gctl_cmd_mv(GctlContext *ctx, gint argc, gchar **argv)
{
	const GOptionEntry entries[] = {GCTL_GUEST_OPTIONS, G_OPTION_ENTRY_NULL};

	if (!gctl_parse(ctx, &argc, &argv, entries, "DOMAIN|VOLUME FROM TO",
			"Rename a file in the guest (TO is replaced if it exists).", 3, 3))
		return GCTL_EXIT_USAGE;
	return gctl_simple(ctx, argv[1], "Rename",
			   g_variant_new("(ss@a{sv})", argv[2], argv[3], gctl_guest_options()));
}

gint
gctl_cmd_chmod(GctlContext *ctx, gint argc, gchar **argv)
{
	const GOptionEntry entries[] = {GCTL_GUEST_OPTIONS, G_OPTION_ENTRY_NULL};
	gchar *end = NULL;
	guint64 mode;

	if (!gctl_parse(ctx, &argc, &argv, entries, "DOMAIN|VOLUME MODE PATH",
			"Change a file's permission bits (MODE in octal, e.g. 0640).", 3, 3))
		return GCTL_EXIT_USAGE;
	mode = g_ascii_strtoull(argv[2], &end, 8);
	if (end == argv[2] || *end != '\0' || mode > 07777)
		return gctl_usage_error("chmod ", "MODE must be octal, at most 07777: '%s'",
					argv[2]);
	return gctl_simple(
	    ctx, argv[1], "Chmod",
	    g_variant_new("(su@a{sv})", argv[3], (guint32)mode, gctl_guest_options()));
}

gint
gctl_cmd_chown(GctlContext *ctx, gint argc, gchar **argv)
{
	const GOptionEntry entries[] = {GCTL_GUEST_OPTIONS, G_OPTION_ENTRY_NULL};
	g_auto(GStrv) parts = NULL;
	guint64 uid, gid;

	if (!gctl_parse(ctx, &argc, &argv, entries, "DOMAIN|VOLUME UID:GID PATH",
			"Change a file's owner and group, as numbers in the guest.", 3, 3))
		return GCTL_EXIT_USAGE;
	parts = g_strsplit(argv[2], ":", 2);
	if (g_strv_length(parts) != 2 ||
	    !g_ascii_string_to_unsigned(parts[0], 10, 0, G_MAXUINT32, &uid, NULL) ||
	    !g_ascii_string_to_unsigned(parts[1], 10, 0, G_MAXUINT32, &gid, NULL))
		return gctl_usage_error("chown ", "the owner must be UID:GID, as numbers: '%s'",
					argv[2]);
	return gctl_simple(ctx, argv[1], "Chown",
			   g_variant_new("(suu@a{sv})", argv[3], (guint32)uid, (guint32)gid,
					 gctl_guest_options()));
}

gint
gctl_cmd_ln(GctlContext *ctx, gint argc, gchar **argv)
{
	gboolean symbolic = FALSE;
	const GOptionEntry entries[] = {
	    {"symbolic", 's', 0, G_OPTION_ARG_NONE, &symbolic,
	     "Make a symbolic link (the only kind there is; required)", NULL},
	    GCTL_GUEST_OPTIONS,
	    G_OPTION_ENTRY_NULL,
	};

	if (!gctl_parse(ctx, &argc, &argv, entries, "-s DOMAIN|VOLUME TARGET LINK",
			"Create a symbolic link LINK pointing to TARGET.", 3, 3))
		return GCTL_EXIT_USAGE;
	if (!symbolic)
		return gctl_usage_error("ln ", "only symbolic links are supported: use ln -s");
	return gctl_simple(ctx, argv[1], "Symlink",
			   g_variant_new("(ss@a{sv})", argv[2], argv[3], gctl_guest_options()));
}
