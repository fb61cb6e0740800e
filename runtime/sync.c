/* sync.c - `parley templates sync`: pages through the Graph API's message_templates edge with
 * libcurl (blocking: a command, not the server), keeps every template exactly as Meta sent it,
 * checks them with the registry's own parser and writes the channel's registry file atomically.
 * For the sandbox provider it writes a sample registry instead. */
#include "sync.h"

#include <curl/curl.h>
#include <jansson.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rules.h"

#define PAGE_MAX_BYTES (32L * 1024 * 1024) /* one page of 100 templates is far smaller */
#define PAGES_MAX      1000                /* 100,000 templates: far past Meta's 6,000 */

/* ---- HTTP ---- */

struct body {
    char *data;
    size_t len;
    int too_big;
};

static size_t on_data(char *data, size_t size, size_t nmemb, void *ud)
{
    struct body *b = ud;
    size_t n = size * nmemb;
    char *grown;

    if (b->len + n > (size_t)PAGE_MAX_BYTES) {
        b->too_big = 1;
        return 0;
    }
    grown = realloc(b->data, b->len + n + 1);
    if (grown == NULL)
        return 0;
    memcpy(grown + b->len, data, n);
    b->data = grown;
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

/* The URL without its query (paging.next may carry an access token): for messages. */
static void url_for_humans(const char *url, char *out, size_t size)
{
    size_t n = strcspn(url, "?#");
    snprintf(out, size, "%.*s", (int)n, url);
}

/* "scheme://host[:port]" of url, lower-cased, into out; "" when url has none. */
static void origin_of(const char *url, char *out, size_t size)
{
    const char *p = strstr(url, "://");
    size_t n;

    out[0] = '\0';
    if (p == NULL)
        return;
    n = (size_t)(p + 3 - url) + strcspn(p + 3, "/?#");
    if (n + 1 > size)
        return;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)(url[i] >= 'A' && url[i] <= 'Z' ? url[i] - 'A' + 'a' : url[i]);
    out[n] = '\0';
}

/* GET url with the bearer token. Returns the HTTP status with the body in *b, or -1 with err. */
static long get(const struct pl_config *cfg, const char *url, struct body *b, struct pl_error *err)
{
    CURL *curl = curl_easy_init();
    struct curl_slist *headers = NULL;
    char auth[2048], where[1024], errbuf[CURL_ERROR_SIZE] = "";
    long http = -1;
    CURLcode rc;

    url_for_humans(url, where, sizeof where);
    if (curl == NULL)
        return pl_error_set(err, "sync", "GET %s: cannot start libcurl", where);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", cfg->provider.token);
    headers = curl_slist_append(headers, auth);
    headers = curl_slist_append(headers, "Accept: application/json");
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS,
                     cfg->provider.timeout_ms > 0 ? cfg->provider.timeout_ms : 10000L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "parley/" PL_VERSION);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    rc = curl_easy_perform(curl);
    if (rc == CURLE_OK)
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &http);
    else if (b->too_big)
        pl_error_set(err, "sync", "GET %s: the answer is larger than %ld MiB", where,
                     PAGE_MAX_BYTES / (1024 * 1024));
    else
        pl_error_set(err, "sync", "GET %s: %s", where,
                     errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc));
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    memset(auth, 0, sizeof auth);
    return http;
}

/* ---- the file ---- */

static int make_parents(const char *path, struct pl_error *err)
{
    char *dir = strdup(path), *p;
    int rc = 0;

    if (dir == NULL)
        return pl_error_set(err, "sync", "%s: out of memory", path);
    for (p = dir + 1; (p = strchr(p, '/')) != NULL; p++) {
        *p = '\0';
        if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
            rc = pl_error_set(err, "sync", "%s: cannot create folder %s: %s", path, dir,
                              strerror(errno));
            break;
        }
        *p = '/';
    }
    free(dir);
    return rc;
}

/* Write text to path through path.tmp.<pid> + fsync + rename: readers (the server reloads the
 * file when it changes) see the old file or the new one, never half of one. */
static int write_atomic(const char *path, const char *text, struct pl_error *err)
{
    size_t n = strlen(path) + 32, len = strlen(text);
    char *tmp = malloc(n);
    FILE *f = NULL;
    int rc = -1;

    if (tmp == NULL)
        return pl_error_set(err, "sync", "%s: out of memory", path);
    snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid());
    if (make_parents(path, err) != 0)
        goto out;
    f = fopen(tmp, "w");
    if (f == NULL) {
        pl_error_set(err, "sync", "%s: cannot write: %s", tmp, strerror(errno));
        goto out;
    }
    if (fwrite(text, 1, len, f) != len || fflush(f) != 0 || fsync(fileno(f)) != 0) {
        pl_error_set(err, "sync", "%s: cannot write: %s", tmp, strerror(errno));
        goto out;
    }
    if (fclose(f) != 0) {
        f = NULL;
        pl_error_set(err, "sync", "%s: cannot write: %s", tmp, strerror(errno));
        goto out;
    }
    f = NULL;
    if (rename(tmp, path) != 0) {
        pl_error_set(err, "sync", "%s: cannot replace it: %s", path, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (f != NULL)
        fclose(f);
    if (rc != 0)
        unlink(tmp);
    free(tmp);
    return rc;
}

/* ---- the sandbox's sample ---- */

static const char sample_ru[] =
    "{\"data\": ["
    "{\"name\": \"order_shipped\", \"language\": \"%s\", \"status\": \"APPROVED\","
    " \"category\": \"UTILITY\", \"id\": \"100000000000001\", \"components\": ["
    "{\"type\": \"HEADER\", \"format\": \"TEXT\", \"text\": \"Заказ {{1}}\","
    " \"example\": {\"header_text\": [\"A-17\"]}},"
    "{\"type\": \"BODY\", \"text\": \"Здравствуйте, {{1}}! Заказ {{2}} передан в доставку. "
    "Отследить посылку можно по кнопке ниже.\","
    " \"example\": {\"body_text\": [[\"Анна\", \"A-17\"]]}},"
    "{\"type\": \"FOOTER\", \"text\": \"Parley shop\"},"
    "{\"type\": \"BUTTONS\", \"buttons\": ["
    "{\"type\": \"URL\", \"text\": \"Отследить\", \"url\": \"https://example.com/track/{{1}}\","
    " \"example\": [\"https://example.com/track/RA123456789RU\"]},"
    "{\"type\": \"QUICK_REPLY\", \"text\": \"Спасибо\"}]}]},"
    "{\"name\": \"welcome_back\", \"language\": \"%s\", \"status\": \"APPROVED\","
    " \"category\": \"MARKETING\", \"parameter_format\": \"NAMED\", \"id\": \"100000000000002\","
    " \"components\": ["
    "{\"type\": \"BODY\", \"text\": \"Здравствуйте, {{first_name}}! Мы скучали: для вас скидка "
    "{{discount}} на следующий заказ.\", \"example\": {\"body_text_named_params\": ["
    "{\"param_name\": \"first_name\", \"example\": \"Анна\"},"
    "{\"param_name\": \"discount\", \"example\": \"10%%\"}]}},"
    "{\"type\": \"BUTTONS\", \"buttons\": [{\"type\": \"QUICK_REPLY\", \"text\": \"Хочу\"},"
    "{\"type\": \"QUICK_REPLY\", \"text\": \"Не сейчас\"}]}]}"
    "], \"paging\": {\"cursors\": {\"before\": \"MAZDZD\", \"after\": \"MQZDZD\"}}}";

static const char sample_en[] =
    "{\"data\": ["
    "{\"name\": \"order_shipped\", \"language\": \"%s\", \"status\": \"APPROVED\","
    " \"category\": \"UTILITY\", \"id\": \"100000000000001\", \"components\": ["
    "{\"type\": \"HEADER\", \"format\": \"TEXT\", \"text\": \"Order {{1}}\","
    " \"example\": {\"header_text\": [\"A-17\"]}},"
    "{\"type\": \"BODY\", \"text\": \"Hello {{1}}, your order {{2}} is on its way. "
    "Track the parcel with the button below.\","
    " \"example\": {\"body_text\": [[\"Ann\", \"A-17\"]]}},"
    "{\"type\": \"FOOTER\", \"text\": \"Parley shop\"},"
    "{\"type\": \"BUTTONS\", \"buttons\": ["
    "{\"type\": \"URL\", \"text\": \"Track\", \"url\": \"https://example.com/track/{{1}}\","
    " \"example\": [\"https://example.com/track/RA123456789RU\"]},"
    "{\"type\": \"QUICK_REPLY\", \"text\": \"Thanks\"}]}]},"
    "{\"name\": \"welcome_back\", \"language\": \"%s\", \"status\": \"APPROVED\","
    " \"category\": \"MARKETING\", \"parameter_format\": \"NAMED\", \"id\": \"100000000000002\","
    " \"components\": ["
    "{\"type\": \"BODY\", \"text\": \"Hello {{first_name}}, we missed you! Here is {{discount}} "
    "off your next order.\", \"example\": {\"body_text_named_params\": ["
    "{\"param_name\": \"first_name\", \"example\": \"Ann\"},"
    "{\"param_name\": \"discount\", \"example\": \"10%%\"}]}},"
    "{\"type\": \"BUTTONS\", \"buttons\": [{\"type\": \"QUICK_REPLY\", \"text\": \"Yes please\"},"
    "{\"type\": \"QUICK_REPLY\", \"text\": \"Not now\"}]}]}"
    "], \"paging\": {\"cursors\": {\"before\": \"MAZDZD\", \"after\": \"MQZDZD\"}}}";

/* The sample in the channel's language (Russian texts for ru*, English otherwise). */
static json_t *sandbox_templates(const struct pl_channel_config *ch, struct pl_error *err)
{
    const char *lang = ch->language != NULL ? ch->language : "en";
    const char *fmt = strncmp(lang, "ru", 2) == 0 ? sample_ru : sample_en;
    size_t n = strlen(fmt) + 2 * strlen(lang) + 1;
    char *text = malloc(n);
    json_error_t jerr;
    json_t *root;

    if (text == NULL) {
        pl_error_set(err, "sync", "out of memory");
        return NULL;
    }
    snprintf(text, n, fmt, lang, lang);
    root = json_loads(text, 0, &jerr);
    free(text);
    if (root == NULL)
        pl_error_set(err, "sync", "the sandbox's sample registry: %s", jerr.text);
    return root;
}

/* ---- the provider ---- */

/* Every page, from {url}/{waba_id}/message_templates?limit=100 to the last paging.next, its
 * data[] appended to all. Returns 0 or -1 with err. */
static int fetch_all(const struct pl_config *cfg, const struct pl_channel_config *ch, json_t *all,
                     size_t *pages, struct pl_error *err)
{
    char origin[512], next_origin[512], where[1024];
    char *url = NULL, *prev = NULL;
    size_t n = strlen(cfg->provider.url) + strlen(ch->waba_id) + 64;
    int rc = -1;

    url = malloc(n);
    if (url == NULL)
        return pl_error_set(err, "sync", "out of memory");
    snprintf(url, n, "%s/%s/message_templates?limit=100", cfg->provider.url, ch->waba_id);
    origin_of(cfg->provider.url, origin, sizeof origin);
    for (*pages = 0; url != NULL; (*pages)++) {
        struct body b = {NULL, 0, 0};
        json_error_t jerr;
        json_t *root, *data, *e, *next;
        long http;

        url_for_humans(url, where, sizeof where);
        if (*pages >= PAGES_MAX) {
            pl_error_set(err, "sync", "GET %s: more than %d pages; stopping", where, PAGES_MAX);
            goto out;
        }
        http = get(cfg, url, &b, err);
        if (http < 0) {
            free(b.data);
            goto out;
        }
        root = b.data != NULL ? json_loadb(b.data, b.len, 0, &jerr) : NULL;
        free(b.data);
        e = json_object_get(root, "error");
        if (http != 200 || json_is_object(e)) {
            const char *msg = json_string_value(json_object_get(e, "message"));
            json_int_t code = json_integer_value(json_object_get(e, "code"));
            if (msg != NULL)
                pl_error_set(err, "sync", "GET %s: HTTP %ld: %s (code %lld)", where, http, msg,
                             (long long)code);
            else
                pl_error_set(err, "sync", "GET %s: HTTP %ld%s", where, http,
                             root == NULL ? " (the answer is not JSON)" : "");
            json_decref(root);
            goto out;
        }
        data = json_object_get(root, "data");
        if (!json_is_array(data)) {
            pl_error_set(err, "sync", "GET %s: the answer has no data array%s", where,
                         root == NULL ? " (it is not JSON)" : "");
            json_decref(root);
            goto out;
        }
        if (json_array_extend(all, data) != 0) {
            pl_error_set(err, "sync", "out of memory");
            json_decref(root);
            goto out;
        }
        next = json_object_get(json_object_get(root, "paging"), "next");
        free(prev);
        prev = url;
        url = NULL;
        if (json_is_string(next) && json_string_length(next) > 0) {
            const char *nv = json_string_value(next);
            origin_of(nv, next_origin, sizeof next_origin);
            if (strcmp(origin, next_origin) != 0) {
                /* the bearer token goes only where provider.url points */
                url_for_humans(nv, where, sizeof where);
                pl_error_set(err, "sync",
                             "paging.next points to %s, not to the provider (%s); not following "
                             "it with the token",
                             where, origin);
                json_decref(root);
                goto out;
            }
            if (strcmp(nv, prev) == 0) {
                pl_error_set(err, "sync", "GET %s: paging.next is the page itself; stopping",
                             where);
                json_decref(root);
                goto out;
            }
            url = strdup(nv);
            if (url == NULL) {
                pl_error_set(err, "sync", "out of memory");
                json_decref(root);
                goto out;
            }
        }
        json_decref(root);
    }
    rc = 0;
out:
    free(url);
    free(prev);
    return rc;
}

int pl_templates_sync(const struct pl_config *cfg, const struct pl_channel_config *ch,
                      struct pl_sync_result *r, struct pl_error *err)
{
    const struct pl_limits *lim = pl_rules_limits(pl_provider_kind_name(cfg->provider.kind));
    json_t *all = NULL, *root = NULL;
    struct pl_templates *t;
    struct pl_error perr;
    char *text = NULL;
    int rc = -1;

    memset(r, 0, sizeof *r);
    if (ch->templates == NULL)
        return pl_error_set(err, "sync",
                            "channel %s has no \"templates\" path in %s; add one, e.g. "
                            "\"templates\": \"templates/%s.json\"",
                            ch->id, cfg->path, ch->id);
    if (cfg->provider.kind == PL_PROVIDER_SANDBOX) {
        root = sandbox_templates(ch, err);
        if (root == NULL)
            return -1;
    } else {
        if (ch->waba_id == NULL)
            return pl_error_set(err, "sync",
                                "channel %s has no waba_id (its WhatsApp Business Account id) "
                                "in %s; templates sync needs it",
                                ch->id, cfg->path);
        all = json_array();
        if (all == NULL)
            return pl_error_set(err, "sync", "out of memory");
        if (fetch_all(cfg, ch, all, &r->pages, err) != 0)
            goto out;
        root = json_pack("{s:O}", "data", all);
        if (root == NULL) {
            pl_error_set(err, "sync", "out of memory");
            goto out;
        }
    }
    r->templates = json_array_size(json_object_get(root, "data"));
    text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (text == NULL) {
        pl_error_set(err, "sync", "out of memory");
        goto out;
    }
    /* the same checks `parley check` and the server apply when they load the file */
    t = pl_templates_parse(text, strlen(text), ch->templates, lim, &r->problems, &r->nproblems,
                           &perr);
    if (t == NULL) {
        pl_error_set(err, "sync", "%s", perr.msg);
        goto out;
    }
    pl_templates_free(t);
    if (write_atomic(ch->templates, text, err) != 0)
        goto out;
    rc = 0;
out:
    if (rc != 0) {
        free(r->problems);
        r->problems = NULL;
        r->nproblems = 0;
    }
    free(text);
    json_decref(root);
    json_decref(all);
    return rc;
}
