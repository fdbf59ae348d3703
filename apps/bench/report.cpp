#include "report.hpp"

#include <cstdio>

namespace sluice::bench {

std::string format_ns(std::uint64_t ns) {
  char buf[32];
  if (ns < 1000) std::snprintf(buf, sizeof buf, "%lluns", static_cast<unsigned long long>(ns));
  else if (ns < 1000000) std::snprintf(buf, sizeof buf, "%.1fus", static_cast<double>(ns) / 1e3);
  else if (ns < 1000000000) std::snprintf(buf, sizeof buf, "%.2fms", static_cast<double>(ns) / 1e6);
  else std::snprintf(buf, sizeof buf, "%.2fs", static_cast<double>(ns) / 1e9);
  return buf;
}

namespace {

double per_second(std::uint64_t n, double seconds) { return seconds > 0 ? static_cast<double>(n) / seconds : 0; }

// What one message is, in words: "64 B messages", "64 B frames", "GET /x".
std::string what(const summary& s) {
  if (s.mode == "http") return "GET " + s.path;
  return std::to_string(s.size) + (s.mode == "frames" ? " B frames" : " B messages");
}

// JSON string contents: quotes, backslashes and control bytes escaped.
std::string escaped(const std::string& in) {
  std::string out;
  for (char c : in) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

std::string headline(const summary& s) {
  char buf[512];
  std::snprintf(buf, sizeof buf, "sluice-bench %s: %s, %u connections, %s, pipeline %u, %s, %.1f s, %u loop%s",
                s.mode.c_str(), s.target.c_str(), s.connections, what(s).c_str(), s.pipeline,
                s.rate > 0 ? ("open loop at " + std::to_string(static_cast<long long>(s.rate)) + "/s").c_str()
                           : "closed loop",
                s.seconds, s.loops, s.loops == 1 ? "" : "s");
  return buf;
}

std::string to_text(const summary& s) {
  char buf[1024];
  std::string out = headline(s) + "\n";
  const char* unit = s.mode == "http" ? "req/s" : "msgs/s";
  const char* way = s.mode == "http" ? "of responses" : "each way";
  std::snprintf(buf, sizeof buf, "  throughput  %.0f %s  (%.1f MB/s %s)\n", per_second(s.messages, s.seconds), unit,
                per_second(s.bytes, s.seconds) / 1e6, way);
  out += buf;
  if (s.tls || s.reconnecting) {
    std::snprintf(buf, sizeof buf, "  %s  %.0f /s  (%llu in the window, %llu resumed, %llu failed)\n",
                  s.tls ? "handshakes" : "connects  ", per_second(s.handshakes, s.seconds),
                  static_cast<unsigned long long>(s.handshakes), static_cast<unsigned long long>(s.resumed),
                  static_cast<unsigned long long>(s.handshake_failures));
    out += buf;
  }
  const histogram& h = s.latency;
  std::snprintf(buf, sizeof buf, "  latency     p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  (%llu samples)\n",
                format_ns(h.quantile(0.5)).c_str(), format_ns(h.quantile(0.9)).c_str(),
                format_ns(h.quantile(0.99)).c_str(), format_ns(h.quantile(0.999)).c_str(), format_ns(h.max()).c_str(),
                static_cast<unsigned long long>(h.count()));
  out += buf;
  std::snprintf(buf, sizeof buf,
                "  errors      %llu (connect failures %llu, closed early %llu, unframeable replies %llu), "
                "mismatched messages %llu\n",
                static_cast<unsigned long long>(s.errors()), static_cast<unsigned long long>(s.connect_failures),
                static_cast<unsigned long long>(s.closed_early), static_cast<unsigned long long>(s.protocol_errors),
                static_cast<unsigned long long>(s.mismatches));
  out += buf;
  if (s.tls) {
    // errors() counts them too: say where the rest of the total comes from.
    out.pop_back();
    std::snprintf(buf, sizeof buf, ", TLS handshake failures %llu\n",
                  static_cast<unsigned long long>(s.handshake_failures));
    out += buf;
  }
  if (!s.first_error.empty()) out += "  first error: " + s.first_error + "\n";
  return out;
}

std::string to_json(const summary& s) {
  const histogram& h = s.latency;
  char buf[4096];
  std::snprintf(
      buf, sizeof buf,
      "{\"mode\":\"%s\",\"target\":\"%s\",\"path\":\"%s\",\"connections\":%u,\"size\":%zu,\"pipeline\":%u,"
      "\"rate\":%.0f,\"seconds\":%.3f,\"loops\":%u,\"messages\":%llu,\"msgs_per_s\":%.1f,\"bytes\":%llu,"
      "\"latency_ns\":{\"p50\":%llu,\"p90\":%llu,\"p99\":%llu,\"p999\":%llu,\"max\":%llu,\"mean\":%.1f,\"samples\":%llu},"
      "\"errors\":{\"connect_failures\":%llu,\"closed_early\":%llu,\"mismatches\":%llu,\"protocol_errors\":%llu},"
      "\"tls\":%s,\"handshakes\":%llu,\"handshakes_per_s\":%.1f,\"resumed\":%llu,\"handshake_failures\":%llu,"
      "\"first_error\":\"%s\"}\n",
      s.mode.c_str(), escaped(s.target).c_str(), escaped(s.path).c_str(), s.connections, s.size, s.pipeline, s.rate,
      s.seconds, s.loops, static_cast<unsigned long long>(s.messages), per_second(s.messages, s.seconds),
      static_cast<unsigned long long>(s.bytes), static_cast<unsigned long long>(h.quantile(0.5)),
      static_cast<unsigned long long>(h.quantile(0.9)), static_cast<unsigned long long>(h.quantile(0.99)),
      static_cast<unsigned long long>(h.quantile(0.999)), static_cast<unsigned long long>(h.max()), h.mean(),
      static_cast<unsigned long long>(h.count()), static_cast<unsigned long long>(s.connect_failures),
      static_cast<unsigned long long>(s.closed_early), static_cast<unsigned long long>(s.mismatches),
      static_cast<unsigned long long>(s.protocol_errors), s.tls ? "true" : "false",
      static_cast<unsigned long long>(s.handshakes), per_second(s.handshakes, s.seconds),
      static_cast<unsigned long long>(s.resumed), static_cast<unsigned long long>(s.handshake_failures),
      escaped(s.first_error.substr(0, 512)).c_str());
  return buf;
}

}  // namespace sluice::bench
