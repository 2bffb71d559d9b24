// SPDX-License-Identifier: MIT
#include "syscalls.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* From the generated syscall_table.c (build tree). */
extern const char *const ap_syscalls_gen_arch;
extern const char *const ap_syscalls_gen_compat_abi;
extern const char *const *const ap_syscalls_gen_native;
extern const unsigned int ap_syscalls_gen_native_size;
extern const char *const *const ap_syscalls_gen_compat;
extern const unsigned int ap_syscalls_gen_compat_size;
extern const char *const *const ap_syscalls_gen_errno;
extern const unsigned int ap_syscalls_gen_errno_size;

/*
 * Error codes internal to the kernel (include/linux/errno.h) that never reach user space as
 * errno but do show in the return value seen at sys_exit: a call interrupted by a signal
 * exits with one of the restart codes before the kernel restarts it or turns it into EINTR.
 */
static const char *const kernel_errnos[] = {
	[512 - 512] = "ERESTARTSYS",	      [513 - 512] = "ERESTARTNOINTR",
	[514 - 512] = "ERESTARTNOHAND",	      [515 - 512] = "ENOIOCTLCMD",
	[516 - 512] = "ERESTART_RESTARTBLOCK", [517 - 512] = "EPROBE_DEFER",
	[518 - 512] = "EOPENSTALE",	      [519 - 512] = "ENOPARAM",
	[521 - 512] = "EBADHANDLE",	      [522 - 512] = "ENOTSYNC",
	[523 - 512] = "EBADCOOKIE",	      [524 - 512] = "ENOTSUPP",
	[525 - 512] = "ETOOSMALL",	      [526 - 512] = "ESERVERFAULT",
	[527 - 512] = "EBADTYPE",	      [528 - 512] = "EJUKEBOX",
	[529 - 512] = "EIOCBQUEUED",	      [530 - 512] = "ERECALLCONFLICT",
	[531 - 512] = "ENOGRACE",
};

const char *ap_syscall_arch(void)
{
	return ap_syscalls_gen_arch;
}

const char *ap_syscall_compat_abi(void)
{
	return ap_syscalls_gen_compat_abi;
}

int ap_syscall_count(void)
{
	return (int)ap_syscalls_gen_native_size;
}

const char *ap_syscall_name(int nr)
{
	if (nr < 0 || (unsigned int)nr >= ap_syscalls_gen_native_size)
		return NULL;
	return ap_syscalls_gen_native[nr];
}

const char *ap_syscall_compat_name(int nr)
{
	if (nr < 0 || (unsigned int)nr >= ap_syscalls_gen_compat_size)
		return NULL;
	return ap_syscalls_gen_compat[nr];
}

static int lookup(const char *const *table, unsigned int size, const char *name)
{
	if (!name)
		return -ENOENT;
	if (strncmp(name, "sys_", 4) == 0 && name[4])
		name += 4;
	for (unsigned int i = 0; i < size; i++)
		if (table[i] && strcmp(table[i], name) == 0)
			return (int)i;
	return -ENOENT;
}

int ap_syscall_from_name(const char *name)
{
	return lookup(ap_syscalls_gen_native, ap_syscalls_gen_native_size, name);
}

int ap_syscall_compat_from_name(const char *name)
{
	return lookup(ap_syscalls_gen_compat, ap_syscalls_gen_compat_size, name);
}

const char *ap_syscall_key_abi(uint32_t key_nr)
{
	if (key_nr & AP_SYSCALL_ABI_COMPAT)
		return ap_syscalls_gen_compat_abi ? ap_syscalls_gen_compat_abi : "compat";
	if (key_nr & AP_SYSCALL_ABI_X32)
		return "x32";
	return ap_syscalls_gen_arch;
}

const char *ap_syscall_key_name(uint32_t key_nr, char *buf, size_t len)
{
	int nr = (int)(key_nr & AP_SYSCALL_NR_MASK);
	const char *name;

	if (key_nr & AP_SYSCALL_ABI_COMPAT) {
		name = ap_syscall_compat_name(nr);
		if (name)
			snprintf(buf, len, "%s:%s", ap_syscall_key_abi(key_nr), name);
		else
			snprintf(buf, len, "%s:syscall_%d", ap_syscall_key_abi(key_nr), nr);
		return buf;
	}
	/* x32 uses the x86_64 numbers (its own calls live at 512 and up, outside the table) */
	name = ap_syscall_name(nr);
	if ((key_nr & AP_SYSCALL_ABI_X32) && name)
		snprintf(buf, len, "x32:%s", name);
	else if (key_nr & AP_SYSCALL_ABI_X32)
		snprintf(buf, len, "x32:syscall_%d", nr);
	else if (name)
		snprintf(buf, len, "%s", name);
	else
		snprintf(buf, len, "syscall_%d", nr);
	return buf;
}

const char *ap_errno_name(int err)
{
	if (err > 0 && (unsigned int)err < ap_syscalls_gen_errno_size && ap_syscalls_gen_errno[err])
		return ap_syscalls_gen_errno[err];
	if (err >= 512 && (size_t)(err - 512) < sizeof(kernel_errnos) / sizeof(kernel_errnos[0]))
		return kernel_errnos[err - 512];
	return NULL;
}

const char *ap_errno_label(int err, char *buf, size_t len)
{
	const char *name = ap_errno_name(err);

	if (name)
		return name;
	snprintf(buf, len, "E%d", err);
	return buf;
}
