#include "config.h"

#include <libvirt/libvirt.h>
#include <string.h>

#include "lgd-appliance.h"
#include "lgd-error.h"
#include "lgd-libvirt.h"

/* libguestfs has no launch timeout of its own. A watchdog thread waits for
 * the launch to finish; past the deadline it destroys the appliance's
 * libvirt domain (found by the socket directory of this handle in its
 * definition), which makes guestfs_launch() fail. */
typedef struct {
	GMutex lock;
	GCond done_cond;
	gboolean done;
	gboolean fired;
	gint64 deadline;
	gboolean aborted;   /* by lgd_appliance_abort_launches() */
	gboolean cancelled; /* by its job's Cancel */
	gchar *uri;
	gchar *sockdir;
} LgdWatchdog;

/* The launches in progress, for lgd_appliance_abort_launches(). */
static GMutex lgd_launches_lock;
static GSList *lgd_launches;
static gboolean lgd_launches_aborted;

/* @why: NULL for the launch timeout, else why the launch is ended. */
static void
lgd_kill_appliance(const gchar *uri, const gchar *sockdir, const gchar *why)
{
	g_autoptr(virConnect) conn = lgd_libvirt_connect(uri, NULL);
	virDomainPtr *doms = NULL;
	int n;

	if (conn == NULL)
		return;
	n = virConnectListAllDomains(conn, &doms, VIR_CONNECT_LIST_DOMAINS_ACTIVE);
	for (int i = 0; i < n; i++) {
		g_autofree gchar *xml = NULL;

		if (g_str_has_prefix(virDomainGetName(doms[i]), "guestfs-"))
			xml = virDomainGetXMLDesc(doms[i], 0);
		if (xml != NULL && strstr(xml, sockdir) != NULL) {
			if (why != NULL)
				g_info("%s: destroying appliance %s, still launching", why,
				       virDomainGetName(doms[i]));
			else
				g_warning("appliance %s did not launch in time; destroying it",
					  virDomainGetName(doms[i]));
			virDomainDestroy(doms[i]);
		}
		virDomainFree(doms[i]);
	}
	free(doms);
}

static gpointer
lgd_watchdog_thread(gpointer user_data)
{
	LgdWatchdog *dog = user_data;
	gboolean expired = FALSE;

	g_mutex_lock(&dog->lock);
	while (!dog->done && !expired)
		expired = !g_cond_wait_until(&dog->done_cond, &dog->lock, dog->deadline);
	dog->fired = !dog->done;
	g_mutex_unlock(&dog->lock);
	if (dog->fired)
		lgd_kill_appliance(dog->uri, dog->sockdir,
				   dog->aborted	    ? "the service is stopping"
				   : dog->cancelled ? "the launch was cancelled"
						    : NULL);
	return NULL;
}

/* The launch's job was cancelled (any thread): the watchdog fires now. */
static void
lgd_watchdog_cancelled(GCancellable *cancellable, gpointer user_data)
{
	LgdWatchdog *dog = user_data;

	g_mutex_lock(&dog->lock);
	dog->cancelled = TRUE;
	dog->deadline = g_get_monotonic_time();
	g_cond_signal(&dog->done_cond);
	g_mutex_unlock(&dog->lock);
}

/* A handle set up as every appliance of the service is: libvirt backend
 * on @uri, errors as GErrors, the daemon's memory and TCG settings. */
guestfs_h *
lgd_appliance_create(const LgdSessionConfig *config, const gchar *uri, GError **error)
{
	guestfs_h *g = guestfs_create_flags(GUESTFS_CREATE_NO_ENVIRONMENT);
	g_autofree gchar *backend = NULL;

	if (g == NULL) {
		g_set_error_literal(error, LGD_ERROR, LGD_ERROR_APPLIANCE_FAILED,
				    "Cannot create a libguestfs handle");
		return NULL;
	}
	/* LIBGUESTFS_DEBUG and friends still help a developer */
	guestfs_parse_environment(g);
	/* errors come back as GErrors, not on the daemon's stderr */
	guestfs_set_error_handler(g, NULL, NULL);
	/* the appliance is a libvirt domain on the object's own connection,
	 * so libvirt's lock manager, sVirt and secrets apply to it */
	backend = g_strdup_printf("libvirt:%s", uri);
	guestfs_set_backend(g, backend);
	if (config->force_tcg) {
		const gchar *settings[] = {"force_tcg", NULL};
		guestfs_set_backend_settings(g, (gchar *const *)settings);
	}
	if (config->memsize > 0)
		guestfs_set_memsize(g, (int)config->memsize);
	/* the appliance built on the uncompressed kernel (lgd-appliance-kernel.c) */
	if (config->appliance_cachedir != NULL)
		guestfs_set_cachedir(g, config->appliance_cachedir);
	return g;
}

/* guestfs_launch() under a watchdog registered for
 * lgd_appliance_abort_launches(); no launch starts once that has run.
 * @cancellable (may be NULL) fires the watchdog too. */
static int
lgd_appliance_launch_watched(guestfs_h *g,
			     LgdWatchdog *dog,
			     GCancellable *cancellable,
			     gboolean *aborted)
{
	GThread *watchdog;
	gulong handler = 0;
	int rc;

	g_mutex_lock(&lgd_launches_lock);
	*aborted = lgd_launches_aborted;
	if (!*aborted)
		lgd_launches = g_slist_prepend(lgd_launches, dog);
	g_mutex_unlock(&lgd_launches_lock);
	if (*aborted)
		return -1;
	watchdog = g_thread_new("lgd-watchdog", lgd_watchdog_thread, dog);
	if (cancellable != NULL)
		handler = g_cancellable_connect(cancellable, G_CALLBACK(lgd_watchdog_cancelled),
						dog, NULL);

	rc = guestfs_launch(g);

	/* waits for a callback running in another thread */
	g_cancellable_disconnect(cancellable, handler);
	g_mutex_lock(&dog->lock);
	dog->done = TRUE;
	g_cond_signal(&dog->done_cond);
	g_mutex_unlock(&dog->lock);
	g_thread_join(watchdog);
	g_mutex_lock(&lgd_launches_lock);
	lgd_launches = g_slist_remove(lgd_launches, dog);
	g_mutex_unlock(&lgd_launches_lock);
	return rc;
}

/* guestfs_launch() bounded by the launch timeout, and ended early when
 * @cancellable (may be NULL) is cancelled: the appliance is destroyed as
 * on a timeout. */
gboolean
lgd_appliance_launch(guestfs_h *g,
		     const LgdSessionConfig *config,
		     const gchar *uri,
		     GCancellable *cancellable,
		     GError **error)
{
	LgdWatchdog dog = {0};
	gboolean aborted;
	int rc;

	if (g_cancellable_is_cancelled(cancellable)) {
		g_set_error_literal(error, LGD_ERROR, LGD_ERROR_CANCELLED,
				    "The appliance's launch was cancelled");
		return FALSE;
	}
	g_mutex_init(&dog.lock);
	g_cond_init(&dog.done_cond);
	dog.deadline = g_get_monotonic_time() + (gint64)config->launch_timeout * G_USEC_PER_SEC;
	dog.uri = (gchar *)uri;
	dog.sockdir = guestfs_get_sockdir(g);
	rc = lgd_appliance_launch_watched(g, &dog, cancellable, &aborted);
	g_mutex_clear(&dog.lock);
	g_cond_clear(&dog.done_cond);
	free(dog.sockdir);

	if (aborted) {
		g_set_error_literal(error, LGD_ERROR, LGD_ERROR_CANCELLED,
				    "The service is stopping; no appliance is launched");
		return FALSE;
	}
	if (dog.fired && dog.aborted) {
		g_set_error_literal(
		    error, LGD_ERROR, LGD_ERROR_CANCELLED,
		    "The service is stopping; the appliance's launch was cancelled");
		return FALSE;
	}
	if (dog.fired && dog.cancelled) {
		g_set_error_literal(error, LGD_ERROR, LGD_ERROR_CANCELLED,
				    "The appliance's launch was cancelled");
		return FALSE;
	}
	if (dog.fired) {
		g_set_error(error, LGD_ERROR, LGD_ERROR_APPLIANCE_FAILED,
			    "The appliance did not launch within %u s (launch timeout): %s",
			    config->launch_timeout, guestfs_last_error(g));
		return FALSE;
	}
	if (rc < 0) {
		g_set_error(error, LGD_ERROR, LGD_ERROR_APPLIANCE_FAILED,
			    "The appliance failed to launch: %s", guestfs_last_error(g));
		return FALSE;
	}
	return TRUE;
}

/* The service is stopping: launches in progress end now (their watchdogs
 * destroy the appliances), and none starts any more, so that the service
 * exits within its grace period rather than after the launch timeout. */
void
lgd_appliance_abort_launches(void)
{
	g_mutex_lock(&lgd_launches_lock);
	lgd_launches_aborted = TRUE;
	for (GSList *l = lgd_launches; l != NULL; l = l->next) {
		LgdWatchdog *dog = l->data;

		g_mutex_lock(&dog->lock);
		dog->aborted = TRUE;
		dog->deadline = g_get_monotonic_time();
		g_cond_signal(&dog->done_cond);
		g_mutex_unlock(&dog->lock);
	}
	g_mutex_unlock(&lgd_launches_lock);
}
