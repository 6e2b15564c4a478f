/* Parallel HDF5: one collective write of a union of hyperslabs per rank against one collective
 * write per run (src/cli/run_rows.c chose the second; docs/performance.md, "Archive writing").
 *
 * A dataset of ROWS x WIDTH 16-bit values (chunks of 2048 rows, shuffle + gzip 4, made by rank 0
 * alone, as the archive's root makes it) is cut into runs of RUN rows dealt to the ranks in turn,
 * as the chunk counter deals chunks; each rank writes its runs either as one union selection
 * (`union`) or one collective write per run (`runs`; a rank out of runs joins with an empty
 * selection).  Prints each rank's write time.
 *   usage: mpiexec -n N bench_h5_selection FILE.h5 union|runs [ROWS [WIDTH [RUN]]] */
#include <hdf5.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int make_file(const char *path, hsize_t rows, hsize_t width) {
  hsize_t dims[2] = {rows, width}, maxd[2] = {H5S_UNLIMITED, width}, chunk[2] = {2048, width};
  hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hid_t s = H5Screate_simple(2, dims, maxd), p = H5Pcreate(H5P_DATASET_CREATE);
  int ok = f >= 0 && s >= 0 && p >= 0 && H5Pset_chunk(p, 2, chunk) >= 0 && H5Pset_shuffle(p) >= 0 &&
           H5Pset_deflate(p, 4) >= 0;
  hid_t d = ok ? H5Dcreate2(f, "x", H5T_STD_I16LE, s, H5P_DEFAULT, p, H5P_DEFAULT) : -1;
  ok = d >= 0;
  if (d >= 0)
    H5Dclose(d);
  H5Pclose(p), H5Sclose(s);
  if (f >= 0)
    H5Fclose(f);
  return ok ? 0 : -1;
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (argc < 3 || (strcmp(argv[2], "union") && strcmp(argv[2], "runs"))) {
    if (rank == 0)
      fprintf(stderr, "usage: mpiexec -n N %s FILE.h5 union|runs [ROWS [WIDTH [RUN]]]\n", argv[0]);
    MPI_Finalize();
    return 2;
  }
  const char *path = argv[1];
  int as_union = !strcmp(argv[2], "union");
  hsize_t rows = argc > 3 ? strtoull(argv[3], NULL, 10) : 1000000;
  hsize_t width = argc > 4 ? strtoull(argv[4], NULL, 10) : 64;
  hsize_t run = argc > 5 ? strtoull(argv[5], NULL, 10) : 70000;
  int bad = rank == 0 ? make_file(path, rows, width) : 0;
  MPI_Bcast(&bad, 1, MPI_INT, 0, MPI_COMM_WORLD);
  if (bad) {
    if (rank == 0)
      fprintf(stderr, "cannot make %s\n", path);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS), dxpl = H5Pcreate(H5P_DATASET_XFER);
  H5Pset_fapl_mpio(fapl, MPI_COMM_WORLD, MPI_INFO_NULL);
  H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE);
  hid_t f = H5Fopen(path, H5F_ACC_RDWR, fapl), d = H5Dopen2(f, "x", H5P_DEFAULT);
  hsize_t n_runs = (rows + run - 1) / run, mine = 0;
  for (hsize_t k = (hsize_t)rank; k < n_runs; k += (hsize_t)size)
    mine += k * run + run > rows ? rows - k * run : run;
  short *buf = malloc(sizeof *buf * (size_t)(mine * width + 1));
  for (hsize_t i = 0; i < mine * width; i++) /* compressible, not constant: like embeddings */
    buf[i] = (short)(((i * 2654435761u) >> 20) & 0x3ff);
  MPI_Barrier(MPI_COMM_WORLD);
  double t0 = MPI_Wtime();
  herr_t rc = 0;
  hsize_t rounds = as_union ? 1 : (n_runs + (hsize_t)size - 1) / (hsize_t)size, done = 0;
  for (hsize_t q = 0; q < rounds; q++) {
    hid_t fs = H5Dget_space(d);
    hsize_t count = 0;
    H5Sselect_none(fs);
    for (hsize_t k = (hsize_t)rank; k < n_runs; k += (hsize_t)size) {
      if (!as_union && k != q * (hsize_t)size + (hsize_t)rank)
        continue;
      hsize_t start[2] = {k * run, 0},
              cnt[2] = {k * run + run > rows ? rows - k * run : run, width};
      H5Sselect_hyperslab(fs, H5S_SELECT_OR, start, NULL, cnt, NULL);
      count += cnt[0];
    }
    hsize_t mdims[2] = {count, width};
    hid_t ms = H5Screate_simple(2, mdims, NULL);
    rc |= H5Dwrite(d, H5T_NATIVE_SHORT, ms, fs, dxpl, buf + done * width);
    done += count;
    H5Sclose(ms), H5Sclose(fs);
  }
  double t = MPI_Wtime() - t0;
  H5Dclose(d), H5Fclose(f), H5Pclose(fapl), H5Pclose(dxpl);
  printf("%s, %d ranks, %llu x %llu values, runs of %llu rows: rank %d wrote %llu rows in %llu "
         "collective writes, %.3f s%s\n",
         as_union ? "union" : "runs", size, (unsigned long long)rows, (unsigned long long)width,
         (unsigned long long)run, rank, (unsigned long long)mine, (unsigned long long)rounds, t,
         rc < 0 ? " (FAILED)" : "");
  free(buf);
  MPI_Finalize();
  return rc < 0;
}
