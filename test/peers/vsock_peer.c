/*
 * Independent C peer and baseline for vsock tests and benchmarks: plain
 * blocking socket calls, nothing shared with the library.
 *
 *   vsock_peer echo-server PORT [tcp]     echo every connection (one process, epoll: 1,000s of connections)
 *   vsock_peer sink-server PORT [tcp]     read each connection to EOF, answer the byte count (8 bytes, LE)
 *   vsock_peer accept-close-server PORT [tcp]  accept one connection at a time and close it at once (blocking, no epoll)
 *   vsock_peer pingpong CID PORT ROUNDS SIZE   print microseconds per round trip
 *   vsock_peer stream CID PORT BYTES CHUNK     send BYTES, half-close, await the count; print MiB/s
 *   vsock_peer connects CID PORT COUNT         connect and close COUNT times; print connects per second
 *                                              and this process's CPU µs (user + system) per connect
 *
 * Servers print "ready" once listening; with "tcp" they listen on 127.0.0.1:PORT instead of vsock.
 * A client given "tcp" for CID connects to 127.0.0.1:PORT: the benchmark's "C over TCP" line, which
 * shows how far each runtime's own TCP sockets sit from plain C on the same kernel.
 * A client given "unix:PATH" for CID dials guest port PORT through a VMM's hybrid vsock socket
 * (Firecracker's "CONNECT PORT\n" / "OK ...\n"; the reply is read a byte at a time so no data is taken).
 */
#define _GNU_SOURCE /* accept4 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

static void die(const char *what) { perror(what); exit(1); }

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* CPU time this process has used, user + system. */
static double cpu_seconds(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static int listen_on(unsigned port, int tcp) {
  int fd = socket(tcp ? AF_INET : AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  if (tcp) {
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) die("bind");
  } else {
    struct sockaddr_vm a = {.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port};
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) die("bind");
  }
  if (listen(fd, 1024) < 0) die("listen");
  printf("ready\n");
  fflush(stdout);
  return fd;
}

static int connect_hybrid(const char *path, unsigned port) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof a.sun_path) { fprintf(stderr, "path too long\n"); exit(1); }
  strcpy(a.sun_path, path);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) die("connect");
  char line[32];
  int n = snprintf(line, sizeof line, "CONNECT %u\n", port);
  if (write(fd, line, (size_t)n) != n) die("write CONNECT");
  for (n = 0; n < (int)sizeof line - 1; n++) {
    if (read(fd, line + n, 1) != 1) { fprintf(stderr, "hybrid handshake: EOF\n"); exit(1); }
    if (line[n] == '\n') break;
  }
  if (strncmp(line, "OK ", 3) != 0) { fprintf(stderr, "hybrid handshake: bad reply\n"); exit(1); }
  return fd;
}

static int connect_to(const char *cid, unsigned port) {
  if (!strncmp(cid, "unix:", 5)) return connect_hybrid(cid + 5, port);
  int tcp = !strcmp(cid, "tcp");
  int fd = socket(tcp ? AF_INET : AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  int r;
  if (tcp) {
    int one = 1; /* as the runtimes do: Bun and Deno set TCP_NODELAY on their TCP sockets */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    r = connect(fd, (struct sockaddr *)&a, sizeof a);
  } else {
    struct sockaddr_vm a = {.svm_family = AF_VSOCK, .svm_cid = (unsigned)atoi(cid), .svm_port = port};
    r = connect(fd, (struct sockaddr *)&a, sizeof a);
  }
  if (r < 0) die("connect");
  return fd;
}

static void write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) { if (errno == EINTR) continue; die("write"); }
    p += w;
    n -= (size_t)w;
  }
}

static void read_exact(int fd, char *p, size_t n) {
  while (n > 0) {
    ssize_t r = read(fd, p, n);
    if (r < 0) { if (errno == EINTR) continue; die("read"); }
    if (r == 0) { fprintf(stderr, "unexpected EOF\n"); exit(1); }
    p += r;
    n -= (size_t)r;
  }
}

/* One process, level-triggered epoll: echoes what each connection sends. */
static void echo_epoll(int lfd) {
  static char buf[256 * 1024];
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd}, evs[256];
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  for (;;) {
    int n = epoll_wait(ep, evs, 256, -1);
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      if (fd == lfd) {
        int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0) continue;
        struct epoll_event cev = {.events = EPOLLIN, .data.fd = c};
        epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
        continue;
      }
      ssize_t r = read(fd, buf, sizeof buf);
      if (r <= 0) {
        close(fd); /* also leaves the epoll set */
        continue;
      }
      write_all(fd, buf, (size_t)r); /* blocking fd: the peers here read their echoes */
    }
  }
}

/* A child per connection: count to EOF, answer the count. */
static void sink(int lfd) {
  signal(SIGCHLD, SIG_IGN);
  static char buf[256 * 1024];
  for (;;) {
    int c = accept(lfd, NULL, NULL);
    if (c < 0) { if (errno == EINTR) continue; die("accept"); }
    if (fork() == 0) {
      uint64_t total = 0;
      ssize_t r;
      while ((r = read(c, buf, sizeof buf)) > 0) total += (uint64_t)r;
      /* One send: 8 bytes into the client's empty receive window go whole. A client that never reads the count
       * (the bench's `socat -u`) may be gone by now: its EPIPE is no failure. */
      if (send(c, &total, sizeof total, MSG_NOSIGNAL) < 0 && errno != EPIPE && errno != ECONNRESET) die("write");
      shutdown(c, SHUT_WR);
      _exit(0);
    }
    close(c);
  }
}

/* One connection at a time: accept, close, repeat (the server shape of a naive accept loop). */
static void accept_close(int lfd) {
  for (;;) {
    int c = accept(lfd, NULL, NULL);
    if (c < 0) { if (errno == EINTR || errno == ECONNABORTED) continue; die("accept"); }
    close(c);
  }
}

int main(int argc, char **argv) {
  int tcp = argc == 4 && !strcmp(argv[3], "tcp");
  if ((argc == 3 || tcp) && !strcmp(argv[1], "echo-server")) echo_epoll(listen_on(atoi(argv[2]), tcp));
  if ((argc == 3 || tcp) && !strcmp(argv[1], "sink-server")) sink(listen_on(atoi(argv[2]), tcp));
  if ((argc == 3 || tcp) && !strcmp(argv[1], "accept-close-server")) accept_close(listen_on(atoi(argv[2]), tcp));
  if (argc == 5 && !strcmp(argv[1], "connects")) {
    long count = atol(argv[4]);
    double t0 = now(), cpu0 = cpu_seconds();
    for (long i = 0; i < count; i++) close(connect_to(argv[2], atoi(argv[3])));
    printf("%.0f %.0f\n", count / (now() - t0), (cpu_seconds() - cpu0) * 1e6 / count);
    return 0;
  }
  if (argc == 6 && !strcmp(argv[1], "pingpong")) {
    int fd = connect_to(argv[2], atoi(argv[3]));
    long rounds = atol(argv[4]);
    size_t size = (size_t)atol(argv[5]);
    char *buf = calloc(1, size);
    double t0 = now();
    for (long i = 0; i < rounds; i++) {
      write_all(fd, buf, size);
      read_exact(fd, buf, size);
    }
    printf("%.2f\n", (now() - t0) * 1e6 / rounds);
    return 0;
  }
  if (argc == 6 && !strcmp(argv[1], "stream")) {
    int fd = connect_to(argv[2], atoi(argv[3]));
    uint64_t bytes = strtoull(argv[4], NULL, 10), got = 0;
    size_t chunk = (size_t)atol(argv[5]);
    char *buf = calloc(1, chunk);
    double t0 = now();
    for (uint64_t sent = 0; sent < bytes; sent += chunk) write_all(fd, buf, chunk);
    shutdown(fd, SHUT_WR);
    read_exact(fd, (char *)&got, sizeof got);
    double s = now() - t0;
    if (got != bytes) { fprintf(stderr, "sink counted %llu of %llu\n", (unsigned long long)got, (unsigned long long)bytes); return 1; }
    printf("%.1f\n", bytes / 1048576.0 / s);
    return 0;
  }
  fprintf(stderr, "usage: see the comment at the top of vsock_peer.c\n");
  return 2;
}
