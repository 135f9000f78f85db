/* guestfsctl: shared declarations of the command-line client. */
#pragma once

#include <gio/gio.h>

#define GCTL_BUS_NAME "org.libvirt.GuestFS"
#define GCTL_ROOT_PATH "/org/libvirt/GuestFS"
#define GCTL_MANAGER_PATH "/org/libvirt/GuestFS/Manager"
#define GCTL_IFACE_MANAGER "org.libvirt.GuestFS.Manager"
#define GCTL_IFACE_DOMAIN "org.libvirt.GuestFS.Domain"
#define GCTL_IFACE_VOLUME "org.libvirt.GuestFS.Volume"
#define GCTL_IFACE_INSPECTOR "org.libvirt.GuestFS.Inspector"
#define GCTL_IFACE_FILES "org.libvirt.GuestFS.Files"
#define GCTL_ERROR_PREFIX "org.libvirt.GuestFS.Error."

/* Exit statuses, one per error class (documented in guestfsctl(1)). */
typedef enum {
	GCTL_EXIT_OK = 0,
	GCTL_EXIT_FAILED = 1,
	GCTL_EXIT_USAGE = 2,
	GCTL_EXIT_NOT_FOUND = 3,
	GCTL_EXIT_NOT_AUTHORIZED = 4,
	GCTL_EXIT_DOMAIN_RUNNING = 5,
	GCTL_EXIT_IN_USE = 6,
	GCTL_EXIT_APPLIANCE_FAILED = 7,
	GCTL_EXIT_INVALID_ARGUMENT = 8,
	GCTL_EXIT_TOO_LARGE = 9,
	GCTL_EXIT_CANCELLED = 10,
	GCTL_EXIT_NOT_SUPPORTED = 11,
	GCTL_EXIT_UNAVAILABLE = 12,
	GCTL_EXIT_TIMEOUT = 13,
} GctlExit;

/* Errors of the client itself, in the G_IO_ERROR-like domain GCTL_ERROR;
 * the codes are exit statuses. */
#define GCTL_ERROR (gctl_error_quark())
GQuark gctl_error_quark(void);

/* What every command gets: the connection and the global options. */
typedef struct {
	GDBusConnection *bus;
	gint timeout_msec; /* for calls that may launch an appliance */
	gboolean json;
	gboolean quiet;
	gboolean interactive; /* polkit may ask for a password */
} GctlContext;

/* An object of the service, as named on the command line. */
typedef enum {
	GCTL_KIND_DOMAIN = 1 << 0,
	GCTL_KIND_VOLUME = 1 << 1,
	GCTL_KIND_ANY = GCTL_KIND_DOMAIN | GCTL_KIND_VOLUME,
} GctlKind;

typedef struct {
	gchar *path;
	GctlKind kind; /* DOMAIN or VOLUME */
	gchar *name;   /* as given */
} GctlObject;

void gctl_object_free(GctlObject *obj);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GctlObject, gctl_object_free)

/* gctl-bus.c */
GVariant *gctl_call(GctlContext *ctx,
		    const gchar *path,
		    const gchar *iface,
		    const gchar *method,
		    GVariant *args,
		    const GVariantType *reply_type,
		    GError **error);
GctlObject *gctl_resolve(GctlContext *ctx, const gchar *name, GctlKind kinds, GError **error);
GVariant *gctl_managed_objects(GctlContext *ctx, GError **error);
/* watches of the service's signals, their arguments unpacked: an
 * ObjectManager signal's object path and a{sa{sv}} or as, and
 * PropertiesChanged's object path, interface, a{sv} and as */
typedef void (*GctlObjectFunc)(const gchar *object, GVariant *value, gpointer user_data);
typedef void (*GctlChangedFunc)(const gchar *path,
				const gchar *iface,
				GVariant *changed,
				GVariant *invalidated,
				gpointer user_data);
guint gctl_subscribe_objects(GctlContext *ctx,
			     const gchar *signal,
			     GctlObjectFunc func,
			     gpointer user_data);
guint gctl_subscribe_properties(GctlContext *ctx,
				const gchar *path,
				const gchar *iface,
				GctlChangedFunc func,
				gpointer user_data);
GVariant *gctl_job_properties(GVariant *ifaces);
GVariant *gctl_get_property(
    GctlContext *ctx, const gchar *path, const gchar *iface, const gchar *name, GError **error);
const gchar *gctl_object_iface(GctlObject *obj);
gint gctl_report_error(const GError *error, const gchar *method);
gint gctl_exit_for_dbus_error(const gchar *remote);
void gctl_add_root_options(GVariantBuilder *options, const gchar *root, const gchar *filesystem);

/* gctl-json.c: one JSON document on stdout */
void gctl_json_append_variant(GString *out, GVariant *value);
void gctl_json_append_string(GString *out, const gchar *text);
void gctl_json_print(GString *doc);

/* gctl-transfer.c: calls that pass a file descriptor */
typedef struct _GctlProgress GctlProgress;
gboolean gctl_call_with_fd(GctlContext *ctx,
			   const gchar *path,
			   const gchar *iface,
			   const gchar *method,
			   GVariant *args_before_fd,
			   gint fd,
			   gboolean fd_is_sink,
			   GVariant *options,
			   GError **error);
gint gctl_open_sink(const gchar *name, GError **error);
gboolean gctl_reader_gone(gint fd);
gint gctl_open_source(const gchar *name, GError **error);

/* gctl-progress.c */
#define GCTL_IFACE_JOB "org.libvirt.GuestFS.Job"
#define GCTL_JOBS_PATH "/org/libvirt/GuestFS/jobs"
gchar *gctl_job_id_new(void);
gchar *gctl_format_bytes(guint64 bytes);
GVariant *gctl_options_with_job_id(GVariant *options, const gchar *job_id);
GVariant *gctl_args_with_job_id(GVariant *args, const gchar *job_id);
GctlProgress *gctl_progress_start(GctlContext *ctx,
				  const gchar *object_path,
				  const gchar *what,
				  const gchar *job_id);
void gctl_progress_hide(GctlProgress *progress);
void gctl_progress_stop(GctlProgress *progress);

/* Commands: argv[0] is the command name; they return an exit status. */
typedef gint (*GctlCommandFunc)(GctlContext *ctx, gint argc, gchar **argv);

gint gctl_cmd_list(GctlContext *ctx, gint argc, gchar **argv);
gint gctl_cmd_inspect(GctlContext *ctx, gint argc, gchar **argv);
gint gctl_cmd_apps(GctlContext *ctx, gint argc, gchar **argv);
gint gctl_cmd_icon(GctlContext *ctx, gint argc, gchar **argv);
gint gctl_cmd_filesystems(GctlContext *ctx, gint argc, gchar **argv);
gint gctl_cmd_df(GctlContext *ctx, gint argc, gchar **argv);
gint gctl_cmd_ls(GctlContext *ctx, gint argc, gchar **argv);
gint gctl_cmd_stat(GctlContext *ctx, gint argc, gchar **argv);
gint gctl_cmd_mkdir(GctlContext *ctx, gint argc, gchar **argv);
gint gctl_cmd_rm(GctlContext *ctx, gint argc, gchar **argv);
gint gctl_cmd_mv(GctlContext *ctx, gint argc, gchar **argv);
gint gctl_cmd_chmod(GctlContext *ctx, gint argc, gchar **argv);
gint gctl_cmd_chown(GctlContext *ctx, gint argc, gchar **argv);
gint gctl_cmd_ln(GctlContext *ctx, gint argc, gchar **argv);
gint gctl_cmd_cat(GctlContext *ctx, gint argc, gchar **argv);
gint gctl_cmd_copy_out(GctlContext *ctx, gint argc, gchar **argv);
gint gctl_cmd_copy_in(GctlContext *ctx, gint argc, gchar **argv);
gint gctl_cmd_tar_out(GctlContext *ctx, gint argc, gchar **argv);
gint gctl_cmd_tar_in(GctlContext *ctx, gint argc, gchar **argv);
gint gctl_cmd_write(GctlContext *ctx, gint argc, gchar **argv);
gint gctl_cmd_edit(GctlContext *ctx, gint argc, gchar **argv);
gint gctl_cmd_vol_download(GctlContext *ctx, gint argc, gchar **argv);
gint gctl_cmd_vol_upload(GctlContext *ctx, gint argc, gchar **argv);
gint gctl_cmd_start_appliance(GctlContext *ctx, gint argc, gchar **argv);
gint gctl_cmd_stop_appliance(GctlContext *ctx, gint argc, gchar **argv);
gint gctl_cmd_monitor(GctlContext *ctx, gint argc, gchar **argv);
gint gctl_cmd_jobs(GctlContext *ctx, gint argc, gchar **argv);
gint gctl_cmd_cancel(GctlContext *ctx, gint argc, gchar **argv);

/* guestfsctl.c: per-command option parsing. Prints what is wrong and
 * returns FALSE on a usage error; afterwards (*argv)[1..] are the
 * command's arguments. --json and --quiet are accepted by every command. */
gboolean gctl_parse(GctlContext *ctx,
		    gint *argc,
		    gchar ***argv,
		    const GOptionEntry *entries,
		    const gchar *params,
		    const gchar *summary,
		    gint min_args,
		    gint max_args);
gint gctl_usage_error(const gchar *command, const gchar *format, ...) G_GNUC_PRINTF(2, 3);

/* --root and --filesystem of the Files and Inspector commands */
extern gchar *gctl_opt_root;
extern gchar *gctl_opt_filesystem;
#define GCTL_GUEST_OPTIONS                                                                         \
	{"root",                                                                                   \
	 0,                                                                                        \
	 0,                                                                                        \
	 G_OPTION_ARG_STRING,                                                                      \
	 &gctl_opt_root,                                                                           \
	 "The operating system to use, as 'inspect' lists it (when the disks hold several)",       \
	 "DEVICE"},                                                                                \
	{                                                                                          \
		"filesystem", 0, 0, G_OPTION_ARG_STRING, &gctl_opt_filesystem,                     \
		    "Mount this filesystem alone at / (disks without an operating system)",        \
		    "DEVICE"                                                                       \
	}
