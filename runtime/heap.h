/* heap.h - a binary min-heap of borrowed pointers, each under a 64-bit key (a time in ms): the
 * item with the smallest key is seen at once and taken out in O(log n). Items with equal keys
 * come out in no particular order. Not thread-safe; each owner guards its own. */
#ifndef PL_HEAP_H
#define PL_HEAP_H

#include <stddef.h>

struct pl_heap_item {
    long long key;
    void *value;
};

/* Zeroed, it is an empty heap. */
struct pl_heap {
    struct pl_heap_item *items;
    size_t n, cap;
};

/* Make room for n items in all, so that pushes up to that many cannot fail. Returns 0, or -1 on
 * OOM (the heap is unchanged). */
int pl_heap_reserve(struct pl_heap *h, size_t n);

/* Add value under key. Returns 0, or -1 on OOM (the heap is unchanged). */
int pl_heap_push(struct pl_heap *h, long long key, void *value);

/* The item with the smallest key, or NULL when the heap is empty. */
const struct pl_heap_item *pl_heap_top(const struct pl_heap *h);

/* Take out the item with the smallest key and return its value (NULL when empty). */
void *pl_heap_pop(struct pl_heap *h);

/* Free the heap's storage (not the values); it is empty again. */
void pl_heap_free(struct pl_heap *h);

#endif
