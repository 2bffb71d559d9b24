// SPDX-License-Identifier: MIT
#include "hist.h"
#include "parse.h"

#include <string.h>

unsigned int ap_hist_slot(uint64_t v)
{
	return ap_log2_u64(v);
}

uint64_t ap_hist_slot_low(unsigned int i)
{
	return i == 0 ? 0 : 1ULL << i;
}

uint64_t ap_hist_slot_high(unsigned int i)
{
	return i >= 63 ? UINT64_MAX : 1ULL << (i + 1);
}

uint64_t ap_hist_count(const uint64_t *slots)
{
	uint64_t n = 0;

	for (unsigned int i = 0; i < AP_HIST_SLOTS; i++)
		n += slots[i];
	return n;
}

uint64_t ap_hist_quantile(const uint64_t *slots, double q, uint64_t min, uint64_t max)
{
	uint64_t total = ap_hist_count(slots), seen = 0, est;
	double rank;

	if (total == 0)
		return 0;
	if (q <= 0)
		q = 1e-9;
	if (q > 1)
		q = 1;
	rank = q * (double)total;
	for (unsigned int i = 0; i < AP_HIST_SLOTS; i++) {
		double lo, hi, frac;

		if (!slots[i] || (double)(seen + slots[i]) < rank) {
			seen += slots[i];
			continue;
		}
		lo = (double)ap_hist_slot_low(i);
		hi = (double)ap_hist_slot_high(i);
		frac = (rank - (double)seen) / (double)slots[i];
		est = (uint64_t)(lo + frac * (hi - lo));
		if (est < min)
			est = min;
		if (est > max)
			est = max;
		return est;
	}
	return max;
}

static void human(uint64_t v, const char *unit, char *buf, size_t len)
{
	if (strcmp(unit, "ns") == 0)
		ap_format_duration(v, buf, len); /* the one duration style of the reports */
	else
		snprintf(buf, len, "%llu", (unsigned long long)v);
}

void ap_hist_print(FILE *out, const uint64_t *slots, const char *unit, const char *indent)
{
	int first = -1, last = -1;
	uint64_t peak = 0;

	for (int i = 0; i < AP_HIST_SLOTS; i++) {
		if (!slots[i])
			continue;
		if (first < 0)
			first = i;
		last = i;
		if (slots[i] > peak)
			peak = slots[i];
	}
	if (first < 0) {
		fprintf(out, "%s(empty)\n", indent);
		return;
	}
	fprintf(out, "%s%21s : %-10s |%-40s|\n", indent, unit, "count", "distribution");
	for (int i = first; i <= last; i++) {
		char lo[24], hi[24], range[52], bar[41];
		int w = (int)((double)slots[i] * 40.0 / (double)peak + 0.5);

		human(ap_hist_slot_low((unsigned int)i), unit, lo, sizeof(lo));
		human(ap_hist_slot_high((unsigned int)i), unit, hi, sizeof(hi));
		snprintf(range, sizeof(range), "%s -> %s", lo, hi);
		memset(bar, '*', (size_t)w);
		bar[w] = '\0';
		fprintf(out, "%s%21s : %-10llu |%-40s|\n", indent, range,
			(unsigned long long)slots[i], bar);
	}
}
