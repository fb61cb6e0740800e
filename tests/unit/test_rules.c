/* test_rules.c - the send gate as tables: session messages, phone numbers, the window, template
 * definitions, template parameters and statuses. Each row names the behaviour it proves; a failing
 * row prints the code and detail it got. Long boundary strings are built in main(). */
#include "rules.h"
#include "unit.h"
#include "utf8.h"

#include <stdint.h>
#include <stdlib.h>

/* ---- boundary strings, filled by build_strings() ---- */

static char a20[21], a21[22], a60[61], a61[62], cyr60[121], a1024[1025], a1025[1026];
static char a4096[4097], a4097[4098], cyr4096[8193], cyr4097[8195], cyr1024[2049];
static char id256[257], id257[258], a24[25], a25[26], cyr24[49], a72[73], a73[74];
static char a200[201], a201[202], a45cyr[91], emoji20[81], emoji21[85], comb20[61], comb21[62];
static char family4[100], family4x[101], a512[513], a513[514];
static char body1024[1100], body1025[1100], url2000[2100], url2001[2100], cyr25[51], a26[27];
static char hdr60[61], hdr61[62], flags10[81], flags10x[82], hearts10[61], hearts10x[62];

/* Write prefix, then unit n times, then suffix into buf. */
static char *fill(char *buf, size_t bufsz, const char *prefix, const char *unit, int n,
                  const char *suffix)
{
    size_t o = 0, ul = strlen(unit);

    buf[0] = '\0';
    o = (size_t)snprintf(buf, bufsz, "%s", prefix);
    for (int i = 0; i < n && o + ul < bufsz; i++, o += ul)
        memcpy(buf + o, unit, ul);
    buf[o] = '\0';
    snprintf(buf + o, bufsz - o, "%s", suffix);
    return buf;
}

#define FILL(buf, prefix, unit, n, suffix) fill((buf), sizeof(buf), (prefix), (unit), (n), (suffix))

#define FAMILY                                                                         \
    "\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7" /* 5 cp \
                                                                                */
#define ACUTE_E "\xD0\xB5\xCC\x81" /* Cyrillic е + U+0301: 2 cp */

static void build_strings(void)
{
    FILL(a20, "", "a", 20, "");
    FILL(a21, "", "a", 21, "");
    FILL(a60, "", "a", 60, "");
    FILL(a61, "", "a", 61, "");
    FILL(cyr60, "", "ж", 60, "");
    FILL(a1024, "", "a", 1024, "");
    FILL(a1025, "", "a", 1025, "");
    FILL(a4096, "", "a", 4096, "");
    FILL(a4097, "", "a", 4097, "");
    FILL(cyr4096, "", "ж", 4096, "");
    FILL(cyr4097, "", "ж", 4097, "");
    FILL(cyr1024, "", "ж", 1024, "");
    FILL(id256, "", "i", 256, "");
    FILL(id257, "", "i", 257, "");
    FILL(a24, "", "a", 24, "");
    FILL(a25, "", "a", 25, "");
    FILL(cyr24, "", "ж", 24, "");
    FILL(a72, "", "d", 72, "");
    FILL(a73, "", "d", 73, "");
    FILL(a200, "", "r", 200, "");
    FILL(a201, "", "r", 201, "");
    FILL(a45cyr, "", "ю", 45, "");
    FILL(emoji20, "", "\xF0\x9F\x98\x80", 20, "");
    FILL(emoji21, "", "\xF0\x9F\x98\x80", 21, "");
    FILL(comb20, "", ACUTE_E, 10, "");
    FILL(comb21, "", ACUTE_E, 10, "a");
    FILL(family4, "", FAMILY, 4, "");
    FILL(family4x, "", FAMILY, 4, "!");
    FILL(a512, "", "n", 512, "");
    FILL(a513, "", "n", 513, "");
    FILL(body1024, "Hi {{1}}, ", "a", 1024 - 10, ""); /* "Hi {{1}}, " is 10 characters */
    FILL(body1025, "Hi {{1}}, ", "a", 1025 - 10, "");
    FILL(url2000, "https://example.com/", "p", 2000 - 20, "");
    FILL(url2001, "https://example.com/", "p", 2001 - 20, "");
    FILL(cyr25, "", "ж", 25, "");
    FILL(a26, "", "a", 26, "");
    FILL(hdr60, "Order {{1}} ", "h", 60 - 12, "");
    FILL(hdr61, "Order {{1}} ", "h", 61 - 12, "");
    FILL(flags10, "", "\xF0\x9F\x87\xB7\xF0\x9F\x87\xBA", 10, ""); /* 🇷🇺 is 2 code points */
    FILL(flags10x, "", "\xF0\x9F\x87\xB7\xF0\x9F\x87\xBA", 10, "!");
    FILL(hearts10, "", "\xE2\x9D\xA4\xEF\xB8\x8F", 10, ""); /* ❤️ is 2 code points */
    FILL(hearts10x, "", "\xE2\x9D\xA4\xEF\xB8\x8F", 10, "!");
}

/* ---- session messages ---- */

#define ARR(type, ...)  ((const type[]){__VA_ARGS__})
#define NARR(type, ...) (sizeof(ARR(type, __VA_ARGS__)) / sizeof(type))

#define BUTTONS(...) \
    .buttons = ARR(struct pl_button, __VA_ARGS__), .nbuttons = NARR(struct pl_button, __VA_ARGS__)
#define QR(title)                                  \
    {                                              \
        PL_BUTTON_REPLY, NULL, (title), NULL, NULL \
    }
#define QRID(id, title)                            \
    {                                              \
        PL_BUTTON_REPLY, (id), (title), NULL, NULL \
    }
#define URLB(title, url)                          \
    {                                             \
        PL_BUTTON_URL, NULL, (title), (url), NULL \
    }
#define CALL(title, phone)                           \
    {                                                \
        PL_BUTTON_CALL, NULL, (title), NULL, (phone) \
    }

#define ROW(id, title)      \
    {                       \
        (id), (title), NULL \
    }
#define ROWD(id, title, desc) \
    {                         \
        (id), (title), (desc) \
    }
#define SECTION(title, ...)                                                                  \
    {                                                                                        \
        (title), ARR(struct pl_list_row, __VA_ARGS__), NARR(struct pl_list_row, __VA_ARGS__) \
    }
#define LIST(button, ...)                                   \
    .list = &(const struct pl_list)                         \
    {                                                       \
        (button), ARR(struct pl_list_section, __VA_ARGS__), \
            NARR(struct pl_list_section, __VA_ARGS__)       \
    }
#define IMAGE(link) .media = {PL_MEDIA_IMAGE, (link), NULL, NULL}
#define ROWS10                                                                                    \
    ROW("r1", "One"), ROW("r2", "Two"), ROW("r3", "Three"), ROW("r4", "Four"), ROW("r5", "Five"), \
        ROW("r6", "Six"), ROW("r7", "Seven"), ROW("r8", "Eight"), ROW("r9", "Nine"),              \
        ROW("r10", "Ten")
#define SEC1(n) SECTION("S" #n, ROW("r" #n, "Row " #n))

struct msg_case {
    const char *name;
    const char *provider; /* NULL: cloud-api */
    struct pl_message m;
    enum pl_code code;
    const char *detail; /* a substring the detail must hold; NULL for PL_OK */
};

static const struct msg_case msg_cases[] = {
    /* UTF-8: every string field is checked and the detail names field and byte offset */
    {"utf8: overlong slash in text",
     NULL,
     {.text = "\xC0\xAF"},
     PL_BAD_UTF8,
     "text is not valid UTF-8 (byte 0xC0 at offset 0)"},
    {"utf8: lone continuation byte", NULL, {.text = "ab\x80"}, PL_BAD_UTF8, "at offset 2"},
    {"utf8: truncated 2-byte sequence at the end",
     NULL,
     {.text = "Да\xD0"},
     PL_BAD_UTF8,
     "byte 0xD0 at offset 4"},
    {"utf8: encoded surrogate U+D800",
     NULL,
     {.text = "x\xED\xA0\x80"},
     PL_BAD_UTF8,
     "byte 0xED at offset 1"},
    {"utf8: above U+10FFFF", NULL, {.text = "\xF4\x90\x80\x80"}, PL_BAD_UTF8, "text is not valid"},
    {"utf8: 5-byte lead", NULL, {.text = "\xF8\x88\x80\x80\x80"}, PL_BAD_UTF8, "byte 0xF8"},
    {"utf8: overlong 3-byte NUL", NULL, {.text = "a\xE0\x80\x80"}, PL_BAD_UTF8, "offset 1"},
    {"utf8: button title",
     NULL,
     {.text = "Hi", BUTTONS(QR("ok\xFF"))},
     PL_BAD_UTF8,
     "button 1 title is not valid UTF-8"},
    {"utf8: button id",
     NULL,
     {.text = "Hi", BUTTONS(QR("a"), QRID("\xC3", "b"))},
     PL_BAD_UTF8,
     "button 2 id is not valid UTF-8"},
    {"utf8: button url",
     NULL,
     {.text = "Hi", BUTTONS(URLB("Go", "https://x.ru/\xD0"))},
     PL_BAD_UTF8,
     "button 1 url is not valid UTF-8 (byte 0xD0 at offset 13)"},
    {"utf8: button phone",
     "sandbox",
     {.text = "Hi", BUTTONS(CALL("Call", "+7\x80"))},
     PL_BAD_UTF8,
     "button 1 phone is not valid UTF-8"},
    {"utf8: header",
     NULL,
     {.text = "Hi", .header = "\xE2\x82", BUTTONS(QR("a"))},
     PL_BAD_UTF8,
     "header is not valid UTF-8"},
    {"utf8: footer",
     NULL,
     {.text = "Hi", .footer = "\xFE", BUTTONS(QR("a"))},
     PL_BAD_UTF8,
     "footer is not valid UTF-8"},
    {"utf8: list button",
     NULL,
     {.text = "Hi", LIST("Pick\xC1\xBF", SECTION(NULL, ROW("a", "A")))},
     PL_BAD_UTF8,
     "list button is not valid UTF-8"},
    {"utf8: section title",
     NULL,
     {.text = "Hi", LIST("Pick", SECTION("\x80", ROW("a", "A")))},
     PL_BAD_UTF8,
     "section 1 title is not valid UTF-8"},
    {"utf8: row title",
     NULL,
     {.text = "Hi", LIST("Pick", SECTION(NULL, ROW("a", "A\xFF")))},
     PL_BAD_UTF8,
     "row 1 title is not valid UTF-8"},
    {"utf8: row description",
     NULL,
     {.text = "Hi", LIST("Pick", SECTION(NULL, ROW("a", "A"), ROWD("b", "B", "\xED\xBF\xBF")))},
     PL_BAD_UTF8,
     "row 2 description is not valid UTF-8"},
    {"utf8: row id in a two-section list names the section",
     NULL,
     {.text = "Hi", LIST("Pick", SECTION("One", ROW("a", "A")), SECTION("Two", ROW("\xFF", "B")))},
     PL_BAD_UTF8,
     "section 2 row 1 id is not valid UTF-8"},
    {"utf8: media link",
     NULL,
     {IMAGE("https://x.ru/\xFF.jpg")},
     PL_BAD_UTF8,
     "image link is not valid UTF-8"},
    {"utf8: media caption",
     NULL,
     {.media = {PL_MEDIA_IMAGE, "https://x.ru/a.jpg", "\xC0\x80", NULL}},
     PL_BAD_UTF8,
     "image caption is not valid UTF-8"},
    {"utf8: document filename",
     NULL,
     {.media = {PL_MEDIA_DOCUMENT, "https://x.ru/a.pdf", NULL, "a\xFF.pdf"}},
     PL_BAD_UTF8,
     "document filename is not valid UTF-8"},
    {"utf8: checked before every other rule",
     NULL,
     {.text = "\xFF", BUTTONS(QR("a"), QR("b"), QR("c"), QR("d"))},
     PL_BAD_UTF8,
     "text"},

    /* text */
    {"text: plain message passes", NULL, {.text = "Привет!"}, PL_OK, NULL},
    {"text: NULL", NULL, {.text = NULL}, PL_TEXT_EMPTY, "text is empty"},
    {"text: empty string", NULL, {.text = ""}, PL_TEXT_EMPTY, "text is empty"},
    {"text: spaces, tab and newline are blank",
     NULL,
     {.text = "  \t\n "},
     PL_TEXT_EMPTY,
     "text is empty"},
    {"text: no-break spaces are blank",
     NULL,
     {.text = "\xC2\xA0\xE3\x80\x80"},
     PL_TEXT_EMPTY,
     "text is empty"},
    {"text: 4096 characters pass", NULL, {.text = a4096}, PL_OK, NULL},
    {"text: 4097 characters fail",
     NULL,
     {.text = a4097},
     PL_TEXT_TOO_LONG,
     "text is 4097 characters; WhatsApp allows 4096"},
    {"text: 4096 Cyrillic letters (8192 bytes) pass", NULL, {.text = cyr4096}, PL_OK, NULL},
    {"text: 4097 Cyrillic letters fail",
     NULL,
     {.text = cyr4097},
     PL_TEXT_TOO_LONG,
     "text is 4097 characters"},
    {"text: 1024 with buttons passes", NULL, {.text = a1024, BUTTONS(QR("Да"))}, PL_OK, NULL},
    {"text: 1024 Cyrillic with buttons passes",
     NULL,
     {.text = cyr1024, BUTTONS(QR("Да"))},
     PL_OK,
     NULL},
    {"text: 1025 with buttons fails",
     NULL,
     {.text = a1025, BUTTONS(QR("Да"))},
     PL_TEXT_TOO_LONG,
     "text is 1025 characters; WhatsApp allows 1024 in a message with buttons"},
    {"text: 1025 with a URL button fails",
     NULL,
     {.text = a1025, BUTTONS(URLB("Open", "https://x.ru"))},
     PL_TEXT_TOO_LONG,
     "in a message with buttons"},
    {"text: 1024 in a list passes",
     NULL,
     {.text = a1024, LIST("Pick", SECTION(NULL, ROW("a", "A")))},
     PL_OK,
     NULL},
    {"text: 1025 in a list fails",
     NULL,
     {.text = a1025, LIST("Pick", SECTION(NULL, ROW("a", "A")))},
     PL_TEXT_TOO_LONG,
     "text is 1025 characters; WhatsApp allows 1024 in a list message"},
    {"text: buttons need a body",
     NULL,
     {.text = NULL, BUTTONS(QR("Да"))},
     PL_TEXT_EMPTY,
     "a message with buttons needs a body text"},
    {"text: a list needs a body",
     NULL,
     {.text = " ", LIST("Pick", SECTION(NULL, ROW("a", "A")))},
     PL_TEXT_EMPTY,
     "a list message needs a body text"},
    {"text: a bare image needs no text", NULL, {IMAGE("https://x.ru/a.jpg")}, PL_OK, NULL},
    {"text: an image with buttons needs a body",
     NULL,
     {IMAGE("https://x.ru/a.jpg"), BUTTONS(QR("Да"))},
     PL_TEXT_EMPTY,
     "needs a body text"},
    {"text: as an image caption, 1024 pass",
     NULL,
     {.text = a1024, IMAGE("https://x.ru/a.jpg")},
     PL_OK,
     NULL},
    {"text: as an image caption, 1025 fail",
     NULL,
     {.text = a1025, IMAGE("https://x.ru/a.jpg")},
     PL_TEXT_TOO_LONG,
     "text is 1025 characters; WhatsApp allows 1024 in a media caption"},

    /* header and footer */
    {"header: 60 characters pass",
     NULL,
     {.text = "Hi", .header = a60, BUTTONS(QR("a"))},
     PL_OK,
     NULL},
    {"header: 60 Cyrillic letters pass",
     NULL,
     {.text = "Hi", .header = cyr60, BUTTONS(QR("a"))},
     PL_OK,
     NULL},
    {"header: 61 characters fail",
     NULL,
     {.text = "Hi", .header = a61, BUTTONS(QR("a"))},
     PL_HEADER_TOO_LONG,
     "is 61 characters; WhatsApp allows 60"},
    {"header: a long value is quoted cut with an ellipsis",
     NULL,
     {.text = "Hi", .header = a61, BUTTONS(QR("a"))},
     PL_HEADER_TOO_LONG,
     "header \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xE2\x80\xA6\" is 61"},
    {"footer: 60 characters pass",
     NULL,
     {.text = "Hi", .footer = a60, BUTTONS(QR("a"))},
     PL_OK,
     NULL},
    {"footer: 61 characters fail",
     NULL,
     {.text = "Hi", .footer = a61, BUTTONS(QR("a"))},
     PL_FOOTER_TOO_LONG,
     "footer \""},
    {"header: in a list passes",
     NULL,
     {.text = "Hi", .header = "Menu", .footer = "Bye", LIST("Pick", SECTION(NULL, ROW("a", "A")))},
     PL_OK,
     NULL},
    {"header: a plain text message has no place for it",
     NULL,
     {.text = "Hi", .header = "Hello"},
     PL_UNSUPPORTED_BY_PROVIDER,
     "a header needs buttons or a list (an interactive message)"},
    {"footer: a plain text message has no place for it",
     NULL,
     {.text = "Hi", .footer = "Bye"},
     PL_UNSUPPORTED_BY_PROVIDER,
     "a footer needs buttons or a list"},
    {"footer: a bare image has no place for it",
     NULL,
     {.text = "Hi", .footer = "Bye", IMAGE("https://x.ru/a.jpg")},
     PL_UNSUPPORTED_BY_PROVIDER,
     "plain media message"},
    {"header: blank is refused",
     NULL,
     {.text = "Hi", .header = "  ", BUTTONS(QR("a"))},
     PL_TEXT_EMPTY,
     "header \"  \" is blank"},

    /* quick replies */
    {"buttons: three quick replies pass",
     NULL,
     {.text = "Ok?", BUTTONS(QR("Да"), QR("Нет"), QR("Не знаю"))},
     PL_OK,
     NULL},
    {"buttons: four quick replies fail",
     NULL,
     {.text = "Ok?", BUTTONS(QR("1"), QR("2"), QR("3"), QR("4"))},
     PL_TOO_MANY_QUICK_REPLIES,
     "4 quick replies; WhatsApp allows at most 3"},
    {"buttons: the count is checked before the labels",
     NULL,
     {.text = "Ok?", BUTTONS(QR(""), QR("2"), QR("3"), QR("4"))},
     PL_TOO_MANY_QUICK_REPLIES,
     "4 quick replies"},
    {"label: 20 Cyrillic letters pass",
     NULL,
     {.text = "Ok?", BUTTONS(QR("Перейти на сайт комп"))},
     PL_OK,
     NULL},
    {"label: 21 Cyrillic letters fail",
     NULL,
     {.text = "Ok?", BUTTONS(QR("Перейти на сайт компа"))},
     PL_LABEL_TOO_LONG,
     "button 1 \"Перейти на сайт компа\" is 21 characters; WhatsApp allows 20"},
    {"url: the URL count is checked before the labels",
     NULL,
     {.text = "Ok?",
      BUTTONS(URLB("Сайт", "https://x.ru"), URLB("Перейти на сайт компании", "https://y.ru"))},
     PL_TOO_MANY_URL_BUTTONS,
     "2 URL buttons"},
    {"label: URL button 24 characters (brief's example)",
     NULL,
     {.text = "Ok?", BUTTONS(URLB("Перейти на сайт компании", "https://x.ru"))},
     PL_LABEL_TOO_LONG,
     "button 1 \"Перейти на сайт компании\" is 24 characters; WhatsApp allows 20"},
    {"label: 20 ASCII pass", NULL, {.text = "Ok?", BUTTONS(QR(a20))}, PL_OK, NULL},
    {"label: 21 ASCII fail",
     NULL,
     {.text = "Ok?", BUTTONS(QR("x"), QR(a21))},
     PL_LABEL_TOO_LONG,
     "button 2 \"aaaaaaaaaaaaaaaaaaaaa\" is 21 characters"},
    {"label: 20 four-byte emoji pass", NULL, {.text = "Ok?", BUTTONS(QR(emoji20))}, PL_OK, NULL},
    {"label: 21 four-byte emoji fail",
     NULL,
     {.text = "Ok?", BUTTONS(QR(emoji21))},
     PL_LABEL_TOO_LONG,
     "is 21 characters"},
    {"label: combining marks count (10 x е+U+0301 = 20) pass",
     NULL,
     {.text = "Ok?", BUTTONS(QR(comb20))},
     PL_OK,
     NULL},
    {"label: combining marks count (21 code points) fail",
     NULL,
     {.text = "Ok?", BUTTONS(QR(comb21))},
     PL_LABEL_TOO_LONG,
     "is 21 characters"},
    {"label: ZWJ family is 5 code points, 4 families pass",
     NULL,
     {.text = "Ok?", BUTTONS(QR(family4))},
     PL_OK,
     NULL},
    {"label: 4 ZWJ families and ! are 21 and fail",
     NULL,
     {.text = "Ok?", BUTTONS(QR(family4x))},
     PL_LABEL_TOO_LONG,
     "is 21 characters"},
    {"label: 10 flags (2 code points each) pass",
     NULL,
     {.text = "Ok?", BUTTONS(QR(flags10))},
     PL_OK,
     NULL},
    {"label: 10 flags and ! fail",
     NULL,
     {.text = "Ok?", BUTTONS(QR(flags10x))},
     PL_LABEL_TOO_LONG,
     "is 21 characters"},
    {"label: 10 hearts with variation selectors pass",
     NULL,
     {.text = "Ok?", BUTTONS(QR(hearts10))},
     PL_OK,
     NULL},
    {"label: 10 hearts with variation selectors and ! fail",
     NULL,
     {.text = "Ok?", BUTTONS(QR(hearts10x))},
     PL_LABEL_TOO_LONG,
     "is 21 characters"},
    {"label: a very long label is quoted with an ellipsis",
     NULL,
     {.text = "Ok?", BUTTONS(QR(a45cyr))},
     PL_LABEL_TOO_LONG,
     "юююю\xE2\x80\xA6\" is 45 characters; WhatsApp allows 20"},
    {"label: NULL title",
     NULL,
     {.text = "Ok?", BUTTONS(QRID("x", NULL))},
     PL_LABEL_EMPTY,
     "button 1 has no label"},
    {"label: empty title",
     NULL,
     {.text = "Ok?", BUTTONS(QR("a"), QR(""))},
     PL_LABEL_EMPTY,
     "button 2"},
    {"label: blank title",
     NULL,
     {.text = "Ok?", BUTTONS(QR("   "))},
     PL_LABEL_EMPTY,
     "button 1 label \"   \" is blank"},
    {"label: zero-width space only is blank",
     NULL,
     {.text = "Ok?", BUTTONS(QR("\xE2\x80\x8B"))},
     PL_LABEL_EMPTY,
     "button 1 label \"\\u200B\" is blank"},
    {"label: URL button title empty",
     NULL,
     {.text = "Ok?", BUTTONS(URLB("", "https://x.ru"))},
     PL_LABEL_EMPTY,
     "button 1"},
    {"label: a tab in a label is quoted escaped",
     NULL,
     {.text = "Ok?", BUTTONS(QR("\t"))},
     PL_LABEL_EMPTY,
     "\"\\t\" is blank"},

    /* ids */
    {"id: 256 characters pass", NULL, {.text = "Ok?", BUTTONS(QRID(id256, "Да"))}, PL_OK, NULL},
    {"id: 257 characters fail",
     NULL,
     {.text = "Ok?", BUTTONS(QRID(id257, "Да"))},
     PL_BAD_ID,
     "is 257 characters; WhatsApp allows 256"},
    {"id: leading space",
     NULL,
     {.text = "Ok?", BUTTONS(QRID(" yes", "Да"))},
     PL_BAD_ID,
     "button 1 id \" yes\" has leading or trailing spaces"},
    {"id: trailing space",
     NULL,
     {.text = "Ok?", BUTTONS(QR("a"), QRID("yes ", "Да"))},
     PL_BAD_ID,
     "button 2 id \"yes \""},
    {"id: trailing no-break space",
     NULL,
     {.text = "Ok?", BUTTONS(QRID("yes\xC2\xA0", "Да"))},
     PL_BAD_ID,
     "id \"yes\\u00A0\" has leading or trailing spaces"},
    {"id: empty",
     NULL,
     {.text = "Ok?", BUTTONS(QRID("", "Да"))},
     PL_BAD_ID,
     "button 1 id is empty"},
    {"id: defaults to a title with an edge space",
     NULL,
     {.text = "Ok?", BUTTONS(QR(" Да"))},
     PL_BAD_ID,
     "(the id is the title when none is given)"},
    {"id: inner spaces are fine",
     NULL,
     {.text = "Ok?", BUTTONS(QRID("say yes", "Да"))},
     PL_OK,
     NULL},

    /* duplicates */
    {"duplicate: same title",
     NULL,
     {.text = "Ok?", BUTTONS(QR("Да"), QR("Нет"), QR("Да"))},
     PL_DUPLICATE_LABEL,
     "buttons 1 and 3 have the same title \"Да\""},
    {"duplicate: same title, different ids",
     NULL,
     {.text = "Ok?", BUTTONS(QRID("a", "Да"), QRID("b", "Да"))},
     PL_DUPLICATE_LABEL,
     "buttons 1 and 2 have the same title"},
    {"duplicate: same id, different titles",
     NULL,
     {.text = "Ok?", BUTTONS(QRID("x", "Да"), QRID("x", "Нет"))},
     PL_DUPLICATE_LABEL,
     "buttons 1 and 2 have the same id \"x\""},
    {"duplicate: explicit id equal to another button's title-id",
     NULL,
     {.text = "Ok?", BUTTONS(QR("yes"), QRID("yes", "Да"))},
     PL_DUPLICATE_LABEL,
     "have the same id \"yes\""},
    {"duplicate: case differs, so not a duplicate",
     NULL,
     {.text = "Ok?", BUTTONS(QR("Да"), QR("да"))},
     PL_OK,
     NULL},

    /* mixing and counts of URL / call buttons */
    {"mixed: quick reply and URL",
     NULL,
     {.text = "Ok?", BUTTONS(QR("Да"), URLB("Site", "https://x.ru"))},
     PL_MIXED_BUTTONS,
     "button 1 is a quick reply and button 2 a URL button"},
    {"mixed: call then quick reply",
     "sandbox",
     {.text = "Ok?", BUTTONS(CALL("Call", "+78124381678"), QR("Да"))},
     PL_MIXED_BUTTONS,
     "button 2 is a quick reply and button 1 a call button"},
    {"url: two URL buttons fail",
     NULL,
     {.text = "Ok?", BUTTONS(URLB("A", "https://a.ru"), URLB("B", "https://b.ru"))},
     PL_TOO_MANY_URL_BUTTONS,
     "2 URL buttons; WhatsApp allows at most 1"},
    {"call: two call buttons fail",
     "sandbox",
     {.text = "Ok?", BUTTONS(CALL("A", "+78124381678"), CALL("B", "+78124381679"))},
     PL_TOO_MANY_CALL_BUTTONS,
     "2 call buttons; WhatsApp allows at most 1"},

    /* URLs */
    {"url: https with path and query passes",
     NULL,
     {.text = "Ok?", BUTTONS(URLB("Site", "https://example.com/a?b=c#d"))},
     PL_OK,
     NULL},
    {"url: upper-case scheme passes",
     NULL,
     {.text = "Ok?", BUTTONS(URLB("Site", "HTTP://EXAMPLE.COM"))},
     PL_OK,
     NULL},
    {"url: IPv6 host and port pass",
     NULL,
     {.text = "Ok?", BUTTONS(URLB("Site", "https://[::1]:8080/x"))},
     PL_OK,
     NULL},
    {"url: Cyrillic host and path pass",
     NULL,
     {.text = "Ok?", BUTTONS(URLB("Сайт", "https://пример.рф/путь"))},
     PL_OK,
     NULL},
    {"url: ftp is refused",
     NULL,
     {.text = "Ok?", BUTTONS(URLB("Site", "ftp://x"))},
     PL_BAD_URL,
     "button 1 url \"ftp://x\" is not an absolute http(s) URL"},
    {"url: relative",
     NULL,
     {.text = "Ok?", BUTTONS(URLB("Site", "/path"))},
     PL_BAD_URL,
     "is not an absolute http(s) URL"},
    {"url: scheme-relative",
     NULL,
     {.text = "Ok?", BUTTONS(URLB("Site", "//x.ru"))},
     PL_BAD_URL,
     "is not an absolute"},
    {"url: no host",
     NULL,
     {.text = "Ok?", BUTTONS(URLB("Site", "https://"))},
     PL_BAD_URL,
     "(it has no host)"},
    {"url: empty host before the path",
     NULL,
     {.text = "Ok?", BUTTONS(URLB("Site", "https:///x"))},
     PL_BAD_URL,
     "(it has no host)"},
    {"url: userinfo and no host",
     NULL,
     {.text = "Ok?", BUTTONS(URLB("Site", "http://user@:80/"))},
     PL_BAD_URL,
     "(it has no host)"},
    {"url: a space",
     NULL,
     {.text = "Ok?", BUTTONS(URLB("Site", "https://exa mple.com"))},
     PL_BAD_URL,
     "(it contains a space or control character)"},
    {"url: a newline is escaped in the detail",
     NULL,
     {.text = "Ok?", BUTTONS(URLB("Site", "https://x.ru/\n"))},
     PL_BAD_URL,
     "x.ru/\\n\""},
    {"url: port not a number",
     NULL,
     {.text = "Ok?", BUTTONS(URLB("Site", "http://x.ru:8a/"))},
     PL_BAD_URL,
     "(its port is not a number)"},
    {"url: missing",
     NULL,
     {.text = "Ok?", BUTTONS(URLB("Site", NULL))},
     PL_BAD_URL,
     "button 1 has no url"},

    /* phones and provider capability */
    {"call: valid in the sandbox",
     "sandbox",
     {.text = "Ok?", BUTTONS(CALL("Позвонить", "+7 (812) 438-16-78"))},
     PL_OK,
     NULL},
    {"call: bad number",
     "sandbox",
     {.text = "Ok?", BUTTONS(URLB("Site", "https://x.ru"), CALL("Call", "12345"))},
     PL_BAD_PHONE,
     "button 2 phone \"12345\" is not an international number (+, country code, 7-15 digits)"},
    {"call: missing number",
     "sandbox",
     {.text = "Ok?", BUTTONS(CALL("Call", NULL))},
     PL_BAD_PHONE,
     "button 1 has no phone number"},
    {"call: a bad number is reported before the capability",
     NULL,
     {.text = "Ok?", BUTTONS(CALL("Call", "+7 ABC"))},
     PL_BAD_PHONE,
     "button 1 phone"},
    {"call: Cloud API session message cannot carry it",
     NULL,
     {.text = "Ok?", BUTTONS(CALL("Позвонить", "+7 (812) 438-16-78"))},
     PL_UNSUPPORTED_BY_PROVIDER,
     "a call button cannot be sent in a Cloud API session message; use a template with a "
     "PHONE_NUMBER button"},
    {"call: URL + call on Cloud API",
     NULL,
     {.text = "Ok?", BUTTONS(URLB("Site", "https://x.ru"), CALL("Call", "+78124381678"))},
     PL_UNSUPPORTED_BY_PROVIDER,
     "button 2: a call button cannot be sent"},
    {"call: URL + call in the sandbox",
     "sandbox",
     {.text = "Ok?", BUTTONS(URLB("Site", "https://x.ru"), CALL("Call", "+78124381678"))},
     PL_OK,
     NULL},
    {"url: a single URL button on Cloud API (cta_url)",
     NULL,
     {.text = "Ok?", .header = "Hi", .footer = "Bye", BUTTONS(URLB("Site", "https://x.ru"))},
     PL_OK,
     NULL},

    /* lists */
    {"list: one section without a title passes",
     NULL,
     {.text = "Pick", LIST("Options", SECTION(NULL, ROW("a", "A"), ROWD("b", "B", "Bee")))},
     PL_OK,
     NULL},
    {"list: two titled sections pass",
     NULL,
     {.text = "Pick",
      LIST("Options", SECTION("One", ROW("a", "A")), SECTION("Two", ROW("b", "B")))},
     PL_OK,
     NULL},
    {"list: with buttons",
     NULL,
     {.text = "Pick", BUTTONS(QR("Да")), LIST("Options", SECTION(NULL, ROW("a", "A")))},
     PL_MIXED_BUTTONS,
     "a list cannot carry buttons"},
    {"list: button text missing",
     NULL,
     {.text = "Pick", LIST(NULL, SECTION(NULL, ROW("a", "A")))},
     PL_LABEL_EMPTY,
     "the list button has no text"},
    {"list: button text blank",
     NULL,
     {.text = "Pick", LIST(" ", SECTION(NULL, ROW("a", "A")))},
     PL_LABEL_EMPTY,
     "list button \" \" is blank"},
    {"list: button text 20 passes",
     NULL,
     {.text = "Pick", LIST(a20, SECTION(NULL, ROW("a", "A")))},
     PL_OK,
     NULL},
    {"list: button text 21 fails",
     NULL,
     {.text = "Pick", LIST(a21, SECTION(NULL, ROW("a", "A")))},
     PL_LABEL_TOO_LONG,
     "list button \"aaaaaaaaaaaaaaaaaaaaa\" is 21 characters; WhatsApp allows 20"},
    {"list: no sections",
     NULL,
     {.text = "Pick", .list = &(const struct pl_list){"Options", NULL, 0}},
     PL_LIST_INVALID,
     "a list needs at least one section"},
    {"list: 10 sections pass",
     NULL,
     {.text = "Pick",
      LIST("Options", SEC1(1), SEC1(2), SEC1(3), SEC1(4), SEC1(5), SEC1(6), SEC1(7), SEC1(8),
           SEC1(9), SEC1(10))},
     PL_OK,
     NULL},
    {"list: 11 sections fail",
     NULL,
     {.text = "Pick",
      LIST("Options", SEC1(1), SEC1(2), SEC1(3), SEC1(4), SEC1(5), SEC1(6), SEC1(7), SEC1(8),
           SEC1(9), SEC1(10), SEC1(11))},
     PL_LIST_INVALID,
     "11 sections; WhatsApp allows at most 10"},
    {"list: 10 rows pass",
     NULL,
     {.text = "Pick", LIST("Options", SECTION(NULL, ROWS10))},
     PL_OK,
     NULL},
    {"list: 11 rows fail",
     NULL,
     {.text = "Pick", LIST("Options", SECTION(NULL, ROWS10, ROW("r11", "Eleven")))},
     PL_LIST_INVALID,
     "11 rows; WhatsApp allows at most 10 in all sections"},
    {"list: 11 rows across two sections fail",
     NULL,
     {.text = "Pick", LIST("Options", SECTION("A", ROWS10), SECTION("B", ROW("r11", "Eleven")))},
     PL_LIST_INVALID,
     "11 rows; WhatsApp allows at most 10 in all sections"},
    {"list: no rows",
     NULL,
     {.text = "Pick",
      .list = &(const struct pl_list){"Options", ARR(struct pl_list_section, {NULL, NULL, 0}), 1}},
     PL_LIST_INVALID,
     "a list needs at least one row"},
    {"list: an empty section among others",
     NULL,
     {.text = "Pick",
      .list =
          &(const struct pl_list){
              "Options", ARR(struct pl_list_section, SECTION("A", ROW("a", "A")), {"B", NULL, 0}),
              2}},
     PL_LIST_INVALID,
     "section 2 has no rows"},
    {"list: second section without a title",
     NULL,
     {.text = "Pick", LIST("Options", SECTION("One", ROW("a", "A")), SECTION(NULL, ROW("b", "B")))},
     PL_LIST_INVALID,
     "section 2 has no title"},
    {"list: section title 24 passes",
     NULL,
     {.text = "Pick", LIST("Options", SECTION(a24, ROW("a", "A")))},
     PL_OK,
     NULL},
    {"list: section title 25 fails",
     NULL,
     {.text = "Pick", LIST("Options", SECTION(a25, ROW("a", "A")))},
     PL_LIST_INVALID,
     "section 1 title \"aaaaaaaaaaaaaaaaaaaaaaaaa\" is 25 characters; WhatsApp allows 24"},
    {"list: blank section title",
     NULL,
     {.text = "Pick", LIST("Options", SECTION("", ROW("a", "A")))},
     PL_LIST_INVALID,
     "section 1 title \"\" is blank"},
    {"list: row title missing",
     NULL,
     {.text = "Pick", LIST("Options", SECTION(NULL, ROW("a", NULL)))},
     PL_LABEL_EMPTY,
     "row 1 has no title"},
    {"list: row title blank",
     NULL,
     {.text = "Pick", LIST("Options", SECTION(NULL, ROW("a", " ")))},
     PL_LABEL_EMPTY,
     "row 1 title \" \" is blank"},
    {"list: row title 24 passes",
     NULL,
     {.text = "Pick", LIST("Options", SECTION(NULL, ROW("a", a24)))},
     PL_OK,
     NULL},
    {"list: row title 24 Cyrillic passes",
     NULL,
     {.text = "Pick", LIST("Options", SECTION(NULL, ROW("a", cyr24)))},
     PL_OK,
     NULL},
    {"list: row title 25 fails",
     NULL,
     {.text = "Pick", LIST("Options", SECTION(NULL, ROW("a", "A"), ROW("b", a25)))},
     PL_LABEL_TOO_LONG,
     "row 2 title \"aaaaaaaaaaaaaaaaaaaaaaaaa\" is 25 characters; WhatsApp allows 24"},
    {"list: row description 72 passes",
     NULL,
     {.text = "Pick", LIST("Options", SECTION(NULL, ROWD("a", "A", a72)))},
     PL_OK,
     NULL},
    {"list: row description 73 fails",
     NULL,
     {.text = "Pick", LIST("Options", SECTION(NULL, ROWD("a", "A", a73)))},
     PL_LIST_INVALID,
     "is 73 characters; WhatsApp allows 72"},
    {"list: blank row description",
     NULL,
     {.text = "Pick", LIST("Options", SECTION(NULL, ROWD("a", "A", "")))},
     PL_LIST_INVALID,
     "row 1 description \"\" is blank"},
    {"list: row id missing",
     NULL,
     {.text = "Pick", LIST("Options", SECTION(NULL, ROW(NULL, "A")))},
     PL_BAD_ID,
     "row 1 has no id"},
    {"list: row id 200 passes",
     NULL,
     {.text = "Pick", LIST("Options", SECTION(NULL, ROW(a200, "A")))},
     PL_OK,
     NULL},
    {"list: row id 201 fails",
     NULL,
     {.text = "Pick", LIST("Options", SECTION(NULL, ROW(a201, "A")))},
     PL_BAD_ID,
     "is 201 characters; WhatsApp allows 200"},
    {"list: row id with an edge space",
     NULL,
     {.text = "Pick", LIST("Options", SECTION(NULL, ROW("a ", "A")))},
     PL_BAD_ID,
     "row 1 id \"a \" has leading or trailing spaces"},
    {"list: duplicate row ids",
     NULL,
     {.text = "Pick", LIST("Options", SECTION(NULL, ROW("a", "A"), ROW("b", "B"), ROW("a", "C")))},
     PL_DUPLICATE_LABEL,
     "rows 1 and 3 have the same id \"a\""},
    {"list: duplicate row ids across sections",
     NULL,
     {.text = "Pick",
      LIST("Options", SECTION("One", ROW("a", "A")), SECTION("Two", ROW("a", "B")))},
     PL_DUPLICATE_LABEL,
     "section 1 row 1 and section 2 row 1 have the same id \"a\""},
    {"list: duplicate row titles are allowed",
     NULL,
     {.text = "Pick", LIST("Options", SECTION(NULL, ROW("a", "Same"), ROW("b", "Same")))},
     PL_OK,
     NULL},

    /* media */
    {"media: image with a caption passes",
     NULL,
     {.media = {PL_MEDIA_IMAGE, "https://x.ru/a.jpg", "A cat", NULL}},
     PL_OK,
     NULL},
    {"media: caption 1024 passes",
     NULL,
     {.media = {PL_MEDIA_IMAGE, "https://x.ru/a.jpg", a1024, NULL}},
     PL_OK,
     NULL},
    {"media: caption 1025 fails",
     NULL,
     {.media = {PL_MEDIA_IMAGE, "https://x.ru/a.jpg", a1025, NULL}},
     PL_TEXT_TOO_LONG,
     "caption is 1025 characters; WhatsApp allows 1024 in a media caption"},
    {"media: blank caption",
     NULL,
     {.media = {PL_MEDIA_IMAGE, "https://x.ru/a.jpg", " ", NULL}},
     PL_TEXT_EMPTY,
     "caption \" \" is blank"},
    {"media: caption and text both",
     NULL,
     {.text = "Hi", .media = {PL_MEDIA_IMAGE, "https://x.ru/a.jpg", "A cat", NULL}},
     PL_MEDIA_INVALID,
     "has both a caption and a text"},
    {"media: no link", NULL, {IMAGE(NULL)}, PL_MEDIA_INVALID, "the image has no link"},
    {"media: link not http(s)",
     NULL,
     {IMAGE("ftp://x.ru/a.jpg")},
     PL_MEDIA_INVALID,
     "image link \"ftp://x.ru/a.jpg\" is not an absolute http(s) URL"},
    {"media: image with buttons passes (media header)",
     NULL,
     {.text = "Look", .footer = "Bye", IMAGE("https://x.ru/a.jpg"), BUTTONS(QR("Да"), QR("Нет"))},
     PL_OK,
     NULL},
    {"media: image with a URL button passes (cta_url header)",
     NULL,
     {.text = "Look", IMAGE("https://x.ru/a.jpg"), BUTTONS(URLB("Site", "https://x.ru"))},
     PL_OK,
     NULL},
    {"media: image with buttons and a text header",
     NULL,
     {.text = "Look", .header = "Hi", IMAGE("https://x.ru/a.jpg"), BUTTONS(QR("Да"))},
     PL_MEDIA_INVALID,
     "a text header cannot be added"},
    {"media: image with buttons and a caption",
     NULL,
     {.text = "Look",
      .media = {PL_MEDIA_IMAGE, "https://x.ru/a.jpg", "cap", NULL},
      BUTTONS(QR("Да"))},
     PL_MEDIA_INVALID,
     "cannot have a caption"},
    {"media: image with a list",
     NULL,
     {.text = "Pick", IMAGE("https://x.ru/a.jpg"), LIST("Options", SECTION(NULL, ROW("a", "A")))},
     PL_MEDIA_INVALID,
     "a list message takes only a text header, not an image"},
    {"media: image with a filename",
     NULL,
     {.media = {PL_MEDIA_IMAGE, "https://x.ru/a.jpg", NULL, "a.jpg"}},
     PL_MEDIA_INVALID,
     "an image cannot have a filename; only documents do"},
    {"media: document with a filename passes",
     NULL,
     {.text = "Your invoice", .media = {PL_MEDIA_DOCUMENT, "https://x.ru/a.pdf", NULL, "счёт.pdf"}},
     PL_OK,
     NULL},
    {"media: document with a blank filename",
     NULL,
     {.media = {PL_MEDIA_DOCUMENT, "https://x.ru/a.pdf", NULL, ""}},
     PL_MEDIA_INVALID,
     "document filename \"\" is blank"},
    {"media: a link without a media kind",
     NULL,
     {.text = "Hi", .media = {PL_MEDIA_NONE, "https://x.ru/a.jpg", NULL, NULL}},
     PL_MEDIA_INVALID,
     "without an image or document"},
    {"media: image with a call button in the sandbox",
     "sandbox",
     {.text = "Look", IMAGE("https://x.ru/a.jpg"), BUTTONS(CALL("Call", "+78124381678"))},
     PL_OK,
     NULL},
};

static void test_messages(void)
{
    for (size_t i = 0; i < sizeof msg_cases / sizeof msg_cases[0]; i++) {
        const struct msg_case *c = &msg_cases[i];
        const struct pl_limits *lim = pl_rules_limits(c->provider ? c->provider : "cloud-api");
        struct pl_verdict v;
        int rc;

        UNIT_CASE(c->name);
        memset(&v, 'x', sizeof v);
        rc = pl_rules_check_message(lim, &c->m, &v);
        CHECK_INT(rc, c->code == PL_OK ? 0 : -1);
        if (v.code != c->code)
            UNIT_FAIL("code: got %s, want %s (detail: %s)", pl_code_name(v.code),
                      pl_code_name(c->code), v.detail);
        else
            unit_passed++;
        if (c->detail != NULL)
            CHECK_CONTAINS(v.detail, c->detail);
        else
            CHECK_STR(v.detail, "");
        CHECK(strlen(v.detail) < sizeof v.detail);
        CHECK(pl_utf8_valid(v.detail, strlen(v.detail), NULL));
        CHECK(strchr(v.detail, '\n') == NULL);
    }
}

/* ---- phone numbers ---- */

static const struct {
    const char *in;
    const char *want; /* NULL: rejected */
} phone_cases[] = {
    {"+7 (812) 438-16-78", "+78124381678"},
    {"+78124381678", "+78124381678"},
    {"+1 650-555-1234", "+16505551234"},
    {"  +44 20 7946 0958", "+442079460958"},
    {"+7.812.438.16.78", "+78124381678"},
    {"+7 812 438 16 78 ", "+78124381678"},
    {"+1234567", "+1234567"},                 /* 7 digits: the minimum */
    {"+123456789012345", "+123456789012345"}, /* 15 digits: the maximum */
    {"+49 (30) 901820", "+4930901820"},
    {"+123456", NULL},           /* 6 digits */
    {"+1234567890123456", NULL}, /* 16 digits */
    {"88124381678", NULL},       /* no + */
    {"8 (812) 438-16-78", NULL},
    {"+0 812 438 16 78", NULL}, /* country code cannot start with 0 */
    {"+7 812 ABC 16 78", NULL},
    {"+7 812 438 16 78 ext 5", NULL},
    {"++78124381678", NULL},
    {"+", NULL},
    {"", NULL},
    {"7 +8124381678", NULL},
    {"+7/812/438/16/78", NULL},
    {"+7_8124381678", NULL},
    {"+7\t8124381678", NULL},
    {"+７８１２４３８１６７８", NULL}, /* full-width digits */
};

static void test_phones(void)
{
    const struct pl_limits *lim = pl_rules_limits("cloud-api");
    char out[32];

    for (size_t i = 0; i < sizeof phone_cases / sizeof phone_cases[0]; i++) {
        UNIT_CASE(phone_cases[i].in);
        strcpy(out, "untouched");
        int rc = pl_rules_normalize_phone(lim, phone_cases[i].in, out, sizeof out);
        CHECK_INT(rc, phone_cases[i].want ? 0 : -1);
        if (phone_cases[i].want != NULL)
            CHECK_STR(out, phone_cases[i].want);
    }
    UNIT_CASE("phone: NULL input");
    CHECK_INT(pl_rules_normalize_phone(lim, NULL, out, sizeof out), -1);
    UNIT_CASE("phone: output one byte too small");
    CHECK_INT(pl_rules_normalize_phone(lim, "+7 (812) 438-16-78", out, 12), -1);
    UNIT_CASE("phone: output exactly large enough");
    CHECK_INT(pl_rules_normalize_phone(lim, "+7 (812) 438-16-78", out, 13), 0);
    CHECK_STR(out, "+78124381678");
}

/* ---- the customer-service window ---- */

static const struct {
    const char *name;
    long long now, last;
    long want;
} window_cases[] = {
    {"never wrote", 1700000000, 0, 0},
    {"negative timestamp counts as never", 1700000000, -5, 0},
    {"just wrote", 1700000000, 1700000000, 86400},
    {"one second later", 1700000001, 1700000000, 86399},
    {"one second left", 1700086399, 1700000000, 1},
    {"closes at exactly 24 h", 1700086400, 1700000000, 0},
    {"ten days later", 1700864000, 1700000000, 0},
    {"far past", 1700000000, 1, 0},
    {"clock skew: last inbound in the future", 1700000000, 1700000100, 86400},
    {"half-way", 1700043200, 1700000000, 43200},
};

static void test_window(void)
{
    const struct pl_limits *lim = pl_rules_limits("cloud-api");
    struct pl_verdict v;

    for (size_t i = 0; i < sizeof window_cases / sizeof window_cases[0]; i++) {
        UNIT_CASE(window_cases[i].name);
        CHECK_INT(pl_rules_window_left(lim, window_cases[i].now, window_cases[i].last),
                  window_cases[i].want);
        CHECK_INT(pl_rules_check_window(lim, window_cases[i].now, window_cases[i].last, &v),
                  window_cases[i].want > 0 ? 0 : -1);
        CHECK_INT(v.code, window_cases[i].want > 0 ? PL_OK : PL_WINDOW_CLOSED);
    }
    UNIT_CASE("window: NULL limits");
    CHECK_INT(pl_rules_window_left(NULL, 100, 50), 0);
    UNIT_CASE("window: closed detail says how long ago");
    pl_rules_check_window(lim, 1700000000 + 86400 + 3 * 3600, 1700000000, &v);
    CHECK_STR(pl_code_name(v.code), "window_closed");
    CHECK_CONTAINS(v.detail, "closed 3 h ago");
    CHECK_CONTAINS(v.detail, "send a template");
    UNIT_CASE("window: never wrote detail");
    pl_rules_check_window(lim, 1700000000, 0, &v);
    CHECK_CONTAINS(v.detail, "never written");
}

/* ---- template definitions ---- */

#define TBUTTONS(...)                                  \
    .buttons = ARR(struct pl_tpl_button, __VA_ARGS__), \
    .nbuttons = NARR(struct pl_tpl_button, __VA_ARGS__)
#define TQR(text)                              \
    {                                          \
        PL_TPL_QUICK_REPLY, (text), NULL, NULL \
    }
#define TURL(text, url)                 \
    {                                   \
        PL_TPL_URL, (text), (url), NULL \
    }
#define TPHONE(text, phone)                        \
    {                                              \
        PL_TPL_PHONE_NUMBER, (text), NULL, (phone) \
    }
#define TCOPY                              \
    {                                      \
        PL_TPL_COPY_CODE, NULL, NULL, NULL \
    }
#define BODY "Hello {{1}}, your order {{2}} has shipped."
#define TPL(...)                                                                       \
    {                                                                                  \
        .name = "order_update", .language = "en_US", .status = "APPROVED", __VA_ARGS__ \
    }

struct tpl_case {
    const char *name;
    struct pl_template t;
    const char *detail; /* NULL: valid; else PL_TEMPLATE_INVALID with this substring */
};

static const struct tpl_case tpl_cases[] = {
    {"tpl: positional body", TPL(.body = BODY, .category = "UTILITY"), NULL},
    {"tpl: no placeholders", TPL(.body = "Your order has shipped."), NULL},
    {"tpl: named body", TPL(.body = "Hi {{first_name}}, order {{order_id}} is ready.", .named = 1),
     NULL},
    {"tpl: a placeholder may repeat", TPL(.body = "Hi {{1}}, yes {{1}}, and {{2}} too."), NULL},
    {"tpl: punctuation after the last placeholder", TPL(.body = "Hello {{1}}."), NULL},
    {"tpl: body 1024 passes", TPL(.body = body1024), NULL},
    {"tpl: TEXT header with one placeholder",
     TPL(.header_format = "TEXT", .header_text = "Order {{1}}", .body = BODY), NULL},
    {"tpl: header 60 passes", TPL(.header_format = "TEXT", .header_text = hdr60, .body = BODY),
     NULL},
    {"tpl: header text alone means TEXT", TPL(.header_text = "Order", .body = BODY), NULL},
    {"tpl: IMAGE header", TPL(.header_format = "IMAGE", .body = BODY), NULL},
    {"tpl: footer", TPL(.body = BODY, .footer = "Reply STOP to stop"), NULL},
    {"tpl: QR,QR", TPL(.body = BODY, TBUTTONS(TQR("Yes"), TQR("No"))), NULL},
    {"tpl: QR,QR,URL,PHONE",
     TPL(.body = BODY, TBUTTONS(TQR("Yes"), TQR("No"), TURL("Track", "https://x.com/t/{{1}}"),
                                TPHONE("Call", "15550051310"))),
     NULL},
    {"tpl: URL,PHONE,QR,QR",
     TPL(.body = BODY, TBUTTONS(TURL("Site", "https://x.com"), TPHONE("Call", "+1 555 005 1310"),
                                TQR("Yes"), TQR("No"))),
     NULL},
    {"tpl: ten quick replies",
     TPL(.body = BODY, TBUTTONS(TQR("1"), TQR("2"), TQR("3"), TQR("4"), TQR("5"), TQR("6"),
                                TQR("7"), TQR("8"), TQR("9"), TQR("10"))),
     NULL},
    {"tpl: two URL buttons",
     TPL(.body = BODY, TBUTTONS(TURL("A", "https://a.com"), TURL("B", "https://b.com/{{1}}"))),
     NULL},
    {"tpl: COPY_CODE needs no label", TPL(.body = BODY, TBUTTONS(TCOPY)), NULL},
    {"tpl: label 25 Cyrillic passes", TPL(.body = BODY, TBUTTONS(TQR(cyr25))), NULL},
    {"tpl: url 2000 passes", TPL(.body = BODY, TBUTTONS(TURL("Go", url2000))), NULL},
    {"tpl: name 512 passes", {.name = a512, .language = "ru", .body = BODY}, NULL},

    {"tpl: empty name", {.name = "", .language = "en", .body = BODY}, "the name is empty"},
    {"tpl: upper-case name",
     {.name = "Order_Update", .language = "en", .body = BODY},
     "template \"Order_Update\" (en): the name may hold only lowercase letters, digits and _"},
    {"tpl: dash in name",
     {.name = "order-update", .language = "en", .body = BODY},
     "only lowercase"},
    {"tpl: name 513",
     {.name = a513, .language = "en", .body = BODY},
     "the name is 513 characters; WhatsApp allows 512"},
    {"tpl: invalid UTF-8 name is escaped",
     {.name = "ab\xFF", .language = "en", .body = BODY},
     "template \"ab\\xFF\" (en): name is not valid UTF-8"},
    {"tpl: no language", {.name = "x", .body = BODY}, "the language is empty"},
    {"tpl: hyphen language",
     {.name = "x", .language = "en-US", .body = BODY},
     "language \"en-US\" uses -"},
    {"tpl: language with a space",
     {.name = "x", .language = "en US", .body = BODY},
     "is not a language code"},
    {"tpl: unknown category", TPL(.body = BODY, .category = "PROMO"),
     "category \"PROMO\" is not MARKETING, UTILITY or AUTHENTICATION"},
    {"tpl: no body", TPL(.body = NULL), "template \"order_update\" (en_US): the body is empty"},
    {"tpl: blank body", TPL(.body = "  "), "the body is empty"},
    {"tpl: body 1025 fails", TPL(.body = body1025),
     "body is 1025 characters; WhatsApp allows 1024"},
    {"tpl: invalid UTF-8 body", TPL(.body = "Hi \xC3"), "body is not valid UTF-8"},
    {"tpl: body starts with a placeholder", TPL(.body = "{{1}} is here"),
     "body starts with the placeholder {{1}}"},
    {"tpl: body starts with a placeholder after spaces", TPL(.body = "  {{1}} is here"),
     "starts with the placeholder"},
    {"tpl: body ends with a placeholder", TPL(.body = "Hello {{1}}"),
     "body ends with the placeholder {{1}}"},
    {"tpl: body ends with a placeholder and spaces", TPL(.body = "Hello {{1}}  \n"),
     "ends with the placeholder"},
    {"tpl: body is only a placeholder", TPL(.body = "{{1}}"), "starts with"},
    {"tpl: adjacent placeholders", TPL(.body = "Hi {{1}}{{2}} there"),
     "adjacent placeholders {{1}} and {{2}}"},
    {"tpl: placeholders with only a space between", TPL(.body = "Hi {{1}} {{2}} there"),
     "adjacent placeholders"},
    {"tpl: a gap in numbering", TPL(.body = "Hi {{1}} and {{3}} there"), "has {{3}} before {{2}}"},
    {"tpl: numbering starts at 2", TPL(.body = "Hi {{2}} there"), "has {{2}} before {{1}}"},
    {"tpl: numbers out of order", TPL(.body = "Hi {{2}} and {{1}} there"),
     "has {{2}} before {{1}}"},
    {"tpl: unclosed placeholder", TPL(.body = "Hi {{1 there"),
     "body has a malformed placeholder at byte 3: \"{{1 there\""},
    {"tpl: spaces inside a placeholder", TPL(.body = "Hi {{ 1 }} there"), "malformed placeholder"},
    {"tpl: empty placeholder", TPL(.body = "Hi {{}} there"), "malformed placeholder"},
    {"tpl: placeholder zero", TPL(.body = "Hi {{0}} there"), "malformed placeholder"},
    {"tpl: leading zero", TPL(.body = "Hi {{01}} there"), "malformed placeholder"},
    {"tpl: upper-case name placeholder", TPL(.body = "Hi {{First}} there", .named = 1),
     "malformed placeholder"},
    {"tpl: named placeholder in a positional template", TPL(.body = "Hi {{name}} there"),
     "has the named placeholder {{name}} but the template uses positional parameters"},
    {"tpl: positional placeholder in a named template", TPL(.body = "Hi {{1}} there", .named = 1),
     "has the positional placeholder {{1}} but the template uses named parameters"},
    {"tpl: header 61 fails", TPL(.header_format = "TEXT", .header_text = hdr61, .body = BODY),
     "is 61 characters; WhatsApp allows 60"},
    {"tpl: header with two placeholders",
     TPL(.header_format = "TEXT", .header_text = "{{1}} and {{1}}", .body = BODY),
     "header has 2 placeholders; WhatsApp allows 1"},
    {"tpl: header placeholder must be {{1}}",
     TPL(.header_format = "TEXT", .header_text = "Order {{2}}", .body = BODY),
     "header has {{2}} before {{1}}"},
    {"tpl: TEXT header without text", TPL(.header_format = "TEXT", .body = BODY),
     "the TEXT header has no text"},
    {"tpl: header text with an IMAGE header",
     TPL(.header_format = "IMAGE", .header_text = "Hi", .body = BODY),
     "header text is given but the header format is IMAGE"},
    {"tpl: unknown header format", TPL(.header_format = "AUDIO", .body = BODY),
     "header format \"AUDIO\" is not TEXT"},
    {"tpl: footer 61", TPL(.body = BODY, .footer = a61), "footer \""},
    {"tpl: footer with a placeholder", TPL(.body = BODY, .footer = "Bye {{1}} now"),
     "footer \"Bye {{1}} now\" has a placeholder"},
    {"tpl: blank footer", TPL(.body = BODY, .footer = ""), "the footer is blank"},
    {"tpl: eleven buttons",
     TPL(.body = BODY, TBUTTONS(TQR("1"), TQR("2"), TQR("3"), TQR("4"), TQR("5"), TQR("6"),
                                TQR("7"), TQR("8"), TQR("9"), TQR("10"), TQR("11"))),
     "11 buttons; WhatsApp allows at most 10"},
    {"tpl: three URL buttons",
     TPL(.body = BODY, TBUTTONS(TURL("A", "https://a.com"), TURL("B", "https://b.com"),
                                TURL("C", "https://c.com"))),
     "3 URL buttons; WhatsApp allows at most 2"},
    {"tpl: two phone buttons",
     TPL(.body = BODY, TBUTTONS(TPHONE("A", "15550051310"), TPHONE("B", "15550051311"))),
     "2 PHONE_NUMBER buttons; WhatsApp allows at most 1"},
    {"tpl: two copy-code buttons", TPL(.body = BODY, TBUTTONS(TCOPY, TCOPY)),
     "2 COPY_CODE buttons"},
    {"tpl: QR,URL,QR is not one group",
     TPL(.body = BODY, TBUTTONS(TQR("Yes"), TURL("Site", "https://x.com"), TQR("No"))),
     "quick replies must form one group, before or after the other buttons (buttons are "
     "QUICK_REPLY, URL, QUICK_REPLY)"},
    {"tpl: URL,QR,URL is not one group",
     TPL(.body = BODY,
         TBUTTONS(TURL("A", "https://a.com"), TQR("Yes"), TURL("B", "https://b.com"))),
     "quick replies must form one group"},
    {"tpl: empty label", TPL(.body = BODY, TBUTTONS(TQR("Yes"), TQR(""))),
     "button 2 (QUICK_REPLY) has no label"},
    {"tpl: missing label", TPL(.body = BODY, TBUTTONS(TURL(NULL, "https://x.com"))),
     "button 1 (URL) has no label"},
    {"tpl: label 26 fails", TPL(.body = BODY, TBUTTONS(TQR(a26))),
     "button 1 \"aaaaaaaaaaaaaaaaaaaaaaaaaa\" is 26 characters; WhatsApp allows 25"},
    {"tpl: url not http(s)", TPL(.body = BODY, TBUTTONS(TURL("Go", "ftp://x.com"))),
     "button 1 url \"ftp://x.com\" is not an absolute http(s) URL"},
    {"tpl: url placeholder not at the end",
     TPL(.body = BODY, TBUTTONS(TURL("Go", "https://x.com/{{1}}/track"))),
     "may hold one placeholder, {{1}}, and only at the very end"},
    {"tpl: url placeholder {{2}}", TPL(.body = BODY, TBUTTONS(TURL("Go", "https://x.com/{{2}}"))),
     "may hold one placeholder"},
    {"tpl: url with two placeholders",
     TPL(.body = BODY, TBUTTONS(TURL("Go", "https://x.com/{{1}}{{1}}"))), "may hold one"},
    {"tpl: url whose host is the placeholder",
     TPL(.body = BODY, TBUTTONS(TURL("Go", "https://{{1}}"))), "(it has no host)"},
    {"tpl: url 2001 fails", TPL(.body = BODY, TBUTTONS(TURL("Go", url2001))),
     "url is 2001 characters; WhatsApp allows 2000"},
    {"tpl: url missing", TPL(.body = BODY, TBUTTONS(TURL("Go", NULL))),
     "button 1 (URL) has no url"},
    {"tpl: phone too short", TPL(.body = BODY, TBUTTONS(TPHONE("Call", "12345"))),
     "button 1 phone \"12345\" is not an international number"},
    {"tpl: phone with a leading zero", TPL(.body = BODY, TBUTTONS(TPHONE("Call", "0123456789"))),
     "not an international number"},
    {"tpl: phone with letters", TPL(.body = BODY, TBUTTONS(TPHONE("Call", "+7 812 ABC"))),
     "not an international number"},
    {"tpl: phone missing", TPL(.body = BODY, TBUTTONS(TPHONE("Call", NULL))),
     "button 1 (PHONE_NUMBER) has no phone"},
};

static void test_templates(void)
{
    const struct pl_limits *lim = pl_rules_limits("cloud-api");
    struct pl_verdict v;

    for (size_t i = 0; i < sizeof tpl_cases / sizeof tpl_cases[0]; i++) {
        const struct tpl_case *c = &tpl_cases[i];
        UNIT_CASE(c->name);
        int rc = pl_rules_check_template(lim, &c->t, &v);
        if (c->detail == NULL) {
            if (rc != 0)
                UNIT_FAIL("want valid, got %s: %s", pl_code_name(v.code), v.detail);
            else
                unit_passed++;
            CHECK_INT(v.code, PL_OK);
        } else {
            CHECK_INT(rc, -1);
            CHECK_STR(pl_code_name(v.code), "template_invalid");
            CHECK_CONTAINS(v.detail, c->detail);
            CHECK(pl_utf8_valid(v.detail, strlen(v.detail), NULL));
        }
    }
}

/* ---- template parameters ---- */

#define PARAMS(...)                                  \
    .params = ARR(struct pl_tpl_param, __VA_ARGS__), \
    .nparams = NARR(struct pl_tpl_param, __VA_ARGS__)
#define NAMED_BODY "Hi {{first_name}}, order {{order_id}} is ready."

struct param_case {
    const char *name;
    const char *text;
    enum pl_tpl_part part;
    int named;
    const struct pl_tpl_param *params;
    size_t nparams;
    enum pl_code code;
    const char *detail;
};

static const struct param_case param_cases[] = {
    {"params: two positional", BODY, PL_TPL_PART_BODY, 0, PARAMS({NULL, "Анна"}, {NULL, "A-17"}),
     PL_OK, NULL},
    {"params: none for a text without placeholders", "Thanks!", PL_TPL_PART_BODY, 0, NULL, 0, PL_OK,
     NULL},
    {"params: a repeated placeholder takes one value", "Hi {{1}}, bye {{1}}.", PL_TPL_PART_BODY, 0,
     PARAMS({NULL, "Анна"}), PL_OK, NULL},
    {"params: too few", BODY, PL_TPL_PART_BODY, 0, PARAMS({NULL, "Анна"}), PL_TEMPLATE_PARAMS,
     "template expects 2 parameters, got 1"},
    {"params: too many", BODY, PL_TPL_PART_BODY, 0, PARAMS({NULL, "a"}, {NULL, "b"}, {NULL, "c"}),
     PL_TEMPLATE_PARAMS, "template expects 2 parameters, got 3"},
    {"params: header count", "Order {{1}}", PL_TPL_PART_HEADER, 0, PARAMS({NULL, "a"}, {NULL, "b"}),
     PL_TEMPLATE_PARAMS, "template header expects 1 parameter, got 2"},
    {"params: none given for a body with placeholders", BODY, PL_TPL_PART_BODY, 0, NULL, 0,
     PL_TEMPLATE_PARAMS, "template expects 2 parameters, got 0"},
    {"params: a name in a positional template", BODY, PL_TPL_PART_BODY, 0,
     PARAMS({"first_name", "a"}, {"order_id", "b"}), PL_TEMPLATE_PARAMS,
     "parameter \"first_name\" has a name but the template uses positional parameters"},
    {"params: named and positional mixed", NAMED_BODY, PL_TPL_PART_BODY, 1,
     PARAMS({"first_name", "a"}, {NULL, "b"}), PL_TEMPLATE_PARAMS,
     "parameters mix named and positional"},
    {"params: named in any order", NAMED_BODY, PL_TPL_PART_BODY, 1,
     PARAMS({"order_id", "A-17"}, {"first_name", "Анна"}), PL_OK, NULL},
    {"params: named, one missing", NAMED_BODY, PL_TPL_PART_BODY, 1, PARAMS({"first_name", "Анна"}),
     PL_TEMPLATE_PARAMS, "missing parameter \"order_id\""},
    {"params: named, one unknown", NAMED_BODY, PL_TPL_PART_BODY, 1,
     PARAMS({"first_name", "Анна"}, {"order_id", "1"}, {"nme", "x"}), PL_TEMPLATE_PARAMS,
     "unknown parameter \"nme\"; the template body has {{first_name}}, {{order_id}}"},
    {"params: named, given twice", NAMED_BODY, PL_TPL_PART_BODY, 1,
     PARAMS({"first_name", "a"}, {"first_name", "b"}), PL_TEMPLATE_PARAMS,
     "parameter \"first_name\" is given twice"},
    {"params: named template, unnamed value", NAMED_BODY, PL_TPL_PART_BODY, 1, PARAMS({NULL, "a"}),
     PL_TEMPLATE_PARAMS, "parameter 1 has no name"},
    {"params: named template whose text is positional", BODY, PL_TPL_PART_BODY, 1,
     PARAMS({"a", "b"}), PL_TEMPLATE_PARAMS,
     "has positional placeholders but the template is declared named"},
    {"params: malformed template text", "Hi {{1 there", PL_TPL_PART_BODY, 0, PARAMS({NULL, "a"}),
     PL_TEMPLATE_PARAMS, "malformed or mixed placeholder"},
    {"params: NULL value", "Hi {{1}}.", PL_TPL_PART_BODY, 0, PARAMS({NULL, NULL}),
     PL_TEMPLATE_PARAM_FORMAT, "parameter 1 is empty"},
    {"params: empty value", "Hi {{1}}.", PL_TPL_PART_BODY, 0, PARAMS({NULL, ""}),
     PL_TEMPLATE_PARAM_FORMAT, "parameter 1 is empty"},
    {"params: blank value", "Hi {{1}}.", PL_TPL_PART_BODY, 0, PARAMS({NULL, "   "}),
     PL_TEMPLATE_PARAM_FORMAT, "parameter 1 (\"   \") is blank"},
    {"params: tab", BODY, PL_TPL_PART_BODY, 0, PARAMS({NULL, "a"}, {NULL, "A\tB"}),
     PL_TEMPLATE_PARAM_FORMAT,
     "parameter 2 (\"A\\tB\") contains a tab; WhatsApp forbids newlines and tabs in parameters"},
    {"params: newline", "Hi {{1}}.", PL_TPL_PART_BODY, 0, PARAMS({NULL, "A\nB"}),
     PL_TEMPLATE_PARAM_FORMAT, "parameter 1 (\"A\\nB\") contains a newline"},
    {"params: CR LF", "Hi {{1}}.", PL_TPL_PART_BODY, 0, PARAMS({NULL, "A\r\nB"}),
     PL_TEMPLATE_PARAM_FORMAT, "contains a newline"},
    {"params: 4 consecutive spaces pass", "Hi {{1}}.", PL_TPL_PART_BODY, 0,
     PARAMS({NULL, "a    b"}), PL_OK, NULL},
    {"params: 5 consecutive spaces fail", "Hi {{1}}.", PL_TPL_PART_BODY, 0,
     PARAMS({NULL, "a     b"}), PL_TEMPLATE_PARAM_FORMAT,
     "has 5 consecutive spaces; WhatsApp allows at most 4"},
    {"params: body value 1024 passes", "Hi {{1}}.", PL_TPL_PART_BODY, 0, PARAMS({NULL, a1024}),
     PL_OK, NULL},
    {"params: body value 1024 Cyrillic passes", "Hi {{1}}.", PL_TPL_PART_BODY, 0,
     PARAMS({NULL, cyr1024}), PL_OK, NULL},
    {"params: body value 1025 fails", "Hi {{1}}.", PL_TPL_PART_BODY, 0, PARAMS({NULL, a1025}),
     PL_TEMPLATE_PARAM_FORMAT, "parameter 1 is 1025 characters; WhatsApp allows 1024 in the body"},
    {"params: header value 60 passes", "Order {{1}}", PL_TPL_PART_HEADER, 0, PARAMS({NULL, a60}),
     PL_OK, NULL},
    {"params: header value 61 fails", "Order {{1}}", PL_TPL_PART_HEADER, 0, PARAMS({NULL, a61}),
     PL_TEMPLATE_PARAM_FORMAT, "is 61 characters; WhatsApp allows 60 in the header"},
    {"params: invalid UTF-8 value", "Hi {{1}}.", PL_TPL_PART_BODY, 0, PARAMS({NULL, "A\xC3"}),
     PL_BAD_UTF8, "parameter 1 is not valid UTF-8 (byte 0xC3 at offset 1)"},
    {"params: named value with a tab names the parameter", NAMED_BODY, PL_TPL_PART_BODY, 1,
     PARAMS({"first_name", "A\tB"}, {"order_id", "1"}), PL_TEMPLATE_PARAM_FORMAT,
     "parameter \"first_name\" (\"A\\tB\") contains a tab"},
    {"params: emoji value", "Hi {{1}}.", PL_TPL_PART_BODY, 0, PARAMS({NULL, "🎉 Анна"}), PL_OK,
     NULL},
};

static void test_params(void)
{
    const struct pl_limits *lim = pl_rules_limits("cloud-api");
    struct pl_verdict v;

    for (size_t i = 0; i < sizeof param_cases / sizeof param_cases[0]; i++) {
        const struct param_case *c = &param_cases[i];
        UNIT_CASE(c->name);
        int rc = pl_rules_check_template_params(lim, c->text, c->part, c->named, c->params,
                                                c->nparams, &v);
        CHECK_INT(rc, c->code == PL_OK ? 0 : -1);
        if (v.code != c->code)
            UNIT_FAIL("code: got %s, want %s (detail: %s)", pl_code_name(v.code),
                      pl_code_name(c->code), v.detail);
        else
            unit_passed++;
        if (c->detail != NULL)
            CHECK_CONTAINS(v.detail, c->detail);
        CHECK(pl_utf8_valid(v.detail, strlen(v.detail), NULL));
    }
}

/* ---- statuses, placeholders, codes, tables ---- */

static const struct {
    const char *status;
    int sendable;
} status_cases[] = {
    {"APPROVED", 1}, {"FLAGGED", 1},        {"REINSTATED", 1},       {"UNARCHIVED", 1},
    {"LOCKED", 1},   {"PENDING", 0},        {"REJECTED", 0},         {"PAUSED", 0},
    {"DISABLED", 0}, {"IN_APPEAL", 0},      {"PENDING_DELETION", 0}, {"DELETED", 0},
    {"ARCHIVED", 0}, {"LIMIT_EXCEEDED", 0}, {"approved", 0},         {"", 0},
    {NULL, 0},
};

static void test_statuses(void)
{
    struct pl_verdict v;

    for (size_t i = 0; i < sizeof status_cases / sizeof status_cases[0]; i++) {
        UNIT_CASE(status_cases[i].status ? status_cases[i].status : "(NULL status)");
        CHECK_INT(pl_rules_template_sendable(status_cases[i].status), status_cases[i].sendable);
        CHECK_INT(pl_rules_check_template_status(status_cases[i].status, "promo", "ru", &v),
                  status_cases[i].sendable ? 0 : -1);
        CHECK_INT(v.code, status_cases[i].sendable ? PL_OK : PL_TEMPLATE_NOT_APPROVED);
    }
    UNIT_CASE("status: detail names template and status");
    pl_rules_check_template_status("PAUSED", "promo", "ru", &v);
    CHECK_STR(v.detail, "template \"promo\" (ru) is PAUSED; only APPROVED templates can be sent");
}

static const struct {
    const char *text;
    int want;
} count_cases[] = {
    {"", 0},
    {"no placeholders", 0},
    {"Hi {{1}}.", 1},
    {"{{1}} {{2}} {{1}}", 2},
    {"{{1}} {{3}}", 3},
    {"{{a}} {{b}} {{a}}", 2},
    {"{{first_name}}", 1},
    {"{{v2}}", 1},
    {"}} {{1}} {", 1},
    {"{{1}} {{a}}", -1},
    {"{{1", -1},
    {"{{ 1 }}", -1},
    {"{{}}", -1},
    {"{{0}}", -1},
    {"{{Name}}", -1},
    {"{{99999999999}}", -1},
    {"{{{1}}}", -1},
};

/* pl_utf8_valid and pl_utf8_length directly: ASCII runs (which skip decoding) around every kind
 * of bad sequence, so the offset of the first bad byte and the count stay exact. */
static const struct {
    const char *s;
    int valid;
    size_t bad_at;
    long length; /* -1: invalid */
} utf8_cases[] = {
    {"", 1, 0, 0},
    {"hello", 1, 0, 5},
    {"Привет", 1, 0, 6},
    {"ab Привет, world €1 😀", 1, 0, 21},
    {"abc\x80", 0, 3, -1},
    {"abc\xC0\xAF def", 0, 3, -1},
    {"Пр\xD0", 0, 4, -1},
    {"ok \xED\xA0\x80 no", 0, 3, -1},
    {"ok \xF4\x90\x80\x80", 0, 3, -1},
    {"\xFF", 0, 0, -1},
    {"a\xE2\x82", 0, 1, -1},
    {"a\xE2\x82\xAC", 1, 0, 2},
    /* the two-byte sequences' edges: C2 80 and DF BF are the first and the last; C0 and C1
     * leads are overlong; a lead without its continuation, or with an ASCII byte after it */
    {"\xC2\x80\xDF\xBF", 1, 0, 2},
    {"x\xC1\xBF", 0, 1, -1},
    {"xy\xC2", 0, 2, -1},
    {"\xD0\x9F\xD0"
     "A",
     0, 2, -1},
    {"\xD0\xC0\x80", 0, 0, -1},
};

static void test_utf8(void)
{
    for (size_t i = 0; i < sizeof utf8_cases / sizeof utf8_cases[0]; i++) {
        size_t bad = 999;
        const char *s = utf8_cases[i].s;
        CHECK_INT(pl_utf8_valid(s, strlen(s), &bad), utf8_cases[i].valid);
        if (!utf8_cases[i].valid)
            CHECK_INT((long)bad, (long)utf8_cases[i].bad_at);
        CHECK_INT(pl_utf8_length(s), utf8_cases[i].length);
    }
    /* every pair of bytes (then a third): the scanners agree with pl_utf8_decode, sequence by
     * sequence, whichever path a lead byte takes */
    int disagree = 0;
    for (int a = 1; a < 256; a++)
        for (int b = 1; b < 256; b++) {
            char s[4] = {(char)a, (char)b, 'z', 0};
            uint32_t cp;
            size_t first = pl_utf8_decode(s, 3, &cp), second = 0;
            int valid = first > 0 &&
                        (first == 3 || (second = pl_utf8_decode(s + first, 3 - first, &cp)) > 0) &&
                        (first + second == 3 ||
                         pl_utf8_decode(s + first + second, 3 - first - second, &cp) > 0);
            disagree += pl_utf8_valid(s, 3, NULL) != valid;
            disagree += (pl_utf8_length(s) >= 0) != valid;
        }
    CHECK_INT(disagree, 0);
}

/* pl_rules_quote into a buffer of exactly outsz bytes (on the heap, so that AddressSanitizer sees
 * a byte written past it) */
static const struct {
    const char *s;
    int quoted;
    size_t outsz;
    const char *want;
} quote_cases[] = {
    {"Оператор", 1, 256, "\"Оператор\""},
    {"Оператор", 0, 256, "Оператор"},
    {NULL, 1, 256, "(none)"},
    {NULL, 1, 4, "(no"},
    {"", 1, 256, "\"\""},
    {"a\"b\\c\n\t\r\x01\x7f", 1, 256, "\"a\\\"b\\\\c\\n\\t\\r\\x01\\x7F\""},
    {"\xff"
     "a",
     0, 256, "\\xFFa"},
    {"a\xc2\xa0"
     "b\xe2\x80\xa8",
     1, 256, "\"a\\u00A0b\\u2028\""},
    /* 41 code points: 40 and "…" */
    {"12345678901234567890123456789012345678901", 0, 256,
     "1234567890123456789012345678901234567890\xE2\x80\xA6"},
    {"1234567890123456789012345678901234567890", 0, 256,
     "1234567890123456789012345678901234567890"},
    /* buffers too small for the value: cut between whole pieces, "…" and the quote kept */
    {"abcdef", 1, 0, NULL},
    {"abcdef", 1, 1, ""},
    {"abcdef", 1, 5, ""},
    {"abcdef", 0, 5, ""},
    {"abcdef", 1, 6, "\"\xE2\x80\xA6\""},
    {"abcdef", 1, 7, "\"a\xE2\x80\xA6\""},
    {"abcdef", 1, 8, "\"ab\xE2\x80\xA6\""},
    {"abcdef", 1, 9, "\"abcdef\""},
    {"abcdef", 0, 7, "abcdef"},
    {"abcdef", 0, 6, "ab\xE2\x80\xA6"},
    {"a", 1, 6, "\"a\""},
    {"ab", 1, 5, ""},
    {"ab", 1, 6, "\"ab\""},
    {"abc", 1, 6, "\"abc\""},
    {"abcd", 1, 6, "\"\xE2\x80\xA6\""},
    {"\n\n", 1, 7, "\"\\n\\n\""},
    {"\n\n\n", 1, 7, "\"\xE2\x80\xA6\""},
    {"\n\n\n", 1, 8, "\"\\n\xE2\x80\xA6\""},
    {"\n\n\n", 1, 9, "\"\\n\\n\\n\""},
    {"Ж\xd0", 0, 6, "Ж\xE2\x80\xA6"},
};

static void test_quote(void)
{
    for (size_t i = 0; i < sizeof quote_cases / sizeof quote_cases[0]; i++) {
        size_t sz = quote_cases[i].outsz;
        char *out = malloc(sz > 0 ? sz : 1);
        if (out == NULL)
            continue;
        memset(out, 'X', sz > 0 ? sz : 1);
        UNIT_CASE(quote_cases[i].want != NULL ? quote_cases[i].want : "(nothing written)");
        const char *got = pl_rules_quote(out, sz, quote_cases[i].s, quote_cases[i].quoted);
        CHECK(got == out);
        if (quote_cases[i].want == NULL)
            CHECK_INT(out[0], 'X');
        else
            CHECK_STR(out, quote_cases[i].want);
        free(out);
    }
}

static void test_counts(void)
{
    for (size_t i = 0; i < sizeof count_cases / sizeof count_cases[0]; i++) {
        UNIT_CASE(count_cases[i].text);
        CHECK_INT(pl_rules_placeholder_count(count_cases[i].text), count_cases[i].want);
    }
    UNIT_CASE("count: NULL text");
    CHECK_INT(pl_rules_placeholder_count(NULL), 0);
}

static const struct {
    enum pl_code code;
    const char *name;
} code_cases[] = {
    {PL_OK, "ok"},
    {PL_TOO_MANY_QUICK_REPLIES, "too_many_quick_replies"},
    {PL_LABEL_TOO_LONG, "label_too_long"},
    {PL_LABEL_EMPTY, "label_empty"},
    {PL_DUPLICATE_LABEL, "duplicate_label"},
    {PL_MIXED_BUTTONS, "mixed_buttons"},
    {PL_TOO_MANY_URL_BUTTONS, "too_many_url_buttons"},
    {PL_TOO_MANY_CALL_BUTTONS, "too_many_call_buttons"},
    {PL_BAD_URL, "bad_url"},
    {PL_BAD_PHONE, "bad_phone"},
    {PL_BAD_ID, "bad_id"},
    {PL_TEXT_EMPTY, "text_empty"},
    {PL_TEXT_TOO_LONG, "text_too_long"},
    {PL_HEADER_TOO_LONG, "header_too_long"},
    {PL_FOOTER_TOO_LONG, "footer_too_long"},
    {PL_BAD_UTF8, "bad_utf8"},
    {PL_LIST_INVALID, "list_invalid"},
    {PL_MEDIA_INVALID, "media_invalid"},
    {PL_WINDOW_CLOSED, "window_closed"},
    {PL_UNKNOWN_TEMPLATE, "unknown_template"},
    {PL_TEMPLATE_NOT_APPROVED, "template_not_approved"},
    {PL_TEMPLATE_PARAMS, "template_params"},
    {PL_TEMPLATE_PARAM_FORMAT, "template_param_format"},
    {PL_UNREGISTERED_BUTTONS, "unregistered_buttons"},
    {PL_TEMPLATE_INVALID, "template_invalid"},
    {PL_DAILY_LIMIT, "daily_limit"},
    {PL_NOT_OPTED_IN, "not_opted_in"},
    {PL_UNSUPPORTED_BY_PROVIDER, "unsupported_by_provider"},
    {PL_SCRIPT_ERROR, "script_error"},
    {PL_SCRIPT_TIMEOUT, "script_timeout"},
    {PL_SCRIPT_MEMORY, "script_memory"},
};

static void test_codes_and_tables(void)
{
    const struct pl_limits *cloud = pl_rules_limits("cloud-api"), *sandbox;
    struct pl_verdict v;

    for (size_t i = 0; i < sizeof code_cases / sizeof code_cases[0]; i++) {
        UNIT_CASE(code_cases[i].name);
        CHECK_STR(pl_code_name(code_cases[i].code), code_cases[i].name);
    }
    UNIT_CASE("codes: every code is in the table");
    CHECK_INT(sizeof code_cases / sizeof code_cases[0], PL_CODE_COUNT);
    UNIT_CASE("codes: out of range is never NULL");
    CHECK_STR(pl_code_name(PL_CODE_COUNT), "unknown");
    CHECK_STR(pl_code_name((enum pl_code) - 1), "unknown");

    UNIT_CASE("limits: known and unknown kinds");
    sandbox = pl_rules_limits("sandbox");
    CHECK(cloud != NULL && sandbox != NULL);
    CHECK(pl_rules_limits("whatsapp") == NULL);
    CHECK(pl_rules_limits("Cloud-API") == NULL);
    CHECK(pl_rules_limits(NULL) == NULL);
    if (cloud == NULL || sandbox == NULL)
        return;
    CHECK_STR(cloud->provider, "cloud-api");
    CHECK_STR(sandbox->provider, "sandbox");
    UNIT_CASE("limits: Meta's values");
    CHECK_INT(cloud->quick_replies_max, 3);
    CHECK_INT(cloud->label_max, 20);
    CHECK_INT(cloud->id_max, 256);
    CHECK_INT(cloud->text_max, 4096);
    CHECK_INT(cloud->text_with_buttons_max, 1024);
    CHECK_INT(cloud->list_rows_max, 10);
    CHECK_INT(cloud->tpl_label_max, 25);
    CHECK_INT(cloud->tpl_param_spaces_max, 4);
    CHECK_INT(cloud->window_seconds, 86400);
    CHECK_INT(cloud->flagged_grace_seconds, 7 * 86400);
    UNIT_CASE("limits: capabilities differ, limits do not");
    CHECK_INT(cloud->can_session_call_button, 0);
    CHECK_INT(cloud->can_url_with_call, 0);
    CHECK_INT(sandbox->can_session_call_button, 1);
    CHECK_INT(sandbox->can_url_with_call, 1);
    CHECK_INT(sandbox->label_max, cloud->label_max);
    CHECK_INT(sandbox->tpl_body_max, cloud->tpl_body_max);
    CHECK_INT(sandbox->row_desc_max, cloud->row_desc_max);

    UNIT_CASE("api: NULL verdict is allowed");
    CHECK_INT(pl_rules_check_message(cloud, &(struct pl_message){.text = "Hi"}, NULL), 0);
    CHECK_INT(pl_rules_check_message(cloud, &(struct pl_message){.text = ""}, NULL), -1);
    UNIT_CASE("api: NULL limits or message");
    CHECK_INT(pl_rules_check_message(NULL, &(struct pl_message){.text = "Hi"}, &v), -1);
    CHECK_INT(pl_rules_check_message(cloud, NULL, &v), -1);
    CHECK_INT(pl_rules_check_template(cloud, NULL, &v), -1);
    UNIT_CASE("api: buttons pointer NULL with a count is no buttons");
    CHECK_INT(pl_rules_check_message(cloud, &(struct pl_message){.text = "Hi", .nbuttons = 3}, &v),
              0);
}

/* ---- business-initiated messages ---- */

static const struct {
    const char *name;
    long long last_inbound;
    int opted_in;
    long limit, recent;
    int already;
    enum pl_code want;
    const char *detail;
} business_cases[] = {
    {"wrote before, under the limit", 1000, 0, 250, 10, 0, PL_OK, ""},
    {"opted in, never wrote", 0, 1, 250, 10, 0, PL_OK, ""},
    {"never wrote, no opt-in", 0, 0, 250, 0, 0, PL_NOT_OPTED_IN, "no recorded opt-in"},
    {"limit reached", 1000, 0, 250, 250, 0, PL_DAILY_LIMIT, "250 unique contacts"},
    {"one below the limit", 1000, 0, 250, 249, 0, PL_OK, ""},
    {"limit reached, contact already counted", 1000, 0, 250, 250, 1, PL_OK, ""},
    {"unlimited tier", 1000, 0, -1, 1000000, 0, PL_OK, ""},
    {"zero limit", 1000, 0, 0, 0, 0, PL_DAILY_LIMIT, "its limit is 0"},
    {"opt-in checked before the limit", 0, 0, 250, 250, 0, PL_NOT_OPTED_IN, "opt-in"},
};

static void test_business(void)
{
    for (size_t i = 0; i < sizeof business_cases / sizeof business_cases[0]; i++) {
        struct pl_verdict v;
        UNIT_CASE(business_cases[i].name);
        int rc = pl_rules_check_business(business_cases[i].last_inbound, business_cases[i].opted_in,
                                         business_cases[i].limit, business_cases[i].recent,
                                         business_cases[i].already, "79991234567", &v);
        CHECK_INT(rc, business_cases[i].want == PL_OK ? 0 : -1);
        CHECK_STR(pl_code_name(v.code), pl_code_name(business_cases[i].want));
        CHECK_CONTAINS(v.detail, business_cases[i].detail);
    }
}

/* ---- tiers and provider errors ---- */

static const struct {
    const char *tier;
    long limit;
} tier_cases[] = {
    {"TIER_50", 50},
    {"TIER_250", 250},
    {"TIER_1K", 1000},
    {"TIER_2K", 2000},
    {"TIER_10K", 10000},
    {"TIER_100K", 100000},
    {"TIER_UNLIMITED", -1},
    {"TIER_NOT_SET", -2},
    {"tier_250", -2},
    {"", -2},
    {NULL, -2},
};

/* a refused send: HTTP status, the error's code (-1: none), a transport failure */
static const struct {
    long http, code;
    int transport;
    enum pl_retry how;
} retry_cases[] = {
    {400, 1, 0, PL_RETRY_BACKOFF},      {400, 2, 0, PL_RETRY_BACKOFF},
    {400, 4, 0, PL_RETRY_BACKOFF},      {400, 80007, 0, PL_RETRY_BACKOFF},
    {400, 130429, 0, PL_RETRY_BACKOFF}, {500, 131000, 0, PL_RETRY_BACKOFF},
    {400, 131016, 0, PL_RETRY_BACKOFF}, {400, 131056, 0, PL_RETRY_RECIPIENT},
    {400, 131057, 0, PL_RETRY_BACKOFF}, {400, 133004, 0, PL_RETRY_BACKOFF},
    {400, 0, 0, PL_RETRY_NONE},         {400, 100, 0, PL_RETRY_NONE},
    {401, 190, 0, PL_RETRY_NONE},       {400, 131008, 0, PL_RETRY_NONE},
    {400, 131009, 0, PL_RETRY_NONE},    {400, 131026, 0, PL_RETRY_NONE},
    {400, 131047, 0, PL_RETRY_NONE},    {400, 131050, 0, PL_RETRY_NONE},
    {400, 132000, 0, PL_RETRY_NONE},    {400, 132001, 0, PL_RETRY_NONE},
    {400, 132012, 0, PL_RETRY_NONE},    {400, 132015, 0, PL_RETRY_NONE},
    {400, 132016, 0, PL_RETRY_NONE},    {400, 132018, 0, PL_RETRY_NONE},
    {400, -1, 0, PL_RETRY_NONE},        {404, -1, 0, PL_RETRY_NONE},
    {500, -1, 0, PL_RETRY_BACKOFF},     {503, -1, 0, PL_RETRY_BACKOFF},
    {429, -1, 0, PL_RETRY_BACKOFF},     {0, -1, 1, PL_RETRY_BACKOFF},
    {502, 131026, 0, PL_RETRY_BACKOFF}, {429, 131056, 0, PL_RETRY_RECIPIENT},
    {200, -1, 0, PL_RETRY_NONE},
};

static const struct {
    enum pl_retry how;
    int attempts;
    long long ms;
} wait_cases[] = {
    {PL_RETRY_BACKOFF, 1, 1000},
    {PL_RETRY_BACKOFF, 2, 2000},
    {PL_RETRY_BACKOFF, 6, 32000},
    {PL_RETRY_BACKOFF, 7, 60000},
    {PL_RETRY_BACKOFF, 40, 60000},
    {PL_RETRY_RECIPIENT, 1, 1000},
    {PL_RETRY_RECIPIENT, 2, 4000},
    {PL_RETRY_RECIPIENT, 3, 16000},
    {PL_RETRY_RECIPIENT, 6, 1024000},
    {PL_RETRY_RECIPIENT, 40, 1024000},
    {PL_RETRY_NONE, 3, 0},
};

static void test_tiers_and_retries(void)
{
    char name[64];
    for (size_t i = 0; i < sizeof tier_cases / sizeof tier_cases[0]; i++) {
        snprintf(name, sizeof name, "tier %s", tier_cases[i].tier ? tier_cases[i].tier : "NULL");
        UNIT_CASE(name);
        CHECK_INT(pl_rules_tier_limit(tier_cases[i].tier), tier_cases[i].limit);
    }
    for (size_t i = 0; i < sizeof retry_cases / sizeof retry_cases[0]; i++) {
        snprintf(name, sizeof name, "refused send: HTTP %ld, code %ld%s", retry_cases[i].http,
                 retry_cases[i].code, retry_cases[i].transport ? ", transport error" : "");
        UNIT_CASE(name);
        CHECK_INT(
            pl_rules_retry(retry_cases[i].http, retry_cases[i].code, retry_cases[i].transport),
            retry_cases[i].how);
    }
    const struct pl_limits *lim = pl_rules_limits("cloud-api");
    for (size_t i = 0; i < sizeof wait_cases / sizeof wait_cases[0]; i++) {
        snprintf(name, sizeof name, "retry wait: how %d, attempt %d", wait_cases[i].how,
                 wait_cases[i].attempts);
        UNIT_CASE(name);
        CHECK_INT(pl_rules_retry_wait_ms(lim, wait_cases[i].how, wait_cases[i].attempts),
                  wait_cases[i].ms);
    }
    UNIT_CASE("retry waits come from the limits table: a profile with other numbers");
    struct pl_limits other = *lim;
    other.retry_first_ms = 500;
    other.retry_factor = 3;
    other.retry_max_ms = 10000;
    CHECK_INT(pl_rules_retry_wait_ms(&other, PL_RETRY_BACKOFF, 3), 4500);
    CHECK_INT(pl_rules_retry_wait_ms(&other, PL_RETRY_BACKOFF, 9), 10000);
}

int main(void)
{
    build_strings();
    test_messages();
    test_phones();
    test_window();
    test_templates();
    test_params();
    test_statuses();
    test_counts();
    test_utf8();
    test_quote();
    test_codes_and_tables();
    printf(
        "rules: %zu table rows\n",
        sizeof msg_cases / sizeof msg_cases[0] + sizeof phone_cases / sizeof phone_cases[0] +
            sizeof window_cases / sizeof window_cases[0] + sizeof tpl_cases / sizeof tpl_cases[0] +
            sizeof param_cases / sizeof param_cases[0] +
            sizeof status_cases / sizeof status_cases[0] +
            sizeof count_cases / sizeof count_cases[0] + sizeof utf8_cases / sizeof utf8_cases[0] +
            sizeof quote_cases / sizeof quote_cases[0] + sizeof code_cases / sizeof code_cases[0]);
    test_business();
    test_tiers_and_retries();
    return unit_report("rules");
}
