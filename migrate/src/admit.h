/* SPDX-License-Identifier: Apache-2.0 */
/* The destination's listener: takes the first connection that proves it is the source. */
#ifndef GODWIT_MIG_ADMIT_H
#define GODWIT_MIG_ADMIT_H

#include "chan.h"
#include "stream.h"

/* Connections a listener drives through their handshakes at once. */
#define MIG_ADMIT_SLOTS 16

struct mig_admit {
	struct mig_tls *tls; /* NULL: the stream runs in clear */
	const char *token;   /* MIG_TOKEN_LEN characters */
	unsigned channel;    /* for the log */
	int timeout_ms;	     /* until the source must have arrived */
	int handshake_ms;    /* for one connection's TLS handshake and hello (10 s) */
};

/*
 * Accepts on lfd until timeout_ms and takes the first connection whose TLS handshake
 * completes with this migration's key (with tls) and whose hello is well-formed and carries
 * the token. The others are answered where they can be read (a refusal reply), closed and
 * logged; up to MIG_ADMIT_SLOTS are served at once, so that connections that stall cannot
 * hold the source out. 0 with *fd and *ssl (NULL in clear) for mig_chan_adopt, and *hello
 * (not checked beyond magic, CRC and token); -ETIMEDOUT with how many were refused and why in why;
 * or -errno when the listener fails (shut down to stop waiting).
 */
int mig_admit_source(int lfd, const struct mig_admit *a, int *fd, SSL **ssl,
		     struct mig_hello *hello, char *why, size_t n);

#endif
