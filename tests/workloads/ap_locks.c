// SPDX-License-Identifier: MIT
/*
 * Lock contention with known answers, for the lock-mode tests.
 *
 * Usage: ap_locks [SECONDS] [--wait]
 *        ap_locks --uncontended N     (benchmark: N lock/unlock pairs on one thread, prints ns)
 * Prints its pid, then (with --wait) waits for a line on stdin, runs every section for SECONDS
 * (default 3) concurrently, and prints its own accounting as one JSON object on stdout.
 *
 * Sections (each thread is named, so holders and waiters can be checked by comm):
 *  - mutex:    "hog" holds g_hog_mutex for 2 ms at a time; three "mwaiter" threads take it
 *              briefly every 1 ms, so nearly all their waiting is for the hog.
 *  - pi-mutex: the same with a PTHREAD_PRIO_INHERIT mutex ("pihog", "piwaiter").
 *  - rwlock:   "writer" write-locks g_rwlock for 2 ms at a time; two "reader" threads
 *              read-lock it briefly.
 *  - condvar:  "consumer" waits on g_cond; "producer" signals it every 2 ms.
 *
 * Accounting: a lock call that fails its trylock first is "contended"; its blocking call is
 * timed with CLOCK_MONOTONIC. Condition waits are timed around pthread_cond_wait.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define HOLD_NS 2000000L
#define GAP_NS 1000000L

struct account {
	atomic_uint_fast64_t contended;
	atomic_uint_fast64_t wait_ns;
};

pthread_mutex_t g_hog_mutex = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t g_pi_mutex;
pthread_rwlock_t g_rwlock = PTHREAD_RWLOCK_INITIALIZER;
pthread_mutex_t g_cond_mutex = PTHREAD_MUTEX_INITIALIZER;
pthread_cond_t g_cond = PTHREAD_COND_INITIALIZER;

static struct account acc_mutex, acc_pi, acc_rw, acc_cond;
static atomic_int stop;
static atomic_int hog_tid, pihog_tid, writer_tid, consumer_tid;
static volatile unsigned long sink;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void sleep_ns(long ns)
{
	struct timespec ts = { ns / 1000000000L, ns % 1000000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static int gettid_(void)
{
	return (int)syscall(SYS_gettid);
}

__attribute__((noinline)) static void short_work(void)
{
	for (int i = 0; i < 2000; i++)
		sink += (unsigned long)i;
}

/* Lock, timing the wait when the lock was busy. */
__attribute__((noinline)) static void timed_mutex_lock(pthread_mutex_t *m, struct account *a)
{
	uint64_t t0;

	if (pthread_mutex_trylock(m) == 0)
		return;
	t0 = now_ns();
	pthread_mutex_lock(m);
	atomic_fetch_add(&a->wait_ns, now_ns() - t0);
	atomic_fetch_add(&a->contended, 1);
}

__attribute__((noinline)) static void timed_rdlock(pthread_rwlock_t *l, struct account *a)
{
	uint64_t t0;

	if (pthread_rwlock_tryrdlock(l) == 0)
		return;
	t0 = now_ns();
	pthread_rwlock_rdlock(l);
	atomic_fetch_add(&a->wait_ns, now_ns() - t0);
	atomic_fetch_add(&a->contended, 1);
}

__attribute__((noinline)) static void timed_wrlock(pthread_rwlock_t *l, struct account *a)
{
	uint64_t t0;

	if (pthread_rwlock_trywrlock(l) == 0)
		return;
	t0 = now_ns();
	pthread_rwlock_wrlock(l);
	atomic_fetch_add(&a->wait_ns, now_ns() - t0);
	atomic_fetch_add(&a->contended, 1);
}

/* ---- mutex / PI mutex: a hog and its waiters ---- */

struct mutex_role {
	pthread_mutex_t *m;
	struct account *a;
	atomic_int *tid_out;
};

__attribute__((noinline)) static void *hog_loop(void *arg)
{
	struct mutex_role *r = arg;

	atomic_store(r->tid_out, gettid_());
	while (!atomic_load(&stop)) {
		timed_mutex_lock(r->m, r->a);
		sleep_ns(HOLD_NS); /* hold while asleep: waiters block in the kernel */
		pthread_mutex_unlock(r->m);
		sleep_ns(GAP_NS);
	}
	return NULL;
}

__attribute__((noinline)) static void *mutex_waiter_loop(void *arg)
{
	struct mutex_role *r = arg;

	while (!atomic_load(&stop)) {
		timed_mutex_lock(r->m, r->a);
		short_work();
		pthread_mutex_unlock(r->m);
		sleep_ns(GAP_NS);
	}
	return NULL;
}

/* ---- rwlock ---- */

__attribute__((noinline)) static void *writer_loop(void *arg)
{
	(void)arg;
	atomic_store(&writer_tid, gettid_());
	while (!atomic_load(&stop)) {
		timed_wrlock(&g_rwlock, &acc_rw);
		sleep_ns(HOLD_NS);
		pthread_rwlock_unlock(&g_rwlock);
		sleep_ns(GAP_NS);
	}
	return NULL;
}

__attribute__((noinline)) static void *reader_loop(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		timed_rdlock(&g_rwlock, &acc_rw);
		short_work();
		pthread_rwlock_unlock(&g_rwlock);
		sleep_ns(GAP_NS / 2);
	}
	return NULL;
}

/* ---- condition variable ---- */

static int cond_ready;

__attribute__((noinline)) static void *consumer_loop(void *arg)
{
	(void)arg;
	atomic_store(&consumer_tid, gettid_());
	pthread_mutex_lock(&g_cond_mutex);
	while (!atomic_load(&stop)) {
		while (!cond_ready && !atomic_load(&stop)) {
			uint64_t t0 = now_ns();

			pthread_cond_wait(&g_cond, &g_cond_mutex);
			atomic_fetch_add(&acc_cond.wait_ns, now_ns() - t0);
			atomic_fetch_add(&acc_cond.contended, 1);
		}
		cond_ready = 0;
	}
	pthread_mutex_unlock(&g_cond_mutex);
	return NULL;
}

__attribute__((noinline)) static void *producer_loop(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		sleep_ns(HOLD_NS);
		pthread_mutex_lock(&g_cond_mutex);
		cond_ready = 1;
		pthread_cond_signal(&g_cond);
		pthread_mutex_unlock(&g_cond_mutex);
	}
	/* wake the consumer for the last time */
	pthread_mutex_lock(&g_cond_mutex);
	pthread_cond_broadcast(&g_cond);
	pthread_mutex_unlock(&g_cond_mutex);
	return NULL;
}

struct thread_spec {
	void *(*fn)(void *);
	void *arg;
	const char *name;
};

static void print_account(const char *name, const char *kind, const void *addr,
			  const struct account *a, const char *holder_key, int holder, bool last)
{
	printf("  {\"name\": \"%s\", \"kind\": \"%s\", \"addr\": \"%p\", \"contended\": %llu, "
	       "\"wait_ns\": %llu", name, kind, addr,
	       (unsigned long long)atomic_load(&a->contended),
	       (unsigned long long)atomic_load(&a->wait_ns));
	if (holder_key)
		printf(", \"%s\": %d", holder_key, holder);
	printf("}%s\n", last ? "" : ",");
}

/* The lock benchmark's loop: the fast path only, never a syscall. */
__attribute__((noinline)) static int uncontended(unsigned long long n)
{
	static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
	uint64_t t0 = now_ns();

	for (unsigned long long i = 0; i < n; i++) {
		pthread_mutex_lock(&m);
		sink++;
		pthread_mutex_unlock(&m);
	}
	printf("%llu\n", (unsigned long long)(now_ns() - t0));
	return 0;
}

int main(int argc, char **argv)
{
	static struct mutex_role hog = { &g_hog_mutex, &acc_mutex, &hog_tid };
	static struct mutex_role pihog = { &g_pi_mutex, &acc_pi, &pihog_tid };
	struct thread_spec specs[] = {
		{ hog_loop, &hog, "hog" },
		{ mutex_waiter_loop, &hog, "mwaiter" },
		{ mutex_waiter_loop, &hog, "mwaiter" },
		{ mutex_waiter_loop, &hog, "mwaiter" },
		{ hog_loop, &pihog, "pihog" },
		{ mutex_waiter_loop, &pihog, "piwaiter" },
		{ mutex_waiter_loop, &pihog, "piwaiter" },
		{ writer_loop, NULL, "writer" },
		{ reader_loop, NULL, "reader" },
		{ reader_loop, NULL, "reader" },
		{ consumer_loop, NULL, "consumer" },
		{ producer_loop, NULL, "producer" },
	};
	enum { NT = sizeof(specs) / sizeof(specs[0]) };
	double seconds = 3.0;
	pthread_mutexattr_t pa;
	pthread_t th[NT];
	bool wait = false;
	char line[16];

	if (argc == 3 && !strcmp(argv[1], "--uncontended"))
		return uncontended(strtoull(argv[2], NULL, 10));
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--wait"))
			wait = true;
		else
			seconds = atof(argv[i]);
	}
	pthread_mutexattr_init(&pa);
	pthread_mutexattr_setprotocol(&pa, PTHREAD_PRIO_INHERIT);
	pthread_mutex_init(&g_pi_mutex, &pa);

	printf("%d\n", (int)getpid());
	fflush(stdout);
	if (wait && !fgets(line, sizeof(line), stdin))
		return 1;

	for (int i = 0; i < NT; i++) {
		if (pthread_create(&th[i], NULL, specs[i].fn, specs[i].arg)) {
			fprintf(stderr, "pthread_create failed\n");
			return 1;
		}
		pthread_setname_np(th[i], specs[i].name);
	}
	sleep_ns((long)(seconds * 1e9));
	atomic_store(&stop, 1);
	for (int i = 0; i < NT; i++)
		pthread_join(th[i], NULL);

	printf("{\"pid\": %d, \"seconds\": %.3f, \"locks\": [\n", (int)getpid(), seconds);
	print_account("hog_mutex", "mutex", &g_hog_mutex, &acc_mutex, "holder_tid",
		      atomic_load(&hog_tid), false);
	print_account("pi_mutex", "pi-mutex", &g_pi_mutex, &acc_pi, "holder_tid",
		      atomic_load(&pihog_tid), false);
	print_account("rwlock", "rwlock", &g_rwlock, &acc_rw, "holder_tid",
		      atomic_load(&writer_tid), false);
	print_account("condvar", "condvar", &g_cond, &acc_cond, "waiter_tid",
		      atomic_load(&consumer_tid), true);
	printf("]}\n");
	return 0;
}
