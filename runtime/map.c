/* map.c - string-keyed chained hash map with FNV-1a hashing; doubles at load factor 1. */
#include "map.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct entry {
    struct entry *next;
    uint32_t hash;
    void *value;
    char key[];
};

struct pl_map {
    struct entry **slots;
    size_t nslots, size;
};

static uint32_t fnv(const char *s)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h;
}

struct pl_map *pl_map_new(void)
{
    struct pl_map *m = calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    m->nslots = 64;
    m->slots = calloc(m->nslots, sizeof *m->slots);
    if (m->slots == NULL) {
        free(m);
        return NULL;
    }
    return m;
}

void pl_map_free(struct pl_map *m, void (*free_value)(void *))
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->nslots; i++)
        while (m->slots[i] != NULL) {
            struct entry *e = m->slots[i];
            m->slots[i] = e->next;
            if (free_value != NULL)
                free_value(e->value);
            free(e);
        }
    free(m->slots);
    free(m);
}

static struct entry **find(const struct pl_map *m, const char *key, uint32_t h)
{
    struct entry **pp = &m->slots[h & (m->nslots - 1)];
    while (*pp != NULL && ((*pp)->hash != h || strcmp((*pp)->key, key) != 0))
        pp = &(*pp)->next;
    return pp;
}

void *pl_map_get(const struct pl_map *m, const char *key)
{
    struct entry *e = *find(m, key, fnv(key));
    return e != NULL ? e->value : NULL;
}

static void grow(struct pl_map *m)
{
    size_t n = m->nslots * 2;
    struct entry **slots = calloc(n, sizeof *slots);
    if (slots == NULL)
        return; /* stay at this size: slower, still correct */
    for (size_t i = 0; i < m->nslots; i++)
        while (m->slots[i] != NULL) {
            struct entry *e = m->slots[i];
            m->slots[i] = e->next;
            e->next = slots[e->hash & (n - 1)];
            slots[e->hash & (n - 1)] = e;
        }
    free(m->slots);
    m->slots = slots;
    m->nslots = n;
}

int pl_map_set(struct pl_map *m, const char *key, void *value, void **old)
{
    uint32_t h = fnv(key);
    struct entry **pp = find(m, key, h), *e;
    size_t klen;

    if (*pp != NULL) {
        if (old != NULL)
            *old = (*pp)->value;
        (*pp)->value = value;
        return 0;
    }
    klen = strlen(key);
    e = malloc(sizeof *e + klen + 1);
    if (e == NULL)
        return -1;
    memcpy(e->key, key, klen + 1);
    e->hash = h;
    e->value = value;
    e->next = NULL;
    *pp = e;
    if (old != NULL)
        *old = NULL;
    if (++m->size > m->nslots)
        grow(m);
    return 0;
}

void *pl_map_del(struct pl_map *m, const char *key)
{
    struct entry **pp = find(m, key, fnv(key)), *e = *pp;
    void *v;
    if (e == NULL)
        return NULL;
    *pp = e->next;
    v = e->value;
    free(e);
    m->size--;
    return v;
}

void pl_map_each(const struct pl_map *m, void (*fn)(void *ud, const char *key, void *value),
                 void *ud)
{
    for (size_t i = 0; i < m->nslots; i++)
        for (struct entry *e = m->slots[i]; e != NULL; e = e->next)
            fn(ud, e->key, e->value);
}
