/* SPDX-License-Identifier: MIT */
/*
 * SIGINT/SIGTERM during a run: the first asks the run loop to stop, drain and write; a second
 * one (a final drain that hangs, a user who does not want to wait) quits at once.
 */
#ifndef AP_SIGNALS_H
#define AP_SIGNALS_H

#include <stdbool.h>

/* Called from the signal handler just before a forced quit: async-signal-safe calls only
 * (unlink, write). */
typedef void (*ap_signals_quit_fn)(void);

/* Install the handlers (prog names the messages). Forgets a stop asked for by an earlier
 * run in this process. */
void ap_signals_install(const char *prog, ap_signals_quit_fn on_quit);

/* True once SIGINT or SIGTERM was received. */
bool ap_signals_stop_requested(void);

/* Exit status of a forced quit: 128 + the signal, as a shell reports a death by signal. */
#define AP_EXIT_SIGNAL_BASE 128

#endif
