/* test_outbound.c - the Cloud API request bodies pl_outbound_message_json writes: one row per
 * message shape, each compared byte for byte with the body Meta's documentation shows, and each
 * checked to be exactly what jansson's compact dump of the same document gives. */
#include <jansson.h>
#include <stdlib.h>

#include "outbound.h"
#include "rules.h"
#include "unit.h"

static const struct pl_button replies[] = {
    {PL_BUTTON_REPLY, "operator", "Оператор", NULL, NULL},
    {PL_BUTTON_REPLY, NULL, "Тарифы", NULL, NULL},
};
static const struct pl_button url_only[] = {
    {PL_BUTTON_URL, NULL, "Открыть сайт", "https://example.com/a?b=1&c=\"2\"", NULL},
};
static const struct pl_button url_and_call[] = {
    {PL_BUTTON_URL, NULL, "Сайт", "https://example.com", NULL},
    {PL_BUTTON_CALL, NULL, "Позвонить", NULL, "+7 (812) 438-16-78"},
};
static const struct pl_list_row rows_a[] = {
    {"osago", "ОСАГО", "Обязательное"},
    {"kasko", "КАСКО", NULL},
};
static const struct pl_list_section sections[] = {
    {"Авто", rows_a, 2},
    {NULL, rows_a + 1, 1},
};
static const struct pl_list list = {"Выбрать", sections, 2};

static const struct body_case {
    const char *name;
    const char *to;
    struct pl_message m;
    const char *kind, *want;
} cases[] = {
    {"plain text",
     "79991234567",
     {.text = "Здравствуйте!"},
     "text",
     "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\",\"to\":\"79991234567\","
     "\"type\":\"text\",\"text\":{\"body\":\"Здравствуйте!\"}}"},
    {"escapes: quote, backslash, controls; emoji and U+2028 stay raw",
     "79991234567",
     {.text = "a\"b\\c\nd\te\r\b\f\x01\x1f\x7f 😀 \xe2\x80\xa8/"},
     "text",
     "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\",\"to\":\"79991234567\","
     "\"type\":\"text\",\"text\":{\"body\":\"a\\\"b\\\\c\\nd\\te\\r\\b\\f\\u0001\\u001F\x7f 😀 "
     "\xe2\x80\xa8/\"}}"},
    {"link preview",
     "79991234567",
     {.text = "https://example.com", .preview_url = 1},
     "text",
     "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\",\"to\":\"79991234567\","
     "\"type\":\"text\",\"text\":{\"body\":\"https://example.com\",\"preview_url\":true}}"},
    {"business-scoped user id goes in recipient",
     "US.13491208655302741918",
     {.text = "hi"},
     "text",
     "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\","
     "\"recipient\":\"US.13491208655302741918\",\"type\":\"text\",\"text\":{\"body\":\"hi\"}}"},
    {"image: the text is the caption",
     "79991234567",
     {.text = "Ваш полис", .media = {PL_MEDIA_IMAGE, "https://example.com/p.png", NULL, NULL}},
     "image",
     "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\",\"to\":\"79991234567\","
     "\"type\":\"image\",\"image\":{\"link\":\"https://example.com/p.png\",\"caption\":\"Ваш "
     "полис\"}}"},
    {"document with its own caption and a file name",
     "79991234567",
     {.text = "ignored",
      .media = {PL_MEDIA_DOCUMENT, "https://example.com/p.pdf", "Полис", "polis.pdf"}},
     "document",
     "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\",\"to\":\"79991234567\","
     "\"type\":\"document\",\"document\":{\"link\":\"https://example.com/p.pdf\",\"caption\":"
     "\"Полис\",\"filename\":\"polis.pdf\"}}"},
    {"media without any caption",
     "79991234567",
     {.media = {PL_MEDIA_IMAGE, "https://example.com/p.png", NULL, NULL}},
     "image",
     "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\",\"to\":\"79991234567\","
     "\"type\":\"image\",\"image\":{\"link\":\"https://example.com/p.png\"}}"},
    {"quick replies with a text header and a footer; an id defaults to the title",
     "79991234567",
     {.text = "Чем помочь?",
      .header = "Страховка",
      .footer = "Ответим за минуту",
      .buttons = replies,
      .nbuttons = 2},
     "interactive",
     "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\",\"to\":\"79991234567\","
     "\"type\":\"interactive\",\"interactive\":{\"type\":\"button\",\"header\":{\"type\":\"text\","
     "\"text\":\"Страховка\"},\"body\":{\"text\":\"Чем помочь?\"},\"footer\":{\"text\":\"Ответим "
     "за минуту\"},\"action\":{\"buttons\":[{\"type\":\"reply\",\"reply\":{\"id\":\"operator\","
     "\"title\":\"Оператор\"}},{\"type\":\"reply\",\"reply\":{\"id\":\"Тарифы\",\"title\":"
     "\"Тарифы\"}}]}}}"},
    {"quick replies under an image header: the caption is the body",
     "79991234567",
     {.buttons = replies,
      .nbuttons = 1,
      .media = {PL_MEDIA_IMAGE, "https://example.com/p.png", "Полис готов", NULL}},
     "interactive",
     "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\",\"to\":\"79991234567\","
     "\"type\":\"interactive\",\"interactive\":{\"type\":\"button\",\"header\":{\"type\":\"image\","
     "\"image\":{\"link\":\"https://example.com/p.png\"}},\"body\":{\"text\":\"Полис готов\"},"
     "\"action\":{\"buttons\":[{\"type\":\"reply\",\"reply\":{\"id\":\"operator\",\"title\":"
     "\"Оператор\"}}]}}}"},
    {"list: section titles and descriptions only where given",
     "79991234567",
     {.text = "Что оформить?", .list = &list},
     "interactive",
     "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\",\"to\":\"79991234567\","
     "\"type\":\"interactive\",\"interactive\":{\"type\":\"list\",\"body\":{\"text\":\"Что "
     "оформить?\"},\"action\":{\"button\":\"Выбрать\",\"sections\":[{\"title\":\"Авто\",\"rows\":"
     "[{\"id\":\"osago\",\"title\":\"ОСАГО\",\"description\":\"Обязательное\"},{\"id\":\"kasko\","
     "\"title\":\"КАСКО\"}]},{\"rows\":[{\"id\":\"kasko\",\"title\":\"КАСКО\"}]}]}}}"},
    {"one URL button is cta_url",
     "79991234567",
     {.text = "Подробнее на сайте", .buttons = url_only, .nbuttons = 1},
     "interactive",
     "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\",\"to\":\"79991234567\","
     "\"type\":\"interactive\",\"interactive\":{\"type\":\"cta_url\",\"body\":{\"text\":"
     "\"Подробнее на сайте\"},\"action\":{\"name\":\"cta_url\",\"parameters\":{\"display_text\":"
     "\"Открыть сайт\",\"url\":\"https://example.com/a?b=1&c=\\\"2\\\"\"}}}}"},
    {"URL and call buttons: Parley's cta, the phone normalised",
     "79991234567",
     {.text = "Свяжитесь с нами", .buttons = url_and_call, .nbuttons = 2},
     "interactive",
     "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\",\"to\":\"79991234567\","
     "\"type\":\"interactive\",\"interactive\":{\"type\":\"cta\",\"body\":{\"text\":\"Свяжитесь с "
     "нами\"},\"action\":{\"name\":\"cta\",\"buttons\":[{\"type\":\"url\",\"display_text\":"
     "\"Сайт\",\"url\":\"https://example.com\"},{\"type\":\"call\",\"display_text\":"
     "\"Позвонить\",\"phone_number\":\"+78124381678\"}]}}}"},
};

/* The body must be what jansson's compact, order-preserving dump of the same document gives. */
static void check_like_jansson(const char *body)
{
    json_error_t e;
    json_t *doc = json_loads(body, 0, &e);
    char *again = doc != NULL ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    if (doc == NULL)
        UNIT_FAIL("not JSON: %s (%s)", body, e.text);
    else
        CHECK_STR(again, body);
    free(again);
    json_decref(doc);
}

static void test_bodies(void)
{
    const struct pl_limits *lim = pl_rules_limits("sandbox");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct body_case *c = &cases[i];
        struct pl_error err = {0};
        const char *kind = NULL;
        UNIT_CASE(c->name);
        char *body = pl_outbound_message_json(lim, &c->m, c->to, &kind, &err);
        CHECK_STR(body, c->want);
        CHECK_STR(kind, c->kind);
        if (body != NULL)
            check_like_jansson(body);
        free(body);
    }
}

static void test_no_body(void)
{
    struct pl_message m = {0};
    struct pl_error err = {0};
    const char *kind = NULL;
    UNIT_CASE("a text message without text is refused, not written half");
    char *body =
        pl_outbound_message_json(pl_rules_limits("sandbox"), &m, "79991234567", &kind, &err);
    CHECK(body == NULL);
    CHECK_STR(err.code, "text_empty");
    free(body);
}

int main(void)
{
    test_bodies();
    test_no_body();
    return unit_report("outbound");
}
