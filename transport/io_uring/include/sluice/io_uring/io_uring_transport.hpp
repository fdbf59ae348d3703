#pragma once
// The Linux completion transport: kernel sockets driven through one io_uring
// per loop (liburing), issue 18.
//
// Operations in flight, each a submission whose completion the poll reaps:
//   accept   multishot, one per listener (re-armed when the kernel ends it)
//   receive  multishot recv per connection, buffers picked by the kernel
//            from the loop's provided buffer ring, whose buffers are pool
//            segments: a completion's segment joins the input chain without
//            a copy and the ring is refilled from the pool. Out of buffers
//            (ENOBUFS) the receive ends; the ring grows (up to its capacity)
//            and the receive is re-armed, or the connection waits for the
//            pool (read_starved): never a spin, no byte lost (it stays in the
//            socket). Paused input and the input limit cancel the receive;
//            resuming re-arms it.
//   send     one send/sendmsg of the output chain's pieces per connection at
//            a time; its completion reports wrote(), then flush_ready(). At
//            or above the zero-copy threshold (--zerocopy-threshold; 0: off)
//            it is a send_zc/sendmsg_zc: the kernel sends from the segments
//            themselves, which the transport holds a reference on until the
//            operation's notification completion says the kernel is done with
//            them (wrote() is reported then too).
//   connect  IORING_OP_CONNECT on a fresh non-blocking socket; the loop's
//            connect timeout closes the connection, whose release cancels it.
//   UDP      multishot recvmsg per socket into a second provided buffer ring
//            (udp_ring_buffers buffers of a whole datagram each, shared by
//            the loop's UDP sockets; a buffer goes back to the ring as soon
//            as the handler returns); sends are sendmmsg calls, as epoll.
//   wake-up  a read of the wake eventfd, kept armed.
// The sends a flush phase queued go to the kernel at its end in one
// io_uring_enter, whose inline completions are reaped at once (so the next
// poll does not wake only for them); everything else queued in an iteration
// goes with the poll's one io_uring_enter, which also waits (with the
// timer's timeout).
//
// Lifetimes: a connection's I/O state (conn_io) is the transport's, not the
// connection's, so a completion that arrives after the connection is freed
// finds it. Releasing a socket cancels its operations synchronously
// (IORING_REGISTER_SYNC_CANCEL: returns once the kernel is done with their
// buffers) before the descriptor is closed; the state is freed when its last
// completion is reaped.
//
// Owner core only, except wake() (any thread). The ring is made on the loop's
// thread (IORING_SETUP_SINGLE_ISSUER where the kernel takes it).

#include <liburing.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <sys/socket.h>
#include <sys/uio.h>

#include "sluice/transport/loop.hpp"

namespace sluice::io_uring {

// How the ring was set up (the best the kernel accepted).
enum class ring_mode : std::uint8_t {
  single_issuer_defer_taskrun,  // IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN
  coop_taskrun,                 // IORING_SETUP_COOP_TASKRUN
  plain,                        // no setup flags
};
// "SINGLE_ISSUER|DEFER_TASKRUN", "COOP_TASKRUN" or "none".
[[nodiscard]] std::string_view to_string(ring_mode m) noexcept;

// Sets up a ring of `entries` with the best mode the kernel accepts; the
// mode in *mode. 0 or a negative errno (the last refusal).
int setup_ring(::io_uring* ring, unsigned entries, ring_mode* mode) noexcept;

// The io_uring transport of one loop (see the file comment); loop<io_uring_transport>
// owns it and calls it directly. Its public members are the transport_backend
// contract (loop.hpp).
class io_uring_transport {
 public:
  // Its registry name.
  static constexpr std::string_view name = "io_uring";
  // Submission queue entries of a loop's ring (the completion queue is twice that).
  static constexpr unsigned ring_entries = 4096;
  // Pieces of the output chain one send takes at most.
  static constexpr int send_iov = 64;
  // Payload room of a UDP receive buffer: the largest UDP payload.
  static constexpr std::size_t udp_slot_bytes = 65536;
  // UDP receive buffers per loop (a power of two), made at the first bind.
  static constexpr unsigned udp_ring_buffers = 16;
  // Most buffers (pool segments) the provided buffer ring of a loop holds;
  // also at most a quarter of the pool's segments. The ring starts with
  // buf_ring_initial buffers and doubles each time a receive runs out.
  static constexpr unsigned buf_ring_max = 1024;
  static constexpr unsigned buf_ring_initial = 2;

  // Creates the loop's ring and wake eventfd; throws std::runtime_error if
  // the kernel refuses. Sends of zerocopy_threshold bytes or more go as
  // zero-copy sends (0: never).
  explicit io_uring_transport(transport_loop& loop, std::size_t zerocopy_threshold = 0);
  io_uring_transport(const io_uring_transport&) = delete;
  io_uring_transport& operator=(const io_uring_transport&) = delete;
  ~io_uring_transport();

  // ---- data path (see transport_backend in loop.hpp) ----
  // Submits what this iteration queued and waits up to timeout for
  // completions (one io_uring_enter), then dispatches them; returns their number.
  std::size_t poll(duration timeout) noexcept;
  // Arms a receive on c if none is in flight and the loop may read.
  void read(connection& c) noexcept;
  // Queues one send of c's output (unless one is in flight).
  void flush(connection& c) noexcept;
  // End of the loop's flush phase: submits the sends it queued (one
  // io_uring_enter for all connections), so output reaches the kernel in the
  // iteration that flushed it.
  void flushed() noexcept;
  // Sends FIN (shutdown(SHUT_WR)).
  void shutdown_write(connection& c) noexcept;
  // Cancels c's operations and closes its socket: a reset if c was aborted.
  void release(connection& c) noexcept;
  // Sends s's queued datagrams (sendmmsg).
  void flush_udp(udp_socket& s) noexcept;
  // A connection freed its descriptor: listeners paused out of descriptors
  // accept again.
  void fd_released() noexcept;
  // Interrupts a blocking wait (writes the eventfd). Any thread.
  void wake() noexcept;

  // ---- control plane ----
  // Opens a listening socket on `at` and arms a multishot accept.
  result<listener*> listen(const endpoint& at, handler& h, const listen_options& opts);
  // Makes a socket and submits its IORING_OP_CONNECT to `to`.
  result<connection_handle> connect(const endpoint& to, handler& h, void* context);
  // Binds a UDP socket on `at` and arms a receive.
  result<udp_socket*> udp_bind(const endpoint& at, datagram_handler& h);
  // Stops accepting on l (cancels its accept) and closes its socket.
  void close_listener(listener& l) noexcept;
  // Cancels s's receive and closes its socket.
  void close_udp(udp_socket& s) noexcept;
  // Takes over an accepted socket: opens a connection for it; closes fd if
  // the loop is full.
  void adopt(int fd, const endpoint& peer, handler& h) noexcept;

  // How this loop's ring was set up (for --print-plan and tests).
  [[nodiscard]] ring_mode mode() const noexcept { return mode_; }
  // Operations submitted and not yet completed.
  [[nodiscard]] std::size_t in_flight() const noexcept { return inflight_; }
  // Buffers (pool segments) the buffer ring holds now (given to the kernel
  // and not yet reaped from a completion).
  [[nodiscard]] unsigned ring_buffers() const noexcept { return br_count_; }
  // How many buffers the ring is kept filled to (grows on ENOBUFS).
  [[nodiscard]] unsigned ring_target() const noexcept { return br_target_; }
  // Receives that ran out of ring buffers (ENOBUFS) so far.
  [[nodiscard]] std::uint64_t ring_exhausted() const noexcept { return br_exhausted_; }
  // Multishot receives in flight.
  [[nodiscard]] unsigned receives_armed() const noexcept { return recv_armed_; }
  // UDP receives armed again after the kernel ended them (ENOBUFS on a
  // burst, an error).
  [[nodiscard]] std::uint64_t udp_rearmed() const noexcept { return udp_rearmed_; }
  // Sends of at least this many bytes go zero-copy (0: never).
  [[nodiscard]] std::size_t zerocopy_threshold() const noexcept { return zc_threshold_; }
  // Zero-copy sends submitted so far, and those whose notification came.
  [[nodiscard]] std::uint64_t zerocopy_sends() const noexcept { return zc_sent_; }
  [[nodiscard]] std::uint64_t zerocopy_notified() const noexcept { return zc_notified_; }

 private:
  // What a completion's user_data names (low 3 bits; the object is 8-aligned).
  enum op : std::uint64_t {
    op_none = 0,
    op_recv = 1,
    op_send = 2,
    op_connect = 3,
    op_accept = 4,
    op_udp_recv = 5,
    op_wake = 6,
    op_cancel = 7,  // an asynchronous cancel (its own completion means nothing)
  };

  // A connection's I/O state, owned by the transport (see the file comment).
  struct alignas(8) conn_io {
    connection* conn = nullptr;  // nullptr once released
    int fd = -1;
    int inflight = 0;        // operations whose completion is not yet reaped
    bool recv_busy = false;      // a multishot receive is in flight
    bool recv_stopping = false;  // ... and a cancel of it was queued (input paused or full)
    bool send_busy = false;      // a send is in flight
    bool send_zc = false;        // ... a zero-copy one, whose notification is still to come
    int send_res = 0;            // a zero-copy send's result, reported at its notification
    int held = 0;                // segments referenced for the zero-copy send in flight
    segment* hold[send_iov]{};
    endpoint peer;  // a connect's address (the kernel reads it at submission)
    msghdr msg{};
    iovec iov[send_iov];
  };
  struct alignas(8) listen_io {
    listener* l = nullptr;
    bool armed = false;  // the multishot accept is in flight
  };
  struct alignas(8) udp_io {
    udp_socket* s = nullptr;
    bool armed = false;  // the multishot recvmsg is in flight
    msghdr msg{};        // what the kernel lays each buffer out by (name length only)
  };

  static std::uint64_t tag(const void* p, op o) noexcept { return reinterpret_cast<std::uint64_t>(p) | o; }
  ::io_uring_sqe* sqe() noexcept;
  void dispatch(const ::io_uring_cqe& cqe) noexcept;
  // Dispatches every completion in the queue (bounded rounds), then refills
  // the buffer ring; returns how many.
  std::size_t reap() noexcept;
  void on_recv(conn_io& io, int res, std::uint32_t flags) noexcept;
  void on_send(conn_io& io, int res) noexcept;
  // A zero-copy send's completion: its result (more to come) or its notification.
  void on_send_zc(conn_io& io, int res, std::uint32_t flags) noexcept;
  // Drops the references a zero-copy send held.
  static void unhold(conn_io& io) noexcept;
  void on_connect(conn_io& io, int res) noexcept;
  void on_accept(listen_io& li, int res, bool more) noexcept;
  void on_udp_recv(udp_io& u, int res, std::uint32_t flags) noexcept;
  // Makes and registers the UDP buffer ring (group 1) the first time.
  bool ensure_udp_ring() noexcept;
  // Hands UDP buffer bid back to the kernel.
  void give_back_udp(std::uint16_t bid) noexcept;
  void arm_recv(connection& c, conn_io& io) noexcept;
  void arm_accept(listen_io& li) noexcept;
  void arm_udp(udp_io& u) noexcept;
  void arm_wake() noexcept;
  // Asks the kernel to end io's receive (input paused or full).
  void stop_recv(conn_io& io) noexcept;
  // Registers the buffer ring if it is not, and tops it up to br_target_
  // from the pool; false when it holds no buffer (the pool is exhausted).
  bool ensure_buffers() noexcept;
  void refill() noexcept;
  // No receive in flight: takes every buffer back from the kernel
  // (unregisters the ring) and returns the segments to the pool, so an idle
  // or stopped loop holds none.
  void drain_buffers() noexcept;
  // The segment behind a completion's buffer id; the id is free again.
  segment* take_buffer(std::uint32_t cqe_flags) noexcept;
  // Cancels every operation on fd; true once the kernel is done with them.
  bool cancel_fd(int fd) noexcept;
  void completed(conn_io& io) noexcept;  // one of io's operations is reaped
  listen_io* find(const listener& l) noexcept;
  udp_io* find(const udp_socket& s) noexcept;
  conn_io* attach(connection& c) noexcept;
  static void retry_accept(timer& t) noexcept;

  transport_loop& loop_;
  ::io_uring ring_{};
  ring_mode mode_ = ring_mode::plain;
  int wakefd_ = -1;
  std::uint64_t wake_buf_ = 0;
  std::size_t inflight_ = 0;
  bool sends_queued_ = false;  // flush() queued a send that flushed() submits
  std::size_t zc_threshold_ = 0;
  std::uint64_t zc_sent_ = 0;
  std::uint64_t zc_notified_ = 0;
  std::uint64_t zc_done_ = 0;  // zero-copy sends over (notified, or failed without a notification)
  // The provided buffer ring (group 0): shared memory with the kernel, the
  // segment behind each buffer id, the free ids.
  ::io_uring_buf_ring* br_ = nullptr;
  std::size_t br_bytes_ = 0;
  unsigned br_entries_ = 0;       // capacity (a power of two)
  unsigned br_count_ = 0;         // buffers given to the kernel and not reaped back
  unsigned br_target_ = buf_ring_initial;
  bool br_registered_ = false;
  std::uint64_t br_exhausted_ = 0;
  unsigned recv_armed_ = 0;
  std::vector<segment*> br_segs_;
  std::vector<std::uint16_t> br_free_;
  // The UDP buffer ring (group 1) and its buffers, one mapping.
  ::io_uring_buf_ring* ubr_ = nullptr;
  std::byte* ubufs_ = nullptr;
  std::size_t ubuf_size_ = 0;
  std::size_t ubr_bytes_ = 0;
  bool ubr_registered_ = false;
  std::uint64_t udp_rearmed_ = 0;
  std::vector<std::unique_ptr<listen_io>> listeners_;
  std::vector<std::unique_ptr<udp_io>> udp_;
};

}  // namespace sluice::io_uring
