/* What the service reads from libvirt XML: domain and volume definitions. */
#pragma once

#include <glib.h>
#include <libxml/tree.h>

G_BEGIN_DECLS

/* A domain's disk, or an image its disk refers to (an image of its
 * backing chain, a block job's mirror, a data file): see lgd-volume-usage.h. */
typedef struct {
	gchar *target;	 /* "vda" */
	guint depth;	 /* 0: the disk's source; 1...: down its backing chain */
	gchar *device;	 /* "disk", "cdrom", ... */
	gchar *type;	 /* "file", "block", "volume", "network", ... */
	gchar *path;	 /* file, block and dir sources */
	gchar *pool;	 /* volume sources */
	gchar *volume;	 /* volume sources */
	gchar *protocol; /* network sources */
	gchar *name;	 /* network sources: "rbdpool/image" */
	gchar *format;	 /* driver type, NULL when not given */
	gboolean read_only;
	gboolean shareable;
} LgdDisk;

typedef struct {
	gchar *name;
	gboolean has_id;       /* libvirt gives running domains an id */
	gboolean is_appliance; /* one of libguestfs's own appliance domains */
	GPtrArray *disks;      /* of LgdDisk */
} LgdDomainXml;

void lgd_disk_free(LgdDisk *disk);

void lgd_disk_read_source(LgdDisk *disk, xmlNode *node);

LgdDomainXml *lgd_domain_xml_parse(const gchar *xml, GError **error);

void lgd_domain_xml_free(LgdDomainXml *info);

gboolean lgd_domain_name_is_appliance(const gchar *name);

GVariant *lgd_disks_to_variant(GPtrArray *disks);

gchar *lgd_volume_xml_format(const gchar *xml);

gchar *lgd_volume_xml_backing(const gchar *xml, gboolean *has_backing);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(LgdDomainXml, lgd_domain_xml_free)

/* The few libxml2 steps every reader of libvirt XML takes. */
xmlDoc *lgd_xml_read(const gchar *xml);

xmlNode *lgd_xml_child(xmlNode *parent, const gchar *name);

gchar *lgd_xml_prop(xmlNode *node, const gchar *name);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlDoc, xmlFreeDoc)

G_END_DECLS
