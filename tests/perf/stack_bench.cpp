// sluice-stack-bench: what the user-space stack costs per packet for UDP
// echo, in CPU cycles, with no kernel involved. A DPDK port made of two rings
// (rte_eth_from_rings: what is enqueued on one arrives as RX, TX lands on the
// other) feeds one loop<dpdk_transport> running sluice-echo's UDP handler.
// The "client" (this program, outside the timed part) enqueues bursts of
// requests and turns each reply back into a request by swapping addresses
// and ports (checksums stay valid: their sums do not depend on the order).
// Timed: only loop.run_once(), i.e. RX burst, parsing, the handler, the
// reply written in place, TX burst, and the loop's own phases. For scale,
// the same rings are measured with a bare rx_burst/tx_burst forwarder.
//
// With --ipv6 the requests are UDP over IPv6 (fd00::1 to fd00::2, the
// stack taught the client's MAC by a neighbour solicitation): the issue 17
// figure, IPv6's cost per packet next to IPv4's from a run without it.
//
// Usage: sluice-stack-bench [--packets=N] [--burst=B] [--size=BYTES] [--ipv6] [--json]
//   [--eal="EXTRA EAL ARGS"]   (default EAL: --no-huge -m 256 --no-pci --no-shconf)
// Bounded: N packets (default 2,000,000) and at most 60 s.

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_eth_ring.h>
#include <rte_ring.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "bench_eal.hpp"
#include "echo_handlers.hpp"
#include "sluice/base/cli.hpp"
#include "sluice/transport/loop.hpp"
#include "sluice/dpdk/dpdk_device.hpp"
#include "sluice/dpdk/dpdk_queue.hpp"
#include "sluice/dpdk/dpdk_transport.hpp"
#include "sluice/inet/checksum.hpp"
#include "sluice/inet/wire_format.hpp"

namespace {

using namespace sluice;

constexpr std::uint32_t client_ip = 0x0a000001;  // 10.0.0.1
constexpr std::uint32_t server_ip = 0x0a000002;  // 10.0.0.2
const inet::mac_address client_mac{{0x02, 0, 0, 0, 0, 0x01}};

struct options {
  std::uint64_t packets = 2'000'000;
  unsigned burst = 32;
  unsigned size = 64;
  bool json = false;
  bool ipv6 = false;
  std::string eal;
};

const inet::ip_address client_ip6 = inet::ip_address::parse("fd00::1").value();
const inet::ip_address server_ip6 = inet::ip_address::parse("fd00::2").value();
// Header bytes in front of the UDP payload: Ethernet, IP, UDP.
unsigned headers(bool ipv6) { return ipv6 ? 14 + 40 + 8 : 14 + 20 + 8; }

// Over IPv6: a UDP request to port 7, or (nd) a neighbour solicitation for
// the server from the client, with its link-layer address.
rte_mbuf* make_frame6(rte_mempool* mp, inet::mac_address dst, bool nd, unsigned size, std::uint16_t sport) {
  rte_mbuf* m = rte_pktmbuf_alloc(mp);
  if (m == nullptr) return nullptr;
  auto* f = rte_pktmbuf_mtod(m, std::byte*);
  inet::ipv6_header h;
  h.src = client_ip6;
  std::byte* l4 = f + 14 + 40;
  std::size_t l4_len;
  if (nd) {
    h.dst = inet::solicited_node_group(server_ip6);
    h.hop_limit = 255;
    h.next_header = inet::ip6_next_icmpv6;
    inet::write_ethernet(f, inet::ipv6_multicast_mac(h.dst), client_mac, inet::ethertype_ipv6);
    inet::nd_message ns;
    ns.type = inet::icmpv6_neighbor_solicitation;
    ns.target = server_ip6;
    ns.has_link_layer = true;
    ns.link_layer = client_mac;
    l4_len = inet::write_nd(l4, ns);
  } else {
    h.dst = server_ip6;
    h.next_header = inet::ip_protocol_udp;
    inet::write_ethernet(f, dst, client_mac, inet::ethertype_ipv6);
    l4_len = 8 + size;
    inet::write_udp(l4, inet::udp_header{sport, 7, static_cast<std::uint16_t>(l4_len), 0});
    for (unsigned i = 0; i < size; ++i) l4[8 + i] = static_cast<std::byte>(i);
  }
  h.payload_len = static_cast<std::uint16_t>(l4_len);
  inet::write_ipv6(f + 14, h);
  inet::internet_checksum c;
  inet::add_pseudo_header(c, h.src, h.dst, h.next_header, static_cast<std::uint32_t>(l4_len));
  c.add(l4, l4_len);
  inet::store_checksum(l4 + (nd ? 2 : 6), c.finish());
  m->data_len = static_cast<std::uint16_t>(14 + 40 + l4_len);
  m->pkt_len = m->data_len;
  return m;
}

// A UDP request from the client to port 7, or an ARP request for the server.
rte_mbuf* make_frame(rte_mempool* mp, inet::mac_address dst, bool arp, unsigned size, std::uint16_t sport) {
  rte_mbuf* m = rte_pktmbuf_alloc(mp);
  if (m == nullptr) return nullptr;
  auto* f = rte_pktmbuf_mtod(m, std::byte*);
  std::size_t len;
  if (arp) {
    inet::write_ethernet(f, inet::mac_address::broadcast(), client_mac, inet::ethertype_arp);
    inet::write_arp(f + 14, inet::arp_message{inet::arp_op_request, client_mac, client_ip, {}, server_ip});
    len = 14 + 28;
  } else {
    inet::write_ethernet(f, dst, client_mac, inet::ethertype_ipv4);
    inet::ipv4_header h;
    h.total_len = static_cast<std::uint16_t>(28 + size);
    h.protocol = inet::ip_protocol_udp;
    h.src = client_ip;
    h.dst = server_ip;
    inet::write_ipv4(f + 14, h, true);
    std::byte* u = f + 34;
    inet::write_udp(u, inet::udp_header{sport, 7, static_cast<std::uint16_t>(8 + size), 0});
    for (unsigned i = 0; i < size; ++i) u[8 + i] = static_cast<std::byte>(i);
    inet::internet_checksum c;
    inet::add_pseudo_header(c, client_ip, server_ip, inet::ip_protocol_udp, static_cast<std::uint16_t>(8 + size));
    c.add(u, 8 + size);
    inet::store_checksum(u + 6, c.finish());
    len = 34 + 8 + size;
  }
  m->data_len = static_cast<std::uint16_t>(len);
  m->pkt_len = static_cast<std::uint32_t>(len);
  return m;
}

// A reply becomes the next request: swap MACs, IPs and ports in place.
bool turn_around(rte_mbuf* m, unsigned size, bool ipv6) {
  auto* f = rte_pktmbuf_mtod(m, std::byte*);
  if (m->data_len != headers(ipv6) + size ||
      inet::load_be16(f + 12) != (ipv6 ? inet::ethertype_ipv6 : inet::ethertype_ipv4)) {
    return false;
  }
  std::byte tmp[16];
  std::memcpy(tmp, f, 6);
  std::memcpy(f, f + 6, 6);
  std::memcpy(f + 6, tmp, 6);
  const std::size_t alen = ipv6 ? 16 : 4, src = ipv6 ? 22 : 26, l4 = ipv6 ? 54 : 34;
  std::memcpy(tmp, f + src, alen);
  std::memcpy(f + src, f + src + alen, alen);
  std::memcpy(f + src + alen, tmp, alen);
  std::memcpy(tmp, f + l4, 2);
  std::memcpy(f + l4, f + l4 + 2, 2);
  std::memcpy(f + l4 + 2, tmp, 2);
  m->ol_flags = 0;
  return true;
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

int fail(const std::string& why) {
  std::fprintf(stderr, "sluice-stack-bench: error: %s\n", why.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  sluice::cli args("sluice-stack-bench", "UDP echo through one sluice stack over ring ports: packets per second.");
  args.custom("--packets", "N", "requests to send (default 2000000); range 10 to 10000000000",
              [&o](std::string_view v) -> sluice::result<void> {
                auto n = sluice::parse_count(v, {10, 10'000'000'000});
                if (!n) return n.err();
                o.packets = *n;
                return {};
              });
  args.count_option("--burst", "B", "packets per burst (default 32)", o.burst, {1, 32});
  args.count_option("--size", "BYTES", "UDP payload size (default 64)", o.size, {1, 1400});
  args.flag("--json", "print one JSON object instead of the table", o.json);
  args.flag("--ipv6", "UDP over IPv6 (fd00::1 to fd00::2) instead of IPv4", o.ipv6);
  args.option("--eal", "ARGS", "further EAL arguments, space-separated", o.eal);
  if (auto rc = args.parse(argc, argv)) return *rc;

  if (std::string why = sluice::bench::init_eal("sluice-stack-bench", "--lcores=0@0", o.eal); !why.empty()) return fail(why);
  rte_ring* rx = rte_ring_create("bench_rx", 4096, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
  rte_ring* tx = rte_ring_create("bench_tx", 4096, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
  if (rx == nullptr || tx == nullptr) return fail("rte_ring_create");
  const int port = rte_eth_from_rings("bench", &rx, 1, &tx, 1, 0);
  if (port < 0) return fail("rte_eth_from_rings");
  dpdk::device_config cfg;
  cfg.queue_nodes = {0};
  auto dev = dpdk::dpdk_device::open(static_cast<std::uint16_t>(port), cfg);
  if (!dev) return fail(dev.err().message);
  // The client's frames come from the port's own pool: every mbuf the stack
  // receives must carry room for its inet::packet in the private area.
  rte_mempool* client_pool = (*dev)->pool_of(0);

  double stack_cycles_per_packet = 0, raw_cycles_per_packet = 0;
  std::uint64_t echoed = 0, bad = 0;
  {
    loop_options lo;
    lo.busy_poll = true;
    inet::inet_transport_options to;
    to.stack.iface = inet::interface_config::parse("10.0.0.2/24", "", {"fd00::2/64"}, "").value();
    to.transport_name = "dpdk";
    loop<dpdk::dpdk_transport> l(lo, 0, std::make_unique<dpdk::dpdk_queue>(**dev, 0), to);
    echo_app::udp_echo_handler echo;
    if (!l.udp_bind(o.ipv6 ? inet::ip_address{}.with_port(7) : endpoint::ipv4(0, 7), echo).ok()) return fail("udp_bind");
    // A request, IPv4 or IPv6.
    auto request = [&](std::uint16_t sport) {
      return o.ipv6 ? make_frame6(client_pool, (*dev)->mac(), false, o.size, sport)
                    : make_frame(client_pool, (*dev)->mac(), false, o.size, sport);
    };
    // The stack learns the client from its ARP request or neighbour
    // solicitation (and answers it).
    rte_mbuf* arp = o.ipv6 ? make_frame6(client_pool, {}, true, 0, 0) : make_frame(client_pool, {}, true, 0, 0);
    rte_ring_enqueue(rx, arp);
    for (int i = 0; i < 4; ++i) l.run_once();
    void* junk[64];
    const unsigned nj = rte_ring_dequeue_burst(tx, junk, 64, nullptr);
    rte_pktmbuf_free_bulk(reinterpret_cast<rte_mbuf**>(junk), nj);

    std::vector<rte_mbuf*> batch(o.burst);
    for (unsigned i = 0; i < o.burst; ++i) {
      batch[i] = request(static_cast<std::uint16_t>(1000 + i));
      if (batch[i] == nullptr) return fail("client frames");
    }
    std::uint64_t cycles = 0;
    const double deadline = now_s() + 60;
    // Warm up caches and the pool, then measure.
    for (int phase = 0; phase < 2; ++phase) {
      const std::uint64_t target = phase == 0 ? o.packets / 10 : o.packets;
      std::uint64_t done = 0;
      cycles = 0;
      while (done < target && now_s() < deadline) {
        rte_ring_enqueue_burst(rx, reinterpret_cast<void**>(batch.data()), o.burst, nullptr);
        const std::uint64_t t0 = rte_rdtsc_precise();
        l.run_once();
        cycles += rte_rdtsc_precise() - t0;
        void* out[32];
        const unsigned n = rte_ring_dequeue_burst(tx, out, 32, nullptr);
        for (unsigned i = 0; i < n; ++i) {
          auto* m = static_cast<rte_mbuf*>(out[i]);
          if (!turn_around(m, o.size, o.ipv6)) {
            ++bad;
            rte_pktmbuf_free(m);
            m = request(999);
          }
          batch[i] = m;
        }
        if (n != o.burst) {
          ++bad;
          break;
        }
        done += n;
      }
      echoed = done;
    }
    stack_cycles_per_packet = echoed ? static_cast<double>(cycles) / static_cast<double>(echoed) : 0;
    // The echo reused each request's buffer: give them back before the pool goes.
    rte_pktmbuf_free_bulk(batch.data(), o.burst);

    // The same rings with a bare forwarder: RX burst, TX burst, nothing else.
    std::vector<rte_mbuf*> raw(o.burst);
    for (unsigned i = 0; i < o.burst; ++i) {
      raw[i] = o.ipv6 ? make_frame6(client_pool, (*dev)->mac(), false, o.size, 1)
                      : make_frame(client_pool, (*dev)->mac(), false, o.size, 1);
    }
    std::uint64_t raw_cycles = 0, raw_done = 0;
    while (raw_done < o.packets && now_s() < deadline) {
      rte_ring_enqueue_burst(rx, reinterpret_cast<void**>(raw.data()), o.burst, nullptr);
      const std::uint64_t t0 = rte_rdtsc_precise();
      rte_mbuf* got[32];
      const std::uint16_t n = rte_eth_rx_burst(static_cast<std::uint16_t>(port), 0, got, static_cast<std::uint16_t>(o.burst));
      const std::uint16_t s = rte_eth_tx_burst(static_cast<std::uint16_t>(port), 0, got, n);
      raw_cycles += rte_rdtsc_precise() - t0;
      void* out[32];
      rte_ring_dequeue_burst(tx, out, 32, nullptr);
      for (unsigned i = 0; i < s; ++i) raw[i] = static_cast<rte_mbuf*>(out[i]);
      raw_done += s;
    }
    raw_cycles_per_packet = raw_done ? static_cast<double>(raw_cycles) / static_cast<double>(raw_done) : 0;
    rte_pktmbuf_free_bulk(raw.data(), o.burst);
  }
  const double hz = static_cast<double>(rte_get_tsc_hz());
  if (o.json) {
    std::printf("{\"stack_cycles_per_packet\": %.1f, \"raw_cycles_per_packet\": %.1f, \"tsc_hz\": %.0f, "
                "\"packets\": %llu, \"burst\": %u, \"size\": %u, \"ipv6\": %s, \"bad\": %llu}\n",
                stack_cycles_per_packet, raw_cycles_per_packet, hz, static_cast<unsigned long long>(echoed), o.burst,
                o.size, o.ipv6 ? "true" : "false", static_cast<unsigned long long>(bad));
  } else {
    std::printf("UDP%s echo through the stack: %.1f cycles/packet (%.1f ns at %.2f GHz), %llu packets, burst %u, %u-byte payload\n",
                o.ipv6 ? " over IPv6" : "", stack_cycles_per_packet, stack_cycles_per_packet / hz * 1e9, hz / 1e9,
                static_cast<unsigned long long>(echoed), o.burst, o.size);
    std::printf("bare ring RX+TX forwarder: %.1f cycles/packet; the stack adds %.1f cycles/packet (%.1fx the bare path)\n",
                raw_cycles_per_packet, stack_cycles_per_packet - raw_cycles_per_packet,
                raw_cycles_per_packet > 0 ? stack_cycles_per_packet / raw_cycles_per_packet : 0.0);
    if (bad != 0) std::printf("WARNING: %llu bursts came back short or wrong\n", static_cast<unsigned long long>(bad));
  }
  dev->reset();
  rte_eal_cleanup();
  return bad == 0 ? 0 : 1;
}
