// SPDX-License-Identifier: MIT
/*
 * Kernel text symbols from /proc/kallsyms. A kernel has 100k+ of them, so the table is kept
 * as two parallel arrays (12 bytes a symbol) plus one name pool, and the module of a symbol
 * is stored once per run of consecutive symbols of the same module rather than per symbol.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "symbol_internal.h"

#define KERNEL_MODULE "[kernel.kallsyms]"
#define NO_MODULE UINT32_MAX
/* kallsyms has no sizes: the last symbol before a gap (end of the kernel image or of a
 * module) covers at most this much, so that stray addresses stay unresolved */
#define TAIL_MAX (64u * 1024)

struct kmod_run {
	uint32_t first;	 /* index of the run's first symbol */
	uint32_t module; /* offset of "[name]" in names, NO_MODULE for the kernel image */
};

struct ap_kallsyms {
	uint64_t *addr;
	uint32_t *name;
	char *names;
	struct kmod_run *runs;
	size_t n;
	size_t nruns;
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
	int err;

	errno = 0;
	k.addr = strtoull(line, &p, 16);
	if (errno || p == line || p[0] != ' ' || !p[1] || p[2] != ' ')
		return 0;
	switch (p[1]) {
	case 't':
	case 'T':
	case 'w':
	case 'W':
		break;
	default:
		return 0;
	}
	/* kptr_restrict hides addresses as zeros: nothing useful on this line */
	if (!k.addr)
		return 0;
	name = p + 3;
	name_len = strcspn(name, " \t\n");
	if (!name_len)
		return 0;
	mod = name + name_len;
	mod += strspn(mod, " \t");
	k.module = NO_MODULE;
	if (mod[0] == '[') {
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
	err = pool_add(l, name, name_len, &k.name);
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

/* Sort, drop aliases and move into the final arrays. */
static int finish(struct loader *l, struct ap_kallsyms *k)
{
	size_t n = 0, runs = 0;

	if (!l->n)
		return 0;
	qsort(l->v, l->n, sizeof(*l->v), ktmp_cmp);
	for (size_t i = 0; i < l->n; i++) {
		if (n && l->v[i].addr == l->v[n - 1].addr)
			continue;
		if (!n || l->v[i].module != l->v[n - 1].module)
			runs++;
		l->v[n++] = l->v[i];
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
	/* the pool grew by doubling; give the slack back */
	k->names = realloc(l->pool, l->pool_len);
	if (!k->names)
		k->names = l->pool;
	l->pool = NULL;
	return 0;
}

int ap_kallsyms_load(const char *path, struct ap_kallsyms **out)
{
	struct ap_kallsyms *k = NULL;
	struct loader l = { 0 };
	char *line = NULL;
	size_t cap = 0;
	FILE *f = NULL;
	int err = 0;

	*out = NULL;
	k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	f = fopen(path, "re");
	if (!f) {
		err = -errno;
		goto out;
	}
	while (getline(&line, &cap, f) > 0) {
		err = parse_line(&l, line);
		if (err)
			goto out;
	}
	if (ferror(f)) {
		err = -EIO;
		goto out;
	}
	err = finish(&l, k);
out:
	free(line);
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

void ap_kallsyms_free(struct ap_kallsyms *k)
{
	if (!k)
		return;
	free(k->addr);
	free(k->name);
	free(k->names);
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

int ap_kallsyms_find(const struct ap_kallsyms *k, uint64_t addr, const char **name,
		     const char **module, uint64_t *start)
{
	size_t lo = 0, hi, i, r;
	bool last_in_run;

	if (!k || !k->n)
		return -ENOENT;
	hi = k->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (k->addr[mid] <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo)
		return -ENOENT;
	i = lo - 1;
	r = run_of(k, i);
	last_in_run = i + 1 == k->n || (r + 1 < k->nruns && k->runs[r + 1].first == i + 1);
	if (last_in_run && addr - k->addr[i] >= TAIL_MAX)
		return -ENOENT;
	if (name)
		*name = k->names + k->name[i];
	if (module)
		*module = k->runs[r].module == NO_MODULE ? KERNEL_MODULE
							 : k->names + k->runs[r].module;
	if (start)
		*start = k->addr[i];
	return 0;
}
