// SPDX-License-Identifier: MIT
/*
 * Per-process mapping tables in `unwind_pids` (plain hash: (pid, chunk) -> up to
 * AP_UNWIND_CHUNK sorted mappings), the public API and the maps' lifecycle. File tables and
 * the compile worker are in unwinder_files.c. See unwinder.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "unwinder_internal.h"

_Static_assert(sizeof(struct ap_unwind_row) == 8, "ap_unwind_row layout changed");
_Static_assert(sizeof(struct ap_unwind_mapping) == 32, "ap_unwind_mapping layout changed");
_Static_assert(sizeof(struct ap_unwind_pid_key) == 8, "ap_unwind_pid_key layout changed");
_Static_assert(sizeof(struct ap_unwind_pid_chunk) == 8 + 32 * AP_UNWIND_CHUNK,
	       "ap_unwind_pid_chunk layout changed");

#define DEFAULT_MAX_TABLE_BYTES (128ULL << 20)
#define DEFAULT_IDLE_TABLE_BYTES (8ULL << 20)
/* Re-scans asked for by BPF (a pc outside every known mapping) come at most every 20 ms a
 * process (AP_RESCAN_INTERVAL_NS); this only stops a burst queued meanwhile. It must be
 * short: the scan at exec sees only the executable and ld.so, and the libraries ld.so maps
 * a millisecond later are needed before a short-lived process is gone. */
#define RESCAN_MIN_NS (5ULL * 1000 * 1000)
#define REFRESH_MIN_NS (5ULL * 1000 * 1000)
#define GC_INTERVAL_NS (5ULL * 1000 * 1000 * 1000)
#define CHUNK_BYTES (sizeof(struct ap_unwind_pid_chunk) + 96) /* value + hash element */


uint64_t ap_uw_map_memlock(int fd, uint64_t fallback)
{
	char path[64], line[128];
	uint64_t v = fallback;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "re");
	if (!f)
		return fallback;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "memlock: %" SCNu64, &v) == 1)
			break;
	fclose(f);
	return v;
}

/* ---- reading /proc/PID/maps ---- */

struct scan {
	struct xmap *maps;
	size_t n, cap;
	uint64_t hash;
};

static int scan_cb(const struct ap_maps_entry *e, void *ctx)
{
	struct scan *s = ctx;
	struct xmap *m;

	if (e->perms[2] != 'x' || e->start >= 0xffffffffff600000ULL) /* [vsyscall] */
		return 0;
	if (s->n == s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 64;
		struct xmap *nm = realloc(s->maps, ncap * sizeof(*nm));

		if (!nm)
			return -ENOMEM;
		s->maps = nm;
		s->cap = ncap;
	}
	m = &s->maps[s->n++];
	memset(m, 0, sizeof(*m));
	m->start = e->start;
	m->end = e->end;
	m->offset = e->offset;
	m->dev = ((uint64_t)e->dev_major << 32) | e->dev_minor;
	m->ino = e->inode;
	if (!strcmp(e->path, "[vdso]"))
		m->kind = XMAP_VDSO;
	else if (e->inode == 0 || e->path[0] != '/')
		m->kind = XMAP_ANON; /* JIT code, [stack]...: frame pointers */
	else
		m->kind = XMAP_FILE;
	s->hash = ap_hash_bytes(m, sizeof(*m), s->hash);
	return 0;
}

/* ---- processes ---- */

static uint64_t pid_hash(int pid)
{
	return ap_hash_bytes(&pid, sizeof(pid), 2);
}

struct upid *ap_uw_pid_find(struct ap_unwinder *u, int pid)
{
	for (struct ap_hnode *n = ap_htab_first(&u->pids, pid_hash(pid)); n; n = ap_htab_next(n)) {
		struct upid *p = AP_CONTAINER_OF(n, struct upid, node);

		if (p->pid == pid)
			return p;
	}
	return NULL;
}

static void pid_release_maps(struct ap_unwinder *u, struct upid *p)
{
	for (uint32_t i = 0; i < p->nmaps; i++)
		ap_uw_table_put(u, p->mtab[i]);
	free(p->maps);
	free(p->mtab);
	p->maps = NULL;
	p->mtab = NULL;
	p->nmaps = 0;
}

/* Write the process's mapping table into unwind_pids from p->maps and their tables' current
 * state (tables still compiling: frame pointers until ap_uw_table_ready). */
static int install(struct ap_unwinder *u, struct upid *p)
{
	struct ap_unwind_pid_chunk ch;
	struct ap_unwind_pid_key key = { .pid = (__u32)p->pid };
	uint32_t nchunks = (p->nmaps + AP_UNWIND_CHUNK - 1) / AP_UNWIND_CHUNK;

	if (nchunks > AP_UNWIND_PID_CHUNKS)
		nchunks = AP_UNWIND_PID_CHUNKS; /* the rest: unknown pcs, frame pointers */
	for (uint32_t c = 0; c < nchunks; c++) {
		memset(&ch, 0, sizeof(ch));
		ch.chunks = nchunks;
		for (uint32_t i = c * AP_UNWIND_CHUNK; i < p->nmaps && ch.n < AP_UNWIND_CHUNK;
		     i++) {
			const struct xmap *x = &p->maps[i];
			const struct utable *t = p->mtab[i];
			struct ap_unwind_mapping *m = &ch.m[ch.n++];
			uint64_t bias;

			m->start = x->start;
			m->end = x->end;
			m->file_id = AP_UNWIND_NO_FILE;
			if (t && t->state == TABLE_PENDING)
				m->flags = AP_UNWIND_MAP_PENDING; /* samples: unwound later */
			if (t && t->slot != AP_UNWIND_NO_FILE) {
				struct ap_cfi_table view = { .segs = t->segs, .nsegs = t->nsegs,
							     .base = t->base };

				if (!ap_cfi_table_bias(&view, x->start, x->offset, &bias)) {
					m->bias = bias;
					m->file_id = (__u16)t->slot;
					m->nbuckets = t->nbuckets;
					m->shift = t->shift;
				}
			}
		}
		key.chunk = c;
		if (bpf_map_update_elem(u->pids_fd, &key, &ch, BPF_ANY))
			return -errno;
	}
	for (uint32_t c = nchunks; c < p->nchunks; c++) {
		key.chunk = c;
		bpf_map_delete_elem(u->pids_fd, &key);
	}
	u->st.pid_table_bytes += (uint64_t)nchunks * CHUNK_BYTES;
	u->st.pid_table_bytes -= (uint64_t)p->nchunks * CHUNK_BYTES;
	p->nchunks = nchunks;
	return 0;
}

struct refresh_ctx {
	struct ap_unwinder *u;
	struct utable *t;
};

static bool refresh_cb(struct ap_hnode *n, void *ctx)
{
	struct upid *p = AP_CONTAINER_OF(n, struct upid, node);
	struct refresh_ctx *rc = ctx;

	for (uint32_t i = 0; i < p->nmaps && !p->exited; i++) {
		if (p->mtab[i] == rc->t) {
			install(rc->u, p);
			break;
		}
	}
	return false;
}

void ap_uw_table_ready(struct ap_unwinder *u, struct utable *t)
{
	struct refresh_ctx rc = { u, t };

	ap_htab_sweep(&u->pids, refresh_cb, &rc);
}

/* Its entries out of unwind_pids (the process is gone, or its pid is being reused). */
static void pid_unpublish(struct ap_unwinder *u, struct upid *p)
{
	struct ap_unwind_pid_key key = { .pid = (__u32)p->pid };

	for (uint32_t c = 0; c < p->nchunks; c++) {
		key.chunk = c;
		bpf_map_delete_elem(u->pids_fd, &key);
	}
	u->st.pid_table_bytes -= (uint64_t)p->nchunks * CHUNK_BYTES;
	p->nchunks = 0;
}

static void pid_remove(struct ap_unwinder *u, struct upid *p)
{
	pid_unpublish(u, p);
	ap_htab_remove(&u->pids, &p->node);
	u->st.pids_live--;
	pid_release_maps(u, p);
	free(p);
}

/* Resolve every mapping of a scan to its table (taking references). */
static int resolve(struct ap_unwinder *u, int pid, struct scan *s, struct utable ***out)
{
	struct utable **mtab = calloc(s->n ? s->n : 1, sizeof(*mtab));

	if (!mtab)
		return -ENOMEM;
	for (size_t i = 0; i < s->n; i++) {
		const struct xmap *x = &s->maps[i];
		struct utable *t = NULL;

		if (x->kind == XMAP_VDSO)
			t = ap_uw_table_for_vdso(u);
		else if (x->kind == XMAP_FILE)
			t = ap_uw_table_for_file(u, pid, x);
		if (t)
			ap_uw_table_get(u, t);
		mtab[i] = t;
	}
	*out = mtab;
	return 0;
}

/* (Re)load the tables of pid. `rescan`: asked for by BPF (counted); `min_ns`: not again if
 * the last scan is more recent than that. Returns 1 (tables changed), 0 or -errno. */
static int load(struct ap_unwinder *u, int pid, bool rescan, uint64_t min_ns)
{
	struct scan s = { 0 };
	struct upid *p;
	struct utable **mtab = NULL;
	uint64_t now = ap_mono_ns();
	int err;

	p = ap_uw_pid_find(u, pid);
	u->st.rescans += rescan;
	if (p && !p->exited && min_ns && now - p->scanned_ns < min_ns)
		return 0;
	/* tests: as if the process had always been gone by the time its mappings changed */
	if (p && !p->exited && u->freeze_maps)
		return 0;
	err = ap_maps_read(pid, scan_cb, &s);
	if (!err && s.n == 0)
		err = -ESRCH;
	if (err) {
		u->st.pids_missed += err == -ESRCH || err == -ENOENT;
		free(s.maps);
		return err;
	}
	if (p && p->exited) { /* alive again: the pid was reused */
		p->exited = false;
		p->maps_hash = 0;
	}
	if (p && p->maps_hash == s.hash) { /* e.g. the first sample of a pid loaded at exec */
		u->st.rescans_unchanged += rescan;
		p->scanned_ns = now;
		free(s.maps);
		return 0;
	}
	err = resolve(u, pid, &s, &mtab);
	if (err) {
		free(s.maps);
		return err;
	}
	if (!p) {
		p = calloc(1, sizeof(*p));
		if (!p || ap_htab_insert(&u->pids, &p->node, pid_hash(pid))) {
			free(p);
			for (size_t i = 0; i < s.n; i++)
				ap_uw_table_put(u, mtab[i]);
			free(mtab);
			free(s.maps);
			return -ENOMEM;
		}
		p->pid = pid;
		u->st.pids_live++;
	}
	/* the new tables first, then release what the old ones used */
	pid_release_maps(u, p);
	p->maps = s.maps;
	p->mtab = mtab;
	p->nmaps = (uint32_t)s.n;
	p->maps_hash = s.hash;
	p->scanned_ns = now;
	err = install(u, p);
	if (err) {
		pid_remove(u, p);
		return err;
	}
	u->st.pids_loaded++;
	return 1;
}

/* load() under the lock; `forget`: the process exec'd, its old mappings go first (even if
 * the new ones cannot be read: it has none then, rather than the old image's). */
static int locked_load(struct ap_unwinder *u, int pid, bool rescan, uint64_t min_ns, bool forget)
{
	struct upid *p;
	int err;

	if (!u)
		return -EINVAL;
	pthread_mutex_lock(&u->lock);
	p = forget && !u->freeze_maps ? ap_uw_pid_find(u, pid) : NULL;
	if (p) {
		pid_unpublish(u, p);
		pid_release_maps(u, p);
		p->maps_hash = 0;
	}
	err = load(u, pid, rescan, min_ns);
	pthread_mutex_unlock(&u->lock);
	return err;
}

int ap_unwinder_load_pid(struct ap_unwinder *u, int pid)
{
	return locked_load(u, pid, false, 0, false);
}

int ap_unwinder_refresh_pid(struct ap_unwinder *u, int pid)
{
	return locked_load(u, pid, false, REFRESH_MIN_NS, false);
}

int ap_unwinder_rescan_pid(struct ap_unwinder *u, int pid)
{
	return locked_load(u, pid, true, RESCAN_MIN_NS, false);
}

int ap_unwinder_exec_pid(struct ap_unwinder *u, int pid)
{
	return locked_load(u, pid, false, 0, true);
}

int ap_unwinder_add_mapping(struct ap_unwinder *u, int pid, uint64_t start, uint64_t end,
			    uint64_t offset, uint32_t kdev, uint64_t ino)
{
	uint32_t major = kdev >> 20, minor = kdev & 0xfffff;
	struct utable **mtab;
	struct xmap *maps;
	struct utable *t;
	struct upid *p;
	uint32_t i;
	int ret = 0;

	if (!u)
		return -EINVAL;
	pthread_mutex_lock(&u->lock);
	p = ap_uw_pid_find(u, pid);
	if (!p || end <= start)
		goto out;
	for (i = 0; i < p->nmaps; i++)
		if (start < p->maps[i].end && end > p->maps[i].start)
			goto out; /* known (or overlapping: then not ours to guess) */
	t = ap_uw_table_by_inode(u, makedev(major, minor), ino);
	if (!t)
		goto out;
	maps = realloc(p->maps, (p->nmaps + 1) * sizeof(*maps));
	if (maps)
		p->maps = maps;
	mtab = maps ? realloc(p->mtab, (p->nmaps + 1) * sizeof(*mtab)) : NULL;
	if (!mtab) {
		ret = -ENOMEM;
		goto out;
	}
	p->mtab = mtab;
	for (i = p->nmaps; i > 0 && p->maps[i - 1].start > start; i--) {
		p->maps[i] = p->maps[i - 1];
		p->mtab[i] = p->mtab[i - 1];
	}
	memset(&p->maps[i], 0, sizeof(p->maps[i]));
	p->maps[i].start = start;
	p->maps[i].end = end;
	p->maps[i].offset = offset;
	p->maps[i].dev = ((uint64_t)major << 32) | minor;
	p->maps[i].ino = ino;
	p->maps[i].kind = XMAP_FILE;
	p->mtab[i] = t;
	ap_uw_table_get(u, t);
	p->nmaps++;
	p->maps_hash = 0; /* not what /proc says: the next scan replaces it */
	if (!p->exited)
		install(u, p);
	u->st.mappings_added++;
	ret = 1;
out:
	pthread_mutex_unlock(&u->lock);
	return ret;
}

void ap_unwinder_pid_exited(struct ap_unwinder *u, int pid)
{
	struct upid *p;

	if (!u)
		return;
	pthread_mutex_lock(&u->lock);
	p = ap_uw_pid_find(u, pid);
	if (p && !p->exited) {
		/* out of the kernel now; the rest stays for samples still to be unwound here
		 * (ap_unwinder_replay) until two ap_unwinder_gc() calls later */
		pid_unpublish(u, p);
		p->exited = true;
		p->exited_gen = u->gc_gen;
	}
	pthread_mutex_unlock(&u->lock);
}

struct gc_ctx {
	struct ap_unwinder *u;
	int *dead;
	bool check_proc;
};

static bool collect_dead(struct ap_hnode *n, void *ctx)
{
	struct upid *p = AP_CONTAINER_OF(n, struct upid, node);
	struct gc_ctx *g = ctx;
	char path[32];

	if (p->exited) {
		if (g->u->gc_gen >= p->exited_gen + 2)
			*g->dead++ = p->pid;
		return false;
	}
	if (!g->check_proc)
		return false;
	snprintf(path, sizeof(path), "/proc/%d", p->pid);
	if (access(path, F_OK) == 0 || errno != ENOENT)
		return false;
	*g->dead++ = p->pid;
	return false;
}

void ap_unwinder_gc(struct ap_unwinder *u)
{
	uint64_t now = ap_mono_ns();
	struct gc_ctx g = { u, NULL, false };
	int *dead;

	if (!u)
		return;
	pthread_mutex_lock(&u->lock);
	u->gc_gen++;
	/* exit events can be lost: look for vanished processes now and then */
	if (now >= u->next_gc_ns) {
		u->next_gc_ns = now + GC_INTERVAL_NS;
		g.check_proc = true;
	}
	dead = calloc(u->pids.n + 1, sizeof(*dead));
	if (!dead)
		goto out;
	g.dead = dead;
	ap_htab_sweep(&u->pids, collect_dead, &g);
	for (int *d = dead; d < g.dead; d++) {
		struct upid *p = ap_uw_pid_find(u, *d);

		if (p && p->exited) {
			pid_remove(u, p);
		} else if (p) { /* vanished without an exit event: as if it had just exited */
			pid_unpublish(u, p);
			p->exited = true;
			p->exited_gen = u->gc_gen;
		}
	}
	free(dead);
out:
	ap_uw_tables_trim(u);
	pthread_mutex_unlock(&u->lock);
}

int ap_unwinder_wait_idle(struct ap_unwinder *u, unsigned int timeout_ms)
{
	struct timespec ts;
	int err = 0;

	if (!u)
		return -EINVAL;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&u->lock);
	while (u->busy && !err)
		err = pthread_cond_timedwait(&u->idle, &u->lock, &ts);
	pthread_mutex_unlock(&u->lock);
	return err ? -ETIMEDOUT : 0;
}

/* ---- lifecycle ---- */

struct ap_unwinder *ap_unwinder_new(const struct ap_unwinder_opts *opts)
{
	LIBBPF_OPTS(bpf_map_create_opts, fo, .map_flags = BPF_F_INNER_MAP | BPF_F_MMAPABLE);
	LIBBPF_OPTS(bpf_map_create_opts, outer);
	LIBBPF_OPTS(bpf_map_create_opts, po, .map_flags = BPF_F_NO_PREALLOC);
	struct ap_unwinder *u = calloc(1, sizeof(*u));
	int inner = -1, err;

	if (!u)
		return NULL;
	u->files_fd = u->pids_fd = -1;
	pthread_mutex_init(&u->lock, NULL);
	pthread_cond_init(&u->wake, NULL);
	pthread_cond_init(&u->idle, NULL);
	pthread_cond_init(&u->install_wake, NULL);
	u->freeze_maps = getenv("AP_TEST_FREEZE_MAPS") != NULL;
	u->max_bytes = opts && opts->max_table_bytes ? opts->max_table_bytes :
						       DEFAULT_MAX_TABLE_BYTES;
	u->idle_max = opts && opts->idle_table_bytes ? opts->idle_table_bytes :
						       DEFAULT_IDLE_TABLE_BYTES;
	/* without a usable cache directory every table is compiled, as always */
	ap_uw_cache_init(u, opts ? opts->cache_dir : NULL);
	u->free_slots = calloc(AP_UNWIND_MAX_FILES, sizeof(*u->free_slots));
	if (!u->free_slots)
		goto fail_errno;
	for (uint32_t i = 0; i < AP_UNWIND_MAX_FILES; i++)
		u->free_slots[i] = AP_UNWIND_MAX_FILES - 1 - i; /* low slots first */
	u->nfree = AP_UNWIND_MAX_FILES;

	/* the template: the outer map accepts inner arrays of any size with these flags */
	inner = bpf_map_create(BPF_MAP_TYPE_ARRAY, "ap_unwind_tmpl", sizeof(__u32),
			       sizeof(struct ap_unwind_row), 1, &fo);
	if (inner < 0)
		goto fail_errno;
	outer.inner_map_fd = inner;
	u->files_fd = bpf_map_create(BPF_MAP_TYPE_ARRAY_OF_MAPS, "unwind_files", sizeof(__u32),
				     sizeof(__u32), AP_UNWIND_MAX_FILES, &outer);
	if (u->files_fd < 0)
		goto fail_errno;
	close(inner);
	inner = -1;
	u->pids_fd = bpf_map_create(BPF_MAP_TYPE_HASH, "unwind_pids",
				    sizeof(struct ap_unwind_pid_key),
				    sizeof(struct ap_unwind_pid_chunk), AP_UNWIND_MAX_CHUNKS, &po);
	if (u->pids_fd < 0)
		goto fail_errno;
	err = ap_uw_worker_start(u);
	if (err) {
		errno = -err;
		goto fail_errno;
	}
	return u;
fail_errno:
	err = errno;
	if (inner >= 0)
		close(inner);
	ap_unwinder_free(u);
	errno = err == EINVAL ? ENOTSUP : err;
	return NULL;
}

int ap_unwinder_bind(struct ap_unwinder *u, struct bpf_object *obj)
{
	struct bpf_map *files = bpf_object__find_map_by_name(obj, "unwind_files");
	struct bpf_map *pids = bpf_object__find_map_by_name(obj, "unwind_pids");

	if (!u || !files || !pids)
		return -ENOENT;
	if (bpf_map__reuse_fd(files, u->files_fd) || bpf_map__reuse_fd(pids, u->pids_fd))
		return -errno;
	return 0;
}

static bool free_pid(struct ap_hnode *n, void *ctx)
{
	struct upid *p = AP_CONTAINER_OF(n, struct upid, node);

	free(p->maps);
	free(p->mtab);
	free(p);
	return true;
}

void ap_unwinder_free(struct ap_unwinder *u)
{
	if (!u)
		return;
	ap_uw_worker_stop(u);
	/* closing the outer maps frees every inner one: no per-entry deletes needed */
	if (u->files_fd >= 0)
		close(u->files_fd);
	if (u->pids_fd >= 0)
		close(u->pids_fd);
	ap_htab_sweep(&u->pids, free_pid, NULL);
	ap_uw_tables_free(u);
	ap_htab_release(&u->pids);
	ap_htab_release(&u->aliases);
	ap_htab_release(&u->by_bid);
	free(u->free_slots);
	pthread_cond_destroy(&u->idle);
	pthread_cond_destroy(&u->install_wake);
	pthread_cond_destroy(&u->wake);
	pthread_mutex_destroy(&u->lock);
	free(u);
}

void ap_unwinder_get_stats(const struct ap_unwinder *u, struct ap_unwinder_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!u)
		return;
	pthread_mutex_lock((pthread_mutex_t *)&u->lock);
	*out = u->st;
	pthread_mutex_unlock((pthread_mutex_t *)&u->lock);
	out->cache_untrusted = __atomic_load_n(&u->cache_untrusted, __ATOMIC_RELAXED);
}

int ap_unwind_read_bpf_stats(int fd, uint64_t *out)
{
	int ncpus = libbpf_num_possible_cpus();
	__u64 *vals;

	memset(out, 0, AP_UNWIND_STAT_MAX * sizeof(*out));
	if (ncpus <= 0)
		return ncpus ? ncpus : -EINVAL;
	vals = calloc((size_t)ncpus, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	for (__u32 i = 0; i < AP_UNWIND_STAT_MAX; i++) {
		if (bpf_map_lookup_elem(fd, &i, vals))
			continue;
		for (int c = 0; c < ncpus; c++)
			out[i] += vals[c];
	}
	free(vals);
	return 0;
}

const char *ap_unwind_stat_name(unsigned int stat)
{
	static const char *const names[AP_UNWIND_STAT_MAX] = {
		[AP_UNWIND_STAT_STACKS] = "stacks_user_walked",
		[AP_UNWIND_STAT_COMPLETE] = "stacks_complete",
		[AP_UNWIND_STAT_COMPLETE_FP] = "stacks_complete_with_fp_frames",
		[AP_UNWIND_STAT_TRUNCATED] = "stacks_truncated_depth",
		[AP_UNWIND_STAT_FAIL_READ] = "stacks_unwind_failed_read",
		[AP_UNWIND_STAT_FAIL_CFA] = "stacks_unwind_failed_bad_frame",
		[AP_UNWIND_STAT_FAIL_NO_MAPPING] = "stacks_unwind_failed_unknown_pc",
		[AP_UNWIND_STAT_NO_TABLES] = "stacks_fp_only_no_tables",
		[AP_UNWIND_STAT_FRAMES] = "unwind_frames",
		[AP_UNWIND_STAT_FRAMES_FP] = "unwind_frames_fp_fallback",
		[AP_UNWIND_STAT_FRAMES_UNSUPPORTED] = "unwind_frames_unsupported_rule",
		[AP_UNWIND_STAT_UNKNOWN_PC] = "unwind_stacks_unknown_pc",
		[AP_UNWIND_STAT_NS] = "unwind_walk_ns",
	};

	return stat < AP_UNWIND_STAT_MAX ? names[stat] : NULL;
}
