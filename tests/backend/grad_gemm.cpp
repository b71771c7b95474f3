// Gradient checks (gemm): kernels<scalar> backward ops against central differences in double.
#include "slim/backend/scalar.hpp"
#include "support/check.hpp"
