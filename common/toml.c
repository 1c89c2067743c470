/*
 * toml.c: the strict TOML-subset parser (what it accepts: toml.h).
 *
 * Two passes. The first checks the raw bytes: valid UTF-8 (no overlongs,
 * no surrogates, nothing past U+10FFFF), no control character but tab, LF
 * and CR-before-LF. The second is a recursive-descent parser over a cursor
 * that keeps the line and column of the next character, so every value and
 * every error carries its position; because the first pass already
 * vouched for the bytes, the second one only has to know the grammar.
 *
 * Values are built bottom-up into a local struct toml_value and only linked
 * into the tree once complete, so a failure at any point (a syntax error
 * or an allocation) frees exactly what the failing call made and leaves the
 * tree freeable by toml_free. Unsupported TOML is recognised on purpose
 * (a float, a date, an inline table...) so the message can say what is not
 * supported rather than "syntax error".
 *
 * Costs: linear in the text, except key lookups, which scan the table:
 * bounded by TOML_TABLE_KEYS_MAX keys per table.
 */
#include "common/toml.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"

struct tp {
    const char *p, *end;
    uint32_t line, col; /* of *p */
    const char *file;
    struct rkv_error *err;
    struct toml_table *root;
    struct toml_table *cur; /* where key = value lines go */
    size_t n_values;
};

/* ---- errors ---- */

int toml_error_at(struct rkv_error *err, int code, const char *file, uint32_t line, uint32_t col,
                  const char *fmt, ...)
{
    char msg[RKV_ERROR_MSG_BYTES];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return rkv_error_set(err, code, "%s:%u:%u: %s", file, line, col, msg);
}

static int nomem(struct tp *t)
{
    return rkv_error_set(t->err, RKV_ERR_NOMEM, "%s: out of memory", t->file);
}

/* A readable name for the character at the cursor, for "found ..." parts. */
static const char *describe(const struct tp *t, char buf[8])
{
    if (t->p >= t->end)
        return "the end of the file";
    unsigned char c = (unsigned char)*t->p;
    if (c == '\n' || c == '\r')
        return "the end of the line";
    if (c >= 0x80)
        return "a non-ASCII character";
    if (c == '\t')
        return "a tab";
    snprintf(buf, 8, "'%c'", c);
    return buf;
}

const char *toml_show(const char *s, char buf[TOML_SHOW_BYTES])
{
    size_t i = 0;
    for (; s[i] != '\0' && i < TOML_SHOW_BYTES - 8; i++)
        buf[i] = s[i] >= 0x20 && s[i] < 0x7F ? s[i] : '?';
    strcpy(buf + i, s[i] != '\0' ? "..." : "");
    return buf;
}

/* ---- pass 1: the bytes ---- */

/* Length of the valid UTF-8 sequence at s (of at most n bytes), or 0. */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4;
    else
        return 0;
    if (c == 0xE0)
        lo = 0xA0; /* overlong */
    else if (c == 0xED)
        hi = 0x9F; /* surrogates */
    else if (c == 0xF0)
        lo = 0x90; /* overlong */
    else if (c == 0xF4)
        hi = 0x8F; /* past U+10FFFF */
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return len;
}

static int check_bytes(struct tp *t)
{
    const unsigned char *s = (const unsigned char *)t->p;
    size_t n = (size_t)(t->end - t->p);
    uint32_t line = 1, col = 1;
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        size_t len = 1;
        if (c == '\n') {
            line++;
            col = 1;
            i++;
            continue;
        }
        if (c == '\r' && (i + 1 >= n || s[i + 1] != '\n'))
            return toml_error_at(t->err, RKV_ERR_CONFIG, t->file, line, col,
                                 "carriage return not followed by a newline");
        if ((c < 0x20 && c != '\t' && c != '\r') || c == 0x7F)
            return toml_error_at(t->err, RKV_ERR_CONFIG, t->file, line, col,
                                 "control character U+%04X is not allowed (in a string, "
                                 "write an escape)",
                                 c);
        if (c >= 0x80 && (len = utf8_seq_len(s + i, n - i)) == 0)
            return toml_error_at(t->err, RKV_ERR_CONFIG, t->file, line, col, "invalid UTF-8");
        i += len;
        col++;
    }
    return RKV_OK;
}

/* ---- the cursor ---- */

static int peek(const struct tp *t)
{
    return t->p < t->end ? (unsigned char)*t->p : -1;
}

static int peek_at(const struct tp *t, size_t k)
{
    return (size_t)(t->end - t->p) > k ? (unsigned char)t->p[k] : -1;
}

static void adv(struct tp *t)
{
    unsigned char c = (unsigned char)*t->p++;
    if (c == '\n') {
        t->line++;
        t->col = 1;
    } else if ((c & 0xC0) != 0x80) {
        t->col++;
    }
}

static void skip_ws(struct tp *t)
{
    while (peek(t) == ' ' || peek(t) == '\t')
        adv(t);
}

static void skip_comment(struct tp *t)
{
    while (t->p < t->end && *t->p != '\n')
        adv(t);
}

/* Whitespace, newlines and comments: what may separate array elements. */
static void skip_ws_nl(struct tp *t)
{
    for (;;) {
        int c = peek(t);
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
            adv(t);
        else if (c == '#')
            skip_comment(t);
        else
            return;
    }
}

static int fail(struct tp *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct tp *t, const char *fmt, ...)
{
    char msg[RKV_ERROR_MSG_BYTES];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return toml_error_at(t->err, RKV_ERR_CONFIG, t->file, t->line, t->col, "%s", msg);
}

static int fail_at(struct tp *t, uint32_t line, uint32_t col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail_at(struct tp *t, uint32_t line, uint32_t col, const char *fmt, ...)
{
    char msg[RKV_ERROR_MSG_BYTES];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return toml_error_at(t->err, RKV_ERR_CONFIG, t->file, line, col, "%s", msg);
}

/* ---- the tree ---- */

static void value_free(struct toml_value *v);

static void table_free(struct toml_table *tab)
{
    if (tab == NULL)
        return;
    for (size_t i = 0; i < tab->n; i++) {
        rkv_free(tab->kv[i].key);
        value_free(&tab->kv[i].val);
    }
    rkv_free(tab->kv);
    rkv_free(tab);
}

static void value_free(struct toml_value *v)
{
    if (v->type == TOML_STRING) {
        rkv_free(v->u.str.s);
    } else if (v->type == TOML_ARRAY && v->u.arr != NULL) {
        for (size_t i = 0; i < v->u.arr->n; i++)
            value_free(&v->u.arr->v[i]);
        rkv_free(v->u.arr->v);
        rkv_free(v->u.arr);
    } else if (v->type == TOML_TABLE) {
        table_free(v->u.tab);
    }
    v->type = TOML_BOOL; /* nothing left to free */
}

void toml_free(struct toml_table *root)
{
    table_free(root);
}

static struct toml_kv *table_find_kv(const struct toml_table *tab, const char *key)
{
    for (size_t i = 0; i < tab->n; i++)
        if (strcmp(tab->kv[i].key, key) == 0)
            return &tab->kv[i];
    return NULL;
}

static int count_value(struct tp *t)
{
    if (++t->n_values > TOML_VALUES_MAX)
        return fail(t, "too many values in one document (limit %u)", TOML_VALUES_MAX);
    return RKV_OK;
}

/* Links key and *v into tab; takes both, also on failure. */
static int table_add(struct tp *t, struct toml_table *tab, char *key, uint32_t line, uint32_t col,
                     struct toml_value *v)
{
    int rc = RKV_OK;
    if (tab->n >= TOML_TABLE_KEYS_MAX)
        rc = fail_at(t, line, col, "too many keys in one table (limit %u)", TOML_TABLE_KEYS_MAX);
    else if (rkv_grow((void **)&tab->kv, &tab->cap, tab->n + 1, sizeof *tab->kv) != RKV_OK)
        rc = nomem(t);
    if (rc != RKV_OK) {
        rkv_free(key);
        value_free(v);
        return rc;
    }
    tab->kv[tab->n++] = (struct toml_kv){
        .key = key,
        .line = line,
        .col = col,
        .used = false,
        .val = *v,
    };
    return RKV_OK;
}

static int array_push(struct tp *t, struct toml_array *arr, struct toml_value *v)
{
    if (rkv_grow((void **)&arr->v, &arr->cap, arr->n + 1, sizeof *arr->v) != RKV_OK) {
        value_free(v);
        return nomem(t);
    }
    arr->v[arr->n++] = *v;
    return RKV_OK;
}

static struct toml_table *table_new(uint32_t line, uint32_t col)
{
    struct toml_table *tab = rkv_calloc(1, sizeof *tab);
    if (tab != NULL)
        *tab = (struct toml_table){.kv = NULL, .n = 0, .cap = 0, .line = line, .col = col};
    return tab;
}

/* ---- strings ---- */

struct sbuf {
    char *s;
    size_t len, cap, max;
    uint32_t line, col; /* of the opening quote */
};

static int sbuf_put(struct tp *t, struct sbuf *b, const char *p, size_t n)
{
    if (b->len + n > b->max)
        return fail_at(t, b->line, b->col, "string longer than %zu bytes", b->max);
    if (rkv_grow((void **)&b->s, &b->cap, b->len + n + 1, 1) != RKV_OK)
        return nomem(t);
    memcpy(b->s + b->len, p, n);
    b->len += n;
    b->s[b->len] = '\0';
    return RKV_OK;
}

static size_t utf8_encode(uint32_t cp, char out[4])
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static int hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* \uXXXX or \UXXXXXXXX with the cursor on the u/U; writes UTF-8 to out. */
static int parse_unicode_escape(struct tp *t, uint32_t line, uint32_t col, char out[4],
                                size_t *out_len)
{
    int ndig = peek(t) == 'u' ? 4 : 8;
    adv(t);
    uint32_t cp = 0;
    for (int i = 0; i < ndig; i++) {
        int d = hex_digit(peek(t));
        if (d < 0)
            return fail_at(t, line, col, "\\%c needs %d hexadecimal digits", ndig == 4 ? 'u' : 'U',
                           ndig);
        cp = cp * 16 + (uint32_t)d;
        adv(t);
    }
    if (cp == 0)
        return fail_at(t, line, col, "NUL (\\u0000) is not supported in strings");
    if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
        return fail_at(t, line, col, "escape U+%X is not a Unicode scalar value", cp);
    *out_len = utf8_encode(cp, out);
    return RKV_OK;
}

/* One escape, the cursor on the backslash. */
static int parse_escape(struct tp *t, struct sbuf *b)
{
    static const char from[] = "btnfr\"\\";
    static const char to[] = "\b\t\n\f\r\"\\";
    uint32_t line = t->line, col = t->col;
    adv(t);
    int c = peek(t);
    char out[4];
    size_t n = 1;
    const char *hit = c > 0 ? strchr(from, c) : NULL;
    if (hit != NULL) {
        out[0] = to[hit - from];
        adv(t);
    } else if (c == 'u' || c == 'U') {
        int rc = parse_unicode_escape(t, line, col, out, &n);
        if (rc != RKV_OK)
            return rc;
    } else if (c > 0x20 && c < 0x7F) {
        return fail_at(t, line, col, "invalid escape sequence '\\%c'", c);
    } else {
        return fail_at(t, line, col, "invalid escape sequence");
    }
    return sbuf_put(t, b, out, n);
}

/* A basic string "...", the cursor on the opening quote. *out is owned by
 * the caller on success. */
static int parse_string(struct tp *t, size_t max, char **out, size_t *out_len)
{
    uint32_t line = t->line, col = t->col;
    if (peek_at(t, 1) == '"' && peek_at(t, 2) == '"')
        return fail(t, "multi-line strings (\"\"\"...\"\"\") are not supported");
    adv(t);
    struct sbuf b = {.s = NULL, .len = 0, .cap = 0, .max = max, .line = line, .col = col};
    int rc = sbuf_put(t, &b, "", 0); /* an empty string has a buffer too */
    while (rc == RKV_OK) {
        int c = peek(t);
        if (c < 0 || c == '\n' || c == '\r') {
            rc = fail_at(t, line, col, "unterminated string");
        } else if (c == '"') {
            adv(t);
            *out = b.s;
            *out_len = b.len;
            return RKV_OK;
        } else if (c == '\\') {
            rc = parse_escape(t, &b);
        } else {
            const char *start = t->p;
            while (t->p < t->end && *t->p != '"' && *t->p != '\\' && *t->p != '\n' && *t->p != '\r')
                adv(t);
            rc = sbuf_put(t, &b, start, (size_t)(t->p - start));
        }
    }
    rkv_free(b.s);
    return rc;
}

/* ---- keys ---- */

static bool is_bare_key_char(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

static int parse_key(struct tp *t, char **out)
{
    int c = peek(t);
    size_t len;
    if (c == '"')
        return parse_string(t, TOML_KEY_BYTES_MAX, out, &len);
    if (c == '\'')
        return fail(t, "literal strings ('...') are not supported; use \"...\"");
    if (!is_bare_key_char(c)) {
        char buf[8];
        return fail(t, "expected a key, found %s", describe(t, buf));
    }
    const char *start = t->p;
    while (is_bare_key_char(peek(t)))
        adv(t);
    len = (size_t)(t->p - start);
    if (len > TOML_KEY_BYTES_MAX)
        return fail(t, "key longer than %u bytes", TOML_KEY_BYTES_MAX);
    *out = rkv_malloc(len + 1);
    if (*out == NULL)
        return nomem(t);
    memcpy(*out, start, len);
    (*out)[len] = '\0';
    return RKV_OK;
}

/* ---- scalars ---- */

static bool is_token_char(int c)
{
    return is_bare_key_char(c) || c == '+' || c == '.' || c == ':';
}

static bool is_digit(int c)
{
    return c >= '0' && c <= '9';
}

/* Decimal integer with TOML's rules; s[0..n) is a token that starts with a
 * sign or a digit. Errors name the position of the token. */
static int parse_int(struct tp *t, const char *s, size_t n, uint32_t line, uint32_t col,
                     int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (s[0] == '+' || s[0] == '-')
        neg = s[i++] == '-';
    if (i >= n || !is_digit(s[i]))
        return fail_at(t, line, col, "invalid integer '%.*s'", (int)(n > 32 ? 32 : n), s);
    if (s[i] == '0' && i + 1 < n)
        return fail_at(t, line, col, "leading zeros are not allowed in integers");
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    uint64_t mag = 0;
    for (; i < n; i++) {
        if (s[i] == '_') {
            if (!is_digit(s[i - 1]) || i + 1 >= n || !is_digit(s[i + 1]))
                return fail_at(t, line, col, "'_' in an integer must be between two digits");
            continue;
        }
        if (!is_digit(s[i]))
            return fail_at(t, line, col, "invalid integer '%.*s'", (int)(n > 32 ? 32 : n), s);
        uint64_t d = (uint64_t)(s[i] - '0');
        if (mag > (limit - d) / 10)
            return fail_at(t, line, col, "integer out of range (a 64-bit signed integer)");
        mag = mag * 10 + d;
    }
    *out = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    return RKV_OK;
}

static bool token_is(const char *s, size_t n, const char *word)
{
    return strlen(word) == n && memcmp(s, word, n) == 0;
}

static size_t count_char(const char *s, size_t n, char c)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += s[i] == c;
    return k;
}

/* YYYY-MM-DD at the start of the token. */
static bool looks_like_date(const char *s, size_t n)
{
    static const char shape[] = "dddd-dd-dd";
    if (n < sizeof shape - 1)
        return false;
    for (size_t i = 0; i < sizeof shape - 1; i++)
        if (shape[i] == 'd' ? !is_digit(s[i]) : s[i] != '-')
            return false;
    return true;
}

/* A float TOML would accept, roughly: digits, at most one '.', an exponent. */
static bool looks_like_float(const char *s, size_t n)
{
    size_t i = (s[0] == '+' || s[0] == '-') ? 1 : 0;
    if (token_is(s + i, n - i, "inf") || token_is(s + i, n - i, "nan"))
        return true;
    if (i >= n || !is_digit(s[i]) || count_char(s, n, '.') > 1)
        return false;
    bool frac_or_exp = false;
    for (; i < n; i++) {
        char c = s[i];
        if (c == '.' || c == 'e' || c == 'E')
            frac_or_exp = true;
        else if (!is_digit(c) && c != '_' && c != '+' && c != '-')
            return false;
    }
    return frac_or_exp;
}

/* A value that is not a string, array or table: a run of token
 * characters, classified so that unsupported TOML gets a precise message. */
static int parse_scalar(struct tp *t, struct toml_value *v)
{
    uint32_t line = t->line, col = t->col;
    const char *s = t->p;
    while (is_token_char(peek(t)))
        adv(t);
    size_t n = (size_t)(t->p - s);
    int shown = (int)(n > 32 ? 32 : n);
    if (n == 0) {
        char buf[8];
        return fail(t, "expected a value, found %s", describe(t, buf));
    }
    if (token_is(s, n, "true") || token_is(s, n, "false")) {
        v->type = TOML_BOOL;
        v->u.b = s[0] == 't';
        return RKV_OK;
    }
    if (memchr(s, ':', n) != NULL || looks_like_date(s, n))
        return fail_at(t, line, col, "dates and times are not supported");
    if (looks_like_float(s, n))
        return fail_at(t, line, col, "floats are not supported (use an integer)");
    if (n > 1 && s[0] == '0' && (s[1] == 'x' || s[1] == 'o' || s[1] == 'b'))
        return fail_at(t, line, col, "hexadecimal, octal and binary integers are not supported");
    for (size_t i = 1; i < n; i++)
        if (!is_digit(s[i]) && s[i] != '_')
            return fail_at(t, line, col, "invalid value '%.*s' (strings must be quoted)", shown, s);
    if (s[0] != '+' && s[0] != '-' && !is_digit(s[0]))
        return fail_at(t, line, col, "invalid value '%.*s' (strings must be quoted)", shown, s);
    v->type = TOML_INT;
    return parse_int(t, s, n, line, col, &v->u.i);
}

/* ---- values ---- */

static int parse_value(struct tp *t, unsigned depth, struct toml_value *v);

static int parse_array(struct tp *t, unsigned depth, struct toml_value *v)
{
    uint32_t line = t->line, col = t->col;
    if (depth >= TOML_DEPTH_MAX)
        return fail(t, "arrays nested more than %u deep", TOML_DEPTH_MAX);
    struct toml_array *arr = rkv_calloc(1, sizeof *arr);
    if (arr == NULL)
        return nomem(t);
    v->type = TOML_ARRAY;
    v->u.arr = arr; /* from here on the caller's value_free releases it */
    adv(t);
    for (;;) {
        skip_ws_nl(t);
        if (peek(t) == ']')
            break;
        if (peek(t) < 0)
            return fail_at(t, line, col, "unterminated array");
        struct toml_value e = {.type = TOML_BOOL};
        int rc = parse_value(t, depth + 1, &e);
        if (rc == RKV_OK && arr->n > 0 && e.type != arr->v[0].type)
            rc = fail_at(t, e.line, e.col, "mixed types in an array: %s after %s",
                         toml_type_name(e.type), toml_type_name(arr->v[0].type));
        if (rc != RKV_OK) {
            value_free(&e);
            return rc;
        }
        if ((rc = array_push(t, arr, &e)) != RKV_OK)
            return rc;
        skip_ws_nl(t);
        if (peek(t) == ',') {
            adv(t);
        } else if (peek(t) < 0) {
            return fail_at(t, line, col, "unterminated array");
        } else if (peek(t) != ']') {
            char buf[8];
            return fail(t, "expected ',' or ']' in an array, found %s", describe(t, buf));
        }
    }
    adv(t);
    return RKV_OK;
}

/* Parses one value into *v (whose type the caller set to a scalar). On
 * failure *v may hold parts that value_free releases. */
static int parse_value(struct tp *t, unsigned depth, struct toml_value *v)
{
    v->line = t->line;
    v->col = t->col;
    int rc = count_value(t);
    if (rc != RKV_OK)
        return rc;
    switch (peek(t)) {
    case '"':
        v->type = TOML_STRING;
        v->u.str.s = NULL;
        return parse_string(t, TOML_STRING_BYTES_MAX, &v->u.str.s, &v->u.str.len);
    case '\'':
        return fail(t, "literal strings ('...') are not supported; use \"...\"");
    case '{':
        return fail(t, "inline tables ({...}) are not supported; use a [table] header");
    case '[':
        return parse_array(t, depth, v);
    default:
        return parse_scalar(t, v);
    }
}

/* ---- lines ---- */

static int expect_eol(struct tp *t)
{
    skip_ws(t);
    if (peek(t) == '#')
        skip_comment(t);
    if (peek(t) == '\r')
        adv(t);
    if (peek(t) == '\n') {
        adv(t);
        return RKV_OK;
    }
    if (peek(t) < 0)
        return RKV_OK;
    char buf[8];
    return fail(t, "expected the end of the line, found %s", describe(t, buf));
}

static int parse_keyval(struct tp *t)
{
    uint32_t line = t->line, col = t->col;
    char *key = NULL;
    int rc = parse_key(t, &key);
    if (rc != RKV_OK)
        return rc;
    skip_ws(t);
    char buf[8], shown[TOML_SHOW_BYTES];
    const struct toml_kv *dup = table_find_kv(t->cur, key);
    if (peek(t) == '.')
        rc = fail(t, "dotted keys are not supported; use a [table] header");
    else if (peek(t) != '=')
        rc = fail(t, "expected '=' after the key, found %s", describe(t, buf));
    else if (dup != NULL)
        rc = fail_at(t, line, col, "duplicate key \"%s\" (first defined at line %u)",
                     toml_show(key, shown), dup->line);
    if (rc != RKV_OK) {
        rkv_free(key);
        return rc;
    }
    adv(t);
    skip_ws(t);
    struct toml_value v = {.type = TOML_BOOL};
    rc = parse_value(t, 0, &v);
    if (rc != RKV_OK) {
        value_free(&v);
        rkv_free(key);
        return rc;
    }
    return table_add(t, t->cur, key, line, col, &v);
}

/* ---- headers ---- */

/* [name]: a new table under the root. Takes name. */
static int open_table(struct tp *t, char *name, uint32_t line, uint32_t col)
{
    const struct toml_kv *old = table_find_kv(t->root, name);
    char buf[TOML_SHOW_BYTES];
    const char *n = toml_show(name, buf);
    int rc = RKV_OK;
    if (old != NULL && old->val.type == TOML_TABLE)
        rc = fail_at(t, line, col, "table [%s] is defined twice (first at line %u)", n, old->line);
    else if (old != NULL && old->val.type == TOML_ARRAY && old->val.u.arr->of_tables)
        rc = fail_at(t, line, col, "[%s] is an array of tables (first [[%s]] at line %u)", n, n,
                     old->line);
    else if (old != NULL)
        rc = fail_at(t, line, col, "[%s] redefines the key \"%s\" of line %u", n, n, old->line);
    if (rc == RKV_OK)
        rc = count_value(t);
    struct toml_value v = {.type = TOML_TABLE, .line = line, .col = col};
    if (rc == RKV_OK && (v.u.tab = table_new(line, col)) == NULL)
        rc = nomem(t);
    if (rc != RKV_OK) {
        rkv_free(name);
        return rc;
    }
    struct toml_table *tab = v.u.tab;
    rc = table_add(t, t->root, name, line, col, &v);
    if (rc == RKV_OK)
        t->cur = tab;
    return rc;
}

/* [[name]]: appends a table to the array name, creating it. Takes name. */
static int open_array_table(struct tp *t, char *name, uint32_t line, uint32_t col)
{
    struct toml_kv *kv = table_find_kv(t->root, name);
    char buf[TOML_SHOW_BYTES];
    const char *n = toml_show(name, buf);
    int rc = RKV_OK;
    if (kv != NULL && kv->val.type == TOML_TABLE)
        rc = fail_at(t, line, col, "[[%s]] conflicts with the table [%s] of line %u", n, n,
                     kv->line);
    else if (kv != NULL && !(kv->val.type == TOML_ARRAY && kv->val.u.arr->of_tables))
        rc = fail_at(t, line, col, "[[%s]] redefines the key \"%s\" of line %u", n, n, kv->line);
    if (rc == RKV_OK)
        rc = count_value(t);
    if (rc == RKV_OK && kv == NULL) {
        struct toml_value arr = {.type = TOML_ARRAY, .line = line, .col = col};
        if ((arr.u.arr = rkv_calloc(1, sizeof *arr.u.arr)) == NULL) {
            rkv_free(name);
            return nomem(t);
        }
        arr.u.arr->of_tables = true;
        rc = table_add(t, t->root, name, line, col, &arr);
        name = NULL; /* taken */
        if (rc == RKV_OK)
            kv = &t->root->kv[t->root->n - 1];
    }
    rkv_free(name);
    if (rc != RKV_OK)
        return rc;
    struct toml_value v = {.type = TOML_TABLE, .line = line, .col = col};
    if ((v.u.tab = table_new(line, col)) == NULL)
        return nomem(t);
    struct toml_table *tab = v.u.tab;
    rc = array_push(t, kv->val.u.arr, &v);
    if (rc == RKV_OK)
        t->cur = tab;
    return rc;
}

static int parse_header(struct tp *t)
{
    uint32_t line = t->line, col = t->col;
    adv(t);
    bool array = peek(t) == '[';
    if (array)
        adv(t);
    skip_ws(t);
    char *name = NULL;
    int rc = parse_key(t, &name);
    if (rc != RKV_OK)
        return rc;
    skip_ws(t);
    char buf[8];
    if (peek(t) == '.')
        rc = fail(t, "dotted table names are not supported");
    else if (peek(t) != ']')
        rc = fail(t, "expected ']' after the table name, found %s", describe(t, buf));
    else if (array && peek_at(t, 1) != ']')
        rc = fail(t, "expected ']]' to close the array-of-tables header");
    if (rc != RKV_OK) {
        rkv_free(name);
        return rc;
    }
    adv(t);
    if (array)
        adv(t);
    return array ? open_array_table(t, name, line, col) : open_table(t, name, line, col);
}

/* ---- the document ---- */

static int parse_document(struct tp *t)
{
    if (t->end - t->p >= 3 && memcmp(t->p, "\xEF\xBB\xBF", 3) == 0)
        t->p += 3; /* a BOM is not a column */
    for (;;) {
        skip_ws(t);
        int c = peek(t);
        if (c < 0)
            return RKV_OK;
        int rc = RKV_OK;
        if (c == '[')
            rc = parse_header(t);
        else if (c != '#' && c != '\n' && c != '\r')
            rc = parse_keyval(t);
        if (rc == RKV_OK)
            rc = expect_eol(t);
        if (rc != RKV_OK)
            return rc;
    }
}

int toml_parse(const char *text, size_t len, const char *file, struct toml_table **out,
               struct rkv_error *err)
{
    *out = NULL;
    struct tp t = {
        .p = text,
        .end = text + len,
        .line = 1,
        .col = 1,
        .file = file,
        .err = err,
        .root = NULL,
        .cur = NULL,
        .n_values = 0,
    };
    if (len > TOML_TEXT_BYTES_MAX)
        return rkv_error_set(err, RKV_ERR_CONFIG, "%s: larger than %u bytes", file,
                             TOML_TEXT_BYTES_MAX);
    int rc = check_bytes(&t);
    if (rc != RKV_OK)
        return rc;
    if ((t.root = table_new(1, 1)) == NULL)
        return nomem(&t);
    t.cur = t.root;
    rc = parse_document(&t);
    if (rc != RKV_OK) {
        toml_free(t.root);
        return rc;
    }
    *out = t.root;
    return RKV_OK;
}

/* ---- lookups ---- */

const struct toml_value *toml_table_find(const struct toml_table *t, const char *key)
{
    const struct toml_kv *kv = table_find_kv(t, key);
    return kv ? &kv->val : NULL;
}

const struct toml_value *toml_table_get(struct toml_table *t, const char *key)
{
    struct toml_kv *kv = table_find_kv(t, key);
    if (kv == NULL)
        return NULL;
    kv->used = true;
    return &kv->val;
}

const struct toml_kv *toml_table_unused(const struct toml_table *t)
{
    for (size_t i = 0; i < t->n; i++)
        if (!t->kv[i].used)
            return &t->kv[i];
    return NULL;
}

const char *toml_type_name(enum toml_type type)
{
    static const char *const names[] = {
        [TOML_STRING] = "a string", [TOML_INT] = "an integer", [TOML_BOOL] = "a boolean",
        [TOML_ARRAY] = "an array",  [TOML_TABLE] = "a table",
    };
    return (unsigned)type <= TOML_TABLE ? names[type] : "?";
}
