// slim program — the subcommands. Each takes the arguments after its name and returns the exit status;
// a usage error is reported by throwing usage_error (main prints it and exits with 2).
#pragma once

#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

namespace slim::cli {

using args = std::span<const std::string_view>;

/// A bad command line: main prints the message on stderr with a pointer to `slim help`.
struct usage_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

int run_help(args a);
int run_version(args a);
int run_kernels(args a);
int run_tokenize(args a);
int run_rec(args a);
int run_lm(args a);
int run_run(args a);
int run_serve(args a);

}  // namespace slim::cli
