/* SPDX-License-Identifier: MIT */
/*
 * Aperture's on-disk caches (uncompressed debug files, compiled unwind tables, debuginfod
 * downloads): where they live and how they are kept under a size.
 *
 * The root is $APERTURE_CACHE_DIR when set, else /var/cache/aperture when writable (root),
 * else $XDG_CACHE_HOME/aperture, else ~/.cache/aperture. Every cache is a subdirectory.
 */
#ifndef AP_CACHE_DIR_H
#define AP_CACHE_DIR_H

#include <stddef.h>
#include <stdint.h>

/* mkdir -p, the last component 0700; 0 when it exists, is writable and is private (a
 * directory, not a symlink, owned by our euid, not group/world-writable: else -EPERM,
 * -ELOOP or -ENOTDIR), else -errno. */
int ap_mkdir_p(const char *path);

/* <root>/<sub>, created. Returns 0 or -errno (no writable place for it). */
int ap_cache_dir(const char *sub, char *out, size_t len);

/* Remove the least recently modified regular files named *<suffix> (not starting with '.',
 * owned by our euid) from dir until their total is at most cap_bytes; the file named `keep`
 * stays. */
void ap_cache_prune(const char *dir, const char *suffix, uint64_t cap_bytes, const char *keep);

/* Whole reads and writes at an offset (EINTR retried). A read past the end of the file is
 * -ENODATA. Return 0 or -errno. */
int ap_pread_full(int fd, void *buf, size_t len, uint64_t off);
int ap_pwrite_full(int fd, const void *buf, size_t len, uint64_t off);

/* Names in a cache come from build-ids: lower-case hex, 2 to 2 * max_bytes characters. */
int ap_cache_valid_id(const char *id, size_t max_bytes);

#endif
