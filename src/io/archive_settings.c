/* Settings of the run archive (section `archive`, see archive.h). */
#include <string.h>

#include "io/archive.h"

#define NONE NULL, 0

const npt_setting_def npt_archive_settings[] = {
    {"archive.embeddings", NPT_SET_ENUM, 0, 0, "\"track\"", "", "none|track|all", 0,
     "Appearance embeddings kept in the archive: track keeps each track's mean (L2-normalised, "
     "float32, /videos/NAME/tracks/mean_embedding); all adds every detection's as float16 "
     "(/videos/NAME/detections/embedding, N x D, row-aligned), which can make the archive "
     "several times larger; none keeps neither."},
    {"archive.compression", NPT_SET_INT, 0, 9, "4", "", NONE,
     "gzip level of every dataset (after the shuffle filter); 0 stores the data uncompressed. "
     "Only gzip and shuffle are used, so any HDF5 reader (MATLAB, h5py, R, Julia) opens the "
     "archive without plugins."},
    {NULL, 0, 0, 0, NULL, NULL, NULL, 0, NULL},
};

int npt_archive_options_get(const npt_config *cfg, npt_archive_options *o) {
  const char *e = npt_config_str(cfg, "archive.embeddings");
  o->embeddings = !strcmp(e, "none")  ? NPT_ARCHIVE_EMBED_NONE
                  : !strcmp(e, "all") ? NPT_ARCHIVE_EMBED_ALL
                                      : NPT_ARCHIVE_EMBED_TRACK;
  o->compression = (int)npt_config_int(cfg, "archive.compression");
  o->force = 0;
  return 0;
}
