/* fakeprovider.c - a fast local stand-in for Meta's Cloud API, for the benchmark.
 *
 *   fakeprovider [PORT [THREADS]]     PORT 0 (default) lets the OS pick; THREADS default 1
 *
 * Listens on 127.0.0.1 only and prints "port=<n>" on stdout once it is ready.
 *
 *   POST /<version>/<phone_number_id>/messages   200 with Meta's success envelope
 *        {"messaging_product":"whatsapp","contacts":[{"input":TO,"wa_id":TO}],
 *         "messages":[{"id":"wamid.BENCH<n>"}]}
 *        (401 with Meta's error envelope when there is no "Authorization: Bearer ..." header)
 *   GET  /count    the number of messages accepted, as text
 *   GET  /stats    "count=<n> first_ns=<t> last_ns=<t>": CLOCK_REALTIME of the first and the
 *                  last accepted message, so the caller can compute a delivery rate
 *   POST /reset    zero the count and the times (after a warm-up)
 *
 * It prints nothing per request. SIGINT or SIGTERM stops it. */
#define _GNU_SOURCE
#include <microhttpd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BODY_MAX (64 * 1024) /* what we keep of a request body: enough to find "to" */
#define TO_MAX   64

static atomic_ullong count;
static atomic_ullong first_ns;
static atomic_ullong last_ns;
static atomic_ullong unauthorized;

struct req {
    char *body;
    size_t len;
};

static unsigned long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (unsigned long long)ts.tv_sec * 1000000000ULL + (unsigned long long)ts.tv_nsec;
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *type,
                             const char *body, size_t len)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result rc;

    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

/* The value of the top-level "to" (or "recipient") of a Cloud API send, copied into out when it
 * is a plain id (digits, letters, '.', '+', '_', '-'); "" otherwise. Not a JSON parser: Parley's
 * bodies are compact JSON whose first such key is the recipient. */
static void find_to(const char *body, size_t len, char *out, size_t cap)
{
    static const char *const keys[] = {"\"to\"", "\"recipient\""};

    out[0] = '\0';
    for (size_t k = 0; k < 2; k++) {
        const char *p = memmem(body, len, keys[k], strlen(keys[k]));
        const char *end = body + len;
        size_t n = 0;

        if (p == NULL)
            continue;
        p += strlen(keys[k]);
        while (p < end && (*p == ' ' || *p == ':'))
            p++;
        if (p >= end || *p != '"')
            continue;
        p++;
        while (p < end && *p != '"' && n + 1 < cap) {
            char ch = *p++;
            if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
                  (ch >= 'A' && ch <= 'Z') || ch == '.' || ch == '+' || ch == '_' || ch == '-')) {
                n = 0;
                break;
            }
            out[n++] = ch;
        }
        out[n] = '\0';
        return;
    }
}

/* /<version>/<phone_number_id>/messages */
static int is_messages_path(const char *url)
{
    int slashes = 0;
    const char *last = NULL;

    for (const char *p = url; *p != '\0'; p++)
        if (*p == '/') {
            slashes++;
            last = p;
        }
    return slashes == 3 && last != NULL && strcmp(last, "/messages") == 0 && url[1] != '/' &&
           last[-1] != '/';
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct req *rq = *con_cls;
    char buf[512], to[TO_MAX];
    int n;

    (void)cls;
    (void)version;
    if (strcmp(method, "GET") == 0) {
        if (strcmp(url, "/count") == 0) {
            n = snprintf(buf, sizeof buf, "%llu\n", (unsigned long long)atomic_load(&count));
            return reply(c, MHD_HTTP_OK, "text/plain", buf, (size_t)n);
        }
        if (strcmp(url, "/stats") == 0) {
            n = snprintf(
                buf, sizeof buf, "count=%llu first_ns=%llu last_ns=%llu unauthorized=%llu\n",
                (unsigned long long)atomic_load(&count), (unsigned long long)atomic_load(&first_ns),
                (unsigned long long)atomic_load(&last_ns),
                (unsigned long long)atomic_load(&unauthorized));
            return reply(c, MHD_HTTP_OK, "text/plain", buf, (size_t)n);
        }
        return reply(c, MHD_HTTP_NOT_FOUND, "text/plain", "not found\n", 10);
    }
    if (strcmp(method, "POST") != 0)
        return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", "method not allowed\n", 19);

    /* First call: headers only. Keep the body as it arrives. */
    if (rq == NULL) {
        rq = calloc(1, sizeof *rq);
        if (rq == NULL)
            return MHD_NO;
        *con_cls = rq;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t take = *upload_data_size;
        if (rq->body == NULL && (rq->body = malloc(BODY_MAX)) == NULL)
            return MHD_NO;
        if (take > BODY_MAX - rq->len)
            take = BODY_MAX - rq->len;
        memcpy(rq->body + rq->len, upload_data, take);
        rq->len += take;
        *upload_data_size = 0;
        return MHD_YES;
    }

    /* The whole body is here. */
    if (strcmp(url, "/reset") == 0) {
        atomic_store(&count, 0);
        atomic_store(&first_ns, 0);
        atomic_store(&last_ns, 0);
        atomic_store(&unauthorized, 0);
        return reply(c, MHD_HTTP_OK, "text/plain", "ok\n", 3);
    }
    if (!is_messages_path(url))
        return reply(c, MHD_HTTP_NOT_FOUND, "text/plain", "not found\n", 10);
    {
        const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
        if (auth == NULL || strncmp(auth, "Bearer ", 7) != 0 || auth[7] == '\0') {
            static const char err[] = "{\"error\":{\"message\":\"Invalid OAuth access "
                                      "token.\",\"type\":\"OAuthException\","
                                      "\"code\":190,\"fbtrace_id\":\"BENCH\"}}";
            atomic_fetch_add(&unauthorized, 1);
            return reply(c, MHD_HTTP_UNAUTHORIZED, "application/json", err, sizeof err - 1);
        }
    }
    find_to(rq->body != NULL ? rq->body : "", rq->len, to, sizeof to);
    {
        unsigned long long t = now_ns(), seq = atomic_fetch_add(&count, 1) + 1, zero = 0;
        atomic_compare_exchange_strong(&first_ns, &zero, t);
        atomic_store(&last_ns, t);
        n = snprintf(buf, sizeof buf,
                     "{\"messaging_product\":\"whatsapp\",\"contacts\":[{\"input\":\"%s\","
                     "\"wa_id\":\"%s\"}],\"messages\":[{\"id\":\"wamid.BENCH%llu\"}]}",
                     to, to, seq);
    }
    return reply(c, MHD_HTTP_OK, "application/json", buf, (size_t)n);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct req *rq = *con_cls;

    (void)cls;
    (void)c;
    (void)toe;
    if (rq != NULL) {
        free(rq->body);
        free(rq);
        *con_cls = NULL;
    }
}

int main(int argc, char **argv)
{
    struct sockaddr_in addr;
    struct MHD_Daemon *d;
    const union MHD_DaemonInfo *info;
    unsigned threads = 1;
    long port = 0;
    sigset_t set;
    int sig;

    if (argc > 3 || (argc > 1 && strcmp(argv[1], "-h") == 0)) {
        fprintf(stderr, "usage: %s [PORT [THREADS]]\n", argv[0]);
        return 2;
    }
    if (argc > 1)
        port = strtol(argv[1], NULL, 10);
    if (argc > 2)
        threads = (unsigned)strtoul(argv[2], NULL, 10);
    if (port < 0 || port > 65535 || threads < 1 || threads > 64) {
        fprintf(stderr, "fakeprovider: bad port or thread count\n");
        return 2;
    }

    /* Block the stop signals in every thread; main waits for them below. */
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    d = MHD_start_daemon(MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG, (uint16_t)port, NULL,
                         NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                         /* 0 means "no pool": one internal epoll thread */
                         MHD_OPTION_THREAD_POOL_SIZE, threads > 1 ? threads : 0u,
                         MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
                         MHD_OPTION_CONNECTION_LIMIT, (unsigned)4096, MHD_OPTION_CONNECTION_TIMEOUT,
                         (unsigned)60, MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024,
                         MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "fakeprovider: cannot listen on 127.0.0.1:%ld\n", port);
        return 1;
    }
    info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("port=%u\n", info != NULL ? (unsigned)info->port : (unsigned)port);
    fflush(stdout);

    while (sigwait(&set, &sig) != 0) {
    }
    MHD_stop_daemon(d);
    return 0;
}
