// SPDX-License-Identifier: MIT
/*
 * Capabilities (caps.h, docs/security.md). capget/capset and prctl directly: the agent needs
 * four system calls, not a library. Which capability is needed for what was measured on Linux
 * 6.18 by running every mode as an unprivileged user with one capability taken away at a time
 * (tests/bpf/test_least_privilege.py keeps that true).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/capability.h>

#include "agent.h"
#include "caps.h"
#include "lib/log.h"

/* uapi headers older than the kernel may lack the newer numbers; these are fixed ABI */
#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif
#ifndef CAP_CHECKPOINT_RESTORE
#define CAP_CHECKPOINT_RESTORE 40
#endif

struct cap_use {
	int cap;
	int alt;	 /* a capability the kernel accepts instead (CAP_SYS_ADMIN...), or -1 */
	bool needed;	 /* loading fails without it; else recording loses something */
	const char *why; /* "needed to ..." */
};

static const struct cap_use uses[] = {
	{ CAP_BPF, CAP_SYS_ADMIN, true, "load BPF programs and create their maps" },
	{ CAP_PERFMON, CAP_SYS_ADMIN, true,
	  "open perf events for sampling and attach tracing programs" },
	{ CAP_SYS_PTRACE, -1, false,
	  "read other users' processes' /proc/PID/maps and files: without it their frames show "
	  "as [unknown] and their stacks are not unwound" },
	{ CAP_DAC_READ_SEARCH, CAP_DAC_OVERRIDE, false,
	  "read binaries and libraries this user may not read: without it their frames show as "
	  "[unknown]" },
	{ CAP_CHECKPOINT_RESTORE, CAP_SYS_ADMIN, false,
	  "open binaries through /proc/PID/map_files: without it binaries deleted or replaced "
	  "since their process started (upgraded packages) are not symbolized or unwound" },
	{ CAP_SYSLOG, -1, false,
	  "read kernel addresses from /proc/kallsyms: without it kernel frames show as [unknown]" },
};

#define NUSES (sizeof(uses) / sizeof(uses[0]))

/* The set to grant, in setcap's spelling, for the hint in the error. */
#define GRANT "cap_bpf,cap_perfmon,cap_sys_ptrace,cap_dac_read_search,cap_checkpoint_restore," \
	      "cap_syslog"

const char *ap_caps_name(int cap, char *buf, size_t len)
{
	static const char *const names[] = {
		[CAP_DAC_OVERRIDE] = "CAP_DAC_OVERRIDE",
		[CAP_DAC_READ_SEARCH] = "CAP_DAC_READ_SEARCH",
		[CAP_SETPCAP] = "CAP_SETPCAP",
		[CAP_SYS_PTRACE] = "CAP_SYS_PTRACE",
		[CAP_SYS_ADMIN] = "CAP_SYS_ADMIN",
		[CAP_SYS_RESOURCE] = "CAP_SYS_RESOURCE",
		[CAP_SYSLOG] = "CAP_SYSLOG",
		[CAP_PERFMON] = "CAP_PERFMON",
		[CAP_BPF] = "CAP_BPF",
		[CAP_CHECKPOINT_RESTORE] = "CAP_CHECKPOINT_RESTORE",
	};

	if (cap >= 0 && (size_t)cap < sizeof(names) / sizeof(names[0]) && names[cap])
		return names[cap];
	snprintf(buf, len, "CAP_%d", cap);
	return buf;
}

/* Whether `eff` allows what `u` is for; kernels without the capability (older than its
 * introduction) only know the alternative. */
static bool has_use(uint64_t eff, const struct cap_use *u, int last_cap)
{
	if (u->cap <= last_cap && (eff & AP_CAP_BIT(u->cap)))
		return true;
	return u->alt >= 0 && (eff & AP_CAP_BIT(u->alt));
}

bool ap_caps_describe_missing(uint64_t eff, int last_cap, char *msg, size_t len)
{
	size_t off = 0;
	bool any = false;
	char buf[16];

	if (len)
		msg[0] = '\0';
	for (size_t i = 0; i < NUSES && off < len; i++) {
		const struct cap_use *u = &uses[i];
		int cap = u->cap <= last_cap ? u->cap : u->alt;

		if (!u->needed || has_use(eff, u, last_cap))
			continue;
		off += (size_t)snprintf(msg + off, len - off, "%s%s (needed to %s)",
					any ? " and " : "missing ", ap_caps_name(cap, buf, sizeof(buf)),
					u->why);
		any = true;
	}
	return any;
}

uint64_t ap_caps_keep_mask(uint64_t have, int last_cap)
{
	/* CAP_BPF: the unwinder creates a map per new binary while recording (bpf_map_create,
	 * refused without it: unprivileged_bpf_disabled). The /proc readers' capabilities: every
	 * new process is read. CAP_DAC_OVERRIDE, where held (root): the profile is renamed into its directory at
	 * the end, and that directory may belong to another user. */
	uint64_t keep = AP_CAP_BIT(CAP_BPF) | AP_CAP_BIT(CAP_SYS_PTRACE) |
			AP_CAP_BIT(CAP_DAC_READ_SEARCH) | AP_CAP_BIT(CAP_CHECKPOINT_RESTORE) |
			AP_CAP_BIT(CAP_DAC_OVERRIDE);

	/* CAP_SYS_ADMIN does their jobs before CAP_BPF and CAP_CHECKPOINT_RESTORE (5.8, 5.9), and
	 * where they were not granted (a container given CAP_SYS_ADMIN only) */
	if (last_cap < CAP_CHECKPOINT_RESTORE || !(have & AP_CAP_BIT(CAP_BPF)) ||
	    !(have & AP_CAP_BIT(CAP_CHECKPOINT_RESTORE)))
		keep |= AP_CAP_BIT(CAP_SYS_ADMIN);
	return have & keep;
}

int ap_caps_last_cap(void)
{
	FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "re");
	int v = -1;

	if (f) {
		if (fscanf(f, "%d", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v >= 0 && v < 64 ? v : CAP_LAST_CAP;
}

static int get_caps(struct __user_cap_data_struct d[2])
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };

	memset(d, 0, 2 * sizeof(*d));
	return syscall(SYS_capget, &h, d) ? -errno : 0;
}

static uint64_t join(uint32_t lo, uint32_t hi)
{
	return (uint64_t)lo | (uint64_t)hi << 32;
}

uint64_t ap_caps_effective(void)
{
	struct __user_cap_data_struct d[2];

	if (get_caps(d))
		return 0;
	return join(d[0].effective, d[1].effective);
}

/* Whether /proc/kallsyms hides addresses from a reader without CAP_SYSLOG (kptr_restrict,
 * and perf_event_paranoid > 1 when kptr_restrict is 0: kernel/kallsyms.c). */
static bool kallsyms_hidden(void)
{
	FILE *f = fopen("/proc/sys/kernel/kptr_restrict", "re");
	int restrict_ = 1, paranoid = 2;

	if (f) {
		if (fscanf(f, "%d", &restrict_) != 1)
			restrict_ = 1;
		fclose(f);
	}
	f = fopen("/proc/sys/kernel/perf_event_paranoid", "re");
	if (f) {
		if (fscanf(f, "%d", &paranoid) != 1)
			paranoid = 2;
		fclose(f);
	}
	return restrict_ != 0 || paranoid > 1;
}

int ap_caps_check(const char *prog)
{
	uint64_t eff = ap_caps_effective();
	int last = ap_caps_last_cap();
	char msg[512], buf[16];

	/* the capabilities are in the permitted and effective sets already; ambient ones would
	 * only pass on to the programs the agent runs */
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	if (ap_caps_describe_missing(eff, last, msg, sizeof(msg))) {
		fprintf(stderr, "%s: %s; run as root or grant it: AmbientCapabilities= in a systemd "
			"unit, or setcap " GRANT "+ep on the binary (docs/security.md)\n", prog, msg);
		return AP_EXIT_FAILURE;
	}
	for (size_t i = 0; i < NUSES; i++) {
		const struct cap_use *u = &uses[i];

		if (u->needed || has_use(eff, u, last) || u->cap > last)
			continue;
		if (u->cap == CAP_SYSLOG && !kallsyms_hidden())
			continue;
		ap_warn("%s: no %s, needed to %s", prog, ap_caps_name(u->cap, buf, sizeof(buf)),
			u->why);
	}
	return 0;
}

int ap_caps_drop(void)
{
	return ap_caps_drop_keeping(false);
}

int ap_caps_drop_keeping(bool uprobes)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2];
	int last = ap_caps_last_cap(), err;
	uint64_t keep;

	err = get_caps(d);
	if (err)
		return err;
	keep = ap_caps_keep_mask(join(d[0].permitted, d[1].permitted), last);
	/* perf_event_open of a uprobe while recording: measured on Linux 6.18, CAP_PERFMON alone
	 * is refused (EACCES) and CAP_SYS_ADMIN is needed */
	if (uprobes)
		keep |= join(d[0].permitted, d[1].permitted) &
			(AP_CAP_BIT(CAP_PERFMON) | AP_CAP_BIT(CAP_SYS_ADMIN));
	/* the bounding set first: dropping from it needs CAP_SETPCAP, which goes next */
	if (d[0].effective & AP_CAP_BIT(CAP_SETPCAP))
		for (int cap = 0; cap <= last; cap++)
			if (!(keep & AP_CAP_BIT(cap)) && prctl(PR_CAPBSET_READ, cap, 0, 0, 0) > 0 &&
			    prctl(PR_CAPBSET_DROP, cap, 0, 0, 0))
				return -errno;
	d[0].permitted = d[0].effective = (uint32_t)keep;
	d[1].permitted = d[1].effective = (uint32_t)(keep >> 32);
	d[0].inheritable = d[1].inheritable = 0;
	if (syscall(SYS_capset, &h, d))
		return -errno;
	/* lowering the permitted set lowered the ambient one; nothing run later gains privileges
	 * from setuid or file capabilities either */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -errno;
	return 0;
}
