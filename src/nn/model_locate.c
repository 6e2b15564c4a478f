/* Finding the model file that `detect.model` means (model_locate.h).
 *
 * The build defines NPT_BUILD_BIN_DIR (the folder the build tree's nptrack is linked into) and
 * NPT_SOURCE_MODEL (the source tree's models/nptrack.h5) for this file only; a build without
 * them knows only NPTRACK_MODEL and the installed place. */
#include "nn/model_locate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"

#ifndef NPT_BUILD_BIN_DIR
#define NPT_BUILD_BIN_DIR ""
#endif
#ifndef NPT_SOURCE_MODEL
#define NPT_SOURCE_MODEL ""
#endif

/* The shipped model's place below an installation prefix (CMakeLists.txt installs it there). */
static const char INSTALLED_MODEL[] = "share/nptrack/models/nptrack.h5";

/* Where a binary looks for its shipped model. */
typedef enum place_kind { PLACE_UNKNOWN, PLACE_INSTALL, PLACE_BUILDTREE } place_kind;

static int is_file(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int same_dir(const char *a, const char *b) {
  struct stat sa, sb;
  return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* The shipped model's path for the running binary, into `place` (n bytes).  The kernel's
 * /proc/self/exe is the binary's real path (symbolic links resolved, no ".."), so the prefix
 * is its folder's folder, taken textually.  PLACE_UNKNOWN when the binary's path cannot be
 * read or the result does not fit. */
static place_kind shipped_place(char *place, size_t n) {
  char exe[NPT_MODEL_PATH_MAX];
  ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (len <= 0 || (size_t)len >= sizeof exe - 1)
    return PLACE_UNKNOWN;
  exe[len] = '\0';
  char *slash = strrchr(exe, '/');
  if (!slash)
    return PLACE_UNKNOWN;
  *slash = '\0'; /* exe is now the binary's folder */
  if (NPT_BUILD_BIN_DIR[0] && NPT_SOURCE_MODEL[0] && same_dir(exe, NPT_BUILD_BIN_DIR)) {
    int w = snprintf(place, n, "%s", NPT_SOURCE_MODEL);
    return w >= 0 && (size_t)w < n ? PLACE_BUILDTREE : PLACE_UNKNOWN;
  }
  slash = strrchr(exe, '/');
  if (slash)
    *slash = '\0'; /* the prefix; "" for a binary in /bin, giving /share/... */
  int w = snprintf(place, n, "%s/%s", exe, INSTALLED_MODEL);
  return w >= 0 && (size_t)w < n ? PLACE_INSTALL : PLACE_UNKNOWN;
}

/* The search in words; when NPTRACK_MODEL is set, only it is looked at. */
static void describe(char *buf, size_t n, place_kind kind, const char *place) {
  const char *env = getenv("NPTRACK_MODEL");
  if (env && *env)
    snprintf(buf, n, "NPTRACK_MODEL names %s, which is not a file", env);
  else if (kind == PLACE_UNKNOWN)
    snprintf(buf, n,
             "NPTRACK_MODEL is not set; the program's own path (/proc/self/exe) is unknown");
  else
    snprintf(buf, n, "NPTRACK_MODEL is not set; no %s at %s",
             kind == PLACE_BUILDTREE ? "model in the source tree" : "installed model", place);
}

void npt_model_search_text(char *buf, size_t n) {
  char place[NPT_MODEL_PATH_MAX];
  place_kind kind = shipped_place(place, sizeof place);
  describe(buf, n, kind, place);
}

const char *npt_model_source_name(npt_model_source source) {
  switch (source) {
  case NPT_MODEL_FROM_SETTING:
    return "detect.model";
  case NPT_MODEL_FROM_ENV:
    return "NPTRACK_MODEL";
  case NPT_MODEL_FROM_INSTALL:
    return "installed";
  case NPT_MODEL_FROM_BUILDTREE:
    return "build tree";
  }
  return "?";
}

int npt_model_locate(const char *detect_model, char *out, size_t n, npt_model_source *source) {
  const char *env = getenv("NPTRACK_MODEL");
  char place[NPT_MODEL_PATH_MAX];
  const char *path;
  npt_model_source src;
  if (detect_model && *detect_model) {
    path = detect_model, src = NPT_MODEL_FROM_SETTING;
  } else if (env && *env) {
    /* Checked here, not left to the loader, so that the message says where the name came
     * from: nothing on the command line mentions it. */
    if (!is_file(env))
      return npt_error_set(NPT_EIO,
                           "%s: no such model file (named by NPTRACK_MODEL; unset it for the "
                           "shipped model, or give -s detect.model=PATH)",
                           env);
    path = env, src = NPT_MODEL_FROM_ENV;
  } else {
    place_kind kind = shipped_place(place, sizeof place);
    if (kind == PLACE_UNKNOWN || !is_file(place)) {
      char tried[NPT_MODEL_PATH_MAX + 128];
      describe(tried, sizeof tried, kind, place);
      return npt_error_set(NPT_ECONFIG,
                           "no model file: detect.model is empty (the shipped model) and none "
                           "was found (%s); choose one with -s detect.model=PATH or "
                           "NPTRACK_MODEL=PATH",
                           tried);
    }
    path = place, src = kind == PLACE_BUILDTREE ? NPT_MODEL_FROM_BUILDTREE : NPT_MODEL_FROM_INSTALL;
  }
  size_t len = strlen(path);
  if (len >= n)
    return npt_error_set(NPT_EINVAL, "model path of %zu bytes is too long (at most %zu): %.60s...",
                         len, n - 1, path);
  memcpy(out, path, len + 1);
  if (source)
    *source = src;
  return 0;
}
