/* heap.c - a binary min-heap of borrowed pointers under 64-bit keys (see heap.h). */
#include "heap.h"

#include <stdlib.h>

int pl_heap_reserve(struct pl_heap *h, size_t n)
{
    size_t cap = h->cap > 0 ? h->cap : 16;
    struct pl_heap_item *items;

    if (n <= h->cap)
        return 0;
    while (cap < n) {
        if (cap > ((size_t)-1 / sizeof *items) / 2)
            return -1;
        cap *= 2;
    }
    items = realloc(h->items, cap * sizeof *items);
    if (items == NULL)
        return -1;
    h->items = items;
    h->cap = cap;
    return 0;
}

int pl_heap_push(struct pl_heap *h, long long key, void *value)
{
    size_t i;

    if (pl_heap_reserve(h, h->n + 1) != 0)
        return -1;
    /* up from the new last place, moving each larger parent down */
    for (i = h->n++; i > 0 && h->items[(i - 1) / 2].key > key; i = (i - 1) / 2)
        h->items[i] = h->items[(i - 1) / 2];
    h->items[i].key = key;
    h->items[i].value = value;
    return 0;
}

const struct pl_heap_item *pl_heap_top(const struct pl_heap *h)
{
    return h->n > 0 ? &h->items[0] : NULL;
}

void *pl_heap_pop(struct pl_heap *h)
{
    void *top;
    struct pl_heap_item last;
    size_t i = 0, child;

    if (h->n == 0)
        return NULL;
    top = h->items[0].value;
    last = h->items[--h->n];
    /* the last item goes in at the root and down, each smaller child moving up */
    while ((child = 2 * i + 1) < h->n) {
        if (child + 1 < h->n && h->items[child + 1].key < h->items[child].key)
            child++;
        if (last.key <= h->items[child].key)
            break;
        h->items[i] = h->items[child];
        i = child;
    }
    if (h->n > 0)
        h->items[i] = last;
    return top;
}

void pl_heap_free(struct pl_heap *h)
{
    free(h->items);
    h->items = NULL;
    h->n = h->cap = 0;
}
