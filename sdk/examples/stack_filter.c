// SPDX-License-Identifier: MIT
/*
 * stack_filter: keep only the events whose stack (kernel or user) has a given function.
 *
 *   --filter-config function=malloc,function=free     exact function names
 *   --filter-config contains=json                      any function whose name contains it
 *
 * Names come from the agent's symbolizer through env.frame_symbol, one frame at a time, so a
 * stack costs only as many lookups as it takes to find a match. A configuration is required.
 */
#include "aperture_filter.h"

#define MAX_NAMES 16
#define NAME_MAX_LEN 128

struct pattern {
	char text[NAME_MAX_LEN];
	uint32_t len;
	int substring;
};

static struct pattern patterns[MAX_NAMES];
static uint32_t npatterns;

static int32_t config_error(const char *msg)
{
	ap_log(AP_FILTER_LOG_ERROR, msg);
	return 1;
}

AP_EXPORT("ap_init") int32_t ap_init(const char *cfg, uint32_t len)
{
	struct ap_config c = ap_config_begin(cfg, len);
	const char *key, *val;
	uint32_t klen, vlen;
	int r;

	while ((r = ap_config_next(&c, &key, &klen, &val, &vlen)) > 0) {
		int substring;
		if (ap_streqn("function", key, klen))
			substring = 0;
		else if (ap_streqn("contains", key, klen))
			substring = 1;
		else
			return config_error(
			    "stack_filter: unknown key (use function= or contains=)");
		if (npatterns == MAX_NAMES)
			return config_error("stack_filter: too many names");
		if (vlen == 0 || vlen >= NAME_MAX_LEN)
			return config_error("stack_filter: a name needs 1 to 127 characters");
		for (uint32_t i = 0; i < vlen; i++)
			patterns[npatterns].text[i] = val[i];
		patterns[npatterns].len = vlen;
		patterns[npatterns].substring = substring;
		npatterns++;
	}
	if (r < 0)
		return config_error("stack_filter: configuration items are key=value");
	if (npatterns == 0)
		return config_error("stack_filter: needs function=NAME or contains=TEXT");
	return 0;
}

static int matches(const char *name)
{
	for (uint32_t i = 0; i < npatterns; i++) {
		const struct pattern *p = &patterns[i];
		if (p->substring ? ap_contains(name, p->text, p->len)
				 : ap_streqn(name, p->text, p->len))
			return 1;
	}
	return 0;
}

AP_EXPORT("ap_filter") int32_t ap_filter(struct ap_filter_event *ev, uint32_t len)
{
	char name[256];
	uint32_t n = ap_event_frames(ev);

	(void)len;
	for (uint32_t i = 0; i < n; i++) {
		if (ap_frame_symbol(i, name, sizeof(name)) < 0)
			continue;
		if (matches(name))
			return AP_FILTER_KEEP;
	}
	return AP_FILTER_DROP;
}
