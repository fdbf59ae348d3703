// sessions<S> (core/session.hpp): the free list they come from, and the
// handler that gives each connection of a real loop (epoll, manual clock,
// stepped with run_once) its own session, made at open (or at connect),
// called with its own state, destroyed (or retired) after on_close, and made
// without allocating once the loop has been warmed up.

#include "stepping.hpp"
#include "sluice/core/session.hpp"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "net.hpp"
#include "sluice/core/codec/line_decoder.hpp"
#include "sluice/transport/loop.hpp"
#include "sluice/epoll/epoll_transport.hpp"

// ---- counting global operator new ------------------------------------------------------------
// Every form of operator new in this binary is counted while this thread
// asked for it (tests/perf/count_alloc.c counts malloc for the echo benchmark
// the same way, from outside). Only the thread that steps the loop counts.
namespace {
thread_local bool counting = false;
thread_local std::size_t allocations = 0;
void* counted(std::size_t n) {
  if (counting) ++allocations;
  return std::malloc(n == 0 ? 1 : n);
}
void* counted_aligned(std::size_t n, std::align_val_t a) {
  if (counting) ++allocations;
  const auto al = static_cast<std::size_t>(a);
  void* p = nullptr;
  return ::posix_memalign(&p, al < sizeof(void*) ? sizeof(void*) : al, n == 0 ? 1 : n) == 0 ? p : nullptr;
}
// Out of line, so that the compiler does not pair an inlined new with free.
[[gnu::noinline]] void release(void* p) noexcept { std::free(p); }
}  // namespace

void* operator new(std::size_t n) {
  if (void* p = counted(n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
  if (void* p = counted(n)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return counted(n); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return counted(n); }
void* operator new(std::size_t n, std::align_val_t a) {
  if (void* p = counted_aligned(n, a)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n, std::align_val_t a) {
  if (void* p = counted_aligned(n, a)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return counted_aligned(n, a);
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return counted_aligned(n, a);
}
void operator delete(void* p) noexcept { release(p); }
void operator delete[](void* p) noexcept { release(p); }
void operator delete(void* p, std::size_t) noexcept { release(p); }
void operator delete[](void* p, std::size_t) noexcept { release(p); }
void operator delete(void* p, std::align_val_t) noexcept { release(p); }
void operator delete[](void* p, std::align_val_t) noexcept { release(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { release(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { release(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { release(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { release(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { release(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { release(p); }

namespace sluice {
namespace {

using namespace std::chrono_literals;
using test_loop = loop<epoll::epoll_transport>;

// ---- session_pool ------------------------------------------------------------------------------

struct counted_object {
  static inline int made = 0;
  static inline int destroyed = 0;
  explicit counted_object(int v) noexcept : value(v) { ++made; }
  ~counted_object() { ++destroyed; }
  int value;
};

struct pool_test : ::testing::Test {
  void SetUp() override { counted_object::made = counted_object::destroyed = 0; }
};

TEST_F(pool_test, create_destroy_and_reuse_of_the_freed_slot) {
  session_pool<counted_object> pool(2);
  EXPECT_EQ(pool.capacity(), 0u) << "nothing is allocated before the first create";
  EXPECT_EQ(pool.growths(), 0u);
  counted_object* a = pool.create(1);
  counted_object* b = pool.create(2);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_NE(a, b);
  EXPECT_EQ(a->value, 1);
  EXPECT_EQ(b->value, 2);
  EXPECT_EQ(pool.live(), 2u);
  EXPECT_EQ(pool.capacity(), 2u);
  EXPECT_EQ(pool.growths(), 1u);
  pool.destroy(a);
  EXPECT_EQ(counted_object::destroyed, 1) << "destroy runs the destructor";
  EXPECT_EQ(pool.live(), 1u);
  counted_object* c = pool.create(3);
  EXPECT_EQ(c, a) << "the freed slot is handed out again (LIFO)";
  EXPECT_EQ(c->value, 3) << "constructed anew";
  EXPECT_EQ(pool.growths(), 1u) << "a freed slot needs no memory";
  pool.destroy(b);
  pool.destroy(c);
  EXPECT_EQ(pool.live(), 0u);
  EXPECT_EQ(counted_object::made, 3);
  EXPECT_EQ(counted_object::destroyed, 3);
}

TEST_F(pool_test, grows_by_chunks_and_not_again_once_warm) {
  session_pool<counted_object> pool(4);
  std::vector<counted_object*> v;
  for (int i = 0; i < 10; ++i) v.push_back(pool.create(i));
  EXPECT_EQ(pool.growths(), 3u) << "10 objects in chunks of 4";
  EXPECT_EQ(pool.capacity(), 12u);
  EXPECT_EQ(pool.live(), 10u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(v[static_cast<std::size_t>(i)]->value, i) << "no slot handed out twice";
  for (int round = 0; round < 5; ++round) {
    for (auto* p : v) pool.destroy(p);
    v.clear();
    for (int i = 0; i < 12; ++i) v.push_back(pool.create(i));
  }
  EXPECT_EQ(pool.growths(), 3u) << "up to the high-water mark, slots are reused";
  EXPECT_EQ(pool.capacity(), 12u);
  v.push_back(pool.create(12));
  EXPECT_EQ(pool.growths(), 4u) << "one past it grows by one chunk";
  EXPECT_EQ(pool.capacity(), 16u);
  for (auto* p : v) pool.destroy(p);
  EXPECT_EQ(counted_object::made, counted_object::destroyed);
}

struct alignas(64) wide_object {
  explicit wide_object(int) noexcept {}
  unsigned char bytes[100];
};

TEST(pool, keeps_the_alignment_of_over_aligned_types) {
  session_pool<wide_object> pool(3);
  std::vector<wide_object*> v;
  for (int i = 0; i < 7; ++i) v.push_back(pool.create(i));
  for (auto* p : v) EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % 64, 0u);
  for (auto* p : v) pool.destroy(p);
}

struct throwing_object {
  static inline bool fail = false;
  explicit throwing_object(int v) : value(v) {
    if (fail) throw std::runtime_error("no");
  }
  int value;
};

TEST(pool, a_constructor_that_throws_gives_nullptr_and_leaves_the_slot_free) {
  session_pool<throwing_object> pool(1);
  throwing_object::fail = true;
  EXPECT_EQ(pool.create(1), nullptr);
  EXPECT_EQ(pool.live(), 0u);
  throwing_object::fail = false;
  throwing_object* t = pool.create(2);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->value, 2);
  EXPECT_EQ(pool.growths(), 1u) << "the slot the failed constructor had was used";
  pool.destroy(t);
}

TEST_F(pool_test, retired_objects_come_back_as_they_were_and_die_with_the_pool) {
  {
    session_pool<counted_object> pool(2);
    counted_object* a = pool.create(7);
    a->value = 42;
    pool.retire(a);
    EXPECT_EQ(counted_object::destroyed, 0) << "retired, not destroyed";
    EXPECT_EQ(pool.live(), 0u);
    EXPECT_EQ(pool.retired(), 1u);
    counted_object* b = pool.create(8);
    EXPECT_NE(b, a) << "create never hands out a retired object";
    EXPECT_EQ(pool.reuse(), a);
    EXPECT_EQ(a->value, 42) << "as it was left";
    EXPECT_EQ(pool.reuse(), nullptr);
    EXPECT_EQ(pool.live(), 2u);
    pool.retire(a);
    pool.destroy(b);
    EXPECT_EQ(counted_object::destroyed, 1);
  }
  EXPECT_EQ(counted_object::made, 2);
  EXPECT_EQ(counted_object::destroyed, 2) << "the pool destroyed what was retired";
}

// ---- sessions<S> over a loop -----------------------------------------------------------------

// What the sessions did, in order, across all of them.
std::vector<std::string> events;

// A session that records its life and keeps what its connection sent.
struct probe_session {
  static inline int next_id = 0;
  explicit probe_session(connection& c) noexcept : id(++next_id), conn(c.handle()) {
    events.push_back("make " + std::to_string(id));
  }
  ~probe_session() { events.push_back("destroy " + std::to_string(id)); }
  void on_open(connection& c) noexcept {
    EXPECT_EQ(c.handle(), conn) << "made for this connection";
    events.push_back("open " + std::to_string(id));
  }
  void on_data(connection& c) noexcept {
    while (!c.input().empty()) received += std::string(*c.input().next(c.input().size()));
    events.push_back("data " + std::to_string(id) + " " + received);
    (void)c.write(std::to_string(id) + ":" + received + "\n");
  }
  void on_close(connection& c, close_reason why) noexcept {
    EXPECT_EQ(c.handle(), conn);
    events.push_back("close " + std::to_string(id) + " " + std::string(to_string(why)));
  }
  int id;
  connection_handle conn;
  std::string received;  // this connection's bytes only
};

struct loop_fixture {
  manual_clock clock;
  loop_options opts;
  std::unique_ptr<test_loop> l;

  loop_fixture() {
    opts.clock.manual = &clock;
    l = std::make_unique<test_loop>(opts, 0);
  }
  ~loop_fixture() { finish(); }
  void finish() {
    if (!l) return;
    l->stop(0s);
    for (int i = 0; i < 200 && l->connection_count() != 0; ++i) l->run_once();
    l.reset();
  }
  endpoint listen(handler& h) {
    auto lr = l->listen(endpoint::loopback_v4(0), h);
    EXPECT_TRUE(lr.ok());
    return lr.ok() ? (*lr)->local() : endpoint{};
  }
  // Steps the loop until pred holds (tests/support/stepping.hpp).
  template <class Pred>
  bool step_until(Pred pred, int n = 5000) {
    return test::step_until(*l, pred, n);
  }
};

// Reads n bytes from a client socket while stepping the loop that answers it.
std::string read_stepping(loop_fixture& f, int fd, std::size_t n) {
  std::string got;
  (void)f.step_until([&] {
    char buf[256];
    for (;;) {
      const ssize_t r = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (r <= 0) break;
      got.append(buf, static_cast<std::size_t>(r));
    }
    return got.size() >= n;
  });
  return got;
}

struct sessions_test : ::testing::Test {
  void SetUp() override {
    events.clear();
    probe_session::next_id = 0;
  }
};

std::size_t count_of(const std::string& prefix) {
  std::size_t n = 0;
  for (const auto& e : events) n += e.rfind(prefix, 0) == 0 ? 1 : 0;
  return n;
}

TEST_F(sessions_test, each_connection_gets_its_own_session_made_at_open_and_destroyed_after_close) {
  loop_fixture f;
  sessions<probe_session> h;
  const endpoint at = f.listen(h);
  int a = test::connect_to(at);
  ASSERT_TRUE(f.step_until([&] { return count_of("open") == 1; }));
  int b = test::connect_to(at);
  ASSERT_TRUE(f.step_until([&] { return count_of("open") == 2; }));
  EXPECT_EQ(events, (std::vector<std::string>{"make 1", "open 1", "make 2", "open 2"}))
      << "a session is made at open, before its on_open";
  EXPECT_EQ(h.pool().live(), 2u);

  // Interleaved bytes: each session sees its own connection's only.
  ASSERT_TRUE(test::send_all(a, "aa"));
  ASSERT_TRUE(f.step_until([&] { return count_of("data 1") == 1; }));
  ASSERT_TRUE(test::send_all(b, "bbb"));
  ASSERT_TRUE(f.step_until([&] { return count_of("data 2") == 1; }));
  ASSERT_TRUE(test::send_all(a, "A"));
  ASSERT_TRUE(f.step_until([&] { return count_of("data 1") == 2; }));
  EXPECT_EQ(read_stepping(f, a, 10), "1:aa\n1:aaA\n");
  EXPECT_EQ(read_stepping(f, b, 6), "2:bbb\n");

  // The peer closes a: the default on_peer_shutdown closes; on_close reaches
  // a's session, which is destroyed right after; b's lives on.
  ::close(a);
  ASSERT_TRUE(f.step_until([&] { return count_of("destroy") == 1; }));
  const std::vector<std::string> tail(events.end() - 2, events.end());
  EXPECT_EQ(tail, (std::vector<std::string>{"close 1 peer_closed", "destroy 1"}));
  EXPECT_EQ(h.pool().live(), 1u);
  ASSERT_TRUE(test::send_all(b, "!"));
  EXPECT_EQ(read_stepping(f, b, 7), "2:bbb!\n") << "b's session kept its state";

  // A new connection gets a fresh session in the freed slot: nothing of a's.
  int c = test::connect_to(at);
  ASSERT_TRUE(f.step_until([&] { return count_of("open") == 3; }));
  ASSERT_TRUE(test::send_all(c, "c"));
  EXPECT_EQ(read_stepping(f, c, 4), "3:c\n");
  EXPECT_EQ(h.pool().capacity(), 64u);
  EXPECT_EQ(h.pool().growths(), 1u);
  ::close(b);
  ::close(c);
  ASSERT_TRUE(f.step_until([&] { return count_of("destroy") == 3; }));
  EXPECT_EQ(h.pool().live(), 0u);
  EXPECT_EQ(count_of("make"), count_of("destroy"));
}

TEST_F(sessions_test, a_connect_that_fails_gives_on_close_to_the_session_made_at_connect) {
  loop_fixture f;
  sessions<probe_session> h;
  auto [holder, port] = test::reserve_closed_port();
  auto r = h.connect(*f.l, endpoint::loopback_v4(port));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(events, (std::vector<std::string>{"make 1"})) << "made at connect, before any callback";
  EXPECT_EQ(h.pool().live(), 1u);
  ASSERT_TRUE(f.step_until([&] { return count_of("destroy") == 1; }));
  EXPECT_EQ(events, (std::vector<std::string>{"make 1", "close 1 connect_refused", "destroy 1"}))
      << "never opened: on_close only, then destroyed";
  EXPECT_EQ(h.pool().live(), 0u);
  ::close(holder);
}

TEST_F(sessions_test, a_connect_that_succeeds_opens_the_session_made_at_connect) {
  loop_fixture f;
  sessions<probe_session> h;
  auto [lfd, at] = test::listen_loopback();
  auto r = h.connect(*f.l, at);
  ASSERT_TRUE(r.ok());
  connection* c = f.l->get(*r);
  ASSERT_NE(c, nullptr);
  probe_session* s = h.find(*c);
  ASSERT_NE(s, nullptr) << "reachable before it opens";
  EXPECT_EQ(s->conn, *r);
  ASSERT_TRUE(f.step_until([&] { return count_of("open") == 1; }));
  EXPECT_EQ(events, (std::vector<std::string>{"make 1", "open 1"})) << "one session: none made again at open";
  int peer = ::accept(lfd, nullptr, nullptr);
  ASSERT_GE(peer, 0);
  ASSERT_TRUE(test::send_all(peer, "x"));
  EXPECT_EQ(read_stepping(f, peer, 4), "1:x\n");
  ::close(peer);
  ASSERT_TRUE(f.step_until([&] { return count_of("destroy") == 1; }));
  EXPECT_EQ(h.pool().live(), 0u);
  ::close(lfd);
}

struct plain_handler final : handler {
  std::vector<connection_handle> opened;
  int marker = 0;
  void on_open(connection& c) noexcept override {
    c.set_context(&marker);  // a context that is not a session
    opened.push_back(c.handle());
  }
  void on_data(connection& c) noexcept override { (void)c.input().skip(c.input().size()); }
};

TEST_F(sessions_test, find_gives_nullptr_for_a_connection_of_another_handler) {
  loop_fixture f;
  sessions<probe_session> h;
  plain_handler other;
  const endpoint at_sessions = f.listen(h);
  const endpoint at_other = f.listen(other);
  int a = test::connect_to(at_other);
  int b = test::connect_to(at_sessions);
  ASSERT_TRUE(f.step_until([&] { return other.opened.size() == 1 && count_of("open") == 1; }));
  connection* foreign = f.l->get(other.opened.front());
  ASSERT_NE(foreign, nullptr);
  ASSERT_NE(foreign->context(), nullptr);
  EXPECT_EQ(h.find(*foreign), nullptr) << "another handler's context is not a session";
  EXPECT_EQ(h.pool().live(), 1u);
  ::close(a);
  ::close(b);
  ASSERT_TRUE(f.step_until([&] { return f.l->connection_count() == 0; }));
  EXPECT_EQ(h.pool().live(), 0u);
}

// Per-loop state the sessions share: made from the handler's constructor
// arguments, handed to each session's constructor.
struct shared_counts {
  explicit shared_counts(std::string n) : name(std::move(n)) {}
  std::string name;
  int opened = 0;
  int closed = 0;
};
struct counting_session {
  counting_session(shared_counts& ctx, connection&) noexcept : ctx(ctx) {}
  void on_open(connection& c) noexcept {
    ++ctx.opened;
    (void)c.write(ctx.name + " " + std::to_string(ctx.opened) + "\n");
  }
  void on_data(connection& c) noexcept { (void)c.input().skip(c.input().size()); }
  void on_close(connection&, close_reason) noexcept { ++ctx.closed; }
  shared_counts& ctx;
};

TEST_F(sessions_test, a_context_is_shared_by_the_sessions_of_one_handler) {
  loop_fixture f;
  sessions<counting_session, shared_counts> h("ctx");
  const endpoint at = f.listen(h);
  int a = test::connect_to(at);
  ASSERT_TRUE(f.step_until([&] { return h.context().opened == 1; }));
  int b = test::connect_to(at);
  ASSERT_TRUE(f.step_until([&] { return h.context().opened == 2; }));
  EXPECT_EQ(read_stepping(f, a, 6), "ctx 1\n");
  EXPECT_EQ(read_stepping(f, b, 6), "ctx 2\n");
  ::close(a);
  ::close(b);
  ASSERT_TRUE(f.step_until([&] { return h.context().closed == 2; }));
  EXPECT_EQ(h.pool().live(), 0u);
}

// A session type kept between connections: constructed once per slot (its
// constructor may allocate and throw), reopened for the next connection.
struct recycled_probe {
  static inline int made = 0;
  static inline int reopened = 0;
  static inline int destroyed = 0;
  static inline bool fail = false;
  explicit recycled_probe(connection&) : table(16, 'x') {  // owns heap memory, kept across connections
    if (fail) throw std::bad_alloc();
    ++made;
  }
  ~recycled_probe() { ++destroyed; }
  void reopen(connection&) noexcept {
    ++reopened;
    received = 0;
  }
  void on_close(connection&, close_reason) noexcept {}  // holds nothing of the loop
  void on_data(connection& c) noexcept {
    received += c.input().size();
    (void)c.input().skip(c.input().size());
    (void)c.write(std::to_string(received) + "\n");
  }
  std::string table;
  std::size_t received = 0;
};
static_assert(recycled_session<recycled_probe>);
static_assert(!recycled_session<probe_session>);

TEST(sessions, a_recycled_session_is_reopened_not_made_again_and_dies_with_its_handler) {
  recycled_probe::made = recycled_probe::reopened = recycled_probe::destroyed = 0;
  recycled_probe::fail = false;
  auto h = std::make_unique<sessions<recycled_probe>>();
  {
    loop_fixture f;
    const endpoint at = f.listen(*h);
    int a = test::connect_to(at);
    ASSERT_TRUE(test::send_all(a, "abc"));
    EXPECT_EQ(read_stepping(f, a, 2), "3\n");
    ::close(a);
    ASSERT_TRUE(f.step_until([&] { return f.l->connection_count() == 0; }));
    EXPECT_EQ(recycled_probe::made, 1);
    EXPECT_EQ(recycled_probe::destroyed, 0) << "kept for the next connection";
    EXPECT_EQ(h->pool().retired(), 1u);
    int b = test::connect_to(at);
    ASSERT_TRUE(test::send_all(b, "de"));
    EXPECT_EQ(read_stepping(f, b, 2), "2\n") << "reopen reset the count: nothing of a's";
    EXPECT_EQ(recycled_probe::reopened, 1);
    EXPECT_EQ(recycled_probe::made, 1) << "not constructed again";
    // A new high of open connections constructs; a constructor that throws
    // refuses that connection only.
    recycled_probe::fail = true;
    int c = test::connect_to(at);
    std::string rest;
    bool eof = false;
    ASSERT_TRUE(f.step_until([&] {
      pollfd p{c, POLLIN, 0};
      if (::poll(&p, 1, 0) == 1) eof = test::read_to_eof(c, rest, 1s);
      return eof;
    }));
    EXPECT_EQ(rest, "");
    ::close(c);  // the server lingers for our FIN after its own
    ASSERT_TRUE(f.step_until([&] { return f.l->connection_count() == 1; }));
    EXPECT_EQ(f.l->stats().closed_by_reason[static_cast<int>(close_reason::resource_limit)].get(), 1u);
    EXPECT_EQ(recycled_probe::made, 1);
    recycled_probe::fail = false;
    ASSERT_TRUE(test::send_all(b, "f"));
    EXPECT_EQ(read_stepping(f, b, 2), "3\n") << "the other connection is untouched";
    ::close(b);
  }
  EXPECT_EQ(recycled_probe::destroyed, 0) << "the loop is gone, the handler is not";
  EXPECT_EQ(h->pool().live(), 0u);
  h.reset();
  EXPECT_EQ(recycled_probe::destroyed, recycled_probe::made) << "retired sessions die with the handler";
}

// ---- allocation --------------------------------------------------------------------------------

// A session that owns no heap memory: a decoder and a counter.
struct line_session {
  explicit line_session(connection&) noexcept {}
  void on_data(connection& c) noexcept {
    std::string_view line;
    while (lines.decode(c.input(), line) == codec::frame_status::frame) ++count;
  }
  codec::line_decoder lines{{.max_length = 64}};
  std::size_t count = 0;
};

// Opens n connections at once, waits until every one has its session, then
// closes them all and waits until every session is gone. Counts the
// allocations made while the loop ran (only the loop's steps count: the
// test's own sockets and bookkeeping do not).
std::size_t open_and_close(loop_fixture& f, const sessions<line_session>& h, const endpoint& at, int n) {
  std::vector<int> fds;
  fds.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    int fd = test::connect_to(at);
    EXPECT_GE(fd, 0);
    fds.push_back(fd);
  }
  const std::size_t before = allocations;
  auto step = [&] {
    counting = true;
    f.l->run_once();
    counting = false;
  };
  for (int i = 0; i < 5000 && h.pool().live() != static_cast<std::size_t>(n); ++i) {
    step();
    pollfd none{-1, 0, 0};
    ::poll(&none, 0, 1);
  }
  EXPECT_EQ(h.pool().live(), static_cast<std::size_t>(n));
  for (int fd : fds) ::close(fd);
  for (int i = 0; i < 5000 && f.l->connection_count() != 0; ++i) {
    step();
    pollfd none{-1, 0, 0};
    ::poll(&none, 0, 1);
  }
  EXPECT_EQ(f.l->connection_count(), 0u);
  EXPECT_EQ(h.pool().live(), 0u);
  return allocations - before;
}

TEST(sessions, opening_and_closing_connections_allocates_nothing_once_warm) {
  loop_fixture f;
  sessions<line_session> h;
  const endpoint at = f.listen(h);
  // Warm-up: the loop's tables and the session pool reach their high-water
  // marks (100 sessions: two chunks of 64).
  const std::size_t warmup = open_and_close(f, h, at, 100);
  EXPECT_GT(warmup, 0u) << "the counter counts (the pool's first chunk at least)";
  EXPECT_EQ(h.pool().growths(), 2u);
  // Steady state: the same number of connections again and again.
  for (int round = 0; round < 5; ++round) {
    EXPECT_EQ(open_and_close(f, h, at, 100), 0u) << "round " << round << ": operator new called on the loop";
  }
  EXPECT_EQ(h.pool().growths(), 2u) << "no new memory for sessions";
  EXPECT_EQ(h.pool().capacity(), 128u);
}

}  // namespace
}  // namespace sluice
