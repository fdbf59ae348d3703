#pragma once
// sluice-echo --protocol=sockperf: answers sockperf's messages as
// `sockperf server` does, so that sockperf (ping-pong, under-load,
// throughput) can measure sluice next to sockperf's own server.
//
// A message is a 14-byte header and a body:
//
//   0        8       10          14
//   | seq u64 | flags | length u32 | body ...        (big-endian; length counts all)
//
// flags: 1 client, 2 pong request, 4 warm-up. A server answers a client
// message that asks for a pong and is not a warm-up, with the same bytes
// and the client flag cleared; other messages get no answer. Over TCP the
// length frames the stream (sockperf's limit, 65506 bytes, is enforced:
// beyond it, or below the header, the connection closes, counted as
// frames_rejected); over UDP a datagram holds whole messages.
//
// One handler object per loop, called only on that loop's thread.

#include <array>
#include <cstdint>
#include <cstring>

#include "sluice/core/buffer_chain.hpp"
#include "sluice/core/connection.hpp"
#include "sluice/core/handler.hpp"
#include "sluice/core/loop_base.hpp"
#include "sluice/core/udp_socket.hpp"

namespace sluice::echo_app {

struct sockperf_header {
  static constexpr std::size_t size = 14;
  static constexpr std::uint16_t client = 1;
  static constexpr std::uint16_t pong_request = 2;
  static constexpr std::uint16_t warmup = 4;
  static constexpr std::uint32_t max_length = 65506;  // sockperf's MAX_PAYLOAD_SIZE

  std::uint16_t flags = 0;
  std::uint32_t length = 0;

  static sockperf_header read(const char* p) noexcept {
    auto b = [p](int i) { return static_cast<std::uint32_t>(static_cast<unsigned char>(p[i])); };
    return {static_cast<std::uint16_t>((b(8) << 8) | b(9)), (b(10) << 24) | (b(11) << 16) | (b(12) << 8) | b(13)};
  }
  [[nodiscard]] bool valid() const noexcept { return length >= size && length <= max_length; }
  // What `sockperf server` answers.
  [[nodiscard]] bool wants_reply() const noexcept {
    return (flags & client) != 0 && (flags & pong_request) != 0 && (flags & warmup) == 0;
  }
  // The flags field of the reply, as the two bytes at offset 8.
  [[nodiscard]] std::array<char, 2> reply_flags() const noexcept {
    const auto f = static_cast<std::uint16_t>(flags & ~client);
    return {static_cast<char>(f >> 8), static_cast<char>(f)};
  }
};

class sockperf_stream_handler final : public handler {
 public:
  void on_data(connection& c) noexcept override {
    buffer_chain& in = c.input();
    while (c.writable()) {
      auto head = in.peek(sockperf_header::size);
      if (!head) break;
      const sockperf_header h = sockperf_header::read(head->data());
      if (!h.valid()) {
        c.loop().stats().frames_rejected.add();
        c.close(close_reason::protocol_error);
        return;
      }
      if (in.size() < h.length) break;  // the rest of the message is on its way
      if (!h.wants_reply()) {
        (void)in.skip(h.length);
        continue;
      }
      // The header again with the client flag cleared, then the body as it
      // came (zero copy: the input's segments move to the output).
      std::array<char, sockperf_header::size> reply;
      std::memcpy(reply.data(), head->data(), reply.size());
      const auto f = h.reply_flags();
      reply[8] = f[0];
      reply[9] = f[1];
      (void)in.skip(sockperf_header::size);
      buffer_chain body;
      if (!c.write({reply.data(), reply.size()}) || !in.take(h.length - sockperf_header::size, body) ||
          !c.send(std::move(body))) {
        c.close(close_reason::resource_limit);
        return;
      }
    }
    if (c.peer_shut() && in.size() < sockperf_header::size) c.close(close_reason::peer_closed);
  }
  void on_writable(connection& c) noexcept override { on_data(c); }
  void on_peer_shutdown(connection& c) noexcept override { on_data(c); }
};

class sockperf_datagram_handler final : public datagram_handler {
 public:
  // Kernel transports: every message in the datagram, each answer copied.
  void on_datagram(udp_socket& s, const endpoint& from, std::string_view payload) noexcept override {
    while (payload.size() >= sockperf_header::size) {
      const sockperf_header h = sockperf_header::read(payload.data());
      if (!h.valid() || h.length > payload.size()) {
        s.loop().stats().frames_rejected.add();
        return;
      }
      if (h.wants_reply()) {
        std::memcpy(reply_.data(), payload.data(), h.length);
        const auto f = h.reply_flags();
        reply_[8] = f[0];
        reply_[9] = f[1];
        (void)s.send_to(from, std::string_view(reply_.data(), h.length));
      }
      payload.remove_prefix(h.length);
    }
  }
  // The user-space stack: a datagram that is one message is answered in the
  // buffer it came in (its flags patched in place); anything else as above.
  void on_datagram_chain(udp_socket& s, const endpoint& from, buffer_chain& payload) noexcept override {
    auto head = payload.peek(sockperf_header::size);
    if (head) {
      const sockperf_header h = sockperf_header::read(head->data());
      if (h.valid() && h.length == payload.size()) {
        if (!h.wants_reply()) return;
        const auto f = h.reply_flags();
        (void)payload.overwrite(8, {f.data(), f.size()});
        (void)s.send_to(from, std::move(payload));
        return;
      }
    }
    datagram_handler::on_datagram_chain(s, from, payload);
  }

 private:
  std::array<char, sockperf_header::max_length> reply_{};
};

}  // namespace sluice::echo_app
