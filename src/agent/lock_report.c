// SPDX-License-Identifier: MIT
/*
 * Lock mode presentation: lock-object names (kernel data symbols, user ELF objects), holder
 * comms, and the per-lock text and JSON reports.
 */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <libelf.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "format.h"
#include "hist.h"
#include "lock_record.h"

/* ---- names ---- */

struct ksym {
	uint64_t addr;
	char *name; /* "sym" or "sym [module]" */
};

/* Data (OBJECT) symbols of one ELF file plus its PT_LOAD layout. */
struct elf_objs {
	char *path;
	struct ksym *syms; /* addr = st_value; sizes in sizes[] */
	uint64_t *sizes;
	size_t n;
	GElf_Phdr *loads;
	size_t nloads;
	struct elf_objs *next;
};

struct ap_lock_names {
	struct ksym *ksyms;
	size_t nksyms;
	int ksyms_err; /* 0 = not loaded yet, 1 = loaded, -errno = failed */
	struct elf_objs *elves;
	void (*extra)(void *ctx, uint32_t tid, char *buf, size_t len);
	void *extra_ctx;
};

struct ap_lock_names *ap_lock_names_new(void (*extra)(void *ctx, uint32_t tid, char *buf,
						      size_t len),
					void *extra_ctx)
{
	struct ap_lock_names *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->extra = extra;
	n->extra_ctx = extra_ctx;
	return n;
}

static void free_syms(struct ksym *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(s[i].name);
	free(s);
}

void ap_lock_names_free(struct ap_lock_names *n)
{
	if (!n)
		return;
	free_syms(n->ksyms, n->nksyms);
	while (n->elves) {
		struct elf_objs *e = n->elves;

		n->elves = e->next;
		free_syms(e->syms, e->n);
		free(e->sizes);
		free(e->loads);
		free(e->path);
		free(e);
	}
	free(n);
}

static int cmp_ksym(const void *a, const void *b)
{
	const struct ksym *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/* Kernel data symbols (d, D, b, B, r, R) of a kallsyms-format file. */
static int load_ksyms(struct ap_lock_names *n, const char *path)
{
	FILE *f = fopen(path, "re");
	char line[512];
	size_t cap = 0;
	int err = 0;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char type, name[256], mod[128] = "";
		unsigned long long addr;
		struct ksym *nv;

		if (sscanf(line, "%llx %c %255s %127s", &addr, &type, name, mod) < 3 || !addr)
			continue;
		if (!strchr("dDbBrR", type))
			continue;
		if (n->nksyms == cap) {
			cap = cap ? cap * 2 : 4096;
			nv = realloc(n->ksyms, cap * sizeof(*nv));
			if (!nv) {
				err = -ENOMEM;
				break;
			}
			n->ksyms = nv;
		}
		n->ksyms[n->nksyms].addr = addr;
		if (mod[0])
			strncat(strncat(name, " ", sizeof(name) - strlen(name) - 1), mod,
				sizeof(name) - strlen(name) - 1);
		n->ksyms[n->nksyms].name = strdup(name);
		if (!n->ksyms[n->nksyms].name) {
			err = -ENOMEM;
			break;
		}
		n->nksyms++;
	}
	fclose(f);
	if (!err && !n->nksyms)
		err = -ENOENT; /* kptr_restrict hides addresses */
	if (!err)
		qsort(n->ksyms, n->nksyms, sizeof(*n->ksyms), cmp_ksym);
	return err;
}

/* Greatest symbol start <= addr, or -1. */
static long find_le(const struct ksym *s, size_t n, uint64_t addr)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (s[mid].addr <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (long)lo - 1;
}

int ap_lock_ksym_lookup(struct ap_lock_names *n, const char *kallsyms_path, uint64_t addr,
			char *buf, size_t len)
{
	long i;

	if (!n->ksyms_err)
		n->ksyms_err = load_ksyms(n, kallsyms_path) ?: 1;
	if (n->ksyms_err < 0)
		return n->ksyms_err;
	i = find_le(n->ksyms, n->nksyms, addr);
	/* kallsyms has no sizes: the next symbol bounds this one; stray heap addresses are far
	 * away from the image and stay unnamed */
	if (i < 0 || addr - n->ksyms[i].addr >= (1u << 20) ||
	    ((size_t)i + 1 == n->nksyms && addr - n->ksyms[i].addr >= 4096))
		return -ENOENT;
	if (addr == n->ksyms[i].addr)
		snprintf(buf, len, "%s", n->ksyms[i].name);
	else
		snprintf(buf, len, "%s+0x%" PRIx64, n->ksyms[i].name, addr - n->ksyms[i].addr);
	return 0;
}

static struct elf_objs *load_elf_objs(struct ap_lock_names *n, const char *path)
{
	struct elf_objs *e;
	Elf_Scn *scn = NULL;
	size_t cap = 0, nph = 0, want = SHT_SYMTAB;
	Elf *elf = NULL;
	int fd;

	for (e = n->elves; e; e = e->next)
		if (!strcmp(e->path, path))
			return e;
	e = calloc(1, sizeof(*e));
	if (!e || !(e->path = strdup(path))) {
		free(e);
		return NULL;
	}
	e->next = n->elves;
	n->elves = e;
	elf_version(EV_CURRENT);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return e;
	elf = elf_begin(fd, ELF_C_READ, NULL);
	if (!elf || elf_getphdrnum(elf, &nph))
		goto out;
	e->loads = calloc(nph ? nph : 1, sizeof(*e->loads));
	for (size_t i = 0; e->loads && i < nph; i++) {
		GElf_Phdr ph;

		if (gelf_getphdr(elf, (int)i, &ph) && ph.p_type == PT_LOAD)
			e->loads[e->nloads++] = ph;
	}
retry:
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		Elf_Data *d;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != want || !sh.sh_entsize)
			continue;
		d = elf_getdata(scn, NULL);
		for (size_t i = 0; d && i < sh.sh_size / sh.sh_entsize; i++) {
			GElf_Sym s;
			const char *name;

			if (!gelf_getsym(d, (int)i, &s) || GELF_ST_TYPE(s.st_info) != STT_OBJECT ||
			    !s.st_value)
				continue;
			name = elf_strptr(elf, sh.sh_link, s.st_name);
			if (!name || !name[0])
				continue;
			if (e->n == cap) {
				size_t ncap = cap ? cap * 2 : 256;
				struct ksym *ns = realloc(e->syms, ncap * sizeof(*ns));
				uint64_t *nz = ns ? realloc(e->sizes, ncap * sizeof(*nz)) : NULL;

				if (ns)
					e->syms = ns;
				if (!nz)
					goto out;
				e->sizes = nz;
				cap = ncap;
			}
			e->syms[e->n].addr = s.st_value;
			e->syms[e->n].name = strdup(name);
			e->sizes[e->n] = s.st_size;
			if (e->syms[e->n].name)
				e->n++;
		}
	}
	if (!e->n && want == SHT_SYMTAB) {
		want = SHT_DYNSYM; /* stripped: exported objects only */
		scn = NULL;
		goto retry;
	}
out:
	if (elf)
		elf_end(elf);
	close(fd);
	return e;
}

/* OBJECT symbol of `path` covering ELF vaddr, into buf. */
static int elf_obj_name(struct elf_objs *e, uint64_t vaddr, char *buf, size_t len)
{
	for (size_t i = 0; i < e->n; i++) {
		uint64_t lo = e->syms[i].addr, sz = e->sizes[i] ? e->sizes[i] : 1;

		if (vaddr < lo || vaddr - lo >= sz)
			continue;
		if (vaddr == lo)
			snprintf(buf, len, "%s", e->syms[i].name);
		else
			snprintf(buf, len, "%s+0x%" PRIx64, e->syms[i].name, vaddr - lo);
		return 0;
	}
	return -ENOENT;
}

/* Map a runtime address to the ELF vaddr through the mapping (start, file offset). */
static int to_vaddr(const struct elf_objs *e, uint64_t map_start, uint64_t map_off,
		    uint64_t addr, uint64_t *vaddr)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);

	for (size_t i = 0; i < e->nloads; i++) {
		const GElf_Phdr *ph = &e->loads[i];
		uint64_t bias;

		if ((ph->p_offset & ~(page - 1)) != map_off)
			continue;
		bias = map_start - (ph->p_vaddr & ~(page - 1));
		*vaddr = addr - bias;
		if (*vaddr >= ph->p_vaddr && *vaddr < ph->p_vaddr + ph->p_memsz)
			return 0;
	}
	return -ENOENT;
}

static void user_lock_name(struct ap_lock_names *n, uint32_t pid, uint64_t addr, char *buf,
			   size_t len)
{
	char path[64], line[4352], prev_path[4096] = "", exe[4096] = "";
	uint64_t prev_start = 0, prev_off = 0, prev_end = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%u/maps", pid);
	f = fopen(path, "re");
	if (!f)
		return;
	snprintf(path, sizeof(path), "/proc/%u/exe", pid);
	if (readlink(path, exe, sizeof(exe) - 1) < 0)
		exe[0] = '\0';
	while (fgets(line, sizeof(line), f)) {
		unsigned long long start, end, off;
		char file[4096] = "", full[4200];
		struct elf_objs *e;
		uint64_t vaddr;
		const char *base;

		if (sscanf(line, "%llx-%llx %*s %llx %*s %*s %4095[^\n]", &start, &end, &off,
			   file) < 3)
			continue;
		if (addr < start || addr >= end) {
			if (file[0] == '/') {
				snprintf(prev_path, sizeof(prev_path), "%s", file);
				prev_start = start;
				prev_off = off;
			} else if (start != prev_end) {
				prev_path[0] = '\0';
			}
			prev_end = end;
			continue;
		}
		if (file[0] == '/') {
			snprintf(prev_path, sizeof(prev_path), "%s", file);
			prev_start = start;
			prev_off = off;
		} else if (file[0] || start != prev_end || !prev_path[0]) {
			snprintf(buf, len, "%s", file[0] ? file : "[anon]");
			break;
		}
		/* a file mapping, or the anonymous .bss right after one */
		snprintf(full, sizeof(full), "/proc/%u/root%s", pid, prev_path);
		e = load_elf_objs(n, full);
		if (e && !to_vaddr(e, prev_start, prev_off, addr, &vaddr) &&
		    !elf_obj_name(e, vaddr, buf, len)) {
			base = strrchr(prev_path, '/');
			if (strcmp(prev_path, exe) != 0 && strlen(buf) + strlen(base) + 3 < len)
				strcat(strcat(strcat(buf, " ("), base + 1), ")");
		} else {
			base = strrchr(prev_path, '/');
			snprintf(buf, len, "[%s]", base + 1);
		}
		break;
	}
	fclose(f);
}

static void names_lock_name(void *ctx, uint32_t pid, uint64_t addr, bool kernel, char *buf,
			    size_t len)
{
	struct ap_lock_names *n = ctx;

	buf[0] = '\0';
	if (kernel)
		ap_lock_ksym_lookup(n, "/proc/kallsyms", addr, buf, len);
	else
		user_lock_name(n, pid, addr, buf, len);
}

static void names_thread_comm(void *ctx, uint32_t pid, uint32_t tid, char *buf, size_t len)
{
	struct ap_lock_names *n = ctx;
	char path[64];
	FILE *f;

	buf[0] = '\0';
	snprintf(path, sizeof(path), "/proc/%u/task/%u/comm", pid, tid);
	f = fopen(path, "re");
	if (f) {
		if (fgets(buf, (int)len, f))
			buf[strcspn(buf, "\n")] = '\0';
		fclose(f);
	}
	if (!buf[0] && n->extra)
		n->extra(n->extra_ctx, tid, buf, len);
}

void ap_lock_names_resolver(struct ap_lock_names *n, struct ap_lock_resolver *out)
{
	out->ctx = n;
	out->lock_name = names_lock_name;
	out->thread_comm = names_thread_comm;
}

/* ---- shared report helpers ---- */

static const char *dur(uint64_t ns, char *buf, size_t len)
{
	if (ns >= 1000000000ULL)
		snprintf(buf, len, "%.2fs", (double)ns / 1e9);
	else if (ns >= 1000000ULL)
		snprintf(buf, len, "%.2fms", (double)ns / 1e6);
	else if (ns >= 1000ULL)
		snprintf(buf, len, "%.1fus", (double)ns / 1e3);
	else
		snprintf(buf, len, "%" PRIu64 "ns", ns);
	return buf;
}

/* Why a lock has no holder tid. */
static const char *no_holder_reason(const struct ap_lock_entry *e)
{
	if (e->kernel)
		return "not tracked for kernel locks";
	switch (e->kind) {
	case AP_LOCK_FUTEX_LOCK:
		return "no owner field (bare futex lock)";
	case AP_LOCK_CONDVAR:
		return "condition variables have no owner";
	case AP_LOCK_OTHER:
		return "unknown futex protocol";
	default:
		return "owner field was empty when the wait started";
	}
}

static int cmp_holder(const void *a, const void *b)
{
	const struct ap_lock_holder *x = a, *y = b;

	return x->wait_ns < y->wait_ns ? 1 : x->wait_ns > y->wait_ns ? -1 : 0;
}

static int cmp_stack(const void *a, const void *b)
{
	const struct ap_lock_stack *x = a, *y = b;

	return x->wait_ns < y->wait_ns ? 1 : x->wait_ns > y->wait_ns ? -1 : 0;
}

static int cmp_waiter(const void *a, const void *b)
{
	const struct ap_lock_waiter *x = a, *y = b;

	return x->wait_ns < y->wait_ns ? 1 : x->wait_ns > y->wait_ns ? -1 : 0;
}

/* The top waiter: the pid/comm a lock is reported under. */
static const struct ap_lock_waiter *top_waiter(const struct ap_lock_entry *e)
{
	const struct ap_lock_waiter *best = NULL;

	for (size_t i = 0; i < e->nwaiters; i++)
		if (!best || e->waiters[i].wait_ns > best->wait_ns)
			best = &e->waiters[i];
	return best;
}

/* Sorting happens on the (const) table's arrays in place: order is presentation only. */
static void sort_entry(const struct ap_lock_entry *ce)
{
	struct ap_lock_entry *e = (struct ap_lock_entry *)ce;

	qsort(e->holders, e->nholders, sizeof(*e->holders), cmp_holder);
	qsort(e->stacks, e->nstacks, sizeof(*e->stacks), cmp_stack);
	qsort(e->waiters, e->nwaiters, sizeof(*e->waiters), cmp_waiter);
}

/* ---- text ---- */

static void text_holders(FILE *out, const struct ap_lock_entry *e)
{
	uint64_t known = 0;
	size_t shown = 0;

	for (size_t i = 0; i < e->nholders; i++)
		if (e->holders[i].tid != AP_HOLDER_UNKNOWN && e->holders[i].count)
			known += e->holders[i].wait_ns;
	if (!known) {
		fprintf(out, "    holder: unknown (%s)\n", no_holder_reason(e));
		return;
	}
	fprintf(out, "    holders (share of wait):");
	for (size_t i = 0; i < e->nholders && shown < 5; i++) {
		const struct ap_lock_holder *h = &e->holders[i];
		double pct = e->total_ns ? 100.0 * (double)h->wait_ns / (double)e->total_ns : 0;

		if (!h->count)
			continue;
		if (h->tid == AP_HOLDER_UNKNOWN)
			fprintf(out, " unknown %.1f%%", pct);
		else if (h->tid == AP_HOLDER_READERS)
			fprintf(out, " readers %.1f%%", pct);
		else
			fprintf(out, " %u (%s) %.1f%%", h->tid, h->comm[0] ? h->comm : "?", pct);
		fprintf(out, "%s", ++shown < 5 && i + 1 < e->nholders ? "," : "");
	}
	fprintf(out, "\n");
}

static void text_stack(FILE *out, const struct ap_profile *p, const struct ap_lock_stack *s,
		       const struct ap_lock_entry *e)
{
	const uint32_t *frames;
	size_t n;
	char name[256];

	frames = ap_profile_stack(p, s->stack, &n);
	fprintf(out, "    %5.1f%% of wait, %" PRIu64 " waits:", e->total_ns ?
		100.0 * (double)s->wait_ns / (double)e->total_ns : 0.0, s->count);
	if (!n)
		fprintf(out, " (no stack)");
	for (size_t i = 0; i < n && i < 10; i++)
		fprintf(out, "%s%s", i ? " <- " : " ",
			ap_frame_display_name(p, frames[i], name, sizeof(name)));
	fprintf(out, "%s\n", n > 10 ? " <- ..." : "");
}

static void text_entry(FILE *out, const struct ap_profile *p, const struct ap_lock_entry *e,
		       size_t rank, bool hist)
{
	const struct ap_lock_waiter *w = top_waiter(e);
	char a[32], b[32], c[32], q50[32], q99[32], fl[64];

	sort_entry(e);
	fprintf(out, "#%zu %s 0x%" PRIx64 "%s%s", rank, ap_lock_kind_name(e->kind), e->addr,
		e->name[0] ? " " : "", e->name);
	if (e->kernel)
		fprintf(out, "  flags %s", ap_lock_flags_str(e->flags, fl, sizeof(fl)));
	if (!e->kernel)
		fprintf(out, "  pid %u (%s)", e->pid, w ? w->comm : "?");
	else if (w)
		fprintf(out, "  top waiter pid %u (%s)", w->pid, w->comm);
	fprintf(out, "\n    contentions %" PRIu64 "  total %s  avg %s  max %s  p50 %s  p99 %s\n",
		e->count, dur(e->total_ns, a, sizeof(a)),
		dur(e->count ? e->total_ns / e->count : 0, b, sizeof(b)),
		dur(e->max_ns, c, sizeof(c)),
		dur(ap_hist_quantile(e->hist, 0.5, 0, e->max_ns), q50, sizeof(q50)),
		dur(ap_hist_quantile(e->hist, 0.99, 0, e->max_ns), q99, sizeof(q99)));
	if (e->timeout || e->interrupted || e->error || e->eagain)
		fprintf(out, "    results: %" PRIu64 " acquired/woken, %" PRIu64 " timed out, %"
			PRIu64 " interrupted, %" PRIu64 " errors; %" PRIu64
			" EAGAIN (value changed, no wait)\n",
			e->count - e->timeout - e->interrupted - e->error, e->timeout,
			e->interrupted, e->error, e->eagain);
	if (ap_lock_kind_group(e->kind) == AP_LOCK_GROUP_LOCK)
		text_holders(out, e);
	for (size_t i = 0; i < e->nstacks && i < 2; i++)
		text_stack(out, p, &e->stacks[i], e);
	if (hist)
		ap_hist_print(out, e->hist, "ns", "    ");
	fprintf(out, "\n");
}

static int text_group(FILE *out, const struct ap_lock_table *t, const struct ap_profile *p,
		      enum ap_lock_group g, const char *title, size_t top_n, bool hist)
{
	const struct ap_lock_entry **v;
	long n = ap_lock_table_sorted(t, g, &v);
	uint64_t count = 0, total = 0;
	size_t shown = 0, nonzero = 0;
	char d[32];

	if (n < 0)
		return (int)n;
	for (long i = 0; i < n; i++) {
		count += v[i]->count;
		total += v[i]->total_ns;
		nonzero += v[i]->count > 0;
	}
	fprintf(out, "%s: %zu, %" PRIu64 " waits, %s total wait\n", title, nonzero, count,
		dur(total, d, sizeof(d)));
	if (nonzero)
		fprintf(out, "\n");
	for (long i = 0; i < n && shown < top_n; i++)
		if (v[i]->count)
			text_entry(out, p, v[i], ++shown, hist);
	if (nonzero > shown)
		fprintf(out, "  ... %zu more (use --top)\n\n", nonzero - shown);
	free(v);
	return 0;
}

static void text_stats(FILE *out, const struct ap_profile *p)
{
	bool any = false;

	for (size_t i = 0; i < ap_profile_nstats(p); i++) {
		const struct ap_stat *s = ap_profile_stat(p, i);

		if (!s->value || (!strstr(s->name, "full") && !strstr(s->name, "err") &&
				  !strstr(s->name, "collision") && !strstr(s->name, "unavailable") &&
				  !strstr(s->name, "lost")))
			continue;
		fprintf(out, "%s%s=%" PRIu64, any ? ", " : "warnings: ", s->name, s->value);
		any = true;
	}
	if (any)
		fprintf(out, "\n");
}

int ap_lock_write_text(const struct ap_lock_table *t, const struct ap_profile *p, FILE *out,
		       size_t top_n, bool histograms)
{
	char d[32];
	int err;

	if (!top_n)
		top_n = 10;
	fprintf(out, "Lock contention over %s (waits that blocked; wait = time asleep)\n\n",
		dur(ap_profile_duration_ns(p), d, sizeof(d)));
	err = text_group(out, t, p, AP_LOCK_GROUP_LOCK, "Contended locks", top_n, true);
	if (!err)
		err = text_group(out, t, p, AP_LOCK_GROUP_CONDVAR,
				 "Condition-variable waits (not lock contention)", top_n,
				 histograms);
	if (!err)
		err = text_group(out, t, p, AP_LOCK_GROUP_OTHER,
				 "Other futex waits (not recognised as locks)", top_n, histograms);
	text_stats(out, p);
	if (!err && ferror(out))
		err = -EIO;
	return err;
}

/* ---- JSON ---- */

static void json_str(FILE *out, const char *s)
{
	fputc('"', out);
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if (*c == '"' || *c == '\\')
			fprintf(out, "\\%c", *c);
		else if (*c < 0x20)
			fprintf(out, "\\u%04x", *c);
		else if (*c < 0x80)
			fputc(*c, out);
		else {
			size_t l = ap_utf8_seq_len((const char *)c, strlen((const char *)c));

			if (!l) {
				fputs("\\ufffd", out);
				continue;
			}
			fwrite(c, 1, l, out);
			c += l - 1;
		}
	}
	fputc('"', out);
}

static void json_entry(FILE *out, const struct ap_profile *p, const struct ap_lock_entry *e)
{
	const struct ap_lock_waiter *w = top_waiter(e);
	char buf[64];

	sort_entry(e);
	fprintf(out, "{\"addr\":\"0x%" PRIx64 "\",\"kind\":", e->addr);
	json_str(out, ap_lock_kind_name(e->kind));
	fprintf(out, ",\"kernel\":%s,\"name\":", e->kernel ? "true" : "false");
	if (e->name[0])
		json_str(out, e->name);
	else
		fputs("null", out);
	if (e->kernel) {
		fputs(",\"flags\":", out);
		json_str(out, ap_lock_flags_str(e->flags, buf, sizeof(buf)));
	}
	fprintf(out, ",\"pid\":%u,\"comm\":", w ? w->pid : e->pid);
	json_str(out, w ? w->comm : "");
	fprintf(out, ",\"contentions\":%" PRIu64 ",\"wait_ns_total\":%" PRIu64
		",\"wait_ns_max\":%" PRIu64 ",\"wait_ns_avg\":%" PRIu64,
		e->count, e->total_ns, e->max_ns, e->count ? e->total_ns / e->count : 0);
	fprintf(out, ",\"results\":{\"acquired\":%" PRIu64 ",\"timeout\":%" PRIu64
		",\"interrupted\":%" PRIu64 ",\"error\":%" PRIu64 ",\"eagain\":%" PRIu64 "}",
		e->count - e->timeout - e->interrupted - e->error, e->timeout, e->interrupted,
		e->error, e->eagain);
	fputs(",\"hist\":[", out);
	for (unsigned int i = 0; i < AP_LOCK_HIST_SLOTS; i++)
		fprintf(out, "%s%" PRIu64, i ? "," : "", e->hist[i]);
	fputs("],\"holder_known\":", out);
	{
		bool known = false;

		for (size_t i = 0; i < e->nholders; i++)
			known |= e->holders[i].tid != AP_HOLDER_UNKNOWN && e->holders[i].count;
		fputs(known ? "true" : "false", out);
		if (!known) {
			fputs(",\"holder_note\":", out);
			json_str(out, no_holder_reason(e));
		}
	}
	fputs(",\"holders\":[", out);
	for (size_t i = 0, k = 0; i < e->nholders; i++) {
		const struct ap_lock_holder *h = &e->holders[i];

		if (!h->count && !h->eagain)
			continue;
		fprintf(out, "%s{\"tid\":", k++ ? "," : "");
		if (h->tid == AP_HOLDER_UNKNOWN || h->tid == AP_HOLDER_READERS)
			fputs("null", out);
		else
			fprintf(out, "%u", h->tid);
		fputs(",\"comm\":", out);
		json_str(out, h->tid == AP_HOLDER_READERS ? "[readers]" :
			      h->tid == AP_HOLDER_UNKNOWN ? "[unknown]" : h->comm);
		fprintf(out, ",\"count\":%" PRIu64 ",\"wait_ns\":%" PRIu64 ",\"eagain\":%" PRIu64
			"}", h->count, h->wait_ns, h->eagain);
	}
	fputs("],\"waiters\":[", out);
	for (size_t i = 0; i < e->nwaiters; i++) {
		fprintf(out, "%s{\"pid\":%u,\"tid\":%u,\"comm\":", i ? "," : "", e->waiters[i].pid,
			e->waiters[i].tid);
		json_str(out, e->waiters[i].comm);
		fprintf(out, ",\"count\":%" PRIu64 ",\"wait_ns\":%" PRIu64 "}",
			e->waiters[i].count, e->waiters[i].wait_ns);
	}
	fputs("],\"stacks\":[", out);
	for (size_t i = 0; i < e->nstacks; i++) {
		const uint32_t *frames;
		size_t n;
		char name[512];

		frames = ap_profile_stack(p, e->stacks[i].stack, &n);
		fprintf(out, "%s{\"count\":%" PRIu64 ",\"wait_ns\":%" PRIu64 ",\"frames\":[",
			i ? "," : "", e->stacks[i].count, e->stacks[i].wait_ns);
		for (size_t j = 0; j < n; j++) {
			fputs(j ? "," : "", out);
			json_str(out, ap_frame_display_name(p, frames[j], name, sizeof(name)));
		}
		fputs("]}", out);
	}
	fputs("]}", out);
}

static int json_group(FILE *out, const struct ap_lock_table *t, const struct ap_profile *p,
		      enum ap_lock_group g, const char *key)
{
	const struct ap_lock_entry **v;
	long n = ap_lock_table_sorted(t, g, &v);
	size_t k = 0;

	if (n < 0)
		return (int)n;
	fprintf(out, ",\"%s\":[", key);
	for (long i = 0; i < n; i++) {
		if (!v[i]->count && !v[i]->eagain)
			continue;
		fputs(k++ ? ",\n" : "\n", out);
		json_entry(out, p, v[i]);
	}
	fputs("]", out);
	free(v);
	return 0;
}

int ap_lock_write_json(const struct ap_lock_table *t, const struct ap_profile *p, FILE *out)
{
	int err;

	fprintf(out, "{\"mode\":\"lock\",\"start_ns\":%" PRIu64 ",\"duration_ns\":%" PRIu64
		",\"hist_unit\":\"ns\",\"hist_slots\":\"log2: slot i counts waits in [2^i, "
		"2^(i+1)) ns, slot 0 also 0\"",
		ap_profile_start_ns(p), ap_profile_duration_ns(p));
	err = json_group(out, t, p, AP_LOCK_GROUP_LOCK, "locks");
	if (!err)
		err = json_group(out, t, p, AP_LOCK_GROUP_CONDVAR, "condvars");
	if (!err)
		err = json_group(out, t, p, AP_LOCK_GROUP_OTHER, "other_waits");
	fputs(",\n\"stats\":{", out);
	for (size_t i = 0; i < ap_profile_nstats(p); i++) {
		const struct ap_stat *s = ap_profile_stat(p, i);

		fputs(i ? "," : "", out);
		json_str(out, s->name);
		fprintf(out, ":%" PRIu64, s->value);
	}
	fputs("}}\n", out);
	if (!err && ferror(out))
		err = -EIO;
	return err;
}
