/* SPDX-License-Identifier: MIT */
/*
 * Where a profile is written, safely for a root process in directories others can write to.
 *
 * - stdout ("-", no -o, /dev/stdout): written to descriptor 1.
 * - A character device or FIFO (/dev/null, a named pipe): written in place, never replaced.
 * - A regular file (or a new one): written to an anonymous temporary in the same directory
 *   (O_TMPFILE; on filesystems without it, an O_EXCL file with a random name), synced and
 *   renamed over the output only when the whole profile is written. A failed or killed run
 *   leaves no partial file and does not touch an older one; no predictable name is ever
 *   opened, so a link planted in the directory cannot redirect the write.
 * - A symbolic link given as the output is followed only when it belongs to root or to the
 *   invoking user (the kernel's protected_symlinks rule): the target is then written as
 *   above. Anyone else's link is refused: it may be a trap planted in a shared directory.
 * Every other kind (directory, socket, block device) is refused.
 *
 * Writes go through a stream that remembers the first failed write's errno, so a full disk
 * reads "No space left on device", not the writers' generic -EIO.
 */
#ifndef AP_OUTPUT_H
#define AP_OUTPUT_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

enum ap_output_kind {
	AP_OUTPUT_NONE = 0,
	AP_OUTPUT_STDOUT,
	AP_OUTPUT_IN_PLACE,  /* character device, FIFO */
	AP_OUTPUT_TMPFILE,   /* O_TMPFILE, linked in at commit */
	AP_OUTPUT_NAMED_TMP, /* mkostemp fallback */
};

struct ap_output {
	FILE *f;		  /* the stream the writers use */
	enum ap_output_kind kind;
	int fd;
	int write_err;		  /* errno of the first failed write, 0: none */
	char path[PATH_MAX];	  /* where the profile ends up (a followed link's target) */
	char tmp[PATH_MAX + 32];  /* AP_OUTPUT_NAMED_TMP, or a linked O_TMPFILE before rename */
};

/*
 * The file one mode writes. With several modes each writes its own file: "out.svg" becomes
 * "out.cpu.svg" (the mode goes before the extension, ".pb.gz" counting as one), unless the
 * output is stdout, a device or a FIFO, which all modes write one after the other.
 */
void ap_output_path(const char *output, const char *mode, bool several, char *buf, size_t len);

/* Open the output (NULL or "-": stdout). Returns 0, or -errno with a reason in msg. */
int ap_output_open(struct ap_output *o, const char *path, char *msg, size_t len);

/* Flush, sync and close; a regular file is moved into place. Returns 0 or -errno (the real
 * one of a failed write); on failure nothing is left at the output path but what was there. */
int ap_output_commit(struct ap_output *o);

/* Close without moving into place (a failed run). Idempotent. */
void ap_output_discard(struct ap_output *o);

/* A writer's error with its generic -EIO replaced by the failed write's real errno. */
int ap_output_error(const struct ap_output *o, int err);

/* Remove the named temporaries of outputs still open. Async-signal-safe: for a forced quit
 * from a signal handler (O_TMPFILE temporaries vanish by themselves). */
void ap_output_remove_temporaries(void);

#endif
