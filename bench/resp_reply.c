/*
 * resp_reply.c: a parser of RESP2 replies for ringkv-bench's RESP mode,
 * sans-I/O (common/resp.h parses requests, the server's side; this is the
 * client's). It looks at the bytes a connection has received and not
 * consumed, and either returns the first reply whole or says that more
 * bytes are needed; the caller keeps the bytes and calls again, from the
 * same start, after its next read. Nothing is remembered between calls:
 * the replies a benchmark waits for are a line or a line and a body, so
 * starting over costs a header line, and bulk bodies are skipped by length,
 * never scanned.
 *
 * Forms: +status, -error, :integer, $len body (or $-1, nil), *count
 * elements (or *-1, nil); every line ends in \r\n. Bounds: a line is at
 * most RREPLY_LINE_MAX bytes, a number at most 19 digits, a bulk body at
 * most the caller's bulk_max, arrays nest at most RREPLY_DEPTH_MAX deep.
 * Anything else is RR_BAD: the connection's byte stream can no longer be
 * framed and must be closed.
 */
#include "bench/bench.h"

#include <string.h>

#define NUMBER_DIGITS_MAX 19 /* fits int64 without overflow checks */

/* Finds the \r\n ending the line that starts at buf[pos]: *end is the
 * index of its \r. RR_MORE if it is not all there yet, RR_BAD if it is too
 * long or \r is not followed by \n; RR_STATUS (any non-final type) if found. */
static enum rreply_type line_end(const uint8_t *buf, size_t len, size_t pos, size_t *end)
{
    size_t avail = len - pos;
    size_t scan = avail < RREPLY_LINE_MAX ? avail : RREPLY_LINE_MAX;
    const uint8_t *cr = memchr(buf + pos, '\r', scan);
    if (cr == NULL)
        return avail < RREPLY_LINE_MAX ? RR_MORE : RR_BAD;
    size_t at = (size_t)(cr - buf);
    if (at + 1 >= len)
        return RR_MORE;
    if (buf[at + 1] != '\n')
        return RR_BAD;
    *end = at;
    return RR_STATUS;
}

/* Parses the decimal integer buf[from..to): an optional '-' and 1..19
 * digits. */
static bool number_parse(const uint8_t *buf, size_t from, size_t to, int64_t *out)
{
    bool neg = from < to && buf[from] == '-';
    if (neg)
        from++;
    if (to <= from || to - from > NUMBER_DIGITS_MAX)
        return false;
    int64_t v = 0;
    for (size_t i = from; i < to; i++) {
        if (buf[i] < '0' || buf[i] > '9')
            return false;
        v = v * 10 + (buf[i] - '0');
    }
    *out = neg ? -v : v;
    return true;
}

/* Parses the reply at buf[*pos]; on success *pos is just past it. */
static enum rreply_type parse_at(const uint8_t *buf, size_t len, size_t bulk_max, int depth,
                                 size_t *pos, struct rreply *out)
{
    size_t start = *pos, end;
    if (start >= len)
        return RR_MORE;
    enum rreply_type rc = line_end(buf, len, start + 1, &end);
    if (rc != RR_STATUS)
        return rc;
    uint8_t kind = buf[start];
    size_t next = end + 2;
    *out = (struct rreply){.str = buf + start + 1, .len = end - start - 1};
    switch (kind) {
    case '+':
        out->type = RR_STATUS;
        break;
    case '-':
        out->type = RR_ERROR;
        break;
    case ':':
        if (!number_parse(buf, start + 1, end, &out->num))
            return RR_BAD;
        out->type = RR_INT;
        break;
    case '$':
        if (!number_parse(buf, start + 1, end, &out->num) || out->num < -1 ||
            (out->num >= 0 && (uint64_t)out->num > bulk_max))
            return RR_BAD;
        if (out->num == -1) {
            *out = (struct rreply){.type = RR_NIL};
            break;
        }
        if (len - next < (size_t)out->num + 2)
            return RR_MORE;
        if (buf[next + (size_t)out->num] != '\r' || buf[next + (size_t)out->num + 1] != '\n')
            return RR_BAD;
        out->type = RR_BULK;
        out->str = buf + next;
        out->len = (size_t)out->num;
        next += (size_t)out->num + 2;
        break;
    case '*':
        if (!number_parse(buf, start + 1, end, &out->num) || out->num < -1)
            return RR_BAD;
        if (out->num == -1) {
            *out = (struct rreply){.type = RR_NIL};
            break;
        }
        if (depth >= RREPLY_DEPTH_MAX)
            return RR_BAD;
        for (int64_t i = 0; i < out->num; i++) {
            struct rreply elem;
            rc = parse_at(buf, len, bulk_max, depth + 1, &next, &elem);
            if (rc == RR_MORE || rc == RR_BAD)
                return rc;
        }
        out->type = RR_ARRAY;
        out->str = NULL;
        out->len = 0;
        break;
    default:
        return RR_BAD;
    }
    *pos = next;
    return out->type;
}

enum rreply_type rreply_parse(const uint8_t *buf, size_t len, size_t bulk_max, struct rreply *out)
{
    size_t pos = 0;
    enum rreply_type rc = parse_at(buf, len, bulk_max, 0, &pos, out);
    if (rc == RR_MORE || rc == RR_BAD) {
        *out = (struct rreply){.type = rc};
        return rc;
    }
    out->consumed = pos;
    return rc;
}
