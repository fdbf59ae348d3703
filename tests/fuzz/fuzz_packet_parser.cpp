// libFuzzer target: the user-space stack's parsers (Ethernet, ARP, IPv4,
// UDP, ICMP) and its IPv4 reassembly, fed a sequence of frames the input
// chooses. Each frame lives in a heap buffer of exactly its size, so a parser
// that reads one byte too far is caught by ASan. Checked: what a parser
// accepts is consistent with the bytes present; reassembly never holds more
// than its limits and hands back only whole, in-order, gap-free datagrams;
// every buffer comes back; the checksum of a frame cut anywhere is the same.
//
// Input: records of [length: 2 bytes][time step: 1 byte][frame: length bytes].

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "exact_frames.hpp"
#include "fuzz_input.hpp"
#include "sluice/inet/checksum.hpp"
#include "sluice/inet/ipv4_reassembler.hpp"
#include "sluice/inet/wire_format.hpp"

namespace {

using namespace sluice;
using namespace sluice::inet;

using namespace sluice::inet::exact_frames;

void check_l4(const ipv4_header& h, const std::byte* l4, std::size_t n) {
  if (h.protocol == ip_protocol_udp) {
    udp_header u;
    if (parse_udp(l4, n, u) == drop_reason::none) SLUICE_FUZZ_CHECK(u.length >= udp_header_len && u.length <= n);
  } else if (h.protocol == ip_protocol_icmp) {
    icmp_header ih;
    if (parse_icmp(l4, n, ih) == drop_reason::none) SLUICE_FUZZ_CHECK(n >= icmp_header_len);
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

      // The checksum does not depend on how the bytes are cut.
      {
        internet_checksum whole, pieces;
        whole.add(frame, len);
        const std::size_t cut = len == 0 ? 0 : frame[0] % (len + 1);
        pieces.add(frame, cut);
        pieces.add(frame + cut, len - cut);
        SLUICE_FUZZ_CHECK(whole.finish() == pieces.finish());
      }

      packet* p = copy_frame(frame, len);
      ethernet_header eth;
      if (parse_ethernet(p->data(), p->size(), eth) != drop_reason::none) {
        segment_unref(&p->seg);
        return;
      }
      const std::byte* l3 = p->data() + ethernet_header_len;
      const std::size_t n3 = p->size() - ethernet_header_len;
      if (eth.type == ethertype_arp) {
        arp_message m;
        if (parse_arp(l3, n3, m) == drop_reason::none) {
          SLUICE_FUZZ_CHECK(n3 >= arp_message_len && (m.op == arp_op_request || m.op == arp_op_reply));
        }
        segment_unref(&p->seg);
        return;
      }
      ipv4_header h;
      if (eth.type != ethertype_ipv4 || parse_ipv4(l3, n3, (frame[0] & 1) != 0, h) != drop_reason::none) {
        segment_unref(&p->seg);
        return;
      }
      SLUICE_FUZZ_CHECK(h.header_len >= ipv4_min_header_len && h.header_len <= h.total_len && h.total_len <= n3);
      p->seg.end = p->seg.begin + static_cast<std::uint32_t>(ethernet_header_len + h.total_len);
      p->seg.begin += static_cast<std::uint32_t>(ethernet_header_len + h.header_len);
      if (!h.is_fragment()) {
        check_l4(h, p->data(), p->size());
        segment_unref(&p->seg);
        return;
      }
      ipv4_reassembler::datagram d;
      if (reasm.add(p, h, now, d)) {
        // Whole, in order, no gaps: offsets follow each other from 0.
        std::size_t at = 0;
        for (std::size_t i = 0; i < d.count; ++i) {
          SLUICE_FUZZ_CHECK(d.fragments[i].offset == at);
          SLUICE_FUZZ_CHECK(d.fragments[i].length == d.fragments[i].p->size());
          at += d.fragments[i].length;
        }
        SLUICE_FUZZ_CHECK(at + d.header.header_len == d.header.total_len);
        SLUICE_FUZZ_CHECK(!d.header.is_fragment());
        if (d.count > 0 && d.fragments[0].p->size() >= udp_header_len) {
          check_l4(d.header, d.fragments[0].p->data(), d.fragments[0].p->size());
        }
        for (std::size_t i = 0; i < d.count; ++i) segment_unref(&d.fragments[i].p->seg);
      }
      SLUICE_FUZZ_CHECK(reasm.held_packets() <= ro.max_held_packets);
      SLUICE_FUZZ_CHECK(reasm.in_progress() <= ro.max_datagrams);
    });
  }
  SLUICE_FUZZ_CHECK(live_buffers == 0);  // the reassembler gave everything back
  return 0;
}
