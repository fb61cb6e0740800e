/* utf8.h - UTF-8 validation, decoding and counting. WhatsApp counts characters as Unicode code
 * points, so every length rule goes through here. Pure; no allocation. */
#ifndef PL_UTF8_H
#define PL_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Decode one code point from s[0..len). Returns the number of bytes used (1-4) and stores the
 * code point in *cp, or 0 for an invalid sequence (overlong forms, surrogates, > U+10FFFF,
 * truncated sequences are all invalid). */
size_t pl_utf8_decode(const char *s, size_t len, uint32_t *cp);

/* 1 when s[0..len) is entirely valid UTF-8, else 0. When invalid and bad_at is not NULL, the
 * byte offset of the first bad sequence is stored there. */
int pl_utf8_valid(const char *s, size_t len, size_t *bad_at);

/* Number of code points in the NUL-terminated s, or -1 when it is not valid UTF-8. */
long pl_utf8_length(const char *s);

/* 1 when s is empty or holds only whitespace (ASCII space/tab/CR/LF/VT/FF, U+00A0, U+1680,
 * U+2000-U+200B, U+2028, U+2029, U+202F, U+205F, U+3000, U+FEFF), else 0. Invalid UTF-8 is not
 * blank. */
int pl_utf8_is_blank(const char *s);

/* Encode cp into out (at least 4 bytes). Returns the bytes written, 0 for an invalid cp. */
size_t pl_utf8_encode(uint32_t cp, char *out);

#endif
