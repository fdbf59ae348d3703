#include "sluice/dpdk/dpdk_queue.hpp"

#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include <algorithm>

#include "fault_guard.hpp"
#include "sluice/dpdk/dpdk_device.hpp"

namespace sluice::dpdk {

namespace {

constexpr std::size_t burst = 64;

void release_mbuf(segment* s) noexcept { rte_pktmbuf_free(static_cast<rte_mbuf*>(s->owner)); }

// The packet in m's private area, set up to describe m's bytes.
inet::packet* wrap(rte_mbuf* m) noexcept {
  auto* p = static_cast<inet::packet*>(rte_mbuf_to_priv(m));
  p->reset(static_cast<std::byte*>(m->buf_addr), m->buf_len, m->data_off, &release_mbuf, m);
  return p;
}

}  // namespace

dpdk_queue::dpdk_queue(const dpdk_device& device, std::uint16_t queue) noexcept
    : port_(device.port()),
      queue_(queue),
      pool_(device.pool_of(queue)),
      mac_(device.mac()),
      caps_(device.capabilities()),
      guarded_(device.driver() == "net_memif") {
  if (guarded_) {
    fault_guard::install();
    gate_epoch_ = &device.gate_epoch();
    gate_seen_ = &device.gate(queue).seen;
  }
}

inline bool dpdk_queue::gate_open() noexcept {
  const std::uint32_t e = gate_epoch_->load(std::memory_order_acquire);
  // Written only when it changed: no store (and no shared cache line
  // bouncing) per burst in the steady state.
  if (gate_seen_->load(std::memory_order_relaxed) != e) gate_seen_->store(e, std::memory_order_release);
  return (e & 1u) == 0;
}

inline std::uint16_t dpdk_queue::rx_burst(rte_mbuf** ms, std::uint16_t n) noexcept {
  return guarded_ ? guarded_rx_burst(ms, n) : rte_eth_rx_burst(port_, queue_, ms, n);
}

inline std::uint16_t dpdk_queue::tx_burst(rte_mbuf** ms, std::uint16_t n) noexcept {
  return guarded_ ? guarded_tx_burst(ms, n) : rte_eth_tx_burst(port_, queue_, ms, n);
}

// A fault inside: nothing received (the mbufs the PMD took for this burst
// are lost, see fault_guard.hpp).
// A closed gate: nothing received (the port is being restarted).
[[gnu::noinline]] std::uint16_t dpdk_queue::guarded_rx_burst(rte_mbuf** ms, std::uint16_t n) noexcept {
  if (!gate_open()) return 0;
  sigjmp_buf env;
  if (sigsetjmp(env, 0) != 0) {
    memif_faults_.add();
    return 0;
  }
  fault_guard::arm(&env);
  const std::uint16_t got = rte_eth_rx_burst(port_, queue_, ms, n);
  fault_guard::disarm();
  return got;
}

// A fault inside: every frame counts as sent (the PMD may have freed some
// already; see fault_guard.hpp).
// A closed gate: the frames are dropped, as a NIC whose link is down would
// (TCP retransmits them).
[[gnu::noinline]] std::uint16_t dpdk_queue::guarded_tx_burst(rte_mbuf** ms, std::uint16_t n) noexcept {
  if (!gate_open()) {
    rte_pktmbuf_free_bulk(ms, n);
    gate_drops_.add(n);
    return n;
  }
  sigjmp_buf env;
  if (sigsetjmp(env, 0) != 0) {
    memif_faults_.add();
    return n;
  }
  fault_guard::arm(&env);
  const std::uint16_t sent = rte_eth_tx_burst(port_, queue_, ms, n);
  fault_guard::disarm();
  return sent;
}

segment_release_fn dpdk_queue::release_function() const noexcept { return &release_mbuf; }

std::size_t dpdk_queue::receive(inet::packet** out, std::size_t n) noexcept {
  rte_mbuf* ms[burst];
  const auto want = static_cast<std::uint16_t>(std::min(n, burst));
  const std::uint16_t got = rx_burst(ms, want);
  rx_bursts_.add();
  if (got == 0) return 0;
  rx_packets_.add(got);
  for (std::uint16_t i = 0; i < got; ++i) {
    rte_mbuf* m = ms[i];
    inet::packet* p = wrap(m);
    p->seg.end = p->seg.begin + m->data_len;
    const std::uint64_t f = m->ol_flags;
    std::uint8_t rx = 0;
    if ((f & RTE_MBUF_F_RX_IP_CKSUM_MASK) == RTE_MBUF_F_RX_IP_CKSUM_GOOD) rx |= inet::packet_meta::rx_ip_checksum_good;
    if ((f & RTE_MBUF_F_RX_IP_CKSUM_MASK) == RTE_MBUF_F_RX_IP_CKSUM_BAD) rx |= inet::packet_meta::rx_ip_checksum_bad;
    if ((f & RTE_MBUF_F_RX_L4_CKSUM_MASK) == RTE_MBUF_F_RX_L4_CKSUM_GOOD) rx |= inet::packet_meta::rx_l4_checksum_good;
    if ((f & RTE_MBUF_F_RX_L4_CKSUM_MASK) == RTE_MBUF_F_RX_L4_CKSUM_BAD) rx |= inet::packet_meta::rx_l4_checksum_bad;
    if (m->nb_segs > 1) rx |= inet::packet_meta::rx_chained;
    p->meta.rx = rx;
    out[i] = p;
  }
  return got;
}

std::size_t dpdk_queue::transmit(inet::packet** pkts, std::size_t n) noexcept {
  std::size_t done = 0;
  while (done < n) {
    rte_mbuf* ms[burst];
    const std::size_t k = std::min(n - done, burst);
    for (std::size_t i = 0; i < k; ++i) {
      inet::packet* p = pkts[done + i];
      auto* m = static_cast<rte_mbuf*>(p->seg.owner);
      // The segment says where the frame is now (headers were written in
      // front of, or in place of, what was received).
      m->data_off = static_cast<std::uint16_t>(p->seg.begin);
      m->data_len = static_cast<std::uint16_t>(p->seg.size());
      m->pkt_len = p->seg.size();
      std::uint64_t ol = 0;
      if ((p->meta.tx & inet::packet_meta::tx_ip_checksum) != 0) ol |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM;
      if ((p->meta.tx & inet::packet_meta::tx_udp_checksum) != 0) ol |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_UDP_CKSUM;
      if ((p->meta.tx & inet::packet_meta::tx_tcp_checksum) != 0) ol |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_TCP_CKSUM;
      m->ol_flags = ol;
      m->l2_len = p->meta.l2_len;
      m->l3_len = p->meta.l3_len;
      ms[i] = m;
    }
    // No rte_eth_tx_prepare: the stack already put the pseudo-header sum in
    // the UDP or TCP checksum field, which is all the offload needs.
    const std::uint16_t sent = tx_burst(ms, static_cast<std::uint16_t>(k));
    tx_packets_.add(sent);
    done += sent;
    if (sent < k) {
      tx_refused_.add(k - sent);
      break;  // the ring is full: the stack keeps the rest and offers them again
    }
  }
  return done;
}

std::size_t dpdk_queue::allocate(inet::packet** out, std::size_t n) noexcept {
  rte_mbuf* ms[burst];
  const auto k = static_cast<unsigned>(std::min(n, burst));
  if (rte_pktmbuf_alloc_bulk(pool_, ms, k) != 0) {
    alloc_failed_.add();
    return 0;
  }
  for (unsigned i = 0; i < k; ++i) out[i] = wrap(ms[i]);
  return k;
}

void dpdk_queue::metrics(const std::string& prefix, metric_list& out) const {
  const std::string p = prefix + "dpdk.queue" + std::to_string(queue_) + ".";
  out.push_back({p + "rx_bursts", rx_bursts_.get()});
  out.push_back({p + "rx_packets", rx_packets_.get()});
  out.push_back({p + "tx_packets", tx_packets_.get()});
  out.push_back({p + "tx_refused", tx_refused_.get()});
  out.push_back({p + "alloc_failed", alloc_failed_.get()});
  if (guarded_) {
    out.push_back({p + "memif_faults", memif_faults_.get()});
    out.push_back({p + "gate_drops", gate_drops_.get()});
  }
}

}  // namespace sluice::dpdk
