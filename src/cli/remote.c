// SPDX-License-Identifier: MIT
/* Talking to aperture-aggregator for `aperture query`, `diff` and `labels` (remote.h). */
#include "remote.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/agent.h"
#include "lib/json_parse.h"

#define CONNECT_TIMEOUT_S 10L
/* A merged profile over days of a fleet may take a while; a hung server must not hang us. */
#define REQUEST_TIMEOUT_S 300L
/* Shown of an error body that is not the API's JSON. */
#define MAX_ERROR_SHOWN 300

static int read_token(struct ap_remote *r)
{
	struct stat st;
	ssize_t n;
	int fd;

	fd = open(r->token_file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		fprintf(stderr, "aperture %s: cannot read the token file '%s': %s\n", r->cmd,
			r->token_file, strerror(errno));
		return AP_EXIT_USAGE;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		fprintf(stderr, "aperture %s: the token file '%s' is not a regular file\n", r->cmd,
			r->token_file);
		close(fd);
		return AP_EXIT_USAGE;
	}
	n = read(fd, r->token, sizeof(r->token) - 1);
	close(fd);
	if (n < 0 || (size_t)st.st_size >= sizeof(r->token)) {
		fprintf(stderr, "aperture %s: cannot read the token file '%s': %s\n", r->cmd,
			r->token_file, n < 0 ? strerror(errno) : "larger than 4 KiB");
		return AP_EXIT_USAGE;
	}
	r->token[n] = '\0';
	/* as the aggregator reads it: surrounding whitespace (the final newline) is no part */
	while (n > 0 && isspace((unsigned char)r->token[n - 1]))
		r->token[--n] = '\0';
	if (!n) {
		fprintf(stderr, "aperture %s: the token file '%s' is empty\n", r->cmd,
			r->token_file);
		return AP_EXIT_USAGE;
	}
	for (ssize_t i = 0; i < n; i++) {
		if ((unsigned char)r->token[i] < 0x21 || r->token[i] == 0x7f) {
			fprintf(
			    stderr,
			    "aperture %s: the token file '%s' holds spaces or control characters "
			    "inside the token\n",
			    r->cmd, r->token_file);
			return AP_EXIT_USAGE;
		}
	}
	return 0;
}

int ap_remote_init(struct ap_remote *r)
{
	const char *env;

	if (!r->server) {
		env = getenv("APERTURE_SERVER");
		r->server = env && *env ? env : AP_CLI_DEFAULT_SERVER;
	}
	if (strncmp(r->server, "http://", 7) != 0 && strncmp(r->server, "https://", 8) != 0) {
		fprintf(stderr,
			"aperture %s: server '%s' is not an http:// or https:// URL (e.g. %s)\n",
			r->cmd, r->server, AP_CLI_DEFAULT_SERVER);
		return AP_EXIT_USAGE;
	}
	if (!r->token_file) {
		env = getenv("APERTURE_TOKEN_FILE");
		r->token_file = env && *env ? env : NULL;
	}
	if (r->token_file && read_token(r) != 0)
		return AP_EXIT_USAGE;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(r->curl = curl_easy_init())) {
		fprintf(stderr, "aperture %s: cannot initialise libcurl\n", r->cmd);
		return AP_EXIT_FAILURE;
	}
	return 0;
}

void ap_remote_close(struct ap_remote *r)
{
	if (r->curl) {
		curl_easy_cleanup(r->curl);
		curl_global_cleanup();
	}
	r->curl = NULL;
	memset(r->token, 0, sizeof(r->token));
}

void ap_remote_body_free(struct ap_remote_body *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct ap_remote_body *b = ud;
	size_t n = size * nmemb;

	if (b->len + n + 1 > AP_CLI_MAX_RESPONSE)
		return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 65536;
		char *d;

		while (cap < b->len + n + 1)
			cap *= 2;
		d = realloc(b->data, cap);
		if (!d)
			return 0;
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

/* server + path + "?a=b&c=d", URL-encoded. NULL on ENOMEM. */
static char *build_url(struct ap_remote *r, const char *path, const char *const *names,
		       const char *const *values, size_t n)
{
	size_t slen = strlen(r->server);
	char *url = NULL, *esc;
	size_t len = 0;
	FILE *f = open_memstream(&url, &len);
	bool first = true;

	if (!f)
		return NULL;
	while (slen && r->server[slen - 1] == '/')
		slen--; /* "http://h:7070/" + "/api" */
	fwrite(r->server, 1, slen, f);
	fputs(path, f);
	for (size_t i = 0; i < n; i++) {
		if (!values[i])
			continue;
		esc = curl_easy_escape(r->curl, values[i], 0);
		if (!esc) {
			fclose(f);
			free(url);
			return NULL;
		}
		fprintf(f, "%c%s=%s", first ? '?' : '&', names[i], esc);
		curl_free(esc);
		first = false;
	}
	if (fclose(f)) {
		free(url);
		return NULL;
	}
	return url;
}

/* The server's reason: the API's {"code", "message"}, else the start of the body. */
static void print_http_error(const struct ap_remote *r, long status, const char *url,
			     const struct ap_remote_body *b)
{
	struct ap_json *j = b->len ? ap_json_parse(b->data, b->len, NULL, 0) : NULL;
	const struct ap_json *msg = j ? ap_json_get(j, "message") : NULL;
	const char *text = msg && msg->type == AP_JSON_STRING ? msg->str : b->data;
	size_t shown = 0;

	fprintf(stderr, "aperture %s: the aggregator answered %ld", r->cmd, status);
	if (status == 401)
		fputs(" (unauthorized: give the read token with --token-file or "
		      "APERTURE_TOKEN_FILE)",
		      stderr);
	else if (status == 403)
		fputs(" (forbidden: that token is not the read token)", stderr);
	fputs(text && *text ? ": " : "", stderr);
	for (const char *s = text; s && *s && shown < (msg ? 4096 : MAX_ERROR_SHOWN); s++, shown++)
		fputc((unsigned char)*s < 0x20 && *s != '\n' ? '?' : *s, stderr);
	fprintf(stderr, "\n  (GET %s)\n", url);
	ap_json_free(j);
}

int ap_remote_get(struct ap_remote *r, const char *path, const char *const *names,
		  const char *const *values, size_t n, struct ap_remote_body *body)
{
	char errbuf[CURL_ERROR_SIZE] = "", auth[sizeof(r->token) + 32];
	struct curl_slist *hdrs = NULL;
	char *url = build_url(r, path, names, values, n);
	long status = 0;
	CURLcode rc;
	int ret = AP_EXIT_FAILURE;

	memset(body, 0, sizeof(*body));
	if (!url) {
		fprintf(stderr, "aperture %s: out of memory\n", r->cmd);
		return AP_EXIT_FAILURE;
	}
	curl_easy_reset(r->curl);
	curl_easy_setopt(r->curl, CURLOPT_URL, url);
	curl_easy_setopt(r->curl, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(r->curl, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(r->curl, CURLOPT_WRITEDATA, body);
	curl_easy_setopt(r->curl, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
	curl_easy_setopt(r->curl, CURLOPT_TIMEOUT, REQUEST_TIMEOUT_S);
	curl_easy_setopt(r->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(r->curl, CURLOPT_USERAGENT, "aperture-cli");
	/* only what we asked for: no redirect to file:// or elsewhere */
	curl_easy_setopt(r->curl, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(r->curl, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(r->curl, CURLOPT_PROTOCOLS, CURLPROTO_HTTP | CURLPROTO_HTTPS);
#endif
	if (r->ca_file)
		curl_easy_setopt(r->curl, CURLOPT_CAINFO, r->ca_file);
	if (r->token[0]) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", r->token);
		hdrs = curl_slist_append(NULL, auth);
		memset(auth, 0, sizeof(auth));
		if (!hdrs) {
			fprintf(stderr, "aperture %s: out of memory\n", r->cmd);
			goto out;
		}
		curl_easy_setopt(r->curl, CURLOPT_HTTPHEADER, hdrs);
	}
	rc = curl_easy_perform(r->curl);
	if (rc == CURLE_WRITE_ERROR && body->len + 1 >= AP_CLI_MAX_RESPONSE) {
		fprintf(stderr,
			"aperture %s: the answer from %s is larger than 1 GiB: narrow the "
			"query or the time range\n",
			r->cmd, r->server);
		goto out;
	}
	if (rc != CURLE_OK) {
		fprintf(stderr, "aperture %s: cannot reach the aggregator at %s: %s", r->cmd,
			r->server, errbuf[0] ? errbuf : curl_easy_strerror(rc));
		if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
		    rc == CURLE_OPERATION_TIMEDOUT)
			fputs(
			    "\n  (is aperture-aggregator running there? pick another with --server "
			    "or APERTURE_SERVER)",
			    stderr);
		else if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE ||
			 rc == CURLE_SSL_CONNECT_ERROR)
			fputs("\n  (TLS: give the aggregator's CA certificate with --ca-file)",
			      stderr);
		fputc('\n', stderr);
		goto out;
	}
	curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200) {
		print_http_error(r, status, url, body);
		goto out;
	}
	if (!body->data && !(body->data = calloc(1, 1))) { /* an empty answer is "" */
		fprintf(stderr, "aperture %s: out of memory\n", r->cmd);
		goto out;
	}
	ret = 0;
out:
	if (ret)
		ap_remote_body_free(body);
	curl_slist_free_all(hdrs);
	curl_easy_setopt(r->curl, CURLOPT_HTTPHEADER, NULL);
	free(url);
	return ret;
}

int ap_remote_time(const char *in, char *out, size_t len)
{
	size_t n = strlen(in), i = 1;

	if (in[0] != '-') {
		snprintf(out, len, "%s", in);
		return 0;
	}
	while (i < n && isdigit((unsigned char)in[i]))
		i++;
	if (i == 1 || i + 1 != n || !strchr("smhd", in[i]))
		return -EINVAL;
	snprintf(out, len, "now%s", in);
	return 0;
}
