// SPDX-License-Identifier: MIT
/* Backend selection by the scheme of --storage, and the shared result types. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/errbuf.h"
#include "storage.h"

static const struct ap_store_ops *const backends[] = {
	&ap_sqlite_store_ops,
	&ap_clickhouse_store_ops,
};

int ap_store_open(const char *spec, const struct ap_store_opts *opts, struct ap_store **out,
		  char *err, size_t errlen)
{
	const char *colon = spec ? strchr(spec, ':') : NULL;

	*out = NULL;
	if (colon)
		for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
			const struct ap_store_ops *ops = backends[i];
			size_t n = strlen(ops->scheme);

			if ((size_t)(colon - spec) == n && !strncmp(spec, ops->scheme, n))
				return ops->open(colon + 1, opts, out, err, errlen);
		}
	return ap_errf(err, errlen, -EINVAL,
		       "unknown storage '%s': use sqlite:PATH (e.g. sqlite:./aperture-data/aperture.db) "
		       "or clickhouse://HOST:PORT/DB[?cluster=NAME&user=U&password_file=F]",
		       spec ? spec : "");
}

void ap_store_close(struct ap_store *s)
{
	if (s)
		s->ops->close(s);
}
