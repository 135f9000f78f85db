/*
 * The service's one place for libvirt plumbing: auto-cleanups for its
 * object types and opening a connection the way every part of the service
 * wants it.
 */
#pragma once

#include <glib.h>
#include <libvirt/libvirt.h>

G_BEGIN_DECLS

G_DEFINE_AUTOPTR_CLEANUP_FUNC(virConnect, virConnectClose)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(virDomain, virDomainFree)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(virSecret, virSecretFree)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(virStoragePool, virStoragePoolFree)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(virStorageVol, virStorageVolFree)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(virStream, virStreamFree)

virConnectPtr lgd_libvirt_connect(const gchar *uri, GError **error);

G_END_DECLS
