/* http.h - the HTTP server (libmicrohttpd): the webhook endpoint with its verification handshake,
 * signature check and body limit (events are stored before the 200); the trigger endpoint; /healthz
 * and /metrics. */
#ifndef PL_HTTP_H
#define PL_HTTP_H

#include "error.h"

struct pl_engine;
struct pl_ingest;
struct pl_http;

#define PL_HTTP_BODY_MAX (3 * 1024 * 1024) /* Meta's largest webhook payload */

struct pl_http_opts {
    const char *host; /* numeric address or "localhost" */
    int port;
    const char *app_secret;    /* signs POST /webhook */
    const char *verify_token;  /* GET /webhook handshake */
    const char *trigger_token; /* bearer token of POST /channels/{id}/trigger; NULL disables */
    struct pl_engine *engine;  /* borrowed */
    struct pl_ingest *ingest;  /* borrowed: stores webhook events before the 200 */
};

/* Start serving (a thread per connection). The strings in opts are borrowed and must outlive
 * the server. Returns NULL with err when the address cannot be bound. */
struct pl_http *pl_http_start(const struct pl_http_opts *opts, struct pl_error *err);

/* The port actually bound (useful with port 0). */
int pl_http_port(const struct pl_http *h);

/* Stop accepting, finish the requests in progress, free. */
void pl_http_stop(struct pl_http *h);

#endif
