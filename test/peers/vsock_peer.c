/*
 * Independent C peer and baseline for vsock tests and benchmarks: plain
 * blocking socket calls, nothing shared with the library.
 *
 *   vsock_peer echo-server PORT           echo every connection (a child per connection)
 *   vsock_peer sink-server PORT           read each connection to EOF, answer the byte count (8 bytes, LE)
 *   vsock_peer pingpong CID PORT ROUNDS SIZE   print microseconds per round trip
 *   vsock_peer stream CID PORT BYTES CHUNK     send BYTES, half-close, await the count; print MiB/s
 *
 * Servers print "ready" once listening.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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

static int listen_on(unsigned port) {
  int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  struct sockaddr_vm a = {.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port};
  if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) die("bind");
  if (listen(fd, 1024) < 0) die("listen");
  printf("ready\n");
  fflush(stdout);
  return fd;
}

static int connect_to(unsigned cid, unsigned port) {
  int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  struct sockaddr_vm a = {.svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port};
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) die("connect");
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

static void serve(int lfd, int sink) {
  signal(SIGCHLD, SIG_IGN);
  static char buf[256 * 1024];
  for (;;) {
    int c = accept(lfd, NULL, NULL);
    if (c < 0) { if (errno == EINTR) continue; die("accept"); }
    if (fork() == 0) {
      uint64_t total = 0;
      ssize_t r;
      while ((r = read(c, buf, sizeof buf)) > 0) {
        total += (uint64_t)r;
        if (!sink) write_all(c, buf, (size_t)r);
      }
      if (sink) write_all(c, (const char *)&total, sizeof total);
      shutdown(c, SHUT_WR);
      _exit(0);
    }
    close(c);
  }
}

int main(int argc, char **argv) {
  if (argc == 3 && !strcmp(argv[1], "echo-server")) serve(listen_on(atoi(argv[2])), 0);
  if (argc == 3 && !strcmp(argv[1], "sink-server")) serve(listen_on(atoi(argv[2])), 1);
  if (argc == 6 && !strcmp(argv[1], "pingpong")) {
    int fd = connect_to(atoi(argv[2]), atoi(argv[3]));
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
    int fd = connect_to(atoi(argv[2]), atoi(argv[3]));
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
