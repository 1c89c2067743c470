/*
 * fuzz_resp.c: libFuzzer target for the RESP2 request parser (common/resp.h).
 *
 * Every byte a Redis client sends reaches resp_parse, so this target is
 * invariant 8 for the Redis port: any bytes give requests, a protocol error
 * or a wait for more, never a crash, a hang or memory sized by a claim. The
 * parser is resumable and keeps offsets, not pointers, so the target also
 * checks that how the bytes arrive does not matter.
 *
 * Input:
 *
 *   byte 0     bits 0-5: args_max - 1 (1..64); bits 6-7: the mode: 0 plain;
 *              1 each request is parsed a second time before its bytes are
 *              dropped (node/resp.c does that when the request's keys are
 *              busy); 2 the connection's buffer moves to a fresh allocation
 *              every MOVE_EVERY reads; 3 big (below)
 *   byte 1     low nibble: bulk_max, high nibble: request_max, each an index
 *              into a table of limits (0, tiny, around the number-line and
 *              inline limits, 2^32 - 1)
 *   bytes 2-3  the read schedule: four nibbles, indexes into read_sizes,
 *              used in turn (times BIG_READ_SCALE in big mode)
 *   big mode   two more bytes, a position in the rest and a length: the
 *              stream is the rest with RESP_INLINE_MAX - 128 + length bytes
 *              of 'x' inserted at that position, so that lines and bulks
 *              reach the inline limit and the 64 KiB bounds
 *   the rest   the bytes of the connection
 *
 * The stream is parsed twice: (a) all at once, handing the parser what is
 * left after each request, and (b) read by read as node/resp.c does it:
 * append a read to a struct rkv_buf, parse, drop `consumed` bytes from the
 * front after each request, append the next read after RESP_MORE. The bytes
 * past len in the buffer are poisoned for AddressSanitizer while the parser
 * runs, so a read beyond what it was given is caught even inside capacity;
 * the stream of (a) is a copy of exactly its size.
 *
 * After every call: consumed <= len, and > 0 exactly for RESP_REQUEST and
 * RESP_EMPTY (0 otherwise); n <= cap <= args_max. A request has at least
 * one argument; each within bulk_max and inside the consumed bytes, in
 * order without overlap. A multibulk request ends in CRLF, has each
 * argument between CRLFs and is within request_max; an inline one ends in
 * LF within RESP_INLINE_MAX and its arguments are non-empty words with no
 * blank or LF. An empty multibulk request is *0 or a negative count. Every
 * integer resp_arg_int accepts (arguments, counts) prints back as the same
 * bytes, as Redis's string2ll wants it. On RESP_BAD the error is
 * NUL-terminated, not empty, and makes a one-line error reply. Each
 * request of (a) is encoded again with resp_array and resp_bulk: for a
 * multibulk request that gives back the bytes consumed, and the encoding
 * parses back, alone, to the same arguments under the same bounds (an
 * inline request's encoding may exceed request_max, which is raised to
 * fit).
 *
 * Then (a) and (b) must agree: the same requests and empty requests in the
 * same order, with the same consumed counts and argument bytes, and the same
 * outcome: RESP_MORE, or RESP_BAD with the same error text.
 *
 * Nothing is kept between inputs; all that is allocated is freed.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <string.h>

#include <sanitizer/asan_interface.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/resp.h"
#include "tests/fuzz/fuzz.h"

#define HEADER_BYTES     4
#define BIG_HEADER_BYTES 2
#define BIG_FILL_BYTES   (RESP_INLINE_MAX - 128)
#define BIG_READ_SCALE   256
/* mode 2: the buffer moves after every MOVE_EVERY-th read */
#define MOVE_EVERY 8

enum { MODE_AGAIN = 1, MODE_MOVE = 2, MODE_BIG = 3 };

static const uint32_t bulk_maxes[16] = {
    0, 1, 2, 3, 5, 8, 16, 31, 64, 100, 512, 4096, 65536, 1u << 20, UINT32_MAX - 1, UINT32_MAX,
};

static const uint32_t request_maxes[16] = {
    0, 1, 4, 10, 16, 31, 32, 64, 100, 512, 4096, 65536, 65537, 1u << 20, UINT32_MAX - 1, UINT32_MAX,
};

static const size_t read_sizes[16] = {1, 1, 2, 3, 4, 5, 7, 8, 13, 16, 31, 32, 33, 64, 200, 4096};

struct setup {
    uint32_t args_max;
    uint32_t bulk_max;
    uint32_t request_max;
    size_t reads[4];
    bool move;  /* mode 2 */
    bool again; /* mode 1: each request is parsed twice before it is dropped */
};

/* What one parse of the stream produced. */
struct trace {
    /* per request or empty request: status (1 byte), consumed (8), n (4),
     * then per argument its length (4) and bytes */
    struct rkv_buf events;
    enum resp_status last; /* RESP_MORE or RESP_BAD */
    char error[RESP_ERROR_BYTES];
};

/* ---- one call ---- */

static bool is_multibulk(const uint8_t *buf, size_t len)
{
    return len > 0 && buf[0] == '*';
}

/* An integer resp_arg_int accepts is written as Redis's string2ll wants it
 * (no '+', no leading zero, no "-0"): it prints back as the same bytes. */
static void check_int(const uint8_t *a, size_t len)
{
    int64_t v;
    if (len > UINT32_MAX || !resp_arg_int(a, (uint32_t)len, &v))
        return;
    char s[24];
    int n = snprintf(s, sizeof s, "%" PRId64, v);
    FUZZ_CHECK(n > 0 && (size_t)n == len && memcmp(s, a, len) == 0);
}

static void check_args(const struct setup *s, const struct resp_parser *p, const uint8_t *buf,
                       size_t used)
{
    bool multi = is_multibulk(buf, used);
    FUZZ_CHECK(p->n >= 1);
    if (multi) {
        FUZZ_CHECK(used >= 2 && buf[used - 2] == '\r' && buf[used - 1] == '\n');
        FUZZ_CHECK(used <= s->request_max);
    } else {
        FUZZ_CHECK(buf[used - 1] == '\n');
        FUZZ_CHECK(used <= RESP_INLINE_MAX);
    }
    size_t prev_end = 0;
    for (uint32_t i = 0; i < p->n; i++) {
        size_t off = p->args[i].off, len = p->args[i].len;
        FUZZ_CHECK(len <= s->bulk_max);
        FUZZ_CHECK(off >= prev_end && off <= used && len <= used - off);
        FUZZ_CHECK(fuzz_inside(resp_arg_ptr(p, buf, i), len, buf, used));
        prev_end = off + len;
        check_int(buf + off, len);
        if (multi) {
            FUZZ_CHECK(off >= 2 && buf[off - 2] == '\r' && buf[off - 1] == '\n');
            FUZZ_CHECK(used - (off + len) >= 2 && buf[off + len] == '\r' &&
                       buf[off + len + 1] == '\n');
        } else {
            FUZZ_CHECK(len > 0);
            FUZZ_CHECK(memchr(buf + off, ' ', len) == NULL);
            FUZZ_CHECK(memchr(buf + off, '\t', len) == NULL);
            FUZZ_CHECK(memchr(buf + off, '\n', len) == NULL);
        }
    }
}

/* The error is text, and makes one error reply as node/resp.c sends it. */
static void check_bad(const struct resp_parser *p)
{
    const char *end = memchr(p->error, '\0', sizeof p->error);
    FUZZ_CHECK(end != NULL && end > p->error);
    struct rkv_buf reply = {0};
    FUZZ_CHECK(resp_error(&reply, "ERR %s", p->error) == RKV_OK);
    FUZZ_CHECK(reply.len >= 3 && reply.len <= RESP_ERROR_BYTES + 2);
    FUZZ_CHECK(reply.data[0] == '-' && reply.data[reply.len - 2] == '\r' &&
               reply.data[reply.len - 1] == '\n');
    FUZZ_CHECK(memchr(reply.data, '\r', reply.len - 2) == NULL);
    FUZZ_CHECK(memchr(reply.data, '\n', reply.len - 2) == NULL);
    rkv_buf_free(&reply);
}

/* The invariants of one resp_parse call that returned st over buf[0..len). */
static void check_call(const struct setup *s, const struct resp_parser *p, enum resp_status st,
                       const uint8_t *buf, size_t len, size_t used)
{
    FUZZ_CHECK(st == RESP_MORE || st == RESP_REQUEST || st == RESP_EMPTY || st == RESP_BAD);
    FUZZ_CHECK(used <= len);
    FUZZ_CHECK(p->n <= s->args_max && p->cap <= s->args_max);
    FUZZ_CHECK(p->n <= p->cap);
    if (st == RESP_REQUEST || st == RESP_EMPTY)
        FUZZ_CHECK(used > 0);
    else
        FUZZ_CHECK(used == 0); /* a caller may drop consumed bytes whatever the status */
    if (st == RESP_REQUEST)
        check_args(s, p, buf, used);
    if (st == RESP_EMPTY && is_multibulk(buf, used)) { /* *0 or a negative count */
        int64_t v;
        FUZZ_CHECK(used >= 4 && buf[used - 2] == '\r' && buf[used - 1] == '\n');
        FUZZ_CHECK(resp_arg_int(buf + 1, (uint32_t)(used - 3), &v) && v <= 0);
        check_int(buf + 1, used - 3);
    }
    if (st == RESP_BAD)
        check_bad(p);
}

/* resp_parse over b's bytes, with the rest of its capacity poisoned. */
static enum resp_status parse_buf(struct resp_parser *p, struct rkv_buf *b, size_t *used)
{
    if (b->cap > b->len)
        ASAN_POISON_MEMORY_REGION(b->data + b->len, b->cap - b->len);
    enum resp_status st = resp_parse(p, b->data, b->len, used);
    if (b->cap > b->len)
        ASAN_UNPOISON_MEMORY_REGION(b->data + b->len, b->cap - b->len);
    return st;
}

/* The request in p encodes as multibulk and parses back to the same. */
static void check_reencoded(const struct setup *s, const struct resp_parser *p, const uint8_t *buf,
                            size_t used)
{
    struct rkv_buf enc = {0};
    FUZZ_CHECK(resp_array(&enc, p->n) == RKV_OK);
    for (uint32_t i = 0; i < p->n; i++)
        FUZZ_CHECK(resp_bulk(&enc, resp_arg_ptr(p, buf, i), p->args[i].len) == RKV_OK);
    uint32_t request_max = s->request_max;
    if (is_multibulk(buf, used)) /* numbers are canonical: the same bytes */
        FUZZ_CHECK(enc.len == used && memcmp(enc.data, buf, used) == 0);
    else if (enc.len > request_max)
        request_max = (uint32_t)enc.len;

    struct resp_parser again;
    resp_parser_init(&again, s->args_max, s->bulk_max, request_max);
    size_t used2;
    enum resp_status st = parse_buf(&again, &enc, &used2);
    FUZZ_CHECK(st == RESP_REQUEST);
    FUZZ_CHECK(used2 == enc.len);
    FUZZ_CHECK(again.n == p->n);
    for (uint32_t i = 0; i < p->n; i++) {
        uint32_t len = p->args[i].len;
        FUZZ_CHECK(again.args[i].len == len);
        FUZZ_CHECK(len == 0 ||
                   memcmp(resp_arg_ptr(&again, enc.data, i), resp_arg_ptr(p, buf, i), len) == 0);
    }
    resp_parser_free(&again);
    rkv_buf_free(&enc);
}

/* ---- traces ---- */

static void trace_add(struct trace *t, const struct resp_parser *p, enum resp_status st,
                      const uint8_t *buf, size_t used)
{
    uint8_t head[13];
    head[0] = (uint8_t)st;
    rkv_put_u64(head + 1, used);
    rkv_put_u32(head + 9, st == RESP_REQUEST ? p->n : 0);
    FUZZ_CHECK(rkv_buf_append(&t->events, head, sizeof head) == RKV_OK);
    for (uint32_t i = 0; st == RESP_REQUEST && i < p->n; i++) {
        uint8_t len[4];
        rkv_put_u32(len, p->args[i].len);
        FUZZ_CHECK(rkv_buf_append(&t->events, len, sizeof len) == RKV_OK);
        FUZZ_CHECK(rkv_buf_append(&t->events, resp_arg_ptr(p, buf, i), p->args[i].len) == RKV_OK);
    }
}

static void trace_end(struct trace *t, const struct resp_parser *p, enum resp_status st)
{
    t->last = st;
    if (st == RESP_BAD)
        memcpy(t->error, p->error, sizeof t->error);
}

/* ---- the two ways of reading the stream ---- */

/* (a) All at once: after each request the parser gets what is left. */
static void parse_whole(const struct setup *s, const uint8_t *in, size_t n, struct trace *t)
{
    struct resp_parser p;
    resp_parser_init(&p, s->args_max, s->bulk_max, s->request_max);
    for (size_t off = 0;;) {
        size_t used;
        enum resp_status st = resp_parse(&p, in + off, n - off, &used);
        check_call(s, &p, st, in + off, n - off, used);
        if (st == RESP_MORE || st == RESP_BAD) {
            trace_end(t, &p, st);
            break;
        }
        trace_add(t, &p, st, in + off, used);
        if (st == RESP_REQUEST)
            check_reencoded(s, &p, in + off, used);
        off += used;
    }
    resp_parser_free(&p);
}

/* The buffer's bytes in a fresh allocation, as when a connection's buffer
 * is reallocated: the parser must hold offsets, not pointers. */
static void move_buffer(struct rkv_buf *b)
{
    struct rkv_buf fresh = {0};
    FUZZ_CHECK(rkv_buf_append(&fresh, b->data, b->len) == RKV_OK);
    rkv_buf_free(b);
    *b = fresh;
}

/* The request just parsed, whose trace starts at mark, parses again to the
 * same (node/resp.c parses a request again when its keys are busy). */
static void check_again(const struct setup *s, struct resp_parser *p, struct rkv_buf *buf,
                        size_t used, const struct trace *t, size_t mark)
{
    struct trace again = {.last = RESP_MORE};
    size_t used2;
    enum resp_status st = parse_buf(p, buf, &used2);
    check_call(s, p, st, buf->data, buf->len, used2);
    FUZZ_CHECK(st == RESP_REQUEST && used2 == used);
    trace_add(&again, p, st, buf->data, used2);
    FUZZ_CHECK(again.events.len == t->events.len - mark);
    FUZZ_CHECK(memcmp(again.events.data, t->events.data + mark, again.events.len) == 0);
    rkv_buf_free(&again.events);
}

/* (b) Read by read, as a connection gets the bytes. */
static void parse_reads(const struct setup *s, const uint8_t *in, size_t n, struct trace *t)
{
    struct resp_parser p;
    resp_parser_init(&p, s->args_max, s->bulk_max, s->request_max);
    struct rkv_buf buf = {0};
    size_t fed = 0;
    for (unsigned reads = 0;;) {
        size_t used;
        enum resp_status st = parse_buf(&p, &buf, &used);
        check_call(s, &p, st, buf.data, buf.len, used);
        if (st == RESP_BAD || (st == RESP_MORE && fed == n)) {
            trace_end(t, &p, st);
            break;
        }
        if (st == RESP_MORE) {
            size_t k = s->reads[reads++ % 4];
            k = k < n - fed ? k : n - fed;
            FUZZ_CHECK(rkv_buf_append(&buf, in + fed, k) == RKV_OK);
            fed += k;
            if (s->move && reads % MOVE_EVERY == 0)
                move_buffer(&buf);
            continue;
        }
        size_t mark = t->events.len;
        trace_add(t, &p, st, buf.data, used);
        if (s->again && st == RESP_REQUEST)
            check_again(s, &p, &buf, used, t, mark);
        memmove(buf.data, buf.data + used, buf.len - used);
        buf.len -= used;
    }
    resp_parser_free(&p);
    rkv_buf_free(&buf);
}

/* ---- the input ---- */

/* Reads the header; returns the stream (owned by the caller) and its length
 * in *n, or NULL if the input is too short. */
static uint8_t *setup_read(const uint8_t *data, size_t size, struct setup *s, size_t *n)
{
    if (size < HEADER_BYTES)
        return NULL;
    unsigned mode = data[0] >> 6;
    *s = (struct setup){
        .args_max = 1 + (data[0] & 63u),
        .bulk_max = bulk_maxes[data[1] & 15],
        .request_max = request_maxes[data[1] >> 4],
        .move = mode == MODE_MOVE,
        .again = mode == MODE_AGAIN,
    };
    size_t scale = mode == MODE_BIG ? BIG_READ_SCALE : 1;
    for (int i = 0; i < 4; i++)
        s->reads[i] = read_sizes[(data[2 + i / 2] >> (4 * (i % 2))) & 15] * scale;
    const uint8_t *rest = data + HEADER_BYTES;
    size_t rest_len = size - HEADER_BYTES, at = 0, fill = 0;
    if (mode == MODE_BIG) {
        if (rest_len < BIG_HEADER_BYTES)
            return NULL;
        at = rest[0];
        fill = BIG_FILL_BYTES + rest[1];
        rest += BIG_HEADER_BYTES;
        rest_len -= BIG_HEADER_BYTES;
        at = at < rest_len ? at : rest_len;
    }
    /* a copy of exactly the stream's size, so that ASan sees its end */
    *n = rest_len + fill;
    uint8_t *stream = malloc(*n ? *n : 1);
    FUZZ_CHECK(stream != NULL);
    memcpy(stream, rest, at);
    memset(stream + at, 'x', fill);
    memcpy(stream + at + fill, rest + at, rest_len - at);
    return stream;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct setup s;
    size_t n;
    uint8_t *stream = setup_read(data, size, &s, &n);
    if (stream == NULL)
        return 0;
    struct trace whole = {.last = RESP_MORE}, reads = {.last = RESP_MORE};
    parse_whole(&s, stream, n, &whole);
    parse_reads(&s, stream, n, &reads);

    FUZZ_CHECK(whole.events.len == reads.events.len);
    FUZZ_CHECK(whole.events.len == 0 ||
               memcmp(whole.events.data, reads.events.data, whole.events.len) == 0);
    FUZZ_CHECK(whole.last == reads.last);
    if (whole.last == RESP_BAD)
        FUZZ_CHECK(strcmp(whole.error, reads.error) == 0);

    rkv_buf_free(&whole.events);
    rkv_buf_free(&reads.events);
    free(stream);
    return 0;
}
