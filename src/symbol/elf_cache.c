// SPDX-License-Identifier: MIT
/*
 * Symbol tables shared between processes. An entry is found by the identity of the file
 * (device, inode, size, mtime: what stat() of /proc/PID/map_files/... says, cheap and without
 * opening it) and by build-id (the same library seen through different paths, mount
 * namespaces or copies), so the libc of a thousand processes is loaded once.
 *
 * Entries are reference counted by the snapshots that use them. Unused ones stay on an LRU
 * list up to a byte bound: a short-lived binary that is run again and again (a build, a cron
 * job) is then not reloaded every time, while the memory they hold stays bounded.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <link.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "lib/safe_open.h"
#include "symbol_internal.h"

struct file_id {
	uint64_t dev;
	uint64_t ino;
	uint64_t size;
	int64_t mtime_sec;
	int64_t mtime_nsec;
};

struct cache_ent;

/* One file identity that leads to an entry; an entry has one per distinct file. */
struct alias {
	struct ap_hnode node;
	struct file_id fid;
	struct cache_ent *ent;
	struct alias *next;
};

struct cache_ent {
	struct ap_symtab tab;
	struct ap_hnode bid_node; /* in by_bid when tab.build_id is set */
	struct alias *aliases;
	struct cache_ent *prev, *next; /* idle list, when refs == 0 */
	size_t idle_bytes;	       /* what it added to the idle total */
	uint32_t refs;
	bool idle;   /* on the idle list */
	bool failed; /* not a readable ELF: remembered so it is not reopened every time */
};

struct ap_elf_cache {
	struct ap_htab by_fid;
	struct ap_htab by_bid;
	struct cache_ent *idle_head, *idle_tail; /* head = released longest ago */
	size_t idle_bytes;
	size_t idle_max;
	struct ap_symtab vdso;
	struct ap_dbg *dbg; /* not owned; NULL: no DWARF */
	bool vdso_tried;
	bool vdso_ok;
	uint64_t loaded;
	uint64_t failed;
};

static uint64_t fid_hash(const struct file_id *f)
{
	return ap_hash_bytes(f, sizeof(*f), 0);
}

static uint64_t bid_hash(const char *hex)
{
	return ap_hash_bytes(hex, strlen(hex), 1);
}

static void idle_unlink(struct ap_elf_cache *c, struct cache_ent *e)
{
	if (!e->idle)
		return;
	if (e->prev)
		e->prev->next = e->next;
	else
		c->idle_head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		c->idle_tail = e->prev;
	e->prev = e->next = NULL;
	c->idle_bytes -= e->idle_bytes;
	e->idle_bytes = 0;
	e->idle = false;
}

static void idle_push(struct ap_elf_cache *c, struct cache_ent *e)
{
	size_t n = 0;

	for (struct alias *a = e->aliases; a; a = a->next)
		n++;
	e->idle_bytes = sizeof(*e) + n * sizeof(struct alias) + ap_symtab_bytes(&e->tab);
	e->prev = c->idle_tail;
	e->next = NULL;
	if (c->idle_tail)
		c->idle_tail->next = e;
	else
		c->idle_head = e;
	c->idle_tail = e;
	c->idle_bytes += e->idle_bytes;
	e->idle = true;
}

/* Unhook an entry from both indexes and free it; it must not be on the idle list. */
static void ent_destroy(struct ap_elf_cache *c, struct cache_ent *e)
{
	struct alias *a, *next;

	for (a = e->aliases; a; a = next) {
		next = a->next;
		ap_htab_remove(&c->by_fid, &a->node);
		free(a);
	}
	if (e->tab.build_id)
		ap_htab_remove(&c->by_bid, &e->bid_node);
	ap_dbg_release(c->dbg, e->tab.dbg);
	ap_symtab_release(&e->tab);
	free(e);
}

static void evict(struct ap_elf_cache *c)
{
	while (c->idle_bytes > c->idle_max && c->idle_head) {
		struct cache_ent *e = c->idle_head;

		idle_unlink(c, e);
		ent_destroy(c, e);
	}
}

static struct cache_ent *find_fid(struct ap_elf_cache *c, const struct file_id *fid)
{
	struct ap_hnode *n;

	for (n = ap_htab_first(&c->by_fid, fid_hash(fid)); n; n = ap_htab_next(n)) {
		struct alias *a = AP_CONTAINER_OF(n, struct alias, node);

		if (!memcmp(&a->fid, fid, sizeof(*fid)))
			return a->ent;
	}
	return NULL;
}

static struct cache_ent *find_bid(struct ap_elf_cache *c, const char *hex)
{
	struct ap_hnode *n;

	for (n = ap_htab_first(&c->by_bid, bid_hash(hex)); n; n = ap_htab_next(n)) {
		struct cache_ent *e = AP_CONTAINER_OF(n, struct cache_ent, bid_node);

		if (!strcmp(e->tab.build_id, hex))
			return e;
	}
	return NULL;
}

static int add_alias(struct ap_elf_cache *c, struct cache_ent *e, const struct file_id *fid)
{
	struct alias *a = calloc(1, sizeof(*a));

	if (!a)
		return -ENOMEM;
	a->fid = *fid;
	a->ent = e;
	if (ap_htab_insert(&c->by_fid, &a->node, fid_hash(fid))) {
		free(a);
		return -ENOMEM;
	}
	a->next = e->aliases;
	e->aliases = a;
	return 0;
}

/* Take a reference; failed entries give -ENOEXEC and no reference. */
static int take(struct ap_elf_cache *c, struct cache_ent *e, struct ap_symtab **out)
{
	if (e->failed)
		return -ENOEXEC;
	idle_unlink(c, e);
	e->refs++;
	*out = &e->tab;
	return 0;
}

struct inode_find {
	uint64_t dev, ino;
	struct cache_ent *e;
};

static bool match_inode(struct ap_hnode *n, void *ctx)
{
	struct alias *a = AP_CONTAINER_OF(n, struct alias, node);
	struct inode_find *f = ctx;

	if (!f->e && a->fid.dev == f->dev && a->fid.ino == f->ino)
		f->e = a->ent;
	return false;
}

int ap_elf_cache_get_inode(struct ap_elf_cache *c, uint64_t dev, uint64_t ino,
			   struct ap_symtab **out)
{
	struct inode_find f = { dev, ino, NULL };

	*out = NULL;
	/* a scan: this is for the rare mapping known only by its inode */
	ap_htab_sweep(&c->by_fid, match_inode, &f);
	return f.e ? take(c, f.e, out) : -ENOENT;
}

/* New entry for an opened ELF not in the cache by build-id. */
static int ent_create(struct ap_elf_cache *c, Elf *elf, int fd, const struct file_id *fid,
		      const char *display_path, int root_fd, struct ap_symtab **out)
{
	struct cache_ent *e = calloc(1, sizeof(*e));
	int err;

	if (!e)
		return -ENOMEM;
	err = elf ? ap_symtab_load_elf(elf, &e->tab) : -ENOEXEC;
	if (err == -ENOEXEC) {
		e->failed = true;
		c->failed++;
	} else if (err) {
		free(e);
		return err;
	} else {
		c->loaded++;
		/* only for display: a failed strdup leaves the snapshot to keep its own copy */
		if (display_path)
			e->tab.path = strdup(display_path);
		/* where its DWARF is, found now: the process (and with it the way into its
		 * mount namespace) may be gone by the time an address is looked up */
		if (c->dbg && ap_dbg_locate(c->dbg, &e->tab, elf, fd, root_fd, display_path)) {
			ap_symtab_release(&e->tab);
			free(e);
			return -ENOMEM;
		}
	}
	if (e->tab.build_id &&
	    ap_htab_insert(&c->by_bid, &e->bid_node, bid_hash(e->tab.build_id))) {
		ap_dbg_release(c->dbg, e->tab.dbg);
		ap_symtab_release(&e->tab);
		free(e);
		return -ENOMEM;
	}
	err = add_alias(c, e, fid);
	if (err) {
		ent_destroy(c, e);
		return err;
	}
	if (e->failed) {
		/* unreferenced from the start; the bound decides how long it is remembered */
		idle_push(c, e);
		evict(c);
		return -ENOEXEC;
	}
	return take(c, e, out);
}

/* The first source that opens as a regular file (and is the expected file, if it says
 * which): a checked O_PATH descriptor, or -errno of the last one tried. */
static int open_src(const struct ap_elf_src *src, size_t nsrc, struct stat *st)
{
	int err = -ENOENT;

	for (size_t i = 0; i < nsrc; i++) {
		int pfd = ap_path_untrusted(src[i].dirfd, src[i].path, src[i].flags, 0, st);

		if (pfd >= 0 && src[i].match_id &&
		    (st->st_ino != src[i].ino || major(st->st_dev) != src[i].dev_major ||
		     minor(st->st_dev) != src[i].dev_minor)) {
			close(pfd);
			pfd = -ESTALE;
		}
		if (pfd >= 0)
			return pfd;
		err = pfd;
	}
	return err;
}

int ap_elf_cache_get(struct ap_elf_cache *c, const struct ap_elf_src *src, size_t nsrc,
		     const char *display_path, int root_fd, struct ap_symtab **out)
{
	char hex[2 * AP_BUILD_ID_MAX + 1];
	struct cache_ent *e;
	struct file_id fid;
	struct stat st;
	Elf *elf = NULL;
	int fd = -1, pfd, err;

	*out = NULL;
	/* no FIFO, device or planted link: a regular file, checked before it is opened */
	pfd = open_src(src, nsrc, &st);
	if (pfd < 0) {
		c->failed++;
		return pfd == -EINVAL ? -ENOEXEC : pfd;
	}
	memset(&fid, 0, sizeof(fid));
	fid.dev = st.st_dev;
	fid.ino = st.st_ino;
	fid.size = (uint64_t)st.st_size;
	fid.mtime_sec = st.st_mtim.tv_sec;
	fid.mtime_nsec = st.st_mtim.tv_nsec;
	e = find_fid(c, &fid);
	if (e) {
		close(pfd);
		return take(c, e, out);
	}

	fd = ap_reopen_untrusted(pfd, &st);
	close(pfd);
	if (fd < 0) {
		c->failed++;
		return fd;
	}
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (elf && elf_kind(elf) != ELF_K_ELF) {
		elf_end(elf);
		elf = NULL;
	}
	/* the same build under another identity (a copy, another container's layer) */
	if (elf && !ap_symtab_build_id(elf, hex, sizeof(hex))) {
		e = find_bid(c, hex);
		if (e) {
			err = add_alias(c, e, &fid);
			if (!err)
				err = take(c, e, out);
			goto out;
		}
	}
	err = ent_create(c, elf, fd, &fid, display_path, root_fd, out);
out:
	elf_end(elf);
	close(fd);
	return err;
}

void ap_elf_cache_put(struct ap_elf_cache *c, struct ap_symtab *t)
{
	struct cache_ent *e;

	if (!c || !t || t == &c->vdso)
		return;
	e = AP_CONTAINER_OF(t, struct cache_ent, tab);
	if (!e->refs || --e->refs)
		return;
	idle_push(c, e);
	evict(c);
}

/* Bytes of the vDSO image: it carries its section headers, which end the image. */
static size_t vdso_size(const ElfW(Ehdr) * eh)
{
	const ElfW(Phdr) *ph = (const void *)((const char *)eh + eh->e_phoff);
	size_t size = eh->e_shoff + (size_t)eh->e_shnum * eh->e_shentsize;

	if (memcmp(eh->e_ident, ELFMAG, SELFMAG))
		return 0;
	for (size_t i = 0; i < eh->e_phnum; i++)
		if (ph[i].p_type == PT_LOAD && ph[i].p_offset + ph[i].p_filesz > size)
			size = ph[i].p_offset + ph[i].p_filesz;
	return size;
}

struct ap_symtab *ap_elf_cache_vdso(struct ap_elf_cache *c)
{
	unsigned long base;
	size_t size;

	if (c->vdso_tried)
		return c->vdso_ok ? &c->vdso : NULL;
	/* every 64-bit process of this kernel maps the same vDSO image as the agent */
	c->vdso_tried = true;
	base = getauxval(AT_SYSINFO_EHDR);
	if (!base)
		return NULL;
	size = vdso_size((const ElfW(Ehdr) *)base);
	if (size && !ap_symtab_load_mem((const void *)base, size, &c->vdso))
		c->vdso_ok = true;
	return c->vdso_ok ? &c->vdso : NULL;
}

void ap_elf_cache_counts(const struct ap_elf_cache *c, uint64_t *loaded, uint64_t *failed)
{
	*loaded = c->loaded;
	*failed = c->failed;
}

struct ap_elf_cache *ap_elf_cache_new(size_t idle_max_bytes, struct ap_dbg *dbg)
{
	struct ap_elf_cache *c;

	if (elf_version(EV_CURRENT) == EV_NONE) {
		errno = ENOEXEC;
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->idle_max = idle_max_bytes;
	c->dbg = dbg;
	return c;
}

/* Frees an alias and, with its last alias, the entry. */
static bool drop_alias(struct ap_hnode *n, void *ctx)
{
	struct alias *a = AP_CONTAINER_OF(n, struct alias, node), **pp;
	struct ap_elf_cache *c = ctx;
	struct cache_ent *e = a->ent;

	for (pp = &e->aliases; *pp != a; pp = &(*pp)->next)
		;
	*pp = a->next;
	free(a);
	if (!e->aliases) {
		idle_unlink(c, e);
		if (e->tab.build_id)
			ap_htab_remove(&c->by_bid, &e->bid_node);
		ap_dbg_release(c->dbg, e->tab.dbg);
		ap_symtab_release(&e->tab);
		free(e);
	}
	return true;
}

void ap_elf_cache_free(struct ap_elf_cache *c)
{
	if (!c)
		return;
	ap_htab_sweep(&c->by_fid, drop_alias, c);
	ap_htab_release(&c->by_fid);
	ap_htab_release(&c->by_bid);
	ap_symtab_release(&c->vdso);
	free(c);
}
