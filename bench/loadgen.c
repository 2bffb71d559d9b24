// SPDX-License-Identifier: MIT
/*
 * Aggregator load generator (bench/aggregator_bench.py drives it; not a test).
 *
 * Replays real recorded profiles (gzipped pprof written by aperture-agent) as HOSTS agents
 * pushing to POST /api/v1/push (docs/api.md) over SPAN of backfilled time in INTERVAL steps:
 * push i covers [end - span + (i / hosts) * interval, + interval) for host i % hosts, so time
 * advances for the whole fleet together, as it does for real agents. Each host gets the labels
 * host=host-NNN, service=svc-K and env=ENV (a few of each, so selectors have something to pick),
 * plus every --label; the profile replayed rotates over the files given, per host and step.
 * CONCURRENCY threads each keep one connection alive (unless --no-keepalive) and take the next
 * push from a shared counter. 429/503 answers are retried after their Retry-After and counted.
 *
 * The result is one JSON line on stdout (pushes stored/duplicate/failed, sample records and
 * the sum of value[0] sent, wall time, push latency percentiles, the time range covered);
 * progress goes to stderr.
 *
 *   aperture-loadgen --url URL --profile [MODE:]FILE [--profile ...] [--hosts 100]
 *                    [--span 1h] [--interval 10s] [--end UNIX_SECONDS] [--concurrency 4]
 *                    [--services 5] [--envs 3] [--label K=V]... [--token-file F] [--ca-file F]
 *                    [--no-keepalive] [--run-id ID] [--max-pushes N] [--host-offset N]
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <zlib.h>

#define MAX_PROFILES 64
#define MAX_LABELS 16
#define MAX_INFLATED (256u << 20) /* refuse to count a recorded profile bigger than this */
#define MAX_ATTEMPTS 50		  /* per push, over 429/503 answers */

struct profile {
	const char *path;
	char mode[32];
	unsigned char *gz; /* the file as recorded: sent as is */
	size_t gz_len;
	uint64_t records; /* Sample messages in it */
	uint64_t value0;  /* sum of every sample's first value */
};

static struct {
	const char *url;
	char token[512];
	const char *ca_file;
	struct profile prof[MAX_PROFILES];
	int nprof;
	int hosts, host_offset, services, envs, concurrency;
	uint64_t span_ns, interval_ns, end_ns;
	const char *labels[MAX_LABELS];
	int nlabels;
	bool no_keepalive;
	char run_id[33];
	uint64_t npush;
} cfg = { .hosts = 100, .services = 5, .envs = 3, .concurrency = 4 };

static const char *const env_names[] = { "prod", "staging", "dev", "qa", "canary", "perf" };

static atomic_uint_fast64_t next_push;
static atomic_uint_fast64_t n_stored, n_dup, n_failed, n_retried, records_sent, value0_sent,
	bytes_sent;
static pthread_mutex_t err_lock = PTHREAD_MUTEX_INITIALIZER;
static char first_error[512];

struct worker {
	pthread_t tid;
	double *lat_ms; /* latency of each push this worker completed */
	size_t nlat, cap;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void note_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note_error(const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&err_lock);
	if (!first_error[0]) {
		va_start(ap, fmt);
		vsnprintf(first_error, sizeof(first_error), fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&err_lock);
}

/* "10s", "1h", "500ms", "24h" -> ns; 0 on a bad value */
static uint64_t parse_duration(const char *s)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || v <= 0)
		return 0;
	if (!strcmp(end, "ns"))
		return (uint64_t)v;
	if (!strcmp(end, "ms"))
		return (uint64_t)(v * 1e6);
	if (!strcmp(end, "s") || !*end)
		return (uint64_t)(v * 1e9);
	if (!strcmp(end, "m"))
		return (uint64_t)(v * 60e9);
	if (!strcmp(end, "h"))
		return (uint64_t)(v * 3600e9);
	if (!strcmp(end, "d"))
		return (uint64_t)(v * 86400e9);
	return 0;
}

static int read_file(const char *path, unsigned char **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf = NULL;
	size_t cap = 0, n = 0;

	if (!f)
		return -errno;
	for (;;) {
		if (n == cap) {
			unsigned char *nb;

			cap = cap ? cap * 2 : 65536;
			nb = realloc(buf, cap);
			if (!nb) {
				free(buf);
				fclose(f);
				return -ENOMEM;
			}
			buf = nb;
		}
		size_t got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0)
			break;
	}
	fclose(f);
	*out = buf;
	*len = n;
	return 0;
}

static int gunzip(const unsigned char *in, size_t len, unsigned char **out, size_t *outlen)
{
	z_stream z = { 0 };
	size_t cap = len * 4 + 4096, n = 0;
	unsigned char *buf = malloc(cap);
	int rc;

	if (!buf || inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) {
		free(buf);
		return -ENOMEM;
	}
	z.next_in = (unsigned char *)in;
	z.avail_in = len;
	do {
		if (n == cap) {
			unsigned char *nb;

			if (cap >= MAX_INFLATED) {
				rc = -EFBIG;
				goto fail;
			}
			cap *= 2;
			nb = realloc(buf, cap);
			if (!nb) {
				rc = -ENOMEM;
				goto fail;
			}
			buf = nb;
		}
		z.next_out = buf + n;
		z.avail_out = cap - n;
		rc = inflate(&z, Z_NO_FLUSH);
		n = cap - z.avail_out;
		if (rc != Z_OK && rc != Z_STREAM_END) {
			rc = -EBADMSG;
			goto fail;
		}
	} while (rc != Z_STREAM_END);
	inflateEnd(&z);
	*out = buf;
	*outlen = n;
	return 0;
fail:
	inflateEnd(&z);
	free(buf);
	return rc;
}

static int varint(const unsigned char **p, const unsigned char *end, uint64_t *v)
{
	uint64_t r = 0;

	for (int shift = 0; shift < 64 && *p < end; shift += 7) {
		unsigned char b = *(*p)++;

		r |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = r;
			return 0;
		}
	}
	return -EBADMSG;
}

/* Skip one field's payload of wire type wt. */
static int skip_field(const unsigned char **p, const unsigned char *end, unsigned wt)
{
	uint64_t v;

	switch (wt) {
	case 0:
		return varint(p, end, &v);
	case 1:
		if (end - *p < 8)
			return -EBADMSG;
		*p += 8;
		return 0;
	case 2:
		if (varint(p, end, &v) || v > (uint64_t)(end - *p))
			return -EBADMSG;
		*p += v;
		return 0;
	case 5:
		if (end - *p < 4)
			return -EBADMSG;
		*p += 4;
		return 0;
	}
	return -EBADMSG;
}

/* The first value of a pprof Sample message (field 2, packed or not). */
static int sample_value0(const unsigned char *p, const unsigned char *end, uint64_t *v0)
{
	*v0 = 0;
	while (p < end) {
		uint64_t key, len;

		if (varint(&p, end, &key))
			return -EBADMSG;
		if ((key >> 3) == 2 && (key & 7) == 0)
			return varint(&p, end, v0);
		if ((key >> 3) == 2 && (key & 7) == 2) {
			if (varint(&p, end, &len) || len > (uint64_t)(end - p))
				return -EBADMSG;
			return len ? varint(&p, p + len, v0) : 0;
		}
		if (skip_field(&p, end, key & 7))
			return -EBADMSG;
	}
	return 0;
}

/* Count a profile's Sample messages (Profile field 2) and sum their first values. */
static int count_samples(struct profile *pr)
{
	unsigned char *raw;
	size_t len;
	int rc = gunzip(pr->gz, pr->gz_len, &raw, &len);
	const unsigned char *p, *end;

	if (rc)
		return rc;
	p = raw;
	end = raw + len;
	while (p < end) {
		uint64_t key, flen, v0;

		if (varint(&p, end, &key))
			goto bad;
		if ((key >> 3) != 2 || (key & 7) != 2) {
			if (skip_field(&p, end, key & 7))
				goto bad;
			continue;
		}
		if (varint(&p, end, &flen) || flen > (uint64_t)(end - p))
			goto bad;
		if (sample_value0(p, p + flen, &v0))
			goto bad;
		pr->records++;
		pr->value0 += v0;
		p += flen;
	}
	free(raw);
	return 0;
bad:
	free(raw);
	return -EBADMSG;
}

struct body {
	char buf[1024];
	size_t n;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct body *b = arg;
	size_t len = size * nmemb, room = sizeof(b->buf) - 1 - b->n;

	if (len > room)
		len = room;
	memcpy(b->buf + b->n, data, len);
	b->n += len;
	b->buf[b->n] = 0;
	return size * nmemb; /* the rest of a long answer is dropped, not an error */
}

static void url_append_label(char **url, size_t *cap, size_t *n, CURL *h, const char *kv)
{
	char *esc = curl_easy_escape(h, kv, 0);
	size_t need = strlen(esc) + 8;

	if (*n + need >= *cap) {
		*cap = (*n + need) * 2;
		*url = realloc(*url, *cap);
		if (!*url)
			abort();
	}
	*n += snprintf(*url + *n, *cap - *n, "&label=%s", esc);
	curl_free(esc);
}

static void lat_add(struct worker *w, double ms)
{
	if (w->nlat == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 4096;
		w->lat_ms = realloc(w->lat_ms, w->cap * sizeof(*w->lat_ms));
		if (!w->lat_ms)
			abort();
	}
	w->lat_ms[w->nlat++] = ms;
}

/* One push, retried on 429/503. Returns 0 stored, 1 duplicate, -1 failed. */
static int push_one(CURL *h, struct curl_slist *hdrs, uint64_t i, struct worker *w)
{
	uint64_t step = i / cfg.hosts;
	int host = (int)(i % cfg.hosts) + cfg.host_offset;
	const struct profile *pr = &cfg.prof[(host + step) % cfg.nprof];
	uint64_t from = cfg.end_ns - cfg.span_ns + step * cfg.interval_ns;
	size_t cap = 1024, n = 0;
	char *url = malloc(cap), kv[256];
	int result = -1;

	if (!url)
		abort();
	n = snprintf(url, cap, "%s/api/v1/push?push_id=lg%s-%" PRIx64 "&from=%" PRIu64
		     "&until=%" PRIu64, cfg.url, cfg.run_id, i, from, from + cfg.interval_ns);
	snprintf(kv, sizeof(kv), "host=host-%03d", host);
	url_append_label(&url, &cap, &n, h, kv);
	snprintf(kv, sizeof(kv), "mode=%s", pr->mode);
	url_append_label(&url, &cap, &n, h, kv);
	snprintf(kv, sizeof(kv), "service=svc-%d", host % cfg.services);
	url_append_label(&url, &cap, &n, h, kv);
	snprintf(kv, sizeof(kv), "env=%s", env_names[host % cfg.envs]);
	url_append_label(&url, &cap, &n, h, kv);
	for (int l = 0; l < cfg.nlabels; l++)
		url_append_label(&url, &cap, &n, h, cfg.labels[l]);

	for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
		curl_mime *mime = curl_mime_init(h);
		curl_mimepart *part = curl_mime_addpart(mime);
		struct body body = { .n = 0 };
		struct curl_header *ra;
		long status = 0;
		double t0 = now_s();
		CURLcode cc;

		curl_mime_name(part, "profile");
		curl_mime_filename(part, "profile.pb.gz");
		curl_mime_type(part, "application/octet-stream");
		curl_mime_data(part, (const char *)pr->gz, pr->gz_len);
		curl_easy_setopt(h, CURLOPT_URL, url);
		curl_easy_setopt(h, CURLOPT_MIMEPOST, mime);
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
		curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
		curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
		cc = curl_easy_perform(h);
		if (cc == CURLE_OK)
			curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
		if (cc == CURLE_OK && (status == 429 || status == 503)) {
			long wait_ms = 100;

			if (curl_easy_header(h, "Retry-After", 0, CURLH_HEADER, -1, &ra) == CURLHE_OK)
				wait_ms = atol(ra->value) * 1000;
			if (wait_ms > 5000)
				wait_ms = 5000;
			curl_mime_free(mime);
			atomic_fetch_add(&n_retried, 1);
			usleep(wait_ms * 1000);
			continue;
		}
		curl_mime_free(mime);
		if (cc != CURLE_OK) {
			note_error("push %" PRIu64 ": %s", i, curl_easy_strerror(cc));
			break;
		}
		if (status != 200) {
			note_error("push %" PRIu64 ": HTTP %ld: %s", i, status, body.buf);
			break;
		}
		lat_add(w, (now_s() - t0) * 1e3);
		atomic_fetch_add(&bytes_sent, pr->gz_len);
		if (strstr(body.buf, "\"duplicate\"")) {
			result = 1;
		} else {
			result = 0;
			atomic_fetch_add(&records_sent, pr->records);
			atomic_fetch_add(&value0_sent, pr->value0);
		}
		break;
	}
	free(url);
	return result;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	CURL *h = curl_easy_init();
	struct curl_slist *hdrs = NULL;
	char auth[600];

	if (!h) {
		note_error("curl_easy_init failed");
		return NULL;
	}
	/* curl would otherwise wait for "100 Continue" before every body over 1 KiB */
	hdrs = curl_slist_append(hdrs, "Expect:");
	if (cfg.token[0]) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", cfg.token);
		hdrs = curl_slist_append(hdrs, auth);
	}
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 60L);
	curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
	if (cfg.no_keepalive)
		curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
	if (cfg.ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, cfg.ca_file);
	for (;;) {
		uint64_t i = atomic_fetch_add(&next_push, 1);
		int r;

		if (i >= cfg.npush)
			break;
		r = push_one(h, hdrs, i, w);
		if (r == 0)
			atomic_fetch_add(&n_stored, 1);
		else if (r == 1)
			atomic_fetch_add(&n_dup, 1);
		else
			atomic_fetch_add(&n_failed, 1);
	}
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(h);
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double pct(const double *v, size_t n, double q)
{
	return n ? v[(size_t)(q * (n - 1) + 0.5)] : 0;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: aperture-loadgen --url URL --profile [MODE:]FILE [--profile ...]\n"
		"         [--hosts 100] [--host-offset 0] [--span 1h] [--interval 10s]\n"
		"         [--end UNIX_SECONDS] [--concurrency 4] [--services 5] [--envs 3]\n"
		"         [--label K=V]... [--token-file F] [--ca-file F] [--no-keepalive]\n"
		"         [--run-id HEX] [--max-pushes N]\n");
}

static int add_profile(const char *spec)
{
	struct profile *pr;
	const char *colon = strchr(spec, ':');
	int rc;

	if (cfg.nprof == MAX_PROFILES) {
		fprintf(stderr, "loadgen: at most %d --profile files\n", MAX_PROFILES);
		return -1;
	}
	pr = &cfg.prof[cfg.nprof];
	if (colon && (size_t)(colon - spec) < sizeof(pr->mode) && !memchr(spec, '/', colon - spec)) {
		memcpy(pr->mode, spec, colon - spec);
		pr->mode[colon - spec] = 0;
		pr->path = colon + 1;
	} else {
		strcpy(pr->mode, "cpu");
		pr->path = spec;
	}
	rc = read_file(pr->path, &pr->gz, &pr->gz_len);
	if (!rc)
		rc = count_samples(pr);
	if (rc) {
		fprintf(stderr, "loadgen: %s: %s (want a gzipped pprof as aperture-agent -o X.pb.gz "
				"writes)\n", pr->path, strerror(-rc));
		return -1;
	}
	if (!pr->records) {
		fprintf(stderr, "loadgen: %s holds no samples: record it while something runs\n",
			pr->path);
		return -1;
	}
	fprintf(stderr, "loadgen: %s (%s): %zu bytes, %" PRIu64 " sample records, value[0] sum %"
			PRIu64 "\n", pr->path, pr->mode, pr->gz_len, pr->records, pr->value0);
	cfg.nprof++;
	return 0;
}

static int parse_args(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "url", required_argument, 0, 'u' },	      { "profile", required_argument, 0, 'p' },
		{ "hosts", required_argument, 0, 'H' },	      { "span", required_argument, 0, 's' },
		{ "interval", required_argument, 0, 'i' },    { "end", required_argument, 0, 'e' },
		{ "concurrency", required_argument, 0, 'c' }, { "services", required_argument, 0, 'S' },
		{ "envs", required_argument, 0, 'E' },	      { "label", required_argument, 0, 'l' },
		{ "token-file", required_argument, 0, 't' },  { "ca-file", required_argument, 0, 'C' },
		{ "no-keepalive", no_argument, 0, 'K' },      { "run-id", required_argument, 0, 'r' },
		{ "max-pushes", required_argument, 0, 'm' },  { "host-offset", required_argument, 0, 'o' },
		{ "help", no_argument, 0, 'h' },	      { 0 }
	};
	uint64_t max_pushes = 0;
	int c;

	cfg.span_ns = 3600e9;
	cfg.interval_ns = 10e9;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'u':
			cfg.url = optarg;
			break;
		case 'p':
			if (add_profile(optarg))
				return -1;
			break;
		case 'H':
			cfg.hosts = atoi(optarg);
			break;
		case 'o':
			cfg.host_offset = atoi(optarg);
			break;
		case 's':
			cfg.span_ns = parse_duration(optarg);
			break;
		case 'i':
			cfg.interval_ns = parse_duration(optarg);
			break;
		case 'e':
			cfg.end_ns = strtoull(optarg, NULL, 10) * 1000000000ull;
			break;
		case 'c':
			cfg.concurrency = atoi(optarg);
			break;
		case 'S':
			cfg.services = atoi(optarg);
			break;
		case 'E':
			cfg.envs = atoi(optarg);
			break;
		case 'l':
			if (cfg.nlabels == MAX_LABELS || !strchr(optarg, '=')) {
				fprintf(stderr, "loadgen: --label K=V, at most %d\n", MAX_LABELS);
				return -1;
			}
			cfg.labels[cfg.nlabels++] = optarg;
			break;
		case 't': {
			FILE *f = fopen(optarg, "r");

			if (!f || !fgets(cfg.token, sizeof(cfg.token), f)) {
				fprintf(stderr, "loadgen: cannot read token file %s\n", optarg);
				if (f)
					fclose(f);
				return -1;
			}
			fclose(f);
			cfg.token[strcspn(cfg.token, "\r\n")] = 0;
			break;
		}
		case 'C':
			cfg.ca_file = optarg;
			break;
		case 'K':
			cfg.no_keepalive = true;
			break;
		case 'r':
			snprintf(cfg.run_id, sizeof(cfg.run_id), "%s", optarg);
			break;
		case 'm':
			max_pushes = strtoull(optarg, NULL, 10);
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (!cfg.url || !cfg.nprof || cfg.hosts < 1 || cfg.concurrency < 1 || cfg.services < 1 ||
	    cfg.envs < 1 || cfg.envs > (int)(sizeof(env_names) / sizeof(*env_names)) ||
	    !cfg.span_ns || !cfg.interval_ns || cfg.interval_ns > cfg.span_ns) {
		fprintf(stderr, "loadgen: need --url and at least one --profile; --hosts, "
				"--concurrency, --services >= 1, --envs 1-6, --interval <= --span\n");
		usage(stderr);
		return -1;
	}
	if (!cfg.end_ns)
		cfg.end_ns = (uint64_t)time(NULL) * 1000000000ull;
	/* align the steps so every host's push i covers the same interval */
	cfg.end_ns -= cfg.end_ns % cfg.interval_ns;
	cfg.npush = (cfg.span_ns / cfg.interval_ns) * (uint64_t)cfg.hosts;
	if (max_pushes && max_pushes < cfg.npush)
		cfg.npush = max_pushes;
	if (!cfg.run_id[0]) {
		/* a fresh id per run, so a second run is not refused as duplicates */
		unsigned char r[8] = { 0 };
		FILE *f = fopen("/dev/urandom", "rb");

		if (!f || fread(r, 1, sizeof(r), f) != sizeof(r)) {
			fprintf(stderr, "loadgen: cannot read /dev/urandom\n");
			if (f)
				fclose(f);
			return -1;
		}
		fclose(f);
		for (int i = 0; i < 8; i++)
			snprintf(cfg.run_id + 2 * i, 3, "%02x", r[i]);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct worker *w;
	double t0, t1, last = 0;
	double *all;
	size_t nall = 0;

	if (parse_args(argc, argv))
		return 2;
	if (curl_global_init(CURL_GLOBAL_ALL)) {
		fprintf(stderr, "loadgen: curl_global_init failed\n");
		return 1;
	}
	w = calloc(cfg.concurrency, sizeof(*w));
	if (!w)
		return 1;
	fprintf(stderr, "loadgen: %" PRIu64 " pushes (%d hosts x %" PRIu64 " steps of %.0f s), "
			"%d connections%s, run id %s\n", cfg.npush, cfg.hosts,
		cfg.span_ns / cfg.interval_ns, cfg.interval_ns / 1e9, cfg.concurrency,
		cfg.no_keepalive ? " (no keep-alive)" : "", cfg.run_id);
	t0 = now_s();
	for (int i = 0; i < cfg.concurrency; i++)
		if (pthread_create(&w[i].tid, NULL, worker_main, &w[i])) {
			fprintf(stderr, "loadgen: pthread_create failed\n");
			return 1;
		}
	/* progress every 5 s while the workers run */
	for (;;) {
		uint64_t done = atomic_load(&n_stored) + atomic_load(&n_dup) + atomic_load(&n_failed);

		if (done >= cfg.npush)
			break;
		usleep(100000);
		if (now_s() - last >= 5) {
			last = now_s();
			fprintf(stderr, "loadgen: %" PRIu64 "/%" PRIu64 " pushes, %.0f pushes/s\n", done,
				cfg.npush, done / (last - t0));
		}
	}
	for (int i = 0; i < cfg.concurrency; i++) {
		pthread_join(w[i].tid, NULL);
		nall += w[i].nlat;
	}
	t1 = now_s();
	all = malloc((nall + 1) * sizeof(*all));
	if (!all)
		return 1;
	nall = 0;
	for (int i = 0; i < cfg.concurrency; i++) {
		memcpy(all + nall, w[i].lat_ms, w[i].nlat * sizeof(*all));
		nall += w[i].nlat;
		free(w[i].lat_ms);
	}
	qsort(all, nall, sizeof(*all), cmp_double);
	printf("{\"pushes\": %" PRIu64 ", \"stored\": %" PRIu64 ", \"duplicate\": %" PRIu64
	       ", \"failed\": %" PRIu64 ", \"retried\": %" PRIu64 ", \"records\": %" PRIu64
	       ", \"value0\": %" PRIu64 ", \"bytes\": %" PRIu64 ", \"wall_s\": %.3f"
	       ", \"lat_p50_ms\": %.2f, \"lat_p99_ms\": %.2f, \"lat_max_ms\": %.2f"
	       ", \"from_ns\": %" PRIu64 ", \"until_ns\": %" PRIu64 ", \"hosts\": %d"
	       ", \"concurrency\": %d, \"keepalive\": %s, \"first_error\": \"",
	       cfg.npush, atomic_load(&n_stored), atomic_load(&n_dup), atomic_load(&n_failed),
	       atomic_load(&n_retried), atomic_load(&records_sent), atomic_load(&value0_sent),
	       atomic_load(&bytes_sent), t1 - t0, pct(all, nall, 0.5), pct(all, nall, 0.99),
	       nall ? all[nall - 1] : 0, cfg.end_ns - cfg.span_ns, cfg.end_ns, cfg.hosts,
	       cfg.concurrency, cfg.no_keepalive ? "false" : "true");
	/* the error is the server's or curl's text: escape it for JSON */
	for (const char *p = first_error; *p; p++) {
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if ((unsigned char)*p < 0x20)
			printf(" ");
		else
			putchar(*p);
	}
	printf("\"}\n");
	free(all);
	free(w);
	curl_global_cleanup();
	return atomic_load(&n_failed) ? 1 : 0;
}
