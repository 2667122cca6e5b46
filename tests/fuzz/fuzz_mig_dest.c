/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: a migration destination's per-channel loop (migrate/src/dest.c) over a
 * socket, after a good handshake, into the fake VM (fake_vm.c): RAM batches, the VM state and
 * its load at END, SYNC, FAIL, unknown records and raw bytes. The input is a list of chunks,
 * [u8 kind][u16 length][length bytes]: kinds 0-4 become well-framed records (RAM, STATE, SYNC,
 * END, FAIL; a STATE's inner CRCs made right), 5 goes out as raw bytes, 6 names its own tag.
 * GW_FUZZ_SEEDS=DIR writes whole good streams there first.
 */
#include "fake_vm.h"
#include "mig_priv.h"

#include "godwit/crc.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TOKEN "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static const uint32_t tags[] = {MIG_TAG_RAM, MIG_TAG_STATE, MIG_TAG_SYNC, MIG_TAG_END,
				MIG_TAG_FAIL};

/* A RAM batch record whose CRC covers its head as the payload's count says (so that the
 * destination reads on into the indexes and pages). */
static void ram_record_put(struct gw_buf *out, const uint8_t *p, size_t len)
{
	size_t head = len;
	if (len >= MIG_RAMB_HEAD_MIN) {
		uint32_t count;
		memcpy(&count, p, 4);
		uint64_t want = MIG_RAMB_HEAD_MIN + 8 * (uint64_t)count;
		head = want < len ? (size_t)want : len;
	}
	struct gw_sect_hdr h = {.magic = MIG_TAG_RAM,
				.version = MIG_STREAM_VERSION,
				.length = (uint32_t)len,
				.crc = gw_crc32c(0, p, head)};
	gw_buf_put(out, &h, sizeof(h));
	gw_buf_put(out, p, len);
}

/* The bytes the source sends, from the chunks in data. */
static void stream_build(const uint8_t *data, size_t size, struct gw_buf *out)
{
	gw_buf_init(out);
	struct hv_vm *vm = fake_vm();
	struct mig_hello h;
	mig_hello_encode(&h, 0, 1, mig_config_digest(vm), hv_vm_ram_size(vm),
			 (uint32_t)(hv_vm_tsc_khz(vm) > 0 ? hv_vm_tsc_khz(vm) : 0), 0, TOKEN);
	gw_buf_put(out, &h, sizeof(h));
	size_t off = 0;
	while (off + 3 <= size) {
		uint8_t kind = data[off] % 7;
		size_t len = (size_t)data[off + 1] | (size_t)data[off + 2] << 8;
		off += 3;
		if (len > size - off)
			len = size - off;
		const uint8_t *p = data + off;
		off += len;
		if (kind == 5) {
			gw_buf_put(out, p, len);
		} else if (kind == 6 && len >= 4) {
			uint32_t tag;
			memcpy(&tag, p, 4);
			mig_record_put(out, tag, p + 4, (uint32_t)(len - 4));
		} else if (kind == 1) {
			uint8_t *st = malloc(len ? len : 1);
			if (!st)
				continue;
			memcpy(st, p, len);
			fake_fix_crcs(st, len);
			mig_record_put(out, MIG_TAG_STATE, st, (uint32_t)len);
			free(st);
		} else if (kind == 0) {
			ram_record_put(out, p, len);
		} else if (kind < 5) {
			mig_record_put(out, tags[kind], p, (uint32_t)len);
		}
	}
}

struct writer {
	int fd;
	const struct gw_buf *b;
};

/* Sends the stream and reads what the destination answers (its replies would fill the socket
 * and stop it), until the destination's end is shut. */
static void *source_side(void *arg)
{
	struct writer *w = arg;
	size_t done = 0;
	bool shut = false;
	uint8_t sink[4096];
	for (;;) {
		if (done == w->b->len && !shut) {
			shutdown(w->fd, SHUT_WR);
			shut = true;
		}
		struct pollfd pfd = {.fd = w->fd, .events = POLLIN | (shut ? 0 : POLLOUT)};
		if (poll(&pfd, 1, 5000) <= 0)
			break;
		if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = recv(w->fd, sink, sizeof(sink), MSG_DONTWAIT);
			if (n == 0 || (n < 0 && errno != EAGAIN))
				break;
		}
		if (!shut && (pfd.revents & POLLOUT)) {
			ssize_t n = send(w->fd, w->b->data + done, w->b->len - done,
					 MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n > 0)
				done += (size_t)n;
			else if (n < 0 && errno != EAGAIN)
				done = w->b->len; /* the destination stopped reading */
		}
	}
	return NULL;
}

static void chunk(struct gw_buf *b, uint8_t kind, const void *p, size_t len)
{
	uint8_t h[3] = {kind, (uint8_t)len, (uint8_t)(len >> 8)};
	gw_buf_put(b, h, 3);
	gw_buf_put(b, p, len);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	signal(SIGPIPE, SIG_IGN);
	struct gw_buf state, seeds[2];
	if (fake_vm_state(&state))
		return 0;
	/* A RAM batch of one page of data and one zero page. */
	static struct mig_batch b;
	uint8_t page[MIG_PAGE];
	memset(page, 0xa5, sizeof(page));
	mig_batch_begin(&b, 0);
	mig_batch_add(&b, 3, page);
	mig_batch_add_zero(&b, 4);
	int iovcnt;
	struct gw_buf wire;
	gw_buf_init(&wire);
	mig_batch_end(&b, &iovcnt);
	for (int i = 0; i < iovcnt; i++)
		gw_buf_put(&wire, b.iov[i].iov_base, b.iov[i].iov_len);
	const uint8_t *batch = wire.data + sizeof(struct gw_sect_hdr);
	size_t batch_len = wire.len - sizeof(struct gw_sect_hdr);
	for (int i = 0; i < 2; i++) {
		gw_buf_init(&seeds[i]);
		chunk(&seeds[i], 0, batch, batch_len);
		if (i == 1)
			chunk(&seeds[i], 2, NULL, 0); /* SYNC */
		chunk(&seeds[i], 1, state.data, state.len);
		chunk(&seeds[i], 3, NULL, 0); /* END */
	}
	fake_vm_write_seeds(getenv("GW_FUZZ_SEEDS"), "stream", seeds, 2);
	for (int i = 0; i < 2; i++)
		gw_buf_release(&seeds[i]);
	gw_buf_release(&wire);
	gw_buf_release(&state);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hv_vm *vm = fake_vm();
	if (!vm)
		abort(); /* the harness itself is broken: say so loudly */
	struct gw_buf in;
	stream_build(data, size, &in);
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	struct writer w = {.fd = sv[0], .b = &in};
	pthread_t t;
	if (pthread_create(&t, NULL, source_side, &w))
		abort();
	struct mig_params p = {.token = TOKEN, .channels = 1};
	char err[300];
	int rc = mig_dest_serve_fd(vm, &p, sv[1], err, sizeof(err));
	if (getenv("GW_FUZZ_VERBOSE")) /* by hand: what became of each input */
		fprintf(stderr, "%zu bytes: %s\n", size, rc ? err : "ready");
	shutdown(sv[1], SHUT_RDWR); /* the source side sees the end and stops */
	pthread_join(t, NULL);
	close(sv[0]);
	close(sv[1]);
	gw_buf_release(&in);
	return 0;
}
