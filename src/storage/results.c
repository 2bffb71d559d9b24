// SPDX-License-Identifier: MIT
/* The query result types of storage.h: freed the same way whatever backend filled them. */
#include <stdlib.h>
#include <string.h>

#include "storage.h"

void ap_store_series_free(struct ap_store_series *s)
{
	if (!s)
		return;
	free(s->mode);
	for (size_t i = 0; i < AP_MAX_VALUES; i++)
		free(s->value_types[i]);
	free(s->points);
	memset(s, 0, sizeof(*s));
}

void ap_store_rows_free(struct ap_store_rows *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++) {
		free((char *)r->rows[i].table);
		free((char *)r->rows[i].key);
	}
	free(r->rows);
	r->rows = NULL;
	r->n = 0;
}

void ap_store_strings_free(struct ap_store_strings *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	s->v = NULL;
	s->n = 0;
}
