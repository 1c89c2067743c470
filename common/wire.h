/*
 * wire.h: the messages nodes and clients exchange (docs/protocol.md has
 * the same tables).
 *
 * Every message is one ZeroMQ frame holding one msgpack array that starts
 * with the same four fields:
 *
 *   [version, type, id, epoch, ...]
 *     version  WIRE_VERSION (1); anything else is refused
 *     type     enum wire_type
 *     id       request id chosen by the sender; a reply repeats it
 *     epoch    the sender's ring epoch (0 if it has none yet)
 *
 * Client requests (client port):
 *   PING   [.., ]
 *   GET    [.., key, r, timeout_ms]
 *   PUT    [.., key, value, context, w, timeout_ms, ttl_ms(, flags)]
 *   DEL    [.., key, context, w, timeout_ms(, flags)]
 *   RING   [.., ]
 *   STATS  [.., ]
 *   MEMBER [.., op, member]  a membership change: op WIRE_MEMBER_LEAVE (to
 *          the member itself: hand everything over, then stop; refused
 *          with RKV_ERR_BUSY while another ring change is under way),
 *          WIRE_MEMBER_LEAVE_FORCE (the same, even then) or
 *          WIRE_MEMBER_REMOVE (to any node: member, which must be down,
 *          is gone); member: str, a node id
 *     key, value, context: bin; r, w: 0 means the ring's default;
 *     timeout_ms: 0 means the configured request timeout; ttl_ms 0: never.
 *     flags (left out when 0): WIRE_FLAG_OVERWRITE: the write supersedes
 *     every version in the coordinator's own copy, as if its context were
 *     that copy's (a blind overwrite; the Redis endpoint's SET).
 *     WIRE_FLAG_PRIMARY: only the key's preference list counts toward w
 *     (Riak's PW); fallbacks still take the write as hints.
 *   REPLY  [.., status, message, answered, repaired, payload(, fallbacks)]
 *     status: enum rkv_err; message: str ("" on success); answered: array
 *     of the node ids whose replies counted; repaired: bool, read repair
 *     was sent; fallbacks (left out when empty): [[fallback, owner], ...],
 *     the answered nodes that held the write as a hint for an owner in the
 *     preference list (sloppy quorum); payload (nil on error, except GET's
 *     NOTFOUND which carries the context):
 *       GET    [[[value, ts_ms, expiry_ms], ...], context]  live siblings
 *       PUT, DEL  context of the object written
 *       PING   [node id, software version]
 *       RING   [name, Q, N, R, W, timeout_ms, [[id, host, client_port,
 *              cluster_port, vnodes, server_key], ...]]  server_key: the
 *              member's CurveZMQ public key (Z85), "" without security
 *       STATS  map of str -> uint
 *       MEMBER str, what the node did
 *
 * Cluster requests (cluster port, node to node):
 *   REPLICA_GET    [.., partition, key]
 *   REPLICA_PUT    [.., partition, key, object(, hint_for)]  object: bin
 *                                    (object.h); hint_for (str, left out
 *                                    when empty): keep it as a hint for that
 *                                    member and hand it over later
 *   REPLICA_REPLY  [.., status, object or nil]
 *   FORWARD        [.., request]     a client request (whole frame, bin) for
 *                                    a node of the key's preference list
 *   FORWARD_REPLY  [.., reply]       the REPLY frame it produced (bin)
 *   GOSSIP         [.., message]  a gossip/gossip.h message (bin), id 0,
 *                                    no reply
 *   BATCH          [.., [frame, ...]]  up to WIRE_BATCH_MAX whole messages
 *                                    (bin each, none a BATCH) a node sends
 *                                    to one peer in one loop turn
 *
 * Decoding never copies: struct wire_msg points into the frame, which must
 * outlive it. Every count and length is checked against the frame first.
 */
#ifndef RKV_WIRE_H
#define RKV_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/codec.h"

#define WIRE_VERSION 1
#define WIRE_ANSWERED_MAX 64  /* node ids in a reply */
#define WIRE_BATCH_MAX 4096   /* messages in one BATCH */
#define WIRE_FALLBACKS_MAX 16 /* [fallback, owner] pairs in a reply (RKV_REPLICAS_MAX) */
#define WIRE_SOFTWARE_VERSION "0.1.0"

enum wire_type {
    WIRE_PING = 1,
    WIRE_GET = 2,
    WIRE_PUT = 3,
    WIRE_DEL = 4,
    WIRE_RING = 5,
    WIRE_STATS = 6,
    WIRE_MEMBER = 7,
    WIRE_REPLY = 32,
    WIRE_REPLICA_GET = 64,
    WIRE_REPLICA_PUT = 65,
    WIRE_REPLICA_REPLY = 66,
    WIRE_FORWARD = 67,
    WIRE_FORWARD_REPLY = 68,
    WIRE_BATCH = 69,
    WIRE_GOSSIP = 70,
};

const char *wire_type_name(int type);

#define WIRE_MEMBER_LEAVE 1u
#define WIRE_MEMBER_REMOVE 2u
#define WIRE_MEMBER_LEAVE_FORCE 3u

#define WIRE_FLAG_OVERWRITE 1u
#define WIRE_FLAG_PRIMARY 2u
#define WIRE_FLAGS_KNOWN (WIRE_FLAG_OVERWRITE | WIRE_FLAG_PRIMARY)

struct wire_bytes {
    const uint8_t *p;
    uint32_t len;
};

struct wire_msg {
    uint32_t type;
    uint64_t id;
    uint64_t epoch;
    /* client requests */
    struct wire_bytes key, value, context;
    uint32_t quorum;       /* r or w; 0 = default */
    uint32_t timeout_ms;   /* 0 = default */
    uint64_t ttl_ms;
    uint32_t flags;        /* PUT, DEL: WIRE_FLAG_* */
    /* REPLY */
    uint32_t status;
    struct wire_bytes message;
    uint32_t n_answered;
    struct wire_bytes answered[WIRE_ANSWERED_MAX];
    bool repaired;
    struct wire_bytes payload;   /* raw msgpack of the payload value */
    uint32_t n_fallbacks;
    struct wire_bytes fallback[WIRE_FALLBACKS_MAX], fallback_for[WIRE_FALLBACKS_MAX];
    /* cluster */
    uint16_t partition;
    struct wire_bytes object;    /* len 0 and p NULL when nil */
    struct wire_bytes hint_for;  /* REPLICA_PUT: len 0 unless it is a hint */
    uint32_t op;                 /* MEMBER: WIRE_MEMBER_* */
    struct wire_bytes member;    /* MEMBER: the node id */
    struct wire_bytes inner;     /* FORWARD request / FORWARD_REPLY reply */
    uint32_t n_frames;           /* BATCH: its messages, walked by wire_batch_next */
    struct wire_bytes frames;    /* BATCH: the raw bytes after the array header */
};

/* The next message of a decoded BATCH, starting with *pos = 0; false at the
 * end. Each frame must then be decoded (it may be malformed). */
bool wire_batch_next(const struct wire_msg *m, size_t *pos, struct wire_bytes *frame);

/* Decodes one frame. RKV_ERR_PROTO if it is not exactly one well-formed
 * message of a known type and version (msg is then partly filled: id and
 * type are set if they could be read, so an error reply can name them). */
int wire_decode(const void *frame, size_t len, struct wire_msg *msg);

/* Encoders append one message to out (which they do not clear). */
void wire_header(struct mp_writer *w, uint32_t n_fields, uint32_t type, uint64_t id,
                 uint64_t epoch);
int wire_encode_simple(struct rkv_buf *out, uint32_t type, uint64_t id, uint64_t epoch);
/* GET, PUT or DEL from the fields of m (RKV_ERR_INVAL for other types). */
int wire_encode_request(struct rkv_buf *out, const struct wire_msg *m);
int wire_encode_get(struct rkv_buf *out, uint64_t id, uint64_t epoch, const void *key,
                    size_t key_len, uint32_t r, uint32_t timeout_ms);
int wire_encode_put(struct rkv_buf *out, uint64_t id, uint64_t epoch, const void *key,
                    size_t key_len, const void *value, size_t value_len, const void *ctx,
                    size_t ctx_len, uint32_t w, uint32_t timeout_ms, uint64_t ttl_ms);
int wire_encode_del(struct rkv_buf *out, uint64_t id, uint64_t epoch, const void *key,
                    size_t key_len, const void *ctx, size_t ctx_len, uint32_t w,
                    uint32_t timeout_ms);
/* A reply whose payload is the msgpack bytes given (NULL: nil). */
int wire_encode_reply(struct rkv_buf *out, uint64_t id, uint64_t epoch, int status,
                      const char *message, const char *const *answered, uint32_t n_answered,
                      bool repaired, const void *payload, size_t payload_len);
/* The same with the fallbacks that stood in for owners: fallback[i] held
 * the write for fallback_for[i] (n may be 0; more than WIRE_FALLBACKS_MAX
 * are cut). */
struct wire_fallbacks {
    uint32_t n;
    const char *fallback[WIRE_FALLBACKS_MAX], *fallback_for[WIRE_FALLBACKS_MAX];
};
int wire_encode_reply_fallbacks(struct rkv_buf *out, uint64_t id, uint64_t epoch, int status,
                                const char *message, const char *const *answered,
                                uint32_t n_answered, bool repaired, const void *payload,
                                size_t payload_len, const struct wire_fallbacks *fb);
int wire_encode_replica_get(struct rkv_buf *out, uint64_t id, uint64_t epoch,
                            uint16_t partition, const void *key, size_t key_len);
int wire_encode_replica_put(struct rkv_buf *out, uint64_t id, uint64_t epoch,
                            uint16_t partition, const void *key, size_t key_len,
                            const void *object, size_t object_len);
/* A REPLICA_PUT to a fallback: keep object as a hint for member hint_for. */
int wire_encode_hint_put(struct rkv_buf *out, uint64_t id, uint64_t epoch, uint16_t partition,
                         const void *key, size_t key_len, const void *object,
                         size_t object_len, const char *hint_for);
int wire_encode_member(struct rkv_buf *out, uint64_t id, uint64_t epoch, uint32_t op,
                       const char *member);
int wire_encode_replica_reply(struct rkv_buf *out, uint64_t id, uint64_t epoch, int status,
                              const void *object, size_t object_len);
int wire_encode_wrapped(struct rkv_buf *out, uint32_t type, uint64_t id, uint64_t epoch,
                        const void *inner, size_t inner_len);

/*
 * A BATCH being built: messages for one destination, appended as they are
 * made and sent as one frame. The frame is built in place: the buffer
 * starts with room for the BATCH header, which wire_batch_seal writes just
 * before the first message, so sealing copies nothing. A batch of one
 * message is sent as that message alone.
 */
#define WIRE_BATCH_HEAD_BYTES 24 /* room for [v, BATCH, 0, epoch, array32] */

struct wire_batch {
    struct rkv_buf buf;     /* WIRE_BATCH_HEAD_BYTES, then the messages as bin */
    uint32_t count;
    size_t first;           /* where the first message's own bytes start */
    struct rkv_buf head;    /* the header, encoded before it is placed */
};

/* The frame bytes a batch of count messages totalling bytes would take. */
size_t wire_batch_frame_bytes(uint32_t count, size_t bytes);
/* Appends one message. RKV_ERR_NOMEM (batch unchanged) or RKV_OK. */
int wire_batch_add(struct wire_batch *b, const void *msg, size_t len);
/* The frame to send for everything added: the message itself if there is
 * one, else a BATCH stamped with epoch. The batch must not be empty. */
void wire_batch_seal(struct wire_batch *b, uint64_t epoch, const uint8_t **frame, size_t *len);
/* Walks the messages added (before or after sealing), *pos starting at 0. */
bool wire_batch_each(const struct wire_batch *b, size_t *pos, struct wire_bytes *msg);
/* Empties the batch, keeping its memory. */
void wire_batch_clear(struct wire_batch *b);
void wire_batch_free(struct wire_batch *b);

#endif
