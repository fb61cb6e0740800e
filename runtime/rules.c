/* rules.c - the send gate: every WhatsApp rule Parley enforces, as pure functions over one limit
 * table per provider kind. No I/O, no Lua, no clock, no allocation. A violation comes back as a
 * stable code and a one-line, valid-UTF-8 detail that names the value, where it is and the limit.
 */
#include "rules.h"
#include "utf8.h"

#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* How much of a value a detail quotes before cutting it with an ellipsis. Presentation only: no
 * WhatsApp limit lives outside the tables below. */
#define QUOTE_MAX_CP 40
#define QUOTE_BUF    256
#define ELLIPSIS     "\xE2\x80\xA6"
/* pl_rules_quote's smallest output buffer that holds more than "": "…" in quotes and the NUL */
#define QUOTE_MIN_SIZE (sizeof ELLIPSIS + 2)
#define PIECE_SIZE     16 /* one character of a detail, or its escape, and a NUL */
#define PREFIX_BUF     (2 * QUOTE_BUF + 16) /* `template "name" (language)` */
#define NAME_BUF       64                   /* "section 10 row 3" */
#define WHAT_BUF       (NAME_BUF + 32)      /* "section 10 row 3 description" */

/* Meta's limits (WHATSAPP.md, reference/cloud-api.md §3, §4.5, §4.6, Appendix A). Both provider
 * kinds share them; they differ only in what they can carry. */
#define META_LIMITS                                                                             \
    .quick_replies_max = 3, .label_max = 20, .id_max = 256, .url_buttons_max = 1,               \
    .call_buttons_max = 1, .text_max = 4096, .text_with_buttons_max = 1024, .header_max = 60,   \
    .footer_max = 60, .caption_max = 1024, .list_rows_max = 10, .list_sections_max = 10,        \
    .list_button_max = 20, .section_title_max = 24, .row_title_max = 24, .row_id_max = 200,     \
    .row_desc_max = 72, .phone_digits_min = 7, .phone_digits_max = 15, .tpl_body_max = 1024,    \
    .tpl_header_max = 60, .tpl_footer_max = 60, .tpl_buttons_max = 10,                          \
    .tpl_quick_replies_max = 10, .tpl_url_buttons_max = 2, .tpl_phone_buttons_max = 1,          \
    .tpl_label_max = 25, .tpl_url_max = 2000, .tpl_param_body_max = 1024,                       \
    .tpl_param_header_max = 60, .tpl_param_spaces_max = 4, .window_seconds = 86400,             \
    .flagged_grace_seconds = 7L * 86400, .tpl_name_max = 512, .tpl_header_placeholders_max = 1, \
    .tpl_copy_code_buttons_max = 1, .retry_first_ms = 1000, .retry_factor = 2,                  \
    .retry_max_ms = 60000, .pair_retry_factor = 4, .pair_retry_max_ms = 1024000,                \
    .send_max_age_seconds = 86400

static const struct pl_limits cloud_api_limits = {
    .provider = "cloud-api",
    META_LIMITS,
    .can_session_call_button = 0,
    .can_url_with_call = 0,
};

static const struct pl_limits sandbox_limits = {
    .provider = "sandbox",
    META_LIMITS,
    .can_session_call_button = 1,
    .can_url_with_call = 1,
};

static const char *const code_names[PL_CODE_COUNT] = {
    [PL_OK] = "ok",
    [PL_TOO_MANY_QUICK_REPLIES] = "too_many_quick_replies",
    [PL_LABEL_TOO_LONG] = "label_too_long",
    [PL_LABEL_EMPTY] = "label_empty",
    [PL_DUPLICATE_LABEL] = "duplicate_label",
    [PL_MIXED_BUTTONS] = "mixed_buttons",
    [PL_TOO_MANY_URL_BUTTONS] = "too_many_url_buttons",
    [PL_TOO_MANY_CALL_BUTTONS] = "too_many_call_buttons",
    [PL_BAD_URL] = "bad_url",
    [PL_BAD_PHONE] = "bad_phone",
    [PL_BAD_ID] = "bad_id",
    [PL_TEXT_EMPTY] = "text_empty",
    [PL_TEXT_TOO_LONG] = "text_too_long",
    [PL_HEADER_TOO_LONG] = "header_too_long",
    [PL_FOOTER_TOO_LONG] = "footer_too_long",
    [PL_BAD_UTF8] = "bad_utf8",
    [PL_LIST_INVALID] = "list_invalid",
    [PL_MEDIA_INVALID] = "media_invalid",
    [PL_WINDOW_CLOSED] = "window_closed",
    [PL_UNKNOWN_TEMPLATE] = "unknown_template",
    [PL_TEMPLATE_NOT_APPROVED] = "template_not_approved",
    [PL_TEMPLATE_PARAMS] = "template_params",
    [PL_TEMPLATE_PARAM_FORMAT] = "template_param_format",
    [PL_UNREGISTERED_BUTTONS] = "unregistered_buttons",
    [PL_TEMPLATE_INVALID] = "template_invalid",
    [PL_DAILY_LIMIT] = "daily_limit",
    [PL_NOT_OPTED_IN] = "not_opted_in",
    [PL_UNSUPPORTED_BY_PROVIDER] = "unsupported_by_provider",
    [PL_SCRIPT_ERROR] = "script_error",
    [PL_SCRIPT_TIMEOUT] = "script_timeout",
    [PL_SCRIPT_MEMORY] = "script_memory",
};

const char *pl_code_name(enum pl_code code)
{
    if ((int)code < 0 || code >= PL_CODE_COUNT || code_names[code] == NULL)
        return "unknown";
    return code_names[code];
}

const struct pl_limits *pl_rules_limits(const char *provider_kind)
{
    if (provider_kind == NULL)
        return NULL;
    if (strcmp(provider_kind, cloud_api_limits.provider) == 0)
        return &cloud_api_limits;
    if (strcmp(provider_kind, sandbox_limits.provider) == 0)
        return &sandbox_limits;
    return NULL;
}

/* ---- details ---- */

/* Cut s back so that it does not end inside a UTF-8 sequence (after vsnprintf truncated it). */
static void trim_partial_utf8(char *s)
{
    size_t len = strlen(s), j = len, need;
    unsigned char lead;

    while (j > 0 && ((unsigned char)s[j - 1] & 0xC0) == 0x80 && len - j < 3)
        j--;
    if (j == 0)
        return;
    lead = (unsigned char)s[j - 1];
    if (lead < 0x80)
        return;
    need = (lead & 0xE0) == 0xC0 ? 2 : (lead & 0xF0) == 0xE0 ? 3 : (lead & 0xF8) == 0xF0 ? 4 : 1;
    if (len - (j - 1) < need)
        s[j - 1] = '\0';
}

static int fail(struct pl_verdict *v, enum pl_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Fill v with code and a printf-style detail; always returns -1. */
static int fail(struct pl_verdict *v, enum pl_code code, const char *fmt, ...)
{
    va_list ap;
    int n;

    v->code = code;
    va_start(ap, fmt);
    n = vsnprintf(v->detail, sizeof v->detail, fmt, ap);
    va_end(ap);
    if (n < 0)
        v->detail[0] = '\0';
    else if ((size_t)n >= sizeof v->detail)
        trim_partial_utf8(v->detail);
    return -1;
}

static void ok(struct pl_verdict *v)
{
    v->code = PL_OK;
    v->detail[0] = '\0';
}

static int is_space_cp(uint32_t cp)
{
    char b[5];
    size_t n = pl_utf8_encode(cp, b);

    if (n == 0 || cp == 0)
        return 0;
    b[n] = '\0';
    return pl_utf8_is_blank(b);
}

/* The piece of a detail that stands for the character at s + i (of len bytes): the character
 * itself, or its escape. Writes it into piece and returns how many bytes of s it stands for. */
static size_t quote_piece(const char *s, size_t len, size_t i, char piece[PIECE_SIZE])
{
    uint32_t cp;
    size_t n = pl_utf8_decode(s + i, len - i, &cp);

    if (n == 0) {
        snprintf(piece, PIECE_SIZE, "\\x%02X", (unsigned)(unsigned char)s[i]);
        return 1;
    }
    if (cp == '"' || cp == '\\')
        snprintf(piece, PIECE_SIZE, "\\%c", (char)cp);
    else if (cp == '\n')
        snprintf(piece, PIECE_SIZE, "\\n");
    else if (cp == '\t')
        snprintf(piece, PIECE_SIZE, "\\t");
    else if (cp == '\r')
        snprintf(piece, PIECE_SIZE, "\\r");
    else if (cp < 0x20 || cp == 0x7F)
        snprintf(piece, PIECE_SIZE, "\\x%02X", (unsigned)cp);
    else if ((cp >= 0x80 && cp < 0xA0) || (cp != ' ' && is_space_cp(cp)))
        /* C1 controls and invisible or line-breaking spaces (U+00A0, U+200B, U+2028, …) */
        snprintf(piece, PIECE_SIZE, "\\u%04X", (unsigned)cp);
    else {
        memcpy(piece, s + i, n);
        piece[n] = '\0';
    }
    return n;
}

/* Write s into out for a detail: in double quotes when `quoted`, at most QUOTE_MAX_CP code points
 * then "…", with quotes, backslashes, control characters, invisible spaces, line separators and
 * invalid bytes escaped so that the detail stays one line of valid UTF-8; never past outsz bytes
 * (cut with "…" between whole pieces to fit, "" when not even that fits). Returns out. */
const char *pl_rules_quote(char *out, size_t outsz, const char *s, int quoted)
{
    size_t len, i, o = 0, n, m, room, mark;
    int count;
    char piece[PIECE_SIZE];

    if (s == NULL) {
        snprintf(out, outsz, "(none)");
        return out;
    }
    /* room for at least the quotes, "…" and the NUL: below that, nothing but an empty string */
    if (outsz < QUOTE_MIN_SIZE) {
        if (outsz > 0)
            out[0] = '\0';
        return out;
    }
    len = strlen(s);
    room = outsz - (size_t)quoted - 1; /* where the pieces must end: the quote and NUL follow */
    if (quoted)
        out[o++] = '"';
    mark = o; /* the last end of a piece with room after it for "…" */
    for (i = 0, count = 0; i < len; i += n, count++) {
        n = quote_piece(s, len, i, piece);
        m = strlen(piece);
        if (count == QUOTE_MAX_CP || o + m > room) { /* cut back to the mark, then "…" */
            memcpy(out + mark, ELLIPSIS, sizeof ELLIPSIS - 1);
            o = mark + sizeof ELLIPSIS - 1;
            break;
        }
        memcpy(out + o, piece, m);
        o += m;
        if (o + sizeof ELLIPSIS - 1 <= room)
            mark = o;
    }
    if (quoted)
        out[o++] = '"';
    out[o] = '\0';
    return out;
}

#define QUOTE(buf, s) pl_rules_quote((buf), sizeof(buf), (s), 1)

/* How a detail names the provider: "Cloud API" for cloud-api, else its kind. */
static const char *provider_name(const struct pl_limits *lim)
{
    if (lim->provider == NULL)
        return "this provider's";
    if (strcmp(lim->provider, "cloud-api") == 0)
        return "Cloud API";
    return lim->provider;
}

/* ---- strings ---- */

/* Code points in valid UTF-8 s (0 for NULL); callers check validity first. */
static long cps(const char *s)
{
    long n;

    if (s == NULL)
        return 0;
    n = pl_utf8_length(s);
    return n < 0 ? 0 : n;
}

static int blank(const char *s)
{
    return s == NULL || pl_utf8_is_blank(s);
}

/* 1 when valid UTF-8 s starts or ends with whitespace. */
static int edge_space(const char *s)
{
    size_t len = strlen(s), j;
    uint32_t cp;

    if (len == 0)
        return 0;
    if (pl_utf8_decode(s, len, &cp) > 0 && is_space_cp(cp))
        return 1;
    j = len - 1;
    while (j > 0 && ((unsigned char)s[j] & 0xC0) == 0x80)
        j--;
    return pl_utf8_decode(s + j, len - j, &cp) > 0 && is_space_cp(cp);
}

/* -1 with code when s (may be NULL) is not valid UTF-8; the detail names `what` and the offset. */
static int check_utf8(struct pl_verdict *v, enum pl_code code, const char *prefix, const char *what,
                      const char *s)
{
    size_t bad = 0;

    if (s == NULL || pl_utf8_valid(s, strlen(s), &bad))
        return 0;
    return fail(v, code, "%s%s is not valid UTF-8 (byte 0x%02X at offset %zu)", prefix, what,
                (unsigned)(unsigned char)s[bad], bad);
}

static int check_named_utf8(struct pl_verdict *v, const char *s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* check_utf8 for a field whose name (fmt, ...) is formatted only when its value is bad: the send
 * check runs for every message, and almost every value is good. */
static int check_named_utf8(struct pl_verdict *v, const char *s, const char *fmt, ...)
{
    char what[WHAT_BUF];
    va_list ap;

    if (s == NULL || pl_utf8_valid(s, strlen(s), NULL))
        return 0;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return check_utf8(v, PL_BAD_UTF8, "", what, s);
}

static int ascii_prefix_ci(const char *s, size_t len, const char *prefix)
{
    size_t i, n = strlen(prefix);

    if (len < n)
        return 0;
    for (i = 0; i < n; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != prefix[i])
            return 0;
    }
    return 1;
}

/* Why url[0..len) is not an absolute http(s) URL with a host: NULL when it is, else the tail of
 * the sentence "… is not an absolute http(s) URL<tail>". */
static const char *url_problem(const char *url, size_t len)
{
    size_t i, n, start, end, host;
    uint32_t cp;

    if (ascii_prefix_ci(url, len, "http://"))
        start = strlen("http://");
    else if (ascii_prefix_ci(url, len, "https://"))
        start = strlen("https://");
    else
        return "";
    for (i = 0; i < len; i += n) {
        n = pl_utf8_decode(url + i, len - i, &cp);
        if (n == 0)
            return " (invalid UTF-8)";
        if (cp <= 0x20 || cp == 0x7F || (cp >= 0x80 && cp < 0xA0) || is_space_cp(cp))
            return " (it contains a space or control character)";
    }
    for (end = start; end < len && url[end] != '/' && url[end] != '?' && url[end] != '#'; end++)
        ;
    host = start;
    for (i = start; i < end; i++)
        if (url[i] == '@')
            host = i + 1;
    if (host < end && url[host] == '[') {
        for (i = host; i < end && url[i] != ']'; i++)
            ;
        if (i == end || i == host + 1)
            return " (it has no host)";
        i++;
    } else {
        for (i = host; i < end && url[i] != ':'; i++)
            ;
        if (i == host)
            return " (it has no host)";
    }
    if (i < end) {
        if (url[i] != ':')
            return " (it has no host)";
        for (i++; i < end; i++)
            if (url[i] < '0' || url[i] > '9')
                return " (its port is not a number)";
    }
    return NULL;
}

/* ---- phone numbers ---- */

int pl_rules_normalize_phone(const struct pl_limits *lim, const char *in, char *out, size_t outsz)
{
    const char *p;
    size_t nd = 0, o = 0;

    if (lim == NULL || in == NULL || out == NULL)
        return -1;
    p = in;
    while (*p == ' ')
        p++;
    if (*p != '+')
        return -1;
    for (const char *q = p + 1; *q != '\0'; q++) {
        if (*q >= '0' && *q <= '9') {
            if (nd == 0 && *q == '0')
                return -1;
            if (++nd > (size_t)lim->phone_digits_max)
                return -1;
        } else if (*q != ' ' && *q != '-' && *q != '.' && *q != '(' && *q != ')') {
            return -1;
        }
    }
    if (nd < (size_t)lim->phone_digits_min || outsz < nd + 2)
        return -1;
    out[o++] = '+';
    for (const char *q = p + 1; *q != '\0'; q++)
        if (*q >= '0' && *q <= '9')
            out[o++] = *q;
    out[o] = '\0';
    return 0;
}

/* A template PHONE_NUMBER: an international number as above, or Meta's digits-only form
 * ("15550051310") with the same digit count. */
static int tpl_phone_ok(const struct pl_limits *lim, const char *phone)
{
    char buf[64];
    size_t nd;

    if (phone[0] < '0' || phone[0] > '9')
        return pl_rules_normalize_phone(lim, phone, buf, sizeof buf) == 0;
    if (phone[0] == '0')
        return 0;
    for (nd = 0; phone[nd] != '\0'; nd++)
        if (phone[nd] < '0' || phone[nd] > '9')
            return 0;
    return nd >= (size_t)lim->phone_digits_min && nd <= (size_t)lim->phone_digits_max;
}

/* ---- the customer-service window ---- */

long pl_rules_window_left(const struct pl_limits *lim, long long now, long long last_inbound)
{
    long long elapsed;

    if (lim == NULL || last_inbound <= 0 || lim->window_seconds <= 0)
        return 0;
    if (last_inbound > now)
        return lim->window_seconds; /* clock skew: the message cannot be from the future */
    elapsed = now - last_inbound;
    if (elapsed >= lim->window_seconds)
        return 0;
    return (long)(lim->window_seconds - elapsed);
}

/* "90 s", "5 min", "27 h", "3 days": a duration for a detail. Units, not limits. */
static void format_duration(char *out, size_t outsz, long long secs)
{
    enum { MINUTE = 60, HOUR = 60 * MINUTE, DAY = 24 * HOUR };

    if (secs < 2 * MINUTE)
        snprintf(out, outsz, "%lld s", secs);
    else if (secs < 2 * HOUR)
        snprintf(out, outsz, "%lld min", secs / MINUTE);
    else if (secs < 2 * DAY)
        snprintf(out, outsz, "%lld h", secs / HOUR);
    else
        snprintf(out, outsz, "%lld days", secs / DAY);
}

int pl_rules_check_window(const struct pl_limits *lim, long long now, long long last_inbound,
                          struct pl_verdict *v)
{
    struct pl_verdict scratch;
    char ago[32], len[32], last[32];

    if (v == NULL)
        v = &scratch;
    ok(v);
    if (pl_rules_window_left(lim, now, last_inbound) > 0)
        return 0;
    if (lim == NULL)
        return fail(v, PL_WINDOW_CLOSED, "no provider limits to check the window against");
    format_duration(len, sizeof len, lim->window_seconds);
    if (last_inbound <= 0)
        return fail(v, PL_WINDOW_CLOSED,
                    "the contact has never written, so there is no customer-service window; "
                    "send a template");
    format_duration(ago, sizeof ago, now - last_inbound - lim->window_seconds);
    format_duration(last, sizeof last, now - last_inbound);
    return fail(v, PL_WINDOW_CLOSED,
                "the %s customer-service window closed %s ago (the contact last wrote %s ago); "
                "send a template",
                len, ago, last);
}

/* ---- session messages ---- */

static size_t nbuttons_of(const struct pl_message *m)
{
    return m->buttons != NULL ? m->nbuttons : 0;
}

static size_t nsections_of(const struct pl_list *l)
{
    return l->sections != NULL ? l->nsections : 0;
}

static size_t nrows_of(const struct pl_list_section *s)
{
    return s->rows != NULL ? s->nrows : 0;
}

static const char *media_name(enum pl_media_kind kind)
{
    return kind == PL_MEDIA_IMAGE ? "image" : kind == PL_MEDIA_DOCUMENT ? "document" : "media";
}

/* "row 3" in a one-section list, "section 2 row 1" otherwise (both numbered from 1). */
static const char *row_name(char *out, size_t outsz, size_t nsections, size_t s, size_t r)
{
    if (nsections > 1)
        snprintf(out, outsz, "section %zu row %zu", s + 1, r + 1);
    else
        snprintf(out, outsz, "row %zu", r + 1);
    return out;
}

static int message_utf8(const struct pl_message *m, struct pl_verdict *v)
{
    size_t i, s, r, nb = nbuttons_of(m);

    if (check_utf8(v, PL_BAD_UTF8, "", "text", m->text) < 0 ||
        check_utf8(v, PL_BAD_UTF8, "", "header", m->header) < 0 ||
        check_utf8(v, PL_BAD_UTF8, "", "footer", m->footer) < 0)
        return -1;
    for (i = 0; i < nb; i++) {
        const struct pl_button *b = &m->buttons[i];
        const char *names[] = {"title", "id", "url", "phone"};
        const char *vals[] = {b->title, b->id, b->url, b->phone};
        for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
            if (check_named_utf8(v, vals[k], "button %zu %s", i + 1, names[k]) < 0)
                return -1;
    }
    if (m->list != NULL) {
        const struct pl_list *l = m->list;
        if (check_utf8(v, PL_BAD_UTF8, "", "list button", l->button) < 0)
            return -1;
        for (s = 0; s < nsections_of(l); s++) {
            const struct pl_list_section *sec = &l->sections[s];
            if (check_named_utf8(v, sec->title, "section %zu title", s + 1) < 0)
                return -1;
            for (r = 0; r < nrows_of(sec); r++) {
                const struct pl_list_row *row = &sec->rows[r];
                const char *names[] = {"title", "id", "description"};
                const char *vals[] = {row->title, row->id, row->description};
                char rn[NAME_BUF];
                row_name(rn, sizeof rn, nsections_of(l), s, r);
                for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
                    if (check_named_utf8(v, vals[k], "%s %s", rn, names[k]) < 0)
                        return -1;
            }
        }
    }
    {
        const char *names[] = {"link", "caption", "filename"};
        const char *vals[] = {m->media.link, m->media.caption, m->media.filename};
        for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
            if (check_named_utf8(v, vals[k], "%s %s", media_name(m->media.kind), names[k]) < 0)
                return -1;
    }
    return 0;
}

static int message_text(const struct pl_limits *lim, const struct pl_message *m,
                        struct pl_verdict *v)
{
    int interactive = nbuttons_of(m) > 0 || m->list != NULL;
    int media = m->media.kind != PL_MEDIA_NONE;
    long len, max;
    const char *where;

    if (blank(m->text)) {
        if (media && !interactive)
            return 0; /* a bare image or document needs no words */
        if (m->list != NULL)
            return fail(v, PL_TEXT_EMPTY, "text is empty; a list message needs a body text");
        if (interactive)
            return fail(v, PL_TEXT_EMPTY,
                        "text is empty; a message with buttons needs a body text");
        return fail(v, PL_TEXT_EMPTY, "text is empty; WhatsApp does not send an empty message");
    }
    if (m->list != NULL) {
        max = lim->text_with_buttons_max;
        where = " in a list message";
    } else if (interactive) {
        max = lim->text_with_buttons_max;
        where = " in a message with buttons";
    } else if (media) {
        max = lim->caption_max; /* the text becomes the caption */
        where = " in a media caption";
    } else {
        max = lim->text_max;
        where = "";
    }
    len = cps(m->text);
    if (len > max)
        return fail(v, PL_TEXT_TOO_LONG, "text is %ld characters; WhatsApp allows %ld%s", len, max,
                    where);
    return 0;
}

static int message_header_footer(const struct pl_limits *lim, const struct pl_message *m,
                                 struct pl_verdict *v)
{
    int interactive = nbuttons_of(m) > 0 || m->list != NULL;
    const char *what[2] = {"header", "footer"};
    const char *val[2] = {m->header, m->footer};
    int max[2] = {lim->header_max, lim->footer_max};
    enum pl_code code[2] = {PL_HEADER_TOO_LONG, PL_FOOTER_TOO_LONG};
    char q[QUOTE_BUF];
    long len;

    for (int k = 0; k < 2; k++) {
        if (val[k] == NULL)
            continue;
        if (!interactive)
            return fail(v, PL_UNSUPPORTED_BY_PROVIDER,
                        "a %s needs buttons or a list (an interactive message); WhatsApp has no "
                        "place for it in a plain %s message",
                        what[k], m->media.kind != PL_MEDIA_NONE ? "media" : "text");
        if (blank(val[k]))
            return fail(v, PL_TEXT_EMPTY, "%s %s is blank; leave it out or give it text", what[k],
                        QUOTE(q, val[k]));
        len = cps(val[k]);
        if (len > max[k])
            return fail(v, code[k], "%s %s is %ld characters; WhatsApp allows %d", what[k],
                        QUOTE(q, val[k]), len, max[k]);
    }
    return 0;
}

static int message_buttons(const struct pl_limits *lim, const struct pl_message *m,
                           struct pl_verdict *v)
{
    size_t nb = nbuttons_of(m), nqr = 0, nurl = 0, ncall = 0, i, j, first_qr = 0, first_other = 0;
    char q[QUOTE_BUF], phone[64];
    const char *problem;
    long len;

    if (nb == 0)
        return 0;
    if (m->list != NULL)
        return fail(v, PL_MIXED_BUTTONS,
                    "a list cannot carry buttons; send the buttons in another message");
    for (i = 0; i < nb; i++) {
        enum pl_button_kind kind = m->buttons[i].kind;
        if (kind == PL_BUTTON_REPLY) {
            if (nqr++ == 0)
                first_qr = i + 1;
        } else {
            if (nurl + ncall == 0)
                first_other = i + 1;
            if (kind == PL_BUTTON_URL)
                nurl++;
            else if (kind == PL_BUTTON_CALL)
                ncall++;
            else
                return fail(v, PL_MIXED_BUTTONS, "button %zu has an unknown kind (%d)", i + 1,
                            (int)kind);
        }
    }
    if (nqr > (size_t)lim->quick_replies_max)
        return fail(v, PL_TOO_MANY_QUICK_REPLIES, "%zu quick replies; WhatsApp allows at most %d",
                    nqr, lim->quick_replies_max);
    if (nqr > 0 && nurl + ncall > 0)
        return fail(v, PL_MIXED_BUTTONS,
                    "button %zu is a quick reply and button %zu a %s button; WhatsApp does not mix "
                    "quick replies with URL or call buttons in one message",
                    first_qr, first_other,
                    m->buttons[first_other - 1].kind == PL_BUTTON_URL ? "URL" : "call");
    if (nurl > (size_t)lim->url_buttons_max)
        return fail(v, PL_TOO_MANY_URL_BUTTONS, "%zu URL buttons; WhatsApp allows at most %d", nurl,
                    lim->url_buttons_max);
    if (ncall > (size_t)lim->call_buttons_max)
        return fail(v, PL_TOO_MANY_CALL_BUTTONS, "%zu call buttons; WhatsApp allows at most %d",
                    ncall, lim->call_buttons_max);

    for (i = 0; i < nb; i++) {
        const struct pl_button *b = &m->buttons[i];
        const char *id;
        if (b->title == NULL)
            return fail(v, PL_LABEL_EMPTY, "button %zu has no label", i + 1);
        if (blank(b->title))
            return fail(v, PL_LABEL_EMPTY, "button %zu label %s is blank", i + 1,
                        QUOTE(q, b->title));
        len = cps(b->title);
        if (len > lim->label_max)
            return fail(v, PL_LABEL_TOO_LONG, "button %zu %s is %ld characters; WhatsApp allows %d",
                        i + 1, QUOTE(q, b->title), len, lim->label_max);
        switch (b->kind) {
        case PL_BUTTON_REPLY:
            id = b->id != NULL ? b->id : b->title;
            if (id[0] == '\0')
                return fail(v, PL_BAD_ID, "button %zu id is empty", i + 1);
            if (edge_space(id))
                return fail(v, PL_BAD_ID,
                            "button %zu id %s has leading or trailing spaces; WhatsApp forbids "
                            "them%s",
                            i + 1, QUOTE(q, id),
                            b->id == NULL ? " (the id is the title when none is given)" : "");
            len = cps(id);
            if (len > lim->id_max)
                return fail(v, PL_BAD_ID, "button %zu id %s is %ld characters; WhatsApp allows %d",
                            i + 1, QUOTE(q, id), len, lim->id_max);
            break;
        case PL_BUTTON_URL:
            if (b->url == NULL || b->url[0] == '\0')
                return fail(v, PL_BAD_URL, "button %zu has no url", i + 1);
            problem = url_problem(b->url, strlen(b->url));
            if (problem != NULL)
                return fail(v, PL_BAD_URL, "button %zu url %s is not an absolute http(s) URL%s",
                            i + 1, QUOTE(q, b->url), problem);
            break;
        case PL_BUTTON_CALL:
            if (b->phone == NULL || b->phone[0] == '\0')
                return fail(v, PL_BAD_PHONE, "button %zu has no phone number", i + 1);
            if (pl_rules_normalize_phone(lim, b->phone, phone, sizeof phone) < 0)
                return fail(v, PL_BAD_PHONE,
                            "button %zu phone %s is not an international number (+, country "
                            "code, %d-%d digits)",
                            i + 1, QUOTE(q, b->phone), lim->phone_digits_min,
                            lim->phone_digits_max);
            break;
        }
    }

    for (i = 0; i < nb; i++) {
        const struct pl_button *a = &m->buttons[i];
        if (a->kind != PL_BUTTON_REPLY)
            continue;
        for (j = i + 1; j < nb; j++) {
            const struct pl_button *b = &m->buttons[j];
            const char *ida = a->id != NULL ? a->id : a->title;
            const char *idb = b->id != NULL ? b->id : b->title;
            if (b->kind != PL_BUTTON_REPLY)
                continue;
            if (strcmp(a->title, b->title) == 0)
                return fail(v, PL_DUPLICATE_LABEL, "buttons %zu and %zu have the same title %s",
                            i + 1, j + 1, QUOTE(q, a->title));
            if (strcmp(ida, idb) == 0)
                return fail(v, PL_DUPLICATE_LABEL, "buttons %zu and %zu have the same id %s", i + 1,
                            j + 1, QUOTE(q, ida));
        }
    }
    return 0;
}

static int list_row(const struct pl_limits *lim, const char *rn, const struct pl_list_row *row,
                    struct pl_verdict *v)
{
    char q[QUOTE_BUF];
    long len;

    if (row->title == NULL)
        return fail(v, PL_LABEL_EMPTY, "%s has no title", rn);
    if (blank(row->title))
        return fail(v, PL_LABEL_EMPTY, "%s title %s is blank", rn, QUOTE(q, row->title));
    len = cps(row->title);
    if (len > lim->row_title_max)
        return fail(v, PL_LABEL_TOO_LONG, "%s title %s is %ld characters; WhatsApp allows %d", rn,
                    QUOTE(q, row->title), len, lim->row_title_max);
    if (row->description != NULL) {
        if (blank(row->description))
            return fail(v, PL_LIST_INVALID,
                        "%s description %s is blank; leave it out or give it text", rn,
                        QUOTE(q, row->description));
        len = cps(row->description);
        if (len > lim->row_desc_max)
            return fail(v, PL_LIST_INVALID,
                        "%s description %s is %ld characters; WhatsApp allows %d", rn,
                        QUOTE(q, row->description), len, lim->row_desc_max);
    }
    if (row->id == NULL || row->id[0] == '\0')
        return fail(v, PL_BAD_ID, "%s has no id", rn);
    if (edge_space(row->id))
        return fail(v, PL_BAD_ID, "%s id %s has leading or trailing spaces; WhatsApp forbids them",
                    rn, QUOTE(q, row->id));
    len = cps(row->id);
    if (len > lim->row_id_max)
        return fail(v, PL_BAD_ID, "%s id %s is %ld characters; WhatsApp allows %d", rn,
                    QUOTE(q, row->id), len, lim->row_id_max);
    return 0;
}

static int message_list(const struct pl_limits *lim, const struct pl_message *m,
                        struct pl_verdict *v)
{
    const struct pl_list *l = m->list;
    size_t ns, s, r, s2, r2, total = 0;
    char q[QUOTE_BUF], rn[NAME_BUF], rn2[NAME_BUF];
    long len;

    if (l == NULL)
        return 0;
    if (l->button == NULL)
        return fail(v, PL_LABEL_EMPTY, "the list button has no text");
    if (blank(l->button))
        return fail(v, PL_LABEL_EMPTY, "list button %s is blank", QUOTE(q, l->button));
    len = cps(l->button);
    if (len > lim->list_button_max)
        return fail(v, PL_LABEL_TOO_LONG, "list button %s is %ld characters; WhatsApp allows %d",
                    QUOTE(q, l->button), len, lim->list_button_max);
    ns = nsections_of(l);
    if (ns == 0)
        return fail(v, PL_LIST_INVALID, "a list needs at least one section");
    if (ns > (size_t)lim->list_sections_max)
        return fail(v, PL_LIST_INVALID, "%zu sections; WhatsApp allows at most %d", ns,
                    lim->list_sections_max);
    for (s = 0; s < ns; s++)
        total += nrows_of(&l->sections[s]);
    if (total == 0)
        return fail(v, PL_LIST_INVALID, "a list needs at least one row");
    if (total > (size_t)lim->list_rows_max)
        return fail(v, PL_LIST_INVALID, "%zu rows; WhatsApp allows at most %d in all sections",
                    total, lim->list_rows_max);
    for (s = 0; s < ns; s++) {
        const struct pl_list_section *sec = &l->sections[s];
        if (sec->title == NULL) {
            if (ns > 1)
                return fail(v, PL_LIST_INVALID,
                            "section %zu has no title; WhatsApp requires one when a list has more "
                            "than one section",
                            s + 1);
        } else {
            if (blank(sec->title))
                return fail(v, PL_LIST_INVALID,
                            "section %zu title %s is blank; leave it out or give it text", s + 1,
                            QUOTE(q, sec->title));
            len = cps(sec->title);
            if (len > lim->section_title_max)
                return fail(v, PL_LIST_INVALID,
                            "section %zu title %s is %ld characters; WhatsApp allows %d", s + 1,
                            QUOTE(q, sec->title), len, lim->section_title_max);
        }
        if (nrows_of(sec) == 0)
            return fail(v, PL_LIST_INVALID, "section %zu has no rows", s + 1);
        for (r = 0; r < nrows_of(sec); r++)
            if (list_row(lim, row_name(rn, sizeof rn, ns, s, r), &sec->rows[r], v) < 0)
                return -1;
    }
    for (s = 0; s < ns; s++)
        for (r = 0; r < nrows_of(&l->sections[s]); r++)
            for (s2 = s; s2 < ns; s2++)
                for (r2 = (s2 == s ? r + 1 : 0); r2 < nrows_of(&l->sections[s2]); r2++) {
                    const char *a = l->sections[s].rows[r].id, *b = l->sections[s2].rows[r2].id;
                    if (strcmp(a, b) != 0)
                        continue;
                    if (ns == 1)
                        return fail(v, PL_DUPLICATE_LABEL, "rows %zu and %zu have the same id %s",
                                    r + 1, r2 + 1, QUOTE(q, a));
                    return fail(v, PL_DUPLICATE_LABEL, "%s and %s have the same id %s",
                                row_name(rn, sizeof rn, ns, s, r),
                                row_name(rn2, sizeof rn2, ns, s2, r2), QUOTE(q, a));
                }
    return 0;
}

static int message_media(const struct pl_limits *lim, const struct pl_message *m,
                         struct pl_verdict *v)
{
    const struct pl_media *md = &m->media;
    const char *what = media_name(md->kind), *problem;
    char q[QUOTE_BUF];
    long len;

    if (md->kind == PL_MEDIA_NONE) {
        if (md->link != NULL || md->caption != NULL || md->filename != NULL)
            return fail(v, PL_MEDIA_INVALID,
                        "a media link, caption or filename was given without an image or "
                        "document");
        return 0;
    }
    if (md->kind != PL_MEDIA_IMAGE && md->kind != PL_MEDIA_DOCUMENT)
        return fail(v, PL_MEDIA_INVALID, "unknown media kind (%d)", (int)md->kind);
    if (blank(md->link))
        return fail(v, PL_MEDIA_INVALID, "the %s has no link; give an absolute http(s) URL", what);
    problem = url_problem(md->link, strlen(md->link));
    if (problem != NULL)
        return fail(v, PL_MEDIA_INVALID, "%s link %s is not an absolute http(s) URL%s", what,
                    QUOTE(q, md->link), problem);
    if (m->list != NULL)
        return fail(v, PL_MEDIA_INVALID,
                    "a list message takes only a text header, not an %s; send the %s separately",
                    what, what);
    if (nbuttons_of(m) > 0) {
        if (m->header != NULL)
            return fail(v, PL_MEDIA_INVALID,
                        "with buttons the %s is the message header, so a text header cannot be "
                        "added; drop one of them",
                        what);
        if (md->caption != NULL)
            return fail(v, PL_MEDIA_INVALID,
                        "with buttons the %s is the message header and cannot have a caption; "
                        "the text is the body",
                        what);
    } else if (md->caption != NULL) {
        if (!blank(m->text))
            return fail(v, PL_MEDIA_INVALID,
                        "the %s has both a caption and a text; give one of them (the text is the "
                        "caption when no caption is given)",
                        what);
        if (blank(md->caption))
            return fail(v, PL_TEXT_EMPTY, "caption %s is blank; leave it out or give it text",
                        QUOTE(q, md->caption));
        len = cps(md->caption);
        if (len > lim->caption_max)
            return fail(v, PL_TEXT_TOO_LONG,
                        "caption is %ld characters; WhatsApp allows %d in a media caption", len,
                        lim->caption_max);
    }
    if (md->filename != NULL) {
        if (md->kind != PL_MEDIA_DOCUMENT)
            return fail(v, PL_MEDIA_INVALID, "an %s cannot have a filename; only documents do",
                        what);
        if (blank(md->filename))
            return fail(v, PL_MEDIA_INVALID, "document filename %s is blank",
                        QUOTE(q, md->filename));
    }
    return 0;
}

static int message_capability(const struct pl_limits *lim, const struct pl_message *m,
                              struct pl_verdict *v)
{
    size_t i, nb = nbuttons_of(m), nurl = 0, ncall = 0, first_call = 0;

    for (i = 0; i < nb; i++) {
        if (m->buttons[i].kind == PL_BUTTON_URL)
            nurl++;
        if (m->buttons[i].kind == PL_BUTTON_CALL && ncall++ == 0)
            first_call = i + 1;
    }
    if (ncall > 0 && !lim->can_session_call_button)
        return fail(v, PL_UNSUPPORTED_BY_PROVIDER,
                    "button %zu: a call button cannot be sent in a %s session message; use a "
                    "template with a PHONE_NUMBER button",
                    first_call, provider_name(lim));
    if (ncall > 0 && nurl > 0 && !lim->can_url_with_call)
        return fail(v, PL_UNSUPPORTED_BY_PROVIDER,
                    "a URL button and a call button cannot be sent together in a %s session "
                    "message; send them in two messages",
                    provider_name(lim));
    return 0;
}

int pl_rules_check_message(const struct pl_limits *lim, const struct pl_message *m,
                           struct pl_verdict *v)
{
    struct pl_verdict scratch;

    if (v == NULL)
        v = &scratch;
    ok(v);
    if (lim == NULL || m == NULL)
        return fail(v, PL_UNSUPPORTED_BY_PROVIDER, "no provider limits or no message to check");
    if (message_utf8(m, v) < 0 || message_text(lim, m, v) < 0 ||
        message_header_footer(lim, m, v) < 0 || message_buttons(lim, m, v) < 0 ||
        message_list(lim, m, v) < 0 || message_media(lim, m, v) < 0 ||
        message_capability(lim, m, v) < 0)
        return -1;
    return 0;
}

/* ---- template placeholders ---- */

struct placeholder {
    size_t start, end; /* byte offsets of "{{" and just past "}}" */
    long number;       /* positional: 1, 2, …; 0 when named */
    const char *name;  /* named: points into the text */
    size_t namelen;
};

/* Find the next placeholder at or after *pos. Returns 1 and advances *pos past it, 0 when there is
 * none left, -1 when the "{{" at *pos starts a malformed one (unclosed, empty, spaced, {{0}},
 * {{01}}, upper case, …). */
static int next_placeholder(const char *text, size_t *pos, struct placeholder *p)
{
    const char *open = strstr(text + *pos, "{{"), *close;
    size_t i, start, end;

    if (open == NULL)
        return 0;
    start = (size_t)(open - text);
    close = strstr(open + 2, "}}");
    *pos = start;
    if (close == NULL)
        return -1;
    end = (size_t)(close - text);
    if (end == start + 2)
        return -1;
    p->start = start;
    p->end = end + 2;
    p->number = 0;
    p->name = NULL;
    p->namelen = 0;
    if (text[start + 2] >= '0' && text[start + 2] <= '9') {
        if (text[start + 2] == '0')
            return -1;
        for (i = start + 2; i < end; i++) {
            if (text[i] < '0' || text[i] > '9' || p->number > (INT_MAX - 9) / 10)
                return -1;
            p->number = p->number * 10 + (text[i] - '0');
        }
    } else {
        for (i = start + 2; i < end; i++) {
            char c = text[i];
            if (!((c >= 'a' && c <= 'z') || c == '_' || (i > start + 2 && c >= '0' && c <= '9')))
                return -1;
        }
        p->name = text + start + 2;
        p->namelen = end - start - 2;
    }
    *pos = p->end;
    return 1;
}

static int same_name(const struct placeholder *p, const char *name, size_t len)
{
    return p->name != NULL && p->namelen == len && memcmp(p->name, name, len) == 0;
}

/* 1 when the named placeholder p appears in text before p itself. */
static int name_seen_before(const char *text, const struct placeholder *p)
{
    size_t pos = 0;
    struct placeholder q;

    while (next_placeholder(text, &pos, &q) == 1 && q.start < p->start)
        if (same_name(&q, p->name, p->namelen))
            return 1;
    return 0;
}

int pl_rules_placeholder_count(const char *text)
{
    size_t pos = 0;
    struct placeholder p;
    int r, kinds = 0, named = 0;
    long max = 0;

    if (text == NULL)
        return 0;
    while ((r = next_placeholder(text, &pos, &p)) == 1) {
        if (p.number > 0) {
            kinds |= 1;
            if (p.number > max)
                max = p.number;
        } else {
            kinds |= 2;
            if (!name_seen_before(text, &p))
                named++;
        }
    }
    if (r < 0 || kinds == 3)
        return -1;
    return kinds == 2 ? named : (int)max;
}

/* 1 when text[from..to) is empty or whitespace only. */
static int only_space(const char *text, size_t from, size_t to)
{
    size_t n;
    uint32_t cp;

    while (from < to) {
        n = pl_utf8_decode(text + from, to - from, &cp);
        if (n == 0 || !is_space_cp(cp))
            return 0;
        from += n;
    }
    return 1;
}

/* Byte offsets of the first and the last non-space code point of valid UTF-8 text (len when
 * there is none). */
static void content_bounds(const char *text, size_t *first, size_t *last)
{
    size_t len = strlen(text), i = 0, n;
    uint32_t cp;

    *first = *last = len;
    while (i < len) {
        n = pl_utf8_decode(text + i, len - i, &cp);
        if (n == 0)
            n = 1;
        else if (!is_space_cp(cp)) {
            if (*first == len)
                *first = i;
            *last = i;
        }
        i += n;
    }
}

/* The placeholders of a template's body or header: the right kind, numbered in order of first
 * appearance, not at the edges of the body, never adjacent, and at most max_ph of them
 * (-1: no limit). */
static int template_text(const char *pre, const char *where, const char *text, int named,
                         int strict_edges, int max_ph, struct pl_verdict *v)
{
    size_t pos = 0, first, last;
    struct placeholder p, prev;
    int r, count = 0;
    long expected = 1;
    char q[QUOTE_BUF];

    content_bounds(text, &first, &last);
    memset(&prev, 0, sizeof prev);
    while ((r = next_placeholder(text, &pos, &p)) == 1) {
        int len = (int)(p.end - p.start);
        count++;
        if (p.number == 0 && !named)
            return fail(v, PL_TEMPLATE_INVALID,
                        "%s: %s has the named placeholder %.*s but the template uses positional "
                        "parameters ({{1}}, {{2}}, …)",
                        pre, where, len, text + p.start);
        if (p.number > 0 && named)
            return fail(v, PL_TEMPLATE_INVALID,
                        "%s: %s has the positional placeholder %.*s but the template uses named "
                        "parameters ({{first_name}}, …)",
                        pre, where, len, text + p.start);
        if (p.number > expected)
            return fail(v, PL_TEMPLATE_INVALID,
                        "%s: %s has {{%ld}} before {{%ld}}; placeholders must first appear in "
                        "order {{1}}, {{2}}, {{3}}…",
                        pre, where, p.number, expected);
        if (p.number == expected)
            expected++;
        if (strict_edges && count == 1 && p.start == first)
            return fail(v, PL_TEMPLATE_INVALID,
                        "%s: %s starts with the placeholder %.*s; WhatsApp rejects a variable at "
                        "the start or end of the text",
                        pre, where, len, text + p.start);
        if (count > 1 && only_space(text, prev.end, p.start))
            return fail(v, PL_TEMPLATE_INVALID,
                        "%s: %s has adjacent placeholders %.*s and %.*s; WhatsApp needs words "
                        "between them",
                        pre, where, (int)(prev.end - prev.start), text + prev.start, len,
                        text + p.start);
        prev = p;
    }
    if (r < 0)
        return fail(v, PL_TEMPLATE_INVALID,
                    "%s: %s has a malformed placeholder at byte %zu: %s (use {{1}}, {{2}}, … or "
                    "{{lower_snake_name}})",
                    pre, where, pos, QUOTE(q, text + pos));
    if (strict_edges && count > 0 && prev.end == last + 1)
        return fail(v, PL_TEMPLATE_INVALID,
                    "%s: %s ends with the placeholder %.*s; WhatsApp rejects a variable at the "
                    "start or end of the text",
                    pre, where, (int)(prev.end - prev.start), text + prev.start);
    if (max_ph >= 0 && count > max_ph)
        return fail(v, PL_TEMPLATE_INVALID, "%s: %s has %d placeholders; WhatsApp allows %d", pre,
                    where, count, max_ph);
    return 0;
}

/* ---- template definitions ---- */

static const char *tpl_button_type(enum pl_tpl_button_type t)
{
    switch (t) {
    case PL_TPL_QUICK_REPLY:
        return "QUICK_REPLY";
    case PL_TPL_URL:
        return "URL";
    case PL_TPL_PHONE_NUMBER:
        return "PHONE_NUMBER";
    case PL_TPL_COPY_CODE:
        return "COPY_CODE";
    default:
        return "OTHER";
    }
}

static int one_of(const char *s, const char *const *set)
{
    for (; *set != NULL; set++)
        if (strcmp(s, *set) == 0)
            return 1;
    return 0;
}

static int template_utf8(const char *pre, const struct pl_template *t, struct pl_verdict *v)
{
    const char *names[] = {"name",          "language",    "status", "category",
                           "header format", "header text", "body",   "footer"};
    const char *vals[] = {t->name,          t->language,    t->status, t->category,
                          t->header_format, t->header_text, t->body,   t->footer};
    char p2[PREFIX_BUF + 4], what[WHAT_BUF];

    snprintf(p2, sizeof p2, "%s: ", pre);
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
        if (check_utf8(v, PL_TEMPLATE_INVALID, p2, names[k], vals[k]) < 0)
            return -1;
    for (size_t i = 0; t->buttons != NULL && i < t->nbuttons; i++) {
        const struct pl_tpl_button *b = &t->buttons[i];
        const char *bn[] = {"text", "url", "phone"};
        const char *bv[] = {b->text, b->url, b->phone};
        for (size_t k = 0; k < sizeof bn / sizeof bn[0]; k++) {
            snprintf(what, sizeof what, "button %zu %s", i + 1, bn[k]);
            if (check_utf8(v, PL_TEMPLATE_INVALID, p2, what, bv[k]) < 0)
                return -1;
        }
    }
    return 0;
}

static int template_head(const struct pl_limits *lim, const char *pre, const struct pl_template *t,
                         struct pl_verdict *v)
{
    static const char *const categories[] = {"MARKETING", "UTILITY", "AUTHENTICATION", NULL};
    char q[QUOTE_BUF];
    long len;

    if (t->name == NULL || t->name[0] == '\0')
        return fail(v, PL_TEMPLATE_INVALID, "%s: the name is empty", pre);
    for (const char *c = t->name; *c != '\0'; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_'))
            return fail(v, PL_TEMPLATE_INVALID,
                        "%s: the name may hold only lowercase letters, digits and _", pre);
    len = cps(t->name);
    if (len > lim->tpl_name_max)
        return fail(v, PL_TEMPLATE_INVALID, "%s: the name is %ld characters; WhatsApp allows %d",
                    pre, len, lim->tpl_name_max);
    if (t->language == NULL || t->language[0] == '\0')
        return fail(v, PL_TEMPLATE_INVALID, "%s: the language is empty (e.g. en_US, ru)", pre);
    for (const char *c = t->language; *c != '\0'; c++) {
        if (*c == '-')
            return fail(v, PL_TEMPLATE_INVALID,
                        "%s: language %s uses -; WhatsApp language codes use _ (en_US, pt_BR)", pre,
                        QUOTE(q, t->language));
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '_'))
            return fail(v, PL_TEMPLATE_INVALID,
                        "%s: language %s is not a language code (en, en_US, pt_BR, …)", pre,
                        QUOTE(q, t->language));
    }
    if (t->category != NULL && !one_of(t->category, categories))
        return fail(v, PL_TEMPLATE_INVALID,
                    "%s: category %s is not MARKETING, UTILITY or AUTHENTICATION", pre,
                    QUOTE(q, t->category));
    return 0;
}

static int template_parts(const struct pl_limits *lim, const char *pre, const struct pl_template *t,
                          struct pl_verdict *v)
{
    static const char *const formats[] = {"TEXT",     "IMAGE",    "VIDEO", "GIF",
                                          "DOCUMENT", "LOCATION", NULL};
    char q[QUOTE_BUF];
    const char *format = t->header_format;
    long len;

    if (format == NULL && t->header_text != NULL)
        format = "TEXT"; /* a header text alone means a TEXT header */
    if (format != NULL && !one_of(format, formats))
        return fail(v, PL_TEMPLATE_INVALID,
                    "%s: header format %s is not TEXT, IMAGE, VIDEO, GIF, DOCUMENT or LOCATION",
                    pre, QUOTE(q, format));
    if (format != NULL && strcmp(format, "TEXT") == 0) {
        if (blank(t->header_text))
            return fail(v, PL_TEMPLATE_INVALID, "%s: the TEXT header has no text", pre);
        len = cps(t->header_text);
        if (len > lim->tpl_header_max)
            return fail(v, PL_TEMPLATE_INVALID,
                        "%s: header %s is %ld characters; WhatsApp allows %d", pre,
                        QUOTE(q, t->header_text), len, lim->tpl_header_max);
        if (template_text(pre, "header", t->header_text, t->named, 0,
                          lim->tpl_header_placeholders_max, v) < 0)
            return -1;
    } else if (t->header_text != NULL) {
        return fail(v, PL_TEMPLATE_INVALID, "%s: header text is given but the header format is %s",
                    pre, format);
    }

    if (blank(t->body))
        return fail(v, PL_TEMPLATE_INVALID, "%s: the body is empty; WhatsApp requires one", pre);
    len = cps(t->body);
    if (len > lim->tpl_body_max)
        return fail(v, PL_TEMPLATE_INVALID, "%s: body is %ld characters; WhatsApp allows %d", pre,
                    len, lim->tpl_body_max);
    if (template_text(pre, "body", t->body, t->named, 1, -1, v) < 0)
        return -1;

    if (t->footer != NULL) {
        if (blank(t->footer))
            return fail(v, PL_TEMPLATE_INVALID, "%s: the footer is blank; leave it out", pre);
        len = cps(t->footer);
        if (len > lim->tpl_footer_max)
            return fail(v, PL_TEMPLATE_INVALID,
                        "%s: footer %s is %ld characters; WhatsApp allows %d", pre,
                        QUOTE(q, t->footer), len, lim->tpl_footer_max);
        if (strstr(t->footer, "{{") != NULL)
            return fail(v, PL_TEMPLATE_INVALID,
                        "%s: footer %s has a placeholder; WhatsApp footers are plain text", pre,
                        QUOTE(q, t->footer));
    }
    return 0;
}

/* A URL button's url: an absolute http(s) URL, at most one placeholder and only "{{1}}" at the
 * very end (Meta appends the send-time suffix there). */
static int template_url(const struct pl_limits *lim, const char *pre, size_t n, const char *url,
                        struct pl_verdict *v)
{
    char q[QUOTE_BUF];
    const char *ph = strstr(url, "{{"), *problem;
    size_t len = strlen(url), static_len = len;
    long cp;

    if (ph != NULL) {
        static_len = (size_t)(ph - url);
        if (strcmp(ph, "{{1}}") != 0)
            return fail(v, PL_TEMPLATE_INVALID,
                        "%s: button %zu url %s may hold one placeholder, {{1}}, and only at the "
                        "very end",
                        pre, n, QUOTE(q, url));
    }
    problem = url_problem(url, static_len);
    if (problem != NULL)
        return fail(v, PL_TEMPLATE_INVALID,
                    "%s: button %zu url %s is not an absolute http(s) URL%s", pre, n, QUOTE(q, url),
                    problem);
    cp = cps(url);
    if (cp > lim->tpl_url_max)
        return fail(v, PL_TEMPLATE_INVALID,
                    "%s: button %zu url is %ld characters; WhatsApp allows %d", pre, n, cp,
                    lim->tpl_url_max);
    return 0;
}

static int template_buttons(const struct pl_limits *lim, const char *pre,
                            const struct pl_template *t, struct pl_verdict *v)
{
    size_t nb = t->buttons != NULL ? t->nbuttons : 0, i, count[PL_TPL_OTHER + 1] = {0}, turns = 0;
    char q[QUOTE_BUF], seq[QUOTE_BUF];
    long len;

    if (nb > (size_t)lim->tpl_buttons_max)
        return fail(v, PL_TEMPLATE_INVALID, "%s: %zu buttons; WhatsApp allows at most %d", pre, nb,
                    lim->tpl_buttons_max);
    for (i = 0; i < nb; i++) {
        enum pl_tpl_button_type type = t->buttons[i].type;
        if ((int)type < 0 || type > PL_TPL_OTHER)
            type = PL_TPL_OTHER;
        count[type]++;
        /* quick replies and the rest each form one group: at most one turn between them */
        if (i > 0 && (type == PL_TPL_QUICK_REPLY) != (t->buttons[i - 1].type == PL_TPL_QUICK_REPLY))
            turns++;
    }
    {
        const struct {
            enum pl_tpl_button_type type;
            int max;
        } caps[] = {
            {PL_TPL_QUICK_REPLY, lim->tpl_quick_replies_max},
            {PL_TPL_URL, lim->tpl_url_buttons_max},
            {PL_TPL_PHONE_NUMBER, lim->tpl_phone_buttons_max},
            {PL_TPL_COPY_CODE, lim->tpl_copy_code_buttons_max},
        };
        for (size_t k = 0; k < sizeof caps / sizeof caps[0]; k++)
            if (count[caps[k].type] > (size_t)caps[k].max)
                return fail(v, PL_TEMPLATE_INVALID,
                            "%s: %zu %s buttons; WhatsApp allows at most %d", pre,
                            count[caps[k].type], tpl_button_type(caps[k].type), caps[k].max);
    }
    if (turns > 1) {
        size_t o = 0;
        seq[0] = '\0';
        for (i = 0; i < nb && o < sizeof seq; i++)
            o += (size_t)snprintf(seq + o, sizeof seq - o, "%s%s", i > 0 ? ", " : "",
                                  tpl_button_type(t->buttons[i].type));
        return fail(v, PL_TEMPLATE_INVALID,
                    "%s: quick replies must form one group, before or after the other buttons "
                    "(buttons are %s)",
                    pre, seq);
    }
    for (i = 0; i < nb; i++) {
        const struct pl_tpl_button *b = &t->buttons[i];
        if (b->type != PL_TPL_QUICK_REPLY && b->type != PL_TPL_URL &&
            b->type != PL_TPL_PHONE_NUMBER)
            continue; /* COPY_CODE and others carry Meta's fixed labels */
        if (blank(b->text))
            return fail(v, PL_TEMPLATE_INVALID, "%s: button %zu (%s) has no label", pre, i + 1,
                        tpl_button_type(b->type));
        len = cps(b->text);
        if (len > lim->tpl_label_max)
            return fail(v, PL_TEMPLATE_INVALID,
                        "%s: button %zu %s is %ld characters; WhatsApp allows %d", pre, i + 1,
                        QUOTE(q, b->text), len, lim->tpl_label_max);
        if (b->type == PL_TPL_URL) {
            if (blank(b->url))
                return fail(v, PL_TEMPLATE_INVALID, "%s: button %zu (URL) has no url", pre, i + 1);
            if (template_url(lim, pre, i + 1, b->url, v) < 0)
                return -1;
        } else if (b->type == PL_TPL_PHONE_NUMBER) {
            if (blank(b->phone))
                return fail(v, PL_TEMPLATE_INVALID, "%s: button %zu (PHONE_NUMBER) has no phone",
                            pre, i + 1);
            if (!tpl_phone_ok(lim, b->phone))
                return fail(v, PL_TEMPLATE_INVALID,
                            "%s: button %zu phone %s is not an international number (country "
                            "code and %d-%d digits, optionally after +)",
                            pre, i + 1, QUOTE(q, b->phone), lim->phone_digits_min,
                            lim->phone_digits_max);
        }
    }
    return 0;
}

/* `template "name" (language)` for details, escaped. */
static const char *template_prefix(char *out, size_t outsz, const char *name, const char *language)
{
    char qn[QUOTE_BUF], ql[QUOTE_BUF];

    if (name == NULL || name[0] == '\0')
        snprintf(qn, sizeof qn, "(no name)");
    else
        QUOTE(qn, name);
    if (language == NULL || language[0] == '\0')
        snprintf(out, outsz, "template %s", qn);
    else
        snprintf(out, outsz, "template %s (%s)", qn, pl_rules_quote(ql, sizeof ql, language, 0));
    return out;
}

int pl_rules_check_template(const struct pl_limits *lim, const struct pl_template *t,
                            struct pl_verdict *v)
{
    struct pl_verdict scratch;
    char pre[PREFIX_BUF];

    if (v == NULL)
        v = &scratch;
    ok(v);
    if (lim == NULL || t == NULL)
        return fail(v, PL_TEMPLATE_INVALID, "no provider limits or no template to check");
    template_prefix(pre, sizeof pre, t->name, t->language);
    if (template_utf8(pre, t, v) < 0 || template_head(lim, pre, t, v) < 0 ||
        template_parts(lim, pre, t, v) < 0 || template_buttons(lim, pre, t, v) < 0)
        return -1;
    return 0;
}

int pl_rules_template_sendable(const char *status)
{
    /* REINSTATED and UNARCHIVED return a template to service; LOCKED only forbids editing. */
    static const char *const sendable[] = {"APPROVED",   "FLAGGED", "REINSTATED",
                                           "UNARCHIVED", "LOCKED",  NULL};

    return status != NULL && one_of(status, sendable);
}

int pl_rules_check_template_status(const char *status, const char *name, const char *language,
                                   struct pl_verdict *v)
{
    struct pl_verdict scratch;
    char pre[PREFIX_BUF], q[QUOTE_BUF];

    if (v == NULL)
        v = &scratch;
    ok(v);
    if (pl_rules_template_sendable(status))
        return 0;
    template_prefix(pre, sizeof pre, name, language);
    if (status == NULL || status[0] == '\0')
        return fail(v, PL_TEMPLATE_NOT_APPROVED,
                    "%s has no status; only APPROVED templates can be sent", pre);
    return fail(v, PL_TEMPLATE_NOT_APPROVED, "%s is %s; only APPROVED templates can be sent", pre,
                pl_rules_quote(q, sizeof q, status, 0));
}

/* ---- template parameters ---- */

static const char *param_name(char *out, size_t outsz, const struct pl_tpl_param *p, size_t i)
{
    char q[QUOTE_BUF];

    if (p->name != NULL)
        snprintf(out, outsz, "parameter %s", QUOTE(q, p->name));
    else
        snprintf(out, outsz, "parameter %zu", i + 1);
    return out;
}

/* "{{first_name}}, {{order_id}}": the distinct names of text, cut to fit out. */
static const char *names_of(char *out, size_t outsz, const char *text)
{
    size_t pos = 0, o = 0;
    struct placeholder p;

    out[0] = '\0';
    while (next_placeholder(text, &pos, &p) == 1) {
        int n;
        if (p.name == NULL || name_seen_before(text, &p))
            continue;
        n = snprintf(out + o, outsz - o, "%s{{%.*s}}", o > 0 ? ", " : "", (int)p.namelen, p.name);
        if (n < 0 || (size_t)n >= outsz - o) {
            out[o] = '\0';
            break;
        }
        o += (size_t)n;
    }
    return out;
}

static int param_names(const char *where, const char *text, const struct pl_tpl_param *params,
                       size_t nparams, struct pl_verdict *v)
{
    size_t i, j, pos = 0;
    struct placeholder p;
    char q[QUOTE_BUF], names[QUOTE_BUF];

    for (i = 0; i < nparams; i++) {
        if (params[i].name == NULL)
            return fail(v, PL_TEMPLATE_PARAMS,
                        "parameter %zu has no name; the template %s uses named parameters (%s)",
                        i + 1, where, names_of(names, sizeof names, text));
        for (j = 0; j < i; j++)
            if (strcmp(params[i].name, params[j].name) == 0)
                return fail(v, PL_TEMPLATE_PARAMS, "parameter %s is given twice",
                            QUOTE(q, params[i].name));
    }
    for (i = 0; i < nparams; i++) {
        int found = 0;
        pos = 0;
        while (!found && next_placeholder(text, &pos, &p) == 1)
            found = same_name(&p, params[i].name, strlen(params[i].name));
        if (!found) {
            names_of(names, sizeof names, text);
            return fail(v, PL_TEMPLATE_PARAMS, "unknown parameter %s; the template %s has %s",
                        QUOTE(q, params[i].name), where,
                        names[0] != '\0' ? names : "no placeholders");
        }
    }
    pos = 0;
    while (next_placeholder(text, &pos, &p) == 1) {
        int found = 0;
        for (i = 0; i < nparams && !found; i++)
            found = same_name(&p, params[i].name, strlen(params[i].name));
        if (!found)
            return fail(v, PL_TEMPLATE_PARAMS,
                        "missing parameter \"%.*s\" for {{%.*s}} in the template %s",
                        (int)p.namelen, p.name, (int)p.namelen, p.name, where);
    }
    return 0;
}

static int param_value(const struct pl_limits *lim, enum pl_tpl_part part, const char *pn,
                       const char *value, struct pl_verdict *v)
{
    char q[QUOTE_BUF];
    int max = part == PL_TPL_PART_HEADER ? lim->tpl_param_header_max : lim->tpl_param_body_max;
    int run = 0, longest = 0;
    long len;

    if (value == NULL || value[0] == '\0')
        return fail(v, PL_TEMPLATE_PARAM_FORMAT, "%s is empty; WhatsApp rejects empty parameters",
                    pn);
    if (check_utf8(v, PL_BAD_UTF8, "", pn, value) < 0)
        return -1;
    if (strchr(value, '\n') != NULL || strchr(value, '\r') != NULL)
        return fail(v, PL_TEMPLATE_PARAM_FORMAT,
                    "%s (%s) contains a newline; WhatsApp forbids newlines and tabs in parameters",
                    pn, QUOTE(q, value));
    if (strchr(value, '\t') != NULL)
        return fail(v, PL_TEMPLATE_PARAM_FORMAT,
                    "%s (%s) contains a tab; WhatsApp forbids newlines and tabs in parameters", pn,
                    QUOTE(q, value));
    for (const char *c = value; *c != '\0'; c++) {
        run = *c == ' ' ? run + 1 : 0;
        if (run > longest)
            longest = run;
    }
    if (longest > lim->tpl_param_spaces_max)
        return fail(v, PL_TEMPLATE_PARAM_FORMAT,
                    "%s (%s) has %d consecutive spaces; WhatsApp allows at most %d", pn,
                    QUOTE(q, value), longest, lim->tpl_param_spaces_max);
    if (blank(value))
        return fail(v, PL_TEMPLATE_PARAM_FORMAT,
                    "%s (%s) is blank; WhatsApp rejects empty parameters", pn, QUOTE(q, value));
    len = cps(value);
    if (len > max)
        return fail(v, PL_TEMPLATE_PARAM_FORMAT,
                    "%s is %ld characters; WhatsApp allows %d in the %s", pn, len, max,
                    part == PL_TPL_PART_HEADER ? "header" : "body");
    return 0;
}

int pl_rules_check_template_params(const struct pl_limits *lim, const char *part_text,
                                   enum pl_tpl_part part, int named,
                                   const struct pl_tpl_param *params, size_t nparams,
                                   struct pl_verdict *v)
{
    struct pl_verdict scratch;
    const char *text = part_text != NULL ? part_text : "";
    const char *where = part == PL_TPL_PART_HEADER ? "header" : "body";
    size_t i, pos = 0, nnamed = 0;
    struct placeholder p;
    int count, has_named = 0, has_positional = 0;
    char pn[QUOTE_BUF + 16];

    if (v == NULL)
        v = &scratch;
    ok(v);
    if (lim == NULL)
        return fail(v, PL_TEMPLATE_PARAMS, "no provider limits to check parameters against");
    if (params == NULL)
        nparams = 0;
    count = pl_rules_placeholder_count(text);
    if (count < 0)
        return fail(v, PL_TEMPLATE_PARAMS,
                    "the template %s has a malformed or mixed placeholder, so no parameters can "
                    "match it",
                    where);
    while (next_placeholder(text, &pos, &p) == 1) {
        if (p.name != NULL)
            has_named = 1;
        else
            has_positional = 1;
    }
    if ((named && has_positional) || (!named && has_named))
        return fail(v, PL_TEMPLATE_PARAMS,
                    "the template %s has %s placeholders but the template is declared %s", where,
                    has_named ? "named" : "positional", named ? "named" : "positional");
    for (i = 0; i < nparams; i++)
        if (params[i].name != NULL)
            nnamed++;
    if (nnamed > 0 && nnamed < nparams)
        return fail(v, PL_TEMPLATE_PARAMS,
                    "parameters mix named and positional ones; give a list or a table of names");
    if (!named) {
        if (nnamed > 0)
            return fail(v, PL_TEMPLATE_PARAMS,
                        "%s has a name but the template uses positional parameters "
                        "({{1}}, {{2}}, …); give a list",
                        param_name(pn, sizeof pn, &params[0], 0));
        if (nparams != (size_t)count)
            return fail(v, PL_TEMPLATE_PARAMS, "template %sexpects %d parameter%s, got %zu",
                        part == PL_TPL_PART_HEADER ? "header " : "", count, count == 1 ? "" : "s",
                        nparams);
    } else if (param_names(where, text, params, nparams, v) < 0) {
        return -1;
    }
    for (i = 0; i < nparams; i++)
        if (param_value(lim, part, param_name(pn, sizeof pn, &params[i], i), params[i].value, v) <
            0)
            return -1;
    return 0;
}

/* ---- business-initiated messages ---- */

int pl_rules_check_business(long long last_inbound, int opted_in, long daily_limit, long recent,
                            int already, const char *contact, struct pl_verdict *v)
{
    if (last_inbound <= 0 && !opted_in) {
        v->code = PL_NOT_OPTED_IN;
        snprintf(v->detail, sizeof v->detail,
                 "%.64s never wrote to this channel and has no recorded opt-in; record consent "
                 "with chat:opt_in() or the opt_in column of a broadcast list",
                 contact != NULL ? contact : "the contact");
        return -1;
    }
    if (daily_limit >= 0 && !already && recent >= daily_limit) {
        v->code = PL_DAILY_LIMIT;
        snprintf(v->detail, sizeof v->detail,
                 "the channel has sent business-initiated messages to %ld unique contacts in "
                 "the last 24 hours; its limit is %ld",
                 recent, daily_limit);
        return -1;
    }
    v->code = PL_OK;
    v->detail[0] = '\0';
    return 0;
}

/* ---- messaging-limit tiers and provider errors ---- */

long pl_rules_tier_limit(const char *tier)
{
    static const struct {
        const char *name;
        long limit;
    } tiers[] = {{"TIER_50", 50},       {"TIER_250", 250},   {"TIER_1K", 1000},
                 {"TIER_2K", 2000},     {"TIER_10K", 10000}, {"TIER_100K", 100000},
                 {"TIER_UNLIMITED", -1}};
    for (size_t i = 0; tier != NULL && i < sizeof tiers / sizeof tiers[0]; i++)
        if (strcmp(tier, tiers[i].name) == 0)
            return tiers[i].limit;
    return -2;
}

long long pl_rules_retry_wait_ms(const struct pl_limits *lim, enum pl_retry how, int attempts)
{
    if (how == PL_RETRY_NONE)
        return 0;
    int recipient = how == PL_RETRY_RECIPIENT;
    long long ms = lim->retry_first_ms;
    long long cap = recipient ? lim->pair_retry_max_ms : lim->retry_max_ms;
    for (int i = 1; i < attempts && ms < cap; i++)
        ms *= recipient ? lim->pair_retry_factor : lim->retry_factor;
    return ms < cap ? ms : cap;
}

enum pl_retry pl_rules_retry(long http, long code, int transport_failed)
{
    static const struct {
        long code;
        enum pl_retry how;
    } codes[] = {{1, PL_RETRY_BACKOFF},      {2, PL_RETRY_BACKOFF},
                 {4, PL_RETRY_BACKOFF},      {80007, PL_RETRY_BACKOFF},
                 {130429, PL_RETRY_BACKOFF}, {131000, PL_RETRY_BACKOFF},
                 {131016, PL_RETRY_BACKOFF}, {131056, PL_RETRY_RECIPIENT},
                 {131057, PL_RETRY_BACKOFF}, {133004, PL_RETRY_BACKOFF}};
    for (size_t i = 0; code >= 0 && i < sizeof codes / sizeof codes[0]; i++)
        if (codes[i].code == code)
            return codes[i].how;
    return transport_failed || http >= 500 || http == 429 ? PL_RETRY_BACKOFF : PL_RETRY_NONE;
}
