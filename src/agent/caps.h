/* SPDX-License-Identifier: MIT */
/*
 * The agent's capabilities (docs/security.md): before loading it checks that its effective set
 * can record and names what is missing; after attaching it gives up what the run loop does not
 * need. Works the same for root and for a user granted a set (AmbientCapabilities=, setcap).
 */
#ifndef AP_CAPS_H
#define AP_CAPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A capability set as a bit mask: bit N is CAP_N (the kernel's numbering). */
#define AP_CAP_BIT(cap) (1ULL << (cap))

/*
 * Before loading anything: returns 0 when the effective set can load and attach the BPF
 * programs, warning (once each) about recommended capabilities that are missing and what is
 * lost without them; else prints which capability is missing, what it is needed for and how to
 * grant it, and returns AP_EXIT_FAILURE. Also clears the ambient set, so the helpers the agent
 * runs (the filter compiler) inherit no capabilities.
 */
int ap_caps_check(const char *prog);

/*
 * After every program is attached and every map is open: removes from the effective,
 * permitted, inheritable and (with CAP_SETPCAP) bounding sets all that the run loop does not
 * need, and sets no_new_privs. Returns 0 or -errno; prints nothing.
 */
int ap_caps_drop(void);
/* The same; with `uprobes` also keeping what attaching uprobes needs, where held: GPU mode
 * attaches to programs found while recording (perf_event_open of a uprobe: CAP_PERFMON
 * and, measured on Linux 6.18, CAP_SYS_ADMIN). */
int ap_caps_drop_keeping(bool uprobes);

/* Pure helpers (unit-tested). `last_cap`: /proc/sys/kernel/cap_last_cap. */

/* Writes "missing CAP_X (needed to ...)" for the first capability that loading needs and `eff`
 * lacks, and returns true; else writes "" and returns false. */
bool ap_caps_describe_missing(uint64_t eff, int last_cap, char *msg, size_t len);

/* What the run loop keeps of `have`. */
uint64_t ap_caps_keep_mask(uint64_t have, int last_cap);

/* "CAP_BPF" for CAP_BPF; "CAP_<n>" for numbers it does not know. */
const char *ap_caps_name(int cap, char *buf, size_t len);

/* The effective set now (0 when capget fails). */
uint64_t ap_caps_effective(void);

/* /proc/sys/kernel/cap_last_cap, or the build's CAP_LAST_CAP when unreadable. */
int ap_caps_last_cap(void);

#endif
