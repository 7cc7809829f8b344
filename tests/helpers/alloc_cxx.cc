// alloc_cxx.cc - C++ under the shim: a static constructor that allocates
// before main, new/delete, std containers and exceptions, built with -O2.
#include <cstdio>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace demo {

struct Registry {
	char *table;
	__attribute__((noinline)) Registry() : table(new char[777]) {}
};

} // namespace demo

static demo::Registry registry; // allocates before main: 777 bytes kept

struct Widget {
	long a, b, c, d; // 32 bytes
	virtual ~Widget() {}
	virtual long sum() const { return a + b + c + d; }
};

static std::vector<Widget *> widgets;

__attribute__((noinline)) void make_widgets(int n)
{
	for (int i = 0; i < n; i++)
		widgets.push_back(new Widget{});
}

__attribute__((noinline)) long churn_strings(int n)
{
	std::map<std::string, int> m;
	for (int i = 0; i < n; i++)
		m[std::string(40, char('a' + i % 26)) + std::to_string(i)] = i;
	return (long)m.size();
}

__attribute__((noinline)) int throw_and_catch(int n)
{
	int caught = 0;
	for (int i = 0; i < n; i++) {
		try {
			throw std::runtime_error("memprof test exception " +
						 std::to_string(i));
		} catch (const std::exception &e) {
			caught += e.what()[0] == 'm';
		}
	}
	return caught;
}

int main()
{
	make_widgets(16);
	long s = churn_strings(200);
	int c = throw_and_catch(50);
	std::printf("alloc_cxx: %zu widgets, %ld strings, %d caught, %d\n",
		    widgets.size(), s, c, registry.table != nullptr);
	return 0;
}
