/*
 * cli_print.c - the wording the subcommands share: counts parsed from
 * options, numbers and plurals for people, and frames, groups and snapshot
 * origins printed the same way by top, diff, leaks and check.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

bool cli_parse_count(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v > max)
		return false;
	*out = v;
	return true;
}

const char *cli_base_name(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash && slash[1] ? slash + 1 : path;
}

const char *cli_commas(uint64_t v, char *buf)
{
	char tmp[32];
	int n = snprintf(tmp, sizeof(tmp), "%" PRIu64, v);
	char *o = buf;
	for (int i = 0; i < n; i++) {
		if (i > 0 && (n - i) % 3 == 0)
			*o++ = ',';
		*o++ = tmp[i];
	}
	*o = '\0';
	return buf;
}

const char *cli_plural(uint64_t n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

void cli_print_module_suffix(FILE *out, const struct mp_resolved_frame *f)
{
	if (f->module)
		fprintf(out, " (%s)", cli_base_name(f->module));
}

void cli_print_unknown(FILE *out, const struct mp_resolved_frame *f)
{
	if (f->address)
		fprintf(out, "0x%" PRIx64, f->address);
	else
		fputs("<unknown>", out);
	cli_print_module_suffix(out, f);
}

void cli_print_label(FILE *out, const struct mp_resolved_frame *frames,
		     size_t nframes, enum mp_group_by by)
{
	if (nframes == 0) {
		fputs("<unknown>", out);
		return;
	}
	const struct mp_resolved_frame *f = &frames[0];
	switch (by) {
	case MP_GROUP_MODULE:
		fputs(f->module ? cli_base_name(f->module) : "<unknown module>",
		      out);
		return;
	case MP_GROUP_FILE:
		if (f->file)
			fputs(cli_base_name(f->file), out);
		else
			cli_print_unknown(out, f);
		return;
	case MP_GROUP_FUNCTION:
		if (!f->function) {
			cli_print_unknown(out, f);
		} else {
			fputs(f->function, out);
			if (f->file)
				fprintf(out, " (%s)", cli_base_name(f->file));
			else
				cli_print_module_suffix(out, f);
		}
		return;
	default: break;
	}
	if (f->file) {
		fputs(cli_base_name(f->file), out);
		if (f->line)
			fprintf(out, ":%" PRIu32, f->line);
		if (f->function)
			fprintf(out, " in %s", f->function);
	} else if (f->function) {
		fputs(f->function, out);
		cli_print_module_suffix(out, f);
	} else {
		cli_print_unknown(out, f);
	}
}

void cli_print_frame_line(FILE *out, const struct mp_resolved_frame *f)
{
	fputs("    at ", out);
	if (!f->function) {
		cli_print_unknown(out, f);
	} else if (f->file) {
		fprintf(out, "%s (%s", f->function, cli_base_name(f->file));
		if (f->line)
			fprintf(out, ":%" PRIu32, f->line);
		fputc(')', out);
	} else {
		fputs(f->function, out);
		cli_print_module_suffix(out, f);
	}
	fputc('\n', out);
}

void cli_print_origin(FILE *out, const struct mp_meta *m)
{
	const char *prog = m->argc && m->argv && m->argv[0] ? m->argv[0]
			   : m->exe			    ? m->exe
							    : "unknown program";
	fprintf(out, "%s, pid %" PRIu64 ", %s snapshot", prog, m->pid,
		m->trigger ? m->trigger : "unknown");
	if (m->name)
		fprintf(out, " '%s'", m->name);
	if (m->seq)
		fprintf(out, " #%" PRIu64, m->seq);
}

void cli_frames_init(struct cli_frames *f)
{
	memset(f, 0, sizeof(*f));
	f->alloc.globs = f->globs;
	f->flt.f = f->filters;
}

int cli_frames_option(struct cli_frames *f, const char *cmd, int c,
		      const char *arg)
{
	switch (c) {
	case 'A':
		if (f->alloc.nglobs == CLI_MAX_ALLOC_FNS) {
			cli_error("%s: more than %d --alloc-fn", cmd,
				  CLI_MAX_ALLOC_FNS);
			return -1;
		}
		f->globs[f->alloc.nglobs++] = arg;
		return 1;
	case 'I':
	case 'X':
		if (f->flt.n == CLI_MAX_FILTERS) {
			cli_error("%s: more than %d --include and --exclude",
				  cmd, CLI_MAX_FILTERS);
			return -1;
		}
		f->filters[f->flt.n].inclusive = c == 'I';
		f->filters[f->flt.n++].glob = arg;
		return 1;
	case 'F': f->flt.all_frames = true; return 1;
	default: return 0;
	}
}

int cli_bad_option(const char *cmd, int c, char **argv)
{
	if (c == ':')
		return cli_error("%s: option '%s' needs a value", cmd,
				 argv[optind - 1]);
	if (optopt)
		return cli_error("%s: unknown option '-%c'; see 'memprof %s "
				 "--help'",
				 cmd, optopt, cmd);
	return cli_error("%s: unknown option '%s'; see 'memprof %s --help'",
			 cmd, argv[optind - 1], cmd);
}
