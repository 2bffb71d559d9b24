// SPDX-License-Identifier: MIT
/*
 * C++ workload built -O2 -fomit-frame-pointer: a virtual call, a template and a
 * std::function on the way to a frameless leaf, on the main thread and on a std::thread
 * (whose stack starts in clone3 -> libstdc++'s thread routine):
 *   cpp_outer -> Worker::run (virtual) -> templ<Worker> -> std::function's _M_invoke -> cpp_leaf
 * Usage: nofp_cpp SECONDS   prints its pid, runs both threads for SECONDS.
 */
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <thread>
#include <unistd.h>

extern "C" {
volatile unsigned long cpp_sink;

__attribute__((noinline, noclone)) unsigned long cpp_leaf(unsigned long n)
{
	unsigned long x = cpp_sink;

	for (unsigned long i = 0; i < n; i++)
		x = x * 6364136223846793005UL + 1442695040888963407UL;
	return x;
}
}

template <typename T>
__attribute__((noinline, noclone)) unsigned long templ(const std::function<unsigned long(unsigned long)> &f,
					       unsigned long n)
{
	unsigned long r = f(n);

	cpp_sink += r;
	return r;
}

struct Base {
	virtual ~Base() = default;
	virtual unsigned long run(unsigned long n) = 0;
};

struct Worker : Base {
	__attribute__((noinline, noclone)) unsigned long run(unsigned long n) override
	{
		std::function<unsigned long(unsigned long)> f = [](unsigned long m) {
			unsigned long r = cpp_leaf(m);

			cpp_sink += 1; /* not a tail call: keeps _M_invoke on the stack */
			return r;
		};
		unsigned long r = templ<Worker>(f, n);

		cpp_sink ^= r;
		return r;
	}
};

static Base *volatile the_worker; /* volatile: no devirtualization */

extern "C" __attribute__((noinline, noclone)) unsigned long cpp_outer(unsigned long n)
{
	unsigned long r = the_worker->run(n);

	cpp_sink += r;
	return r;
}

static double now()
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

extern "C" __attribute__((noinline, noclone)) void cpp_thread_main(double end)
{
	while (now() < end)
		cpp_outer(2000000);
	cpp_sink++;
}

int main(int argc, char **argv)
{
	double end;
	Worker w;

	if (argc < 2) {
		std::fprintf(stderr, "usage: %s SECONDS\n", argv[0]);
		return 2;
	}
	the_worker = &w;
	std::printf("%d\n", (int)getpid());
	std::fflush(stdout);
	end = now() + std::atof(argv[1]);
	std::thread t([end] { cpp_thread_main(end); });
	while (now() < end)
		cpp_outer(2000000);
	t.join();
	return 0;
}
