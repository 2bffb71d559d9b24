// SPDX-License-Identifier: MIT
/* Fixture of test_agent_gpu_probes: a shared library with device code that imports a shared
 * cudart (undefined cudaMalloc): covered by probing that library, not reported. */
__attribute__((used, section(".nv_fatbin"))) static const unsigned int fatbin[4] = {
	0xBA55ED50u, 1, 2, 3
};

extern int cudaMalloc(void **p, unsigned long n);

int uses_cudart(void)
{
	void *p;

	return cudaMalloc(&p, 16) + (int)fatbin[1];
}
