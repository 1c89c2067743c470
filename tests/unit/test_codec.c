/*
 * test_codec.c: the msgpack writer and the bounded reader (common/codec.h).
 *
 * Every type and size class is written, checked against the head byte the
 * msgpack spec gives it, and read back. The reader's defences get their own
 * cases: counts a frame cannot hold, nesting past MP_DEPTH_MAX, types no
 * ringkv format uses, truncation at every offset, and sticky failure. A
 * seeded fuzz loop feeds random and mutated bytes to mp_skip.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/codec.h"
#include "common/err.h"
#include "tests/support/testutil.h"

struct frame {
    struct rkv_buf b;
    struct mp_writer w;
};

static void frame_init(struct frame *f)
{
    memset(&f->b, 0, sizeof f->b);
    mp_writer_init(&f->w, &f->b);
}

static void frame_free(struct frame *f)
{
    rkv_buf_free(&f->b);
}

static void reader(struct mp_reader *r, const struct frame *f)
{
    ck_assert(!f->w.failed);
    mp_reader_init(r, f->b.data, f->b.len);
}

/* ---- integers ---- */

struct uint_case {
    uint64_t v;
    uint8_t head;
    size_t len;
};

static const struct uint_case uint_cases[] = {
    {.v = 0, .head = 0x00, .len = 1},
    {.v = 1, .head = 0x01, .len = 1},
    {.v = 127, .head = 0x7f, .len = 1},
    {.v = 128, .head = 0xcc, .len = 2},
    {.v = 255, .head = 0xcc, .len = 2},
    {.v = 256, .head = 0xcd, .len = 3},
    {.v = 65535, .head = 0xcd, .len = 3},
    {.v = 65536, .head = 0xce, .len = 5},
    {.v = 0xffffffffull, .head = 0xce, .len = 5},
    {.v = 0x100000000ull, .head = 0xcf, .len = 9},
    {.v = UINT64_MAX, .head = 0xcf, .len = 9},
};

START_TEST(uint_round_trip)
{
    for (size_t i = 0; i < sizeof uint_cases / sizeof uint_cases[0]; i++) {
        const struct uint_case *c = &uint_cases[i];
        struct frame f;
        frame_init(&f);
        mp_write_uint(&f.w, c->v);
        ck_assert_uint_eq(f.b.len, c->len);
        ck_assert_uint_eq(f.b.data[0], c->head);
        struct mp_reader r;
        uint64_t v;
        reader(&r, &f);
        ck_assert(mp_read_uint(&r, &v));
        ck_assert_uint_eq(v, c->v);
        ck_assert(mp_done(&r));
        /* the same bytes as a signed integer, where they fit */
        int64_t s;
        reader(&r, &f);
        ck_assert(mp_read_int(&r, &s) == (c->v <= INT64_MAX));
        if (c->v <= INT64_MAX)
            ck_assert(s == (int64_t)c->v);
        frame_free(&f);
    }
}
END_TEST

struct int_case {
    int64_t v;
    uint8_t head;
    size_t len;
};

static const struct int_case int_cases[] = {
    {.v = -1, .head = 0xff, .len = 1},
    {.v = -32, .head = 0xe0, .len = 1},
    {.v = -33, .head = 0xd0, .len = 2},
    {.v = -128, .head = 0xd0, .len = 2},
    {.v = -129, .head = 0xd1, .len = 3},
    {.v = -32768, .head = 0xd1, .len = 3},
    {.v = -32769, .head = 0xd2, .len = 5},
    {.v = INT32_MIN, .head = 0xd2, .len = 5},
    {.v = (int64_t)INT32_MIN - 1, .head = 0xd3, .len = 9},
    {.v = INT64_MIN, .head = 0xd3, .len = 9},
    {.v = 5, .head = 0x05, .len = 1},
    {.v = INT64_MAX, .head = 0xcf, .len = 9},
};

START_TEST(int_round_trip)
{
    for (size_t i = 0; i < sizeof int_cases / sizeof int_cases[0]; i++) {
        const struct int_case *c = &int_cases[i];
        struct frame f;
        frame_init(&f);
        mp_write_int(&f.w, c->v);
        ck_assert_uint_eq(f.b.len, c->len);
        ck_assert_uint_eq(f.b.data[0], c->head);
        struct mp_reader r;
        int64_t v;
        reader(&r, &f);
        ck_assert(mp_read_int(&r, &v));
        ck_assert(v == c->v);
        ck_assert(mp_done(&r));
        uint64_t u;
        reader(&r, &f);
        ck_assert(mp_read_uint(&r, &u) == (c->v >= 0)); /* negatives are not uints */
        frame_free(&f);
    }
}
END_TEST

START_TEST(int_edge_encodings)
{
    /* signed encodings of non-negative values are still uints */
    static const uint8_t d0_5[] = {0xd0, 0x05};
    static const uint8_t d3_pos[] = {0xd3, 0, 0, 0, 0, 0, 0, 0x01, 0x00};
    static const uint8_t d0_neg[] = {0xd0, 0xff};
    static const uint8_t cf_big[] = {0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0};
    struct mp_reader r;
    uint64_t u;
    int64_t s;
    mp_reader_init(&r, d0_5, sizeof d0_5);
    ck_assert(mp_read_uint(&r, &u) && u == 5);
    mp_reader_init(&r, d3_pos, sizeof d3_pos);
    ck_assert(mp_read_uint(&r, &u) && u == 256);
    mp_reader_init(&r, d0_neg, sizeof d0_neg);
    ck_assert(!mp_read_uint(&r, &u));
    mp_reader_init(&r, d0_neg, sizeof d0_neg);
    ck_assert(mp_read_int(&r, &s) && s == -1);
    mp_reader_init(&r, cf_big, sizeof cf_big); /* 2^63 does not fit int64 */
    ck_assert(!mp_read_int(&r, &s));
    ck_assert(r.failed);
}
END_TEST

START_TEST(narrowing)
{
    struct frame f;
    frame_init(&f);
    mp_write_uint(&f.w, UINT32_MAX);
    mp_write_uint(&f.w, (uint64_t)UINT32_MAX + 1);
    mp_write_uint(&f.w, UINT16_MAX);
    mp_write_uint(&f.w, UINT16_MAX + 1);
    struct mp_reader r;
    uint32_t v32;
    uint16_t v16;
    reader(&r, &f);
    ck_assert(mp_read_u32(&r, &v32) && v32 == UINT32_MAX);
    ck_assert(!mp_read_u32(&r, &v32));
    reader(&r, &f);
    ck_assert(mp_skip(&r) && mp_skip(&r));
    ck_assert(mp_read_u16(&r, &v16) && v16 == UINT16_MAX);
    ck_assert(!mp_read_u16(&r, &v16));
    frame_free(&f);
}
END_TEST

/* ---- strings and binaries ---- */

struct len_case {
    uint32_t len;
    uint8_t head;
    size_t hdr;
};

static const struct len_case str_cases[] = {
    {.len = 0, .head = 0xa0, .hdr = 1},     {.len = 31, .head = 0xbf, .hdr = 1},
    {.len = 32, .head = 0xd9, .hdr = 2},    {.len = 255, .head = 0xd9, .hdr = 2},
    {.len = 256, .head = 0xda, .hdr = 3},   {.len = 65535, .head = 0xda, .hdr = 3},
    {.len = 65536, .head = 0xdb, .hdr = 5},
};

static const struct len_case bin_cases[] = {
    {.len = 0, .head = 0xc4, .hdr = 2},     {.len = 255, .head = 0xc4, .hdr = 2},
    {.len = 256, .head = 0xc5, .hdr = 3},   {.len = 65535, .head = 0xc5, .hdr = 3},
    {.len = 65536, .head = 0xc6, .hdr = 5},
};

static char *pattern(uint32_t len)
{
    char *p = malloc(len ? len : 1);
    for (uint32_t i = 0; i < len; i++)
        p[i] = (char)('a' + i % 26);
    return p;
}

START_TEST(str_round_trip)
{
    for (size_t i = 0; i < sizeof str_cases / sizeof str_cases[0]; i++) {
        const struct len_case *c = &str_cases[i];
        char *src = pattern(c->len);
        struct frame f;
        frame_init(&f);
        mp_write_str(&f.w, src, c->len);
        ck_assert_uint_eq(f.b.len, c->hdr + c->len);
        ck_assert_uint_eq(f.b.data[0], c->head);
        struct mp_reader r;
        const char *s;
        uint32_t len;
        reader(&r, &f);
        ck_assert(mp_read_str(&r, &s, &len));
        ck_assert_uint_eq(len, c->len);
        ck_assert(memcmp(s, src, len) == 0);
        ck_assert(s == (const char *)f.b.data + c->hdr); /* borrowed, not copied */
        ck_assert(mp_done(&r));
        const uint8_t *p;
        reader(&r, &f);
        ck_assert(!mp_read_bin(&r, &p, &len)); /* a str is not a bin */
        frame_free(&f);
        free(src);
    }
    struct frame f;
    frame_init(&f);
    mp_write_cstr(&f.w, "ringkv");
    ck_assert_uint_eq(f.b.len, 7);
    ck_assert_uint_eq(f.b.data[0], 0xa6);
    frame_free(&f);
}
END_TEST

START_TEST(bin_round_trip)
{
    for (size_t i = 0; i < sizeof bin_cases / sizeof bin_cases[0]; i++) {
        const struct len_case *c = &bin_cases[i];
        char *src = pattern(c->len);
        struct frame f;
        frame_init(&f);
        mp_write_bin(&f.w, src, c->len);
        ck_assert_uint_eq(f.b.len, c->hdr + c->len);
        ck_assert_uint_eq(f.b.data[0], c->head);
        struct mp_reader r;
        const uint8_t *p;
        uint32_t len;
        reader(&r, &f);
        ck_assert(mp_read_bin(&r, &p, &len));
        ck_assert_uint_eq(len, c->len);
        ck_assert(memcmp(p, src, len) == 0);
        ck_assert(mp_done(&r));
        const char *s;
        reader(&r, &f);
        ck_assert(!mp_read_str(&r, &s, &len));
        frame_free(&f);
        free(src);
    }
}
END_TEST

START_TEST(oversized_length_refused)
{
    /* msgpack lengths are 32 bits; the writer must not emit a truncated
     * length followed by the payload. The payload is never touched. */
    static const char byte = 'x';
    size_t huge = (size_t)UINT32_MAX + 1;
    struct frame f;
    frame_init(&f);
    mp_write_uint(&f.w, 7);
    mp_write_bin(&f.w, &byte, huge);
    ck_assert(f.w.failed);
    ck_assert_uint_eq(f.b.len, 1);
    mp_write_str(&f.w, &byte, huge);
    ck_assert_uint_eq(f.b.len, 1);
    frame_free(&f);
}
END_TEST

/* ---- containers ---- */

static const uint32_t counts[] = {0, 1, 15, 16, 65535, 65536};

START_TEST(array_round_trip)
{
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        uint32_t n = counts[i];
        struct frame f;
        frame_init(&f);
        mp_write_array(&f.w, n);
        size_t hdr = f.b.len;
        ck_assert_uint_eq(hdr, n < 16 ? 1 : n < 65536 ? 3 : 5);
        ck_assert_uint_eq(f.b.data[0], n < 16 ? 0x90 | n : n < 65536 ? 0xdc : 0xdd);
        for (uint32_t k = 0; k < n; k++)
            mp_write_nil(&f.w);
        struct mp_reader r;
        uint32_t got;
        reader(&r, &f);
        ck_assert(mp_read_array(&r, &got));
        ck_assert_uint_eq(got, n);
        for (uint32_t k = 0; k < n; k++)
            ck_assert(mp_read_nil(&r));
        ck_assert(mp_done(&r));
        reader(&r, &f);
        ck_assert(mp_skip(&r) && mp_done(&r));
        reader(&r, &f);
        ck_assert(!mp_read_map(&r, &got));
        frame_free(&f);
    }
}
END_TEST

START_TEST(map_round_trip)
{
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        uint32_t n = counts[i];
        struct frame f;
        frame_init(&f);
        mp_write_map(&f.w, n);
        ck_assert_uint_eq(f.b.len, n < 16 ? 1 : n < 65536 ? 3 : 5);
        ck_assert_uint_eq(f.b.data[0], n < 16 ? 0x80 | n : n < 65536 ? 0xde : 0xdf);
        for (uint32_t k = 0; k < n; k++) {
            mp_write_uint(&f.w, k % 100);
            mp_write_bool(&f.w, k & 1);
        }
        struct mp_reader r;
        uint32_t got;
        reader(&r, &f);
        ck_assert(mp_read_map(&r, &got));
        ck_assert_uint_eq(got, n);
        for (uint32_t k = 0; k < n; k++) {
            uint64_t key;
            bool v;
            ck_assert(mp_read_uint(&r, &key) && key == k % 100);
            ck_assert(mp_read_bool(&r, &v) && v == (k & 1));
        }
        ck_assert(mp_done(&r));
        reader(&r, &f);
        ck_assert(mp_skip(&r) && mp_done(&r));
        reader(&r, &f);
        ck_assert(!mp_read_array(&r, &got));
        frame_free(&f);
    }
}
END_TEST

START_TEST(nil_bool_raw)
{
    struct frame f;
    frame_init(&f);
    mp_write_nil(&f.w);
    mp_write_bool(&f.w, true);
    mp_write_bool(&f.w, false);
    static const uint8_t raw[] = {0x92, 0x01, 0xc0};
    mp_write_raw(&f.w, raw, sizeof raw);
    ck_assert_uint_eq(f.b.len, 6);
    ck_assert_uint_eq(f.b.data[0], 0xc0);
    ck_assert_uint_eq(f.b.data[1], 0xc3);
    ck_assert_uint_eq(f.b.data[2], 0xc2);
    struct mp_reader r;
    bool v;
    reader(&r, &f);
    ck_assert(mp_peek_nil(&r));
    ck_assert(mp_read_nil(&r));
    ck_assert(!mp_peek_nil(&r));
    ck_assert(mp_read_bool(&r, &v) && v);
    ck_assert(mp_read_bool(&r, &v) && !v);
    ck_assert_uint_eq(mp_left(&r), 3);
    ck_assert(mp_skip(&r));
    ck_assert(mp_done(&r));
    ck_assert(!mp_peek_nil(&r)); /* nothing left */
    /* 0 and 1 are not booleans */
    static const uint8_t one[] = {0x01};
    mp_reader_init(&r, one, 1);
    ck_assert(!mp_read_bool(&r, &v));
    mp_reader_init(&r, one, 1);
    ck_assert(!mp_read_nil(&r));
    frame_free(&f);
}
END_TEST

START_TEST(empty_and_null_input)
{
    struct mp_reader r;
    uint64_t u;
    mp_reader_init(&r, NULL, 0);
    ck_assert(mp_done(&r));
    ck_assert_uint_eq(mp_left(&r), 0);
    ck_assert(!mp_peek_nil(&r));
    ck_assert(!mp_read_uint(&r, &u));
    mp_reader_init(&r, NULL, 0);
    ck_assert(!mp_skip(&r));
    ck_assert(!mp_done(&r));
}
END_TEST

/* ---- defences ---- */

START_TEST(huge_count_trap)
{
    /* five bytes claiming 2^32 - 1 elements: refused, nothing sized by it */
    static const uint8_t arr32[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t map32[] = {0xdf, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t arr16[] = {0xdc, 0xff, 0xff, 0x01};
    static const uint8_t bin32[] = {0xc6, 0xff, 0xff, 0xff, 0xff, 0x00};
    static const uint8_t str32[] = {0xdb, 0xff, 0xff, 0xff, 0xff, 0x00};
    static const uint8_t map_half[] = {0x82, 0x01, 0x02, 0x03}; /* 2 pairs need 4 bytes */
    static const uint8_t arr_exact[] = {0x93, 0x01, 0x02, 0x03};
    struct mp_reader r;
    uint32_t n;
    const uint8_t *p;
    const char *s;
    mp_reader_init(&r, arr32, sizeof arr32);
    ck_assert(!mp_read_array(&r, &n));
    ck_assert(r.failed);
    mp_reader_init(&r, arr32, sizeof arr32);
    ck_assert(!mp_skip(&r));
    mp_reader_init(&r, map32, sizeof map32);
    ck_assert(!mp_read_map(&r, &n));
    mp_reader_init(&r, map32, sizeof map32);
    ck_assert(!mp_skip(&r));
    mp_reader_init(&r, arr16, sizeof arr16);
    ck_assert(!mp_read_array(&r, &n));
    mp_reader_init(&r, bin32, sizeof bin32);
    ck_assert(!mp_read_bin(&r, &p, &n));
    mp_reader_init(&r, str32, sizeof str32);
    ck_assert(!mp_read_str(&r, &s, &n));
    mp_reader_init(&r, map_half, sizeof map_half);
    ck_assert(!mp_read_map(&r, &n));
    mp_reader_init(&r, arr_exact, sizeof arr_exact);
    ck_assert(mp_read_array(&r, &n) && n == 3);
}
END_TEST

/* depth nested containers (arrays, or maps with the nest as value);
 * scalar: the innermost holds a 1, else it is empty. */
static size_t nest(uint8_t *b, int depth, bool maps, bool scalar)
{
    size_t n = 0;
    for (int i = 0; i < depth - 1; i++) {
        b[n++] = maps ? 0x81 : 0x91;
        if (maps)
            b[n++] = 0x00; /* key */
    }
    if (maps) {
        b[n++] = scalar ? 0x81 : 0x80;
        if (scalar) {
            b[n++] = 0x00;
            b[n++] = 0x01;
        }
    } else {
        b[n++] = scalar ? 0x91 : 0x90;
        if (scalar)
            b[n++] = 0x01;
    }
    return n;
}

START_TEST(skip_depth_cap)
{
    uint8_t b[4 * (MP_DEPTH_MAX + 4)];
    for (int maps = 0; maps <= 1; maps++)
        for (int scalar = 0; scalar <= 1; scalar++) {
            struct mp_reader r;
            size_t n = nest(b, MP_DEPTH_MAX, maps, scalar);
            mp_reader_init(&r, b, n);
            ck_assert_msg(mp_skip(&r) && mp_done(&r), "maps %d scalar %d", maps, scalar);
            n = nest(b, MP_DEPTH_MAX + 1, maps, scalar);
            mp_reader_init(&r, b, n);
            ck_assert_msg(!mp_skip(&r), "maps %d scalar %d", maps, scalar);
            ck_assert(r.failed);
        }
    /* depth is counted down again on the way out: siblings of a deep nest */
    size_t n = 0;
    b[n++] = 0x92;
    n += nest(b + n, MP_DEPTH_MAX - 1, false, true);
    n += nest(b + n, MP_DEPTH_MAX - 1, false, true);
    struct mp_reader r;
    mp_reader_init(&r, b, n);
    ck_assert(mp_skip(&r) && mp_done(&r));
}
END_TEST

START_TEST(foreign_types_rejected)
{
    static const uint8_t cases[][10] = {
        {0xca, 0, 0, 0, 0},                   /* float32 */
        {0xcb, 0, 0, 0, 0, 0, 0, 0, 0},       /* float64 */
        {0xd4, 0x01, 0x00},                   /* fixext1 */
        {0xd5, 0x01, 0x00, 0x00},             /* fixext2 */
        {0xd6, 0x01, 0, 0, 0, 0},             /* fixext4 */
        {0xd7, 0x01, 0, 0, 0, 0, 0, 0, 0, 0}, /* fixext8 */
        {0xc7, 0x01, 0x01, 0x00},             /* ext8 */
        {0xc8, 0x00, 0x01, 0x01, 0x00},       /* ext16 */
        {0xc1},                               /* never used */
    };
    static const size_t lens[] = {5, 9, 3, 4, 6, 10, 4, 5, 1};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        struct mp_reader r;
        uint64_t u;
        int64_t s;
        mp_reader_init(&r, cases[i], lens[i]);
        ck_assert_msg(!mp_skip(&r), "case %zu", i);
        mp_reader_init(&r, cases[i], lens[i]);
        ck_assert(!mp_read_uint(&r, &u));
        mp_reader_init(&r, cases[i], lens[i]);
        ck_assert(!mp_read_int(&r, &s));
        /* inside an array too */
        uint8_t in_array[12] = {0x91};
        memcpy(in_array + 1, cases[i], lens[i]);
        mp_reader_init(&r, in_array, lens[i] + 1);
        ck_assert(!mp_skip(&r));
    }
}
END_TEST

/* A message with one of everything. */
static void write_everything(struct frame *f)
{
    mp_write_array(&f->w, 12);
    mp_write_uint(&f->w, 3);
    mp_write_uint(&f->w, 300);
    mp_write_uint(&f->w, UINT64_MAX);
    mp_write_int(&f->w, -5);
    mp_write_int(&f->w, INT64_MIN);
    mp_write_bool(&f->w, true);
    mp_write_nil(&f->w);
    mp_write_str(&f->w, "hello world, this is longer than 32", 35);
    char blob[300];
    memset(blob, 7, sizeof blob);
    mp_write_bin(&f->w, blob, sizeof blob);
    mp_write_map(&f->w, 2);
    mp_write_cstr(&f->w, "k");
    mp_write_array(&f->w, 0);
    mp_write_cstr(&f->w, "m");
    mp_write_map(&f->w, 0);
    mp_write_array(&f->w, 1);
    mp_write_array(&f->w, 1);
    mp_write_uint(&f->w, 1);
    mp_write_bin(&f->w, "", 0);
}

/* Reads write_everything's message field by field. */
static bool read_everything(struct mp_reader *r)
{
    uint32_t n, len;
    uint64_t u;
    int64_t s;
    bool b;
    const char *str;
    const uint8_t *p;
    mp_read_array(r, &n);
    mp_read_uint(r, &u);
    mp_read_uint(r, &u);
    mp_read_uint(r, &u);
    mp_read_int(r, &s);
    mp_read_int(r, &s);
    mp_read_bool(r, &b);
    mp_read_nil(r);
    mp_read_str(r, &str, &len);
    mp_read_bin(r, &p, &len);
    mp_read_map(r, &n);
    mp_read_str(r, &str, &len);
    mp_read_array(r, &n);
    mp_read_str(r, &str, &len);
    mp_read_map(r, &n);
    mp_skip(r);
    mp_read_bin(r, &p, &len);
    return mp_done(r);
}

START_TEST(truncated_everywhere)
{
    struct frame f;
    frame_init(&f);
    write_everything(&f);
    struct mp_reader r;
    reader(&r, &f);
    ck_assert(read_everything(&r));
    reader(&r, &f);
    ck_assert(mp_skip(&r) && mp_done(&r));
    for (size_t cut = 0; cut < f.b.len; cut++) {
        /* a private copy of exactly cut bytes, so ASan sees any overread */
        uint8_t *copy = malloc(cut ? cut : 1);
        memcpy(copy, f.b.data, cut);
        mp_reader_init(&r, copy, cut);
        ck_assert_msg(!read_everything(&r), "cut %zu", cut);
        ck_assert(r.failed);
        mp_reader_init(&r, copy, cut);
        ck_assert_msg(!mp_skip(&r), "cut %zu", cut);
        free(copy);
    }
    frame_free(&f);
}
END_TEST

START_TEST(sticky_failure)
{
    struct frame f;
    frame_init(&f);
    mp_write_cstr(&f.w, "x");
    mp_write_uint(&f.w, 1);
    mp_write_nil(&f.w);
    struct mp_reader r;
    uint64_t u;
    reader(&r, &f);
    ck_assert(!mp_read_uint(&r, &u)); /* a str, not a uint */
    ck_assert(r.failed);
    /* everything after fails, even what would have been valid */
    const char *s;
    uint32_t len;
    ck_assert(!mp_read_str(&r, &s, &len));
    ck_assert(!mp_read_uint(&r, &u));
    ck_assert(!mp_read_nil(&r));
    ck_assert(!mp_peek_nil(&r));
    ck_assert(!mp_skip(&r));
    ck_assert(!mp_done(&r));
    frame_free(&f);
}
END_TEST

START_TEST(writer_failure_is_sticky)
{
    struct rkv_buf b = {0};
    ck_assert_int_eq(rkv_buf_append(&b, "abcdefgh", 8), RKV_OK);
    ck_assert_uint_le(b.cap, 64); /* the next append of 64 bytes must grow */
    struct mp_writer w;
    mp_writer_init(&w, &b);
    test_alloc_fail_from(0);
    char big[64] = {0};
    mp_write_bin(&w, big, sizeof big);
    test_alloc_reset();
    ck_assert(w.failed);
    /* allocations work again, but the writer stays failed and appends nothing */
    mp_write_uint(&w, 1);
    mp_write_raw(&w, "x", 1);
    ck_assert(w.failed);
    ck_assert_uint_eq(b.len, 8);
    ck_assert(memcmp(b.data, "abcdefgh", 8) == 0);
    rkv_buf_free(&b);
}
END_TEST

START_TEST(fuzz_skip)
{
    int seeds = test_seeds(200);
    struct frame f;
    frame_init(&f);
    write_everything(&f);
    for (int seed = 0; seed < seeds; seed++) {
        struct test_rng rng = {(uint64_t)seed};
        size_t len = f.b.len;
        uint8_t *b = malloc(len);
        memcpy(b, f.b.data, len);
        int edits = 1 + (int)test_rng_below(&rng, 4);
        for (int e = 0; e < edits; e++)
            b[test_rng_below(&rng, len)] = (uint8_t)test_rng_next(&rng);
        if (seed % 3 == 0) /* pure noise */
            for (size_t i = 0; i < len; i++)
                b[i] = (uint8_t)test_rng_next(&rng);
        struct mp_reader r;
        mp_reader_init(&r, b, len);
        bool ok = mp_skip(&r);
        ck_assert_msg(!ok || mp_left(&r) <= len, "seed %d", seed);
        ck_assert_msg(ok != r.failed, "seed %d", seed);
        mp_reader_init(&r, b, len);
        read_everything(&r);
        free(b);
    }
    frame_free(&f);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("codec");
    TCase *tc = tcase_create("codec");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, uint_round_trip);
    tcase_add_test(tc, int_round_trip);
    tcase_add_test(tc, int_edge_encodings);
    tcase_add_test(tc, narrowing);
    tcase_add_test(tc, str_round_trip);
    tcase_add_test(tc, bin_round_trip);
    tcase_add_test(tc, oversized_length_refused);
    tcase_add_test(tc, array_round_trip);
    tcase_add_test(tc, map_round_trip);
    tcase_add_test(tc, nil_bool_raw);
    tcase_add_test(tc, empty_and_null_input);
    tcase_add_test(tc, huge_count_trap);
    tcase_add_test(tc, skip_depth_cap);
    tcase_add_test(tc, foreign_types_rejected);
    tcase_add_test(tc, truncated_everywhere);
    tcase_add_test(tc, sticky_failure);
    tcase_add_test(tc, writer_failure_is_sticky);
    tcase_add_test(tc, fuzz_skip);
    suite_add_tcase(su, tc);
    return test_run(su);
}
