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

/* Waits until @fd is ready for @events (POLLIN, POLLOUT): FALSE with errno
 * ETIMEDOUT after the idle timeout for a @client fd, ECANCELED once
 * @cancel_fd (-1 for none) is readable, or poll()'s error. */
gboolean lgd_fd_io_wait(gint fd, gshort events, gboolean client, gint cancel_fd);

gssize lgd_fd_io_read(gint fd, gchar *buf, gsize len, gboolean client);

gboolean lgd_fd_io_write_all(gint fd, const gchar *buf, gsize len, gsize *written, gboolean client);

/* The same, ended (ECANCELED) when @cancel_fd becomes readable: a job's
 * lgd_job_get_cancel_fd(), -1 for none. */
gssize lgd_fd_io_read_cancellable(gint fd, gchar *buf, gsize len, gboolean client, gint cancel_fd);

gboolean lgd_fd_io_write_all_cancellable(
    gint fd, const gchar *buf, gsize len, gsize *written, gboolean client, gint cancel_fd);

G_END_DECLS
