/* lanes.h - which channel's message the sender starts next, within its connections.
 *
 * Each channel has a lane. The lanes with a message ready take turns (a FIFO), one transfer
 * each. Once more than one channel is configured (or has sent), a lane takes its first
 * connection whenever one is free, but another one only while fewer than extra_max are in
 * flight: a quarter of the connections (at least one) stays free for the lanes with nothing in
 * flight. So a phone number whose sends hang, or that a partner throttles, cannot take every
 * connection from the others: it takes as many hanging channels as there are kept connections,
 * plus one. A lane that must wait for that waits in held; when a transfer ends the held lanes
 * try again, the one with the fewest transfers in flight first (the earliest held among
 * equals), so that the channels share the connections evenly. Pure: no I/O, no clock, no
 * allocation; the caller owns the lanes and their ready messages. Not thread-safe. */
#ifndef PL_LANES_H
#define PL_LANES_H

#include <stddef.h>

/* Embedded in the caller's per-channel record; zeroed, it is a lane with nothing to do. */
struct pl_lane {
    struct pl_lane *next_turn; /* in turns or in held */
    int in_turns, in_held;
    void *ready; /* the caller's first ready message (its list); NULL: none */
    size_t inflight;
    unsigned long long held_at; /* when it went to held: earlier first among equals */
};

struct pl_lanes {
    struct pl_lane *turns, *turns_tail, *held;
    size_t inflight;
    long max;       /* connections */
    long extra_max; /* a lane with a transfer in flight may start another only below this */
    int unlimited;  /* the sandbox: every transfer ends at once, nothing is ever held */
    unsigned long long holds;
};

/* max_connections (at least 1); unlimited: no limit at all. One lane may use every connection
 * until pl_lanes_set_several. */
void pl_lanes_init(struct pl_lanes *t, long max_connections, int unlimited);

/* Whether there are (or will be) several channels: then a quarter of the connections, at least
 * one when there are two or more, is kept for lanes with nothing in flight. */
void pl_lanes_set_several(struct pl_lanes *t, int several);

/* Whether another transfer may start at all. */
int pl_lanes_room(const struct pl_lanes *t);

/* The lane has a ready message (l->ready set): to the back of the turns, or to held when it must
 * wait. Does nothing when it is already in either, or has nothing ready. */
void pl_lanes_schedule(struct pl_lanes *t, struct pl_lane *l);

/* The lane whose turn it is and that may start a transfer now; it leaves the turns (the caller
 * takes its ready message, then calls pl_lanes_started, or pl_lanes_schedule when the transfer
 * could not start). Lanes it meets that must wait go to held. NULL when none may start. */
struct pl_lane *pl_lanes_next(struct pl_lanes *t);

/* A transfer of l started: counted, and l goes to the back of the turns if it has more. */
void pl_lanes_started(struct pl_lanes *t, struct pl_lane *l);

/* A transfer of l ended: uncounted, l scheduled again, and the held lanes try again. */
void pl_lanes_ended(struct pl_lanes *t, struct pl_lane *l);

/* Whether a lane could start a transfer now: the sender must not sleep. */
int pl_lanes_startable(const struct pl_lanes *t);

#endif
