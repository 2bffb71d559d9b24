/* SPDX-License-Identifier: MIT */
/*
 * Continuous mode's transport (docs/continuous.md): pushes to the aggregator's
 * POST /api/v1/push (docs/api.md), a sender thread so that recording never waits for the
 * network, an on-disk spool for the pushes that failed, retries oldest first with
 * exponential backoff and jitter, and the counters of all of it.
 */
#ifndef AP_PUSH_H
#define AP_PUSH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* push ids: 32 hex digits, unique per push; a retry sends the same id */
#define AP_PUSH_ID_LEN 32
/* "name=value" of one push label, NUL included */
#define AP_PUSH_LABEL_PAIR_MAX 384

/* One push, ready to send: built from an interval (ap_push_build) or read from the spool. */
struct ap_push {
	char id[AP_PUSH_ID_LEN + 1];
	char *query;	       /* "push_id=...&from=...&until=...&label=..." (URL-encoded) */
	char content_type[96]; /* multipart/form-data; boundary=... */
	char *body;
	size_t body_len;
	char mode[16];	     /* for messages */
	char spool_name[96]; /* its spool file, "" while in memory */
};

struct ap_push_label {
	const char *name;
	const char *value;
};

/* The multipart parts of one push. tables/agent may be NULL. */
struct ap_push_parts {
	const void *profile; /* gzipped pprof */
	size_t profile_len;
	const char *tables; /* the mode's JSON report */
	size_t tables_len;
	const char *agent; /* the agent's counters, JSON */
	size_t agent_len;
};

/* A new push with a random id. Returns 0 or -errno (-ENOMEM, or -EIO: no randomness). */
int ap_push_build(struct ap_push **out, const char *mode, uint64_t from_ns, uint64_t until_ns,
		  const struct ap_push_label *labels, size_t nlabels,
		  const struct ap_push_parts *parts);
void ap_push_free(struct ap_push *p);
/* 32 random hex digits and a NUL into buf (33 bytes). Returns 0 or -errno. */
int ap_push_random_id(char *buf);

/* "a%3Db" for "a=b": RFC 3986 unreserved characters stay, every other byte is %XX. */
int ap_push_url_encode(const char *s, char *out, size_t len);

struct ap_push_stats {
	uint64_t ok;	   /* pushes the aggregator stored (or had stored: duplicate) */
	uint64_t failed;   /* attempts that failed (connection, timeout, 408, 429, 5xx) */
	uint64_t retried;  /* attempts of pushes from the spool */
	uint64_t spooled;  /* pushes written to the spool */
	uint64_t dropped;  /* pushes given up: spool full (oldest first), unreadable spool file */
	uint64_t rejected; /* pushes the aggregator refused (4xx but 408/429): logged, dropped */
	uint64_t spool_bytes, spool_files;
	uint64_t last_latency_us; /* of the last answered attempt */
};

struct ap_pusher_config {
	const char *prog; /* for messages */
	const char *const *servers;
	size_t nservers;
	const char *token; /* Bearer token, or NULL */
	const char *ca_file;
	const char *spool_dir;
	uint64_t spool_max;
	uint64_t timeout_ms; /* one attempt, connection included */
	uint64_t backoff_min_ms, backoff_max_ms;
	/* ap_pusher_new only opens the spool; libcurl and the sender start at
	 * ap_pusher_start() (the agent starts them after its BPF load, its memory peak) */
	bool defer_start;
};

struct ap_pusher;

/* Opens (creates) the spool and starts the sender, which first sends what an earlier run
 * left in the spool. NULL with errno set and a reason in err. */
struct ap_pusher *ap_pusher_new(const struct ap_pusher_config *cfg, char *err, size_t len);
/* With defer_start: initialise libcurl and start the sender. 0 or -errno with err. */
int ap_pusher_start(struct ap_pusher *p, char *err, size_t len);
/* Hand a push to the sender (never blocks on the network; takes ownership). */
void ap_pusher_enqueue(struct ap_pusher *p, struct ap_push *push);
void ap_pusher_get_stats(struct ap_pusher *p, struct ap_push_stats *out);
/* Deliver what is queued and one more try of the spool within timeout_ns; what is left is
 * written to the spool. Then the sender stops. */
void ap_pusher_shutdown(struct ap_pusher *p, uint64_t timeout_ns);
void ap_pusher_free(struct ap_pusher *p);

/* The spool (spool.c): one file per push, oldest first, bounded in bytes. */
struct ap_spool;
struct ap_spool *ap_spool_open(const char *dir, uint64_t max_bytes, char *err, size_t len);
void ap_spool_close(struct ap_spool *s);
/* Write p (atomically: temp file, fsync, rename); drops the oldest files while the spool would
 * exceed its bound (their count added to *dropped). Sets p->spool_name. 0 or -errno. */
int ap_spool_put(struct ap_spool *s, struct ap_push *p, uint64_t *dropped);
/* Within the bound again (a smaller --spool-max than the last run's): the oldest go. */
void ap_spool_trim(struct ap_spool *s, uint64_t *dropped);
/* The oldest push, read back (NULL when empty; *dropped counts unreadable files removed). */
int ap_spool_oldest(struct ap_spool *s, struct ap_push **out, uint64_t *dropped);
/* Remove the push's file (delivered or refused). */
void ap_spool_remove(struct ap_spool *s, const struct ap_push *p);
size_t ap_spool_count(const struct ap_spool *s);
uint64_t ap_spool_bytes(const struct ap_spool *s);

#endif
