/*
 * Reading and writing a client's fd as if it blocked. The fd may be
 * non-blocking: that flag belongs to the open file, which the client
 * shares, so it is waited on with poll() rather than changed.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

gssize lgd_fd_io_read(gint fd, gchar *buf, gsize len);

gboolean lgd_fd_io_write_all(gint fd, const gchar *buf, gsize len, gsize *written);

G_END_DECLS
