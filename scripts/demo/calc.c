/* A calculator: a tokenizer and a recursive-descent parser for arithmetic
 * expressions with variables, evaluated over 64-bit integers. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum token_kind {
    TOK_END, TOK_NUMBER, TOK_NAME, TOK_PLUS, TOK_MINUS, TOK_STAR, TOK_SLASH,
    TOK_PERCENT, TOK_CARET, TOK_LPAREN, TOK_RPAREN, TOK_ASSIGN, TOK_COMMA,
    TOK_LT, TOK_GT, TOK_LE, TOK_GE, TOK_EQ, TOK_NE, TOK_AND, TOK_OR, TOK_NOT,
    TOK_ERROR
};

struct token {
    enum token_kind kind;
    int64_t value;
    char name[32];
    size_t offset;
};

struct lexer {
    const char *text;
    size_t pos;
    struct token current;
};

#define MAX_VARS 64

struct variable {
    char name[32];
    int64_t value;
};

struct calc {
    struct lexer lex;
    struct variable vars[MAX_VARS];
    int nvars;
    char error[128];
};

static void set_error(struct calc *c, const char *what)
{
    if (c->error[0] == '\0')
        snprintf(c->error, sizeof c->error, "%s at offset %zu", what, c->lex.current.offset);
}

static void next_token(struct lexer *lx)
{
    const char *s = lx->text;
    while (isspace((unsigned char)s[lx->pos]))
        lx->pos++;
    struct token *t = &lx->current;
    t->offset = lx->pos;
    t->value = 0;
    t->name[0] = '\0';
    char ch = s[lx->pos];
    if (ch == '\0') {
        t->kind = TOK_END;
        return;
    }
    if (isdigit((unsigned char)ch)) {
        int base = 10;
        if (ch == '0' && (s[lx->pos + 1] == 'x' || s[lx->pos + 1] == 'X')) {
            base = 16;
            lx->pos += 2;
        } else if (ch == '0' && (s[lx->pos + 1] == 'b' || s[lx->pos + 1] == 'B')) {
            base = 2;
            lx->pos += 2;
        }
        int64_t v = 0;
        for (;;) {
            int d;
            ch = s[lx->pos];
            if (ch >= '0' && ch <= '9')
                d = ch - '0';
            else if (ch >= 'a' && ch <= 'f')
                d = ch - 'a' + 10;
            else if (ch >= 'A' && ch <= 'F')
                d = ch - 'A' + 10;
            else if (ch == '_') {
                lx->pos++;
                continue;
            } else
                break;
            if (d >= base)
                break;
            v = v * base + d;
            lx->pos++;
        }
        t->kind = TOK_NUMBER;
        t->value = v;
        return;
    }
    if (isalpha((unsigned char)ch) || ch == '_') {
        size_t n = 0;
        while (isalnum((unsigned char)s[lx->pos]) || s[lx->pos] == '_') {
            if (n + 1 < sizeof t->name)
                t->name[n++] = s[lx->pos];
            lx->pos++;
        }
        t->name[n] = '\0';
        t->kind = TOK_NAME;
        return;
    }
    lx->pos++;
    char nx = s[lx->pos];
    switch (ch) {
    case '+': t->kind = TOK_PLUS; break;
    case '-': t->kind = TOK_MINUS; break;
    case '*': t->kind = TOK_STAR; break;
    case '/': t->kind = TOK_SLASH; break;
    case '%': t->kind = TOK_PERCENT; break;
    case '^': t->kind = TOK_CARET; break;
    case '(': t->kind = TOK_LPAREN; break;
    case ')': t->kind = TOK_RPAREN; break;
    case ',': t->kind = TOK_COMMA; break;
    case '<':
        if (nx == '=') { t->kind = TOK_LE; lx->pos++; } else t->kind = TOK_LT;
        break;
    case '>':
        if (nx == '=') { t->kind = TOK_GE; lx->pos++; } else t->kind = TOK_GT;
        break;
    case '=':
        if (nx == '=') { t->kind = TOK_EQ; lx->pos++; } else t->kind = TOK_ASSIGN;
        break;
    case '!':
        if (nx == '=') { t->kind = TOK_NE; lx->pos++; } else t->kind = TOK_NOT;
        break;
    case '&':
        if (nx == '&') { t->kind = TOK_AND; lx->pos++; } else t->kind = TOK_ERROR;
        break;
    case '|':
        if (nx == '|') { t->kind = TOK_OR; lx->pos++; } else t->kind = TOK_ERROR;
        break;
    default:
        t->kind = TOK_ERROR;
        break;
    }
}

static struct variable *lookup(struct calc *c, const char *name, int create)
{
    for (int i = 0; i < c->nvars; i++)
        if (strcmp(c->vars[i].name, name) == 0)
            return &c->vars[i];
    if (!create || c->nvars == MAX_VARS)
        return NULL;
    struct variable *v = &c->vars[c->nvars++];
    snprintf(v->name, sizeof v->name, "%s", name);
    v->value = 0;
    return v;
}

static int64_t parse_expr(struct calc *c);

static int64_t ipow(int64_t base, int64_t exp)
{
    int64_t r = 1;
    if (exp < 0)
        return 0;
    while (exp) {
        if (exp & 1)
            r *= base;
        base *= base;
        exp >>= 1;
    }
    return r;
}

static int64_t call_builtin(struct calc *c, const char *name, int64_t *args, int n)
{
    if (strcmp(name, "abs") == 0 && n == 1)
        return args[0] < 0 ? -args[0] : args[0];
    if (strcmp(name, "min") == 0 && n >= 1) {
        int64_t m = args[0];
        for (int i = 1; i < n; i++)
            if (args[i] < m)
                m = args[i];
        return m;
    }
    if (strcmp(name, "max") == 0 && n >= 1) {
        int64_t m = args[0];
        for (int i = 1; i < n; i++)
            if (args[i] > m)
                m = args[i];
        return m;
    }
    if (strcmp(name, "gcd") == 0 && n == 2) {
        int64_t a = args[0] < 0 ? -args[0] : args[0], b = args[1] < 0 ? -args[1] : args[1];
        while (b) {
            int64_t t = a % b;
            a = b;
            b = t;
        }
        return a;
    }
    if (strcmp(name, "clamp") == 0 && n == 3)
        return args[0] < args[1] ? args[1] : args[0] > args[2] ? args[2] : args[0];
    set_error(c, "unknown function or wrong argument count");
    return 0;
}

static int64_t parse_primary(struct calc *c)
{
    struct token t = c->lex.current;
    switch (t.kind) {
    case TOK_NUMBER:
        next_token(&c->lex);
        return t.value;
    case TOK_MINUS:
        next_token(&c->lex);
        return -parse_primary(c);
    case TOK_NOT:
        next_token(&c->lex);
        return !parse_primary(c);
    case TOK_LPAREN: {
        next_token(&c->lex);
        int64_t v = parse_expr(c);
        if (c->lex.current.kind != TOK_RPAREN)
            set_error(c, "expected ')'");
        else
            next_token(&c->lex);
        return v;
    }
    case TOK_NAME: {
        next_token(&c->lex);
        if (c->lex.current.kind == TOK_LPAREN) {
            int64_t args[8];
            int n = 0;
            next_token(&c->lex);
            while (c->lex.current.kind != TOK_RPAREN && c->lex.current.kind != TOK_END) {
                int64_t v = parse_expr(c);
                if (n < 8)
                    args[n++] = v;
                if (c->lex.current.kind == TOK_COMMA)
                    next_token(&c->lex);
                else
                    break;
            }
            if (c->lex.current.kind != TOK_RPAREN) {
                set_error(c, "expected ')' after arguments");
                return 0;
            }
            next_token(&c->lex);
            return call_builtin(c, t.name, args, n);
        }
        if (c->lex.current.kind == TOK_ASSIGN) {
            next_token(&c->lex);
            int64_t v = parse_expr(c);
            struct variable *var = lookup(c, t.name, 1);
            if (!var) {
                set_error(c, "too many variables");
                return 0;
            }
            var->value = v;
            return v;
        }
        struct variable *var = lookup(c, t.name, 0);
        if (!var) {
            set_error(c, "unknown variable");
            return 0;
        }
        return var->value;
    }
    default:
        set_error(c, "unexpected token");
        return 0;
    }
}

static int64_t parse_power(struct calc *c)
{
    int64_t base = parse_primary(c);
    if (c->lex.current.kind == TOK_CARET) {
        next_token(&c->lex);
        return ipow(base, parse_power(c));
    }
    return base;
}

static int64_t parse_term(struct calc *c)
{
    int64_t v = parse_power(c);
    for (;;) {
        enum token_kind k = c->lex.current.kind;
        if (k != TOK_STAR && k != TOK_SLASH && k != TOK_PERCENT)
            return v;
        next_token(&c->lex);
        int64_t r = parse_power(c);
        if (k == TOK_STAR)
            v *= r;
        else if (r == 0)
            set_error(c, "division by zero");
        else if (k == TOK_SLASH)
            v /= r;
        else
            v %= r;
    }
}

static int64_t parse_sum(struct calc *c)
{
    int64_t v = parse_term(c);
    while (c->lex.current.kind == TOK_PLUS || c->lex.current.kind == TOK_MINUS) {
        enum token_kind k = c->lex.current.kind;
        next_token(&c->lex);
        int64_t r = parse_term(c);
        v = k == TOK_PLUS ? v + r : v - r;
    }
    return v;
}

static int64_t parse_compare(struct calc *c)
{
    int64_t v = parse_sum(c);
    for (;;) {
        enum token_kind k = c->lex.current.kind;
        if (k < TOK_LT || k > TOK_NE)
            return v;
        next_token(&c->lex);
        int64_t r = parse_sum(c);
        switch (k) {
        case TOK_LT: v = v < r; break;
        case TOK_GT: v = v > r; break;
        case TOK_LE: v = v <= r; break;
        case TOK_GE: v = v >= r; break;
        case TOK_EQ: v = v == r; break;
        default: v = v != r; break;
        }
    }
}

static int64_t parse_expr(struct calc *c)
{
    int64_t v = parse_compare(c);
    while (c->lex.current.kind == TOK_AND || c->lex.current.kind == TOK_OR) {
        enum token_kind k = c->lex.current.kind;
        next_token(&c->lex);
        int64_t r = parse_compare(c);
        v = k == TOK_AND ? (v && r) : (v || r);
    }
    return v;
}

void calc_init(struct calc *c)
{
    memset(c, 0, sizeof *c);
}

/* Evaluates one line; returns 0 and stores the value, or -1 with c->error set. */
int calc_eval(struct calc *c, const char *line, int64_t *out)
{
    c->error[0] = '\0';
    c->lex.text = line;
    c->lex.pos = 0;
    next_token(&c->lex);
    int64_t v = parse_expr(c);
    if (c->lex.current.kind != TOK_END)
        set_error(c, "trailing input");
    if (c->error[0])
        return -1;
    *out = v;
    return 0;
}

const char *calc_error(const struct calc *c)
{
    return c->error;
}

int calc_main(FILE *in, FILE *out)
{
    struct calc *c = malloc(sizeof *c);
    char line[512];
    int failures = 0;
    if (!c)
        return -1;
    calc_init(c);
    while (fgets(line, sizeof line, in)) {
        int64_t v;
        line[strcspn(line, "\n")] = '\0';
        if (line[0] == '\0' || line[0] == '#')
            continue;
        if (calc_eval(c, line, &v) == 0) {
            fprintf(out, "%lld\n", (long long)v);
        } else {
            fprintf(out, "error: %s\n", calc_error(c));
            failures++;
        }
    }
    free(c);
    return failures;
}
