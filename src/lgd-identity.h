/*
 * What identifies the contents of a set of disk files without reading
 * them: path, device, inode, size and mtime of each file and of every
 * file in its qcow2 backing chain.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

gchar *lgd_identity_of_paths(GPtrArray *paths);

gchar *lgd_identity_qcow2_backing(const gchar *path);

G_END_DECLS
