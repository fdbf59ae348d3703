#pragma once
// The flags every sluice app shares (transport, listen addresses, loops,
// polling, limits, timeouts), declared on a cli and turned into a
// runtime_config. An app adds its own flags next to them.

#include <optional>
#include <string>
#include <vector>

#include "sluice/base/cli.hpp"
#include "sluice/core/endpoint.hpp"
#include "sluice/runtime/runtime.hpp"

namespace sluice {

// The shared flags' values. declare() binds them to a cli, parse fills them in,
// finish() checks and resolves them; the app then builds its runtime from
// `runtime` and listens on `listen`. Used once, on the main thread, before the
// runtime starts.
struct app_options {
  runtime_config runtime{};              // the loops, transport and placement the flags ask for
  std::vector<std::string> listen_text;  // --listen as given (repeatable), or the default
  std::vector<endpoint> listen;          // listen_text resolved by finish(): where to listen

  // Declares the shared flags. `default_listen` is used when no --listen is
  // given (empty: the app does not listen, e.g. a load generator).
  void declare(cli& args, std::string default_listen);
  // Checks values that need more than one flag, resolves addresses, and
  // handles --print-plan. nullopt: go on; otherwise the exit code to return
  // (0 after printing the plan, 2 after one error line).
  [[nodiscard]] std::optional<int> finish(const cli& args);
  // What the start would refuse before it binds anything: the transport's
  // probe and the placement plan (for --check-config). nullopt: both pass;
  // otherwise 2 after one error line.
  [[nodiscard]] std::optional<int> check_start(const cli& args) const;

 private:
  std::string default_listen_;
  bool print_plan_ = false;
  bool spin_given_ = false;
};

}  // namespace sluice
