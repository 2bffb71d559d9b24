/* SPDX-License-Identifier: MIT */
/* Fuzz target: the ClickHouse backend's decoders of RowBinary answers (src/storage/
 * clickhouse_rb.c), which read network input: the series list, merged rows and series points,
 * and table rows. The first byte picks the decoder, the rest is the answer. A decoder either
 * accepts the whole answer or refuses it with a reason, within its size limits. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "storage/clickhouse_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ap_selector sel;
	static int parsed;
	char err[256] = "";
	int ret;

	if (!parsed) /* the selector shapes the readers use: equality, regex, a missing label */
		parsed = ap_selector_parse("{mode=\"cpu\",comm=~\"p.*\",nosuch=\"\"}", &sel, err,
					   sizeof(err))
			     ? -1
			     : 1;

	if (size < 1 || size > 1024 * 1024)
		return 0;
	switch (data[0] % 3) {
	case 0: {
		struct ch_series *v = NULL;
		size_t n = 0;

		ret = ch_parse_series(data + 1, size - 1, 1000, &v, &n, err, sizeof(err));
		for (size_t i = 0; !ret && i < n; i++) /* what the readers touch */
			if (!v[i].mode || !v[i].comm || v[i].nvalues > AP_MAX_VALUES ||
			    !v[i].vt[0] || !v[i].vt[1])
				abort();
			else if (parsed > 0)
				ap_selector_match(&sel, v[i].labels, v[i].nlabels);
		ch_series_free(v, n);
		break;
	}
	case 1: { /* group keys 1..7 and one large one: groups 1..4 */
		static const struct ch_gkey keys[] = {{1, 1}, {2, 1}, {3, 2},
						      {5, 3}, {7, 2}, {UINT64_MAX, 4}};
		struct ch_mrow *v = NULL;
		size_t n = 0;
		uint64_t late = 0;

		ret = ch_parse_mrows(data + 1, size - 1, keys, sizeof(keys) / sizeof(keys[0]),
				     data[0] & 0x80 ? 100 : 0, &v, &n, &late, err, sizeof(err));
		for (size_t i = 0; !ret && i < n; i++)
			if (!v[i].g || v[i].g > 4 || ((data[0] & 0x80) && v[i].key >= 100))
				abort();
		if (!ret && (n + late) * 48 > size) /* every row is 48 bytes */
			abort();
		free(v);
		break;
	}
	default: {
		struct ap_store_rows r;

		ret = ch_parse_trows(data + 1, size - 1, &r, err, sizeof(err));
		if (!ret)
			ap_store_rows_free(&r);
		else if (r.rows || r.n)
			abort();
		break;
	}
	}
	if (ret && !err[0])
		abort(); /* a refusal says why */
	return 0;
}
