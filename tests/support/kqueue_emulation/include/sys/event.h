/*
 * EMULATED <sys/event.h>: a test-only stand-in for FreeBSD's kqueue(2) API on
 * Linux, which has no kqueue. It exists so that sluice's kqueue transport can
 * be compiled and run by the conformance suite on Linux CI. It is never
 * installed and never linked into libsluice; meson uses it only where the
 * real header is absent, and only for test targets.
 *
 * Semantics follow the FreeBSD kqueue(2) man page (package freebsd-manpages:
 * `man 2freebsd kqueue`) and FreeBSD's knote life cycle (register, activate,
 * queue, re-run the filter at retrieval). Underneath are epoll (one
 * edge-triggered registration per descriptor), timerfd (EVFILT_TIMER) and
 * eventfd (waking a waiter for EVFILT_USER). Results obtained on it do NOT
 * prove BSD behaviour: it shows that the transport is correct against the
 * documented semantics, as far as this emulation models them.
 *
 * Supported: EVFILT_READ, EVFILT_WRITE (sockets, pipes), EVFILT_TIMER,
 * EVFILT_USER; EV_ADD, EV_DELETE, EV_ENABLE, EV_DISABLE, EV_ONESHOT,
 * EV_CLEAR, EV_DISPATCH, EV_RECEIPT, EV_EOF, EV_ERROR; NOTE_LOWAT; timer
 * units and NOTE_ABSTIME; NOTE_TRIGGER and the NOTE_FF* operations.
 * Known differences from FreeBSD (see kqueue_emulation.cpp for why):
 *   - reading a socket's error to report it in EV_EOF's fflags clears it on
 *     Linux, so a later read() returns 0 where FreeBSD would return the error;
 *   - EVFILT_WRITE on a TCP socket that was never connected reports EV_EOF
 *     (Linux reports such a socket as hung up) instead of nothing;
 *   - EVFILT_READ's data on a UDP socket is the size of the next datagram
 *     (Linux FIONREAD), not the bytes of all queued datagrams.
 */
#ifndef SLUICE_TESTS_KQUEUE_EMULATION_SYS_EVENT_H
#define SLUICE_TESTS_KQUEUE_EMULATION_SYS_EVENT_H

#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/* Code that must know (a test label, a README line) can test this. */
#define SLUICE_KQUEUE_EMULATED 1

#define EVFILT_READ (-1)
#define EVFILT_WRITE (-2)
#define EVFILT_AIO (-3)
#define EVFILT_VNODE (-4)
#define EVFILT_PROC (-5)
#define EVFILT_SIGNAL (-6)
#define EVFILT_TIMER (-7)
#define EVFILT_PROCDESC (-8)
#define EVFILT_FS (-9)
#define EVFILT_LIO (-10)
#define EVFILT_USER (-11)
#define EVFILT_SENDFILE (-12)
#define EVFILT_EMPTY (-13)

/* Actions. */
#define EV_ADD 0x0001
#define EV_DELETE 0x0002
#define EV_ENABLE 0x0004
#define EV_DISABLE 0x0008
/* Flags. */
#define EV_ONESHOT 0x0010
#define EV_CLEAR 0x0020
#define EV_RECEIPT 0x0040
#define EV_DISPATCH 0x0080
#define EV_SYSFLAGS 0xF000
/* Returned values. */
#define EV_EOF 0x8000
#define EV_ERROR 0x4000

/* EVFILT_READ / EVFILT_WRITE. */
#define NOTE_LOWAT 0x0001

/* EVFILT_USER. */
#define NOTE_FFNOP 0x00000000
#define NOTE_FFAND 0x40000000
#define NOTE_FFOR 0x80000000
#define NOTE_FFCOPY 0xc0000000
#define NOTE_FFCTRLMASK 0xc0000000
#define NOTE_FFLAGSMASK 0x00ffffff
#define NOTE_TRIGGER 0x01000000

/* EVFILT_TIMER: units of data (milliseconds when none is given). */
#define NOTE_SECONDS 0x00000001
#define NOTE_MSECONDS 0x00000002
#define NOTE_USECONDS 0x00000004
#define NOTE_NSECONDS 0x00000008
#define NOTE_ABSTIME 0x00000010

struct kevent {
  uintptr_t ident;     /* identifier for this event */
  short filter;        /* filter for event */
  unsigned short flags; /* action flags for kqueue */
  unsigned int fflags; /* filter flag value */
  int64_t data;        /* filter data value */
  void* udata;         /* opaque user data identifier */
  uint64_t ext[4];     /* extensions */
};

#define EV_SET(kevp, a, b, c, d, e, f)                 \
  do {                                                 \
    struct kevent* ev_set_p_ = (kevp);                 \
    ev_set_p_->ident = (uintptr_t)(a);                 \
    ev_set_p_->filter = (short)(b);                    \
    ev_set_p_->flags = (unsigned short)(c);            \
    ev_set_p_->fflags = (unsigned int)(d);             \
    ev_set_p_->data = (int64_t)(e);                    \
    ev_set_p_->udata = (void*)(f);                     \
    ev_set_p_->ext[0] = ev_set_p_->ext[1] = 0;         \
    ev_set_p_->ext[2] = ev_set_p_->ext[3] = 0;         \
  } while (0)

#ifdef __cplusplus
extern "C" {
#endif

int kqueue(void);
int kevent(int kq, const struct kevent* changelist, int nchanges, struct kevent* eventlist, int nevents,
           const struct timespec* timeout);

#ifdef __cplusplus
}
#endif

#endif /* SLUICE_TESTS_KQUEUE_EMULATION_SYS_EVENT_H */
