// SPDX-License-Identifier: MIT
/*
 * Continuous mode's part of the run loop (docs/continuous.md): every push interval each
 * collector hands out what it recorded since the last one (its rotate op), the interval's
 * profile gets its processes' cgroup labels, and one push per mode goes to the sender
 * (push.c). Intervals abut: each one's `until` is the next one's `from`.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "collector.h"
#include "continuous.h"
#include "interval.h"
#include "lib/cache_dir.h"
#include "lib/log.h"
#include "lib/parse.h"
#include "lib/safe_open.h"
#include "push.h"

#define ROOT_SPOOL_DIR "/var/lib/aperture/spool"
#define MAX_TOKEN 4096
#define ATTEMPT_TIMEOUT_MS 15000
#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 60000
#define MAX_MODES 8

/* What the run pushed per mode, for the summary: the sum of each value type. */
struct mode_totals {
	char mode[16];
	uint64_t intervals, failed;
	size_t nvalues;
	char names[AP_MAX_VALUES][32];
	uint64_t sums[AP_MAX_VALUES];
	char recorded_name[32]; /* the collector's own count of what it recorded */
	uint64_t recorded;
};

struct ap_continuous {
	const struct ap_agent_opts *opts;
	struct ap_pusher *pusher;
	struct ap_cgroup_cache *cgroups;
	char host[256];
	char spool_dir[4096];
	uint64_t from_wall;	   /* the current interval's start, ns since the epoch */
	uint64_t next_push;	   /* CLOCK_MONOTONIC ns of its end */
	size_t scanned[MAX_MODES]; /* samples whose pid was observed, per collector */
	struct mode_totals totals[MAX_MODES];
	uint64_t intervals;
};

static uint64_t clock_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* The token: the file's first line, whitespace around it trimmed; printable ASCII only (it
 * goes into a header). Never echoed. */
static int read_token(const char *path, char *out, size_t len, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	char buf[MAX_TOKEN + 1];
	ssize_t n;
	size_t s = 0, e;

	if (fd < 0) {
		snprintf(err, errlen, "cannot read --token-file '%s': %s", path, strerror(errno));
		return -errno;
	}
	n = read(fd, buf, MAX_TOKEN + 1);
	close(fd);
	if (n < 0 || n > MAX_TOKEN) {
		snprintf(err, errlen, "cannot read --token-file '%s': %s", path,
			 n < 0 ? strerror(errno) : "larger than 4 KiB");
		return n < 0 ? -EIO : -EFBIG;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	while (buf[s] == ' ' || buf[s] == '\t')
		s++;
	e = strlen(buf);
	while (e > s && (buf[e - 1] == ' ' || buf[e - 1] == '\t'))
		e--;
	for (size_t i = s; i < e; i++) {
		if ((unsigned char)buf[i] <= ' ' || (unsigned char)buf[i] >= 0x7f) {
			snprintf(err, errlen,
				 "--token-file '%s': the token has a character that "
				 "cannot go into an HTTP header (byte %zu)",
				 path, i - s + 1);
			explicit_bzero(buf, sizeof(buf));
			return -EINVAL;
		}
	}
	if (e == s || e - s >= len) {
		snprintf(err, errlen, "--token-file '%s': %s", path, e == s ? "empty" : "too long");
		explicit_bzero(buf, sizeof(buf));
		return -EINVAL;
	}
	memcpy(out, buf + s, e - s);
	out[e - s] = '\0';
	explicit_bzero(buf, sizeof(buf));
	return 0;
}

/* A test knob (tests/bpf/test_push_*.py): milliseconds from the environment, else def. */
static uint64_t knob_ms(const char *name, uint64_t def)
{
	const char *v = getenv(name);
	uint64_t n;

	if (!v || !*v || ap_parse_u64(v, 1, 3600 * 1000, &n))
		return def;
	return n;
}

struct ap_continuous *ap_continuous_new(const struct ap_agent_opts *opts, char *err, size_t errlen)
{
	struct ap_continuous *k = calloc(1, sizeof(*k));
	struct ap_pusher_config cfg = {0};
	const char *servers[AP_MAX_SERVERS];
	char token[MAX_TOKEN + 1];
	int e;

	if (!k) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	k->opts = opts;
	if (gethostname(k->host, sizeof(k->host) - 1))
		snprintf(k->host, sizeof(k->host), "unknown");
	for (size_t i = 0; i < opts->nlabels; i++) /* --label host=... names the host */
		if (strcmp(opts->label_names[i], "host") == 0)
			snprintf(k->host, sizeof(k->host), "%s", opts->label_values[i]);
	if (opts->spool_dir) {
		snprintf(k->spool_dir, sizeof(k->spool_dir), "%s", opts->spool_dir);
	} else if (geteuid() == 0) {
		snprintf(k->spool_dir, sizeof(k->spool_dir), ROOT_SPOOL_DIR);
	} else if ((e = ap_cache_dir("spool", k->spool_dir, sizeof(k->spool_dir)))) {
		snprintf(err, errlen, "no place for the spool (%s): give --spool-dir DIR",
			 strerror(-e));
		goto fail;
	}
	if (opts->token_file && read_token(opts->token_file, token, sizeof(token), err, errlen))
		goto fail;
	k->cgroups = ap_cgroup_cache_new();
	if (!k->cgroups) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < opts->nservers; i++)
		servers[i] = opts->servers[i];
	cfg.prog = opts->prog;
	cfg.servers = servers;
	cfg.nservers = opts->nservers;
	cfg.token = opts->token_file ? token : NULL;
	cfg.ca_file = opts->ca_file;
	cfg.spool_dir = k->spool_dir;
	cfg.spool_max = opts->spool_max;
	cfg.timeout_ms = knob_ms("AP_TEST_PUSH_TIMEOUT_MS", ATTEMPT_TIMEOUT_MS);
	cfg.backoff_min_ms = knob_ms("AP_TEST_PUSH_BACKOFF_MIN_MS", BACKOFF_MIN_MS);
	cfg.backoff_max_ms = knob_ms("AP_TEST_PUSH_BACKOFF_MAX_MS", BACKOFF_MAX_MS);
	if (cfg.backoff_max_ms < cfg.backoff_min_ms)
		cfg.backoff_max_ms = cfg.backoff_min_ms;
	cfg.defer_start = true; /* ap_continuous_connect() */
	k->pusher = ap_pusher_new(&cfg, err, errlen);
	explicit_bzero(token, sizeof(token));
	if (!k->pusher)
		goto fail;
	return k;
fail:
	explicit_bzero(token, sizeof(token));
	ap_continuous_free(k);
	return NULL;
}

void ap_continuous_free(struct ap_continuous *k)
{
	if (!k)
		return;
	ap_pusher_free(k->pusher);
	ap_cgroup_cache_free(k->cgroups);
	free(k);
}

int ap_continuous_connect(struct ap_continuous *k, char *err, size_t errlen)
{
	return ap_pusher_start(k->pusher, err, errlen);
}

void ap_continuous_start(struct ap_continuous *k, uint64_t start_wall, uint64_t start_mono)
{
	k->from_wall = start_wall;
	k->next_push = start_mono + k->opts->push_interval_ns;
}

bool ap_continuous_due(const struct ap_continuous *k, uint64_t now_mono)
{
	return now_mono >= k->next_push;
}

uint64_t ap_continuous_next(const struct ap_continuous *k) { return k->next_push; }

void ap_continuous_observe(struct ap_continuous *k, struct ap_collector *cols, size_t n)
{
	for (size_t i = 0; i < n && i < MAX_MODES; i++) {
		const struct ap_profile *p = cols[i].profile;
		size_t ns = ap_profile_nsamples(p);

		for (size_t j = k->scanned[i]; j < ns; j++)
			ap_cgroup_cache_observe(k->cgroups, ap_profile_sample(p, j)->pid);
		k->scanned[i] = ns;
	}
}

/* Per-sample labels of a process: where it lives. */
static size_t cgroup_labels(void *ctx, uint32_t pid, struct ap_interval_label *out, size_t max)
{
	struct ap_continuous *k = ctx;
	const char *cid, *unit;
	size_t n = 0;

	ap_cgroup_cache_get(k->cgroups, pid, &cid, &unit);
	if (cid && n < max)
		out[n++] = (struct ap_interval_label){"container_id", cid};
	if (unit && n < max)
		out[n++] = (struct ap_interval_label){"unit", unit};
	return n;
}

static char *agent_json(struct ap_continuous *k, size_t *len)
{
	struct ap_push_stats st;
	char *s = NULL;
	int n;

	ap_pusher_get_stats(k->pusher, &st);
	n = asprintf(&s,
		     "{\"pushes_ok\":%llu,\"pushes_failed\":%llu,\"pushes_retried\":%llu,"
		     "\"pushes_spooled\":%llu,\"pushes_dropped\":%llu,\"pushes_rejected\":%llu,"
		     "\"spool_bytes\":%llu,\"spool_files\":%llu,\"last_push_latency_us\":%llu,"
		     "\"intervals\":%llu,\"cgroup_read_failures\":%llu}",
		     (unsigned long long)st.ok, (unsigned long long)st.failed,
		     (unsigned long long)st.retried, (unsigned long long)st.spooled,
		     (unsigned long long)st.dropped, (unsigned long long)st.rejected,
		     (unsigned long long)st.spool_bytes, (unsigned long long)st.spool_files,
		     (unsigned long long)st.last_latency_us, (unsigned long long)k->intervals,
		     (unsigned long long)ap_cgroup_cache_failures(k->cgroups));
	if (n < 0)
		return NULL;
	*len = (size_t)n;
	return s;
}

static int pprof_to_memory(const struct ap_profile *p, char **out, size_t *len)
{
	struct ap_write_opts wo = {.value_index = (int)ap_profile_default_value(p)};
	FILE *f = open_memstream(out, len);
	int err;

	if (!f)
		return -errno;
	err = ap_write_pprof(p, f, &wo);
	if (fclose(f) && !err)
		err = -EIO;
	if (err) {
		free(*out);
		*out = NULL;
	}
	return err;
}

static const char *recorded_stat(const char *mode)
{
	return strcmp(mode, "cpu") == 0	   ? "samples"
	       : strcmp(mode, "lock") == 0 ? "lock_waits"
					   : "calls";
}

static void add_totals(struct mode_totals *t, const char *mode, const struct ap_profile *p)
{
	snprintf(t->mode, sizeof(t->mode), "%s", mode);
	t->intervals++;
	t->nvalues = ap_profile_nvalues(p);
	for (size_t v = 0; v < t->nvalues; v++) {
		snprintf(t->names[v], sizeof(t->names[v]), "%s",
			 ap_profile_str(p, ap_profile_value_type(p, v)->type));
		t->sums[v] += ap_profile_total(p, v);
	}
	snprintf(t->recorded_name, sizeof(t->recorded_name), "%s", recorded_stat(mode));
	/* the collector's counter covers the run so far: the last interval's is the run's */
	t->recorded = ap_profile_get_stat(p, t->recorded_name);
}

/* One mode's interval: labeled, written, handed to the sender. */
static int push_interval(struct ap_continuous *k, const char *mode, struct ap_profile *p,
			 const char *tables, size_t tables_len, uint64_t until)
{
	struct ap_push_label labels[AP_MAX_PUSH_LABELS + 1];
	struct ap_push_parts parts = {.tables = tables, .tables_len = tables_len};
	struct ap_profile *lp;
	struct ap_push *push = NULL;
	char *pb = NULL, *aj;
	size_t pblen = 0, ajlen = 0, nl = 0;
	int err;

	ap_profile_set_time(p, k->from_wall, until - k->from_wall);
	lp = ap_interval_relabel(p, cgroup_labels, k);
	if (!lp)
		return -errno;
	err = pprof_to_memory(lp, &pb, &pblen);
	ap_profile_free(lp);
	if (err)
		return err;
	labels[nl++] = (struct ap_push_label){"host", k->host};
	for (size_t i = 0; i < k->opts->nlabels; i++)
		if (strcmp(k->opts->label_names[i], "host") != 0)
			labels[nl++] = (struct ap_push_label){k->opts->label_names[i],
							      k->opts->label_values[i]};
	aj = agent_json(k, &ajlen);
	parts.profile = pb;
	parts.profile_len = pblen;
	parts.agent = aj;
	parts.agent_len = ajlen;
	err = ap_push_build(&push, mode, k->from_wall, until, labels, nl, &parts);
	free(pb);
	free(aj);
	if (err)
		return err;
	ap_info("%s: %s: interval of %llu samples queued as push %s", k->opts->prog, mode,
		(unsigned long long)ap_profile_total(p, 0), push->id);
	ap_pusher_enqueue(k->pusher, push);
	return 0;
}

static void log_counters(struct ap_continuous *k)
{
	struct ap_push_stats st;

	ap_pusher_get_stats(k->pusher, &st);
	ap_info("%s: pushes: ok=%llu failed=%llu retried=%llu spooled=%llu dropped=%llu "
		"rejected=%llu spool_bytes=%llu spool_files=%llu last_latency_ms=%.1f",
		k->opts->prog, (unsigned long long)st.ok, (unsigned long long)st.failed,
		(unsigned long long)st.retried, (unsigned long long)st.spooled,
		(unsigned long long)st.dropped, (unsigned long long)st.rejected,
		(unsigned long long)st.spool_bytes, (unsigned long long)st.spool_files,
		(double)st.last_latency_us / 1000.0);
}

void ap_continuous_push(struct ap_continuous *k, struct ap_collector *cols, size_t n,
			struct ap_symbolizer *sym, uint64_t now_mono)
{
	uint64_t until = clock_ns(CLOCK_REALTIME);

	if (until <= k->from_wall) /* the wall clock stepped back: keep the ranges ordered */
		until = k->from_wall + 1;
	ap_continuous_observe(k, cols, n);
	for (size_t i = 0; i < n && i < MAX_MODES; i++) {
		struct ap_collector *c = &cols[i];
		struct ap_profile *p = NULL;
		char *tables = NULL;
		size_t tables_len = 0;
		int err;

		/* JIT names published since the drain, before the profile leaves */
		ap_symbolizer_resolve_pending(sym, c->profile);
		/* the mode's own report (rotate writes it) states the interval's range too */
		ap_profile_set_time(c->profile, k->from_wall, until - k->from_wall);
		err = c->ops->rotate ? c->ops->rotate(c, &p, &tables, &tables_len) : -ENOTSUP;
		if (err) {
			/* the interval goes on in the collector: the next push covers it too */
			ap_warn("%s: %s: cannot close the interval: %s", k->opts->prog,
				c->ops->name, strerror(-err));
			k->totals[i].failed++;
			continue;
		}
		k->scanned[i] = 0;
		add_totals(&k->totals[i], c->ops->name, p);
		err = push_interval(k, c->ops->name, p, tables, tables_len, until);
		if (err) {
			ap_warn("%s: %s: cannot build the push of an interval: %s; dropped",
				k->opts->prog, c->ops->name, strerror(-err));
			k->totals[i].failed++;
		}
		ap_profile_free(p);
		free(tables);
	}
	k->intervals++;
	k->from_wall = until;
	ap_cgroup_cache_rotate(k->cgroups);
	/* the schedule, not the drift of this push's work, sets the next boundary */
	while (k->next_push <= now_mono)
		k->next_push += k->opts->push_interval_ns;
	log_counters(k);
}

int ap_continuous_finish(struct ap_continuous *k, struct ap_collector *cols, size_t n,
			 struct ap_symbolizer *sym)
{
	struct ap_push_stats st;
	const char *prog = k->opts->prog;
	int ret = AP_EXIT_OK;

	ap_continuous_push(k, cols, n, sym, clock_ns(CLOCK_MONOTONIC));
	ap_pusher_shutdown(k->pusher, k->opts->shutdown_timeout_ns);
	ap_pusher_get_stats(k->pusher, &st);
	/* always, not only with -v: what the run recorded and what became of it */
	for (size_t i = 0; i < n && i < MAX_MODES; i++) {
		const struct mode_totals *t = &k->totals[i];
		char vals[256] = "";
		size_t off = 0;

		for (size_t v = 0; v < t->nvalues && off < sizeof(vals); v++)
			off += (size_t)snprintf(vals + off, sizeof(vals) - off, " %s=%llu",
						t->names[v], (unsigned long long)t->sums[v]);
		fprintf(stderr, "%s: %s: %llu intervals pushed,%s (recorded %s=%llu)%s\n", prog,
			t->mode, (unsigned long long)t->intervals, vals, t->recorded_name,
			(unsigned long long)t->recorded,
			t->failed ? "; some intervals could not be pushed" : "");
		if (t->failed)
			ret = AP_EXIT_FAILURE;
	}
	fprintf(stderr,
		"%s: pushes: ok=%llu failed=%llu retried=%llu spooled=%llu dropped=%llu "
		"rejected=%llu spool_bytes=%llu spool_files=%llu last_latency_ms=%.1f\n",
		prog, (unsigned long long)st.ok, (unsigned long long)st.failed,
		(unsigned long long)st.retried, (unsigned long long)st.spooled,
		(unsigned long long)st.dropped, (unsigned long long)st.rejected,
		(unsigned long long)st.spool_bytes, (unsigned long long)st.spool_files,
		(double)st.last_latency_us / 1000.0);
	if (st.spool_files)
		fprintf(stderr, "%s: %llu pushes stay in the spool (%s) for the next start\n", prog,
			(unsigned long long)st.spool_files, k->spool_dir);
	return ret;
}
