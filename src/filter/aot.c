// SPDX-License-Identifier: MIT
/*
 * The ahead-of-time engine: wasm2c translates the (instrumented) module to C, the system C
 * compiler builds it with aot_runtime.c into a shared object, and each filter instance loads
 * a private copy of that object (memfd + dlopen), so no two instances share runtime state.
 *
 * Compiled objects are cached by content: <cache>/<hash>/{module.so,module.wasm,key}. A hit
 * requires the stored module and key to equal the current ones byte for byte, and the cache
 * directory and every parent to be safe from other users (the object is native code run by
 * the agent, usually as root). Without a safe cache, objects are built in a private temporary
 * directory and deleted after loading.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "aot_sources.h" /* generated: ap_aot_runtime_c, ap_aot_glue_h, ap_aot_wasm_rt_h */
#include "engine.h"
/* header-only (static inline): the filter library stays standalone, linking nothing of the
 * core */
#include "lib/hash.h"

extern char **environ;

#define TOOL_TIMEOUT_MS 60000
#define BIG_MODULE (512u << 10) /* compiled with -O1: gcc -O2 time grows fast with size */

static const char *const sys_wasm_rt[] = { "/usr/include/wasm-rt.h", "/usr/src/wasm2c/wasm-rt.h" };

struct aot_inst {
	void *dl;
	int fd; /* the memfd dlopen'ed as /proc/self/fd/N: open while loaded, see load_object */
	const struct ap_aot_api *api;
	void *inst;
};

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* dir/name into out; -ENAMETOOLONG when it does not fit. */
static int join(char *out, size_t len, const char *dir, const char *name)
{
	int n = snprintf(out, len, "%s/%s", dir, name);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* Absolute path of an executable: as given when it contains '/', else from PATH. */
static int find_program(const char *prog, char *out, size_t len)
{
	const char *path = getenv("PATH");
	char dirs[4096];

	if (strchr(prog, '/')) {
		if (access(prog, X_OK) != 0)
			return -ENOENT;
		snprintf(out, len, "%s", prog);
		return 0;
	}
	snprintf(dirs, sizeof(dirs), "%s", path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
	for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d;
	     d = strtok_r(NULL, ":", &save)) {
		struct stat st;
		if (d[0] != '/')
			continue; /* never run a compiler from a relative PATH entry */
		if ((size_t)snprintf(out, len, "%s/%s", d, prog) >= len)
			continue;
		if (stat(out, &st) == 0 && S_ISREG(st.st_mode) && access(out, X_OK) == 0)
			return 0;
	}
	return -ENOENT;
}

static const char *find_wasm_rt(void)
{
	for (size_t i = 0; i < sizeof(sys_wasm_rt) / sizeof(sys_wasm_rt[0]); i++)
		if (access(sys_wasm_rt[i], R_OK) == 0)
			return sys_wasm_rt[i];
	return NULL;
}

static const char *default_cc(const char *cc)
{
	const char *env = getenv("CC");
	return cc && *cc ? cc : env && *env ? env : "cc";
}

bool ap_engine_aot_available(const char *cc, const char *wasm2c, char *why, size_t whylen)
{
	char path[PATH_MAX];
	const char *tool = wasm2c && *wasm2c ? wasm2c : "wasm2c";
	if (find_program(tool, path, sizeof(path))) {
		snprintf(why, whylen, "%s not found (Debian package wabt)", tool);
		return false;
	}
	if (!find_wasm_rt()) {
		snprintf(why, whylen, "wasm-rt.h not found (Debian package wabt)");
		return false;
	}
	tool = default_cc(cc);
	if (find_program(tool, path, sizeof(path))) {
		snprintf(why, whylen, "C compiler '%s' not found", tool);
		return false;
	}
	return true;
}

/* ---- files ---- */

static int write_file(const char *dir, const char *name, const void *data, size_t len)
{
	char path[PATH_MAX];
	const char *p = data;
	int fd, ret = 0;

	if (join(path, sizeof(path), dir, name))
		return -ENAMETOOLONG;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			break;
		}
		p += n;
		len -= (size_t)n;
	}
	if (close(fd) && !ret)
		ret = -errno;
	return ret;
}

/* Whole file into a malloc'd buffer (NUL-terminated); NULL with errno on failure. */
static char *read_file(const char *path, size_t *len, size_t max)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	char *buf = NULL;
	size_t got = 0;

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || (size_t)st.st_size > max) {
		close(fd);
		errno = EINVAL;
		return NULL;
	}
	buf = malloc((size_t)st.st_size + 1);
	while (buf && got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			free(buf);
			buf = NULL;
			break;
		}
		got += (size_t)n;
	}
	close(fd);
	if (buf) {
		buf[got] = '\0';
		*len = got;
	}
	return buf;
}

static bool file_equals(const char *path, const void *data, size_t len)
{
	size_t got;
	char *buf = read_file(path, &got, len + 1);
	bool eq = buf && got == len && memcmp(buf, data, len) == 0;
	free(buf);
	return eq;
}

/* Remove the plain files of a directory we created, then the directory. */
static void remove_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[PATH_MAX];

	if (d) {
		while ((e = readdir(d)) != NULL) {
			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
				continue;
			if (join(path, sizeof(path), dir, e->d_name) == 0)
				unlink(path);
		}
		closedir(d);
	}
	rmdir(dir);
}

/* ---- the cache directory ---- */

static int mkdirs(const char *path)
{
	char buf[PATH_MAX];
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0700) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0700) && errno != EEXIST)
		return -errno;
	return 0;
}

/* The directory is ours (0700) and no parent is writable by another user (sticky parents
 * like /tmp excepted). */
static bool dir_is_private(const char *path)
{
	char real[PATH_MAX], *slash;
	struct stat st;
	uid_t me = geteuid();

	if (!realpath(path, real) || lstat(real, &st) || !S_ISDIR(st.st_mode) || st.st_uid != me ||
	    (st.st_mode & 077))
		return false;
	while ((slash = strrchr(real, '/')) != NULL) {
		if (slash == real)
			slash[1] = '\0';
		else
			*slash = '\0';
		if (lstat(real, &st) || !S_ISDIR(st.st_mode))
			return false;
		if (st.st_uid != 0 && st.st_uid != me)
			return false;
		if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX))
			return false;
		if (strcmp(real, "/") == 0)
			break;
	}
	return true;
}

static int cache_dir(const char *want, char *out, size_t len)
{
	const char *env = getenv("APERTURE_CACHE_DIR"), *xdg = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");

	if (want && *want)
		snprintf(out, len, "%s", want);
	else if (env && *env)
		snprintf(out, len, "%s", env);
	else if (geteuid() == 0)
		snprintf(out, len, "/var/cache/aperture/filters");
	else if (xdg && xdg[0] == '/')
		snprintf(out, len, "%s/aperture/filters", xdg);
	else if (home && home[0] == '/')
		snprintf(out, len, "%s/.cache/aperture/filters", home);
	else
		return -ENOENT;
	if (out[0] != '/' || mkdirs(out) || !dir_is_private(out))
		return -EPERM;
	return 0;
}

/* ---- building ---- */

static void stat_str(const char *path, char *out, size_t len)
{
	struct stat st;
	if (stat(path, &st) == 0)
		snprintf(out, len, "%s %lld %lld", path, (long long)st.st_mtime,
			 (long long)st.st_size);
	else
		snprintf(out, len, "%s ?", path);
}

/* Run argv[0] (an absolute path) in `dir` with output to dir/tool.log. */
static int run_tool(const char *dir, char *const argv[], char *err, size_t errlen)
{
	posix_spawn_file_actions_t fa;
	char log[PATH_MAX];
	pid_t pid;
	int status = 0, ret;
	double deadline = now_ms() + TOOL_TIMEOUT_MS;

	if (join(log, sizeof(log), dir, "tool.log"))
		return -ENAMETOOLONG;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addchdir_np(&fa, dir);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	ret = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (ret) {
		snprintf(err, errlen, "cannot run %s: %s", argv[0], strerror(ret));
		return -ret;
	}
	for (;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			break;
		if (w < 0 && errno != EINTR) {
			snprintf(err, errlen, "waiting for %s: %s", argv[0], strerror(errno));
			return -ECHILD;
		}
		if (now_ms() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			snprintf(err, errlen, "%s timed out", argv[0]);
			return -ETIMEDOUT;
		}
		nanosleep(&(struct timespec){ 0, 5000000 }, NULL);
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	{
		size_t n = 0;
		char *out = read_file(log, &n, 1 << 20);
		char *line = out ? strstr(out, "error") : NULL, *end;
		if (!line)
			line = out;
		if (line && (end = strchr(line, '\n')) != NULL)
			*end = '\0';
		snprintf(err, errlen, "%s failed: %s", strrchr(argv[0], '/') + 1,
			 line && *line ? line : "no output");
		free(out);
	}
	return -EINVAL;
}

/* Largest frame reported by -fstack-usage for the generated code; -1 when unbounded. */
static long max_frame(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	long max = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL) {
		size_t l = strlen(e->d_name), n;
		char path[PATH_MAX], *text, *line, *save = NULL;
		if (l < 4 || strcmp(e->d_name + l - 3, ".su") != 0)
			continue;
		if (join(path, sizeof(path), dir, e->d_name))
			continue;
		text = read_file(path, &n, 16 << 20);
		for (line = text ? strtok_r(text, "\n", &save) : NULL; line;
		     line = strtok_r(NULL, "\n", &save)) {
			char *tab = strchr(line, '\t');
			long v = tab ? strtol(tab + 1, NULL, 10) : 0;
			if (tab && strstr(tab, "dynamic") && !strstr(tab, "bounded"))
				max = -1;
			if (max >= 0 && v > max)
				max = v;
		}
		free(text);
		if (max < 0)
			break;
	}
	closedir(d);
	return max;
}

struct build {
	const char *cc, *wasm2c, *wasm_rt;
	char key[3 * PATH_MAX + 512];
	unsigned backstop;
};

static int build_object(const char *dir, struct ap_engine_load *ld, const struct build *b,
			char *err, size_t errlen)
{
	char def_rt[PATH_MAX + 32], def_depth[64];
	char *w2c_argv[] = { (char *)b->wasm2c, "module.wasm", "-n", "apf", "-o", "apf.c", NULL };
	char *cc_argv[32];
	int n = 0, ret;
	long frame;

	ret = write_file(dir, "module.wasm", ld->wasm, ld->len);
	if (!ret)
		ret = write_file(dir, "aot_runtime.c", ap_aot_runtime_c, strlen(ap_aot_runtime_c));
	if (!ret)
		ret = write_file(dir, "aot_glue.h", ap_aot_glue_h, strlen(ap_aot_glue_h));
	if (!ret)
		ret = write_file(dir, "wasm-rt.h", ap_aot_wasm_rt_h, strlen(ap_aot_wasm_rt_h));
	if (!ret)
		ret = write_file(dir, "key", b->key, strlen(b->key));
	if (ret) {
		snprintf(err, errlen, "cannot write to %s: %s", dir, strerror(-ret));
		return ret;
	}
	ret = run_tool(dir, w2c_argv, err, errlen);
	if (ret)
		return ret;
	snprintf(def_rt, sizeof(def_rt), "-DAP_SYS_WASM_RT=\"%s\"", b->wasm_rt);
	snprintf(def_depth, sizeof(def_depth), "-DWASM_RT_MAX_CALL_STACK_DEPTH=%u", b->backstop);
	cc_argv[n++] = (char *)b->cc;
	cc_argv[n++] = "-std=gnu11";
	cc_argv[n++] = ld->len > BIG_MODULE ? "-O1" : "-O2";
	cc_argv[n++] = "-fPIC";
	cc_argv[n++] = "-shared";
	cc_argv[n++] = "-fvisibility=hidden";
	cc_argv[n++] = "-fstack-usage";
	cc_argv[n++] = "-w";
	cc_argv[n++] = "-DWASM_RT_MEMCHECK_SIGNAL_HANDLER=0";
	cc_argv[n++] = def_depth;
	cc_argv[n++] = def_rt;
	if (ld->nhostfns)
		cc_argv[n++] = "-DAP_HAS_IMPORTS";
	if (ld->exports & (1u << AP_EXPORT_INIT))
		cc_argv[n++] = "-DAP_HAS_INIT";
	if (ld->exports & (1u << AP_EXPORT_INITIALIZE))
		cc_argv[n++] = "-DAP_HAS_INITIALIZE";
	cc_argv[n++] = "-I.";
	cc_argv[n++] = "-o";
	cc_argv[n++] = "module.so";
	cc_argv[n++] = "aot_runtime.c"; /* includes apf.c */
	cc_argv[n++] = "-lm";
	cc_argv[n] = NULL;
	ret = run_tool(dir, cc_argv, err, errlen);
	if (ret)
		return ret;
	/* A wasm call is at most two C frames (wrapper + body) per counted level. */
	frame = max_frame(dir);
	if (frame < 0) {
		snprintf(err, errlen, "compiled code may need an unbounded native stack");
		return -E2BIG;
	}
	if ((uint64_t)frame * (b->backstop + 4) > ld->max_stack_bytes) {
		snprintf(err, errlen,
			 "compiled code may need %llu KiB of native stack (largest frame %ld bytes "
			 "x %u calls), above the limit of %llu KiB",
			 (unsigned long long)frame * (b->backstop + 4) / 1024, frame,
			 b->backstop + 4, (unsigned long long)(ld->max_stack_bytes / 1024));
		return -E2BIG;
	}
	return 0;
}

/* dlopen a private copy of dir/module.so: a memfd, so instances never share globals. The
 * memfd stays open while the object is loaded: glibc matches dlopen paths by name, and a
 * reused descriptor number would otherwise hand back another instance's object. */
static int load_object(const char *dir, struct aot_inst *ai, char *err, size_t errlen)
{
	char path[PATH_MAX];
	size_t len;
	char *data;
	int fd, ret = 0;

	if (join(path, sizeof(path), dir, "module.so"))
		return -ENAMETOOLONG;
	data = read_file(path, &len, 256u << 20);
	if (!data) {
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		return -EIO;
	}
	fd = memfd_create("aperture-filter", MFD_CLOEXEC);
	if (fd < 0 || write(fd, data, len) != (ssize_t)len) {
		snprintf(err, errlen, "memfd: %s", strerror(errno));
		ret = -EIO;
		goto out;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ai->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!ai->dl) {
		snprintf(err, errlen, "dlopen: %s", dlerror());
		ret = -EINVAL;
		goto out;
	}
	ai->api = dlsym(ai->dl, AP_AOT_API_SYMBOL);
	if (!ai->api || ai->api->version != AP_AOT_API_VERSION) {
		snprintf(err, errlen, "compiled module has no matching %s", AP_AOT_API_SYMBOL);
		ret = -EINVAL;
	}
out:
	if (ret && ai->dl) {
		dlclose(ai->dl);
		ai->dl = NULL;
	}
	if (ret && fd >= 0)
		close(fd);
	if (!ret)
		ai->fd = fd;
	free(data);
	return ret;
}

static bool entry_matches(const char *entry, const struct ap_engine_load *ld, const char *key)
{
	char path[PATH_MAX + 64];
	if (!dir_is_private(entry))
		return false;
	snprintf(path, sizeof(path), "%s/module.wasm", entry);
	if (!file_equals(path, ld->wasm, ld->len))
		return false;
	snprintf(path, sizeof(path), "%s/key", entry);
	return file_equals(path, key, strlen(key));
}

/* Move the object, module and key of build directory tmp to the cache entry, atomically.
 * An entry already there that matches (a concurrent build) stays; a stale one is moved
 * aside first, so no reader sees a half-written entry. */
static void publish(const char *tmp, const char *entry, const struct ap_engine_load *ld,
		    const char *key)
{
	static const char *const keep[] = { "module.so", "module.wasm", "key" };
	char pub[PATH_MAX + 32], src[PATH_MAX + 64], dst[PATH_MAX + 64], trash[PATH_MAX + 32];

	if (snprintf(pub, sizeof(pub), "%s.new-XXXXXX", entry) >= (int)sizeof(pub) || !mkdtemp(pub))
		return;
	for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
		snprintf(src, sizeof(src), "%s/%s", tmp, keep[i]);
		snprintf(dst, sizeof(dst), "%s/%s", pub, keep[i]);
		if (rename(src, dst)) {
			remove_dir(pub);
			return;
		}
	}
	if (rename(pub, entry) == 0)
		return;
	if (!entry_matches(entry, ld, key)) {
		if (snprintf(trash, sizeof(trash), "%s.old-XXXXXX", entry) < (int)sizeof(trash) &&
		    mkdtemp(trash)) {
			if (rename(entry, trash) == 0) {
				remove_dir(trash);
				if (rename(pub, entry) == 0)
					return;
			} else {
				rmdir(trash);
			}
		}
	}
	remove_dir(pub);
}

static int aot_create(struct ap_engine_load *ld, void **out, char *err, size_t errlen)
{
	char cc[PATH_MAX], w2c[PATH_MAX], dir[PATH_MAX] = "", entry[PATH_MAX + 32],
					  tmp[PATH_MAX + 32];
	char s1[PATH_MAX + 64], s2[PATH_MAX + 64];
	struct build b = { 0 };
	struct aot_inst *ai;
	bool cached = false, have_cache;
	double t0 = now_ms();
	uint64_t h;
	int ret;

	*out = NULL;
	if (find_program(default_cc(ld->cc), cc, sizeof(cc)) ||
	    find_program(ld->wasm2c && *ld->wasm2c ? ld->wasm2c : "wasm2c", w2c, sizeof(w2c)) ||
	    !(b.wasm_rt = find_wasm_rt())) {
		ap_engine_aot_available(ld->cc, ld->wasm2c, err, errlen);
		return -ENOENT;
	}
	b.cc = cc;
	b.wasm2c = w2c;
	b.backstop = 2 * ld->max_call_depth + 16;
	stat_str(cc, s1, sizeof(s1));
	stat_str(w2c, s2, sizeof(s2));
	if (snprintf(b.key, sizeof(b.key),
		     "aperture aot %d\ncc %s\nwasm2c %s\nruntime %s\nbackstop %u\nstack %llu\n"
		     "imports %u exports %u\n",
		     AP_AOT_API_VERSION, s1, s2, b.wasm_rt, b.backstop,
		     (unsigned long long)ld->max_stack_bytes, ld->nhostfns,
		     ld->exports) >= (int)sizeof(b.key)) {
		snprintf(err, errlen, "tool paths too long");
		return -ENAMETOOLONG;
	}
	h = ap_hash_bytes(b.key, strlen(b.key), 0);
	h = ap_hash_bytes(ap_aot_runtime_c, strlen(ap_aot_runtime_c), h);
	h = ap_hash_bytes(ap_aot_glue_h, strlen(ap_aot_glue_h), h);
	h = ap_hash_bytes(ap_aot_wasm_rt_h, strlen(ap_aot_wasm_rt_h), h);
	h = ap_hash_bytes(ld->wasm, ld->len, h);

	ai = calloc(1, sizeof(*ai));
	if (!ai)
		return -ENOMEM;
	ai->fd = -1;
	have_cache = cache_dir(ld->cache_dir, dir, sizeof(dir)) == 0;
	if (have_cache) {
		snprintf(entry, sizeof(entry), "%s/%016llx", dir, (unsigned long long)h);
		/* a hit must still load: an entry can vanish under a concurrent replacement */
		if (entry_matches(entry, ld, b.key) && load_object(entry, ai, err, errlen) == 0) {
			cached = true;
			goto loaded;
		}
		snprintf(tmp, sizeof(tmp), "%s/.build-XXXXXX", dir);
	} else {
		snprintf(ld->note, sizeof(ld->note),
			 "not cached: %.120s is missing or not private to this user (mode 0700)",
			 dir[0] ? dir : "no cache directory");
		snprintf(tmp, sizeof(tmp), "/tmp/aperture-aot-XXXXXX");
	}
	if (!mkdtemp(tmp)) {
		ret = -errno;
		snprintf(err, errlen, "cannot create a build directory %s: %s", tmp,
			 strerror(errno));
		goto fail;
	}
	ret = build_object(tmp, ld, &b, err, errlen);
	if (!ret)
		ret = load_object(tmp, ai, err, errlen);
	if (!ret && have_cache)
		publish(tmp, entry, ld, b.key);
	remove_dir(tmp); /* what publish() did not move */
	if (ret)
		goto fail;
loaded:
	if (ai->api->exports != ld->exports) {
		snprintf(err, errlen, "compiled module exports do not match");
		ret = -EINVAL;
		goto fail;
	}
	ai->inst = ai->api->create(ld->host, ld->host_ctx, err, errlen);
	if (!ai->inst) {
		ret = -EINVAL;
		goto fail;
	}
	ld->cached = cached;
	ld->compile_ms = now_ms() - t0;
	*out = ai;
	return 0;
fail:
	if (ai->dl)
		dlclose(ai->dl);
	if (ai->fd >= 0)
		close(ai->fd);
	free(ai);
	return ret;
}

static bool aot_has_export(void *inst, int id)
{
	return ((struct aot_inst *)inst)->api->exports & (1u << id);
}

static int aot_call(void *inst, struct ap_engine_call *c)
{
	struct aot_inst *ai = inst;
	return ai->api->call(ai->inst, c);
}

static void aot_direct(void *inst, int (**fn)(void *, struct ap_engine_call *), void **ctx)
{
	struct aot_inst *ai = inst;
	*fn = ai->api->call;
	*ctx = ai->inst;
}

static uint8_t *aot_memory(void *inst, uint64_t *size)
{
	struct aot_inst *ai = inst;
	return ai->api->memory(ai->inst, size);
}

static void aot_destroy(void *inst)
{
	struct aot_inst *ai = inst;
	if (!ai)
		return;
	if (ai->inst)
		ai->api->destroy(ai->inst);
	if (ai->dl)
		dlclose(ai->dl);
	if (ai->fd >= 0)
		close(ai->fd);
	free(ai);
}

const struct ap_engine_ops ap_engine_aot = {
	"aot", aot_create, aot_has_export, aot_call, aot_direct, aot_memory, aot_destroy,
};
