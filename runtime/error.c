/* error.c - struct pl_error helpers: formatting a code and a message into the out-parameter. */
#include "error.h"

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
