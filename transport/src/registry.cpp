#include "sluice/transport/registry.hpp"

#include <array>

#include "sluice_config.hpp"

namespace sluice {

// Each transport defines its entry next to its code; only the ones this build
// compiled are listed (meson decides, see transport/meson.build).
#if SLUICE_HAVE_EPOLL
extern const transport_entry epoll_entry;
#endif
#if SLUICE_HAVE_KQUEUE
extern const transport_entry kqueue_entry;
#endif
#if SLUICE_HAVE_DPDK
extern const transport_entry dpdk_entry;
#endif

namespace {

constexpr const transport_entry* compiled[] = {
#if SLUICE_HAVE_KQUEUE_NATIVE
    &kqueue_entry,  // the native poller comes first where it is real
#endif
#if SLUICE_HAVE_EPOLL
    &epoll_entry,
#endif
#if SLUICE_HAVE_KQUEUE && !SLUICE_HAVE_KQUEUE_NATIVE
    &kqueue_entry,
#endif
#if SLUICE_HAVE_DPDK
    &dpdk_entry,
#endif
    nullptr,
};

constexpr std::array<std::string_view, 3> known = {"epoll", "kqueue", "dpdk"};

}  // namespace

std::span<const transport_entry* const> transport_registry() noexcept {
  return {compiled, std::size(compiled) - 1};
}

std::span<const std::string_view> known_transports() noexcept { return known; }

result<const transport_entry*> select_transport(std::string_view name, const transport_settings& settings) {
  if (name == "auto") {
    std::string why;
    for (const transport_entry* e : transport_registry()) {
      std::string reason = e->probe(settings);
      if (reason.empty()) return e;
      why += std::string(why.empty() ? "" : "; ") + std::string(e->name) + ": " + reason;
    }
    return error{"no transport can run here (" + why + ")", {}};
  }
  for (const transport_entry* e : transport_registry()) {
    if (e->name != name) continue;
    std::string reason = e->probe(settings);
    if (!reason.empty()) return error{"transport " + std::string(name) + " cannot run here: " + reason, {}};
    return e;
  }
  std::string built;
  for (const transport_entry* e : transport_registry()) built += std::string(built.empty() ? "" : ", ") + std::string(e->name);
  for (std::string_view k : known) {
    if (k == name) {
      return error{"transport " + std::string(name) + " is not built into this binary (built: " + built +
                       "; see the 'Transports' section of meson's summary for why)",
                   {}};
    }
  }
  return error{"unknown transport '" + std::string(name) + "' (built: " + built + ", or auto)", {}};
}

}  // namespace sluice
