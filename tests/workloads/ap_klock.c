// SPDX-License-Identifier: MIT
/*
 * Kernel lock contention for the lock-mode tests.
 *
 * Usage: ap_klock [SECONDS] [--wait]
 * Prints its pid, then (with --wait) waits for a line on stdin and runs for SECONDS
 * (default 3):
 *  - "mapper" threads mmap, touch and munmap memory of the one shared mm: they contend on the
 *    process's mmap_lock (an rwsem);
 *  - "spawner" threads create and join short-lived threads: copy_process/exit take the global
 *    tasklist_lock (an rwlock) and other static kernel locks.
 * Prints {"mmap_ops": N, "threads": N} at the end.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MAPPERS 4
#define SPAWNERS 4
#define MAP_LEN (256 * 1024)

static atomic_int stop;
static atomic_ulong mmap_ops, threads_made;

__attribute__((noinline)) static void *mapper_loop(void *arg)
{
	long page = sysconf(_SC_PAGESIZE);

	(void)arg;
	while (!atomic_load(&stop)) {
		char *p = mmap(NULL, MAP_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			       -1, 0);

		if (p == MAP_FAILED)
			continue;
		for (long off = 0; off < MAP_LEN; off += page)
			p[off] = 1;
		mprotect(p, MAP_LEN / 2, PROT_READ);
		munmap(p, MAP_LEN);
		atomic_fetch_add(&mmap_ops, 1);
	}
	return NULL;
}

static void *short_thread(void *arg)
{
	return arg;
}

__attribute__((noinline)) static void *spawner_loop(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		pthread_t t;

		if (pthread_create(&t, NULL, short_thread, NULL) == 0) {
			pthread_join(t, NULL);
			atomic_fetch_add(&threads_made, 1);
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t th[MAPPERS + SPAWNERS];
	struct timespec ts;
	double seconds = 3.0;
	int wait = 0;
	char line[16];

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--wait"))
			wait = 1;
		else
			seconds = atof(argv[i]);
	}
	printf("%d\n", (int)getpid());
	fflush(stdout);
	if (wait && !fgets(line, sizeof(line), stdin))
		return 1;
	for (int i = 0; i < MAPPERS + SPAWNERS; i++) {
		if (pthread_create(&th[i], NULL, i < MAPPERS ? mapper_loop : spawner_loop, NULL)) {
			fprintf(stderr, "pthread_create failed\n");
			return 1;
		}
		pthread_setname_np(th[i], i < MAPPERS ? "mapper" : "spawner");
	}
	ts.tv_sec = (time_t)seconds;
	ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
	atomic_store(&stop, 1);
	for (int i = 0; i < MAPPERS + SPAWNERS; i++)
		pthread_join(th[i], NULL);
	printf("{\"mmap_ops\": %lu, \"threads\": %lu}\n", atomic_load(&mmap_ops),
	       atomic_load(&threads_made));
	return 0;
}
