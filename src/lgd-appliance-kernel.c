#include "config.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <lzma.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lgd-appliance-kernel.h"
#include "lgd-error.h"

/* Why: under TCG an appliance spends about 4 of its 13 s of launch in the
 * kernel's own decompressor (an xz-compressed bzImage unpacked by emulated
 * instructions), before the kernel prints a line. An uncompressed vmlinux
 * with a PVH entry note is loaded by qemu directly and skips that step.
 * supermin takes the kernel named by SUPERMIN_KERNEL, and libguestfs
 * builds the appliance in its cache directory: the service gives its
 * handles a cache directory of its own, so the appliance that other
 * libguestfs tools build and share in /var/tmp stays as it is. */

#define LGD_KERNEL_MAX_SIZE (512u << 20) /* far above any vmlinux */
#define LGD_KERNEL_CHUNK (1u << 20)
#define LGD_XEN_ELFNOTE_PHYS32_ENTRY 18

/* ---- the bzImage payload ----------------------------------------------- */

static gboolean
lgd_kernel_payload(const guint8 *data, gsize size, gsize *offset, gsize *length, GError **error)
{
	guint setup_sects;
	guint16 version;
	guint32 payload_offset, payload_length;
	gsize start;

	/* Documentation/x86/boot.rst: the setup header, protocol >= 2.08 */
	if (size < 0x250 || memcmp(data + 0x202, "HdrS", 4) != 0) {
		g_set_error(error, LGD_ERROR, LGD_ERROR_NOT_SUPPORTED, "not a bzImage");
		return FALSE;
	}
	memcpy(&version, data + 0x206, sizeof version);
	version = GUINT16_FROM_LE(version);
	if (version < 0x0208) {
		g_set_error(error, LGD_ERROR, LGD_ERROR_NOT_SUPPORTED,
			    "boot protocol %u.%u names no payload", version >> 8, version & 0xff);
		return FALSE;
	}
	setup_sects = data[0x1f1] != 0 ? data[0x1f1] : 4;
	memcpy(&payload_offset, data + 0x248, sizeof payload_offset);
	memcpy(&payload_length, data + 0x24c, sizeof payload_length);
	start = (gsize)(setup_sects + 1) * 512;
	*offset = start + GUINT32_FROM_LE(payload_offset);
	*length = GUINT32_FROM_LE(payload_length);
	if (*offset > size || *length > size - *offset || *length < 6) {
		g_set_error(error, LGD_ERROR, LGD_ERROR_NOT_SUPPORTED,
			    "the payload lies outside the file");
		return FALSE;
	}
	return TRUE;
}

/* ---- decompressors, writing to @fd ------------------------------------- */

static gboolean
lgd_kernel_write(int fd, const guint8 *buf, gsize len, gsize *total, GError **error)
{
	*total += len;
	if (*total > LGD_KERNEL_MAX_SIZE) {
		g_set_error(error, LGD_ERROR, LGD_ERROR_NOT_SUPPORTED,
			    "the kernel unpacks to more than %u MiB", LGD_KERNEL_MAX_SIZE >> 20);
		return FALSE;
	}
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "write: %s",
				    g_strerror(errno));
			return FALSE;
		}
		buf += n;
		len -= (gsize)n;
	}
	return TRUE;
}

static gboolean
lgd_kernel_unxz(const guint8 *in, gsize len, int fd, GError **error)
{
	lzma_stream strm = LZMA_STREAM_INIT;
	g_autofree guint8 *out = g_malloc(LGD_KERNEL_CHUNK);
	gsize total = 0;
	lzma_ret ret;

	if (lzma_stream_decoder(&strm, UINT64_MAX, 0) != LZMA_OK) {
		g_set_error(error, LGD_ERROR, LGD_ERROR_FAILED, "cannot start an xz decoder");
		return FALSE;
	}
	strm.next_in = in;
	strm.avail_in = len;
	do {
		strm.next_out = out;
		strm.avail_out = LGD_KERNEL_CHUNK;
		ret = lzma_code(&strm, LZMA_FINISH);
		if ((ret == LZMA_OK || ret == LZMA_STREAM_END) &&
		    !lgd_kernel_write(fd, out, LGD_KERNEL_CHUNK - strm.avail_out, &total, error)) {
			lzma_end(&strm);
			return FALSE;
		}
	} while (ret == LZMA_OK);
	lzma_end(&strm);
	if (ret != LZMA_STREAM_END) {
		g_set_error(error, LGD_ERROR, LGD_ERROR_NOT_SUPPORTED,
			    "the xz payload is corrupt (liblzma error %d)", (int)ret);
		return FALSE;
	}
	return TRUE;
}

static gboolean
lgd_kernel_gunzip(const guint8 *in, gsize len, int fd, GError **error)
{
	g_autoptr(GZlibDecompressor) z = g_zlib_decompressor_new(G_ZLIB_COMPRESSOR_FORMAT_GZIP);
	g_autofree guint8 *out = g_malloc(LGD_KERNEL_CHUNK);
	gsize total = 0;

	for (;;) {
		gsize read = 0, written = 0;
		GConverterResult r =
		    g_converter_convert(G_CONVERTER(z), in, len, out, LGD_KERNEL_CHUNK,
					G_CONVERTER_INPUT_AT_END, &read, &written, error);

		if (r == G_CONVERTER_ERROR)
			return FALSE;
		in += read;
		len -= read;
		if (!lgd_kernel_write(fd, out, written, &total, error))
			return FALSE;
		if (r == G_CONVERTER_FINISHED)
			return TRUE;
	}
}

/* ---- the result: an x86-64 ELF that qemu boots through PVH ------------- */

static gboolean
lgd_kernel_notes_have_pvh(const guint8 *p, gsize len)
{
	while (len >= sizeof(Elf64_Nhdr)) {
		Elf64_Nhdr nh;
		gsize name_len, desc_len;

		memcpy(&nh, p, sizeof nh);
		name_len = ((gsize)nh.n_namesz + 3) & ~(gsize)3;
		desc_len = ((gsize)nh.n_descsz + 3) & ~(gsize)3;
		p += sizeof nh;
		len -= sizeof nh;
		if (name_len > len || desc_len > len - name_len)
			return FALSE;
		if (nh.n_namesz == 4 && memcmp(p, "Xen", 4) == 0 &&
		    nh.n_type == LGD_XEN_ELFNOTE_PHYS32_ENTRY)
			return TRUE;
		p += name_len + desc_len;
		len -= name_len + desc_len;
	}
	return FALSE;
}

static gboolean
lgd_kernel_check_elf(const gchar *path, GError **error)
{
	g_autoptr(GMappedFile) map = g_mapped_file_new(path, FALSE, error);
	const guint8 *data;
	gsize size;
	Elf64_Ehdr eh;

	if (map == NULL)
		return FALSE;
	data = (const guint8 *)g_mapped_file_get_contents(map);
	size = g_mapped_file_get_length(map);
	if (size < sizeof eh || memcmp(data, ELFMAG, SELFMAG) != 0) {
		g_set_error(error, LGD_ERROR, LGD_ERROR_NOT_SUPPORTED, "%s is not an ELF file",
			    path);
		return FALSE;
	}
	memcpy(&eh, data, sizeof eh);
	if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_machine != EM_X86_64 ||
	    eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phoff > size ||
	    (gsize)eh.e_phnum * sizeof(Elf64_Phdr) > size - eh.e_phoff) {
		g_set_error(error, LGD_ERROR, LGD_ERROR_NOT_SUPPORTED,
			    "%s is not an x86-64 kernel image", path);
		return FALSE;
	}
	for (guint i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;

		memcpy(&ph, data + eh.e_phoff + i * sizeof ph, sizeof ph);
		if (ph.p_type == PT_NOTE && ph.p_offset <= size &&
		    ph.p_filesz <= size - ph.p_offset &&
		    lgd_kernel_notes_have_pvh(data + ph.p_offset, ph.p_filesz))
			return TRUE;
	}
	g_set_error(error, LGD_ERROR, LGD_ERROR_NOT_SUPPORTED,
		    "%s has no PVH entry point (a kernel built without CONFIG_PVH)", path);
	return FALSE;
}

/* Unpacks the kernel in @bzimage into @output (replaced atomically), and
 * checks that qemu can boot the result directly. */
gboolean
lgd_appliance_kernel_extract(const gchar *bzimage, const gchar *output, GError **error)
{
	g_autoptr(GMappedFile) map = g_mapped_file_new(bzimage, FALSE, error);
	g_autofree gchar *tmp = g_strdup_printf("%s.XXXXXX", output);
	const guint8 *data;
	gsize offset, length;
	gboolean ok;
	int fd;

	if (map == NULL)
		return FALSE;
	data = (const guint8 *)g_mapped_file_get_contents(map);
	if (!lgd_kernel_payload(data, g_mapped_file_get_length(map), &offset, &length, error)) {
		g_prefix_error(error, "%s: ", bzimage);
		return FALSE;
	}
	if (memcmp(data + offset,
		   "\xfd"
		   "7zXZ",
		   6) != 0 &&
	    memcmp(data + offset, "\x1f\x8b", 2) != 0) {
		g_set_error(error, LGD_ERROR, LGD_ERROR_NOT_SUPPORTED,
			    "%s: the kernel is compressed with neither xz nor gzip", bzimage);
		return FALSE;
	}
	fd = g_mkstemp_full(tmp, O_WRONLY | O_CLOEXEC, 0644);
	if (fd < 0) {
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "Cannot create %s: %s",
			    tmp, g_strerror(errno));
		return FALSE;
	}
	/* whatever the umask: qemu, as another user, reads the appliance's copy */
	if (fchmod(fd, 0644) < 0)
		g_debug("fchmod %s: %s", tmp, g_strerror(errno));
	ok = data[offset] == 0xfd ? lgd_kernel_unxz(data + offset, length, fd, error)
				  : lgd_kernel_gunzip(data + offset, length, fd, error);
	if (!g_close(fd, ok ? error : NULL))
		ok = FALSE;
	ok = ok && lgd_kernel_check_elf(tmp, error);
	if (ok && g_rename(tmp, output) < 0) {
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "Cannot rename %s: %s",
			    tmp, g_strerror(errno));
		ok = FALSE;
	}
	if (!ok) {
		g_unlink(tmp);
		g_prefix_error(error, "%s: ", bzimage);
	}
	return ok;
}

/* ---- which kernel, and where ------------------------------------------- */

/* As supermin picks one: the newest /boot/vmlinuz-VERSION whose modules
 * are in /lib/modules/VERSION. */
static gchar *
lgd_kernel_pick_version(GError **error)
{
	g_autoptr(GDir) dir = g_dir_open("/boot", 0, error);
	g_autofree gchar *best = NULL;
	const gchar *name;

	if (dir == NULL)
		return NULL;
	while ((name = g_dir_read_name(dir)) != NULL) {
		const gchar *version = name + strlen("vmlinuz-");
		g_autofree gchar *modules = NULL;

		if (!g_str_has_prefix(name, "vmlinuz-") || version[0] == '\0' ||
		    g_str_has_suffix(name, ".bak") || strstr(name, "xen") != NULL)
			continue;
		modules = g_build_filename("/lib/modules", version, NULL);
		if (!g_file_test(modules, G_FILE_TEST_IS_DIR))
			continue;
		if (best == NULL || strverscmp(version, best) > 0) {
			g_free(best);
			best = g_strdup(version);
		}
	}
	if (best == NULL)
		g_set_error(error, LGD_ERROR, LGD_ERROR_NOT_SUPPORTED,
			    "no /boot/vmlinuz-VERSION with its /lib/modules/VERSION");
	return g_steal_pointer(&best);
}

/* A directory of this user's, beside libguestfs's own cache (where qemu,
 * running as another user, can read the appliance), that nobody else can
 * have prepared: created here, or owned by us and writable only by us. */
static gchar *
lgd_kernel_dir(GError **error)
{
	const gchar *base = g_getenv("LIBGUESTFS_CACHEDIR");
	g_autofree gchar *name = g_strdup_printf(".libvirt-guestfs-dbus-%u", (guint)geteuid());
	g_autofree gchar *dir = NULL;
	struct stat st;

	if (base == NULL)
		base = g_getenv("TMPDIR");
	if (base == NULL)
		base = "/var/tmp";
	dir = g_build_filename(base, name, NULL);
	if (g_mkdir(dir, 0755) < 0 && errno != EEXIST) {
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "Cannot create %s: %s",
			    dir, g_strerror(errno));
		return NULL;
	}
	if (g_lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 022) != 0) {
		g_set_error(error, LGD_ERROR, LGD_ERROR_NOT_SUPPORTED,
			    "%s is not a directory of ours that only we can write to", dir);
		return NULL;
	}
	return g_steal_pointer(&dir);
}

/* Makes (once per kernel) the uncompressed kernel and points supermin at
 * it. Returns the libguestfs cache directory the service's handles must
 * use, or NULL with @error when the stock appliance is to be used. Call
 * before any other thread runs: it sets environment variables. */
gchar *
lgd_appliance_kernel_prepare(GError **error)
{
	g_autofree gchar *version = NULL;
	g_autofree gchar *dir = NULL;
	g_autofree gchar *source = NULL;
	g_autofree gchar *output = NULL;
	g_autofree gchar *modules = NULL;
	struct stat src_st, out_st;

	if (g_getenv("SUPERMIN_KERNEL") != NULL) {
		g_set_error(error, LGD_ERROR, LGD_ERROR_NOT_SUPPORTED,
			    "SUPERMIN_KERNEL is set, the appliance uses that kernel");
		return NULL;
	}
	version = lgd_kernel_pick_version(error);
	if (version == NULL || (dir = lgd_kernel_dir(error)) == NULL)
		return NULL;
	source = g_strdup_printf("/boot/vmlinuz-%s", version);
	output = g_strdup_printf("%s/vmlinux-%s", dir, version);
	modules = g_build_filename("/lib/modules", version, NULL);
	if (g_stat(source, &src_st) < 0) {
		g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "%s: %s", source,
			    g_strerror(errno));
		return NULL;
	}
	/* a kernel package upgraded in place gives a newer vmlinuz */
	if (g_lstat(output, &out_st) < 0 || !S_ISREG(out_st.st_mode) ||
	    out_st.st_mtime < src_st.st_mtime || !lgd_kernel_check_elf(output, NULL)) {
		gint64 t = g_get_monotonic_time();

		if (!lgd_appliance_kernel_extract(source, output, error))
			return NULL;
		g_info("unpacked %s into %s in %.1f s (for a faster appliance launch under TCG)",
		       source, output, (g_get_monotonic_time() - t) / 1e6);
	}
	g_setenv("SUPERMIN_KERNEL", output, TRUE);
	g_setenv("SUPERMIN_KERNEL_VERSION", version, TRUE);
	g_setenv("SUPERMIN_MODULES", modules, TRUE);
	return g_steal_pointer(&dir);
}
