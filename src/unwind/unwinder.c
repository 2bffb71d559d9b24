// SPDX-License-Identifier: MIT
/*
 * Unwind tables in BPF maps: one inner ARRAY per file content in `unwind_files` (slot =
 * file_id), one inner ARRAY of mappings per process in `unwind_pids`. See unwinder.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "cfi.h"
#include "symbol_internal.h"
#include "unwinder.h"

_Static_assert(sizeof(struct ap_unwind_row) == 8, "ap_unwind_row layout changed");
_Static_assert(sizeof(struct ap_unwind_mapping) == 32, "ap_unwind_mapping layout changed");

#define DEFAULT_MAX_TABLE_BYTES (64ULL << 20)
#define DEFAULT_IDLE_TABLE_BYTES (8ULL << 20)
#define RESCAN_MIN_NS (100ULL * 1000 * 1000)
#define GC_INTERVAL_NS (5ULL * 1000 * 1000 * 1000)
#define FILE_MAP_FLAGS (BPF_F_INNER_MAP | BPF_F_MMAPABLE)
#define PID_MAP_FLAGS BPF_F_INNER_MAP

/* One compiled table (one file content); shared by every alias and process. */
struct utable {
	struct ap_hnode by_bid;
	struct utable *lru_prev, *lru_next; /* idle list, while refs == 0 */
	struct utable *all_prev, *all_next; /* every table, for cleanup */
	struct ualias *aliases;
	struct ap_cfi_seg *segs;
	uint64_t base;
	uint64_t bytes; /* kernel memory of the inner map */
	uint32_t nsegs;
	uint32_t slot; /* AP_UNWIND_NO_FILE: no CFI, unwound by frame pointer */
	uint32_t npages;
	uint32_t nrows;
	uint32_t refs; /* process mappings using it */
	bool idle;
	char build_id[AP_CFI_BUILD_ID_HEX];
};

/* A file identity (device, inode, size, mtime) resolved to a table. */
struct ualias {
	struct ap_hnode node;
	struct ualias *next_alias; /* in the table's alias list */
	struct utable *table;
	uint64_t dev, ino, size, mtime_ns;
};

struct upid {
	struct ap_hnode node;
	struct utable **tables; /* one reference per executable mapping with a table */
	uint32_t ntables;
	int pid;
	uint64_t maps_hash;
	uint64_t scanned_ns;
	uint64_t bytes;
};

struct ap_unwinder {
	int files_fd, pids_fd;
	struct ap_htab aliases, by_bid, pids;
	struct utable *lru_head, *lru_tail; /* oldest idle table first */
	struct utable *all;
	struct utable *vdso;
	bool vdso_tried;
	uint32_t *free_slots;
	uint32_t nfree;
	uint64_t idle_bytes;
	uint64_t max_bytes, idle_max;
	uint64_t next_gc_ns;
	struct ap_unwinder_stats st;
};

/* An executable mapping read from /proc/PID/maps. */
struct xmap {
	uint64_t start, end, offset;
	uint64_t dev, ino;
	uint8_t kind; /* XMAP_FILE, XMAP_ANON, XMAP_VDSO */
};
enum { XMAP_FILE, XMAP_ANON, XMAP_VDSO };

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Kernel memory charged for a map, from its fdinfo; `fallback` if unreadable. */
static uint64_t map_memlock(int fd, uint64_t fallback)
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

/* ---- idle list ---- */

static void lru_unlink(struct ap_unwinder *u, struct utable *t)
{
	if (!t->idle)
		return;
	if (t->lru_prev)
		t->lru_prev->lru_next = t->lru_next;
	else
		u->lru_head = t->lru_next;
	if (t->lru_next)
		t->lru_next->lru_prev = t->lru_prev;
	else
		u->lru_tail = t->lru_prev;
	t->lru_prev = t->lru_next = NULL;
	t->idle = false;
	u->idle_bytes -= t->bytes;
}

static void table_destroy(struct ap_unwinder *u, struct utable *t)
{
	struct ualias *a, *next;

	lru_unlink(u, t);
	for (a = t->aliases; a; a = next) {
		next = a->next_alias;
		ap_htab_remove(&u->aliases, &a->node);
		free(a);
	}
	if (t->build_id[0])
		ap_htab_remove(&u->by_bid, &t->by_bid);
	if (t->slot != AP_UNWIND_NO_FILE) {
		bpf_map_delete_elem(u->files_fd, &t->slot);
		u->free_slots[u->nfree++] = t->slot;
		u->st.table_bytes -= t->bytes;
		u->st.rows -= t->nrows;
		u->st.files_live--;
	}
	if (t == u->vdso)
		u->vdso = NULL;
	if (t->all_prev)
		t->all_prev->all_next = t->all_next;
	else
		u->all = t->all_next;
	if (t->all_next)
		t->all_next->all_prev = t->all_prev;
	free(t->segs);
	free(t);
}

/* Evict idle tables, oldest first, until `need` more bytes fit both budgets. */
static void make_room(struct ap_unwinder *u, uint64_t need)
{
	while (u->lru_head && (u->idle_bytes > u->idle_max ||
			       u->st.table_bytes + need > u->max_bytes || u->nfree == 0)) {
		table_destroy(u, u->lru_head);
		u->st.files_evicted++;
	}
}

static void table_put(struct ap_unwinder *u, struct utable *t)
{
	if (!t || --t->refs > 0)
		return;
	/* most recently released last */
	t->idle = true;
	t->lru_prev = u->lru_tail;
	t->lru_next = NULL;
	if (u->lru_tail)
		u->lru_tail->lru_next = t;
	else
		u->lru_head = t;
	u->lru_tail = t;
	u->idle_bytes += t->bytes;
	make_room(u, 0);
}

static void table_get(struct ap_unwinder *u, struct utable *t)
{
	lru_unlink(u, t);
	t->refs++;
}

/* ---- loading a table ---- */

/* Copy a compiled table into a new inner map and publish it in a free slot. */
static int upload(struct ap_unwinder *u, const struct ap_cfi_table *c, struct utable *t)
{
	LIBBPF_OPTS(bpf_map_create_opts, mo, .map_flags = FILE_MAP_FLAGS);
	size_t entries = ap_cfi_table_entries(c), len;
	long page = sysconf(_SC_PAGESIZE);
	uint64_t guess;
	void *mem;
	int fd, err = 0;

	len = (entries * sizeof(uint64_t) + (size_t)page - 1) & ~((size_t)page - 1);
	guess = len + 1024;
	make_room(u, guess);
	if (u->nfree == 0 || u->st.table_bytes + guess > u->max_bytes)
		return -ENOSPC;
	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "ap_unwind_file", sizeof(__u32), sizeof(__u64),
			    (__u32)entries, &mo);
	if (fd < 0)
		return -errno;
	mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (mem == MAP_FAILED) {
		err = -errno;
		goto out;
	}
	memcpy(mem, c->image, entries * sizeof(uint64_t));
	munmap(mem, len);
	t->slot = u->free_slots[u->nfree - 1];
	if (bpf_map_update_elem(u->files_fd, &t->slot, &fd, BPF_ANY)) {
		err = -errno;
		t->slot = AP_UNWIND_NO_FILE;
		goto out;
	}
	u->nfree--;
	t->bytes = map_memlock(fd, guess);
	t->npages = c->npages;
	t->nrows = c->nrows;
	u->st.table_bytes += t->bytes;
	if (u->st.table_bytes > u->st.table_bytes_peak)
		u->st.table_bytes_peak = u->st.table_bytes;
	u->st.rows += t->nrows;
	u->st.files_live++;
out:
	close(fd); /* the outer map holds the inner one */
	return err;
}

/* A table for compiled CFI `c` (taking its segments), or the one already loaded for the same
 * build-id. Files without CFI get a table without a slot. */
static struct utable *table_new(struct ap_unwinder *u, struct ap_cfi_table *c, int cerr)
{
	struct utable *t;
	uint64_t h;

	if (!cerr && c->build_id[0]) {
		h = ap_hash_bytes(c->build_id, strlen(c->build_id), 0);
		for (struct ap_hnode *n = ap_htab_first(&u->by_bid, h); n; n = ap_htab_next(n)) {
			t = AP_CONTAINER_OF(n, struct utable, by_bid);
			if (!strcmp(t->build_id, c->build_id)) {
				u->st.files_shared++;
				return t;
			}
		}
	}
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->slot = AP_UNWIND_NO_FILE;
	t->all_next = u->all;
	if (u->all)
		u->all->all_prev = t;
	u->all = t;
	if (cerr) {
		u->st.files_no_cfi += cerr == -ENOENT || cerr == -ENOEXEC;
		u->st.files_failed += cerr != -ENOENT && cerr != -ENOEXEC;
		return t;
	}
	t->segs = c->segs;
	t->nsegs = c->nsegs;
	t->base = c->base;
	c->segs = NULL;
	c->nsegs = 0;
	memcpy(t->build_id, c->build_id, sizeof(t->build_id));
	if (upload(u, c, t)) {
		u->st.files_failed++; /* over budget, or the map could not be created */
	} else {
		u->st.files_compiled++;
	}
	if (t->build_id[0] &&
	    ap_htab_insert(&u->by_bid, &t->by_bid, ap_hash_bytes(t->build_id,
								 strlen(t->build_id), 0))) {
		t->build_id[0] = '\0';
	}
	return t;
}

static void alias_forget(struct ap_unwinder *u, struct ualias *a)
{
	struct ualias **pp;

	for (pp = &a->table->aliases; *pp; pp = &(*pp)->next_alias) {
		if (*pp == a) {
			*pp = a->next_alias;
			break;
		}
	}
	ap_htab_remove(&u->aliases, &a->node);
	free(a);
}

static uint64_t alias_hash(uint64_t dev, uint64_t ino)
{
	uint64_t k[2] = { dev, ino };

	return ap_hash_bytes(k, sizeof(k), 1);
}

/* The table of the file behind mapping `m` of `pid`, compiling it on a miss. */
static struct utable *table_for_file(struct ap_unwinder *u, int pid, const struct xmap *m)
{
	struct ap_cfi_table c;
	struct ualias *a;
	struct utable *t;
	char path[96];
	struct stat sb;
	uint64_t mtime, h, t0;
	int err;

	snprintf(path, sizeof(path), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, pid, m->start,
		 m->end);
	if (stat(path, &sb))
		return NULL;
	mtime = (uint64_t)sb.st_mtim.tv_sec * 1000000000ULL + (uint64_t)sb.st_mtim.tv_nsec;
	h = alias_hash(sb.st_dev, sb.st_ino);
	for (struct ap_hnode *n = ap_htab_first(&u->aliases, h); n; n = ap_htab_next(n)) {
		a = AP_CONTAINER_OF(n, struct ualias, node);
		if (a->dev == sb.st_dev && a->ino == sb.st_ino) {
			if (a->size == (uint64_t)sb.st_size && a->mtime_ns == mtime)
				return a->table;
			/* the inode now holds another file: forget the old identity (the table
			 * stays while processes use it) */
			alias_forget(u, a);
			break;
		}
	}
	t0 = mono_ns();
	err = ap_cfi_table_from_path(path, &c);
	t = table_new(u, &c, err);
	ap_cfi_table_release(&c);
	u->st.compile_ns += mono_ns() - t0;
	a = t ? calloc(1, sizeof(*a)) : NULL;
	if (!a)
		return t && t->refs == 0 && !t->aliases ? (table_destroy(u, t), NULL) : t;
	a->dev = sb.st_dev;
	a->ino = sb.st_ino;
	a->size = (uint64_t)sb.st_size;
	a->mtime_ns = mtime;
	a->table = t;
	if (ap_htab_insert(&u->aliases, &a->node, h)) {
		free(a);
		return t->aliases ? t : (table_destroy(u, t), NULL);
	}
	a->next_alias = t->aliases;
	t->aliases = a;
	return t;
}

/* The vDSO is the same image in every process: compile ours once. */
static struct utable *table_for_vdso(struct ap_unwinder *u)
{
	struct ap_cfi_table c;
	unsigned long base;
	FILE *f;
	char line[256];
	uint64_t start = 0, end = 0;
	int err = -ENOENT;

	if (u->vdso || u->vdso_tried)
		return u->vdso;
	u->vdso_tried = true;
	base = getauxval(AT_SYSINFO_EHDR);
	f = fopen("/proc/self/maps", "re");
	while (f && fgets(line, sizeof(line), f))
		if (strstr(line, "[vdso]") && sscanf(line, "%" SCNx64 "-%" SCNx64, &start, &end) == 2)
			break;
	if (f)
		fclose(f);
	if (base && start == base && end > start)
		err = ap_cfi_table_from_mem((const void *)base, end - start, &c);
	u->vdso = table_new(u, &c, err);
	if (!err)
		ap_cfi_table_release(&c);
	if (u->vdso)
		u->vdso->refs++; /* kept for the whole run */
	return u->vdso;
}

/* ---- processes ---- */

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

static struct upid *pid_find(struct ap_unwinder *u, int pid)
{
	uint64_t h = ap_hash_bytes(&pid, sizeof(pid), 2);

	for (struct ap_hnode *n = ap_htab_first(&u->pids, h); n; n = ap_htab_next(n)) {
		struct upid *p = AP_CONTAINER_OF(n, struct upid, node);

		if (p->pid == pid)
			return p;
	}
	return NULL;
}

static void pid_release_tables(struct ap_unwinder *u, struct utable **tables, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		table_put(u, tables[i]);
	free(tables);
}

/* Build and publish the mapping table of `pid` from `s`. */
static int install(struct ap_unwinder *u, int pid, struct scan *s, struct upid *p)
{
	LIBBPF_OPTS(bpf_map_create_opts, mo, .map_flags = PID_MAP_FLAGS);
	struct ap_unwind_mapping *ms = calloc(s->n + 1, sizeof(*ms));
	struct utable **tables = calloc(s->n ? s->n : 1, sizeof(*tables));
	uint32_t nt = 0, nm = 0;
	__u32 key = (__u32)pid;
	int fd = -1, err = 0;

	if (!ms || !tables) {
		err = -ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < s->n; i++) {
		const struct xmap *x = &s->maps[i];
		struct ap_unwind_mapping *m = &ms[1 + nm];
		struct utable *t = NULL;

		if (x->kind == XMAP_VDSO)
			t = table_for_vdso(u);
		else if (x->kind == XMAP_FILE)
			t = table_for_file(u, pid, x);
		m->start = x->start;
		m->end = x->end;
		m->file_id = AP_UNWIND_NO_FILE;
		if (t && t->slot != AP_UNWIND_NO_FILE) {
			struct ap_cfi_table view = { .segs = t->segs, .nsegs = t->nsegs,
						     .base = t->base };
			uint64_t bias;

			if (!ap_cfi_table_bias(&view, x->start, x->offset, &bias)) {
				m->bias = bias;
				m->file_id = t->slot;
				m->npages = t->npages;
			}
		}
		if (t) {
			table_get(u, t);
			tables[nt++] = t;
		}
		nm++;
	}
	ms[0].start = nm;
	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "ap_unwind_pid", sizeof(__u32), sizeof(*ms),
			    nm + 1, &mo);
	if (fd < 0) {
		err = -errno;
		goto fail;
	}
	for (__u32 i = 0; i <= nm; i++) {
		if (bpf_map_update_elem(fd, &i, &ms[i], BPF_ANY)) {
			err = -errno;
			goto fail;
		}
	}
	if (bpf_map_update_elem(u->pids_fd, &key, &fd, BPF_ANY)) {
		err = -errno;
		goto fail;
	}
	/* the new table is live: release what the old one used */
	u->st.pid_table_bytes -= p->bytes;
	p->bytes = map_memlock(fd, (nm + 1) * sizeof(*ms) + 512);
	u->st.pid_table_bytes += p->bytes;
	close(fd);
	free(ms);
	pid_release_tables(u, p->tables, p->ntables);
	p->tables = tables;
	p->ntables = nt;
	p->maps_hash = s->hash;
	u->st.pids_loaded++;
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	free(ms);
	if (tables)
		pid_release_tables(u, tables, nt);
	return err;
}

static int load(struct ap_unwinder *u, int pid, bool rescan)
{
	struct scan s = { 0 };
	struct upid *p = pid_find(u, pid);
	bool created = false;
	uint64_t now = mono_ns();
	int err;

	if (rescan) {
		u->st.rescans++;
		if (p && now - p->scanned_ns < RESCAN_MIN_NS)
			return 0;
	}
	err = ap_maps_read(pid, scan_cb, &s);
	if (!err && s.n == 0)
		err = -ESRCH;
	if (err) {
		u->st.pids_missed += err == -ESRCH || err == -ENOENT;
		free(s.maps);
		return err;
	}
	if (p && p->maps_hash == s.hash) { /* e.g. the first sample of a pid loaded at exec */
		u->st.rescans_unchanged += rescan;
		p->scanned_ns = now;
		free(s.maps);
		return 0;
	}
	if (!p) {
		p = calloc(1, sizeof(*p));
		if (!p || ap_htab_insert(&u->pids, &p->node, ap_hash_bytes(&pid, sizeof(pid), 2))) {
			free(p);
			free(s.maps);
			return -ENOMEM;
		}
		p->pid = pid;
		created = true;
		u->st.pids_live++;
	}
	p->scanned_ns = now;
	err = install(u, pid, &s, p);
	free(s.maps);
	if (err && created)
		ap_unwinder_pid_exited(u, pid);
	return err ? err : rescan;
}

int ap_unwinder_load_pid(struct ap_unwinder *u, int pid)
{
	return u ? load(u, pid, false) : -EINVAL;
}

int ap_unwinder_rescan_pid(struct ap_unwinder *u, int pid)
{
	return u ? load(u, pid, true) : -EINVAL;
}

void ap_unwinder_pid_exited(struct ap_unwinder *u, int pid)
{
	struct upid *p = u ? pid_find(u, pid) : NULL;
	__u32 key = (__u32)pid;

	if (!p)
		return;
	bpf_map_delete_elem(u->pids_fd, &key);
	ap_htab_remove(&u->pids, &p->node);
	u->st.pid_table_bytes -= p->bytes;
	u->st.pids_live--;
	pid_release_tables(u, p->tables, p->ntables);
	free(p);
}

static bool collect_dead(struct ap_hnode *n, void *ctx)
{
	struct upid *p = AP_CONTAINER_OF(n, struct upid, node);
	int **dead = ctx;
	char path[32];

	snprintf(path, sizeof(path), "/proc/%d", p->pid);
	if (access(path, F_OK) == 0 || errno != ENOENT)
		return false;
	*(*dead)++ = p->pid;
	return false;
}

void ap_unwinder_gc(struct ap_unwinder *u)
{
	uint64_t now = mono_ns();
	int *dead, *end;

	if (!u || now < u->next_gc_ns)
		return;
	u->next_gc_ns = now + GC_INTERVAL_NS;
	dead = calloc(u->pids.n + 1, sizeof(*dead));
	if (!dead)
		return;
	end = dead;
	ap_htab_sweep(&u->pids, collect_dead, &end);
	for (int *d = dead; d < end; d++)
		ap_unwinder_pid_exited(u, *d);
	free(dead);
}

/* ---- lifecycle ---- */

struct ap_unwinder *ap_unwinder_new(const struct ap_unwinder_opts *opts)
{
	LIBBPF_OPTS(bpf_map_create_opts, fo, .map_flags = FILE_MAP_FLAGS);
	LIBBPF_OPTS(bpf_map_create_opts, po, .map_flags = PID_MAP_FLAGS);
	LIBBPF_OPTS(bpf_map_create_opts, outer);
	struct ap_unwinder *u = calloc(1, sizeof(*u));
	int inner = -1, err;

	if (!u)
		return NULL;
	u->files_fd = u->pids_fd = -1;
	u->max_bytes = opts && opts->max_table_bytes ? opts->max_table_bytes :
						       DEFAULT_MAX_TABLE_BYTES;
	u->idle_max = opts && opts->idle_table_bytes ? opts->idle_table_bytes :
						       DEFAULT_IDLE_TABLE_BYTES;
	u->free_slots = calloc(AP_UNWIND_MAX_FILES, sizeof(*u->free_slots));
	if (!u->free_slots)
		goto fail_errno;
	for (uint32_t i = 0; i < AP_UNWIND_MAX_FILES; i++)
		u->free_slots[i] = AP_UNWIND_MAX_FILES - 1 - i; /* low slots first */
	u->nfree = AP_UNWIND_MAX_FILES;

	/* templates: the outer maps accept inner arrays of any size with these flags */
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
	inner = bpf_map_create(BPF_MAP_TYPE_ARRAY, "ap_unwind_tmpl", sizeof(__u32),
			       sizeof(struct ap_unwind_mapping), 1, &po);
	if (inner < 0)
		goto fail_errno;
	outer.inner_map_fd = inner;
	outer.map_flags = BPF_F_NO_PREALLOC;
	u->pids_fd = bpf_map_create(BPF_MAP_TYPE_HASH_OF_MAPS, "unwind_pids", sizeof(__u32),
				    sizeof(__u32), AP_UNWIND_MAX_PIDS, &outer);
	if (u->pids_fd < 0)
		goto fail_errno;
	close(inner);
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

	free(p->tables);
	free(p);
	return true;
}

static bool free_alias(struct ap_hnode *n, void *ctx)
{
	free(AP_CONTAINER_OF(n, struct ualias, node));
	return true;
}

void ap_unwinder_free(struct ap_unwinder *u)
{
	struct utable *t, *next;

	if (!u)
		return;
	/* closing the outer maps frees every inner one: no per-slot deletes needed */
	if (u->files_fd >= 0)
		close(u->files_fd);
	if (u->pids_fd >= 0)
		close(u->pids_fd);
	ap_htab_sweep(&u->pids, free_pid, NULL);
	ap_htab_sweep(&u->aliases, free_alias, NULL);
	for (t = u->all; t; t = next) {
		next = t->all_next;
		free(t->segs);
		free(t);
	}
	ap_htab_release(&u->pids);
	ap_htab_release(&u->aliases);
	ap_htab_release(&u->by_bid);
	free(u->free_slots);
	free(u);
}

void ap_unwinder_get_stats(const struct ap_unwinder *u, struct ap_unwinder_stats *out)
{
	if (u)
		*out = u->st;
	else
		memset(out, 0, sizeof(*out));
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
	};

	return stat < AP_UNWIND_STAT_MAX ? names[stat] : NULL;
}
