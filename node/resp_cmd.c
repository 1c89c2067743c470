/*
 * resp_cmd.c: the commands of the Redis endpoint (docs/resp.md lists them
 * and what each does here), and the per-connection key slots that keep a
 * pipeline in order. resp.c runs the connections and the replies.
 */
#include "node/resp_int.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "common/alloc.h"
#include "common/clock.h"

static const uint8_t *arg(const struct cmd_ctx *x, uint32_t i, uint32_t *len)
{
    *len = x->p->args[i].len;
    return resp_arg_ptr(x->p, x->buf, i);
}

static bool arg_is(const struct cmd_ctx *x, uint32_t i, const char *name)
{
    uint32_t len;
    const uint8_t *a = arg(x, i, &len);
    return resp_arg_is(a, len, name);
}

static void reply_done(struct cmd_ctx *x)
{
    x->k->kind = K_DONE;
    resp_call_done(x->c, x->k);
}

static void reply_error(struct cmd_ctx *x, const char *text)
{
    x->k->reply.len = 0;
    resp_error(&x->k->reply, "%s", text);
    reply_done(x);
}

/* Keys are checked here, so that a bad one fails the command before any
 * part of it is sent. */
static bool keys_ok(struct cmd_ctx *x, uint32_t first, uint32_t step)
{
    if ((x->p->n - first + step - 1) / step > x->n->resp->queue_max) {
        char msg[96];
        snprintf(msg, sizeof msg, "ERR more than %u keys in one command", x->n->resp->queue_max);
        reply_error(x, msg);
        return false;
    }
    for (uint32_t i = first; i < x->p->n; i += step) {
        if (x->p->args[i].len == 0 || x->p->args[i].len > x->n->cfg->key_bytes_max) {
            char msg[96];
            snprintf(msg, sizeof msg, "ERR a key must be 1 to %u bytes", x->n->cfg->key_bytes_max);
            reply_error(x, msg);
            return false;
        }
    }
    return true;
}

static bool value_ok(struct cmd_ctx *x, uint32_t i)
{
    if (x->p->args[i].len <= x->n->cfg->value_bytes_max)
        return true;
    char msg[96];
    snprintf(msg, sizeof msg, "ERR a value must be at most %u bytes (limits.value_bytes_max)",
             x->n->cfg->value_bytes_max);
    reply_error(x, msg);
    return false;
}

/* A time argument in units of unit_ms; false (replied) if it is not one. */
static bool time_arg(struct cmd_ctx *x, uint32_t i, uint64_t unit_ms, bool positive, int64_t *ms)
{
    uint32_t len;
    const uint8_t *a = arg(x, i, &len);
    int64_t v;
    if (!resp_arg_int(a, len, &v)) {
        reply_error(x, "ERR value is not an integer or out of range");
        return false;
    }
    if ((positive && v <= 0) || v > (int64_t)(RKV_TTL_MS_MAX / unit_ms) ||
        v < -(int64_t)(RKV_TTL_MS_MAX / unit_ms)) {
        reply_error(x, positive ? "ERR invalid expire time in 'set' command"
                                : "ERR invalid expire time in 'expire' command");
        return false;
    }
    *ms = v * (int64_t)unit_ms;
    return true;
}

static void cmd_get(struct cmd_ctx *x)
{
    if (!keys_ok(x, 1, 1))
        return;
    uint32_t len;
    const uint8_t *key = arg(x, 1, &len);
    x->k->kind = K_GET;
    resp_submit_get(x->n, x->idx, x->seq, 0, key, len);
}

static void cmd_mget(struct cmd_ctx *x)
{
    if (!keys_ok(x, 1, 1))
        return;
    struct call *k = x->k;
    uint32_t nk = x->p->n - 1;
    if (k->cap_parts < nk) {
        struct rkv_buf *parts = rkv_realloc(k->parts, nk * sizeof *parts);
        if (parts == NULL) {
            reply_error(x, "ERR out of memory");
            return;
        }
        memset(parts + k->cap_parts, 0, (nk - k->cap_parts) * sizeof *parts);
        k->parts = parts;
        k->cap_parts = nk;
    }
    k->kind = K_MGET;
    k->nkeys = nk;
    for (uint32_t i = 0; i < nk; i++) {
        k->parts[i].len = 0;
        uint32_t len;
        const uint8_t *key = arg(x, i + 1, &len);
        resp_submit_get(x->n, x->idx, x->seq, i, key, len);
    }
}

/* SET key value [EX s | PX ms] [NX | XX] */
static void cmd_set(struct cmd_ctx *x)
{
    if (!keys_ok(x, 1, 3) || !value_ok(x, 2))
        return;
    int64_t ttl = 0;
    int mode = 0; /* 1 NX, 2 XX */
    for (uint32_t i = 3; i < x->p->n; i++) {
        if ((arg_is(x, i, "EX") || arg_is(x, i, "PX")) && ttl == 0 && i + 1 < x->p->n) {
            if (!time_arg(x, i + 1, arg_is(x, i, "EX") ? 1000 : 1, true, &ttl))
                return;
            i++;
        } else if (arg_is(x, i, "NX") && mode == 0) {
            mode = 1;
        } else if (arg_is(x, i, "XX") && mode == 0) {
            mode = 2;
        } else {
            reply_error(x, "ERR syntax error");
            return;
        }
    }
    uint32_t klen, vlen;
    const uint8_t *key = arg(x, 1, &klen), *value = arg(x, 2, &vlen);
    struct call *k = x->k;
    k->ttl_ms = (uint64_t)ttl;
    if (mode == 0) {
        k->kind = K_WRITE;
        resp_submit_put(x->n, x->idx, x->seq, 0, key, klen, value, vlen, NULL, k->ttl_ms);
        return;
    }
    k->kind = mode == 1 ? K_SET_NX : K_SET_XX;
    if (resp_keep_add(k, key, klen) != RKV_OK || resp_keep_add(k, value, vlen) != RKV_OK) {
        reply_error(x, "ERR out of memory");
        return;
    }
    resp_submit_get(x->n, x->idx, x->seq, 0, key, klen);
}

/* SETEX key seconds value, PSETEX key ms value */
static void cmd_setex(struct cmd_ctx *x)
{
    if (!keys_ok(x, 1, 3) || !value_ok(x, 3))
        return;
    int64_t ttl;
    if (!time_arg(x, 2, arg_is(x, 0, "SETEX") ? 1000 : 1, true, &ttl))
        return;
    uint32_t klen, vlen;
    const uint8_t *key = arg(x, 1, &klen), *value = arg(x, 3, &vlen);
    x->k->kind = K_WRITE;
    resp_submit_put(x->n, x->idx, x->seq, 0, key, klen, value, vlen, NULL, (uint64_t)ttl);
}

static void cmd_mset(struct cmd_ctx *x)
{
    if (x->p->n % 2 != 1) {
        reply_error(x, "ERR wrong number of arguments for 'mset' command");
        return;
    }
    if (!keys_ok(x, 1, 2))
        return;
    for (uint32_t i = 2; i < x->p->n; i += 2)
        if (!value_ok(x, i))
            return;
    x->k->kind = K_WRITE;
    for (uint32_t i = 1; i < x->p->n; i += 2) {
        uint32_t klen, vlen;
        const uint8_t *key = arg(x, i, &klen), *value = arg(x, i + 1, &vlen);
        resp_submit_put(x->n, x->idx, x->seq, i / 2, key, klen, value, vlen, NULL, 0);
    }
}

/* DEL and EXISTS: a get per key (DEL then deletes what it found). */
static void cmd_keys(struct cmd_ctx *x)
{
    if (!keys_ok(x, 1, 1))
        return;
    struct call *k = x->k;
    bool del = arg_is(x, 0, "DEL") || arg_is(x, 0, "UNLINK");
    k->kind = del ? K_DEL : K_EXISTS;
    k->nkeys = x->p->n - 1;
    for (uint32_t i = 1; i < x->p->n && del; i++) {
        uint32_t len;
        const uint8_t *key = arg(x, i, &len);
        if (resp_keep_add(k, key, len) != RKV_OK) {
            reply_error(x, "ERR out of memory");
            return;
        }
    }
    for (uint32_t i = 1; i < x->p->n; i++) {
        uint32_t len;
        const uint8_t *key = arg(x, i, &len);
        resp_submit_get(x->n, x->idx, x->seq, i - 1, key, len);
    }
}

static void cmd_expire(struct cmd_ctx *x)
{
    if (!keys_ok(x, 1, 3))
        return;
    int64_t ms;
    if (!time_arg(x, 2, arg_is(x, 0, "EXPIRE") ? 1000 : 1, false, &ms))
        return;
    struct call *k = x->k;
    k->kind = K_EXPIRE;
    k->delete_now = ms <= 0;
    k->ttl_ms = ms > 0 ? (uint64_t)ms : 0;
    uint32_t len;
    const uint8_t *key = arg(x, 1, &len);
    if (resp_keep_add(k, key, len) != RKV_OK) {
        reply_error(x, "ERR out of memory");
        return;
    }
    resp_submit_get(x->n, x->idx, x->seq, 0, key, len);
}

static void cmd_ttl(struct cmd_ctx *x)
{
    if (!keys_ok(x, 1, 1))
        return;
    uint32_t len;
    const uint8_t *key = arg(x, 1, &len);
    x->k->kind = arg_is(x, 0, "TTL") ? K_TTL : K_PTTL;
    resp_submit_get(x->n, x->idx, x->seq, 0, key, len);
}

static void cmd_ping(struct cmd_ctx *x)
{
    if (x->p->n == 1) {
        resp_simple(&x->k->reply, "PONG");
    } else {
        uint32_t len;
        const uint8_t *a = arg(x, 1, &len);
        resp_bulk(&x->k->reply, a, len);
    }
    reply_done(x);
}

static void cmd_echo(struct cmd_ctx *x)
{
    uint32_t len;
    const uint8_t *a = arg(x, 1, &len);
    resp_bulk(&x->k->reply, a, len);
    reply_done(x);
}

static void cmd_quit(struct cmd_ctx *x)
{
    resp_simple(&x->k->reply, "OK");
    x->c->closing = true;
    reply_done(x);
}

static void cmd_select(struct cmd_ctx *x)
{
    if (arg_is(x, 1, "0"))
        resp_simple(&x->k->reply, "OK");
    else
        resp_error(&x->k->reply, "ERR DB index is out of range");
    reply_done(x);
}

/* An estimate: this node's live keys times members / N (each key is on N
 * of the members). Exact when every node holds every key (N = members). */
static uint64_t key_estimate(struct node *n)
{
    struct store_stats st;
    store_stats(n->store, &st);
    uint64_t members = ring_member_count(n->ring);
    return st.keys * members / (n->cfg->replicas ? n->cfg->replicas : 1);
}

static void cmd_dbsize(struct cmd_ctx *x)
{
    resp_int(&x->k->reply, (int64_t)key_estimate(x->n));
    reply_done(x);
}

static void cmd_info(struct cmd_ctx *x)
{
    struct node *n = x->n;
    char text[1024];
    snprintf(text, sizeof text,
             "# Server\r\nredis_version:%s\r\nringkv_version:%s\r\nredis_mode:standalone\r\n"
             "process_id:%ld\r\ntcp_port:%u\r\nuptime_in_seconds:%llu\r\n"
             "ringkv_node:%s\r\nringkv_ring:%s\r\n\r\n"
             "# Clients\r\nconnected_clients:%u\r\n\r\n"
             "# Persistence\r\naof_enabled:%d\r\n\r\n"
             "# Stats\r\ntotal_connections_received:%llu\r\ntotal_commands_processed:%llu\r\n"
             "rejected_connections:%llu\r\n\r\n"
             "# Replication\r\nrole:master\r\nconnected_slaves:0\r\n\r\n"
             "# Keyspace\r\ndb0:keys=%llu,expires=0,avg_ttl=0\r\n",
             REDIS_VERSION, WIRE_SOFTWARE_VERSION, (long)getpid(), n->me->resp_port,
             (unsigned long long)((rkv_clock_mono_ms() - n->started_ms) / 1000), n->me->id,
             n->cfg->name, n->resp->open, n->cfg->sync == STORE_SYNC_ALWAYS,
             (unsigned long long)n->stats.resp_connections,
             (unsigned long long)n->stats.resp_commands, (unsigned long long)n->stats.resp_refused,
             (unsigned long long)key_estimate(n));
    resp_bulk_str(&x->k->reply, text);
    reply_done(x);
}

/* CONFIG GET param: what redis-benchmark and clients ask for at connect. */
static void cmd_config(struct cmd_ctx *x)
{
    struct rkv_buf *r = &x->k->reply;
    if (!arg_is(x, 1, "GET") || x->p->n != 3) {
        resp_error(r, "ERR CONFIG: only CONFIG GET is supported");
    } else if (arg_is(x, 2, "save")) {
        resp_array(r, 2);
        resp_bulk_str(r, "save");
        resp_bulk_str(r, "");
    } else if (arg_is(x, 2, "appendonly")) {
        resp_array(r, 2);
        resp_bulk_str(r, "appendonly");
        resp_bulk_str(r, x->n->cfg->sync == STORE_SYNC_ALWAYS ? "yes" : "no");
    } else if (arg_is(x, 2, "databases")) {
        resp_array(r, 2);
        resp_bulk_str(r, "databases");
        resp_bulk_str(r, "1");
    } else {
        resp_array(r, 0);
    }
    reply_done(x);
}

static void cmd_client(struct cmd_ctx *x)
{
    struct rkv_buf *r = &x->k->reply;
    if (arg_is(x, 1, "SETNAME") && x->p->n == 3) {
        uint32_t len;
        const uint8_t *a = arg(x, 2, &len);
        if (len >= sizeof x->c->name || memchr(a, ' ', len) || memchr(a, '\n', len)) {
            resp_error(r, "ERR Client names cannot contain spaces, newlines or special "
                          "characters, and are at most 63 bytes here.");
        } else {
            memcpy(x->c->name, a, len);
            x->c->name[len] = '\0';
            resp_simple(r, "OK");
        }
    } else if (arg_is(x, 1, "GETNAME") && x->p->n == 2) {
        if (x->c->name[0])
            resp_bulk_str(r, x->c->name);
        else
            resp_nil(r);
    } else if (arg_is(x, 1, "ID") && x->p->n == 2) {
        resp_int(r, (int64_t)((uint64_t)x->c->gen << 16 | x->idx));
    } else if (arg_is(x, 1, "SETINFO") && x->p->n == 4) {
        resp_simple(r, "OK");
    } else {
        resp_error(r, "ERR CLIENT: only SETNAME, GETNAME, ID and SETINFO are supported");
    }
    reply_done(x);
}

static void cmd_command(struct cmd_ctx *x)
{
    if (x->p->n == 2 && arg_is(x, 1, "COUNT"))
        resp_int(&x->k->reply, 0);
    else
        resp_array(&x->k->reply, 0);
    reply_done(x);
}

/* HELLO [2 [AUTH ...] [SETNAME name]]: RESP2 only. */
static void cmd_hello(struct cmd_ctx *x)
{
    struct rkv_buf *r = &x->k->reply;
    if (x->p->n >= 2 && !arg_is(x, 1, "2")) {
        uint32_t len;
        const uint8_t *a = arg(x, 1, &len);
        int64_t v;
        if (resp_arg_int(a, len, &v))
            resp_error(r, "NOPROTO unsupported protocol version");
        else
            resp_error(r, "ERR Protocol version is not an integer or out of range");
        reply_done(x);
        return;
    }
    for (uint32_t i = 2; i < x->p->n; i++) {
        if (arg_is(x, i, "SETNAME") && i + 1 < x->p->n) {
            uint32_t len;
            const uint8_t *a = arg(x, i + 1, &len);
            if (len < sizeof x->c->name) {
                memcpy(x->c->name, a, len);
                x->c->name[len] = '\0';
            }
            i++;
        } else {
            resp_error(r, "ERR HELLO: only the protocol version and SETNAME are supported "
                          "(no AUTH: the Redis port has no users)");
            reply_done(x);
            return;
        }
    }
    resp_array(r, 14);
    resp_bulk_str(r, "server");
    resp_bulk_str(r, "redis");
    resp_bulk_str(r, "version");
    resp_bulk_str(r, REDIS_VERSION);
    resp_bulk_str(r, "proto");
    resp_int(r, 2);
    resp_bulk_str(r, "id");
    resp_int(r, (int64_t)((uint64_t)x->c->gen << 16 | x->idx));
    resp_bulk_str(r, "mode");
    resp_bulk_str(r, "standalone");
    resp_bulk_str(r, "role");
    resp_bulk_str(r, "master");
    resp_bulk_str(r, "modules");
    resp_array(r, 0);
    reply_done(x);
}

static void cmd_flushall(struct cmd_ctx *x)
{
    if (!x->n->cfg->resp_flushall) {
        reply_error(x, "ERR FLUSHALL is disabled on this ring (resp.flushall = false in "
                       "cluster.toml)");
        return;
    }
    if (x->p->n > 2 || (x->p->n == 2 && !arg_is(x, 1, "SYNC") && !arg_is(x, 1, "ASYNC"))) {
        reply_error(x, "ERR syntax error");
        return;
    }
    struct call *k = x->k;
    k->kind = K_FLUSH;
    k->flush_part = 0;
    k->flush_cursor = 0;
    resp_flush_more(x->n, x->idx, x->seq, k);
}

static const struct command commands[] = {
    {"GET", 2, cmd_get, 1, 0, false, false},
    {"SET", -3, cmd_set, 1, 0, true, false},
    {"SETEX", 4, cmd_setex, 1, 0, true, false},
    {"PSETEX", 4, cmd_setex, 1, 0, true, false},
    {"MGET", -2, cmd_mget, 1, 1, false, false},
    {"MSET", -3, cmd_mset, 1, 2, true, false},
    {"DEL", -2, cmd_keys, 1, 1, true, false},
    {"UNLINK", -2, cmd_keys, 1, 1, true, false},
    {"EXISTS", -2, cmd_keys, 1, 1, false, false},
    {"EXPIRE", 3, cmd_expire, 1, 0, true, false},
    {"PEXPIRE", 3, cmd_expire, 1, 0, true, false},
    {"TTL", 2, cmd_ttl, 1, 0, false, false},
    {"PTTL", 2, cmd_ttl, 1, 0, false, false},
    {"PING", -1, cmd_ping, 0, 0, false, false},
    {"ECHO", 2, cmd_echo, 0, 0, false, false},
    {"QUIT", -1, cmd_quit, 0, 0, false, false},
    {"SELECT", 2, cmd_select, 0, 0, false, false},
    {"DBSIZE", 1, cmd_dbsize, 0, 0, false, false},
    {"INFO", -1, cmd_info, 0, 0, false, false},
    {"CONFIG", -2, cmd_config, 0, 0, false, false},
    {"CLIENT", -2, cmd_client, 0, 0, false, false},
    {"COMMAND", -1, cmd_command, 0, 0, false, false},
    {"HELLO", -1, cmd_hello, 0, 0, false, false},
    {"FLUSHALL", -1, cmd_flushall, 0, 0, false, true},
};

const struct command *resp_find_command(const struct resp_parser *p, const uint8_t *buf)
{
    const uint8_t *name = resp_arg_ptr(p, buf, 0);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (resp_arg_is(name, p->args[0].len, commands[i].name))
            return &commands[i];
    return NULL;
}

/*
 * Commands of one connection run concurrently, yet each must see the
 * effect of the commands before it, as with Redis: a GET after a SET of
 * the same key must read the new value. So a command waits (stays unparsed)
 * while an earlier one in flight on the same connection writes one of its
 * keys, or, if it writes, reads one. Keys are tracked by hash in KEY_SLOTS
 * slots; a collision only makes a command wait when it need not.
 * Fills s->slots with the command's distinct slots; false if it must wait.
 */
bool resp_key_slots(struct resp_server *s, struct conn *c, const struct command *cmd,
                    const struct resp_parser *p, const uint8_t *buf)
{
    s->slots.len = 0;
    if (cmd == NULL || cmd->first == 0 || p->n <= cmd->first)
        return true;
    bool clear = true;
    uint32_t last = cmd->step ? p->n - 1 : cmd->first;
    for (uint32_t i = cmd->first; i <= last; i += cmd->step ? cmd->step : 1) {
        uint16_t slot =
            (uint16_t)(XXH3_64bits(resp_arg_ptr(p, buf, i), p->args[i].len) & (KEY_SLOTS - 1));
        bool seen = false;
        for (size_t j = 0; j + 2 <= s->slots.len && !seen; j += 2)
            seen = rkv_get_u16(s->slots.data + j) == slot;
        if (seen)
            continue;
        uint8_t b[2];
        rkv_put_u16(b, slot);
        if (rkv_buf_append(&s->slots, b, 2) != RKV_OK)
            return false;
        clear &= c->slot_writes[slot] == 0 && (!cmd->writes || c->slot_reads[slot] == 0);
    }
    return clear;
}

/* The command holds its slots until it is done. */
void resp_hold_slots(struct resp_server *s, struct conn *c, struct call *k,
                     const struct command *cmd)
{
    if (cmd == NULL || s->slots.len == 0)
        return;
    k->writes = cmd->writes;
    if (rkv_buf_set(&k->slots, s->slots.data, s->slots.len) != RKV_OK) {
        k->slots.len = 0;
        return; /* untracked: it only loses ordering against later commands */
    }
    for (size_t j = 0; j + 2 <= s->slots.len; j += 2) {
        uint16_t slot = rkv_get_u16(s->slots.data + j);
        if (cmd->writes)
            c->slot_writes[slot]++;
        else
            c->slot_reads[slot]++;
    }
}

void resp_run_command(struct cmd_ctx *x, const struct command *cmd)
{
    uint32_t len;
    const uint8_t *name = arg(x, 0, &len);
    char shown[48];
    size_t sl = len < 32 ? len : 32;
    for (size_t i = 0; i < sl; i++)
        shown[i] = name[i] >= 0x20 && name[i] < 0x7f && name[i] != '\'' ? (char)name[i] : '?';
    shown[sl] = '\0';
    if (cmd != NULL) {
        int argc = (int)x->p->n;
        if ((cmd->arity > 0 && argc != cmd->arity) || (cmd->arity < 0 && argc < -cmd->arity)) {
            char msg[96], lower[16];
            size_t l = 0;
            for (; cmd->name[l] && l < sizeof lower - 1; l++)
                lower[l] = (char)(cmd->name[l] | 0x20);
            lower[l] = '\0';
            snprintf(msg, sizeof msg, "ERR wrong number of arguments for '%s' command", lower);
            reply_error(x, msg);
            return;
        }
        cmd->run(x);
        if (x->k->kind != K_DONE && !x->k->done && x->k->waiting == 0)
            resp_finish_call(x->c, x->k); /* every part failed at once */
        return;
    }
    char msg[128];
    snprintf(msg, sizeof msg, "ERR unknown command '%s' (docs/resp.md lists what ringkv serves)",
             shown);
    reply_error(x, msg);
}
