#include "config.h"

#include <string.h>

#include "lgd-error.h"
#include "lgd-tar-check.h"

#define LGD_TAR_BLOCK 512
/* PAX and GNU long-name headers hold names, links and a few attributes. */
#define LGD_TAR_MAX_META (1024 * 1024)

/* ustar header fields used by name */
#define LGD_TAR_TYPE 156
#define LGD_TAR_MAGIC 257

typedef struct {
	GInputStream *in;
	GOutputStream *out;
	const LgdTarPolicy *policy;
	LgdTarReport *report;
	GCancellable *cancellable;
	GHashTable *links;   /* names of the archive's symbolic links */
	GHashTable *seen;    /* report->paths, as a set */
	gchar *long_name;    /* from a GNU 'L' or a PAX 'path' */
	gchar *long_link;    /* from a GNU 'K' or a PAX 'linkpath' */
	GByteArray *pending; /* headers held back until their entry is known */
} LgdTarCheck;

static gboolean
lgd_tar_refuse(GError **error, const gchar *name, const gchar *why)
{
	g_set_error(error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT,
		    "Archive entry %s: %s; nothing was written", name != NULL ? name : "?", why);
	return FALSE;
}

static gboolean
lgd_tar_read(LgdTarCheck *self, guint8 *buf, gsize size, gboolean *eof, GError **error)
{
	gsize got = 0;

	if (!g_input_stream_read_all(self->in, buf, size, &got, self->cancellable, error))
		return FALSE;
	if (eof != NULL && got == 0) {
		*eof = TRUE;
		return TRUE;
	}
	if (got != size) {
		g_set_error_literal(error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT,
				    "The tar archive ends in the middle of an entry; nothing "
				    "was written");
		return FALSE;
	}
	return TRUE;
}

static gboolean
lgd_tar_write(LgdTarCheck *self, const guint8 *buf, gsize size, GError **error)
{
	return g_output_stream_write_all(self->out, buf, size, NULL, self->cancellable, error);
}

static guint64
lgd_tar_octal(const guint8 *field, gsize len, gboolean *ok)
{
	guint64 value = 0;
	gsize i = 0;

	if (field[0] & 0x80) { /* GNU base-256, for sizes over 8 GiB */
		for (i = 1; i < len; i++) {
			if (value >> 55) {
				*ok = FALSE;
				return 0;
			}
			value = (value << 8) | field[i];
		}
		return value;
	}
	while (i < len && field[i] == ' ')
		i++;
	for (; i < len && field[i] >= '0' && field[i] <= '7'; i++) {
		if (value >> 60) {
			*ok = FALSE;
			return 0;
		}
		value = value * 8 + (field[i] - '0');
	}
	if (i < len && field[i] != '\0' && field[i] != ' ')
		*ok = FALSE;
	return value;
}

static gchar *
lgd_tar_string(const guint8 *field, gsize len)
{
	return g_strndup((const gchar *)field, len);
}

static void
lgd_tar_set_octal(guint8 *field, gsize len, guint64 value)
{
	g_autofree gchar *text = g_strdup_printf("%0*" G_GINT64_MODIFIER "o", (int)len - 1, value);
	memcpy(field, text, len - 1);
	field[len - 1] = '\0';
}

static guint64
lgd_tar_sum(const guint8 *header)
{
	guint64 sum = 0;

	for (guint i = 0; i < LGD_TAR_BLOCK; i++)
		sum += (i >= 148 && i < 156) ? ' ' : header[i];
	return sum;
}

static void
lgd_tar_fix_sum(guint8 *header)
{
	g_autofree gchar *text = g_strdup_printf("%06" G_GINT64_MODIFIER "o", lgd_tar_sum(header));
	memcpy(header + 148, text, 6);
	header[154] = '\0';
	header[155] = ' ';
}

static gsize
lgd_tar_padded(guint64 size)
{
	return (gsize)((size + LGD_TAR_BLOCK - 1) / LGD_TAR_BLOCK * LGD_TAR_BLOCK);
}

/* "a/./b/" -> "a/b"; NULL for absolute names and ".." components. */
static gchar *
lgd_tar_normalize(const gchar *name)
{
	g_auto(GStrv) parts = g_strsplit(name, "/", -1);
	g_autoptr(GPtrArray) kept = g_ptr_array_new();

	if (name[0] == '/')
		return NULL;
	for (guint i = 0; parts[i] != NULL; i++) {
		if (parts[i][0] == '\0' || strcmp(parts[i], ".") == 0)
			continue;
		if (strcmp(parts[i], "..") == 0)
			return NULL;
		g_ptr_array_add(kept, parts[i]);
	}
	g_ptr_array_add(kept, NULL);
	return g_strjoinv("/", (gchar **)kept->pdata);
}

/* Whether a link at @name (relative to the target) pointing to @target
 * stays inside the target directory. */
static gboolean
lgd_tar_link_inside(const LgdTarPolicy *policy, const gchar *name, const gchar *target)
{
	g_autofree gchar *dir = g_path_get_dirname(name);
	g_autofree gchar *joined = NULL;
	g_auto(GStrv) parts = NULL;
	gint depth = 0;

	if (target[0] == '\0')
		return FALSE;
	if (target[0] == '/') {
		gsize len = policy->target != NULL ? strlen(policy->target) : 0;
		if (len == 0 || strcmp(policy->target, "/") == 0)
			return TRUE; /* the target is the guest's root */
		return strncmp(target, policy->target, len) == 0 &&
		       (target[len] == '/' || target[len] == '\0');
	}
	joined =
	    g_strcmp0(dir, ".") == 0 ? g_strdup(target) : g_strdup_printf("%s/%s", dir, target);
	parts = g_strsplit(joined, "/", -1);
	for (guint i = 0; parts[i] != NULL; i++) {
		if (parts[i][0] == '\0' || strcmp(parts[i], ".") == 0)
			continue;
		depth += strcmp(parts[i], "..") == 0 ? -1 : 1;
		if (depth < 0)
			return FALSE;
	}
	return TRUE;
}

static void
lgd_tar_report_path(LgdTarCheck *self, const gchar *path)
{
	if (path[0] == '\0' || g_hash_table_contains(self->seen, path))
		return;
	g_hash_table_add(self->seen, g_strdup(path));
	g_ptr_array_add(self->report->paths, g_strdup(path));
}

/* Every prefix of @name must not be a link of the archive; reports the
 * prefixes and @name for the check on the disk. */
static gboolean
lgd_tar_check_path(LgdTarCheck *self, const gchar *name, GError **error)
{
	g_autofree gchar *copy = g_strdup(name);

	for (gchar *slash = strchr(copy, '/'); slash != NULL; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		if (g_hash_table_contains(self->links, copy))
			return lgd_tar_refuse(
			    error, name, "its path passes through a symbolic link of the archive");
		lgd_tar_report_path(self, copy);
		*slash = '/';
	}
	lgd_tar_report_path(self, name);
	return TRUE;
}

/* One PAX record ("LEN key=value\n") at a time: keeps path and linkpath,
 * and drops file capabilities unless special files are preserved. */
static gboolean
lgd_tar_filter_pax(LgdTarCheck *self, GByteArray *data, gboolean global, GError **error)
{
	g_autoptr(GByteArray) kept = g_byte_array_new();
	gsize pos = 0;

	while (pos < data->len && data->data[pos] != '\0') {
		guint64 len = 0;
		gsize i = pos;
		const gchar *record;
		const gchar *eq;

		while (i < data->len && g_ascii_isdigit(data->data[i]) && len < LGD_TAR_MAX_META)
			len = len * 10 + (data->data[i++] - '0');
		if (i >= data->len || data->data[i] != ' ' || len <= i - pos ||
		    pos + len > data->len || data->data[pos + len - 1] != '\n')
			return lgd_tar_refuse(error, self->long_name, "malformed PAX header");
		record = (const gchar *)data->data + i + 1;
		eq = memchr(record, '=', (const gchar *)data->data + pos + len - record);
		if (eq == NULL)
			return lgd_tar_refuse(error, self->long_name, "malformed PAX header");
		if ((eq - record == 4 && strncmp(record, "path", 4) == 0) ||
		    (eq - record == 8 && strncmp(record, "linkpath", 8) == 0)) {
			gchar **slot = record[0] == 'p' ? &self->long_name : &self->long_link;
			if (global)
				return lgd_tar_refuse(error, "(global header)",
						      "a global PAX header may not set names");
			g_free(*slot);
			*slot =
			    g_strndup(eq + 1, (const gchar *)data->data + pos + len - 1 - eq - 1);
		}
		if (!self->policy->preserve_special &&
		    g_str_has_prefix(record, "SCHILY.xattr.security.capability=")) {
			self->report->cleared++;
		} else {
			g_byte_array_append(kept, data->data + pos, len);
		}
		pos += len;
	}
	g_byte_array_set_size(data, 0);
	g_byte_array_append(data, kept->data, kept->len);
	return TRUE;
}

/* Reads the data of a metadata entry (PAX or GNU long name). */
static GByteArray *
lgd_tar_read_meta(LgdTarCheck *self, guint64 size, GError **error)
{
	g_autoptr(GByteArray) data = NULL;

	if (size > LGD_TAR_MAX_META) {
		lgd_tar_refuse(error, "(metadata)", "a PAX or long-name header over 1 MiB");
		return NULL;
	}
	data = g_byte_array_sized_new(lgd_tar_padded(size));
	g_byte_array_set_size(data, lgd_tar_padded(size));
	if (!lgd_tar_read(self, data->data, data->len, NULL, error))
		return NULL;
	g_byte_array_set_size(data, size);
	return g_steal_pointer(&data);
}

/* Holds a metadata header and its data back until the entry it
 * describes is accepted (a dropped entry drops them too). */
static void
lgd_tar_hold(LgdTarCheck *self, guint8 *header, GByteArray *data)
{
	gsize padded = lgd_tar_padded(data->len);
	static const guint8 zeros[LGD_TAR_BLOCK] = {0};

	lgd_tar_set_octal(header + 124, 12, data->len);
	lgd_tar_fix_sum(header);
	g_byte_array_append(self->pending, header, LGD_TAR_BLOCK);
	g_byte_array_append(self->pending, data->data, data->len);
	g_byte_array_append(self->pending, zeros, padded - data->len);
}

/* Copies or skips the data of an entry. */
static gboolean
lgd_tar_copy_data(LgdTarCheck *self, guint64 size, gboolean keep, GError **error)
{
	guint8 buf[64 * LGD_TAR_BLOCK];
	guint64 left = lgd_tar_padded(size);

	while (left > 0) {
		gsize n = MIN(left, sizeof(buf));
		if (!lgd_tar_read(self, buf, n, NULL, error) ||
		    (keep && !lgd_tar_write(self, buf, n, error)))
			return FALSE;
		left -= n;
	}
	return TRUE;
}

static gboolean
lgd_tar_entry(LgdTarCheck *self, guint8 *header, guint64 size, GError **error)
{
	gchar type = (gchar)header[LGD_TAR_TYPE];
	g_autofree gchar *raw_name = NULL;
	g_autofree gchar *name = NULL;
	g_autofree gchar *link = NULL;
	gboolean ok = TRUE;
	gboolean keep = TRUE;
	guint64 mode;

	if (self->long_name != NULL) {
		raw_name = g_steal_pointer(&self->long_name);
	} else {
		g_autofree gchar *base = lgd_tar_string(header + 0, 100);
		g_autofree gchar *prefix = NULL;
		/* POSIX ustar only: GNU's format keeps times where the prefix is */
		if (memcmp(header + LGD_TAR_MAGIC, "ustar\0", 6) == 0)
			prefix = lgd_tar_string(header + 345, 155);
		raw_name = prefix != NULL && prefix[0] != '\0'
			       ? g_strdup_printf("%s/%s", prefix, base)
			       : g_steal_pointer(&base);
	}
	link = self->long_link != NULL ? g_steal_pointer(&self->long_link)
				       : lgd_tar_string(header + 157, 100);
	name = lgd_tar_normalize(raw_name);
	if (name == NULL)
		return lgd_tar_refuse(error, raw_name,
				      "absolute names and '..' components are refused");
	self->report->entries++;

	switch (type) {
	case '0':
	case '\0':
	case '7':
	case '5':
		break;
	case '1':
		return lgd_tar_refuse(error, raw_name, "hard links are refused");
	case '2':
		if (!lgd_tar_link_inside(self->policy, name, link))
			return lgd_tar_refuse(
			    error, raw_name,
			    "symbolic links that point outside the target directory are refused");
		break;
	case '3':
	case '4':
	case '6':
		keep = self->policy->preserve_special;
		if (!keep)
			self->report->dropped++;
		break;
	default: {
		g_autofree gchar *why = g_strdup_printf("entry type '%c' is not supported", type);
		return lgd_tar_refuse(error, raw_name, why);
	}
	}
	if (name[0] == '\0' && type != '5')
		return lgd_tar_refuse(error, raw_name, "only a directory may name the target");
	if (keep && name[0] != '\0' && !lgd_tar_check_path(self, name, error))
		return FALSE;
	if (type == '2')
		g_hash_table_add(self->links, g_strdup(name));

	ok = TRUE;
	mode = lgd_tar_octal(header + 100, 8, &ok);
	if (!ok)
		return lgd_tar_refuse(error, raw_name, "malformed mode");
	if ((mode & 06000) != 0 && !self->policy->preserve_special) {
		lgd_tar_set_octal(header + 100, 8, mode & ~(guint64)06000);
		lgd_tar_fix_sum(header);
		self->report->cleared++;
	}
	if (keep) {
		if (!lgd_tar_write(self, self->pending->data, self->pending->len, error) ||
		    !lgd_tar_write(self, header, LGD_TAR_BLOCK, error))
			return FALSE;
	}
	g_byte_array_set_size(self->pending, 0);
	/* links, directories and special files have no data whatever size
	 * says; tar skips what a size gives, and so do we */
	return lgd_tar_copy_data(self, size, keep, error);
}

static gboolean
lgd_tar_header(LgdTarCheck *self, guint8 *header, GError **error)
{
	gchar type = (gchar)header[LGD_TAR_TYPE];
	gboolean ok = TRUE;
	guint64 sum = lgd_tar_octal(header + 148, 8, &ok);
	guint64 size = lgd_tar_octal(header + 124, 12, &ok);
	g_autoptr(GByteArray) data = NULL;

	if (!ok || sum != lgd_tar_sum(header))
		return lgd_tar_refuse(error, self->long_name, "not a tar header (bad checksum)");
	switch (type) {
	case 'x':
	case 'g':
		data = lgd_tar_read_meta(self, size, error);
		if (data == NULL || !lgd_tar_filter_pax(self, data, type == 'g', error))
			return FALSE;
		lgd_tar_hold(self, header, data);
		return TRUE;
	case 'L':
	case 'K':
		data = lgd_tar_read_meta(self, size, error);
		if (data == NULL)
			return FALSE;
		g_free(type == 'L' ? self->long_name : self->long_link);
		*(type == 'L' ? &self->long_name : &self->long_link) =
		    g_strndup((const gchar *)data->data, data->len);
		lgd_tar_hold(self, header, data);
		return TRUE;
	default:
		return lgd_tar_entry(self, header, size, error);
	}
}

/* Reads the whole archive from @in, writes what passes to @out. */
gboolean
lgd_tar_check(GInputStream *in,
	      GOutputStream *out,
	      const LgdTarPolicy *policy,
	      LgdTarReport *report,
	      GCancellable *cancellable,
	      GError **error)
{
	static const guint8 zeros[LGD_TAR_BLOCK] = {0};
	LgdTarCheck self = {
	    .in = in,
	    .out = out,
	    .policy = policy,
	    .report = report,
	    .cancellable = cancellable,
	    .links = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL),
	    .seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL),
	    .pending = g_byte_array_new(),
	};
	gboolean ok = FALSE;

	memset(report, 0, sizeof(*report));
	report->paths = g_ptr_array_new_with_free_func(g_free);
	for (;;) {
		guint8 header[LGD_TAR_BLOCK];
		gboolean eof = FALSE;

		if (!lgd_tar_read(&self, header, sizeof(header), &eof, error))
			goto out;
		if (eof || memcmp(header, zeros, sizeof(header)) == 0)
			break; /* the end; what follows is not unpacked by tar */
		if (!lgd_tar_header(&self, header, error))
			goto out;
	}
	if (self.pending->len > 0 || self.long_name != NULL || self.long_link != NULL) {
		lgd_tar_refuse(error, self.long_name, "a header without its entry");
		goto out;
	}
	ok = lgd_tar_write(&self, zeros, sizeof(zeros), error) &&
	     lgd_tar_write(&self, zeros, sizeof(zeros), error) &&
	     g_output_stream_flush(out, cancellable, error);
out:
	g_hash_table_unref(self.links);
	g_hash_table_unref(self.seen);
	g_byte_array_unref(self.pending);
	g_free(self.long_name);
	g_free(self.long_link);
	return ok;
}

void
lgd_tar_report_clear(LgdTarReport *report)
{
	g_clear_pointer(&report->paths, g_ptr_array_unref);
}
