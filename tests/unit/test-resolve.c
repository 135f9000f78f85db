#include "config.h"

#include <errno.h>
#include <gio/gio.h>
#include <string.h>
#include <sys/stat.h>

#include "lgd-error.h"
#include "lgd-resolve.h"

/* A guest's tree in memory: path -> "d" (directory), "f" (file) or
 * "l:TARGET" (symbolic link). */
static const gchar *const lgd_test_tree[] = {
    "/",
    "d",
    "/etc",
    "d",
    "/etc/passwd",
    "f",
    "/etc/os-release",
    "l:../usr/lib/os-release",
    "/usr",
    "d",
    "/usr/lib",
    "d",
    "/usr/lib/os-release",
    "f",
    "/home",
    "d",
    "/home/u",
    "d",
    "/home/u/up",
    "l:../..",
    "/home/u/etc",
    "l:/etc",
    "/home/u/self",
    "l:self",
    "/home/u/dangling",
    "l:/nowhere/file",
    "/home/u/note",
    "f",
    "/home/u/rel",
    "l:note",
    "/home/u/empty",
    "l:",
    NULL,
};

static const gchar *
lgd_test_lookup(const gchar *path)
{
	for (guint i = 0; lgd_test_tree[i] != NULL; i += 2) {
		if (g_str_equal(lgd_test_tree[i], path))
			return lgd_test_tree[i + 1];
	}
	return NULL;
}

static guint32
lgd_test_lstat(gpointer fs, const gchar *path, int *errnum, gchar **message)
{
	const gchar *kind = lgd_test_lookup(path);
	guint *calls = fs;

	(*calls)++;
	if (kind == NULL) {
		*errnum = ENOENT;
		return 0;
	}
	switch (kind[0]) {
	case 'd':
		return S_IFDIR | 0755;
	case 'l':
		return S_IFLNK | 0777;
	default:
		return S_IFREG | 0644;
	}
}

static gchar *
lgd_test_readlink(gpointer fs, const gchar *path, gchar **message)
{
	const gchar *kind = lgd_test_lookup(path);

	return kind != NULL && kind[0] == 'l' ? g_strdup(kind + 2) : NULL;
}

static const LgdResolveOps lgd_test_ops = {lgd_test_lstat, lgd_test_readlink};

/* The cache the cases share in their second and third passes (see
 * test_cache): a cached walk must answer exactly as an uncached one. */
static LgdResolveCache *lgd_test_cache;

static gchar *
resolve(const gchar *path, LgdResolveFlags flags, GError **error)
{
	guint calls = 0;

	return lgd_resolve_with_cache(&lgd_test_ops, &calls, lgd_test_cache, path, flags, NULL,
				      error);
}

static void
test_follow(void)
{
	const struct {
		const gchar *path;
		LgdResolveFlags flags;
		const gchar *expected;
	} cases[] = {
	    {"/", LGD_RESOLVE_FOLLOW_FINAL, "/"},
	    {"/etc/passwd", LGD_RESOLVE_FOLLOW_FINAL, "/etc/passwd"},
	    /* Debian's os-release: a relative link into /usr/lib */
	    {"/etc/os-release", LGD_RESOLVE_FOLLOW_FINAL, "/usr/lib/os-release"},
	    /* a final link not followed is the link itself */
	    {"/etc/os-release", 0, "/etc/os-release"},
	    /* parents are always followed; absolute targets mean the guest's / */
	    {"/home/u/etc/passwd", 0, "/etc/passwd"},
	    {"/home/u/up/etc/passwd", 0, "/etc/passwd"},
	    {"/home/u/up", LGD_RESOLVE_FOLLOW_FINAL, "/"},
	    {"/home/u/rel", LGD_RESOLVE_FOLLOW_FINAL, "/home/u/note"},
	    /* ".." applies to where the links led, as in the kernel */
	    {"/home/u/etc/../usr", 0, "/usr"},
	    {"/home/./u//note", 0, "/home/u/note"},
	    {"/../../etc", 0, "/etc"},
	    /* missing last components, for calls that create them */
	    {"/home/u/new", LGD_RESOLVE_MISSING_FINAL, "/home/u/new"},
	    {"/home/u/etc/new", LGD_RESOLVE_MISSING_FINAL, "/etc/new"},
	    {"/home/u/dangling", LGD_RESOLVE_MISSING_TAIL | LGD_RESOLVE_FOLLOW_FINAL,
	     "/nowhere/file"},
	    {"/home/u/etc/a/b/c", LGD_RESOLVE_MISSING_TAIL, "/etc/a/b/c"},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		g_autofree gchar *got = resolve(cases[i].path, cases[i].flags, &error);

		g_assert_no_error(error);
		g_assert_cmpstr(got, ==, cases[i].expected);
	}
}

static void
test_errors(void)
{
	const struct {
		const gchar *path;
		LgdResolveFlags flags;
		gint code;
		const gchar *message_part;
	} cases[] = {
	    {"relative/path", 0, LGD_ERROR_INVALID_ARGUMENT, "absolute"},
	    {"/home/u/self", LGD_RESOLVE_FOLLOW_FINAL, -1, "symbolic links"},
	    {"/home/u/self/x", 0, -1, "symbolic links"},
	    {"/home/u/dangling", LGD_RESOLVE_FOLLOW_FINAL, LGD_ERROR_NOT_FOUND, "/nowhere"},
	    {"/home/u/missing/x", LGD_RESOLVE_MISSING_FINAL, LGD_ERROR_NOT_FOUND, NULL},
	    {"/etc/passwd/x", 0, -1, "Not a directory"},
	    {"/home/u/empty", LGD_RESOLVE_FOLLOW_FINAL, LGD_ERROR_NOT_FOUND, NULL},
	    {"/etc/os-release", LGD_RESOLVE_REFUSE_FINAL_LINK, LGD_ERROR_INVALID_ARGUMENT,
	     "no-follow"},
	    {"/home/u/new/../x", LGD_RESOLVE_MISSING_TAIL, LGD_ERROR_NOT_FOUND, NULL},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		g_autofree gchar *got = resolve(cases[i].path, cases[i].flags, &error);

		g_assert_null(got);
		g_assert_nonnull(error);
		g_assert_true(error->domain == LGD_ERROR);
		if (cases[i].code >= 0)
			g_assert_cmpint(error->code, ==, cases[i].code);
		if (cases[i].message_part != NULL)
			g_assert_nonnull(strstr(error->message, cases[i].message_part));
	}
}

static void
test_reached(void)
{
	/* a failed walk tells where links took it, for authorization */
	g_autoptr(GError) error = NULL;
	g_autofree gchar *reached = NULL;
	guint calls = 0;
	g_autofree gchar *got =
	    lgd_resolve_with(&lgd_test_ops, &calls, "/home/u/etc/nothing/x", 0, &reached, &error);

	g_assert_null(got);
	g_assert_error(error, LGD_ERROR, LGD_ERROR_NOT_FOUND);
	g_assert_cmpstr(reached, ==, "/etc");
	g_clear_error(&error);
	g_clear_pointer(&reached, g_free);
	/* no link followed: nothing to tell */
	g_assert_null(
	    lgd_resolve_with(&lgd_test_ops, &calls, "/home/nothing/x", 0, &reached, &error));
	g_assert_null(reached);
}

static void
test_cost(void)
{
	/* one lstat per component walked: no call per call of the caller's */
	g_autoptr(GError) error = NULL;
	guint calls = 0;
	g_autofree gchar *got =
	    lgd_resolve_with(&lgd_test_ops, &calls, "/usr/lib/os-release", 0, NULL, &error);

	g_assert_no_error(error);
	g_assert_cmpuint(calls, ==, 3);
}

static void
test_cache(void)
{
	g_autoptr(LgdResolveCache) cache = lgd_resolve_cache_new();
	g_autoptr(GError) error = NULL;
	g_autofree gchar *got = NULL;
	guint calls = 0;

	/* every case again, filling a cache, then answered from it */
	lgd_test_cache = cache;
	for (guint pass = 0; pass < 2; pass++) {
		test_follow();
		test_errors();
	}
	lgd_test_cache = NULL;
	g_assert_cmpuint(lgd_resolve_cache_size(cache), >, 0);

	/* warm: directories and links cost nothing, the final file one lstat */
	got = lgd_resolve_with_cache(&lgd_test_ops, &calls, cache, "/usr/lib/os-release", 0, NULL,
				     &error);
	g_assert_no_error(error);
	g_assert_cmpstr(got, ==, "/usr/lib/os-release");
	g_assert_cmpuint(calls, ==, 1);
	g_clear_pointer(&got, g_free);
	calls = 0;
	got = lgd_resolve_with_cache(&lgd_test_ops, &calls, cache, "/home/u/etc/os-release",
				     LGD_RESOLVE_FOLLOW_FINAL, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpstr(got, ==, "/usr/lib/os-release");
	g_assert_cmpuint(calls, ==, 1);
	g_clear_pointer(&got, g_free);

	/* files are never kept: they are the work, and may be what changes */
	calls = 0;
	got = lgd_resolve_with_cache(&lgd_test_ops, &calls, cache, "/etc/passwd", 0, NULL, &error);
	g_assert_no_error(error);
	g_assert_cmpuint(calls, ==, 1);
	g_clear_pointer(&got, g_free);

	/* cleared: the whole walk again */
	lgd_resolve_cache_clear(cache);
	g_assert_cmpuint(lgd_resolve_cache_size(cache), ==, 0);
	calls = 0;
	got = lgd_resolve_with_cache(&lgd_test_ops, &calls, cache, "/usr/lib/os-release", 0, NULL,
				     &error);
	g_assert_no_error(error);
	g_assert_cmpuint(calls, ==, 3);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/resolve/follow", test_follow);
	g_test_add_func("/resolve/errors", test_errors);
	g_test_add_func("/resolve/reached", test_reached);
	g_test_add_func("/resolve/cost", test_cost);
	g_test_add_func("/resolve/cache", test_cache);
	return g_test_run();
}
