#include "sluice/inet/stack.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "sluice/core/handler.hpp"
#include "sluice/core/task.hpp"
#include "sluice/inet/checksum.hpp"
#include "sluice/inet/flow_steering.hpp"

namespace sluice::inet {

namespace {

constexpr std::uint32_t limited_broadcast = 0xffffffffu;
constexpr std::size_t udp_ip_headers = ipv4_min_header_len + udp_header_len;
// Bytes a reply needs in front of an L4 payload: Ethernet, IPv4, UDP.
constexpr std::uint32_t reply_headroom = ethernet_header_len + udp_ip_headers;

[[nodiscard]] bool is_group_ip(std::uint32_t a) noexcept { return (a >> 28) >= 0xe; }  // multicast and class E

}  // namespace

stack::stack(transport_loop& loop, packet_port& port, const stack_options& opts)
    : loop_(loop),
      port_(port),
      opts_(opts),
      caps_(port.capabilities()),
      mac_(port.mac()),
      release_(port.release_function()),
      arp_(opts.arp, stats_),
      reasm_(opts.reassembly, stats_),
      tcp_(*this, loop, opts.tcp, stats_) {
  maintenance_.bind<&stack::on_maintenance>(this);
  sockets_.reserve(16);
  loopback_.resize(std::max<std::size_t>(opts_.loopback_capacity, 1));
  looped_.resize(loopback_.size());
  if (opts_.group != nullptr) opts_.group->join(loop_.id(), this);
  tcp_.set_steering(opts_.steering, opts_.group != nullptr ? opts_.group->size() : 1);
}

stack::~stack() {
  if (opts_.group != nullptr) opts_.group->leave(loop_.id());
  for (std::size_t i = 0; i < tx_n_; ++i) segment_unref(&tx_[i]->seg);
  for (std::size_t i = 0; i < spare_n_; ++i) segment_unref(&spare_[i]->seg);
  for (std::size_t i = 0; i < loopback_n_; ++i) segment_unref(&loopback_[i]->seg);
}

// ---- receive ------------------------------------------------------------------------

std::size_t stack::poll() noexcept {
  std::size_t total = loopback_n_;
  receive_looped();
  for (unsigned b = 0; b < opts_.max_bursts; ++b) {
    const std::size_t n = port_.receive(rx_.data(), rx_.size());
    if (n == 0) break;
    receive(rx_.data(), n);
    total += n;
    if (n < rx_.size()) break;  // the queue is drained
  }
  return total;
}

void stack::receive(packet* const* pkts, std::size_t n) noexcept {
  // Views a handler takes of pool segments stay valid until it returns, as
  // on the kernel transports (see segment_pool::set_deferred).
  segment_pool& pool = loop_.pool();
  pool.set_deferred(true);
  for (std::size_t i = 0; i < n; ++i) handle(pkts[i]);
  pool.set_deferred(false);
  pool.reclaim();
  // What TCP received goes to the applications once per burst.
  tcp_.end_of_burst();
}

void stack::receive_looped() noexcept {
  // Frames this stack sent to itself, received as if from the wire (their
  // handlers may send more: those wait for the next poll).
  if (loopback_n_ == 0) return;
  const std::size_t n = loopback_n_;
  std::swap(loopback_, looped_);
  loopback_n_ = 0;
  receive(looped_.data(), n);
}

void stack::loop_back(packet* p) noexcept {
  if (loopback_n_ == loopback_.size()) return drop(p, drop_reason::tx_queue_full);
  mac_.store(p->data());
  // Checksums an offload was to fill in were never computed: mark the frame
  // so the receive path trusts it.
  p->meta.rx = packet_meta::rx_loopback;
  stats_.tx_frames.add();
  stats_.tx_bytes.add(p->size());
  loopback_[loopback_n_++] = p;
}

void stack::drop(packet* p, drop_reason why) noexcept {
  stats_.drop(why);
  segment_unref(&p->seg);
}

void stack::drop_all(const l4_data& d, drop_reason why) noexcept {
  stats_.drop(why);  // one count per datagram, however many fragments it had
  if (d.single != nullptr) {
    segment_unref(&d.single->seg);
    return;
  }
  for (std::size_t i = 0; i < d.count; ++i) segment_unref(&d.frags[i].p->seg);
}

void stack::handle(packet* p) noexcept {
  stats_.rx_frames.add();
  stats_.rx_bytes.add(p->size());
  if ((p->meta.rx & packet_meta::rx_chained) != 0) return drop(p, drop_reason::multi_segment);
  ethernet_header eth;
  if (auto r = parse_ethernet(p->data(), p->size(), eth); r != drop_reason::none) return drop(p, r);
  if (eth.dst != mac_ && !eth.dst.is_broadcast()) return drop(p, drop_reason::eth_not_for_us);
  switch (eth.type) {
    case ethertype_arp:
      return handle_arp(p, eth);
    case ethertype_ipv4:
      return handle_ipv4(p, eth);
    default:
      return drop(p, drop_reason::eth_unsupported_type);
  }
}

void stack::handle_arp(packet* p, const ethernet_header& eth) noexcept {
  arp_message m;
  std::byte* msg = p->data() + ethernet_header_len;
  if (auto r = parse_arp(msg, p->size() - ethernet_header_len, m); r != drop_reason::none) return drop(p, r);
  (m.op == arp_op_request ? stats_.arp_requests_in : stats_.arp_replies_in).add();
  const interface_config& ifc = opts_.iface;
  if (m.sender_mac.is_group() || m.sender_mac.is_zero() || m.sender_ip == limited_broadcast ||
      is_group_ip(m.sender_ip) || (ifc.prefix < 31 && m.sender_ip == ifc.subnet_broadcast())) {
    return drop(p, drop_reason::arp_bad_sender);
  }
  if (m.sender_ip == ifc.address) return drop(p, drop_reason::arp_conflict);
  // Only our link's hosts are neighbours: a sender from another subnet
  // would be a cache entry we never use (and a way to flood the table).
  if (m.sender_ip != 0 && !ifc.on_link(m.sender_ip) && m.sender_ip != ifc.gateway) {
    return drop(p, drop_reason::arp_off_subnet);
  }
  const bool for_us = m.target_ip == ifc.address;
  // RFC 826's merge: update a neighbour we know; add it only if it talks to
  // us. A probe (sender 0.0.0.0, RFC 5227) teaches nothing. A live
  // neighbour's MAC is not replaced on one message's word: the known MAC
  // is asked first (arp_cache, "Forgery and floods").
  if (m.sender_ip != 0) {
    const mac_address learned = m.sender_mac;
    const auto r = arp_.learn_from_wire(m.sender_ip, learned, loop_.now(), for_us, [this, learned](packet* q) {
      learned.store(q->data());
      queue_tx(q);
    });
    if (r.changed) {
      stats_.arp_learned.add();
      tell_peers(m.sender_ip, learned);
    } else if (r.confirm_peers && for_us && m.op == arp_op_reply) {
      // A reply to us from the MAC we know: another loop may be probing it
      // (a claim came in on its queue, this answer on ours).
      tell_peers(m.sender_ip, learned);
    }
    if (r.probe) {
      send_arp(arp_op_request, r.probe_to, r.probe_to, m.sender_ip);
      schedule_maintenance();
    }
  }
  if (!for_us) return drop(p, drop_reason::arp_not_for_us);
  if (m.op != arp_op_request) {
    segment_unref(&p->seg);  // a reply to us: learned above, nothing to send
    return;
  }
  // The answer goes out in the request's own buffer.
  arp_message reply{arp_op_reply, mac_, ifc.address, m.sender_mac, m.sender_ip};
  write_ethernet(p->data(), m.sender_mac, mac_, ethertype_arp);
  write_arp(msg, reply);
  p->seg.end = p->seg.begin + ethernet_header_len + arp_message_len;
  p->meta = {};
  (void)eth;
  stats_.arp_replies_out.add();
  stats_.tx_in_place.add();
  queue_tx(p);
}

void stack::handle_ipv4(packet* p, const ethernet_header& eth) noexcept {
  const std::uint8_t rx = p->meta.rx;
  if (caps_.rx_ipv4_checksum && (rx & packet_meta::rx_ip_checksum_bad) != 0) {
    return drop(p, drop_reason::ipv4_bad_checksum);
  }
  const bool verify = !(caps_.rx_ipv4_checksum && (rx & packet_meta::rx_ip_checksum_good) != 0) &&
                      (rx & packet_meta::rx_loopback) == 0;
  ipv4_header h;
  if (auto r = parse_ipv4(p->data() + ethernet_header_len, p->size() - ethernet_header_len, verify, h);
      r != drop_reason::none) {
    return drop(p, r);
  }
  const interface_config& ifc = opts_.iface;
  // An end host: what is not addressed to us is not forwarded, only counted.
  if (!ifc.accepts(h.dst)) return drop(p, drop_reason::ipv4_not_for_us);
  // A reply to these sources would go to a group or to ourselves.
  if (h.src == 0 || h.src == limited_broadcast || is_group_ip(h.src) ||
      (h.src == ifc.address && (rx & packet_meta::rx_loopback) == 0) ||
      (ifc.prefix < 31 && h.src == ifc.subnet_broadcast())) {
    return drop(p, drop_reason::ipv4_bad_source);
  }
  // From here the segment covers the IP payload only (link padding cut off).
  p->seg.end = p->seg.begin + static_cast<std::uint32_t>(ethernet_header_len + h.total_len);
  p->seg.begin += static_cast<std::uint32_t>(ethernet_header_len + h.header_len);
  if (!h.is_fragment()) {
    deliver(l4_data{&h, nullptr, 1, p, &eth});
    return;
  }
  ipv4_reassembler::datagram whole;
  const bool complete = reasm_.add(p, h, loop_.now(), whole);
  if (!complete) {
    if (reasm_.held_packets() != 0) schedule_maintenance();
    return;
  }
  deliver(l4_data{&whole.header, whole.fragments, whole.count, nullptr, &eth});
}

void stack::deliver(const l4_data& d) noexcept {
  // The IPv4 demux.
  switch (d.ip->protocol) {
    case ip_protocol_udp:
      return handle_udp(d);
    case ip_protocol_icmp:
      return handle_icmp(d);
    case ip_protocol_tcp:
      // Peers send TCP with DF and segments that fit the path; a segment in
      // fragments is not worth a copy to make it whole.
      if (d.single == nullptr) return drop_all(d, drop_reason::tcp_fragmented);
      return handle_tcp(d.single, *d.ip);
    default:
      return drop_all(d, drop_reason::ipv4_unsupported_protocol);
  }
}

void stack::handle_tcp(packet* p, const ipv4_header& ip) noexcept {
  const std::uint8_t rx = p->meta.rx;
  if (caps_.rx_tcp_checksum && (rx & packet_meta::rx_l4_checksum_bad) != 0) {
    return drop(p, drop_reason::tcp_bad_checksum);
  }
  const bool checksum_ok = (rx & packet_meta::rx_loopback) != 0 ||
                           (caps_.rx_tcp_checksum && (rx & packet_meta::rx_l4_checksum_good) != 0);
  // Steering: a segment of a flow another loop owns goes there (the device
  // could not put it on that loop's queue). The owner is a pure function
  // of the addresses and ports, the same RSS computes.
  stack_group* g = opts_.group;
  if (opts_.steering != nullptr && g != nullptr && g->size() > 1 && p->size() >= 4) {
    const std::uint16_t sport = load_be16(p->data());
    const std::uint16_t dport = load_be16(p->data() + 2);
    const unsigned owner = opts_.steering->owner(ip.src, ip.dst, sport, dport);
    if (owner != loop_.id()) {
      stats_.tcp_steered_out.add();
      const std::uint32_t src = ip.src, dst = ip.dst;
      loop_.send_to(owner, task([g, p, src, dst, checksum_ok](loop_base& there) {
        if (stack* s = g->member(there.id())) {
          s->tcp_forwarded(p, ip_address::v4(src), ip_address::v4(dst), checksum_ok);
        } else {
          segment_unref(&p->seg);
        }
      }));
      return;
    }
  }
  tcp_.input(p, ip_address::v4(ip.src), ip_address::v4(ip.dst), checksum_ok);
}

void stack::tcp_forwarded(packet* p, const ip_address& src, const ip_address& dst, bool checksum_ok) noexcept {
  stats_.tcp_steered_in.add();
  segment_pool& pool = loop_.pool();
  pool.set_deferred(true);
  tcp_.input(p, src, dst, checksum_ok);
  pool.set_deferred(false);
  pool.reclaim();
  tcp_.end_of_burst();
}

void stack::handle_udp(const l4_data& d) noexcept {
  auto at = [&](std::size_t i) { return d.single != nullptr ? d.single : d.frags[i].p; };
  packet* first = at(0);
  // A first fragment carries at least 8 bytes (fragments are 8-byte blocks),
  // so the header is never split.
  if (first->size() < udp_header_len) return drop_all(d, drop_reason::udp_truncated);
  udp_header u;
  if (auto r = parse_udp(first->data(), d.ip->payload_len(), u); r != drop_reason::none) return drop_all(d, r);
  // Bytes past the UDP length are not the datagram's.
  std::uint32_t left = u.length;
  for (std::size_t i = 0; i < d.count; ++i) {
    segment& s = at(i)->seg;
    const std::uint32_t keep = std::min(left, s.size());
    s.end = s.begin + keep;
    left -= keep;
  }
  // (Frames looped back to ourselves may carry a checksum left to an offload.)
  if (u.checksum != 0 && (first->meta.rx & packet_meta::rx_loopback) == 0) {
    const std::uint8_t rx = first->meta.rx;
    const bool device_checked = d.single != nullptr && caps_.rx_udp_checksum;
    if (device_checked && (rx & packet_meta::rx_l4_checksum_bad) != 0) {
      return drop_all(d, drop_reason::udp_bad_checksum);
    }
    if (!(device_checked && (rx & packet_meta::rx_l4_checksum_good) != 0)) {
      internet_checksum c;
      add_pseudo_header(c, d.ip->src, d.ip->dst, ip_protocol_udp, u.length);
      for (std::size_t i = 0; i < d.count; ++i) c.add(at(i)->data(), at(i)->size());
      if (c.finish() != 0) return drop_all(d, drop_reason::udp_bad_checksum);
    }
  }
  udp_socket* s = find_socket(u.dst_port);
  if (s == nullptr) return drop_all(d, drop_reason::udp_no_socket);
  first->seg.begin += udp_header_len;
  // The payload stays in the buffers it came in: the chain holds them.
  buffer_chain payload(&loop_.pool());
  for (std::size_t i = 0; i < d.count; ++i) {
    packet* q = at(i);
    if (q->size() == 0) {
      segment_unref(&q->seg);
    } else {
      payload.append(&q->seg);
    }
  }
  stats_.udp_in.add();
  loop_.stats().datagrams_in.add();
  loop_.stats().bytes_read.add(payload.size());
  const endpoint from = endpoint::ipv4(d.ip->src, u.src_port);
  s->get_handler().on_datagram_chain(*s, from, payload);
}

void stack::handle_frag_needed(const l4_data& d, packet* first) noexcept {
  // RFC 1191: type 3 code 4, the next-hop MTU in bytes 6-7, then the IP
  // header and at least 8 bytes of the datagram that did not fit (ours).
  const std::byte* m = first->data();
  const std::size_t n = first->size();
  if (n < icmp_header_len + ipv4_min_header_len + 8) return drop_all(d, drop_reason::icmp_truncated);
  const std::byte* q = m + icmp_header_len;
  const std::size_t ihl = static_cast<std::size_t>(std::to_integer<unsigned>(q[0]) & 0xfu) * 4;
  if ((std::to_integer<unsigned>(q[0]) >> 4) != 4 || ihl < ipv4_min_header_len || n < icmp_header_len + ihl + 8) {
    return drop_all(d, drop_reason::icmp_truncated);
  }
  const std::uint8_t protocol = std::to_integer<std::uint8_t>(q[9]);
  const std::uint32_t quoted_src = load_be32(q + 12);
  if (protocol != ip_protocol_tcp || quoted_src != opts_.iface.address) {
    return drop_all(d, drop_reason::icmp_unverified);  // only TCP keeps a path MSS
  }
  const std::byte* t = q + ihl;
  const std::uint32_t remote = load_be32(q + 16);
  const std::uint16_t local_port = load_be16(t);
  const std::uint16_t remote_port = load_be16(t + 2);
  const std::uint32_t seq = load_be32(t + 4);
  const std::uint32_t mtu = load_be16(m + 6);
  const std::uint32_t quoted_len = load_be16(q + 2);
  auto release_all = [&] {
    if (d.single != nullptr) {
      segment_unref(&d.single->seg);
    } else {
      for (std::size_t i = 0; i < d.count; ++i) segment_unref(&d.frags[i].p->seg);
    }
  };
  // The connection may be another loop's: the ICMP came on whatever queue
  // the device chose for it. Its owner is the loop its segments steer to.
  stack_group* g = opts_.group;
  if (opts_.steering != nullptr && g != nullptr && g->size() > 1) {
    const unsigned owner = opts_.steering->owner(remote, opts_.iface.address, remote_port, local_port);
    if (owner != loop_.id()) {
      release_all();
      loop_.send_to(owner, task([g, remote, local_port, remote_port, seq, mtu, quoted_len](loop_base& there) {
        if (stack* s = g->member(there.id())) {
          if (!s->tcp().frag_needed(ip_address::v4(s->config().address), ip_address::v4(remote), local_port,
                                    remote_port, seq, mtu, quoted_len)) {
            s->stats().drop(drop_reason::icmp_unverified);
          }
        }
      }));
      return;
    }
  }
  if (!tcp_.frag_needed(ip_address::v4(opts_.iface.address), ip_address::v4(remote), local_port, remote_port, seq,
                        mtu, quoted_len)) {
    return drop_all(d, drop_reason::icmp_unverified);
  }
  release_all();
}

void stack::handle_icmp(const l4_data& d) noexcept {
  auto at = [&](std::size_t i) { return d.single != nullptr ? d.single : d.frags[i].p; };
  packet* first = at(0);
  icmp_header ih;
  if (auto r = parse_icmp(first->data(), first->size(), ih); r != drop_reason::none) return drop_all(d, r);
  internet_checksum c;
  std::size_t total = 0;
  for (std::size_t i = 0; i < d.count; ++i) {
    c.add(at(i)->data(), at(i)->size());
    total += at(i)->size();
  }
  if (c.finish() != 0) return drop_all(d, drop_reason::icmp_bad_checksum);
  if (ih.type == icmp_dest_unreachable && ih.code == icmp_code_frag_needed && d.ip->dst == opts_.iface.address) {
    return handle_frag_needed(d, first);
  }
  // Echo requests to our own address only: broadcast pings go unanswered.
  if (ih.type != icmp_echo_request || ih.code != 0 || d.ip->dst != opts_.iface.address) {
    return drop_all(d, drop_reason::icmp_ignored);
  }
  stats_.icmp_echo_replies.add();
  if (d.single != nullptr) {
    // In place: the request becomes the reply, sent back to the frame's
    // sender (no ARP round trip for a ping).
    packet* p = d.single;
    std::byte* m = p->data();
    m[0] = std::byte{icmp_echo_reply};
    store_checksum(m + 2, 0);
    store_checksum(m + 2, checksum_of(m, p->size()));
    const std::uint32_t dst = d.ip->src;
    const mac_address to = d.eth->src;
    p->meta = {};
    prepend_headers(p, ip_protocol_icmp, dst, next_ip_id(), 0, false, to);
    stats_.tx_in_place.add();
    queue_tx(p);
    return;
  }
  // Reassembled: the reply is copied into fresh buffers, fragmented again.
  std::byte hdr[icmp_header_len];
  std::memcpy(hdr, first->data(), icmp_header_len);
  hdr[0] = std::byte{icmp_echo_reply};
  store_checksum(hdr + 2, 0);
  // The rest of the message, as one sequence over the fragments.
  auto copy = [&](std::byte* dst, std::size_t off, std::size_t n) {
    std::size_t skip = icmp_header_len + off;
    for (std::size_t i = 0; i < d.count && n > 0; ++i) {
      const std::size_t len = at(i)->size();
      if (skip >= len) {
        skip -= len;
        continue;
      }
      const std::size_t take = std::min(n, len - skip);
      std::memcpy(dst, at(i)->data() + skip, take);
      dst += take;
      n -= take;
      skip = 0;
    }
  };
  internet_checksum sum;
  sum.add(hdr, icmp_header_len);
  {
    std::size_t skip = icmp_header_len;
    for (std::size_t i = 0; i < d.count; ++i) {
      const std::size_t len = at(i)->size();
      if (skip >= len) {
        skip -= len;
        continue;
      }
      sum.add(at(i)->data() + skip, len - skip);
      skip = 0;
    }
  }
  store_checksum(hdr + 2, sum.finish());
  stats_.tx_copied.add();
  (void)send_l4(ip_protocol_icmp, d.ip->src, hdr, total - icmp_header_len, copy);
  for (std::size_t i = 0; i < d.count; ++i) segment_unref(&at(i)->seg);
}

// ---- transmit -----------------------------------------------------------------------

packet* stack::fresh() noexcept {
  if (spare_n_ == 0) spare_n_ = port_.allocate(spare_.data(), spare_.size());
  if (spare_n_ == 0) return nullptr;
  return spare_[--spare_n_];
}

void stack::queue_tx(packet* p) noexcept {
  // Full: offer the device what we have first; only if it takes nothing
  // does the frame go (counted), so a slow device never grows our memory.
  if (tx_n_ == tx_.size()) (void)flush();
  if (tx_n_ == tx_.size()) return drop(p, drop_reason::tx_queue_full);
  stats_.tx_frames.add();
  stats_.tx_bytes.add(p->size());
  tx_[tx_n_++] = p;
}

bool stack::flush() noexcept {
  if (tx_n_ == 0) return true;
  const std::size_t sent = port_.transmit(tx_.data(), tx_n_);
  if (sent < tx_n_) std::memmove(tx_.data(), tx_.data() + sent, (tx_n_ - sent) * sizeof(packet*));
  tx_n_ -= sent;
  return tx_n_ == 0;
}

void stack::route(packet* p, std::uint32_t dst) noexcept {
  const interface_config& ifc = opts_.iface;
  if (dst == ifc.address) return loop_back(p);
  if (dst == limited_broadcast || (ifc.prefix < 31 && dst == ifc.subnet_broadcast())) {
    mac_address::broadcast().store(p->data());
    return queue_tx(p);
  }
  // Next hop: the destination itself on the subnet, else the gateway.
  const bool direct = ifc.on_link(dst);
  if (!direct && ifc.gateway == 0) return drop(p, drop_reason::no_route);
  const std::uint32_t hop = direct ? dst : ifc.gateway;
  const time_point now = loop_.now();
  if (const mac_address* m = arp_.lookup(hop, now)) {
    m->store(p->data());
    return queue_tx(p);
  }
  // Unresolved: the frame waits in the cache (bounded) while we ask.
  const auto held = arp_.hold(hop, p, now);
  if (held.send_request) {
    send_arp(arp_op_request, mac_address::broadcast(), mac_address{}, hop);
    schedule_maintenance();
  }
}

void stack::send_arp(std::uint16_t op, const mac_address& eth_dst, const mac_address& target_mac,
                     std::uint32_t target_ip) noexcept {
  packet* p = fresh();
  if (p == nullptr) {
    stats_.drop(drop_reason::no_buffer);
    return;
  }
  std::byte* f = p->data();
  write_ethernet(f, eth_dst, mac_, ethertype_arp);
  write_arp(f + ethernet_header_len, arp_message{op, mac_, opts_.iface.address, target_mac, target_ip});
  p->seg.end += ethernet_header_len + arp_message_len;
  (op == arp_op_request ? stats_.arp_requests_out : stats_.arp_replies_out).add();
  queue_tx(p);
}

std::uint16_t stack::next_ip_id() noexcept {
  // Loops share the sender address: each takes its own residue class so
  // that fragments of different loops' datagrams never share an id.
  const std::uint32_t loops = opts_.group != nullptr ? std::max(1u, opts_.group->size()) : 1;
  return static_cast<std::uint16_t>(ip_id_++ * loops + loop_.id());
}

void stack::finish_ipv4(packet* p, std::uint8_t protocol, std::uint32_t dst, std::uint16_t id,
                        std::uint16_t frag_offset, bool more) noexcept {
  prepend_headers(p, protocol, dst, id, frag_offset, more, mac_address{});  // route() fills in the MAC
  route(p, dst);
}

void stack::prepend_headers(packet* p, std::uint8_t protocol, std::uint32_t dst, std::uint16_t id,
                            std::uint16_t frag_offset, bool more, const mac_address& eth_dst) noexcept {
  const std::uint32_t l4_len = p->size();
  std::byte* iph = p->prepend(ipv4_min_header_len);
  ipv4_header h;
  h.total_len = static_cast<std::uint16_t>(ipv4_min_header_len + l4_len);
  h.id = id;
  h.fragment_offset = frag_offset;
  h.more_fragments = more;
  h.ttl = opts_.ttl;
  h.protocol = protocol;
  // TCP segments carry DF: a router that cannot forward one says so
  // (ICMP frag-needed, RFC 1191) and the connection's path MSS shrinks;
  // datagrams may be fragmented on the way, as the kernel's UDP allows.
  h.dont_fragment = protocol == ip_protocol_tcp;
  h.src = opts_.iface.address;
  h.dst = dst;
  write_ipv4(iph, h, !caps_.tx_ipv4_checksum);
  if (caps_.tx_ipv4_checksum) p->meta.tx |= packet_meta::tx_ip_checksum;
  p->meta.l3_len = ipv4_min_header_len;
  write_ethernet(p->prepend(ethernet_header_len), eth_dst, mac_, ethertype_ipv4);
  p->meta.l2_len = ethernet_header_len;
}

template <class Copy>
bool stack::send_l4(std::uint8_t protocol, std::uint32_t dst, const std::byte* l4_header, std::size_t payload_len,
                    Copy&& copy) noexcept {
  const std::size_t l4_len = udp_header_len + payload_len;  // ICMP's header is 8 bytes too
  const std::size_t room = caps_.mtu - ipv4_min_header_len;
  const std::uint16_t id = next_ip_id();
  // Fragments carry whole 8-byte blocks, except the last.
  const std::size_t piece = l4_len <= room ? l4_len : room / 8 * 8;
  for (std::size_t off = 0; off < l4_len; off += piece) {
    const std::size_t len = std::min(piece, l4_len - off);
    packet* p = fresh();
    if (p == nullptr) {
      stats_.drop(drop_reason::no_buffer);  // the rest of the datagram is lost, and counted
      return false;
    }
    std::byte* at = p->data();
    std::size_t done = 0;
    if (off < udp_header_len) {
      done = std::min(len, udp_header_len - off);
      std::memcpy(at, l4_header + off, done);
    }
    if (done < len) copy(at + done, off + done - udp_header_len, len - done);
    p->seg.end += static_cast<std::uint32_t>(len);
    const bool more = off + len < l4_len;
    if (more || off != 0) stats_.fragments_out.add();
    finish_ipv4(p, protocol, dst, id, static_cast<std::uint16_t>(off), more);
  }
  return true;
}

void stack::send_queued(udp_socket& u) noexcept {
  const std::uint16_t sport = u.local().port();
  const std::size_t n = u.queued_count();
  // In queue order: chains (zero copy where possible) and arena copies alike.
  for (std::size_t i = 0; i < n; ++i) {
    const udp_socket::queued& q = u.queued_at(i);
    if (q.to.family() != AF_INET) {
      loop_.stats().datagrams_dropped.add();  // IPv4 only: counted, not sent
      continue;
    }
    if (q.offset == udp_socket::chain_offset) {
      send_udp_chain(sport, q.to, u.queued_chain(i));
    } else {
      send_udp_bytes(sport, q.to, u.arena() + q.offset, q.size);
    }
  }
  u.dequeue(n);
}

void stack::send_udp_chain(std::uint16_t src_port, const endpoint& to, buffer_chain& payload) noexcept {
  const std::size_t n = payload.size();
  const std::uint32_t dst = to.v4_addr();
  // (Too big for one frame goes the copying way, which also refuses what is
  // too big for IPv4.)
  if (n + udp_ip_headers <= caps_.mtu && payload.segment_count() == 1) {
    // Zero copy: one of our own buffers, whole and unshared, with room for
    // the headers in front (an echo of what was received).
    segment* s = payload.pop_front_segment();
    if (s != nullptr && s->release == release_ && s->parent == nullptr && s->refs == 1 &&
        s->begin >= reply_headroom && s->size() == n) {
      packet* p = packet_of(s);
      p->meta = {};
      std::byte* uh = p->prepend(udp_header_len);
      const auto len = static_cast<std::uint16_t>(udp_header_len + n);
      write_udp(uh, udp_header{src_port, to.port(), len, 0});
      internet_checksum c;
      add_pseudo_header(c, opts_.iface.address, dst, ip_protocol_udp, len);
      if (caps_.tx_udp_checksum) {
        store_checksum(uh + 6, c.folded());
        p->meta.tx |= packet_meta::tx_udp_checksum;
      } else {
        c.add(uh, len);
        const std::uint16_t v = c.finish();
        store_checksum(uh + 6, v == 0 ? 0xffff : v);
      }
      stats_.udp_out.add();
      stats_.tx_in_place.add();
      loop_.stats().datagrams_out.add();
      loop_.stats().bytes_written.add(n);
      finish_ipv4(p, ip_protocol_udp, dst, next_ip_id(), 0, false);
      return;
    }
    if (s != nullptr) payload.append(s);
  }
  send_udp_copy(
      src_port, to, n,
      [&](internet_checksum& c) {
        payload.for_each_piece([&](std::string_view piece) {
          c.add(piece.data(), piece.size());
          return true;
        });
      },
      [&](std::byte* at, std::size_t off, std::size_t k) { payload.copy_out(at, k, off); });
  payload.clear();
}

void stack::send_udp_bytes(std::uint16_t src_port, const endpoint& to, const std::byte* data, std::size_t n) noexcept {
  send_udp_copy(
      src_port, to, n, [&](internet_checksum& c) { c.add(data, n); },
      [&](std::byte* at, std::size_t off, std::size_t k) { std::memcpy(at, data + off, k); });
}

template <class Sum, class Copy>
void stack::send_udp_copy(std::uint16_t src_port, const endpoint& to, std::size_t n, Sum&& sum_payload,
                          Copy&& copy) noexcept {
  if (n > udp_max_payload) {
    stats_.drop(drop_reason::too_big);
    loop_.stats().datagrams_dropped.add();
    return;
  }
  // Copied into fresh buffers (and fragmented if need be); the checksum
  // covers the whole datagram, so it is computed here, in software.
  const std::uint32_t dst = to.v4_addr();
  std::byte hdr[udp_header_len];
  const auto len = static_cast<std::uint16_t>(udp_header_len + n);
  write_udp(hdr, udp_header{src_port, to.port(), len, 0});
  internet_checksum c;
  add_pseudo_header(c, opts_.iface.address, dst, ip_protocol_udp, len);
  c.add(hdr, udp_header_len);
  sum_payload(c);
  const std::uint16_t v = c.finish();
  store_checksum(hdr + 6, v == 0 ? 0xffff : v);
  stats_.tx_copied.add();
  if (send_l4(ip_protocol_udp, dst, hdr, n, copy)) {
    stats_.udp_out.add();
    loop_.stats().datagrams_out.add();
    loop_.stats().bytes_written.add(n);
  } else {
    loop_.stats().datagrams_dropped.add();
  }
}

// ---- ARP knowledge across loops ------------------------------------------------------------

void stack::tell_peers(std::uint32_t ip, const mac_address& mac) noexcept {
  stack_group* g = opts_.group;
  if (g == nullptr || g->size() < 2) return;
  for (unsigned t = 0; t < g->size(); ++t) {
    if (t == loop_.id()) continue;
    loop_.send_to(t, task([g, ip, mac](loop_base& there) {
      if (stack* s = g->member(there.id())) s->learned_by_peer(ip, mac);
    }));
  }
}

void stack::learned_by_peer(std::uint32_t ip, const mac_address& mac) noexcept {
  const bool changed = arp_.learn(ip, mac, loop_.now(), true, [this, mac](packet* q) {
    mac.store(q->data());
    queue_tx(q);
  });
  if (changed) stats_.arp_learned_from_peers.add();
  // Frames released for this neighbour go out at the next poll.
}

// ---- timers ------------------------------------------------------------------------------

void stack::schedule_maintenance() noexcept {
  const time_point t = std::min(arp_.next_due(), reasm_.next_expiry());
  if (t == time_point::max()) {
    maintenance_.cancel();
    return;
  }
  if (!maintenance_.armed() || maintenance_.expiry() != t) loop_.timers().arm(maintenance_, t);
}

void stack::on_maintenance() noexcept {
  const time_point now = loop_.now();
  arp_.tick(
      now, [this](std::uint32_t ip) { send_arp(arp_op_request, mac_address::broadcast(), mac_address{}, ip); },
      [this](std::uint32_t ip, const mac_address& known) { send_arp(arp_op_request, known, known, ip); },
      [this](std::uint32_t ip, const mac_address& taken) {
        stats_.arp_learned.add();
        tell_peers(ip, taken);
      });
  reasm_.expire(now);
  schedule_maintenance();
  (void)flush();
}

// ---- control plane -----------------------------------------------------------------------

void stack::start() noexcept {
  if (!opts_.announce) return;
  // Gratuitous ARP: a request for our own address, so that neighbours
  // refresh (or learn) our MAC.
  send_arp(arp_op_request, mac_address::broadcast(), mac_address{}, opts_.iface.address);
  (void)flush();
}

udp_socket* stack::find_socket(std::uint16_t port) const noexcept {
  for (const auto& [p, s] : sockets_)
    if (p == port) return s;
  return nullptr;
}

result<udp_socket*> stack::udp_bind(const endpoint& at, datagram_handler& h) {
  const interface_config& ifc = opts_.iface;
  if (at.family() != AF_INET) {
    return error{"cannot bind " + at.to_string() + ": the user-space stack speaks IPv4 only", {}};
  }
  if (at.v4_addr() != 0 && at.v4_addr() != ifc.address) {
    return error{"cannot bind " + at.to_string() + ": not this interface's address (" + ifc.to_string() +
                     "); bind 0.0.0.0:PORT or " + format_ipv4(ifc.address) + ":PORT",
                 std::error_code(EADDRNOTAVAIL, std::system_category())};
  }
  std::uint16_t port = at.port();
  if (port == 0) {
    const unsigned loops = opts_.group != nullptr ? std::max(1u, opts_.group->size()) : 1;
    for (unsigned p = opts_.ephemeral_first; p <= opts_.ephemeral_last; ++p) {
      if (p % loops != loop_.id() % loops || find_socket(static_cast<std::uint16_t>(p)) != nullptr) continue;
      port = static_cast<std::uint16_t>(p);
      break;
    }
    if (port == 0) return error{"no ephemeral UDP port left on loop " + std::to_string(loop_.id()), {}};
  } else if (find_socket(port) != nullptr) {
    return error{"cannot bind " + at.to_string() + ": the port is already bound on this loop",
                 std::error_code(EADDRINUSE, std::system_category())};
  }
  auto s = std::make_unique<udp_socket>(loop_, h);
  endpoint local = at;
  local.set_port(port);
  s->io.local = local;
  s->io.takes_chains = true;
  udp_socket* raw = s.get();
  sockets_.emplace_back(port, raw);
  loop_.track_udp(std::move(s));
  return raw;
}

void stack::udp_close(udp_socket& u) noexcept {
  if (u.io.closed) return;
  u.io.closed = true;
  std::erase_if(sockets_, [&](const auto& e) { return e.second == &u; });
}

void stack::metrics(const std::string& prefix, metric_list& out) const {
  const std::string p = prefix + "inet.";
  const std::pair<const char*, const counter*> named[] = {
      {"rx_frames", &stats_.rx_frames},
      {"rx_bytes", &stats_.rx_bytes},
      {"tx_frames", &stats_.tx_frames},
      {"tx_bytes", &stats_.tx_bytes},
      {"arp_requests_in", &stats_.arp_requests_in},
      {"arp_replies_in", &stats_.arp_replies_in},
      {"arp_requests_out", &stats_.arp_requests_out},
      {"arp_replies_out", &stats_.arp_replies_out},
      {"arp_learned", &stats_.arp_learned},
      {"arp_learned_from_peers", &stats_.arp_learned_from_peers},
      {"arp_expired", &stats_.arp_expired},
      {"arp_conflicts", &stats_.arp_conflicts},
      {"arp_confirmed", &stats_.arp_confirmed},
      {"arp_reassigned", &stats_.arp_reassigned},
      {"arp_pending_evicted", &stats_.arp_pending_evicted},
      {"icmp_echo_replies", &stats_.icmp_echo_replies},
      {"udp_in", &stats_.udp_in},
      {"udp_out", &stats_.udp_out},
      {"fragments_in", &stats_.fragments_in},
      {"reassembled", &stats_.reassembled},
      {"frag_evictions", &stats_.frag_evictions},
      {"fragments_out", &stats_.fragments_out},
      {"tx_in_place", &stats_.tx_in_place},
      {"tx_copied", &stats_.tx_copied},
      {"tcp_segments_in", &stats_.tcp_segments_in},
      {"tcp_segments_out", &stats_.tcp_segments_out},
      {"tcp_active_opens", &stats_.tcp_active_opens},
      {"tcp_passive_opens", &stats_.tcp_passive_opens},
      {"tcp_established", &stats_.tcp_established},
      {"tcp_resets_in", &stats_.tcp_resets_in},
      {"tcp_resets_out", &stats_.tcp_resets_out},
      {"tcp_retransmits", &stats_.tcp_retransmits},
      {"tcp_fast_retransmits", &stats_.tcp_fast_retransmits},
      {"tcp_timeouts", &stats_.tcp_timeouts},
      {"tcp_dup_acks", &stats_.tcp_dup_acks},
      {"tcp_sack_recoveries", &stats_.tcp_sack_recoveries},
      {"tcp_ooo_segments", &stats_.tcp_ooo_segments},
      {"tcp_challenge_acks", &stats_.tcp_challenge_acks},
      {"tcp_invalid_acks_limited", &stats_.tcp_invalid_acks_limited},
      {"tcp_persist_timeouts", &stats_.tcp_persist_timeouts},
      {"tcp_pmtu_updates", &stats_.tcp_pmtu_updates},
      {"tcp_pmtu_blackholes", &stats_.tcp_pmtu_blackholes},
      {"tcp_mtu_probes", &stats_.tcp_mtu_probes},
      {"tcp_mtu_probes_ok", &stats_.tcp_mtu_probes_ok},
      {"tcp_syn_cookies_sent", &stats_.tcp_syn_cookies_sent},
      {"tcp_syn_cookies_ok", &stats_.tcp_syn_cookies_ok},
      {"tcp_zero_window_probes", &stats_.tcp_zero_window_probes},
      {"tcp_keepalive_probes", &stats_.tcp_keepalive_probes},
      {"tcp_time_wait", &stats_.tcp_time_wait},
      {"tcp_zero_copy_in", &stats_.tcp_zero_copy_in},
      {"tcp_copied_in", &stats_.tcp_copied_in},
      {"tcp_steered_out", &stats_.tcp_steered_out},
      {"tcp_steered_in", &stats_.tcp_steered_in},
      {"polls_useful", &stats_.polls_useful},
      {"polls_empty", &stats_.polls_empty},
      {"sleeps", &stats_.sleeps},
      {"work_ns", &stats_.work_ns},
      {"idle_poll_ns", &stats_.idle_poll_ns},
      {"sleep_ns", &stats_.sleep_ns},
  };
  for (const auto& [name, c] : named) out.push_back({p + name, c->get()});
  tcp_.metrics(prefix, out);
  out.push_back({p + "dropped", stats_.dropped_total()});
  for (std::size_t i = 1; i < drop_reason_count; ++i) {
    out.push_back({p + "drop." + std::string(to_string(static_cast<drop_reason>(i))), stats_.drops[i].get()});
  }
  port_.metrics(prefix, out);
}

}  // namespace sluice::inet
