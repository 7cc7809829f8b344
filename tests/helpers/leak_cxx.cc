// leak_cxx.cc - C++ objects with vtables and std containers, leaked and
// kept: a leaked polymorphic object, a leaked vector (object and buffer),
// a leaked std::string (object and heap buffer), a global map that stays
// reachable, and a leaked list of three nodes.
#include <list>
#include <map>
#include <string>
#include <unistd.h>
#include <vector>

struct Shape {
	virtual ~Shape() {}
	virtual double area() const = 0;
};

struct Rect : Shape {
	double w = 2, h = 3;
	double area() const override { return w * h; }
};

std::map<int, std::string> *registry; // reachable through a global

__attribute__((noinline)) void leak_shape()
{
	Shape *s = new Rect;
	asm volatile("" : : "r"(s) : "memory");
}

__attribute__((noinline)) void leak_vector()
{
	auto *v = new std::vector<long>(100, 7);
	asm volatile("" : : "r"(v) : "memory");
}

__attribute__((noinline)) void leak_string()
{
	auto *s = new std::string(200, 'x');
	asm volatile("" : : "r"(s) : "memory");
}

__attribute__((noinline)) void leak_list()
{
	auto *l = new std::list<int>{1, 2, 3};
	asm volatile("" : : "r"(l) : "memory");
}

__attribute__((noinline)) void keep_registry()
{
	registry = new std::map<int, std::string>;
	for (int i = 0; i < 4; i++)
		(*registry)[i] = std::string(50, char('a' + i));
}

// Zeroes the dead stack below main's frame, where the allocations ran, so
// that no stale copy of a dropped pointer is left for the exit scan: inline
// in main (no frame gaps), the stack pointer moved down first so every
// write is to allocated stack (Valgrind checks that). x86-64 only.
#define SCRUB_DEAD_STACK()                                                    \
	asm volatile("sub $65536, %%rsp\n\t"                                 \
		     "mov %%rsp, %%rdi\n\t"                                 \
		     "mov $65536, %%rcx\n\t"                                \
		     "xor %%eax, %%eax\n\t"                                 \
		     "rep stosb\n\t"                                        \
		     "add $65536, %%rsp"                                      \
		     :                                                        \
		     :                                                        \
		     : "rdi", "rcx", "rax", "memory", "cc")

int main()
{
	leak_shape();
	leak_vector();
	leak_string();
	leak_list();
	keep_registry();
	SCRUB_DEAD_STACK();
	static const char msg[] = "leak_cxx done\n";
	return write(1, msg, sizeof(msg) - 1) < 0 || !registry;
}
