/* config.c - loads parley.json into struct pl_config: strict keys, `$NAME` from the environment,
 * paths resolved against the file's folder, one-line errors naming the key path.
 * Owns every string in the struct; nothing here keeps a reference to the JSON tree. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <jansson.h>

#define CONFIG_MAX_BYTES (1024 * 1024) /* a config file larger than this is a mistake */
#define KEYPATH_MAX      256
#define ECHO_MAX         80 /* values echoed in messages are cut to this many bytes */

/* Everything a validator needs to report an error. */
/* parley test and parley chat never talk to a provider or take webhooks: an unset $NAME is
 * not an error there. */
static int env_optional;

void pl_config_env_optional(int optional)
{
    env_optional = optional;
}

struct ctx {
    const char *file; /* names the config in messages */
    const char *dir;  /* relative paths are resolved against it */
    struct pl_error *err;
};

static int fail(struct ctx *c, const char *keypath, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "<file>: <keypath>: <problem>", or "<file>: <problem>" when keypath is NULL. */
static int fail(struct ctx *c, const char *keypath, const char *fmt, ...)
{
    char msg[PL_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (keypath != NULL)
        return pl_error_set(c->err, "config", "%s: %s: %s", c->file, keypath, msg);
    return pl_error_set(c->err, "config", "%s: %s", c->file, msg);
}

/* Copy s into buf for a message: control characters, quotes and backslashes escaped, cut at
 * ECHO_MAX bytes with "...". Keeps every message on one line. Returns buf. */
static const char *echo(const char *s, char *buf, size_t size)
{
    size_t n = 0;
    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        char piece[8];
        if (ch < 0x20 || ch == 0x7f)
            snprintf(piece, sizeof piece, "\\x%02x", ch);
        else if (ch == '"' || ch == '\\')
            snprintf(piece, sizeof piece, "\\%c", ch);
        else
            snprintf(piece, sizeof piece, "%c", ch);
        size_t len = strlen(piece);
        if (n + len + 4 > size || n >= ECHO_MAX) {
            snprintf(buf + n, size - n, "...");
            return buf;
        }
        memcpy(buf + n, piece, len);
        n += len;
    }
    buf[n] = '\0';
    return buf;
}

/* "parent.key" (or "key" at the top level) into buf, the key escaped for display. */
static const char *keypath(char *buf, size_t size, const char *parent, const char *key)
{
    size_t n = 0;
    if (parent != NULL && parent[0] != '\0') {
        n = strlen(parent);
        if (n > size / 2)
            n = size / 2;
        memmove(buf, parent, n);
        buf[n++] = '.';
    }
    echo(key, buf + n, size - n);
    return buf;
}

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
        return "integer";
    case JSON_REAL:
        return "real";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    case JSON_NULL:
        return "null";
    }
    return "unknown";
}

/* Every key of obj must be in known (NULL-terminated); the first stranger is an error naming
 * its path and, when one is within edit distance 2, the known key it was probably meant to be. */
static int check_keys(struct ctx *c, json_t *obj, const char *parent, const char *const *known)
{
    const char *key;
    json_t *value;
    json_object_foreach(obj, key, value)
    {
        int found = 0;
        for (const char *const *k = known; *k != NULL && !found; k++)
            found = strcmp(key, *k) == 0;
        if (found)
            continue;
        const char *best = pl_error_closest(key, known);
        char kp[KEYPATH_MAX];
        keypath(kp, sizeof kp, parent, key);
        if (best != NULL)
            return fail(c, kp, "unknown key (did you mean \"%s\"?)", best);
        return fail(c, kp, "unknown key");
    }
    return 0;
}

static int is_env_name(const char *s)
{
    if (!(*s == '_' || (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z')))
        return 0;
    for (s++; *s != '\0'; s++)
        if (!(*s == '_' || (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
              (*s >= '0' && *s <= '9')))
            return 0;
    return 1;
}

/* Apply the `$` rule to a raw string: "$NAME" is the environment variable, "$$x" the literal
 * "$x", anything else itself. *out borrows from raw or the environment; *var names the variable
 * when one was read (NULL otherwise). Never echoes the value: it may be a secret. */
static int expand(struct ctx *c, const char *kp, const char *raw, const char **out,
                  const char **var)
{
    *var = NULL;
    if (raw[0] != '$') {
        *out = raw;
        return 0;
    }
    if (raw[1] == '$') {
        *out = raw + 1;
        return 0;
    }
    if (!is_env_name(raw + 1))
        return fail(c, kp,
                    "a value starting with \"$\" must be $NAME (letters, digits, _) "
                    "or start with \"$$\" for a literal \"$\"");
    const char *v = getenv(raw + 1);
    if (v == NULL && env_optional) {
        v = "parley-test-placeholder"; /* parley test/chat: secrets are never used */
    } else if (v == NULL)
        return fail(c, kp, "environment variable %s is not set", raw + 1);
    *var = raw + 1;
    *out = v;
    return 0;
}

#define SHOWN_SIZE (ECHO_MAX * 4 + 32) /* shown()'s buffer: an echo, quotes or a variable */

/* A value of obj[key] for a message: "the value of $NAME" when it came from the environment
 * (it may be a secret put under the wrong key, so it is never shown), else the value itself,
 * escaped, and in quotes when quoted. Returns buf. */
static const char *shown(const json_t *obj, const char *key, const char *value, int quoted,
                         char *buf, size_t size)
{
    const char *raw = json_string_value(json_object_get(obj, key));
    if (raw != NULL && raw[0] == '$' && raw[1] != '$') {
        snprintf(buf, size, "the value of %s", raw);
        return buf;
    }
    if (!quoted)
        return echo(value, buf, size);
    buf[0] = '"';
    echo(value, buf + 1, size - 2);
    strcat(buf, "\"");
    return buf;
}

/* The string at obj[key] after the `$` rule, copied into *out (NULL when absent and optional).
 * Empty values are errors. Returns 0 or -1 with the error set. */
static int get_string(struct ctx *c, json_t *obj, const char *parent, const char *key, int required,
                      char **out)
{
    char kp[KEYPATH_MAX];
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    keypath(kp, sizeof kp, parent, key);
    if (v == NULL) {
        if (required)
            return fail(c, kp, "required key is missing");
        return 0;
    }
    if (!json_is_string(v))
        return fail(c, kp, "expected a string, got %s%s", type_name(v),
                    json_is_integer(v) ? " (put it in quotes)" : "");
    const char *s, *var;
    if (expand(c, kp, json_string_value(v), &s, &var) < 0)
        return -1;
    if (s[0] == '\0') {
        if (var != NULL)
            return fail(c, kp, "environment variable %s is empty", var);
        return fail(c, kp, "must not be empty");
    }
    *out = strdup(s);
    if (*out == NULL)
        return fail(c, kp, "out of memory");
    return 0;
}

/* Parse a whole decimal integer (optional sign, no spaces). Returns 0 or -1. */
static int parse_long(const char *s, long long *out)
{
    char *end;
    if (*s == '\0')
        return -1;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || s[0] == ' ' || s[0] == '\t')
        return -1;
    *out = v;
    return 0;
}

/* The integer at obj[key] (a JSON integer, or "$NAME" whose value is one) into *out, dflt when
 * absent; must lie in [min, max]. */
static int get_int(struct ctx *c, json_t *obj, const char *parent, const char *key, long min,
                   long max, long dflt, long *out)
{
    char kp[KEYPATH_MAX];
    json_t *v = json_object_get(obj, key);
    long long n;
    keypath(kp, sizeof kp, parent, key);
    if (v == NULL) {
        *out = dflt;
        return 0;
    }
    if (json_is_integer(v)) {
        n = json_integer_value(v);
    } else if (json_is_string(v) && json_string_value(v)[0] == '$' &&
               json_string_value(v)[1] != '$') {
        const char *s, *var;
        if (expand(c, kp, json_string_value(v), &s, &var) < 0)
            return -1;
        if (s[0] == '\0')
            return fail(c, kp, "environment variable %s is empty", var);
        if (parse_long(s, &n) < 0) /* the value is not shown: it may be a secret */
            return fail(c, kp, "environment variable %s is not an integer", var);
    } else {
        return fail(c, kp, "expected an integer, got %s", type_name(v));
    }
    if (n < min || n > max) {
        char digits[32], num[SHOWN_SIZE];
        snprintf(digits, sizeof digits, "%lld", n);
        shown(obj, key, digits, 0, num, sizeof num);
        if (max == LONG_MAX)
            return fail(c, kp, "%s is out of range (must be %ld or more)", num, min);
        return fail(c, kp, "%s is out of range (%ld..%ld)", num, min, max);
    }
    *out = (long)n;
    return 0;
}

/* dir + "/" + rel, or rel unchanged when absolute or when dir is "." (or empty). Leading "./"
 * of rel are dropped so the result reads clean. Returns malloc'd or NULL on OOM. */
static char *resolve(const char *dir, const char *rel)
{
    if (rel[0] == '/')
        return strdup(rel);
    while (rel[0] == '.' && rel[1] == '/') {
        rel += 2;
        while (rel[0] == '/')
            rel++;
    }
    if (rel[0] == '\0' || strcmp(rel, ".") == 0)
        return strdup(dir != NULL && dir[0] != '\0' ? dir : ".");
    if (dir == NULL || dir[0] == '\0' || strcmp(dir, ".") == 0)
        return strdup(rel);
    size_t dl = strlen(dir), rl = strlen(rel);
    int sep = dir[dl - 1] != '/';
    char *p = malloc(dl + sep + rl + 1);
    if (p == NULL)
        return NULL;
    memcpy(p, dir, dl);
    if (sep)
        p[dl] = '/';
    memcpy(p + dl + sep, rel, rl + 1);
    return p;
}

/* A path value: get_string, then resolved against the config's folder. */
static int get_path(struct ctx *c, json_t *obj, const char *parent, const char *key, int required,
                    const char *dflt, char **out)
{
    char *raw;
    if (get_string(c, obj, parent, key, required, &raw) < 0)
        return -1;
    if (raw == NULL && dflt == NULL) {
        *out = NULL;
        return 0;
    }
    *out = resolve(c->dir, raw != NULL ? raw : dflt);
    free(raw);
    if (*out == NULL) {
        char kp[KEYPATH_MAX];
        return fail(c, keypath(kp, sizeof kp, parent, key), "out of memory");
    }
    return 0;
}

/* The script must be a readable regular file now: a typo should stop startup, not the first
 * message. O_NONBLOCK so that a FIFO cannot hang us. */
static int check_readable_file(struct ctx *c, const char *kp, const json_t *obj, const char *key,
                               const char *path)
{
    char e[SHOWN_SIZE];
    struct stat st;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return fail(c, kp, "%s: %s", shown(obj, key, path, 0, e, sizeof e), strerror(errno));
    int rc = fstat(fd, &st);
    int saved = errno;
    close(fd);
    if (rc < 0)
        return fail(c, kp, "%s: %s", shown(obj, key, path, 0, e, sizeof e), strerror(saved));
    if (!S_ISREG(st.st_mode))
        return fail(c, kp, "%s: not a regular file", shown(obj, key, path, 0, e, sizeof e));
    return 0;
}

/* s is 1..max characters all in [0-9]. */
static int all_digits(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return 0;
    for (; *s != '\0'; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

/* [a-z]{2,3}(_[A-Z]{2})? */
static int is_language(const char *s)
{
    size_t n = 0;
    while (s[n] >= 'a' && s[n] <= 'z')
        n++;
    if (n < 2 || n > 3)
        return 0;
    s += n;
    if (*s == '\0')
        return 1;
    return s[0] == '_' && s[1] >= 'A' && s[1] <= 'Z' && s[2] >= 'A' && s[2] <= 'Z' && s[3] == '\0';
}

/* [a-z0-9_-]{1,64} */
static int is_channel_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return 0;
    for (; *s != '\0'; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
            return 0;
    return 1;
}

/* "host:port" with host an IPv4 address, "localhost" or a bracketed IPv6 address; the stored host
 * has no brackets. */
static int parse_listen(struct ctx *c, const json_t *root, const char *s, struct pl_config *cfg)
{
    char e[SHOWN_SIZE], host[INET6_ADDRSTRLEN + 1];
    const char *port, *hs;
    size_t hl;
    unsigned char addr[sizeof(struct in6_addr)];
    int v6 = 0;
    shown(root, "listen", s, 1, e, sizeof e);
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (rb == NULL || rb[1] != ':')
            return fail(c, "listen", "%s must be host:port, e.g. \"[::1]:8080\"", e);
        hs = s + 1;
        hl = (size_t)(rb - hs);
        port = rb + 2;
        v6 = 1;
    } else {
        const char *colon = strrchr(s, ':');
        if (colon == NULL)
            return fail(c, "listen", "%s must be host:port, e.g. \"127.0.0.1:8080\"", e);
        hs = s;
        hl = (size_t)(colon - s);
        port = colon + 1;
        if (memchr(s, ':', hl) != NULL)
            return fail(c, "listen", "%s: put an IPv6 address in brackets, e.g. \"[::1]:8080\"", e);
    }
    if (hl == 0)
        return fail(c, "listen", "%s has no host (use \"0.0.0.0:PORT\" for all interfaces)", e);
    if (hl >= sizeof host)
        return fail(c, "listen", "%s: host is not an IP address or \"localhost\"", e);
    memcpy(host, hs, hl);
    host[hl] = '\0';
    if (v6 ? inet_pton(AF_INET6, host, addr) != 1
           : strcmp(host, "localhost") != 0 && inet_pton(AF_INET, host, addr) != 1)
        return fail(c, "listen", "%s: host is not %s", e,
                    v6 ? "an IPv6 address" : "an IPv4 address or \"localhost\"");
    if (!all_digits(port, 5))
        return fail(c, "listen", "%s: port must be a number 0..65535", e);
    long p = strtol(port, NULL, 10);
    if (p > 65535)
        return fail(c, "listen", "%s: port %ld is out of range (0..65535)", e, p);
    cfg->listen_host = strdup(host);
    if (cfg->listen_host == NULL)
        return fail(c, "listen", "out of memory");
    cfg->listen_port = (int)p;
    return 0;
}

static const char *const top_keys[] = {"listen",       "state",         "sync",      "app_secret",
                                       "verify_token", "trigger_token", "log_level", "provider",
                                       "channels",     "queue_max",     NULL};
static const char *const provider_keys[] = {"kind",       "url", "token", "max_connections",
                                            "timeout_ms", NULL};
static const char *const channel_keys[] = {"phone_number_id", "script",    "templates",
                                           "language",        "waba_id",   "daily_limit",
                                           "cpu_ms",          "memory_mb", NULL};

/* An object at obj[key] into *out (borrowed); required or not. */
static int get_object(struct ctx *c, json_t *obj, const char *parent, const char *key, json_t **out)
{
    char kp[KEYPATH_MAX];
    json_t *v = json_object_get(obj, key);
    keypath(kp, sizeof kp, parent, key);
    if (v == NULL)
        return fail(c, kp, "required key is missing");
    if (!json_is_object(v))
        return fail(c, kp, "expected an object, got %s", type_name(v));
    *out = v;
    return 0;
}

static int parse_provider(struct ctx *c, json_t *root, struct pl_config *cfg)
{
    json_t *p;
    char *kind = NULL;
    int rc = -1;
    if (get_object(c, root, NULL, "provider", &p) < 0)
        return -1;
    if (check_keys(c, p, "provider", provider_keys) < 0)
        return -1;
    if (get_string(c, p, "provider", "kind", 1, &kind) < 0)
        goto out;
    if (strcmp(kind, "cloud-api") == 0) {
        cfg->provider.kind = PL_PROVIDER_CLOUD_API;
    } else if (strcmp(kind, "sandbox") == 0) {
        cfg->provider.kind = PL_PROVIDER_SANDBOX;
    } else {
        char e[SHOWN_SIZE];
        fail(c, "provider.kind", "%s is not \"cloud-api\" or \"sandbox\"",
             shown(p, "kind", kind, 1, e, sizeof e));
        goto out;
    }
    if (cfg->provider.kind == PL_PROVIDER_CLOUD_API) {
        if (get_string(c, p, "provider", "url", 1, &cfg->provider.url) < 0)
            goto out;
        char *u = cfg->provider.url;
        size_t skip = strncmp(u, "https://", 8) == 0 ? 8 : strncmp(u, "http://", 7) == 0 ? 7 : 0;
        if (skip == 0) {
            fail(c, "provider.url", "must start with http:// or https://");
            goto out;
        }
        for (const char *q = u; *q != '\0'; q++)
            if ((unsigned char)*q <= ' ' || *q == 0x7f) {
                fail(c, "provider.url", "must not contain spaces or control characters");
                goto out;
            }
        size_t n = strlen(u);
        while (n > skip && u[n - 1] == '/')
            u[--n] = '\0';
        if (n == skip) {
            fail(c, "provider.url", "has no host after the scheme");
            goto out;
        }
        if (get_string(c, p, "provider", "token", 1, &cfg->provider.token) < 0)
            goto out;
    } else {
        /* The sandbox needs neither: check the type only, so that a config switched to the
         * sandbox still loads without the cloud's environment variables. */
        const char *ignored[] = {"url", "token"};
        for (size_t i = 0; i < 2; i++) {
            json_t *v = json_object_get(p, ignored[i]);
            if (v != NULL && !json_is_string(v)) {
                char kp[KEYPATH_MAX];
                fail(c, keypath(kp, sizeof kp, "provider", ignored[i]), "expected a string, got %s",
                     type_name(v));
                goto out;
            }
        }
    }
    if (get_int(c, p, "provider", "max_connections", 1, 1024, 16, &cfg->provider.max_connections) <
        0)
        goto out;
    if (get_int(c, p, "provider", "timeout_ms", 100, 600000, 10000, &cfg->provider.timeout_ms) < 0)
        goto out;
    rc = 0;
out:
    free(kind);
    return rc;
}

static int parse_channel(struct ctx *c, const char *id, json_t *v, struct pl_channel_config *ch)
{
    char parent[KEYPATH_MAX], kp[KEYPATH_MAX], e[SHOWN_SIZE];
    keypath(parent, sizeof parent, "channels", id);
    if (!is_channel_id(id))
        return fail(c, parent, "channel id must be 1-64 characters of a-z, 0-9, _ and -");
    if (!json_is_object(v))
        return fail(c, parent, "expected an object, got %s", type_name(v));
    ch->id = strdup(id);
    if (ch->id == NULL)
        return fail(c, parent, "out of memory");
    if (check_keys(c, v, parent, channel_keys) < 0)
        return -1;
    if (get_string(c, v, parent, "phone_number_id", 1, &ch->phone_number_id) < 0)
        return -1;
    if (!all_digits(ch->phone_number_id, 64))
        return fail(c, keypath(kp, sizeof kp, parent, "phone_number_id"), "%s must be 1-64 digits",
                    shown(v, "phone_number_id", ch->phone_number_id, 1, e, sizeof e));
    if (get_path(c, v, parent, "script", 1, NULL, &ch->script) < 0)
        return -1;
    if (check_readable_file(c, keypath(kp, sizeof kp, parent, "script"), v, "script", ch->script) <
        0)
        return -1;
    if (get_path(c, v, parent, "templates", 0, NULL, &ch->templates) < 0)
        return -1;
    if (get_string(c, v, parent, "language", 0, &ch->language) < 0)
        return -1;
    if (ch->language == NULL && (ch->language = strdup("en")) == NULL)
        return fail(c, parent, "out of memory");
    if (!is_language(ch->language))
        return fail(c, keypath(kp, sizeof kp, parent, "language"),
                    "%s is not a language code like \"en\", \"ru\", \"en_US\" or \"pt_BR\"",
                    shown(v, "language", ch->language, 1, e, sizeof e));
    if (get_string(c, v, parent, "waba_id", 0, &ch->waba_id) < 0)
        return -1;
    if (ch->waba_id != NULL && !all_digits(ch->waba_id, 64))
        return fail(c, keypath(kp, sizeof kp, parent, "waba_id"), "%s must be 1-64 digits",
                    shown(v, "waba_id", ch->waba_id, 1, e, sizeof e));
    if (get_int(c, v, parent, "daily_limit", 0, LONG_MAX, 250, &ch->daily_limit) < 0)
        return -1;
    if (get_int(c, v, parent, "cpu_ms", 1, 60000, 200, &ch->cpu_ms) < 0)
        return -1;
    if (get_int(c, v, parent, "memory_mb", 1, 4096, 64, &ch->memory_mb) < 0)
        return -1;
    return 0;
}

static int parse_channels(struct ctx *c, json_t *root, struct pl_config *cfg)
{
    json_t *chans, *v;
    const char *id;
    if (get_object(c, root, NULL, "channels", &chans) < 0)
        return -1;
    size_t n = json_object_size(chans);
    if (n == 0)
        return fail(c, "channels", "at least one channel is required");
    cfg->channels = calloc(n, sizeof *cfg->channels);
    if (cfg->channels == NULL)
        return fail(c, "channels", "out of memory");
    /* jansson (>= 2.8) iterates objects in the order of the file: channels keep it. */
    json_object_foreach(chans, id, v)
    {
        struct pl_channel_config *ch = &cfg->channels[cfg->nchannels++];
        if (parse_channel(c, id, v, ch) < 0)
            return -1;
        for (size_t i = 0; i + 1 < cfg->nchannels; i++) {
            if (strcmp(cfg->channels[i].phone_number_id, ch->phone_number_id) == 0) {
                char parent[KEYPATH_MAX], kp[KEYPATH_MAX], e[SHOWN_SIZE];
                keypath(parent, sizeof parent, "channels", id);
                return fail(c, keypath(kp, sizeof kp, parent, "phone_number_id"),
                            "%s is already used by channel \"%s\"",
                            shown(v, "phone_number_id", ch->phone_number_id, 1, e, sizeof e),
                            cfg->channels[i].id);
            }
        }
    }
    return 0;
}

static int parse_root(struct ctx *c, json_t *root, struct pl_config *cfg)
{
    char *s = NULL;
    if (!json_is_object(root))
        return fail(c, NULL, "expected a JSON object at the top level, got %s", type_name(root));
    if (check_keys(c, root, NULL, top_keys) < 0)
        return -1;
    if (get_string(c, root, NULL, "listen", 0, &s) < 0)
        return -1;
    int rc = parse_listen(c, root, s != NULL ? s : "127.0.0.1:8080", cfg);
    free(s);
    if (rc < 0)
        return -1;
    if (get_path(c, root, NULL, "state", 0, "var/parley.db", &cfg->state) < 0)
        return -1;
    if (get_string(c, root, NULL, "sync", 0, &s) < 0)
        return -1;
    if (s != NULL && strcmp(s, "full") != 0 && strcmp(s, "normal") != 0) {
        char e[SHOWN_SIZE];
        rc = fail(c, "sync", "%s is not one of normal, full",
                  shown(root, "sync", s, 1, e, sizeof e));
        free(s);
        return rc;
    }
    cfg->sync_full = s != NULL && strcmp(s, "full") == 0;
    free(s);
    if (get_string(c, root, NULL, "app_secret", 1, &cfg->app_secret) < 0)
        return -1;
    if (get_string(c, root, NULL, "verify_token", 1, &cfg->verify_token) < 0)
        return -1;
    if (get_string(c, root, NULL, "trigger_token", 0, &cfg->trigger_token) < 0)
        return -1;
    if (get_int(c, root, NULL, "queue_max", 100, 10000000, 10000, &cfg->queue_max) < 0)
        return -1;
    if (get_string(c, root, NULL, "log_level", 0, &cfg->log_level) < 0)
        return -1;
    if (cfg->log_level == NULL && (cfg->log_level = strdup("info")) == NULL)
        return fail(c, "log_level", "out of memory");
    if (strcmp(cfg->log_level, "debug") != 0 && strcmp(cfg->log_level, "info") != 0 &&
        strcmp(cfg->log_level, "warn") != 0 && strcmp(cfg->log_level, "error") != 0) {
        char e[SHOWN_SIZE];
        return fail(c, "log_level", "%s is not one of debug, info, warn, error",
                    shown(root, "log_level", cfg->log_level, 1, e, sizeof e));
    }
    if (parse_provider(c, root, cfg) < 0)
        return -1;
    return parse_channels(c, root, cfg);
}

/* The folder of path: "." when it has none, "/" for a file at the root. Malloc'd or NULL. */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        return strdup(".");
    size_t n = (size_t)(slash - path);
    while (n > 0 && path[n - 1] == '/')
        n--;
    if (n == 0)
        return strdup("/");
    return strndup(path, n);
}

int pl_config_parse(const char *text, const char *path, const char *dir, struct pl_config *cfg,
                    struct pl_error *err)
{
    json_error_t jerr;
    json_t *root = NULL;
    int rc = -1;
    memset(cfg, 0, sizeof *cfg);
    if (path == NULL)
        path = "parley.json";
    cfg->path = strdup(path);
    cfg->dir = dir != NULL ? strdup(dir) : dir_of(path);
    struct ctx c = {.file = path, .dir = cfg->dir, .err = err};
    if (cfg->path == NULL || cfg->dir == NULL) {
        fail(&c, NULL, "out of memory");
        goto out;
    }
    if (text == NULL) {
        fail(&c, NULL, "no text to parse");
        goto out;
    }
    root = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        char e[sizeof jerr.text * 4 + 8];
        /* jansson quotes the token it stopped at. A string token may be a secret, so it is cut
         * (line and column still point at it), except after a duplicate key, where it is the
         * key; what remains is escaped to stay on one line. */
        char *near = strstr(jerr.text, " near '\"");
        if (near != NULL && strncmp(jerr.text, "duplicate object key", 20) != 0)
            *near = '\0';
        size_t n = 0;
        for (const char *q = jerr.text; *q != '\0' && n + 5 < sizeof e; q++) {
            unsigned char ch = (unsigned char)*q;
            n += (size_t)(ch < 0x20 || ch == 0x7f ? snprintf(e + n, sizeof e - n, "\\x%02x", ch)
                                                  : snprintf(e + n, sizeof e - n, "%c", ch));
        }
        e[n] = '\0';
        if (jerr.line > 0)
            pl_error_set(err, "config", "%s:%d:%d: %s", path, jerr.line, jerr.column, e);
        else
            pl_error_set(err, "config", "%s: %s", path, e);
        goto out;
    }
    rc = parse_root(&c, root, cfg);
out:
    json_decref(root);
    if (rc < 0)
        pl_config_free(cfg);
    return rc;
}

int pl_config_load(const char *path, struct pl_config *cfg, struct pl_error *err)
{
    char *text = NULL;
    size_t len = 0, cap = 0;
    int rc = -1;
    memset(cfg, 0, sizeof *cfg);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return pl_error_set(err, "config", "%s: cannot read: %s", path, strerror(errno));
    for (;;) {
        if (len + 4096 + 1 > cap) {
            size_t ncap = cap == 0 ? 8192 : cap * 2;
            char *t = realloc(text, ncap);
            if (t == NULL) {
                pl_error_set(err, "config", "%s: cannot read: out of memory", path);
                goto out;
            }
            text = t;
            cap = ncap;
        }
        size_t got = fread(text + len, 1, cap - len - 1, f);
        len += got;
        if (len > CONFIG_MAX_BYTES) {
            pl_error_set(err, "config", "%s: cannot read: larger than %d bytes", path,
                         CONFIG_MAX_BYTES);
            goto out;
        }
        if (got == 0) {
            if (ferror(f)) {
                pl_error_set(err, "config", "%s: cannot read: %s", path, strerror(errno));
                goto out;
            }
            break;
        }
    }
    text[len] = '\0';
    if (memchr(text, '\0', len) != NULL) {
        pl_error_set(err, "config", "%s: cannot read: the file contains a NUL byte", path);
        goto out;
    }
    rc = pl_config_parse(text, path, NULL, cfg, err);
out:
    fclose(f);
    free(text);
    return rc;
}

void pl_config_free(struct pl_config *cfg)
{
    if (cfg == NULL)
        return;
    free(cfg->path);
    free(cfg->dir);
    free(cfg->listen_host);
    free(cfg->state);
    free(cfg->app_secret);
    free(cfg->verify_token);
    free(cfg->trigger_token);
    free(cfg->log_level);
    free(cfg->provider.url);
    free(cfg->provider.token);
    for (size_t i = 0; i < cfg->nchannels; i++) {
        struct pl_channel_config *ch = &cfg->channels[i];
        free(ch->id);
        free(ch->phone_number_id);
        free(ch->script);
        free(ch->templates);
        free(ch->language);
        free(ch->waba_id);
    }
    free(cfg->channels);
    memset(cfg, 0, sizeof *cfg);
}

const struct pl_channel_config *pl_config_channel(const struct pl_config *cfg, const char *id)
{
    if (cfg == NULL || id == NULL)
        return NULL;
    for (size_t i = 0; i < cfg->nchannels; i++)
        if (cfg->channels[i].id != NULL && strcmp(cfg->channels[i].id, id) == 0)
            return &cfg->channels[i];
    return NULL;
}

const struct pl_channel_config *pl_config_channel_by_phone(const struct pl_config *cfg,
                                                           const char *phone_number_id)
{
    if (cfg == NULL || phone_number_id == NULL)
        return NULL;
    for (size_t i = 0; i < cfg->nchannels; i++)
        if (cfg->channels[i].phone_number_id != NULL &&
            strcmp(cfg->channels[i].phone_number_id, phone_number_id) == 0)
            return &cfg->channels[i];
    return NULL;
}

const char *pl_provider_kind_name(enum pl_provider_kind kind)
{
    switch (kind) {
    case PL_PROVIDER_CLOUD_API:
        return "cloud-api";
    case PL_PROVIDER_SANDBOX:
        return "sandbox";
    }
    return "unknown";
}
