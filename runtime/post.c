/* post.c - `parley post`: a customer's message as a signed Cloud API webhook, sent with libcurl
 * to a running Parley. The body has the exact shape of Meta's examples. */
#include "post.h"

#include <curl/curl.h>
#include <jansson.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "signature.h"

char *pl_post_body(const struct pl_post *p)
{
    char wamid[80];
    char ts[24];
    json_t *msg, *root;
    char *out;
    struct timespec now;

    clock_gettime(CLOCK_REALTIME, &now);
    snprintf(ts, sizeof ts, "%lld", (long long)now.tv_sec);
    if (p->id != NULL)
        snprintf(wamid, sizeof wamid, "%s", p->id);
    else
        snprintf(wamid, sizeof wamid, "wamid.POST%010lld%09ld", (long long)now.tv_sec, now.tv_nsec);
    msg = json_pack("{s:s,s:s,s:s}", "from", p->from, "id", wamid, "timestamp", ts);
    if (p->press != NULL) {
        json_object_set_new(msg, "type", json_string("interactive"));
        json_object_set_new(msg, "interactive",
                            json_pack("{s:s,s:{s:s,s:s}}", "type", "button_reply", "button_reply",
                                      "id", p->press, "title",
                                      p->press_title != NULL ? p->press_title : p->press));
    } else if (p->list != NULL) {
        json_object_set_new(msg, "type", json_string("interactive"));
        json_object_set_new(msg, "interactive",
                            json_pack("{s:s,s:{s:s,s:s}}", "type", "list_reply", "list_reply", "id",
                                      p->list, "title",
                                      p->press_title != NULL ? p->press_title : p->list));
    } else {
        json_object_set_new(msg, "type", json_string("text"));
        json_object_set_new(msg, "text",
                            json_pack("{s:s}", "body", p->text != NULL ? p->text : ""));
    }
    json_t *contact = json_pack("{s:{s:s},s:s}", "profile", "name",
                                p->name != NULL ? p->name : "Sandbox User", "wa_id", p->from);
    root = json_pack("{s:s,s:[{s:s,s:[{s:{s:s,s:{s:s,s:s},s:[o],s:[o]},s:s}]}]}", "object",
                     "whatsapp_business_account", "entry", "id", "102290129340398", "changes",
                     "value", "messaging_product", "whatsapp", "metadata", "display_phone_number",
                     "15550783881", "phone_number_id", p->phone_number_id, "contacts", contact,
                     "messages", msg, "field", "messages");
    if (root == NULL)
        return NULL;
    out = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    return out;
}

static size_t discard(char *data, size_t size, size_t nmemb, void *ud)
{
    (void)data;
    (void)ud;
    return size * nmemb;
}

int pl_post_send(const struct pl_post *p, struct pl_error *err)
{
    char *body = pl_post_body(p);
    char sig[96], header[128];
    struct curl_slist *headers = NULL;
    CURL *easy;
    CURLcode rc;
    long status = -1;

    if (body == NULL)
        return pl_error_set(err, "io", "out of memory");
    pl_signature_sign(p->app_secret, body, strlen(body), sig);
    snprintf(header, sizeof header, "X-Hub-Signature-256: %s", sig);
    easy = curl_easy_init();
    if (easy == NULL) {
        free(body);
        return pl_error_set(err, "io", "curl_easy_init failed");
    }
    headers = curl_slist_append(headers, "Content-Type: application/json");
    headers = curl_slist_append(headers, header);
    curl_easy_setopt(easy, CURLOPT_URL, p->url);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    rc = curl_easy_perform(easy);
    if (rc == CURLE_OK)
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    else
        pl_error_set(err, "io", "POST %s: %s", p->url, curl_easy_strerror(rc));
    curl_slist_free_all(headers);
    curl_easy_cleanup(easy);
    free(body);
    return rc == CURLE_OK ? (int)status : -1;
}
