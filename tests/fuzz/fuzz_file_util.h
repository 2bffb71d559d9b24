/* SPDX-License-Identifier: MIT */
/* Helpers shared by the fuzz targets whose parser takes a file: the input goes into one
 * memfd (memory, no disk write), or a file on /dev/shm (tmpfs) for the parsers that open a
 * path themselves with O_NOFOLLOW (which /proc/self/fd/N, a symlink, would fail). */
#ifndef AP_FUZZ_FILE_UTIL_H
#define AP_FUZZ_FILE_UTIL_H

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* The memfd holding this input (reused across inputs), or abort. */
static inline int fuzz_memfd(const uint8_t *data, size_t size)
{
	static int fd = -1;

	if (fd < 0)
		fd = memfd_create("ap-fuzz", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, 0) || (size && pwrite(fd, data, size, 0) != (ssize_t)size))
		abort();
	return fd;
}

/* A tmpfs file holding this input; its path is returned (static). */
static inline const char *fuzz_shm_file(const char *tag, const uint8_t *data, size_t size)
{
	static char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "/dev/shm/ap-fuzz-%d-%s", (int)getpid(), tag);
	f = fopen(path, "we");
	if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f))
		abort();
	return path;
}

#endif
