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
}  // namespace

std::string to_text(const summary& s) {
  char buf[1024];
  std::string out;
  std::snprintf(buf, sizeof buf, "sluice-bench %s: %s, %u connections, %zu B messages, pipeline %u, %s, %.1f s, %u loop%s\n",
                s.mode.c_str(), s.target.c_str(), s.connections, s.size, s.pipeline,
                s.rate > 0 ? ("open loop at " + std::to_string(static_cast<long long>(s.rate)) + "/s").c_str()
                           : "closed loop",
                s.seconds, s.loops, s.loops == 1 ? "" : "s");
  out += buf;
  std::snprintf(buf, sizeof buf, "  throughput  %.0f msgs/s  (%.1f MB/s each way)\n", per_second(s.messages, s.seconds),
                per_second(s.bytes, s.seconds) / 1e6);
  out += buf;
  const histogram& h = s.latency;
  std::snprintf(buf, sizeof buf, "  latency     p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  (%llu samples)\n",
                format_ns(h.quantile(0.5)).c_str(), format_ns(h.quantile(0.9)).c_str(),
                format_ns(h.quantile(0.99)).c_str(), format_ns(h.quantile(0.999)).c_str(), format_ns(h.max()).c_str(),
                static_cast<unsigned long long>(h.count()));
  out += buf;
  std::snprintf(buf, sizeof buf, "  errors      %llu (connect failures %llu, closed early %llu), mismatched messages %llu\n",
                static_cast<unsigned long long>(s.connect_failures + s.closed_early + s.mismatches),
                static_cast<unsigned long long>(s.connect_failures), static_cast<unsigned long long>(s.closed_early),
                static_cast<unsigned long long>(s.mismatches));
  out += buf;
  if (!s.first_error.empty()) out += "  first error: " + s.first_error + "\n";
  return out;
}

std::string to_json(const summary& s) {
  const histogram& h = s.latency;
  char buf[2048];
  std::snprintf(
      buf, sizeof buf,
      "{\"mode\":\"%s\",\"target\":\"%s\",\"connections\":%u,\"size\":%zu,\"pipeline\":%u,\"rate\":%.0f,"
      "\"seconds\":%.3f,\"loops\":%u,\"messages\":%llu,\"msgs_per_s\":%.1f,\"bytes\":%llu,"
      "\"latency_ns\":{\"p50\":%llu,\"p90\":%llu,\"p99\":%llu,\"p999\":%llu,\"max\":%llu,\"mean\":%.1f,\"samples\":%llu},"
      "\"errors\":{\"connect_failures\":%llu,\"closed_early\":%llu,\"mismatches\":%llu}}\n",
      s.mode.c_str(), s.target.c_str(), s.connections, s.size, s.pipeline, s.rate, s.seconds, s.loops,
      static_cast<unsigned long long>(s.messages), per_second(s.messages, s.seconds),
      static_cast<unsigned long long>(s.bytes), static_cast<unsigned long long>(h.quantile(0.5)),
      static_cast<unsigned long long>(h.quantile(0.9)), static_cast<unsigned long long>(h.quantile(0.99)),
      static_cast<unsigned long long>(h.quantile(0.999)), static_cast<unsigned long long>(h.max()), h.mean(),
      static_cast<unsigned long long>(h.count()), static_cast<unsigned long long>(s.connect_failures),
      static_cast<unsigned long long>(s.closed_early), static_cast<unsigned long long>(s.mismatches));
  return buf;
}

}  // namespace sluice::bench
