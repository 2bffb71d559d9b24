/* SPDX-License-Identifier: MIT */
/*
 * The CUDA API functions the GPU mode probes, how each one's raw capture (src/bpf/gpu.h) is
 * decoded into a struct ap_gpu_call, and which files hold them.
 *
 *  - The table (fns.c): one row per probed function: its name as the ELF symbol has it, its
 *    probe group (--gpu-probes), the call kind, and where its fields are (argument registers,
 *    stack arguments, the words read behind out pointers at return).
 *  - Decoding (fns.c): pure, unit-tested.
 *  - ELF scan (elf_scan.c): the table's functions a file defines (global or LOCAL .symtab
 *    symbols: a static cudart keeps its functions local) with their file offsets, whether
 *    it carries CUDA device code (.nv_fatbin / .nvFatBinSegment, which survive strip) and
 *    whether it imports a shared cudart; from that, what discovery does with it.
 */
#ifndef AP_GPU_PROBES_H
#define AP_GPU_PROBES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/types.h>

#include "bpf/gpu.h"
#include "gpu_model.h"

/* Probe groups (--gpu-probes). Registration and the other timed API calls go with launch. */
#define AP_GPU_GROUP_LAUNCH 0x1u
#define AP_GPU_GROUP_MEMORY 0x2u
#define AP_GPU_GROUP_COPY 0x4u
#define AP_GPU_GROUP_SYNC 0x8u
#define AP_GPU_GROUP_ALL 0xfu

/* Parse "launch,memory,copy,sync" (any subset, or "all") into *groups. 0 or -EINVAL with
 * the offending word in err. */
int ap_gpu_groups_parse(const char *s, unsigned int *groups, char *err, size_t errlen);

struct ap_gpu_fn {
	const char *name;
	uint8_t kind;	  /* enum ap_gpu_call_kind */
	uint8_t cls;	  /* enum ap_gpu_class (the BPF nesting rule) */
	uint8_t group;	  /* AP_GPU_GROUP_* */
	uint8_t layout;	  /* how the fields are found (fns.c) */
	uint8_t flags;	  /* AP_GPU_F_* */
	uint8_t mem_kind; /* enum ap_gpu_mem_kind (ALLOC) */
	int8_t bytes;	  /* argument index of the size (0-5 registers, 6-10 stack), -1 */
	int8_t stream;	  /* argument index of the stream, -1 */
	int8_t dir;	  /* argument index of a cudaMemcpyKind, -1 */
	uint8_t fixed_dir; /* enum ap_gpu_copy_dir when dir < 0 */
};

/* The table: ap_gpu_fns[0 .. ap_gpu_nfns-1]; an index is a cookie's function number. */
extern const struct ap_gpu_fn ap_gpu_fns[];
extern const size_t ap_gpu_nfns;

/* The index of the function named `name` (an ELF symbol name; a "@VERSION" suffix is
 * ignored), or -1. */
int ap_gpu_fn_find(const char *name, size_t len);

/* The BPF cookie of function `idx` (flags, class, index). */
uint64_t ap_gpu_fn_cookie(size_t idx);

/*
 * A raw call record (header of a gpu_events record) into *c. Pointers in *c point into the
 * table (api). REGISTER_FUNCTION: *name_addr gets the address of the device name in the
 * process (read by the agent, kernel_names.c), else 0. Returns 0, or -EINVAL for a record
 * that is not a call of a known function.
 */
int ap_gpu_decode(const struct ap_gpu_event *e, struct ap_gpu_call *c, uint64_t *name_addr);

/* --- ELF scan (elf_scan.c) ----------------------------------------------------------- */

enum ap_gpu_file_class {
	AP_GPU_FILE_NONE = 0,	     /* nothing CUDA in it */
	AP_GPU_FILE_PROBE = 1,	     /* defines probed functions: attach to it */
	AP_GPU_FILE_USES_SHARED = 2, /* CUDA code that imports a shared cudart/driver: covered
				      * by probing that library */
	AP_GPU_FILE_UNPROBEABLE = 3, /* CUDA device code, no probed function by name, no
				      * imports: a stripped static cudart (reason set) */
};

struct ap_gpu_site {
	uint32_t fn;	 /* table index */
	uint64_t offset; /* file offset of the function's first instruction */
};

struct ap_gpu_scan {
	enum ap_gpu_file_class cls;
	bool has_symtab;
	bool has_fatbin;    /* .nv_fatbin or .nvFatBinSegment */
	bool imports_cuda;  /* undefined CUDA runtime/driver function symbols */
	bool driver;	    /* defines driver functions (libcuda.so.1 or a stand-in) */
	bool loader;	    /* defines _dl_debug_state: the dynamic loader (ld.so) */
	uint64_t loader_off; /* ... at this file offset */
	uint32_t duplicates; /* a function defined more than once (the first one is probed) */
	uint32_t folded;     /* launch entry points that only tail-jump into another probed
			      * one (__cudaLaunchKernel -> cudaLaunchKernel): not probed */
	struct ap_gpu_site *sites; /* malloc'd */
	size_t nsites;
	char reason[256]; /* UNPROBEABLE: why */
};

/* Scan an ELF file (fd: open for reading, size bytes at most read by libelf). Returns 0
 * (a non-ELF file is AP_GPU_FILE_NONE) or -errno. Free with ap_gpu_scan_free(). */
int ap_gpu_scan_fd(int fd, struct ap_gpu_scan *out);
void ap_gpu_scan_free(struct ap_gpu_scan *s);

/* The function symbol of an ELF file that contains the byte at file offset `file_off` (a
 * process address minus its mapping's start plus the mapping's offset), as a malloc'd name;
 * NULL (errno ENOENT) when none. For naming kernel host stubs of processes that registered
 * before the agent came. */
char *ap_gpu_elf_symbol_at(int fd, uint64_t file_off);

/* A kernel host stub's symbol as the device name reads: a local stub symbol carries an
 * internal-linkage `L` before its unqualified name (`_ZN11aperture_nsL5scaleIfEEvPT_S1_i`
 * for the device's `_ZN11aperture_ns5scaleIfEEvPT_S1_i`), which is dropped here, in place.
 * Both demangle to the same text. */
void ap_gpu_stub_to_device_name(char *mangled);

#endif
