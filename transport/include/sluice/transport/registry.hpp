#pragma once
// The transport registry: every transport compiled into this build, in order of
// preference, each with a probe that says in plain words why it cannot run
// here. Apps pick one by name at startup (--transport=NAME, or auto: the first
// whose probe passes); from then on its loops are concrete (loop<T>).

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "sluice/core/loop_base.hpp"
#include "sluice/core/loop_options.hpp"
#include "sluice/core/result.hpp"

namespace sluice {

// What transports may need from the command line.
struct transport_settings {
  // DPDK EAL arguments (--dpdk-args), passed through.
  std::string dpdk_args;
};

struct transport_entry {
  std::string_view name;
  std::string_view summary;
  // Empty if the transport can run here; otherwise why not, in plain words.
  std::string (*probe)(const transport_settings& settings);
  // Once per process, before any loop starts (DPDK: the EAL and ports).
  result<void> (*init_process)(const transport_settings& settings, unsigned loops);
  // Makes loop `id` on the calling thread (the thread that will run it).
  std::unique_ptr<loop_base> (*make_loop)(const loop_options& opts, std::uint16_t id);
};

// Every transport compiled in, in order of preference.
[[nodiscard]] std::span<const transport_entry* const> transport_registry() noexcept;
// Every transport name sluice knows, built here or not ("epoll", "kqueue", "dpdk").
[[nodiscard]] std::span<const std::string_view> known_transports() noexcept;

// "auto": the first entry whose probe passes. A name: that entry, if it is
// compiled in and its probe passes. Otherwise an error that says why.
result<const transport_entry*> select_transport(std::string_view name, const transport_settings& settings);

}  // namespace sluice
