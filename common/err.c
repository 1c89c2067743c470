/* err.c: names of error codes and the errno mapping. */
#include "common/err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

static const char *const err_names[RKV_ERR_COUNT] = {
    [RKV_OK] = "success",
    [RKV_ERR_NOMEM] = "out of memory",
    [RKV_ERR_INVAL] = "invalid argument",
    [RKV_ERR_IO] = "I/O error",
    [RKV_ERR_NOSPC] = "no space left on device",
    [RKV_ERR_CORRUPT] = "data corrupt",
    [RKV_ERR_NOTFOUND] = "not found",
    [RKV_ERR_TOOBIG] = "size limit exceeded",
    [RKV_ERR_LOCKED] = "locked by another process",
    [RKV_ERR_STALELOCK] = "stale lock left by a dead process",
    [RKV_ERR_FAILED] = "handle failed; reopen it",
    [RKV_ERR_ABORTED] = "batch aborted by an earlier error",
    [RKV_ERR_CONFIG] = "configuration error",
    [RKV_ERR_PROTO] = "protocol error",
    [RKV_ERR_QUORUM] = "quorum not reached",
    [RKV_ERR_TIMEOUT] = "deadline passed",
    [RKV_ERR_BUSY] = "busy; limit reached",
    [RKV_ERR_CLOSED] = "closed",
    [RKV_ERR_DENIED] = "access denied",
    [RKV_ERR_EXISTS] = "already exists",
    [RKV_ERR_UNAVAILABLE] = "no node reachable",
    [RKV_ERR_EPOCH] = "the sender's ring differs from this node's",
    [RKV_ERR_FULL] = "the hint store is full",
};

const char *rkv_strerror(int code)
{
    if (code < 0 || code >= RKV_ERR_COUNT || err_names[code] == NULL)
        return "unknown error";
    return err_names[code];
}

int rkv_err_from_errno(int errnum)
{
    switch (errnum) {
    case 0:
        return RKV_OK;
    case ENOMEM:
        return RKV_ERR_NOMEM;
    case ENOSPC:
    case EDQUOT:
        return RKV_ERR_NOSPC;
    case EINVAL:
        return RKV_ERR_INVAL;
    case ENOENT:
        return RKV_ERR_NOTFOUND;
    case EEXIST:
        return RKV_ERR_EXISTS;
    case EACCES:
    case EPERM:
        return RKV_ERR_DENIED;
    case EFBIG:
        return RKV_ERR_TOOBIG;
    default:
        return RKV_ERR_IO;
    }
}

int rkv_error_set(struct rkv_error *e, int code, const char *fmt, ...)
{
    if (e == NULL)
        return code;
    e->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return code;
}
