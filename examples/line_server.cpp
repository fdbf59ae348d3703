// line_server: a line protocol on a codec, with per-connection state.
// Each line comes back numbered, counted per connection; a line longer than
// --max-line closes its connection (the others go on).
//
//   $ line_server --listen=127.0.0.1:7000 &
//   $ printf 'hello\nworld\n' | nc -q1 127.0.0.1 7000
//   1 hello
//   2 world
#include <cstdio>

#include "sluice/core/codec/line_decoder.hpp"
#include "sluice/core/session.hpp"
#include "sluice/runtime/app_options.hpp"

namespace codec = sluice::codec;

// One session per connection, made when it opens, destroyed when it closes.
// The decoder remembers how far it scanned, so it must be per connection: one
// connection's half-sent line then never holds up another's complete one.
// The context (the decoder's options) is shared by the loop's sessions.
struct line_session {
  line_session(codec::line_decoder::options& opts, sluice::connection&) noexcept : lines(opts) {}

  void on_data(sluice::connection& c) noexcept {
    std::string_view line;
    for (;;) {
      // fit_input: a line that can never fit the input limit is an error, not a wait.
      const auto st = codec::fit_input(c, lines.decode(c.input(), line));
      if (st == codec::frame_status::need_more) return;
      if (codec::is_error(st)) return codec::reject(c, st);  // too long: close this connection
      char number[24];
      const int n = std::snprintf(number, sizeof number, "%lu ", ++count);
      // Writes are buffered and sent once this callback returns; false: over the output limit.
      if (!c.write({number, std::size_t(n)}) || !c.write(line) || !c.write("\n")) return c.close();
    }
  }

  codec::line_decoder lines;
  unsigned long count = 0;  // lines answered on this connection
};

int main(int argc, char** argv) {
  sluice::cli args("line_server", "Answers each line with its number on the connection and the line.");
  sluice::app_options app;  // --listen, --cores, --transport, limits, ...: see --help
  app.declare(args, "127.0.0.1:7000");
  std::size_t max_line = 1024;
  args.size_option("--max-line", "longest line (default 1k)", max_line, {1, 65536, sluice::number_unit::bytes});
  if (auto rc = args.parse(argc, argv)) return *rc;
  if (auto rc = app.finish(args)) return *rc;

  sluice::runtime rt(app.runtime);
  for (const auto& at : app.listen) {  // each loop gets its own sessions<> handler
    rt.listen(at, sluice::session_factory<line_session, codec::line_decoder::options>(
                      [&](sluice::loop_base&) { return codec::line_decoder::options{.max_length = max_line}; }));
  }
  rt.on_serving([&] {  // every loop is up and every port 0 resolved
    for (const auto& at : rt.bound()) std::printf("line_server listening on %s\n", at.to_string().c_str());
    std::fflush(stdout);
  });
  return rt.run("line_server");  // serves until SIGINT or SIGTERM
}
