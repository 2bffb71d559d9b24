/* SPDX-License-Identifier: MIT */
/*
 * Syscall and errno names of the architecture Aperture was built for. The tables are
 * generated at build time from the target's kernel UAPI headers (cmake/gen_syscalls.py);
 * an unsupported architecture fails the build instead of getting another one's numbers.
 *
 * Syscall keys as the BPF side reports them (struct ap_sys_key.nr) carry the ABI in their
 * high bits, so a 32-bit (ia32) task's calls are named from the compat table and never
 * mistaken for the native syscall with the same number.
 */
#ifndef AP_SYSCALLS_H
#define AP_SYSCALLS_H

#include <stddef.h>
#include <stdint.h>

/* ABI bits of a BPF syscall key (see src/bpf/syscall.h, which defines the same values). */
#define AP_SYSCALL_ABI_COMPAT 0x80000000u /* 32-bit compat task (ia32 on x86_64) */
#define AP_SYSCALL_ABI_X32 0x40000000u	  /* x86_64 x32 ABI (the kernel's __X32_SYSCALL_BIT) */
#define AP_SYSCALL_NR_MASK 0x3fffffffu

/* "x86_64", "arm64": the architecture the tables belong to. */
const char *ap_syscall_arch(void);
/* Name of the compat ABI ("ia32"), or NULL when the build has no compat table. */
const char *ap_syscall_compat_abi(void);

/* One past the largest native syscall number in the table. */
int ap_syscall_count(void);
/* Native syscall name ("getppid"), or NULL when the number is not in the table. */
const char *ap_syscall_name(int nr);
/* Compat-ABI syscall name, or NULL. */
const char *ap_syscall_compat_name(int nr);
/* Native syscall number of `name` ("read", also "sys_read"), or -ENOENT. */
int ap_syscall_from_name(const char *name);
/* Compat-ABI syscall number of `name`, or -ENOENT (also when there is no compat table). */
int ap_syscall_compat_from_name(const char *name);

/*
 * Display name of a BPF key's nr: "getppid", "ia32:getpid", "x32:read", and for numbers the
 * table does not know "syscall_468" (never another syscall's name). Returns buf.
 */
const char *ap_syscall_key_name(uint32_t key_nr, char *buf, size_t len);
/* ABI of a BPF key's nr: ap_syscall_arch(), the compat ABI name, or "x32". */
const char *ap_syscall_key_abi(uint32_t key_nr);

/*
 * Errno name of a positive error number: "ENOENT"; the kernel-internal restart codes that a
 * syscall exit can show ("ERESTARTSYS", 512..) too; NULL when unknown.
 */
const char *ap_errno_name(int err);
/* Same, but unknown numbers come out as "E123" in buf. Returns a string, never NULL. */
const char *ap_errno_label(int err, char *buf, size_t len);

#endif
