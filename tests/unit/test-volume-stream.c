#include "config.h"

#include <gio/gio.h>
#include <string.h>

#include "lgd-error.h"
#include "lgd-volume-local.h"
#include "lgd-volume-stream.h"
#include "lgd-volume-usage.h"

#define GIB (G_GUINT64_CONSTANT(1) << 30)

static void
test_range_valid(void)
{
	const struct {
		guint64 size, offset, length, count;
	} cases[] = {
	    {GIB, 0, 0, GIB},			  /* all of it */
	    {GIB, 0, GIB, GIB},			  /* all of it, said explicitly */
	    {GIB, 4096, 0, GIB - 4096},		  /* from an offset to the end */
	    {GIB, 4096, 512, 512},		  /* a range inside */
	    {GIB, GIB - 1, 1, 1},		  /* the last byte */
	    {GIB, GIB, 0, 0},			  /* nothing, at the very end */
	    {0, 0, 0, 0},			  /* an empty volume */
	    {G_MAXUINT64, 1, 0, G_MAXUINT64 - 1}, /* no overflow at the top */
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		guint64 count = 12345;

		g_assert_true(lgd_volume_stream_check_range(cases[i].size, cases[i].offset,
							    cases[i].length, &count, &error));
		g_assert_no_error(error);
		g_assert_cmpuint(count, ==, cases[i].count);
	}
}

static void
test_range_invalid(void)
{
	const struct {
		guint64 size, offset, length;
		const gchar *message_part;
	} cases[] = {
	    {GIB, GIB + 1, 0, "past the end"},		   /* offset beyond */
	    {GIB, G_MAXUINT64, 0, "past the end"},	   /* offset far beyond */
	    {GIB, 0, GIB + 1, "goes past the end"},	   /* length beyond */
	    {GIB, 1, GIB, "goes past the end"},		   /* offset + length beyond */
	    {GIB, GIB, 1, "goes past the end"},		   /* a byte after the end */
	    {GIB, 4096, G_MAXUINT64, "goes past the end"}, /* offset + length overflows */
	    {GIB, G_MAXUINT64, G_MAXUINT64, "past the end"},
	    {0, 0, 1, "goes past the end"},
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autoptr(GError) error = NULL;
		guint64 count = 12345;

		g_assert_false(lgd_volume_stream_check_range(cases[i].size, cases[i].offset,
							     cases[i].length, &count, &error));
		g_assert_error(error, LGD_ERROR, LGD_ERROR_INVALID_ARGUMENT);
		g_assert_nonnull(strstr(error->message, cases[i].message_part));
		g_assert_cmpuint(count, ==, 12345); /* untouched */
	}
}

static const gchar *live_xml =
    "<domain type='qemu' id='3'>\n"
    "  <name>web</name>\n"
    "  <devices>\n"
    "    <emulator>/usr/bin/qemu-system-x86_64</emulator>\n"
    "    <disk type='file' device='disk'>\n"
    "      <driver name='qemu' type='qcow2'/>\n"
    "      <source file='/var/lib/libvirt/images/web.qcow2' index='2'/>\n"
    "      <backingStore type='file' index='3'>\n"
    "        <format type='qcow2'/>\n"
    "        <source file='/var/lib/libvirt/images/base.qcow2'/>\n"
    "        <backingStore type='block' index='4'>\n"
    "          <format type='raw'/>\n"
    "          <source dev='/dev/vg/golden'/>\n"
    "          <backingStore/>\n"
    "        </backingStore>\n"
    "      </backingStore>\n"
    "      <mirror type='file' job='copy' ready='yes'>\n"
    "        <format type='qcow2'/>\n"
    "        <source file='/srv/copy.qcow2' index='5'/>\n"
    "      </mirror>\n"
    "      <target dev='vda' bus='virtio'/>\n"
    "    </disk>\n"
    "    <disk type='volume' device='disk'>\n"
    "      <source pool='default' volume='data.img'/>\n"
    "      <backingStore/>\n"
    "      <target dev='vdb'/>\n"
    "    </disk>\n"
    "    <disk type='network' device='disk'>\n"
    "      <source protocol='rbd' name='rbdpool/image1'>\n"
    "        <host name='ceph.example' port='6789'/>\n"
    "      </source>\n"
    "      <target dev='vdc'/>\n"
    "    </disk>\n"
    "    <disk type='file' device='disk'>\n"
    "      <driver name='qemu' type='qcow2'/>\n"
    "      <source file='/srv/with-data-file.qcow2'>\n"
    "        <dataStore type='file'>\n"
    "          <format type='raw'/>\n"
    "          <source file='/srv/data-file.raw'/>\n"
    "        </dataStore>\n"
    "      </source>\n"
    "      <target dev='vdd'/>\n"
    "    </disk>\n"
    "    <disk type='file' device='cdrom'>\n"
    "      <target dev='sda' bus='sata'/>\n"
    "      <readonly/>\n"
    "    </disk>\n"
    "    <disk type='file' device='disk'>\n"
    "      <source file='/srv/old-mirror-src.img'/>\n"
    "      <mirror file='/srv/old-mirror-dst.img' format='raw' job='copy'/>\n"
    "      <target dev='vde'/>\n"
    "    </disk>\n"
    "    <interface type='network'><source network='default'/></interface>\n"
    "  </devices>\n"
    "</domain>\n";

static const LgdDisk *
find_ref(GPtrArray *refs, const gchar *path, const gchar *volume, const gchar *network)
{
	for (guint i = 0; i < refs->len; i++) {
		const LgdDisk *ref = g_ptr_array_index(refs, i);

		if ((path != NULL && g_strcmp0(ref->path, path) == 0) ||
		    (volume != NULL && g_strcmp0(ref->volume, volume) == 0) ||
		    (network != NULL && g_strcmp0(ref->name, network) == 0))
			return ref;
	}
	return NULL;
}

/* g_error() does not return, so the compiler knows the result is set. */
static const LgdDisk *
must_find(GPtrArray *refs, const gchar *path, const gchar *volume, const gchar *network)
{
	const LgdDisk *ref = find_ref(refs, path, volume, network);

	if (ref == NULL)
		g_error("no reference to %s", path != NULL     ? path
					      : volume != NULL ? volume
							       : network);
	return ref;
}

static void
test_refs_parse(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) refs = lgd_volume_refs_parse(live_xml, &error);
	const LgdDisk *ref;

	g_assert_no_error(error);
	g_assert_nonnull(refs);
	/* vda: source, 2 backing images, mirror; vdb; vdc; vdd and its data
	 * file; vde and its old-style mirror; the empty cdrom has none */
	g_assert_cmpuint(refs->len, ==, 10);

	ref = must_find(refs, "/var/lib/libvirt/images/web.qcow2", NULL, NULL);
	g_assert_cmpstr(ref->target, ==, "vda");
	g_assert_cmpuint(ref->depth, ==, 0);

	ref = must_find(refs, "/var/lib/libvirt/images/base.qcow2", NULL, NULL);
	g_assert_cmpstr(ref->target, ==, "vda");
	g_assert_cmpuint(ref->depth, ==, 1);

	ref = must_find(refs, "/dev/vg/golden", NULL, NULL);
	g_assert_cmpstr(ref->target, ==, "vda");
	g_assert_cmpuint(ref->depth, ==, 2);

	ref = must_find(refs, "/srv/copy.qcow2", NULL, NULL);
	g_assert_cmpstr(ref->target, ==, "vda");

	ref = must_find(refs, NULL, "data.img", NULL);
	g_assert_cmpstr(ref->pool, ==, "default");
	g_assert_cmpstr(ref->target, ==, "vdb");
	g_assert_null(ref->path);

	ref = must_find(refs, NULL, NULL, "rbdpool/image1");
	g_assert_cmpstr(ref->target, ==, "vdc");

	ref = must_find(refs, "/srv/data-file.raw", NULL, NULL);
	g_assert_cmpstr(ref->target, ==, "vdd");

	must_find(refs, "/srv/with-data-file.qcow2", NULL, NULL);
	must_find(refs, "/srv/old-mirror-src.img", NULL, NULL);
	ref = must_find(refs, "/srv/old-mirror-dst.img", NULL, NULL);
	g_assert_cmpstr(ref->target, ==, "vde");
}

static void
test_refs_parse_bad(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GPtrArray) refs = lgd_volume_refs_parse("<domain><devices>", &error);

	g_assert_null(refs);
	g_assert_error(error, LGD_ERROR, LGD_ERROR_FAILED);
	g_clear_error(&error);

	refs = lgd_volume_refs_parse("<pool/>", &error);
	g_assert_null(refs);
	g_assert_error(error, LGD_ERROR, LGD_ERROR_FAILED);
	g_clear_error(&error);

	/* a domain without devices uses nothing */
	refs = lgd_volume_refs_parse("<domain><name>x</name></domain>", &error);
	g_assert_no_error(error);
	g_assert_cmpuint(refs->len, ==, 0);
}

static gboolean
xml_uses(const gchar *path, const gchar *pool, const gchar *name)
{
	g_autoptr(GPtrArray) refs = lgd_volume_refs_parse(live_xml, NULL);

	for (guint i = 0; i < refs->len; i++) {
		if (lgd_volume_ref_matches(g_ptr_array_index(refs, i), path, pool, name))
			return TRUE;
	}
	return FALSE;
}

static void
test_matching(void)
{
	/* the disk itself, in spellings of the same path */
	g_assert_true(xml_uses("/var/lib/libvirt/images/web.qcow2", "default", "web.qcow2"));
	g_assert_true(xml_uses("/var/lib/libvirt//images/./web.qcow2", "x", "y"));
	g_assert_true(xml_uses("/var/lib/libvirt/images/sub/../web.qcow2", "x", "y"));
	/* anywhere in the backing chain, mirrors and data files */
	g_assert_true(xml_uses("/var/lib/libvirt/images/base.qcow2", "default", "base.qcow2"));
	g_assert_true(xml_uses("/dev/vg/golden", "vg", "golden"));
	g_assert_true(xml_uses("/srv/copy.qcow2", "srv", "copy.qcow2"));
	g_assert_true(xml_uses("/srv/data-file.raw", "srv", "data-file.raw"));
	g_assert_true(xml_uses("/srv/old-mirror-dst.img", "srv", "old-mirror-dst.img"));
	/* a volume disk, by pool and name, whatever the path */
	g_assert_true(xml_uses("/var/lib/libvirt/images/data.img", "default", "data.img"));
	g_assert_true(xml_uses("/elsewhere/data.img", "default", "data.img"));
	/* a network disk: rbd volumes have pool/image as path */
	g_assert_true(xml_uses("rbdpool/image1", "rbdpool", "image1"));

	/* not used: another file, a volume of the same name in another pool,
	 * a path that only shares a prefix */
	g_assert_false(xml_uses("/var/lib/libvirt/images/other.qcow2", "default", "other.qcow2"));
	g_assert_false(xml_uses("/var/lib/libvirt/images/data.img", "other", "data.img"));
	g_assert_false(xml_uses("/var/lib/libvirt/images/web.qcow", "default", "web.qcow"));
	g_assert_false(xml_uses("/var/lib/libvirt/images/web.qcow2.bak", "default", "x"));
	g_assert_false(xml_uses("rbdpool/image10", "rbdpool", "image10"));
	g_assert_false(xml_uses("var/lib/libvirt/images/web.qcow2", "default", "x"));
}

static void
test_local_uri(void)
{
	static const gchar *const local[] = {"qemu:///system",
					     "qemu:///session",
					     "qemu+unix:///system",
					     "QEMU+UNIX:///system",
					     "qemu:///system?socket=/run/libvirt/libvirt-sock",
					     NULL};
	static const gchar *const remote[] = {"qemu+tcp://127.0.0.1:16509/system",
					      "qemu+ssh://root@host/system",
					      "qemu://host/system",
					      "qemu+tls://localhost/system",
					      "qemu+unix://host/system",
					      "not a uri",
					      "",
					      NULL};

	for (guint i = 0; local[i] != NULL; i++)
		g_assert_true(lgd_volume_local_uri_is_local(local[i]));
	for (guint i = 0; remote[i] != NULL; i++)
		g_assert_false(lgd_volume_local_uri_is_local(remote[i]));
	g_assert_false(lgd_volume_local_uri_is_local(NULL));
}

#define VOL_XML(type, path, format, ctime)                                                         \
	"<volume type='" type "'><name>a.raw</name><target><path>" path "</path>"                  \
	"<format type='" format "'/><timestamps><atime>1.5</atime><mtime>1796585535.4</mtime>"     \
	"<ctime>" ctime "</ctime></timestamps></target></volume>"

static void
test_local_is_volume(void)
{
	struct stat st = {0};
	static const struct {
		const gchar *xml;
		const gchar *why; /* NULL: it is the volume */
	} cases[] = {
	    {VOL_XML("file", "/p/a.raw", "raw", "1796585535.424456134"), NULL},
	    {VOL_XML("block", "/p/a.raw", "qcow2", "1796585535.424456134"), NULL},
	    {VOL_XML("file", "/p/a.raw", "raw", "1796585535.424456135"), "change time"},
	    {VOL_XML("file", "/p/a.raw", "raw", "1796585536.424456134"), "change time"},
	    {VOL_XML("file", "/p/a.raw", "raw", "1796585535"), "change time"},
	    {VOL_XML("file", "/p/a.raw", "raw", "1796585535.4244561340"), "no change time"},
	    {VOL_XML("file", "/p/a.raw", "raw", "-1.5"), "no change time"},
	    {VOL_XML("file", "/p/a.raw", "raw", ""), "no change time"},
	    {VOL_XML("file", "/p/b.raw", "raw", "1796585535.424456134"), "another path"},
	    {VOL_XML("dir", "/p/a.raw", "raw", "1796585535.424456134"), "type 'dir'"},
	    {VOL_XML("network", "/p/a.raw", "raw", "1796585535.424456134"), "type 'network'"},
	    {VOL_XML("file", "/p/a.raw", "ploop", "1796585535.424456134"), "ploop"},
	    {"<volume type='file'><name>a</name></volume>", "no target"},
	    {"<volume type='file'><target><path>/p/a.raw</path></target></volume>",
	     "no change time"},
	};

	st.st_ctim.tv_sec = 1796585535;
	st.st_ctim.tv_nsec = 424456134;
	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		g_autofree gchar *why = NULL;
		gboolean ok = lgd_volume_local_is_volume(cases[i].xml, "/p/a.raw", &st, &why);

		g_test_message("case %u: %s", i, why != NULL ? why : "ok");
		if (cases[i].why == NULL) {
			g_assert_true(ok);
			g_assert_null(why);
		} else {
			g_assert_false(ok);
			g_assert_nonnull(strstr(why, cases[i].why));
		}
	}
	/* a whole-second change time */
	st.st_ctim.tv_nsec = 0;
	{
		g_autofree gchar *why = NULL;

		g_assert_true(lgd_volume_local_is_volume(
		    VOL_XML("file", "/p/a.raw", "raw", "1796585535"), "/p/a.raw", &st, &why));
	}
}

int
main(int argc, char *argv[])
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/volume-stream/range/valid", test_range_valid);
	g_test_add_func("/volume-stream/range/invalid", test_range_invalid);
	g_test_add_func("/volume-stream/usage/parse", test_refs_parse);
	g_test_add_func("/volume-stream/usage/parse-bad", test_refs_parse_bad);
	g_test_add_func("/volume-stream/usage/matching", test_matching);
	g_test_add_func("/volume-local/uri", test_local_uri);
	g_test_add_func("/volume-local/is-volume", test_local_is_volume);
	return g_test_run();
}
