/* Shared helpers for nptrack's cmocka unit tests. */
#ifndef NPT_TEST_H
#define NPT_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the headers above first. */
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

/* Fails, printing both strings, unless `needle` occurs in `hay`. */
#define NPT_ASSERT_CONTAINS(hay, needle)                                                           \
  do {                                                                                             \
    const char *npt__h = (hay), *npt__n = (needle);                                                \
    if (!npt__h || !strstr(npt__h, npt__n))                                                        \
      fail_msg("expected \"%s\" to contain \"%s\"", npt__h ? npt__h : "(null)", npt__n);           \
  } while (0)

/* Fails, printing both values and the tolerance, unless |a - b| <= tol. */
#define NPT_ASSERT_NEAR(a, b, tol)                                                                 \
  do {                                                                                             \
    double npt__a = (a), npt__b = (b), npt__t = (tol);                                             \
    if (!(npt__a - npt__b <= npt__t && npt__b - npt__a <= npt__t))                                 \
      fail_msg("%s = %.9g, %s = %.9g, differ by more than %g", #a, npt__a, #b, npt__b, npt__t);   \
  } while (0)

#endif
