// SPDX-License-Identifier: MIT
/*
 * Fixture of test_agent_gpu_probes: an executable shaped like nvcc's default static build,
 * without nvcc. Functions named like cudart's are LOCAL symbols (static), as a static cudart
 * keeps them; a kernel host stub of a template in a namespace has its local-linkage name;
 * the device code section exists. Built as is, and stripped (not probeable).
 */
#include <stdio.h>

__attribute__((used, section(".nv_fatbin"))) static const unsigned int fatbin[4] = {
	0xBA55ED50u, 1, 2, 3
};

#define FN(name)                                                                             \
	__attribute__((noinline, used)) static int name(void *a, unsigned long b)           \
	{                                                                                    \
		__asm__ volatile("" ::: "memory");                                           \
		return (int)(b + 35) + (a != 0);                                             \
	}

FN(cudaMalloc)
FN(cudaFree)
FN(cudaLaunchKernel)
FN(__cudaLaunchKernel)
FN(__cudaRegisterFunction)
FN(cudaMemcpy)
FN(cudaStreamSynchronize)

/* CUDA 13's shape: a launch entry point whose whole body is a tail jump into another one */
__asm__(".text\n"
	".type cudaLaunchKernel_ptsz, @function\n"
	"cudaLaunchKernel_ptsz:\n"
	"	xor %eax, %eax\n"
	"	ret\n"
	".size cudaLaunchKernel_ptsz, .-cudaLaunchKernel_ptsz\n"
	".type __cudaLaunchKernel_ptsz, @function\n"
	"__cudaLaunchKernel_ptsz:\n"
	"	push %rbp\n"
	"	mov %rsp, %rbp\n"
	"	pop %rbp\n"
	"	{disp32} jmp cudaLaunchKernel_ptsz\n"
	".size __cudaLaunchKernel_ptsz, .-__cudaLaunchKernel_ptsz\n");

/* the host stub of aperture_ns::scale<float>(float*, float, int), as nvcc names it locally */
__attribute__((noinline, used)) void _ZN11aperture_nsL5scaleIfEEvPT_S1_i(void)
	__asm__("_ZN11aperture_nsL5scaleIfEEvPT_S1_i");
void _ZN11aperture_nsL5scaleIfEEvPT_S1_i(void)
{
	__asm__ volatile("" ::: "memory");
}

int main(int argc, char **argv)
{
	(void)argv;
	printf("%d\n", cudaMalloc(0, (unsigned long)argc) + cudaFree(0, 0) +
			       cudaLaunchKernel(0, 0) + __cudaLaunchKernel(0, 0) +
			       __cudaRegisterFunction(0, 0) + cudaMemcpy(0, 0) +
			       cudaStreamSynchronize(0, 0) + (int)fatbin[0]);
	return 0;
}
