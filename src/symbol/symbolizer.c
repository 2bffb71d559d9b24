// SPDX-License-Identifier: MIT
/*
 * Per-process snapshots and frame construction.
 *
 * A snapshot is the list of a process's executable mappings, each pointing at a symbol table
 * of the shared ELF cache. Symbol tables are loaded when the snapshot is taken, not at the
 * first lookup: samples are drained after the fact, and by then a short-lived process (and
 * with it /proc/PID/map_files, the only way to reach a deleted or namespaced file) may be
 * gone. The cost is bounded by sharing: a file already in the cache costs one stat().
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "lib/clock.h"
#include "lib/safe_open.h"
#include "symbol_internal.h"
#include "symbolizer.h"

#define UNKNOWN "[unknown]"
/* /proc/PID/status is a few KiB: more is not a status file */
#define PROC_FILE_MAX (1u << 20)
#define KERNEL_MODULE "[kernel.kallsyms]"
#define DEFAULT_KALLSYMS "/proc/kallsyms"
/* an address outside every mapping re-reads the maps (dlopen) at most this often per pid,
 * unless a drain (ap_symbolizer_gc) happened since the last snapshot */
#define RESNAP_MIN_NS 1000000000ULL
/* symbol tables no live snapshot uses, kept for processes that are started again */
#define IDLE_CACHE_BYTES (4u << 20)
#define PATH_IN_TAB UINT32_MAX
/* a JIT address missing from the perf map re-reads it at most this often (or once a drain) */
#define JIT_REREAD_NS 1000000000ULL

enum map_kind {
	MAP_FILE = 0,
	MAP_VDSO,
	MAP_ANON,  /* anonymous: JIT code, named by the process's perf map if it writes one */
	MAP_OTHER, /* [vsyscall], ...: no symbols */
};

struct snap_map {
	uint64_t start;
	uint64_t end;
	uint64_t offset;
	struct ap_symtab *tab; /* NULL: no symbols; MAP_FILE tables hold a cache reference */
	uint32_t path;	       /* offset in the snapshot's pool, or PATH_IN_TAB: tab->path */
	uint8_t kind;
};

struct snapshot {
	struct ap_hnode node;
	struct snap_map *maps; /* sorted by start, as /proc/PID/maps lists them */
	char *pool;	       /* paths that differ from their table's */
	size_t nmaps;
	uint64_t taken_ns;
	uint64_t gen;	   /* drain generation of the last snapshot attempt */
	uint64_t gone_gen; /* drain in which the process was found gone */
	struct ap_perfmap *jit; /* its perf map, once found */
	uint64_t jit_ns;	/* last (attempted) perf map open or read */
	uint64_t jit_gen;
	int pid;
	int nspid; /* its pid in its own pid namespace, 0 until needed */
	bool exited; /* ap_symbolizer_pid_exited() was called */
	bool missed; /* no data: the first snapshot failed */
	bool gone;   /* the process vanished; the last snapshot is kept for its samples */
};

struct ap_symbolizer {
	struct ap_htab pids;
	struct ap_elf_cache *cache;
	struct ap_dbg *dbg;
	char *dbgd_cache_dir;
	unsigned dbgd_timeout_ms;
	unsigned dbgd_wait_ms;
	bool dwarf_off;
	struct ap_kallsyms *ksyms;
	char *kallsyms_path;
	struct snapshot *last; /* consecutive frames are usually of one pid */
	uint64_t gen;
	bool ksyms_tried;
	struct ap_symbolizer_stats st;
};

#define DBGD_DEFAULT_TIMEOUT_MS 10000
#define DBGD_DEFAULT_WAIT_MS 1000

struct builder {
	struct ap_symbolizer *s;
	struct snap_map *maps;
	char *pool;
	size_t n, cap;
	size_t pool_len, pool_cap;
	int pid;
	int root_fd; /* O_PATH of /proc/PID/root: -1 not opened yet, < -1 -errno (gone) */
	bool anon; /* an anonymous executable mapping: maybe JIT code */
};


static uint64_t pid_hash(int pid)
{
	return ap_hash_bytes(&pid, sizeof(pid), 2);
}

static void maps_release(struct ap_symbolizer *s, struct snap_map *maps, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (maps[i].kind == MAP_FILE)
			ap_elf_cache_put(s->cache, maps[i].tab);
	free(maps);
}

static int pool_add(struct builder *b, const char *str, uint32_t *off)
{
	size_t len = strlen(str) + 1;

	if (b->pool_len + len > UINT32_MAX - 1)
		return -E2BIG;
	if (b->pool_len + len > b->pool_cap) {
		size_t ncap = b->pool_cap ? b->pool_cap * 2 : 256;
		char *p;

		while (ncap < b->pool_len + len)
			ncap *= 2;
		p = realloc(b->pool, ncap);
		if (!p)
			return -ENOMEM;
		b->pool = p;
		b->pool_cap = ncap;
	}
	memcpy(b->pool + b->pool_len, str, len);
	*off = (uint32_t)b->pool_len;
	b->pool_len += len;
	return 0;
}

/* Symbols of a file mapping, reached through map_files first: it works for deleted files
 * and for files in another mount namespace, where the path in maps means nothing to us. The
 * path inside the process's root is resolved there (RESOLVE_IN_ROOT): a symlink in a
 * container never leads to a host file. */
static struct ap_symtab *file_symtab(struct builder *b, const struct ap_maps_entry *e, int *err)
{
	char map_files[96];
	struct ap_elf_src src[2] = {
		{ .dirfd = AT_FDCWD, .path = map_files, .flags = AP_OPEN_MAGIC },
		{ .path = e->path, .flags = AP_OPEN_IN_ROOT | AP_OPEN_NOFOLLOW },
	};
	struct ap_symtab *t = NULL;
	size_t n = 1;

	snprintf(map_files, sizeof(map_files), "/proc/%d/map_files/%llx-%llx", b->pid,
		 (unsigned long long)e->start, (unsigned long long)e->end);
	if (b->root_fd == -1)
		b->root_fd = ap_open_proc_root(b->pid);
	/* a deleted file's path may by now name a different file (an upgrade): never guess */
	if (!e->deleted && b->root_fd >= 0) {
		src[1].dirfd = b->root_fd;
		n = 2;
	}
	*err = ap_elf_cache_get(b->s->cache, src, n, e->path, b->root_fd, &t);
	/* A process that has exited (its mappings were captured while it ran) has no /proc
	 * entries left (ENOENT), or is a zombie whose map_files/ answer ESRCH: its file by its
	 * path, if that is still the very file it mapped. */
	if ((*err == -ENOENT || *err == -ESRCH) && !e->deleted && b->root_fd < 0) {
		struct ap_elf_src host = { .dirfd = AT_FDCWD, .path = e->path,
					   .flags = AP_OPEN_NOFOLLOW, .match_id = true,
					   .dev_major = e->dev_major, .dev_minor = e->dev_minor,
					   .ino = e->inode };

		*err = ap_elf_cache_get(b->s->cache, &host, 1, e->path, -1, &t);
	}
	return t;
}

static int on_mapping(const struct ap_maps_entry *e, void *ctx)
{
	struct builder *b = ctx;
	struct snap_map m = { 0 };
	const char *path;
	int err = 0;

	if (e->perms[2] != 'x')
		return 0;
	m.start = e->start;
	m.end = e->end;
	m.offset = e->offset;
	if (e->path[0] == '/') {
		m.kind = MAP_FILE;
		path = e->path;
		m.tab = file_symtab(b, e, &err);
		/* an unreadable file leaves the mapping without symbols; only running out of
		 * memory fails the snapshot */
		if (err == -ENOMEM)
			return err;
		err = 0;
	} else if (!strcmp(e->path, "[vdso]")) {
		m.kind = MAP_VDSO;
		path = e->path;
		m.tab = ap_elf_cache_vdso(b->s->cache);
	} else if (!e->path[0] || !strncmp(e->path, "[anon", 5)) {
		m.kind = MAP_ANON;
		path = e->path[0] ? e->path : "[anon]";
	} else {
		m.kind = MAP_OTHER;
		path = e->path;
	}
	/* most mappings show the path their table was first loaded from: share that string */
	if (m.tab && m.tab->path && !strcmp(m.tab->path, path))
		m.path = PATH_IN_TAB;
	else
		err = pool_add(b, path, &m.path);
	if (!err && b->n == b->cap) {
		size_t ncap = b->cap ? b->cap * 2 : 16;
		struct snap_map *v = realloc(b->maps, ncap * sizeof(*v));

		if (v) {
			b->maps = v;
			b->cap = ncap;
		} else {
			err = -ENOMEM;
		}
	}
	if (err) {
		if (m.kind == MAP_FILE)
			ap_elf_cache_put(b->s->cache, m.tab);
		return err;
	}
	b->maps[b->n++] = m;
	b->anon |= m.kind == MAP_ANON;
	return 0;
}

/* The pid of the process in its own (innermost) pid namespace: the last NSpid field. */
static int read_nspid(int pid)
{
	char path[48], line[256];
	int nspid = pid;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = ap_fopen_untrusted(AT_FDCWD, path, AP_OPEN_NOFOLLOW, PROC_FILE_MAX);
	if (!f)
		return pid;
	while (fgets(line, sizeof(line), f)) {
		char *p = line + 6, *end;

		if (strncmp(line, "NSpid:", 6))
			continue;
		for (;;) {
			long v = strtol(p, &end, 10);

			if (end == p)
				break;
			if (v > 0 && v <= INT_MAX)
				nspid = (int)v;
			p = end;
		}
		break;
	}
	fclose(f);
	return nspid;
}

/* Open the process's perf map, or read what was appended to it: at most once a drain or
 * JIT_REREAD_NS unless forced. Once open, it is readable after the process is gone. */
static void jit_update(struct ap_symbolizer *s, struct snapshot *snap, bool force)
{
	uint64_t now = ap_mono_ns();

	if (!force && snap->jit_gen == s->gen && now - snap->jit_ns < JIT_REREAD_NS)
		return;
	snap->jit_ns = now;
	snap->jit_gen = s->gen;
	if (snap->jit) {
		ap_perfmap_update(snap->jit);
		return;
	}
	if (snap->gone || snap->exited)
		return;
	if (!snap->nspid)
		snap->nspid = read_nspid(snap->pid);
	snap->jit = ap_perfmap_open(snap->pid, snap->nspid);
}

/* Re-read the maps of snap->pid; on failure the previous snapshot (if any) stays. */
/* From /proc/PID/maps now, or from `cap` (taken earlier, maybe on another thread). */
static int refresh_from(struct ap_symbolizer *s, struct snapshot *snap,
			const struct ap_maps_capture *cap)
{
	struct builder b = { .s = s, .pid = snap->pid, .root_fd = -1 };
	int err;

	snap->taken_ns = ap_mono_ns();
	snap->gen = s->gen;
	err = cap ? ap_maps_capture_walk(cap, on_mapping, &b) :
		    ap_maps_read(snap->pid, on_mapping, &b);
	if (b.root_fd >= 0)
		close(b.root_fd);
	/* a zombie's maps are empty (so are a kernel thread's): nothing that could ever
	 * resolve, and a previous snapshot is better kept than replaced */
	if (!err && !b.n)
		err = -ESRCH;
	if (err) {
		maps_release(s, b.maps, b.n);
		free(b.pool);
		if (snap->nmaps) {
			if (err == -ESRCH && !snap->gone) {
				snap->gone = true;
				snap->gone_gen = s->gen;
			}
		} else if (!snap->missed) {
			snap->missed = true;
			if (err == -ESRCH)
				s->st.pids_missed++;
		}
		return err;
	}
	maps_release(s, snap->maps, snap->nmaps);
	free(snap->pool);
	/* give the doubling slack back: snapshots live as long as their processes */
	if (b.n && b.n < b.cap) {
		struct snap_map *v = realloc(b.maps, b.n * sizeof(*v));

		if (v)
			b.maps = v;
	}
	snap->maps = b.maps;
	snap->nmaps = b.n;
	snap->pool = b.pool;
	snap->missed = false;
	snap->gone = false;
	snap->exited = false;
	s->st.pids_snapshotted++;
	/* a short-lived JIT process is gone by the time its samples are drained: find its
	 * perf map now */
	if (b.anon)
		jit_update(s, snap, true);
	return 0;
}

static int refresh(struct ap_symbolizer *s, struct snapshot *snap)
{
	return refresh_from(s, snap, NULL);
}

static struct snapshot *find_snapshot(struct ap_symbolizer *s, int pid)
{
	struct ap_hnode *n;

	if (s->last && s->last->pid == pid)
		return s->last;
	for (n = ap_htab_first(&s->pids, pid_hash(pid)); n; n = ap_htab_next(n)) {
		struct snapshot *snap = AP_CONTAINER_OF(n, struct snapshot, node);

		if (snap->pid == pid) {
			s->last = snap;
			return snap;
		}
	}
	return NULL;
}

static struct snapshot *new_snapshot(struct ap_symbolizer *s, int pid)
{
	struct snapshot *snap = calloc(1, sizeof(*snap));

	if (!snap)
		return NULL;
	snap->pid = pid;
	if (ap_htab_insert(&s->pids, &snap->node, pid_hash(pid))) {
		free(snap);
		return NULL;
	}
	return snap;
}

static void snapshot_free(struct ap_symbolizer *s, struct snapshot *snap)
{
	if (s->last == snap)
		s->last = NULL;
	maps_release(s, snap->maps, snap->nmaps);
	ap_perfmap_free(snap->jit);
	free(snap->pool);
	free(snap);
}

/* Snapshot pid from /proc now (cap NULL) or from a capture. */
static int snapshot_from(struct ap_symbolizer *s, int pid, const struct ap_maps_capture *cap)
{
	struct snapshot *snap;

	if (!s || pid <= 0)
		return -EINVAL;
	snap = find_snapshot(s, pid);
	if (!snap) {
		snap = new_snapshot(s, pid);
		if (!snap)
			return -ENOMEM;
	}
	return refresh_from(s, snap, cap);
}

int ap_symbolizer_snapshot_pid(struct ap_symbolizer *s, int pid)
{
	return snapshot_from(s, pid, NULL);
}

int ap_symbolizer_snapshot_capture(struct ap_symbolizer *s, int pid,
				   const struct ap_maps_capture *c)
{
	return c ? snapshot_from(s, pid, c) : -EINVAL;
}

void ap_symbolizer_pid_exec(struct ap_symbolizer *s, int pid)
{
	struct snapshot *snap = s ? find_snapshot(s, pid) : NULL;

	if (!snap)
		return;
	maps_release(s, snap->maps, snap->nmaps);
	free(snap->pool);
	snap->maps = NULL;
	snap->pool = NULL;
	snap->nmaps = 0;
	ap_perfmap_free(snap->jit); /* a new runtime writes its own */
	snap->jit = NULL;
	snap->jit_ns = 0;
}

void ap_symbolizer_pid_exited(struct ap_symbolizer *s, int pid)
{
	struct snapshot *snap = s ? find_snapshot(s, pid) : NULL;

	if (snap)
		snap->exited = true;
}

static bool gc_drop(struct ap_hnode *n, void *ctx)
{
	struct snapshot *snap = AP_CONTAINER_OF(n, struct snapshot, node);
	struct ap_symbolizer *s = ctx;

	/* a process found gone without an exit notice is kept for one more drain, in case
	 * samples taken before it died are still queued */
	if (!snap->exited && !snap->missed && !(snap->gone && snap->gone_gen != s->gen))
		return false;
	snapshot_free(s, snap);
	return true;
}

void ap_symbolizer_gc(struct ap_symbolizer *s)
{
	if (!s)
		return;
	ap_htab_sweep(&s->pids, gc_drop, s);
	s->gen++;
	/* debug files fetched meanwhile, and a new wait budget for the next drain */
	ap_dbg_poll(s->dbg, 0);
	/* the DWARF pages this drain's new addresses read: the results are cached, and a
	 * whole-file mapping would otherwise stay resident page by page (megabytes of a
	 * libc's debug file in a long run) */
	ap_dbg_release_pages(s->dbg);
}

static const struct snap_map *find_map(const struct snapshot *snap, uint64_t addr)
{
	size_t lo = 0, hi = snap->nmaps;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (snap->maps[mid].start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo || addr >= snap->maps[lo - 1].end)
		return NULL;
	return &snap->maps[lo - 1];
}

int ap_symbolizer_add_mapping(struct ap_symbolizer *s, int pid, uint64_t start, uint64_t end,
			      uint64_t offset, uint64_t dev, uint64_t ino)
{
	struct snapshot *snap = s && pid > 0 ? find_snapshot(s, pid) : NULL;
	struct snap_map m = { 0 }, *v;
	size_t i;

	if (!snap || end <= start || find_map(snap, start))
		return 0;
	if (ap_elf_cache_get_inode(s->cache, dev, ino, &m.tab))
		return 0;
	if (!m.tab->path) { /* it needs a name to show */
		ap_elf_cache_put(s->cache, m.tab);
		return 0;
	}
	v = realloc(snap->maps, (snap->nmaps + 1) * sizeof(*v));
	if (!v) {
		ap_elf_cache_put(s->cache, m.tab);
		return -ENOMEM;
	}
	snap->maps = v;
	for (i = snap->nmaps; i > 0 && v[i - 1].start > start; i--)
		v[i] = v[i - 1];
	m.start = start;
	m.end = end;
	m.offset = offset;
	m.path = PATH_IN_TAB;
	m.kind = MAP_FILE;
	v[i] = m;
	snap->nmaps++;
	s->st.mappings_added++;
	return 1;
}

static bool may_refresh(const struct ap_symbolizer *s, const struct snapshot *snap)
{
	if (snap->exited || snap->gone)
		return false;
	return snap->gen != s->gen || ap_mono_ns() - snap->taken_ns >= RESNAP_MIN_NS;
}

static const char *map_path(const struct snapshot *snap, const struct snap_map *m)
{
	return m->path == PATH_IN_TAB ? m->tab->path : snap->pool + m->path;
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash && slash[1] ? slash + 1 : path;
}

/* Fill rel_addr, module and mapping of a frame in mapping m; returns the ELF symbol's name or
 * NULL, and in *vaddr the looked-up address in the ELF's vaddr space (false: none). */
static const char *resolve_in_map(struct ap_profile *p, const struct snapshot *snap,
				  const struct snap_map *m, uint64_t addr, uint64_t look,
				  struct ap_frame *f, uint64_t *vaddr, bool *have_vaddr)
{
	const struct ap_symtab_sym *sym = NULL;
	const char *path = map_path(snap, m);
	struct ap_mapping mp = { 0 };

	*have_vaddr = false;
	mp.start = m->start;
	mp.limit = m->end;
	mp.offset = m->offset;
	mp.file = ap_profile_intern(p, path);
	if (m->tab && m->tab->build_id)
		mp.build_id = ap_profile_intern(p, m->tab->build_id);
	f->module = ap_profile_intern(p, base_name(path));
	if (mp.file == UINT32_MAX || mp.build_id == UINT32_MAX)
		f->mapping = UINT32_MAX;
	else
		f->mapping = ap_profile_add_mapping(p, &mp);
	/* without segments to translate through, the file offset is the best offline key */
	f->rel_addr = addr - m->start + m->offset;
	if (!m->tab)
		return NULL;
	ap_symtab_file_to_vaddr(m->tab, addr - m->start + m->offset, &f->rel_addr);
	if (ap_symtab_file_to_vaddr(m->tab, look - m->start + m->offset, vaddr)) {
		*have_vaddr = true;
		sym = ap_symtab_find(m->tab, *vaddr);
	}
	return sym ? ap_symtab_name(m->tab, sym) : NULL;
}

/* JIT code: the perf map names it (and becomes the frame's module). */
static const char *resolve_jit(struct ap_symbolizer *s, struct ap_profile *p,
			       struct snapshot *snap, uint64_t look, struct ap_frame *f)
{
	const char *name;

	if (!snap->jit)
		jit_update(s, snap, false);
	name = ap_perfmap_find(snap->jit, look, NULL);
	/* compiled after the last read */
	if (!name && snap->jit) {
		jit_update(s, snap, false);
		name = ap_perfmap_find(snap->jit, look, NULL);
	}
	if (name) {
		s->st.jit_resolved++;
		f->module = ap_profile_intern(p, ap_perfmap_module(snap->jit));
	}
	return name;
}

static uint32_t add_frame(struct ap_symbolizer *s, struct ap_profile *p, struct ap_frame *f,
			  const char *name)
{
	if (name)
		s->st.frames_resolved++;
	else
		s->st.frames_unresolved++;
	f->name = ap_profile_intern(p, name ? name : UNKNOWN);
	if (f->name == UINT32_MAX || f->module == UINT32_MAX || f->mapping == UINT32_MAX)
		return UINT32_MAX;
	return ap_profile_add_frame(p, f);
}

/* One frame per element of a DWARF chain (all sharing f's address, module and mapping), the
 * outermost `max` of them when it is longer, all but the last flagged AP_FRAME_INLINED.
 * Returns how many were written, 0 on ENOMEM. */
static size_t add_chain(struct ap_symbolizer *s, struct ap_profile *p, struct ap_frame *f,
			const char *sym_name, const struct ap_src_frame *chain, size_t n,
			uint32_t *out, size_t max, bool physical_only)
{
	size_t skip = n > max ? n - max : 0, k = 0;

	if (f->module == UINT32_MAX || f->mapping == UINT32_MAX)
		return 0;
	if (skip && !physical_only)
		s->st.inline_truncated++;
	s->st.frames_resolved++;
	s->st.frames_with_source++;
	s->st.inline_frames += n - skip - 1;
	for (size_t i = skip; i < n; i++) {
		const char *name = chain[i].name;

		/* the physical function without a DWARF name (an assembly file's line table, a
		 * broken DIE) is the ELF symbol */
		if (!name)
			name = i == n - 1 && sym_name ? sym_name : UNKNOWN;
		f->name = ap_profile_intern(p, name);
		f->file = chain[i].file ? ap_profile_intern(p, chain[i].file) : 0;
		f->line = chain[i].line;
		/* all but the physical function are inlined into the next frame: pprof writes
		 * them as Lines of one Location */
		f->flags = i < n - 1 ? AP_FRAME_INLINED : 0;
		if (f->name == UINT32_MAX || f->file == UINT32_MAX)
			return 0;
		out[k] = ap_profile_add_frame(p, f);
		if (out[k++] == UINT32_MAX)
			return 0;
	}
	return k;
}

static size_t user_frames(struct ap_symbolizer *s, struct ap_profile *p, int pid, uint64_t addr,
			  bool is_return_addr, uint32_t *out, size_t max, bool physical_only)
{
	/* a return address points after the call, possibly at the next function already */
	uint64_t look = is_return_addr && addr ? addr - 1 : addr, vaddr = 0;
	const struct ap_src_frame *chain = NULL;
	const struct snap_map *m = NULL;
	struct ap_frame f = { 0 };
	struct snapshot *snap;
	const char *name = NULL;
	bool have_vaddr = false, jit_miss = false;
	size_t n = 0, nframes;

	if (!max)
		return 0;
	f.addr = addr;
	f.kind = AP_FRAME_USER;
	snap = pid > 0 ? find_snapshot(s, pid) : NULL;
	if (!snap && pid > 0) {
		snap = new_snapshot(s, pid);
		if (!snap)
			return 0;
		s->last = snap;
		refresh(s, snap);
	}
	if (snap) {
		m = find_map(snap, look);
		/* code mapped after the snapshot (dlopen, exec): look again, but rarely */
		if (!m && may_refresh(s, snap) && !refresh(s, snap))
			m = find_map(snap, look);
	}
	if (m) {
		name = resolve_in_map(p, snap, m, addr, look, &f, &vaddr, &have_vaddr);
		if (have_vaddr && m->tab->dbg && !s->dwarf_off)
			n = ap_dbg_lookup(s->dbg, m->tab, vaddr, &chain);
		else if (!m->tab && (m->kind == MAP_ANON || m->kind == MAP_FILE)) {
			name = resolve_jit(s, p, snap, look, &f);
			jit_miss = !name && snap->jit;
		}
	} else {
		f.module = ap_profile_intern(p, UNKNOWN);
	}
	if (n)
		return add_chain(s, p, &f, name, chain, n, out, max, physical_only);
	nframes = ap_profile_nframes(p);
	out[0] = add_frame(s, p, &f, name);
	/* code of a process with a perf map that the map does not list yet: the runtime may
	 * publish it later (V8 writes its map through a stdio buffer); asked again each drain */
	if (jit_miss && out[0] != UINT32_MAX && ap_profile_nframes(p) > nframes)
		ap_profile_pend_name(p, out[0], pid, look);
	return out[0] == UINT32_MAX ? 0 : 1;
}

size_t ap_symbolizer_user_frames(struct ap_symbolizer *s, struct ap_profile *p, int pid,
				 uint64_t addr, bool is_return_addr, uint32_t *out, size_t max)
{
	return user_frames(s, p, pid, addr, is_return_addr, out, max, false);
}

uint32_t ap_symbolizer_user_frame(struct ap_symbolizer *s, struct ap_profile *p, int pid,
				  uint64_t addr, bool is_return_addr)
{
	uint32_t id;

	/* one slot: the chain is cut to its outermost frame, the physical function */
	return user_frames(s, p, pid, addr, is_return_addr, &id, 1, true) ? id : UINT32_MAX;
}

static void load_kallsyms(struct ap_symbolizer *s)
{
	s->ksyms_tried = true;
	/* unreadable kallsyms leaves every kernel frame "[unknown]", which is what a user
	 * without the privilege would get anyway */
	if (ap_kallsyms_load(s->kallsyms_path ? s->kallsyms_path : DEFAULT_KALLSYMS, &s->ksyms))
		s->ksyms = NULL;
}

int ap_symbolizer_load_kernel(struct ap_symbolizer *s)
{
	if (!s->ksyms_tried)
		load_kallsyms(s);
	return s->ksyms ? 0 : -ENOENT;
}

uint32_t ap_symbolizer_kernel_frame(struct ap_symbolizer *s, struct ap_profile *p, uint64_t addr,
				    bool is_return_addr)
{
	uint64_t look = is_return_addr && addr ? addr - 1 : addr;
	const char *name = NULL, *module = KERNEL_MODULE;
	struct ap_frame f = { 0 };

	if (!s->ksyms_tried)
		load_kallsyms(s);
	if (ap_kallsyms_find(s->ksyms, look, &name, &module, NULL)) {
		name = NULL;
		module = KERNEL_MODULE;
	}
	f.addr = addr;
	f.rel_addr = addr;
	f.kind = AP_FRAME_KERNEL;
	f.module = ap_profile_intern(p, module);
	return add_frame(s, p, &f, name);
}

static bool resolve_pending(void *ctx, struct ap_profile *p, const struct ap_pending_name *e)
{
	struct ap_symbolizer *s = ctx;
	struct snapshot *snap = find_snapshot(s, e->pid);
	const char *name;

	if (!snap || !snap->jit)
		return false; /* its map is gone: it stays unnamed */
	jit_update(s, snap, false);
	name = ap_perfmap_find(snap->jit, e->addr, NULL);
	if (!name)
		return true;
	if (ap_profile_rename_frame(p, e->frame, name, ap_perfmap_module(snap->jit)))
		return false;
	s->st.jit_resolved++;
	s->st.jit_resolved_late++;
	return false;
}

void ap_symbolizer_resolve_pending(struct ap_symbolizer *s, struct ap_profile *p)
{
	if (ap_profile_npending(p))
		ap_profile_sweep_pending(p, resolve_pending, s);
}

int ap_symbolizer_set_kallsyms_path(struct ap_symbolizer *s, const char *path)
{
	char *copy = NULL;

	if (path) {
		copy = strdup(path);
		if (!copy)
			return -ENOMEM;
	}
	free(s->kallsyms_path);
	s->kallsyms_path = copy;
	ap_kallsyms_free(s->ksyms);
	s->ksyms = NULL;
	s->ksyms_tried = false;
	return 0;
}

void ap_symbolizer_get_stats(const struct ap_symbolizer *s, struct ap_symbolizer_stats *out)
{
	struct ap_dbg_stats d;

	*out = s->st;
	ap_elf_cache_counts(s->cache, &out->elf_loaded, &out->elf_failed);
	ap_dbg_get_stats(s->dbg, &d);
	out->debug_found = d.found;
	out->debug_failed = d.failed + d.fds_skipped;
	out->debuginfod_fetched = d.debuginfod_fetched;
	out->debuginfod_failed = d.debuginfod_failed;
	out->debug_inflated = d.inflated;
	out->debug_inflate_failed = d.inflate_failed;
	out->debug_cache_untrusted = d.cache_untrusted;
	out->parse_limits_hit = 0;
	for (unsigned int i = 0; i < AP_SYM_LIMIT_MAX; i++)
		out->parse_limits_hit += ap_sym_limit_hits(i);
}

int ap_symbolizer_set_debug_dirs(struct ap_symbolizer *s, const char *const *dirs, size_t n)
{
	if (n && !dirs)
		return -EINVAL;
	return ap_dbg_set_dirs(s->dbg, dirs, n);
}

int ap_symbolizer_set_debug_cache(struct ap_symbolizer *s, const char *dir)
{
	return ap_dbg_set_inflate_dir(s->dbg, dir);
}

void ap_symbolizer_set_dwarf(struct ap_symbolizer *s, bool enabled)
{
	s->dwarf_off = !enabled;
}

int ap_symbolizer_set_debuginfod_options(struct ap_symbolizer *s, const char *cache_dir,
					 unsigned timeout_ms, unsigned wait_ms)
{
	char *copy = NULL;

	if (cache_dir && !(copy = strdup(cache_dir)))
		return -ENOMEM;
	free(s->dbgd_cache_dir);
	s->dbgd_cache_dir = copy;
	s->dbgd_timeout_ms = timeout_ms ? timeout_ms : DBGD_DEFAULT_TIMEOUT_MS;
	s->dbgd_wait_ms = wait_ms;
	return 0;
}

int ap_symbolizer_set_debuginfod(struct ap_symbolizer *s, const char *urls)
{
	/* NULL: the user asked for "the usual servers"; nothing else ever reads the variable,
	 * since Debian sets it for every login shell and the agent makes no network calls
	 * unless asked */
	if (!urls) {
		urls = getenv("DEBUGINFOD_URLS");
		if (!urls || !*urls)
			return -ENOENT;
	}
	return ap_dbg_set_debuginfod(s->dbg, urls, s->dbgd_cache_dir, s->dbgd_timeout_ms,
				     s->dbgd_wait_ms);
}

void ap_symbolizer_debuginfod_wait(struct ap_symbolizer *s, unsigned timeout_ms)
{
	ap_dbg_poll(s->dbg, timeout_ms);
}

struct ap_symbolizer *ap_symbolizer_new(void)
{
	struct ap_symbolizer *s = calloc(1, sizeof(*s));
	int err = ENOMEM;

	if (!s)
		return NULL;
	s->dbgd_timeout_ms = DBGD_DEFAULT_TIMEOUT_MS;
	s->dbgd_wait_ms = DBGD_DEFAULT_WAIT_MS;
	s->dbg = ap_dbg_new();
	if (!s->dbg)
		goto fail;
	s->cache = ap_elf_cache_new(IDLE_CACHE_BYTES, s->dbg);
	if (!s->cache) {
		err = errno;
		goto fail;
	}
	return s;
fail:
	ap_dbg_free(s->dbg);
	free(s);
	errno = err;
	return NULL;
}

static bool drop_all(struct ap_hnode *n, void *ctx)
{
	snapshot_free(ctx, AP_CONTAINER_OF(n, struct snapshot, node));
	return true;
}

void ap_symbolizer_free(struct ap_symbolizer *s)
{
	if (!s)
		return;
	ap_htab_sweep(&s->pids, drop_all, s);
	ap_htab_release(&s->pids);
	/* the cache releases the debug info of its tables: before the debug context goes */
	ap_elf_cache_free(s->cache);
	ap_dbg_free(s->dbg);
	free(s->dbgd_cache_dir);
	ap_kallsyms_free(s->ksyms);
	free(s->kallsyms_path);
	free(s);
}
