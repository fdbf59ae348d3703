#pragma once
// Why the user-space stack dropped a frame. Every frame that is not
// delivered, answered or forwarded ends here, counted by reason: bad input is
// a number to look at, never a crash and never a silent loss.

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace sluice::inet {

// X-macro: the enum, its names and its count stay in step.
#define SLUICE_INET_DROP_REASONS(X)                                                              \
  X(none)                   /* not a drop: the parse went through */                            \
  X(multi_segment)          /* the device handed over a chained buffer (scatter is off) */     \
  X(eth_truncated)          /* shorter than an Ethernet header */                               \
  X(eth_not_for_us)         /* unicast to another MAC, or a multicast group */                  \
  X(eth_bad_source)         /* IPv6 in a frame from a group (multicast or broadcast) MAC */ \
  X(eth_unsupported_type)   /* not IPv4, IPv6 or ARP (VLAN tags, ...) */                         \
  X(arp_truncated)          /* shorter than an Ethernet/IPv4 ARP message */                     \
  X(arp_bad_format)         /* hardware/protocol type or address sizes not Ethernet/IPv4 */     \
  X(arp_bad_op)             /* neither request nor reply */                                     \
  X(arp_bad_sender)         /* sender MAC a group address, or sender IP zero/broadcast/multicast */ \
  X(arp_not_for_us)         /* asks for, or answers, another address */                         \
  X(arp_conflict)           /* someone else claims our address */                               \
  X(arp_off_subnet)         /* the sender is not on our subnet (nor our gateway): not learned */ \
  X(arp_table_full)         /* no cache slot for a new neighbour */                             \
  X(arp_pending_full)       /* too many packets waiting for address resolution */               \
  X(arp_unresolved)         /* a neighbour never answered: its waiting packets go */            \
  X(ipv4_truncated)         /* shorter than its header or its total length */                   \
  X(ipv4_bad_version)                                                                            \
  X(ipv4_bad_header_length) /* IHL below 5 */                                                   \
  X(ipv4_bad_total_length)  /* total length below the header length */                          \
  X(ipv4_bad_checksum)                                                                           \
  X(ipv4_bad_flags)         /* the reserved flag bit is set */                                  \
  X(ipv4_ttl_zero)                                                                               \
  X(ipv4_bad_source)        /* source is a broadcast, multicast or our own address */           \
  X(ipv4_not_for_us)        /* destination is not ours (we do not forward) */                   \
  X(ipv4_unsupported_protocol)                                                                   \
  X(ipv6_truncated)         /* shorter than its 40-byte header or its payload length */        \
  X(ipv6_bad_version)                                                                            \
  X(ipv6_bad_source)        /* source is multicast, or our own address from the wire */         \
  X(ipv6_not_for_us)        /* destination is not one of our addresses or groups (no forwarding) */ \
  X(ipv6_ext_truncated)     /* an extension header runs past the payload */                     \
  X(ipv6_hbh_not_first)     /* hop-by-hop options anywhere but first (RFC 8200 4.1): parameter problem */ \
  X(ipv6_routing_type0)     /* a type 0 routing header (RFC 5095: deprecated, dropped) */      \
  X(ipv6_routing_unknown)   /* an unknown routing type with segments left: parameter problem (RFC 8200 4.4) */ \
  X(ipv6_bad_option)        /* an option running past its header */                              \
  X(ipv6_unknown_option)    /* an unknown option whose type says discard (RFC 8200 4.2) */     \
  X(ipv6_unknown_next_header) /* an unknown next header: parameter problem code 1 */            \
  X(ipv6_chain_too_long)    /* more extension headers than the walker's bound */               \
  X(ipv6_no_next_header)    /* next header 59: nothing to deliver */                           \
  X(ipv6_no_source)         /* no IPv6 address of ours left to send from (found duplicates, RFC 4862 5.4.5) */ \
  X(ipv6_incomplete_chain)  /* a first fragment without the whole header chain (RFC 7112): parameter problem code 3 */ \
  X(ipv6_upper_unsupported) /* an upper layer not served over IPv6 here */                        \
  X(icmpv6_truncated)                                                                            \
  X(icmpv6_bad_checksum)                                                                         \
  X(icmpv6_ignored)         /* a type we do not act on (replies, redirects, unknown) */        \
  X(icmpv6_error_unusable)  /* an error message quoting nothing we sent, or too short to use */ \
  X(nd_bad_hop_limit)       /* a Neighbour Discovery message with hop limit below 255 (RFC 4861 7.1.1) */ \
  X(nd_bad_message)         /* code not 0, too short, a bad option, a multicast target */      \
  X(nd_not_for_us)          /* a solicitation for another host's address */                    \
  X(nd_off_link)            /* a solicitation from outside our prefixes (nor link-local): not learned */ \
  X(nd_router_advert_ignored) /* router advertisements are not used (no SLAAC by default) */   \
  X(nd_dad_conflict)        /* another host claims one of our IPv6 addresses */               \
  X(nd_own_probe)           /* a duplicate address probe from our own MAC while probing (reflected): no conflict */ \
  X(nd_address_claimed)     /* an advertisement for one of our addresses after detection: kept */ \
  X(nd_unknown_target)      /* an advertisement for a neighbour with no entry (RFC 4861 7.2.5) */ \
  X(mld_bad_query)          /* an MLD query not from a link-local address, hop limit not 1, a bad length */ \
  X(mld_not_our_group)      /* an MLD query for a group we are not in */ \
  X(nd_table_full)          /* no neighbour cache slot for a new IPv6 neighbour */              \
  X(nd_pending_full)        /* too many packets waiting for neighbour discovery */               \
  X(nd_unresolved)          /* an IPv6 neighbour never answered: its waiting packets go */      \
  X(udp6_zero_checksum)     /* UDP over IPv6 without a checksum (RFC 8200 8.1: mandatory) */   \
  X(tcp_truncated)          /* shorter than a TCP header or its data offset */                  \
  X(tcp_bad_offset)         /* data offset below 5 words */                                     \
  X(tcp_bad_options)        /* an option whose length runs past the header or is wrong */       \
  X(tcp_bad_port)           /* source or destination port 0 */                                  \
  X(tcp_bad_flags)          /* SYN with FIN or RST */                                           \
  X(tcp_bad_checksum)                                                                            \
  X(tcp_fragmented)         /* a TCP segment in IP fragments (peers send DF segments) */        \
  X(tcp_no_connection)      /* no connection or listener: answered with RST (RFC 9293 3.10.7.1) */ \
  X(tcp_out_of_window)      /* not acceptable (RFC 9293 3.10.7.4): ACKed and dropped */         \
  X(tcp_paws)               /* an old timestamp (RFC 7323 5.3): ACKed and dropped */            \
  X(tcp_bad_ack)            /* acknowledges what was never sent, or far too old (RFC 5961 5.2) */ \
  X(tcp_rst_ignored)        /* a RST not exactly at RCV.NXT: challenge ACK or nothing (RFC 5961 3) */ \
  X(tcp_syn_in_window)      /* a SYN on a synchronized connection: challenge ACK (RFC 5961 4) */ \
  X(tcp_duplicate)          /* data already received (a retransmission or a duplicate) */       \
  X(tcp_beyond_window)      /* data beyond the advertised window (cut off) */                   \
  X(tcp_reorder_full)       /* the out-of-order queue's memory limit: the sender retransmits */ \
  X(tcp_syn_queue_full)     /* a full SYN queue and no SYN cookies */                           \
  X(tcp_bad_cookie)         /* an ACK for a listener that is no valid SYN cookie */            \
  X(tcp_no_control_block)   /* the stack's control block limit is reached */                    \
  X(tcp_accept_full)        /* the loop's connection limit at the end of a handshake: RST */    \
  X(tcp_after_close)        /* data after the application closed: ACKed, discarded */          \
  X(frag_bad_length)        /* a non-last fragment not a multiple of 8, empty, or past the end */ \
  X(frag_too_big)           /* would reassemble beyond 65535 bytes */                           \
  X(frag_overlap)           /* overlaps a fragment already held: the datagram is dropped */    \
  X(frag_duplicate)         /* the same fragment again */                                       \
  X(frag_too_many)          /* more fragments than one datagram may have */                     \
  X(frag_table_full)        /* no free reassembly slot (and none to evict) */                   \
  X(frag_memory)            /* the reassembly memory limit is reached by this datagram alone */ \
  X(frag_evicted)           /* its datagram was evicted for room (the heaviest source's oldest) */ \
  X(frag_timeout)           /* a datagram not completed in time (one count per fragment) */    \
  X(icmp_truncated)                                                                              \
  X(icmp_bad_checksum)                                                                           \
  X(icmp_ignored)           /* not an echo request to us (replies, errors, broadcast pings) */ \
  X(icmp_unverified)        /* a frag-needed quoting no live connection, or a sequence number outside its flight (RFC 5927) */ \
  X(udp_truncated)                                                                               \
  X(udp_bad_length)         /* UDP length below 8 or beyond the IP payload */                   \
  X(udp_bad_checksum)                                                                            \
  X(udp_no_socket)          /* no socket bound to the port on this loop */                      \
  X(udp_bad_destination)    /* a broadcast destination on a unicast-only socket path */        \
  X(no_route)               /* outgoing: off-link destination and no gateway */                 \
  X(no_buffer)              /* outgoing: no packet buffer could be had */                       \
  X(tx_queue_full)          /* outgoing: the device did not take it and our queue is full */   \
  X(too_big)                /* outgoing: a datagram over 65507 bytes */

// Why a frame was dropped: one value per entry of SLUICE_INET_DROP_REASONS, in
// its order, where each is explained (none: not a drop). Counted in
// inet_stats::drops.
enum class drop_reason : std::uint8_t {
#define SLUICE_X(name) name,
  SLUICE_INET_DROP_REASONS(SLUICE_X)
#undef SLUICE_X
};

// The number of drop_reason values.
inline constexpr std::size_t drop_reason_count = 0
#define SLUICE_X(name) +1
    SLUICE_INET_DROP_REASONS(SLUICE_X)
#undef SLUICE_X
    ;

// The reason's name as written in the list ("ipv4_bad_checksum"), as the
// metrics use it.
[[nodiscard]] std::string_view to_string(drop_reason r) noexcept;

}  // namespace sluice::inet
