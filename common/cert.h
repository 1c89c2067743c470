/*
 * cert.h: CurveZMQ key pairs in ZeroMQ's certificate files.
 *
 * A key pair is two files in the format CZMQ's zcert writes (ZPL: a
 * "metadata" section with name = "...", a "curve" section with public-key
 * and, in the secret file only, secret-key, each a 40-character Z85 string):
 *
 *   NAME.key          the public certificate: give it to peers and nodes
 *   NAME.key_secret   the secret certificate: mode 0600, never shared
 *
 * Reading is strict (unknown sections or malformed lines are errors naming
 * the file and line) and a secret file that anyone but its owner can read
 * or write is refused, as SSH refuses such a private key.
 */
#ifndef RKV_CERT_H
#define RKV_CERT_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

#define CERT_Z85_BYTES 40      /* a 32-byte key in Z85 */
#define CERT_NAME_BYTES 64
#define CERT_FILE_BYTES_MAX 4096

struct cert {
    char name[CERT_NAME_BYTES + 1];
    char public_key[CERT_Z85_BYTES + 1];  /* Z85, NUL-terminated */
    char secret_key[CERT_Z85_BYTES + 1];  /* "" when read from a public file */
};

/* Makes a new key pair named name (zmq_curve_keypair). RKV_ERR_INVAL if
 * the name is not 1..64 characters of [A-Za-z0-9_.-]. */
int cert_generate(const char *name, struct cert *out, struct rkv_error *err);

/* Writes DIR/NAME.key (0644) and DIR/NAME.key_secret (0600), refusing to
 * overwrite either unless force (RKV_ERR_EXISTS). */
int cert_save(const struct cert *c, const char *dir, bool force, struct rkv_error *err);

/* Writes only DIR/NAME.key (for a node's allow-list). */
int cert_save_public(const struct cert *c, const char *dir, bool force, struct rkv_error *err);

/* Reads a public certificate (secret_key left empty). */
int cert_load_public(const char *path, struct cert *out, struct rkv_error *err);
/* Reads a secret certificate; RKV_ERR_DENIED if its mode lets anyone but
 * the owner read or write it. */
int cert_load_secret(const char *path, struct cert *out, struct rkv_error *err);

/* Parses certificate text (what the loaders read); secret says whether a
 * secret-key is required. name is used in messages. */
int cert_parse(const char *text, size_t len, const char *name, bool secret, struct cert *out,
               struct rkv_error *err);

/* True if s is a 40-character Z85 string that decodes to 32 bytes. */
bool cert_z85_ok(const char *s);

#endif
