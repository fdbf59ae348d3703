#include "plot.hpp"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string_view>

extern char** environ;

namespace sluice::bench {

namespace {

constexpr const char* gnuplot = "gnuplot";

bool on_path(const char* program) {
  const char* path = std::getenv("PATH");
  std::string_view rest = path != nullptr ? path : "/usr/bin:/bin";
  while (!rest.empty()) {
    const auto colon = rest.find(':');
    std::string dir(rest.substr(0, colon));
    rest = colon == std::string_view::npos ? std::string_view{} : rest.substr(colon + 1);
    if (dir.empty()) dir = ".";
    if (::access((dir + "/" + program).c_str(), X_OK) == 0) return true;
  }
  return false;
}

std::string stem(const std::string& png) {
  constexpr std::string_view ext = ".png";
  if (png.size() > ext.size() && png.compare(png.size() - ext.size(), ext.size(), ext) == 0) {
    return png.substr(0, png.size() - ext.size());
  }
  return png;
}

// gnuplot strings are single-quoted: double any quote inside.
std::string quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    out += c;
    if (c == '\'') out += '\'';
  }
  return out + "'";
}

double us(std::uint64_t ns) { return static_cast<double>(ns) / 1000.0; }

}  // namespace

result<void> plot_available() {
  if (!on_path(gnuplot)) return error{"--plot needs gnuplot on PATH (Debian: gnuplot-nox, from build/install-deps.sh)", {}};
  return {};
}

result<void> draw_plot(const std::string& png, const std::string& title, const timeline& over_time,
                       const histogram& all) {
  const std::string base = stem(png);
  const std::string timeline_file = base + ".timeline.tsv";
  const std::string percentile_file = base + ".percentiles.tsv";
  const std::string script_file = base + ".gnuplot";
  {
    std::ofstream f(timeline_file);
    f << "# seconds\tp50_us\tp90_us\tp99_us\tp99.9_us\tmax_us\tsamples\n";
    const double step = std::chrono::duration<double>(over_time.interval()).count();
    // The last interval may be partial or empty: write what has samples.
    for (std::size_t i = 0; i < over_time.size(); ++i) {
      const histogram& h = over_time.at(i);
      f << (static_cast<double>(i) + 0.5) * step << '\t';
      if (h.count() == 0) {
        f << "?\t?\t?\t?\t?\t0\n";
        continue;
      }
      f << us(h.quantile(0.5)) << '\t' << us(h.quantile(0.9)) << '\t' << us(h.quantile(0.99)) << '\t'
        << us(h.quantile(0.999)) << '\t' << us(h.max()) << '\t' << h.count() << '\n';
    }
    if (!f) return error{"cannot write " + timeline_file, {}};
  }
  {
    std::ofstream f(percentile_file);
    f << "# percentile\tone_over_one_minus_q\tlatency_us\n";
    // Log-spaced quantiles up to 99.9999%, then the maximum.
    // Beyond 1 - 1/samples there is nothing more to see: stop there.
    for (int k = 0; k <= 120; ++k) {
      const double q = 1.0 - std::pow(10.0, -k / 20.0);
      if (all.count() == 0 || 1.0 / (1.0 - q) > static_cast<double>(all.count())) break;
      f << q * 100 << '\t' << 1.0 / (1.0 - q) << '\t' << us(all.quantile(q)) << '\n';
    }
    if (!f) return error{"cannot write " + percentile_file, {}};
  }
  {
    std::ofstream f(script_file);
    const double step_ms = std::chrono::duration<double, std::milli>(over_time.interval()).count();
    f << "set terminal pngcairo size 1200,900 noenhanced font ',10'\n"
      << "set output " << quoted(png) << "\n"
      << "set datafile missing '?'\n"
      << "set grid\n"
      << "set multiplot layout 2,1 title " << quoted(title) << "\n"
      << "set title 'Latency percentiles over time (one point per " << step_ms << " ms)'\n"
      << "set xlabel 'seconds since measuring began'\n"
      << "set ylabel 'latency (us)'\n"
      << "set logscale y\n"
      << "set key outside right\n"
      << "plot " << quoted(timeline_file)
      << " using 1:2 with lines title 'p50', '' using 1:3 with lines title 'p90',"
         " '' using 1:4 with lines title 'p99', '' using 1:5 with lines title 'p99.9',"
         " '' using 1:6 with lines title 'max'\n"
      << "set title 'Latency distribution by percentile (whole measured window)'\n"
      << "set xlabel 'percentile'\n"
      << "set logscale x\n"
      << "set xtics ('0%%' 1, '90%%' 10, '99%%' 100, '99.9%%' 1000, '99.99%%' 10000, '99.999%%' 100000, '99.9999%%' 1000000)\n"
      << "plot " << quoted(percentile_file) << " using 2:3 with lines title 'latency'\n"
      << "unset multiplot\n";
    if (!f) return error{"cannot write " + script_file, {}};
  }
  pid_t pid = 0;
  std::string arg = script_file;
  char* argv[] = {const_cast<char*>(gnuplot), arg.data(), nullptr};
  if (int err = ::posix_spawnp(&pid, gnuplot, nullptr, nullptr, argv, environ); err != 0) {
    return error::from_errno(err, "cannot run gnuplot");
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return error::from_errno(errno, "waiting for gnuplot");
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return error{"gnuplot failed on " + script_file + " (exit status " + std::to_string(WEXITSTATUS(status)) + ")", {}};
  }
  return {};
}

}  // namespace sluice::bench
