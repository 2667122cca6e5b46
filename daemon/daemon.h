/* SPDX-License-Identifier: Apache-2.0 */
/* godwitd's shared state: the VM registry, process supervision and the API handlers. */
#ifndef GODWIT_DAEMON_H
#define GODWIT_DAEMON_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "godwit/rpc.h"
#include "godwit/internal/v1/record.pb-c.h"
#include "godwit/v1/migrations.pb-c.h"
#include "godwit/v1/vms.pb-c.h"
#include "sriov_pool.h"

#define GWD_NAME_MAX 63
#define GWD_NIC_MAX  4
/* The command line a Linux VM created without one gets: godwit-vmm's own default
 * (VMM_LINUX_CMDLINE in vmm/main.c), recorded so that the VM shows, and keeps across restarts and
 * migrations, what its kernel is given. */
#define GWD_LINUX_CMDLINE "console=ttyS0"

/* Short names for the API's VM states. */
#define GWD_DEFINED  GODWIT__V1__VM_STATE__VM_STATE_DEFINED
#define GWD_STARTING GODWIT__V1__VM_STATE__VM_STATE_STARTING
#define GWD_RUNNING  GODWIT__V1__VM_STATE__VM_STATE_RUNNING
#define GWD_PAUSED   GODWIT__V1__VM_STATE__VM_STATE_PAUSED
#define GWD_STOPPING GODWIT__V1__VM_STATE__VM_STATE_STOPPING
#define GWD_STOPPED  GODWIT__V1__VM_STATE__VM_STATE_STOPPED
#define GWD_FAILED   GODWIT__V1__VM_STATE__VM_STATE_FAILED

/* A NIC of a VM: for now always a VF of this host's pool. */
struct gwd_nic {
	uint32_t want_gen;		 /* as asked: 0 = any */
	char want_backend[8];		 /* as asked: "emul", "vfio"; "" = any */
	char want_host[GWD_PCI_ADDR_SZ]; /* as asked: exactly this real VF; "" = any */
	unsigned vlan;			 /* the real VF's port VLAN, set on its PF; 0 = none */
	enum gwd_backend backend;	 /* of the VF that backs it (or backed it) */
	char host[GWD_PCI_ADDR_SZ];	 /* vfio: that VF's PCI address */
	char mac[GWD_MAC_SZ];
	unsigned pf, vf;
	struct sriov_gen gen; /* of the VF that backs it (or backed it, when unbacked) */
	bool backed;	      /* holds (pf, vf) in d->pool */
	bool untrusted;	      /* trust "off": the guest may not change the MAC */
	bool emulated;	      /* no VF here: the VMM's own model of generation gen serves it */
	bool recreated;	      /* incoming: the device is re-created here, its state left behind */
	bool gen_differs;     /* incoming: ... on a VF of another generation ("mismatch") */
	char reason[200];     /* why it is unbacked */
	/* Handing over: the real VF's PF no longer steers the VM's MAC to it; what it held. */
	bool steered_away, held_trust;
	char held_mac[18];
};

struct gwd_vm {
	struct gwd_vm *next;
	char name[GWD_NAME_MAX + 1];
	uint64_t memory_bytes;
	uint32_t cpus;
	char *guest_path;  /* "" for a Linux VM */
	char *kernel_path; /* "" for a test-guest VM */
	char *initrd_path; /* "": none */
	char *cmdline;
	Godwit__V1__VmState state;
	char reason[256];
	pid_t pid;
	uint64_t pid_start_ticks;
	int64_t created_unix;
	int64_t started_unix;
	int32_t guest_exit_code;
	bool busy;     /* a start/stop is in progress */
	bool is_child; /* spawned by this godwitd (waitpid works) */
	bool monitor_running;
	pthread_t monitor;
	int pidfd;
	char incoming_id[40]; /* set while this VM is the destination of a migration */
	/* Incoming, under d->lock: the step of its migration (a MigrationStep: PREPARED,
	 * COMMITTING), whether its VMM is still being spawned or is being aborted (nothing else
	 * may free vm then), and since when its VMM holds the whole stream (the time limit). */
	int in_step;
	bool in_preparing, in_aborting;
	int64_t in_ready_since;
	bool incoming_plaintext;   /* its stream comes in clear (both hosts --insecure) */
	char migrated_to[256];	   /* set once it has been handed over to another host */
	struct gw_rpc_client *ctl; /* kept open for an incoming VM's commit */
	unsigned nnics;
	struct gwd_nic nics[GWD_NIC_MAX];
};

struct gwd_mig;
struct gwd_metrics;

struct gwd {
	char state_dir[256];
	char vmm_path[512];
	char token[65];
	char host_id[40];
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct gwd_vm *vms;
	struct gwd_mig *migs;
	bool shutting_down;
	uint64_t memory_limit;		 /* bytes all running VMs may use together */
	char stream_host[256];		 /* where incoming migration streams listen */
	struct gwd_pool pool;		 /* SR-IOV PFs and the VMs holding their VFs; under lock */
	struct gwd_inventory inv;	 /* where real PFs are read and VFs bound (--libvirt) */
	char emul_uplink[GWD_UPLINK_SZ]; /* the port of NICs the VMM emulates (no VF here) */
	/* The TCP API's TLS (NULL: plaintext), which this host also presents to other godwitd,
	 * and the names its certificate carries (comma-separated). */
	struct gw_rpc_tls *tls;
	char tls_names[256];
	bool insecure;		     /* --insecure: plaintext allowed beyond loopback */
	unsigned incoming_timeout_s; /* a received VM not committed by then is aborted */
	unsigned max_calls;	     /* --max-calls: API calls served at once; 0: the default */
	struct gwd_metrics *metrics; /* events /metrics counts (ops.h); NULL: none counted */
};

/* validate.c: pure checks of what callers send (fuzzed and unit-tested). */
/* 0, or -EINVAL with a message a person can act on in why. */
int gwd_validate_name(const char *name, char *why, size_t n);
int gwd_validate_spec(const Godwit__V1__VmSpec *spec, uint64_t host_mem, char *why, size_t n);
/* "02:12:34:56:78:9a": six hex octets, unicast, not all zero. */
int gwd_validate_mac(const char *mac, char *why, size_t n);
/* Whether HOST:PORT names this host's loopback only (plaintext may stay there). */
bool gwd_addr_is_loopback(const char *hostport);
/* A MigrateRequest's tuning: channels 0..8, timeout_action "", "suspend" or "cancel",
 * throttle percentages 0..95 (0: the default). 0 or -EINVAL with the reason in why. */
int gwd_validate_migrate_tuning(const Godwit__V1__MigrateRequest *req, char *why, size_t n);
/* The channel count of "--channels auto": one per core both hosts have, at most max. dst_cpus
 * 0: the destination did not say (an older godwitd), the source's cores alone decide. The
 * choice and its reason in why ("auto: min(source cores 4, destination cores 2, max 8)"). */
unsigned gwd_mig_channels_auto(unsigned src_cpus, unsigned dst_cpus, unsigned max, char *why,
			       size_t n);

/* grants.c: leave for a source host to bring one VM here (GrantIncoming). */
/* The caller's grant allows this Peer call: PrepareIncoming (vm set) of a new migration, which
 * binds the grant to migration_id, or Commit/Abort/QueryIncoming (vm NULL) of the migration
 * it is bound to; a caller on the unix socket (the host's owner) needs none. 0, or -EACCES with
 * the call's error set. Takes d->lock. */
int gwd_grant_check(struct gwd *d, struct gw_rpc_call *call, const char *vm,
		    const char *migration_id);

/* state_files.c: files of the state directory, durable once these return 0. */
/* fsync(2) of a directory: what makes a create, rename or unlink in it durable. -errno. */
int gwd_dir_sync(const char *dir);
/* DIR/leaf becomes buf (mode 0600): written to DIR/leaf.tmp, fsynced, renamed, DIR fsynced.
 * -errno (-ENOSPC, -EFBIG, -EIO...); on error the old file, if any, stays. */
int gwd_file_replace(const char *dir, const char *leaf, const void *buf, size_t len);
/* The same for a file that must not exist yet: -EEXIST when it does. */
int gwd_file_create(const char *dir, const char *leaf, const void *buf, size_t len);
/* Unlinks DIR/leaf (absent is fine) and fsyncs DIR. -errno. */
int gwd_file_remove(const char *dir, const char *leaf);
/* 0 when path belongs to this user and neither group nor others have any access to it; else
 * -EPERM (or stat's -errno) and, in why, the chmod or chown to run. */
int gwd_state_check_private(const char *path, char *why, size_t n);
/* Reads the secret DIR/leaf (it must be private: gwd_state_check_private), or creates it with
 * nbytes (<= 32) bytes from getrandom(2) in hex. -errno with the reason in why: a getrandom
 * that fails is an error (-EIO), never a weaker secret. */
int gwd_secret_load(const char *dir, const char *leaf, size_t nbytes, char *out, size_t n,
		    char *why, size_t whyn);

/* registry.c */
int gwd_registry_load(struct gwd *d);
struct gwd_vm *gwd_vm_find(struct gwd *d, const char *name);
/* Saves vm's record durably (gwd_file_replace); logs and returns -errno when it cannot. */
int gwd_vm_persist(struct gwd *d, const struct gwd_vm *vm);
void gwd_vm_dir(const struct gwd *d, const char *name, const char *leaf, char *out, size_t n);
/* Removes vm's record durably, then the rest of its directory (what stays of that is only
 * logged: without the record it is no VM). -errno when the record could not be removed. */
int gwd_vm_remove_files(struct gwd *d, const char *name);
void gwd_vm_free(struct gwd_vm *vm);
/* What vm boots, copied from spec: guest or kernel, initrd, and the command line (a kernel's
 * without one gets GWD_LINUX_CMDLINE). -ENOMEM. */
int gwd_vm_set_boot(struct gwd_vm *vm, const Godwit__V1__VmSpec *spec);
/* A Vm message and the storage it points into. */
struct gwd_nic_pb {
	Godwit__V1__NicSpec spec;
	Godwit__V1__NicInfo info;
	Godwit__V1__GenDescriptor gen;
	char mac[GWD_MAC_SZ], uplink[GWD_UPLINK_SZ], reason[200], summary[80];
	char want_backend[8], host[GWD_PCI_ADDR_SZ], want_host[GWD_PCI_ADDR_SZ];
};
struct gwd_vm_pb {
	Godwit__V1__Vm vm;
	Godwit__V1__VmSpec spec;
	char console[300];
	Godwit__V1__NicSpec *nic_specs[GWD_NIC_MAX];
	Godwit__V1__NicInfo *nic_infos[GWD_NIC_MAX];
	struct gwd_nic_pb nics[GWD_NIC_MAX];
};
/* Fills out; its name, reason, guest, kernel and initrd paths and cmdline point into vm: use under
 * d->lock, or copy them. */
void gwd_vm_to_pb(const struct gwd *d, const struct gwd_vm *vm, struct gwd_vm_pb *out);

/* vm_nics.c: a VM's NICs and the VF pool; callers hold d->lock. */
/* Takes a VF for each NIC of spec (a real VF gets the NIC's MAC and VLAN on its PF; a NIC
 * naming a VF by host_address gets exactly that one); on failure holds none (why says why):
 * -ENOSPC (all VFs of that generation and backend are held), -ENODEV (the host has none),
 * -EBUSY (the VF named is unavailable, or a libvirt domain holds it: why names the domain),
 * -ENOENT / -EEXIST (it is not in the pool / another VM holds it), -EIO (libvirt did not say
 * which VFs its domains hold) or the errno of setting a real VF's MAC or VLAN. */
/* Records the VF the pool gave nic; a real one gets the NIC's MAC as its administrator's MAC
 * on the PF, so the guest driver finds it there. On failure the VF is released. */
int gwd_nic_take(struct gwd *d, const char *vm, size_t i, struct gwd_nic *nic, char *why, size_t n);
int gwd_nics_alloc(struct gwd *d, struct gwd_vm *vm, const Godwit__V1__VmSpec *spec, char *why,
		   size_t n);
/* Marks again which VFs libvirt's domains hold (godwitd --libvirt); logs a failure. */
void gwd_pool_refresh(struct gwd *d);
/* Releases the VFs vm holds. */
void gwd_nics_release(struct gwd *d, struct gwd_vm *vm);
/* A migration's destination is about to run vm: its real VFs' PFs stop steering its MACs to
 * them (a PF's own switch would deliver them to the idle VF, not to the wire); back, with the
 * MAC and trust each held, when the destination did not take it. */
void gwd_nics_steer_away(struct gwd *d, struct gwd_vm *vm);
void gwd_nics_steer_back(struct gwd *d, struct gwd_vm *vm);
/* After loading the registry: claims each VM's recorded VFs again; a VF this host no longer
 * declares leaves the NIC unbacked, with a warning. */
void gwd_nics_rebuild(struct gwd *d);
/* Fills the NIC fields of a Vm message from vm->nics. */
void gwd_nics_to_pb(const struct gwd *d, const struct gwd_vm *vm, struct gwd_vm_pb *out);
/* Reads the NICs of a persisted Vm back into vm (unbacked until gwd_nics_rebuild). */
void gwd_nics_from_pb(struct gwd_vm *vm, const Godwit__V1__Vm *pb);
void gwd_gen_to_pb(const struct sriov_gen *g, Godwit__V1__GenDescriptor *out, char *summary,
		   size_t summary_n);
void gwd_gen_from_pb(const Godwit__V1__GenDescriptor *in, struct sriov_gen *out);
/* The first NIC that has no VF here, or -1. */
int gwd_nics_unbacked(const struct gwd_vm *vm);

/* vmproc.c: godwit-vmm processes. Called without d->lock held. */
/* 0 when each non-empty path of guest, kernel and initrd is a readable, non-empty regular file
 * for godwitd; else -EINVAL with the file and the problem in why. */
int gwd_boot_files_check(const char *guest, const char *kernel, const char *initrd, char *why,
			 size_t n);
int gwd_vm_spawn(struct gwd *d, struct gwd_vm *vm, char *why, size_t n);
/* Spawns a VMM that waits for an incoming migration; fills its stream ports. */
int gwd_vm_spawn_incoming(struct gwd *d, struct gwd_vm *vm, unsigned channels, const char *token,
			  uint32_t *ports, size_t *nports, char *why, size_t n);
/* Calls a method of a VMM's control socket (godwit.vmm.v1.Vmm). */
int gwd_vmm_call(struct gwd *d, const char *name, const char *method, const ProtobufCMessage *req,
		 ProtobufCMessage **resp, int timeout_ms, struct gw_rpc_status *st);
/* The same through a control channel kept open on vm (the commit path). */
int gwd_vmm_call_kept(struct gwd *d, struct gwd_vm *vm, const char *method,
		      const ProtobufCMessage *req, ProtobufCMessage **resp, int timeout_ms,
		      struct gw_rpc_status *st);
/* Bytes of RAM the VMs holding a process use now; caller holds d->lock. */
uint64_t gwd_memory_in_use(struct gwd *d);
/* Forgets a VM that migrated away or never arrived (removes its files, releases its VFs);
 * caller holds d->lock. */
void gwd_vm_forget(struct gwd *d, struct gwd_vm *vm);
int gwd_vm_stop(struct gwd *d, struct gwd_vm *vm, bool force, char *why, size_t n);
/* Re-adopts a VMM recorded as running; marks the VM failed when it is gone. */
void gwd_vm_adopt(struct gwd *d, struct gwd_vm *vm);
uint64_t gwd_proc_start_ticks(pid_t pid);

int64_t gwd_now(void);

/* migrec.c: migration records (DIR/migrations/ID.pb), what a restart reconciles from. */

/* Saves rec (its updated_unix set to now); logs and returns an error. */
int gwd_migrec_save(struct gwd *d, Godwit__Internal__V1__MigrationRecord *rec);
/* The record of migration id, or NULL; free with gwd_migrec_free. */
Godwit__Internal__V1__MigrationRecord *gwd_migrec_load(struct gwd *d, const char *id);
void gwd_migrec_free(Godwit__Internal__V1__MigrationRecord *rec);
/* The step recorded for migration id (a MigrationStep), 0 when there is no record. */
int gwd_migrec_step(struct gwd *d, const char *id);
/* Calls fn for each readable record; fn owns (and frees) it. Records of migrations that
 * ended more than a week ago are removed instead. */
void gwd_migrec_each(struct gwd *d,
		     void (*fn)(struct gwd *d, Godwit__Internal__V1__MigrationRecord *rec));

/* api_peer.c: after the VMs were adopted, incoming VMs of the previous run become prepared
 * again (their VMM waits), committed (it runs) or aborted (it is gone); then a thread aborts
 * those not committed within d->incoming_timeout_s of receiving the whole stream. */
void gwd_incoming_reconcile(struct gwd *d);
/* api_migrations.c: outgoing migrations of the previous run are finished: one that never sent
 * a Commit resumes here; one that may have asks the destination what happened. */
void gwd_migrations_reconcile(struct gwd *d);

#endif
