/* SPDX-License-Identifier: MIT */
/*
 * A small strict JSON parser (RFC 8259) into a tree: no comments, no trailing commas, no
 * duplicate keys, UTF-8 validated, nesting limited. Numbers keep their text so integers up
 * to 64 bits convert exactly. For inputs such as `aperture filter run --events FILE`.
 */
#ifndef AP_JSON_PARSE_H
#define AP_JSON_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AP_JSON_MAX_DEPTH 64
/* Members of one object: duplicate keys are found by a linear scan. */
#define AP_JSON_MAX_KEYS 4096

enum ap_json_type {
	AP_JSON_NULL = 0,
	AP_JSON_BOOL,
	AP_JSON_NUMBER,
	AP_JSON_STRING,
	AP_JSON_ARRAY,
	AP_JSON_OBJECT,
};

struct ap_json {
	enum ap_json_type type;
	bool boolean;	       /* BOOL */
	char *str;	       /* STRING: decoded, NUL-terminated; NUMBER: the literal */
	size_t len;	       /* STRING: bytes (may hold \u0000); ARRAY/OBJECT: items */
	struct ap_json *items; /* ARRAY: elements; OBJECT: values */
	char **keys;	       /* OBJECT: keys, in input order */
	uint32_t line, column; /* where the value starts (1-based) */
};

/* Parse `len` bytes. Returns the root (free with ap_json_free) or NULL with
 * "line L, column C: reason" in err (errno EINVAL, or ENOMEM). */
struct ap_json *ap_json_parse(const char *text, size_t len, char *err, size_t errlen);
/* Same, failing (EINVAL) once the document holds more than max_values values (0 = no limit):
 * the tree costs ~100 bytes a value, so this bounds its memory for untrusted input. */
struct ap_json *ap_json_parse_max(const char *text, size_t len, size_t max_values, char *err,
				  size_t errlen);
void ap_json_free(struct ap_json *root);

/* Member `key` of an object, or NULL (also when j is not an object). */
const struct ap_json *ap_json_get(const struct ap_json *j, const char *key);

/* An integer: a JSON number without fraction or exponent, or a string holding a decimal or
 * 0x-prefixed hexadecimal integer (for addresses). Returns 0, -EINVAL or -ERANGE. */
int ap_json_u64(const struct ap_json *j, uint64_t *out);
int ap_json_i64(const struct ap_json *j, int64_t *out);

/* Name of a type, for messages ("object", "string", ...). */
const char *ap_json_type_name(enum ap_json_type t);

#endif
