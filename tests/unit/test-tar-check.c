#include "config.h"

#include <gio/gio.h>
#include <stdlib.h>
#include <string.h>

#include "lgd-error.h"
#include "lgd-tar-check.h"

/* ---- building archives --------------------------------------------------- */

static void
put_octal(guint8 *field, gsize len, guint64 value)
{
	g_autofree gchar *text = g_strdup_printf("%0*" G_GINT64_MODIFIER "o", (int)len - 1, value);
	memcpy(field, text, len - 1);
}

static void
add_entry(GByteArray *tar,
	  gchar type,
	  const gchar *name,
	  guint mode,
	  const gchar *link,
	  const gchar *data)
{
	guint8 h[512] = {0};
	gsize size = data != NULL ? strlen(data) : 0;
	guint64 sum = 0;
	static const guint8 zeros[512] = {0};

	memcpy(h, name, MIN(strlen(name), 100));
	put_octal(h + 100, 8, mode);
	put_octal(h + 108, 8, 0);
	put_octal(h + 116, 8, 0);
	put_octal(h + 124, 12, size);
	put_octal(h + 136, 12, 0);
	h[156] = (guint8)type;
	if (link != NULL)
		memcpy(h + 157, link, MIN(strlen(link), 100));
	memcpy(h + 257,
	       "ustar\0"
	       "00",
	       8);
	memset(h + 148, ' ', 8);
	for (guint i = 0; i < 512; i++)
		sum += h[i];
	put_octal(h + 148, 7, sum);
	g_byte_array_append(tar, h, 512);
	if (size > 0) {
		g_byte_array_append(tar, (const guint8 *)data, size);
		g_byte_array_append(tar, zeros, (512 - size % 512) % 512);
	}
}

/* A PAX 'x' header with one record, before the entry it describes. */
static void
add_pax(GByteArray *tar, const gchar *key, const gchar *value)
{
	g_autofree gchar *body = NULL;
	gsize len = strlen(key) + strlen(value) + 3;

	/* the length counts its own digits */
	len += len + 2 >= 100 ? 3 : 2;
	body = g_strdup_printf("%zu %s=%s\n", len, key, value);
	g_assert_cmpuint(strlen(body), ==, len);
	add_entry(tar, 'x', "PaxHeaders/x", 0644, NULL, body);
}

static void
end_archive(GByteArray *tar)
{
	static const guint8 zeros[1024] = {0};
	g_byte_array_append(tar, zeros, sizeof(zeros));
}

static gboolean
check(
    GByteArray *tar, const LgdTarPolicy *policy, LgdTarReport *report, GBytes **out, GError **error)
{
	g_autoptr(GInputStream) in =
	    g_memory_input_stream_new_from_data(g_memdup2(tar->data, tar->len), tar->len, g_free);
	g_autoptr(GOutputStream) sink = g_memory_output_stream_new_resizable();
	gboolean ok = lgd_tar_check(in, sink, policy, report, NULL, error);

	g_output_stream_close(sink, NULL, NULL);
	if (out != NULL)
		*out = g_memory_output_stream_steal_as_bytes(G_MEMORY_OUTPUT_STREAM(sink));
	return ok;
}

static const LgdTarPolicy plain = {FALSE, "/home/u/dir"};

/* ---- tests ---------------------------------------------------------------- */

static void
test_accepts_plain_tree(void)
{
	g_autoptr(GByteArray) tar = g_byte_array_new();
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) out = NULL;
	LgdTarReport report;

	add_entry(tar, '5', "./", 0755, NULL, NULL);
	add_entry(tar, '5', "./a/", 0755, NULL, NULL);
	add_entry(tar, '0', "./a/file", 0644, NULL, "hello");
	add_entry(tar, '2', "./a/rel", 0777, "file", NULL);
	add_entry(tar, '2', "./up", 0777, "a/../a/file", NULL);
	add_entry(tar, '2', "./abs", 0777, "/home/u/dir/a", NULL);
	end_archive(tar);
	g_assert_true(check(tar, &plain, &report, &out, &error));
	g_assert_no_error(error);
	g_assert_cmpuint(report.entries, ==, 6);
	g_assert_cmpuint(report.paths->len, ==, 5);
	g_assert_cmpstr(g_ptr_array_index(report.paths, 0), ==, "a");
	g_assert_cmpstr(g_ptr_array_index(report.paths, 1), ==, "a/file");
	/* unchanged: what passes is copied as it came */
	g_assert_cmpuint(g_bytes_get_size(out), ==, tar->len);
	g_assert_true(memcmp(g_bytes_get_data(out, NULL), tar->data, tar->len) == 0);
	lgd_tar_report_clear(&report);
}

static void
test_refuses(void)
{
	const struct {
		gchar type;
		const gchar *name;
		const gchar *link;
		const gchar *why;
	} cases[] = {
	    {'0', "/etc/passwd", NULL, "absolute"},
	    {'0', "a/../../etc/passwd", NULL, "'..'"},
	    {'0', "../x", NULL, "'..'"},
	    {'1', "hard", "a/file", "hard links"},
	    {'2', "out", "../..", "outside"},
	    {'2', "a/out", "../../etc", "outside"},
	    {'2', "abs", "/etc", "outside"},
	    {'2', "near", "/home/u/dirty", "outside"},
	    {'S', "sparse", NULL, "not supported"},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GByteArray) tar = g_byte_array_new();
		g_autoptr(GError) error = NULL;
		LgdTarReport report;

		add_entry(tar, cases[i].type, cases[i].name, 0644, cases[i].link, NULL);
		end_archive(tar);
		g_assert_false(check(tar, &plain, &report, NULL, &error));
		g_assert_error(error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT);
		g_assert_nonnull(strstr(error->message, cases[i].why));
		g_assert_nonnull(strstr(error->message, "nothing was written"));
		lgd_tar_report_clear(&report);
	}
}

static void
test_refuses_through_archive_link(void)
{
	g_autoptr(GByteArray) tar = g_byte_array_new();
	g_autoptr(GError) error = NULL;
	LgdTarReport report;

	/* the link itself stays inside; writing through it would not */
	add_entry(tar, '2', "l", 0777, "a", NULL);
	add_entry(tar, '0', "l/x", 0644, NULL, "x");
	end_archive(tar);
	g_assert_false(check(tar, &plain, &report, NULL, &error));
	g_assert_nonnull(strstr(error->message, "passes through a symbolic link"));
	lgd_tar_report_clear(&report);
}

static void
test_pax_and_long_names(void)
{
	g_autoptr(GByteArray) tar = g_byte_array_new();
	g_autoptr(GError) error = NULL;
	LgdTarReport report;

	/* the PAX name, not the ustar one, is what tar unpacks */
	add_pax(tar, "path", "../../etc/shadow");
	add_entry(tar, '0', "innocent", 0644, NULL, "x");
	end_archive(tar);
	g_assert_false(check(tar, &plain, &report, NULL, &error));
	g_assert_nonnull(strstr(error->message, "../../etc/shadow"));
	lgd_tar_report_clear(&report);

	g_byte_array_set_size(tar, 0);
	g_clear_error(&error);
	add_pax(tar, "linkpath", "/etc");
	add_entry(tar, '2', "l", 0777, "ok", NULL);
	end_archive(tar);
	g_assert_false(check(tar, &plain, &report, NULL, &error));
	g_assert_nonnull(strstr(error->message, "outside"));
	lgd_tar_report_clear(&report);

	g_byte_array_set_size(tar, 0);
	g_clear_error(&error);
	add_entry(tar, 'L', "././@LongLink", 0644, NULL, "/root/.ssh/authorized_keys");
	add_entry(tar, '0', "short", 0644, NULL, "key");
	end_archive(tar);
	g_assert_false(check(tar, &plain, &report, NULL, &error));
	g_assert_nonnull(strstr(error->message, "/root/.ssh/authorized_keys"));
	lgd_tar_report_clear(&report);
}

static void
test_drops_special(void)
{
	g_autoptr(GByteArray) tar = g_byte_array_new();
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) out = NULL;
	const guint8 *data;
	LgdTarReport report;
	const LgdTarPolicy preserve = {TRUE, "/"};

	add_entry(tar, '0', "suid", 04755, NULL, "#!/bin/sh\n");
	add_pax(tar, "SCHILY.xattr.security.capability", "xyz");
	add_entry(tar, '0', "cap", 0755, NULL, "x");
	add_entry(tar, '3', "tty", 0620, NULL, NULL);
	add_entry(tar, '6', "fifo", 0600, NULL, NULL);
	end_archive(tar);

	g_assert_true(check(tar, &plain, &report, &out, &error));
	g_assert_cmpuint(report.dropped, ==, 2);
	g_assert_cmpuint(report.cleared, ==, 2);
	g_assert_cmpuint(report.paths->len, ==, 2);
	data = g_bytes_get_data(out, NULL);
	/* suid's mode lost its setuid bit, and the checksum still holds */
	g_assert_cmpint(memcmp(data + 100, "0000755", 7), ==, 0);
	g_assert_null(g_strstr_len((const gchar *)data, g_bytes_get_size(out), "capability"));
	g_assert_null(g_strstr_len((const gchar *)data, g_bytes_get_size(out), "tty"));
	lgd_tar_report_clear(&report);
	g_clear_pointer(&out, g_bytes_unref);

	g_assert_true(check(tar, &preserve, &report, &out, &error));
	g_assert_cmpuint(report.dropped, ==, 0);
	g_assert_cmpuint(report.cleared, ==, 0);
	g_assert_cmpuint(g_bytes_get_size(out), ==, tar->len);
	lgd_tar_report_clear(&report);
}

#define LONG_DIR                                                                                   \
	"a-very-long-directory-name-that-goes-on-and-on-for-more-than-a-hundred-bytes-so-that-"    \
	"tar-needs-a-long-name-header"

static void
test_real_tar(void)
{
	/* GNU tar's own output, in its GNU and PAX formats, passes unchanged */
	g_autofree gchar *dir = g_dir_make_tmp("lgd-tar-XXXXXX", NULL);
	const gchar *formats[] = {"gnu", "pax"};

	g_assert_nonnull(dir);
	for (guint i = 0; i < G_N_ELEMENTS(formats); i++) {
		g_autofree gchar *cmd = g_strdup_printf(
		    "set -e; cd %s; rm -rf t; mkdir -p t/" LONG_DIR "/sub; echo hi > t/" LONG_DIR
		    "/sub/f; ln -sf f t/" LONG_DIR "/sub/l; tar --format=%s -C t -cf - .",
		    dir, formats[i]);
		g_autoptr(GSubprocess) tar_process = NULL;
		g_autoptr(GBytes) archive = NULL;
		g_autoptr(GByteArray) tar = g_byte_array_new();
		g_autoptr(GBytes) out = NULL;
		g_autoptr(GError) error = NULL;
		LgdTarReport report;
		gsize len;
		const guint8 *data;

		tar_process = g_subprocess_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error, "/bin/sh",
					       "-c", cmd, NULL);
		g_assert_no_error(error);
		g_assert_true(
		    g_subprocess_communicate(tar_process, NULL, NULL, &archive, NULL, &error));
		g_assert_no_error(error);
		g_assert_true(g_subprocess_get_successful(tar_process));
		data = g_bytes_get_data(archive, &len);
		g_byte_array_append(tar, data, len);
		g_assert_true(check(tar, &plain, &report, &out, &error));
		g_assert_no_error(error);
		g_assert_cmpuint(report.entries, ==, 5);
		g_assert_cmpstr(g_ptr_array_index(report.paths, report.paths->len - 1), ==,
				LONG_DIR "/sub/l");
		/* the same entries, up to the end marker tar pads after */
		g_assert_true(
		    memcmp(g_bytes_get_data(out, NULL), data, g_bytes_get_size(out) - 1024) == 0);
		lgd_tar_report_clear(&report);
	}
	{
		g_autofree gchar *rm = g_strdup_printf("rm -rf %s", dir);
		g_assert_cmpint(system(rm), ==, 0);
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/tar-check/accepts-plain-tree", test_accepts_plain_tree);
	g_test_add_func("/tar-check/refuses", test_refuses);
	g_test_add_func("/tar-check/refuses-through-archive-link",
			test_refuses_through_archive_link);
	g_test_add_func("/tar-check/pax-and-long-names", test_pax_and_long_names);
	g_test_add_func("/tar-check/drops-special", test_drops_special);
	g_test_add_func("/tar-check/real-tar", test_real_tar);
	return g_test_run();
}
