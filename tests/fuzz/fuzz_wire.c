/*
 * fuzz_wire.c: libFuzzer target for the wire decoder (common/wire.h).
 *
 * Every frame a node or a client receives goes through wire_decode first,
 * so this target is the front door of invariant 8: any bytes give an error
 * or a message, never a crash, a hang or an allocation sized by the frame.
 * The input is one frame. When it decodes, the target checks:
 *
 *   - every borrowed view (key, value, context, message, answered ids,
 *     payload, object, inner frame) lies inside the frame; the key is
 *     within RKV_KEY_BYTES_MAX, answered within WIRE_ANSWERED_MAX, status
 *     below 2^16 (what wire_decode promises its callers);
 *   - the message re-encodes with its wire_encode_* function and the
 *     re-encoding decodes to the same fields. The bytes themselves may
 *     differ: wire_decode accepts any msgpack width for an integer;
 *   - the values nested inside are decoded the way their consumers decode
 *     them: a REPLY payload in each shape the client reads (GET's
 *     [[value, ts, expiry], ...] + context, PING, RING, STATS), a FORWARD's
 *     inner frame with wire_decode (node/loop.c), PUT and DEL contexts with
 *     context_decode, REPLICA_PUT and REPLICA_REPLY objects with
 *     object_decode (both with the hard ceilings as limits);
 *   - a BATCH holds exactly n_frames frames inside it, each of which is
 *     decoded and checked like a message (one level: nodes refuse a BATCH
 *     inside a BATCH), and the frames rebuilt with struct wire_batch decode
 *     to the same frames.
 *
 * Nothing is kept between inputs; all that is allocated is freed.
 */
#include <stdbool.h>
#include <string.h>

#include "common/buf.h"
#include "common/codec.h"
#include "common/err.h"
#include "common/limits.h"
#include "common/object.h"
#include "common/wire.h"
#include "tests/fuzz/fuzz.h"

static bool bytes_eq(const struct wire_bytes *a, const struct wire_bytes *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->p, b->p, a->len) == 0);
}

/* ---- nested values, decoded the way their consumers do ---- */

static void check_context(const struct wire_bytes *b)
{
    struct object_limits lim;
    object_limits_default(&lim);
    struct vclock vc;
    vclock_init(&vc);
    int rc = context_decode(b->p, b->len, &lim, &vc);
    FUZZ_CHECK(rc == RKV_OK || rc == RKV_ERR_PROTO || rc == RKV_ERR_TOOBIG);
    FUZZ_CHECK(rc != RKV_OK || vc.n <= RKV_CLOCK_ENTRIES_MAX);
    vclock_free(&vc);
}

static void check_object(const struct wire_bytes *b)
{
    struct object_limits lim;
    object_limits_default(&lim);
    struct object o;
    object_init(&o);
    int rc = object_decode(b->p, b->len, &lim, &o);
    FUZZ_CHECK(rc == RKV_OK || rc == RKV_ERR_PROTO || rc == RKV_ERR_TOOBIG);
    FUZZ_CHECK(rc != RKV_OK || object_invariants_ok(&o));
    object_free(&o);
}

/* GET: [[[value, ts_ms, expiry_ms], ...], context], as client.c reads it. */
static void payload_get(const struct wire_bytes *pl)
{
    struct mp_reader r;
    mp_reader_init(&r, pl->p, pl->len);
    uint32_t fields, n;
    if (mp_peek_nil(&r) || !mp_read_array(&r, &fields) || fields != 2 || !mp_read_array(&r, &n))
        return;
    FUZZ_CHECK(n <= mp_left(&r)); /* the count was bounded by the bytes */
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *p;
        uint32_t len;
        uint64_t ts, exp;
        if (!mp_read_array(&r, &fields) || fields != 3 || !mp_read_bin(&r, &p, &len) ||
            !mp_read_uint(&r, &ts) || !mp_read_uint(&r, &exp))
            return;
        FUZZ_CHECK(fuzz_inside(p, len, pl->p, pl->len));
    }
    struct wire_bytes ctx;
    if (!mp_read_bin(&r, &ctx.p, &ctx.len))
        return;
    FUZZ_CHECK(fuzz_inside(ctx.p, ctx.len, pl->p, pl->len));
    check_context(&ctx);
}

static bool read_str_in(struct mp_reader *r, const struct wire_bytes *pl)
{
    const char *s;
    uint32_t len;
    if (!mp_read_str(r, &s, &len))
        return false;
    FUZZ_CHECK(fuzz_inside(s, len, pl->p, pl->len));
    return true;
}

/* PING: [node id, software version]. */
static void payload_ping(const struct wire_bytes *pl)
{
    struct mp_reader r;
    mp_reader_init(&r, pl->p, pl->len);
    uint32_t n;
    if (mp_read_array(&r, &n) && n == 2 && read_str_in(&r, pl))
        read_str_in(&r, pl);
}

/* RING: [name, Q, N, R, W, timeout_ms, [[id, host, cport, kport, V], ...]]. */
static void payload_ring(const struct wire_bytes *pl)
{
    struct mp_reader r;
    mp_reader_init(&r, pl->p, pl->len);
    uint32_t n, v, members, fields;
    uint16_t port;
    if (!mp_read_array(&r, &n) || n != 7 || !read_str_in(&r, pl))
        return;
    for (int i = 0; i < 5; i++)
        if (!mp_read_u32(&r, &v))
            return;
    if (!mp_read_array(&r, &members))
        return;
    FUZZ_CHECK(members <= mp_left(&r));
    for (uint32_t i = 0; i < members; i++)
        if (!mp_read_array(&r, &fields) || fields != 5 || !read_str_in(&r, pl) ||
            !read_str_in(&r, pl) || !mp_read_u16(&r, &port) || !mp_read_u16(&r, &port) ||
            !mp_read_u32(&r, &v))
            return;
}

/* STATS: a map of str to uint. */
static void payload_stats(const struct wire_bytes *pl)
{
    struct mp_reader r;
    mp_reader_init(&r, pl->p, pl->len);
    uint32_t n;
    uint64_t v;
    if (!mp_read_map(&r, &n))
        return;
    FUZZ_CHECK(2ull * n <= mp_left(&r));
    for (uint32_t i = 0; i < n; i++)
        if (!read_str_in(&r, pl) || !mp_read_uint(&r, &v))
            return;
}

/* ---- re-encoding ---- */

/* Copies len bytes into a fresh NUL-terminated string; NULL if the bytes
 * hold a NUL (the encoders take C strings) or memory ran out. */
static char *cstr(const struct wire_bytes *b)
{
    if (b->len && memchr(b->p, 0, b->len))
        return NULL;
    char *s = malloc((size_t)b->len + 1);
    if (s == NULL)
        return NULL;
    if (b->len)
        memcpy(s, b->p, b->len);
    s[b->len] = '\0';
    return s;
}

/* Encodes a REPLY with the fields of m; false if it cannot be expressed
 * (a NUL inside the message or an answered id). */
static bool encode_reply(const struct wire_msg *m, struct rkv_buf *out)
{
    char *msg = cstr(&m->message);
    char *ids[WIRE_ANSWERED_MAX] = {NULL};
    bool ok = msg != NULL;
    for (uint32_t i = 0; ok && i < m->n_answered; i++)
        ok = (ids[i] = cstr(&m->answered[i])) != NULL;
    if (ok)
        FUZZ_CHECK(wire_encode_reply(out, m->id, m->epoch, (int)m->status, msg,
                                     (const char *const *)ids, m->n_answered, m->repaired,
                                     m->payload.p, m->payload.len) == RKV_OK);
    for (uint32_t i = 0; i < m->n_answered; i++)
        free(ids[i]);
    free(msg);
    return ok;
}

/* Encodes m again with its type's encoder; false if it cannot be. */
static bool encode(const struct wire_msg *m, struct rkv_buf *out)
{
    int rc = RKV_OK;
    switch (m->type) {
    case WIRE_PING:
    case WIRE_RING:
    case WIRE_STATS:
        rc = wire_encode_simple(out, m->type, m->id, m->epoch);
        break;
    case WIRE_GET:
    case WIRE_PUT:
    case WIRE_DEL: /* flags included */
        rc = wire_encode_request(out, m);
        break;
    case WIRE_REPLY:
        return encode_reply(m, out);
    case WIRE_REPLICA_GET:
        rc = wire_encode_replica_get(out, m->id, m->epoch, m->partition, m->key.p, m->key.len);
        break;
    case WIRE_REPLICA_PUT:
        rc = wire_encode_replica_put(out, m->id, m->epoch, m->partition, m->key.p, m->key.len,
                                     m->object.p, m->object.len);
        break;
    case WIRE_REPLICA_REPLY:
        rc = wire_encode_replica_reply(out, m->id, m->epoch, (int)m->status, m->object.p,
                                       m->object.len);
        break;
    case WIRE_FORWARD:
    case WIRE_FORWARD_REPLY:
    case WIRE_GOSSIP:
        rc = wire_encode_wrapped(out, m->type, m->id, m->epoch, m->inner.p, m->inner.len);
        break;
    case WIRE_MEMBER: {
        char id[RKV_NODE_ID_BYTES_MAX + 1]; /* decoding bounds it and refuses a NUL */
        FUZZ_CHECK(m->member.len > 0 && m->member.len <= RKV_NODE_ID_BYTES_MAX);
        memcpy(id, m->member.p, m->member.len);
        id[m->member.len] = '\0';
        rc = wire_encode_member(out, m->id, m->epoch, m->op, id);
        break;
    }
    case WIRE_BATCH:
        return false; /* rebuilt and compared in check_batch */
    default:
        FUZZ_CHECK(!"wire_decode accepted an unknown type");
    }
    FUZZ_CHECK(rc == RKV_OK);
    return true;
}

/* The fields of a and b (decoded from different frames) are equal. */
static bool same_fields(const struct wire_msg *a, const struct wire_msg *b)
{
    if (a->type != b->type || a->id != b->id || a->epoch != b->epoch || a->quorum != b->quorum ||
        a->timeout_ms != b->timeout_ms || a->ttl_ms != b->ttl_ms || a->status != b->status ||
        a->n_answered != b->n_answered || a->repaired != b->repaired ||
        a->partition != b->partition || a->flags != b->flags || a->op != b->op)
        return false;
    if (!bytes_eq(&a->key, &b->key) || !bytes_eq(&a->value, &b->value) ||
        !bytes_eq(&a->context, &b->context) || !bytes_eq(&a->message, &b->message) ||
        !bytes_eq(&a->payload, &b->payload) || !bytes_eq(&a->object, &b->object) ||
        !bytes_eq(&a->inner, &b->inner) || !bytes_eq(&a->frames, &b->frames) ||
        !bytes_eq(&a->member, &b->member) ||
        a->n_frames != b->n_frames)
        return false;
    if ((a->object.p == NULL) != (b->object.p == NULL)) /* nil versus empty bin */
        return false;
    for (uint32_t i = 0; i < a->n_answered; i++)
        if (!bytes_eq(&a->answered[i], &b->answered[i]))
            return false;
    return true;
}

/* ---- one decoded message ---- */

static void check_msg(const uint8_t *frame, size_t len, const struct wire_msg *m, int depth);

static void check_batch(const uint8_t *frame, size_t len, const struct wire_msg *m, int depth)
{
    FUZZ_CHECK(m->n_frames <= WIRE_BATCH_MAX);
    FUZZ_CHECK(fuzz_inside(m->frames.p, m->frames.len, frame, len));
    struct wire_batch again = {0};
    struct wire_bytes f;
    uint32_t n = 0;
    for (size_t pos = 0; wire_batch_next(m, &pos, &f); n++) {
        FUZZ_CHECK(fuzz_inside(f.p, f.len, m->frames.p, m->frames.len));
        FUZZ_CHECK(wire_batch_add(&again, f.p, f.len) == RKV_OK);
        struct wire_msg one;
        if (depth == 0 && wire_decode(f.p, f.len, &one) == RKV_OK)
            check_msg(f.p, f.len, &one, depth + 1);
    }
    FUZZ_CHECK(n == m->n_frames);
    if (n >= 2) { /* a batch of one is sent as its message */
        const uint8_t *sealed;
        size_t sealed_len;
        wire_batch_seal(&again, m->epoch, &sealed, &sealed_len);
        struct wire_msg m2;
        FUZZ_CHECK(wire_decode(sealed, sealed_len, &m2) == RKV_OK);
        FUZZ_CHECK(m2.type == WIRE_BATCH && m2.n_frames == n && m2.epoch == m->epoch);
        struct wire_bytes g;
        size_t p1 = 0, p2 = 0;
        while (wire_batch_next(m, &p1, &f)) {
            FUZZ_CHECK(wire_batch_next(&m2, &p2, &g));
            FUZZ_CHECK(bytes_eq(&f, &g));
        }
    }
    wire_batch_free(&again);
}

static void check_msg(const uint8_t *frame, size_t len, const struct wire_msg *m, int depth)
{
    FUZZ_CHECK(m->key.len <= RKV_KEY_BYTES_MAX);
    FUZZ_CHECK(m->n_answered <= WIRE_ANSWERED_MAX);
    FUZZ_CHECK(m->status < (1u << 16));
    const struct wire_bytes *views[] = {&m->key,     &m->value,  &m->context, &m->message,
                                        &m->payload, &m->object, &m->inner};
    for (size_t i = 0; i < sizeof views / sizeof views[0]; i++)
        FUZZ_CHECK(fuzz_inside(views[i]->p, views[i]->len, frame, len));
    for (uint32_t i = 0; i < m->n_answered; i++)
        FUZZ_CHECK(fuzz_inside(m->answered[i].p, m->answered[i].len, frame, len));

    struct rkv_buf again = {0};
    if (encode(m, &again)) {
        struct wire_msg m2;
        FUZZ_CHECK(wire_decode(again.data, again.len, &m2) == RKV_OK);
        FUZZ_CHECK(same_fields(m, &m2));
    }
    rkv_buf_free(&again);

    switch (m->type) {
    case WIRE_PUT:
    case WIRE_DEL:
        check_context(&m->context);
        break;
    case WIRE_BATCH:
        check_batch(frame, len, m, depth);
        break;
    case WIRE_REPLY:
        FUZZ_CHECK(m->payload.len > 0); /* a payload is one whole value, nil at least */
        payload_get(&m->payload);
        payload_ping(&m->payload);
        payload_ring(&m->payload);
        payload_stats(&m->payload);
        break;
    case WIRE_REPLICA_PUT:
    case WIRE_REPLICA_REPLY:
        if (m->object.p)
            check_object(&m->object);
        break;
    case WIRE_FORWARD:
    case WIRE_FORWARD_REPLY:
        if (depth == 0) { /* node/loop.c unwraps one level, never more */
            struct wire_msg inner;
            if (wire_decode(m->inner.p, m->inner.len, &inner) == RKV_OK)
                check_msg(m->inner.p, m->inner.len, &inner, depth + 1);
        }
        break;
    default:
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct wire_msg m;
    int rc = wire_decode(data, size, &m);
    FUZZ_CHECK(rc == RKV_OK || rc == RKV_ERR_PROTO);
    if (rc == RKV_OK)
        check_msg(data, size, &m, 0);
    return 0;
}
