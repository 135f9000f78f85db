#include "config.h"

#include <elf.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <lzma.h>
#include <string.h>

#include "lgd-appliance-kernel.h"
#include "lgd-error.h"

/* A bzImage as the boot protocol lays it out (one setup sector after the
 * boot sector, a payload at payload_offset) around a compressed ELF. */

#define SETUP_SECTS 1
#define PAYLOAD_START ((SETUP_SECTS + 1) * 512)

typedef struct {
	gchar *dir;
	gchar *bzimage;
	gchar *output;
} Fixture;

/* A minimal x86-64 ELF: header, one PT_NOTE program header, the note
 * (Xen's PHYS32_ENTRY when @pvh, another Xen note when not), filler. */
static GBytes *
make_elf(gboolean pvh)
{
	GByteArray *elf = g_byte_array_new();
	Elf64_Ehdr eh = {0};
	Elf64_Phdr ph = {0};
	Elf64_Nhdr nh = {.n_namesz = 4, .n_descsz = 4, .n_type = pvh ? 18 : 5};
	const guint8 desc[4] = {0x00, 0x10, 0x00, 0x01};
	guint8 filler[4096];

	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	eh.e_type = ET_EXEC;
	eh.e_machine = EM_X86_64;
	eh.e_version = EV_CURRENT;
	eh.e_phoff = sizeof eh;
	eh.e_ehsize = sizeof eh;
	eh.e_phentsize = sizeof ph;
	eh.e_phnum = 1;
	ph.p_type = PT_NOTE;
	ph.p_offset = sizeof eh + sizeof ph;
	ph.p_filesz = sizeof nh + 4 + sizeof desc;
	g_byte_array_append(elf, (guint8 *)&eh, sizeof eh);
	g_byte_array_append(elf, (guint8 *)&ph, sizeof ph);
	g_byte_array_append(elf, (guint8 *)&nh, sizeof nh);
	g_byte_array_append(elf, (const guint8 *)"Xen", 4);
	g_byte_array_append(elf, desc, sizeof desc);
	for (guint i = 0; i < sizeof filler; i++)
		filler[i] = (guint8)(i * 7);
	g_byte_array_append(elf, filler, sizeof filler);
	return g_byte_array_free_to_bytes(elf);
}

static GBytes *
xz(GBytes *in)
{
	gsize len;
	const guint8 *data = g_bytes_get_data(in, &len);
	gsize cap = len + 4096, pos = 0;
	guint8 *out = g_malloc(cap);

	g_assert_cmpint(
	    lzma_easy_buffer_encode(6, LZMA_CHECK_CRC32, NULL, data, len, out, &pos, cap), ==,
	    LZMA_OK);
	return g_bytes_new_take(out, pos);
}

static GBytes *
gz(GBytes *in)
{
	g_autoptr(GZlibCompressor) z = g_zlib_compressor_new(G_ZLIB_COMPRESSOR_FORMAT_GZIP, 6);
	gsize len, read = 0, written = 0;
	const guint8 *data = g_bytes_get_data(in, &len);
	gsize cap = len + 4096;
	guint8 *out = g_malloc(cap);

	g_assert_cmpint(g_converter_convert(G_CONVERTER(z), data, len, out, cap,
					    G_CONVERTER_INPUT_AT_END, &read, &written, NULL),
			==, G_CONVERTER_FINISHED);
	return g_bytes_new_take(out, written);
}

static void
write_bzimage(Fixture *f, GBytes *payload)
{
	gsize len;
	const guint8 *data = g_bytes_get_data(payload, &len);
	g_autofree guint8 *image = g_malloc0(PAYLOAD_START + 64 + len);
	guint16 version = GUINT16_TO_LE(0x020f);
	guint32 offset = GUINT32_TO_LE(64), length = GUINT32_TO_LE((guint32)len);

	image[0x1f1] = SETUP_SECTS;
	memcpy(image + 0x202, "HdrS", 4);
	memcpy(image + 0x206, &version, 2);
	memcpy(image + 0x248, &offset, 4);
	memcpy(image + 0x24c, &length, 4);
	memcpy(image + PAYLOAD_START + 64, data, len);
	g_assert_true(
	    g_file_set_contents(f->bzimage, (gchar *)image, PAYLOAD_START + 64 + len, NULL));
}

static guint
count_files(const gchar *dir)
{
	g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
	guint n = 0;

	while (g_dir_read_name(d) != NULL)
		n++;
	return n;
}

static void
fixture_set_up(Fixture *f, gconstpointer data)
{
	f->dir = g_dir_make_tmp("lgd-kernel-XXXXXX", NULL);
	g_assert_nonnull(f->dir);
	f->bzimage = g_build_filename(f->dir, "vmlinuz", NULL);
	f->output = g_build_filename(f->dir, "vmlinux", NULL);
}

static void
fixture_tear_down(Fixture *f, gconstpointer data)
{
	g_unlink(f->bzimage);
	g_unlink(f->output);
	g_assert_cmpint(g_rmdir(f->dir), ==, 0); /* nothing else left behind */
	g_free(f->dir);
	g_free(f->bzimage);
	g_free(f->output);
}

static void
check_unpacked(Fixture *f, GBytes *elf)
{
	g_autoptr(GError) error = NULL;
	g_autofree gchar *contents = NULL;
	gsize len;

	g_assert_true(lgd_appliance_kernel_extract(f->bzimage, f->output, &error));
	g_assert_no_error(error);
	g_assert_true(g_file_get_contents(f->output, &contents, &len, NULL));
	g_assert_cmpmem(contents, len, g_bytes_get_data(elf, NULL), g_bytes_get_size(elf));
	g_assert_cmpuint(count_files(f->dir), ==, 2);
}

/* The test's data: the compressor; with @old_output, an output file is
 * there already and must be replaced whole, never appended to. */
typedef struct {
	GBytes *(*compress)(GBytes *in);
	gboolean old_output;
} Unpack;

static void
test_unpacks(Fixture *f, gconstpointer data)
{
	const Unpack *u = data;
	g_autoptr(GBytes) elf = make_elf(TRUE);
	g_autoptr(GBytes) payload = u->compress(elf);

	if (u->old_output)
		g_assert_true(g_file_set_contents(f->output, "old contents", -1, NULL));
	write_bzimage(f, payload);
	check_unpacked(f, elf);
}

static void
check_refused(Fixture *f, const gchar *message)
{
	g_autoptr(GError) error = NULL;

	g_assert_false(lgd_appliance_kernel_extract(f->bzimage, f->output, &error));
	g_assert_nonnull(error);
	g_assert_nonnull(strstr(error->message, message));
	g_assert_false(g_file_test(f->output, G_FILE_TEST_EXISTS));
	g_assert_cmpuint(count_files(f->dir), ==, 1); /* no temporary file left */
}

/* qemu cannot boot an uncompressed kernel without the PVH entry note. */
static void
test_no_pvh_note(Fixture *f, gconstpointer data)
{
	g_autoptr(GBytes) elf = make_elf(FALSE);
	g_autoptr(GBytes) payload = xz(elf);

	write_bzimage(f, payload);
	check_refused(f, "no PVH entry point");
}

static void
test_corrupt_payload(Fixture *f, gconstpointer data)
{
	g_autoptr(GBytes) elf = make_elf(TRUE);
	g_autoptr(GBytes) payload = xz(elf);
	gsize len = g_bytes_get_size(payload);
	g_autofree guint8 *bad = g_memdup2(g_bytes_get_data(payload, NULL), len);
	g_autoptr(GBytes) bad_payload = NULL;

	bad[len / 2] ^= 0xff;
	bad_payload = g_bytes_new(bad, len);
	write_bzimage(f, bad_payload);
	check_refused(f, "corrupt");
}

static void
test_other_compression(Fixture *f, gconstpointer data)
{
	g_autoptr(GBytes) payload = g_bytes_new_static("\x28\xb5\x2f\xfd zstd frame", 15);

	write_bzimage(f, payload);
	check_refused(f, "neither xz nor gzip");
}

static void
test_not_bzimage(Fixture *f, gconstpointer data)
{
	g_assert_true(g_file_set_contents(f->bzimage, "#!/bin/sh\necho not a kernel\n", -1, NULL));
	check_refused(f, "not a bzImage");
}

/* A payload_length that runs past the end of the file. */
static void
test_payload_outside(Fixture *f, gconstpointer data)
{
	g_autoptr(GBytes) elf = make_elf(TRUE);
	g_autoptr(GBytes) payload = xz(elf);
	g_autofree gchar *image = NULL;
	gsize len;
	guint32 huge = GUINT32_TO_LE(0x7fffffff);

	write_bzimage(f, payload);
	g_assert_true(g_file_get_contents(f->bzimage, &image, &len, NULL));
	memcpy(image + 0x24c, &huge, 4);
	g_assert_true(g_file_set_contents(f->bzimage, image, len, NULL));
	check_refused(f, "outside the file");
}

int
main(int argc, char **argv)
{
	static const Unpack unpack_xz = {xz, FALSE}, unpack_gz = {gz, FALSE},
			    unpack_again = {xz, TRUE};

	g_test_init(&argc, &argv, NULL);
#define ADD_DATA(name, data, fn)                                                                   \
	g_test_add("/appliance-kernel/" name, Fixture, data, fixture_set_up, fn, fixture_tear_down)
#define ADD(name, fn) ADD_DATA(name, NULL, fn)
	ADD_DATA("xz", &unpack_xz, test_unpacks);
	ADD_DATA("gzip", &unpack_gz, test_unpacks);
	ADD_DATA("replaces-output", &unpack_again, test_unpacks);
	ADD("no-pvh-note", test_no_pvh_note);
	ADD("corrupt-payload", test_corrupt_payload);
	ADD("other-compression", test_other_compression);
	ADD("not-bzimage", test_not_bzimage);
	ADD("payload-outside", test_payload_outside);
#undef ADD
#undef ADD_DATA
	return g_test_run();
}
