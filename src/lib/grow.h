/* SPDX-License-Identifier: MIT */
/* Dynamic arrays: the one growth rule every module uses. */
#ifndef AP_GROW_H
#define AP_GROW_H

#include <stddef.h>

/* Make *arr (of *cap elements of `size` bytes) hold at least `need` elements, doubling from
 * 16. Returns 0 or -ENOMEM (then *arr and *cap are unchanged). */
int ap_grow_array(void **arr, size_t *cap, size_t need, size_t size);

#endif
