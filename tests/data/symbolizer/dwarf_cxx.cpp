// SPDX-License-Identifier: MIT
/*
 * C++ DWARF fixture (-O2 -g): a member function with an always-inline member inlined into it,
 * so the chain is ns::Widget::step(int) in ns::Widget::spin(int). Prints the return address
 * the leaf call saw ("cxx_ret") and "ready", then waits for EOF on stdin.
 */
#include <cstdio>
#include <unistd.h>

extern "C" {
volatile int ap_cxx_sink;
void *ap_cxx_ret;
}

__attribute__((noinline, noclone)) void ap_cxx_leaf(int x)
{
	ap_cxx_ret = __builtin_return_address(0);
	ap_cxx_sink = x;
}

namespace ns {
struct Widget {
	int k;
	int spin(int x);
	inline __attribute__((always_inline)) int step(int x)
	{
		ap_cxx_leaf(x + k); /* @line cxx_step_call */
		return x * k + ap_cxx_sink;
	}
};

__attribute__((noinline, noclone)) int Widget::spin(int x)
{
	int r = step(x * 2); /* @line cxx_spin_call */
	return r + ap_cxx_sink;
}
} // namespace ns

int main(int argc, char **)
{
	ns::Widget w{ argc + 2 };
	char buf[64];

	alarm(60);
	ap_cxx_sink = w.spin(argc);
	std::printf("cxx_ret %p\nready\n", ap_cxx_ret);
	std::fflush(stdout);
	while (read(0, buf, sizeof(buf)) > 0)
		;
	return ap_cxx_sink == 42;
}
