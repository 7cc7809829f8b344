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
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

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
int cmd_export(int argc, char **argv);
int cmd_report(int argc, char **argv);

/* Symbolizes the snapshot at path with this machine's binaries, loaded
 * into cache (which may already hold some), and rewrites it with the
 * symbols embedded. Prints one line on failure (unless quiet) and returns
 * -1; the file is then left as it was. */
/* A symbol cache with its store directory from MEMPROF_SYMBOL_CACHE,
 * $XDG_CACHE_HOME or $HOME; NULL when out of memory. */
struct mp_symcache *cli_symcache_new(void);
int cli_symbolize_file(const char *path, struct mp_symcache *cache, bool quiet);

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

/* cli_target.c: whether the shim can be preloaded into the program at
 * path (resolved as execvp would; shown is how the user named it): 0 when
 * it can, or when path cannot be read (exec will say what is wrong); else
 * prints "memprof: cannot trace 'shown': <why>" and returns
 * MP_EXIT_USAGE. Refuses static programs, programs of another ELF class
 * or machine, and those that exec would run in secure-execution mode
 * (set-user-ID or set-group-ID to another user or group, file
 * capabilities), where the loader ignores LD_PRELOAD. */
int cli_check_traceable(const char *path, const char *shown);
/* The reason alone, written into buf (cap bytes) and returned; NULL when
 * the program can be traced. */
const char *cli_untraceable_reason(const char *path, char *buf, size_t cap);

/* Whether stderr is a terminal (progress output only then). */
bool cli_stderr_is_tty(void);

/* cli_progress.c: progress of long work on stderr, on a terminal only
 * (MEMPROF_PROGRESS_DELAY_MS: how long work runs before it shows, 500). */
void cli_progress_setup(void);
/* Erases the progress line if one is shown (before other output). */
void cli_progress_done(void);
/* No progress at all (--quiet). */
void cli_progress_off(void);

/*
 * What --alloc-fn, --include, --exclude and --all-frames select, the
 * options top, diff and export share. cli_frames_init before use; then
 * alloc and flt go into the library's options (they point into *f).
 */
#define CLI_MAX_ALLOC_FNS 64
#define CLI_MAX_FILTERS 64
struct cli_frames {
	const char *globs[CLI_MAX_ALLOC_FNS];
	struct mp_frame_filter filters[CLI_MAX_FILTERS];
	struct mp_alloc_filter alloc;
	struct mp_filters flt;
};
void cli_frames_init(struct cli_frames *f);
/*
 * Takes getopt's c for command cmd: 'A' --alloc-fn, 'I' --include, 'X'
 * --exclude, 'F' --all-frames. 1 when taken, 0 when c is none of them,
 * -1 after printing why arg is refused (too many).
 */
int cli_frames_option(struct cli_frames *f, const char *cmd, int c,
		      const char *arg);

/* cli_print.c: the wording the subcommands share. */
/* The error for getopt's ':' (missing value) or '?' (unknown option) in
 * command cmd; returns MP_EXIT_USAGE. */
int cli_bad_option(const char *cmd, int c, char **argv);

/* Parses a decimal count ("0", "42") of at most max. false on error. */
bool cli_parse_count(const char *s, uint64_t max, uint64_t *out);
/* What follows path's last '/' ("demo.c"); all of path if nothing does. */
const char *cli_base_name(const char *path);
/* "4,096": Valgrind's %'lu. buf must hold 32 bytes; returns buf. */
const char *cli_commas(uint64_t v, char *buf);
/* one when n is 1, else many. */
const char *cli_plural(uint64_t n, const char *one, const char *many);
/* " (libfoo.so)" when the frame's module is known, else nothing. */
void cli_print_module_suffix(FILE *out, const struct mp_resolved_frame *f);
/* An unknown frame: its address (<unknown> if several) and module suffix. */
void cli_print_unknown(FILE *out, const struct mp_resolved_frame *f);
/* The name of a group's key frame, frames[0], in the words of grouping by. */
void cli_print_label(FILE *out, const struct mp_resolved_frame *frames,
		     size_t nframes, enum mp_group_by by);
/* "    at make_buffer (demo.c:42)" and a newline. */
void cli_print_frame_line(FILE *out, const struct mp_resolved_frame *f);
/* "./demo, pid 1234, exit snapshot", plus " 'name'" and " #seq" if set. */
void cli_print_origin(FILE *out, const struct mp_meta *m);

#endif
