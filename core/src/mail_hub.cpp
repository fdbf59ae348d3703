#include "sluice/core/mail_hub.hpp"

namespace sluice {

mail_hub::mail_hub(unsigned loops, std::size_t ring_capacity)
    : n_(loops), rings_(static_cast<std::size_t>(loops) * loops), loops_(new std::atomic<loop_base*>[loops]) {
  std::size_t cap = 1;
  while (cap < ring_capacity) cap <<= 1;
  for (unsigned from = 0; from < loops; ++from) {
    for (unsigned to = 0; to < loops; ++to) {
      if (from != to) rings_[from * loops + to] = std::make_unique<spsc_ring>(cap);
    }
  }
  for (unsigned i = 0; i < loops; ++i) loops_[i].store(nullptr);
}

}  // namespace sluice
