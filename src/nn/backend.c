/* Backends by name: the engine (and the config) name a backend; this build has those listed. */
#include <string.h>

#include "nn/backend.h"

#ifdef NPT_HAVE_CUDNN_BACKEND
extern const npt_backend_i npt_backend_cudnn;
#endif

const npt_backend_i *npt_backend_find(const char *name) {
  static const npt_backend_i *const all[] = {
      &npt_backend_cpu,
#ifdef NPT_HAVE_CUDNN_BACKEND
      &npt_backend_cudnn,
#endif
  };
  if (!name)
    return NULL;
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
    if (strcmp(all[i]->name, name) == 0)
      return all[i];
  return NULL;
}
