// SPDX-License-Identifier: MIT
/*
 * DWARF symbolization on fixtures built -O2 -g (tests/unit/symbolizer_dwarf.cmake): inline
 * chains with file:line, found in the binary itself, through .gnu_debuglink, through a
 * build-id directory, inside a private mount namespace after the process is gone; C++ and Rust
 * names demangled. Expected lines come from "@line" markers in the fixture sources, and a
 * sweep compares whole functions with binutils' addr2line (which does not use libdw).
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "symbol/symbol_internal.h"
#include "test_symbolizer_util.h"

#define FIX AP_DWFIX_DIR "/"
#define MAXF 16

struct ctx {
	struct ap_symbolizer *s;
	struct ap_profile *p;
	struct tu_child kid;
	char tmp[64]; /* a directory removed at teardown */
};

struct want {
	const char *name;
	const char *file;
	uint32_t line;
};

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));

	if (!c)
		return -1;
	tu_child_init(&c->kid);
	c->s = ap_symbolizer_new();
	c->p = ap_profile_new();
	*state = c;
	/* the machine's own /usr/lib/debug must not decide any result here */
	return c->s && c->p && !ap_symbolizer_set_debug_dirs(c->s, NULL, 0) ? 0 : -1;
}

static int teardown(void **state)
{
	struct ctx *c = *state;
	char cmd[128];

	tu_child_stop(&c->kid);
	if (c->tmp[0]) {
		umount2(c->tmp, MNT_DETACH);
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", c->tmp);
		if (system(cmd))
			print_message("could not remove %s\n", c->tmp);
	}
	ap_symbolizer_free(c->s);
	ap_profile_free(c->p);
	free(c);
	return 0;
}

static void need(const char *path)
{
	if (access(path, R_OK)) {
		print_message("SKIP: fixture %s was not built\n", path);
		skip();
	}
}

static void print_chain(struct ctx *c, const uint32_t *ids, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct ap_frame *f = ap_profile_frame(c->p, ids[i]);

		print_message("  #%zu %s %s:%u\n", i, ap_profile_str(c->p, f->name),
			      ap_profile_str(c->p, f->file), f->line);
	}
}

static void expect_chain(struct ctx *c, int pid, uint64_t addr, bool ret, const char *module,
			 const struct want *w, size_t n)
{
	uint32_t ids[MAXF];
	size_t got = ap_symbolizer_user_frames(c->s, c->p, pid, addr, ret, ids, MAXF);
	const struct ap_frame *first = NULL;

	if (got != n)
		print_chain(c, ids, got);
	assert_int_equal(got, n);
	for (size_t i = 0; i < n; i++) {
		const struct ap_frame *f =
			tu_frame(c->p, ids[i], w[i].name, module, w[i].file, w[i].line);

		/* one address: every frame shares it, its mapping and ELF address */
		assert_int_equal(f->addr, addr);
		if (!first)
			first = f;
		assert_int_equal(f->rel_addr, first->rel_addr);
		assert_int_equal(f->mapping, first->mapping);
		assert_int_not_equal(f->mapping, 0);
		/* every frame but the physical function is inlined into the next one */
		assert_int_equal(f->flags, i + 1 < n ? AP_FRAME_INLINED : 0);
	}
}

/* The chain every dwfix build has at main_ret. */
static void main_chain(struct want w[3])
{
	w[0] = (struct want){ "ap_dwfix_mix", "dwarf_fix.h", tu_marker("dwarf_fix.h", "mix_call") };
	w[1] = (struct want){ "dwm_mid", "dwarf_main.c",
			      tu_marker("dwarf_main.c", "dwm_mid_call") };
	w[2] = (struct want){ "ap_dwm_outer", "dwarf_main.c",
			      tu_marker("dwarf_main.c", "dwm_outer_call") };
}

static struct ap_symbolizer_stats stats(struct ctx *c)
{
	struct ap_symbolizer_stats st;

	ap_symbolizer_get_stats(c->s, &st);
	return st;
}

static void test_demangle(void **state)
{
	static const char *const cases[][2] = {
		{ "_ZN2ns6Widget4spinEi", "ns::Widget::spin(int)" },
		{ "_Z3fooIiEvT_", "void foo<int>(int)" },
		{ "_ZN2ns6Widget4spinEi.cold", "ns::Widget::spin(int) [clone .cold]" },
		/* Rust legacy: the hash goes */
		{ "_ZN4core3fmt9Formatter3pad17h0123456789abcdefE", "core::fmt::Formatter::pad" },
		/* Rust v0 */
		{ "_RNvNtCs1234_7mycrate4util3run", "mycrate::util::run" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *d = ap_demangle(cases[i][0]);

		assert_non_null(d);
		assert_string_equal(d, cases[i][1]);
		free(d);
	}
	assert_null(ap_demangle("main"));
	assert_null(ap_demangle("_start"));
	assert_null(ap_demangle("_Znot_really"));
	assert_null(ap_demangle(NULL));
}

static void test_inline_chain(void **state)
{
	struct ctx *c = *state;
	struct want w[3], lib[3];
	struct ap_symbolizer_stats st;
	uint32_t ids[MAXF], id;
	uint64_t ret;

	need(FIX "dwfix");
	tu_spawn(&c->kid, FIX "dwfix", FIX "libapdw_dl.so");
	assert_int_equal(ap_symbolizer_snapshot_pid(c->s, c->kid.pid), 0);
	ret = tu_val(&c->kid, "main_ret");

	main_chain(w);
	expect_chain(c, c->kid.pid, ret, true, "dwfix", w, 3);
	/* through the shared library: the helper's file, the library's functions */
	lib[0] = w[0];
	lib[1] = (struct want){ "dwl_mid", "dwarf_lib.c",
				tu_marker("dwarf_lib.c", "dwl_mid_call") };
	lib[2] = (struct want){ "ap_dwl_outer", "dwarf_lib.c",
				tu_marker("dwarf_lib.c", "dwl_outer_call") };
	expect_chain(c, c->kid.pid, tu_val(&c->kid, "lib_ret"), true, "libapdw.so", lib, 3);
	/* a leaf (not a return address) at its entry: no inlining, and a line from the
	 * declaration to the first statement (compilers differ on the prologue's line) */
	{
		uint32_t lo = tu_marker("dwarf_main.c", "leaf_decl");
		uint32_t hi = tu_marker("dwarf_main.c", "leaf_body");
		const struct ap_frame *f;

		assert_int_equal(ap_symbolizer_user_frames(c->s, c->p, c->kid.pid,
							   tu_val(&c->kid, "leaf"), false, ids,
							   MAXF),
				 1);
		f = ap_profile_frame(c->p, ids[0]);
		assert_string_equal(ap_profile_str(c->p, f->name), "ap_dwm_leaf");
		assert_string_equal(tu_base(ap_profile_str(c->p, f->file)), "dwarf_main.c");
		assert_true(f->line >= lo && f->line <= hi);
		assert_int_equal(f->flags, 0);
	}

	/* the one-frame API gives the physical function, at the line of the inlined call */
	id = ap_symbolizer_user_frame(c->s, c->p, c->kid.pid, ret, true);
	assert_int_equal(
	    tu_frame(c->p, id, "ap_dwm_outer", "dwfix", "dwarf_main.c", w[2].line)->flags, 0);
	st = stats(c);
	assert_int_equal(st.inline_truncated, 0);
	/* too small an array keeps the outer frames: the stack stays a prefix from the root */
	assert_int_equal(ap_symbolizer_user_frames(c->s, c->p, c->kid.pid, ret, true, ids, 2), 2);
	assert_int_equal(
	    tu_frame(c->p, ids[0], "dwm_mid", "dwfix", "dwarf_main.c", w[1].line)->flags,
	    AP_FRAME_INLINED);
	assert_int_equal(
	    tu_frame(c->p, ids[1], "ap_dwm_outer", "dwfix", "dwarf_main.c", w[2].line)->flags, 0);
	assert_int_equal(ap_symbolizer_user_frames(c->s, c->p, c->kid.pid, ret, true, ids, 0), 0);

	st = stats(c);
	assert_int_equal(st.inline_truncated, 1);
	assert_int_equal(st.frames_with_source, 5);
	assert_int_equal(st.inline_frames, 2 + 2 + 0 + 0 + 1);
	/* dwfix and libapdw.so carry their own DWARF */
	assert_true(st.debug_found >= 2);
	assert_int_equal(st.debuginfod_fetched + st.debuginfod_failed, 0);
}

static void test_dlopen_inline(void **state)
{
	struct ctx *c = *state;
	struct want w[3];
	uint64_t ret;

	need(FIX "dwfix");
	tu_spawn(&c->kid, FIX "dwfix", FIX "libapdw_dl.so");
	assert_int_equal(ap_symbolizer_snapshot_pid(c->s, c->kid.pid), 0);
	assert_int_equal(write(c->kid.in, "dlopen\n", 7), 7);
	tu_read_kv(&c->kid, true);
	ret = tu_val(&c->kid, "dl_ret");
	/* the next drain may re-read the maps of a process with an unknown address */
	ap_symbolizer_gc(c->s);
	w[0] = (struct want){ "ap_dwfix_mix", "dwarf_fix.h", tu_marker("dwarf_fix.h", "mix_call") };
	w[1] = (struct want){ "dwd_mid", "dwarf_dl.c", tu_marker("dwarf_dl.c", "dwd_mid_call") };
	w[2] = (struct want){ "ap_dwd_outer", "dwarf_dl.c",
			      tu_marker("dwarf_dl.c", "dwd_outer_call") };
	expect_chain(c, c->kid.pid, ret, true, "libapdw_dl.so", w, 3);
}

static bool has_symtab(const char *path)
{
	char cmd[PATH_MAX + 64], line[256];
	bool any = false;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "nm '%s' 2>/dev/null", path);
	f = popen(cmd, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		any = true;
	pclose(f);
	return any;
}

static void test_debuglink(void **state)
{
	struct ctx *c = *state;
	struct want w[3];
	uint64_t ret;
	int pid;

	need(FIX "dwfix.stripped");
	assert_false(has_symtab(FIX "dwfix.stripped"));
	tu_spawn(&c->kid, FIX "dwfix.stripped", FIX "libapdw_dl.so");
	assert_int_equal(ap_symbolizer_snapshot_pid(c->s, c->kid.pid), 0);
	main_chain(w);
	pid = c->kid.pid;
	ret = tu_val(&c->kid, "main_ret");
	/* a short-lived process: gone before its samples are symbolized */
	tu_child_stop(&c->kid);
	expect_chain(c, pid, ret, true, "dwfix.stripped", w, 3);
}

static void make_build_id_dir(struct ctx *c, const char *elf)
{
	char cmd[PATH_MAX + 64], bid[160] = "", path[PATH_MAX];
	FILE *f;

	snprintf(c->tmp, sizeof(c->tmp), "/tmp/ap-dbgroot-XXXXXX");
	assert_non_null(mkdtemp(c->tmp));
	snprintf(cmd, sizeof(cmd), "readelf -n '%s' 2>/dev/null", elf);
	f = popen(cmd, "r");
	assert_non_null(f);
	while (fgets(path, sizeof(path), f)) {
		char *p = strstr(path, "Build ID: ");

		if (p)
			sscanf(p + 10, "%159s", bid);
	}
	pclose(f);
	assert_true(strlen(bid) > 8);
	snprintf(path, sizeof(path), "%s/.build-id", c->tmp);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/.build-id/%.2s", c->tmp, bid);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/.build-id/%.2s/%s.debug", c->tmp, bid, bid + 2);
	tu_copy(FIX "dwfix.debug", path);
}

static void test_build_id_dir(void **state)
{
	struct ctx *c = *state;
	const char *dirs[1];
	struct want w[3];
	uint64_t ret;

	need(FIX "dwfix.nolink");
	make_build_id_dir(c, FIX "dwfix.nolink");
	tu_spawn(&c->kid, FIX "dwfix.nolink", FIX "libapdw_dl.so");
	ret = tu_val(&c->kid, "main_ret");

	/* no debug root: the exported symbol only (.dynsym), no source */
	{
		struct want bare = { "ap_dwm_outer", NULL, 0 };

		expect_chain(c, c->kid.pid, ret, true, "dwfix.nolink", &bare, 1);
	}

	/* a fresh symbolizer with the root: the build-id file has it all */
	ap_symbolizer_free(c->s);
	c->s = ap_symbolizer_new();
	assert_non_null(c->s);
	dirs[0] = c->tmp;
	assert_int_equal(ap_symbolizer_set_debug_dirs(c->s, dirs, 1), 0);
	main_chain(w);
	expect_chain(c, c->kid.pid, ret, true, "dwfix.nolink", w, 3);
}

static void test_namespace_deleted_exited(void **state)
{
	struct ctx *c = *state;
	const char *files[] = { FIX "dwfix.stripped", FIX "dwfix.debug", FIX "libapdw.so" };
	const struct ap_mapping *m;
	const struct ap_frame *f;
	char exe[PATH_MAX];
	uint32_t ids[MAXF];
	struct want w[3];
	uint64_t ret;
	int pid;

	need(FIX "dwfix.stripped");
	snprintf(c->tmp, sizeof(c->tmp), "/var/tmp/ap-nsfix-XXXXXX");
	assert_non_null(mkdtemp(c->tmp));
	if (!tu_spawn_ns(&c->kid, c->tmp, files, 3, false)) {
		print_message("SKIP: cannot create mount and pid namespaces\n");
		skip();
	}
	/* the host sees an empty directory: binary and debug file are the container's */
	snprintf(exe, sizeof(exe), "%s/dwfix.debug", c->tmp);
	assert_int_equal(access(exe, F_OK), -1);
	pid = c->kid.pid;
	ret = tu_val(&c->kid, "main_ret");
	assert_int_equal(ap_symbolizer_snapshot_pid(c->s, pid), 0);
	/* the container goes away, tmpfs and all, before the samples are symbolized */
	tu_child_stop(&c->kid);
	assert_int_equal(kill(pid, 0), -1);

	main_chain(w);
	expect_chain(c, pid, ret, true, "dwfix.stripped", w, 3);
	assert_int_equal(ap_symbolizer_user_frames(c->s, c->p, pid, ret, true, ids, MAXF), 3);
	f = ap_profile_frame(c->p, ids[0]);
	m = ap_profile_mapping(c->p, f->mapping);
	snprintf(exe, sizeof(exe), "%s/dwfix.stripped", c->tmp);
	assert_string_equal(ap_profile_str(c->p, m->file), exe);
}

static void test_cxx(void **state)
{
	struct ctx *c = *state;
	struct want w[2];
	uint64_t ret;

	need(FIX "dwfix_cxx");
	tu_spawn(&c->kid, FIX "dwfix_cxx", NULL);
	ret = tu_val(&c->kid, "cxx_ret");
	w[0] = (struct want){ "ns::Widget::step(int)", "dwarf_cxx.cpp",
			      tu_marker("dwarf_cxx.cpp", "cxx_step_call") };
	w[1] = (struct want){ "ns::Widget::spin(int)", "dwarf_cxx.cpp",
			      tu_marker("dwarf_cxx.cpp", "cxx_spin_call") };
	expect_chain(c, c->kid.pid, ret, true, "dwfix_cxx", w, 2);
	tu_child_stop(&c->kid);

	/* stripped to .dynsym: still demangled. A new symbolizer: the stripped copy has the
	 * build-id of the one above, whose cached symbols and DWARF it would share. */
	ap_symbolizer_free(c->s);
	c->s = ap_symbolizer_new();
	assert_non_null(c->s);
	tu_spawn(&c->kid, FIX "dwfix_cxx.stripped", NULL);
	{
		struct want bare = { "ns::Widget::spin(int)", NULL, 0 };

		expect_chain(c, c->kid.pid, tu_val(&c->kid, "cxx_ret"), true,
			     "dwfix_cxx.stripped", &bare, 1);
	}
}

/* Address and size of the first defined function whose name contains `part`. */
static void nm_find(const char *path, const char *part, uint64_t *addr, uint64_t *size)
{
	char cmd[PATH_MAX + 64], line[1024], name[900];
	unsigned long long a, sz;
	char type;
	FILE *f;

	*addr = *size = 0;
	snprintf(cmd, sizeof(cmd), "nm -S --defined-only '%s' 2>/dev/null", path);
	f = popen(cmd, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%llx %llx %c %899s", &a, &sz, &type, name) == 4 &&
		    (type == 't' || type == 'T') && strstr(name, part) && !*addr) {
			*addr = a;
			*size = sz;
		}
	pclose(f);
	assert_true(*addr && *size);
}

static void test_rust(void **state)
{
	struct ctx *c = *state;
	uint32_t mix_line = tu_marker("dwarf_rs.rs", "rs_mix"), ids[MAXF];
	uint64_t start, size, elf_addr;
	size_t mix_lines = 0, own_file = 0;

	need(FIX "dwfix_rs");
	nm_find(FIX "dwfix_rs", "work4spin", &elf_addr, &size);
	tu_spawn(&c->kid, FIX "dwfix_rs", NULL);
	start = tu_val(&c->kid, "rs_spin");
	for (uint64_t a = start; a < start + size; a++) {
		size_t n = ap_symbolizer_user_frames(c->s, c->p, c->kid.pid, a, false, ids, MAXF);
		const struct ap_frame *f;

		assert_true(n >= 1);
		/* the physical function, demangled without its hash; its line is in the Rust
		 * source unless std code was inlined without an inline DIE (then hint.rs, ...) */
		f = ap_profile_frame(c->p, ids[n - 1]);
		assert_string_equal(ap_profile_str(c->p, f->name), "dwfix_rs::work::spin");
		assert_int_equal(f->flags, 0);
		for (size_t i = 0; i + 1 < n; i++)
			assert_int_equal(ap_profile_frame(c->p, ids[i])->flags, AP_FRAME_INLINED);
		own_file += !strcmp(tu_base(ap_profile_str(c->p, f->file)), "dwarf_rs.rs");
		assert_int_equal(f->rel_addr, elf_addr + (a - start));
		/* mix's body, inlined into the loop: rustc may or may not describe it with an
		 * inline DIE (then the frame is named dwfix_rs::work::mix) */
		f = ap_profile_frame(c->p, ids[0]);
		if (f->line == mix_line &&
		    !strcmp(tu_base(ap_profile_str(c->p, f->file)), "dwarf_rs.rs")) {
			const char *name = ap_profile_str(c->p, f->name);

			assert_true(!strcmp(name, "dwfix_rs::work::mix") ||
				    !strcmp(name, "dwfix_rs::work::spin"));
			mix_lines++;
		}
	}
	assert_true(mix_lines > 0);
	assert_true(own_file > 0);
}

static void test_dwarf_off(void **state)
{
	struct ctx *c = *state;
	struct want bare = { "ap_dwm_outer", NULL, 0 };

	need(FIX "dwfix");
	ap_symbolizer_set_dwarf(c->s, false);
	tu_spawn(&c->kid, FIX "dwfix", NULL);
	expect_chain(c, c->kid.pid, tu_val(&c->kid, "main_ret"), true, "dwfix", &bare, 1);
	assert_int_equal(stats(c).frames_with_source, 0);
}

/* ---- fidelity: whole functions against binutils addr2line -i ---- */

#define SWEEP_MAX 10000

struct ref_chain {
	char text[512]; /* "name@file:line|..." innermost first, "" when nothing is known */
};

static void chain_text(char *out, size_t len, const struct ap_src_frame *f, size_t n)
{
	size_t used = 0;

	out[0] = '\0';
	for (size_t i = 0; i < n && used < len; i++)
		used += (size_t)snprintf(out + used, len - used, "%s@%s:%u|",
					 f[i].name ? f[i].name : "??",
					 f[i].file ? tu_base(f[i].file) : "??", f[i].line);
}

#ifndef AP_ADDR2LINE /* llvm-addr2line for a clang build: tests/unit/symbolizer_dwarf.cmake */
#define AP_ADDR2LINE "addr2line"
#endif

/* Run addr2line over addrs; fills refs[i] in our chain_text format. */
static void addr2line_refs(const char *exe, const uint64_t *addrs, size_t n,
			   struct ref_chain *refs)
{
	char list[] = "/tmp/ap-a2l-XXXXXX", cmd[PATH_MAX + 128], line[1024], fn[512] = "";
	long idx = -1;
	FILE *f;
	int fd = mkostemp(list, O_CLOEXEC);

	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	for (size_t i = 0; i < n; i++)
		fprintf(f, "0x%" PRIx64 "\n", addrs[i]);
	fclose(f);
	snprintf(cmd, sizeof(cmd), AP_ADDR2LINE " -i -f -a -e '%s' < %s", exe, list);
	f = popen(cmd, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (!strncmp(line, "0x", 2)) {
			idx++;
			assert_true(idx < (long)n);
			refs[idx].text[0] = '\0';
			fn[0] = '\0';
		} else if (!fn[0]) {
			snprintf(fn, sizeof(fn), "%.400s", line);
		} else {
			/* "file:line", maybe " (discriminator N)"; "??:0" when unknown */
			char *colon = strrchr(strtok(line, " "), ':');
			size_t used = strlen(refs[idx].text);

			assert_non_null(colon);
			*colon = '\0';
			snprintf(refs[idx].text + used, sizeof(refs[idx].text) - used, "%s@%s:%s|",
				 fn, tu_base(line), colon[1] == '?' ? "0" : colon + 1);
			fn[0] = '\0';
		}
	}
	pclose(f);
	unlink(list);
	assert_int_equal(idx + 1, (long)n);
}

/* An addr2line answer without a source line (the name and file come from the ELF symbols). */
static bool no_lines(const char *text)
{
	for (const char *p = strchr(text, ':'); p; p = strchr(p + 1, ':'))
		if (strncmp(p, ":0|", 3))
			return false;
	return true;
}

/* Function bytes of the ELF at exe, spread evenly into at most SWEEP_MAX addresses. */
static size_t sweep_addrs(const char *exe, uint64_t *addrs)
{
	char cmd[PATH_MAX + 64], line[1024];
	unsigned long long a, sz;
	uint64_t total = 0, step, seen = 0;
	size_t n = 0;
	char type;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "nm -S --defined-only '%s' 2>/dev/null", exe);
	for (int pass = 0; pass < 2; pass++) {
		f = popen(cmd, "r");
		assert_non_null(f);
		step = total / SWEEP_MAX + 1;
		while (fgets(line, sizeof(line), f)) {
			if (sscanf(line, "%llx %llx %c", &a, &sz, &type) != 3 ||
			    (type != 't' && type != 'T'))
				continue;
			for (uint64_t i = 0; pass && i < sz; i++, seen++)
				if (seen % step == 0 && n < SWEEP_MAX)
					addrs[n++] = a + i;
			total += pass ? 0 : sz;
		}
		pclose(f);
	}
	return n;
}

static void test_addr2line_agreement(void **state)
{
	static uint64_t addrs[SWEEP_MAX];
	static struct ref_chain refs[SWEEP_MAX];
	struct ap_src_frame fr[AP_MAX_INLINE];
	bool owned[AP_MAX_INLINE] = { false };
	const char *exe = AP_TEST_BIN_DIR "/test_symbolizer_dwarf";
	size_t n = sweep_addrs(exe, addrs), agree = 0, inl = 0, shown = 0;
	struct ap_dwarf *dw;
	char ours[512];

	assert_true(n > 1000);
	if (ap_dwarf_open(-1, exe, NULL, NULL, &dw)) {
		print_message("SKIP: the tests were built without -g\n");
		skip();
	}
	addr2line_refs(exe, addrs, n, refs);
	for (size_t i = 0; i < n; i++) {
		size_t k = ap_dwarf_chain(dw, addrs[i], fr, owned, AP_MAX_INLINE);

		inl += k > 1;
		chain_text(ours, sizeof(ours), fr, k);
		ap_dwarf_chain_free(fr, owned, k);
		/* nothing known on either side: addr2line still names the ELF symbol */
		if (!strcmp(ours, refs[i].text) || (!k && no_lines(refs[i].text)))
			agree++;
		else if (shown++ < 10)
			print_message("0x%" PRIx64 "\n  ours: %s\n  a2l:  %s\n", addrs[i], ours,
				      refs[i].text);
	}
	ap_dwarf_close(dw);
	print_message("addr2line agreement: %zu of %zu addresses, %zu with inlined frames\n",
		      agree, n, inl);
	/* an -O0 build inlines nothing: the chains are then single frames */
	if (!inl)
		print_message("note: no inlined code in %s (not optimised?)\n", exe);
	assert_true(agree * 100 >= n * 99);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_demangle),
		cmocka_unit_test_setup_teardown(test_inline_chain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dlopen_inline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_debuglink, setup, teardown),
		cmocka_unit_test_setup_teardown(test_build_id_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_namespace_deleted_exited, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cxx, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rust, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dwarf_off, setup, teardown),
		cmocka_unit_test(test_addr2line_agreement),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
