/*
 * sluice_native: the few socket calls Node does not expose.
 *
 * libuv accepts greedily on a listening socket: as long as the socket is
 * readable it accepts every pending connection. A sluice daemon process must
 * instead take a connection only when it has a free request slot, so that the
 * kernel listen queue stays the group's shared waiting line (as in mod_wsgi,
 * where an idle worker thread calls accept()). This addon gives JavaScript:
 *
 *   listenUnix(path, backlog, mode) -> fd     bind + listen, never accept
 *   listenTcp(host, port, backlog)  -> fd     (host is a numeric address)
 *   localPort(fd)                   -> port
 *   acceptOne(fd)                   -> fd, or -errno (e.g. -EAGAIN)
 *   watch(fd, callback)             -> watcher (uv_poll on readability)
 *   watchAccept(fd, callback)       -> watcher that accepts on readability and
 *                                      calls back with the new fd or -errno,
 *                                      never for an empty queue
 *   watchStart(w) / watchStop(w) / watchClose(w)
 *   watchAccepts(w, on)             -> whether the watcher accepts, or only
 *                                      calls back on readability
 *   closeFd(fd)
 *   tableCreate(n) -> fd / tableMap(fd, n) / tableGet(i) / tableSet(i, v)
 *                                      n int32 cells of memory shared by the
 *                                      processes that map the same fd (the
 *                                      front ends' accept table)
 *
 * and two calls for running under a service manager (systemd):
 *
 *   notify(path, message)           -> 0 or -errno   one datagram to
 *                                      NOTIFY_SOCKET (Node has no UNIX
 *                                      datagram sockets)
 *   adoptListener(fd)               -> { host, port } of an inherited
 *                                      listening TCP socket (socket
 *                                      activation), made non-blocking and
 *                                      close-on-exec
 *
 * The JavaScript side starts the watcher only while it has a free slot and
 * calls acceptOne() once per free slot.
 */
#define _GNU_SOURCE /* accept4 */
#include <node_api.h>

#ifdef _WIN32
/* Daemon mode is not available on Windows (as with mod_wsgi). */
static napi_value Init(napi_env env, napi_value exports) { return exports; }
NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
#else

#include <uv.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#ifdef __linux__
#include <linux/sockios.h>
#endif
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define CHECK(env, call)                                                     \
  do {                                                                       \
    if ((call) != napi_ok) {                                                 \
      napi_throw_error((env), NULL, "sluice_native: N-API call failed");     \
      return NULL;                                                           \
    }                                                                        \
  } while (0)

static napi_value throw_errno(napi_env env, int err, const char* what) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_throw_error(env, uv_err_name(-err), msg);
  return NULL;
}

static int set_flags(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return -1;
  int fdfl = fcntl(fd, F_GETFD);
  if (fdfl < 0 || fcntl(fd, F_SETFD, fdfl | FD_CLOEXEC) < 0) return -1;
  return 0;
}

static int get_int_arg(napi_env env, napi_value v, int32_t* out) {
  return napi_get_value_int32(env, v, out) == napi_ok ? 0 : -1;
}

static napi_value make_int(napi_env env, int32_t n) {
  napi_value v;
  napi_create_int32(env, n, &v);
  return v;
}

static napi_value ListenUnix(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char path[sizeof(((struct sockaddr_un*)0)->sun_path)];
  size_t len = 0;
  int32_t backlog = 100, mode = 0600;
  if (argc < 3 ||
      napi_get_value_string_utf8(env, argv[0], path, sizeof path, &len) != napi_ok ||
      get_int_arg(env, argv[1], &backlog) || get_int_arg(env, argv[2], &mode)) {
    napi_throw_type_error(env, NULL, "listenUnix(path, backlog, mode)");
    return NULL;
  }
  if (len >= sizeof path - 1) {
    napi_throw_error(env, "ENAMETOOLONG", "socket path too long");
    return NULL;
  }
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  if (fd < 0) return throw_errno(env, errno, "socket");
  if (set_flags(fd) < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, e, "fcntl");
  }
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  memcpy(addr.sun_path, path, len);
  if (bind(fd, (struct sockaddr*)&addr, sizeof addr) < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, e, "bind");
  }
  if (chmod(path, (mode_t)mode) < 0 || listen(fd, backlog) < 0) {
    int e = errno;
    close(fd);
    unlink(path);
    return throw_errno(env, e, "listen");
  }
  return make_int(env, fd);
}

static napi_value ListenTcp(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char host[64];
  size_t len = 0;
  int32_t port = 0, backlog = 511;
  if (argc < 3 ||
      napi_get_value_string_utf8(env, argv[0], host, sizeof host, &len) != napi_ok ||
      get_int_arg(env, argv[1], &port) || get_int_arg(env, argv[2], &backlog)) {
    napi_throw_type_error(env, NULL, "listenTcp(host, port, backlog)");
    return NULL;
  }
  struct sockaddr_storage ss;
  socklen_t sslen;
  memset(&ss, 0, sizeof ss);
  int family;
  struct sockaddr_in* a4 = (struct sockaddr_in*)&ss;
  struct sockaddr_in6* a6 = (struct sockaddr_in6*)&ss;
  if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
    family = AF_INET;
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    sslen = sizeof *a4;
  } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
    family = AF_INET6;
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons((uint16_t)port);
    sslen = sizeof *a6;
  } else {
    napi_throw_error(env, "EINVAL", "listenTcp: host must be a numeric address");
    return NULL;
  }
  int fd = socket(family, SOCK_STREAM, 0);
  if (fd < 0) return throw_errno(env, errno, "socket");
  int one = 1, zero = 0;
  if (set_flags(fd) < 0 ||
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
      (family == AF_INET6 &&
       setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero) < 0)) {
    int e = errno;
    close(fd);
    return throw_errno(env, e, "setsockopt");
  }
  if (bind(fd, (struct sockaddr*)&ss, sslen) < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, e, "bind");
  }
  if (listen(fd, backlog) < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, e, "listen");
  }
  return make_int(env, fd);
}

static napi_value LocalPort(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || get_int_arg(env, argv[0], &fd)) {
    napi_throw_type_error(env, NULL, "localPort(fd)");
    return NULL;
  }
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(fd, (struct sockaddr*)&ss, &len) < 0)
    return throw_errno(env, errno, "getsockname");
  int port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6*)&ss)->sin6_port)
                                      : ntohs(((struct sockaddr_in*)&ss)->sin_port);
  return make_int(env, port);
}

static int accept_one(int fd) {
  int c;
#ifdef __linux__
  do c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  while (c < 0 && errno == EINTR);
#else
  do c = accept(fd, NULL, NULL);
  while (c < 0 && errno == EINTR);
  if (c >= 0 && set_flags(c) < 0) {
    int e = errno;
    close(c);
    return -e;
  }
#endif
  return c >= 0 ? c : -errno;
}

static napi_value AcceptOne(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || get_int_arg(env, argv[0], &fd)) {
    napi_throw_type_error(env, NULL, "acceptOne(fd)");
    return NULL;
  }
  return make_int(env, accept_one(fd));
}

static napi_value CloseFd(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || get_int_arg(env, argv[0], &fd)) {
    napi_throw_type_error(env, NULL, "closeFd(fd)");
    return NULL;
  }
  return make_int(env, close(fd) < 0 ? -errno : 0);
}

/* Bytes a connected socket holds in its kernel send queue (sent but not yet
 * acknowledged, or not sent yet), -1 where the system does not say. A slow
 * client's progress shows here long before the socket turns writable again. */
static napi_value SendQueue(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || get_int_arg(env, argv[0], &fd)) {
    napi_throw_type_error(env, NULL, "sendQueue(fd)");
    return NULL;
  }
  int n = -1;
#if defined(SIOCOUTQ)
  if (ioctl(fd, SIOCOUTQ, &n) != 0) n = -1;
#elif defined(SO_NWRITE)
  socklen_t len = sizeof n;
  if (getsockopt(fd, SOL_SOCKET, SO_NWRITE, &n, &len) != 0) n = -1;
#endif
  return make_int(env, n);
}

/* ---- service manager ---------------------------------------------------- */

/* sd_notify's protocol: the message is one datagram to the UNIX socket named
 * by NOTIFY_SOCKET; a name starting with "@" is in the abstract namespace. */
static napi_value Notify(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct sockaddr_un addr;
  size_t plen = 0, mlen = 0;
  memset(&addr, 0, sizeof addr);
  if (argc < 2 ||
      napi_get_value_string_utf8(env, argv[0], addr.sun_path, sizeof addr.sun_path, &plen) != napi_ok ||
      napi_get_value_string_utf8(env, argv[1], NULL, 0, &mlen) != napi_ok) {
    napi_throw_type_error(env, NULL, "notify(path, message)");
    return NULL;
  }
  if (plen == 0 || plen >= sizeof addr.sun_path - 1) return make_int(env, -EINVAL);
  addr.sun_family = AF_UNIX;
  if (addr.sun_path[0] == '@') addr.sun_path[0] = '\0';
  char* msg = (char*)malloc(mlen + 1);
  if (msg == NULL) return make_int(env, -ENOMEM);
  if (napi_get_value_string_utf8(env, argv[1], msg, mlen + 1, &mlen) != napi_ok) {
    free(msg);
    napi_throw_type_error(env, NULL, "notify(path, message)");
    return NULL;
  }
  int rc = 0;
#ifdef SOCK_CLOEXEC
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
#else
  int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
#endif
  if (fd < 0) {
    rc = -errno;
  } else {
    socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen);
#ifdef MSG_NOSIGNAL
    int flags = MSG_NOSIGNAL;
#else
    int flags = 0;
#endif
    ssize_t n;
    do n = sendto(fd, msg, mlen, flags, (struct sockaddr*)&addr, alen);
    while (n < 0 && errno == EINTR);
    if (n < 0) rc = -errno;
    close(fd);
  }
  free(msg);
  return make_int(env, rc);
}

/* An inherited socket (LISTEN_FDS): it must be a listening TCP socket; it is
 * made non-blocking (the accept loop must never block) and close-on-exec (it
 * reaches children only where they are given it). */
static napi_value AdoptListener(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || get_int_arg(env, argv[0], &fd)) {
    napi_throw_type_error(env, NULL, "adoptListener(fd)");
    return NULL;
  }
  int type = 0, listening = 0;
  socklen_t len = sizeof type;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0) return throw_errno(env, errno, "not a socket");
  if (type != SOCK_STREAM) {
    napi_throw_error(env, "EPROTOTYPE", "not a stream socket");
    return NULL;
  }
#ifdef SO_ACCEPTCONN
  len = sizeof listening;
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0) return throw_errno(env, errno, "getsockopt");
  if (!listening) {
    napi_throw_error(env, "EINVAL", "not a listening socket");
    return NULL;
  }
#endif
  struct sockaddr_storage ss;
  len = sizeof ss;
  if (getsockname(fd, (struct sockaddr*)&ss, &len) < 0) return throw_errno(env, errno, "getsockname");
  char host[INET6_ADDRSTRLEN];
  int port;
  if (ss.ss_family == AF_INET) {
    struct sockaddr_in* a = (struct sockaddr_in*)&ss;
    inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
    port = ntohs(a->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    struct sockaddr_in6* a = (struct sockaddr_in6*)&ss;
    inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
    port = ntohs(a->sin6_port);
  } else {
    napi_throw_error(env, "EAFNOSUPPORT", "not a TCP socket (a UNIX or other socket family)");
    return NULL;
  }
  if (set_flags(fd) < 0) return throw_errno(env, errno, "fcntl");
  napi_value out, h;
  CHECK(env, napi_create_object(env, &out));
  CHECK(env, napi_create_string_utf8(env, host, NAPI_AUTO_LENGTH, &h));
  CHECK(env, napi_set_named_property(env, out, "host", h));
  CHECK(env, napi_set_named_property(env, out, "port", make_int(env, port)));
  return out;
}

/* ---- readability watcher ------------------------------------------------ */

typedef struct {
  uv_poll_t poll;
  napi_env env;
  napi_ref callback;
  napi_async_context async;
  int active;
  int closed;
  int fd;
  /* watchAccept(): accept here and call JavaScript only with a connection
   * (or an error), not for a wake-up that found the queue empty because a
   * sibling process took the connection first. */
  int accepts;
} watcher_t;

static void on_poll(uv_poll_t* handle, int status, int events) {
  watcher_t* w = (watcher_t*)handle->data;
  napi_env env = w->env;
  if (w->accepts && status == 0) {
    status = accept_one(w->fd);
    if (status == -EAGAIN || status == -EWOULDBLOCK) return;
  }
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb, recv, arg, result;
  if (napi_get_reference_value(env, w->callback, &cb) == napi_ok && cb != NULL) {
    napi_get_global(env, &recv); /* make_callback needs an object receiver */
    napi_create_int32(env, status, &arg);
    /* make_callback runs the microtask and nextTick queues afterwards. */
    if (napi_make_callback(env, w->async, recv, cb, 1, &arg, &result) ==
        napi_pending_exception) {
      napi_value err;
      napi_get_and_clear_last_exception(env, &err);
      napi_fatal_exception(env, err);
    }
  }
  napi_close_handle_scope(env, scope);
}

static void on_close(uv_handle_t* handle) { free(handle->data); }

static int get_watcher(napi_env env, napi_callback_info info, watcher_t** out) {
  size_t argc = 1;
  napi_value argv[1];
  void* data = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_external(env, argv[0], &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, NULL, "expected a watcher");
    return -1;
  }
  *out = (watcher_t*)data;
  return 0;
}

static napi_value make_watcher(napi_env env, napi_callback_info info, int accepts) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  napi_valuetype t;
  if (argc < 2 || get_int_arg(env, argv[0], &fd) ||
      napi_typeof(env, argv[1], &t) != napi_ok || t != napi_function) {
    napi_throw_type_error(env, NULL, "watch(fd, callback)");
    return NULL;
  }
  uv_loop_t* loop;
  CHECK(env, napi_get_uv_event_loop(env, &loop));
  watcher_t* w = (watcher_t*)calloc(1, sizeof *w);
  if (w == NULL) return throw_errno(env, ENOMEM, "watch");
  w->env = env;
  w->fd = fd;
  w->accepts = accepts;
  int r = uv_poll_init(loop, &w->poll, fd);
  if (r < 0) {
    free(w);
    napi_throw_error(env, uv_err_name(r), uv_strerror(r));
    return NULL;
  }
  w->poll.data = w;
  napi_value name, resource;
  CHECK(env, napi_create_string_utf8(env, "sluice:accept", NAPI_AUTO_LENGTH, &name));
  CHECK(env, napi_create_object(env, &resource));
  CHECK(env, napi_create_reference(env, argv[1], 1, &w->callback));
  CHECK(env, napi_async_init(env, resource, name, &w->async));
  napi_value ext;
  CHECK(env, napi_create_external(env, w, NULL, NULL, &ext));
  return ext;
}

static napi_value Watch(napi_env env, napi_callback_info info) {
  return make_watcher(env, info, 0);
}

static napi_value WatchAccept(napi_env env, napi_callback_info info) {
  return make_watcher(env, info, 1);
}

static napi_value WatchStart(napi_env env, napi_callback_info info) {
  watcher_t* w;
  if (get_watcher(env, info, &w)) return NULL;
  if (!w->closed && !w->active) {
    int r = uv_poll_start(&w->poll, UV_READABLE, on_poll);
    if (r < 0) {
      napi_throw_error(env, uv_err_name(r), uv_strerror(r));
      return NULL;
    }
    w->active = 1;
  }
  return NULL;
}

static napi_value WatchStop(napi_env env, napi_callback_info info) {
  watcher_t* w;
  if (get_watcher(env, info, &w)) return NULL;
  if (!w->closed && w->active) {
    uv_poll_stop(&w->poll);
    w->active = 0;
  }
  return NULL;
}

static napi_value WatchAccepts(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  void* data = NULL;
  bool on;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || napi_get_value_external(env, argv[0], &data) != napi_ok || data == NULL ||
      napi_get_value_bool(env, argv[1], &on) != napi_ok) {
    napi_throw_type_error(env, NULL, "watchAccepts(watcher, on)");
    return NULL;
  }
  ((watcher_t*)data)->accepts = on ? 1 : 0;
  return NULL;
}

static napi_value WatchClose(napi_env env, napi_callback_info info) {
  watcher_t* w;
  if (get_watcher(env, info, &w)) return NULL;
  if (!w->closed) {
    w->closed = 1;
    w->active = 0;
    napi_delete_reference(env, w->callback);
    napi_async_destroy(env, w->async);
    uv_close((uv_handle_t*)&w->poll, on_close);
  }
  return NULL;
}

/* ---- shared table ------------------------------------------------------- */

/* One per process: the front ends' accept table (src/native/accept-table.ts).
 * Each cell has one writer; readers take a recent value, never a torn one. */
static int32_t* table = NULL;
static int32_t table_len = 0;

static int map_table(int fd, int32_t n) {
  void* p = mmap(NULL, (size_t)n * sizeof(int32_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return -errno;
  if (table != NULL) munmap(table, (size_t)table_len * sizeof(int32_t));
  table = (int32_t*)p;
  table_len = n;
  return 0;
}

static napi_value TableCreate(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t n;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || get_int_arg(env, argv[0], &n) || n < 1) {
    napi_throw_type_error(env, NULL, "tableCreate(cells)");
    return NULL;
  }
#ifdef __linux__
  int fd = memfd_create("sluice-accept-table", MFD_CLOEXEC);
#else
  char name[64];
  snprintf(name, sizeof name, "/sluice-accept-table-%ld", (long)getpid());
  int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
  if (fd >= 0) shm_unlink(name);
#endif
  if (fd < 0) return throw_errno(env, errno, "tableCreate");
  if (ftruncate(fd, (off_t)n * sizeof(int32_t)) < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, e, "tableCreate: ftruncate");
  }
  int r = map_table(fd, n);
  if (r < 0) {
    close(fd);
    return throw_errno(env, -r, "tableCreate: mmap");
  }
  return make_int(env, fd);
}

static napi_value TableMap(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd, n;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || get_int_arg(env, argv[0], &fd) || get_int_arg(env, argv[1], &n) || n < 1) {
    napi_throw_type_error(env, NULL, "tableMap(fd, cells)");
    return NULL;
  }
  int r = map_table(fd, n);
  if (r < 0) return throw_errno(env, -r, "tableMap");
  return NULL;
}

static napi_value TableGet(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t i;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || get_int_arg(env, argv[0], &i) || table == NULL || i < 0 || i >= table_len) {
    napi_throw_range_error(env, NULL, "tableGet(i): no such cell");
    return NULL;
  }
  return make_int(env, __atomic_load_n(&table[i], __ATOMIC_RELAXED));
}

static napi_value TableSet(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t i, v;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2 || get_int_arg(env, argv[0], &i) || get_int_arg(env, argv[1], &v) || table == NULL || i < 0 || i >= table_len) {
    napi_throw_range_error(env, NULL, "tableSet(i, v): no such cell");
    return NULL;
  }
  __atomic_store_n(&table[i], v, __ATOMIC_RELAXED);
  return NULL;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"listenUnix", NULL, ListenUnix, NULL, NULL, NULL, napi_enumerable, NULL},
      {"listenTcp", NULL, ListenTcp, NULL, NULL, NULL, napi_enumerable, NULL},
      {"localPort", NULL, LocalPort, NULL, NULL, NULL, napi_enumerable, NULL},
      {"acceptOne", NULL, AcceptOne, NULL, NULL, NULL, napi_enumerable, NULL},
      {"closeFd", NULL, CloseFd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sendQueue", NULL, SendQueue, NULL, NULL, NULL, napi_enumerable, NULL},
      {"watch", NULL, Watch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"watchAccept", NULL, WatchAccept, NULL, NULL, NULL, napi_enumerable, NULL},
      {"watchStart", NULL, WatchStart, NULL, NULL, NULL, napi_enumerable, NULL},
      {"watchStop", NULL, WatchStop, NULL, NULL, NULL, napi_enumerable, NULL},
      {"watchClose", NULL, WatchClose, NULL, NULL, NULL, napi_enumerable, NULL},
      {"watchAccepts", NULL, WatchAccepts, NULL, NULL, NULL, napi_enumerable, NULL},
      {"tableCreate", NULL, TableCreate, NULL, NULL, NULL, napi_enumerable, NULL},
      {"tableMap", NULL, TableMap, NULL, NULL, NULL, napi_enumerable, NULL},
      {"tableGet", NULL, TableGet, NULL, NULL, NULL, napi_enumerable, NULL},
      {"tableSet", NULL, TableSet, NULL, NULL, NULL, napi_enumerable, NULL},
      {"notify", NULL, Notify, NULL, NULL, NULL, napi_enumerable, NULL},
      {"adoptListener", NULL, AdoptListener, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
#endif
