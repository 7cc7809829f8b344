/*
 * fuzz.h - what the fuzz harnesses and their replay driver share.
 *
 * Each harness (fuzz_reader.c, fuzz_supp.c) defines LLVMFuzzerTestOneInput.
 * `make fuzz` links it with libFuzzer (clang -fsanitize=fuzzer); `make
 * check` links it with replay.c (gcc), which feeds it every file of the
 * committed corpus and of the regressions, so a crash found once stays
 * fixed. A harness returns 0 for any input; a bug aborts.
 */
#ifndef MEMPROF_FUZZ_H
#define MEMPROF_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * A broken property of the code under test: report it and abort, so that
 * libFuzzer saves the input and the replay driver fails. Not assert(): it
 * must hold in every build.
 */
#define FUZZ_CHECK(cond)                                                  \
	do {                                                              \
		if (!(cond)) {                                            \
			fprintf(stderr, "%s:%d: fuzz check failed: %s\n", \
				__FILE__, __LINE__, #cond);               \
			abort();                                          \
		}                                                         \
	} while (0)

#endif
