/*
 * main.c: the ringkvd command line.
 *
 *   ringkvd --config cluster.toml --node n1 [--join HOST:PORT] [--log-level LEVEL]
 *
 * SIGINT and SIGTERM stop the node cleanly: requests in flight are answered
 * (or failed at the end of a grace period), storage is synced and closed.
 */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "common/log.h"
#include "node/node.h"

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: ringkvd --config FILE --node ID [--join HOST:PORT] [--log-level LEVEL]\n"
            "       ringkvd --config FILE --list\n"
            "\n"
            "Runs member ID of the ring that FILE (cluster.toml) describes.\n"
            "  -c, --config FILE     the cluster file\n"
            "  -n, --node ID         which [[node]] of it this process is\n"
            "  -j, --join HOST:PORT  a new member: join the running ring through the member\n"
            "                        whose cluster address that is (a [[node]] of FILE)\n"
            "                        instead of starting one from FILE's [[node]] list\n"
            "  -l, --log-level L     debug, info, warn, error (default: [log] level)\n"
            "      --list            check FILE and print the ids of its nodes, one per line\n"
            "  -h, --help            this text\n"
            "  -V, --version         the version\n"
            "Exit status: 0 after a clean shutdown, 1 on a startup error, 2 on bad usage.\n");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"node", required_argument, NULL, 'n'},
        {"join", required_argument, NULL, 'j'},
        {"log-level", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {"list", no_argument, NULL, 'L'},
        {NULL, 0, NULL, 0},
    };
    bool list = false;
    const char *config_path = NULL, *node_id = NULL, *level = NULL, *join = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "c:n:j:l:hV", longopts, NULL)) != -1) {
        switch (c) {
        case 'c': config_path = optarg; break;
        case 'n': node_id = optarg; break;
        case 'j': join = optarg; break;
        case 'l': level = optarg; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("ringkvd %s\n", WIRE_SOFTWARE_VERSION); return 0;
        case 'L': list = true; break;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc || config_path == NULL || (node_id == NULL && !list)) {
        fprintf(stderr, "ringkvd: --config and --node are required\n");
        usage(stderr);
        return 2;
    }
    if (level && rkv_log_level_parse(level) < 0) {
        fprintf(stderr, "ringkvd: unknown log level \"%s\"\n", level);
        return 2;
    }
    struct config *cfg = NULL;
    struct rkv_error err = {0};
    if (config_load(config_path, &cfg, &err) != RKV_OK) {
        fprintf(stderr, "ringkvd: %s\n", err.msg);
        return 1;
    }
    if (list) {
        for (size_t i = 0; i < cfg->n_nodes; i++)
            printf("%s\n", cfg->nodes[i].id);
        config_free(cfg);
        return 0;
    }
    rkv_log_set_level(level ? (enum rkv_log_level)rkv_log_level_parse(level)
                            : (enum rkv_log_level)cfg->log_level);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* The threads node_open starts (ZeroMQ's, the storage merge) inherit a
     * mask that blocks the stop signals, so that they reach this thread,
     * whose poll they interrupt. */
    sigset_t stops, old;
    sigemptyset(&stops);
    sigaddset(&stops, SIGINT);
    sigaddset(&stops, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stops, &old);
    static struct node node;
    int opened = node_open(&node, cfg, node_id, join, &stop_requested, &err);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (opened != RKV_OK) {
        fprintf(stderr, "ringkvd: %s\n", err.msg);
        node_close(&node);
        config_free(cfg);
        return 1;
    }
    int rc = node_run(&node);
    node_close(&node);
    config_free(cfg);
    RKV_INFO("node", "%s: stopped", node_id);
    return rc == RKV_OK ? 0 : 1;
}
