/* The bulk transfers of org.libvirt.GuestFS.Files, through client fds. */
#pragma once

#include "lgd-files.h"

G_BEGIN_DECLS

GVariant *lgd_transfer_download(LgdSession *session, LgdCall *call, GError **error);

GVariant *lgd_transfer_upload(LgdSession *session, LgdCall *call, GError **error);

GVariant *lgd_transfer_tar_out(LgdSession *session, LgdCall *call, GError **error);

GVariant *lgd_transfer_tar_in(LgdSession *session, LgdCall *call, GError **error);

gboolean lgd_transfer_check_compress(GVariant *options, GError **error);

G_END_DECLS
