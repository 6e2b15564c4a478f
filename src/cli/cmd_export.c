/* nptrack export: tables of an nptrack HDF5 file as text: the detections of a file written by
 * `nptrack detect` (MOTChallenge detection style), or the tracks of one video of an archive
 * (MOTChallenge tracking style, what `nptrack eval` reads) and its lineage events (events.csv,
 * what `nptrack eval --events-pred` reads); docs/formats.md. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/error.h"
#include "common/path.h"
#include "io/archive.h"
#include "io/dets_file.h"
#include "io/h5util.h"

enum { BLOCK_ROWS = 65536 };

static void usage(FILE *f) {
  fprintf(
      f, "Usage: nptrack export DETS.h5 --detections OUT.txt\n"
         "       nptrack export ARCHIVE.h5 [--video NAME] [--tracks OUT.txt] [--events OUT.csv]\n\n"
         "Writes the tables of an nptrack HDF5 file as text.\n\n"
         "  --detections OUT  the detections, one line per particle per frame:\n"
         "                    frame,-1,x,y,w,h,score,class,-1\n"
         "                    (frames counted from 1, boxes in pixels with the centre of the\n"
         "                    top-left pixel at (0, 0), as in docs/formats.md; '-' writes to\n"
         "                    standard output)\n"
         "  --tracks OUT      the tracks of one video of an archive, one line per tracked\n"
         "                    particle per frame: frame,id,x,y,w,h,score,class,-1 (frames\n"
         "                    from 1; detections in no track are left out); the archive\n"
         "                    must be complete\n"
         "  --events OUT      the lineage events (merges, splits) of one video of an\n"
         "                    archive as events.csv: frame,type,parents,children (frames\n"
         "                    from 1, ids space-separated; what nptrack eval --events-pred\n"
         "                    reads)\n"
         "  --video NAME      the archive's video (needed when it holds several)\n\n"
         "Options:\n"
         "  -q, --quiet       print nothing on success\n"
         "  -h, --help        this help\n\n"
         "Example:\n"
         "  nptrack detect -o out/dets.h5 out/synth/video.h5\n"
         "  nptrack export out/dets.h5 --detections out/dets.txt\n"
         "  nptrack export out/run.h5 --video demo --tracks out/demo.txt\n"
         "  nptrack export out/run.h5 --video demo --events out/demo_events.csv\n");
}

/* What goes into a text file: a function writing it to a stream, and its state. */
typedef struct text_job {
  int (*write)(struct text_job *job, FILE *out, const char *name);
  npt_dets_file *dets;
  const npt_archive_cols *cols;
  const npt_archive_events_cols *events;
  int64_t rows;
} text_job;

/* Writes every row of the detections file to `out`. */
static int write_detections(text_job *job, FILE *out, const char *name) {
  npt_dets_file *f = job->dets;
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
  job->rows = in->n_rows;
  return rc;
}

/* Writes the tracked rows of an archive's video: frame (from 1), id, box, score, class. */
static int write_tracks(text_job *job, FILE *out, const char *name) {
  const npt_archive_cols *c = job->cols;
  job->rows = 0;
  for (int64_t i = 0; i < c->n; i++) {
    if (c->track_id[i] < 0)
      continue;
    fprintf(out, "%lld,%lld,%.4f,%.4f,%.4f,%.4f,%.6f,%d,-1\n", (long long)c->frame[i] + 1,
            (long long)c->track_id[i], c->x[i], c->y[i], c->w[i], c->h[i], c->score[i], c->cls[i]);
    job->rows++;
  }
  if (ferror(out))
    return npt_error_set(NPT_EIO, "%s: cannot write: %s", name, strerror(errno));
  return 0;
}

static void write_ids(FILE *out, const int64_t *ids, int64_t b, int64_t e) {
  for (int64_t k = b; k < e; k++)
    fprintf(out, k > b ? " %lld" : "%lld", (long long)ids[k]);
}

/* Writes an archive's video's events as events.csv (docs/formats.md): frame from 1. */
static int write_events(text_job *job, FILE *out, const char *name) {
  const npt_archive_events_cols *c = job->events;
  fprintf(out, "frame,type,parents,children\n");
  for (int64_t i = 0; i < c->n; i++) {
    fprintf(out, "%lld,%s,", (long long)c->frame[i] + 1,
            c->kind[i] == NPT_ARCHIVE_EVENT_MERGE ? "merge" : "split");
    write_ids(out, c->parent_ids, c->parent_offsets[i], c->parent_offsets[i + 1]);
    fputc(',', out);
    write_ids(out, c->child_ids, c->child_offsets[i], c->child_offsets[i + 1]);
    fputc('\n', out);
  }
  job->rows = c->n;
  if (ferror(out))
    return npt_error_set(NPT_EIO, "%s: cannot write: %s", name, strerror(errno));
  return 0;
}

/* Runs `job` into `dest` ("-": standard output) through a temporary file renamed into place. */
static int write_text(text_job *job, const char *dest) {
  if (!strcmp(dest, "-")) {
    int rc = job->write(job, stdout, "standard output");
    if (rc == 0 && fflush(stdout) != 0)
      rc = npt_error_set(NPT_EIO, "standard output: cannot write: %s", strerror(errno));
    return rc;
  }
  char *tmp = npt_temp_path(dest);
  NPT_ALLOC_CHECK(tmp);
  int rc = 0;
  FILE *out = fopen(tmp, "w");
  if (!out)
    rc = npt_error_set(NPT_EIO, "%s: cannot write: %s", dest, strerror(errno));
  if (rc == 0)
    rc = job->write(job, out, dest);
  if (out && fclose(out) != 0 && rc == 0)
    rc = npt_error_set(NPT_EIO, "%s: cannot write: %s", dest, strerror(errno));
  if (rc == 0 && rename(tmp, dest) != 0)
    rc = npt_error_set(NPT_EIO, "%s: cannot rename into place: %s", dest, strerror(errno));
  if (rc < 0 && out)
    unlink(tmp);
  free(tmp);
  return rc;
}

static int export_detections(const char *path, const char *dest, int64_t *rows) {
  text_job job = {write_detections, NULL, NULL, NULL, 0};
  NPT_TRY(npt_dets_file_open(&job.dets, path));
  int rc = write_text(&job, dest);
  npt_dets_file_close(job.dets);
  *rows = job.rows;
  return rc;
}

/* The tracks (to tracks_dest, unless NULL) and the events (to events_dest, unless NULL) of one
 * video of a complete archive.  *video_name gets the video's name. */
static int export_archive(const char *path, const char *video, const char *tracks_dest,
                          const char *events_dest, int64_t *rows, int64_t *events,
                          char **video_name) {
  npt_archive_file *f = NULL;
  NPT_TRY(npt_archive_file_open(&f, path));
  int rc = 0;
  if (!npt_archive_file_is_complete(f))
    rc = npt_error_set(NPT_EFORMAT,
                       "%s: incomplete archive (status '%s'): the run that wrote it did not "
                       "finish; not exported",
                       path, npt_archive_file_status(f));
  int v = rc == 0 ? npt_archive_file_find_video(f, video) : rc;
  if (v < 0)
    rc = v;
  npt_archive_cols cols;
  memset(&cols, 0, sizeof cols);
  npt_archive_events_cols ev;
  memset(&ev, 0, sizeof ev);
  if (rc == 0 && events_dest && npt_archive_file_video_info(f, v)->n_events < 0)
    rc = npt_error_set(NPT_EFORMAT, "%s: video %s has no events table (not written by nptrack run)",
                       path, npt_archive_file_video_name(f, v));
  if (rc == 0 && tracks_dest)
    rc = npt_archive_file_read_detections(f, v, &cols);
  if (rc == 0 && events_dest)
    rc = npt_archive_file_read_events(f, v, &ev);
  if (rc == 0 && tracks_dest) {
    text_job job = {write_tracks, NULL, &cols, NULL, 0};
    rc = write_text(&job, tracks_dest);
    *rows = job.rows;
  }
  if (rc == 0 && events_dest) {
    text_job job = {write_events, NULL, NULL, &ev, 0};
    rc = write_text(&job, events_dest);
    *events = job.rows;
  }
  if (rc == 0)
    *video_name = strdup(npt_archive_file_video_name(f, v));
  npt_archive_cols_free(&cols);
  npt_archive_events_cols_free(&ev);
  npt_archive_file_close(f);
  return rc;
}

int npt_cmd_export(int argc, char **argv) {
  static const struct option longopts[] = {{"detections", required_argument, NULL, 'd'},
                                           {"tracks", required_argument, NULL, 't'},
                                           {"events", required_argument, NULL, 'e'},
                                           {"video", required_argument, NULL, 'v'},
                                           {"quiet", no_argument, NULL, 'q'},
                                           {"help", no_argument, NULL, 'h'},
                                           {NULL, 0, NULL, 0}};
  const char *dets_out = NULL, *tracks_out = NULL, *events_out = NULL, *video = NULL;
  int quiet = 0, opt;
  opterr = 0;
  optind = 1;
  while ((opt = getopt_long(argc, argv, ":qh", longopts, NULL)) != -1) {
    switch (opt) {
    case 'd':
      dets_out = optarg;
      break;
    case 't':
      tracks_out = optarg;
      break;
    case 'e':
      events_out = optarg;
      break;
    case 'v':
      video = optarg;
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
  if ((!dets_out || !*dets_out) && (!tracks_out || !*tracks_out) && (!events_out || !*events_out))
    return npt_cli_usage_error("export", "nothing to export (give --detections OUT.txt, or "
                                         "--tracks OUT.txt or --events OUT.csv for an archive)");
  if (dets_out && (tracks_out || events_out))
    return npt_cli_usage_error("export", "give one of --detections and --tracks%s",
                               tracks_out ? "" : " or --events");
  if (tracks_out && events_out && !strcmp(tracks_out, "-") && !strcmp(events_out, "-"))
    return npt_cli_usage_error("export", "--tracks and --events cannot both go to '-'");
  const char *path = argv[optind];
  /* Which kind of file: its root attribute `format` says. */
  char *format = NULL;
  int rc = npt_h5_file_format(path, &format);
  int is_archive = rc == 0 && format && !strcmp(format, NPT_ARCHIVE_FORMAT);
  free(format);
  if ((tracks_out || events_out) && !is_archive) {
    if (rc < 0)
      return npt_cli_fail("export", rc);
    return npt_cli_usage_error("export", "%s is not an archive: it has no %s", path,
                               tracks_out ? "tracks" : "lineage events");
  }
  if (dets_out && is_archive)
    return npt_cli_usage_error("export", "%s is an archive: export its tracks with --tracks", path);
  if (video && !is_archive)
    return npt_cli_usage_error("export", "--video is for archives");
  int64_t rows = 0, events = 0;
  char *name = NULL;
  rc = dets_out ? export_detections(path, dets_out, &rows)
                : export_archive(path, video, tracks_out, events_out, &rows, &events, &name);
  if (rc < 0) {
    free(name);
    return npt_cli_fail("export", rc);
  }
  if (!quiet && dets_out && strcmp(dets_out, "-"))
    printf("nptrack export: wrote %s: %lld detections\n", dets_out, (long long)rows);
  if (!quiet && tracks_out && strcmp(tracks_out, "-"))
    printf("nptrack export: wrote %s: %lld tracked detections of video %s\n", tracks_out,
           (long long)rows, name ? name : "?");
  if (!quiet && events_out && strcmp(events_out, "-"))
    printf("nptrack export: wrote %s: %lld lineage events of video %s\n", events_out,
           (long long)events, name ? name : "?");
  free(name);
  return NPT_EXIT_OK;
}
