/* GPU side of the build description, for builds without CUDA. */
#include "nn/gpu_info.h"

#include <stdio.h>

#ifndef NPT_HAVE_CUDA
int npt_gpu_count(void) { return 0; }

void npt_gpu_describe(char *buf, size_t n) { snprintf(buf, n, "not built (no CUDA toolkit)"); }
#endif
