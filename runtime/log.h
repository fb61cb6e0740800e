/* log.h - logfmt records on stderr, one line each: `ts=… level=… key=value … msg="…"`.
 * Thread-safe. Registered secrets are replaced by "[redacted]" wherever they would appear. */
#ifndef PL_LOG_H
#define PL_LOG_H

enum pl_log_level { PL_LOG_DEBUG, PL_LOG_INFO, PL_LOG_WARN, PL_LOG_ERROR };

/* Set the lowest level written; parse "debug" / "info" / "warn" / "error" (-1 if unknown). */
void pl_log_set_level(enum pl_log_level level);
int pl_log_parse_level(const char *name);

/* Register a value that must never be printed (app secret, tokens). Copies it; up to 8. */
void pl_log_add_secret(const char *value);
void pl_log_clear_secrets(void);

/* Write one record. fields is a NULL-terminated list of key, value pairs (values may be NULL:
 * the pair is skipped); values are quoted when needed. msg is printf-style. Example:
 *   pl_log(PL_LOG_INFO, (const char *[]){"channel", id, "event", "reload", NULL}, "loaded %s", p);
 */
void pl_log(enum pl_log_level level, const char *const *fields, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define PL_FIELDS(...) ((const char *const[]){__VA_ARGS__, NULL})

#endif
