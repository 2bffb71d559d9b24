// SPDX-License-Identifier: MIT
/*
 * DWARF call frame information decoder: CIEs, FDEs and the CFA programs of .eh_frame (LSB
 * Core spec, "Exception Frames") and .debug_frame (DWARF 4/5 section 6.4). Every read is
 * bounds-checked: the input is whatever a process mapped.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "cfi.h"

#define DW_EH_PE_absptr 0x00
#define DW_EH_PE_uleb128 0x01
#define DW_EH_PE_udata2 0x02
#define DW_EH_PE_udata4 0x03
#define DW_EH_PE_udata8 0x04
#define DW_EH_PE_sleb128 0x09
#define DW_EH_PE_sdata2 0x0a
#define DW_EH_PE_sdata4 0x0b
#define DW_EH_PE_sdata8 0x0c
#define DW_EH_PE_pcrel 0x10
#define DW_EH_PE_datarel 0x30
#define DW_EH_PE_aligned 0x50
#define DW_EH_PE_indirect 0x80
#define DW_EH_PE_omit 0xff

#define REG_RBP 6
#define STATE_STACK 16 /* DW_CFA_remember_state nesting we keep */

/* A bounded reader. It keeps the bytes left, not an end pointer: every check compares a
 * length with `left`, so no check can wrap, and a read past the end only sets err. */
struct rd {
	const uint8_t *p;
	size_t left;
	bool err;
};

static struct rd rd_make(const uint8_t *p, size_t len)
{
	return (struct rd){ p, len, false };
}

/* Consume n bytes; returns where they start, or NULL (and err) when fewer are left. */
static const uint8_t *rd_skip(struct rd *r, uint64_t n)
{
	const uint8_t *at = r->p;

	if (r->err || n > r->left) {
		r->err = true;
		return NULL;
	}
	r->p += n;
	r->left -= (size_t)n;
	return at;
}

static uint64_t rd_u(struct rd *r, unsigned int n)
{
	const uint8_t *at = rd_skip(r, n);
	uint64_t v = 0;

	for (unsigned int i = 0; at && i < n; i++)
		v |= (uint64_t)at[i] << (8 * i);
	return v;
}

static uint8_t rd_byte(struct rd *r)
{
	return (uint8_t)rd_u(r, 1);
}

static uint64_t rd_uleb(struct rd *r)
{
	uint64_t v = 0;
	unsigned int shift = 0;

	while (!r->err) {
		uint8_t b = rd_byte(r);

		if (r->err)
			break;
		if (shift < 64)
			v |= (uint64_t)(b & 0x7f) << shift;
		shift += 7;
		if (!(b & 0x80))
			break;
	}
	return v;
}

static int64_t rd_sleb(struct rd *r)
{
	uint64_t v = 0;
	unsigned int shift = 0;
	uint8_t b = 0;

	while (!r->err) {
		b = rd_byte(r);
		if (r->err)
			return 0;
		if (shift < 64)
			v |= (uint64_t)(b & 0x7f) << shift;
		shift += 7;
		if (!(b & 0x80))
			break;
	}
	if (shift < 64 && (b & 0x40))
		v |= ~0ULL << shift;
	return (int64_t)v;
}

/* factor x data alignment: a product that does not fit is a malformed program (checked:
 * signed overflow is undefined behaviour, and a hostile file picks both operands). */
static int64_t scaled(struct rd *r, int64_t v, int64_t da)
{
	int64_t out;

	if (__builtin_mul_overflow(v, da, &out)) {
		r->err = true;
		return 0;
	}
	return out;
}

/* An unsigned factor (DW_CFA_offset and friends) scaled by the data alignment. */
static int64_t scaled_u(struct rd *r, uint64_t v, int64_t da)
{
	if (v > INT64_MAX) {
		r->err = true;
		return 0;
	}
	return scaled(r, (int64_t)v, da);
}

/* An encoded pointer (DW_EH_PE_*). `sec` gives the pc-relative and data-relative bases. */
static uint64_t rd_enc(struct rd *r, uint8_t enc, const struct ap_cfi_section *sec)
{
	uint64_t pos = sec->vaddr + (uint64_t)(r->p - sec->data), v;

	if (enc == DW_EH_PE_omit)
		return 0;
	if ((enc & 0x70) == DW_EH_PE_aligned) {
		size_t mis = (size_t)(pos & 7);

		if (mis)
			rd_u(r, 8 - (unsigned int)mis);
		return rd_u(r, 8);
	}
	switch (enc & 0x0f) {
	case DW_EH_PE_absptr:
		v = rd_u(r, 8);
		break;
	case DW_EH_PE_uleb128:
		v = rd_uleb(r);
		break;
	case DW_EH_PE_udata2:
		v = rd_u(r, 2);
		break;
	case DW_EH_PE_udata4:
		v = rd_u(r, 4);
		break;
	case DW_EH_PE_udata8:
		v = rd_u(r, 8);
		break;
	case DW_EH_PE_sleb128:
		v = (uint64_t)rd_sleb(r);
		break;
	case DW_EH_PE_sdata2:
		v = (uint64_t)(int64_t)(int16_t)rd_u(r, 2);
		break;
	case DW_EH_PE_sdata4:
		v = (uint64_t)(int64_t)(int32_t)rd_u(r, 4);
		break;
	case DW_EH_PE_sdata8:
		v = rd_u(r, 8);
		break;
	default:
		r->err = true;
		return 0;
	}
	switch (enc & 0x70) {
	case 0:
		break;
	case DW_EH_PE_pcrel:
		v += pos;
		break;
	case DW_EH_PE_datarel:
		v += sec->datarel_base;
		break;
	default: /* textrel, funcrel: not used on x86-64 */
		r->err = true;
	}
	return v;
}

struct cie {
	const uint8_t *insns;
	size_t insns_len;
	uint64_t code_align;
	int64_t data_align;
	uint32_t ra_reg;
	uint8_t fde_enc;
	uint8_t addr_size;
	bool has_aug_data; /* 'z' */
	bool signal;	   /* 'S' */
};

/* One entry's header: its length (4 or 12 bytes) and its CIE id / CIE pointer. On success
 * `body` reads the rest of the entry (after the id) and *next is the offset of the entry
 * after it. Returns 0, 1 (the .eh_frame terminator) or -EINVAL. */
static int entry_header(const struct ap_cfi_section *sec, uint64_t off, struct rd *body,
			uint64_t *id, uint64_t *id_pos, bool *dwarf64, uint64_t *next)
{
	struct rd r;
	uint64_t len;

	if (off >= sec->size)
		return -EINVAL;
	r = rd_make(sec->data + off, sec->size - (size_t)off);
	*dwarf64 = false;
	len = rd_u(&r, 4);
	if (len == 0xffffffffu) {
		len = rd_u(&r, 8);
		*dwarf64 = true;
	}
	if (r.err || len > r.left)
		return -EINVAL;
	*next = (uint64_t)(r.p - sec->data) + len;
	if (len == 0)
		return 1;
	/* the entry's own bytes only: an entry shorter than its id is malformed, and nothing
	 * after it is read as part of it */
	r.left = (size_t)len;
	*id_pos = (uint64_t)(r.p - sec->data);
	*id = rd_u(&r, *dwarf64 ? 8 : 4);
	if (r.err)
		return -EINVAL;
	*body = r;
	return 0;
}

/* Parse the CIE at section offset `off`. Returns 0 or -EINVAL. */
static int parse_cie(const struct ap_cfi_section *sec, uint64_t off, struct cie *c)
{
	struct rd r;
	uint64_t id, id_pos, next;
	const char *aug;
	size_t aug_len;
	uint8_t version;
	bool dwarf64;

	memset(c, 0, sizeof(*c));
	c->fde_enc = DW_EH_PE_absptr;
	c->addr_size = 8;
	if (entry_header(sec, off, &r, &id, &id_pos, &dwarf64, &next) != 0)
		return -EINVAL;
	if (sec->eh ? id != 0 : id != (dwarf64 ? ~0ULL : 0xffffffffu))
		return -EINVAL;
	version = rd_byte(&r);
	if (r.err || (version != 1 && version != 3 && version != 4))
		return -EINVAL;
	aug = (const char *)r.p;
	aug_len = strnlen(aug, r.left);
	if (aug_len == r.left)
		return -EINVAL; /* not terminated inside the entry */
	rd_skip(&r, aug_len + 1);
	if (aug[0] && aug[0] != 'z' && strcmp(aug, "S") != 0)
		return -EINVAL; /* "eh" (ancient g++) and other forms we cannot skip */
	if (version == 4) {
		c->addr_size = rd_byte(&r);
		rd_byte(&r); /* segment selector size */
		if (c->addr_size != 8 && c->addr_size != 4)
			return -EINVAL;
	}
	c->code_align = rd_uleb(&r);
	c->data_align = rd_sleb(&r);
	c->ra_reg = version == 1 ? rd_byte(&r) : (uint32_t)rd_uleb(&r);
	if (aug[0] == 'z') {
		uint64_t alen = rd_uleb(&r);
		const uint8_t *adata = rd_skip(&r, alen);
		struct rd ar = rd_make(adata, (size_t)alen);

		if (!adata)
			return -EINVAL;
		c->has_aug_data = true;
		for (const char *a = aug + 1; *a && !ar.err; a++) {
			if (*a == 'R') {
				c->fde_enc = rd_byte(&ar);
			} else if (*a == 'L') {
				rd_byte(&ar);
			} else if (*a == 'P') {
				uint8_t penc = rd_byte(&ar);

				rd_enc(&ar, penc & 0x7f, sec); /* skipped, never dereferenced */
			} else if (*a == 'S') {
				c->signal = true;
			} else {
				break; /* unknown letter: the length lets us skip the rest */
			}
		}
		if (ar.err)
			return -EINVAL;
	} else if (aug[0] == 'S') {
		c->signal = true;
	}
	if (r.err)
		return -EINVAL;
	if (r.left > AP_CFI_MAX_CIE_INSNS)
		return -E2BIG; /* run again for every FDE of the CIE: see AP_CFI_MAX_CIE_INSNS */
	c->insns = r.p;
	c->insns_len = r.left;
	return 0;
}

struct exec {
	struct ap_cfi_regs cur, init;
	struct ap_cfi_regs saved[STATE_STACK];
	int nsaved, dropped; /* states beyond STATE_STACK are counted, not kept */
	uint64_t loc;
};

static struct ap_cfi_rule *rule_of(struct exec *x, const struct cie *c, uint64_t reg)
{
	if (reg == REG_RBP)
		return &x->cur.rbp;
	if (reg == c->ra_reg)
		return &x->cur.ra;
	return NULL; /* a register the walker does not restore */
}

static void set_rule(struct exec *x, const struct cie *c, uint64_t reg, uint8_t kind,
		     int64_t off, uint64_t reg2, const uint8_t *expr, uint64_t expr_len)
{
	struct ap_cfi_rule *rl = rule_of(x, c, reg);

	if (!rl)
		return;
	rl->kind = kind;
	rl->off = off;
	rl->reg = (uint32_t)reg2;
	rl->expr = expr;
	rl->expr_len = (uint32_t)expr_len;
}

struct run_ctx {
	const struct ap_cfi_section *sec;
	const struct ap_cfi_fde *fde; /* NULL while running the CIE's initial instructions */
	ap_cfi_row_fn cb;
	void *cb_ctx;
	int cb_ret;
};

/* Move to `loc`, reporting the row that held until there. Returns false to stop. */
static bool advance(struct exec *x, struct run_ctx *rc, uint64_t loc)
{
	if (!rc->fde)
		return true; /* advances in a CIE are invalid; ignore them */
	if (loc > rc->fde->end)
		loc = rc->fde->end;
	if (loc > x->loc) {
		rc->cb_ret = rc->cb(rc->cb_ctx, rc->fde, x->loc, &x->cur);
		x->loc = loc;
	}
	return rc->cb_ret == 0 && x->loc < rc->fde->end;
}

/* Run a CFA program. Returns 0, -EINVAL (malformed or unknown opcode) or 1 (stopped). */
static int run(struct exec *x, const struct cie *c, const uint8_t *p, size_t len,
	       struct run_ctx *rc)
{
	struct rd r = rd_make(p, len);
	int64_t da = c->data_align;
	uint64_t ca = c->code_align;

	while (r.left && !r.err) {
		uint8_t op = rd_byte(&r), low = op & 0x3f;
		uint64_t reg, n;
		const uint8_t *blk;

		switch (op >> 6) {
		case 1: /* DW_CFA_advance_loc */
			if (!advance(x, rc, x->loc + low * ca))
				return 1;
			continue;
		case 2: /* DW_CFA_offset */
			n = rd_uleb(&r);
			set_rule(x, c, low, AP_RULE_OFFSET, scaled_u(&r, n, da), 0, NULL, 0);
			continue;
		case 3: { /* DW_CFA_restore */
			struct ap_cfi_rule *rl = rule_of(x, c, low);

			if (rl)
				*rl = low == REG_RBP ? x->init.rbp : x->init.ra;
			continue;
		}
		}
		switch (op) {
		case 0x00: /* nop */
			break;
		case 0x01: /* set_loc */
			n = rd_enc(&r, c->fde_enc, rc->sec);
			if (!r.err && !advance(x, rc, n))
				return 1;
			break;
		case 0x02: /* advance_loc1 */
		case 0x03: /* advance_loc2 */
		case 0x04: /* advance_loc4 */
			n = rd_u(&r, op == 0x02 ? 1 : op == 0x03 ? 2 : 4);
			if (!r.err && !advance(x, rc, x->loc + n * ca))
				return 1;
			break;
		case 0x05: /* offset_extended */
			reg = rd_uleb(&r);
			n = rd_uleb(&r);
			set_rule(x, c, reg, AP_RULE_OFFSET, scaled_u(&r, n, da), 0, NULL, 0);
			break;
		case 0x06: { /* restore_extended */
			struct ap_cfi_rule *rl;

			reg = rd_uleb(&r);
			rl = rule_of(x, c, reg);
			if (rl)
				*rl = reg == REG_RBP ? x->init.rbp : x->init.ra;
			break;
		}
		case 0x07: /* undefined */
			set_rule(x, c, rd_uleb(&r), AP_RULE_UNDEFINED, 0, 0, NULL, 0);
			break;
		case 0x08: /* same_value */
			set_rule(x, c, rd_uleb(&r), AP_RULE_SAME, 0, 0, NULL, 0);
			break;
		case 0x09: /* register */
			reg = rd_uleb(&r);
			set_rule(x, c, reg, AP_RULE_REGISTER, 0, rd_uleb(&r), NULL, 0);
			break;
		case 0x0a: /* remember_state */
			if (x->nsaved < STATE_STACK)
				x->saved[x->nsaved++] = x->cur;
			else
				x->dropped++;
			break;
		case 0x0b: /* restore_state: the CFA rule too, as GCC's unwinder does */
			if (x->dropped)
				x->dropped--;
			else if (x->nsaved > 0)
				x->cur = x->saved[--x->nsaved];
			else
				return -EINVAL;
			break;
		case 0x0c: /* def_cfa */
			x->cur.cfa_reg = (uint32_t)rd_uleb(&r);
			x->cur.cfa_off = (int64_t)rd_uleb(&r);
			x->cur.cfa_expr = NULL;
			break;
		case 0x0d: /* def_cfa_register */
			x->cur.cfa_reg = (uint32_t)rd_uleb(&r);
			x->cur.cfa_expr = NULL;
			break;
		case 0x0e: /* def_cfa_offset */
			x->cur.cfa_off = (int64_t)rd_uleb(&r);
			break;
		case 0x0f: /* def_cfa_expression */
			n = rd_uleb(&r);
			blk = rd_skip(&r, n);
			if (!blk || n > UINT32_MAX)
				return -EINVAL;
			x->cur.cfa_expr = blk;
			x->cur.cfa_expr_len = (uint32_t)n;
			break;
		case 0x10: /* expression */
		case 0x16: /* val_expression */
			reg = rd_uleb(&r);
			n = rd_uleb(&r);
			blk = rd_skip(&r, n);
			if (!blk || n > UINT32_MAX)
				return -EINVAL;
			set_rule(x, c, reg, op == 0x10 ? AP_RULE_EXPR : AP_RULE_VAL_EXPR, 0, 0, blk,
				 n);
			break;
		case 0x11: /* offset_extended_sf */
			reg = rd_uleb(&r);
			set_rule(x, c, reg, AP_RULE_OFFSET, scaled(&r, rd_sleb(&r), da), 0, NULL, 0);
			break;
		case 0x12: /* def_cfa_sf */
			x->cur.cfa_reg = (uint32_t)rd_uleb(&r);
			x->cur.cfa_off = scaled(&r, rd_sleb(&r), da);
			x->cur.cfa_expr = NULL;
			break;
		case 0x13: /* def_cfa_offset_sf */
			x->cur.cfa_off = scaled(&r, rd_sleb(&r), da);
			break;
		case 0x14: /* val_offset */
			reg = rd_uleb(&r);
			n = rd_uleb(&r);
			set_rule(x, c, reg, AP_RULE_VAL_OFFSET, scaled_u(&r, n, da), 0, NULL, 0);
			break;
		case 0x15: /* val_offset_sf */
			reg = rd_uleb(&r);
			set_rule(x, c, reg, AP_RULE_VAL_OFFSET, scaled(&r, rd_sleb(&r), da), 0, NULL, 0);
			break;
		case 0x2e: /* GNU_args_size */
			rd_uleb(&r);
			break;
		case 0x2f: /* GNU_negative_offset_extended */
			reg = rd_uleb(&r);
			n = rd_uleb(&r);
			if (n > INT64_MAX)
				return -EINVAL;
			set_rule(x, c, reg, AP_RULE_OFFSET, scaled(&r, -(int64_t)n, da), 0, NULL, 0);
			break;
		default:
			return -EINVAL;
		}
	}
	return r.err ? -EINVAL : 0;
}

/* Decode one FDE whose body (after the CIE pointer) is `r`. */
static int do_fde(const struct ap_cfi_section *sec, const struct cie *c, struct rd r,
		  ap_cfi_want_fn want, ap_cfi_row_fn cb, void *ctx, struct ap_cfi_parse_stats *st)
{
	struct ap_cfi_fde fde = { 0 };
	struct run_ctx rc = { sec, NULL, cb, ctx, 0 };
	struct exec x;
	uint64_t range;
	int err;

	if (sec->eh) {
		fde.start = rd_enc(&r, c->fde_enc, sec);
		range = rd_enc(&r, c->fde_enc & 0x0f, sec);
	} else {
		fde.start = rd_u(&r, c->addr_size);
		range = rd_u(&r, c->addr_size);
	}
	if (c->has_aug_data)
		rd_skip(&r, rd_uleb(&r));
	if (r.err) {
		st->fdes_bad++;
		return 0;
	}
	fde.end = fde.start + range;
	fde.signal = c->signal;
	/* zero-length FDEs, and those of code the linker discarded (start 0) */
	if (range == 0 || fde.start == 0 || fde.end < fde.start || (want && !want(ctx, &fde))) {
		st->fdes_skipped++;
		return 0;
	}

	memset(&x, 0, sizeof(x));
	x.cur.ra.kind = AP_RULE_SAME;
	x.cur.rbp.kind = AP_RULE_SAME;
	x.loc = fde.start;
	err = run(&x, c, c->insns, c->insns_len, &rc);
	if (err < 0) {
		st->fdes_bad++;
		return 0;
	}
	x.init = x.cur;
	x.nsaved = x.dropped = 0;
	rc.fde = &fde;
	err = run(&x, c, r.p, r.left, &rc);
	if (rc.cb_ret)
		return rc.cb_ret;
	if (err < 0) {
		/* the rows before the bad opcode were reported and are right; stop here */
		st->fdes_bad++;
		return 0;
	}
	if (x.loc < fde.end) {
		rc.cb_ret = cb(ctx, &fde, x.loc, &x.cur);
		if (rc.cb_ret)
			return rc.cb_ret;
	}
	st->fdes++;
	return 0;
}

int ap_cfi_parse(const struct ap_cfi_section *sec, ap_cfi_want_fn want, ap_cfi_row_fn cb,
		 void *ctx, struct ap_cfi_parse_stats *stats)
{
	struct ap_cfi_parse_stats dummy;
	uint64_t off = 0;

	if (!stats)
		stats = &dummy;
	memset(stats, 0, sizeof(*stats));
	while (off < sec->size && sec->size - off >= 4) {
		struct rd body;
		uint64_t id, cie_off, id_pos, next;
		bool dwarf64;
		struct cie c;
		int ret;

		ret = entry_header(sec, off, &body, &id, &id_pos, &dwarf64, &next);
		if (ret == 1) {
			if (sec->eh)
				break; /* terminator */
			off = next;
			continue;
		}
		if (ret < 0) {
			/* a length past the section end or shorter than the id: nothing after it
			 * can be found, since entries are only located through lengths */
			stats->fdes_bad++;
			break;
		}
		off = next;
		if (sec->eh ? id == 0 : id == (dwarf64 ? ~0ULL : 0xffffffffu))
			continue; /* a CIE: parsed when an FDE points to it */
		if (sec->eh) {
			if (id > id_pos) {
				stats->fdes_bad++;
				continue;
			}
			cie_off = id_pos - id;
		} else {
			cie_off = id;
		}
		ret = parse_cie(sec, cie_off, &c);
		if (ret) {
			if (ret == -E2BIG)
				stats->fdes_limit++;
			else
				stats->fdes_bad++;
			continue;
		}
		ret = do_fde(sec, &c, body, want, cb, ctx, stats);
		if (ret)
			return ret;
	}
	return 0;
}
