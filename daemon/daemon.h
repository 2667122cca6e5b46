/* SPDX-License-Identifier: Apache-2.0 */
/* godwitd's shared state: the VM registry, process supervision and the API handlers. */
#ifndef GODWIT_DAEMON_H
#define GODWIT_DAEMON_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "godwit/rpc.h"
#include "godwit/v1/vms.pb-c.h"

#define GWD_NAME_MAX 63

/* Short names for the API's VM states. */
#define GWD_DEFINED  GODWIT__V1__VM_STATE__VM_STATE_DEFINED
#define GWD_STARTING GODWIT__V1__VM_STATE__VM_STATE_STARTING
#define GWD_RUNNING  GODWIT__V1__VM_STATE__VM_STATE_RUNNING
#define GWD_PAUSED   GODWIT__V1__VM_STATE__VM_STATE_PAUSED
#define GWD_STOPPING GODWIT__V1__VM_STATE__VM_STATE_STOPPING
#define GWD_STOPPED  GODWIT__V1__VM_STATE__VM_STATE_STOPPED
#define GWD_FAILED   GODWIT__V1__VM_STATE__VM_STATE_FAILED

struct gwd_vm {
	struct gwd_vm *next;
	char name[GWD_NAME_MAX + 1];
	uint64_t memory_bytes;
	uint32_t cpus;
	char *guest_path;
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
	char incoming_id[40];	   /* set while this VM is the destination of a migration */
	char migrated_to[256];	   /* set once it has been handed over to another host */
	struct gw_rpc_client *ctl; /* kept open for an incoming VM's commit */
};

struct gwd_mig;

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
	uint64_t memory_limit; /* bytes all running VMs may use together */
	char stream_host[256]; /* where incoming migration streams listen */
};

/* validate.c: pure checks of what callers send (fuzzed and unit-tested). */
/* 0, or -EINVAL with a message a person can act on in why. */
int gwd_validate_name(const char *name, char *why, size_t n);
int gwd_validate_spec(const Godwit__V1__VmSpec *spec, uint64_t host_mem, char *why, size_t n);

/* registry.c */
int gwd_registry_load(struct gwd *d);
struct gwd_vm *gwd_vm_find(struct gwd *d, const char *name);
int gwd_vm_persist(struct gwd *d, const struct gwd_vm *vm);
void gwd_vm_dir(const struct gwd *d, const char *name, const char *leaf, char *out, size_t n);
int gwd_vm_remove_files(struct gwd *d, const char *name);
void gwd_vm_free(struct gwd_vm *vm);
/* Fills a Vm message whose strings point into vm: use under d->lock, or copy. */
void gwd_vm_to_pb(const struct gwd *d, const struct gwd_vm *vm, Godwit__V1__Vm *out,
		  Godwit__V1__VmSpec *spec, char *console, size_t console_n);

/* vmproc.c: godwit-vmm processes. Called without d->lock held. */
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
/* Forgets a VM that migrated away (removes its files); caller holds d->lock. */
void gwd_vm_forget(struct gwd *d, struct gwd_vm *vm);
int gwd_vm_stop(struct gwd *d, struct gwd_vm *vm, bool force, char *why, size_t n);
/* Re-adopts a VMM recorded as running; marks the VM failed when it is gone. */
void gwd_vm_adopt(struct gwd *d, struct gwd_vm *vm);
uint64_t gwd_proc_start_ticks(pid_t pid);

int64_t gwd_now(void);

#endif
