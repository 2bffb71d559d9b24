// SPDX-License-Identifier: MIT
/*
 * DWARF call frame information decoder: CIEs, FDEs and the CFA programs of .eh_frame (LSB
 * Core spec, "Exception Frames") and .debug_frame (DWARF 4/5 section 6.4). Every read is
 * bounds-checked: the input is whatever a process mapped.
 */
#include <errno.h>
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

struct rd {
	const uint8_t *p, *end;
	bool err;
};

static uint64_t rd_u(struct rd *r, unsigned int n)
{
	uint64_t v = 0;

	if (r->err || (size_t)(r->end - r->p) < n) {
		r->err = true;
		return 0;
	}
	for (unsigned int i = 0; i < n; i++)
		v |= (uint64_t)r->p[i] << (8 * i);
	r->p += n;
	return v;
}

static uint64_t rd_uleb(struct rd *r)
{
	uint64_t v = 0;
	unsigned int shift = 0;

	while (!r->err) {
		uint8_t b;

		if (r->p >= r->end) {
			r->err = true;
			break;
		}
		b = *r->p++;
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
		if (r->p >= r->end) {
			r->err = true;
			return 0;
		}
		b = *r->p++;
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
	const uint8_t *insns, *insns_end;
	uint64_t code_align;
	int64_t data_align;
	uint32_t ra_reg;
	uint8_t fde_enc;
	uint8_t addr_size;
	bool has_aug_data; /* 'z' */
	bool signal;	   /* 'S' */
};

/* Parse the CIE at section offset `off`. Returns 0 or -EINVAL. */
static int parse_cie(const struct ap_cfi_section *sec, uint64_t off, struct cie *c)
{
	struct rd r = { sec->data + off, sec->data + sec->size, false };
	uint64_t len, id;
	const char *aug;
	uint8_t version;
	bool dwarf64 = false;

	memset(c, 0, sizeof(*c));
	c->fde_enc = DW_EH_PE_absptr;
	c->addr_size = 8;
	if (off >= sec->size)
		return -EINVAL;
	len = rd_u(&r, 4);
	if (len == 0xffffffffu) {
		len = rd_u(&r, 8);
		dwarf64 = true;
	}
	if (r.err || len > (uint64_t)(r.end - r.p))
		return -EINVAL;
	r.end = r.p + len;
	id = rd_u(&r, dwarf64 ? 8 : 4);
	if (sec->eh ? id != 0 : id != (dwarf64 ? ~0ULL : 0xffffffffu))
		return -EINVAL;
	version = (uint8_t)rd_u(&r, 1);
	if (version != 1 && version != 3 && version != 4)
		return -EINVAL;
	aug = (const char *)r.p;
	while (r.p < r.end && *r.p)
		r.p++;
	if (r.p >= r.end)
		return -EINVAL;
	r.p++;
	if (aug[0] && aug[0] != 'z' && strcmp(aug, "S") != 0)
		return -EINVAL; /* "eh" (ancient g++) and other forms we cannot skip */
	if (version == 4) {
		c->addr_size = (uint8_t)rd_u(&r, 1);
		rd_u(&r, 1); /* segment selector size */
		if (c->addr_size != 8 && c->addr_size != 4)
			return -EINVAL;
	}
	c->code_align = rd_uleb(&r);
	c->data_align = rd_sleb(&r);
	c->ra_reg = version == 1 ? (uint32_t)rd_u(&r, 1) : (uint32_t)rd_uleb(&r);
	if (aug[0] == 'z') {
		uint64_t alen = rd_uleb(&r);
		const uint8_t *aend = r.p + alen;

		if (r.err || alen > (uint64_t)(r.end - r.p))
			return -EINVAL;
		c->has_aug_data = true;
		for (const char *a = aug + 1; *a && !r.err; a++) {
			if (*a == 'R') {
				c->fde_enc = (uint8_t)rd_u(&r, 1);
			} else if (*a == 'L') {
				rd_u(&r, 1);
			} else if (*a == 'P') {
				uint8_t penc = (uint8_t)rd_u(&r, 1);

				rd_enc(&r, penc & 0x7f, sec); /* skipped, never dereferenced */
			} else if (*a == 'S') {
				c->signal = true;
			} else {
				break; /* unknown letter: the length lets us skip the rest */
			}
		}
		r.p = aend;
	} else if (aug[0] == 'S') {
		c->signal = true;
	}
	if (r.err)
		return -EINVAL;
	c->insns = r.p;
	c->insns_end = r.end;
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

/* v * data_align. A product that does not fit in 64 bits is malformed CFI (it marks the reader
 * failed) rather than signed overflow, which is undefined behaviour. */
static int64_t scale(struct rd *r, int64_t v, int64_t da)
{
	int64_t out;

	if (__builtin_mul_overflow(v, da, &out)) {
		r->err = true;
		return 0;
	}
	return out;
}

/* Run a CFA program. Returns 0, -EINVAL (malformed or unknown opcode) or 1 (stopped). */
static int run(struct exec *x, const struct cie *c, const uint8_t *p, const uint8_t *end,
	       struct run_ctx *rc)
{
	struct rd r = { p, end, false };
	int64_t da = c->data_align;
	uint64_t ca = c->code_align;

	while (r.p < r.end && !r.err) {
		uint8_t op = *r.p++, low = op & 0x3f;
		uint64_t reg, n;
		const uint8_t *blk;

		switch (op >> 6) {
		case 1: /* DW_CFA_advance_loc */
			if (!advance(x, rc, x->loc + low * ca))
				return 1;
			continue;
		case 2: /* DW_CFA_offset */
			set_rule(x, c, low, AP_RULE_OFFSET, scale(&r, (int64_t)rd_uleb(&r), da), 0, NULL,
				 0);
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
			set_rule(x, c, reg, AP_RULE_OFFSET, scale(&r, (int64_t)rd_uleb(&r), da), 0, NULL,
				 0);
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
			if (r.err || n > (uint64_t)(r.end - r.p))
				return -EINVAL;
			x->cur.cfa_expr = r.p;
			x->cur.cfa_expr_len = (uint32_t)n;
			r.p += n;
			break;
		case 0x10: /* expression */
		case 0x16: /* val_expression */
			reg = rd_uleb(&r);
			n = rd_uleb(&r);
			if (r.err || n > (uint64_t)(r.end - r.p))
				return -EINVAL;
			blk = r.p;
			r.p += n;
			set_rule(x, c, reg, op == 0x10 ? AP_RULE_EXPR : AP_RULE_VAL_EXPR, 0, 0, blk,
				 n);
			break;
		case 0x11: /* offset_extended_sf */
			reg = rd_uleb(&r);
			set_rule(x, c, reg, AP_RULE_OFFSET, scale(&r, rd_sleb(&r), da), 0, NULL, 0);
			break;
		case 0x12: /* def_cfa_sf */
			x->cur.cfa_reg = (uint32_t)rd_uleb(&r);
			x->cur.cfa_off = scale(&r, rd_sleb(&r), da);
			x->cur.cfa_expr = NULL;
			break;
		case 0x13: /* def_cfa_offset_sf */
			x->cur.cfa_off = scale(&r, rd_sleb(&r), da);
			break;
		case 0x14: /* val_offset */
			reg = rd_uleb(&r);
			set_rule(x, c, reg, AP_RULE_VAL_OFFSET, scale(&r, (int64_t)rd_uleb(&r), da), 0,
				 NULL, 0);
			break;
		case 0x15: /* val_offset_sf */
			reg = rd_uleb(&r);
			set_rule(x, c, reg, AP_RULE_VAL_OFFSET, scale(&r, rd_sleb(&r), da), 0, NULL, 0);
			break;
		case 0x2e: /* GNU_args_size */
			rd_uleb(&r);
			break;
		case 0x2f: /* GNU_negative_offset_extended */
			reg = rd_uleb(&r);
			set_rule(x, c, reg, AP_RULE_OFFSET,
				 scale(&r, scale(&r, (int64_t)rd_uleb(&r), da), -1), 0, NULL, 0);
			break;
		default:
			return -EINVAL;
		}
	}
	return r.err ? -EINVAL : 0;
}

/* Decode one FDE whose body (after the CIE pointer) is [p, end). */
static int do_fde(const struct ap_cfi_section *sec, const struct cie *c, const uint8_t *p,
		  const uint8_t *end, ap_cfi_want_fn want, ap_cfi_row_fn cb, void *ctx,
		  struct ap_cfi_parse_stats *st)
{
	struct rd r = { p, end, false };
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
	if (c->has_aug_data) {
		uint64_t alen = rd_uleb(&r);

		if (!r.err && alen <= (uint64_t)(r.end - r.p))
			r.p += alen;
		else
			r.err = true;
	}
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
	err = run(&x, c, c->insns, c->insns_end, &rc);
	if (err < 0) {
		st->fdes_bad++;
		return 0;
	}
	x.init = x.cur;
	x.nsaved = x.dropped = 0;
	rc.fde = &fde;
	err = run(&x, c, r.p, r.end, &rc);
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
	size_t off = 0;

	if (!stats)
		stats = &dummy;
	memset(stats, 0, sizeof(*stats));
	while (off + 4 <= sec->size) {
		struct rd r = { sec->data + off, sec->data + sec->size, false };
		uint64_t len, id, cie_off, id_pos;
		const uint8_t *end;
		bool dwarf64 = false;
		struct cie c;
		int ret;

		len = rd_u(&r, 4);
		if (len == 0) {
			if (sec->eh)
				break; /* terminator */
			off += 4;
			continue;
		}
		if (len == 0xffffffffu) {
			len = rd_u(&r, 8);
			dwarf64 = true;
		}
		if (r.err || len > (uint64_t)(r.end - r.p))
			break;
		end = r.p + len;
		id_pos = (uint64_t)(r.p - sec->data);
		id = rd_u(&r, dwarf64 ? 8 : 4);
		off = (size_t)(end - sec->data);
		if (r.err)
			break;
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
		if (parse_cie(sec, cie_off, &c)) {
			stats->fdes_bad++;
			continue;
		}
		ret = do_fde(sec, &c, r.p, end, want, cb, ctx, stats);
		if (ret)
			return ret;
	}
	return 0;
}
