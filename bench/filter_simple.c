// SPDX-License-Identifier: MIT
/*
 * The benchmark's minimal realistic filter (bench/filter_cost.c): keep events of processes
 * with pid >= 1000 whose comm is "nginx". Built to wasm32 like the SDK examples, and
 * natively (-DAP_FILTER_NATIVE) as the baseline.
 */
#include "aperture_filter.h"

static const struct ap_comm nginx = { { 0x786e69676eull, 0 } }; /* "nginx", NUL-padded */

AP_EXPORT("ap_filter") int32_t ap_filter(struct ap_filter_event *ev, uint32_t len)
{
	(void)len;
	return ev->pid >= 1000 && ap_comm_eq(ev, &nginx) ? AP_FILTER_KEEP : AP_FILTER_DROP;
}
