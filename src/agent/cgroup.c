// SPDX-License-Identifier: MIT
/* cgroup v2 paths as container and unit labels, cached per process. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgroup.h"
#include "lib/hash.h"
#include "lib/hashtab.h"
#include "lib/safe_open.h"

/* /proc/PID/cgroup: one line per hierarchy; a bound against a hostile or odd kernel. */
#define MAX_CGROUP_FILE (64u << 10)

static bool is_hex64(const char *s, size_t n)
{
	if (n != AP_CONTAINER_ID_LEN)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

static bool ends_with(const char *s, size_t n, const char *suffix)
{
	size_t sl = strlen(suffix);

	return n >= sl && memcmp(s + n - sl, suffix, sl) == 0;
}

/* A container id in one path component: "<id>", "<prefix>-<id>" or "<prefix>-<id>.scope"
 * for the runtimes' prefixes. Returns a pointer to the id, or NULL. */
static const char *component_id(const char *s, size_t n)
{
	static const char *const prefixes[] = {"docker-", "cri-containerd-", "crio-",
					       "libpod-", "containerd-",     "cri-o-"};

	if (ends_with(s, n, ".scope"))
		n -= strlen(".scope");
	if (is_hex64(s, n))
		return s;
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		size_t pl = strlen(prefixes[i]);

		if (n > pl && memcmp(s, prefixes[i], pl) == 0 && is_hex64(s + pl, n - pl))
			return s + pl;
	}
	return NULL;
}

void ap_cgroup_parse(const char *path, char *container_id, size_t idlen, char *unit, size_t unitlen)
{
	const char *p = path;

	if (idlen)
		container_id[0] = '\0';
	if (unitlen)
		unit[0] = '\0';
	while (*p) {
		size_t n = strcspn(p, "/");
		const char *id = n ? component_id(p, n) : NULL;

		if (id) {
			snprintf(container_id, idlen, "%.*s", AP_CONTAINER_ID_LEN, id);
		} else if (n && (ends_with(p, n, ".service") || ends_with(p, n, ".scope")) &&
			   n < AP_UNIT_MAX) {
			snprintf(unit, unitlen, "%.*s", (int)n, p);
		}
		p += n;
		while (*p == '/')
			p++;
	}
}

int ap_cgroup_read(int pid, char *buf, size_t len)
{
	char path[64], line[4096];
	FILE *f;
	int err = -ENOENT;

	snprintf(path, sizeof(path), "/proc/%d/cgroup", pid);
	f = ap_fopen_untrusted(AT_FDCWD, path, AP_OPEN_NOFOLLOW, MAX_CGROUP_FILE);
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		size_t n = strcspn(line, "\n");

		line[n] = '\0';
		if (strncmp(line, "0::", 3) == 0) {
			snprintf(buf, len, "%s", line + 3);
			err = 0;
			break;
		}
	}
	if (ferror(f))
		err = -EIO;
	fclose(f);
	return err;
}

struct entry {
	struct ap_hnode node;
	uint32_t pid;
	bool fresh; /* read in this interval */
	bool seen;  /* has samples in this interval */
	char container_id[AP_CONTAINER_ID_LEN + 1];
	char unit[AP_UNIT_MAX];
};

struct ap_cgroup_cache {
	struct ap_htab tab;
	uint64_t failures;
};

struct ap_cgroup_cache *ap_cgroup_cache_new(void)
{
	return calloc(1, sizeof(struct ap_cgroup_cache));
}

static bool drop_all(struct ap_hnode *n, void *ctx)
{
	free(AP_CONTAINER_OF(n, struct entry, node));
	return true;
}

void ap_cgroup_cache_free(struct ap_cgroup_cache *c)
{
	if (!c)
		return;
	ap_htab_sweep(&c->tab, drop_all, NULL);
	ap_htab_release(&c->tab);
	free(c);
}

static struct entry *find(const struct ap_cgroup_cache *c, uint32_t pid)
{
	for (struct ap_hnode *n = ap_htab_first(&c->tab, ap_hash_mix64(pid)); n;
	     n = ap_htab_next(n)) {
		struct entry *e = AP_CONTAINER_OF(n, struct entry, node);

		if (e->pid == pid)
			return e;
	}
	return NULL;
}

void ap_cgroup_cache_observe(struct ap_cgroup_cache *c, uint32_t pid)
{
	struct entry *e = find(c, pid);
	char path[4096];

	if (e && e->fresh) {
		e->seen = true;
		return;
	}
	if (!e) {
		e = calloc(1, sizeof(*e));
		if (!e)
			return;
		e->pid = pid;
		if (ap_htab_insert(&c->tab, &e->node, ap_hash_mix64(pid))) {
			free(e);
			return;
		}
	}
	e->seen = true;
	e->fresh = true; /* one try an interval, also when it fails */
	if (pid == 0 || ap_cgroup_read((int)pid, path, sizeof(path))) {
		if (pid)
			c->failures++;
		return; /* gone: what was read before stays */
	}
	ap_cgroup_parse(path, e->container_id, sizeof(e->container_id), e->unit, sizeof(e->unit));
}

void ap_cgroup_cache_get(struct ap_cgroup_cache *c, uint32_t pid, const char **container_id,
			 const char **unit)
{
	struct entry *e = find(c, pid);

	*container_id = e && e->container_id[0] ? e->container_id : NULL;
	*unit = e && e->unit[0] ? e->unit : NULL;
}

static bool drop_unseen(struct ap_hnode *n, void *ctx)
{
	struct entry *e = AP_CONTAINER_OF(n, struct entry, node);

	if (!e->seen) {
		free(e);
		return true;
	}
	e->seen = false;
	e->fresh = false;
	return false;
}

void ap_cgroup_cache_rotate(struct ap_cgroup_cache *c)
{
	ap_htab_sweep(&c->tab, drop_unseen, NULL);
}

uint64_t ap_cgroup_cache_failures(const struct ap_cgroup_cache *c) { return c->failures; }
