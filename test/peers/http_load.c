/*
 * HTTP/1.1 load client for the http benchmark, in C so that no runtime's
 * client speed skews the comparison of runtimes' servers:
 *
 *   http_load TARGET PORT CONNS REQUESTS BODY
 *
 * TARGET is 1 (vsock CID 1, the only CID a benchmark may dial) or tcp
 * (127.0.0.1). Opens CONNS keep-alive connections, one thread each, and sends
 * REQUESTS requests in total, one at a time per connection: a POST with a
 * BODY-byte body, or a GET when BODY is 0. Each response is read completely
 * (head to \r\n\r\n, then a Content-Length or a chunked body: servers differ)
 * and must be 200 with a body of BODY bytes (64 for a GET: the bench servers
 * echo the request body, or answer a GET with 64 bytes). A warm-up of a few
 * requests per connection runs before the clock starts.
 *
 * Prints "REQ_PER_S P50_US P99_US" (latency per request, send to last byte).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#define WARMUP 3
#define GET_BODY 64

static void die(const char *what) { perror(what); exit(1); }
static void fail(const char *what, const char *detail) {
  fprintf(stderr, "http_load: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
  exit(1);
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int tcp_target;
static unsigned port;
static size_t body_size;
static char *request;
static size_t request_len;
static pthread_barrier_t start_line;

static int dial(void) {
  int fd = socket(tcp_target ? AF_INET : AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  int r;
  if (tcp_target) {
    int one = 1; /* as the runtimes' own clients do */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    r = connect(fd, (struct sockaddr *)&a, sizeof a);
  } else {
    struct sockaddr_vm a = {.svm_family = AF_VSOCK, .svm_cid = 1, .svm_port = port};
    r = connect(fd, (struct sockaddr *)&a, sizeof a);
  }
  if (r < 0) die("connect");
  return fd;
}

/* A buffered reader over one connection. */
struct reader {
  int fd;
  size_t start, end;
  char buf[64 * 1024];
};

/* Reads more into the buffer (compacting first); EOF mid-response is an error. */
static void fill(struct reader *r) {
  if (r->start > 0) {
    memmove(r->buf, r->buf + r->start, r->end - r->start);
    r->end -= r->start;
    r->start = 0;
  }
  if (r->end == sizeof r->buf) fail("response line or head too long", NULL);
  for (;;) {
    ssize_t n = read(r->fd, r->buf + r->end, sizeof r->buf - r->end);
    if (n > 0) { r->end += (size_t)n; return; }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) die("read");
    fail("the server closed the connection mid-response", NULL);
  }
}

/* The next CRLF-terminated line, NUL-terminated in place (valid until the next read). */
static char *line(struct reader *r) {
  for (;;) {
    char *s = r->buf + r->start;
    char *crlf = memmem(s, r->end - r->start, "\r\n", 2);
    if (crlf) {
      *crlf = 0;
      r->start = (size_t)(crlf + 2 - r->buf);
      return s;
    }
    fill(r);
  }
}

/* Consumes n body bytes. */
static void skip(struct reader *r, size_t n) {
  while (n > 0) {
    if (r->start == r->end) fill(r);
    size_t take = r->end - r->start < n ? r->end - r->start : n;
    r->start += take;
    n -= take;
  }
}

/* Reads one whole response; returns its body length. */
static size_t response(struct reader *r) {
  char *status = line(r);
  if (strncmp(status, "HTTP/1.1 200", 12) != 0) fail("unexpected status line", status);
  long long length = -1;
  int chunked = 0;
  for (char *h; *(h = line(r));) {
    char *colon = strchr(h, ':');
    if (!colon) fail("malformed header", h);
    *colon = 0;
    char *v = colon + 1;
    while (*v == ' ' || *v == '\t') v++;
    if (!strcasecmp(h, "content-length")) length = atoll(v);
    else if (!strcasecmp(h, "transfer-encoding")) chunked = strcasestr(v, "chunked") != NULL;
    else if (!strcasecmp(h, "connection") && strcasestr(v, "close")) fail("the server refused keep-alive", v);
  }
  if (chunked) {
    size_t total = 0;
    for (;;) {
      char *size_line = line(r), *end;
      unsigned long n = strtoul(size_line, &end, 16);
      if (end == size_line) fail("malformed chunk size", size_line);
      if (n == 0) break;
      skip(r, n);
      if (*line(r)) fail("chunk not followed by CRLF", NULL);
      total += n;
    }
    while (*line(r)) {} /* trailers up to the empty line */
    return total;
  }
  if (length < 0) fail("response with neither Content-Length nor chunked encoding", NULL);
  skip(r, (size_t)length);
  return (size_t)length;
}

struct worker {
  pthread_t thread;
  long requests;
  double *latency_us;
};

static void exchange(struct reader *r) {
  size_t done = 0;
  while (done < request_len) {
    ssize_t w = write(r->fd, request + done, request_len - done);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) die("write");
    done += (size_t)w;
  }
  size_t expected = body_size ? body_size : GET_BODY, got = response(r);
  if (got != expected) {
    fprintf(stderr, "http_load: body of %zu bytes, expected %zu\n", got, expected);
    exit(1);
  }
}

static void *run(void *arg) {
  struct worker *w = arg;
  struct reader *r = calloc(1, sizeof *r);
  if (!r) die("calloc");
  r->fd = dial();
  for (int i = 0; i < WARMUP; i++) exchange(r);
  pthread_barrier_wait(&start_line);
  for (long i = 0; i < w->requests; i++) {
    double t0 = now();
    exchange(r);
    w->latency_us[i] = (now() - t0) * 1e6;
  }
  close(r->fd);
  free(r);
  return NULL;
}

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: http_load 1|tcp PORT CONNS REQUESTS BODY\n");
    return 2;
  }
  if (!strcmp(argv[1], "tcp")) tcp_target = 1;
  else if (strcmp(argv[1], "1") != 0) fail("TARGET must be 1 (vsock CID 1) or tcp", argv[1]);
  port = (unsigned)atoi(argv[2]);
  long conns = atol(argv[3]), total = atol(argv[4]);
  body_size = (size_t)atol(argv[5]);
  if (conns < 1 || total < conns) fail("need 1 <= CONNS <= REQUESTS", NULL);

  char head[128];
  int head_len = body_size
    ? snprintf(head, sizeof head, "POST / HTTP/1.1\r\nHost: bench\r\nContent-Length: %zu\r\n\r\n", body_size)
    : snprintf(head, sizeof head, "GET / HTTP/1.1\r\nHost: bench\r\n\r\n");
  request_len = (size_t)head_len + body_size;
  request = malloc(request_len);
  if (!request) die("malloc");
  memcpy(request, head, (size_t)head_len);
  memset(request + head_len, 'x', body_size);

  struct worker *workers = calloc((size_t)conns, sizeof *workers);
  double *latency = malloc((size_t)total * sizeof *latency);
  if (!workers || !latency) die("malloc");
  pthread_barrier_init(&start_line, NULL, (unsigned)conns + 1);
  long at = 0;
  for (long i = 0; i < conns; i++) {
    workers[i].requests = total / conns + (i < total % conns);
    workers[i].latency_us = latency + at;
    at += workers[i].requests;
    if (pthread_create(&workers[i].thread, NULL, run, &workers[i]) != 0) fail("pthread_create", NULL);
  }
  pthread_barrier_wait(&start_line);
  double t0 = now();
  for (long i = 0; i < conns; i++) pthread_join(workers[i].thread, NULL);
  double seconds = now() - t0;

  qsort(latency, (size_t)total, sizeof *latency, by_value);
  /* nearest-rank percentiles */
  printf("%.0f %.0f %.0f\n", total / seconds, latency[(total * 50 + 99) / 100 - 1], latency[(total * 99 + 99) / 100 - 1]);
  return 0;
}
