/*
 * make_corpus.c: writes the seed corpora of the fuzz targets
 * (tests/fuzz/corpus/<target>/), with the project's own encoders.
 *
 *   make fuzz-corpus          (runs: make_corpus tests/fuzz/corpus)
 *
 * The seeds are committed, so neither CI nor `make fuzz` runs this; run it
 * again after a format changes, and commit what it writes. It only adds
 * and overwrites the files it names, so seeds added by hand (regressions
 * from fuzzing runs) stay. Every seed is small: the targets are fed valid
 * inputs of every shape, plus the known traps:
 *
 *   - a header that claims billions of elements in a few bytes
 *     (dd ff ff ff ff, df ff ff ff ff), alone and inside otherwise valid
 *     messages and objects;
 *   - nesting hundreds deep (0x91 repeated);
 *   - truncated messages, non-canonical integers, damaged files.
 *
 * Names say what a seed is; docs/fuzzing.md lists them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/buf.h"
#include "common/codec.h"
#include "common/err.h"
#include "common/log.h"
#include "common/object.h"
#include "common/resp.h"
#include "common/wire.h"
#include "gossip/gossip.h"
#include "storage/storage.h"
#include "tests/fuzz/gossip_seed.h"
#include "tests/fuzz/storage_seed.h"
#include "tests/support/memvfs.h"

#define TS 1700000000000ull

static const char *out_dir;

static void die(const char *what)
{
    fprintf(stderr, "make_corpus: %s\n", what);
    exit(1);
}

static void check(int rc, const char *what)
{
    if (rc != RKV_OK) {
        fprintf(stderr, "make_corpus: %s: %s\n", what, rkv_strerror(rc));
        exit(1);
    }
}

static void make_dir(const char *path)
{
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        die(path);
}

static void put_file(const char *target, const char *name, const void *p, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", out_dir, target);
    make_dir(path);
    snprintf(path, sizeof path, "%s/%s/%s", out_dir, target, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || (len && fwrite(p, 1, len, f) != len) || fclose(f) != 0)
        die(path);
}

static void put_buf(const char *target, const char *name, const struct rkv_buf *b)
{
    put_file(target, name, b->data, b->len);
}

/* ---- objects and contexts ---- */

static void object_n(struct object *o, int n)
{
    struct object_limits lim;
    object_limits_default(&lim);
    object_init(o);
    for (int i = 0; i < n; i++) {
        char v[16];
        int len = snprintf(v, sizeof v, "value-%d", i);
        /* actors 1..n write without context: n concurrent siblings */
        check(object_update(o, NULL, (uint64_t)i + 1, TS + (uint64_t)i, v, (size_t)len,
                            i == 1 ? TS + 60000 : 0, false, &lim),
              "object_update");
    }
}

/* Three siblings of which one is a tombstone, with a long past. */
static void object_tomb(struct object *o)
{
    struct object_limits lim;
    object_limits_default(&lim);
    object_n(o, 2);
    struct vclock ctx;
    vclock_init(&ctx);
    check(vclock_bump(&ctx, 1000, 7, TS), "bump");
    check(vclock_bump(&ctx, 1ull << 40, 300, TS), "bump");
    check(object_update(o, &ctx, 3, TS + 5, NULL, 0, 0, true, &lim), "object_update");
    vclock_free(&ctx);
}

static void context_of(const struct object *o, struct rkv_buf *out)
{
    struct vclock vc;
    vclock_init(&vc);
    check(object_context(o, &vc), "object_context");
    check(context_encode(&vc, out), "context_encode");
    vclock_free(&vc);
}

static void seeds_object(void)
{
    struct rkv_buf b = {0};
    struct object o;
    for (int n = 0; n <= 3; n++) {
        char name[32];
        object_n(&o, n);
        b.len = 0;
        check(object_encode(&o, &b), "object_encode");
        snprintf(name, sizeof name, "object-%d-siblings", n);
        put_buf("object", name, &b);
        object_free(&o);
    }
    object_tomb(&o);
    b.len = 0;
    check(object_encode(&o, &b), "object_encode");
    put_buf("object", "object-tombstone-long-past", &b);
    put_file("object", "trap-object-truncated", b.data, b.len - 3);
    b.len = 0;
    context_of(&o, &b);
    put_buf("object", "context-3-entries", &b);
    object_free(&o);
    put_file("object", "context-empty", "", 0);

    static const uint8_t sibs32[] = {0x92, 0x01, 0xdd, 0xff, 0xff, 0xff, 0xff};
    put_file("object", "trap-siblings-array32", sibs32, sizeof sibs32);
    static const uint8_t past32[] = {0x92, 0x01, 0x91, 0x97, 0x01, 0x01, 0xdd, 0xff,
                                     0xff, 0xff, 0xff, 0x00, 0x00, 0xc2, 0xc4, 0x00};
    put_file("object", "trap-past-array32", past32, sizeof past32);
    static const uint8_t ctx32[] = {0x92, 0x01, 0xdd, 0xff, 0xff, 0xff, 0xff};
    put_file("object", "trap-context-array32", ctx32, sizeof ctx32);
    static const uint8_t map32[] = {0xdf, 0xff, 0xff, 0xff, 0xff};
    put_file("object", "trap-map32", map32, sizeof map32);
    static const uint8_t fat[] = {0x92, 0xcc, 0x01, 0x90}; /* format 1 written wide */
    put_file("object", "trap-noncanonical-format", fat, sizeof fat);
    uint8_t deep[301];
    memset(deep, 0x91, 300);
    deep[300] = 0x01;
    put_file("object", "trap-nested-300", deep, sizeof deep);
    rkv_buf_free(&b);
}

/* ---- wire ---- */

static void reply(const char *name, int status, const char *msg, const char *const *answered,
                  uint32_t n_answered, const void *payload, size_t payload_len)
{
    struct rkv_buf b = {0};
    check(wire_encode_reply(&b, 77, 0x1234, status, msg, answered, n_answered, false, payload,
                            payload_len),
          "wire_encode_reply");
    put_buf("wire", name, &b);
    rkv_buf_free(&b);
}

static void seeds_wire_replies(const struct rkv_buf *ctx)
{
    static const char *const ans[] = {"n1", "n2"};
    struct rkv_buf pl = {0};
    struct mp_writer w;

    mp_writer_init(&w, &pl); /* GET: [[[value, ts, expiry], ...], context] */
    mp_write_array(&w, 2);
    mp_write_array(&w, 2);
    mp_write_array(&w, 3);
    mp_write_bin(&w, "v1", 2);
    mp_write_uint(&w, TS);
    mp_write_uint(&w, 0);
    mp_write_array(&w, 3);
    mp_write_bin(&w, "v2", 2);
    mp_write_uint(&w, TS + 1);
    mp_write_uint(&w, TS + 60000);
    mp_write_bin(&w, ctx->data, ctx->len);
    reply("reply-get-2-siblings", RKV_OK, "", ans, 2, pl.data, pl.len);

    pl.len = 0; /* GET not found still carries the context */
    mp_write_array(&w, 2);
    mp_write_array(&w, 0);
    mp_write_bin(&w, ctx->data, ctx->len);
    reply("reply-get-notfound", RKV_ERR_NOTFOUND, "not found", ans, 1, pl.data, pl.len);

    pl.len = 0;
    mp_write_array(&w, 2);
    mp_write_cstr(&w, "n1");
    mp_write_cstr(&w, WIRE_SOFTWARE_VERSION);
    reply("reply-ping", RKV_OK, "", NULL, 0, pl.data, pl.len);

    pl.len = 0;
    mp_write_array(&w, 7);
    mp_write_cstr(&w, "ringkv");
    mp_write_uint(&w, 256);
    mp_write_uint(&w, 3);
    mp_write_uint(&w, 2);
    mp_write_uint(&w, 2);
    mp_write_uint(&w, 1000);
    mp_write_array(&w, 2);
    for (int i = 1; i <= 2; i++) {
        char id[8];
        snprintf(id, sizeof id, "n%d", i);
        mp_write_array(&w, 5);
        mp_write_cstr(&w, id);
        mp_write_cstr(&w, "127.0.0.1");
        mp_write_uint(&w, 7100 + (uint64_t)i);
        mp_write_uint(&w, 7200 + (uint64_t)i);
        mp_write_uint(&w, 64);
    }
    reply("reply-ring", RKV_OK, "", NULL, 0, pl.data, pl.len);

    pl.len = 0;
    mp_write_map(&w, 2);
    mp_write_cstr(&w, "keys");
    mp_write_uint(&w, 10);
    mp_write_cstr(&w, "gets");
    mp_write_uint(&w, 1ull << 40);
    reply("reply-stats", RKV_OK, "", NULL, 0, pl.data, pl.len);

    pl.len = 0; /* PUT/DEL: the context of the object written */
    mp_write_bin(&w, ctx->data, ctx->len);
    reply("reply-put", RKV_OK, "", ans, 2, pl.data, pl.len);
    reply("reply-error", RKV_ERR_QUORUM,
          "quorum not reached: 1 of 2 needed reads; answered: n1; no answer by the deadline: n2",
          ans, 1, NULL, 0);
    rkv_buf_free(&pl);
}

static void seeds_wire_traps(const struct rkv_buf *put_frame)
{
    static const uint8_t arr32[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t map32[] = {0xdf, 0xff, 0xff, 0xff, 0xff};
    put_file("wire", "trap-array32", arr32, sizeof arr32);
    put_file("wire", "trap-map32", map32, sizeof map32);
    /* GET whose key claims 4 GiB */
    static const uint8_t key32[] = {0x97, 0x01, 0x02, 0x01, 0x00, 0xc6, 0xff, 0xff, 0xff, 0xff};
    put_file("wire", "trap-get-key-bin32", key32, sizeof key32);
    /* REPLY: [1, 32, 1, 0, 0, "", answered, false, payload] with a trap each */
    static const uint8_t ans32[] = {0x99, 0x01, 0x20, 0x01, 0x00, 0x00, 0xa0,
                                    0xdd, 0xff, 0xff, 0xff, 0xff, 0xc2, 0xc0};
    put_file("wire", "trap-reply-answered-array32", ans32, sizeof ans32);
    static const uint8_t pay32[] = {0x99, 0x01, 0x20, 0x01, 0x00, 0x00, 0xa0,
                                    0x90, 0xc2, 0xdd, 0xff, 0xff, 0xff, 0xff};
    put_file("wire", "trap-reply-payload-array32", pay32, sizeof pay32);
    static const uint8_t paymap32[] = {0x99, 0x01, 0x20, 0x01, 0x00, 0x00, 0xa0,
                                       0x90, 0xc2, 0xdf, 0xff, 0xff, 0xff, 0xff};
    put_file("wire", "trap-reply-payload-map32", paymap32, sizeof paymap32);
    uint8_t deep[320];
    size_t n = 0;
    static const uint8_t head[] = {0x99, 0x01, 0x20, 0x01, 0x00, 0x00, 0xa0, 0x90, 0xc2};
    memcpy(deep, head, sizeof head);
    n = sizeof head;
    memset(deep + n, 0x91, 300);
    n += 300;
    deep[n++] = 0x01;
    put_file("wire", "trap-reply-payload-nested-300", deep, n);
    memset(deep, 0x91, 300);
    deep[300] = 0x01;
    put_file("wire", "trap-nested-300", deep, 301);
    put_file("wire", "trap-put-truncated", put_frame->data, put_frame->len - 3);
    struct rkv_buf b = {0};
    check(rkv_buf_append(&b, put_frame->data, put_frame->len), "append");
    check(rkv_buf_append(&b, "\xc0", 1), "append");
    put_buf("wire", "trap-put-trailing-byte", &b);
    /* version 2: refused */
    b.len = 0;
    check(wire_encode_simple(&b, WIRE_PING, 1, 0), "encode");
    b.data[1] = 0x02;
    put_buf("wire", "trap-version-2", &b);
    rkv_buf_free(&b);
}

/* BATCH frames as nodes send them: replica puts and replies together. */
static void seeds_wire_batch(const struct rkv_buf *objb)
{
    struct rkv_buf one = {0};
    struct wire_batch batch = {0};
    for (uint32_t i = 0; i < 3; i++) {
        one.len = 0;
        check(wire_encode_replica_put(&one, 20 + i, 7, 17, "user:42", 7, objb->data, objb->len),
              "replica_put");
        check(wire_batch_add(&batch, one.data, one.len), "batch_add");
        one.len = 0;
        check(wire_encode_replica_reply(&one, 30 + i, 7, RKV_OK, NULL, 0), "replica_reply");
        check(wire_batch_add(&batch, one.data, one.len), "batch_add");
    }
    const uint8_t *frame;
    size_t len;
    wire_batch_seal(&batch, 7, &frame, &len);
    put_file("wire", "batch", frame, len);
    wire_batch_free(&batch);
    rkv_buf_free(&one);
}

static void seeds_wire(void)
{
    struct rkv_buf b = {0}, ctx = {0}, objb = {0}, inner = {0};
    struct object o;
    object_n(&o, 2);
    context_of(&o, &ctx);
    check(object_encode(&o, &objb), "object_encode");
    object_free(&o);

#define FRAME(name, call)                                                                          \
    do {                                                                                           \
        b.len = 0;                                                                                 \
        check(call, name);                                                                         \
        put_buf("wire", name, &b);                                                                 \
    } while (0)
    FRAME("ping", wire_encode_simple(&b, WIRE_PING, 1, 0));
    FRAME("ring", wire_encode_simple(&b, WIRE_RING, 2, 0xfeedfacecafebeefull));
    FRAME("stats", wire_encode_simple(&b, WIRE_STATS, 3, 1));
    FRAME("member-leave", wire_encode_member(&b, 4, 1, WIRE_MEMBER_LEAVE, "n2"));
    FRAME("member-remove", wire_encode_member(&b, 5, 1, WIRE_MEMBER_REMOVE, "node-7.a"));
    FRAME("get", wire_encode_get(&b, 4, 7, "user:42", 7, 2, 500));
    FRAME("del", wire_encode_del(&b, 6, 7, "user:42", 7, ctx.data, ctx.len, 0, 0));
    FRAME("replica-get", wire_encode_replica_get(&b, 8, 7, 17, "user:42", 7));
    FRAME("replica-put", wire_encode_replica_put(&b, 9, 7, 17, "user:42", 7, objb.data, objb.len));
    FRAME("replica-reply-object", wire_encode_replica_reply(&b, 9, 7, RKV_OK, objb.data, objb.len));
    FRAME("replica-reply-nil", wire_encode_replica_reply(&b, 9, 7, RKV_ERR_NOTFOUND, NULL, 0));
    FRAME("put",
          wire_encode_put(&b, 5, 7, "user:42", 7, "hello", 5, ctx.data, ctx.len, 2, 0, 60000));
    check(rkv_buf_append(&inner, b.data, b.len), "append"); /* the PUT, for FORWARD */
    FRAME("forward", wire_encode_wrapped(&b, WIRE_FORWARD, 10, 7, inner.data, inner.len));
    seeds_wire_traps(&inner);
    inner.len = 0;
    check(wire_encode_reply(&inner, 5, 7, RKV_OK, "", NULL, 0, false, NULL, 0), "reply");
    FRAME("forward-reply",
          wire_encode_wrapped(&b, WIRE_FORWARD_REPLY, 10, 7, inner.data, inner.len));
    inner.len = 0; /* a FORWARD inside a FORWARD: unwrapped once only */
    check(rkv_buf_append(&inner, b.data, b.len), "append");
    FRAME("forward-nested", wire_encode_wrapped(&b, WIRE_FORWARD, 11, 7, inner.data, inner.len));
#undef FRAME
    seeds_wire_batch(&objb);
    seeds_wire_replies(&ctx);
    rkv_buf_free(&b);
    rkv_buf_free(&ctx);
    rkv_buf_free(&objb);
    rkv_buf_free(&inner);
}

/* ---- codec: byte 0 = program length - 1 (mod 8), the program, the data ---- */

static void codec_seed(const char *name, const uint8_t *prog, size_t n_prog, const void *data,
                       size_t len)
{
    uint8_t buf[1024];
    if (n_prog < 1 || n_prog > 8 || 1 + n_prog + len > sizeof buf)
        die("codec seed too big");
    buf[0] = (uint8_t)(n_prog - 1);
    memcpy(buf + 1, prog, n_prog);
    memcpy(buf + 1 + n_prog, data, len);
    put_file("codec", name, buf, 1 + n_prog + len);
}

static void seeds_codec(void)
{
    struct rkv_buf b = {0};
    struct mp_writer w;
    mp_writer_init(&w, &b);
    mp_write_array(&w, 3);
    mp_write_uint(&w, 1);
    mp_write_int(&w, -5);
    mp_write_cstr(&w, "str");
    mp_write_bin(&w, "bin", 3);
    mp_write_bool(&w, true);
    mp_write_nil(&w);
    mp_write_map(&w, 1);
    mp_write_uint(&w, 1);
    mp_write_uint(&w, 2);
    mp_write_uint(&w, 1ull << 40);
    mp_write_int(&w, -(1ll << 40));
    mp_write_uint(&w, 70000);
    mp_write_uint(&w, 300);
    /* ops: 0 array 1 map 2 uint 3 int 4 bool 5 nil 6 bin 7 str 8 u32 9 u16
     * 10 peek_nil 11 skip 12 int pair */
    static const uint8_t in_order[] = {0, 2, 3, 7, 6, 4, 5, 1};
    codec_seed("all-types-in-order", in_order, sizeof in_order, b.data, b.len);
    static const uint8_t skips[] = {11};
    codec_seed("all-types-skipped", skips, 1, b.data, b.len);
    static const uint8_t mixed[] = {12, 10, 11, 8, 9, 2, 3};
    codec_seed("all-types-mixed", mixed, sizeof mixed, b.data, b.len);
    codec_seed("trap-truncated", in_order, sizeof in_order, b.data, b.len / 2);

    static const uint8_t arr32[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t map32[] = {0xdf, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t bin32[] = {0xc6, 0xff, 0xff, 0xff, 0xff, 0x00};
    static const uint8_t str32[] = {0xdb, 0xff, 0xff, 0xff, 0xff, 0x00};
    static const uint8_t op_array[] = {0}, op_map[] = {1}, op_bin[] = {6}, op_str[] = {7};
    codec_seed("trap-array32", op_array, 1, arr32, sizeof arr32);
    codec_seed("trap-array32-skip", skips, 1, arr32, sizeof arr32);
    codec_seed("trap-map32", op_map, 1, map32, sizeof map32);
    codec_seed("trap-map32-skip", skips, 1, map32, sizeof map32);
    codec_seed("trap-bin32", op_bin, 1, bin32, sizeof bin32);
    codec_seed("trap-str32", op_str, 1, str32, sizeof str32);
    uint8_t deep[301];
    memset(deep, 0x91, 300);
    deep[300] = 0x01;
    codec_seed("trap-nested-300-skip", skips, 1, deep, sizeof deep);
    codec_seed("trap-nested-300-arrays", op_array, 1, deep, sizeof deep);
    rkv_buf_free(&b);
}

/* ---- storage: flags, then (files mode) count - 1 and name, len16, bytes ---- */

struct seed {
    uint8_t b[8192];
    size_t n;
};

static void seed_begin(struct seed *s, uint8_t flags, uint8_t files)
{
    s->b[0] = flags;
    s->b[1] = (uint8_t)(files - 1);
    s->n = 2;
}

static size_t name_index(const char *name)
{
    for (size_t i = 0; i < FUZZ_SEED_NAMES; i++)
        if (strcmp(fuzz_seed_names[i], name) == 0)
            return i;
    fprintf(stderr, "make_corpus: %s is not in fuzz_seed_names\n", name);
    exit(1);
}

static void seed_file(struct seed *s, const char *name, const void *p, size_t len)
{
    if (len > 0xffff || s->n + 3 + len > sizeof s->b)
        die("storage seed too big");
    s->b[s->n] = (uint8_t)name_index(name);
    rkv_put_u16(s->b + s->n + 1, (uint16_t)len);
    memcpy(s->b + s->n + 3, p, len);
    s->n += 3 + len;
}

static uint64_t seed_clock(void *ctx)
{
    (void)ctx;
    return FUZZ_SEED_NOW_MS;
}

static struct store *seed_open(struct memvfs *v)
{
    struct store_options o;
    store_options_default(&o);
    o.fileops = memvfs_ops(v);
    o.merge_auto = false;
    o.break_stale_lock = true;
    o.now_ms = seed_clock;
    /* the fuzz target's secret, so its logs are valid there */
    uint8_t ident[IDENT_BYTES];
    store_ident_encode(FUZZ_SEED_SECRET, ident);
    memvfs_write_file(v, "/db/IDENT", ident, sizeof ident);
    struct store *s = NULL;
    check(store_open("/db", &o, &s, NULL), "store_open");
    return s;
}

static void seed_writes(struct store *s, int round)
{
    for (int i = 0; i < 4; i++) {
        char k[8], val[16];
        snprintf(k, sizeof k, "k%d", i);
        int n = snprintf(val, sizeof val, "r%d-v%d", round, i);
        check(store_put(s, (uint16_t)(i % 3), k, strlen(k), val, (size_t)n,
                        i == 3 ? FUZZ_SEED_NOW_MS + 5000 : 0),
              "store_put");
    }
    if (round > 0)
        check(store_del(s, 1, "k1", 2), "store_del");
    check(store_commit(s), "store_commit");
}

static void read_vfs(struct memvfs *v, const char *name, struct rkv_buf *out)
{
    char path[64];
    snprintf(path, sizeof path, "/db/%s", name);
    if (memvfs_read_file(v, path, out) != 0)
        die(path);
}

static void put_seed(const char *name, const struct seed *s)
{
    put_file("storage", name, s->b, s->n);
}

/* The seed, and the same with the merge flag (bit 3) as NAME-merge. */
static void put_seed_and_merge(const char *name, struct seed *s)
{
    char merged[64];
    put_seed(name, s);
    snprintf(merged, sizeof merged, "%s-merge", name);
    s->b[0] |= 0x08;
    put_seed(merged, s);
    s->b[0] &= (uint8_t)~0x08;
}

/* A marker naming inputs then outputs, checksummed. */
static size_t marker(uint8_t *out, const uint32_t *ids, uint32_t n_in, uint32_t n_out)
{
    memcpy(out, MARKER_MAGIC, 8);
    rkv_put_u32(out + 8, n_in);
    rkv_put_u32(out + 12, n_out);
    for (uint32_t i = 0; i < n_in + n_out; i++)
        rkv_put_u32(out + 16 + 4 * i, ids[i]);
    size_t len = 24 + 4 * (size_t)(n_in + n_out);
    rkv_put_u64(out + len - 8, XXH3_64bits_withSeed(out, len - 8, MARKER_SEED));
    return len;
}

/* The hint of hint mode: every live record of fuzz_seed_log. */
static size_t seed_hint(uint8_t *out, size_t cap)
{
    uint8_t log[FUZZ_SEED_LOG_BYTES];
    size_t log_len = fuzz_seed_log(log, sizeof log), n = HINT_HDR_BYTES;
    uint64_t entries = 0;
    struct record_keys keys;
    record_keys_init(&keys, FUZZ_SEED_SECRET);
    memcpy(out, HINT_MAGIC, HINT_HDR_BYTES);
    for (size_t off = 0; off < log_len;) {
        struct record r;
        if (!record_parse(log + off, log_len - off, &keys, &r))
            die("seed log");
        if (!(r.flags & RECORD_FLAG_TOMB)) {
            if (n + HINT_ENTRY_BYTES + r.key_len + HINT_TRAILER_BYTES > cap)
                die("seed hint too big");
            rkv_put_u64(out + n, r.seq);
            rkv_put_u64(out + n + 8, r.expiry_ms);
            rkv_put_u32(out + n + 16, (uint32_t)off);
            rkv_put_u32(out + n + 20, r.value_len);
            rkv_put_u16(out + n + 24, r.key_len);
            rkv_put_u16(out + n + 26, r.partition);
            out[n + 28] = 0;
            memcpy(out + n + HINT_ENTRY_BYTES, r.key, r.key_len);
            n += HINT_ENTRY_BYTES + r.key_len;
            entries++;
        }
        off += record_bytes(r.key_len, r.value_len);
    }
    rkv_put_u64(out + n, log_len);
    rkv_put_u64(out + n + 8, entries);
    rkv_put_u64(out + n + 16, XXH3_64bits_withSeed(out, n + 16, HINT_SEED));
    return n + HINT_TRAILER_BYTES;
}

static void seeds_storage_engine(void)
{
    struct memvfs *v = memvfs_new();
    struct store *s = seed_open(v);
    seed_writes(s, 0);
    check(store_close(s), "store_close");
    struct rkv_buf log1 = {0}, log2 = {0}, log3 = {0}, hint3 = {0};
    read_vfs(v, "0000000001.log", &log1);
    struct seed sd;
    seed_begin(&sd, 0x00, 1);
    seed_file(&sd, "0000000001.log", log1.data, log1.len);
    put_seed_and_merge("log-valid", &sd);
    uint8_t torn[4096];
    if (log1.len + 20 > sizeof torn)
        die("seed log too big");
    memcpy(torn, log1.data, log1.len);
    memset(torn + log1.len, 0xa5, 20); /* a torn tail: garbage after the last record */
    seed_begin(&sd, 0x00, 1);
    seed_file(&sd, "0000000001.log", torn, log1.len + 20);
    put_seed("log-torn-tail", &sd);
    memset(torn + 20, 0xee, 4); /* damage inside the first record (its expiry) */
    seed_begin(&sd, 0x00, 1);
    seed_file(&sd, "0000000001.log", torn, log1.len);
    put_seed_and_merge("log-damaged-first-record", &sd);
    seed_begin(&sd, 0x00, 2);
    seed_file(&sd, "LOCK", "12345\n", 6);
    seed_file(&sd, "0000000001.log", log1.data, log1.len);
    put_seed("log-with-stale-lock", &sd);

    s = seed_open(v); /* a second log with overwrites and a delete */
    seed_writes(s, 1);
    check(store_close(s), "store_close");
    read_vfs(v, "0000000002.log", &log2);
    seed_begin(&sd, 0x00, 2);
    seed_file(&sd, "0000000001.log", log1.data, log1.len);
    seed_file(&sd, "0000000002.log", log2.data, log2.len);
    put_seed_and_merge("logs-two", &sd);

    s = seed_open(v); /* merge logs 1 and 2 into 4 (3 is the active log) */
    check(store_merge(s), "store_merge");
    check(store_merge_wait(s), "store_merge_wait");
    check(store_close(s), "store_close");
    read_vfs(v, "0000000004.log", &log3);
    read_vfs(v, "0000000004.hint", &hint3);
    /* renamed to 3, which the name table has: a log and its valid hint */
    seed_begin(&sd, 0x00, 2);
    seed_file(&sd, "0000000003.log", log3.data, log3.len);
    seed_file(&sd, "0000000003.hint", hint3.data, hint3.len);
    put_seed_and_merge("log-with-hint", &sd);
    /* a committed merge that crashed before its switch: MERGE names input 1
     * and output 3, whose files are still .merging */
    uint8_t mk[64];
    static const uint32_t ids[] = {1, 3};
    size_t mk_len = marker(mk, ids, 1, 1);
    seed_begin(&sd, 0x00, 4);
    seed_file(&sd, "MERGE", mk, mk_len);
    seed_file(&sd, "0000000001.log", log1.data, log1.len);
    seed_file(&sd, "0000000003.log.merging", log3.data, log3.len);
    seed_file(&sd, "0000000003.hint.merging", hint3.data, hint3.len);
    put_seed_and_merge("merge-committed", &sd);
    mk[12] ^= 0x01; /* the checksum no longer matches: open must refuse */
    seed_begin(&sd, 0x00, 2);
    seed_file(&sd, "MERGE", mk, mk_len);
    seed_file(&sd, "0000000001.log", log1.data, log1.len);
    put_seed("merge-marker-damaged", &sd);
    seed_begin(&sd, 0x00, 3); /* an uncommitted merge's leftovers */
    seed_file(&sd, "MERGE.tmp", mk, mk_len - 4);
    seed_file(&sd, "0000000001.log", log1.data, log1.len);
    seed_file(&sd, "0000000003.log.merging", log3.data, log3.len / 2);
    put_seed("merge-uncommitted", &sd);
    rkv_buf_free(&log1);
    rkv_buf_free(&log2);
    rkv_buf_free(&log3);
    rkv_buf_free(&hint3);
    memvfs_free(v);
}

static void seeds_storage(void)
{
    seeds_storage_engine();
    struct seed sd;
    uint8_t hint[1024];
    size_t n = seed_hint(hint, sizeof hint);
    sd.b[0] = 0x01; /* hint mode */
    memcpy(sd.b + 1, hint, n);
    sd.n = 1 + n;
    put_seed_and_merge("hint-mode-valid", &sd);
    sd.b[0] = 0x03; /* hint mode with fix-ups, an entry pointing mid-record */
    rkv_put_u32(sd.b + 1 + HINT_HDR_BYTES + 16, 5);
    put_seed("hint-mode-bad-offset", &sd);
    sd.b[0] = 0x01;
    memcpy(sd.b + 1, hint, n - 5); /* torn */
    sd.n = 1 + n - 5;
    put_seed("hint-mode-torn", &sd);
    /* Hints that disagree with their records (fix-ups recompute the
     * checksum); every entry of seed_hint is 31 bytes (2-byte keys). */
    uint8_t *e0 = sd.b + 1 + HINT_HDR_BYTES, *e1 = e0 + HINT_ENTRY_BYTES + 2;
    sd.b[0] = 0x03;
    memcpy(sd.b + 1, hint, n);
    sd.n = 1 + n;
    rkv_put_u32(e0 + 20, 6); /* k0 "zero" said to be 6 bytes long */
    put_seed("regress-hint-value-len", &sd);
    memcpy(sd.b + 1, hint, n);
    rkv_put_u64(e1, 6); /* k1: seq and offset of its tombstone */
    rkv_put_u32(e1 + 16, 201);
    rkv_put_u32(e1 + 20, 0);
    put_seed("regress-hint-tombstone", &sd);
    memcpy(sd.b + 1, hint, n);
    sd.b[0] = 0x0b;                                   /* fix-ups and a merge */
    rkv_put_u16(e1 + HINT_ENTRY_BYTES + 2 + 26, 256); /* k2 in partition 256, not 0 */
    put_seed("regress-hint-partition", &sd);

    /* Regressions found by fuzz_storage (docs/fuzzing.md). */
    seed_begin(&sd, 0x02, 1); /* an empty log with the last id there can be */
    seed_file(&sd, "4294967294.log", "", 0);
    put_seed("regress-file-id-max", &sd);
    uint8_t rec[64];
    struct record_keys keys;
    record_keys_init(&keys, FUZZ_SEED_SECRET);
    struct record r = {.seq = (1ull << 63) + 5,
                       .value_len = 2,
                       .key_len = 2,
                       .key = (const uint8_t *)"hi",
                       .value = (const uint8_t *)"v!"};
    record_encode(rec, &r, &keys);
    seed_begin(&sd, 0x00, 1); /* a valid record whose seq has bit 63 set */
    seed_file(&sd, "0000000001.log", rec, record_bytes(2, 2));
    put_seed("regress-seq-bit63", &sd);
    r.seq = STORE_SEQ_MAX; /* valid, and the last: the store refuses writes */
    record_encode(rec, &r, &keys);
    seed_begin(&sd, 0x00, 1);
    seed_file(&sd, "0000000001.log", rec, record_bytes(2, 2));
    put_seed("regress-seq-max", &sd);
    struct record e = {.seq = 1,
                       .value_len = 1,
                       .key_len = 0,
                       .key = (const uint8_t *)"",
                       .value = (const uint8_t *)"e"};
    record_encode(rec, &e, &keys);
    seed_begin(&sd, 0x00, 1); /* the empty key, which store_list lent as NULL */
    seed_file(&sd, "0000000001.log", rec, record_bytes(0, 1));
    put_seed("regress-empty-key", &sd);
}

/* ---- resp: a 4-byte header (bounds and reads; 6 in big mode), the stream ---- */

/* The header of fuzz_resp.c's input. bulk and request are indexes into its
 * bulk_maxes and request_maxes, reads four nibbles indexing read_sizes. */
struct resp_setup {
    unsigned args_max; /* 1..64 */
    unsigned mode;     /* 0 plain, 1 each request parsed twice, 2 the buffer moves, 3 big */
    unsigned bulk;
    unsigned request;
    unsigned reads;
    unsigned big_at, big_extra; /* big mode: 'x' * (RESP_INLINE_MAX - 128 + extra) at big_at */
};

/* args_max 64, bulk_max 4096, request_max 1 MiB */
#define RESP_BOUNDS .args_max = 64, .bulk = 11, .request = 13
static const struct resp_setup resp_bytewise = {RESP_BOUNDS, .reads = 0x0000};
static const struct resp_setup resp_split = {RESP_BOUNDS, .reads = 0xe630}; /* 1 3 7 200 */
static const struct resp_setup resp_moving = {RESP_BOUNDS, .mode = 2, .reads = 0x8421};
static const struct resp_setup resp_twice = {RESP_BOUNDS, .mode = 1, .reads = 0x7520};
static const struct resp_setup resp_whole = {RESP_BOUNDS, .reads = 0xffff}; /* 4096 */
/* args_max 3, bulk_max 5, request_max 31: requests right at the bounds */
static const struct resp_setup resp_tight = {
    .args_max = 3, .bulk = 4, .request = 5, .reads = 0x5310};
/* bulk_max and request_max at 2^32 - 1 */
static const struct resp_setup resp_widest = {
    .args_max = 64, .bulk = 15, .request = 15, .reads = 0xe630};

static void resp_seed(const char *name, const struct resp_setup *s, const void *p, size_t len)
{
    uint8_t buf[2048];
    size_t head = s->mode == 3 ? 6 : 4;
    if (s->args_max < 1 || s->args_max > 64 || head + len > sizeof buf)
        die("resp seed");
    buf[0] = (uint8_t)((s->args_max - 1) | s->mode << 6);
    buf[1] = (uint8_t)(s->bulk | s->request << 4);
    buf[2] = (uint8_t)(s->reads & 0xff);
    buf[3] = (uint8_t)(s->reads >> 8);
    buf[4] = (uint8_t)s->big_at;
    buf[5] = (uint8_t)s->big_extra;
    memcpy(buf + head, p, len);
    put_file("resp", name, buf, head + len);
}

static void resp_text(const char *name, const struct resp_setup *s, const char *text)
{
    resp_seed(name, s, text, strlen(text));
}

/* Appends a multibulk request of n C-string arguments. */
static void resp_request(struct rkv_buf *b, unsigned n, const char *const *args)
{
    check(resp_array(b, n), "resp_array");
    for (unsigned i = 0; i < n; i++)
        check(resp_bulk_str(b, args[i]), "resp_bulk");
}

static void seeds_resp_valid(void)
{
    struct rkv_buf b = {0};
    static const char *const set[] = {"SET", "key", "value"};
    resp_request(&b, 3, set);
    resp_seed("multibulk-set", &resp_bytewise, b.data, b.len);
    b.len = 0;
    check(resp_array(&b, 3), "resp_array"); /* binary, empty and CRLF inside arguments */
    check(resp_bulk(&b, "SET", 3), "resp_bulk");
    check(resp_bulk(&b, "k\0\r\n", 4), "resp_bulk");
    check(resp_bulk(&b, "", 0), "resp_bulk");
    resp_seed("multibulk-binary", &resp_split, b.data, b.len);
    resp_text("inline-ping", &resp_bytewise, "PING\r\n");
    resp_text("inline-blanks", &resp_split, "  SET\tkey  va\rlue \n");
    resp_text("empty-requests", &resp_bytewise, "\r\n\n  \t\r\n*0\r\n*-1\r\n");

    b.len = 0; /* a pipeline of both forms */
    static const char *const get[] = {"GET", "key"};
    static const char *const del[] = {"DEL", "a", "b", "c"};
    resp_request(&b, 3, set);
    check(rkv_buf_append(&b, "PING\r\n", 6), "append");
    resp_request(&b, 2, get);
    check(rkv_buf_append(&b, "\r\nGET key\n", 10), "append");
    resp_request(&b, 4, del);
    check(rkv_buf_append(&b, "*0\r\n", 4), "append");
    resp_seed("pipeline-bytewise", &resp_bytewise, b.data, b.len);
    resp_seed("pipeline-split", &resp_split, b.data, b.len);
    resp_seed("pipeline-moving-buffer", &resp_moving, b.data, b.len);
    resp_seed("pipeline-parsed-twice", &resp_twice, b.data, b.len);
    resp_seed("pipeline-whole", &resp_whole, b.data, b.len);
    resp_seed("pipeline-cut-mid-bulk", &resp_split, b.data, 30);

    b.len = 0; /* exactly at args_max 3, bulk_max 5, request_max 31 */
    static const char *const tight[] = {"SET", "abcde", "x"};
    resp_request(&b, 3, tight);
    resp_seed("tight-bounds", &resp_tight, b.data, b.len);
    resp_text("tight-bounds-inline", &resp_tight, "SET abcde x\n");
    rkv_buf_free(&b);
}

static void seeds_resp_traps(void)
{
    resp_text("trap-count-2-32", &resp_widest, "*4294967295\r\n");
    resp_text("trap-count-2-63", &resp_widest, "*9223372036854775807\r\n$1\r\na\r\n");
    resp_text("trap-count-unfilled", &resp_split, "*64\r\n$1\r\na\r\n");
    resp_text("trap-count-too-many", &resp_tight, "*4\r\n$1\r\na\r\n");
    resp_text("trap-bulk-2-32", &resp_widest, "*1\r\n$4294967295\r\n");
    resp_text("trap-bulk-claim-unfilled", &resp_widest, "*1\r\n$4294967200\r\nab");
    resp_text("trap-bulk-too-big", &resp_tight, "*1\r\n$6\r\nabcdef\r\n");
    resp_text("trap-request-too-big", &resp_tight,
              "*3\r\n$3\r\nSET\r\n$5\r\nabcde\r\n$2\r\nxy\r\n");
    resp_text("trap-bulk-negative", &resp_split, "*1\r\n$-1\r\n");
    resp_text("trap-bulk-plus", &resp_split, "*1\r\n$+1\r\na\r\n");
    resp_text("trap-bulk-leading-zero", &resp_split, "*1\r\n$01\r\na\r\n");
    resp_text("trap-bulk-not-a-number", &resp_split, "*1\r\n$abc\r\n");
    resp_text("trap-bulk-20-digits", &resp_split, "*1\r\n$99999999999999999999\r\n");
    resp_text("trap-number-line-long", &resp_split,
              "*1\r\n$000000000000000000000000000000000001\r\n");
    resp_text("trap-count-not-a-number", &resp_split, "*1x\r\n");
    resp_text("trap-count-lf-only", &resp_split, "*1\n$1\na\n");
    resp_text("trap-bulk-lf-only", &resp_split, "*1\r\n$3\nabc\r\n");
    resp_text("trap-bulk-no-crlf", &resp_split, "*1\r\n$3\r\nabcXY");
    resp_text("trap-bulk-cr-only", &resp_split, "*1\r\n$3\r\nabc\rX");
    resp_text("trap-bulk-truncated", &resp_split, "*2\r\n$3\r\nabc\r\n$3\r\nab");
    resp_text("trap-not-dollar", &resp_split, "*1\r\n:1\r\n");
    resp_text("trap-inline-too-many", &resp_tight, "a b c d\n");
    resp_text("trap-inline-word-too-big", &resp_tight, "GET abcdef\n");
    resp_text("trap-inline-unterminated", &resp_split, "GET key");

    /* Regressions: resp_arg_int took "-0", which Redis's string2ll refuses,
     * so a bulk length or count of -0 was read as 0 (docs/fuzzing.md). */
    resp_text("regress-bulk-minus-zero", &resp_split, "*1\r\n$-0\r\n\r\n");
    resp_text("regress-count-minus-zero", &resp_split, "*-0\r\nPING\r\n");
    resp_text("regress-arg-minus-zero", &resp_split, "EXPIRE k -0\r\n");

    /* big mode: 'x' * (RESP_INLINE_MAX - 128 + extra) inserted at big_at,
     * bulk_max 64 KiB, request_max 64 KiB or 1 MiB */
    struct resp_setup big = {.args_max = 4, .mode = 3, .bulk = 12, .request = 13, .reads = 0xe630};
    big.big_extra = 126; /* a line of RESP_INLINE_MAX - 2 bytes and CRLF: accepted */
    resp_text("big-inline-at-limit", &big, "\r\n");
    big.big_extra = 127; /* one more: refused */
    resp_text("big-inline-over-limit", &big, "\r\n");
    big.big_extra = 128; /* RESP_INLINE_MAX bytes and no LF: refused */
    resp_text("big-inline-unterminated", &big, "");
    big.big_at = 12; /* a bulk of RESP_INLINE_MAX - 36 = 65500 bytes */
    big.big_extra = 92;
    big.request = 11;
    resp_text("big-bulk", &big, "*1\r\n$65500\r\n\r\nPING\r\n");
    big.request = 10;
    resp_text("big-bulk-over-request-max", &big, "*1\r\n$65500\r\n\r\n");
}

static void seeds_resp(void)
{
    seeds_resp_valid();
    seeds_resp_traps();
}

/* ---- config ---- */

static void put_text(const char *name, const char *text)
{
    put_file("config", name, text, strlen(text));
}

static const char one_node[] = "[[node]]\n"
                               "id = \"n1\"\n"
                               "host = \"127.0.0.1\"\n"
                               "client_port = 7101\n"
                               "cluster_port = 7201\n"
                               "data_dir = \"data/n1\"\n";

static void seeds_config(void)
{
    /* cluster.toml itself, read from the tree when run from its top */
    FILE *f = fopen("cluster.toml", "rb");
    if (f != NULL) {
        char buf[8192];
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        put_file("config", "cluster.toml", buf, n);
    }
    char text[4096];
    snprintf(text, sizeof text, "[cluster]\nreplicas = 1\nread_quorum = 1\nwrite_quorum = 1\n%s",
             one_node);
    put_text("one-node.toml", text);
    snprintf(text, sizeof text,
             "\xef\xbb\xbf# BOM, CRLF, escapes\r\n[cluster]\r\nname = \"a_b.c-d\"\r\n"
             "conflict = \"lww\"\r\nreplicas = 1\r\nread_quorum = 1\r\nwrite_quorum = 1\r\n"
             "partitions = 65_536\r\n[storage]\r\nsync = \"interval\"\r\n"
             "[log]\r\nlevel = \"off\"\r\n%s",
             one_node);
    put_text("lww-bom-crlf.toml", text);
    put_text("arrays-and-escapes.toml",
             "a = [1, 2, 3,]\nb = [[\"x\", \"\\u00e9\\U0001F600\"], [\"\\t\\\"\"]]\n"
             "c = [\n  true, # comment\n  false\n]\n\"quoted key\" = -9_223_372_036_854_775_808\n"
             "[t]\nk = \"v\"\n[[arr]]\nx = 1\n[[arr]]\nx = 2\n");
    /* errors: each must be reported with a line and column */
    put_text("err-duplicate-key.toml", "[cluster]\nreplicas = 1\nreplicas = 2\n");
    put_text("err-unterminated-string.toml", "[cluster]\nname = \"abc\n");
    put_text("err-deep-array.toml", "a = [[[[[[[[[[1]]]]]]]]]]\n");
    put_text("err-inline-table.toml", "a = {b = 1}\n");
    put_text("err-float-date.toml", "a = 1.5\nb = 1979-05-27\n");
    put_text("err-int-overflow.toml", "a = 9223372036854775808\n");
    put_text("err-quorum.toml",
             "[cluster]\nreplicas = 1\nread_quorum = 2\n[[node]]\nid = \"n1\"\nhost = \"h\"\n"
             "client_port = 1\ncluster_port = 2\ndata_dir = \"d\"\n");
    put_text("err-same-port.toml",
             "[cluster]\nreplicas = 1\nread_quorum = 1\nwrite_quorum = 1\n"
             "[[node]]\nid = \"n1\"\nhost = \"h\"\nclient_port = 1\ncluster_port = 1\n"
             "data_dir = \"d\"\n");
    put_text("err-unknown-key.toml", "[limits]\nvalue_bytes = 1\n");
}

/* ---- gossip (fuzz_gossip: byte 0 flags, then frames; gossip_seed.h) ---- */

struct gseed {
    struct rkv_buf b;
};

static void gseed_begin(struct gseed *s, uint8_t flags)
{
    memset(s, 0, sizeof *s);
    check(rkv_buf_append(&s->b, &flags, 1), "gossip seed");
}

static void gseed_frame(struct gseed *s, uint8_t ctl, const void *p, size_t len)
{
    uint8_t h[FG_FRAME_HEADER] = {ctl, (uint8_t)(len >> 8), (uint8_t)len};
    if (len > 0xffff)
        die("gossip seed: frame too long");
    check(rkv_buf_append(&s->b, h, sizeof h), "gossip seed");
    check(rkv_buf_append(&s->b, p, len), "gossip seed");
}

static void gseed_put(struct gseed *s, const char *name)
{
    put_buf("gossip", name, &s->b);
    rkv_buf_free(&s->b);
}

/* One frame: the node gets msg (1 s later, after a tick if tick). */
static void gseed_one(const char *name, uint8_t flags, bool tick, const struct rkv_buf *msg)
{
    struct gseed s;
    gseed_begin(&s, flags);
    gseed_frame(&s, (uint8_t)((tick ? FG_CTL_TICK : 0) | 6), msg->data, msg->len);
    gseed_put(&s, name);
}

/* A conversation between the fuzzed node n0 (as the target builds it) and
 * members n1 and n2: every message to n0, in order, with its sender. */
#define GCONV_MAX 64

struct gconv {
    struct rkv_buf msg[GCONV_MAX];
    int from[GCONV_MAX]; /* 1 or 2 */
    size_t n;
};

static struct gossip *gmember(int i, uint8_t flags)
{
    static const char *const seeds[] = {"n0"};
    struct gossip_options o;
    fg_options(&o, flags, 0);
    if (i > 0) {
        snprintf(o.self.id, sizeof o.self.id, "n%d", i);
        snprintf(o.self.host, sizeof o.self.host, "10.0.0.%d", i + 1);
        o.self.incarnation = 500u + 100u * (unsigned)i;
        o.self.status = GOSSIP_UP;
        o.seeds = seeds;
        o.n_seeds = 1;
        o.rng_seed = 77u + (unsigned)i;
    }
    struct gossip *g;
    struct rkv_error err = {0};
    check(gossip_new(&o, &g, &err), "gossip_new");
    return g;
}

static int gmember_index(const char *id)
{
    return strcmp(id, "n0") == 0 ? 0 : strcmp(id, "n1") == 0 ? 1 : strcmp(id, "n2") == 0 ? 2 : -1;
}

/* Runs rounds of n0, n1, n2 (n2 joins at round 2), delivering every
 * message until none is left, recording those to n0. */
static void gossip_conversation(uint8_t flags, int rounds, struct gconv *c)
{
    struct gossip *g[3] = {gmember(0, flags), gmember(1, flags), gmember(2, flags)};
    uint64_t now = FG_T0;
    memset(c, 0, sizeof *c);
    for (int round = 0; round < rounds; round++) {
        now += 1000;
        for (int i = 0; i < 3; i++)
            if (i < 2 || round >= 1)
                gossip_tick(g[i], now);
        for (bool busy = true; busy;) {
            busy = false;
            for (int i = 0; i < 3; i++) {
                size_t n;
                struct gossip_out *out = gossip_outbox(g[i], &n);
                struct rkv_buf copy[16];
                int to[16];
                size_t k = 0;
                for (size_t j = 0; j < n && k < 16; j++) {
                    to[k] = gmember_index(out[j].to);
                    memset(&copy[k], 0, sizeof copy[k]);
                    check(rkv_buf_append(&copy[k], out[j].msg.data, out[j].msg.len), "copy");
                    k++;
                }
                gossip_outbox_clear(g[i]);
                for (size_t j = 0; j < k; j++) {
                    if (to[j] >= 0 && to[j] != i) {
                        char from[8];
                        snprintf(from, sizeof from, "n%d", i);
                        check(gossip_on_message_from(g[to[j]], now, from, copy[j].data,
                                                     copy[j].len),
                              "gossip conversation");
                        busy = true;
                        if (to[j] == 0 && c->n < GCONV_MAX) {
                            c->msg[c->n] = copy[j];
                            c->from[c->n++] = i;
                            memset(&copy[j], 0, sizeof copy[j]);
                        }
                    }
                    rkv_buf_free(&copy[j]);
                }
            }
        }
    }
    for (int i = 0; i < 3; i++)
        gossip_free(g[i]);
}

static void gconv_free(struct gconv *c)
{
    for (size_t i = 0; i < c->n; i++)
        rkv_buf_free(&c->msg[i]);
}

/* The first message of type `type` from member `from` in c, or NULL. */
static const struct rkv_buf *gconv_find(const struct gconv *c, int from, uint8_t type)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->from[i] == from && c->msg[i].len > 2 && c->msg[i].data[2] == type)
            return &c->msg[i];
    return NULL;
}

static void genvelope(struct mp_writer *w, uint32_t fields, uint64_t version, uint64_t type,
                      const char *cluster, const char *from)
{
    mp_write_array(w, fields);
    mp_write_uint(w, version);
    mp_write_uint(w, type);
    mp_write_cstr(w, cluster);
    mp_write_cstr(w, from);
}

static void gstate(struct mp_writer *w, const char *id, uint64_t inc, uint64_t ver, uint64_t hb,
                   enum gossip_status status)
{
    mp_write_array(w, 11);
    mp_write_cstr(w, id);
    mp_write_cstr(w, "10.0.0.7");
    mp_write_uint(w, 7000);
    mp_write_uint(w, 7001);
    mp_write_uint(w, 16);
    mp_write_uint(w, inc);
    mp_write_uint(w, ver);
    mp_write_uint(w, hb);
    mp_write_uint(w, (uint64_t)status);
    mp_write_uint(w, 0x0123456789abcdefull); /* ring_epoch */
    mp_write_uint(w, status == GOSSIP_LEAVING ? 7 : 0); /* handoff */
}

/* An ACK2 from n1 carrying one state. */
static void gack2_one(struct rkv_buf *b, const char *id, uint64_t inc, uint64_t ver, uint64_t hb,
                      enum gossip_status status)
{
    struct mp_writer w;
    memset(b, 0, sizeof *b);
    mp_writer_init(&w, b);
    genvelope(&w, 5, GOSSIP_WIRE_VERSION, GOSSIP_ACK2, FG_CLUSTER, "n1");
    mp_write_array(&w, 1);
    gstate(&w, id, inc, ver, hb, status);
}

static void seeds_gossip_valid(void)
{
    const uint8_t n1 = 1 | FG_SELF_UP; /* authenticated as n1 */
    struct gconv c;
    gossip_conversation(FG_SELF_UP, 8, &c);
    const uint8_t types[3] = {GOSSIP_SYN, GOSSIP_ACK, GOSSIP_ACK2};
    const char *const names[3] = {"syn-from-n1", "ack-from-n1", "ack2-from-n1"};
    for (int t = 0; t < 3; t++) {
        const struct rkv_buf *m = gconv_find(&c, 1, types[t]);
        if (m == NULL)
            die("gossip conversation: a message type is missing");
        gseed_one(names[t], n1, t == 1, m);
    }
    /* everything n0 heard, in order, a tick each second; unauthenticated
     * (from n1 and n2), with the peer's answers coming back */
    struct gseed s;
    gseed_begin(&s, FG_SELF_UP | FG_ANSWERS_BACK);
    for (size_t i = 0; i < c.n && s.b.len < 3000; i++)
        gseed_frame(&s, (uint8_t)(i % 3 == 0 ? FG_CTL_TICK | 6 : 2), c.msg[i].data,
                    c.msg[i].len);
    gseed_put(&s, "conversation-n1-n2");
    /* n1's messages only, as n1, each delivered twice, over a small window */
    gseed_begin(&s, n1 | FG_SMALL_WINDOW | FG_BIG_MESSAGES);
    for (size_t i = 0; i < c.n && s.b.len < 3000; i++)
        if (c.from[i] == 1)
            gseed_frame(&s, FG_CTL_TICK | FG_CTL_TWICE | 9, c.msg[i].data, c.msg[i].len);
    gseed_put(&s, "conversation-n1-twice");
    /* an ACK after the mixed table (leaving, removed, a refuted rumour) */
    const struct rkv_buf *ack = gconv_find(&c, 1, GOSSIP_ACK);
    gseed_one("ack-after-mixed-table", n1 | 2u << FG_PREFILL_SHIFT, true, ack);
    /* the same with a table one short of full: part of it is dropped */
    gseed_one("ack-near-full-table", n1 | FG_PREFILL_FULL << FG_PREFILL_SHIFT | FG_SMALL_WINDOW,
              false, ack);
    /* the last frame's length says "the rest" */
    gseed_begin(&s, 0);
    gseed_frame(&s, 0, NULL, 0);
    s.b.data[s.b.len - 2] = 0xff;
    s.b.data[s.b.len - 1] = 0xff;
    check(rkv_buf_append(&s.b, ack->data, ack->len), "gossip seed");
    gseed_put(&s, "ack-rest-of-input");
    gconv_free(&c);

    /* hand-made: an operator's remove of self (accepted, then stays) and
     * rumours that self refutes */
    struct rkv_buf b;
    gack2_one(&b, FG_SELF_ID, FG_SELF_INCARNATION, 7, 2, GOSSIP_REMOVED);
    gseed_one("ack2-self-removed", n1, true, &b);
    rkv_buf_free(&b);
    gack2_one(&b, FG_SELF_ID, FG_SELF_INCARNATION, 9, 50, GOSSIP_LEAVING);
    gseed_one("ack2-self-leaving-refuted", n1, false, &b);
    rkv_buf_free(&b);
    gack2_one(&b, FG_SELF_ID, FG_SELF_INCARNATION + 5, 1, 0, GOSSIP_UP);
    gseed_one("ack2-self-newer-incarnation", n1, true, &b);
    rkv_buf_free(&b);
    gack2_one(&b, FG_SELF_ID, FG_SELF_INCARNATION - 1, 99, 99, GOSSIP_REMOVED);
    gseed_one("ack2-self-removed-old-incarnation", n1, true, &b);
    rkv_buf_free(&b);
}

/* A message with a valid envelope and a hostile body (raw bytes). */
static void gtrap_body(const char *name, uint64_t type, uint32_t fields, const void *body,
                       size_t len)
{
    struct rkv_buf b = {0};
    struct mp_writer w;
    mp_writer_init(&w, &b);
    genvelope(&w, fields, GOSSIP_WIRE_VERSION, type, FG_CLUSTER, "n1");
    mp_write_raw(&w, body, len);
    gseed_one(name, 1, false, &b);
    rkv_buf_free(&b);
}

static void seeds_gossip_traps(void)
{
    static const uint8_t huge[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t over[] = {0xdc, 0x04, 0x01}; /* 1025 */
    gtrap_body("trap-states-2p32", GOSSIP_ACK2, 5, huge, sizeof huge);
    gtrap_body("trap-digest-2p32", GOSSIP_SYN, 5, huge, sizeof huge);
    gtrap_body("trap-states-1025", GOSSIP_ACK2, 5, over, sizeof over);
    static const uint8_t wants_huge[] = {0x90, 0xdd, 0xff, 0xff, 0xff, 0xff};
    gtrap_body("trap-wants-2p32", GOSSIP_ACK, 6, wants_huge, sizeof wants_huge);
    static const uint8_t nested[] = {0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91};
    gtrap_body("trap-nested", GOSSIP_ACK2, 5, nested, sizeof nested);
    static const uint8_t empty[] = {0x90};
    gtrap_body("trap-unknown-type", 4, 5, empty, sizeof empty);
    gtrap_body("trap-ack-missing-wants", GOSSIP_ACK, 5, empty, sizeof empty);

    struct rkv_buf b = {0};
    struct mp_writer w;
    mp_writer_init(&w, &b);
    genvelope(&w, 5, GOSSIP_WIRE_VERSION + 1, GOSSIP_ACK2, FG_CLUSTER, "n1");
    mp_write_array(&w, 0);
    gseed_one("trap-wire-version-next", 1, false, &b);
    rkv_buf_free(&b);
    mp_writer_init(&w, &b);
    genvelope(&w, 5, GOSSIP_WIRE_VERSION - 1, GOSSIP_ACK2, FG_CLUSTER, "n1");
    mp_write_array(&w, 0);
    gseed_one("trap-wire-version-previous", 1, false, &b);
    rkv_buf_free(&b);
    mp_writer_init(&w, &b);
    genvelope(&w, 5, GOSSIP_WIRE_VERSION, GOSSIP_ACK2, "other-ring", "n1");
    mp_write_array(&w, 0);
    gseed_one("trap-other-cluster", 1, false, &b);
    rkv_buf_free(&b);
    mp_writer_init(&w, &b);
    genvelope(&w, 5, GOSSIP_WIRE_VERSION, GOSSIP_ACK2, FG_CLUSTER, "n2");
    mp_write_array(&w, 0);
    gseed_one("trap-sender-not-transport", 1, false, &b); /* n2 speaking as n1 */
    rkv_buf_free(&b);

    /* forged counters: UINT64_MAX and RKV_COUNTER_MAX are refused; the
     * largest accepted, RKV_COUNTER_MAX - 1, about self and about n2 */
    gack2_one(&b, "n2", UINT64_MAX, 1, 0, GOSSIP_UP);
    gseed_one("trap-incarnation-u64-max", 1, false, &b);
    rkv_buf_free(&b);
    gack2_one(&b, "n2", 5, RKV_COUNTER_MAX, 0, GOSSIP_UP);
    gseed_one("trap-version-counter-max", 1, false, &b);
    rkv_buf_free(&b);
    gack2_one(&b, "n2", RKV_COUNTER_MAX - 1, RKV_COUNTER_MAX - 1, RKV_COUNTER_MAX - 1,
              GOSSIP_UP);
    gseed_one("ack2-counters-at-limit", 1, true, &b);
    rkv_buf_free(&b);
    /* rumours of self at the limit, each followed by a tick: refuting the
     * version one (and ticking past the heartbeat one) went over
     * RKV_COUNTER_MAX (docs/fuzzing.md, finding 7) */
    struct gseed s;
    static const struct {
        const char *name;
        uint64_t inc, ver, hb;
    } limits[] = {
        {"regress-self-version-at-limit", FG_SELF_INCARNATION, RKV_COUNTER_MAX - 1, 3},
        {"regress-self-heartbeat-at-limit", FG_SELF_INCARNATION, 5, RKV_COUNTER_MAX - 1},
        {"trap-self-incarnation-at-limit", RKV_COUNTER_MAX - 1, 1, 0},
        {"trap-self-all-at-limit", RKV_COUNTER_MAX - 1, RKV_COUNTER_MAX - 1, RKV_COUNTER_MAX - 1},
    };
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        gack2_one(&b, FG_SELF_ID, limits[i].inc, limits[i].ver, limits[i].hb, GOSSIP_LEAVING);
        gseed_begin(&s, 1);
        gseed_frame(&s, 6, b.data, b.len);
        gseed_frame(&s, FG_CTL_TICK | 6, NULL, 0);
        gseed_frame(&s, FG_CTL_TICK | 6, b.data, b.len);
        gseed_put(&s, limits[i].name);
        rkv_buf_free(&b);
    }

    /* a real ACK cut short, and with a byte after it */
    gack2_one(&b, "n2", 600, 2, 9, GOSSIP_UP);
    gseed_begin(&s, 1);
    gseed_frame(&s, 0, b.data, b.len - 3);
    gseed_put(&s, "trap-truncated");
    check(rkv_buf_append(&b, "\xc0", 1), "gossip seed");
    gseed_one("trap-trailing-byte", 1, false, &b);
    rkv_buf_free(&b);
    gack2_one(&b, "bad id!", 600, 2, 9, GOSSIP_UP);
    gseed_one("trap-bad-id", 0, false, &b);
    rkv_buf_free(&b);
    gack2_one(&b, "n2", 600, 2, 9, 5);
    gseed_one("trap-status-5", 0, false, &b);
    rkv_buf_free(&b);
}

static void seeds_gossip(void)
{
    seeds_gossip_valid();
    seeds_gossip_traps();
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_corpus DIR   (writes DIR/<target>/...)\n");
        return 2;
    }
    out_dir = argv[1];
    make_dir(out_dir);
    rkv_log_set_level(RKV_LOG_OFF);
    seeds_object();
    seeds_wire();
    seeds_codec();
    seeds_storage();
    seeds_config();
    seeds_resp();
    seeds_gossip();
    return 0;
}
