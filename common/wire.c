/* wire.c: encoding and bounded decoding of every wire message. */
#include "common/wire.h"

#include "common/err.h"
#include "common/limits.h"

const char *wire_type_name(int type)
{
    switch (type) {
    case WIRE_PING: return "PING";
    case WIRE_GET: return "GET";
    case WIRE_PUT: return "PUT";
    case WIRE_DEL: return "DEL";
    case WIRE_RING: return "RING";
    case WIRE_STATS: return "STATS";
    case WIRE_MEMBER: return "MEMBER";
    case WIRE_REPLY: return "REPLY";
    case WIRE_REPLICA_GET: return "REPLICA_GET";
    case WIRE_REPLICA_PUT: return "REPLICA_PUT";
    case WIRE_REPLICA_REPLY: return "REPLICA_REPLY";
    case WIRE_FORWARD: return "FORWARD";
    case WIRE_FORWARD_REPLY: return "FORWARD_REPLY";
    case WIRE_BATCH: return "BATCH";
    case WIRE_GOSSIP: return "GOSSIP";
    default: return "?";
    }
}

/* Fields after the four-field header, per type; -1 for unknown types. */
static int body_fields(uint32_t type)
{
    switch (type) {
    case WIRE_PING:
    case WIRE_RING:
    case WIRE_STATS: return 0;
    case WIRE_GET: return 3;
    case WIRE_MEMBER: return 2;
    case WIRE_PUT: return 6;
    case WIRE_DEL: return 4;
    case WIRE_REPLY: return 5;
    case WIRE_REPLICA_GET: return 2;
    case WIRE_REPLICA_PUT: return 3;
    case WIRE_REPLICA_REPLY: return 2;
    case WIRE_FORWARD:
    case WIRE_FORWARD_REPLY:
    case WIRE_GOSSIP:
    case WIRE_BATCH: return 1;
    default: return -1;
    }
}

static bool read_bytes(struct mp_reader *r, struct wire_bytes *b)
{
    return mp_read_bin(r, &b->p, &b->len);
}

static bool read_bin_or_nil(struct mp_reader *r, struct wire_bytes *b)
{
    if (mp_peek_nil(r)) {
        b->p = NULL;
        b->len = 0;
        return mp_read_nil(r);
    }
    return read_bytes(r, b);
}

/* Records where the payload value starts and skips it. */
static bool read_raw_value(struct mp_reader *r, struct wire_bytes *b)
{
    const uint8_t *start = r->p;
    if (!mp_skip(r))
        return false;
    b->p = start;
    b->len = (uint32_t)(r->p - start);
    return true;
}

/* PUT and DEL end with optional flags: known bits only, and never 0 (a
 * frame without flags leaves the field out, so each message has one form). */
static bool read_flags(struct mp_reader *r, struct wire_msg *m)
{
    return mp_read_u32(r, &m->flags) && m->flags != 0 && (m->flags & ~WIRE_FLAGS_KNOWN) == 0;
}

/* REPLY's optional fallbacks: one to WIRE_FALLBACKS_MAX pairs of ids. */
static bool read_fallbacks(struct mp_reader *r, struct wire_msg *m)
{
    uint32_t n, two;
    if (!mp_read_array(r, &n) || n == 0 || n > WIRE_FALLBACKS_MAX)
        return false;
    for (uint32_t i = 0; i < n; i++)
        if (!mp_read_array(r, &two) || two != 2 ||
            !mp_read_str(r, (const char **)&m->fallback[i].p, &m->fallback[i].len) ||
            !mp_read_str(r, (const char **)&m->fallback_for[i].p, &m->fallback_for[i].len))
            return false;
    m->n_fallbacks = n;
    return true;
}

/* REPLICA_PUT's optional hint owner: a node id, never empty. */
static bool read_hint_for(struct mp_reader *r, struct wire_msg *m)
{
    return mp_read_str(r, (const char **)&m->hint_for.p, &m->hint_for.len) &&
           m->hint_for.len > 0 && m->hint_for.len <= RKV_NODE_ID_BYTES_MAX &&
           memchr(m->hint_for.p, '\0', m->hint_for.len) == NULL;
}

static bool read_member(struct mp_reader *r, struct wire_msg *m)
{
    return mp_read_u32(r, &m->op) && m->op >= WIRE_MEMBER_LEAVE &&
           m->op <= WIRE_MEMBER_LEAVE_FORCE &&
           mp_read_str(r, (const char **)&m->member.p, &m->member.len) && m->member.len > 0 &&
           m->member.len <= RKV_NODE_ID_BYTES_MAX &&
           memchr(m->member.p, '\0', m->member.len) == NULL;
}

/* flagged: the message has its optional last field. */
static bool decode_body(struct mp_reader *r, struct wire_msg *m, bool flagged)
{
    uint32_t n;
    switch (m->type) {
    case WIRE_GET:
        return read_bytes(r, &m->key) && mp_read_u32(r, &m->quorum) &&
               mp_read_u32(r, &m->timeout_ms);
    case WIRE_PUT:
        return read_bytes(r, &m->key) && read_bytes(r, &m->value) &&
               read_bytes(r, &m->context) && mp_read_u32(r, &m->quorum) &&
               mp_read_u32(r, &m->timeout_ms) && mp_read_uint(r, &m->ttl_ms) &&
               (!flagged || read_flags(r, m));
    case WIRE_DEL:
        return read_bytes(r, &m->key) && read_bytes(r, &m->context) &&
               mp_read_u32(r, &m->quorum) && mp_read_u32(r, &m->timeout_ms) &&
               (!flagged || read_flags(r, m));
    case WIRE_REPLY:
        if (!mp_read_u32(r, &m->status) ||
            !mp_read_str(r, (const char **)&m->message.p, &m->message.len) ||
            !mp_read_array(r, &n) || n > WIRE_ANSWERED_MAX)
            return false;
        m->n_answered = n;
        for (uint32_t i = 0; i < n; i++)
            if (!mp_read_str(r, (const char **)&m->answered[i].p, &m->answered[i].len))
                return false;
        return mp_read_bool(r, &m->repaired) && read_raw_value(r, &m->payload) &&
               (!flagged || read_fallbacks(r, m));
    case WIRE_MEMBER:
        return read_member(r, m);
    case WIRE_REPLICA_GET:
        return mp_read_u16(r, &m->partition) && read_bytes(r, &m->key);
    case WIRE_REPLICA_PUT:
        return mp_read_u16(r, &m->partition) && read_bytes(r, &m->key) &&
               read_bytes(r, &m->object) && (!flagged || read_hint_for(r, m));
    case WIRE_REPLICA_REPLY:
        return mp_read_u32(r, &m->status) && read_bin_or_nil(r, &m->object);
    case WIRE_FORWARD:
    case WIRE_FORWARD_REPLY:
    case WIRE_GOSSIP:
        return read_bytes(r, &m->inner);
    case WIRE_BATCH: {
        /* every frame is checked here, so wire_batch_next cannot fail */
        if (!mp_read_array(r, &m->n_frames) || m->n_frames > WIRE_BATCH_MAX)
            return false;
        const uint8_t *start = r->p;
        struct wire_bytes f;
        for (uint32_t i = 0; i < m->n_frames; i++)
            if (!read_bytes(r, &f))
                return false;
        m->frames.p = start;
        m->frames.len = (uint32_t)(r->p - start);
        return true;
    }
    default:
        return true; /* PING, RING, STATS have no body */
    }
}

bool wire_batch_next(const struct wire_msg *m, size_t *pos, struct wire_bytes *frame)
{
    if (*pos >= m->frames.len)
        return false;
    struct mp_reader r;
    mp_reader_init(&r, m->frames.p + *pos, m->frames.len - *pos);
    if (!mp_read_bin(&r, &frame->p, &frame->len))
        return false;
    *pos = (size_t)(r.p - m->frames.p);
    return true;
}

int wire_decode(const void *frame, size_t len, struct wire_msg *m)
{
    memset(m, 0, sizeof *m);
    struct mp_reader r;
    mp_reader_init(&r, frame, len);
    uint32_t n, version;
    if (!mp_read_array(&r, &n) || n < 4 || !mp_read_u32(&r, &version) ||
        !mp_read_u32(&r, &m->type) || !mp_read_uint(&r, &m->id) || !mp_read_uint(&r, &m->epoch))
        return RKV_ERR_PROTO;
    int fields = body_fields(m->type);
    /* PUT, DEL, REPLY and REPLICA_PUT may end with one optional field */
    bool flagged = (m->type == WIRE_PUT || m->type == WIRE_DEL || m->type == WIRE_REPLY ||
                    m->type == WIRE_REPLICA_PUT) &&
                   n == 5u + (uint32_t)fields;
    if (version != WIRE_VERSION || fields < 0 || (n != 4u + (uint32_t)fields && !flagged))
        return RKV_ERR_PROTO;
    if (!decode_body(&r, m, flagged) || !mp_done(&r))
        return RKV_ERR_PROTO;
    if (m->key.len > RKV_KEY_BYTES_MAX || m->status >= 1u << 16)
        return RKV_ERR_PROTO;
    return RKV_OK;
}

void wire_header(struct mp_writer *w, uint32_t n_fields, uint32_t type, uint64_t id,
                 uint64_t epoch)
{
    mp_write_array(w, 4 + n_fields);
    mp_write_uint(w, WIRE_VERSION);
    mp_write_uint(w, type);
    mp_write_uint(w, id);
    mp_write_uint(w, epoch);
}

static int done(struct mp_writer *w)
{
    return w->failed ? RKV_ERR_NOMEM : RKV_OK;
}

int wire_encode_simple(struct rkv_buf *out, uint32_t type, uint64_t id, uint64_t epoch)
{
    struct mp_writer w;
    mp_writer_init(&w, out);
    wire_header(&w, 0, type, id, epoch);
    return done(&w);
}

int wire_encode_request(struct rkv_buf *out, const struct wire_msg *m)
{
    struct mp_writer w;
    mp_writer_init(&w, out);
    uint32_t extra = m->flags ? 1 : 0;
    if (m->type == WIRE_GET) {
        wire_header(&w, 3, WIRE_GET, m->id, m->epoch);
        mp_write_bin(&w, m->key.p, m->key.len);
    } else if (m->type == WIRE_PUT) {
        wire_header(&w, 6 + extra, WIRE_PUT, m->id, m->epoch);
        mp_write_bin(&w, m->key.p, m->key.len);
        mp_write_bin(&w, m->value.p, m->value.len);
        mp_write_bin(&w, m->context.p, m->context.len);
    } else if (m->type == WIRE_DEL) {
        wire_header(&w, 4 + extra, WIRE_DEL, m->id, m->epoch);
        mp_write_bin(&w, m->key.p, m->key.len);
        mp_write_bin(&w, m->context.p, m->context.len);
    } else {
        return RKV_ERR_INVAL;
    }
    mp_write_uint(&w, m->quorum);
    mp_write_uint(&w, m->timeout_ms);
    if (m->type == WIRE_PUT)
        mp_write_uint(&w, m->ttl_ms);
    if (m->type != WIRE_GET && m->flags)
        mp_write_uint(&w, m->flags);
    return done(&w);
}

int wire_encode_member(struct rkv_buf *out, uint64_t id, uint64_t epoch, uint32_t op,
                       const char *member)
{
    struct mp_writer w;
    mp_writer_init(&w, out);
    wire_header(&w, 2, WIRE_MEMBER, id, epoch);
    mp_write_uint(&w, op);
    mp_write_cstr(&w, member);
    return done(&w);
}

int wire_encode_get(struct rkv_buf *out, uint64_t id, uint64_t epoch, const void *key,
                    size_t key_len, uint32_t r, uint32_t timeout_ms)
{
    return wire_encode_request(out, &(struct wire_msg){
        .type = WIRE_GET, .id = id, .epoch = epoch, .key = {key, (uint32_t)key_len},
        .quorum = r, .timeout_ms = timeout_ms});
}

int wire_encode_put(struct rkv_buf *out, uint64_t id, uint64_t epoch, const void *key,
                    size_t key_len, const void *value, size_t value_len, const void *ctx,
                    size_t ctx_len, uint32_t wq, uint32_t timeout_ms, uint64_t ttl_ms)
{
    return wire_encode_request(out, &(struct wire_msg){
        .type = WIRE_PUT, .id = id, .epoch = epoch, .key = {key, (uint32_t)key_len},
        .value = {value, (uint32_t)value_len}, .context = {ctx, (uint32_t)ctx_len},
        .quorum = wq, .timeout_ms = timeout_ms, .ttl_ms = ttl_ms});
}

int wire_encode_del(struct rkv_buf *out, uint64_t id, uint64_t epoch, const void *key,
                    size_t key_len, const void *ctx, size_t ctx_len, uint32_t wq,
                    uint32_t timeout_ms)
{
    return wire_encode_request(out, &(struct wire_msg){
        .type = WIRE_DEL, .id = id, .epoch = epoch, .key = {key, (uint32_t)key_len},
        .context = {ctx, (uint32_t)ctx_len}, .quorum = wq, .timeout_ms = timeout_ms});
}

int wire_encode_reply(struct rkv_buf *out, uint64_t id, uint64_t epoch, int status,
                      const char *message, const char *const *answered, uint32_t n_answered,
                      bool repaired, const void *payload, size_t payload_len)
{
    return wire_encode_reply_fallbacks(out, id, epoch, status, message, answered, n_answered,
                                       repaired, payload, payload_len, NULL);
}

int wire_encode_reply_fallbacks(struct rkv_buf *out, uint64_t id, uint64_t epoch, int status,
                                const char *message, const char *const *answered,
                                uint32_t n_answered, bool repaired, const void *payload,
                                size_t payload_len, const struct wire_fallbacks *fb)
{
    uint32_t n_fb = fb == NULL ? 0 : fb->n < WIRE_FALLBACKS_MAX ? fb->n : WIRE_FALLBACKS_MAX;
    struct mp_writer w;
    mp_writer_init(&w, out);
    wire_header(&w, n_fb ? 6 : 5, WIRE_REPLY, id, epoch);
    mp_write_uint(&w, (uint64_t)status);
    mp_write_cstr(&w, message ? message : "");
    if (n_answered > WIRE_ANSWERED_MAX)
        n_answered = WIRE_ANSWERED_MAX;
    mp_write_array(&w, n_answered);
    for (uint32_t i = 0; i < n_answered; i++)
        mp_write_cstr(&w, answered[i]);
    mp_write_bool(&w, repaired);
    if (payload)
        mp_write_raw(&w, payload, payload_len);
    else
        mp_write_nil(&w);
    if (n_fb) {
        mp_write_array(&w, n_fb);
        for (uint32_t i = 0; i < n_fb; i++) {
            mp_write_array(&w, 2);
            mp_write_cstr(&w, fb->fallback[i]);
            mp_write_cstr(&w, fb->fallback_for[i]);
        }
    }
    return done(&w);
}

int wire_encode_replica_get(struct rkv_buf *out, uint64_t id, uint64_t epoch,
                            uint16_t partition, const void *key, size_t key_len)
{
    struct mp_writer w;
    mp_writer_init(&w, out);
    wire_header(&w, 2, WIRE_REPLICA_GET, id, epoch);
    mp_write_uint(&w, partition);
    mp_write_bin(&w, key, key_len);
    return done(&w);
}

int wire_encode_replica_put(struct rkv_buf *out, uint64_t id, uint64_t epoch,
                            uint16_t partition, const void *key, size_t key_len,
                            const void *object, size_t object_len)
{
    return wire_encode_hint_put(out, id, epoch, partition, key, key_len, object, object_len,
                                NULL);
}

int wire_encode_hint_put(struct rkv_buf *out, uint64_t id, uint64_t epoch, uint16_t partition,
                         const void *key, size_t key_len, const void *object,
                         size_t object_len, const char *hint_for)
{
    bool hint = hint_for != NULL && *hint_for != '\0';
    struct mp_writer w;
    mp_writer_init(&w, out);
    wire_header(&w, hint ? 4 : 3, WIRE_REPLICA_PUT, id, epoch);
    mp_write_uint(&w, partition);
    mp_write_bin(&w, key, key_len);
    mp_write_bin(&w, object, object_len);
    if (hint)
        mp_write_cstr(&w, hint_for);
    return done(&w);
}

int wire_encode_replica_reply(struct rkv_buf *out, uint64_t id, uint64_t epoch, int status,
                              const void *object, size_t object_len)
{
    struct mp_writer w;
    mp_writer_init(&w, out);
    wire_header(&w, 2, WIRE_REPLICA_REPLY, id, epoch);
    mp_write_uint(&w, (uint64_t)status);
    if (object)
        mp_write_bin(&w, object, object_len);
    else
        mp_write_nil(&w);
    return done(&w);
}

int wire_encode_wrapped(struct rkv_buf *out, uint32_t type, uint64_t id, uint64_t epoch,
                        const void *inner, size_t inner_len)
{
    struct mp_writer w;
    mp_writer_init(&w, out);
    wire_header(&w, 1, type, id, epoch);
    mp_write_bin(&w, inner, inner_len);
    return done(&w);
}

/* ---- batches ---- */

size_t wire_batch_frame_bytes(uint32_t count, size_t bytes)
{
    return WIRE_BATCH_HEAD_BYTES + (size_t)count * 5 + bytes; /* bin32 headers at most */
}

int wire_batch_add(struct wire_batch *b, const void *msg, size_t len)
{
    if (b->buf.len == 0) {
        /* the header's room too, so that sealing cannot fail */
        if (rkv_buf_reserve(&b->buf, WIRE_BATCH_HEAD_BYTES + 5 + len) != RKV_OK ||
            rkv_buf_reserve(&b->head, WIRE_BATCH_HEAD_BYTES) != RKV_OK)
            return RKV_ERR_NOMEM;
        b->buf.len = WIRE_BATCH_HEAD_BYTES;
    }
    size_t before = b->buf.len;
    struct mp_writer w;
    mp_writer_init(&w, &b->buf);
    mp_write_bin(&w, msg, len);
    if (w.failed) {
        b->buf.len = before;
        return RKV_ERR_NOMEM;
    }
    if (b->count++ == 0)
        b->first = b->buf.len - len;
    return RKV_OK;
}

void wire_batch_seal(struct wire_batch *b, uint64_t epoch, const uint8_t **frame, size_t *len)
{
    if (b->count == 1) {
        *frame = b->buf.data + b->first;
        *len = b->buf.len - b->first;
        return;
    }
    b->head.len = 0;
    struct mp_writer w;
    mp_writer_init(&w, &b->head);
    wire_header(&w, 1, WIRE_BATCH, 0, epoch);
    mp_write_array(&w, b->count);
    /* at most 1 + 1 + 1 + 1 + 9 + 5 bytes, into room reserved by the add */
    size_t h = b->head.len;
    uint8_t *start = b->buf.data + WIRE_BATCH_HEAD_BYTES - h;
    memcpy(start, b->head.data, h);
    *frame = start;
    *len = b->buf.len - (WIRE_BATCH_HEAD_BYTES - h);
}

bool wire_batch_each(const struct wire_batch *b, size_t *pos, struct wire_bytes *msg)
{
    if (b->buf.len == 0)
        return false;
    struct wire_msg m = {.frames = {b->buf.data + WIRE_BATCH_HEAD_BYTES,
                                    (uint32_t)(b->buf.len - WIRE_BATCH_HEAD_BYTES)}};
    return wire_batch_next(&m, pos, msg);
}

void wire_batch_clear(struct wire_batch *b)
{
    b->buf.len = 0;
    b->count = 0;
    b->first = 0;
}

void wire_batch_free(struct wire_batch *b)
{
    rkv_buf_free(&b->buf);
    rkv_buf_free(&b->head);
    wire_batch_clear(b);
}
