/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The /metrics endpoint: an HTTP server of libmicrohttpd on its own thread, so that a scrape
 * (which may wait on the VMMs, within a budget) never holds up the API. Its socket is bound
 * here, which gives a precise error (address in use) and the port when 0 was asked for.
 */
#include "ops.h"

#include "godwit/log.h"
#include "godwit/prom.h"
#include "godwit/sock.h"

#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* All the VMMs' Status calls of one scrape together; Prometheus's default timeout is 10 s. */
#define SCRAPE_VMM_BUDGET_MS 2000

struct gwd_metrics_http {
	struct gwd *d;
	struct MHD_Daemon *mhd; /* owns the listening socket once started (MHD_stop_daemon) */
};

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type,
			     const void *body, size_t len)
{
	struct MHD_Response *r =
	    MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	enum MHD_Result ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload_data,
			      size_t *upload_data_size, void **con_cls)
{
	struct gwd_metrics_http *h = cls;
	(void)version;
	(void)upload_data;
	(void)con_cls;
	static const char text[] = "text/plain; charset=utf-8";
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
		static const char m[] = "only GET and HEAD\n";
		*upload_data_size = 0; /* whatever was sent is not read */
		return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, text, m, sizeof(m) - 1);
	}
	if (strcmp(url, "/metrics") != 0) {
		static const char m[] = "godwitd serves its metrics at /metrics\n";
		return reply(conn, MHD_HTTP_NOT_FOUND, text, m, sizeof(m) - 1);
	}
	struct gw_buf b;
	gw_buf_init(&b);
	gwd_metrics_render(h->d, &b, SCRAPE_VMM_BUDGET_MS);
	enum MHD_Result ret;
	if (b.err) {
		static const char m[] = "out of memory\n";
		ret = reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, text, m, sizeof(m) - 1);
	} else {
		ret = reply(conn, MHD_HTTP_OK, GW_PROM_CONTENT_TYPE, b.data, b.len);
	}
	gw_buf_release(&b);
	return ret;
}

static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	gw_vlog(GW_LOG_DEBUG, "metrics", fmt, ap);
}

/* A listening TCP socket on addr: its fd, or -errno with why. */
static int listen_on(const char *addr, struct sockaddr_storage *ss, socklen_t *len, char *why,
		     size_t n)
{
	char host[256];
	const char *port, *gai = NULL;
	if (gw_sock_split_host_port(addr, host, sizeof(host), &port) || !*port) {
		snprintf(why, n, "--metrics %s: give HOST:PORT (e.g. %s) or off", addr,
			 GWD_METRICS_DEFAULT);
		return -EINVAL;
	}
	int rc = gw_sock_resolve(host, port, SOCK_STREAM, AI_PASSIVE, ss, len, &gai);
	if (rc) {
		snprintf(why, n, "--metrics %s: %s", addr, gai ? gai : strerror(-rc));
		return rc;
	}
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)ss, *len) < 0 || listen(fd, 16) < 0) {
		rc = -errno;
		snprintf(why, n, "cannot serve metrics on %s: %s", addr, strerror(errno));
		if (fd >= 0)
			close(fd);
		return rc;
	}
	*len = sizeof(*ss);
	getsockname(fd, (struct sockaddr *)ss, len);
	return fd;
}

int gwd_metrics_http_start(struct gwd *d, const char *addr, struct gwd_metrics_http **out,
			   char *why, size_t n)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd = listen_on(addr, &ss, &len, why, n);
	if (fd < 0)
		return fd;
	struct gwd_metrics_http *h = calloc(1, sizeof(*h));
	if (!h) {
		close(fd);
		snprintf(why, n, "out of memory");
		return -ENOMEM;
	}
	h->d = d;
	/* One thread serves them all, a few connections at a time; a client that sends nothing
	 * is dropped after 10 s. */
	h->mhd =
	    MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG |
				 (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
			     0, NULL, NULL, handle, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
			     MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT, (unsigned)8,
			     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10, MHD_OPTION_END);
	if (!h->mhd) {
		close(fd);
		free(h);
		snprintf(why, n, "cannot start the metrics server (libmicrohttpd) on %s", addr);
		return -EIO;
	}
	char bound[300], line[310];
	gw_sock_addr_format((struct sockaddr *)&ss, len, bound, sizeof(bound));
	int l = snprintf(line, sizeof(line), "%s\n", bound);
	int rc = gwd_file_replace(d->state_dir, "metrics-address", line, (size_t)l);
	if (rc) {
		gwd_metrics_http_stop(h);
		snprintf(why, n, "cannot write %s/metrics-address: %s", d->state_dir,
			 strerror(-rc));
		return rc;
	}
	GW_INFO("metrics", "serving http://%s/metrics", bound);
	*out = h;
	return 0;
}

void gwd_metrics_http_stop(struct gwd_metrics_http *h)
{
	if (!h)
		return;
	MHD_stop_daemon(h->mhd);
	free(h);
}
