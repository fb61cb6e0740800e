/* test_signature.c - X-Hub-Signature-256: known HMAC vectors (from `openssl dgst -sha256 -hmac`),
 * header parsing, mismatches and Meta's escaped-unicode fallback, each as one row of a table. */
#include <string.h>

#include "signature.h"
#include "unit.h"

#define ENVELOPE     "{\"object\":\"whatsapp_business_account\",\"entry\":[]}"
#define ENVELOPE_SIG "sha256=56a21e195072d3c07ec2bbf608e0dfeaf322e1917ec30f0cb399c2a43588216e"
#define HEX64        "56a21e195072d3c07ec2bbf608e0dfeaf322e1917ec30f0cb399c2a43588216e"

#define K64 "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
#define K131                                                           \
    "\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa" \
    "\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa" \
    "\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa" \
    "\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa" \
    "\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa" \
    "\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa" \
    "\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa" \
    "\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa" \
    "\xaa\xaa\xaa"

/* pl_signature_sign against digests computed by openssl(1) / Python's hmac. */
static const struct sign_case {
    const char *name, *secret, *body, *want;
} sign_cases[] = {
    {"envelope under 'secret'", "secret", ENVELOPE, ENVELOPE_SIG},
    {"empty secret", "", "hello",
     "sha256=4352b26e33fe0d769a8922a6ba29004109f01688e26acc9e6cb347e5a5afc4da"},
    {"empty body", "key", "",
     "sha256=5d5d139563c95b5967b9bd9a8c9b233a9dedb45072794cd232dc1b74832607d0"},
    {"escaped form of a unicode body", "app-secret",
     "{\"text\":\"\\u00e4\\u00f6\\u00e5 \\u043f\\u0440\\u0438\\u0432\\u0435\\u0442 "
     "\\ud83d\\ude00\"}",
     "sha256=6b48182839572f372fb69808126d360fc4573efde4db33a7a358a885f8c110de"},
    /* RFC 4231 test cases 2 and 6 (a key longer than the block is hashed first), and keys at
     * and just past SHA-256's 64-byte block */
    {"RFC 4231 case 2", "Jefe", "what do ya want for nothing?",
     "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
    {"RFC 4231 case 6: 131-byte key", K131,
     "Test Using Larger Than Block-Size Key - Hash Key First",
     "sha256=60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
    {"64-byte key", K64, "block",
     "sha256=1b7ee2f78bbad5f9d29e0b4e5f639ae046d13e1763f1ebc7a439089c128f294a"},
    {"65-byte key", K64 "k", "block",
     "sha256=205da1093ea96b1859b451191f3a71c6c93ec675f0872d8018cedab033bc8986"},
};

/* The header is `header` as given, or (when sign_body is set) pl_signature_sign(sign_secret,
 * sign_body). The body is `body`, with `len` bytes when len > 0 (else strlen). */
static const struct verify_case {
    const char *name, *secret, *body;
    size_t len;
    const char *header, *sign_secret, *sign_body;
    enum pl_sig_result want;
} verify_cases[] = {
    /* the raw path */
    {"known vector", "secret", ENVELOPE, 0, ENVELOPE_SIG, NULL, NULL, PL_SIG_OK},
    {"upper-case hex accepted", "secret", ENVELOPE, 0,
     "sha256=56A21E195072D3C07EC2BBF608E0DFEAF322E1917EC30F0CB399C2A43588216E", NULL, NULL,
     PL_SIG_OK},
    {"mixed-case hex accepted", "secret", ENVELOPE, 0,
     "sha256=56A21e195072d3c07ec2bbf608e0dfeaf322e1917ec30f0cb399c2a43588216E", NULL, NULL,
     PL_SIG_OK},
    {"sign then verify round trip", "s3cr3t", "{\"a\":1}", 0, NULL, "s3cr3t", "{\"a\":1}",
     PL_SIG_OK},
    {"body with a NUL byte", "k", "a\0b", 3, NULL, "k", NULL, PL_SIG_OK},
    /* missing and malformed */
    {"no header", "secret", ENVELOPE, 0, NULL, NULL, NULL, PL_SIG_MISSING},
    {"empty header", "secret", ENVELOPE, 0, "", NULL, NULL, PL_SIG_MALFORMED},
    {"prefix only", "secret", ENVELOPE, 0, "sha256=", NULL, NULL, PL_SIG_MALFORMED},
    {"no prefix", "secret", ENVELOPE, 0, HEX64, NULL, NULL, PL_SIG_MALFORMED},
    {"sha1 prefix", "secret", ENVELOPE, 0, "sha1=" HEX64, NULL, NULL, PL_SIG_MALFORMED},
    {"upper-case prefix", "secret", ENVELOPE, 0, "SHA256=" HEX64, NULL, NULL, PL_SIG_MALFORMED},
    {"space after prefix", "secret", ENVELOPE, 0, "sha256= " HEX64, NULL, NULL, PL_SIG_MALFORMED},
    {"63 hex digits", "secret", ENVELOPE, 0,
     "sha256=56a21e195072d3c07ec2bbf608e0dfeaf322e1917ec30f0cb399c2a43588216", NULL, NULL,
     PL_SIG_MALFORMED},
    {"65 hex digits", "secret", ENVELOPE, 0, ENVELOPE_SIG "0", NULL, NULL, PL_SIG_MALFORMED},
    {"trailing space", "secret", ENVELOPE, 0, ENVELOPE_SIG " ", NULL, NULL, PL_SIG_MALFORMED},
    {"non-hex digit", "secret", ENVELOPE, 0,
     "sha256=56a21e195072d3c07ec2bbf608e0dfeaf322e1917ec30f0cb399c2a43588216g", NULL, NULL,
     PL_SIG_MALFORMED},
    /* mismatches */
    {"one body byte changed", "secret", "{\"object\":\"whatsapp_business_account\",\"entry\":[1]}",
     0, ENVELOPE_SIG, NULL, NULL, PL_SIG_MISMATCH},
    {"wrong secret", "Secret", ENVELOPE, 0, ENVELOPE_SIG, NULL, NULL, PL_SIG_MISMATCH},
    {"all-zero digest", "secret", ENVELOPE, 0,
     "sha256=0000000000000000000000000000000000000000000000000000000000000000", NULL, NULL,
     PL_SIG_MISMATCH},
    {"ascii body gets no fallback", "k", "{\"t\":\"a\"}", 0, NULL, "k", "{\"t\":\"b\"}",
     PL_SIG_MISMATCH},
    /* Meta's escaped-unicode fallback */
    {"raw unicode body, signature over escaped form (vector)", "app-secret",
     "{\"text\":\"äöå привет 😀\"}", 0,
     "sha256=6b48182839572f372fb69808126d360fc4573efde4db33a7a358a885f8c110de", NULL, NULL,
     PL_SIG_OK},
    {"äöå signed escaped", "app-secret", "{\"text\":\"äöå\"}", 0,
     "sha256=62c490745b5f5e3a471fde54d033bda9985dd647e635d9bb93e5cc4b9d822cfd", NULL, NULL,
     PL_SIG_OK},
    {"äöå signed raw", "app-secret", "{\"text\":\"äöå\"}", 0,
     "sha256=ab5bb0cb2d6b871d692902b8f1fda0d58375be8a84831234ecf8cc9112310fde", NULL, NULL,
     PL_SIG_OK},
    {"cyrillic signed escaped", "app-secret", "{\"text\":\"Привет, мир\"}", 0,
     "sha256=11ceb8459bd4558c6c4b4fac48314927250c3d3ce5fb35a66526ce8e40581ddd", NULL, NULL,
     PL_SIG_OK},
    {"cyrillic signed raw", "app-secret", "{\"text\":\"Привет, мир\"}", 0,
     "sha256=7dd1336ff48873547098f8634f925a9ed727ef69742250fbeeeec3221813c7c8", NULL, NULL,
     PL_SIG_OK},
    {"emoji signed escaped (surrogate pair)", "app-secret", "{\"e\":\"😀\"}", 0,
     "sha256=e9da82dd9127491b7bb4ed323f6e8a082c3cb7bbcf3f57f8bc47c9986501e203", NULL, NULL,
     PL_SIG_OK},
    {"emoji signed raw", "app-secret", "{\"e\":\"😀\"}", 0,
     "sha256=31441e2a19d0c06805708898d11171f1b19e62989d1eb9e92681a7c0a49dfa00", NULL, NULL,
     PL_SIG_OK},
    {"cjk signed escaped", "app-secret", "{\"cjk\":\"你好\"}", 0,
     "sha256=f35e82834c0eee55e04acd872493954a429b3f8546a76c0e5c9d0581ad7aafa0", NULL, NULL,
     PL_SIG_OK},
    {"escaped form uses lower-case hex only", "app-secret", "{\"text\":\"äöå\"}", 0, NULL,
     "app-secret", "{\"text\":\"\\u00E4\\u00F6\\u00E5\"}", PL_SIG_MISMATCH},
    {"unicode body, wrong secret", "other", "{\"text\":\"äöå\"}", 0,
     "sha256=62c490745b5f5e3a471fde54d033bda9985dd647e635d9bb93e5cc4b9d822cfd", NULL, NULL,
     PL_SIG_MISMATCH},
    {"invalid utf-8 signed over garbage", "k", "{\"t\":\"\xff\xfe\"}", 0, NULL, "k", "garbage",
     PL_SIG_MISMATCH},
    {"invalid utf-8 signed over raw bytes", "k", "{\"t\":\"\xc3\"}", 0, NULL, "k",
     "{\"t\":\"\xc3\"}", PL_SIG_OK},
    {"surrogate code point in body (invalid utf-8)", "k", "{\"t\":\"\xed\xa0\x80\"}", 0, NULL, "k",
     "{\"t\":\"\\ud800\"}", PL_SIG_MISMATCH},
};

static void test_sign(void)
{
    size_t i;
    char out[72];

    for (i = 0; i < sizeof sign_cases / sizeof sign_cases[0]; i++) {
        const struct sign_case *c = &sign_cases[i];
        UNIT_CASE(c->name);
        memset(out, 'x', sizeof out);
        pl_signature_sign(c->secret, c->body, strlen(c->body), out);
        CHECK_STR(out, c->want);
        CHECK_INT(strlen(out), 71);
    }
}

static void test_verify(void)
{
    size_t i;
    char signed_header[72];

    for (i = 0; i < sizeof verify_cases / sizeof verify_cases[0]; i++) {
        const struct verify_case *c = &verify_cases[i];
        size_t len = c->len > 0 ? c->len : strlen(c->body);
        const char *header = c->header;
        enum pl_sig_result got;

        UNIT_CASE(c->name);
        if (c->sign_secret != NULL) {
            const char *sb = c->sign_body != NULL ? c->sign_body : c->body;
            size_t sl = c->sign_body != NULL ? strlen(c->sign_body) : len;
            pl_signature_sign(c->sign_secret, sb, sl, signed_header);
            header = signed_header;
        }
        got = pl_signature_verify(c->secret, c->body, len, header);
        CHECK_STR(pl_signature_result_name(got), pl_signature_result_name(c->want));
    }
}

static void test_names(void)
{
    UNIT_CASE("result names");
    CHECK_STR(pl_signature_result_name(PL_SIG_OK), "ok");
    CHECK_STR(pl_signature_result_name(PL_SIG_MISSING), "missing");
    CHECK_STR(pl_signature_result_name(PL_SIG_MALFORMED), "malformed");
    CHECK_STR(pl_signature_result_name(PL_SIG_MISMATCH), "mismatch");
}

static void test_edges(void)
{
    UNIT_CASE("NULL secret never verifies");
    CHECK_INT(pl_signature_verify(NULL, ENVELOPE, strlen(ENVELOPE), ENVELOPE_SIG), PL_SIG_MISMATCH);
    UNIT_CASE("missing header is reported before a NULL secret");
    CHECK_INT(pl_signature_verify(NULL, ENVELOPE, strlen(ENVELOPE), NULL), PL_SIG_MISSING);
    UNIT_CASE("prefix of the body only is a mismatch");
    CHECK_INT(pl_signature_verify("secret", ENVELOPE, strlen(ENVELOPE) - 1, ENVELOPE_SIG),
              PL_SIG_MISMATCH);
}

int main(void)
{
    test_sign();
    test_verify();
    test_names();
    test_edges();
    return unit_report("signature");
}
