/* SPDX-License-Identifier: MIT */
/* Fuzz target: the structural WebAssembly parser and the filter contract check. */
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
	struct wasm_module m = {0};
	char err[512], buf[128];

	if (wasm_module_parse(&m, data, size, &lim, err, sizeof(err)) == 0) {
		for (uint32_t i = 0; i < m.nfunc_imports + m.nfuncs; i++) {
			const struct wasm_type *t = wasm_module_func_type(&m, i);

			if (!t)
				abort(); /* every function index of a parsed module has a type */
			wasm_type_str(t, buf, sizeof(buf));
		}
		(void)wasm_module_check_filter(&m, &lim, err, sizeof(err));
		(void)wasm_module_find_export(&m, "ap_filter", WASM_EXT_FUNC);
	}
	wasm_module_release(&m);
	return 0;
}
