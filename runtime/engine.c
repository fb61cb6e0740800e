/* engine.c - the engine thread. Owns the channels (config + loaded script), the queue of events
 * waiting to run, its own store connection and the sender. Other threads only enqueue events and
 * read health, under `lock`.
 *
 * Each turn of the loop takes every queued event and works in three steps, so that no write
 * transaction is ever open while Lua runs (the ingest thread's commits, and so the webhooks'
 * 200s, never wait for a scenario):
 *   1. record what the sender learned (accepted / failed messages) and status webhooks, in one
 *      short transaction;
 *   2. run the handlers, reading committed state plus this turn's own changes (the overlay);
 *   3. write every handler's effects (contacts and sessions, outbox rows, inbox rows marked
 *      done or failed, trigger answers) in one transaction, and only after it committed hand the
 *      messages to the sender and answer the trigger requests. */
#include "engine.h"

#include <openssl/evp.h>

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "luaapi.h"
#include "map.h"
#include "metrics.h"
#include "outbound.h"
#include "rules.h"
#include "store.h"
#include "templates.h"
#include "watch.h"

#define TRIGGER_WAIT_S             30
#define RETRY_AFTER_STORE_ERROR_MS 500
#define TURN_MAX                   128 /* events in one turn */
/* The engine thread's nice value, above the webhook threads' (0): when the CPU is short,
 * acknowledging webhooks comes first, and the scenarios work through the stored backlog with
 * what is left (at least about a seventh of the CPU at +5, and all of it when intake is idle). */
#define ENGINE_NICE       5
#define RELOAD_SLICE      256 /* backlog events read back per turn of the state lock (at most) */
#define STATUS_RETRIES    20  /* an unmatched status waits up to 20 x 500 ms for its send */
#define STATUS_RETRY_MS   500
#define HELD_RETRY_MS     1000  /* events of a channel with no loaded script: retried this often */
#define HELD_MAX          50000 /* past this many waiting events, new ones fail instead */
#define CONTACT_CACHE_MAX 20000 /* contacts remembered between turns (then dropped whole) */
#define RELOAD_QUIET_MS   50    /* editors write in bursts: reload once they are quiet this long */

struct channel {
    const struct pl_channel_config *cfg;
    struct pl_script *script; /* NULL when no version has loaded */
    char version[17];         /* first 16 hex digits of the script's SHA-256 */
    long long loaded_at;
    char *last_error;   /* the last load error, NULL after a good load */
    long long dirty_ms; /* a watched file changed at this time (monotonic ms); 0: clean */
    struct pl_templates *templates; /* NULL when the channel has none (or it failed to load) */
    char *templates_error;          /* why the registry did not load */
    long daily_limit;               /* in force: the config's, or the last tier webhook's */
};

/* A trigger request waiting for its answer. */
struct waiter {
    pthread_mutex_t lock;
    pthread_cond_t done_cv;
    int done, status;
    char *body;
    pl_trigger_fn cb; /* asynchronous: called with the answer instead; the waiter is freed */
    void *cb_ud;
};

struct queued {
    struct queued *next;
    struct pl_event ev;
    long long rowid;       /* inbox row, 0 for triggers and send failures */
    struct waiter *waiter; /* trigger events only */
    /* this turn's outcome, applied after the commit */
    int status;
    char *answer;
    int unmatched; /* a status for a wamid no outbox row has (yet) */
    int defer;     /* run it again in a later turn; its inbox row stays pending */
    int tries;     /* how often it was deferred */
    long long due; /* when a deferred event may run again (monotonic ms) */
};

/* What the sender reported, recorded at the start of the next turn. */
struct report {
    struct report *next;
    char *local_id, *channel, *contact, *wamid, *title, *details;
    int failed;
    long code;
};

/* A message a handler queued: its outbox row in the turn's commit, then the sender. */
struct staged {
    struct staged *next;
    long long id; /* its outbox row, once committed */
    char *local_id, *channel, *phone_number_id, *contact, *kind, *body, *template_name;
};

/* Effects of this turn, not yet written. */
struct turn {
    struct pl_map *contacts; /* "channel\x1fcontact" -> struct pl_contact * (latest state) */
    struct kv {              /* a setting to store, or (value NULL) a business recipient */
        struct kv *next;
        char *key, *value, *contact;
        long long at;
    } * kvs;
    struct pl_map *triggers; /* "channel\x1fid" -> answer */
    struct staged *sends, **sends_tail;
    struct finish {
        struct finish *next;
        long long rowid;
        enum pl_inbox_state state;
        char *code, *message;
    } * finishes, **finishes_tail;
};

struct pl_engine {
    const struct pl_config *cfg;
    struct pl_config *owned_cfg;   /* a config from SIGHUP that the engine frees */
    struct pl_config *pending_cfg; /* handed over by pl_engine_reconfigure, not yet applied */
    const struct pl_limits *lim;
    char *stdlib_dir;
    struct channel *channels;
    size_t nchannels;
    struct pl_outbound *out;
    struct pl_store *store;
    struct pl_watch *watch;     /* NULL when inotify is unavailable: no hot reload */
    struct pl_store *analytics; /* read by /metrics scrapes, under analytics_lock */
    pthread_mutex_t analytics_lock;
    struct report *reports, **reports_tail; /* engine thread only */
    struct queued *deferred;                /* events to run again later (engine thread) */
    size_t ndeferred;
    pthread_t thread;
    int started;
    pthread_mutex_t lock;
    struct queued *head, *tail;
    size_t depth;
    /* Past cfg->queue_max waiting events, new stored ones are not kept in memory: they are read
     * back from the inbox, in order, as the queue drains (memory stays flat under a backlog). */
    size_t queue_max; /* the config's, read once (the ingest thread reads it) */
    int spilled;
    long long spill_after; /* every pending inbox row after this one is out of memory */
    long long last_rowid;  /* the newest inbox row queued in memory */
    unsigned long spills;  /* events left out so far (to tell a read-back it raced one) */
    /* Committed messages wait for the sender in memory up to queue_max; past that they wait only
     * as queued outbox rows, read back in order as the sender drains (engine thread only). */
    int out_spilled;         /* some queued outbox rows after out_after are not in the sender */
    long long out_after;     /* every queued outbox row up to this id is in the sender (or done) */
    size_t out_unread;       /* about how many wait in the outbox only (for /healthz) */
    unsigned long long done; /* events run so far */
    size_t outbox;           /* messages queued or in flight, as of the last turn */
    size_t sending;          /* of those, the ones in the sender's memory (at most queue_max) */
    size_t waiting;          /* deferred events, as of the last turn */
    int stopping;
    int sleeping; /* the engine thread waits in poll: new events must wake it (under lock) */
    long grace_ms;
    unsigned long long seq;
    long long clock_offset; /* seconds added to the wall clock (parley test / chat: advance) */
    /* Contacts exactly as the state file holds them, as earlier turns read or wrote them (the
     * thread that runs turns only): a turn starts from these instead of reading the store. All
     * are dropped when another connection has committed (data_version changed: a broadcast
     * recorded an opt-in), and when there are CONTACT_CACHE_MAX of them. */
    struct pl_map *contacts;
    size_t ncontacts;
    long long data_version;
};

static long long now_s(void)
{
    return (long long)time(NULL);
}

/* The clock the rules and scripts see: the wall clock, moved on by `advance` in tests. */
static long long engine_now(const struct pl_engine *e)
{
    return (long long)time(NULL) + e->clock_offset;
}

/* ---- channels ---- */

/* The version of a loaded script: the first 16 hex digits of the SHA-256 of every file it
 * loaded (the script, then each module it required), in load order. */
static void hash_files(const char *const *paths, char out[17])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char buf[8192];
    size_t n;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();

    strcpy(out, "unknown");
    if (ctx == NULL || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL))
        goto out;
    for (; *paths != NULL; paths++) {
        FILE *f = fopen(*paths, "rb");
        if (f == NULL)
            continue;
        EVP_DigestUpdate(ctx, *paths, strlen(*paths) + 1);
        while ((n = fread(buf, 1, sizeof buf, f)) > 0)
            EVP_DigestUpdate(ctx, buf, n);
        fclose(f);
    }
    if (EVP_DigestFinal_ex(ctx, md, &mdlen) && mdlen >= 8)
        for (int i = 0; i < 8; i++)
            snprintf(out + 2 * i, 3, "%02x", md[i]);
out:
    EVP_MD_CTX_free(ctx);
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Watch every file the channel's script loaded (or, when nothing loaded yet, its script). */
static void channel_watch(struct pl_engine *e, struct channel *ch)
{
    int tag = (int)(ch - e->channels);
    struct pl_error err;

    if (e->watch == NULL)
        return;
    pl_watch_forget(e->watch, tag);
    const char *const *files = ch->script != NULL ? pl_script_files(ch->script) : NULL;
    const char *const only_script[] = {ch->cfg->script, NULL};
    if (files == NULL || files[0] == NULL)
        files = only_script; /* nothing loaded yet: its script, to see it fixed */
    for (; *files != NULL; files++)
        if (pl_watch_add(e->watch, *files, tag, &err) != 0)
            pl_log(PL_LOG_WARN, PL_FIELDS("channel", ch->cfg->id, "event", "watch"), "%s", err.msg);
    if (ch->cfg->templates != NULL && pl_watch_add(e->watch, ch->cfg->templates, tag, &err) != 0)
        pl_log(PL_LOG_WARN, PL_FIELDS("channel", ch->cfg->id, "event", "watch"), "%s", err.msg);
}

/* Load (or reload) a channel's script. On failure the old version keeps serving. */
static void channel_load(struct pl_engine *e, struct channel *ch)
{
    struct pl_script_opts opts = {
        .channel = ch->cfg->id,
        .path = ch->cfg->script,
        .stdlib_dir = e->stdlib_dir,
        .limits = e->lim,
        .cpu_ms = ch->cfg->cpu_ms,
        .memory_mb = ch->cfg->memory_mb,
    };
    struct pl_error err;
    struct pl_script *s = pl_script_load(&opts, &err);
    char labels[160];

    if (s == NULL) {
        pl_log(PL_LOG_ERROR,
               PL_FIELDS("channel", ch->cfg->id, "event", "load", "code", err.code, "script",
                         ch->cfg->script),
               "%s", err.msg);
        snprintf(labels, sizeof labels, "channel=\"%s\",result=\"error\"", ch->cfg->id);
        pl_metrics_add("parley_reloads_total", labels, 1);
        pthread_mutex_lock(&e->lock);
        free(ch->last_error);
        ch->last_error = strdup(err.msg);
        pthread_mutex_unlock(&e->lock);
        return;
    }
    char version[sizeof ch->version];
    hash_files(pl_script_files(s), version); /* file reads: not under the lock */
    pthread_mutex_lock(&e->lock);
    /* the swap: the next event runs on the new state; none is running now (this thread runs
     * them all, between turns), so the old state can go at once */
    struct pl_script *old = ch->script;
    ch->script = s;
    memcpy(ch->version, version, sizeof version);
    ch->loaded_at = now_s();
    free(ch->last_error);
    ch->last_error = NULL;
    pthread_mutex_unlock(&e->lock);
    pl_script_free(old); /* lua_close outside the lock */
    snprintf(labels, sizeof labels, "channel=\"%s\",result=\"ok\"", ch->cfg->id);
    pl_metrics_add("parley_reloads_total", labels, 1);
    snprintf(labels, sizeof labels, "channel=\"%s\",", ch->cfg->id);
    pl_metrics_drop("parley_script_info", labels);
    snprintf(labels, sizeof labels, "channel=\"%s\",version=\"%s\"", ch->cfg->id, ch->version);
    pl_metrics_set("parley_script_info", labels, 1);
    pl_log(PL_LOG_INFO,
           PL_FIELDS("channel", ch->cfg->id, "event", "load", "script", ch->cfg->script, "version",
                     ch->version),
           "script loaded");
}

/* ---- templates, tiers and business-initiated recipients ---- */

static int apply_stored_status(void *ud, const char *key, const char *value, long long at)
{
    struct channel *ch = ud;
    /* key: tpl:<channel>:<name>:<language> */
    const char *name = key + 4 + strlen(ch->cfg->id) + 1, *colon = strrchr(key, ':');
    char tname[600];
    if (colon == NULL || colon <= name || value == NULL)
        return 0;
    snprintf(tname, sizeof tname, "%.*s", (int)(colon - name), name);
    pl_templates_set_status(ch->templates, tname, colon + 1, value, at);
    return 0;
}

/* (Re)load the channel's template registry, with the statuses webhooks set since. */
static void channel_templates(struct pl_engine *e, struct channel *ch)
{
    struct pl_tpl_problem *problems = NULL;
    size_t nproblems = 0;
    struct pl_error err;
    char prefix[160];

    if (ch->cfg->templates == NULL)
        return;
    struct pl_templates *t =
        pl_templates_load(ch->cfg->templates, e->lim, &problems, &nproblems, &err);
    for (size_t i = 0; i < nproblems; i++)
        pl_log(PL_LOG_WARN,
               PL_FIELDS("channel", ch->cfg->id, "event", "templates", "code",
                         pl_code_name(problems[i].code)),
               "%s: %s: %s (left out)", ch->cfg->templates, problems[i].where, problems[i].detail);
    free(problems);
    pthread_mutex_lock(&e->lock);
    free(ch->templates_error);
    ch->templates_error = t == NULL ? strdup(err.msg) : NULL;
    pthread_mutex_unlock(&e->lock);
    if (t == NULL) {
        pl_log(PL_LOG_ERROR, PL_FIELDS("channel", ch->cfg->id, "event", "templates"), "%s%s",
               err.msg, ch->templates != NULL ? "; the previous registry stays" : "");
        return;
    }
    snprintf(prefix, sizeof prefix, "tpl:%s:", ch->cfg->id);
    struct pl_templates *old = ch->templates;
    ch->templates = t; /* statuses applied before anyone else sees it */
    pl_store_hold();
    pl_store_settings_prefix(e->store, prefix, apply_stored_status, ch, &err);
    pl_store_release();
    ch->templates = old;
    pthread_mutex_lock(&e->lock); /* /healthz counts templates */
    ch->templates = t;
    pthread_mutex_unlock(&e->lock);
    pl_templates_free(old);
    char n[24];
    snprintf(n, sizeof n, "%zu", pl_templates_count(t));
    pl_log(PL_LOG_INFO, PL_FIELDS("channel", ch->cfg->id, "event", "templates", "count", n),
           "templates loaded from %s", ch->cfg->templates);
}

/* The daily limit in force: the last tier webhook's, else the config's. */
static void channel_business(struct pl_engine *e, struct channel *ch)
{
    char key[160], *value = NULL;
    struct pl_error err;

    long limit = ch->cfg->daily_limit;
    snprintf(key, sizeof key, "limit:%s", ch->cfg->id);
    pl_store_hold();
    if (pl_store_setting_get(e->store, key, &value, NULL, &err) == 0 && value != NULL)
        limit = strtol(value, NULL, 10);
    pl_store_release();
    free(value);
    pthread_mutex_lock(&e->lock);
    ch->daily_limit = limit;
    pthread_mutex_unlock(&e->lock);
}

static void channel_free(struct channel *ch)
{
    pl_script_free(ch->script);
    free(ch->last_error);
    pl_templates_free(ch->templates);
    free(ch->templates_error);
    memset(ch, 0, sizeof *ch);
}

static void mark_dirty(void *ud, int tag)
{
    struct pl_engine *e = ud;
    if (tag >= 0 && (size_t)tag < e->nchannels)
        e->channels[tag].dirty_ms = now_ms();
}

/* Reload the channels whose files changed and have been quiet for RELOAD_QUIET_MS. Returns the
 * milliseconds until the next one is due, or -1 when none is waiting. */
static long reload_changed(struct pl_engine *e)
{
    long long now = now_ms();
    long next = -1;

    if (e->watch != NULL)
        pl_watch_read(e->watch, mark_dirty, e);
    for (size_t i = 0; i < e->nchannels; i++) {
        struct channel *ch = &e->channels[i];
        if (ch->dirty_ms == 0)
            continue;
        /* in-process (chat, test) the next line comes after the edit is done: no need to wait */
        long wait = e->started ? (long)(ch->dirty_ms + RELOAD_QUIET_MS - now) : 0;
        if (wait > 0) {
            next = next < 0 || wait < next ? wait : next;
            continue;
        }
        ch->dirty_ms = 0;
        pl_log(PL_LOG_INFO, PL_FIELDS("channel", ch->cfg->id, "event", "reload"),
               "a script file changed; loading it into a fresh state");
        channel_load(e, ch);
        channel_templates(e, ch);
        channel_watch(e, ch);
    }
    return next;
}

static struct channel *channel_by_phone(struct pl_engine *e, const char *pnid)
{
    for (size_t i = 0; pnid != NULL && i < e->nchannels; i++)
        if (strcmp(e->channels[i].cfg->phone_number_id, pnid) == 0)
            return &e->channels[i];
    return NULL;
}

static struct channel *channel_by_id(struct pl_engine *e, const char *id)
{
    for (size_t i = 0; id != NULL && i < e->nchannels; i++)
        if (strcmp(e->channels[i].cfg->id, id) == 0)
            return &e->channels[i];
    return NULL;
}

static void new_id(void *ud, char *buf, size_t size)
{
    struct pl_engine *e = ud;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(buf, size, "m%011llx%05llx",
             (unsigned long long)ts.tv_sec * 1000 + (unsigned long long)(ts.tv_nsec / 1000000),
             ++e->seq & 0xfffff);
}

static char *error_body(const char *code, const char *message)
{
    json_t *j = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", message);
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
    return s;
}

const char *pl_engine_error_message(const json_t *answer)
{
    return json_string_value(json_object_get(json_object_get(answer, "error"), "message"));
}

static char *dup_or_null(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

/* ---- the turn ---- */

static void contact_free(void *p)
{
    pl_contact_clear(p);
    free(p);
}

static void turn_init(struct turn *t)
{
    memset(t, 0, sizeof *t);
    t->contacts = pl_map_new();
    t->triggers = pl_map_new();
    t->sends_tail = &t->sends;
    t->finishes_tail = &t->finishes;
}

static void staged_free(struct staged *s)
{
    free(s->local_id);
    free(s->channel);
    free(s->phone_number_id);
    free(s->contact);
    free(s->kind);
    free(s->body);
    free(s->template_name);
    free(s);
}

static void turn_clear(struct turn *t)
{
    pl_map_free(t->contacts, contact_free);
    pl_map_free(t->triggers, free);
    while (t->sends != NULL) {
        struct staged *s = t->sends;
        t->sends = s->next;
        staged_free(s);
    }
    while (t->kvs != NULL) {
        struct kv *k = t->kvs;
        t->kvs = k->next;
        free(k->key);
        free(k->value);
        free(k->contact);
        free(k);
    }
    while (t->finishes != NULL) {
        struct finish *f = t->finishes;
        t->finishes = f->next;
        free(f->code);
        free(f->message);
        free(f);
    }
    memset(t, 0, sizeof *t);
}

static void contacts_drop(struct pl_engine *e)
{
    pl_map_free(e->contacts, contact_free);
    e->contacts = NULL;
    e->ncontacts = 0;
}

/* Before a turn: forget the remembered contacts if another connection has committed. */
static void contacts_check(struct pl_engine *e)
{
    struct pl_error err;
    long long v;

    pl_store_hold();
    int rc = pl_store_data_version(e->store, &v, &err);
    pl_store_release();
    if (rc != 0 || v != e->data_version)
        contacts_drop(e);
    e->data_version = rc == 0 ? v : -1;
}

/* After a commit: the turn's contacts (now as stored) become the remembered ones. */
static void contacts_keep(void *ud, const char *key, void *value)
{
    struct pl_engine *e = ud;
    void *old = NULL;

    if (e->contacts != NULL && e->ncontacts >= CONTACT_CACHE_MAX &&
        pl_map_get(e->contacts, key) == NULL)
        contacts_drop(e);
    if (e->contacts == NULL)
        e->contacts = pl_map_new();
    if (e->contacts == NULL || pl_map_set(e->contacts, key, value, &old) != 0) {
        contact_free(value);
        return;
    }
    if (old != NULL)
        contact_free(old);
    else
        e->ncontacts++;
}

/* The conversation's state for this turn: the overlay's, else the remembered one, else the
 * store's. NULL on failure. */
static struct pl_contact *turn_contact(struct pl_engine *e, struct turn *t, const char *channel,
                                       const char *contact)
{
    char key[600];
    struct pl_contact *c, *known;
    struct pl_error err;
    int rc;

    snprintf(key, sizeof key, "%s\x1f%s", channel, contact);
    c = pl_map_get(t->contacts, key);
    if (c != NULL)
        return c;
    c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    known = e->contacts != NULL ? pl_map_get(e->contacts, key) : NULL;
    if (known != NULL) {
        rc = pl_contact_copy(c, known);
        if (rc != 0)
            pl_error_set(&err, "oom", "out of memory");
    } else {
        pl_store_hold();
        rc = pl_store_contact_get(e->store, channel, contact, c, &err);
        pl_store_release();
    }
    if (rc != 0) {
        pl_log(PL_LOG_ERROR, PL_FIELDS("channel", channel, "contact", contact, "code", err.code),
               "%s", err.msg);
        free(c);
        return NULL;
    }
    if (pl_map_set(t->contacts, key, c, NULL) != 0) {
        contact_free(c);
        return NULL;
    }
    return c;
}

/* Remember to store a setting (key = value), or with contact set, a business-initiated
 * recipient of channel `key`. */
static void turn_kv(struct turn *t, const char *key, const char *value, const char *contact,
                    long long at)
{
    struct kv *k = calloc(1, sizeof *k);
    if (k == NULL)
        return;
    k->key = strdup(key);
    k->value = dup_or_null(value);
    k->contact = dup_or_null(contact);
    k->at = at;
    k->next = t->kvs;
    t->kvs = k;
}

static void turn_finish(struct turn *t, long long rowid, enum pl_inbox_state state,
                        const char *code, const char *message)
{
    struct finish *f;
    if (rowid == 0 || (f = calloc(1, sizeof *f)) == NULL)
        return;
    f->rowid = rowid;
    f->state = state;
    f->code = dup_or_null(code);
    f->message = dup_or_null(message);
    *t->finishes_tail = f;
    t->finishes_tail = &f->next;
}

/* Keep a handler's message: an outbox row in the commit, the sender after it. */
static int turn_send(struct turn *t, const struct channel *ch, const char *contact,
                     const struct pl_send *s)
{
    struct staged *st = calloc(1, sizeof *st);
    if (st == NULL)
        return -1;
    st->local_id = strdup(s->local_id);
    st->channel = strdup(ch->cfg->id);
    st->phone_number_id = strdup(ch->cfg->phone_number_id);
    st->contact = strdup(contact);
    st->kind = strdup(s->kind);
    st->body = strdup(s->body);
    st->template_name = dup_or_null(s->template_name);
    if (!st->local_id || !st->channel || !st->phone_number_id || !st->contact || !st->kind ||
        !st->body || (s->template_name != NULL && st->template_name == NULL)) {
        staged_free(st);
        return -1;
    }
    *t->sends_tail = st;
    t->sends_tail = &st->next;
    return 0;
}

/* ---- running handlers ---- */

static const char *handler_for(enum pl_event_kind kind)
{
    switch (kind) {
    case PL_EVENT_MESSAGE:
        return "on_message";
    case PL_EVENT_PRESS:
        return "on_button";
    case PL_EVENT_STATUS:
        return "on_status";
    case PL_EVENT_TRIGGER:
        return "on_trigger";
    default:
        return NULL;
    }
}

static void set_answer(struct queued *q, int status, char *body)
{
    free(q->answer);
    q->status = status;
    q->answer = body;
}

/* Whether an account-level notice for waba_id concerns this channel: its waba_id matches, or
 * it has none (one account). */
static int concerns(const struct channel *ch, const char *waba_id)
{
    return ch->cfg->waba_id == NULL || waba_id == NULL || strcmp(ch->cfg->waba_id, waba_id) == 0;
}

/* Template status and messaging-limit webhooks: applied now, stored with the turn. */
static void account_notice(struct pl_engine *e, struct turn *t, const struct pl_event *ev)
{
    char key[700], value[32];
    long long at = ev->timestamp > 0 ? ev->timestamp : engine_now(e);

    if (ev->kind == PL_EVENT_TEMPLATE_STATUS) {
        const char *name = json_string_value(json_object_get(ev->data, "name"));
        const char *lang = json_string_value(json_object_get(ev->data, "language"));
        char l[32];
        snprintf(l, sizeof l, "%s", lang != NULL ? lang : "");
        for (char *p = l; *p; p++)
            if (*p == '-')
                *p = '_'; /* webhooks say en-US, sends and registries en_US */
        for (size_t i = 0; name != NULL && i < e->nchannels; i++) {
            struct channel *ch = &e->channels[i];
            if (!concerns(ch, ev->waba_id) || ch->templates == NULL ||
                pl_templates_set_status(ch->templates, name, l[0] ? l : NULL, ev->status, at) == 0)
                continue;
            snprintf(key, sizeof key, "tpl:%s:%s:%s", ch->cfg->id, name, l);
            turn_kv(t, key, ev->status, NULL, at);
            pl_log(PL_LOG_INFO,
                   PL_FIELDS("channel", ch->cfg->id, "event", "template_status", "template", name,
                             "language", l, "status", ev->status),
                   "template status updated");
        }
        return;
    }
    if (ev->kind == PL_EVENT_QUALITY) {
        const char *tier = json_string_value(json_object_get(ev->data, "current_limit"));
        long limit = pl_rules_tier_limit(tier);
        if (limit == -2) {
            pl_log(PL_LOG_INFO,
                   PL_FIELDS("event", "quality", "waba", ev->waba_id, "status", ev->status),
                   "phone number quality update (no messaging-limit change)");
            return;
        }
        for (size_t i = 0; i < e->nchannels; i++) {
            struct channel *ch = &e->channels[i];
            if (!concerns(ch, ev->waba_id))
                continue;
            pthread_mutex_lock(&e->lock); /* /healthz reads it */
            ch->daily_limit = limit;
            pthread_mutex_unlock(&e->lock);
            snprintf(key, sizeof key, "limit:%s", ch->cfg->id);
            snprintf(value, sizeof value, "%ld", limit);
            turn_kv(t, key, value, NULL, at);
            pl_log(PL_LOG_INFO,
                   PL_FIELDS("channel", ch->cfg->id, "event", "messaging_limit", "tier", tier),
                   "the daily limit of business-initiated recipients is now %s",
                   limit < 0 ? "unlimited" : value);
        }
        return;
    }
    pl_log(
        PL_LOG_INFO,
        PL_FIELDS("event", pl_event_kind_name(ev->kind), "waba", ev->waba_id, "status", ev->status),
        "account notification received");
}

/* The daily limit's accounting for chat:template: the store's count of the rolling 24 hours
 * (which a running broadcast adds to as well) plus this turn's recipients, not committed yet. */
struct business_ctx {
    struct pl_engine *e;
    struct turn *t;
    struct channel *ch;
    const char *contact;
};

static int business_count(void *ud, long *limit, long *recent, int *already)
{
    struct business_ctx *b = ud;
    struct pl_error err;
    long long since = engine_now(b->e) - b->e->lim->window_seconds, count = 0, at = 0;

    pl_store_hold();
    if (pl_store_business_count(b->e->store, b->ch->cfg->id, since, &count, &err) != 0 ||
        pl_store_business_at(b->e->store, b->ch->cfg->id, b->contact, &at, &err) != 0) {
        pl_store_release();
        pl_log(PL_LOG_ERROR, PL_FIELDS("channel", b->ch->cfg->id, "event", "business"), "%s",
               err.msg);
        return -1;
    }
    *already = at > since;
    for (struct kv *k = b->t->kvs; k != NULL; k = k->next) {
        if (k->contact == NULL || strcmp(k->key, b->ch->cfg->id) != 0)
            continue;
        /* a recipient of this turn: counted unless the store already counts it */
        long long kat = 0;
        if (pl_store_business_at(b->e->store, k->key, k->contact, &kat, &err) == 0 && kat <= since)
            count++;
        if (strcmp(k->contact, b->contact) == 0)
            *already = 1;
    }
    pl_store_release();
    *limit = b->ch->daily_limit;
    *recent = (long)count;
    return 0;
}

/* Run one event's handler, keeping its effects in the turn. Returns -1 when the store could not
 * be read (the whole turn runs again), else 0. */
static int run_event(struct pl_engine *e, struct turn *t, struct queued *q)
{
    struct pl_event *ev = &q->ev;
    struct channel *ch = ev->kind == PL_EVENT_TRIGGER ? channel_by_id(e, ev->phone_number_id)
                                                      : channel_by_phone(e, ev->phone_number_id);
    const char *handler = handler_for(ev->kind);
    char labels[256], key[600];
    struct pl_error err;
    struct timespec t0, t1;

    if (handler == NULL) {
        account_notice(e, t, ev);
        turn_finish(t, q->rowid, PL_INBOX_DONE, NULL, NULL);
        return 0;
    }
    if (ch == NULL) {
        pl_log(PL_LOG_WARN,
               PL_FIELDS("phone_number_id", ev->phone_number_id, "event",
                         pl_event_kind_name(ev->kind)),
               "no channel has this phone_number_id; acknowledged, nothing run");
        pl_metrics_add("parley_events_unrouted_total", "", 1);
        turn_finish(t, q->rowid, PL_INBOX_DONE, "unrouted", NULL);
        set_answer(q, 404, error_body("unknown_channel", "no channel with this id"));
        return 0;
    }
    if (ev->contact == NULL) {
        turn_finish(t, q->rowid, PL_INBOX_FAILED, "bad_request", "event without a contact");
        return 0;
    }
    if (ev->kind == PL_EVENT_STATUS && q->unmatched && q->tries < STATUS_RETRIES &&
        (pl_outbound_pending(e->out) > 0 || e->reports != NULL)) {
        /* Meta can report a status before our send's answer arrives: while sends are in
         * flight, wait for the answer that may match it */
        q->tries++;
        q->defer = 1;
        q->due = now_ms() + STATUS_RETRY_MS;
        return 0;
    }
    if (strlen(ev->contact) > 256) {
        turn_finish(t, q->rowid, PL_INBOX_FAILED, "bad_request", "contact id over 256 bytes");
        return 0;
    }
    if (q->tries == 0 || !q->defer) {
        snprintf(labels, sizeof labels, "channel=\"%s\",type=\"%s\"", ch->cfg->id,
                 pl_event_kind_name(ev->kind));
        pl_metrics_add("parley_events_in_total", labels, 1);
    }

    if (ev->kind == PL_EVENT_TRIGGER && ev->id != NULL) {
        /* idempotency: a repeated id gets the first answer and runs nothing */
        char *stored = NULL;
        snprintf(key, sizeof key, "%s\x1f%s", ch->cfg->id, ev->id);
        const char *mine = pl_map_get(t->triggers, key);
        if (mine != NULL) {
            set_answer(q, 200, strdup(mine));
            return 0;
        }
        pl_store_hold();
        int rc = pl_store_trigger_get(e->store, ch->cfg->id, ev->id, &stored, &err);
        pl_store_release();
        if (rc == 0 && stored != NULL) {
            set_answer(q, 200, stored);
            return 0;
        }
    }

    struct pl_contact *c = turn_contact(e, t, ch->cfg->id, ev->contact);
    if (c == NULL)
        return -1;
    if (ev->contact_name != NULL && (c->name == NULL || strcmp(c->name, ev->contact_name) != 0)) {
        /* only ever replaced by a name, never cleared (commit_turn relies on it) */
        char *name = strdup(ev->contact_name);
        if (name != NULL) {
            free(c->name);
            c->name = name;
        }
    }
    if (ev->kind == PL_EVENT_MESSAGE || ev->kind == PL_EVENT_PRESS) {
        /* The window opens when the customer writes (by the provider's clock, never later
         * than now). */
        long long now = engine_now(e);
        long long ts = ev->timestamp > 0 && ev->timestamp <= now ? ev->timestamp : now;
        if (ts > c->last_inbound)
            c->last_inbound = ts;
    }
    if (ch->script == NULL || !pl_script_has(ch->script, handler)) {
        if (ch->script == NULL && q->rowid != 0 && e->ndeferred < HELD_MAX) {
            /* held (its inbox row stays pending) until a good version of the script loads */
            if (q->tries++ == 0)
                pl_log(PL_LOG_WARN, PL_FIELDS("channel", ch->cfg->id, "event", handler),
                       "the channel has no loaded script; the event waits for one");
            q->defer = 1;
            q->due = now_ms() + HELD_RETRY_MS;
        } else if (ch->script == NULL) {
            pl_log(PL_LOG_WARN, PL_FIELDS("channel", ch->cfg->id, "event", handler),
                   "the channel has no loaded script; nothing run");
            turn_finish(t, q->rowid, PL_INBOX_FAILED, "script_error", "no loaded script");
            set_answer(q, 503, error_body("script_error", "the channel's script has not loaded"));
        } else {
            turn_finish(t, q->rowid, PL_INBOX_DONE, NULL, NULL);
            set_answer(q, 200, strdup("{\"messages\":[]}"));
        }
        return 0;
    }

    struct business_ctx biz = {e, t, ch, ev->contact};
    struct pl_call call = {
        .handler = handler,
        .channel = ch->cfg->id,
        .contact = ev->contact,
        .contact_name = c->name,
        .session_json = c->session,
        .event = ev->data,
        .now = engine_now(e),
        .last_inbound = c->last_inbound,
        .opted_in = c->opted_in,
        .language = ch->cfg->language,
        .templates = ch->templates,
        .business_count = business_count,
        .business_ud = &biz,
        .new_id = new_id,
        .new_id_ud = e,
    };
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = pl_script_call(ch->script, &call, &err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    snprintf(labels, sizeof labels, "channel=\"%s\"", ch->cfg->id);
    pl_metrics_add("parley_handler_seconds_sum", labels,
                   (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    pl_metrics_add("parley_handler_seconds_count", labels, 1);

    if (rc != 0) {
        pl_log(PL_LOG_ERROR,
               PL_FIELDS("channel", ch->cfg->id, "contact", ev->contact, "event", handler, "code",
                         err.code),
               "%s", err.msg);
        if (call.traceback != NULL)
            pl_log(PL_LOG_DEBUG,
                   PL_FIELDS("channel", ch->cfg->id, "contact", ev->contact, "event", handler),
                   "%s", call.traceback);
        snprintf(labels, sizeof labels, "channel=\"%s\",code=\"%s\"", ch->cfg->id, err.code);
        pl_metrics_add("parley_handler_errors_total", labels, 1);
        if (call.code < PL_SCRIPT_ERROR)
            pl_metrics_add("parley_rejections_total", labels, 1);
        turn_finish(t, q->rowid, PL_INBOX_FAILED, err.code, err.msg);
        set_answer(q, 422, error_body(err.code, err.msg));
        pl_call_clear(&call);
        return 0;
    }

    json_t *ids = json_array();
    for (size_t i = 0; i < call.nsends; i++) {
        if (turn_send(t, ch, ev->contact, &call.sends[i]) != 0)
            pl_log(PL_LOG_ERROR,
                   PL_FIELDS("channel", ch->cfg->id, "message", call.sends[i].local_id),
                   "out of memory queueing a message; it is lost");
        json_array_append_new(ids, json_string(call.sends[i].local_id));
    }
    if (call.session_out != NULL) {
        free(c->session);
        c->session = call.session_out;
        call.session_out = NULL;
    }
    if (call.business) /* counts for the daily limit once the turn commits */
        turn_kv(t, ch->cfg->id, NULL, ev->contact, call.now);
    if (call.opt_in && !c->opted_in) {
        c->opted_in = 1;
        c->opt_in_at = call.now;
        free(c->opt_in_source);
        c->opt_in_source = call.opt_in_source;
        call.opt_in_source = NULL;
    }
    turn_finish(t, q->rowid, PL_INBOX_DONE, NULL, NULL);
    if (ev->kind == PL_EVENT_TRIGGER || q->waiter != NULL) {
        json_t *j = json_pack("{s:s?,s:o}", "id", ev->kind == PL_EVENT_TRIGGER ? ev->id : NULL,
                              "messages", ids);
        char *body = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(j);
        if (body != NULL && ev->kind == PL_EVENT_TRIGGER && ev->id != NULL) {
            char *copy = strdup(body);
            if (copy != NULL && pl_map_set(t->triggers, key, copy, NULL) != 0)
                free(copy);
        }
        set_answer(q, 200, body);
    } else {
        json_decref(ids);
    }
    pl_call_clear(&call);
    return 0;
}

/* ---- deliveries ---- */

/* The sender's verdict on one message: kept for the next turn. */
static void on_delivery(void *ud, const struct pl_delivery *d)
{
    struct pl_engine *e = ud;
    struct report *r = calloc(1, sizeof *r);

    if (r == NULL)
        return;
    r->local_id = strdup(d->local_id);
    r->channel = strdup(d->channel);
    r->contact = strdup(d->contact);
    r->wamid = dup_or_null(d->wamid);
    r->title = dup_or_null(d->title);
    r->details = dup_or_null(d->details);
    r->failed = d->failed;
    r->code = d->code;
    *e->reports_tail = r;
    e->reports_tail = &r->next;
}

static void report_free(struct report *r)
{
    free(r->local_id);
    free(r->channel);
    free(r->contact);
    free(r->wamid);
    free(r->title);
    free(r->details);
    free(r);
}

static enum pl_out_state out_state(const char *status)
{
    if (status == NULL)
        return PL_OUT_QUEUED;
    if (strcmp(status, "sent") == 0)
        return PL_OUT_SENT;
    if (strcmp(status, "delivered") == 0)
        return PL_OUT_DELIVERED;
    if (strcmp(status, "read") == 0 || strcmp(status, "played") == 0)
        return PL_OUT_READ;
    if (strcmp(status, "failed") == 0)
        return PL_OUT_FAILED;
    return PL_OUT_QUEUED;
}

/* Step 1: record the sender's reports and this turn's status webhooks; a failed send becomes
 * an on_status event at the front of the turn. Returns 0, or -1 (nothing recorded). */
static int record_reports(struct pl_engine *e, struct queued **events)
{
    struct pl_error err;
    struct report *r;
    struct queued *failed = NULL, **failed_tail = &failed;
    int any_status = 0;

    for (struct queued *q = *events; q != NULL; q = q->next)
        any_status |= q->ev.kind == PL_EVENT_STATUS;
    if (e->reports == NULL && !any_status)
        return 0;
    if (pl_store_begin(e->store, &err) != 0)
        goto fail;
    for (r = e->reports; r != NULL; r = r->next) {
        long long at = engine_now(e);
        int rc = r->failed ? pl_store_outbox_failed(e->store, r->local_id, r->code, r->title,
                                                    r->details, at, &err)
                           : pl_store_outbox_sent(e->store, r->local_id, r->wamid, at, &err);
        if (rc != 0)
            goto rollback;
    }
    for (struct queued *q = *events; q != NULL; q = q->next) {
        char local[128];
        int changed = 0;
        long code = -1;
        if (q->ev.kind != PL_EVENT_STATUS || q->ev.id == NULL)
            continue;
        json_t *ecode = json_object_get(json_object_get(q->ev.data, "error"), "code");
        if (json_is_integer(ecode))
            code = (long)json_integer_value(ecode);
        if (pl_store_outbox_status(e->store, q->ev.id, out_state(q->ev.status), code,
                                   q->ev.timestamp, local, sizeof local, &changed, &err) != 0)
            goto rollback;
        q->unmatched = local[0] == '\0';
        if (local[0] != '\0' && q->ev.data != NULL)
            json_object_set_new(q->ev.data, "message_id", json_string(local));
    }
    if (pl_store_commit(e->store, &err) != 0)
        goto rollback;
    /* failed sends reach on_status like a failed status webhook, before this turn's events */
    while ((r = e->reports) != NULL) {
        e->reports = r->next;
        struct channel *ch = r->failed ? channel_by_id(e, r->channel) : NULL;
        struct queued *q = ch != NULL ? calloc(1, sizeof *q) : NULL;
        if (q != NULL) {
            q->ev.kind = PL_EVENT_STATUS;
            q->ev.phone_number_id = strdup(ch->cfg->phone_number_id);
            q->ev.contact = strdup(r->contact);
            q->ev.status = strdup("failed");
            q->ev.timestamp = engine_now(e);
            q->ev.data = json_pack("{s:s,s:s,s:I,s:s,s:{s:I,s:s,s:s}}", "message_id", r->local_id,
                                   "status", "failed", "timestamp", (json_int_t)q->ev.timestamp,
                                   "recipient", r->contact, "error", "code", (json_int_t)r->code,
                                   "title", r->title != NULL ? r->title : "", "details",
                                   r->details != NULL ? r->details : "");
            *failed_tail = q;
            failed_tail = &q->next;
        }
        report_free(r);
    }
    e->reports_tail = &e->reports;
    *failed_tail = *events;
    *events = failed;
    return 0;
rollback:
    pl_store_rollback(e->store);
fail:
    pl_log(PL_LOG_ERROR, PL_FIELDS("event", "store", "code", err.code), "%s", err.msg);
    return -1;
}

struct contact_put_ctx {
    struct pl_engine *e;
    int rc;
    int exact; /* the turn's copies are the rows the store will hold: no read-back */
    struct pl_error *err;
};

static void contact_put_each(void *ud, const char *key, void *value)
{
    struct contact_put_ctx *ctx = ud;
    char channel[256];
    const char *sep = strchr(key, '\x1f');
    if (ctx->rc != 0 || sep == NULL)
        return;
    snprintf(channel, sizeof channel, "%.*s", (int)(sep - key), key);
    if (ctx->exact) {
        ctx->rc = pl_store_contact_put(ctx->e->store, channel, sep + 1, value, NULL, ctx->err);
        return;
    }
    struct pl_contact stored;
    ctx->rc = pl_store_contact_put(ctx->e->store, channel, sep + 1, value, &stored, ctx->err);
    if (ctx->rc == 0) { /* the turn's copy becomes the row as stored (the merge is the store's) */
        pl_contact_clear(value);
        *(struct pl_contact *)value = stored;
    }
}

/* Inside the turn's write transaction: is every contact the turn changed, as the turn holds it,
 * exactly what the store's merge will write? It is when no other connection has committed
 * since the turn began (contacts_check): each copy started from the stored row (remembered or
 * read) and a turn moves a contact only forward, as the merge does (a new name, a later
 * last_inbound, an opt-in). Otherwise a broadcast may have recorded an opt-in in between, and
 * the rows are read back. */
static int contacts_exact(struct pl_engine *e)
{
    struct pl_error err;
    long long v;

    return e->data_version >= 0 && pl_store_data_version(e->store, &v, &err) == 0 &&
           v == e->data_version;
}

/* Step 3: write the turn's effects. Returns 0, or -1 (nothing written). */
static int commit_turn(struct pl_engine *e, struct turn *t, struct queued *events)
{
    struct pl_error err;
    long long now = engine_now(e);
    struct contact_put_ctx ctx = {e, 0, 0, &err};

    if (pl_store_begin(e->store, &err) != 0)
        goto fail;
    ctx.exact = contacts_exact(e);
    pl_map_each(t->contacts, contact_put_each, &ctx);
    if (ctx.rc != 0)
        goto rollback;
    for (struct staged *r = t->sends; r != NULL; r = r->next)
        if (pl_store_outbox_add(e->store, r->local_id, r->channel, r->phone_number_id, r->contact,
                                r->kind, r->body, r->template_name, now, &r->id, &err) != 0)
            goto rollback;
    for (struct finish *f = t->finishes; f != NULL; f = f->next)
        if (pl_store_inbox_finish(e->store, f->rowid, f->state, f->code, f->message, &err) != 0)
            goto rollback;
    for (struct kv *k = t->kvs; k != NULL; k = k->next)
        if ((k->contact != NULL
                 ? pl_store_business_add(e->store, k->key, k->contact, k->at, &err)
                 : pl_store_setting_put(e->store, k->key, k->value, k->at, &err)) != 0)
            goto rollback;
    for (struct queued *q = events; q != NULL; q = q->next)
        if (q->ev.kind == PL_EVENT_TRIGGER && q->ev.id != NULL && q->status == 200 &&
            q->answer != NULL &&
            pl_store_trigger_put(e->store, q->ev.phone_number_id, q->ev.id, q->answer, now, &err) !=
                0)
            goto rollback;
    if (pl_store_commit(e->store, &err) != 0)
        goto rollback;
    pl_map_each(t->contacts, contacts_keep, e);
    pl_map_free(t->contacts, NULL); /* its values are the remembered contacts now */
    t->contacts = NULL;
    return 0;
rollback:
    pl_store_rollback(e->store);
fail:
    pl_log(PL_LOG_ERROR, PL_FIELDS("event", "store", "code", err.code),
           "could not commit handler effects (the events will run again): %s", err.msg);
    return -1;
}

static void answer(struct waiter *w, int status, char *body)
{
    if (w == NULL) {
        free(body);
        return;
    }
    if (w->cb != NULL) {
        w->cb(w->cb_ud, status, body);
        free(w);
        return;
    }
    pthread_mutex_lock(&w->lock);
    w->status = status;
    w->body = body;
    w->done = 1;
    pthread_cond_signal(&w->done_cv);
    pthread_mutex_unlock(&w->lock);
}

static void answer(struct waiter *w, int status, char *body);

/* Free a queued event. A trigger waiting for it that was not answered gets a 503, so no HTTP
 * thread waits forever. */
static void free_queued(struct queued *q)
{
    if (q->waiter != NULL)
        answer(q->waiter, 503, error_body("stopping", "the event could not be run"));
    pl_event_clear(&q->ev);
    free(q->answer);
    free(q);
}

/* Put deferred events that are due (all of them when `all`) back in front of the queue. */
static struct queued *take_deferred(struct pl_engine *e, struct queued *q, int all)
{
    long long now = now_ms();
    struct queued **pp = &e->deferred, *due = NULL, **tail = &due;
    while (*pp != NULL) {
        struct queued *d = *pp;
        if (all || d->due <= now) {
            *pp = d->next;
            d->next = NULL;
            *tail = d;
            tail = &d->next;
            e->ndeferred--;
        } else {
            pp = &d->next;
        }
    }
    *tail = q;
    return due;
}

/* One turn over the events taken from the queue. Returns the events to run again (on a store
 * failure), else NULL. */
static struct queued *run_turn(struct pl_engine *e, struct queued *events,
                               unsigned long long *ran_out)
{
    struct turn t;
    unsigned long long ran = 0;

    if (record_reports(e, &events) != 0)
        return events;
    contacts_check(e);
    turn_init(&t);
    int failed = t.contacts == NULL || t.triggers == NULL;
    for (struct queued *q = events; q != NULL && !failed; q = q->next) {
        failed = run_event(e, &t, q) != 0;
        ran++;
    }
    if (failed || commit_turn(e, &t, events) != 0) {
        /* nothing was recorded: triggers get 503; every other event (inbox rows, and the
         * failed sends' on_status) runs again, and what handlers counted in memory is undone */
        struct queued *again = NULL, **tail = &again;
        turn_clear(&t);
        while (events != NULL) {
            struct queued *q = events;
            events = q->next;
            q->next = NULL;
            free(q->answer);
            q->answer = NULL;
            q->defer = 0;
            if (q->waiter != NULL) {
                answer(q->waiter, 503, error_body("store", "the state file could not be written"));
                q->waiter = NULL;
                free_queued(q);
            } else {
                *tail = q;
                tail = &q->next;
            }
        }
        return again;
    }
    for (struct staged *s = t.sends; s != NULL; s = s->next) {
        /* in commit order: once one waits in the outbox only, every later one does too */
        if (!e->out_spilled && pl_outbound_pending(e->out) < e->queue_max &&
            pl_outbound_enqueue(e->out, s->local_id, s->channel, s->phone_number_id, s->contact,
                                s->kind, s->body, 0) == 0) {
            e->out_after = s->id;
            continue;
        }
        e->out_spilled = 1;
        e->out_unread++;
    }
    turn_clear(&t);
    while (events != NULL) {
        struct queued *q = events;
        events = q->next;
        if (q->defer) { /* its inbox row is still pending: again, a little later */
            q->defer = 0;
            ran--;
            free(q->answer);
            q->answer = NULL;
            q->next = e->deferred;
            e->deferred = q;
            e->ndeferred++;
            continue;
        }
        if (q->waiter != NULL) {
            answer(q->waiter, q->status != 0 ? q->status : 500,
                   q->answer != NULL ? q->answer : error_body("internal", "no answer"));
            q->answer = NULL;
            q->waiter = NULL;
        }
        free_queued(q);
    }
    *ran_out = ran;
    return NULL;
}

/* ---- reconfiguration (SIGHUP) ---- */

static int same_channel(const struct pl_channel_config *a, const struct pl_channel_config *b)
{
    return strcmp(a->script, b->script) == 0 && a->cpu_ms == b->cpu_ms &&
           a->memory_mb == b->memory_mb;
}

/* Switch to the pending config between turns: unchanged channels keep their loaded state,
 * changed and new ones load, removed ones close. */
static void apply_config(struct pl_engine *e)
{
    struct pl_config *cfg;
    struct channel *next;

    pthread_mutex_lock(&e->lock);
    cfg = e->pending_cfg;
    e->pending_cfg = NULL;
    pthread_mutex_unlock(&e->lock);
    if (cfg == NULL)
        return;
    next = calloc(cfg->nchannels > 0 ? cfg->nchannels : 1, sizeof *next);
    if (next == NULL) {
        pl_log(PL_LOG_ERROR, PL_FIELDS("event", "reconfigure"), "out of memory; config kept");
        pl_config_free(cfg);
        free(cfg);
        return;
    }
    if (cfg->provider.kind != e->cfg->provider.kind ||
        (cfg->provider.url != NULL && e->cfg->provider.url != NULL &&
         strcmp(cfg->provider.url, e->cfg->provider.url) != 0))
        pl_log(PL_LOG_WARN, PL_FIELDS("event", "reconfigure"),
               "provider changes take effect after a restart");
    /* Unchanged channels move their loaded state over, and the arrays swap, in one step under
     * the lock (/healthz and triggers read them from other threads); the old channels are
     * freed after. */
    pthread_mutex_lock(&e->lock);
    for (size_t i = 0; i < cfg->nchannels; i++) {
        struct channel *old = channel_by_id(e, cfg->channels[i].id);
        next[i].cfg = &cfg->channels[i];
        if (old != NULL && same_channel(old->cfg, next[i].cfg)) {
            next[i].script = old->script;
            memcpy(next[i].version, old->version, sizeof next[i].version);
            next[i].loaded_at = old->loaded_at;
            next[i].last_error = old->last_error;
            old->script = NULL;
            old->last_error = NULL;
        }
    }
    struct channel *old_channels = e->channels;
    size_t old_n = e->nchannels;
    e->channels = next;
    e->nchannels = cfg->nchannels;
    e->cfg = cfg;
    pthread_mutex_unlock(&e->lock);
    for (size_t i = 0; i < old_n; i++) {
        struct channel *old = &old_channels[i];
        if (old->script != NULL || pl_config_channel(cfg, old->cfg->id) == NULL)
            pl_log(PL_LOG_INFO, PL_FIELDS("channel", old->cfg->id, "event", "reconfigure"),
                   pl_config_channel(cfg, old->cfg->id) == NULL ? "channel removed"
                                                                : "channel changed");
        channel_free(old);
        if (e->watch != NULL)
            pl_watch_forget(e->watch, (int)i);
    }
    free(old_channels);
    for (size_t i = 0; i < e->nchannels; i++) {
        if (next[i].script == NULL) {
            if (next[i].last_error == NULL && channel_by_id(e, next[i].cfg->id) == &next[i])
                pl_log(PL_LOG_INFO, PL_FIELDS("channel", next[i].cfg->id, "event", "reconfigure"),
                       "channel added or changed; loading its script");
            channel_load(e, &next[i]);
        }
        channel_templates(e, &next[i]);
        channel_business(e, &next[i]);
        channel_watch(e, &next[i]);
    }
    if (e->owned_cfg != NULL) {
        pl_config_free(e->owned_cfg);
        free(e->owned_cfg);
    }
    e->owned_cfg = cfg;
    char n[16];
    snprintf(n, sizeof n, "%zu", e->nchannels);
    pl_log(PL_LOG_INFO, PL_FIELDS("event", "reconfigure", "channels", n), "configuration reloaded");
}

int pl_engine_reconfigure(struct pl_engine *e, struct pl_config *cfg)
{
    struct pl_config *old;
    pthread_mutex_lock(&e->lock);
    old = e->pending_cfg;
    e->pending_cfg = cfg;
    pthread_mutex_unlock(&e->lock);
    if (old != NULL) {
        pl_config_free(old);
        free(old);
    }
    pl_outbound_wakeup(e->out);
    return 0;
}

/* Queue a pending inbox row read back from the store (crash recovery, spilled events). */
static int reload_one(void *ud, long long rowid, const struct pl_event *ev)
{
    struct pl_engine *e = ud;
    struct queued *q = calloc(1, sizeof *q);
    if (q == NULL || pl_event_copy(&q->ev, ev) != 0) {
        free(q);
        return -1;
    }
    if (q->ev.data != NULL) { /* the engine adds to data: give it its own copy */
        json_t *copy = json_deep_copy(q->ev.data);
        json_decref(q->ev.data);
        q->ev.data = copy;
    }
    q->rowid = rowid;
    pthread_mutex_lock(&e->lock);
    if (e->tail != NULL)
        e->tail->next = q;
    else
        e->head = q;
    e->tail = q;
    e->depth++;
    e->spill_after = rowid;
    e->last_rowid = rowid;
    pthread_mutex_unlock(&e->lock);
    return 0;
}

/* One slice of a read-back: at most `slice` rows after the engine's mark go into memory; *got is
 * how many were read, *mark the mark the slice started from. */
typedef int (*slice_fn)(struct pl_engine *e, size_t slice, size_t *got, long long *mark,
                        struct pl_error *err);

/* Read back up to want rows, in slices, each with the state connection's turn held (see
 * pl_engine_store): the ingest thread commits webhooks between them instead of waiting for the
 * whole read-back. Returns -1 on a store error (logged), 1 when a slice came short (nothing is
 * left behind), else 0. */
static int read_back(struct pl_engine *e, size_t want, slice_fn read, const char *what)
{
    struct pl_error err;
    size_t most = e->queue_max / 8 < RELOAD_SLICE ? e->queue_max / 8 + 1 : RELOAD_SLICE;
    size_t got, slice;
    long long mark = 0;
    int rc;
    do {
        slice = want < most ? want : most;
        got = 0;
        pl_store_hold();
        rc = read(e, slice, &got, &mark, &err);
        pl_store_release();
        want -= got;
        if (got == slice && want > 0)
            sched_yield(); /* let a waiting group commit take the turn */
    } while (rc == 0 && got == slice && want > 0);
    if (rc != 0) {
        /* the next drain tries again from the same mark */
        pl_log(PL_LOG_ERROR, PL_FIELDS("event", "backlog"),
               "reading the %s back from the state file after row %lld failed: %s", what, mark,
               err.msg);
        return -1;
    }
    return got < slice;
}

static int inbox_slice(struct pl_engine *e, size_t slice, size_t *got, long long *mark,
                       struct pl_error *err)
{
    pthread_mutex_lock(&e->lock);
    *mark = e->spill_after;
    pthread_mutex_unlock(&e->lock);
    return pl_store_inbox_pending_after(e->store, *mark, slice, reload_one, e, got, err);
}

static void reload_spilled(struct pl_engine *e)
{
    pthread_mutex_lock(&e->lock);
    int go = e->spilled && e->depth < e->queue_max / 2;
    unsigned long spills = e->spills;
    pthread_mutex_unlock(&e->lock);
    if (!go || read_back(e, e->queue_max / 2, inbox_slice, "spilled events") < 0)
        return;
    pthread_mutex_lock(&e->lock);
    /* caught up, and nothing was left out while we read: new events may stay in memory again */
    if (e->spills == spills && e->depth < e->queue_max / 2)
        e->spilled = 0;
    pthread_mutex_unlock(&e->lock);
}

static int recover_send(void *ud, long long id, const char *local_id, const char *channel,
                        const char *phone_number_id, const char *contact, const char *kind,
                        const char *body, long long created_at);

static int outbox_slice(struct pl_engine *e, size_t slice, size_t *got, long long *mark,
                        struct pl_error *err)
{
    *mark = e->out_after;
    return pl_store_outbox_queued(e->store, e->out_after, slice, recover_send, e, got, err);
}

/* Read queued outbox rows back into the sender once it has drained to half of queue_max. A
 * short slice means none is left behind: new messages may go to the sender directly again. */
static void reload_messages(struct pl_engine *e)
{
    size_t pending = pl_outbound_pending(e->out);
    if (!e->out_spilled || pending >= e->queue_max / 2)
        return;
    if (read_back(e, e->queue_max - pending, outbox_slice, "queued messages") == 1) {
        e->out_spilled = 0;
        e->out_unread = 0;
    }
}

/* ---- the thread ---- */

/* Take the queued events: a turn holds at most TURN_MAX, counting the events that must run
 * again (a turn that could not commit), which go first. A turn that is too long would keep the
 * sender from starting the messages the previous turns queued, and a turn that keeps failing
 * does not grow: newer events wait in the queue behind it. */
static struct queued *take_all(struct pl_engine *e, struct queued *again, int *stopping)
{
    struct queued *q = NULL, *last = NULL, *end = again;
    size_t held = again != NULL, n = 0;

    while (end != NULL && end->next != NULL) {
        end = end->next;
        held++;
    }
    size_t room = held < TURN_MAX ? TURN_MAX - held : 0;
    pthread_mutex_lock(&e->lock);
    if (room > 0 && e->head != NULL) {
        q = last = e->head;
        n = 1;
        while (last->next != NULL && n < room) {
            last = last->next;
            n++;
        }
        e->head = last->next;
        last->next = NULL;
        if (e->head == NULL)
            e->tail = NULL;
        e->depth -= n;
    }
    *stopping = e->stopping;
    size_t depth = e->depth;
    pthread_mutex_unlock(&e->lock);
    pl_metrics_set("parley_queue_depth", "", (double)depth);
    if (end != NULL) { /* events that must run again go first, in their order */
        end->next = q;
        q = again;
    }
    return q;
}

static void *engine_main(void *arg)
{
    struct pl_engine *e = arg;
    int stopping = 0;
    struct timespec stop_at = {0};
    struct queued *again = NULL;

    pthread_setname_np(pthread_self(), "pl-engine");
    if (setpriority(PRIO_PROCESS, (id_t)gettid(), ENGINE_NICE) != 0) /* Linux: this thread's */
        pl_log(PL_LOG_DEBUG, PL_FIELDS("event", "start"), "engine thread keeps its priority: %s",
               strerror(errno));

    long long trimmed = now_ms();
    for (;;) {
        apply_config(e);
        reload_spilled(e);
        if (now_ms() - trimmed > 5000) { /* give freed memory back after a burst */
            malloc_trim(0);
            trimmed = now_ms();
        }
        long due = pl_outbound_next_due_ms(e->out);
        long reload = reload_changed(e);
        int timeout = due < 0 || due > 1000 ? 1000 : (int)due;
        unsigned long long ran = 0;
        if (reload >= 0 && reload < timeout)
            timeout = (int)reload;
        for (struct queued *d = e->deferred; d != NULL; d = d->next) {
            long long wait = d->due - now_ms();
            if (wait < timeout)
                timeout = wait > 0 ? (int)wait : 0;
        }
        if (again != NULL)
            timeout = RETRY_AFTER_STORE_ERROR_MS;
        else if (e->reports != NULL ||
                 (e->out_spilled && pl_outbound_pending(e->out) < e->queue_max / 2))
            timeout = 0; /* the sender's reports, or messages waiting in the outbox */
        if (again == NULL && timeout != 0) {
            /* events waiting, in memory or (spilled) in the inbox: no sleep; else enqueue_list
             * wakes the sleeper (both under the lock, so none comes unseen in between) */
            pthread_mutex_lock(&e->lock);
            if (e->depth > 0 || e->spilled)
                timeout = 0;
            e->sleeping = timeout != 0;
            pthread_mutex_unlock(&e->lock);
        }
        pl_outbound_poll(e->out, timeout, e->watch != NULL ? pl_watch_fd(e->watch) : -1);
        struct queued *q = take_deferred(e, take_all(e, again, &stopping), 0);
        again = NULL;
        if (q != NULL || e->reports != NULL)
            again = run_turn(e, q, &ran);
        /* only now, with every acceptance so far recorded, may new transfers start */
        if (e->reports == NULL) {
            reload_messages(e);
            pl_outbound_start(e->out);
        }
        /* one update, so a reader never sees an event done before its sends are counted */
        pthread_mutex_lock(&e->lock);
        e->sleeping = 0;
        e->done += ran;
        e->sending = pl_outbound_pending(e->out);
        e->outbox = e->sending + e->out_unread;
        e->waiting = e->ndeferred;
        size_t outbox = e->outbox;
        pthread_mutex_unlock(&e->lock);
        /* /healthz's outbox: the sender's and those waiting in the state file only */
        pl_metrics_set("parley_outbox_depth", "", (double)outbox);
        if (stopping) {
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            if (stop_at.tv_sec == 0) {
                stop_at = now;
                stop_at.tv_sec += e->grace_ms / 1000;
                stop_at.tv_nsec += (e->grace_ms % 1000) * 1000000L;
            }
            int late = now.tv_sec > stop_at.tv_sec ||
                       (now.tv_sec == stop_at.tv_sec && now.tv_nsec >= stop_at.tv_nsec);
            if ((pl_outbound_pending(e->out) == 0 && !e->out_spilled && e->reports == NULL &&
                 again == NULL) ||
                late)
                break;
        }
    }
    while (again != NULL) {
        struct queued *q = again;
        again = q->next;
        free_queued(q);
    }
    while (e->deferred != NULL) { /* their inbox rows stay pending: they run after a restart */
        struct queued *q = e->deferred;
        e->deferred = q->next;
        free_queued(q);
    }
    e->ndeferred = 0;
    /* record what the sender reported last, so accepted messages are not sent again */
    struct queued *none = NULL;
    if (e->reports != NULL)
        record_reports(e, &none);
    while (none != NULL) {
        struct queued *q = none;
        none = q->next;
        free_queued(q);
    }
    if (pl_outbound_pending(e->out) + e->out_unread > 0)
        pl_log(PL_LOG_WARN, PL_FIELDS("event", "stop"),
               "%zu messages not sent yet; they stay queued and go out after the restart",
               pl_outbound_pending(e->out) + e->out_unread);
    return NULL;
}

struct pl_engine *pl_engine_new(const struct pl_config *cfg, const char *stdlib_dir,
                                struct pl_error *err)
{
    struct pl_engine *e = calloc(1, sizeof *e);

    if (e == NULL) {
        pl_error_set(err, "io", "out of memory");
        return NULL;
    }
    pthread_mutex_init(&e->lock, NULL);
    pthread_mutex_init(&e->analytics_lock, NULL);
    e->reports_tail = &e->reports;
    e->cfg = cfg;
    e->queue_max = cfg->queue_max > 0 ? (size_t)cfg->queue_max : 10000;
    e->lim = pl_rules_limits(pl_provider_kind_name(cfg->provider.kind));
    e->stdlib_dir = stdlib_dir != NULL ? strdup(stdlib_dir) : NULL;
    e->channels = calloc(cfg->nchannels > 0 ? cfg->nchannels : 1, sizeof *e->channels);
    if (e->lim == NULL || e->channels == NULL || (stdlib_dir != NULL && e->stdlib_dir == NULL)) {
        pl_error_set(err, "io", "out of memory");
        pl_engine_free(e);
        return NULL;
    }
    e->store = pl_store_open(cfg->state, cfg->sync_full, err);
    if (e->store == NULL) {
        pl_engine_free(e);
        return NULL;
    }
    pl_store_share(e->store); /* with the ingest thread: see pl_engine_store */
    e->out = pl_outbound_new(cfg, on_delivery, e, err);
    if (e->out == NULL) {
        pl_engine_free(e);
        return NULL;
    }
    e->watch = pl_watch_new(err);
    if (e->watch == NULL)
        pl_log(PL_LOG_WARN, PL_FIELDS("event", "watch"), "no hot reload: %s", err->msg);
    e->nchannels = cfg->nchannels;
    for (size_t i = 0; i < cfg->nchannels; i++) {
        e->channels[i].cfg = &cfg->channels[i];
        channel_load(e, &e->channels[i]);
        channel_templates(e, &e->channels[i]);
        channel_business(e, &e->channels[i]);
        channel_watch(e, &e->channels[i]);
    }
    return e;
}

/* A queued message read back from the state file goes out from the number it was queued for,
 * as the ones the sender still holds do, even when a reload moved its channel to another. */
static int recover_send(void *ud, long long id, const char *local_id, const char *channel,
                        const char *phone_number_id, const char *contact, const char *kind,
                        const char *body, long long created_at)
{
    struct pl_engine *e = ud;
    struct channel *ch = channel_by_id(e, channel);
    if (ch == NULL)
        pl_log(PL_LOG_WARN, PL_FIELDS("channel", channel, "message", local_id),
               "a queued message's channel is no longer configured; it stays queued");
    else if (pl_outbound_enqueue(e->out, local_id, channel,
                                 phone_number_id != NULL ? phone_number_id
                                                         : ch->cfg->phone_number_id,
                                 contact, kind, body, created_at) != 0)
        return -1; /* not passed: the next read-back starts at this row again */
    e->out_after = id;
    if (e->out_unread > 0)
        e->out_unread--;
    return 0;
}

int pl_engine_start(struct pl_engine *e, struct pl_error *err)
{
    int rc;
    /* Crash recovery: events acknowledged but not handled run first, in order, and messages
     * committed but not accepted by the provider go out again. */
    pl_store_manual_checkpoints(e->store); /* serving: the ingest side's thread checkpoints */
    pl_error_set(err, "io", "out of memory recovering the last run's work");
    /* at most a queue's worth in memory; the rest is read back as the queue drains */
    e->spilled = 1;
    pl_store_hold();
    size_t sending = 0;
    rc = pl_store_inbox_pending_after(e->store, 0, e->queue_max, reload_one, e, NULL, err) != 0 ||
         pl_store_outbox_queued(e->store, 0, e->queue_max, recover_send, e, &sending, err) != 0;
    if (rc == 0 && sending == e->queue_max) { /* maybe more: read back as the sender drains */
        long long counts[PL_OUT_FAILED + 1];
        e->out_spilled = 1;
        if (pl_store_outbox_counts(e->store, NULL, counts, err) == 0)
            e->out_unread = counts[PL_OUT_QUEUED] > (long long)e->queue_max
                                ? (size_t)(counts[PL_OUT_QUEUED] - (long long)e->queue_max)
                                : 1;
    }
    pl_store_release();
    if (rc != 0)
        return -1;
    pl_error_clear(err);
    if (e->depth > 0 || pl_outbound_pending(e->out) > 0) {
        char ev[24], msgs[24];
        snprintf(ev, sizeof ev, "%zu", e->depth);
        snprintf(msgs, sizeof msgs, "%zu", pl_outbound_pending(e->out));
        pl_log(PL_LOG_INFO, PL_FIELDS("event", "recover", "events", ev, "messages", msgs),
               "resuming work left from the last run");
    }
    rc = pthread_create(&e->thread, NULL, engine_main, e);
    if (rc != 0)
        return pl_error_set(err, "io", "cannot start the engine thread: %s", strerror(rc));
    e->started = 1;
    return 0;
}

/* Append the list first..last (n events) to the queue; wakes the engine if it sleeps. */
static int enqueue_list(struct pl_engine *e, struct queued *first, struct queued *last, size_t n)
{
    pthread_mutex_lock(&e->lock);
    if (e->stopping) {
        pthread_mutex_unlock(&e->lock);
        return -1;
    }
    if (e->tail != NULL)
        e->tail->next = first;
    else
        e->head = first;
    e->tail = last;
    e->depth += n;
    int wake = e->sleeping;
    e->sleeping = 0;
    pl_metrics_set("parley_queue_depth", "", (double)e->depth);
    pthread_mutex_unlock(&e->lock);
    if (wake)
        pl_outbound_wakeup(e->out);
    return 0;
}

static int enqueue(struct pl_engine *e, struct queued *q)
{
    return enqueue_list(e, q, q, 1);
}

/* Hand the list *first..*last (*n events) to the queue and empty it; when the engine is
 * stopping, they stay pending in the store. */
static void submit_list(struct pl_engine *e, struct queued **first, struct queued **last, size_t *n)
{
    if (*first != NULL && enqueue_list(e, *first, *last, *n) != 0)
        while (*first != NULL) {
            struct queued *q = *first;
            *first = q->next;
            free_queued(q);
        }
    *first = *last = NULL;
    *n = 0;
}

void pl_engine_submit(struct pl_engine *e, struct pl_event *evs, const long long *rowids, size_t n)
{
    struct queued *first = NULL, *last = NULL;
    size_t queued = 0;

    for (size_t i = 0; i < n; i++) {
        long long rowid = rowids != NULL ? rowids[i] : 0;
        if (rowid != 0) {
            pthread_mutex_lock(&e->lock);
            int spill = e->spilled || e->depth + queued >= e->queue_max;
            if (spill && !e->spilled && first != NULL) {
                /* a spill starts: this batch's earlier events join the queue first, so that a
                 * read-back of the rows after them cannot pass them */
                pthread_mutex_unlock(&e->lock);
                submit_list(e, &first, &last, &queued);
                pthread_mutex_lock(&e->lock);
                spill = e->spilled || e->depth >= e->queue_max;
            }
            if (spill) {
                if (!e->spilled) {
                    e->spilled = 1;
                    e->spill_after = e->last_rowid;
                }
                e->spills++;
            } else {
                e->last_rowid = rowid;
            }
            pthread_mutex_unlock(&e->lock);
            if (spill) { /* stored: read back from the inbox when the queue drains */
                pl_event_clear(&evs[i]);
                continue;
            }
        }
        struct queued *q = calloc(1, sizeof *q);
        if (q == NULL) {
            /* stored: it runs after the next restart */
            pl_log(PL_LOG_ERROR, PL_FIELDS("event", "submit"), "out of memory; event deferred");
            pl_event_clear(&evs[i]);
            continue;
        }
        q->ev = evs[i];
        q->rowid = rowid;
        memset(&evs[i], 0, sizeof evs[i]);
        if (last != NULL)
            last->next = q;
        else
            first = q;
        last = q;
        queued++;
    }
    submit_list(e, &first, &last, &queued);
}

/* ---- in-process use: parley test and parley chat (no engine thread) ---- */

/* Run turns in the caller's thread until nothing is left to do now: no queued event, no
 * report of the sender unrecorded, nothing due to send (the sandbox answers at once). */
static void drain(struct pl_engine *e)
{
    int stopping;
    struct queued *deferred = take_deferred(e, NULL, 1); /* once: held events must not spin */
    if (deferred != NULL) {
        pthread_mutex_lock(&e->lock);
        struct queued *last = deferred;
        while (last->next != NULL)
            last = last->next;
        last->next = e->head;
        e->head = deferred;
        if (e->tail == NULL)
            e->tail = last;
        pthread_mutex_unlock(&e->lock);
    }
    for (int guard = 0; guard < 10000; guard++) {
        unsigned long long ran = 0;
        apply_config(e);
        reload_changed(e);
        struct queued *q = take_all(e, NULL, &stopping);
        if (q == NULL && e->reports == NULL) {
            pl_outbound_start(e->out);
            if (e->reports == NULL)
                break;
            continue;
        }
        struct queued *again = run_turn(e, q, &ran);
        while (again != NULL) { /* a store failure in a test: give up on these */
            struct queued *next = again->next;
            free_queued(again);
            again = next;
        }
        if (e->reports == NULL)
            pl_outbound_start(e->out);
        e->done += ran;
    }
}

void pl_engine_reload_changed(struct pl_engine *e)
{
    reload_changed(e);
}

int pl_engine_run(struct pl_engine *e, struct pl_event *ev, char **body)
{
    struct waiter w = {.done = 0};
    struct queued *q = calloc(1, sizeof *q);

    *body = NULL;
    if (q == NULL) {
        pl_event_clear(ev);
        *body = error_body("internal", "out of memory");
        return 500;
    }
    pthread_mutex_init(&w.lock, NULL);
    pthread_cond_init(&w.done_cv, NULL);
    q->ev = *ev;
    memset(ev, 0, sizeof *ev);
    q->waiter = &w;
    enqueue(e, q);
    drain(e);
    pthread_cond_destroy(&w.done_cv);
    pthread_mutex_destroy(&w.lock);
    if (!w.done) { /* answered by nobody: an event kind without a handler */
        *body = strdup("{\"messages\":[]}");
        return 200;
    }
    *body = w.body;
    return w.status;
}

void pl_engine_set_sink(struct pl_engine *e, pl_sink_fn sink, void *ud)
{
    pl_outbound_set_sink(e->out, sink, ud);
}

void pl_engine_advance(struct pl_engine *e, long long seconds)
{
    e->clock_offset += seconds;
}

struct pl_store *pl_engine_store(struct pl_engine *e)
{
    return e->store;
}

long long pl_engine_now(const struct pl_engine *e)
{
    return engine_now(e);
}

char *pl_engine_session(struct pl_engine *e, const char *channel, const char *contact)
{
    struct pl_contact c;
    struct pl_error err;
    char *session;

    pl_store_hold();
    int rc = pl_store_contact_get(e->store, channel, contact, &c, &err);
    pl_store_release();
    if (rc != 0)
        return NULL;
    session = c.session;
    c.session = NULL;
    pl_contact_clear(&c);
    return session;
}

/* The event of a trigger request, answering into w; NULL on OOM. */
static struct queued *trigger_event(struct pl_engine *e, const char *channel, const char *to,
                                    const char *event_name, json_t *data, const char *idem_id,
                                    struct waiter *w)
{
    struct queued *q = calloc(1, sizeof *q);
    if (q == NULL)
        return NULL;
    q->waiter = w;
    q->ev.kind = PL_EVENT_TRIGGER;
    q->ev.phone_number_id = strdup(channel); /* trigger events route by channel id */
    q->ev.contact = strdup(to);
    q->ev.id = dup_or_null(idem_id);
    q->ev.timestamp = engine_now(e);
    q->ev.data = json_pack("{s:s,s:O,s:s?}", "name", event_name, "data",
                           data != NULL ? data : json_null(), "id", idem_id);
    return q;
}

static int known_channel(struct pl_engine *e, const char *channel)
{
    pthread_mutex_lock(&e->lock); /* SIGHUP may be swapping the channels */
    int known = channel_by_id(e, channel) != NULL;
    pthread_mutex_unlock(&e->lock);
    return known;
}

int pl_engine_trigger(struct pl_engine *e, const char *channel, const char *to,
                      const char *event_name, json_t *data, const char *idem_id, char **body)
{
    struct waiter w = {.done = 0};
    struct queued *q;
    struct timespec deadline;

    if (!known_channel(e, channel)) {
        *body = error_body("unknown_channel", "no channel with this id");
        return 404;
    }
    pthread_mutex_init(&w.lock, NULL);
    pthread_cond_init(&w.done_cv, NULL);
    q = trigger_event(e, channel, to, event_name, data, idem_id, &w);
    if (q == NULL) {
        w.status = 500;
        w.body = error_body("internal", "out of memory");
    } else if (enqueue(e, q) != 0) {
        free_queued(q); /* answers w: 503 */
    } else {
        if (!e->started) /* in-process: run it here */
            drain(e);
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += TRIGGER_WAIT_S;
        pthread_mutex_lock(&w.lock);
        while (!w.done)
            if (pthread_cond_timedwait(&w.done_cv, &w.lock, &deadline) == ETIMEDOUT)
                deadline.tv_sec += 1; /* the engine owns q and will answer: keep waiting */
        pthread_mutex_unlock(&w.lock);
    }
    pthread_cond_destroy(&w.done_cv);
    pthread_mutex_destroy(&w.lock);
    *body = w.body;
    return w.status;
}

void pl_engine_trigger_async(struct pl_engine *e, const char *channel, const char *to,
                             const char *event_name, json_t *data, const char *idem_id,
                             pl_trigger_fn done, void *ud)
{
    struct waiter *w;
    struct queued *q;

    if (!known_channel(e, channel)) {
        done(ud, 404, error_body("unknown_channel", "no channel with this id"));
        return;
    }
    w = calloc(1, sizeof *w);
    q = w != NULL ? trigger_event(e, channel, to, event_name, data, idem_id, w) : NULL;
    if (q == NULL) {
        free(w);
        done(ud, 500, error_body("internal", "out of memory"));
        return;
    }
    w->cb = done;
    w->cb_ud = ud;
    if (enqueue(e, q) != 0)
        free_queued(q); /* answers through done: 503 */
}

static int template_count(void *ud, const char *channel, const char *template_name,
                          const char *state, long long count)
{
    char labels[700];
    (void)ud;
    snprintf(labels, sizeof labels, "channel=\"%s\",template=\"%s\",status=\"%s\"", channel,
             template_name, state);
    pl_metrics_set("parley_template_messages", labels, (double)count);
    return 0;
}

static int broadcast_count(void *ud, const char *job, const char *channel,
                           const char *template_name, const char *state, long long count)
{
    char labels[800];
    (void)ud;
    snprintf(labels, sizeof labels, "broadcast=\"%s\",channel=\"%s\",template=\"%s\",status=\"%s\"",
             job, channel, template_name, state);
    pl_metrics_set("parley_broadcast_messages", labels, (double)count);
    return 0;
}

void pl_engine_refresh_analytics(struct pl_engine *e)
{
    struct pl_error err;

    pthread_mutex_lock(&e->analytics_lock);
    if (e->analytics == NULL) {
        char path[4096];
        pthread_mutex_lock(&e->lock); /* SIGHUP may swap the config */
        snprintf(path, sizeof path, "%s", e->cfg->state);
        pthread_mutex_unlock(&e->lock);
        e->analytics = pl_store_open(path, 0, &err);
    }
    if (e->analytics != NULL) {
        /* the counts are absolute: drop the old series, then set what the store has */
        pl_metrics_drop("parley_template_messages", "");
        pl_metrics_drop("parley_broadcast_messages", "");
        if (pl_store_outbox_template_counts(e->analytics, template_count, NULL, &err) != 0 ||
            pl_store_outbox_broadcast_counts(e->analytics, now_s() - 7 * 86400, broadcast_count,
                                             NULL, &err) != 0)
            pl_log(PL_LOG_WARN, PL_FIELDS("event", "metrics"), "analytics: %s", err.msg);
    } else {
        pl_log(PL_LOG_WARN, PL_FIELDS("event", "metrics"), "analytics: %s", err.msg);
    }
    pthread_mutex_unlock(&e->analytics_lock);
}

char *pl_engine_health(struct pl_engine *e)
{
    json_t *root, *chans = json_object();
    char *out;
    int degraded = 0;

    pthread_mutex_lock(&e->lock);
    root = json_pack("{s:s,s:s,s:s}", "status", "ok", "version", PL_VERSION, "provider",
                     pl_provider_kind_name(e->cfg->provider.kind));
    for (size_t i = 0; i < e->nchannels; i++) {
        struct channel *ch = &e->channels[i];
        json_t *c = json_pack("{s:s,s:s,s:b}", "script", ch->cfg->script, "phone_number_id",
                              ch->cfg->phone_number_id, "loaded", ch->script != NULL);
        if (ch->script != NULL) {
            json_object_set_new(c, "version", json_string(ch->version));
            json_object_set_new(c, "loaded_at", json_integer(ch->loaded_at));
        }
        json_object_set_new(c, "last_error",
                            ch->last_error != NULL ? json_string(ch->last_error) : json_null());
        if (ch->cfg->templates != NULL) {
            json_object_set_new(c, "templates",
                                json_integer(ch->templates != NULL
                                                 ? (json_int_t)pl_templates_count(ch->templates)
                                                 : 0));
            json_object_set_new(c, "templates_error",
                                ch->templates_error != NULL ? json_string(ch->templates_error)
                                                            : json_null());
        }
        json_object_set_new(c, "daily_limit", json_integer(ch->daily_limit));
        degraded |= ch->script == NULL;
        json_object_set_new(chans, ch->cfg->id, c);
    }
    json_object_set_new(root, "events",
                        json_pack("{s:I,s:I,s:I}", "queued", (json_int_t)e->depth, "done",
                                  (json_int_t)e->done, "waiting", (json_int_t)e->waiting));
    json_object_set_new(root, "outbox", json_integer((json_int_t)e->outbox));
    json_object_set_new(root, "sending", json_integer((json_int_t)e->sending));
    char failure[PL_ERROR_MSG_MAX];
    long long failed_at = 0;
    if (pl_store_failure(failure, sizeof failure, &failed_at)) {
        json_object_set_new(
            root, "store",
            json_pack("{s:s,s:I}", "error", failure, "failed_at", (json_int_t)failed_at));
        degraded = 1;
    } else {
        json_object_set_new(root, "store", json_pack("{s:n}", "error"));
    }
    pthread_mutex_unlock(&e->lock);
    json_object_set_new(root, "channels", chans);
    if (degraded)
        json_object_set_new(root, "status", json_string("degraded"));
    out = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    return out;
}

void pl_engine_stop(struct pl_engine *e, long grace_ms)
{
    if (!e->started)
        return;
    pthread_mutex_lock(&e->lock);
    e->stopping = 1;
    e->grace_ms = grace_ms;
    pthread_mutex_unlock(&e->lock);
    pl_outbound_wakeup(e->out);
    pthread_join(e->thread, NULL);
    e->started = 0;
}

void pl_engine_free(struct pl_engine *e)
{
    if (e == NULL)
        return;
    pl_engine_stop(e, 0);
    while (e->head != NULL) {
        struct queued *q = e->head;
        e->head = q->next;
        free_queued(q);
    }
    while (e->reports != NULL) {
        struct report *r = e->reports;
        e->reports = r->next;
        report_free(r);
    }
    while (e->deferred != NULL) {
        struct queued *q = e->deferred;
        e->deferred = q->next;
        free_queued(q);
    }
    for (size_t i = 0; i < e->nchannels; i++)
        channel_free(&e->channels[i]);
    pl_outbound_free(e->out);
    contacts_drop(e);
    pl_store_close(e->store);
    pl_store_close(e->analytics);
    pthread_mutex_destroy(&e->analytics_lock);
    pl_watch_free(e->watch);
    for (struct pl_config **c = (struct pl_config *[]){e->owned_cfg, e->pending_cfg, NULL}; *c;
         c++) {
        pl_config_free(*c);
        free(*c);
    }
    free(e->channels);
    free(e->stdlib_dir);
    pthread_mutex_destroy(&e->lock);
    free(e);
}
