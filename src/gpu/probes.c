// SPDX-License-Identifier: MIT
/* Attaching gpu.bpf.c's two programs to the probed functions of a file (discover.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>

#include <linux/bpf.h>
#include <bpf/libbpf.h>

#include "discover.h"

/* Linux 6.6's uprobe_multi links, which libbpf 1.1's headers and API predate: the attach type
 * and the BPF_LINK_CREATE layout (include/uapi/linux/bpf.h). */
#define UPROBE_MULTI_ATTACH_TYPE 48 /* BPF_TRACE_UPROBE_MULTI */
#define UPROBE_MULTI_RETURN 1u	    /* BPF_F_UPROBE_MULTI_RETURN */

struct link_create_uprobe_multi {
	__u32 prog_fd;
	__u32 target_fd;
	__u32 attach_type;
	__u32 flags;
	__u64 path;
	__u64 offsets;
	__u64 ref_ctr_offsets;
	__u64 cookies;
	__u32 cnt;
	__u32 multi_flags;
	__u32 pid;
};

struct ap_gpu_probes {
	struct bpf_program *enter, *exit, *enter_multi, *exit_multi;
	unsigned int groups;
	struct bpf_link **links;
	size_t nlinks, cap;
	int *fds; /* uprobe_multi links */
	size_t nfds, fdcap;
	struct ap_gpu_probes_stats st;
};

struct ap_gpu_probes *ap_gpu_probes_new(struct bpf_program *enter, struct bpf_program *exit,
					unsigned int groups)
{
	struct ap_gpu_probes *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->enter = enter;
	p->exit = exit;
	p->groups = groups;
	return p;
}

int ap_gpu_probes_prepare_multi(struct bpf_program *enter_multi, struct bpf_program *exit_multi)
{
	int err = bpf_program__set_expected_attach_type(enter_multi, UPROBE_MULTI_ATTACH_TYPE);

	return err ? err : bpf_program__set_expected_attach_type(exit_multi,
								  UPROBE_MULTI_ATTACH_TYPE);
}

void ap_gpu_probes_use_multi(struct ap_gpu_probes *p, struct bpf_program *enter_multi,
			     struct bpf_program *exit_multi)
{
	p->enter_multi = enter_multi;
	p->exit_multi = exit_multi;
}

static int keep_fd(struct ap_gpu_probes *p, int fd)
{
	if (p->nfds == p->fdcap) {
		size_t cap = p->fdcap ? p->fdcap * 2 : 16;
		int *n = realloc(p->fds, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		p->fds = n;
		p->fdcap = cap;
	}
	p->fds[p->nfds++] = fd;
	return 0;
}

static int link_multi(struct bpf_program *prog, bool ret, const char *path, int pid,
		      const unsigned long *offsets, const __u64 *cookies, __u32 n)
{
	struct link_create_uprobe_multi lc = {
		.prog_fd = (__u32)bpf_program__fd(prog),
		.attach_type = UPROBE_MULTI_ATTACH_TYPE,
		.path = (__u64)(uintptr_t)path,
		.offsets = (__u64)(uintptr_t)offsets,
		.cookies = (__u64)(uintptr_t)cookies,
		.cnt = n,
		.multi_flags = ret ? UPROBE_MULTI_RETURN : 0,
		.pid = pid > 0 ? (__u32)pid : 0,
	};
	union bpf_attr attr;
	int fd;

	_Static_assert(sizeof(lc) <= sizeof(attr), "union bpf_attr too small");
	memset(&attr, 0, sizeof(attr));
	memcpy(&attr, &lc, sizeof(lc));
	fd = (int)syscall(__NR_bpf, BPF_LINK_CREATE, &attr, sizeof(attr));
	return fd < 0 ? -errno : fd;
}

/* All wanted functions of a file in two links (returns first). 0, or -errno: the caller
 * falls back to one probe per function (an old kernel: EINVAL/EOPNOTSUPP). */
static int attach_multi(struct ap_gpu_probes *p, const char *path, int pid,
			const struct ap_gpu_scan *scan, size_t *done)
{
	unsigned long *off = calloc(scan->nsites ? scan->nsites : 1, sizeof(*off));
	__u64 *ck = calloc(scan->nsites ? scan->nsites : 1, sizeof(*ck));
	unsigned long *roff = calloc(scan->nsites ? scan->nsites : 1, sizeof(*roff));
	__u64 *rck = calloc(scan->nsites ? scan->nsites : 1, sizeof(*rck));
	__u32 n = 0, nr = 0;
	int err = 0, rfd = -1, efd;

	if (!off || !ck || !roff || !rck) {
		err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < scan->nsites; i++) {
		const struct ap_gpu_site *s = &scan->sites[i];
		uint64_t cookie = ap_gpu_fn_cookie(s->fn);

		if (!(ap_gpu_fns[s->fn].group & p->groups))
			continue;
		off[n] = (unsigned long)s->offset;
		ck[n++] = cookie;
		if (!(cookie & AP_GPU_CK_ENTRY_ONLY)) {
			roff[nr] = (unsigned long)s->offset;
			rck[nr++] = cookie;
		}
	}
	*done = n;
	if (!n)
		goto out;
	if (nr) {
		rfd = link_multi(p->exit_multi, true, path, pid, roff, rck, nr);
		if (rfd < 0) {
			err = rfd;
			goto out;
		}
	}
	efd = link_multi(p->enter_multi, false, path, pid, off, ck, n);
	if (efd < 0) {
		err = efd;
		if (rfd >= 0)
			close(rfd);
		goto out;
	}
	if ((rfd >= 0 && keep_fd(p, rfd)) || keep_fd(p, efd)) {
		close(efd);
		err = -ENOMEM;
		goto out;
	}
	p->st.functions += n;
	p->st.multi_links += rfd >= 0 ? 2 : 1;
out:
	free(off);
	free(ck);
	free(roff);
	free(rck);
	return err;
}

static int keep(struct ap_gpu_probes *p, struct bpf_link *l)
{
	if (p->nlinks == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 64;
		struct bpf_link **n = realloc(p->links, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		p->links = n;
		p->cap = cap;
	}
	p->links[p->nlinks++] = l;
	return 0;
}

static struct bpf_link *attach_one(struct bpf_program *prog, bool ret, const char *path, int pid,
				   uint64_t offset, uint64_t cookie)
{
	LIBBPF_OPTS(bpf_uprobe_opts, o, .retprobe = ret, .bpf_cookie = cookie);

	return bpf_program__attach_uprobe_opts(prog, pid, path, (size_t)offset, &o);
}

int ap_gpu_probes_attach(struct ap_gpu_probes *p, const char *path, int pid,
			 const struct ap_gpu_scan *scan, char *err, size_t errlen)
{
	size_t wanted = 0, done = 0;
	int last = 0;

	if (p->enter_multi && p->exit_multi) {
		last = attach_multi(p, path, pid, scan, &wanted);
		if (!last) {
			p->st.files++;
			return 0;
		}
		if (last != -EINVAL && last != -EOPNOTSUPP && last != -ENOTSUP && last != -ENOSYS &&
		    last != -E2BIG) {
			p->st.attach_failed += wanted;
			snprintf(err, errlen, "cannot attach to %s (%zu functions): %s", path, wanted,
				 strerror(-last));
			return last;
		}
		/* no uprobe_multi here: one probe per function from now on */
		p->enter_multi = p->exit_multi = NULL;
		p->st.multi_unsupported = 1;
		wanted = 0;
		last = 0;
	}
	for (size_t i = 0; i < scan->nsites; i++) {
		const struct ap_gpu_site *s = &scan->sites[i];
		uint64_t cookie = ap_gpu_fn_cookie(s->fn);
		struct bpf_link *rl = NULL, *el;

		if (!(ap_gpu_fns[s->fn].group & p->groups)) {
			p->st.skipped++;
			continue;
		}
		wanted++;
		/* the return first: every entry kept has its return seen */
		if (!(cookie & AP_GPU_CK_ENTRY_ONLY)) {
			rl = attach_one(p->exit, true, path, pid, s->offset, cookie);
			if (!rl) {
				last = -errno;
				p->st.attach_failed++;
				continue;
			}
		}
		el = attach_one(p->enter, false, path, pid, s->offset, cookie);
		if (!el) {
			last = -errno;
			bpf_link__destroy(rl);
			p->st.attach_failed++;
			continue;
		}
		if ((rl && keep(p, rl)) || keep(p, el)) {
			bpf_link__destroy(el);
			if (rl && (!p->nlinks || p->links[p->nlinks - 1] != rl))
				bpf_link__destroy(rl);
			return -ENOMEM;
		}
		done++;
		p->st.functions++;
	}
	if (wanted && !done) {
		snprintf(err, errlen, "no probe attached to %s (%zu functions): %s", path, wanted,
			 strerror(last ? -last : EINVAL));
		return last ? last : -EINVAL;
	}
	p->st.files++;
	return 0;
}

void ap_gpu_probes_detach(struct ap_gpu_probes *p)
{
	if (!p)
		return;
	while (p->nlinks)
		bpf_link__destroy(p->links[--p->nlinks]);
	while (p->nfds)
		close(p->fds[--p->nfds]);
}

void ap_gpu_probes_free(struct ap_gpu_probes *p)
{
	if (!p)
		return;
	ap_gpu_probes_detach(p);
	free(p->links);
	free(p->fds);
	free(p);
}

void ap_gpu_probes_get_stats(const struct ap_gpu_probes *p, struct ap_gpu_probes_stats *out)
{
	*out = p->st;
}
