/* Manager.InspectDomains: many domains in as few appliances as allowed. */
#pragma once

#include "lgd-connection.h"
#include "lgd-context.h"

G_BEGIN_DECLS

void lgd_batch_inspect(LgdDBusManager *iface,
		       LgdContext *context,
		       GPtrArray *connections,
		       GDBusMethodInvocation *invocation,
		       const gchar *const *paths,
		       GVariant *options);

G_END_DECLS
