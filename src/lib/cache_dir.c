// SPDX-License-Identifier: MIT
/* Aperture's on-disk caches (cache_dir.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache_dir.h"
#include "grow.h"
#include "safe_open.h"

int ap_mkdir_p(const char *path)
{
	char buf[4096];
	size_t len = strlen(path);

	if (!len || len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0700) && errno != EEXIST)
		return -errno;
	/* an existing directory is used only if it is ours alone: one planted by another
	 * user (or a symlink to one) would let them feed us files, or replace ours */
	return ap_check_private_dir(AT_FDCWD, buf) ?: (access(buf, W_OK) ? -errno : 0);
}

int ap_cache_dir(const char *sub, char *out, size_t len)
{
	const char *env = getenv("APERTURE_CACHE_DIR");
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");

	if (env && *env) {
		snprintf(out, len, "%s/%s", env, sub);
		return ap_mkdir_p(out);
	}
	snprintf(out, len, "/var/cache/aperture/%s", sub);
	if (!ap_mkdir_p(out))
		return 0;
	if (xdg && *xdg)
		snprintf(out, len, "%s/aperture/%s", xdg, sub);
	else if (home && *home)
		snprintf(out, len, "%s/.cache/aperture/%s", home, sub);
	else
		return -ENOENT;
	return ap_mkdir_p(out);
}

int ap_pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pread(fd, buf, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ENODATA; /* the file is shorter than it claims */
		buf = (char *)buf + n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

int ap_pwrite_full(int fd, const void *buf, size_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pwrite(fd, buf, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		buf = (const char *)buf + n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

int ap_cache_valid_id(const char *id, size_t max_bytes)
{
	size_t n = strlen(id);

	return n >= 2 && n <= 2 * max_bytes && strspn(id, "0123456789abcdef") == n;
}

struct cache_ent {
	char *name;
	time_t mtime;
	uint64_t size;
};

void ap_cache_prune(const char *dir, const char *suffix, uint64_t cap_bytes, const char *keep)
{
	struct cache_ent *v = NULL;
	size_t n = 0, ncap = 0, slen = strlen(suffix);
	uint64_t total = 0;
	struct dirent *de;
	DIR *d = opendir(dir);

	if (!d)
		return;
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		struct stat st;

		if (len <= slen || strcmp(de->d_name + len - slen, suffix) || de->d_name[0] == '.' ||
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) || !S_ISREG(st.st_mode) ||
		    st.st_uid != geteuid())
			continue;
		total += (uint64_t)st.st_size;
		if (keep && !strcmp(de->d_name, keep))
			continue;
		if (ap_grow_array((void **)&v, &ncap, n + 1, sizeof(*v)))
			break;
		v[n].name = strdup(de->d_name);
		if (!v[n].name)
			break;
		v[n].mtime = st.st_mtime;
		v[n++].size = (uint64_t)st.st_size;
	}
	while (total > cap_bytes && n) {
		size_t oldest = 0;

		for (size_t i = 1; i < n; i++)
			if (v[i].mtime < v[oldest].mtime)
				oldest = i;
		if (!unlinkat(dirfd(d), v[oldest].name, 0))
			total -= v[oldest].size;
		free(v[oldest].name);
		v[oldest] = v[--n];
	}
	for (size_t i = 0; i < n; i++)
		free(v[i].name);
	closedir(d);
	free(v);
}
