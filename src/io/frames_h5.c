/* HDF5 frame stacks: a `[T, H, W]` (or, on request, `[H, W, T]`) dataset of uint8 or uint16
 * grey levels (see frames.h). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "io/frames.h"
#include "io/h5util.h"

struct npt_frames {
  char *path; /* file path, for messages */
  hid_t file, dset, space;
  npt_frames_info info;
  npt_frames_axes axes;
  void *scratch; /* [H, W, T] stacks: frames as stored, before the transpose */
  size_t scratch_bytes;
};

static double read_f64_attr(hid_t obj, const char *name) {
  double v = NAN;
  if (H5Aexists(obj, name) > 0) {
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    /* One value only: reading an array attribute into one double would overrun it. */
    if (a >= 0 && npt_h5_attr_npoints(a) == 1) {
      if (H5Aread(a, H5T_NATIVE_DOUBLE, &v) < 0)
        v = NAN;
    }
    if (a >= 0)
      H5Aclose(a);
  }
  return v;
}

void npt_frames_close(npt_frames *fr) {
  if (!fr)
    return;
  if (fr->space >= 0)
    H5Sclose(fr->space);
  if (fr->dset >= 0)
    H5Dclose(fr->dset);
  if (fr->file >= 0)
    H5Fclose(fr->file);
  free(fr->scratch);
  free(fr->path);
  free(fr);
}

int npt_frames_axes_parse(const char *name, npt_frames_axes *out) {
  if (name && !strcmp(name, "THW"))
    *out = NPT_FRAMES_THW;
  else if (name && !strcmp(name, "HWT"))
    *out = NPT_FRAMES_HWT;
  else
    return npt_error_set(NPT_EINVAL, "axis order '%s' is neither THW nor HWT", name ? name : "");
  return 0;
}

int npt_frames_open(npt_frames **out, const char *spec) {
  return npt_frames_open_opts(out, spec, NULL);
}

int npt_frames_open_opts(npt_frames **out, const char *spec, const npt_frames_opts *opts) {
  *out = NULL;
  npt_h5_quiet();
  npt_frames *fr = calloc(1, sizeof *fr);
  NPT_ALLOC_CHECK(fr);
  fr->file = fr->dset = fr->space = -1;
  fr->axes = opts ? opts->axes : NPT_FRAMES_THW;
  const int hwt = fr->axes == NPT_FRAMES_HWT;
  const char *layout = hwt ? "[H, W, T]" : "[T, H, W]";
  fr->path = strdup(spec);
  if (!fr->path) {
    free(fr);
    return npt_error_set(NPT_ENOMEM, "out of memory");
  }
  /* "file.h5:/dataset" names a dataset; a colon that is part of an existing path is kept. */
  const char *dname = opts && opts->dataset && *opts->dataset ? opts->dataset : "/frames";
  char *colon = strrchr(fr->path, ':');
  if (colon && colon[1] == '/' && access(fr->path, F_OK) != 0) {
    *colon = '\0';
    dname = colon + 1;
  }
  int rc = 0;
  const char *path = fr->path;
  if (access(path, R_OK) != 0) {
    rc = npt_error_set(NPT_EIO, "%s: cannot read video: %s", path, strerror(errno));
    goto fail;
  }
  if (H5Fis_hdf5(path) <= 0) {
    rc = npt_error_set(NPT_EFORMAT, "%s: not an HDF5 file (or truncated/corrupt)", path);
    goto fail;
  }
  fr->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (fr->file < 0) {
    rc = npt_h5_fail(path, "cannot open video");
    goto fail;
  }
  if (dname[0] != '/' || H5Lexists(fr->file, dname, H5P_DEFAULT) <= 0 ||
      H5Oexists_by_name(fr->file, dname, H5P_DEFAULT) <= 0) {
    rc = npt_error_set(NPT_EFORMAT, "%s: no dataset %s (frames are expected in a %s dataset)", path,
                       dname, layout);
    goto fail;
  }
  fr->dset = H5Dopen2(fr->file, dname, H5P_DEFAULT);
  if (fr->dset < 0) {
    char what[320];
    snprintf(what, sizeof what, "cannot open %s as the frames dataset", dname);
    rc = npt_h5_fail(path, what);
    goto fail;
  }
  fr->space = H5Dget_space(fr->dset);
  hsize_t dims[3];
  int rank = fr->space < 0 ? -1 : H5Sget_simple_extent_ndims(fr->space);
  if (rank != 3) {
    rc = npt_error_set(NPT_EFORMAT, "%s: %s must have 3 dimensions %s (it has %d)", path, dname,
                       layout, rank);
    goto fail;
  }
  H5Sget_simple_extent_dims(fr->space, dims, NULL);
  if (hwt) { /* to [T, H, W] order from here on */
    hsize_t t = dims[2];
    dims[2] = dims[1], dims[1] = dims[0], dims[0] = t;
  }
  hid_t t = H5Dget_type(fr->dset);
  int ok_type = H5Tget_class(t) == H5T_INTEGER && H5Tget_sign(t) == H5T_SGN_NONE &&
                (H5Tget_size(t) == 1 || H5Tget_size(t) == 2);
  size_t tsize = H5Tget_size(t);
  H5Tclose(t);
  if (!ok_type) {
    rc = npt_error_set(NPT_EFORMAT, "%s: %s must hold uint8 or uint16 grey levels", path, dname);
    goto fail;
  }
  if (dims[1] == 0 || dims[2] == 0 || dims[1] > 65536 || dims[2] > 65536) {
    rc = npt_error_set(NPT_EFORMAT, "%s: %s has unusable frame size %llux%llu", path, dname,
                       (unsigned long long)dims[2], (unsigned long long)dims[1]);
    goto fail;
  }
  fr->info.n_frames = (int64_t)dims[0];
  fr->info.height = (int)dims[1];
  fr->info.width = (int)dims[2];
  fr->info.bit_depth = (int)tsize * 8;
  fr->info.pixel_size_nm = read_f64_attr(fr->dset, "pixel_size_nm");
  fr->info.frame_rate_hz = read_f64_attr(fr->dset, "frame_rate_hz");
  fr->info.stored_frames = fr->info.n_frames;
  const int64_t replay = opts ? opts->replay_frames : 0;
  if (replay < 0 || (replay > 0 && fr->info.stored_frames == 0)) {
    rc = npt_error_set(NPT_EINVAL, "%s: cannot replay %lld stored frames as %lld", path,
                       (long long)fr->info.stored_frames, (long long)replay);
    goto fail;
  }
  if (replay > 0)
    fr->info.n_frames = replay;
  *out = fr;
  return 0;
fail:
  npt_frames_close(fr);
  return rc;
}

/* [pixel][count] as stored in an [H, W, T] stack -> [count][pixel]. */
static void transpose_hwt(const void *src, int count, size_t pixels, size_t esize, void *dst) {
  if (esize == 1) {
    const uint8_t *s = src;
    uint8_t *d = dst;
    for (size_t p = 0; p < pixels; p++)
      for (int t = 0; t < count; t++)
        d[(size_t)t * pixels + p] = s[p * (size_t)count + (size_t)t];
  } else {
    const uint16_t *s = src;
    uint16_t *d = dst;
    for (size_t p = 0; p < pixels; p++)
      for (int t = 0; t < count; t++)
        d[(size_t)t * pixels + p] = s[p * (size_t)count + (size_t)t];
  }
}

const npt_frames_info *npt_frames_get_info(const npt_frames *fr) { return &fr->info; }

/* Stored frames first .. first + count - 1 (within the file's frames) into buf. */
static int read_stored(npt_frames *fr, int64_t first, int count, void *buf) {
  const size_t esize = (size_t)(fr->info.bit_depth / 8);
  const size_t fsize = (size_t)fr->info.height * (size_t)fr->info.width * esize;
  hsize_t start[3] = {(hsize_t)first, 0, 0};
  hsize_t n[3] = {(hsize_t)count, (hsize_t)fr->info.height, (hsize_t)fr->info.width};
  void *dst = buf;
  if (fr->axes == NPT_FRAMES_HWT) {
    start[0] = 0, start[2] = (hsize_t)first;
    n[0] = (hsize_t)fr->info.height, n[1] = (hsize_t)fr->info.width, n[2] = (hsize_t)count;
    if (fr->scratch_bytes < fsize * (size_t)count) {
      free(fr->scratch);
      fr->scratch_bytes = 0;
      fr->scratch = malloc(fsize * (size_t)count);
      if (!fr->scratch)
        return npt_error_set(NPT_ENOMEM, "%s: out of memory for %d frames", fr->path, count);
      fr->scratch_bytes = fsize * (size_t)count;
    }
    dst = fr->scratch;
  }
  hid_t mem = H5Screate_simple(3, n, NULL);
  H5Sselect_hyperslab(fr->space, H5S_SELECT_SET, start, NULL, n, NULL);
  hid_t mt = fr->info.bit_depth == 8 ? H5T_NATIVE_UINT8 : H5T_NATIVE_UINT16;
  herr_t st = H5Dread(fr->dset, mt, mem, fr->space, H5P_DEFAULT, dst);
  H5Sclose(mem);
  if (st >= 0 && fr->axes == NPT_FRAMES_HWT)
    transpose_hwt(fr->scratch, count, (size_t)fr->info.height * (size_t)fr->info.width, esize, buf);
  if (st >= 0)
    return 0;
  /* Find the first bad frame, so the message can name it. */
  int64_t bad = first;
  if (count > 1) {
    for (int i = 0; i < count; i++)
      if (read_stored(fr, first + i, 1, (char *)buf + fsize * (size_t)i) < 0) {
        bad = first + i;
        break;
      }
  }
  char what[96];
  snprintf(what, sizeof what, "frame %lld: cannot read", (long long)bad + 1);
  return npt_h5_fail(fr->path, what);
}

int npt_frames_read(npt_frames *fr, int64_t first, int count, void *buf) {
  if (first < 0 || count < 0 || first + count > fr->info.n_frames)
    return npt_error_set(NPT_EINVAL, "%s: frames %lld..%lld requested, the video has %lld",
                         fr->path, (long long)first + 1, (long long)(first + count),
                         (long long)fr->info.n_frames);
  const int64_t stored = fr->info.stored_frames;
  const size_t fsize =
      (size_t)fr->info.height * (size_t)fr->info.width * (size_t)(fr->info.bit_depth / 8);
  /* A replayed video: each run of consecutive stored frames is one read, so every frame goes
   * through HDF5 as a stored video's would, and reading is timed as it would be. */
  while (count > 0) {
    int64_t at = first % stored;
    int n = stored - at < count ? (int)(stored - at) : count;
    NPT_TRY(read_stored(fr, at, n, buf));
    first += n, count -= n;
    buf = (char *)buf + fsize * (size_t)n;
  }
  return 0;
}

int npt_frames_root_attr(npt_frames *fr, const char *name, char **out) {
  int rc = npt_h5_read_str_attr(fr->file, name, out);
  return rc < 0 ? rc : 0;
}
