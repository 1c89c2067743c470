/*
 * security.c: CurveZMQ on both of a node's ports, and the ZAP handler that
 * decides who may connect.
 *
 * Keys (security.keys_dir, see docs/security.md):
 *   <this node>.key_secret   this node's key pair; refused unless mode 0600
 *   <peer>.key               every other member's public key
 *   clients/NAME.key         the public keys of the clients allowed in
 *
 * The ZAP handler is a REP socket on inproc://zeromq.zap.01 in the node's
 * ZeroMQ context, bound before any other socket: ZeroMQ consults it for
 * every CURVE handshake, and without it CURVE would admit anyone who knows
 * the server's public key. If it cannot be bound the node does not start.
 * Each router sets a ZAP domain ("client" or "cluster") that says which
 * allow-list applies. An admitted peer gets its node id as ZAP user id, and
 * every message on the cluster port is checked: the routing id a peer
 * claims must be the id its key belongs to, so a member cannot speak for
 * another (a refused message is logged and counted, never processed).
 *
 * The ZAP handler runs in the event loop (its socket is polled with the
 * others), so a handshake waits at most one loop turn.
 */
#include "node/node.h"

#include <dirent.h>
#include <stdio.h>
#include <zmq.h>

#include "common/alloc.h"
#include "common/log.h"

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define ZAP_PARTS_MAX 8
#define CLIENT_KEYS_MAX 4096

static int load_clients(struct node *n, struct rkv_error *err)
{
    struct node_security *s = &n->sec;
    char dir[CONFIG_PATH_BYTES + 16];
    snprintf(dir, sizeof dir, "%s/clients", n->cfg->keys_dir);
    DIR *d = opendir(dir);
    if (d == NULL) {
        RKV_WARN("node", "%s: no %s: no client can connect", n->me->id, dir);
        return RKV_OK;
    }
    struct dirent *de;
    int rc = RKV_OK;
    while (rc == RKV_OK && (de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len < 5 || strcmp(de->d_name + len - 4, ".key") != 0)
            continue;
        if (s->n_clients == CLIENT_KEYS_MAX) {
            rc = rkv_error_set(err, RKV_ERR_TOOBIG, "node: more than %d client keys in %s",
                               CLIENT_KEYS_MAX, dir);
            break;
        }
        void *arr = s->clients;
        if (rkv_grow(&arr, &s->cap_clients, s->n_clients + 1, sizeof *s->clients) != RKV_OK) {
            rc = rkv_error_set(err, RKV_ERR_NOMEM, "node: out of memory");
            break;
        }
        s->clients = arr;
        char path[CONFIG_PATH_BYTES + 300];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        struct cert c;
        rc = cert_load_public(path, &c, err);
        if (rc == RKV_OK) {
            struct node_client_key *k = &s->clients[s->n_clients++];
            zmq_z85_decode(k->key, c.public_key);
            /* the certificate's name, else the file name without .key */
            const char *nm = c.name[0] ? c.name : de->d_name;
            size_t nl = c.name[0] ? strlen(nm) : len - 4;
            if (nl > CERT_NAME_BYTES)
                nl = CERT_NAME_BYTES;
            memcpy(k->name, nm, nl);
            k->name[nl] = '\0';
        }
    }
    closedir(d);
    if (rc == RKV_OK && s->n_clients == 0)
        RKV_WARN("node", "%s: %s holds no client keys: no client can connect", n->me->id, dir);
    return rc;
}

static int load_keys(struct node *n, struct rkv_error *err)
{
    struct node_security *s = &n->sec;
    char path[CONFIG_PATH_BYTES + 128];
    snprintf(path, sizeof path, "%s/%s.key_secret", n->cfg->keys_dir, n->me->id);
    int rc = cert_load_secret(path, &s->own, err);
    if (rc == RKV_ERR_NOTFOUND)
        return rkv_error_set(err, rc, "node: no key pair for %s: %s is missing (make one with "
                             "ringkv keygen %s --dir %s, or set security.mode = \"none\")",
                             n->me->id, path, n->me->id, n->cfg->keys_dir);
    if (rc != RKV_OK)
        return rc;
    return load_clients(n, err);
}

int security_open(struct node *n, struct rkv_error *err)
{
    struct node_security *s = &n->sec;
    s->curve = n->cfg->security == SECURITY_CURVE;
    if (!s->curve) {
        RKV_WARN("node", "%s: security.mode is \"none\": both ports are plain TCP, anyone who "
                 "can connect is served and can read the traffic", n->me->id);
        return RKV_OK;
    }
    if (!zmq_has("curve"))
        return rkv_error_set(err, RKV_ERR_DENIED,
                             "node: this libzmq has no CURVE support; refusing to run without it "
                             "(or set security.mode = \"none\")");
    int rc = load_keys(n, err);
    if (rc != RKV_OK)
        return rc;
    s->zap = zmq_socket(n->zctx, ZMQ_REP);
    int zero = 0;
    if (s->zap == NULL || zmq_setsockopt(s->zap, ZMQ_LINGER, &zero, sizeof zero) != 0 ||
        zmq_bind(s->zap, ZAP_ENDPOINT) != 0)
        return rkv_error_set(err, RKV_ERR_DENIED,
                             "node: cannot start the ZAP handler (%s); refusing to start: CURVE "
                             "without it would admit anyone",
                             zmq_strerror(zmq_errno()));
    RKV_INFO("node", "%s: CurveZMQ on, %zu client keys", n->me->id, s->n_clients);
    return RKV_OK;
}

void security_close(struct node *n)
{
    struct node_security *s = &n->sec;
    if (s->zap)
        zmq_close(s->zap);
    rkv_free(s->clients);
    memset(s, 0, sizeof *s);
}

int security_server(struct node *n, void *sock, const char *domain)
{
    if (!n->sec.curve)
        return 0;
    int one = 1;
    return zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof one) ||
           zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, n->sec.own.secret_key, CERT_Z85_BYTES + 1) ||
           zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, domain, strlen(domain));
}

void security_peer_key(struct node *n, uint32_t slot)
{
    struct node_peer *p = n->peer[slot];
    if (!n->sec.curve)
        return;
    struct cert c;
    if (strcmp(p->id, n->me->id) == 0) {
        c = n->sec.own;
    } else {
        char path[CONFIG_PATH_BYTES + 128];
        snprintf(path, sizeof path, "%s/%s.key", n->cfg->keys_dir, p->id);
        struct rkv_error err;
        if (cert_load_public(path, &c, &err) != RKV_OK) {
            RKV_WARN("node", "%s: member %s has no usable key: %s", n->me->id, p->id, err.msg);
            return;
        }
    }
    memcpy(p->z85, c.public_key, sizeof p->z85);
    zmq_z85_decode(p->key, c.public_key);
    p->keyed = true;
}

/* A cluster key of no member known yet: the member whose <id>.key in
 * keys_dir holds it (a member that joins), or NULL. */
static const char *find_new_member(struct node *n, const uint8_t *key)
{
    DIR *d = opendir(n->cfg->keys_dir);
    if (d == NULL)
        return NULL;
    const char *found = NULL;
    struct dirent *de;
    while (found == NULL && (de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len < 5 || len - 4 > RKV_NODE_ID_BYTES_MAX || strcmp(de->d_name + len - 4, ".key"))
            continue;
        if (node_peer_find(n, de->d_name, len - 4) >= 0)
            continue; /* a known member: its key was compared already */
        char path[CONFIG_PATH_BYTES + 300];
        snprintf(path, sizeof path, "%s/%s", n->cfg->keys_dir, de->d_name);
        struct cert c;
        struct rkv_error err;
        uint8_t raw[32];
        if (cert_load_public(path, &c, &err) != RKV_OK)
            continue;
        zmq_z85_decode(raw, c.public_key);
        if (memcmp(raw, key, 32) != 0)
            continue;
        int32_t slot = node_peer_add(n, de->d_name, len - 4);
        if (slot >= 0 && n->peer[slot]->keyed)
            found = n->peer[slot]->id;
    }
    closedir(d);
    return found;
}

int security_client(struct node *n, void *sock, uint32_t peer)
{
    if (!n->sec.curve)
        return 0;
    return zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, n->peer[peer]->z85, CERT_Z85_BYTES + 1) ||
           zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, n->sec.own.public_key, CERT_Z85_BYTES + 1) ||
           zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, n->sec.own.secret_key, CERT_Z85_BYTES + 1);
}

/* Who the key belongs to in domain, or NULL. */
static const char *key_owner(struct node *n, const char *domain, size_t dlen, const void *key,
                             size_t klen)
{
    if (klen != 32)
        return NULL;
    if (dlen == 7 && memcmp(domain, "cluster", 7) == 0) {
        for (uint32_t i = 0; i < n->n_peers; i++)
            if (i != n->self && n->peer[i]->keyed && memcmp(n->peer[i]->key, key, 32) == 0)
                return n->peer[i]->id;
        return find_new_member(n, key);
    } else if (dlen == 6 && memcmp(domain, "client", 6) == 0) {
        for (size_t i = 0; i < n->sec.n_clients; i++)
            if (memcmp(n->sec.clients[i].key, key, 32) == 0)
                return n->sec.clients[i].name;
    }
    return NULL;
}

static void zap_reply(void *sock, zmq_msg_t *req_id, const char *code, const char *text,
                      const char *user)
{
    zmq_send(sock, "1.0", 3, ZMQ_SNDMORE);
    zmq_send(sock, zmq_msg_data(req_id), zmq_msg_size(req_id), ZMQ_SNDMORE);
    zmq_send(sock, code, 3, ZMQ_SNDMORE);
    zmq_send(sock, text, strlen(text), ZMQ_SNDMORE);
    zmq_send(sock, user, strlen(user), ZMQ_SNDMORE);
    zmq_send(sock, "", 0, 0);
}

/* Answers one ZAP request (RFC 27): version, request id, domain, address,
 * routing id, mechanism, credentials. */
static void zap_one(struct node *n)
{
    zmq_msg_t part[ZAP_PARTS_MAX];
    int np = 0;
    for (bool more = true; more;) {
        zmq_msg_t extra, *m = np < ZAP_PARTS_MAX ? &part[np] : &extra;
        zmq_msg_init(m);
        if (zmq_msg_recv(m, n->sec.zap, 0) < 0) {
            zmq_msg_close(m);
            break;
        }
        more = zmq_msg_more(m);
        np++;
        if (m == &extra)
            zmq_msg_close(&extra); /* more parts than any request has */
    }
    if (np >= 7 && np <= ZAP_PARTS_MAX) {
        char addr[64];
        snprintf(addr, sizeof addr, "%.*s", (int)zmq_msg_size(&part[3]),
                 (const char *)zmq_msg_data(&part[3]));
        bool curve = zmq_msg_size(&part[5]) == 5 && memcmp(zmq_msg_data(&part[5]), "CURVE", 5) == 0;
        const char *who = curve ? key_owner(n, zmq_msg_data(&part[2]), zmq_msg_size(&part[2]),
                                            zmq_msg_data(&part[6]), zmq_msg_size(&part[6]))
                                : NULL;
        if (who) {
            zap_reply(n->sec.zap, &part[1], "200", "OK", who);
        } else {
            char key[CERT_Z85_BYTES + 1] = "?";
            if (curve && zmq_msg_size(&part[6]) == 32)
                zmq_z85_encode(key, zmq_msg_data(&part[6]), 32);
            n->stats.auth_refused++;
            RKV_WARN("node", "%s: refused a %.*s connection from %s: key %s is not allowed",
                     n->me->id, (int)zmq_msg_size(&part[2]), (const char *)zmq_msg_data(&part[2]),
                     addr, key);
            zap_reply(n->sec.zap, &part[1], "400", "key not allowed", "");
        }
    } else if (np >= 2) {
        zap_reply(n->sec.zap, &part[1], "500", "malformed ZAP request", "");
    }
    for (int i = 0; i < np && i < ZAP_PARTS_MAX; i++)
        zmq_msg_close(&part[i]);
}

void security_on_zap(struct node *n)
{
    for (int k = 0; k < NODE_BATCH_PER_SOCKET; k++) {
        zmq_pollitem_t it = {.socket = n->sec.zap, .events = ZMQ_POLLIN};
        if (zmq_poll(&it, 1, 0) <= 0)
            return;
        zap_one(n);
    }
}

bool security_peer_ok(struct node *n, void *payload, const void *rid, size_t rid_len)
{
    if (!n->sec.curve)
        return true;
    const char *user = zmq_msg_gets(payload, "User-Id");
    if (user && strlen(user) == rid_len && memcmp(user, rid, rid_len) == 0)
        return true;
    n->stats.auth_refused++;
    RKV_WARN("node", "%s: dropped a message from a peer claiming to be %.*s with the key of %s",
             n->me->id, (int)(rid_len < 64 ? rid_len : 64), (const char *)rid,
             user ? user : "nobody");
    return false;
}
