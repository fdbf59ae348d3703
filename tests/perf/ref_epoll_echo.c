/* The reference: a minimal hand-written edge-triggered epoll echo server.
 * Per message it does exactly one read and one write; epoll_wait is shared by
 * every event it returns. Used only by tests/perf to measure sluice against.
 *
 *   ref_epoll_echo PORT [--busy-poll]
 *
 * --busy-poll: epoll_wait never blocks (timeout 0), like sluice-echo
 * --busy-poll, for comparisons without the cost of sleeping and waking.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

int main(int argc, char** argv) {
  const int busy = argc == 3 && strcmp(argv[2], "--busy-poll") == 0;
  if (argc != 2 && !busy) {
    fprintf(stderr, "usage: ref_epoll_echo PORT [--busy-poll]\n");
    return 2;
  }
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons((unsigned short)atoi(argv[1]));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(lfd, (struct sockaddr*)&a, sizeof a) != 0 || listen(lfd, 4096) != 0) {
    perror("listen");
    return 2;
  }
  printf("ref_epoll_echo on 127.0.0.1:%s\n", argv[1]);
  fflush(stdout);
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  struct epoll_event events[256];
  static char buf[65536];
  while (!stop) {
    int n = epoll_wait(ep, events, 256, busy ? 0 : -1);
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == lfd) {
        int c;
        while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
          setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          struct epoll_event cev = {.events = EPOLLIN | EPOLLET, .data.fd = c};
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
        }
        continue;
      }
      ssize_t r = read(fd, buf, sizeof buf);
      if (r > 0) {
        if (write(fd, buf, (size_t)r) < 0 && errno != EAGAIN) close(fd);
      } else if (r == 0 || errno != EAGAIN) {
        close(fd);
      }
    }
  }
  return 0;
}
