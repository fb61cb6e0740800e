/* error.c - struct pl_error helpers: formatting a code and a message into the out-parameter. */
#include "error.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

int pl_error_vset(struct pl_error *err, const char *code, const char *fmt, va_list ap)
{
    if (err == NULL)
        return -1;
    snprintf(err->code, sizeof err->code, "%s", code != NULL ? code : "error");
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    return -1;
}

int pl_error_set(struct pl_error *err, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pl_error_vset(err, code, fmt, ap);
    va_end(ap);
    return -1;
}

void pl_error_clear(struct pl_error *err)
{
    if (err != NULL)
        err->code[0] = err->msg[0] = '\0';
}

/* Words longer than this are never close to anything (the distance table is on the stack). */
#define WORD_MAX 80

/* Optimal string alignment distance (an adjacent swap costs 1), for "did you mean". */
static size_t edit_distance(const char *a, const char *b)
{
    size_t d[WORD_MAX + 1][WORD_MAX + 1];
    size_t la = strlen(a), lb = strlen(b);
    if (la > WORD_MAX || lb > WORD_MAX)
        return SIZE_MAX;
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < best)
                best = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[la][lb];
}

const char *pl_error_closest(const char *word, const char *const *known)
{
    const char *best = NULL;
    size_t best_d = 3;
    for (const char *const *k = known; *k != NULL; k++) {
        size_t d = edit_distance(word, *k);
        if (d < best_d) {
            best_d = d;
            best = *k;
        }
    }
    return best;
}
