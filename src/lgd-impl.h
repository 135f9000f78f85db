/* The implementation types of the generated D-Bus interfaces. */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

/* A method's handler and the member of the interface's vtable
 * (iface->handle_*) that it fills. */
typedef struct {
	gsize vfunc; /* the member's offset in the interface structure */
	GCallback func;
} LgdHandler;

/* @func handles the method @what of the generated interface LgdDBus@Name
 * (its member handle_@what). The assignment inside sizeof is never run:
 * it has the compiler check that @func has the type of that member. */
#define LGD_HANDLER(Name, what, func)                                                              \
	{                                                                                          \
		G_STRUCT_OFFSET(LgdDBus##Name##Iface, handle_##what) +                             \
		    0 * sizeof(((LgdDBus##Name##Iface *)NULL)->handle_##what = (func)),            \
		    G_CALLBACK(func)                                                               \
	}

/* Fills @iface's vtable from @n handlers, @stride bytes apart: an array
 * of LgdHandler, or a method table whose entries each hold one. */
static inline void
lgd_impl_set_handlers(gpointer iface, const LgdHandler *handler, gsize n, gsize stride)
{
	for (gsize i = 0; i < n; i++) {
		G_STRUCT_MEMBER(GCallback, iface, handler->vfunc) = handler->func;
		handler = (const LgdHandler *)((const guint8 *)handler + stride);
	}
}

/* The arguments of lgd_impl_set_handlers() for an array of LgdHandler,
 * and for a method table with an LgdHandler named handler in each entry. */
#define LGD_HANDLERS(table) &(table)[0], G_N_ELEMENTS(table), sizeof((table)[0])
#define LGD_METHOD_HANDLERS(table) &(table)[0].handler, G_N_ELEMENTS(table), sizeof((table)[0])

/* Each interface LgdDBus@Name is served by a final type deriving from its
 * generated skeleton, whose only code is its handlers: this defines the
 * type with that interface, its iface_init, which fills the vtable from
 * @handlers
 * (LGD_HANDLERS() or LGD_METHOD_HANDLERS()), and its class_init and init,
 * which have nothing to do (as G_DEFINE_TYPE_WITH_CODE would, with the
 * bodies written once). */
#define LGD_DEFINE_IMPL(TypeName, type_name, NAME, handlers)                                       \
	static void type_name##_iface_init(gpointer iface)                                         \
	{                                                                                          \
		lgd_impl_set_handlers(iface, handlers);                                            \
	}                                                                                          \
	G_DEFINE_TYPE_WITH_CODE(                                                                   \
	    TypeName, type_name, LGD_DBUS_TYPE_##NAME##_SKELETON,                                  \
	    G_IMPLEMENT_INTERFACE(LGD_DBUS_TYPE_##NAME, type_name##_iface_init))                   \
	static void type_name##_class_init(TypeName##Class *klass)                                 \
	{                                                                                          \
	}                                                                                          \
	static void type_name##_init(TypeName *self)                                               \
	{                                                                                          \
	}

G_END_DECLS
