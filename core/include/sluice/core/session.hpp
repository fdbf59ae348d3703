#pragma once
// Per-connection sessions: the application names a session type, and the loop
// makes one for every connection, hands it to typed callbacks and destroys it
// when the connection closes. State that belongs to one connection (a decoder
// that remembers how far it scanned, a request parser, a file being sent)
// lives in its session, so two connections can never share it by mistake.
//
//   struct line_session {
//     explicit line_session(sluice::connection&) noexcept {}
//     void on_data(sluice::connection& c) noexcept;   // required
//     sluice::codec::line_decoder lines;              // one per connection
//   };
//   rt.listen(at, sluice::session_factory<line_session>());
//
// A session type provides on_data(connection&) and may provide any of
//   on_open(connection&), on_writable(connection&), on_peer_shutdown(connection&)
//   (default: close()), on_close(connection&, close_reason)
// with the meaning handler.hpp gives them; each is noexcept. It is constructed
// (noexcept) from (connection&), or from (Context&, connection&) for
// sessions<S, Context>, where the Context is per-loop state the sessions share
// (settings, counters, the loop's other handlers). The session is kept in the
// connection's context(): do not set_context() on a connection it serves.
//
// Memory: sessions come from a per-loop free list (session_pool) that grows by
// chunks and never shrinks, so a loop that has once served N connections at
// a time makes new sessions without allocating. A session whose members own
// heap memory (std::string, std::vector) still allocates in its constructor:
// keep such bytes in the connection's buffer chains instead, or recycle it.
//
// Recycled sessions: a session type that provides
//   void reopen(connection&) noexcept
// is constructed once per pool slot and kept alive after on_close; the next
// connection that gets the slot gets reopen() instead of a constructor (on_open
// follows as usual). Its constructor may then allocate and throw (a parser's
// field table): that happens only when the loop reaches a new high of open
// connections, and a failure refuses that connection. reopen() must bring
// back a fresh connection's state: whatever it leaves is what the next
// connection sees. Recycled sessions are destroyed with their handler, which
// outlives its loop: so a recycled session must also provide on_close and give
// back there what it holds of the loop (buffer chains, a parser's bytes,
// timers), or it would keep the loop's buffers while it waits, and release them
// into a pool that is gone (sessions<> refuses a recycled type without on_close).
//
// A connection served by sessions<> keeps its session in context(): do not
// set_handler or set_context on it.
//
// Owner core only, as everything a loop holds.

#include <cstddef>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

#include "sluice/core/close_reason.hpp"
#include "sluice/core/connection.hpp"
#include "sluice/core/endpoint.hpp"
#include "sluice/core/handler.hpp"
#include "sluice/core/loop_base.hpp"
#include "sluice/base/result.hpp"

namespace sluice {

// A free list of slots for objects of type T, grown `chunk` slots at a time.
// create() constructs in a free slot (nullptr when memory ran out or the
// constructor threw: the caller refuses the connection); destroy() destructs
// and puts the slot back. retire() keeps an object alive for reuse(), which
// hands it out again without constructing (recycled sessions); retired
// objects are destroyed with the pool. Owner core only.
template <class T>
class session_pool {
 public:
  // A pool that grows by `chunk` slots (at least 1). Allocates nothing until
  // the first create().
  explicit session_pool(std::size_t chunk = 64) noexcept : chunk_(chunk == 0 ? 1 : chunk) {}
  session_pool(const session_pool&) = delete;
  session_pool& operator=(const session_pool&) = delete;
  // Every object must have been destroyed or retired (the loop closes every
  // connection before its handlers die); retired ones are destroyed here.
  ~session_pool() {
    while (retired_ != nullptr) {
      slot* next = retired_->next;
      std::launder(reinterpret_cast<T*>(retired_->storage))->~T();
      retired_ = next;
    }
    while (chunks_ != nullptr) {
      chunk_header* next = chunks_->next;
      ::operator delete(static_cast<void*>(chunks_), std::align_val_t{alignof(chunk_header)});
      chunks_ = next;
    }
  }

  // Constructs a T from args in a free slot (growing the pool if none is free);
  // nullptr when no memory could be had. T's constructor must be noexcept.
  template <class... Args>
  [[nodiscard]] T* create(Args&&... args) noexcept {
    if (free_ == nullptr && !grow()) return nullptr;
    slot* s = free_;
    if constexpr (std::is_nothrow_constructible_v<T, Args...>) {
      free_ = s->next;
      ++live_;
      return ::new (static_cast<void*>(s->storage)) T(std::forward<Args>(args)...);
    } else {
      try {
        T* t = ::new (static_cast<void*>(s->storage)) T(std::forward<Args>(args)...);
        free_ = s->next;
        ++live_;
        return t;
      } catch (...) {
        return nullptr;  // the slot stays free
      }
    }
  }
  // Destroys t (made by this pool's create()) and puts its slot back for the
  // next create().
  void destroy(T* t) noexcept {
    t->~T();
    slot* s = slot_of(t);
    s->next = free_;
    free_ = s;
    --live_;
  }
  // Puts t back alive: reuse() hands it out again as it was left.
  void retire(T* t) noexcept {
    slot* s = slot_of(t);
    s->next = retired_;
    retired_ = s;
    --live_;
    ++retired_count_;
  }
  // A retired object, or nullptr if there is none.
  [[nodiscard]] T* reuse() noexcept {
    if (retired_ == nullptr) return nullptr;
    slot* s = retired_;
    retired_ = s->next;
    ++live_;
    --retired_count_;
    return std::launder(reinterpret_cast<T*>(s->storage));
  }

  // Objects alive now (handed out; retired ones not counted).
  [[nodiscard]] std::size_t live() const noexcept { return live_; }
  // Objects retired, waiting for reuse().
  [[nodiscard]] std::size_t retired() const noexcept { return retired_count_; }
  // Slots made so far (live, retired and free).
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
  // How many times the pool asked for memory: flat in steady state.
  [[nodiscard]] std::size_t growths() const noexcept { return growths_; }

 private:
  // The object first, so that a T* is its slot's address; the link beside
  // it, so that a retired object stays intact while it waits.
  struct slot {
    alignas(T) unsigned char storage[sizeof(T)];
    slot* next;
  };
  struct alignas(alignof(slot) > alignof(void*) ? alignof(slot) : alignof(void*)) chunk_header {
    chunk_header* next;
  };
  static constexpr std::size_t header_bytes =
      (sizeof(chunk_header) + alignof(slot) - 1) / alignof(slot) * alignof(slot);

  static slot* slot_of(T* t) noexcept { return reinterpret_cast<slot*>(reinterpret_cast<unsigned char*>(t)); }

  bool grow() noexcept {
    void* raw = ::operator new(header_bytes + chunk_ * sizeof(slot), std::align_val_t{alignof(chunk_header)},
                               std::nothrow);
    if (raw == nullptr) return false;
    auto* h = static_cast<chunk_header*>(raw);
    h->next = chunks_;
    chunks_ = h;
    auto* slots = reinterpret_cast<slot*>(static_cast<unsigned char*>(raw) + header_bytes);
    for (std::size_t i = chunk_; i-- > 0;) {
      slots[i].next = free_;
      free_ = &slots[i];
    }
    capacity_ += chunk_;
    ++growths_;
    return true;
  }

  std::size_t chunk_;
  chunk_header* chunks_ = nullptr;
  slot* free_ = nullptr;
  slot* retired_ = nullptr;
  std::size_t live_ = 0;
  std::size_t retired_count_ = 0;
  std::size_t capacity_ = 0;
  std::size_t growths_ = 0;
};

namespace detail {
// The per-loop state sessions share: nothing, or a Context owned by the handler.
template <class Context>
struct session_context {
  template <class... Args>
  explicit session_context(Args&&... args) : value(std::forward<Args>(args)...) {}
  Context value;
};
template <>
struct session_context<void> {};
}  // namespace detail

// A session type that is kept alive between connections (see the top).
template <class Session>
concept recycled_session = requires(Session& s, connection& c) {
  { s.reopen(c) } noexcept;
};

// The handler that gives every connection its own Session. One per loop (the
// runtime calls a listen factory per loop, see session_factory). With a
// Context, the handler owns one (made from the constructor's arguments) and
// every session is made from (Context&, connection&); a pointer type shares
// state that the application owns elsewhere.
template <class Session, class Context = void>
class sessions final : public handler, private detail::session_context<Context> {
 public:
  // A handler whose Context (if any) is made from context_args.
  template <class... Args>
  explicit sessions(Args&&... context_args) : detail::session_context<Context>(std::forward<Args>(context_args)...) {}
  // Closes nothing: the loop that used this handler must be gone first.
  ~sessions() override = default;

  // The shared per-loop state (only with a Context).
  template <class C = Context>
    requires(!std::is_void_v<C>)
  [[nodiscard]] C& context() noexcept {
    return this->value;
  }

  // Connects to `to` with a session made now (constructed before any callback,
  // so on_close reaches it even if the connection never opens; with no memory
  // for it, the connection is aborted and gets no session). An error (no
  // connection at all) makes no session.
  result<connection_handle> connect(loop_base& l, const endpoint& to) noexcept {
    auto h = l.connect(to, *this);
    if (!h) return h;
    connection* c = l.get(*h);
    if (c == nullptr) return h;
    // A transport that opened it at once made the session in on_open already.
    if (find(*c) == nullptr && attach(*c) == nullptr) c->abort();
    return h;
  }

  // The session of c, or nullptr if c is not served by this handler.
  [[nodiscard]] Session* find(connection& c) const noexcept {
    if (&c.get_handler() != this) return nullptr;
    return static_cast<Session*>(c.context());
  }
  // The free list the sessions come from (live(), growths(): for tests and
  // metrics).
  [[nodiscard]] const session_pool<Session>& pool() const noexcept { return pool_; }

  // Makes c's session (unless connect() made it already) and calls its on_open,
  // if it has one; closes c with resource_limit if no memory could be had.
  void on_open(connection& c) noexcept override {
    Session* s = find(c);
    if (s == nullptr && (s = attach(c)) == nullptr) {
      c.close(close_reason::resource_limit);
      return;
    }
    if constexpr (requires { s->on_open(c); }) s->on_open(c);
  }
  // Calls the session's on_data.
  void on_data(connection& c) noexcept override {
    static_assert(requires(Session& s) {
      { s.on_data(c) } noexcept;
    }, "a session provides on_data(connection&) noexcept");
    if (Session* s = find(c)) s->on_data(c);
  }
  // Calls the session's on_writable, if it has one.
  void on_writable(connection& c) noexcept override {
    if constexpr (requires(Session& s) { s.on_writable(c); }) {
      if (Session* s = find(c)) s->on_writable(c);
    }
  }
  // Calls the session's on_peer_shutdown if it has one; otherwise the default
  // (close).
  void on_peer_shutdown(connection& c) noexcept override {
    if constexpr (requires(Session& s) { s.on_peer_shutdown(c); }) {
      if (Session* s = find(c)) {
        s->on_peer_shutdown(c);
        return;
      }
    }
    handler::on_peer_shutdown(c);
  }
  // Calls the session's on_close, if it has one, then destroys the session and
  // returns its slot to the pool.
  void on_close(connection& c, close_reason why) noexcept override {
    Session* s = find(c);
    if (s == nullptr) return;
    if constexpr (requires { s->on_close(c, why); }) s->on_close(c, why);
    c.set_context(nullptr);
    if constexpr (recycled_session<Session>) {
      pool_.retire(s);
    } else {
      pool_.destroy(s);
    }
  }

 private:
  // Checked where a session is made, not where sessions<> is named: a
  // handler may be declared while its session type is still incomplete.
  static constexpr bool nothrow_made() noexcept {
    if constexpr (std::is_void_v<Context>) {
      return std::is_nothrow_constructible_v<Session, connection&>;
    } else {
      return std::is_nothrow_constructible_v<Session, Context&, connection&>;
    }
  }

  Session* attach(connection& c) noexcept {
    static_assert(recycled_session<Session> || nothrow_made(),
                  "a session's constructor runs on the data path: make it noexcept, or recycle the session "
                  "(reopen(connection&) noexcept) so that it runs once per slot");
    static_assert(!recycled_session<Session> ||
                      requires(Session& r, connection& cn, close_reason why) { r.on_close(cn, why); },
                  "a recycled session outlives its connection: give back in on_close(connection&, close_reason) "
                  "what it holds of the loop (buffer chains, a parser's bytes, timers)");
    Session* s = nullptr;
    if constexpr (recycled_session<Session>) {
      if ((s = pool_.reuse()) != nullptr) s->reopen(c);
    }
    if (s == nullptr) {
      if constexpr (std::is_void_v<Context>) {
        s = pool_.create(c);
      } else {
        s = pool_.create(this->value, c);
      }
    }
    if (s != nullptr) c.set_context(s);
    return s;
  }

  session_pool<Session> pool_;
};

// A runtime::listen factory: each loop gets its own sessions<Session> handler.
template <class Session>
[[nodiscard]] auto session_factory() {
  return [](loop_base&) -> std::unique_ptr<handler> { return std::make_unique<sessions<Session>>(); };
}
// The same with a per-loop Context: make_context(loop) runs on each loop's
// thread and returns the Context (or its constructor's argument).
template <class Session, class Context, class MakeContext>
[[nodiscard]] auto session_factory(MakeContext make_context) {
  return [make_context](loop_base& l) -> std::unique_ptr<handler> {
    return std::make_unique<sessions<Session, Context>>(make_context(l));
  };
}

}  // namespace sluice
