/*
 * A volume's bytes copied by the service itself, between the volume's own
 * file (or block device) and the caller's descriptor: copy_file_range(),
 * sendfile(), splice() or read() and write(), with holes found by
 * SEEK_DATA and SEEK_HOLE. Only for a local connection and a volume the
 * service can open safely (lgd_volume_local_open()); everything else goes
 * through libvirt's storage volume stream (lgd-volume-stream.c), which
 * checks the call, the range and the volume's use the same way first.
 *
 * Also what the two share: the caller's side of a transfer (the sink of a
 * download, the source of an upload) and its errors.
 */
#pragma once

#include <libvirt/libvirt.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "lgd-job.h"

G_BEGIN_DECLS

/* The caller's descriptor that a download writes to. */
typedef struct {
	gint fd;
	LgdJob *job; /* may be NULL */
	gint cancel_fd;
	off_t pos;  /* the sink's offset, for holes */
	off_t size; /* the sink's size, for holes */
	guint64 done;
	GError *error;
} LgdSink;

/* The caller's descriptor that an upload reads from. */
typedef struct {
	gint fd;
	LgdJob *job; /* may be NULL */
	gint cancel_fd;
	off_t pos;	   /* sparse: where the next section starts */
	guint64 remaining; /* bytes still to send */
	guint64 count;
	gboolean exact;		/* @count bytes must come */
	gboolean fit_only;	/* @count is the room left: more is too much */
	gboolean first_as_data; /* sparse: see lgd_volume_stream_cut */
	GError *error;
} LgdSource;

/* lgd-volume-stream.c */
void lgd_volume_sink_set_error(gint errnum, guint64 done, GError **error);
void lgd_volume_source_set_error(gint errnum, GError **error);
gboolean lgd_sink_make_hole(LgdSink *sink, off_t length);
gboolean lgd_source_has_more(LgdSource *source);
void lgd_source_ended_early(LgdSource *source, GError **error);

/* lgd-volume-local.c */
gint lgd_volume_local_open(virStorageVolPtr vol,
			   const gchar *uri,
			   const gchar *path,
			   guint64 stored,
			   gboolean upload,
			   gchar **why_not);

gboolean lgd_volume_local_download(gint vol_fd,
				   LgdSink *sink,
				   gint sink_mode,
				   gint sink_flags,
				   guint64 offset,
				   guint64 count,
				   gboolean sparse,
				   const gchar *path,
				   GError **error);

gboolean lgd_volume_local_upload(gint vol_fd,
				 LgdSource *source,
				 gint source_mode,
				 guint64 offset,
				 gboolean sparse,
				 const gchar *path,
				 GError **error);

/* Pure logic, here so that unit tests reach it. */
gboolean lgd_volume_local_uri_is_local(const gchar *uri);

gboolean
lgd_volume_local_is_volume(const gchar *xml, const gchar *path, const struct stat *st, gchar **why);

G_END_DECLS
