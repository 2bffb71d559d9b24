// SPDX-License-Identifier: MIT
/*
 * CFI table compiler tests on fixture ELFs (tests/data/unwind, built by unwind.cmake), and an
 * offline replay: this test's own stack, captured in a frameless assembly leaf below
 * -fomit-frame-pointer library frames, is walked with the tables and the very step function
 * the BPF walker runs (src/bpf/unwind_step.h).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <gelf.h>
#include <inttypes.h>
#include <link.h>
#include <linux/types.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "unwind/cfi.h"
#include "symbol/symbol_internal.h"

/* the walker's arithmetic, reading this process's own stack */
static uint64_t stack_lo, stack_hi;
static int self_read(__u64 *dst, __u64 addr)
{
	if (addr < stack_lo || addr + 8 > stack_hi)
		return -1;
	memcpy(dst, (const void *)(uintptr_t)addr, 8);
	return 0;
}
#define AP_UNWIND_INLINE inline
#define AP_UNWIND_READ(rctx, dst, addr) self_read((dst), (addr))
#include "bpf/unwind_step.h"

#define BIN AP_TEST_BIN_DIR "/"
#define FIX BIN "libunwfix.so"
#define FIX_DBG BIN "libunwfix_dbg.so"

struct fixture {
	struct ap_cfi_table t;
	void *dl;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(ap_cfi_table_from_path(FIX, &f->t), 0);
	f->dl = dlopen(FIX, RTLD_NOW);
	assert_non_null(f->dl);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	ap_cfi_table_release(&f->t);
	dlclose(f->dl);
	free(f);
	return 0;
}

/* Row of the fixture table at symbol `name` + off (ELF vaddr from dladdr's load base). */
static const struct ap_unwind_row *row_at(struct fixture *f, const char *name, uint64_t off)
{
	void *sym = dlsym(f->dl, name);
	Dl_info info;

	assert_non_null(sym);
	assert_true(dladdr(sym, &info));
	return ap_cfi_table_find(&f->t, (uint64_t)((char *)sym - (char *)info.dli_fbase) + off -
						f->t.base);
}

static void expect(const struct ap_unwind_row *r, uint8_t kind, int cfa_off, int rbp_off)
{
	assert_non_null(r);
	assert_int_equal(r->kind & AP_CFA_KIND_MASK, kind);
	if (kind == AP_CFA_RSP || kind == AP_CFA_RBP || kind == AP_CFA_DEREF_RBP ||
	    kind == AP_CFA_PLT) {
		assert_int_equal(r->cfa_off * ((r->kind & AP_CFA_SCALED) ? 8 : 1), cfa_off);
		assert_int_equal(r->rbp_off, rbp_off);
	}
}

static void test_hand_written_rules(void **state)
{
	struct fixture *f = *state;
	const struct ap_unwind_row *r;

	expect(row_at(f, "uwc_capture_pc", 0), AP_CFA_RSP, 8, AP_RBP_SAME);
	expect(row_at(f, "uwc_state_pushed", 0), AP_CFA_RSP, 24, -3);
	expect(row_at(f, "uwc_state_early_ret", 0), AP_CFA_RSP, 8, -3);
	/* remember/restore_state brings the CFA rule back too */
	expect(row_at(f, "uwc_state_restored", 0), AP_CFA_RSP, 24, -3);
	expect(row_at(f, "uwc_fp_body", 0), AP_CFA_RBP, 16, -2);
	expect(row_at(f, "uwc_drap_r10", 0), AP_CFA_UNSUPPORTED, 0, 0);
	expect(row_at(f, "uwc_drap_body", 0), AP_CFA_DEREF_RBP, -8, AP_RBP_AT_RBP);
	r = row_at(f, "uwc_plt_body", 0);
	expect(r, AP_CFA_PLT, 8, AP_RBP_SAME);
	assert_int_equal((r->kind >> AP_CFA_PARAM_SHIFT) & AP_CFA_PARAM_MASK, 11);
	expect(row_at(f, "uwc_end_body", 0), AP_CFA_END, 0, 0);
	expect(row_at(f, "uwc_signal_body", 0), AP_CFA_SIGNAL, 0, 0);
	expect(row_at(f, "uwc_unsupported_body", 0), AP_CFA_UNSUPPORTED, 0, 0);
	/* code without CFI: no row, or the "no CFI here" row (frame pointers) */
	r = row_at(f, "uwc_nocfi", 8);
	assert_true(!r || (r->kind & AP_CFA_KIND_MASK) == AP_CFA_NONE);
}

/* Every row the compiler produced within a function of the fixture. */
static size_t rows_of(const struct ap_cfi_table *t, void *dl, const char *name,
		      const struct ap_unwind_row **out, size_t max)
{
	const struct ap_unwind_row *rows = ap_cfi_table_rows(t);
	void *sym = dlsym(dl, name);
	const ElfW(Sym) *es = NULL;
	uint64_t start, end;
	Dl_info info;
	size_t n = 0;

	assert_non_null(sym);
	assert_true(dladdr1(sym, &info, (void **)&es, RTLD_DL_SYMENT));
	assert_non_null(es);
	start = (uint64_t)((char *)sym - (char *)info.dli_fbase) - t->base;
	end = start + es->st_size;
	for (uint32_t i = 0; i < t->nrows && n < max; i++)
		if (rows[i].pc >= start && rows[i].pc < end)
			out[n++] = &rows[i];
	return n;
}

static void test_compiled_code(void **state)
{
	struct fixture *f = *state;
	const struct ap_unwind_row *rows[64];
	size_t n;
	bool scaled = false, rbp_cfa = false;

	/* a 40000-byte frame: its CFA offset only fits scaled by 8 */
	n = rows_of(&f->t, f->dl, "unwfix_c", rows, 64);
	assert_true(n >= 2);
	for (size_t i = 0; i < n; i++)
		scaled |= (rows[i]->kind & AP_CFA_SCALED) &&
			  (rows[i]->kind & AP_CFA_KIND_MASK) == AP_CFA_RSP;
	assert_true(scaled);
	/* the over-aligned local makes gcc address the frame through RBP */
	n = rows_of(&f->t, f->dl, "unwfix_b", rows, 64);
	for (size_t i = 0; i < n; i++)
		rbp_cfa |= (rows[i]->kind & AP_CFA_KIND_MASK) == AP_CFA_RBP ||
			   (rows[i]->kind & AP_CFA_KIND_MASK) == AP_CFA_DEREF_RBP;
	assert_true(rbp_cfa);
	assert_int_equal(f->t.stats.fdes_bad, 0);
	assert_true(f->t.build_id[0] != '\0');
}

/* .debug_frame (compressed) gives the same rules as .eh_frame for the same code. */
static void test_debug_frame(void **state)
{
	struct fixture *f = *state;
	static const char *const fns[] = { "unwfix_a", "unwfix_b", "unwfix_c" };
	struct ap_cfi_table d;
	void *dl = dlopen(FIX_DBG, RTLD_NOW);

	assert_non_null(dl);
	assert_int_equal(ap_cfi_table_from_path(FIX_DBG, &d), 0);
	assert_true(d.stats.fdes_debug_frame >= 3);
	for (size_t k = 0; k < 3; k++) {
		const struct ap_unwind_row *a[64], *b[64];
		size_t na = rows_of(&f->t, f->dl, fns[k], a, 64);
		size_t nb = rows_of(&d, dl, fns[k], b, 64);

		assert_true(na > 0);
		assert_int_equal(na, nb);
		for (size_t i = 0; i < na; i++) {
			assert_int_equal(a[i]->kind, b[i]->kind);
			assert_int_equal(a[i]->cfa_off, b[i]->cfa_off);
			assert_int_equal(a[i]->rbp_off, b[i]->rbp_off);
		}
	}
	ap_cfi_table_release(&d);
	dlclose(dl);
}

/* Stripping keeps .eh_frame: the tables are identical. */
static void test_stripped_identical(void **state)
{
	static const char *const pairs[][2] = {
		{ BIN "nofp_chain", BIN "nofp_stripped/nofp_chain" },
		{ BIN "libnofp_lib.so", BIN "nofp_stripped/libnofp_lib.so" },
		{ BIN "nofp_cpp", BIN "nofp_stripped/nofp_cpp" },
	};

	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		struct ap_cfi_table a, b;

		assert_int_equal(ap_cfi_table_from_path(pairs[i][0], &a), 0);
		assert_int_equal(ap_cfi_table_from_path(pairs[i][1], &b), 0);
		assert_int_equal(a.nrows, b.nrows);
		assert_int_equal(a.nbuckets, b.nbuckets);
		assert_int_equal(a.shift, b.shift);
		assert_true(a.base == b.base);
		assert_memory_equal(a.image, b.image, ap_cfi_table_entries(&a) * 8);
		assert_string_equal(a.build_id, b.build_id);
		ap_cfi_table_release(&a);
		ap_cfi_table_release(&b);
	}
}

static void test_vdso(void **state)
{
	unsigned long base = getauxval(AT_SYSINFO_EHDR), start = 0, end = 0;
	struct ap_cfi_table t;
	char line[256];
	FILE *fp = fopen("/proc/self/maps", "r");

	assert_non_null(fp);
	while (fgets(line, sizeof(line), fp))
		if (strstr(line, "[vdso]"))
			sscanf(line, "%lx-%lx", &start, &end);
	fclose(fp);
	if (!base || base != start)
		skip();
	assert_int_equal(ap_cfi_table_from_mem((const void *)base, end - start, &t), 0);
	assert_true(t.nrows > 0);
	ap_cfi_table_release(&t);
}

/* The BPF walker's row search (unwind.h), on the table image: bucket index, then five steps. */
static const struct ap_unwind_row *bpf_style_find(const struct ap_cfi_table *t, uint64_t tpc)
{
	const uint32_t *ix = (const uint32_t *)t->image;
	const struct ap_unwind_row *rows = ap_cfi_table_rows(t);
	uint64_t bk = tpc >> t->shift;
	uint32_t lo, hi;

	if (bk >= t->nbuckets)
		return NULL;
	lo = ix[bk];
	hi = ix[bk + 1];
	assert_true(hi >= lo);
	assert_true(hi - lo < AP_UNWIND_BUCKET_ROWS); /* else the walker's slow path */
	for (uint32_t step = 16; step > 0; step >>= 1)
		if (lo + step <= hi && rows[lo + step].pc <= tpc)
			lo += step;
	return rows[lo].pc <= tpc ? &rows[lo] : NULL;
}

static const struct ap_unwind_row *linear_find(const struct ap_cfi_table *t, uint64_t tpc)
{
	const struct ap_unwind_row *rows = ap_cfi_table_rows(t), *best = NULL;

	for (uint32_t i = 0; i < t->nrows && rows[i].pc <= tpc; i++)
		best = &rows[i];
	return best;
}

/* The bucket index of a big real library: both searches agree with a linear scan at every
 * row boundary and around it. */
static void test_bucket_index(void **state)
{
	static const char *const libs[] = { "/lib/x86_64-linux-gnu/libc.so.6", FIX };

	for (size_t k = 0; k < 2; k++) {
		struct ap_cfi_table t;
		const struct ap_unwind_row *rows;

		if (ap_cfi_table_from_path(libs[k], &t))
			continue;
		rows = ap_cfi_table_rows(&t);
		assert_true(t.shift > AP_UNWIND_MIN_SHIFT && t.shift <= AP_UNWIND_MAX_SHIFT);
		for (uint32_t i = 0; i < t.nrows; i += 1 + i % 7) {
			for (int64_t d = -1; d <= 1; d++) {
				uint64_t pc = rows[i].pc + d;

				if (rows[i].pc == 0 && d < 0)
					continue;
				assert_ptr_equal(linear_find(&t, pc), ap_cfi_table_find(&t, pc));
				assert_ptr_equal(linear_find(&t, pc), bpf_style_find(&t, pc));
			}
		}
		ap_cfi_table_release(&t);
	}
}

static void test_rule_compiler(void **state)
{
	struct ap_cfi_fde fde = { 0x1000, 0x2000, false };
	struct ap_cfi_regs r = { 0 };
	struct ap_unwind_row row;

	r.cfa_reg = 7;
	r.cfa_off = 16;
	r.ra.kind = AP_RULE_OFFSET;
	r.ra.off = -8;
	r.rbp.kind = AP_RULE_OFFSET;
	r.rbp.off = -16;
	ap_cfi_compile_row(&fde, &r, &row);
	expect(&row, AP_CFA_RSP, 16, -2);

	r.cfa_off = 70000; /* scaled */
	ap_cfi_compile_row(&fde, &r, &row);
	expect(&row, AP_CFA_RSP, 70000, -2);
	assert_true(row.kind & AP_CFA_SCALED);
	r.cfa_off = 70001; /* neither fits */
	ap_cfi_compile_row(&fde, &r, &row);
	expect(&row, AP_CFA_UNSUPPORTED, 0, 0);

	r.cfa_off = 16;
	r.rbp.off = -2048; /* saved too far for an s8 * 8 */
	ap_cfi_compile_row(&fde, &r, &row);
	assert_int_equal(row.rbp_off, AP_RBP_LOST);
	r.rbp.kind = AP_RULE_REGISTER;
	ap_cfi_compile_row(&fde, &r, &row);
	assert_int_equal(row.rbp_off, AP_RBP_LOST);

	r.ra.off = -16; /* return address not at CFA - 8 */
	ap_cfi_compile_row(&fde, &r, &row);
	expect(&row, AP_CFA_UNSUPPORTED, 0, 0);
	r.ra.kind = AP_RULE_UNDEFINED;
	ap_cfi_compile_row(&fde, &r, &row);
	expect(&row, AP_CFA_END, 0, 0);
}

static void test_bias(void **state)
{
	struct ap_cfi_seg segs[2] = {
		{ .offset = 0, .vaddr = 0x400000, .filesz = 0x800, .flags = PF_R },
		{ .offset = 0x1000, .vaddr = 0x401000, .filesz = 0x2345, .flags = PF_R | PF_X },
	};
	struct ap_cfi_table t = { .segs = segs, .nsegs = 2, .base = 0x401000 };
	uint64_t bias;

	/* non-PIE: mapped at its link address */
	assert_int_equal(ap_cfi_table_bias(&t, 0x401000, 0x1000, &bias), 0);
	assert_true(0x401234 - bias == 0x234);
	/* the same file relocated (as a PIE would be) */
	assert_int_equal(ap_cfi_table_bias(&t, 0x7f0000001000, 0x1000, &bias), 0);
	assert_true(0x7f0000001234 - bias == 0x234);
	assert_int_equal(ap_cfi_table_bias(&t, 0x7f0000001000, 0x9000, &bias), -ENOENT);
}

/* ---- malformed input ---- */

static int count_row(void *ctx, const struct ap_cfi_fde *fde, uint64_t pc,
		     const struct ap_cfi_regs *r)
{
	(*(size_t *)ctx)++;
	return 0;
}

static void test_malformed(void **state)
{
	struct fixture *f = *state;
	Elf *elf;
	Elf_Scn *scn = NULL;
	size_t shstrndx, n = 0;
	uint8_t *copy = NULL;
	size_t size = 0;
	uint64_t vaddr = 0, seed = 12345;
	FILE *fp = fopen(FIX, "rb");
	static uint8_t file[1 << 20];
	size_t flen;

	(void)f;
	assert_non_null(fp);
	flen = fread(file, 1, sizeof(file), fp);
	fclose(fp);
	elf_version(EV_CURRENT);
	elf = elf_memory((char *)file, flen);
	assert_non_null(elf);
	assert_int_equal(elf_getshdrstrndx(elf, &shstrndx), 0);
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		Elf_Data *d;

		gelf_getshdr(scn, &sh);
		if (strcmp(elf_strptr(elf, shstrndx, sh.sh_name), ".eh_frame"))
			continue;
		d = elf_getdata(scn, NULL);
		copy = malloc(d->d_size);
		memcpy(copy, d->d_buf, d->d_size);
		size = d->d_size;
		vaddr = sh.sh_addr;
	}
	assert_non_null(copy);
	for (int iter = 0; iter < 3000; iter++) {
		uint8_t *mut = malloc(size);
		struct ap_cfi_section sec = { mut, size, vaddr, 0, true };

		memcpy(mut, copy, size);
		for (int k = 0; k < 1 + iter % 8; k++) {
			seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
			mut[(seed >> 33) % size] = (uint8_t)(seed >> 17);
		}
		seed = seed * 6364136223846793005ULL + 1;
		if (iter % 3 == 0)
			sec.size = (seed >> 33) % size; /* truncated */
		sec.eh = iter % 5 != 0; /* sometimes read as .debug_frame */
		ap_cfi_parse(&sec, NULL, count_row, &n, NULL);
		free(mut);
	}
	assert_true(n > 0);
	free(copy);
	elf_end(elf);
}

/* A CIE (.eh_frame, "zR", absptr, data alignment -8: CFA = rsp + 8, ra at CFA - 8) at
 * offset 0, 24 bytes, for the hand-made FDEs below. */
static const uint8_t hand_cie[24] = {
	0x14, 0, 0, 0, 0, 0, 0, 0, 1, 'z', 'R', 0, 1, 0x78, 16, 1, 0,
	0x0c, 7, 8, 0x90, 1, 0, 0,
};

/* Found by fuzz_cfi (tests/fuzz/regressions/cfi/eh_entry_shorter_than_id): an entry 1 byte
 * long whose CIE pointer lies after it. The id was read past the entry's end, the reader
 * was left beyond the end and the next bounds check (end - p) wrapped: the FDE body was
 * read past the section. Now the entry is malformed and the walk stops there. */
static void test_entry_shorter_than_id(void **state)
{
	uint8_t *buf = malloc(32);
	struct ap_cfi_parse_stats st;
	size_t n = 0;

	(void)state;
	memcpy(buf, hand_cie, sizeof(hand_cie));
	memcpy(buf + 24, (const uint8_t[]){ 1, 0, 0, 0, 28, 0, 0, 0 }, 8);
	{
		struct ap_cfi_section sec = { buf, 32, 0x1000, 0, true };

		assert_int_equal(ap_cfi_parse(&sec, NULL, count_row, &n, &st), 0);
	}
	assert_int_equal(n, 0);
	assert_int_equal(st.fdes, 0);
	assert_int_equal(st.fdes_bad, 1);
	free(buf);
}

/* An FDE for [0x2000, 0x2040) running `prog` under hand_cie: the section, its length. */
static size_t hand_fde(uint8_t *buf, const uint8_t *prog, size_t plen)
{
	size_t body = 4 + 16 + 1 + plen;
	uint64_t start = 0x2000, range = 0x40;
	uint32_t len = (uint32_t)body, cie_ptr = 28;

	memcpy(buf, hand_cie, sizeof(hand_cie));
	memcpy(buf + 24, &len, 4);
	memcpy(buf + 28, &cie_ptr, 4);
	memcpy(buf + 32, &start, 8);
	memcpy(buf + 40, &range, 8);
	buf[48] = 0; /* augmentation data length */
	memcpy(buf + 49, prog, plen);
	memset(buf + 49 + plen, 0, 4); /* terminator */
	return 49 + plen + 4;
}

struct last_row {
	size_t n;
	struct ap_cfi_regs r;
};

static int keep_row(void *ctx, const struct ap_cfi_fde *fde, uint64_t pc,
		    const struct ap_cfi_regs *r)
{
	struct last_row *l = ctx;

	(void)fde;
	(void)pc;
	l->n++;
	l->r = *r;
	return 0;
}

/* DW_CFA_offset's factor times the data alignment: a product that does not fit in 64 bits
 * (signed overflow, undefined; UBSan found it) makes the FDE malformed; a sane one is
 * scaled as before. */
static void test_offset_overflow(void **state)
{
	static const uint8_t big[] = { 0x86, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
				       0x7f, 0x41, 0x0e, 0x10 };
	static const uint8_t sane[] = { 0x41, 0x0e, 0x10, 0x86, 0x02, 0x41 };
	static const uint8_t neg[] = { 0x2f, 6, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
				       0xff, 0x01, 0x41 };
	uint8_t buf[128];
	struct ap_cfi_parse_stats st;
	struct last_row l = { 0 };
	struct ap_cfi_section sec = { buf, 0, 0x1000, 0, true };

	(void)state;
	sec.size = hand_fde(buf, big, sizeof(big));
	ap_cfi_parse(&sec, NULL, keep_row, &l, &st);
	assert_int_equal(st.fdes_bad, 1);
	assert_int_equal(st.fdes, 0);

	/* GNU_negative_offset_extended with a factor over INT64_MAX: its negation overflows */
	memset(&l, 0, sizeof(l));
	sec.size = hand_fde(buf, neg, sizeof(neg));
	ap_cfi_parse(&sec, NULL, keep_row, &l, &st);
	assert_int_equal(st.fdes_bad, 1);

	memset(&l, 0, sizeof(l));
	sec.size = hand_fde(buf, sane, sizeof(sane));
	ap_cfi_parse(&sec, NULL, keep_row, &l, &st);
	assert_int_equal(st.fdes, 1);
	assert_int_equal(st.fdes_bad, 0);
	assert_int_equal(l.r.rbp.kind, AP_RULE_OFFSET);
	assert_int_equal(l.r.rbp.off, -16); /* 2 x -8 */
	assert_int_equal(l.r.cfa_off, 16);
}

/* A CIE whose initial instructions are longer than AP_CFI_MAX_CIE_INSNS: its FDEs are
 * dropped and counted as a limit hit, not run (they would run it once each). */
static void test_cie_insns_limit(void **state)
{
	size_t body = 4 + 1 + 3 + 4 + 1 + AP_CFI_MAX_CIE_INSNS + 1;
	size_t cie_len = 4 + body, total = cie_len + 4 + 4 + 16 + 1 + 4;
	uint8_t *buf = calloc(1, total);
	uint32_t len = (uint32_t)body, flen = 4 + 16 + 1, ptr = (uint32_t)cie_len + 4;
	uint64_t start = 0x2000, range = 0x40;
	struct ap_cfi_parse_stats st;
	size_t n = 0;

	(void)state;
	memcpy(buf, &len, 4);
	memcpy(buf + 8, (const uint8_t[]){ 1, 'z', 'R', 0, 1, 0x78, 16, 1, 0 }, 9);
	/* the rest of the CIE: nops (0) */
	memcpy(buf + cie_len, &flen, 4);
	memcpy(buf + cie_len + 4, &ptr, 4);
	memcpy(buf + cie_len + 8, &start, 8);
	memcpy(buf + cie_len + 16, &range, 8);
	{
		struct ap_cfi_section sec = { buf, total, 0x1000, 0, true };

		ap_cfi_parse(&sec, NULL, count_row, &n, &st);
	}
	assert_int_equal(st.fdes_limit, 1);
	assert_int_equal(st.fdes, 0);
	assert_int_equal(n, 0);
	free(buf);
}

/* ---- offline replay of this process's own stack ---- */

struct region {
	uint64_t start, end, offset;
	struct ap_cfi_table t;
	bool ok;
};

struct self_maps {
	struct region r[256];
	size_t n;
};

static int self_map(const struct ap_maps_entry *e, void *ctx)
{
	struct self_maps *m = ctx;

	if (!strcmp(e->path, "[stack]")) {
		stack_lo = e->start;
		stack_hi = e->end;
	}
	if (e->perms[2] != 'x' || e->path[0] != '/' || m->n == 256)
		return 0;
	m->r[m->n].start = e->start;
	m->r[m->n].end = e->end;
	m->r[m->n].offset = e->offset;
	m->r[m->n].ok = ap_cfi_table_from_path(e->path, &m->r[m->n].t) == 0;
	m->n++;
	return 0;
}

/* The walk, as unwind.h does it (minus the BPF maps). Returns the status. */
static int replay(struct self_maps *m, struct ap_uregs r, uint64_t *pcs, size_t *npcs)
{
	int res = AP_STEP_OK;

	*npcs = 0;
	while (*npcs < AP_UNWIND_MAX_FRAMES) {
		uint64_t pc = ap_unwind_lookup_pc(&r), bias;
		const struct ap_unwind_row *row = NULL;

		pcs[(*npcs)++] = r.pc;
		for (size_t i = 0; i < m->n; i++)
			if (pc >= m->r[i].start && pc < m->r[i].end && m->r[i].ok &&
			    !ap_cfi_table_bias(&m->r[i].t, m->r[i].start, m->r[i].offset, &bias))
				row = ap_cfi_table_find(&m->r[i].t, pc - bias);
		res = row ? ap_unwind_row_step(row, &r, NULL) : AP_STEP_USE_FP;
		if (res == AP_STEP_USE_FP)
			res = ap_unwind_fp_step(&r, NULL);
		if (res != AP_STEP_OK)
			return res;
	}
	return AP_UNWIND_TRUNCATED;
}

/* libunwfix.so */
void unw_capture(struct ap_uregs *r);
void unwfix_a(void (*cb)(void *), void *arg);

struct replay_ctx {
	struct self_maps *maps;
	uint64_t pcs[AP_UNWIND_MAX_FRAMES];
	size_t n;
	int status;
};

/* Walks while the captured frames are still live (below them on the stack). */
__attribute__((noinline)) void replay_cb(void *arg)
{
	struct replay_ctx *c = arg;
	struct ap_uregs regs;

	unw_capture(&regs);
	c->status = replay(c->maps, regs, c->pcs, &c->n);
	__asm__ volatile("" ::: "memory"); /* not a tail call */
}

__attribute__((noinline)) void replay_run(struct replay_ctx *c)
{
	unwfix_a(replay_cb, c);
	__asm__ volatile("" ::: "memory");
}

static void test_replay_own_stack(void **state)
{
	static const char *const chain[] = { "unw_capture", "replay_cb", "unwfix_c",
					     "unwfix_b",    "unwfix_a",  "replay_run" };
	struct self_maps *m = calloc(1, sizeof(*m));
	struct replay_ctx c = { 0 };
	const char *names[AP_UNWIND_MAX_FRAMES];
	uint64_t *pcs = c.pcs;
	size_t n, found = 0;
	int status;

	(void)state;
	assert_non_null(m);
	assert_int_equal(ap_maps_read(getpid(), self_map, m), 0);
	assert_true(stack_hi > stack_lo);
	c.maps = m;
	replay_run(&c);
	n = c.n;
	status = c.status;
	for (size_t i = 0; i < n; i++) {
		Dl_info info;

		names[i] = dladdr((void *)(uintptr_t)(i ? pcs[i] - 1 : pcs[i]), &info) &&
					   info.dli_sname ?
				   info.dli_sname :
				   "?";
		if (!strcmp(names[i], "uwc_capture_pc")) /* a label inside unw_capture */
			names[i] = "unw_capture";
		print_message("  #%zu %#" PRIx64 " %s\n", i, pcs[i], names[i]);
	}
	/* the known chain, in order, from the leaf */
	for (size_t i = 0; i < n && found < 6; i++)
		if (!strcmp(names[i], chain[found]))
			found++;
		else if (found)
			break;
	assert_int_equal(found, 6);
	assert_string_equal(names[0], "unw_capture");
	/* ... down to the outermost frame */
	assert_int_equal(status, AP_UNWIND_COMPLETE);
	assert_string_equal(names[n - 1], "_start");
	for (size_t i = 0; i < m->n; i++)
		ap_cfi_table_release(&m->r[i].t);
	free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_hand_written_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_compiled_code, setup, teardown),
		cmocka_unit_test_setup_teardown(test_debug_frame, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
		cmocka_unit_test(test_entry_shorter_than_id),
		cmocka_unit_test(test_offset_overflow),
		cmocka_unit_test(test_cie_insns_limit),
		cmocka_unit_test(test_stripped_identical),
		cmocka_unit_test(test_vdso),
		cmocka_unit_test(test_rule_compiler),
		cmocka_unit_test(test_bucket_index),
		cmocka_unit_test(test_bias),
		cmocka_unit_test(test_replay_own_stack),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
