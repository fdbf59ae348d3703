// libFuzzer target: the user-space stack's IPv6 parsers (fixed header, the
// RFC 8200 extension-header walker, ICMPv6 and Neighbour Discovery) and its
// IPv6 fragment reassembly, fed a sequence of frames the input chooses. Each
// frame lives in a heap buffer of exactly its size, so a parser that reads
// one byte too far is caught by ASan. Checked: what the walker accepts lies
// inside the payload and ends at an upper layer or a fragment header; a
// parameter-problem pointer points inside the packet; an ND message it
// accepts is long enough and its target unicast; reassembly never holds
// more than its limits and hands back only whole, in-order, gap-free
// datagrams; every buffer comes back.
//
// Input: records of [length: 2 bytes][time step: 1 byte][frame: length bytes]
// (the frame from its Ethernet header on, as in fuzz_packet_parser).

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "exact_frames.hpp"
#include "fuzz_input.hpp"
#include "sluice/inet/ipv4_reassembler.hpp"
#include "sluice/inet/wire_format.hpp"

namespace {

using namespace sluice;
using namespace sluice::inet;

using namespace sluice::inet::exact_frames;

void check_upper(std::uint8_t upper, const std::byte* l4, std::size_t n) {
  if (upper == ip6_next_icmpv6) {
    icmp_header ih;
    if (parse_icmpv6(l4, n, ih) != drop_reason::none) return;
    SLUICE_FUZZ_CHECK(n >= icmpv6_header_len);
    if (ih.type == icmpv6_neighbor_solicitation || ih.type == icmpv6_neighbor_advertisement) {
      nd_message m;
      if (parse_nd(l4, n, m) == drop_reason::none) {
        SLUICE_FUZZ_CHECK(n >= nd_message_len && !m.target.is_v6_multicast());
      }
    }
  } else if (upper == ip_protocol_udp) {
    udp_header u;
    if (parse_udp(l4, n, u) == drop_reason::none) SLUICE_FUZZ_CHECK(u.length >= udp_header_len && u.length <= n);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::input in(data, size);
  inet_stats stats;
  const reassembly_options ro = small_reassembly();
  {
    ipv4_reassembler reasm(ro, stats);
    for_each_frame(in.rest(), [&](const std::uint8_t* frame, std::size_t len, time_point now) {
      reasm.expire(now);

      packet* p = copy_frame(frame, len);
      ethernet_header eth;
      ipv6_header h;
      if (parse_ethernet(p->data(), p->size(), eth) != drop_reason::none ||
          parse_ipv6(p->data() + ethernet_header_len, p->size() - ethernet_header_len, h) != drop_reason::none) {
        segment_unref(&p->seg);
        return;
      }
      SLUICE_FUZZ_CHECK(ethernet_header_len + ipv6_header_len + h.payload_len <= p->size());
      p->seg.end = p->seg.begin + static_cast<std::uint32_t>(ethernet_header_len + ipv6_header_len + h.payload_len);
      p->seg.begin += static_cast<std::uint32_t>(ethernet_header_len + ipv6_header_len);
      ipv6_chain c;
      const drop_reason r =
          walk_ipv6_extensions(p->data(), p->size(), h.next_header, 0, h.dst.is_v6_multicast(), c);
      if (r != drop_reason::none) {
        if (c.send_param_problem) SLUICE_FUZZ_CHECK(c.param_pointer < ipv6_header_len + h.payload_len);
        segment_unref(&p->seg);
        return;
      }
      SLUICE_FUZZ_CHECK(c.upper_at <= p->size());
      if (!c.fragment) {
        SLUICE_FUZZ_CHECK(c.upper == ip_protocol_udp || c.upper == ip_protocol_tcp || c.upper == ip6_next_icmpv6);
        check_upper(c.upper, p->data() + c.upper_at, p->size() - c.upper_at);
        segment_unref(&p->seg);
        return;
      }
      p->seg.begin += c.upper_at;
      const fragment_info f = fragment_info::of_ipv6(h, c);
      ipv4_reassembler::datagram d;
      if (reasm.add(p, f, now, d)) {
        std::size_t at = 0;
        for (std::size_t i = 0; i < d.count; ++i) {
          SLUICE_FUZZ_CHECK(d.fragments[i].offset == at);
          SLUICE_FUZZ_CHECK(d.fragments[i].length == d.fragments[i].p->size());
          at += d.fragments[i].length;
        }
        SLUICE_FUZZ_CHECK(at <= 65535);
        packet* first = d.fragments[0].p;
        ipv6_chain more;
        if (walk_ipv6_extensions(first->data(), first->size(), d.protocol, c.upper_at, false, more) ==
                drop_reason::none &&
            !more.fragment) {
          SLUICE_FUZZ_CHECK(more.upper_at >= c.upper_at && more.upper_at - c.upper_at <= first->size());
          check_upper(more.upper, first->data() + (more.upper_at - c.upper_at),
                      first->size() - (more.upper_at - c.upper_at));
        }
        for (std::size_t i = 0; i < d.count; ++i) segment_unref(&d.fragments[i].p->seg);
      }
      SLUICE_FUZZ_CHECK(reasm.held_packets() <= ro.max_held_packets);
      SLUICE_FUZZ_CHECK(reasm.in_progress() <= ro.max_datagrams);
    });
  }
  SLUICE_FUZZ_CHECK(live_buffers == 0);
  return 0;
}
