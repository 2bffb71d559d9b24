/* SPDX-License-Identifier: MIT */
/*
 * Opening files on a process's behalf. The agent runs as root and opens files whose names,
 * and whose directories, a local user controls: a profiled process's binaries and libraries,
 * debug files found by name, perf maps, files in another mount namespace, cache entries. Every
 * such open goes through ap_open_untrusted(), which
 *
 *  - resolves the path without /proc magic links unless asked (AP_OPEN_MAGIC), and with
 *    AP_OPEN_IN_ROOT inside a directory taken as "/" (a container's root: an absolute
 *    symlink in it stays in it), or with AP_OPEN_BENEATH never above dirfd;
 *  - refuses a symlink as the last component with AP_OPEN_NOFOLLOW;
 *  - first takes an O_PATH descriptor and checks that it is a regular file, so a FIFO cannot
 *    block the agent and no device driver's open() runs; only then opens it for reading
 *    (O_CLOEXEC | O_NONBLOCK | O_NOCTTY, through /proc/self/fd, the same inode);
 *  - with a max_size bound, refuses larger files.
 *
 * docs/security.md lists every file opened this way and the flags each uses.
 */
#ifndef AP_SAFE_OPEN_H
#define AP_SAFE_OPEN_H

#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>

enum {
	AP_OPEN_NOFOLLOW = 1 << 0, /* the last component must not be a symlink */
	AP_OPEN_IN_ROOT = 1 << 1,  /* resolve as if dirfd were "/" (RESOLVE_IN_ROOT) */
	AP_OPEN_BENEATH = 1 << 2,  /* never leave dirfd: no "..", no absolute symlink above it */
	AP_OPEN_MAGIC = 1 << 3,	   /* allow /proc magic links (map_files/, exe) */
	AP_OPEN_OWNED = 1 << 4,	   /* the owner must be our euid (cache entries) */
};

/*
 * Open dirfd/path (path may be absolute when neither IN_ROOT nor BENEATH is set; dirfd may
 * be AT_FDCWD) read-only. Fills *st (may be NULL). Returns the descriptor or -errno:
 * -ELOOP a symlink where none may be (or a magic link), -EXDEV a path that would leave
 * dirfd (AP_OPEN_BENEATH), -EINVAL not a regular file (FIFO, device, directory, socket),
 * -EFBIG larger than max_size (0: no bound), -EPERM not owned by us (AP_OPEN_OWNED).
 */
int ap_open_untrusted(int dirfd, const char *path, int flags, uint64_t max_size, struct stat *st);

/* The two halves of ap_open_untrusted: the checked O_PATH descriptor (cheap: enough to
 * stat a file and find it in a cache), then a readable descriptor of that same inode. */
int ap_path_untrusted(int dirfd, const char *path, int flags, uint64_t max_size, struct stat *st);
int ap_reopen_untrusted(int pfd, const struct stat *st);

/* The same, as a stdio stream that reports EOF and sets its error flag (ferror, errno
 * EFBIG) after max_read bytes (0: no bound): for /proc files, whose size stat() does not
 * tell. NULL and errno on failure. */
FILE *ap_fopen_untrusted(int dirfd, const char *path, int flags, uint64_t max_read);

/* An O_PATH descriptor of a process's root directory (/proc/PID/root, the magic link taken on
 * purpose), for AP_OPEN_IN_ROOT. Returns the descriptor or -errno. */
int ap_open_proc_root(int pid);

/* An O_PATH descriptor of a trusted directory (a debug root), for AP_OPEN_BENEATH. */
int ap_open_dir(const char *path);

/* A directory that holds only our files: a directory (not a symlink), owned by our euid and
 * not writable by group or others. 0 or -errno (-EPERM when it is someone else's). */
int ap_check_private_dir(int dirfd, const char *path);

/* A name that stays one component: not empty, not "." or "..", no '/'. */
int ap_safe_name(const char *name);

#endif
