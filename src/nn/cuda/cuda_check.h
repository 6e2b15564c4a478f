/* Check macros for CUDA, cuDNN and cuBLAS calls, built on the generic npt__check_fail: they
 * record the failing statement, file:line and the library's text, and return NPT_ECUDA from the
 * calling function. */
#ifndef NPT_CUDA_CHECK_H
#define NPT_CUDA_CHECK_H

#include <cuda_runtime.h>

#include "common/error.h"

#define NPT_CUDA_CHECK(stmt)                                                                       \
  do {                                                                                             \
    cudaError_t npt__e = (stmt);                                                                   \
    if (npt__e != cudaSuccess)                                                                     \
      return npt__check_fail(NPT_ECUDA, __FILE__, __LINE__, #stmt, cudaGetErrorString(npt__e));   \
  } while (0)

/* After a kernel launch: the launch itself, not the kernel's completion. */
#define NPT_CUDA_CHECK_LAUNCH(what) NPT_CUDA_CHECK((what, cudaGetLastError()))

#endif
