/* SPDX-License-Identifier: Apache-2.0 */
/* The administrator's MAC and trust of a real VF, set on its PF's network interface over
 * rtnetlink (IFLA_VFINFO_LIST / IFLA_VF_INFO / IFLA_VF_MAC and IFLA_VF_TRUST, through
 * libnl-route-3). */
#include "host_pci.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <netlink/route/link/sriov.h>

/* libnl's NLE_* codes as errnos, for the callers' one error convention. */
static int nl_to_errno(int nle)
{
	switch (nle < 0 ? -nle : nle) {
	case NLE_PERM:
		return -EPERM;
	case NLE_NODEV:
	case NLE_OBJ_NOTFOUND:
		return -ENODEV;
	case NLE_OPNOTSUPP:
		return -EOPNOTSUPP;
	case NLE_INVAL:
	case NLE_RANGE:
		return -EINVAL;
	case NLE_NOMEM:
		return -ENOMEM;
	default:
		return -EIO;
	}
}

/* An rtnetlink socket and the kernel's view of netdev (with its VFs): 0, or a libnl error with
 * *step naming what failed. The caller frees both, whatever the result. */
static int link_get(const char *netdev, struct nl_sock **sk, struct rtnl_link **link,
		    const char **step)
{
	*link = NULL;
	*step = "allocating a netlink socket";
	*sk = nl_socket_alloc();
	if (!*sk)
		return -NLE_NOMEM;
	*step = "connecting to rtnetlink";
	int rc = nl_connect(*sk, NETLINK_ROUTE);
	if (rc < 0)
		return rc;
	*step = "looking up the interface";
	return rtnl_link_get_kernel(*sk, 0, netdev, link);
}

int gwd_host_vf_set_mac(const char *netdev, unsigned vf, const char *mac, bool trust, char *why,
			size_t n)
{
	unsigned b[6];
	uint8_t raw[6];
	char tail;
	if (sscanf(mac, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
		   &tail) != 6) {
		snprintf(why, n, "'%s' is not a MAC address", mac);
		return -EINVAL;
	}
	for (int i = 0; i < 6; i++)
		raw[i] = (uint8_t)b[i];
	struct nl_sock *sk = NULL;
	struct rtnl_link *link = NULL, *change = rtnl_link_alloc();
	struct rtnl_link_vf *v = rtnl_link_vf_alloc();
	struct nl_addr *addr = nl_addr_build(AF_LLC, raw, sizeof(raw));
	const char *step = "allocating a netlink request";
	int rc = -NLE_NOMEM;
	if (!change || !v || !addr)
		goto out;
	if ((rc = link_get(netdev, &sk, &link, &step)) < 0)
		goto out;
	rtnl_link_vf_set_index(v, vf);
	rtnl_link_vf_set_addr(v, addr);
	rtnl_link_vf_set_trust(v, trust ? 1 : 0);
	step = "building the request";
	if ((rc = rtnl_link_vf_add(change, v)) < 0)
		goto out;
	step = "setting the VF's MAC and trust";
	rc = rtnl_link_change(sk, link, change, 0);
out:
	if (rc < 0)
		snprintf(why, n, "PF interface %s, VF %u, MAC %s, trust %s: %s failed: %s", netdev,
			 vf, mac, trust ? "on" : "off", step, nl_geterror(rc));
	nl_addr_put(addr);
	rtnl_link_vf_put(v);
	rtnl_link_put(change);
	rtnl_link_put(link);
	nl_socket_free(sk);
	return rc < 0 ? nl_to_errno(rc) : 0;
}

int gwd_host_vf_set_vlan(const char *netdev, unsigned vf, unsigned vlan, char *why, size_t n)
{
	struct nl_sock *sk = NULL;
	struct rtnl_link *link = NULL, *change = rtnl_link_alloc();
	struct rtnl_link_vf *v = rtnl_link_vf_alloc();
	nl_vf_vlans_t *vlans = NULL;
	const char *step = "allocating a netlink request";
	int rc = -NLE_NOMEM;
	if (!change || !v || rtnl_link_vf_vlan_alloc(&vlans, 1) < 0)
		goto out;
	if ((rc = link_get(netdev, &sk, &link, &step)) < 0)
		goto out;
	/* One 802.1Q tag, priority 0: what "ip link set NETDEV vf N vlan VLAN" sets (IFLA_VF_VLAN);
	 * VLAN 0 removes it. */
	vlans->vlans[0].vf_vlan = vlan;
	vlans->vlans[0].vf_vlan_qos = 0;
	vlans->vlans[0].vf_vlan_proto = 0x8100; /* ETH_P_8021Q */
	rtnl_link_vf_set_index(v, vf);
	rtnl_link_vf_set_vlans(v, vlans);
	step = "building the request";
	if ((rc = rtnl_link_vf_add(change, v)) < 0)
		goto out;
	step = "setting the VF's VLAN";
	rc = rtnl_link_change(sk, link, change, 0);
out:
	if (rc < 0)
		snprintf(why, n, "PF interface %s, VF %u, VLAN %u: %s failed: %s", netdev, vf, vlan,
			 step, nl_geterror(rc));
	if (vlans)
		rtnl_link_vf_vlan_put(vlans);
	rtnl_link_vf_put(v);
	rtnl_link_put(change);
	rtnl_link_put(link);
	nl_socket_free(sk);
	return rc < 0 ? nl_to_errno(rc) : 0;
}

int gwd_host_vf_get_mac(const char *netdev, unsigned vf, char mac[18], bool *trust, char *why,
			size_t n)
{
	struct nl_sock *sk = NULL;
	struct rtnl_link *link = NULL;
	const char *step;
	int rc = link_get(netdev, &sk, &link, &step);
	if (rc < 0)
		goto out;
	step = "finding the VF in the interface's VF list";
	struct rtnl_link_vf *v = rtnl_link_vf_get(link, vf);
	struct nl_addr *addr = NULL;
	uint32_t t = 0;
	rc = -NLE_OBJ_NOTFOUND;
	if (v && rtnl_link_vf_get_addr(v, &addr) == 0 && addr && nl_addr_get_len(addr) >= 6) {
		const uint8_t *b = nl_addr_get_binary_addr(addr);
		snprintf(mac, 18, "%02x:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3], b[4],
			 b[5]);
		*trust = rtnl_link_vf_get_trust(v, &t) == 0 && t;
		rc = 0;
	}
	if (v)
		rtnl_link_vf_put(v);
out:
	if (rc < 0)
		snprintf(why, n, "PF interface %s, VF %u: %s failed: %s", netdev, vf, step,
			 nl_geterror(rc));
	rtnl_link_put(link);
	nl_socket_free(sk);
	return rc < 0 ? nl_to_errno(rc) : 0;
}
