/* watch.h - file-change notices for hot reload (inotify). Watches the folder of each file, not
 * the file, so editors that save by writing a new file and renaming it over the old one are
 * seen too. Each watched file carries a tag (the owner's index); a change reports the tags. */
#ifndef PL_WATCH_H
#define PL_WATCH_H

#include <stddef.h>

#include "error.h"

struct pl_watch;

/* A new watcher, or NULL with err (no inotify). */
struct pl_watch *pl_watch_new(struct pl_error *err);

void pl_watch_free(struct pl_watch *w);

/* The descriptor to poll for readability. */
int pl_watch_fd(const struct pl_watch *w);

/* Watch path for tag. Returns 0, or -1 with err (its folder cannot be watched). */
int pl_watch_add(struct pl_watch *w, const char *path, int tag, struct pl_error *err);

/* Stop reporting changes for tag (its files are forgotten). */
void pl_watch_forget(struct pl_watch *w, int tag);

/* Read pending notices without blocking; calls fn once per (tag) whose file changed. Returns
 * the number of notices read. */
int pl_watch_read(struct pl_watch *w, void (*fn)(void *ud, int tag), void *ud);

#endif
