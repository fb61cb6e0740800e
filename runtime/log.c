/* log.c - the logfmt writer. Owns the log level and the list of secrets to redact; one mutex
 * keeps records whole when several threads log at once. */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_SECRETS 8

static enum pl_log_level min_level = PL_LOG_INFO;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char *secrets[MAX_SECRETS];
static int nsecrets;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void pl_log_set_level(enum pl_log_level level)
{
    min_level = level;
}

int pl_log_parse_level(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (name != NULL && strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

void pl_log_add_secret(const char *value)
{
    /* Short values would redact ordinary words; a real secret is never this short. */
    if (value == NULL || strlen(value) < 4 || strstr("[redacted]", value) != NULL)
        return;
    pthread_mutex_lock(&log_lock);
    int known = 0;
    for (int i = 0; i < nsecrets && !known; i++)
        known = strcmp(secrets[i], value) == 0; /* SIGHUP registers the same ones again */
    if (!known && nsecrets < MAX_SECRETS)
        secrets[nsecrets++] = strdup(value);
    pthread_mutex_unlock(&log_lock);
}

void pl_log_clear_secrets(void)
{
    pthread_mutex_lock(&log_lock);
    while (nsecrets > 0)
        free(secrets[--nsecrets]);
    pthread_mutex_unlock(&log_lock);
}

/* Append s to the line, quoted and escaped when it has spaces, quotes, '=' or controls. */
static void put_value(FILE *out, const char *s)
{
    int quote = *s == '\0';
    for (const char *p = s; *p && !quote; p++)
        if (*p == ' ' || *p == '"' || *p == '=' || (unsigned char)*p < 0x20)
            quote = 1;
    if (!quote) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", out);
        else if (*p == '\t')
            fputs("\\t", out);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(out, "\\x%02x", *p);
        else
            fputc(*p, out);
    }
    fputc('"', out);
}

/* Replace every registered secret in buf (in place, it only shrinks or stays). */
static void redact(char *buf, size_t size)
{
    static const char mark[] = "[redacted]";
    for (int i = 0; i < nsecrets; i++) {
        size_t slen = strlen(secrets[i]);
        char *hit;
        while ((hit = strstr(buf, secrets[i])) != NULL) {
            size_t tail = strlen(hit + slen) + 1;
            if (slen >= sizeof mark - 1) {
                memcpy(hit, mark, sizeof mark - 1);
                memmove(hit + sizeof mark - 1, hit + slen, tail);
            } else if ((size_t)(hit - buf) + sizeof mark - 1 + tail <= size) {
                memmove(hit + sizeof mark - 1, hit + slen, tail);
                memcpy(hit, mark, sizeof mark - 1);
            } else {
                memset(hit, '*', slen);
            }
        }
    }
}

void pl_log(enum pl_log_level level, const char *const *fields, const char *fmt, ...)
{
    char msg[2048], *line = NULL;
    size_t linelen = 0;
    struct timespec ts;
    struct tm tm;
    char when[40];
    va_list ap;
    FILE *mem;

    if (level < min_level)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* before escaping: a secret with quotes or spaces would not match once escaped */
    pthread_mutex_lock(&log_lock);
    redact(msg, sizeof msg);
    pthread_mutex_unlock(&log_lock);

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);

    mem = open_memstream(&line, &linelen);
    if (mem == NULL)
        return;
    fprintf(mem, "ts=%s.%03ldZ level=%s", when, ts.tv_nsec / 1000000, level_names[level]);
    for (int i = 0; fields != NULL && fields[i] != NULL; i += 2) {
        if (fields[i + 1] == NULL)
            continue;
        fprintf(mem, " %s=", fields[i]);
        put_value(mem, fields[i + 1]);
    }
    fputs(" msg=", mem);
    put_value(mem, msg);
    fputc('\n', mem);
    fclose(mem);

    pthread_mutex_lock(&log_lock);
    redact(line, linelen + 1);
    fputs(line, stderr);
    fflush(stderr);
    pthread_mutex_unlock(&log_lock);
    free(line);
}
