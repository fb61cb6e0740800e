/* test_json.c - pl_json_parse against the rules it promises and against jansson 2.14 itself: a
 * table of documents that must parse (each compared with the tree it must give), a table that must
 * be refused (each row names the rule it breaks), the nesting limit at its edges, allocation
 * failure at every step, and a differential run in which every fixture, the first 2,000 benchmark
 * bodies (build/bench/webhooks.txt or $PL_BENCH_WEBHOOKS, skipped when absent) and thousands of
 * deterministic mutations of them must be accepted or refused by both parsers alike, with trees
 * identical down to the bits of each real and the order of each object's keys. Run from the
 * repository root. */
#include "json.h"
#include "failing_alloc.h"
#include "read_file.h"
#include "unit.h"

#include <dirent.h>
#include <malloc.h>
#include <pthread.h>
#if defined(__SANITIZE_ADDRESS__)
size_t __sanitizer_get_current_allocated_bytes(void); /* libasan's; GCC ships no header for it */
#endif
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIXTURES    "tests/unit/fixtures"
#define BENCH       "build/bench/webhooks.txt"
#define BENCH_MAX   2000
#define NUL         PL_JSON_ALLOW_NUL
#define DEPTH       PL_JSON_MAX_DEPTH
#define JANSSON_ANY JSON_DECODE_ANY

/* ---- comparing trees ------------------------------------------------------------------------ */

/* 1 when a and b are the same tree: same types, integers, bit-identical reals, byte-identical
 * strings, and objects with the same keys in the same order. Stricter than json_equal. */
static int same_tree(json_t *a, json_t *b)
{
    double x, y;
    size_t i;

    if (json_typeof(a) != json_typeof(b))
        return 0;
    switch (json_typeof(a)) {
    case JSON_INTEGER:
        return json_integer_value(a) == json_integer_value(b);
    case JSON_REAL:
        x = json_real_value(a);
        y = json_real_value(b);
        return memcmp(&x, &y, sizeof x) == 0;
    case JSON_STRING:
        return json_string_length(a) == json_string_length(b) &&
               memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0;
    case JSON_ARRAY:
        if (json_array_size(a) != json_array_size(b))
            return 0;
        for (i = 0; i < json_array_size(a); i++)
            if (!same_tree(json_array_get(a, i), json_array_get(b, i)))
                return 0;
        return 1;
    case JSON_OBJECT: {
        void *ia = json_object_iter(a), *ib = json_object_iter(b);
        if (json_object_size(a) != json_object_size(b))
            return 0;
        for (; ia != NULL && ib != NULL;
             ia = json_object_iter_next(a, ia), ib = json_object_iter_next(b, ib))
            if (strcmp(json_object_iter_key(ia), json_object_iter_key(ib)) != 0 ||
                !same_tree(json_object_iter_value(ia), json_object_iter_value(ib)))
                return 0;
        return ia == NULL && ib == NULL;
    }
    default:
        return 1;
    }
}

/* buf[at-16 .. at+16) with unprintable bytes as \xNN, for failure messages. */
static const char *excerpt(const char *buf, size_t len, size_t at)
{
    static char out[200];
    size_t i = at > 16 ? at - 16 : 0, o = 0;

    for (; i < len && i < at + 16 && o + 5 < sizeof out; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (c >= 0x20 && c < 0x7F)
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, sizeof out - o, "\\x%02X", c);
    }
    out[o] = '\0';
    return out;
}

static size_t jansson_flags(unsigned flags)
{
    return JANSSON_ANY | ((flags & NUL) ? JSON_ALLOW_NUL : 0);
}

/* ---- the differential check ------------------------------------------------------------------ */

static size_t diff_runs, diff_rejected, dumps;

/* The writer against jansson's compact dump of the same tree: the same bytes. */
static void agree_dump(const char *what, const json_t *v)
{
    char *want = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    char *got = pl_json_dump(v);

    dumps++;
    if (want == NULL || got == NULL)
        UNIT_FAIL("%s: dump: jansson %s, pl_json_dump %s", what, want ? "wrote" : "failed",
                  got ? "wrote" : "failed");
    else if (strcmp(want, got) != 0) {
        size_t at = 0;
        while (want[at] == got[at])
            at++;
        UNIT_FAIL("%s: the dumps differ at byte %zu, where jansson writes \"%s\"", what, at,
                  excerpt(want, strlen(want), at));
    } else
        unit_passed++;
    free(want);
    free(got);
}

/* pl_json_parse_scratch on the same text: the same tree as pl_json_parse (plain), or the same
 * refusal (plain NULL, its error in plain_err), built in the thread's arena. */
static void agree_scratch(const char *what, const char *buf, size_t len, unsigned flags,
                          const json_t *plain, const struct pl_error *plain_err)
{
    struct pl_error err = {{0}, {0}};
    json_t *got = pl_json_parse_scratch(buf, len, flags, &err);

    if (plain == NULL && got == NULL) {
        if (strcmp(err.code, plain_err->code) == 0 && strcmp(err.msg, plain_err->msg) == 0)
            unit_passed++;
        else
            UNIT_FAIL("%s (flags %u): scratch refuses with \"%s\", plain with \"%s\"", what, flags,
                      err.msg, plain_err->msg);
    } else if (plain == NULL || got == NULL) {
        UNIT_FAIL("%s (flags %u): scratch %s, plain %s", what, flags, got ? "accepts" : "refuses",
                  plain ? "accepts" : "refuses");
    } else if (!json_equal(plain, got) || !same_tree((json_t *)plain, got)) {
        UNIT_FAIL("%s (flags %u): scratch and plain trees differ", what, flags);
    } else {
        unit_passed++;
    }
    pl_json_scratch_release(got);
}

/* Both parsers on buf[0..len) under one set of flags: both refuse, or both accept and give the
 * same tree. A refusal by pl_json_parse must be a syntax error with a byte offset, not "oom". */
static void agree_flags(const char *what, const char *buf, size_t len, unsigned flags)
{
    json_error_t jerr;
    struct pl_error err = {{0}, {0}};
    json_t *want = json_loadb(buf, len, jansson_flags(flags), &jerr);
    json_t *got = pl_json_parse(buf, len, flags, &err);

    diff_runs++;
    if (want == NULL && got == NULL) {
        diff_rejected++;
        if (strcmp(err.code, "json") == 0 && strstr(err.msg, " at byte ") != NULL)
            unit_passed++;
        else
            UNIT_FAIL("%s: refused with %s: %s", what, err.code, err.msg);
    } else if (want == NULL) {
        UNIT_FAIL("%s (flags %u): jansson refuses (%s, byte %d: \"%s\"), pl_json_parse accepts",
                  what, flags, jerr.text, jerr.position,
                  excerpt(buf, len, (size_t)(jerr.position > 0 ? jerr.position : 0)));
    } else if (got == NULL) {
        UNIT_FAIL("%s (flags %u): jansson accepts, pl_json_parse refuses: %s", what, flags,
                  err.msg);
    } else if (!json_equal(want, got) || !same_tree(want, got)) {
        UNIT_FAIL("%s (flags %u): both accept, the trees differ", what, flags);
    } else {
        unit_passed++;
        agree_dump(what, want);
    }
    agree_scratch(what, buf, len, flags, got, &err);
    json_decref(want);
    json_decref(got);
}

/* Both flag settings, on an exact-size heap copy so that ASan sees any read past the end. */
static void agree(const char *what, const char *buf, size_t len)
{
    char *copy = malloc(len > 0 ? len : 1);

    if (copy == NULL) {
        UNIT_FAIL("%s: out of memory", what);
        return;
    }
    memcpy(copy, buf, len);
    agree_flags(what, copy, len, 0);
    agree_flags(what, copy, len, NUL);
    free(copy);
}

/* ---- documents that must parse ---------------------------------------------------------------
 * want: JSON text (read by jansson, with NULs allowed) for the tree the document must give;
 * written differently from the input wherever possible, so the two parsers walk different paths.
 * len 0: strlen(text). Every row is also checked against jansson on the input itself. */

static const struct valid_case {
    const char *rule, *text;
    size_t len;
    unsigned flags;
    const char *want;
} valid_cases[] = {
    {"grammar: object with every value type",
     "{\"s\":\"x\",\"i\":1,\"r\":1.5,\"t\":true,\"f\":false,\"n\":null,\"a\":[],\"o\":{}}", 0, 0,
     "{\"s\":\"x\",\"i\":1,\"r\":15e-1,\"t\":true,\"f\":false,\"n\":null,\"a\":[],\"o\":{}}"},
    {"grammar: nested containers", "[[[]],{\"a\":[{\"b\":{}}]},[1,[2,[3]]]]", 0, 0,
     "[ [ [ ] ] , { \"a\" : [ { \"b\" : { } } ] } , [ 1 , [ 2 , [ 3 ] ] ] ]"},
    {"grammar: whitespace is space, tab, CR and LF", " \t\r\n{ \"a\" :\t[ 1 ,\r2 ]\n} \t\r\n", 0, 0,
     "{\"a\":[1,2]}"},
    {"top level: a string (as JSON_DECODE_ANY)", "\"x\"", 0, 0, "\"x\""},
    {"top level: a number with whitespace around", " 42 ", 0, 0, "42"},
    {"top level: a literal", "null", 0, 0, "null"},
    {"top level: an empty array", "[]", 0, 0, "[ ]"},
    {"strings: every one-character escape", "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", 0, 0,
     "\"\\u0022\\u005c/\\u0008\\u000c\\u000a\\u000d\\u0009\""},
    {"strings: \\u escapes in either case", "\"\\u0416\\u00e9\\u00E9\\u20AC\"", 0, 0,
     "\"\xD0\x96\xC3\xA9\xC3\xA9\xE2\x82\xAC\""},
    {"strings: a surrogate pair is one code point", "\"\\ud83d\\ude00\\uD83D\\uDE00\"", 0, 0,
     "\"\xF0\x9F\x98\x80\xF0\x9F\x98\x80\""},
    {"strings: the highest code point by escape", "\"\\udbff\\udfff\"", 0, 0,
     "\"\xF4\x8F\xBF\xBF\""},
    {"strings: raw UTF-8 of 2, 3 and 4 bytes", "\"\xD0\x96\xE2\x82\xAC\xF0\x9F\x98\x80\"", 0, 0,
     "\"\\u0416\\u20ac\\ud83d\\ude00\""},
    {"strings: raw U+FFFF and U+10FFFF", "\"\xEF\xBF\xBF\xF4\x8F\xBF\xBF\"", 0, 0,
     "\"\\uffff\\udbff\\udfff\""},
    {"strings: raw U+D7FF and U+E000 border the surrogates", "\"\xED\x9F\xBF\xEE\x80\x80\"", 0, 0,
     "\"\\ud7ff\\ue000\""},
    {"strings: DEL (0x7F) is not a control character", "\"\x7F\"", 0, 0, "\"\\u007f\""},
    {"strings: escapes between raw runs", "\"ab\\ncd\\u0416ef\\\\\"", 0, 0,
     "\"ab\\u000acd\xD0\x96"
     "ef\\u005c\""},
    {"strings: \\u0000 kept with PL_JSON_ALLOW_NUL", "\"a\\u0000b\"", 0, NUL, "\"a\\u0000b\""},
    {"strings: empty", "\"\"", 0, 0, "\"\""},
    {"integers: zero, negative zero, signs", "[0,-0,1,-1,123456789]", 0, 0, "[0,0,1,-1,123456789]"},
    {"integers: the largest json_int_t", "9223372036854775807", 0, 0, "9223372036854775807"},
    {"integers: the smallest json_int_t", "-9223372036854775808", 0, 0, "-9223372036854775808"},
    {"reals: fraction and exponent forms", "[1.5,1e2,1E2,1e+2,1E-2,-0.0,0.5e1]", 0, 0,
     "[15e-1,100.0,100.0,100.0,0.01,-0.0,5.0]"},
    {"reals: an exponent makes a real", "[1e0,0e0]", 0, 0, "[1.0,0.0]"},
    {"reals: exact fast path edges", "[9007199254740992.0,1e22,1e-22,123456789012345678e0]", 0, 0,
     "[9007199254740992e0,10000000000000000000000.0,1.0e-22,123456789012345678.0]"},
    {"reals: more digits than a double holds", "3.14159265358979323846264338327950288", 0, 0,
     "3.141592653589793"},
    {"reals: halfway cases round to even", "[9007199254740993,9007199254740993.0,2.5e-324]", 0, 0,
     "[9007199254740993,9007199254740992.0,5e-324]"},
    {"reals: coordinates as Meta sends them", "[37.44221496582,-122.16165924072]", 0, 0,
     "[3744221496582e-11,-12216165924072e-11]"},
    {"reals: underflow gives 0, as in jansson", "[1e-400,-1e-400]", 0, 0, "[0.0,-0.0]"},
    {"reals: a denormal", "4e-320", 0, 0, "4.0e-320"},
    {"reals: the largest double", "1.7976931348623157e308", 0, 0, "17976931348623157e292"},
    {"objects: duplicate keys, the last wins", "{\"a\":1,\"b\":0,\"a\":2}", 0, 0,
     "{\"a\":2,\"b\":0}"},
    {"objects: a duplicate key replaces a container", "{\"a\":[1,{}],\"a\":{\"c\":[]}}", 0, 0,
     "{\"a\":{\"c\":[]}}"},
    {"objects: an empty key", "{\"\":1}", 0, 0, "{\"\":1}"},
    {"objects: a key with escapes", "{\"\\u0416\\n\":1}", 0, 0, "{\"\xD0\x96\\u000a\":1}"},
    {"jansson quirk: one NUL byte after a number is dropped", "[1\0,2.5\0]", 9, 0, "[1,2.5]"},
    {"jansson quirk: one NUL byte after a literal is dropped", "{\"a\":true\0}", 11, 0,
     "{\"a\":true}"},
    {"jansson quirk: a NUL byte after the top-level number", "0\0 ", 3, 0, "0"},
};

static void test_valid(void)
{
    size_t i;

    for (i = 0; i < sizeof valid_cases / sizeof valid_cases[0]; i++) {
        const struct valid_case *c = &valid_cases[i];
        size_t len = c->len ? c->len : strlen(c->text);
        struct pl_error err = {{0}, {0}};
        json_t *want = json_loads(c->want, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        json_t *got = pl_json_parse(c->text, len, c->flags, &err);

        UNIT_CASE(c->rule);
        if (want == NULL)
            UNIT_FAIL("the expected tree does not parse: %s", c->want);
        else if (got == NULL)
            UNIT_FAIL("refused: %s", err.msg);
        else if (!same_tree(want, got))
            UNIT_FAIL("tree differs from %s", c->want);
        else
            unit_passed++;
        json_decref(want);
        json_decref(got);
        agree_flags(c->rule, c->text, len, c->flags);
    }
}

/* ---- documents that must be refused ------------------------------------------------------------
 * msg: the start of the error message, with the byte offset. Each row is also checked against
 * jansson, which must refuse it too. */

static const struct invalid_case {
    const char *rule, *text;
    size_t len;
    unsigned flags;
    const char *msg;
} invalid_cases[] = {
    {"grammar: empty input", "", 0, 0, "unexpected end of input at byte 0"},
    {"grammar: whitespace only", " \t\r\n", 0, 0, "unexpected end of input at byte 4"},
    {"grammar: trailing comma in an array", "[1,]", 0, 0, "unexpected character at byte 3"},
    {"grammar: leading comma in an array", "[,1]", 0, 0, "unexpected character at byte 1"},
    {"grammar: trailing comma in an object", "{\"a\":1,}", 0, 0,
     "expected a member name at byte 7"},
    {"grammar: missing colon", "{\"a\" 1}", 0, 0, "expected ':' at byte 5"},
    {"grammar: missing member value", "{\"a\":}", 0, 0, "unexpected character at byte 5"},
    {"grammar: a number as a key", "{1:2}", 0, 0, "expected a member name at byte 1"},
    {"grammar: a single-quoted key", "{'a':1}", 0, 0, "expected a member name at byte 1"},
    {"grammar: missing comma", "[1 2]", 0, 0, "expected ',' or ']' at byte 3"},
    {"grammar: wrong closer", "{\"a\":1]", 0, 0, "expected ',' or '}' at byte 6"},
    {"grammar: unclosed array", "[1", 0, 0, "expected ',' or ']' at byte 2"},
    {"grammar: unclosed object", "{\"a\":{}", 0, 0, "expected ',' or '}' at byte 7"},
    {"grammar: a stray closer", "]", 0, 0, "unexpected character at byte 0"},
    {"grammar: a single-quoted string", "'a'", 0, 0, "unexpected character at byte 0"},
    {"grammar: a byte-order mark", "\xEF\xBB\xBF{}", 0, 0, "unexpected character at byte 0"},
    {"grammar: a NUL byte instead of a value", "[\0]", 3, 0, "unexpected character at byte 1"},
    {"literals: truncated", "tru", 0, 0, "invalid literal at byte 0"},
    {"literals: capitalised", "True", 0, 0, "unexpected character at byte 0"},
    {"literals: followed by a letter", "[truex]", 0, 0, "expected ',' or ']' at byte 5"},
    {"literals: followed by a digit", "[null1]", 0, 0, "expected ',' or ']' at byte 5"},
    {"literals: NaN is not JSON", "NaN", 0, 0, "unexpected character at byte 0"},
    {"literals: Infinity is not JSON", "-Infinity", 0, 0, "invalid number at byte 0"},
    {"numbers: a lone minus", "-", 0, 0, "invalid number at byte 0"},
    {"numbers: a plus sign", "+1", 0, 0, "unexpected character at byte 0"},
    {"numbers: a leading zero", "[01]", 0, 0, "invalid number (leading zero) at byte 1"},
    {"numbers: a negative leading zero", "-01", 0, 0, "invalid number (leading zero) at byte 0"},
    {"numbers: no digit after the point", "1.", 0, 0, "invalid number at byte 0"},
    {"numbers: no digit before the point", ".5", 0, 0, "unexpected character at byte 0 ('.')"},
    {"the message shows the byte: a letter", "[1,x]", 0, 0, "unexpected character at byte 3 ('x')"},
    {"the message shows the byte: not printable", "\"a\x01\"", 0, 0,
     "control character in a string at byte 2 (0x01)"},
    {"the message shows the byte: invalid UTF-8 in hex", "\"\xC0\x80\"", 0, 0,
     "invalid UTF-8 at byte 1 (0xC0)"},
    {"the message shows the byte: the end of the input", "[1,", 0, 0,
     "unexpected end of input at byte 3 (the end)"},
    {"numbers: no exponent digits", "1e", 0, 0, "invalid number at byte 0"},
    {"numbers: no exponent digits after a sign", "1e+", 0, 0, "invalid number at byte 0"},
    {"numbers: hexadecimal", "0x10", 0, 0, "data after the value at byte 1"},
    {"integers: one above the largest json_int_t", "9223372036854775808", 0, 0,
     "integer out of range at byte 0"},
    {"integers: one below the smallest json_int_t", "-9223372036854775809", 0, 0,
     "integer out of range at byte 0"},
    {"integers: twenty digits", "[99999999999999999999]", 0, 0, "integer out of range at byte 1"},
    {"integers: far too many digits", "123456789012345678901234567890", 0, 0,
     "integer out of range at byte 0"},
    {"reals: overflow", "1e400", 0, 0, "number out of range at byte 0"},
    {"reals: negative overflow", "[-1.8e308]", 0, 0, "number out of range at byte 1"},
    {"trailing data: a second value", "1 2", 0, 0, "data after the value at byte 2"},
    {"trailing data: garbage after an object", "{} x", 0, 0, "data after the value at byte 3"},
    {"trailing data: a second closer", "[1]]", 0, 0, "data after the value at byte 3"},
    {"trailing data: a NUL byte after a string", "\"x\"\0", 4, 0, "data after the value at byte 3"},
    {"trailing data: a NUL byte after a bracket", "[1]\0", 4, 0, "data after the value at byte 3"},
    {"trailing data: a second NUL after a number", "1\0\0", 3, 0, "data after the value at byte 2"},
    {"trailing data: a NUL byte after a space", "1 \0", 3, 0, "data after the value at byte 2"},
    {"strings: unterminated", "\"abc", 0, 0, "unterminated string at byte 0"},
    {"strings: a backslash at the end", "\"\\", 0, 0, "unterminated string at byte 0"},
    {"control characters: 0x01 in a string", "\"a\x01\"", 0, 0,
     "control character in a string at byte 2"},
    {"control characters: a raw newline in a string", "\"a\nb\"", 0, 0,
     "control character in a string at byte 2"},
    {"control characters: a raw tab in a string", "\"\t\"", 0, 0,
     "control character in a string at byte 1"},
    {"control characters: 0x1F in a key", "{\"\x1F\":1}", 0, 0,
     "control character in a string at byte 2"},
    {"control characters: a raw NUL in a string", "\"a\0b\"", 5, NUL,
     "control character in a string at byte 2"},
    {"escapes: unknown letter", "\"\\x\"", 0, 0, "invalid escape at byte 1"},
    {"escapes: a single quote", "\"\\'\"", 0, 0, "invalid escape at byte 1"},
    {"escapes: capital U", "\"\\U0041\"", 0, 0, "invalid escape at byte 1"},
    {"escapes: \\u with two digits", "\"\\u12\"", 0, 0, "invalid \\u escape at byte 1"},
    {"escapes: \\u with a non-hex digit", "\"\\u12G4\"", 0, 0, "invalid \\u escape at byte 1"},
    {"escapes: \\u cut by the end", "\"\\u12", 0, 0, "invalid \\u escape at byte 1"},
    {"surrogates: a lone high surrogate", "\"\\ud800\"", 0, 0,
     "unpaired surrogate in a \\u escape at byte 1"},
    {"surrogates: a lone low surrogate", "\"\\udc00\"", 0, 0,
     "unpaired surrogate in a \\u escape at byte 1"},
    {"surrogates: high then a letter", "\"\\ud800x\"", 0, 0,
     "unpaired surrogate in a \\u escape at byte 1"},
    {"surrogates: high then a non-surrogate escape", "\"\\ud800\\u0041\"", 0, 0,
     "unpaired surrogate in a \\u escape at byte 1"},
    {"surrogates: two high surrogates", "\"\\ud800\\ud800\"", 0, 0,
     "unpaired surrogate in a \\u escape at byte 1"},
    {"surrogates: a pair in the wrong order", "\"\\ude00\\ud83d\"", 0, 0,
     "unpaired surrogate in a \\u escape at byte 1"},
    {"surrogates: high then a broken escape", "\"\\ud800\\u12\"", 0, 0,
     "unpaired surrogate in a \\u escape at byte 1"},
    {"NUL: \\u0000 without PL_JSON_ALLOW_NUL", "[\"a\\u0000\"]", 0, 0,
     "\\u0000 in a string at byte 1"},
    {"NUL: \\u0000 in a key, even with PL_JSON_ALLOW_NUL", "{\"\\u0000\":1}", 0, NUL,
     "\\u0000 in a member name at byte 1"},
    {"UTF-8: overlong NUL (C0 80)", "\"\xC0\x80\"", 0, 0, "invalid UTF-8 at byte 1"},
    {"UTF-8: overlong 2-byte (C1 BF)", "\"\xC1\xBF\"", 0, 0, "invalid UTF-8 at byte 1"},
    {"UTF-8: overlong 3-byte (E0 80 80)", "\"\xE0\x80\x80\"", 0, 0, "invalid UTF-8 at byte 1"},
    {"UTF-8: overlong 3-byte (E0 9F BF)", "\"\xE0\x9F\xBF\"", 0, 0, "invalid UTF-8 at byte 1"},
    {"UTF-8: overlong 4-byte (F0 8F BF BF)", "\"\xF0\x8F\xBF\xBF\"", 0, 0,
     "invalid UTF-8 at byte 1"},
    {"UTF-8: a high surrogate (ED A0 80)", "\"\xED\xA0\x80\"", 0, 0, "invalid UTF-8 at byte 1"},
    {"UTF-8: a low surrogate (ED BF BF)", "\"\xED\xBF\xBF\"", 0, 0, "invalid UTF-8 at byte 1"},
    {"UTF-8: a surrogate pair encoded in UTF-8", "\"\xED\xA0\xBD\xED\xB8\x80\"", 0, 0,
     "invalid UTF-8 at byte 1"},
    {"UTF-8: above U+10FFFF (F4 90 80 80)", "\"\xF4\x90\x80\x80\"", 0, 0,
     "invalid UTF-8 at byte 1"},
    {"UTF-8: lead byte F5", "\"\xF5\x80\x80\x80\"", 0, 0, "invalid UTF-8 at byte 1"},
    {"UTF-8: byte FF", "\"\xFF\"", 0, 0, "invalid UTF-8 at byte 1"},
    {"UTF-8: a lone continuation byte", "\"a\x80\"", 0, 0, "invalid UTF-8 at byte 2"},
    {"UTF-8: a sequence cut by the quote", "\"\xE2\x82\"", 0, 0, "invalid UTF-8 at byte 1"},
    {"UTF-8: a sequence cut by the end", "\"\xD0", 0, 0, "invalid UTF-8 at byte 1"},
    {"UTF-8: invalid in a key", "{\"k\xC0\x80\":1}", 0, 0, "invalid UTF-8 at byte 3"},
    {"UTF-8: a byte >= 0x80 outside strings", "[1,\xC3\xA9]", 0, 0,
     "unexpected character at byte 3"},
};

static void test_invalid(void)
{
    size_t i;

    for (i = 0; i < sizeof invalid_cases / sizeof invalid_cases[0]; i++) {
        const struct invalid_case *c = &invalid_cases[i];
        size_t len = c->len ? c->len : strlen(c->text);
        struct pl_error err = {{0}, {0}};
        json_t *got = pl_json_parse(c->text, len, c->flags, &err);
        json_t *jansson = json_loadb(c->text, len, jansson_flags(c->flags), NULL);

        UNIT_CASE(c->rule);
        CHECK(got == NULL);
        CHECK(jansson == NULL);
        CHECK_STR(err.code, "json");
        if (strncmp(err.msg, c->msg, strlen(c->msg)) == 0)
            unit_passed++;
        else
            UNIT_FAIL("message \"%s\", want \"%s\"", err.msg, c->msg);
        json_decref(got);
        json_decref(jansson);
    }
}

/* ---- values, one property each ----------------------------------------------------------------
 */

static json_t *parse(const char *text, unsigned flags)
{
    return pl_json_parse(text, strlen(text), flags, NULL);
}

static void test_values(void)
{
    struct pl_error err = {{0}, {0}};
    json_t *v;

    UNIT_CASE("integers are json_int_t at both ends");
    v = parse("[9223372036854775807,-9223372036854775808,-0]", 0);
    CHECK(json_integer_value(json_array_get(v, 0)) == LLONG_MAX);
    CHECK(json_integer_value(json_array_get(v, 1)) == LLONG_MIN);
    CHECK(json_is_integer(json_array_get(v, 2)) && json_integer_value(json_array_get(v, 2)) == 0);
    json_decref(v);

    UNIT_CASE("-0.0 is a real with its sign");
    v = parse("-0.0", 0);
    CHECK(json_is_real(v) && json_real_value(v) == 0.0 && signbit(json_real_value(v)));
    json_decref(v);

    UNIT_CASE("an allowed \\u0000 is kept inside the string's length");
    v = parse("\"a\\u0000b\"", NUL);
    CHECK_INT(json_string_length(v), 3);
    CHECK(v != NULL && memcmp(json_string_value(v), "a\0b", 4) == 0);
    json_decref(v);

    UNIT_CASE("duplicate keys: one member, the last value, the first position");
    v = parse("{\"a\":1,\"b\":2,\"a\":3}", 0);
    CHECK_INT(json_object_size(v), 2);
    CHECK_INT(json_integer_value(json_object_get(v, "a")), 3);
    CHECK_STR(json_object_iter_key(json_object_iter(v)), "a");
    json_decref(v);

    UNIT_CASE("keys keep document order");
    v = parse("{\"z\":1,\"a\":2,\"m\":3}", 0);
    CHECK_STR(json_object_iter_key(json_object_iter(v)), "z");
    json_decref(v);

    UNIT_CASE("the input need not be NUL-terminated");
    v = pl_json_parse("[12]34", 4, 0, &err);
    CHECK_INT(json_integer_value(json_array_get(v, 0)), 12);
    json_decref(v);
    v = pl_json_parse("123", 2, 0, &err);
    CHECK_INT(json_integer_value(v), 12);
    json_decref(v);

    UNIT_CASE("NULL input is an error, and err may be NULL");
    CHECK(pl_json_parse(NULL, 0, 0, &err) == NULL);
    CHECK_STR(err.code, "json");
    CHECK(pl_json_parse("[", 1, 0, NULL) == NULL);
}

/* Strings and numbers longer than the parser's in-frame scratch buffers. */
static void test_long_tokens(void)
{
    static const char *const pieces[] = {"ab\\n\\u0416", "\xD0\x96\\/xyz", "\\ud83d\\ude00"};
    size_t i, o = 0, n;
    char *buf = malloc(200000);

    if (buf == NULL)
        return;
    UNIT_CASE("a long string with escapes throughout");
    buf[o++] = '"';
    for (i = 0; i < 12000; i++) {
        n = strlen(pieces[i % 3]);
        memcpy(buf + o, pieces[i % 3], n);
        o += n;
    }
    buf[o++] = '"';
    agree("long escaped string", buf, o);
    buf[0] = '{';
    buf[1] = '"';
    agree("long escaped key", buf, o); /* not JSON, but the key is scanned in full first */
    memcpy(buf + o, ":1}", 3);
    agree("long escaped key with a value", buf, o + 3);

    UNIT_CASE("long numbers take strtod's path");
    o = 0;
    buf[o++] = '[';
    buf[o++] = '0';
    buf[o++] = '.';
    for (i = 0; i < 5000; i++)
        buf[o++] = (char)('0' + (i * 7) % 10);
    buf[o++] = ',';
    buf[o++] = '1';
    for (i = 0; i < 300; i++)
        buf[o++] = '0';
    memcpy(buf + o, ".0e-10]", 7);
    o += 7;
    agree("long reals", buf, o);
    free(buf);
}

/* ---- the nesting limit -------------------------------------------------------------------------
 * jansson counts every value, the top-level one at depth 1, and refuses anything deeper than
 * 2048: 2048 nested empty arrays parse, 2048 arrays around a scalar do not. */

static char *nest(size_t n, const char *open, const char *inner, const char *close, size_t *len)
{
    size_t lo = strlen(open), li = strlen(inner), lc = strlen(close), i, o = 0;
    char *buf = malloc(n * (lo + lc) + li + 1);

    if (buf == NULL)
        return NULL;
    for (i = 0; i < n; i++, o += lo)
        memcpy(buf + o, open, lo);
    memcpy(buf + o, inner, li);
    o += li;
    for (i = 0; i < n; i++, o += lc)
        memcpy(buf + o, close, lc);
    *len = o;
    return buf;
}

static const struct depth_case {
    const char *rule;
    size_t n;
    const char *open, *inner, *close;
    int ok;
} depth_cases[] = {
    {"depth: 2048 empty arrays", DEPTH, "[", "", "]", 1},
    {"depth: 2049 empty arrays", DEPTH + 1, "[", "", "]", 0},
    {"depth: 2047 arrays around a scalar", DEPTH - 1, "[", "1", "]", 1},
    {"depth: 2048 arrays around a scalar", DEPTH, "[", "1", "]", 0},
    {"depth: 2047 arrays around an empty object", DEPTH - 1, "[", "{}", "]", 1},
    {"depth: 2047 arrays around a member", DEPTH - 1, "[", "{\"a\":1}", "]", 0},
    {"depth: 2048 nested objects", DEPTH - 1, "{\"a\":", "{}", "}", 1},
    {"depth: 2049 nested objects", DEPTH, "{\"a\":", "{}", "}", 0},
    {"depth: 2048 mixed, innermost empty", DEPTH / 2, "{\"k\":[", "", "]}", 1},
    {"depth: 2048 mixed around a string", DEPTH / 2, "[{\"k\":", "\"s\"", "}]", 0},
    {"depth: 2047 mixed around a string", DEPTH / 2 - 1, "[{\"k\":", "[\"s\"]", "}]", 1},
    {"depth: far too deep", 100000, "[", "", "]", 0},
};

static void test_depth(void)
{
    size_t i, len = 0;

    for (i = 0; i < sizeof depth_cases / sizeof depth_cases[0]; i++) {
        const struct depth_case *c = &depth_cases[i];
        struct pl_error err = {{0}, {0}};
        char *buf = nest(c->n, c->open, c->inner, c->close, &len);
        json_t *v;

        UNIT_CASE(c->rule);
        if (buf == NULL)
            continue;
        v = pl_json_parse(buf, len, 0, &err);
        CHECK_INT(v != NULL, c->ok);
        if (!c->ok) {
            char want[64];
            snprintf(want, sizeof want, "nesting deeper than %d", PL_JSON_MAX_DEPTH);
            CHECK_CONTAINS(err.msg, want);
        }
        json_decref(v);
        agree(c->rule, buf, len);
        free(buf);
    }
}

/* ---- allocation failure ------------------------------------------------------------------------
 * jansson's allocator fails at the Nth call, for every N until the parse succeeds: each run must
 * return NULL with "oom" (never a syntax error, never a crash or a leak under ASan). */

/* Returns how many allocations the parse makes (the first budget that lets it succeed). */
static long test_alloc_failure(const char *what, const char *body, size_t len, long min_failures)
{
    json_t *v = NULL;
    long n, failures = 0, wrong = 0;

    UNIT_CASE(what);
    for (n = 0; n < 100000 && v == NULL; n++) {
        struct pl_error err = {{0}, {0}};
        fail_jansson_after(n);
        v = pl_json_parse(body, len, NUL, &err);
        fail_jansson_after(-1);
        if (v == NULL) {
            failures++;
            wrong += strcmp(err.code, "oom") != 0;
        }
    }
    CHECK(v != NULL);
    CHECK(failures >= min_failures);
    CHECK_INT(wrong, 0);
    json_decref(v);
    return n - 1;
}

/* The parser's own blocks, past what it keeps in its frame: an escaped string longer than its
 * small scratch buffers (a member name and a value), nesting deeper than its small stack, and a
 * real too long for the exact fast path (its digits are copied for strtod). */
static void test_alloc_failure_growth(void)
{
    char doc[4096];
    size_t n = 0;

    n += (size_t)snprintf(doc + n, sizeof doc - n, "{\"");
    for (int i = 0; i < 100; i++)
        n += (size_t)snprintf(doc + n, sizeof doc - n, "\\u0416ab");
    n += (size_t)snprintf(doc + n, sizeof doc - n, "\":\"");
    for (int i = 0; i < 100; i++)
        n += (size_t)snprintf(doc + n, sizeof doc - n, "x\\n\\u00e9");
    n += (size_t)snprintf(doc + n, sizeof doc - n, "\",\"deep\":");
    for (int i = 0; i < 80; i++)
        doc[n++] = '[';
    n += (size_t)snprintf(doc + n, sizeof doc - n, "1.000000000000000000000000000000001e-5");
    for (int i = 0; i < 80; i++)
        doc[n++] = ']';
    doc[n++] = '}';
    doc[n] = '\0';
    test_alloc_failure("allocation failure while the parser grows its own buffers", doc, n, 10);
    agree("the growth document", doc, n);

    /* the same text with and without escapes: only the escaped one needs the scratch buffer,
     * so it must make more allocations through jansson's allocator (the failing one) */
    char plain[2000], escaped[2000];
    size_t pn = 0, en = 0;
    plain[pn++] = escaped[en++] = '"';
    for (int i = 0; i < 300; i++) {
        pn += (size_t)snprintf(plain + pn, sizeof plain - pn, "abc");
        en += (size_t)snprintf(escaped + en, sizeof escaped - en, "a\\tc");
    }
    plain[pn++] = escaped[en++] = '"';
    long plain_allocs = test_alloc_failure("a long plain string", plain, pn, 1);
    long escaped_allocs = test_alloc_failure("a long escaped string", escaped, en, 2);
    UNIT_CASE("the scratch buffer comes from jansson's allocator");
    CHECK(escaped_allocs > plain_allocs);
}

/* ---- scratch trees ----------------------------------------------------------------------------
 * The differential runs above parse every text with pl_json_parse_scratch too (agree_scratch).
 * Here: what the arena is for (no malloc once warm), its growth, refusals, threads, and the
 * fallback when jansson's allocator is someone else's. */

static size_t heap_in_use(void)
{
#if defined(__SANITIZE_ADDRESS__)
    return __sanitizer_get_current_allocated_bytes();
#else
    return mallinfo2().uordblks;
#endif
}

/* "[{"k":0,"v":"x"}, ...]" with n elements: a tree of about 200 bytes per element */
static char *array_doc(size_t n, const char *tail, size_t *len)
{
    size_t cap = n * 24 + 64, at = 0;
    char *doc = malloc(cap);

    if (doc == NULL)
        return NULL;
    doc[at++] = '[';
    for (size_t i = 0; i < n; i++)
        at += (size_t)snprintf(doc + at, cap - at, "%s{\"k\":%zu,\"v\":\"x\"}", i ? "," : "", i);
    at += (size_t)snprintf(doc + at, cap - at, "%s", tail);
    *len = at;
    return doc;
}

static const char small_doc[] =
    "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\",\"changes\":[{\"value\":"
    "{\"messages\":[{\"from\":\"79001234567\",\"id\":\"wamid.A\",\"text\":{\"body\":\"\\u041f\"}}]}"
    ","
    "\"field\":\"messages\"}]}]}";

static void *thread_parses(void *arg)
{
    size_t len, *bad = arg;
    char *doc = array_doc(3000, "]", &len);

    for (int i = 0; doc != NULL && i < 50; i++) {
        json_t *plain = pl_json_parse(doc, len, 0, NULL);
        json_t *got = pl_json_parse_scratch(doc, len, 0, NULL);
        if (plain == NULL || got == NULL || !same_tree(plain, got))
            (*bad)++;
        json_decref(plain);
        pl_json_scratch_release(got);
    }
    free(doc);
    return NULL;
}

/* A thread that ends holding a scratch tree past its arena's first block (no release) */
static void *thread_keeps(void *arg)
{
    size_t len;
    char *doc = array_doc(5000, "]", &len);
    json_t *v = doc != NULL ? pl_json_parse_scratch(doc, len, 0, NULL) : NULL;

    *(int *)arg = json_array_size(v) == 5000;
    free(doc);
    return NULL;
}

static void test_scratch(void)
{
    struct pl_error err = {{0}, {0}};
    size_t before, during, big_len, bad_len;
    char *big = array_doc(5000, "]", &big_len), *bad = array_doc(5000, ",]", &bad_len);
    json_t *v, *plain;

    if (big == NULL || bad == NULL) {
        UNIT_FAIL("out of memory");
        free(big);
        free(bad);
        return;
    }
    pl_json_scratch_release(pl_json_parse_scratch(small_doc, strlen(small_doc), 0, NULL));

    UNIT_CASE("scratch: a warm thread's parse takes nothing from malloc; a plain one does");
    before = heap_in_use();
    v = pl_json_parse_scratch(small_doc, strlen(small_doc), 0, &err);
    during = heap_in_use();
    CHECK(v != NULL);
    CHECK_INT(during, before);
    pl_json_scratch_release(v);
    plain = pl_json_parse(small_doc, strlen(small_doc), 0, &err);
    CHECK(heap_in_use() > before + 500);
    json_decref(plain);

    UNIT_CASE("scratch: a tree past the first block grows the arena; the release gives it back");
    before = heap_in_use();
    v = pl_json_parse_scratch(big, big_len, 0, &err);
    plain = pl_json_parse(big, big_len, 0, &err);
    CHECK(v != NULL && plain != NULL && same_tree(v, plain));
    CHECK_INT(json_array_size(v), 5000);
    json_decref(plain);
    CHECK(heap_in_use() > before + 500000);
    pl_json_scratch_release(v);
    CHECK_INT(heap_in_use(), before);
    v = pl_json_parse_scratch(small_doc, strlen(small_doc), 0, &err);
    CHECK(json_is_object(v));
    pl_json_scratch_release(v);

    UNIT_CASE("scratch: a text refused after 5000 values leaves nothing behind");
    before = heap_in_use();
    v = pl_json_parse_scratch(bad, bad_len, 0, &err);
    CHECK(v == NULL);
    CHECK_STR(err.code, "json");
    CHECK(strstr(err.msg, "at byte") != NULL);
    CHECK_INT(heap_in_use(), before);

    UNIT_CASE("scratch: threads parse in their own arenas, freed when each thread ends");
    {
        pthread_t t[2];
        size_t wrong = 0;
        int started = 0;
        before = heap_in_use();
        for (int i = 0; i < 2; i++)
            started += pthread_create(&t[i], NULL, thread_parses, &wrong) == 0;
        CHECK_INT(started, 2);
        for (int i = 0; i < started; i++)
            pthread_join(t[i], NULL);
        CHECK_INT(wrong, 0);
        CHECK(heap_in_use() < before + 16384); /* each thread's kept block is 32 KiB */
    }

    UNIT_CASE("scratch: a thread that ends holding a grown arena frees every block");
    {
        pthread_t t;
        int parsed = 0;
        before = heap_in_use();
        CHECK_INT(pthread_create(&t, NULL, thread_keeps, &parsed), 0);
        pthread_join(t, NULL);
        CHECK_INT(parsed, 1);
        CHECK(heap_in_use() < before + 16384); /* the tree took about 1 MiB in 6 blocks */
    }

    UNIT_CASE("scratch: under another allocator, a plain parse whose failures are all oom");
    {
        long n, failures = 0, wrong = 0;
        v = NULL;
        for (n = 0; n < 100000 && v == NULL; n++) {
            struct pl_error e = {{0}, {0}};
            fail_jansson_after(n);
            v = pl_json_parse_scratch(small_doc, strlen(small_doc), 0, &e);
            fail_jansson_after(-1);
            if (v == NULL) {
                failures++;
                wrong += strcmp(e.code, "oom") != 0;
            }
        }
        CHECK(v != NULL);
        CHECK(failures >= 10);
        CHECK_INT(wrong, 0);
        before = heap_in_use();
        pl_json_scratch_release(v); /* built by malloc: released by json_decref */
        CHECK(heap_in_use() < before);
    }
    free(big);
    free(bad);
}

/* ---- the corpus: fixtures and benchmark bodies ------------------------------------------------
 */

struct doc {
    char name[160];
    char *buf;
    size_t len;
};

static struct doc *docs;
static size_t ndocs, nfixtures, cap_docs;

static void add_doc(const char *name, const char *buf, size_t len)
{
    struct doc *d;

    if (ndocs == cap_docs) {
        size_t cap = cap_docs ? cap_docs * 2 : 64;
        struct doc *grown = realloc(docs, cap * sizeof *grown);
        if (grown == NULL)
            return;
        docs = grown;
        cap_docs = cap;
    }
    d = &docs[ndocs];
    d->buf = malloc(len > 0 ? len : 1);
    if (d->buf == NULL)
        return;
    memcpy(d->buf, buf, len);
    d->len = len;
    snprintf(d->name, sizeof d->name, "%s", name);
    ndocs++;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct doc *)a)->name, ((const struct doc *)b)->name);
}

/* Every *.json under dir (one level of subdirectories), sorted so the run is deterministic. */
static void load_fixtures(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[512];
    size_t len = 0, first = ndocs;

    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        char *buf;
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (n > 5 && strcmp(e->d_name + n - 5, ".json") == 0) {
            buf = read_file(path, &len);
            if (buf != NULL)
                add_doc(path, buf, len);
            free(buf);
        } else if (strchr(e->d_name, '.') == NULL && strcmp(dir, FIXTURES) == 0) {
            load_fixtures(path);
        }
    }
    closedir(d);
    qsort(docs + first, ndocs - first, sizeof *docs, by_name);
}

/* The first BENCH_MAX bodies of the benchmark file: lines "<signature>\t<body>". */
static size_t load_bench(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *line = NULL, *tab, name[64];
    size_t cap = 0, n = 0;
    ssize_t len;

    if (f == NULL)
        return 0;
    while (n < BENCH_MAX && (len = getline(&line, &cap, f)) > 0) {
        if (line[len - 1] == '\n')
            len--;
        tab = memchr(line, '\t', (size_t)len);
        if (tab == NULL)
            continue;
        snprintf(name, sizeof name, "bench body %zu", n + 1);
        add_doc(name, tab + 1, (size_t)(line + len - tab - 1));
        n++;
    }
    free(line);
    fclose(f);
    return n;
}

/* ---- mutations ------------------------------------------------------------------------------- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static uint64_t rnd(uint64_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return n ? rng_state % n : 0;
}

/* Byte sequences that sit on a rule's edge, inserted or written over the document. */
static const struct {
    const char *s;
    size_t len;
} edges[] = {
    {"\0", 1},
    {"\xC0", 1},
    {"\xED\xA0\x80", 3},
    {"\\", 1},
    {"\"", 1},
    {"\xC0\x80", 2},
    {"\xE0\x80\x80", 3},
    {"\xF4\x90\x80\x80", 4},
    {"\xF0\x9F\x98\x80", 4},
    {"\xD0\x96", 2},
    {"\x80", 1},
    {"\xFF", 1},
    {"\x7F", 1},
    {"\x1F", 1},
    {"\n", 1},
    {"\\u0000", 6},
    {"\\ud800", 6},
    {"\\udc00", 6},
    {"\\ud83d\\ude00", 12},
    {"\\u00e9", 6},
    {"\\n", 2},
    {"\\/", 2},
    {"\\x", 2},
    {"\\u12", 4},
    {"1", 1},
    {"-", 1},
    {"0", 1},
    {".", 1},
    {"e", 1},
    {"1e400", 5},
    {"1e-400", 6},
    {"-0.0", 4},
    {"9223372036854775808", 19},
    {"-9223372036854775808", 20},
    {"99999999999999999999", 20},
    {"0.1", 3},
    {" ", 1},
    {",", 1},
    {":", 1},
    {"[", 1},
    {"]", 1},
    {"{", 1},
    {"}", 1},
    {"true", 4},
    {"null", 4},
    {"\"a\":", 4},
    {"[[[[[[[[", 8},
    {"]]]]]]]]", 8},
};

#define NEDGES (sizeof edges / sizeof edges[0])

/* One mutation of d into out (room for d->len + 64 bytes); returns the new length. */
static size_t mutate(const struct doc *d, char *out, char *what, size_t what_size)
{
    size_t len = d->len, at = (size_t)rnd(len + 1), n, e;
    unsigned kind = (unsigned)rnd(8);

    memcpy(out, d->buf, len);
    switch (kind) {
    case 0: /* flip one bit */
        if (len == 0)
            return 0;
        at = (size_t)rnd(len);
        out[at] = (char)(out[at] ^ (1 << rnd(8)));
        snprintf(what, what_size, "%s: bit flipped at %zu", d->name, at);
        return len;
    case 1: /* one byte replaced by any byte */
        if (len == 0)
            return 0;
        at = (size_t)rnd(len);
        out[at] = (char)rnd(256);
        snprintf(what, what_size, "%s: byte %zu set to 0x%02X", d->name, at,
                 (unsigned char)out[at]);
        return len;
    case 2: /* a range deleted */
        n = (size_t)rnd(8) + 1;
        n = at + n > len ? len - at : n;
        memmove(out + at, out + at + n, len - at - n);
        snprintf(what, what_size, "%s: %zu bytes deleted at %zu", d->name, n, at);
        return len - n;
    case 3: /* truncated */
        snprintf(what, what_size, "%s: cut at %zu", d->name, at);
        return at;
    case 4: /* a NUL byte right after a number or a literal, where jansson drops it */
        for (n = 0; n < len; n++) {
            size_t i = (at + n) % len;
            char c = out[i];
            if ((c >= '0' && c <= '9') || c == 'e' || c == 'l') {
                at = i + 1;
                break;
            }
        }
        memmove(out + at + 1, out + at, len - at);
        out[at] = '\0';
        snprintf(what, what_size, "%s: NUL inserted at %zu", d->name, at);
        return len + 1;
    case 5: /* an edge sequence written over the document */
        e = (size_t)rnd(NEDGES);
        n = edges[e].len;
        if (at + n > len)
            at = len >= n ? len - n : 0;
        n = at + n > len ? len - at : n;
        memcpy(out + at, edges[e].s, n);
        snprintf(what, what_size, "%s: \"%s\" written at %zu", d->name,
                 excerpt(edges[e].s, edges[e].len, 0), at);
        return len;
    default: /* an edge sequence inserted (twice as likely) */
        e = (size_t)rnd(NEDGES);
        n = edges[e].len;
        memmove(out + at + n, out + at, len - at);
        memcpy(out + at, edges[e].s, n);
        snprintf(what, what_size, "%s: \"%s\" inserted at %zu", d->name,
                 excerpt(edges[e].s, edges[e].len, 0), at);
        return len + n;
    }
}

/* ---- the differential run -------------------------------------------------------------------- */

#define MUTATIONS_PER_FIXTURE 300
#define MUTATIONS_PER_BODY    3
#define TRUNCATED_FIXTURES    3 /* cut at every byte: the first few fixtures and bench body 1 */

static void truncations(const struct doc *d)
{
    char what[512];
    size_t at;

    for (at = 0; at <= d->len; at++) {
        snprintf(what, sizeof what, "%s: cut at %zu", d->name, at);
        agree(what, d->buf, at);
    }
}

/* d wrapped in n arrays: where the limit falls depends on d's own depth. */
static void wrapped(const struct doc *d, size_t n)
{
    char what[512], *buf = malloc(d->len + 2 * n);

    if (buf == NULL)
        return;
    memset(buf, '[', n);
    memcpy(buf + n, d->buf, d->len);
    memset(buf + n + d->len, ']', n);
    snprintf(what, sizeof what, "%s: in %zu arrays", d->name, n);
    agree(what, buf, d->len + 2 * n);
    free(buf);
}

static void test_differential(void)
{
    const char *bench = getenv("PL_BENCH_WEBHOOKS");
    char what[512], *out;
    size_t i, k, len, nbench, truncated = 0, runs_before, rejected_before;

    load_fixtures(FIXTURES);
    nfixtures = ndocs;
    nbench = load_bench(bench != NULL ? bench : BENCH);
    printf("differential corpus: %zu fixtures, %zu benchmark bodies%s\n", nfixtures, nbench,
           nbench == 0 ? " (no " BENCH ": skipped)" : "");

    UNIT_CASE("differential: the corpus as it is");
    CHECK(nfixtures >= 20);
    for (i = 0; i < ndocs; i++)
        agree(docs[i].name, docs[i].buf, docs[i].len);

    UNIT_CASE("differential: every truncation");
    for (i = 0; i < ndocs && truncated < TRUNCATED_FIXTURES; i++) {
        if (strstr(docs[i].name, "/templates/") != NULL)
            continue;
        truncations(&docs[i]);
        truncated++;
    }
    if (nbench > 0)
        truncations(&docs[nfixtures]);

    UNIT_CASE("differential: mutations");
    runs_before = diff_runs;
    rejected_before = diff_rejected;
    for (i = 0; i < ndocs; i++) {
        const struct doc *d = &docs[i];
        size_t count = i < nfixtures ? MUTATIONS_PER_FIXTURE : MUTATIONS_PER_BODY;
        out = malloc(d->len + 64);
        if (out == NULL)
            continue;
        for (k = 0; k < count; k++) {
            len = mutate(d, out, what, sizeof what);
            agree(what, out, len);
        }
        free(out);
    }
    printf("differential mutations: %zu runs, %zu refused by both\n", diff_runs - runs_before,
           diff_rejected - rejected_before);

    UNIT_CASE("differential: fixtures at the nesting limit");
    for (i = 0; i < nfixtures; i++)
        for (k = DEPTH - 12; k <= DEPTH; k++)
            wrapped(&docs[i], k);

    for (i = 0; i < ndocs; i++)
        free(docs[i].buf);
    free(docs);
}

int main(void)
{
    size_t len = 0;
    char *body = read_file(FIXTURES "/batch.json", &len);

    test_valid();
    test_invalid();
    test_values();
    test_long_tokens();
    test_depth();
    if (body != NULL)
        test_alloc_failure("allocation failure at every step of batch.json", body, len, 10);
    free(body);
    test_alloc_failure_growth();
    test_scratch();
    test_differential();
    printf("json: %zu trees dumped by both writers\n", dumps);
    return unit_report("json");
}
