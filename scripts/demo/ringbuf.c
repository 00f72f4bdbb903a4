/* A byte ring buffer with framing: messages are written as length-prefixed
 * frames guarded by a CRC, and read back with their checksum verified. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct ring {
    uint8_t *data;
    size_t capacity; /* a power of two */
    size_t head;     /* next byte to read */
    size_t tail;     /* next byte to write */
    unsigned long dropped;
};

static uint32_t crc32_table[256];
static uint16_t crc16_table[256];
static int tables_ready;

static void make_tables(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc32_table[i] = c;
        uint16_t h = (uint16_t)(i << 8);
        for (int k = 0; k < 8; k++)
            h = h & 0x8000 ? (uint16_t)((h << 1) ^ 0x1021) : (uint16_t)(h << 1);
        crc16_table[i] = h;
    }
    tables_ready = 1;
}

uint32_t crc32_update(uint32_t crc, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    if (!tables_ready)
        make_tables();
    crc = ~crc;
    while (len--)
        crc = crc32_table[(crc ^ *p++) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

uint16_t crc16_ccitt(uint16_t crc, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    if (!tables_ready)
        make_tables();
    while (len--)
        crc = (uint16_t)((crc << 8) ^ crc16_table[((crc >> 8) ^ *p++) & 0xFF]);
    return crc;
}

uint32_t adler32(const void *buf, size_t len)
{
    const uint8_t *p = buf;
    uint32_t a = 1, b = 0;
    while (len) {
        size_t n = len < 5552 ? len : 5552;
        len -= n;
        while (n--) {
            a += *p++;
            b += a;
        }
        a %= 65521;
        b %= 65521;
    }
    return (b << 16) | a;
}

uint32_t fletcher32(const uint16_t *words, size_t count)
{
    uint32_t s1 = 0xFFFF, s2 = 0xFFFF;
    while (count) {
        size_t n = count > 359 ? 359 : count;
        count -= n;
        do {
            s1 += *words++;
            s2 += s1;
        } while (--n);
        s1 = (s1 & 0xFFFF) + (s1 >> 16);
        s2 = (s2 & 0xFFFF) + (s2 >> 16);
    }
    s1 = (s1 & 0xFFFF) + (s1 >> 16);
    s2 = (s2 & 0xFFFF) + (s2 >> 16);
    return s2 << 16 | s1;
}

int ring_init(struct ring *r, uint8_t *storage, size_t capacity)
{
    if (capacity == 0 || (capacity & (capacity - 1)) != 0)
        return -1;
    r->data = storage;
    r->capacity = capacity;
    r->head = r->tail = 0;
    r->dropped = 0;
    return 0;
}

size_t ring_used(const struct ring *r)
{
    return r->tail - r->head;
}

size_t ring_free(const struct ring *r)
{
    return r->capacity - ring_used(r);
}

size_t ring_write(struct ring *r, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    size_t room = ring_free(r);
    if (len > room) {
        r->dropped += len - room;
        len = room;
    }
    size_t at = r->tail & (r->capacity - 1);
    size_t first = r->capacity - at < len ? r->capacity - at : len;
    memcpy(r->data + at, p, first);
    memcpy(r->data, p + first, len - first);
    r->tail += len;
    return len;
}

size_t ring_peek(const struct ring *r, size_t offset, void *buf, size_t len)
{
    uint8_t *p = buf;
    size_t used = ring_used(r);
    if (offset >= used)
        return 0;
    if (len > used - offset)
        len = used - offset;
    size_t at = (r->head + offset) & (r->capacity - 1);
    size_t first = r->capacity - at < len ? r->capacity - at : len;
    memcpy(p, r->data + at, first);
    memcpy(p + first, r->data, len - first);
    return len;
}

size_t ring_read(struct ring *r, void *buf, size_t len)
{
    size_t n = ring_peek(r, 0, buf, len);
    r->head += n;
    return n;
}

void ring_skip(struct ring *r, size_t len)
{
    size_t used = ring_used(r);
    r->head += len < used ? len : used;
}

/* A frame: 0x7E, length (2 bytes, little endian), type, payload, CRC-16 of
 * length, type and payload (2 bytes). */
enum { FRAME_START = 0x7E, FRAME_OVERHEAD = 6, FRAME_MAX_PAYLOAD = 1024 };

enum frame_status { FRAME_OK, FRAME_INCOMPLETE, FRAME_BAD_CRC, FRAME_TOO_LONG, FRAME_NO_START };

int frame_write(struct ring *r, uint8_t type, const void *payload, uint16_t len)
{
    uint8_t header[4] = { FRAME_START, (uint8_t)(len & 0xFF), (uint8_t)(len >> 8), type };
    if (len > FRAME_MAX_PAYLOAD || ring_free(r) < (size_t)len + FRAME_OVERHEAD)
        return -1;
    uint16_t crc = crc16_ccitt(0xFFFF, header + 1, 3);
    crc = crc16_ccitt(crc, payload, len);
    uint8_t trailer[2] = { (uint8_t)(crc & 0xFF), (uint8_t)(crc >> 8) };
    ring_write(r, header, sizeof header);
    ring_write(r, payload, len);
    ring_write(r, trailer, sizeof trailer);
    return 0;
}

enum frame_status frame_read(struct ring *r, uint8_t *type, uint8_t *payload, uint16_t *len)
{
    uint8_t header[4];
    /* resynchronize on the start byte */
    while (ring_peek(r, 0, header, 1) == 1 && header[0] != FRAME_START)
        ring_skip(r, 1);
    if (ring_peek(r, 0, header, sizeof header) < sizeof header)
        return ring_used(r) ? FRAME_INCOMPLETE : FRAME_NO_START;
    uint16_t n = (uint16_t)(header[1] | header[2] << 8);
    if (n > FRAME_MAX_PAYLOAD) {
        ring_skip(r, 1);
        return FRAME_TOO_LONG;
    }
    if (ring_used(r) < (size_t)n + FRAME_OVERHEAD)
        return FRAME_INCOMPLETE;
    uint8_t trailer[2];
    ring_peek(r, sizeof header, payload, n);
    ring_peek(r, sizeof header + n, trailer, sizeof trailer);
    uint16_t crc = crc16_ccitt(0xFFFF, header + 1, 3);
    crc = crc16_ccitt(crc, payload, n);
    if (crc != (uint16_t)(trailer[0] | trailer[1] << 8)) {
        ring_skip(r, 1);
        return FRAME_BAD_CRC;
    }
    ring_skip(r, (size_t)n + FRAME_OVERHEAD);
    *type = header[3];
    *len = n;
    return FRAME_OK;
}

const char *frame_status_name(enum frame_status s)
{
    switch (s) {
    case FRAME_OK: return "ok";
    case FRAME_INCOMPLETE: return "incomplete";
    case FRAME_BAD_CRC: return "bad crc";
    case FRAME_TOO_LONG: return "too long";
    case FRAME_NO_START: return "no start byte";
    }
    return "unknown";
}

/* Counts frames of each type in a stream, as a receiver loop would. */
unsigned frame_census(struct ring *r, unsigned counts[256], unsigned *errors)
{
    static uint8_t payload[FRAME_MAX_PAYLOAD];
    unsigned frames = 0;
    uint8_t type;
    uint16_t len;
    for (;;) {
        enum frame_status s = frame_read(r, &type, payload, &len);
        if (s == FRAME_OK) {
            counts[type]++;
            frames++;
        } else if (s == FRAME_BAD_CRC || s == FRAME_TOO_LONG) {
            (*errors)++;
        } else {
            break;
        }
    }
    return frames;
}
