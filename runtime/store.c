/* store.c - durable state on SQLite: the inbox, contacts and sessions, the outbox, trigger
 * answers, business recipients, settings and broadcast jobs. The only file that speaks SQL. Owns
 * the schema (created and migrated by PRAGMA user_version) and one connection per struct pl_store,
 * with every statement prepared once at open and reused. */
#include "store.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "json.h"
#include "metrics.h"

/* Rows read per round by the iterators: the statement is reset before the callback runs, so the
 * callback may use the same connection (finish a row, record a send) without disturbing the scan,
 * and memory stays bounded however many rows are pending. */
#define ITER_BATCH 128

/* A log restart: passive passes (at most CATCH_UP_PASSES) until one finds at most
 * FINAL_PASS_FRAMES frames to copy (or half the restart size, if that is fewer); then
 * the last pass, which the writers wait for. */
#define CATCH_UP_PASSES   8
#define FINAL_PASS_FRAMES 128

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
    /* version 4 replaces this index with inbox_pending */
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

/* Version 3: broadcast jobs and their recipients (`parley broadcast`), and the indexes that
 * per-job and per-template counts read. outbox.broadcast exists since version 1. */
static const char schema_v3[] =
    "CREATE TABLE IF NOT EXISTS broadcasts ("
    " id TEXT PRIMARY KEY,"
    " channel TEXT NOT NULL,"
    " template TEXT NOT NULL,"
    " language TEXT NOT NULL,"
    " file TEXT NOT NULL,"
    " rate REAL NOT NULL,"
    " state TEXT NOT NULL,"
    " stop_code TEXT,"
    " file_size INTEGER NOT NULL DEFAULT 0,"
    " file_mtime INTEGER NOT NULL DEFAULT 0,"
    " import_offset INTEGER NOT NULL DEFAULT 0,"
    " import_line INTEGER NOT NULL DEFAULT 0,"
    " created_at INTEGER NOT NULL,"
    " finished_at INTEGER NOT NULL DEFAULT 0,"
    " total INTEGER NOT NULL DEFAULT 0,"
    " sent INTEGER NOT NULL DEFAULT 0,"
    " skipped INTEGER NOT NULL DEFAULT 0,"
    " failed INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS broadcasts_key ON broadcasts(channel, template, language, file);"
    "CREATE INDEX IF NOT EXISTS broadcasts_created ON broadcasts(created_at);"
    "CREATE TABLE IF NOT EXISTS broadcast_recipients ("
    " job TEXT NOT NULL,"
    " line INTEGER NOT NULL,"
    " wa_id TEXT,"
    " params TEXT,"
    " opt_in INTEGER NOT NULL DEFAULT 0,"
    " state TEXT NOT NULL DEFAULT 'pending',"
    " code TEXT,"
    " detail TEXT,"
    " local_id TEXT,"
    " PRIMARY KEY (job, line)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS broadcast_recipients_state ON broadcast_recipients(job, state, "
    "line);"
    "CREATE INDEX IF NOT EXISTS broadcast_recipients_wa ON broadcast_recipients(job, wa_id);"
    "CREATE INDEX IF NOT EXISTS outbox_broadcast ON outbox(broadcast, state, error_code) "
    " WHERE broadcast IS NOT NULL;"
    "CREATE INDEX IF NOT EXISTS outbox_template ON outbox(channel, template_name, state) "
    " WHERE template_name IS NOT NULL;";

/* Version 4: fewer index writes per event. inbox_state indexed every row by state, so finishing
 * an event moved its entry; only the pending rows are ever looked up by state, and a partial
 * index holds just those (finishing deletes the entry). outbox_channel_state served only the
 * counts by state, which now scan the table: the inbox's are read by tests alone, the outbox's
 * once at start-up when the queue was spilled. Neither runs per event. */
static const char schema_v4[] =
    "DROP INDEX IF EXISTS inbox_state;"
    "CREATE INDEX IF NOT EXISTS inbox_pending ON inbox(id) WHERE state = 0;"
    "DROP INDEX IF EXISTS outbox_channel_state;";

/* Version 5: the phone number each message goes out from, fixed when it is queued. A channel
 * moved to another number (a reload) still sends what it queued before from the number its
 * customers wrote to; rows from before version 5 have NULL and use the channel's current one. */
static const char schema_v5[] = "ALTER TABLE outbox ADD COLUMN phone_number_id TEXT;";

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
    ST_CONTACT_SET,
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
    ST_SET_PUT,
    ST_SET_GET,
    ST_SET_PREFIX,
    ST_OUT_ADD_JOB,
    ST_OUT_TPL_COUNTS,
    ST_OUT_JOB_COUNTS,
    ST_OUT_JOB_DELIVERY,
    ST_BIZ_COUNT,
    ST_BIZ_AT,
    ST_BC_CREATE,
    ST_BC_GET,
    ST_BC_FIND,
    ST_BC_LIST,
    ST_BC_STATE,
    ST_BC_IMPORTED,
    ST_RC_ADD,
    ST_RC_FIND_WA,
    ST_RC_PENDING,
    ST_RC_QUEUED,
    ST_RC_SET,
    ST_RC_FINISH,
    ST_RC_COUNTS,
    ST_RC_UNSENT,
    ST_CONTACT_OPT_IN,
    ST_DATA_VERSION,
    ST_COUNT
};

#define BC_COLUMNS                                                                           \
    "id, channel, template, language, file, rate, state, stop_code, file_size, file_mtime, " \
    "import_offset, import_line, created_at, finished_at, total, sent, skipped, failed"

/* The merge both contact writes share. Consent is never withdrawn by a write that read the row
 * before another process (a broadcast) recorded it. Only ST_CONTACT_PUT reads the row back:
 * RETURNING costs SQLite a temporary table per statement, most of the write's price. */
#define CONTACT_UPSERT                                                            \
    "INSERT INTO contacts (channel, contact, name, last_inbound, opted_in, "      \
    "opt_in_source, opt_in_at, session) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) " \
    "ON CONFLICT (channel, contact) DO UPDATE SET "                               \
    "name = coalesce(excluded.name, contacts.name), "                             \
    "last_inbound = max(coalesce(contacts.last_inbound, 0), "                     \
    "coalesce(excluded.last_inbound, 0)), "                                       \
    "opted_in = max(coalesce(contacts.opted_in, 0), "                             \
    "coalesce(excluded.opted_in, 0)), "                                           \
    "opt_in_source = CASE WHEN coalesce(contacts.opted_in, 0) = 0 "               \
    "THEN excluded.opt_in_source ELSE contacts.opt_in_source END, "               \
    "opt_in_at = CASE WHEN coalesce(contacts.opted_in, 0) = 0 "                   \
    "THEN excluded.opt_in_at ELSE contacts.opt_in_at END, "                       \
    "session = excluded.session "

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_INBOX_ADD] = "INSERT INTO inbox (dedupe, kind, phone_number_id, waba_id, contact, "
                     "contact_name, provider_id, status, ts, data, received_at) "
                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) "
                     "ON CONFLICT (dedupe) DO NOTHING",
    [ST_INBOX_FINISH] = "UPDATE inbox SET state = ?2, error_code = ?3, error = ?4, "
                        "finished_at = ?5 WHERE id = ?1",
    [ST_INBOX_PENDING] = "SELECT id, kind, phone_number_id, waba_id, contact, contact_name, "
                         "provider_id, status, ts, data FROM inbox "
                         "WHERE state = 0 AND id > ?1 ORDER BY id LIMIT ?2",
    [ST_INBOX_COUNTS] = "SELECT state, count(*) FROM inbox GROUP BY state",
    [ST_CONTACT_GET] = "SELECT name, last_inbound, opted_in, opt_in_source, opt_in_at, session "
                       "FROM contacts WHERE channel = ?1 AND contact = ?2",
    [ST_CONTACT_PUT] =
        CONTACT_UPSERT "RETURNING name, last_inbound, opted_in, opt_in_source, opt_in_at, session",
    [ST_CONTACT_SET] = CONTACT_UPSERT,
    [ST_OUT_ADD] = "INSERT INTO outbox (local_id, channel, contact, kind, body, template_name, "
                   "state, created_at, phone_number_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7, ?8)",
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
    /* broadcast rows belong to the `parley broadcast` process that queued them */
    [ST_OUT_QUEUED] = "SELECT id, local_id, channel, contact, kind, body, created_at, "
                      "phone_number_id FROM outbox "
                      "WHERE state = 0 AND id > ?1 AND broadcast IS NULL ORDER BY id LIMIT ?2",
    [ST_OUT_COUNTS_ALL] = "SELECT state, count(*) FROM outbox GROUP BY state",
    [ST_OUT_COUNTS_CHANNEL] = "SELECT state, count(*) FROM outbox WHERE channel = ?1 "
                              "GROUP BY state",
    [ST_TRIGGER_GET] = "SELECT answer FROM triggers WHERE channel = ?1 AND id = ?2",
    [ST_TRIGGER_PUT] = "INSERT INTO triggers (channel, id, answer, created_at) "
                       "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (channel, id) DO NOTHING",
    [ST_BIZ_PUT] = "INSERT INTO business_sends (channel, contact, at) VALUES (?1, ?2, ?3) "
                   "ON CONFLICT (channel, contact) DO UPDATE SET at = max(at, excluded.at)",
    [ST_SET_PUT] = "INSERT INTO settings (key, value, at) VALUES (?1, ?2, ?3) "
                   "ON CONFLICT (key) DO UPDATE SET value = excluded.value, at = excluded.at",
    [ST_SET_GET] = "SELECT value, at FROM settings WHERE key = ?1",
    [ST_SET_PREFIX] = "SELECT key, value, at FROM settings WHERE key >= ?1 AND key < ?2 "
                      "ORDER BY key",
    [ST_OUT_ADD_JOB] = "INSERT INTO outbox (local_id, channel, contact, kind, body, template_name, "
                       "state, created_at, broadcast, phone_number_id) "
                       "VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7, ?8, ?9)",
    [ST_OUT_TPL_COUNTS] = "SELECT channel, template_name, state, count(*) FROM outbox "
                          "WHERE template_name IS NOT NULL GROUP BY channel, template_name, state",
    [ST_OUT_JOB_COUNTS] = "SELECT b.id, b.channel, b.template, o.state, count(*) "
                          "FROM broadcasts b JOIN outbox o ON o.broadcast = b.id "
                          "WHERE b.created_at >= ?1 GROUP BY b.id, o.state",
    [ST_OUT_JOB_DELIVERY] = "SELECT state, error_code, count(*) FROM outbox WHERE broadcast = ?1 "
                            "GROUP BY state, error_code",
    [ST_BIZ_COUNT] = "SELECT count(*) FROM business_sends WHERE channel = ?1 AND at > ?2",
    [ST_BIZ_AT] = "SELECT at FROM business_sends WHERE channel = ?1 AND contact = ?2",
    [ST_BC_CREATE] = "INSERT INTO broadcasts (" BC_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, "
                     "?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
    [ST_BC_GET] = "SELECT " BC_COLUMNS " FROM broadcasts WHERE id = ?1",
    [ST_BC_FIND] = "SELECT " BC_COLUMNS " FROM broadcasts WHERE channel = ?1 AND template = ?2 "
                   "AND language = ?3 AND file = ?4 ORDER BY created_at DESC, id DESC LIMIT 1",
    [ST_BC_LIST] = "SELECT " BC_COLUMNS " FROM broadcasts ORDER BY created_at DESC, id DESC "
                   "LIMIT ?1",
    /* the totals are counted in the same statement, so they match the rows at this moment */
    [ST_BC_STATE] =
        "UPDATE broadcasts SET state = ?2, stop_code = ?3, finished_at = ?4, rate = ?5, "
        "total = (SELECT count(*) FROM broadcast_recipients WHERE job = ?1), "
        "sent = (SELECT count(*) FROM broadcast_recipients WHERE job = ?1 "
        "AND state = 'sent'), "
        "skipped = (SELECT count(*) FROM broadcast_recipients WHERE job = ?1 "
        "AND state = 'skipped'), "
        "failed = (SELECT count(*) FROM broadcast_recipients WHERE job = ?1 "
        "AND state = 'failed') WHERE id = ?1",
    [ST_BC_IMPORTED] = "UPDATE broadcasts SET import_offset = ?2, import_line = ?3 WHERE id = ?1",
    [ST_RC_ADD] =
        "INSERT INTO broadcast_recipients (job, line, wa_id, params, opt_in, state, code, "
        "detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (job, line) DO NOTHING",
    [ST_RC_FIND_WA] = "SELECT line FROM broadcast_recipients WHERE job = ?1 AND wa_id = ?2 "
                      "ORDER BY line LIMIT 1",
    [ST_RC_PENDING] = "SELECT line, wa_id, params, opt_in FROM broadcast_recipients "
                      "WHERE job = ?1 AND state = 'pending' AND line > ?2 ORDER BY line LIMIT ?3",
    [ST_RC_QUEUED] = "SELECT r.line, r.wa_id, r.local_id, o.body, o.state, o.created_at, "
                     "o.phone_number_id "
                     "FROM broadcast_recipients r LEFT JOIN outbox o ON o.local_id = r.local_id "
                     "WHERE r.job = ?1 AND r.state = 'queued' AND r.line > ?2 "
                     "ORDER BY r.line LIMIT ?3",
    [ST_RC_SET] = "UPDATE broadcast_recipients SET state = ?3, code = ?4, detail = ?5, "
                  "local_id = coalesce(?6, local_id) WHERE job = ?1 AND line = ?2",
    [ST_RC_FINISH] = "UPDATE broadcast_recipients SET state = ?3, code = ?4, detail = ?5 "
                     "WHERE job = ?1 AND line = ?2 AND state = 'queued'",
    [ST_RC_COUNTS] = "SELECT state, coalesce(code, ''), count(*) FROM broadcast_recipients "
                     "WHERE job = ?1 GROUP BY state, code",
    [ST_CONTACT_OPT_IN] = "INSERT INTO contacts (channel, contact, opted_in, opt_in_source, "
                          "opt_in_at) VALUES (?1, ?2, 1, ?3, ?4) ON CONFLICT (channel, contact) "
                          "DO UPDATE SET opted_in = 1, opt_in_source = excluded.opt_in_source, "
                          "opt_in_at = excluded.opt_in_at WHERE opted_in = 0",
    [ST_RC_UNSENT] = "SELECT line, wa_id, state, code, detail FROM broadcast_recipients "
                     "WHERE job = ?1 AND state <> 'sent' AND line > ?2 ORDER BY line LIMIT ?3",
    [ST_DATA_VERSION] = "PRAGMA data_version",
};

struct pl_store {
    sqlite3 *db;
    char *path;
    sqlite3_stmt *st[ST_COUNT];
    int shared;    /* used by several threads: only with write_turn held (pl_store_share) */
    int forced_at; /* the log's length when pl_store_checkpoint last forced a restart, or 0 */
};

/* ---- helpers ------------------------------------------------------------------------------ */

/* Write transactions of the connections of this process take turns on this mutex instead of
 * meeting in SQLite's busy handler, whose waits (1, 2, 5 … 100 ms) would stall the webhooks'
 * group commits behind the engine's. Other processes (a broadcast) still meet in busy_wait.
 * It also guards a shared connection (pl_store_share). Recursive: a holder may begin. */
static pthread_mutex_t write_turn = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
static _Thread_local int turn_held; /* how many times this thread holds write_turn */
/* The connection this thread began a transaction on (it holds write_turn until the commit or
 * rollback): per thread, because a shared connection's transaction belongs to one thread. */
static _Thread_local struct pl_store *turn_writing;

void pl_store_hold(void)
{
    pthread_mutex_lock(&write_turn);
    turn_held++;
}

void pl_store_release(void)
{
    turn_held--;
    pthread_mutex_unlock(&write_turn);
}

void pl_store_share(struct pl_store *s)
{
    s->shared = 1;
}

/* SQLITE_BUSY from another process: retry soon (a WAL write takes well under a millisecond),
 * for up to about 5 s. */
static int busy_wait(void *ud, int count)
{
    struct timespec ts = {0, count < 200 ? 50000 : 1000000};
    (void)ud;
    if (count >= 200 + 5000)
        return 0;
    nanosleep(&ts, NULL);
    return 1;
}

/* The state file's last failure in this process, for /healthz and /metrics: every SQLite error
 * sets it, and the next commit that succeeds clears it (a full disk that has room again). */
static pthread_mutex_t failure_lock = PTHREAD_MUTEX_INITIALIZER;
static int failing; /* __atomic: a successful commit reads it without the lock */
static char failure[PL_ERROR_MSG_MAX];
static long long failure_at;

int pl_store_failure(char *msg, size_t size, long long *at)
{
    pthread_mutex_lock(&failure_lock);
    int on = failing;
    if (on) {
        snprintf(msg, size, "%s", failure);
        *at = failure_at;
    }
    pthread_mutex_unlock(&failure_lock);
    return on;
}

static void set_failure(const char *msg)
{
    pthread_mutex_lock(&failure_lock);
    if (msg != NULL) {
        snprintf(failure, sizeof failure, "%s", msg);
        failure_at = (long long)time(NULL);
    }
    __atomic_store_n(&failing, msg != NULL, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&failure_lock);
}

/* "<state file>: <operation>: <SQLite's message> (SQLite code <extended code>)": which file,
 * which of Parley's operations, and the code that tells a full disk from a locked file. */
static int db_error(struct pl_store *s, struct pl_error *err, const char *op)
{
    char msg[PL_ERROR_MSG_MAX];
    snprintf(msg, sizeof msg, "%s: %s: %s (SQLite code %d)", s->path, op, sqlite3_errmsg(s->db),
             sqlite3_extended_errcode(s->db));
    set_failure(msg);
    pl_metrics_add("parley_store_errors_total", "", 1);
    return pl_error_set(err, "store", "%s", msg);
}

static int oom(struct pl_error *err, const char *op)
{
    return pl_error_set(err, "store", "%s: out of memory", op);
}

/* The statement, reset and unbound: ready for new bindings. */
static sqlite3_stmt *stmt(struct pl_store *s, enum stmt_id id)
{
    sqlite3_stmt *st = s->st[id];

    if (s->shared && turn_held == 0) {
        fprintf(stderr, "parley: bug: %s: shared state connection used without its lock\n",
                s->path);
        abort();
    }
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
    static const char *const steps[PL_STORE_SCHEMA_VERSION] = {schema_v1, schema_v2, schema_v3,
                                                               schema_v4, schema_v5};
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

/* SQLite keeps allocation statistics under a process-wide mutex, taken on every malloc and free
 * it makes; nothing here reads them. This must run before SQLite is first used (later, SQLite
 * refuses it and keeps its default, which is only slower). */
static pthread_once_t sqlite_once = PTHREAD_ONCE_INIT;

static void sqlite_setup(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

struct pl_store *pl_store_open(const char *path, int sync_full, struct pl_error *err)
{
    struct pl_store *s;
    char pragmas[256];
    int i;

    pthread_once(&sqlite_once, sqlite_setup);

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
    /* busy_timeout first: switching to WAL and migrating may wait for the other connection.
     * The page cache stays at SQLite's default 2 MiB, on purpose: when a b-tree's pages split,
     * SQLite (3.40) swaps two pages through a spare number past 1 GiB, and at the end of every
     * such transaction the page cache then walks all of its hash table, a cache miss per page
     * held. Under the bench that walk took 2.4 % of the CPU with an 8 MiB cache, 0.8 % with
     * 2 MiB; the pages the smaller cache misses come from the kernel's file cache. */
    snprintf(pragmas, sizeof pragmas,
             "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; PRAGMA synchronous = %s; "
             "PRAGMA temp_store = MEMORY; PRAGMA cache_size = -2000;",
             sync_full ? "FULL" : "NORMAL");
    /* Switching a new file to WAL can meet another connection doing the same; SQLite then
     * answers SQLITE_BUSY at once, without the busy handler: try again for up to about 5 s. */
    int rc, tries = 0;
    while ((rc = sqlite3_exec(s->db, pragmas, NULL, NULL, NULL)) != SQLITE_OK &&
           (rc & 0xff) == SQLITE_BUSY && busy_wait(NULL, tries++))
        ;
    if (rc != SQLITE_OK) {
        pl_error_set(err, "store", "%s: %s (SQLite code %d, after %d tries)", path,
                     sqlite3_errmsg(s->db), rc, tries + 1);
        goto fail;
    }
    sqlite3_busy_handler(s->db, busy_wait, NULL);
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

/* One passive pass: *log gets the log's length and *copied how much of it is in the database
 * file (either may be NULL). */
static int passive(struct pl_store *s, int *log, int *copied, struct pl_error *err)
{
    int rc = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, log, copied);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY)
        return db_error(s, err, "checkpoint");
    return 0;
}

/* Sync one of the connection's files through SQLite's own handle (op: SQLITE_FCNTL_FILE_POINTER
 * for the database, SQLITE_FCNTL_JOURNAL_POINTER for the log). Never through a descriptor of our
 * own: closing any descriptor of a file drops every POSIX lock the process holds on it, SQLite's
 * too, and another process could then take itself for the file's last user and delete the live
 * log. */
static void sync_file(struct pl_store *s, int op)
{
    sqlite3_file *f = NULL;
    if (sqlite3_file_control(s->db, "main", op, &f) == SQLITE_OK && f != NULL &&
        f->pMethods != NULL)
        (void)f->pMethods->xSync(f, SQLITE_SYNC_NORMAL | SQLITE_SYNC_DATAONLY);
}

/* Write the log as it stands, and what the passes copied, to the disk before the writers wait: a
 * pass syncs the database only when it reaches the log's end, which under steady writes it never
 * does, and the last pass's two syncs then find only the few pages written since. A sync's time
 * is the disk's, and it grows with what waits to be written. Errors change nothing: the last
 * pass syncs anyway. */
static void presync(struct pl_store *s)
{
    sync_file(s, SQLITE_FCNTL_JOURNAL_POINTER);
    sync_file(s, SQLITE_FCNTL_FILE_POINTER);
}

/* The pass in turn with this process's writers: it copies the whole log (unless another process
 * holds copies back), and the next commit starts the log over. *held_frames: what it copied. */
static int last_pass(struct pl_store *s, int done, int *held_frames, struct pl_error *err)
{
    int now = 0, copied = 0;
    pl_store_hold();
    int rc = passive(s, &now, &copied, err);
    pl_store_release();
    if (held_frames != NULL && rc == 0 && now >= 0) /* not when busy: nothing was copied */
        *held_frames = now > done ? now - done : 0;
    return rc;
}

int pl_store_checkpoint(struct pl_store *s, int restart_frames, int *log_frames, int *held_frames,
                        struct pl_error *err)
{
    int log = 0, done = 0, now = -1, copied = -1;
    if (held_frames != NULL)
        *held_frames = -1;
    if (passive(s, &log, &done, err) != 0)
        return -1;
    if (log_frames != NULL)
        *log_frames = log;
    if (restart_frames <= 0 || log <= restart_frames || done < 0)
        return 0;
    /* Catch up without stopping the writers, then one more pass in turn with this process's
     * writers (on their mutex): none can add a frame meanwhile, so it copies the whole log, and
     * the next commit starts the log over from its beginning. The writers wait for that last
     * pass: for its copies and its two syncs, whose cost grows with the frames it copies.
     * Those are the frames the writers added since the previous pass began. So the passes go
     * on until one finds only a few frames to copy (each pass is shorter than the one before,
     * because the copies outrun the writers), and only then do the writers wait. What a pass
     * finds is counted from what the previous pass left copied, not from how long the log is:
     * a reader in another process (a broadcast) can keep a pass from copying, and the writers
     * must not wait for the backlog it held back. SQLite reports the log as it was when a pass
     * began, so `now - copied` after a pass is only what a reader held back: it says nothing
     * about what the writers added meanwhile. Once a pass finds few frames, the log and the
     * database are synced (presync) and one more pass copies what the writers added during the
     * sync, so that the last pass's syncs find little to write. */
    int synced = 0,
        few = restart_frames / 2 < FINAL_PASS_FRAMES ? restart_frames / 2 : FINAL_PASS_FRAMES;
    for (int pass = 0; pass < CATCH_UP_PASSES; pass++) {
        if (passive(s, &now, &copied, err) != 0)
            return -1;
        if (now < 0) /* SQLITE_BUSY (another checkpoint, or a writer's header): nothing done */
            continue;
        /* The log started over meanwhile: nothing to restart. (Were it to start over and grow
         * past `done` between two passes, `found` would be too small: not with serve's 64 MiB.) */
        if (now < done)
            return 0;
        int found = now - done;
        done = copied;
        if (found > few)
            continue;
        if (!synced) {
            presync(s);
            synced = 1;
            continue;
        }
        return last_pass(s, done, held_frames, err);
    }
    /* The writers outran the copies (each pass's syncs take long enough for them to add more
     * than `few`). Past twice restart_frames the log starts over anyway, the writers waiting
     * longer, so that it cannot grow without end. Not when a reader holds the copies back (the
     * last pass could not copy them either; a shortfall of a few frames is only a writer of
     * this process between its commit and the end of its read), and not again at every
     * checkpoint when a forced restart did not take (a reader in another process at the first
     * commit after it): only once the log has grown by restart_frames more. */
    if (now >= 0 && now - copied <= FINAL_PASS_FRAMES && now > 2 * restart_frames &&
        (s->forced_at == 0 || now < s->forced_at || now >= s->forced_at + restart_frames)) {
        s->forced_at = now;
        if (!synced) {
            presync(s);
            if (passive(s, &now, &copied, err) != 0) /* what came in during the syncs */
                return -1;
            if (copied >= 0)
                done = copied;
        }
        return last_pass(s, done, held_frames, err);
    }
    return 0; /* again at the next checkpoint */
}

void pl_store_manual_checkpoints(struct pl_store *s)
{
    sqlite3_wal_autocheckpoint(s->db, 0);
}

int pl_store_begin(struct pl_store *s, struct pl_error *err)
{
    pl_store_hold();
    if (exec_stmt(s, stmt(s, ST_BEGIN), err, "begin") != 0) {
        pl_store_release();
        return -1;
    }
    turn_writing = s;
    return 0;
}

static void end_write(struct pl_store *s)
{
    if (turn_writing == s) {
        turn_writing = NULL;
        pl_store_release();
    }
}

/* On failure the transaction is rolled back, so the connection is ready for the next one. */
int pl_store_commit(struct pl_store *s, struct pl_error *err)
{
    if (exec_stmt(s, stmt(s, ST_COMMIT), err, "commit") == 0) {
        end_write(s);
        if (__atomic_load_n(&failing, __ATOMIC_RELAXED))
            set_failure(NULL);
        return 0;
    }
    pl_store_rollback(s);
    return -1;
}

void pl_store_rollback(struct pl_store *s)
{
    if (s->shared && turn_writing != s)
        return; /* no transaction of this thread's (another thread's is not ours to end) */
    if (!sqlite3_get_autocommit(s->db)) {
        sqlite3_step(stmt(s, ST_ROLLBACK));
        done(s->st[ST_ROLLBACK]);
    }
    end_write(s);
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
        data = pl_json_dump(ev->data);
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
    sqlite3_bind_int64(st, 5, (long long)time(NULL));
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
        ev->data =
            pl_json_parse(data, (size_t)sqlite3_column_bytes(st, 9), PL_JSON_ALLOW_NUL, NULL);
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
    return pl_store_inbox_pending_after(s, 0, 0, fn, ud, NULL, err);
}

int pl_store_inbox_pending_after(struct pl_store *s, long long after, size_t max,
                                 int (*fn)(void *ud, long long rowid, const struct pl_event *ev),
                                 void *ud, size_t *count, struct pl_error *err)
{
    struct pl_event evs[ITER_BATCH];
    long long ids[ITER_BATCH];
    long long last = after;
    size_t n, i, seen = 0;
    int rc = 0;

    do {
        sqlite3_stmt *st = stmt(s, ST_INBOX_PENDING);
        int step;

        sqlite3_bind_int64(st, 1, last);
        sqlite3_bind_int(st, 2,
                         max > 0 && max - seen < ITER_BATCH ? (int)(max - seen) : ITER_BATCH);
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
        seen += n;
    } while (rc == 0 && n == ITER_BATCH && (max == 0 || seen < max));
    if (count != NULL)
        *count = seen;
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

/* Read the contact columns (name, last_inbound, opted_in, opt_in_source, opt_in_at, session) of
 * the row st is on into c; *bad is set when a copy ran out of memory. */
static void read_contact(sqlite3_stmt *st, struct pl_contact *c, int *bad)
{
    c->name = column_dup(st, 0, bad);
    c->last_inbound = sqlite3_column_int64(st, 1);
    c->opted_in = sqlite3_column_int(st, 2);
    c->opt_in_source = column_dup(st, 3, bad);
    c->opt_in_at = sqlite3_column_int64(st, 4);
    c->session = column_dup(st, 5, bad);
}

/* Step a statement whose one row (or none) is a contact: into c, zeroed first. */
static int step_contact(struct pl_store *s, sqlite3_stmt *st, struct pl_contact *c,
                        struct pl_error *err, const char *what)
{
    int step, bad = 0;

    memset(c, 0, sizeof *c);
    step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        read_contact(st, c, &bad);
        step = sqlite3_step(st); /* past the row: RETURNING finishes its statement here */
    }
    if (step != SQLITE_DONE) {
        pl_contact_clear(c);
        int rc = db_error(s, err, what);
        done(st);
        return rc;
    }
    done(st);
    if (bad) {
        pl_contact_clear(c);
        return oom(err, what);
    }
    return 0;
}

int pl_store_contact_get(struct pl_store *s, const char *channel, const char *contact,
                         struct pl_contact *c, struct pl_error *err)
{
    sqlite3_stmt *st = stmt(s, ST_CONTACT_GET);

    bind_text(st, 1, channel);
    bind_text(st, 2, contact);
    return step_contact(s, st, c, err, "contact_get");
}

int pl_store_contact_put(struct pl_store *s, const char *channel, const char *contact,
                         const struct pl_contact *c, struct pl_contact *stored,
                         struct pl_error *err)
{
    sqlite3_stmt *st = stmt(s, stored != NULL ? ST_CONTACT_PUT : ST_CONTACT_SET);
    struct pl_contact row;

    bind_text(st, 1, channel);
    bind_text(st, 2, contact);
    bind_text(st, 3, c->name);
    sqlite3_bind_int64(st, 4, c->last_inbound);
    sqlite3_bind_int(st, 5, c->opted_in);
    bind_text(st, 6, c->opt_in_source);
    sqlite3_bind_int64(st, 7, c->opt_in_at);
    bind_text(st, 8, c->session);
    int rc = step_contact(s, st, &row, err, "contact_put");
    if (rc == 0 && stored != NULL)
        *stored = row;
    else
        pl_contact_clear(&row);
    return rc;
}

int pl_store_data_version(struct pl_store *s, long long *version, struct pl_error *err)
{
    sqlite3_stmt *st = stmt(s, ST_DATA_VERSION);
    int rc = sqlite3_step(st);

    if (rc == SQLITE_ROW)
        *version = sqlite3_column_int64(st, 0);
    else
        db_error(s, err, "data_version");
    done(st);
    return rc == SQLITE_ROW ? 0 : -1;
}

int pl_store_contact_opt_in(struct pl_store *s, const char *channel, const char *contact,
                            const char *source, long long at, struct pl_error *err)
{
    sqlite3_stmt *st = stmt(s, ST_CONTACT_OPT_IN);

    bind_text(st, 1, channel);
    bind_text(st, 2, contact);
    bind_text(st, 3, source);
    sqlite3_bind_int64(st, 4, at);
    return exec_stmt(s, st, err, "contact_opt_in");
}

int pl_contact_copy(struct pl_contact *dst, const struct pl_contact *src)
{
    *dst = *src;
    dst->name = src->name != NULL ? strdup(src->name) : NULL;
    dst->opt_in_source = src->opt_in_source != NULL ? strdup(src->opt_in_source) : NULL;
    dst->session = src->session != NULL ? strdup(src->session) : NULL;
    if ((src->name != NULL && dst->name == NULL) ||
        (src->opt_in_source != NULL && dst->opt_in_source == NULL) ||
        (src->session != NULL && dst->session == NULL)) {
        pl_contact_clear(dst);
        return -1;
    }
    return 0;
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
                        const char *phone_number_id, const char *contact, const char *kind,
                        const char *body, const char *template_name, long long created_at,
                        long long *id, struct pl_error *err)
{
    sqlite3_stmt *st = stmt(s, ST_OUT_ADD);

    bind_text(st, 1, local_id);
    bind_text(st, 2, channel);
    bind_text(st, 3, contact);
    bind_text(st, 4, kind);
    bind_text(st, 5, body);
    bind_text(st, 6, template_name);
    sqlite3_bind_int64(st, 7, created_at);
    bind_text(st, 8, phone_number_id);
    if (exec_stmt(s, st, err, "outbox_add") != 0)
        return -1;
    if (id != NULL)
        *id = (long long)sqlite3_last_insert_rowid(s->db);
    return 0;
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
    long long id, created_at;
    char *local_id, *channel, *phone_number_id, *contact, *kind, *body;
};

static void queued_row_clear(struct queued_row *r)
{
    free(r->local_id);
    free(r->channel);
    free(r->phone_number_id);
    free(r->contact);
    free(r->kind);
    free(r->body);
}

int pl_store_outbox_queued(struct pl_store *s, long long after, size_t max,
                           int (*fn)(void *ud, long long id, const char *local_id,
                                     const char *channel, const char *phone_number_id,
                                     const char *contact, const char *kind, const char *body,
                                     long long created_at),
                           void *ud, size_t *count, struct pl_error *err)
{
    struct queued_row rows[ITER_BATCH];
    long long last = after;
    size_t n, i, want = ITER_BATCH, seen = 0;
    int rc = 0;

    do {
        sqlite3_stmt *st = stmt(s, ST_OUT_QUEUED);
        int step, bad = 0;

        if (max > 0 && max - seen < ITER_BATCH)
            want = max - seen;
        sqlite3_bind_int64(st, 1, last);
        sqlite3_bind_int(st, 2, (int)want);
        n = 0;
        while ((step = sqlite3_step(st)) == SQLITE_ROW) {
            struct queued_row *r = &rows[n++];
            r->id = sqlite3_column_int64(st, 0);
            r->local_id = column_dup(st, 1, &bad);
            r->channel = column_dup(st, 2, &bad);
            r->contact = column_dup(st, 3, &bad);
            r->kind = column_dup(st, 4, &bad);
            r->body = column_dup(st, 5, &bad);
            r->created_at = sqlite3_column_int64(st, 6);
            r->phone_number_id = column_dup(st, 7, &bad);
            if (bad) {
                rc = oom(err, "outbox_queued");
                break;
            }
        }
        if (rc == 0 && step != SQLITE_DONE)
            rc = db_error(s, err, "outbox_queued");
        done(st);
        for (i = 0; i < n; i++) {
            if (rc == 0 &&
                fn(ud, rows[i].id, rows[i].local_id, rows[i].channel, rows[i].phone_number_id,
                   rows[i].contact, rows[i].kind, rows[i].body, rows[i].created_at) != 0)
                rc = -1;
            queued_row_clear(&rows[i]);
        }
        seen += n;
        if (n > 0)
            last = rows[n - 1].id;
    } while (rc == 0 && n == want && (max == 0 || seen < max));
    if (count != NULL)
        *count = seen;
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
                             int (*fn)(void *ud, const char *key, const char *value, long long at),
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

/* ---- analytics ---------------------------------------------------------------------------- */

int pl_store_outbox_add_job(struct pl_store *s, const char *local_id, const char *channel,
                            const char *phone_number_id, const char *contact, const char *kind,
                            const char *body, const char *template_name, const char *job,
                            long long created_at, struct pl_error *err)
{
    sqlite3_stmt *st = stmt(s, ST_OUT_ADD_JOB);

    bind_text(st, 1, local_id);
    bind_text(st, 2, channel);
    bind_text(st, 3, contact);
    bind_text(st, 4, kind);
    bind_text(st, 5, body);
    bind_text(st, 6, template_name);
    sqlite3_bind_int64(st, 7, created_at);
    bind_text(st, 8, job);
    bind_text(st, 9, phone_number_id);
    return exec_stmt(s, st, err, "outbox_add_job");
}

static const char *out_state_of(int v)
{
    if (v < PL_OUT_QUEUED || v > PL_OUT_FAILED)
        return "unknown";
    return pl_out_state_name((enum pl_out_state)v);
}

/* The rows are few (channels x templates x 5 states), so the callback runs while the statement
 * is open; it must not use this connection. */
int pl_store_outbox_template_counts(struct pl_store *s,
                                    int (*fn)(void *ud, const char *channel,
                                              const char *template_name, const char *state,
                                              long long count),
                                    void *ud, struct pl_error *err)
{
    sqlite3_stmt *st = stmt(s, ST_OUT_TPL_COUNTS);
    int step, stopped = 0;

    while ((step = sqlite3_step(st)) == SQLITE_ROW)
        if (fn(ud, (const char *)sqlite3_column_text(st, 0),
               (const char *)sqlite3_column_text(st, 1), out_state_of(sqlite3_column_int(st, 2)),
               sqlite3_column_int64(st, 3)) != 0) {
            stopped = 1;
            break;
        }
    done(st);
    if (stopped)
        return -1;
    if (step != SQLITE_DONE)
        return db_error(s, err, "outbox_template_counts");
    return 0;
}

int pl_store_outbox_broadcast_counts(struct pl_store *s, long long since,
                                     int (*fn)(void *ud, const char *job, const char *channel,
                                               const char *template_name, const char *state,
                                               long long count),
                                     void *ud, struct pl_error *err)
{
    sqlite3_stmt *st = stmt(s, ST_OUT_JOB_COUNTS);
    int step, stopped = 0;

    sqlite3_bind_int64(st, 1, since);
    while ((step = sqlite3_step(st)) == SQLITE_ROW)
        if (fn(ud, (const char *)sqlite3_column_text(st, 0),
               (const char *)sqlite3_column_text(st, 1), (const char *)sqlite3_column_text(st, 2),
               out_state_of(sqlite3_column_int(st, 3)), sqlite3_column_int64(st, 4)) != 0) {
            stopped = 1;
            break;
        }
    done(st);
    if (stopped)
        return -1;
    if (step != SQLITE_DONE)
        return db_error(s, err, "outbox_broadcast_counts");
    return 0;
}

/* ---- business recipients: counts for a separate process ----------------------------------- */

int pl_store_business_count(struct pl_store *s, const char *channel, long long since,
                            long long *count, struct pl_error *err)
{
    sqlite3_stmt *st = stmt(s, ST_BIZ_COUNT);
    int step;

    *count = 0;
    bind_text(st, 1, channel);
    sqlite3_bind_int64(st, 2, since);
    step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        *count = sqlite3_column_int64(st, 0);
    done(st);
    if (step != SQLITE_ROW)
        return db_error(s, err, "business_count");
    return 0;
}

int pl_store_business_at(struct pl_store *s, const char *channel, const char *contact,
                         long long *at, struct pl_error *err)
{
    sqlite3_stmt *st = stmt(s, ST_BIZ_AT);
    int step;

    *at = 0;
    bind_text(st, 1, channel);
    bind_text(st, 2, contact);
    step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        *at = sqlite3_column_int64(st, 0);
    done(st);
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        return db_error(s, err, "business_at");
    return 0;
}

/* ---- broadcast jobs ----------------------------------------------------------------------- */

static const char *const rcpt_names[PL_RCPT_STATES] = {"pending", "queued", "sent", "skipped",
                                                       "failed"};

const char *pl_rcpt_state_name(enum pl_rcpt_state st)
{
    return (int)st >= 0 && st < PL_RCPT_STATES ? rcpt_names[st] : "unknown";
}

static enum pl_rcpt_state rcpt_state_of(const unsigned char *name)
{
    for (int i = 0; name != NULL && i < PL_RCPT_STATES; i++)
        if (strcmp((const char *)name, rcpt_names[i]) == 0)
            return (enum pl_rcpt_state)i;
    return PL_RCPT_STATES;
}

void pl_broadcast_row_clear(struct pl_broadcast_row *b)
{
    if (b == NULL)
        return;
    free(b->id);
    free(b->channel);
    free(b->template_name);
    free(b->language);
    free(b->file);
    free(b->state);
    free(b->stop_code);
    memset(b, 0, sizeof *b);
}

/* A job from a row of BC_COLUMNS. Returns 0, -1 when memory ran out (b cleared). */
static int row_broadcast(sqlite3_stmt *st, struct pl_broadcast_row *b)
{
    int bad = 0;

    memset(b, 0, sizeof *b);
    b->id = column_dup(st, 0, &bad);
    b->channel = column_dup(st, 1, &bad);
    b->template_name = column_dup(st, 2, &bad);
    b->language = column_dup(st, 3, &bad);
    b->file = column_dup(st, 4, &bad);
    b->rate = sqlite3_column_double(st, 5);
    b->state = column_dup(st, 6, &bad);
    b->stop_code = column_dup(st, 7, &bad);
    b->file_size = sqlite3_column_int64(st, 8);
    b->file_mtime = sqlite3_column_int64(st, 9);
    b->import_offset = sqlite3_column_int64(st, 10);
    b->import_line = sqlite3_column_int64(st, 11);
    b->created_at = sqlite3_column_int64(st, 12);
    b->finished_at = sqlite3_column_int64(st, 13);
    b->total = sqlite3_column_int64(st, 14);
    b->sent = sqlite3_column_int64(st, 15);
    b->skipped = sqlite3_column_int64(st, 16);
    b->failed = sqlite3_column_int64(st, 17);
    if (bad) {
        pl_broadcast_row_clear(b);
        return -1;
    }
    return 0;
}

int pl_store_broadcast_create(struct pl_store *s, const struct pl_broadcast_row *b,
                              struct pl_error *err)
{
    sqlite3_stmt *st = stmt(s, ST_BC_CREATE);

    bind_text(st, 1, b->id);
    bind_text(st, 2, b->channel);
    bind_text(st, 3, b->template_name);
    bind_text(st, 4, b->language);
    bind_text(st, 5, b->file);
    sqlite3_bind_double(st, 6, b->rate);
    bind_text(st, 7, b->state);
    bind_text(st, 8, b->stop_code);
    sqlite3_bind_int64(st, 9, b->file_size);
    sqlite3_bind_int64(st, 10, b->file_mtime);
    sqlite3_bind_int64(st, 11, b->import_offset);
    sqlite3_bind_int64(st, 12, b->import_line);
    sqlite3_bind_int64(st, 13, b->created_at);
    sqlite3_bind_int64(st, 14, b->finished_at);
    sqlite3_bind_int64(st, 15, b->total);
    sqlite3_bind_int64(st, 16, b->sent);
    sqlite3_bind_int64(st, 17, b->skipped);
    sqlite3_bind_int64(st, 18, b->failed);
    return exec_stmt(s, st, err, "broadcast_create");
}

/* Read at most one job from st (bound by the caller). */
static int one_broadcast(struct pl_store *s, sqlite3_stmt *st, struct pl_broadcast_row *b,
                         int *found, struct pl_error *err, const char *op)
{
    int step = sqlite3_step(st), rc = 0;

    memset(b, 0, sizeof *b);
    *found = 0;
    if (step == SQLITE_ROW) {
        if (row_broadcast(st, b) != 0)
            rc = oom(err, op);
        else
            *found = 1;
    } else if (step != SQLITE_DONE) {
        rc = db_error(s, err, op);
    }
    done(st);
    return rc;
}

int pl_store_broadcast_get(struct pl_store *s, const char *id, struct pl_broadcast_row *b,
                           int *found, struct pl_error *err)
{
    sqlite3_stmt *st = stmt(s, ST_BC_GET);

    bind_text(st, 1, id);
    return one_broadcast(s, st, b, found, err, "broadcast_get");
}

int pl_store_broadcast_find(struct pl_store *s, const char *channel, const char *template_name,
                            const char *language, const char *file, struct pl_broadcast_row *b,
                            int *found, struct pl_error *err)
{
    sqlite3_stmt *st = stmt(s, ST_BC_FIND);

    bind_text(st, 1, channel);
    bind_text(st, 2, template_name);
    bind_text(st, 3, language);
    bind_text(st, 4, file);
    return one_broadcast(s, st, b, found, err, "broadcast_find");
}

int pl_store_broadcast_list(struct pl_store *s, int limit,
                            int (*fn)(void *ud, const struct pl_broadcast_row *b), void *ud,
                            struct pl_error *err)
{
    sqlite3_stmt *st = stmt(s, ST_BC_LIST);
    struct pl_broadcast_row b;
    int step = SQLITE_DONE, rc = 0;

    /* few rows: fn runs with the statement open and must not use this connection */
    sqlite3_bind_int(st, 1, limit);
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        if (row_broadcast(st, &b) != 0) {
            rc = oom(err, "broadcast_list");
            break;
        }
        if (fn(ud, &b) != 0)
            rc = -1;
        pl_broadcast_row_clear(&b);
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = db_error(s, err, "broadcast_list");
    done(st);
    return rc;
}

int pl_store_broadcast_set_state(struct pl_store *s, const char *id, const char *state,
                                 const char *stop_code, long long finished_at, double rate,
                                 struct pl_error *err)
{
    sqlite3_stmt *st = stmt(s, ST_BC_STATE);

    bind_text(st, 1, id);
    bind_text(st, 2, state);
    bind_text(st, 3, stop_code);
    sqlite3_bind_int64(st, 4, finished_at);
    sqlite3_bind_double(st, 5, rate);
    return exec_stmt(s, st, err, "broadcast_set_state");
}

int pl_store_broadcast_imported(struct pl_store *s, const char *id, long long offset,
                                long long line, struct pl_error *err)
{
    sqlite3_stmt *st = stmt(s, ST_BC_IMPORTED);

    bind_text(st, 1, id);
    sqlite3_bind_int64(st, 2, offset);
    sqlite3_bind_int64(st, 3, line);
    return exec_stmt(s, st, err, "broadcast_imported");
}

int pl_store_rcpt_add(struct pl_store *s, const char *job, long long line, const char *wa_id,
                      const char *params, int opt_in, enum pl_rcpt_state state, const char *code,
                      const char *detail, struct pl_error *err)
{
    sqlite3_stmt *st = stmt(s, ST_RC_ADD);

    bind_text(st, 1, job);
    sqlite3_bind_int64(st, 2, line);
    bind_text(st, 3, wa_id);
    bind_text(st, 4, params);
    sqlite3_bind_int(st, 5, opt_in);
    bind_text(st, 6, pl_rcpt_state_name(state));
    bind_text(st, 7, code);
    bind_text(st, 8, detail);
    return exec_stmt(s, st, err, "rcpt_add");
}

int pl_store_rcpt_find_wa(struct pl_store *s, const char *job, const char *wa_id, long long *line,
                          struct pl_error *err)
{
    sqlite3_stmt *st = stmt(s, ST_RC_FIND_WA);
    int step;

    *line = 0;
    bind_text(st, 1, job);
    bind_text(st, 2, wa_id);
    step = sqlite3_step(st);
    if (step == SQLITE_ROW)
        *line = sqlite3_column_int64(st, 0);
    done(st);
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        return db_error(s, err, "rcpt_find_wa");
    return 0;
}

struct rcpt_row {
    long long line;
    char *wa_id, *a, *b, *c; /* per query: params / local_id, body, phone_number_id / code,
                                detail */
    int n;                   /* opt_in / outbox state / recipient state */
    long long at;            /* the outbox row's created_at (queued) */
};

static void rcpt_row_clear(struct rcpt_row *r)
{
    free(r->wa_id);
    free(r->a);
    free(r->b);
    free(r->c);
}

/* Each recipients query takes (job, after line, limit) and starts with line, wa_id. */
typedef void (*rcpt_decode_fn)(sqlite3_stmt *st, struct rcpt_row *r, int *bad);

/* One page of a recipients query: up to want rows after line `after` into rows, each decoded by
 * decode. Returns how many, or -1 with err (no row left to clear). */
static int rcpt_page(struct pl_store *s, enum stmt_id id, const char *job, long long after,
                     int want, rcpt_decode_fn decode, struct rcpt_row *rows, const char *op,
                     struct pl_error *err)
{
    sqlite3_stmt *st = stmt(s, id);
    int step, bad = 0, count = 0, rc = 0;

    bind_text(st, 1, job);
    sqlite3_bind_int64(st, 2, after);
    sqlite3_bind_int(st, 3, want);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        struct rcpt_row *r = &rows[count++];
        memset(r, 0, sizeof *r);
        r->line = sqlite3_column_int64(st, 0);
        r->wa_id = column_dup(st, 1, &bad);
        decode(st, r, &bad);
        if (bad) {
            rc = oom(err, op);
            break;
        }
    }
    if (rc == 0 && step != SQLITE_DONE)
        rc = db_error(s, err, op);
    done(st);
    if (rc != 0) {
        while (count > 0)
            rcpt_row_clear(&rows[--count]);
        return -1;
    }
    return count;
}

static void decode_pending(sqlite3_stmt *st, struct rcpt_row *r, int *bad)
{
    r->a = column_dup(st, 2, bad);
    r->n = sqlite3_column_int(st, 3);
}

int pl_store_rcpt_pending(struct pl_store *s, const char *job, long long after, int limit,
                          int (*fn)(void *ud, long long line, const char *wa_id, const char *params,
                                    int opt_in),
                          void *ud, size_t *n, struct pl_error *err)
{
    struct rcpt_row rows[ITER_BATCH];
    int rc = 0;

    *n = 0;
    while (rc == 0 && limit > 0) {
        int want = limit < ITER_BATCH ? limit : ITER_BATCH;
        int count = rcpt_page(s, ST_RC_PENDING, job, after, want, decode_pending, rows,
                              "rcpt_pending", err);
        if (count < 0)
            return -1;
        for (int i = 0; i < count; i++) {
            if (rc == 0 && fn(ud, rows[i].line, rows[i].wa_id, rows[i].a, rows[i].n) != 0)
                rc = -1;
            rcpt_row_clear(&rows[i]);
        }
        if (rc != 0)
            break;
        *n += (size_t)count;
        if (count < want)
            break;
        after = rows[count - 1].line;
        limit -= count;
    }
    return rc;
}

static void decode_queued(sqlite3_stmt *st, struct rcpt_row *r, int *bad)
{
    r->a = column_dup(st, 2, bad);
    r->b = column_dup(st, 3, bad);
    r->n = sqlite3_column_type(st, 4) == SQLITE_NULL ? -1 : sqlite3_column_int(st, 4);
    r->at = sqlite3_column_int64(st, 5);
    r->c = column_dup(st, 6, bad);
}

int pl_store_rcpt_queued(struct pl_store *s, const char *job,
                         int (*fn)(void *ud, long long line, const char *wa_id,
                                   const char *local_id, const char *body, int out_state,
                                   long long created_at, const char *phone_number_id),
                         void *ud, struct pl_error *err)
{
    struct rcpt_row rows[ITER_BATCH];
    long long after = 0;
    int count, rc = 0;

    do {
        count = rcpt_page(s, ST_RC_QUEUED, job, after, ITER_BATCH, decode_queued, rows,
                          "rcpt_queued", err);
        if (count < 0)
            return -1;
        for (int i = 0; i < count; i++) {
            if (rc == 0 && fn(ud, rows[i].line, rows[i].wa_id, rows[i].a, rows[i].b, rows[i].n,
                              rows[i].at, rows[i].c) != 0)
                rc = -1;
            rcpt_row_clear(&rows[i]);
        }
        if (count > 0)
            after = rows[count - 1].line;
    } while (rc == 0 && count == ITER_BATCH);
    return rc;
}

int pl_store_rcpt_set(struct pl_store *s, const char *job, long long line, enum pl_rcpt_state state,
                      const char *code, const char *detail, const char *local_id,
                      struct pl_error *err)
{
    sqlite3_stmt *st = stmt(s, ST_RC_SET);

    bind_text(st, 1, job);
    sqlite3_bind_int64(st, 2, line);
    bind_text(st, 3, pl_rcpt_state_name(state));
    bind_text(st, 4, code);
    bind_text(st, 5, detail);
    bind_text(st, 6, local_id);
    return exec_stmt(s, st, err, "rcpt_set");
}

int pl_store_rcpt_finish(struct pl_store *s, const char *job, long long line,
                         enum pl_rcpt_state state, const char *code, const char *detail,
                         struct pl_error *err)
{
    sqlite3_stmt *st = stmt(s, ST_RC_FINISH);

    bind_text(st, 1, job);
    sqlite3_bind_int64(st, 2, line);
    bind_text(st, 3, pl_rcpt_state_name(state));
    bind_text(st, 4, code);
    bind_text(st, 5, detail);
    return exec_stmt(s, st, err, "rcpt_finish");
}

/* Few rows (states x codes): the callback runs with the statement open and must not use this
 * connection. */
int pl_store_rcpt_counts(struct pl_store *s, const char *job,
                         int (*fn)(void *ud, enum pl_rcpt_state st, const char *code,
                                   long long count),
                         void *ud, struct pl_error *err)
{
    sqlite3_stmt *st = stmt(s, ST_RC_COUNTS);
    int step, stopped = 0;

    bind_text(st, 1, job);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        enum pl_rcpt_state rs = rcpt_state_of(sqlite3_column_text(st, 0));
        if (rs == PL_RCPT_STATES)
            continue; /* a state this build does not know: not counted */
        if (fn(ud, rs, (const char *)sqlite3_column_text(st, 1), sqlite3_column_int64(st, 2)) !=
            0) {
            stopped = 1;
            break;
        }
    }
    done(st);
    if (stopped)
        return -1;
    if (step != SQLITE_DONE)
        return db_error(s, err, "rcpt_counts");
    return 0;
}

static void decode_unsent(sqlite3_stmt *st, struct rcpt_row *r, int *bad)
{
    r->n = (int)rcpt_state_of(sqlite3_column_text(st, 2));
    r->b = column_dup(st, 3, bad);
    r->c = column_dup(st, 4, bad);
}

int pl_store_rcpt_unsent(struct pl_store *s, const char *job,
                         int (*fn)(void *ud, long long line, const char *wa_id,
                                   enum pl_rcpt_state st, const char *code, const char *detail),
                         void *ud, struct pl_error *err)
{
    struct rcpt_row rows[ITER_BATCH];
    long long after = 0;
    int count, rc = 0;

    do {
        count = rcpt_page(s, ST_RC_UNSENT, job, after, ITER_BATCH, decode_unsent, rows,
                          "rcpt_unsent", err);
        if (count < 0)
            return -1;
        for (int i = 0; i < count; i++) {
            if (rc == 0 && fn(ud, rows[i].line, rows[i].wa_id, (enum pl_rcpt_state)rows[i].n,
                              rows[i].b, rows[i].c) != 0)
                rc = -1;
            rcpt_row_clear(&rows[i]);
        }
        if (count > 0)
            after = rows[count - 1].line;
    } while (rc == 0 && count == ITER_BATCH);
    return rc;
}

int pl_store_broadcast_delivery(struct pl_store *s, const char *job,
                                int (*fn)(void *ud, enum pl_out_state st, long code,
                                          long long count),
                                void *ud, struct pl_error *err)
{
    sqlite3_stmt *st = stmt(s, ST_OUT_JOB_DELIVERY);
    int step, stopped = 0;

    bind_text(st, 1, job);
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        int state = sqlite3_column_int(st, 0);
        long code =
            sqlite3_column_type(st, 1) == SQLITE_NULL ? -1 : (long)sqlite3_column_int64(st, 1);
        if (state < PL_OUT_QUEUED || state > PL_OUT_FAILED)
            continue;
        if (fn(ud, (enum pl_out_state)state, code, sqlite3_column_int64(st, 2)) != 0) {
            stopped = 1;
            break;
        }
    }
    done(st);
    if (stopped)
        return -1;
    if (step != SQLITE_DONE)
        return db_error(s, err, "broadcast_delivery");
    return 0;
}
