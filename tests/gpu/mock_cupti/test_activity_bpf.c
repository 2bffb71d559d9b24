/* SPDX-License-Identifier: MIT */
/*
 * Privileged test of the activity loader (src/gpu/activity.c + src/bpf/gpu_activity.bpf.c)
 * against the real injection library (USDT build) in the mock-CUPTI harness:
 *
 *  1. recognition: ap_gpu_activity_is_inject_lib on the library, on a descriptor of its
 *     mapping (/proc/PID/map_files), and not on the mock libcupti or a non-ELF file;
 *  2. per-pid attach through /proc/PID/map_files while the harness waits, then every
 *     correlation probe and every activity record the harness played must arrive exactly
 *     once with every field (pid, tid, cbid, times on CLOCK_MONOTONIC, shapes, bytes, the
 *     kernel's name string), nothing else, no drops;
 *  3. all-pids attach by file before the process starts, with a rate limit: the probes that
 *     fired arrive, and the library's drop counter comes through its stats probe.
 *
 * The loader feeds the real model (src/gpu/gpu_model.h). The two model entry points are
 * wrapped at link time (-Wl,--wrap) so the test also sees exactly what the loader hands
 * over. In step 2, each correlation that reaches the model is followed by the call the
 * uprobe collector would have reported for it (the launch, from the harness's log: its
 * thread, entry and return times, kernel, a CPU stack). The model must then join every
 * kernel record to its launch: each kernel row of a launched host stub carries the GPU time
 * of exactly its records, and no correlation stays unmatched.
 *
 *   test_activity_bpf HARNESS INJECT_LIB MOCK_LIBCUPTI
 *   test_activity_bpf --bench launch|records N attach|none HARNESS INJECT_LIB
 *
 * --bench: run the harness's --bench/--bench-records N with the environment as it is
 * (APERTURE_CUPTI_RATE, APERTURE_CUPTI_BATCH; CUDA_INJECTION64_PATH is set to INJECT_LIB
 * unless it is "-"), with the loader attached or not, and print its ns per launch/record
 * (bench/cupti_overhead.sh).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gpu/activity.h"
#include "gpu/gpu_model.h"
#include "lib/json_parse.h"
#include "lib/profile.h"

#define MAXN 200000

static int fails;
#define FAIL(...)                                  \
	do {                                       \
		fprintf(stderr, "FAIL: " __VA_ARGS__); \
		fputc('\n', stderr);               \
		fails++;                           \
	} while (0)

/* ---- what the loader hands the model (wrapped) ---- */

struct got_call {
	struct ap_gpu_call c;
	char api[64];
	int matched;
};
struct got_act {
	struct ap_gpu_activity a;
	char name[256];
	int matched;
};
static struct got_call *calls;
static size_t ncalls;
static struct got_act *acts;
static size_t nacts;

/* The harness's calls (its log's C lines), for the join: what the collector would report. */
struct log_call {
	uint32_t corr, cbid, domain, tid;
	uint64_t t_enter, t_exit;
	char kernel[128];
};
static struct log_call *log_calls;
static size_t nlog_calls;
static int log_pid;
static uint32_t launch_stack; /* main <- run_add_one, leaf first */

int __real_ap_gpu_model_add_call(struct ap_gpu_model *m, const struct ap_gpu_call *c);
int __real_ap_gpu_model_add_activity(struct ap_gpu_model *m, const struct ap_gpu_activity *a);

static uint64_t kernel_func(const char *name)
{
	return !strcmp(name, "_Z7add_onePii") ? 0x1000 : 0x2000;
}

/* The call the uprobes saw around correlation `corr` (launch or copy), as the collector
 * would decode it. */
static int add_probed_call(struct ap_gpu_model *m, uint32_t pid, uint64_t corr)
{
	struct ap_gpu_call c = { 0 };
	const struct log_call *l = NULL;
	size_t i;

	if ((int)pid != log_pid)
		return 0;
	for (i = 0; i < nlog_calls; i++)
		if (log_calls[i].corr == corr) {
			l = &log_calls[i];
			break;
		}
	if (!l)
		return 0;
	c.pid = pid;
	c.tid = l->tid;
	c.ts_ns = l->t_enter;
	c.dur_ns = l->t_exit - l->t_enter;
	c.stack = launch_stack;
	c.ret = 0;
	if (strcmp(l->kernel, "-")) {
		c.kind = AP_GPU_CALL_LAUNCH;
		c.api = l->domain == 1 ? "cuLaunchKernel" : "cudaLaunchKernel";
		c.flags = l->domain == 1 ? AP_GPU_F_DRIVER_API : 0;
		c.func = kernel_func(l->kernel);
		c.name = l->kernel;
		c.grid[0] = c.grid[1] = c.grid[2] = 1;
		c.block[0] = c.block[1] = c.block[2] = 1;
	} else {
		/* the copy probe group covers memcpy and memset (docs/gpu.md) */
		c.kind = AP_GPU_CALL_COPY;
		c.api = l->cbid == 31 ? "cudaMemcpy" : "cudaMemset";
	}
	return __real_ap_gpu_model_add_call(m, &c);
}

int __wrap_ap_gpu_model_add_call(struct ap_gpu_model *m, const struct ap_gpu_call *c)
{
	int err;

	if (ncalls >= MAXN)
		return -ENOSPC;
	calls[ncalls].c = *c;
	snprintf(calls[ncalls].api, sizeof(calls[ncalls].api), "%s", c->api ? c->api : "");
	calls[ncalls].c.api = NULL;
	ncalls++;
	err = __real_ap_gpu_model_add_call(m, c);
	if (!err && c->kind == AP_GPU_CALL_CORRELATION)
		err = add_probed_call(m, c->pid, c->correlation);
	return err;
}

int __wrap_ap_gpu_model_add_activity(struct ap_gpu_model *m, const struct ap_gpu_activity *a)
{
	if (nacts >= MAXN)
		return -ENOSPC;
	acts[nacts].a = *a;
	snprintf(acts[nacts].name, sizeof(acts[nacts].name), "%s", a->name ? a->name : "-");
	acts[nacts].a.name = NULL;
	nacts++;
	return __real_ap_gpu_model_add_activity(m, a);
}

/* ---- helpers ---- */

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct child {
	pid_t pid;
	FILE *in, *out;
};

static int spawn(struct child *ch, const char *harness, const char *lib, const char *log,
		 const char *rate, const char *burst)
{
	int pin[2], pout[2];

	if (pipe2(pin, O_CLOEXEC) || pipe2(pout, O_CLOEXEC))
		return -1;
	ch->pid = fork();
	if (ch->pid < 0)
		return -1;
	if (ch->pid == 0) {
		dup2(pin[0], 0);
		dup2(pout[1], 1);
		setenv("CUDA_INJECTION64_PATH", lib, 1);
		setenv("APERTURE_CUPTI_RATE", rate, 1);
		setenv("APERTURE_CUPTI_BURST", burst, 1);
		setenv("APERTURE_CUPTI_FLUSH_MS", "50", 1);
		execl(harness, harness, "--wait", "--threads", "4", "--launches", "150", "--log",
		      log, (char *)NULL);
		_exit(127);
	}
	close(pin[0]);
	close(pout[1]);
	ch->in = fdopen(pin[1], "w");
	ch->out = fdopen(pout[0], "r");
	return ch->in && ch->out ? 0 : -1;
}

/* "/proc/PID/map_files/START-END" of the mapping of `lib` in pid */
static int find_mapping(pid_t pid, const char *lib, char *out, size_t outlen)
{
	char path[64], line[4096], real[4096];
	FILE *f;
	int found = -1;

	if (!realpath(lib, real))
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char *p = strchr(line, '/');
		unsigned long lo, hi;

		if (!p)
			continue;
		p[strcspn(p, "\n")] = '\0';
		if (strcmp(p, real) || sscanf(line, "%lx-%lx", &lo, &hi) != 2)
			continue;
		snprintf(out, outlen, "/proc/%d/map_files/%lx-%lx", pid, lo, hi);
		found = 0;
		break;
	}
	fclose(f);
	return found;
}

static struct ap_gpu_model *model;
static int load_log(const char *log);

/* Consume until the child exits, then a little longer for its exit stats. With
 * consume_after, nothing is consumed before it exited (the ring buffer holds it all), so
 * that its log is there for the join when the events reach the model. */
static int run_until_exit(struct ap_gpu_activity_src *s, struct child *ch, const char *log)
{
	int ep = epoll_create1(EPOLL_CLOEXEC), status = 0, err;
	struct epoll_event ev = { .events = EPOLLIN }, out;
	uint64_t deadline = mono_ns() + 30000000000ull, exited_at = 0;

	epoll_ctl(ep, EPOLL_CTL_ADD, ap_gpu_activity_poll_fd(s), &ev);
	while (mono_ns() < deadline) {
		epoll_wait(ep, &out, 1, 50);
		if (log && !exited_at) {
			if (waitpid(ch->pid, &status, WNOHANG) != ch->pid)
				continue;
			exited_at = mono_ns();
			if (load_log(log))
				break;
		}
		err = ap_gpu_activity_consume(s, model);
		if (err) {
			FAIL("consume: %s", strerror(-err));
			break;
		}
		if (!exited_at && waitpid(ch->pid, &status, WNOHANG) == ch->pid)
			exited_at = mono_ns();
		if (exited_at && mono_ns() - exited_at > 300000000ull)
			break;
	}
	close(ep);
	if (!exited_at) {
		kill(ch->pid, SIGKILL);
		waitpid(ch->pid, &status, 0);
		FAIL("harness did not finish in 30 s");
		return -1;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		FAIL("harness exited with status %#x", status);
		return -1;
	}
	return 0;
}

/* The C lines of the harness's log, for add_probed_call. */
static int load_log(const char *log)
{
	char line[1024];
	FILE *f = fopen(log, "r");
	int offset_clock;

	nlog_calls = 0;
	if (!f) {
		FAIL("no harness log %s", log);
		return -1;
	}
	if (!fgets(line, sizeof(line), f) ||
	    sscanf(line, "pid %d offset_clock %d", &log_pid, &offset_clock) != 2) {
		fclose(f);
		FAIL("bad log header");
		return -1;
	}
	while (fgets(line, sizeof(line), f) && nlog_calls < MAXN) {
		struct log_call *l = &log_calls[nlog_calls];

		if (sscanf(line, "C %u %u %u %u %" SCNu64 " %" SCNu64 " %127s", &l->corr, &l->cbid,
			   &l->domain, &l->tid, &l->t_enter, &l->t_exit, l->kernel) == 7)
			nlog_calls++;
	}
	fclose(f);
	return 0;
}

static uint64_t jnum(const struct ap_json *j, const char *key)
{
	uint64_t v = UINT64_MAX;

	if (!j || ap_json_u64(ap_json_get(j, key), &v))
		return UINT64_MAX;
	return v;
}

/* The join, through the model's JSON: every kernel record's GPU time on its launch's kernel
 * row (the host stub the launch named), none elsewhere. */
static void check_join(const char *logpath)
{
	struct {
		const char *mangled;
		uint64_t func, launches, records, total;
	} k[2] = { { "_Z7add_onePii", 0x1000, 0, 0, 0 },
		   { "_ZN11aperture_ns5scaleIfEEvPT_S1_i", 0x2000, 0, 0, 0 } };
	char *buf = NULL, err[256], line[1024], name[512];
	const struct ap_json *gpu, *kernels, *st;
	struct ap_json *root;
	size_t len = 0, i, j, ncorr = 0;
	FILE *f;

	for (i = 0; i < nlog_calls; i++) {
		if (strcmp(log_calls[i].kernel, "-"))
			for (j = 0; j < 2; j++)
				k[j].launches += !strcmp(log_calls[i].kernel, k[j].mangled);
		ncorr++;
	}
	f = fopen(logpath, "r");
	while (f && fgets(line, sizeof(line), f)) {
		unsigned corr, kind;
		uint64_t start, end;

		if (sscanf(line,
			   "R %u %u %" SCNu64 " %" SCNu64 " %*u %*u %*u %*u %*u %*u %*u %*u %*u %*u %*u %*u "
			   "%511s",
			   &corr, &kind, &start, &end, name) == 5 &&
		    kind == AP_GPU_ACT_KERNEL)
			for (j = 0; j < 2; j++)
				if (!strcmp(name, k[j].mangled)) {
					k[j].records++;
					k[j].total += end - start;
				}
	}
	if (f)
		fclose(f);

	if (ap_gpu_model_finish(model)) {
		FAIL("ap_gpu_model_finish");
		return;
	}
	f = open_memstream(&buf, &len);
	if (!f || ap_gpu_model_write_json(model, f) || fclose(f)) {
		FAIL("ap_gpu_model_write_json");
		free(buf);
		return;
	}
	root = ap_json_parse(buf, len, err, sizeof(err));
	free(buf);
	if (!root) {
		FAIL("model JSON: %s", err);
		return;
	}
	gpu = ap_json_get(root, "gpu");
	kernels = ap_json_get(gpu, "kernels");
	st = ap_json_get(gpu, "stats");
	if (!kernels || kernels->type != AP_JSON_ARRAY || !st) {
		FAIL("model JSON without gpu.kernels/stats");
		ap_json_free(root);
		return;
	}
	for (j = 0; j < 2; j++) {
		int rows = 0;

		for (i = 0; i < kernels->len; i++) {
			const struct ap_json *r = &kernels->items[i];
			const struct ap_json *fn = ap_json_get(r, "func");
			uint64_t func = 0;

			if ((int)jnum(r, "pid") != log_pid)
				continue;
			if (!fn || fn->type == AP_JSON_NULL) {
				FAIL("GPU time on a kernel row without a launch: %s",
				     ap_json_get(r, "name") ? ap_json_get(r, "name")->str : "?");
				continue;
			}
			if (ap_json_u64(fn, &func) || func != k[j].func)
				continue;
			rows++;
			if (jnum(r, "launches") != k[j].launches ||
			    jnum(ap_json_get(r, "gpu_time_ns"), "records") != k[j].records ||
			    jnum(ap_json_get(r, "gpu_time_ns"), "total") != k[j].total)
				FAIL("kernel %s: %" PRIu64 " launches, %" PRIu64 " records, %" PRIu64
				     " ns; expected %" PRIu64 ", %" PRIu64 ", %" PRIu64,
				     k[j].mangled, jnum(r, "launches"),
				     jnum(ap_json_get(r, "gpu_time_ns"), "records"),
				     jnum(ap_json_get(r, "gpu_time_ns"), "total"), k[j].launches,
				     k[j].records, k[j].total);
			else
				printf("join: %s: %" PRIu64 " launches, %" PRIu64
				       " kernel records, %" PRIu64 " ns of GPU time on its row\n",
				       k[j].mangled, k[j].launches, k[j].records, k[j].total);
		}
		if (rows != 1 || !k[j].records)
			FAIL("kernel %s: %d rows, %" PRIu64 " records expected", k[j].mangled, rows,
			     k[j].records);
	}
	if (jnum(st, "correlations_joined") != ncorr || jnum(st, "correlations_unmatched") ||
	    jnum(st, "correlations_orphaned") || jnum(st, "correlations_expired"))
		FAIL("model stats: joined %" PRIu64 " of %zu, unmatched %" PRIu64 ", orphaned %" PRIu64
		     ", expired %" PRIu64,
		     jnum(st, "correlations_joined"), ncorr, jnum(st, "correlations_unmatched"),
		     jnum(st, "correlations_orphaned"), jnum(st, "correlations_expired"));
	ap_json_free(root);
}

/* Compare the harness's log with what arrived. rate_limited: the probes are a subset. */
static void compare(const char *log, uint64_t t0, uint64_t t1, int rate_limited,
		    size_t *ncorr_expected)
{
	char line[1024], name[512];
	FILE *f = fopen(log, "r");
	int pid = 0, offset_clock = 0;
	size_t nc = 0, nr = 0, i;

	if (!f) {
		FAIL("no harness log %s", log);
		return;
	}
	if (!fgets(line, sizeof(line), f) ||
	    sscanf(line, "pid %d offset_clock %d", &pid, &offset_clock) != 2) {
		FAIL("bad log header");
		fclose(f);
		return;
	}
	while (fgets(line, sizeof(line), f)) {
		unsigned corr, cbid, dom, tid, kind, dev, stream, g0, g1, g2, b0, b1, b2, dir, op;
		uint64_t start, end, bytes, addr;
		int hits = 0;

		if (sscanf(line, "C %u %u %u %u", &corr, &cbid, &dom, &tid) == 4) {
			nc++;
			for (i = 0; i < ncalls; i++) {
				struct got_call *g = &calls[i];

				if (g->c.correlation != corr || (int)g->c.pid != pid)
					continue;
				hits++;
				g->matched++;
				if (g->c.kind != AP_GPU_CALL_CORRELATION || g->c.cbid != cbid ||
				    g->c.tid != tid || !g->api[0] ||
				    (g->c.flags & AP_GPU_F_DRIVER_API) != (dom == 1 ? AP_GPU_F_DRIVER_API : 0) ||
				    g->c.ts_ns < t0 || g->c.ts_ns > t1)
					FAIL("correlation %u: kind %u cbid %u tid %u api '%s' ts %" PRIu64
					     "; expected cbid %u tid %u domain %u",
					     corr, g->c.kind, g->c.cbid, g->c.tid, g->api, g->c.ts_ns,
					     cbid, tid, dom);
			}
			if (hits > 1 || (!rate_limited && hits != 1))
				FAIL("correlation %u arrived %d times", corr, hits);
			continue;
		}
		if (sscanf(line,
			   "R %u %u %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64
			   " %u %u %u %u %u %u %u %u %u %u %511s",
			   &corr, &kind, &start, &end, &bytes, &addr, &dev, &stream, &g0, &g1, &g2,
			   &b0, &b1, &b2, &dir, &op, name) == 17) {
			nr++;
			for (i = 0; i < nacts; i++) {
				struct got_act *g = &acts[i];
				const struct ap_gpu_activity *a = &g->a;

				if (a->correlation != corr || a->kind != kind || (int)a->pid != pid)
					continue;
				hits++;
				g->matched++;
				if (a->start_ns != start || a->end_ns != end || a->bytes != bytes ||
				    a->device != dev || a->stream != stream || a->grid[0] != g0 ||
				    a->grid[1] != g1 || a->grid[2] != g2 || a->block[0] != b0 ||
				    a->block[1] != b1 || a->block[2] != b2 || a->copy_dir != dir ||
				    strcmp(g->name, name))
					FAIL("record corr %u kind %u differs: start %" PRIu64 " end %" PRIu64
					     " bytes %" PRIu64 " dev %u stream %u grid %u,%u,%u block %u,%u,%u"
					     " dir %u name %s",
					     corr, kind, a->start_ns, a->end_ns, a->bytes, a->device,
					     a->stream, a->grid[0], a->grid[1], a->grid[2], a->block[0],
					     a->block[1], a->block[2], a->copy_dir, g->name);
				/* GPU time on the agent's clock: within the run */
				if (a->start_ns < t0 || a->end_ns > t1 + 1000000)
					FAIL("record corr %u: %" PRIu64 " outside the run [%" PRIu64
					     ", %" PRIu64 "]",
					     corr, a->start_ns, t0, t1);
			}
			if (hits != 1)
				FAIL("record corr %u kind %u arrived %d times", corr, kind, hits);
		}
	}
	fclose(f);
	for (i = 0; i < ncalls; i++)
		if ((int)calls[i].c.pid == pid && !calls[i].matched)
			FAIL("unexpected correlation %" PRIu64, calls[i].c.correlation);
	for (i = 0; i < nacts; i++)
		if ((int)acts[i].a.pid == pid && !acts[i].matched)
			FAIL("unexpected record corr %" PRIu64, acts[i].a.correlation);
	if (!nc || !nr)
		FAIL("the harness played nothing (%zu calls, %zu records)", nc, nr);
	*ncorr_expected = nc;
	printf("pid %d: %zu correlations expected, %zu records expected\n", pid, nc, nr);
}

static int bench(char **argv)
{
	const char *what = argv[2], *n = argv[3], *harness = argv[5], *lib = argv[6];
	int attach = !strcmp(argv[4], "attach"), pin[2], pout[2], pid;
	struct ap_gpu_activity_src *s = NULL;
	char err[512], line[256], mapping[128];
	struct child ch;

	if (attach) {
		s = ap_gpu_activity_open(err, sizeof(err));
		if (!s) {
			fprintf(stderr, "%s\n", err);
			return 1;
		}
	}
	if (pipe2(pin, O_CLOEXEC) || pipe2(pout, O_CLOEXEC))
		return 2;
	ch.pid = fork();
	if (ch.pid == 0) {
		dup2(pin[0], 0);
		dup2(pout[1], 1);
		if (strcmp(lib, "-"))
			setenv("CUDA_INJECTION64_PATH", lib, 1);
		else
			unsetenv("CUDA_INJECTION64_PATH");
		execl(harness, harness, "--wait",
		      !strcmp(what, "records") ? "--bench-records" : "--bench", n, (char *)NULL);
		_exit(127);
	}
	close(pin[0]);
	close(pout[1]);
	ch.in = fdopen(pin[1], "w");
	ch.out = fdopen(pout[0], "r");
	if (!fgets(line, sizeof(line), ch.out) || sscanf(line, "ready %d", &pid) != 1)
		return 1;
	if (attach && find_mapping(pid, lib, mapping, sizeof(mapping)) == 0 &&
	    ap_gpu_activity_attach(s, pid, mapping, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	fputs("go\n", ch.in);
	fflush(ch.in);
	if (attach) {
		struct ap_gpu_activity_stats st;

		run_until_exit(s, &ch, NULL);
		ap_gpu_activity_get_stats(s, &st);
		fprintf(stderr, "loader: %" PRIu64 " correlations, %" PRIu64 " records, %" PRIu64
			" ring buffer drops, %" PRIu64 " dropped by the library\n",
			st.correlations, st.records, st.ringbuf_drops, st.lib_dropped);
	} else {
		waitpid(ch.pid, NULL, 0);
	}
	while (fgets(line, sizeof(line), ch.out))
		fputs(line, stdout);
	ap_gpu_activity_free(s);
	return fails ? 1 : 0;
}

int main(int argc, char **argv)
{
	const char *harness, *lib, *mock;
	char err[512], mapping[128], logpath[] = "/tmp/ap_cupti_logXXXXXX";
	struct ap_gpu_activity_src *s;
	struct ap_gpu_activity_stats st;
	struct ap_profile *prof;
	struct child ch;
	char line[64];
	size_t nexp = 0;
	uint64_t t0, t1;
	int fd, ret, pid;

	calls = calloc(MAXN, sizeof(*calls));
	acts = calloc(MAXN, sizeof(*acts));
	log_calls = calloc(MAXN, sizeof(*log_calls));
	prof = ap_profile_new();
	model = prof ? ap_gpu_model_new(prof, NULL) : NULL;
	if (!calls || !acts || !log_calls || !model)
		return 2;
	{
		uint32_t fr[2] = {
			ap_profile_add_named_frame(prof, "run_add_one", "cupti_harness", AP_FRAME_USER),
			ap_profile_add_named_frame(prof, "main", "cupti_harness", AP_FRAME_USER),
		};

		launch_stack = ap_profile_add_stack(prof, fr, 2);
	}
	if (argc == 7 && !strcmp(argv[1], "--bench"))
		return bench(argv);
	if (argc != 4) {
		fprintf(stderr, "usage: %s HARNESS INJECT_LIB MOCK_LIBCUPTI\n", argv[0]);
		return 2;
	}
	harness = argv[1];
	lib = argv[2];
	mock = argv[3];
	if (geteuid() != 0) {
		printf("SKIP: needs root for BPF\n");
		return 77;
	}

	/* 1. recognition */
	fd = open(lib, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || !ap_gpu_activity_is_inject_lib(fd))
		FAIL("%s not recognised as the injection library", lib);
	close(fd);
	fd = open(mock, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || ap_gpu_activity_is_inject_lib(fd))
		FAIL("%s taken for the injection library", mock);
	close(fd);
	fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
	if (ap_gpu_activity_is_inject_lib(fd) || ap_gpu_activity_is_inject_lib(-1))
		FAIL("a non-ELF file taken for the injection library");
	close(fd);

	s = ap_gpu_activity_open(err, sizeof(err));
	if (!s) {
		if (errno == EPERM) {
			printf("SKIP: cannot load BPF: %s\n", err);
			return 77;
		}
		fprintf(stderr, "FAIL: %s\n", err);
		return 1;
	}
	ret = ap_gpu_activity_attach(s, -1, mock, err, sizeof(err));
	if (ret != -ENOEXEC)
		FAIL("attach to libcupti: %d (%s), expected -ENOEXEC", ret, err);

	/* hostile paths: a planted symlink, a FIFO, a magic link outside map_files */
	{
		char link[] = "/tmp/ap_cupti_linkXXXXXX", fifo[64];

		if (mkdtemp(link)) {
			char lp[128];

			snprintf(lp, sizeof(lp), "%s/lib.so", link);
			snprintf(fifo, sizeof(fifo), "%s/fifo", link);
			if (symlink(lib, lp) == 0 &&
			    (ret = ap_gpu_activity_attach(s, -1, lp, err, sizeof(err))) != -ELOOP)
				FAIL("attach through a symlink: %d, expected -ELOOP", ret);
			if (mkfifo(fifo, 0600) == 0 &&
			    (ret = ap_gpu_activity_attach(s, -1, fifo, err, sizeof(err))) != -EINVAL)
				FAIL("attach to a FIFO: %d, expected -EINVAL", ret);
			snprintf(lp, sizeof(lp), "/proc/%d/exe", getpid());
			if ((ret = ap_gpu_activity_attach(s, -1, lp, err, sizeof(err))) != -ELOOP)
				FAIL("attach through /proc/PID/exe: %d, expected -ELOOP", ret);
			unlink(fifo);
			unlink(link);
			snprintf(lp, sizeof(lp), "%s/lib.so", link);
			unlink(lp);
			rmdir(link);
		}
	}

	/* 2. per-pid attach through the process's mapping */
	fd = mkstemp(logpath);
	if (fd < 0)
		return 2;
	close(fd);
	if (spawn(&ch, harness, lib, logpath, "0", "1"))
		return 2;
	if (!fgets(line, sizeof(line), ch.out) || sscanf(line, "ready %d", &pid) != 1 ||
	    pid != ch.pid) {
		FAIL("harness not ready: '%s'", line);
		kill(ch.pid, SIGKILL);
		return 1;
	}
	if (find_mapping(pid, lib, mapping, sizeof(mapping))) {
		FAIL("%s not mapped in %d", lib, pid);
		kill(ch.pid, SIGKILL);
		return 1;
	}
	fd = open(mapping, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || !ap_gpu_activity_is_inject_lib(fd))
		FAIL("the mapping %s not recognised", mapping);
	close(fd);
	ret = ap_gpu_activity_attach(s, pid, mapping, err, sizeof(err));
	if (ret) {
		FAIL("attach %s: %s", mapping, err);
		kill(ch.pid, SIGKILL);
		return 1;
	}
	if (ap_gpu_activity_attach(s, pid, mapping, err, sizeof(err)))
		FAIL("attaching twice: %s", err);
	t0 = mono_ns();
	fputs("go\n", ch.in);
	fflush(ch.in);
	if (run_until_exit(s, &ch, logpath) == 0) {
		t1 = mono_ns();
		compare(logpath, t0, t1, 0, &nexp);
		check_join(logpath);
		log_pid = 0; /* no more probed calls from here on */
		if (ap_gpu_activity_detach_pid(s, pid) != 1 || ap_gpu_activity_detach_pid(s, pid))
			FAIL("detach_pid: the exited process's attachment not dropped once");
		ap_gpu_activity_get_stats(s, &st);
		if (st.correlations != nexp || st.correlations != ncalls ||
		    st.records != nacts || st.ringbuf_drops || st.lib_dropped ||
		    st.attach_failed)
			FAIL("stats: %" PRIu64 " correlations (%zu expected), %" PRIu64
			     " records (%zu seen), ringbuf drops %" PRIu64 ", lib dropped %" PRIu64
			     ", attach failed %" PRIu64,
			     st.correlations, nexp, st.records, nacts, st.ringbuf_drops,
			     st.lib_dropped, st.attach_failed);
	}
	fclose(ch.in);
	fclose(ch.out);

	/* 3. every process, attached by file before it starts; rate-limited */
	if (!fails) {
		uint64_t before = st.correlations;

		ncalls = nacts = 0;
		ret = ap_gpu_activity_attach(s, -1, lib, err, sizeof(err));
		if (ret)
			FAIL("attach %s for all pids: %s", lib, err);
		if (spawn(&ch, harness, lib, logpath, "50", "5"))
			return 2;
		if (!fgets(line, sizeof(line), ch.out) || sscanf(line, "ready %d", &pid) != 1)
			FAIL("harness not ready");
		t0 = mono_ns();
		fputs("go\n", ch.in);
		fflush(ch.in);
		if (run_until_exit(s, &ch, NULL) == 0) {
			t1 = mono_ns();
			compare(logpath, t0, t1, 1, &nexp);
			ap_gpu_activity_get_stats(s, &st);
			/* the harness's 4 threads have a burst of 5 each and play ~0.1 s: most
			 * probes are dropped, and the library says how many */
			if (!ncalls || ncalls >= nexp ||
			    st.correlations - before != ncalls ||
			    st.lib_dropped != nexp - ncalls || st.ringbuf_drops)
				FAIL("rate limit: %zu of %zu probes arrived, library dropped %" PRIu64
				     ", ringbuf drops %" PRIu64,
				     ncalls, nexp, st.lib_dropped, st.ringbuf_drops);
			else
				printf("rate limit: %zu of %zu probes fired, %" PRIu64
				       " counted as dropped by the library\n",
				       ncalls, nexp, st.lib_dropped);
		}
		fclose(ch.in);
		fclose(ch.out);
	}
	unlink(logpath);
	ap_gpu_activity_free(s);
	ap_gpu_model_free(model);
	ap_profile_free(prof);
	if (fails) {
		fprintf(stderr, "%d failure(s)\n", fails);
		return 1;
	}
	printf("all checks passed\n");
	return 0;
}
