/*
 * syncer.c: the sync thread of store_commit_async (storage.h, "Pipelined
 * durability").
 *
 * The owner thread writes a batch, applies it to the keydir, and asks for
 * ticket T (sync_asked = T, under mu). The sync thread takes the highest
 * ticket asked, collects the files marked dirty (clearing the marks) and
 * fdatasyncs them outside the lock, then publishes sync_done = T and
 * writes the eventfd. Every write of tickets <= T was flushed, and its file
 * marked dirty, before T was asked, so one round covers them all; writes
 * that come meanwhile mark their files dirty again for the next round.
 *
 * File descriptors: the thread holds fd numbers of files in the table while
 * it syncs (sync_busy). The owner closes table files only in rollback and
 * in merge_reap_retired, and both wait for sync_busy to clear first
 * (store_sync_quiesce), so a number is never closed or reused under it.
 *
 * A failed fdatasync is sticky (sync_error): nothing is known about what
 * reached the disk, so no later ticket is ever reported durable, and the
 * owner fails the store at its next call.
 */
#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/log.h"
#include "storage/store_int.h"

#define SYNC_FILES_MAX 64 /* per round; more dirty files take more rounds */

static void *sync_main(void *arg)
{
    struct store *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->sync_stop && (s->sync_asked == s->sync_done || s->sync_error))
            pthread_cond_wait(&s->sync_cv, &s->mu);
        if (s->sync_stop)
            break;
        uint64_t ticket = s->sync_asked;
        int fds[SYNC_FILES_MAX];
        uint32_t ids[SYNC_FILES_MAX];
        int err = 0;
        uint32_t failed_id = 0;
        s->sync_busy = true;
        for (bool more = true; more && err == 0;) {
            size_t n = 0;
            for (size_t i = 0; i < s->n_files && n < SYNC_FILES_MAX; i++) {
                if (s->files[i].dirty) {
                    fds[n] = s->files[i].fd;
                    ids[n++] = s->files[i].id;
                    s->files[i].dirty = false;
                }
            }
            more = n == SYNC_FILES_MAX;
            pthread_mutex_unlock(&s->mu);
            for (size_t i = 0; i < n && err == 0; i++) {
                int sys = s->ops->fdatasync(s->ops->ctx, fds[i]);
                if (sys < 0) {
                    err = -sys;
                    failed_id = ids[i];
                }
            }
            pthread_mutex_lock(&s->mu);
        }
        s->sync_busy = false;
        if (err) {
            s->sync_error = rkv_err_from_errno(err);
            RKV_ERROR("storage", "%s: fdatasync %010u.log: %s; store is failed", s->dir, failed_id,
                      strerror(err));
        } else {
            s->sync_done = ticket;
        }
        pthread_cond_broadcast(&s->sync_idle_cv);
        pthread_mutex_unlock(&s->mu);
        uint64_t one = 1;
        ssize_t w = write(s->sync_efd, &one, sizeof one);
        (void)w; /* a full counter is still readable: the wake-up is not lost */
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

int store_sync_start(struct store *s)
{
    s->sync_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->sync_efd < 0)
        return store_fail(s, rkv_err_from_errno(errno), "storage: eventfd: %s", strerror(errno));
    if (pthread_create(&s->sync_thread, NULL, sync_main, s) != 0) {
        close(s->sync_efd);
        s->sync_efd = -1;
        return store_fail(s, RKV_ERR_NOMEM, "storage: cannot start the sync thread");
    }
    s->sync_thread_started = true;
    return RKV_OK;
}

void store_sync_stop(struct store *s)
{
    if (!s->sync_thread_started)
        return;
    pthread_mutex_lock(&s->mu);
    s->sync_stop = true;
    pthread_cond_broadcast(&s->sync_cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->sync_thread, NULL);
    s->sync_thread_started = false;
    close(s->sync_efd);
    s->sync_efd = -1;
}

void store_sync_quiesce(struct store *s)
{
    while (s->sync_busy)
        pthread_cond_wait(&s->sync_idle_cv, &s->mu);
}

int store_commit_async(struct store *s, uint64_t *ticket)
{
    pthread_mutex_lock(&s->mu);
    int err = s->sync_error;
    pthread_mutex_unlock(&s->mu);
    if (err && !s->failed) {
        s->failed = err;
        store_fail(s, err,
                   "storage: fdatasync failed in the sync thread; the store is "
                   "failed, reopen it");
    }
    if (!s->sync_thread_started && !s->failed) {
        int rc = store_sync_start(s);
        if (rc != RKV_OK)
            return rc;
    }
    int rc = store_commit_nosync(s);
    if (rc != RKV_OK)
        return rc;
    pthread_mutex_lock(&s->mu);
    if (s->unsynced_bytes) {
        s->sync_asked++;
        s->unsynced_bytes = 0;
        pthread_cond_signal(&s->sync_cv);
    }
    *ticket = s->sync_asked;
    pthread_mutex_unlock(&s->mu);
    return RKV_OK;
}

void store_sync_fd_clear(struct store *s)
{
    if (s->sync_efd >= 0) {
        uint64_t v;
        ssize_t r = read(s->sync_efd, &v, sizeof v);
        (void)r; /* only resets the wake-up */
    }
}

int store_synced(struct store *s, uint64_t *ticket)
{
    pthread_mutex_lock(&s->mu);
    *ticket = s->sync_done;
    int err = s->sync_error;
    pthread_mutex_unlock(&s->mu);
    return err ? RKV_ERR_FAILED : RKV_OK;
}

int store_sync_fd(const struct store *s)
{
    return s->sync_efd;
}
