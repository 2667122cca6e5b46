/* SPDX-License-Identifier: Apache-2.0 */
/* The CMOS RTC device: rtc_regs.c's register file on ports 0x70-0x71, over host realtime. */
#include "rtc.h"
#include "acpi.h"
#include "hv_priv.h"

#include "godwit/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* What the ACPI tables tell the guest is what this device is. */
_Static_assert(HV_ACPI_RTC_PORT == HV_RTC_PORT, "the DSDT's RTC ports");
_Static_assert(HV_ACPI_RTC_CENTURY == HV_RTC_CENTURY, "the FADT's CENTURY register");

struct hv_rtc {
	pthread_mutex_t lock;
	struct hv_rtc_regs r;
	struct hv_vm *vm;
	bool warned; /* about a time the guest wrote that the clock cannot hold */
};

static struct timespec host_now(void)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	return now;
}

static void rtc_read(void *opaque, struct hv_vcpu *vcpu, uint64_t off, uint64_t *val, unsigned size)
{
	struct hv_rtc *rtc = opaque;
	(void)vcpu;
	struct timespec now = host_now();
	uint64_t v = 0;
	pthread_mutex_lock(&rtc->lock);
	for (unsigned i = 0; i < size && i < 8; i++)
		v |= (uint64_t)hv_rtc_regs_read(&rtc->r, (unsigned)off + i, now) << (8 * i);
	pthread_mutex_unlock(&rtc->lock);
	*val = v;
}

static void rtc_write(void *opaque, struct hv_vcpu *vcpu, uint64_t off, uint64_t val, unsigned size)
{
	struct hv_rtc *rtc = opaque;
	struct timespec now = host_now();
	int rc = 0;
	bool warn = false;
	pthread_mutex_lock(&rtc->lock);
	for (unsigned i = 0; i < size && i < 8; i++) {
		int r =
		    hv_rtc_regs_write(&rtc->r, (unsigned)off + i, (uint8_t)(val >> (8 * i)), now);
		rc = rc ? rc : r;
	}
	if (rc && !rtc->warned)
		warn = rtc->warned = true;
	pthread_mutex_unlock(&rtc->lock);
	if (warn)
		GW_WARN(vcpu ? vcpu->name : rtc->vm->name,
			"rtc: the guest wrote a time the clock cannot hold (bad BCD digit, field "
			"out of range or too far from the host's time); the clock kept its time "
			"(logged once)");
}

static const struct hv_io_ops rtc_io = {
    .read = rtc_read,
    .write = rtc_write,
};

static int rtc_save(void *opaque, struct gw_buf *out)
{
	struct hv_rtc *rtc = opaque;
	pthread_mutex_lock(&rtc->lock);
	struct hv_rtc_regs r = rtc->r;
	pthread_mutex_unlock(&rtc->lock);
	return hv_rtc_regs_save(&r, out);
}

static int rtc_load(void *opaque, const void *data, size_t len)
{
	struct hv_rtc *rtc = opaque;
	struct hv_rtc_regs r;
	int rc = hv_rtc_regs_load(&r, data, len);
	if (rc)
		return rc;
	pthread_mutex_lock(&rtc->lock);
	rtc->r = r;
	pthread_mutex_unlock(&rtc->lock);
	return 0;
}

static const struct hv_device_ops rtc_dev_ops = {
    .kind = "mc146818",
    .save = rtc_save,
    .load = rtc_load,
};

int hv_rtc_init(struct hv_vm *vm)
{
	struct hv_rtc *rtc = calloc(1, sizeof(*rtc));
	if (!rtc)
		return -ENOMEM;
	pthread_mutex_init(&rtc->lock, NULL);
	hv_rtc_regs_init(&rtc->r);
	rtc->vm = vm;
	int rc = hv_bus_register(vm->pio, HV_RTC_PORT, 2, &rtc_io, rtc, "rtc");
	if (rc)
		goto err_free;
	rc = hv_device_register(vm, "rtc", &rtc_dev_ops, rtc);
	if (rc)
		goto err_unregister;
	return 0;

err_unregister:
	hv_bus_unregister(vm->pio, HV_RTC_PORT);
err_free:
	pthread_mutex_destroy(&rtc->lock);
	free(rtc);
	return rc;
}

void hv_rtc_destroy(struct hv_vm *vm)
{
	/* Found through the device table, so that struct hv_vm needs no member for it. */
	for (unsigned i = 0; i < vm->ndevices; i++) {
		if (vm->devices[i].ops == &rtc_dev_ops) {
			struct hv_rtc *rtc = vm->devices[i].opaque;
			pthread_mutex_destroy(&rtc->lock);
			free(rtc);
			vm->devices[i].opaque = NULL;
		}
	}
}
