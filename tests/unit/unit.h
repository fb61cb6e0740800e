/* unit.h - the tiny harness behind tests/unit: checks that say what differed, and the closing
 * "N passed, N failed" line. One test binary per module; each case is one row of a table. */
#ifndef PL_UNIT_H
#define PL_UNIT_H

#include <stdio.h>
#include <string.h>

static int unit_passed, unit_failed;
static const char *unit_case = "";

/* Name the case being checked; failures print it. */
#define UNIT_CASE(name) (unit_case = (name))

#define UNIT_FAIL(...)                                                      \
    do {                                                                    \
        unit_failed++;                                                      \
        fprintf(stderr, "FAIL %s:%d [%s] ", __FILE__, __LINE__, unit_case); \
        fprintf(stderr, __VA_ARGS__);                                       \
        fputc('\n', stderr);                                                \
    } while (0)

#define CHECK(cond)                          \
    do {                                     \
        if (cond)                            \
            unit_passed++;                   \
        else                                 \
            UNIT_FAIL("expected %s", #cond); \
    } while (0)

#define CHECK_INT(got, want)                                     \
    do {                                                         \
        long long g_ = (long long)(got), w_ = (long long)(want); \
        if (g_ == w_)                                            \
            unit_passed++;                                       \
        else                                                     \
            UNIT_FAIL("%s: got %lld, want %lld", #got, g_, w_);  \
    } while (0)

#define CHECK_STR(got, want)                                                                 \
    do {                                                                                     \
        const char *g_ = (got), *w_ = (want);                                                \
        if ((g_ == NULL && w_ == NULL) || (g_ != NULL && w_ != NULL && strcmp(g_, w_) == 0)) \
            unit_passed++;                                                                   \
        else                                                                                 \
            UNIT_FAIL("%s: got \"%s\", want \"%s\"", #got, g_ ? g_ : "(null)",               \
                      w_ ? w_ : "(null)");                                                   \
    } while (0)

/* got contains the substring want */
#define CHECK_CONTAINS(got, want)                                                          \
    do {                                                                                   \
        const char *g_ = (got), *w_ = (want);                                              \
        if (g_ != NULL && strstr(g_, w_) != NULL)                                          \
            unit_passed++;                                                                 \
        else                                                                               \
            UNIT_FAIL("%s: \"%s\" does not contain \"%s\"", #got, g_ ? g_ : "(null)", w_); \
    } while (0)

/* Print the closing line and return main's exit status. */
static inline int unit_report(const char *suite)
{
    printf("%s: %d passed, %d failed\n", suite, unit_passed, unit_failed);
    return unit_failed == 0 ? 0 : 1;
}

#endif
