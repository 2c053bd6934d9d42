/*
 * egret-probe: the container health check. GETs one path on Egret's admin port and exits 0 when
 * the answer's status is 200, 1 otherwise (refused, timed out, another status, garbage).
 *
 *   egret-probe [--wait SECONDS] [HOST:PORT] [PATH]      defaults: 127.0.0.1:9901 /readyz
 *
 * --wait retries once a second until the check passes or SECONDS have gone by, for a postStart
 * hook that must hold the app until Egret is ready without a shell.
 *
 * Why not `java -jar egret.jar ready`: that starts a second JVM every 10 s (measured about
 * 0.45 CPU-seconds and 60 MB per check). This is a static binary with no libraries, no DNS (the
 * host is a numeric address) and no shell; one check costs about a millisecond of CPU.
 * `egret ready` stays available as a command.
 *
 * Bounded: 2 s to connect, 2 s in all to read the status line, at most 64 bytes read.
 * Built by deploy/healthcheck/build.sh (the Dockerfile's probe stage and CI run the same script).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define STEP_MS 2000

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int usage(const char *why) {
  fprintf(stderr, "egret-probe: %s\nusage: egret-probe [--wait SECONDS] [HOST:PORT] [PATH]\n", why);
  return 2;
}

/* "127.0.0.1:9901" or "[::1]:9901" into an address; 0 on success. */
static int parse_address(const char *text, struct sockaddr_storage *out, socklen_t *len) {
  char host[64];
  const char *colon = strrchr(text, ':');
  if (colon == NULL || colon == text || strlen(text) >= sizeof host) return -1;
  size_t hlen = (size_t)(colon - text);
  memcpy(host, text, hlen);
  host[hlen] = '\0';
  char *end;
  long port = strtol(colon + 1, &end, 10);
  if (*(colon + 1) == '\0' || *end != '\0' || port < 1 || port > 65535) return -1;
  memset(out, 0, sizeof *out);
  if (hlen > 2 && host[0] == '[' && host[hlen - 1] == ']') {
    host[hlen - 1] = '\0';
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)out;
    if (inet_pton(AF_INET6, host + 1, &a6->sin6_addr) != 1) return -1;
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons((unsigned short)port);
    *len = sizeof *a6;
    return 0;
  }
  struct sockaddr_in *a4 = (struct sockaddr_in *)out;
  if (inet_pton(AF_INET, host, &a4->sin_addr) != 1) return -1;
  a4->sin_family = AF_INET;
  a4->sin_port = htons((unsigned short)port);
  *len = sizeof *a4;
  return 0;
}

/* Waits for fd to be ready for events until the deadline; 1 when ready, 0 on timeout/error. */
static int wait_for(int fd, short events, long long deadline) {
  for (;;) {
    long long left = deadline - now_ms();
    if (left <= 0) return 0;
    struct pollfd p = {.fd = fd, .events = events};
    int n = poll(&p, 1, (int)left);
    if (n > 0) return 1;
    if (n < 0 && errno != EINTR) return 0;
  }
}

/* One check: 0 when the status line says 200, otherwise 1 (with the reason on stderr). */
static int check(const struct sockaddr_storage *addr, socklen_t len, const char *path) {
  int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    perror("egret-probe: socket");
    return 1;
  }
  int rc = 1;
  long long deadline = now_ms() + STEP_MS;
  if (connect(fd, (const struct sockaddr *)addr, len) != 0) {
    int err = 0;
    socklen_t elen = sizeof err;
    if (errno != EINPROGRESS || !wait_for(fd, POLLOUT, deadline)
        || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0 || err != 0) {
      fprintf(stderr, "egret-probe: cannot connect: %s\n", strerror(err ? err : errno ? errno : ETIMEDOUT));
      goto out;
    }
  }
  char request[600];
  int n = snprintf(request, sizeof request, "GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", path);
  for (int sent = 0; sent < n;) {
    ssize_t w = send(fd, request + sent, (size_t)(n - sent), MSG_NOSIGNAL);
    if (w > 0) {
      sent += (int)w;
    } else if (w < 0 && (errno == EAGAIN || errno == EINTR) && wait_for(fd, POLLOUT, deadline)) {
      continue;
    } else {
      fprintf(stderr, "egret-probe: cannot send the request\n");
      goto out;
    }
  }
  /* "HTTP/1.1 200 " is all that is needed; read until 13 bytes or the peer closes. */
  char status[65];
  size_t got = 0;
  deadline = now_ms() + STEP_MS;
  while (got < 13) {
    ssize_t r = recv(fd, status + got, sizeof status - 1 - got, 0);
    if (r > 0) {
      got += (size_t)r;
    } else if (r < 0 && (errno == EAGAIN || errno == EINTR) && wait_for(fd, POLLIN, deadline)) {
      continue;
    } else {
      break;
    }
  }
  status[got] = '\0';
  if (got >= 13 && (memcmp(status, "HTTP/1.1 200 ", 13) == 0 || memcmp(status, "HTTP/1.0 200 ", 13) == 0)) {
    rc = 0;
  } else {
    char *eol = strpbrk(status, "\r\n");
    if (eol) *eol = '\0';
    fprintf(stderr, "egret-probe: %s answered \"%.40s\"%s\n", path, status, got == 0 ? " (nothing, or timed out)" : "");
  }
out:
  close(fd);
  return rc;
}

int main(int argc, char **argv) {
  long wait_seconds = 0;
  const char *address = "127.0.0.1:9901";
  const char *path = "/readyz";
  int positional = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--wait") == 0) {
      char *end;
      if (i + 1 >= argc) return usage("--wait needs a number of seconds");
      wait_seconds = strtol(argv[++i], &end, 10);
      if (*argv[i] == '\0' || *end != '\0' || wait_seconds < 0 || wait_seconds > 3600) {
        return usage("--wait takes 0 to 3600 seconds");
      }
    } else if (positional == 0 && argv[i][0] != '/') {
      address = argv[i];
      positional = 1;
    } else if (argv[i][0] == '/' && strlen(argv[i]) < 512 && strpbrk(argv[i], " \r\n") == NULL) {
      path = argv[i];
      positional = 2;
    } else {
      return usage("unexpected argument (HOST:PORT, then a PATH starting with /)");
    }
  }
  struct sockaddr_storage addr;
  socklen_t len;
  if (parse_address(address, &addr, &len) != 0) {
    return usage("HOST:PORT must be a numeric address and port, e.g. 127.0.0.1:9901 or [::1]:9901");
  }
  long long give_up = now_ms() + wait_seconds * 1000;
  for (;;) {
    long long started = now_ms();
    if (check(&addr, len, path) == 0) return 0;
    if (now_ms() >= give_up) return 1;
    long long pause = 1000 - (now_ms() - started);
    if (pause > 0) {
      struct timespec ts = {.tv_sec = pause / 1000, .tv_nsec = (pause % 1000) * 1000000};
      while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
      }
    }
  }
}
