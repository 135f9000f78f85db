#include "config.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <pwd.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lgd-drives.h"
#include "lgd-error.h"
#include "lgd-identity.h"
#include "lgd-nbd-share.h"
#include "lgd-libvirt.h"
#include "lgd-xml.h"

struct _LgdDriveSource {
	gchar *uri;
	gchar *uuid; /* domains */
	gchar *key;  /* volumes */
	gchar *run_dir;
	virConnectPtr conn; /* opened lazily, used by the session thread only */
};

struct _LgdDrivesLease {
	guint n_drives;		    /* how many drives were added */
	virDomainPtr backup_domain; /* a pull-mode backup job to end */
	gchar *backup_dir;
	LgdNbdShare *share; /* a shut-off domain's disks, served read-only */
};

/* One drive as the appliance gets it. */
typedef struct {
	const gchar *target;
	gchar *path;
	const gchar *format;
	gboolean read_only;
} LgdDrive;

static void
lgd_drive_clear(LgdDrive *drive)
{
	g_free(drive->path);
}

/* A domain's drives are found by @uuid, a volume's by @key: one of the
 * two is NULL. */
static LgdDriveSource *
lgd_drive_source_new(const gchar *uri, const gchar *uuid, const gchar *key, const gchar *run_dir)
{
	LgdDriveSource *self = g_new0(LgdDriveSource, 1);

	self->uri = g_strdup(uri);
	self->uuid = g_strdup(uuid);
	self->key = g_strdup(key);
	self->run_dir = g_strdup(run_dir);
	return self;
}

LgdDriveSource *
lgd_drive_source_new_domain(const gchar *uri, const gchar *uuid, const gchar *run_dir)
{
	return lgd_drive_source_new(uri, uuid, NULL, run_dir);
}

LgdDriveSource *
lgd_drive_source_new_volume(const gchar *uri, const gchar *key, const gchar *run_dir)
{
	return lgd_drive_source_new(uri, NULL, key, run_dir);
}

void
lgd_drive_source_free(LgdDriveSource *self)
{
	if (self == NULL)
		return;
	if (self->conn != NULL)
		virConnectClose(self->conn);
	g_free(self->uri);
	g_free(self->uuid);
	g_free(self->key);
	g_free(self->run_dir);
	g_free(self);
}

const gchar *
lgd_drive_source_get_uri(LgdDriveSource *self)
{
	return self->uri;
}

/* The session thread keeps its own libvirt connection: libvirt calls then
 * never wait on the main loop's, and a dead one is simply reopened. */
static virConnectPtr
lgd_drive_source_conn(LgdDriveSource *self, GError **error)
{
	if (self->conn != NULL && virConnectIsAlive(self->conn) == 1)
		return self->conn;
	if (self->conn != NULL)
		virConnectClose(self->conn);
	self->conn = lgd_libvirt_connect(self->uri, error);
	return self->conn;
}

/* ---- the disks of a domain --------------------------------------------- */

static virDomainPtr
lgd_drives_lookup_domain(LgdDriveSource *self, LgdDomainXml **info, GError **error)
{
	virConnectPtr conn = lgd_drive_source_conn(self, error);
	g_autoptr(virDomain) dom = NULL;
	g_autofree gchar *xml = NULL;

	if (conn == NULL)
		return NULL;
	dom = virDomainLookupByUUIDString(conn, self->uuid);
	if (dom == NULL) {
		lgd_error_set_from_libvirt(error, "Domain %s is gone", self->uuid);
		return NULL;
	}
	xml = virDomainGetXMLDesc(dom, 0);
	if (xml == NULL) {
		lgd_error_set_from_libvirt(error, "Cannot read domain %s", self->uuid);
		return NULL;
	}
	*info = lgd_domain_xml_parse(xml, error);
	if (*info == NULL)
		return NULL;
	return g_steal_pointer(&dom);
}

/* The drives of a domain, in definition order, so that the appliance's
 * /dev/sda is the domain's first disk. */
static GArray *
lgd_drives_of_domain(virConnectPtr conn, const gchar *name, LgdDomainXml *info, GError **error)
{
	g_autoptr(GArray) drives = g_array_new(FALSE, TRUE, sizeof(LgdDrive));

	g_array_set_clear_func(drives, (GDestroyNotify)lgd_drive_clear);
	for (guint i = 0; i < info->disks->len; i++) {
		LgdDisk *disk = g_ptr_array_index(info->disks, i);
		g_autoptr(GError) local_error = NULL;
		LgdDrive drive = {0};

		if (!lgd_disk_is_drive(disk))
			continue;
		drive.path = lgd_disk_host_path(conn, disk, &local_error);
		if (drive.path == NULL) {
			g_debug("domain %s: skipping %s", name, local_error->message);
			continue;
		}
		drive.target = disk->target;
		/* libvirt reads a disk without a driver type as raw; so do we,
		 * rather than let a guest-controlled image choose its format */
		drive.format = disk->format != NULL ? disk->format : "raw";
		drive.read_only = disk->read_only;
		g_array_append_val(drives, drive);
	}
	if (drives->len == 0) {
		g_set_error(error, LGD_ERROR, LGD_ERROR_FAILED,
			    "Domain %s has no disk the appliance can open (only local files, "
			    "block devices and storage volumes can be used)",
			    name);
		return NULL;
	}
	return g_steal_pointer(&drives);
}

static gboolean
lgd_drives_check_exists(const gchar *name, const LgdDrive *drive, GError **error)
{
	if (g_access(drive->path, R_OK) == 0)
		return TRUE;
	g_set_error(error, LGD_ERROR,
		    errno == ENOENT ? LGD_ERROR_NOT_FOUND : lgd_error_code_from_errno(errno),
		    "Disk %s of %s: %s: %s", drive->target, name, drive->path, g_strerror(errno));
	return FALSE;
}

static gboolean
lgd_drives_add_file(
    guestfs_h *g, const gchar *path, const gchar *format, gboolean read_only, GError **error)
{
	if (guestfs_add_drive_opts(g, path, GUESTFS_ADD_DRIVE_OPTS_READONLY, read_only ? 1 : 0,
				   GUESTFS_ADD_DRIVE_OPTS_FORMAT, format, -1) < 0) {
		g_set_error(error, LGD_ERROR, LGD_ERROR_FAILED, "Cannot add %s: %s", path,
			    guestfs_last_error(g));
		return FALSE;
	}
	return TRUE;
}

/* Adds an NBD export of each drive, the same way for a running domain's
 * backup job and for a shut-off domain's shared view. */
static gboolean
lgd_drives_add_nbd(guestfs_h *g, const gchar *server, const LgdDrive *drive, GError **error)
{
	const gchar *servers[] = {server, NULL};

	if (guestfs_add_drive_opts(g, drive->target, GUESTFS_ADD_DRIVE_OPTS_READONLY, 1,
				   GUESTFS_ADD_DRIVE_OPTS_FORMAT, "raw",
				   GUESTFS_ADD_DRIVE_OPTS_PROTOCOL, "nbd",
				   GUESTFS_ADD_DRIVE_OPTS_SERVER, servers, -1) < 0) {
		g_set_error(error, LGD_ERROR, LGD_ERROR_FAILED,
			    "Cannot add the NBD export of disk %s: %s", drive->target,
			    guestfs_last_error(g));
		return FALSE;
	}
	return TRUE;
}

/* ---- running domains: a pull-mode backup job as the disks' view -------- */

/* qemu runs as its own user and must create the NBD socket and scratch
 * files in this directory. */
static gboolean
lgd_drives_make_backup_dir(const gchar *dir, GError **error)
{
	const gchar *users[] = {"libvirt-qemu", "qemu"};

	if (g_mkdir_with_parents(dir, 0750) < 0) {
		g_set_error(error, LGD_ERROR, LGD_ERROR_FAILED, "Cannot create %s: %s", dir,
			    g_strerror(errno));
		return FALSE;
	}
	for (guint i = 0; i < G_N_ELEMENTS(users); i++) {
		struct passwd *pw = getpwnam(users[i]);
		if (pw != NULL && chown(dir, pw->pw_uid, pw->pw_gid) == 0)
			return TRUE;
	}
	/* no separate qemu user (session mode): qemu runs as we do */
	return TRUE;
}

static void
lgd_drives_remove_dir(const gchar *dir)
{
	g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
	const gchar *name;

	if (d == NULL)
		return;
	while ((name = g_dir_read_name(d)) != NULL) {
		g_autofree gchar *path = g_build_filename(dir, name, NULL);
		g_unlink(path);
	}
	g_rmdir(dir);
}

/* A backup job of ours can outlive its session when libvirtd restarted
 * while it ended, or the service crashed. It is ours when it serves from
 * our directory; anybody else's job is left alone (and makes ours fail). */
static void
lgd_drives_end_stale_backup(virDomainPtr dom, const gchar *dir)
{
	g_autofree gchar *xml = virDomainBackupGetXMLDesc(dom, 0);

	if (xml == NULL || strstr(xml, dir) == NULL)
		return;
	g_info("ending a stale backup job of ours on %s", virDomainGetName(dom));
	virDomainAbortJob(dom);
}

static gchar *
lgd_drives_backup_xml(const gchar *dir, GArray *drives)
{
	GString *xml = g_string_new("<domainbackup mode='pull'>\n");
	g_autofree gchar *socket = g_build_filename(dir, "nbd.sock", NULL);
	g_autofree gchar *esc_socket = g_markup_escape_text(socket, -1);

	g_string_append_printf(xml, "  <server transport='unix' socket='%s'/>\n  <disks>\n",
			       esc_socket);
	for (guint i = 0; i < drives->len; i++) {
		LgdDrive *drive = &g_array_index(drives, LgdDrive, i);
		g_autofree gchar *target = g_markup_escape_text(drive->target, -1);
		g_autofree gchar *scratch = NULL;
		g_autofree gchar *esc_scratch = NULL;

		if (drive->read_only)
			continue;
		scratch = g_strdup_printf("%s/scratch-%s.qcow2", dir, drive->target);
		esc_scratch = g_markup_escape_text(scratch, -1);
		g_string_append_printf(xml,
				       "    <disk name='%s' backup='yes' type='file'>\n"
				       "      <scratch file='%s'/>\n"
				       "    </disk>\n",
				       target, esc_scratch);
	}
	g_string_append(xml, "  </disks>\n</domainbackup>\n");
	return g_string_free(xml, FALSE);
}

/* libguestfs cannot open the disks of a running domain (qemu holds their
 * write lock), and reading them live would not be consistent anyway. A
 * pull-mode backup job exports a point-in-time view of each writable disk
 * over NBD; read-only disks are shared and opened directly. */
static LgdDrivesLease *
lgd_drives_add_running(LgdDriveSource *self,
		       virDomainPtr dom,
		       const gchar *name,
		       GArray *drives,
		       guestfs_h *g,
		       GError **error)
{
	g_autoptr(LgdDrivesLease) lease = g_new0(LgdDrivesLease, 1);
	g_autofree gchar *xml = NULL;
	g_autofree gchar *socket = NULL;
	g_autofree gchar *server = NULL;

	lease->backup_dir = g_strdup_printf("%s/backup-%s", self->run_dir, self->uuid);
	lgd_drives_end_stale_backup(dom, lease->backup_dir);
	lgd_drives_remove_dir(lease->backup_dir); /* left over by a crash */
	if (!lgd_drives_make_backup_dir(lease->backup_dir, error))
		return NULL;
	xml = lgd_drives_backup_xml(lease->backup_dir, drives);
	if (virDomainBackupBegin(dom, xml, NULL, 0) < 0) {
		lgd_error_set_from_libvirt(error,
					   "Cannot get a consistent view of the disks of running "
					   "domain %s (libvirt backup job)",
					   name);
		if (virGetLastErrorCode() == VIR_ERR_OPERATION_INVALID)
			(*error)->code = LGD_ERROR_IN_USE; /* another job runs */
		return NULL;
	}
	lease->backup_domain = dom;
	virDomainRef(dom);

	lease->n_drives = drives->len;
	socket = g_build_filename(lease->backup_dir, "nbd.sock", NULL);
	server = g_strdup_printf("unix:%s", socket);
	for (guint i = 0; i < drives->len; i++) {
		LgdDrive *drive = &g_array_index(drives, LgdDrive, i);

		if (drive->read_only) {
			if (!lgd_drives_add_file(g, drive->path, drive->format, TRUE, error))
				return NULL;
			continue;
		}
		if (!lgd_drives_add_nbd(g, server, drive, error))
			return NULL;
	}
	return g_steal_pointer(&lease);
}

/* A read-only appliance on a shut-off domain: qemu's image locks would
 * keep the domain from starting while the appliance has its disks open
 * (a read-only open takes a shared lock that excludes writers). So the
 * disks are served read-only over NBD by a qemu-storage-daemon that
 * takes no lock; the domain can start at any time (and the service then
 * drops this session: a running domain is read through a backup job). */
static LgdDrivesLease *
lgd_drives_add_shared(
    LgdDriveSource *self, const gchar *name, GArray *drives, guestfs_h *g, GError **error)
{
	g_autoptr(LgdDrivesLease) lease = g_new0(LgdDrivesLease, 1);
	g_autofree LgdNbdExport *exports = g_new0(LgdNbdExport, drives->len);

	for (guint i = 0; i < drives->len; i++) {
		LgdDrive *drive = &g_array_index(drives, LgdDrive, i);
		exports[i] = (LgdNbdExport){drive->target, drive->path, drive->format};
	}
	lease->share = lgd_nbd_share_start(self->run_dir, self->uuid, exports, drives->len, error);
	if (lease->share == NULL) {
		g_prefix_error(error, "Domain %s: ", name);
		return NULL;
	}
	lease->n_drives = drives->len;
	for (guint i = 0; i < drives->len; i++) {
		if (!lgd_drives_add_nbd(g, lgd_nbd_share_get_server(lease->share),
					&g_array_index(drives, LgdDrive, i), error))
			return NULL;
	}
	return g_steal_pointer(&lease);
}

static LgdDrivesLease *
lgd_drives_add_domain(LgdDriveSource *self, guestfs_h *g, gboolean read_only, GError **error)
{
	g_autoptr(LgdDomainXml) info = NULL;
	g_autoptr(virDomain) dom = lgd_drives_lookup_domain(self, &info, error);
	g_autoptr(GArray) drives = NULL;
	LgdDrivesLease *lease;
	const gchar *name;
	int active;

	if (dom == NULL)
		return NULL;
	name = info->name != NULL ? info->name : self->uuid;
	drives = lgd_drives_of_domain(self->conn, name, info, error);
	if (drives == NULL)
		return NULL;
	active = virDomainIsActive(dom);
	if (active > 0 && !read_only) {
		g_set_error(error, LGD_ERROR, LGD_ERROR_DOMAIN_RUNNING,
			    "Domain %s is running; shut it down before changing its disks", name);
		return NULL;
	}
	for (guint i = 0; i < drives->len; i++) {
		if (!lgd_drives_check_exists(name, &g_array_index(drives, LgdDrive, i), error))
			return NULL;
	}
	if (active > 0)
		return lgd_drives_add_running(self, dom, name, drives, g, error);
	if (read_only)
		return lgd_drives_add_shared(self, name, drives, g, error);
	for (guint i = 0; i < drives->len; i++) {
		LgdDrive *drive = &g_array_index(drives, LgdDrive, i);
		if (!lgd_drives_add_file(g, drive->path, drive->format,
					 read_only || drive->read_only, error))
			return NULL;
	}
	lease = g_new0(LgdDrivesLease, 1);
	lease->n_drives = drives->len;
	return lease;
}

/* ---- volumes ----------------------------------------------------------- */

static virStorageVolPtr
lgd_drives_lookup_volume(LgdDriveSource *self, gchar **path, gchar **format, GError **error)
{
	virConnectPtr conn = lgd_drive_source_conn(self, error);
	g_autoptr(virStorageVol) vol = NULL;
	g_autofree gchar *xml = NULL;

	if (conn == NULL)
		return NULL;
	vol = virStorageVolLookupByKey(conn, self->key);
	if (vol == NULL || (*path = virStorageVolGetPath(vol)) == NULL ||
	    (xml = virStorageVolGetXMLDesc(vol, 0)) == NULL) {
		lgd_error_set_from_libvirt(error, "Volume %s", self->key);
		return NULL;
	}
	*format = lgd_volume_xml_format(xml);
	return g_steal_pointer(&vol);
}

static LgdDrivesLease *
lgd_drives_add_volume(LgdDriveSource *self, guestfs_h *g, gboolean read_only, GError **error)
{
	g_autofree gchar *path = NULL;
	g_autofree gchar *format = NULL;
	g_autoptr(virStorageVol) vol = lgd_drives_lookup_volume(self, &path, &format, error);
	LgdDrive drive = {.target = "volume"};
	LgdDrivesLease *lease;

	if (vol == NULL)
		return NULL;
	/* before anything opens the volume: its header may name a host file */
	if (!lgd_volume_check_backing(self->conn, vol, NULL, error))
		return NULL;
	drive.path = path;
	if (!lgd_drives_check_exists(self->key, &drive, error))
		return NULL;
	if (!lgd_drives_add_file(g, path, format != NULL ? format : "raw", read_only, error))
		return NULL;
	lease = g_new0(LgdDrivesLease, 1);
	lease->n_drives = 1;
	return lease;
}

/* ---- public ------------------------------------------------------------ */

/* Writes never touch a running domain's disks: checked before each write
 * (not only at launch), since the domain may have started meanwhile. */
gboolean
lgd_drives_check_writable(LgdDriveSource *self, GError **error)
{
	g_autoptr(LgdDomainXml) info = NULL;
	g_autoptr(virDomain) dom = NULL;
	int active;

	if (self->uuid == NULL)
		return TRUE; /* volumes: the appliance's launch fails on a disk in use */
	dom = lgd_drives_lookup_domain(self, &info, error);
	if (dom == NULL)
		return FALSE;
	active = virDomainIsActive(dom);
	if (active < 0) {
		lgd_error_set_from_libvirt(error, "Cannot read the state of domain %s", self->uuid);
		return FALSE;
	}
	if (active > 0) {
		g_set_error(error, LGD_ERROR, LGD_ERROR_DOMAIN_RUNNING,
			    "Domain %s is running; shut it down before changing its disks",
			    info->name != NULL ? info->name : self->uuid);
		return FALSE;
	}
	return TRUE;
}

/* Adds the drives to @g before launch. The lease undoes what the launch
 * needed (a backup job) and is released when the appliance stops. */
LgdDrivesLease *
lgd_drives_add(
    LgdDriveSource *self, guestfs_h *g, gboolean read_only, guint *n_added, GError **error)
{
	LgdDrivesLease *lease = self->uuid != NULL
				    ? lgd_drives_add_domain(self, g, read_only, error)
				    : lgd_drives_add_volume(self, g, read_only, error);

	if (lease != NULL && n_added != NULL)
		*n_added = lease->n_drives;
	return lease;
}

void
lgd_drives_lease_release(LgdDrivesLease *lease)
{
	if (lease == NULL)
		return;
	if (lease->backup_domain != NULL) {
		/* fails harmlessly when the domain stopped meanwhile */
		virDomainAbortJob(lease->backup_domain);
		virDomainFree(lease->backup_domain);
	}
	if (lease->backup_dir != NULL)
		lgd_drives_remove_dir(lease->backup_dir);
	lgd_nbd_share_stop(lease->share);
	g_free(lease->backup_dir);
	g_free(lease);
}

/* What identifies the disks' contents now (see lgd-identity.h); NULL when
 * it cannot be known. */
gchar *
lgd_drives_identity(LgdDriveSource *self)
{
	if (self->uuid != NULL) {
		g_autoptr(LgdDomainXml) info = NULL;
		g_autoptr(virDomain) dom = lgd_drives_lookup_domain(self, &info, NULL);

		if (dom == NULL || virDomainIsActive(dom) != 0)
			return NULL;
		return lgd_identity_of_domain(self->conn, info);
	} else {
		g_autofree gchar *path = NULL;
		g_autofree gchar *format = NULL;
		g_autoptr(virStorageVol) vol = lgd_drives_lookup_volume(self, &path, &format, NULL);

		if (vol == NULL)
			return NULL;
		return lgd_identity_of_volume(self->conn, vol);
	}
}
