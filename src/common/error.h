/* Status codes and error messages shared by every nptrack module.
 *
 * Library functions return 0 or a negative NPT_E* code and record a message with context (file,
 * frame, setting, rank) at the point where the error is detected, with npt_error_set().  Only the
 * program's top level prints the message and turns the code into an exit status. */
#ifndef NPT_ERROR_H
#define NPT_ERROR_H

#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One list: code name, value, exit status class, default text. */
#define NPT_ERRNO_MAP(X)                                                                           \
  X(NOMEM, -1, "out of memory")                                                                    \
  X(INVAL, -2, "invalid argument")                                                                 \
  X(CONFIG, -3, "configuration error")                                                             \
  X(USAGE, -4, "usage error")                                                                      \
  X(IO, -5, "input/output error")                                                                  \
  X(FORMAT, -6, "malformed input")                                                                 \
  X(HDF5, -7, "HDF5 error")                                                                        \
  X(MPI, -8, "MPI error")                                                                          \
  X(CUDA, -9, "CUDA error")                                                                        \
  X(UNSUPPORTED, -10, "not supported by this build")                                               \
  X(INTERNAL, -11, "internal error")

enum npt_status {
  NPT_OK = 0,
#define NPT__ERRNO_ENUM(name, val, text) NPT_E##name = (val),
  NPT_ERRNO_MAP(NPT__ERRNO_ENUM)
#undef NPT__ERRNO_ENUM
};

/* Exit statuses of the nptrack program. */
enum { NPT_EXIT_OK = 0, NPT_EXIT_FAILURE = 1, NPT_EXIT_USAGE = 2 };

/* The default text of a status code ("out of memory"). */
const char *npt_strerror(int code);

/* Records a message for the error being returned and returns `code`, so that callers can write
 * `return npt_error_set(NPT_EIO, "%s: cannot open: %s", path, strerror(errno));`.  The message is
 * kept per thread; a later call replaces it. */
int npt_error_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int npt_error_setv(int code, const char *fmt, va_list ap);

/* The message of the last error recorded on this thread, or the default text of `code` when
 * nothing was recorded since npt_error_clear(). */
const char *npt_error_msg(int code);
void npt_error_clear(void);

/* The exit status (1 runtime, 2 usage/config) the program uses for `code`. */
int npt_exit_status(int code);

/* Generic check helper behind the NPT_*_CHECK macros: records "file:line: what failed: detail"
 * and returns `code`. */
int npt__check_fail(int code, const char *file, int line, const char *stmt, const char *detail);

/* Propagate a status: evaluates `expr`; a negative result is returned from the calling function
 * unchanged (its message is already recorded). */
#define NPT_TRY(expr)                                                                              \
  do {                                                                                             \
    int npt__rc = (expr);                                                                          \
    if (npt__rc < 0)                                                                               \
      return npt__rc;                                                                              \
  } while (0)

/* Allocation check: records NPT_ENOMEM with the failing statement. */
#define NPT_ALLOC_CHECK(ptr)                                                                       \
  do {                                                                                             \
    if ((ptr) == NULL)                                                                             \
      return npt__check_fail(NPT_ENOMEM, __FILE__, __LINE__, #ptr, "out of memory");               \
  } while (0)

#ifdef __cplusplus
}
#endif

#endif
