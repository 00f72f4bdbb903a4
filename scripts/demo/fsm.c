/* A protocol state machine: parses HTTP/1.1-style request heads byte by byte
 * (request line, headers, optional chunked body) without buffering the whole
 * message, as a small embedded server would. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum state {
    S_METHOD, S_TARGET, S_VERSION, S_VERSION_LF, S_HEADER_START, S_HEADER_NAME,
    S_HEADER_SPACE, S_HEADER_VALUE, S_HEADER_LF, S_HEAD_END_LF, S_BODY,
    S_CHUNK_SIZE, S_CHUNK_EXT, S_CHUNK_SIZE_LF, S_CHUNK_DATA, S_CHUNK_DATA_CR,
    S_CHUNK_DATA_LF, S_DONE, S_ERROR
};

enum method { M_UNKNOWN, M_GET, M_HEAD, M_POST, M_PUT, M_DELETE, M_OPTIONS, M_PATCH };

enum error {
    E_NONE, E_BAD_METHOD, E_TARGET_TOO_LONG, E_BAD_VERSION, E_HEADER_TOO_LONG,
    E_TOO_MANY_HEADERS, E_BAD_LENGTH, E_BAD_CHUNK, E_UNEXPECTED_BYTE
};

struct header {
    char name[32];
    char value[96];
};

struct request {
    enum state state;
    enum error error;
    enum method method;
    char method_text[12];
    char target[128];
    int version_minor;
    struct header headers[16];
    int nheaders;
    size_t len;             /* of the token being read */
    uint64_t content_length;
    uint64_t body_seen;
    uint64_t chunk_left;
    int chunked;
    int keep_alive;
    void (*on_body)(void *ctx, const uint8_t *data, size_t len);
    void *ctx;
};

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static int name_is(const char *a, const char *b)
{
    while (*a && *b)
        if (lower((unsigned char)*a++) != lower((unsigned char)*b++))
            return 0;
    return *a == *b;
}

static enum method method_of(const char *s)
{
    static const struct { const char *name; enum method m; } table[] = {
        { "GET", M_GET }, { "HEAD", M_HEAD }, { "POST", M_POST }, { "PUT", M_PUT },
        { "DELETE", M_DELETE }, { "OPTIONS", M_OPTIONS }, { "PATCH", M_PATCH },
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(s, table[i].name) == 0)
            return table[i].m;
    return M_UNKNOWN;
}

static int hex_value(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = lower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static enum state fail(struct request *r, enum error e)
{
    r->error = e;
    return S_ERROR;
}

/* What the headers say about the body and the connection. */
static enum state end_of_head(struct request *r)
{
    r->keep_alive = r->version_minor >= 1;
    for (int i = 0; i < r->nheaders; i++) {
        const struct header *h = &r->headers[i];
        if (name_is(h->name, "content-length")) {
            uint64_t v = 0;
            const char *p = h->value;
            if (!*p)
                return fail(r, E_BAD_LENGTH);
            for (; *p; p++) {
                if (*p < '0' || *p > '9' || v > UINT64_MAX / 10)
                    return fail(r, E_BAD_LENGTH);
                v = v * 10 + (uint64_t)(*p - '0');
            }
            r->content_length = v;
        } else if (name_is(h->name, "transfer-encoding")) {
            r->chunked = name_is(h->value, "chunked");
        } else if (name_is(h->name, "connection")) {
            if (name_is(h->value, "close"))
                r->keep_alive = 0;
            else if (name_is(h->value, "keep-alive"))
                r->keep_alive = 1;
        }
    }
    if (r->chunked)
        return S_CHUNK_SIZE;
    return r->content_length ? S_BODY : S_DONE;
}

static enum state step(struct request *r, uint8_t c)
{
    struct header *h = &r->headers[r->nheaders];
    switch (r->state) {
    case S_METHOD:
        if (c == ' ') {
            r->method_text[r->len] = '\0';
            r->method = method_of(r->method_text);
            r->len = 0;
            return r->method == M_UNKNOWN ? fail(r, E_BAD_METHOD) : S_TARGET;
        }
        if (c < 'A' || c > 'Z' || r->len + 1 >= sizeof r->method_text)
            return fail(r, E_BAD_METHOD);
        r->method_text[r->len++] = (char)c;
        return S_METHOD;
    case S_TARGET:
        if (c == ' ') {
            r->target[r->len] = '\0';
            r->len = 0;
            return S_VERSION;
        }
        if (c <= ' ' || r->len + 1 >= sizeof r->target)
            return fail(r, E_TARGET_TOO_LONG);
        r->target[r->len++] = (char)c;
        return S_TARGET;
    case S_VERSION: {
        static const char prefix[] = "HTTP/1.";
        if (r->len < sizeof prefix - 1) {
            if (c != (uint8_t)prefix[r->len])
                return fail(r, E_BAD_VERSION);
            r->len++;
            return S_VERSION;
        }
        if (r->len == sizeof prefix - 1 && c >= '0' && c <= '9') {
            r->version_minor = c - '0';
            r->len++;
            return S_VERSION;
        }
        if (c == '\r')
            return S_VERSION_LF;
        return fail(r, E_BAD_VERSION);
    }
    case S_VERSION_LF:
        r->len = 0;
        return c == '\n' ? S_HEADER_START : fail(r, E_UNEXPECTED_BYTE);
    case S_HEADER_START:
        if (c == '\r')
            return S_HEAD_END_LF;
        if (r->nheaders == (int)(sizeof r->headers / sizeof r->headers[0]))
            return fail(r, E_TOO_MANY_HEADERS);
        r->len = 0;
        /* fall through */
    case S_HEADER_NAME:
        if (c == ':') {
            h->name[r->len] = '\0';
            r->len = 0;
            return S_HEADER_SPACE;
        }
        if (c <= ' ' || r->len + 1 >= sizeof h->name)
            return fail(r, E_HEADER_TOO_LONG);
        h->name[r->len++] = (char)c;
        return S_HEADER_NAME;
    case S_HEADER_SPACE:
        if (c == ' ' || c == '\t')
            return S_HEADER_SPACE;
        /* fall through */
    case S_HEADER_VALUE:
        if (c == '\r') {
            while (r->len && h->value[r->len - 1] == ' ')
                r->len--;
            h->value[r->len] = '\0';
            r->nheaders++;
            return S_HEADER_LF;
        }
        if (r->len + 1 >= sizeof h->value)
            return fail(r, E_HEADER_TOO_LONG);
        h->value[r->len++] = (char)c;
        return S_HEADER_VALUE;
    case S_HEADER_LF:
        return c == '\n' ? S_HEADER_START : fail(r, E_UNEXPECTED_BYTE);
    case S_HEAD_END_LF:
        return c == '\n' ? end_of_head(r) : fail(r, E_UNEXPECTED_BYTE);
    case S_CHUNK_SIZE: {
        int d = hex_value(c);
        if (d >= 0) {
            if (r->chunk_left >> 60)
                return fail(r, E_BAD_CHUNK);
            r->chunk_left = r->chunk_left << 4 | (uint64_t)d;
            r->len++;
            return S_CHUNK_SIZE;
        }
        if (r->len == 0)
            return fail(r, E_BAD_CHUNK);
        if (c == ';')
            return S_CHUNK_EXT;
        return c == '\r' ? S_CHUNK_SIZE_LF : fail(r, E_BAD_CHUNK);
    }
    case S_CHUNK_EXT:
        return c == '\r' ? S_CHUNK_SIZE_LF : S_CHUNK_EXT;
    case S_CHUNK_SIZE_LF:
        if (c != '\n')
            return fail(r, E_BAD_CHUNK);
        r->len = 0;
        return r->chunk_left ? S_CHUNK_DATA : S_DONE;
    case S_CHUNK_DATA_CR:
        return c == '\r' ? S_CHUNK_DATA_LF : fail(r, E_BAD_CHUNK);
    case S_CHUNK_DATA_LF:
        return c == '\n' ? S_CHUNK_SIZE : fail(r, E_BAD_CHUNK);
    case S_BODY:
    case S_CHUNK_DATA:
    case S_DONE:
    case S_ERROR:
        break;
    }
    return fail(r, E_UNEXPECTED_BYTE);
}

void request_init(struct request *r, void (*on_body)(void *, const uint8_t *, size_t), void *ctx)
{
    memset(r, 0, sizeof *r);
    r->on_body = on_body;
    r->ctx = ctx;
}

/* Feeds bytes; returns how many were consumed (less than len once the
 * request is complete or broken: the rest belongs to the next request). */
size_t request_feed(struct request *r, const uint8_t *data, size_t len)
{
    size_t i = 0;
    while (i < len && r->state != S_DONE && r->state != S_ERROR) {
        if (r->state == S_BODY || r->state == S_CHUNK_DATA) {
            uint64_t want = r->state == S_BODY ? r->content_length - r->body_seen : r->chunk_left;
            size_t n = len - i < want ? len - i : (size_t)want;
            if (r->on_body)
                r->on_body(r->ctx, data + i, n);
            i += n;
            r->body_seen += n;
            if (r->state == S_BODY) {
                if (r->body_seen == r->content_length)
                    r->state = S_DONE;
            } else if ((r->chunk_left -= n) == 0) {
                r->state = S_CHUNK_DATA_CR;
            }
            continue;
        }
        r->state = step(r, data[i++]);
    }
    return i;
}

int request_done(const struct request *r)
{
    return r->state == S_DONE;
}

const char *request_error(const struct request *r)
{
    static const char *const names[] = {
        "none", "bad method", "target too long", "bad version", "header too long",
        "too many headers", "bad content length", "bad chunk", "unexpected byte",
    };
    return names[r->error];
}

const char *request_header(const struct request *r, const char *name)
{
    for (int i = 0; i < r->nheaders; i++)
        if (name_is(r->headers[i].name, name))
            return r->headers[i].value;
    return NULL;
}
