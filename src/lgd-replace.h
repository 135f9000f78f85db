/*
 * Replacing a guest file whole or not at all: the new content goes to a
 * temporary file beside it, which takes the old file's attributes and is
 * renamed over it.
 */
#pragma once

#include "lgd-session.h"

G_BEGIN_DECLS

/* Called once the target is known good, before anything is changed. */
typedef gboolean (*LgdReplaceBegin)(LgdSession *session,
				    guestfs_h *g,
				    gpointer user_data,
				    GError **error);

typedef struct {
	LgdReplaceBegin begin;
	gpointer begin_data;
	gboolean create; /* a missing target is created, else NotFound */
	gint64 mode;	 /* -1: keep the old file's, or 0644 for a new one */
	gint64 uid;	 /* -1: keep the old file's, or 0 */
	gint64 gid;	 /* -1: keep the old file's, or 0 */
} LgdReplaceAttrs;

/* Writes the new content to @tmp_path in the guest. */
typedef gboolean (*LgdReplaceFill)(
    LgdSession *session, guestfs_h *g, const gchar *tmp_path, gpointer user_data, GError **error);

gboolean lgd_replace_file(LgdSession *session,
			  guestfs_h *g,
			  const gchar *path,
			  const LgdReplaceAttrs *attrs,
			  LgdReplaceFill fill,
			  gpointer user_data,
			  GError **error);

G_END_DECLS
