/* SHA-256 against FIPS 180-4's example vectors (one split over a million updates), and a file. */
#include "npt_test.h"

#include <stdlib.h>
#include <unistd.h>

#include "common/error.h"
#include "common/sha256.h"

static void hash_str(const char *msg, size_t repeat, char hex[65]) {
  npt_sha256 s;
  npt_sha256_init(&s);
  for (size_t i = 0; i < repeat; i++)
    npt_sha256_update(&s, msg, strlen(msg));
  npt_sha256_final(&s, hex);
}

static void test_vectors(void **state) {
  (void)state;
  char hex[65];
  hash_str("", 1, hex);
  assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  hash_str("abc", 1, hex);
  assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  hash_str("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 1, hex);
  assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  hash_str("a", 1000000, hex); /* many updates across block boundaries */
  assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

static void test_file(void **state) {
  (void)state;
  char path[] = "/tmp/npt_sha_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, "abc", 3), 3);
  close(fd);
  char hex[65];
  assert_int_equal(npt_sha256_file(path, hex), 0);
  assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  unlink(path);
  int rc = npt_sha256_file(path, hex);
  assert_int_equal(rc, NPT_EIO);
  NPT_ASSERT_CONTAINS(npt_error_msg(rc), path);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_vectors), cmocka_unit_test(test_file)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
