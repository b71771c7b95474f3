#include "bench_common.hpp"
