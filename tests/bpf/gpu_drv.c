// SPDX-License-Identifier: MIT
/* A driver-API program for the GPU probes' test: run against the toolkit's stub libcuda.so
 * (symlinked as libcuda.so.1), every call returns 34 (CUDA_ERROR_STUB_LIBRARY) but is made. */
#include <stdio.h>
#include <stdlib.h>

#include <cuda.h>

__attribute__((noinline)) static CUresult drv_launch(CUfunction f, CUstream s)
{
	return cuLaunchKernel(f, 3, 5, 7, 32, 2, 1, 256, s, NULL, NULL);
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 1;
	CUdeviceptr p = 0;
	CUresult r = cuInit(0);

	for (int i = 0; i < n; i++)
		r = drv_launch((CUfunction)0x1234, (CUstream)0x99);
	cuMemAlloc(&p, 4096);
	printf("done %d %d\n", n, (int)r);
	return 0;
}
