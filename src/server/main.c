// SPDX-License-Identifier: MIT
/* aperture-aggregator: flags, tokens, the store, the HTTP server, signals. */
#include <errno.h>
#include <libgen.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "lib/log.h"
#include "server.h"
#include "storage/storage.h"

#define SHUTDOWN_TIMEOUT_MS 10000

/* sqlite:PATH: make PATH's directory (one level, owner only) so the default works in a fresh
 * checkout; anything deeper is the user's to create. */
static void make_store_dir(const char *spec)
{
	char *copy;

	if (strncmp(spec, "sqlite:", 7))
		return;
	copy = strdup(spec + 7);
	if (!copy)
		return;
	if (mkdir(dirname(copy), 0700) == 0)
		ap_info("created %s", copy);
	free(copy);
}

/* Every connection takes a descriptor: raise the soft limit (1024 on Debian) towards the
 * hard one so that --max-connections can be reached. */
static void raise_fd_limit(unsigned max_connections)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)max_connections + 256;

	if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl))
		ap_warn("cannot raise the open file limit to %llu: %s",
			(unsigned long long)rl.rlim_cur, strerror(errno));
}

int main(int argc, char **argv)
{
	struct ap_server_opts opts = {.prog = "aperture-aggregator"};
	struct ap_store_opts so = {0};
	struct ap_store *store = NULL;
	struct ap_server *srv = NULL;
	char *ingest_token = NULL, *read_token = NULL;
	char err[512] = "";
	sigset_t set;
	int rc, sig = 0, ret = AP_SERVER_EXIT_FAIL;
	unsigned left;

	rc = ap_server_parse_args(argc, argv, &opts);
	if (rc)
		return rc;
	if (opts.help) {
		ap_server_usage(stdout, opts.prog);
		return AP_SERVER_EXIT_OK;
	}
	ap_log_set_level(opts.verbose ? AP_LOG_INFO : AP_LOG_WARN);

	if (opts.ingest_token_file &&
	    ap_server_read_token(opts.ingest_token_file, &ingest_token, err, sizeof(err))) {
		fprintf(stderr, "%s: --ingest-token-file: %s\n", opts.prog, err);
		return AP_SERVER_EXIT_USAGE;
	}
	if (opts.read_token_file &&
	    ap_server_read_token(opts.read_token_file, &read_token, err, sizeof(err))) {
		fprintf(stderr, "%s: --read-token-file: %s\n", opts.prog, err);
		ret = AP_SERVER_EXIT_USAGE;
		goto out;
	}

	/* The server's threads inherit this mask: the signals reach sigwait() below only. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	raise_fd_limit(opts.max_connections);
	make_store_dir(opts.storage);
	so.retention_ns = opts.retention_ns;
	rc = ap_store_open(opts.storage, &so, &store, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "%s: cannot open storage %s: %s\n", opts.prog, opts.storage,
			err[0] ? err : strerror(-rc));
		goto out;
	}
	srv = ap_server_start(&opts, store, ingest_token, read_token, err, sizeof(err));
	if (!srv) {
		fprintf(stderr, "%s: %s\n", opts.prog, err);
		goto out;
	}
	printf("%s: listening on %s://%s%s%s:%u (storage %s, retention %s)\n", opts.prog,
	       opts.tls_cert ? "https" : "http", strchr(opts.listen_host, ':') ? "[" : "",
	       opts.listen_host, strchr(opts.listen_host, ':') ? "]" : "", ap_server_port(srv),
	       opts.storage, opts.retention_ns ? "on" : "off");
	fflush(stdout);

	while (sigwait(&set, &sig) != 0)
		;
	ap_info("signal %d: stopping (requests in flight get %d ms)", sig, SHUTDOWN_TIMEOUT_MS);
	left = ap_server_shutdown(srv, SHUTDOWN_TIMEOUT_MS);
	srv = NULL;
	if (left)
		fprintf(stderr, "%s: %u request(s) still in flight after %d ms were cut off\n",
			opts.prog, left, SHUTDOWN_TIMEOUT_MS);
	ret = AP_SERVER_EXIT_OK;
out:
	ap_server_shutdown(srv, 0);
	ap_store_close(store);
	if (ingest_token) {
		explicit_bzero(ingest_token, strlen(ingest_token));
		free(ingest_token);
	}
	if (read_token) {
		explicit_bzero(read_token, strlen(read_token));
		free(read_token);
	}
	return ret;
}
