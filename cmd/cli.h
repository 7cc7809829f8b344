/*
 * cli.h - what the subcommands of the memprof executable share.
 *
 * cmd/ parses options, calls lib/ and prints; analysis lives in lib/trace.
 * Each subcommand is int cmd_<name>(int argc, char **argv) with argv[0] the
 * subcommand's name, and returns the process exit status:
 * 0 ok, 1 a finding (check), 2 usage or input error.
 */
#ifndef MEMPROF_CLI_H
#define MEMPROF_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "memprof_trace.h"

#define MP_EXIT_OK 0
#define MP_EXIT_FINDING 1
#define MP_EXIT_USAGE 2

int cmd_record(int argc, char **argv);
int cmd_top(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_symbolize(int argc, char **argv);
int cmd_leaks(int argc, char **argv);
int cmd_snapshot(int argc, char **argv);
int cmd_check(int argc, char **argv);

/* Symbolizes the snapshot at path with this machine's binaries and
 * rewrites it with the symbols embedded. Prints one line on failure
 * (unless quiet) and returns -1; the file is then left as it was. */
int cli_symbolize_file(const char *path, bool quiet);

/* "memprof: " + message + newline on stderr (git's style: lowercase, no
 * full stop). Returns MP_EXIT_USAGE so callers can `return cli_error(..)`. */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Opens a snapshot or prints "memprof: cannot read 'F': <where>" and
 * returns NULL. */
struct mp_snapshot *cli_open_snapshot(const char *path);

/* Parses "123", "4K", "1.5M", "2G" (powers of 1024). false on error. */
bool cli_parse_size(const char *s, uint64_t *out);
/* Formats bytes for people: "512 B", "4.0 KiB", "12 MiB" (tracemalloc's
 * rules). buf must hold 32 bytes; returns buf. */
const char *cli_format_size(uint64_t bytes, char *buf);

/* A signal by name ("USR2", "SIGUSR2", "RTMIN+3") or number; -1 if
 * neither. */
int cli_parse_signal(const char *s);

/* Whether stderr is a terminal (progress output only then). */
bool cli_stderr_is_tty(void);

#endif
