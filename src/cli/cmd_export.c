/* nptrack export: tables of an nptrack HDF5 file as text.  Today: the detections of a file
 * written by `nptrack detect`, in MOTChallenge detection style (docs/formats.md). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/error.h"
#include "io/dets_file.h"

enum { BLOCK_ROWS = 65536 };

static void usage(FILE *f) {
  fprintf(f, "Usage: nptrack export DETS.h5 --detections OUT.txt\n\n"
             "Writes the tables of an nptrack HDF5 file as text.\n\n"
             "  --detections OUT  the detections, one line per particle per frame:\n"
             "                    frame,-1,x,y,w,h,score,class,-1\n"
             "                    (frames counted from 1, boxes in pixels with the centre of the\n"
             "                    top-left pixel at (0, 0), as in docs/formats.md; '-' writes to\n"
             "                    standard output)\n\n"
             "Options:\n"
             "  -q, --quiet       print nothing on success\n"
             "  -h, --help        this help\n\n"
             "Example:\n"
             "  nptrack detect -o out/dets.h5 out/synth/video.h5\n"
             "  nptrack export out/dets.h5 --detections out/dets.txt\n");
}

/* Writes every row of `f` to `out`.  *rows gets the count. */
static int write_detections(npt_dets_file *f, FILE *out, const char *name, int64_t *rows) {
  const npt_dets_file_info *in = npt_dets_file_get_info(f);
  npt_dets d;
  npt_dets_init(&d, 0);
  int rc = 0;
  for (int64_t r0 = 0; r0 < in->n_rows && rc == 0; r0 += BLOCK_ROWS) {
    int64_t n = in->n_rows - r0 < BLOCK_ROWS ? in->n_rows - r0 : BLOCK_ROWS;
    npt_dets_clear(&d);
    rc = npt_dets_file_read(f, r0, n, &d);
    for (int64_t k = 0; k < d.n && rc == 0; k++) {
      const npt_detection *r = &d.det[k];
      fprintf(out, "%lld,-1,%.4f,%.4f,%.4f,%.4f,%.6f,%d,-1\n", (long long)r->frame + 1, r->x, r->y,
              r->w, r->h, r->score, r->cls);
    }
    if (rc == 0 && ferror(out))
      rc = npt_error_set(NPT_EIO, "%s: cannot write: %s", name, strerror(errno));
  }
  npt_dets_free(&d);
  *rows = in->n_rows;
  return rc;
}

/* Writes the detections of `path` to `dest` ("-": stdout) through a temporary file. */
static int export_detections(const char *path, const char *dest, int64_t *rows) {
  npt_dets_file *f = NULL;
  NPT_TRY(npt_dets_file_open(&f, path));
  if (!strcmp(dest, "-")) {
    int rc = write_detections(f, stdout, "standard output", rows);
    npt_dets_file_close(f);
    if (rc == 0 && fflush(stdout) != 0)
      rc = npt_error_set(NPT_EIO, "standard output: cannot write: %s", strerror(errno));
    return rc;
  }
  const char *slash = strrchr(dest, '/');
  int dir = slash ? (int)(slash - dest + 1) : 0;
  size_t n = strlen(dest) + 48;
  char *tmp = malloc(n);
  if (!tmp) {
    npt_dets_file_close(f);
    return npt_error_set(NPT_ENOMEM, "out of memory");
  }
  snprintf(tmp, n, "%.*s.%s.%ld.part", dir, dest, dest + dir, (long)getpid());
  int rc = 0;
  FILE *out = fopen(tmp, "w");
  if (!out)
    rc = npt_error_set(NPT_EIO, "%s: cannot write: %s", dest, strerror(errno));
  if (rc == 0)
    rc = write_detections(f, out, dest, rows);
  if (out && fclose(out) != 0 && rc == 0)
    rc = npt_error_set(NPT_EIO, "%s: cannot write: %s", dest, strerror(errno));
  if (rc == 0 && rename(tmp, dest) != 0)
    rc = npt_error_set(NPT_EIO, "%s: cannot rename into place: %s", dest, strerror(errno));
  if (rc < 0 && out)
    unlink(tmp);
  free(tmp);
  npt_dets_file_close(f);
  return rc;
}

int npt_cmd_export(int argc, char **argv) {
  static const struct option longopts[] = {{"detections", required_argument, NULL, 'd'},
                                           {"quiet", no_argument, NULL, 'q'},
                                           {"help", no_argument, NULL, 'h'},
                                           {NULL, 0, NULL, 0}};
  const char *dets_out = NULL;
  int quiet = 0, opt;
  opterr = 0;
  optind = 1;
  while ((opt = getopt_long(argc, argv, ":qh", longopts, NULL)) != -1) {
    switch (opt) {
    case 'd':
      dets_out = optarg;
      break;
    case 'q':
      quiet = 1;
      break;
    case 'h':
      usage(stdout);
      return NPT_EXIT_OK;
    case ':':
      return npt_cli_usage_error("export", "option '%s' needs a value", argv[optind - 1]);
    default:
      return npt_cli_usage_error("export", "unknown option '%s'", argv[optind - 1]);
    }
  }
  if (optind >= argc)
    return npt_cli_usage_error("export", "no input file (nptrack export DETS.h5 --detections "
                                         "OUT.txt)");
  if (optind + 1 < argc)
    return npt_cli_usage_error("export", "unexpected argument '%s'", argv[optind + 1]);
  if (!dets_out || !*dets_out)
    return npt_cli_usage_error("export", "nothing to export (give --detections OUT.txt)");
  const char *path = argv[optind];
  int64_t rows = 0;
  int rc = export_detections(path, dets_out, &rows);
  if (rc < 0)
    return npt_cli_fail("export", rc);
  if (!quiet && strcmp(dets_out, "-"))
    printf("nptrack export: wrote %s: %lld detections\n", dets_out, (long long)rows);
  return NPT_EXIT_OK;
}
