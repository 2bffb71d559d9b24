// SPDX-License-Identifier: MIT
/*
 * Kernel names read from a process (kernel_names.h).
 *
 * At __cudaRegisterFunction the device name is usually in a .rodata page that is not faulted
 * in yet, which bpf_probe_read_user_str cannot fault (measured: empty strings). The agent
 * reads it from /proc/PID/mem instead, which does fault the page in, a moment later. When the
 * process is gone (or registered before the agent came), the host stub's ELF symbol names
 * the kernel: the mapping that holds the stub gives the file and the offset.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernel_names.h"
#include "probes.h"
#include "lib/proc_maps.h"
#include "lib/safe_open.h"

#define MAX_ELF_BYTES (4ULL << 30)

/* A mangled name is printable ASCII without spaces; anything else is not a name. */
static bool plausible_name(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isgraph((unsigned char)s[i]))
			return false;
	return true;
}

int ap_gpu_read_proc_string(int pid, uint64_t addr, char *buf, size_t len)
{
	char path[48];
	ssize_t n;
	char *nul;
	int fd;

	if (!addr || len < 2)
		return -EINVAL;
	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* a page at a time: a read that crosses into an unmapped page fails as a whole */
	n = pread(fd, buf, len - 1, (off_t)addr);
	if (n < 0 && errno == EIO) {
		size_t to_page = 4096 - (addr & 4095);

		n = pread(fd, buf, to_page < len - 1 ? to_page : len - 1, (off_t)addr);
	}
	close(fd);
	if (n <= 0)
		return n < 0 ? -errno : -ENOENT;
	buf[n] = '\0';
	nul = memchr(buf, '\0', (size_t)n + 1);
	if (!plausible_name(buf, (size_t)(nul - buf)))
		return -EINVAL;
	if ((size_t)(nul - buf) == len - 1 && (size_t)n == len - 1)
		return -ENAMETOOLONG;
	return 0;
}

struct find_ctx {
	uint64_t addr;
	uint64_t start, end, offset;
	bool found;
};

static int find_mapping(const struct ap_maps_entry *e, void *arg)
{
	struct find_ctx *fc = arg;

	if (fc->addr < e->start || fc->addr >= e->end || !e->path[0] || e->path[0] != '/')
		return 0;
	fc->start = e->start;
	fc->end = e->end;
	fc->offset = e->offset;
	fc->found = true;
	return 1;
}

char *ap_gpu_stub_symbol(int pid, uint64_t addr)
{
	struct find_ctx fc = { .addr = addr };
	char mf[96];
	char *name;
	int fd, err;

	err = ap_maps_read(pid, find_mapping, &fc);
	if (err < 0 || !fc.found) {
		errno = err < 0 ? -err : ENOENT;
		return NULL;
	}
	snprintf(mf, sizeof(mf), "/proc/%d/map_files/%llx-%llx", pid,
		 (unsigned long long)fc.start, (unsigned long long)fc.end);
	fd = ap_open_untrusted(AT_FDCWD, mf, AP_OPEN_MAGIC, MAX_ELF_BYTES, NULL);
	if (fd < 0) {
		errno = -fd;
		return NULL;
	}
	name = ap_gpu_elf_symbol_at(fd, addr - fc.start + fc.offset);
	close(fd);
	if (name)
		ap_gpu_stub_to_device_name(name);
	return name;
}
