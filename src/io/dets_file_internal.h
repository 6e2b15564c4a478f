/* Shared by the detections file's writer (dets_file.c) and reader (dets_file_read.c): the
 * columns, their types and the documentation written beside them. */
#ifndef NPT_DETS_FILE_INTERNAL_H
#define NPT_DETS_FILE_INTERNAL_H

#include <hdf5.h>
#include <stdint.h>

typedef enum { NPT__COL_I64, NPT__COL_I32, NPT__COL_F32 } npt__col_kind;

typedef struct npt__col_def {
  const char *name; /* dataset name under /detections */
  npt__col_kind kind;
  const char *units;
  const char *description;
} npt__col_def;

enum {
  NPT__C_FRAME,
  NPT__C_X,
  NPT__C_Y,
  NPT__C_W,
  NPT__C_H,
  NPT__C_SCORE,
  NPT__C_CLASS,
  NPT__C_TRACK,
  NPT__N_COLS
};

extern const npt__col_def npt__dets_cols[NPT__N_COLS];

/* Bytes per element, the HDF5 file type and the memory type of a column kind. */
size_t npt__col_size(npt__col_kind k);
hid_t npt__col_file_type(npt__col_kind k);
hid_t npt__col_mem_type(npt__col_kind k);

#endif
