#pragma once
// --plot=FILE.png: draws, with gnuplot, two panels in one PNG: latency
// percentiles (p50, p90, p99, p99.9, max) over the measured time, one point
// per --plot-interval, and the latency distribution by percentile (the
// HdrHistogram-style spectrum: x is 1/(1-q) on a log axis, so the tail gets
// room). The data go next to the image (FILE.timeline.tsv,
// FILE.percentiles.tsv) and so does the script (FILE.gnuplot), so the plot
// can be redrawn or the numbers reused.
//
// Control plane: runs after the benchmark, on the main thread.

#include <string>

#include "sluice/core/histogram.hpp"
#include "sluice/base/result.hpp"
#include "timeline.hpp"

namespace sluice::bench {

// Whether gnuplot can be run (checked before a run, so a missing tool is
// reported before the benchmark and not after it).
[[nodiscard]] result<void> plot_available();

// Writes the data and script, runs gnuplot; an error says what failed.
[[nodiscard]] result<void> draw_plot(const std::string& png, const std::string& title, const timeline& over_time,
                                     const histogram& all);

}  // namespace sluice::bench
