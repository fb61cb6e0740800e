/* store.h - durable state on SQLite, the only code that speaks SQL. WAL mode, schema created and
 * migrated by version (PRAGMA user_version). Holds: the inbox (every inbound event, unique by
 * its provider id), contacts (name, last inbound time, opt-in, session), the outbox (every
 * message and its delivery state, with the provider's wamid), and trigger answers (idempotency).
 *
 * A struct pl_store is one SQLite connection: use it from one thread at a time. Parley opens one
 * for the ingest thread and one for the engine thread on the same file. Every function returns
 * 0 on success, -1 with err (code "store") on failure, unless it says otherwise. */
#ifndef PL_STORE_H
#define PL_STORE_H

#include <stddef.h>

#include "error.h"
#include "webhook.h"

#define PL_STORE_SCHEMA_VERSION 2

struct pl_store;

/* Open (creating the file and its folder, and migrating the schema) the database at path.
 * sync_full: 1 = synchronous=FULL (a commit survives power loss), 0 = NORMAL (a commit survives
 * a crash of the process, kill -9 included; the default). Returns NULL with err. */
struct pl_store *pl_store_open(const char *path, int sync_full, struct pl_error *err);

void pl_store_close(struct pl_store *s);

/* Transactions (BEGIN IMMEDIATE ... COMMIT). Rollback never fails. */
int pl_store_begin(struct pl_store *s, struct pl_error *err);
int pl_store_commit(struct pl_store *s, struct pl_error *err);
void pl_store_rollback(struct pl_store *s);

/* ---- inbox ---- */

enum pl_inbox_state { PL_INBOX_PENDING = 0, PL_INBOX_DONE = 1, PL_INBOX_FAILED = 2 };

/* The dedupe key of an event: "m:<wamid>" for messages and presses, "s:<wamid>:<status>" for
 * statuses, "t:<template id>:<status>:<timestamp>" for template status updates,
 * "q:<waba>:<event>:<timestamp>" for quality updates. Writes into buf; returns buf. */
const char *pl_store_dedupe_key(const struct pl_event *ev, char *buf, size_t size);

/* Insert the event (all of it, data as JSON, so it can be run again after a crash) unless an
 * event with the same dedupe key exists. *rowid is the new row's id, or 0 for a duplicate. */
int pl_store_inbox_add(struct pl_store *s, const struct pl_event *ev, long long received_at,
                       long long *rowid, struct pl_error *err);

/* Mark an inbox row handled (DONE) or failed (FAILED, with the error code and message). */
int pl_store_inbox_finish(struct pl_store *s, long long rowid, enum pl_inbox_state state,
                          const char *code, const char *message, struct pl_error *err);

/* Call fn for every PENDING row in arrival order (rowid), with the event rebuilt (owned by the
 * store; fn copies what it keeps). fn returns 0 to go on, -1 to stop (then this returns -1). */
int pl_store_inbox_pending(struct pl_store *s,
                           int (*fn)(void *ud, long long rowid, const struct pl_event *ev),
                           void *ud, struct pl_error *err);

/* Counts by state (for /healthz and tests). */
int pl_store_inbox_counts(struct pl_store *s, long long *pending, long long *done,
                          long long *failed, struct pl_error *err);

/* ---- contacts and sessions ---- */

struct pl_contact {
    char *name;             /* may be NULL */
    long long last_inbound; /* unix seconds; 0 = never wrote */
    int opted_in;
    char *opt_in_source;    /* may be NULL */
    long long opt_in_at;
    char *session;          /* JSON; NULL = no session yet */
};

/* Read (channel, contact) into c (zeroed first; all zeros/NULL when unknown). The caller frees
 * with pl_contact_clear. */
int pl_store_contact_get(struct pl_store *s, const char *channel, const char *contact,
                         struct pl_contact *c, struct pl_error *err);

/* Insert or replace (channel, contact) with c. */
int pl_store_contact_put(struct pl_store *s, const char *channel, const char *contact,
                         const struct pl_contact *c, struct pl_error *err);

void pl_contact_clear(struct pl_contact *c);

/* ---- outbox ---- */

/* Message states, in order; a later state never goes back to an earlier one, except that
 * failed is final from any state. */
enum pl_out_state {
    PL_OUT_QUEUED = 0,
    PL_OUT_SENT = 1, /* the provider accepted it (we have its wamid) */
    PL_OUT_DELIVERED = 2,
    PL_OUT_READ = 3,
    PL_OUT_FAILED = 4
};

const char *pl_out_state_name(enum pl_out_state st);

/* Add a queued message. local_id is unique. template_name may be NULL; broadcast may be NULL
 * (the broadcast job that sent it). */
int pl_store_outbox_add(struct pl_store *s, const char *local_id, const char *channel,
                        const char *contact, const char *kind, const char *body,
                        const char *template_name, long long created_at, struct pl_error *err);

/* The provider accepted local_id and called it wamid. */
int pl_store_outbox_sent(struct pl_store *s, const char *local_id, const char *wamid,
                         long long at, struct pl_error *err);

/* local_id failed for good with the provider's code (or -1), title and details. */
int pl_store_outbox_failed(struct pl_store *s, const char *local_id, long code,
                           const char *title, const char *details, long long at,
                           struct pl_error *err);

/* A status webhook for wamid: move the row forward to st (sent/delivered/read/failed; never
 * backwards: a "delivered" after "read" changes nothing). Copies the row's local id into
 * local_id (size bytes; "" when no row has this wamid). *changed is 1 when the state moved. */
int pl_store_outbox_status(struct pl_store *s, const char *wamid, enum pl_out_state st,
                           long code, long long at, char *local_id, size_t size, int *changed,
                           struct pl_error *err);

/* Call fn for every QUEUED message in creation order (recovery after a restart). */
int pl_store_outbox_queued(struct pl_store *s,
                           int (*fn)(void *ud, const char *local_id, const char *channel,
                                     const char *contact, const char *kind, const char *body),
                           void *ud, struct pl_error *err);

/* Counts per state for a channel (NULL: all channels); counts has PL_OUT_FAILED + 1 slots. */
int pl_store_outbox_counts(struct pl_store *s, const char *channel, long long *counts,
                           struct pl_error *err);

/* ---- trigger answers ---- */

/* The stored answer for (channel, id) into *answer (malloc'd), or *answer = NULL when none. */
int pl_store_trigger_get(struct pl_store *s, const char *channel, const char *id, char **answer,
                         struct pl_error *err);

/* Store the answer for (channel, id) (first one wins). */
int pl_store_trigger_put(struct pl_store *s, const char *channel, const char *id,
                         const char *answer, long long at, struct pl_error *err);

/* ---- business-initiated recipients (the daily limit) ---- */

/* Record a business-initiated message to (channel, contact) at `at` (keeps the latest time). */
int pl_store_business_add(struct pl_store *s, const char *channel, const char *contact,
                          long long at, struct pl_error *err);

/* Call fn for every contact of channel with a business-initiated message after `since`. */
int pl_store_business_recent(struct pl_store *s, const char *channel, long long since,
                             int (*fn)(void *ud, const char *contact, long long at), void *ud,
                             struct pl_error *err);

/* Forget recipients whose last business-initiated message is at or before `before`. */
int pl_store_business_prune(struct pl_store *s, long long before, struct pl_error *err);

/* ---- settings: small durable values (template statuses, messaging-limit tiers) ---- */

int pl_store_setting_put(struct pl_store *s, const char *key, const char *value, long long at,
                         struct pl_error *err);

/* *value is malloc'd, or NULL when the key is absent; *at (may be NULL) its time. */
int pl_store_setting_get(struct pl_store *s, const char *key, char **value, long long *at,
                         struct pl_error *err);

/* Call fn for every key that starts with prefix, in key order. */
int pl_store_settings_prefix(struct pl_store *s, const char *prefix,
                             int (*fn)(void *ud, const char *key, const char *value,
                                       long long at),
                             void *ud, struct pl_error *err);

#endif
