/* outbound.c - the provider's dialect for sends and the sender. Builds Cloud API request bodies
 * from checked messages, and delivers queued messages: one request at a time per contact (so a
 * contact's messages arrive in order), a bounded number in flight overall, retries with
 * exponential backoff and jitter for transient failures, none for permanent ones. */
#include "outbound.h"

#include <curl/curl.h>
#include <jansson.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "log.h"
#include "heap.h"
#include "lanes.h"
#include "map.h"
#include "metrics.h"
#include "sandbox.h"

#define ERR_BODY_MAX (64 * 1024)

/* ---- the request body ---- */

/* Every reply's body is written straight into one growing buffer (json.h's writer), in the key
 * order Cloud API's documentation shows, with no tree built and freed. The strings come checked
 * by the rules (valid UTF-8). jw_* add the separators and keys of this file's documents. */
static void jw_sep(struct pl_jw *w)
{
    if (w->comma)
        pl_jw_raw(w, ",", 1);
    w->comma = 0;
}

static void jw_quoted(struct pl_jw *w, const char *s)
{
    pl_jw_quoted(w, s, strlen(s));
}

/* "key": (the value follows) */
static void jw_key(struct pl_jw *w, const char *key)
{
    char buf[32];
    size_t n = strlen(key); /* always one of this file's literals: nothing to escape */

    jw_sep(w);
    if (n + 3 > sizeof buf) {
        pl_jw_raw(w, "\"", 1);
        pl_jw_raw(w, key, n);
        pl_jw_raw(w, "\":", 2);
        return;
    }
    buf[0] = '"'; /* one append: every message has about 16 keys */
    memcpy(buf + 1, key, n);
    buf[n + 1] = '"';
    buf[n + 2] = ':';
    pl_jw_raw(w, buf, n + 3);
}

static void jw_str(struct pl_jw *w, const char *v)
{
    jw_sep(w);
    jw_quoted(w, v);
    w->comma = 1;
}

static void jw_kv(struct pl_jw *w, const char *key, const char *v)
{
    jw_key(w, key);
    jw_str(w, v);
}

/* '{' or '[', after a key or as an array's element */
static void jw_open(struct pl_jw *w, char c)
{
    jw_sep(w);
    pl_jw_raw(w, &c, 1);
}

static void jw_close(struct pl_jw *w, char c)
{
    pl_jw_raw(w, &c, 1);
    w->comma = 1;
}

/* "key":{"text":v} */
static void jw_text_obj(struct pl_jw *w, const char *key, const char *text)
{
    jw_key(w, key);
    jw_open(w, '{');
    jw_kv(w, "text", text);
    jw_close(w, '}');
}

static const char *media_name(enum pl_media_kind k)
{
    return k == PL_MEDIA_DOCUMENT ? "document" : "image";
}

/* "<kind>":{"link":…,"caption":…,"filename":…} */
static void jw_media(struct pl_jw *w, const struct pl_media *media, int with_caption,
                     const char *fallback)
{
    const char *caption = media->caption != NULL ? media->caption : fallback;
    jw_key(w, media_name(media->kind));
    jw_open(w, '{');
    jw_kv(w, "link", media->link != NULL ? media->link : "");
    if (with_caption && caption != NULL)
        jw_kv(w, "caption", caption);
    if (media->kind == PL_MEDIA_DOCUMENT && media->filename != NULL)
        jw_kv(w, "filename", media->filename);
    jw_close(w, '}');
}

/* The interactive object's header: text, or the media when the message has both media and
 * buttons. */
static void jw_header(struct pl_jw *w, const struct pl_message *m)
{
    if (m->media.kind == PL_MEDIA_NONE && m->header == NULL)
        return;
    jw_key(w, "header");
    jw_open(w, '{');
    if (m->media.kind != PL_MEDIA_NONE) {
        jw_kv(w, "type", media_name(m->media.kind));
        jw_media(w, &m->media, 0, NULL);
    } else {
        jw_kv(w, "type", "text");
        jw_kv(w, "text", m->header);
    }
    jw_close(w, '}');
}

static void jw_buttons(struct pl_jw *w, const struct pl_message *m)
{
    jw_key(w, "buttons");
    jw_open(w, '[');
    for (size_t i = 0; i < m->nbuttons; i++) {
        const struct pl_button *b = &m->buttons[i];
        jw_open(w, '{');
        jw_kv(w, "type", "reply");
        jw_key(w, "reply");
        jw_open(w, '{');
        jw_kv(w, "id", b->id != NULL ? b->id : b->title);
        jw_kv(w, "title", b->title);
        jw_close(w, '}');
        jw_close(w, '}');
    }
    jw_close(w, ']');
}

static void jw_list(struct pl_jw *w, const struct pl_list *l)
{
    jw_kv(w, "button", l->button);
    jw_key(w, "sections");
    jw_open(w, '[');
    for (size_t i = 0; i < l->nsections; i++) {
        const struct pl_list_section *s = &l->sections[i];
        jw_open(w, '{');
        if (s->title != NULL)
            jw_kv(w, "title", s->title);
        jw_key(w, "rows");
        jw_open(w, '[');
        for (size_t r = 0; r < s->nrows; r++) {
            jw_open(w, '{');
            jw_kv(w, "id", s->rows[r].id);
            jw_kv(w, "title", s->rows[r].title);
            if (s->rows[r].description != NULL)
                jw_kv(w, "description", s->rows[r].description);
            jw_close(w, '}');
        }
        jw_close(w, ']');
        jw_close(w, '}');
    }
    jw_close(w, ']');
}

/* URL and call buttons (no quick replies). One URL button is Cloud API's cta_url; anything
 * with a call button only the sandbox carries, as Parley's "cta" extension. */
static int single_url(const struct pl_message *m)
{
    return m->nbuttons == 1 && m->buttons[0].kind == PL_BUTTON_URL;
}

static void jw_cta(struct pl_jw *w, const struct pl_limits *lim, const struct pl_message *m)
{
    if (single_url(m)) {
        jw_kv(w, "name", "cta_url");
        jw_key(w, "parameters");
        jw_open(w, '{');
        jw_kv(w, "display_text", m->buttons[0].title);
        jw_kv(w, "url", m->buttons[0].url);
        jw_close(w, '}');
        return;
    }
    jw_kv(w, "name", "cta");
    jw_key(w, "buttons");
    jw_open(w, '[');
    for (size_t i = 0; i < m->nbuttons; i++) {
        const struct pl_button *b = &m->buttons[i];
        jw_open(w, '{');
        if (b->kind == PL_BUTTON_URL) {
            jw_kv(w, "type", "url");
            jw_kv(w, "display_text", b->title);
            jw_kv(w, "url", b->url);
        } else {
            char phone[32];
            if (pl_rules_normalize_phone(lim, b->phone, phone, sizeof phone) != 0)
                snprintf(phone, sizeof phone, "%s", b->phone); /* the rules passed it */
            jw_kv(w, "type", "call");
            jw_kv(w, "display_text", b->title);
            jw_kv(w, "phone_number", phone);
        }
        jw_close(w, '}');
    }
    jw_close(w, ']');
}

/* The envelope's key for the recipient: a business-scoped user id ("US.1349…") goes in
 * `recipient`, a phone-number wa_id in `to`. */
static const char *recipient_key(const char *to)
{
    return strchr(to, '.') != NULL ? "recipient" : "to";
}

char *pl_outbound_message_json(const struct pl_limits *lim, const struct pl_message *m,
                               const char *to, const char **kind, struct pl_error *err)
{
    struct pl_jw w = {0};
    int has_reply = m->nbuttons > 0 && m->buttons[0].kind == PL_BUTTON_REPLY;
    const char *body = m->text != NULL ? m->text : m->media.caption;
    int interactive = m->nbuttons > 0 || m->list != NULL;

    if (interactive)
        *kind = "interactive";
    else if (m->media.kind != PL_MEDIA_NONE)
        *kind = media_name(m->media.kind);
    else
        *kind = "text";
    jw_open(&w, '{');
    jw_kv(&w, "messaging_product", "whatsapp");
    jw_kv(&w, "recipient_type", "individual");
    jw_kv(&w, recipient_key(to), to);
    jw_kv(&w, "type", *kind);
    if (interactive) {
        jw_key(&w, "interactive");
        jw_open(&w, '{');
        jw_kv(&w, "type",
              m->list != NULL ? "list"
              : has_reply     ? "button"
              : single_url(m) ? "cta_url"
                              : "cta");
        jw_header(&w, m);
        if (body != NULL)
            jw_text_obj(&w, "body", body);
        if (m->footer != NULL)
            jw_text_obj(&w, "footer", m->footer);
        jw_key(&w, "action");
        jw_open(&w, '{');
        if (m->list != NULL)
            jw_list(&w, m->list);
        else if (has_reply)
            jw_buttons(&w, m);
        else
            jw_cta(&w, lim, m);
        jw_close(&w, '}');
        jw_close(&w, '}');
    } else if (m->media.kind != PL_MEDIA_NONE) {
        jw_media(&w, &m->media, 1, m->text);
    } else if (m->text != NULL) {
        jw_key(&w, "text");
        jw_open(&w, '{');
        jw_kv(&w, "body", m->text);
        if (m->preview_url) {
            jw_key(&w, "preview_url");
            pl_jw_raw(&w, "true", 4);
            w.comma = 1;
        }
        jw_close(&w, '}');
    } else { /* the rules let no such message through */
        free(w.buf);
        pl_error_set(err, "text_empty", "a text message needs a text");
        return NULL;
    }
    jw_close(&w, '}');
    if (w.oom) {
        free(w.buf);
        pl_error_set(err, "script_memory", "out of memory building the message");
        return NULL;
    }
    return w.buf;
}

/* ---- the sender ---- */

struct cq;

struct msg {
    struct msg *next; /* the next message to the same contact */
    struct cq *q;     /* its contact's queue */
    char *local_id, *channel, *phone_number_id, *contact, *kind, *body;
    int attempts;
    long long created_ms, due_ms;
    CURL *easy; /* while in flight */
    char *resp;
    size_t resp_len;
    char errbuf[CURL_ERROR_SIZE];
};

struct pl_outbound {
    enum pl_provider_kind kind;
    const struct pl_limits *lim; /* the retry waits and the maximum age of a message */
    char *url, *auth;
    long max_connections, timeout_ms;
    CURLM *multi;
    struct curl_slist *headers;       /* the same for every request */
    struct curl_slist *proxy_headers; /* the user agent, for a proxy's CONNECT */
    /* Finished transfers' handles, kept for the next ones (at most max_connections): a handle
     * set up once keeps its buffers and settings, and a new one per message cost more than the
     * request itself. */
    CURL **idle;
    size_t nidle;
    pl_delivery_fn on_done;
    void *ud;
    /* One FIFO per (channel, contact): only its head may be in flight, so a contact's messages
     * go out in order. A queue is in at most one of: its channel's ready list (its head may
     * start now), the waiting heap (its head waits for a retry time), or neither (its head is
     * in flight). The waiting heap is keyed on the head's retry time, which does not change
     * while it waits, and has room for every queue (reserved as each queue is made), so that
     * putting a queue in cannot fail: during a provider outage every contact with a message
     * waits, and the next due is found at once however many they are. */
    struct pl_map *queues; /* "channel\x1fcontact" -> struct cq */
    size_t nqueues;
    struct pl_heap waiting; /* of struct cq, by head->due_ms */
    /* Each channel's lane; which one starts a transfer next is lanes.c's (see lanes.h): the
     * channels take turns, and a quarter of the connections stays free for channels with
     * nothing in flight once there are several. */
    struct lane *lanes; /* every channel seen since start */
    struct pl_lanes sched;
    size_t nchannels; /* configured */
    size_t pending;
    unsigned rng;
    pl_sink_fn sink;
    void *sink_ud;
};

struct lane {
    struct pl_lane t;  /* t.ready: the first of its ready queues (struct cq) */
    struct lane *next; /* in o->lanes */
    struct cq *ready_tail;
    /* The channel's messages URL, parsed once (libcurl would parse the text again for every
     * request), and the phone number it was made for: a reload may give the channel another. */
    CURLU *url;
    char *url_for;
    char channel[];
};

struct cq {
    struct cq *next; /* in its lane's ready list */
    struct lane *lane;
    struct msg *head, *tail;
    char key[];
};

static struct lane *lane_at(struct pl_lane *t)
{
    return (struct lane *)((char *)t - offsetof(struct lane, t));
}

static void set_several(struct pl_outbound *o)
{
    pl_lanes_set_several(&o->sched,
                         o->nchannels > 1 || (o->lanes != NULL && o->lanes->next != NULL));
}

/* The lane of a channel, made on its first message. */
static struct lane *lane_of(struct pl_outbound *o, const char *channel)
{
    struct lane *l;
    size_t n = strlen(channel);

    for (l = o->lanes; l != NULL; l = l->next)
        if (strcmp(l->channel, channel) == 0)
            return l;
    l = calloc(1, sizeof *l + n + 1);
    if (l == NULL)
        return NULL;
    memcpy(l->channel, channel, n + 1);
    l->next = o->lanes;
    o->lanes = l;
    set_several(o);
    return l;
}

static void push_ready(struct pl_outbound *o, struct cq *q)
{
    struct lane *l = q->lane;
    q->next = NULL;
    if (l->ready_tail != NULL)
        l->ready_tail->next = q;
    else
        l->t.ready = q;
    l->ready_tail = q;
    pl_lanes_schedule(&o->sched, &l->t);
}

/* The next ready queue, from the lane whose turn it is and that may start a transfer (the lane
 * leaves the turns; the caller schedules it again). NULL when none may start one. */
static struct cq *pop_ready(struct pl_outbound *o)
{
    struct pl_lane *t = pl_lanes_next(&o->sched);
    if (t == NULL)
        return NULL;
    struct lane *l = lane_at(t);
    struct cq *q = l->t.ready;
    l->t.ready = q->next;
    if (l->t.ready == NULL)
        l->ready_tail = NULL;
    q->next = NULL;
    return q;
}

static void push_waiting(struct pl_outbound *o, struct cq *q)
{
    (void)pl_heap_push(&o->waiting, q->head->due_ms, q); /* room reserved: cannot fail */
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void msg_free(struct msg *m)
{
    if (m == NULL)
        return;
    free(m->local_id);
    free(m->channel);
    free(m->phone_number_id);
    free(m->contact);
    free(m->kind);
    free(m->body);
    free(m->resp);
    free(m);
}

static struct pl_outbound *freeing; /* the sender pl_outbound_free is freeing (for free_queue) */

static void free_queue(void *p)
{
    struct cq *q = p;
    while (q->head != NULL) {
        struct msg *m = q->head;
        q->head = m->next;
        if (m->easy != NULL) {
            curl_multi_remove_handle(freeing->multi, m->easy);
            curl_easy_cleanup(m->easy);
        }
        msg_free(m);
    }
    free(q);
}

struct pl_outbound *pl_outbound_new(const struct pl_config *cfg, pl_delivery_fn on_done, void *ud,
                                    struct pl_error *err)
{
    struct pl_outbound *o = calloc(1, sizeof *o);

    if (o == NULL) {
        pl_error_set(err, "io", "out of memory");
        return NULL;
    }
    o->kind = cfg->provider.kind;
    o->lim = pl_rules_limits(pl_provider_kind_name(o->kind));
    o->max_connections = cfg->provider.max_connections > 0 ? cfg->provider.max_connections : 16;
    o->timeout_ms = cfg->provider.timeout_ms > 0 ? cfg->provider.timeout_ms : 10000;
    o->nchannels = cfg->nchannels;
    pl_lanes_init(&o->sched, o->max_connections, o->kind == PL_PROVIDER_SANDBOX);
    set_several(o);
    o->on_done = on_done;
    o->ud = ud;
    o->rng = (unsigned)now_ms() ^ 0x9e3779b9u;
    o->multi = curl_multi_init();
    o->queues = pl_map_new();
    if (o->lim == NULL) {
        pl_error_set(err, "config", "provider.kind %s has no limits table",
                     pl_provider_kind_name(o->kind));
        pl_outbound_free(o);
        return NULL;
    }
    if (o->multi == NULL || o->queues == NULL) {
        pl_error_set(err, "io", "curl_multi_init failed");
        pl_outbound_free(o);
        return NULL;
    }
    if (o->kind == PL_PROVIDER_CLOUD_API) {
        size_t n = strlen(cfg->provider.token) + 32;
        o->url = strdup(cfg->provider.url);
        o->auth = malloc(n);
        if (o->url == NULL || o->auth == NULL) {
            pl_error_set(err, "io", "out of memory");
            pl_outbound_free(o);
            return NULL;
        }
        snprintf(o->auth, n, "Authorization: Bearer %s", cfg->provider.token);
        /* every request's headers; the user agent is one of them because, as
         * CURLOPT_USERAGENT, libcurl would format its line again for every request */
        const char *lines[] = {"Content-Type: application/json", "User-Agent: parley/" PL_VERSION,
                               o->auth};
        int headers_ok = 1;
        o->proxy_headers = curl_slist_append(NULL, lines[1]); /* NULL: the CONNECT goes without */
        for (size_t i = 0; i < sizeof lines / sizeof lines[0] && headers_ok; i++) {
            struct curl_slist *grown = curl_slist_append(o->headers, lines[i]);
            headers_ok = grown != NULL;
            if (headers_ok)
                o->headers = grown;
        }
        o->idle = calloc((size_t)o->max_connections, sizeof *o->idle);
        if (!headers_ok || o->idle == NULL) {
            pl_error_set(err, "io", "out of memory");
            pl_outbound_free(o);
            return NULL;
        }
        curl_multi_setopt(o->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, o->max_connections);
        curl_multi_setopt(o->multi, CURLMOPT_MAX_HOST_CONNECTIONS, o->max_connections);
    }
    return o;
}

void pl_outbound_free(struct pl_outbound *o)
{
    if (o == NULL)
        return;
    freeing = o;
    if (o->queues != NULL)
        pl_map_free(o->queues, free_queue);
    if (o->multi != NULL)
        curl_multi_cleanup(o->multi);
    for (size_t i = 0; i < o->nidle; i++)
        curl_easy_cleanup(o->idle[i]);
    free(o->idle);
    pl_heap_free(&o->waiting);
    while (o->lanes != NULL) {
        struct lane *l = o->lanes;
        o->lanes = l->next;
        curl_url_cleanup(l->url);
        free(l->url_for);
        free(l);
    }
    curl_slist_free_all(o->headers); /* holds a copy of the token */
    curl_slist_free_all(o->proxy_headers);
    if (o->auth != NULL)
        memset(o->auth, 0, strlen(o->auth));
    free(o->auth);
    free(o->url);
    free(o);
}

int pl_outbound_enqueue(struct pl_outbound *o, const char *local_id, const char *channel,
                        const char *phone_number_id, const char *contact, const char *kind,
                        const char *body, long long created_at)
{
    struct msg *m = calloc(1, sizeof *m);
    long long age_s = created_at > 0 ? (long long)time(NULL) - created_at : 0;

    if (m == NULL)
        return -1;
    m->local_id = strdup(local_id);
    m->channel = strdup(channel);
    m->phone_number_id = strdup(phone_number_id);
    m->contact = strdup(contact);
    m->kind = strdup(kind);
    m->body = strdup(body);
    if (!m->local_id || !m->channel || !m->phone_number_id || !m->contact || !m->kind || !m->body) {
        msg_free(m);
        return -1;
    }
    m->due_ms = now_ms();
    /* the age is kept on the monotonic clock, counted from the commit (which may be older than
     * this process); a creation time in the future counts as now */
    m->created_ms = m->due_ms - (age_s > 0 ? age_s * 1000 : 0);
    char key[600];
    snprintf(key, sizeof key, "%s\x1f%s", channel, contact);
    struct cq *q = pl_map_get(o->queues, key);
    if (q == NULL) {
        size_t klen = strlen(key) + 1;
        struct lane *l = lane_of(o, channel);
        q = l != NULL && pl_heap_reserve(&o->waiting, o->nqueues + 1) == 0
                ? calloc(1, sizeof *q + klen)
                : NULL;
        if (q == NULL || pl_map_set(o->queues, key, q, NULL) != 0) {
            free(q);
            msg_free(m);
            return -1;
        }
        q->lane = l;
        memcpy(q->key, key, klen);
        o->nqueues++;
    }
    m->q = q;
    if (q->tail != NULL)
        q->tail->next = m;
    else
        q->head = m;
    q->tail = m;
    if (q->head == m)
        push_ready(o, q); /* the contact had nothing pending: it may go now */
    o->pending++;
    return 0;
}

/* Take m (its queue's head) out; the queue goes back to ready for its next message, or away. */
static void unlink_msg(struct pl_outbound *o, struct msg *m)
{
    struct cq *q = m->q;
    q->head = m->next;
    if (q->head == NULL) {
        q->tail = NULL;
        pl_map_del(o->queues, q->key);
        free(q);
        o->nqueues--;
    } else {
        push_ready(o, q);
    }
    m->next = NULL;
    m->q = NULL;
    o->pending--;
}

static long long backoff_ms(struct pl_outbound *o, struct msg *m, enum pl_retry how)
{
    long long ms = pl_rules_retry_wait_ms(o->lim, how, m->attempts);
    if (how == PL_RETRY_RECIPIENT) /* this contact's queue only, not jittered */
        return ms;
    o->rng = o->rng * 1103515245u + 12345u;
    return ms / 2 + (long long)((o->rng >> 8) % (unsigned)(ms / 2 + 1)); /* jitter: 50-100% */
}

static void finish(struct pl_outbound *o, struct msg *m, const char *wamid, long code,
                   const char *title, const char *details)
{
    struct pl_delivery d = {
        .local_id = m->local_id,
        .channel = m->channel,
        .contact = m->contact,
        .wamid = wamid,
        .failed = wamid == NULL,
        .code = code,
        .title = title,
        .details = details,
    };
    unlink_msg(o, m);
    o->on_done(o->ud, &d);
    msg_free(m);
}

/* Handle a provider answer (HTTP status + body). */
static void handle_answer(struct pl_outbound *o, struct msg *m, long http, const char *body,
                          size_t len, const char *transport_error)
{
    json_t *root = body != NULL ? pl_json_parse_scratch(body, len, 0, NULL) : NULL;
    json_t *e = json_object_get(root, "error");
    long code = -1;
    const char *title = transport_error, *details = NULL;
    char labels[256];

    if (http == 200) {
        const char *wamid = json_string_value(
            json_object_get(json_array_get(json_object_get(root, "messages"), 0), "id"));
        if (wamid != NULL) {
            if (o->sink != NULL)
                o->sink(o->sink_ud, m->channel, m->contact, m->local_id, wamid, m->body);
            snprintf(labels, sizeof labels, "channel=\"%s\",type=\"%s\"", m->channel, m->kind);
            pl_metrics_add("parley_messages_out_total", labels, 1);
            finish(o, m, wamid, 0, NULL, NULL);
            pl_json_scratch_release(root);
            return;
        }
        title = "the provider answered 200 without a message id";
    }
    if (json_is_object(e)) {
        code = (long)json_integer_value(json_object_get(e, "code"));
        title = json_string_value(json_object_get(e, "message"));
        details = json_string_value(json_object_get(json_object_get(e, "error_data"), "details"));
    } else if (http > 0 && title == NULL) {
        title = "unexpected HTTP status";
    }
    enum pl_retry how = pl_rules_retry(http, code, transport_error != NULL);
    if (e != NULL || http > 0) {
        char c[32];
        snprintf(c, sizeof c, "%ld", code >= 0 ? code : http);
        snprintf(labels, sizeof labels, "channel=\"%s\",code=\"%s\"", m->channel, c);
        pl_metrics_add("parley_provider_errors_total", labels, 1);
    }
    if (how != PL_RETRY_NONE && now_ms() - m->created_ms < o->lim->send_max_age_seconds * 1000) {
        char att[16], hs[16], cs[16];
        m->due_ms = now_ms() + backoff_ms(o, m, how);
        push_waiting(o, m->q);
        snprintf(att, sizeof att, "%d", m->attempts);
        snprintf(hs, sizeof hs, "%ld", http);
        snprintf(cs, sizeof cs, "%ld", code);
        pl_log(PL_LOG_WARN,
               PL_FIELDS("channel", m->channel, "contact", m->contact, "event", "send_retry",
                         "message", m->local_id, "attempt", att, "http", hs, "code", cs),
               "provider did not accept the message (%s); retrying in %lld ms",
               title != NULL ? title : "no detail", m->due_ms - now_ms());
        snprintf(labels, sizeof labels, "channel=\"%s\"", m->channel);
        pl_metrics_add("parley_send_retries_total", labels, 1);
        pl_json_scratch_release(root);
        return;
    }
    char cs[16];
    snprintf(cs, sizeof cs, "%ld", code);
    pl_log(PL_LOG_ERROR,
           PL_FIELDS("channel", m->channel, "contact", m->contact, "event", "send_failed",
                     "message", m->local_id, "code", cs),
           "message failed: %s%s%s", title != NULL ? title : "no detail",
           details != NULL ? ": " : "", details != NULL ? details : "");
    snprintf(labels, sizeof labels, "channel=\"%s\",code=\"%s\"", m->channel, cs);
    pl_metrics_add("parley_sends_failed_total", labels, 1);
    finish(o, m, NULL, code, title != NULL ? title : "send failed", details);
    pl_json_scratch_release(root);
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    struct msg *m = ud;
    size_t n = size * nmemb;
    char *grown;
    if (m->resp_len + n > ERR_BODY_MAX)
        return n; /* keep the start; an answer this large is not Meta's */
    grown = realloc(m->resp, m->resp_len + n + 1);
    if (grown == NULL)
        return 0;
    memcpy(grown + m->resp_len, data, n);
    m->resp = grown;
    m->resp_len += n;
    m->resp[m->resp_len] = '\0';
    return n;
}

/* A handle for the next transfer: an idle one, else a new one with the settings every request
 * shares. */
static CURL *take_handle(struct pl_outbound *o)
{
    CURL *easy;
    if (o->nidle > 0)
        return o->idle[--o->nidle];
    easy = curl_easy_init();
    if (easy == NULL)
        return NULL;
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, o->headers);
    curl_easy_setopt(easy, CURLOPT_PROXYHEADER, o->proxy_headers);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, o->timeout_ms);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    return easy;
}

/* Take a finished (or never started) transfer's handle out of the multi and keep it for the
 * next one, without pointers into the message it served. */
static void put_handle(struct pl_outbound *o, struct msg *m)
{
    CURL *easy = m->easy;
    m->easy = NULL;
    curl_multi_remove_handle(o->multi, easy);
    if (o->nidle >= (size_t)o->max_connections) {
        curl_easy_cleanup(easy);
        return;
    }
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, NULL);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, NULL);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, NULL);
    o->idle[o->nidle++] = easy;
}

/* "<provider.url>/<phone_number_id>/messages", malloc'd (NULL when out of memory): sized to fit,
 * however long the configured URL is. */
static char *messages_url(const struct pl_outbound *o, const char *phone_number_id)
{
    size_t n = strlen(o->url) + strlen(phone_number_id) + sizeof "//messages";
    char *url = malloc(n);
    if (url != NULL)
        snprintf(url, n, "%s/%s/messages", o->url, phone_number_id);
    return url;
}

/* The parsed messages URL of m's channel, made again when the channel's phone number is not
 * the one it was made for. NULL when out of memory or when libcurl rejects the URL
 * (start_transfer then passes the text, and libcurl's error reaches the message). */
static CURLU *endpoint(struct pl_outbound *o, const struct msg *m)
{
    struct lane *l = m->q->lane;
    char *url;

    if (l->url != NULL && strcmp(l->url_for, m->phone_number_id) == 0)
        return l->url;
    curl_url_cleanup(l->url);
    free(l->url_for);
    l->url = curl_url();
    l->url_for = strdup(m->phone_number_id);
    url = messages_url(o, m->phone_number_id);
    if (l->url == NULL || l->url_for == NULL || url == NULL ||
        curl_url_set(l->url, CURLUPART_URL, url, 0) != CURLUE_OK) {
        curl_url_cleanup(l->url);
        l->url = NULL;
        free(l->url_for);
        l->url_for = NULL;
    }
    free(url);
    return l->url;
}

static int start_transfer(struct pl_outbound *o, struct msg *m)
{
    CURLU *parsed = endpoint(o, m);
    m->easy = take_handle(o);
    if (m->easy == NULL)
        return -1;
    free(m->resp);
    m->resp = NULL;
    m->resp_len = 0;
    m->errbuf[0] = '\0';
    /* libcurl before 8.12 reports a reused handle's first URL as CURLINFO_EFFECTIVE_URL after
     * it is given another CURLU (curl#15984); the request itself goes to the new one. Do not
     * log that value as the endpoint. */
    curl_easy_setopt(m->easy, CURLOPT_CURLU, parsed);
    if (parsed == NULL) {
        char *url = messages_url(o, m->phone_number_id); /* libcurl copies it */
        curl_easy_setopt(m->easy, CURLOPT_URL, url);
        free(url);
    }
    curl_easy_setopt(m->easy, CURLOPT_POSTFIELDS, m->body);
    curl_easy_setopt(m->easy, CURLOPT_POSTFIELDSIZE, (long)strlen(m->body));
    curl_easy_setopt(m->easy, CURLOPT_WRITEDATA, m);
    curl_easy_setopt(m->easy, CURLOPT_PRIVATE, m);
    curl_easy_setopt(m->easy, CURLOPT_ERRORBUFFER, m->errbuf);
    if (curl_multi_add_handle(o->multi, m->easy) != CURLM_OK) {
        put_handle(o, m);
        return -1;
    }
    m->attempts++;
    pl_lanes_started(&o->sched, &m->q->lane->t);
    return 0;
}

static void send_sandbox(struct pl_outbound *o, struct msg *m)
{
    char *resp = NULL;
    int http;
    m->attempts++;
    http = pl_sandbox_send(m->channel, m->body, &resp, o->sink != NULL ? NULL : stdout);
    handle_answer(o, m, http, resp, resp != NULL ? strlen(resp) : 0, NULL);
    free(resp);
}

/* Start the head of every ready contact queue, within the connection budget; queues whose
 * retry time has come are ready again first. */
static void start_due(struct pl_outbound *o)
{
    long long now = now_ms();
    const struct pl_heap_item *top;
    struct cq *q;

    while ((top = pl_heap_top(&o->waiting)) != NULL && top->key <= now)
        push_ready(o, pl_heap_pop(&o->waiting));
    while ((q = pop_ready(o)) != NULL) {
        struct lane *l = q->lane;
        if (o->kind == PL_PROVIDER_SANDBOX) {
            send_sandbox(o, q->head); /* answers at once; may free q */
        } else if (start_transfer(o, q->head) != 0) {
            q->head->due_ms = now + pl_rules_retry_wait_ms(o->lim, PL_RETRY_BACKOFF, 1);
            push_waiting(o, q);
        }
        pl_lanes_schedule(&o->sched, &l->t); /* to the back: the channels take turns */
    }
}

static void collect_done(struct pl_outbound *o)
{
    CURLMsg *info;
    int left;

    while ((info = curl_multi_info_read(o->multi, &left)) != NULL) {
        struct msg *m;
        long http = 0;
        if (info->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(info->easy_handle, CURLINFO_PRIVATE, (char **)&m);
        curl_easy_getinfo(info->easy_handle, CURLINFO_RESPONSE_CODE, &http);
        CURLcode rc = info->data.result;
        put_handle(o, m);
        pl_lanes_ended(&o->sched, &m->q->lane->t); /* before the answer may free m and its queue */
        if (rc != CURLE_OK)
            handle_answer(o, m, 0, NULL, 0,
                          m->errbuf[0] != '\0' ? m->errbuf : curl_easy_strerror(rc));
        else
            handle_answer(o, m, http, m->resp, m->resp_len, NULL);
    }
}

void pl_outbound_poll(struct pl_outbound *o, int timeout_ms, int extra_fd)
{
    struct curl_waitfd fd = {.fd = extra_fd, .events = CURL_WAIT_POLLIN};
    int running;
    curl_multi_poll(o->multi, extra_fd >= 0 ? &fd : NULL, extra_fd >= 0 ? 1 : 0, timeout_ms, NULL);
    curl_multi_perform(o->multi, &running);
    collect_done(o);
}

void pl_outbound_start(struct pl_outbound *o)
{
    int running;
    start_due(o);
    curl_multi_perform(o->multi, &running);
    /* A transfer this perform finished must be taken now: its socket has nothing more to say,
     * so the next poll would sleep its whole timeout (up to a second) with its connection
     * counted as busy and the next message waiting for it. */
    collect_done(o);
}

void pl_outbound_set_sink(struct pl_outbound *o, pl_sink_fn sink, void *ud)
{
    o->sink = sink;
    o->sink_ud = ud;
}

void pl_outbound_wakeup(struct pl_outbound *o)
{
    curl_multi_wakeup(o->multi);
}

size_t pl_outbound_pending(const struct pl_outbound *o)
{
    return o->pending;
}

long pl_outbound_next_due_ms(const struct pl_outbound *o)
{
    const struct pl_heap_item *top = pl_heap_top(&o->waiting);
    long long now;

    if (pl_lanes_startable(&o->sched))
        return 0;
    /* every connection busy: a finished transfer wakes the poll anyway */
    if (top == NULL)
        return -1;
    now = now_ms();
    return top->key > now ? (long)(top->key - now) : 0;
}

/* ---- the template request body ---- */

/* {"type":"text"[,"parameter_name":name],"text":value} for each parameter. */
static json_t *text_params(const struct pl_tpl_param *params, size_t n)
{
    json_t *list = json_array();
    for (size_t i = 0; list != NULL && i < n; i++) {
        json_t *p = json_pack("{s:s}", "type", "text");
        if (p == NULL || json_array_append_new(list, p) != 0) {
            json_decref(list);
            return NULL;
        }
        if (params[i].name != NULL)
            json_object_set_new(p, "parameter_name", json_string(params[i].name));
        json_object_set_new(p, "text", json_string(params[i].value != NULL ? params[i].value : ""));
    }
    return list;
}

/* {"type":part,"parameters":params}, stealing params. */
static json_t *component(const char *part, json_t *params)
{
    return params != NULL ? json_pack("{s:s,s:o}", "type", part, "parameters", params) : NULL;
}

/* The header component, or NULL when the send gives the header nothing (or on OOM: *oom). */
static json_t *template_header(const struct pl_template *tpl, const struct pl_tpl_send *send,
                               int *oom)
{
    const char *format = tpl->header_format;
    json_t *c;

    if (format == NULL && tpl->header_text != NULL)
        format = "TEXT";
    if (format == NULL)
        return NULL;
    if (strcmp(format, "TEXT") == 0) {
        if (send->header == NULL || send->nheader == 0)
            return NULL;
        c = component("header", text_params(send->header, send->nheader));
    } else {
        char kind[16];
        size_t i;
        if (send->header_media_link == NULL)
            return NULL;
        for (i = 0; format[i] != '\0' && i + 1 < sizeof kind; i++)
            kind[i] =
                (char)(format[i] >= 'A' && format[i] <= 'Z' ? format[i] - 'A' + 'a' : format[i]);
        kind[i] = '\0';
        c = json_pack("{s:s,s:[{s:s,s:{s:s}}]}", "type", "header", "parameters", "type", kind, kind,
                      "link", send->header_media_link);
    }
    if (c == NULL)
        *oom = 1;
    return c;
}

/* One button component, or NULL when the value has nothing to send (or on OOM: *oom). */
static json_t *template_button(const struct pl_template *tpl, const struct pl_tpl_button_value *bv,
                               int *oom)
{
    char index[16];
    const char *sub_type, *ptype;
    json_t *c;

    if (bv->value == NULL || bv->index < 0 || tpl->buttons == NULL ||
        (size_t)bv->index >= tpl->nbuttons)
        return NULL;
    switch (tpl->buttons[bv->index].type) {
    case PL_TPL_QUICK_REPLY:
        sub_type = "quick_reply";
        ptype = "payload";
        break;
    case PL_TPL_URL:
        sub_type = "url";
        ptype = "text";
        break;
    case PL_TPL_COPY_CODE:
        sub_type = "copy_code";
        ptype = "coupon_code";
        break;
    default:
        return NULL; /* pl_templates_check refuses values for the other kinds */
    }
    snprintf(index, sizeof index, "%d", bv->index);
    c = json_pack("{s:s,s:s,s:s,s:[{s:s,s:s}]}", "type", "button", "sub_type", sub_type, "index",
                  index, "parameters", "type", ptype, ptype, bv->value);
    if (c == NULL)
        *oom = 1;
    return c;
}

char *pl_outbound_template_json(const struct pl_template *tpl, const struct pl_tpl_send *send,
                                const char *to, struct pl_error *err)
{
    json_t *root = NULL, *comps = NULL, *c, *tobj;
    const struct pl_tpl_button_value *order[16];
    size_t nb, i, j;
    int oom = 0;
    char *out;

    if (tpl == NULL || send == NULL || to == NULL) {
        pl_error_set(err, "script_error", "no template, send or recipient to build a message");
        return NULL;
    }
    root = json_pack("{s:s,s:s,s:s,s:s}", "messaging_product", "whatsapp", "recipient_type",
                     "individual", recipient_key(to), to, "type", "template");
    comps = json_array();
    tobj = json_pack("{s:s,s:{s:s}}", "name", tpl->name, "language", "code", tpl->language);
    if (root == NULL || comps == NULL || tobj == NULL) {
        json_decref(tobj);
        goto oom;
    }
    json_object_set_new(root, "template", tobj);
    c = template_header(tpl, send, &oom);
    if (c != NULL)
        json_array_append_new(comps, c);
    if (send->body != NULL && send->nbody > 0) {
        c = component("body", text_params(send->body, send->nbody));
        if (c == NULL)
            oom = 1;
        else
            json_array_append_new(comps, c);
    }
    /* button components in index order, whatever order the script gave them in */
    nb = send->buttons != NULL ? send->nbuttons : 0;
    if (nb > sizeof order / sizeof order[0])
        nb = sizeof order / sizeof order[0]; /* a template has at most 10 buttons */
    for (i = 0; i < nb; i++) {
        for (j = i; j > 0 && order[j - 1]->index > send->buttons[i].index; j--)
            order[j] = order[j - 1];
        order[j] = &send->buttons[i];
    }
    for (i = 0; i < nb; i++) {
        c = template_button(tpl, order[i], &oom);
        if (c != NULL)
            json_array_append_new(comps, c);
    }
    if (oom)
        goto oom;
    if (json_array_size(comps) > 0)
        json_object_set(tobj, "components", comps);
    json_decref(comps);
    comps = NULL;
    out = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (out == NULL) {
        root = NULL;
        goto oom;
    }
    return out;
oom:
    json_decref(comps);
    json_decref(root);
    pl_error_set(err, "script_memory", "out of memory building the template message");
    return NULL;
}
