/*
 * symbolize_fixture.c - call sites with known lines for the symbolize tests.
 *
 * Built with the unit tests' flags (-O2 -g), so everything that must keep
 * its shape says so: noinline, and an empty asm after each call so that the
 * call is not turned into a tail call (which leaves no return address in
 * the caller). Each line variable is set on the same source line as the
 * call it describes.
 */
/* The tests assert source lines of this file: keep its layout. */
/* clang-format off */
#include "symbolize_fixture.h"

volatile uintptr_t symfix_pc;
volatile int symfix_line_plain;
volatile int symfix_line_inline_inner, symfix_line_inline_call;
volatile int symfix_line_cxx, symfix_line_alias;

__attribute__((noinline)) void symfix_record(void)
{
	symfix_pc = (uintptr_t)__builtin_return_address(0);
	__asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void symfix_plain(void)
{
	symfix_line_plain = __LINE__; symfix_record();
	__asm__ volatile("" ::: "memory");
}

static inline __attribute__((always_inline)) void symfix_inl(void)
{
	symfix_line_inline_inner = __LINE__; symfix_record();
	__asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void symfix_inline_caller(void)
{
	symfix_line_inline_call = __LINE__; symfix_inl();
	__asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void symfix_cxx(int x)
{
	__asm__ volatile("" : : "r"(x) : "memory");
	symfix_line_cxx = __LINE__; symfix_record();
	__asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void symfix_alias(void)
{
	symfix_line_alias = __LINE__; symfix_record();
	__asm__ volatile("" ::: "memory");
}

#if defined(__x86_64__)
/*
 * No DWARF describes this function, so the symbolizer must fall back to
 * the ELF symbol table. The CFI keeps unwinders (and Criterion) sane.
 */
__asm__(".text\n"
	".globl _ZN7memprof9asm_thunkEv\n"
	".type _ZN7memprof9asm_thunkEv, @function\n"
	"_ZN7memprof9asm_thunkEv:\n"
	"	.cfi_startproc\n"
	"	subq $8, %rsp\n"
	"	.cfi_adjust_cfa_offset 8\n"
	"	call symfix_record@PLT\n"
	"	addq $8, %rsp\n"
	"	.cfi_adjust_cfa_offset -8\n"
	"	ret\n"
	"	.cfi_endproc\n"
	".size _ZN7memprof9asm_thunkEv, .-_ZN7memprof9asm_thunkEv\n");
#endif
