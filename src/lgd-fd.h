/* File descriptors passed by clients for bulk transfers. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef enum {
	LGD_FD_READ,  /* the service reads from it: a source */
	LGD_FD_WRITE, /* the service writes to it: a sink */
} LgdFdDirection;

gint lgd_fd_take(GUnixFDList *fd_list, GVariant *handle, LgdFdDirection direction, GError **error);

G_END_DECLS
