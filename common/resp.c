/* resp.c: RESP2 request parser and reply encoders (resp.h). */
#include "common/resp.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"

enum { ST_START = 0, ST_INLINE = 1, ST_MULTI = 2 };

void resp_parser_init(struct resp_parser *p, uint32_t args_max, uint32_t bulk_max,
                      uint32_t request_max)
{
    *p = (struct resp_parser){.args_max = args_max, .bulk_max = bulk_max,
                              .request_max = request_max};
}

void resp_parser_free(struct resp_parser *p)
{
    rkv_free(p->args);
    p->args = NULL;
    p->cap = p->n = 0;
}

static enum resp_status bad(struct resp_parser *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static enum resp_status bad(struct resp_parser *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->error, sizeof p->error, fmt, ap);
    va_end(ap);
    return RESP_BAD;
}

static bool push_arg(struct resp_parser *p, size_t off, size_t len)
{
    if (p->n == p->cap) {
        uint32_t cap = p->cap ? p->cap * 2 : 8;
        if (cap > p->args_max)
            cap = p->args_max;
        struct resp_arg *a = rkv_realloc(p->args, (size_t)cap * sizeof *a);
        if (a == NULL)
            return false;
        p->args = a;
        p->cap = cap;
    }
    p->args[p->n++] = (struct resp_arg){.off = (uint32_t)off, .len = (uint32_t)len};
    return true;
}

/* Ends the request: the next call starts a new one. */
static enum resp_status finish(struct resp_parser *p, size_t end, size_t *consumed,
                               enum resp_status st)
{
    *consumed = end;
    p->state = ST_START;
    p->pos = 0;
    return st;
}

bool resp_arg_int(const uint8_t *a, uint32_t len, int64_t *out)
{
    uint32_t i = 0;
    bool neg = len > 0 && a[0] == '-';
    if (neg)
        i = 1;
    if (i == len || len - i > 19 || (a[i] == '0' && (len - i > 1 || neg))) /* "-0" too */
        return false;
    uint64_t v = 0;
    for (; i < len; i++) {
        if (a[i] < '0' || a[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(a[i] - '0'); /* at most 19 digits: no overflow */
    }
    if (v > (uint64_t)INT64_MAX + (neg ? 1 : 0))
        return false;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

bool resp_arg_is(const uint8_t *arg, uint32_t len, const char *name)
{
    size_t n = strlen(name);
    if (n != len)
        return false;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = arg[i];
        if (c >= 'a' && c <= 'z')
            c = (uint8_t)(c - 'a' + 'A');
        uint8_t d = (uint8_t)name[i];
        if (d >= 'a' && d <= 'z')
            d = (uint8_t)(d - 'a' + 'A');
        if (c != d)
            return false;
    }
    return true;
}

/* A number line "<c><digits>\r\n" at buf[pos]: 1 with *v and *end set, 0
 * if incomplete, -1 if it is too long or not a number. */
static int number_line(const uint8_t *buf, size_t len, size_t pos, int64_t *v, size_t *end)
{
    size_t limit = len - pos < RESP_NUMBER_LINE_MAX ? len : pos + RESP_NUMBER_LINE_MAX;
    const uint8_t *nl = memchr(buf + pos, '\n', limit - pos);
    if (nl == NULL)
        return limit == len && len - pos < RESP_NUMBER_LINE_MAX ? 0 : -1;
    size_t e = (size_t)(nl - buf);
    if (e < pos + 2 || buf[e - 1] != '\r' ||
        !resp_arg_int(buf + pos + 1, (uint32_t)(e - 1 - (pos + 1)), v))
        return -1;
    *end = e + 1;
    return 1;
}

static enum resp_status parse_inline(struct resp_parser *p, const uint8_t *buf, size_t len,
                                     size_t *consumed)
{
    size_t limit = len < RESP_INLINE_MAX ? len : RESP_INLINE_MAX;
    const uint8_t *nl = p->pos < limit ? memchr(buf + p->pos, '\n', limit - p->pos) : NULL;
    if (nl == NULL) {
        if (len >= RESP_INLINE_MAX)
            return bad(p, "Protocol error: too big inline request");
        p->pos = len;
        return RESP_MORE;
    }
    size_t end = (size_t)(nl - buf), line = end;
    if (line > 0 && buf[line - 1] == '\r')
        line--;
    p->n = 0;
    for (size_t i = 0; i < line;) {
        while (i < line && (buf[i] == ' ' || buf[i] == '\t'))
            i++;
        size_t start = i;
        while (i < line && buf[i] != ' ' && buf[i] != '\t')
            i++;
        if (i == start)
            break;
        if (p->n == p->args_max)
            return bad(p, "Protocol error: more than %u arguments", p->args_max);
        if (i - start > p->bulk_max)
            return bad(p, "Protocol error: invalid bulk length");
        if (!push_arg(p, start, i - start))
            return bad(p, "ERR out of memory");
    }
    return finish(p, end + 1, consumed, p->n ? RESP_REQUEST : RESP_EMPTY);
}

enum resp_status resp_parse(struct resp_parser *p, const uint8_t *buf, size_t len,
                            size_t *consumed)
{
    *consumed = 0;
    if (p->state == ST_START) {
        if (len == 0)
            return RESP_MORE;
        p->n = 0;
        p->pos = 0;
        p->state = buf[0] == '*' ? ST_MULTI : ST_INLINE;
        p->want = -1;
    }
    if (p->state == ST_INLINE)
        return parse_inline(p, buf, len, consumed);
    if (p->want < 0) {
        int64_t v;
        size_t end;
        int r = number_line(buf, len, 0, &v, &end);
        if (r == 0)
            return RESP_MORE;
        if (r < 0 || v > (int64_t)p->args_max)
            return bad(p, "Protocol error: invalid multibulk length");
        if (v <= 0)
            return finish(p, end, consumed, RESP_EMPTY);
        p->want = v;
        p->pos = end;
    }
    while (p->n < p->want) {
        size_t pos = p->pos;
        if (pos >= len)
            return RESP_MORE;
        if (buf[pos] != '$')
            return bad(p, "Protocol error: expected '$', got '%c'",
                       buf[pos] >= 0x20 && buf[pos] < 0x7f ? buf[pos] : '?');
        int64_t blen;
        size_t body;
        int r = number_line(buf, len, pos, &blen, &body);
        if (r == 0)
            return RESP_MORE;
        if (r < 0 || blen < 0 || blen > (int64_t)p->bulk_max)
            return bad(p, "Protocol error: invalid bulk length");
        size_t end = body + (size_t)blen + 2;
        if (end > p->request_max)
            return bad(p, "Protocol error: request larger than %u bytes", p->request_max);
        if (end > len)
            return RESP_MORE;
        if (buf[end - 2] != '\r' || buf[end - 1] != '\n')
            return bad(p, "Protocol error: bulk string not followed by CRLF");
        if (!push_arg(p, body, (size_t)blen))
            return bad(p, "ERR out of memory");
        p->pos = end;
    }
    return finish(p, p->pos, consumed, RESP_REQUEST);
}

/* ---- replies ---- */

static int append_line(struct rkv_buf *out, char type, const char *s, size_t n)
{
    int rc = rkv_buf_reserve(out, n + 3);
    if (rc != RKV_OK)
        return rc;
    uint8_t *d = out->data + out->len;
    d[0] = (uint8_t)type;
    for (size_t i = 0; i < n; i++)
        d[1 + i] = s[i] == '\r' || s[i] == '\n' ? ' ' : (uint8_t)s[i];
    d[1 + n] = '\r';
    d[2 + n] = '\n';
    out->len += n + 3;
    return RKV_OK;
}

int resp_simple(struct rkv_buf *out, const char *s)
{
    return append_line(out, '+', s, strlen(s));
}

int resp_error(struct rkv_buf *out, const char *fmt, ...)
{
    char text[RESP_ERROR_BYTES];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    return append_line(out, '-', text, (size_t)n < sizeof text ? (size_t)n : sizeof text - 1);
}

static int number(struct rkv_buf *out, char type, int64_t v)
{
    char s[24];
    int n = snprintf(s, sizeof s, "%" PRId64, v);
    return append_line(out, type, s, (size_t)n);
}

int resp_int(struct rkv_buf *out, int64_t v)
{
    return number(out, ':', v);
}

int resp_array(struct rkv_buf *out, uint64_t n)
{
    return number(out, '*', (int64_t)n);
}

int resp_nil(struct rkv_buf *out)
{
    return rkv_buf_append(out, "$-1\r\n", 5);
}

int resp_bulk(struct rkv_buf *out, const void *p, size_t len)
{
    /* room for everything first, so a failure appends nothing */
    int rc = len > SIZE_MAX - 32 ? RKV_ERR_NOMEM : rkv_buf_reserve(out, len + 32);
    if (rc == RKV_OK)
        rc = number(out, '$', (int64_t)len);
    if (rc != RKV_OK)
        return rc;
    if (len)
        memcpy(out->data + out->len, p, len);
    memcpy(out->data + out->len + len, "\r\n", 2);
    out->len += len + 2;
    return RKV_OK;
}

int resp_bulk_str(struct rkv_buf *out, const char *s)
{
    return resp_bulk(out, s, strlen(s));
}
