/*
 * A volume's raw bytes: Download and Upload, to and from a file descriptor
 * the caller passes, through libvirt's storage volume streams, or by the
 * service's own copy of the volume's file where the connection is local
 * and the file can be opened safely (lgd-volume-local.h). The checks of
 * the call, its range and the volume's use come first, for both.
 */
#pragma once

#include "lgd-guest.h"

G_BEGIN_DECLS

gboolean lgd_volume_stream_handle_download(LgdDBusVolume *iface,
					   GDBusMethodInvocation *invocation,
					   GUnixFDList *fd_list,
					   GVariant *sink,
					   GVariant *options);

gboolean lgd_volume_stream_handle_upload(LgdDBusVolume *iface,
					 GDBusMethodInvocation *invocation,
					 GUnixFDList *fd_list,
					 GVariant *source,
					 GVariant *options);

/* Pure logic, here so that unit tests reach it. */
gboolean lgd_volume_stream_check_range(
    guint64 size, guint64 offset, guint64 length, guint64 *count, GError **error);

G_END_DECLS
