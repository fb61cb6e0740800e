/* json.c - JSON text to jansson values in one pass and without recursion: a stack of the open
 * containers, strings taken from the input when they hold no escape and otherwise decoded into a
 * scratch buffer, numbers converted without strtod when the result is exact. Each accept/reject
 * decision mirrors jansson 2.14's load.c, one quirk included; tests/unit/test_json.c proves it.
 * The string loop skips printable ASCII eight bytes at a time and calls utf8.c only for the
 * other bytes (a call or two per byte is where jansson's lexer spends its time). */
#include "json.h"

#include <errno.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdbool.h>
#include <float.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

_Static_assert(sizeof(json_int_t) == sizeof(long long), "json_int_t is strtoll's long long");

#define SCRATCH_SMALL 256 /* decoded strings up to this size need no allocation */
#define STACK_SMALL   32  /* nesting up to this depth needs no allocation */

/* A growing byte buffer that starts in the parser's own frame. */
struct scratch {
    char *buf; /* small, or a heap block once a string outgrew it */
    size_t cap;
    char small[SCRATCH_SMALL];
};

struct parser {
    const char *start, *p, *end;
    unsigned flags;
    json_t *root;   /* owns everything built so far */
    json_t **stack; /* the open containers, innermost last; references borrowed from root */
    size_t depth, stack_cap;
    json_t *stack_small[STACK_SMALL];
    const char *key; /* the pending member name when the innermost container is an object */
    size_t key_len;
    /* Decoded member names and string values apart: a name must outlive the value after it. */
    struct scratch keys, values;
    struct pl_error *err;
};

/* ---- errors ------------------------------------------------------------------------------- */

/* "what at byte N ('x')": the offending byte, printable ASCII as itself, else in hex. */
static int fail(struct parser *ps, const void *at, const char *what)
{
    const unsigned char *b = at;
    char shown[16];

    if ((const char *)b >= ps->end)
        snprintf(shown, sizeof shown, "the end");
    else if (*b >= 0x20 && *b < 0x7F)
        snprintf(shown, sizeof shown, "'%c'", *b);
    else
        snprintf(shown, sizeof shown, "0x%02X", *b);
    return pl_error_set(ps->err, "json", "%s at byte %zu (%s)", what,
                        (size_t)((const char *)b - ps->start), shown);
}

static int out_of_memory(struct parser *ps)
{
    return pl_error_set(ps->err, "oom", "out of memory at byte %zu", (size_t)(ps->p - ps->start));
}

/* ---- bytes -------------------------------------------------------------------------------- */

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    return p;
}

/* jansson 2.14 drops one NUL byte right after a number or a literal: its lexer pushes the byte
 * that ended the token back into a one-character buffer where NUL means "empty". The same
 * documents are accepted here; nowhere else is a NUL byte outside a string allowed. */
static void skip_pushback_nul(struct parser *ps)
{
    if (ps->p < ps->end && *ps->p == '\0')
        ps->p++;
}

#define ONES  0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* The first byte at or after p that is not printable ASCII other than '"' and '\\' (so a quote,
 * a backslash, a control character or a byte >= 0x80), or end. Eight bytes at a time: each term
 * flags the bytes below 0x20, equal to '"', equal to '\\', or with the top bit set, and only
 * bytes after a true hit can be flagged falsely, so the lowest flag is the first hit. */
static const unsigned char *skip_plain(const unsigned char *p, const unsigned char *end)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    while (end - p >= 8) {
        uint64_t w, q, b, m;
        memcpy(&w, p, 8);
        q = w ^ (ONES * '"');
        b = w ^ (ONES * '\\');
        m = (((w - ONES * 0x20) & ~w) | ((q - ONES) & ~q) | ((b - ONES) & ~b) | w) & HIGHS;
        if (m != 0)
            return p + (__builtin_ctzll(m) >> 3);
        p += 8;
    }
#endif
    while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
        p++;
    return p;
}

/* Hex digit values plus one; 0 for anything else. */
static const unsigned char hex_digit[256] = {
    ['0'] = 1,  ['1'] = 2,  ['2'] = 3,  ['3'] = 4,  ['4'] = 5,  ['5'] = 6,  ['6'] = 7,  ['7'] = 8,
    ['8'] = 9,  ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
    ['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16,
};

/* What each one-character escape stands for; 0 when the character does not form one. */
static const char unescaped[256] = {
    ['"'] = '"',  ['\\'] = '\\', ['/'] = '/',  ['b'] = '\b',
    ['f'] = '\f', ['n'] = '\n',  ['r'] = '\r', ['t'] = '\t',
};

/* The four hex digits at p as a number, or -1. */
static long hex4(const unsigned char *p)
{
    unsigned a = hex_digit[p[0]], b = hex_digit[p[1]], c = hex_digit[p[2]], d = hex_digit[p[3]];

    if (a == 0 || b == 0 || c == 0 || d == 0)
        return -1;
    return (long)((a - 1) << 12 | (b - 1) << 8 | (c - 1) << 4 | (d - 1));
}

/* The parser's own blocks come from jansson's allocator too (json_set_alloc_funcs), so one
 * allocator serves the whole parse, and the tests' failing one reaches every allocation. */
static void *grow(void *old, size_t keep, size_t size, int owned)
{
    json_malloc_t alloc;
    json_free_t release;
    void *grown;

    json_get_alloc_funcs(&alloc, &release);
    grown = alloc(size);
    if (grown != NULL) {
        memcpy(grown, old, keep);
        if (owned)
            release(old);
    }
    return grown;
}

static void release_block(void *p)
{
    json_malloc_t alloc;
    json_free_t release;

    json_get_alloc_funcs(&alloc, &release);
    release(p);
}

/* Make s hold at least need bytes, keeping the first used. 0, or -1 when memory ran out. */
static int reserve(struct scratch *s, size_t used, size_t need)
{
    size_t cap = s->cap * 2 > need ? s->cap * 2 : need;
    char *grown = grow(s->buf, used, cap, s->buf != s->small);

    if (grown == NULL)
        return -1;
    s->buf = grown;
    s->cap = cap;
    return 0;
}

/* ---- strings ------------------------------------------------------------------------------ */

/* Scan the string whose opening quote is at ps->p and leave ps->p after its closing quote. The
 * decoded bytes are *s[0..*n): the input itself when the string holds no escape, else sb's
 * buffer, valid until sb is used again. *nul tells whether an escape decoded to U+0000.
 * Returns 0, or -1 with the error set. */
static int scan_string(struct parser *ps, struct scratch *sb, const char **s, size_t *n, int *nul)
{
    const unsigned char *end = (const unsigned char *)ps->end;
    const unsigned char *p = (const unsigned char *)ps->p + 1, *run = p;
    size_t used = 0, k; /* used: bytes decoded into sb so far */
    int escaped = 0;
    long cp, low;

    *nul = 0;
    for (;;) {
        p = skip_plain(p, end);
        if (p == end)
            return fail(ps, ps->p, "unterminated string");
        if (*p == '"')
            break;
        if (*p >= 0x80) {
            /* utf8.c refuses what jansson refuses: overlong, surrogates, past U+10FFFF */
            uint32_t code_point;
            k = pl_utf8_decode((const char *)p, (size_t)(end - p), &code_point);
            if (k == 0)
                return fail(ps, p, "invalid UTF-8");
            p += k;
            continue;
        }
        if (*p != '\\')
            return fail(ps, p, "control character in a string");
        /* An escape: the run before it goes to sb, then what it stands for (4 bytes at most). */
        k = (size_t)(p - run);
        if (used + k + 4 > sb->cap && reserve(sb, used, used + k + 4) != 0)
            return out_of_memory(ps);
        memcpy(sb->buf + used, run, k);
        used += k;
        escaped = 1;
        if (end - p < 2)
            return fail(ps, ps->p, "unterminated string");
        if (p[1] != 'u') {
            if (unescaped[p[1]] == 0)
                return fail(ps, p, "invalid escape");
            sb->buf[used++] = unescaped[p[1]];
            run = p += 2;
            continue;
        }
        if (end - p < 6 || (cp = hex4(p + 2)) < 0)
            return fail(ps, p, "invalid \\u escape");
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            /* a high surrogate must be followed by an escaped low one */
            if (end - p < 12 || p[6] != '\\' || p[7] != 'u' || (low = hex4(p + 8)) < 0xDC00 ||
                low > 0xDFFF)
                return fail(ps, p, "unpaired surrogate in a \\u escape");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            p += 6;
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return fail(ps, p, "unpaired surrogate in a \\u escape");
        }
        run = p += 6;
        *nul |= cp == 0;
        used += pl_utf8_encode((uint32_t)cp, sb->buf + used);
    }
    k = (size_t)(p - run);
    if (!escaped) {
        *s = (const char *)run;
        *n = k;
    } else {
        if (used + k > sb->cap && reserve(sb, used, used + k) != 0)
            return out_of_memory(ps);
        memcpy(sb->buf + used, run, k);
        *s = sb->buf;
        *n = used + k;
    }
    ps->p = (const char *)p + 1;
    return 0;
}

/* ---- numbers ------------------------------------------------------------------------------ */

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static const double powers_of_ten[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                       1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                       1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* The number in s[0..n) (already checked against the grammar), as strtod rounds it, into *out.
 * When the significand has at most 19 digits and fits in 53 bits and the power of ten is at
 * most 22, both are exact doubles and one multiplication or division rounds correctly, giving
 * strtod's result bit for bit (Clinger's fast path). Anything else goes to strtod itself, with
 * the decimal point swapped for the locale's as jansson does. Returns 0, -1 on overflow (jansson
 * refuses a real that overflows; one that underflows becomes 0 or a denormal), -2 when memory
 * ran out. */
static int to_double(struct parser *ps, const unsigned char *s, size_t n, double *out)
{
    const unsigned char *p = s, *end = s + n;
    uint64_t m = 0;
    int digits = 0, frac = 0, exp = 0, exp_digits = 0, neg = 0, exp_neg = 0;
    char *copy;
    double d;

    neg = *p == '-';
    p += neg;
    for (; p < end && is_digit(*p); p++, digits++)
        m = m * 10 + (uint64_t)(*p - '0');
    if (p < end && *p == '.')
        for (p++; p < end && is_digit(*p); p++, digits++, frac++)
            m = m * 10 + (uint64_t)(*p - '0');
    if (p < end) { /* 'e' or 'E' */
        p++;
        exp_neg = *p == '-';
        p += *p == '-' || *p == '+';
        for (; p < end && exp_digits < 6; p++, exp_digits++)
            exp = exp * 10 + (*p - '0');
    }
#if FLT_EVAL_METHOD == 0
    if (digits <= 19 && m <= (1ULL << 53) && p == end) {
        int e = (exp_neg ? -exp : exp) - frac;
        if (e >= -22 && e <= 22) {
            d = (double)m;
            d = e < 0 ? d / powers_of_ten[-e] : d * powers_of_ten[e];
            *out = neg ? -d : d;
            return 0;
        }
    }
#endif
    /* digits > 19 may have wrapped m: it is not used below */
    if (n + 1 > ps->values.cap && reserve(&ps->values, 0, n + 1) != 0)
        return -2;
    copy = ps->values.buf;
    memcpy(copy, s, n);
    copy[n] = '\0';
    if (localeconv()->decimal_point[0] != '.') {
        char *dot = strchr(copy, '.');
        if (dot != NULL)
            *dot = localeconv()->decimal_point[0];
    }
    errno = 0;
    d = strtod(copy, NULL);
    if ((d == HUGE_VAL || d == -HUGE_VAL) && errno == ERANGE)
        return -1;
    *out = d;
    return 0;
}

/* Scan the number at ps->p into *v, a new reference. Like jansson, an integer when it has
 * neither fraction nor exponent, and then it must fit a json_int_t. Returns 0, or -1 with the
 * error set (out of memory included). */
static int scan_number(struct parser *ps, json_t **v)
{
    const unsigned char *s = (const unsigned char *)ps->p, *end = (const unsigned char *)ps->end;
    const unsigned char *p = s, *digits, *int_end;
    int neg = *p == '-', real = 0, rc;
    uint64_t m = 0;
    double d;

    p += neg;
    digits = p;
    if (p == end || !is_digit(*p))
        return fail(ps, s, "invalid number");
    if (*p == '0') {
        if (++p < end && is_digit(*p))
            return fail(ps, s, "invalid number (leading zero)");
    } else {
        while (p < end && is_digit(*p))
            p++;
    }
    int_end = p;
    if (p < end && *p == '.') {
        if (++p == end || !is_digit(*p))
            return fail(ps, s, "invalid number");
        while (p < end && is_digit(*p))
            p++;
        real = 1;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        if (++p < end && (*p == '+' || *p == '-'))
            p++;
        if (p == end || !is_digit(*p))
            return fail(ps, s, "invalid number");
        while (p < end && is_digit(*p))
            p++;
        real = 1;
    }
    ps->p = (const char *)p;
    if (!real) {
        /* 19 digits cannot overflow 64 unsigned bits; more always overflow a json_int_t */
        if (int_end - digits > 19)
            return fail(ps, s, "integer out of range");
        for (; digits < int_end; digits++)
            m = m * 10 + (uint64_t)(*digits - '0');
        if (m > (uint64_t)LLONG_MAX + (uint64_t)neg)
            return fail(ps, s, "integer out of range");
        if (!neg)
            *v = json_integer((json_int_t)m);
        else
            *v = json_integer(m == (uint64_t)LLONG_MAX + 1 ? LLONG_MIN : -(json_int_t)m);
    } else {
        rc = to_double(ps, s, (size_t)(p - s), &d);
        if (rc == -1)
            return fail(ps, s, "number out of range");
        if (rc == -2)
            return out_of_memory(ps);
        *v = json_real(d);
    }
    if (*v == NULL)
        return out_of_memory(ps);
    skip_pushback_nul(ps);
    return 0;
}

/* ---- structure ---------------------------------------------------------------------------- */

/* Give the new value v to the innermost open container (under the pending member name when it
 * is an object), or make it the root. A NULL v means memory ran out. Returns 0 or -1; v is
 * released on failure. */
static int attach(struct parser *ps, json_t *v)
{
    json_t *top;

    if (v == NULL)
        return out_of_memory(ps);
    if (ps->depth == 0) {
        ps->root = v;
        return 0;
    }
    top = ps->stack[ps->depth - 1];
    if ((json_is_object(top) ? json_object_setn_new_nocheck(top, ps->key, ps->key_len, v)
                             : json_array_append_new(top, v)) != 0)
        return out_of_memory(ps);
    return 0;
}

static int push(struct parser *ps, json_t *container)
{
    if (ps->depth == ps->stack_cap) {
        size_t cap = ps->stack_cap * 2;
        json_t **grown = grow(ps->stack, ps->depth * sizeof *grown, cap * sizeof *grown,
                              ps->stack != ps->stack_small);
        if (grown == NULL)
            return out_of_memory(ps);
        ps->stack = grown;
        ps->stack_cap = cap;
    }
    ps->stack[ps->depth++] = container;
    return 0;
}

/* A member name and its colon, at ps->p (after '{' or ','), into ps->key. */
static int member_name(struct parser *ps)
{
    const char *at = ps->p = skip_ws(ps->p, ps->end);
    int nul;

    if (at == ps->end || *at != '"')
        return fail(ps, at, "expected a member name");
    if (scan_string(ps, &ps->keys, &ps->key, &ps->key_len, &nul) != 0)
        return -1;
    if (nul) /* jansson cannot hold such a key, whatever the flags */
        return fail(ps, at, "\\u0000 in a member name");
    ps->p = skip_ws(ps->p, ps->end);
    if (ps->p == ps->end || *ps->p != ':')
        return fail(ps, ps->p, "expected ':'");
    ps->p++;
    return 0;
}

static int literal(struct parser *ps, const char *word, size_t n, json_t *v)
{
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
        return fail(ps, ps->p, "invalid literal");
    ps->p += n;
    skip_pushback_nul(ps);
    return attach(ps, v);
}

/* One value at ps->p. A scalar is attached. A container is attached and opened: when empty it
 * is closed at once, else ps->p is left at its first element (after the first member name in an
 * object). Returns 0 when the value is complete, 1 when an element follows, -1 with the error
 * set. */
static int parse_value(struct parser *ps)
{
    const char *at = ps->p = skip_ws(ps->p, ps->end), *s;
    json_t *v;
    size_t n;
    int nul;

    /* jansson counts every value, scalars too: the top-level one is at depth 1 */
    if (ps->depth >= PL_JSON_MAX_DEPTH)
        return pl_error_set(ps->err, "json", "nesting deeper than %d at byte %zu",
                            PL_JSON_MAX_DEPTH, (size_t)((const char *)at - ps->start));
    if (at == ps->end)
        return fail(ps, at, "unexpected end of input");
    switch (*at) {
    case '{':
    case '[':
        v = *at == '{' ? json_object() : json_array();
        if (attach(ps, v) != 0 || push(ps, v) != 0)
            return -1;
        ps->p = skip_ws(at + 1, ps->end);
        if (ps->p < ps->end && *ps->p == (*at == '{' ? '}' : ']')) {
            ps->p++;
            ps->depth--;
            return 0;
        }
        return *at == '{' && member_name(ps) != 0 ? -1 : 1;
    case '"':
        if (scan_string(ps, &ps->values, &s, &n, &nul) != 0)
            return -1;
        if (nul && !(ps->flags & PL_JSON_ALLOW_NUL))
            return fail(ps, at, "\\u0000 in a string");
        return attach(ps, json_stringn_nocheck(s, n));
    case 't':
        return literal(ps, "true", 4, json_true());
    case 'f':
        return literal(ps, "false", 5, json_false());
    case 'n':
        return literal(ps, "null", 4, json_null());
    case '-':
    case '0':
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
    case '7':
    case '8':
    case '9':
        return scan_number(ps, &v) != 0 ? -1 : attach(ps, v);
    default:
        return fail(ps, at, "unexpected character");
    }
}

/* After a value: close the containers that end here. Returns 1 when a value follows (after a
 * ',' and, in an object, the next member name), 0 when the top-level value is complete, -1 with
 * the error set. */
static int after_value(struct parser *ps)
{
    while (ps->depth > 0) {
        int object = json_is_object(ps->stack[ps->depth - 1]);
        const char *at = ps->p = skip_ws(ps->p, ps->end);

        if (at < ps->end && *at == ',') {
            ps->p++;
            return object && member_name(ps) != 0 ? -1 : 1;
        }
        if (at == ps->end || *at != (object ? '}' : ']'))
            return fail(ps, at, object ? "expected ',' or '}'" : "expected ',' or ']'");
        ps->p++;
        ps->depth--;
    }
    return 0;
}

json_t *pl_json_parse(const char *buf, size_t len, unsigned flags, struct pl_error *err)
{
    struct parser ps;
    int rc;

    if (buf == NULL) {
        pl_error_set(err, "json", "no input");
        return NULL;
    }
    ps.start = ps.p = buf;
    ps.end = buf + len;
    ps.flags = flags;
    ps.root = NULL;
    ps.stack = ps.stack_small;
    ps.depth = 0;
    ps.stack_cap = STACK_SMALL;
    ps.key = NULL;
    ps.key_len = 0;
    ps.keys.buf = ps.keys.small;
    ps.keys.cap = SCRATCH_SMALL;
    ps.values.buf = ps.values.small;
    ps.values.cap = SCRATCH_SMALL;
    ps.err = err;

    do {
        rc = parse_value(&ps);
        if (rc == 0)
            rc = after_value(&ps);
    } while (rc == 1);
    if (rc == 0) {
        ps.p = skip_ws(ps.p, ps.end);
        if (ps.p != ps.end)
            rc = fail(&ps, ps.p, "data after the value");
    }

    if (ps.stack != ps.stack_small)
        release_block(ps.stack);
    if (ps.keys.buf != ps.keys.small)
        release_block(ps.keys.buf);
    if (ps.values.buf != ps.values.small)
        release_block(ps.values.buf);
    if (rc != 0) {
        json_decref(ps.root);
        return NULL;
    }
    return ps.root;
}

/* ---- scratch trees ------------------------------------------------------------------------- */

/* Each thread's arena: a list of blocks, newest first. A release frees all but the first block
 * and rewinds it, so a thread that parses one webhook after another allocates nothing once its
 * first block is there. jansson's allocator is replaced by arena_malloc and arena_free: while
 * a scratch parse runs on this thread, values come from the arena; frees of arena memory do
 * nothing (the release drops it all); everything else goes to malloc and free. */
#define ARENA_FIRST (32 * 1024) /* a webhook's tree takes about 8 KiB */
#define ARENA_ALIGN alignof(max_align_t)

struct arena_block {
    struct arena_block *next;
    size_t cap, used;
    alignas(max_align_t) unsigned char data[];
};

static _Thread_local struct arena_block *arena;
static _Thread_local bool arena_on;
static pthread_key_t arena_key; /* frees a thread's blocks when it ends */
static pthread_once_t arena_once = PTHREAD_ONCE_INIT;

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define ARENA_POISON(p, n)   ASAN_POISON_MEMORY_REGION(p, n)
#define ARENA_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define ARENA_POISON(p, n)   ((void)(p), (void)(n))
#define ARENA_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

static void arena_drop(struct arena_block *b, struct arena_block *keep)
{
    while (b != NULL && b != keep) {
        struct arena_block *next = b->next;
        ARENA_UNPOISON(b->data, b->cap);
        free(b);
        b = next;
    }
}

/* The key holds the newest block, which links to every older one. */
static void arena_thread_end(void *newest)
{
    arena_drop(newest, NULL);
    arena = NULL;
}

static void arena_key_make(void)
{
    if (pthread_key_create(&arena_key, arena_thread_end) != 0)
        abort();
}

static bool in_arena(const void *p)
{
    const struct arena_block *b;

    for (b = arena; b != NULL; b = b->next)
        if ((const unsigned char *)p >= b->data && (const unsigned char *)p < b->data + b->cap)
            return true;
    return false;
}

static void *arena_malloc(size_t n)
{
    struct arena_block *b = arena;
    size_t size;
    void *p;

    if (!arena_on)
        return malloc(n);
    if (n > SIZE_MAX / 2)
        return NULL;
    size = (n + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1);
    if (b == NULL || b->cap - b->used < size) {
        size_t cap = b == NULL ? ARENA_FIRST : b->cap * 2;
        if (cap < size)
            cap = size;
        struct arena_block *grown = malloc(sizeof *grown + cap);
        if (grown == NULL)
            return NULL;
        grown->next = b;
        grown->cap = cap;
        grown->used = 0;
        ARENA_POISON(grown->data, cap);
        if (pthread_setspecific(arena_key, grown) != 0) {
            free(grown);
            return NULL;
        }
        arena = b = grown;
    }
    p = b->data + b->used;
    b->used += size;
    ARENA_UNPOISON(p, n); /* the padding stays poisoned: ASan sees a write past n */
    return p;
}

static void arena_free(void *p)
{
    if (!in_arena(p))
        free(p);
}

/* Whether jansson allocates through the arenas, after installing them if it still had its own
 * malloc and free (not when someone else's allocator is in place, such as the tests'). */
static bool arena_ready(void)
{
    json_malloc_t alloc;
    json_free_t release;

    json_get_alloc_funcs(&alloc, &release);
    if (alloc == arena_malloc)
        return true;
    if (alloc != malloc || release != free)
        return false;
    pthread_once(&arena_once, arena_key_make);
    json_set_alloc_funcs(arena_malloc, arena_free);
    return true;
}

void pl_json_scratch_init(void)
{
    (void)arena_ready();
}

json_t *pl_json_parse_scratch(const char *buf, size_t len, unsigned flags, struct pl_error *err)
{
    json_t *root;

    if (!arena_ready())
        return pl_json_parse(buf, len, flags, err);
    arena_on = true;
    root = pl_json_parse(buf, len, flags, err);
    arena_on = false;
    if (root == NULL)
        pl_json_scratch_release(NULL);
    return root;
}

void pl_json_scratch_release(json_t *root)
{
    struct arena_block *first;

    if (root != NULL && !in_arena(root)) {
        json_decref(root);
        return;
    }
    if (arena == NULL)
        return;
    for (first = arena; first->next != NULL; first = first->next)
        ;
    arena_drop(arena, first);
    arena = first;
    ARENA_POISON(first->data, first->used);
    first->used = 0;
    (void)pthread_setspecific(arena_key, first); /* cannot fail: the key has a slot already */
}

/* ---- the writer ---------------------------------------------------------------------------- */

void pl_jw_raw(struct pl_jw *w, const char *s, size_t n)
{
    if (w->oom)
        return;
    if (w->len + n + 1 > w->cap) {
        size_t cap = w->cap > 0 ? w->cap : 512;
        while (w->len + n + 1 > cap)
            cap *= 2;
        char *b = realloc(w->buf, cap);
        if (b == NULL) {
            w->oom = 1;
            return;
        }
        w->buf = b;
        w->cap = cap;
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
    w->buf[w->len] = '\0';
}

void pl_jw_quoted(struct pl_jw *w, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    /* the characters with a two-character escape; the other control characters are \u00XX */
    static const char short_escape['\\' + 1] = {
        ['"'] = '"',  ['\\'] = '\\', ['\b'] = 'b', ['\f'] = 'f',
        ['\n'] = 'n', ['\r'] = 'r',  ['\t'] = 't'};
    const char *run = s, *end = s + n;

    pl_jw_raw(w, "\"", 1);
    for (; s < end; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xF]};
        char letter = c < sizeof short_escape ? short_escape[c] : 0;
        size_t elen = letter != 0 ? 2 : 6;
        if (letter != 0)
            esc[1] = letter;
        pl_jw_raw(w, run, (size_t)(s - run));
        pl_jw_raw(w, esc, elen);
        run = s + 1;
    }
    pl_jw_raw(w, run, (size_t)(s - run));
    pl_jw_raw(w, "\"", 1);
}

static void dump_value(struct pl_jw *w, const json_t *v)
{
    char num[32];
    size_t i, key_len;
    int first = 1, len;
    const char *key;
    json_t *item;

    switch (json_typeof(v)) {
    case JSON_OBJECT:
        pl_jw_raw(w, "{", 1);
        json_object_keylen_foreach((json_t *)v, key, key_len, item)
        {
            if (!first)
                pl_jw_raw(w, ",", 1);
            first = 0;
            pl_jw_quoted(w, key, key_len);
            pl_jw_raw(w, ":", 1);
            dump_value(w, item);
        }
        pl_jw_raw(w, "}", 1);
        break;
    case JSON_ARRAY:
        pl_jw_raw(w, "[", 1);
        for (i = 0; i < json_array_size(v); i++) {
            if (i > 0)
                pl_jw_raw(w, ",", 1);
            dump_value(w, json_array_get(v, i));
        }
        pl_jw_raw(w, "]", 1);
        break;
    case JSON_STRING:
        pl_jw_quoted(w, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        len = snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        pl_jw_raw(w, num, (size_t)len);
        break;
    case JSON_REAL: { /* rare in webhooks; jansson's own digits, whatever its precision rules */
        char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        if (text == NULL)
            w->oom = 1;
        else
            pl_jw_raw(w, text, strlen(text));
        free(text);
        break;
    }
    case JSON_TRUE:
        pl_jw_raw(w, "true", 4);
        break;
    case JSON_FALSE:
        pl_jw_raw(w, "false", 5);
        break;
    case JSON_NULL:
        pl_jw_raw(w, "null", 4);
        break;
    }
}

char *pl_json_dump(const json_t *v)
{
    struct pl_jw w = {0};

    dump_value(&w, v);
    if (w.oom) {
        free(w.buf);
        return NULL;
    }
    return w.buf;
}
