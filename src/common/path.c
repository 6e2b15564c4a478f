#include "common/path.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *npt_temp_path(const char *path) {
  const char *slash = strrchr(path, '/');
  size_t dir = slash ? (size_t)(slash - path + 1) : 0;
  size_t n = strlen(path) + 48;
  char *t = malloc(n);
  if (t)
    snprintf(t, n, "%.*s.%s.%ld.part", (int)dir, path, path + dir, (long)getpid());
  return t;
}
