/* mlcc's clang fork server: a clang that starts once and forks itself per command.
 *
 * Debian's clang spends about 40 ms of CPU before its main() runs: the dynamic
 * loader relocates libLLVM and libclang-cpp (half a million relocations, thousands
 * of pages copied on write) and their static constructors register LLVM's options.
 * mlcc runs clang several times per unit (front end, builds, code generation), so
 * that start-up is a large share of a build's CPU.
 *
 * Loaded into clang with LD_PRELOAD and MLCC_FORK_SERVER_SOCKET set, this library
 * takes clang's main() from __libc_start_main and, instead of running it, listens
 * on that Unix socket. For each request it forks; the child takes on the request's
 * streams, directory, umask and environment, starts a session of its own and runs
 * clang's real main() with the request's arguments: the process clang's own exec
 * would be, minus the start-up. The parent never runs main(), so every child starts
 * from clang's untouched initial state. Without MLCC_FORK_SERVER_SOCKET the library
 * changes nothing.
 *
 * Protocol (one connection per command, mlcc/fork_server.py is the other side):
 *   request  "MLFS", u32 length, then NUL-terminated fields: working directory,
 *            umask, argument count, arguments, environment count, entries;
 *            fds 0, 1, 2 for the command attached to the first bytes (SCM_RIGHTS).
 *   answer   i32 pid of the command (0: refused, see below), later its i32 wait
 *            status; then the server hangs up.
 * A client that hangs up (or writes) while its command runs gets the command's
 * process group killed. The server exits when its parent does, and refuses (pid 0)
 * and exits when a file it has mapped (clang, libLLVM, ...) was replaced on disk:
 * a newer clang must not be answered by the old one in memory.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

typedef int (*main_fn)(int, char **, char **);
typedef int (*start_fn)(main_fn, int, char **, void (*)(void), void (*)(void),
                        void (*)(void), void *);

#define SOCKET_VARIABLE "MLCC_FORK_SERVER_SOCKET"
#define MAX_REQUEST (16u << 20)
#define MAX_COMMANDS 64
#define MAX_MAPPED 64
#define REQUEST_WAIT_SECONDS 2

static main_fn clang_main;
static int wake_pipe[2] = {-1, -1};

/* the files mapped when the server started (clang and its libraries) */
static struct mapped { dev_t dev; ino_t ino; char path[256]; } mapped[MAX_MAPPED];
static int mapped_count;

/* commands running: their connection and pid */
static struct command { int conn; pid_t pid; int killed; } commands[MAX_COMMANDS];
static int command_count;
static int listener = -1;

static void on_child(int signum)
{
    (void)signum;
    int saved = errno;
    ssize_t ignored = write(wake_pipe[1], "c", 1);
    (void)ignored;
    errno = saved;
}

static void remember_mapped_files(void)
{
    FILE *maps = fopen("/proc/self/maps", "re");
    if (!maps)
        return;
    char line[512];
    while (fgets(line, sizeof line, maps) && mapped_count < MAX_MAPPED) {
        unsigned long inode = 0;
        char path[256] = "";
        if (sscanf(line, "%*s %*s %*s %*s %lu %255s", &inode, path) != 2 || inode == 0
            || path[0] != '/')
            continue;
        struct stat st;
        if (stat(path, &st) != 0 || st.st_ino != (ino_t)inode)
            continue;
        int known = 0;
        for (int i = 0; i < mapped_count; i++)
            known |= mapped[i].ino == st.st_ino && mapped[i].dev == st.st_dev;
        if (known)
            continue;
        mapped[mapped_count].dev = st.st_dev;
        mapped[mapped_count].ino = st.st_ino;
        snprintf(mapped[mapped_count].path, sizeof mapped[0].path, "%s", path);
        mapped_count++;
    }
    fclose(maps);
}

static int mapped_files_changed(void)
{
    for (int i = 0; i < mapped_count; i++) {
        struct stat st;
        if (stat(mapped[i].path, &st) != 0 || st.st_ino != mapped[i].ino
            || st.st_dev != mapped[i].dev)
            return 1;
    }
    return 0;
}

static int read_full(int fd, char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = read(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static void send_int(int conn, int32_t value)
{
    ssize_t ignored = send(conn, &value, sizeof value, MSG_NOSIGNAL);
    (void)ignored;
}

/* The request's header with its three descriptors, then its fields; NULL on a bad one. */
static char *read_request(int conn, int fds[3], uint32_t *length)
{
    char head[8];
    char control[CMSG_SPACE(3 * sizeof(int))];
    struct iovec iov = {head, sizeof head};
    struct msghdr msg = {0};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n;
    do
        n = recvmsg(conn, &msg, MSG_CMSG_CLOEXEC | MSG_WAITALL);
    while (n < 0 && errno == EINTR);
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    int got = 0;
    if (cmsg && cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS) {
        got = (int)((cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        memcpy(fds, CMSG_DATA(cmsg), (size_t)(got < 3 ? got : 3) * sizeof(int));
        for (int i = 3; i < got; i++)
            close(((int *)CMSG_DATA(cmsg))[i]);
    }
    if (n != (ssize_t)sizeof head || got < 3 || memcmp(head, "MLFS", 4) != 0)
        goto bad;
    memcpy(length, head + 4, 4);
    if (*length == 0 || *length > MAX_REQUEST)
        goto bad;
    char *body = malloc(*length);
    if (!body)
        goto bad;
    if (read_full(conn, body, *length) != 0 || body[*length - 1] != '\0') {
        free(body);
        goto bad;
    }
    return body;
bad:
    for (int i = 0; i < got && i < 3; i++)
        close(fds[i]);
    return NULL;
}

/* The field at *p, moving *p past it; NULL when the request ends before it. */
static char *next_field(char **p, char *end)
{
    if (*p >= end)
        return NULL;
    char *field = *p;
    *p += strlen(field) + 1;
    return field;
}

/* A count field, then that many fields, as a NULL-terminated array (the count in
   *count when asked); NULL for a count under `least` or fields missing. */
static char **field_list(char **p, char *end, long least, int *count)
{
    char *text = next_field(p, end);
    long n = text ? strtol(text, NULL, 10) : -1;
    if (n < least || n > 100000)
        return NULL;
    char **list = calloc((size_t)n + 1, sizeof(char *));
    for (long i = 0; list && i < n; i++)
        if (!(list[i] = next_field(p, end))) {
            free(list);
            return NULL;
        }
    if (count)
        *count = (int)n;
    return list;
}

/* Split the request's fields (the body ends with a NUL); 0 when they are all there. */
static int parse_fields(char *body, uint32_t length, char **cwd, mode_t *umask_value,
                        char ***argv, int *argc, char ***envp)
{
    char *p = body, *end = body + length, *umask_text;
    if (!(*cwd = next_field(&p, end)) || !(umask_text = next_field(&p, end)))
        return -1;
    *umask_value = (mode_t)strtoul(umask_text, NULL, 8);
    *argv = field_list(&p, end, 1, argc);
    *envp = *argv ? field_list(&p, end, 0, NULL) : NULL;
    return *argv && *envp ? 0 : -1;
}

/* In the forked child: become the command and run clang; never returns. */
static void run_command(int fds[3], const char *cwd, mode_t umask_value, int argc, char **argv,
                        char **envp, pid_t server)
{
    for (int i = 0; i < 3; i++)
        if (fds[i] != i && dup2(fds[i], i) < 0)
            _exit(127);
    close_range(3, ~0u, 0);  /* the received copies, the listener, other connections */
    struct sigaction dfl = {0};
    dfl.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; s++)
        sigaction(s, &dfl, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    setsid();  /* as mlcc's run_tool starts a tool: a timeout kills its group */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != server)
        _exit(127);
    if (chdir(cwd) != 0) {
        dprintf(2, "mlcc: fork server: cannot enter %s: %s\n", cwd, strerror(errno));
        _exit(127);
    }
    umask(umask_value);
    environ = envp;
    exit(clang_main(argc, argv, environ));
}

static void forget(int index)
{
    close(commands[index].conn);
    commands[index] = commands[--command_count];
}

static void accept_command(void)
{
    int conn = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
    if (conn < 0)
        return;
    struct ucred peer;
    socklen_t len = sizeof peer;
    if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &peer, &len) != 0 || peer.uid != getuid()) {
        close(conn);
        return;
    }
    if (mapped_files_changed()) {
        /* stale: no more commands; the ones running finish, then the server exits and
           the compile server starts a new one */
        send_int(conn, 0);
        close(conn);
        close(listener);
        listener = -1;
        return;
    }
    if (command_count == MAX_COMMANDS) {
        send_int(conn, 0);
        close(conn);
        return;
    }
    struct timeval wait = {REQUEST_WAIT_SECONDS, 0};
    setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
    int fds[3] = {-1, -1, -1};
    uint32_t length = 0;
    char *body = read_request(conn, fds, &length);
    char *cwd = NULL, **argv = NULL, **envp = NULL;
    mode_t umask_value = 022;
    int argc = 0;
    pid_t pid = -1;
    if (body && parse_fields(body, length, &cwd, &umask_value, &argv, &argc, &envp) == 0) {
        pid_t server = getpid();
        pid = fork();
        if (pid == 0)
            run_command(fds, cwd, umask_value, argc, argv, envp, server);
    }
    for (int i = 0; body && i < 3; i++)
        close(fds[i]);
    free(body);
    free(argv);
    free(envp);
    if (pid <= 0) {
        send_int(conn, 0);
        close(conn);
        return;
    }
    send_int(conn, (int32_t)pid);
    commands[command_count].conn = conn;
    commands[command_count].pid = pid;
    commands[command_count].killed = 0;
    command_count++;
}

static void reap(void)
{
    char drain[64];
    while (read(wake_pipe[0], drain, sizeof drain) > 0)
        ;
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
        for (int i = 0; i < command_count; i++)
            if (commands[i].pid == pid) {
                send_int(commands[i].conn, status);
                forget(i);
                break;
            }
}

static int serve(int argc, char **argv, char **envp)
{
    (void)argc, (void)argv, (void)envp;
    const char *path = getenv(SOCKET_VARIABLE);
    pid_t parent = getppid();
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent)
        return 0;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof addr.sun_path) {
        fprintf(stderr, "mlcc: fork server: socket path too long\n");
        return 1;
    }
    strcpy(addr.sun_path, path);
    remember_mapped_files();
    if (pipe2(wake_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
        return 1;
    struct sigaction on = {0};
    on.sa_handler = on_child;
    on.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    sigaction(SIGCHLD, &on, NULL);
    listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listener < 0)
        return 1;
    unlink(path);
    mode_t old = umask(077);
    int bound = bind(listener, (struct sockaddr *)&addr, sizeof addr);
    umask(old);
    if (bound != 0 || listen(listener, 64) != 0) {
        fprintf(stderr, "mlcc: fork server: cannot listen on %s: %s\n", path, strerror(errno));
        return 1;
    }
    while (listener >= 0 || command_count > 0) {
        struct pollfd polled[MAX_COMMANDS + 2];
        polled[0] = (struct pollfd){.fd = listener, .events = POLLIN};
        polled[1] = (struct pollfd){.fd = wake_pipe[0], .events = POLLIN};
        for (int i = 0; i < command_count; i++)
            polled[i + 2] = (struct pollfd){.fd = commands[i].killed ? -1 : commands[i].conn,
                                            .events = POLLIN};
        int count = command_count;
        if (poll(polled, (nfds_t)count + 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            return 1;
        }
        if (polled[1].revents)
            reap();
        /* a client that hung up or wrote while its command runs: stop the command
           (its status is sent, to nobody, when it is reaped) */
        for (int i = 0; i < count && i < command_count; i++)
            if (polled[i + 2].revents && polled[i + 2].fd == commands[i].conn) {
                kill(-commands[i].pid, SIGKILL);
                commands[i].killed = 1;
            }
        if (listener >= 0 && polled[0].revents)
            accept_command();
    }
    return 0;
}

int __libc_start_main(main_fn main, int argc, char **argv, void (*init)(void),
                      void (*fini)(void), void (*rtld_fini)(void), void *stack_end)
{
    start_fn real = (start_fn)dlsym(RTLD_NEXT, "__libc_start_main");
    clang_main = main;
    const char *path = getenv(SOCKET_VARIABLE);
    return real(path && *path ? serve : main, argc, argv, init, fini, rtld_fini, stack_end);
}
