/*
 * A volume's raw bytes through libvirt's storage volume streams: Download
 * and Upload, to and from a file descriptor the caller passes.
 */
#pragma once

#include "lgd-guest.h"

G_BEGIN_DECLS

void lgd_volume_stream_attach(LgdGuest *guest, LgdDBusVolume *iface);

/* Pure logic, here so that unit tests reach it. */
gboolean lgd_volume_stream_check_range(
    guint64 size, guint64 offset, guint64 length, guint64 *count, GError **error);

G_END_DECLS
