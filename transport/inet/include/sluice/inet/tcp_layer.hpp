#pragma once
// The TCP of one stack (one loop): demultiplexing of arriving segments to
// control blocks, the LISTEN state (a SYN queue per listener, SYN cookies
// when it overflows), answers for segments that match nothing (RFC 9293
// 3.10.7.1: RST), initial sequence numbers (RFC 6528), source ports for
// connect() (ones whose hash lands on this loop, see flow_steering), and
// the glue to the loop: listeners, connections, the end of a receive burst.
//
// Per burst: segments are handled as they arrive (state changes, ACK
// processing, data queued, retransmissions), then end_of_burst() hands the
// received bytes to the applications (one on_data per connection per
// burst), and the ACKs still owed go out at the next poll, after the
// application had its chance to answer (so the answer carries the ACK).
//
// Memory: control blocks come from fixed-size blocks that grow on demand
// up to tcp_config::max_control_blocks, then are recycled (no allocation
// per connection once warm). The connection table is a chained hash with a
// power-of-two bucket array that doubles at load 1 (control-plane growth),
// indexed by a keyed hash (a sender cannot aim its tuples at one chain).
//
// Owner core only. Time is an input: the loop's clock and timer wheel.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sluice/core/listener.hpp"
#include "sluice/transport/loop.hpp"
#include "sluice/core/metrics.hpp"
#include "sluice/base/result.hpp"
#include "sluice/inet/inet_stats.hpp"
#include "sluice/inet/siphash.hpp"
#include "sluice/inet/tcp_config.hpp"
#include "sluice/inet/tcp_control_block.hpp"

namespace sluice::inet {

class stack;
class flow_steering;

// The TCP of one loop's stack (see the file comment). Owned by the stack; owner
// core only.
class tcp_layer {
 public:
  // The TCP of stack `ip` on `loop`, with cfg (receive buffer, persist timeout
  // and probe interval clamped to their ranges) and the stack's counters.
  tcp_layer(stack& ip, transport_loop& loop, const tcp_config& cfg, inet_stats& stats);
  tcp_layer(const tcp_layer&) = delete;
  tcp_layer& operator=(const tcp_layer&) = delete;
  // Frees every control block (connections were released by the loop
  // before: what is left finishes no close and sends nothing).
  ~tcp_layer();

  // ---- data path (owner core) ---------------------------------------------------------
  // A TCP segment for us (IPv4 or IPv6: src_ip and dst_ip of one family):
  // p's segment covers the TCP header and payload. Takes p. `checksum_ok`:
  // checksums known good (local loopback, device); otherwise checked over
  // the family's pseudo-header.
  void input(packet* p, const ip_address& src_ip, const ip_address& dst_ip, bool checksum_ok) noexcept;
  // After a receive burst: received bytes to the applications.
  void end_of_burst() noexcept;
  // An ICMP frag-needed (or ICMPv6 Packet Too Big) quoting our segment
  // (addresses, ports, seq) that did not fit a link of next-hop MTU `mtu`
  // (0: an old router that does not say; the segment's IP length
  // `quoted_len` then picks a plateau). False if it quotes no connection or
  // a sequence number outside its flight (RFC 5927 4.1: then it is no
  // evidence, possibly forged).
  [[nodiscard]] bool frag_needed(const ip_address& local_ip, const ip_address& remote_ip, std::uint16_t local_port,
                                 std::uint16_t remote_port, std::uint32_t seq, std::uint32_t mtu,
                                 std::uint32_t quoted_len) noexcept;
  // Before the next poll: the ACKs still owed.
  void send_pending_acks() noexcept;
  // Some connection owes an ACK (the loop must not sleep).
  [[nodiscard]] bool acks_pending() const noexcept { return !pending_.empty(); }

  // ---- the loop's transport calls (owner core) ------------------------------------------
  // Reads for c: received bytes to its input, as far as the input limit allows
  // (the loop's ready pass).
  void read(connection& c) noexcept;
  // Sends what c's windows let out now.
  void flush(connection& c) noexcept;
  // Queues FIN after c's output.
  void shutdown_write(connection& c) noexcept;
  // The loop let go of c: FIN after the output, or RST if c was aborted; the
  // block may live on alone (FIN-WAIT, TIME-WAIT).
  void release(connection& c) noexcept;

  // ---- control plane ---------------------------------------------------------------------
  // Listens on at's port (see loop_base::listen): 0.0.0.0 takes IPv4
  // connections to our address, [::] those of both families (a dual-stack
  // socket without IPV6_V6ONLY), an address of ours those to it alone.
  // EADDRINUSE when an existing listener on the port accepts some of the
  // same destinations.
  result<listener*> listen(const endpoint& at, handler& h, const listen_options& opts);
  // Stops accepting on l.
  void close_listener(listener& l) noexcept;
  // Sends a SYN to `to` (IPv4 or IPv6) from a port whose flow lands on this
  // loop (see loop_base::connect), from the address stack::source_for picks.
  result<connection_handle> connect(const endpoint& to, handler& h, void* context);
  // Which loop owns flows (nullptr or one loop: this one owns all).
  void set_steering(const flow_steering* s, unsigned loops) noexcept {
    steering_ = s;
    loops_ = loops;
  }

  // The settings in effect (after clamping).
  [[nodiscard]] const tcp_config& config() const noexcept { return cfg_; }
  // Control blocks alive (connections, half-open and TIME-WAIT ones).
  [[nodiscard]] std::size_t control_blocks() const noexcept { return live_; }
  // The control block of a connection, or of a tuple (tests).
  [[nodiscard]] tcp_control_block* find(const tcp_tuple& t) const noexcept;
  // The control block serving c (kept in c's transport slot).
  [[nodiscard]] static tcp_control_block* of(const connection& c) noexcept;
  // Half-open connections of the listeners on `port` (tests, metrics).
  [[nodiscard]] unsigned syn_queue(std::uint16_t port) const noexcept;
  // The layer's own metrics ("PREFIXinet.tcp_control_blocks",
  // "...tcp_in_time_wait", ...).
  void metrics(const std::string& prefix, metric_list& out) const;
  // One line per control block: state, sequence space, windows, timers
  // (diagnostics and test failures; control plane).
  [[nodiscard]] std::string describe() const;

  // SYN cookie encoding (RFC 4987 section 3.6; the layout is this
  // stack's, the MAC over the whole tuple with 16-byte addresses, so either
  // family): exposed for the unit tests.
  [[nodiscard]] std::uint32_t make_cookie(const tcp_tuple& t, std::uint32_t peer_isn, std::uint16_t mss,
                                          time_point now) const noexcept;
  // The MSS the cookie carries, or 0 if it is not one of ours (or too old).
  [[nodiscard]] std::uint16_t check_cookie(const tcp_tuple& t, std::uint32_t peer_isn, std::uint32_t cookie,
                                           time_point now) const noexcept;
  // RFC 6528: M + F(4-tuple, secret), M a 4-microsecond clock; F over the
  // 16-byte addresses (either family).
  [[nodiscard]] std::uint32_t initial_sequence(const tcp_tuple& t, time_point now) const noexcept;

 private:
  friend class tcp_control_block;

  // Which destinations a listener takes.
  enum class listen_scope : std::uint8_t {
    any_v4,  // 0.0.0.0: IPv4 to our address
    any,     // [::]: both families
    exact,   // addr alone
  };
  struct listen_entry {
    std::uint16_t port;
    listen_scope scope;
    ip_address addr;  // for exact
    listener* l;
    unsigned half_open;
    unsigned backlog;
    // A segment to dst (on port) is for this listener.
    [[nodiscard]] bool accepts(const ip_address& dst) const noexcept;
    // Both could take the same destination on the same port.
    [[nodiscard]] bool overlaps(const listen_entry& o) const noexcept;
  };

  // For control blocks.
  [[nodiscard]] transport_loop& loop() noexcept { return loop_; }
  [[nodiscard]] inet_stats& stats() noexcept { return stats_; }
  [[nodiscard]] time_point now() const noexcept { return loop_.now(); }
  // The timestamp clock (RFC 7323 5.4: about 1 ms per tick).
  [[nodiscard]] std::uint32_t ts_clock() const noexcept;
  [[nodiscard]] std::uint32_t ts_offset(const tcp_tuple& t) const noexcept;
  // The MSS the link MTU allows toward a peer of remote's family.
  [[nodiscard]] std::uint32_t mtu_mss(const ip_address& remote) const noexcept;
  // Builds and routes one segment; payload from `data` at `offset`. False
  // when no buffer could be had (counted).
  bool send(const tcp_tuple& t, const tcp_header& h, const tcp_out_options& o, const buffer_chain* data,
            std::size_t offset, std::uint32_t len) noexcept;
  void send_reset_for(const tcp_segment& s) noexcept;
  void mark_pending(tcp_control_block& b) noexcept;
  // RFC 5961 section 7: false when this second's challenge ACKs are spent.
  [[nodiscard]] bool may_challenge() noexcept;
  void established(tcp_control_block& b) noexcept;   // a passive open completed
  void half_open_gone(tcp_control_block& b) noexcept;
  void time_wait_entered(tcp_control_block& b) noexcept;
  // The block is done: out of the table, its memory back.
  void destroy(tcp_control_block* b) noexcept;

  // Arrival.
  void input_listen(listen_entry& le, tcp_segment& s) noexcept;
  // The listener for a segment to dst:port, or nullptr.
  [[nodiscard]] listen_entry* listening(std::uint16_t port, const ip_address& dst) noexcept;
  // Some listener has the port (any address).
  [[nodiscard]] bool port_listened(std::uint16_t port) const noexcept;
  // Our address for a connection to dst, or nothing when dst has no route
  // (IPv4: our address, if dst is on link, ours, or there is a gateway;
  // IPv6: stack::source_for, if dst is ours, on link or there is a
  // --gateway6).
  [[nodiscard]] std::optional<ip_address> source_for(const ip_address& dst) const noexcept;
  // Replies to t (its local port chosen) steer to this loop.
  [[nodiscard]] bool picks_port(const tcp_tuple& t) const noexcept;

  // Control blocks.
  [[nodiscard]] tcp_control_block* create(const tcp_tuple& t) noexcept;
  void insert(tcp_control_block* b) noexcept;
  void remove(tcp_control_block* b) noexcept;
  [[nodiscard]] std::size_t bucket_of(const tcp_tuple& t) const noexcept;
  void grow_table() noexcept;

  stack& ip_;
  transport_loop& loop_;
  tcp_config cfg_;
  inet_stats& stats_;
  const flow_steering* steering_ = nullptr;
  unsigned loops_ = 1;
  siphash_key isn_key_;
  siphash_key cookie_key_;
  siphash_key table_key_;  // bucket_of's multipliers
  ip_address local_ip_;  // the stack's IPv4 address (mapped form)

  std::vector<listen_entry> listeners_;
  std::vector<tcp_control_block*> buckets_;
  unsigned bucket_shift_ = 0;  // 64 - log2(buckets_.size()): bucket_of takes the hash's high bits
  std::size_t live_ = 0;
  std::size_t max_blocks_;
  // Slots: raw storage for control blocks, in blocks of block_size.
  static constexpr std::size_t block_size = 64;
  std::vector<std::unique_ptr<std::byte[]>> blocks_;
  std::vector<void*> free_slots_;

  tcp_control_block::pending_list pending_;
  tcp_control_block::time_wait_list time_wait_;
  std::uint16_t next_port_;
  // RFC 5961 challenge ACK budget.
  std::int64_t challenge_second_ = -1;
  unsigned challenges_ = 0;
};

}  // namespace sluice::inet
