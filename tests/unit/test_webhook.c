/* test_webhook.c - Cloud API webhook bodies (one JSON file each in tests/unit/fixtures/) parsed
 * into events: one table of per-fixture counts, one of per-event expectations, bodies that must be
 * refused, and fuzz loops (every truncation, every field replaced by every JSON type) that must
 * never crash. Run from the repository root. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "failing_alloc.h"
#include "read_file.h"
#include "unit.h"
#include "webhook.h"

#define FIXTURES "tests/unit/fixtures/"
#define PN       "106540352242922"
#define WABA     "102290129340398"
#define CUST     "16505551234"
#define BSUID    "US.13491208655302741918"

#define WAMID_A     "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="
#define WAMID_B     "wamid.HBgLMTY0NjcwNDM1OTUVAgASGBQzQThBREYwNzc2RDc2QjA1QTIwMgA="
#define WAMID_B_CTX "wamid.HBgLMTY0NjcwNDM1OTUVAgARGBJBM0Y4RUU0RUNFQkFDMjYzQUMA"
#define WAMID_C     "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA="
#define WAMID_D     "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI0QUQ2MjA4NEYyRkExNjMyREUA"
#define WAMID_TPL   "wamid.HBgLMTQxMjU1NTA4MjkVAgASGBQzQUNCNjk5RDUwNUZGMUZEM0VBRAA="
#define HEALTHY     "This message was not delivered to maintain healthy ecosystem engagement."

/* ---- what each fixture yields in total ---------------------------------------------------- */

static const struct fixture_case {
    const char *file;
    size_t events, groups_ignored, items_invalid, changes_ignored;
} fixture_cases[] = {
    {"meta_text.json", 1, 0, 0, 0},
    {"meta_button_reply.json", 1, 0, 0, 0},
    {"meta_status_sent.json", 1, 0, 0, 0},
    {"meta_status_failed.json", 1, 0, 0, 0},
    {"list_reply.json", 1, 0, 0, 0},
    {"template_button.json", 3, 0, 0, 0},
    {"image.json", 1, 0, 0, 0},
    {"document.json", 1, 0, 0, 0},
    {"audio_voice.json", 1, 0, 0, 0},
    {"video.json", 1, 0, 0, 0},
    {"sticker.json", 1, 0, 0, 0},
    {"location.json", 1, 0, 0, 0},
    {"contacts.json", 1, 0, 0, 0},
    {"unsupported.json", 1, 0, 0, 0},
    {"unknown_types.json", 5, 0, 0, 0},
    {"bsuid.json", 2, 0, 0, 0},
    {"groups.json", 1, 3, 0, 0},
    {"no_id.json", 1, 0, 1, 0},
    {"batch.json", 8, 0, 0, 0},
    {"template_status.json", 2, 0, 0, 1},
    {"quality.json", 1, 0, 0, 0},
    {"ignored_fields.json", 0, 0, 0, 3},
    {"wrong_types.json", 6, 0, 23, 1},
};

/* ---- what each event holds ------------------------------------------------------------------
 * fields: "path=expect" on event->data. path is dotted, array indices as numbers
 * ("errors.0.code"). expect: "s:text" string, "i:42" integer, "r:1.5" real, "b:true"/"b:false",
 * "a:N" array of N, "o" object, "-" absent. */

#define MAX_FIELDS 12

static const struct event_case {
    const char *file;
    size_t index;
    const char *kind, *contact, *contact_name, *id, *status;
    long long timestamp;
    const char *phone_number_id, *waba_id;
    const char *fields[MAX_FIELDS];
} event_cases[] = {
    /* §1.5 (a): text */
    {"meta_text.json",
     0,
     "message",
     CUST,
     "Sheena Nelson",
     WAMID_A,
     NULL,
     1749416383,
     PN,
     WABA,
     {"type=s:text", "text=s:Does it come in another color?", "id=s:" WAMID_A,
      "timestamp=i:1749416383", "context=-", "media=-", "errors=-"}},
    /* §1.5 (b): interactive button_reply */
    {"meta_button_reply.json",
     0,
     "press",
     CUST,
     "Pablo Morales",
     WAMID_B,
     NULL,
     1714510003,
     PN,
     WABA,
     {"id=s:change-button", "title=s:Change", "kind=s:reply", "message_id=s:" WAMID_B,
      "context.id=s:" WAMID_B_CTX, "context.from=s:15550783881", "description=-",
      "timestamp=i:1714510003", "type=-"}},
    /* §1.5 (c): status sent, with conversation and pricing */
    {"meta_status_sent.json",
     0,
     "status",
     CUST,
     NULL,
     WAMID_C,
     "sent",
     1750030073,
     PN,
     WABA,
     {"wamid=s:" WAMID_C, "status=s:sent", "timestamp=i:1750030073", "recipient=s:" CUST, "error=-",
      "conversation.id=s:72b14d6bd5407799e66f64d1b338e567", "conversation.origin.type=s:marketing",
      "pricing.category=s:marketing", "pricing.billable=b:true", "pricing.pricing_model=s:PMP"}},
    /* §1.5 (d): status failed, 131049 */
    {"meta_status_failed.json",
     0,
     "status",
     CUST,
     NULL,
     WAMID_D,
     "failed",
     1751142888,
     PN,
     WABA,
     {"status=s:failed", "error.code=i:131049", "error.title=s:" HEALTHY,
      "error.details=s:In order to maintain a healthy ecosystem engagement, the message failed "
      "to be delivered.",
      "conversation=-", "pricing=-", "timestamp=i:1751142888"}},
    {"list_reply.json",
     0,
     "press",
     "79991234567",
     "Анна",
     "wamid.LIST1",
     NULL,
     1750000001,
     PN,
     WABA,
     {"id=s:priority_express", "title=s:Priority Mail Express", "description=s:Next Day to 2 Days",
      "kind=s:list", "context.id=s:wamid.LISTMSG", "message_id=s:wamid.LIST1"}},
    /* template quick reply: id = payload, title = label; no payload: id = label */
    {"template_button.json",
     0,
     "press",
     CUST,
     "Sheena Nelson",
     "wamid.BTN1",
     NULL,
     1750091045,
     PN,
     WABA,
     {"id=s:STOP_PROMO", "title=s:Unsubscribe", "kind=s:template", "context.id=s:" WAMID_TPL,
      "context.from=s:15550783881", "message_id=s:wamid.BTN1"}},
    {"template_button.json",
     1,
     "press",
     CUST,
     "Sheena Nelson",
     "wamid.BTN2",
     NULL,
     1750091046,
     PN,
     WABA,
     {"id=s:Yes", "title=s:Yes", "kind=s:template", "context=-"}},
    {"template_button.json",
     2,
     "message",
     CUST,
     "Sheena Nelson",
     "wamid.BTN3",
     NULL,
     1750091047,
     PN,
     WABA,
     {"type=s:unsupported", "unsupported.type=s:button", "id=s:wamid.BTN3"}},
    {"image.json",
     0,
     "message",
     CUST,
     "Sheena Nelson",
     "wamid.IMG1",
     NULL,
     1750000010,
     PN,
     WABA,
     {"type=s:image", "text=s:Taj Mahal", "media.id=s:1003383421387256",
      "media.mime_type=s:image/jpeg",
      "media.sha256=s:SfInY0gGKTsJlUWbwxC1k+FAD0FZHvzwfpvO0zX0GUI=", "media.caption=s:Taj Mahal",
      "media.url=s:https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=133",
      "media.voice=-", "media.filename=-"}},
    {"document.json",
     0,
     "message",
     CUST,
     "Sheena Nelson",
     "wamid.DOC1",
     NULL,
     1750000011,
     PN,
     WABA,
     {"type=s:document", "text=s:my receipt", "media.filename=s:receipt.pdf",
      "media.mime_type=s:application/pdf", "media.id=s:622684793477189",
      "media.sha256=s:V5OPpLD/gEG6Xjg0MbmQDLFgcKsL+j5LfY4ny/pZ4MY="}},
    {"audio_voice.json",
     0,
     "message",
     CUST,
     "Sheena Nelson",
     "wamid.AUD1",
     NULL,
     1750000012,
     PN,
     WABA,
     {"type=s:audio", "text=-", "media.voice=b:true", "media.mime_type=s:audio/ogg; codecs=opus",
      "media.id=s:1908647269898587"}},
    {"video.json",
     0,
     "message",
     CUST,
     "Sheena Nelson",
     "wamid.VID1",
     NULL,
     1750000013,
     PN,
     WABA,
     {"type=s:video", "text=-", "media.id=s:1234567890123", "media.mime_type=s:video/mp4",
      "media.caption=-", "media.url=-"}},
    {"sticker.json",
     0,
     "message",
     CUST,
     "Sheena Nelson",
     "wamid.STK1",
     NULL,
     1750000014,
     PN,
     WABA,
     {"type=s:sticker", "text=-", "media.animated=b:false", "media.mime_type=s:image/webp",
      "media.id=s:998877665544"}},
    {"location.json",
     0,
     "message",
     CUST,
     "Sheena Nelson",
     "wamid.LOC1",
     NULL,
     1750000015,
     PN,
     WABA,
     {"type=s:location", "location.latitude=r:37.44221496582",
      "location.longitude=r:-122.16165924072", "location.name=s:Philz Coffee",
      "location.address=s:101 Forest Ave, Palo Alto, CA 94301",
      "location.url=s:https://philzcoffee.com/", "text=-", "media=-"}},
    {"contacts.json",
     0,
     "message",
     CUST,
     "Sheena Nelson",
     "wamid.CON1",
     NULL,
     1750000016,
     PN,
     WABA,
     {"type=s:contacts", "contacts=a:2", "contacts.0.name.formatted_name=s:John Smith",
      "contacts.0.phones.0.wa_id=s:" CUST, "contacts.1.emails.0.email=s:jane@example.com",
      "text=-"}},
    {"unsupported.json",
     0,
     "message",
     CUST,
     "Sheena Nelson",
     "wamid.UNS1",
     NULL,
     1750090702,
     PN,
     WABA,
     {"type=s:unsupported", "unsupported.type=s:edit", "errors=a:1", "errors.0.code=i:131051",
      "errors.0.error_data.details=s:Message type is currently not supported.", "text=-"}},
    /* unknown types become "unsupported" carrying the original type */
    {"unknown_types.json",
     0,
     "message",
     CUST,
     "Sheena Nelson",
     "wamid.REA1",
     NULL,
     1750000020,
     PN,
     WABA,
     {"type=s:unsupported", "unsupported.type=s:reaction", "text=-", "id=s:wamid.REA1"}},
    {"unknown_types.json",
     1,
     "message",
     CUST,
     "Sheena Nelson",
     "wamid.ORD1",
     NULL,
     1750000021,
     PN,
     WABA,
     {"type=s:unsupported", "unsupported.type=s:order"}},
    {"unknown_types.json",
     2,
     "message",
     CUST,
     "Sheena Nelson",
     "wamid.SYS1",
     NULL,
     1750000022,
     PN,
     WABA,
     {"type=s:unsupported", "unsupported.type=s:system", "text=-"}},
    {"unknown_types.json",
     3,
     "message",
     CUST,
     "Sheena Nelson",
     "wamid.NFM1",
     NULL,
     1750000023,
     PN,
     WABA,
     {"type=s:unsupported", "unsupported.type=s:interactive", "unsupported.subtype=s:nfm_reply"}},
    {"unknown_types.json",
     4,
     "message",
     CUST,
     "Sheena Nelson",
     "wamid.INT1",
     NULL,
     1750000024,
     PN,
     WABA,
     {"type=s:unsupported", "unsupported.type=s:interactive", "unsupported.subtype=-"}},
    /* usernames: from_user_id instead of from, contacts[].user_id for the name */
    {"bsuid.json",
     0,
     "message",
     BSUID,
     "Kim",
     "wamid.BSU1",
     NULL,
     1750000030,
     PN,
     WABA,
     {"type=s:text", "text=s:hi from a username"}},
    {"bsuid.json",
     1,
     "status",
     BSUID,
     NULL,
     "wamid.OUT1",
     "delivered",
     1750000031,
     PN,
     WABA,
     {"recipient=s:" BSUID, "status=s:delivered", "error=-"}},
    {"groups.json",
     0,
     "message",
     CUST,
     "Sheena Nelson",
     "wamid.ONE1",
     NULL,
     1750000041,
     PN,
     WABA,
     {"text=s:direct"}},
    {"no_id.json",
     0,
     "message",
     CUST,
     "Sheena Nelson",
     "wamid.OK1",
     NULL,
     1750000051,
     PN,
     WABA,
     {"text=s:with id"}},
    /* 2 entries x 2 changes, messages and statuses, in payload order */
    {"batch.json",
     0,
     "message",
     "111",
     "Xavier",
     "wamid.B1",
     NULL,
     1750000101,
     PN,
     "WABA_A",
     {"text=s:first"}},
    {"batch.json",
     1,
     "message",
     "222",
     "Yuki",
     "wamid.B2",
     NULL,
     1750000102,
     PN,
     "WABA_A",
     {"type=s:image", "media.id=s:555", "text=-"}},
    {"batch.json",
     2,
     "message",
     "111",
     "Xavier",
     "wamid.B3",
     NULL,
     1750000103,
     PN,
     "WABA_A",
     {"text=s:third"}},
    {"batch.json",
     3,
     "status",
     "111",
     NULL,
     "wamid.S1",
     "delivered",
     1750000104,
     PN,
     "WABA_A",
     {"status=s:delivered"}},
    {"batch.json",
     4,
     "status",
     "222",
     NULL,
     "wamid.S2",
     "read",
     1750000105,
     PN,
     "WABA_A",
     {"status=s:read"}},
    {"batch.json",
     5,
     "status",
     "333",
     NULL,
     "wamid.S3",
     "sent",
     1750000106,
     "200000000000002",
     "WABA_B",
     {"status=s:sent"}},
    {"batch.json",
     6,
     "press",
     "333",
     "Zoë",
     "wamid.B4",
     NULL,
     1750000107,
     "200000000000002",
     "WABA_B",
     {"id=s:yes", "title=s:Да", "kind=s:reply"}},
    {"batch.json",
     7,
     "message",
     "333",
     "Zoë",
     "wamid.B5",
     NULL,
     1750000108,
     "200000000000002",
     "WABA_B",
     {"text=s:last"}},
    /* message_template_status_update: a numeric template id becomes a string */
    {"template_status.json",
     0,
     "template_status",
     NULL,
     NULL,
     "1234567890123456",
     "PAUSED",
     1751234567,
     NULL,
     WABA,
     {"template_id=s:1234567890123456", "name=s:order_update", "language=s:en-US", "event=s:PAUSED",
      "reason=s:NONE", "other_info.title=s:FIRST_PAUSE"}},
    {"template_status.json",
     1,
     "template_status",
     NULL,
     NULL,
     "987654321",
     "APPROVED",
     1751234567,
     NULL,
     WABA,
     {"template_id=s:987654321", "name=s:welcome", "language=s:ru", "event=s:APPROVED",
      "other_info=-"}},
    {"quality.json",
     0,
     "quality",
     NULL,
     NULL,
     NULL,
     "UPGRADE",
     1751234600,
     NULL,
     WABA,
     {"event=s:UPGRADE", "current_limit=s:TIER_2K", "old_limit=s:TIER_250",
      "display_phone_number=s:15550783881", "max_daily_conversation_per_phone=i:2000"}},
    /* wrong types: what survives, and how */
    {"wrong_types.json",
     0,
     "message",
     CUST,
     NULL,
     "wamid.TSOBJ",
     NULL,
     0,
     PN,
     WABA,
     {"timestamp=i:0", "text=s:timestamp is an object"}},
    {"wrong_types.json",
     1,
     "message",
     CUST,
     NULL,
     "wamid.IMGBAD",
     NULL,
     1750000000,
     PN,
     WABA,
     {"type=s:image", "media.id=s:777", "media.caption=-", "media.mime_type=-", "text=-"}},
    {"wrong_types.json",
     2,
     "message",
     CUST,
     NULL,
     "wamid.CTXSTR",
     NULL,
     1750000000,
     PN,
     WABA,
     {"context=-", "text=s:context is a string"}},
    {"wrong_types.json",
     3,
     "status",
     "1",
     NULL,
     "wamid.SBADTYPES",
     "sent",
     0,
     PN,
     WABA,
     {"error=-", "conversation=-", "pricing=-", "timestamp=i:0"}},
    {"wrong_types.json",
     4,
     "status",
     "1",
     NULL,
     "wamid.SERRSTR",
     "failed",
     1750000001,
     PN,
     WABA,
     {"error=o", "error.code=-", "error.title=-", "error.details=s:fallback message"}},
    {"wrong_types.json",
     5,
     "message",
     CUST,
     NULL,
     "wamid.NUMIDS",
     NULL,
     1750000000,
     PN,
     "123",
     {"text=s:numeric ids"}},
};

/* ---- helpers -------------------------------------------------------------------------------- */

static int parse_fixture(const char *file, struct pl_event_batch *b)
{
    char path[256];
    struct pl_error err = {{0}, {0}};
    size_t len = 0;
    char *body;
    int rc;

    snprintf(path, sizeof path, FIXTURES "%s", file);
    body = read_file(path, &len);
    if (body == NULL) {
        UNIT_FAIL("cannot read %s (run from the repository root)", path);
        memset(b, 0, sizeof *b);
        return -1;
    }
    rc = pl_webhook_parse(body, len, b, &err);
    if (rc != 0)
        UNIT_FAIL("%s: parse failed: %s: %s", file, err.code, err.msg);
    free(body);
    return rc;
}

/* data at a dotted path ("errors.0.code"), or NULL. */
static json_t *data_at(json_t *data, const char *path)
{
    char buf[128], *seg, *save = NULL;
    json_t *v = data;

    snprintf(buf, sizeof buf, "%s", path);
    for (seg = strtok_r(buf, ".", &save); seg != NULL && v != NULL;
         seg = strtok_r(NULL, ".", &save)) {
        if (json_is_array(v))
            v = json_array_get(v, strtoul(seg, NULL, 10));
        else
            v = json_object_get(v, seg);
    }
    return v;
}

/* Check one "path=expect" against data. */
static void check_field(json_t *data, const char *spec)
{
    char path[128];
    const char *eq = strchr(spec, '='), *want;
    size_t plen;
    json_t *v;

    if (eq == NULL || (size_t)(eq - spec) >= sizeof path) {
        UNIT_FAIL("bad field spec %s", spec);
        return;
    }
    plen = (size_t)(eq - spec);
    memcpy(path, spec, plen);
    path[plen] = '\0';
    want = eq + 1;
    v = data_at(data, path);
    if (strcmp(want, "-") == 0) {
        if (v == NULL)
            unit_passed++;
        else
            UNIT_FAIL("data.%s should be absent", path);
    } else if (strcmp(want, "o") == 0) {
        if (json_is_object(v))
            unit_passed++;
        else
            UNIT_FAIL("data.%s should be an object", path);
    } else if (v == NULL) {
        UNIT_FAIL("data.%s is absent, want %s", path, want);
    } else if (strncmp(want, "s:", 2) == 0) {
        if (!json_is_string(v))
            UNIT_FAIL("data.%s is not a string", path);
        else
            CHECK_STR(json_string_value(v), want + 2);
    } else if (strncmp(want, "i:", 2) == 0) {
        if (!json_is_integer(v))
            UNIT_FAIL("data.%s is not an integer", path);
        else
            CHECK_INT(json_integer_value(v), strtoll(want + 2, NULL, 10));
    } else if (strncmp(want, "r:", 2) == 0) {
        if (!json_is_real(v) || json_real_value(v) != strtod(want + 2, NULL))
            UNIT_FAIL("data.%s: want real %s", path, want + 2);
        else
            unit_passed++;
    } else if (strncmp(want, "b:", 2) == 0) {
        if (!json_is_boolean(v) || json_is_true(v) != (strcmp(want + 2, "true") == 0))
            UNIT_FAIL("data.%s: want boolean %s", path, want + 2);
        else
            unit_passed++;
    } else if (strncmp(want, "a:", 2) == 0) {
        if (!json_is_array(v))
            UNIT_FAIL("data.%s is not an array", path);
        else
            CHECK_INT(json_array_size(v), strtoll(want + 2, NULL, 10));
    } else {
        UNIT_FAIL("bad expectation %s", spec);
    }
}

/* What must hold for every event of every batch, whatever the input. */
static int event_sane(const struct pl_event *ev)
{
    if (!json_is_object(ev->data))
        return 0;
    switch (ev->kind) {
    case PL_EVENT_MESSAGE:
    case PL_EVENT_PRESS:
        return ev->id != NULL && ev->contact != NULL && ev->phone_number_id != NULL &&
               (ev->kind == PL_EVENT_PRESS ? json_is_string(json_object_get(ev->data, "id"))
                                           : json_is_string(json_object_get(ev->data, "type")));
    case PL_EVENT_STATUS:
        return ev->id != NULL && ev->status != NULL && ev->phone_number_id != NULL;
    case PL_EVENT_TEMPLATE_STATUS:
        return ev->id != NULL && ev->status != NULL;
    case PL_EVENT_QUALITY:
        return ev->status != NULL;
    case PL_EVENT_TRIGGER:
        return 0;
    }
    return 0;
}

/* ---- cases ---------------------------------------------------------------------------------- */

static void test_fixture_counts(void)
{
    size_t i, j;

    for (i = 0; i < sizeof fixture_cases / sizeof fixture_cases[0]; i++) {
        const struct fixture_case *c = &fixture_cases[i];
        struct pl_event_batch b;
        UNIT_CASE(c->file);
        if (parse_fixture(c->file, &b) != 0)
            continue;
        CHECK_INT(b.n, c->events);
        CHECK_INT(b.groups_ignored, c->groups_ignored);
        CHECK_INT(b.items_invalid, c->items_invalid);
        CHECK_INT(b.changes_ignored, c->changes_ignored);
        for (j = 0; j < b.n; j++)
            CHECK(event_sane(&b.events[j]));
        pl_event_batch_free(&b);
    }
}

static void test_events(void)
{
    char name[160];
    size_t i, j;

    for (i = 0; i < sizeof event_cases / sizeof event_cases[0]; i++) {
        const struct event_case *c = &event_cases[i];
        struct pl_event_batch b;
        const struct pl_event *ev;

        snprintf(name, sizeof name, "%s event %zu", c->file, c->index);
        UNIT_CASE(name);
        if (parse_fixture(c->file, &b) != 0)
            continue;
        if (c->index >= b.n) {
            UNIT_FAIL("only %zu events", b.n);
            pl_event_batch_free(&b);
            continue;
        }
        ev = &b.events[c->index];
        CHECK_STR(pl_event_kind_name(ev->kind), c->kind);
        CHECK_STR(ev->contact, c->contact);
        CHECK_STR(ev->contact_name, c->contact_name);
        CHECK_STR(ev->id, c->id);
        CHECK_STR(ev->status, c->status);
        CHECK_INT(ev->timestamp, c->timestamp);
        CHECK_STR(ev->phone_number_id, c->phone_number_id);
        CHECK_STR(ev->waba_id, c->waba_id);
        for (j = 0; j < MAX_FIELDS && c->fields[j] != NULL; j++)
            check_field(ev->data, c->fields[j]);
        pl_event_batch_free(&b);
    }
}

/* Bodies that are not WhatsApp notifications: -1, "bad_request", an empty batch. */
static const struct refused_case {
    const char *name, *body, *msg_has;
} refused_cases[] = {
    {"empty body", "", "not JSON"},
    {"not JSON", "hello", "not JSON"},
    {"truncated JSON", "{\"object\":\"whatsapp_business_account\",\"entry\":[", "not JSON"},
    {"trailing garbage", "{\"object\":\"whatsapp_business_account\",\"entry\":[]} x", "not JSON"},
    {"JSON array", "[{\"object\":\"whatsapp_business_account\",\"entry\":[]}]",
     "not a JSON object"},
    {"JSON string", "\"whatsapp_business_account\"", "not a JSON object"},
    {"JSON null", "null", "not a JSON object"},
    {"object page", "{\"object\":\"page\",\"entry\":[]}", "\"object\""},
    {"object is a number", "{\"object\":1,\"entry\":[]}", "\"object\""},
    {"no object", "{\"entry\":[]}", "\"object\""},
    {"missing entry", "{\"object\":\"whatsapp_business_account\"}", "\"entry\""},
    {"entry is an object", "{\"object\":\"whatsapp_business_account\",\"entry\":{}}", "\"entry\""},
    {"entry is null", "{\"object\":\"whatsapp_business_account\",\"entry\":null}", "\"entry\""},
};

static void test_refused(void)
{
    size_t i;

    for (i = 0; i < sizeof refused_cases / sizeof refused_cases[0]; i++) {
        const struct refused_case *c = &refused_cases[i];
        struct pl_error err = {{0}, {0}};
        struct pl_event_batch b;
        UNIT_CASE(c->name);
        CHECK_INT(pl_webhook_parse(c->body, strlen(c->body), &b, &err), -1);
        CHECK_STR(err.code, "bad_request");
        CHECK_CONTAINS(err.msg, c->msg_has);
        CHECK_INT(b.n, 0);
        CHECK(b.events == NULL);
        pl_event_batch_free(&b);
    }
    UNIT_CASE("NULL body");
    {
        struct pl_error err = {{0}, {0}};
        struct pl_event_batch b;
        CHECK_INT(pl_webhook_parse(NULL, 0, &b, &err), -1);
        CHECK_STR(err.code, "bad_request");
        CHECK_INT(pl_webhook_parse(NULL, 0, &b, NULL), -1);
    }
}

static void test_small_bodies(void)
{
    static const char empty[] = "{\"object\":\"whatsapp_business_account\",\"entry\":[]}";
    static const char nul[] =
        "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\",\"changes\":[{"
        "\"field\":\"messages\",\"value\":{\"metadata\":{\"phone_number_id\":\"2\"},"
        "\"messages\":[{\"from\":\"3\",\"id\":\"w\",\"type\":\"text\",\"text\":{\"body\":"
        "\"a\\u0000b\"}}]}}]}]}";
    static const char nul_ids[] =
        "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\",\"changes\":[{"
        "\"field\":\"messages\",\"value\":{\"metadata\":{\"phone_number_id\":\"2\"},"
        "\"messages\":[{\"from\":\"3\",\"id\":\"w.A\\u0000X\",\"type\":\"text\",\"text\":{"
        "\"body\":\"one\"}},{\"from\":\"3\",\"id\":\"w.A\\u0000Y\",\"type\":\"text\",\"text\":{"
        "\"body\":\"two\"}},{\"from\":\"3\",\"id\":\"w.B\",\"type\":\"text\",\"text\":{"
        "\"body\":\"three\"}}]}}]}]}";
    struct pl_event_batch b;
    struct pl_error err = {{0}, {0}};
    json_t *text;

    UNIT_CASE("empty entry array: 0 events");
    CHECK_INT(pl_webhook_parse(empty, strlen(empty), &b, &err), 0);
    CHECK_INT(b.n, 0);
    pl_event_batch_free(&b);

    UNIT_CASE("ids with a NUL escape are skipped, not cut into one dedupe key");
    CHECK_INT(pl_webhook_parse(nul_ids, strlen(nul_ids), &b, &err), 0);
    CHECK_INT(b.n, 1);
    CHECK_INT(b.items_invalid, 2);
    if (b.n == 1)
        CHECK_STR(b.events[0].id, "w.B");
    pl_event_batch_free(&b);

    UNIT_CASE("a NUL escape in a text is kept, not a 400");
    CHECK_INT(pl_webhook_parse(nul, strlen(nul), &b, &err), 0);
    CHECK_INT(b.n, 1);
    if (b.n == 1) {
        text = json_object_get(b.events[0].data, "text");
        CHECK_INT(json_string_length(text), 3);
        CHECK_INT(b.events[0].timestamp, 0);
    }
    pl_event_batch_free(&b);
}

/* 1000 messages in one change: every one, in order. */
static void test_large_batch(void)
{
    json_t *root, *messages;
    struct pl_event_batch b;
    struct pl_error err = {{0}, {0}};
    char id[32], *body;
    size_t i, ordered = 0;

    UNIT_CASE("1000 messages in one change");
    messages = json_array();
    for (i = 0; i < 1000; i++) {
        snprintf(id, sizeof id, "wamid.%04zu", i);
        json_array_append_new(messages, json_pack("{s:s, s:s, s:s, s:s, s:{s:s}}", "from", "1",
                                                  "id", id, "timestamp", "1750000000", "type",
                                                  "text", "text", "body", id));
    }
    root = json_pack("{s:s, s:[{s:s, s:[{s:s, s:{s:{s:s}, s:o}}]}]}", "object",
                     "whatsapp_business_account", "entry", "id", "W", "changes", "field",
                     "messages", "value", "metadata", "phone_number_id", "P", "messages", messages);
    body = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    CHECK(body != NULL);
    if (body == NULL)
        return;
    CHECK_INT(pl_webhook_parse(body, strlen(body), &b, &err), 0);
    CHECK_INT(b.n, 1000);
    for (i = 0; i < b.n; i++) {
        snprintf(id, sizeof id, "wamid.%04zu", i);
        ordered += strcmp(b.events[i].id, id) == 0;
    }
    CHECK_INT(ordered, 1000);
    pl_event_batch_free(&b);
    free(body);
}

static void test_copy_and_names(void)
{
    struct pl_event_batch b;
    struct pl_event copy;

    UNIT_CASE("kind names");
    CHECK_STR(pl_event_kind_name(PL_EVENT_MESSAGE), "message");
    CHECK_STR(pl_event_kind_name(PL_EVENT_PRESS), "press");
    CHECK_STR(pl_event_kind_name(PL_EVENT_STATUS), "status");
    CHECK_STR(pl_event_kind_name(PL_EVENT_TEMPLATE_STATUS), "template_status");
    CHECK_STR(pl_event_kind_name(PL_EVENT_QUALITY), "quality");
    CHECK_STR(pl_event_kind_name(PL_EVENT_TRIGGER), "trigger");

    UNIT_CASE("pl_event_copy duplicates strings and shares data");
    if (parse_fixture("meta_text.json", &b) != 0 || b.n != 1) {
        pl_event_batch_free(&b);
        return;
    }
    CHECK_INT(pl_event_copy(&copy, &b.events[0]), 0);
    CHECK_STR(copy.id, b.events[0].id);
    CHECK(copy.id != b.events[0].id);
    CHECK_STR(copy.contact_name, "Sheena Nelson");
    CHECK(copy.status == NULL);
    CHECK(copy.data == b.events[0].data);
    CHECK_INT(copy.kind, PL_EVENT_MESSAGE);
    CHECK_INT(copy.timestamp, 1749416383);
    pl_event_batch_free(&b);
    /* the copy outlives the batch */
    CHECK_STR(json_string_value(json_object_get(copy.data, "text")),
              "Does it come in another color?");
    pl_event_clear(&copy);
    CHECK(copy.data == NULL && copy.id == NULL);
    pl_event_clear(&copy); /* twice is harmless */
    pl_event_batch_free(NULL);
}

/* ---- allocation failure ---------------------------------------------------------------------
 * jansson's allocator fails at the Nth call, for every N until a parse succeeds: each run must
 * answer 0 or -1 with "oom" (json.c tells running out of memory from bad syntax, from the first
 * allocation on), never crash or leak (ASan), never yield a half-built event. */

static void test_alloc_failure(void)
{
    char *body;
    size_t len = 0, i;
    long n, oom = 0;
    int rc = -1;

    UNIT_CASE("allocation failure at every step of batch.json");
    body = read_file(FIXTURES "batch.json", &len);
    CHECK(body != NULL);
    if (body == NULL)
        return;
    for (n = 0; n < 100000 && rc != 0; n++) {
        struct pl_event_batch b;
        struct pl_error err = {{0}, {0}};
        fail_jansson_after(n);
        rc = pl_webhook_parse(body, len, &b, &err);
        fail_jansson_after(-1);
        if (rc != 0) {
            oom++;
            if (rc != -1 || strcmp(err.code, "oom") != 0 || b.n != 0 || b.events != NULL)
                UNIT_FAIL("budget %ld: rc %d code %s n %zu", n, rc, err.code, b.n);
        } else {
            CHECK_INT(b.n, 8);
            for (i = 0; i < b.n; i++)
                CHECK(event_sane(&b.events[i]));
        }
        pl_event_batch_free(&b);
    }
    CHECK_INT(rc, 0);
    CHECK(oom > 50);
    free(body);
}

/* ---- fuzz ----------------------------------------------------------------------------------- */

static size_t fuzz_runs, fuzz_insane;

static void fuzz_one(const char *body, size_t len)
{
    struct pl_event_batch b;
    struct pl_error err;
    size_t i;
    int rc = pl_webhook_parse(body, len, &b, &err);

    fuzz_runs++;
    if (rc != 0 && rc != -1)
        fuzz_insane++;
    if (rc == -1 && b.n != 0)
        fuzz_insane++;
    for (i = 0; i < b.n; i++)
        if (!event_sane(&b.events[i]))
            fuzz_insane++;
    pl_event_batch_free(&b);
}

static void fuzz_dump(json_t *root)
{
    char *s = json_dumps(root, JSON_COMPACT);
    if (s != NULL) {
        fuzz_one(s, strlen(s));
        free(s);
    }
}

static json_t *replacement(int k)
{
    switch (k) {
    case 0:
        return json_null();
    case 1:
        return json_integer(7);
    case 2:
        return json_real(1.5);
    case 3:
        return json_string("");
    case 4:
        return json_string("x");
    case 5:
        return json_true();
    case 6:
        return json_array();
    default:
        return json_object();
    }
}

#define REPLACEMENTS 8

/* Replace every node under node, one at a time, by every JSON type and by nothing. */
static void fuzz_walk(json_t *root, json_t *node)
{
    size_t i, n, k;

    if (json_is_object(node)) {
        const char **keys;
        const char *key;
        json_t *v;
        n = json_object_size(node);
        keys = calloc(n + 1, sizeof *keys);
        if (keys == NULL)
            return;
        i = 0;
        json_object_foreach(node, key, v)
        {
            keys[i++] = strdup(key);
        }
        for (i = 0; i < n; i++) {
            json_t *child = json_incref(json_object_get(node, keys[i]));
            if (child == NULL)
                continue;
            for (k = 0; k < REPLACEMENTS; k++) {
                json_object_set_new(node, keys[i], replacement((int)k));
                fuzz_dump(root);
            }
            json_object_del(node, keys[i]);
            fuzz_dump(root);
            json_object_set(node, keys[i], child);
            fuzz_walk(root, child);
            json_decref(child);
        }
        for (i = 0; i < n; i++)
            free((char *)keys[i]);
        free(keys);
    } else if (json_is_array(node)) {
        n = json_array_size(node);
        for (i = 0; i < n; i++) {
            json_t *child = json_incref(json_array_get(node, i));
            for (k = 0; k < REPLACEMENTS; k++) {
                json_array_set_new(node, i, replacement((int)k));
                fuzz_dump(root);
            }
            json_array_set(node, i, child);
            fuzz_walk(root, child);
            json_decref(child);
        }
    }
}

static void test_fuzz(void)
{
    char path[256], name[160];
    size_t i, len, off;

    for (i = 0; i < sizeof fixture_cases / sizeof fixture_cases[0]; i++) {
        char *body;
        json_t *root;

        snprintf(path, sizeof path, FIXTURES "%s", fixture_cases[i].file);
        body = read_file(path, &len);
        if (body == NULL)
            continue;
        snprintf(name, sizeof name, "fuzz %s", fixture_cases[i].file);
        UNIT_CASE(name);
        fuzz_runs = fuzz_insane = 0;
        /* every truncation, on an exact-size heap copy so ASan sees any over-read */
        for (off = 0; off < len; off++) {
            char *cut = malloc(off > 0 ? off : 1);
            if (cut == NULL)
                break;
            memcpy(cut, body, off);
            fuzz_one(cut, off);
            free(cut);
        }
        root = json_loadb(body, len, 0, NULL);
        if (root != NULL) {
            fuzz_walk(root, root);
            json_decref(root);
        }
        CHECK(fuzz_runs > len);
        CHECK_INT(fuzz_insane, 0);
        free(body);
    }
}

int main(void)
{
    test_fixture_counts();
    test_events();
    test_refused();
    test_small_bodies();
    test_large_batch();
    test_copy_and_names();
    test_alloc_failure();
    test_fuzz();
    return unit_report("webhook");
}
