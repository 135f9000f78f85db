/*
 * Checking a caller's tar archive before anything of it is written to a
 * guest (Files.TarIn). The archive is read once, checked entry by entry,
 * and copied (uncompressed, with what the policy drops left out) to a
 * spool file that the appliance then unpacks:
 *
 *  - refused: absolute names, ".." components, hard links, symbolic links
 *    that point outside the target directory, entries whose path passes
 *    through a symbolic link of the archive, entry types tar would not
 *    unpack as plain files, directories and links;
 *  - dropped unless the policy preserves special files: setuid/setgid
 *    bits, file capabilities (security.capability), device nodes, FIFOs.
 *
 * What the archive would write through on the disk (existing directories
 * and files) is returned, for the caller to check in the guest: a
 * symbolic link already there would take tar elsewhere.
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct {
	gboolean preserve_special;
	const gchar *target; /* the resolved target directory in the guest */
} LgdTarPolicy;

typedef struct {
	/* paths relative to the target that the archive writes to or
	 * through, parents before children, each once */
	GPtrArray *paths;
	guint entries;
	guint dropped; /* device nodes and FIFOs left out */
	guint cleared; /* setuid/setgid bits and capabilities removed */
} LgdTarReport;

gboolean lgd_tar_check(GInputStream *in,
		       GOutputStream *out,
		       const LgdTarPolicy *policy,
		       LgdTarReport *report,
		       GCancellable *cancellable,
		       GError **error);

void lgd_tar_report_clear(LgdTarReport *report);

G_END_DECLS
