/*
 * mlcc's native client: `mlcc` and `mlcc++` as a small C program.
 *
 * It decides one thing: whether this command runs in the user's warm compile
 * server (mlcc/compile_server.py) or in this process, as the Python entry point.
 * Everything about flags is Python's. To the server it hands argv, the working
 * directory, the environment, umask, process group, nice value and its standard
 * streams (file descriptors 0, 1, 2 over the Unix socket, SCM_RIGHTS); it
 * forwards SIGINT, SIGTERM, SIGHUP and SIGQUIT to the server's child running
 * the command, and exits with the child's exit code, or dies of its signal.
 * When the server answers "exec clang with these arguments" it execs them itself.
 *
 * No server (first use, idle exit, a stale socket): a server is started in the
 * background, and the command waits for it to listen (a few tenths of a second;
 * at most MLCC_START_WAIT seconds). A server that does not come up, cannot take
 * the command or dies during it: the Python entry point runs the command in
 * this process (exec, same argv and environment).
 *
 * Built by mlcc/client_build.py (`mlcc-tool install-client`), which writes
 * mlcc-client-config.h: MLCC_PYTHON, MLCC_FALLBACK_CODE, MLCC_SERVER_CODE,
 * MLCC_SOCKET_NAME, MLCC_PROTOCOL, MLCC_DEFAULT_DRIVER, MLCC_RETRY_AFTER,
 * MLCC_START_WAIT.
 * C99 and POSIX (plus Linux's SCM_RIGHTS details); nothing beyond libc.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mlcc-client-config.h"

extern char **environ;

static int g_argc;
static char **g_argv;
static const char *g_program;            /* this program's path, as Python's sys.argv[0] */

static volatile sig_atomic_t g_pending;  /* a signal to forward (or die of) */
static volatile pid_t g_child;           /* the server's child running the command */
static const int k_forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
#define N_FORWARDED (sizeof k_forwarded / sizeof k_forwarded[0])
static struct sigaction g_old_actions[N_FORWARDED];

/* ---- small buffers ---------------------------------------------------------- */

struct buf { char *data; size_t len, cap; };

static void put(struct buf *b, const void *data, size_t len) {
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + len) cap *= 2;
        char *grown = realloc(b->data, cap);
        if (!grown) { fputs("mlcc: error: out of memory\n", stderr); exit(1); }
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
}

static void put_str(struct buf *b, const char *s) { put(b, s, strlen(s) + 1); }

static void put_num(struct buf *b, long n) {
    char text[32];
    snprintf(text, sizeof text, "%ld", n);
    put_str(b, text);
}

/* ---- the fallback: this command in this process, as Python ----------------- */

static void restore_signals(void) {
    for (size_t i = 0; i < N_FORWARDED; i++) sigaction(k_forwarded[i], &g_old_actions[i], NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

static void die_of_pending(void) {
    int sig = g_pending;
    if (!sig) return;
    restore_signals();
    signal(sig, SIG_DFL);
    raise(sig);
    _exit(128 + sig);
}

static void run_in_process(void) {
    die_of_pending();
    restore_signals();
    char **args = calloc((size_t)g_argc + 4, sizeof *args);
    if (!args) { fputs("mlcc: error: out of memory\n", stderr); exit(1); }
    args[0] = MLCC_PYTHON;
    args[1] = "-c";
    args[2] = MLCC_FALLBACK_CODE;
    args[3] = (char *)g_program;
    for (int i = 1; i < g_argc; i++) args[3 + i] = g_argv[i];
    execv(MLCC_PYTHON, args);
    fprintf(stderr, "mlcc: error: cannot run %s: %s\n", MLCC_PYTHON, strerror(errno));
    exit(127);
}

/* ---- where the server is ---------------------------------------------------- */

/* The private runtime directory (mlcc/user_dirs.py's rules), or 0. */
static int runtime_dir(char *out, size_t size) {
    const char *base = getenv("XDG_RUNTIME_DIR");
    int n = (base && *base) ? snprintf(out, size, "%s/mlcc", base)
                            : snprintf(out, size, "/tmp/mlcc-%ld", (long)getuid());
    if (n < 0 || (size_t)n >= size) return 0;
    if (mkdir(out, 0700) != 0 && errno != EEXIST) return 0;
    struct stat st;
    if (lstat(out, &st) != 0) return 0;
    return S_ISDIR(st.st_mode) && st.st_uid == getuid() && !(st.st_mode & 077);
}

/* Start a server for `sock` unless one is starting or failed to start lately; return
 * whether one is starting (this client started it, or another did under
 * MLCC_START_WAIT seconds ago and it has not said it failed). */
static int start_server(const char *sock) {
    char marker[PATH_MAX];
    if (snprintf(marker, sizeof marker, "%s.spawned", sock) >= (int)sizeof marker) return 0;
    for (int attempt = 0;; attempt++) {
        int fd = open(marker, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0) { close(fd); break; }
        struct stat st;
        if (errno != EEXIST || attempt > 0 || stat(marker, &st) != 0) return 0;
        time_t age = time(NULL) - st.st_mtime;
        if (age < MLCC_RETRY_AFTER)  /* starting (empty), or failed to start (not empty) */
            return st.st_size == 0 && age < MLCC_START_WAIT;
        unlink(marker);
    }
    pid_t pid = fork();
    if (pid < 0) { unlink(marker); return 0; }
    if (pid == 0) {
        setsid();
        if (fork() != 0) _exit(0);
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) { dup2(null, 0); dup2(null, 1); dup2(null, 2); if (null > 2) close(null); }
        if (chdir("/") != 0) _exit(1);
        restore_signals();
        char *args[] = {MLCC_PYTHON, "-c", MLCC_SERVER_CODE, (char *)sock, NULL};
        execv(MLCC_PYTHON, args);
        _exit(127);
    }
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
    return 1;
}

/* A socket connected to the server that is starting at `addr`, polled until it
 * listens; -1 when it has not within MLCC_START_WAIT seconds of its start, or says
 * it failed. Waiting costs no CPU; the command as Python in this process costs more
 * than the server takes to come up, and would start a model server of its own. */
static int wait_for_server(const struct sockaddr_un *addr) {
    char marker[PATH_MAX];
    if (snprintf(marker, sizeof marker, "%s.spawned", addr->sun_path) >= (int)sizeof marker) return -1;
    struct timespec five_ms = {0, 5 * 1000 * 1000};
    for (int gone = 0; !gone;) {
        nanosleep(&five_ms, NULL);
        struct stat st;
        gone = stat(marker, &st) != 0;  /* the server listens (or one ran already) */
        if (!gone && (st.st_size != 0 || time(NULL) - st.st_mtime >= MLCC_START_WAIT)) return -1;
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) return -1;
        if (connect(fd, (const struct sockaddr *)addr, sizeof *addr) == 0) return fd;
        close(fd);
    }
    return -1;
}

/* ---- talking to the server -------------------------------------------------- */

static void on_signal(int sig) {
    g_pending = sig;
    if (g_child > 0) kill(g_child, sig);
}

static void catch_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < N_FORWARDED; i++) {
        sigaction(k_forwarded[i], NULL, &g_old_actions[i]);
        /* a signal the caller ignores (a background job's SIGINT) stays ignored */
        if (g_old_actions[i].sa_handler != SIG_IGN) sigaction(k_forwarded[i], &sa, NULL);
    }
}

static int read_full(int fd, void *data, size_t len) {
    char *p = data;
    while (len) {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return 0;
        p += n;
        len -= (size_t)n;
    }
    return 1;
}

static int send_request(int fd) {
    struct buf body = {0};
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) return 0;
    mode_t mask = umask(0);
    umask(mask);
    errno = 0;
    int nice = getpriority(PRIO_PROCESS, 0);
    if (errno) nice = 0;
    put_str(&body, g_program);
    put_str(&body, cwd);
    put_str(&body, MLCC_DEFAULT_DRIVER);
    put_num(&body, (long)mask);
    put_num(&body, (long)getpgrp());
    put_num(&body, nice);
    put_num(&body, g_argc - 1);
    for (int i = 1; i < g_argc; i++) put_str(&body, g_argv[i]);
    long envc = 0;
    for (char **e = environ; *e; e++) envc++;
    put_num(&body, envc);
    for (char **e = environ; *e; e++) put_str(&body, *e);

    struct buf msg = {0};
    uint32_t header[2] = {MLCC_PROTOCOL, (uint32_t)body.len};  /* little-endian hosts */
    put(&msg, "MLCC", 4);
    put(&msg, header, sizeof header);
    put(&msg, body.data, body.len);
    free(body.data);

    int fds[3] = {0, 1, 2};
    union { char buf[CMSG_SPACE(sizeof fds)]; struct cmsghdr align; } control;
    memset(&control, 0, sizeof control);
    size_t first = msg.len < 65536 ? msg.len : 65536;
    struct iovec iov = {msg.data, first};
    struct msghdr mh;
    memset(&mh, 0, sizeof mh);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = control.buf;
    mh.msg_controllen = sizeof control.buf;
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof fds);
    memcpy(CMSG_DATA(c), fds, sizeof fds);
    ssize_t n;
    while ((n = sendmsg(fd, &mh, MSG_NOSIGNAL)) < 0 && errno == EINTR) {}
    size_t sent = n > 0 ? (size_t)n : 0;
    int ok = n > 0;
    while (ok && sent < msg.len) {
        n = send(fd, msg.data + sent, msg.len - sent, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) ok = 0; else sent += (size_t)n;
    }
    free(msg.data);
    return ok;
}

/* Wait (at most 2 s) until a child the dead server left has gone: a rerun of the
 * command must not race it. */
static void wait_gone(pid_t pid) {
    for (int i = 0; i < 200 && kill(pid, 0) == 0; i++) {
        struct timespec ten_ms = {0, 10 * 1000 * 1000};
        nanosleep(&ten_ms, NULL);
    }
}

/* The command through the server; returns only to fall back to this process. */
static void run_in_server(int fd, const char *sock) {
    catch_signals();
    /* A stale server answers "R" and hangs up without reading: a slow client's request
     * then fails to send, and that answer still waits to be read. Either way the
     * server now sees the request end. */
    if (!send_request(fd)) shutdown(fd, SHUT_WR);
    sigset_t forwarded, old;
    sigemptyset(&forwarded);
    for (size_t i = 0; i < N_FORWARDED; i++) sigaddset(&forwarded, k_forwarded[i]);
    for (;;) {
        unsigned char head[5];
        if (!read_full(fd, head, sizeof head)) break;
        uint32_t len;
        memcpy(&len, head + 1, 4);
        char *payload = malloc((size_t)len + 1);
        if (!payload || !read_full(fd, payload, len)) break;
        payload[len] = 0;
        int32_t value = 0;
        if (len >= 4) memcpy(&value, payload, 4);
        switch (head[0]) {
        case 'P':  /* the child's pid: signals go there */
            sigprocmask(SIG_BLOCK, &forwarded, &old);
            g_child = value;
            if (g_pending) kill(g_child, g_pending);
            sigprocmask(SIG_SETMASK, &old, NULL);
            break;
        case 'X':
            exit(value);
        case 'K':
            g_pending = value;
            die_of_pending();
            break;
        case 'E': {  /* exec these arguments (NUL-separated) here */
            size_t count = 1;
            for (uint32_t i = 0; i < len; i++) count += payload[i] == 0;
            char **args = calloc(count + 1, sizeof *args);
            if (!args) break;
            size_t k = 0;
            for (char *p = payload; p < payload + len + 1; p += strlen(p) + 1) args[k++] = p;
            die_of_pending();
            restore_signals();
            execv(args[0], args);
            fprintf(stderr, "mlcc: error: cannot run %s: %s\n", args[0], strerror(errno));
            exit(127);
        }
        case 'R':  /* the server runs stale code and has stopped: start a new one */
            start_server(sock);
            /* fall through */
        case 'F':  /* the server says: run it yourself */
            close(fd);
            run_in_process();
            break;
        default:
            break;
        }
        free(payload);
    }
    /* the server went away during the command: rerun it here */
    close(fd);
    if (g_child > 0) wait_gone(g_child);
    die_of_pending();
}

static const char *program_path(const char *argv0) {
    /* Python's sys.argv[0] for a console script: the path the shell found. */
    if (strchr(argv0, '/')) return argv0;
    const char *path = getenv("PATH");
    static char found[PATH_MAX];
    while (path && *path) {
        const char *end = strchr(path, ':');
        size_t n = end ? (size_t)(end - path) : strlen(path);
        int len = snprintf(found, sizeof found, "%.*s/%s", (int)n, n ? path : ".", argv0);
        if (len > 0 && (size_t)len < sizeof found && access(found, X_OK) == 0) return found;
        path = end ? end + 1 : NULL;
    }
    ssize_t len = readlink("/proc/self/exe", found, sizeof found - 1);
    if (len <= 0) return argv0;
    found[len] = 0;
    return found;
}

static int server_off(void) {
    const char *v = getenv("MLCC_COMPILE_SERVER");  /* settings.py's false values */
    if (!v) return 0;
    while (*v == ' ' || *v == '\t') v++;
    char word[8];
    size_t n = 0;
    while (v[n] && v[n] != ' ' && v[n] != '\t' && n < sizeof word - 1) {
        word[n] = (char)(v[n] >= 'A' && v[n] <= 'Z' ? v[n] + 32 : v[n]);
        n++;
    }
    word[n] = 0;
    return !strcmp(word, "0") || !strcmp(word, "false") || !strcmp(word, "no")
        || !strcmp(word, "off") || !strcmp(word, "");
}

int main(int argc, char **argv) {
    g_argc = argc;
    g_argv = argv;
    /* closed standard streams get /dev/null first, so no socket lands there */
    for (int fd = 0; fd < 3; fd++) {
        if (fcntl(fd, F_GETFD) < 0) {
            int null = open("/dev/null", O_RDWR);
            if (null >= 0 && null != fd) { dup2(null, fd); close(null); }
        }
    }
    g_program = program_path(argc > 0 ? argv[0] : "mlcc");
    if (argc < 1 || server_off()) run_in_process();

    char dir[PATH_MAX], sock[PATH_MAX];
    struct sockaddr_un addr;
    if (!runtime_dir(dir, sizeof dir)) run_in_process();
    int n = snprintf(sock, sizeof sock, "%s/%s", dir, MLCC_SOCKET_NAME);
    if (n < 0 || (size_t)n >= sizeof addr.sun_path) run_in_process();

    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) run_in_process();
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    memcpy(addr.sun_path, sock, (size_t)n + 1);
    int rc;
    while ((rc = connect(fd, (struct sockaddr *)&addr, sizeof addr)) < 0 && errno == EINTR) {}
    if (rc < 0) {
        int starting = 0;
        if (errno == ENOENT || errno == ECONNREFUSED || errno == ENOTSOCK) starting = start_server(sock);
        close(fd);
        fd = starting ? wait_for_server(&addr) : -1;
        if (fd < 0) run_in_process();
    }
    run_in_server(fd, sock);
    run_in_process();
    return 1;
}
