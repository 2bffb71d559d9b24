// SPDX-License-Identifier: MIT
/*
 * process_filter: keep only the events of the processes named in the configuration.
 *
 *   --filter-config comm=nginx,pid=42,comm=redis-server
 *
 * An event is kept when its pid is one of the pid= values or its comm (thread name) equals
 * one of the comm= values. With no configuration every event is kept except the agent's own.
 */
#include "aperture_filter.h"

#define MAX_PIDS 64
#define MAX_COMMS 32

static uint32_t pids[MAX_PIDS];
static uint32_t npids;
static struct ap_comm comms[MAX_COMMS];
static uint32_t ncomms;
static uint32_t self_pid;

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

	self_pid = ap_agent_pid();
	while ((r = ap_config_next(&c, &key, &klen, &val, &vlen)) > 0) {
		if (ap_streqn("pid", key, klen)) {
			if (npids == MAX_PIDS)
				return config_error("process_filter: too many pid= values");
			if (ap_parse_u32(val, vlen, &pids[npids]) || pids[npids] == 0)
				return config_error("process_filter: pid= needs a positive number");
			npids++;
		} else if (ap_streqn("comm", key, klen)) {
			if (ncomms == MAX_COMMS)
				return config_error("process_filter: too many comm= values");
			if (ap_comm_init(&comms[ncomms], val, vlen))
				return config_error(
				    "process_filter: comm= needs 1 to 15 characters");
			ncomms++;
		} else {
			return config_error("process_filter: unknown key (use pid= and comm=)");
		}
	}
	if (r < 0)
		return config_error("process_filter: configuration items are key=value");
	return 0;
}

AP_EXPORT("ap_filter") int32_t ap_filter(struct ap_filter_event *ev, uint32_t len)
{
	(void)len;
	if (npids == 0 && ncomms == 0)
		return ev->pid == self_pid ? AP_FILTER_DROP : AP_FILTER_KEEP;
	for (uint32_t i = 0; i < npids; i++)
		if (ev->pid == pids[i])
			return AP_FILTER_KEEP;
	for (uint32_t i = 0; i < ncomms; i++)
		if (ap_comm_eq(ev, &comms[i]))
			return AP_FILTER_KEEP;
	return AP_FILTER_DROP;
}
