/* test_heap.c - the min-heap behind the sender's waiting list: a table of key sequences, each
 * taken out smallest first; long runs of pushes and pops in turn against a sorted reference
 * list; the empty heap; and a reservation too large to make. */
#include "heap.h"
#include "unit.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEYS_MAX 12

static const struct {
    const char *name;
    size_t n;
    long long keys[KEYS_MAX];
} cases[] = {
    {"one key", 1, {42}},
    {"already in order", 5, {1, 2, 3, 4, 5}},
    {"in reverse order", 5, {5, 4, 3, 2, 1}},
    {"equal keys", 4, {7, 7, 7, 7}},
    {"equal keys among others", 7, {3, 9, 3, 1, 9, 1, 3}},
    {"negative and zero", 5, {0, -5, 12, -1, 3}},
    {"the extremes of a long long", 4, {INT64_MAX, INT64_MIN, 0, INT64_MAX - 1}},
    {"times in ms, a retry's backoffs",
     8,
     {1795303519000, 1795303520000, 1795303519500, 1795303523000, 1795303519001, 1795303519000,
      1795303535000, 1795303521000}},
    {"twelve keys, two levels deep and more", 12, {8, 3, 11, 0, 6, 2, 10, 1, 9, 4, 7, 5}},
};

static int key_order(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

static void test_table(void)
{
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        struct pl_heap h = {0};
        long long want[KEYS_MAX];
        size_t n = cases[c].n;

        UNIT_CASE(cases[c].name);
        for (size_t i = 0; i < n; i++)
            CHECK_INT(pl_heap_push(&h, cases[c].keys[i], (void *)&cases[c].keys[i]), 0);
        CHECK_INT(h.n, n);
        memcpy(want, cases[c].keys, n * sizeof want[0]);
        qsort(want, n, sizeof want[0], key_order);
        for (size_t i = 0; i < n; i++) {
            const struct pl_heap_item *top = pl_heap_top(&h);
            CHECK(top != NULL && top->key == want[i]);
            long long *v = pl_heap_pop(&h);
            CHECK(v != NULL && *v == want[i]); /* the value that came in under that key */
        }
        CHECK(pl_heap_top(&h) == NULL);
        CHECK(pl_heap_pop(&h) == NULL);
        pl_heap_free(&h);
    }
}

/* Pushes and pops in turn, the keys from a fixed pseudo-random sequence: every pop must give
 * the smallest key of a reference list kept sorted by hand. */
static void test_against_reference(void)
{
    enum { STEPS = 20000, HELD_MAX = 3000 };
    static long long ref[HELD_MAX], values[STEPS];
    struct pl_heap h = {0};
    size_t held = 0, wrong = 0, pushes = 0;
    unsigned rng = 12345;

    UNIT_CASE("20,000 steps of pushes and pops in turn, against a sorted list");
    for (int step = 0; step < STEPS; step++) {
        rng = rng * 1103515245u + 12345u;
        /* push more than pop for the first half, then drain: the heap grows to thousands */
        int push =
            held == 0 || (held < HELD_MAX && (rng >> 16) % 100 < (step < STEPS / 2 ? 70 : 30));
        if (push) {
            long long key = (long long)((rng >> 8) % 5000); /* repeats on purpose */
            values[pushes] = key;
            if (pl_heap_push(&h, key, &values[pushes]) != 0) {
                wrong++;
                break;
            }
            pushes++;
            size_t at = held++;
            while (at > 0 && ref[at - 1] > key) {
                ref[at] = ref[at - 1];
                at--;
            }
            ref[at] = key;
        } else {
            long long *v = pl_heap_pop(&h);
            wrong += v == NULL || *v != ref[0];
            memmove(ref, ref + 1, --held * sizeof ref[0]);
        }
        wrong += h.n != held;
    }
    CHECK_INT(wrong, 0);
    CHECK(pushes > STEPS / 2);
    while (held > 0) {
        long long *v = pl_heap_pop(&h);
        wrong += v == NULL || *v != ref[0];
        memmove(ref, ref + 1, --held * sizeof ref[0]);
    }
    CHECK_INT(wrong, 0);
    CHECK_INT(h.n, 0);
    pl_heap_free(&h);
}

static void test_reserve(void)
{
    struct pl_heap h = {0};
    int x = 1;

    UNIT_CASE("room reserved ahead: pushes up to it do not move the storage");
    CHECK_INT(pl_heap_reserve(&h, 100), 0);
    CHECK(h.cap >= 100);
    struct pl_heap_item *items = h.items;
    for (int i = 0; i < 100; i++)
        CHECK_INT(pl_heap_push(&h, 100 - i, &x), 0);
    CHECK(h.items == items);
    CHECK_INT(pl_heap_top(&h)->key, 1);

    UNIT_CASE("a reservation too large to make: -1 and the heap unchanged");
    size_t cap = h.cap;
    CHECK_INT(pl_heap_reserve(&h, (size_t)-1), -1);
    CHECK_INT(pl_heap_reserve(&h, (size_t)-1 / sizeof(struct pl_heap_item)), -1);
    CHECK(h.items == items && h.cap == cap && h.n == 100);
    CHECK_INT(pl_heap_top(&h)->key, 1);

    UNIT_CASE("freed: empty, and usable again");
    pl_heap_free(&h);
    CHECK(h.items == NULL && h.n == 0 && h.cap == 0 && pl_heap_top(&h) == NULL);
    CHECK_INT(pl_heap_push(&h, 5, &x), 0);
    CHECK(pl_heap_pop(&h) == &x);
    pl_heap_free(&h);
}

int main(void)
{
    test_table();
    test_against_reference();
    test_reserve();
    printf("heap: %zu table rows\n", sizeof cases / sizeof cases[0]);
    return unit_report("heap");
}
