/* broadcast.h - `parley broadcast`: send one approved template to every contact of a CSV list as
 * a durable job (resumable after kill -9, paced, stopped cleanly by the daily limit), and
 * `parley broadcast status`: what became of a job's messages. Runs in its own process, with its
 * own store connection and sender, next to a running server on the same state file. */
#ifndef PL_BROADCAST_H
#define PL_BROADCAST_H

#include <stdio.h>

#include "config.h"
#include "error.h"

#define PL_BROADCAST_RATE 80 /* messages per second: Meta's default throughput per number */

enum pl_progress { PL_PROGRESS_NONE, PL_PROGRESS_LINES, PL_PROGRESS_BAR };

struct pl_broadcast_opts {
    const struct pl_config *cfg;
    const char *channel;       /* a new job: the channel id */
    const char *template_name; /* a new job: the template */
    const char *language;      /* NULL: the channel's language */
    const char *file;          /* a new job: the CSV list */
    const char *resume;        /* a job id to resume instead (channel, template, file unused) */
    double rate;               /* messages per second; 0: the job's rate, or PL_BROADCAST_RATE */
    int fresh;                 /* start a new job even when this list was sent already */
    enum pl_progress progress; /* a \r-updated bar (a terminal), periodic lines, or nothing */
    int stats;                 /* add the peak memory (VmHWM) to the report */
    FILE *out;                 /* the report */
    FILE *err;                 /* progress and notes */
};

/* How a run ended (when it did not fail). */
enum pl_broadcast_end {
    PL_BROADCAST_DONE,        /* every recipient was sent, skipped or failed */
    PL_BROADCAST_DAILY_LIMIT, /* stopped at the daily limit; the rest is pending */
    PL_BROADCAST_STOPPED,     /* stopped by SIGINT / SIGTERM or a template no longer approved */
};

/* Create (or resume) the job and run it to its end, printing the progress and the report.
 * Returns 0 with *end set, or -1 with err for a problem that stops it: a bad list (err names
 * the file and line), an unknown or unapproved template, a store failure. A job that stopped or
 * failed keeps everything it did; running the same command (or --resume) continues it. */
int pl_broadcast_run(const struct pl_broadcast_opts *o, enum pl_broadcast_end *end,
                     struct pl_error *err);

/* What `parley broadcast status` prints. */
struct pl_status_opts {
    const struct pl_config *cfg;
    const char *job; /* NULL: every recent job and the per-template counts */
    int json;        /* one JSON object instead of text */
    int unsent; /* list the recipients that were not sent, as CSV (line,wa_id,state,code,detail) */
    FILE *out;
};

/* Print a job's recipients (sent / skipped / failed / pending by code) and its messages'
 * delivery (sent / delivered / read / failed by code, as status webhooks report them to the
 * server). Returns 0, or -1 with err (unknown job, store failure). */
int pl_broadcast_status(const struct pl_status_opts *o, struct pl_error *err);

#endif
