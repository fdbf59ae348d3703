#pragma once
// A unit of work for another loop: a callable stored inline (no heap), run
// once with the receiving loop. Captures must fit in `capacity` bytes and be
// nothrow-movable; a static_assert says so at the call site that breaks it.

#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

namespace sluice {

class loop_base;

// A callable of signature void(loop_base&), stored inline (see the file
// comment): what loop_base::send_to carries between loops. Move-only.
class task {
 public:
  // Bytes of inline storage for the callable's captures.
  static constexpr std::size_t capacity = 80;

  task() noexcept = default;
  // Stores f (moved or copied in); f must fit the inline storage and be
  // callable with the receiving loop.
  template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, task>>>
  explicit task(F&& f) noexcept {
    using fn = std::decay_t<F>;
    static_assert(sizeof(fn) <= capacity, "task captures too much: pass a pointer or an index instead");
    static_assert(alignof(fn) <= alignof(std::max_align_t), "task capture is over-aligned");
    static_assert(std::is_nothrow_move_constructible_v<fn>, "task captures must be nothrow-movable");
    static_assert(std::is_invocable_v<fn&, loop_base&>, "a task is called with the receiving loop");
    ::new (static_cast<void*>(storage_)) fn(std::forward<F>(f));
    ops_ = &ops_for<fn>;
  }
  // Takes o's callable; o is left empty.
  task(task&& o) noexcept : ops_(o.ops_) {
    if (ops_ != nullptr) {
      ops_->move(storage_, o.storage_);
      o.ops_ = nullptr;
    }
  }
  // Drops this task's callable (unrun), then takes o's; o is left empty.
  task& operator=(task&& o) noexcept {
    if (this != &o) {
      reset();
      ops_ = o.ops_;
      if (ops_ != nullptr) {
        ops_->move(storage_, o.storage_);
        o.ops_ = nullptr;
      }
    }
    return *this;
  }
  task(const task&) = delete;
  task& operator=(const task&) = delete;
  ~task() { reset(); }

  // Holds a callable not yet run.
  [[nodiscard]] explicit operator bool() const noexcept { return ops_ != nullptr; }
  // Runs the callable once and empties the task.
  void run(loop_base& here) noexcept {
    const ops* o = ops_;
    ops_ = nullptr;
    o->run_and_destroy(storage_, here);
  }

 private:
  struct ops {
    void (*run_and_destroy)(void* self, loop_base& here) noexcept;
    void (*move)(void* dst, void* src) noexcept;
    void (*destroy)(void* self) noexcept;
  };
  template <class Fn>
  static constexpr ops ops_for{
      [](void* self, loop_base& here) noexcept {
        Fn* f = static_cast<Fn*>(self);
        (*f)(here);
        f->~Fn();
      },
      [](void* dst, void* src) noexcept {
        Fn* s = static_cast<Fn*>(src);
        ::new (dst) Fn(std::move(*s));
        s->~Fn();
      },
      [](void* self) noexcept { static_cast<Fn*>(self)->~Fn(); },
  };

  void reset() noexcept {
    if (ops_ != nullptr) {
      ops_->destroy(storage_);
      ops_ = nullptr;
    }
  }

  alignas(std::max_align_t) unsigned char storage_[capacity];
  const ops* ops_ = nullptr;
};

}  // namespace sluice
