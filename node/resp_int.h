/*
 * resp_int.h: what the two halves of the Redis endpoint share: resp.c
 * (connections, the coordinator side, replies) and resp_cmd.c (the
 * commands). Nothing outside node/resp*.c includes it.
 */
#ifndef RKV_NODE_RESP_INT_H
#define RKV_NODE_RESP_INT_H

#include "common/resp.h"
#include "node/node.h"

#define READ_BYTES      (64u * 1024)  /* one read() */
#define READ_PER_TURN   (256u * 1024) /* per connection and loop turn */
#define ACCEPT_PER_TURN 64
#define KEEP_BYTES      (64u * 1024) /* buffers larger than this are returned when idle */
#define REDIS_VERSION   "7.0.0"      /* what INFO and HELLO claim to speak */
#define KEY_SLOTS       1024         /* per connection: keys in flight, hashed */

/* What a command's reply is made of. */
enum call_kind {
    K_DONE = 0, /* the reply is written already */
    K_GET,      /* bulk of the newest sibling, or nil */
    K_MGET,     /* array of those */
    K_WRITE,    /* +OK once every part succeeded (SET, SETEX, MSET) */
    K_SET_NX,   /* get, then put if absent: +OK or nil */
    K_SET_XX,   /* get, then put if present */
    K_DEL,      /* get each, delete those found: count */
    K_EXISTS,   /* get each: count of found */
    K_EXPIRE,   /* get, then put again with a new expiry: 1 or 0 */
    K_TTL,      /* get: seconds left, -1, -2 */
    K_PTTL,
    K_FLUSH, /* an overwriting delete of every key this node stores */
};

#define FLUSH_INFLIGHT 256 /* FLUSHALL's deletes in flight at once */

struct call {
    uint8_t kind;
    uint8_t phase; /* two-phase kinds: 0 reading, 1 writing */
    bool done;
    uint32_t nkeys;
    uint32_t waiting; /* parts in flight */
    int64_t count;
    uint64_t ttl_ms; /* SET with EX/PX, EXPIRE */
    bool delete_now; /* EXPIRE with a time in the past */
    int error;       /* first failure of a part */
    char errmsg[RESP_ERROR_BYTES];
    struct rkv_buf reply;  /* the reply (or MGET's parts, in key order) */
    struct rkv_buf keep;   /* keys (and SET's value) for the second phase */
    struct rkv_buf offs;   /* uint32 offsets of the keys in keep, then the end */
    struct rkv_buf *parts; /* MGET: one reply per key */
    uint32_t cap_parts;
    uint32_t flush_part; /* FLUSHALL: the partition being listed, and where */
    uint64_t flush_cursor;
    bool barrier;         /* it holds the connection's barrier until done */
    bool writes;          /* its slots count as writes */
    struct rkv_buf slots; /* uint16 key slots it holds until done (see key_slots) */
};

struct conn {
    int fd; /* -1: free */
    uint32_t gen;
    bool closing; /* write what is queued, then close */
    bool barrier; /* a FLUSHALL is in flight: nothing else starts */
    bool ready;   /* on the ready list */
    struct resp_parser parser;
    struct rkv_buf in;
    size_t in_off; /* consumed bytes at the front of in */
    struct rkv_buf out;
    size_t out_off;     /* written bytes at the front of out */
    struct call *calls; /* a ring of cap_calls commands */
    uint32_t cap_calls, head, n_calls;
    uint64_t head_seq;     /* seq of calls[head] */
    uint32_t inflight;     /* parts in flight */
    uint16_t *slot_reads;  /* KEY_SLOTS: commands in flight reading keys of the slot */
    uint16_t *slot_writes; /* ...and writing them */
    char name[64];
};

struct resp_server {
    int listen_fd;
    struct conn *conns;
    uint32_t n_conns, cap_conns, open;
    uint32_t *ready; /* connections to look at after the turn */
    uint32_t n_ready;
    uint32_t queue_max;   /* commands and parts in flight per connection */
    struct rkv_buf slots; /* scratch: the key slots of the command being parsed */
    size_t out_max;       /* replies waiting to be written, per connection */
};

struct cmd_ctx {
    struct node *n;
    uint32_t idx;
    struct conn *c;
    struct call *k;
    uint64_t seq;
    const uint8_t *buf; /* the request's bytes */
    const struct resp_parser *p;
};

/* Keys: none (first 0); argument `first` only (step 0); or every step-th
 * argument from first on. */
struct command {
    const char *name;
    int arity; /* as Redis counts: the exact count, or -minimum */
    void (*run)(struct cmd_ctx *x);
    uint8_t first, step;
    bool writes;
    bool barrier; /* starts alone, once all before it are done; all after it wait */
};

/* resp.c */
void resp_call_done(struct conn *c, struct call *k);
void resp_finish_call(struct conn *c, struct call *k);
int resp_keep_add(struct call *k, const void *p, size_t len);
void resp_submit_get(struct node *n, uint32_t idx, uint64_t seq, uint32_t sub, const uint8_t *key,
                     uint32_t key_len);
void resp_submit_put(struct node *n, uint32_t idx, uint64_t seq, uint32_t sub, const uint8_t *key,
                     uint32_t key_len, const uint8_t *value, uint32_t value_len,
                     const struct wire_bytes *ctx, uint64_t ttl_ms);
void resp_submit_del(struct node *n, uint32_t idx, uint64_t seq, uint32_t sub, const uint8_t *key,
                     uint32_t key_len, const struct wire_bytes *ctx);
void resp_flush_more(struct node *n, uint32_t idx, uint64_t seq, struct call *k);

/* resp_cmd.c */
const struct command *resp_find_command(const struct resp_parser *p, const uint8_t *buf);
/* Fills s->slots with the command's key slots; false if it must wait. */
bool resp_key_slots(struct resp_server *s, struct conn *c, const struct command *cmd,
                    const struct resp_parser *p, const uint8_t *buf);
void resp_hold_slots(struct resp_server *s, struct conn *c, struct call *k,
                     const struct command *cmd);
void resp_run_command(struct cmd_ctx *x, const struct command *cmd);

#endif
