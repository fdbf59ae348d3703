#include "sluice/inet/stack.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "sluice/core/handler.hpp"
#include "sluice/core/task.hpp"
#include "sluice/inet/checksum.hpp"
#include "sluice/inet/flow_steering.hpp"
#include "sluice/inet/siphash.hpp"

namespace sluice::inet {

namespace {

constexpr std::uint32_t limited_broadcast = 0xffffffffu;
constexpr std::size_t udp_ip_headers = ipv4_min_header_len + udp_header_len;
// Bytes a reply needs in front of an L4 payload: Ethernet, IPv4, UDP.
constexpr std::uint32_t reply_headroom = ethernet_header_len + udp_ip_headers;
// The same over IPv6.
constexpr std::uint32_t reply_headroom6 = ethernet_header_len + ipv6_header_len + udp_header_len;

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
      nd_(opts.arp, stats_, neighbour_counters::nd(), true),
      link_local_(link_local_from_mac(mac_)),
      tcp_(*this, loop, opts.tcp, stats_) {
  // The default router's entry is never given up for a new neighbour.
  if (!opts_.iface.gateway6.is_unspecified()) nd_.protect(opts_.iface.gateway6);
  // Limits given in code (tests, embedders): refused at start, clearly.
  if (auto r = opts_.check(); !r.ok()) throw std::invalid_argument("user-space stack: " + r.err().message);
  icmp6_tokens_ = opts_.icmp6_error_burst;
  mld_rng_ = make_secret_key().k0 | 1;  // xorshift: never zero
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
  // IPv6 groups come to 33:33:xx:xx:xx:xx (RFC 2464 7); handle_ipv6 keeps ours.
  const bool ipv6_group = eth.type == ethertype_ipv6 && eth.dst.bytes[0] == 0x33 && eth.dst.bytes[1] == 0x33;
  if (eth.dst != mac_ && !eth.dst.is_broadcast() && !ipv6_group) return drop(p, drop_reason::eth_not_for_us);
  // IPv6: a group MAC as the sender is forged: answers to it would go to
  // the whole link. (Our own MAC is not refused: the kernel's end of a
  // net_tap has the port's MAC by default, and answers go back to it.)
  if (eth.type == ethertype_ipv6 && eth.src.is_group()) return drop(p, drop_reason::eth_bad_source);
  switch (eth.type) {
    case ethertype_arp:
      return handle_arp(p, eth);
    case ethertype_ipv4:
      return handle_ipv4(p, eth);
    case ethertype_ipv6:
      return handle_ipv6(p, eth);
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
      return handle_tcp(d.single, ip_address::v4(d.ip->src), ip_address::v4(d.ip->dst));
    default:
      return drop_all(d, drop_reason::ipv4_unsupported_protocol);
  }
}

void stack::handle_tcp(packet* p, const ip_address& src, const ip_address& dst) noexcept {
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
    const unsigned owner = opts_.steering->owner(src, dst, sport, dport);
    if (owner != loop_.id()) {
      stats_.tcp_steered_out.add();
      loop_.send_to(owner, task([g, p, src, dst, checksum_ok](loop_base& there) {
        if (stack* s = g->member(there.id())) {
          s->tcp_forwarded(p, src, dst, checksum_ok);
        } else {
          segment_unref(&p->seg);
        }
      }));
      return;
    }
  }
  tcp_.input(p, src, dst, checksum_ok);
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
  std::size_t l4_len = 0;
  for (std::size_t i = 0; i < d.count; ++i) l4_len += at(i)->size();
  udp_header u;
  if (auto r = parse_udp(first->data(), l4_len, u); r != drop_reason::none) return drop_all(d, r);
  // RFC 8200 8.1: over IPv6 the checksum is mandatory.
  if (d.ip == nullptr && u.checksum == 0) return drop_all(d, drop_reason::udp6_zero_checksum);
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
      add_pseudo_header(c, d.src(), d.dst(), ip_protocol_udp, u.length);
      for (std::size_t i = 0; i < d.count; ++i) c.add(at(i)->data(), at(i)->size());
      if (c.finish() != 0) return drop_all(d, drop_reason::udp_bad_checksum);
    }
  }
  udp_socket* s = find_socket(u.dst_port);
  // An IPv4 socket takes IPv4 only; an IPv6 one bound to "::" both
  // families (as Linux's dual-stack sockets), to an address that one only.
  if (s != nullptr) {
    const endpoint& local = s->local();
    const bool takes = local.family() == AF_INET ? d.ip != nullptr
                                                 : (ip_address::of(local).is_unspecified() || ip_address::of(local) == d.dst());
    if (!takes) s = nullptr;
  }
  if (s == nullptr) {
    // RFC 4443 3.1: port unreachable (unicast only; rate-limited).
    if (d.ip6 != nullptr && d.invoking != nullptr) {
      send_icmp6_error(icmpv6_dest_unreachable, icmpv6_code_port_unreachable, 0, *d.ip6, d.invoking, d.invoking_len,
                       &d.eth->src, d.eth->dst.is_group());
    }
    return drop_all(d, drop_reason::udp_no_socket);
  }
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
  const endpoint from = d.ip != nullptr ? endpoint::ipv4(d.ip->src, u.src_port) : d.ip6->src.with_port(u.src_port);
  s->get_handler().on_datagram_chain(*s, from, payload);
}

bool stack::tcp_path_mtu(const ip_address& local, const ip_address& remote, std::uint16_t local_port,
                         std::uint16_t remote_port, std::uint32_t seq, std::uint32_t mtu,
                         std::uint32_t quoted_len) noexcept {
  // The connection may be another loop's: the ICMP came on whatever queue
  // the device chose for it. Its owner is the loop its segments steer to.
  stack_group* g = opts_.group;
  if (opts_.steering != nullptr && g != nullptr && g->size() > 1) {
    const unsigned owner = opts_.steering->owner(remote, local, remote_port, local_port);
    if (owner != loop_.id()) {
      loop_.send_to(owner, task([g, local, remote, local_port, remote_port, seq, mtu, quoted_len](loop_base& there) {
        if (stack* s = g->member(there.id())) {
          if (!s->tcp().frag_needed(local, remote, local_port, remote_port, seq, mtu, quoted_len)) {
            s->stats().drop(drop_reason::icmp_unverified);
          }
        }
      }));
      return true;
    }
  }
  return tcp_.frag_needed(local, remote, local_port, remote_port, seq, mtu, quoted_len);
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
  if (!tcp_path_mtu(ip_address::v4(opts_.iface.address), ip_address::v4(remote), local_port, remote_port, seq, mtu,
                    quoted_len)) {
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
  for (std::size_t i = 0; i < d.count; ++i) c.add(at(i)->data(), at(i)->size());
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
  echo_copied(d, icmp_echo_reply);
}

void stack::echo_copied(const l4_data& d, std::uint8_t reply_type) noexcept {
  // Reassembled: the reply is copied into fresh buffers, fragmented again.
  auto at = [&](std::size_t i) { return d.single != nullptr ? d.single : d.frags[i].p; };
  packet* first = at(0);
  std::size_t total = 0;
  for (std::size_t i = 0; i < d.count; ++i) total += at(i)->size();
  const ip_address to = d.src();
  const std::uint8_t protocol = d.ip != nullptr ? ip_protocol_icmp : ip6_next_icmpv6;
  std::byte hdr[icmp_header_len];
  std::memcpy(hdr, first->data(), icmp_header_len);
  hdr[0] = static_cast<std::byte>(reply_type);
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
  // ICMPv6 sums the pseudo-header too (RFC 4443 2.3); ICMP does not.
  // The reply leaves from the address the request came to (when unicast).
  const ip_address from = d.ip == nullptr && is_our_ip6(d.dst()) ? d.dst() : source_of(to);
  if (d.ip == nullptr) add_pseudo_header(sum, from, to, ip6_next_icmpv6, static_cast<std::uint32_t>(total));
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
  (void)send_l4(protocol, from, to, hdr, total - icmp_header_len, copy);
  for (std::size_t i = 0; i < d.count; ++i) segment_unref(&at(i)->seg);
}

// ---- IPv6 ---------------------------------------------------------------------------

result<void> stack_options::check() const {
  if (iface.ip6.size() > interface_config::max_ip6) {
    return error{std::to_string(iface.ip6.size()) + " IPv6 addresses: at most " +
                     std::to_string(interface_config::max_ip6),
                 {}};
  }
  if (icmp6_errors_per_second < 1 || icmp6_errors_per_second > 1000000) {
    return error{"ICMPv6 error rate " + std::to_string(icmp6_errors_per_second) + "/s: must be 1 to 1000000", {}};
  }
  if (icmp6_error_burst < 1 || icmp6_error_burst > 100000) {
    return error{"ICMPv6 error burst " + std::to_string(icmp6_error_burst) + ": must be 1 to 100000", {}};
  }
  return {};
}

bool stack::accepts6(const ip_address& dst) const noexcept {
  if (is_our_ip6(dst) || dst == all_nodes_group()) return true;
  if (dst == solicited_node_group(link_local_)) return true;
  for (const auto& a : opts_.iface.ip6)
    if (dst == solicited_node_group(a.address)) return true;
  return false;
}

ip_address stack::source_for(const ip_address& dst) const noexcept { return facts6(dst).src; }

const stack::dst6_facts& stack::facts6(const ip_address& dst) const noexcept {
  // One entry: a reply goes where its request came from, so a flow's
  // packets ask for the same destination one after another.
  if (dst6_.valid && dst6_.dst == dst) return dst6_;
  const interface_config& ifc = opts_.iface;
  ip_address src;  // "::": none left to send from (ours were found duplicates)
  // Link scope (fe80::/10, ff02::/16 and below): the link-local address,
  // unless detection found it a duplicate (RFC 4862 5.4.5: nothing is sent
  // from it). Beyond: an --ip6 address, never the link-local one once
  // every --ip6 address was withdrawn.
  if (ifc.ip6.empty() || dst.is_v6_link_local() || (dst.is_v6_multicast() && (dst.bytes[1] & 0x0f) <= 2)) {
    if (!link_local_duplicate_) src = link_local_;
  } else if (ifc.is_ip6(dst)) {
    src = dst;
  } else if (const ip6_interface_address* a = ifc.source6_for(dst)) {
    src = a->address;
  }
  dst6_ = dst6_facts{dst, src, is_our_ip6(dst), ifc.on_link6(dst), true};
  return dst6_;
}

std::uint32_t stack::path_mtu(const ip_address& dst) const noexcept {
  // No packet too big ever came, or every entry expired: the common case, no scan.
  if (pmtu_used_ == 0) return caps_.mtu;
  const time_point now = loop_.now();
  if (now >= pmtu_live_until_) return caps_.mtu;
  for (const pmtu_entry& e : pmtu_) {
    if (e.mtu != 0 && e.dst == dst && e.expires > now) return std::min<std::uint32_t>(e.mtu, caps_.mtu);
  }
  return caps_.mtu;
}

void stack::record_path_mtu(const ip_address& dst, std::uint32_t mtu) noexcept {
  // RFC 8200 5: no link is below 1280 (a smaller figure is taken as 1280).
  mtu = std::max(mtu, ipv6_min_mtu);
  if (mtu >= caps_.mtu) return;
  const time_point now = loop_.now();
  // The destination's entry, else a free one, else the one expiring first.
  pmtu_entry* slot = nullptr;
  for (pmtu_entry& e : pmtu_) {
    if (e.mtu != 0 && e.dst == dst) {
      slot = &e;
      break;
    }
    if (slot == nullptr || (slot->mtu != 0 && (e.mtu == 0 || e.expires < slot->expires))) slot = &e;
  }
  // A live entry only shrinks (RFC 8201 4: a larger figure is not trusted
  // until the entry expires).
  if (slot->mtu != 0 && slot->dst == dst && slot->expires > now) mtu = std::min(mtu, slot->mtu);
  if (slot->mtu == 0) ++pmtu_used_;
  *slot = pmtu_entry{dst, mtu, now + pmtu_lifetime};
  pmtu_live_until_ = slot->expires;  // the latest expiry: every entry is dead after it
}

std::uint32_t stack::next_ip6_id(const ip_address& src, const ip_address& dst) noexcept {
  // RFC 7739 5.4: a keyed hash of the addresses plus one of 64 counters
  // chosen by a second keyed hash. A destination's ids stay apart for 2^32
  // datagrams (by loop residue, as IPv4's); what one destination sees
  // tells neither the ids sent to another nor how many went elsewhere.
  static const siphash_key offset_key = make_secret_key();
  static const siphash_key counter_key = make_secret_key();
  std::uint8_t in[32];
  std::memcpy(in, src.data(), 16);
  std::memcpy(in + 16, dst.data(), 16);
  const std::uint32_t loops = opts_.group != nullptr ? std::max(1u, opts_.group->size()) : 1;
  const auto offset = static_cast<std::uint32_t>(siphash24(offset_key, in, sizeof in)) / loops * loops;
  std::uint32_t& counter = ip6_id_counters_[siphash24(counter_key, in, sizeof in) % ip6_id_counters_.size()];
  return offset + counter++ * loops + loop_.id();
}

void stack::handle_ipv6(packet* p, const ethernet_header& eth) noexcept {
  const bool looped = (p->meta.rx & packet_meta::rx_loopback) != 0;
  ipv6_header h;
  const std::byte* l3 = p->data() + ethernet_header_len;
  if (auto r = parse_ipv6(l3, p->size() - ethernet_header_len, h); r != drop_reason::none) return drop(p, r);
  // An end host: what is not addressed to us is not forwarded, only counted.
  if (!accepts6(h.dst)) return drop(p, drop_reason::ipv6_not_for_us);
  ip_address loopback6;
  loopback6.bytes[15] = 1;
  // Our own address as the source: only in an advertisement (another host
  // defending it, RFC 4862 5.4.4), which handle_icmp6 checks.
  if (h.src.is_v6_multicast() || h.src.is_v4() || h.src == loopback6 ||
      (!looped && is_our_ip6(h.src) && h.next_header != ip6_next_icmpv6)) {
    return drop(p, drop_reason::ipv6_bad_source);
  }
  stats_.ipv6_in.add();
  const std::size_t total = ipv6_header_len + h.payload_len;
  // From here the segment covers the payload only (link padding cut off).
  p->seg.end = p->seg.begin + static_cast<std::uint32_t>(ethernet_header_len + total);
  p->seg.begin += static_cast<std::uint32_t>(ethernet_header_len + ipv6_header_len);
  const bool group = h.dst.is_v6_multicast();
  ipv6_chain c;
  drop_reason r = walk_ipv6_extensions(p->data(), p->size(), h.next_header, 0, group, c);
  if (r == drop_reason::none && c.fragment && c.fragment_offset == 0 && !c.more_fragments) {
    // An atomic fragment (RFC 6946): a whole datagram; the walk goes on
    // past its fragment header.
    const std::size_t after = c.upper_at;
    const std::uint8_t next = c.upper;
    c = ipv6_chain{};
    r = walk_ipv6_extensions(p->data() + after, p->size() - after, next, after, group, c);
  }
  if (r != drop_reason::none) {
    if (c.send_param_problem) {
      send_icmp6_error(icmpv6_param_problem, c.param_code, c.param_pointer, h, l3, total, &eth.src,
                       eth.dst.is_group());
    }
    return drop(p, r);
  }
  if (!c.fragment) {
    p->seg.begin += c.upper_at;
    deliver6(l4_data{nullptr, nullptr, 1, p, &eth, &h, l3, total}, c.upper);
    return;
  }
  if (c.fragment_offset == 0) {
    // RFC 7112 5: a first fragment holds the whole header chain and the
    // upper-layer header; one that does not is dropped and answered (code
    // 3), never held for reassembly (what a filter could not have seen).
    ipv6_chain rest;
    const drop_reason w = walk_ipv6_extensions(p->data() + c.upper_at, p->size() - c.upper_at, c.upper, c.upper_at,
                                               group, rest);
    if (w == drop_reason::ipv6_ext_truncated ||
        (w == drop_reason::none && !rest.fragment && p->size() - rest.upper_at < upper_header_len(rest.upper))) {
      // (Not about an ICMPv6 error, nor one whose type is cut off.)
      if (!chain_ends_in_icmpv6_error(p->data() + c.upper_at, p->size() - c.upper_at, c.upper)) {
        send_icmp6_error(icmpv6_param_problem, icmpv6_code_incomplete_chain, 0, h, l3, total, &eth.src,
                         eth.dst.is_group());
      }
      return drop(p, drop_reason::ipv6_incomplete_chain);
    }
  }
  // A fragment: its data (after the fragment header) to the reassembler.
  p->seg.begin += c.upper_at;
  const fragment_info f = fragment_info::of_ipv6(h, c);
  ipv4_reassembler::datagram whole;
  if (!reasm_.add(p, f, loop_.now(), whole)) {
    if (reasm_.held_packets() != 0) schedule_maintenance();
    return;
  }
  // The first fragment may begin with more headers (destination options):
  // the whole chain is in it (RFC 7112).
  const l4_data d{nullptr, whole.fragments, whole.count, nullptr, &eth, &h, nullptr, 0};
  packet* first = whole.fragments[0].p;
  ipv6_chain rest;
  r = walk_ipv6_extensions(first->data(), first->size(), whole.protocol, c.upper_at, group, rest);
  if (r == drop_reason::none && rest.fragment) r = drop_reason::ipv6_bad_option;
  if (r != drop_reason::none) return drop_all(d, r);
  first->seg.begin += static_cast<std::uint32_t>(rest.upper_at - c.upper_at);
  deliver6(d, rest.upper);
}

void stack::deliver6(const l4_data& d, std::uint8_t upper) noexcept {
  // "::" may only ask (duplicate address detection's solicitations).
  if (d.ip6->src.is_unspecified() && upper != ip6_next_icmpv6) return drop_all(d, drop_reason::ipv6_bad_source);
  switch (upper) {
    case ip_protocol_udp:
      return handle_udp(d);
    case ip6_next_icmpv6:
      return handle_icmp6(d);
    case ip_protocol_tcp:
      // As for IPv4: TCP in fragments is not made whole.
      if (d.single == nullptr) return drop_all(d, drop_reason::tcp_fragmented);
      return handle_tcp(d.single, d.ip6->src, d.ip6->dst);
    default:
      return drop_all(d, drop_reason::ipv6_upper_unsupported);
  }
}

void stack::handle_icmp6(const l4_data& d) noexcept {
  auto at = [&](std::size_t i) { return d.single != nullptr ? d.single : d.frags[i].p; };
  packet* first = at(0);
  icmp_header ih;
  if (auto r = parse_icmpv6(first->data(), first->size(), ih); r != drop_reason::none) return drop_all(d, r);
  const ipv6_header& h = *d.ip6;
  std::size_t total = 0;
  for (std::size_t i = 0; i < d.count; ++i) total += at(i)->size();
  internet_checksum c;
  add_pseudo_header(c, h.src, h.dst, ip6_next_icmpv6, static_cast<std::uint32_t>(total));
  for (std::size_t i = 0; i < d.count; ++i) c.add(at(i)->data(), at(i)->size());
  if (c.finish() != 0) return drop_all(d, drop_reason::icmpv6_bad_checksum);
  stats_.icmp6_in.add();
  if ((h.src.is_unspecified() && ih.type != icmpv6_neighbor_solicitation) ||
      (is_our_ip6(h.src) && (first->meta.rx & packet_meta::rx_loopback) == 0 &&
       ih.type != icmpv6_neighbor_advertisement)) {
    return drop_all(d, drop_reason::ipv6_bad_source);
  }
  switch (ih.type) {
    case icmpv6_echo_request:
      break;
    case icmpv6_neighbor_solicitation:
    case icmpv6_neighbor_advertisement:
    case icmpv6_router_advertisement: {
      // RFC 4861 7.1, 6.1.2: hop limit 255 (not forwarded), never fragmented.
      if (h.hop_limit != 255) return drop_all(d, drop_reason::nd_bad_hop_limit);
      if (d.single == nullptr) return drop_all(d, drop_reason::nd_bad_message);
      if (ih.type == icmpv6_router_advertisement) return handle_ra(first, d);
      nd_message m;
      if (auto r = parse_nd(first->data(), first->size(), m); r != drop_reason::none) return drop_all(d, r);
      if (ih.type == icmpv6_neighbor_solicitation) return handle_ns(first, d, m);
      return handle_na(first, d, m);
    }
    case icmpv6_mld_query:
      return handle_mld_query(d);
    case icmpv6_packet_too_big:
      return handle_packet_too_big(d);
    case icmpv6_dest_unreachable:
    case icmpv6_time_exceeded:
    case icmpv6_param_problem:
      stats_.icmp6_errors_in.add();  // nothing here acts on them (UDP has no error queue)
      return drop_all(d, drop_reason::icmpv6_ignored);
    default:
      // Echo replies, router solicitations (we route nothing), redirects, MLD, unknown types.
      return drop_all(d, drop_reason::icmpv6_ignored);
  }
  // Echo requests to our addresses and to the groups we are in (ff02::1,
  // ping -6 ff02::1%if): a group's answered from our unicast address for
  // the asker (RFC 4443 4.2).
  if (ih.code != 0) return drop_all(d, drop_reason::icmpv6_ignored);
  // A group's requests share the errors' rate limit: one spoofed request
  // to ff02::1 makes every host on the link answer its victim.
  if (h.dst.is_v6_multicast() && !icmp6_error_allowed()) {
    stats_.icmp6_errors_rate_limited.add();
    return drop_all(d, drop_reason::icmpv6_ignored);
  }
  stats_.icmp6_echo_replies.add();
  if (d.single == nullptr) return echo_copied(d, icmpv6_echo_reply);
  // In place: the request becomes the reply, back to the frame's sender.
  packet* p = d.single;
  std::byte* m = p->data();
  m[0] = std::byte{icmpv6_echo_reply};
  store_checksum(m + 2, 0);
  p->meta = {};
  stats_.tx_in_place.add();
  const mac_address to = d.eth->src;
  emit_icmp6(p, h.dst.is_v6_multicast() ? source_for(h.src) : h.dst, h.src, opts_.ttl, &to);
}

void stack::handle_ns(packet* p, const l4_data& d, const nd_message& m) noexcept {
  stats_.nd_solicitations_in.add();
  const ipv6_header& h = *d.ip6;
  if (!is_our_ip6(m.target)) return drop(p, drop_reason::nd_not_for_us);
  const time_point now = loop_.now();
  if (h.src.is_unspecified()) {
    // Another host's duplicate address detection (RFC 4862 5.4.3): to the
    // target's solicited-node group (RFC 4861 7.1.1), no link-layer option.
    if (h.dst != solicited_node_group(m.target) || m.has_link_layer) return drop(p, drop_reason::nd_bad_message);
    if (now < dad_until_) {
      // Our own MAC is no other host: our probe reflected, or a tap's
      // kernel end (which shares the port's MAC) probing its own address.
      if (d.eth->src == mac_) return drop(p, drop_reason::nd_own_probe);
      dad_conflict(m.target, d.eth->src);  // both probing: neither may keep it
      return drop(p, drop_reason::nd_dad_conflict);
    }
    // Ours: defend it, to all nodes (RFC 4861 7.2.4).
    segment_unref(&p->seg);
    send_na(m.target, all_nodes_group(), nd_flag_override, ipv6_multicast_mac(all_nodes_group()));
    return;
  }
  // Only our link's hosts are neighbours (as ARP's on_link check): an
  // off-link source would be a cache entry never used, a way to flood it.
  if (!opts_.iface.on_link6(h.src)) return drop(p, drop_reason::nd_off_link);
  // The asker's link-layer address (RFC 4861 7.2.3: an entry is created or
  // updated only from a source link-layer option; without one we answer
  // the frame's sender and learn nothing).
  const mac_address mac = m.has_link_layer ? m.link_layer : d.eth->src;
  if (mac.is_group() || mac.is_zero()) return drop(p, drop_reason::nd_bad_message);
  if (m.has_link_layer) {
    const auto r = nd_.learn_from_wire(h.src, mac, now, true, [this, mac](packet* q) {
      mac.store(q->data());
      queue_tx(q);
    });
    if (r.changed) {
      stats_.nd_learned.add();
      tell_peers(h.src, mac);
    }
    if (r.probe) {
      send_ns(h.src, false, &r.probe_to);
      schedule_maintenance();
    }
  }
  segment_unref(&p->seg);
  send_na(m.target, h.src, nd_flag_solicited | nd_flag_override, mac);
}

void stack::send_na(const ip_address& target, const ip_address& dst, std::uint8_t flags,
                    const mac_address& eth_dst) noexcept {
  packet* p = counted_fresh();
  if (p == nullptr) return;
  nd_message na;
  na.type = icmpv6_neighbor_advertisement;
  na.flags = flags;
  na.target = target;
  na.has_link_layer = true;
  na.link_layer = mac_;
  p->seg.end += static_cast<std::uint32_t>(write_nd(p->data(), na));
  stats_.nd_advertisements_out.add();
  emit_icmp6(p, target, dst, 255, &eth_dst);
}

void stack::handle_na(packet* p, const l4_data& d, const nd_message& m) noexcept {
  stats_.nd_advertisements_in.add();
  const bool solicited = (m.flags & nd_flag_solicited) != 0;
  // RFC 4861 7.1.2: a solicited advertisement is never multicast.
  if (d.ip6->dst.is_v6_multicast() && solicited) return drop(p, drop_reason::nd_bad_message);
  if (m.has_link_layer && (m.link_layer.is_group() || m.link_layer.is_zero())) {
    return drop(p, drop_reason::nd_bad_message);
  }
  const time_point now = loop_.now();
  if (is_our_ip6(m.target)) {
    // Another host answers for our address: a duplicate while we detect
    // (RFC 4862 5.4.4); after that the address is ours (counted, kept).
    // Our own MAC is no other host (a frame of ours reflected).
    const mac_address by = m.has_link_layer ? m.link_layer : d.eth->src;
    if (now < dad_until_ && by != mac_) {
      dad_conflict(m.target, by);
      return drop(p, drop_reason::nd_dad_conflict);
    }
    return drop(p, drop_reason::nd_address_claimed);
  }
  // RFC 4861 7.2.5: only a neighbour with an entry is updated, by the S
  // and O flags (learn_advert); an advertisement creates none.
  const mac_address* tlla = m.has_link_layer ? &m.link_layer : nullptr;
  const mac_address mac = m.has_link_layer ? m.link_layer : mac_address{};
  const auto r = nd_.learn_advert(m.target, tlla, solicited, (m.flags & nd_flag_override) != 0, now,
                                  [this, mac](packet* q) {
                                    mac.store(q->data());
                                    queue_tx(q);
                                  });
  if (r.absent) {
    // The solicitation may have been another loop's (the answer lands on
    // whichever queue RSS picks): they apply it by the same rules.
    if (solicited && tlla != nullptr && is_our_ip6(d.ip6->dst)) advert_to_peers(m.target, mac, m.flags);
    return drop(p, drop_reason::nd_unknown_target);
  }
  if (r.changed) {
    stats_.nd_learned.add();
    if (tlla != nullptr) tell_peers(m.target, mac);
  } else if (r.confirm_peers && solicited && tlla != nullptr) {
    tell_peers(m.target, mac);
  }
  if (r.probe) {
    send_ns(m.target, false, &r.probe_to);
    schedule_maintenance();
  }
  segment_unref(&p->seg);
}

void stack::handle_ra(packet* p, const l4_data& d) noexcept {
  // Without --accept-ra (or with --gateway6): counted, never used.
  if (!opts_.iface.accept_ra || !opts_.iface.gateway6.is_unspecified()) {
    return drop(p, drop_reason::nd_router_advert_ignored);
  }
  // RFC 4861 6.1.2: from a link-local address (hop limit 255 and the
  // checksum were checked), code 0, 16 bytes at least, every option's
  // length nonzero and inside the message.
  const std::byte* m = p->data();
  const std::size_t n = p->size();
  if (!d.ip6->src.is_v6_link_local() || m[1] != std::byte{0} || n < nd_router_advert_len) {
    return drop(p, drop_reason::nd_bad_message);
  }
  for (std::size_t i = nd_router_advert_len; i < n;) {
    if (n - i < 2) return drop(p, drop_reason::nd_bad_message);
    const std::size_t len = std::to_integer<std::size_t>(m[i + 1]) * 8;
    if (len == 0 || len > n - i) return drop(p, drop_reason::nd_bad_message);
    i += len;
  }
  const std::uint16_t lifetime_s = load_be16(m + 6);
  const ip_address router = d.ip6->src;
  segment_unref(&p->seg);
  stats_.nd_router_adverts_used.add();
  set_router6(router, loop_.now() + std::chrono::seconds(lifetime_s));
  router_told_ = false;
  tell_router_peers();
}

void stack::tell_router_peers() noexcept {
  // Every loop routes through the router: the others are told our state
  // (their own copy), at most every 100 ms, so that a flood of
  // advertisements cannot fill the mailboxes; what waits goes from the
  // maintenance timer.
  stack_group* g = opts_.group;
  if (router_told_ || g == nullptr || g->size() < 2) return;
  const time_point now = loop_.now();
  if (now < router_tell_after_) return schedule_maintenance();
  router_told_ = true;
  router_tell_after_ = now + std::chrono::milliseconds(100);
  const ip_address router = router6_;
  const time_point until = router6_until_;
  for (unsigned t = 0; t < g->size(); ++t) {
    if (t == loop_.id()) continue;
    loop_.send_to(t, task([g, router, until](loop_base& there) {
      if (stack* s = g->member(there.id())) s->set_router6(router, until);
    }));
  }
}

void stack::set_router6(const ip_address& router, time_point until) noexcept {
  // RFC 4861 6.3.4: a lifetime of 0 withdraws that router; another router
  // replaces ours only once ours has expired (one default router kept).
  const time_point now = loop_.now();
  const bool ours_live = !router6_.is_unspecified() && router6_until_ > now;
  if (until <= now) {
    if (router == router6_) router6_until_ = now;
    return;
  }
  // (Unless ND found ours unreachable: RFC 4861 6.3.6 prefers a live one.)
  if (ours_live && router != router6_ && !nd_.unreachable(router6_)) return;
  router6_ = router;
  router6_until_ = until;
  nd_.protect(router);
}

const ip_address* stack::default_router6() const noexcept {
  if (!opts_.iface.gateway6.is_unspecified()) return &opts_.iface.gateway6;
  if (router6_.is_unspecified() || router6_until_ <= loop_.now()) return nullptr;
  return &router6_;
}

// ---- MLD (RFC 3810; RFC 2710 for version 1 queriers) ---------------------------------------

std::size_t stack::mld_groups(ip_address* out) const noexcept {
  // The solicited-node groups of our addresses, each once (all-nodes is
  // never reported, RFC 3810 6).
  std::size_t n = 0;
  auto add = [&](const ip_address& a) {
    const ip_address g = solicited_node_group(a);
    for (std::size_t i = 0; i < n; ++i)
      if (out[i] == g) return;
    out[n++] = g;
  };
  if (!link_local_duplicate_) add(link_local_);
  for (const auto& a : opts_.iface.ip6)
    if (!a.duplicate) add(a.address);
  return n;
}

void stack::send_mld_reports(std::uint8_t record_type) noexcept {
  std::array<ip_address, interface_config::max_ip6 + 1> groups;
  const std::size_t n = mld_groups(groups.data());
  if (n == 0) return;
  mld_sent_ = loop_.now();
  // From the link-local address ("::" without one, RFC 3810 5.2.13).
  const ip_address src = link_local_duplicate_ ? ip_address{} : link_local_;
  if (loop_.now() < mld_v1_until_) {
    // A version 1 querier is present (RFC 3810 8.2.1): one version 1
    // report per group, to the group.
    for (std::size_t i = 0; i < n; ++i) {
      packet* p = counted_fresh();
      if (p == nullptr) return;
      p->seg.end += static_cast<std::uint32_t>(write_mld_v1_report(p->data(), groups[i]));
      emit_mld(p, src, groups[i]);
    }
    return;
  }
  packet* p = counted_fresh();
  if (p == nullptr) return;
  p->seg.end += static_cast<std::uint32_t>(write_mld_v2_report(p->data(), groups.data(), n, record_type));
  emit_mld(p, src, all_mld_routers_group());
}

void stack::emit_mld(packet* p, const ip_address& src, const ip_address& dst) noexcept {
  std::byte* m = p->data();
  internet_checksum c;
  add_pseudo_header(c, src, dst, ip6_next_icmpv6, p->size());
  c.add(m, p->size());
  store_checksum(m + 2, c.finish());
  write_router_alert_header(p->prepend(router_alert_header_len));
  stats_.mld_reports_out.add();
  stats_.icmp6_out.add();
  // Hop limit 1, behind a router alert (RFC 3810 5).
  prepend_ipv6(p, ip6_next_hop_by_hop, src, dst, 1, ipv6_multicast_mac(dst));
  queue_tx(p);
}

void stack::handle_mld_query(const l4_data& d) noexcept {
  // RFC 3810 5.1.14 / 8.1: from a link-local address, hop limit 1; 24
  // bytes is version 1, 28 or more version 2, anything else is ignored.
  packet* p = d.single;
  if (p == nullptr) return drop_all(d, drop_reason::mld_bad_query);
  const std::byte* m = p->data();
  const std::size_t n = p->size();
  const ipv6_header& h = *d.ip6;
  if (!h.src.is_v6_link_local() || h.hop_limit != 1 || (n != mld_v1_len && n < mld_v2_query_min_len)) {
    return drop(p, drop_reason::mld_bad_query);
  }
  const bool v2 = n >= mld_v2_query_min_len;
  const ip_address group = ip_address::v6(m + 8);
  if (!group.is_unspecified()) {
    // A group's own query: only if it is one of ours.
    std::array<ip_address, interface_config::max_ip6 + 1> groups;
    const std::size_t k = mld_groups(groups.data());
    if (std::find(groups.begin(), groups.begin() + static_cast<std::ptrdiff_t>(k), group) ==
        groups.begin() + static_cast<std::ptrdiff_t>(k)) {
      return drop(p, drop_reason::mld_not_our_group);
    }
  }
  stats_.mld_queries_in.add();
  const time_point now = loop_.now();
  // RFC 3810 8.2.1: Older Version Querier Present Timeout, robustness (2)
  // times the query interval (125 s) plus the response interval (10 s).
  if (!v2) mld_v1_until_ = now + std::chrono::seconds(260);
  // Answered after a random part of the maximum response delay (6.2), or
  // sooner if a report is due already; one report covers every group.
  const std::uint32_t max_ms = mld_max_response_ms(load_be16(m + 4), v2);
  mld_rng_ ^= mld_rng_ << 13;
  mld_rng_ ^= mld_rng_ >> 7;
  mld_rng_ ^= mld_rng_ << 17;
  // At most one report a second, however many queries come (a flood of
  // queries with no delay must not become a flood of reports).
  const time_point random_due = now + std::chrono::milliseconds(max_ms == 0 ? 0 : mld_rng_ % max_ms);
  const time_point due = std::max(random_due, mld_sent_ + std::chrono::seconds(1));
  if (due < mld_due_) {
    mld_due_ = due;
    mld_due_type_ = mld_record_is_exclude;
  }
  segment_unref(&p->seg);
  schedule_maintenance();
}

void stack::advert_to_peers(const ip_address& target, const mac_address& mac, std::uint8_t flags) noexcept {
  stack_group* g = opts_.group;
  if (g == nullptr || g->size() < 2) return;
  for (unsigned t = 0; t < g->size(); ++t) {
    if (t == loop_.id()) continue;
    loop_.send_to(t, task([g, target, mac, flags](loop_base& there) {
      if (stack* s = g->member(there.id())) s->advert_from_peer(target, mac, flags);
    }));
  }
}

void stack::advert_from_peer(const ip_address& target, const mac_address& mac, std::uint8_t flags) noexcept {
  const auto r = nd_.learn_advert(target, &mac, (flags & nd_flag_solicited) != 0, (flags & nd_flag_override) != 0,
                                  loop_.now(), [this, mac](packet* q) {
                                    mac.store(q->data());
                                    queue_tx(q);
                                  });
  if (r.changed) stats_.nd_learned_from_peers.add();
  if (r.probe) {
    send_ns(target, false, &r.probe_to);
    schedule_maintenance();
  }
}

void stack::dad_conflict(const ip_address& a, const mac_address& by) noexcept {
  // Counted by the caller. The address is withdrawn here and on every
  // other loop (RFC 4862 5.4.5); the report waits for the maintenance timer
  // (no logging on the receive path).
  if (!dad_conflict_) dad_conflict_by_ = by;
  withdraw_ip6(a);
  if (dad_reports_n_ < dad_reports_.size()) dad_reports_[dad_reports_n_++] = {a, by};
  schedule_maintenance();
  stack_group* g = opts_.group;
  if (g == nullptr || g->size() < 2) return;
  for (unsigned t = 0; t < g->size(); ++t) {
    if (t == loop_.id()) continue;
    loop_.send_to(t, task([g, a](loop_base& there) {
      if (stack* s = g->member(there.id())) s->withdraw_ip6(a);
    }));
  }
}

void stack::withdraw_ip6(const ip_address& a) noexcept {
  if (!dad_conflict_) {
    dad_conflict_ = true;  // the first, for duplicate_address()
    dad_conflict_addr_ = a;
  }
  if (a == link_local_) link_local_duplicate_ = true;
  dst6_.valid = false;  // sources and ownership change
  for (auto& x : opts_.iface.ip6)
    if (x.address == a) x.duplicate = true;
}

void stack::report_duplicates() noexcept {
  for (std::size_t i = 0; i < dad_reports_n_; ++i) {
    const auto& [a, by] = dad_reports_[i];
    // Once per process: two loops may each see the conflict before the
    // other's word arrives. Which address: its --ip6 index, 8 the link-local.
    unsigned which = interface_config::max_ip6;
    for (std::size_t k = 0; k < opts_.iface.ip6.size(); ++k)
      if (opts_.iface.ip6[k].address == a) which = static_cast<unsigned>(k);
    if (opts_.group != nullptr && !opts_.group->first_report(which)) continue;
    if (opts_.on_duplicate_address) opts_.on_duplicate_address(a, by);
  }
  dad_reports_n_ = 0;
}

void stack::handle_packet_too_big(const l4_data& d) noexcept {
  // RFC 4443 3.2: the MTU in bytes 4-7, then as much of our packet as fits.
  packet* first = d.single != nullptr ? d.single : d.frags[0].p;
  const std::byte* m = first->data();
  const std::size_t n = first->size();
  if (n < icmpv6_header_len + ipv6_header_len || (std::to_integer<unsigned>(m[8]) >> 4) != 6) {
    return drop_all(d, drop_reason::icmpv6_error_unusable);
  }
  const ip_address quoted_src = ip_address::v6(m + 8 + 8);
  const ip_address quoted_dst = ip_address::v6(m + 8 + 24);
  if (!is_our_ip6(quoted_src) || quoted_dst.is_v6_multicast()) return drop_all(d, drop_reason::icmpv6_error_unusable);
  stats_.icmp6_packet_too_big.add();
  // New TCP connections size their MSS by path_mtu(); a live one that the
  // quoted segment (next header TCP, no extension headers, ports and
  // sequence number present) belongs to lowers its MSS now and resends
  // (RFC 8201 with RFC 5927 4.1's check). A TCP quote that is no evidence
  // (no such connection, a sequence number outside its flight, no ports)
  // lowers nothing, not even the path MTU (review finding 8): counted.
  constexpr std::size_t quoted_at = icmpv6_header_len + ipv6_header_len;
  if (std::to_integer<std::uint8_t>(m[icmpv6_header_len + 6]) == ip_protocol_tcp) {
    if (n < quoted_at + 8) return drop_all(d, drop_reason::icmp_unverified);
    const std::byte* t = m + quoted_at;
    const std::uint32_t quoted_len = ipv6_header_len + load_be16(m + icmpv6_header_len + 4);
    if (!tcp_path_mtu(quoted_src, quoted_dst, load_be16(t), load_be16(t + 2), load_be32(t + 4), load_be32(m + 4),
                      quoted_len)) {
      return drop_all(d, drop_reason::icmp_unverified);
    }
  }
  record_path_mtu(quoted_dst, load_be32(m + 4));
  if (d.single != nullptr) {
    segment_unref(&d.single->seg);
  } else {
    for (std::size_t i = 0; i < d.count; ++i) segment_unref(&d.frags[i].p->seg);
  }
}

bool stack::icmp6_error_allowed() noexcept {
  const time_point now = loop_.now();
  const double elapsed = std::chrono::duration<double>(now - icmp6_refill_).count();
  icmp6_refill_ = now;
  if (elapsed > 0) {
    icmp6_tokens_ = std::min<double>(opts_.icmp6_error_burst, icmp6_tokens_ + elapsed * opts_.icmp6_errors_per_second);
  }
  if (icmp6_tokens_ < 1) return false;
  icmp6_tokens_ -= 1;
  return true;
}

void stack::send_icmp6_error(std::uint8_t type, std::uint8_t code, std::uint32_t word, const ipv6_header& h,
                             const std::byte* invoking, std::size_t invoking_len, const mac_address* eth_dst,
                             bool link_group) noexcept {
  // RFC 4443 2.4 (e): not to a source that names no single node, not about
  // a packet to a group, IPv6 or link-layer (e.3-e.5; but for a parameter
  // problem about an option that asks for one, code 2), not about an
  // ICMPv6 error or a redirect.
  if (h.src.is_unspecified() || h.src.is_v6_multicast() || (eth_dst != nullptr && eth_dst->is_group())) return;
  if ((h.dst.is_v6_multicast() || link_group) && !(type == icmpv6_param_problem && code == icmpv6_code_unknown_option)) {
    return;
  }
  if (h.next_header == ip6_next_icmpv6 && invoking_len > ipv6_header_len) {
    const unsigned t = std::to_integer<unsigned>(invoking[ipv6_header_len]);
    if (t < 128 || t == icmpv6_redirect) return;
  }
  if (!icmp6_error_allowed()) {
    stats_.icmp6_errors_rate_limited.add();
    return;
  }
  packet* p = counted_fresh();
  if (p == nullptr) return;
  // As much of the invoking packet as fits in the minimum MTU (RFC 4443 2.4 (c)).
  const std::size_t room = std::min<std::size_t>(ipv6_min_mtu, caps_.mtu) - ipv6_header_len - icmpv6_header_len;
  const std::size_t quote = std::min(invoking_len, room);
  std::byte* m = p->data();
  m[0] = static_cast<std::byte>(type);
  m[1] = static_cast<std::byte>(code);
  store_be16(m + 2, 0);
  store_be32(m + 4, word);
  std::memcpy(m + icmpv6_header_len, invoking, quote);
  p->seg.end += static_cast<std::uint32_t>(icmpv6_header_len + quote);
  stats_.icmp6_errors_out.add();
  const ip_address src = is_our_ip6(h.dst) ? h.dst : source_for(h.src);
  emit_icmp6(p, src, h.src, opts_.ttl, eth_dst);
}

void stack::reassembly_timed_out(packet* p, std::uint32_t header_len) noexcept {
  // The fragment's fixed header and extension headers are still in front
  // of its data, where they came.
  const std::size_t before = ipv6_header_len + header_len;
  if (p->seg.begin < ethernet_header_len + before) return;
  const std::byte* ip6 = p->data() - before;
  ipv6_header h;
  if (parse_ipv6(ip6, before + p->size(), h) != drop_reason::none) return;
  send_icmp6_error(icmpv6_time_exceeded, 1, 0, h, ip6, before + p->size(), nullptr);
}

void stack::send_ns(const ip_address& target, bool dad, const mac_address* unicast_to) noexcept {
  packet* p = counted_fresh();
  if (p == nullptr) return;
  nd_message ns;
  ns.type = icmpv6_neighbor_solicitation;
  ns.target = target;
  ns.has_link_layer = !dad;  // RFC 4861 4.3: none from "::"
  ns.link_layer = mac_;
  p->seg.end += static_cast<std::uint32_t>(write_nd(p->data(), ns));
  const ip_address dst = unicast_to != nullptr ? target : solicited_node_group(target);
  const mac_address eth = unicast_to != nullptr ? *unicast_to : ipv6_multicast_mac(dst);
  stats_.nd_solicitations_out.add();
  if (dad) stats_.nd_dad_probes.add();
  emit_icmp6(p, dad ? ip_address{} : source_for(target), dst, 255, &eth);
}

void stack::emit_icmp6(packet* p, const ip_address& src, const ip_address& dst, std::uint8_t hops,
                       const mac_address* eth_dst) noexcept {
  std::byte* m = p->data();
  // Only a detection probe leaves from "::" (RFC 4862 5.4.2).
  if (src.is_unspecified() && m[0] != std::byte{icmpv6_neighbor_solicitation}) {
    return drop(p, drop_reason::ipv6_no_source);
  }
  internet_checksum c;
  add_pseudo_header(c, src, dst, ip6_next_icmpv6, p->size());
  c.add(m, p->size());
  store_checksum(m + 2, c.finish());
  stats_.icmp6_out.add();
  if (is_our_ip6(dst)) {
    prepend_ipv6(p, ip6_next_icmpv6, src, dst, hops, mac_);
    return loop_back(p);
  }
  if (eth_dst == nullptr) {
    prepend_ipv6(p, ip6_next_icmpv6, src, dst, hops, mac_address{});
    return route6(p, dst);
  }
  prepend_ipv6(p, ip6_next_icmpv6, src, dst, hops, *eth_dst);
  queue_tx(p);
}

void stack::prepend_ipv6(packet* p, std::uint8_t next, const ip_address& src, const ip_address& dst,
                         std::uint8_t hops, const mac_address& eth_dst) noexcept {
  ipv6_header h;
  h.payload_len = static_cast<std::uint16_t>(p->size());
  h.next_header = next;
  h.hop_limit = hops;
  h.src = src;
  h.dst = dst;
  write_ipv6(p->prepend(ipv6_header_len), h);
  p->meta.l3_len = ipv6_header_len;
  write_ethernet(p->prepend(ethernet_header_len), eth_dst, mac_, ethertype_ipv6);
  p->meta.l2_len = ethernet_header_len;
  stats_.ipv6_out.add();
}

void stack::send_ip6(packet* p, std::uint8_t next_header, const ip_address& src, const ip_address& dst) noexcept {
  p->meta = {};  // no offloads: the checksum is the caller's, in place
  prepend_ipv6(p, next_header, src, dst, opts_.ttl, mac_address{});
  route6(p, dst);
}

void stack::route6(packet* p, const ip_address& dst) noexcept {
  const dst6_facts& f = facts6(dst);
  if (f.ours) return loop_back(p);
  if (dst.is_v6_multicast()) {
    ipv6_multicast_mac(dst).store(p->data());
    return queue_tx(p);
  }
  // Next hop: the destination itself when on link, else the gateway.
  const bool direct = f.direct;
  const ip_address* router = direct ? nullptr : default_router6();
  if (!direct && router == nullptr) return drop(p, drop_reason::no_route);
  const ip_address hop = direct ? dst : *router;
  const time_point now = loop_.now();
  bool delayed = false;
  if (const mac_address* m = nd_.lookup_or_probe(hop, now, delayed)) {
    m->store(p->data());
    queue_tx(p);
    // STALE in use: DELAY, then verified by unicast unless TCP confirms
    // it first (RFC 4861 7.3.3).
    if (delayed) schedule_maintenance();
    return;
  }
  // Unresolved: the frame waits in the neighbour cache (bounded) while we ask.
  const auto held = nd_.hold(hop, p, now);
  if (held.send_request) {
    send_ns(hop, false, nullptr);
    schedule_maintenance();
  }
}

void stack::neighbour_confirmed(const ip_address& peer) noexcept {
  // One test when no neighbour is in DELAY (the common case): this runs
  // for every acknowledgement of new data.
  if (nd_.delaying() == 0 || peer.is_v4()) return;
  if (facts6(peer).direct) return nd_.confirm(peer, loop_.now());
  if (const ip_address* router = default_router6()) nd_.confirm(*router, loop_.now());
}

// ---- transmit -----------------------------------------------------------------------

packet* stack::counted_fresh() noexcept {
  packet* p = fresh();
  if (p == nullptr) stats_.drop(drop_reason::no_buffer);
  return p;
}

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
  packet* p = counted_fresh();
  if (p == nullptr) return;
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
bool stack::send_l4(std::uint8_t protocol, const ip_address& src, const ip_address& to, const std::byte* l4_header,
                    std::size_t payload_len, Copy&& copy) noexcept {
  const std::size_t l4_len = udp_header_len + payload_len;  // ICMP's header is 8 bytes too
  if (!to.is_v4()) return send_l4_v6(protocol, src, to, l4_header, l4_len, copy);
  const std::uint32_t dst = to.v4_addr();
  const std::size_t room = caps_.mtu - ipv4_min_header_len;
  const std::uint16_t id = next_ip_id();
  // Fragments carry whole 8-byte blocks, except the last.
  const std::size_t piece = l4_len <= room ? l4_len : room / 8 * 8;
  for (std::size_t off = 0; off < l4_len; off += piece) {
    const std::size_t len = std::min(piece, l4_len - off);
    packet* p = counted_fresh();
    if (p == nullptr) return false;  // the rest of the datagram is lost, and counted
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

template <class Copy>
bool stack::send_l4_v6(std::uint8_t protocol, const ip_address& src, const ip_address& dst,
                       const std::byte* l4_header, std::size_t l4_len, Copy&& copy) noexcept {
  // Over the path MTU: fragments (RFC 8200 4.5), each with a fragment
  // header, carrying whole 8-byte blocks but the last.
  const std::size_t room = path_mtu(dst) - ipv6_header_len;
  const bool fragmented = l4_len > room;
  const std::size_t piece = fragmented ? (room - ipv6_fragment_header_len) / 8 * 8 : l4_len;
  const std::uint32_t id = fragmented ? next_ip6_id(src, dst) : 0;
  for (std::size_t off = 0; off < l4_len; off += piece) {
    const std::size_t len = std::min(piece, l4_len - off);
    packet* p = counted_fresh();
    if (p == nullptr) return false;
    std::byte* at = p->data() + (fragmented ? ipv6_fragment_header_len : 0);
    std::size_t done = 0;
    if (off < udp_header_len) {
      done = std::min(len, udp_header_len - off);
      std::memcpy(at, l4_header + off, done);
    }
    if (done < len) copy(at + done, off + done - udp_header_len, len - done);
    p->seg.end += static_cast<std::uint32_t>(len);
    if (!fragmented) {
      prepend_ipv6(p, protocol, src, dst, opts_.ttl, mac_address{});
      route6(p, dst);
      continue;
    }
    const bool more = off + len < l4_len;
    std::byte* fh = p->data();
    fh[0] = static_cast<std::byte>(protocol);
    fh[1] = std::byte{0};
    store_be16(fh + 2, static_cast<std::uint16_t>(off | (more ? 1u : 0u)));
    store_be32(fh + 4, id);
    p->seg.end += static_cast<std::uint32_t>(ipv6_fragment_header_len);
    stats_.fragments_out.add();
    prepend_ipv6(p, ip6_next_fragment, src, dst, opts_.ttl, mac_address{});
    route6(p, dst);
  }
  return true;
}

void stack::send_queued(udp_socket& u) noexcept {
  const std::uint16_t sport = u.local().port();
  const std::size_t n = u.queued_count();
  // In queue order: chains (zero copy where possible) and arena copies alike.
  for (std::size_t i = 0; i < n; ++i) {
    const udp_socket::queued& q = u.queued_at(i);
    if (q.to.family() != AF_INET && q.to.family() != AF_INET6) {
      loop_.stats().datagrams_dropped.add();  // not an IP endpoint: counted, not sent
      continue;
    }
    const ip_address src = udp_source(u, ip_address::of(q.to));
    if (src.is_unspecified()) {
      // IPv6 with no address of ours left to send from (duplicates).
      stats_.drop(drop_reason::ipv6_no_source);
      loop_.stats().datagrams_dropped.add();
      if (q.offset == udp_socket::chain_offset) u.queued_chain(i).clear();
      continue;
    }
    if (q.offset == udp_socket::chain_offset) {
      send_udp_chain(sport, src, q.to, u.queued_chain(i));
    } else {
      send_udp_bytes(sport, src, q.to, u.arena() + q.offset, q.size);
    }
  }
  u.dequeue(n);
}

ip_address stack::udp_source(const udp_socket& u, const ip_address& dst) const noexcept {
  // A socket bound to one of our IPv6 addresses answers from it (its peers
  // sent to it); "::" and IPv4 sockets take the address for the destination.
  const endpoint& local = u.local();
  if (!dst.is_v4() && local.family() == AF_INET6) {
    const ip_address bound = ip_address::of(local);
    if (!bound.is_unspecified() && is_our_ip6(bound)) return bound;
  }
  return source_of(dst);
}

void stack::send_udp_chain(std::uint16_t src_port, const ip_address& src, const endpoint& to,
                           buffer_chain& payload) noexcept {
  const std::size_t n = payload.size();
  const ip_address dst = ip_address::of(to);
  const bool v4 = dst.is_v4();
  // (Too big for one frame goes the copying way, which also refuses what is
  // too big for IPv4.)
  const bool fits = v4 ? n + udp_ip_headers <= caps_.mtu : n + ipv6_header_len + udp_header_len <= path_mtu(dst);
  if (fits && payload.segment_count() == 1) {
    // Zero copy: one of our own buffers, whole and unshared, with room for
    // the headers in front (an echo of what was received).
    segment* s = payload.pop_front_segment();
    if (s != nullptr && s->release == release_ && s->parent == nullptr && s->refs == 1 &&
        s->begin >= (v4 ? reply_headroom : reply_headroom6) && s->size() == n) {
      packet* p = packet_of(s);
      p->meta = {};
      std::byte* uh = p->prepend(udp_header_len);
      const auto len = static_cast<std::uint16_t>(udp_header_len + n);
      write_udp(uh, udp_header{src_port, to.port(), len, 0});
      internet_checksum c;
      add_pseudo_header(c, src, dst, ip_protocol_udp, len);
      if (v4 && caps_.tx_udp_checksum) {
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
      if (v4) {
        send_ip(p, ip_protocol_udp, dst.v4_addr());
      } else {
        prepend_ipv6(p, ip_protocol_udp, src, dst, opts_.ttl, mac_address{});
        route6(p, dst);
      }
      return;
    }
    if (s != nullptr) payload.append(s);
  }
  send_udp_copy(
      src_port, src, to, n,
      [&](internet_checksum& c) {
        payload.for_each_piece([&](std::string_view piece) {
          c.add(piece.data(), piece.size());
          return true;
        });
      },
      [&](std::byte* at, std::size_t off, std::size_t k) { payload.copy_out(at, k, off); });
  payload.clear();
}

void stack::send_udp_bytes(std::uint16_t src_port, const ip_address& src, const endpoint& to, const std::byte* data,
                           std::size_t n) noexcept {
  send_udp_copy(
      src_port, src, to, n, [&](internet_checksum& c) { c.add(data, n); },
      [&](std::byte* at, std::size_t off, std::size_t k) { std::memcpy(at, data + off, k); });
}

template <class Sum, class Copy>
void stack::send_udp_copy(std::uint16_t src_port, const ip_address& src, const endpoint& to, std::size_t n,
                          Sum&& sum_payload, Copy&& copy) noexcept {
  if (n > udp_max_payload) {
    stats_.drop(drop_reason::too_big);
    loop_.stats().datagrams_dropped.add();
    return;
  }
  // Copied into fresh buffers (and fragmented if need be); the checksum
  // covers the whole datagram, so it is computed here, in software.
  const ip_address dst = ip_address::of(to);
  std::byte hdr[udp_header_len];
  const auto len = static_cast<std::uint16_t>(udp_header_len + n);
  write_udp(hdr, udp_header{src_port, to.port(), len, 0});
  internet_checksum c;
  add_pseudo_header(c, src, dst, ip_protocol_udp, len);
  c.add(hdr, udp_header_len);
  sum_payload(c);
  const std::uint16_t v = c.finish();
  store_checksum(hdr + 6, v == 0 ? 0xffff : v);
  stats_.tx_copied.add();
  if (send_l4(ip_protocol_udp, src, dst, hdr, n, copy)) {
    stats_.udp_out.add();
    loop_.stats().datagrams_out.add();
    loop_.stats().bytes_written.add(n);
  } else {
    loop_.stats().datagrams_dropped.add();
  }
}

// ---- ARP knowledge across loops ------------------------------------------------------------

template <class Addr>
void stack::tell_peers(const Addr& ip, const mac_address& mac) noexcept {
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

void stack::learned_by_peer(const ip_address& ip, const mac_address& mac) noexcept {
  const bool changed = nd_.learn(ip, mac, loop_.now(), true, [this, mac](packet* q) {
    mac.store(q->data());
    queue_tx(q);
  });
  if (changed) stats_.nd_learned_from_peers.add();
}

// ---- timers ------------------------------------------------------------------------------

void stack::schedule_maintenance() noexcept {
  const time_point t = dad_reports_n_ != 0
                           ? loop_.now()
                           : std::min({arp_.next_due(), reasm_.next_expiry(), nd_.next_due(), mld_due_,
                                       router_told_ ? time_point::max() : router_tell_after_});
  if (t == time_point::max()) {
    maintenance_.cancel();
    return;
  }
  if (!maintenance_.armed() || maintenance_.expiry() != t) loop_.timers().arm(maintenance_, t);
}

void stack::on_maintenance() noexcept {
  const time_point now = loop_.now();
  report_duplicates();
  tell_router_peers();
  if (mld_due_ <= now) {
    mld_due_ = time_point::max();
    send_mld_reports(mld_due_type_);
  }
  arp_.tick(
      now, [this](std::uint32_t ip) { send_arp(arp_op_request, mac_address::broadcast(), mac_address{}, ip); },
      [this](std::uint32_t ip, const mac_address& known) { send_arp(arp_op_request, known, known, ip); },
      [this](std::uint32_t ip, const mac_address& taken) {
        stats_.arp_learned.add();
        tell_peers(ip, taken);
      });
  nd_.tick(
      now, [this](const ip_address& ip) { send_ns(ip, false, nullptr); },
      [this](const ip_address& ip, const mac_address& known) { send_ns(ip, false, &known); },
      [this](const ip_address& ip, const mac_address& taken) {
        stats_.nd_learned.add();
        tell_peers(ip, taken);
      });
  reasm_.expire(now, [this](packet* p, std::uint32_t header_len, bool v4) {
    if (!v4) reassembly_timed_out(p, header_len);
  });
  schedule_maintenance();
  (void)flush();
}

// ---- control plane -----------------------------------------------------------------------

void stack::start() noexcept {
  // The detection's answers may land on any loop's queue (RSS): every loop
  // of the port knows its window; the announcing one sends the probes.
  const bool shared = opts_.group != nullptr && opts_.group->size() > 1;
  if (opts_.ipv6_dad && (opts_.announce || shared)) dad_until_ = loop_.now() + opts_.arp.retry_interval;
  if (!opts_.announce) return;
  // Gratuitous ARP: a request for our own address, so that neighbours
  // refresh (or learn) our MAC.
  send_arp(arp_op_request, mac_address::broadcast(), mac_address{}, opts_.iface.address);
  // Our solicited-node groups are joined (MLD) before detection probes
  // them (RFC 4862 5.4.2), and the join said again a second later (RFC
  // 3810 6.1: robustness 2), so that switches snooping MLD forward
  // solicitations for our addresses to us.
  send_mld_reports(mld_record_to_exclude);
  mld_due_ = loop_.now() + std::chrono::seconds(1);
  mld_due_type_ = mld_record_to_exclude;
  schedule_maintenance();
  if (opts_.ipv6_dad) {
    // Duplicate address detection (RFC 4862 5.4): a solicitation from "::"
    // for each of our addresses; an answer within a retry interval (or
    // another host's probe for the same address) is a conflict: the address
    // is withdrawn and reported (on_duplicate_address, duplicate_address()).
    // The addresses serve meanwhile (as RFC 4429's optimistic addresses do).
    send_ns(link_local_, true, nullptr);
    for (const auto& a : opts_.iface.ip6) send_ns(a.address, true, nullptr);
  }
  (void)flush();
}

udp_socket* stack::find_socket(std::uint16_t port) const noexcept {
  for (const auto& [p, s] : sockets_)
    if (p == port) return s;
  return nullptr;
}

result<udp_socket*> stack::udp_bind(const endpoint& at, datagram_handler& h) {
  const interface_config& ifc = opts_.iface;
  if (at.family() == AF_INET6) {
    const ip_address a = ip_address::of(at);
    if (!a.is_unspecified() && !is_our_ip6(a)) {
      return error{"cannot bind " + at.to_string() + ": not this interface's IPv6 address (" + link_local_.to_string() +
                       (ifc.ip6.empty() ? std::string() : ", --ip6") + "); bind [::]:PORT or one of those",
                   std::error_code(EADDRNOTAVAIL, std::system_category())};
    }
  } else if (at.family() != AF_INET) {
    return error{"cannot bind " + at.to_string() + ": not an IPv4 or IPv6 endpoint", {}};
  } else if (at.v4_addr() != 0 && at.v4_addr() != ifc.address) {
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
      {"nd_solicitations_in", &stats_.nd_solicitations_in},
      {"nd_solicitations_out", &stats_.nd_solicitations_out},
      {"nd_advertisements_in", &stats_.nd_advertisements_in},
      {"nd_advertisements_out", &stats_.nd_advertisements_out},
      {"nd_learned", &stats_.nd_learned},
      {"nd_router_adverts_used", &stats_.nd_router_adverts_used},
      {"mld_reports_out", &stats_.mld_reports_out},
      {"mld_queries_in", &stats_.mld_queries_in},
      {"nd_learned_from_peers", &stats_.nd_learned_from_peers},
      {"nd_expired", &stats_.nd_expired},
      {"nd_conflicts", &stats_.nd_conflicts},
      {"nd_confirmed", &stats_.nd_confirmed},
      {"nd_reassigned", &stats_.nd_reassigned},
      {"nd_pending_evicted", &stats_.nd_pending_evicted},
      {"nd_dad_probes", &stats_.nd_dad_probes},
      {"ipv6_in", &stats_.ipv6_in},
      {"ipv6_out", &stats_.ipv6_out},
      {"icmp6_in", &stats_.icmp6_in},
      {"icmp6_out", &stats_.icmp6_out},
      {"icmp6_echo_replies", &stats_.icmp6_echo_replies},
      {"icmp6_errors_out", &stats_.icmp6_errors_out},
      {"icmp6_errors_rate_limited", &stats_.icmp6_errors_rate_limited},
      {"icmp6_packet_too_big", &stats_.icmp6_packet_too_big},
      {"icmp6_errors_in", &stats_.icmp6_errors_in},
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
