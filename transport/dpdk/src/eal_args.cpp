#include "sluice/dpdk/eal_args.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <set>

namespace sluice::dpdk {

namespace {

result<std::vector<std::string>> split(std::string_view text) {
  std::vector<std::string> out;
  std::string cur;
  bool in_word = false;
  char quote = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quote != 0) {
      if (c == quote) {
        quote = 0;
      } else if (c == '\\' && quote == '"' && i + 1 < text.size()) {
        cur += text[++i];
      } else {
        cur += c;
      }
      continue;
    }
    if (c == '\'' || c == '"') {
      quote = c;
      in_word = true;
    } else if (c == '\\' && i + 1 < text.size()) {
      cur += text[++i];
      in_word = true;
    } else if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) out.push_back(std::move(cur));
      cur.clear();
      in_word = false;
    } else {
      cur += c;
      in_word = true;
    }
  }
  if (quote != 0) return error{std::string("--dpdk-args: unbalanced ") + quote + " quote", {}};
  if (in_word) out.push_back(std::move(cur));
  return out;
}

// "--vdev=X" or "--vdev X": the value of a long option, or nullopt.
bool take_value(const std::vector<std::string>& w, std::size_t& i, std::string_view name, std::string& value) {
  const std::string& a = w[i];
  if (a == name) {
    if (i + 1 < w.size()) value = w[++i];
    return true;
  }
  if (a.size() > name.size() && a.compare(0, name.size(), name) == 0 && a[name.size()] == '=') {
    value = a.substr(name.size() + 1);
    return true;
  }
  // Short options may be glued to their value: -aADDR, -m512.
  if (name.size() == 2 && a.size() > 2 && a.compare(0, 2, name) == 0) {
    value = a.substr(2);
    return true;
  }
  return false;
}

}  // namespace

result<eal_args> eal_args::parse(std::string_view text) {
  auto words = split(text);
  if (!words) return words.err();
  eal_args a;
  a.words = std::move(*words);
  for (std::size_t i = 0; i < a.words.size(); ++i) {
    const std::string& w = a.words[i];
    std::string v;
    if (w == "--no-huge") {
      a.no_huge = true;
    } else if (w == "--no-pci") {
      a.no_pci = true;
    } else if (w == "--in-memory") {
      a.in_memory = true;
    } else if (w == "--no-shconf") {
      a.no_shconf = true;
    } else if (take_value(a.words, i, "--vdev", v)) {
      a.vdevs.push_back(v);
    } else if (take_value(a.words, i, "--allow", v) || take_value(a.words, i, "-a", v)) {
      a.allow.push_back(v);
    } else if (take_value(a.words, i, "--file-prefix", v)) {
      a.has_file_prefix = true;
    } else if (take_value(a.words, i, "--socket-mem", v) || take_value(a.words, i, "-m", v)) {
      a.has_memory_size = true;
    } else if (a.refused.empty()) {
      for (std::string_view f : {"--lcores", "--main-lcore", "-l", "-c"}) {
        std::string ignored;
        std::size_t j = i;
        if (take_value(a.words, j, f, ignored)) {
          a.refused = std::string(f);
          break;
        }
      }
    }
  }
  return a;
}

std::string eal_args::driver_of(std::string_view vdev) {
  std::string_view name = vdev.substr(0, vdev.find(','));
  // Instance names end in digits: net_tap0, net_af_packet12.
  while (!name.empty() && name.back() >= '0' && name.back() <= '9') name.remove_suffix(1);
  return std::string(name);
}

std::string eal_args::vdev_arg(std::string_view vdev, std::string_view key) {
  std::size_t pos = vdev.find(',');
  while (pos != std::string_view::npos) {
    const std::size_t next = vdev.find(',', pos + 1);
    std::string_view kv = vdev.substr(pos + 1, next == std::string_view::npos ? std::string_view::npos : next - pos - 1);
    if (kv.size() > key.size() && kv.compare(0, key.size(), key) == 0 && kv[key.size()] == '=') {
      return std::string(kv.substr(key.size() + 1));
    }
    pos = next;
  }
  return {};
}

std::string memif_with_stable_mac(std::string_view vdev) {
  if (eal_args::driver_of(vdev) != "net_memif" || !eal_args::vdev_arg(vdev, "mac").empty()) return std::string(vdev);
  // The PMD's defaults: socket /run/memif.sock, role server, id 0.
  std::string socket = eal_args::vdev_arg(vdev, "socket");
  if (socket.empty()) socket = "/run/memif.sock";
  if (eal_args::vdev_arg(vdev, "socket-abstract") != "no") socket = "@" + socket;  // abstract is the default
  std::string role = eal_args::vdev_arg(vdev, "role");
  if (role.empty()) role = "server";
  std::string id = eal_args::vdev_arg(vdev, "id");
  if (id.empty()) id = "0";
  const std::string key = socket + "|" + role + "|" + id;
  std::uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char c : key) h = (h ^ c) * 1099511628211ull;
  char mac[18];
  std::snprintf(mac, sizeof mac, "02:%02x:%02x:%02x:%02x:%02x", static_cast<unsigned>(h >> 32 & 0xff),
                static_cast<unsigned>(h >> 24 & 0xff), static_cast<unsigned>(h >> 16 & 0xff),
                static_cast<unsigned>(h >> 8 & 0xff), static_cast<unsigned>(h & 0xff));
  return std::string(vdev) + ",mac=" + mac;
}

std::vector<std::string> eal_argv(const eal_args& args, const platform::placement_plan& plan, std::string_view program,
                                  int pid) {
  std::vector<std::string> argv{std::string(program)};
  // Lcore 0, the EAL's main lcore, may run on any planned CPU: rte_eal_init
  // pins the calling thread to it, and the loop threads it starts inherit
  // that mask until sluice pins each to its own CPU.
  std::set<unsigned> cpus;
  for (const auto& l : plan.loops) cpus.insert(l.cpu);
  std::string list;
  for (unsigned c : cpus) list += (list.empty() ? "" : ",") + std::to_string(c);
  argv.push_back("--lcores=0@(" + list + ")");
  if (!args.has_file_prefix && !args.no_shconf && !args.in_memory) {
    // No shared runtime files: concurrent runs cannot collide, and nothing
    // is left in /var/run/dpdk per run. (Secondary processes need a
    // --file-prefix of the user's choosing instead.)
    (void)pid;
    argv.push_back("--no-shconf");
  }
  for (std::size_t i = 0; i < args.words.size(); ++i) {
    const std::string& w = args.words[i];
    if (w.rfind("--vdev=", 0) == 0) {
      argv.push_back("--vdev=" + memif_with_stable_mac(std::string_view(w).substr(7)));
    } else if (w == "--vdev" && i + 1 < args.words.size()) {
      argv.push_back(w);
      argv.push_back(memif_with_stable_mac(args.words[++i]));
    } else {
      argv.push_back(w);
    }
  }
  return argv;
}

}  // namespace sluice::dpdk
