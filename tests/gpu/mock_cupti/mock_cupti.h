/* SPDX-License-Identifier: MIT */
/* The mock CUPTI's entry points for the harness (mock_cupti.c): the CUDA side of CUPTI. */
#ifndef AP_MOCK_CUPTI_H
#define AP_MOCK_CUPTI_H

#include <stdint.h>

/* The clock activity records are stamped with: the client's timestamp callback when it
 * registered one, else CUPTI's own (CLOCK_REALTIME). */
uint64_t mock_cupti_now(void);
/* A new correlation id, as CUPTI assigns one per API call. */
uint32_t mock_cupti_next_correlation(void);
/* Invoke the subscriber for an API call (domain 1 driver, 2 runtime; site 0 enter, 1 exit)
 * when that callback is enabled. Returns whether it was invoked. */
int mock_cupti_api(uint32_t domain, uint32_t cbid, uint32_t site, uint32_t corr,
		   const char *func, const char *symbol);
/* Queue one activity record (a CUpti_Activity* struct of a supported kind) into the current
 * buffer. 1 stored, 0 dropped (no buffer; counted for cuptiActivityGetNumDroppedRecords) or
 * its kind not enabled, -1 unknown kind. */
int mock_cupti_record(const void *rec);
uint64_t mock_cupti_dropped_total(void);
int mock_cupti_kind_enabled(uint32_t kind);

#endif
