// slim — core configuration: index type, version, host/device annotation.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <string_view>

#if defined(__CUDACC__)
#define SLIM_HOST_DEVICE __host__ __device__
#else
#define SLIM_HOST_DEVICE
#endif

namespace slim {

/// Signed index and extent type used everywhere (like Eigen::Index / std::ptrdiff_t).
using index_t = std::ptrdiff_t;

/// Library version; kept in step with `project(slim VERSION ...)` in CMakeLists.txt.
inline constexpr int version_major = 0;
inline constexpr int version_minor = 1;
inline constexpr int version_patch = 0;
inline constexpr std::string_view version_string = "0.1.0";

/// A dependent `false` for static_asserts in primary templates that must never be instantiated.
template <class...>
inline constexpr bool always_false = false;

}  // namespace slim
