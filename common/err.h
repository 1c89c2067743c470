/*
 * err.h: the one error type of ringkv.
 *
 * Every function that can fail returns an int that is RKV_OK (0) or one of
 * the codes below; rkv_strerror() names the code. A code says what kind of
 * failure happened; where a caller needs to know what failed and where, the
 * module also fills a message: handles keep the last one (store_errmsg()),
 * constructors that have no handle yet fill a struct rkv_error.
 *
 * The numeric values are part of the client API and the wire protocol: never
 * renumber, only append.
 */
#ifndef RKV_ERR_H
#define RKV_ERR_H

#include <stddef.h>

enum rkv_err {
    RKV_OK = 0,
    RKV_ERR_NOMEM = 1,     /* an allocation failed */
    RKV_ERR_INVAL = 2,     /* a malformed argument or option */
    RKV_ERR_IO = 3,        /* the operating system reported an I/O error */
    RKV_ERR_NOSPC = 4,     /* no space left on the device */
    RKV_ERR_CORRUPT = 5,   /* stored bytes fail their checksum or format */
    RKV_ERR_NOTFOUND = 6,  /* no such key (or it expired, or was deleted) */
    RKV_ERR_TOOBIG = 7,    /* a size limit would be exceeded */
    RKV_ERR_LOCKED = 8,    /* another live process holds the lock */
    RKV_ERR_STALELOCK = 9, /* a lock left behind by a process that died */
    RKV_ERR_FAILED = 10,   /* the handle hit an unrecoverable error; reopen */
    RKV_ERR_ABORTED = 11,  /* the batch was rolled back by an earlier error */
    RKV_ERR_CONFIG = 12,   /* a configuration file is wrong */
    RKV_ERR_PROTO = 13,    /* a message is malformed or of the wrong version */
    RKV_ERR_QUORUM = 14,   /* too few replicas answered */
    RKV_ERR_TIMEOUT = 15,  /* the deadline passed */
    RKV_ERR_BUSY = 16,     /* a queue or in-flight limit is full; retry later */
    RKV_ERR_CLOSED = 17,   /* the connection or handle is closed */
    RKV_ERR_DENIED = 18,   /* authentication or authorisation refused */
    RKV_ERR_EXISTS = 19,   /* the object already exists */
    RKV_ERR_UNAVAILABLE = 20, /* no node could be reached */
    RKV_ERR_EPOCH = 21,    /* a message from a node whose ring epoch differs */
    RKV_ERR_FULL = 22,     /* a bounded store is full (the hint store) */
};

/* Number of codes; every code is below this. */
#define RKV_ERR_COUNT 23

/* Static English name of a code, never NULL ("unknown error" past the end). */
const char *rkv_strerror(int code);

/* Maps an errno value to the closest code (ENOSPC -> RKV_ERR_NOSPC, ...). */
int rkv_err_from_errno(int errnum);

/*
 * An error with a message, for calls that have no handle to keep one in
 * (store_open, config parsing). msg is always NUL-terminated.
 */
#define RKV_ERROR_MSG_BYTES 256
struct rkv_error {
    int code;
    char msg[RKV_ERROR_MSG_BYTES];
};

/* Sets e->code and formats e->msg; e may be NULL. Returns code. */
int rkv_error_set(struct rkv_error *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
