/*
 * symbolize_fixture.h - functions of known shape for the symbolize tests:
 * each stores a return address that lands in it (in symfix_pc) and the
 * source line of that call (in the symfix_line_* it names).
 */
#ifndef MEMPROF_SYMBOLIZE_FIXTURE_H
#define MEMPROF_SYMBOLIZE_FIXTURE_H

#include <stdint.h>

extern volatile uintptr_t symfix_pc;
extern volatile int symfix_line_plain;
extern volatile int symfix_line_inline_inner, symfix_line_inline_call;
extern volatile int symfix_line_cxx, symfix_line_alias;

/* Stores its own return address in symfix_pc. */
void symfix_record(void);
/* Calls symfix_record() directly, at line symfix_line_plain. */
void symfix_plain(void);
/* Calls it from symfix_inl(), always inlined into this function. */
void symfix_inline_caller(void);
/* A C function under a C++ mangled name: memprof::fixture(int). */
void symfix_cxx(int x) __asm__("_ZN7memprof7fixtureEi");
/* A C function under a plain assembler name (glibc's __GI_ aliases). */
void symfix_alias(void) __asm__("symfix_alias_asm");
#if defined(__x86_64__)
/* Hand-written assembly without DWARF: memprof::asm_thunk(). */
void symfix_asm_thunk(void) __asm__("_ZN7memprof9asm_thunkEv");
#endif

#endif
