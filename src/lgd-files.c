#include "config.h"

#include <gio/gunixfdlist.h>
#include <sys/stat.h>

#include "lgd-call.h"
#include "lgd-error.h"
#include "lgd-impl.h"
#include "lgd-fd.h"
#include "lgd-files.h"
#include "lgd-mount.h"
#include "lgd-replace.h"
#include "lgd-resolve.h"
#include "lgd-transfer.h"

/* ---- the steps every job takes (session thread) ------------------------ */

static gboolean lgd_files_resolve(LgdSession *session, LgdCall *call, guestfs_h *g, GError **error);

/* Gets the appliance (read-write for writes, which need the domain shut
 * off: checked before anything is launched) and mounts the guest's
 * filesystems. The arguments were validated by the handler. */
guestfs_h *
lgd_files_prepare(LgdSession *session, LgdCall *call, gboolean write, GError **error)
{
	LgdDriveSource *source = lgd_session_get_source(session);
	guestfs_h *g;

	if (write && !lgd_drives_check_writable(source, error))
		return NULL;
	g = write ? lgd_session_get_handle_rw(session, error)
		  : lgd_session_get_handle(session, error);
	if (g == NULL)
		return NULL;
	if (!lgd_mount_guest(session, g, call, FALSE, error))
		return NULL;
	if (!lgd_files_resolve(session, call, g, error))
		return NULL;
	return g;
}

/* A write job calls this once its checks have passed, just before it
 * changes anything: the filesystems are mounted read-write from here. */
gboolean
lgd_files_begin_write(LgdSession *session, LgdCall *call, guestfs_h *g, GError **error)
{
	return lgd_mount_guest(session, g, call, TRUE, error);
}

/* lgd_files_begin_write() as lgd_replace_file() calls it. */
static gboolean
lgd_files_replace_begin(LgdSession *session, guestfs_h *g, gpointer call, GError **error)
{
	return lgd_files_begin_write(session, call, g, error);
}

/* How WriteFile and Upload replace a file: the 'mode', 'uid' and 'gid'
 * options, and whether a missing file is created. */
LgdReplaceAttrs
lgd_files_replace_attrs(LgdCall *call, gboolean create)
{
	LgdReplaceAttrs attrs = {
	    .begin = lgd_files_replace_begin,
	    .begin_data = call,
	    .create = create,
	    .mode = lgd_args_get_u32(call->options, "mode", -1),
	    .uid = lgd_args_get_u32(call->options, "uid", -1),
	    .gid = lgd_args_get_u32(call->options, "gid", -1),
	};

	return attrs;
}

/* Fails with NotFound unless @path exists (a link counts). */
gboolean
lgd_files_check_exists(LgdSession *session, guestfs_h *g, const gchar *path, GError **error)
{
	struct guestfs_statns *st = guestfs_lstatns(g, path);

	if (st == NULL) {
		lgd_session_set_error_from_guestfs(session, error, path);
		return FALSE;
	}
	guestfs_free_statns(st);
	return TRUE;
}

/* After a successful write: on disk before the reply, and the disks'
 * inspection is no longer known. The reply of every write. */
GVariant *
lgd_files_finish_write(LgdSession *session, LgdCall *call, guestfs_h *g, GError **error)
{
	lgd_guest_forget_inspection(call->guest);
	if (guestfs_sync(g) < 0) {
		lgd_session_set_error_from_guestfs(session, error, "Cannot sync the disks");
		return NULL;
	}
	return g_variant_new("()");
}

/* Checks that @path (followed) is of @type (S_IFREG, S_IFDIR). */
gboolean
lgd_files_check_type(
    LgdSession *session, guestfs_h *g, const gchar *path, guint32 type, GError **error)
{
	struct guestfs_statns *st = guestfs_statns(g, path);
	guint32 actual;

	if (st == NULL) {
		lgd_session_set_error_from_guestfs(session, error, path);
		return FALSE;
	}
	actual = (guint32)st->st_mode & S_IFMT;
	guestfs_free_statns(st);
	if (actual == type)
		return TRUE;
	g_set_error(error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT, "%s is %s", path,
		    type == S_IFDIR ? "not a directory" : "a directory, not a regular file");
	return FALSE;
}

/* ---- validation (main loop, before polkit is asked) ------------------- */

/* Options every Files method accepts, added to the method's own. */
static const LgdOptionSpec lgd_files_common_options[] = {
    {"root", "s"},
    {"filesystem", "s"},
    {"no-follow", "b"},
    {NULL},
};

static gboolean
lgd_files_check_options(GVariant *options, const LgdOptionSpec *method, GError **error)
{
	g_autoptr(GArray) all = g_array_new(TRUE, TRUE, sizeof(LgdOptionSpec));

	for (const LgdOptionSpec *s = lgd_files_common_options; s->key != NULL; s++)
		g_array_append_val(all, *s);
	for (const LgdOptionSpec *s = method; s != NULL && s->key != NULL; s++)
		g_array_append_val(all, *s);
	return lgd_args_check_options(options, (const LgdOptionSpec *)all->data, error);
}

static gboolean
lgd_files_check_mode(gint64 mode, GError **error)
{
	if (mode <= 07777)
		return TRUE;
	g_set_error(error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT,
		    "Mode %#" G_GINT64_MODIFIER "o has bits beyond the permission bits (07777)",
		    mode);
	return FALSE;
}

/* A method of the interface: what it needs, which job does it, the
 * generated function that sends its reply (one of the three), and the
 * handler of its argument signature. */
typedef struct {
	const gchar *name;
	gboolean write;		    /* also: a transfer's fd is a source */
	const gchar *job_operation; /* a long operation: its Job's Operation */
	const LgdOptionSpec *options;
	LgdJobFunc job;
	/* how a link in the last component of the path (and of the second
	 * path) is treated; the other components are always followed */
	LgdResolveFlags resolve;
	LgdResolveFlags resolve2;
	void (*complete)(LgdDBusFiles *iface, GDBusMethodInvocation *invocation);
	void (*complete_value)(LgdDBusFiles *iface, GDBusMethodInvocation *inv, GVariant *value);
	void (*complete_fds)(LgdDBusFiles *iface, GDBusMethodInvocation *inv, GUnixFDList *fds);
	LgdHandler handler;
} LgdFilesMethod;

static const LgdFilesMethod *lgd_files_method(GDBusMethodInvocation *invocation);

#define LGD_FOLLOW LGD_RESOLVE_FOLLOW_FINAL
#define LGD_NEW LGD_RESOLVE_MISSING_FINAL

static void
lgd_files_complete_readlink(LgdDBusFiles *iface, GDBusMethodInvocation *inv, GVariant *target)
{
	lgd_dbus_files_complete_readlink(iface, inv, g_variant_get_string(target, NULL));
}

static const LgdOptionSpec lgd_stat_options[] = {{"follow-symlinks", "b"}, {NULL}};

static const LgdOptionSpec lgd_read_file_options[] = {
    {"offset", "t"},
    {"length", "t"},
    {NULL},
};

static const LgdOptionSpec lgd_write_file_options[] = {
    {"mode", "u"}, {"uid", "u"}, {"gid", "u"}, {"create", "b"}, {"append", "b"}, {NULL},
};

static const LgdOptionSpec lgd_mkdir_options[] = {{"parents", "b"}, {"mode", "u"}, {NULL}};

static const LgdOptionSpec lgd_remove_options[] = {{"recursive", "b"}, {NULL}};

/* Transfers are jobs: the caller may name theirs (lgd-job.h). */
static const LgdOptionSpec lgd_download_options[] = {{"job-id", "s"}, {NULL}};

static const LgdOptionSpec lgd_upload_options[] = {
    {"size", "t"}, {"mode", "u"}, {"uid", "u"}, {"gid", "u"}, {"job-id", "s"}, {NULL},
};

static const LgdOptionSpec lgd_tar_out_options[] = {
    {"compress", "s"},
    {"excludes", "as"},
    {"job-id", "s"},
    {NULL},
};

static const LgdOptionSpec lgd_tar_in_options[] = {
    {"compress", "s"},
    {"preserve-special", "b"},
    {"job-id", "s"},
    {NULL},
};

/* The flags of one path of @call, with its options applied. */
static LgdResolveFlags
lgd_files_resolve_flags(LgdCall *call, LgdResolveFlags flags)
{
	if (lgd_args_get_bool(call->options, "follow-symlinks", FALSE))
		flags |= LGD_RESOLVE_FOLLOW_FINAL; /* Stat */
	if ((flags & LGD_RESOLVE_MISSING_FINAL) &&
	    lgd_args_get_bool(call->options, "parents", FALSE))
		flags |= LGD_RESOLVE_MISSING_TAIL; /* Mkdir */
	if (lgd_args_get_bool(call->options, "no-follow", FALSE))
		flags = (flags & ~LGD_RESOLVE_FOLLOW_FINAL) | LGD_RESOLVE_REFUSE_FINAL_LINK;
	return flags;
}

/* Resolves @path in the guest; when it is not what the caller gave, the
 * resolved path replaces it and the caller's is kept in @requested.
 * @final_stat (may be NULL) gets the walk's lstat of the result, if any. */
static gboolean
lgd_files_resolve_one(LgdSession *session,
		      LgdCall *call,
		      guestfs_h *g,
		      gchar **path,
		      gchar **requested,
		      LgdResolveFlags flags,
		      struct guestfs_statns **final_stat,
		      GError **error)
{
	g_autofree gchar *reached = NULL;
	gchar *resolved = lgd_resolve(g, lgd_session_get_resolve_cache(session), *path, flags,
				      &reached, final_stat, error);

	if (resolved == NULL) {
		/* a link led the walk elsewhere before it failed: what the error
		 * says of that place (missing, a loop) is for callers allowed
		 * there only */
		g_autoptr(GError) denied = NULL;

		if (reached != NULL && !lgd_call_authorize_path(call, reached, *path, &denied)) {
			g_clear_error(error);
			g_propagate_error(error, g_steal_pointer(&denied));
		}
		return FALSE;
	}
	if (g_str_equal(resolved, *path)) {
		g_free(resolved);
		return TRUE;
	}
	g_debug("%s resolves to %s in the guest", *path, resolved);
	*requested = *path;
	*path = resolved;
	return TRUE;
}

/* In the session's thread, with the guest mounted: every path of the call
 * is resolved inside the guest, and a path that a link took elsewhere is
 * authorized again, as resolved ("path") and as given ("requested-path"),
 * before anything reads or changes it. Calls on one object run one after
 * the other on the only appliance that has its disks, and a domain with
 * an appliance that can write is shut off, so nothing changes a link
 * between this check and the call's work. */
static gboolean
lgd_files_resolve(LgdSession *session, LgdCall *call, guestfs_h *g, GError **error)
{
	const LgdFilesMethod *method = lgd_files_method(call->invocation);

	if (call->requested_path != NULL || call->requested_path2 != NULL)
		return TRUE; /* resolved already: a job that prepares twice */
	g_clear_pointer(&call->path_stat, guestfs_free_statns);
	if (!lgd_files_resolve_one(session, call, g, &call->path, &call->requested_path,
				   lgd_files_resolve_flags(call, method->resolve), &call->path_stat,
				   error))
		return FALSE;
	if (call->path2 != NULL &&
	    !lgd_files_resolve_one(session, call, g, &call->path2, &call->requested_path2,
				   lgd_files_resolve_flags(call, method->resolve2), NULL, error))
		return FALSE;
	if (call->requested_path == NULL && call->requested_path2 == NULL)
		return TRUE;
	return lgd_call_authorize(call, error);
}

/* Everything that can be checked without the guest: a bad argument is
 * refused before polkit is asked and before anything is queued. A
 * transfer takes its fd here, so that nothing holds it longer than the
 * call. */
static gboolean
lgd_files_validate(LgdCall *call,
		   const LgdFilesMethod *method,
		   GUnixFDList *fd_list,
		   GVariant *handle,
		   GError **error)
{
	guint64 max = lgd_guest_get_context(call->guest)->max_read_size;

	if (handle != NULL) {
		call->fd =
		    lgd_fd_take(fd_list, handle, method->write ? LGD_FD_READ : LGD_FD_WRITE, error);
		if (call->fd < 0)
			return FALSE;
	}
	if (call->data != NULL && g_variant_get_size(call->data) > max) {
		g_set_error(error, LGD_ERROR, LGD_ERROR_TOO_LARGE,
			    "%zu bytes is more than WriteFile's limit of %" G_GUINT64_FORMAT
			    "; use Upload",
			    g_variant_get_size(call->data), max);
		return FALSE;
	}
	if (!lgd_files_check_mode(call->mode, error) ||
	    !lgd_files_check_mode(lgd_args_get_u32(call->options, "mode", -1), error))
		return FALSE;
	if (call->link_target != NULL && call->link_target[0] == '\0') {
		g_set_error_literal(error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT,
				    "The link target is empty");
		return FALSE;
	}
	return lgd_files_check_options(call->options, method->options, error) &&
	       lgd_job_check_id(call->options, error) &&
	       lgd_args_check_path("path", call->path, error) &&
	       (call->path2 == NULL || lgd_args_check_path("second path", call->path2, error)) &&
	       lgd_transfer_check_compress(call->options, error);
}

/* ---- handlers (main loop) ----------------------------------------------- */

/* Sends a method's reply (a tuple from its job) through its generated
 * complete function. */
static void
lgd_files_reply(gpointer iface, GDBusMethodInvocation *invocation, GVariant *reply)
{
	const LgdFilesMethod *method = lgd_files_method(invocation);
	g_autoptr(GVariant) value =
	    g_variant_n_children(reply) > 0 ? g_variant_get_child_value(reply, 0) : NULL;

	if (method->complete_value != NULL)
		method->complete_value(iface, invocation, value);
	else if (method->complete_fds != NULL)
		method->complete_fds(iface, invocation, NULL);
	else
		method->complete(iface, invocation);
}

/* The record of a call to @invocation's method on @path. */
static LgdCall *
lgd_files_call_new(LgdDBusFiles *iface,
		   GDBusMethodInvocation *invocation,
		   const gchar *path,
		   GVariant *options)
{
	const LgdFilesMethod *method = lgd_files_method(invocation);
	LgdCall *call = lgd_call_new_for_iface(
	    iface, invocation, method->write ? LGD_ACTION_WRITE : LGD_ACTION_READ, lgd_files_reply);

	call->path = g_strdup(path);
	call->options = g_variant_ref(options);
	call->job_operation = method->job_operation;
	return call;
}

/* The one path of every Files method once its arguments are in @call:
 * validate, authorize, run on the object's session, reply. */
static gboolean
lgd_files_run(LgdCall *call, GUnixFDList *fd_list, GVariant *handle)
{
	const LgdFilesMethod *method = lgd_files_method(call->invocation);
	GError *error = NULL;

	if (!lgd_files_validate(call, method, fd_list, handle, &error))
		return lgd_call_return_error(call, error);
	return lgd_call_run_on_session(call, method->job);
}

/* One handler per argument signature; the method table says the rest. */

/* ReadDir, Stat, ReadFile, Readlink, Mkdir, Remove. */
static gboolean
lgd_files_handle_path(LgdDBusFiles *f,
		      GDBusMethodInvocation *inv,
		      const gchar *path,
		      GVariant *opts)
{
	return lgd_files_run(lgd_files_call_new(f, inv, path, opts), NULL, NULL);
}

static gboolean
lgd_files_handle_write_file(
    LgdDBusFiles *f, GDBusMethodInvocation *inv, const gchar *path, GVariant *data, GVariant *opts)
{
	LgdCall *call = lgd_files_call_new(f, inv, path, opts);

	call->data = g_variant_ref(data);
	return lgd_files_run(call, NULL, NULL);
}

/* Rename(from, to) and Symlink(target, linkpath). The path a call creates
 * or moves is its path (what polkit sees); a link's target is any string
 * and only goes into the link. */
static gboolean
lgd_files_handle_two_names(
    LgdDBusFiles *f, GDBusMethodInvocation *inv, const gchar *one, const gchar *two, GVariant *opts)
{
	gboolean symlink = g_str_equal(g_dbus_method_invocation_get_method_name(inv), "Symlink");
	LgdCall *call = lgd_files_call_new(f, inv, symlink ? two : one, opts);

	if (symlink)
		call->link_target = g_strdup(one);
	else
		call->path2 = g_strdup(two);
	return lgd_files_run(call, NULL, NULL);
}

static gboolean
lgd_files_handle_chmod(
    LgdDBusFiles *f, GDBusMethodInvocation *inv, const gchar *path, guint mode, GVariant *opts)
{
	LgdCall *call = lgd_files_call_new(f, inv, path, opts);

	call->mode = mode;
	return lgd_files_run(call, NULL, NULL);
}

static gboolean
lgd_files_handle_chown(LgdDBusFiles *f,
		       GDBusMethodInvocation *inv,
		       const gchar *path,
		       guint uid,
		       guint gid,
		       GVariant *opts)
{
	LgdCall *call = lgd_files_call_new(f, inv, path, opts);

	call->uid = uid;
	call->gid = gid;
	return lgd_files_run(call, NULL, NULL);
}

/* Download, Upload, TarOut, TarIn: through the caller's fd. */
static gboolean
lgd_files_handle_transfer(LgdDBusFiles *f,
			  GDBusMethodInvocation *inv,
			  GUnixFDList *fd_list,
			  const gchar *path,
			  GVariant *handle,
			  GVariant *opts)
{
	return lgd_files_run(lgd_files_call_new(f, inv, path, opts), fd_list, handle);
}

/* What the generated code has of a method: its reply, in member @how of
 * the entry, and the member of the vtable that lgd_files_handle_@args
 * (the handler of its arguments) fills. */
#define LGD_FILES_DBUS(how, what, args)                                                            \
	.how = lgd_dbus_files_complete_##what,                                                     \
	.handler = LGD_HANDLER(Files, what, lgd_files_handle_##args)

/* Reads follow a final link, like cat and ls; so do the writes that
 * change a file's content or mode, like cp and chmod (the file a link
 * points to is what changes). Remove, Rename, Readlink and Chown act on a
 * link itself, like rm, mv, readlink and chown -h (libguestfs's lchown);
 * Symlink creates one. */
static const LgdFilesMethod lgd_files_methods[] = {
    {"ReadDir", LGD_FILES_DBUS(complete_value, read_dir, path), .job = lgd_files_read_dir_job,
     .resolve = LGD_FOLLOW},
    {"Stat", LGD_FILES_DBUS(complete_value, stat, path), .options = lgd_stat_options,
     .job = lgd_files_stat_job},
    {"ReadFile", LGD_FILES_DBUS(complete_value, read_file, path), .options = lgd_read_file_options,
     .job = lgd_files_read_file_job, .resolve = LGD_FOLLOW},
    {"Readlink", .complete_value = lgd_files_complete_readlink,
     .handler = LGD_HANDLER(Files, readlink, lgd_files_handle_path), .job = lgd_files_readlink_job},
    {"WriteFile", LGD_FILES_DBUS(complete, write_file, write_file), .write = TRUE,
     .options = lgd_write_file_options, .job = lgd_files_write_file_job,
     .resolve = LGD_FOLLOW | LGD_NEW},
    {"Mkdir", LGD_FILES_DBUS(complete, mkdir, path), .write = TRUE, .options = lgd_mkdir_options,
     .job = lgd_files_mkdir_job, .resolve = LGD_FOLLOW | LGD_NEW},
    {"Remove", LGD_FILES_DBUS(complete, remove, path), .write = TRUE, .options = lgd_remove_options,
     .job = lgd_files_remove_job},
    {"Rename", LGD_FILES_DBUS(complete, rename, two_names), .write = TRUE,
     .job = lgd_files_rename_job, .resolve2 = LGD_NEW},
    {"Chmod", LGD_FILES_DBUS(complete, chmod, chmod), .write = TRUE, .job = lgd_files_chmod_job,
     .resolve = LGD_FOLLOW},
    {"Chown", LGD_FILES_DBUS(complete, chown, chown), .write = TRUE, .job = lgd_files_chown_job},
    {"Symlink", LGD_FILES_DBUS(complete, symlink, two_names), .write = TRUE,
     .job = lgd_files_symlink_job, .resolve = LGD_NEW},
    {"Download", LGD_FILES_DBUS(complete_fds, download, transfer), .job = lgd_transfer_download,
     .options = lgd_download_options, .job_operation = "files-download", .resolve = LGD_FOLLOW},
    {"Upload", LGD_FILES_DBUS(complete_fds, upload, transfer), .write = TRUE,
     .options = lgd_upload_options, .job = lgd_transfer_upload, .job_operation = "files-upload",
     .resolve = LGD_FOLLOW | LGD_NEW},
    {"TarOut", LGD_FILES_DBUS(complete_fds, tar_out, transfer), .options = lgd_tar_out_options,
     .job = lgd_transfer_tar_out, .job_operation = "files-tar-out", .resolve = LGD_FOLLOW},
    {"TarIn", LGD_FILES_DBUS(complete_fds, tar_in, transfer), .write = TRUE,
     .options = lgd_tar_in_options, .job = lgd_transfer_tar_in, .job_operation = "files-tar-in",
     .resolve = LGD_FOLLOW},
};

/* lgd_call_find_method reads the name at the start of each entry */
G_STATIC_ASSERT(G_STRUCT_OFFSET(LgdFilesMethod, name) == 0);

static const LgdFilesMethod *
lgd_files_method(GDBusMethodInvocation *invocation)
{
	return LGD_CALL_FIND_METHOD(invocation, lgd_files_methods);
}

/* ---- the implementation of org.libvirt.GuestFS.Files -------------------- */

#define LGD_TYPE_FILES_IMPL (lgd_files_impl_get_type())
G_DECLARE_FINAL_TYPE(LgdFilesImpl, lgd_files_impl, LGD, FILES_IMPL, LgdDBusFilesSkeleton)

struct _LgdFilesImpl {
	LgdDBusFilesSkeleton parent_instance;
};

LGD_DEFINE_IMPL(LgdFilesImpl, lgd_files_impl, FILES, LGD_METHOD_HANDLERS(lgd_files_methods))

/* The handlers find their guest through the object the interface is on. */
LgdDBusFiles *
lgd_files_new(void)
{
	return g_object_new(LGD_TYPE_FILES_IMPL, NULL);
}
