/* nptrack --version: version, commit, the features of this build and the default model. */
#include <hdf5.h>
#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "common/error.h"
#include "nn/gpu_info.h"
#include "nn/model_locate.h"
#include "npt_buildinfo.h"

void npt_cli_print_version(FILE *f) {
  fprintf(f, "nptrack %s (commit %s)\n", NPT_VERSION, NPT_GIT_COMMIT);
#ifdef NPT_HAVE_CUDA
  fprintf(f, "  CUDA:  yes, sm_90\n");
#else
  fprintf(f, "  CUDA:  no\n");
#endif
  char gpu[512];
  npt_gpu_describe(gpu, sizeof gpu);
  fprintf(f, "  GPU:   %s\n", gpu);
  /* MPI_Get_library_version may be called before MPI_Init (MPI-3). */
  char mpi[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  MPI_Get_library_version(mpi, &len);
  char *nl = strchr(mpi, '\n');
  if (nl)
    *nl = '\0';
  char *comma = strchr(mpi, ',');
  if (comma)
    *comma = '\0';
  fprintf(f, "  MPI:   %s (MPI %d.%d)\n", mpi, MPI_VERSION, MPI_SUBVERSION);
  unsigned maj, min, rel;
  H5get_libversion(&maj, &min, &rel);
#ifdef H5_HAVE_PARALLEL
  const char *par = "parallel";
#else
  const char *par = "serial";
#endif
  fprintf(f, "  HDF5:  %u.%u.%u, %s\n", maj, min, rel, par);
  /* The model `nptrack detect` uses when detect.model is not given. */
  char model[NPT_MODEL_PATH_MAX];
  npt_model_source src;
  if (npt_model_locate("", model, sizeof model, &src) == 0) {
    fprintf(f, "  Model: %s (%s)\n", model, npt_model_source_name(src));
  } else {
    char tried[NPT_MODEL_PATH_MAX + 128];
    npt_model_search_text(tried, sizeof tried);
    fprintf(f, "  Model: none found (%s)\n", tried);
  }
  npt_error_clear();
}
