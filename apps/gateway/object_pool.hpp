#pragma once
// A free list of reusable objects for one loop: per-connection state is made
// once and reused, so steady-state traffic allocates nothing. Objects live
// until the pool dies; acquire() hands out a free one (or makes one).
// Owner core only.

#include <memory>
#include <vector>

namespace sluice::gateway {

template <class T>
class object_pool {
 public:
  template <class... Args>
  [[nodiscard]] T* acquire(Args&&... make_args) {
    if (free_.empty()) {
      all_.push_back(std::make_unique<T>(std::forward<Args>(make_args)...));
      free_.reserve(all_.size());  // so that release() never allocates
      return all_.back().get();
    }
    T* t = free_.back();
    free_.pop_back();
    return t;
  }
  void release(T* t) noexcept { free_.push_back(t); }
  [[nodiscard]] std::size_t in_use() const noexcept { return all_.size() - free_.size(); }
  // Calls f(T&) on every object, in use or free.
  template <class F>
  void for_each(F&& f) {
    for (auto& t : all_) f(*t);
  }

 private:
  std::vector<std::unique_ptr<T>> all_;
  std::vector<T*> free_;
};

}  // namespace sluice::gateway
