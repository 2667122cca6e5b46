/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A listening socket the server did not bind (systemd socket activation hands godwitd its unix
 * socket): gRPC core 1.51 can serve a connected fd (grpc_server_add_channel_from_fd, insecure
 * credentials only) but has no call that takes a listening one, so this thread accepts and hands
 * each connection over.
 */
#include "rpc_priv.h"

#include "godwit/log.h"

#include <errno.h>
#include <fcntl.h>
#include <grpc/grpc_posix.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

struct gw_rpc_fd_listener {
	grpc_server *server;
	int fd;
	int stop_fd; /* eventfd: written once to end the thread */
	pthread_t thread;
	char prefix[32];
};

static void *accept_thread(void *arg)
{
	struct gw_rpc_fd_listener *l = arg;
	struct pollfd p[2] = {{.fd = l->fd, .events = POLLIN},
			      {.fd = l->stop_fd, .events = POLLIN}};
	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			GW_ERR(l->prefix, "poll on the passed socket: %s; no longer accepting",
			       strerror(errno));
			break;
		}
		if (p[1].revents)
			break;
		if (!(p[0].revents & POLLIN))
			continue;
		int c = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (c < 0) {
			/* A connection that went before it was taken, or out of fds: go on. */
			if (errno != EAGAIN && errno != ECONNABORTED && errno != EINTR) {
				GW_WARN(l->prefix, "accept on the passed socket: %s",
					strerror(errno));
				usleep(100 * 1000);
			}
			continue;
		}
		grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
		/* gRPC owns c from here, and closes it with the channel. */
		grpc_server_add_channel_from_fd(l->server, c, creds);
		grpc_server_credentials_release(creds);
	}
	return NULL;
}

int gw_rpc_fd_listener_start(grpc_server *server, int fd, const char *prefix,
			     struct gw_rpc_fd_listener **out)
{
	struct gw_rpc_fd_listener *l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	int rc;
	l->server = server;
	l->fd = fd;
	snprintf(l->prefix, sizeof(l->prefix), "%s", prefix);
	/* Non-blocking: a connection that goes between poll and accept must not stall us. */
	int flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
		rc = -errno;
		goto err_free;
	}
	l->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (l->stop_fd < 0) {
		rc = -errno;
		goto err_free;
	}
	if (pthread_create(&l->thread, NULL, accept_thread, l) != 0) {
		rc = -EAGAIN;
		goto err_close_stop;
	}
	*out = l;
	return 0;

err_close_stop:
	close(l->stop_fd);
err_free:
	free(l);
	return rc;
}

void gw_rpc_fd_listener_stop(struct gw_rpc_fd_listener *l)
{
	if (!l)
		return;
	uint64_t one = 1;
	if (write(l->stop_fd, &one, sizeof(one)) != sizeof(one))
		GW_WARN(l->prefix, "cannot stop the accept thread: %s", strerror(errno));
	pthread_join(l->thread, NULL);
	close(l->stop_fd);
	/* The socket stays open: whoever passed it (systemd) keeps it for the next run. */
	free(l);
}
