/* SPDX-License-Identifier: MIT */
/* Kernel names read from a live process (kernel_names.c). */
#ifndef AP_GPU_KERNEL_NAMES_H
#define AP_GPU_KERNEL_NAMES_H

#include <stddef.h>
#include <stdint.h>

/* The NUL-terminated string at addr in process pid (through /proc/PID/mem, which faults the
 * page in), into buf (len bytes). Returns 0, -ENAMETOOLONG (cut), -EINVAL (not a printable
 * name) or -errno (gone, unmapped). */
int ap_gpu_read_proc_string(int pid, uint64_t addr, char *buf, size_t len);

/* The device name of the kernel whose host stub is at addr in process pid: the stub's ELF
 * symbol, its internal-linkage marker dropped (ap_gpu_stub_to_device_name). malloc'd; NULL
 * with errno set when the address is in no file mapping or has no symbol. */
char *ap_gpu_stub_symbol(int pid, uint64_t addr);

#endif
