/* A command shell for a small device: a line is split into words, the first
 * names a command, a switch dispatches it, and each command checks its
 * arguments and reports through one output function. */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum command {
    CMD_HELP, CMD_SET, CMD_GET, CMD_UNSET, CMD_LIST, CMD_ADD, CMD_SUB, CMD_ECHO,
    CMD_REPEAT, CMD_LED, CMD_BAUD, CMD_RESET, CMD_STATUS, CMD_HISTORY, CMD_UNKNOWN
};

static const struct {
    const char *name;
    enum command cmd;
    int min_args, max_args;
    const char *usage;
} commands[] = {
    { "help", CMD_HELP, 0, 1, "help [command]" },
    { "set", CMD_SET, 2, 2, "set NAME VALUE" },
    { "get", CMD_GET, 1, 1, "get NAME" },
    { "unset", CMD_UNSET, 1, 1, "unset NAME" },
    { "list", CMD_LIST, 0, 0, "list" },
    { "add", CMD_ADD, 2, 8, "add N N..." },
    { "sub", CMD_SUB, 2, 2, "sub N N" },
    { "echo", CMD_ECHO, 0, 8, "echo WORD..." },
    { "repeat", CMD_REPEAT, 2, 2, "repeat COUNT WORD" },
    { "led", CMD_LED, 2, 2, "led 0-7 on|off|toggle" },
    { "baud", CMD_BAUD, 1, 1, "baud RATE" },
    { "reset", CMD_RESET, 0, 0, "reset" },
    { "status", CMD_STATUS, 0, 0, "status" },
    { "history", CMD_HISTORY, 0, 0, "history" },
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])
#define MAX_WORDS 10
#define MAX_SETTINGS 16
#define HISTORY 8

struct shell {
    char names[MAX_SETTINGS][16];
    long values[MAX_SETTINGS];
    int nsettings;
    uint8_t leds;
    long baud;
    unsigned commands_run, errors;
    char history[HISTORY][64];
    unsigned history_next;
    void (*write)(void *ctx, const char *text);
    void *ctx;
};

static void say(struct shell *sh, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void say(struct shell *sh, const char *fmt, ...)
{
    char buf[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    sh->write(sh->ctx, buf);
}

static int split(char *line, char *words[], int max)
{
    int n = 0;
    char *p = line;
    while (*p) {
        while (*p == ' ' || *p == '\t')
            *p++ = '\0';
        if (!*p)
            break;
        if (n == max)
            return -1;
        if (*p == '"') {
            words[n++] = ++p;
            while (*p && *p != '"')
                p++;
            if (*p)
                *p++ = '\0';
            continue;
        }
        words[n++] = p;
        while (*p && *p != ' ' && *p != '\t')
            p++;
    }
    return n;
}

static int parse_long(const char *s, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 0);
    if (errno || end == s || *end)
        return -1;
    *out = v;
    return 0;
}

static int find_setting(const struct shell *sh, const char *name)
{
    for (int i = 0; i < sh->nsettings; i++)
        if (strcmp(sh->names[i], name) == 0)
            return i;
    return -1;
}

static enum command lookup(const char *name, int *index)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0) {
            *index = (int)i;
            return commands[i].cmd;
        }
    return CMD_UNKNOWN;
}

static int run(struct shell *sh, enum command cmd, int argc, char *argv[])
{
    long a, b;
    int i;
    switch (cmd) {
    case CMD_HELP:
        if (argc == 1) {
            if (lookup(argv[0], &i) == CMD_UNKNOWN)
                return say(sh, "no such command: %s", argv[0]), -1;
            say(sh, "usage: %s", commands[i].usage);
            return 0;
        }
        for (size_t k = 0; k < NCOMMANDS; k++)
            say(sh, "  %s", commands[k].usage);
        return 0;
    case CMD_SET:
        if (parse_long(argv[1], &a))
            return say(sh, "not a number: %s", argv[1]), -1;
        i = find_setting(sh, argv[0]);
        if (i < 0) {
            if (sh->nsettings == MAX_SETTINGS || strlen(argv[0]) >= sizeof sh->names[0])
                return say(sh, "no room for %s", argv[0]), -1;
            i = sh->nsettings++;
            strcpy(sh->names[i], argv[0]);
        }
        sh->values[i] = a;
        return 0;
    case CMD_GET:
        i = find_setting(sh, argv[0]);
        if (i < 0)
            return say(sh, "%s is not set", argv[0]), -1;
        say(sh, "%s = %ld", argv[0], sh->values[i]);
        return 0;
    case CMD_UNSET:
        i = find_setting(sh, argv[0]);
        if (i < 0)
            return say(sh, "%s is not set", argv[0]), -1;
        sh->nsettings--;
        memmove(sh->names[i], sh->names[i + 1], (size_t)(sh->nsettings - i) * sizeof sh->names[0]);
        memmove(&sh->values[i], &sh->values[i + 1], (size_t)(sh->nsettings - i) * sizeof sh->values[0]);
        return 0;
    case CMD_LIST:
        for (i = 0; i < sh->nsettings; i++)
            say(sh, "%-15s %ld", sh->names[i], sh->values[i]);
        return 0;
    case CMD_ADD:
        for (a = 0, i = 0; i < argc; i++) {
            if (parse_long(argv[i], &b))
                return say(sh, "not a number: %s", argv[i]), -1;
            a += b;
        }
        say(sh, "%ld", a);
        return 0;
    case CMD_SUB:
        if (parse_long(argv[0], &a) || parse_long(argv[1], &b))
            return say(sh, "sub needs two numbers"), -1;
        say(sh, "%ld", a - b);
        return 0;
    case CMD_ECHO: {
        char buf[128];
        size_t n = 0;
        buf[0] = '\0';
        for (i = 0; i < argc && n < sizeof buf; i++)
            n += (size_t)snprintf(buf + n, sizeof buf - n, i ? " %s" : "%s", argv[i]);
        say(sh, "%s", buf);
        return 0;
    }
    case CMD_REPEAT:
        if (parse_long(argv[0], &a) || a < 0 || a > 20)
            return say(sh, "count must be 0 to 20"), -1;
        while (a--)
            say(sh, "%s", argv[1]);
        return 0;
    case CMD_LED:
        if (parse_long(argv[0], &a) || a < 0 || a > 7)
            return say(sh, "led must be 0 to 7"), -1;
        if (strcmp(argv[1], "on") == 0)
            sh->leds |= (uint8_t)(1u << a);
        else if (strcmp(argv[1], "off") == 0)
            sh->leds &= (uint8_t)~(1u << a);
        else if (strcmp(argv[1], "toggle") == 0)
            sh->leds ^= (uint8_t)(1u << a);
        else
            return say(sh, "led: on, off or toggle"), -1;
        return 0;
    case CMD_BAUD:
        if (parse_long(argv[0], &a))
            return say(sh, "not a number: %s", argv[0]), -1;
        switch (a) {
        case 9600: case 19200: case 38400: case 57600: case 115200: case 230400: case 460800:
            sh->baud = a;
            return 0;
        default:
            return say(sh, "unsupported rate %ld", a), -1;
        }
    case CMD_RESET:
        sh->nsettings = 0;
        sh->leds = 0;
        sh->baud = 115200;
        say(sh, "reset");
        return 0;
    case CMD_STATUS:
        say(sh, "%u commands, %u errors, %d settings, leds %02x, %ld baud",
            sh->commands_run, sh->errors, sh->nsettings, sh->leds, sh->baud);
        return 0;
    case CMD_HISTORY:
        for (unsigned k = 0; k < HISTORY; k++) {
            const char *h = sh->history[(sh->history_next + k) % HISTORY];
            if (*h)
                say(sh, "%s", h);
        }
        return 0;
    case CMD_UNKNOWN:
        break;
    }
    return -1;
}

void shell_init(struct shell *sh, void (*write)(void *, const char *), void *ctx)
{
    memset(sh, 0, sizeof *sh);
    sh->baud = 115200;
    sh->write = write;
    sh->ctx = ctx;
}

/* Runs one line; returns 0 on success, -1 on an error it has reported. */
int shell_line(struct shell *sh, const char *text)
{
    char line[128];
    char *words[MAX_WORDS];
    int index;
    snprintf(line, sizeof line, "%s", text);
    line[strcspn(line, "\r\n")] = '\0';
    snprintf(sh->history[sh->history_next++ % HISTORY], sizeof sh->history[0], "%s", line);
    int n = split(line, words, MAX_WORDS);
    if (n <= 0) {
        if (n < 0)
            say(sh, "too many words");
        return n;
    }
    sh->commands_run++;
    enum command cmd = lookup(words[0], &index);
    int result;
    if (cmd == CMD_UNKNOWN) {
        say(sh, "unknown command %s (try help)", words[0]);
        result = -1;
    } else if (n - 1 < commands[index].min_args || n - 1 > commands[index].max_args) {
        say(sh, "usage: %s", commands[index].usage);
        result = -1;
    } else {
        result = run(sh, cmd, n - 1, words + 1);
    }
    if (result)
        sh->errors++;
    return result;
}
