// SPDX-License-Identifier: MIT
/*
 * Interactive flamegraph as one self-contained SVG: the frames are laid out here, so the file
 * renders without scripting, and an inline script adds hover details, click-to-zoom and
 * search. Each frame carries its position in weight units (data-s, data-v, data-d) so the
 * script can re-layout a zoomed view exactly, without reparsing pixel coordinates.
 *
 * Layout: "all" at the bottom, then the comm, then user frames root to leaf, then kernel
 * frames on top (the model's stacks are leaf first with kernel frames first, so walking a
 * stack backwards gives exactly this order). Children are sorted by name, like flamegraph.pl.
 */
#include "flame_internal.h"
#include "format.h"
#include "lib/hash.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/parse.h"

#define IMG_W 1200
#define PAD 10
#define FRAME_W (IMG_W - 2 * PAD)
#define FRAME_H 16
#define FONT_PX 12
#define CHAR_W (0.59 * FONT_PX) /* average glyph width of the sans-serif font */
#define TOP_H 66		/* title, subtitle and buttons */
#define BOTTOM_H 34		/* details and search result line */
/* Frames narrower than a tenth of a pixel are invisible, even a little zoomed: leave them
 * out. Their weight stays in their parents, so totals and percentages are unchanged. */
#define MIN_FRAME_PX 0.1

/* The box classes of the default palette (flame_internal.h). */
#define CLS_ROOT AP_FLAME_ROOT
#define CLS_COMM AP_FLAME_COMM
#define CLS_USER AP_FLAME_USER
#define CLS_KERNEL AP_FLAME_KERNEL
#define CLS_UNKNOWN AP_FLAME_UNKNOWN

/* One distinct (display name, class). Sorted, so name index order is alphabetical. */
struct name_ent {
	char *s;
	uint32_t cls;
	uint32_t src; /* frame id, or string id of a comm */
	bool is_comm;
};

/* A sample's path from the comm to the top frame, as name indices. */
struct path {
	const uint32_t *ids;
	size_t off, len;
	uint64_t w;
};

struct node {
	uint64_t x, w; /* in weight units */
	uint32_t name; /* name index, UINT32_MAX for the root */
	uint32_t depth;
};

struct svg_ctx {
	const struct ap_profile *p;
	int vi;
	uint64_t total;
	char **names;
	uint32_t *cls;
	size_t nnames;
	uint32_t *frame_name; /* frame id -> name index */
	uint32_t *comm_name;  /* string id -> name index */
	uint32_t *pool;
	size_t pool_len;
	struct path *paths;
	size_t npaths;
	struct node *nodes;
	size_t nnodes;
};

static int ent_cmp(const void *a, const void *b)
{
	const struct name_ent *x = a, *y = b;
	int c = strcmp(x->s, y->s);

	if (c)
		return c;
	return x->cls < y->cls ? -1 : x->cls > y->cls;
}

static uint32_t frame_class(const struct ap_profile *p, uint32_t id)
{
	const struct ap_frame *f = ap_profile_frame(p, id);
	const char *name = f ? ap_profile_str(p, f->name) : "";

	if (!*name || strcmp(name, "[unknown]") == 0)
		return CLS_UNKNOWN;
	return f->kind == AP_FRAME_KERNEL ? CLS_KERNEL : CLS_USER;
}

/* Gives every frame and comm a name index, merging frames that display the same (the same
 * function at several addresses is one box in a flamegraph). */
static int build_names(struct svg_ctx *c)
{
	const struct ap_profile *p = c->p;
	size_t nframes = ap_profile_nframes(p), nstr = ap_profile_nstrings(p), n = 0;
	struct name_ent *ents = NULL;
	bool *is_comm = NULL;
	int err = -ENOMEM;

	is_comm = calloc(nstr ? nstr : 1, sizeof(*is_comm));
	c->frame_name = calloc(nframes ? nframes : 1, sizeof(*c->frame_name));
	c->comm_name = calloc(nstr ? nstr : 1, sizeof(*c->comm_name));
	if (!is_comm || !c->frame_name || !c->comm_name)
		goto out;
	for (size_t i = 0; i < ap_profile_nsamples(p); i++) {
		uint32_t comm = ap_profile_sample(p, i)->comm;

		is_comm[comm < nstr ? comm : 0] = true; /* a bad id shows as [unknown] */
	}
	ents = calloc(nframes + nstr + 1, sizeof(*ents));
	if (!ents)
		goto out;
	for (size_t i = 0; i < nframes; i++) {
		ents[n].s = ap_frame_display_dup(p, (uint32_t)i);
		ents[n].cls = frame_class(p, (uint32_t)i);
		ents[n].src = (uint32_t)i;
		if (!ents[n++].s)
			goto out;
	}
	for (size_t i = 0; i < nstr; i++) {
		if (!is_comm[i])
			continue;
		ents[n].s = strdup(i ? ap_profile_str(p, (uint32_t)i) : "[unknown]");
		ents[n].cls = CLS_COMM;
		ents[n].src = (uint32_t)i;
		ents[n].is_comm = true;
		if (!ents[n++].s)
			goto out;
	}
	if (n > 1) /* qsort(NULL, 0) is UB */
		qsort(ents, n, sizeof(*ents), ent_cmp);
	c->names = calloc(n ? n : 1, sizeof(*c->names));
	c->cls = calloc(n ? n : 1, sizeof(*c->cls));
	if (!c->names || !c->cls)
		goto out;
	for (size_t i = 0; i < n; i++) {
		struct name_ent last = {0};

		if (c->nnames) {
			last.s = c->names[c->nnames - 1];
			last.cls = c->cls[c->nnames - 1];
		}
		if (!c->nnames || ent_cmp(&ents[i], &last) != 0) {
			c->names[c->nnames] = ents[i].s;
			c->cls[c->nnames++] = ents[i].cls;
			ents[i].s = NULL; /* now owned by c->names */
		}
		if (ents[i].is_comm)
			c->comm_name[ents[i].src] = (uint32_t)c->nnames - 1;
		else
			c->frame_name[ents[i].src] = (uint32_t)c->nnames - 1;
	}
	err = 0;
out:
	for (size_t i = 0; ents && i < n; i++)
		free(ents[i].s);
	free(ents);
	free(is_comm);
	return err;
}

static int path_cmp(const void *a, const void *b)
{
	const struct path *x = a, *y = b;
	size_t n = x->len < y->len ? x->len : y->len;

	for (size_t i = 0; i < n; i++)
		if (x->ids[i] != y->ids[i])
			return x->ids[i] < y->ids[i] ? -1 : 1;
	return x->len < y->len ? -1 : x->len > y->len;
}

static int build_paths(struct svg_ctx *c)
{
	const struct ap_profile *p = c->p;
	size_t nsamples = ap_profile_nsamples(p), need = 0;

	for (size_t i = 0; i < nsamples; i++) {
		const struct ap_sample *s = ap_profile_sample(p, i);
		size_t n;

		if (!s->values[c->vi])
			continue;
		ap_profile_stack(p, s->stack, &n);
		need += n + 1;
	}
	c->pool = malloc((need ? need : 1) * sizeof(*c->pool));
	c->paths = malloc((nsamples ? nsamples : 1) * sizeof(*c->paths));
	if (!c->pool || !c->paths)
		return -ENOMEM;
	for (size_t i = 0; i < nsamples; i++) {
		const struct ap_sample *s = ap_profile_sample(p, i);
		struct path *path = &c->paths[c->npaths];
		const uint32_t *frames;
		size_t n;

		if (!s->values[c->vi])
			continue;
		frames = ap_profile_stack(p, s->stack, &n);
		path->off = c->pool_len;
		path->w = s->values[c->vi];
		c->pool[c->pool_len++] =
		    c->comm_name[s->comm < ap_profile_nstrings(p) ? s->comm : 0];
		for (size_t j = n; j-- > 0;)
			if (frames[j] < ap_profile_nframes(p)) /* the model does not check ids */
				c->pool[c->pool_len++] = c->frame_name[frames[j]];
		path->len = c->pool_len - path->off;
		c->total = ap_sat_add(c->total, path->w);
		c->npaths++;
	}
	for (size_t i = 0; i < c->npaths; i++)
		c->paths[i].ids = c->pool + c->paths[i].off;
	if (c->npaths > 1) /* qsort(NULL, 0) is UB */
		qsort(c->paths, c->npaths, sizeof(*c->paths), path_cmp);
	return 0;
}

/*
 * Paths are sorted, so a node's subtree is a run of consecutive paths: a node opens when a
 * path first differs from the previous one at its depth, at x = the weight seen so far.
 */
static int build_tree(struct svg_ctx *c)
{
	size_t maxlen = 0, cap = 1;
	uint64_t cursor = 0;
	uint32_t *open;

	for (size_t i = 0; i < c->npaths; i++) {
		cap += c->paths[i].len;
		if (c->paths[i].len > maxlen)
			maxlen = c->paths[i].len;
	}
	c->nodes = calloc(cap, sizeof(*c->nodes));
	open = calloc(maxlen + 1, sizeof(*open));
	if (!c->nodes || !open) {
		free(open);
		return -ENOMEM;
	}
	c->nodes[0] = (struct node){.x = 0, .w = c->total, .name = UINT32_MAX, .depth = 0};
	c->nnodes = 1;
	for (size_t i = 0; i < c->npaths; i++) {
		const struct path *cur = &c->paths[i], *prev = i ? &c->paths[i - 1] : NULL;
		size_t common = 0;

		while (prev && common < prev->len && common < cur->len &&
		       prev->ids[common] == cur->ids[common])
			common++;
		for (size_t k = 0; k < cur->len; k++) {
			if (k >= common) {
				c->nodes[c->nnodes] = (struct node){
				    .x = cursor, .name = cur->ids[k], .depth = (uint32_t)k + 1};
				open[k] = (uint32_t)c->nnodes++;
			}
			c->nodes[open[k]].w = ap_sat_add(c->nodes[open[k]].w, cur->w);
		}
		cursor = ap_sat_add(cursor, cur->w);
	}
	free(open);
	return 0;
}

static bool box_visible(uint64_t w, uint64_t total)
{
	return (double)w * FRAME_W >= MIN_FRAME_PX * (double)total;
}

uint64_t ap_svg_min_visible(uint64_t total)
{
	/* rounded down: a box this wide may still be left out, never one drawn */
	return (uint64_t)(MIN_FRAME_PX * (double)total / FRAME_W);
}

/* Writes s as XML character data: markup escaped, control characters and non-characters
 * replaced, invalid UTF-8 replaced by U+FFFD. At most max_chars characters are written. */
static void xml_put(FILE *out, const char *s, size_t max_chars)
{
	size_t len = strlen(s), chars = 0;

	for (size_t i = 0; i < len && chars < max_chars; chars++) {
		unsigned char ch = (unsigned char)s[i];
		size_t n = ap_utf8_seq_len(s + i, len - i);

		if (!n) {
			fputs("\xef\xbf\xbd", out);
			i++;
			continue;
		}
		if (n == 3 && ch == 0xef && (unsigned char)s[i + 1] == 0xbf &&
		    (unsigned char)s[i + 2] >= 0xbe) {
			fputs("\xef\xbf\xbd", out); /* U+FFFE and U+FFFF are not XML characters */
		} else if (n > 1) {
			fwrite(s + i, 1, n, out);
		} else if (ch == '&') {
			fputs("&amp;", out);
		} else if (ch == '<') {
			fputs("&lt;", out);
		} else if (ch == '>') {
			fputs("&gt;", out);
		} else if (ch == '"') {
			fputs("&quot;", out);
		} else if (ch < 0x20 || ch == 0x7f) {
			fputc('?', out);
		} else {
			fputc(ch, out);
		}
		i += n;
	}
}

static size_t utf8_chars(const char *s)
{
	size_t len = strlen(s), chars = 0;

	for (size_t i = 0; i < len; chars++) {
		size_t n = ap_utf8_seq_len(s + i, len - i);

		i += n ? n : 1;
	}
	return chars;
}

/* The label inside a box: the name, shortened with ".." to what fits in width pixels. */
static void put_label(FILE *out, const char *name, double width)
{
	double fit = (width - 6) / CHAR_W;
	/* a width from saturated weights can be absurd: never convert out of range */
	size_t nfit = fit <= 0 ? 0 : fit >= 1e9 ? (size_t)1e9 : (size_t)fit;

	if (nfit < 3)
		return;
	if (utf8_chars(name) <= nfit) {
		xml_put(out, name, SIZE_MAX);
		return;
	}
	xml_put(out, name, nfit - 2);
	fputs("..", out);
}

/* "1,234 samples" or "12.30 ms", after the weight's value type. */
const char *ap_svg_fmt_weight(const struct ap_profile *p, int vi, uint64_t v, char *buf,
			      size_t len)
{
	const struct ap_value_type *vt = ap_profile_value_type(p, (size_t)vi);
	const char *type = vt ? ap_profile_str(p, vt->type) : "";
	const char *unit = vt ? ap_profile_str(p, vt->unit) : "";
	char num[32];

	if (strcmp(unit, "nanoseconds") == 0)
		return ap_format_duration(v, buf, len);
	if (!*unit || strcmp(unit, "count") == 0)
		unit = *type ? type : "samples";
	snprintf(buf, len, "%s %s", ap_format_count(v, num, sizeof(num)), unit);
	return buf;
}

/* Same name, same colour, in every graph: the palette depends only on the name. */
static void put_colour(FILE *out, const char *name, uint32_t cls)
{
	uint32_t h = (uint32_t)ap_hash_bytes(name, strlen(name), 0);
	double v1 = (h & 0xff) / 255.0, v2 = ((h >> 8) & 0xff) / 255.0,
	       v3 = ((h >> 16) & 0xff) / 255.0;
	int r, g, b;

	switch (cls) {
	case CLS_ROOT:
		r = 200, g = 200, b = 210;
		break;
	case CLS_COMM:
		r = 80 + (int)(50 * v2), g = 175 + (int)(50 * v1), b = 95 + (int)(40 * v3);
		break;
	case CLS_KERNEL:
		r = 60 + (int)(60 * v2), g = 140 + (int)(60 * v1), b = 205 + (int)(50 * v3);
		break;
	case CLS_UNKNOWN:
		r = g = b = 165 + (int)(40 * v1);
		break;
	default: /* user code: the classic warm palette */
		r = 205 + (int)(50 * v3), g = (int)(230 * v1), b = (int)(55 * v2);
		break;
	}
	fprintf(out, "rgb(%d,%d,%d)", r, g, b);
}

static void put_box(FILE *out, const struct ap_svg_doc *d, const struct ap_svg_box *b,
		    const char *info, int img_h)
{
	double x = PAD + (double)b->x / (double)d->total * FRAME_W;
	double w = (double)b->w / (double)d->total * FRAME_W;
	int y = img_h - BOTTOM_H - (int)(b->depth + 1) * FRAME_H;

	fprintf(out, "<g class=\"f\" data-s=\"%llu\" data-v=\"%llu\" data-d=\"%u\"><title>",
		(unsigned long long)b->x, (unsigned long long)b->w, b->depth);
	xml_put(out, b->name, SIZE_MAX);
	fputs(" (", out);
	xml_put(out, info, SIZE_MAX);
	fputs(")</title>", out);
	fprintf(out, "<rect x=\"%.2f\" y=\"%d\" width=\"%.2f\" height=\"%d\" rx=\"2\" fill=\"", x,
		y, w, FRAME_H - 1);
	if (b->has_rgb)
		fprintf(out, "rgb(%d,%d,%d)", b->rgb[0], b->rgb[1], b->rgb[2]);
	else
		put_colour(out, b->name, b->cls);
	fprintf(out, "\"/><text x=\"%.2f\" y=\"%d\">", x + 3, y + FRAME_H - 4);
	put_label(out, b->name, w);
	fputs("</text></g>\n", out);
}

static const char svg_style[] =
    "text{font-family:Verdana,'DejaVu Sans',sans-serif;font-size:12px;fill:#000}\n"
    ".title{font-size:17px;text-anchor:middle}\n"
    ".sub{fill:#444;text-anchor:middle}\n"
    ".btn{cursor:pointer;fill:#1a4fb4;text-decoration:underline}\n"
    ".hide{display:none}\n"
    ".f{cursor:pointer}\n"
    ".f text{pointer-events:none}\n"
    ".f:hover rect{stroke:#222;stroke-width:1}\n"
    ".f.hl rect{fill:rgb(230,0,230)}\n"
    ".f.anc{opacity:0.55}\n";

/* No backslashes and no double quotes below, so the C literal stays readable. */
static const char svg_script[] =
    "'use strict';\n"
    "var W, PAD, CW, TOTAL, F = [], details, matched, unzoomBtn, clearBtn;\n"
    "var zoomed = null, term = '', hint = '';\n"
    "function init(evt) {\n"
    "  var svg = document.documentElement;\n"
    "  W = +svg.getAttribute('data-fw'); PAD = +svg.getAttribute('data-pad');\n"
    "  CW = +svg.getAttribute('data-cw'); TOTAL = +svg.getAttribute('data-total');\n"
    "  details = document.getElementById('details'); hint = details.textContent;\n"
    "  matched = document.getElementById('matched');\n"
    "  unzoomBtn = document.getElementById('unzoom');\n"
    "  clearBtn = document.getElementById('clear');\n"
    "  var gs = document.getElementById('frames').getElementsByTagName('g');\n"
    "  for (var i = 0; i < gs.length; i++) {\n"
    "    var g = gs[i], t = g.getElementsByTagName('title')[0].textContent;\n"
    "    F.push({ g: g, rect: g.getElementsByTagName('rect')[0],\n"
    "      text: g.getElementsByTagName('text')[0], info: t,\n"
    "      name: t.substring(0, t.lastIndexOf(' (')), s: +g.getAttribute('data-s'),\n"
    "      v: +g.getAttribute('data-v'), d: +g.getAttribute('data-d') });\n"
    "    g.frame = F[F.length - 1];\n"
    "  }\n"
    "  var fr = document.getElementById('frames');\n"
    "  fr.addEventListener('mouseover', function (e) {\n"
    "    var f = frameOf(e.target); if (f) details.textContent = f.info; });\n"
    "  fr.addEventListener('mouseout', function () { details.textContent = hint; });\n"
    "  fr.addEventListener('click', function (e) {\n"
    "    var f = frameOf(e.target); if (f) zoom(f); });\n"
    "  unzoomBtn.addEventListener('click', function () { zoom(null); });\n"
    "  document.getElementById('search').addEventListener('click', askSearch);\n"
    "  clearBtn.addEventListener('click', function () { search(''); });\n"
    "  document.addEventListener('keydown', function (e) {\n"
    "    if ((e.ctrlKey || e.metaKey) && (e.key === 'f' || e.key === 'F')) {\n"
    "      e.preventDefault(); askSearch();\n"
    "    } else if (e.key === 'Escape') { zoom(null); search(''); }\n"
    "  });\n"
    "}\n"
    "function frameOf(el) {\n"
    "  for (; el && el.nodeType === 1; el = el.parentNode) if (el.frame) return el.frame;\n"
    "  return null;\n"
    "}\n"
    "function cls(el, c, on) { if (on) el.classList.add(c); else el.classList.remove(c); }\n"
    "function fit(name, w) {\n"
    "  var n = Math.floor((w - 6) / CW);\n"
    "  if (n < 3) return '';\n"
    "  return name.length <= n ? name : name.substring(0, n - 2) + '..';\n"
    "}\n"
    "function place(f, x, w) {\n"
    "  f.rect.setAttribute('x', (PAD + x).toFixed(2));\n"
    "  f.rect.setAttribute('width', w.toFixed(2));\n"
    "  f.text.setAttribute('x', (PAD + x + 3).toFixed(2));\n"
    "  f.text.textContent = fit(f.name, w);\n"
    "}\n"
    /* Zooming into f: its ancestors span the full width, faded; frames outside its range
     * (siblings and their subtrees) are hidden; its subtree is rescaled to the full width. */
    "function zoom(f) {\n"
    "  if (f && f.d === 0) f = null;\n"
    "  zoomed = f;\n"
    "  var s0 = f ? f.s : 0, v0 = f ? f.v : TOTAL, d0 = f ? f.d : 0;\n"
    "  for (var i = 0; i < F.length; i++) {\n"
    "    var g = F[i], e = g.s + g.v, show = true, anc = false;\n"
    "    if (g.d < d0) { show = g.s <= s0 && e >= s0 + v0; anc = show; }\n"
    "    else show = g.s >= s0 && e <= s0 + v0;\n"
    "    cls(g.g, 'hide', !show); cls(g.g, 'anc', anc);\n"
    "    if (!show) continue;\n"
    "    if (anc) place(g, 0, W); else place(g, (g.s - s0) / v0 * W, g.v / v0 * W);\n"
    "  }\n"
    "  cls(unzoomBtn, 'hide', !f);\n"
    "  if (term) search(term);\n"
    "}\n"
    "function askSearch() {\n"
    "  var t = window.prompt('Search frames (regular expression, or plain text):', term);\n"
    "  if (t !== null) search(t);\n"
    "}\n"
    /* Matched share: union of the matching frames' ranges, so nested matches (recursion,
     * a caller and its callee) are counted once; relative to the zoomed frame if any. */
    "function search(t) {\n"
    "  term = t;\n"
    "  var test = null, iv = [];\n"
    "  if (t) {\n"
    "    try { var re = new RegExp(t); test = function (s) { return re.test(s); }; }\n"
    "    catch (err) { test = function (s) { return s.indexOf(t) >= 0; }; }\n"
    "  }\n"
    "  for (var i = 0; i < F.length; i++) {\n"
    "    var hit = test !== null && test(F[i].name);\n"
    "    cls(F[i].g, 'hl', hit);\n"
    "    if (hit) iv.push([F[i].s, F[i].s + F[i].v]);\n"
    "  }\n"
    "  cls(clearBtn, 'hide', !t);\n"
    "  if (!t) { matched.textContent = ' '; return; }\n"
    "  var lo = zoomed ? zoomed.s : 0, hi = zoomed ? zoomed.s + zoomed.v : TOTAL;\n"
    "  iv.sort(function (a, b) { return a[0] - b[0]; });\n"
    "  var sum = 0, cs = 0, ce = -1;\n"
    "  for (var j = 0; j < iv.length; j++) {\n"
    "    var a = Math.max(iv[j][0], lo), b = Math.min(iv[j][1], hi);\n"
    "    if (b <= a) continue;\n"
    "    if (a > ce) { if (ce > cs) sum += ce - cs; cs = a; ce = b; }\n"
    "    else if (b > ce) ce = b;\n"
    "  }\n"
    "  if (ce > cs) sum += ce - cs;\n"
    "  var share = hi > lo ? 100 * sum / (hi - lo) : 0;\n"
    "  matched.textContent = 'Matched: ' + share.toFixed(1) + '%';\n"
    "}\n";

/* "cpu" -> "CPU profile"; no mode -> "Flame Graph". */
static const char *title_of(const struct ap_profile *p, const struct ap_write_opts *opts,
			    char *buf, size_t len)
{
	const char *mode = ap_profile_get_meta(p, "mode");

	if (opts && opts->title)
		return opts->title;
	if (!mode || !*mode)
		return "Flame Graph";
	if (strcmp(mode, "cpu") == 0 || strcmp(mode, "gpu") == 0) {
		snprintf(buf, len, "%c%c%c profile", mode[0] - 32, mode[1] - 32, mode[2] - 32);
	} else if (strcmp(mode, "offcpu") == 0 || strcmp(mode, "off-cpu") == 0) {
		snprintf(buf, len, "Off-CPU profile");
	} else {
		snprintf(buf, len, "%s profile", mode);
		if (buf[0] >= 'a' && buf[0] <= 'z')
			buf[0] = (char)(buf[0] - 32);
	}
	return buf;
}

/* Stats that mean something was lost or is missing; the others are informational. */
static bool stat_is_loss(const char *name)
{
	static const char *const words[] = { "error", "drop", "full", "missed", "truncat",
					     "fail", "lost", "unwindable" };

	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strstr(name, words[i]))
			return true;
	return false;
}

/* "1,234 samples in 10.00 s" and the run's non-zero loss counters (drops must not go
 * unnoticed); every stat is in the JSON and pprof outputs. */
static void put_subtitle(FILE *out, const struct svg_ctx *c)
{
	uint64_t dur = ap_profile_duration_ns(c->p);
	char buf[64];
	bool first = true;
	size_t shown = 0;

	fputs(ap_svg_fmt_weight(c->p, c->vi, c->total, buf, sizeof(buf)), out);
	if (dur)
		fprintf(out, " in %s", ap_format_duration(dur, buf, sizeof(buf)));
	for (size_t i = 0; i < ap_profile_nstats(c->p); i++) {
		const struct ap_stat *st = ap_profile_stat(c->p, i);

		if (!st->value || !stat_is_loss(st->name))
			continue;
		if (++shown > 4) { /* keep the line inside the image */
			fputs(", \xe2\x80\xa6", out);
			break;
		}
		fputs(first ? " \xe2\x80\x94 " : ", ", out);
		fputs(st->name, out);
		fprintf(out, ": %s", ap_format_count(st->value, buf, sizeof(buf)));
		first = false;
	}
}

int ap_svg_write_doc(FILE *out, const struct ap_svg_doc *d)
{
	uint32_t max_depth = 0;
	struct ap_svg_box b;
	char info[256];
	int h;

	for (size_t i = 0; d->total && i < d->nboxes; i++) {
		b = (struct ap_svg_box){0};
		d->box(d->ctx, i, &b, NULL, 0); /* geometry only: the tooltips cost */
		if (b.depth > max_depth && box_visible(b.w, d->total))
			max_depth = b.depth;
	}
	h = TOP_H + BOTTOM_H + (int)(max_depth + 1) * FRAME_H;
	fprintf(out,
		"<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n"
		"<svg version=\"1.1\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
		"height=\"%d\" viewBox=\"0 0 %d %d\" onload=\"init(evt)\" data-fw=\"%d\" "
		"data-pad=\"%d\" data-cw=\"%.2f\" data-total=\"%llu\">\n",
		IMG_W, h, IMG_W, h, FRAME_W, PAD, CHAR_W, (unsigned long long)d->total);
	fprintf(out, "<style type=\"text/css\"><![CDATA[\n%s]]></style>\n", svg_style);
	fprintf(out, "<script type=\"text/ecmascript\"><![CDATA[\n%s]]></script>\n", svg_script);
	fputs("<defs><linearGradient id=\"bg\" x1=\"0\" y1=\"0\" x2=\"0\" y2=\"1\">"
	      "<stop stop-color=\"#eeeeee\" offset=\"5%\"/><stop stop-color=\"#eeeeb0\" "
	      "offset=\"95%\"/></linearGradient></defs>\n",
	      out);
	fprintf(out, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"url(#bg)\"/>\n",
		IMG_W, h);
	fprintf(out, "<text id=\"title\" class=\"title\" x=\"%d\" y=\"24\">", IMG_W / 2);
	xml_put(out, d->title, SIZE_MAX);
	fprintf(out, "</text>\n<text id=\"subtitle\" class=\"sub\" x=\"%d\" y=\"44\">", IMG_W / 2);
	xml_put(out, d->subtitle, SIZE_MAX);
	fprintf(out, "</text>\n");
	fprintf(out, "<text id=\"unzoom\" class=\"btn hide\" x=\"%d\" y=\"24\">Reset Zoom</text>\n",
		PAD);
	fprintf(out, "<text id=\"search\" class=\"btn\" x=\"%d\" y=\"24\">Search</text>\n",
		IMG_W - PAD - 100);
	fprintf(out, "<text id=\"clear\" class=\"btn hide\" x=\"%d\" y=\"24\">Clear</text>\n",
		IMG_W - PAD - 40);
	fprintf(out, "<text id=\"matched\" x=\"%d\" y=\"%d\"> </text>\n", IMG_W - PAD - 130,
		h - 12);
	fprintf(out, "<text id=\"details\" x=\"%d\" y=\"%d\">%s</text>\n", PAD, h - 12,
		d->total ? "Hover a frame for details, click to zoom, Ctrl-F to search."
			 : "No samples.");
	fputs("<g id=\"frames\">\n", out);
	for (size_t i = 0; d->total && i < d->nboxes; i++) {
		b = (struct ap_svg_box){0};
		d->box(d->ctx, i, &b, NULL, 0);
		if (!box_visible(b.w, d->total))
			continue;
		d->box(d->ctx, i, &b, info, sizeof(info));
		put_box(out, d, &b, info, h);
	}
	fputs("</g>\n</svg>\n", out);
	return ap_stream_status(out);
}

static void svg_box(const void *ctx, size_t i, struct ap_svg_box *b, char *info, size_t infolen)
{
	const struct svg_ctx *c = ctx;
	const struct node *n = &c->nodes[i];
	char wbuf[64];

	b->x = n->x;
	b->w = n->w;
	b->depth = n->depth;
	b->name = n->name == UINT32_MAX ? "all" : c->names[n->name];
	b->cls = n->name == UINT32_MAX ? CLS_ROOT : c->cls[n->name];
	if (!info)
		return;
	snprintf(info, infolen, "%s, %.2f%%", ap_svg_fmt_weight(c->p, c->vi, n->w, wbuf, sizeof(wbuf)),
		 100.0 * (double)n->w / (double)c->total);
}

int ap_write_svg(const struct ap_profile *p, FILE *out, const struct ap_write_opts *opts)
{
	struct svg_ctx c = {.p = p};
	int err;

	c.vi = ap_format_value_index(p, opts);
	if (c.vi < 0)
		return c.vi;
	err = build_names(&c);
	if (!err)
		err = build_paths(&c);
	if (!err)
		err = build_tree(&c);
	if (err)
		goto out;
	{
		char tbuf[128], *sub = NULL;
		size_t sublen = 0;
		FILE *mem = open_memstream(&sub, &sublen);
		struct ap_svg_doc d = {.total = c.total, .nboxes = c.nnodes, .box = svg_box,
				       .ctx = &c, .title = title_of(p, opts, tbuf, sizeof(tbuf))};

		if (!mem) {
			err = -ENOMEM;
			goto out;
		}
		put_subtitle(mem, &c);
		if (fclose(mem) || !sub) {
			free(sub);
			err = -ENOMEM;
			goto out;
		}
		d.subtitle = sub;
		err = ap_svg_write_doc(out, &d);
		free(sub);
	}
out:
	for (size_t i = 0; i < c.nnames; i++)
		free(c.names[i]);
	free(c.names);
	free(c.cls);
	free(c.frame_name);
	free(c.comm_name);
	free(c.pool);
	free(c.paths);
	free(c.nodes);
	return err;
}
