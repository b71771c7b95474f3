// `slim kernels`: option parsing, the table, the summary.
#include "tour.hpp"

#include <charconv>
#include <cstdio>

#include "commands.hpp"

namespace slim::cli {
namespace {

constexpr const char* row_format = "%-22s %-17s %-17s %9s %9s  %-4s %10s %14s\n";

std::string sci(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1e", v);
  return buf;
}
std::string duration(double s) {
  char buf[32];
  if (s < 1e-6)
    std::snprintf(buf, sizeof buf, "%.0f ns", s * 1e9);
  else if (s < 1e-3)
    std::snprintf(buf, sizeof buf, "%.1f us", s * 1e6);
  else if (s < 1)
    std::snprintf(buf, sizeof buf, "%.2f ms", s * 1e3);
  else
    std::snprintf(buf, sizeof buf, "%.2f s", s);
  return buf;
}
std::string speed(double work, double seconds, unit u) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f %s", seconds > 0 ? work / seconds * 1e-9 : 0.0,
                u == unit::flop ? "GFLOP/s" : "GB/s");
  return buf;
}

std::size_t parse_threads(std::string_view s) {
  unsigned long v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size() || v < 1 || v > 1024)
    throw usage_error(str("--threads wants an integer from 1 to 1024, not '", s, "'"));
  return v;
}

}  // namespace

tour::tour(tour_options options) : options_(options), cpu_(cpu_features::detect()), pool_(options.threads) {}

void tour::print_header() const {
  std::printf(row_format, "op", "backend", "shape", "max|err|", "rel err", "ok", "time/call", "speed");
}

void tour::record(std::string op, std::string_view backend, std::string shape, const agreement& check, double seconds,
                  double work, unit work_unit) {
  std::printf(row_format, op.c_str(), std::string(backend).c_str(), shape.c_str(), sci(check.max_abs).c_str(),
              sci(check.rel()).c_str(), check.pass ? "PASS" : "FAIL", duration(seconds).c_str(),
              speed(work, seconds, work_unit).c_str());
  std::fflush(stdout);
  rows_.push_back({std::move(op), std::string(backend), std::move(shape), check, seconds, work, work_unit});
}

void tour::missing(std::string op) { missing_.push_back(std::move(op)); }

int run_kernels(args a) {
  tour_options options;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i] == "--quick") {
      options.quick = true;
    } else if (a[i] == "--threads") {
      if (i + 1 == a.size()) throw usage_error("--threads needs a value");
      options.threads = parse_threads(a[++i]);
    } else if (a[i].starts_with("--threads=")) {
      options.threads = parse_threads(a[i].substr(10));
    } else {
      throw usage_error(str("unknown option '", a[i], "'"));
    }
  }

  const cpu_features cpu = cpu_features::detect();
  std::printf("slim kernels: every op on every CPU backend, against the scalar oracle in double%s\n",
              options.quick ? " (quick)" : "");
  std::printf("threads: %zu for the simd backends (scalar runs on one)\n", options.threads);
  std::printf(
      "ok: every element within the op's atol + rtol*|ref|; rel err = max|err| / max|ref|; "
      "speed counts flops, or bytes read and written once\n\n");
  std::vector<std::string> not_here;
#if XSIMD_WITH_FMA3_AVX2
  if (!cpu.runs_fma3_avx2()) not_here.push_back("simd<fma3<avx2>> (this CPU lacks AVX2/FMA)");
#endif
#if XSIMD_WITH_AVX512BW
  if (!cpu.runs_avx512bw()) not_here.push_back("simd<avx512bw> (this CPU lacks AVX-512 F/CD/DQ/BW)");
#endif
#if !XSIMD_WITH_FMA3_AVX2
  not_here.push_back("simd<fma3<avx2>> (not compiled: build without AVX2/FMA flags)");
#endif
#if !XSIMD_WITH_AVX512BW
  not_here.push_back("simd<avx512bw> (not compiled: build without AVX-512 flags)");
#endif

  tour t(options);
  t.print_header();
  tour_gemm(t);
  tour_rows(t);
  tour_model(t);

  int failed = 0;
  for (const tour_row& r : t.rows()) failed += r.check.pass ? 0 : 1;
  std::printf("\n%zu checks, %d failed\n", t.rows().size(), failed);
  for (const std::string& s : not_here) std::printf("skipped backend: %s\n", s.c_str());
  if (!t.missing_ops().empty()) {
    std::printf("not available in this build's kernel set:");
    for (const std::string& op : t.missing_ops()) std::printf(" %s", op.c_str());
    std::printf("\n");
  }
  return failed ? 1 : 0;
}

}  // namespace slim::cli
