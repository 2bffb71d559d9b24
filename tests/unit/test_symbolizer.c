// SPDX-License-Identifier: MIT
/*
 * Symbolizer tests on fixture ELF files (tests/data/symbolizer, built by symbolizer.cmake).
 * Expected addresses come from nm/readelf and from the fixture's own function pointers, never
 * from the code under test.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib/profile.h"
#include "symbol/symbol_internal.h"
#include "symbol/symbolizer.h"

#define BIN AP_TEST_BIN_DIR "/"
#define FIX_PIE BIN "symfix_pie"
#define FIX_NOPIE BIN "symfix_nopie"
#define FIX_LIB BIN "libapfix.so"
#define FIX_DL BIN "libapfix_dl.so"
#define FIX_PIE_STRIPPED BIN "symfix_pie.stripped"
#define FIX_LIB_STRIPPED BIN "libapfix.stripped.so"
#define DATA AP_TEST_DATA_DIR "/symbolizer/"
#define CHILD_TIMEOUT_MS 10000
#define NO_SUCH_PID 0x7ffffff0 /* above any pid_max */

struct child {
	pid_t pid;
	int in;	 /* its stdin */
	int out; /* its stdout */
	uint64_t alpha, beta, gamma;
};

struct ctx {
	struct ap_symbolizer *s;
	struct ap_profile *p;
	struct child kids[3];
	char tmp[64]; /* a copy of a fixture, removed at teardown */
};

/* ---- independent references: nm, readelf ---- */

/* Address and size (0 when nm shows none) of `name` in the ELF file at path. */
static int nm_symbol(const char *path, const char *name, bool dynamic, uint64_t *addr,
		     uint64_t *size)
{
	char cmd[PATH_MAX + 64], line[512];
	int err = -ENOENT;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "nm -S --defined-only %s '%s' 2>/dev/null", dynamic ? "-D" : "",
		 path);
	f = popen(cmd, "r");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char a[64] = "", b[64] = "", c[64] = "", d[256] = "";
		int n = sscanf(line, "%63s %63s %63s %255s", a, b, c, d);

		/* dynamic symbols print with their version: "clock_gettime@@LINUX_2.6" */
		c[strcspn(c, "@")] = '\0';
		d[strcspn(d, "@")] = '\0';
		if (n == 4 && !strcmp(d, name)) {
			*addr = strtoull(a, NULL, 16);
			*size = strtoull(b, NULL, 16);
			err = 0;
		} else if (n == 3 && !strcmp(c, name)) {
			*addr = strtoull(a, NULL, 16);
			*size = 0;
			err = 0;
		}
	}
	pclose(f);
	return err;
}

static uint64_t nm_addr(const char *path, const char *name)
{
	uint64_t addr = 0, size;

	assert_int_equal(nm_symbol(path, name, false, &addr, &size), 0);
	return addr;
}

static int readelf_build_id(const char *path, char *out, size_t len)
{
	char cmd[PATH_MAX + 64], line[512];
	int err = -ENOENT;
	FILE *f;

	snprintf(cmd, sizeof(cmd), "readelf -n '%s' 2>/dev/null", path);
	f = popen(cmd, "r");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char *p = strstr(line, "Build ID: ");

		if (p && err) {
			snprintf(out, len, "%s", p + strlen("Build ID: "));
			out[strcspn(out, " \n")] = '\0';
			err = 0;
		}
	}
	pclose(f);
	return err;
}

/* ---- fixture processes ---- */

static int read_line(int fd, char *buf, size_t len)
{
	size_t n = 0;

	while (n + 1 < len) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		char c;

		if (poll(&pfd, 1, CHILD_TIMEOUT_MS) <= 0)
			return -ETIMEDOUT;
		if (read(fd, &c, 1) != 1)
			return -EIO;
		if (c == '\n')
			break;
		buf[n++] = c;
	}
	buf[n] = '\0';
	return 0;
}

/* Expect "<key> <hex address>" from the child. */
static uint64_t read_addr(struct child *c, const char *key)
{
	char line[128], k[32];
	uint64_t v = 0;

	assert_int_equal(read_line(c->out, line, sizeof(line)), 0);
	assert_int_equal(sscanf(line, "%31s %" SCNx64, k, &v), 2);
	assert_string_equal(k, key);
	assert_true(v != 0);
	return v;
}

static void spawn(const char *exe, struct child *c)
{
	int in[2], out[2];
	char line[64];
	pid_t pid;

	assert_int_equal(pipe2(in, O_CLOEXEC), 0);
	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (!pid) {
		/* the fixture dies with the test, whatever happens to the test */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0)
			_exit(126);
		execl(exe, exe, FIX_DL, (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	c->pid = pid;
	c->in = in[1];
	c->out = out[0];
	c->alpha = read_addr(c, "alpha");
	c->beta = read_addr(c, "beta");
	c->gamma = read_addr(c, "gamma");
	assert_int_equal(read_line(c->out, line, sizeof(line)), 0);
	assert_string_equal(line, "ready");
}

static void child_stop(struct child *c)
{
	if (c->pid > 0) {
		kill(c->pid, SIGKILL);
		waitpid(c->pid, NULL, 0);
		c->pid = 0;
	}
	if (c->in >= 0)
		close(c->in);
	if (c->out >= 0)
		close(c->out);
	c->in = c->out = -1;
}

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));

	if (!c)
		return -1;
	for (size_t i = 0; i < 3; i++)
		c->kids[i].in = c->kids[i].out = -1;
	c->s = ap_symbolizer_new();
	c->p = ap_profile_new();
	*state = c;
	return c->s && c->p ? 0 : -1;
}

static int teardown(void **state)
{
	struct ctx *c = *state;

	for (size_t i = 0; i < 3; i++)
		child_stop(&c->kids[i]);
	if (c->tmp[0])
		unlink(c->tmp);
	ap_symbolizer_free(c->s);
	ap_profile_free(c->p);
	free(c);
	return 0;
}

/* ---- frame helpers ---- */

static const struct ap_frame *frame(struct ctx *c, uint32_t id)
{
	const struct ap_frame *f;

	assert_int_not_equal(id, UINT32_MAX);
	f = ap_profile_frame(c->p, id);
	assert_non_null(f);
	return f;
}

static const struct ap_frame *user(struct ctx *c, int pid, uint64_t addr, bool ret,
				   const char *name, const char *module)
{
	const struct ap_frame *f = frame(c, ap_symbolizer_user_frame(c->s, c->p, pid, addr, ret));

	assert_int_equal(f->addr, addr);
	assert_int_equal(f->kind, AP_FRAME_USER);
	if (name)
		assert_string_equal(ap_profile_str(c->p, f->name), name);
	if (module)
		assert_string_equal(ap_profile_str(c->p, f->module), module);
	return f;
}

static const struct ap_frame *kernel(struct ctx *c, uint64_t addr, bool ret, const char *name,
				     const char *module)
{
	const struct ap_frame *f = frame(c, ap_symbolizer_kernel_frame(c->s, c->p, addr, ret));

	assert_int_equal(f->kind, AP_FRAME_KERNEL);
	assert_string_equal(ap_profile_str(c->p, f->name), name);
	assert_string_equal(ap_profile_str(c->p, f->module), module);
	return f;
}

static struct ap_symbolizer_stats stats(struct ctx *c)
{
	struct ap_symbolizer_stats st;

	ap_symbolizer_get_stats(c->s, &st);
	return st;
}

/* ---- ELF files ---- */

static void check_elf_function(const char *path, const char *name)
{
	uint64_t addr, size, start = 0;
	char got[128];

	assert_int_equal(nm_symbol(path, name, false, &addr, &size), 0);
	assert_true(size > 1);
	assert_int_equal(ap_elf_lookup(path, addr, got, sizeof(got), &start), 0);
	assert_string_equal(got, name);
	assert_int_equal(start, addr);
	assert_int_equal(ap_elf_lookup(path, addr + size - 1, got, sizeof(got), &start), 0);
	assert_string_equal(got, name);
	assert_int_equal(start, addr);
}

static void test_elf_lookup_pie(void **state)
{
	check_elf_function(FIX_PIE, "ap_fix_alpha");
	check_elf_function(FIX_PIE, "ap_fix_beta");
	check_elf_function(FIX_PIE, "main");
	/* a PIE is linked at 0 */
	assert_true(nm_addr(FIX_PIE, "ap_fix_alpha") < 0x400000);
}

static void test_elf_lookup_nopie(void **state)
{
	check_elf_function(FIX_NOPIE, "ap_fix_alpha");
	check_elf_function(FIX_NOPIE, "ap_fix_beta");
	/* linked at its load address, so it really is not a PIE */
	assert_true(nm_addr(FIX_NOPIE, "ap_fix_alpha") >= 0x400000);
}

static void test_elf_lookup_shared_lib(void **state)
{
	check_elf_function(FIX_LIB, "ap_fixlib_gamma");
	/* file-local: only in .symtab */
	check_elf_function(FIX_LIB, "ap_fixlib_hidden");
}

static void test_elf_lookup_stripped(void **state)
{
	uint64_t addr, size, hidden = nm_addr(FIX_LIB, "ap_fixlib_hidden");
	char got[128] = "";
	int err;

	/* the copies really lost .symtab */
	assert_int_equal(nm_symbol(FIX_LIB_STRIPPED, "ap_fixlib_gamma", false, &addr, &size),
			 -ENOENT);
	assert_int_equal(nm_symbol(FIX_PIE_STRIPPED, "ap_fix_alpha", false, &addr, &size),
			 -ENOENT);

	/* exported functions still resolve, from .dynsym */
	addr = nm_addr(FIX_LIB, "ap_fixlib_gamma");
	assert_int_equal(ap_elf_lookup(FIX_LIB_STRIPPED, addr + 1, got, sizeof(got), NULL), 0);
	assert_string_equal(got, "ap_fixlib_gamma");
	addr = nm_addr(FIX_PIE, "ap_fix_alpha");
	assert_int_equal(ap_elf_lookup(FIX_PIE_STRIPPED, addr, got, sizeof(got), NULL), 0);
	assert_string_equal(got, "ap_fix_alpha");

	/* a local function is gone, and is not attributed to its neighbour */
	err = ap_elf_lookup(FIX_LIB_STRIPPED, hidden, got, sizeof(got), NULL);
	assert_true(err == -ENOENT || strcmp(got, "ap_fixlib_hidden"));
	assert_int_equal(err, -ENOENT);
}

static uint64_t elf_entry(const char *path)
{
	Elf64_Ehdr eh;
	FILE *f = fopen(path, "rb");

	assert_non_null(f);
	assert_int_equal(fread(&eh, sizeof(eh), 1, f), 1);
	fclose(f);
	assert_true(eh.e_entry != 0);
	return eh.e_entry;
}

/* The entry point is every stack's outermost frame: named even where stripping dropped it. */
static void test_elf_entry_point(void **state)
{
	static const char *const ldso[] = { "/lib64/ld-linux-x86-64.so.2",
					     "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" };
	uint64_t entry = elf_entry(FIX_PIE_STRIPPED), addr, size, start = 0;
	char got[128] = "";

	assert_int_equal(nm_symbol(FIX_PIE_STRIPPED, "_start", false, &addr, &size), -ENOENT);
	assert_int_equal(ap_elf_lookup(FIX_PIE_STRIPPED, entry + 0x20, got, sizeof(got), &start),
			 0);
	assert_string_equal(got, "_start");
	assert_int_equal(start, entry);
	/* the real symbol wins where there is one */
	assert_int_equal(ap_elf_lookup(FIX_PIE, elf_entry(FIX_PIE), got, sizeof(got), NULL), 0);
	assert_string_equal(got, "_start");
	/* and the guess stops at the next symbol */
	addr = nm_addr(FIX_PIE, "ap_fix_alpha");
	assert_int_equal(ap_elf_lookup(FIX_PIE_STRIPPED, addr, got, sizeof(got), NULL), 0);
	assert_string_equal(got, "ap_fix_alpha");
	/* the dynamic loader keeps only .dynsym, without its entry point */
	for (size_t i = 0; i < sizeof(ldso) / sizeof(ldso[0]); i++) {
		if (access(ldso[i], R_OK))
			continue;
		entry = elf_entry(ldso[i]);
		assert_int_equal(ap_elf_lookup(ldso[i], entry + 4, got, sizeof(got), NULL), 0);
		assert_string_equal(got, "_start");
		break;
	}
}

static void test_elf_lookup_errors(void **state)
{
	char got[16];

	assert_int_equal(ap_elf_lookup(DATA "kallsyms.txt", 0x1000, got, sizeof(got), NULL),
			 -ENOEXEC);
	assert_int_equal(ap_elf_lookup(BIN "no-such-file", 0x1000, got, sizeof(got), NULL),
			 -ENOENT);
	assert_int_equal(ap_elf_lookup(FIX_PIE, 0x10, got, sizeof(got), NULL), -ENOENT);
	/* a name longer than the buffer is truncated, not overflowed */
	assert_int_equal(ap_elf_lookup(FIX_PIE, nm_addr(FIX_PIE, "ap_fix_alpha"), got, 5, NULL),
			 0);
	assert_string_equal(got, "ap_f");
}

static void test_elf_size_rules(void **state)
{
	uint64_t sized, nosize, after, size = 99, start;
	char got[64];

	assert_int_equal(nm_symbol(FIX_PIE, "ap_fix_sized", false, &sized, &size), 0);
	assert_int_equal(size, 4);
	assert_int_equal(nm_symbol(FIX_PIE, "ap_fix_nosize", false, &nosize, &size), 0);
	assert_int_equal(size, 0);
	after = nm_addr(FIX_PIE, "ap_fix_after");
	assert_int_equal(after, nosize + 16);

	assert_int_equal(ap_elf_lookup(FIX_PIE, sized + 3, got, sizeof(got), &start), 0);
	assert_string_equal(got, "ap_fix_sized");
	/* one past a sized symbol, in the gap before the next: nobody's */
	assert_int_equal(ap_elf_lookup(FIX_PIE, sized + 4, got, sizeof(got), &start), -ENOENT);
	assert_int_equal(ap_elf_lookup(FIX_PIE, sized + 15, got, sizeof(got), &start), -ENOENT);
	/* no size: up to the next symbol */
	assert_int_equal(ap_elf_lookup(FIX_PIE, nosize + 15, got, sizeof(got), &start), 0);
	assert_string_equal(got, "ap_fix_nosize");
	assert_int_equal(start, nosize);
	assert_int_equal(ap_elf_lookup(FIX_PIE, after, got, sizeof(got), &start), 0);
	assert_string_equal(got, "ap_fix_after");
}

/* ---- live processes ---- */

static void test_live_process(void **state)
{
	struct ctx *c = *state;
	struct child *k = &c->kids[0];
	char bid[160], path[PATH_MAX];
	const struct ap_mapping *m;
	const struct ap_frame *f;
	uint32_t id;

	spawn(FIX_PIE, k);
	assert_int_equal(ap_symbolizer_snapshot_pid(c->s, k->pid), 0);

	f = user(c, k->pid, k->alpha, false, "ap_fix_alpha", "symfix_pie");
	assert_int_equal(f->rel_addr, nm_addr(FIX_PIE, "ap_fix_alpha"));
	m = ap_profile_mapping(c->p, f->mapping);
	assert_non_null(m);
	assert_true(f->mapping != 0 && m->start <= k->alpha && k->alpha < m->limit);
	assert_non_null(realpath(FIX_PIE, path));
	assert_string_equal(ap_profile_str(c->p, m->file), path);
	assert_int_equal(readelf_build_id(FIX_PIE, bid, sizeof(bid)), 0);
	assert_string_equal(ap_profile_str(c->p, m->build_id), bid);

	f = user(c, k->pid, k->gamma, false, "ap_fixlib_gamma", "libapfix.so");
	assert_int_equal(f->rel_addr, nm_addr(FIX_LIB, "ap_fixlib_gamma"));

	/* a return address is looked up one byte earlier */
	user(c, k->pid, k->beta + 1, true, "ap_fix_beta", "symfix_pie");
	f = user(c, k->pid, k->beta, true, NULL, "symfix_pie");
	assert_string_not_equal(ap_profile_str(c->p, f->name), "ap_fix_beta");
	/* frames are interned */
	id = ap_symbolizer_user_frame(c->s, c->p, k->pid, k->alpha, false);
	assert_int_equal(id, ap_symbolizer_user_frame(c->s, c->p, k->pid, k->alpha, false));

	/* non-PIE: the ELF vaddr is the runtime address */
	k = &c->kids[1];
	spawn(FIX_NOPIE, k);
	assert_int_equal(ap_symbolizer_snapshot_pid(c->s, k->pid), 0);
	f = user(c, k->pid, k->beta + 3, false, "ap_fix_beta", "symfix_nopie");
	assert_int_equal(f->rel_addr, k->beta + 3);
	assert_int_equal(k->beta, nm_addr(FIX_NOPIE, "ap_fix_beta"));
	f = user(c, k->pid, k->gamma, false, "ap_fixlib_gamma", "libapfix.so");
	assert_int_equal(f->rel_addr, nm_addr(FIX_LIB, "ap_fixlib_gamma"));

	{
		struct ap_symbolizer_stats st = stats(c);

		assert_int_equal(st.pids_snapshotted, 2);
		/* two fixtures, libapfix, libc (and ld.so) */
		assert_true(st.elf_loaded >= 4);
		assert_int_equal(st.elf_failed, 0);
	}
}

static void test_exited_process_symbolizes(void **state)
{
	struct ctx *c = *state;
	struct child *k = &c->kids[0];
	struct ap_symbolizer_stats st;
	uint64_t beta, gamma;
	int pid;

	spawn(FIX_PIE, k);
	pid = k->pid;
	beta = k->beta;
	gamma = k->gamma;
	assert_int_equal(ap_symbolizer_snapshot_pid(c->s, pid), 0);
	child_stop(k);
	assert_int_equal(kill(pid, 0), -1);

	user(c, pid, beta, false, "ap_fix_beta", "symfix_pie");
	user(c, pid, gamma + 2, true, "ap_fixlib_gamma", "libapfix.so");
	/* outside every mapping: unknown, with a module name */
	user(c, pid, 0x10, false, "[unknown]", "[unknown]");
	/* a failed re-read must not lose the snapshot */
	assert_int_equal(ap_symbolizer_snapshot_pid(c->s, pid), -ESRCH);
	user(c, pid, beta, false, "ap_fix_beta", "symfix_pie");

	/* exit + gc releases it: later frames of the pid are unknown */
	ap_symbolizer_pid_exited(c->s, pid);
	user(c, pid, beta, false, "ap_fix_beta", "symfix_pie");
	ap_symbolizer_gc(c->s);
	user(c, pid, beta, false, "[unknown]", "[unknown]");
	st = stats(c);
	assert_int_equal(st.pids_snapshotted, 1);
	assert_int_equal(st.pids_missed, 1);
	assert_int_equal(st.frames_resolved, 4);
	assert_int_equal(st.frames_unresolved, 2);
}

/* Mappings captured while a process ran still symbolize it after it exited (the process
 * event thread captures them; the symbolizer gets them later). */
static void test_capture_after_exit(void **state)
{
	struct ctx *c = *state;
	struct child *k = &c->kids[0];
	struct ap_maps_capture *cap = NULL;
	uint64_t beta, gamma;
	int pid;

	spawn(FIX_PIE, k);
	pid = k->pid;
	beta = k->beta;
	gamma = k->gamma;
	assert_int_equal(ap_maps_capture(pid, &cap), 0);
	child_stop(k);
	assert_int_equal(kill(pid, 0), -1);
	assert_int_equal(ap_symbolizer_snapshot_pid(c->s, pid), -ESRCH);
	assert_int_equal(ap_symbolizer_snapshot_capture(c->s, pid, cap), 0);
	ap_maps_capture_free(cap);
	user(c, pid, beta, false, "ap_fix_beta", "symfix_pie");
	user(c, pid, gamma + 2, true, "ap_fixlib_gamma", "libapfix.so");
	assert_int_equal(ap_maps_capture(pid, &cap), -ESRCH);
	assert_null(cap);
}

/* A mapping the snapshot lacks, known only by device and inode (what a deferred sample of
 * a process that died right after mapping a library carries): named from the table the
 * cache has for that file. */
static void test_mapping_from_inode(void **state)
{
	struct ctx *c = *state;
	struct child *k = &c->kids[0];
	const uint64_t base = 0x10000000; /* free in the child: PIEs and libraries sit higher */
	uint64_t gamma = nm_addr(FIX_LIB, "ap_fixlib_gamma");
	struct ap_symbolizer_stats st;
	struct stat sb;
	int pid;

	spawn(FIX_PIE, k); /* maps libapfix.so: its table is in the cache now */
	pid = k->pid;
	assert_int_equal(ap_symbolizer_snapshot_pid(c->s, pid), 0);
	assert_int_equal(stat(FIX_LIB, &sb), 0);
	child_stop(k);
	/* nothing there yet; an unknown inode adds nothing */
	user(c, pid, base + gamma, false, "[unknown]", NULL);
	assert_int_equal(ap_symbolizer_add_mapping(c->s, pid, base, base + 0x100000, 0, sb.st_dev,
						   sb.st_ino + 1000000),
			 0);
	assert_int_equal(ap_symbolizer_add_mapping(c->s, pid, base, base + 0x100000, 0, sb.st_dev,
						   sb.st_ino),
			 1);
	user(c, pid, base + gamma + 1, false, "ap_fixlib_gamma", "libapfix.so");
	/* known now: not added twice; an unknown pid gets nothing */
	assert_int_equal(ap_symbolizer_add_mapping(c->s, pid, base, base + 0x100000, 0, sb.st_dev,
						   sb.st_ino),
			 0);
	assert_int_equal(ap_symbolizer_add_mapping(c->s, 999999999, base, base + 0x1000, 0,
						   sb.st_dev, sb.st_ino),
			 0);
	ap_symbolizer_get_stats(c->s, &st);
	assert_int_equal(st.mappings_added, 1);
}

/* After exec the old image's mappings must not name the new image's addresses. */
static void test_exec_forgets_mappings(void **state)
{
	struct ctx *c = *state;
	struct child *k = &c->kids[0];
	uint64_t beta;
	int pid;

	spawn(FIX_PIE, k);
	pid = k->pid;
	beta = k->beta;
	assert_int_equal(ap_symbolizer_snapshot_pid(c->s, pid), 0);
	child_stop(k);
	user(c, pid, beta, false, "ap_fix_beta", "symfix_pie");
	ap_symbolizer_pid_exec(c->s, pid);
	user(c, pid, beta, false, "[unknown]", "[unknown]");
	ap_symbolizer_pid_exec(c->s, 999999999); /* unknown pid: nothing */
}

static void test_on_demand_and_dlopen(void **state)
{
	struct ctx *c = *state;
	struct child *k = &c->kids[0];
	uint64_t delta;

	spawn(FIX_PIE, k);
	/* never snapshotted explicitly: the first frame does it */
	user(c, k->pid, k->alpha, false, "ap_fix_alpha", "symfix_pie");
	assert_int_equal(stats(c).pids_snapshotted, 1);

	assert_int_equal(write(k->in, "dlopen\n", 7), 7);
	delta = read_addr(k, "delta");
	/* mapped after the snapshot, and the snapshot is fresh: no re-read storm */
	user(c, k->pid, delta, false, "[unknown]", "[unknown]");
	assert_int_equal(stats(c).pids_snapshotted, 1);
	/* the next drain may re-read once */
	ap_symbolizer_gc(c->s);
	user(c, k->pid, delta, false, "ap_fixdl_delta", "libapfix_dl.so");
	assert_int_equal(stats(c).pids_snapshotted, 2);
	user(c, k->pid, 0x10, false, "[unknown]", "[unknown]");
	user(c, k->pid, 0x20, false, "[unknown]", "[unknown]");
	assert_int_equal(stats(c).pids_snapshotted, 2);
}

static void copy_file(const char *from, const char *to_template, char *to, size_t len)
{
	char buf[65536];
	ssize_t n;
	int in, out;

	snprintf(to, len, "%s", to_template);
	out = mkostemp(to, O_CLOEXEC);
	assert_true(out >= 0);
	in = open(from, O_RDONLY | O_CLOEXEC);
	assert_true(in >= 0);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		assert_int_equal(write(out, buf, (size_t)n), n);
	assert_int_equal(fchmod(out, 0755), 0);
	close(in);
	/* closed before any fork: exec of a file open for writing fails with ETXTBSY */
	assert_int_equal(close(out), 0);
}

static void test_deleted_binary(void **state)
{
	struct ctx *c = *state;
	struct child *k = &c->kids[0];
	const struct ap_frame *f;
	const char *base;
	int pid;

	copy_file(FIX_PIE, "/tmp/ap-symfix-XXXXXX", c->tmp, sizeof(c->tmp));
	spawn(c->tmp, k);
	assert_int_equal(unlink(c->tmp), 0);
	base = strrchr(c->tmp, '/') + 1;

	assert_int_equal(ap_symbolizer_snapshot_pid(c->s, k->pid), 0);
	f = user(c, k->pid, k->alpha, false, "ap_fix_alpha", base);
	assert_string_equal(ap_profile_str(c->p, ap_profile_mapping(c->p, f->mapping)->file),
			    c->tmp);
	pid = k->pid;
	child_stop(k);
	user(c, pid, c->kids[0].beta, false, "ap_fix_beta", base);
	c->tmp[0] = '\0';
}

static void test_cache_shared_between_processes(void **state)
{
	struct ctx *c = *state;
	uint64_t loaded;

	spawn(FIX_PIE, &c->kids[0]);
	spawn(FIX_PIE, &c->kids[1]);
	assert_int_equal(ap_symbolizer_snapshot_pid(c->s, c->kids[0].pid), 0);
	loaded = stats(c).elf_loaded;
	assert_int_equal(ap_symbolizer_snapshot_pid(c->s, c->kids[1].pid), 0);
	assert_int_equal(ap_symbolizer_snapshot_pid(c->s, c->kids[0].pid), 0);
	assert_int_equal(stats(c).elf_loaded, loaded);
	user(c, c->kids[1].pid, c->kids[1].gamma, false, "ap_fixlib_gamma", "libapfix.so");

	/* released tables stay cached (bounded) for the next run of the same binary */
	for (int i = 0; i < 2; i++) {
		ap_symbolizer_pid_exited(c->s, c->kids[i].pid);
		child_stop(&c->kids[i]);
	}
	ap_symbolizer_gc(c->s);
	spawn(FIX_PIE, &c->kids[2]);
	assert_int_equal(ap_symbolizer_snapshot_pid(c->s, c->kids[2].pid), 0);
	user(c, c->kids[2].pid, c->kids[2].alpha, false, "ap_fix_alpha", "symfix_pie");
	assert_int_equal(stats(c).elf_loaded, loaded);
	assert_int_equal(stats(c).pids_snapshotted, 4);
}

__attribute__((noinline)) static int self_probe(int x)
{
	__asm__ volatile("" : "+r"(x));
	return x + 1;
}

static void test_self_and_vdso(void **state)
{
	struct ctx *c = *state;
	char line[512], dump[] = "/tmp/ap-vdso-XXXXXX";
	unsigned long long start = 0, end = 0;
	uint64_t addr, size;
	const struct ap_frame *f;
	const char *name;
	FILE *maps;
	int fd;

	user(c, getpid(), (uint64_t)(uintptr_t)self_probe + 1, false, "self_probe",
	     "test_symbolizer");

	/* the vDSO's symbols, per nm on a dump of this process's image */
	maps = fopen("/proc/self/maps", "re");
	assert_non_null(maps);
	while (fgets(line, sizeof(line), maps))
		if (strstr(line, "[vdso]"))
			sscanf(line, "%llx-%llx", &start, &end);
	fclose(maps);
	if (!start) {
		/* valgrind, for one, gives its guest no vDSO */
		print_message("SKIP: no [vdso] mapping in this process\n");
		skip();
	}
	fd = mkostemp(dump, O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, (void *)(uintptr_t)start, end - start), (ssize_t)(end - start));
	close(fd);
	assert_int_equal(nm_symbol(dump, "__vdso_clock_gettime", true, &addr, &size), 0);
	unlink(dump);

	f = user(c, getpid(), start + addr + 1, false, NULL, "[vdso]");
	name = ap_profile_str(c->p, f->name);
	assert_true(!strcmp(name, "__vdso_clock_gettime") || !strcmp(name, "clock_gettime"));
}

static void test_unknown_pid(void **state)
{
	struct ctx *c = *state;
	const struct ap_frame *f;
	struct ap_symbolizer_stats st;

	assert_int_equal(ap_symbolizer_snapshot_pid(c->s, NO_SUCH_PID), -ESRCH);
	f = user(c, NO_SUCH_PID, 0x401000, false, "[unknown]", "[unknown]");
	assert_int_equal(f->mapping, 0);
	user(c, NO_SUCH_PID, 0x401001, true, "[unknown]", "[unknown]");
	st = stats(c);
	assert_int_equal(st.pids_missed, 1);
	assert_int_equal(st.pids_snapshotted, 0);
	assert_int_equal(st.frames_unresolved, 2);
	/* gc drops what it could not snapshot */
	ap_symbolizer_gc(c->s);
	assert_int_equal(ap_symbolizer_snapshot_pid(c->s, NO_SUCH_PID), -ESRCH);
	assert_int_equal(stats(c).pids_missed, 2);
}

/* ---- kernel ---- */

static void test_kernel_kallsyms(void **state)
{
	struct ctx *c = *state;
	unsigned long long addr = 0;
	char line[512], name[256], type;
	FILE *f = fopen("/proc/kallsyms", "re");

	if (!f) {
		print_message("SKIP: /proc/kallsyms unreadable\n");
		skip();
	}
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%llx %c %255s", &addr, &type, name) == 3 &&
		    !strcmp(name, "schedule") && (type == 'T' || type == 't'))
			break;
	fclose(f);
	if (!addr || strcmp(name, "schedule")) {
		print_message("SKIP: kallsyms addresses are hidden (kptr_restrict)\n");
		skip();
	}
	kernel(c, addr + 1, false, "schedule", "[kernel.kallsyms]");
	kernel(c, addr + 1, true, "schedule", "[kernel.kallsyms]");
	kernel(c, 0x10, false, "[unknown]", "[kernel.kallsyms]");
}

/* Every text symbol of the running kernel reads back with its exact name and module from
 * the compact (front-coded) table: the first name listed at each address. */
static void test_kernel_every_symbol(void **state)
{
	struct kent {
		unsigned long long addr;
		char name[512];
		char mod[64];
	} *v = NULL;
	size_t n = 0, cap = 0, checked = 0;
	char line[1024];
	struct ap_kallsyms *k;
	FILE *f = fopen("/proc/kallsyms", "re");

	(void)state;
	if (!f) {
		print_message("SKIP: /proc/kallsyms unreadable\n");
		skip();
	}
	while (fgets(line, sizeof(line), f)) {
		struct kent e = { 0 };
		char type;
		int got = sscanf(line, "%llx %c %511s %63s", &e.addr, &type, e.name, e.mod);

		if (got < 3 || !e.addr || !strchr("tTwW", type))
			continue;
		if (n && v[n - 1].addr == e.addr)
			continue; /* an alias listed after the first name */
		if (n == cap) {
			cap = cap ? cap * 2 : 4096;
			v = realloc(v, cap * sizeof(*v));
			assert_non_null(v);
		}
		v[n++] = e;
	}
	fclose(f);
	if (!n) {
		free(v);
		print_message("SKIP: kallsyms addresses are hidden (kptr_restrict)\n");
		skip();
	}
	assert_int_equal(ap_kallsyms_load("/proc/kallsyms", &k), 0);
	for (size_t i = 0; i < n; i++) {
		const char *name, *mod;
		uint64_t start;
		bool dup = false;

		/* an address listed again further down (not next to its first name) */
		for (size_t j = i; j-- > 0 && j + 64 > i;)
			dup |= v[j].addr == v[i].addr;
		if (dup)
			continue;
		assert_int_equal(ap_kallsyms_find(k, v[i].addr, &name, &mod, &start), 0);
		assert_int_equal(start, v[i].addr);
		if (strcmp(name, v[i].name))
			fail_msg("%llx: %s, want %s", v[i].addr, name, v[i].name);
		assert_string_equal(mod, v[i].mod[0] ? v[i].mod : "[kernel.kallsyms]");
		checked++;
	}
	assert_true(checked * 10 >= n * 9);
	ap_kallsyms_free(k);
	free(v);
}

/* A kallsyms line longer than AP_SYM_MAX_KALLSYMS_LINE (a file without newlines would have
 * grown one getline() buffer to its size) is skipped and counted; the lines around it load. */
static void test_kernel_long_line(void **state)
{
	char path[] = "/tmp/ap-kallsyms-XXXXXX";
	int fd = mkstemp(path);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	uint64_t before = ap_sym_limit_hits(AP_SYM_LIMIT_KALLSYMS_LINE);
	struct ap_kallsyms *k;
	const char *name;

	(void)state;
	assert_non_null(f);
	fprintf(f, "ffffffff81000000 T first\nffffffff81000100 T ");
	for (int i = 0; i < 3 * AP_SYM_MAX_KALLSYMS_LINE; i++)
		fputc('x', f);
	fprintf(f, "\nffffffff81000200 T last\n");
	fclose(f);
	assert_int_equal(ap_kallsyms_load(path, &k), 0);
	unlink(path);
	assert_int_equal(ap_kallsyms_count(k), 2);
	assert_int_equal(ap_sym_limit_hits(AP_SYM_LIMIT_KALLSYMS_LINE), before + 1);
	assert_int_equal(ap_kallsyms_find(k, 0xffffffff81000210, &name, NULL, NULL), 0);
	assert_string_equal(name, "last");
	assert_int_equal(ap_kallsyms_find(k, 0xffffffff81000110, &name, NULL, NULL), 0);
	assert_string_equal(name, "first"); /* the long line's symbol is not there */
	ap_kallsyms_free(k);
}

static void test_kernel_fixture(void **state)
{
	struct ctx *c = *state;
	struct ap_kallsyms *k;

	assert_int_equal(ap_kallsyms_load(DATA "kallsyms.txt", &k), 0);
	/* text symbols only, one per address */
	assert_int_equal(ap_kallsyms_count(k), 7);
	ap_kallsyms_free(k);

	assert_int_equal(ap_symbolizer_set_kallsyms_path(c->s, DATA "kallsyms.txt"), 0);
	kernel(c, 0xffffffff81000100, false, "fake_func_a", "[kernel.kallsyms]");
	kernel(c, 0xffffffff81000250, false, "fake_func_b", "[kernel.kallsyms]");
	/* data symbols do not end a function */
	kernel(c, 0xffffffff81000350, false, "fake_func_b", "[kernel.kallsyms]");
	kernel(c, 0xffffffff81000401, true, "fake_weak", "[kernel.kallsyms]");
	kernel(c, 0xffffffff81000400, true, "fake_func_b", "[kernel.kallsyms]");
	kernel(c, 0xffffffffc0001050, false, "ext4_fake", "[ext4]");
	kernel(c, 0xffffffffc0001100, false, "ext4_fake2", "[ext4]");
	kernel(c, 0xffffffffc0002010, false, "xfs_fake", "[xfs]");
	/* far past the last symbol, or before the first */
	kernel(c, 0xffffffffc0102000, false, "[unknown]", "[kernel.kallsyms]");
	kernel(c, 0xffffffff80000000, false, "[unknown]", "[kernel.kallsyms]");

	/* kptr_restrict: every address reads as zero */
	assert_int_equal(ap_kallsyms_load(DATA "kallsyms_zero.txt", &k), 0);
	assert_int_equal(ap_kallsyms_count(k), 0);
	ap_kallsyms_free(k);
	assert_int_equal(ap_symbolizer_set_kallsyms_path(c->s, DATA "kallsyms_zero.txt"), 0);
	kernel(c, 0xffffffff81000100, false, "[unknown]", "[kernel.kallsyms]");
	assert_int_equal(ap_symbolizer_set_kallsyms_path(c->s, BIN "no-such-file"), 0);
	kernel(c, 0xffffffff81000100, false, "[unknown]", "[kernel.kallsyms]");
}

/* ---- /proc/PID/maps lines ---- */

static void test_maps_parse_line(void **state)
{
	struct ap_maps_entry e;
	char l1[] = "55d4c8a00000-55d4c8a02000 r-xp 00001000 fd:01 1234567          "
		    "          /usr/bin/cat\n";
	char l2[] = "7ffd1c9e2000-7ffd1c9e4000 r-xp 00000000 00:00 0                 "
		    "         [vdso]\n";
	char l3[] = "7f0000000000-7f0000001000 rwxp 00000000 00:00 0 \n";
	char l4[] = "7f0000000000-7f0000001000 r-xp 00000000 00:00 0\n";
	char l5[] = "1000-2000 r-xp 00002000 08:11 42 /tmp/my prog (deleted)\n";
	char bad1[] = "zzzz-1000 r-xp 00000000 00:00 0\n";
	char bad2[] = "2000-1000 r-xp 00000000 00:00 0\n";
	char bad3[] = "1000-2000 r-xp\n";
	char bad4[] = "";

	assert_int_equal(ap_maps_parse_line(l1, &e), 0);
	assert_int_equal(e.start, 0x55d4c8a00000);
	assert_int_equal(e.end, 0x55d4c8a02000);
	assert_int_equal(e.offset, 0x1000);
	assert_int_equal(e.dev_major, 0xfd);
	assert_int_equal(e.dev_minor, 1);
	assert_int_equal(e.inode, 1234567);
	assert_string_equal(e.perms, "r-xp");
	assert_string_equal(e.path, "/usr/bin/cat");
	assert_false(e.deleted);
	assert_int_equal(ap_maps_parse_line(l2, &e), 0);
	assert_string_equal(e.path, "[vdso]");
	assert_int_equal(ap_maps_parse_line(l3, &e), 0);
	assert_string_equal(e.path, "");
	assert_string_equal(e.perms, "rwxp");
	assert_int_equal(ap_maps_parse_line(l4, &e), 0);
	assert_string_equal(e.path, "");
	assert_int_equal(ap_maps_parse_line(l5, &e), 0);
	assert_string_equal(e.path, "/tmp/my prog");
	assert_true(e.deleted);
	assert_int_equal(e.dev_minor, 0x11);
	assert_int_equal(ap_maps_parse_line(bad1, &e), -EINVAL);
	assert_int_equal(ap_maps_parse_line(bad2, &e), -EINVAL);
	assert_int_equal(ap_maps_parse_line(bad3, &e), -EINVAL);
	assert_int_equal(ap_maps_parse_line(bad4, &e), -EINVAL);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_elf_lookup_pie),
		cmocka_unit_test(test_elf_lookup_nopie),
		cmocka_unit_test(test_elf_lookup_shared_lib),
		cmocka_unit_test(test_elf_lookup_stripped),
		cmocka_unit_test(test_elf_lookup_errors),
		cmocka_unit_test(test_elf_entry_point),
		cmocka_unit_test(test_elf_size_rules),
		cmocka_unit_test(test_maps_parse_line),
		T(test_live_process),
		T(test_exited_process_symbolizes),
		T(test_capture_after_exit),
		T(test_mapping_from_inode),
		T(test_exec_forgets_mappings),
		T(test_on_demand_and_dlopen),
		T(test_deleted_binary),
		T(test_cache_shared_between_processes),
		T(test_self_and_vdso),
		T(test_unknown_pid),
		T(test_kernel_kallsyms),
		T(test_kernel_fixture),
		cmocka_unit_test(test_kernel_long_line),
		cmocka_unit_test(test_kernel_every_symbol),
	};

	/* children of a failed test must never block a pipe write of ours */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
