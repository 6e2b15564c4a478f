/* What the GPU side of this build is: toolkit and library versions, visible devices.
 * In a build without CUDA the functions report that and succeed. */
#ifndef NPT_GPU_INFO_H
#define NPT_GPU_INFO_H

#include <stddef.h>

/* Writes one line such as "CUDA runtime 13.0, cuDNN 9.19.0 (headers 9.19.0), cuBLAS 130100,
 * 1 GPU visible (NVIDIA H100 80GB HBM3, sm_90)" into buf.  Never fails: a missing driver or
 * device is described, not an error. */
void npt_gpu_describe(char *buf, size_t n);

/* Number of CUDA devices usable now (0 without a driver or a GPU, or without CUDA). */
int npt_gpu_count(void);

#endif
