/* SPDX-License-Identifier: MIT */
/*
 * NOT part of the Aperture build: embedded as text and written as "wasm-rt.h" next to the
 * wasm2c output, where the generated header finds it first. It includes wabt's runtime header
 * (AP_SYS_WASM_RT, an absolute path given on the compiler command line) with every runtime
 * declaration hidden, so the generated code reaches the runtime in aot_runtime.c directly and
 * the object exports nothing but ap_aot_api. The C library headers wabt's header uses are
 * included first, outside the hidden region.
 */
#ifndef AP_WASM_RT_WRAPPER_H
#define AP_WASM_RT_WRAPPER_H

#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#pragma GCC visibility push(hidden)
#include AP_SYS_WASM_RT
#pragma GCC visibility pop

#endif
