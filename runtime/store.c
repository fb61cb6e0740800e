/* store.c - durable state on SQLite: the inbox, contacts and sessions, the outbox and trigger
 * answers. The only file that speaks SQL. Owns the schema (created and migrated by
 * PRAGMA user_version) and one connection per struct pl_store, with every statement prepared
 * once at open and reused. */
#include "store.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Rows read per round by the iterators: the statement is reset before the callback runs, so the
 * callback may use the same connection (finish a row, record a send) without disturbing the scan,
 * and memory stays bounded however many rows are pending. */
#define ITER_BATCH 128

/* Keys longer than this are cut and end in a hash of the whole key (see pl_store_dedupe_key). */
#define DEDUPE_MAX 512

/* ---- schema ------------------------------------------------------------------------------- */

/* Version 1. inbox.dedupe is NULL for an event with no provider id (it cannot be deduplicated;
 * NULLs never collide under UNIQUE). Timestamps are unix seconds. */
static const char schema_v1[] =
    "CREATE TABLE inbox ("
    " id INTEGER PRIMARY KEY,"
    " dedupe TEXT UNIQUE,"
    " kind INTEGER NOT NULL,"
    " phone_number_id TEXT,"
    " waba_id TEXT,"
    " contact TEXT,"
    " contact_name TEXT,"
    " provider_id TEXT,"
    " status TEXT,"
    " ts INTEGER,"
    " data TEXT,"
    " state INTEGER NOT NULL DEFAULT 0,"
    " error_code TEXT,"
    " error TEXT,"
    " received_at INTEGER,"
    " finished_at INTEGER);"
    /* every state, not only pending: the counts for /healthz scan this index, not the table */
    "CREATE INDEX inbox_state ON inbox(state);"
    "CREATE TABLE contacts ("
    " channel TEXT NOT NULL,"
    " contact TEXT NOT NULL,"
    " name TEXT,"
    " last_inbound INTEGER NOT NULL DEFAULT 0,"
    " opted_in INTEGER NOT NULL DEFAULT 0,"
    " opt_in_source TEXT,"
    " opt_in_at INTEGER NOT NULL DEFAULT 0,"
    " session TEXT,"
    " PRIMARY KEY (channel, contact)) WITHOUT ROWID;"
    "CREATE TABLE outbox ("
    " id INTEGER PRIMARY KEY,"
    " local_id TEXT NOT NULL UNIQUE,"
    " channel TEXT,"
    " contact TEXT,"
    " kind TEXT,"
    " body TEXT,"
    " template_name TEXT,"
    " state INTEGER NOT NULL DEFAULT 0,"
    " wamid TEXT,"
    " error_code INTEGER,"
    " error_title TEXT,"
    " error_details TEXT,"
    " created_at INTEGER,"
    " sent_at INTEGER,"
    " delivered_at INTEGER,"
    " read_at INTEGER,"
    " failed_at INTEGER,"
    " broadcast TEXT);"
    "CREATE INDEX outbox_wamid ON outbox(wamid) WHERE wamid IS NOT NULL;"
    "CREATE INDEX outbox_queued ON outbox(id) WHERE state = 0;"
    "CREATE INDEX outbox_channel_state ON outbox(channel, state);"
    "CREATE TABLE triggers ("
    " channel TEXT NOT NULL,"
    " id TEXT NOT NULL,"
    " answer TEXT,"
    " created_at INTEGER,"
    " PRIMARY KEY (channel, id)) WITHOUT ROWID;";

/* Version 2: the daily limit's recipients and small durable settings (IF NOT EXISTS: a step
 * must be safe to run on a file that already has part of it). */
static const char schema_v2[] =
    "CREATE TABLE IF NOT EXISTS business_sends ("
    " channel TEXT NOT NULL,"
    " contact TEXT NOT NULL,"
    " at INTEGER NOT NULL,"
    " PRIMARY KEY (channel, contact)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS business_sends_at ON business_sends(channel, at);"
    "CREATE TABLE IF NOT EXISTS settings ("
    " key TEXT PRIMARY KEY,"
    " value TEXT,"
    " at INTEGER) WITHOUT ROWID;";

/* ---- prepared statements ------------------------------------------------------------------ */

enum stmt_id {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_INBOX_ADD,
    ST_INBOX_FINISH,
    ST_INBOX_PENDING,
    ST_INBOX_COUNTS,
    ST_CONTACT_GET,
    ST_CONTACT_PUT,
    ST_OUT_ADD,
    ST_OUT_SENT,
    ST_OUT_FAILED,
    ST_OUT_BY_WAMID,
    ST_OUT_STATUS,
    ST_OUT_QUEUED,
    ST_OUT_COUNTS_ALL,
    ST_OUT_COUNTS_CHANNEL,
    ST_TRIGGER_GET,
    ST_TRIGGER_PUT,
    ST_BIZ_PUT,
    ST_BIZ_RECENT,
    ST_BIZ_PRUNE,
    ST_SET_PUT,
    ST_SET_GET,
    ST_SET_PREFIX,
    ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_INBOX_ADD] = "INSERT INTO inbox (dedupe, kind, phone_number_id, waba_id, contact, "
                     "contact_name, provider_id, status, ts, data, received_at) "
                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) "
                     "ON CONFLICT (dedupe) DO NOTHING",
    [ST_INBOX_FINISH] = "UPDATE inbox SET state = ?2, error_code = ?3, error = ?4, "
                        "finished_at = CAST(strftime('%s', 'now') AS INTEGER) WHERE id = ?1",
    [ST_INBOX_PENDING] = "SELECT id, kind, phone_number_id, waba_id, contact, contact_name, "
                         "provider_id, status, ts, data FROM inbox "
                         "WHERE state = 0 AND id > ?1 ORDER BY id LIMIT ?2",
    [ST_INBOX_COUNTS] = "SELECT state, count(*) FROM inbox GROUP BY state",
    [ST_CONTACT_GET] = "SELECT name, last_inbound, opted_in, opt_in_source, opt_in_at, session "
                       "FROM contacts WHERE channel = ?1 AND contact = ?2",
    [ST_CONTACT_PUT] = "INSERT INTO contacts (channel, contact, name, last_inbound, opted_in, "
                       "opt_in_source, opt_in_at, session) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) "
                       "ON CONFLICT (channel, contact) DO UPDATE SET name = excluded.name, "
                       "last_inbound = excluded.last_inbound, opted_in = excluded.opted_in, "
                       "opt_in_source = excluded.opt_in_source, opt_in_at = excluded.opt_in_at, "
                       "session = excluded.session",
    [ST_OUT_ADD] = "INSERT INTO outbox (local_id, channel, contact, kind, body, template_name, "
                   "state, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7)",
    [ST_OUT_SENT] = "UPDATE outbox SET state = 1, wamid = ?2, sent_at = ?3 "
                    "WHERE local_id = ?1 AND state = 0",
    [ST_OUT_FAILED] = "UPDATE outbox SET state = 4, error_code = ?2, error_title = ?3, "
                      "error_details = ?4, failed_at = ?5 WHERE local_id = ?1 AND state <= 1",
    [ST_OUT_BY_WAMID] = "SELECT id, local_id FROM outbox WHERE wamid = ?1 ORDER BY id LIMIT 1",
    /* ?2 is the new state, ?3 the time, ?4 the error code; the WHERE is the transition rule */
    [ST_OUT_STATUS] = "UPDATE outbox SET state = ?2, "
                      "sent_at = CASE WHEN ?2 = 1 THEN ?3 ELSE sent_at END, "
                      "delivered_at = CASE WHEN ?2 = 2 THEN ?3 ELSE delivered_at END, "
                      "read_at = CASE WHEN ?2 = 3 THEN ?3 ELSE read_at END, "
                      "failed_at = CASE WHEN ?2 = 4 THEN ?3 ELSE failed_at END, "
                      "error_code = CASE WHEN ?2 = 4 THEN ?4 ELSE error_code END "
                      "WHERE id = ?1 AND ((?2 = 4 AND state <= 1) OR "
                      "(?2 BETWEEN 1 AND 3 AND state < ?2))",
    [ST_OUT_QUEUED] = "SELECT id, local_id, channel, contact, kind, body FROM outbox "
                      "WHERE state = 0 AND id > ?1 ORDER BY id LIMIT ?2",
    [ST_OUT_COUNTS_ALL] = "SELECT state, count(*) FROM outbox GROUP BY state",
    [ST_OUT_COUNTS_CHANNEL] = "SELECT state, count(*) FROM outbox WHERE channel = ?1 "
                              "GROUP BY state",
    [ST_TRIGGER_GET] = "SELECT answer FROM triggers WHERE channel = ?1 AND id = ?2",
    [ST_TRIGGER_PUT] = "INSERT INTO triggers (channel, id, answer, created_at) "
                       "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (channel, id) DO NOTHING",
    [ST_BIZ_PUT] = "INSERT INTO business_sends (channel, contact, at) VALUES (?1, ?2, ?3) "
                   "ON CONFLICT (channel, contact) DO UPDATE SET at = max(at, excluded.at)",
    [ST_BIZ_RECENT] = "SELECT contact, at FROM business_sends WHERE channel = ?1 AND at > ?2",
    [ST_BIZ_PRUNE] = "DELETE FROM business_sends WHERE at <= ?1",
    [ST_SET_PUT] = "INSERT INTO settings (key, value, at) VALUES (?1, ?2, ?3) "
                   "ON CONFLICT (key) DO UPDATE SET value = excluded.value, at = excluded.at",
    [ST_SET_GET] = "SELECT value, at FROM settings WHERE key = ?1",
    [ST_SET_PREFIX] = "SELECT key, value, at FROM settings WHERE key >= ?1 AND key < ?2 "
                      "ORDER BY key",
};

struct pl_store {
    sqlite3 *db;
    char *path;
    sqlite3_stmt *st[ST_COUNT];
};

/* ---- helpers ------------------------------------------------------------------------------ */

static int db_error(struct pl_store *s, struct pl_error *err, const char *op)
{
    return pl_error_set(err, "store", "%s: %s", op, sqlite3_errmsg(s->db));
}

static int oom(struct pl_error *err, const char *op)
{
    return pl_error_set(err, "store", "%s: out of memory", op);
}

/* The statement, reset and unbound: ready for new bindings. */
static sqlite3_stmt *stmt(struct pl_store *s, enum stmt_id id)
{
    sqlite3_stmt *st = s->st[id];

    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
}

/* Release a statement after use: its read lock and its bound (borrowed) strings. */
static void done(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* Bind a borrowed string (NULL binds SQL NULL). The caller keeps it alive until done(). */
static int bind_text(sqlite3_stmt *st, int i, const char *v)
{
    if (v == NULL)
        return sqlite3_bind_null(st, i);
    return sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
}

/* A malloc'd copy of a text column, NULL for SQL NULL; *bad set when the copy failed. */
static char *column_dup(sqlite3_stmt *st, int i, int *bad)
{
    const unsigned char *v = sqlite3_column_text(st, i);
    char *copy;

    if (v == NULL)
        return NULL;
    copy = strdup((const char *)v);
    if (copy == NULL)
        *bad = 1;
    return copy;
}

/* Run a statement that returns no rows. */
static int exec_stmt(struct pl_store *s, sqlite3_stmt *st, struct pl_error *err, const char *op)
{
    int rc = sqlite3_step(st);

    if (rc != SQLITE_DONE)
        db_error(s, err, op);
    done(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* mkdir -p of the folder holding path. */
static int make_parents(const char *path, struct pl_error *err)
{
    char *dir = strdup(path);
    char *p;
    int rc = 0;

    if (dir == NULL)
        return pl_error_set(err, "store", "%s: out of memory", path);
    p = strrchr(dir, '/');
    if (p == NULL || p == dir)
        goto out;
    *p = '\0';
    for (p = dir + 1; rc == 0; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(dir, 0755) != 0 && errno != EEXIST)
            rc = pl_error_set(err, "store", "%s: cannot create folder %s: %s", path, dir,
                              strerror(errno));
        *p = c;
        if (c == '\0')
            break;
    }
out:
    free(dir);
    return rc;
}

static int user_version(struct pl_store *s, int *version)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL);

    if (rc != SQLITE_OK)
        return -1;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : -1;
}

/* Bring the schema to PL_STORE_SCHEMA_VERSION. The version is read inside the write transaction,
 * so two connections opening a new file at once migrate it once. */
static int migrate(struct pl_store *s, struct pl_error *err)
{
    char sql[64];
    int version = 0;

    if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return pl_error_set(err, "store", "%s: migrate: %s", s->path, sqlite3_errmsg(s->db));
    if (user_version(s, &version) != 0) {
        pl_error_set(err, "store", "%s: read schema version: %s", s->path, sqlite3_errmsg(s->db));
        goto fail;
    }
    if (version > PL_STORE_SCHEMA_VERSION) {
        pl_error_set(err, "store",
                     "%s: state file was written by a newer Parley (schema %d; this build "
                     "knows %d)",
                     s->path, version, PL_STORE_SCHEMA_VERSION);
        goto fail;
    }
    /* each step brings the file from one version to the next; a new file takes them all */
    static const char *const steps[PL_STORE_SCHEMA_VERSION] = {schema_v1, schema_v2};
    for (; version < PL_STORE_SCHEMA_VERSION; version++) {
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d", version + 1);
        if (sqlite3_exec(s->db, steps[version], NULL, NULL, NULL) != SQLITE_OK ||
            sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
            pl_error_set(err, "store", "%s: migrate the schema to version %d: %s", s->path,
                         version + 1, sqlite3_errmsg(s->db));
            goto fail;
        }
    }
    if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        pl_error_set(err, "store", "%s: migrate: %s", s->path, sqlite3_errmsg(s->db));
        goto fail;
    }
    return 0;
fail:
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
}

/* ---- open and close ----------------------------------------------------------------------- */

struct pl_store *pl_store_open(const char *path, int sync_full, struct pl_error *err)
{
    struct pl_store *s;
    char pragmas[256];
    int i;

    if (path == NULL || path[0] == '\0') {
        pl_error_set(err, "store", "no state file path");
        return NULL;
    }
    s = calloc(1, sizeof *s);
    if (s == NULL || (s->path = strdup(path)) == NULL) {
        free(s);
        pl_error_set(err, "store", "%s: out of memory", path);
        return NULL;
    }
    if (make_parents(path, err) != 0)
        goto fail;
    if (sqlite3_open_v2(path, &s->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        pl_error_set(err, "store", "%s: cannot open: %s", path,
                     s->db != NULL ? sqlite3_errmsg(s->db) : "out of memory");
        goto fail;
    }
    sqlite3_extended_result_codes(s->db, 1);
    /* busy_timeout first: switching to WAL and migrating may wait for the other connection */
    snprintf(pragmas, sizeof pragmas,
             "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; PRAGMA synchronous = %s; "
             "PRAGMA temp_store = MEMORY; PRAGMA cache_size = -8000;",
             sync_full ? "FULL" : "NORMAL");
    if (sqlite3_exec(s->db, pragmas, NULL, NULL, NULL) != SQLITE_OK) {
        pl_error_set(err, "store", "%s: %s", path, sqlite3_errmsg(s->db));
        goto fail;
    }
    if (migrate(s, err) != 0)
        goto fail;
    for (i = 0; i < ST_COUNT; i++) {
        if (sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i],
                               NULL) != SQLITE_OK) {
            pl_error_set(err, "store", "%s: prepare: %s", path, sqlite3_errmsg(s->db));
            goto fail;
        }
    }
    return s;
fail:
    pl_store_close(s);
    return NULL;
}

void pl_store_close(struct pl_store *s)
{
    int i;

    if (s == NULL)
        return;
    for (i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(s->st[i]);
    sqlite3_close_v2(s->db);
    free(s->path);
    free(s);
}

/* ---- transactions ------------------------------------------------------------------------- */

int pl_store_begin(struct pl_store *s, struct pl_error *err)
{
    return exec_stmt(s, stmt(s, ST_BEGIN), err, "begin");
}

/* On failure the transaction is rolled back, so the connection is ready for the next one. */
int pl_store_commit(struct pl_store *s, struct pl_error *err)
{
    if (exec_stmt(s, stmt(s, ST_COMMIT), err, "commit") == 0)
        return 0;
    pl_store_rollback(s);
    return -1;
}

void pl_store_rollback(struct pl_store *s)
{
    if (!sqlite3_get_autocommit(s->db)) {
        sqlite3_step(stmt(s, ST_ROLLBACK));
        done(s->st[ST_ROLLBACK]);
    }
}

/* ---- inbox -------------------------------------------------------------------------------- */

/* Builds a key into a buffer, hashing every byte (FNV-1a 64) so a key that does not fit can end in
 * a hash of the whole: deterministic, and two long keys that differ only past the cut stay
 * different. */
struct key {
    char *buf;
    size_t size, len;
    uint64_t hash;
};

static void key_put(struct key *k, const char *v)
{
    for (; v != NULL && *v != '\0'; v++) {
        k->hash = (k->hash ^ (unsigned char)*v) * 1099511628211ULL;
        if (k->len + 1 < k->size)
            k->buf[k->len] = *v;
        k->len++;
    }
}

static void key_num(struct key *k, long long v)
{
    char num[24];

    snprintf(num, sizeof num, "%lld", v);
    key_put(k, num);
}

static void key_end(struct key *k)
{
    if (k->size == 0)
        return;
    if (k->len < k->size) {
        k->buf[k->len] = '\0';
        return;
    }
    /* cut: the first size - 18 bytes, '#', 16 hex digits; tiny buffers just cut */
    if (k->size >= 32)
        snprintf(k->buf + k->size - 18, 18, "#%016llx", (unsigned long long)k->hash);
    k->buf[k->size - 1] = '\0';
}

static int empty(const char *v)
{
    return v == NULL || v[0] == '\0';
}

/* As documented in store.h, plus: a trigger is "g:<phone_number_id>:<id>". An event that lacks
 * the provider id its key is made of (message, press, status, template status and trigger
 * without id) gets "" (no key): it is stored but cannot be deduplicated. A key longer than size
 * keeps its first size - 18 bytes and ends in "#" and 16 hex digits of a hash of the whole key. */
const char *pl_store_dedupe_key(const struct pl_event *ev, char *buf, size_t size)
{
    struct key k = {buf, size, 0, 14695981039346656037ULL};

    if (ev == NULL)
        goto out;
    switch (ev->kind) {
    case PL_EVENT_MESSAGE:
    case PL_EVENT_PRESS:
        if (empty(ev->id))
            break;
        key_put(&k, "m:");
        key_put(&k, ev->id);
        break;
    case PL_EVENT_STATUS:
        if (empty(ev->id))
            break;
        key_put(&k, "s:");
        key_put(&k, ev->id);
        key_put(&k, ":");
        key_put(&k, ev->status);
        break;
    case PL_EVENT_TEMPLATE_STATUS:
        if (empty(ev->id))
            break;
        key_put(&k, "t:");
        key_put(&k, ev->id);
        key_put(&k, ":");
        key_put(&k, ev->status);
        key_put(&k, ":");
        key_num(&k, ev->timestamp);
        break;
    case PL_EVENT_QUALITY:
        key_put(&k, "q:");
        key_put(&k, ev->waba_id);
        key_put(&k, ":");
        key_put(&k, ev->status);
        key_put(&k, ":");
        key_num(&k, ev->timestamp);
        break;
    case PL_EVENT_TRIGGER:
        if (empty(ev->id))
            break;
        key_put(&k, "g:");
        key_put(&k, ev->phone_number_id);
        key_put(&k, ":");
        key_put(&k, ev->id);
        break;
    }
out:
    key_end(&k);
    return buf;
}

int pl_store_inbox_add(struct pl_store *s, const struct pl_event *ev, long long received_at,
                       long long *rowid, struct pl_error *err)
{
    char key[DEDUPE_MAX];
    char *data = NULL;
    sqlite3_stmt *st;
    int rc;

    *rowid = 0;
    if (ev->data != NULL) {
        data = json_dumps(ev->data, JSON_COMPACT | JSON_ENCODE_ANY);
        if (data == NULL)
            return oom(err, "inbox_add");
    }
    pl_store_dedupe_key(ev, key, sizeof key);
    st = stmt(s, ST_INBOX_ADD);
    bind_text(st, 1, key[0] != '\0' ? key : NULL);
    sqlite3_bind_int(st, 2, (int)ev->kind);
    bind_text(st, 3, ev->phone_number_id);
    bind_text(st, 4, ev->waba_id);
    bind_text(st, 5, ev->contact);
    bind_text(st, 6, ev->contact_name);
    bind_text(st, 7, ev->id);
    bind_text(st, 8, ev->status);
    sqlite3_bind_int64(st, 9, ev->timestamp);
    bind_text(st, 10, data);
    sqlite3_bind_int64(st, 11, received_at);
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE && sqlite3_changes(s->db) == 1)
        *rowid = sqlite3_last_insert_rowid(s->db);
    done(st);
    free(data);
    if (rc != SQLITE_DONE)
        return db_error(s, err, "inbox_add");
    return 0;
}

/* An unknown rowid changes nothing and is not an error: the engine finishes a whole turn in one
 * transaction, and one stray id must not make the turn fail (and run again) forever. */
int pl_store_inbox_finish(struct pl_store *s, long long rowid, enum pl_inbox_state state,
                          const char *code, const char *message, struct pl_error *err)
{
    sqlite3_stmt *st = stmt(s, ST_INBOX_FINISH);

    sqlite3_bind_int64(st, 1, rowid);
    sqlite3_bind_int(st, 2, (int)state);
    bind_text(st, 3, code);
    bind_text(st, 4, message);
    return exec_stmt(s, st, err, "inbox_finish");
}

/* Rebuild an event from a pending row. Returns 0, -1 when memory ran out. Data that is not JSON
 * (the file was edited by hand) becomes NULL rather than blocking recovery. */
static int row_event(sqlite3_stmt *st, struct pl_event *ev)
{
    const char *data;
    int bad = 0;

    memset(ev, 0, sizeof *ev);
    ev->kind = (enum pl_event_kind)sqlite3_column_int(st, 1);
    ev->phone_number_id = column_dup(st, 2, &bad);
    ev->waba_id = column_dup(st, 3, &bad);
    ev->contact = column_dup(st, 4, &bad);
    ev->contact_name = column_dup(st, 5, &bad);
    ev->id = column_dup(st, 6, &bad);
    ev->status = column_dup(st, 7, &bad);
    ev->timestamp = sqlite3_column_int64(st, 8);
    data = (const char *)sqlite3_column_text(st, 9);
    if (data != NULL)
        ev->data = json_loads(data, JSON_DECODE_ANY, NULL);
    if (bad) {
        pl_event_clear(ev);
        return -1;
    }
    return 0;
}

int pl_store_inbox_pending(struct pl_store *s,
                           int (*fn)(void *ud, long long rowid, const struct pl_event *ev),
                           void *ud, struct pl_error *err)
{
    struct pl_event evs[ITER_BATCH];
    long long ids[ITER_BATCH];
    long long last = 0;
    size_t n, i;
    int rc = 0;

    do {
        sqlite3_stmt *st = stmt(s, ST_INBOX_PENDING);
        int step;

        sqlite3_bind_int64(st, 1, last);
        sqlite3_bind_int(st, 2, ITER_BATCH);
        n = 0;
        while ((step = sqlite3_step(st)) == SQLITE_ROW) {
            ids[n] = sqlite3_column_int64(st, 0);
            if (row_event(st, &evs[n]) != 0) {
                rc = oom(err, "inbox_pending");
                break;
            }
            n++;
        }
        if (rc == 0 && step != SQLITE_DONE)
            rc = db_error(s, err, "inbox_pending");
        done(st);
        for (i = 0; i < n; i++) {
            if (rc == 0 && fn(ud, ids[i], &evs[i]) != 0)
                rc = -1;
            pl_event_clear(&evs[i]);
        }
        if (n > 0)
            last = ids[n - 1];
    } while (rc == 0 && n == ITER_BATCH);
    return rc;
}

int pl_store_inbox_counts(struct pl_store *s, long long *pending, long long *done_,
                          long long *failed, struct pl_error *err)
{
    sqlite3_stmt *st = stmt(s, ST_INBOX_COUNTS);
    long long counts[3] = {0, 0, 0};
    int step;

    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        int state = sqlite3_column_int(st, 0);
        if (state >= 0 && state < 3)
            counts[state] = sqlite3_column_int64(st, 1);
    }
    done(st);
    if (step != SQLITE_DONE)
        return db_error(s, err, "inbox_counts");
    if (pending != NULL)
        *pending = counts[PL_INBOX_PENDING];
    if (done_ != NULL)
        *done_ = counts[PL_INBOX_DONE];
    if (failed != NULL)
        *failed = counts[PL_INBOX_FAILED];
    return 0;
}

/* ---- contacts and sessions ---------------------------------------------------------------- */

int pl_store_contact_get(struct pl_store *s, const char *channel, const char *contact,
                         struct pl_contact *c, struct pl_error *err)
{
    sqlite3_stmt *st = stmt(s, ST_CONTACT_GET);
    int step, bad = 0;

    memset(c, 0, sizeof *c);
    bind_text(st, 1, channel);
    bind_text(st, 2, contact);
    step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        c->name = column_dup(st, 0, &bad);
        c->last_inbound = sqlite3_column_int64(st, 1);
        c->opted_in = sqlite3_column_int(st, 2);
        c->opt_in_source = column_dup(st, 3, &bad);
        c->opt_in_at = sqlite3_column_int64(st, 4);
        c->session = column_dup(st, 5, &bad);
    }
    done(st);
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        return db_error(s, err, "contact_get");
    if (bad) {
        pl_contact_clear(c);
        return oom(err, "contact_get");
    }
    return 0;
}

int pl_store_contact_put(struct pl_store *s, const char *channel, const char *contact,
                         const struct pl_contact *c, struct pl_error *err)
{
    sqlite3_stmt *st = stmt(s, ST_CONTACT_PUT);

    bind_text(st, 1, channel);
    bind_text(st, 2, contact);
    bind_text(st, 3, c->name);
    sqlite3_bind_int64(st, 4, c->last_inbound);
    sqlite3_bind_int(st, 5, c->opted_in);
    bind_text(st, 6, c->opt_in_source);
    sqlite3_bind_int64(st, 7, c->opt_in_at);
    bind_text(st, 8, c->session);
    return exec_stmt(s, st, err, "contact_put");
}

void pl_contact_clear(struct pl_contact *c)
{
    if (c == NULL)
        return;
    free(c->name);
    free(c->opt_in_source);
    free(c->session);
    memset(c, 0, sizeof *c);
}

/* ---- outbox ------------------------------------------------------------------------------- */

const char *pl_out_state_name(enum pl_out_state st)
{
    switch (st) {
    case PL_OUT_QUEUED:
        return "queued";
    case PL_OUT_SENT:
        return "sent";
    case PL_OUT_DELIVERED:
        return "delivered";
    case PL_OUT_READ:
        return "read";
    case PL_OUT_FAILED:
        return "failed";
    }
    return "unknown";
}

/* A local_id already in the outbox is an error (UNIQUE constraint). */
int pl_store_outbox_add(struct pl_store *s, const char *local_id, const char *channel,
                        const char *contact, const char *kind, const char *body,
                        const char *template_name, long long created_at, struct pl_error *err)
{
    sqlite3_stmt *st = stmt(s, ST_OUT_ADD);

    bind_text(st, 1, local_id);
    bind_text(st, 2, channel);
    bind_text(st, 3, contact);
    bind_text(st, 4, kind);
    bind_text(st, 5, body);
    bind_text(st, 6, template_name);
    sqlite3_bind_int64(st, 7, created_at);
    return exec_stmt(s, st, err, "outbox_add");
}

/* Records wamid and sent_at only while the message is QUEUED; otherwise (already sent, or failed)
 * nothing changes and this returns 0. An unknown local_id changes nothing and returns 0 too (the
 * engine records a batch of reports in one transaction; one stray id must not wedge it). */
int pl_store_outbox_sent(struct pl_store *s, const char *local_id, const char *wamid, long long at,
                         struct pl_error *err)
{
    sqlite3_stmt *st = stmt(s, ST_OUT_SENT);

    bind_text(st, 1, local_id);
    bind_text(st, 2, wamid);
    sqlite3_bind_int64(st, 3, at);
    return exec_stmt(s, st, err, "outbox_sent");
}

/* Applies only while the message is QUEUED or SENT: once delivered or read it was not lost, and
 * FAILED is final. Otherwise returns 0 and changes nothing; so does an unknown local_id. */
int pl_store_outbox_failed(struct pl_store *s, const char *local_id, long code, const char *title,
                           const char *details, long long at, struct pl_error *err)
{
    sqlite3_stmt *st = stmt(s, ST_OUT_FAILED);

    bind_text(st, 1, local_id);
    sqlite3_bind_int64(st, 2, code);
    bind_text(st, 3, title);
    bind_text(st, 4, details);
    sqlite3_bind_int64(st, 5, at);
    return exec_stmt(s, st, err, "outbox_failed");
}

/* The rule: SENT, DELIVERED and READ move the row only forward (READ may skip DELIVERED; a
 * DELIVERED after READ changes nothing). FAILED applies only to a QUEUED or SENT row: a failure
 * reported after delivered or read is ignored (the customer has the message), and nothing leaves
 * FAILED. The moved-to state's *_at column is set to at (error_code = code for FAILED); the
 * columns of skipped states stay NULL. st QUEUED (or out of range) changes nothing. Status
 * webhooks can outrun pl_store_outbox_sent (the provider may report before we record its
 * answer): then the wamid is not known yet, local_id is "" and *changed is 0. */
int pl_store_outbox_status(struct pl_store *s, const char *wamid, enum pl_out_state st_new,
                           long code, long long at, char *local_id, size_t size, int *changed,
                           struct pl_error *err)
{
    sqlite3_stmt *st = stmt(s, ST_OUT_BY_WAMID);
    long long id = 0;
    int step;

    *changed = 0;
    if (local_id != NULL && size > 0)
        local_id[0] = '\0';
    bind_text(st, 1, wamid);
    step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        const char *lid = (const char *)sqlite3_column_text(st, 1);
        id = sqlite3_column_int64(st, 0);
        if (local_id != NULL && size > 0)
            snprintf(local_id, size, "%s", lid != NULL ? lid : "");
    }
    done(st);
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        return db_error(s, err, "outbox_status");
    if (step == SQLITE_DONE || (int)st_new < PL_OUT_SENT || (int)st_new > PL_OUT_FAILED)
        return 0;
    st = stmt(s, ST_OUT_STATUS);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int(st, 2, (int)st_new);
    sqlite3_bind_int64(st, 3, at);
    sqlite3_bind_int64(st, 4, code);
    if (exec_stmt(s, st, err, "outbox_status") != 0)
        return -1;
    *changed = sqlite3_changes(s->db) > 0;
    return 0;
}

struct queued_row {
    long long id;
    char *local_id, *channel, *contact, *kind, *body;
};

static void queued_row_clear(struct queued_row *r)
{
    free(r->local_id);
    free(r->channel);
    free(r->contact);
    free(r->kind);
    free(r->body);
}

int pl_store_outbox_queued(struct pl_store *s,
                           int (*fn)(void *ud, const char *local_id, const char *channel,
                                     const char *contact, const char *kind, const char *body),
                           void *ud, struct pl_error *err)
{
    struct queued_row rows[ITER_BATCH];
    long long last = 0;
    size_t n, i;
    int rc = 0;

    do {
        sqlite3_stmt *st = stmt(s, ST_OUT_QUEUED);
        int step, bad = 0;

        sqlite3_bind_int64(st, 1, last);
        sqlite3_bind_int(st, 2, ITER_BATCH);
        n = 0;
        while ((step = sqlite3_step(st)) == SQLITE_ROW) {
            struct queued_row *r = &rows[n++];
            r->id = sqlite3_column_int64(st, 0);
            r->local_id = column_dup(st, 1, &bad);
            r->channel = column_dup(st, 2, &bad);
            r->contact = column_dup(st, 3, &bad);
            r->kind = column_dup(st, 4, &bad);
            r->body = column_dup(st, 5, &bad);
            if (bad) {
                rc = oom(err, "outbox_queued");
                break;
            }
        }
        if (rc == 0 && step != SQLITE_DONE)
            rc = db_error(s, err, "outbox_queued");
        done(st);
        for (i = 0; i < n; i++) {
            if (rc == 0 && fn(ud, rows[i].local_id, rows[i].channel, rows[i].contact, rows[i].kind,
                              rows[i].body) != 0)
                rc = -1;
            queued_row_clear(&rows[i]);
        }
        if (n > 0)
            last = rows[n - 1].id;
    } while (rc == 0 && n == ITER_BATCH);
    return rc;
}

int pl_store_outbox_counts(struct pl_store *s, const char *channel, long long *counts,
                           struct pl_error *err)
{
    sqlite3_stmt *st;
    int step;

    memset(counts, 0, (PL_OUT_FAILED + 1) * sizeof *counts);
    if (channel != NULL) {
        st = stmt(s, ST_OUT_COUNTS_CHANNEL);
        bind_text(st, 1, channel);
    } else {
        st = stmt(s, ST_OUT_COUNTS_ALL);
    }
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        int state = sqlite3_column_int(st, 0);
        if (state >= PL_OUT_QUEUED && state <= PL_OUT_FAILED)
            counts[state] = sqlite3_column_int64(st, 1);
    }
    done(st);
    if (step != SQLITE_DONE)
        return db_error(s, err, "outbox_counts");
    return 0;
}

/* ---- trigger answers ---------------------------------------------------------------------- */

int pl_store_trigger_get(struct pl_store *s, const char *channel, const char *id, char **answer,
                         struct pl_error *err)
{
    sqlite3_stmt *st = stmt(s, ST_TRIGGER_GET);
    int step, bad = 0;

    *answer = NULL;
    bind_text(st, 1, channel);
    bind_text(st, 2, id);
    step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        *answer = column_dup(st, 0, &bad);
    done(st);
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        return db_error(s, err, "trigger_get");
    if (bad)
        return oom(err, "trigger_get");
    return 0;
}

int pl_store_trigger_put(struct pl_store *s, const char *channel, const char *id,
                         const char *answer, long long at, struct pl_error *err)
{
    sqlite3_stmt *st = stmt(s, ST_TRIGGER_PUT);

    bind_text(st, 1, channel);
    bind_text(st, 2, id);
    bind_text(st, 3, answer);
    sqlite3_bind_int64(st, 4, at);
    return exec_stmt(s, st, err, "trigger_put");
}

/* ---- business-initiated recipients -------------------------------------------------------- */

int pl_store_business_add(struct pl_store *s, const char *channel, const char *contact,
                          long long at, struct pl_error *err)
{
    sqlite3_stmt *st = stmt(s, ST_BIZ_PUT);

    bind_text(st, 1, channel);
    bind_text(st, 2, contact);
    sqlite3_bind_int64(st, 3, at);
    return exec_stmt(s, st, err, "business_add");
}

int pl_store_business_recent(struct pl_store *s, const char *channel, long long since,
                             int (*fn)(void *ud, const char *contact, long long at), void *ud,
                             struct pl_error *err)
{
    sqlite3_stmt *st = stmt(s, ST_BIZ_RECENT);
    int step, stopped = 0;

    bind_text(st, 1, channel);
    sqlite3_bind_int64(st, 2, since);
    while ((step = sqlite3_step(st)) == SQLITE_ROW)
        if (fn(ud, (const char *)sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1)) != 0) {
            stopped = 1;
            break;
        }
    done(st);
    if (stopped)
        return -1;
    if (step != SQLITE_DONE)
        return db_error(s, err, "business_recent");
    return 0;
}

int pl_store_business_prune(struct pl_store *s, long long before, struct pl_error *err)
{
    sqlite3_stmt *st = stmt(s, ST_BIZ_PRUNE);

    sqlite3_bind_int64(st, 1, before);
    return exec_stmt(s, st, err, "business_prune");
}

/* ---- settings ----------------------------------------------------------------------------- */

int pl_store_setting_put(struct pl_store *s, const char *key, const char *value, long long at,
                         struct pl_error *err)
{
    sqlite3_stmt *st = stmt(s, ST_SET_PUT);

    bind_text(st, 1, key);
    bind_text(st, 2, value);
    sqlite3_bind_int64(st, 3, at);
    return exec_stmt(s, st, err, "setting_put");
}

int pl_store_setting_get(struct pl_store *s, const char *key, char **value, long long *at,
                         struct pl_error *err)
{
    sqlite3_stmt *st = stmt(s, ST_SET_GET);
    int step, bad = 0;

    *value = NULL;
    if (at != NULL)
        *at = 0;
    bind_text(st, 1, key);
    step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        *value = column_dup(st, 0, &bad);
        if (at != NULL)
            *at = sqlite3_column_int64(st, 1);
    }
    done(st);
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        return db_error(s, err, "setting_get");
    if (bad)
        return oom(err, "setting_get");
    return 0;
}

int pl_store_settings_prefix(struct pl_store *s, const char *prefix,
                             int (*fn)(void *ud, const char *key, const char *value,
                                       long long at),
                             void *ud, struct pl_error *err)
{
    sqlite3_stmt *st = stmt(s, ST_SET_PREFIX);
    char *end = malloc(strlen(prefix) + 2);
    int step, stopped = 0;

    if (end == NULL)
        return oom(err, "settings_prefix");
    /* every key that starts with prefix sorts before prefix + U+10FFFF-ish high byte */
    strcpy(end, prefix);
    strcat(end, "\xff");
    bind_text(st, 1, prefix);
    bind_text(st, 2, end);
    while ((step = sqlite3_step(st)) == SQLITE_ROW)
        if (fn(ud, (const char *)sqlite3_column_text(st, 0),
               (const char *)sqlite3_column_text(st, 1), sqlite3_column_int64(st, 2)) != 0) {
            stopped = 1;
            break;
        }
    done(st);
    free(end);
    if (stopped)
        return -1;
    if (step != SQLITE_DONE)
        return db_error(s, err, "settings_prefix");
    return 0;
}
