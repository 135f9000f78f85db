/*
 * Reading and writing a client's fd as if it blocked. The fd may be
 * non-blocking: that flag belongs to the open file, which the client
 * shares, so it is waited on with poll() rather than changed.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

void lgd_fd_io_set_idle_timeout(guint seconds);

guint lgd_fd_io_get_idle_timeout(void);

gssize lgd_fd_io_read(gint fd, gchar *buf, gsize len, gboolean client);

gboolean lgd_fd_io_write_all(gint fd, const gchar *buf, gsize len, gsize *written, gboolean client);

G_END_DECLS
