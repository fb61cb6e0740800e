/* test_templates.c - the template registry as tables: loading the Graph API answer (problems with
 * where and code), lookups, the status overlay over time, every send check, and the exact Cloud API
 * JSON of template sends. Fixtures live in tests/unit/fixtures/templates/; tests run from the repo
 * root. A failing row prints the code and detail it got. */
#include "outbound.h"
#include "rules.h"
#include "templates.h"
#include "unit.h"

#include <jansson.h>
#include <stdlib.h>

#define FIXTURES "tests/unit/fixtures/templates/"
#define NOW0     1750000000LL /* the registry's load time in every test */
#define DAY      86400LL
#define WEEK     (7 * DAY)

static const struct pl_limits *lim;

static struct pl_templates *load_registry(struct pl_tpl_problem **pr, size_t *npr)
{
    struct pl_error err = {{0}, {0}};
    struct pl_templates *t = pl_templates_load(FIXTURES "registry.json", lim, pr, npr, &err);

    if (t == NULL) {
        fprintf(stderr, "cannot load the registry fixture: %s\n", err.msg);
        exit(2);
    }
    pl_templates_set_loaded_at(t, NOW0);
    return t;
}

/* ---- loading ---- */

static const struct {
    const char *where;
    enum pl_code code;
    const char *detail; /* substring */
} want_problems[] = {
    {"data[15] (bad_start, ru)", PL_TEMPLATE_INVALID,
     "template \"bad_start\" (ru): body starts with the placeholder {{1}}"},
    {"data[16] (hello_plain, ru)", PL_TEMPLATE_INVALID,
     "template \"hello_plain\" (ru) is listed twice; the first one (data[4]) is used"},
    {"data[17] (no_body, ru)", PL_TEMPLATE_INVALID,
     "template \"no_body\" (ru) has no BODY component"},
    {"data[18] (?, ru)", PL_TEMPLATE_INVALID, "\"name\" is not a string"},
};

static void test_load(void)
{
    struct pl_tpl_problem *pr = NULL;
    size_t npr = 0, n = 0;
    struct pl_templates *t = load_registry(&pr, &npr);
    const struct pl_template *tpl;

    UNIT_CASE("registry.json: valid templates are loaded, the rest reported");
    CHECK_INT(pl_templates_count(t), 15);
    CHECK_INT(npr, sizeof want_problems / sizeof want_problems[0]);
    for (size_t i = 0; i < npr && i < sizeof want_problems / sizeof want_problems[0]; i++) {
        UNIT_CASE(want_problems[i].where);
        CHECK_STR(pr[i].where, want_problems[i].where);
        CHECK_STR(pl_code_name(pr[i].code), pl_code_name(want_problems[i].code));
        CHECK_CONTAINS(pr[i].detail, want_problems[i].detail);
    }
    free(pr);

    UNIT_CASE("a duplicate leaves the first in place");
    tpl = pl_templates_find(t, "hello_plain", "ru");
    CHECK(tpl != NULL && strcmp(tpl->body, "Добрый день! Мы на связи с 9 до 21.") == 0);

    UNIT_CASE("entries come back in file order");
    CHECK_STR(pl_templates_get(t, 0)->name, "order_shipped");
    CHECK_STR(pl_templates_get(t, 1)->language, "uk");
    CHECK_STR(pl_templates_get(t, 14)->name, "disabled_old");
    CHECK(pl_templates_get(t, 15) == NULL);

    UNIT_CASE("order_shipped (ru) carries every part");
    tpl = pl_templates_find(t, "order_shipped", "ru");
    CHECK(tpl != NULL);
    if (tpl != NULL) {
        CHECK_STR(tpl->header_format, "TEXT");
        CHECK_STR(tpl->header_text, "Заказ {{1}}");
        CHECK_STR(tpl->footer, "Магазин «Ромашка»");
        CHECK_STR(tpl->category, "UTILITY");
        CHECK_STR(tpl->status, "APPROVED");
        CHECK_INT(tpl->named, 0);
        CHECK_INT(tpl->nbuttons, 2);
        CHECK_INT(tpl->buttons[0].type, PL_TPL_URL);
        CHECK_STR(tpl->buttons[0].url, "https://shop.example.com/track/{{1}}");
        CHECK_INT(tpl->buttons[1].type, PL_TPL_QUICK_REPLY);
        CHECK_STR(tpl->buttons[1].text, "Спасибо");
    }
    UNIT_CASE("button kinds, header formats and parameter formats");
    tpl = pl_templates_find(t, "promo_image", "ru");
    CHECK(tpl != NULL && tpl->nbuttons == 4 && tpl->buttons[3].type == PL_TPL_PHONE_NUMBER &&
          strcmp(tpl->buttons[3].phone, "+78124381678") == 0 &&
          strcmp(tpl->header_format, "IMAGE") == 0 && tpl->header_text == NULL && !tpl->named);
    tpl = pl_templates_find(t, "welcome_named", "en_US");
    CHECK(tpl != NULL && tpl->named == 1);
    tpl = pl_templates_find(t, "coupon", "en");
    CHECK(tpl != NULL && tpl->nbuttons == 2 && tpl->buttons[0].type == PL_TPL_COPY_CODE &&
          tpl->buttons[0].text == NULL);
    tpl = pl_templates_find(t, "auth_code", "en");
    CHECK(tpl != NULL && tpl->nbuttons == 1 && tpl->buttons[0].type == PL_TPL_OTHER);

    UNIT_CASE("problems may be counted without being returned");
    pl_templates_free(t);
    t = pl_templates_load(FIXTURES "registry.json", lim, NULL, &n, NULL);
    CHECK(t != NULL);
    CHECK_INT(n, 4);
    pl_templates_free(t);
}

static void test_bare_array(void)
{
    struct pl_tpl_problem *pr = NULL;
    size_t npr = 0;
    struct pl_error err = {{0}, {0}};
    struct pl_templates *t = pl_templates_load(FIXTURES "bare_array.json", lim, &pr, &npr, &err);
    const struct pl_template *tpl;

    UNIT_CASE("bare_array.json: a top-level list is a registry too");
    CHECK(t != NULL);
    if (t == NULL)
        return;
    CHECK_INT(pl_templates_count(t), 2);
    CHECK_INT(npr, 1);
    if (npr == 1) {
        CHECK_STR(pr[0].where, "[2] (?, ?)");
        CHECK_CONTAINS(pr[0].detail, "entry 2 is not an object");
    }
    UNIT_CASE("lower-case enums are read as Meta's upper case ones");
    tpl = pl_templates_find(t, "hello_plain", "en");
    CHECK(tpl != NULL && strcmp(tpl->status, "APPROVED") == 0);
    UNIT_CASE("without parameter_format, named placeholders make a named template");
    tpl = pl_templates_find(t, "greet_named", "en");
    CHECK(tpl != NULL && tpl->named == 1);
    free(pr);
    pl_templates_free(t);
}

/* Structural problems in one-entry registries given as text. */
static const struct {
    const char *what, *json, *where, *detail;
} shape_cases[] = {
    {"components missing", "[{\"name\":\"a\",\"language\":\"ru\",\"status\":\"APPROVED\"}]",
     "[0] (a, ru)", "has no \"components\" (a BODY is required)"},
    {"components not a list",
     "[{\"name\":\"a\",\"language\":\"ru\",\"status\":\"APPROVED\",\"components\":{}}]",
     "[0] (a, ru)", "\"components\" is not a list"},
    {"status missing",
     "[{\"name\":\"a\",\"language\":\"ru\",\"components\":[{\"type\":\"BODY\",\"text\":\"x\"}]}]",
     "[0] (a, ru)", "has no \"status\""},
    {"language missing",
     "[{\"name\":\"a\",\"status\":\"APPROVED\",\"components\":[{\"type\":\"BODY\",\"text\":\"x\"}]}"
     "]",
     "[0] (a, ?)", "has no \"language\""},
    {"body text not a string",
     "{\"data\":[{\"name\":\"a\",\"language\":\"ru\",\"status\":\"APPROVED\",\"components\":"
     "[{\"type\":\"BODY\",\"text\":7}]}]}",
     "data[0] (a, ru)", "\"text\" of the body is not a string"},
    {"two bodies",
     "[{\"name\":\"a\",\"language\":\"ru\",\"status\":\"APPROVED\",\"components\":"
     "[{\"type\":\"BODY\",\"text\":\"x\"},{\"type\":\"BODY\",\"text\":\"y\"}]}]",
     "[0] (a, ru)", "more than one BODY component"},
    {"buttons not a list",
     "[{\"name\":\"a\",\"language\":\"ru\",\"status\":\"APPROVED\",\"components\":"
     "[{\"type\":\"BODY\",\"text\":\"x\"},{\"type\":\"BUTTONS\",\"buttons\":3}]}]",
     "[0] (a, ru)", "component 1 (BUTTONS) has no \"buttons\" list"},
    {"button url not a string",
     "[{\"name\":\"a\",\"language\":\"ru\",\"status\":\"APPROVED\",\"components\":"
     "[{\"type\":\"BODY\",\"text\":\"x\"},{\"type\":\"BUTTONS\",\"buttons\":"
     "[{\"type\":\"URL\",\"text\":\"Go\",\"url\":[]}]}]}]",
     "[0] (a, ru)", "\"url\" of button 0 is not a string"},
    {"unknown parameter_format",
     "[{\"name\":\"a\",\"language\":\"ru\",\"status\":\"APPROVED\",\"parameter_format\":\"MIXED\","
     "\"components\":[{\"type\":\"BODY\",\"text\":\"x\"}]}]",
     "[0] (a, ru)", "parameter_format \"MIXED\" is not POSITIONAL or NAMED"},
    {"NUL inside a string",
     "[{\"name\":\"a\",\"language\":\"ru\",\"status\":\"APPROVED\",\"components\":"
     "[{\"type\":\"BODY\",\"text\":\"x\\u0000y\"}]}]",
     "[0] (a, ru)", "holds a NUL character"},
    {"a rule broken: hyphenated language",
     "[{\"name\":\"a\",\"language\":\"en-US\",\"status\":\"APPROVED\",\"components\":"
     "[{\"type\":\"BODY\",\"text\":\"x\"}]}]",
     "[0] (a, en-US)", "uses -; WhatsApp language codes use _"},
    {"a rule broken: mixed quick replies",
     "[{\"name\":\"a\",\"language\":\"ru\",\"status\":\"APPROVED\",\"components\":"
     "[{\"type\":\"BODY\",\"text\":\"x\"},{\"type\":\"BUTTONS\",\"buttons\":["
     "{\"type\":\"QUICK_REPLY\",\"text\":\"A\"},{\"type\":\"URL\",\"text\":\"U\",\"url\":"
     "\"https://a.example\"},{\"type\":\"QUICK_REPLY\",\"text\":\"B\"}]}]}]",
     "[0] (a, ru)", "quick replies must form one group"},
    {"a rule broken: positional placeholder in a NAMED template",
     "[{\"name\":\"a\",\"language\":\"ru\",\"status\":\"APPROVED\",\"parameter_format\":\"NAMED\","
     "\"components\":[{\"type\":\"BODY\",\"text\":\"Hi {{1}} there\"}]}]",
     "[0] (a, ru)", "has the positional placeholder {{1}}"},
};

static void test_shapes(void)
{
    for (size_t i = 0; i < sizeof shape_cases / sizeof shape_cases[0]; i++) {
        struct pl_tpl_problem *pr = NULL;
        size_t npr = 0;
        struct pl_error err = {{0}, {0}};
        const char *json = shape_cases[i].json;
        struct pl_templates *t =
            pl_templates_parse(json, strlen(json), "t.json", lim, &pr, &npr, &err);
        UNIT_CASE(shape_cases[i].what);
        CHECK(t != NULL);
        CHECK_INT(pl_templates_count(t), 0);
        CHECK_INT(npr, 1);
        if (npr == 1) {
            CHECK_STR(pr[0].where, shape_cases[i].where);
            CHECK_STR(pl_code_name(pr[0].code), "template_invalid");
            CHECK_CONTAINS(pr[0].detail, shape_cases[i].detail);
        }
        free(pr);
        pl_templates_free(t);
    }
    {
        const char *json = "{\"data\":[],\"paging\":{}}";
        struct pl_templates *t =
            pl_templates_parse(json, strlen(json), "empty.json", lim, NULL, NULL, NULL);
        UNIT_CASE("an empty registry loads");
        CHECK(t != NULL);
        CHECK_INT(pl_templates_count(t), 0);
        CHECK(pl_templates_find(t, "a", "ru") == NULL);
        CHECK(pl_templates_find_name(t, "a") == NULL);
        pl_templates_free(t);
    }
    {
        const char *json = "[{\"name\":\"a\",\"language\":\"ru\",\"status\":\"APPROVED\","
                           "\"components\":[{\"type\":\"CAROUSEL\",\"cards\":[]},"
                           "{\"type\":\"BODY\",\"text\":\"x\"}],\"new_field\":{\"a\":[1]}}]";
        struct pl_templates *t =
            pl_templates_parse(json, strlen(json), "new.json", lim, NULL, NULL, NULL);
        UNIT_CASE("unknown fields and component types are ignored");
        CHECK_INT(pl_templates_count(t), 1);
        pl_templates_free(t);
    }
}

static const struct {
    const char *what, *path, *code, *msg;
} bad_files[] = {
    {"a missing file", FIXTURES "nope.json", "io",
     FIXTURES "nope.json: cannot read: No such file or directory"},
    {"bad JSON names line and column", FIXTURES "bad_json.json", "templates",
     FIXTURES "bad_json.json:3:37: string or '}' expected near ','"},
    {"a wrong top level", FIXTURES "wrong_top.json", "templates",
     FIXTURES "wrong_top.json: expected the Graph API's message_templates answer"},
};

static void test_bad_files(void)
{
    for (size_t i = 0; i < sizeof bad_files / sizeof bad_files[0]; i++) {
        struct pl_error err = {{0}, {0}};
        struct pl_tpl_problem *pr = (struct pl_tpl_problem *)&err; /* must be reset to NULL */
        size_t npr = 99;
        struct pl_templates *t = pl_templates_load(bad_files[i].path, lim, &pr, &npr, &err);
        UNIT_CASE(bad_files[i].what);
        CHECK(t == NULL);
        CHECK(pr == NULL);
        CHECK_INT(npr, 0);
        CHECK_STR(err.code, bad_files[i].code);
        CHECK_CONTAINS(err.msg, bad_files[i].msg);
        pl_templates_free(t);
    }
    static const char *const wrong[] = {"42", "{\"data\":{}}", "\"data\"", "null"};
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        struct pl_error err = {{0}, {0}};
        UNIT_CASE(wrong[i]);
        CHECK(pl_templates_parse(wrong[i], strlen(wrong[i]), "w.json", lim, NULL, NULL, &err) ==
              NULL);
        CHECK_CONTAINS(err.msg, "w.json: expected");
    }
    {
        struct pl_error err = {{0}, {0}};
        UNIT_CASE("an empty text is a JSON error");
        CHECK(pl_templates_parse("", 0, "e.json", lim, NULL, NULL, &err) == NULL);
        CHECK_CONTAINS(err.msg, "e.json:");
    }
}

/* ---- lookups ---- */

static const struct {
    const char *name, *lang;
    int found;
} finds[] = {
    {"order_shipped", "ru", 1},
    {"order_shipped", "uk", 1},
    {"welcome_named", "en_US", 1},
    {"order_shipped", "RU", 0},
    {"welcome_named", "en_us", 0},
    {"welcome_named", "en-US", 0},
    {"welcome_named", "en", 0},
    {"Order_shipped", "ru", 0},
    {"nope", "ru", 0},
    {"bad_start", "ru", 0},
    {"no_body", "ru", 0},
    {"disabled_old", "ru", 1},
    {"promo", "ru", 1},
    {"promo_image", "ru", 1},
    {"promo_", "ru", 0},
    {"", "ru", 0},
};

static void test_find(void)
{
    struct pl_templates *t = load_registry(NULL, NULL);
    char what[96];

    for (size_t i = 0; i < sizeof finds / sizeof finds[0]; i++) {
        const struct pl_template *tpl = pl_templates_find(t, finds[i].name, finds[i].lang);
        snprintf(what, sizeof what, "find %s (%s)", finds[i].name, finds[i].lang);
        UNIT_CASE(what);
        CHECK_INT(tpl != NULL, finds[i].found);
        if (tpl != NULL) {
            CHECK_STR(tpl->name, finds[i].name);
            CHECK_STR(tpl->language, finds[i].lang);
        }
    }
    UNIT_CASE("find_name: any language of a name");
    CHECK(pl_templates_find_name(t, "order_shipped") != NULL);
    CHECK_STR(pl_templates_find_name(t, "order_shipped")->name, "order_shipped");
    CHECK(pl_templates_find_name(t, "nope") == NULL);
    CHECK(pl_templates_find_name(t, "promo_") == NULL);
    UNIT_CASE("NULL arguments find nothing");
    CHECK(pl_templates_find(NULL, "a", "ru") == NULL);
    CHECK(pl_templates_find(t, NULL, "ru") == NULL);
    CHECK(pl_templates_find(t, "promo", NULL) == NULL);
    CHECK_INT(pl_templates_count(NULL), 0);
    pl_templates_free(t);
}

/* 6,000 templates (Meta's cap for a verified business): every one is found, the duplicate at the
 * end is reported. */
static void test_large(void)
{
    static const char *const langs[] = {"uk", "ru", "en"};
    json_t *data = json_array(), *root;
    struct pl_tpl_problem *pr = NULL;
    size_t npr = 0, missing = 0;
    char name[32], *text;
    struct pl_templates *t;
    struct pl_verdict v;
    const struct pl_template *tpl;
    struct pl_tpl_param p[] = {{NULL, "Анна"}};
    struct pl_tpl_send send = {.body = p, .nbody = 1};

    for (int i = 0; i < 2000; i++)
        for (int l = 0; l < 3; l++) {
            snprintf(name, sizeof name, "tpl_%04d", (i * 7919) % 2000);
            json_array_append_new(data, json_pack("{s:s,s:s,s:s,s:s,s:[{s:s,s:s}]}", "name", name,
                                                  "language", langs[l], "status", "APPROVED",
                                                  "category", "UTILITY", "components", "type",
                                                  "BODY", "text", "Привет, {{1}}! Как дела?"));
        }
    json_array_append_new(data, json_pack("{s:s,s:s,s:s,s:[{s:s,s:s}]}", "name", "tpl_0000",
                                          "language", "ru", "status", "APPROVED", "components",
                                          "type", "BODY", "text", "dup"));
    root = json_pack("{s:o}", "data", data);
    text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    t = pl_templates_parse(text, strlen(text), "large.json", lim, &pr, &npr, NULL);
    free(text);
    UNIT_CASE("6,000 templates load, the duplicate is left out");
    CHECK(t != NULL);
    if (t == NULL)
        return;
    CHECK_INT(pl_templates_count(t), 6000);
    CHECK_INT(npr, 1);
    if (npr == 1)
        CHECK_STR(pr[0].where, "data[6000] (tpl_0000, ru)");
    for (int i = 0; i < 2000; i++)
        for (int l = 0; l < 3; l++) {
            snprintf(name, sizeof name, "tpl_%04d", i);
            tpl = pl_templates_find(t, name, langs[l]);
            if (tpl == NULL || strcmp(tpl->name, name) != 0 || strcmp(tpl->language, langs[l]))
                missing++;
        }
    UNIT_CASE("every one of 6,000 is found by name and language");
    CHECK_INT(missing, 0);
    UNIT_CASE("the detail lists every language of a name, sorted");
    send.name = "tpl_1234";
    send.language = "de";
    CHECK_INT(pl_templates_check(t, lim, &send, NOW0, &tpl, &v), -1);
    CHECK_STR(v.detail, "template \"tpl_1234\" has no language \"de\"; it exists in en, ru, uk");
    send.language = "uk";
    CHECK_INT(pl_templates_check(t, lim, &send, NOW0, &tpl, &v), 0);
    free(pr);
    pl_templates_free(t);
}

/* ---- statuses ---- */

/* Steps run in order on one registry: an optional update, then the status in force at `now`. */
static const struct {
    const char *what;
    const char *set_name, *set_lang, *set; /* set NULL: no update */
    long long at;
    int changed;
    const char *name, *lang; /* the template asked about */
    long long now;
    const char *want;
    int sendable;
} steps[] = {
    {"a PAUSED template from the file is not sendable", NULL, NULL, NULL, 0, 0, "promo", "ru", NOW0,
     "PAUSED", 0},
    {"REINSTATED makes it sendable", "promo", "ru", "REINSTATED", NOW0 + 10, 1, "promo", "ru",
     NOW0 + 10, "REINSTATED", 1},
    {"a lower-case event is stored upper case", "promo", "ru", "paused", NOW0 + 20, 1, "promo",
     "ru", NOW0 + 20, "PAUSED", 0},
    {"UNPAUSE reinstates", "promo", "ru", "UNPAUSE", NOW0 + 30, 1, "promo", "ru", NOW0 + 30,
     "REINSTATED", 1},
    {"an update older than the last one is ignored", "promo", "ru", "DISABLED", NOW0 + 5, 0,
     "promo", "ru", NOW0 + 40, "REINSTATED", 1},
    {"FLAGGED is sendable", "order_shipped", "ru", "FLAGGED", NOW0 + 100, 1, "order_shipped", "ru",
     NOW0 + 100, "FLAGGED", 1},
    {"FLAGGED for exactly 7 days is still FLAGGED", NULL, NULL, NULL, 0, 0, "order_shipped", "ru",
     NOW0 + 100 + WEEK, "FLAGGED", 1},
    {"FLAGGED for 7 days + 1 s is DISABLED", NULL, NULL, NULL, 0, 0, "order_shipped", "ru",
     NOW0 + 100 + WEEK + 1, "DISABLED", 0},
    {"a repeated FLAGGED keeps the first flag time", "order_shipped", "ru", "FLAGGED",
     NOW0 + 100 + 3 * DAY, 1, "order_shipped", "ru", NOW0 + 100 + WEEK + 1, "DISABLED", 0},
    {"a newer APPROVED clears FLAGGED", "order_shipped", "ru", "APPROVED", NOW0 + 100 + 4 * DAY, 1,
     "order_shipped", "ru", NOW0 + 100 + 30 * DAY, "APPROVED", 1},
    {"FLAGGED in the file counts from the load time", NULL, NULL, NULL, 0, 0, "reminder", "ru",
     NOW0 + WEEK, "FLAGGED", 1},
    {"FLAGGED in the file expires 7 days + 1 s after the load", NULL, NULL, NULL, 0, 0, "reminder",
     "ru", NOW0 + WEEK + 1, "DISABLED", 0},
    {"a FLAGGED update gives a file-flagged template its real time", "reminder", "ru", "FLAGGED",
     NOW0 + 2 * DAY, 1, "reminder", "ru", NOW0 + WEEK + 1, "FLAGGED", 1},
    {"... which then expires 7 days + 1 s later", NULL, NULL, NULL, 0, 0, "reminder", "ru",
     NOW0 + 2 * DAY + WEEK + 1, "DISABLED", 0},
    {"language NULL updates every language", "order_shipped", NULL, "PAUSED", NOW0 + 100 + 5 * DAY,
     2, "order_shipped", "uk", NOW0 + 100 + 5 * DAY, "PAUSED", 0},
    {"the webhook's en-US matches en_US", "welcome_named", "en-US", "PAUSED", NOW0, 1,
     "welcome_named", "en_US", NOW0, "PAUSED", 0},
    {"an unknown template changes nothing", "nope", "ru", "APPROVED", NOW0, 0, "hello_plain", "ru",
     NOW0, "APPROVED", 1},
    {"a NULL status changes nothing", "hello_plain", "ru", NULL, NOW0, 0, "hello_plain", "ru", NOW0,
     "APPROVED", 1},
    {"an unknown status is kept and not sendable", "hello_plain", "ru", "SOMETHING_NEW", NOW0 + 1,
     1, "hello_plain", "ru", NOW0 + 1, "SOMETHING_NEW", 0},
    {"DISABLED from the file stays DISABLED", NULL, NULL, NULL, 0, 0, "disabled_old", "ru",
     NOW0 + 365 * DAY, "DISABLED", 0},
    {"DISABLED then REINSTATED", "disabled_old", "ru", "REINSTATED", NOW0 + 2, 1, "disabled_old",
     "ru", NOW0 + 2, "REINSTATED", 1},
};

static void test_status(void)
{
    struct pl_templates *t = load_registry(NULL, NULL);

    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        const struct pl_template *tpl;
        struct pl_tpl_param p[] = {{NULL, "a"}, {NULL, "b"}};
        struct pl_tpl_param named[] = {{"first_name", "Ann"}, {"code", "W-7"}};
        struct pl_tpl_button_value bv[] = {{0, "A-1"}};
        struct pl_tpl_send send = {.name = steps[i].name, .language = steps[i].lang};
        struct pl_verdict v;
        int rc;
        UNIT_CASE(steps[i].what);
        if (steps[i].set != NULL || steps[i].set_name != NULL)
            CHECK_INT(pl_templates_set_status(t, steps[i].set_name, steps[i].set_lang, steps[i].set,
                                              steps[i].at),
                      steps[i].changed);
        tpl = pl_templates_find(t, steps[i].name, steps[i].lang);
        CHECK(tpl != NULL);
        CHECK_STR(pl_templates_status(t, tpl, lim, steps[i].now), steps[i].want);
        /* a send with whatever the template needs: only the status can fail it */
        if (tpl != NULL) {
            size_t need = (size_t)pl_rules_placeholder_count(tpl->body);
            send.body = tpl->named ? named : p;
            send.nbody = need;
            if (tpl->header_text != NULL) {
                send.header = tpl->named ? named : p;
                send.nheader = 1;
            }
            if (tpl->nbuttons > 0 && tpl->buttons[0].type == PL_TPL_URL) {
                send.buttons = bv;
                send.nbuttons = 1;
            }
        }
        rc = pl_templates_check(t, lim, &send, steps[i].now, NULL, &v);
        CHECK_INT(rc, steps[i].sendable ? 0 : -1);
        if (rc != 0) {
            CHECK_STR(pl_code_name(v.code), "template_not_approved");
            CHECK_CONTAINS(v.detail, "only APPROVED (or FLAGGED) templates can be sent");
            /* DISABLED by the lapse of time (not by an update) says so */
            if (strcmp(steps[i].want, "DISABLED") == 0 && tpl != NULL &&
                strcmp(tpl->status, "FLAGGED") == 0)
                CHECK_CONTAINS(v.detail, "was FLAGGED over 7 days ago with no status update since");
        } else if (steps[i].sendable) {
            CHECK(v.code == PL_OK);
        }
    }
    UNIT_CASE("the template's own status field follows the updates");
    CHECK_STR(pl_templates_find(t, "promo", "ru")->status, "REINSTATED");
    UNIT_CASE("a template that is not the registry's gets its own status");
    {
        struct pl_template other = {.name = "promo", .language = "ru", .status = "PENDING"};
        CHECK_STR(pl_templates_status(t, &other, lim, NOW0), "PENDING");
        CHECK_STR(pl_templates_status(t, NULL, lim, NOW0), "UNKNOWN");
    }
    pl_templates_free(t);

    UNIT_CASE("set_loaded_at moves the flag time of file-flagged templates");
    t = load_registry(NULL, NULL);
    pl_templates_set_loaded_at(t, NOW0 + 10 * DAY);
    CHECK_STR(
        pl_templates_status(t, pl_templates_find(t, "reminder", "ru"), lim, NOW0 + 10 * DAY + WEEK),
        "FLAGGED");
    CHECK_STR(pl_templates_status(t, pl_templates_find(t, "reminder", "ru"), lim,
                                  NOW0 + 10 * DAY + WEEK + 1),
              "DISABLED");
    pl_templates_free(t);
}

/* Every status Meta documents, as an update to hello_plain (ru), and whether a send passes. */
static const struct {
    const char *status;
    int sendable;
} statuses[] = {
    {"APPROVED", 1}, {"FLAGGED", 1},        {"REINSTATED", 1}, {"UNARCHIVED", 1},
    {"LOCKED", 1},   {"PENDING", 0},        {"REJECTED", 0},   {"PAUSED", 0},
    {"DISABLED", 0}, {"IN_APPEAL", 0},      {"DELETED", 0},    {"PENDING_DELETION", 0},
    {"ARCHIVED", 0}, {"LIMIT_EXCEEDED", 0},
};

static void test_each_status(void)
{
    struct pl_templates *t = load_registry(NULL, NULL);
    struct pl_tpl_send send = {.name = "hello_plain", .language = "ru"};
    char want[200];

    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++) {
        struct pl_verdict v;
        const struct pl_template *tpl;
        UNIT_CASE(statuses[i].status);
        CHECK_INT(pl_templates_set_status(t, "hello_plain", "ru", statuses[i].status,
                                          NOW0 + (long long)i),
                  1);
        CHECK_INT(pl_templates_check(t, lim, &send, NOW0 + (long long)i, &tpl, &v),
                  statuses[i].sendable ? 0 : -1);
        if (statuses[i].sendable) {
            CHECK(tpl == pl_templates_find(t, "hello_plain", "ru"));
        } else {
            CHECK(tpl == NULL);
            CHECK_INT(v.code, PL_TEMPLATE_NOT_APPROVED);
            snprintf(want, sizeof want,
                     "template \"hello_plain\" (ru) is %s; only APPROVED (or FLAGGED) templates "
                     "can be sent",
                     statuses[i].status);
            CHECK_STR(v.detail, want);
        }
    }
    pl_templates_free(t);
}

/* ---- checking sends ---- */

#define P(v)      \
    {             \
        NULL, (v) \
    }
#define N(n, v)  \
    {            \
        (n), (v) \
    }

static char body1024[1100], body1025[1100], hdr60[70], hdr61[70], suffix1975[2000],
    suffix1976[2000];

struct check_case {
    const char *what;
    const char *name, *lang;
    struct pl_tpl_param body[4];
    size_t nbody;
    struct pl_tpl_param header[2];
    size_t nheader;
    const char *link;
    struct pl_tpl_button_value buttons[3];
    size_t nbuttons;
    enum pl_code code;
    const char *detail; /* exact when it starts with "template" or "button", else a substring */
};

static const struct check_case checks[] = {
    /* sends that pass */
    {"order_shipped (ru): header, body and URL suffix",
     "order_shipped",
     "ru",
     {P("Анна"), P("A-1042")},
     2,
     {P("A-1042")},
     1,
     NULL,
     {{0, "A-1042"}},
     1,
     PL_OK,
     NULL},
    {"order_shipped (ru): plus a quick-reply payload",
     "order_shipped",
     "ru",
     {P("Анна"), P("A-1042")},
     2,
     {P("A-1042")},
     1,
     NULL,
     {{1, "thanks"}, {0, "A-1042"}},
     2,
     PL_OK,
     NULL},
    {"order_shipped (uk): body only",
     "order_shipped",
     "uk",
     {P("Анна"), P("A-1042")},
     2,
     {},
     0,
     NULL,
     {},
     0,
     PL_OK,
     NULL},
    {"welcome_named: named, in any order",
     "welcome_named",
     "en_US",
     {N("code", "W-77"), N("first_name", "Ann")},
     2,
     {N("first_name", "Ann")},
     1,
     NULL,
     {},
     0,
     PL_OK,
     NULL},
    {"promo_image: image link and a body parameter",
     "promo_image",
     "ru",
     {P("20%")},
     1,
     {},
     0,
     "https://cdn.example.com/sale.jpg",
     {},
     0,
     PL_OK,
     NULL},
    {"hello_plain: no parameters at all",
     "hello_plain",
     "ru",
     {},
     0,
     {},
     0,
     NULL,
     {},
     0,
     PL_OK,
     NULL},
    {"coupon: code to copy and URL suffix",
     "coupon",
     "en",
     {P("20%")},
     1,
     {},
     0,
     NULL,
     {{0, "SAVE20"}, {1, "spring"}},
     2,
     PL_OK,
     NULL},
    {"invoice_doc: document link",
     "invoice_doc",
     "en",
     {P("INV-7")},
     1,
     {},
     0,
     "HTTPS://files.example.com/inv-7.pdf",
     {},
     0,
     PL_OK,
     NULL},
    {"tour_video: video link",
     "tour_video",
     "es",
     {},
     0,
     {},
     0,
     "http://v.example.com/t.mp4",
     {},
     0,
     PL_OK,
     NULL},
    {"reminder: FLAGGED within its grace period",
     "reminder",
     "ru",
     {P("стрижку"), P("10:00")},
     2,
     {},
     0,
     NULL,
     {},
     0,
     PL_OK,
     NULL},
    {"auth_code: the OTP button needs no value",
     "auth_code",
     "en",
     {P("123456")},
     1,
     {},
     0,
     NULL,
     {},
     0,
     PL_OK,
     NULL},
    {"4 consecutive spaces are allowed",
     "order_shipped",
     "uk",
     {P("a    b"), P("c")},
     2,
     {},
     0,
     NULL,
     {},
     0,
     PL_OK,
     NULL},
    {"a 1024-character body parameter is allowed",
     "order_shipped",
     "uk",
     {P(body1024), P("c")},
     2,
     {},
     0,
     NULL,
     {},
     0,
     PL_OK,
     NULL},
    {"a 60-character header parameter is allowed",
     "order_shipped",
     "ru",
     {P("a"), P("b")},
     2,
     {P(hdr60)},
     1,
     NULL,
     {{0, "x"}},
     1,
     PL_OK,
     NULL},
    {"a URL of exactly 2000 characters with its suffix",
     "order_shipped",
     "ru",
     {P("a"), P("b")},
     2,
     {P("h")},
     1,
     NULL,
     {{0, suffix1975}},
     1,
     PL_OK,
     NULL},
    {"a quick reply without a value sends nothing",
     "welcome_named",
     "en_US",
     {N("code", "1"), N("first_name", "A")},
     2,
     {N("first_name", "A")},
     1,
     NULL,
     {{0, NULL}},
     1,
     PL_OK,
     NULL},

    /* unknown_template */
    {"a language the name does not exist in",
     "order_shipped",
     "en",
     {},
     0,
     {},
     0,
     NULL,
     {},
     0,
     PL_UNKNOWN_TEMPLATE,
     "template \"order_shipped\" has no language \"en\"; it exists in ru, uk"},
    {"languages are case-sensitive",
     "order_shipped",
     "RU",
     {},
     0,
     {},
     0,
     NULL,
     {},
     0,
     PL_UNKNOWN_TEMPLATE,
     "template \"order_shipped\" has no language \"RU\"; it exists in ru, uk"},
    {"a name not in the registry",
     "order_shiped",
     "ru",
     {},
     0,
     {},
     0,
     NULL,
     {},
     0,
     PL_UNKNOWN_TEMPLATE,
     "template \"order_shiped\" (ru) is not in the channel's templates registry"},
    {"a template left out at load",
     "bad_start",
     "ru",
     {},
     0,
     {},
     0,
     NULL,
     {},
     0,
     PL_UNKNOWN_TEMPLATE,
     "template \"bad_start\" (ru) is not in the channel's templates registry"},
    {"no language",
     "hello_plain",
     NULL,
     {},
     0,
     {},
     0,
     NULL,
     {},
     0,
     PL_UNKNOWN_TEMPLATE,
     "template \"hello_plain\": no language given (set opts.lang or the channel's \"language\")"},

    /* template_not_approved: the file's statuses; the status check comes before parameters */
    {"PENDING",
     "pending_news",
     "ru",
     {P("x")},
     1,
     {},
     0,
     NULL,
     {},
     0,
     PL_TEMPLATE_NOT_APPROVED,
     "template \"pending_news\" (ru) is PENDING; only APPROVED (or FLAGGED) templates can be "
     "sent"},
    {"REJECTED",
     "rejected_offer",
     "ru",
     {P("x")},
     1,
     {},
     0,
     NULL,
     {},
     0,
     PL_TEMPLATE_NOT_APPROVED,
     "template \"rejected_offer\" (ru) is REJECTED; only APPROVED (or FLAGGED) templates can be "
     "sent"},
    {"PAUSED, even with wrong parameters",
     "promo",
     "ru",
     {},
     0,
     {},
     0,
     NULL,
     {},
     0,
     PL_TEMPLATE_NOT_APPROVED,
     "template \"promo\" (ru) is PAUSED; only APPROVED (or FLAGGED) templates can be sent"},
    {"DISABLED",
     "disabled_old",
     "ru",
     {},
     0,
     {},
     0,
     NULL,
     {},
     0,
     PL_TEMPLATE_NOT_APPROVED,
     "template \"disabled_old\" (ru) is DISABLED; only APPROVED (or FLAGGED) templates can be "
     "sent"},

    /* template_params: count, names, kinds */
    {"too few body parameters",
     "order_shipped",
     "uk",
     {P("Анна")},
     1,
     {},
     0,
     NULL,
     {},
     0,
     PL_TEMPLATE_PARAMS,
     "template \"order_shipped\" (uk): expects 2 parameters, got 1"},
    {"too many body parameters",
     "order_shipped",
     "uk",
     {P("a"), P("b"), P("c")},
     3,
     {},
     0,
     NULL,
     {},
     0,
     PL_TEMPLATE_PARAMS,
     "template \"order_shipped\" (uk): expects 2 parameters, got 3"},
    {"no body parameters for a body with placeholders",
     "order_shipped",
     "uk",
     {},
     0,
     {},
     0,
     NULL,
     {},
     0,
     PL_TEMPLATE_PARAMS,
     "template \"order_shipped\" (uk): expects 2 parameters, got 0"},
    {"named parameters for a positional template",
     "order_shipped",
     "uk",
     {N("name", "Анна"), N("order", "A-1")},
     2,
     {},
     0,
     NULL,
     {},
     0,
     PL_TEMPLATE_PARAMS,
     "template \"order_shipped\" (uk): parameter \"name\" has a name but the template uses "
     "positional parameters ({{1}}, {{2}}, …); give a list"},
    {"positional parameters for a named template",
     "welcome_named",
     "en_US",
     {P("Ann"), P("W")},
     2,
     {N("first_name", "Ann")},
     1,
     NULL,
     {},
     0,
     PL_TEMPLATE_PARAMS,
     "template \"welcome_named\" (en_US): parameter 1 has no name; the template body uses named "
     "parameters ({{first_name}}, {{code}})"},
    {"an unknown name",
     "welcome_named",
     "en_US",
     {N("first_name", "Ann"), N("coupon", "X")},
     2,
     {N("first_name", "Ann")},
     1,
     NULL,
     {},
     0,
     PL_TEMPLATE_PARAMS,
     "unknown parameter \"coupon\""},
    {"a missing name",
     "welcome_named",
     "en_US",
     {N("first_name", "Ann")},
     1,
     {N("first_name", "Ann")},
     1,
     NULL,
     {},
     0,
     PL_TEMPLATE_PARAMS,
     "missing parameter \"code\" for {{code}}"},
    {"a name given twice",
     "welcome_named",
     "en_US",
     {N("code", "1"), N("first_name", "A"), N("code", "2")},
     3,
     {N("first_name", "A")},
     1,
     NULL,
     {},
     0,
     PL_TEMPLATE_PARAMS,
     "parameter \"code\" is given twice"},
    {"parameters for a body without placeholders",
     "hello_plain",
     "ru",
     {P("x")},
     1,
     {},
     0,
     NULL,
     {},
     0,
     PL_TEMPLATE_PARAMS,
     "template \"hello_plain\" (ru) takes no body parameters (its body has no placeholders); got "
     "1"},
    {"a missing header parameter",
     "order_shipped",
     "ru",
     {P("a"), P("b")},
     2,
     {},
     0,
     NULL,
     {{0, "x"}},
     1,
     PL_TEMPLATE_PARAMS,
     "template \"order_shipped\" (ru): header expects 1 parameter, got 0"},
    {"two header parameters",
     "order_shipped",
     "ru",
     {P("a"), P("b")},
     2,
     {P("x"), P("y")},
     2,
     NULL,
     {{0, "x"}},
     1,
     PL_TEMPLATE_PARAMS,
     "template \"order_shipped\" (ru): header expects 1 parameter, got 2"},
    {"a header parameter without a header",
     "order_shipped",
     "uk",
     {P("a"), P("b")},
     2,
     {P("x")},
     1,
     NULL,
     {},
     0,
     PL_TEMPLATE_PARAMS,
     "template \"order_shipped\" (uk) has no header; it takes no header parameter"},
    {"a media link without a header",
     "order_shipped",
     "uk",
     {P("a"), P("b")},
     2,
     {},
     0,
     "https://x.example/a.jpg",
     {},
     0,
     PL_TEMPLATE_PARAMS,
     "template \"order_shipped\" (uk) has no header; it takes no header media link"},
    {"a media link for a TEXT header",
     "order_shipped",
     "ru",
     {P("a"), P("b")},
     2,
     {P("x")},
     1,
     "https://x.example/a.jpg",
     {{0, "x"}},
     1,
     PL_TEMPLATE_PARAMS,
     "template \"order_shipped\" (ru) has a TEXT header; it takes a header parameter, not a media "
     "link"},
    {"an image header without a link",
     "promo_image",
     "ru",
     {P("20%")},
     1,
     {},
     0,
     NULL,
     {},
     0,
     PL_TEMPLATE_PARAMS,
     "template \"promo_image\" (ru) has an IMAGE header; a link to the image (absolute http(s) "
     "URL) is required"},
    {"a video header without a link",
     "tour_video",
     "es",
     {},
     0,
     {},
     0,
     NULL,
     {},
     0,
     PL_TEMPLATE_PARAMS,
     "template \"tour_video\" (es) has a VIDEO header; a link to the video (absolute http(s) URL) "
     "is required"},
    {"text parameters for an image header",
     "promo_image",
     "ru",
     {P("20%")},
     1,
     {P("x")},
     1,
     "https://x.example/a.jpg",
     {},
     0,
     PL_TEMPLATE_PARAMS,
     "template \"promo_image\" (ru) has an IMAGE header; it takes a link to the image, not text "
     "parameters"},
    {"a LOCATION header",
     "store_location",
     "ru",
     {},
     0,
     {},
     0,
     NULL,
     {},
     0,
     PL_TEMPLATE_PARAMS,
     "LOCATION header"},
    {"a missing URL suffix",
     "order_shipped",
     "ru",
     {P("a"), P("b")},
     2,
     {P("x")},
     1,
     NULL,
     {{1, "thanks"}},
     1,
     PL_TEMPLATE_PARAMS,
     "button 0 of \"order_shipped\" (ru) is a URL button ending in {{1}} "
     "(\"https://shop.example.com/track/{{1}}\"); give its suffix"},
    {"a NULL URL suffix is missing too",
     "coupon",
     "en",
     {P("20%")},
     1,
     {},
     0,
     NULL,
     {{0, "C"}, {1, NULL}},
     2,
     PL_TEMPLATE_PARAMS,
     "button 1 of \"coupon\" (en) is a URL button ending in {{1}} "
     "(\"https://shop.example.com/?ref={{1}}\"); give its suffix"},
    {"a missing code to copy",
     "coupon",
     "en",
     {P("20%")},
     1,
     {},
     0,
     NULL,
     {{1, "spring"}},
     1,
     PL_TEMPLATE_PARAMS,
     "button 0 of \"coupon\" (en) is a COPY_CODE button; give the code to copy"},
    {"a button index given twice",
     "order_shipped",
     "ru",
     {P("a"), P("b")},
     2,
     {P("x")},
     1,
     NULL,
     {{0, "a"}, {0, "b"}},
     2,
     PL_TEMPLATE_PARAMS,
     "button 0 of \"order_shipped\" (ru) is given twice"},

    /* template_param_format */
    {"a newline",
     "order_shipped",
     "uk",
     {P("Ан\nна"), P("b")},
     2,
     {},
     0,
     NULL,
     {},
     0,
     PL_TEMPLATE_PARAM_FORMAT,
     "template \"order_shipped\" (uk): parameter 1 (\"Ан\\nна\") contains a newline; WhatsApp "
     "forbids newlines and tabs in parameters"},
    {"a tab",
     "order_shipped",
     "uk",
     {P("a"), P("b\tc")},
     2,
     {},
     0,
     NULL,
     {},
     0,
     PL_TEMPLATE_PARAM_FORMAT,
     "parameter 2 (\"b\\tc\") contains a tab"},
    {"5 consecutive spaces",
     "order_shipped",
     "uk",
     {P("a     b"), P("c")},
     2,
     {},
     0,
     NULL,
     {},
     0,
     PL_TEMPLATE_PARAM_FORMAT,
     "has 5 consecutive spaces; WhatsApp allows at most 4"},
    {"an empty parameter",
     "order_shipped",
     "uk",
     {P(""), P("c")},
     2,
     {},
     0,
     NULL,
     {},
     0,
     PL_TEMPLATE_PARAM_FORMAT,
     "template \"order_shipped\" (uk): parameter 1 is empty; WhatsApp rejects empty parameters"},
    {"a blank parameter",
     "order_shipped",
     "uk",
     {P("a"), P("   ")},
     2,
     {},
     0,
     NULL,
     {},
     0,
     PL_TEMPLATE_PARAM_FORMAT,
     "is blank"},
    {"a 1025-character body parameter",
     "order_shipped",
     "uk",
     {P(body1025), P("c")},
     2,
     {},
     0,
     NULL,
     {},
     0,
     PL_TEMPLATE_PARAM_FORMAT,
     "template \"order_shipped\" (uk): parameter 1 is 1025 characters; WhatsApp allows 1024 in "
     "the body"},
    {"a 61-character header parameter",
     "order_shipped",
     "ru",
     {P("a"), P("b")},
     2,
     {P(hdr61)},
     1,
     NULL,
     {{0, "x"}},
     1,
     PL_TEMPLATE_PARAM_FORMAT,
     "parameter 1 is 61 characters; WhatsApp allows 60 in the header"},
    {"a named parameter with a newline",
     "welcome_named",
     "en_US",
     {N("code", "1\n2"), N("first_name", "A")},
     2,
     {N("first_name", "A")},
     1,
     NULL,
     {},
     0,
     PL_TEMPLATE_PARAM_FORMAT,
     "parameter \"code\" (\"1\\n2\") contains a newline"},
    {"an empty quick-reply payload",
     "order_shipped",
     "ru",
     {P("a"), P("b")},
     2,
     {P("x")},
     1,
     NULL,
     {{0, "x"}, {1, ""}},
     2,
     PL_TEMPLATE_PARAM_FORMAT,
     "button 1 of \"order_shipped\" (ru) is a QUICK_REPLY: its value is a payload (what the press "
     "reports back) and cannot be empty"},
    {"an empty URL suffix",
     "order_shipped",
     "ru",
     {P("a"), P("b")},
     2,
     {P("x")},
     1,
     NULL,
     {{0, ""}},
     1,
     PL_TEMPLATE_PARAM_FORMAT,
     "button 0 of \"order_shipped\" (ru): the URL suffix for {{1}} is empty"},
    {"a URL suffix with a space",
     "order_shipped",
     "ru",
     {P("a"), P("b")},
     2,
     {P("x")},
     1,
     NULL,
     {{0, "A 1042"}},
     1,
     PL_TEMPLATE_PARAM_FORMAT,
     "button 0 of \"order_shipped\" (ru): the URL suffix \"A 1042\" contains a space or control "
     "character; percent-encode it"},
    {"a URL over 2000 characters with its suffix",
     "order_shipped",
     "ru",
     {P("a"), P("b")},
     2,
     {P("x")},
     1,
     NULL,
     {{0, suffix1976}},
     1,
     PL_TEMPLATE_PARAM_FORMAT,
     "button 0 of \"order_shipped\" (ru): with its suffix the URL is 2001 characters; WhatsApp "
     "allows 2000"},
    {"an empty code to copy",
     "coupon",
     "en",
     {P("20%")},
     1,
     {},
     0,
     NULL,
     {{0, ""}, {1, "s"}},
     2,
     PL_TEMPLATE_PARAM_FORMAT,
     "is a COPY_CODE: its value is the code to copy and cannot be empty"},
    {"invalid UTF-8 in a body parameter",
     "order_shipped",
     "uk",
     {P("a\xFF"), P("b")},
     2,
     {},
     0,
     NULL,
     {},
     0,
     PL_BAD_UTF8,
     "parameter 1 is not valid UTF-8"},

    /* unregistered_buttons */
    {"an index past the template's buttons",
     "order_shipped",
     "ru",
     {P("a"), P("b")},
     2,
     {P("x")},
     1,
     NULL,
     {{0, "x"}, {3, "y"}},
     2,
     PL_UNREGISTERED_BUTTONS,
     "template \"order_shipped\" (ru) has 2 buttons; no button at index 3"},
    {"a negative index",
     "order_shipped",
     "ru",
     {P("a"), P("b")},
     2,
     {P("x")},
     1,
     NULL,
     {{-1, "y"}},
     1,
     PL_UNREGISTERED_BUTTONS,
     "template \"order_shipped\" (ru) has 2 buttons; no button at index -1"},
    {"a button for a template without buttons",
     "hello_plain",
     "ru",
     {},
     0,
     {},
     0,
     NULL,
     {{0, "x"}},
     1,
     PL_UNREGISTERED_BUTTONS,
     "template \"hello_plain\" (ru) has no buttons; no button at index 0"},
    {"a value for a static URL button",
     "promo_image",
     "ru",
     {P("20%")},
     1,
     {},
     0,
     "https://x.example/a.jpg",
     {{2, "x"}},
     1,
     PL_UNREGISTERED_BUTTONS,
     "button 2 of \"promo_image\" (ru) is a static URL button (\"https://shop.example.com/sale\"); "
     "it takes no value"},
    {"a value for a phone button",
     "promo_image",
     "ru",
     {P("20%")},
     1,
     {},
     0,
     "https://x.example/a.jpg",
     {{3, "+7999"}},
     1,
     PL_UNREGISTERED_BUTTONS,
     "button 3 of \"promo_image\" (ru) is a PHONE_NUMBER button (\"+78124381678\"); it takes no "
     "value"},
    {"a value for a button of another kind",
     "auth_code",
     "en",
     {P("123456")},
     1,
     {},
     0,
     NULL,
     {{0, "123456"}},
     1,
     PL_UNREGISTERED_BUTTONS,
     "button 0 of \"auth_code\" (en) is of a kind Parley sends no values for"},

    /* media_invalid */
    {"an ftp header link",
     "promo_image",
     "ru",
     {P("20%")},
     1,
     {},
     0,
     "ftp://x.example/a.jpg",
     {},
     0,
     PL_MEDIA_INVALID,
     "template \"promo_image\" (ru): header image link \"ftp://x.example/a.jpg\" is not an "
     "absolute http(s) URL"},
    {"a relative header link",
     "invoice_doc",
     "en",
     {P("1")},
     1,
     {},
     0,
     "/files/inv.pdf",
     {},
     0,
     PL_MEDIA_INVALID,
     "header document link \"/files/inv.pdf\" is not an absolute http(s) URL"},
    {"a header link without a host",
     "tour_video",
     "es",
     {},
     0,
     {},
     0,
     "https:///t.mp4",
     {},
     0,
     PL_MEDIA_INVALID,
     "is not an absolute http(s) URL (it has no host)"},
    {"a header link with a space",
     "tour_video",
     "es",
     {},
     0,
     {},
     0,
     "https://v.example/a b.mp4",
     {},
     0,
     PL_MEDIA_INVALID,
     "(it contains a space or control character)"},
};

static void build_strings(void)
{
    size_t static_len = strlen("https://shop.example.com/track/");

    memset(body1024, 'a', 1024);
    memset(body1025, 'a', 1025);
    memset(hdr60, 'h', 60);
    memset(hdr61, 'h', 61);
    memset(suffix1975, 's', 2000 - static_len);
    memset(suffix1976, 's', 2001 - static_len);
}

static void test_check(void)
{
    struct pl_templates *t = load_registry(NULL, NULL);

    for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++) {
        const struct check_case *c = &checks[i];
        struct pl_tpl_send send = {
            .name = c->name,
            .language = c->lang,
            .body = c->nbody > 0 ? c->body : NULL,
            .nbody = c->nbody,
            .header = c->nheader > 0 ? c->header : NULL,
            .nheader = c->nheader,
            .header_media_link = c->link,
            .buttons = c->nbuttons > 0 ? c->buttons : NULL,
            .nbuttons = c->nbuttons,
        };
        const struct pl_template *tpl = (const struct pl_template *)&send;
        struct pl_verdict v;
        int rc = pl_templates_check(t, lim, &send, NOW0 + 1, &tpl, &v);
        UNIT_CASE(c->what);
        if (v.code != c->code)
            UNIT_FAIL("got %s: %s; want %s", pl_code_name(v.code), v.detail, pl_code_name(c->code));
        else
            unit_passed++;
        CHECK_INT(rc, c->code == PL_OK ? 0 : -1);
        if (c->code == PL_OK) {
            CHECK(tpl == pl_templates_find(t, c->name, c->lang));
            CHECK_STR(v.detail, "");
        } else {
            CHECK(tpl == NULL);
        }
        if (c->detail != NULL &&
            (strncmp(c->detail, "template", 8) == 0 || strncmp(c->detail, "button", 6) == 0))
            CHECK_STR(v.detail, c->detail);
        else if (c->detail != NULL)
            CHECK_CONTAINS(v.detail, c->detail);
    }
    {
        struct pl_tpl_send send = {.name = "hello_plain", .language = "ru"};
        struct pl_verdict v;
        UNIT_CASE("no registry: every name is unknown");
        CHECK_INT(pl_templates_check(NULL, lim, &send, NOW0, NULL, &v), -1);
        CHECK_STR(v.detail, "template \"hello_plain\" (ru): the channel has no templates registry");
        UNIT_CASE("a NULL verdict and result are allowed");
        CHECK_INT(pl_templates_check(t, lim, &send, NOW0, NULL, NULL), 0);
        send.name = NULL;
        CHECK_INT(pl_templates_check(t, lim, &send, NOW0, NULL, &v), -1);
        CHECK_INT(v.code, PL_UNKNOWN_TEMPLATE);
    }
    pl_templates_free(t);
}

/* ---- the Cloud API body ---- */

struct json_case {
    const char *what, *name, *lang, *to;
    struct pl_tpl_param body[3];
    size_t nbody;
    struct pl_tpl_param header[1];
    size_t nheader;
    const char *link;
    struct pl_tpl_button_value buttons[3];
    size_t nbuttons;
    const char *want;
};

static const struct json_case jsons[] = {
    {"text header, body and URL suffix; buttons sorted by index",
     "order_shipped",
     "ru",
     "79991234567",
     {P("Анна"), P("A-1042")},
     2,
     {P("A-1042")},
     1,
     NULL,
     {{1, "THANKS_A1042"}, {0, "A-1042"}},
     2,
     "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\",\"to\":"
     "\"79991234567\",\"type\":\"template\",\"template\":{\"name\":\"order_shipped\",\"language\":"
     "{\"code\":\"ru\"},\"components\":[{\"type\":\"header\",\"parameters\":[{\"type\":\"text\","
     "\"text\":\"A-1042\"}]},{\"type\":\"body\",\"parameters\":[{\"type\":\"text\",\"text\":"
     "\"Анна\"},{\"type\":\"text\",\"text\":\"A-1042\"}]},{\"type\":\"button\",\"sub_type\":"
     "\"url\",\"index\":\"0\",\"parameters\":[{\"type\":\"text\",\"text\":\"A-1042\"}]},{\"type\":"
     "\"button\",\"sub_type\":\"quick_reply\",\"index\":\"1\",\"parameters\":[{\"type\":"
     "\"payload\",\"payload\":\"THANKS_A1042\"}]}]}}"},
    {"named header and body carry parameter_name",
     "welcome_named",
     "en_US",
     "14155550100",
     {N("code", "W-77"), N("first_name", "Ann")},
     2,
     {N("first_name", "Ann")},
     1,
     NULL,
     {{0, "YES"}},
     1,
     "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\",\"to\":"
     "\"14155550100\",\"type\":\"template\",\"template\":{\"name\":\"welcome_named\","
     "\"language\":{\"code\":\"en_US\"},\"components\":[{\"type\":\"header\",\"parameters\":"
     "[{\"type\":\"text\",\"parameter_name\":\"first_name\",\"text\":\"Ann\"}]},{\"type\":"
     "\"body\",\"parameters\":[{\"type\":\"text\",\"parameter_name\":\"code\",\"text\":\"W-77\"},"
     "{\"type\":\"text\",\"parameter_name\":\"first_name\",\"text\":\"Ann\"}]},{\"type\":"
     "\"button\",\"sub_type\":\"quick_reply\",\"index\":\"0\",\"parameters\":[{\"type\":"
     "\"payload\",\"payload\":\"YES\"}]}]}}"},
    {"image header to a business-scoped user id",
     "promo_image",
     "ru",
     "US.13491208655302741918",
     {P("20%")},
     1,
     {},
     0,
     "https://cdn.example.com/sale.jpg",
     {{1, "NO_THANKS"}},
     1,
     "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\",\"recipient\":"
     "\"US.13491208655302741918\",\"type\":\"template\",\"template\":{\"name\":\"promo_image\","
     "\"language\":{\"code\":\"ru\"},\"components\":[{\"type\":\"header\",\"parameters\":[{"
     "\"type\":\"image\",\"image\":{\"link\":\"https://cdn.example.com/sale.jpg\"}}]},{\"type\":"
     "\"body\",\"parameters\":[{\"type\":\"text\",\"text\":\"20%\"}]},{\"type\":\"button\","
     "\"sub_type\":\"quick_reply\",\"index\":\"1\",\"parameters\":[{\"type\":\"payload\","
     "\"payload\":\"NO_THANKS\"}]}]}}"},
    {"no parameters: no components key",
     "hello_plain",
     "ru",
     "79991234567",
     {},
     0,
     {},
     0,
     NULL,
     {},
     0,
     "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\",\"to\":"
     "\"79991234567\",\"type\":\"template\",\"template\":{\"name\":\"hello_plain\",\"language\":"
     "{\"code\":\"ru\"}}}"},
    {"document header and body",
     "invoice_doc",
     "en",
     "79991234567",
     {P("INV-7")},
     1,
     {},
     0,
     "https://files.example.com/inv-7.pdf",
     {},
     0,
     "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\",\"to\":"
     "\"79991234567\",\"type\":\"template\",\"template\":{\"name\":\"invoice_doc\",\"language\":"
     "{\"code\":\"en\"},\"components\":[{\"type\":\"header\",\"parameters\":[{\"type\":"
     "\"document\",\"document\":{\"link\":\"https://files.example.com/inv-7.pdf\"}}]},{\"type\":"
     "\"body\",\"parameters\":[{\"type\":\"text\",\"text\":\"INV-7\"}]}]}}"},
    {"video header only",
     "tour_video",
     "es",
     "5491155550000",
     {},
     0,
     {},
     0,
     "https://v.example.com/t.mp4",
     {},
     0,
     "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\",\"to\":"
     "\"5491155550000\",\"type\":\"template\",\"template\":{\"name\":\"tour_video\",\"language\":"
     "{\"code\":\"es\"},\"components\":[{\"type\":\"header\",\"parameters\":[{\"type\":\"video\","
     "\"video\":{\"link\":\"https://v.example.com/t.mp4\"}}]}]}}"},
    {"copy code and URL suffix",
     "coupon",
     "en",
     "14155550100",
     {P("20%")},
     1,
     {},
     0,
     NULL,
     {{1, "spring"}, {0, "SAVE20"}},
     2,
     "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\",\"to\":"
     "\"14155550100\",\"type\":\"template\",\"template\":{\"name\":\"coupon\",\"language\":"
     "{\"code\":\"en\"},\"components\":[{\"type\":\"body\",\"parameters\":[{\"type\":\"text\","
     "\"text\":\"20%\"}]},{\"type\":\"button\",\"sub_type\":\"copy_code\",\"index\":\"0\","
     "\"parameters\":[{\"type\":\"coupon_code\",\"coupon_code\":\"SAVE20\"}]},{\"type\":"
     "\"button\",\"sub_type\":\"url\",\"index\":\"1\",\"parameters\":[{\"type\":\"text\","
     "\"text\":\"spring\"}]}]}}"},
    {"a quick reply without a payload sends no button component",
     "welcome_named",
     "en_US",
     "14155550100",
     {N("first_name", "Ann"), N("code", "W")},
     2,
     {N("first_name", "Ann")},
     1,
     NULL,
     {{1, NULL}},
     1,
     "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\",\"to\":"
     "\"14155550100\",\"type\":\"template\",\"template\":{\"name\":\"welcome_named\","
     "\"language\":{\"code\":\"en_US\"},\"components\":[{\"type\":\"header\",\"parameters\":"
     "[{\"type\":\"text\",\"parameter_name\":\"first_name\",\"text\":\"Ann\"}]},{\"type\":"
     "\"body\",\"parameters\":[{\"type\":\"text\",\"parameter_name\":\"first_name\",\"text\":"
     "\"Ann\"},{\"type\":\"text\",\"parameter_name\":\"code\",\"text\":\"W\"}]}]}}"},
};

static void test_json(void)
{
    struct pl_templates *t = load_registry(NULL, NULL);

    for (size_t i = 0; i < sizeof jsons / sizeof jsons[0]; i++) {
        const struct json_case *c = &jsons[i];
        struct pl_tpl_send send = {
            .name = c->name,
            .language = c->lang,
            .body = c->nbody > 0 ? c->body : NULL,
            .nbody = c->nbody,
            .header = c->nheader > 0 ? c->header : NULL,
            .nheader = c->nheader,
            .header_media_link = c->link,
            .buttons = c->nbuttons > 0 ? c->buttons : NULL,
            .nbuttons = c->nbuttons,
        };
        const struct pl_template *tpl = NULL;
        struct pl_verdict v;
        struct pl_error err = {{0}, {0}};
        char *got;
        json_t *g, *w;
        UNIT_CASE(c->what);
        if (pl_templates_check(t, lim, &send, NOW0, &tpl, &v) != 0) {
            UNIT_FAIL("the send does not pass the check: %s: %s", pl_code_name(v.code), v.detail);
            continue;
        }
        got = pl_outbound_template_json(tpl, &send, c->to, &err);
        CHECK(got != NULL);
        if (got == NULL)
            continue;
        g = json_loads(got, 0, NULL);
        w = json_loads(c->want, 0, NULL);
        CHECK(w != NULL);
        if (g != NULL && w != NULL && json_equal(g, w))
            unit_passed++;
        else
            UNIT_FAIL("JSON differs\n  got:  %s\n  want: %s", got, c->want);
        /* the key order is stable too: compact output equals the expected text */
        CHECK_STR(got, c->want);
        json_decref(g);
        json_decref(w);
        free(got);
    }
    {
        struct pl_error err = {{0}, {0}};
        UNIT_CASE("NULL arguments are an error, not a crash");
        CHECK(pl_outbound_template_json(NULL, NULL, "1", &err) == NULL);
        CHECK(err.msg[0] != '\0');
    }
    pl_templates_free(t);
}

int main(void)
{
    lim = pl_rules_limits("cloud-api");
    build_strings();
    test_load();
    test_bare_array();
    test_shapes();
    test_bad_files();
    test_find();
    test_large();
    test_status();
    test_each_status();
    test_check();
    test_json();
    return unit_report("templates");
}
