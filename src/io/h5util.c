#include "io/h5util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"

void npt_h5_quiet(void) {
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

static herr_t innermost(unsigned n, const H5E_error2_t *e, void *data) {
  (void)n;
  char *buf = data;
  /* The walk goes from the innermost frame outwards; keep the first (most specific) text. */
  if (buf[0] == '\0' && e->desc)
    snprintf(buf, 256, "%s", e->desc);
  return 0;
}

const char *npt_h5_last_error(char *buf, size_t n) {
  char tmp[256] = "";
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost, tmp);
  /* A failed write reads "file write failed: time = ...\n, filename = ..., errno = 28, error
   * message = 'No space left on device', buf = ...": keep "file write failed: No space left on
   * device", on one line. */
  const char *msg = strstr(tmp, "error message = '");
  const char *colon = strchr(tmp, ':');
  if (msg && colon && colon < msg) {
    msg += strlen("error message = '");
    const char *end = strchr(msg, '\'');
    snprintf(buf, n, "%.*s: %.*s", (int)(colon - tmp), tmp, (int)(end ? end - msg : 120), msg);
  } else {
    snprintf(buf, n, "%s", tmp);
  }
  for (char *c = buf; *c; c++)
    if (*c == '\n' || *c == '\r')
      *c = ' ';
  return buf;
}

int npt_h5_fail(const char *file, const char *what) {
  char why[256];
  npt_h5_last_error(why, sizeof why);
  if (why[0])
    return npt_error_set(NPT_EHDF5, "%s: %s (HDF5: %s)", file, what, why);
  return npt_error_set(NPT_EHDF5, "%s: %s", file, what);
}

hssize_t npt_h5_attr_npoints(hid_t attr) {
  hid_t sp = H5Aget_space(attr);
  if (sp < 0)
    return -1;
  hssize_t n = H5Sget_simple_extent_npoints(sp);
  H5Sclose(sp);
  return n;
}

int npt_h5_read_str_attr(hid_t obj, const char *name, char **out) {
  *out = NULL;
  htri_t exists = H5Aexists(obj, name);
  if (exists <= 0)
    return exists == 0 ? 1 : npt_error_set(NPT_EHDF5, "cannot query attribute %s", name);
  int rc = 0;
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  hid_t t = a < 0 ? -1 : H5Aget_type(a);
  if (a < 0 || t < 0 || H5Tget_class(t) != H5T_STRING || npt_h5_attr_npoints(a) != 1) {
    rc = npt_error_set(NPT_EFORMAT, "attribute %s is not a single string", name);
  } else if (H5Tis_variable_str(t) > 0) {
    /* Same character set as the file's type: HDF5 will not convert ASCII <-> UTF-8. */
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_size(mt, H5T_VARIABLE);
    H5Tset_cset(mt, H5Tget_cset(t));
    char *vl = NULL;
    if (H5Aread(a, mt, &vl) < 0 || !vl) {
      rc = npt_error_set(NPT_EHDF5, "cannot read attribute %s", name);
    } else {
      *out = strdup(vl);
      H5free_memory(vl);
      if (!*out)
        rc = npt_error_set(NPT_ENOMEM, "out of memory");
    }
    H5Tclose(mt);
  } else {
    size_t size = H5Tget_size(t);
    char *buf = calloc(size + 1, 1);
    if (!buf)
      rc = npt_error_set(NPT_ENOMEM, "out of memory");
    else if (H5Aread(a, t, buf) < 0) {
      free(buf);
      rc = npt_error_set(NPT_EHDF5, "cannot read attribute %s", name);
    } else
      *out = buf;
  }
  if (t >= 0)
    H5Tclose(t);
  if (a >= 0)
    H5Aclose(a);
  return rc;
}

/* A scalar attribute `name` of file type `ft` on obj, from `value` of memory type `mt`. */
static int write_scalar_attr(hid_t obj, const char *name, hid_t ft, hid_t mt, const void *value) {
  hid_t s = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(obj, name, ft, s, H5P_DEFAULT, H5P_DEFAULT);
  int rc = (a >= 0 && H5Awrite(a, mt, value) >= 0) ? 0 : -1;
  if (a >= 0)
    H5Aclose(a);
  H5Sclose(s);
  return rc;
}

int npt_h5_write_str_attr(hid_t obj, const char *name, const char *value) {
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, H5T_VARIABLE);
  H5Tset_cset(t, H5T_CSET_UTF8);
  int rc = write_scalar_attr(obj, name, t, t, &value);
  H5Tclose(t);
  return rc;
}

int npt_h5_write_f64_attr(hid_t obj, const char *name, double value) {
  return write_scalar_attr(obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &value);
}

int npt_h5_write_fixed_str_attr(hid_t obj, const char *name, const char *value) {
  if (!value)
    value = "";
  if (H5Aexists(obj, name) > 0 && H5Adelete(obj, name) < 0)
    return -1;
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, strlen(value) + 1);
  H5Tset_strpad(t, H5T_STR_NULLTERM);
  H5Tset_cset(t, H5T_CSET_UTF8);
  int rc = write_scalar_attr(obj, name, t, t, value);
  H5Tclose(t);
  return rc;
}

int npt_h5_write_i64_attr(hid_t obj, const char *name, int64_t value) {
  return write_scalar_attr(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &value);
}

static int read_num_attr(hid_t obj, const char *name, hid_t mem_type, void *value) {
  htri_t exists = H5Aexists(obj, name);
  if (exists <= 0)
    return exists == 0 ? 1 : -1;
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  int rc = a >= 0 && npt_h5_attr_npoints(a) == 1 && H5Aread(a, mem_type, value) >= 0 ? 0 : -1;
  if (a >= 0)
    H5Aclose(a);
  return rc;
}

int npt_h5_read_i64_attr(hid_t obj, const char *name, int64_t *value) {
  return read_num_attr(obj, name, H5T_NATIVE_INT64, value);
}

int npt_h5_read_f64_attr(hid_t obj, const char *name, double *value) {
  return read_num_attr(obj, name, H5T_NATIVE_DOUBLE, value);
}

int npt_h5_file_format(const char *path, char **out) {
  *out = NULL;
  npt_h5_quiet();
  FILE *probe = fopen(path, "rb");
  if (!probe)
    return npt_error_set(NPT_EIO, "%s: cannot read: %s", path, strerror(errno));
  fclose(probe);
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0)
    return npt_error_set(NPT_EIO, "%s: not an HDF5 file", path);
  int rc = npt_h5_read_str_attr(f, "format", out);
  H5Fclose(f);
  return rc < 0 ? npt_error_set(NPT_EFORMAT, "%s: unreadable root attribute 'format'", path) : 0;
}
