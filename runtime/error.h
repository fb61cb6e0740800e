/* error.h - the error out-parameter every fallible function takes.
 * A function that fails returns -1 and fills a struct pl_error; callers print or forward it.
 * `code` is a stable code from DESIGN.md's table (or "config", "io", … for non-rule failures). */
#ifndef PL_ERROR_H
#define PL_ERROR_H

#include <stdarg.h>

#define PL_ERROR_CODE_MAX 40
#define PL_ERROR_MSG_MAX  1024

struct pl_error {
    char code[PL_ERROR_CODE_MAX];
    char msg[PL_ERROR_MSG_MAX];
};

/* Fill err (may be NULL) with code and a printf-style message; always returns -1 so that
 * `return pl_error_set(err, …);` reads as a failure. */
int pl_error_set(struct pl_error *err, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int pl_error_vset(struct pl_error *err, const char *code, const char *fmt, va_list ap);

/* For "did you mean": the word of known (NULL-terminated) within edit distance 2 of word (an
 * adjacent swap counts 1), the nearest first in known's order; NULL when none is. */
const char *pl_error_closest(const char *word, const char *const *known);

/* Reset to the empty error. */
void pl_error_clear(struct pl_error *err);

#endif
