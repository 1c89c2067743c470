/* cluster.c: starting, stopping and waiting for real ringkvd processes. */
#include "tests/support/cluster.h"

#include <check.h>
#include <errno.h>
#include <poll.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/cert.h"
#include "common/clock.h"
#include "tests/support/testutil.h"

#define EXIT_DEADLINE_MS 10000
#define READY_DEADLINE_MS 15000

const char *cluster_bin(const char *name)
{
    static char path[4096];
    const char *dir = getenv("RKV_BIN");
    snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : "build/bin", name);
    return path;
}

/* Ports nobody listens on now: bind port 0 on loopback and read it. The
 * sockets stay bound until ports_release, so that one cluster never gets
 * the same port twice. */
#define PORTS_MAX (3 * CLUSTER_NODES_MAX)
static int port_fds[PORTS_MAX];
static int n_port_fds;

static uint16_t free_port(void)
{
    ck_assert_int_lt(n_port_fds, PORTS_MAX);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    port_fds[n_port_fds++] = fd;
    return ntohs(a.sin_port);
}

static void ports_release(void)
{
    while (n_port_fds > 0)
        close(port_fds[--n_port_fds]);
}

/* A key pair for every node and the client, as `ringkv keygen --cluster`. */
static void make_keys(struct cluster *c)
{
    struct rkv_error err;
    char clients[4200];
    snprintf(clients, sizeof clients, "%s/clients", c->keys);
    for (int i = 0; i <= c->n; i++) {
        struct cert k;
        ck_assert_int_eq(cert_generate(i < c->n ? c->id[i] : "client", &k, &err), RKV_OK);
        ck_assert_msg(cert_save(&k, c->keys, false, &err) == RKV_OK, "%s", err.msg);
        if (i == c->n)
            ck_assert_msg(cert_save_public(&k, clients, false, &err) == RKV_OK, "%s", err.msg);
    }
}

static void write_node(const struct cluster *c, FILE *f, int i)
{
    fprintf(f, "\n[[node]]\nid = \"%s\"\nhost = \"127.0.0.1\"\nclient_port = %u\n"
               "cluster_port = %u\ndata_dir = \"data/%s\"\n",
            c->id[i], c->client_port[i], c->cluster_port[i], c->id[i]);
    if (c->resp_port[i])
        fprintf(f, "resp_port = %u\n", c->resp_port[i]);
}

/* The spares' [[node]] tables, once the ring has started without them. */
static void add_spares(struct cluster *c, int spares)
{
    FILE *f = fopen(c->config, "a");
    ck_assert_ptr_nonnull(f);
    for (int i = c->n - spares; i < c->n; i++)
        write_node(c, f, i);
    fclose(f);
}

static void write_config(struct cluster *c, const struct cluster_opts *o)
{
    const char *extra_cluster = o->extra_cluster, *extra_limits = o->extra_limits;
    bool resp = o->resp;
    snprintf(c->config, sizeof c->config, "%s/cluster.toml", c->dir);
    snprintf(c->keys, sizeof c->keys, "%s/keys", c->dir);
    FILE *f = fopen(c->config, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "[cluster]\nname = \"test\"\npartitions = 64\nreplicas = 3\n"
               "read_quorum = 2\nwrite_quorum = 2\nvnodes = 32\nrequest_timeout_ms = 1000\n%s\n"
               "[limits]\nvalue_bytes_max = 2097152\nobject_bytes_max = 3145728\n"
               "message_bytes_max = 7340032\n%s\n"
               "[log]\nlevel = \"info\"\n[security]\nmode = \"%s\"\nkeys_dir = \"keys\"\n",
            extra_cluster ? extra_cluster : "", extra_limits ? extra_limits : "",
            c->plain ? "none" : "curve");
    if (o->extra_resp)
        fprintf(f, "[resp]\n%s\n", o->extra_resp);
    if (o->extra_tables)
        fprintf(f, "%s\n", o->extra_tables);
    for (int i = 0; i < c->n; i++) {
        snprintf(c->id[i], sizeof c->id[i], "n%d", i + 1);
        c->client_port[i] = free_port();
        c->cluster_port[i] = free_port();
        if (resp)
            c->resp_port[i] = free_port();
        if (i < c->n - o->spares)
            write_node(c, f, i);
    }
    fclose(f);
    ports_release();
    if (!c->plain)
        make_keys(c);
}

static void node_exec(struct cluster *c, int i, int via)
{
    char log[4200];
    snprintf(log, sizeof log, "%s/%s.log", c->dir, c->id[i]);
    pid_t parent = getpid();
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        /* if the test process dies (a failed assertion), its nodes die too */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, STDERR_FILENO);
            dup2(fd, STDOUT_FILENO);
            close(fd);
        }
        char join[64];
        snprintf(join, sizeof join, "127.0.0.1:%u", via >= 0 ? c->cluster_port[via] : 0);
        if (via >= 0)
            execl(cluster_bin("ringkvd"), "ringkvd", "--config", c->config, "--node", c->id[i],
                  "--join", join, (char *)NULL);
        else
            execl(cluster_bin("ringkvd"), "ringkvd", "--config", c->config, "--node", c->id[i],
                  (char *)NULL);
        fprintf(stderr, "exec %s: %s\n", cluster_bin("ringkvd"), strerror(errno));
        _exit(127);
    }
    c->pid[i] = pid;
}

void cluster_node_start(struct cluster *c, int i)
{
    node_exec(c, i, -1);
}

void cluster_node_join(struct cluster *c, int i, int via)
{
    node_exec(c, i, via);
}

struct ready_ctx {
    struct cluster *c;
    int i;
    struct ringkv_client *client;
};

static bool node_ready(void *arg)
{
    struct ready_ctx *r = arg;
    int status;
    if (waitpid(r->c->pid[r->i], &status, WNOHANG) == r->c->pid[r->i]) {
        r->c->pid[r->i] = 0;
        ck_abort_msg("node %s exited during startup (see %s/%s.log)", r->c->id[r->i], r->c->dir,
                     r->c->id[r->i]);
    }
    if (r->client == NULL) {
        struct ringkv_options o;
        ringkv_options_default(&o);
        char seed[64];
        snprintf(seed, sizeof seed, "%s@127.0.0.1:%u", r->c->id[r->i], r->c->client_port[r->i]);
        o.seeds = seed;
        if (!r->c->plain) {
            char key[4200];
            snprintf(key, sizeof key, "%s/client.key_secret", r->c->keys);
            o.keys_dir = r->c->keys;
            o.client_key = key;
            o.connect_timeout_ms = 300;
            if (ringkv_connect(&o, &r->client) != RINGKV_OK) {
                ringkv_close(r->client);
                r->client = NULL;
                return false;
            }
            return ringkv_ping(r->client, r->c->id[r->i], NULL) == RINGKV_OK;
        }
        o.connect_timeout_ms = 300;
        if (ringkv_connect(&o, &r->client) != RINGKV_OK) {
            ringkv_close(r->client);
            r->client = NULL;
            return false;
        }
    }
    return ringkv_ping(r->client, r->c->id[r->i], NULL) == RINGKV_OK;
}

struct link_ctx {
    struct cluster *c;
    struct ringkv_client *client;
    const char *name;
    uint64_t value;
};

static void grab(void *arg, const char *name, uint64_t value)
{
    struct link_ctx *l = arg;
    if (strcmp(name, "peers_connected") == 0)
        l->value = value;
}

/* Every running node is connected to every other running node. */
static bool all_linked(void *arg)
{
    struct link_ctx *l = arg;
    int running = 0;
    for (int j = 0; j < l->c->n; j++)
        running += l->c->pid[j] > 0;
    for (int j = 0; j < l->c->n; j++) {
        if (l->c->pid[j] <= 0)
            continue;
        l->value = UINT64_MAX;
        if (ringkv_stats(l->client, l->c->id[j], grab, l) != RINGKV_OK ||
            l->value != (uint64_t)(running - 1))
            return false;
    }
    return true;
}

void cluster_wait_ready(struct cluster *c, int i, uint32_t deadline_ms)
{
    struct ready_ctx r = {.c = c, .i = i};
    char what[64];
    snprintf(what, sizeof what, "node %s to answer a ping", c->id[i]);
    wait_for(node_ready, &r, deadline_ms, what);
    struct link_ctx l = {.c = c, .client = r.client};
    wait_for(all_linked, &l, deadline_ms, "every running node to connect to every other");
    ringkv_close(r.client);
}

void cluster_start_opts(struct cluster *c, const struct cluster_opts *o)
{
    memset(c, 0, sizeof *c);
    c->n = o->n;
    c->plain = o->plain;
    c->dir = test_mkdtemp("cluster");
    write_config(c, o);
    for (int i = 0; i < c->n - o->spares; i++)
        cluster_node_start(c, i);
    for (int i = 0; i < c->n - o->spares; i++)
        cluster_wait_ready(c, i, READY_DEADLINE_MS);
    if (o->spares)
        add_spares(c, o->spares);
}

void cluster_start(struct cluster *c, int n, const char *extra_cluster, const char *extra_limits)
{
    struct cluster_opts o = {.n = n, .extra_cluster = extra_cluster, .extra_limits = extra_limits};
    cluster_start_opts(c, &o);
}

struct exit_ctx {
    pid_t pid;
    int status;
};

static bool exited(void *arg)
{
    struct exit_ctx *e = arg;
    pid_t r = waitpid(e->pid, &e->status, WNOHANG);
    return r == e->pid || (r < 0 && errno == ECHILD);
}

/* A node asked to stop must exit 0: a sanitizer report (a leak, an error)
 * or a failed shutdown makes it exit otherwise. Its log says why. */
static void check_clean_exit(struct cluster *c, int i, int status)
{
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "node %s did not shut down cleanly (status 0x%x); see %s/%s.log", c->id[i],
                  status, c->dir, c->id[i]);
}

void cluster_node_signal(struct cluster *c, int i, int sig)
{
    ck_assert_int_gt(c->pid[i], 0);
    kill(c->pid[i], sig);
    if (sig == SIGKILL || sig == SIGTERM || sig == SIGINT) {
        struct exit_ctx e = {.pid = c->pid[i]};
        wait_for(exited, &e, EXIT_DEADLINE_MS, "a node to exit");
        c->pid[i] = 0;
        if (sig != SIGKILL)
            check_clean_exit(c, i, e.status);
    }
}

int cluster_node_wait_status(struct cluster *c, int i, uint32_t deadline_ms)
{
    ck_assert_int_gt(c->pid[i], 0);
    struct exit_ctx e = {.pid = c->pid[i]};
    char what[64];
    snprintf(what, sizeof what, "node %s to exit by itself", c->id[i]);
    wait_for(exited, &e, deadline_ms, what);
    c->pid[i] = 0;
    return e.status;
}

void cluster_node_wait_exit(struct cluster *c, int i, uint32_t deadline_ms)
{
    check_clean_exit(c, i, cluster_node_wait_status(c, i, deadline_ms));
}

unsigned cluster_log_count(const struct cluster *c, int i, const char *text)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s.log", c->dir, c->id[i]);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    char line[1024];
    unsigned count = 0;
    while (fgets(line, sizeof line, f))
        count += strstr(line, text) != NULL;
    fclose(f);
    return count;
}

bool cluster_log_has(const struct cluster *c, int i, const char *text)
{
    return cluster_log_count(c, i, text) > 0;
}

void cluster_stop(struct cluster *c)
{
    for (int i = 0; i < c->n; i++) {
        if (c->pid[i] <= 0)
            continue;
        kill(c->pid[i], SIGCONT);
        kill(c->pid[i], SIGTERM);
        struct exit_ctx e = {.pid = c->pid[i]};
        uint64_t deadline = rkv_clock_mono_ms() + EXIT_DEADLINE_MS;
        bool done;
        while (!(done = exited(&e)) && rkv_clock_mono_ms() < deadline) {
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        if (!done) {
            kill(c->pid[i], SIGKILL);
            waitpid(c->pid[i], NULL, 0);
        }
        c->pid[i] = 0;
        ck_assert_msg(done, "node %s ignored SIGTERM for %d ms", c->id[i], EXIT_DEADLINE_MS);
        check_clean_exit(c, i, e.status);
    }
    if (getenv("RKV_KEEP_CLUSTER") == NULL)
        test_rmdir(c->dir);
    free(c->dir);
    c->dir = NULL;
}

#define STAT_DEADLINE_MS 10000

struct stat_ctx {
    const char *name;
    uint64_t value;
    bool seen;
};

static void grab_stat(void *ctx, const char *name, uint64_t value)
{
    struct stat_ctx *s = ctx;
    if (strcmp(name, s->name) == 0) {
        s->value = value;
        s->seen = true;
    }
}

uint64_t cluster_stat(struct ringkv_client *c, const char *id, const char *name)
{
    struct stat_ctx s = {.name = name};
    /* a node just (re)started may not be connected yet: retry, to a deadline */
    uint64_t deadline = rkv_clock_mono_ms() + STAT_DEADLINE_MS;
    int rc;
    while ((rc = ringkv_stats(c, id, grab_stat, &s)) == RINGKV_EUNAVAILABLE ||
           rc == RINGKV_ETIMEOUT) {
        if (rkv_clock_mono_ms() >= deadline)
            break;
        poll(NULL, 0, 50); /* a pause between attempts, not a guess at readiness */
    }
    ck_assert_msg(rc == RINGKV_OK, "stats of %s: %s", id, ringkv_errmsg(c));
    ck_assert_msg(s.seen, "statistic %s missing", name);
    return s.value;
}

struct ringkv_client *cluster_client(struct cluster *c)
{
    struct ringkv_options o;
    ringkv_options_default(&o);
    o.config_path = c->config;
    struct ringkv_client *cl;
    int rc = ringkv_connect(&o, &cl);
    ck_assert_msg(rc == RINGKV_OK, "connect: %s", ringkv_errmsg(cl));
    return cl;
}

void wait_for(bool (*cond)(void *ctx), void *ctx, uint32_t deadline_ms, const char *what)
{
    uint64_t deadline = rkv_clock_mono_ms() + deadline_ms;
    uint32_t pause_ms = 1;
    while (!cond(ctx)) {
        ck_assert_msg(rkv_clock_mono_ms() < deadline, "gave up after %u ms waiting for %s",
                      deadline_ms, what);
        /* back off between checks: this is polling a condition, not a guess */
        struct timespec ts = {0, (long)pause_ms * 1000 * 1000};
        nanosleep(&ts, NULL);
        if (pause_ms < 50)
            pause_ms *= 2;
    }
}
