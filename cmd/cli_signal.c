/*
 * cli_signal.c - signal names for record --snapshot-signal and snapshot.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"

static const struct {
	const char *name;
	int sig;
} signals[] = {
	{"HUP", SIGHUP},     {"INT", SIGINT},	{"QUIT", SIGQUIT},
	{"USR1", SIGUSR1},   {"USR2", SIGUSR2}, {"ALRM", SIGALRM},
	{"TERM", SIGTERM},   {"CHLD", SIGCHLD}, {"CONT", SIGCONT},
	{"WINCH", SIGWINCH}, {"PROF", SIGPROF}, {"URG", SIGURG},
};

int cli_parse_signal(const char *s)
{
	char *end;
	if (*s >= '0' && *s <= '9') {
		long v = strtol(s, &end, 10);
		return (*end || v <= 0 || v >= NSIG) ? -1 : (int)v;
	}
	if (!strncasecmp(s, "SIG", 3))
		s += 3;
	for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++)
		if (!strcasecmp(s, signals[i].name))
			return signals[i].sig;
	if (!strncasecmp(s, "RTMIN", 5)) {
		long off = 0;
		if (s[5] == '+') {
			if (s[6] < '0' || s[6] > '9')
				return -1;
			off = strtol(s + 6, &end, 10);
			if (*end)
				return -1;
		} else if (s[5]) {
			return -1;
		}
		int v = SIGRTMIN + (int)off;
		return v <= SIGRTMAX ? v : -1;
	}
	return -1;
}
