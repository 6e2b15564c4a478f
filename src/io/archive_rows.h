/* The parallel writer of the archive's detections columns (docs/archive-format.md, "Who writes
 * it").  The root creates the archive and every table in it, the detections columns at their
 * full size but empty (npt_archive_stream_defer_rows), and closes the file
 * (npt_archive_suspend); then the ranks that hold the rows open it together and each writes its
 * rows where they go, one collective write per column (parallel HDF5, MPI-IO driver,
 * H5FD_MPIO_COLLECTIVE: HDF5 1.10 writes gzip'ed datasets collectively only).  Every attribute
 * and every dataset is made by the root alone, so no attribute or metadata change has to be
 * made collectively with identical values on every rank; the ranks only open datasets and write
 * their elements.
 *
 * Without MPI (comm MPI_COMM_NULL) the same calls write with HDF5's default driver, so a run of
 * one process writes its rows through the same code.
 *
 * Errors: the functions marked "not collective" can fail on some ranks only: the caller agrees
 * on their outcome (mpi_util.h, npt_mpi_agree) before the next collective call.  A collective
 * call that fails on one rank may leave the others inside HDF5's MPI calls, which Open MPI 4.1
 * can only end with MPI_Abort: the caller must treat its error as the job's end. */
#ifndef NPT_ARCHIVE_ROWS_H
#define NPT_ARCHIVE_ROWS_H

#include <mpi.h>
#include <stdint.h>

#include "io/archive.h"

typedef struct npt_archive_rows_file npt_archive_rows_file;

/* Opens the temporary archive `tmp` (npt_archive_temp_path of the suspended writer) for writing
 * rows; `path` names it in messages.  Collective over comm (MPI_COMM_NULL: this process alone). */
int npt_archive_rows_open(npt_archive_rows_file **out, const char *tmp, const char *path,
                          MPI_Comm comm);

/* Opens video `name`'s detections columns (and closes the previous video's).  Collective (with
 * MPI-IO, HDF5 allocates a dataset's chunks when it is first opened for writing). */
int npt_archive_rows_video(npt_archive_rows_file *f, const char *name);

/* Prepares this rank's next piece of the open video: `rows` (in table order; their track ids
 * final) go to n_runs runs of the table, run i being rows offset[i] to offset[i] + count[i] - 1,
 * increasing and apart, the counts summing to rows->n.  Checks the rows against the table, makes
 * the derived columns (time_s, *_nm, float16 embeddings) as the root's writer makes them, and
 * selects the runs.  A rank with nothing to write passes n = 0 and no runs.  `rows` must stay
 * valid until npt_archive_rows_write.  Not collective. */
int npt_archive_rows_prepare(npt_archive_rows_file *f, const npt_archive_rows *rows, int n_runs,
                             const int64_t *offset, const int64_t *count);

/* Writes the prepared piece: one write per column.  Collective: every rank calls it as often as
 * every other for a video, each after a successful npt_archive_rows_prepare. */
int npt_archive_rows_write(npt_archive_rows_file *f);

/* Closes the file.  Collective.  Frees f whatever happens (NULL: nothing). */
int npt_archive_rows_close(npt_archive_rows_file *f);

#endif
