// SPDX-License-Identifier: MIT
/* Structural parse of a WebAssembly module and the filter load policy. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aperture/filter_abi.h"
#include "wasm_module.h"
#include "wasm_reader.h"
#include "lib/errbuf.h"

/* a malformed module: the reason into err, -EINVAL */
#define fail(err, errlen, ...) ap_errf(err, errlen, -EINVAL, __VA_ARGS__)

/* ---- instructions ---- */

static int read_blocktype(struct wasm_reader *r)
{
	uint8_t b;
	int64_t idx;
	if (r->p >= r->end)
		return -1;
	b = *r->p;
	if (b == 0x40 || b == WASM_I32 || b == WASM_I64 || b == WASM_F32 || b == WASM_F64) {
		r->p++;
		return 0;
	}
	/* multi-value: a type index as a non-negative s33 */
	if (wasm_rd_sleb(r, 33, &idx) || idx < 0 || idx > UINT32_MAX)
		return -1;
	return 0;
}

int wasm_next_insn(struct wasm_reader *r, struct wasm_insn *in, char *err, size_t errlen)
{
	size_t at = wasm_rd_off(r);
	uint8_t op, b;
	uint32_t n, v;
	int64_t s;

	in->kind = WASM_INSN_OTHER;
	in->imm = 0;
	if (wasm_rd_u8(r, &op))
		goto truncated;
	in->op = op;
	switch (op) {
	case 0x0f:
		in->kind = WASM_INSN_RETURN;
		return 0;
	case 0x00: /* unreachable */
	case 0x01: /* nop */
	case 0x1a: /* drop */
	case 0x1b: /* select */
		return 0;
	case 0x02: /* block */
	case 0x04: /* if */
		in->kind = WASM_INSN_BLOCK;
		if (read_blocktype(r))
			goto bad_blocktype;
		return 0;
	case 0x03:
		in->kind = WASM_INSN_LOOP;
		if (read_blocktype(r))
			goto bad_blocktype;
		return 0;
	case 0x05:
		in->kind = WASM_INSN_ELSE;
		return 0;
	case 0x0b:
		in->kind = WASM_INSN_END;
		return 0;
	case 0x0c: /* br */
	case 0x0d: /* br_if */
		in->kind = WASM_INSN_BR;
		if (wasm_rd_u32(r, &v))
			goto truncated;
		in->imm = v;
		return 0;
	case 0x20: /* local.get */
	case 0x21: /* local.set */
	case 0x22: /* local.tee */
	case 0x23: /* global.get */
	case 0x24: /* global.set */
		if (wasm_rd_u32(r, &v))
			goto truncated;
		in->imm = v;
		return 0;
	case 0x0e: /* br_table */
		in->kind = WASM_INSN_BR;
		if (wasm_rd_u32(r, &n))
			goto truncated;
		for (uint64_t i = 0; i <= n; i++) {
			if (wasm_rd_u32(r, &v))
				goto truncated;
			if (v > in->imm)
				in->imm = v;
		}
		return 0;
	case 0x10:
		in->kind = WASM_INSN_CALL;
		if (wasm_rd_u32(r, &in->imm))
			goto truncated;
		return 0;
	case 0x11:
		in->kind = WASM_INSN_CALL_INDIRECT;
		if (wasm_rd_u32(r, &in->imm) || wasm_rd_u32(r, &v))
			goto truncated;
		return 0;
	case 0x3f: /* memory.size */
	case 0x40: /* memory.grow */
		if (wasm_rd_u8(r, &b))
			goto truncated;
		if (b != 0)
			return fail(err, errlen, "offset %zu: multiple memories are not supported",
				    at);
		return 0;
	case 0x41:
		if (wasm_rd_sleb(r, 32, &s))
			goto truncated;
		return 0;
	case 0x42:
		if (wasm_rd_sleb(r, 64, &s))
			goto truncated;
		return 0;
	case 0x43:
		if (wasm_rd_skip(r, 4))
			goto truncated;
		return 0;
	case 0x44:
		if (wasm_rd_skip(r, 8))
			goto truncated;
		return 0;
	case 0xfc:
		if (wasm_rd_u32(r, &v))
			goto truncated;
		if (v <= 7) /* saturating float-to-int */
			return 0;
		return fail(err, errlen,
			    "offset %zu: bulk-memory/table instruction 0xfc %u is not supported "
			    "(its cost does not fit a per-instruction budget)",
			    at, v);
	default:
		break;
	}
	if (op >= 0x28 && op <= 0x3e) { /* loads and stores: align, offset */
		if (wasm_rd_u32(r, &v) || wasm_rd_u32(r, &v))
			goto truncated;
		return 0;
	}
	if (op >= 0x45 && op <= 0xc4) /* numeric, incl. sign extension */
		return 0;
	return fail(err, errlen,
		    "offset %zu: unsupported instruction 0x%02x (only WebAssembly 1.0 with sign "
		    "extension, saturating conversions and multi-value is accepted)",
		    at, op);
truncated:
	return fail(err, errlen, "offset %zu: truncated or malformed instruction", at);
bad_blocktype:
	return fail(err, errlen, "offset %zu: unsupported block type", at);
}

/* ---- sections ---- */

static int read_name(struct wasm_reader *r, struct wasm_name *nm)
{
	if (wasm_rd_u32(r, &nm->len) || (size_t)(r->end - r->p) < nm->len)
		return -1;
	nm->p = r->p;
	r->p += nm->len;
	return 0;
}

static bool is_numtype(uint8_t t)
{
	return t == WASM_I32 || t == WASM_I64 || t == WASM_F32 || t == WASM_F64;
}

/* Limits: flags 0 (min) or 1 (min, max); shared and 64-bit memories are refused. */
static int read_limits(struct wasm_reader *r, uint32_t *min, uint32_t *max, char *err,
		       size_t errlen)
{
	uint8_t flags;
	if (wasm_rd_u8(r, &flags) || wasm_rd_u32(r, min))
		return fail(err, errlen, "offset %zu: malformed limits", wasm_rd_off(r));
	if (flags > 1)
		return fail(err, errlen, "shared or 64-bit memories and tables are not supported");
	*max = UINT32_MAX;
	if (flags == 1 && wasm_rd_u32(r, max))
		return fail(err, errlen, "offset %zu: malformed limits", wasm_rd_off(r));
	return 0;
}

static int parse_types(struct wasm_module *m, struct wasm_reader *r, char *err, size_t errlen)
{
	uint32_t n;
	if (wasm_rd_u32(r, &n) || n > (size_t)(r->end - r->p))
		return fail(err, errlen, "malformed type section");
	m->types = calloc(n ? n : 1, sizeof(*m->types));
	if (!m->types)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		struct wasm_type *t = &m->types[i];
		uint8_t form;
		if (wasm_rd_u8(r, &form) || form != 0x60 || wasm_rd_u32(r, &t->nparams) ||
		    (size_t)(r->end - r->p) < t->nparams)
			return fail(err, errlen, "type %u: malformed function type", i);
		t->params = r->p;
		r->p += t->nparams;
		if (wasm_rd_u32(r, &t->nresults) || (size_t)(r->end - r->p) < t->nresults)
			return fail(err, errlen, "type %u: malformed function type", i);
		t->results = r->p;
		r->p += t->nresults;
		for (uint32_t k = 0; k < t->nparams + t->nresults; k++) {
			uint8_t v = k < t->nparams ? t->params[k] : t->results[k - t->nparams];
			if (!is_numtype(v))
				return fail(err, errlen,
					    "type %u: value type 0x%02x (SIMD or reference types) "
					    "is not supported",
					    i, v);
		}
		m->ntypes++;
	}
	return 0;
}

static int parse_imports(struct wasm_module *m, struct wasm_reader *r, char *err, size_t errlen)
{
	uint32_t n, lo, hi;
	uint8_t b;
	if (wasm_rd_u32(r, &n) || n > (size_t)(r->end - r->p))
		return fail(err, errlen, "malformed import section");
	m->imports = calloc(n ? n : 1, sizeof(*m->imports));
	if (!m->imports)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		struct wasm_import *im = &m->imports[i];
		im->hostfn = -1;
		if (read_name(r, &im->module) || read_name(r, &im->name) ||
		    wasm_rd_u8(r, &im->kind))
			return fail(err, errlen, "import %u: malformed", i);
		switch (im->kind) {
		case WASM_EXT_FUNC:
			if (wasm_rd_u32(r, &im->type) || im->type >= m->ntypes)
				return fail(err, errlen, "import %u: bad type index", i);
			m->nfunc_imports++;
			break;
		case WASM_EXT_TABLE:
			if (wasm_rd_u8(r, &b) || read_limits(r, &lo, &hi, err, errlen))
				return -EINVAL;
			break;
		case WASM_EXT_MEMORY:
			if (read_limits(r, &lo, &hi, err, errlen))
				return -EINVAL;
			break;
		case WASM_EXT_GLOBAL:
			if (wasm_rd_u8(r, &b) || wasm_rd_u8(r, &b))
				return fail(err, errlen, "import %u: malformed global", i);
			break;
		default:
			return fail(err, errlen, "import %u: unsupported kind %u", i, im->kind);
		}
		m->nimports++;
	}
	return 0;
}

static int parse_functions(struct wasm_module *m, struct wasm_reader *r, char *err, size_t errlen)
{
	uint32_t n;
	if (wasm_rd_u32(r, &n) || n > (size_t)(r->end - r->p))
		return fail(err, errlen, "malformed function section");
	m->funcs = calloc(n ? n : 1, sizeof(*m->funcs));
	if (!m->funcs)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		if (wasm_rd_u32(r, &m->funcs[i].type) || m->funcs[i].type >= m->ntypes)
			return fail(err, errlen, "function %u: bad type index", i);
	}
	m->nfuncs = n;
	return 0;
}

static int parse_tables(struct wasm_module *m, struct wasm_reader *r, const struct wasm_limits *lim,
			char *err, size_t errlen)
{
	uint32_t n, lo, hi;
	uint8_t type;
	if (wasm_rd_u32(r, &n))
		return fail(err, errlen, "malformed table section");
	for (uint32_t i = 0; i < n; i++) {
		if (wasm_rd_u8(r, &type) || type != 0x70)
			return fail(err, errlen, "table %u: only funcref tables are supported", i);
		if (read_limits(r, &lo, &hi, err, errlen))
			return -EINVAL;
		if (lo > lim->max_table_elems)
			return fail(err, errlen, "table %u has %u elements, above the limit of %u",
				    i, lo, lim->max_table_elems);
		m->ntables++;
	}
	return 0;
}

static int parse_memories(struct wasm_module *m, struct wasm_reader *r, char *err, size_t errlen)
{
	uint32_t n;
	if (wasm_rd_u32(r, &n))
		return fail(err, errlen, "malformed memory section");
	for (uint32_t i = 0; i < n; i++) {
		if (read_limits(r, &m->mem_min, &m->mem_max, err, errlen))
			return -EINVAL;
		m->nmemories++;
	}
	return 0;
}

/* A constant expression: instructions up to the END that closes it. */
static int skip_const_expr(struct wasm_reader *r, char *err, size_t errlen)
{
	struct wasm_insn in;
	for (;;) {
		if (wasm_next_insn(r, &in, err, errlen))
			return -EINVAL;
		if (in.kind == WASM_INSN_END)
			return 0;
		if (in.kind != WASM_INSN_OTHER)
			return fail(err, errlen, "malformed constant expression");
	}
}

static int parse_globals(struct wasm_module *m, struct wasm_reader *r, char *err, size_t errlen)
{
	uint32_t n;
	uint8_t type, mut;
	if (wasm_rd_u32(r, &n))
		return fail(err, errlen, "malformed global section");
	for (uint32_t i = 0; i < n; i++) {
		if (wasm_rd_u8(r, &type) || wasm_rd_u8(r, &mut))
			return fail(err, errlen, "global %u: malformed", i);
		if (!is_numtype(type))
			return fail(err, errlen, "global %u: unsupported type 0x%02x", i, type);
		if (skip_const_expr(r, err, errlen))
			return -EINVAL;
		m->nglobals++;
	}
	return 0;
}

static int parse_exports(struct wasm_module *m, struct wasm_reader *r, char *err, size_t errlen)
{
	uint32_t n;
	if (wasm_rd_u32(r, &n) || n > (size_t)(r->end - r->p))
		return fail(err, errlen, "malformed export section");
	m->exports = calloc(n ? n : 1, sizeof(*m->exports));
	if (!m->exports)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		struct wasm_export *ex = &m->exports[i];
		if (read_name(r, &ex->name) || wasm_rd_u8(r, &ex->kind) ||
		    wasm_rd_u32(r, &ex->index))
			return fail(err, errlen, "export %u: malformed", i);
		m->nexports++;
	}
	return 0;
}

/* One function body: local declarations, then instructions up to the closing END. */
static int parse_body(struct wasm_module *m, uint32_t fi, struct wasm_reader *r,
		      const struct wasm_limits *lim, char *err, size_t errlen)
{
	struct wasm_func *f = &m->funcs[fi];
	const struct wasm_type *t = &m->types[f->type];
	uint64_t total = t->nparams;
	uint32_t ngroups, cnt;
	uint8_t type;
	int64_t depth = 0;
	struct wasm_insn in;

	if (wasm_rd_u32(r, &ngroups))
		return fail(err, errlen, "function %u: malformed locals", fi);
	for (uint32_t g = 0; g < ngroups; g++) {
		if (wasm_rd_u32(r, &cnt) || wasm_rd_u8(r, &type))
			return fail(err, errlen, "function %u: malformed locals", fi);
		if (!is_numtype(type))
			return fail(err, errlen, "function %u: unsupported local type 0x%02x", fi,
				    type);
		total += cnt;
		if (total > lim->max_locals)
			return fail(err, errlen,
				    "function %u declares more than %u locals (params included), "
				    "the limit",
				    m->nfunc_imports + fi, lim->max_locals);
	}
	f->nlocals = (uint32_t)(total - t->nparams);
	f->locals_len = (uint32_t)(r->p - (m->bytes + f->body_off));
	while (r->p < r->end) {
		if (wasm_next_insn(r, &in, err, errlen))
			return -EINVAL;
		f->ninsns++;
		switch (in.kind) {
		case WASM_INSN_LOOP:
			f->loops = true;
			/* fall through */
		case WASM_INSN_BLOCK:
			depth++;
			break;
		case WASM_INSN_END:
			if (--depth < 0) {
				if (r->p != r->end)
					return fail(err, errlen,
						    "function %u: code after the final end",
						    m->nfunc_imports + fi);
				return 0;
			}
			break;
		case WASM_INSN_CALL:
			if (in.imm >= m->nfunc_imports)
				f->calls = true;
			else
				f->calls_host = true;
			break;
		case WASM_INSN_CALL_INDIRECT:
			f->calls = true;
			break;
		default:
			break;
		}
	}
	return fail(err, errlen, "function %u: body has no final end", m->nfunc_imports + fi);
}

static int parse_code(struct wasm_module *m, struct wasm_reader *r, const struct wasm_limits *lim,
		      char *err, size_t errlen)
{
	uint32_t n, size;
	int ret;
	if (wasm_rd_u32(r, &n))
		return fail(err, errlen, "malformed code section");
	if (n != m->nfuncs)
		return fail(err, errlen, "code section has %u bodies for %u functions", n,
			    m->nfuncs);
	for (uint32_t i = 0; i < n; i++) {
		struct wasm_reader body;
		if (wasm_rd_u32(r, &size) || (size_t)(r->end - r->p) < size)
			return fail(err, errlen, "function %u: truncated body",
				    m->nfunc_imports + i);
		m->funcs[i].body_off = (uint32_t)(r->p - m->bytes);
		m->funcs[i].body_len = size;
		body = (struct wasm_reader){ .base = m->bytes, .p = r->p, .end = r->p + size };
		ret = parse_body(m, i, &body, lim, err, errlen);
		if (ret)
			return ret;
		r->p += size;
	}
	return 0;
}

/* Static cost of loop-free leaf functions (see struct wasm_func). */
static void classify_functions(struct wasm_module *m)
{
	for (uint32_t i = 0; i < m->nfuncs; i++) {
		struct wasm_func *f = &m->funcs[i];
		f->static_cost = !f->loops && !f->calls ? f->ninsns : 0;
		if (f->static_cost > m->max_static_cost)
			m->max_static_cost = f->static_cost;
	}
}

/* Position of each known section id in the required order (datacount sits before code). */
static const uint8_t section_order[13] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 10 };

int wasm_module_parse(struct wasm_module *m, const uint8_t *bytes, size_t len,
		      const struct wasm_limits *lim, char *err, size_t errlen)
{
	struct wasm_reader r = { .base = bytes, .p = bytes + 8, .end = bytes + len };
	uint8_t last = 0;
	int ret;

	memset(m, 0, sizeof(*m));
	m->bytes = bytes;
	m->len = len;
	m->mem_max = UINT32_MAX;
	if (len > lim->max_module_bytes)
		return fail(err, errlen, "module is %zu bytes, above the limit of %u", len,
			    lim->max_module_bytes);
	if (len < 8 || memcmp(bytes, "\0asm", 4) != 0)
		return fail(err, errlen, "not a WebAssembly module (bad magic number)");
	if (bytes[4] != 1 || bytes[5] || bytes[6] || bytes[7])
		return fail(err, errlen, "unsupported WebAssembly binary version %u",
			    bytes[4] | bytes[5] << 8 | bytes[6] << 16 | (unsigned)bytes[7] << 24);
	while (r.p < r.end) {
		size_t at = wasm_rd_off(&r);
		uint8_t id;
		uint32_t size;
		struct wasm_reader s;
		if (wasm_rd_u8(&r, &id) || wasm_rd_u32(&r, &size) || (size_t)(r.end - r.p) < size)
			return fail(err, errlen, "offset %zu: truncated section", at);
		s = (struct wasm_reader){ .base = bytes, .p = r.p, .end = r.p + size };
		r.p += size;
		if (id == 0)
			continue; /* custom: names, producers, debug info */
		if (id > 12)
			return fail(err, errlen, "offset %zu: unknown section id %u", at, id);
		if (m->sec[id].present || section_order[id] <= last)
			return fail(err, errlen,
				    "offset %zu: section %u duplicated or out of order", at, id);
		last = section_order[id];
		m->sec[id] = (struct wasm_section){ .off = (uint32_t)(s.p - bytes),
						    .len = size,
						    .present = true };
		switch (id) {
		case 1:
			ret = parse_types(m, &s, err, errlen);
			break;
		case 2:
			ret = parse_imports(m, &s, err, errlen);
			break;
		case 3:
			ret = parse_functions(m, &s, err, errlen);
			break;
		case 4:
			ret = parse_tables(m, &s, lim, err, errlen);
			break;
		case 5:
			ret = parse_memories(m, &s, err, errlen);
			break;
		case 6:
			ret = parse_globals(m, &s, err, errlen);
			break;
		case 7:
			ret = parse_exports(m, &s, err, errlen);
			break;
		case 8:
			m->has_start = true;
			s.p = s.end;
			ret = 0;
			break;
		case 10:
			ret = parse_code(m, &s, lim, err, errlen);
			break;
		default: /* element, data, datacount: copied as they are, checked by the validator
			  */
			s.p = s.end;
			ret = 0;
			break;
		}
		if (ret)
			return ret == -ENOMEM ? ret : -EINVAL;
		if (s.p != s.end)
			return fail(err, errlen, "section %u: %zu trailing bytes", id,
				    (size_t)(s.end - s.p));
		if ((uint64_t)m->nfunc_imports + m->nfuncs > lim->max_functions)
			return fail(err, errlen, "module has %u functions, above the limit of %u",
				    m->nfunc_imports + m->nfuncs, lim->max_functions);
	}
	if (m->nfuncs && !m->sec[10].present)
		return fail(err, errlen, "function section without code section");
	classify_functions(m);
	return 0;
}

void wasm_module_release(struct wasm_module *m)
{
	if (!m)
		return;
	free(m->types);
	free(m->imports);
	free(m->funcs);
	free(m->exports);
	m->types = NULL;
	m->imports = NULL;
	m->funcs = NULL;
	m->exports = NULL;
}

/* ---- the filter contract ---- */

static bool name_is(const struct wasm_name *n, const char *s)
{
	size_t l = strlen(s);
	return n->len == l && memcmp(n->p, s, l) == 0;
}

const struct wasm_type *wasm_module_func_type(const struct wasm_module *m, uint32_t index)
{
	uint32_t seen = 0;
	for (uint32_t i = 0; i < m->nimports; i++) {
		if (m->imports[i].kind != WASM_EXT_FUNC)
			continue;
		if (seen++ == index)
			return &m->types[m->imports[i].type];
	}
	index -= m->nfunc_imports;
	return index < m->nfuncs ? &m->types[m->funcs[index].type] : NULL;
}

int wasm_module_find_export(const struct wasm_module *m, const char *name, uint8_t kind)
{
	for (uint32_t i = 0; i < m->nexports; i++)
		if (m->exports[i].kind == kind && name_is(&m->exports[i].name, name))
			return (int)i;
	return -1;
}

static const char *valtype_name(uint8_t t)
{
	switch (t) {
	case WASM_I32:
		return "i32";
	case WASM_I64:
		return "i64";
	case WASM_F32:
		return "f32";
	case WASM_F64:
		return "f64";
	}
	return "?";
}

const char *wasm_type_str(const struct wasm_type *t, char *buf, size_t len)
{
	size_t o = 0;
	o += (size_t)snprintf(buf + o, o < len ? len - o : 0, "(");
	for (uint32_t i = 0; i < t->nparams; i++)
		o += (size_t)snprintf(buf + o, o < len ? len - o : 0, "%s%s", i ? ", " : "",
				      valtype_name(t->params[i]));
	o += (size_t)snprintf(buf + o, o < len ? len - o : 0, ") -> ");
	if (t->nresults == 0)
		o += (size_t)snprintf(buf + o, o < len ? len - o : 0, "()");
	for (uint32_t i = 0; i < t->nresults; i++)
		o += (size_t)snprintf(buf + o, o < len ? len - o : 0, "%s%s", i ? ", " : "",
				      valtype_name(t->results[i]));
	return buf;
}

static bool type_is(const struct wasm_type *t, const char *params, const char *results)
{
	return t->nparams == strlen(params) && t->nresults == strlen(results) &&
	       memcmp(t->params, params, t->nparams) == 0 &&
	       memcmp(t->results, results, t->nresults) == 0;
}

/* Host API: name, params, results (value type bytes), in enum ap_filter_hostfn order. */
static const struct {
	const char *name, *params, *results, *sig;
} hostfns[AP_FILTER_HOST__COUNT] = {
	[AP_FILTER_HOST_LOG] = { "log", "\x7f\x7f\x7f", "", "(i32, i32, i32) -> ()" },
	[AP_FILTER_HOST_GET_TIMESTAMP] = { "get_timestamp", "", "\x7e", "() -> i64" },
	[AP_FILTER_HOST_FRAME_SYMBOL] = { "frame_symbol", "\x7f\x7f\x7f", "\x7f",
					  "(i32, i32, i32) -> i32" },
	[AP_FILTER_HOST_FRAME_MODULE] = { "frame_module", "\x7f\x7f\x7f", "\x7f",
					  "(i32, i32, i32) -> i32" },
	[AP_FILTER_HOST_AGENT_PID] = { "agent_pid", "", "\x7f", "() -> i32" },
};

static const struct {
	const char *name, *params, *results, *sig, *what;
	bool required;
} exports_spec[] = {
	{ "ap_abi_version", "", "\x7f", "() -> i32", "the ABI version it was built for", true },
	{ "ap_event_buffer", "", "\x7f", "() -> i32", "where the host writes events", true },
	{ "ap_filter", "\x7f\x7f", "\x7f", "(i32, i32) -> i32", "the entry point", true },
	{ "ap_init", "\x7f\x7f", "\x7f", "(i32, i32) -> i32", "the configuration hook", false },
	{ "_initialize", "", "", "() -> ()", "the wasi-libc reactor constructor", false },
};

static int check_imports(struct wasm_module *m, char *err, size_t errlen)
{
	for (uint32_t i = 0; i < m->nimports; i++) {
		struct wasm_import *im = &m->imports[i];
		const struct wasm_name *mod = &im->module, *nm = &im->name;
		const char *kinds[] = { "function", "table", "memory", "global" };
		char have[128];

		if (mod->len >= 4 && memcmp(mod->p, "wasi", 4) == 0)
			return fail(err, errlen,
				    "imports %.*s.%.*s: WASI is not available to filters (build "
				    "with -nostdlib, or avoid stdio and other WASI calls)",
				    (int)mod->len, mod->p, (int)nm->len, nm->p);
		if (im->kind != WASM_EXT_FUNC)
			return fail(err, errlen,
				    "imports %s %.*s.%.*s: filters may import only host functions "
				    "(and must define and export their own memory)",
				    kinds[im->kind], (int)mod->len, mod->p, (int)nm->len, nm->p);
		for (int h = 0; h < AP_FILTER_HOST__COUNT; h++)
			if (name_is(mod, "env") && name_is(nm, hostfns[h].name))
				im->hostfn = h;
		if (im->hostfn < 0)
			return fail(err, errlen,
				    "imports %.*s.%.*s, which is not an Aperture host function "
				    "(allowed: env.log, env.get_timestamp, env.frame_symbol, "
				    "env.frame_module, env.agent_pid)",
				    (int)mod->len, mod->p, (int)nm->len, nm->p);
		if (!type_is(&m->types[im->type], hostfns[im->hostfn].params,
			     hostfns[im->hostfn].results))
			return fail(err, errlen, "imports env.%s with type %s, expected %s",
				    hostfns[im->hostfn].name,
				    wasm_type_str(&m->types[im->type], have, sizeof(have)),
				    hostfns[im->hostfn].sig);
	}
	return 0;
}

int wasm_module_check_filter(struct wasm_module *m, const struct wasm_limits *lim, char *err,
			     size_t errlen)
{
	char have[128];
	int ret, e;

	if (m->has_start)
		return fail(err, errlen,
			    "the module has a start function, which would run at load without "
			    "a budget; do one-time setup in ap_init instead");
	ret = check_imports(m, err, errlen);
	if (ret)
		return ret;
	if (m->nmemories != 1)
		return fail(err, errlen, "the module must define exactly one memory (it has %u)",
			    m->nmemories);
	if (m->mem_min > lim->max_memory_pages)
		return fail(err, errlen,
			    "initial memory of %u pages (%u KiB) is above the limit of %u pages "
			    "(%u KiB)",
			    m->mem_min, m->mem_min * 64, lim->max_memory_pages,
			    lim->max_memory_pages * 64);
	if (m->ntables > 1)
		return fail(err, errlen, "more than one table is not supported");
	e = wasm_module_find_export(m, "memory", WASM_EXT_MEMORY);
	if (e < 0)
		return fail(err, errlen, "missing export 'memory'");
	for (uint32_t i = 0; i < m->nexports; i++)
		if (m->exports[i].name.len >= 5 && memcmp(m->exports[i].name.p, "__ap_", 5) == 0)
			return fail(err, errlen, "export name '%.*s' is reserved for the host",
				    (int)m->exports[i].name.len, m->exports[i].name.p);
	for (size_t i = 0; i < sizeof(exports_spec) / sizeof(exports_spec[0]); i++) {
		const struct wasm_type *t;
		e = wasm_module_find_export(m, exports_spec[i].name, WASM_EXT_FUNC);
		if (e < 0) {
			if (!exports_spec[i].required)
				continue;
			return fail(
			    err, errlen, "missing export '%s' %s, %s (see sdk/aperture_filter.h)",
			    exports_spec[i].name, exports_spec[i].sig, exports_spec[i].what);
		}
		t = wasm_module_func_type(m, m->exports[e].index);
		if (!t)
			return fail(err, errlen, "export '%s': bad function index",
				    exports_spec[i].name);
		if (!type_is(t, exports_spec[i].params, exports_spec[i].results))
			return fail(err, errlen, "export '%s' has type %s, expected %s",
				    exports_spec[i].name, wasm_type_str(t, have, sizeof(have)),
				    exports_spec[i].sig);
	}
	return 0;
}
