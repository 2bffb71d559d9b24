/* SPDX-License-Identifier: MIT */
/*
 * /proc/PID/maps: one parser for the symbolizer, the unwinder and lock naming. The file is
 * written by the kernel but describes a process we do not trust (paths are its own), so a line
 * that does not parse is skipped, never fatal.
 */
#ifndef AP_PROC_MAPS_H
#define AP_PROC_MAPS_H

#include <stdbool.h>
#include <stdint.h>

struct ap_maps_entry {
	uint64_t start;
	uint64_t end;
	uint64_t offset;
	uint64_t inode;
	uint32_t dev_major;
	uint32_t dev_minor;
	char perms[5];
	bool deleted;	  /* path had a " (deleted)" suffix, which was removed */
	const char *path; /* "" for anonymous mappings; points into the parsed line */
};

/* Parse one line (modified in place: the newline and " (deleted)" are cut; e->path points
 * into it). Returns 0 or -EINVAL. */
int ap_maps_parse_line(char *line, struct ap_maps_entry *e);
/* Call cb for every mapping of pid, in address order; the entry is valid during the call
 * only. A non-zero return from cb stops the walk and is returned. Returns 0, -ESRCH (no such
 * process) or -errno. */
int ap_maps_read(int pid, int (*cb)(const struct ap_maps_entry *e, void *ctx), void *ctx);

/*
 * A process's executable mappings read on one thread, to be used on another (which must not
 * wait: a short-lived process is gone by then). Thread-safe. ap_maps_capture returns 0 with
 * *out set (free it with ap_maps_capture_free), -ESRCH (gone, or no executable mappings: a
 * zombie, a kernel thread), -ENOMEM or -errno.
 */
struct ap_maps_capture;
int ap_maps_capture(int pid, struct ap_maps_capture **out);
void ap_maps_capture_free(struct ap_maps_capture *c);
/* ap_maps_read over a capture: the entries stay valid while c lives. */
int ap_maps_capture_walk(const struct ap_maps_capture *c,
			 int (*cb)(const struct ap_maps_entry *e, void *ctx), void *ctx);

#endif
