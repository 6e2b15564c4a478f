/* Host launchers of nptrack's CUDA kernels, callable from C.  Each checks its shape
 * preconditions and the launch, and returns 0 or a negative NPT_E* code with a message. */
#ifndef NPT_KERNELS_H
#define NPT_KERNELS_H

#include "nn/preprocess.h"

#ifdef __cplusplus
extern "C" {
#endif

/* GPU counterpart of npt_preprocess_cpu, writing fp16 (IEEE half, as uint16_t bits) planes:
 * d_in and d_out are device pointers; `stream` is a cudaStream_t (NULL: the default stream).
 * Asynchronous: results are ready when the stream is. */
int npt_preprocess_cuda(const void *d_in, int n, int h, int w, int hp, int wp,
                        const npt_norm *norm, uint16_t *d_out, void *stream);

#ifdef __cplusplus
}
#endif

#endif
