/* cert.c: reading and writing CurveZMQ certificate files (see cert.h). */
#include "common/cert.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

static bool name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > CERT_NAME_BYTES)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '.' || ch == '-'))
            return false;
    }
    return true;
}

bool cert_z85_ok(const char *s)
{
    uint8_t raw[32];
    return strlen(s) == CERT_Z85_BYTES && zmq_z85_decode(raw, s) != NULL;
}

int cert_generate(const char *name, struct cert *out, struct rkv_error *err)
{
    memset(out, 0, sizeof *out);
    if (!name_ok(name))
        return rkv_error_set(err, RKV_ERR_INVAL,
                             "cert: name \"%s\" must be 1..%d characters of A-Z a-z 0-9 _ . -",
                             name, CERT_NAME_BYTES);
    if (zmq_curve_keypair(out->public_key, out->secret_key) != 0)
        return rkv_error_set(err, RKV_ERR_IO, "cert: zmq_curve_keypair: %s (is libzmq built "
                             "with CURVE?)", zmq_strerror(zmq_errno()));
    snprintf(out->name, sizeof out->name, "%s", name);
    return RKV_OK;
}

static int write_file(const char *path, const char *text, mode_t mode, bool force,
                      struct rkv_error *err)
{
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (force ? O_TRUNC : O_EXCL);
    int fd = open(path, flags, mode);
    if (fd < 0)
        return rkv_error_set(err, errno == EEXIST ? RKV_ERR_EXISTS : RKV_ERR_IO,
                             "cert: cannot create %s: %s%s", path, strerror(errno),
                             errno == EEXIST ? " (use --force to replace it)" : "");
    size_t len = strlen(text);
    bool ok = fchmod(fd, mode) == 0 && write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
    int saved = errno;
    close(fd);
    if (!ok)
        return rkv_error_set(err, RKV_ERR_IO, "cert: cannot write %s: %s", path, strerror(saved));
    return RKV_OK;
}

static void stamp_now(char *stamp, size_t cap)
{
    time_t now = time(NULL);
    struct tm tm;
    strftime(stamp, cap, "%Y-%m-%d %H:%M:%S", gmtime_r(&now, &tm));
}

static int make_dir(const char *dir, struct rkv_error *err)
{
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return rkv_error_set(err, RKV_ERR_IO, "cert: cannot create %s: %s", dir, strerror(errno));
    return RKV_OK;
}

int cert_save_public(const struct cert *c, const char *dir, bool force, struct rkv_error *err)
{
    char path[4096], text[1024], stamp[64];
    stamp_now(stamp, sizeof stamp);
    int rc = make_dir(dir, err);
    if (rc != RKV_OK)
        return rc;
    snprintf(path, sizeof path, "%s/%s.key", dir, c->name);
    snprintf(text, sizeof text,
             "#   ****  Generated on %s UTC by ringkv keygen  ****\n"
             "#   ZeroMQ CURVE Public Certificate\n"
             "#   Exchange securely, or use a secure mechanism to verify the contents\n"
             "#   of this file after exchange.\n\n"
             "metadata\n    name = \"%s\"\ncurve\n    public-key = \"%s\"\n",
             stamp, c->name, c->public_key);
    return write_file(path, text, 0644, force, err);
}

int cert_save(const struct cert *c, const char *dir, bool force, struct rkv_error *err)
{
    char path[4096], text[1024], stamp[64];
    stamp_now(stamp, sizeof stamp);
    int rc = make_dir(dir, err);
    if (rc != RKV_OK)
        return rc;
    snprintf(path, sizeof path, "%s/%s.key_secret", dir, c->name);
    snprintf(text, sizeof text,
             "#   ****  Generated on %s UTC by ringkv keygen  ****\n"
             "#   ZeroMQ CURVE **Secret** Certificate\n"
             "#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.\n\n"
             "metadata\n    name = \"%s\"\ncurve\n    public-key = \"%s\"\n"
             "    secret-key = \"%s\"\n",
             stamp, c->name, c->public_key, c->secret_key);
    rc = write_file(path, text, 0600, force, err);
    return rc == RKV_OK ? cert_save_public(c, dir, force, err) : rc;
}

/* Reads `key = "value"` (after indentation) into val. */
static bool parse_property(const char *line, char *key, size_t key_cap, char *val,
                           size_t val_cap)
{
    const char *eq = strchr(line, '=');
    if (eq == NULL)
        return false;
    size_t klen = (size_t)(eq - line);
    while (klen && line[klen - 1] == ' ')
        klen--;
    if (klen == 0 || klen >= key_cap)
        return false;
    memcpy(key, line, klen);
    key[klen] = '\0';
    const char *v = eq + 1;
    while (*v == ' ')
        v++;
    if (*v != '"')
        return false;
    const char *end = strchr(v + 1, '"');
    if (end == NULL || end[1] != '\0' || (size_t)(end - v - 1) >= val_cap)
        return false;
    memcpy(val, v + 1, (size_t)(end - v - 1));
    val[end - v - 1] = '\0';
    return true;
}

int cert_parse(const char *text, size_t len, const char *name, bool secret, struct cert *out,
               struct rkv_error *err)
{
    memset(out, 0, sizeof *out);
    enum { NONE, METADATA, CURVE } section = NONE;
    char line[256];
    size_t pos = 0;
    for (int no = 1; pos < len; no++) {
        size_t end = pos;
        while (end < len && text[end] != '\n')
            end++;
        size_t n = end - pos;
        if (n >= sizeof line || memchr(text + pos, '\0', n))
            return rkv_error_set(err, RKV_ERR_CONFIG, "%s:%d: line too long or binary", name, no);
        memcpy(line, text + pos, n);
        line[n] = '\0';
        if (n && line[n - 1] == '\r')
            line[--n] = '\0';
        pos = end + 1;
        if (n == 0 || line[0] == '#')
            continue;
        if (line[0] != ' ') {
            if (strcmp(line, "metadata") == 0)
                section = METADATA;
            else if (strcmp(line, "curve") == 0)
                section = CURVE;
            else
                return rkv_error_set(err, RKV_ERR_CONFIG, "%s:%d: unknown section \"%s\"", name,
                                     no, line);
            continue;
        }
        char key[32], val[CERT_NAME_BYTES + 1];
        const char *p = line;
        while (*p == ' ')
            p++;
        if (section == NONE || !parse_property(p, key, sizeof key, val, sizeof val))
            return rkv_error_set(err, RKV_ERR_CONFIG, "%s:%d: expected name = \"value\"", name,
                                 no);
        if (section == METADATA && strcmp(key, "name") == 0)
            snprintf(out->name, sizeof out->name, "%s", val);
        else if (section == CURVE &&
                 (strcmp(key, "public-key") == 0 || strcmp(key, "secret-key") == 0)) {
            if (strlen(val) != CERT_Z85_BYTES)
                return rkv_error_set(err, RKV_ERR_CONFIG,
                                     "%s:%d: %s must be %d Z85 characters", name, no, key,
                                     CERT_Z85_BYTES);
            memcpy(key[0] == 'p' ? out->public_key : out->secret_key, val, CERT_Z85_BYTES + 1);
        }
        else if (section == CURVE)
            return rkv_error_set(err, RKV_ERR_CONFIG, "%s:%d: unknown key \"%s\"", name, no, key);
        /* other metadata is allowed: zcert files may carry more */
    }
    if (!cert_z85_ok(out->public_key))
        return rkv_error_set(err, RKV_ERR_CONFIG, "%s: no valid public-key (40 Z85 characters)",
                             name);
    if (secret && !cert_z85_ok(out->secret_key))
        return rkv_error_set(err, RKV_ERR_CONFIG, "%s: no valid secret-key (40 Z85 characters)",
                             name);
    if (!secret && out->secret_key[0])
        return rkv_error_set(err, RKV_ERR_CONFIG,
                             "%s: a public certificate must not hold a secret-key", name);
    return RKV_OK;
}

static int read_cert(const char *path, bool secret, struct cert *out, struct rkv_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return rkv_error_set(err, errno == ENOENT ? RKV_ERR_NOTFOUND : RKV_ERR_IO,
                             "cert: cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return rkv_error_set(err, RKV_ERR_IO, "cert: %s is not a regular file", path);
    }
    if (secret && (st.st_mode & 077)) {
        close(fd);
        return rkv_error_set(err, RKV_ERR_DENIED,
                             "cert: %s can be read or written by others (mode %04o); run: "
                             "chmod 600 %s",
                             path, (unsigned)(st.st_mode & 07777), path);
    }
    char text[CERT_FILE_BYTES_MAX + 1];
    ssize_t n = read(fd, text, sizeof text);
    close(fd);
    if (n < 0 || n > CERT_FILE_BYTES_MAX)
        return rkv_error_set(err, RKV_ERR_CONFIG, "cert: %s is unreadable or over %d bytes",
                             path, CERT_FILE_BYTES_MAX);
    return cert_parse(text, (size_t)n, path, secret, out, err);
}

int cert_load_public(const char *path, struct cert *out, struct rkv_error *err)
{
    return read_cert(path, false, out, err);
}

int cert_load_secret(const char *path, struct cert *out, struct rkv_error *err)
{
    return read_cert(path, true, out, err);
}
