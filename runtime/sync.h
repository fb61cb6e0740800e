/* sync.h - `parley templates sync`: fetch a channel's message templates from the provider
 * (GET {provider.url}/{waba_id}/message_templates, following paging.next to the last page) and
 * write them, as Meta returned them, to the channel's registry file. The sandbox provider
 * answers with a small sample registry, so the tour works offline. */
#ifndef PL_SYNC_H
#define PL_SYNC_H

#include <stddef.h>

#include "config.h"
#include "error.h"
#include "templates.h"

struct pl_sync_result {
    size_t templates;                /* written to the file */
    size_t pages;                    /* answers read (0 for the sandbox) */
    struct pl_tpl_problem *problems; /* templates Parley will leave out when it loads the file
                                        (malloc'd; the caller frees) */
    size_t nproblems;
};

/* Fetch and write ch's registry (ch->templates, replaced atomically: a temporary file in the
 * same folder, then rename). Every template Meta returned is written, including those that
 * break the definition rules; they are reported in r->problems. Returns 0, or -1 with err (code
 * "sync"): no templates path, no waba_id, a network or HTTP error (with Meta's error message
 * and code), an answer that is not a message_templates page, a file that cannot be written. The
 * token never appears in err. */
int pl_templates_sync(const struct pl_config *cfg, const struct pl_channel_config *ch,
                      struct pl_sync_result *r, struct pl_error *err);

#endif
