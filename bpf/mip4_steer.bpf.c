// SPDX-License-Identifier: GPL-2.0-only
/* mip4 control-socket steering (issue 13: a forged flood must not starve
 * valid registrations).
 *
 * Copyright the mip4 authors. This file, and the object built from it
 * (src/mip4/data/mip4_steer.bpf.o), are licensed under the GNU General
 * Public License version 2 only, as the tunnel program is. None of the
 * helpers used here is GPL-only (bpf_skb_load_bytes_relative,
 * bpf_map_lookup_elem, bpf_sk_select_reuseport); the licence is the
 * project's choice for its kernel code, not a requirement of the kernel.
 *
 * Theory of operation
 * -------------------
 * The home agent binds two UDP sockets to its registration port with
 * SO_REUSEPORT: the "trusted" one (index 0 of mip4_steer_socks) and the
 * "general" one (index 1). This BPF_PROG_TYPE_SK_REUSEPORT program, attached
 * to the group with SO_ATTACH_REUSEPORT_EBPF, runs for every datagram the
 * kernel delivers to the port, before any socket's receive buffer: a source
 * address found in mip4_steer_trusted (an LRU hash the daemon fills with the
 * sources it sent an accepting Registration Reply to, RFC 5944 §3.8: only
 * authenticated requests get one) goes to the trusted socket, anything else
 * to the general one. A flood of forged requests from other sources then
 * fills the general socket's buffer only; the daemon reads the trusted
 * socket first.
 *
 * Limits: a new source (a first registration from a care-of address or
 * foreign agent never accepted before) competes with the flood on the
 * general socket; a flood that spoofs a trusted source's address lands on
 * the trusted socket. The program does not drop anything: when a selection
 * fails (a socket missing from the array) the kernel picks a socket of the
 * group by its hash, as without a program.
 *
 * Context: for an sk_reuseport program md->data starts at the UDP header;
 * the IPv4 source is read relative to the network header (offset 12).
 */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define MIP4_STEER_TRUSTED 0
#define MIP4_STEER_GENERAL 1
#define MIP4_STEER_SOURCES 65536

/* source address (network byte order, as on the wire) -> datagrams steered */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MIP4_STEER_SOURCES);
	__type(key, __u32);
	__type(value, __u64);
} mip4_steer_trusted SEC(".maps");

/* 0: the trusted socket, 1: the general socket (values: socket fds) */
struct {
	__uint(type, BPF_MAP_TYPE_REUSEPORT_SOCKARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} mip4_steer_socks SEC(".maps");

SEC("sk_reuseport")
int mip4_steer(struct sk_reuseport_md *md)
{
	__u32 saddr = 0;
	__u32 index = MIP4_STEER_GENERAL;
	__u64 *hits;

	if (md->eth_protocol == __bpf_constant_htons(0x0800) &&
	    bpf_skb_load_bytes_relative(md, 12, &saddr, sizeof(saddr),
					BPF_HDR_START_NET) == 0) {
		hits = bpf_map_lookup_elem(&mip4_steer_trusted, &saddr);
		if (hits) {
			__sync_fetch_and_add(hits, 1);
			index = MIP4_STEER_TRUSTED;
		}
	}
	bpf_sk_select_reuseport(md, &mip4_steer_socks, &index, 0);
	return SK_PASS;
}

char LICENSE[] SEC("license") = "GPL";
