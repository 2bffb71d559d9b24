// SPDX-License-Identifier: MIT
/* Attaching gpu.bpf.c's two programs to the probed functions of a file (discover.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/libbpf.h>

#include "discover.h"

struct ap_gpu_probes {
	struct bpf_program *enter, *exit;
	unsigned int groups;
	struct bpf_link **links;
	size_t nlinks, cap;
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
}

void ap_gpu_probes_free(struct ap_gpu_probes *p)
{
	if (!p)
		return;
	ap_gpu_probes_detach(p);
	free(p->links);
	free(p);
}

void ap_gpu_probes_get_stats(const struct ap_gpu_probes *p, struct ap_gpu_probes_stats *out)
{
	*out = p->st;
}
