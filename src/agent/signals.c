// SPDX-License-Identifier: MIT
/* SIGINT/SIGTERM: the first stops the run cleanly, the second quits without waiting. */
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "signals.h"

static volatile sig_atomic_t stop_requested;
static const char *signal_prog = "aperture-agent";
static ap_signals_quit_fn quit_fn;

static void say(const char *s)
{
	ssize_t r = write(STDERR_FILENO, s, strlen(s));

	(void)r; /* nothing to do about a failed message on the way out */
}

static void on_signal(int sig)
{
	if (!stop_requested) {
		stop_requested = 1;
		return;
	}
	/* The run was already stopping: the final drain, symbolization or the write is taking
	 * too long for the user. Quit now; the output is not written (an older file at the
	 * output path is left as it was) and the kernel detaches the BPF programs when the
	 * process's descriptors close. */
	if (quit_fn)
		quit_fn();
	say(signal_prog);
	say(": second signal: quitting without writing the profile\n");
	_exit(AP_EXIT_SIGNAL_BASE + sig);
}

void ap_signals_install(const char *prog, ap_signals_quit_fn on_quit)
{
	struct sigaction sa = { 0 };

	signal_prog = prog;
	quit_fn = on_quit;
	stop_requested = 0;
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	/* one handler at a time: a burst of signals counts one by one */
	sigaddset(&sa.sa_mask, SIGINT);
	sigaddset(&sa.sa_mask, SIGTERM);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

bool ap_signals_stop_requested(void)
{
	return stop_requested != 0;
}
