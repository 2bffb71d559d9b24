// SPDX-License-Identifier: MIT
/* Finding CUDA code in processes (discover.h). */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "discover.h"
#include "lib/proc_maps.h"
#include "lib/safe_open.h"

/* Larger ELF files are not read (libtorch_cuda.so is ~1.5 GiB: still under it). */
#define MAX_ELF_BYTES (4ULL << 30)
/* Distinct files remembered; beyond, a file is scanned again at each visit (counted). */
#define MAX_FILES 65536
/* (pid, file) pairs reported as not probeable. */
#define MAX_REPORTED 65536
/* CUDA files kept open (their kernel names are read from them after their process exits) */
#define MAX_KEPT 512
/* mappings of kept files, all processes together */
#define MAX_PID_MAPS 65536
#define MAX_NAME 4096

struct file_entry {
	dev_t dev;
	ino_t ino;
	int pid; /* per_pid: the process it was attached for; else -1 */
	enum ap_gpu_file_class cls;
	bool attached; /* probes (or the loader hook) attached: per pid with per_pid */
	int fd;	       /* kept open (CUDA code: kernel names), else -1 */
	dev_t mdev;    /* the device and inode as /proc/PID/maps shows them */
	ino_t mino;
	char reason[256];
};

/* A mapping of a kept file in a process: its kernel names and stubs are read from the file. */
struct pid_map {
	int pid;
	uint64_t start, end, offset;
	dev_t mdev;
	ino_t mino;
};

struct reported {
	int pid;
	dev_t dev;
	ino_t ino;
};

struct ap_gpu_discovery {
	struct ap_gpu_discovery_ops ops;
	void *ctx;
	bool per_pid;
	struct file_entry *files;
	size_t nfiles, cap;
	struct reported *rep;
	size_t nrep, repcap;
	struct pid_map *maps;
	size_t nmaps, mapcap;
	size_t kept;
	struct ap_gpu_discovery_stats st;
};

struct ap_gpu_discovery *ap_gpu_discovery_new(const struct ap_gpu_discovery_ops *ops, void *ctx,
					      bool per_pid)
{
	struct ap_gpu_discovery *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->ops = *ops;
	d->ctx = ctx;
	d->per_pid = per_pid;
	return d;
}

void ap_gpu_discovery_free(struct ap_gpu_discovery *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->nfiles; i++)
		if (d->files[i].fd >= 0)
			close(d->files[i].fd);
	free(d->maps);
	free(d->files);
	free(d->rep);
	free(d);
}

/* Files are few (a process maps tens to hundreds): a linear table is enough. */
static struct file_entry *find_file(struct ap_gpu_discovery *d, dev_t dev, ino_t ino, int pid)
{
	for (size_t i = 0; i < d->nfiles; i++) {
		struct file_entry *f = &d->files[i];

		if (f->dev == dev && f->ino == ino && (f->pid == -1 || f->pid == pid || !f->attached))
			return f;
	}
	return NULL;
}

static struct file_entry *add_file(struct ap_gpu_discovery *d)
{
	if (d->nfiles == MAX_FILES) {
		d->st.files_limit++;
		return NULL;
	}
	if (d->nfiles == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 256;
		struct file_entry *n = realloc(d->files, cap * sizeof(*n));

		if (!n)
			return NULL;
		d->files = n;
		d->cap = cap;
	}
	memset(&d->files[d->nfiles], 0, sizeof(d->files[0]));
	d->files[d->nfiles].fd = -1;
	return &d->files[d->nfiles++];
}

static void report_unprobeable(struct ap_gpu_discovery *d, int pid, const char *path,
			       const struct file_entry *f)
{
	for (size_t i = 0; i < d->nrep; i++)
		if (d->rep[i].pid == pid && d->rep[i].dev == f->dev && d->rep[i].ino == f->ino)
			return;
	if (d->nrep == d->repcap && d->nrep < MAX_REPORTED) {
		size_t cap = d->repcap ? d->repcap * 2 : 64;
		struct reported *n = realloc(d->rep, cap * sizeof(*n));

		if (n) {
			d->rep = n;
			d->repcap = cap;
		}
	}
	if (d->nrep < d->repcap)
		d->rep[d->nrep++] = (struct reported){ pid, f->dev, f->ino };
	d->st.unprobeable++;
	if (d->ops.unprobeable)
		d->ops.unprobeable(d->ctx, pid, path, f->reason);
}

/* One opened file: scan, classify, act. */
static struct file_entry *visit_fd(struct ap_gpu_discovery *d, int pid, const char *path,
				   const char *map_path, int fd, const struct stat *st)
{
	struct ap_gpu_scan scan;
	struct file_entry *f;
	char open_path[48];
	struct ap_gpu_found found = {
		.pid = pid,
		.path = path,
		.open_path = open_path,
		.map_path = map_path,
		.fd = fd,
		.dev = st->st_dev,
		.ino = st->st_ino,
		.scan = &scan,
	};

	snprintf(open_path, sizeof(open_path), "/proc/self/fd/%d", fd);
	if (ap_gpu_scan_fd(fd, &scan))
		return NULL;
	d->st.files_scanned++;
	f = add_file(d);
	if (f) {
		f->dev = st->st_dev;
		f->ino = st->st_ino;
		f->pid = d->per_pid && pid > 0 ? pid : -1;
		f->cls = scan.cls;
		f->attached = scan.cls == AP_GPU_FILE_PROBE || scan.loader;
		snprintf(f->reason, sizeof(f->reason), "%s", scan.reason);
		/* where kernel names live: read from here after the process is gone */
		if ((scan.has_fatbin || scan.cls == AP_GPU_FILE_PROBE) && d->kept < MAX_KEPT) {
			f->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
			d->kept += f->fd >= 0;
		}
	}
	if (d->ops.file)
		d->ops.file(d->ctx, &found);
	if (scan.loader && d->ops.loader)
		d->ops.loader(d->ctx, &found);
	if (scan.cls == AP_GPU_FILE_PROBE) {
		d->st.files_probed++;
		if (d->ops.probe(d->ctx, &found))
			d->st.probe_failed++;
	} else if (scan.cls == AP_GPU_FILE_UNPROBEABLE && f && pid > 0) {
		report_unprobeable(d, pid, path, f);
	}
	ap_gpu_scan_free(&scan);
	return f;
}

/* A process's file mappings as read, to record those of kept files afterwards (their
 * read-only data, with the names, may come before their code in the maps). */
struct seen_map {
	uint64_t start, end, offset;
	dev_t mdev;
	ino_t mino;
};

struct scan_ctx {
	struct ap_gpu_discovery *d;
	int pid;
	struct seen_map *seen;
	size_t nseen, cap;
};

static void note_seen(struct scan_ctx *sc, const struct ap_maps_entry *e)
{
	if (sc->nseen == sc->cap) {
		size_t cap = sc->cap ? sc->cap * 2 : 64;
		struct seen_map *n = cap <= MAX_PID_MAPS ? realloc(sc->seen, cap * sizeof(*n)) : NULL;

		if (!n)
			return;
		sc->seen = n;
		sc->cap = cap;
	}
	sc->seen[sc->nseen++] = (struct seen_map){ e->start, e->end, e->offset,
						   (dev_t)makedev(e->dev_major, e->dev_minor),
						   (ino_t)e->inode };
}

static struct file_entry *kept_file(struct ap_gpu_discovery *d, dev_t mdev, ino_t mino)
{
	for (size_t i = 0; i < d->nfiles; i++)
		if (d->files[i].fd >= 0 && d->files[i].mdev == mdev && d->files[i].mino == mino)
			return &d->files[i];
	return NULL;
}

static bool pid_has_maps(const struct ap_gpu_discovery *d, int pid)
{
	for (size_t k = 0; k < d->nmaps; k++)
		if (d->maps[k].pid == pid)
			return true;
	return false;
}

static void record_maps(struct scan_ctx *sc)
{
	struct ap_gpu_discovery *d = sc->d;
	bool had = pid_has_maps(d, sc->pid);

	for (size_t i = 0; i < sc->nseen; i++) {
		const struct seen_map *m = &sc->seen[i];
		bool known = false;

		if (!kept_file(d, m->mdev, m->mino))
			continue;
		for (size_t k = 0; k < d->nmaps && !known; k++)
			known = d->maps[k].pid == sc->pid && d->maps[k].start == m->start &&
				d->maps[k].end == m->end && d->maps[k].mino == m->mino;
		if (known)
			continue;
		if (d->nmaps == d->mapcap) {
			size_t cap = d->mapcap ? d->mapcap * 2 : 64;
			struct pid_map *n = cap <= MAX_PID_MAPS ? realloc(d->maps, cap * sizeof(*n))
								: NULL;

			if (!n) {
				d->st.maps_limit++;
				return;
			}
			d->maps = n;
			d->mapcap = cap;
		}
		d->maps[d->nmaps++] = (struct pid_map){ sc->pid, m->start, m->end, m->offset,
							m->mdev, m->mino };
	}
	if (!had && sc->pid > 0 && pid_has_maps(d, sc->pid) && d->ops.cuda_process)
		d->ops.cuda_process(d->ctx, sc->pid);
}

static int visit_mapping(const struct ap_maps_entry *e, void *arg)
{
	struct scan_ctx *sc = arg;
	struct ap_gpu_discovery *d = sc->d;
	struct file_entry *f;
	char mf[96];
	struct stat st;
	int fd;

	if (!e->path[0] || e->path[0] != '/' || !e->inode)
		return 0;
	note_seen(sc, e);
	/* code: executables and libraries (their text is mapped executable) */
	if (e->perms[2] != 'x')
		return 0;
	f = find_file(d, (dev_t)makedev(e->dev_major, e->dev_minor), (ino_t)e->inode, sc->pid);
	if (f) {
		if (!f->mino) {
			f->mdev = (dev_t)makedev(e->dev_major, e->dev_minor);
			f->mino = (ino_t)e->inode;
		}
		if (f->cls == AP_GPU_FILE_UNPROBEABLE)
			report_unprobeable(d, sc->pid, e->path, f);
		return 0;
	}
	snprintf(mf, sizeof(mf), "/proc/%d/map_files/%llx-%llx", sc->pid,
		 (unsigned long long)e->start, (unsigned long long)e->end);
	fd = ap_open_untrusted(AT_FDCWD, mf, AP_OPEN_MAGIC, MAX_ELF_BYTES, &st);
	if (fd < 0) {
		d->st.open_failed++;
		return 0;
	}
	/* the maps line's device numbers and the inode's agree unless the file was replaced */
	f = find_file(d, st.st_dev, st.st_ino, sc->pid);
	if (!f)
		f = visit_fd(d, sc->pid, e->path, mf, fd, &st);
	if (f && !f->mino) {
		f->mdev = (dev_t)makedev(e->dev_major, e->dev_minor);
		f->mino = (ino_t)e->inode;
	}
	close(fd);
	return 0;
}

int ap_gpu_discovery_scan_pid(struct ap_gpu_discovery *d, int pid)
{
	struct scan_ctx sc = { .d = d, .pid = pid };
	int err;

	d->st.scans++;
	err = ap_maps_read(pid, visit_mapping, &sc);
	record_maps(&sc);
	free(sc.seen);
	return err;
}

static const struct pid_map *find_map(struct ap_gpu_discovery *d, int pid, uint64_t addr,
				      int *fd)
{
	for (size_t i = 0; i < d->nmaps; i++) {
		const struct pid_map *m = &d->maps[i];
		struct file_entry *f;

		if (m->pid != pid || addr < m->start || addr >= m->end)
			continue;
		f = kept_file(d, m->mdev, m->mino);
		if (!f)
			return NULL;
		*fd = f->fd;
		return m;
	}
	return NULL;
}

int ap_gpu_discovery_read_string(struct ap_gpu_discovery *d, int pid, uint64_t addr, char *buf,
				 size_t len)
{
	const struct pid_map *m;
	ssize_t n;
	int fd;

	if (len < 2 || !(m = find_map(d, pid, addr, &fd)))
		return -ENOENT;
	n = pread(fd, buf, len - 1, (off_t)(addr - m->start + m->offset));
	if (n <= 0)
		return n < 0 ? -errno : -ENOENT;
	buf[n] = '\0';
	if (strlen(buf) == (size_t)n && (size_t)n == len - 1)
		return -ENAMETOOLONG;
	for (const char *p = buf; *p; p++)
		if (*p <= ' ' || *p > '~')
			return -EINVAL;
	return buf[0] ? 0 : -EINVAL;
}

void ap_gpu_discovery_pid_maps(struct ap_gpu_discovery *d, int pid,
				void (*fn)(void *ctx, uint64_t start, uint64_t end, uint64_t offset,
					   uint64_t dev, uint64_t ino),
				void *ctx)
{
	for (size_t i = 0; i < d->nmaps; i++)
		if (d->maps[i].pid == pid)
			fn(ctx, d->maps[i].start, d->maps[i].end, d->maps[i].offset,
			   (uint64_t)d->maps[i].mdev, (uint64_t)d->maps[i].mino);
}

char *ap_gpu_discovery_symbol_at(struct ap_gpu_discovery *d, int pid, uint64_t addr)
{
	const struct pid_map *m;
	char *name;
	int fd;

	if (!(m = find_map(d, pid, addr, &fd))) {
		errno = ENOENT;
		return NULL;
	}
	name = ap_gpu_elf_symbol_at(fd, addr - m->start + m->offset);
	if (name)
		ap_gpu_stub_to_device_name(name);
	return name;
}

/* Processes whose exit was not reported (those that never made a CUDA call) leave their
 * mappings and reports behind: dropped at each whole-system scan once they are gone. */
static void prune_gone(struct ap_gpu_discovery *d)
{
	for (size_t i = 0; i < d->nmaps; i++) {
		int pid = d->maps[i].pid;

		if (kill(pid, 0) && errno == ESRCH) {
			ap_gpu_discovery_forget_pid(d, pid);
			i = (size_t)-1; /* the table changed: from the start (rare) */
		}
	}
	for (size_t i = 0; i < d->nrep; i++) {
		int pid = d->rep[i].pid;

		if (kill(pid, 0) && errno == ESRCH) {
			ap_gpu_discovery_forget_pid(d, pid);
			i = (size_t)-1;
		}
	}
}

int ap_gpu_discovery_scan_all(struct ap_gpu_discovery *d, int self)
{
	DIR *dir = opendir("/proc");
	struct dirent *de;

	prune_gone(d);
	if (!dir)
		return -errno;
	while ((de = readdir(dir)) != NULL) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);

		if (*end || pid <= 0 || pid == self)
			continue;
		ap_gpu_discovery_scan_pid(d, (int)pid); /* gone meanwhile: fine */
	}
	closedir(dir);
	return 0;
}

int ap_gpu_discovery_add_path(struct ap_gpu_discovery *d, const char *path)
{
	struct stat st;
	int fd;

	/* a path the user or the standard CUDA layout names: symlinks followed (libcudart.so.13
	 * is one), but the file must be root's, as a system library is */
	fd = ap_open_untrusted(AT_FDCWD, path, 0, MAX_ELF_BYTES, &st);
	if (fd < 0) {
		if (fd != -ENOENT)
			d->st.open_failed++;
		return fd;
	}
	if (st.st_uid != 0 && st.st_uid != geteuid()) {
		close(fd);
		return -EPERM;
	}
	if (!find_file(d, st.st_dev, st.st_ino, -1))
		visit_fd(d, -1, path, path, fd, &st);
	close(fd);
	return 0;
}

void ap_gpu_discovery_forget_pid(struct ap_gpu_discovery *d, int pid)
{
	size_t k = 0;

	for (size_t i = 0; i < d->nrep; i++)
		if (d->rep[i].pid != pid)
			d->rep[k++] = d->rep[i];
	d->nrep = k;
	k = 0;
	for (size_t i = 0; i < d->nmaps; i++)
		if (d->maps[i].pid != pid)
			d->maps[k++] = d->maps[i];
	d->nmaps = k;
	/* per-process attachments end with the process (the kernel drops them) */
	k = 0;
	for (size_t i = 0; i < d->nfiles; i++) {
		if (!(d->per_pid && d->files[i].pid == pid)) {
			d->files[k++] = d->files[i];
		} else if (d->files[i].fd >= 0) {
			close(d->files[i].fd);
			d->kept--;
		}
	}
	d->nfiles = k;
}

void ap_gpu_discovery_get_stats(const struct ap_gpu_discovery *d,
				struct ap_gpu_discovery_stats *out)
{
	*out = d->st;
}
