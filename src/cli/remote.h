/* SPDX-License-Identifier: MIT */
/*
 * What `aperture query`, `diff` and `labels` share: the aggregator's address, token and CA
 * (flags and environment), time arguments, and GET requests over libcurl with the server's
 * error message on failure (docs/api.md).
 */
#ifndef AP_CLI_REMOTE_H
#define AP_CLI_REMOTE_H

#include <stddef.h>
#include <stdint.h>

#define AP_CLI_DEFAULT_SERVER "http://127.0.0.1:7070"
/* The most a response may hold: as `report` reads from a file. */
#define AP_CLI_MAX_RESPONSE (1ULL << 30)

struct ap_remote {
	const char *cmd;	/* "query", for messages */
	const char *server;	/* --server, else $APERTURE_SERVER, else the default */
	const char *token_file; /* --token-file, else $APERTURE_TOKEN_FILE */
	const char *ca_file;	/* --ca-file */
	char token[4096];	/* read from token_file; never printed */
	void *curl;		/* CURL *, reused: keep-alive across requests */
};

/* A dynamically grown response body, NUL-terminated. */
struct ap_remote_body {
	char *data;
	size_t len, cap;
};

/* Server from the environment when no --server was given, token read. Prints the error;
 * returns 0 or an exit status. */
int ap_remote_init(struct ap_remote *r);
void ap_remote_close(struct ap_remote *r);

/* GET server + path with the query parameters names[i]=values[i] (URL-encoded; NULL values
 * are left out). On HTTP 200 fills body and returns 0; otherwise prints what went wrong (the
 * server's message, or why it could not be reached) and returns AP_EXIT_FAILURE. */
int ap_remote_get(struct ap_remote *r, const char *path, const char *const *names,
		  const char *const *values, size_t n, struct ap_remote_body *body);
void ap_remote_body_free(struct ap_remote_body *b);

/* A time argument for the API: "-1h" becomes "now-1h"; "now", "now-30m", RFC 3339 and unix
 * times pass unchanged (the server checks them). Returns 0, or -EINVAL for a relative time
 * that is not -N followed by s, m, h or d. */
int ap_remote_time(const char *in, char *out, size_t len);

#endif
