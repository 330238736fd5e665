/*
 * exim_shim.h: what hints_hintsd.h takes from Exim's exim.h, for building it outside Exim.
 *
 * Exim's own definitions are richer (DEBUG tests a selector set by -d, debug_printf_indent
 * indents by nesting depth); these keep only what the backend uses. Debug output goes to
 * stderr when shim_debug has D_hints_lookup set (the harness sets it from
 * $HINTSD_HARNESS_DEBUG).
 */
#ifndef EXIM_SHIM_H
#define EXIM_SHIM_H

#include <stdarg.h>
#include <stdio.h>

typedef unsigned char uschar;
typedef int BOOL;

#ifndef TRUE
#define TRUE 1
#endif
#ifndef FALSE
#define FALSE 0
#endif

#define US (unsigned char *)
#define CS (char *)

/* The debug selector bit of hints database access. */
#define D_hints_lookup 0x1u

static unsigned shim_debug;

#define DEBUG(x) if (shim_debug & (x))

static inline void debug_printf_indent(const char *format, ...) {
    va_list args;
    va_start(args, format);
    vfprintf(stderr, format, args);
    va_end(args);
}

#endif /* EXIM_SHIM_H */
