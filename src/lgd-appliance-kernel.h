/* The appliance kernel under TCG: the host's kernel, uncompressed once,
 * so that qemu boots it through its PVH entry point instead of running
 * the kernel's own decompressor in emulation. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

gboolean lgd_appliance_kernel_extract(const gchar *bzimage, const gchar *output, GError **error);

gchar *lgd_appliance_kernel_prepare(GError **error);

G_END_DECLS
