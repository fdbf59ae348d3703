#include "sluice/dpdk/dpdk_device.hpp"

#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mbuf_pool_ops.h>
#include <rte_memzone.h>
#include <rte_mempool.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <vector>

#include "sluice/inet/flow_steering.hpp"
#include "sluice/inet/packet.hpp"

namespace sluice::dpdk {

namespace {

std::string rte_error(const char* what, int rc) {
  return std::string(what) + " failed: " + rte_strerror(rc < 0 ? -rc : rc);
}

// The private area of every mbuf holds its inet::packet.
constexpr std::uint16_t priv_size =
    static_cast<std::uint16_t>((sizeof(inet::packet) + RTE_MBUF_PRIV_ALIGN - 1) / RTE_MBUF_PRIV_ALIGN * RTE_MBUF_PRIV_ALIGN);

// The AF_XDP PMD (22.11, XDP_UMEM_UNALIGNED_CHUNK_FLAG builds) registers the
// RX pool itself as the UMEM and sizes it as populated_size x object size
// from the first memory chunk's page. rte_mempool keeps an object from
// crossing a page, so with objects smaller than a page the pool has a gap at
// every page end (with 4 KiB pages, one ~2.4 KiB mbuf per page) and reaches
// well past the UMEM: the kernel refuses every TX and fill descriptor of an
// mbuf out there (XDP_STATISTICS tx_invalid_descs), so those segments are
// silently lost and TCP waits for its retransmission timer. An object of
// exactly 4 KiB (no channel spreading pad) tiles every page size with no gap,
// so the PMD's arithmetic holds; af_xdp_pool checks that it does.
constexpr unsigned af_xdp_object = 4096;

// Counts the objects that lie outside [base, base + span).
struct umem_check {
  std::uintptr_t base;
  std::uintptr_t span;
  unsigned header;
  unsigned outside = 0;
};

void count_outside(rte_mempool*, void* arg, void* obj, unsigned) {
  auto* c = static_cast<umem_check*>(arg);
  const auto start = reinterpret_cast<std::uintptr_t>(obj) - c->header;
  if (start < c->base || start + af_xdp_object > c->base + c->span) ++c->outside;
}

// A pktmbuf pool laid out for the AF_XDP PMD (see af_xdp_object), or an
// error that says why the PMD's UMEM would not cover it.
result<rte_mempool*> af_xdp_pool(const std::string& name, unsigned n, int socket) {
  const std::uint32_t header_and_trailer = rte_mempool_calc_obj_size(0, RTE_MEMPOOL_F_NO_SPREAD, nullptr);
  const std::uint32_t elt = af_xdp_object - header_and_trailer;
  const std::uint32_t room = elt - sizeof(rte_mbuf) - priv_size;
  if (rte_mempool_calc_obj_size(elt, RTE_MEMPOOL_F_NO_SPREAD, nullptr) != af_xdp_object ||
      room < RTE_MBUF_DEFAULT_BUF_SIZE) {
    return error{"af_xdp: an mbuf does not fit a " + std::to_string(af_xdp_object) + "-byte UMEM frame", {}};
  }
  rte_mempool* mp = rte_mempool_create_empty(name.c_str(), n, elt, pool_cache, sizeof(rte_pktmbuf_pool_private),
                                             socket, RTE_MEMPOOL_F_NO_SPREAD);
  if (mp == nullptr) return error{"rte_mempool_create_empty: " + std::string(rte_strerror(rte_errno)), {}};
  rte_pktmbuf_pool_private priv{};
  priv.mbuf_data_room_size = static_cast<std::uint16_t>(room);
  priv.mbuf_priv_size = priv_size;
  int rc = rte_mempool_set_ops_byname(mp, rte_mbuf_best_mempool_ops(), nullptr);
  if (rc != 0) {
    rte_mempool_free(mp);
    return error{"rte_mempool_set_ops_byname: " + std::string(rte_strerror(-rc)), {}};
  }
  rte_pktmbuf_pool_init(mp, &priv);
  // One page-aligned area: the PMD's UMEM starts at the first chunk's page,
  // and rte_mempool_populate_default's chunk need not start on one (its
  // first object would then begin a page later and its last lie past the
  // UMEM's end).
  const auto page = static_cast<std::size_t>(getpagesize());
  const rte_memzone* mz = rte_memzone_reserve_aligned((name + "_umem").c_str(), std::size_t{n} * af_xdp_object, socket,
                                                      0, page);
  if (mz == nullptr) {
    rte_mempool_free(mp);
    return error{"rte_memzone_reserve_aligned (" + std::to_string(std::size_t{n} * af_xdp_object) +
                     " bytes): " + rte_strerror(rte_errno) + " (more memory: -m in --dpdk-args, or more hugepages)",
                 {}};
  }
  rc = rte_mempool_populate_virt(
      mp, static_cast<char*>(mz->addr), mz->len, page,
      [](rte_mempool_memhdr*, void* z) { rte_memzone_free(static_cast<const rte_memzone*>(z)); },
      const_cast<rte_memzone*>(mz));
  if (rc < 0 || mp->populated_size != n) {
    if (rc < 0) rte_memzone_free(mz);
    rte_mempool_free(mp);
    return error{"rte_mempool_populate_virt: " + std::string(rc < 0 ? rte_strerror(-rc) : "short"), {}};
  }
  rte_mempool_obj_iter(mp, rte_pktmbuf_init, nullptr);
  // What the PMD will register: from the first chunk's page (getpagesize,
  // as the PMD does), one object size per mbuf.
  const auto first = reinterpret_cast<std::uintptr_t>(STAILQ_FIRST(&mp->mem_list)->addr);
  umem_check c{first & ~(page - 1), std::uintptr_t{mp->populated_size} * af_xdp_object + (first & (page - 1)),
               mp->header_size};
  rte_mempool_obj_iter(mp, count_outside, &c);
  if (c.outside != 0 || mp->nb_mem_chunks != 1) {
    const unsigned chunks = mp->nb_mem_chunks;
    rte_mempool_free(mp);
    return error{"af_xdp: " + std::to_string(c.outside) + " of " + std::to_string(n) + " mbufs (in " +
                     std::to_string(chunks) + " memory chunks) would lie outside the UMEM the PMD registers",
                 {}};
  }
  return mp;
}

}  // namespace

unsigned pool_size(unsigned loops_on_node, const device_config& cfg) noexcept {
  const unsigned per_loop = cfg.rx_descriptors + cfg.tx_descriptors + cfg.held_per_loop + pool_cache;
  unsigned n = loops_on_node * per_loop + 1024;
  unsigned p = 1;
  while (p - 1 < n) p <<= 1;
  return p - 1;
}

result<std::unique_ptr<dpdk_device>> dpdk_device::open(std::uint16_t port, const device_config& cfg) {
  std::unique_ptr<dpdk_device> d(new dpdk_device());
  d->port_ = port;
  d->cfg_ = cfg;
  const auto queues = static_cast<std::uint16_t>(cfg.queue_nodes.size());
  d->gates_ = std::make_unique<queue_gate[]>(queues);
  rte_eth_dev_info info{};
  if (int rc = rte_eth_dev_info_get(port, &info); rc != 0) return error{rte_error("rte_eth_dev_info_get", rc), {}};
  d->driver_ = info.driver_name != nullptr ? info.driver_name : "?";
  d->socket_ = rte_eth_dev_socket_id(port);
  if (info.max_rx_queues < queues || info.max_tx_queues < queues) {
    return error{"port " + std::to_string(port) + " (" + d->driver_ + ") offers " +
                     std::to_string(std::min(info.max_rx_queues, info.max_tx_queues)) + " RX/TX queue pairs, the plan has " +
                     std::to_string(queues) + " loops (one queue pair each): use --cores=" +
                     std::to_string(std::min(info.max_rx_queues, info.max_tx_queues)) +
                     (d->driver_ == "net_af_packet" ? " or qpairs=N in the vdev" : ""),
                 {}};
  }

  // Checksums: whatever the device offers, in both directions.
  rte_eth_conf conf{};
  const std::uint64_t rx_want = RTE_ETH_RX_OFFLOAD_IPV4_CKSUM | RTE_ETH_RX_OFFLOAD_UDP_CKSUM | RTE_ETH_RX_OFFLOAD_TCP_CKSUM;
  const std::uint64_t tx_want = RTE_ETH_TX_OFFLOAD_IPV4_CKSUM | RTE_ETH_TX_OFFLOAD_UDP_CKSUM | RTE_ETH_TX_OFFLOAD_TCP_CKSUM;
  conf.rxmode.offloads = info.rx_offload_capa & rx_want;
  conf.txmode.offloads = info.tx_offload_capa & tx_want;
  d->caps_.rx_ipv4_checksum = (conf.rxmode.offloads & RTE_ETH_RX_OFFLOAD_IPV4_CKSUM) != 0;
  d->caps_.rx_udp_checksum = (conf.rxmode.offloads & RTE_ETH_RX_OFFLOAD_UDP_CKSUM) != 0;
  d->caps_.rx_tcp_checksum = (conf.rxmode.offloads & RTE_ETH_RX_OFFLOAD_TCP_CKSUM) != 0;
  d->caps_.tx_ipv4_checksum = (conf.txmode.offloads & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM) != 0;
  d->caps_.tx_udp_checksum = (conf.txmode.offloads & RTE_ETH_TX_OFFLOAD_UDP_CKSUM) != 0;
  d->caps_.tx_tcp_checksum = (conf.txmode.offloads & RTE_ETH_TX_OFFLOAD_TCP_CKSUM) != 0;
  // Steering: RSS with our key over addresses and ports where the device
  // has it (the RETA follows once the port runs). Devices without it (tap,
  // af_packet) choose queues themselves; the stacks forward what lands on
  // the wrong loop (inet::flow_steering, stack::deliver).
  const std::uint64_t rss =
      info.flow_type_rss_offloads & (RTE_ETH_RSS_IPV4 | RTE_ETH_RSS_FRAG_IPV4 | RTE_ETH_RSS_NONFRAG_IPV4_TCP |
                                     RTE_ETH_RSS_NONFRAG_IPV4_UDP);
  const bool tcp_rss = (rss & RTE_ETH_RSS_NONFRAG_IPV4_TCP) != 0;
  const bool want_rss = queues > 1 && tcp_rss && info.reta_size != 0 &&
                        (info.hash_key_size == 0 || info.hash_key_size == inet::flow_steering::key_len);
  std::array<std::uint8_t, inet::flow_steering::key_len> key = inet::flow_steering::default_key;
  if (want_rss) {
    conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
    conf.rx_adv_conf.rss_conf.rss_hf = rss;
    conf.rx_adv_conf.rss_conf.rss_key = key.data();
    conf.rx_adv_conf.rss_conf.rss_key_len = static_cast<std::uint8_t>(key.size());
  }
  int rc = rte_eth_dev_configure(port, queues, queues, &conf);
  bool rss_on = want_rss && rc == 0;
  if (rc != 0 && want_rss) {
    conf.rxmode.mq_mode = RTE_ETH_MQ_RX_NONE;
    conf.rx_adv_conf.rss_conf = {};
    rc = rte_eth_dev_configure(port, queues, queues, &conf);
  }
  if (rc != 0) return error{rte_error("rte_eth_dev_configure", rc), {}};
  std::uint16_t nrx = cfg.rx_descriptors, ntx = cfg.tx_descriptors;
  if (rc = rte_eth_dev_adjust_nb_rx_tx_desc(port, &nrx, &ntx); rc != 0) {
    return error{rte_error("rte_eth_dev_adjust_nb_rx_tx_desc", rc), {}};
  }
  d->cfg_.rx_descriptors = nrx;
  d->cfg_.tx_descriptors = ntx;
  std::uint16_t mtu = 1500;
  if (rte_eth_dev_get_mtu(port, &mtu) == 0 && mtu >= 576) d->caps_.mtu = std::min<std::uint16_t>(mtu, 1500);
  d->caps_.headroom = RTE_PKTMBUF_HEADROOM;
  d->caps_.data_room = RTE_MBUF_DEFAULT_DATAROOM;

  // A pool per NUMA node that has loops; each queue takes its loop's.
  for (std::size_t q = 0; q < queues; ++q) {
    const int node = cfg.queue_nodes[q];
    if (std::any_of(d->pools_.begin(), d->pools_.end(), [&](const node_pool& p) { return p.node == node; })) continue;
    const auto on_node = static_cast<unsigned>(std::count(cfg.queue_nodes.begin(), cfg.queue_nodes.end(), node));
    const std::string name = "sluice_p" + std::to_string(port) + "_n" + std::to_string(node + 1);
    rte_mempool* mp = nullptr;
    if (d->driver_ == "net_af_xdp") {
      auto r = af_xdp_pool(name, pool_size(on_node, d->cfg_), node < 0 ? SOCKET_ID_ANY : node);
      if (!r) {
        return error{"cannot create the packet pool for NUMA node " + std::to_string(node) + ": " + r.err().message,
                     {}};
      }
      mp = *r;
    } else {
      mp = rte_pktmbuf_pool_create(name.c_str(), pool_size(on_node, d->cfg_), pool_cache, priv_size,
                                   RTE_MBUF_DEFAULT_BUF_SIZE, node < 0 ? SOCKET_ID_ANY : node);
    }
    if (mp == nullptr) {
      return error{"cannot create the packet pool for NUMA node " + std::to_string(node) + " (" +
                       std::to_string(pool_size(on_node, d->cfg_)) + " mbufs): " + rte_strerror(rte_errno) +
                       " (more memory: -m in --dpdk-args, or more hugepages)",
                   {}};
    }
    d->pools_.push_back({node, mp});
  }
  for (std::uint16_t q = 0; q < queues; ++q) {
    const int node = cfg.queue_nodes[q];
    const unsigned sock = node < 0 ? static_cast<unsigned>(SOCKET_ID_ANY) : static_cast<unsigned>(node);
    rte_eth_rxconf rxq = info.default_rxconf;
    rxq.offloads = conf.rxmode.offloads;
    if (rc = rte_eth_rx_queue_setup(port, q, nrx, sock, &rxq, d->pool_of(q)); rc != 0) {
      return error{rte_error(("rte_eth_rx_queue_setup(queue " + std::to_string(q) + ")").c_str(), rc), {}};
    }
    rte_eth_txconf txq = info.default_txconf;
    txq.offloads = conf.txmode.offloads;
    if (rc = rte_eth_tx_queue_setup(port, q, ntx, sock, &txq); rc != 0) {
      return error{rte_error(("rte_eth_tx_queue_setup(queue " + std::to_string(q) + ")").c_str(), rc), {}};
    }
  }
  if (rc = rte_eth_dev_start(port); rc != 0) return error{rte_error("rte_eth_dev_start", rc), {}};
  d->started_ = true;
  d->running_ = true;
  if (rss_on) {
    // RETA entry i -> the queue of loop i % loops: what flow_steering's
    // table says, so that device and stacks agree on every flow's owner.
    const std::uint16_t size = info.reta_size;
    std::vector<rte_eth_rss_reta_entry64> reta((size + RTE_ETH_RETA_GROUP_SIZE - 1) / RTE_ETH_RETA_GROUP_SIZE);
    const auto loops = static_cast<unsigned>(cfg.loop_queues.empty() ? queues : cfg.loop_queues.size());
    for (std::uint16_t i = 0; i < size; ++i) {
      auto& group = reta[i / RTE_ETH_RETA_GROUP_SIZE];
      group.mask |= std::uint64_t{1} << (i % RTE_ETH_RETA_GROUP_SIZE);
      const unsigned loop = i % loops;
      group.reta[i % RTE_ETH_RETA_GROUP_SIZE] =
          cfg.loop_queues.empty() ? static_cast<std::uint16_t>(loop) : cfg.loop_queues[loop];
    }
    if (rte_eth_dev_rss_reta_update(port, reta.data(), size) == 0) {
      d->hardware_steering_ = true;
      d->reta_size_ = size;
    } else {
      rss_on = false;
    }
  }
  if (d->hardware_steering_) {
    d->steering_ = "RSS: Toeplitz key and a " + std::to_string(d->reta_size_) +
                   "-entry RETA programmed by sluice; every flow reaches its owner's queue";
  } else if (queues > 1) {
    d->steering_ = std::string(want_rss ? "RSS refused by the device" : "no RSS on this device") +
                   ": the device picks queues; segments that land on another loop are forwarded to their owner "
                   "through the mailboxes (software table)";
  } else {
    d->steering_ = "one queue: one loop owns every flow";
  }
  rte_ether_addr addr{};
  if (rte_eth_macaddr_get(port, &addr) == 0) {
    for (std::size_t i = 0; i < 6; ++i) d->mac_.bytes[i] = addr.addr_bytes[i];
  }
  return d;
}

bool dpdk_device::wait_for_link(std::chrono::milliseconds each, unsigned tries) noexcept {
  for (unsigned t = 0; t < tries; ++t) {
    if (t > 0 && !restart()) continue;
    // memif reports no link event: look every millisecond.
    const auto end = std::chrono::steady_clock::now() + each;
    do {
      if (link_up()) return true;
      rte_delay_us_sleep(1000);
    } while (std::chrono::steady_clock::now() < end);
  }
  return false;
}

bool dpdk_device::restart() noexcept {
  if (running_) (void)rte_eth_dev_stop(port_);
  running_ = rte_eth_dev_start(port_) == 0;
  return running_;
}

bool dpdk_device::link_up() const noexcept {
  rte_eth_link l{};
  return rte_eth_link_get_nowait(port_, &l) == 0 && l.link_status == RTE_ETH_LINK_UP;
}

bool dpdk_device::close_gates(std::chrono::nanoseconds timeout, const std::atomic<bool>& stop) noexcept {
  const std::uint32_t closed = epoch_.load(std::memory_order_relaxed) | 1u;
  epoch_.store(closed, std::memory_order_release);
  const auto end = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    bool all = true;
    for (unsigned q = 0; q < queues() && all; ++q) all = gates_[q].seen.load(std::memory_order_acquire) == closed;
    if (all) return true;
    if (stop.load(std::memory_order_relaxed) || std::chrono::steady_clock::now() >= end) {
      open_gates();
      return false;
    }
    // No event to wait on: a loop sees the epoch at its next poll.
    rte_delay_us_sleep(100);
  }
}

void dpdk_device::open_gates() noexcept {
  const std::uint32_t e = epoch_.load(std::memory_order_relaxed);
  if ((e & 1u) != 0) epoch_.store(e + 1, std::memory_order_release);
}

dpdk_device::~dpdk_device() {
  if (started_) {
    if (running_) (void)rte_eth_dev_stop(port_);
    (void)rte_eth_dev_close(port_);
  }
  for (auto& p : pools_) rte_mempool_free(p.pool);
}

rte_mempool* dpdk_device::pool_of(unsigned queue) const noexcept {
  const int node = queue < cfg_.queue_nodes.size() ? cfg_.queue_nodes[queue] : -1;
  for (const auto& p : pools_)
    if (p.node == node) return p.pool;
  return pools_.empty() ? nullptr : pools_.front().pool;
}

std::string dpdk_device::link() const {
  rte_eth_link l{};
  if (rte_eth_link_get_nowait(port_, &l) != 0) return "link state unknown";
  if (l.link_status == RTE_ETH_LINK_DOWN) return "link down";
  std::string speed = l.link_speed == RTE_ETH_SPEED_NUM_UNKNOWN || l.link_speed == RTE_ETH_SPEED_NUM_NONE
                          ? "speed unknown"
                          : std::to_string(l.link_speed) + " Mbps";
  return "link up, " + speed + (l.link_duplex == RTE_ETH_LINK_FULL_DUPLEX ? ", full duplex" : ", half duplex");
}

std::string dpdk_device::describe() const {
  auto on_off = [](bool ip, bool udp, bool tcp) {
    std::string s;
    if (ip) s += "IPv4";
    if (udp) s += std::string(s.empty() ? "" : "+") + "UDP";
    if (tcp) s += std::string(s.empty() ? "" : "+") + "TCP";
    return s.empty() ? std::string("software") : s;
  };
  std::string pools;
  for (const auto& p : pools_) {
    pools += (pools.empty() ? "" : ", ") + std::to_string(p.pool->size) + " mbufs on " +
             (p.node < 0 ? std::string("any node") : "node " + std::to_string(p.node));
  }
  return "port " + std::to_string(port_) + " (" + driver_ + ", " + mac_.to_string() + ", NUMA node " +
         (socket_ < 0 ? std::string("none") : std::to_string(socket_)) + "): " + std::to_string(queues()) +
         " RX/TX queue pair" + (queues() == 1 ? "" : "s") + " of " + std::to_string(cfg_.rx_descriptors) + "/" +
         std::to_string(cfg_.tx_descriptors) + " descriptors; " + steering_ + "; checksums rx " +
         on_off(caps_.rx_ipv4_checksum, caps_.rx_udp_checksum, caps_.rx_tcp_checksum) + ", tx " +
         on_off(caps_.tx_ipv4_checksum, caps_.tx_udp_checksum, caps_.tx_tcp_checksum) + "; MTU " + std::to_string(caps_.mtu) + "; pools: " +
         pools + "; " + link();
}

void dpdk_device::metrics(metric_list& out) const {
  const std::string p = "dpdk.port" + std::to_string(port_) + ".";
  rte_eth_stats s{};
  if (rte_eth_stats_get(port_, &s) == 0) {
    out.push_back({p + "ipackets", s.ipackets});
    out.push_back({p + "opackets", s.opackets});
    out.push_back({p + "ibytes", s.ibytes});
    out.push_back({p + "obytes", s.obytes});
    out.push_back({p + "imissed", s.imissed});
    out.push_back({p + "ierrors", s.ierrors});
    out.push_back({p + "oerrors", s.oerrors});
    out.push_back({p + "rx_nombuf", s.rx_nombuf});
    const unsigned n = std::min<unsigned>(queues(), RTE_ETHDEV_QUEUE_STAT_CNTRS);
    for (unsigned q = 0; q < n; ++q) {
      const std::string qp = p + "q" + std::to_string(q) + ".";
      out.push_back({qp + "ipackets", s.q_ipackets[q]});
      out.push_back({qp + "opackets", s.q_opackets[q]});
      out.push_back({qp + "ibytes", s.q_ibytes[q]});
      out.push_back({qp + "obytes", s.q_obytes[q]});
      out.push_back({qp + "errors", s.q_errors[q]});
    }
  }
  rte_eth_link l{};
  if (rte_eth_link_get_nowait(port_, &l) == 0) {
    out.push_back({p + "link_up", l.link_status == RTE_ETH_LINK_UP ? 1u : 0u});
    out.push_back({p + "link_speed_mbps", l.link_speed});
  }
  if (memif_watched_) {
    out.push_back({p + "memif_link_downs", memif_link_downs_.load(std::memory_order_relaxed)});
    out.push_back({p + "memif_reconnects", memif_reconnects_.load(std::memory_order_relaxed)});
  }
  for (const auto& pl : pools_) {
    out.push_back({p + "pool_n" + std::to_string(pl.node + 1) + ".available", rte_mempool_avail_count(pl.pool)});
  }
}

}  // namespace sluice::dpdk
