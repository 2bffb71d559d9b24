// SPDX-License-Identifier: MIT
/*
 * sampling_filter: keep one event in N (stateful: a counter kept between events).
 *
 *   --filter-config n=100            keep the 1st, 101st, 201st, ... event (default n=10)
 *   --filter-config n=100,scale=1    ... and multiply each kept event's weight by N, so the
 *                                    profile's totals stay unbiased estimates
 *   --filter-config n=100,per_pid=1  count per process (64 process slots, hashed)
 */
#include "aperture_filter.h"

#define SLOTS 64

static uint32_t every = 10;
static int scale;
static int per_pid;
static uint32_t counter[SLOTS];

static int32_t config_error(const char *msg)
{
	ap_log(AP_FILTER_LOG_ERROR, msg);
	return 1;
}

static int parse_flag(const char *val, uint32_t vlen, int *out)
{
	uint32_t v;
	if (ap_parse_u32(val, vlen, &v) || v > 1)
		return -1;
	*out = (int)v;
	return 0;
}

AP_EXPORT("ap_init") int32_t ap_init(const char *cfg, uint32_t len)
{
	struct ap_config c = ap_config_begin(cfg, len);
	const char *key, *val;
	uint32_t klen, vlen;
	int r;

	while ((r = ap_config_next(&c, &key, &klen, &val, &vlen)) > 0) {
		if (ap_streqn("n", key, klen)) {
			if (ap_parse_u32(val, vlen, &every) || every == 0 ||
			    every > AP_FILTER_MAX_WEIGHT_SCALE)
				return config_error("sampling_filter: n= needs 1 to 1024");
		} else if (ap_streqn("scale", key, klen)) {
			if (parse_flag(val, vlen, &scale))
				return config_error("sampling_filter: scale= is 0 or 1");
		} else if (ap_streqn("per_pid", key, klen)) {
			if (parse_flag(val, vlen, &per_pid))
				return config_error("sampling_filter: per_pid= is 0 or 1");
		} else {
			return config_error(
			    "sampling_filter: unknown key (use n=, scale=, per_pid=)");
		}
	}
	if (r < 0)
		return config_error("sampling_filter: configuration items are key=value");
	return 0;
}

AP_EXPORT("ap_filter") int32_t ap_filter(struct ap_filter_event *ev, uint32_t len)
{
	uint32_t slot = per_pid ? (ev->pid * 2654435761u) >> 26 : 0;
	uint32_t seen = counter[slot]++;

	(void)len;
	if (seen % every != 0)
		return AP_FILTER_DROP;
	if (scale && every > 1)
		return ap_scale_weight(ev, every);
	return AP_FILTER_KEEP;
}
