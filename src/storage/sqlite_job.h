/* SPDX-License-Identifier: MIT */
/*
 * One queued write of the SQLite backend. write() prepares it in the caller's thread (checks,
 * hashes, the push turned into job-local frames, stacks, series and entries, with pointers into
 * the caller's profile: write() blocks until the job is done, so they stay valid) and the writer
 * thread only maps hashes to ids and writes.
 */
#ifndef AP_SQLITE_JOB_H
#define AP_SQLITE_JOB_H

#include "sqlite_internal.h"

struct pj_frame {
	uint64_t hash;
	const char *name, *module, *file;
	uint32_t line, kind, flags;
};

struct pj_stack {
	uint64_t hash;
	uint32_t n, first; /* job frame indices at stack_frames[first .. first + n) */
};

struct pj_series {
	uint64_t hash;
	uint64_t key; /* (pid, comm, labels) of the profile it came from, to reuse it */
	uint32_t pid, comm, labels; /* a flat profile's: labels = the first of nlabels */
	uint32_t nlabels;
	struct sq_buf blob; /* canonical label pairs, sorted by name */
};

struct pj_entry {
	uint32_t series, stack; /* job indices */
	uint64_t v[AP_MAX_VALUES];
};

struct pj_row {
	uint32_t series;
	const struct ap_table_row *r;
};

enum sq_job_kind { SQ_JOB_WRITE, SQ_JOB_RETENTION };

struct sq_job {
	struct sq_job *next;
	enum sq_job_kind kind;

	/* SQ_JOB_WRITE */
	const char *push_id; /* NULL: no de-duplication */
	uint64_t from_ns;
	struct pj_frame *frames;
	size_t nframes, capframes;
	struct pj_stack *stacks;
	size_t nstacks, capstacks;
	uint32_t *stack_frames;
	size_t nsf, capsf;
	struct pj_series *series;
	size_t nseries, capseries;
	struct sq_buf vtypes; /* (period type, unit), then (type, unit) per value */
	uint32_t nvalues;
	uint64_t period;
	struct pj_entry *entries;
	size_t nentries, capentries;
	struct pj_row *rows;
	size_t nrows;
	uint64_t label_conflicts;
	/* writer scratch: job index -> store id */
	uint32_t *frame_ids, *stack_ids, *series_ids;

	/* SQ_JOB_RETENTION */
	uint64_t before_ns;

	/* result */
	bool done, duplicate;
	int ret;
	char err[256];
};

/* Check and prepare a write (caller's thread). Returns 0 or -EINVAL/-ENOMEM with err. */
int sq_job_prepare(struct sq_job *j, const struct ap_store_write *w, char *err, size_t errlen);
void sq_job_release(struct sq_job *j);
/* Retention in the writer thread (sqlite_retention.c); the result goes into j->ret/err. */
void sq_retention_run(struct sq_store *s, struct sq_job *j);

#endif
