#include "sluice/transport/registry.hpp"

#include <array>

namespace sluice {

namespace {

// Filled by static initializers before main: plain arrays, constant-
// initialized, so that their order against other translation units' static
// initialization cannot matter.
constexpr std::size_t max_transports = 16;
const transport_entry* registered[max_transports] = {};
std::size_t registered_count = 0;

constexpr std::array<std::string_view, 4> known = {"epoll", "io_uring", "kqueue", "dpdk"};

}  // namespace

void register_transport(const transport_entry& e) noexcept {
  for (std::size_t i = 0; i < registered_count; ++i) {
    if (registered[i] == &e) return;
  }
  if (registered_count == max_transports) return;
  // Insert by rank; equal ranks keep registration order.
  std::size_t at = registered_count;
  while (at > 0 && registered[at - 1]->rank > e.rank) {
    registered[at] = registered[at - 1];
    --at;
  }
  registered[at] = &e;
  ++registered_count;
}

std::span<const transport_entry* const> transport_registry() noexcept { return {registered, registered_count}; }

std::span<const std::string_view> known_transports() noexcept { return known; }

const transport_entry* find_transport(std::string_view name) noexcept {
  for (const transport_entry* e : transport_registry()) {
    if (e->name == name) return e;
  }
  return nullptr;
}

std::string linked_transports() {
  std::string out;
  for (const transport_entry* e : transport_registry()) out += std::string(out.empty() ? "" : ", ") + std::string(e->name);
  return out.empty() ? std::string("none") : out;
}

result<const transport_entry*> select_transport(std::string_view name) {
  if (name == "auto") {
    std::string why;
    for (const transport_entry* e : transport_registry()) {
      std::string reason = e->probe();
      if (reason.empty()) return e;
      why += std::string(why.empty() ? "" : "; ") + std::string(e->name) + ": " + reason;
    }
    if (transport_registry().empty()) return error{"no transport is linked into this program", {}};
    return error{"no transport can run here (" + why + ")", {}};
  }
  if (const transport_entry* e = find_transport(name)) {
    std::string reason = e->probe();
    if (!reason.empty()) return error{"transport " + std::string(name) + " cannot run here: " + reason, {}};
    return e;
  }
  for (std::string_view k : known) {
    if (k == name) {
      return error{"transport " + std::string(name) + " is not built into this binary (built: " + linked_transports() +
                       "; see the 'Transports' section of meson's summary for why)",
                   {}};
    }
  }
  return error{"unknown transport '" + std::string(name) + "' (built: " + linked_transports() + ", or auto)", {}};
}

void declare_transport_options(cli& args) {
  for (const transport_entry* e : transport_registry()) {
    if (e->declare_options != nullptr) e->declare_options(args);
  }
}

result<void> check_transport_options(std::string_view chosen) {
  for (const transport_entry* e : transport_registry()) {
    if (e->check_options == nullptr) continue;
    if (auto r = e->check_options(e->name == chosen); !r) return r;
  }
  return {};
}

}  // namespace sluice
