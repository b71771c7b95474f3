// Must not compile: device storage without the CUDA memory header <slim/backend/cuda/memory.cuh>.
#include <slim/core/tensor.hpp>

void misuse() { slim::tensor<float, 2, slim::device_space> t({2, 3}); }
