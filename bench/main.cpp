// The benchmark driver (the executable links benchmark::benchmark, not benchmark_main).
#include <benchmark/benchmark.h>

BENCHMARK_MAIN();
