/*
 * config.c: cluster.toml, read and validated (the contract is config.h,
 * every key and default is in docs/configuration.md).
 *
 * Three steps. toml_parse turns the text into a tree (syntax errors stop
 * there). The schema step walks the tree: every known key is taken with
 * toml_table_get, checked for its type and range and stored over the
 * defaults; whatever nobody took is an unknown key or table. The last step
 * checks relations between values (R, W <= N <= nodes, Q a power of two,
 * message size against value and key sizes, unique node ids, addresses and
 * data directories). Every message is "FILE:LINE:COL: what: why", pointing
 * at the value in question, or at the table header (or 1:1) when the
 * value is a default.
 *
 * Integer keys are described by one table (section, name, field, range) so
 * the range of a key is written once; string keys that name an enum go
 * through their module's parser (conflict_mode_parse, store_sync_parse,
 * rkv_log_level_parse).
 */
#include "common/config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/log.h"
#include "common/toml.h"
#include "storage/storage.h"

enum cfg_section {
    SECT_CLUSTER = 0,
    SECT_STORAGE = 1,
    SECT_LIMITS = 2,
    SECT_LOG = 3,
    SECT_SECURITY = 4,
    SECT_RESP = 5,
    SECT_HINTS = 6,
    SECT_COUNT = 7,
};

static const char *const section_names[SECT_COUNT] = {
    [SECT_CLUSTER] = "cluster",
    [SECT_STORAGE] = "storage",
    [SECT_LIMITS] = "limits",
    [SECT_LOG] = "log",
    [SECT_SECURITY] = "security",
    [SECT_RESP] = "resp",
    [SECT_HINTS] = "hints",
};

/* The state of one config_parse call. */
struct cfg {
    const char *file;
    struct rkv_error *err;
    struct config *c;
    struct toml_table *root;
    struct toml_table *sect[SECT_COUNT]; /* NULL: the table is absent */
};

struct int_key {
    enum cfg_section sect;
    const char *name; /* also the name of the field */
    size_t off, size; /* an unsigned field of struct config */
    int64_t min, max;
};

#define INT_KEY_AS(s, key, field, lo, hi)                                                          \
    {                                                                                              \
        .sect = (s), .name = (key), .off = offsetof(struct config, field),                         \
        .size = sizeof(((struct config *)0)->field), .min = (lo), .max = (hi)                      \
    }
#define INT_KEY(s, field, lo, hi) INT_KEY_AS(s, #field, field, lo, hi)

static const struct int_key int_keys[] = {
    INT_KEY(SECT_CLUSTER, partitions, 1, RKV_PARTITIONS_MAX),
    INT_KEY(SECT_CLUSTER, replicas, 1, RKV_REPLICAS_MAX),
    INT_KEY(SECT_CLUSTER, read_quorum, 1, RKV_REPLICAS_MAX),
    INT_KEY(SECT_CLUSTER, write_quorum, 1, RKV_REPLICAS_MAX),
    INT_KEY(SECT_CLUSTER, vnodes, 1, RKV_VNODES_MAX),
    INT_KEY(SECT_CLUSTER, request_timeout_ms, 1, CONFIG_INTERVAL_MS_MAX),
    INT_KEY(SECT_CLUSTER, expiry_grace_ms, 0, CONFIG_GRACE_MS_MAX),
    INT_KEY(SECT_CLUSTER, fallback_after_ms, 0, CONFIG_INTERVAL_MS_MAX),
    INT_KEY(SECT_CLUSTER, handoff_bytes_per_sec, CONFIG_HINTS_REPLAY_MIN, UINT32_MAX),
    INT_KEY(SECT_STORAGE, sync_interval_ms, 1, CONFIG_INTERVAL_MS_MAX),
    INT_KEY(SECT_STORAGE, file_bytes_max, RKV_FILE_BYTES_MIN, RKV_FILE_BYTES_MAX),
    INT_KEY(SECT_STORAGE, merge_dead_percent, 0, 100),
    INT_KEY(SECT_STORAGE, merge_dead_bytes_min, 0, INT64_MAX),
    INT_KEY(SECT_STORAGE, merge_files_max, 2, CONFIG_MERGE_FILES_MAX),
    INT_KEY(SECT_LIMITS, key_bytes_max, 1, RKV_KEY_BYTES_MAX),
    INT_KEY(SECT_LIMITS, value_bytes_max, 1, RKV_VALUE_BYTES_MAX),
    INT_KEY(SECT_LIMITS, object_bytes_max, 1, RKV_OBJECT_BYTES_MAX),
    INT_KEY(SECT_LIMITS, message_bytes_max, 1, RKV_MESSAGE_BYTES_MAX),
    INT_KEY(SECT_LIMITS, siblings_max, 1, RKV_SIBLINGS_MAX),
    INT_KEY(SECT_LIMITS, clock_entries_max, 1, RKV_CLOCK_ENTRIES_MAX),
    INT_KEY(SECT_LIMITS, inflight_per_client, 1, CONFIG_QUEUE_DEPTH_MAX),
    INT_KEY(SECT_LIMITS, queue_depth_max, 1, CONFIG_QUEUE_DEPTH_MAX),
    INT_KEY_AS(SECT_RESP, "connections_max", resp_connections_max, 1, CONFIG_RESP_CONNECTIONS_MAX),
    INT_KEY_AS(SECT_HINTS, "bytes_max", hints_bytes_max, CONFIG_HINTS_BYTES_MIN,
               CONFIG_HINTS_BYTES_MAX),
    INT_KEY_AS(SECT_HINTS, "replay_bytes_per_sec", hints_replay_bytes_per_sec,
               CONFIG_HINTS_REPLAY_MIN, UINT32_MAX),
};

void config_defaults(struct config *c)
{
    *c = (struct config){
        .path = "",
        .name = "ringkv",
        .partitions = 256,
        .replicas = 3,
        .read_quorum = 2,
        .write_quorum = 2,
        .vnodes = 64,
        .conflict = CONFLICT_SIBLINGS,
        .request_timeout_ms = 1000,
        .expiry_grace_ms = 86400000,
        .fallback_after_ms = 500,
        .sync = STORE_SYNC_ALWAYS,
        .sync_interval_ms = 1000,
        .file_bytes_max = 128ull * 1024 * 1024,
        .merge_dead_percent = 40,
        .merge_dead_bytes_min = 64ull * 1024 * 1024,
        .merge_files_max = 16,
        .key_bytes_max = 1024,
        .value_bytes_max = 1024u * 1024,
        .object_bytes_max = 2u * 1024 * 1024,
        .message_bytes_max = 5u * 1024 * 1024,
        .siblings_max = 64,
        .clock_entries_max = 64,
        .inflight_per_client = 1024,
        .queue_depth_max = 65536,
        .log_level = RKV_LOG_INFO,
        .security = SECURITY_CURVE,
        .keys_dir = "keys",
        .resp_connections_max = 1024,
        .resp_flushall = false,
        .resp_allow_remote = false,
        .hints_bytes_max = 256ull * 1024 * 1024,
        .hints_replay_bytes_per_sec = 16u * 1024 * 1024,
        .handoff_bytes_per_sec = 16u * 1024 * 1024,
        .nodes = NULL,
        .n_nodes = 0,
    };
}

/* ---- messages ---- */

static int fail_at(struct cfg *x, uint32_t line, uint32_t col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail_at(struct cfg *x, uint32_t line, uint32_t col, const char *fmt, ...)
{
    char msg[RKV_ERROR_MSG_BYTES];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return toml_error_at(x->err, RKV_ERR_CONFIG, x->file, line, col, "%s", msg);
}

/* Where a key of a section is, for relations between values: the value if
 * it is set, else the table header, else the top of the file. */
static void key_pos(const struct cfg *x, enum cfg_section s, const char *key, uint32_t *line,
                    uint32_t *col, bool *is_default)
{
    const struct toml_table *t = x->sect[s];
    const struct toml_value *v = t ? toml_table_find(t, key) : NULL;
    *line = v ? v->line : t ? t->line : 1;
    *col = v ? v->col : t ? t->col : 1;
    *is_default = v == NULL;
}

/* ---- typed values ---- */

static int want_int(struct cfg *x, const struct toml_value *v, const char *label, int64_t min,
                    int64_t max, int64_t *out)
{
    if (v->type != TOML_INT)
        return fail_at(x, v->line, v->col, "%s: expected an integer, got %s", label,
                       toml_type_name(v->type));
    if (v->u.i < min || v->u.i > max)
        return fail_at(x, v->line, v->col, "%s: %lld is out of range (%lld..%lld)", label,
                       (long long)v->u.i, (long long)min, (long long)max);
    *out = v->u.i;
    return RKV_OK;
}

/* A string of 1..max_len bytes; *out is borrowed from the tree. */
static int want_str(struct cfg *x, const struct toml_value *v, const char *label, size_t max_len,
                    const char **out)
{
    if (v->type != TOML_STRING)
        return fail_at(x, v->line, v->col, "%s: expected a string, got %s", label,
                       toml_type_name(v->type));
    if (v->u.str.len == 0)
        return fail_at(x, v->line, v->col, "%s: must not be empty", label);
    if (v->u.str.len > max_len)
        return fail_at(x, v->line, v->col, "%s: longer than %zu bytes", label, max_len);
    *out = v->u.str.s;
    return RKV_OK;
}

static bool is_name_char(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch == '.' || ch == '-';
}

/* A name of [A-Za-z0-9_.-] (node ids, the cluster name). */
static int want_name(struct cfg *x, const struct toml_value *v, const char *label, size_t max_len,
                     const char **out)
{
    int rc = want_str(x, v, label, max_len, out);
    if (rc != RKV_OK)
        return rc;
    char buf[TOML_SHOW_BYTES];
    for (const char *p = *out; *p != '\0'; p++)
        if (!is_name_char(*p))
            return fail_at(x, v->line, v->col, "%s: \"%s\" has a character outside [A-Za-z0-9_.-]",
                           label, toml_show(*out, buf));
    return RKV_OK;
}

/* A string naming one of a set, mapped by parse (-1: not in the set). */
static int want_enum(struct cfg *x, const struct toml_value *v, const char *label,
                     int (*parse)(const char *), const char *choices, int *out)
{
    const char *s;
    int rc = want_str(x, v, label, 64, &s);
    if (rc != RKV_OK)
        return rc;
    int m = parse(s);
    char buf[TOML_SHOW_BYTES];
    if (m < 0)
        return fail_at(x, v->line, v->col, "%s: \"%s\" is not one of %s", label, toml_show(s, buf),
                       choices);
    *out = m;
    return RKV_OK;
}

static int want_bool(struct cfg *x, const struct toml_value *v, const char *label, bool *out)
{
    if (v->type != TOML_BOOL)
        return fail_at(x, v->line, v->col, "%s: expected true or false, got %s", label,
                       toml_type_name(v->type));
    *out = v->u.b;
    return RKV_OK;
}

/* ---- the schema ---- */

static void store_uint(struct config *c, const struct int_key *k, int64_t v)
{
    char *field = (char *)c + k->off;
    if (k->size == sizeof(uint64_t)) {
        uint64_t u = (uint64_t)v;
        memcpy(field, &u, sizeof u);
    } else {
        uint32_t u = (uint32_t)v;
        memcpy(field, &u, sizeof u);
    }
}

static int read_ints(struct cfg *x)
{
    for (size_t i = 0; i < sizeof int_keys / sizeof int_keys[0]; i++) {
        const struct int_key *k = &int_keys[i];
        struct toml_table *t = x->sect[k->sect];
        const struct toml_value *v = t ? toml_table_get(t, k->name) : NULL;
        if (v == NULL)
            continue;
        char label[64];
        snprintf(label, sizeof label, "%s.%s", section_names[k->sect], k->name);
        int64_t n;
        int rc = want_int(x, v, label, k->min, k->max, &n);
        if (rc != RKV_OK)
            return rc;
        store_uint(x->c, k, n);
    }
    return RKV_OK;
}

static int read_strings(struct cfg *x)
{
    struct config *c = x->c;
    struct toml_table *t = x->sect[SECT_CLUSTER];
    const struct toml_value *v = t ? toml_table_get(t, "name") : NULL;
    const char *s;
    int rc = RKV_OK;
    if (v != NULL && (rc = want_name(x, v, "cluster.name", sizeof c->name - 1, &s)) == RKV_OK)
        strcpy(c->name, s);
    int m = (int)c->conflict;
    if (rc == RKV_OK && t != NULL && (v = toml_table_get(t, "conflict")) != NULL)
        rc = want_enum(x, v, "cluster.conflict", conflict_mode_parse, "\"siblings\", \"lww\"", &m);
    c->conflict = m == CONFLICT_LWW ? CONFLICT_LWW : CONFLICT_SIBLINGS;
    t = x->sect[SECT_STORAGE];
    if (rc == RKV_OK && t != NULL && (v = toml_table_get(t, "sync")) != NULL)
        rc = want_enum(x, v, "storage.sync", store_sync_parse, "\"always\", \"interval\", \"none\"",
                       &c->sync);
    t = x->sect[SECT_LOG];
    if (rc == RKV_OK && t != NULL && (v = toml_table_get(t, "level")) != NULL)
        rc = want_enum(x, v, "log.level", rkv_log_level_parse,
                       "\"debug\", \"info\", \"warn\", \"error\", \"off\"", &c->log_level);
    return rc;
}

int config_security_parse(const char *name)
{
    return strcmp(name, "curve") == 0 ? SECURITY_CURVE
           : strcmp(name, "none") == 0 ? SECURITY_NONE
                                       : -1;
}

static bool resolve_dir(const char *file, const char *dir, char out[CONFIG_PATH_BYTES]);

static int read_security(struct cfg *x)
{
    struct config *c = x->c;
    struct toml_table *t = x->sect[SECT_SECURITY];
    const struct toml_value *v;
    int rc = RKV_OK;
    if (t != NULL && (v = toml_table_get(t, "mode")) != NULL)
        rc = want_enum(x, v, "security.mode", config_security_parse, "\"curve\", \"none\"",
                       &c->security);
    const char *dir = "keys";
    uint32_t line = 1, col = 1;
    if (rc == RKV_OK && t != NULL && (v = toml_table_get(t, "keys_dir")) != NULL) {
        rc = want_str(x, v, "security.keys_dir", CONFIG_PATH_BYTES - 1, &dir);
        line = v->line;
        col = v->col;
    }
    if (rc == RKV_OK && !resolve_dir(x->file, dir, c->keys_dir))
        rc = fail_at(x, line, col, "security.keys_dir: longer than %d bytes once resolved",
                     CONFIG_PATH_BYTES - 1);
    return rc;
}

static int read_resp(struct cfg *x)
{
    struct toml_table *t = x->sect[SECT_RESP];
    const struct toml_value *v;
    int rc = RKV_OK;
    if (t != NULL && (v = toml_table_get(t, "flushall")) != NULL)
        rc = want_bool(x, v, "resp.flushall", &x->c->resp_flushall);
    if (rc == RKV_OK && t != NULL && (v = toml_table_get(t, "allow_remote")) != NULL)
        rc = want_bool(x, v, "resp.allow_remote", &x->c->resp_allow_remote);
    return rc;
}

static int check_unknown_keys(struct cfg *x, struct toml_table *t, const char *where)
{
    const struct toml_kv *kv = toml_table_unused(t);
    char buf[TOML_SHOW_BYTES];
    if (kv == NULL)
        return RKV_OK;
    return fail_at(x, kv->line, kv->col, "unknown key \"%s\" in %s", toml_show(kv->key, buf),
                   where);
}

/* The top level: the four tables and the [[node]] array, nothing else. */
static int read_root(struct cfg *x)
{
    for (int s = 0; s < SECT_COUNT; s++) {
        const struct toml_value *v = toml_table_get(x->root, section_names[s]);
        if (v != NULL && v->type != TOML_TABLE)
            return fail_at(x, v->line, v->col, "%s must be a table, written [%s]", section_names[s],
                           section_names[s]);
        x->sect[s] = v ? v->u.tab : NULL;
    }
    const struct toml_value *v = toml_table_get(x->root, "node");
    if (v != NULL && !(v->type == TOML_ARRAY && v->u.arr->of_tables))
        return fail_at(x, v->line, v->col,
                       "node must be an array of tables, one [[node]] per member");
    const struct toml_kv *kv = toml_table_unused(x->root);
    char buf[TOML_SHOW_BYTES];
    if (kv == NULL)
        return RKV_OK;
    if (kv->val.type == TOML_TABLE)
        return fail_at(x, kv->line, kv->col, "unknown table [%s]", toml_show(kv->key, buf));
    if (kv->val.type == TOML_ARRAY && kv->val.u.arr->of_tables)
        return fail_at(x, kv->line, kv->col, "unknown table [[%s]]", toml_show(kv->key, buf));
    return fail_at(x, kv->line, kv->col,
                   "unknown key \"%s\" at the top level (settings belong in a table such as "
                   "[cluster])",
                   toml_show(kv->key, buf));
}

static int read_sections(struct cfg *x)
{
    int rc = read_ints(x);
    if (rc == RKV_OK)
        rc = read_strings(x);
    if (rc == RKV_OK)
        rc = read_security(x);
    if (rc == RKV_OK)
        rc = read_resp(x);
    for (int s = 0; s < SECT_COUNT && rc == RKV_OK; s++) {
        char where[16];
        snprintf(where, sizeof where, "[%s]", section_names[s]);
        if (x->sect[s] != NULL)
            rc = check_unknown_keys(x, x->sect[s], where);
    }
    return rc;
}

/* ---- [[node]] ---- */

/* Key of a node table that must be present; label becomes "WHO: key". */
static int node_key(struct cfg *x, struct toml_table *t, const char *who, const char *key,
                    char label[128], const struct toml_value **v)
{
    snprintf(label, 128, "%s: %s", who, key);
    *v = toml_table_get(t, key);
    if (*v == NULL)
        return fail_at(x, t->line, t->col, "%s: %s is missing (it is required)", who, key);
    return RKV_OK;
}

/* data_dir against the folder of the config file; false if too long. */
static bool resolve_dir(const char *file, const char *dir, char out[CONFIG_PATH_BYTES])
{
    const char *slash = strrchr(file, '/');
    int n;
    if (dir[0] == '/' || slash == NULL)
        n = snprintf(out, CONFIG_PATH_BYTES, "%s", dir);
    else if (slash == file)
        n = snprintf(out, CONFIG_PATH_BYTES, "/%s", dir);
    else
        n = snprintf(out, CONFIG_PATH_BYTES, "%.*s/%s", (int)(slash - file), file, dir);
    return n >= 0 && n < CONFIG_PATH_BYTES;
}

static int node_host(struct cfg *x, struct toml_table *t, const char *who, struct config_node *n)
{
    char label[128];
    const struct toml_value *v;
    const char *s;
    int rc = node_key(x, t, who, "host", label, &v);
    if (rc == RKV_OK)
        rc = want_str(x, v, label, CONFIG_HOST_BYTES - 1, &s);
    if (rc != RKV_OK)
        return rc;
    for (const char *p = s; *p != '\0'; p++)
        if (*p <= 0x20 || *p >= 0x7F)
            return fail_at(x, v->line, v->col,
                           "%s: a host name or IP address has no spaces, control or non-ASCII "
                           "characters",
                           label);
    strcpy(n->host, s);
    return RKV_OK;
}

static int node_port(struct cfg *x, struct toml_table *t, const char *who, const char *key,
                     uint16_t *port)
{
    char label[128];
    const struct toml_value *v;
    int64_t p;
    int rc = node_key(x, t, who, key, label, &v);
    if (rc == RKV_OK)
        rc = want_int(x, v, label, 1, 65535, &p);
    if (rc == RKV_OK)
        *port = (uint16_t)p;
    return rc;
}

static int node_dir(struct cfg *x, struct toml_table *t, const char *who, struct config_node *n)
{
    char label[128];
    const struct toml_value *v;
    const char *s;
    int rc = node_key(x, t, who, "data_dir", label, &v);
    if (rc == RKV_OK)
        rc = want_str(x, v, label, CONFIG_PATH_BYTES - 1, &s);
    if (rc != RKV_OK)
        return rc;
    if (!resolve_dir(x->file, s, n->data_dir))
        return fail_at(x, v->line, v->col, "%s: longer than %d bytes once resolved", label,
                       CONFIG_PATH_BYTES - 1);
    return RKV_OK;
}

static int read_node(struct cfg *x, struct toml_table *t, size_t idx, struct config_node *n)
{
    char who[96], label[128];
    const struct toml_value *v;
    const char *id;
    n->line = t->line;
    snprintf(who, sizeof who, "node #%zu", idx + 1);
    int rc = node_key(x, t, who, "id", label, &v);
    if (rc == RKV_OK)
        rc = want_name(x, v, label, RKV_NODE_ID_BYTES_MAX, &id);
    if (rc != RKV_OK)
        return rc;
    strcpy(n->id, id);
    snprintf(who, sizeof who, "node \"%s\"", n->id);
    rc = node_host(x, t, who, n);
    if (rc == RKV_OK)
        rc = node_port(x, t, who, "client_port", &n->client_port);
    if (rc == RKV_OK)
        rc = node_port(x, t, who, "cluster_port", &n->cluster_port);
    if (rc == RKV_OK && toml_table_find(t, "resp_port") != NULL)
        rc = node_port(x, t, who, "resp_port", &n->resp_port);
    if (rc == RKV_OK)
        rc = node_dir(x, t, who, n);
    if (rc == RKV_OK) {
        snprintf(label, sizeof label, "[[node]] \"%s\"", n->id);
        rc = check_unknown_keys(x, t, label);
    }
    return rc;
}

static int read_nodes(struct cfg *x)
{
    const struct toml_value *v = toml_table_find(x->root, "node");
    if (v == NULL || v->u.arr->n == 0)
        return fail_at(x, 1, 1, "no [[node]] table: a cluster needs at least one member");
    const struct toml_array *arr = v->u.arr;
    if (arr->n > RKV_NODES_MAX)
        return fail_at(x, arr->v[RKV_NODES_MAX].line, arr->v[RKV_NODES_MAX].col,
                       "more than %u [[node]] tables", RKV_NODES_MAX);
    x->c->nodes = rkv_calloc(arr->n, sizeof *x->c->nodes);
    if (x->c->nodes == NULL)
        return rkv_error_set(x->err, RKV_ERR_NOMEM, "%s: out of memory", x->file);
    for (size_t i = 0; i < arr->n; i++) {
        int rc = read_node(x, arr->v[i].u.tab, i, &x->c->nodes[i]);
        if (rc != RKV_OK)
            return rc;
        x->c->n_nodes = i + 1;
    }
    return RKV_OK;
}

/* ---- relations ---- */

/* "section.key: VALUE[ (the default)] REST" at the key (see key_pos). */
static int fail_rel(struct cfg *x, enum cfg_section s, const char *key, uint64_t val,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int fail_rel(struct cfg *x, enum cfg_section s, const char *key, uint64_t val,
                    const char *fmt, ...)
{
    uint32_t line, col;
    bool dflt;
    key_pos(x, s, key, &line, &col, &dflt);
    char rest[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rest, sizeof rest, fmt, ap);
    va_end(ap);
    return fail_at(x, line, col, "%s.%s: %llu%s %s", section_names[s], key, (unsigned long long)val,
                   dflt ? " (the default)" : "", rest);
}

static int check_cluster(struct cfg *x)
{
    const struct config *c = x->c;
    if ((c->partitions & (c->partitions - 1)) != 0)
        return fail_rel(x, SECT_CLUSTER, "partitions", c->partitions, "is not a power of two");
    if (c->replicas > c->n_nodes)
        return fail_rel(x, SECT_CLUSTER, "replicas", c->replicas,
                        "is greater than the number of nodes (%zu)", c->n_nodes);
    if (c->read_quorum > c->replicas)
        return fail_rel(x, SECT_CLUSTER, "read_quorum", c->read_quorum,
                        "is greater than cluster.replicas (%u)", c->replicas);
    if (c->write_quorum > c->replicas)
        return fail_rel(x, SECT_CLUSTER, "write_quorum", c->write_quorum,
                        "is greater than cluster.replicas (%u)", c->replicas);
    return RKV_OK;
}

static int check_limits(struct cfg *x)
{
    const struct config *c = x->c;
    uint64_t need = (uint64_t)c->value_bytes_max + CONFIG_MESSAGE_OVERHEAD_BYTES;
    if (c->object_bytes_max < need)
        return fail_rel(x, SECT_LIMITS, "object_bytes_max", c->object_bytes_max,
                        "is less than limits.value_bytes_max (%u) + %u bytes of object overhead "
                        "(%llu)",
                        c->value_bytes_max, CONFIG_MESSAGE_OVERHEAD_BYTES,
                        (unsigned long long)need);
    need = 2ull * c->object_bytes_max + c->key_bytes_max + CONFIG_MESSAGE_OVERHEAD_BYTES;
    if (c->message_bytes_max < need)
        return fail_rel(x, SECT_LIMITS, "message_bytes_max", c->message_bytes_max,
                        "is less than 2 x limits.object_bytes_max (%u) + limits.key_bytes_max "
                        "(%u) + %u bytes of message overhead (%llu)",
                        c->object_bytes_max, c->key_bytes_max, CONFIG_MESSAGE_OVERHEAD_BYTES,
                        (unsigned long long)need);
    if (c->inflight_per_client > c->queue_depth_max)
        return fail_rel(x, SECT_LIMITS, "inflight_per_client", c->inflight_per_client,
                        "is greater than limits.queue_depth_max (%u)", c->queue_depth_max);
    return RKV_OK;
}

static struct toml_table *node_table(const struct cfg *x, size_t i)
{
    return toml_table_find(x->root, "node")->u.arr->v[i].u.tab;
}

static int fail_node_key(struct cfg *x, size_t i, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail_node_key(struct cfg *x, size_t i, const char *key, const char *fmt, ...)
{
    const struct toml_value *v = toml_table_find(node_table(x, i), key);
    char rest[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rest, sizeof rest, fmt, ap);
    va_end(ap);
    return fail_at(x, v->line, v->col, "node \"%s\": %s: %s", x->c->nodes[i].id, key, rest);
}

#define NODE_PORTS 3

static uint16_t node_port_of(const struct config_node *n, int which)
{
    return which == 0 ? n->client_port : which == 1 ? n->cluster_port : n->resp_port;
}

/* Address a (node a / NODE_PORTS, its port a % NODE_PORTS) against every
 * earlier one. A resp_port of 0 (none) is no address. */
static int check_address(struct cfg *x, size_t a)
{
    static const char *const port_keys[NODE_PORTS] = {"client_port", "cluster_port", "resp_port"};
    const struct config_node *na = &x->c->nodes[a / NODE_PORTS];
    uint16_t pa = node_port_of(na, (int)(a % NODE_PORTS));
    if (pa == 0)
        return RKV_OK;
    for (size_t b = 0; b < a; b++) {
        const struct config_node *nb = &x->c->nodes[b / NODE_PORTS];
        if (node_port_of(nb, (int)(b % NODE_PORTS)) != pa || strcasecmp(na->host, nb->host) != 0)
            continue;
        bool v6 = strchr(na->host, ':') != NULL;
        return fail_node_key(x, a / NODE_PORTS, port_keys[a % NODE_PORTS],
                             "%s%s%s:%u is already the %s of node \"%s\"", v6 ? "[" : "", na->host,
                             v6 ? "]" : "", pa, port_keys[b % NODE_PORTS], nb->id);
    }
    return RKV_OK;
}

/* An address only this machine can reach: 127.0.0.0/8, ::1, localhost. */
static bool is_loopback(const char *host)
{
    return strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0 ||
           strcasecmp(host, "localhost") == 0;
}

/* The RESP port has no authentication or encryption: with security on, it
 * may only listen where nobody else can reach it, unless the file says so. */
static int check_resp(struct cfg *x, size_t i)
{
    const struct config *c = x->c;
    const struct config_node *n = &c->nodes[i];
    if (n->resp_port == 0 || c->security != SECURITY_CURVE || c->resp_allow_remote ||
        is_loopback(n->host))
        return RKV_OK;
    return fail_node_key(x, i, "resp_port",
                         "the Redis protocol has no authentication or encryption, and host "
                         "\"%s\" is not a loopback address; set resp.allow_remote = true to "
                         "serve it anyway",
                         n->host);
}

static int check_nodes(struct cfg *x)
{
    const struct config *c = x->c;
    for (size_t j = 0; j < c->n_nodes; j++) {
        const struct config_node *nj = &c->nodes[j];
        for (size_t i = 0; i < j; i++) {
            const struct config_node *ni = &c->nodes[i];
            const struct toml_table *t = node_table(x, j);
            if (strcmp(ni->id, nj->id) == 0)
                return fail_at(x, t->line, t->col,
                               "node \"%s\" is defined twice (first at line %u)", nj->id, ni->line);
            char buf[TOML_SHOW_BYTES];
            if (strcasecmp(ni->host, nj->host) == 0 && strcmp(ni->data_dir, nj->data_dir) == 0)
                return fail_node_key(x, j, "data_dir",
                                     "\"%s\" is also the data_dir of node \"%s\" on the same "
                                     "host",
                                     toml_show(nj->data_dir, buf), ni->id);
        }
    }
    for (size_t a = 0; a < NODE_PORTS * c->n_nodes; a++) {
        int rc = check_address(x, a);
        if (rc != RKV_OK)
            return rc;
    }
    for (size_t i = 0; i < c->n_nodes; i++) {
        int rc = check_resp(x, i);
        if (rc != RKV_OK)
            return rc;
    }
    return RKV_OK;
}

/* ---- entry points ---- */

static int parse_tree(struct cfg *x)
{
    int rc = read_root(x);
    if (rc == RKV_OK)
        rc = read_sections(x);
    if (rc == RKV_OK)
        rc = read_nodes(x);
    if (rc == RKV_OK)
        rc = check_nodes(x);
    if (rc == RKV_OK)
        rc = check_cluster(x);
    if (rc == RKV_OK)
        rc = check_limits(x);
    return rc;
}

int config_parse(const char *text, size_t len, const char *name, struct config **out,
                 struct rkv_error *err)
{
    *out = NULL;
    if (strlen(name) >= CONFIG_PATH_BYTES)
        return rkv_error_set(err, RKV_ERR_INVAL, "config: file name longer than %d bytes",
                             CONFIG_PATH_BYTES - 1);
    struct cfg x = {.file = name, .err = err, .c = NULL, .root = NULL, .sect = {NULL}};
    int rc = toml_parse(text, len, name, &x.root, err);
    if (rc != RKV_OK)
        return rc;
    x.c = rkv_malloc(sizeof *x.c);
    if (x.c == NULL) {
        toml_free(x.root);
        return rkv_error_set(err, RKV_ERR_NOMEM, "%s: out of memory", name);
    }
    config_defaults(x.c);
    strcpy(x.c->path, name);
    rc = parse_tree(&x);
    toml_free(x.root);
    if (rc != RKV_OK) {
        config_free(x.c);
        return rc;
    }
    *out = x.c;
    return RKV_OK;
}

/* The whole file into a buffer of at most TOML_TEXT_BYTES_MAX bytes. */
static int read_file(const char *path, char **out, size_t *len, struct rkv_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return rkv_error_set(err, RKV_ERR_IO, "%s: %s", path, strerror(errno));
    char *buf = rkv_malloc(TOML_TEXT_BYTES_MAX + 1);
    size_t n = 0;
    int rc = buf ? RKV_OK : rkv_error_set(err, RKV_ERR_NOMEM, "%s: out of memory", path);
    while (rc == RKV_OK && n <= TOML_TEXT_BYTES_MAX) {
        ssize_t r = read(fd, buf + n, TOML_TEXT_BYTES_MAX + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            rc = rkv_error_set(err, RKV_ERR_IO, "%s: %s", path, strerror(errno));
        else if (r == 0)
            break;
        else
            n += (size_t)r;
    }
    close(fd);
    if (rc == RKV_OK && n > TOML_TEXT_BYTES_MAX)
        rc = rkv_error_set(err, RKV_ERR_CONFIG, "%s: larger than %u bytes", path,
                           TOML_TEXT_BYTES_MAX);
    if (rc != RKV_OK) {
        rkv_free(buf);
        return rc;
    }
    *out = buf;
    *len = n;
    return RKV_OK;
}

int config_load(const char *path, struct config **out, struct rkv_error *err)
{
    *out = NULL;
    char *text = NULL;
    size_t len = 0;
    int rc = read_file(path, &text, &len, err);
    if (rc == RKV_OK)
        rc = config_parse(text, len, path, out, err);
    rkv_free(text);
    return rc;
}

void config_free(struct config *c)
{
    if (c == NULL)
        return;
    rkv_free(c->nodes);
    rkv_free(c);
}

const struct config_node *config_node_find(const struct config *c, const char *id)
{
    for (size_t i = 0; i < c->n_nodes; i++)
        if (strcmp(c->nodes[i].id, id) == 0)
            return &c->nodes[i];
    return NULL;
}

void config_object_limits(const struct config *c, struct object_limits *lim)
{
    *lim = (struct object_limits){
        .siblings_max = c->siblings_max,
        .clock_entries_max = c->clock_entries_max,
        .value_bytes_max = c->value_bytes_max,
        .object_bytes_max = c->object_bytes_max,
        .conflict = c->conflict,
    };
}
