/* File-name helpers shared by every writer that publishes its output by rename. */
#ifndef NPT_PATH_H
#define NPT_PATH_H

/* "dir/name" -> "dir/.name.PID.part": a hidden temporary name in the same folder, so that the
 * final rename is atomic.  Returns a malloc'ed string (the caller frees it), or NULL when out
 * of memory. */
char *npt_temp_path(const char *path);

#endif
