/* Small HDF5 helpers shared by the readers and writers: silencing HDF5's own error printing,
 * and turning its error stack into one line. */
#ifndef NPT_H5UTIL_H
#define NPT_H5UTIL_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

/* Switches off HDF5's automatic error printing (once per process; cheap to call again). */
void npt_h5_quiet(void);

/* The innermost message of HDF5's current error stack, e.g. "file signature not found", or "".
 * Writes into buf (n bytes) and returns buf. */
const char *npt_h5_last_error(char *buf, size_t n);

/* Records NPT_EHDF5 with "file: what: HDF5's reason" and returns it. */
int npt_h5_fail(const char *file, const char *what);

/* Number of values an attribute holds (1 for a scalar), or -1. */
hssize_t npt_h5_attr_npoints(hid_t attr);

/* Reads a string attribute (fixed or variable length) of an object; *out malloc'd.  Returns 0,
 * 1 when the attribute does not exist (*out NULL), or a negative error. */
int npt_h5_read_str_attr(hid_t obj, const char *name, char **out);

/* Writes a variable-length UTF-8 string attribute. Returns 0 or -1 (HDF5 failed). */
int npt_h5_write_str_attr(hid_t obj, const char *name, const char *value);

/* Writes a scalar float64 attribute. Returns 0 or -1. */
int npt_h5_write_f64_attr(hid_t obj, const char *name, double value);

/* Writes a fixed-length (null-terminated, UTF-8) string attribute, replacing one of that name:
 * the archive's strings are fixed-length so that every HDF5 reader (MATLAB's h5readatt, h5py as
 * bytes) reads them without variable-length support.  Returns 0 or -1. */
int npt_h5_write_fixed_str_attr(hid_t obj, const char *name, const char *value);

/* Writes a scalar int64 attribute. Returns 0 or -1. */
int npt_h5_write_i64_attr(hid_t obj, const char *name, int64_t value);

/* Reads a scalar integer (int64) or real (float64) attribute.  Returns 0, 1 when it does not
 * exist, or -1. */
int npt_h5_read_i64_attr(hid_t obj, const char *name, int64_t *value);
int npt_h5_read_f64_attr(hid_t obj, const char *name, double *value);

/* The root attribute `format` of the HDF5 file at `path` ("nptrack archive", "nptrack
 * detections", ...); *out malloc'd, NULL when the file has none.  Returns 0, or NPT_EIO with a
 * message naming the file when it cannot be opened as HDF5. */
int npt_h5_file_format(const char *path, char **out);

#endif
