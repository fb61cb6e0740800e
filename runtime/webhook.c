/* webhook.c - Cloud API webhook notifications (POST /webhook bodies) parsed into events: messages,
 * button presses, statuses, template status and quality updates. Pure: bytes in, a batch out.
 * Only the envelope can fail the parse; anything malformed inside it is skipped and counted. */
#include "webhook.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

/* The state of one parse: the batch being filled and a sticky out-of-memory flag, so that the
 * many small builders below need not each return a code. */
struct parse {
    struct pl_event_batch *out;
    size_t cap;
    int oom;
};

/* What every event of one change shares. */
struct route {
    const char *phone_number_id; /* value.metadata.phone_number_id; NULL outside "messages" */
    const char *waba_id;         /* entry[].id */
    long long time;              /* entry[].time; 0 when absent */
};

/* A message handler's verdict on one messages[] item. */
enum item { ITEM_OK, ITEM_INVALID };

/* JSON types a field is copied as. W_REAL converts any number to a real (coordinates). */
enum want { W_STRING, W_BOOL, W_NUMBER, W_REAL, W_OBJECT, W_ARRAY };

/* ---- small helpers over untrusted JSON ---------------------------------------------------- */

/* obj[key] when obj is an object and the value a non-empty string with no NUL in it, else NULL.
 * These are ids, types and names, used as C strings: "wamid.A\u0000X" and "wamid.A\u0000Y"
 * would both read as "wamid.A", one dedupe key for two messages. */
static const char *get_str(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    if (!json_is_string(v) || json_string_length(v) == 0 ||
        memchr(json_string_value(v), '\0', json_string_length(v)) != NULL)
        return NULL;
    return json_string_value(v);
}

static char *dup(struct parse *p, const char *s)
{
    char *d;
    if (s == NULL)
        return NULL;
    d = strdup(s);
    if (d == NULL)
        p->oom = 1;
    return d;
}

/* An identifier that may arrive as a string or a number (message_template_id, entry.id), as a
 * malloc'd string; NULL when absent, empty or of another type. */
static char *id_string(struct parse *p, const json_t *v)
{
    char buf[32];

    if (json_is_string(v))
        return json_string_length(v) > 0 ? dup(p, json_string_value(v)) : NULL;
    if (json_is_integer(v)) {
        snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
        return dup(p, buf);
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d < -9e15 || d > 9e15 || d != (double)(long long)d)
            return NULL;
        snprintf(buf, sizeof buf, "%lld", (long long)d);
        return dup(p, buf);
    }
    return NULL;
}

/* Unix seconds from a string of digits ("1749416383") or a non-negative integer; 0 otherwise. */
static long long get_time(const json_t *v)
{
    const char *s;
    long long t = 0;
    size_t i, n;

    if (json_is_integer(v))
        return json_integer_value(v) > 0 ? (long long)json_integer_value(v) : 0;
    if (!json_is_string(v))
        return 0;
    s = json_string_value(v);
    n = json_string_length(v);
    if (n == 0 || n > 18)
        return 0;
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        t = t * 10 + (s[i] - '0');
    }
    return t;
}

static int has_type(const json_t *v, enum want w)
{
    switch (w) {
    case W_STRING:
        return json_is_string(v);
    case W_BOOL:
        return json_is_boolean(v);
    case W_NUMBER:
    case W_REAL:
        return json_is_number(v);
    case W_OBJECT:
        return json_is_object(v);
    case W_ARRAY:
        return json_is_array(v);
    }
    return 0;
}

/* dst[key] = val, taking the reference; a NULL val or a failed set means memory ran out. */
static void put(struct parse *p, json_t *dst, const char *key, json_t *val)
{
    if (val == NULL || json_object_set_new(dst, key, val) != 0)
        p->oom = 1;
}

/* dst[dkey] = a deep copy of src[skey] when that has the wanted type; nothing otherwise. */
static void copy_field(struct parse *p, json_t *dst, const char *dkey, const json_t *src,
                       const char *skey, enum want w)
{
    const json_t *v = json_object_get(src, skey);

    if (!has_type(v, w))
        return;
    put(p, dst, dkey, w == W_REAL ? json_real(json_number_value(v)) : json_deep_copy(v));
}

/* Copy each listed string field of src into dst under the same name. */
static void copy_strings(struct parse *p, json_t *dst, const json_t *src, const char *const *keys)
{
    for (; *keys != NULL; keys++)
        copy_field(p, dst, *keys, src, *keys, W_STRING);
}

/* Number of items an array-valued field claims: its size, 1 for any other present value. */
static size_t item_count(const json_t *v)
{
    if (v == NULL)
        return 0;
    return json_is_array(v) ? json_array_size(v) : 1;
}

/* Move ev into the batch (ev is left empty). On allocation failure ev is cleared. */
static void push(struct parse *p, struct pl_event *ev)
{
    struct pl_event_batch *b = p->out;

    if (p->oom || ev->data == NULL) {
        p->oom = 1;
        pl_event_clear(ev);
        return;
    }
    if (b->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8;
        struct pl_event *grown = realloc(b->events, cap * sizeof *grown);
        if (grown == NULL) {
            p->oom = 1;
            pl_event_clear(ev);
            return;
        }
        b->events = grown;
        p->cap = cap;
    }
    b->events[b->n++] = *ev;
    memset(ev, 0, sizeof *ev);
}

/* ---- messages[]: one handler per type ------------------------------------------------------ */

static void message_type(struct parse *p, struct pl_event *ev, const char *type)
{
    ev->kind = PL_EVENT_MESSAGE;
    put(p, ev->data, "type", json_string(type));
}

/* A type Parley does not model: type "unsupported", unsupported.type = what was received. */
static enum item unsupported_as(struct parse *p, struct pl_event *ev, const char *original,
                                const char *subtype)
{
    json_t *u = json_object();

    message_type(p, ev, "unsupported");
    if (u != NULL && original != NULL)
        put(p, u, "type", json_string(original));
    if (u != NULL && subtype != NULL)
        put(p, u, "subtype", json_string(subtype));
    put(p, ev->data, "unsupported", u);
    return ITEM_OK;
}

static enum item parse_text(struct parse *p, const json_t *msg, const char *type,
                            struct pl_event *ev)
{
    const json_t *body = json_object_get(json_object_get(msg, "text"), "body");

    if (!json_is_string(body))
        return ITEM_INVALID;
    message_type(p, ev, type);
    put(p, ev->data, "text", json_deep_copy(body));
    return ITEM_OK;
}

/* interactive.button_reply / list_reply: a press of a reply button or a list row. */
static enum item parse_interactive(struct parse *p, const json_t *msg, const char *type,
                                   struct pl_event *ev)
{
    const json_t *inter = json_object_get(msg, "interactive"), *reply;
    const char *sub = get_str(inter, "type"), *kind;

    if (sub != NULL && strcmp(sub, "button_reply") == 0)
        kind = "reply";
    else if (sub != NULL && strcmp(sub, "list_reply") == 0)
        kind = "list";
    else
        return unsupported_as(p, ev, type, sub);
    reply = json_object_get(inter, sub);
    if (get_str(reply, "id") == NULL)
        return ITEM_INVALID;
    ev->kind = PL_EVENT_PRESS;
    copy_field(p, ev->data, "id", reply, "id", W_STRING);
    copy_field(p, ev->data, "title", reply, "title", W_STRING);
    if (strcmp(kind, "list") == 0)
        copy_field(p, ev->data, "description", reply, "description", W_STRING);
    put(p, ev->data, "kind", json_string(kind));
    return ITEM_OK;
}

/* button: a quick reply on a template. id = payload (the label when no payload was set). */
static enum item parse_button(struct parse *p, const json_t *msg, const char *type,
                              struct pl_event *ev)
{
    const json_t *button = json_object_get(msg, "button");
    const char *id_key = get_str(button, "payload") != NULL ? "payload" : "text";

    if (get_str(button, id_key) == NULL)
        return unsupported_as(p, ev, type, NULL);
    ev->kind = PL_EVENT_PRESS;
    copy_field(p, ev->data, "id", button, id_key, W_STRING);
    copy_field(p, ev->data, "title", button, "text", W_STRING);
    put(p, ev->data, "kind", json_string("template"));
    return ITEM_OK;
}

/* image, document, audio, video, sticker: media = {...}, text = the caption. */
static enum item parse_media(struct parse *p, const json_t *msg, const char *type,
                             struct pl_event *ev)
{
    static const char *const fields[] = {"id",       "mime_type", "sha256", "caption",
                                         "filename", "url",       NULL};
    const json_t *m = json_object_get(msg, type);
    json_t *media;

    if (!json_is_object(m))
        return ITEM_INVALID;
    message_type(p, ev, type);
    media = json_object();
    if (media != NULL) {
        copy_strings(p, media, m, fields);
        if (strcmp(type, "audio") == 0)
            copy_field(p, media, "voice", m, "voice", W_BOOL);
        if (strcmp(type, "sticker") == 0)
            copy_field(p, media, "animated", m, "animated", W_BOOL);
    }
    put(p, ev->data, "media", media);
    copy_field(p, ev->data, "text", m, "caption", W_STRING);
    return ITEM_OK;
}

static enum item parse_location(struct parse *p, const json_t *msg, const char *type,
                                struct pl_event *ev)
{
    static const char *const fields[] = {"name", "address", "url", NULL};
    const json_t *l = json_object_get(msg, "location");
    json_t *loc;

    if (!json_is_number(json_object_get(l, "latitude")) ||
        !json_is_number(json_object_get(l, "longitude")))
        return ITEM_INVALID;
    message_type(p, ev, type);
    loc = json_object();
    if (loc != NULL) {
        copy_field(p, loc, "latitude", l, "latitude", W_REAL);
        copy_field(p, loc, "longitude", l, "longitude", W_REAL);
        copy_strings(p, loc, l, fields);
    }
    put(p, ev->data, "location", loc);
    return ITEM_OK;
}

/* contacts: the shared contact cards, as received. */
static enum item parse_contacts(struct parse *p, const json_t *msg, const char *type,
                                struct pl_event *ev)
{
    if (!json_is_array(json_object_get(msg, "contacts")))
        return ITEM_INVALID;
    message_type(p, ev, type);
    copy_field(p, ev->data, "contacts", msg, "contacts", W_ARRAY);
    return ITEM_OK;
}

/* unsupported: Meta could not deliver the content (edits, polls, …); errors[] says why. */
static enum item parse_unsupported(struct parse *p, const json_t *msg, const char *type,
                                   struct pl_event *ev)
{
    (void)type;
    return unsupported_as(p, ev, get_str(json_object_get(msg, "unsupported"), "type"), NULL);
}

static const struct message_parser {
    const char *type;
    enum item (*parse)(struct parse *p, const json_t *msg, const char *type, struct pl_event *ev);
} message_parsers[] = {
    {"text", parse_text},         {"interactive", parse_interactive}, {"button", parse_button},
    {"image", parse_media},       {"document", parse_media},          {"audio", parse_media},
    {"video", parse_media},       {"sticker", parse_media},           {"location", parse_location},
    {"contacts", parse_contacts}, {"unsupported", parse_unsupported},
};

/* contacts[].profile.name for the sender: matched on wa_id or user_id; when the change names a
 * single contact it is the sender (Meta's wa_id may be normalised differently from `from`). */
static const char *contact_name(const json_t *contacts, const char *from, const char *user_id)
{
    const json_t *c;
    size_t i;

    json_array_foreach(contacts, i, c)
    {
        const char *wa = get_str(c, "wa_id"), *uid = get_str(c, "user_id");
        if ((from != NULL && wa != NULL && strcmp(from, wa) == 0) ||
            (user_id != NULL && uid != NULL && strcmp(user_id, uid) == 0))
            return get_str(json_object_get(c, "profile"), "name");
    }
    if (json_array_size(contacts) == 1)
        return get_str(json_object_get(json_array_get(contacts, 0), "profile"), "name");
    return NULL;
}

/* data.context = {id, from, forwarded, frequently_forwarded} when the message has a context. */
static void put_context(struct parse *p, json_t *data, const json_t *msg)
{
    static const char *const fields[] = {"id", "from", NULL};
    const json_t *ctx = json_object_get(msg, "context");
    json_t *out;

    if (!json_is_object(ctx))
        return;
    out = json_object();
    if (out != NULL) {
        copy_strings(p, out, ctx, fields);
        copy_field(p, out, "forwarded", ctx, "forwarded", W_BOOL);
        copy_field(p, out, "frequently_forwarded", ctx, "frequently_forwarded", W_BOOL);
    }
    put(p, data, "context", out);
}

static int is_group_message(const json_t *msg)
{
    return json_object_get(msg, "group_id") != NULL ||
           (json_object_get(msg, "from") == NULL &&
            json_object_get(msg, "from_parent_user_id") != NULL);
}

static void parse_message(struct parse *p, const struct route *r, const json_t *contacts,
                          const json_t *msg)
{
    const char *wamid = get_str(msg, "id"), *type = get_str(msg, "type");
    const char *from = get_str(msg, "from"), *user_id = get_str(msg, "from_user_id");
    const struct message_parser *mp = NULL;
    struct pl_event ev = {0};
    size_t i;

    if (is_group_message(msg)) {
        p->out->groups_ignored++;
        return;
    }
    if (wamid == NULL || type == NULL || (from == NULL && user_id == NULL)) {
        p->out->items_invalid++;
        return;
    }
    ev.data = json_object();
    if (ev.data == NULL) {
        p->oom = 1;
        return;
    }
    for (i = 0; i < sizeof message_parsers / sizeof message_parsers[0]; i++)
        if (strcmp(message_parsers[i].type, type) == 0)
            mp = &message_parsers[i];
    if ((mp != NULL ? mp->parse(p, msg, type, &ev) : unsupported_as(p, &ev, type, NULL)) !=
        ITEM_OK) {
        p->out->items_invalid++;
        pl_event_clear(&ev);
        return;
    }
    ev.phone_number_id = dup(p, r->phone_number_id);
    ev.waba_id = dup(p, r->waba_id);
    ev.contact = dup(p, from != NULL ? from : user_id);
    ev.contact_name = dup(p, contact_name(contacts, from, user_id));
    ev.id = dup(p, wamid);
    ev.timestamp = get_time(json_object_get(msg, "timestamp"));
    put(p, ev.data, ev.kind == PL_EVENT_PRESS ? "message_id" : "id", json_string(wamid));
    put(p, ev.data, "timestamp", json_integer(ev.timestamp));
    put_context(p, ev.data, msg);
    if (ev.kind == PL_EVENT_MESSAGE)
        copy_field(p, ev.data, "errors", msg, "errors", W_ARRAY);
    push(p, &ev);
}

/* ---- statuses[] ----------------------------------------------------------------------------- */

/* data.error = {code, title, details} from errors[0]; details falls back to message. */
static void put_status_error(struct parse *p, json_t *data, const json_t *st)
{
    const json_t *e = json_array_get(json_object_get(st, "errors"), 0);
    json_t *out;

    if (!json_is_object(e))
        return;
    out = json_object();
    if (out != NULL) {
        if (json_is_integer(json_object_get(e, "code")))
            copy_field(p, out, "code", e, "code", W_NUMBER);
        copy_field(p, out, "title", e, "title", W_STRING);
        if (json_is_string(json_object_get(json_object_get(e, "error_data"), "details")))
            copy_field(p, out, "details", json_object_get(e, "error_data"), "details", W_STRING);
        else
            copy_field(p, out, "details", e, "message", W_STRING);
    }
    put(p, data, "error", out);
}

static void parse_status(struct parse *p, const struct route *r, const json_t *st)
{
    const char *wamid = get_str(st, "id"), *status = get_str(st, "status");
    const char *recipient = get_str(st, "recipient_id");
    const char *type = get_str(st, "recipient_type");
    struct pl_event ev = {0};

    if (type != NULL && strcmp(type, "group") == 0) {
        p->out->groups_ignored++;
        return;
    }
    if (wamid == NULL || status == NULL) {
        p->out->items_invalid++;
        return;
    }
    if (recipient == NULL)
        recipient = get_str(st, "recipient_user_id");
    ev.kind = PL_EVENT_STATUS;
    ev.data = json_object();
    ev.phone_number_id = dup(p, r->phone_number_id);
    ev.waba_id = dup(p, r->waba_id);
    ev.contact = dup(p, recipient);
    ev.id = dup(p, wamid);
    ev.status = dup(p, status);
    ev.timestamp = get_time(json_object_get(st, "timestamp"));
    if (ev.data != NULL) {
        put(p, ev.data, "wamid", json_string(wamid));
        put(p, ev.data, "status", json_string(status));
        put(p, ev.data, "timestamp", json_integer(ev.timestamp));
        if (recipient != NULL)
            put(p, ev.data, "recipient", json_string(recipient));
        put_status_error(p, ev.data, st);
        copy_field(p, ev.data, "conversation", st, "conversation", W_OBJECT);
        copy_field(p, ev.data, "pricing", st, "pricing", W_OBJECT);
        copy_field(p, ev.data, "biz_opaque_callback_data", st, "biz_opaque_callback_data",
                   W_STRING);
    }
    push(p, &ev);
}

/* ---- changes -------------------------------------------------------------------------------- */

/* field "messages": messages[] and statuses[] of one business phone number. */
static void parse_messages_change(struct parse *p, const struct route *entry, const json_t *value)
{
    const json_t *messages = json_object_get(value, "messages");
    const json_t *statuses = json_object_get(value, "statuses");
    const json_t *contacts = json_object_get(value, "contacts"), *item;
    struct route r = *entry;
    char *pnid;
    size_t i;

    pnid = id_string(p, json_object_get(json_object_get(value, "metadata"), "phone_number_id"));
    if (pnid == NULL) {
        /* Nothing can be routed without the phone number: every item is skipped. */
        p->out->items_invalid +=
            json_is_object(value) ? item_count(messages) + item_count(statuses) : 1;
        return;
    }
    r.phone_number_id = pnid;
    if (messages != NULL && !json_is_array(messages))
        p->out->items_invalid++;
    json_array_foreach(messages, i, item)
    {
        if (json_is_object(item))
            parse_message(p, &r, contacts, item);
        else
            p->out->items_invalid++;
    }
    if (statuses != NULL && !json_is_array(statuses))
        p->out->items_invalid++;
    json_array_foreach(statuses, i, item)
    {
        if (json_is_object(item))
            parse_status(p, &r, item);
        else
            p->out->items_invalid++;
    }
    free(pnid);
}

/* field "message_template_status_update". */
static void parse_template_change(struct parse *p, const struct route *r, const json_t *value)
{
    const char *event = get_str(value, "event");
    struct pl_event ev = {0};

    ev.id = id_string(p, json_object_get(value, "message_template_id"));
    if (event == NULL || ev.id == NULL) {
        p->out->items_invalid++;
        free(ev.id);
        return;
    }
    ev.kind = PL_EVENT_TEMPLATE_STATUS;
    ev.waba_id = dup(p, r->waba_id);
    ev.status = dup(p, event);
    ev.timestamp = r->time;
    ev.data = json_object();
    if (ev.data != NULL) {
        put(p, ev.data, "template_id", json_string(ev.id));
        copy_field(p, ev.data, "name", value, "message_template_name", W_STRING);
        copy_field(p, ev.data, "language", value, "message_template_language", W_STRING);
        copy_field(p, ev.data, "event", value, "event", W_STRING);
        copy_field(p, ev.data, "reason", value, "reason", W_STRING);
        copy_field(p, ev.data, "other_info", value, "other_info", W_OBJECT);
    }
    push(p, &ev);
}

/* field "phone_number_quality_update": the messaging-limit tier. */
static void parse_quality_change(struct parse *p, const struct route *r, const json_t *value)
{
    static const char *const fields[] = {"event", "current_limit", "old_limit",
                                         "display_phone_number", NULL};
    const char *event = get_str(value, "event");
    struct pl_event ev = {0};

    if (event == NULL) {
        p->out->items_invalid++;
        return;
    }
    ev.kind = PL_EVENT_QUALITY;
    ev.waba_id = dup(p, r->waba_id);
    ev.status = dup(p, event);
    ev.timestamp = r->time;
    ev.data = json_object();
    if (ev.data != NULL) {
        copy_strings(p, ev.data, value, fields);
        copy_field(p, ev.data, "max_daily_conversation_per_phone", value,
                   "max_daily_conversation_per_phone", W_NUMBER);
    }
    push(p, &ev);
}

static const struct change_parser {
    const char *field;
    void (*parse)(struct parse *p, const struct route *r, const json_t *value);
} change_parsers[] = {
    {"messages", parse_messages_change},
    {"message_template_status_update", parse_template_change},
    {"phone_number_quality_update", parse_quality_change},
};

static void parse_change(struct parse *p, const struct route *r, const json_t *change)
{
    const char *field = get_str(change, "field");
    size_t i;

    if (!json_is_object(change)) {
        p->out->items_invalid++;
        return;
    }
    for (i = 0; field != NULL && i < sizeof change_parsers / sizeof change_parsers[0]; i++) {
        if (strcmp(change_parsers[i].field, field) == 0) {
            change_parsers[i].parse(p, r, json_object_get(change, "value"));
            return;
        }
    }
    p->out->changes_ignored++;
}

static void parse_entry(struct parse *p, const json_t *entry)
{
    const json_t *changes = json_object_get(entry, "changes"), *change;
    struct route r = {0};
    char *waba;
    size_t i;

    if (!json_is_array(changes)) {
        p->out->items_invalid++;
        return;
    }
    waba = id_string(p, json_object_get(entry, "id"));
    r.waba_id = waba;
    r.time = get_time(json_object_get(entry, "time"));
    json_array_foreach(changes, i, change)
    {
        parse_change(p, &r, change);
    }
    free(waba);
}

/* ---- public --------------------------------------------------------------------------------- */

int pl_webhook_parse(const char *body, size_t len, struct pl_event_batch *out, struct pl_error *err)
{
    struct parse p = {out, 0, 0};
    const json_t *entries, *entry;
    struct pl_error jerr;
    json_t *root;
    size_t i;

    memset(out, 0, sizeof *out);
    if (body == NULL)
        return pl_error_set(err, "bad_request", "empty body");
    /* NUL escapes are allowed: a customer's text must not turn the whole batch into a 400
     * that Meta would retry for a week. */
    root = pl_json_parse_scratch(body, len, PL_JSON_ALLOW_NUL, &jerr);
    if (root == NULL && strcmp(jerr.code, "oom") == 0)
        return pl_error_set(err, "oom", "out of memory while parsing the webhook");
    if (root == NULL)
        return pl_error_set(err, "bad_request", "body is not JSON: %s", jerr.msg);
    if (!json_is_object(root)) {
        pl_json_scratch_release(root);
        return pl_error_set(err, "bad_request", "body is not a JSON object");
    }
    if (get_str(root, "object") == NULL ||
        strcmp(get_str(root, "object"), "whatsapp_business_account") != 0) {
        pl_json_scratch_release(root);
        return pl_error_set(err, "bad_request",
                            "not a WhatsApp notification: \"object\" is not "
                            "\"whatsapp_business_account\"");
    }
    entries = json_object_get(root, "entry");
    if (!json_is_array(entries)) {
        pl_json_scratch_release(root);
        return pl_error_set(err, "bad_request",
                            "not a WhatsApp notification: \"entry\" is not an array");
    }
    json_array_foreach(entries, i, entry)
    {
        parse_entry(&p, entry);
    }
    pl_json_scratch_release(root);
    if (p.oom) {
        pl_event_batch_free(out);
        return pl_error_set(err, "oom", "out of memory while parsing the webhook");
    }
    return 0;
}

const char *pl_event_kind_name(enum pl_event_kind kind)
{
    switch (kind) {
    case PL_EVENT_MESSAGE:
        return "message";
    case PL_EVENT_PRESS:
        return "press";
    case PL_EVENT_STATUS:
        return "status";
    case PL_EVENT_TEMPLATE_STATUS:
        return "template_status";
    case PL_EVENT_QUALITY:
        return "quality";
    case PL_EVENT_TRIGGER:
        return "trigger";
    }
    return "unknown";
}

void pl_event_clear(struct pl_event *ev)
{
    if (ev == NULL)
        return;
    free(ev->phone_number_id);
    free(ev->waba_id);
    free(ev->contact);
    free(ev->contact_name);
    free(ev->id);
    free(ev->status);
    json_decref(ev->data);
    memset(ev, 0, sizeof *ev);
}

void pl_event_batch_free(struct pl_event_batch *b)
{
    size_t i;

    if (b == NULL)
        return;
    for (i = 0; i < b->n; i++)
        pl_event_clear(&b->events[i]);
    free(b->events);
    memset(b, 0, sizeof *b);
}

static int copy_string(char **dst, const char *src)
{
    *dst = NULL;
    if (src == NULL)
        return 0;
    *dst = strdup(src);
    return *dst != NULL ? 0 : -1;
}

int pl_event_copy(struct pl_event *dst, const struct pl_event *src)
{
    int rc = 0;

    memset(dst, 0, sizeof *dst);
    dst->kind = src->kind;
    dst->timestamp = src->timestamp;
    rc |= copy_string(&dst->phone_number_id, src->phone_number_id);
    rc |= copy_string(&dst->waba_id, src->waba_id);
    rc |= copy_string(&dst->contact, src->contact);
    rc |= copy_string(&dst->contact_name, src->contact_name);
    rc |= copy_string(&dst->id, src->id);
    rc |= copy_string(&dst->status, src->status);
    dst->data = json_incref(src->data);
    if (rc != 0) {
        pl_event_clear(dst);
        return -1;
    }
    return 0;
}
