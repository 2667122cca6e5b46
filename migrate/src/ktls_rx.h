/* SPDX-License-Identifier: Apache-2.0 */
/* The kernel's TLS on the receiving side of a TLS 1.3 channel, set up by hand from the
 * handshake's secrets (OpenSSL 3.0 hands the kernel only the sending side). */
#ifndef GODWIT_MIGRATE_KTLS_RX_H
#define GODWIT_MIGRATE_KTLS_RX_H

#include <openssl/ssl.h>

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

#endif
