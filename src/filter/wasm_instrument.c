// SPDX-License-Identifier: MIT
/*
 * Metering rewrite of a parsed filter module (see wasm_module.h). Both engines run the
 * rewritten module, so a fuel budget or a call-depth limit trips at the same instruction in
 * each, and neither engine's own counters need to be trusted or configured.
 *
 * Fuel. Loop-free leaf functions ("static": no loop, no call to a defined function) run at
 * most their instruction count per call; they are left untouched and charged by whoever
 * calls them (the caller's region, or the host for an export). Every other function keeps
 * fuel in an added i64 local: loaded from the fuel global at entry, written back before
 * calls that may read it and before every exit. Each region (the function body outside
 * loops, and each loop body) is charged its static instruction count, callees' static costs
 * and the meter's own cost at its entry (function entry, every loop iteration); a charge
 * that takes fuel below zero writes it back and executes `unreachable`. So fuel spent >=
 * instructions executed, and the host tells a fuel trap from a real `unreachable` by the
 * sign of the fuel global. Locals, not globals, because global access is slow in libwabt.
 *
 * Depth. A function that calls a defined function (or call_indirect) is replaced, at the
 * same index, by a wrapper that increments the i32 depth global, traps past the limit, calls
 * the original body (moved to a new index at the end) and decrements. Leaf functions are not
 * wrapped: they add at most one frame.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wasm_module.h"
#include "wasm_reader.h"
#include "lib/errbuf.h"

/* Instructions executed by one meter, one fuel write-back or reload, a wrapper besides its
 * local.gets. */
#define METER_COST 7
#define SYNC_COST 2
#define WRAP_COST 17

struct buf {
	uint8_t *p;
	size_t len, cap;
	int err;
};

static void put(struct buf *b, const void *data, size_t n)
{
	if (b->err)
		return;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		uint8_t *np;
		while (cap < b->len + n)
			cap *= 2;
		np = realloc(b->p, cap);
		if (!np) {
			b->err = -ENOMEM;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
}

static void put_u8(struct buf *b, uint8_t v)
{
	put(b, &v, 1);
}

static void put_uleb(struct buf *b, uint64_t v)
{
	do {
		uint8_t c = v & 0x7f;
		v >>= 7;
		put_u8(b, (uint8_t)(c | (v ? 0x80 : 0)));
	} while (v);
}

static void put_sleb(struct buf *b, int64_t v)
{
	for (;;) {
		uint8_t c = v & 0x7f;
		v >>= 7; /* arithmetic shift on gcc/clang */
		if ((v == 0 && !(c & 0x40)) || (v == -1 && (c & 0x40))) {
			put_u8(b, c);
			return;
		}
		put_u8(b, c | 0x80);
	}
}

/* Append section `id` with the contents of `body`. */
static void put_section(struct buf *b, uint8_t id, const struct buf *body)
{
	if (body->err) {
		b->err = body->err;
		return;
	}
	put_u8(b, id);
	put_uleb(b, body->len);
	put(b, body->p, body->len);
}

/* fuel local -= cost; if (fuel < 0) { write back; unreachable } */
static void put_meter(struct buf *b, uint32_t gfuel, uint32_t lfuel, int64_t cost)
{
	put_u8(b, 0x20); /* local.get fuel */
	put_uleb(b, lfuel);
	put_u8(b, 0x42); /* i64.const cost */
	put_sleb(b, cost);
	put_u8(b, 0x7d); /* i64.sub */
	put_u8(b, 0x22); /* local.tee fuel */
	put_uleb(b, lfuel);
	put(b, "\x42\x00\x53\x04\x40", 5); /* i64.const 0; i64.lt_s; if */
	put_u8(b, 0x20);
	put_uleb(b, lfuel);
	put_u8(b, 0x24); /* global.set fuel */
	put_uleb(b, gfuel);
	put(b, "\x00\x0b", 2); /* unreachable end */
}

/* fuel global <- fuel local */
static void put_store(struct buf *b, uint32_t gfuel, uint32_t lfuel)
{
	put_u8(b, 0x20);
	put_uleb(b, lfuel);
	put_u8(b, 0x24);
	put_uleb(b, gfuel);
}

/* fuel local <- fuel global */
static void put_load(struct buf *b, uint32_t gfuel, uint32_t lfuel)
{
	put_u8(b, 0x23);
	put_uleb(b, gfuel);
	put_u8(b, 0x21);
	put_uleb(b, lfuel);
}

static void put_depth_step(struct buf *b, uint32_t gdepth, uint8_t op)
{
	put_u8(b, 0x23); /* global.get depth */
	put_uleb(b, gdepth);
	put(b, "\x41\x01", 2); /* i32.const 1 */
	put_u8(b, op);	       /* i32.add / i32.sub */
	put_u8(b, 0x24);       /* global.set depth */
	put_uleb(b, gdepth);
}

static void put_wrapper(struct buf *b, const struct wasm_type *t, uint32_t inner, uint32_t gdepth,
			uint32_t limit)
{
	struct buf body = { 0 };
	put_u8(&body, 0x00); /* no locals */
	put_depth_step(&body, gdepth, 0x6a);
	put_u8(&body, 0x23);
	put_uleb(&body, gdepth);
	put_u8(&body, 0x41); /* i32.const limit */
	put_sleb(&body, limit);
	put_u8(&body, 0x4b);		   /* i32.gt_u */
	put(&body, "\x04\x40\x00\x0b", 4); /* if unreachable end */
	for (uint32_t i = 0; i < t->nparams; i++) {
		put_u8(&body, 0x20); /* local.get i */
		put_uleb(&body, i);
	}
	put_u8(&body, 0x10); /* call inner */
	put_uleb(&body, inner);
	put_depth_step(&body, gdepth, 0x6b);
	put_u8(&body, 0x0b);
	if (body.err)
		b->err = body.err;
	put_uleb(b, body.len);
	put(b, body.p, body.len);
	free(body.p);
}

struct regions {
	int64_t *loop_cost; /* per loop, in order of appearance */
	int32_t *stack;	    /* enclosing loop id per open block, -1 for the function */
	size_t nloops, cap_loops, depth, cap_stack;
};

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
	void *np;
	size_t c = *cap ? *cap : 64;
	if (need <= *cap)
		return 0;
	while (c < need)
		c *= 2;
	np = realloc(*p, c * elem);
	if (!np)
		return -ENOMEM;
	*p = np;
	*cap = c;
	return 0;
}

/* Whether a call needs the fuel global current (and reloaded after): any call except to a
 * static function that does not reach the host. */
static bool call_syncs(const struct wasm_module *m, const struct wasm_insn *in)
{
	const struct wasm_func *callee;
	if (in->kind == WASM_INSN_CALL_INDIRECT || in->imm < m->nfunc_imports)
		return true;
	callee = &m->funcs[in->imm - m->nfunc_imports];
	return !callee->static_cost || callee->calls_host;
}

/* What an instruction adds to its region besides itself: callees' static cost, syncs. */
static int64_t insn_extra(const struct wasm_module *m, const struct wasm_insn *in, size_t depth,
			  bool final_end)
{
	int64_t c = 0;
	switch (in->kind) {
	case WASM_INSN_CALL:
		if (in->imm >= m->nfunc_imports)
			c += m->funcs[in->imm - m->nfunc_imports].static_cost;
		return c + (call_syncs(m, in) ? 2 * SYNC_COST : 0);
	case WASM_INSN_CALL_INDIRECT:
		return m->max_static_cost + 2 * SYNC_COST;
	case WASM_INSN_BR:
		return in->imm == depth ? SYNC_COST : 0;
	case WASM_INSN_RETURN:
		return SYNC_COST;
	case WASM_INSN_END:
		return final_end ? SYNC_COST : 0;
	default:
		return 0;
	}
}

/* a module the instrumenter cannot walk: the reason into err, -EINVAL */
#define bad_module(err, errlen, ...) ap_errf(err, errlen, -EINVAL, __VA_ARGS__)

/* A call's target must exist: the parser records calls without checking them (validation
 * does), and call_syncs/insn_extra index funcs[] with it. */
static int check_call(const struct wasm_module *m, const struct wasm_func *f,
		      const struct wasm_insn *in, char *err, size_t errlen)
{
	if (in->kind == WASM_INSN_CALL && in->imm >= (uint64_t)m->nfunc_imports + m->nfuncs)
		return bad_module(err, errlen,
				  "function %u calls function %u, which does not exist",
				  (unsigned)(f - m->funcs) + m->nfunc_imports, in->imm);
	return 0;
}

/* Pass 1: the cost of the function region (returned) and of each loop region. */
static int count_regions(const struct wasm_module *m, const struct wasm_func *f, struct regions *rg,
			 int64_t *func_cost, char *err, size_t errlen)
{
	struct wasm_reader r = { .base = m->bytes,
				 .p = m->bytes + f->body_off + f->locals_len,
				 .end = m->bytes + f->body_off + f->body_len };
	struct wasm_insn in;
	int32_t cur = -1;

	rg->nloops = 0;
	rg->depth = 0;
	*func_cost = METER_COST + SYNC_COST;
	while (r.p < r.end) {
		int64_t c;
		if (wasm_next_insn(&r, &in, err, errlen))
			return -EINVAL;
		if (check_call(m, f, &in, err, errlen))
			return -EINVAL;
		c = 1 + insn_extra(m, &in, rg->depth, in.kind == WASM_INSN_END && !rg->depth);
		if (cur < 0)
			*func_cost += c;
		else
			rg->loop_cost[cur] += c;
		if (in.kind == WASM_INSN_BLOCK || in.kind == WASM_INSN_LOOP) {
			if (grow((void **)&rg->stack, &rg->cap_stack, rg->depth + 1,
				 sizeof(*rg->stack)))
				return -ENOMEM;
			rg->stack[rg->depth++] = cur;
			if (in.kind == WASM_INSN_LOOP) {
				if (grow((void **)&rg->loop_cost, &rg->cap_loops, rg->nloops + 1,
					 sizeof(*rg->loop_cost)))
					return -ENOMEM;
				rg->loop_cost[rg->nloops] = METER_COST;
				cur = (int32_t)rg->nloops++;
			}
		} else if (in.kind == WASM_INSN_END && rg->depth > 0) {
			cur = rg->stack[--rg->depth];
		}
	}
	return 0;
}

/* Pass 2: the body with its fuel local, meters and syncs. `extra`: the wrapper's cost. */
static int put_body(struct buf *b, const struct wasm_module *m, const struct wasm_func *f,
		    struct regions *rg, int64_t extra, uint32_t gfuel, char *err, size_t errlen)
{
	const uint8_t *body = m->bytes + f->body_off;
	struct wasm_reader r = { .base = m->bytes, .p = body, .end = body + f->locals_len };
	uint32_t ngroups, lfuel = m->types[f->type].nparams + f->nlocals;
	struct buf out = { 0 };
	struct wasm_insn in;
	int64_t func_cost;
	size_t loop = 0, depth = 0;
	int ret;

	if (f->static_cost) { /* unmetered: charged by its callers */
		put_uleb(b, f->body_len);
		put(b, body, f->body_len);
		return b->err;
	}
	ret = count_regions(m, f, rg, &func_cost, err, errlen);
	if (ret)
		return ret;
	/* locals: the original groups plus one i64 for fuel */
	if (wasm_rd_u32(&r, &ngroups))
		return -EINVAL;
	put_uleb(&out, (uint64_t)ngroups + 1);
	put(&out, r.p, (size_t)(r.end - r.p));
	put(&out, "\x01\x7e", 2);
	put_load(&out, gfuel, lfuel);
	put_meter(&out, gfuel, lfuel, func_cost + extra);
	r = (struct wasm_reader){ .base = m->bytes,
				  .p = body + f->locals_len,
				  .end = body + f->body_len };
	while (r.p < r.end) {
		const uint8_t *start = r.p;
		bool sync = false;
		if (wasm_next_insn(&r, &in, err, errlen) || check_call(m, f, &in, err, errlen)) {
			free(out.p);
			return -EINVAL;
		}
		switch (in.kind) {
		case WASM_INSN_CALL:
		case WASM_INSN_CALL_INDIRECT:
			sync = call_syncs(m, &in);
			break;
		case WASM_INSN_BR:
			sync = in.imm == depth;
			break;
		case WASM_INSN_RETURN:
			sync = true;
			break;
		case WASM_INSN_END:
			sync = depth == 0;
			break;
		default:
			break;
		}
		if (sync)
			put_store(&out, gfuel, lfuel);
		put(&out, start, (size_t)(r.p - start));
		if ((in.kind == WASM_INSN_CALL || in.kind == WASM_INSN_CALL_INDIRECT) && sync)
			put_load(&out, gfuel, lfuel);
		if (in.kind == WASM_INSN_LOOP) {
			/* pass 1 read the same bytes; never index past what it counted */
			if (loop >= rg->nloops) {
				free(out.p);
				return bad_module(err, errlen, "loop count changed between passes");
			}
			put_meter(&out, gfuel, lfuel, rg->loop_cost[loop++]);
		}
		if (in.kind == WASM_INSN_BLOCK || in.kind == WASM_INSN_LOOP)
			depth++;
		else if (in.kind == WASM_INSN_END && depth > 0)
			depth--;
	}
	ret = out.err;
	put_uleb(b, out.len);
	put(b, out.p, out.len);
	free(out.p);
	return ret;
}

/* Contents of section `id` after its leading count. */
static const uint8_t *after_count(const struct wasm_module *m, int id, uint32_t *count,
				  size_t *rest)
{
	struct wasm_reader r = { .base = m->bytes,
				 .p = m->bytes + m->sec[id].off,
				 .end = m->bytes + m->sec[id].off + m->sec[id].len };
	*count = 0;
	if (!m->sec[id].present || wasm_rd_u32(&r, count))
		return NULL;
	*rest = (size_t)(r.end - r.p);
	return r.p;
}

static int put_code(struct buf *out, const struct wasm_module *m, const uint32_t *wrapped,
		    uint32_t nwrap, uint32_t gfuel, uint32_t gdepth, uint32_t limit, char *err,
		    size_t errlen)
{
	struct regions rg = { 0 };
	struct buf s = { 0 };
	uint32_t inner = m->nfunc_imports + m->nfuncs, k = 0;
	int ret = 0;

	put_uleb(&s, (uint64_t)m->nfuncs + nwrap);
	for (uint32_t i = 0; i < m->nfuncs && !ret; i++) {
		const struct wasm_type *t = &m->types[m->funcs[i].type];
		if (m->funcs[i].calls)
			put_wrapper(&s, t, inner + k++, gdepth, limit);
		else
			ret = put_body(&s, m, &m->funcs[i], &rg, 0, gfuel, err, errlen);
	}
	for (uint32_t k2 = 0; k2 < nwrap && !ret; k2++) {
		const struct wasm_func *f = &m->funcs[wrapped[k2]];
		int64_t extra = WRAP_COST + m->types[f->type].nparams;
		ret = put_body(&s, m, f, &rg, extra, gfuel, err, errlen);
	}
	if (!ret)
		put_section(out, 10, &s);
	free(rg.loop_cost);
	free(rg.stack);
	free(s.p);
	return ret;
}

static void put_globals(struct buf *out, const struct wasm_module *m)
{
	struct buf s = { 0 };
	uint32_t n;
	size_t rest = 0;
	const uint8_t *p = after_count(m, 6, &n, &rest);

	put_uleb(&s, (uint64_t)n + 2);
	if (p)
		put(&s, p, rest);
	put(&s, "\x7e\x01\x42\x00\x0b", 5); /* fuel: mut i64 = 0 */
	put(&s, "\x7f\x01\x41\x00\x0b", 5); /* depth: mut i32 = 0 */
	put_section(out, 6, &s);
	free(s.p);
}

static void put_exports(struct buf *out, const struct wasm_module *m, uint32_t gfuel,
			uint32_t gdepth)
{
	struct buf s = { 0 };
	uint32_t n;
	size_t rest = 0;
	const uint8_t *p = after_count(m, 7, &n, &rest);
	static const char fuel[] = AP_METER_FUEL_EXPORT, depth[] = AP_METER_DEPTH_EXPORT;

	put_uleb(&s, (uint64_t)n + 2);
	if (p)
		put(&s, p, rest);
	put_uleb(&s, sizeof(fuel) - 1);
	put(&s, fuel, sizeof(fuel) - 1);
	put_u8(&s, 0x03);
	put_uleb(&s, gfuel);
	put_uleb(&s, sizeof(depth) - 1);
	put(&s, depth, sizeof(depth) - 1);
	put_u8(&s, 0x03);
	put_uleb(&s, gdepth);
	put_section(out, 7, &s);
	free(s.p);
}

/* Everything the rewrite indexes with, checked against the module's counts and bytes, so the
 * instrumenter is safe on a module that was parsed but never validated. */
static int check_module(const struct wasm_module *m, char *err, size_t errlen)
{
	if (!m->bytes && m->len)
		return bad_module(err, errlen, "module has no bytes");
	for (size_t id = 0; id < sizeof(m->sec) / sizeof(m->sec[0]); id++)
		if (m->sec[id].present && ((uint64_t)m->sec[id].off + m->sec[id].len > m->len))
			return bad_module(err, errlen, "section %zu lies outside the module", id);
	if (m->nfuncs && !m->funcs)
		return bad_module(err, errlen, "module has no function table");
	for (uint32_t i = 0; i < m->nfuncs; i++) {
		const struct wasm_func *f = &m->funcs[i];

		if (f->type >= m->ntypes)
			return bad_module(err, errlen, "function %u has type %u of %u",
					  m->nfunc_imports + i, f->type, m->ntypes);
		if ((uint64_t)f->body_off + f->body_len > m->len || f->locals_len > f->body_len)
			return bad_module(err, errlen, "function %u: body outside the module",
					  m->nfunc_imports + i);
		if ((uint64_t)m->types[f->type].nparams + f->nlocals >= UINT32_MAX)
			return bad_module(err, errlen, "function %u: too many locals",
					  m->nfunc_imports + i);
	}
	if (m->nglobals > UINT32_MAX - 2)
		return bad_module(err, errlen, "too many globals");
	return 0;
}

int wasm_instrument(const struct wasm_module *m, const struct wasm_instrument_opts *o,
		    uint8_t **out, size_t *outlen, char *err, size_t errlen)
{
	/* Section ids in binary order; globals and exports are always written. */
	static const uint8_t order[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 10, 11 };
	struct buf b = { 0 };
	uint32_t *wrapped = NULL, nwrap = 0;
	uint32_t gfuel = m->nglobals, gdepth = m->nglobals + 1;
	int ret = 0;

	*out = NULL;
	*outlen = 0;
	ret = check_module(m, err, errlen);
	if (ret)
		return ret;
	wrapped = calloc(m->nfuncs ? m->nfuncs : 1, sizeof(*wrapped));
	if (!wrapped)
		return -ENOMEM;
	for (uint32_t i = 0; i < m->nfuncs; i++)
		if (m->funcs[i].calls)
			wrapped[nwrap++] = i;

	put(&b, "\0asm\x01\0\0\0", 8);
	for (size_t oi = 0; oi < sizeof(order) && !ret; oi++) {
		uint8_t id = order[oi];
		struct buf s = { 0 };
		switch (id) {
		case 3: /* functions: the moved bodies get their original types */
			put_uleb(&s, (uint64_t)m->nfuncs + nwrap);
			for (uint32_t i = 0; i < m->nfuncs; i++)
				put_uleb(&s, m->funcs[i].type);
			for (uint32_t k = 0; k < nwrap; k++)
				put_uleb(&s, m->funcs[wrapped[k]].type);
			put_section(&b, 3, &s);
			break;
		case 5: { /* the one memory, maximum clamped to the cap */
			uint32_t max =
			    m->mem_max < o->max_memory_pages ? m->mem_max : o->max_memory_pages;
			put(&s, "\x01\x01", 2);
			put_uleb(&s, m->mem_min);
			put_uleb(&s, max);
			put_section(&b, 5, &s);
			break;
		}
		case 6:
			put_globals(&b, m);
			break;
		case 7:
			put_exports(&b, m, gfuel, gdepth);
			break;
		case 10:
			if (m->nfuncs)
				ret = put_code(&b, m, wrapped, nwrap, gfuel, gdepth,
					       o->max_call_depth, err, errlen);
			break;
		default:
			if (m->sec[id].present) {
				put_u8(&b, id);
				put_uleb(&b, m->sec[id].len);
				put(&b, m->bytes + m->sec[id].off, m->sec[id].len);
			}
			break;
		}
		free(s.p);
	}
	free(wrapped);
	if (!ret)
		ret = b.err;
	if (ret) {
		free(b.p);
		if (ret == -ENOMEM && err && errlen)
			snprintf(err, errlen, "out of memory while instrumenting the module");
		return ret;
	}
	*out = b.p;
	*outlen = b.len;
	return 0;
}
