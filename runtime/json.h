/* json.h - a strict JSON parser (RFC 8259) that builds jansson trees, for the webhook's hot path.
 * It accepts exactly what json_loadb(buf, len, JSON_DECODE_ANY [| JSON_ALLOW_NUL]) of jansson 2.14
 * accepts and builds an identical tree, several times faster. And the other way: a writer whose
 * output is byte for byte jansson's compact dump, without its per-token callbacks. No I/O; the
 * only state is each thread's scratch arena (pl_json_parse_scratch). */
#ifndef PL_JSON_H
#define PL_JSON_H

#include <jansson.h>
#include <stddef.h>

#include "error.h"

/* Nesting limit, counted as jansson counts it: the top-level value is at depth 1, and no value
 * may sit deeper than this (so 2048 nested empty arrays parse, 2048 around a scalar do not). */
#define PL_JSON_MAX_DEPTH 2048

/* Flags for pl_json_parse. */
#define PL_JSON_ALLOW_NUL                                                 \
    0x1u /* \u0000 allowed in string values (as JSON_ALLOW_NUL); never in \
            object keys, which jansson cannot hold */

/* Parse buf[0..len) as one JSON value of any type (callers check the type they want), with
 * nothing but whitespace after it. Returns a new reference, or NULL with err->code "json" and a
 * message that names the fault and its byte offset ("invalid escape at byte 17"), or err->code
 * "oom" when memory ran out. buf need not be NUL-terminated. */
json_t *pl_json_parse(const char *buf, size_t len, unsigned flags, struct pl_error *err);

/* pl_json_parse for a tree that is read and then dropped before the thread parses the next one
 * (a webhook's body, a provider's answer). Its values come from the calling thread's arena: a
 * bump pointer instead of a malloc and a free for each of the tree's hundred-odd values. The
 * tree is read-only (a value set into it would not be freed). Release it with
 * pl_json_scratch_release, never json_decref, and keep nothing of it: copy what must outlive the
 * release (json_deep_copy, strdup), never json_incref. One scratch tree per thread at a time.
 * The release keeps the arena's first 32 KiB for the next parse and frees the rest. When
 * jansson's allocator has been replaced (the tests' failing one), this is plain pl_json_parse
 * and the release a json_decref. */
json_t *pl_json_parse_scratch(const char *buf, size_t len, unsigned flags, struct pl_error *err);

/* Make jansson allocate through the arenas' functions (malloc and free whenever no scratch
 * parse runs on the calling thread). Call it once before starting threads: jansson's allocator
 * is a plain global. pl_json_parse_scratch calls it too, for single-threaded users (tests). */
void pl_json_scratch_init(void);

/* Drop a tree from pl_json_parse_scratch (NULL is fine): its thread's arena starts over. */
void pl_json_scratch_release(json_t *root);

/* A growing, NUL-terminated buffer that JSON text is written into. Start it zeroed; after a
 * failed allocation oom is set and every later write does nothing. The caller frees buf. */
struct pl_jw {
    char *buf;
    size_t len, cap;
    int comma; /* free for the caller: the next value or key needs a ',' before it */
    int oom;
};

/* Append s[0..n) as it is. */
void pl_jw_raw(struct pl_jw *w, const char *s, size_t n);

/* Append s[0..n) as a JSON string, escaped as jansson escapes: '"', '\', and control characters
 * (\b \f \n \r \t, the others and NUL as \u00XX); other bytes as they are. */
void pl_jw_quoted(struct pl_jw *w, const char *s, size_t n);

/* v as json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) writes it, byte for byte (objects in their
 * insertion order), for every tree pl_json_parse builds: valid UTF-8 and no cycles (jansson
 * refuses the others; this writer copies bytes as they are and must not be given a cycle).
 * A malloc'd string, or NULL when memory ran out. */
char *pl_json_dump(const json_t *v);

#endif
