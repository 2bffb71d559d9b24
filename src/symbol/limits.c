// SPDX-License-Identifier: MIT
/*
 * Counts of the parser limits hit while reading symbol sources (symbol_internal.h
 * AP_SYM_MAX_*): a hit drops what is beyond the limit and is counted here, since the parsers
 * that hit them (perf maps, kallsyms, ELF symbol tables) are not all owned by one symbolizer.
 * Process-wide and lock-free; reported by ap_symbolizer_get_stats().
 */
#include <stdatomic.h>

#include "symbol_internal.h"

static _Atomic uint64_t hits[AP_SYM_LIMIT_MAX];

void ap_sym_limit_hit(enum ap_sym_limit which)
{
	if ((unsigned int)which < AP_SYM_LIMIT_MAX)
		atomic_fetch_add_explicit(&hits[which], 1, memory_order_relaxed);
}

uint64_t ap_sym_limit_hits(enum ap_sym_limit which)
{
	return (unsigned int)which < AP_SYM_LIMIT_MAX
		       ? atomic_load_explicit(&hits[which], memory_order_relaxed)
		       : 0;
}
