/* SPDX-License-Identifier: Apache-2.0 */
/* TCP plumbing for the migration stream. */
#ifndef GODWIT_MIG_NET_H
#define GODWIT_MIG_NET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

int mig_net_listen(const char *host, int *fd, uint16_t *port);
int mig_net_connect(const char *host, uint16_t port, int timeout_ms);
/* Accepts one connection within timeout_ms: fd, or -ETIMEDOUT / -errno. */
int mig_net_accept(int lfd, int timeout_ms);
/* Whole writes and reads on sockets; -EPIPE/-ECONNRESET/... on failure (writes never raise
 * SIGPIPE), -ENODATA at EOF before n. */
int mig_net_writev_full(int fd, struct iovec *iov, int iovcnt);
int mig_net_write_full(int fd, const void *p, size_t n);
int mig_net_read_full(int fd, void *p, size_t n);
void mig_net_tune(int fd);

#endif
