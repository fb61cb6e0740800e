/* signature.h - X-Hub-Signature-256 verification: HMAC-SHA256 of the raw body with the app
 * secret, compared in constant time, with Meta's escaped-unicode fallback. Pure. */
#ifndef PL_SIGNATURE_H
#define PL_SIGNATURE_H

#include <stddef.h>

enum pl_sig_result {
    PL_SIG_OK = 0,
    PL_SIG_MISSING,   /* no header */
    PL_SIG_MALFORMED, /* not "sha256=" followed by 64 hex digits */
    PL_SIG_MISMATCH   /* well-formed but wrong */
};

/* Verify header (the X-Hub-Signature-256 value, may be NULL) for body[0..len) under secret.
 * First over the exact raw bytes; on mismatch, when the body has bytes >= 0x80, again over the
 * body with every non-ASCII code point written as lowercase \uXXXX (UTF-16 surrogate pairs above
 * U+FFFF), as Meta signs it. Hex digits of the header are accepted in either case. */
enum pl_sig_result pl_signature_verify(const char *secret, const char *body, size_t len,
                                       const char *header);

/* Write "sha256=<64 lowercase hex>" for body under secret into out (at least 72 bytes).
 * Used by `parley post`, the tests and the benchmark. */
void pl_signature_sign(const char *secret, const char *body, size_t len, char *out);

/* Short text for a result, for logs: "ok", "missing", "malformed", "mismatch". */
const char *pl_signature_result_name(enum pl_sig_result r);

#endif
