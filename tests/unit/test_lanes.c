/* test_lanes.c - which channel's message the sender starts next (runtime/lanes.c): table rows of
 * channels arriving with messages while others hang, checked for who holds how many
 * connections; then a long run of equal transfers, checked for an even share. */
#include "lanes.h"

#include <stdio.h>
#include <string.h>

#include "unit.h"

#define LANES 8
#define SLOTS 1100 /* transfers in flight at most (the sandbox row starts 1,000) */

/* A channel: its lane, how many messages it has ready (-1: without end), how many started. */
struct chan {
    struct pl_lane t;
    int work;
    long starts;
};

struct sim {
    struct pl_lanes lanes;
    struct chan ch[LANES];
    struct chan *flight[SLOTS]; /* transfers in flight, oldest first */
    size_t head, n;
};

static void sim_init(struct sim *s, long max, int several, int unlimited)
{
    memset(s, 0, sizeof *s);
    pl_lanes_init(&s->lanes, max, unlimited);
    pl_lanes_set_several(&s->lanes, several);
}

/* Start every transfer the lanes allow. */
static void fill(struct sim *s)
{
    struct pl_lane *t;
    while (s->n < SLOTS && (t = pl_lanes_next(&s->lanes)) != NULL) {
        struct chan *c = (struct chan *)t;
        if (c->work > 0 && --c->work == 0)
            c->t.ready = NULL;
        c->starts++;
        s->flight[(s->head + s->n++) % SLOTS] = c;
        pl_lanes_started(&s->lanes, t);
    }
}

/* Channel i gets work messages (-1: without end). */
static void arrive(struct sim *s, int i, int work)
{
    s->ch[i].work = work;
    s->ch[i].t.ready = &s->ch[i];
    pl_lanes_schedule(&s->lanes, &s->ch[i].t);
    fill(s);
}

/* The oldest transfer of channel i (any channel: i < 0) ends; the lanes start what they allow. */
static int finish(struct sim *s, int i)
{
    for (size_t k = 0; k < s->n; k++) {
        size_t at = (s->head + k) % SLOTS;
        struct chan *c = s->flight[at];
        if (i >= 0 && c != &s->ch[i])
            continue;
        for (size_t j = k; j > 0; j--) /* close the gap, keeping the order */
            s->flight[(s->head + j) % SLOTS] = s->flight[(s->head + j - 1) % SLOTS];
        s->head = (s->head + 1) % SLOTS;
        s->n--;
        pl_lanes_ended(&s->lanes, &c->t);
        fill(s);
        return 0;
    }
    return -1;
}

static void check_inflight(const struct sim *s, const int *want, int nwant)
{
    for (int i = 0; i < nwant; i++)
        if ((int)s->ch[i].t.inflight != want[i])
            UNIT_FAIL("channel %d holds %zu connections, want %d", i, s->ch[i].t.inflight, want[i]);
        else
            unit_passed++;
}

/* Channels arrive one after the other with the work given, none of their transfers ending:
 * who holds how many connections in the end. */
static void test_arrivals(void)
{
    static const struct {
        const char *name;
        long max;
        int several, unlimited, n, work[LANES], want[LANES];
    } rows[] = {
        {"one channel configured: it may use every connection", 16, 0, 0, 1, {-1}, {16}},
        {"several: one channel alone holds three quarters", 16, 1, 0, 1, {-1}, {12}},
        {"a second channel gets its first connection", 16, 1, 0, 2, {-1, -1}, {12, 1}},
        {"five hanging channels hold every connection, a sixth gets none",
         16,
         1,
         0,
         6,
         {-1, -1, -1, -1, -1, -1},
         {12, 1, 1, 1, 1, 0}},
        {"two hanging channels of 8 connections leave one for a third",
         8,
         1,
         0,
         3,
         {6, 6, 3},
         {6, 1, 1}},
        {"with 2 connections one is kept", 2, 1, 0, 2, {-1, -1}, {1, 1}},
        {"with 3 connections one is kept", 3, 1, 0, 2, {-1, -1}, {2, 1}},
        {"with 1 connection there is nothing to keep", 1, 1, 0, 2, {-1, -1}, {1, 0}},
        {"the sandbox has no limit", 4, 1, 1, 2, {500, 500}, {500, 500}},
    };
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        struct sim s;
        UNIT_CASE(rows[r].name);
        sim_init(&s, rows[r].max, rows[r].several, rows[r].unlimited);
        for (int i = 0; i < rows[r].n; i++)
            arrive(&s, i, rows[r].work[i]);
        check_inflight(&s, rows[r].want, rows[r].n);
        /* a lane left in the turns while no connection is free must not keep the sender
         * awake (the sixth channel in the row of five hanging ones) */
        CHECK_INT(pl_lanes_startable(&s.lanes), 0);
    }
}

/* What happens as transfers end. */
static void test_endings(void)
{
    struct sim s;
    static const int hang[] = {12, 1}, first_again[] = {12, 1}, healthy[] = {6, 1, 1};

    UNIT_CASE("a held channel whose transfer ends starts its next at once");
    sim_init(&s, 16, 1, 0);
    arrive(&s, 0, -1);
    arrive(&s, 1, 5);
    check_inflight(&s, hang, 2);
    CHECK_INT(finish(&s, 1), 0);
    check_inflight(&s, first_again, 2);
    CHECK_INT(s.ch[1].starts, 2);

    UNIT_CASE("two hanging channels: a third's transfers go out one after the other");
    sim_init(&s, 8, 1, 0);
    arrive(&s, 0, -1);
    arrive(&s, 1, -1);
    arrive(&s, 2, 20);
    for (int k = 0; k < 19; k++)
        CHECK_INT(finish(&s, 2), 0);
    check_inflight(&s, healthy, 3);
    CHECK_INT(s.ch[2].starts, 20);

    UNIT_CASE("a channel that runs out of work leaves the turns; new work brings it back");
    sim_init(&s, 4, 1, 0);
    arrive(&s, 0, 2);
    CHECK_INT(s.ch[0].t.inflight, 2);
    CHECK_INT(finish(&s, 0), 0);
    CHECK_INT(finish(&s, 0), 0);
    CHECK_INT(s.lanes.inflight, 0);
    CHECK_INT(pl_lanes_startable(&s.lanes), 0);
    arrive(&s, 0, 1);
    CHECK_INT(s.ch[0].starts, 3);
}

/* Equal transfers ending in the order they started, every channel with work without end: the
 * share of the transfers each channel started. The first channel ramps up alone, then two more
 * arrive. Held lanes once went back to the turns in the order they had been held in, reversed
 * at every round, and the middle one of three started a sixth of the transfers. */
static void test_even_share(void)
{
    static const struct {
        const char *name;
        long max;
        int n;
    } rows[] = {
        {"three channels on 16 connections share evenly", 16, 3},
        {"two channels on 16 connections share evenly", 16, 2},
        {"five channels on 16 connections share evenly", 16, 5},
        {"three channels on 4 connections share evenly", 4, 3},
    };
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        struct sim s;
        long before[LANES] = {0}, total = 0;
        UNIT_CASE(rows[r].name);
        sim_init(&s, rows[r].max, 1, 0);
        for (int i = 0; i < rows[r].n; i++)
            arrive(&s, i, -1);
        for (int k = 0; k < 1000; k++)
            finish(&s, -1);
        for (int i = 0; i < rows[r].n; i++)
            before[i] = s.ch[i].starts;
        for (int k = 0; k < 30000; k++)
            finish(&s, -1);
        for (int i = 0; i < rows[r].n; i++)
            total += s.ch[i].starts - before[i];
        for (int i = 0; i < rows[r].n; i++) {
            double share = (double)(s.ch[i].starts - before[i]) / (double)total;
            double even = 1.0 / rows[r].n;
            if (share < even * 0.9 || share > even * 1.1)
                UNIT_FAIL("channel %d started %.1f %% of the transfers, not about %.1f %%", i,
                          100 * share, 100 * even);
            else
                unit_passed++;
        }
    }
}

int main(void)
{
    test_arrivals();
    test_endings();
    test_even_share();
    return unit_report("lanes");
}
