/* chat.h - `parley chat`: an interactive terminal conversation with a channel's real scenario
 * (sandbox provider in-process, a fresh state, a clock /wait can move). */
#ifndef PL_CHAT_H
#define PL_CHAT_H

#include "config.h"

/* Talk to channel (NULL: the first) of cfg as contact from (NULL: 79991234567) with profile
 * name name (may be NULL), reading lines from stdin (with line editing on a terminal). cfg's
 * provider and state are replaced for the session. Returns the exit status. */
int pl_chat_run(struct pl_config *cfg, const char *channel, const char *from, const char *name,
                const char *stdlib_dir);

#endif
