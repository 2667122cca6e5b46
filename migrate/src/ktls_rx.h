/* SPDX-License-Identifier: Apache-2.0 */
/* The kernel's TLS on the receiving side of a TLS 1.3 channel, set up by hand from the
 * handshake's secrets (OpenSSL 3.0 hands the kernel only the sending side). */
#ifndef GODWIT_MIGRATE_KTLS_RX_H
#define GODWIT_MIGRATE_KTLS_RX_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Lets every SSL object of ctx keep what the receiving side needs (the peer's traffic
 * secret, the records read since the handshake): 0 or -ENOMEM. */
int mig_ktls_rx_prepare(SSL_CTX *ctx);
/* Gives ssl its own record of those; 0 or -ENOMEM. Without it, install says -ENOTSUP. */
int mig_ktls_rx_attach(SSL *ssl);
/* Hands fd's receiving side to the kernel once the handshake is done and OpenSSL holds no
 * received bytes: 0, -ENOTSUP (not TLS 1.3 with AES-128-GCM, no secret, bytes pending) or
 * the kernel's -errno (no TLS module, no TLS_RX). On failure nothing changed: reads go on
 * through OpenSSL. */
int mig_ktls_rx_install(SSL *ssl, int fd);

/* Whether the kernel's AES runs on the CPU's AES instructions, by the crypto drivers listed
 * in path (/proc/crypto): only then is kTLS worth it. Its generic AES is several times slower
 * than OpenSSL's (measured in the test hosts: 11 against 24 MB/s on one channel), so without
 * such a driver the record layer stays in OpenSSL. */
bool mig_ktls_accelerated(const char *path);

/* HKDF with SHA-256 (RFC 5869): extract and expand, or expand only (key is then the PRK);
 * salt NULL: none. 0, -ENOMEM or -EINVAL. */
int mig_hkdf_sha256(bool expand_only, const void *key, size_t klen, const void *salt, size_t slen,
		    const void *info, size_t ilen, uint8_t *out, size_t olen);

#endif
