// SPDX-License-Identifier: MIT
// A small CUDA program for the GPU probes' smoke test: known launches, allocations, copies
// and syncs. Without a GPU every call fails (35/34) but is made.
#include <cstdio>
#include <cstdlib>
#include <cuda_runtime.h>

__global__ void add_one(int *p, int n) { int i = blockIdx.x * blockDim.x + threadIdx.x; if (i < n) p[i]++; }

namespace smoke_ns {
template <typename T> __global__ void scale(T *p, T f, int n) { int i = threadIdx.x; if (i < n) p[i] *= f; }
}

/* the asm after each launch keeps it from being a tail call: run_add stays on the stack */
__attribute__((noinline)) void run_add(int *d, cudaStream_t s)
{
	add_one<<<dim3(3, 5, 7), dim3(32, 2, 1), 0, s>>>(d, 64);
	__asm__ volatile("" ::: "memory");
}
__attribute__((noinline)) void run_scale(float *f)
{
	smoke_ns::scale<float><<<4, 256>>>(f, 2.0f, 64);
	__asm__ volatile("" ::: "memory");
}

int main(int argc, char **argv)
{
	int iters = argc > 1 ? atoi(argv[1]) : 3;
	int *d = nullptr; float *f = nullptr; int h[64] = {0};
	cudaStream_t s = 0;
	int n = 0;
	cudaGetDeviceCount(&n);
	cudaMalloc((void **)&d, sizeof(h));
	cudaMalloc((void **)&f, 4096);
	cudaMemcpy(d, h, sizeof(h), cudaMemcpyHostToDevice);
	cudaStreamCreate(&s);
	for (int i = 0; i < iters; i++) {
		run_add(d, s);
		run_scale(f);
	}
	void *args[] = { &d, &n };
	cudaLaunchKernel((const void *)add_one, dim3(9, 8, 7), dim3(64), args, 128, s);
	cudaMemcpyAsync(h, d, sizeof(h), cudaMemcpyDeviceToHost, s);
	cudaStreamSynchronize(s);
	cudaDeviceSynchronize();
	cudaFree(d);
	cudaFree(f);
	printf("done %d\n", iters);
	return 0;
}
