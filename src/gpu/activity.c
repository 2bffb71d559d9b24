/* SPDX-License-Identifier: MIT */
/*
 * The loader of gpu_activity.bpf.c (activity.h): attaches its three USDT programs to the
 * injection library's probes, and turns what they send into AP_GPU_CALL_CORRELATION calls
 * and struct ap_gpu_activity records for the model.
 *
 * The library's path comes from a process's maps, so it is hostile: it is opened once through
 * ap_open_untrusted (a regular file; /proc magic links only for /proc/PID/map_files), checked
 * to be the injection library by its ELF note, and libbpf is then given /proc/self/fd/N of
 * that descriptor, so what is parsed and what is probed is the inode checked, whatever the
 * path turns into meanwhile.
 *
 * Kernel names come with the records (a name event the first time a (pid, pointer) is seen);
 * when one is missing (the BPF side could not read it, or its event was dropped) the name is
 * read from /proc/PID/mem, at most AP_GA_NAME_MAX bytes. Both kinds are cached per (pid,
 * pointer): CUPTI keeps one string per kernel.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "activity.h"
#include "bpf/gpu_activity.h"
#include "gpu_activity.skel.h"
#include "lib/errbuf.h"
#include "lib/hash.h"
#include "lib/hashtab.h"
#include "lib/safe_open.h"

_Static_assert(sizeof(struct ap_ga_rec) == 88, "ap_ga_rec layout is ABI");
_Static_assert(sizeof(struct ap_ga_lib_stats) == 112, "ap_ga_lib_stats layout is ABI");
_Static_assert(sizeof(struct ap_ga_ev_corr) == 32, "ap_ga_ev_corr layout");
_Static_assert(sizeof(struct ap_ga_ev_act) == 96, "ap_ga_ev_act layout");
_Static_assert(sizeof(struct ap_ga_ev_name) == 272, "ap_ga_ev_name layout");
_Static_assert(AP_GA_KERNEL == AP_GPU_ACT_KERNEL && AP_GA_MEMCPY == AP_GPU_ACT_MEMCPY &&
		       AP_GA_MEMSET == AP_GPU_ACT_MEMSET && AP_GA_MEMORY == AP_GPU_ACT_MEMORY,
	       "record kinds are the model's");

#define MAX_ATTACHMENTS 4096 /* (file, pid) pairs attached */
#define MAX_NAMES 65536	     /* cached kernel names; beyond, the cache starts over */
#define MAX_LIB_PIDS 65536   /* processes whose library counters are kept */
#define NOTE_MAX (64u << 10) /* bytes of PT_NOTE read when recognising the library */

#define NOTE_NAME "Aperture"
#define NOTE_TYPE 0x41430001u
#define NOTE_DESC "cupti"

struct attachment {
	dev_t dev;
	ino_t ino;
	int pid; /* -1: every process */
	struct bpf_link *links[3];
};

struct name_entry {
	struct ap_hnode node;
	uint32_t pid;
	uint64_t ptr;
	char name[]; /* NUL-terminated, at most AP_GA_NAME_MAX bytes */
};

struct lib_entry {
	struct ap_hnode node;
	uint32_t pid;
	uint64_t dropped; /* rate_dropped + cupti_dropped, as last reported */
};

struct ap_gpu_activity_src {
	struct gpu_activity_bpf *skel;
	struct ring_buffer *rb;
	struct attachment *att;
	size_t natt;
	struct ap_htab names;
	struct ap_htab libs;
	struct ap_gpu_model *model; /* during ap_gpu_activity_consume */
	int err;		    /* the first model error during a consume */
	struct ap_gpu_activity_stats st;
};

/* ---- recognising the library ---- */

static int note_matches(const unsigned char *p, size_t len)
{
	size_t off = 0;

	while (off + sizeof(Elf64_Nhdr) <= len) {
		Elf64_Nhdr nh;
		size_t name_off, desc_off, next;

		memcpy(&nh, p + off, sizeof(nh));
		name_off = off + sizeof(nh);
		desc_off = name_off + (((size_t)nh.n_namesz + 3) & ~(size_t)3);
		next = desc_off + (((size_t)nh.n_descsz + 3) & ~(size_t)3);
		if (nh.n_namesz > len || nh.n_descsz > len || next > len || next <= off)
			return 0;
		if (nh.n_type == NOTE_TYPE && nh.n_namesz == sizeof(NOTE_NAME) &&
		    !memcmp(p + name_off, NOTE_NAME, sizeof(NOTE_NAME)) &&
		    nh.n_descsz >= sizeof(NOTE_DESC) &&
		    !memcmp(p + desc_off, NOTE_DESC, sizeof(NOTE_DESC)))
			return 1;
		off = next;
	}
	return 0;
}

bool ap_gpu_activity_is_inject_lib(int fd)
{
	Elf64_Ehdr eh;
	Elf64_Phdr ph;
	unsigned char *buf;
	int i, found = 0;

	if (fd < 0 || pread(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh))
		return false;
	if (memcmp(eh.e_ident, ELFMAG, SELFMAG) || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > 256)
		return false;
	for (i = 0; i < eh.e_phnum && !found; i++) {
		if (pread(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + (uint64_t)i * sizeof(ph))) !=
		    (ssize_t)sizeof(ph))
			return false;
		if (ph.p_type != PT_NOTE || ph.p_filesz == 0 || ph.p_filesz > NOTE_MAX)
			continue;
		buf = malloc(ph.p_filesz);
		if (!buf)
			return false;
		if (pread(fd, buf, ph.p_filesz, (off_t)ph.p_offset) == (ssize_t)ph.p_filesz)
			found = note_matches(buf, ph.p_filesz);
		free(buf);
	}
	return found;
}

static bool drop_lib(struct ap_hnode *n, void *ctx)
{
	(void)ctx;
	free(AP_CONTAINER_OF(n, struct lib_entry, node));
	return true;
}

/* ---- names ---- */

static uint64_t name_hash(uint32_t pid, uint64_t ptr)
{
	return ap_hash_mix64(ptr ^ ((uint64_t)pid << 48) ^ pid);
}

static struct name_entry *name_find(struct ap_gpu_activity_src *s, uint32_t pid, uint64_t ptr)
{
	struct ap_hnode *n;

	for (n = ap_htab_first(&s->names, name_hash(pid, ptr)); n; n = ap_htab_next(n)) {
		struct name_entry *e = AP_CONTAINER_OF(n, struct name_entry, node);

		if (e->pid == pid && e->ptr == ptr)
			return e;
	}
	return NULL;
}

static bool drop_all(struct ap_hnode *n, void *ctx)
{
	(void)ctx;
	free(AP_CONTAINER_OF(n, struct name_entry, node));
	return true;
}

static struct name_entry *name_add(struct ap_gpu_activity_src *s, uint32_t pid, uint64_t ptr,
				   const char *name, size_t len)
{
	struct name_entry *e;

	if (len >= AP_GA_NAME_MAX)
		len = AP_GA_NAME_MAX - 1;
	if (s->names.n >= MAX_NAMES)
		ap_htab_sweep(&s->names, drop_all, NULL); /* start over: names are re-sent */
	e = malloc(sizeof(*e) + len + 1);
	if (!e)
		return NULL;
	e->pid = pid;
	e->ptr = ptr;
	memcpy(e->name, name, len);
	e->name[len] = '\0';
	if (ap_htab_insert(&s->names, &e->node, name_hash(pid, ptr))) {
		free(e);
		return NULL;
	}
	return e;
}

/* The name at `ptr` in process `pid`, from /proc/PID/mem (a path we build from a number;
 * /proc is ours), at most AP_GA_NAME_MAX bytes. */
static struct name_entry *name_read(struct ap_gpu_activity_src *s, uint32_t pid, uint64_t ptr)
{
	char path[32], buf[AP_GA_NAME_MAX];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%u/mem", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return NULL;
	n = pread(fd, buf, sizeof(buf) - 1, (off_t)ptr);
	close(fd);
	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	return name_add(s, pid, ptr, buf, strnlen(buf, (size_t)n));
}

/* ---- events ---- */

static const char *api_name(uint32_t domain, uint32_t cbid)
{
	/* CUPTI's callback ids of the calls the library enables (cupti_*_cbid.h) */
	if (domain == 2) {
		switch (cbid) {
		case 211: return "cudaLaunchKernel";
		case 214: return "cudaLaunchKernel_ptsz";
		case 505: return "__cudaLaunchKernel";
		case 506: return "__cudaLaunchKernel_ptsz";
		case 430: return "cudaLaunchKernelExC";
		case 431: return "cudaLaunchKernelExC_ptsz";
		case 269: return "cudaLaunchCooperativeKernel";
		case 270: return "cudaLaunchCooperativeKernel_ptsz";
		case 311: return "cudaGraphLaunch";
		case 312: return "cudaGraphLaunch_ptsz";
		case 31: return "cudaMemcpy";
		case 41: return "cudaMemcpyAsync";
		case 49: return "cudaMemset";
		case 51: return "cudaMemsetAsync";
		default: return "cuda (CUPTI runtime callback)";
		}
	}
	switch (cbid) {
	case 307: return "cuLaunchKernel";
	case 442: return "cuLaunchKernel_ptsz";
	case 652: return "cuLaunchKernelEx";
	case 653: return "cuLaunchKernelEx_ptsz";
	case 514: return "cuGraphLaunch";
	case 515: return "cuGraphLaunch_ptsz";
	case 305: return "cuMemcpy";
	case 306: return "cuMemcpyAsync";
	default: return "cu (CUPTI driver callback)";
	}
}

static uint64_t lib_hash(uint32_t pid)
{
	return ap_hash_mix64(pid);
}

static void on_lib_stats(struct ap_gpu_activity_src *s, uint32_t pid,
			 const struct ap_ga_lib_stats *ls)
{
	uint64_t dropped = ls->rate_dropped + ls->cupti_dropped;
	struct lib_entry *e = NULL;
	struct ap_hnode *n;

	for (n = ap_htab_first(&s->libs, lib_hash(pid)); n; n = ap_htab_next(n)) {
		struct lib_entry *c = AP_CONTAINER_OF(n, struct lib_entry, node);

		if (c->pid == pid) {
			e = c;
			break;
		}
	}
	if (!e && s->libs.n < MAX_LIB_PIDS) {
		e = calloc(1, sizeof(*e));
		if (e) {
			e->pid = pid;
			if (ap_htab_insert(&s->libs, &e->node, lib_hash(pid))) {
				free(e);
				e = NULL;
			}
		}
	}
	if (!e) { /* cannot remember it: count what it says once */
		s->st.lib_dropped += dropped;
		return;
	}
	/* cumulative in the library: add what is new since its last report */
	if (dropped > e->dropped)
		s->st.lib_dropped += dropped - e->dropped;
	e->dropped = dropped;
}

static int on_event(void *ctx, void *data, size_t size)
{
	struct ap_gpu_activity_src *s = ctx;
	const struct ap_ga_ev_hdr *h = data;
	int err = 0;

	if (size < sizeof(*h))
		return 0;
	switch (h->type) {
	case AP_GA_EV_CORR: {
		const struct ap_ga_ev_corr *e = data;
		struct ap_gpu_call c = { 0 };

		if (size < sizeof(*e))
			return 0;
		c.kind = AP_GPU_CALL_CORRELATION;
		c.ts_ns = e->ts_ns;
		c.pid = h->pid;
		c.tid = e->tid;
		c.correlation = e->correlation;
		c.cbid = e->cbid;
		c.api = api_name(e->domain, e->cbid);
		c.flags = e->domain == 1 ? AP_GPU_F_DRIVER_API : 0;
		s->st.correlations++;
		err = ap_gpu_model_add_call(s->model, &c);
		break;
	}
	case AP_GA_EV_ACT: {
		const struct ap_ga_ev_act *e = data;
		const struct ap_ga_rec *r = &e->rec;
		struct ap_gpu_activity a = { 0 };
		struct name_entry *ne = NULL;

		if (size < sizeof(*e))
			return 0;
		a.start_ns = r->start_ns;
		a.end_ns = r->end_ns;
		a.correlation = r->correlation;
		a.bytes = r->bytes;
		a.pid = h->pid;
		a.kind = r->kind;
		a.device = r->device;
		a.stream = r->stream;
		a.copy_dir = r->copy_dir;
		memcpy(a.grid, r->grid, sizeof(a.grid));
		memcpy(a.block, r->block, sizeof(a.block));
		if (r->kind == AP_GA_KERNEL && r->name_ptr) {
			ne = name_find(s, h->pid, r->name_ptr);
			if (!ne)
				ne = name_read(s, h->pid, r->name_ptr);
			a.name = ne ? ne->name : NULL;
		}
		s->st.records++;
		err = ap_gpu_model_add_activity(s->model, &a);
		break;
	}
	case AP_GA_EV_NAME: {
		const struct ap_ga_ev_name *e = data;

		if (size < sizeof(*e))
			return 0;
		if (!name_find(s, h->pid, e->ptr))
			name_add(s, h->pid, e->ptr, e->name, strnlen(e->name, sizeof(e->name)));
		break;
	}
	case AP_GA_EV_STATS: {
		const struct ap_ga_ev_stats *e = data;

		if (size < sizeof(*e))
			return 0;
		on_lib_stats(s, h->pid, &e->s);
		break;
	}
	default:
		break;
	}
	if (err && !s->err)
		s->err = err;
	return 0;
}

/* ---- the API ---- */

struct ap_gpu_activity_src *ap_gpu_activity_open(char *err, size_t errlen)
{
	struct ap_gpu_activity_src *s = calloc(1, sizeof(*s));
	int e;

	if (!s) {
		ap_errf(err, errlen, -ENOMEM, "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	s->skel = gpu_activity_bpf__open_and_load();
	if (!s->skel) {
		e = errno ? errno : EINVAL;
		ap_errf(err, errlen, -e,
			"cannot load the GPU activity BPF programs (gpu_activity.bpf.o): %s",
			strerror(e));
		goto fail;
	}
	s->rb = ring_buffer__new(bpf_map__fd(s->skel->maps.ga_events), on_event, s, NULL);
	if (!s->rb) {
		e = errno ? errno : EINVAL;
		ap_errf(err, errlen, -e, "cannot open the GPU activity ring buffer: %s",
			strerror(e));
		goto fail;
	}
	return s;
fail:
	ap_gpu_activity_free(s);
	errno = e;
	return NULL;
}

void ap_gpu_activity_free(struct ap_gpu_activity_src *s)
{
	size_t i;
	int j;

	if (!s)
		return;
	for (i = 0; i < s->natt; i++)
		for (j = 0; j < 3; j++)
			bpf_link__destroy(s->att[i].links[j]);
	free(s->att);
	ring_buffer__free(s->rb);
	gpu_activity_bpf__destroy(s->skel);
	ap_htab_sweep(&s->names, drop_all, NULL);
	ap_htab_release(&s->names);
	ap_htab_sweep(&s->libs, drop_lib, NULL);
	ap_htab_release(&s->libs);
	free(s);
}

/* "/proc/PID/map_files/START-END", nothing else */
static bool is_map_files(const char *path)
{
	const char *p = path + 6;
	size_t n;

	if (strncmp(path, "/proc/", 6))
		return false;
	n = strspn(p, "0123456789");
	if (!n || strncmp(p + n, "/map_files/", 11))
		return false;
	p += n + 11;
	n = strspn(p, "0123456789abcdef");
	if (!n || p[n] != '-')
		return false;
	p += n + 1;
	n = strspn(p, "0123456789abcdef");
	return n && !p[n];
}

int ap_gpu_activity_attach(struct ap_gpu_activity_src *s, int pid, const char *path, char *err,
			   size_t errlen)
{
	static const char *const probe[3] = { "correlation", "activity", "stats" };
	struct bpf_program *prog[3];
	struct attachment a = { 0 }, *grown;
	char fdpath[64];
	struct stat st;
	size_t i;
	int fd, j, ret = 0, flags;

	if (!s || !path || pid < -1 || pid == 0)
		return ap_errf(err, errlen, -EINVAL, "attach: bad arguments (pid %d)", pid);
	/* /proc/PID/map_files/... is a magic link to the mapped file itself: allowed there
	 * only; any other path must not end in a symlink */
	flags = is_map_files(path) ? AP_OPEN_MAGIC : AP_OPEN_NOFOLLOW;
	fd = ap_open_untrusted(AT_FDCWD, path, flags, 1ull << 30, &st);
	if (fd < 0)
		return ap_errf(err, errlen, fd, "cannot open %s: %s", path, strerror(-fd));
	for (i = 0; i < s->natt; i++)
		if (s->att[i].dev == st.st_dev && s->att[i].ino == st.st_ino &&
		    (s->att[i].pid == pid || s->att[i].pid == -1))
			goto out; /* already attached */
	if (!ap_gpu_activity_is_inject_lib(fd)) {
		ret = ap_errf(err, errlen, -ENOEXEC,
			      "%s is not Aperture's CUPTI injection library (no Aperture ELF note)",
			      path);
		goto out;
	}
	if (s->natt >= MAX_ATTACHMENTS) {
		s->st.attach_failed++;
		ret = ap_errf(err, errlen, -ENOSPC,
			      "%s: %d injection-library attachments already; not attaching more",
			      path, MAX_ATTACHMENTS);
		goto out;
	}
	a.dev = st.st_dev;
	a.ino = st.st_ino;
	a.pid = pid;
	prog[0] = s->skel->progs.ga_correlation;
	prog[1] = s->skel->progs.ga_activity;
	prog[2] = s->skel->progs.ga_lib_stats;
	/* libbpf parses and probes the inode checked above, not whatever the path is now */
	snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", fd);
	for (j = 0; j < 3; j++) {
		a.links[j] = bpf_program__attach_usdt(prog[j], pid, fdpath, "aperture", probe[j],
						      NULL);
		if (!a.links[j]) {
			ret = -(errno ? errno : EINVAL);
			ap_errf(err, errlen, ret, "cannot attach to the USDT probe aperture:%s in %s: %s",
				probe[j], path, strerror(-ret));
			while (j-- > 0)
				bpf_link__destroy(a.links[j]);
			s->st.attach_failed++;
			goto out;
		}
	}
	grown = realloc(s->att, (s->natt + 1) * sizeof(*s->att));
	if (!grown) {
		for (j = 0; j < 3; j++)
			bpf_link__destroy(a.links[j]);
		s->st.attach_failed++;
		ret = ap_errf(err, errlen, -ENOMEM, "out of memory");
		goto out;
	}
	s->att = grown;
	s->att[s->natt++] = a;
out:
	close(fd);
	return ret;
}

int ap_gpu_activity_detach_pid(struct ap_gpu_activity_src *s, int pid)
{
	size_t i, kept = 0;
	int j, n = 0;

	if (!s || pid <= 0)
		return 0;
	for (i = 0; i < s->natt; i++) {
		if (s->att[i].pid == pid) {
			for (j = 0; j < 3; j++)
				bpf_link__destroy(s->att[i].links[j]);
			n++;
			continue;
		}
		s->att[kept++] = s->att[i];
	}
	s->natt = kept;
	return n;
}

int ap_gpu_activity_poll_fd(struct ap_gpu_activity_src *s)
{
	return s && s->rb ? ring_buffer__epoll_fd(s->rb) : -EINVAL;
}

int ap_gpu_activity_consume(struct ap_gpu_activity_src *s, struct ap_gpu_model *m)
{
	int n, e;

	if (!s || !m)
		return -EINVAL;
	s->model = m;
	s->err = 0;
	n = ring_buffer__consume(s->rb);
	s->model = NULL;
	e = s->err;
	s->err = 0;
	if (n < 0)
		return n;
	return e;
}

void ap_gpu_activity_get_stats(const struct ap_gpu_activity_src *s,
			       struct ap_gpu_activity_stats *out)
{
	/* what the BPF side could not queue: a full ring buffer, a batch or stats block it
	 * could not read, a library of another ABI (its batches are refused whole) */
	static const __u32 lost[] = { AP_GA_STAT_RINGBUF_DROPS, AP_GA_STAT_READ_FAULTS,
				      AP_GA_STAT_BAD_ABI };
	int ncpu, fd, c;
	__u64 *vals;
	size_t i;

	memset(out, 0, sizeof(*out));
	if (!s)
		return;
	*out = s->st;
	ncpu = libbpf_num_possible_cpus();
	if (ncpu <= 0)
		return;
	vals = calloc((size_t)ncpu, sizeof(*vals));
	if (!vals)
		return;
	fd = bpf_map__fd(s->skel->maps.ga_stats);
	for (i = 0; i < sizeof(lost) / sizeof(lost[0]); i++)
		if (!bpf_map_lookup_elem(fd, &lost[i], vals))
			for (c = 0; c < ncpu; c++)
				out->ringbuf_drops += vals[c];
	free(vals);
}
