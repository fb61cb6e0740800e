/* config.h - parley.json: the configuration contract of DESIGN.md, loaded strictly.
 * Unknown keys are errors, `$NAME` values come from the environment, paths are resolved against
 * the config file's folder, and every error is one line naming the file and the key path. */
#ifndef PL_CONFIG_H
#define PL_CONFIG_H

#include <stddef.h>

#include "error.h"

enum pl_provider_kind { PL_PROVIDER_CLOUD_API, PL_PROVIDER_SANDBOX };

struct pl_channel_config {
    char *id;              /* the key under "channels": [a-z0-9_-]{1,64} */
    char *phone_number_id; /* required, digits */
    char *script;          /* required; resolved path of an existing, readable file */
    char *templates;  /* optional; resolved path (may not exist yet: `templates sync` makes it) */
    char *language;   /* default template language; default "en" */
    char *waba_id;    /* optional; needed by `templates sync` */
    long daily_limit; /* business-initiated recipients per rolling 24 h; default 250 */
    long cpu_ms;      /* CPU budget per handler call; default 200 */
    long memory_mb;   /* memory cap of the channel's Lua state; default 64 */
};

struct pl_config {
    char *path;          /* the config file as given */
    char *dir;           /* its folder: relative paths are resolved against it */
    char *listen_host;   /* from "listen", default "127.0.0.1:8080" */
    int listen_port;     /* 0 lets the OS pick (tests) */
    char *state;         /* resolved; default "var/parley.db" */
    long queue_max;      /* events waiting in memory; past it they wait in the inbox only
                            (read back in order as the queue drains); default 10000 */
    int sync_full;       /* "sync": "full" fsyncs every commit (power-loss safe); "normal"
                            (default) survives a crash of the process, kill -9 included */
    char *app_secret;    /* required */
    char *verify_token;  /* required */
    char *trigger_token; /* optional: without it POST /channels/{id}/trigger answers 401 */
    char *log_level;     /* "debug", "info" (default), "warn", "error" */
    struct {
        enum pl_provider_kind kind;
        char *url;            /* cloud-api: required, no trailing slash kept */
        char *token;          /* cloud-api: required */
        long max_connections; /* concurrent sends; default 16 */
        long timeout_ms;      /* per request; default 10000 */
    } provider;
    struct pl_channel_config *channels;
    size_t nchannels;
};

/* Read and validate the file at path. Returns 0 with cfg filled, or -1 with err->code "config"
 * and err->msg one line: "<path>: <key.path>: <problem>" (or "<path>:<line>:<col>: <problem>"
 * for JSON syntax). On failure cfg holds nothing to free. */
int pl_config_load(const char *path, struct pl_config *cfg, struct pl_error *err);

/* The same from text already read; dir resolves relative paths; path names it in errors. */
int pl_config_parse(const char *text, const char *path, const char *dir, struct pl_config *cfg,
                    struct pl_error *err);

void pl_config_free(struct pl_config *cfg);

/* The channel with this id / phone_number_id, or NULL. Borrowed. */
const struct pl_channel_config *pl_config_channel(const struct pl_config *cfg, const char *id);
const struct pl_channel_config *pl_config_channel_by_phone(const struct pl_config *cfg,
                                                           const char *phone_number_id);

/* For parley test and parley chat, which use no secret: an unset `$NAME` loads as a
 * placeholder instead of failing. Process-wide. */
void pl_config_env_optional(int optional);

/* "cloud-api" / "sandbox". */
const char *pl_provider_kind_name(enum pl_provider_kind kind);

#endif
