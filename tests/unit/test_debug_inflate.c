// SPDX-License-Identifier: MIT
/*
 * Uncompressed copies of compressed debug files (src/symbol/debug_inflate.c): the DWARF read
 * through a zlib- or zstd-compressed file and its cached copy answers exactly what the
 * uncompressed original does; copies are reused, kept under their size cap, and damaged
 * input fails cleanly without leaving files behind.
 *
 * Fixtures are made here from the DWARF test fixture (dwfix.debug) with objcopy.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "symbol/symbol_internal.h"

#define FIX_DIR AP_TEST_BIN_DIR "/dwarf"
#define MAX_ADDRS 20000

static char tmpdir[64];
static char cache_dir[128];

static void sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	assert_int_equal(system(cmd), 0);
}

static int setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/ap-inflate-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(cache_dir, sizeof(cache_dir), "%s/cache", tmpdir);
	mkdir(cache_dir, 0700);
	sh("objcopy --compress-debug-sections=zlib %s/dwfix.debug %s/zlib.debug", FIX_DIR,
	   tmpdir);
	sh("objcopy --compress-debug-sections=zstd %s/dwfix.debug %s/zstd.debug", FIX_DIR,
	   tmpdir);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	return system(cmd) ? -1 : 0;
}

static size_t count_files(const char *dir, const char *suffix)
{
	struct dirent *de;
	size_t n = 0;
	DIR *d = opendir(dir);

	assert_non_null(d);
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (!suffix || (len > strlen(suffix) && !strcmp(de->d_name + len - strlen(suffix),
								 suffix)))
			n++;
	}
	closedir(d);
	return n;
}

static bool any_compressed(const char *path)
{
	int fd = open(path, O_RDONLY);
	Elf *elf = elf_begin(fd, ELF_C_READ, NULL);
	Elf_Scn *scn = NULL;
	bool any = false;

	assert_non_null(elf);
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr s;

		if (gelf_getshdr(scn, &s) && (s.sh_flags & SHF_COMPRESSED))
			any = true;
	}
	elf_end(elf);
	close(fd);
	return any;
}

/* Every byte of every function of the fixture binary. */
static size_t fixture_addrs(uint64_t *addrs)
{
	int fd = open(FIX_DIR "/dwfix", O_RDONLY);
	Elf *elf = elf_begin(fd, ELF_C_READ, NULL);
	Elf_Scn *scn = NULL;
	size_t n = 0;

	assert_non_null(elf);
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr s;
		Elf_Data *d;

		if (!gelf_getshdr(scn, &s) || s.sh_type != SHT_SYMTAB)
			continue;
		d = elf_getdata(scn, NULL);
		for (size_t i = 0; d && i < s.sh_size / s.sh_entsize; i++) {
			GElf_Sym sym;

			if (!gelf_getsym(d, (int)i, &sym) || GELF_ST_TYPE(sym.st_info) != STT_FUNC ||
			    !sym.st_value || !sym.st_size)
				continue;
			for (uint64_t a = sym.st_value; a < sym.st_value + sym.st_size; a++)
				if (n < MAX_ADDRS)
					addrs[n++] = a;
		}
	}
	elf_end(elf);
	close(fd);
	return n;
}

static uint64_t section_offset(int fd, const char *want)
{
	Elf *elf = elf_begin(fd, ELF_C_READ, NULL);
	Elf_Scn *scn = NULL;
	uint64_t off = 0;
	size_t shstrndx;

	assert_non_null(elf);
	assert_int_equal(elf_getshdrstrndx(elf, &shstrndx), 0);
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr s;

		if (gelf_getshdr(scn, &s) && !strcmp(elf_strptr(elf, shstrndx, s.sh_name), want))
			off = s.sh_offset;
	}
	elf_end(elf);
	assert_true(off > 0);
	return off;
}

static bool same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

/* The inline chains of `path` (opened with `cache`) equal the uncompressed original's. */
static void assert_same_chains(const char *path, const struct ap_dwarf_cache *cache,
			       int want_state)
{
	static uint64_t addrs[MAX_ADDRS];
	struct ap_src_frame a[AP_MAX_INLINE], b[AP_MAX_INLINE];
	bool oa[AP_MAX_INLINE] = { false }, ob[AP_MAX_INLINE] = { false };
	struct ap_dwarf *ref, *dw;
	size_t n = fixture_addrs(addrs), answered = 0;

	assert_true(n > 300);
	assert_int_equal(ap_dwarf_open(-1, FIX_DIR "/dwfix.debug", NULL, NULL, &ref), 0);
	assert_int_equal(ap_dwarf_open(-1, path, NULL, cache, &dw), 0);
	assert_int_equal(ap_dwarf_inflate_state(dw), want_state);
	for (size_t i = 0; i < n; i++) {
		size_t ka = ap_dwarf_chain(ref, addrs[i], a, oa, AP_MAX_INLINE);
		size_t kb = ap_dwarf_chain(dw, addrs[i], b, ob, AP_MAX_INLINE);

		assert_int_equal(ka, kb);
		for (size_t k = 0; k < ka; k++) {
			assert_true(same_str(a[k].name, b[k].name));
			assert_true(same_str(a[k].file, b[k].file));
			assert_int_equal(a[k].line, b[k].line);
		}
		answered += ka > 0;
		ap_dwarf_chain_free(a, oa, ka);
		ap_dwarf_chain_free(b, ob, kb);
	}
	/* the comparison is only worth something if most addresses have source lines */
	assert_true(answered * 10 >= n * 9);
	ap_dwarf_close(ref);
	ap_dwarf_close(dw);
}

static void test_zlib_copy_answers_like_original(void **state)
{
	struct ap_dwarf_cache cache = { .dir = cache_dir, .cap_bytes = 1ull << 30 };
	char dirty[256];

	(void)state;
	assert_true(any_compressed(FIX_DIR "/dwfix.debug") == false);
	snprintf(dirty, sizeof(dirty), "%s/zlib.debug", tmpdir);
	assert_true(any_compressed(dirty));
	assert_same_chains(dirty, &cache, AP_DWARF_INFLATE_USED);
	assert_int_equal(count_files(cache_dir, ".debug"), 1);
	/* without a cache libdw inflates it in memory: same answers, nothing written */
	assert_same_chains(dirty, NULL, AP_DWARF_INFLATE_NONE);
}

static void test_zstd_readable_only_through_copy(void **state)
{
	struct ap_dwarf_cache cache = { .dir = cache_dir, .cap_bytes = 1ull << 30 };
	char path[256];

	(void)state;
	snprintf(path, sizeof(path), "%s/zstd.debug", tmpdir);
	assert_true(any_compressed(path));
	assert_same_chains(path, &cache, AP_DWARF_INFLATE_USED);
}

static void test_copy_is_reused(void **state)
{
	char src[256], out[512], out2[512];
	struct stat st1, st2;
	int fd;

	(void)state;
	snprintf(src, sizeof(src), "%s/zlib.debug", tmpdir);
	fd = open(src, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(
		ap_debug_inflate(fd, "00aa11", cache_dir, 1ull << 30, out, sizeof(out), NULL), 0);
	assert_false(any_compressed(out));
	assert_int_equal(stat(out, &st1), 0);
	assert_int_equal(
		ap_debug_inflate(fd, "00aa11", cache_dir, 1ull << 30, out2, sizeof(out2), NULL), 0);
	assert_string_equal(out, out2);
	assert_int_equal(stat(out2, &st2), 0);
	assert_int_equal(st1.st_ino, st2.st_ino); /* not rewritten */
	/* an uncompressed file needs no copy */
	close(fd);
	fd = open(FIX_DIR "/dwfix.debug", O_RDONLY);
	assert_int_equal(
		ap_debug_inflate(fd, "00aa22", cache_dir, 1ull << 30, out, sizeof(out), NULL),
		-ENODATA);
	/* names come from build-ids only: nothing else may pick the path */
	assert_int_equal(ap_debug_inflate(fd, "../../etc/x", cache_dir, 1ull << 30, out,
					  sizeof(out), NULL),
			 -EINVAL);
	close(fd);
}

/* Entries planted under our names (a symlink, another user's file, a FIFO) are never read
 * (the FIFO would block): each is counted and replaced by our own copy. */
static void test_planted_entries_not_read(void **state)
{
	static const char *const ids[] = { "00cc11", "00cc22", "00cc33" };
	char src[256], decoy[256], path[512], out[512];
	uint64_t untrusted = 0;
	struct stat st, dst;
	int fd, dfd;

	(void)state;
	snprintf(src, sizeof(src), "%s/zlib.debug", tmpdir);
	snprintf(decoy, sizeof(decoy), "%s/decoy", tmpdir);
	dfd = open(decoy, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(dfd >= 0);
	assert_int_equal(write(dfd, "DECOY", 5), 5);
	close(dfd);
	snprintf(path, sizeof(path), "%s/%s.debug", cache_dir, ids[0]);
	assert_int_equal(symlink(decoy, path), 0);
	snprintf(path, sizeof(path), "%s/%s.debug", cache_dir, ids[1]);
	dfd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(dfd >= 0);
	assert_int_equal(fchown(dfd, 65534, 65534), 0);
	close(dfd);
	snprintf(path, sizeof(path), "%s/%s.debug", cache_dir, ids[2]);
	assert_int_equal(mkfifo(path, 0600), 0);

	fd = open(src, O_RDONLY);
	assert_true(fd >= 0);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(ap_debug_inflate(fd, ids[i], cache_dir, 1ull << 30, out,
						  sizeof(out), &untrusted),
				 0);
		assert_int_equal(untrusted, i + 1);
		assert_int_equal(lstat(out, &st), 0);
		assert_true(S_ISREG(st.st_mode));
		assert_int_equal(st.st_uid, geteuid());
		assert_false(any_compressed(out));
	}
	close(fd);
	/* the symlink was replaced, not written through */
	assert_int_equal(stat(decoy, &dst), 0);
	assert_int_equal(dst.st_size, 5);
}

static void test_cap_drops_oldest(void **state)
{
	char src[256], dir[256], out[512], path[600];
	struct stat st;
	struct timespec old[2] = { { .tv_sec = 1000000 }, { .tv_sec = 1000000 } };
	int fd;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/capped", tmpdir);
	mkdir(dir, 0700);
	snprintf(src, sizeof(src), "%s/zlib.debug", tmpdir);
	fd = open(src, O_RDONLY);
	assert_int_equal(ap_debug_inflate(fd, "0001", dir, 1ull << 30, out, sizeof(out), NULL), 0);
	assert_int_equal(stat(out, &st), 0);
	utimensat(AT_FDCWD, out, old, 0); /* the oldest */
	assert_int_equal(ap_debug_inflate(fd, "0002", dir, 1ull << 30, out, sizeof(out), NULL), 0);
	/* room for two copies, not three: the oldest goes, the new one stays */
	assert_int_equal(ap_debug_inflate(fd, "0003", dir, 2 * (uint64_t)st.st_size + 1, out,
					  sizeof(out), NULL),
			 0);
	close(fd);
	snprintf(path, sizeof(path), "%s/0001.debug", dir);
	assert_int_equal(access(path, F_OK), -1);
	snprintf(path, sizeof(path), "%s/0002.debug", dir);
	assert_int_equal(access(path, F_OK), 0);
	snprintf(path, sizeof(path), "%s/0003.debug", dir);
	assert_int_equal(access(path, F_OK), 0);
}

/* Damaged compressed data: an error, no copy, no temporary file left behind, and the DWARF
 * handle falls back to libdw (which refuses it too) without crashing. */
static void test_corrupt_input_fails_cleanly(void **state)
{
	struct ap_dwarf_cache cache = { .dir = NULL, .cap_bytes = 1ull << 30 };
	char src[256], bad[256], dir[256], out[512];
	struct ap_dwarf *dw = NULL;
	struct stat st;
	int fd, err;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/bad", tmpdir);
	mkdir(dir, 0700);
	cache.dir = dir;
	snprintf(src, sizeof(src), "%s/zlib.debug", tmpdir);
	snprintf(bad, sizeof(bad), "%s/corrupt.debug", tmpdir);
	/* overwrite the middle of the compressed .debug_info stream with garbage */
	sh("cp %s %s", src, bad);
	fd = open(bad, O_RDWR);
	assert_int_equal(pwrite(fd, "garbage-garbage-garbage-garbage!", 32,
				(off_t)section_offset(fd, ".debug_info") + 40),
			 32);
	err = ap_debug_inflate(fd, "00bad0", dir, 1ull << 30, out, sizeof(out), NULL);
	assert_int_equal(err, -EBADMSG);
	close(fd);
	assert_int_equal(count_files(dir, NULL), 0);
	/* opening it for DWARF: falls back, and either fails cleanly or answers */
	err = ap_dwarf_open(-1, bad, NULL, &cache, &dw);
	if (!err) {
		assert_int_equal(ap_dwarf_inflate_state(dw), AP_DWARF_INFLATE_FAILED);
		ap_dwarf_close(dw);
	}
	assert_int_equal(count_files(dir, NULL), 0);

	/* a compression bomb: a section claiming 1 GiB from a file of a few KiB */
	snprintf(bad, sizeof(bad), "%s/bomb.debug", tmpdir);
	sh("cp %s %s", src, bad);
	fd = open(bad, O_RDWR);
	{
		uint64_t huge = 1ull << 30;

		assert_int_equal(pwrite(fd, &huge, sizeof(huge),
					(off_t)section_offset(fd, ".debug_info") + 8),
				 (ssize_t)sizeof(huge));
	}
	assert_int_equal(ap_debug_inflate(fd, "00bad2", dir, 1ull << 30, out, sizeof(out), NULL),
			 -EFBIG);
	close(fd);
	assert_int_equal(count_files(dir, NULL), 0);

	/* an alignment of 2^40 (found by fuzz_debug_inflate,
	 * tests/fuzz/regressions/debug_inflate/huge_alignment_sparse_copy): the copy was a
	 * sparse file of 96 GiB; now such a file is not copied (libdw reads it as it is) */
	snprintf(bad, sizeof(bad), "%s/align.debug", tmpdir);
	sh("cp %s %s", src, bad);
	fd = open(bad, O_RDWR);
	{
		uint64_t align = 1ull << 40;

		assert_int_equal(pwrite(fd, &align, sizeof(align),
					(off_t)section_offset(fd, ".debug_info") + 16),
				 (ssize_t)sizeof(align));
	}
	assert_int_equal(ap_debug_inflate(fd, "00bad3", dir, 1ull << 30, out, sizeof(out), NULL),
			 -ENOTSUP);
	close(fd);
	assert_int_equal(count_files(dir, NULL), 0);

	/* a truncated file */
	snprintf(bad, sizeof(bad), "%s/short.debug", tmpdir);
	assert_int_equal(stat(src, &st), 0);
	sh("head -c %lld %s > %s", (long long)st.st_size / 2, src, bad);
	fd = open(bad, O_RDONLY);
	err = ap_debug_inflate(fd, "00bad1", dir, 1ull << 30, out, sizeof(out), NULL);
	assert_true(err < 0);
	close(fd);
	assert_int_equal(count_files(dir, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_zlib_copy_answers_like_original),
		cmocka_unit_test(test_zstd_readable_only_through_copy),
		cmocka_unit_test(test_copy_is_reused),
		cmocka_unit_test(test_planted_entries_not_read),
		cmocka_unit_test(test_cap_drops_oldest),
		cmocka_unit_test(test_corrupt_input_fails_cleanly),
	};

	elf_version(EV_CURRENT);
	return cmocka_run_group_tests(tests, setup, teardown);
}
