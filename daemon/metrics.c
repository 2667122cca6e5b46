/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What godwitd's /metrics page shows. Events (migrations ending, RPCs) are counted as they
 * happen; the rest is read at scrape time: VMs, the VF pool and migrations in progress from the
 * daemon's state under its lock, held briefly, and each VMM's mailbox counters over its control
 * socket within a time budget, with the daemon's lock not held.
 */
#include "ops.h"

#include "migrations.h"

#include "godwit/deadline.h"
#include "godwit/prom.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RPC_CODES   17 /* OK .. UNAUTHENTICATED */
#define RPC_METHODS 64 /* distinct methods counted; more than godwitd serves */

enum outcome { OUT_COMPLETED, OUT_FAILED, OUT_CANCELLED, OUT_N };
static const char *const outcome_names[OUT_N] = {"completed", "failed", "cancelled"};

struct rpc_count {
	char service[64], method[48];
	uint64_t by_code[RPC_CODES];
};

/* What is counted as it happens. */
struct counters {
	uint64_t out_ended[OUT_N];
	uint64_t in_committed, in_aborted;
	struct gw_prom_hist duration[OUT_N], bytes[OUT_N], downtime;
	uint64_t dma_pages, dma_bytes; /* of migrations that ended */
	struct rpc_count rpcs[RPC_METHODS];
	unsigned nrpcs;
	struct rpc_count rpc_unknown; /* methods the server does not have */
};

struct gwd_metrics {
	/* A leaf: nothing is taken while it is held; d->lock may be held when it is taken. */
	pthread_mutex_t lock;
	struct counters c;
};

/* Buckets: a migration takes from under a second (a small idle VM) to many minutes; its
 * downtime should stay in milliseconds; it moves from MiBs to tens of GiB. */
static const double duration_bounds[] = {0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800};
static const double downtime_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
					 0.1,	0.25,	0.5,   1,    2.5,   5};
#define MIB (1024.0 * 1024.0)
static const double bytes_bounds[] = {MIB,	   4 * MIB,	16 * MIB,   64 * MIB,
				      256 * MIB,   1024 * MIB,	4096 * MIB, 16384 * MIB,
				      65536 * MIB, 262144 * MIB};

static void counters_init(struct counters *c)
{
	memset(c, 0, sizeof(*c));
	for (int o = 0; o < OUT_N; o++) {
		gw_prom_hist_init(&c->duration[o], duration_bounds, NELEMS(duration_bounds));
		gw_prom_hist_init(&c->bytes[o], bytes_bounds, NELEMS(bytes_bounds));
	}
	gw_prom_hist_init(&c->downtime, downtime_bounds, NELEMS(downtime_bounds));
}

struct gwd_metrics *gwd_metrics_new(void)
{
	struct gwd_metrics *m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	pthread_mutex_init(&m->lock, NULL);
	counters_init(&m->c);
	return m;
}

void gwd_metrics_free(struct gwd_metrics *m)
{
	if (!m)
		return;
	pthread_mutex_destroy(&m->lock);
	free(m);
}

void gwd_metrics_rpc_end(void *opaque, const char *service, const char *method,
			 enum gw_rpc_code code)
{
	struct gwd_metrics *m = opaque;
	if (!m || (unsigned)code >= RPC_CODES)
		return;
	pthread_mutex_lock(&m->lock);
	struct counters *k = &m->c;
	struct rpc_count *c = &k->rpc_unknown;
	if (service && method) {
		unsigned i = 0;
		while (i < k->nrpcs && (strcmp(k->rpcs[i].service, service) != 0 ||
					strcmp(k->rpcs[i].method, method) != 0))
			i++;
		if (i == k->nrpcs && i < RPC_METHODS) {
			snprintf(k->rpcs[i].service, sizeof(k->rpcs[i].service), "%s", service);
			snprintf(k->rpcs[i].method, sizeof(k->rpcs[i].method), "%s", method);
			k->nrpcs++;
		}
		if (i < k->nrpcs)
			c = &k->rpcs[i];
	}
	c->by_code[code]++;
	pthread_mutex_unlock(&m->lock);
}

void gwd_metrics_mig_ended(struct gwd_metrics *m, Godwit__V1__MigrationPhase ph, uint64_t total_us,
			   uint64_t downtime_us, uint64_t bytes, uint64_t dma_pages,
			   uint64_t dma_bytes)
{
	if (!m)
		return;
	enum outcome o = ph == PH(DONE)	       ? OUT_COMPLETED
			 : ph == PH(CANCELLED) ? OUT_CANCELLED
					       : OUT_FAILED;
	pthread_mutex_lock(&m->lock);
	struct counters *c = &m->c;
	c->out_ended[o]++;
	gw_prom_hist_observe(&c->duration[o], (double)total_us / 1e6);
	gw_prom_hist_observe(&c->bytes[o], (double)bytes);
	if (o == OUT_COMPLETED)
		gw_prom_hist_observe(&c->downtime, (double)downtime_us / 1e6);
	c->dma_pages += dma_pages;
	c->dma_bytes += dma_bytes;
	pthread_mutex_unlock(&m->lock);
}

void gwd_metrics_incoming_ended(struct gwd_metrics *m, bool committed)
{
	if (!m)
		return;
	pthread_mutex_lock(&m->lock);
	if (committed)
		m->c.in_committed++;
	else
		m->c.in_aborted++;
	pthread_mutex_unlock(&m->lock);
}

/* ---- the scrape ---- */

static const struct {
	Godwit__V1__VmState state;
	const char *name;
} vm_states[] = {
    {GWD_DEFINED, "defined"}, {GWD_STARTING, "starting"}, {GWD_RUNNING, "running"},
    {GWD_PAUSED, "paused"},   {GWD_STOPPING, "stopping"}, {GWD_STOPPED, "stopped"},
    {GWD_FAILED, "failed"},
};

static const struct {
	Godwit__V1__MigrationPhase phase;
	const char *name;
} mig_phases[] = {
    {PH(SETUP), "setup"},	{PH(PRECOPY), "precopy"},   {PH(STOP_AND_COPY), "stop_and_copy"},
    {PH(HANDOVER), "handover"}, {PH(IN_DOUBT), "in_doubt"},
};

/* Incoming migrations by where they stand. */
enum in_stage { IN_PREPARING, IN_PREPARED, IN_COMMITTING, IN_N };
static const char *const in_stage_names[IN_N] = {"preparing", "prepared", "committing"};

struct vf_seen {
	char vm[GWD_NAME_MAX + 1], vf[32];
	uint64_t exchanges, denied;
};

struct snapshot {
	uint64_t vms[NELEMS(vm_states)];
	unsigned npfs;
	struct {
		char backend[8], gen[8];
		unsigned free, held, unavailable;
	} pfs[GWD_PF_MAX];
	uint64_t out_active[NELEMS(mig_phases)], in_active[IN_N];
	uint64_t live_dma_pages, live_dma_bytes; /* of outgoing migrations still running */
	/* VMs whose VMM runs, then what their VMMs said. */
	char (*vmms)[GWD_NAME_MAX + 1];
	bool *vmm_up;
	size_t nvmms;
	struct vf_seen *vfs;
	size_t nvfs, capvfs;
	struct counters c; /* copied */
};

static void snap_state(struct gwd *d, struct snapshot *s)
{
	pthread_mutex_lock(&d->lock);
	size_t n = 0;
	for (struct gwd_vm *v = d->vms; v; v = v->next)
		n++;
	s->vmms = calloc(n ? n : 1, sizeof(*s->vmms));
	s->vmm_up = calloc(n ? n : 1, sizeof(*s->vmm_up));
	for (struct gwd_vm *v = d->vms; v; v = v->next) {
		for (size_t i = 0; i < NELEMS(vm_states); i++) {
			if (v->state == vm_states[i].state)
				s->vms[i]++;
		}
		if (v->incoming_id[0]) {
			enum in_stage st = v->in_preparing		    ? IN_PREPARING
					   : v->in_step == STEP(COMMITTING) ? IN_COMMITTING
									    : IN_PREPARED;
			s->in_active[st]++;
		}
		if (v->pid > 0 && s->vmms)
			snprintf(s->vmms[s->nvmms++], sizeof(s->vmms[0]), "%s", v->name);
	}
	s->npfs = d->pool.npfs;
	for (unsigned p = 0; p < d->pool.npfs; p++) {
		const struct gwd_pf *pf = &d->pool.pfs[p];
		snprintf(s->pfs[p].backend, sizeof(s->pfs[p].backend), "%s",
			 gwd_backend_name(pf->backend));
		snprintf(s->pfs[p].gen, sizeof(s->pfs[p].gen), "%u", pf->gen.gen);
		for (unsigned v = 0; v < pf->nvfs; v++) {
			if (pf->vfs[v].vm[0])
				s->pfs[p].held++;
			else if (pf->vfs[v].unavailable)
				s->pfs[p].unavailable++;
			else
				s->pfs[p].free++;
		}
	}
	for (struct gwd_mig *m = d->migs; m; m = m->next) {
		if (mig_final_phase(m->phase))
			continue;
		for (size_t i = 0; i < NELEMS(mig_phases); i++) {
			if (m->phase == mig_phases[i].phase)
				s->out_active[i]++;
		}
		s->live_dma_pages += m->dma_pages;
		s->live_dma_bytes += m->dma_bytes;
	}
	/* Under d->lock too, which is held where migrations end: a migration is counted either
	 * as running or as ended, never both. */
	if (d->metrics) {
		pthread_mutex_lock(&d->metrics->lock);
		s->c = d->metrics->c;
		pthread_mutex_unlock(&d->metrics->lock);
	} else {
		counters_init(&s->c);
	}
	pthread_mutex_unlock(&d->lock);
}

static void vf_add(struct snapshot *s, const char *vm, const Godwit__Vmm__V1__VfState *v)
{
	if (s->nvfs == s->capvfs) {
		size_t cap = s->capvfs ? 2 * s->capvfs : 16;
		struct vf_seen *n = realloc(s->vfs, cap * sizeof(*n));
		if (!n)
			return;
		s->vfs = n;
		s->capvfs = cap;
	}
	struct vf_seen *x = &s->vfs[s->nvfs++];
	snprintf(x->vm, sizeof(x->vm), "%s", vm);
	snprintf(x->vf, sizeof(x->vf), "%s", v->name ? v->name : "");
	x->exchanges = v->exchanges;
	x->denied = v->denied;
}

/* Each VMM's Status, one after the other, within budget_ms in all. */
static void snap_vmms(struct gwd *d, struct snapshot *s, int budget_ms)
{
	uint64_t end = gw_now_ms() + (uint64_t)(budget_ms > 0 ? budget_ms : 0);
	for (size_t i = 0; i < s->nvmms; i++) {
		uint64_t now = gw_now_ms();
		if (now >= end)
			break;
		int left = (int)(end - now);
		Godwit__Vmm__V1__ControlRequest req = GODWIT__VMM__V1__CONTROL_REQUEST__INIT;
		Godwit__Vmm__V1__VmmStatus *st = NULL;
		struct gw_rpc_status rs;
		if (gwd_vmm_call(d, s->vmms[i], "Status", &req.base, (ProtobufCMessage **)&st,
				 left < 1000 ? left : 1000, &rs))
			continue;
		s->vmm_up[i] = true;
		for (size_t v = 0; v < st->n_vfs; v++)
			vf_add(s, s->vmms[i], st->vfs[v]);
		protobuf_c_message_free_unpacked(&st->base, NULL);
	}
}

#define L(n, v) ((struct gw_prom_label){n, v})

static void write_rpc(struct gw_buf *b, const struct rpc_count *c, const char *service,
		      const char *method)
{
	for (unsigned code = 0; code < RPC_CODES; code++) {
		if (!c->by_code[code])
			continue;
		struct gw_prom_label l[] = {L("service", service), L("method", method),
					    L("code", gw_rpc_code_name((enum gw_rpc_code)code))};
		gw_prom_sample_u64(b, "godwit_rpcs_total", l, 3, c->by_code[code]);
	}
}

static void write_page(struct gw_buf *b, const struct snapshot *s)
{
	const struct counters *c = &s->c;
	gw_prom_family(b, "godwit_build_info", GW_PROM_GAUGE, "godwitd's version (always 1).");
	struct gw_prom_label ver[] = {L("version", GODWIT_VERSION)};
	gw_prom_sample(b, "godwit_build_info", ver, 1, 1);

	gw_prom_family(b, "godwit_vms", GW_PROM_GAUGE, "VMs this host knows, by state.");
	for (size_t i = 0; i < NELEMS(vm_states); i++) {
		struct gw_prom_label l[] = {L("state", vm_states[i].name)};
		gw_prom_sample_u64(b, "godwit_vms", l, 1, s->vms[i]);
	}

	gw_prom_family(b, "godwit_migrations_total", GW_PROM_COUNTER,
		       "Migrations that ended since godwitd started, by direction and outcome.");
	for (int o = 0; o < OUT_N; o++) {
		struct gw_prom_label l[] = {L("direction", "outgoing"),
					    L("outcome", outcome_names[o])};
		gw_prom_sample_u64(b, "godwit_migrations_total", l, 2, c->out_ended[o]);
	}
	struct gw_prom_label inc[] = {L("direction", "incoming"), L("outcome", "completed")};
	gw_prom_sample_u64(b, "godwit_migrations_total", inc, 2, c->in_committed);
	inc[1] = L("outcome", "aborted");
	gw_prom_sample_u64(b, "godwit_migrations_total", inc, 2, c->in_aborted);

	gw_prom_family(b, "godwit_migrations_in_progress", GW_PROM_GAUGE,
		       "Migrations under way, by direction and phase.");
	for (size_t i = 0; i < NELEMS(mig_phases); i++) {
		struct gw_prom_label l[] = {L("direction", "outgoing"),
					    L("phase", mig_phases[i].name)};
		gw_prom_sample_u64(b, "godwit_migrations_in_progress", l, 2, s->out_active[i]);
	}
	for (int i = 0; i < IN_N; i++) {
		struct gw_prom_label l[] = {L("direction", "incoming"),
					    L("phase", in_stage_names[i])};
		gw_prom_sample_u64(b, "godwit_migrations_in_progress", l, 2, s->in_active[i]);
	}

	gw_prom_family(b, "godwit_migration_duration_seconds", GW_PROM_HISTOGRAM,
		       "Outgoing migrations' time from start to end, by outcome.");
	for (int o = 0; o < OUT_N; o++) {
		struct gw_prom_label l[] = {L("outcome", outcome_names[o])};
		gw_prom_hist_write(b, "godwit_migration_duration_seconds", l, 1, &c->duration[o]);
	}
	gw_prom_family(b, "godwit_migration_downtime_seconds", GW_PROM_HISTOGRAM,
		       "Completed outgoing migrations' downtime: the time the VM ran on neither "
		       "host.");
	gw_prom_hist_write(b, "godwit_migration_downtime_seconds", NULL, 0, &c->downtime);
	gw_prom_family(b, "godwit_migration_bytes", GW_PROM_HISTOGRAM,
		       "Bytes outgoing migrations sent over their stream channels, by outcome.");
	for (int o = 0; o < OUT_N; o++) {
		struct gw_prom_label l[] = {L("outcome", outcome_names[o])};
		gw_prom_hist_write(b, "godwit_migration_bytes", l, 1, &c->bytes[o]);
	}

	gw_prom_family(b, "godwit_dma_shadow_pages_total", GW_PROM_COUNTER,
		       "Guest pages outgoing migrations marked dirty for device DMA (shadowed or "
		       "tracked).");
	gw_prom_sample_u64(b, "godwit_dma_shadow_pages_total", NULL, 0,
			   c->dma_pages + s->live_dma_pages);
	gw_prom_family(b, "godwit_dma_shadow_bytes_total", GW_PROM_COUNTER,
		       "Bytes copied from DMA shadow buffers into guest buffers during outgoing "
		       "migrations.");
	gw_prom_sample_u64(b, "godwit_dma_shadow_bytes_total", NULL, 0,
			   c->dma_bytes + s->live_dma_bytes);

	gw_prom_family(b, "godwit_vf_pool_vfs", GW_PROM_GAUGE,
		       "VFs of this host's SR-IOV PFs: free, held by a VM, or unavailable.");
	for (unsigned p = 0; p < s->npfs; p++) {
		char pf[16];
		snprintf(pf, sizeof(pf), "pf%u", p);
		const char *st[] = {"free", "held", "unavailable"};
		unsigned v[] = {s->pfs[p].free, s->pfs[p].held, s->pfs[p].unavailable};
		for (int i = 0; i < 3; i++) {
			struct gw_prom_label l[] = {L("pf", pf), L("backend", s->pfs[p].backend),
						    L("generation", s->pfs[p].gen),
						    L("state", st[i])};
			gw_prom_sample_u64(b, "godwit_vf_pool_vfs", l, 4, v[i]);
		}
	}

	gw_prom_family(b, "godwit_vmm_up", GW_PROM_GAUGE,
		       "Whether a VM's godwit-vmm answered this scrape in time (1) or not (0).");
	for (size_t i = 0; i < s->nvmms; i++) {
		struct gw_prom_label l[] = {L("vm", s->vmms[i])};
		gw_prom_sample_u64(b, "godwit_vmm_up", l, 1, s->vmm_up[i]);
	}
	gw_prom_family(b, "godwit_mailbox_exchanges_total", GW_PROM_COUNTER,
		       "VF mailbox requests a VM's VMM followed with their replies (since that "
		       "VMM started).");
	for (size_t i = 0; i < s->nvfs; i++) {
		struct gw_prom_label l[] = {L("vm", s->vfs[i].vm), L("vf", s->vfs[i].vf)};
		gw_prom_sample_u64(b, "godwit_mailbox_exchanges_total", l, 2, s->vfs[i].exchanges);
	}
	gw_prom_family(b, "godwit_mailbox_denials_total", GW_PROM_COUNTER,
		       "VF mailbox requests a VM's VMM refused by policy (trust off), since that "
		       "VMM started.");
	for (size_t i = 0; i < s->nvfs; i++) {
		struct gw_prom_label l[] = {L("vm", s->vfs[i].vm), L("vf", s->vfs[i].vf)};
		gw_prom_sample_u64(b, "godwit_mailbox_denials_total", l, 2, s->vfs[i].denied);
	}

	gw_prom_family(b, "godwit_rpcs_total", GW_PROM_COUNTER,
		       "gRPC calls godwitd answered, by service, method and status code.");
	for (unsigned i = 0; i < c->nrpcs; i++)
		write_rpc(b, &c->rpcs[i], c->rpcs[i].service, c->rpcs[i].method);
	write_rpc(b, &c->rpc_unknown, "unknown", "unknown");
}

void gwd_metrics_render(struct gwd *d, struct gw_buf *out, int budget_ms)
{
	struct snapshot *s = calloc(1, sizeof(*s));
	if (!s) {
		out->err = -ENOMEM;
		return;
	}
	snap_state(d, s);
	snap_vmms(d, s, budget_ms);
	write_page(out, s);
	free(s->vmms);
	free(s->vmm_up);
	free(s->vfs);
	free(s);
}
