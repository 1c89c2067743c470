/*
 * config.h: cluster.toml, read and validated.
 *
 * The file is TOML, restricted to the subset common/toml.h parses (tables,
 * arrays of tables, basic strings, integers, booleans, arrays, comments).
 * Every error names the file, line, column and key, e.g.
 *   cluster.toml:12:16: cluster.write_quorum: 4 is greater than cluster.replicas (3)
 * Unknown tables and keys are errors, not ignored. Every key and its default
 * is documented in docs/configuration.md.
 *
 *   [cluster]   name, partitions (Q), replicas (N), read_quorum (R),
 *               write_quorum (W), vnodes (V), conflict, request_timeout_ms,
 *               expiry_grace_ms, fallback_after_ms, handoff_bytes_per_sec
 *   [storage]   sync, sync_interval_ms, file_bytes_max, merge_dead_percent,
 *               merge_dead_bytes_min, merge_files_max
 *   [limits]    key_bytes_max, value_bytes_max, object_bytes_max,
 *               message_bytes_max, siblings_max, clock_entries_max, inflight_per_client,
 *               queue_depth_max
 *   [log]       level
 *   [security]  mode ("curve": CurveZMQ on both ports, the default; "none":
 *               plain, with a warning at every start), keys_dir (folder of
 *               the key pairs: <node-id>.key and .key_secret, clients/ with
 *               the allowed clients' public certificates; relative to the
 *               file's folder)
 *   [resp]      connections_max, flushall, allow_remote (the Redis-protocol
 *               endpoint, docs/resp.md)
 *   [hints]     bytes_max, replay_bytes_per_sec (hinted handoff)
 *   [[node]]    id, host, client_port, cluster_port, resp_port (optional),
 *               data_dir (one table per initial member; data_dir relative
 *               to the file's folder)
 *
 * Meaning is validated too: R, W <= N <= number of nodes; Q a power of two;
 * unique node ids and unique host:port pairs; every limit within the hard
 * ceilings of common/limits.h.
 */
#ifndef RKV_CONFIG_H
#define RKV_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/limits.h"
#include "common/object.h"

#define CONFIG_PATH_BYTES 4096
#define CONFIG_HOST_BYTES 256

/* Ceilings of keys that limits.h has no ceiling for. */
#define CONFIG_INTERVAL_MS_MAX 3600000u /* request_timeout_ms, sync_interval_ms */
#define CONFIG_GRACE_MS_MAX 2592000000ull /* cluster.expiry_grace_ms: 30 days */
#define CONFIG_MERGE_FILES_MAX 65536u   /* storage.merge_files_max */
#define CONFIG_QUEUE_DEPTH_MAX 1048576u /* limits.queue_depth_max, inflight_per_client */
#define CONFIG_RESP_CONNECTIONS_MAX 65536u /* resp.connections_max */
#define CONFIG_HINTS_BYTES_MIN (1ull << 20)    /* hints.bytes_max */
#define CONFIG_HINTS_BYTES_MAX (1ull << 40)
#define CONFIG_HINTS_REPLAY_MIN 1024u          /* hints.replay_bytes_per_sec */
/* What a message holds besides one key and one object, and an object
 * besides one value (frame header, ids, options, a version vector of up to
 * RKV_CLOCK_ENTRIES_MAX entries): the config requires
 * object_bytes_max >= value_bytes_max + this and
 * message_bytes_max >= 2 * object_bytes_max + key_bytes_max + this. */
#define CONFIG_MESSAGE_OVERHEAD_BYTES (64u * 1024)

enum config_security {
    SECURITY_CURVE = 0, /* CurveZMQ with allow-lists on both ports */
    SECURITY_NONE = 1,  /* plain TCP: anyone who can connect is served */
};

/* Parses "curve" / "none"; -1 if unknown. */
int config_security_parse(const char *name);

struct config_node {
    char id[RKV_NODE_ID_BYTES_MAX + 1];
    char host[CONFIG_HOST_BYTES];  /* an IP literal or a host name */
    uint16_t client_port;
    uint16_t cluster_port;
    uint16_t resp_port;               /* 0: no Redis-protocol endpoint */
    char data_dir[CONFIG_PATH_BYTES]; /* resolved against the file's folder */
    uint32_t line;                    /* of its [[node]] header */
};

struct config {
    char path[CONFIG_PATH_BYTES]; /* the file, as given */
    /* [cluster] */
    char name[64];
    uint32_t partitions;
    uint32_t replicas;
    uint32_t read_quorum;
    uint32_t write_quorum;
    uint32_t vnodes;
    enum conflict_mode conflict;
    uint32_t request_timeout_ms;
    uint64_t expiry_grace_ms;
    uint32_t fallback_after_ms; /* a silent owner's write goes to a fallback after this */
    /* [storage]: values of enum store_sync, see storage/storage.h */
    int sync;
    uint32_t sync_interval_ms;
    uint64_t file_bytes_max;
    uint32_t merge_dead_percent;
    uint64_t merge_dead_bytes_min;
    uint32_t merge_files_max;
    /* [limits] */
    uint32_t key_bytes_max;
    uint32_t value_bytes_max;
    uint32_t object_bytes_max;
    uint32_t message_bytes_max;
    uint32_t siblings_max;
    uint32_t clock_entries_max;
    uint32_t inflight_per_client;
    uint32_t queue_depth_max;
    /* [log] */
    int log_level; /* enum rkv_log_level */
    /* [security] */
    int security;  /* enum config_security */
    char keys_dir[CONFIG_PATH_BYTES]; /* resolved against the file's folder */
    /* [resp] */
    uint32_t resp_connections_max;
    bool resp_flushall;     /* FLUSHALL is refused unless true */
    bool resp_allow_remote; /* with security on, resp_port on a non-loopback host */
    /* [hints] */
    uint64_t hints_bytes_max;            /* the hint store's live bytes */
    uint32_t hints_replay_bytes_per_sec; /* handing hints over, per target */
    uint32_t handoff_bytes_per_sec;      /* ownership handoff after a ring change */
    /* [[node]] */
    struct config_node *nodes;
    size_t n_nodes;
};

/*
 * Reads and validates the file at path. On success *out is a config the
 * caller owns (config_free); on failure *out is NULL and err says where and
 * what: RKV_ERR_IO (cannot open or read; the message has strerror),
 * RKV_ERR_CONFIG (anything wrong with the contents, or a file larger than
 * TOML_TEXT_BYTES_MAX), RKV_ERR_NOMEM.
 */
int config_load(const char *path, struct config **out, struct rkv_error *err);
/* The same for len bytes of text already in memory (borrowed for the call);
 * name (not NULL) is used in messages and as the base for relative
 * data_dir: a data_dir that does not start with '/' is put after the
 * folder of name (the part before its last '/'), or kept as written if
 * name has no '/'. RKV_ERR_INVAL if name is CONFIG_PATH_BYTES or longer. */
int config_parse(const char *text, size_t len, const char *name, struct config **out,
                 struct rkv_error *err);
/* NULL is a no-op. */
void config_free(struct config *c);

/* Fills *c with every default (no nodes, empty path): the values a file
 * that sets nothing gets. */
void config_defaults(struct config *c);

/* The node with this id, or NULL; the pointer belongs to c. A config is
 * immutable once returned, so threads may read it concurrently. */
const struct config_node *config_node_find(const struct config *c, const char *id);

/* The object limits the config sets (siblings_max, clock_entries_max,
 * value_bytes_max, object_bytes_max, conflict). */
void config_object_limits(const struct config *c, struct object_limits *lim);

#endif
