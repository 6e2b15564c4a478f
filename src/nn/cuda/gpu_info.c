/* GPU side of the build description (compiled only with CUDA). */
#include "nn/gpu_info.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <stdio.h>

int npt_gpu_count(void) {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError(); /* clear the sticky "no device" status */
    return 0;
  }
  return n;
}

void npt_gpu_describe(char *buf, size_t n) {
  int rt = 0;
  cudaRuntimeGetVersion(&rt);
  size_t cudnn = cudnnGetVersion();
  int cublas = 0;
  cublasGetProperty(MAJOR_VERSION, &cublas);
  int cublas_minor = 0;
  cublasGetProperty(MINOR_VERSION, &cublas_minor);
  int used = snprintf(buf, n,
                      "CUDA runtime %d.%d, cuDNN %zu.%zu.%zu (headers %d.%d.%d), cuBLAS %d.%d, ",
                      rt / 1000, (rt % 1000) / 10, cudnn / 10000, (cudnn % 10000) / 100, cudnn % 100,
                      CUDNN_MAJOR, CUDNN_MINOR, CUDNN_PATCHLEVEL, cublas, cublas_minor);
  if (used < 0 || (size_t)used >= n)
    return;
  int count = npt_gpu_count();
  if (count == 0) {
    snprintf(buf + used, n - (size_t)used, "no GPU visible");
    return;
  }
  struct cudaDeviceProp prop;
  if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess)
    snprintf(buf + used, n - (size_t)used, "%d GPU%s visible (%s, sm_%d%d)", count,
             count > 1 ? "s" : "", prop.name, prop.major, prop.minor);
  else
    snprintf(buf + used, n - (size_t)used, "%d GPU%s visible", count, count > 1 ? "s" : "");
}
