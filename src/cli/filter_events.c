// SPDX-License-Identifier: MIT
/* JSON event objects -> struct ap_filter_event. Strict: unknown keys and bad types fail. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "filter_events.h"

static const char *const type_names[] = {
	[AP_FILTER_EV_CPU] = "cpu",
	[AP_FILTER_EV_LOCK] = "lock",
	[AP_FILTER_EV_SYSCALL] = "syscall",
	[AP_FILTER_EV_GPU] = "gpu",
};

const char *ap_cli_event_type_name(uint32_t type)
{
	return type >= 1 && type <= AP_FILTER_EV_GPU ? type_names[type] : "?";
}

struct field {
	const char *name;
	int kind; /* 'u' u64, 'U' u32, 'i' s64, 'h' u16 */
	size_t off;
};

#define F(kind, st, member)                                                                        \
	{                                                                                          \
#member, kind, offsetof(st, member)                                                \
	}

static const struct field sample_fields[] = {
	F('u', struct ap_filter_cpu, period_ns),
	{ NULL, 0, 0 },
};
static const struct field lock_fields[] = {
	F('u', struct ap_filter_lock, addr),
	F('u', struct ap_filter_lock, wait_ns),
	F('U', struct ap_filter_lock, kind),
	F('U', struct ap_filter_lock, flags),
	F('U', struct ap_filter_lock, holder_tid),
	F('U', struct ap_filter_lock, lclass),
	{ NULL, 0, 0 },
};
static const struct field syscall_fields[] = {
	F('U', struct ap_filter_syscall, nr),
	F('i', struct ap_filter_syscall, ret),
	F('u', struct ap_filter_syscall, latency_ns),
	{ NULL, 0, 0 },
};
static const struct field gpu_fields[] = {
	F('u', struct ap_filter_gpu, duration_ns),
	F('u', struct ap_filter_gpu, bytes),
	F('u', struct ap_filter_gpu, correlation_id),
	F('U', struct ap_filter_gpu, kind),
	F('U', struct ap_filter_gpu, device),
	F('U', struct ap_filter_gpu, stream),
	{ NULL, 0, 0 },
};
static const struct field header_fields[] = {
	F('U', struct ap_filter_event, pid),
	F('U', struct ap_filter_event, tid),
	F('u', struct ap_filter_event, timestamp_ns),
	F('u', struct ap_filter_event, weight),
	F('U', struct ap_filter_event, cpu),
	F('U', struct ap_filter_event, flags),
	{ NULL, 0, 0 },
};

static int set_field(const struct field *f, const struct ap_json *v, void *base, char *err,
		     size_t errlen)
{
	uint64_t u;
	int64_t s;
	int ret;

	if (f->kind == 'i') {
		ret = ap_json_i64(v, &s);
		if (!ret)
			memcpy((char *)base + f->off, &s, sizeof(s));
	} else {
		ret = ap_json_u64(v, &u);
		if (!ret && f->kind == 'U' && u > UINT32_MAX)
			ret = -ERANGE;
		if (!ret && f->kind == 'U') {
			uint32_t x = (uint32_t)u;
			memcpy((char *)base + f->off, &x, sizeof(x));
		} else if (!ret) {
			memcpy((char *)base + f->off, &u, sizeof(u));
		}
	}
	if (ret)
		snprintf(err, errlen, "line %u: \"%s\" must be %s", v->line, f->name,
			 ret == -ERANGE ? "in range" : "an integer (or a \"0x...\" string)");
	return ret ? -EINVAL : 0;
}

static int set_fields(const struct field *fields, const struct ap_json *obj, void *base,
		      const char *what, char *err, size_t errlen)
{
	if (obj->type != AP_JSON_OBJECT) {
		snprintf(err, errlen, "line %u: \"%s\" must be an object", obj->line, what);
		return -EINVAL;
	}
	for (size_t i = 0; i < obj->len; i++) {
		const struct field *f = fields;
		while (f->name && strcmp(f->name, obj->keys[i]) != 0)
			f++;
		if (!f->name) {
			snprintf(err, errlen, "line %u: unknown field \"%s\" in \"%s\"",
				 obj->items[i].line, obj->keys[i], what);
			return -EINVAL;
		}
		if (set_field(f, &obj->items[i], base, err, errlen))
			return -EINVAL;
	}
	return 0;
}

static int set_text(const struct ap_json *v, char *dst, size_t cap, const char *what, char *err,
		    size_t errlen)
{
	if (v->type != AP_JSON_STRING || v->len >= cap || strlen(v->str) != v->len) {
		snprintf(err, errlen, "line %u: \"%s\" must be a string of at most %zu bytes",
			 v->line, what, cap - 1);
		return -EINVAL;
	}
	memset(dst, 0, cap);
	memcpy(dst, v->str, v->len);
	return 0;
}

/* Frames: numbers, "0x..." strings, or {"addr": A, "symbol": S, "module": M}. */
static int set_stack(const struct ap_json *v, struct ap_filter_event *ev, uint32_t *n,
		     struct ap_cli_event_names *names, const char *what, char *err, size_t errlen)
{
	if (v->type != AP_JSON_ARRAY) {
		snprintf(err, errlen, "line %u: \"%s\" must be an array", v->line, what);
		return -EINVAL;
	}
	for (size_t i = 0; i < v->len; i++) {
		const struct ap_json *fr = &v->items[i], *addr = fr;
		if (*n >= AP_FILTER_MAX_FRAMES) {
			snprintf(err, errlen, "line %u: more than %d frames", fr->line,
				 AP_FILTER_MAX_FRAMES);
			return -EINVAL;
		}
		names->symbol[*n] = names->module[*n] = NULL;
		if (fr->type == AP_JSON_OBJECT) {
			for (size_t k = 0; k < fr->len; k++) {
				const struct ap_json *x = &fr->items[k];
				const char *key = fr->keys[k];
				if (strcmp(key, "addr") == 0)
					continue;
				if ((strcmp(key, "symbol") && strcmp(key, "module")) ||
				    x->type != AP_JSON_STRING) {
					snprintf(err, errlen,
						 "line %u: a frame object has \"addr\" and string "
						 "\"symbol\"/\"module\" only",
						 x->line);
					return -EINVAL;
				}
				if (strcmp(key, "symbol") == 0)
					names->symbol[*n] = x->str;
				else
					names->module[*n] = x->str;
			}
			addr = ap_json_get(fr, "addr");
		}
		if (ap_json_u64(addr, &ev->frames[*n])) {
			snprintf(err, errlen,
				 "line %u: a frame address must be an integer or a "
				 "\"0x...\" string",
				 fr->line);
			return -EINVAL;
		}
		(*n)++;
	}
	return 0;
}

int ap_cli_event_from_json(const struct ap_json *j, struct ap_filter_event *ev,
			   struct ap_cli_event_names *names, char *err, size_t errlen)
{
	const struct ap_json *type = ap_json_get(j, "type"), *kstack, *ustack;
	uint32_t nk = 0, nu = 0;
	bool has_tid = false;

	memset(ev, 0, AP_FILTER_HEADER_SIZE);
	ev->abi_version = AP_FILTER_ABI_VERSION;
	ev->weight = 1;
	if (j->type != AP_JSON_OBJECT) {
		snprintf(err, errlen, "line %u: an event must be an object", j->line);
		return -EINVAL;
	}
	if (!type || type->type != AP_JSON_STRING) {
		snprintf(err, errlen, "line %u: an event needs \"type\": cpu, lock, syscall or gpu",
			 j->line);
		return -EINVAL;
	}
	for (uint32_t t = AP_FILTER_EV_CPU; t <= AP_FILTER_EV_GPU; t++)
		if (strcmp(type->str, type_names[t]) == 0)
			ev->type = t;
	if (!ev->type) {
		snprintf(err, errlen, "line %u: unknown event type \"%s\"", type->line, type->str);
		return -EINVAL;
	}
	for (size_t i = 0; i < j->len; i++) {
		const char *key = j->keys[i];
		const struct ap_json *v = &j->items[i];
		const struct field *f = header_fields;
		int ret = 0;

		while (f->name && strcmp(f->name, key) != 0)
			f++;
		if (f->name) {
			ret = set_field(f, v, ev, err, errlen);
			has_tid |= strcmp(key, "tid") == 0;
		} else if (strcmp(key, "type") == 0 || strcmp(key, "kernel_stack") == 0 ||
			   strcmp(key, "user_stack") == 0) {
			continue;
		} else if (strcmp(key, "comm") == 0) {
			ret = set_text(v, ev->comm, sizeof(ev->comm), key, err, errlen);
		} else if (strcmp(key, "tag") == 0) {
			ret = set_text(v, ev->tag, sizeof(ev->tag), key, err, errlen);
		} else if (strcmp(key, "sample") == 0 && ev->type == AP_FILTER_EV_CPU) {
			ret = set_fields(sample_fields, v, &ev->sample, key, err, errlen);
		} else if (strcmp(key, "lock") == 0 && ev->type == AP_FILTER_EV_LOCK) {
			ret = set_fields(lock_fields, v, &ev->lock, key, err, errlen);
		} else if (strcmp(key, "syscall") == 0 && ev->type == AP_FILTER_EV_SYSCALL) {
			ret = set_fields(syscall_fields, v, &ev->syscall, key, err, errlen);
		} else if (strcmp(key, "gpu") == 0 && ev->type == AP_FILTER_EV_GPU) {
			ret = set_fields(gpu_fields, v, &ev->gpu, key, err, errlen);
		} else {
			snprintf(err, errlen, "line %u: unknown field \"%s\" for a %s event",
				 v->line, key, type->str);
			ret = -EINVAL;
		}
		if (ret)
			return -EINVAL;
	}
	if (!has_tid)
		ev->tid = ev->pid;
	kstack = ap_json_get(j, "kernel_stack");
	ustack = ap_json_get(j, "user_stack");
	if (kstack && set_stack(kstack, ev, &nk, names, "kernel_stack", err, errlen))
		return -EINVAL;
	nu = nk;
	if (ustack && set_stack(ustack, ev, &nu, names, "user_stack", err, errlen))
		return -EINVAL;
	ev->n_kernel = (uint16_t)nk;
	ev->n_user = (uint16_t)(nu - nk);
	ev->size = AP_FILTER_EVENT_SIZE(nu);
	return 0;
}
