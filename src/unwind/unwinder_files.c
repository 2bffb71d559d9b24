// SPDX-License-Identifier: MIT
/*
 * File tables: one compiled table per file content (build-id, else device+inode), loaded
 * into an inner ARRAY of `unwind_files` by a worker thread, kept while used and, within a
 * budget, while idle (least recently released first out). See unwinder_internal.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "lib/log.h"
#include "lib/safe_open.h"
#include "unwinder_internal.h"

#define FILE_MAP_FLAGS (BPF_F_INNER_MAP | BPF_F_MMAPABLE)

/* ---- idle list and lifetime ---- */

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

static void alias_forget(struct ap_unwinder *u, struct ualias *a)
{
	for (struct ualias **pp = &a->table->aliases; *pp; pp = &(*pp)->next_alias) {
		if (*pp == a) {
			*pp = a->next_alias;
			break;
		}
	}
	ap_htab_remove(&u->aliases, &a->node);
	free(a);
}

static void table_destroy(struct ap_unwinder *u, struct utable *t)
{
	lru_unlink(u, t);
	while (t->aliases)
		alias_forget(u, t->aliases);
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
	if (t->view)
		munmap((void *)t->view, t->view_len);
	if (t->all_prev)
		t->all_prev->all_next = t->all_next;
	else
		u->all = t->all_next;
	if (t->all_next)
		t->all_next->all_prev = t->all_prev;
	free(t->segs);
	free(t);
}

/* How long an unused table stays even past the idle budget (within the total budget).
 * Builds, scripts and test runs start the same programs over and over, often with gaps
 * in between; a big library's table (libLLVM's: 10 MB) dropped at once would be loaded
 * again by the next process, whose samples wait for it meanwhile. */
#define IDLE_GRACE_NS (30ULL * 1000 * 1000 * 1000)

/* Evict idle tables, oldest first, until `need` more bytes and a slot fit, and the idle
 * ones released longer than the grace period ago fit the idle budget. */
static void make_room(struct ap_unwinder *u, uint64_t need)
{
	uint64_t now = ap_mono_ns();

	while (u->lru_head &&
	       ((u->idle_bytes > u->idle_max && now - u->lru_head->idle_since_ns >= IDLE_GRACE_NS) ||
		u->st.table_bytes + u->inflight + need > u->max_bytes || u->nfree == 0)) {
		table_destroy(u, u->lru_head);
		u->st.files_evicted++;
	}
}

void ap_uw_tables_trim(struct ap_unwinder *u)
{
	make_room(u, 0);
}

void ap_uw_table_get(struct ap_unwinder *u, struct utable *t)
{
	lru_unlink(u, t);
	t->refs++;
}

void ap_uw_table_put(struct ap_unwinder *u, struct utable *t)
{
	if (!t || --t->refs > 0)
		return;
	t->idle = true; /* most recently released last */
	t->idle_since_ns = ap_mono_ns();
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

static struct utable *table_alloc(struct ap_unwinder *u, const char *build_id)
{
	struct utable *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->slot = AP_UNWIND_NO_FILE;
	t->state = TABLE_PENDING;
	t->all_next = u->all;
	if (u->all)
		u->all->all_prev = t;
	u->all = t;
	if (build_id && build_id[0]) {
		memcpy(t->build_id, build_id, sizeof(t->build_id));
		if (ap_htab_insert(&u->by_bid, &t->by_bid,
				   ap_hash_bytes(t->build_id, strlen(t->build_id), 0)))
			t->build_id[0] = '\0';
	}
	return t;
}

static struct utable *table_by_build_id(struct ap_unwinder *u, const char *bid)
{
	uint64_t h = ap_hash_bytes(bid, strlen(bid), 0);

	for (struct ap_hnode *n = ap_htab_first(&u->by_bid, h); n; n = ap_htab_next(n)) {
		struct utable *t = AP_CONTAINER_OF(n, struct utable, by_bid);

		if (!strcmp(t->build_id, bid))
			return t;
	}
	return NULL;
}

/* ---- publishing (worker thread) ---- */

/* A new inner map for a table of `entries` 8-byte entries, mapped writable. */
struct file_map {
	int fd;
	void *mem;
	size_t len;
};

static int file_map_new(size_t entries, struct file_map *m)
{
	LIBBPF_OPTS(bpf_map_create_opts, mo, .map_flags = FILE_MAP_FLAGS);
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	m->mem = NULL;
	m->len = (entries * sizeof(uint64_t) + page - 1) & ~(page - 1);
	m->fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "ap_unwind_file", sizeof(__u32),
			       sizeof(__u64), (__u32)entries, &mo);
	if (m->fd < 0)
		return -errno;
	m->mem = mmap(NULL, m->len, PROT_READ | PROT_WRITE, MAP_SHARED, m->fd, 0);
	if (m->mem == MAP_FAILED) {
		int err = -errno;

		m->mem = NULL;
		close(m->fd);
		m->fd = -1;
		return err;
	}
	return 0;
}

static void file_map_close(struct file_map *m)
{
	if (m->mem)
		munmap(m->mem, m->len);
	if (m->fd >= 0)
		close(m->fd); /* once installed, the outer map holds it */
	m->mem = NULL;
	m->fd = -1;
}

/* Put a filled inner map in slot `slot`. Runs without the lock: the update of the outer map
 * waits for an RCU grace period. Returns 0 or -errno. */
static int file_map_install(struct ap_unwinder *u, struct file_map *m, uint32_t slot,
			    uint64_t *bytes)
{
	int err = 0;

	munmap(m->mem, m->len);
	m->mem = NULL;
	if (bpf_map_update_elem(u->files_fd, &slot, &m->fd, BPF_ANY))
		err = -errno;
	*bytes = ap_uw_map_memlock(m->fd, m->len + 1024);
	file_map_close(m);
	return err;
}

/* The table builder writes its image straight into the inner map's memory. */
static uint64_t *sink_alloc(void *ctx, size_t entries)
{
	struct file_map *m = ctx;

	return file_map_new(entries, m) ? NULL : m->mem;
}

/* Copy a table compiled on the heap into a new inner map in slot `slot`. */
static int publish(struct ap_unwinder *u, const struct ap_cfi_table *c, uint32_t slot,
		   uint64_t *bytes)
{
	struct file_map m;
	int err = file_map_new(ap_cfi_table_entries(c), &m);

	if (err)
		return err;
	memcpy(m.mem, c->image, ap_cfi_table_entries(c) * sizeof(uint64_t));
	return file_map_install(u, &m, slot, bytes);
}

/* t's table is c's (its segments taken), in slot `slot`, `bytes` of kernel memory. */
static void table_adopt(struct ap_unwinder *u, struct utable *t, struct ap_cfi_table *c,
			uint32_t slot, uint64_t bytes)
{
	t->segs = c->segs;
	t->nsegs = c->nsegs;
	t->base = c->base;
	t->nbuckets = c->nbuckets;
	t->shift = c->shift;
	t->nrows = c->nrows;
	t->bytes = bytes;
	t->slot = slot;
	c->segs = NULL;
	u->st.table_bytes += bytes;
	if (u->st.table_bytes > u->st.table_bytes_peak)
		u->st.table_bytes_peak = u->st.table_bytes;
	u->st.rows += t->nrows;
	u->st.files_live++;
}

void ap_uw_job_finish(struct ap_unwinder *u, struct utable *t, struct ap_cfi_table *c,
		      uint32_t slot, uint64_t bytes, bool cached, int err, uint64_t t0)
{
	/* per file table loaded (a cached table keeps the stats of its compile) */
	u->st.cfi_fdes_bad += c->stats.fdes_bad;
	u->st.cfi_limit_hits += c->stats.fdes_limit + c->stats.sections_too_big + (err == -E2BIG);
	if (!err) {
		table_adopt(u, t, c, slot, bytes);
		u->st.files_compiled++;
		u->st.files_cached += cached;
	} else if (err == -ENOENT || err == -ENOEXEC) {
		u->st.files_no_cfi++;
	} else {
		u->st.files_over_budget += err == -ENOSPC;
		u->st.files_failed++;
	}
	ap_cfi_table_release(c);
	ap_debug("unwind: table %s (%u rows) %s: ready %.1f ms after it was queued, %.1f ms "
		 "after its job began", t->build_id[0] ? t->build_id : "(no build-id)", t->nrows,
		 err ? strerror(-err) : cached ? "from the cache" : "compiled",
		 (ap_mono_ns() - t->queued_ns) / 1e6, (ap_mono_ns() - t0) / 1e6);
	t->state = TABLE_READY;
	/* its processes lose the pending mark either way (no table: frame pointers) */
	ap_uw_table_ready(u, t);
	ap_uw_table_put(u, t); /* the job's reference */
}

/* Compile (or load from the cache) one queued file into a new inner map, and hand that to
 * the installer. Called and returns with the lock held. Returns true when the job is over,
 * false when the installer finishes it. */
static bool run_job(struct ap_unwinder *u, struct job *j)
{
	struct utable *t = j->t;
	struct file_map m = { .fd = -1 };
	struct ap_cfi_sink sink = { .alloc = sink_alloc, .ctx = &m };
	struct ap_cfi_table c;
	struct install *in = NULL;
	uint64_t t0, bytes = 0, guess;
	uint32_t slot = AP_UNWIND_NO_FILE;
	bool cached, refused = false, store_failed = false;
	int err, cerr = -ENOENT;

	pthread_mutex_unlock(&u->lock);
	t0 = ap_mono_ns();
	/* t->build_id is written before the job is queued and not after */
	if (t->build_id[0])
		cerr = ap_uw_cache_load(u, t->build_id, &c, &sink);
	cached = !cerr;
	if (!cached) {
		/* no entry (or no cache) is the normal miss; anything else is counted */
		refused = cerr != -ENOENT && cerr != -ENAMETOOLONG;
		file_map_close(&m); /* a partly loaded cache entry */
		err = ap_cfi_table_from_fd_into(j->fd, &c, &sink);
		if (!err && t->build_id[0] && u->cache_dir[0])
			store_failed = ap_uw_cache_store(u, t->build_id, &c) != 0; /* best effort */
	} else {
		err = 0;
	}
	close(j->fd);
	if (!err)
		in = calloc(1, sizeof(*in));
	pthread_mutex_lock(&u->lock);
	u->st.compile_ns += ap_mono_ns() - t0; /* the installer adds its part */
	u->st.cache_refused += refused;
	u->st.cache_write_errors += store_failed;

	if (!err) {
		guess = (ap_cfi_table_entries(&c) * 8 + 4095) / 4096 * 4096 + 1024;
		make_room(u, guess);
		if (u->nfree && u->st.table_bytes + u->inflight + guess <= u->max_bytes) {
			slot = u->free_slots[--u->nfree];
			u->inflight += guess; /* until installed */
		} else {
			err = -ENOSPC; /* over the memory budget: frame pointers for this file */
		}
	}
	if (!err && in) {
		munmap(m.mem, m.len);
		in->t = t;
		in->c = c;
		in->map_fd = m.fd;
		in->map_len = m.len;
		in->slot = slot;
		in->cached = cached;
		in->t0 = t0;
		in->reserved = guess;
		ap_uw_install_queue(u, in);
		return false;
	}
	free(in);
	if (!err) { /* no memory for the hand-over: install it here */
		uint64_t t1 = ap_mono_ns();

		pthread_mutex_unlock(&u->lock);
		err = file_map_install(u, &m, slot, &bytes);
		pthread_mutex_lock(&u->lock);
		u->st.compile_ns += ap_mono_ns() - t1;
		u->inflight -= guess;
	}
	if (err && slot != AP_UNWIND_NO_FILE) {
		u->free_slots[u->nfree++] = slot;
		slot = AP_UNWIND_NO_FILE;
	}
	file_map_close(&m); /* not installed: the map goes */
	ap_uw_job_finish(u, t, &c, slot, bytes, cached, err, t0);
	return true;
}

static void *worker_main(void *arg)
{
	struct ap_unwinder *u = arg;

	pthread_mutex_lock(&u->lock);
	while (!u->stop) {
		struct job *j = u->jobs;

		if (!j) {
			pthread_cond_wait(&u->wake, &u->lock);
			continue;
		}
		u->jobs = j->next;
		if (!u->jobs)
			u->jobs_tail = NULL;
		if (run_job(u, j) && --u->busy == 0)
			pthread_cond_broadcast(&u->idle);
		free(j);
	}
	pthread_mutex_unlock(&u->lock);
	return NULL;
}

int ap_uw_worker_start(struct ap_unwinder *u)
{
	int err = ap_uw_installer_start(u);

	if (err)
		return err;
	err = pthread_create(&u->worker, NULL, worker_main, u);
	if (err) {
		ap_uw_installer_stop(u);
		u->install_stop = false;
		return -err;
	}
	u->worker_ok = true;
	return 0;
}

void ap_uw_worker_stop(struct ap_unwinder *u)
{
	if (!u->worker_ok)
		return;
	pthread_mutex_lock(&u->lock);
	u->stop = true;
	pthread_cond_broadcast(&u->wake);
	pthread_mutex_unlock(&u->lock);
	pthread_join(u->worker, NULL);
	u->worker_ok = false;
	ap_uw_installer_stop(u); /* what the worker handed over is finished */
	while (u->jobs) { /* never compiled */
		struct job *j = u->jobs;

		u->jobs = j->next;
		close(j->fd);
		free(j);
	}
}

static int enqueue(struct ap_unwinder *u, struct utable *t, int fd)
{
	struct job *j = calloc(1, sizeof(*j));

	if (!j)
		return -ENOMEM;
	j->t = t;
	j->fd = fd;
	t->refs++; /* until compiled: never evicted while queued */
	t->queued_ns = ap_mono_ns();
	if (u->jobs_tail)
		u->jobs_tail->next = j;
	else
		u->jobs = j;
	u->jobs_tail = j;
	u->busy++;
	pthread_cond_signal(&u->wake);
	return 0;
}

/* ---- lookups (event loop) ---- */

static uint64_t alias_hash(uint64_t dev, uint64_t ino)
{
	uint64_t k[2] = { dev, ino };

	return ap_hash_bytes(k, sizeof(k), 1);
}

struct utable *ap_uw_table_for_file(struct ap_unwinder *u, int pid, const struct xmap *m)
{
	char path[96], bid[AP_CFI_BUILD_ID_HEX];
	struct ualias *a;
	struct utable *t;
	struct stat sb;
	uint64_t mtime, h;
	int fd, pfd;

	snprintf(path, sizeof(path), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, pid, m->start,
		 m->end);
	/* the magic link is the mapped file itself; a mapped FIFO or device is not read. An
	 * O_PATH descriptor first: a file seen before needs nothing more */
	fd = ap_path_untrusted(AT_FDCWD, path, AP_OPEN_MAGIC, 0, &sb);
	if (fd < 0)
		return NULL; /* gone, not a regular file, or not ours to read */
	mtime = (uint64_t)sb.st_mtim.tv_sec * 1000000000ULL + (uint64_t)sb.st_mtim.tv_nsec;
	h = alias_hash(sb.st_dev, sb.st_ino);
	for (struct ap_hnode *n = ap_htab_first(&u->aliases, h); n; n = ap_htab_next(n)) {
		a = AP_CONTAINER_OF(n, struct ualias, node);
		if (a->dev != (uint64_t)sb.st_dev || a->ino != (uint64_t)sb.st_ino)
			continue;
		if (a->size == (uint64_t)sb.st_size && a->mtime_ns == mtime) {
			close(fd);
			return a->table;
		}
		/* the inode now holds another file: forget the old identity (its table stays
		 * while processes use it) */
		alias_forget(u, a);
		break;
	}
	pfd = fd;
	fd = ap_reopen_untrusted(pfd, &sb);
	close(pfd);
	if (fd < 0)
		return NULL;
	/* the same content under another inode (another container, a copy): share it */
	ap_cfi_build_id_fd(fd, bid, sizeof(bid));
	t = bid[0] ? table_by_build_id(u, bid) : NULL;
	if (t) {
		u->st.files_shared++;
		close(fd);
	} else {
		t = table_alloc(u, bid);
		if (!t || enqueue(u, t, fd)) {
			close(fd);
			if (t)
				table_destroy(u, t);
			return NULL;
		}
	}
	a = calloc(1, sizeof(*a));
	if (!a || ap_htab_insert(&u->aliases, &a->node, h)) {
		free(a);
		return t; /* usable, just not found again by inode */
	}
	a->dev = sb.st_dev;
	a->ino = sb.st_ino;
	a->size = (uint64_t)sb.st_size;
	a->mtime_ns = mtime;
	a->table = t;
	a->next_alias = t->aliases;
	t->aliases = a;
	return t;
}

struct utable *ap_uw_table_by_inode(struct ap_unwinder *u, uint64_t dev, uint64_t ino)
{
	uint64_t h = alias_hash(dev, ino);

	for (struct ap_hnode *n = ap_htab_first(&u->aliases, h); n; n = ap_htab_next(n)) {
		struct ualias *a = AP_CONTAINER_OF(n, struct ualias, node);

		if (a->dev == dev && a->ino == ino)
			return a->table;
	}
	return NULL;
}

/* The vDSO is the same image in every process: compile ours once (synchronously: it is two
 * pages). */
struct utable *ap_uw_table_for_vdso(struct ap_unwinder *u)
{
	unsigned long base = getauxval(AT_SYSINFO_EHDR);
	uint64_t start = 0, end = 0, bytes = 0;
	struct ap_cfi_table c;
	char line[256];
	FILE *f;

	if (u->vdso || u->vdso_tried)
		return u->vdso;
	u->vdso_tried = true;
	f = fopen("/proc/self/maps", "re");
	while (f && fgets(line, sizeof(line), f))
		if (strstr(line, "[vdso]") &&
		    sscanf(line, "%" SCNx64 "-%" SCNx64, &start, &end) == 2)
			break;
	if (f)
		fclose(f);
	if (!base || start != base || end <= start ||
	    ap_cfi_table_from_mem((const void *)base, end - start, &c))
		return NULL;
	u->vdso = table_alloc(u, NULL);
	if (u->vdso && u->nfree && !publish(u, &c, u->free_slots[u->nfree - 1], &bytes)) {
		u->nfree--;
		table_adopt(u, u->vdso, &c, u->free_slots[u->nfree], bytes);
	}
	if (u->vdso) {
		u->vdso->state = TABLE_READY;
		u->vdso->refs++; /* kept for the whole run */
	}
	ap_cfi_table_release(&c);
	return u->vdso;
}

void ap_uw_tables_free(struct ap_unwinder *u)
{
	struct utable *t, *next;

	for (t = u->all; t; t = next) {
		next = t->all_next;
		while (t->aliases) {
			struct ualias *a = t->aliases;

			t->aliases = a->next_alias;
			free(a);
		}
		if (t->view)
			munmap((void *)t->view, t->view_len);
		free(t->segs);
		free(t);
	}
	u->all = NULL;
}
