// SPDX-License-Identifier: MIT
/*
 * JIT fixture: copies two tiny x86-64 functions into anonymous executable memory, runs them,
 * and describes them in /tmp/perf-<pid>.map as a JIT runtime would. Prints "jit_a", "jit_b"
 * (their addresses) and "ready"; then serves stdin until EOF: "more" compiles a third function
 * ("jit_c"), appending its line to the map; "late" compiles a fourth ("jit_d") without listing
 * it yet, as a runtime with a buffered map does, and "publish" then appends its line.
 */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* lea eax, [rdi + 1]; ret -- padded with int3 */
static const unsigned char code[] = { 0x8d, 0x47, 0x01, 0xc3 };

static unsigned char *region;
static FILE *map;

static void *compile(size_t off)
{
	int (*fn)(int);

	memcpy(region + off, code, sizeof(code));
	__builtin___clear_cache((char *)region + off, (char *)region + off + sizeof(code));
	fn = (int (*)(int))(void *)(region + off);
	return fn(41) == 42 ? region + off : NULL;
}

static void list(void *at, const char *name)
{
	fprintf(map, "%lx %zx %s\n", (unsigned long)at, sizeof(code), name);
	fflush(map);
}

static void *jit(size_t off, const char *name)
{
	void *at = compile(off);

	if (at)
		list(at, name);
	return at;
}

int main(void)
{
	char path[64], line[64];

	alarm(60);
	region = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS,
		      -1, 0);
	if (region == MAP_FAILED)
		return 1;
	memset(region, 0xcc, 4096);
	snprintf(path, sizeof(path), "/tmp/perf-%d.map", (int)getpid());
	map = fopen(path, "w");
	if (!map)
		return 1;
	printf("jit_a %p\n", jit(0, "LazyCompile:*jitA /app/a.js:1"));
	printf("jit_b %p\nready\n", jit(64, "jit_b_function"));
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin)) {
		if (!strncmp(line, "more", 4)) {
			printf("jit_c %p\n", jit(128, "jit_c_function"));
			fflush(stdout);
		} else if (!strncmp(line, "late", 4)) {
			printf("jit_d %p\n", compile(192));
			fflush(stdout);
		} else if (!strncmp(line, "publish", 7)) {
			list(region + 192, "jit_d_function");
			printf("published 1\n");
			fflush(stdout);
		}
	}
	fclose(map);
	unlink(path);
	return 0;
}
