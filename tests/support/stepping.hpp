#pragma once
// Driving a loop by hand in a test: step it (run_once, never blocking) until
// a condition holds. Kernel sockets complete on their own time, so between
// steps it waits 1 ms on an event wait with nothing to wait for (poll on no
// descriptor), never a blind sleep of a guessed length.

#include <poll.h>

namespace sluice::test {

// Steps loop l until pred() holds, at most n iterations; returns pred().
template <class Loop, class Pred>
bool step_until(Loop& l, Pred&& pred, int n = 2000) {
  for (int i = 0; i < n; ++i) {
    if (pred()) return true;
    l.run_once();
    if (pred()) return true;
    pollfd none{-1, 0, 0};
    ::poll(&none, 0, 1);
  }
  return pred();
}

}  // namespace sluice::test
