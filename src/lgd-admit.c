#include "config.h"

#include "lgd-admit.h"
#include "lgd-error.h"

static GMutex lgd_admit_lock;
static GHashTable *lgd_admit_counts; /* caller -> calls in progress */
static guint lgd_admit_max = LGD_DEFAULT_CALLS_PER_CALLER;

/* Set once at start-up (--max-calls-per-caller), before any call. */
void
lgd_admit_set_max(guint n)
{
	lgd_admit_max = MAX(n, 1);
}

/* Counts one more call of @caller, or refuses it with Busy when it has
 * as many in progress as allowed. Any thread. */
gboolean
lgd_admit_take(const gchar *caller, GError **error)
{
	guint count;

	g_mutex_lock(&lgd_admit_lock);
	if (lgd_admit_counts == NULL)
		lgd_admit_counts = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	count = GPOINTER_TO_UINT(g_hash_table_lookup(lgd_admit_counts, caller));
	if (count >= lgd_admit_max) {
		g_mutex_unlock(&lgd_admit_lock);
		g_set_error(error, LGD_ERROR, LGD_ERROR_BUSY,
			    "This caller has %u calls in progress, as many as the service allows "
			    "one caller; call again once some have ended",
			    count);
		return FALSE;
	}
	g_hash_table_insert(lgd_admit_counts, g_strdup(caller), GUINT_TO_POINTER(count + 1));
	g_mutex_unlock(&lgd_admit_lock);
	return TRUE;
}

/* One call of @caller has ended. Any thread. */
void
lgd_admit_release(const gchar *caller)
{
	guint count;

	g_mutex_lock(&lgd_admit_lock);
	count = GPOINTER_TO_UINT(g_hash_table_lookup(lgd_admit_counts, caller));
	if (count <= 1)
		g_hash_table_remove(lgd_admit_counts, caller);
	else
		g_hash_table_insert(lgd_admit_counts, g_strdup(caller),
				    GUINT_TO_POINTER(count - 1));
	g_mutex_unlock(&lgd_admit_lock);
}
