#pragma once
// The user-space IPv4 and IPv6 stack of one loop: Ethernet, ARP, IPv4
// (checksums, options skipped, fragment reassembly and fragmentation), ICMP
// echo, IPv6 (extension headers per RFC 8200, fragment reassembly and
// fragmentation), ICMPv6 (echo, errors, packet too big), Neighbour
// Discovery (RFC 4861, with duplicate address detection at start), UDP
// sockets of both families and TCP (tcp_layer), over one packet_port (a
// DPDK queue pair or a memory wire end).
//
// IPv6 addressing: the link-local address derived from the port's MAC
// (always), the --ip6 addresses (interface_config::ip6) and --gateway6.
// Frames are accepted for those addresses, their solicited-node groups and
// ff02::1. Router advertisements are counted and ignored (no SLAAC).
//
// Receive path, per burst: parse each frame, drop what is wrong (counted by
// reason), answer ARP requests and pings in the buffer they came in, hand
// UDP payloads to their socket's handler as a chain of those buffers, and
// TCP segments to the TCP layer, which keeps their payload in those buffers
// too; at the burst's end TCP hands what arrived to the applications. IPv4
// is demultiplexed by protocol in one switch (deliver()).
//
// Transmit path: frames are queued and handed to the port in bursts
// (flush()); a frame whose next hop is not resolved waits in the ARP cache;
// a frame to our own address loops back into the receive path (as the
// kernel's loopback does), so a loop may connect to its own listeners.
//
// Shared-nothing (DESIGN.md): the ARP cache, the reassembly table, the UDP
// port table and the TCP connections are this loop's alone. A datagram is
// served by the loop on whose queue it arrived; a TCP segment by the loop
// that owns its flow (flow_steering): one that arrives on another loop's
// queue is forwarded to its owner through the mailboxes. ARP knowledge
// learned from the wire is passed to the other loops' stacks the same way
// (stack_group).
//
// Owner core only. Data-path methods are noexcept and allocate nothing.

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sluice/transport/loop.hpp"
#include "sluice/core/metrics.hpp"
#include "sluice/base/result.hpp"
#include "sluice/core/timer_wheel.hpp"
#include "sluice/core/udp_socket.hpp"
#include "sluice/inet/arp_cache.hpp"
#include "sluice/inet/inet_stats.hpp"
#include "sluice/inet/interface_config.hpp"
#include "sluice/inet/ip_address.hpp"
#include "sluice/inet/ipv4_reassembler.hpp"
#include "sluice/inet/packet_port.hpp"
#include "sluice/inet/stack_group.hpp"
#include "sluice/inet/tcp_config.hpp"
#include "sluice/inet/tcp_layer.hpp"
#include "sluice/inet/wire_format.hpp"

namespace sluice::inet {

class flow_steering;

// How a stack is set up: its address, its tables' limits, its TCP and its place
// among the loops.
struct stack_options {
  interface_config iface;         // address, prefix and gateway
  arp_options arp;                // ARP cache size and timings
  reassembly_options reassembly;  // fragment reassembly limits
  std::uint8_t ttl = 64;          // TTL of the datagrams it sends
  // Announce our address with a gratuitous ARP at start (one loop per port
  // does it: the others share the port's MAC).
  bool announce = true;
  // Ephemeral UDP ports (bind to port 0) come from this range, split between
  // the loops: loop i takes the ports p with p % loops == i.
  std::uint16_t ephemeral_first = 49152;
  std::uint16_t ephemeral_last = 65535;  // last ephemeral port (see ephemeral_first)
  // Receive bursts per poll (each up to `burst` frames) before the loop moves on.
  unsigned max_bursts = 4;
  // Where the other loops' stacks are (nullptr: this loop is alone).
  stack_group* group = nullptr;
  // Which loop owns a TCP flow (nullptr: this one, for every flow).
  const flow_steering* steering = nullptr;
  tcp_config tcp{};  // the TCP layer's settings
  // Frames to our own address waiting to loop back in.
  std::size_t loopback_capacity = 1024;
  // ICMPv6 errors (RFC 4443 2.4 (f)): a token bucket of this many per
  // second, bursts up to icmp6_error_burst. Checked by check().
  std::uint32_t icmp6_errors_per_second = 100;
  std::uint32_t icmp6_error_burst = 10;  // (see icmp6_errors_per_second)
  // Duplicate address detection at start (RFC 4862 5.4): one solicitation
  // per IPv6 address (when announce is set).
  bool ipv6_dad = true;
  // Called once for each address that detection found in use by another
  // host (the address, that host's MAC), after the stack withdrew it (it no
  // longer answers for it nor sends from it), from the loop's maintenance
  // timer: the control plane's hook to say so (the DPDK transport prints a
  // line). Unset: counted (nd_dad_conflict) and kept in duplicate_address().
  std::function<void(const ip_address&, const mac_address&)> on_duplicate_address;

  // The limits above in range (a clear error names the one that is not).
  [[nodiscard]] result<void> check() const;
};

// The IPv4 and IPv6 stack of one loop (see the file comment). Owned by the loop's
// inet_transport.
class stack {
 public:
  // Frames one receive burst (and one fresh-buffer batch) takes at most.
  static constexpr std::size_t burst = 32;
  // Frames the transmit queue holds before flush() must hand them to the port.
  static constexpr std::size_t tx_capacity = 512;

  // A stack on `port` for `loop`, with these options; allocates its tables
  // here. Throws std::invalid_argument when opts.check() fails.
  stack(transport_loop& loop, packet_port& port, const stack_options& opts);
  stack(const stack&) = delete;
  stack& operator=(const stack&) = delete;
  // Gives back every buffer still held (queued, cached, waiting for ARP or
  // reassembly). The port must outlive the stack.
  ~stack();

  // ---- data path (owner core) ---------------------------------------------------
  // Receives and handles up to max_bursts bursts; returns the frames received.
  std::size_t poll() noexcept;
  // Handles n received frames (the port's, or frames a test made).
  void receive(packet* const* pkts, std::size_t n) noexcept;
  // Hands queued frames to the port; false if some are left (device full).
  bool flush() noexcept;
  // Frames wait to be sent (or to loop back in): the loop must not sleep.
  [[nodiscard]] bool tx_pending() const noexcept { return tx_n_ != 0 || loopback_n_ != 0 || tcp_.acks_pending(); }
  // Sends the datagrams queued on u (the loop's flush phase).
  void send_queued(udp_socket& u) noexcept;

  // ---- control plane ------------------------------------------------------------
  // Gratuitous ARP (if announce). Called once the loop is about to serve.
  void start() noexcept;
  // Binds a UDP port on this loop (0: an ephemeral one of this loop's share).
  result<udp_socket*> udp_bind(const endpoint& at, datagram_handler& h);
  // Closes u: its port is free again (u stays allocated until the loop dies).
  void udp_close(udp_socket& u) noexcept;
  // Another loop learned ip -> mac from the wire (runs on this loop).
  void learned_by_peer(std::uint32_t ip, const mac_address& mac) noexcept;
  // The same for an IPv6 neighbour (Neighbour Discovery).
  void learned_by_peer(const ip_address& ip, const mac_address& mac) noexcept;
  // A Neighbour Advertisement another loop had no entry for (the
  // solicitation may have been this loop's): applied by RFC 4861 7.2.5's
  // rules (learn_advert), creating nothing. Owner core only.
  void advert_from_peer(const ip_address& target, const mac_address& mac, std::uint8_t flags) noexcept;
  // A TCP segment another loop received for a flow this loop owns (runs on
  // this loop; p's segment covers the TCP header and payload).
  void tcp_forwarded(packet* p, const ip_address& src, const ip_address& dst, bool checksum_ok) noexcept;

  // ---- for the TCP layer (owner core) ------------------------------------------------
  // The TCP layer (connections, listeners).
  [[nodiscard]] tcp_layer& tcp() noexcept { return tcp_; }
  // The options it was made with.
  [[nodiscard]] const stack_options& options() const noexcept { return opts_; }
  // What the port offloads.
  [[nodiscard]] const port_capabilities& capabilities() const noexcept { return caps_; }
  // A fresh buffer (data at the headroom), or nullptr.
  [[nodiscard]] packet* tx_packet() noexcept { return fresh(); }
  // p holds an L4 message: IPv4 and Ethernet headers go in front, then it
  // is routed (ARP, loopback) and queued.
  void send_ip(packet* p, std::uint8_t protocol, std::uint32_t dst) noexcept {
    finish_ipv4(p, protocol, dst, next_ip_id(), 0, false);
  }
  // The same for either family: IPv4 (dst.is_v4(): the overload above) or
  // IPv6 (send_ip6). What TCP uses for both.
  void send_ip(packet* p, std::uint8_t protocol, const ip_address& dst) noexcept {
    if (dst.is_v4()) return send_ip(p, protocol, dst.v4_addr());
    send_ip6(p, protocol, dst);
  }
  // The same from a known source: a flow's local address (what its checksum
  // was computed over). IPv6 only uses src (send_ip6 with a source); IPv4
  // has the one interface address and ignores it. What TCP uses.
  void send_ip(packet* p, std::uint8_t protocol, const ip_address& src, const ip_address& dst) noexcept {
    if (dst.is_v4()) return send_ip(p, protocol, dst.v4_addr());
    send_ip6(p, protocol, src, dst);
  }
  // p holds an L4 message (TCP segment, UDP datagram, ICMPv6 message) whose
  // checksum is already in place, computed over the IPv6 pseudo-header with
  // source_for(dst) as the source. The IPv6 header (source source_for(dst),
  // hop limit options().ttl, no extension headers) and the Ethernet header
  // go in front, then it is routed: to ourselves (loopback) for our own
  // addresses, a group's MAC for multicast, else the next hop (dst when
  // on-link or link-local, else --gateway6) through the neighbour cache,
  // waiting for Neighbour Discovery like ARP (bounded; counted drops). No
  // checksum offload is asked for (the device's are IPv4-only here). p must
  // fit path_mtu(dst): it is not fragmented (TCP sizes its segments by it).
  void send_ip6(packet* p, std::uint8_t next_header, const ip_address& dst) noexcept {
    send_ip6(p, next_header, source_for(dst), dst);
  }
  // The same with an explicit source: the caller's flow's local address (a
  // connection's, a bound socket's, the address a request came to), which
  // its checksum was computed over. source_for(dst) is for new flows only.
  void send_ip6(packet* p, std::uint8_t next_header, const ip_address& src, const ip_address& dst) noexcept;
  // The source address for an IPv6 destination: the link-local address for
  // link-local and link-scope multicast destinations (or when no --ip6 is
  // given), else the --ip6 address whose prefix holds dst, else the first.
  [[nodiscard]] ip_address source_for(const ip_address& dst) const noexcept;
  // The path MTU to an IPv6 destination: the device MTU, lowered by ICMPv6
  // packet too big messages (RFC 8201; never below 1280, forgotten after
  // pmtu_lifetime). TCP over IPv6 sizes its MSS by it (minus 60).
  [[nodiscard]] std::uint32_t path_mtu(const ip_address& dst) const noexcept;
  // The IPv6 default router: --gateway6, else (--accept-ra) the one the
  // last router advertisement named while its lifetime lasts; nullptr if
  // none (off-link destinations are unreachable then).
  [[nodiscard]] const ip_address* default_router6() const noexcept;
  // TCP heard from peer (new data acknowledged): the neighbour it goes
  // through is reachable (RFC 4861 7.3.1; ends its DELAY). Data path, cheap.
  void neighbour_confirmed(const ip_address& peer) noexcept;
  // Our IPv6 addresses: the link-local one (from the MAC) or an --ip6 one.
  [[nodiscard]] bool is_our_ip6(const ip_address& a) const noexcept {
    return (a == link_local_ && !link_local_duplicate_) || opts_.iface.is_ip6(a);
  }
  // The link-local address (fe80:: and the MAC's modified EUI-64).
  [[nodiscard]] const ip_address& link_local() const noexcept { return link_local_; }
  // The first address duplicate address detection found in use by another
  // host (a validated advertisement from another MAC, or another host's
  // probe, while detecting: the first second after start), on this loop or
  // another; nullptr if none. Such an address is withdrawn (RFC 4862
  // 5.4.5): no longer ours (is_our_ip6) nor a source; the loop that saw it
  // calls stack_options::on_duplicate_address.
  [[nodiscard]] const ip_address* duplicate_address() const noexcept {
    return dad_conflict_ ? &dad_conflict_addr_ : nullptr;
  }
  // The MAC that claimed duplicate_address() (zero on the loops that only
  // heard of it from the one that saw it).
  [[nodiscard]] const mac_address& duplicate_address_by() const noexcept { return dad_conflict_by_; }
  // How long a path MTU learned from a packet too big is kept (RFC 8201 4).
  static constexpr duration pmtu_lifetime = std::chrono::minutes(10);
  // Destinations whose path MTU is remembered (the oldest is replaced).
  static constexpr std::size_t pmtu_capacity = 64;
  // Drops p, counted under `why`.
  void drop_packet(packet* p, drop_reason why) noexcept { drop(p, why); }

  // The counters (metrics, tests). Any thread.
  [[nodiscard]] const inet_stats& stats() const noexcept { return stats_; }
  // For the transport, which counts its polling work here too.
  [[nodiscard]] inet_stats& stats() noexcept { return stats_; }
  // The address, prefix and gateway.
  [[nodiscard]] const interface_config& config() const noexcept { return opts_.iface; }
  // The port's MAC address (this stack's).
  [[nodiscard]] mac_address mac() const noexcept { return mac_; }
  // The ARP cache (tests and the TCP layer).
  [[nodiscard]] arp_cache& arp() noexcept { return arp_; }
  // The IPv6 neighbour cache (tests).
  [[nodiscard]] neighbour_cache& neighbours() noexcept { return nd_; }
  // The fragment reassembly table (tests).
  [[nodiscard]] ipv4_reassembler& reassembler() noexcept { return reasm_; }
  // The port under the stack.
  [[nodiscard]] packet_port& port() noexcept { return port_; }
  // "PREFIXinet.NAME value" for every counter, drop reasons included.
  void metrics(const std::string& prefix, metric_list& out) const;

 private:
  // One datagram's payload as the packets it came in: one for an unfragmented
  // datagram (segment at the IP payload), several after reassembly.
  // For IPv6, ip is nullptr and ip6 the fixed header; `invoking` the whole
  // packet from its fixed header (single packets: what an ICMPv6 error
  // quotes), nullptr after reassembly.
  struct l4_data {
    const ipv4_header* ip;
    const ipv4_reassembler::fragment* frags;  // nullptr when single
    std::size_t count;
    packet* single;
    const ethernet_header* eth;
    const ipv6_header* ip6 = nullptr;
    const std::byte* invoking = nullptr;
    std::size_t invoking_len = 0;
    [[nodiscard]] ip_address src() const noexcept { return ip != nullptr ? ip_address::v4(ip->src) : ip6->src; }
    [[nodiscard]] ip_address dst() const noexcept { return ip != nullptr ? ip_address::v4(ip->dst) : ip6->dst; }
  };

  void handle(packet* p) noexcept;
  void handle_arp(packet* p, const ethernet_header& eth) noexcept;
  void handle_ipv4(packet* p, const ethernet_header& eth) noexcept;
  void deliver(const l4_data& d) noexcept;
  void handle_udp(const l4_data& d) noexcept;
  // A TCP segment of either family (p's segment at the TCP header): to its
  // owner loop (steering), or to this loop's TCP.
  void handle_tcp(packet* p, const ip_address& src, const ip_address& dst) noexcept;
  void loop_back(packet* p) noexcept;
  void receive_looped() noexcept;
  void handle_icmp(const l4_data& d) noexcept;
  // IPv6.
  void handle_ipv6(packet* p, const ethernet_header& eth) noexcept;
  void deliver6(const l4_data& d, std::uint8_t upper) noexcept;
  void handle_icmp6(const l4_data& d) noexcept;
  void handle_ns(packet* p, const l4_data& d, const nd_message& m) noexcept;
  void handle_na(packet* p, const l4_data& d, const nd_message& m) noexcept;
  void handle_packet_too_big(const l4_data& d) noexcept;
  // An ICMPv6 error about the invoking packet (RFC 4443 2.4: never about an
  // error, a group destination or an unspecified/group source, except as
  // it allows; rate-limited), sent to eth_dst (nullptr: routed);
  // link_group: the invoking packet came in a link-layer multicast or
  // broadcast frame (treated as a group destination, RFC 4443 2.4 e.4/e.5).
  void send_icmp6_error(std::uint8_t type, std::uint8_t code, std::uint32_t word, const ipv6_header& h,
                        const std::byte* invoking, std::size_t invoking_len, const mac_address* eth_dst,
                        bool link_group = false) noexcept;
  // RFC 8200 4.5: a datagram not reassembled in time whose first fragment
  // came (p, its data after header_len bytes of extension headers) is
  // answered with Time Exceeded code 1.
  void reassembly_timed_out(packet* p, std::uint32_t header_len) noexcept;
  // An NS for target (src "::" for DAD), to the target's solicited-node
  // group, or unicast to eth_dst when given (a probe of a known neighbour).
  void send_ns(const ip_address& target, bool dad, const mac_address* unicast_to) noexcept;
  // An NA for target (ours) to dst at eth_dst, with our link-layer address.
  void send_na(const ip_address& target, const ip_address& dst, std::uint8_t flags,
               const mac_address& eth_dst) noexcept;
  // A fresh buffer holding `len` ICMPv6 bytes at `msg`, checksummed for
  // src -> dst, sent with hop limit `hops` to eth_dst (or routed when null).
  void emit_icmp6(packet* p, const ip_address& src, const ip_address& dst, std::uint8_t hops,
                  const mac_address* eth_dst) noexcept;
  // Writes the IPv6 and Ethernet headers in front of p's bytes.
  void prepend_ipv6(packet* p, std::uint8_t next, const ip_address& src, const ip_address& dst,
                    std::uint8_t hops, const mac_address& eth_dst) noexcept;
  void route6(packet* p, const ip_address& dst) noexcept;
  [[nodiscard]] bool accepts6(const ip_address& dst) const noexcept;
  void record_path_mtu(const ip_address& dst, std::uint32_t mtu) noexcept;
  [[nodiscard]] bool icmp6_error_allowed() noexcept;
  void dad_conflict(const ip_address& a, const mac_address& by) noexcept;
  // MLD: our solicited-node groups into out (at most max_ip6 + 1), each once; returns how many.
  std::size_t mld_groups(ip_address* out) const noexcept;
  // Reports our groups (records of record_type; version 1 reports while a version 1 querier is present).
  void send_mld_reports(std::uint8_t record_type) noexcept;
  // p's MLD message checksummed, behind a router alert, hop limit 1, to dst's group MAC.
  void emit_mld(packet* p, const ip_address& src, const ip_address& dst) noexcept;
  // A multicast listener query: a report due within its maximum response delay.
  void handle_mld_query(const l4_data& d) noexcept;
  // A router advertisement (its ICMPv6 message in p): the default router (--accept-ra).
  void handle_ra(packet* p, const l4_data& d) noexcept;
  // router is the default router until `until` (a past time withdraws it); here or told by another loop.
  void set_router6(const ip_address& router, time_point until) noexcept;
  // Tells the other loops our default router, at most every 100 ms (the rest from the maintenance timer).
  void tell_router_peers() noexcept;
  // a is not ours any more (a duplicate; from dad_conflict, here or on another loop).
  void withdraw_ip6(const ip_address& a) noexcept;
  // Calls on_duplicate_address for the conflicts seen since the last call (maintenance).
  void report_duplicates() noexcept;
  // A report that our TCP segment (local -> remote, ports, seq) did not fit
  // a link of `mtu`: to the connection, on the loop that owns its flow.
  // False when this loop's TCP took it as no evidence (forwarded: true).
  bool tcp_path_mtu(const ip_address& local, const ip_address& remote, std::uint16_t local_port,
                    std::uint16_t remote_port, std::uint32_t seq, std::uint32_t mtu, std::uint32_t quoted_len) noexcept;
  // An ICMP frag-needed for us: to the TCP connection it quotes, if any.
  void handle_frag_needed(const l4_data& d, packet* first) noexcept;
  void drop(packet* p, drop_reason why) noexcept;
  void drop_all(const l4_data& d, drop_reason why) noexcept;

  // Outgoing.
  [[nodiscard]] packet* fresh() noexcept;
  // fresh(), or nullptr counted as a no_buffer drop (what is being sent is lost).
  [[nodiscard]] packet* counted_fresh() noexcept;
  void queue_tx(packet* p) noexcept;
  // Fills in the destination MAC (broadcast, cache, or waits for ARP) and queues.
  void route(packet* p, std::uint32_t dst) noexcept;
  void send_arp(std::uint16_t op, const mac_address& eth_dst, const mac_address& target_mac,
                std::uint32_t target_ip) noexcept;
  // Sends an L4 message: an 8-byte header (checksum already in place) and a
  // payload taken from `copy(dst, offset, n)`; fragments when it exceeds the
  // MTU. src: the IPv6 source the checksum was computed over (IPv4 ignores it).
  template <class Copy>
  bool send_l4(std::uint8_t protocol, const ip_address& src, const ip_address& dst, const std::byte* l4_header,
               std::size_t payload_len, Copy&& copy) noexcept;
  // Its IPv6 side: l4_len bytes in all, fragmented over the path MTU.
  template <class Copy>
  bool send_l4_v6(std::uint8_t protocol, const ip_address& src, const ip_address& dst, const std::byte* l4_header,
                  std::size_t l4_len, Copy&& copy) noexcept;
  // An echo reply copied into fresh buffers (a reassembled request), either family.
  void echo_copied(const l4_data& d, std::uint8_t reply_type) noexcept;
  [[nodiscard]] std::uint32_t next_ip6_id(const ip_address& src, const ip_address& dst) noexcept;
  // A UDP socket's datagrams leave from src: its bound IPv6 address, else
  // source_of(destination) (udp_source).
  [[nodiscard]] ip_address udp_source(const udp_socket& u, const ip_address& dst) const noexcept;
  void send_udp_chain(std::uint16_t src_port, const ip_address& src, const endpoint& to,
                      buffer_chain& payload) noexcept;
  void send_udp_bytes(std::uint16_t src_port, const ip_address& src, const endpoint& to, const std::byte* data,
                      std::size_t n) noexcept;
  // The copying path of both: sum_payload(checksum&) adds the payload to the
  // UDP checksum, copy(dst, offset, n) copies a part of it.
  template <class Sum, class Copy>
  void send_udp_copy(std::uint16_t src_port, const ip_address& src, const endpoint& to, std::size_t n,
                     Sum&& sum_payload, Copy&& copy) noexcept;
  // Writes IP and Ethernet headers in front of p's L4 bytes and routes it.
  void finish_ipv4(packet* p, std::uint8_t protocol, std::uint32_t dst, std::uint16_t id, std::uint16_t frag_offset,
                   bool more) noexcept;
  // The headers alone (checksum offload flags set as the port allows).
  void prepend_headers(packet* p, std::uint8_t protocol, std::uint32_t dst, std::uint16_t id,
                       std::uint16_t frag_offset, bool more, const mac_address& eth_dst) noexcept;
  [[nodiscard]] std::uint16_t next_ip_id() noexcept;
  [[nodiscard]] bool is_ours(const packet* p) const noexcept { return p->seg.release == release_; }
  [[nodiscard]] udp_socket* find_socket(std::uint16_t port) const noexcept;
  // What one loop learned of a neighbour (IPv4 or IPv6) goes to the others.
  template <class Addr>
  void tell_peers(const Addr& ip, const mac_address& mac) noexcept;
  // A solicited advertisement with no entry here, to the other loops (advert_from_peer).
  void advert_to_peers(const ip_address& target, const mac_address& mac, std::uint8_t flags) noexcept;
  // Our source address for a v4 or v6 destination (pseudo-headers).
  [[nodiscard]] ip_address source_of(const ip_address& dst) const noexcept {
    return dst.is_v4() ? ip_address::v4(opts_.iface.address) : source_for(dst);
  }

  // What sending to an IPv6 destination needs: our source address for it,
  // whether it is one of ours (loopback), whether it is on link.
  struct dst6_facts {
    ip_address dst;       // the destination these are for
    ip_address src;       // source_for(dst)
    bool ours = false;    // is_our_ip6(dst)
    bool direct = false;  // on link (else through --gateway6)
    bool valid = false;   // filled
  };
  // The facts for dst, from a one-entry cache (emptied when an address is withdrawn).
  [[nodiscard]] const dst6_facts& facts6(const ip_address& dst) const noexcept;

  // ARP retries and reassembly deadlines, from the loop's wheel; armed only
  // while something waits, so an idle loop is not woken.
  void schedule_maintenance() noexcept;
  void on_maintenance() noexcept;

  transport_loop& loop_;
  packet_port& port_;
  stack_options opts_;
  port_capabilities caps_;
  mac_address mac_;
  segment_release_fn release_;
  inet_stats stats_;
  arp_cache arp_;
  ipv4_reassembler reasm_;
  timer maintenance_;

  std::array<packet*, burst> rx_{};
  std::array<packet*, tx_capacity> tx_{};
  std::size_t tx_n_ = 0;
  std::array<packet*, burst> spare_{};  // fresh buffers taken from the port in bursts
  std::size_t spare_n_ = 0;
  std::uint32_t ip_id_ = 0;
  std::array<std::uint32_t, 64> ip6_id_counters_{};  // IPv6 fragment identification counters (next_ip6_id)
  neighbour_cache nd_;
  ip_address link_local_;
  struct pmtu_entry {
    ip_address dst;
    std::uint32_t mtu = 0;  // 0: unused
    time_point expires{};
  };
  std::array<pmtu_entry, pmtu_capacity> pmtu_{};
  std::size_t pmtu_used_ = 0;  // entries ever filled (lookups skip an empty table)
  time_point pmtu_live_until_{};  // after this no entry is live (lookups skip the table again)
  // ICMPv6 error token bucket (RFC 4443 2.4 (f)).
  double icmp6_tokens_ = 0;
  time_point icmp6_refill_{};
  // Duplicate address detection: answers until this time are conflicts.
  time_point dad_until_{};
  bool dad_conflict_ = false;
  ip_address dad_conflict_addr_;
  mac_address dad_conflict_by_;
  bool link_local_duplicate_ = false;  // the link-local address was withdrawn
  mutable dst6_facts dst6_;            // facts6's cache
  time_point mld_due_ = time_point::max();  // the next MLD report (a query's answer, the join's repeat)
  std::uint8_t mld_due_type_ = 0;           // ... its records' type
  time_point mld_v1_until_{};               // a version 1 querier was heard: version 1 reports until then
  std::uint64_t mld_rng_ = 0x9e3779b97f4a7c15ull;  // xorshift for the answers' random delay
  ip_address router6_;                 // the default router from router advertisements ("::": none)
  time_point router6_until_{};         // ... until its lifetime ends
  bool router_told_ = true;            // the other loops know our latest router state
  time_point router_tell_after_{};     // ... and may be told again from then on
  time_point mld_sent_{};              // the last MLD report (one a second at most for queries)
  // Conflicts seen on this loop and not yet reported (one per address at most).
  std::array<std::pair<ip_address, mac_address>, interface_config::max_ip6 + 1> dad_reports_{};
  std::size_t dad_reports_n_ = 0;
  // Frames to ourselves, received at the next poll.
  std::vector<packet*> loopback_;
  std::size_t loopback_n_ = 0;
  std::vector<packet*> looped_;

  std::vector<std::pair<std::uint16_t, udp_socket*>> sockets_;
  // Last: its control blocks hold packets and timers of the members above.
  tcp_layer tcp_;
};

}  // namespace sluice::inet
