/* String utilities of the kind every C code base grows: trimming, splitting,
 * case, search and replace, escaping, number formatting and UTF-8. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int is_space(int c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

char *str_trim(char *s)
{
    while (is_space((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && is_space((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

void str_lower(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s + 32);
}

void str_upper(char *s)
{
    for (; *s; s++)
        if (*s >= 'a' && *s <= 'z')
            *s = (char)(*s - 32);
}

int str_casecmp(const char *a, const char *b)
{
    for (;; a++, b++) {
        int ca = (unsigned char)*a, cb = (unsigned char)*b;
        if (ca >= 'A' && ca <= 'Z')
            ca += 32;
        if (cb >= 'A' && cb <= 'Z')
            cb += 32;
        if (ca != cb || !ca)
            return ca - cb;
    }
}

int str_starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

int str_ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

/* Splits s in place at each separator; returns the number of fields. */
size_t str_split(char *s, char sep, char **fields, size_t max)
{
    size_t n = 0;
    if (max == 0)
        return 0;
    fields[n++] = s;
    for (; *s; s++)
        if (*s == sep && n < max) {
            *s = '\0';
            fields[n++] = s + 1;
        }
    return n;
}

/* Replaces every occurrence of `from` with `to`; the result is malloc'd. */
char *str_replace(const char *s, const char *from, const char *to)
{
    size_t lf = strlen(from), lt = strlen(to), count = 0;
    if (lf == 0)
        return NULL;
    for (const char *p = strstr(s, from); p; p = strstr(p + lf, from))
        count++;
    size_t len = strlen(s) + count * lt - count * lf;
    char *out = malloc(len + 1), *o = out;
    if (!out)
        return NULL;
    for (const char *p; (p = strstr(s, from)) != NULL; s = p + lf) {
        memcpy(o, s, (size_t)(p - s));
        o += p - s;
        memcpy(o, to, lt);
        o += lt;
    }
    strcpy(o, s);
    return out;
}

/* Escapes for a JSON string; returns the length written (without the NUL),
 * or the length needed when it does not fit. */
size_t str_json_escape(const char *s, char *out, size_t size)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[7];
        size_t k = 0;
        switch (c) {
        case '"': esc[k++] = '\\'; esc[k++] = '"'; break;
        case '\\': esc[k++] = '\\'; esc[k++] = '\\'; break;
        case '\n': esc[k++] = '\\'; esc[k++] = 'n'; break;
        case '\r': esc[k++] = '\\'; esc[k++] = 'r'; break;
        case '\t': esc[k++] = '\\'; esc[k++] = 't'; break;
        case '\b': esc[k++] = '\\'; esc[k++] = 'b'; break;
        case '\f': esc[k++] = '\\'; esc[k++] = 'f'; break;
        default:
            if (c < 0x20) {
                memcpy(esc, "\\u00", 4);
                k = 4;
                esc[k++] = hex[c >> 4];
                esc[k++] = hex[c & 15];
            } else {
                esc[k++] = (char)c;
            }
        }
        for (size_t i = 0; i < k; i++, n++)
            if (n + 1 < size)
                out[n] = esc[i];
    }
    if (size)
        out[n < size ? n : size - 1] = '\0';
    return n;
}

/* Formats a byte count as "1.5 KiB", "12 MiB", ... */
void str_format_bytes(uint64_t bytes, char *out, size_t size)
{
    static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
    unsigned u = 0;
    uint64_t whole = bytes, tenths = 0;
    while (whole >= 1024 && u + 1 < sizeof units / sizeof units[0]) {
        tenths = (whole % 1024) * 10 / 1024;
        whole /= 1024;
        u++;
    }
    char digits[24];
    int n = 0;
    do {
        digits[n++] = (char)('0' + whole % 10);
        whole /= 10;
    } while (whole);
    size_t o = 0;
    while (n && o + 1 < size)
        out[o++] = digits[--n];
    if (u && whole < 100 && tenths && o + 2 < size) {
        out[o++] = '.';
        out[o++] = (char)('0' + tenths);
    }
    if (o + 1 < size)
        out[o++] = ' ';
    for (const char *p = units[u]; *p && o + 1 < size; p++)
        out[o++] = *p;
    if (size)
        out[o] = '\0';
}

/* Decodes one UTF-8 sequence; returns its length, or 0 if it is invalid. */
size_t utf8_decode(const unsigned char *s, size_t len, uint32_t *cp)
{
    if (len == 0)
        return 0;
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    size_t n = (s[0] & 0xE0) == 0xC0 ? 2 : (s[0] & 0xF0) == 0xE0 ? 3 : (s[0] & 0xF8) == 0xF0 ? 4 : 0;
    if (n == 0 || n > len)
        return 0;
    uint32_t c = s[0] & (0x7F >> n);
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = c << 6 | (s[i] & 0x3F);
    }
    static const uint32_t min[] = { 0, 0, 0x80, 0x800, 0x10000 };
    if (c < min[n] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return n;
}

size_t utf8_encode(uint32_t cp, unsigned char out[4])
{
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | cp >> 6);
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        if (cp >= 0xD800 && cp <= 0xDFFF)
            return 0;
        out[0] = (unsigned char)(0xE0 | cp >> 12);
        out[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    if (cp > 0x10FFFF)
        return 0;
    out[0] = (unsigned char)(0xF0 | cp >> 18);
    out[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Number of code points, or -1 if the text is not valid UTF-8. */
long utf8_length(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t len = strlen(s);
    long count = 0;
    while (len) {
        uint32_t cp;
        size_t n = utf8_decode(p, len, &cp);
        if (!n)
            return -1;
        p += n;
        len -= n;
        count++;
    }
    return count;
}

/* Levenshtein distance of two short strings (for "did you mean ...?"). */
size_t str_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t row[64];
    if (lb >= sizeof row / sizeof row[0])
        return (size_t)-1;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}
