/*
 * Reading and writing a client's fd as if it blocked, with a bound on
 * every wait: the transfer idle timeout. The fd may be blocking or not:
 * that flag belongs to the open file, which the client shares, so it is
 * left alone; every wait on a client's fd goes through poll() instead
 * (see lgd-fd-io.c).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

void lgd_fd_io_set_idle_timeout(guint seconds);

guint lgd_fd_io_get_idle_timeout(void);

gssize lgd_fd_io_read(gint fd, gchar *buf, gsize len, gboolean client);

gboolean lgd_fd_io_write_all(gint fd, const gchar *buf, gsize len, gsize *written, gboolean client);

G_END_DECLS
