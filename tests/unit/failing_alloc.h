/* failing_alloc.h - jansson's allocator made to fail at its Nth call, for the tests that run a
 * parse once for every N until it succeeds and check that each failure is a clean "oom". */
#ifndef PL_FAILING_ALLOC_H
#define PL_FAILING_ALLOC_H

#include <jansson.h>
#include <stdlib.h>

static long alloc_budget = -1; /* allocations left; -1: unlimited */

static void *failing_malloc(size_t n)
{
    if (alloc_budget == 0)
        return NULL;
    if (alloc_budget > 0)
        alloc_budget--;
    return malloc(n);
}

/* From now on jansson's allocations fail after n more succeed; n < 0 restores malloc. */
static inline void fail_jansson_after(long n)
{
    alloc_budget = n;
    json_set_alloc_funcs(n < 0 ? malloc : failing_malloc, free);
}

#endif
