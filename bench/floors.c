/* floors.c - what the three parts Parley is built on cost on this machine by themselves, per
 * event, with nothing of Parley around them: the least CPU any program made of them needs.
 *
 *   floors mhd                          a libmicrohttpd server (one epoll thread, as Parley's)
 *                                       that reads each POST's body and answers 200 "{}": no
 *                                       signature, no JSON. Prints "port=<n>" once listening;
 *                                       at SIGTERM, requests=<n> and cpu_us=<process CPU time>
 *   floors curl URL COUNT CONNECTIONS   COUNT POSTs of a reply like the benchmark's (a text with
 *                                       two quick replies) through one libcurl multi handle,
 *                                       CONNECTIONS at a time on kept-alive connections, as
 *                                       Parley's sender does; prints requests=, failed=, cpu_us=
 *   floors sqlite FILE COUNT BATCH      COUNT events' rows in a fresh SQLite file in WAL mode
 *                                       (synchronous NORMAL, SQLite's own checkpoints), BATCH
 *                                       events per transaction, in Parley's three transactions:
 *                                       the inbox row (its provider id unique), then the turn
 *                                       (the inbox row done, the contact and its session, the
 *                                       outbox row), then the provider's acceptance (the outbox
 *                                       row sent, with its wamid); prints events=, cpu_us=
 *
 * Each result is one key=value per line. bench/run --floors runs all three pinned to Parley's CPU
 * and adds them up. */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <microhttpd.h>
#include <sqlite3.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static long long cpu_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (long long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 + ru.ru_utime.tv_usec +
           ru.ru_stime.tv_usec;
}

static int usage(void)
{
    fprintf(stderr, "usage: floors mhd | floors curl URL COUNT CONNECTIONS | "
                    "floors sqlite FILE COUNT BATCH\n");
    return 2;
}

/* ---- mhd ---- */

static atomic_ullong answered;

/* Each request's body is read (libmicrohttpd hands it over in pieces) and dropped: keeping it
 * would cost what Parley's kept buffers avoid. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **state)
{
    static int begun;
    (void)cls, (void)url, (void)method, (void)version, (void)upload;
    if (*state == NULL) {
        *state = &begun;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        *upload_size = 0;
        return MHD_YES;
    }
    struct MHD_Response *r =
        MHD_create_response_from_buffer(2, (void *)"{}", MHD_RESPMEM_PERSISTENT);
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    enum MHD_Result rc = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    answered++;
    return rc;
}

static int floor_mhd(void)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    sigset_t stop;
    int sig;
    /* blocked before the daemon's thread starts, so that it inherits the mask: sigwait gets it */
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    struct MHD_Daemon *d =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL, on_request,
                         NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "floors mhd: cannot listen\n");
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("port=%u\n", info != NULL ? info->port : 0);
    fflush(stdout);
    sigwait(&stop, &sig);
    MHD_stop_daemon(d);
    printf("requests=%llu\ncpu_us=%lld\n", (unsigned long long)answered, cpu_us());
    return 0;
}

/* ---- curl ---- */

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
    (void)p, (void)ud;
    return size * n;
}

static int floor_curl(const char *url, long count, int conns)
{
    static const char body[] =
        "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\",\"to\":"
        "\"79161234567\",\"type\":\"interactive\",\"interactive\":{\"type\":\"button\",\"body\":"
        "{\"text\":\"\\u0421\\u043f\\u0430\\u0441\\u0438\\u0431\\u043e! \\u042d\\u0442\\u043e "
        "\\u0432\\u0430\\u0448\\u0435 \\u0441\\u043e\\u043e\\u0431\\u0449\\u0435\\u043d\\u0438"
        "\\u0435 \\u2116 12.\"},\"action\":{\"buttons\":[{\"type\":\"reply\",\"reply\":{\"id\":"
        "\"\\u041e\\u043f\\u0435\\u0440\\u0430\\u0442\\u043e\\u0440\",\"title\":\"\\u041e\\u043f"
        "\\u0435\\u0440\\u0430\\u0442\\u043e\\u0440\"}},{\"type\":\"reply\",\"reply\":{\"id\":"
        "\"\\u0422\\u0430\\u0440\\u0438\\u0444\\u044b\",\"title\":\"\\u0422\\u0430\\u0440\\u0438"
        "\\u0444\\u044b\"}}]}}}";
    struct curl_slist *headers = NULL;
    CURLM *multi;
    CURL **easy;
    long started = 0, done = 0, failed = 0;

    if (count < 1 || conns < 1)
        return usage();
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "floors curl: curl_global_init failed\n");
        return 1;
    }
    multi = curl_multi_init();
    easy = calloc((size_t)conns, sizeof *easy);
    struct curl_slist *more = curl_slist_append(NULL, "Content-Type: application/json");
    headers = more != NULL ? curl_slist_append(more, "Authorization: Bearer floors-token") : NULL;
    if (headers == NULL)
        curl_slist_free_all(more);
    int ok = multi != NULL && easy != NULL && headers != NULL;
    if (ok)
        curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)conns);
    for (int i = 0; ok && i < conns && started < count; i++, started++) {
        easy[i] = curl_easy_init();
        ok = easy[i] != NULL;
        if (!ok)
            break;
        curl_easy_setopt(easy[i], CURLOPT_URL, url);
        curl_easy_setopt(easy[i], CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(easy[i], CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(easy[i], CURLOPT_POSTFIELDSIZE, (long)(sizeof body - 1));
        curl_easy_setopt(easy[i], CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(easy[i], CURLOPT_TIMEOUT_MS, 10000L); /* a stalled provider fails it */
        ok = curl_multi_add_handle(multi, easy[i]) == CURLM_OK;
    }
    if (!ok) {
        fprintf(stderr, "floors curl: out of memory\n");
        done = count; /* nothing to wait for */
        failed = 1;
    }
    long long t0 = cpu_us();
    while (done < count) {
        int running, left;
        CURLMsg *m;
        curl_multi_perform(multi, &running);
        while ((m = curl_multi_info_read(multi, &left)) != NULL) {
            long http = 0;
            if (m->msg != CURLMSG_DONE)
                continue;
            curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &http);
            failed += m->data.result != CURLE_OK || http != 200;
            done++;
            curl_multi_remove_handle(multi, m->easy_handle);
            if (started < count) {
                curl_multi_add_handle(multi, m->easy_handle);
                started++;
            }
        }
        if (done < count)
            curl_multi_poll(multi, NULL, 0, 1000, NULL);
    }
    printf("requests=%ld\nfailed=%ld\ncpu_us=%lld\n", done, failed, cpu_us() - t0);
    for (int i = 0; easy != NULL && i < conns; i++)
        if (easy[i] != NULL) {
            curl_multi_remove_handle(multi, easy[i]);
            curl_easy_cleanup(easy[i]);
        }
    free(easy);
    curl_multi_cleanup(multi);
    curl_slist_free_all(headers);
    curl_global_cleanup();
    return failed != 0;
}

/* ---- sqlite ---- */

static const char schema[] =
    "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
    "CREATE TABLE inbox (id INTEGER PRIMARY KEY, dedupe TEXT UNIQUE, kind INTEGER NOT NULL,"
    " contact TEXT, ts INTEGER, data TEXT, state INTEGER NOT NULL DEFAULT 0, received_at INTEGER,"
    " finished_at INTEGER);"
    "CREATE INDEX inbox_pending ON inbox(id) WHERE state = 0;"
    "CREATE TABLE contacts (channel TEXT NOT NULL, contact TEXT NOT NULL, name TEXT,"
    " last_inbound INTEGER NOT NULL DEFAULT 0, session TEXT, PRIMARY KEY (channel, contact))"
    " WITHOUT ROWID;"
    "CREATE TABLE outbox (id INTEGER PRIMARY KEY, local_id TEXT NOT NULL UNIQUE, channel TEXT,"
    " contact TEXT, kind TEXT, body TEXT, state INTEGER NOT NULL DEFAULT 0, wamid TEXT,"
    " created_at INTEGER, sent_at INTEGER);"
    "CREATE INDEX outbox_wamid ON outbox(wamid) WHERE wamid IS NOT NULL;"
    "CREATE INDEX outbox_queued ON outbox(id) WHERE state = 0;";

enum { ADD, DONE, CONTACT, QUEUE, SENT, NSTMT };
static const char *const sql[NSTMT] = {
    [ADD] = "INSERT INTO inbox (dedupe, kind, contact, ts, data, received_at)"
            " VALUES (?1, 1, ?2, ?3, ?4, ?3)",
    [DONE] = "UPDATE inbox SET state = 1, finished_at = ?2 WHERE id = ?1",
    [CONTACT] = "INSERT INTO contacts (channel, contact, name, last_inbound, session)"
                " VALUES ('bench', ?1, 'Анна', ?2, ?3) ON CONFLICT (channel, contact) DO UPDATE"
                " SET name = excluded.name, last_inbound = excluded.last_inbound,"
                " session = excluded.session",
    [QUEUE] = "INSERT INTO outbox (local_id, channel, contact, kind, body, created_at)"
              " VALUES (?1, 'bench', ?2, 'text', ?3, ?4)",
    [SENT] = "UPDATE outbox SET state = 2, wamid = ?2, sent_at = ?3 WHERE id = ?1",
};

static int run(sqlite3 *db, const char *text)
{
    if (sqlite3_exec(db, text, NULL, NULL, NULL) == SQLITE_OK)
        return 0;
    fprintf(stderr, "floors sqlite: %s: %s\n", text, sqlite3_errmsg(db));
    return -1;
}

static int step(sqlite3 *db, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_DONE)
        return 0;
    fprintf(stderr, "floors sqlite: %s\n", sqlite3_errmsg(db));
    return -1;
}

static int floor_sqlite(const char *path, long count, long batch)
{
    char data[420], body[330], key[64], contact[16], local[24], wamid[32];
    sqlite3 *db = NULL;
    sqlite3_stmt *st[NSTMT] = {NULL};
    unsigned rng = 12345;
    int rc = 1;

    if (count < 1 || batch < 1)
        return usage();
    /* about the size of a text event's JSON and of a reply with two buttons */
    memset(data, 'd', sizeof data - 1);
    data[sizeof data - 1] = '\0';
    memset(body, 'b', sizeof body - 1);
    body[sizeof body - 1] = '\0';
    if (sqlite3_open(path, &db) != SQLITE_OK) {
        fprintf(stderr, "floors sqlite: %s: %s\n", path,
                db != NULL ? sqlite3_errmsg(db) : "no memory");
        goto out;
    }
    if (run(db, schema) != 0)
        goto out;
    for (int i = 0; i < NSTMT; i++)
        if (sqlite3_prepare_v2(db, sql[i], -1, &st[i], NULL) != SQLITE_OK) {
            fprintf(stderr, "floors sqlite: %s: %s\n", sql[i], sqlite3_errmsg(db));
            goto out;
        }
    long long t0 = cpu_us();
    for (long first = 1; first <= count; first += batch) {
        long last = first + batch - 1 < count ? first + batch - 1 : count;
        if (run(db, "BEGIN") != 0)
            goto out;
        for (long id = first; id <= last; id++) { /* Meta's ids: random to the index */
            rng = rng * 1103515245u + 12345u;
            snprintf(key, sizeof key, "wamid.HBgLNzk5OTEyMzQ1NjcVAgASGBQzQUI%08x%06lx", rng, id);
            snprintf(contact, sizeof contact, "7916%07u", (rng >> 8) % 3000);
            sqlite3_bind_text(st[ADD], 1, key, -1, SQLITE_STATIC);
            sqlite3_bind_text(st[ADD], 2, contact, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st[ADD], 3, 1790000000 + id);
            sqlite3_bind_text(st[ADD], 4, data, -1, SQLITE_STATIC);
            if (step(db, st[ADD]) != 0)
                goto out;
        }
        if (run(db, "COMMIT") != 0 || run(db, "BEGIN") != 0)
            goto out;
        for (long id = first; id <= last; id++) {
            rng = rng * 1103515245u + 12345u;
            snprintf(contact, sizeof contact, "7916%07u", (rng >> 8) % 3000);
            snprintf(local, sizeof local, "m%011lx%05lx", 0x19000000000L + id, id & 0xfffff);
            sqlite3_bind_int64(st[DONE], 1, id);
            sqlite3_bind_int64(st[DONE], 2, 1790000000 + id);
            sqlite3_bind_text(st[CONTACT], 1, contact, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st[CONTACT], 2, 1790000000 + id);
            sqlite3_bind_text(st[CONTACT], 3, "{\"count\":12}", -1, SQLITE_STATIC);
            sqlite3_bind_text(st[QUEUE], 1, local, -1, SQLITE_STATIC);
            sqlite3_bind_text(st[QUEUE], 2, contact, -1, SQLITE_STATIC);
            sqlite3_bind_text(st[QUEUE], 3, body, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st[QUEUE], 4, 1790000000 + id);
            if (step(db, st[DONE]) != 0 || step(db, st[CONTACT]) != 0 || step(db, st[QUEUE]) != 0)
                goto out;
        }
        if (run(db, "COMMIT") != 0 || run(db, "BEGIN") != 0)
            goto out;
        for (long id = first; id <= last; id++) {
            snprintf(wamid, sizeof wamid, "wamid.FLOOR%ld", id);
            sqlite3_bind_int64(st[SENT], 1, id);
            sqlite3_bind_text(st[SENT], 2, wamid, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st[SENT], 3, 1790000000 + id);
            if (step(db, st[SENT]) != 0)
                goto out;
        }
        if (run(db, "COMMIT") != 0)
            goto out;
    }
    printf("events=%ld\ncpu_us=%lld\n", count, cpu_us() - t0);
    rc = 0;
out:
    for (int i = 0; i < NSTMT; i++)
        sqlite3_finalize(st[i]);
    sqlite3_close(db);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "mhd") == 0)
        return floor_mhd();
    if (argc == 5 && strcmp(argv[1], "curl") == 0)
        return floor_curl(argv[2], atol(argv[3]), atoi(argv[4]));
    if (argc == 5 && strcmp(argv[1], "sqlite") == 0)
        return floor_sqlite(argv[2], atol(argv[3]), atol(argv[4]));
    return usage();
}
