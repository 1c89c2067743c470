/*
 * fuzz_config.c: libFuzzer target for the TOML-subset parser (common/toml.h)
 * and cluster.toml validation (common/config.h).
 *
 * cluster.toml is written by people, not sent over the network, but the
 * parser promises the same as every decoder: any text gives a tree or an
 * error naming a place, never a crash, a hang or unbounded memory. The
 * input is parsed twice:
 *
 *   toml_parse: on success the tree is walked and checked against toml.h
 *     (strings NUL-terminated with the stated length and no NUL inside,
 *     arrays of one element type, nesting within TOML_DEPTH_MAX, tables
 *     within TOML_TABLE_KEYS_MAX keys, positions from 1), lookups are run,
 *     and the tree is freed. On failure the message must say where
 *     ("FILE:..." or "FILE: ...").
 *   config_parse: on success the relations config.h promises hold (R and
 *     W <= N <= nodes, Q a power of two, unique node ids); the config is
 *     freed with config_free. On failure the message is not empty.
 *
 * LeakSanitizer checks that both paths free everything they took.
 */
#include <stdbool.h>
#include <string.h>

#include "common/config.h"
#include "common/err.h"
#include "common/toml.h"
#include "tests/fuzz/fuzz.h"

#define NAME "fuzz/cluster.toml"

static void check_value(const struct toml_value *v, unsigned depth);

/* Array nesting counts from 0 again inside every table (as in the parser). */
static void check_table(struct toml_table *t)
{
    FUZZ_CHECK(t->n <= TOML_TABLE_KEYS_MAX && t->n <= t->cap);
    FUZZ_CHECK(t->line >= 1 && t->col >= 1);
    for (size_t i = 0; i < t->n; i++) {
        const struct toml_kv *kv = &t->kv[i];
        FUZZ_CHECK(kv->key != NULL && strlen(kv->key) <= TOML_KEY_BYTES_MAX);
        FUZZ_CHECK(kv->line >= 1 && kv->col >= 1);
        FUZZ_CHECK(toml_table_find(t, kv->key) == &kv->val); /* keys are unique */
        check_value(&kv->val, 0);
    }
    if (t->n > 0) {
        FUZZ_CHECK(toml_table_unused(t) == &t->kv[0]);
        FUZZ_CHECK(toml_table_get(t, t->kv[0].key) == &t->kv[0].val);
        FUZZ_CHECK(toml_table_unused(t) != &t->kv[0]);
    }
    FUZZ_CHECK(toml_table_find(t, "no such key \x01") == NULL);
}

static void check_value(const struct toml_value *v, unsigned depth)
{
    FUZZ_CHECK(v->line >= 1 && v->col >= 1);
    switch (v->type) {
    case TOML_STRING:
        FUZZ_CHECK(v->u.str.s != NULL && strlen(v->u.str.s) == v->u.str.len);
        FUZZ_CHECK(v->u.str.len <= TOML_STRING_BYTES_MAX);
        break;
    case TOML_INT:
    case TOML_BOOL:
        break;
    case TOML_ARRAY: {
        const struct toml_array *a = v->u.arr;
        FUZZ_CHECK(a != NULL && a->n <= a->cap);
        if (!a->of_tables)
            FUZZ_CHECK(depth < TOML_DEPTH_MAX);
        for (size_t i = 0; i < a->n; i++) {
            FUZZ_CHECK(a->v[i].type == a->v[0].type);
            FUZZ_CHECK(!a->of_tables || a->v[i].type == TOML_TABLE);
            check_value(&a->v[i], depth + 1);
        }
        break;
    }
    case TOML_TABLE:
        FUZZ_CHECK(v->u.tab != NULL);
        check_table(v->u.tab);
        break;
    default:
        FUZZ_CHECK(!"unknown value type");
    }
}

static void check_message(const struct rkv_error *err)
{
    FUZZ_CHECK(memchr(err->msg, '\0', sizeof err->msg) != NULL);
    FUZZ_CHECK(strncmp(err->msg, NAME ":", strlen(NAME ":")) == 0);
}

static void fuzz_toml(const char *text, size_t len)
{
    struct toml_table *root = NULL;
    struct rkv_error err = {0};
    int rc = toml_parse(text, len, NAME, &root, &err);
    FUZZ_CHECK(rc == RKV_OK || rc == RKV_ERR_CONFIG || rc == RKV_ERR_NOMEM);
    if (rc != RKV_OK) {
        FUZZ_CHECK(root == NULL && err.code == rc);
        check_message(&err);
        return;
    }
    FUZZ_CHECK(root != NULL && root->line == 1 && root->col == 1);
    check_table(root);
    toml_free(root);
}

static void fuzz_config(const char *text, size_t len)
{
    struct config *c = NULL;
    struct rkv_error err = {0};
    int rc = config_parse(text, len, NAME, &c, &err);
    FUZZ_CHECK(rc == RKV_OK || rc == RKV_ERR_CONFIG || rc == RKV_ERR_NOMEM);
    if (rc != RKV_OK) {
        FUZZ_CHECK(c == NULL && err.code == rc);
        check_message(&err);
        return;
    }
    FUZZ_CHECK(c != NULL && c->n_nodes >= 1 && c->n_nodes <= RKV_NODES_MAX);
    FUZZ_CHECK(c->partitions >= 1 && (c->partitions & (c->partitions - 1)) == 0);
    FUZZ_CHECK(c->read_quorum <= c->replicas && c->write_quorum <= c->replicas);
    FUZZ_CHECK(c->replicas >= 1 && c->replicas <= c->n_nodes);
    FUZZ_CHECK(strcmp(c->path, NAME) == 0);
    for (size_t i = 0; i < c->n_nodes; i++) {
        FUZZ_CHECK(c->nodes[i].id[0] != '\0' && c->nodes[i].client_port != 0);
        FUZZ_CHECK(config_node_find(c, c->nodes[i].id) == &c->nodes[i]); /* unique ids */
    }
    struct object_limits lim;
    config_object_limits(c, &lim);
    FUZZ_CHECK(lim.siblings_max >= 1 && lim.siblings_max <= RKV_SIBLINGS_MAX);
    config_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_toml((const char *)data, size);
    fuzz_config((const char *)data, size);
    return 0;
}
