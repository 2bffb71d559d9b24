// SPDX-License-Identifier: MIT
/*
 * Where each ELF file's DWARF is, and the two caches that keep DWARF lookups cheap.
 *
 * Locating happens when a symbol table is loaded (at snapshot time, while the process and its
 * mount namespace still exist) and costs a few stat()s: the file's own .debug_info; a build-id
 * file under the debug roots (/usr/lib/debug/.build-id/xx/yyyy.debug); the .gnu_debuglink
 * target next to the binary, in its .debug/ directory or under the roots; and last, when the
 * user enabled it, debuginfod. Debug info inside the process's namespace (its own sections, a
 * debuglink next to it) is reached through a descriptor kept open, so a deleted binary, an
 * exited process or a vanished container still symbolize. Nothing is parsed until an address
 * of the file is looked up.
 *
 * Memory: at most MAX_OPEN_DWARF debug files are open in libdw at once (least recently used
 * closed first: libdw's per-CU caches go with them), and resolved chains are cached by
 * (file, address) up to CHAIN_CACHE_BYTES, then flushed: a profile revisits the same
 * addresses every drain, and a chain costs a DIE-tree walk to compute.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "lib/clock.h"
#include "lib/cache_dir.h"
#include "lib/safe_open.h"
#include "symbol_internal.h"

#define DEFAULT_DEBUG_DIR "/usr/lib/debug"
#define MAX_OPEN_DWARF 8
#define MAX_HELD_FDS 256
#define CHAIN_CACHE_BYTES (8u << 20)
/* a debuglink target checked by CRC is read whole: larger ones are not tried */
#define DEBUGLINK_CRC_MAX_BYTES (1ull << 30)
#define DEFAULT_TIMEOUT_MS 10000
#define DEFAULT_WAIT_MS 1000
/* uncompressed copies of compressed debug files (debug_inflate.c) */
#define INFLATE_CAP_BYTES (2ull << 30)

enum { DI_READY, DI_PENDING, DI_FAILED };

struct ap_debuginfo {
	struct ap_hnode pend_node; /* in pending, by build-id, while DI_PENDING */
	struct ap_debuginfo *prev, *next; /* open handles, most recently used first */
	struct ap_dwarf *dw;
	char *path;	/* debug file to open when fd < 0 */
	char *build_id; /* expected build-id, NULL when the ELF has none */
	uint64_t id;	/* keys resolved chains: never reused */
	uint64_t wait_left_ns;
	int fd; /* held descriptor of the debug file (or of the ELF itself) */
	int state;
};

struct chain_ent {
	struct ap_hnode node;
	uint64_t id;
	uint64_t vaddr;
	size_t bytes;
	uint32_t n;
	struct ap_src_frame f[];
};

struct ap_dbg {
	char **dirs;
	size_t ndirs;
	struct ap_dbgd *dbgd;
	uint64_t wait_ns;
	uint64_t drain_budget_ns;
	struct ap_htab pending;
	struct ap_debuginfo *lru_head, *lru_tail;
	size_t nopen;
	struct ap_htab chains;
	size_t chain_bytes;
	size_t held_fds;
	uint64_t next_id;
	char *inflate_dir; /* NULL: not chosen yet; "": off */
	struct ap_dbg_stats st;
};


static uint64_t str_hash(const char *s)
{
	return ap_hash_bytes(s, strlen(s), 7);
}

/* ---- configuration ---- */

static void free_dirs(struct ap_dbg *d)
{
	for (size_t i = 0; i < d->ndirs; i++)
		free(d->dirs[i]);
	free(d->dirs);
	d->dirs = NULL;
	d->ndirs = 0;
}

int ap_dbg_set_dirs(struct ap_dbg *d, const char *const *dirs, size_t n)
{
	char **v = n ? calloc(n, sizeof(*v)) : NULL;

	if (n && !v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		v[i] = strdup(dirs[i]);
		if (!v[i]) {
			while (i--)
				free(v[i]);
			free(v);
			return -ENOMEM;
		}
	}
	free_dirs(d);
	d->dirs = v;
	d->ndirs = n;
	return 0;
}

int ap_dbg_set_inflate_dir(struct ap_dbg *d, const char *dir)
{
	char buf[4096], *copy;
	int err = 0;

	if (!dir)
		err = ap_cache_dir("inflated", buf, sizeof(buf));
	else if (*dir)
		err = ap_mkdir_p(dir);
	/* no usable directory: compressed files are inflated in memory, as before */
	copy = strdup(err || (dir && !*dir) ? "" : dir ? dir : buf);
	if (!copy)
		return -ENOMEM;
	free(d->inflate_dir);
	d->inflate_dir = copy;
	return err;
}

static bool fail_pending(struct ap_hnode *n, void *ctx)
{
	struct ap_dbg *d = ctx;

	AP_CONTAINER_OF(n, struct ap_debuginfo, pend_node)->state = DI_FAILED;
	d->st.debuginfod_failed++;
	return true;
}

int ap_dbg_set_debuginfod(struct ap_dbg *d, const char *urls, const char *cache_dir,
			  unsigned timeout_ms, unsigned wait_ms)
{
	char dir[4096];
	struct ap_dbgd *c = NULL;
	int err;

	if (urls && *urls) {
		if (cache_dir)
			err = ap_mkdir_p(cache_dir);
		else
			err = ap_cache_dir("debuginfod", dir, sizeof(dir));
		if (err)
			return err;
		c = ap_dbgd_new(urls, cache_dir ? cache_dir : dir,
				timeout_ms ? timeout_ms : DEFAULT_TIMEOUT_MS);
		if (!c)
			return -errno;
	}
	/* fetches queued with the old client will never be answered */
	ap_htab_sweep(&d->pending, fail_pending, d);
	ap_dbgd_free(d->dbgd);
	d->dbgd = c;
	d->wait_ns = (uint64_t)wait_ms * 1000000ULL;
	d->drain_budget_ns = d->wait_ns;
	return 0;
}

/* ---- locating ---- */

struct elf_facts {
	bool has_debug_info;
	const char *link; /* .gnu_debuglink file name, in the ELF's data */
	uint32_t link_crc;
};

static void read_facts(Elf *elf, struct elf_facts *f)
{
	Elf_Scn *scn = NULL;
	size_t shstrndx;
	GElf_Ehdr eh;
	GElf_Shdr sh;

	memset(f, 0, sizeof(*f));
	if (!gelf_getehdr(elf, &eh) || elf_getshdrstrndx(elf, &shstrndx))
		return;
	while ((scn = elf_nextscn(elf, scn))) {
		const char *name;
		Elf_Data *data;

		if (!gelf_getshdr(scn, &sh) || !(name = elf_strptr(elf, shstrndx, sh.sh_name)))
			continue;
		if (!strcmp(name, ".debug_info") && sh.sh_type != SHT_NOBITS && sh.sh_size)
			f->has_debug_info = true;
		if (strcmp(name, ".gnu_debuglink") || !(data = elf_getdata(scn, NULL)) ||
		    !data->d_buf) {
			continue;
		}
		/* NUL-terminated name, padded to 4, then the CRC in the file's byte order */
		const unsigned char *b = data->d_buf;
		size_t nlen = strnlen(data->d_buf, data->d_size), off = (nlen + 4) & ~(size_t)3;

		/* a name from a hostile binary: one plain component, never a path ("/", "..") */
		if (!nlen || off + 4 > data->d_size || !ap_safe_name(data->d_buf))
			continue;
		f->link = data->d_buf;
		if (eh.e_ident[EI_DATA] == ELFDATA2MSB)
			f->link_crc = (uint32_t)b[off] << 24 | (uint32_t)b[off + 1] << 16 |
				      (uint32_t)b[off + 2] << 8 | b[off + 3];
		else
			f->link_crc = (uint32_t)b[off + 3] << 24 | (uint32_t)b[off + 2] << 16 |
				      (uint32_t)b[off + 1] << 8 | b[off];
	}
}

static uint32_t file_crc(int fd)
{
	unsigned char buf[65536];
	uLong crc = crc32(0, NULL, 0);
	off_t off = 0;
	ssize_t n;

	while ((n = pread(fd, buf, sizeof(buf), off)) > 0) {
		crc = crc32(crc, buf, (uInt)n);
		off += n;
	}
	return (uint32_t)crc;
}

/* A debuglink candidate is the one when it has DWARF and is of the same build (build-id, or
 * the CRC the link records when there is no build-id). dirfd/path is opened with `flags`
 * (ap_open_untrusted). Returns an open fd or -errno. */
static int check_candidate(int dirfd, const char *path, int flags, const char *build_id,
			   uint32_t crc)
{
	char hex[2 * AP_BUILD_ID_MAX + 1];
	struct elf_facts f;
	Elf *elf;
	/* without a build-id the whole file is read for its CRC: bounded */
	int fd = ap_open_untrusted(dirfd, path, flags, build_id ? 0 : DEBUGLINK_CRC_MAX_BYTES, NULL),
	    err = -ESTALE;

	if (fd < 0)
		return fd;
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (elf && elf_kind(elf) == ELF_K_ELF) {
		read_facts(elf, &f);
		if (f.has_debug_info) {
			if (build_id && !ap_symtab_build_id(elf, hex, sizeof(hex)))
				err = strcmp(hex, build_id) ? -ESTALE : 0;
			else
				err = file_crc(fd) == crc ? 0 : -ESTALE;
		}
	}
	elf_end(elf);
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}

/* check_candidate() of rel (relative, from a hostile binary or maps) under a host debug root:
 * RESOLVE_BENEATH keeps it there whatever "..", or symlink, the name holds. */
static int check_under(const char *dir, const char *rel, const char *build_id, uint32_t crc)
{
	int dfd = ap_open_dir(dir), fd;

	if (dfd < 0)
		return dfd;
	fd = check_candidate(dfd, rel, AP_OPEN_BENEATH, build_id, crc);
	close(dfd);
	return fd;
}

static struct ap_debuginfo *di_new(struct ap_dbg *d, const struct ap_symtab *t)
{
	struct ap_debuginfo *di = calloc(1, sizeof(*di));

	if (!di)
		return NULL;
	di->fd = -1;
	di->id = ++d->next_id;
	di->wait_left_ns = d->wait_ns;
	if (t->build_id && !(di->build_id = strdup(t->build_id))) {
		free(di);
		return NULL;
	}
	return di;
}

/* Keep fd (taken over) if the cap allows; else close it and return false. */
static bool hold_fd(struct ap_dbg *d, struct ap_debuginfo *di, int fd)
{
	if (d->held_fds >= MAX_HELD_FDS) {
		close(fd);
		d->st.fds_skipped++;
		return false;
	}
	di->fd = fd;
	d->held_fds++;
	return true;
}

static int set_path(struct ap_debuginfo *di, const char *path)
{
	di->path = strdup(path);
	return di->path ? 0 : -ENOMEM;
}

/* The debuglink target: next to the binary (inside the process's root), in .debug/ there, or
 * under a debug root. Returns 1 when found (di filled), 0 when not, or -ENOMEM. */
static int find_debuglink(struct ap_dbg *d, struct ap_debuginfo *di, const struct elf_facts *f,
			  int root_fd, const char *display_path)
{
	const char *slash = display_path ? strrchr(display_path, '/') : NULL;
	int dlen = slash ? (int)(slash - display_path) : 0;
	char rel[4096], path[4096];

	if (!f->link || !slash)
		return 0;
	for (size_t i = 0; i < 2 + d->ndirs; i++) {
		bool inside = i < 2;
		int fd;

		if (snprintf(rel, sizeof(rel), "%.*s/%s%s", dlen, display_path,
			     i == 1 ? ".debug/" : "", f->link) >= (int)sizeof(rel))
			return 0;
		/* inside the process's root: its symlinks resolve there, not on the host, and
		 * the file named by the binary is not a symlink. Without a root (the process
		 * is gone; its binary was found by path on the host) next to it on the host. */
		if (inside)
			fd = check_candidate(root_fd >= 0 ? root_fd : AT_FDCWD, rel,
					     AP_OPEN_NOFOLLOW |
						     (root_fd >= 0 ? AP_OPEN_IN_ROOT : 0),
					     di->build_id, f->link_crc);
		else
			fd = check_under(d->dirs[i - 2], rel + (rel[0] == '/'), di->build_id,
					 f->link_crc);
		if (fd < 0)
			continue;
		/* kept open: a file inside a container is reachable only while it lives */
		if (inside)
			return hold_fd(d, di, fd) ? 1 : 0;
		close(fd);
		snprintf(path, sizeof(path), "%s/%s", d->dirs[i - 2], rel + (rel[0] == '/'));
		return set_path(di, path) ? -ENOMEM : 1;
	}
	return 0;
}

static int find_local(struct ap_dbg *d, struct ap_debuginfo *di, const struct elf_facts *f,
		      int elf_fd, int root_fd, const char *display_path)
{
	char rel[128], path[4096];
	struct stat st;
	int fd;

	if (f->has_debug_info) {
		fd = fcntl(elf_fd, F_DUPFD_CLOEXEC, 0);
		if (fd >= 0 && hold_fd(d, di, fd))
			return 1;
	}
	/* the build-id names a file: hex only, of a bounded length */
	if (di->build_id && ap_cache_valid_id(di->build_id, AP_BUILD_ID_MAX) &&
	    strlen(di->build_id) > 2)
		snprintf(rel, sizeof(rel), ".build-id/%.2s/%s.debug", di->build_id,
			 di->build_id + 2);
	else
		rel[0] = '\0';
	for (size_t i = 0; rel[0] && i < d->ndirs; i++) {
		int dfd = ap_open_dir(d->dirs[i]);

		fd = dfd >= 0 ? ap_path_untrusted(dfd, rel, AP_OPEN_BENEATH, 0, &st) : -1;
		if (dfd >= 0)
			close(dfd);
		if (fd >= 0) {
			close(fd);
			snprintf(path, sizeof(path), "%s/%s", d->dirs[i], rel);
			return set_path(di, path) ? -ENOMEM : 1;
		}
		/* a container that ships its own debug files */
		if (root_fd < 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", d->dirs[i], rel);
		fd = ap_open_untrusted(root_fd, path, AP_OPEN_IN_ROOT, 0, NULL);
		if (fd >= 0)
			return hold_fd(d, di, fd) ? 1 : 0;
	}
	return find_debuglink(d, di, f, root_fd, display_path);
}

int ap_dbg_locate(struct ap_dbg *d, struct ap_symtab *t, Elf *elf, int elf_fd, int root_fd,
		  const char *display_path)
{
	struct ap_debuginfo *di;
	struct elf_facts f;
	int found;

	t->dbg = NULL;
	read_facts(elf, &f);
	di = di_new(d, t);
	if (!di)
		return -ENOMEM;
	found = find_local(d, di, &f, elf_fd, root_fd, display_path);
	if (found < 0) {
		ap_dbg_release(d, di);
		return found;
	}
	if (found) {
		d->st.found++;
	} else if (d->dbgd && di->build_id) {
		int err = ap_dbgd_request(d->dbgd, di->build_id);

		if (err == -ENOMEM) {
			ap_dbg_release(d, di);
			return err;
		}
		if (err || ap_htab_insert(&d->pending, &di->pend_node, str_hash(di->build_id))) {
			d->st.debuginfod_failed++;
			ap_dbg_release(d, di);
			return 0;
		}
		di->state = DI_PENDING;
	} else {
		ap_dbg_release(d, di);
		return 0;
	}
	t->dbg = di;
	return 0;
}

/* ---- open handles ---- */

static void lru_unlink(struct ap_dbg *d, struct ap_debuginfo *di)
{
	if (di->prev)
		di->prev->next = di->next;
	else
		d->lru_head = di->next;
	if (di->next)
		di->next->prev = di->prev;
	else
		d->lru_tail = di->prev;
	di->prev = di->next = NULL;
}

static void lru_push(struct ap_dbg *d, struct ap_debuginfo *di)
{
	di->next = d->lru_head;
	di->prev = NULL;
	if (d->lru_head)
		d->lru_head->prev = di;
	else
		d->lru_tail = di;
	d->lru_head = di;
}

static void close_dwarf(struct ap_dbg *d, struct ap_debuginfo *di)
{
	if (!di->dw)
		return;
	lru_unlink(d, di);
	ap_dwarf_close(di->dw);
	di->dw = NULL;
	d->nopen--;
}

static bool ensure_open(struct ap_dbg *d, struct ap_debuginfo *di)
{
	if (di->dw) {
		lru_unlink(d, di);
		lru_push(d, di);
		return true;
	}
	struct ap_dwarf_cache cache = { .cap_bytes = INFLATE_CAP_BYTES,
					.untrusted = &d->st.cache_untrusted };

	while (d->nopen >= MAX_OPEN_DWARF && d->lru_tail)
		close_dwarf(d, d->lru_tail);
	if (!d->inflate_dir)
		ap_dbg_set_inflate_dir(d, NULL);
	cache.dir = d->inflate_dir;
	if (ap_dwarf_open(di->fd, di->path, di->build_id, &cache, &di->dw)) {
		di->state = DI_FAILED;
		d->st.failed++;
		return false;
	}
	switch (ap_dwarf_inflate_state(di->dw)) {
	case AP_DWARF_INFLATE_USED:
		d->st.inflated++;
		break;
	case AP_DWARF_INFLATE_FAILED:
		d->st.inflate_failed++;
		break;
	}
	lru_push(d, di);
	d->nopen++;
	return true;
}

void ap_dbg_release(struct ap_dbg *d, struct ap_debuginfo *di)
{
	if (!di)
		return;
	if (di->state == DI_PENDING)
		ap_htab_remove(&d->pending, &di->pend_node);
	close_dwarf(d, di);
	if (di->fd >= 0) {
		close(di->fd);
		d->held_fds--;
	}
	free(di->path);
	free(di->build_id);
	free(di);
}

/* ---- debuginfod results ---- */

static void on_fetched(void *ctx, const char *build_id, const char *path, int err)
{
	struct ap_dbg *d = ctx;
	struct ap_hnode *n;

	if (path)
		d->st.debuginfod_fetched++;
	else
		d->st.debuginfod_failed++;
	for (n = ap_htab_first(&d->pending, str_hash(build_id)); n; n = ap_htab_next(n)) {
		struct ap_debuginfo *di = AP_CONTAINER_OF(n, struct ap_debuginfo, pend_node);

		if (strcmp(di->build_id, build_id))
			continue;
		ap_htab_remove(&d->pending, n);
		di->state = path && !set_path(di, path) ? DI_READY : DI_FAILED;
		if (di->state == DI_READY)
			d->st.found++;
		return;
	}
}

void ap_dbg_release_pages(struct ap_dbg *d)
{
	for (struct ap_debuginfo *di = d ? d->lru_head : NULL; di; di = di->next)
		if (di->dw)
			ap_dwarf_release_pages(di->dw);
}

void ap_dbg_poll(struct ap_dbg *d, unsigned timeout_ms)
{
	if (!d->dbgd)
		return;
	if (timeout_ms)
		ap_dbgd_wait(d->dbgd, NULL, (uint64_t)timeout_ms * 1000000ULL);
	ap_dbgd_collect(d->dbgd, on_fetched, d);
	d->drain_budget_ns = d->wait_ns;
}

/* A fetch still running: wait for it out of its own and this drain's budget. */
static void wait_pending(struct ap_dbg *d, struct ap_debuginfo *di)
{
	uint64_t budget = di->wait_left_ns < d->drain_budget_ns ? di->wait_left_ns
								: d->drain_budget_ns;

	if (budget) {
		uint64_t t0 = ap_mono_ns(), used;

		ap_dbgd_wait(d->dbgd, di->build_id, budget);
		used = ap_mono_ns() - t0;
		if (used > budget)
			used = budget;
		di->wait_left_ns -= used;
		d->drain_budget_ns -= used;
	}
	ap_dbgd_collect(d->dbgd, on_fetched, d);
}

/* ---- resolved chains ---- */

static uint64_t chain_hash(uint64_t id, uint64_t vaddr)
{
	uint64_t k[2] = { id, vaddr };

	return ap_hash_bytes(k, sizeof(k), 11);
}

static bool drop_chain(struct ap_hnode *n, void *ctx)
{
	free(AP_CONTAINER_OF(n, struct chain_ent, node));
	return true;
}

static struct chain_ent *chain_store(struct ap_dbg *d, uint64_t id, uint64_t vaddr,
				     const struct ap_src_frame *f, size_t n)
{
	size_t bytes = sizeof(struct chain_ent) + n * sizeof(*f);
	struct chain_ent *e;
	char *p;

	for (size_t i = 0; i < n; i++)
		bytes += (f[i].name ? strlen(f[i].name) + 1 : 0) +
			 (f[i].file ? strlen(f[i].file) + 1 : 0);
	if (d->chain_bytes + bytes > CHAIN_CACHE_BYTES) {
		ap_htab_sweep(&d->chains, drop_chain, NULL);
		d->chain_bytes = 0;
		d->st.chains_evicted++;
	}
	e = malloc(bytes);
	if (!e)
		return NULL;
	e->id = id;
	e->vaddr = vaddr;
	e->bytes = bytes;
	e->n = (uint32_t)n;
	p = (char *)&e->f[n];
	for (size_t i = 0; i < n; i++) {
		e->f[i] = f[i];
		if (f[i].name) {
			e->f[i].name = strcpy(p, f[i].name);
			p += strlen(p) + 1;
		}
		if (f[i].file) {
			e->f[i].file = strcpy(p, f[i].file);
			p += strlen(p) + 1;
		}
	}
	if (ap_htab_insert(&d->chains, &e->node, chain_hash(id, vaddr))) {
		free(e);
		return NULL;
	}
	d->chain_bytes += bytes;
	return e;
}

size_t ap_dbg_lookup(struct ap_dbg *d, struct ap_symtab *t, uint64_t vaddr,
		     const struct ap_src_frame **out)
{
	struct ap_src_frame tmp[AP_MAX_INLINE];
	bool owned[AP_MAX_INLINE] = { false };
	struct ap_debuginfo *di = t->dbg;
	struct chain_ent *e;
	uint64_t h;
	size_t n;

	if (!di)
		return 0;
	if (di->state == DI_PENDING)
		wait_pending(d, di);
	if (di->state != DI_READY)
		return 0;
	h = chain_hash(di->id, vaddr);
	for (struct ap_hnode *hn = ap_htab_first(&d->chains, h); hn; hn = ap_htab_next(hn)) {
		e = AP_CONTAINER_OF(hn, struct chain_ent, node);
		if (e->id == di->id && e->vaddr == vaddr) {
			*out = e->f;
			return e->n;
		}
	}
	if (!ensure_open(d, di))
		return 0;
	n = ap_dwarf_chain(di->dw, vaddr, tmp, owned, AP_MAX_INLINE);
	/* not cached (out of memory): the caller falls back to the ELF symbol */
	e = chain_store(d, di->id, vaddr, tmp, n);
	ap_dwarf_chain_free(tmp, owned, n);
	if (!e)
		return 0;
	*out = e->f;
	return e->n;
}

void ap_dbg_get_stats(const struct ap_dbg *d, struct ap_dbg_stats *out)
{
	*out = d->st;
}

struct ap_dbg *ap_dbg_new(void)
{
	static const char *const defaults[] = { DEFAULT_DEBUG_DIR };
	struct ap_dbg *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->wait_ns = (uint64_t)DEFAULT_WAIT_MS * 1000000ULL;
	d->drain_budget_ns = d->wait_ns;
	if (ap_dbg_set_dirs(d, defaults, 1)) {
		free(d);
		errno = ENOMEM;
		return NULL;
	}
	return d;
}

void ap_dbg_free(struct ap_dbg *d)
{
	if (!d)
		return;
	/* every ap_debuginfo was released by the ELF cache before */
	ap_dbgd_free(d->dbgd);
	ap_htab_sweep(&d->chains, drop_chain, NULL);
	ap_htab_release(&d->chains);
	ap_htab_release(&d->pending);
	free_dirs(d);
	free(d->inflate_dir);
	free(d);
}
