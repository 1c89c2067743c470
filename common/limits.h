/*
 * limits.h: every hard size limit of ringkv, in one place.
 *
 * These are the ceilings the code is built for; cluster.toml may set lower
 * limits, never higher ones. Anything over a limit is an RKV_ERR_TOOBIG
 * error before any byte is written or any memory is taken for it.
 */
#ifndef RKV_LIMITS_H
#define RKV_LIMITS_H

/* Storage engine. */
#define RKV_KEY_BYTES_MAX 65535u                 /* record key_len is a u16 */
#define RKV_VALUE_BYTES_MAX (64u * 1024 * 1024)  /* one stored value (a sibling set) */
#define RKV_PARTITIONS_MAX 65536u                /* record partition is a u16 */
#define RKV_FILE_BYTES_MAX 0xFFFFFFFFu           /* keydir offsets are u32 */
#define RKV_FILE_BYTES_MIN 4096u
#define RKV_BATCH_OPS_MAX 1048576u               /* ops between two commits */
#define RKV_WRITE_BUFFER_BYTES_MAX (64u * 1024 * 1024)

/* Objects and versions. */
#define RKV_SIBLINGS_MAX 256u        /* siblings one object may hold after a merge */
#define RKV_CLOCK_ENTRIES_MAX 256u   /* entries in one version vector */
/* A stored object (its whole sibling set) takes at most this: half a stored
 * value, since replicas accept merges up to twice object_bytes_max. */
#define RKV_OBJECT_BYTES_MAX (RKV_VALUE_BYTES_MAX / 2)
/* Counters and timestamps in versions stay below 2^62: no ring makes that
 * many writes, so a higher one is forged and refused where it is decoded
 * (it could otherwise wedge a key at UINT64_MAX). */
#define RKV_COUNTER_MAX (1ull << 62)

/* Cluster. */
#define RKV_NODE_ID_BYTES_MAX 64u    /* [A-Za-z0-9_.-]+ */
#define RKV_NODES_MAX 1024u          /* members of one ring */
#define RKV_VNODES_MAX 4096u         /* tokens per member */
#define RKV_REPLICAS_MAX 16u         /* N */

/* Requests. */
#define RKV_TIMEOUT_MS_MAX 3600000u            /* a request's own deadline: 1 hour */
#define RKV_TTL_MS_MAX 315360000000ull         /* a value's time to live: 10 years */
/* A context entry may be this far ahead of the coordinator's clock (clock
 * skew between nodes); further is forged, and in lww mode would pin a value
 * as the newest. */
#define RKV_CONTEXT_AHEAD_MS_MAX 3600000u

/* Wire. */
#define RKV_MESSAGE_BYTES_MAX (RKV_VALUE_BYTES_MAX + 1024u * 1024) /* one frame */
/* Frames a ZeroMQ socket queues per connection and direction: this many
 * bytes of frames at message_bytes_max, within MIN..MAX frames. */
#define RKV_SOCKET_QUEUE_BYTES (256ull * 1024 * 1024)
#define RKV_SOCKET_QUEUE_MIN 16u
#define RKV_SOCKET_QUEUE_MAX 100000u

#endif
