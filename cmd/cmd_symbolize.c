/*
 * cmd_symbolize.c - memprof symbolize: embed symbols into snapshots.
 *
 * For files recorded with --no-symbols or written by the shim without
 * `record` (LD_PRELOAD by hand, forked children): resolves every return
 * address with libdw from the binaries on this machine and rewrites the
 * file in place (through a temporary file, so a failure keeps the old one).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char symbolize_usage[] =
	"usage: memprof symbolize [-q] FILE...\n"
	"\n"
	"Adds function, file and line information to each snapshot, read from\n"
	"the program's binaries and debug info on this machine, and embeds it\n"
	"in the file. Binaries whose build-id changed since the recording are\n"
	"skipped, so a rebuilt program never gives wrong lines. What each\n"
	"build-id's addresses resolve to is kept in ~/.cache/memprof/symbols\n"
	"(MEMPROF_SYMBOL_CACHE=DIR elsewhere, =off not at all), so that the\n"
	"next snapshot of the same libraries needs none of their debug info.\n"
	"\n"
	"  -q, --quiet   no message per file\n"
	"  -h, --help    show this help\n";

struct mp_symcache *cli_symcache_new(void)
{
	struct mp_symcache *cache = mp_symcache_new();
	if (!cache)
		return NULL;
	/* MEMPROF_SYMBOL_CACHE: a directory, or "off"; by default under
	 * $XDG_CACHE_HOME, as the XDG base directory spec puts caches. */
	const char *env = getenv("MEMPROF_SYMBOL_CACHE");
	const char *xdg = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");
	char dir[4096] = "";
	if (env && *env) {
		if (strcmp(env, "off") != 0)
			snprintf(dir, sizeof(dir), "%s", env);
	} else if (xdg && xdg[0] == '/') {
		snprintf(dir, sizeof(dir), "%s/memprof/symbols", xdg);
	} else if (home && home[0] == '/') {
		snprintf(dir, sizeof(dir), "%s/.cache/memprof/symbols", home);
	}
	if (dir[0] && !mp_symcache_set_dir(cache, dir)) {
		mp_symcache_free(cache);
		return NULL;
	}
	return cache;
}

int cli_symbolize_file(const char *path, struct mp_symcache *cache, bool quiet)
{
	struct mp_snapshot *snap = cli_open_snapshot(path);
	if (!snap)
		return -1;
	struct mp_errinfo ei = {{0}};
	enum mp_err err = cache ? mp_symbolize_cached(snap, cache, &ei)
				: mp_symbolize(snap, &ei);
	if (err == MP_OK)
		err = mp_snapshot_save(snap, path, &ei);
	if (err != MP_OK && !quiet)
		cli_error("cannot symbolize '%s': %s (the snapshot is kept "
			  "without symbols)",
			  path, ei.msg[0] ? ei.msg : mp_strerror(err));
	mp_snapshot_free(snap);
	return err == MP_OK ? 0 : -1;
}

int cmd_symbolize(int argc, char **argv)
{
	static const struct option opts[] = {
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	bool quiet = false;
	int c;
	opterr = 0;
	optind = 0;
	while ((c = getopt_long(argc, argv, "qh", opts, NULL)) != -1) {
		switch (c) {
		case 'q':
			quiet = true;
			cli_progress_off();
			break;
		case 'h': fputs(symbolize_usage, stdout); return MP_EXIT_OK;
		default:
			return cli_error("symbolize: unknown option '%s'; see "
					 "'memprof symbolize --help'",
					 argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return cli_error("symbolize: no snapshot file given; see "
				 "'memprof symbolize --help'");
	/* One cache: files of one program share its modules' debuginfo. */
	struct mp_symcache *cache = cli_symcache_new();
	if (!cache)
		return cli_error("out of memory");
	int status = MP_EXIT_OK;
	for (int i = optind; i < argc; i++) {
		if (cli_symbolize_file(argv[i], cache, quiet) != 0)
			status = MP_EXIT_USAGE;
		else if (!quiet)
			fprintf(stderr, "memprof: symbolized %s\n", argv[i]);
	}
	mp_symcache_free(cache);
	return status;
}
