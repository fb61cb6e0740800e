/* signature.c - X-Hub-Signature-256: HMAC-SHA256 of the webhook body under the app secret, checked
 * in constant time, first over the raw bytes, then over Meta's \u-escaped form of the body.
 * Pure: no I/O, no logging; the expected digest never leaves this file. */
#include "signature.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

#define DIGEST_LEN 32
#define PREFIX     "sha256="
#define PREFIX_LEN (sizeof PREFIX - 1)

static const char hex_digits[] = "0123456789abcdef";

static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

/* Fetched once: OpenSSL's one-call HMAC() looks the algorithm up again on every call, which
 * costs more than hashing a webhook. */
static void fetch_sha256(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static int digest(EVP_MD_CTX *c, const unsigned char *a, size_t alen, const void *b, size_t blen,
                  unsigned char out[DIGEST_LEN])
{
    return EVP_DigestInit_ex(c, sha256_md, NULL) == 1 && EVP_DigestUpdate(c, a, alen) == 1 &&
                   (blen == 0 || EVP_DigestUpdate(c, b, blen) == 1) &&
                   EVP_DigestFinal_ex(c, out, NULL) == 1
               ? 0
               : -1;
}

/* HMAC-SHA256 (RFC 2104) of data[0..len) under secret into out. Returns 0, -1 when OpenSSL
 * fails. */
static int hmac_sha256(const char *secret, const char *data, size_t len,
                       unsigned char out[DIGEST_LEN])
{
    enum { BLOCK = 64 };
    unsigned char key[BLOCK] = {0}, pad[BLOCK], inner[DIGEST_LEN];
    size_t klen = strlen(secret);
    EVP_MD_CTX *c;
    int rc = -1;

    pthread_once(&sha256_once, fetch_sha256);
    if (sha256_md == NULL || (c = EVP_MD_CTX_new()) == NULL)
        return -1;
    if (klen > BLOCK) { /* a long key is replaced by its digest */
        if (digest(c, (const unsigned char *)secret, klen, NULL, 0, key) != 0)
            goto done;
    } else {
        memcpy(key, secret, klen);
    }
    for (int i = 0; i < BLOCK; i++)
        pad[i] = key[i] ^ 0x36;
    if (digest(c, pad, BLOCK, data, len, inner) != 0)
        goto done;
    for (int i = 0; i < BLOCK; i++)
        pad[i] = key[i] ^ 0x5c;
    rc = digest(c, pad, BLOCK, inner, DIGEST_LEN, out);
done:
    OPENSSL_cleanse(key, sizeof key);
    OPENSSL_cleanse(pad, sizeof pad);
    OPENSSL_cleanse(inner, sizeof inner);
    EVP_MD_CTX_free(c);
    return rc;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decode "sha256=" + 64 hex digits (either case) into out. Returns 0, -1 when malformed. */
static int parse_header(const char *header, unsigned char out[DIGEST_LEN])
{
    size_t i;

    if (strncmp(header, PREFIX, PREFIX_LEN) != 0)
        return -1;
    header += PREFIX_LEN;
    for (i = 0; i < DIGEST_LEN; i++) {
        int hi, lo;
        if (header[2 * i] == '\0' || header[2 * i + 1] == '\0')
            return -1;
        hi = hex_value(header[2 * i]);
        lo = hex_value(header[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return header[2 * DIGEST_LEN] == '\0' ? 0 : -1;
}

static int has_high_byte(const char *body, size_t len)
{
    size_t i;
    for (i = 0; i < len; i++)
        if ((unsigned char)body[i] >= 0x80)
            return 1;
    return 0;
}

static char *put_u16(char *p, uint32_t unit)
{
    *p++ = '\\';
    *p++ = 'u';
    *p++ = hex_digits[(unit >> 12) & 0xF];
    *p++ = hex_digits[(unit >> 8) & 0xF];
    *p++ = hex_digits[(unit >> 4) & 0xF];
    *p++ = hex_digits[unit & 0xF];
    return p;
}

/* The body with every non-ASCII code point written as lowercase \uXXXX (a surrogate pair above
 * U+FFFF). Returns a malloc'd copy with its length in *out_len, or NULL when the body is not
 * valid UTF-8 or memory ran out. Each multi-byte sequence grows at most 3x (2 bytes -> 6,
 * 4 bytes -> 12), so 3 * len bounds the result. */
static char *escape_unicode(const char *body, size_t len, size_t *out_len)
{
    char *buf, *p;
    size_t i = 0, n;
    uint32_t cp;

    if (len > SIZE_MAX / 3)
        return NULL;
    buf = malloc(len * 3 + 1);
    if (buf == NULL)
        return NULL;
    p = buf;
    while (i < len) {
        n = pl_utf8_decode(body + i, len - i, &cp);
        if (n == 0) {
            free(buf);
            return NULL;
        }
        if (cp < 0x80) {
            *p++ = (char)cp;
        } else if (cp <= 0xFFFF) {
            p = put_u16(p, cp);
        } else {
            cp -= 0x10000;
            p = put_u16(p, 0xD800 | (cp >> 10));
            p = put_u16(p, 0xDC00 | (cp & 0x3FF));
        }
        i += n;
    }
    *out_len = (size_t)(p - buf);
    return buf;
}

/* 1 when HMAC(data) equals want, compared in constant time. */
static int digest_matches(const char *secret, const char *data, size_t len,
                          const unsigned char want[DIGEST_LEN])
{
    unsigned char got[DIGEST_LEN];
    int ok;

    if (hmac_sha256(secret, data, len, got) != 0)
        return 0;
    ok = CRYPTO_memcmp(got, want, DIGEST_LEN) == 0;
    OPENSSL_cleanse(got, sizeof got);
    return ok;
}

enum pl_sig_result pl_signature_verify(const char *secret, const char *body, size_t len,
                                       const char *header)
{
    unsigned char want[DIGEST_LEN];
    enum pl_sig_result r = PL_SIG_MISMATCH;
    char *escaped;
    size_t escaped_len;

    if (header == NULL)
        return PL_SIG_MISSING;
    if (parse_header(header, want) != 0)
        return PL_SIG_MALFORMED;
    if (secret == NULL || (body == NULL && len > 0))
        return PL_SIG_MISMATCH;
    if (digest_matches(secret, body, len, want))
        return PL_SIG_OK;
    if (!has_high_byte(body, len))
        return PL_SIG_MISMATCH;
    escaped = escape_unicode(body, len, &escaped_len);
    if (escaped != NULL) {
        if (digest_matches(secret, escaped, escaped_len, want))
            r = PL_SIG_OK;
        free(escaped);
    }
    return r;
}

void pl_signature_sign(const char *secret, const char *body, size_t len, char *out)
{
    unsigned char digest[DIGEST_LEN];
    size_t i;
    char *p = out;

    if (body == NULL)
        len = 0;
    if (hmac_sha256(secret != NULL ? secret : "", body, len, digest) != 0)
        memset(digest, 0, sizeof digest);
    memcpy(p, PREFIX, PREFIX_LEN);
    p += PREFIX_LEN;
    for (i = 0; i < DIGEST_LEN; i++) {
        *p++ = hex_digits[digest[i] >> 4];
        *p++ = hex_digits[digest[i] & 0xF];
    }
    *p = '\0';
}

const char *pl_signature_result_name(enum pl_sig_result r)
{
    switch (r) {
    case PL_SIG_OK:
        return "ok";
    case PL_SIG_MISSING:
        return "missing";
    case PL_SIG_MALFORMED:
        return "malformed";
    case PL_SIG_MISMATCH:
        return "mismatch";
    }
    return "unknown";
}
