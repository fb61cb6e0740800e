/* utf8.c - UTF-8 decoding by the rules of RFC 3629: no overlong forms, no surrogates, nothing
 * above U+10FFFF. Everything that counts characters for a WhatsApp limit calls this. */
#include "utf8.h"

#include <string.h>

size_t pl_utf8_decode(const char *str, size_t len, uint32_t *cp)
{
    const unsigned char *s = (const unsigned char *)str;
    uint32_t c, min;
    size_t n, i;

    if (len == 0)
        return 0;
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if ((s[0] & 0xE0) == 0xC0) {
        n = 2, c = s[0] & 0x1F, min = 0x80;
    } else if ((s[0] & 0xF0) == 0xE0) {
        n = 3, c = s[0] & 0x0F, min = 0x800;
    } else if ((s[0] & 0xF8) == 0xF0) {
        n = 4, c = s[0] & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (len < n)
        return 0;
    for (i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return n;
}

/* The length of the valid sequence that starts s (len > 0 bytes), or 0. ASCII and the two-byte
 * sequences (Latin with accents, Cyrillic, Greek, Hebrew, Arabic: most of what our users' customers
 * write) are told apart without a call; exactly pl_utf8_decode's verdict: a lead byte C2-DF
 * followed by a continuation byte is U+0080..U+07FF, never overlong or a surrogate. */
static inline size_t sequence(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    uint32_t cp;

    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xC2 && s[0] <= 0xDF && len >= 2 && (s[1] & 0xC0) == 0x80)
        return 2;
    return pl_utf8_decode(str, len, &cp);
}

int pl_utf8_valid(const char *s, size_t len, size_t *bad_at)
{
    size_t i = 0, n;

    while (i < len) {
        n = sequence(s + i, len - i);
        if (n == 0) {
            if (bad_at != NULL)
                *bad_at = i;
            return 0;
        }
        i += n;
    }
    return 1;
}

long pl_utf8_length(const char *s)
{
    size_t len = strlen(s), i = 0, n;
    long count = 0;

    while (i < len) {
        n = sequence(s + i, len - i);
        if (n == 0)
            return -1;
        i += n;
        count++;
    }
    return count;
}

static int is_space(uint32_t cp)
{
    return cp == ' ' || (cp >= 0x09 && cp <= 0x0D) || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200B) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
           cp == 0x205F || cp == 0x3000 || cp == 0xFEFF;
}

int pl_utf8_is_blank(const char *s)
{
    size_t len = strlen(s), i = 0, n;
    uint32_t cp;

    while (i < len) {
        n = pl_utf8_decode(s + i, len - i, &cp);
        if (n == 0 || !is_space(cp))
            return 0;
        i += n;
    }
    return 1;
}

size_t pl_utf8_encode(uint32_t cp, char *out)
{
    unsigned char *o = (unsigned char *)out;

    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp >= 0xD800 && cp <= 0xDFFF)
        return 0;
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    if (cp > 0x10FFFF)
        return 0;
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}
