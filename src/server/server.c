// SPDX-License-Identifier: MIT
/*
 * The server's life: the libmicrohttpd daemon (thread pool, keep-alive, TLS from PEM files),
 * the retention thread, and a shutdown that stops accepting, lets requests in flight finish
 * and then stops the threads.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/errbuf.h"
#include "lib/log.h"
#include "server_internal.h"

#define MAX_PEM (1 << 20)
#define CONN_MEMORY_LIMIT (256 * 1024) /* per connection: headers and the URL (labels) */
#define RETENTION_MIN_INTERVAL_NS (1000000000ULL)
#define RETENTION_MAX_INTERVAL_NS (60ULL * 1000000000ULL)

/* MHD's own messages: the last one is kept for the start error, the others logged. */
static __thread char mhd_last_error[256];

static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	vsnprintf(mhd_last_error, sizeof(mhd_last_error), fmt, ap);
	mhd_last_error[strcspn(mhd_last_error, "\n")] = 0;
	ap_debug("libmicrohttpd: %s", mhd_last_error);
}

static int read_pem(const char *path, const char *what, const char *marker, char **out, char *err,
		    size_t errlen)
{
	struct stat st;
	ssize_t n;
	char *buf;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	*out = NULL;
	if (fd < 0)
		return ap_errf(err, errlen, -errno, "cannot read the TLS %s %s: %s", what, path,
			       strerror(errno));
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size <= 0 || st.st_size > MAX_PEM) {
		close(fd);
		return ap_errf(err, errlen, -EINVAL,
			       "TLS %s %s: not a regular, non-empty file of at most 1 MiB", what,
			       path);
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return ap_errf(err, errlen, -ENOMEM, "out of memory");
	}
	n = read(fd, buf, (size_t)st.st_size);
	close(fd);
	if (n != st.st_size) {
		free(buf);
		return ap_errf(err, errlen, -EIO, "cannot read the TLS %s %s: short read", what,
			       path);
	}
	buf[n] = 0;
	if (!strstr(buf, marker)) {
		free(buf);
		return ap_errf(err, errlen, -EINVAL,
			       "TLS %s %s is not PEM (no '%s' line): give a PEM-encoded %s", what,
			       path, marker, what);
	}
	*out = buf;
	return 0;
}

/* Load the pair the way MHD will, to say exactly what is wrong with it (MHD's own message is
 * "Failed to initialize TLS support"): a PEM that does not parse, an encrypted key, a key
 * that is not the certificate's. */
static int check_tls_pair(const struct ap_server_opts *o, const char *cert, const char *key,
			  char *err, size_t errlen)
{
	gnutls_certificate_credentials_t cred;
	gnutls_datum_t c = {(unsigned char *)cert, (unsigned)strlen(cert)};
	gnutls_datum_t k = {(unsigned char *)key, (unsigned)strlen(key)};
	int rc;

	if (gnutls_certificate_allocate_credentials(&cred) < 0)
		return ap_errf(err, errlen, -ENOMEM, "out of memory");
	rc = gnutls_certificate_set_x509_key_mem2(cred, &c, &k, GNUTLS_X509_FMT_PEM, NULL, 0);
	gnutls_certificate_free_credentials(cred);
	if (rc < 0)
		return ap_errf(err, errlen, -EINVAL,
			       "TLS certificate %s with key %s: %s (give the PEM certificate and "
			       "its unencrypted PEM private key)",
			       o->tls_cert, o->tls_key, gnutls_strerror(rc));
	return 0;
}

static void *retention_main(void *arg)
{
	struct ap_server *s = arg;
	uint64_t interval = s->opts.retention_ns / 100;
	char err[256];

	if (interval < RETENTION_MIN_INTERVAL_NS)
		interval = RETENTION_MIN_INTERVAL_NS;
	if (interval > RETENTION_MAX_INTERVAL_NS)
		interval = RETENTION_MAX_INTERVAL_NS;
	pthread_mutex_lock(&s->stop_lock);
	while (!s->stopping) {
		struct timespec ts;
		uint64_t now = ap_server_now_ns();
		int rc;

		pthread_mutex_unlock(&s->stop_lock);
		err[0] = 0;
		rc = s->store->ops->retention(
		    s->store, now > s->opts.retention_ns ? now - s->opts.retention_ns : 0, err,
		    sizeof(err));
		if (rc)
			ap_warn("retention: %s", err[0] ? err : strerror(-rc));
		pthread_mutex_lock(&s->stop_lock);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += (time_t)(interval / 1000000000ULL);
		ts.tv_nsec += (long)(interval % 1000000000ULL);
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		while (!s->stopping &&
		       pthread_cond_timedwait(&s->stop_cond, &s->stop_lock, &ts) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&s->stop_lock);
	return NULL;
}

static void server_free(struct ap_server *s)
{
	if (!s)
		return;
	ap_server_metrics_destroy(&s->metrics);
	pthread_mutex_destroy(&s->stop_lock);
	pthread_cond_destroy(&s->stop_cond);
	if (s->tls_key_pem) {
		explicit_bzero(s->tls_key_pem, strlen(s->tls_key_pem));
		free(s->tls_key_pem);
	}
	free(s->tls_cert_pem);
	free(s);
}

struct ap_server *ap_server_start(const struct ap_server_opts *opts, struct ap_store *store,
				  const char *ingest_token, const char *read_token, char *err,
				  size_t errlen)
{
	MHD_AccessHandlerCallback access;
	MHD_RequestCompletedCallback done;
	ap_unescape_fn unescape;
	struct sockaddr_storage ss;
	struct MHD_OptionItem o[16];
	const union MHD_DaemonInfo *info;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG;
	struct ap_server *s;
	bool v6 = strchr(opts->listen_host, ':') != NULL;
	size_t no = 0;
	int rc;

	s = calloc(1, sizeof(*s));
	if (!s) {
		ap_errf(err, errlen, -ENOMEM, "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	s->opts = *opts;
	s->store = store;
	s->ingest_token = ingest_token;
	s->read_token = read_token;
	s->started_ns = ap_server_now_ns();
	/* bodies held at once: room for every thread to take a full one, twice */
	s->body_budget = opts->max_body * (uint64_t)(opts->threads ? opts->threads : 1) * 2;
	ap_server_metrics_init(&s->metrics);
	pthread_mutex_init(&s->stop_lock, NULL);
	pthread_cond_init(&s->stop_cond, NULL);

	memset(&ss, 0, sizeof(ss));
	if (v6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons(opts->port);
		if (inet_pton(AF_INET6, opts->listen_host, &a->sin6_addr) != 1)
			goto bad_addr;
		flags |= MHD_USE_IPv6;
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		a->sin_family = AF_INET;
		a->sin_port = htons(opts->port);
		if (inet_pton(AF_INET, opts->listen_host, &a->sin_addr) != 1)
			goto bad_addr;
	}
	if (MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES)
		flags |= MHD_USE_EPOLL;
	else
		flags |= MHD_USE_POLL;

	ap_server_http_callbacks(&access, &done, &unescape);
	o[no++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, &ss};
	o[no++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, opts->threads, NULL};
	o[no++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, opts->max_connections, NULL};
	o[no++] =
	    (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, opts->conn_timeout_s, NULL};
	o[no++] =
	    (struct MHD_OptionItem){MHD_OPTION_CONNECTION_MEMORY_LIMIT, CONN_MEMORY_LIMIT, NULL};
	o[no++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)done, s};
	o[no++] = (struct MHD_OptionItem){MHD_OPTION_UNESCAPE_CALLBACK, (intptr_t)unescape, NULL};
	o[no++] = (struct MHD_OptionItem){MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_logger, NULL};
	if (opts->tls_cert) {
		if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
			ap_errf(err, errlen, -ENOTSUP,
				"this libmicrohttpd has no TLS support (GnuTLS); run without "
				"--tls-cert or install a libmicrohttpd built with it");
			goto fail;
		}
		rc = read_pem(opts->tls_cert, "certificate", "-----BEGIN CERTIFICATE",
			      &s->tls_cert_pem, err, errlen);
		if (!rc)
			rc = read_pem(opts->tls_key, "key", "PRIVATE KEY-----", &s->tls_key_pem,
				      err, errlen);
		if (!rc)
			rc = check_tls_pair(opts, s->tls_cert_pem, s->tls_key_pem, err, errlen);
		if (rc)
			goto fail;
		flags |= MHD_USE_TLS;
		o[no++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, s->tls_cert_pem};
		o[no++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, s->tls_key_pem};
	}
	o[no++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};

	mhd_last_error[0] = 0;
	s->daemon = MHD_start_daemon(flags, opts->port, NULL, NULL, access, s, MHD_OPTION_ARRAY, o,
				     MHD_OPTION_END);
	if (!s->daemon) {
		if (opts->tls_cert)
			ap_errf(err, errlen, -EINVAL,
				"cannot listen on %s:%u with TLS (certificate %s, key %s): %s; "
				"check that the key is the certificate's and neither is "
				"encrypted",
				opts->listen_host, opts->port, opts->tls_cert, opts->tls_key,
				mhd_last_error[0] ? mhd_last_error : "libmicrohttpd refused them");
		else
			ap_errf(err, errlen, -EADDRINUSE, "cannot listen on %s%s%s:%u: %s",
				v6 ? "[" : "", opts->listen_host, v6 ? "]" : "", opts->port,
				mhd_last_error[0] ? mhd_last_error : "address in use?");
		goto fail;
	}
	info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
	if (info)
		s->opts.port = info->port;
	if (opts->retention_ns) {
		if (pthread_create(&s->retention_thread, NULL, retention_main, s)) {
			ap_errf(err, errlen, -EAGAIN, "cannot start the retention thread");
			MHD_stop_daemon(s->daemon);
			goto fail;
		}
		s->retention_running = true;
	}
	return s;
bad_addr:
	ap_errf(err, errlen, -EINVAL,
		"bad listen address '%s': give a numeric IPv4 or IPv6 address", opts->listen_host);
fail:
	server_free(s);
	errno = EINVAL;
	return NULL;
}

uint16_t ap_server_port(const struct ap_server *s) { return s->opts.port; }

unsigned ap_server_shutdown(struct ap_server *s, unsigned timeout_ms)
{
	MHD_socket lsock;
	unsigned left = 0;

	if (!s)
		return 0;
	/* stop accepting; connections already open are served to the end */
	lsock = MHD_quiesce_daemon(s->daemon);
	if (lsock != MHD_INVALID_SOCKET)
		close(lsock);
	for (unsigned waited = 0; waited < timeout_ms; waited += 10) {
		left = (unsigned)__atomic_load_n(&s->in_flight, __ATOMIC_RELAXED);
		if (!left)
			break;
		usleep(10000);
	}
	left = (unsigned)__atomic_load_n(&s->in_flight, __ATOMIC_RELAXED);
	MHD_stop_daemon(s->daemon);
	if (s->retention_running) {
		pthread_mutex_lock(&s->stop_lock);
		s->stopping = true;
		pthread_cond_broadcast(&s->stop_cond);
		pthread_mutex_unlock(&s->stop_lock);
		pthread_join(s->retention_thread, NULL);
	}
	server_free(s);
	return left;
}
