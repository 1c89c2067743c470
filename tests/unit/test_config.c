/*
 * test_config.c: the TOML subset (every accepted feature, every rejected
 * one at its line:col, the bounds), cluster.toml's schema and validation
 * (one bad file per kind of mistake), data_dir resolution, allocation
 * failure at every step, and seeded garbage and mutations of the
 * repository's cluster.toml, which must never crash.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/config.h"
#include "common/log.h"
#include "common/toml.h"
#include "storage/storage.h"
#include "tests/support/testutil.h"

#define REPO_CONFIG    "cluster.toml" /* the Makefile runs tests from the repo root */
#define TEXT_BYTES_MAX (64 * 1024)

/* A [[node]] table of six lines. */
#define NODE(id, cport, kport)                                                                     \
    "[[node]]\nid = \"" id "\"\nhost = \"127.0.0.1\"\nclient_port = " #cport                       \
    "\ncluster_port = " #kport "\ndata_dir = \"d/" id "\"\n"
#define NODES3 NODE("n1", 7101, 7201) NODE("n2", 7102, 7202) NODE("n3", 7103, 7203)

static size_t read_text(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s (run from the repository root)", path);
    size_t n = fread(buf, 1, cap, f);
    ck_assert(n < cap);
    fclose(f);
    buf[n] = '\0';
    return n;
}

static int parse(const char *text, struct config **c, struct rkv_error *e)
{
    return config_parse(text, strlen(text), "cluster.toml", c, e);
}

static int tparse(const char *text, struct toml_table **root, struct rkv_error *e)
{
    return toml_parse(text, strlen(text), "t.toml", root, e);
}

/* toml_parse must fail with RKV_ERR_CONFIG and a message containing want. */
static void toml_rejects(const char *text, const char *want)
{
    struct toml_table *root = (struct toml_table *)1;
    struct rkv_error e = {0};
    int rc = tparse(text, &root, &e);
    ck_assert_msg(rc == RKV_ERR_CONFIG, "accepted: %s", text);
    ck_assert_ptr_null(root);
    ck_assert_msg(strstr(e.msg, want) != NULL, "for %s\n  got:  %s\n  want: %s", text, e.msg, want);
}

/* ---- the TOML subset ---- */

static const char toml_features[] = "# a comment line\n"
                                    "title = \"ringkv\"  # a trailing comment\n"
                                    "\"quoted key\" = 1\n"
                                    "bare-key_1 = -42\n"
                                    "esc = \"q\\\" b\\\\ \\b\\t\\n\\f\\r \\u00e9 \\U0001F600\"\n"
                                    "big = 9_223_372_036_854_775_807\n"
                                    "small = -9223372036854775808\n"
                                    "pos = +17\n"
                                    "zero = -0\n"
                                    "yes = true\n"
                                    "no = false\n"
                                    "arr = [ 1, 2,\n"
                                    "  3, # inside\n"
                                    "]\n"
                                    "nested = [[1, 2], [\"a\"], []]\n"
                                    "empty = []\n"
                                    "strs = [\"a\", \"b\",]\n"
                                    "\t indented =\t\"tabs\"\n"
                                    "[ tab ]\n"
                                    "k = \"v\"\n"
                                    "[\"quoted table\"]\n"
                                    "[[aot]]\n"
                                    "x = 1\n"
                                    "[[aot]]\n"
                                    "x = 2\n";

START_TEST(toml_accepts_the_subset)
{
    struct toml_table *root;
    struct rkv_error e = {0};
    ck_assert_int_eq(tparse(toml_features, &root, &e), RKV_OK);
    const struct toml_value *v = toml_table_find(root, "title");
    ck_assert_int_eq(v->type, TOML_STRING);
    ck_assert_str_eq(v->u.str.s, "ringkv");
    ck_assert_uint_eq(v->line, 2);
    ck_assert_uint_eq(v->col, 9);
    ck_assert_int_eq(toml_table_find(root, "quoted key")->u.i, 1);
    ck_assert_int_eq(toml_table_find(root, "bare-key_1")->u.i, -42);
    v = toml_table_find(root, "esc");
    ck_assert_str_eq(v->u.str.s, "q\" b\\ \b\t\n\f\r \xC3\xA9 \xF0\x9F\x98\x80");
    ck_assert_uint_eq(v->u.str.len, strlen(v->u.str.s));
    ck_assert(toml_table_find(root, "big")->u.i == INT64_MAX);
    ck_assert(toml_table_find(root, "small")->u.i == INT64_MIN);
    ck_assert_int_eq(toml_table_find(root, "pos")->u.i, 17);
    ck_assert_int_eq(toml_table_find(root, "zero")->u.i, 0);
    ck_assert(toml_table_find(root, "yes")->u.b);
    ck_assert_int_eq(toml_table_find(root, "no")->type, TOML_BOOL);
    ck_assert(!toml_table_find(root, "no")->u.b);
    v = toml_table_find(root, "arr");
    ck_assert_int_eq(v->type, TOML_ARRAY);
    ck_assert_uint_eq(v->u.arr->n, 3);
    ck_assert_int_eq(v->u.arr->v[2].u.i, 3);
    ck_assert_uint_eq(v->u.arr->v[2].line, 13);
    ck_assert_uint_eq(v->u.arr->v[2].col, 3);
    v = toml_table_find(root, "nested");
    ck_assert_uint_eq(v->u.arr->n, 3);
    ck_assert_uint_eq(v->u.arr->v[0].u.arr->n, 2);
    ck_assert_str_eq(v->u.arr->v[1].u.arr->v[0].u.str.s, "a");
    ck_assert_uint_eq(v->u.arr->v[2].u.arr->n, 0);
    ck_assert_uint_eq(toml_table_find(root, "empty")->u.arr->n, 0);
    ck_assert_uint_eq(toml_table_find(root, "strs")->u.arr->n, 2);
    v = toml_table_find(root, "indented");
    ck_assert_str_eq(v->u.str.s, "tabs");
    ck_assert_uint_eq(v->col, 14);
    v = toml_table_find(root, "tab");
    ck_assert_int_eq(v->type, TOML_TABLE);
    ck_assert_uint_eq(v->u.tab->line, 19);
    ck_assert_str_eq(toml_table_find(v->u.tab, "k")->u.str.s, "v");
    ck_assert_int_eq(toml_table_find(root, "quoted table")->type, TOML_TABLE);
    v = toml_table_find(root, "aot");
    ck_assert(v->u.arr->of_tables);
    ck_assert_uint_eq(v->u.arr->n, 2);
    ck_assert_int_eq(toml_table_find(v->u.arr->v[1].u.tab, "x")->u.i, 2);
    ck_assert_uint_eq(v->u.arr->v[1].u.tab->line, 24);
    /* keys stay in file order; the used marks find the unread ones */
    ck_assert_str_eq(root->kv[0].key, "title");
    ck_assert_ptr_eq(toml_table_unused(root), &root->kv[0]);
    ck_assert_ptr_nonnull(toml_table_get(root, "title"));
    ck_assert_str_eq(toml_table_unused(root)->key, "quoted key");
    ck_assert_ptr_null(toml_table_get(root, "missing"));
    toml_free(root);
    toml_free(NULL);
}
END_TEST

START_TEST(toml_positions_and_encodings)
{
    struct toml_table *root;
    struct rkv_error e = {0};
    /* CRLF line ends, a BOM, UTF-8 before a value (columns count characters) */
    const char *text = "\xEF\xBB\xBF"
                       "a = 1\r\n"
                       "\"\xC3\xA9t\xC3\xA9\" = \"x\" # caf\xC3\xA9\r\n";
    ck_assert_int_eq(tparse(text, &root, &e), RKV_OK);
    ck_assert_uint_eq(toml_table_find(root, "a")->col, 5);
    const struct toml_value *v = toml_table_find(root, "\xC3\xA9t\xC3\xA9");
    ck_assert_uint_eq(v->line, 2);
    ck_assert_uint_eq(v->col, 9);
    toml_free(root);
    toml_rejects("\"\xC3\xA9\" = \"\\q\"", "t.toml:1:8: invalid escape sequence '\\q'");
    /* an empty document and one of only comments are fine */
    ck_assert_int_eq(tparse("", &root, &e), RKV_OK);
    ck_assert_uint_eq(root->n, 0);
    toml_free(root);
    ck_assert_int_eq(tparse("# only\n\n   # comments\n", &root, &e), RKV_OK);
    toml_free(root);
    /* array nesting: TOML_DEPTH_MAX levels parse, one more does not */
    ck_assert_int_eq(tparse("a = [[[[[[[[1]]]]]]]]", &root, &e), RKV_OK);
    toml_free(root);
    toml_rejects("a = [[[[[[[[[1]]]]]]]]]", "t.toml:1:13: arrays nested more than 8 deep");
}
END_TEST

struct rejected {
    const char *text;
    const char *msg;
};

static const struct rejected toml_bad[] = {
    {"a = 1.5", "t.toml:1:5: floats are not supported"},
    {"a = 1e5", "t.toml:1:5: floats are not supported"},
    {"a = -inf", "t.toml:1:5: floats are not supported"},
    {"a = nan", "t.toml:1:5: floats are not supported"},
    {"a = 1979-05-27", "t.toml:1:5: dates and times are not supported"},
    {"a = 1979-05-27T07:32:00Z", "t.toml:1:5: dates and times are not supported"},
    {"a = 07:32:00", "t.toml:1:5: dates and times are not supported"},
    {"a = 'lit'", "t.toml:1:5: literal strings"},
    {"'a' = 1", "t.toml:1:1: literal strings"},
    {"a = \"\"\"multi\"\"\"", "t.toml:1:5: multi-line strings"},
    {"a = {b = 1}", "t.toml:1:5: inline tables"},
    {"a.b = 1", "t.toml:1:2: dotted keys are not supported"},
    {"a . b = 1", "t.toml:1:3: dotted keys are not supported"},
    {"[a.b]", "t.toml:1:3: dotted table names are not supported"},
    {"[[a.b]]", "t.toml:1:4: dotted table names are not supported"},
    {"a = 1\nb = 2\na = 3", "t.toml:3:1: duplicate key \"a\" (first defined at line 1)"},
    {"\"a\\nb\" = 1\n\"a\\nb\" = 2", "t.toml:2:1: duplicate key \"a?b\" (first defined at line 1)"},
    {"[t]\nx = 1\n[t]", "t.toml:3:1: table [t] is defined twice (first at line 1)"},
    {"[t]\n[[t]]", "t.toml:2:1: [[t]] conflicts with the table [t] of line 1"},
    {"[[t]]\n[t]", "t.toml:2:1: [t] is an array of tables (first [[t]] at line 1)"},
    {"t = 1\n[t]", "t.toml:2:1: [t] redefines the key \"t\" of line 1"},
    {"t = [1]\n[[t]]", "t.toml:2:1: [[t]] redefines the key \"t\" of line 1"},
    {"a = 0x10", "t.toml:1:5: hexadecimal, octal and binary integers are not supported"},
    {"a = 0o7", "t.toml:1:5: hexadecimal, octal and binary"},
    {"a = 012", "t.toml:1:5: leading zeros are not allowed"},
    {"a = -012", "t.toml:1:5: leading zeros are not allowed"},
    {"a = 1__0", "t.toml:1:5: '_' in an integer must be between two digits"},
    {"a = 1_", "t.toml:1:5: '_' in an integer must be between two digits"},
    {"a = _1", "t.toml:1:5: invalid value '_1' (strings must be quoted)"},
    {"a = +", "t.toml:1:5: invalid integer '+'"},
    {"a = 9223372036854775808", "t.toml:1:5: integer out of range"},
    {"a = -9223372036854775809", "t.toml:1:5: integer out of range"},
    {"a = 99999999999999999999", "t.toml:1:5: integer out of range"},
    {"a = [1, \"x\"]", "t.toml:1:9: mixed types in an array: a string after an integer"},
    {"a = [1, 2", "t.toml:1:5: unterminated array"},
    {"a = [1 2]", "t.toml:1:8: expected ',' or ']' in an array, found '2'"},
    {"a = [,]", "t.toml:1:6: expected a value, found ','"},
    {"a = \"abc", "t.toml:1:5: unterminated string"},
    {"a = \"abc\nb = 1", "t.toml:1:5: unterminated string"},
    {"a = \"x\\q\"", "t.toml:1:7: invalid escape sequence '\\q'"},
    {"a = \"x\\ \"", "t.toml:1:7: invalid escape sequence"},
    {"a = \"\\u12\"", "t.toml:1:6: \\u needs 4 hexadecimal digits"},
    {"a = \"\\U0000123\"", "t.toml:1:6: \\U needs 8 hexadecimal digits"},
    {"a = \"\\uD800\"", "t.toml:1:6: escape U+D800 is not a Unicode scalar value"},
    {"a = \"\\U00110000\"", "t.toml:1:6: escape U+110000 is not a Unicode scalar value"},
    {"a = \"\\u0000\"", "t.toml:1:6: NUL (\\u0000) is not supported"},
    {"a = \"x\x01\"", "t.toml:1:7: control character U+0001 is not allowed"},
    {"# c\x7f", "t.toml:1:4: control character U+007F"},
    {"a = 1\rb = 2", "t.toml:1:6: carriage return not followed by a newline"},
    {"a = \"\xC3\x28\"", "t.toml:1:6: invalid UTF-8"},
    {"a = \"\xED\xA0\x80\"", "t.toml:1:6: invalid UTF-8"},     /* a surrogate */
    {"a = \"\xC0\xAF\"", "t.toml:1:6: invalid UTF-8"},         /* overlong */
    {"a = \"\xF4\x90\x80\x80\"", "t.toml:1:6: invalid UTF-8"}, /* past U+10FFFF */
    {"a = 1 2", "t.toml:1:7: expected the end of the line, found '2'"},
    {"a = \"x\" \"y\"", "t.toml:1:9: expected the end of the line, found '\"'"},
    {"a =", "t.toml:1:4: expected a value, found the end of the file"},
    {"a =\nb = 1", "t.toml:1:4: expected a value, found the end of the line"},
    {"a 1", "t.toml:1:3: expected '=' after the key, found '1'"},
    {"= 1", "t.toml:1:1: expected a key, found '='"},
    {"a = hello", "t.toml:1:5: invalid value 'hello' (strings must be quoted)"},
    {"a = 127.0.0.1", "t.toml:1:5: invalid value '127.0.0.1' (strings must be quoted)"},
    {"a = truely", "t.toml:1:5: invalid value 'truely'"},
    {"[t] x = 1", "t.toml:1:5: expected the end of the line, found 'x'"},
    {"[[t]", "t.toml:1:4: expected ']]' to close the array-of-tables header"},
    {"[t", "t.toml:1:3: expected ']' after the table name, found the end of the file"},
    {"[]", "t.toml:1:2: expected a key, found ']'"},
    {"a = [\n1,\n\"s\"]", "t.toml:3:1: mixed types in an array"},
};

START_TEST(toml_rejects_with_position)
{
    toml_rejects(toml_bad[_i].text, toml_bad[_i].msg);
}
END_TEST

/* Builds "prefix" + n repetitions of unit + "suffix" in a fresh buffer. */
static char *repeat(const char *prefix, const char *unit, size_t n, const char *suffix)
{
    size_t lp = strlen(prefix), lu = strlen(unit), ls = strlen(suffix);
    char *s = malloc(lp + lu * n + ls + 1);
    ck_assert_ptr_nonnull(s);
    memcpy(s, prefix, lp);
    for (size_t i = 0; i < n; i++)
        memcpy(s + lp + i * lu, unit, lu);
    memcpy(s + lp + lu * n, suffix, ls + 1);
    return s;
}

START_TEST(toml_bounds_hold)
{
    struct toml_table *root;
    struct rkv_error e = {0};
    /* deep nesting fails at the first bracket too deep, without recursing */
    char *s = repeat("a = ", "[", 200000, "");
    toml_rejects(s, "t.toml:1:13: arrays nested more than 8 deep");
    free(s);
    s = repeat("a = [", "1,", TOML_VALUES_MAX + 1, "]");
    toml_rejects(s, "too many values in one document (limit 65536)");
    free(s);
    s = repeat("a = \"", "x", TOML_STRING_BYTES_MAX + 1, "\"");
    toml_rejects(s, "t.toml:1:5: string longer than 16384 bytes");
    free(s);
    s = repeat("a = \"", "\\u00e9", TOML_STRING_BYTES_MAX / 2 + 1, "\"");
    toml_rejects(s, "t.toml:1:5: string longer than 16384 bytes");
    free(s);
    s = repeat("a = \"", "x", TOML_STRING_BYTES_MAX, "\"");
    ck_assert_int_eq(tparse(s, &root, &e), RKV_OK);
    ck_assert_uint_eq(toml_table_find(root, "a")->u.str.len, TOML_STRING_BYTES_MAX);
    toml_free(root);
    free(s);
    s = repeat("", "k", TOML_KEY_BYTES_MAX + 1, " = 1");
    toml_rejects(s, "key longer than 256 bytes");
    free(s);
    /* TOML_TABLE_KEYS_MAX keys in a table, then one too many */
    char *many = malloc(16 * (TOML_TABLE_KEYS_MAX + 2));
    ck_assert_ptr_nonnull(many);
    size_t n = 0;
    for (unsigned i = 0; i <= TOML_TABLE_KEYS_MAX; i++)
        n += (size_t)sprintf(many + n, "k%u = %u\n", i, i);
    toml_rejects(many, "t.toml:257:1: too many keys in one table (limit 256)");
    free(many);
    /* the whole text */
    s = repeat("", "#", TOML_TEXT_BYTES_MAX + 1, "");
    ck_assert_int_eq(toml_parse(s, TOML_TEXT_BYTES_MAX + 1, "t.toml", &root, &e), RKV_ERR_CONFIG);
    ck_assert_str_eq(e.msg, "t.toml: larger than 1048576 bytes");
    ck_assert_int_eq(toml_parse(s, TOML_TEXT_BYTES_MAX, "t.toml", &root, &e), RKV_OK);
    toml_free(root);
    free(s);
    /* NUL inside the given length is a control character, not the end */
    ck_assert_int_eq(toml_parse("a = 1\0b", 7, "t.toml", &root, &e), RKV_ERR_CONFIG);
    ck_assert_str_eq(e.msg, "t.toml:1:6: control character U+0000 is not allowed (in a string, "
                            "write an escape)");
}
END_TEST

/* ---- the repository's cluster.toml and the schema ---- */

/* Every setting but the path and the nodes. */
static bool same_settings(const struct config *a, const struct config *b)
{
    return strcmp(a->name, b->name) == 0 && a->partitions == b->partitions &&
           a->replicas == b->replicas && a->read_quorum == b->read_quorum &&
           a->write_quorum == b->write_quorum && a->vnodes == b->vnodes &&
           a->conflict == b->conflict && a->request_timeout_ms == b->request_timeout_ms &&
           a->expiry_grace_ms == b->expiry_grace_ms &&
           a->sync == b->sync && a->sync_interval_ms == b->sync_interval_ms &&
           a->file_bytes_max == b->file_bytes_max &&
           a->merge_dead_percent == b->merge_dead_percent &&
           a->merge_dead_bytes_min == b->merge_dead_bytes_min &&
           a->merge_files_max == b->merge_files_max && a->key_bytes_max == b->key_bytes_max &&
           a->value_bytes_max == b->value_bytes_max &&
           a->object_bytes_max == b->object_bytes_max &&
           a->message_bytes_max == b->message_bytes_max && a->siblings_max == b->siblings_max &&
           a->clock_entries_max == b->clock_entries_max &&
           a->inflight_per_client == b->inflight_per_client &&
           a->queue_depth_max == b->queue_depth_max && a->log_level == b->log_level &&
           a->resp_connections_max == b->resp_connections_max &&
           a->resp_flushall == b->resp_flushall && a->resp_allow_remote == b->resp_allow_remote;
}

START_TEST(repo_config_loads)
{
    struct config *c;
    struct rkv_error e = {0};
    int rc = config_load(REPO_CONFIG, &c, &e);
    ck_assert_msg(rc == RKV_OK, "%s", e.msg);
    ck_assert_str_eq(c->path, REPO_CONFIG);
    ck_assert_str_eq(c->name, "ringkv");
    ck_assert_uint_eq(c->partitions, 256);
    ck_assert_uint_eq(c->replicas, 3);
    ck_assert_uint_eq(c->read_quorum, 2);
    ck_assert_uint_eq(c->write_quorum, 2);
    ck_assert_uint_eq(c->vnodes, 64);
    ck_assert_int_eq(c->conflict, CONFLICT_SIBLINGS);
    ck_assert_uint_eq(c->request_timeout_ms, 1000);
    ck_assert_uint_eq(c->expiry_grace_ms, 86400000);
    ck_assert_int_eq(c->sync, STORE_SYNC_ALWAYS);
    ck_assert_uint_eq(c->sync_interval_ms, 1000);
    ck_assert_uint_eq(c->file_bytes_max, 128u * 1024 * 1024);
    ck_assert_uint_eq(c->merge_dead_percent, 40);
    ck_assert_uint_eq(c->merge_dead_bytes_min, 64u * 1024 * 1024);
    ck_assert_uint_eq(c->merge_files_max, 16);
    ck_assert_uint_eq(c->key_bytes_max, 1024);
    ck_assert_uint_eq(c->value_bytes_max, 1024 * 1024);
    ck_assert_uint_eq(c->object_bytes_max, 2 * 1024 * 1024);
    ck_assert_uint_eq(c->message_bytes_max, 5 * 1024 * 1024);
    ck_assert_uint_eq(c->siblings_max, 64);
    ck_assert_uint_eq(c->clock_entries_max, 64);
    ck_assert_uint_eq(c->inflight_per_client, 1024);
    ck_assert_uint_eq(c->queue_depth_max, 65536);
    ck_assert_int_eq(c->log_level, RKV_LOG_INFO);
    ck_assert_uint_eq(c->n_nodes, 3);
    for (int i = 0; i < 3; i++) {
        char id[16], dir[32];
        snprintf(id, sizeof id, "n%d", i + 1);
        snprintf(dir, sizeof dir, "build/data/n%d", i + 1); /* no folder in the path */
        const struct config_node *n = config_node_find(c, id);
        ck_assert_ptr_eq(n, &c->nodes[i]);
        ck_assert_str_eq(n->host, "127.0.0.1");
        ck_assert_uint_eq(n->client_port, 7101 + i);
        ck_assert_uint_eq(n->cluster_port, 7201 + i);
        ck_assert_uint_eq(n->resp_port, 7301 + i);
        ck_assert_str_eq(n->data_dir, dir);
        ck_assert_uint_gt(n->line, 0);
    }
    ck_assert_ptr_null(config_node_find(c, "n4"));
    struct object_limits lim;
    config_object_limits(c, &lim);
    ck_assert_uint_eq(lim.siblings_max, 64);
    ck_assert_uint_eq(lim.clock_entries_max, 64);
    ck_assert_uint_eq(lim.value_bytes_max, 1024 * 1024);
    ck_assert_uint_eq(lim.object_bytes_max, 2 * 1024 * 1024);
    ck_assert_int_eq(lim.conflict, CONFLICT_SIBLINGS);
    /* the file spells out every default */
    struct config d;
    config_defaults(&d);
    ck_assert(same_settings(c, &d));
    config_free(c);
    config_free(NULL);
}
END_TEST

START_TEST(defaults_fill_what_is_missing)
{
    struct config *c;
    struct rkv_error e = {0};
    ck_assert_int_eq(parse(NODES3, &c, &e), RKV_OK);
    struct config d;
    config_defaults(&d);
    ck_assert(same_settings(c, &d));
    ck_assert_str_eq(d.path, "");
    ck_assert_ptr_null(d.nodes);
    ck_assert_uint_eq(d.n_nodes, 0);
    ck_assert_str_eq(c->nodes[1].data_dir, "d/n2");
    ck_assert_uint_eq(c->nodes[1].line, 7);
    config_free(c);
}
END_TEST

START_TEST(every_key_can_be_set)
{
    struct config *c;
    struct rkv_error e = {0};
    /* every key set to a non-default value (ports clash first) */
    const char *text = "[cluster]\nname = \"prod-1.eu_west\"\npartitions = 1024\nreplicas = 2\n"
                       "read_quorum = 1\nwrite_quorum = 1\nvnodes = 8\nconflict = \"lww\"\n"
                       "request_timeout_ms = 250\nexpiry_grace_ms = 0\n"
                       "[storage]\nsync = \"interval\"\nsync_interval_ms = 50\n"
                       "file_bytes_max = 4096\nmerge_dead_percent = 0\n"
                       "merge_dead_bytes_min = 0\nmerge_files_max = 2\n"
                       "[limits]\nkey_bytes_max = 65535\nvalue_bytes_max = 33488896\n"
                       "object_bytes_max = 33554432\n"
                       "message_bytes_max = 68157440\nsiblings_max = 256\n"
                       "clock_entries_max = 1\ninflight_per_client = 1\nqueue_depth_max = 1\n"
                       "[log]\nlevel = \"off\"\n" NODE("a", 1, 65535) NODE("b", 1, 2);
    ck_assert_int_eq(parse(text, &c, &e), RKV_ERR_CONFIG);
    ck_assert_msg(strstr(e.msg, "node \"b\": client_port: 127.0.0.1:1 is already the client_port"
                                " of node \"a\"") != NULL,
                  "%s", e.msg);
    text = "[cluster]\nname = \"prod-1.eu_west\"\npartitions = 1024\nreplicas = 2\n"
           "read_quorum = 1\nwrite_quorum = 1\nvnodes = 8\nconflict = \"lww\"\n"
           "request_timeout_ms = 250\nexpiry_grace_ms = 0\n"
           "[storage]\nsync = \"interval\"\nsync_interval_ms = 50\n"
           "file_bytes_max = 4096\nmerge_dead_percent = 0\n"
           "merge_dead_bytes_min = 0\nmerge_files_max = 2\n"
           "[limits]\nkey_bytes_max = 65535\nvalue_bytes_max = 33488896\n"
           "object_bytes_max = 33554432\n"
           "message_bytes_max = 68157440\nsiblings_max = 256\n"
           "clock_entries_max = 1\ninflight_per_client = 1\nqueue_depth_max = 1\n"
           "[log]\nlevel = \"off\"\n" NODE("a", 1, 65535) NODE("b", 3, 2);
    ck_assert_msg(parse(text, &c, &e) == RKV_OK, "%s", e.msg);
    ck_assert_str_eq(c->name, "prod-1.eu_west");
    ck_assert_uint_eq(c->partitions, 1024);
    ck_assert_uint_eq(c->replicas, 2);
    ck_assert_uint_eq(c->read_quorum, 1);
    ck_assert_uint_eq(c->write_quorum, 1);
    ck_assert_uint_eq(c->vnodes, 8);
    ck_assert_int_eq(c->conflict, CONFLICT_LWW);
    ck_assert_uint_eq(c->request_timeout_ms, 250);
    ck_assert_uint_eq(c->expiry_grace_ms, 0);
    ck_assert_int_eq(c->sync, STORE_SYNC_INTERVAL);
    ck_assert_uint_eq(c->sync_interval_ms, 50);
    ck_assert_uint_eq(c->file_bytes_max, 4096);
    ck_assert_uint_eq(c->merge_dead_percent, 0);
    ck_assert_uint_eq(c->merge_dead_bytes_min, 0);
    ck_assert_uint_eq(c->merge_files_max, 2);
    ck_assert_uint_eq(c->key_bytes_max, 65535);
    ck_assert_uint_eq(c->value_bytes_max, RKV_OBJECT_BYTES_MAX - CONFIG_MESSAGE_OVERHEAD_BYTES);
    ck_assert_uint_eq(c->object_bytes_max, RKV_OBJECT_BYTES_MAX);
    ck_assert_uint_eq(c->message_bytes_max, 68157440);
    ck_assert_uint_eq(c->siblings_max, 256);
    ck_assert_uint_eq(c->clock_entries_max, 1);
    ck_assert_uint_eq(c->inflight_per_client, 1);
    ck_assert_uint_eq(c->queue_depth_max, 1);
    ck_assert_int_eq(c->log_level, RKV_LOG_OFF);
    ck_assert_uint_eq(c->nodes[0].cluster_port, 65535);
    struct object_limits lim;
    config_object_limits(c, &lim);
    ck_assert_int_eq(lim.conflict, CONFLICT_LWW);
    ck_assert_uint_eq(lim.siblings_max, 256);
    ck_assert_uint_eq(lim.clock_entries_max, 1);
    ck_assert_uint_eq(lim.value_bytes_max, RKV_OBJECT_BYTES_MAX - CONFIG_MESSAGE_OVERHEAD_BYTES);
    ck_assert_uint_eq(lim.object_bytes_max, RKV_OBJECT_BYTES_MAX);
    config_free(c);
}
END_TEST

/* One file per kind of mistake: the code and a piece of the message that
 * includes the position. */
struct bad_config {
    const char *what;
    const char *text;
    int code;
    const char *msg;
};

#define NODE_LINES(id, host, ports, dir) "[[node]]\n" id "\n" host "\n" ports "\n" dir "\n"
#define N1_HOST                          "host = \"127.0.0.1\""
#define N1_PORTS                         "client_port = 7101\ncluster_port = 7201"

static const struct bad_config bad_configs[] = {
    {"R > N", "[cluster]\nreplicas = 3\nread_quorum = 4\n" NODES3, RKV_ERR_CONFIG,
     "cluster.toml:3:15: cluster.read_quorum: 4 is greater than cluster.replicas (3)"},
    {"W > N", "[cluster]\nreplicas = 2\nwrite_quorum = 3\n" NODES3, RKV_ERR_CONFIG,
     "cluster.toml:3:16: cluster.write_quorum: 3 is greater than cluster.replicas (2)"},
    {"default R > N", "[cluster]\nreplicas = 1\n" NODES3, RKV_ERR_CONFIG,
     "cluster.toml:1:1: cluster.read_quorum: 2 (the default) is greater than cluster.replicas "
     "(1)"},
    {"R = 0", "[cluster]\nread_quorum = 0\n" NODES3, RKV_ERR_CONFIG,
     "cluster.toml:2:15: cluster.read_quorum: 0 is out of range (1..16)"},
    {"W = 0", "[cluster]\nwrite_quorum = 0\n" NODES3, RKV_ERR_CONFIG,
     "cluster.toml:2:16: cluster.write_quorum: 0 is out of range (1..16)"},
    {"N = 0", "[cluster]\nreplicas = 0\n" NODES3, RKV_ERR_CONFIG,
     "cluster.toml:2:12: cluster.replicas: 0 is out of range (1..16)"},
    {"N > nodes", "[cluster]\nreplicas = 3\n" NODE("n1", 7101, 7201), RKV_ERR_CONFIG,
     "cluster.toml:2:12: cluster.replicas: 3 is greater than the number of nodes (1)"},
    {"default N > nodes", NODE("n1", 7101, 7201) NODE("n2", 7102, 7202), RKV_ERR_CONFIG,
     "cluster.toml:1:1: cluster.replicas: 3 (the default) is greater than the number of nodes "
     "(2)"},
    {"duplicate ids", NODE("n1", 7101, 7201) NODE("n2", 7102, 7202) NODE("n1", 7103, 7203),
     RKV_ERR_CONFIG, "cluster.toml:13:1: node \"n1\" is defined twice (first at line 1)"},
    {"duplicate address", NODE("n1", 7101, 7201) NODE("n2", 7102, 7202) NODE("n3", 7103, 7102),
     RKV_ERR_CONFIG,
     "cluster.toml:17:16: node \"n3\": cluster_port: 127.0.0.1:7102 is already the client_port "
     "of node \"n2\""},
    {"client port = cluster port",
     NODE("n1", 7101, 7101) NODE("n2", 7102, 7202) NODE("n3", 7103, 7203), RKV_ERR_CONFIG,
     "cluster.toml:5:16: node \"n1\": cluster_port: 127.0.0.1:7101 is already the client_port "
     "of node \"n1\""},
    {"duplicate IPv6 address",
     NODE_LINES("id = \"n1\"", "host = \"::1\"", "client_port = 7101\ncluster_port = 7101",
                "data_dir = \"d\""),
     RKV_ERR_CONFIG,
     "cluster.toml:5:16: node \"n1\": cluster_port: [::1]:7101 is already the client_port of "
     "node \"n1\""},
    {"host names compare without case",
     NODE("n1", 7101, 7201) NODE("n2", 7102, 7202)
         NODE_LINES("id = \"n3\"", "host = \"LocalHost\"",
                    "client_port = 7103\ncluster_port = 7203", "data_dir = \"d/n3\"")
             NODE_LINES("id = \"n4\"", "host = \"localhost\"",
                        "client_port = 7203\ncluster_port = 7204", "data_dir = \"d/n4\""),
     RKV_ERR_CONFIG,
     "cluster.toml:22:15: node \"n4\": client_port: localhost:7203 is already the cluster_port "
     "of node \"n3\""},
    {"duplicate data_dir on one host",
     NODE("n1", 7101, 7201) NODE("n2", 7102, 7202) NODE_LINES(
         "id = \"n3\"", N1_HOST, "client_port = 7103\ncluster_port = 7203", "data_dir = \"d/n1\""),
     RKV_ERR_CONFIG,
     "cluster.toml:18:12: node \"n3\": data_dir: \"d/n1\" is also the data_dir of node \"n1\" on "
     "the same host"},
    {"unknown key", "[cluster]\nreplica = 3\n" NODES3, RKV_ERR_CONFIG,
     "cluster.toml:2:1: unknown key \"replica\" in [cluster]"},
    {"unknown key in a node",
     NODE_LINES("id = \"n1\"\nweight = 2", N1_HOST, N1_PORTS, "data_dir = \"d\""), RKV_ERR_CONFIG,
     "cluster.toml:3:1: unknown key \"weight\" in [[node]] \"n1\""},
    {"unknown table", "[foo]\n" NODES3, RKV_ERR_CONFIG, "cluster.toml:1:1: unknown table [foo]"},
    {"unknown array of tables", NODES3 "[[nodes]]\n", RKV_ERR_CONFIG,
     "cluster.toml:19:1: unknown table [[nodes]]"},
    {"top-level key", "replicas = 3\n" NODES3, RKV_ERR_CONFIG,
     "cluster.toml:1:1: unknown key \"replicas\" at the top level"},
    {"a section as a key", "cluster = 1\n" NODES3, RKV_ERR_CONFIG,
     "cluster.toml:1:11: cluster must be a table, written [cluster]"},
    {"node as a table", "[node]\nid = \"n1\"\n", RKV_ERR_CONFIG,
     "cluster.toml:1:1: node must be an array of tables, one [[node]] per member"},
    {"table twice", "[cluster]\n[cluster]\n" NODES3, RKV_ERR_CONFIG,
     "cluster.toml:2:1: table [cluster] is defined twice (first at line 1)"},
    {"wrong type: string for integer", "[cluster]\nreplicas = \"3\"\n" NODES3, RKV_ERR_CONFIG,
     "cluster.toml:2:12: cluster.replicas: expected an integer, got a string"},
    {"wrong type: integer for string", "[log]\nlevel = 1\n" NODES3, RKV_ERR_CONFIG,
     "cluster.toml:2:9: log.level: expected a string, got an integer"},
    {"wrong type: boolean", "[cluster]\nvnodes = true\n" NODES3, RKV_ERR_CONFIG,
     "cluster.toml:2:10: cluster.vnodes: expected an integer, got a boolean"},
    {"wrong type: array", "[cluster]\nname = [\"a\"]\n" NODES3, RKV_ERR_CONFIG,
     "cluster.toml:2:8: cluster.name: expected a string, got an array"},
    {"overflowing integer", "[cluster]\nreplicas = 99999999999999999999\n" NODES3, RKV_ERR_CONFIG,
     "cluster.toml:2:12: integer out of range"},
    {"negative port",
     NODE_LINES("id = \"n1\"", N1_HOST, "client_port = -1\ncluster_port = 7201",
                "data_dir = \"d\""),
     RKV_ERR_CONFIG, "cluster.toml:4:15: node \"n1\": client_port: -1 is out of range (1..65535)"},
    {"port 70000",
     NODE_LINES("id = \"n1\"", N1_HOST, "client_port = 7101\ncluster_port = 70000",
                "data_dir = \"d\""),
     RKV_ERR_CONFIG,
     "cluster.toml:5:16: node \"n1\": cluster_port: 70000 is out of range (1..65535)"},
    {"port 0",
     NODE_LINES("id = \"n1\"", N1_HOST, "client_port = 0\ncluster_port = 7201", "data_dir = \"d\""),
     RKV_ERR_CONFIG, "cluster.toml:4:15: node \"n1\": client_port: 0 is out of range (1..65535)"},
    {"missing port", NODE_LINES("id = \"n1\"", N1_HOST, "client_port = 7101\n", "data_dir = \"d\""),
     RKV_ERR_CONFIG, "cluster.toml:1:1: node \"n1\": cluster_port is missing (it is required)"},
    {"Q not a power of two", "[cluster]\npartitions = 100\n" NODES3, RKV_ERR_CONFIG,
     "cluster.toml:2:14: cluster.partitions: 100 is not a power of two"},
    {"Q too large", "[cluster]\npartitions = 131072\n" NODES3, RKV_ERR_CONFIG,
     "cluster.toml:2:14: cluster.partitions: 131072 is out of range (1..65536)"},
    {"vnodes too many", "[cluster]\nvnodes = 4097\n" NODES3, RKV_ERR_CONFIG,
     "cluster.toml:2:10: cluster.vnodes: 4097 is out of range (1..4096)"},
    {"missing data_dir", NODE_LINES("id = \"n1\"", N1_HOST, N1_PORTS, ""), RKV_ERR_CONFIG,
     "cluster.toml:1:1: node \"n1\": data_dir is missing (it is required)"},
    {"empty data_dir", NODE_LINES("id = \"n1\"", N1_HOST, N1_PORTS, "data_dir = \"\""),
     RKV_ERR_CONFIG, "cluster.toml:6:12: node \"n1\": data_dir: must not be empty"},
    {"missing id", NODE_LINES("", N1_HOST, N1_PORTS, "data_dir = \"d\""), RKV_ERR_CONFIG,
     "cluster.toml:1:1: node #1: id is missing (it is required)"},
    {"empty id", NODE_LINES("id = \"\"", N1_HOST, N1_PORTS, "data_dir = \"d\""), RKV_ERR_CONFIG,
     "cluster.toml:2:6: node #1: id: must not be empty"},
    {"bad id chars", NODE_LINES("id = \"n 1\"", N1_HOST, N1_PORTS, "data_dir = \"d\""),
     RKV_ERR_CONFIG,
     "cluster.toml:2:6: node #1: id: \"n 1\" has a character outside [A-Za-z0-9_.-]"},
    {"id too long",
     NODE_LINES("id = \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"",
                N1_HOST, N1_PORTS, "data_dir = \"d\""),
     RKV_ERR_CONFIG, "cluster.toml:2:6: node #1: id: longer than 64 bytes"},
    {"id not a string", NODE_LINES("id = 1", N1_HOST, N1_PORTS, "data_dir = \"d\""), RKV_ERR_CONFIG,
     "cluster.toml:2:6: node #1: id: expected a string, got an integer"},
    {"empty host", NODE_LINES("id = \"n1\"", "host = \"\"", N1_PORTS, "data_dir = \"d\""),
     RKV_ERR_CONFIG, "cluster.toml:3:8: node \"n1\": host: must not be empty"},
    {"host with a space",
     NODE_LINES("id = \"n1\"", "host = \"127.0.0.1 x\"", N1_PORTS, "data_dir = \"d\""),
     RKV_ERR_CONFIG,
     "cluster.toml:3:8: node \"n1\": host: a host name or IP address has no spaces"},
    {"bad cluster name", "[cluster]\nname = \"my cluster\"\n" NODES3, RKV_ERR_CONFIG,
     "cluster.toml:2:8: cluster.name: \"my cluster\" has a character outside [A-Za-z0-9_.-]"},
    {"unknown conflict mode", "[cluster]\nconflict = \"merge\"\n" NODES3, RKV_ERR_CONFIG,
     "cluster.toml:2:12: cluster.conflict: \"merge\" is not one of \"siblings\", \"lww\""},
    {"unknown sync policy", "[storage]\nsync = \"sometimes\"\n" NODES3, RKV_ERR_CONFIG,
     "cluster.toml:2:8: storage.sync: \"sometimes\" is not one of \"always\", \"interval\", "
     "\"none\""},
    {"unknown log level", "[log]\nlevel = \"loud\"\n" NODES3, RKV_ERR_CONFIG,
     "cluster.toml:2:9: log.level: \"loud\" is not one of"},
    {"file_bytes_max too small", "[storage]\nfile_bytes_max = 4095\n" NODES3, RKV_ERR_CONFIG,
     "cluster.toml:2:18: storage.file_bytes_max: 4095 is out of range (4096..4294967295)"},
    {"merge_files_max 1", "[storage]\nmerge_files_max = 1\n" NODES3, RKV_ERR_CONFIG,
     "cluster.toml:2:19: storage.merge_files_max: 1 is out of range (2..65536)"},
    {"value over the ceiling", "[limits]\nvalue_bytes_max = 67108865\n" NODES3, RKV_ERR_CONFIG,
     "cluster.toml:2:19: limits.value_bytes_max: 67108865 is out of range (1..67108864)"},
    {"message too small", "[limits]\nmessage_bytes_max = 1048576\n" NODES3, RKV_ERR_CONFIG,
     "cluster.toml:2:21: limits.message_bytes_max: 1048576 is less than 2 x "
     "limits.object_bytes_max (2097152) + limits.key_bytes_max (1024) + 65536 bytes of message "
     "overhead (4260864)"},
    {"default message too small", "[limits]\nobject_bytes_max = 4194304\n" NODES3,
     RKV_ERR_CONFIG, "cluster.toml:1:1: limits.message_bytes_max: 5242880 (the default) is less "
     "than"},
    {"object too small", "[limits]\nobject_bytes_max = 1048576\n" NODES3, RKV_ERR_CONFIG,
     "cluster.toml:2:20: limits.object_bytes_max: 1048576 is less than limits.value_bytes_max "
     "(1048576) + 65536 bytes of object overhead (1114112)"},
    {"default object too small", "[limits]\nvalue_bytes_max = 8388608\n" NODES3, RKV_ERR_CONFIG,
     "cluster.toml:1:1: limits.object_bytes_max: 2097152 (the default) is less than"},
    {"object over the ceiling", "[limits]\nobject_bytes_max = 33554433\n" NODES3, RKV_ERR_CONFIG,
     "cluster.toml:2:20: limits.object_bytes_max: 33554433 is out of range (1..33554432)"},
    {"siblings over the ceiling", "[limits]\nsiblings_max = 257\n" NODES3, RKV_ERR_CONFIG,
     "cluster.toml:2:16: limits.siblings_max: 257 is out of range (1..256)"},
    {"clock entries over the ceiling", "[limits]\nclock_entries_max = 257\n" NODES3, RKV_ERR_CONFIG,
     "cluster.toml:2:21: limits.clock_entries_max: 257 is out of range (1..256)"},
    {"in-flight over the queue",
     "[limits]\ninflight_per_client = 100\nqueue_depth_max = 10\n" NODES3, RKV_ERR_CONFIG,
     "cluster.toml:2:23: limits.inflight_per_client: 100 is greater than limits.queue_depth_max "
     "(10)"},
    {"unterminated string", "[cluster]\nname = \"abc\n" NODES3, RKV_ERR_CONFIG,
     "cluster.toml:2:8: unterminated string"},
    {"bad escape", "[cluster]\nname = \"a\\qb\"\n" NODES3, RKV_ERR_CONFIG,
     "cluster.toml:2:10: invalid escape sequence '\\q'"},
    {"float value", "[cluster]\nreplicas = 3.0\n" NODES3, RKV_ERR_CONFIG,
     "cluster.toml:2:12: floats are not supported"},
    {"inline table", "[cluster]\nx = {a = 1}\n" NODES3, RKV_ERR_CONFIG,
     "cluster.toml:2:5: inline tables ({...}) are not supported"},
    {"duplicate key", "[cluster]\nreplicas = 3\nreplicas = 3\n" NODES3, RKV_ERR_CONFIG,
     "cluster.toml:3:1: duplicate key \"replicas\" (first defined at line 2)"},
    {"no nodes", "[cluster]\nreplicas = 1\n", RKV_ERR_CONFIG,
     "cluster.toml:1:1: no [[node]] table: a cluster needs at least one member"},
    {"empty file", "", RKV_ERR_CONFIG, "cluster.toml:1:1: no [[node]] table"},
    {"resp_port clashes",
     NODE_LINES("id = \"n1\"", N1_HOST, N1_PORTS "\nresp_port = 7101", "data_dir = \"d\""),
     RKV_ERR_CONFIG,
     "cluster.toml:6:13: node \"n1\": resp_port: 127.0.0.1:7101 is already the client_port of "
     "node \"n1\""},
    {"resp_port 0", NODE_LINES("id = \"n1\"", N1_HOST, N1_PORTS "\nresp_port = 0", "data_dir = \"d\""),
     RKV_ERR_CONFIG, "cluster.toml:6:13: node \"n1\": resp_port: 0 is out of range (1..65535)"},
    {"resp_port reachable from afar with curve",
     NODE_LINES("id = \"n1\"", "host = \"10.1.2.3\"", N1_PORTS "\nresp_port = 7301",
                "data_dir = \"d\""),
     RKV_ERR_CONFIG,
     "cluster.toml:6:13: node \"n1\": resp_port: the Redis protocol has no authentication or "
     "encryption, and host \"10.1.2.3\" is not a loopback address; set resp.allow_remote = true"},
    {"resp.flushall not a boolean", "[resp]\nflushall = 1\n" NODES3, RKV_ERR_CONFIG,
     "cluster.toml:2:12: resp.flushall: expected true or false, got an integer"},
    {"resp.connections_max 0", "[resp]\nconnections_max = 0\n" NODES3, RKV_ERR_CONFIG,
     "cluster.toml:2:19: resp.connections_max: 0 is out of range (1..65536)"},
    {"unknown resp key", "[resp]\nport = 6379\n" NODES3, RKV_ERR_CONFIG,
     "cluster.toml:2:1: unknown key \"port\" in [resp]"},
};

START_TEST(bad_configs_are_rejected)
{
    const struct bad_config *b = &bad_configs[_i];
    struct config *c = (struct config *)1;
    struct rkv_error e = {0};
    int rc = parse(b->text, &c, &e);
    ck_assert_msg(rc == b->code, "%s: code %d (%s)", b->what, rc, e.msg);
    ck_assert_ptr_null(c);
    ck_assert_int_eq(e.code, b->code);
    ck_assert_msg(strstr(e.msg, b->msg) != NULL, "%s\n  got:  %s\n  want: %s", b->what, e.msg,
                  b->msg);
}
END_TEST

/* The Redis port: optional, and off a loopback host only when asked for. */
START_TEST(resp_settings)
{
    struct config *c;
    struct rkv_error e = {0};
    ck_assert_int_eq(parse(NODES3, &c, &e), RKV_OK);
    ck_assert_uint_eq(c->nodes[0].resp_port, 0);
    config_free(c);
    const char *text = "[cluster]\nreplicas = 1\nread_quorum = 1\nwrite_quorum = 1\n"
                       "[security]\nmode = \"curve\"\n"
                       "[resp]\nconnections_max = 7\nflushall = true\nallow_remote = true\n"
                       NODE_LINES("id = \"n1\"", "host = \"10.1.2.3\"",
                                  N1_PORTS "\nresp_port = 7301", "data_dir = \"d\"");
    ck_assert_msg(parse(text, &c, &e) == RKV_OK, "%s", e.msg);
    ck_assert_uint_eq(c->nodes[0].resp_port, 7301);
    ck_assert_uint_eq(c->resp_connections_max, 7);
    ck_assert(c->resp_flushall);
    ck_assert(c->resp_allow_remote);
    config_free(c);
    /* without security there is nothing to protect */
    text = "[cluster]\nreplicas = 1\nread_quorum = 1\nwrite_quorum = 1\n"
           "[security]\nmode = \"none\"\n"
           NODE_LINES("id = \"n1\"", "host = \"10.1.2.3\"", N1_PORTS "\nresp_port = 7301",
                      "data_dir = \"d\"");
    ck_assert_msg(parse(text, &c, &e) == RKV_OK, "%s", e.msg);
    config_free(c);
}
END_TEST

START_TEST(node_count_is_bounded)
{
    size_t cap = (RKV_NODES_MAX + 1) * 120 + 64;
    char *text = malloc(cap);
    ck_assert_ptr_nonnull(text);
    size_t n = 0;
    for (unsigned i = 0; i < RKV_NODES_MAX + 1; i++)
        n += (size_t)snprintf(text + n, cap - n,
                              "[[node]]\nid = \"n%u\"\nhost = \"h%u\"\nclient_port = 1\n"
                              "cluster_port = 2\ndata_dir = \"d\"\n",
                              i, i);
    struct config *c;
    struct rkv_error e = {0};
    ck_assert_int_eq(parse(text, &c, &e), RKV_ERR_CONFIG);
    ck_assert_str_eq(e.msg, "cluster.toml:6145:1: more than 1024 [[node]] tables");
    /* exactly RKV_NODES_MAX is fine: distinct hosts may share ports and dirs */
    *strstr(text, "[[node]]\nid = \"n1024\"") = '\0';
    ck_assert_msg(parse(text, &c, &e) == RKV_OK, "%s", e.msg);
    ck_assert_uint_eq(c->n_nodes, RKV_NODES_MAX);
    ck_assert_str_eq(config_node_find(c, "n1023")->host, "h1023");
    config_free(c);
    free(text);
}
END_TEST

/* ---- data_dir and files ---- */

static void expect_dir(const char *name, const char *dir, const char *want)
{
    char text[512];
    snprintf(text, sizeof text,
             "[cluster]\nreplicas = 1\nread_quorum = 1\nwrite_quorum = 1\n"
             "[[node]]\nid = \"n1\"\nhost = \"h\"\nclient_port = 1\ncluster_port = 2\n"
             "data_dir = \"%s\"\n",
             dir);
    struct config *c;
    struct rkv_error e = {0};
    ck_assert_msg(config_parse(text, strlen(text), name, &c, &e) == RKV_OK, "%s", e.msg);
    ck_assert_str_eq(c->path, name);
    ck_assert_str_eq(c->nodes[0].data_dir, want);
    config_free(c);
}

START_TEST(data_dir_is_resolved)
{
    expect_dir("/repo/cluster.toml", "build/data/n1", "/repo/build/data/n1");
    expect_dir("cluster.toml", "build/data/n1", "build/data/n1");
    expect_dir("conf/cluster.toml", "build/data/n1", "conf/build/data/n1");
    expect_dir("./cluster.toml", "d", "./d");
    expect_dir("/cluster.toml", "d", "/d");
    expect_dir("/repo/cluster.toml", "/var/lib/ringkv", "/var/lib/ringkv");
    expect_dir("/repo/cluster.toml", "../data", "/repo/../data");
    /* too long once resolved */
    char dir[CONFIG_PATH_BYTES];
    memset(dir, 'x', sizeof dir - 10);
    dir[sizeof dir - 10] = '\0';
    char *text = malloc(2 * CONFIG_PATH_BYTES);
    ck_assert_ptr_nonnull(text);
    snprintf(text, 2 * CONFIG_PATH_BYTES,
             "[cluster]\nreplicas = 1\nread_quorum = 1\nwrite_quorum = 1\n"
             "[[node]]\nid = \"n1\"\nhost = \"h\"\nclient_port = 1\ncluster_port = 2\n"
             "data_dir = \"%s\"\n",
             dir);
    struct config *c;
    struct rkv_error e = {0};
    ck_assert_int_eq(config_parse(text, strlen(text), "/a/long/folder/cluster.toml", &c, &e),
                     RKV_ERR_CONFIG);
    ck_assert_msg(strstr(e.msg, ":10:12: node \"n1\": data_dir: longer than 4095 bytes once "
                                "resolved") != NULL,
                  "%s", e.msg);
    ck_assert_int_eq(config_parse(text, strlen(text), "cluster.toml", &c, &e), RKV_OK);
    config_free(c);
    free(text);
    /* a name that cannot be a path */
    char name[CONFIG_PATH_BYTES + 1];
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    ck_assert_int_eq(config_parse("", 0, name, &c, &e), RKV_ERR_INVAL);
    ck_assert_ptr_null(c);
}
END_TEST

static void write_file(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(text, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

START_TEST(files_load_or_fail_cleanly)
{
    char *dir = test_mkdtemp("config");
    char path[1024], want[1100];
    static char text[TEXT_BYTES_MAX];
    size_t len = read_text(REPO_CONFIG, text, sizeof text);
    snprintf(path, sizeof path, "%s/cluster.toml", dir);
    write_file(path, text, len);
    struct config *c;
    struct rkv_error e = {0};
    ck_assert_msg(config_load(path, &c, &e) == RKV_OK, "%s", e.msg);
    snprintf(want, sizeof want, "%s/build/data/n2", dir);
    ck_assert_str_eq(config_node_find(c, "n2")->data_dir, want);
    ck_assert_str_eq(c->path, path);
    config_free(c);
    /* errors in a loaded file name the path as given */
    write_file(path, "[cluster]\nreplicas = 0\n", 23);
    ck_assert_int_eq(config_load(path, &c, &e), RKV_ERR_CONFIG);
    snprintf(want, sizeof want, "%s:2:12: cluster.replicas: 0 is out of range", path);
    ck_assert_msg(strstr(e.msg, want) == e.msg, "%s", e.msg);
    /* unreadable */
    snprintf(path, sizeof path, "%s/missing.toml", dir);
    ck_assert_int_eq(config_load(path, &c, &e), RKV_ERR_IO);
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(e.msg, "No such file or directory") != NULL, "%s", e.msg);
    ck_assert_int_eq(config_load(dir, &c, &e), RKV_ERR_IO);
    ck_assert_msg(strstr(e.msg, "Is a directory") != NULL, "%s", e.msg);
    /* larger than the limit, even if it is all comment */
    char *big = repeat("", "#", TOML_TEXT_BYTES_MAX + 1, "");
    snprintf(path, sizeof path, "%s/big.toml", dir);
    write_file(path, big, TOML_TEXT_BYTES_MAX + 1);
    ck_assert_int_eq(config_load(path, &c, &e), RKV_ERR_CONFIG);
    ck_assert_msg(strstr(e.msg, "larger than 1048576 bytes") != NULL, "%s", e.msg);
    free(big);
    test_rmdir(dir);
    free(dir);
}
END_TEST

/* ---- failure injection and hostile input ---- */

START_TEST(allocation_failures_are_clean)
{
    static char text[TEXT_BYTES_MAX];
    size_t len = read_text(REPO_CONFIG, text, sizeof text);
    long n;
    for (n = 0;; n++) {
        struct config *c = (struct config *)1;
        struct rkv_error e = {0};
        test_alloc_fail_from(n);
        int rc = config_parse(text, len, REPO_CONFIG, &c, &e);
        bool failed = test_alloc_failed();
        test_alloc_reset();
        if (rc == RKV_OK) {
            ck_assert(!failed);
            ck_assert_uint_eq(c->n_nodes, 3);
            config_free(c);
            break;
        }
        ck_assert_msg(rc == RKV_ERR_NOMEM, "allocation %ld: %d %s", n, rc, e.msg);
        ck_assert_ptr_null(c);
        ck_assert_str_eq(e.msg, "cluster.toml: out of memory");
    }
    ck_assert_int_gt(n, 20); /* the loop really went through the parser */
    /* and config_load's own buffer */
    struct config *c;
    struct rkv_error e = {0};
    test_alloc_fail_from(0);
    int rc = config_load(REPO_CONFIG, &c, &e);
    test_alloc_reset();
    ck_assert_int_eq(rc, RKV_ERR_NOMEM);
}
END_TEST

/* Parses bytes that may be anything: must return OK or a config error with
 * a positioned message, never crash or leak. */
static void parse_hostile(const char *p, size_t len, int seed)
{
    struct config *c = NULL;
    struct rkv_error e = {0};
    int rc = config_parse(p, len, "fuzz.toml", &c, &e);
    ck_assert_msg(rc == RKV_OK || rc == RKV_ERR_CONFIG, "seed %d: code %d", seed, rc);
    if (rc == RKV_OK) {
        ck_assert_uint_ge(c->n_nodes, c->replicas);
        config_free(c);
    } else {
        ck_assert_msg(strncmp(e.msg, "fuzz.toml:", 10) == 0, "seed %d: %s", seed, e.msg);
    }
    struct toml_table *root = NULL;
    rc = toml_parse(p, len, "fuzz.toml", &root, &e);
    ck_assert_msg(rc == RKV_OK || rc == RKV_ERR_CONFIG, "seed %d: toml code %d", seed, rc);
    toml_free(root);
}

static const char *const fuzz_tokens[] = {
    "[",           "]",
    "[[",          "]]",
    "\"",          "\\",
    "=",           "\n",
    "#",           ",",
    "{",           "}",
    "'",           ".",
    "\r\n",        "\r",
    "\\u",         "\\U0001F600",
    "\"\"\"",      "-",
    "+",           "_",
    "0",           "9999999999999999999",
    "true",        "1.5",
    "1979-05-27",  "[node]",
    "[[node]]",    "[cluster]",
    "replicas = ", "id = \"n1\"",
    "\xC3",        "\xE2\x82\xAC",
    "\t",          " ",
    "\x00",        "\x7f",
};

START_TEST(random_garbage_never_crashes)
{
    int seeds = test_seeds(3000);
    static char buf[4096];
    for (int seed = 0; seed < seeds; seed++) {
        struct test_rng r = {(uint64_t)seed};
        size_t len = (size_t)test_rng_below(&r, sizeof buf);
        size_t n = 0;
        while (n < len) {
            if (test_rng_below(&r, 2) == 0) {
                buf[n++] = (char)test_rng_next(&r);
                continue;
            }
            const char *tok =
                fuzz_tokens[test_rng_below(&r, sizeof fuzz_tokens / sizeof fuzz_tokens[0])];
            size_t tl = tok[0] == '\0' ? 1 : strlen(tok);
            if (n + tl > len)
                break;
            memcpy(buf + n, tok, tl);
            n += tl;
        }
        parse_hostile(buf, n, seed);
    }
}
END_TEST

START_TEST(mutated_cluster_toml_never_crashes)
{
    static char orig[TEXT_BYTES_MAX], buf[TEXT_BYTES_MAX];
    size_t olen = read_text(REPO_CONFIG, orig, sizeof orig);
    int seeds = test_seeds(3000);
    int accepted = 0;
    for (int seed = 0; seed < seeds; seed++) {
        struct test_rng r = {(uint64_t)seed ^ 0x636f6e666967ull};
        memcpy(buf, orig, olen);
        size_t len = olen;
        int muts = 1 + (int)test_rng_below(&r, 4);
        for (int m = 0; m < muts && len > 0; m++) {
            size_t at = (size_t)test_rng_below(&r, len);
            switch (test_rng_below(&r, 4)) {
            case 0: /* overwrite one byte */
                buf[at] = (char)test_rng_next(&r);
                break;
            case 1: { /* insert a token */
                const char *tok =
                    fuzz_tokens[test_rng_below(&r, sizeof fuzz_tokens / sizeof fuzz_tokens[0])];
                size_t tl = tok[0] == '\0' ? 1 : strlen(tok);
                if (len + tl >= sizeof buf)
                    break;
                memmove(buf + at + tl, buf + at, len - at);
                memcpy(buf + at, tok, tl);
                len += tl;
                break;
            }
            case 2: { /* delete a run */
                size_t k = 1 + (size_t)test_rng_below(&r, 16);
                if (k > len - at)
                    k = len - at;
                memmove(buf + at, buf + at + k, len - at - k);
                len -= k;
                break;
            }
            default: /* truncate */
                len = at;
                break;
            }
        }
        struct config *c = NULL;
        struct rkv_error e = {0};
        if (config_parse(buf, len, "fuzz.toml", &c, &e) == RKV_OK)
            accepted++;
        config_free(c);
        parse_hostile(buf, len, seed);
    }
    /* some mutations (inside comments, say) leave a valid file */
    ck_assert_int_gt(accepted, 0);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("config");
    TCase *tt = tcase_create("toml");
    tcase_add_test(tt, toml_accepts_the_subset);
    tcase_add_test(tt, toml_positions_and_encodings);
    tcase_add_loop_test(tt, toml_rejects_with_position, 0,
                        (int)(sizeof toml_bad / sizeof toml_bad[0]));
    tcase_add_test(tt, toml_bounds_hold);
    suite_add_tcase(su, tt);
    TCase *tc = tcase_create("config");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, repo_config_loads);
    tcase_add_test(tc, defaults_fill_what_is_missing);
    tcase_add_test(tc, every_key_can_be_set);
    tcase_add_loop_test(tc, bad_configs_are_rejected, 0,
                        (int)(sizeof bad_configs / sizeof bad_configs[0]));
    tcase_add_test(tc, node_count_is_bounded);
    tcase_add_test(tc, resp_settings);
    tcase_add_test(tc, data_dir_is_resolved);
    tcase_add_test(tc, files_load_or_fail_cleanly);
    tcase_add_test(tc, allocation_failures_are_clean);
    tcase_add_test(tc, random_garbage_never_crashes);
    tcase_add_test(tc, mutated_cluster_toml_never_crashes);
    suite_add_tcase(su, tc);
    return test_run(su);
}
