#include "common/error.h"

#include <stdio.h>
#include <string.h>

static _Thread_local char tls_msg[1024];
static _Thread_local int tls_have_msg;

const char *npt_strerror(int code) {
  switch (code) {
  case NPT_OK:
    return "success";
#define NPT__ERRNO_TEXT(name, val, text)                                                           \
  case NPT_E##name:                                                                                \
    return text;
    NPT_ERRNO_MAP(NPT__ERRNO_TEXT)
#undef NPT__ERRNO_TEXT
  default:
    return "unknown error";
  }
}

int npt_error_setv(int code, const char *fmt, va_list ap) {
  vsnprintf(tls_msg, sizeof tls_msg, fmt, ap);
  tls_have_msg = 1;
  return code;
}

int npt_error_set(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  npt_error_setv(code, fmt, ap);
  va_end(ap);
  return code;
}

const char *npt_error_msg(int code) { return tls_have_msg ? tls_msg : npt_strerror(code); }

void npt_error_clear(void) {
  tls_have_msg = 0;
  tls_msg[0] = '\0';
}

int npt_exit_status(int code) {
  if (code == NPT_OK)
    return NPT_EXIT_OK;
  if (code == NPT_ECONFIG || code == NPT_EUSAGE)
    return NPT_EXIT_USAGE;
  return NPT_EXIT_FAILURE;
}

int npt__check_fail(int code, const char *file, int line, const char *stmt, const char *detail) {
  return npt_error_set(code, "%s:%d: %s failed: %s", file, line, stmt, detail);
}
