/*
 * fuzz_codec.c: libFuzzer target for the bounded msgpack reader
 * (common/codec.h), the layer under every ringkv decoder.
 *
 * Input layout: byte 0 chooses the program length L = 1 + byte0 % 8; the
 * next L bytes are the program, one read call per byte (byte % OP_COUNT);
 * everything after is the msgpack data, handed to the reader as the tail of
 * libFuzzer's buffer so AddressSanitizer catches any read past its end. The
 * program runs over and over until the reader fails, the data is consumed
 * or a step budget (linear in the data) is spent. After every call:
 *
 *   - the cursor stays inside the data and never moves back;
 *   - a borrowed bin/str lies inside the data; an array or map count fits
 *     the bytes left (one byte per element, two per pair);
 *   - a scalar that was read is skipped by mp_skip to the same offset, and
 *     written again with the mp_writer it reads back the same;
 *   - once failed, the reader stays failed and its cursor stays put.
 *
 * A second pass walks the data with mp_skip alone: each success consumes at
 * least one byte, and success and r->failed always disagree.
 */
#include <stdbool.h>
#include <string.h>

#include "common/buf.h"
#include "common/codec.h"
#include "tests/fuzz/fuzz.h"

enum op {
    OP_ARRAY,
    OP_MAP,
    OP_UINT,
    OP_INT,
    OP_BOOL,
    OP_NIL,
    OP_BIN,
    OP_STR,
    OP_U32,
    OP_U16,
    OP_PEEK_NIL,
    OP_SKIP,
    OP_INT_PAIR, /* read_uint and read_int from the same place agree */
    OP_COUNT,
};

/* What one call produced, for the checks. */
struct result {
    bool ok;
    bool scalar; /* a value with nothing nested: mp_skip must agree */
    uint32_t n;  /* array/map count, bin/str length */
    uint64_t u;
    int64_t i;
    bool b;
    const uint8_t *p;
};

/* Writes what op read and reads it back with a fresh reader. */
static void check_rewrite(enum op op, const struct result *res)
{
    struct rkv_buf buf = {0};
    struct mp_writer w;
    mp_writer_init(&w, &buf);
    switch (op) {
    case OP_UINT:
    case OP_U32:
    case OP_U16:
        mp_write_uint(&w, res->u);
        break;
    case OP_INT:
        mp_write_int(&w, res->i);
        break;
    case OP_BOOL:
        mp_write_bool(&w, res->b);
        break;
    case OP_NIL:
        mp_write_nil(&w);
        break;
    case OP_BIN:
        mp_write_bin(&w, res->p, res->n);
        break;
    case OP_STR:
        mp_write_str(&w, (const char *)res->p, res->n);
        break;
    default:
        rkv_buf_free(&buf);
        return;
    }
    FUZZ_CHECK(!w.failed);
    struct mp_reader r;
    mp_reader_init(&r, buf.data, buf.len);
    uint64_t u;
    int64_t i;
    bool b;
    const uint8_t *p;
    const char *s;
    uint32_t n;
    switch (op) {
    case OP_UINT:
    case OP_U32:
    case OP_U16:
        FUZZ_CHECK(mp_read_uint(&r, &u) && u == res->u);
        break;
    case OP_INT:
        FUZZ_CHECK(mp_read_int(&r, &i) && i == res->i);
        break;
    case OP_BOOL:
        FUZZ_CHECK(mp_read_bool(&r, &b) && b == res->b);
        break;
    case OP_NIL:
        FUZZ_CHECK(mp_read_nil(&r));
        break;
    case OP_BIN:
        FUZZ_CHECK(mp_read_bin(&r, &p, &n) && n == res->n && (n == 0 || !memcmp(p, res->p, n)));
        break;
    case OP_STR:
        FUZZ_CHECK(mp_read_str(&r, &s, &n) && n == res->n && (n == 0 || !memcmp(s, res->p, n)));
        break;
    default:
        break;
    }
    FUZZ_CHECK(mp_done(&r));
    rkv_buf_free(&buf);
}

static struct result run_op(struct mp_reader *r, enum op op)
{
    struct result res = {.ok = false, .scalar = true};
    uint32_t u32;
    uint16_t u16;
    const char *s;
    switch (op) {
    case OP_ARRAY:
        res.scalar = false;
        res.ok = mp_read_array(r, &res.n);
        if (res.ok)
            FUZZ_CHECK(res.n <= mp_left(r));
        break;
    case OP_MAP:
        res.scalar = false;
        res.ok = mp_read_map(r, &res.n);
        if (res.ok)
            FUZZ_CHECK(2ull * res.n <= mp_left(r));
        break;
    case OP_UINT:
        res.ok = mp_read_uint(r, &res.u);
        break;
    case OP_INT:
        res.ok = mp_read_int(r, &res.i);
        break;
    case OP_BOOL:
        res.ok = mp_read_bool(r, &res.b);
        break;
    case OP_NIL:
        res.ok = mp_read_nil(r);
        break;
    case OP_BIN:
        res.ok = mp_read_bin(r, &res.p, &res.n);
        break;
    case OP_STR:
        res.ok = mp_read_str(r, &s, &res.n);
        res.p = (const uint8_t *)s;
        break;
    case OP_U32:
        res.ok = mp_read_u32(r, &u32);
        res.u = u32;
        break;
    case OP_U16:
        res.ok = mp_read_u16(r, &u16);
        res.u = u16;
        break;
    case OP_PEEK_NIL: {
        const uint8_t *at = r->p;
        res.ok = mp_peek_nil(r);
        FUZZ_CHECK(r->p == at); /* a peek consumes nothing */
        FUZZ_CHECK(!res.ok || (!r->failed && mp_left(r) > 0 && *r->p == 0xc0));
        res.scalar = false;
        break;
    }
    case OP_SKIP:
        res.ok = mp_skip(r);
        res.scalar = false;
        break;
    case OP_INT_PAIR: {
        struct mp_reader a = *r, b = *r;
        uint64_t u;
        int64_t i;
        bool ua = mp_read_uint(&a, &u), ib = mp_read_int(&b, &i);
        if (ua && ib) {
            FUZZ_CHECK((uint64_t)i == u && a.p == b.p);
        }
        if (ua && u <= (uint64_t)INT64_MAX)
            FUZZ_CHECK(ib); /* a non-negative int64 reads both ways */
        *r = ua ? a : b;
        res.ok = ua || ib;
        res.scalar = false;
        break;
    }
    default:
        break;
    }
    return res;
}

static void run_program(const uint8_t *prog, size_t n_prog, const uint8_t *data, size_t size)
{
    struct mp_reader r;
    mp_reader_init(&r, data, size);
    const uint8_t *begin = r.p, *end = r.end;
    size_t budget = 4 * size + 64;
    for (size_t step = 0; step < budget && !r.failed && mp_left(&r) > 0; step++) {
        enum op op = (enum op)(prog[step % n_prog] % OP_COUNT);
        struct mp_reader before = r;
        struct result res = run_op(&r, op);
        FUZZ_CHECK(r.p >= before.p && r.p <= end && r.end == end);
        FUZZ_CHECK(res.ok != r.failed || op == OP_PEEK_NIL);
        if (!res.ok)
            continue;
        if (op == OP_BIN || op == OP_STR)
            FUZZ_CHECK(fuzz_inside(res.p, res.n, begin, size));
        if (res.scalar) {
            struct mp_reader sk = before;
            FUZZ_CHECK(mp_skip(&sk) && sk.p == r.p);
            check_rewrite(op, &res);
        }
    }
    if (r.failed) {
        /* sticky: every later call fails and moves nothing */
        const uint8_t *at = r.p;
        for (int op = 0; op < OP_COUNT; op++) {
            struct result res = run_op(&r, (enum op)op);
            FUZZ_CHECK(!res.ok && r.failed && r.p == at);
        }
        FUZZ_CHECK(!mp_done(&r));
    }
}

static void skip_all(const uint8_t *data, size_t size)
{
    struct mp_reader r;
    mp_reader_init(&r, data, size);
    while (mp_left(&r) > 0) {
        size_t left = mp_left(&r);
        bool ok = mp_skip(&r);
        FUZZ_CHECK(ok != r.failed);
        if (!ok)
            break;
        FUZZ_CHECK(mp_left(&r) < left);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t n_prog = 1 + data[0] % 8;
    if (size < 1 + n_prog)
        return 0;
    const uint8_t *prog = data + 1;
    const uint8_t *msg = data + 1 + n_prog;
    size_t msg_len = size - 1 - n_prog;
    run_program(prog, n_prog, msg, msg_len);
    skip_all(msg, msg_len);
    return 0;
}
