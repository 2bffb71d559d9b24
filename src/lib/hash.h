/* SPDX-License-Identifier: MIT */
/*
 * The one hash function family of the userspace code: a byte hash and an integer mixer.
 * Header-only (static inline) so the standalone filter library can use it without linking
 * the rest of the core. Values are for in-memory tables and cache keys only: they may change
 * between versions, so never persist them where an older build must read them back.
 *
 * The BPF programs hash stacks on their own (src/bpf/stack_store.h, FNV-1a over 64-bit
 * frames); no userspace code recomputes that hash, so the two need not agree.
 */
#ifndef AP_HASH_H
#define AP_HASH_H

#include <stddef.h>
#include <stdint.h>

/* A bijective 64-bit finalizer (MurmurHash3's fmix64): every input bit affects every output
 * bit, so the low bits of the result can index a power-of-two table. Distinct inputs give
 * distinct outputs; 0 maps to 0. */
static inline uint64_t ap_hash_mix64(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	k *= 0xc4ceb9fe1a85ec53ULL;
	k ^= k >> 33;
	return k;
}

/* FNV-1a over len bytes, started from `seed`, finished with ap_hash_mix64. Different seeds
 * give unrelated hashes of the same bytes; h = ap_hash_bytes(b, n, h) folds one more piece
 * into a running hash. */
static inline uint64_t ap_hash_bytes(const void *data, size_t len, uint64_t seed)
{
	const unsigned char *b = data;
	uint64_t h = seed ^ 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < len; i++) {
		h ^= b[i];
		h *= 0x100000001b3ULL;
	}
	return ap_hash_mix64(h);
}

#endif
