// A line server of 30 lines, built outside sluice's tree: by pkg-config
// against an installed sluice (consumer_test.py, a), and as a meson
// subproject consumer (b). Answers each line with "ok: LINE".
#include <cstdio>
#include <string_view>

#include "sluice/core/codec/line_decoder.hpp"
#include "sluice/core/session.hpp"
#include "sluice/runtime/runtime.hpp"

struct line_session {
  explicit line_session(sluice::connection&) noexcept {}
  void on_data(sluice::connection& c) noexcept {
    std::string_view line;
    while (lines.decode(c.input(), line) == sluice::codec::frame_status::frame) {
      if (!c.write("ok: ") || !c.write(line) || !c.write_and_flush("\n")) c.close();
    }
  }
  sluice::codec::line_decoder lines;
};

int main() {
  sluice::runtime_config cfg;
  cfg.placement.loops = 1;
  sluice::runtime rt(cfg);
  rt.listen(sluice::endpoint::parse("127.0.0.1:0").value(), sluice::session_factory<line_session>());
  if (auto r = rt.start(); !r) return std::fprintf(stderr, "%s\n", r.err().message.c_str()), 2;
  std::printf("%u\n", rt.bound().front().port());
  std::fflush(stdout);
  rt.wait();
}
