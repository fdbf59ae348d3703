#include "sluice/core/metrics.hpp"

namespace sluice {

std::string format_metrics(const metric_list& metrics) {
  std::string out;
  for (const metric& m : metrics) {
    out += m.name;
    out += ' ';
    out += std::to_string(m.value);
    out += '\n';
  }
  return out;
}

}  // namespace sluice
