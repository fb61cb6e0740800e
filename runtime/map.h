/* map.h - a string-keyed hash map of borrowed pointers (chained, grows by doubling). Not
 * thread-safe; each owner guards its own. Keys are copied; values belong to the caller. */
#ifndef PL_MAP_H
#define PL_MAP_H

#include <stddef.h>

struct pl_map;

/* A new empty map, or NULL on OOM. */
struct pl_map *pl_map_new(void);

/* Free the map and its key copies; free_value (may be NULL) is called on every value. */
void pl_map_free(struct pl_map *m, void (*free_value)(void *));

/* The value for key, or NULL. */
void *pl_map_get(const struct pl_map *m, const char *key);

/* Set key to value (replacing and returning the old value through *old when not NULL).
 * Returns 0, or -1 on OOM (the map is unchanged). */
int pl_map_set(struct pl_map *m, const char *key, void *value, void **old);

/* Remove key; returns its value or NULL. */
void *pl_map_del(struct pl_map *m, const char *key);

/* Call fn for every entry (the map must not change meanwhile). */
void pl_map_each(const struct pl_map *m, void (*fn)(void *ud, const char *key, void *value),
                 void *ud);

#endif
