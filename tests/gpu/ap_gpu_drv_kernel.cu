// SPDX-License-Identifier: MIT
// The kernel ap_gpu_drv loads through the driver API (compiled to PTX by tests/gpu/CMakeLists.txt;
// extern "C": its name is the plain "drv_add_one").
extern "C" __global__ void drv_add_one(int *p, int n)
{
	int i = blockIdx.x * blockDim.x + threadIdx.x;
	if (i < n)
		p[i] += 1;
}
