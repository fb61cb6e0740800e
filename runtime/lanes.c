/* lanes.c - which channel's message the sender starts next (see lanes.h). */
#include "lanes.h"

/* 1/LANE_KEPT_SHARE of the connections is kept for lanes with nothing in flight once there are
 * several channels. Parley's tuning, not a WhatsApp limit. */
#define LANE_KEPT_SHARE 4

void pl_lanes_init(struct pl_lanes *t, long max_connections, int unlimited)
{
    *t = (struct pl_lanes){0};
    t->max = max_connections > 0 ? max_connections : 1;
    t->extra_max = t->max;
    t->unlimited = unlimited;
}

static void release_held(struct pl_lanes *t);

void pl_lanes_set_several(struct pl_lanes *t, int several)
{
    long kept = t->max / LANE_KEPT_SHARE > 0 ? t->max / LANE_KEPT_SHARE : 1;
    t->extra_max = several && t->max > 1 ? t->max - kept : t->max;
    release_held(t);
}

int pl_lanes_room(const struct pl_lanes *t)
{
    return t->unlimited || (long)t->inflight < t->max;
}

/* Whether l must wait for a transfer to end before it starts another: it has one in flight
 * and the connections kept for the other lanes are all that is free. */
static int full(const struct pl_lanes *t, const struct pl_lane *l)
{
    return !t->unlimited && l->inflight > 0 && (long)t->inflight >= t->extra_max;
}

static void hold(struct pl_lanes *t, struct pl_lane *l)
{
    l->in_held = 1;
    l->held_at = ++t->holds;
    l->next_turn = t->held;
    t->held = l;
}

void pl_lanes_schedule(struct pl_lanes *t, struct pl_lane *l)
{
    if (l->in_turns || l->in_held || l->ready == NULL)
        return;
    if (full(t, l)) {
        hold(t, l);
        return;
    }
    l->in_turns = 1;
    l->next_turn = NULL;
    if (t->turns_tail != NULL)
        t->turns_tail->next_turn = l;
    else
        t->turns = l;
    t->turns_tail = l;
}

/* As many held lanes as there are connections free beyond the kept ones go to the turns, the
 * fewest in flight first and the earliest held among equals: the first in the turns gets the
 * next free connection. (Every held lane has a transfer in flight, so none may start while no
 * connection beyond the kept ones is free.) */
static void release_held(struct pl_lanes *t)
{
    for (long free = t->extra_max - (long)t->inflight; free > 0 && t->held != NULL; free--) {
        struct pl_lane **best = &t->held;
        for (struct pl_lane **p = &t->held; *p != NULL; p = &(*p)->next_turn)
            if ((*p)->inflight < (*best)->inflight ||
                ((*p)->inflight == (*best)->inflight && (*p)->held_at < (*best)->held_at))
                best = p;
        struct pl_lane *l = *best;
        *best = l->next_turn;
        l->in_held = 0;
        pl_lanes_schedule(t, l);
    }
}

struct pl_lane *pl_lanes_next(struct pl_lanes *t)
{
    struct pl_lane *l;
    while (pl_lanes_room(t) && (l = t->turns) != NULL) {
        t->turns = l->next_turn;
        if (t->turns == NULL)
            t->turns_tail = NULL;
        l->next_turn = NULL;
        l->in_turns = 0;
        if (l->ready == NULL)
            continue;
        if (full(t, l)) {
            pl_lanes_schedule(t, l); /* to held */
            continue;
        }
        return l;
    }
    return NULL;
}

void pl_lanes_started(struct pl_lanes *t, struct pl_lane *l)
{
    t->inflight++;
    l->inflight++;
    pl_lanes_schedule(t, l); /* to the back: the lanes take turns */
}

void pl_lanes_ended(struct pl_lanes *t, struct pl_lane *l)
{
    if (t->inflight > 0)
        t->inflight--;
    if (l->inflight > 0)
        l->inflight--;
    if (l->in_held) { /* unlink it: it may have nothing in flight now, or it competes below */
        struct pl_lane **p = &t->held;
        while (*p != l)
            p = &(*p)->next_turn;
        *p = l->next_turn;
        l->in_held = 0;
    }
    /* With one in flight still, it competes with the held lanes for the connection it freed
     * (as the newest held): otherwise it would take it back before them every time. */
    if (!l->in_turns && l->ready != NULL && l->inflight > 0 && !t->unlimited)
        hold(t, l);
    else
        pl_lanes_schedule(t, l);
    release_held(t);
}

int pl_lanes_startable(const struct pl_lanes *t)
{
    return t->turns != NULL && pl_lanes_room(t);
}
