// sluice-echo: a TCP (or UDP) echo server on any transport.
//
// Each loop echoes what it reads by moving the input chain to the output
// chain: no copy, one readv and one writev per message burst.
//
// --frames echoes length-prefixed frames instead (a 4-byte big-endian length,
// then that many bytes): each frame is split off the input by a
// length_field_decoder and sent back behind a fresh header by a
// length_field_prepender, both zero copy. A frame over --max-frame closes
// the connection (counted as frames_rejected). --max-frame must fit
// --max-input (checked at start-up); should a frame still outgrow the input
// limit, the handler closes the connection the same way instead of waiting
// for bytes that reading, stopped at the limit, would never bring.
//
// --protocol=sockperf answers sockperf's messages as `sockperf server` does
// (TCP, or UDP with --udp), on every transport: see sockperf_handlers.hpp.

#include <cstdio>

#include "sluice/runtime/app_options.hpp"
#include "sluice/base/cli.hpp"
#include "sluice/core/codec/length_field_decoder.hpp"
#include "sluice/core/codec/length_field_prepender.hpp"
#include "sluice/core/connection.hpp"
#include "sluice/core/handler.hpp"
#include "sluice/runtime/runtime.hpp"
#include "sluice/core/udp_socket.hpp"
#include "echo_handlers.hpp"
#include "sockperf_handlers.hpp"


int main(int argc, char** argv) {
  sluice::cli args("sluice-echo", "Echo server: sends back every byte (TCP) or datagram (--udp) it receives.");
  sluice::app_options app;
  bool udp = false;
  bool frames = false;
  // A frame is buffered whole before it is echoed, so it must fit the input
  // limit with its header. 0 (not given): as much as fits.
  std::size_t max_frame = 0;
  constexpr sluice::number_range max_frame_range{1, sluice::ranges::gib, sluice::number_unit::bytes};
  std::string protocol = "echo";
  app.declare(args, "127.0.0.1:7000");
  args.flag("--udp", "echo UDP datagrams instead of TCP streams", udp);
  args.option("--protocol", "NAME",
              "echo (default): send back every byte; sockperf: answer sockperf's messages as `sockperf server` does",
              protocol);
  args.flag("--frames", "echo length-prefixed frames (4-byte big-endian length), decoded and re-encoded", frames);
  args.size_option("--max-frame",
                   "with --frames: largest payload; larger closes the connection (default: as much as fits --max-input "
                   "with the 4-byte header, 262140 bytes; more is refused at start-up)",
                   max_frame, max_frame_range);
  args.note("Example: sluice-echo --listen=0.0.0.0:7000 --cores=2");
  if (auto rc = args.parse(argc, argv)) return *rc;
  if (auto rc = app.finish(args)) return *rc;
  if (udp && frames) return args.fail("--frames is for TCP streams, not with --udp");
  if (protocol != "echo" && protocol != "sockperf") {
    return args.fail("--protocol=" + protocol + ": unknown protocol (echo, sockperf)");
  }
  const bool sockperf = protocol == "sockperf";
  if (sockperf && frames) return args.fail("--frames and --protocol=sockperf exclude each other");
  // Reading stops at --max-input: a frame that cannot fit would never
  // complete, and the connection would stall instead of being refused.
  if (max_frame == 0) max_frame = app.runtime.loop.max_input_bytes - 4;
  if (frames && max_frame + 4 > app.runtime.loop.max_input_bytes) {
    return args.fail("--max-frame (" + sluice::format_size(max_frame) + ") plus its 4-byte header must fit --max-input (" +
                     sluice::format_size(app.runtime.loop.max_input_bytes) + ")");
  }
  auto decoder = sluice::codec::length_field_decoder::make({.field_size = 4, .strip = 4, .max_frame_length = max_frame + 4});
  auto prepender = sluice::codec::length_field_prepender::make({.field_size = 4});
  if (!decoder) return args.fail("--max-frame: " + decoder.err().message);

  sluice::runtime rt(app.runtime);
  for (const auto& at : app.listen) {
    if (udp && sockperf) {
      rt.udp_bind(at, [](sluice::loop_base&) { return std::make_unique<sluice::echo_app::sockperf_datagram_handler>(); });
    } else if (udp) {
      rt.udp_bind(at, [](sluice::loop_base&) { return std::make_unique<sluice::echo_app::udp_echo_handler>(); });
    } else if (sockperf) {
      rt.listen(at, [](sluice::loop_base&) { return std::make_unique<sluice::echo_app::sockperf_stream_handler>(); });
    } else if (frames) {
      rt.listen(at, [&](sluice::loop_base&) { return std::make_unique<sluice::echo_app::frame_echo_handler>(*decoder, *prepender); });
    } else {
      rt.listen(at, [](sluice::loop_base&) { return std::make_unique<sluice::echo_app::echo_handler>(); });
    }
  }
  rt.on_serving([&] {
    for (const auto& ep : udp ? rt.udp_bound() : rt.bound()) {
      std::printf("sluice-echo: %s%s echo on %s (transport %.*s, %u loop%s)\n", udp ? "UDP" : frames ? "frame" : "TCP",
                  sockperf ? " sockperf" : "", ep.to_string().c_str(), static_cast<int>(rt.transport_name().size()),
                  rt.transport_name().data(), rt.loop_count(), rt.loop_count() == 1 ? "" : "s");
    }
    std::fflush(stdout);
  });
  return rt.run("sluice-echo");
}
