/*
 * cluster.h: real ringkvd processes for cluster tests.
 *
 * A test cluster lives in a scratch directory: a cluster.toml written for
 * free loopback ports, one data directory and one log file per node. Nodes
 * are started with fork/exec of $RKV_BIN/ringkvd and stopped by their pid
 * only. Every wait is a condition polled until a deadline; a wait that
 * runs out fails the test with what it was waiting for.
 */
#ifndef RKV_TEST_CLUSTER_H
#define RKV_TEST_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "client/ringkv.h"

#define CLUSTER_NODES_MAX 8

struct cluster {
    char *dir;
    char config[4096];
    char keys[4096];     /* keys_dir */
    bool plain;
    int n;                /* nodes in all, spares included */
    pid_t pid[CLUSTER_NODES_MAX];
    char id[CLUSTER_NODES_MAX][16];
    uint16_t client_port[CLUSTER_NODES_MAX];
    uint16_t cluster_port[CLUSTER_NODES_MAX];
    uint16_t resp_port[CLUSTER_NODES_MAX]; /* 0: none */
};

struct cluster_opts {
    int n;                      /* nodes */
    const char *extra_cluster;  /* more TOML lines for [cluster], or NULL */
    const char *extra_limits;   /* more TOML lines for [limits], or NULL */
    bool plain;                 /* security.mode = "none" (default: curve) */
    bool resp;                  /* a Redis-protocol port on every node */
    const char *extra_resp;     /* TOML lines for [resp], or NULL */
    const char *extra_tables;   /* whole TOML tables ("[hints]\n..."), or NULL */
    int spares;                 /* more nodes, not started: the first n start the ring,
                                   and the spares are added to the file afterwards, for
                                   cluster_node_join (ids n<n+1>...; keys made too) */
};

/* Writes the config and, unless plain, a key pair per node and one for
 * the client ("client", allowed in KEYS/clients/); starts the nodes and
 * waits until each answers a ping and all are connected to each other. */
void cluster_start_opts(struct cluster *c, const struct cluster_opts *o);
void cluster_start(struct cluster *c, int n, const char *extra_cluster, const char *extra_limits);
/* Stops every node still running (SIGTERM, then SIGKILL after a deadline)
 * and removes the directory (RKV_KEEP_CLUSTER=1 keeps it). If a test fails
 * before it gets here, its nodes die with it (PR_SET_PDEATHSIG) and the
 * directory stays behind with the logs. */
void cluster_stop(struct cluster *c);

void cluster_node_start(struct cluster *c, int i);
/* Starts node i with --join through node via's cluster address. */
void cluster_node_join(struct cluster *c, int i, int via);
/* Waits until node i has exited by itself, cleanly (a node that left). */
void cluster_node_wait_exit(struct cluster *c, int i, uint32_t deadline_ms);
/* Waits until node i has exited by itself; its waitpid status. */
int cluster_node_wait_status(struct cluster *c, int i, uint32_t deadline_ms);
/* How many lines of node i's log (all its runs) hold text; whether any does. */
unsigned cluster_log_count(const struct cluster *c, int i, const char *text);
bool cluster_log_has(const struct cluster *c, int i, const char *text);
/* Sends sig to node i; for SIGKILL/SIGTERM waits until it has exited. */
void cluster_node_signal(struct cluster *c, int i, int sig);
/* Waits until node i answers a ping (deadline ms). */
void cluster_wait_ready(struct cluster *c, int i, uint32_t deadline_ms);

/* A client of the cluster (ringkv_connect with its config). */
struct ringkv_client *cluster_client(struct cluster *c);

/* Statistic `name` of node `id` (fails the test if it is missing). */
uint64_t cluster_stat(struct ringkv_client *c, const char *id, const char *name);

/* Polls cond until it returns true or deadline_ms pass; fails the test
 * with what if it does not. */
void wait_for(bool (*cond)(void *ctx), void *ctx, uint32_t deadline_ms, const char *what);

/* The node's path to ringkvd, from $RKV_BIN (set by the Makefile). */
const char *cluster_bin(const char *name);

#endif
