/* The implementation types of the generated D-Bus interfaces. */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

/* Each interface is served by a final type deriving from its generated
 * skeleton, whose only code is the type_name##_iface_init that sets the
 * handlers: this defines the type with that interface, and its class_init
 * and init, which have nothing to do (as G_DEFINE_TYPE_WITH_CODE would,
 * with the empty bodies written once). */
#define LGD_DEFINE_IMPL(TypeName, type_name, SKELETON_TYPE, IFACE_TYPE)                            \
	G_DEFINE_TYPE_WITH_CODE(TypeName, type_name, SKELETON_TYPE,                                \
				G_IMPLEMENT_INTERFACE(IFACE_TYPE, type_name##_iface_init))         \
	static void type_name##_class_init(TypeName##Class *klass)                                 \
	{                                                                                          \
	}                                                                                          \
	static void type_name##_init(TypeName *self)                                               \
	{                                                                                          \
	}

G_END_DECLS
