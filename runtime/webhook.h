/* webhook.h - Cloud API webhook notifications parsed into events. Pure: JSON bytes in, events
 * out; no I/O, no logging (what the caller should log is counted in the batch). */
#ifndef PL_WEBHOOK_H
#define PL_WEBHOOK_H

#include <jansson.h>
#include <stddef.h>

#include "error.h"

enum pl_event_kind {
    PL_EVENT_MESSAGE,         /* the customer wrote: text, media, location, contacts, … */
    PL_EVENT_PRESS,           /* the customer pressed a button or picked a list row */
    PL_EVENT_STATUS,          /* sent / delivered / read / failed / played for a message of ours */
    PL_EVENT_TEMPLATE_STATUS, /* message_template_status_update */
    PL_EVENT_QUALITY,         /* phone_number_quality_update (messaging-limit tier) */
    PL_EVENT_TRIGGER          /* not from a webhook: POST /channels/{id}/trigger */
};

/* The lower-case name of a kind: "message", "press", "status", "template_status", "quality",
 * "trigger". */
const char *pl_event_kind_name(enum pl_event_kind kind);

/* One event. Every string is owned by the event (freed by pl_event_free); NULL when absent. */
struct pl_event {
    enum pl_event_kind kind;
    char *phone_number_id; /* value.metadata.phone_number_id: routes to a channel */
    char *waba_id;         /* entry[].id */
    char *contact;         /* the customer: messages[].from, else from_user_id; statuses:
                              recipient_id, else recipient_user_id */
    char *contact_name;    /* contacts[].profile.name for that contact */
    char *id;              /* dedupe key: messages[].id; statuses[].id (the wamid);
                              template status: message_template_id */
    char *status;          /* statuses: sent/delivered/read/failed/played; template status:
                              the event (APPROVED, PAUSED, …); quality: the event */
    long long timestamp;   /* unix seconds; 0 when absent */
    /* The Lua-facing table, owned (one reference):
     *  message: { id, type, text, timestamp, context = {id, from, forwarded,
     *             frequently_forwarded}, media = {id, mime_type, sha256, caption, filename, url,
     *             voice}, location = {latitude, longitude, name, address, url},
     *             contacts = [...as received], unsupported = {type}, errors = [...] }
     *             type ∈ text image document audio video sticker location contacts unsupported;
     *             text is the body for text, the caption for media (absent otherwise).
     *             An unknown type (reaction, order, system, …) becomes "unsupported" with
     *             unsupported.type = the original type.
     *  press:   { id, title, kind = "reply"|"list"|"template", description (list only),
     *             context = {id, from}, timestamp, message_id (the inbound wamid) }
     *             template quick reply: id = button.payload, title = button.text.
     *  status:  { wamid, status, timestamp, recipient, error = {code, title, details} (failed),
     *             conversation/pricing copied when present }
     *  template_status: { template_id, name, language, event, reason, other_info? }
     *  quality: { event, current_limit, display_phone_number } */
    json_t *data;
};

struct pl_event_batch {
    struct pl_event *events;
    size_t n;
    size_t groups_ignored;  /* group messages skipped (the channel does not support groups) */
    size_t items_invalid;   /* messages/statuses skipped because a required field was missing */
    size_t changes_ignored; /* changes with a field Parley does not handle */
};

/* Parse a POST /webhook body. Returns 0 with out filled (possibly with zero events), or -1 when
 * the body is not JSON or not a WhatsApp notification (object != "whatsapp_business_account" or
 * entry not an array): the caller answers 400 with err->msg. Loops over every entry, change,
 * message and status. The caller frees out with pl_event_batch_free. */
int pl_webhook_parse(const char *body, size_t len, struct pl_event_batch *out,
                     struct pl_error *err);
/* Also -1, with err->code "oom" instead of "bad_request", when memory ran out: the body may be
 * fine, so the caller answers 5xx and Meta retries. On -1 out is empty (pl_event_batch_free on
 * it is harmless). */

void pl_event_batch_free(struct pl_event_batch *b);

/* Free the strings and data of one event (not the struct itself). */
void pl_event_clear(struct pl_event *ev);

/* Move-copy: a deep copy of src into dst (strings duplicated, data reference taken).
 * Returns 0, -1 on allocation failure. */
int pl_event_copy(struct pl_event *dst, const struct pl_event *src);

#endif
