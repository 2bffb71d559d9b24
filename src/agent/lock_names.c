// SPDX-License-Identifier: MIT
/*
 * Names for the lock reports that need the live system: kernel lock addresses from
 * /proc/kallsyms data symbols, user lock objects from /proc/PID/maps and the ELF OBJECT
 * symbols of the mapped file, thread comms from /proc (or the agent's own record of them).
 * The parsing is the symbolizer's (symbolizer.h) and src/lib's (proc_maps.h); this file only
 * decides which name an address gets.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lock_record.h"
#include "lib/proc_maps.h"
#include "lib/safe_open.h"
#include "symbol/symbolizer.h"

/* The data objects of one file a lock was found in (NULL: unreadable, not tried again). */
struct elf_objs {
	char *path;
	struct ap_elf_objects *objs;
	struct elf_objs *next;
};

struct ap_lock_names {
	struct ap_kallsyms *ksyms;
	int ksyms_err; /* 0 = not loaded yet, 1 = loaded, -errno = failed */
	struct elf_objs *elves;
	void (*extra)(void *ctx, uint32_t tid, char *buf, size_t len);
	void *extra_ctx;
};

struct ap_lock_names *ap_lock_names_new(void (*extra)(void *ctx, uint32_t tid, char *buf,
						      size_t len),
					void *extra_ctx)
{
	struct ap_lock_names *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->extra = extra;
	n->extra_ctx = extra_ctx;
	return n;
}

void ap_lock_names_free(struct ap_lock_names *n)
{
	if (!n)
		return;
	ap_kallsyms_free(n->ksyms);
	while (n->elves) {
		struct elf_objs *e = n->elves;

		n->elves = e->next;
		ap_elf_objects_free(e->objs);
		free(e->path);
		free(e);
	}
	free(n);
}

int ap_lock_ksym_lookup(struct ap_lock_names *n, const char *kallsyms_path, uint64_t addr,
			char *buf, size_t len)
{
	const char *name, *module;
	uint64_t start;
	int err;

	if (!n->ksyms_err)
		n->ksyms_err = ap_kallsyms_load_data(kallsyms_path, &n->ksyms) ?: 1;
	if (n->ksyms_err < 0)
		return n->ksyms_err;
	err = ap_kallsyms_find_data(n->ksyms, addr, &name, &module, &start);
	if (err)
		return err;
	snprintf(buf, len, "%s%s%s", name, module ? " " : "", module ? module : "");
	if (addr != start) {
		size_t used = strlen(buf);

		snprintf(buf + used, len - used, "+0x%" PRIx64, addr - start);
	}
	return 0;
}

/* The objects of `file` (a path in pid's maps), loaded on first use and resolved inside the
 * process's root, so that a symlink in a container never leads to a host file; NULL when
 * it cannot be read. */
static struct ap_elf_objects *elf_objs(struct ap_lock_names *n, uint32_t pid, const char *file)
{
	struct elf_objs *e;
	char path[4200];
	int root;

	snprintf(path, sizeof(path), "/proc/%u/root%s", pid, file);

	for (e = n->elves; e; e = e->next)
		if (!strcmp(e->path, path))
			return e->objs;
	e = calloc(1, sizeof(*e));
	if (!e || !(e->path = strdup(path))) {
		free(e);
		return NULL;
	}
	e->next = n->elves;
	n->elves = e;
	root = ap_open_proc_root((int)pid);
	if (root < 0)
		return NULL;
	if (ap_elf_objects_load(root, file, AP_OPEN_IN_ROOT | AP_OPEN_NOFOLLOW, &e->objs))
		e->objs = NULL;
	close(root);
	return e->objs;
}

/* State of the walk over a process's mappings for one address. */
struct user_walk {
	struct ap_lock_names *n;
	uint32_t pid;
	uint64_t addr;
	char *buf;
	size_t len;
	const char *exe;
	/* the last file mapping, which an anonymous mapping right after it extends (.bss) */
	char prev_path[4096];
	uint64_t prev_start, prev_off, prev_end;
};

static void name_in_file(struct user_walk *w)
{
	const char *base = strrchr(w->prev_path, '/'), *name;
	struct ap_elf_objects *o;
	uint64_t off;

	o = elf_objs(w->n, w->pid, w->prev_path);
	if (!o || ap_elf_objects_find(o, w->prev_start, w->prev_off, w->addr, &name, &off)) {
		snprintf(w->buf, w->len, "[%s]", base + 1);
		return;
	}
	if (off)
		snprintf(w->buf, w->len, "%s+0x%" PRIx64, name, off);
	else
		snprintf(w->buf, w->len, "%s", name);
	/* objects of a library are marked with it; the executable's go without */
	if (strcmp(w->prev_path, w->exe) != 0 && strlen(w->buf) + strlen(base) + 3 < w->len)
		strcat(strcat(strcat(w->buf, " ("), base + 1), ")");
}

static int user_walk_cb(const struct ap_maps_entry *e, void *ctx)
{
	struct user_walk *w = ctx;
	bool file = e->path[0] == '/';

	if (file) {
		snprintf(w->prev_path, sizeof(w->prev_path), "%s", e->path);
		w->prev_start = e->start;
		w->prev_off = e->offset;
	} else if (e->start != w->prev_end && (w->addr < e->start || w->addr >= e->end)) {
		w->prev_path[0] = '\0';
	}
	if (w->addr < e->start || w->addr >= e->end) {
		w->prev_end = e->end;
		return 0;
	}
	/* a file mapping, or the anonymous .bss right after one */
	if (!file && (e->path[0] || e->start != w->prev_end || !w->prev_path[0]))
		snprintf(w->buf, w->len, "%s", e->path[0] ? e->path : "[anon]");
	else
		name_in_file(w);
	return 1; /* found: stop */
}

static void user_lock_name(struct ap_lock_names *n, uint32_t pid, uint64_t addr, char *buf,
			   size_t len)
{
	struct user_walk w = { .n = n, .pid = pid, .addr = addr, .buf = buf, .len = len };
	char path[64], exe[4096] = "";

	snprintf(path, sizeof(path), "/proc/%u/exe", pid);
	if (readlink(path, exe, sizeof(exe) - 1) < 0)
		exe[0] = '\0';
	w.exe = exe;
	ap_maps_read((int)pid, user_walk_cb, &w);
}

static void names_lock_name(void *ctx, uint32_t pid, uint64_t addr, bool kernel, char *buf,
			    size_t len)
{
	struct ap_lock_names *n = ctx;

	buf[0] = '\0';
	if (kernel)
		ap_lock_ksym_lookup(n, "/proc/kallsyms", addr, buf, len);
	else
		user_lock_name(n, pid, addr, buf, len);
}

static void names_thread_comm(void *ctx, uint32_t pid, uint32_t tid, char *buf, size_t len)
{
	struct ap_lock_names *n = ctx;
	char path[64];
	FILE *f;

	buf[0] = '\0';
	snprintf(path, sizeof(path), "/proc/%u/task/%u/comm", pid, tid);
	f = ap_fopen_untrusted(AT_FDCWD, path, AP_OPEN_NOFOLLOW, 4096);
	if (f) {
		if (fgets(buf, (int)len, f))
			buf[strcspn(buf, "\n")] = '\0';
		fclose(f);
	}
	if (!buf[0] && n->extra)
		n->extra(n->extra_ctx, tid, buf, len);
}

void ap_lock_names_resolver(struct ap_lock_names *n, struct ap_lock_resolver *out)
{
	out->ctx = n;
	out->lock_name = names_lock_name;
	out->thread_comm = names_thread_comm;
}
