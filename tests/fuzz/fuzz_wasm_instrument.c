/* SPDX-License-Identifier: MIT */
/* Fuzz target: the metering rewrite on modules that were parsed but never validated (the
 * loader validates first; the instrumenter must not rely on it), and the parse of its output. */
#include <stdint.h>
#include <stdlib.h>

#include "filter/filter.h"
#include "filter/wasm_module.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wasm_limits lim = {.max_module_bytes = AP_FILTER_DEFAULT_MODULE_BYTES,
				  .max_functions = AP_FILTER_DEFAULT_FUNCTIONS,
				  .max_locals = AP_FILTER_DEFAULT_LOCALS,
				  .max_memory_pages = AP_FILTER_DEFAULT_MEMORY_PAGES,
				  .max_table_elems = 65536};
	struct wasm_instrument_opts io = {.max_call_depth = AP_FILTER_DEFAULT_CALL_DEPTH,
					  .max_memory_pages = AP_FILTER_DEFAULT_MEMORY_PAGES};
	struct wasm_module m = {0}, m2 = {0};
	uint8_t *out = NULL;
	size_t outlen = 0;
	char err[512];

	if (wasm_module_parse(&m, data, size, &lim, err, sizeof(err)) == 0 &&
	    wasm_instrument(&m, &io, &out, &outlen, err, sizeof(err)) == 0) {
		/* the rewrite only adds: a module the parser took stays one it takes, with
		 * room for the wrappers it adds */
		lim.max_functions *= 2;
		lim.max_locals += 1;
		lim.max_module_bytes = UINT32_MAX;
		if (wasm_module_parse(&m2, out, outlen, &lim, err, sizeof(err)) != 0)
			abort();
	}
	wasm_module_release(&m2);
	wasm_module_release(&m);
	free(out);
	return 0;
}
