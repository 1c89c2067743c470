/*
 * storage_demo.c: what `make run` shows until the node exists: opens a
 * store, writes and reads some keys, deletes one, expires one, merges, and
 * prints what the engine reports at each step. Run it twice to see the
 * second open recover from hint files.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "storage/storage.h"

static void show_stats(struct store *s, const char *when)
{
    struct store_stats st;
    store_stats(s, &st);
    printf("%-14s keys=%llu files=%u disk=%llu dead=%llu keydir=%llu merges=%llu\n", when,
           (unsigned long long)st.keys, st.files, (unsigned long long)st.disk_bytes,
           (unsigned long long)st.dead_bytes, (unsigned long long)st.keydir_bytes,
           (unsigned long long)st.merges);
}

static int fail(struct store *s, const char *what)
{
    fprintf(stderr, "storage-demo: %s: %s\n", what, store_errmsg(s));
    store_close(s);
    return 1;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "build/demo-data";
    struct store_options o;
    store_options_default(&o);
    o.file_bytes_max = 64 * 1024;
    struct store *s = NULL;
    struct rkv_error err;
    if (store_open(dir, &o, &s, &err) != RKV_OK) {
        fprintf(stderr, "storage-demo: %s\n", err.msg);
        return 1;
    }
    const struct store_open_report *r = store_open_report(s);
    printf("opened %s: %u logs (%u from hint files), %llu records, %llu keys, "
           "%llu bytes truncated, in %llu us\n",
           dir, r->log_files, r->hint_files, (unsigned long long)r->records,
           (unsigned long long)r->keys, (unsigned long long)r->bytes_truncated,
           (unsigned long long)r->elapsed_us);
    show_stats(s, "after open");

    char key[32], val[64];
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < 2000; i++) {
            snprintf(key, sizeof key, "user:%04d", i);
            snprintf(val, sizeof val, "{\"visits\": %d}", round * 2000 + i);
            if (store_put(s, (uint16_t)(i % 256), key, strlen(key), val, strlen(val), 0) != RKV_OK)
                return fail(s, "put");
        }
        if (store_commit(s) != RKV_OK) /* one fdatasync for 2000 writes */
            return fail(s, "commit");
    }
    show_stats(s, "after writes");
    uint64_t soon = rkv_clock_realtime_ms() + 1;
    if (store_put(s, 7, "session:tmp", 11, "x", 1, soon) != RKV_OK ||
        store_del(s, 42, "user:0042", 9) != RKV_OK || store_commit(s) != RKV_OK)
        return fail(s, "put/del");
    struct rkv_buf v = {0};
    int rc = store_get(s, 1, "user:0001", 9, &v, NULL);
    printf("get user:0001 -> %s %.*s\n", rkv_strerror(rc), (int)v.len, (const char *)v.data);
    rc = store_get(s, 42, "user:0042", 9, &v, NULL);
    printf("get user:0042 -> %s (deleted)\n", rkv_strerror(rc));
    while (rkv_clock_realtime_ms() <= soon)
        ;
    rc = store_get(s, 7, "session:tmp", 11, &v, NULL);
    printf("get session:tmp -> %s (expired)\n", rkv_strerror(rc));
    rkv_buf_free(&v);
    if (store_merge(s) == RKV_OK && store_merge_wait(s) != RKV_OK)
        return fail(s, "merge");
    show_stats(s, "after merge");
    if (store_close(s) != RKV_OK)
        return 1;
    printf("closed; run again to reopen from the hint files\n");
    return 0;
}
