#include "config.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <string.h>

#include "lgd-xml.h"
#include "lgd-error.h"

/* libguestfs names the transient domain of each appliance "guestfs-" and
 * 16 random lower-case letters or digits. */
#define LGD_APPLIANCE_PREFIX "guestfs-"
#define LGD_APPLIANCE_RANDOM_LEN 16
#define LGD_APPLIANCE_CHANNEL "org.libguestfs.channel.0"

void
lgd_disk_free(LgdDisk *disk)
{
	g_free(disk->target);
	g_free(disk->device);
	g_free(disk->type);
	g_free(disk->path);
	g_free(disk->pool);
	g_free(disk->volume);
	g_free(disk->protocol);
	g_free(disk->name);
	g_free(disk->format);
	g_free(disk);
}

void
lgd_domain_xml_free(LgdDomainXml *info)
{
	if (info == NULL)
		return;
	g_free(info->name);
	g_clear_pointer(&info->disks, g_ptr_array_unref);
	g_free(info);
}

gboolean
lgd_domain_name_is_appliance(const gchar *name)
{
	if (!g_str_has_prefix(name, LGD_APPLIANCE_PREFIX))
		return FALSE;
	name += strlen(LGD_APPLIANCE_PREFIX);
	if (strlen(name) != LGD_APPLIANCE_RANDOM_LEN)
		return FALSE;
	for (; *name != '\0'; name++) {
		if (!g_ascii_isdigit(*name) && !g_ascii_islower(*name))
			return FALSE;
	}
	return TRUE;
}

/* xmlGetProp's result as a GLib string, NULL when absent. */
gchar *
lgd_xml_prop(xmlNode *node, const gchar *name)
{
	xmlChar *value = xmlGetProp(node, (const xmlChar *)name);
	gchar *copy;

	if (value == NULL)
		return NULL;
	copy = g_strdup((const gchar *)value);
	xmlFree(value);
	return copy;
}

/* The first child element named @name, NULL when there is none. */
xmlNode *
lgd_xml_child(xmlNode *parent, const gchar *name)
{
	for (xmlNode *n = parent->children; n != NULL; n = n->next) {
		if (n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0)
			return n;
	}
	return NULL;
}

static gchar *
lgd_xml_child_text(xmlNode *parent, const gchar *name)
{
	xmlNode *child = lgd_xml_child(parent, name);
	xmlChar *text;
	gchar *copy;

	if (child == NULL)
		return NULL;
	text = xmlNodeGetContent(child);
	copy = g_strdup((const gchar *)text);
	xmlFree(text);
	return copy;
}

/* Which attribute of <source> holds the path for a disk (or backing image,
 * mirror, data file) of @type: NULL for types without a local path. */
static const gchar *
lgd_xml_source_path_attr(const gchar *type)
{
	if (g_strcmp0(type, "file") == 0)
		return "file";
	if (g_strcmp0(type, "block") == 0)
		return "dev";
	if (g_strcmp0(type, "dir") == 0)
		return "dir";
	return NULL;
}

/* @node is a <disk>, a <backingStore>, a <mirror> or a <dataStore>: each
 * has a type and a <source> of that type (an old-style <mirror> has its
 * file as an attribute). */
void
lgd_disk_read_source(LgdDisk *disk, xmlNode *node)
{
	xmlNode *source = lgd_xml_child(node, "source");
	const gchar *path_attr;

	disk->type = lgd_xml_prop(node, "type");
	path_attr = lgd_xml_source_path_attr(disk->type);
	if (source != NULL && path_attr != NULL)
		disk->path = lgd_xml_prop(source, path_attr);
	else if (source != NULL && g_strcmp0(disk->type, "volume") == 0) {
		disk->pool = lgd_xml_prop(source, "pool");
		disk->volume = lgd_xml_prop(source, "volume");
	} else if (source != NULL && g_strcmp0(disk->type, "network") == 0) {
		disk->protocol = lgd_xml_prop(source, "protocol");
		disk->name = lgd_xml_prop(source, "name");
	} else if (source == NULL && strcmp((const char *)node->name, "mirror") == 0)
		disk->path = lgd_xml_prop(node, "file");
}

static LgdDisk *
lgd_disk_parse(xmlNode *node)
{
	LgdDisk *disk = g_new0(LgdDisk, 1);
	xmlNode *target = lgd_xml_child(node, "target");
	xmlNode *driver = lgd_xml_child(node, "driver");

	lgd_disk_read_source(disk, node);
	disk->device = lgd_xml_prop(node, "device");
	if (disk->device == NULL)
		disk->device = g_strdup("disk");
	if (target != NULL)
		disk->target = lgd_xml_prop(target, "dev");
	if (driver != NULL)
		disk->format = lgd_xml_prop(driver, "type");
	disk->read_only = lgd_xml_child(node, "readonly") != NULL;
	disk->shareable = lgd_xml_child(node, "shareable") != NULL;
	return disk;
}

static gboolean
lgd_devices_have_appliance_channel(xmlNode *devices)
{
	for (xmlNode *n = devices->children; n != NULL; n = n->next) {
		xmlNode *target;
		g_autofree gchar *name = NULL;

		if (n->type != XML_ELEMENT_NODE || strcmp((const char *)n->name, "channel") != 0)
			continue;
		target = lgd_xml_child(n, "target");
		if (target == NULL)
			continue;
		name = lgd_xml_prop(target, "name");
		if (g_strcmp0(name, LGD_APPLIANCE_CHANNEL) == 0)
			return TRUE;
	}
	return FALSE;
}

/* Libvirt's XML never needs the network, and a bad document is reported
 * by the caller, not printed on stderr. */
xmlDoc *
lgd_xml_read(const gchar *xml)
{
	return xmlReadMemory(xml, (int)strlen(xml), "libvirt.xml", NULL,
			     XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
}

LgdDomainXml *
lgd_domain_xml_parse(const gchar *xml, GError **error)
{
	g_autoptr(xmlDoc) doc = NULL;
	g_autoptr(LgdDomainXml) info = g_new0(LgdDomainXml, 1);
	g_autofree gchar *id = NULL;
	xmlNode *root;
	xmlNode *devices;

	doc = lgd_xml_read(xml);
	if (doc == NULL) {
		g_set_error_literal(error, LGD_ERROR, LGD_ERROR_FAILED,
				    "libvirt returned a domain definition that is not XML");
		return NULL;
	}
	root = xmlDocGetRootElement(doc);
	if (root == NULL || strcmp((const char *)root->name, "domain") != 0) {
		g_set_error_literal(error, LGD_ERROR, LGD_ERROR_FAILED,
				    "libvirt returned XML that is not a domain definition");
		return NULL;
	}
	info->name = lgd_xml_child_text(root, "name");
	id = lgd_xml_prop(root, "id");
	info->has_id = id != NULL && g_strcmp0(id, "-1") != 0;
	info->disks = g_ptr_array_new_with_free_func((GDestroyNotify)lgd_disk_free);
	devices = lgd_xml_child(root, "devices");
	if (devices == NULL)
		return g_steal_pointer(&info);
	for (xmlNode *n = devices->children; n != NULL; n = n->next) {
		if (n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, "disk") == 0)
			g_ptr_array_add(info->disks, lgd_disk_parse(n));
	}
	info->is_appliance = info->name != NULL && lgd_domain_name_is_appliance(info->name) &&
			     lgd_devices_have_appliance_channel(devices);
	return g_steal_pointer(&info);
}

/* The string members of a disk in DeclaredDisks, each given only when set. */
static const struct {
	const gchar *key;
	gsize offset;
} lgd_disk_strings[] = {
    {"target", G_STRUCT_OFFSET(LgdDisk, target)},     {"device", G_STRUCT_OFFSET(LgdDisk, device)},
    {"type", G_STRUCT_OFFSET(LgdDisk, type)},	      {"path", G_STRUCT_OFFSET(LgdDisk, path)},
    {"pool", G_STRUCT_OFFSET(LgdDisk, pool)},	      {"volume", G_STRUCT_OFFSET(LgdDisk, volume)},
    {"protocol", G_STRUCT_OFFSET(LgdDisk, protocol)}, {"name", G_STRUCT_OFFSET(LgdDisk, name)},
    {"format", G_STRUCT_OFFSET(LgdDisk, format)},
};

GVariant *
lgd_disks_to_variant(GPtrArray *disks)
{
	GVariantBuilder builder;

	g_variant_builder_init(&builder, G_VARIANT_TYPE("aa{sv}"));
	for (guint i = 0; i < disks->len; i++) {
		LgdDisk *disk = g_ptr_array_index(disks, i);

		g_variant_builder_open(&builder, G_VARIANT_TYPE("a{sv}"));
		for (guint k = 0; k < G_N_ELEMENTS(lgd_disk_strings); k++) {
			const gchar *value =
			    G_STRUCT_MEMBER(const gchar *, disk, lgd_disk_strings[k].offset);

			if (value != NULL)
				g_variant_builder_add(&builder, "{sv}", lgd_disk_strings[k].key,
						      g_variant_new_string(value));
		}
		g_variant_builder_add(&builder, "{sv}", "read-only",
				      g_variant_new_boolean(disk->read_only));
		g_variant_builder_add(&builder, "{sv}", "shareable",
				      g_variant_new_boolean(disk->shareable));
		g_variant_builder_close(&builder);
	}
	return g_variant_builder_end(&builder);
}

/* The child @name of the root of a storage volume's XML, NULL when the
 * XML is no volume or has no such child. */
static xmlNode *
lgd_volume_xml_child(xmlDoc *doc, const gchar *name)
{
	xmlNode *root = doc != NULL ? xmlDocGetRootElement(doc) : NULL;

	if (root == NULL || strcmp((const char *)root->name, "volume") != 0)
		return NULL;
	return lgd_xml_child(root, name);
}

/* The format of a storage volume (<target><format type=.../>), NULL when
 * the XML gives none. */
gchar *
lgd_volume_xml_format(const gchar *xml)
{
	g_autoptr(xmlDoc) doc = lgd_xml_read(xml);
	xmlNode *target = lgd_volume_xml_child(doc, "target");
	xmlNode *format = target != NULL ? lgd_xml_child(target, "format") : NULL;

	return format != NULL ? lgd_xml_prop(format, "type") : NULL;
}

/* The backing file a storage volume's XML declares (<backingStore><path>);
 * @has_backing tells whether there is a backing store at all, since one
 * without a path (a network backing file) returns NULL too. */
gchar *
lgd_volume_xml_backing(const gchar *xml, gboolean *has_backing)
{
	g_autoptr(xmlDoc) doc = lgd_xml_read(xml);
	xmlNode *backing = lgd_volume_xml_child(doc, "backingStore");

	*has_backing = backing != NULL;
	return backing != NULL ? lgd_xml_child_text(backing, "path") : NULL;
}
