#include "config.h"

#include <libvirt/virterror.h>
#include <string.h>

#include "lgd-error.h"
#include "lgd-libvirt.h"
#include "lgd-volume-usage.h"
#include "lgd-xml.h"

/* @node is a <disk>, or an image it refers to: see lgd_disk_read_source(). */
static void
lgd_volume_refs_add(GPtrArray *refs, const gchar *target, xmlNode *node, guint depth)
{
	xmlNode *source = lgd_xml_child(node, "source");
	LgdDisk *ref = g_new0(LgdDisk, 1);
	xmlNode *next;

	ref->target = g_strdup(target);
	ref->depth = depth;
	lgd_disk_read_source(ref, node);
	if (ref->path != NULL || ref->volume != NULL || ref->name != NULL)
		g_ptr_array_add(refs, ref);
	else
		lgd_disk_free(ref);

	if (source != NULL && (next = lgd_xml_child(source, "dataStore")) != NULL)
		lgd_volume_refs_add(refs, target, next, depth);
	/* the chain ends with an empty <backingStore/> */
	next = lgd_xml_child(node, "backingStore");
	if (next != NULL && xmlHasProp(next, (const xmlChar *)"type"))
		lgd_volume_refs_add(refs, target, next, depth + 1);
	if (strcmp((const char *)node->name, "disk") == 0 &&
	    (next = lgd_xml_child(node, "mirror")) != NULL)
		lgd_volume_refs_add(refs, target, next, depth);
}

/* Everything the disks of a (live) domain definition refer to. */
GPtrArray *
lgd_volume_refs_parse(const gchar *domain_xml, GError **error)
{
	g_autoptr(GPtrArray) refs = g_ptr_array_new_with_free_func((GDestroyNotify)lgd_disk_free);
	g_autoptr(xmlDoc) doc = NULL;
	xmlNode *root;
	xmlNode *devices;

	doc = lgd_xml_read(domain_xml);
	root = doc != NULL ? xmlDocGetRootElement(doc) : NULL;
	if (root == NULL || strcmp((const char *)root->name, "domain") != 0) {
		g_set_error_literal(error, LGD_ERROR, LGD_ERROR_FAILED,
				    "libvirt returned a domain definition that is not XML");
		return NULL;
	}
	devices = lgd_xml_child(root, "devices");
	for (xmlNode *n = devices != NULL ? devices->children : NULL; n != NULL; n = n->next) {
		xmlNode *target;
		g_autofree gchar *dev = NULL;

		if (n->type != XML_ELEMENT_NODE || strcmp((const char *)n->name, "disk") != 0)
			continue;
		target = lgd_xml_child(n, "target");
		dev = target != NULL ? lgd_xml_prop(target, "dev") : NULL;
		lgd_volume_refs_add(refs, dev != NULL ? dev : "?", n, 0);
	}
	return g_steal_pointer(&refs);
}

static gboolean
lgd_volume_paths_equal(const gchar *a, const gchar *b)
{
	g_autofree gchar *ca = NULL;
	g_autofree gchar *cb = NULL;

	if (!g_path_is_absolute(a) || !g_path_is_absolute(b))
		return g_strcmp0(a, b) == 0;
	/* "//" and "/./" spell the same file; symlinks are libvirt's to
	 * resolve (see lgd_volume_usage_same_volume) */
	ca = g_canonicalize_filename(a, "/");
	cb = g_canonicalize_filename(b, "/");
	return g_strcmp0(ca, cb) == 0;
}

/* Whether @ref names the volume with this @path, in @pool under @name,
 * from what the definition says alone. */
gboolean
lgd_volume_ref_matches(const LgdDisk *ref, const gchar *path, const gchar *pool, const gchar *name)
{
	if (ref->volume != NULL)
		return g_strcmp0(ref->pool, pool) == 0 && g_strcmp0(ref->volume, name) == 0;
	if (ref->path != NULL && path != NULL)
		return lgd_volume_paths_equal(ref->path, path);
	if (ref->name != NULL && path != NULL) {
		g_autofree gchar *suffix = g_strconcat("/", ref->name, NULL);
		/* rbd volumes have "pool/image" as path, gluster ones a URL */
		return g_strcmp0(ref->name, path) == 0 ||
		       (strstr(path, "://") != NULL && g_str_has_suffix(path, suffix));
	}
	return FALSE;
}

/* libvirt resolves a path to a volume the way its storage driver sees the
 * host (symlinks, /dev/disk/by-* names), also on a remote host. */
static gboolean
lgd_volume_usage_same_volume(virConnectPtr conn, const gchar *path, const gchar *key)
{
	g_autoptr(virStorageVol) other = virStorageVolLookupByPath(conn, path);

	if (other == NULL) {
		virResetLastError(); /* a disk outside every pool */
		return FALSE;
	}
	return g_strcmp0(virStorageVolGetKey(other), key) == 0;
}

static gboolean
lgd_volume_usage_check_domain(virConnectPtr conn,
			      virDomainPtr dom,
			      virStorageVolPtr vol,
			      const gchar *path,
			      const gchar *pool,
			      GError **error)
{
	const gchar *name = virStorageVolGetName(vol);
	const gchar *dom_name = virDomainGetName(dom);
	g_autofree gchar *xml = virDomainGetXMLDesc(dom, 0);
	g_autoptr(GPtrArray) refs = NULL;

	if (xml == NULL) {
		/* it stopped meanwhile; a transient one (an appliance) is gone */
		if (virGetLastErrorCode() == VIR_ERR_NO_DOMAIN || virDomainIsActive(dom) == 0) {
			virResetLastError();
			return TRUE;
		}
		lgd_error_set_from_libvirt(error, "Cannot tell whether running domain %s uses %s",
					   dom_name, path);
		return FALSE;
	}
	refs = lgd_volume_refs_parse(xml, error);
	if (refs == NULL)
		return FALSE;
	for (guint i = 0; i < refs->len; i++) {
		LgdDisk *ref = g_ptr_array_index(refs, i);

		if (!lgd_volume_ref_matches(ref, path, pool, name) &&
		    (ref->path == NULL ||
		     !lgd_volume_usage_same_volume(conn, ref->path, virStorageVolGetKey(vol))))
			continue;
		if (lgd_domain_name_is_appliance(dom_name)) {
			g_set_error(error, LGD_ERROR, LGD_ERROR_IN_USE,
				    "Volume %s is open in a libguestfs appliance (domain %s); "
				    "stop the appliance (StopAppliance) before uploading",
				    path, dom_name);
			return FALSE;
		}
		g_set_error(error, LGD_ERROR, LGD_ERROR_IN_USE,
			    "Volume %s is in use by running domain %s (%s %s); shut the domain "
			    "down before uploading to it",
			    path, dom_name, ref->depth > 0 ? "backing chain of disk" : "disk",
			    ref->target);
		return FALSE;
	}
	return TRUE;
}

/* Writing under a running guest corrupts it: refuse while any disk of any
 * running domain on the connection refers to the volume. A domain that
 * starts after this check is libvirt's lock manager's to stop. */
gboolean
lgd_volume_usage_check_unused(virConnectPtr conn, virStorageVolPtr vol, GError **error)
{
	g_autofree gchar *path = virStorageVolGetPath(vol);
	g_autoptr(virStoragePool) pool = virStoragePoolLookupByVolume(vol);
	virDomainPtr *doms = NULL;
	gboolean ok = TRUE;
	int n;

	if (path == NULL || pool == NULL) {
		lgd_error_set_from_libvirt(error, "Cannot read volume %s",
					   virStorageVolGetKey(vol));
		return FALSE;
	}
	n = virConnectListAllDomains(conn, &doms, VIR_CONNECT_LIST_DOMAINS_ACTIVE);
	if (n < 0) {
		lgd_error_set_from_libvirt(error, "Cannot list the running domains");
		return FALSE;
	}
	for (int i = 0; i < n; i++) {
		if (ok)
			ok = lgd_volume_usage_check_domain(conn, doms[i], vol, path,
							   virStoragePoolGetName(pool), error);
		virDomainFree(doms[i]);
	}
	free(doms);
	return ok;
}
