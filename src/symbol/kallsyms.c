// SPDX-License-Identifier: MIT
/*
 * Kernel text symbols from /proc/kallsyms. A kernel has 100k+ of them, so the table is kept
 * as two parallel arrays (12 bytes a symbol) plus the names, and the module of a symbol is
 * stored once per run of consecutive symbols of the same module rather than per symbol.
 *
 * The names (3 MiB as text here) are kept sorted and front-coded in blocks of NAME_BLOCK:
 * each name after a block's first is the length of the prefix it shares with the one before
 * (one byte) and the rest. Kernel names share long prefixes ("__x64_sys_", "ext4_"), so this
 * halves them (1.5 MiB); a lookup decodes at most NAME_BLOCK - 1 names.
 *
 * The same loader reads data symbols for lock naming (ap_kallsyms_load_data): then the data
 * symbols are named and every other symbol is kept, unnamed, as the bound of the one before.
 */
#define _GNU_SOURCE /* qsort_r */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/grow.h"
#include "lib/safe_open.h"
#include "symbol_internal.h"

#define KERNEL_MODULE "[kernel.kallsyms]"
#define NO_MODULE UINT32_MAX
/* /proc/kallsyms is ~20 MiB with every module loaded: a file 10x that is not kallsyms */
#define KALLSYMS_MAX_BYTES (256ull << 20)
/* kallsyms has no sizes: the last symbol before a gap (end of the kernel image or of a
 * module) covers at most this much, so that stray addresses stay unresolved */
#define TAIL_MAX (64u * 1024)
#define NAME_BLOCK 16
#define NAME_MAX_LEN 1024 /* longer names are cut (KSYM_NAME_LEN is 512) */
/* Data tables with fewer data symbols than this come from a kernel without
 * CONFIG_KALLSYMS_ALL: the few listed are section markers, and only exact matches count. */
#define MIN_DATA_SYMS 1000
/* kallsyms has no sizes: an address this far past a data symbol's start is not in it */
#define DATA_OFF_MAX (1u << 20)
#define DATA_TAIL_MAX 4096 /* ... and past the last symbol of all */

struct kmod_run {
	uint32_t first;	 /* index of the run's first symbol */
	uint32_t module; /* offset of "[name]" in names, NO_MODULE for the kernel image */
};

struct ap_kallsyms {
	uint64_t *addr;
	uint32_t *name; /* index of the symbol's name in the sorted, unique names */
	uint8_t *blocks; /* the front-coded names */
	uint32_t *block_off; /* where each block of NAME_BLOCK names starts in blocks */
	char *mods;	     /* module names, "[ext4]" */
	char buf[NAME_MAX_LEN]; /* the last name decoded */
	struct kmod_run *runs;
	size_t n;
	size_t nruns;
	size_t ndata; /* data tables: the named (data) symbols among the n */
	bool data;    /* a data table (ap_kallsyms_load_data) */
};

struct ktmp {
	uint64_t addr;
	uint32_t name; /* names are appended in line order, so this also orders by line */
	uint32_t module;
};

struct loader {
	struct ktmp *v;
	size_t n, cap;
	char *pool;
	size_t pool_len, pool_cap;
	/* the module of the previous module line, to intern module names cheaply */
	uint32_t last_mod;
	bool have_mod;
	bool data;	  /* load data symbols; other symbols become unnamed bounds */
	uint32_t unnamed; /* pool offset of "" (data tables), UINT32_MAX until added */
};

static int pool_add(struct loader *l, const char *s, size_t len, uint32_t *off)
{
	/* offsets are 32-bit */
	if (l->pool_len > UINT32_MAX - len - 1)
		return -E2BIG;
	if (l->pool_len + len + 1 > l->pool_cap) {
		size_t ncap = l->pool_cap ? l->pool_cap * 2 : 1 << 16;
		char *p;

		while (ncap < l->pool_len + len + 1)
			ncap *= 2;
		p = realloc(l->pool, ncap);
		if (!p)
			return -ENOMEM;
		l->pool = p;
		l->pool_cap = ncap;
	}
	memcpy(l->pool + l->pool_len, s, len);
	l->pool[l->pool_len + len] = '\0';
	*off = (uint32_t)l->pool_len;
	l->pool_len += len + 1;
	return 0;
}

/* "ffffffff81000000 T _stext" or "ffffffffc0a01000 t ext4_foo\t[ext4]" */
static int parse_line(struct loader *l, char *line)
{
	struct ktmp k = { 0 };
	char *p, *name, *mod;
	size_t name_len;
	bool named;
	int err;

	errno = 0;
	k.addr = strtoull(line, &p, 16);
	if (errno || p == line || p[0] != ' ' || !p[1] || p[2] != ' ')
		return 0;
	named = l->data ? strchr("dDbBrR", p[1]) != NULL : strchr("tTwW", p[1]) != NULL;
	if (!named && !l->data)
		return 0;
	/* kptr_restrict hides addresses as zeros: nothing useful on this line */
	if (!k.addr)
		return 0;
	name = p + 3;
	name_len = strcspn(name, " \t\n");
	if (!name_len)
		return 0;
	if (!named) /* a bound of the data symbol before it: no name, no module */
		name_len = 0;
	mod = name + name_len;
	mod += strspn(mod, " \t");
	k.module = NO_MODULE;
	if (mod[0] == '[' && named) {
		size_t mod_len = strcspn(mod, "]");

		if (mod[mod_len] != ']')
			return 0;
		mod_len++;
		if (l->have_mod && !strncmp(l->pool + l->last_mod, mod, mod_len) &&
		    !l->pool[l->last_mod + mod_len]) {
			k.module = l->last_mod;
		} else {
			err = pool_add(l, mod, mod_len, &k.module);
			if (err)
				return err;
			l->last_mod = k.module;
			l->have_mod = true;
		}
	}
	if (named) {
		err = pool_add(l, name, name_len, &k.name);
	} else {
		if (l->unnamed == UINT32_MAX)
			err = pool_add(l, "", 0, &l->unnamed);
		else
			err = 0;
		k.name = l->unnamed;
	}
	if (err)
		return err;
	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 4096;
		struct ktmp *v = realloc(l->v, ncap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = ncap;
	}
	l->v[l->n++] = k;
	return 0;
}

static int ktmp_cmp(const void *a, const void *b)
{
	const struct ktmp *x = a, *y = b;

	/* of several names at one address the first listed is kept */
	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	return x->name < y->name ? -1 : x->name > y->name;
}

struct name_order {
	const char *pool;
	const uint32_t *off; /* per symbol: its name's offset in pool */
};

static int name_cmp(const void *a, const void *b, void *ctx)
{
	const struct name_order *o = ctx;

	return strcmp(o->pool + o->off[*(const uint32_t *)a], o->pool + o->off[*(const uint32_t *)b]);
}

static size_t common_prefix(const char *a, const char *b)
{
	size_t n = 0;

	while (a[n] && a[n] == b[n] && n < 255)
		n++;
	return n;
}

/* Replace k->name's pool offsets by indexes into the sorted, unique, front-coded names. */
static int encode_names(struct ap_kallsyms *k, const char *pool, size_t pool_len)
{
	struct name_order o = { .pool = pool, .off = k->name };
	uint32_t *ord = malloc(k->n * sizeof(*ord));
	size_t pos = 0, nblocks = 0, u = 0;
	const char *prev = NULL;
	int err = -ENOMEM;

	if (!ord)
		return -ENOMEM;
	for (size_t i = 0; i < k->n; i++)
		ord[i] = (uint32_t)i;
	qsort_r(ord, k->n, sizeof(*ord), name_cmp, &o);
	/* front coding never makes a name longer than plain text plus its prefix byte */
	k->blocks = malloc(pool_len + k->n + 1);
	k->block_off = malloc((k->n / NAME_BLOCK + 1) * sizeof(*k->block_off));
	if (!k->blocks || !k->block_off)
		goto out;
	for (size_t i = 0; i < k->n; i++) {
		const char *name = pool + k->name[ord[i]];
		size_t len = strnlen(name, NAME_MAX_LEN - 1), lcp;

		if (prev && !strcmp(prev, name)) { /* one name, several addresses */
			k->name[ord[i]] = (uint32_t)(u - 1);
			continue;
		}
		if (u % NAME_BLOCK == 0) {
			k->block_off[nblocks++] = (uint32_t)pos;
			lcp = 0;
		} else {
			lcp = common_prefix(prev, name);
			k->blocks[pos++] = (uint8_t)lcp;
		}
		memcpy(k->blocks + pos, name + lcp, len - lcp);
		pos += len - lcp;
		k->blocks[pos++] = '\0';
		k->name[ord[i]] = (uint32_t)u++;
		prev = name;
	}
	/* give the slack back */
	k->blocks = realloc(k->blocks, pos ? pos : 1) ?: k->blocks;
	err = 0;
out:
	free(ord);
	return err;
}

/* The module names the runs use, copied out of the loader's pool. */
static int copy_modules(struct ap_kallsyms *k, const char *pool)
{
	size_t len = 0, cap = 0;

	for (size_t r = 0; r < k->nruns; r++) {
		const char *m;
		size_t n;

		if (k->runs[r].module == NO_MODULE)
			continue;
		m = pool + k->runs[r].module;
		n = strlen(m) + 1;
		if (ap_grow_array((void **)&k->mods, &cap, len + n, 1))
			return -ENOMEM;
		memcpy(k->mods + len, m, n);
		k->runs[r].module = (uint32_t)len;
		len += n;
	}
	return 0;
}

/* Sort, drop aliases and move into the final arrays. */
static int finish(struct loader *l, struct ap_kallsyms *k)
{
	size_t n = 0, runs = 0;
	int err;

	if (!l->n)
		return 0;
	qsort(l->v, l->n, sizeof(*l->v), ktmp_cmp);
	for (size_t i = 0; i < l->n; i++) {
		if (n && l->v[i].addr == l->v[n - 1].addr) {
			/* a data symbol at a bound's address is what a data lookup wants */
			if (l->data && l->v[n - 1].name == l->unnamed && l->v[i].name != l->unnamed)
				l->v[n - 1] = l->v[i];
			continue;
		}
		l->v[n++] = l->v[i];
	}
	for (size_t i = 0; i < n; i++) {
		if (!i || l->v[i].module != l->v[i - 1].module)
			runs++;
		if (l->data && l->v[i].name != l->unnamed)
			k->ndata++;
	}
	k->addr = malloc(n * sizeof(*k->addr));
	k->name = malloc(n * sizeof(*k->name));
	k->runs = malloc(runs * sizeof(*k->runs));
	if (!k->addr || !k->name || !k->runs)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		k->addr[i] = l->v[i].addr;
		k->name[i] = l->v[i].name;
		if (!i || l->v[i].module != l->v[i - 1].module) {
			k->runs[k->nruns].first = (uint32_t)i;
			k->runs[k->nruns].module = l->v[i].module;
			k->nruns++;
		}
	}
	k->n = n;
	k->data = l->data;
	free(l->v);
	l->v = NULL;
	err = encode_names(k, l->pool, l->pool_len);
	if (!err)
		err = copy_modules(k, l->pool);
	return err;
}

/* The name with index u, decoded into k->buf. */
static const char *decode_name(struct ap_kallsyms *k, uint32_t u)
{
	const uint8_t *p = k->blocks + k->block_off[u / NAME_BLOCK];
	size_t len = strlen((const char *)p);

	memcpy(k->buf, p, len + 1);
	p += len + 1;
	for (uint32_t j = 1; j <= u % NAME_BLOCK; j++) {
		size_t lcp = *p++;

		len = strlen((const char *)p);
		memcpy(k->buf + lcp, p, len + 1);
		p += len + 1;
	}
	return k->buf;
}

static int load(const char *path, bool data, struct ap_kallsyms **out)
{
	struct ap_kallsyms *k = NULL;
	struct loader l = { .data = data, .unnamed = UINT32_MAX };
	/* a fixed buffer, not getline(): a file without newlines must not grow one line to
	 * its size (the path may be a user's file, not the kernel's) */
	char line[AP_SYM_MAX_KALLSYMS_LINE + 2];
	bool skipping = false;
	FILE *f = NULL;
	int err = 0;

	*out = NULL;
	k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	/* a regular file (procfs counts), never a FIFO; its size bounded while read */
	f = ap_fopen_untrusted(AT_FDCWD, path, 0, KALLSYMS_MAX_BYTES);
	if (!f) {
		err = -errno;
		goto out;
	}
	while (fgets(line, sizeof(line), f)) {
		size_t len = strlen(line);
		bool whole = len && line[len - 1] == '\n';

		if (skipping) { /* the rest of an over-long line */
			skipping = !whole;
			continue;
		}
		if (!whole && len >= sizeof(line) - 1) {
			ap_sym_limit_hit(AP_SYM_LIMIT_KALLSYMS_LINE);
			skipping = true;
			continue;
		}
		err = parse_line(&l, line);
		if (err)
			goto out;
	}
	if (ferror(f)) {
		err = errno == EFBIG ? -EFBIG : -EIO;
		goto out;
	}
	err = finish(&l, k);
out:
	if (f)
		fclose(f);
	free(l.v);
	free(l.pool);
	if (err) {
		ap_kallsyms_free(k);
		return err;
	}
	*out = k;
	return 0;
}

int ap_kallsyms_load(const char *path, struct ap_kallsyms **out)
{
	return load(path, false, out);
}

int ap_kallsyms_load_data(const char *path, struct ap_kallsyms **out)
{
	return load(path, true, out);
}

void ap_kallsyms_free(struct ap_kallsyms *k)
{
	if (!k)
		return;
	free(k->addr);
	free(k->name);
	free(k->blocks);
	free(k->block_off);
	free(k->mods);
	free(k->runs);
	free(k);
}

size_t ap_kallsyms_count(const struct ap_kallsyms *k)
{
	return k ? k->n : 0;
}

/* Index of the run holding symbol i. */
static size_t run_of(const struct ap_kallsyms *k, size_t i)
{
	size_t lo = 0, hi = k->nruns;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (k->runs[mid].first <= i)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo - 1;
}

/* Index + 1 of the last symbol starting at or below addr; 0 when none does. */
static size_t find_le(const struct ap_kallsyms *k, uint64_t addr)
{
	size_t lo = 0, hi = k->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (k->addr[mid] <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static const char *module_of(const struct ap_kallsyms *k, size_t r)
{
	return k->runs[r].module == NO_MODULE ? KERNEL_MODULE : k->mods + k->runs[r].module;
}

int ap_kallsyms_find(struct ap_kallsyms *k, uint64_t addr, const char **name,
		     const char **module, uint64_t *start)
{
	size_t i, r;
	bool last_in_run;

	if (!k || !k->n || k->data)
		return -ENOENT;
	i = find_le(k, addr);
	if (!i)
		return -ENOENT;
	i--;
	r = run_of(k, i);
	last_in_run = i + 1 == k->n || (r + 1 < k->nruns && k->runs[r + 1].first == i + 1);
	if (last_in_run && addr - k->addr[i] >= TAIL_MAX)
		return -ENOENT;
	if (name)
		*name = decode_name(k, k->name[i]);
	if (module)
		*module = module_of(k, r);
	if (start)
		*start = k->addr[i];
	return 0;
}

int ap_kallsyms_find_data(struct ap_kallsyms *k, uint64_t addr, const char **name,
			  const char **module, uint64_t *start)
{
	const char *nm;
	uint64_t off;
	size_t i;

	if (!k || !k->n || !k->data)
		return -ENOENT;
	i = find_le(k, addr);
	if (!i)
		return -ENOENT;
	i--;
	off = addr - k->addr[i];
	/* the next symbol bounds this one; without CONFIG_KALLSYMS_ALL only exact matches */
	if (off && (k->ndata < MIN_DATA_SYMS || off >= DATA_OFF_MAX ||
		    (i + 1 == k->n && off >= DATA_TAIL_MAX)))
		return -ENOENT;
	nm = decode_name(k, k->name[i]);
	if (!nm[0]) /* a bound (text, ...): not a data symbol */
		return -ENOENT;
	if (name)
		*name = nm;
	if (module) {
		size_t r = run_of(k, i);

		*module = k->runs[r].module == NO_MODULE ? NULL : k->mods + k->runs[r].module;
	}
	if (start)
		*start = k->addr[i];
	return 0;
}
