/*
 * cli.c: the ringkv command line, a thin layer over libringkv.
 *
 * Output is made for scripts: `get` prints each sibling's value followed by
 * a newline; -v prints tab-separated "name<TAB>value" lines instead (values
 * escaped), including the context to pass back with -x. Exit codes are in
 * usage().
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/ringkv.h"
#include "common/alloc.h"
#include "common/cert.h"
#include "common/config.h"
#include "common/limits.h"
#include "ring/ring.h"

enum exit_code {
    EXIT_OK = 0,
    EXIT_NOTFOUND = 1,
    EXIT_USAGE = 2,
    EXIT_UNAVAILABLE = 3, /* quorum not reached, timeout, no node reachable */
    EXIT_ERROR = 4,
};

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: ringkv [OPTIONS] COMMAND [ARGS]\n"
        "\n"
        "Commands:\n"
        "  get KEY            print the value (each sibling on its own line)\n"
        "  put KEY VALUE      write VALUE (\"-\" reads it from stdin)\n"
        "  del KEY            delete KEY\n"
        "  ring               the nodes and which partitions each owns\n"
        "  plan add ID[/VNODES] | plan remove ID\n"
        "                     which partitions would change replicas if ID joined (with\n"
        "                     VNODES tokens, default the ring's) or left, and where their\n"
        "                     copies would go; changes nothing\n"
        "  stats [NODE]       statistics of NODE, or of every node\n"
        "  leave NODE [--force]\n"
        "                     NODE hands its partitions to the others, then stops;\n"
        "                     refused while another ring change is under way, unless\n"
        "                     --force\n"
        "  remove NODE        declare NODE (down for good) gone; its partitions are\n"
        "                     rebuilt from the other replicas\n"
        "  ping [NODE]        round trip to NODE, or to every node\n"
        "  keygen NAME [--dir DIR] [--force]\n"
        "                     make a CurveZMQ key pair: DIR/NAME.key (public) and\n"
        "                     DIR/NAME.key_secret (mode 0600); DIR defaults to the\n"
        "                     cluster file's security.keys_dir\n"
        "  keygen --cluster   make every missing key pair the cluster file needs: one\n"
        "                     per node, and \"client\" (allowed in KEYS_DIR/clients/)\n"
        "\n"
        "Options:\n"
        "  -c, --config FILE     the cluster file (default $RINGKV_CONFIG, else ./cluster.toml)\n"
        "  -s, --seed [ID@]HOST:PORT  a node's client address; overrides --config\n"
        "  -k, --keys-dir DIR    the nodes' public keys (CurveZMQ); with --seed, turns it on\n"
        "      --key FILE        this client's secret key (default: $RINGKV_CLIENT_KEY,\n"
        "                        KEYS_DIR/client.key_secret, ~/.config/ringkv/client.key_secret)\n"
        "  -r N, -w N            read / write quorum for this request (1..N)\n"
        "  -t, --timeout MS      request deadline\n"
        "      --ttl MS          put: the value expires after MS milliseconds\n"
        "  -x, --context HEX     put/del: supersede what this context (from get -v) covers\n"
        "      --primary         put/del: only the key's own replicas count toward -w, not\n"
        "                        fallbacks standing in for a replica that is down (PW)\n"
        "  -v, --verbose         print name<TAB>value lines: status, context, each\n"
        "                        sibling (ts, expiry, escaped value), answered, fallbacks,\n"
        "                        repaired\n"
        "  -h, --help\n"
        "\n"
        "Without -x, put adds a sibling if the key exists with another value;\n"
        "del removes what exists when it runs.\n"
        "\n"
        "Exit status: 0 success, 1 not found, 2 bad usage, 3 quorum not reached or no\n"
        "node answered in time, 4 any other error (the message says which).\n");
}

static int exit_for(int rc)
{
    switch (rc) {
    case RINGKV_OK:
        return EXIT_OK;
    case RINGKV_ENOTFOUND:
        return EXIT_NOTFOUND;
    case RINGKV_EINVAL:
        return EXIT_USAGE;
    case RINGKV_EQUORUM:
    case RINGKV_ETIMEOUT:
    case RINGKV_EUNAVAILABLE:
        return EXIT_UNAVAILABLE;
    default:
        return EXIT_ERROR;
    }
}

static void print_escaped(const void *p, size_t len)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\\')
            fputs("\\\\", stdout);
        else if (s[i] == '\t')
            fputs("\\t", stdout);
        else if (s[i] == '\n')
            fputs("\\n", stdout);
        else if (s[i] < 0x20 || s[i] >= 0x7f)
            printf("\\x%02x", s[i]);
        else
            putchar(s[i]);
    }
}

static void print_hex(const void *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        printf("%02x", ((const unsigned char *)p)[i]);
}

static int hex_digit(char c)
{
    return c <= '9' ? c - '0' : tolower((unsigned char)c) - 'a' + 10;
}

/* Decodes --context HEX into *out (rkv_malloc'd): 0, else an exit status
 * after saying why on stderr. */
static int parse_hex(const char *s, unsigned char **out, size_t *len)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++) {
        if (n % 2 || !isxdigit((unsigned char)s[i])) {
            fprintf(stderr, "ringkv: --context wants hex digits\n");
            return EXIT_USAGE;
        }
    }
    *out = rkv_malloc(n / 2 + 1);
    if (*out == NULL) {
        fprintf(stderr, "ringkv: out of memory for a --context of %zu bytes\n", n / 2);
        return EXIT_ERROR;
    }
    for (size_t i = 0; i < n / 2; i++)
        (*out)[i] = (unsigned char)(hex_digit(s[2 * i]) << 4 | hex_digit(s[2 * i + 1]));
    *len = n / 2;
    return 0;
}

static void print_result(const struct ringkv_result *r, int rc, bool verbose)
{
    if (!verbose) {
        for (size_t i = 0; i < r->n_siblings; i++) {
            fwrite(r->siblings[i].value, 1, r->siblings[i].value_len, stdout);
            putchar('\n');
        }
        return;
    }
    printf("status\t%s\n", rc == RINGKV_OK ? "ok" : ringkv_strerror(rc));
    if (r->context) {
        printf("context\t");
        print_hex(r->context, r->context_len);
        putchar('\n');
    }
    printf("siblings\t%zu\n", r->n_siblings);
    for (size_t i = 0; i < r->n_siblings; i++) {
        printf("sibling\t%llu\t%llu\t", (unsigned long long)r->siblings[i].ts_ms,
               (unsigned long long)r->siblings[i].expiry_ms);
        print_escaped(r->siblings[i].value, r->siblings[i].value_len);
        putchar('\n');
    }
    printf("answered\t");
    for (size_t i = 0; i < r->n_answered; i++)
        printf("%s%s", i ? "," : "", r->answered[i]);
    if (r->n_fallbacks) {
        printf("\nfallbacks\t");
        for (size_t i = 0; i < r->n_fallbacks; i++)
            printf("%s%s>%s", i ? "," : "", r->fallbacks[i], r->fallback_for[i]);
    }
    printf("\nrepaired\t%s\n", r->repaired ? "yes" : "no");
    if (r->node)
        printf("coordinator\t%s\n", r->node);
}

/* Reads the value of `put KEY -` (rkv_malloc'd), at most one byte more
 * than a value may hold; NULL after saying why on stderr. */
static char *read_stdin(size_t *len)
{
    const size_t cap_max = (size_t)RKV_VALUE_BYTES_MAX + 1;
    size_t cap = 4096, n = 0;
    char *buf = rkv_malloc(cap);
    while (buf != NULL && n < cap_max) {
        if (n == cap) {
            cap = cap * 2 < cap_max ? cap * 2 : cap_max;
            char *more = rkv_realloc(buf, cap);
            if (more == NULL)
                rkv_free(buf);
            buf = more;
            continue;
        }
        size_t got = fread(buf + n, 1, cap - n, stdin);
        if (got == 0)
            break;
        n += got;
    }
    if (buf == NULL) {
        fprintf(stderr, "ringkv: out of memory reading the value from stdin (%zu bytes read)\n", n);
        return NULL;
    }
    if (ferror(stdin))
        fprintf(stderr, "ringkv: reading the value from stdin: %s\n", strerror(errno));
    else if (n > RKV_VALUE_BYTES_MAX)
        fprintf(stderr, "ringkv: the value on stdin is over %u bytes\n", RKV_VALUE_BYTES_MAX);
    if (ferror(stdin) || n > RKV_VALUE_BYTES_MAX) {
        rkv_free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

static void print_stat(void *ctx, const char *name, uint64_t value)
{
    printf("%s\t%s\t%llu\n", (const char *)ctx, name, (unsigned long long)value);
}

/* keygen NAME [--dir DIR] [--force] | keygen --cluster: no connection. */
static int cmd_keygen(const char *config_path, int argc, char **argv)
{
    const char *name = NULL, *dir = NULL;
    bool force = false, cluster = false;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--force") == 0)
            force = true;
        else if (strcmp(argv[i], "--cluster") == 0)
            cluster = true;
        else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
            dir = argv[++i];
        else if (argv[i][0] != '-' && name == NULL)
            name = argv[i];
        else {
            fprintf(stderr, "ringkv: keygen: unexpected \"%s\"\n", argv[i]);
            return EXIT_USAGE;
        }
    }
    if (cluster == (name != NULL)) {
        fprintf(stderr, "ringkv: keygen wants a NAME or --cluster\n");
        return EXIT_USAGE;
    }
    struct config *cfg = NULL;
    struct rkv_error err = {0};
    if ((cluster || dir == NULL) && config_load(config_path, &cfg, &err) != RKV_OK) {
        fprintf(stderr, "ringkv: %s\n", err.msg);
        return EXIT_ERROR;
    }
    const char *keys = dir ? dir : cfg->keys_dir;
    int rc = RKV_OK;
    if (!cluster) {
        struct cert c;
        rc = cert_generate(name, &c, &err);
        if (rc == RKV_OK)
            rc = cert_save(&c, keys, force, &err);
        if (rc == RKV_OK)
            printf("%s/%s.key\n%s/%s.key_secret\n", keys, name, keys, name);
    } else {
        char path[CONFIG_PATH_BYTES + 128], clients[CONFIG_PATH_BYTES + 16];
        snprintf(clients, sizeof clients, "%s/clients", keys);
        for (size_t i = 0; rc == RKV_OK && i <= cfg->n_nodes; i++) {
            const char *who = i < cfg->n_nodes ? cfg->nodes[i].id : "client";
            snprintf(path, sizeof path, "%s/%s.key_secret", keys, who);
            FILE *f = fopen(path, "r");
            if (f) {
                fclose(f);
                continue; /* already there: never replace a key */
            }
            struct cert c;
            rc = cert_generate(who, &c, &err);
            if (rc == RKV_OK)
                rc = cert_save(&c, keys, false, &err);
            if (rc == RKV_OK && i == cfg->n_nodes)
                rc = cert_save_public(&c, clients, false, &err);
            if (rc == RKV_OK)
                printf("made %s\n", path);
        }
    }
    config_free(cfg);
    if (rc != RKV_OK) {
        fprintf(stderr, "ringkv: %s\n", err.msg);
        return rc == RKV_ERR_EXISTS ? EXIT_USAGE : EXIT_ERROR;
    }
    return EXIT_OK;
}

/* ---- commands that talk to the ring ---- */

/* What the options said. */
struct cli {
    struct ringkv_options o;
    struct ringkv_request_options ro;
    bool verbose;
    unsigned char *ctx; /* --context's bytes, which ro.context points to; owned */
};

/* Says on stderr what went wrong in a command on c, and turns its code
 * into the exit status. */
static int report(struct ringkv_client *c, int rc, bool verbose)
{
    if (rc != RINGKV_OK && rc != RINGKV_ENOTFOUND)
        fprintf(stderr, "ringkv: %s\n", ringkv_errmsg(c));
    else if (rc == RINGKV_ENOTFOUND && !verbose)
        fprintf(stderr, "ringkv: not found\n");
    return exit_for(rc);
}

/* Each command returns the exit status. */
static int cmd_get(const struct cli *cli, struct ringkv_client *c, int nargs, char **args)
{
    (void)nargs;
    struct ringkv_result res;
    int rc = ringkv_get(c, args[0], strlen(args[0]), &cli->ro, &res);
    if (rc == RINGKV_OK || cli->verbose)
        print_result(&res, rc, cli->verbose);
    ringkv_result_free(&res);
    return report(c, rc, cli->verbose);
}

static int cmd_put(const struct cli *cli, struct ringkv_client *c, int nargs, char **args)
{
    (void)nargs;
    char *value = args[1];
    size_t vlen = strlen(value);
    bool from_stdin = strcmp(value, "-") == 0;
    if (from_stdin && (value = read_stdin(&vlen)) == NULL)
        return EXIT_ERROR;
    struct ringkv_result res;
    int rc = ringkv_put(c, args[0], strlen(args[0]), value, vlen, &cli->ro, &res);
    if (from_stdin)
        rkv_free(value);
    if (cli->verbose)
        print_result(&res, rc, true);
    ringkv_result_free(&res);
    return report(c, rc, cli->verbose);
}

static int cmd_del(const struct cli *cli, struct ringkv_client *c, int nargs, char **args)
{
    (void)nargs;
    struct ringkv_result res;
    int rc = ringkv_del(c, args[0], strlen(args[0]), &cli->ro, &res);
    if (cli->verbose)
        print_result(&res, rc, true);
    ringkv_result_free(&res);
    return report(c, rc, cli->verbose);
}

struct handoff_view {
    uint64_t pending, partition, sent, acked, dropped;
};

static void take_handoff(void *ctx, const char *name, uint64_t v)
{
    struct handoff_view *h = ctx;
    if (strcmp(name, "handoff_partitions_pending") == 0)
        h->pending = v;
    else if (strcmp(name, "handoff_partition") == 0)
        h->partition = v;
    else if (strcmp(name, "handoff_keys_sent") == 0)
        h->sent = v;
    else if (strcmp(name, "handoff_keys_acked") == 0)
        h->acked = v;
    else if (strcmp(name, "handoff_keys_dropped") == 0)
        h->dropped = v;
}

/* Member i of the ring's, then of those outside it (joining, leaving). */
static const struct ringkv_node_info *info_member(const struct ringkv_ring_info *info, size_t i)
{
    return i < info->n_nodes ? &info->nodes[i] : &info->others[i - info->n_nodes];
}

static size_t info_members(const struct ringkv_ring_info *info)
{
    return info->n_nodes + info->n_others;
}

static int cmd_ring(const struct cli *cli, struct ringkv_client *c, int nargs, char **args)
{
    (void)nargs;
    (void)args;
    struct ringkv_ring_info info;
    int rc = ringkv_ring(c, &info);
    if (rc != RINGKV_OK)
        return report(c, rc, cli->verbose);
    printf("ring\t%s\tepoch %016llx\tpartitions %u\treplicas %u\tr %u\tw %u\n", info.name,
           (unsigned long long)info.epoch, info.partitions, info.replicas, info.read_quorum,
           info.write_quorum);
    for (size_t i = 0; i < info.n_nodes; i++) {
        const struct ringkv_node_info *n = &info.nodes[i];
        printf("node\t%s\t%s:%u\tcluster %u\tvnodes %u\towns %u\n", n->id, n->host, n->client_port,
               n->cluster_port, n->vnodes, n->partitions_owned);
    }
    for (size_t i = 0; i < info.n_others; i++) {
        const struct ringkv_node_info *n = &info.others[i];
        printf("node\t%s\t%s:%u\tcluster %u\t%s\n", n->id, n->host, n->client_port,
               n->cluster_port, n->status);
    }
    /* handoffs in progress, as each member reports them (info is lent by c
     * until the next call on it: each round takes it afresh, as on_nodes) */
    uint32_t partitions = info.partitions;
    for (size_t i = 0; ringkv_ring(c, &info) == RINGKV_OK && i < info_members(&info); i++) {
        char id[RKV_NODE_ID_BYTES_MAX + 1];
        snprintf(id, sizeof id, "%s", info_member(&info, i)->id);
        struct handoff_view h = {0};
        if (ringkv_stats(c, id, take_handoff, &h) == RINGKV_OK && h.pending > 0)
            printf("handoff\t%s\tpartitions left %llu\tstreaming %llu\tkeys sent %llu\t"
                   "acknowledged %llu\tdropped %llu\n",
                   id, (unsigned long long)h.pending, (unsigned long long)h.partition,
                   (unsigned long long)h.sent, (unsigned long long)h.acked,
                   (unsigned long long)h.dropped);
    }
    for (uint32_t p = 0; p < partitions; p++) {
        const char *ids[RKV_REPLICAS_MAX];
        size_t n = ringkv_preflist(c, p, ids, RKV_REPLICAS_MAX);
        printf("partition\t%u\t", p);
        for (size_t i = 0; i < n; i++)
            printf("%s%s", i ? "," : "", ids[i]);
        putchar('\n');
    }
    return EXIT_OK;
}

/* The ring of info's members, with `add` (vnodes) added or `drop` left out. */
static int plan_ring(const struct ringkv_ring_info *info, const char *add, uint32_t vnodes,
                     const char *drop, struct ring **out)
{
    struct ring_member m[RKV_NODES_MAX + 1];
    size_t n = 0;
    for (size_t i = 0; i < info->n_nodes && n < RKV_NODES_MAX; i++)
        if (drop == NULL || strcmp(info->nodes[i].id, drop) != 0)
            m[n++] = (struct ring_member){.id = info->nodes[i].id, .vnodes = info->nodes[i].vnodes};
    if (add != NULL)
        m[n++] = (struct ring_member){.id = add, .vnodes = vnodes};
    struct rkv_error err = {0};
    int rc = ring_new(m, n, info->partitions, info->replicas, out, &err);
    if (rc != RKV_OK)
        fprintf(stderr, "ringkv: plan: %s\n", err.msg[0] ? err.msg : rkv_strerror(rc));
    return rc;
}

/*
 * plan add ID[/VNODES], plan remove ID: the preference lists of the ring
 * as it is and as it would be, compared partition by partition. Prints
 *   plan      add|remove ID, the members before and after
 *   partition P  OLD -> NEW  +gained,-lost   (only those that change)
 *   node      ID  replicas BEFORE -> AFTER
 *   moves     partitions changed, replica copies to stream
 */
static int cmd_plan(const struct cli *cli, struct ringkv_client *c, int nargs, char **args)
{
    (void)cli;
    bool add = strcmp(args[0], "add") == 0;
    if ((!add && strcmp(args[0], "remove") != 0) || nargs != 2) {
        fprintf(stderr, "ringkv: plan add ID[/VNODES] or plan remove ID\n");
        return EXIT_USAGE;
    }
    struct ringkv_ring_info info;
    int rc = ringkv_ring(c, &info);
    if (rc != RINGKV_OK)
        return report(c, rc, false);
    char id[RKV_NODE_ID_BYTES_MAX + 1];
    uint32_t vnodes = info.n_nodes ? info.nodes[0].vnodes : 64;
    const char *slash = strchr(args[1], '/');
    size_t id_len = slash ? (size_t)(slash - args[1]) : strlen(args[1]);
    if (id_len == 0 || id_len > RKV_NODE_ID_BYTES_MAX || (slash && !add)) {
        fprintf(stderr, "ringkv: plan: bad node \"%s\"\n", args[1]);
        return EXIT_USAGE;
    }
    memcpy(id, args[1], id_len);
    id[id_len] = '\0';
    if (slash) {
        char *end;
        unsigned long v = strtoul(slash + 1, &end, 10);
        if (*end != '\0' || v == 0 || v > RKV_VNODES_MAX) {
            fprintf(stderr, "ringkv: plan: vnodes must be 1..%u\n", RKV_VNODES_MAX);
            return EXIT_USAGE;
        }
        vnodes = (uint32_t)v;
    }
    bool member = false;
    for (size_t i = 0; i < info.n_nodes; i++)
        member |= strcmp(info.nodes[i].id, id) == 0;
    if (member == add) {
        fprintf(stderr, "ringkv: plan: \"%s\" is %s member of the ring\n", id,
                add ? "already a" : "not a");
        return EXIT_USAGE;
    }
    struct ring *before = NULL, *after = NULL;
    rc = plan_ring(&info, NULL, 0, NULL, &before);
    if (rc == RKV_OK)
        rc = plan_ring(&info, add ? id : NULL, vnodes, add ? NULL : id, &after);
    if (rc != RKV_OK) {
        ring_free(before);
        return EXIT_USAGE;
    }
    printf("plan\t%s %s\tmembers %u -> %u\n", add ? "add" : "remove", id, ring_member_count(before),
           ring_member_count(after));
    /* replicas held per member id, before and after */
    uint32_t held_before[RKV_NODES_MAX + 1] = {0}, held_after[RKV_NODES_MAX + 1] = {0};
    const char *names[RKV_NODES_MAX + 1];
    uint32_t n_names = ring_member_count(after);
    for (uint32_t i = 0; i < n_names; i++)
        names[i] = ring_member_id(after, i);
    if (!add)
        names[n_names++] = id;
    uint64_t changed = 0, copies = 0;
    for (uint32_t p = 0; p < info.partitions; p++) {
        const uint32_t *pb = ring_preflist(before, p), *pa = ring_preflist(after, p);
        uint32_t nb = ring_replicas(before), na = ring_replicas(after);
        char gained[512] = "", lost[512] = "";
        size_t gl = 0, ll = 0;
        for (uint32_t i = 0; i < na; i++) {
            const char *x = ring_member_id(after, pa[i]);
            bool was = false;
            for (uint32_t j = 0; j < nb; j++)
                was |= strcmp(ring_member_id(before, pb[j]), x) == 0;
            if (!was && gl < sizeof gained - 80)
                gl += (size_t)snprintf(gained + gl, sizeof gained - gl, "%s+%s", gl ? "," : "", x);
            copies += !was;
        }
        for (uint32_t j = 0; j < nb; j++) {
            const char *x = ring_member_id(before, pb[j]);
            bool stays = false;
            for (uint32_t i = 0; i < na; i++)
                stays |= strcmp(ring_member_id(after, pa[i]), x) == 0;
            if (!stays && ll < sizeof lost - 80)
                ll += (size_t)snprintf(lost + ll, sizeof lost - ll, "%s-%s", ll ? "," : "", x);
        }
        for (uint32_t k = 0; k < n_names; k++) {
            for (uint32_t j = 0; j < nb; j++)
                held_before[k] += strcmp(ring_member_id(before, pb[j]), names[k]) == 0;
            for (uint32_t i = 0; i < na; i++)
                held_after[k] += strcmp(ring_member_id(after, pa[i]), names[k]) == 0;
        }
        if (gl == 0 && ll == 0)
            continue;
        changed++;
        printf("partition\t%u\t", p);
        for (uint32_t j = 0; j < nb; j++)
            printf("%s%s", j ? "," : "", ring_member_id(before, pb[j]));
        printf(" -> ");
        for (uint32_t i = 0; i < na; i++)
            printf("%s%s", i ? "," : "", ring_member_id(after, pa[i]));
        printf("\t%s%s%s\n", gained, gl && ll ? "," : "", lost);
    }
    for (uint32_t k = 0; k < n_names; k++)
        printf("node\t%s\treplicas %u -> %u\n", names[k], held_before[k], held_after[k]);
    printf("moves\t%llu of %u partitions change replicas; %llu replica copies to stream\n",
           (unsigned long long)changed, info.partitions, (unsigned long long)copies);
    ring_free(before);
    ring_free(after);
    return EXIT_OK;
}

/* ping or stats on one node, or on each: the worst code. */
static int on_nodes(struct ringkv_client *c, bool ping, const char *node)
{
    struct ringkv_ring_info info;
    int rc = ringkv_ring(c, &info), worst = RINGKV_OK;
    if (rc != RINGKV_OK)
        return rc;
    bool known = node == NULL;
    for (size_t i = 0; i < info_members(&info) && !known; i++)
        known = strcmp(info_member(&info, i)->id, node) == 0;
    if (!known) {
        fprintf(stderr, "ringkv: no node \"%s\" in the ring\n", node);
        return RINGKV_EINVAL;
    }
    /* info is lent by c until the next call on it: each round takes it
     * afresh and copies the id it uses */
    for (size_t i = 0; ringkv_ring(c, &info) == RINGKV_OK && i < info_members(&info); i++) {
        char id[RKV_NODE_ID_BYTES_MAX + 1];
        snprintf(id, sizeof id, "%s", info_member(&info, i)->id);
        if (node && strcmp(node, id) != 0)
            continue;
        if (ping) {
            uint64_t rtt = 0;
            rc = ringkv_ping(c, id, &rtt);
            if (rc == RINGKV_OK)
                printf("%s\tok\t%llu us\n", id, (unsigned long long)rtt);
            else
                printf("%s\t%s\t%s\n", id, ringkv_strerror(rc), ringkv_errmsg(c));
        } else {
            rc = ringkv_stats(c, id, print_stat, id);
            if (rc != RINGKV_OK)
                printf("%s\terror\t%s\n", id, ringkv_errmsg(c));
        }
        if (rc != RINGKV_OK)
            worst = rc;
    }
    return worst;
}

static int cmd_ping(const struct cli *cli, struct ringkv_client *c, int nargs, char **args)
{
    return report(c, on_nodes(c, true, nargs ? args[0] : NULL), cli->verbose);
}

static int cmd_stats(const struct cli *cli, struct ringkv_client *c, int nargs, char **args)
{
    return report(c, on_nodes(c, false, nargs ? args[0] : NULL), cli->verbose);
}

/* Prints what the node said of a membership change. */
static int member_report(const struct cli *cli, struct ringkv_client *c, int rc,
                         const char *msg)
{
    if (rc == RINGKV_OK)
        printf("%s\n", msg);
    return report(c, rc, cli->verbose);
}

static int cmd_leave(const struct cli *cli, struct ringkv_client *c, int nargs, char **args)
{
    unsigned flags = 0;
    if (nargs == 2) {
        if (strcmp(args[1], "--force") != 0) {
            fprintf(stderr, "ringkv: leave NODE [--force], not \"%s\"\n", args[1]);
            return EXIT_USAGE;
        }
        flags = RINGKV_LEAVE_FORCE;
    }
    char msg[256];
    return member_report(cli, c, ringkv_leave(c, args[0], flags, msg, sizeof msg), msg);
}

static int cmd_remove(const struct cli *cli, struct ringkv_client *c, int nargs, char **args)
{
    (void)nargs;
    char msg[256];
    return member_report(cli, c, ringkv_remove(c, args[0], msg, sizeof msg), msg);
}

struct command {
    const char *name;
    int args_min, args_max;
    int (*run)(const struct cli *cli, struct ringkv_client *c, int nargs, char **args);
};

static const struct command commands[] = {
    {.name = "get", .args_min = 1, .args_max = 1, .run = cmd_get},
    {.name = "put", .args_min = 2, .args_max = 2, .run = cmd_put},
    {.name = "del", .args_min = 1, .args_max = 1, .run = cmd_del},
    {.name = "ring", .args_min = 0, .args_max = 0, .run = cmd_ring},
    {.name = "plan", .args_min = 2, .args_max = 2, .run = cmd_plan},
    {.name = "stats", .args_min = 0, .args_max = 1, .run = cmd_stats},
    {.name = "ping", .args_min = 0, .args_max = 1, .run = cmd_ping},
    {.name = "leave", .args_min = 1, .args_max = 2, .run = cmd_leave},
    {.name = "remove", .args_min = 1, .args_max = 1, .run = cmd_remove},
};

/* The command `name` if it takes nargs arguments, else NULL. */
static const struct command *command_find(const char *name, int nargs)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        const struct command *cmd = &commands[i];
        if (strcmp(cmd->name, name) == 0)
            return nargs >= cmd->args_min && nargs <= cmd->args_max ? cmd : NULL;
    }
    return NULL;
}

/* Runs the command `name`: keygen on its own, the others on a connection. */
static int dispatch(const struct cli *cli, const char *name, int nargs, char **args)
{
    if (strcmp(name, "keygen") == 0)
        return cmd_keygen(cli->o.config_path ? cli->o.config_path : "cluster.toml", nargs, args);
    const struct command *cmd = command_find(name, nargs);
    if (cmd == NULL) {
        fprintf(stderr, "ringkv: bad command or arguments: %s\n", name);
        usage(stderr);
        return EXIT_USAGE;
    }
    struct ringkv_client *c;
    int rc = ringkv_connect(&cli->o, &c);
    if (rc != RINGKV_OK) {
        fprintf(stderr, "ringkv: %s\n", ringkv_errmsg(c));
        ringkv_close(c);
        return exit_for(rc);
    }
    int status = cmd->run(cli, c, nargs, args);
    ringkv_close(c);
    return status;
}

/* ---- options ---- */

#define CLI_GO_ON (-1) /* not an exit status: the options say to run the command */

enum { OPT_TTL = 256, OPT_KEY, OPT_PRIMARY };

static const struct option longopts[] = {
    {.name = "config", .has_arg = required_argument, .flag = NULL, .val = 'c'},
    {.name = "seed", .has_arg = required_argument, .flag = NULL, .val = 's'},
    {.name = "keys-dir", .has_arg = required_argument, .flag = NULL, .val = 'k'},
    {.name = "key", .has_arg = required_argument, .flag = NULL, .val = OPT_KEY},
    {.name = "timeout", .has_arg = required_argument, .flag = NULL, .val = 't'},
    {.name = "ttl", .has_arg = required_argument, .flag = NULL, .val = OPT_TTL},
    {.name = "context", .has_arg = required_argument, .flag = NULL, .val = 'x'},
    {.name = "primary", .has_arg = no_argument, .flag = NULL, .val = OPT_PRIMARY},
    {.name = "verbose", .has_arg = no_argument, .flag = NULL, .val = 'v'},
    {.name = "help", .has_arg = no_argument, .flag = NULL, .val = 'h'},
    {.name = NULL, .has_arg = 0, .flag = NULL, .val = 0},
};

/* Applies one option: CLI_GO_ON, or the exit status if it ends the run. */
static int apply_option(struct cli *cli, int opt, const char *arg)
{
    char *end = NULL;
    int rc;
    switch (opt) {
    case 'c':
        cli->o.config_path = arg;
        break;
    case 's':
        cli->o.seeds = arg;
        break;
    case 'k':
        cli->o.keys_dir = arg;
        break;
    case OPT_KEY:
        cli->o.client_key = arg;
        break;
    case 'r':
        cli->ro.r = (uint32_t)strtoul(arg, &end, 10);
        break;
    case 'w':
        cli->ro.w = (uint32_t)strtoul(arg, &end, 10);
        break;
    case 't':
        cli->ro.timeout_ms = (uint32_t)strtoul(arg, &end, 10);
        break;
    case OPT_TTL:
        cli->ro.ttl_ms = strtoull(arg, &end, 10);
        break;
    case 'x':
        rkv_free(cli->ctx);
        cli->ctx = NULL;
        if ((rc = parse_hex(arg, &cli->ctx, &cli->ro.context_len)) != 0)
            return rc;
        cli->ro.context = cli->ctx;
        break;
    case OPT_PRIMARY:
        cli->ro.primary_only = true;
        break;
    case 'v':
        cli->verbose = true;
        break;
    case 'h':
        usage(stdout);
        return EXIT_OK;
    default:
        usage(stderr);
        return EXIT_USAGE;
    }
    if (end && *end) {
        if (opt == OPT_TTL)
            fprintf(stderr, "ringkv: --ttl wants a number, not \"%s\"\n", arg);
        else
            fprintf(stderr, "ringkv: -%c wants a number, not \"%s\"\n", opt, arg);
        return EXIT_USAGE;
    }
    return CLI_GO_ON;
}

/* Reads the options up to the command (argv[optind]): CLI_GO_ON, or the
 * exit status if they end the run. */
static int parse_options(struct cli *cli, int argc, char **argv)
{
    ringkv_options_default(&cli->o);
    int opt, status = CLI_GO_ON;
    while (status == CLI_GO_ON &&
           (opt = getopt_long(argc, argv, "+c:s:k:r:w:t:x:vh", longopts, NULL)) != -1)
        status = apply_option(cli, opt, optarg);
    if (status == CLI_GO_ON && optind >= argc) {
        usage(stderr);
        status = EXIT_USAGE;
    }
    if (cli->o.seeds == NULL && cli->o.config_path == NULL)
        cli->o.config_path = getenv("RINGKV_CONFIG") ? getenv("RINGKV_CONFIG") : "cluster.toml";
    return status;
}

int main(int argc, char **argv)
{
    struct cli cli = {.verbose = false, .ctx = NULL};
    int status = parse_options(&cli, argc, argv);
    if (status == CLI_GO_ON)
        status = dispatch(&cli, argv[optind], argc - optind - 1, argv + optind + 1);
    rkv_free(cli.ctx);
    return status;
}
