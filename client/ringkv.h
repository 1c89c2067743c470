/*
 * ringkv.h: the C client library of ringkv.
 *
 * ringkv is a leaderless, replicated key-value store: every key lives on N
 * nodes, a read waits for R of them and a write for W, and writes that
 * happen concurrently are all kept, as siblings, until a client resolves
 * them. This library talks to a ring of ringkvd nodes.
 *
 * ## Using it
 *
 *   struct ringkv_options o;
 *   ringkv_options_default(&o);
 *   o.config_path = "cluster.toml";          // or o.seeds = "10.0.0.1:7101"
 *   struct ringkv_client *c;
 *   if (ringkv_connect(&o, &c) != RINGKV_OK) { puts(ringkv_errmsg(c)); ... }
 *   ringkv_put(c, "k", 1, "v", 1, NULL, NULL);
 *   struct ringkv_result r;
 *   if (ringkv_get(c, "k", 1, NULL, &r) == RINGKV_OK)
 *       fwrite(r.siblings[0].value, 1, r.siblings[0].value_len, stdout);
 *   ringkv_result_free(&r);
 *   ringkv_close(c);
 *
 * ## Siblings and contexts
 *
 * A get returns every sibling (value) and an opaque context. To replace
 * what you read, put with that context (ringkv_request_options.context):
 * the new value supersedes exactly the siblings the context covers. A put
 * without a context supersedes nothing: if the key exists, the new value
 * becomes one more sibling. A delete without a context first reads the key
 * to get one (so it removes what exists now); pass a context to delete
 * exactly what you read.
 *
 * ## Routing
 *
 * The client fetches the ring (members, partitions, replicas) from a seed
 * and sends each request straight to a node of the key's preference list,
 * trying the next one if a node does not answer; a reply that carries a
 * different ring epoch makes it fetch the ring again.
 *
 * ## Security
 *
 * A ring with security.mode = "curve" (the default) encrypts every
 * connection with CurveZMQ and admits only clients whose public key is in
 * its allow-list (KEYS_DIR/clients/). The client then needs:
 *  - its own key pair, the first found of: ringkv_options.client_key,
 *    $RINGKV_CLIENT_KEY, KEYS_DIR/client.key_secret,
 *    $HOME/.config/ringkv/client.key_secret (made by `ringkv keygen`; a
 *    secret file others can read is refused);
 *  - the public key of the seed it contacts first: KEYS_DIR/ID.key, where
 *    ID is the seed's node id (seeds are then written ID@HOST:PORT, or come
 *    from the config file, which names them). The other nodes' keys arrive
 *    with the ring, over the already authenticated connection.
 * A client without a key, or whose key is not allowed, cannot connect:
 * ringkv_connect fails with RINGKV_EUNAVAILABLE after connect_timeout_ms.
 *
 * ## Memory
 *
 * Everything the library hands out is either owned by a result or borrowed
 * from the client, and says which:
 *  - A struct ringkv_result owns all it points to (siblings and their
 *    values, context, answered ids, node): nothing in it points into the
 *    client, so it stays valid, unchanged, until ringkv_result_free, even
 *    after later requests, a new ring fetched by the client, or
 *    ringkv_close.
 *  - ringkv_errmsg's string, ringkv_ring's struct ringkv_ring_info (name,
 *    nodes, and their id and host) and ringkv_preflist's ids are owned by
 *    the client and valid until the next call on it (a get, put or delete
 *    may fetch a new ring, which frees them; ringkv_close frees them).
 *  - ringkv_stats' callback gets a name valid during that callback only.
 *  - What the caller passes in is borrowed for the call only: keys, values,
 *    contexts, node ids, and the strings of struct ringkv_options, which
 *    ringkv_connect reads before it returns (except zmq_context, which must
 *    outlive the client).
 *
 * ## Caveats
 *
 * - A struct ringkv_client is not thread-safe: use one per thread.
 * - Which member a request goes to: the first of the key's preference
 *   list that is not marked down. A get that gets no answer in time is
 *   sent to the next member. A put or delete goes to the next member only
 *   when the first certainly did nothing with it (it could not be sent, or
 *   the node refused it with RINGKV_EUNAVAILABLE: shutting down, or not an
 *   owner in its ring); once a member has taken it and not answered, the
 *   call returns RINGKV_ETIMEOUT ("... may have been applied"), because a
 *   second coordinator would mint a second version of the same write and
 *   leave two equal siblings. A caller that retries such a put without a
 *   context accepts that outcome (read first, and put with the context,
 *   to avoid it).
 * - Timeouts are per request (ringkv_request_options.timeout_ms, else
 *   ringkv_options.timeout_ms, else the ring's request timeout plus a
 *   margin).
 *
 * ## Errors
 *
 * Every function returns RINGKV_OK or an error code below (the values are
 * those of the server's status codes); ringkv_strerror names a code and
 * ringkv_errmsg(c) says what went wrong in the last call on c, for example
 * "quorum not reached: 2 of 3 needed writes; answered: n1, n2; no answer by
 * the deadline: n3".
 */
#ifndef RINGKV_H
#define RINGKV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RINGKV_VERSION_MAJOR 0
#define RINGKV_VERSION_MINOR 1
#define RINGKV_VERSION_PATCH 0

/* The library's version as a string ("0.1.0"); fills the numbers if not NULL. */
const char *ringkv_version(int *major, int *minor, int *patch);

enum ringkv_error {
    RINGKV_OK = 0,
    RINGKV_ENOMEM = 1,       /* out of memory */
    RINGKV_EINVAL = 2,       /* a bad argument: r or w out of 1..N, empty seeds, ... */
    RINGKV_EIO = 3,          /* a node reported an I/O error */
    RINGKV_ENOSPC = 4,       /* a node is out of disk space */
    RINGKV_ECORRUPT = 5,     /* a node found damaged data */
    RINGKV_ENOTFOUND = 6,    /* no such key (the result still holds a context) */
    RINGKV_ETOOBIG = 7,      /* key, value, or sibling count over a limit */
    RINGKV_EFAILED = 10,     /* a node's storage has failed */
    RINGKV_ECONFIG = 12,     /* the cluster file is wrong */
    RINGKV_EPROTO = 13,      /* a malformed message (or a bad context) */
    RINGKV_EQUORUM = 14,     /* too few replicas answered; the message names them */
    RINGKV_ETIMEOUT = 15,    /* no node answered before the deadline */
    RINGKV_EBUSY = 16,       /* a node has too many requests in flight; from
                                ringkv_leave: another ring change is under way */
    RINGKV_EUNAVAILABLE = 20, /* no node could be reached */
    RINGKV_EFULL = 22         /* a node's hint store is full (in an EQUORUM message) */
};

/* English name of an error code; never NULL. */
const char *ringkv_strerror(int err);

struct ringkv_client;

struct ringkv_options {
    /* Where to find the ring: a cluster.toml (its nodes' client ports are
     * the seeds), or "host:port[,host:port...]" client addresses. One of
     * the two is required; seeds wins if both are set. Borrowed during
     * ringkv_connect. */
    const char *config_path;
    const char *seeds;             /* "[ID@]HOST:PORT[,...]" client ports */
    uint32_t timeout_ms;          /* default request deadline; 0: the ring's + 500 ms */
    uint32_t connect_timeout_ms;  /* to fetch the ring; default 5000 */
    /* CurveZMQ (see "Security" above). With config_path, its [security]
     * section says whether the ring uses it and where keys_dir is; without
     * one, setting keys_dir turns it on. Borrowed during ringkv_connect. */
    const char *keys_dir;         /* holds the seeds' public certificates ID.key */
    const char *client_key;       /* this client's secret certificate; see the search path */
    /* A ZeroMQ context to use instead of one of the client's own (each
     * costs an I/O thread): clients of one process may share one, each in
     * its own thread. Borrowed: it must outlive the client; NULL: own. */
    void *zmq_context;
};

/* Fills o with the defaults: everything zero or NULL except
 * connect_timeout_ms (5000). */
void ringkv_options_default(struct ringkv_options *o);

/*
 * Connects: fetches the ring from the first seed that answers. On success
 * *out is a client. On failure *out is still a handle whose ringkv_errmsg
 * says why (or NULL if memory ran out); close it with ringkv_close.
 * Errors: RINGKV_EINVAL (no seeds), RINGKV_ECONFIG, RINGKV_EUNAVAILABLE (no
 * seed answered in connect_timeout_ms), RINGKV_ENOMEM.
 */
int ringkv_connect(const struct ringkv_options *o, struct ringkv_client **out);
/* NULL is a no-op. */
void ringkv_close(struct ringkv_client *c);
/* What went wrong in the last call on c; "" after a success. Valid until
 * the next call on c. */
const char *ringkv_errmsg(const struct ringkv_client *c);

/* Per-call options: zero means "the default". */
struct ringkv_request_options {
    uint32_t r;                /* replies a get waits for (1..N) */
    uint32_t w;                /* acknowledgements a put/delete waits for (1..N) */
    uint32_t timeout_ms;
    uint64_t ttl_ms;           /* put: the value expires after this */
    const void *context;       /* put/delete: from an earlier result; borrowed for the call */
    size_t context_len;
    /* Send the request to this node (its id) instead of routing by key. A
     * node outside the key's preference list forwards a write to the first
     * node of the list that it does not suspect to be down. For tests and debugging. Borrowed for the call. */
    const char *coordinator;
    /* put/delete: count only the key's own replicas (its preference list)
     * toward w, not fallbacks that hold the write as a hint for an owner
     * that is down (Riak's PW). The write still goes to fallbacks; it fails
     * with RINGKV_EQUORUM if fewer than w owners took it. Gets always count
     * owners only. */
    bool primary_only;
};

/* Every pointer in a result is owned by the result: valid until
 * ringkv_result_free, whatever happens to the client meanwhile. */
struct ringkv_sibling {
    const void *value;         /* owned by the result */
    size_t value_len;
    uint64_t ts_ms;            /* when the coordinator wrote it (ms since the epoch) */
    uint64_t expiry_ms;        /* 0: never */
};

struct ringkv_result {
    int status;                      /* as returned */
    struct ringkv_sibling *siblings; /* get: live siblings, n_siblings of them */
    size_t n_siblings;
    const void *context;             /* get (also on NOTFOUND), put, delete; NULL if none */
    size_t context_len;
    const char *const *answered;     /* node ids whose replies counted */
    size_t n_answered;
    /* put/delete: the answered nodes that are not owners of the key but
     * held the write as a hint for fallback_for[i], an owner that was down
     * or slow (sloppy quorum; they hand it over later). n_fallbacks is 0
     * when every answer came from an owner. */
    const char *const *fallbacks;
    const char *const *fallback_for;
    size_t n_fallbacks;
    bool repaired;                   /* get: read repair was sent */
    const char *node;                /* the node that answered (a copy); NULL if none did */
    void *priv_;                     /* the memory all of the above points into */
};

/*
 * Reads key. Overwrites *res without freeing what it held (free an earlier
 * result first), and always fills it: free it with ringkv_result_free,
 * whatever the return. The result owns its memory (see "Memory").
 * RINGKV_OK: one or more siblings. RINGKV_ENOTFOUND: none (res->context
 * may still be set: a put with it supersedes a delete). Other errors as
 * listed above.
 */
int ringkv_get(struct ringkv_client *c, const void *key, size_t key_len,
               const struct ringkv_request_options *opt, struct ringkv_result *res);
/* Writes value. res may be NULL; else it receives the new context. */
int ringkv_put(struct ringkv_client *c, const void *key, size_t key_len, const void *value,
               size_t value_len, const struct ringkv_request_options *opt,
               struct ringkv_result *res);
/* Deletes key (see "Siblings and contexts"). res may be NULL. */
int ringkv_del(struct ringkv_client *c, const void *key, size_t key_len,
               const struct ringkv_request_options *opt, struct ringkv_result *res);
/* Frees what a result owns and zeroes it; safe on a zeroed result. The
 * client that made it may be closed already. */
void ringkv_result_free(struct ringkv_result *res);

/* ---- pipelining ----
 *
 * Many requests in flight on one client, for throughput: start them with
 * the _async calls, which return at once, and take their completions with
 * ringkv_process (from your own event loop) or ringkv_wait (blocking).
 *
 *   static void got(void *arg, struct ringkv_result *res)
 *   {
 *       if (res->status == RINGKV_OK) ...use res->siblings...
 *       ringkv_result_free(res);
 *   }
 *   for (int i = 0; i < 100; i++)
 *       ringkv_get_async(c, keys[i], lens[i], NULL, got, NULL);
 *   while (ringkv_pending(c) > 0)
 *       ringkv_wait(c, -1);
 *
 * From an external event loop (poll, epoll, libuv, ...): watch
 * ringkv_fd(c) for readability, wake up after ringkv_next_timeout_ms(c),
 * and call ringkv_process(c) on either. The descriptor is edge-like: after
 * it is readable, call ringkv_process until it returns 0 before waiting on
 * it again (ringkv_process takes at most RINGKV_PIPELINE_MAX replies per
 * socket per call).
 *
 * Rules:
 *  - One thread at a time, as for every call on a client. Callbacks run on
 *    that thread, inside ringkv_process or ringkv_wait, one at a time.
 *  - A callback owns the result it is given (free it with
 *    ringkv_result_free, now or later); res->status is the request's
 *    outcome (RINGKV_ETIMEOUT if no reply came by its deadline; it may
 *    still have been applied). arg is yours, passed back untouched.
 *  - A callback may start new _async requests. It must not call the
 *    blocking functions, ringkv_process, ringkv_wait or ringkv_close.
 *  - While requests are in flight, blocking calls (get, put, del) fail with
 *    RINGKV_EINVAL: they would read the pipelined replies. A new ring is
 *    fetched only when nothing is in flight.
 *  - At most RINGKV_PIPELINE_MAX requests in flight (RINGKV_EBUSY beyond),
 *    and a node serves at most limits.inflight_per_client of them per
 *    connection (the rest complete with RINGKV_EBUSY).
 *  - A pipelined request goes to the first reachable node of the key's
 *    preference list and is not retried elsewhere. A delete needs a
 *    context (opt->context): read first.
 *  - Keys, values and options are borrowed for the call only.
 *  - ringkv_close with requests in flight drops them without callbacks.
 *
 * The _async calls return RINGKV_OK when the request is sent; otherwise
 * the error (the callback is then never called).
 */
#define RINGKV_PIPELINE_MAX 4096

typedef void ringkv_done_fn(void *arg, struct ringkv_result *res);

int ringkv_get_async(struct ringkv_client *c, const void *key, size_t key_len,
                     const struct ringkv_request_options *opt, ringkv_done_fn *done, void *arg);
int ringkv_put_async(struct ringkv_client *c, const void *key, size_t key_len, const void *value,
                     size_t value_len, const struct ringkv_request_options *opt,
                     ringkv_done_fn *done, void *arg);
int ringkv_del_async(struct ringkv_client *c, const void *key, size_t key_len,
                     const struct ringkv_request_options *opt, ringkv_done_fn *done, void *arg);
/* Runs the callbacks of the replies that arrived and of the requests whose
 * deadline passed; returns how many. Never blocks. */
int ringkv_process(struct ringkv_client *c);
/* Processes, waiting up to timeout_ms (-1: no limit) for at least one
 * completion; returns how many (0 on timeout or with nothing in flight,
 * -1 on error, see ringkv_errmsg). */
int ringkv_wait(struct ringkv_client *c, int timeout_ms);
/* Requests in flight. */
int ringkv_pending(const struct ringkv_client *c);
/* A descriptor that becomes readable when replies may be waiting (owned by
 * the client; do not read or close it), or -1 on error. */
int ringkv_fd(struct ringkv_client *c);
/* Milliseconds until the earliest deadline of a request in flight (0: one
 * has passed), or -1 with nothing in flight. */
int ringkv_next_timeout_ms(const struct ringkv_client *c);

/* ---- the ring and its nodes ---- */

/* Owned by the client, valid until the next call on it (see "Memory"). */
struct ringkv_node_info {
    const char *id;
    const char *host;
    uint16_t client_port;
    uint16_t cluster_port;
    uint32_t vnodes;                      /* 0 outside the ring */
    uint32_t partitions_owned;            /* 0 outside the ring */
    const char *status;                   /* "up" (in the ring), "joining", "leaving" */
};

struct ringkv_ring_info {
    const char *name;                     /* owned by c; valid until the next call */
    uint32_t partitions, replicas, read_quorum, write_quorum;
    uint64_t epoch;
    size_t n_nodes;
    const struct ringkv_node_info *nodes; /* the ring's members; owned by c, valid until
                                             the next call */
    size_t n_others;
    const struct ringkv_node_info *others; /* live members outside the ring, as the node
                                              that gave the ring saw them: joining
                                              (waiting for their turn) or leaving (handing
                                              their data over); they take requests by id
                                              (ping, stats). Owned by c, as nodes. */
};

/* The ring the client routes by. */
int ringkv_ring(struct ringkv_client *c, struct ringkv_ring_info *info);
/* The preference list of partition p as node ids (owner first): writes up
 * to max pointers (owned by c, valid until the next call on c) and returns
 * how many. */
size_t ringkv_preflist(struct ringkv_client *c, uint32_t partition, const char **ids, size_t max);
/* The partition of a key. */
uint32_t ringkv_partition(struct ringkv_client *c, const void *key, size_t key_len);

/* Requests to one node by id (ping, stats, leave): an id the client's ring
 * does not hold makes it fetch the ring again first (at most once a
 * second, and only with no pipelined request in flight), so a member that
 * joined since is found; otherwise RINGKV_ENOTFOUND. */

/* Pings node `id` (NULL: any); *rtt_us receives the round trip. */
int ringkv_ping(struct ringkv_client *c, const char *id, uint64_t *rtt_us);

/* Calls fn(ctx, name, value) for each statistic of node `id`; name is
 * valid during that call of fn only. */
typedef void ringkv_stat_fn(void *ctx, const char *name, uint64_t value);
int ringkv_stats(struct ringkv_client *c, const char *id, ringkv_stat_fn *fn, void *ctx);

/*
 * Membership changes (README "Growing and shrinking the ring",
 * docs/architecture.md "Membership changes"). ringkv_leave asks member id to
 * hand every partition it holds over to the others and then stop;
 * ringkv_remove asks any node to declare member id, which must be down,
 * gone for good, so that its partitions are rebuilt from the other
 * replicas. Both return once the node has taken the change (it spreads by
 * gossip); msg (if not NULL) gets what the node said.
 *
 * One change at a time: a leave is refused with RINGKV_EBUSY while the
 * member knows of another change under way (a member joining or leaving,
 * or handing partitions over after the last change; the message says
 * which), because two changes at once can give a preference list two
 * owners still waiting for their data, and a read at R = 2 answered by
 * those two would miss values. Ask again later: the member also counts a
 * member that waits to join, and hears that a handoff is over a few gossip
 * rounds after `ringkv ring` stops showing it. Flags RINGKV_LEAVE_FORCE
 * leaves anyway. A remove is never held back (it is for a member that is
 * gone already).
 */
#define RINGKV_LEAVE_FORCE 1u
int ringkv_leave(struct ringkv_client *c, const char *id, unsigned flags, char *msg,
                 size_t size);
int ringkv_remove(struct ringkv_client *c, const char *id, char *msg, size_t size);

#ifdef __cplusplus
}
#endif

#endif
