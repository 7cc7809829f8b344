/*
 * cli_target.c - whether the shim can be preloaded into a program at all,
 * asked by `memprof record` before it runs the program.
 *
 * The dynamic loader preloads nothing into a program it does not run
 * (statically linked, static-pie included: no PT_INTERP), cannot load a
 * 64-bit shim into a program of another ELF class or machine, and ignores
 * LD_PRELOAD paths in secure-execution mode (AT_SECURE), which the kernel
 * sets when exec changes the effective user or group: a set-user-ID
 * program owned by another user than the caller's real one, or
 * set-group-ID to another group than its real one, root included (root
 * running a set-user-ID root program is still traced: nothing changes).
 * For a caller other than root, file capabilities do the same. The set-ID
 * bits do nothing on a nosuid mount or under no_new_privs. Such programs
 * would run untraced, and record would find no snapshot: it says why
 * before it runs them. Reads the file only; never prints but through
 * cli_error.
 */
#include <elf.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "cli.h"

/* What the ELF header and program headers say; NULL when nothing stops
 * the shim. */
static const char *elf_reason(int fd)
{
	unsigned char ident[EI_NIDENT];
	if (pread(fd, ident, sizeof(ident), 0) != (ssize_t)sizeof(ident) ||
	    memcmp(ident, ELFMAG, SELFMAG) != 0)
		return NULL; /* a script: its interpreter is what runs */
	if (ident[EI_CLASS] != ELFCLASS64)
		return "it is a 32-bit program and the shim is 64-bit";
	Elf64_Ehdr eh;
	if (pread(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh))
		return NULL;
	if (eh.e_machine != EM_X86_64)
		return "it is built for another machine than the shim "
		       "(x86-64)";
	if (eh.e_phnum >= 4096 || eh.e_phentsize < sizeof(Elf64_Phdr))
		return NULL;
	for (int i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;
		if (pread(fd, &ph, sizeof(ph),
			  (off_t)(eh.e_phoff + (uint64_t)i * eh.e_phentsize)) !=
		    (ssize_t)sizeof(ph))
			return NULL;
		if (ph.p_type == PT_INTERP)
			return NULL;
	}
	/* Without an interpreter the kernel starts the program itself and
	 * ld.so never reads LD_PRELOAD (static and static-pie). */
	return "it is statically linked, so no shim can be preloaded into it";
}

/* Whether exec of a file with st's set-ID bits changes this process's
 * identity (and so turns on secure-execution mode). */
static bool set_id_applies(const char *path)
{
	struct statvfs vfs;
	if (statvfs(path, &vfs) == 0 && (vfs.f_flag & ST_NOSUID))
		return false;
	return prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1;
}

const char *cli_untraceable_reason(const char *path, char *buf, size_t cap)
{
	struct stat st;
	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
		return NULL; /* exec will say what is wrong */
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		const char *why = elf_reason(fd);
		close(fd);
		if (why) {
			snprintf(buf, cap, "%s", why);
			return buf;
		}
	}
	const char *tail =
		"so the dynamic loader runs it in secure-execution mode and "
		"ignores LD_PRELOAD";
	if ((st.st_mode & S_ISUID) && st.st_uid != getuid() &&
	    set_id_applies(path)) {
		const struct passwd *pw = getpwuid(st.st_uid);
		char id[64];
		if (pw)
			snprintf(id, sizeof(id), "%s", pw->pw_name);
		else
			snprintf(id, sizeof(id), "uid %u", (unsigned)st.st_uid);
		snprintf(buf, cap,
			 "it is set-user-ID %s, %s; run memprof as %s, or "
			 "trace a copy without the set-user-ID bit",
			 id, tail, id);
		return buf;
	}
	/* Set-group-ID without group execute permission is mandatory
	 * locking, not a set-ID program. */
	if ((st.st_mode & S_ISGID) && (st.st_mode & S_IXGRP) &&
	    st.st_gid != getgid() && set_id_applies(path)) {
		const struct group *gr = getgrgid(st.st_gid);
		char id[64];
		if (gr)
			snprintf(id, sizeof(id), "%s", gr->gr_name);
		else
			snprintf(id, sizeof(id), "gid %u", (unsigned)st.st_gid);
		snprintf(buf, cap,
			 "it is set-group-ID %s, %s; run memprof with %s as "
			 "real group, or trace a copy without the "
			 "set-group-ID bit",
			 id, tail, id);
		return buf;
	}
	if (getuid() != 0 &&
	    getxattr(path, "security.capability", NULL, 0) > 0) {
		snprintf(buf, cap,
			 "it has file capabilities, %s; trace a copy "
			 "without them",
			 tail);
		return buf;
	}
	return NULL;
}

int cli_check_traceable(const char *path, const char *shown)
{
	char buf[512];
	const char *why = cli_untraceable_reason(path, buf, sizeof(buf));
	if (!why)
		return 0;
	return cli_error("cannot trace '%s': %s", shown ? shown : path, why);
}
