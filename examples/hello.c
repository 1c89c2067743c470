/*
 * hello.c: a first program against libringkv, built from the installed
 * library with pkg-config:
 *
 *   cc hello.c $(pkg-config --cflags --libs ringkv) -o hello
 *   ./hello cluster.toml            (or: ./hello 127.0.0.1:7101)
 *
 * It writes a key, reads it back with its siblings and context, replaces
 * the value with that context, and deletes the key.
 */
#include <stdio.h>
#include <string.h>

#include <ringkv.h>

static int fail(struct ringkv_client *c, const char *what, int rc)
{
    fprintf(stderr, "hello: %s: %s (%s)\n", what, ringkv_strerror(rc), ringkv_errmsg(c));
    ringkv_close(c);
    return rc == RINGKV_EUNAVAILABLE || rc == RINGKV_ETIMEOUT ? 3 : 1;
}

int main(int argc, char **argv)
{
    const char *where = argc > 1 ? argv[1] : "cluster.toml";
    struct ringkv_options o;
    ringkv_options_default(&o);
    if (strchr(where, ':') && !strstr(where, ".toml"))
        o.seeds = where;
    else
        o.config_path = where;
    o.connect_timeout_ms = 2000;
    printf("libringkv %s\n", ringkv_version(NULL, NULL, NULL));

    struct ringkv_client *c;
    int rc = ringkv_connect(&o, &c);
    if (rc != RINGKV_OK)
        return fail(c, "connect", rc);

    const char *key = "hello";
    rc = ringkv_put(c, key, strlen(key), "world", 5, NULL, NULL);
    if (rc != RINGKV_OK)
        return fail(c, "put", rc);

    struct ringkv_result r;
    rc = ringkv_get(c, key, strlen(key), NULL, &r);
    if (rc != RINGKV_OK) {
        ringkv_result_free(&r);
        return fail(c, "get", rc);
    }
    printf("%s has %zu sibling(s), answered by %zu replicas:\n", key, r.n_siblings,
           r.n_answered);
    for (size_t i = 0; i < r.n_siblings; i++)
        printf("  %.*s\n", (int)r.siblings[i].value_len, (const char *)r.siblings[i].value);

    /* replace whatever is there: write with the context of the read */
    struct ringkv_request_options w = {.context = r.context, .context_len = r.context_len};
    rc = ringkv_put(c, key, strlen(key), "ringkv", 6, &w, NULL);
    ringkv_result_free(&r);
    if (rc != RINGKV_OK)
        return fail(c, "put with context", rc);
    rc = ringkv_del(c, key, strlen(key), NULL, NULL);
    if (rc != RINGKV_OK)
        return fail(c, "del", rc);
    printf("replaced and deleted %s\n", key);
    ringkv_close(c);
    return 0;
}
