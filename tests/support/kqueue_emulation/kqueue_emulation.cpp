// EMULATED kqueue(2) for Linux tests (see include/sys/event.h for what it is
// and is not). Test-only: never linked into libsluice.
//
// Model (FreeBSD's knote life cycle, reduced to what userland can observe):
//   - A knote is identified by (ident, filter). It holds what was registered
//     (flags, fflags, data, udata) and its status: enabled, active (the
//     filter fired since it was last retrieved), queued (waiting to be
//     returned).
//   - Registering (EV_ADD, EV_ENABLE, or any change to an existing knote) runs
//     the filter at once, so a condition that already holds is reported.
//   - Something happening (an epoll edge on the descriptor, a timer tick, a
//     NOTE_TRIGGER) activates the knote; an enabled active knote is queued.
//   - Retrieval runs the filter again: a condition that no longer holds is
//     dropped silently. A returned knote with EV_CLEAR or EV_DISPATCH leaves the
//     queue (EV_DISPATCH also disables it); a level-triggered one stays queued
//     and is checked again next time; EV_ONESHOT deletes it.
//
// Every descriptor with at least one knote has one edge-triggered epoll
// registration (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET) whose edges only
// activate knotes; the truth always comes from re-running the filter (poll(),
// FIONREAD, SIOCOUTQ, TCP_INFO, SO_ERROR), as in the kernel. Level-triggered
// behaviour therefore needs no level-triggered epoll registration.
//
// Closing a descriptor removes its knotes on BSD. Linux cannot tell us, so a
// descriptor's identity (device and inode, from fstat) is recorded when its
// first knote is added and checked before each use: a closed descriptor, or
// its number reused by another file, drops the old knotes.
//
// Threads: any thread may call kevent() on a queue (one thread waits while
// others trigger EVFILT_USER events, as sluice's wake() does); each queue has
// a mutex that is released while blocking in epoll.

#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/event.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>

namespace {

// What an epoll registration's data says: which source, which generation
// (a registration left behind by a closed descriptor carries an old one), and
// the descriptor or timer ident.
enum source_kind : std::uint64_t { src_fd = 1, src_timer = 2, src_wake = 3 };

std::uint64_t epoll_tag(source_kind k, std::uint32_t gen, std::uint32_t id) noexcept {
  return (static_cast<std::uint64_t>(k) << 62) | (static_cast<std::uint64_t>(gen & 0x3fffffffu) << 32) | id;
}

struct knote {
  // What was registered.
  std::uintptr_t ident = 0;
  short filter = 0;
  unsigned short flags = 0;    // EV_CLEAR, EV_ONESHOT, EV_DISPATCH as given at EV_ADD
  unsigned int sfflags = 0;    // registered fflags (NOTE_LOWAT, timer units, user flags)
  std::int64_t sdata = 0;      // registered data (low-water mark, timer period)
  void* udata = nullptr;
  // Status.
  bool enabled = true;
  bool active = false;
  bool queued = false;
  std::list<knote*>::iterator queue_pos;
  // What the filter last found, returned with the event.
  unsigned short out_flags = 0;  // EV_EOF
  unsigned int out_fflags = 0;
  std::int64_t out_data = 0;
  // EVFILT_USER: triggered until retrieved with EV_CLEAR.
  bool triggered = false;
  // EVFILT_TIMER: its timerfd and the expirations not yet returned.
  int timerfd = -1;
  std::uint32_t timer_gen = 0;
  std::uint64_t expirations = 0;
};

// One descriptor that has knotes.
struct watched_fd {
  int fd = -1;
  std::uint32_t gen = 0;
  dev_t dev = 0;
  ino_t ino = 0;
  mode_t type = 0;        // S_IFSOCK, S_IFIFO, ...
  int sotype = 0;         // SOCK_STREAM or SOCK_DGRAM for sockets
  bool listening = false;
  // The socket's pending error, read once (reading clears it on Linux) and
  // kept, as FreeBSD keeps so_error, for every later EV_EOF report.
  int so_error = 0;
  knote* read = nullptr;
  knote* write = nullptr;
};

struct kqueue_state {
  std::mutex mu;
  int epfd = -1;
  int wakefd = -1;
  std::uint32_t next_gen = 1;
  std::map<std::pair<std::uintptr_t, short>, std::unique_ptr<knote>> knotes;
  std::unordered_map<int, watched_fd> fds;
  std::list<knote*> queue;  // queued knotes, in activation order

  ~kqueue_state() {
    for (auto& [key, kn] : knotes)
      if (kn->timerfd >= 0) ::close(kn->timerfd);
    if (wakefd >= 0) ::close(wakefd);
    // epfd is the descriptor the application owns (and closes).
  }
};

// Every queue this process made, by descriptor. An entry whose descriptor the
// application closed is noticed and dropped at the next kqueue() (its epoll
// instance no longer holds our wake eventfd).
std::mutex registry_mu;
std::unordered_map<int, std::shared_ptr<kqueue_state>> registry;

std::shared_ptr<kqueue_state> find_queue(int kq) {
  std::lock_guard lock(registry_mu);
  auto it = registry.find(kq);
  return it == registry.end() ? nullptr : it->second;
}

bool queue_still_open(const kqueue_state& s) {
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = epoll_tag(src_wake, 0, 0);
  return ::epoll_ctl(s.epfd, EPOLL_CTL_MOD, s.wakefd, &ev) == 0;
}

// ---- queue operations (state locked) ---------------------------------------------

void enqueue(kqueue_state& s, knote& kn) {
  if (kn.queued) return;
  kn.queue_pos = s.queue.insert(s.queue.end(), &kn);
  kn.queued = true;
}

void dequeue(kqueue_state& s, knote& kn) {
  if (!kn.queued) return;
  s.queue.erase(kn.queue_pos);
  kn.queued = false;
}

void activate(kqueue_state& s, knote& kn) {
  kn.active = true;
  if (kn.enabled) enqueue(s, kn);
}

void drop_knote(kqueue_state& s, knote& kn) {
  dequeue(s, kn);
  if (kn.timerfd >= 0) {
    ::epoll_ctl(s.epfd, EPOLL_CTL_DEL, kn.timerfd, nullptr);
    ::close(kn.timerfd);
  }
  if (kn.filter == EVFILT_READ || kn.filter == EVFILT_WRITE) {
    auto it = s.fds.find(static_cast<int>(kn.ident));
    if (it != s.fds.end()) {
      watched_fd& w = it->second;
      (kn.filter == EVFILT_READ ? w.read : w.write) = nullptr;
      if (w.read == nullptr && w.write == nullptr) {
        ::epoll_ctl(s.epfd, EPOLL_CTL_DEL, w.fd, nullptr);
        s.fds.erase(it);
      }
    }
  }
  s.knotes.erase({kn.ident, kn.filter});
}

// The descriptor was closed (and maybe its number reused): its knotes go, as
// close() removes them on BSD.
void forget_fd(kqueue_state& s, int fd) {
  auto it = s.fds.find(fd);
  if (it == s.fds.end()) return;
  knote* kns[2] = {it->second.read, it->second.write};
  for (knote* kn : kns)
    if (kn != nullptr) drop_knote(s, *kn);
}

// Is w still the file it was when its first knote was added?
bool same_file(kqueue_state& s, const watched_fd& w) {
  struct stat st {};
  if (::fstat(w.fd, &st) != 0) return false;
  if (st.st_dev != w.dev || st.st_ino != w.ino) return false;
  if (S_ISSOCK(st.st_mode) || S_ISFIFO(st.st_mode)) return true;
  // Anonymous inodes (eventfd, timerfd, ...) share one inode number: ask
  // epoll whether our registration of this descriptor is still there. (A
  // modify re-arms the edge; a spurious activation is harmless because the
  // filter decides.)
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.u64 = epoll_tag(src_fd, w.gen, static_cast<std::uint32_t>(w.fd));
  return ::epoll_ctl(s.epfd, EPOLL_CTL_MOD, w.fd, &ev) == 0;
}

// ---- filters: does the condition hold now? Fills out_* (state locked) ----------

int tcp_state(int fd) {
  tcp_info ti{};
  socklen_t len = sizeof ti;
  if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0) return -1;
  return ti.tcpi_state;
}

void take_socket_error(watched_fd& w) {
  if (w.so_error != 0 || w.type != S_IFSOCK) return;
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(w.fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0) w.so_error = err;
}

bool filter_read(watched_fd& w, knote& kn) {
  pollfd p{w.fd, POLLIN | POLLRDHUP, 0};
  if (::poll(&p, 1, 0) < 0) return false;
  if ((p.revents & POLLERR) != 0) take_socket_error(w);
  kn.out_flags = 0;
  kn.out_fflags = 0;
  if (w.listening) {
    // "data contains the size of the listen backlog": the connections
    // waiting to be accepted (Linux reports them as tcpi_unacked of a
    // listening socket).
    tcp_info ti{};
    socklen_t len = sizeof ti;
    if (::getsockopt(w.fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0) {
      kn.out_data = ti.tcpi_unacked;
    } else {
      kn.out_data = (p.revents & POLLIN) != 0 ? 1 : 0;  // not TCP: at least one is waiting
    }
    return kn.out_data > 0;
  }
  int avail = 0;
  if (::ioctl(w.fd, FIONREAD, &avail) != 0) avail = 0;
  kn.out_data = avail;
  if ((p.revents & (POLLRDHUP | POLLHUP)) != 0) {
    // The read direction is shut down: EV_EOF, with the socket error if any.
    kn.out_flags = EV_EOF;
    kn.out_fflags = static_cast<unsigned int>(w.so_error);
    return true;
  }
  if (w.so_error != 0) return true;
  if ((p.revents & POLLIN) == 0) return false;
  if ((kn.sfflags & NOTE_LOWAT) != 0 && kn.sdata > 0) return kn.out_data >= kn.sdata;
  return true;
}

bool filter_write(watched_fd& w, knote& kn) {
  pollfd p{w.fd, POLLOUT, 0};
  if (::poll(&p, 1, 0) < 0) return false;
  if ((p.revents & POLLERR) != 0) take_socket_error(w);
  kn.out_flags = 0;
  kn.out_fflags = 0;
  // data: the space left in the send buffer.
  int queued = 0;
  std::int64_t capacity = 0;
  if (w.type == S_IFSOCK) {
    int sndbuf = 0;
    socklen_t len = sizeof sndbuf;
    if (::getsockopt(w.fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, &len) == 0) capacity = sndbuf;
    if (::ioctl(w.fd, SIOCOUTQ, &queued) != 0) queued = 0;
  } else if (w.type == S_IFIFO) {
    capacity = ::fcntl(w.fd, F_GETPIPE_SZ);
    if (::ioctl(w.fd, FIONREAD, &queued) != 0) queued = 0;
  }
  kn.out_data = capacity > queued ? capacity - queued : 0;
  bool cant_send = (p.revents & (POLLHUP | POLLERR)) != 0;
  if (!cant_send && w.sotype == SOCK_STREAM) {
    // Our own shutdown(SHUT_WR) is not a hang-up to poll(); TCP's state says it.
    switch (tcp_state(w.fd)) {
      case TCP_FIN_WAIT1:
      case TCP_FIN_WAIT2:
      case TCP_CLOSING:
      case TCP_LAST_ACK:
      case TCP_TIME_WAIT:
        cant_send = true;
        break;
      default:
        break;
    }
  }
  if (cant_send) {
    kn.out_flags = EV_EOF;
    kn.out_fflags = static_cast<unsigned int>(w.so_error);
    return true;
  }
  if (w.so_error != 0) return true;
  if ((p.revents & POLLOUT) == 0) return false;
  if ((kn.sfflags & NOTE_LOWAT) != 0 && kn.sdata > 0) return kn.out_data >= kn.sdata;
  return true;
}

bool filter_timer(knote& kn) {
  std::uint64_t n = 0;
  while (::read(kn.timerfd, &n, sizeof n) == static_cast<ssize_t>(sizeof n)) kn.expirations += n;
  kn.out_data = static_cast<std::int64_t>(kn.expirations);
  kn.out_flags = 0;
  kn.out_fflags = 0;
  return kn.expirations > 0;
}

// Runs kn's filter. Returns false when the condition does not hold, or when
// its descriptor has gone (then *gone is set and the knote was dropped).
bool run_filter(kqueue_state& s, knote& kn, bool* gone) {
  *gone = false;
  switch (kn.filter) {
    case EVFILT_READ:
    case EVFILT_WRITE: {
      auto it = s.fds.find(static_cast<int>(kn.ident));
      if (it == s.fds.end()) return false;
      if (!same_file(s, it->second)) {
        forget_fd(s, static_cast<int>(kn.ident));
        *gone = true;
        return false;
      }
      return kn.filter == EVFILT_READ ? filter_read(it->second, kn) : filter_write(it->second, kn);
    }
    case EVFILT_TIMER:
      return filter_timer(kn);
    case EVFILT_USER:
      kn.out_data = kn.sdata;
      kn.out_fflags = kn.sfflags;
      kn.out_flags = 0;
      return kn.triggered;
    default:
      return false;
  }
}

// ---- registration ------------------------------------------------------------

int arm_timer(knote& kn) {
  std::int64_t v = kn.sdata;
  if (v < 0) return EINVAL;
  std::int64_t ns;
  if ((kn.sfflags & NOTE_SECONDS) != 0) {
    ns = v * 1'000'000'000;
  } else if ((kn.sfflags & NOTE_USECONDS) != 0) {
    ns = v * 1'000;
  } else if ((kn.sfflags & NOTE_NSECONDS) != 0) {
    ns = v;
  } else {
    ns = v * 1'000'000;  // NOTE_MSECONDS, the default
  }
  itimerspec its{};
  its.it_value.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
  its.it_value.tv_nsec = static_cast<long>(ns % 1'000'000'000);
  const bool absolute = (kn.sfflags & NOTE_ABSTIME) != 0;
  // Periodic unless EV_ONESHOT or NOTE_ABSTIME.
  if (!absolute && (kn.flags & EV_ONESHOT) == 0) its.it_interval = its.it_value;
  // A zero it_value would disarm a timerfd; BSD fires a zero timer at once.
  if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0) its.it_value.tv_nsec = 1;
  kn.expirations = 0;
  std::uint64_t drain;
  while (::read(kn.timerfd, &drain, sizeof drain) > 0) {
  }
  return ::timerfd_settime(kn.timerfd, absolute ? TFD_TIMER_ABSTIME : 0, &its, nullptr) == 0 ? 0 : errno;
}

void user_touch(knote& kn, const struct kevent& kev) {
  if ((kev.fflags & NOTE_TRIGGER) != 0) kn.triggered = true;
  const unsigned int ff = kev.fflags & NOTE_FFLAGSMASK;
  switch (kev.fflags & NOTE_FFCTRLMASK) {
    case NOTE_FFAND:
      kn.sfflags &= ff;
      break;
    case NOTE_FFOR:
      kn.sfflags |= ff;
      break;
    case NOTE_FFCOPY:
      kn.sfflags = ff;
      break;
    default:
      break;
  }
  kn.sdata = kev.data;
}

// A new knote. Returns 0 or an errno.
int add_knote(kqueue_state& s, const struct kevent& kev, knote*& out) {
  auto kn = std::make_unique<knote>();
  kn->ident = kev.ident;
  kn->filter = kev.filter;
  kn->flags = kev.flags & (EV_ONESHOT | EV_CLEAR | EV_DISPATCH);
  kn->udata = kev.udata;
  kn->sdata = kev.data;
  switch (kev.filter) {
    case EVFILT_READ:
    case EVFILT_WRITE: {
      const int fd = static_cast<int>(kev.ident);
      struct stat st {};
      if (kev.ident > static_cast<std::uintptr_t>(INT_MAX) || ::fstat(fd, &st) != 0) return EBADF;
      kn->sfflags = kev.fflags;
      auto it = s.fds.find(fd);
      if (it == s.fds.end()) {
        watched_fd w;
        w.fd = fd;
        w.gen = s.next_gen++;
        w.dev = st.st_dev;
        w.ino = st.st_ino;
        w.type = st.st_mode & S_IFMT;
        if (w.type == S_IFSOCK) {
          socklen_t len = sizeof w.sotype;
          ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &w.sotype, &len);
          int acc = 0;
          len = sizeof acc;
          w.listening = ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) == 0 && acc != 0;
        }
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
        ev.data.u64 = epoll_tag(src_fd, w.gen, static_cast<std::uint32_t>(fd));
        if (::epoll_ctl(s.epfd, EPOLL_CTL_ADD, fd, &ev) != 0) return errno;
        it = s.fds.emplace(fd, w).first;
      } else if (!it->second.listening && it->second.type == S_IFSOCK) {
        // listen() may have been called since the first knote was added.
        int acc = 0;
        socklen_t len = sizeof acc;
        it->second.listening = ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) == 0 && acc != 0;
      }
      (kev.filter == EVFILT_READ ? it->second.read : it->second.write) = kn.get();
      break;
    }
    case EVFILT_TIMER: {
      kn->flags |= EV_CLEAR;  // timers report and reset their count
      kn->sfflags = kev.fflags;
      kn->timerfd = ::timerfd_create((kev.fflags & NOTE_ABSTIME) != 0 ? CLOCK_REALTIME : CLOCK_MONOTONIC,
                                     TFD_NONBLOCK | TFD_CLOEXEC);
      if (kn->timerfd < 0) return errno;
      if (int err = arm_timer(*kn); err != 0) {
        ::close(kn->timerfd);
        return err;
      }
      kn->timer_gen = s.next_gen++;
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = epoll_tag(src_timer, kn->timer_gen, static_cast<std::uint32_t>(kev.ident));
      if (::epoll_ctl(s.epfd, EPOLL_CTL_ADD, kn->timerfd, &ev) != 0) {
        int err = errno;
        ::close(kn->timerfd);
        return err;
      }
      break;
    }
    case EVFILT_USER:
      kn->sfflags = kev.fflags & NOTE_FFLAGSMASK;
      kn->triggered = (kev.fflags & NOTE_TRIGGER) != 0;
      break;
    default:
      return EINVAL;
  }
  out = kn.get();
  s.knotes.emplace(std::make_pair(kev.ident, kev.filter), std::move(kn));
  return 0;
}

// Applies one change (FreeBSD's kqueue_register). Returns 0 or an errno.
int apply_change(kqueue_state& s, const struct kevent& kev) {
  switch (kev.filter) {
    case EVFILT_READ:
    case EVFILT_WRITE:
    case EVFILT_TIMER:
    case EVFILT_USER:
      break;
    default:
      return EINVAL;  // not emulated (or not a filter at all)
  }
  const bool is_fd = kev.filter == EVFILT_READ || kev.filter == EVFILT_WRITE;
  if (is_fd) {
    const int fd = static_cast<int>(kev.ident);
    if (kev.ident > static_cast<std::uintptr_t>(INT_MAX) || ::fcntl(fd, F_GETFD) < 0) return EBADF;
    // The number may name another file than the one the knotes were made
    // for: the old knotes died with the old file.
    auto it = s.fds.find(fd);
    if (it != s.fds.end() && !same_file(s, it->second)) forget_fd(s, fd);
  }
  auto found = s.knotes.find({kev.ident, kev.filter});
  knote* kn = found == s.knotes.end() ? nullptr : found->second.get();
  if (kn == nullptr) {
    if ((kev.flags & EV_ADD) == 0) return ENOENT;
    if (int err = add_knote(s, kev, kn); err != 0) return err;
  } else {
    if ((kev.flags & EV_DELETE) != 0) {
      drop_knote(s, *kn);
      return 0;
    }
    // Changing an existing knote: the new udata and filter arguments apply,
    // what already fired stays (FreeBSD: "will not reset any filter which has
    // already been triggered").
    kn->udata = kev.udata;
    if (kev.filter == EVFILT_USER) {
      user_touch(*kn, kev);
      if ((kev.flags & EV_CLEAR) != 0) kn->triggered = false;
    } else if (kev.filter == EVFILT_TIMER) {
      if ((kev.flags & EV_ADD) != 0) {
        // "the existing timer will be effectively canceled ... and
        // re-started using the new parameters".
        kn->sfflags = kev.fflags;
        kn->sdata = kev.data;
        kn->active = false;
        dequeue(s, *kn);
        if (int err = arm_timer(*kn); err != 0) return err;
      }
    } else {
      kn->sfflags = kev.fflags;
      kn->sdata = kev.data;
    }
  }
  // Run the filter now: a condition that already holds is reported.
  bool gone = false;
  if (run_filter(s, *kn, &gone)) kn->active = true;
  if (gone) return EBADF;
  if ((kev.flags & EV_DISABLE) != 0) {
    kn->enabled = false;
    dequeue(s, *kn);
  }
  if ((kev.flags & EV_ENABLE) != 0) kn->enabled = true;
  if (kn->active && kn->enabled) enqueue(s, *kn);
  return 0;
}

// Activates the knotes an epoll event names (state locked).
void take_epoll_event(kqueue_state& s, const epoll_event& ev) {
  const auto kind = static_cast<source_kind>(ev.data.u64 >> 62);
  const auto gen = static_cast<std::uint32_t>((ev.data.u64 >> 32) & 0x3fffffffu);
  const auto id = static_cast<std::uint32_t>(ev.data.u64);
  switch (kind) {
    case src_fd: {
      auto it = s.fds.find(static_cast<int>(id));
      if (it == s.fds.end() || (it->second.gen & 0x3fffffffu) != gen) return;  // a closed file's leftover
      watched_fd& w = it->second;
      if (w.read != nullptr && (ev.events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) activate(s, *w.read);
      if (w.write != nullptr && (ev.events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) != 0) activate(s, *w.write);
      return;
    }
    case src_timer: {
      auto it = s.knotes.find({static_cast<std::uintptr_t>(id), static_cast<short>(EVFILT_TIMER)});
      if (it != s.knotes.end() && (it->second->timer_gen & 0x3fffffffu) == gen) activate(s, *it->second);
      return;
    }
    case src_wake: {
      std::uint64_t v;
      while (::read(s.wakefd, &v, sizeof v) > 0) {
      }
      return;  // EVFILT_USER knotes were activated by the trigger itself
    }
    default:
      return;
  }
}

// Returns queued knotes that still hold (FreeBSD's kqueue_scan, one pass).
int collect(kqueue_state& s, struct kevent* out, int max) {
  int n = 0;
  // One pass over what is queued now; level-triggered knotes go back to the
  // tail and are not seen twice in the pass.
  std::size_t pending = s.queue.size();
  while (n < max && pending-- > 0 && !s.queue.empty()) {
    knote& kn = *s.queue.front();
    dequeue(s, kn);
    if (!kn.enabled) continue;
    bool gone = false;
    const bool holds = run_filter(s, kn, &gone);
    if (gone) continue;  // its descriptor was closed: the knote is gone
    const bool oneshot = (kn.flags & EV_ONESHOT) != 0;
    if (!holds && !oneshot) {
      kn.active = false;
      continue;
    }
    struct kevent& e = out[n++];
    e.ident = kn.ident;
    e.filter = kn.filter;
    e.flags = static_cast<unsigned short>(kn.flags | kn.out_flags);
    e.fflags = kn.out_fflags;
    e.data = kn.out_data;
    e.udata = kn.udata;
    e.ext[0] = e.ext[1] = e.ext[2] = e.ext[3] = 0;
    if (oneshot) {
      drop_knote(s, kn);
      continue;
    }
    if ((kn.flags & (EV_CLEAR | EV_DISPATCH)) != 0) {
      if ((kn.flags & EV_CLEAR) != 0) {
        kn.expirations = 0;
        kn.triggered = false;
      }
      if ((kn.flags & EV_DISPATCH) != 0) kn.enabled = false;
      kn.active = false;
    } else {
      enqueue(s, kn);  // level-triggered: checked again next time
    }
  }
  return n;
}

std::int64_t monotonic_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace

extern "C" int kqueue(void) {
  int epfd = ::epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) return -1;
  auto s = std::make_shared<kqueue_state>();
  s->epfd = epfd;
  s->wakefd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = epoll_tag(src_wake, 0, 0);
  if (s->wakefd < 0 || ::epoll_ctl(epfd, EPOLL_CTL_ADD, s->wakefd, &ev) != 0) {
    int err = errno;
    ::close(epfd);
    errno = err;
    return -1;
  }
  std::lock_guard lock(registry_mu);
  // Queues the application closed: their descriptors are gone (or reused).
  for (auto it = registry.begin(); it != registry.end();) {
    if (it->first == epfd || !queue_still_open(*it->second)) {
      it = registry.erase(it);
    } else {
      ++it;
    }
  }
  registry[epfd] = std::move(s);
  return epfd;
}

extern "C" int kevent(int kq, const struct kevent* changelist, int nchanges, struct kevent* eventlist, int nevents,
                      const struct timespec* timeout) {
  std::shared_ptr<kqueue_state> sp = find_queue(kq);
  if (!sp) {
    errno = EBADF;
    return -1;
  }
  if (nchanges < 0 || nevents < 0) {
    errno = EINVAL;
    return -1;
  }
  kqueue_state& s = *sp;
  std::unique_lock lock(s.mu);

  // Changes first, in order. A failing change (or any change with
  // EV_RECEIPT) becomes an EV_ERROR entry while the event list has room;
  // without room the call fails with that error and later changes are not
  // applied. The same array may serve as both lists: entry i is read before
  // any output can reach it.
  int nerrors = 0;
  bool user_triggered = false;
  for (int i = 0; i < nchanges; ++i) {
    struct kevent kev = changelist[i];
    if (kev.filter == 0) continue;
    kev.flags &= static_cast<unsigned short>(~EV_SYSFLAGS);
    int err = apply_change(s, kev);
    if (err == 0 && kev.filter == EVFILT_USER && (kev.fflags & NOTE_TRIGGER) != 0) user_triggered = true;
    if (err != 0 || (kev.flags & EV_RECEIPT) != 0) {
      if (nevents == 0) {
        if (user_triggered) (void)::eventfd_write(s.wakefd, 1);
        if (err == 0) return 0;
        errno = err;
        return -1;
      }
      kev.flags = EV_ERROR;
      kev.data = err;
      eventlist[nerrors++] = kev;
      --nevents;
    }
  }
  // A trigger from another thread must wake a waiter blocked in epoll.
  if (user_triggered) (void)::eventfd_write(s.wakefd, 1);
  if (nerrors != 0) return nerrors;
  if (nevents == 0) return 0;

  std::int64_t deadline = -1;  // -1: wait without limit
  if (timeout != nullptr) {
    if (timeout->tv_sec < 0 || timeout->tv_nsec < 0 || timeout->tv_nsec >= 1'000'000'000) {
      errno = EINVAL;
      return -1;
    }
    deadline = monotonic_ns() + static_cast<std::int64_t>(timeout->tv_sec) * 1'000'000'000 + timeout->tv_nsec;
  }
  epoll_event evs[256];
  for (;;) {
    // Gather what happened; block only while nothing is queued.
    std::int64_t wait_ns = 0;
    if (s.queue.empty()) wait_ns = deadline < 0 ? -1 : std::max<std::int64_t>(0, deadline - monotonic_ns());
    lock.unlock();
    int n;
    if (wait_ns < 0) {
      n = ::epoll_wait(s.epfd, evs, 256, -1);
    } else {
      timespec ts{static_cast<time_t>(wait_ns / 1'000'000'000), static_cast<long>(wait_ns % 1'000'000'000)};
      n = ::epoll_pwait2(s.epfd, evs, 256, &ts, nullptr);
      if (n < 0 && errno == ENOSYS) {
        n = ::epoll_wait(s.epfd, evs, 256, static_cast<int>(std::min<std::int64_t>((wait_ns + 999'999) / 1'000'000, INT_MAX)));
      }
    }
    int wait_errno = errno;
    lock.lock();
    if (n < 0) {
      if (wait_errno == EINTR) {
        errno = EINTR;  // "A signal was delivered before the timeout expired"
        return -1;
      }
      n = 0;
    }
    for (int i = 0; i < n; ++i) take_epoll_event(s, evs[i]);
    int got = collect(s, eventlist, nevents);
    if (got > 0) return got;
    if (deadline >= 0 && monotonic_ns() >= deadline) return 0;
  }
}
