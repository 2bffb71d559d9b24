/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the uncompressed copy of a debug file (debug_inflate.c): ELF and section
 * headers, zlib/zstd section inflation under the ratio and size caps, the new layout. The
 * copy goes to a directory on /dev/shm (tmpfs) and is removed after each input.
 */
#define _GNU_SOURCE /* memfd_create */
#include <string.h>
#include <sys/stat.h>

#include "fuzz_file_util.h"
#include "symbol/symbol_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char dir[64];
	char out[256];
	int fd = fuzz_memfd(data, size);
	struct stat st;

	if (!dir[0]) {
		snprintf(dir, sizeof(dir), "/dev/shm/ap-fuzz-%d-inflate", (int)getpid());
		mkdir(dir, 0700);
	}
	if (ap_debug_inflate(fd, "0123456789abcdef", dir, 64ull << 20, out, sizeof(out), NULL) == 0) {
		/* the caps: inflated sections up to 32x the input (+ 1 MiB), copied ones up to
		 * the input, alignment padding under 4 KiB per section header */
		if (stat(out, &st) || (uint64_t)st.st_size > 34ull * size + (2u << 20))
			abort();
		unlink(out);
	}
	return 0;
}
