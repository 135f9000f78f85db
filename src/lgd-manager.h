/* /org/libvirt/GuestFS/Manager: the service's own object. */
#pragma once

#include "lgd-context.h"
#include "lgd-generated.h"

G_BEGIN_DECLS

LgdDBusObjectSkeleton *lgd_manager_new(GPtrArray *connections, LgdContext *context);

G_END_DECLS
