// SPDX-License-Identifier: MIT
/*
 * Demangling through libiberty (Debian libiberty-dev, linked statically): one call covers C++
 * (Itanium ABI) and Rust, both the legacy scheme (which looks like C++ and ends in a hash,
 * dropped here) and v0 ("_R..."). libstdc++'s __cxa_demangle would cover C++ only. The
 * demangler files of libiberty carry the GCC linking exception, so linking them into Aperture
 * puts no conditions on it.
 */
#include <string.h>

#include <libiberty/demangle.h>

#include "symbol_internal.h"

char *ap_demangle(const char *name)
{
	/* everything else is a C name (or a mangling we do not know): leave it alone, and
	 * cheaply, since most symbols of a system are C */
	if (!name || name[0] != '_' || (name[1] != 'Z' && name[1] != 'R'))
		return NULL;
	/* DMGL_AUTO tries Rust first: legacy Rust names are valid C++ names too */
	return cplus_demangle(name, DMGL_PARAMS | DMGL_ANSI | DMGL_AUTO);
}

char *ap_symbolizer_demangle(const char *name)
{
	return ap_demangle(name);
}
