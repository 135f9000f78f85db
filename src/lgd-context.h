/* What every object of the service shares. */
#pragma once

#include "lgd-auth.h"
#include "lgd-cache.h"
#include "lgd-job.h"
#include "lgd-session.h"

G_BEGIN_DECLS

typedef struct {
	LgdAuth *auth;
	LgdSessionConfig session;
	gchar *run_dir;	       /* for backup sockets and scratch files */
	guint64 max_read_size; /* ReadFile and WriteFile, bytes */
	LgdCache *cache;
	LgdJobs *jobs;		       /* long operations, published as Job objects */
	gboolean batch_inspection;     /* share one appliance between domains */
	gboolean batch_results_shared; /* results of a shared appliance may be cached */
} LgdContext;

G_END_DECLS
