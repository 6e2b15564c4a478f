/* SHA-256 (FIPS 180-4) of a buffer or a file: the archive records the model file's hash, so a
 * result can be tied to the exact weights that made it. */
#ifndef NPT_SHA256_H
#define NPT_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct npt_sha256 {
  uint32_t h[8];
  uint64_t bytes;
  unsigned char block[64];
  size_t used;
} npt_sha256;

void npt_sha256_init(npt_sha256 *s);
void npt_sha256_update(npt_sha256 *s, const void *data, size_t n);
/* Writes the digest as 64 lower-case hex digits and a NUL into hex[65]. */
void npt_sha256_final(npt_sha256 *s, char hex[65]);

/* The hash of the file at `path`.  Returns 0, or NPT_EIO with a message naming the file. */
int npt_sha256_file(const char *path, char hex[65]);

#endif
