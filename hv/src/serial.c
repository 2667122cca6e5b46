/* SPDX-License-Identifier: Apache-2.0 */
/* A 16550A UART at COM1 (0x3F8, IRQ 4) whose console is stdout, a file or a unix socket. */
#include "hv_priv.h"

#include "godwit/fields.h"
#include "godwit/log.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define COM1_PORT   0x3F8u
#define COM1_IRQ    4u
#define RX_CAP	    256u
#define MAX_CLIENTS 4

/* Register bits, from the PC16550D datasheet. */
#define IER_RDI	  0x01u
#define IER_THRI  0x02u
#define IIR_NONE  0x01u
#define IIR_THRI  0x02u
#define IIR_RDI	  0x04u
#define IIR_FIFO  0xC0u
#define FCR_FIFO  0x01u
#define FCR_CLRRX 0x02u
#define LCR_DLAB  0x80u
#define MCR_LOOP  0x10u
#define LSR_DR	  0x01u
#define LSR_THRE  0x20u
#define LSR_TEMT  0x40u

#define SERIAL_STATE_MAGIC   GW_FOURCC('G', 'U', 'R', 'T')
#define SERIAL_STATE_VERSION 2 /* 2: a field table instead of the raw register struct */

struct hv_serial_regs {
	uint8_t ier, lcr, mcr, scr, fcr, dll, dlm, thr_pending;
	uint16_t rx_head, rx_len;
	uint8_t rx[RX_CAP];
};

struct hv_serial {
	struct hv_vm *vm;
	pthread_mutex_t lock;
	struct hv_serial_regs r;
	bool irq_level;

	enum hv_console_kind kind;
	int out_fd;		  /* STDIO, FILE, FD */
	int in_fd;		  /* STDIO: stdin, else -1 */
	int listen_fd;		  /* UNIX */
	int clients[MAX_CLIENTS]; /* closed only by the console thread (and destroy after it) */
	bool client_gone[MAX_CLIENTS]; /* a send failed: shut down, the thread closes it */
	char sock_path[108];
	int stop_fd; /* eventfd that ends the console thread */
	pthread_t thread;
	bool thread_started;
};

int hv_console_parse(const char *s, struct hv_console_config *out)
{
	memset(out, 0, sizeof(*out));
	out->fd = -1;
	if (strcmp(s, "stdio") == 0) {
		out->kind = HV_CONSOLE_STDIO;
	} else if (strcmp(s, "none") == 0) {
		out->kind = HV_CONSOLE_NONE;
	} else if (strncmp(s, "file:", 5) == 0 && s[5]) {
		out->kind = HV_CONSOLE_FILE;
		out->path = s + 5;
	} else if (strncmp(s, "unix:", 5) == 0 && s[5]) {
		if (strlen(s + 5) >= sizeof(((struct sockaddr_un *)0)->sun_path))
			return -ENAMETOOLONG;
		out->kind = HV_CONSOLE_UNIX;
		out->path = s + 5;
	} else {
		return -EINVAL;
	}
	return 0;
}

static uint8_t iir_of(const struct hv_serial *s)
{
	uint8_t fifo = (s->r.fcr & FCR_FIFO) ? IIR_FIFO : 0;
	if ((s->r.ier & IER_RDI) && s->r.rx_len)
		return IIR_RDI | fifo;
	if ((s->r.ier & IER_THRI) && s->r.thr_pending)
		return IIR_THRI | fifo;
	return IIR_NONE | fifo;
}

/* Caller holds lock. The line follows the interrupt state (level-triggered ISA IRQ). */
static void update_irq(struct hv_serial *s)
{
	bool level = (iir_of(s) & IIR_NONE) == 0;
	if (level != s->irq_level) {
		s->irq_level = level;
		hv_vm_irq_line(s->vm, COM1_IRQ, level);
	}
}

static void rx_push(struct hv_serial *s, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n && s->r.rx_len < RX_CAP; i++) {
		s->r.rx[(s->r.rx_head + s->r.rx_len) % RX_CAP] = p[i];
		s->r.rx_len++;
	}
}

static void emit(struct hv_serial *s, uint8_t c)
{
	if (s->out_fd >= 0) {
		/* A console that cannot keep up loses characters; the guest never blocks on it. */
		if (write(s->out_fd, &c, 1) < 0 && errno != EAGAIN)
			GW_DEBUG(s->vm->name, "console write failed: %s", strerror(errno));
	}
	for (int i = 0; i < MAX_CLIENTS; i++) {
		if (s->clients[i] >= 0 && !s->client_gone[i] &&
		    send(s->clients[i], &c, 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 &&
		    errno != EAGAIN) {
			/* Not closed here: the console thread polls this fd, and a number closed
			 * under it could be reused by another file that it would then read from
			 * and close. The shutdown wakes its poll; it closes the fd. */
			s->client_gone[i] = true;
			shutdown(s->clients[i], SHUT_RDWR);
		}
	}
}

static void serial_write(void *opaque, struct hv_vcpu *vcpu, uint64_t off, uint64_t val,
			 unsigned size)
{
	(void)vcpu;
	(void)size;
	struct hv_serial *s = opaque;
	uint8_t v = (uint8_t)val;
	pthread_mutex_lock(&s->lock);
	bool dlab = s->r.lcr & LCR_DLAB;
	switch (off) {
	case 0:
		if (dlab) {
			s->r.dll = v;
		} else {
			if (s->r.mcr & MCR_LOOP)
				rx_push(s, &v, 1);
			else
				emit(s, v);
			s->r.thr_pending = 1; /* transmitted at once: THR is empty again */
		}
		break;
	case 1:
		if (dlab) {
			s->r.dlm = v;
		} else {
			/* Enabling THRI with an empty THR raises the interrupt (16550 behaviour).
			 */
			if (!(s->r.ier & IER_THRI) && (v & IER_THRI))
				s->r.thr_pending = 1;
			s->r.ier = v & 0x0F;
		}
		break;
	case 2:
		s->r.fcr = v & (FCR_FIFO | 0xC0);
		if (v & FCR_CLRRX)
			s->r.rx_len = 0;
		break;
	case 3:
		s->r.lcr = v;
		break;
	case 4:
		s->r.mcr = v & 0x1F;
		break;
	case 7:
		s->r.scr = v;
		break;
	default:
		break; /* LSR and MSR are read-only */
	}
	update_irq(s);
	pthread_mutex_unlock(&s->lock);
}

static void serial_read(void *opaque, struct hv_vcpu *vcpu, uint64_t off, uint64_t *val,
			unsigned size)
{
	(void)vcpu;
	(void)size;
	struct hv_serial *s = opaque;
	uint8_t v = 0;
	pthread_mutex_lock(&s->lock);
	bool dlab = s->r.lcr & LCR_DLAB;
	switch (off) {
	case 0:
		if (dlab) {
			v = s->r.dll;
		} else if (s->r.rx_len) {
			v = s->r.rx[s->r.rx_head];
			s->r.rx_head = (uint16_t)((s->r.rx_head + 1) % RX_CAP);
			s->r.rx_len--;
		}
		break;
	case 1:
		v = dlab ? s->r.dlm : s->r.ier;
		break;
	case 2:
		v = iir_of(s);
		/* Reading IIR while it reports THRI clears that source. */
		if ((v & 0x0F) == IIR_THRI)
			s->r.thr_pending = 0;
		break;
	case 3:
		v = s->r.lcr;
		break;
	case 4:
		v = s->r.mcr;
		break;
	case 5:
		v = LSR_THRE | LSR_TEMT | (s->r.rx_len ? LSR_DR : 0);
		break;
	case 6:
		/* Loopback mirrors MCR outputs into MSR; otherwise report DCD, DSR and CTS. */
		v = (s->r.mcr & MCR_LOOP) ? (uint8_t)((s->r.mcr & 0x0F) << 4) : 0xB0;
		break;
	case 7:
		v = s->r.scr;
		break;
	default:
		break;
	}
	update_irq(s);
	pthread_mutex_unlock(&s->lock);
	*val = v;
}

static const struct hv_io_ops serial_io = {
    .read = serial_read,
    .write = serial_write,
};

/* Field ids are part of the format (docs/state-format.md): never renumber, only add. */
static const struct gw_field serial_fields[] = {
    GW_FIELD(1, struct hv_serial_regs, ier, 0),
    GW_FIELD(2, struct hv_serial_regs, lcr, 0),
    GW_FIELD(3, struct hv_serial_regs, mcr, 0),
    GW_FIELD(4, struct hv_serial_regs, scr, 0),
    GW_FIELD(5, struct hv_serial_regs, fcr, 0),
    GW_FIELD(6, struct hv_serial_regs, dll, 0),
    GW_FIELD(7, struct hv_serial_regs, dlm, 0),
    GW_FIELD(8, struct hv_serial_regs, thr_pending, 0),
    GW_FIELD(9, struct hv_serial_regs, rx_head, 0),
    GW_FIELD(10, struct hv_serial_regs, rx_len, 0),
    GW_FIELD(11, struct hv_serial_regs, rx, 0),
};

static const struct gw_fields serial_table = GW_FIELDS_TABLE(
    "uart16550", SERIAL_STATE_MAGIC, SERIAL_STATE_VERSION, struct hv_serial_regs, serial_fields);

static int serial_save(void *opaque, struct gw_buf *out)
{
	struct hv_serial *s = opaque;
	pthread_mutex_lock(&s->lock);
	struct hv_serial_regs r = s->r;
	pthread_mutex_unlock(&s->lock);
	return gw_fields_save(&serial_table, &r, out);
}

static int serial_load(void *opaque, const void *data, size_t len)
{
	struct hv_serial *s = opaque;
	struct gw_rd rd;
	struct hv_serial_regs r = {0};
	gw_rd_init(&rd, data, len);
	int rc = gw_fields_load(&serial_table, &rd, &r);
	if (rc)
		return rc;
	if (rd.left || r.rx_len > RX_CAP || r.rx_head >= RX_CAP)
		return -EBADMSG;
	pthread_mutex_lock(&s->lock);
	s->r = r;
	update_irq(s);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static const struct hv_device_ops serial_dev_ops = {
    .kind = "uart16550",
    .save = serial_save,
    .load = serial_load,
};

static void accept_client(struct hv_serial *s)
{
	int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	pthread_mutex_lock(&s->lock);
	for (int i = 0; i < MAX_CLIENTS; i++) {
		if (s->clients[i] < 0) {
			s->clients[i] = fd;
			fd = -1;
			break;
		}
	}
	pthread_mutex_unlock(&s->lock);
	if (fd >= 0) {
		static const char busy[] = "godwit: console busy (4 clients attached)\n";
		(void)!write(fd, busy, sizeof(busy) - 1);
		close(fd);
	}
}

static void *console_thread(void *arg)
{
	struct hv_serial *s = arg;
	for (;;) {
		struct pollfd p[MAX_CLIENTS + 3];
		int n = 0;
		p[n++] = (struct pollfd){.fd = s->stop_fd, .events = POLLIN};
		if (s->listen_fd >= 0)
			p[n++] = (struct pollfd){.fd = s->listen_fd, .events = POLLIN};
		if (s->in_fd >= 0)
			p[n++] = (struct pollfd){.fd = s->in_fd, .events = POLLIN};
		pthread_mutex_lock(&s->lock);
		int first_client = n;
		for (int i = 0; i < MAX_CLIENTS; i++)
			p[n++] = (struct pollfd){.fd = s->clients[i], .events = POLLIN};
		pthread_mutex_unlock(&s->lock);
		if (poll(p, (nfds_t)n, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[0].revents)
			break;
		for (int i = 1; i < n; i++) {
			if (!p[i].revents || p[i].fd < 0)
				continue;
			if (p[i].fd == s->listen_fd) {
				accept_client(s);
				continue;
			}
			uint8_t buf[64];
			ssize_t r = read(p[i].fd, buf, sizeof(buf));
			pthread_mutex_lock(&s->lock);
			if (r > 0) {
				rx_push(s, buf, (size_t)r);
				update_irq(s);
			} else if (p[i].fd == s->in_fd) {
				s->in_fd = -1; /* stdin closed: stop reading it */
			} else if (i >= first_client && s->clients[i - first_client] == p[i].fd) {
				s->clients[i - first_client] = -1;
				s->client_gone[i - first_client] = false;
				close(p[i].fd);
			}
			pthread_mutex_unlock(&s->lock);
		}
	}
	return NULL;
}

static int open_unix(struct hv_serial *s, const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	snprintf(s->sock_path, sizeof(s->sock_path), "%s", path);
	s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s->listen_fd < 0)
		return -errno;
	unlink(path);
	if (bind(s->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(s->listen_fd, 4) < 0) {
		int rc = -errno;
		close(s->listen_fd);
		s->listen_fd = -1;
		return rc;
	}
	return 0;
}

int hv_serial_create(struct hv_vm *vm, const struct hv_console_config *cfg, struct hv_serial **out)
{
	struct hv_serial *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->vm = vm;
	s->kind = cfg->kind;
	s->out_fd = s->in_fd = s->listen_fd = -1;
	for (int i = 0; i < MAX_CLIENTS; i++)
		s->clients[i] = -1;
	pthread_mutex_init(&s->lock, NULL);
	int rc = 0;
	switch (cfg->kind) {
	case HV_CONSOLE_NONE:
		break;
	case HV_CONSOLE_STDIO:
		s->out_fd = dup(STDOUT_FILENO);
		s->in_fd = dup(STDIN_FILENO);
		break;
	case HV_CONSOLE_FILE:
		s->out_fd = open(cfg->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
		if (s->out_fd < 0)
			rc = -errno;
		break;
	case HV_CONSOLE_UNIX:
		rc = open_unix(s, cfg->path);
		break;
	case HV_CONSOLE_FD:
		s->out_fd = fcntl(cfg->fd, F_DUPFD_CLOEXEC, 0);
		if (s->out_fd < 0)
			rc = -errno;
		break;
	}
	if (rc) {
		GW_ERR(vm->name, "cannot open console %s: %s", cfg->path ? cfg->path : "",
		       strerror(-rc));
		goto err_free;
	}
	s->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (s->stop_fd < 0) {
		rc = -errno;
		goto err_free;
	}
	rc = hv_bus_register(vm->pio, COM1_PORT, 8, &serial_io, s, "com1");
	if (rc)
		goto err_free;
	rc = hv_device_register(vm, "com1", &serial_dev_ops, s);
	if (rc)
		goto err_unregister;
	s->r.thr_pending = 0;
	if (s->in_fd >= 0 || s->listen_fd >= 0) {
		rc = -pthread_create(&s->thread, NULL, console_thread, s);
		if (rc)
			goto err_unregister;
		s->thread_started = true;
	}
	*out = s;
	return 0;

err_unregister:
	hv_bus_unregister(vm->pio, COM1_PORT);
err_free:
	hv_serial_destroy(s);
	return rc;
}

void hv_serial_destroy(struct hv_serial *s)
{
	if (!s)
		return;
	if (s->thread_started) {
		uint64_t one = 1;
		(void)!write(s->stop_fd, &one, sizeof(one));
		pthread_join(s->thread, NULL);
	}
	if (s->stop_fd > 0)
		close(s->stop_fd);
	if (s->out_fd >= 0)
		close(s->out_fd);
	if (s->in_fd >= 0)
		close(s->in_fd);
	for (int i = 0; i < MAX_CLIENTS; i++) {
		if (s->clients[i] >= 0)
			close(s->clients[i]);
	}
	if (s->listen_fd >= 0) {
		close(s->listen_fd);
		unlink(s->sock_path);
	}
	pthread_mutex_destroy(&s->lock);
	free(s);
}
