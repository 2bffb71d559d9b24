/* SPDX-License-Identifier: MIT */
/* The no-frame-pointer workloads' shared library (nofp_lib.c). */
#ifndef NOFP_LIB_H
#define NOFP_LIB_H

#ifdef __cplusplus
extern "C" {
#endif

typedef unsigned long (*nf_callback)(unsigned long n);

/* Calls cb(n) and returns its result mixed with a global. */
unsigned long nflib_middle(nf_callback cb, unsigned long n);

#ifdef __cplusplus
}
#endif

#endif
