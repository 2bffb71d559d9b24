/* SPDX-License-Identifier: MIT */
/* Bounds-checked reading of WebAssembly binary encodings (LEB128, names, instructions).
 * Internal to src/filter: shared by the parser and the metering rewrite. */
#ifndef AP_FILTER_WASM_READER_H
#define AP_FILTER_WASM_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wasm_reader {
	const uint8_t *base; /* start of the module, for offsets in messages */
	const uint8_t *p, *end;
};

static inline size_t wasm_rd_off(const struct wasm_reader *r)
{
	return (size_t)(r->p - r->base);
}

static inline int wasm_rd_u8(struct wasm_reader *r, uint8_t *v)
{
	if (r->p >= r->end)
		return -1;
	*v = *r->p++;
	return 0;
}

/* Unsigned LEB128 of at most `bits` bits (32 or 64); rejects overlong and oversized values. */
static inline int wasm_rd_uleb(struct wasm_reader *r, unsigned bits, uint64_t *v)
{
	uint64_t x = 0;
	unsigned shift = 0;
	for (;;) {
		uint8_t b;
		if (wasm_rd_u8(r, &b))
			return -1;
		if (shift + 7 > bits && (b & 0x7f) >> (bits - shift))
			return -1; /* bits beyond the type */
		x |= (uint64_t)(b & 0x7f) << shift;
		shift += 7;
		if (!(b & 0x80))
			break;
		if (shift >= bits)
			return -1;
	}
	*v = x;
	return 0;
}

static inline int wasm_rd_u32(struct wasm_reader *r, uint32_t *v)
{
	uint64_t x;
	if (wasm_rd_uleb(r, 32, &x))
		return -1;
	*v = (uint32_t)x;
	return 0;
}

/* Signed LEB128 of at most `bits` bits; only the encoding length is checked here (the
 * validator checks the value), the value is returned sign-extended. */
static inline int wasm_rd_sleb(struct wasm_reader *r, unsigned bits, int64_t *v)
{
	uint64_t x = 0;
	unsigned shift = 0, n = 0, maxn = (bits + 6) / 7;
	uint8_t b;
	do {
		if (n++ >= maxn || wasm_rd_u8(r, &b))
			return -1;
		if (shift < 64)
			x |= (uint64_t)(b & 0x7f) << shift;
		shift += 7;
	} while (b & 0x80);
	if (shift < 64 && (b & 0x40))
		x |= ~(uint64_t)0 << shift;
	*v = (int64_t)x;
	return 0;
}

static inline int wasm_rd_skip(struct wasm_reader *r, size_t n)
{
	if ((size_t)(r->end - r->p) < n)
		return -1;
	r->p += n;
	return 0;
}

/* Instruction classes the parser and the rewrite care about. */
enum wasm_insn_kind {
	WASM_INSN_OTHER = 0,
	WASM_INSN_BLOCK, /* block or if: opens a region */
	WASM_INSN_LOOP,	 /* opens a region that is re-entered */
	WASM_INSN_ELSE,
	WASM_INSN_END,
	WASM_INSN_CALL,		 /* call: index in `imm` */
	WASM_INSN_CALL_INDIRECT, /* call_indirect: type index in `imm` */
	WASM_INSN_BR,		 /* br, br_if, br_table: (largest) label in `imm` */
	WASM_INSN_RETURN,
};

struct wasm_insn {
	enum wasm_insn_kind kind;
	uint8_t op;
	uint32_t imm;
};

/*
 * Decode one instruction at r->p (advancing past its immediates). Only the instruction set
 * Aperture accepts is known: MVP, sign extension, saturating truncation, multi-value block
 * types. Returns 0, or -1 with a reason in err (truncated, unsupported opcode).
 */
int wasm_next_insn(struct wasm_reader *r, struct wasm_insn *in, char *err, size_t errlen);

#endif
