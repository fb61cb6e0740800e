/* watch.c - inotify on the folders that hold watched files; a notice for a name in a folder
 * is matched against the files registered there, and their tags are reported. */
#include "watch.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#define MASK (IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_ATTRIB)

struct file {
    struct file *next;
    int wd, tag;
    char *name; /* the file's name within its folder */
};

struct pl_watch {
    int fd;
    struct file *files;
};

struct pl_watch *pl_watch_new(struct pl_error *err)
{
    struct pl_watch *w = calloc(1, sizeof *w);
    if (w == NULL) {
        pl_error_set(err, "io", "out of memory");
        return NULL;
    }
    w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (w->fd < 0) {
        pl_error_set(err, "io", "inotify: %s", strerror(errno));
        free(w);
        return NULL;
    }
    return w;
}

void pl_watch_free(struct pl_watch *w)
{
    if (w == NULL)
        return;
    while (w->files != NULL) {
        struct file *f = w->files;
        w->files = f->next;
        free(f->name);
        free(f);
    }
    close(w->fd);
    free(w);
}

int pl_watch_fd(const struct pl_watch *w)
{
    return w->fd;
}

int pl_watch_add(struct pl_watch *w, const char *path, int tag, struct pl_error *err)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    struct file *f;
    int wd;

    if (slash == NULL)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    /* inotify returns the same wd for a folder watched twice */
    wd = inotify_add_watch(w->fd, dir, MASK);
    if (wd < 0)
        return pl_error_set(err, "io", "watch %s: %s", dir, strerror(errno));
    f = calloc(1, sizeof *f);
    if (f == NULL || (f->name = strdup(slash != NULL ? slash + 1 : path)) == NULL) {
        free(f);
        return pl_error_set(err, "io", "out of memory");
    }
    f->wd = wd;
    f->tag = tag;
    f->next = w->files;
    w->files = f;
    return 0;
}

void pl_watch_forget(struct pl_watch *w, int tag)
{
    struct file **pp = &w->files;
    while (*pp != NULL) {
        struct file *f = *pp;
        if (f->tag == tag) {
            *pp = f->next;
            free(f->name);
            free(f);
        } else {
            pp = &f->next;
        }
    }
    /* folder watches stay: they cost one descriptor slot each and are shared */
}

int pl_watch_read(struct pl_watch *w, void (*fn)(void *ud, int tag), void *ud)
{
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    int count = 0;

    for (;;) {
        ssize_t n = read(w->fd, buf, sizeof buf);
        if (n <= 0)
            break;
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            p += sizeof *ev + ev->len;
            count++;
            if (ev->mask & IN_Q_OVERFLOW) { /* notices were lost: assume everything changed */
                for (struct file *f = w->files; f != NULL; f = f->next)
                    fn(ud, f->tag);
                continue;
            }
            if (ev->len == 0)
                continue;
            for (struct file *f = w->files; f != NULL; f = f->next)
                if (f->wd == ev->wd && strcmp(f->name, ev->name) == 0)
                    fn(ud, f->tag);
        }
    }
    return count;
}
