/* test_store.c - the SQLite store: opening and migrating, the inbox and its dedupe keys, contacts
 * and sessions, the outbox state machine (a table of operation sequences), trigger answers,
 * transactions, broadcast jobs and their recipients, per-template and per-job counts, two
 * connections writing from two threads, and an informational insert rate.
 * Everything happens in a mkdtemp folder that is removed at the end. */
#include <ftw.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store.h"
#include "unit.h"

static char tmpdir[64];

/* tmpdir/name into buf */
static const char *tmp_path(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", tmpdir, name);
    return buf;
}

static struct pl_store *open_new(const char *name)
{
    char path[256];
    struct pl_error err = {{0}, {0}};
    struct pl_store *s = pl_store_open(tmp_path(path, sizeof path, name), 0, &err);

    if (s == NULL)
        UNIT_FAIL("open %s: %s", path, err.msg);
    return s;
}

/* An event with every string copied; data is taken (stolen). */
static struct pl_event make_event(enum pl_event_kind kind, const char *id, const char *status,
                                  const char *contact, long long ts, json_t *data)
{
    struct pl_event ev;

    memset(&ev, 0, sizeof ev);
    ev.kind = kind;
    ev.phone_number_id = strdup("106540352242922");
    ev.waba_id = strdup("102290129340398");
    ev.contact = contact != NULL ? strdup(contact) : NULL;
    ev.id = id != NULL ? strdup(id) : NULL;
    ev.status = status != NULL ? strdup(status) : NULL;
    ev.timestamp = ts;
    ev.data = data;
    return ev;
}

/* Raw SQL for checks the API does not expose (schema version, columns). */
static long long raw_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    long long v = -999;

    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
            v = sqlite3_column_type(st, 0) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 0);
        else if (rc == SQLITE_DONE)
            v = 0;
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* ---- open, migrate, reopen, refuse the future --------------------------------------------- */

static void test_open(void)
{
    char path[256], other[256], blocker[256];
    struct pl_error err = {{0}, {0}};
    struct pl_store *s;
    struct pl_event ev;
    long long rowid = 0, pending = -1, done = -1, failed = -1;
    struct stat sb;
    FILE *f;

    UNIT_CASE("open creates folders and schema");
    tmp_path(path, sizeof path, "a/b/c/state.db");
    s = pl_store_open(path, 0, &err);
    CHECK(s != NULL);
    if (s == NULL) {
        UNIT_FAIL("open: %s", err.msg);
        return;
    }
    CHECK(stat(path, &sb) == 0 && S_ISREG(sb.st_mode));
    ev = make_event(PL_EVENT_MESSAGE, "wamid.OPEN1", NULL, "79990000001", 100, NULL);
    CHECK_INT(pl_store_inbox_add(s, &ev, 1000, &rowid, &err), 0);
    CHECK_INT(rowid, 1);
    pl_event_clear(&ev);
    pl_store_close(s);
    CHECK_INT(raw_int(path, "PRAGMA user_version"), PL_STORE_SCHEMA_VERSION);
    CHECK_INT(raw_int(path, "SELECT count(*) FROM sqlite_master WHERE type = 'table'"), 8);

    UNIT_CASE("reopen keeps data and does not migrate again");
    s = pl_store_open(path, 1, &err);
    CHECK(s != NULL);
    if (s != NULL) {
        CHECK_INT(pl_store_inbox_counts(s, &pending, &done, &failed, &err), 0);
        CHECK_INT(pending, 1);
        CHECK_INT(done, 0);
        CHECK_INT(failed, 0);
        ev = make_event(PL_EVENT_MESSAGE, "wamid.OPEN1", NULL, "79990000001", 100, NULL);
        CHECK_INT(pl_store_inbox_add(s, &ev, 1001, &rowid, &err), 0);
        CHECK_INT(rowid, 0);
        pl_event_clear(&ev);
        pl_store_close(s);
    }
    CHECK_INT(raw_int(path, "PRAGMA user_version"), PL_STORE_SCHEMA_VERSION);

    UNIT_CASE("a newer schema is refused, naming the path");
    CHECK_INT(raw_int(path, "PRAGMA user_version = 7"), 0);
    pl_error_clear(&err);
    s = pl_store_open(path, 0, &err);
    CHECK(s == NULL);
    pl_store_close(s);
    CHECK_STR(err.code, "store");
    CHECK_CONTAINS(err.msg, path);
    CHECK_CONTAINS(err.msg, "state file was written by a newer Parley (schema 7; this build knows");
    CHECK_INT(raw_int(path, "PRAGMA user_version"), 7);

    UNIT_CASE("a folder that cannot be made is an error naming the path");
    tmp_path(blocker, sizeof blocker, "blocker");
    f = fopen(blocker, "w");
    CHECK(f != NULL);
    if (f != NULL)
        fclose(f);
    tmp_path(other, sizeof other, "blocker/sub/state.db");
    pl_error_clear(&err);
    s = pl_store_open(other, 0, &err);
    CHECK(s == NULL);
    pl_store_close(s);
    CHECK_STR(err.code, "store");
    CHECK_CONTAINS(err.msg, other);

    UNIT_CASE("a file that is not a database is an error naming the path");
    pl_error_clear(&err);
    f = fopen(blocker, "w");
    if (f != NULL) {
        fputs("this is not a database, it is a text file long enough to have a header\n", f);
        fclose(f);
    }
    s = pl_store_open(blocker, 0, &err);
    CHECK(s == NULL);
    pl_store_close(s);
    CHECK_STR(err.code, "store");
    CHECK_CONTAINS(err.msg, blocker);

    UNIT_CASE("an empty path is an error");
    CHECK(pl_store_open("", 0, &err) == NULL);
    CHECK_STR(err.code, "store");
}

/* ---- dedupe keys -------------------------------------------------------------------------- */

static const struct key_case {
    const char *name;
    enum pl_event_kind kind;
    const char *id, *status, *waba, *pnid;
    long long ts;
    const char *want;
} key_cases[] = {
    {"message", PL_EVENT_MESSAGE, "wamid.A", NULL, "W", "P", 5, "m:wamid.A"},
    {"press shares the message key", PL_EVENT_PRESS, "wamid.A", NULL, "W", "P", 6, "m:wamid.A"},
    {"status", PL_EVENT_STATUS, "wamid.B", "delivered", "W", "P", 7, "s:wamid.B:delivered"},
    {"status without status", PL_EVENT_STATUS, "wamid.B", NULL, "W", "P", 7, "s:wamid.B:"},
    {"template status", PL_EVENT_TEMPLATE_STATUS, "123", "APPROVED", "W", "P", 1700000000,
     "t:123:APPROVED:1700000000"},
    {"quality", PL_EVENT_QUALITY, NULL, "FLAGGED", "W1", "P", 1700000001,
     "q:W1:FLAGGED:1700000001"},
    {"quality without waba", PL_EVENT_QUALITY, NULL, "UPGRADE", NULL, "P", 0, "q::UPGRADE:0"},
    {"trigger", PL_EVENT_TRIGGER, "order-17", NULL, NULL, "insurance", 0, "g:insurance:order-17"},
    {"message without id: no key", PL_EVENT_MESSAGE, NULL, NULL, "W", "P", 5, ""},
    {"status with empty id: no key", PL_EVENT_STATUS, "", "sent", "W", "P", 5, ""},
    {"trigger without id: no key", PL_EVENT_TRIGGER, NULL, NULL, NULL, "insurance", 0, ""},
};

static void test_dedupe_keys(void)
{
    char buf[128], a[40], b[40], tiny[8];
    struct pl_event ev;
    size_t i;

    for (i = 0; i < sizeof key_cases / sizeof key_cases[0]; i++) {
        const struct key_case *c = &key_cases[i];
        UNIT_CASE(c->name);
        memset(&ev, 0, sizeof ev);
        ev.kind = c->kind;
        ev.id = (char *)c->id;
        ev.status = (char *)c->status;
        ev.waba_id = (char *)c->waba;
        ev.phone_number_id = (char *)c->pnid;
        ev.timestamp = c->ts;
        CHECK_STR(pl_store_dedupe_key(&ev, buf, sizeof buf), c->want);
    }

    UNIT_CASE("a long key is cut to fit, ends in a hash, and stays deterministic");
    memset(&ev, 0, sizeof ev);
    ev.kind = PL_EVENT_STATUS;
    ev.id = "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=";
    ev.status = "delivered";
    pl_store_dedupe_key(&ev, a, sizeof a);
    CHECK_INT(strlen(a), sizeof a - 1);
    CHECK(strncmp(a, "s:wamid.HBgLMTY1MDM4Nzk0", sizeof a - 18) == 0);
    CHECK_INT(a[sizeof a - 18], '#');
    pl_store_dedupe_key(&ev, b, sizeof b);
    CHECK_STR(b, a);
    ev.status = "read";
    pl_store_dedupe_key(&ev, b, sizeof b);
    CHECK(strcmp(a, b) != 0);

    UNIT_CASE("a tiny buffer is cut without a hash");
    ev.kind = PL_EVENT_MESSAGE;
    CHECK_STR(pl_store_dedupe_key(&ev, tiny, sizeof tiny), "m:wamid");
    CHECK(pl_store_dedupe_key(&ev, tiny, 0) == tiny);
    CHECK_STR(pl_store_dedupe_key(&ev, tiny, 1), "");
}

/* ---- inbox -------------------------------------------------------------------------------- */

/* Two events stored one after the other: is the second a duplicate? */
static const struct dup_case {
    const char *name;
    enum pl_event_kind kind1, kind2;
    const char *id1, *status1, *id2, *status2;
    long long ts1, ts2;
    int duplicate;
} dup_cases[] = {
    {"same message id twice", PL_EVENT_MESSAGE, PL_EVENT_MESSAGE, "m1", NULL, "m1", NULL, 1, 2, 1},
    {"different message ids", PL_EVENT_MESSAGE, PL_EVENT_MESSAGE, "m2", NULL, "m3", NULL, 1, 1, 0},
    {"same press id twice", PL_EVENT_PRESS, PL_EVENT_PRESS, "p1", NULL, "p1", NULL, 1, 1, 1},
    {"same wamid, two statuses", PL_EVENT_STATUS, PL_EVENT_STATUS, "w1", "sent", "w1", "delivered",
     1, 2, 0},
    {"same wamid, same status", PL_EVENT_STATUS, PL_EVENT_STATUS, "w2", "read", "w2", "read", 1, 2,
     1},
    {"template: same id, different status", PL_EVENT_TEMPLATE_STATUS, PL_EVENT_TEMPLATE_STATUS,
     "t1", "APPROVED", "t1", "PAUSED", 5, 5, 0},
    {"template: same id and status, new time", PL_EVENT_TEMPLATE_STATUS, PL_EVENT_TEMPLATE_STATUS,
     "t2", "PAUSED", "t2", "PAUSED", 5, 6, 0},
    {"template: same update twice", PL_EVENT_TEMPLATE_STATUS, PL_EVENT_TEMPLATE_STATUS, "t3",
     "APPROVED", "t3", "APPROVED", 5, 5, 1},
    {"quality: same event twice", PL_EVENT_QUALITY, PL_EVENT_QUALITY, NULL, "FLAGGED", NULL,
     "FLAGGED", 9, 9, 1},
    {"quality: same event, new time", PL_EVENT_QUALITY, PL_EVENT_QUALITY, NULL, "UNFLAGGED", NULL,
     "UNFLAGGED", 9, 10, 0},
    {"message without id is never a duplicate", PL_EVENT_MESSAGE, PL_EVENT_MESSAGE, NULL, NULL,
     NULL, NULL, 1, 1, 0},
    {"same trigger id twice", PL_EVENT_TRIGGER, PL_EVENT_TRIGGER, "g1", NULL, "g1", NULL, 0, 0, 1},
};

static void test_inbox_dedupe(void)
{
    struct pl_store *s = open_new("dedupe.db");
    struct pl_error err = {{0}, {0}};
    long long last = 0, expect_rows = 0, pending = 0;
    size_t i;

    if (s == NULL)
        return;
    for (i = 0; i < sizeof dup_cases / sizeof dup_cases[0]; i++) {
        const struct dup_case *c = &dup_cases[i];
        struct pl_event e1 = make_event(c->kind1, c->id1, c->status1, "7999", c->ts1, NULL);
        struct pl_event e2 = make_event(c->kind2, c->id2, c->status2, "7999", c->ts2, NULL);
        long long r1 = -1, r2 = -1;

        UNIT_CASE(c->name);
        CHECK_INT(pl_store_inbox_add(s, &e1, 1, &r1, &err), 0);
        CHECK_INT(pl_store_inbox_add(s, &e2, 2, &r2, &err), 0);
        CHECK_INT(r1, last + 1);
        if (c->duplicate) {
            CHECK_INT(r2, 0);
            last = r1;
        } else {
            CHECK_INT(r2, r1 + 1);
            last = r2;
        }
        expect_rows += c->duplicate ? 1 : 2;
        pl_event_clear(&e1);
        pl_event_clear(&e2);
    }
    UNIT_CASE("one row per distinct event");
    CHECK_INT(pl_store_inbox_counts(s, &pending, NULL, NULL, &err), 0);
    CHECK_INT(pending, expect_rows);
    pl_store_close(s);
}

struct seen {
    long long rowids[512];
    struct pl_event first;
    size_t n;
    int stop_after;               /* return -1 after this many calls (0: never) */
    struct pl_store *finish_with; /* finish each row from inside the callback */
};

static int on_pending(void *ud, long long rowid, const struct pl_event *ev)
{
    struct seen *seen = ud;
    struct pl_error err;

    if (seen->n == 0 && pl_event_copy(&seen->first, ev) != 0)
        return -1;
    if (seen->n < sizeof seen->rowids / sizeof seen->rowids[0])
        seen->rowids[seen->n] = rowid;
    seen->n++;
    if (seen->finish_with != NULL &&
        pl_store_inbox_finish(seen->finish_with, rowid, PL_INBOX_DONE, NULL, NULL, &err) != 0)
        return -1;
    return seen->stop_after != 0 && seen->n >= (size_t)seen->stop_after ? -1 : 0;
}

static void test_inbox_pending(void)
{
    struct pl_store *s = open_new("pending.db");
    struct pl_error err = {{0}, {0}};
    struct seen seen;
    long long r[4], pending, done, failed;
    json_t *data;
    size_t i;
    int ok;

    if (s == NULL)
        return;
    UNIT_CASE("events are stored whole");
    data = json_pack("{s:s, s:s, s:I, s:{s:s, s:b}, s:{s:[i, f, n]}}", "type", "text", "text",
                     "Привет, мир", "timestamp", (json_int_t)1750000000, "context", "id",
                     "wamid.CTX", "forwarded", 1, "media", "list", 1, 2.5);
    CHECK(data != NULL);
    /* a NUL byte inside a string (Meta escapes it as \u0000) must come back too */
    json_object_set_new(data, "raw", json_stringn("a\0b", 3));
    {
        struct pl_event evs[4] = {
            make_event(PL_EVENT_MESSAGE, "wamid.P1", NULL, "79991234567", 1750000000, data),
            make_event(PL_EVENT_STATUS, "wamid.P2", "read", "79991234567", 1750000001, NULL),
            make_event(PL_EVENT_PRESS, "wamid.P3", NULL, NULL, 0, json_object()),
            make_event(PL_EVENT_QUALITY, NULL, "FLAGGED", NULL, 1750000003, NULL),
        };
        evs[0].contact_name = strdup("Анна");
        free(evs[3].phone_number_id);
        evs[3].phone_number_id = NULL;
        for (i = 0; i < 4; i++) {
            CHECK_INT(pl_store_inbox_add(s, &evs[i], 2000 + (long long)i, &r[i], &err), 0);
            pl_event_clear(&evs[i]);
        }
    }

    UNIT_CASE("finish marks rows done and failed");
    CHECK_INT(pl_store_inbox_finish(s, r[1], PL_INBOX_DONE, NULL, NULL, &err), 0);
    CHECK_INT(
        pl_store_inbox_finish(s, r[2], PL_INBOX_FAILED, "script_error", "demo.lua:3: boom", &err),
        0);
    CHECK_INT(pl_store_inbox_counts(s, &pending, &done, &failed, &err), 0);
    CHECK_INT(pending, 2);
    CHECK_INT(done, 1);
    CHECK_INT(failed, 1);

    UNIT_CASE("finish of an unknown row changes nothing");
    CHECK_INT(pl_store_inbox_finish(s, 999, PL_INBOX_DONE, NULL, NULL, &err), 0);
    CHECK_INT(pl_store_inbox_counts(s, &pending, &done, &failed, &err), 0);
    CHECK_INT(pending + done + failed, 4);

    UNIT_CASE("pending skips done and failed, in arrival order");
    memset(&seen, 0, sizeof seen);
    CHECK_INT(pl_store_inbox_pending(s, on_pending, &seen, &err), 0);
    CHECK_INT(seen.n, 2);
    CHECK_INT(seen.rowids[0], r[0]);
    CHECK_INT(seen.rowids[1], r[3]);

    UNIT_CASE("pending after a row, at most max, says how many it read");
    struct seen after = {0};
    size_t read = 99;
    CHECK_INT(pl_store_inbox_pending_after(s, r[0], 1, on_pending, &after, &read, &err), 0);
    CHECK_INT(read, 1);
    CHECK_INT(after.n, 1);
    CHECK_INT(after.rowids[0], r[3]);
    pl_event_clear(&after.first);
    CHECK_INT(pl_store_inbox_pending_after(s, r[3], 0, on_pending, &after, &read, &err), 0);
    CHECK_INT(read, 0);

    UNIT_CASE("a pending event is rebuilt whole");
    CHECK_INT(seen.first.kind, PL_EVENT_MESSAGE);
    CHECK_STR(seen.first.id, "wamid.P1");
    CHECK_STR(seen.first.contact, "79991234567");
    CHECK_STR(seen.first.contact_name, "Анна");
    CHECK_STR(seen.first.phone_number_id, "106540352242922");
    CHECK_STR(seen.first.waba_id, "102290129340398");
    CHECK_STR(seen.first.status, NULL);
    CHECK_INT(seen.first.timestamp, 1750000000);
    CHECK_STR(json_string_value(json_object_get(seen.first.data, "text")), "Привет, мир");
    json_t *raw = json_object_get(seen.first.data, "raw");
    CHECK(json_string_length(raw) == 3 && memcmp(json_string_value(raw), "a\0b", 3) == 0);
    CHECK_STR(json_string_value(json_object_get(json_object_get(seen.first.data, "context"), "id")),
              "wamid.CTX");
    CHECK(json_is_true(json_object_get(json_object_get(seen.first.data, "context"), "forwarded")));
    {
        json_t *list = json_object_get(json_object_get(seen.first.data, "media"), "list");
        CHECK_INT(json_array_size(list), 3);
        CHECK(json_real_value(json_array_get(list, 1)) == 2.5);
        CHECK(json_is_null(json_array_get(list, 2)));
    }
    CHECK_INT(json_integer_value(json_object_get(seen.first.data, "timestamp")), 1750000000);
    pl_event_clear(&seen.first);

    UNIT_CASE("NULL optional fields and NULL data come back NULL");
    memset(&seen, 0, sizeof seen);
    seen.stop_after = 0;
    pl_store_inbox_finish(s, r[0], PL_INBOX_DONE, NULL, NULL, &err);
    CHECK_INT(pl_store_inbox_pending(s, on_pending, &seen, &err), 0);
    CHECK_INT(seen.n, 1);
    CHECK_INT(seen.first.kind, PL_EVENT_QUALITY);
    CHECK_STR(seen.first.phone_number_id, NULL);
    CHECK_STR(seen.first.id, NULL);
    CHECK_STR(seen.first.contact, NULL);
    CHECK_STR(seen.first.contact_name, NULL);
    CHECK_STR(seen.first.status, "FLAGGED");
    CHECK(seen.first.data == NULL);
    pl_event_clear(&seen.first);

    UNIT_CASE("many pending rows, in order, finished from inside the callback");
    for (i = 0; i < 300; i++) {
        char id[32];
        struct pl_event ev;
        long long rowid;
        snprintf(id, sizeof id, "wamid.MANY%zu", i);
        ev = make_event(PL_EVENT_MESSAGE, id, NULL, "7", 0, json_pack("{s:i}", "n", (int)i));
        CHECK_INT(pl_store_inbox_add(s, &ev, 3000, &rowid, &err), 0);
        pl_event_clear(&ev);
    }
    memset(&seen, 0, sizeof seen);
    seen.finish_with = s;
    CHECK_INT(pl_store_inbox_pending(s, on_pending, &seen, &err), 0);
    CHECK_INT(seen.n, 301); /* the quality event, then the 300 */
    for (ok = 1, i = 1; i < seen.n; i++)
        ok &= seen.rowids[i] > seen.rowids[i - 1];
    CHECK(ok);
    pl_event_clear(&seen.first);
    CHECK_INT(pl_store_inbox_counts(s, &pending, &done, &failed, &err), 0);
    CHECK_INT(pending, 0);
    CHECK_INT(done, 303);
    CHECK_INT(failed, 1);

    UNIT_CASE("a callback that returns -1 stops the scan");
    for (i = 0; i < 3; i++) {
        char id[32];
        struct pl_event ev;
        long long rowid;
        snprintf(id, sizeof id, "wamid.STOP%zu", i);
        ev = make_event(PL_EVENT_MESSAGE, id, NULL, "7", 0, NULL);
        pl_store_inbox_add(s, &ev, 4000, &rowid, &err);
        pl_event_clear(&ev);
    }
    memset(&seen, 0, sizeof seen);
    seen.stop_after = 1;
    CHECK_INT(pl_store_inbox_pending(s, on_pending, &seen, &err), -1);
    CHECK_INT(seen.n, 1);
    pl_event_clear(&seen.first);
    pl_store_close(s);
}

/* ---- transactions ------------------------------------------------------------------------- */

static void test_transactions(void)
{
    struct pl_store *s = open_new("tx.db");
    struct pl_error err = {{0}, {0}};
    long long counts[PL_OUT_FAILED + 1];

    if (s == NULL)
        return;
    UNIT_CASE("rollback discards, commit keeps");
    CHECK_INT(pl_store_begin(s, &err), 0);
    CHECK_INT(pl_store_outbox_add(s, "L1", "c", "PN", "7", "text", "hi", NULL, 1, NULL, &err), 0);
    pl_store_rollback(s);
    CHECK_INT(pl_store_begin(s, &err), 0);
    CHECK_INT(pl_store_outbox_add(s, "L2", "c", "PN", "7", "text", "hi", NULL, 1, NULL, &err), 0);
    CHECK_INT(pl_store_commit(s, &err), 0);
    CHECK_INT(pl_store_outbox_counts(s, NULL, counts, &err), 0);
    CHECK_INT(counts[PL_OUT_QUEUED], 1);

    UNIT_CASE("commit without begin is an error; rollback without begin is harmless");
    CHECK_INT(pl_store_commit(s, &err), -1);
    CHECK_STR(err.code, "store");
    CHECK_CONTAINS(err.msg, "commit");
    pl_store_rollback(s);

    UNIT_CASE("a failed statement inside a transaction leaves it usable for rollback");
    CHECK_INT(pl_store_begin(s, &err), 0);
    CHECK_INT(pl_store_outbox_add(s, "L3", "c", "PN", "7", "text", "hi", NULL, 1, NULL, &err), 0);
    CHECK_INT(pl_store_outbox_add(s, "L2", "c", "PN", "7", "text", "dup", NULL, 1, NULL, &err), -1);
    pl_store_rollback(s);
    CHECK_INT(pl_store_outbox_counts(s, NULL, counts, &err), 0);
    CHECK_INT(counts[PL_OUT_QUEUED], 1);
    pl_store_close(s);
}

/* ---- contacts ----------------------------------------------------------------------------- */

/* got is an opted-in contact with these values */
static void check_contact(const struct pl_contact *got, const char *name, long long last_inbound,
                          const char *source, long long opt_in_at, const char *session)
{
    CHECK_STR(got->name, name);
    CHECK_INT(got->last_inbound, last_inbound);
    CHECK_INT(got->opted_in, 1);
    CHECK_STR(got->opt_in_source, source);
    CHECK_INT(got->opt_in_at, opt_in_at);
    CHECK_STR(got->session, session);
}

static void test_contacts(void)
{
    struct pl_store *s = open_new("contacts.db");
    struct pl_error err = {{0}, {0}};
    struct pl_contact c, got;
    const char *session = "{\"step\":\"ask_name\",\"name\":\"Анна 🌷\",\"n\":3,\"tags\":[\"a\"]}";

    if (s == NULL)
        return;
    UNIT_CASE("an unknown contact reads as zeros");
    memset(&got, 0x5a, sizeof got);
    CHECK_INT(pl_store_contact_get(s, "insurance", "79991234567", &got, &err), 0);
    CHECK(got.name == NULL && got.opt_in_source == NULL && got.session == NULL);
    CHECK_INT(got.last_inbound, 0);
    CHECK_INT(got.opted_in, 0);
    CHECK_INT(got.opt_in_at, 0);

    UNIT_CASE("put then get, with UTF-8 session and NULL strings");
    memset(&c, 0, sizeof c);
    c.last_inbound = 1750000000;
    c.session = (char *)session;
    CHECK_INT(pl_store_contact_put(s, "insurance", "79991234567", &c, NULL, &err), 0);
    CHECK_INT(pl_store_contact_get(s, "insurance", "79991234567", &got, &err), 0);
    CHECK_STR(got.name, NULL);
    CHECK_STR(got.opt_in_source, NULL);
    CHECK_STR(got.session, session);
    CHECK_INT(got.last_inbound, 1750000000);
    pl_contact_clear(&got);
    CHECK(got.session == NULL && got.last_inbound == 0);

    UNIT_CASE("put replaces the name, the session and records consent");
    c.name = "Анна";
    c.opted_in = 1;
    c.opt_in_source = "website form";
    c.opt_in_at = 1750000100;
    c.session = NULL;
    CHECK_INT(pl_store_contact_put(s, "insurance", "79991234567", &c, NULL, &err), 0);
    CHECK_INT(pl_store_contact_get(s, "insurance", "79991234567", &got, &err), 0);
    CHECK_STR(got.name, "Анна");
    CHECK_INT(got.opted_in, 1);
    CHECK_STR(got.opt_in_source, "website form");
    CHECK_INT(got.opt_in_at, 1750000100);
    CHECK_STR(got.session, NULL);
    pl_contact_clear(&got);

    UNIT_CASE("a later put read before the consent was recorded does not withdraw it");
    c.opted_in = 0;
    c.opt_in_source = NULL;
    c.opt_in_at = 0;
    c.last_inbound = 1; /* older than what is stored */
    c.session = (char *)"{}";
    c.name = NULL;
    struct pl_contact stored;
    CHECK_INT(pl_store_contact_put(s, "insurance", "79991234567", &c, &stored, &err), 0);
    CHECK_INT(pl_store_contact_get(s, "insurance", "79991234567", &got, &err), 0);
    check_contact(&got, "Анна", 1750000000, "website form", 1750000100, "{}");
    UNIT_CASE("a copy is deep");
    struct pl_contact copy;
    CHECK_INT(pl_contact_copy(&copy, &got), 0);
    CHECK_STR(copy.name, "Анна");
    CHECK_STR(copy.opt_in_source, "website form");
    CHECK_STR(copy.session, "{}");
    CHECK_INT(copy.opt_in_at, 1750000100);
    CHECK(copy.name != got.name && copy.session != got.session);
    pl_contact_clear(&copy);
    UNIT_CASE("put gives back the row as stored: the merge, not what was put");
    CHECK_INT(stored.opted_in, got.opted_in);
    CHECK_STR(stored.opt_in_source, got.opt_in_source);
    CHECK_INT(stored.opt_in_at, got.opt_in_at);
    CHECK_INT(stored.last_inbound, got.last_inbound);
    CHECK_STR(stored.session, got.session);
    CHECK_STR(stored.name, got.name);
    pl_contact_clear(&stored);
    pl_contact_clear(&got);

    UNIT_CASE("contacts are per channel");
    CHECK_INT(pl_store_contact_get(s, "shop", "79991234567", &got, &err), 0);
    CHECK(got.name == NULL && got.last_inbound == 0);
    pl_contact_clear(&got);
    pl_contact_clear(NULL);
    pl_store_close(s);
}

/* ---- outbox state machine ----------------------------------------------------------------- */

enum op_kind { OP_END, OP_SENT, OP_FAILED, OP_STATUS };

struct op {
    enum op_kind kind;
    enum pl_out_state st; /* OP_STATUS */
    int changed;          /* OP_STATUS: the expected *changed */
};

#define SENT          \
    {                 \
        OP_SENT, 0, 0 \
    }
#define FAILED          \
    {                   \
        OP_FAILED, 0, 0 \
    }
#define STATUS(st, c)             \
    {                             \
        OP_STATUS, PL_OUT_##st, c \
    }

static const struct out_case {
    const char *name;
    struct op ops[6];
    enum pl_out_state want;
} out_cases[] = {
    {"queued stays queued", {{OP_END, 0, 0}}, PL_OUT_QUEUED},
    {"sent", {SENT}, PL_OUT_SENT},
    {"sent, delivered, read", {SENT, STATUS(DELIVERED, 1), STATUS(READ, 1)}, PL_OUT_READ},
    {"sent, read, delivered stays read",
     {SENT, STATUS(READ, 1), STATUS(DELIVERED, 0)},
     PL_OUT_READ},
    {"read without delivered", {SENT, STATUS(READ, 1)}, PL_OUT_READ},
    {"a sent webhook after we recorded sent changes nothing",
     {SENT, STATUS(SENT, 0), STATUS(DELIVERED, 1)},
     PL_OUT_DELIVERED},
    {"delivered twice", {SENT, STATUS(DELIVERED, 1), STATUS(DELIVERED, 0)}, PL_OUT_DELIVERED},
    {"failed before delivered", {SENT, STATUS(FAILED, 1)}, PL_OUT_FAILED},
    {"nothing leaves failed",
     {SENT, STATUS(FAILED, 1), STATUS(DELIVERED, 0), STATUS(READ, 0)},
     PL_OUT_FAILED},
    {"failed after read is ignored", {SENT, STATUS(READ, 1), STATUS(FAILED, 0)}, PL_OUT_READ},
    {"failed after delivered is ignored",
     {SENT, STATUS(DELIVERED, 1), STATUS(FAILED, 0)},
     PL_OUT_DELIVERED},
    {"a queued status changes nothing", {SENT, STATUS(QUEUED, 0)}, PL_OUT_SENT},
    {"sender failure while queued", {FAILED}, PL_OUT_FAILED},
    {"sent after a sender failure changes nothing", {FAILED, SENT}, PL_OUT_FAILED},
    {"sender failure after sent", {SENT, FAILED}, PL_OUT_FAILED},
    {"sender failure after delivered is ignored",
     {SENT, STATUS(DELIVERED, 1), FAILED},
     PL_OUT_DELIVERED},
};

static void test_outbox_states(void)
{
    struct pl_store *s = open_new("outbox.db");
    struct pl_error err = {{0}, {0}};
    char path[256];
    size_t i, j;

    if (s == NULL)
        return;
    tmp_path(path, sizeof path, "outbox.db");
    for (i = 0; i < sizeof out_cases / sizeof out_cases[0]; i++) {
        const struct out_case *c = &out_cases[i];
        char channel[32], local_id[32], wamid[32], got_id[32];
        long long counts[PL_OUT_FAILED + 1];
        int changed, k;

        UNIT_CASE(c->name);
        snprintf(channel, sizeof channel, "ch%zu", i);
        snprintf(local_id, sizeof local_id, "local-%zu", i);
        snprintf(wamid, sizeof wamid, "wamid.OUT%zu", i);
        CHECK_INT(pl_store_outbox_add(s, local_id, channel, "PN", "7999", "text", "hello", NULL,
                                      100, NULL, &err),
                  0);
        for (j = 0; j < 6 && c->ops[j].kind != OP_END; j++) {
            const struct op *op = &c->ops[j];
            long long at = 200 + (long long)j;
            switch (op->kind) {
            case OP_SENT:
                CHECK_INT(pl_store_outbox_sent(s, local_id, wamid, at, &err), 0);
                break;
            case OP_FAILED:
                CHECK_INT(pl_store_outbox_failed(s, local_id, 131026, "Message undeliverable", NULL,
                                                 at, &err),
                          0);
                break;
            case OP_STATUS:
                changed = -1;
                CHECK_INT(pl_store_outbox_status(s, wamid, op->st, 131049, at, got_id,
                                                 sizeof got_id, &changed, &err),
                          0);
                CHECK_STR(got_id, local_id);
                if (changed != op->changed)
                    UNIT_FAIL("op %zu (%s): changed %d, want %d", j, pl_out_state_name(op->st),
                              changed, op->changed);
                else
                    unit_passed++;
                break;
            case OP_END:
                break;
            }
        }
        CHECK_INT(pl_store_outbox_counts(s, channel, counts, &err), 0);
        for (k = PL_OUT_QUEUED; k <= PL_OUT_FAILED; k++)
            if (counts[k] != (k == (int)c->want))
                UNIT_FAIL("final state: %s has %lld rows, want %s", pl_out_state_name(k), counts[k],
                          pl_out_state_name(c->want));
    }

    UNIT_CASE("read without delivered sets read_at only");
    CHECK_INT(raw_int(path, "SELECT read_at FROM outbox WHERE local_id = 'local-4'"), 201);
    CHECK_INT(raw_int(path, "SELECT delivered_at FROM outbox WHERE local_id = 'local-4'"), -1);
    CHECK_INT(raw_int(path, "SELECT sent_at FROM outbox WHERE local_id = 'local-4'"), 200);
    UNIT_CASE("a failed status records its code and time");
    CHECK_INT(raw_int(path, "SELECT error_code FROM outbox WHERE local_id = 'local-7'"), 131049);
    CHECK_INT(raw_int(path, "SELECT failed_at FROM outbox WHERE local_id = 'local-7'"), 201);
    UNIT_CASE("an ignored failure leaves no error behind");
    CHECK_INT(raw_int(path, "SELECT error_code FROM outbox WHERE local_id = 'local-9'"), -1);

    pl_store_close(s);
}

struct queued_seen {
    char ids[8][32];
    char bodies[8][32];
    char numbers[8][32];
    long long created[8];
    long long last_id;
    size_t n;
    int stop_after;
};

static int on_queued(void *ud, long long id, const char *local_id, const char *channel,
                     const char *phone_number_id, const char *contact, const char *kind,
                     const char *body, long long created_at)
{
    struct queued_seen *q = ud;
    q->last_id = id;

    (void)channel;
    if (q->n < 8)
        snprintf(q->numbers[q->n], sizeof q->numbers[0], "%s",
                 phone_number_id != NULL ? phone_number_id : "(null)");
    (void)contact;
    (void)kind;
    if (q->n < 8) {
        snprintf(q->ids[q->n], sizeof q->ids[0], "%s", local_id);
        snprintf(q->bodies[q->n], sizeof q->bodies[0], "%s", body != NULL ? body : "(null)");
        q->created[q->n] = created_at;
    }
    q->n++;
    return q->stop_after != 0 && q->n >= (size_t)q->stop_after ? -1 : 0;
}

static void test_outbox_misc(void)
{
    struct pl_store *s = open_new("outbox2.db");
    struct pl_error err = {{0}, {0}};
    long long counts[PL_OUT_FAILED + 1];
    struct queued_seen q;
    char got_id[32], small[4];
    int changed;

    if (s == NULL)
        return;
    UNIT_CASE("a duplicate local id is an error");
    CHECK_INT(pl_store_outbox_add(s, "A", "shop", "PN", "7001", "text", "one", NULL, 1, NULL, &err),
              0);
    CHECK_INT(
        pl_store_outbox_add(s, "A", "shop", "PN", "7001", "text", "again", NULL, 2, NULL, &err),
        -1);
    CHECK_STR(err.code, "store");
    CHECK_CONTAINS(err.msg, "outbox_add");
    CHECK_CONTAINS(err.msg, "UNIQUE");
    UNIT_CASE("a store error names the state file and SQLite's extended code");
    {
        char path[256];
        CHECK_CONTAINS(err.msg, tmp_path(path, sizeof path, "outbox2.db"));
        CHECK_CONTAINS(err.msg, "(SQLite code 2067)"); /* SQLITE_CONSTRAINT_UNIQUE */
    }
    UNIT_CASE("the failure stands for /healthz until a commit succeeds");
    {
        char msg[PL_ERROR_MSG_MAX] = "";
        long long at = 0;
        CHECK_INT(pl_store_failure(msg, sizeof msg, &at), 1);
        CHECK_STR(msg, err.msg);
        CHECK(at > 0);
        CHECK_INT(pl_store_begin(s, &err), 0);
        CHECK_INT(pl_store_commit(s, &err), 0);
        CHECK_INT(pl_store_failure(msg, sizeof msg, &at), 0);
    }

    UNIT_CASE("queued messages come in creation order");
    CHECK_INT(pl_store_outbox_add(s, "B", "shop", NULL, "7002", "template", NULL, "welcome", 2,
                                  NULL, &err),
              0);
    CHECK_INT(pl_store_outbox_add(s, "C", "insurance", "PN", "7003", "text", "three", NULL, 3, NULL,
                                  &err),
              0);
    long long d_id = 0;
    CHECK_INT(pl_store_outbox_add(s, "D", "shop", "106540352242922", "7004", "text", "four", NULL,
                                  4, &d_id, &err),
              0);
    CHECK_INT(pl_store_outbox_sent(s, "C", "wamid.C", 10, &err), 0);
    memset(&q, 0, sizeof q);
    size_t read = 0;
    CHECK_INT(pl_store_outbox_queued(s, 0, 0, on_queued, &q, &read, &err), 0);
    CHECK_INT(q.n, 3);
    CHECK_INT(read, 3);
    CHECK_STR(q.ids[0], "A");
    CHECK_STR(q.ids[1], "B");
    CHECK_STR(q.ids[2], "D");
    CHECK_STR(q.bodies[1], "(null)");
    CHECK_STR(q.bodies[2], "four");
    CHECK_INT(q.created[0], 1); /* when each was queued: the maximum age counts from there */
    CHECK_INT(q.created[2], 4);
    CHECK_STR(q.numbers[1], "(null)"); /* the number each goes out from, as it was queued */
    CHECK_STR(q.numbers[2], "106540352242922");

    UNIT_CASE("queued messages after an id, at most max (the sender's read-back)");
    long long a_id = 0;
    memset(&q, 0, sizeof q);
    CHECK_INT(pl_store_outbox_queued(s, 0, 1, on_queued, &q, &read, &err), 0);
    CHECK_INT(q.n, 1);
    CHECK_STR(q.ids[0], "A");
    a_id = q.last_id;
    memset(&q, 0, sizeof q);
    CHECK_INT(pl_store_outbox_queued(s, a_id, 1, on_queued, &q, &read, &err), 0);
    CHECK_INT(q.n, 1);
    CHECK_STR(q.ids[0], "B");
    memset(&q, 0, sizeof q);
    CHECK_INT(pl_store_outbox_queued(s, a_id, 10, on_queued, &q, &read, &err), 0);
    CHECK_INT(q.n, 2); /* B and D: C was sent */
    CHECK_INT(read, 2);
    CHECK_STR(q.ids[1], "D");
    memset(&q, 0, sizeof q);
    CHECK_INT(pl_store_outbox_queued(s, q.last_id + 100, 0, on_queued, &q, &read, &err), 0);
    CHECK_INT(q.n, 0);
    char db_path[256];
    tmp_path(db_path, sizeof db_path, "outbox2.db");
    CHECK_INT(d_id, raw_int(db_path, "SELECT id FROM outbox WHERE local_id = 'D'"));

    UNIT_CASE("the queued scan stops when the callback says so");
    memset(&q, 0, sizeof q);
    q.stop_after = 2;
    CHECK_INT(pl_store_outbox_queued(s, 0, 0, on_queued, &q, NULL, &err), -1);
    CHECK_INT(q.n, 2);

    UNIT_CASE("counts per channel and for all");
    CHECK_INT(pl_store_outbox_counts(s, "shop", counts, &err), 0);
    CHECK_INT(counts[PL_OUT_QUEUED], 3);
    CHECK_INT(counts[PL_OUT_SENT], 0);
    CHECK_INT(pl_store_outbox_counts(s, "insurance", counts, &err), 0);
    CHECK_INT(counts[PL_OUT_QUEUED], 0);
    CHECK_INT(counts[PL_OUT_SENT], 1);
    CHECK_INT(pl_store_outbox_counts(s, NULL, counts, &err), 0);
    CHECK_INT(counts[PL_OUT_QUEUED], 3);
    CHECK_INT(counts[PL_OUT_SENT], 1);
    CHECK_INT(pl_store_outbox_counts(s, "nobody", counts, &err), 0);
    CHECK_INT(counts[PL_OUT_QUEUED] + counts[PL_OUT_SENT] + counts[PL_OUT_FAILED], 0);

    UNIT_CASE("an unknown wamid gives an empty local id and no change");
    strcpy(got_id, "junk");
    changed = -1;
    CHECK_INT(pl_store_outbox_status(s, "wamid.NOPE", PL_OUT_READ, 0, 5, got_id, sizeof got_id,
                                     &changed, &err),
              0);
    CHECK_STR(got_id, "");
    CHECK_INT(changed, 0);

    UNIT_CASE("the local id is cut to the buffer");
    CHECK_INT(
        pl_store_outbox_add(s, "LONGLOCALID", "shop", "PN", "7", "text", "x", NULL, 5, NULL, &err),
        0);
    CHECK_INT(pl_store_outbox_sent(s, "LONGLOCALID", "wamid.L", 6, &err), 0);
    CHECK_INT(pl_store_outbox_status(s, "wamid.L", PL_OUT_DELIVERED, 0, 7, small, sizeof small,
                                     &changed, &err),
              0);
    CHECK_STR(small, "LON");
    CHECK_INT(changed, 1);
    CHECK_INT(pl_store_outbox_status(s, "wamid.L", PL_OUT_READ, 0, 8, NULL, 0, &changed, &err), 0);
    CHECK_INT(changed, 1);

    UNIT_CASE("sent or failed for an unknown local id changes nothing");
    CHECK_INT(pl_store_outbox_sent(s, "ZZZ", "wamid.Z", 1, &err), 0);
    CHECK_INT(pl_store_outbox_failed(s, "ZZZ", -1, NULL, NULL, 1, &err), 0);
    CHECK_INT(pl_store_outbox_status(s, "wamid.Z", PL_OUT_READ, 0, 5, got_id, sizeof got_id,
                                     &changed, &err),
              0);
    CHECK_STR(got_id, "");
    CHECK_INT(pl_store_outbox_counts(s, NULL, counts, &err), 0);
    CHECK_INT(counts[PL_OUT_QUEUED] + counts[PL_OUT_SENT] + counts[PL_OUT_DELIVERED] +
                  counts[PL_OUT_READ] + counts[PL_OUT_FAILED],
              5);

    UNIT_CASE("state names");
    CHECK_STR(pl_out_state_name(PL_OUT_QUEUED), "queued");
    CHECK_STR(pl_out_state_name(PL_OUT_SENT), "sent");
    CHECK_STR(pl_out_state_name(PL_OUT_DELIVERED), "delivered");
    CHECK_STR(pl_out_state_name(PL_OUT_READ), "read");
    CHECK_STR(pl_out_state_name(PL_OUT_FAILED), "failed");
    pl_store_close(s);
}

/* ---- trigger answers ---------------------------------------------------------------------- */

static void test_triggers(void)
{
    struct pl_store *s = open_new("triggers.db");
    struct pl_error err = {{0}, {0}};
    char *answer = (char *)"junk";

    if (s == NULL)
        return;
    UNIT_CASE("no answer yet");
    CHECK_INT(pl_store_trigger_get(s, "insurance", "order-1", &answer, &err), 0);
    CHECK(answer == NULL);

    UNIT_CASE("the first answer wins");
    CHECK_INT(pl_store_trigger_put(s, "insurance", "order-1",
                                   "{\"id\":\"order-1\",\"messages\":[]}", 1, &err),
              0);
    CHECK_INT(pl_store_trigger_put(s, "insurance", "order-1", "{\"second\":true}", 2, &err), 0);
    CHECK_INT(pl_store_trigger_get(s, "insurance", "order-1", &answer, &err), 0);
    CHECK_STR(answer, "{\"id\":\"order-1\",\"messages\":[]}");
    free(answer);

    UNIT_CASE("answers are per channel");
    CHECK_INT(pl_store_trigger_get(s, "shop", "order-1", &answer, &err), 0);
    CHECK(answer == NULL);
    pl_store_close(s);
}

/* ---- two connections, two threads --------------------------------------------------------- */

#define THREAD_ROWS 2000

struct writer {
    const char *path;
    int which; /* 0: ingest (inbox, batches of 10); 1: engine (outbox + contact, mixed) */
    int failures;
    char msg[PL_ERROR_MSG_MAX];
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    struct pl_error err = {{0}, {0}};
    struct pl_store *s = pl_store_open(w->path, 0, &err);
    int i;

    if (s == NULL) {
        w->failures++;
        snprintf(w->msg, sizeof w->msg, "%s", err.msg);
        return NULL;
    }
    for (i = 0; i < THREAD_ROWS && w->failures == 0; i++) {
        char id[32];
        /* the engine writes every other block of 10 outside a transaction */
        int tx = w->which == 0 || (i / 10) % 2 == 0;
        if (tx && i % 10 == 0 && pl_store_begin(s, &err) != 0)
            break;
        if (w->which == 0) {
            struct pl_event ev;
            long long rowid;
            snprintf(id, sizeof id, "wamid.T%d", i);
            ev = make_event(PL_EVENT_MESSAGE, id, NULL, "7", i, json_pack("{s:i}", "i", i));
            if (pl_store_inbox_add(s, &ev, i, &rowid, &err) != 0 || rowid == 0)
                w->failures++;
            pl_event_clear(&ev);
        } else {
            struct pl_contact c = {NULL, i, 0, NULL, 0, (char *)"{\"n\":1}"};
            snprintf(id, sizeof id, "local-%d", i);
            if (pl_store_outbox_add(s, id, "shop", "PN", id + 6, "text", "hi", NULL, i, NULL,
                                    &err) != 0 ||
                pl_store_contact_put(s, "shop", id + 6, &c, NULL, &err) != 0)
                w->failures++;
        }
        if (tx && (i % 10 == 9 || i == THREAD_ROWS - 1) && pl_store_commit(s, &err) != 0)
            w->failures++;
    }
    if (w->failures != 0)
        snprintf(w->msg, sizeof w->msg, "%s", err.msg);
    pl_store_rollback(s);
    pl_store_close(s);
    return NULL;
}

static void test_threads(void)
{
    char path[256];
    struct writer w[2];
    pthread_t t[2];
    struct pl_error err = {{0}, {0}};
    struct pl_store *s;
    long long pending = 0, counts[PL_OUT_FAILED + 1];
    int i;

    UNIT_CASE("two connections in two threads open a new file and write at once");
    tmp_path(path, sizeof path, "threads/state.db");
    for (i = 0; i < 2; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].path = path;
        w[i].which = i;
    }
    for (i = 0; i < 2; i++)
        CHECK_INT(pthread_create(&t[i], NULL, writer_main, &w[i]), 0);
    for (i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        if (w[i].failures != 0)
            UNIT_FAIL("writer %d: %d failures, last: %s", i, w[i].failures, w[i].msg);
        else
            unit_passed++;
    }
    s = open_new("threads/state.db");
    if (s == NULL)
        return;
    CHECK_INT(pl_store_inbox_counts(s, &pending, NULL, NULL, &err), 0);
    CHECK_INT(pending, THREAD_ROWS);
    CHECK_INT(pl_store_outbox_counts(s, "shop", counts, &err), 0);
    CHECK_INT(counts[PL_OUT_QUEUED], THREAD_ROWS);
    CHECK_INT(raw_int(path, "SELECT count(*) FROM contacts"), THREAD_ROWS);
    pl_store_close(s);
}

/* ---- one connection shared by two threads ------------------------------------------------- */

#define SHARED_ROUNDS 2000

static pthread_barrier_t shared_start; /* both threads begin together */

struct sharer {
    struct pl_store *s;
    int which; /* 0 commits inbox rows (the ingest side), 1 writes and reads contacts (engine) */
    int failures;
    char msg[256];
};

static void *sharer_main(void *arg)
{
    struct sharer *w = arg;
    struct pl_error err = {{0}, {0}};

    pthread_barrier_wait(&shared_start);
    for (int i = 0; i < SHARED_ROUNDS && w->failures == 0; i++) {
        char id[32];
        if (w->which == 0) {
            long long rowid = 0;
            snprintf(id, sizeof id, "wamid.S%d", i);
            struct pl_event ev = make_event(PL_EVENT_MESSAGE, id, NULL, "7", i, NULL);
            if (pl_store_begin(w->s, &err) != 0 ||
                pl_store_inbox_add(w->s, &ev, i, &rowid, &err) != 0 ||
                pl_store_commit(w->s, &err) != 0 || rowid == 0)
                w->failures++;
            pl_event_clear(&ev);
            continue;
        }
        /* the engine's pattern: a read under the held turn, then a transaction */
        struct pl_contact c, got;
        memset(&c, 0, sizeof c);
        c.last_inbound = i + 1;
        c.session = id;
        snprintf(id, sizeof id, "{\"n\":%d}", i);
        pl_store_hold();
        int rc = pl_store_contact_get(w->s, "shop", "79000000001", &got, &err);
        pl_store_release();
        if (rc != 0 || got.last_inbound != i) /* sees its own last commit, nothing torn */
            w->failures++;
        pl_contact_clear(&got);
        if (pl_store_begin(w->s, &err) != 0 ||
            pl_store_contact_put(w->s, "shop", "79000000001", &c, NULL, &err) != 0 ||
            pl_store_commit(w->s, &err) != 0)
            w->failures++;
    }
    if (w->failures != 0)
        snprintf(w->msg, sizeof w->msg, "%.200s", err.msg);
    return NULL;
}

/* Join a sharer within SHARED_LIMIT_S, or end the suite with a failure: without a lock that
 * serializes them, the two threads corrupt the connection or deadlock on it, and a test that
 * hangs reports nothing. */
#define SHARED_LIMIT_S 60

static void join_sharer(pthread_t t, int which)
{
    struct timespec until;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += SHARED_LIMIT_S;
    if (pthread_timedjoin_np(t, NULL, &until) == 0)
        return;
    UNIT_FAIL("thread %d still runs after %d s: the threads deadlocked on the shared connection",
              which, SHARED_LIMIT_S);
    fflush(NULL);
    _exit(unit_report("store"));
}

static void *foreign_rollback(void *arg)
{
    pl_store_rollback(arg); /* not this thread's transaction: must leave it alone */
    return NULL;
}

static void test_shared_connection(void)
{
    char path[256];
    struct pl_error err = {{0}, {0}};
    struct pl_store *s = open_new("shared/state.db");
    struct sharer w[2];
    pthread_t t[2];
    long long pending = 0, rowid = 0;
    int status = 0;

    if (s == NULL)
        return;
    tmp_path(path, sizeof path, "shared/state.db");
    pl_store_share(s);
    pthread_barrier_init(&shared_start, NULL, 2);

    UNIT_CASE("a shared connection: two threads write and read in turn, nothing lost or torn");
    for (int i = 0; i < 2; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].s = s;
        w[i].which = i;
        CHECK_INT(pthread_create(&t[i], NULL, sharer_main, &w[i]), 0);
    }
    for (int i = 0; i < 2; i++) {
        join_sharer(t[i], i);
        if (w[i].failures != 0)
            UNIT_FAIL("thread %d: %d failures, last: %s", i, w[i].failures, w[i].msg);
        else
            unit_passed++;
    }
    pthread_barrier_destroy(&shared_start);
    pl_store_hold();
    CHECK_INT(pl_store_inbox_counts(s, &pending, NULL, NULL, &err), 0);
    pl_store_release();
    CHECK_INT(pending, SHARED_ROUNDS);
    CHECK_INT(raw_int(path, "SELECT last_inbound FROM contacts WHERE contact = '79000000001'"),
              SHARED_ROUNDS);

    UNIT_CASE("a shared connection: the turn nests (a holder may begin and commit)");
    struct pl_event ev = make_event(PL_EVENT_MESSAGE, "wamid.nested", NULL, "7", 1, NULL);
    pl_store_hold();
    CHECK_INT(pl_store_begin(s, &err), 0);
    CHECK_INT(pl_store_inbox_add(s, &ev, 1, &rowid, &err), 0);
    CHECK_INT(pl_store_commit(s, &err), 0);
    pl_store_release();
    pl_event_clear(&ev);
    CHECK_INT(raw_int(path, "SELECT count(*) FROM inbox WHERE provider_id = 'wamid.nested'"), 1);

    UNIT_CASE("a shared connection: another thread's rollback does not end this transaction");
    ev = make_event(PL_EVENT_MESSAGE, "wamid.mine", NULL, "7", 1, NULL);
    CHECK_INT(pl_store_begin(s, &err), 0);
    CHECK_INT(pl_store_inbox_add(s, &ev, 1, &rowid, &err), 0);
    CHECK_INT(pthread_create(&t[0], NULL, foreign_rollback, s), 0);
    pthread_join(t[0], NULL);
    CHECK_INT(pl_store_commit(s, &err), 0);
    pl_event_clear(&ev);
    CHECK_INT(raw_int(path, "SELECT count(*) FROM inbox WHERE provider_id = 'wamid.mine'"), 1);

    UNIT_CASE("a shared connection used without its turn aborts instead of racing");
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        struct pl_contact c;
        if (freopen("/dev/null", "w", stderr) == NULL)
            _exit(1);
        pl_store_contact_get(s, "shop", "79000000001", &c, &err);
        _exit(0);
    }
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    pl_store_close(s);
}

/* ---- informational insert rate ------------------------------------------------------------ */

static double now_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_throughput(void)
{
    struct pl_store *s = open_new("rate/state.db");
    struct pl_error err = {{0}, {0}};
    const int total = 50000, batch = 100;
    double t0, dt;
    int i, failures = 0;

    if (s == NULL)
        return;
    UNIT_CASE("insert rate (information, not asserted)");
    t0 = now_seconds();
    for (i = 0; i < total; i++) {
        char id[64];
        struct pl_event ev;
        long long rowid;
        if (i % batch == 0 && pl_store_begin(s, &err) != 0)
            failures++;
        snprintf(id, sizeof id, "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5%08d", i);
        ev = make_event(PL_EVENT_MESSAGE, id, NULL, "16505551234", 1750000000 + i,
                        json_pack("{s:s, s:s, s:s, s:I}", "id", id, "type", "text", "text",
                                  "Does it come in another color?", "timestamp",
                                  (json_int_t)1750000000 + i));
        ev.contact_name = strdup("Sheena Nelson");
        if (pl_store_inbox_add(s, &ev, 1750000000 + i, &rowid, &err) != 0 || rowid == 0)
            failures++;
        pl_event_clear(&ev);
        if (i % batch == batch - 1 && pl_store_commit(s, &err) != 0)
            failures++;
    }
    dt = now_seconds() - t0;
    CHECK_INT(failures, 0);
    printf("store: %d inbox inserts in transactions of %d: %.0f inserts/s\n", total, batch,
           total / dt);
    pl_store_close(s);
}

/* A writer that commits without pause, as the webhooks and the engine do under load. */
struct busy_writer {
    struct pl_store *s;
    int commits, failures; /* commits < 0: until stop is set */
    int stop;              /* __atomic */
};

static void *write_steadily(void *arg)
{
    struct busy_writer *w = arg;
    struct pl_error err = {{0}, {0}};
    for (int t = 0; w->commits < 0 ? !__atomic_load_n(&w->stop, __ATOMIC_RELAXED) : t < w->commits;
         t++) {
        char key[64];
        snprintf(key, sizeof key, "steady-%07d", t);
        w->failures += pl_store_begin(w->s, &err) != 0;
        w->failures +=
            pl_store_setting_put(w->s, key, "a value that takes some room", t, &err) != 0;
        w->failures += pl_store_commit(w->s, &err) != 0;
    }
    return NULL;
}

/* What a checkpoint run saw, after its first 10 rounds: the longest log, about how many frames
 * were written in all, the rounds, the rounds that began with more than twice restart_frames
 * (eligible) and how many of those ended with a last pass the writers waited for; and over the
 * whole run, the restarts and the most frames such a pass copied (-1: none). */
struct ckpt_run {
    int longest, median, total, rounds, eligible, eligible_restarts, restarts, most_held;
};

static int int_order(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

#define CKPT_ROUNDS_MAX 4000

/* 40 checkpoints, every_ns apart, while another thread commits without pause, and more (up to
 * CKPT_ROUNDS_MAX) until the writer has added at least min_total frames after the first 10: on a
 * busy machine the writer can get so little of the CPU that a log that never restarts stays short
 * too. What the numbers are depends on the disk (a slow sync lets the writer add more per
 * round), so the checks are proportions of what was written. */
static struct ckpt_run checkpoint_run(const char *name, int restart_frames, long every_ns,
                                      int min_total)
{
    struct pl_store *s = open_new(name), *c = open_new(name);
    struct busy_writer w = {s, -1, 0, 0};
    struct pl_error err = {{0}, {0}};
    struct ckpt_run r = {0, 0, 0, 0, 0, 0, 0, -1};
    static int logs[CKPT_ROUNDS_MAX];
    pthread_t th;
    int failures = 0, prev = 0;

    if (s == NULL || c == NULL) {
        pl_store_close(c);
        pl_store_close(s);
        r.longest = -1;
        return r;
    }
    pl_store_manual_checkpoints(s);
    pl_store_manual_checkpoints(c);
    pthread_create(&th, NULL, write_steadily, &w);
    for (int round = 0; round < 40 || (r.total < min_total && round < CKPT_ROUNDS_MAX); round++) {
        struct timespec ms = {0, every_ns};
        int log = 0, held = -1;
        failures += pl_store_checkpoint(c, restart_frames, &log, &held, &err) != 0;
        r.restarts += held >= 0;
        if (held > r.most_held)
            r.most_held = held;
        if (round >= 10 && log >= 0) {
            logs[r.rounds++] = log;
            r.total += log >= prev ? log - prev : log; /* smaller: it started over */
            if (log > r.longest)
                r.longest = log;
            if (restart_frames > 0 && log > 2 * restart_frames) {
                r.eligible++;
                r.eligible_restarts += held >= 0;
            }
        }
        if (log >= 0)
            prev = log;
        nanosleep(&ms, NULL);
    }
    __atomic_store_n(&w.stop, 1, __ATOMIC_RELAXED);
    pthread_join(th, NULL);
    CHECK_INT(failures + w.failures, 0);
    if (r.rounds > 0) {
        qsort(logs, (size_t)r.rounds, sizeof logs[0], int_order);
        r.median = logs[r.rounds / 2];
    }
    pl_store_close(c);
    pl_store_close(s);
    return r;
}

/* The POSIX locks this process holds on path (from /proc/locks), or -1 when that cannot be read.
 * A connection in WAL mode holds one on the database for as long as it is open. */
static int locks_held_on(const char *path)
{
    struct stat st;
    char line[256], me[32];
    int n = 0;
    FILE *f = fopen("/proc/locks", "r");

    if (f == NULL || stat(path, &st) != 0) {
        if (f != NULL)
            fclose(f);
        return -1;
    }
    snprintf(me, sizeof me, "%ld", (long)getpid());
    while (fgets(line, sizeof line, f) != NULL) {
        char *tok[10], *save = NULL;
        int k = 0;
        if (strstr(line, "->") != NULL) /* a waiter, not a lock held */
            continue;
        for (char *t = strtok_r(line, " \n", &save); t != NULL && k < 10;
             t = strtok_r(NULL, " \n", &save))
            tok[k++] = t;
        /* id: POSIX ADVISORY READ|WRITE pid maj:min:inode start end; the inode alone is
         * compared: the device /proc/locks names is not always stat's (btrfs, overlayfs) */
        const char *inode = k >= 6 ? strrchr(tok[5], ':') : NULL;
        if (inode != NULL && strcmp(tok[1], "POSIX") == 0 && strcmp(tok[4], me) == 0 &&
            strtoull(inode + 1, NULL, 10) == (unsigned long long)st.st_ino)
            n++;
    }
    fclose(f);
    return n;
}

/* Under steady commits a passive checkpoint never copies the whole log, so SQLite never starts
 * it over: it grows for as long as the writing goes on. Past restart_frames the checkpoint waits
 * its turn with the writers and the log starts over, so it stays short. */
static void test_checkpoint_restart(void)
{
    UNIT_CASE(
        "steady commits, passive checkpoints only: no last pass while 2,000 frames are written");
    struct ckpt_run passive = checkpoint_run("ckpt-passive/state.db", 0, 1000000, 2000);
    CHECK_INT(passive.restarts, 0);
    /* Only what this process decides is checked: when the writer gets little of the CPU, a
     * passive pass can copy the whole log now and then, and SQLite then starts it over itself */
    CHECK(passive.rounds >= 20 && passive.total >= 2000);
    UNIT_CASE("steady commits, restarts past 100 frames: the log stays short");
    struct ckpt_run restarted = checkpoint_run("ckpt-restart/state.db", 100, 1000000, 2000);
    CHECK(restarted.restarts > 0);
    /* Half the time the log holds less than a quarter of what was written: it keeps starting
     * over (a log that grows for the whole run holds more than half of it half the time). Not
     * the longest: on a busy machine the checkpoint thread can miss its turn for long enough
     * that the writer adds thousands of frames in one round. */
    CHECK(restarted.total >= 2000 && restarted.median * 4 < restarted.total);
    /* restarts past 1 frame: a pass counts as caught up only when the writers added nothing
     * while it copied, which under steady commits is rare; the log then restarts anyway */
    UNIT_CASE("writers that outrun every pass: the log restarts anyway past twice its size");
    struct ckpt_run outrun = checkpoint_run("ckpt-outrun/state.db", 1, 1000000, 0);
    CHECK(outrun.eligible >= 4 && outrun.eligible_restarts * 2 > outrun.eligible);
    /* how many frames the writers wait for depends on this machine's speed: printed, not
     * checked; bench/README.md has the measurements under load */
    UNIT_CASE("a backlog of thousands of frames: passes catch up, then the writers wait once");
    struct ckpt_run backlog = checkpoint_run("ckpt-backlog/state.db", 100, 30000000, 0);
    CHECK(backlog.restarts > 0);
    printf("store: write-ahead log under steady commits, longest, median and frames written after "
           "the first 10 checkpoints: %d, %d and %d in %d checkpoints with passive checkpoints "
           "only, %d, %d and %d in %d with restarts past 100 (after a backlog the writers waited "
           "for at most %d), %d restarts in %d checkpoints past 1\n",
           passive.longest, passive.median, passive.total, passive.rounds, restarted.longest,
           restarted.median, restarted.total, restarted.rounds, backlog.most_held,
           outrun.eligible_restarts, outrun.eligible);

    UNIT_CASE("a reader holding back the copies: no last pass, the writers never wait for it");
    struct pl_store *s = open_new("ckpt-reader/state.db"), *c = open_new("ckpt-reader/state.db");
    sqlite3 *reader = NULL;
    char path[256];
    struct pl_error err = {{0}, {0}};
    if (s == NULL || c == NULL ||
        sqlite3_open(tmp_path(path, sizeof path, "ckpt-reader/state.db"), &reader) != SQLITE_OK) {
        UNIT_FAIL("open ckpt-reader");
    } else {
        pl_store_manual_checkpoints(s);
        CHECK_INT(sqlite3_exec(reader, "BEGIN; SELECT count(*) FROM settings;", NULL, NULL, NULL),
                  SQLITE_OK);
        struct busy_writer w = {s, 300, 0, 0};
        write_steadily(&w); /* 300 commits after the reader's snapshot */
        CHECK_INT(w.failures, 0);
        int log = 0, waited = 0;
        CHECK_INT(pl_store_checkpoint(c, 10, &log, &waited, &err), 0);
        CHECK(log > 10);
        CHECK_INT(waited, -1);
        sqlite3_exec(reader, "COMMIT", NULL, NULL, NULL);
        UNIT_CASE("the reader gone, the next checkpoint copies everything and restarts the log");
        int before = locks_held_on(path);
        CHECK_INT(pl_store_checkpoint(c, 10, &log, &waited, &err), 0);
        CHECK(waited >= 0);
        UNIT_CASE("syncing before the last pass keeps SQLite's locks on the state file");
        CHECK(before > 0);
        CHECK_INT(locks_held_on(path), before); /* a descriptor's close would have dropped them */
        CHECK_INT(pl_store_begin(s, &err), 0);  /* the first commit after it: from the start */
        CHECK_INT(pl_store_setting_put(s, "after-restart", "v", 1, &err), 0);
        CHECK_INT(pl_store_commit(s, &err), 0);
        CHECK_INT(pl_store_checkpoint(c, 10, &log, &waited, &err), 0);
        CHECK(log < 10);
    }
    sqlite3_close(reader);
    pl_store_close(c);
    pl_store_close(s);
}

/* Another process's checkpoint (a broadcast, the sqlite3 tool) in RESTART mode: it holds
 * SQLite's checkpoint lock, and the writer lock, while its busy handler waits for a reader. */
struct other_checkpoint {
    sqlite3 *db;
    int waiting; /* __atomic: its busy handler was called */
    int release; /* __atomic: let it give up */
    int rc;
};

static int other_busy(void *arg, int count)
{
    struct other_checkpoint *o = arg;
    (void)count;
    __atomic_store_n(&o->waiting, 1, __ATOMIC_RELEASE);
    if (__atomic_load_n(&o->release, __ATOMIC_ACQUIRE))
        return 0; /* SQLITE_BUSY: it gives up, its locks go */
    nanosleep(&(struct timespec){0, 1000000}, NULL);
    return 1;
}

static void *other_restart(void *arg)
{
    struct other_checkpoint *o = arg;
    sqlite3_busy_handler(o->db, other_busy, o);
    o->rc = sqlite3_wal_checkpoint_v2(o->db, NULL, SQLITE_CHECKPOINT_RESTART, NULL, NULL);
    return NULL;
}

static void test_checkpoint_busy(void)
{
    struct pl_store *s = open_new("ckpt-busy/state.db"), *c = open_new("ckpt-busy/state.db");
    struct other_checkpoint o = {0};
    sqlite3 *reader = NULL;
    char path[256], msg[PL_ERROR_MSG_MAX];
    struct pl_error err = {{0}, {0}};
    long long at = 0;
    pthread_t th;

    tmp_path(path, sizeof path, "ckpt-busy/state.db");
    if (s == NULL || c == NULL || sqlite3_open(path, &reader) != SQLITE_OK ||
        sqlite3_open(path, &o.db) != SQLITE_OK) {
        UNIT_FAIL("open ckpt-busy");
        goto out;
    }
    pl_store_manual_checkpoints(s);
    struct busy_writer w = {s, 300, 0, 0};
    write_steadily(&w);
    CHECK_INT(w.failures, 0);
    /* a connection finds the log only once it has read: before that a checkpoint does nothing */
    CHECK_INT(sqlite3_exec(o.db, "SELECT count(*) FROM settings;", NULL, NULL, NULL), SQLITE_OK);
    CHECK_INT(sqlite3_exec(reader, "BEGIN; SELECT count(*) FROM settings;", NULL, NULL, NULL),
              SQLITE_OK);
    if (pthread_create(&th, NULL, other_restart, &o) != 0) {
        UNIT_FAIL("thread");
        goto out;
    }
    for (int i = 0; i < 5000 && !__atomic_load_n(&o.waiting, __ATOMIC_ACQUIRE); i++)
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    UNIT_CASE("another process checkpointing: the checkpoint is skipped, not an error");
    CHECK(__atomic_load_n(&o.waiting, __ATOMIC_ACQUIRE));
    int log = 0, held = 0;
    CHECK_INT(pl_store_checkpoint(c, 10, &log, &held, &err), 0);
    CHECK(log < 0); /* nothing was learnt: SQLITE_BUSY */
    CHECK_INT(held, -1);
    CHECK_STR(err.code, "");
    CHECK_INT(pl_store_failure(msg, sizeof msg, &at), 0);
    __atomic_store_n(&o.release, 1, __ATOMIC_RELEASE);
    pthread_join(th, NULL);
    CHECK_INT(o.rc & 0xff, SQLITE_BUSY); /* it gave up on the reader */
    sqlite3_exec(reader, "COMMIT", NULL, NULL, NULL);
    UNIT_CASE("the other checkpoint gone: the next one copies everything and restarts the log");
    CHECK_INT(pl_store_checkpoint(c, 10, &log, &held, &err), 0);
    CHECK(held >= 0);
    CHECK_INT(pl_store_begin(s, &err), 0);
    CHECK_INT(pl_store_setting_put(s, "after-busy", "v", 1, &err), 0);
    CHECK_INT(pl_store_commit(s, &err), 0);
    CHECK_INT(pl_store_checkpoint(c, 10, &log, &held, &err), 0);
    CHECK(log >= 0 && log < 10);
out:
    sqlite3_close(o.db);
    sqlite3_close(reader);
    pl_store_close(c);
    pl_store_close(s);
}

/* ---- main --------------------------------------------------------------------------------- */

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* ---- business-initiated recipients and settings ---- */

static int collect_setting(void *ud, const char *key, const char *value, long long at)
{
    char *buf = ud;
    char item[128];
    snprintf(item, sizeof item, "%s=%s@%lld;", key, value != NULL ? value : "(null)", at);
    strcat(buf, item);
    return 0;
}

static void test_business_and_settings(void)
{
    struct pl_store *s = open_new("business.db");
    struct pl_error err;
    char buf[512] = "";
    char *value = NULL;
    long long at = -1;

    if (s == NULL)
        return;
    UNIT_CASE("business recipients keep the latest time per contact");
    CHECK_INT(pl_store_business_add(s, "shop", "a", 100, &err), 0);
    CHECK_INT(pl_store_business_add(s, "shop", "a", 50, &err), 0); /* older: ignored */
    CHECK_INT(pl_store_business_add(s, "shop", "b", 200, &err), 0);
    CHECK_INT(pl_store_business_add(s, "other", "c", 300, &err), 0);
    long long count = -1;
    CHECK_INT(pl_store_business_at(s, "shop", "a", &at, &err), 0);
    CHECK_INT(at, 100);
    CHECK_INT(pl_store_business_count(s, "shop", 0, &count, &err), 0);
    CHECK_INT(count, 2); /* a and b; c is another channel's */
    UNIT_CASE("recent means after `since`, exclusive");
    CHECK_INT(pl_store_business_count(s, "shop", 100, &count, &err), 0);
    CHECK_INT(count, 1);
    CHECK_INT(pl_store_business_count(s, "other", 0, &count, &err), 0);
    CHECK_INT(count, 1);

    UNIT_CASE("a missing setting is NULL");
    CHECK_INT(pl_store_setting_get(s, "nope", &value, &at, &err), 0);
    CHECK(value == NULL);
    CHECK_INT(at, 0);
    UNIT_CASE("settings round-trip and replace");
    CHECK_INT(pl_store_setting_put(s, "tpl:shop:promo:ru", "PAUSED", 10, &err), 0);
    CHECK_INT(pl_store_setting_put(s, "tpl:shop:promo:ru", "APPROVED", 20, &err), 0);
    CHECK_INT(pl_store_setting_put(s, "tpl:shop:order:ru", "FLAGGED", 30, &err), 0);
    CHECK_INT(pl_store_setting_put(s, "tpl:shopx:a:ru", "DISABLED", 40, &err), 0);
    CHECK_INT(pl_store_setting_put(s, "limit:shop", "2000", 50, &err), 0);
    CHECK_INT(pl_store_setting_get(s, "tpl:shop:promo:ru", &value, &at, &err), 0);
    CHECK_STR(value, "APPROVED");
    CHECK_INT(at, 20);
    free(value);
    UNIT_CASE("a prefix scan returns exactly the keys with that prefix, in order");
    buf[0] = '\0';
    CHECK_INT(pl_store_settings_prefix(s, "tpl:shop:", collect_setting, buf, &err), 0);
    CHECK_STR(buf, "tpl:shop:order:ru=FLAGGED@30;tpl:shop:promo:ru=APPROVED@20;");
    pl_store_close(s);
}

/* Close s (a new file named name), turn it into an older version's file with sql (which sets
 * user_version), and open it again: the migration runs. NULL (a failure reported) if it
 * cannot be opened. path receives the file's path. */
static struct pl_store *reopen_older(struct pl_store *s, const char *name, const char *sql,
                                     char *path, size_t size)
{
    struct pl_error err;
    sqlite3 *db = NULL;

    pl_store_close(s);
    tmp_path(path, size, name);
    CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
    CHECK_INT(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    s = pl_store_open(path, 0, &err);
    if (s == NULL)
        UNIT_FAIL("open an older file %s: %s", name, err.msg);
    return s;
}

/* A file written by schema version 1 (before business_sends and settings) is migrated in
 * place: its rows stay, the new tables appear, the version moves to the current one. */
static void test_migrate_from_v1(void)
{
    char path[256];
    struct pl_error err;
    struct pl_store *s;
    long long rowid = 0;

    UNIT_CASE("a version 1 state file is migrated, keeping its rows");
    /* make a v1 file: today's schema without what version 2 added */
    s = open_new("v1.db");
    if (s == NULL)
        return;
    struct pl_event ev = make_event(PL_EVENT_MESSAGE, "wamid.OLD", NULL, "7999", 1, NULL);
    CHECK_INT(pl_store_inbox_add(s, &ev, 1, &rowid, &err), 0);
    pl_event_clear(&ev);
    s = reopen_older(s, "v1.db",
                     "DROP TABLE business_sends; DROP TABLE settings; "
                     "ALTER TABLE outbox DROP COLUMN phone_number_id; "
                     "PRAGMA user_version = 1",
                     path, sizeof path);
    if (s == NULL)
        return;
    CHECK_INT(raw_int(path, "PRAGMA user_version"), PL_STORE_SCHEMA_VERSION);
    CHECK_INT(raw_int(path, "SELECT count(*) FROM inbox WHERE dedupe = 'm:wamid.OLD'"), 1);
    CHECK_INT(pl_store_business_add(s, "shop", "a", 1, &err), 0);
    CHECK_INT(pl_store_setting_put(s, "k", "v", 1, &err), 0);
    pl_store_close(s);
}

/* ---- broadcasts: jobs, recipients, analytics ---------------------------------------------- */

/* Appends "line:wa_id:params:opt_in;" */
static int collect_pending(void *ud, long long line, const char *wa_id, const char *params,
                           int opt_in)
{
    char *buf = ud, item[200];
    snprintf(item, sizeof item, "%lld:%s:%s:%d;", line, wa_id != NULL ? wa_id : "(null)",
             params != NULL ? params : "(null)", opt_in);
    strcat(buf, item);
    return 0;
}

static int collect_queued_rcpt(void *ud, long long line, const char *wa_id, const char *local_id,
                               const char *body, int out_state, long long created_at,
                               const char *phone_number_id)
{
    char *buf = ud, item[200];
    snprintf(item, sizeof item, "%lld:%s:%s:%s:%d@%lld/%s;", line, wa_id,
             local_id != NULL ? local_id : "-", body != NULL ? body : "(null)", out_state,
             created_at, phone_number_id != NULL ? phone_number_id : "-");
    strcat(buf, item);
    return 0;
}

static int collect_rcpt_counts(void *ud, enum pl_rcpt_state st, const char *code, long long count)
{
    char *buf = ud, item[100];
    snprintf(item, sizeof item, "%s/%s=%lld;", pl_rcpt_state_name(st), code, count);
    strcat(buf, item);
    return 0;
}

static int collect_unsent(void *ud, long long line, const char *wa_id, enum pl_rcpt_state st,
                          const char *code, const char *detail)
{
    char *buf = ud, item[200];
    (void)detail;
    snprintf(item, sizeof item, "%lld:%s:%s:%s;", line, wa_id != NULL ? wa_id : "-",
             pl_rcpt_state_name(st), code != NULL ? code : "-");
    strcat(buf, item);
    return 0;
}

static int collect_delivery(void *ud, enum pl_out_state st, long code, long long count)
{
    char *buf = ud, item[100];
    snprintf(item, sizeof item, "%s/%ld=%lld;", pl_out_state_name(st), code, count);
    strcat(buf, item);
    return 0;
}

static int collect_tpl(void *ud, const char *channel, const char *name, const char *state,
                       long long count)
{
    char *buf = ud, item[200];
    snprintf(item, sizeof item, "%s/%s/%s=%lld;", channel, name, state, count);
    strcat(buf, item);
    return 0;
}

static int collect_job_counts(void *ud, const char *job, const char *channel, const char *name,
                              const char *state, long long count)
{
    char *buf = ud, item[200];
    snprintf(item, sizeof item, "%s/%s/%s/%s=%lld;", job, channel, name, state, count);
    strcat(buf, item);
    return 0;
}

static int collect_job(void *ud, const struct pl_broadcast_row *b)
{
    char *buf = ud, item[100];
    snprintf(item, sizeof item, "%s:%s;", b->id, b->state);
    strcat(buf, item);
    return 0;
}

static int count_queued(void *ud, long long id, const char *local_id, const char *channel,
                        const char *phone_number_id, const char *contact, const char *kind,
                        const char *body, long long created_at)
{
    char *buf = ud;
    (void)id;
    (void)phone_number_id;
    (void)created_at;
    (void)channel;
    (void)contact;
    (void)kind;
    (void)body;
    strcat(buf, local_id);
    strcat(buf, ";");
    return 0;
}

static struct pl_broadcast_row job_row(const char *id, const char *file, long long created)
{
    struct pl_broadcast_row b;
    memset(&b, 0, sizeof b);
    b.id = (char *)id;
    b.channel = (char *)"shop";
    b.template_name = (char *)"order_shipped";
    b.language = (char *)"ru";
    b.file = (char *)file;
    b.rate = 80;
    b.state = (char *)"importing";
    b.file_size = 123;
    b.file_mtime = 456;
    b.created_at = created;
    return b;
}

static void test_broadcast_jobs(void)
{
    struct pl_store *s = open_new("broadcast.db");
    struct pl_error err;
    struct pl_broadcast_row b, row;
    char buf[4096] = "";
    int found = -1, changed = 0;
    long long line = -1, at = -1, count = -1;
    size_t n = 0;
    char lid[64];

    if (s == NULL)
        return;
    UNIT_CASE("a job round-trips and the newest job for a list is found");
    b = job_row("b-1-aaaaaa", "/lists/a.csv", 100);
    CHECK_INT(pl_store_broadcast_create(s, &b, &err), 0);
    b = job_row("b-2-bbbbbb", "/lists/a.csv", 200);
    CHECK_INT(pl_store_broadcast_create(s, &b, &err), 0);
    b = job_row("b-3-cccccc", "/lists/other.csv", 300);
    CHECK_INT(pl_store_broadcast_create(s, &b, &err), 0);
    CHECK(pl_store_broadcast_create(s, &b, &err) != 0); /* the id is unique */
    CHECK_INT(pl_store_broadcast_get(s, "b-1-aaaaaa", &row, &found, &err), 0);
    CHECK_INT(found, 1);
    CHECK_STR(row.channel, "shop");
    CHECK_STR(row.template_name, "order_shipped");
    CHECK_STR(row.language, "ru");
    CHECK_STR(row.file, "/lists/a.csv");
    CHECK_STR(row.state, "importing");
    CHECK(row.stop_code == NULL);
    CHECK_INT(row.file_size, 123);
    CHECK_INT(row.file_mtime, 456);
    CHECK_INT(row.created_at, 100);
    CHECK(row.rate == 80);
    pl_broadcast_row_clear(&row);
    CHECK_INT(pl_store_broadcast_get(s, "b-9-nope", &row, &found, &err), 0);
    CHECK_INT(found, 0);
    CHECK(row.id == NULL);
    CHECK_INT(pl_store_broadcast_find(s, "shop", "order_shipped", "ru", "/lists/a.csv", &row,
                                      &found, &err),
              0);
    CHECK_INT(found, 1);
    CHECK_STR(row.id, "b-2-bbbbbb");
    pl_broadcast_row_clear(&row);
    CHECK_INT(pl_store_broadcast_find(s, "shop", "order_shipped", "en", "/lists/a.csv", &row,
                                      &found, &err),
              0);
    CHECK_INT(found, 0);
    UNIT_CASE("the job list is newest first and limited");
    CHECK_INT(pl_store_broadcast_list(s, 2, collect_job, buf, &err), 0);
    CHECK_STR(buf, "b-3-cccccc:importing;b-2-bbbbbb:importing;");

    UNIT_CASE("recipients: a line is added once; duplicates are found by wa_id");
    CHECK_INT(pl_store_rcpt_add(s, "b-2-bbbbbb", 2, "7001", "{\"body\":[\"A\"]}", 1,
                                PL_RCPT_PENDING, NULL, NULL, &err),
              0);
    CHECK_INT(
        pl_store_rcpt_add(s, "b-2-bbbbbb", 2, "7999", NULL, 0, PL_RCPT_PENDING, NULL, NULL, &err),
        0); /* the same line again: left as it was */
    CHECK_INT(pl_store_rcpt_add(s, "b-2-bbbbbb", 3, "12ab", NULL, 0, PL_RCPT_SKIPPED, "bad_phone",
                                "not a number", &err),
              0);
    for (int i = 4; i <= 9; i++) {
        char wa[16];
        snprintf(wa, sizeof wa, "70%02d", i);
        CHECK_INT(
            pl_store_rcpt_add(s, "b-2-bbbbbb", i, wa, NULL, 0, PL_RCPT_PENDING, NULL, NULL, &err),
            0);
    }
    CHECK_INT(
        pl_store_rcpt_add(s, "b-1-aaaaaa", 2, "7001", NULL, 0, PL_RCPT_PENDING, NULL, NULL, &err),
        0);
    CHECK_INT(pl_store_rcpt_find_wa(s, "b-2-bbbbbb", "7001", &line, &err), 0);
    CHECK_INT(line, 2);
    CHECK_INT(pl_store_rcpt_find_wa(s, "b-2-bbbbbb", "7777", &line, &err), 0);
    CHECK_INT(line, 0);
    CHECK_INT(pl_store_broadcast_imported(s, "b-2-bbbbbb", 4096, 10, &err), 0);
    CHECK_INT(pl_store_broadcast_get(s, "b-2-bbbbbb", &row, &found, &err), 0);
    CHECK_INT(row.import_offset, 4096);
    CHECK_INT(row.import_line, 10);
    pl_broadcast_row_clear(&row);

    UNIT_CASE("pending recipients come in line order, after a line, up to a limit");
    buf[0] = '\0';
    CHECK_INT(pl_store_rcpt_pending(s, "b-2-bbbbbb", 0, 3, collect_pending, buf, &n, &err), 0);
    CHECK_INT(n, 3);
    CHECK_STR(buf, "2:7001:{\"body\":[\"A\"]}:1;4:7004:(null):0;5:7005:(null):0;");
    buf[0] = '\0';
    CHECK_INT(pl_store_rcpt_pending(s, "b-2-bbbbbb", 5, 100, collect_pending, buf, &n, &err), 0);
    CHECK_INT(n, 4);
    CHECK_STR(buf, "6:7006:(null):0;7:7007:(null):0;8:7008:(null):0;9:7009:(null):0;");

    UNIT_CASE("a broadcast's outbox rows belong to it: the server's recovery skips them");
    CHECK_INT(pl_store_outbox_add(s, "m1", "shop", "PN", "7001", "text", "{}", NULL, 1, NULL, &err),
              0);
    CHECK_INT(pl_store_outbox_add_job(s, "b-2-bbbbbb:2", "shop", "PN", "7001", "template",
                                      "{\"t\":2}", "order_shipped", "b-2-bbbbbb", 2, &err),
              0);
    CHECK_INT(pl_store_outbox_add_job(s, "b-2-bbbbbb:4", "shop", "222", "7004", "template",
                                      "{\"t\":4}", "order_shipped", "b-2-bbbbbb", 7, &err),
              0);
    CHECK_INT(pl_store_outbox_add(s, "m2", "shop", "PN", "7002", "template", "{}", "promo", 3, NULL,
                                  &err),
              0);
    buf[0] = '\0';
    CHECK_INT(pl_store_outbox_queued(s, 0, 0, count_queued, buf, NULL, &err), 0);
    CHECK_STR(buf, "m1;m2;");
    char dbpath[256];
    tmp_path(dbpath, sizeof dbpath, "broadcast.db");
    CHECK_INT(raw_int(dbpath, "SELECT count(*) FROM outbox WHERE broadcast = 'b-2-bbbbbb'"), 2);

    UNIT_CASE("queued recipients come with their outbox rows (and their commit times)");
    CHECK_INT(
        pl_store_rcpt_set(s, "b-2-bbbbbb", 2, PL_RCPT_QUEUED, NULL, NULL, "b-2-bbbbbb:2", &err), 0);
    CHECK_INT(
        pl_store_rcpt_set(s, "b-2-bbbbbb", 4, PL_RCPT_QUEUED, NULL, NULL, "b-2-bbbbbb:4", &err), 0);
    CHECK_INT(
        pl_store_rcpt_set(s, "b-2-bbbbbb", 5, PL_RCPT_QUEUED, NULL, NULL, "b-2-missing", &err), 0);
    CHECK_INT(pl_store_outbox_sent(s, "b-2-bbbbbb:4", "wamid.B4", 5, &err), 0);
    buf[0] = '\0';
    CHECK_INT(pl_store_rcpt_queued(s, "b-2-bbbbbb", collect_queued_rcpt, buf, &err), 0);
    CHECK_STR(buf, "2:7001:b-2-bbbbbb:2:{\"t\":2}:0@2/PN;4:7004:b-2-bbbbbb:4:{\"t\":4}:1@7/222;"
                   "5:7005:b-2-missing:(null):-1@0/-;");
    buf[0] = '\0';
    CHECK_INT(pl_store_rcpt_pending(s, "b-2-bbbbbb", 0, 100, collect_pending, buf, &n, &err), 0);
    CHECK_INT(n, 4); /* 6..9: queued ones are not pending */

    UNIT_CASE("the sender's answer moves only a queued recipient; set keeps the local id");
    CHECK_INT(pl_store_rcpt_finish(s, "b-2-bbbbbb", 4, PL_RCPT_SENT, NULL, NULL, &err), 0);
    CHECK_INT(pl_store_rcpt_finish(s, "b-2-bbbbbb", 4, PL_RCPT_FAILED, "131026", "x", &err), 0);
    CHECK_INT(pl_store_rcpt_finish(s, "b-2-bbbbbb", 3, PL_RCPT_SENT, NULL, NULL, &err), 0);
    CHECK_INT(
        pl_store_rcpt_finish(s, "b-2-bbbbbb", 2, PL_RCPT_FAILED, "131026", "undeliverable", &err),
        0);
    CHECK_INT(pl_store_outbox_failed(s, "b-2-bbbbbb:2", 131026, "undeliverable", NULL, 6, &err), 0);
    CHECK_INT(pl_store_rcpt_set(s, "b-2-bbbbbb", 5, PL_RCPT_PENDING, NULL, NULL, NULL, &err), 0);
    CHECK_INT(raw_int(dbpath, "SELECT count(*) FROM broadcast_recipients WHERE line = 5 AND "
                              "local_id = 'b-2-missing' AND job = 'b-2-bbbbbb'"),
              1);
    CHECK_INT(pl_store_rcpt_set(s, "b-2-bbbbbb", 6, PL_RCPT_SKIPPED, "not_opted_in", "never wrote",
                                NULL, &err),
              0);

    UNIT_CASE("counts by state and code, and the not-sent rows in line order");
    buf[0] = '\0';
    CHECK_INT(pl_store_rcpt_counts(s, "b-2-bbbbbb", collect_rcpt_counts, buf, &err), 0);
    CHECK_STR(buf, "failed/131026=1;pending/=4;sent/=1;skipped/bad_phone=1;"
                   "skipped/not_opted_in=1;");
    buf[0] = '\0';
    CHECK_INT(pl_store_rcpt_unsent(s, "b-2-bbbbbb", collect_unsent, buf, &err), 0);
    CHECK_STR(buf, "2:7001:failed:131026;3:12ab:skipped:bad_phone;5:7005:pending:-;"
                   "6:7006:skipped:not_opted_in;7:7007:pending:-;8:7008:pending:-;"
                   "9:7009:pending:-;");

    UNIT_CASE("a state change writes the totals as they are");
    CHECK_INT(pl_store_broadcast_set_state(s, "b-2-bbbbbb", "stopped", "daily_limit", 0, 40, &err),
              0);
    CHECK_INT(pl_store_broadcast_get(s, "b-2-bbbbbb", &row, &found, &err), 0);
    CHECK_STR(row.state, "stopped");
    CHECK_STR(row.stop_code, "daily_limit");
    CHECK(row.rate == 40);
    CHECK_INT(row.total, 8);
    CHECK_INT(row.sent, 1);
    CHECK_INT(row.skipped, 2);
    CHECK_INT(row.failed, 1);
    CHECK_INT(row.finished_at, 0);
    pl_broadcast_row_clear(&row);
    CHECK_INT(pl_store_broadcast_set_state(s, "b-2-bbbbbb", "done", NULL, 999, 40, &err), 0);
    CHECK_INT(pl_store_broadcast_get(s, "b-2-bbbbbb", &row, &found, &err), 0);
    CHECK(row.stop_code == NULL);
    CHECK_INT(row.finished_at, 999);
    pl_broadcast_row_clear(&row);

    UNIT_CASE("delivery of a job follows status webhooks on its outbox rows");
    CHECK_INT(
        pl_store_outbox_status(s, "wamid.B4", PL_OUT_READ, 0, 7, lid, sizeof lid, &changed, &err),
        0);
    CHECK_STR(lid, "b-2-bbbbbb:4");
    CHECK_INT(changed, 1);
    buf[0] = '\0';
    CHECK_INT(pl_store_broadcast_delivery(s, "b-2-bbbbbb", collect_delivery, buf, &err), 0);
    CHECK_STR(buf, "read/-1=1;failed/131026=1;");

    UNIT_CASE("template counts cover every template message, per channel and state");
    buf[0] = '\0';
    CHECK_INT(pl_store_outbox_template_counts(s, collect_tpl, buf, &err), 0);
    CHECK_STR(buf, "shop/order_shipped/read=1;shop/order_shipped/failed=1;shop/promo/queued=1;");
    UNIT_CASE("per-job counts: jobs created since a time");
    buf[0] = '\0';
    CHECK_INT(pl_store_outbox_broadcast_counts(s, 0, collect_job_counts, buf, &err), 0);
    CHECK_STR(buf, "b-2-bbbbbb/shop/order_shipped/read=1;b-2-bbbbbb/shop/order_shipped/failed=1;");
    buf[0] = '\0';
    CHECK_INT(pl_store_outbox_broadcast_counts(s, 250, collect_job_counts, buf, &err), 0);
    CHECK_STR(buf, "");

    UNIT_CASE("business counts and the last time for a contact");
    CHECK_INT(pl_store_business_add(s, "shop", "7001", 100, &err), 0);
    CHECK_INT(pl_store_business_add(s, "shop", "7002", 200, &err), 0);
    CHECK_INT(pl_store_business_add(s, "other", "7003", 300, &err), 0);
    CHECK_INT(pl_store_business_count(s, "shop", 0, &count, &err), 0);
    CHECK_INT(count, 2);
    CHECK_INT(pl_store_business_count(s, "shop", 100, &count, &err), 0);
    CHECK_INT(count, 1);
    CHECK_INT(pl_store_business_at(s, "shop", "7002", &at, &err), 0);
    CHECK_INT(at, 200);
    CHECK_INT(pl_store_business_at(s, "shop", "7003", &at, &err), 0);
    CHECK_INT(at, 0);
    pl_store_close(s);
}

static void test_contact_opt_in(void)
{
    struct pl_store *s = open_new("optin.db");
    struct pl_error err;
    struct pl_contact c = {(char *)"Анна", 500, 0, NULL, 0, (char *)"{\"step\":2}"}, got;

    if (s == NULL)
        return;
    UNIT_CASE("opt-in touches only the opt-in columns of a known contact");
    CHECK_INT(pl_store_contact_put(s, "shop", "7001", &c, NULL, &err), 0);
    CHECK_INT(pl_store_contact_opt_in(s, "shop", "7001", "broadcast:b-1", 900, &err), 0);
    CHECK_INT(pl_store_contact_get(s, "shop", "7001", &got, &err), 0);
    CHECK_STR(got.name, "Анна");
    CHECK_INT(got.last_inbound, 500);
    CHECK_STR(got.session, "{\"step\":2}");
    CHECK_INT(got.opted_in, 1);
    CHECK_STR(got.opt_in_source, "broadcast:b-1");
    CHECK_INT(got.opt_in_at, 900);
    pl_contact_clear(&got);
    UNIT_CASE("an opt-in already recorded keeps its source and time");
    CHECK_INT(pl_store_contact_opt_in(s, "shop", "7001", "broadcast:b-2", 950, &err), 0);
    CHECK_INT(pl_store_contact_get(s, "shop", "7001", &got, &err), 0);
    CHECK_STR(got.opt_in_source, "broadcast:b-1");
    CHECK_INT(got.opt_in_at, 900);
    pl_contact_clear(&got);
    UNIT_CASE("an unknown contact is created with the opt-in alone");
    CHECK_INT(pl_store_contact_opt_in(s, "shop", "7002", "broadcast:b-1", 901, &err), 0);
    CHECK_INT(pl_store_contact_get(s, "shop", "7002", &got, &err), 0);
    CHECK_INT(got.opted_in, 1);
    CHECK_INT(got.last_inbound, 0);
    CHECK(got.name == NULL && got.session == NULL);
    pl_contact_clear(&got);

    /* what the engine's contact cache relies on: its own commits keep the version, another
     * connection's (a broadcast's opt-in) change it */
    UNIT_CASE("data_version: the same after this connection's commit, changed after another's");
    char path[256];
    struct pl_store *other = pl_store_open(tmp_path(path, sizeof path, "optin.db"), 0, &err);
    long long v0 = -1, v1 = -1, v2 = -1;
    CHECK(other != NULL);
    CHECK_INT(pl_store_data_version(s, &v0, &err), 0);
    c.last_inbound = 600;
    CHECK_INT(pl_store_contact_put(s, "shop", "7001", &c, NULL, &err), 0);
    CHECK_INT(pl_store_data_version(s, &v1, &err), 0);
    CHECK_INT(v1, v0);
    if (other != NULL)
        CHECK_INT(pl_store_contact_opt_in(other, "shop", "7003", "broadcast:b-1", 902, &err), 0);
    CHECK_INT(pl_store_data_version(s, &v2, &err), 0);
    CHECK(v2 != v1);

    /* the engine writes a turn's contacts without reading them back when the version it reads
     * inside its write transaction is still the one its turn began with */
    UNIT_CASE("data_version inside a write transaction sees another's commit since the last read");
    long long v3 = -1;
    c.opted_in = 0;
    CHECK_INT(pl_store_contact_put(s, "shop", "7004", &c, NULL, &err), 0);
    CHECK_INT(pl_store_data_version(s, &v2, &err), 0);
    if (other != NULL)
        CHECK_INT(pl_store_contact_opt_in(other, "shop", "7004", "broadcast:b-3", 903, &err), 0);
    CHECK_INT(pl_store_begin(s, &err), 0);
    CHECK_INT(pl_store_data_version(s, &v3, &err), 0);
    CHECK(v3 != v2);
    UNIT_CASE("a write without read-back still keeps the opt-in another connection recorded");
    c.last_inbound = 700;
    CHECK_INT(pl_store_contact_put(s, "shop", "7004", &c, NULL, &err), 0);
    CHECK_INT(pl_store_commit(s, &err), 0);
    CHECK_INT(pl_store_contact_get(s, "shop", "7004", &got, &err), 0);
    check_contact(&got, "Анна", 700, "broadcast:b-3", 903, "{\"step\":2}");
    pl_contact_clear(&got);
    pl_store_close(other);
    pl_store_close(s);
}

/* A file at schema version 2 (before broadcasts) gains the broadcast tables and indexes, and
 * the later steps. */
static void test_migrate_from_v2(void)
{
    char path[256];
    struct pl_error err;
    struct pl_store *s;

    UNIT_CASE("a version 2 state file is migrated to the current version, keeping its rows");
    s = open_new("v2.db");
    if (s == NULL)
        return;
    CHECK_INT(pl_store_outbox_add(s, "m1", "shop", "PN", "7001", "text", "{}", NULL, 1, NULL, &err),
              0);
    s = reopen_older(s, "v2.db",
                     "DROP TABLE broadcasts; DROP TABLE broadcast_recipients; "
                     "DROP INDEX outbox_broadcast; DROP INDEX outbox_template; "
                     "ALTER TABLE outbox DROP COLUMN phone_number_id; "
                     "PRAGMA user_version = 2",
                     path, sizeof path);
    if (s == NULL)
        return;
    CHECK_INT(raw_int(path, "PRAGMA user_version"), PL_STORE_SCHEMA_VERSION);
    CHECK_INT(raw_int(path, "SELECT count(*) FROM outbox WHERE local_id = 'm1'"), 1);
    CHECK_INT(raw_int(path, "SELECT count(*) FROM sqlite_master WHERE name IN ('broadcasts', "
                            "'broadcast_recipients', 'outbox_broadcast', 'outbox_template')"),
              4);
    pl_store_close(s);
}

/* Version 4 swaps the index of every inbox row by state for one of the pending rows, and drops
 * an outbox index nothing read. A version 3 file's pending events are still found. */
static void test_migrate_from_v3(void)
{
    char path[256];
    struct pl_error err;
    struct pl_store *s;
    struct pl_event ev;
    long long rowid = 0, pending = -1;

    UNIT_CASE("a version 3 state file is migrated to the current version, its pending events kept");
    s = open_new("v3.db");
    if (s == NULL)
        return;
    ev = make_event(PL_EVENT_MESSAGE, "wamid.V3", NULL, "79990000001", 100, NULL);
    CHECK_INT(pl_store_inbox_add(s, &ev, 1000, &rowid, &err), 0);
    pl_event_clear(&ev);
    s = reopen_older(s, "v3.db",
                     "DROP INDEX inbox_pending; CREATE INDEX inbox_state ON inbox(state); "
                     "CREATE INDEX outbox_channel_state ON outbox(channel, state); "
                     "ALTER TABLE outbox DROP COLUMN phone_number_id; "
                     "PRAGMA user_version = 3",
                     path, sizeof path);
    if (s == NULL)
        return;
    CHECK_INT(raw_int(path, "PRAGMA user_version"), PL_STORE_SCHEMA_VERSION);
    CHECK_INT(raw_int(path, "SELECT count(*) FROM sqlite_master WHERE name = 'inbox_pending'"), 1);
    CHECK_INT(raw_int(path, "SELECT count(*) FROM sqlite_master WHERE name IN ('inbox_state', "
                            "'outbox_channel_state')"),
              0);
    /* the query a restart runs (it reads the partial index) finds the event, then not */
    struct seen found = {0}, after = {0};
    CHECK_INT(pl_store_inbox_pending(s, on_pending, &found, &err), 0);
    CHECK_INT(found.n, 1);
    CHECK_INT(found.rowids[0], rowid);
    CHECK_STR(found.first.id, "wamid.V3");
    pl_event_clear(&found.first);
    CHECK_INT(pl_store_inbox_finish(s, rowid, PL_INBOX_DONE, NULL, NULL, &err), 0);
    CHECK_INT(pl_store_inbox_pending(s, on_pending, &after, &err), 0);
    CHECK_INT(after.n, 0);
    CHECK_INT(pl_store_inbox_counts(s, &pending, NULL, NULL, &err), 0);
    CHECK_INT(pending, 0);
    pl_store_close(s);
}

/* Version 5 adds the number each message goes out from. A version 4 file's queued messages are
 * read back with none (the channel's current number), new ones keep theirs. */
static void test_migrate_from_v4(void)
{
    char path[256];
    struct pl_error err;
    struct pl_store *s;
    struct queued_seen q = {0};

    UNIT_CASE(
        "a version 4 state file is migrated; its queued messages have no number of their own");
    s = open_new("v4.db");
    if (s == NULL)
        return;
    CHECK_INT(
        pl_store_outbox_add(s, "old", "shop", NULL, "7001", "text", "{}", NULL, 1, NULL, &err), 0);
    s = reopen_older(s, "v4.db",
                     "ALTER TABLE outbox DROP COLUMN phone_number_id; PRAGMA user_version = 4",
                     path, sizeof path);
    if (s == NULL)
        return;
    CHECK_INT(raw_int(path, "PRAGMA user_version"), PL_STORE_SCHEMA_VERSION);
    CHECK_INT(
        pl_store_outbox_add(s, "new", "shop", "111", "7001", "text", "{}", NULL, 2, NULL, &err), 0);
    CHECK_INT(pl_store_outbox_queued(s, 0, 0, on_queued, &q, NULL, &err), 0);
    CHECK_INT(q.n, 2);
    CHECK_STR(q.ids[0], "old");
    CHECK_STR(q.numbers[0], "(null)");
    CHECK_STR(q.numbers[1], "111");
    pl_store_close(s);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/parley-store-XXXXXX");
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    test_open();
    test_dedupe_keys();
    test_inbox_dedupe();
    test_inbox_pending();
    test_transactions();
    test_contacts();
    test_outbox_states();
    test_outbox_misc();
    test_triggers();
    test_business_and_settings();
    test_migrate_from_v1();
    test_broadcast_jobs();
    test_contact_opt_in();
    test_migrate_from_v2();
    test_migrate_from_v3();
    test_migrate_from_v4();
    test_threads();
    test_shared_connection();
    test_checkpoint_restart();
    test_checkpoint_busy();
    test_throughput();
    nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    printf("store: %zu table rows\n", sizeof key_cases / sizeof key_cases[0] +
                                          sizeof dup_cases / sizeof dup_cases[0] +
                                          sizeof out_cases / sizeof out_cases[0]);
    return unit_report("store");
}
