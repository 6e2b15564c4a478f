/* Which model file `detect.model` means.  A non-empty setting is a path, taken as given (relative
 * to the working directory).  The empty setting, the default, means "the shipped model", looked
 * for in this order:
 *
 *   1. the file named by the environment variable NPTRACK_MODEL, when it is set and not empty;
 *   2. for an installed program (PREFIX/bin/nptrack): PREFIX/share/nptrack/models/nptrack.h5;
 *   3. for the program in its build tree: the source tree's models/nptrack.h5.
 *
 * Places 2 and 3 exclude each other: which applies depends on where the running binary lives
 * (/proc/self/exe), so an installed program never reaches back into the tree it was built from
 * (which may have moved on, or be gone), and the build tree's program never picks up an older
 * installed copy. */
#ifndef NPT_MODEL_LOCATE_H
#define NPT_MODEL_LOCATE_H

#include <stddef.h>

/* Longest model path handled, terminating NUL included. */
enum { NPT_MODEL_PATH_MAX = 4096 };

typedef enum npt_model_source {
  NPT_MODEL_FROM_SETTING,   /* detect.model, as given */
  NPT_MODEL_FROM_ENV,       /* $NPTRACK_MODEL */
  NPT_MODEL_FROM_INSTALL,   /* PREFIX/share/nptrack/models/nptrack.h5 */
  NPT_MODEL_FROM_BUILDTREE, /* the source tree's models/nptrack.h5 */
} npt_model_source;

/* Resolves the setting `detect_model` into `out` (n bytes) and says where it came from
 * (`source` may be NULL).  A non-empty setting is copied unchecked: the model loader names the
 * file if it is missing.  Returns 0, or
 *   NPT_EIO     NPTRACK_MODEL names a file that does not exist;
 *   NPT_ECONFIG the setting is empty and no shipped model was found: the message lists every
 *               place looked at and how to choose a model;
 *   NPT_EINVAL  the path does not fit in n bytes.
 * Reads the environment: not to be called while another thread changes it. */
int npt_model_locate(const char *detect_model, char *out, size_t n, npt_model_source *source);

/* A few words for where a model came from: "detect.model", "NPTRACK_MODEL", "installed",
 * "build tree". */
const char *npt_model_source_name(npt_model_source source);

/* Where the shipped model is looked for, in words, for messages when npt_model_locate("") fails:
 * "NPTRACK_MODEL is not set; no installed model at /opt/nptrack/share/nptrack/models/nptrack.h5"
 * (or that NPTRACK_MODEL names no file).  Always NUL-terminated. */
void npt_model_search_text(char *buf, size_t n);

#endif
