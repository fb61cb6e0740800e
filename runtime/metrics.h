/* metrics.h - process-wide counters and gauges, rendered in Prometheus text format for
 * GET /metrics. Thread-safe. Every metric name is declared in metrics.c's table with its help
 * text and type; using an undeclared name is a programming error (ignored, logged once). */
#ifndef PL_METRICS_H
#define PL_METRICS_H

#include <stddef.h>

/* Add v to the counter `name` with the label set `labels` (preformatted Prometheus labels
 * without braces, e.g. `channel="demo",type="text"`; "" for none). */
void pl_metrics_add(const char *name, const char *labels, double v);

/* Set the gauge `name`{labels} to v. */
void pl_metrics_set(const char *name, const char *labels, double v);

/* Remove every series of `name` whose labels contain `match` (e.g. a channel being removed). */
void pl_metrics_drop(const char *name, const char *match);

/* Render everything into a malloc'd NUL-terminated string (caller frees); NULL on OOM. */
char *pl_metrics_render(size_t *len);

/* Free every series (at exit, so leak checkers stay quiet). */
void pl_metrics_reset(void);

#endif
