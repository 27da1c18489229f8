/*
 * sha256.h — SHA-256 (FIPS 180-4), for keys that must not be stored in
 * clear (cache keys made from secrets). Plain C, no dependency: neither
 * libcurl nor SQLite exports one.
 */
#ifndef FL_SHA256_H
#define FL_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct fl_sha256 {
  uint32_t h[8];
  uint64_t total;      /* bytes hashed so far */
  unsigned char block[64];
  size_t used;         /* bytes waiting in block */
} fl_sha256;

void fl_sha256_init(fl_sha256 *c);
void fl_sha256_update(fl_sha256 *c, const void *data, size_t n);
void fl_sha256_final(fl_sha256 *c, unsigned char digest[32]);

/* The digest of data[0..n) as 64 lower-case hex digits and a NUL. */
void fl_sha256_hex(const void *data, size_t n, char out[65]);

#endif
