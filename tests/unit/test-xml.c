#include "config.h"

#include <gio/gio.h>

#include "lgd-xml.h"

static const gchar *domain_xml = "<domain type='kvm' id='7'>\n"
				 "  <name>web</name>\n"
				 "  <devices>\n"
				 "    <disk type='file' device='disk'>\n"
				 "      <driver name='qemu' type='qcow2'/>\n"
				 "      <source file='/var/lib/libvirt/images/web.qcow2'/>\n"
				 "      <target dev='vda' bus='virtio'/>\n"
				 "    </disk>\n"
				 "    <disk type='file' device='cdrom'>\n"
				 "      <driver name='qemu' type='raw'/>\n"
				 "      <target dev='sda' bus='sata'/>\n"
				 "      <readonly/>\n"
				 "    </disk>\n"
				 "    <disk type='volume' device='disk'>\n"
				 "      <source pool='default' volume='data.img'/>\n"
				 "      <target dev='vdb'/>\n"
				 "      <shareable/>\n"
				 "    </disk>\n"
				 "    <disk type='block'>\n"
				 "      <source dev='/dev/sdz'/>\n"
				 "      <target dev='vdc'/>\n"
				 "    </disk>\n"
				 "    <disk type='network'>\n"
				 "      <source protocol='nbd' name='export'/>\n"
				 "      <target dev='vdd'/>\n"
				 "    </disk>\n"
				 "  </devices>\n"
				 "</domain>\n";

static void
test_disks(void)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(LgdDomainXml) info = lgd_domain_xml_parse(domain_xml, &error);
	LgdDisk *d;

	g_assert_no_error(error);
	g_assert_cmpstr(info->name, ==, "web");
	g_assert_true(info->has_id);
	g_assert_false(info->is_appliance);
	g_assert_cmpuint(info->disks->len, ==, 5);

	d = g_ptr_array_index(info->disks, 0);
	g_assert_cmpstr(d->target, ==, "vda");
	g_assert_cmpstr(d->device, ==, "disk");
	g_assert_cmpstr(d->type, ==, "file");
	g_assert_cmpstr(d->path, ==, "/var/lib/libvirt/images/web.qcow2");
	g_assert_cmpstr(d->format, ==, "qcow2");
	g_assert_false(d->read_only);

	d = g_ptr_array_index(info->disks, 1);
	g_assert_cmpstr(d->device, ==, "cdrom");
	g_assert_null(d->path);
	g_assert_true(d->read_only);

	d = g_ptr_array_index(info->disks, 2);
	g_assert_cmpstr(d->pool, ==, "default");
	g_assert_cmpstr(d->volume, ==, "data.img");
	g_assert_null(d->format);
	g_assert_true(d->shareable);

	d = g_ptr_array_index(info->disks, 3);
	g_assert_cmpstr(d->path, ==, "/dev/sdz");
	g_assert_cmpstr(d->device, ==, "disk");

	d = g_ptr_array_index(info->disks, 4);
	g_assert_cmpstr(d->protocol, ==, "nbd");
	g_assert_cmpstr(d->name, ==, "export");
}

static void
test_variant(void)
{
	g_autoptr(LgdDomainXml) info = lgd_domain_xml_parse(domain_xml, NULL);
	g_autoptr(GVariant) v = g_variant_ref_sink(lgd_disks_to_variant(info->disks));
	g_autoptr(GVariant) first = g_variant_get_child_value(v, 0);
	g_autoptr(GVariant) cdrom = g_variant_get_child_value(v, 1);
	const gchar *s = NULL;
	gboolean b = TRUE;

	g_assert_cmpstr(g_variant_get_type_string(v), ==, "aa{sv}");
	g_assert_cmpuint(g_variant_n_children(v), ==, 5);
	g_assert_true(g_variant_lookup(first, "path", "&s", &s));
	g_assert_cmpstr(s, ==, "/var/lib/libvirt/images/web.qcow2");
	g_assert_true(g_variant_lookup(first, "read-only", "b", &b));
	g_assert_false(b);
	g_assert_false(g_variant_lookup(cdrom, "path", "&s", &s));
	g_assert_true(g_variant_lookup(cdrom, "read-only", "b", &b));
	g_assert_true(b);
}

static void
test_inactive_no_devices(void)
{
	g_autoptr(LgdDomainXml) info =
	    lgd_domain_xml_parse("<domain type='qemu'><name>x</name></domain>", NULL);

	g_assert_false(info->has_id);
	g_assert_cmpuint(info->disks->len, ==, 0);
}

static void
test_appliance(void)
{
	const gchar *appliance =
	    "<domain type='qemu' id='3'><name>guestfs-v2r4jgsn80u9mbb4</name><devices>"
	    "<channel type='unix'><source mode='connect' path='/tmp/s'/>"
	    "<target type='virtio' name='org.libguestfs.channel.0'/></channel>"
	    "</devices></domain>";
	const gchar *lookalike =
	    "<domain type='qemu'><name>guestfs-v2r4jgsn80u9mbb4</name><devices/></domain>";
	g_autoptr(LgdDomainXml) a = lgd_domain_xml_parse(appliance, NULL);
	g_autoptr(LgdDomainXml) b = lgd_domain_xml_parse(lookalike, NULL);

	g_assert_true(a->is_appliance);
	g_assert_false(b->is_appliance);
	g_assert_true(lgd_domain_name_is_appliance("guestfs-0123456789abcdef"));
	g_assert_false(lgd_domain_name_is_appliance("guestfs-0123456789ABCDEF"));
	g_assert_false(lgd_domain_name_is_appliance("guestfs-short"));
	g_assert_false(lgd_domain_name_is_appliance("myguestfs-0123456789abcdef"));
}

static void
test_bad_xml(void)
{
	g_autoptr(GError) e1 = NULL;
	g_autoptr(GError) e2 = NULL;
	g_autoptr(LgdDomainXml) a = lgd_domain_xml_parse("<domain", &e1);
	g_autoptr(LgdDomainXml) b = lgd_domain_xml_parse("<volume/>", &e2);

	g_assert_null(a);
	g_assert_nonnull(e1);
	g_assert_null(b);
	g_assert_nonnull(e2);
}

static void
test_volume_format(void)
{
	g_autofree gchar *qcow2 =
	    lgd_volume_xml_format("<volume><name>a</name><target><path>/x</path><format "
				  "type='qcow2'/></target></volume>");
	g_autofree gchar *none = lgd_volume_xml_format(
	    "<volume><name>a</name><target><path>/x</path></target></volume>");
	g_autofree gchar *junk = lgd_volume_xml_format("not xml");

	g_assert_cmpstr(qcow2, ==, "qcow2");
	g_assert_null(none);
	g_assert_null(junk);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/xml/disks", test_disks);
	g_test_add_func("/xml/variant", test_variant);
	g_test_add_func("/xml/inactive-no-devices", test_inactive_no_devices);
	g_test_add_func("/xml/appliance", test_appliance);
	g_test_add_func("/xml/bad-xml", test_bad_xml);
	g_test_add_func("/xml/volume-format", test_volume_format);
	return g_test_run();
}
