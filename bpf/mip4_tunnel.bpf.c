// SPDX-License-Identifier: GPL-2.0-only
/* mip4 tc-BPF tunnel data plane (issue 12).
 *
 * Copyright the mip4 authors. This file, and the object built from it
 * (src/mip4/data/mip4_tunnel.bpf.o), are licensed under the GNU General
 * Public License version 2 only: the bpf_fib_lookup helper is GPL-only.
 * The rest of mip4 (the Python that loads it) stays under its own licence.
 *
 * Theory of operation
 * -------------------
 * Five tc programs, attached to a clsact qdisc in direct-action mode:
 *
 *   mip4_agent         ingress of a mobility agent's interfaces (home agent and
 *                      foreign agent): mip4_decap for a registered peer's
 *                      tunnel packet, else mip4_ha_encap for a bound
 *                      destination, else mip4_reverse_encap for a source with a
 *                      reverse tunnel -- one hook does all three (the first
 *                      TC_ACT_OK of a filter ends classification, so separate
 *                      filters could not share the hook). It also answers ARP
 *                      requests for the addresses in mip4_proxy (proxy ARP),
 *                      and relays a visitor's usual registration renewal and
 *                      its home agent's reply (foreign agent, see below).
 *   mip4_ha_encap      ingress of the home agent's home-link/upstream devices:
 *                      destination in mip4_bindings -> tunnel to the care-of
 *                      address (RFC 5944 §4.2.3), inner TTL - 1.
 *   mip4_reverse_encap ingress of the foreign agent's visitor interface:
 *                      source in mip4_reverse -> reverse tunnel to the home
 *                      agent (RFC 3024), inner TTL - 1; not what is for the
 *                      agent itself (the tunnel's entry address: the visitor's
 *                      registrations) or multicast/broadcast (solicitations).
 *   mip4_host_encap    egress of a co-located mobile node: source in
 *                      mip4_reverse -> tunnel to the home agent; the node is
 *                      the source, so the inner TTL is left alone. Out of
 *                      the tunnel's own device the packet then goes on
 *                      (TC_ACT_OK), not redirected into it again.
 *   mip4_decap         ingress of any tunnel endpoint: protocol 4/47/55 from
 *                      a (local, peer) pair registered in mip4_peers is
 *                      stripped; anything else goes to the stack untouched.
 *                      A decapsulated datagram for a visitor in mip4_visitors
 *                      is redirected to the visitor's hardware address
 *                      (foreign agent, RFC 5944 §4.2.2: never ARP for it);
 *                      anything else decapsulated goes to the stack.
 *                      At a home agent (peers with MIP4_PF_BOUND_SRC, the
 *                      care-of addresses of its bindings) the decapsulated
 *                      datagram's source must be a home address bound to
 *                      that care-of address (RFC 3024 §4.3); otherwise the
 *                      packet goes on untouched. Such a peer also has
 *                      MIP4_PF_FORWARD: the decapsulated datagram is
 *                      forwarded by the program as the stack would forward
 *                      it (see forward()), so the reverse direction skips
 *                      the stack's forwarding as the forward direction does.
 *                      A datagram for another bound mobile node (node to
 *                      node through the home agent) with the same
 *                      encapsulation is not decapsulated: its outer header
 *                      is rewritten towards that node's care-of address
 *                      (see hairpin()).
 *
 * Encapsulation: IP in IP (RFC 2003), GRE with or without key (RFC 2784,
 * RFC 2890), minimal encapsulation with or without S (RFC 2004). The outer
 * header copies TOS and DF from the inner one (RFC 2003 §3.1) and carries
 * its own checksum. The route to the tunnel exit is looked up with
 * bpf_fib_lookup BEFORE the packet is touched (tunnel.oif == 0), or, for a
 * node whose forwarding is off (fib lookups then answer "forwarding
 * disabled"), the daemon names the outgoing device and its MTU and the kernel
 * resolves the next hop with bpf_redirect_neigh (tunnel.oif != 0).
 *
 * Slow path: whatever the fast path cannot do correctly returns TC_ACT_OK
 * with the packet untouched, so the kernel handles it (per-binding routes
 * into an MTU-limited tunnel device send "fragmentation needed" and "time
 * exceeded" as RFC 2003 §4-5 require): no route, packet too big, inner TTL
 * expiring, minimal encapsulation of a GSO packet or a fragment when the
 * binding forbids the IP-in-IP fallback, a source that is the tunnel exit
 * (RFC 2003 §3.2). Every outcome is
 * counted in mip4_events (per CPU), every tunnelled packet in mip4_stats
 * (per CPU, per binding and direction).
 *
 * Accounting (RFC 2866, at a foreign agent): mip4_acct holds one per-CPU entry
 * per visitor's home address, made by the daemon when it accepts the visitor;
 * the programs only add to entries that are there. Input: the visitor's
 * datagrams reverse-tunnelled (mip4_reverse_encap / mip4_agent); output: the
 * datagrams decapsulated for it (delivered to its hardware address or handed
 * to the stack). Octets are the inner datagram's Total Length, as the
 * user-space plane counts them.
 *
 * Proxy ARP (RFC 5944 §4.6): while a mobile node is away, its home agent
 * answers ARP requests for the node's home address on the home link with its
 * own hardware address. mip4_proxy holds one entry per (address, interface);
 * mip4_agent answers an Ethernet/IPv4 ARP request (RFC 826) for such an
 * address arriving on that interface as the kernel answers for a proxy
 * neighbour entry (arp_process in net/ipv4/arp.c): not a probe (sender
 * address 0, RFC 5227 §2.1.1: only an address's owner answers it), not a
 * gratuitous request (sender = target: the node announcing itself), not a
 * frame for another host's hardware address. The reply (op 2; sender: the
 * interface's hardware address and the target address; target: the
 * requester) goes to the requester's hardware address out of the interface
 * the request came in on. Anything else goes on untouched. The kernel keeps
 * its proxy entries in a 16-bucket list scanned on every insert, delete and
 * ARP request (PNEIGH_HASHMASK): at tens of thousands of mobile nodes away,
 * its scans took a third of the home agent's CPU; a hash map does not.
 *
 * Registration relay (foreign agent, issue 13): most Registration Requests a
 * foreign agent hears are its visitors renewing what they have, and most
 * replies its home agents' acceptances. Relaying one through the daemon costs
 * tens of microseconds of CPU; mip4_agent relays the usual one itself. The
 * daemon writes, per visitor's home address, mip4_relay: the first 16 bytes of
 * the request it registered (type, flags, lifetime, home address, home agent,
 * care-of address) and the addresses, ports, interface and hardware addresses
 * of both legs. A request (UDP to port 434, RFC 5944 §3.3) that repeats those
 * 16 bytes from the same visitor -- its interface, hardware address, IP
 * source, the agent's address it was sent to, UDP source port, IP TTL 255
 * when it asked for a reverse tunnel (RFC 3024 §4.2.1) -- with the usual
 * layout (the fixed part and one MN-HA extension, RFC 5944 §3.5.2; no IP
 * options, not a fragment) is relayed as the daemon would relay it (§3.7.2.2:
 * from the agent's address and port to the home agent's port 434, the payload
 * unchanged; IP TTL 64, TOS 0; the UDP checksum updated, RFC 1624), and its
 * Identification kept as pending. A reply (from port 434, §3.4) accepting it
 * (code 0 or 1, lifetime non-zero; the fixed part and MN-HA, nothing after:
 * a reply with FA-HA is verified by the daemon) from the same home agent,
 * whose low-order 32 bits of Identification match the pending request's
 * (§3.7.3.1), is relayed to the visitor (§3.7.3.2: from the agent's address
 * and port 434 to the visitor's address and port, at its hardware address,
 * out of its interface). The daemon's engine keeps its exact state (pending
 * list, visitor list, counters, lifetimes) by replaying each relayed datagram
 * as it came in, which the program copies into the ring buffer mip4_relayed;
 * no room there, nothing is relayed. The MN-HA authenticator is not checked
 * here (the home agent checks it, RFC 5944 §3.8.2.1) nor is it by a foreign
 * agent's daemon; the renewal's lifetime, flags and addresses are those the
 * daemon accepted already. Anything else -- another layout, a change, a
 * denial, a first registration, a deregistration, a bad IP header checksum,
 * a frame for another host or with a VLAN tag -- goes on untouched, to the
 * daemon's general path.
 *
 * Minimal encapsulation has no kernel GSO handler and RFC 2004 §3 forbids it
 * for fragments: such packets are sent IP in IP instead (the peer must
 * accept IP in IP, which every RFC 5944 mobility agent does) unless the
 * binding has MIP4_TF_MINIMAL_STRICT.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#ifndef AF_INET
#define AF_INET 2
#endif
/* linux/if_arp.h (which needs libc headers) */
#define ARPHRD_ETHER 1
#define ARPOP_REQUEST 1
#define ARPOP_REPLY 2

/* ---- shared with Python (mip4/io/bpf/plane.py): keep in step ---------- */

enum mip4_encap {
	MIP4_ENCAP_IPIP = 1,	/* RFC 2003 */
	MIP4_ENCAP_GRE = 2,	/* RFC 2784 (+ RFC 2890 key when MIP4_TF_GRE_KEY) */
	MIP4_ENCAP_MINIMAL = 3, /* RFC 2004 */
};

#define MIP4_TF_GRE_KEY 0x01	    /* tunnel: GRE header carries tunnel.key */
#define MIP4_TF_MINIMAL_STRICT 0x02 /* tunnel: no IP-in-IP fallback: slow path */

/* mip4_bindings (key: home address) and mip4_reverse (key: home address as
 * the inner source) values: one tunnel. Addresses in network order. */
struct mip4_tunnel {
	__be32 local;  /* outer source: this agent / the care-of address */
	__be32 remote; /* outer destination: care-of address / home agent */
	__u32 key;     /* GRE key, host order */
	__u32 oif;     /* 0: bpf_fib_lookup; else redirect_neigh out of this */
	__u16 mtu;     /* MTU of oif (oif mode only) */
	__u8 encap;    /* enum mip4_encap */
	__u8 flags;    /* MIP4_TF_* */
	__u8 ttl;      /* outer TTL, 0: 64 */
	__u8 pad[3];
};

struct mip4_peer_key {
	__be32 local;  /* outer destination of tunnelled packets: us */
	__be32 remote; /* outer source: the registered tunnel peer */
};

#define MIP4_PF_GRE_KEY 0x01 /* peer: GRE packets must carry peer.key */
#define MIP4_PF_ANY_KEY 0x02 /* peer: GRE packets may carry any key, or none */
/* peer: a reverse tunnel's exit (home agent): the inner source must be a home
 * address whose binding in mip4_bindings is (local, remote) (RFC 3024 §4.3) */
#define MIP4_PF_BOUND_SRC 0x04
/* peer: a reverse tunnel's exit (home agent): a decapsulated datagram for
 * another host is forwarded here (bpf_fib_lookup, TTL - 1, redirect) instead
 * of by the stack; see forward() */
#define MIP4_PF_FORWARD 0x08

struct mip4_peer {
	__u32 key;   /* host order */
	__u32 flags; /* MIP4_PF_* */
};

/* mip4_visitors (key: home address): where a foreign agent delivers the
 * decapsulated datagrams of a visitor. */
struct mip4_visitor {
	__u32 ifindex; /* the visitor's interface */
	__u8 mac[6];   /* the visitor's hardware address (from its request) */
	__u8 smac[6];  /* the interface's own hardware address */
};

enum mip4_dir {
	MIP4_DIR_HA = 0,      /* mip4_ha_encap, key: home address */
	MIP4_DIR_REVERSE = 1, /* mip4_reverse_encap / mip4_host_encap, key: home address */
	MIP4_DIR_DECAP = 2,   /* mip4_decap, key: peer address */
};

struct mip4_stats_key {
	__be32 addr;
	__u32 dir; /* enum mip4_dir */
};

struct mip4_stats {
	__u64 packets;
	__u64 bytes; /* inner IPv4 bytes (Total Length) */
};

/* mip4_acct (key: a visitor's home address): RFC 2866 Acct-Input/Output */
struct mip4_acct {
	__u64 in_packets;  /* reverse-tunnelled from the visitor */
	__u64 in_octets;   /* their inner Total Length */
	__u64 out_packets; /* decapsulated for the visitor */
	__u64 out_octets;
};

enum mip4_event {
	MIP4_EV_ENCAP = 0,	   /* encapsulated and redirected */
	MIP4_EV_DECAP = 1,	   /* decapsulated, passed to the stack */
	MIP4_EV_NOT_OURS = 2,	   /* no binding / not a tunnel packet: untouched */
	MIP4_EV_SLOW_NO_ROUTE = 3, /* fib lookup found no usable route */
	MIP4_EV_SLOW_TOO_BIG = 4,  /* does not fit the path MTU once encapsulated, or
				    * (forward()) the next hop's */
	MIP4_EV_SLOW_TTL = 5,	   /* inner TTL would expire here */
	MIP4_EV_SLOW_MINIMAL = 6,  /* minimal + GSO/fragment, strict binding */
	MIP4_EV_MINIMAL_FALLBACK = 7, /* minimal + GSO/fragment: sent IP in IP */
	MIP4_EV_DECAP_VISITOR = 8, /* decapsulated, redirected to a visitor */
	MIP4_EV_DECAP_UNKNOWN_PEER = 9, /* tunnel packet from an unregistered pair */
	MIP4_EV_DECAP_BAD = 10,	       /* malformed / unsupported tunnel header */
	MIP4_EV_DECAP_KEY = 11,	       /* GRE key missing or wrong */
	MIP4_EV_ERROR = 12,	       /* cannot happen: dropped */
	MIP4_EV_SLOW_FWD_DISABLED = 13, /* fib lookup: forwarding disabled */
	MIP4_EV_SLOW_LOOP = 14,	 /* RFC 2003 §3.2: source is the tunnel exit */
	MIP4_EV_SLOW_ADJUST = 15, /* the kernel refused to make room: untouched */
	MIP4_EV_DECAP_NOT_BOUND = 16, /* RFC 3024 §4.3: inner source not bound to the peer */
	MIP4_EV_LOCAL = 17, /* from a reverse-tunnelled source to us, or multi/broadcast */
	MIP4_EV_PROXY_ARP = 18, /* an ARP request for a proxied address answered */
	MIP4_EV_DECAP_FORWARD = 19, /* decapsulated and forwarded (MIP4_PF_FORWARD) */
	MIP4_EV_RELAY_REQUEST = 20, /* a visitor's request relayed to its home agent */
	MIP4_EV_RELAY_REPLY = 21,   /* a home agent's reply relayed to the visitor */
	MIP4_EV_RELAY_RING_FULL = 22, /* would have relayed, but no room in mip4_relayed:
				       * left to the stack untouched */
	MIP4_EV_MAX = 23,
};

/* mip4_proxy: answer ARP for addr on the interface ifindex (RFC 5944 §4.6) */
struct mip4_proxy_key {
	__be32 addr;	 /* the mobile node's home address, network order */
	__u32 ifindex; /* the home link's interface, where requests come in */
};

struct mip4_proxy {
	__u8 mac[6]; /* that interface's own hardware address: the answer */
	__u8 pad[2];
};

#define MIP4_RF_TTL255 0x01 /* relay: the request must arrive with IP TTL 255 */

/* mip4_relay (key: a visitor's home address): the kernel relays the visitor's
 * renewal that repeats its registered request (foreign agent, issue 13).
 * Addresses and ports in network order. */
struct mip4_relay {
	__u8 request[16];  /* the registered request's bytes 0..15: type 1, flags,
			    * lifetime, home address, home agent, care-of address */
	__be32 node;	   /* the visitor's IP address: its request's source, the
			    * reply's destination */
	__be32 agent;	   /* the address it sent the request to: the request's IP
			    * destination, the reply's source */
	__be32 relay_src;  /* the relayed request's IP source (the reply's IP
			    * destination) */
	__u32 ifindex;	   /* the visitor's interface (where its request must arrive;
			    * where the reply leaves) */
	__be16 node_port;  /* the visitor's UDP source port (the reply's destination
			    * port) */
	__be16 relay_port; /* the relayed request's UDP source port (the reply's
			    * destination port at the agent) */
	__u8 node_mac[6];  /* the visitor's hardware address: the request's Ethernet
			    * source, the reply's destination */
	__u8 own_mac[6];   /* the visitor interface's own hardware address: the
			    * reply's Ethernet source */
	__u8 flags;	   /* MIP4_RF_* */
	__u8 pad[3];
	/* written by the program */
	__u8 pending[8];   /* the Identification of the request relayed last and not
			    * yet answered */
	__u32 pending_set; /* 1: pending holds one */
	__u32 pad2;
};

enum mip4_relayed_kind {
	MIP4_RELAYED_REQUEST = 1, /* a request relayed to the home agent (its type) */
	MIP4_RELAYED_REPLY = 3,	  /* a reply relayed to the visitor (its type) */
};

/* One record of the ring buffer mip4_relayed: a datagram the program relayed,
 * as it came in (the foreign agent's engine replays it). */
struct mip4_relayed {
	__u32 ifindex;	     /* the interface it came in on */
	__u8 kind;	     /* enum mip4_relayed_kind */
	__u8 ttl;	     /* its IP TTL as it came in */
	__u16 len;	     /* bytes of payload used: 46 (request) or 42 (reply) */
	__be32 saddr, daddr; /* its IP addresses as it came in */
	__be16 sport, dport; /* its UDP ports as it came in */
	__u8 mac[6];	     /* its Ethernet source as it came in */
	__u8 pad[2];
	__u8 payload[48];    /* the UDP payload as it came in */
};

/* ---- maps ------------------------------------------------------------- */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __be32);
	__type(value, struct mip4_tunnel);
} mip4_bindings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __be32);
	__type(value, struct mip4_tunnel);
} mip4_reverse SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct mip4_peer_key);
	__type(value, struct mip4_peer);
} mip4_peers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __be32);
	__type(value, struct mip4_visitor);
} mip4_visitors SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 196608);
	__type(key, struct mip4_stats_key);
	__type(value, struct mip4_stats);
} mip4_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 65536);
	__type(key, __be32);
	__type(value, struct mip4_acct);
} mip4_acct SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct mip4_proxy_key);
	__type(value, struct mip4_proxy);
} mip4_proxy SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MIP4_EV_MAX);
	__type(key, __u32);
	__type(value, __u64);
} mip4_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __be32);
	__type(value, struct mip4_relay);
} mip4_relay SEC(".maps");

/* 1 MiB: some 11,900 records (76 bytes and the ring's 8-byte header each),
 * the relays of more than a tenth of a second at 100,000 a second between two
 * reads by the daemon; when it is full, the datagrams go to the daemon. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} mip4_relayed SEC(".maps");

/* The daemon is woken (its epoll descriptor made readable) only once 64
 * records wait: it reads the ring anyway before each read of its socket and
 * before each of its timers, so a record never waits past its next input or
 * its next advertisement, and a woken daemon applies tens of records at once
 * instead of one or two per wakeup (a wakeup costs it more than a record).
 * A record takes its size and the ring's 8-byte header, rounded up to 8; the
 * data available counts the one being submitted. */
#define MIP4_RELAYED_WAKE (64 * ((sizeof(struct mip4_relayed) + 8 + 7) & ~7UL))

static __always_inline __u64 relayed_wakeup(void)
{
	return bpf_ringbuf_query(&mip4_relayed, BPF_RB_AVAIL_DATA) >= MIP4_RELAYED_WAKE
		       ? BPF_RB_FORCE_WAKEUP
		       : BPF_RB_NO_WAKEUP;
}

/* ---- helpers ------------------------------------------------------------ */

#define IP_DF 0x4000
#define IP_MF 0x2000
#define IP_OFFMASK 0x1fff
#define GRE_FLAG_C 0x8000
#define GRE_FLAG_R 0x4000
#define GRE_FLAG_K 0x2000
#define GRE_FLAG_S 0x1000
#define GRE_MUST_BE_ZERO 0x4c00 /* bits 1, 4, 5 (RFC 2784 §2.3) */
#define GRE_VERSION 0x0007
#define MINIMAL_S 0x80
#define IPPROTO_MINIMAL 55
#define DEFAULT_TTL 64

static __always_inline int event(__u32 ev, int verdict)
{
	__u64 *n = bpf_map_lookup_elem(&mip4_events, &ev);

	if (n)
		*n += 1;
	return verdict;
}

static __always_inline void count(__be32 addr, __u32 dir, __u64 bytes)
{
	struct mip4_stats_key k = {.addr = addr, .dir = dir};
	struct mip4_stats *s = bpf_map_lookup_elem(&mip4_stats, &k);

	if (!s) {
		struct mip4_stats zero = {};

		bpf_map_update_elem(&mip4_stats, &k, &zero, BPF_NOEXIST);
		s = bpf_map_lookup_elem(&mip4_stats, &k);
		if (!s)
			return;
	}
	s->packets += 1;
	s->bytes += bytes;
}

/* A visitor's accounting entry, if the daemon made one (never created here). */
static __always_inline void account(__be32 home, int output, __u64 octets)
{
	struct mip4_acct *a = bpf_map_lookup_elem(&mip4_acct, &home);

	if (!a)
		return;
	if (output) {
		a->out_packets += 1;
		a->out_octets += octets;
	} else {
		a->in_packets += 1;
		a->in_octets += octets;
	}
}

static __always_inline __u16 csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* RFC 1071 checksum of a 20-byte IPv4 header (checksum field included as
 * it is: zero it first to compute, leave it to verify). */
static __always_inline __u16 ip_csum20(const struct iphdr *ip)
{
	const __u16 *w = (const __u16 *)ip;
	__u32 sum = 0;

#pragma unroll
	for (int i = 0; i < 10; i++)
		sum += w[i];
	return csum_fold(sum);
}

/* Incremental update for one 16-bit word (RFC 1624 eqn. 3). */
static __always_inline __u16 csum_replace2(__u16 csum, __u16 old, __u16 new)
{
	__u32 sum = (__u16)~csum + (__u16)~old + new;

	return csum_fold(sum);
}

static __always_inline __u32 overhead_of(__u8 encap, __u8 flags, int with_src)
{
	switch (encap) {
	case MIP4_ENCAP_GRE:
		return (flags & MIP4_TF_GRE_KEY) ? 28 : 24;
	case MIP4_ENCAP_MINIMAL:
		return with_src ? 12 : 8;
	default:
		return 20;
	}
}

/* The length of the largest segment the kernel will cut from a GSO packet
 * whose IPv4 header is ip: its headers and gso_size bytes of payload (TCP:
 * the TCP header's own length; UDP GSO: 8), never more than the packet; 0
 * when it cannot be told here (another protocol, a header out of reach): such
 * a packet's segments are not checked, as the kernel does not check them on
 * a redirect either. A route lookup given this length (bpf_fib_lookup's
 * tot_len) holds every segment to the next hop's MTU, as ip_forward does with
 * skb_gso_validate_network_len. */
static __always_inline __u32 gso_segment_len(const struct __sk_buff *skb, const struct iphdr *ip,
					     const void *data_end)
{
	__u32 hlen = (ip->ihl & 0xf) * 4, tot = bpf_ntohs(ip->tot_len), l4, seg;
	const __u8 *p = (const __u8 *)ip + hlen;

	if (ip->protocol == IPPROTO_TCP) {
		if ((const void *)(p + 13) > data_end)
			return 0;
		l4 = (p[12] >> 4) * 4;
	} else if (ip->protocol == IPPROTO_UDP) {
		l4 = 8;
	} else {
		return 0;
	}
	seg = hlen + l4 + skb->gso_size;
	return tot && seg > tot ? tot : seg; /* tot_len 0: a BIG TCP packet */
}

/* The route to tunnel t's exit for a packet of len bytes (a GSO packet: its
 * largest segment; 0: not held to an MTU), looked up before the packet is
 * touched: out of t->oif against its MTU (oif mode: the kernel resolves the
 * next hop, *rc NO_NEIGH), or bpf_fib_lookup from the interface the packet
 * came in on. Returns 0 with fib->ifindex the device to leave by, or the
 * slow path's reason (an event). */
static __always_inline __u32 route_to_exit(struct __sk_buff *skb, const struct mip4_tunnel *t,
					   __u8 tos, __u8 proto, __u32 len,
					   struct bpf_fib_lookup *fib, long *rc)
{
	if (t->oif) {
		fib->ifindex = t->oif;
		*rc = BPF_FIB_LKUP_RET_NO_NEIGH;
		return len > (t->mtu ? t->mtu : 1500) ? MIP4_EV_SLOW_TOO_BIG : 0;
	}
	fib->family = AF_INET;
	fib->tos = tos;
	fib->l4_protocol = proto;
	fib->tot_len = len;
	fib->ipv4_src = t->local;
	fib->ipv4_dst = t->remote;
	fib->ifindex = skb->ingress_ifindex ? skb->ingress_ifindex : skb->ifindex;
	*rc = bpf_fib_lookup(skb, fib, sizeof(*fib), 0);
	if (*rc == BPF_FIB_LKUP_RET_FRAG_NEEDED)
		return MIP4_EV_SLOW_TOO_BIG;
	if (*rc == BPF_FIB_LKUP_RET_FWD_DISABLED)
		return MIP4_EV_SLOW_FWD_DISABLED;
	if ((*rc != BPF_FIB_LKUP_RET_SUCCESS && *rc != BPF_FIB_LKUP_RET_NO_NEIGH) || !fib->ifindex)
		return MIP4_EV_SLOW_NO_ROUTE;
	return 0;
}

/* Out of fib->ifindex to the next hop a route lookup found: to its hardware
 * addresses when the kernel knew them (rc SUCCESS), else through the
 * kernel's neighbour resolution (no entry yet, or oif mode). */
static __always_inline long to_next_hop(struct ethhdr *eth, const struct bpf_fib_lookup *fib,
					long rc)
{
	if (rc == BPF_FIB_LKUP_RET_SUCCESS) {
		__builtin_memcpy(eth->h_dest, fib->dmac, ETH_ALEN);
		__builtin_memcpy(eth->h_source, fib->smac, ETH_ALEN);
		return bpf_redirect(fib->ifindex, 0);
	}
	return bpf_redirect_neigh(fib->ifindex, NULL, 0, 0);
}

/* Encapsulate the IPv4 packet after the Ethernet header along tunnel t.
 * dec_ttl: this node forwards the inner packet (RFC 791: TTL - 1).
 * leaving: at egress, the device the packet is leaving by (else 0): when it
 * is the tunnel's own device (t->oif), the packet goes on out of it
 * (TC_ACT_OK) with the Ethernet header the kernel gave it, rather than
 * being redirected through the same device's queue and this hook again.
 * The co-located node's datagrams reach its egress routed by table 435,
 * whose one route is the route to the tunnel exit (the daemon copies it),
 * so that header already names the outer packet's next hop.
 * Returns a TC verdict; on every slow path the packet is untouched. */
static __always_inline int encap(struct __sk_buff *skb, const struct mip4_tunnel *t, __be32 key,
				 __u32 dir, int dec_ttl, __u32 leaving)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct bpf_fib_lookup fib = {};
	__u8 encap = t->encap, tflags = t->flags;
	__u16 inner_len, frag, old_word;
	__u32 overhead, out_len, slow;
	int gso = skb->gso_size != 0, with_src = 0, fragment;
	__be32 orig_src, orig_dst;
	__u8 proto, tos, ttl;
	__be16 id;
	long rc = 0;

	if ((void *)(ip + 1) > data_end)
		return event(MIP4_EV_NOT_OURS, TC_ACT_OK);
	/* RFC 2003 §3.2: never tunnel a datagram whose source is the exit point */
	if (ip->saddr == t->remote)
		return event(MIP4_EV_SLOW_LOOP, TC_ACT_OK);
	/* RFC 2003 §3.1: TTL - 1 when forwarding, the kernel sends time
	 * exceeded if that reaches 0; never encapsulate a TTL-0 datagram */
	if (ip->ttl <= (dec_ttl ? 1 : 0))
		return event(MIP4_EV_SLOW_TTL, TC_ACT_OK);
	frag = bpf_ntohs(ip->frag_off);
	fragment = (frag & (IP_MF | IP_OFFMASK)) != 0;
	if (encap == MIP4_ENCAP_MINIMAL && (gso || fragment || ip->ihl != 5)) {
		/* RFC 2004 §3: not for fragments; no GSO handler for protocol 55. */
		if (tflags & MIP4_TF_MINIMAL_STRICT)
			return event(MIP4_EV_SLOW_MINIMAL, TC_ACT_OK);
		event(MIP4_EV_MINIMAL_FALLBACK, 0);
		encap = MIP4_ENCAP_IPIP;
	}
	if (encap == MIP4_ENCAP_MINIMAL)
		with_src = ip->saddr != t->local; /* RFC 2004 §3: S when we are not the source */
	overhead = overhead_of(encap, tflags, with_src);
	inner_len = bpf_ntohs(ip->tot_len);
	orig_src = ip->saddr;
	orig_dst = ip->daddr;
	proto = ip->protocol;
	tos = ip->tos;
	id = ip->id;
	ttl = ip->ttl - (dec_ttl ? 1 : 0);

	/* Route to the tunnel exit before touching the packet, holding it to the
	 * route's MTU: as one packet, or (GSO) each segment: adjust_room shrinks
	 * gso_size by the overhead, so an outer segment is as long as the inner
	 * one is now (gso_segment_len; 0: not checked). */
	out_len = gso ? gso_segment_len(skb, ip, data_end) : inner_len + overhead;
	slow = route_to_exit(skb, t, tos,
			     encap == MIP4_ENCAP_GRE       ? IPPROTO_GRE
			     : encap == MIP4_ENCAP_MINIMAL ? IPPROTO_MINIMAL
							   : IPPROTO_IPIP,
			     out_len, &fib, &rc);
	if (slow)
		return event(slow, TC_ACT_OK);

	/* Make room after the Ethernet header. The ENCAP flags set the GSO
	 * type so the kernel segments a GSO packet as IPIP/GRE; a failure
	 * leaves the packet as it was: slow path. */
	if (encap == MIP4_ENCAP_MINIMAL) {
		/* non-GSO only: a plain insertion */
		if (bpf_skb_adjust_room(skb, overhead, BPF_ADJ_ROOM_MAC, 0))
			return event(MIP4_EV_SLOW_ADJUST, TC_ACT_OK);
	} else {
		__u64 f = BPF_F_ADJ_ROOM_ENCAP_L3_IPV4;

		if (encap == MIP4_ENCAP_GRE)
			f |= BPF_F_ADJ_ROOM_ENCAP_L4_GRE;
		if (bpf_skb_adjust_room(skb, overhead, BPF_ADJ_ROOM_MAC, f))
			return event(MIP4_EV_SLOW_ADJUST, TC_ACT_OK);
	}

	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	eth = data;
	ip = data + sizeof(*eth);
	if ((void *)(ip + 1) + 12 > data_end) /* outer header + up to 12 bytes */
		return event(MIP4_EV_ERROR, TC_ACT_SHOT);

	/* Inner TTL - 1 with an incrementally updated checksum (RFC 1624);
	 * the minimal header rewrites the original header below. */
	if (dec_ttl && encap != MIP4_ENCAP_MINIMAL) {
		struct iphdr *in = (void *)ip + (overhead & 0x1f);

		if ((void *)(in + 1) > data_end)
			return event(MIP4_EV_ERROR, TC_ACT_SHOT);
		old_word = *(__u16 *)&in->ttl;
		in->ttl -= 1;
		in->check = csum_replace2(in->check, old_word, *(__u16 *)&in->ttl);
	}

	/* Outer header (RFC 2003 §3.1; RFC 2004 §3 rewrites the original). */
	ip->version = 4;
	ip->ihl = 5;
	ip->tos = tos;
	ip->tot_len = bpf_htons(inner_len + overhead);
	ip->id = id;
	ip->frag_off = bpf_htons(frag & IP_DF);
	ip->ttl = t->ttl ? t->ttl : DEFAULT_TTL;
	ip->saddr = t->local;
	ip->daddr = t->remote;
	if (encap == MIP4_ENCAP_MINIMAL) {
		__u8 *m = (__u8 *)(ip + 1);
		__u32 sum;

		/* a minimal header is never sent for a fragment: the outer
		 * flags are the original's DF alone */
		ip->protocol = IPPROTO_MINIMAL;
		ip->ttl = ttl; /* RFC 2004 §3: the original header, modified */
		m[0] = proto;
		m[1] = with_src ? MINIMAL_S : 0;
		m[2] = 0;
		m[3] = 0;
		*(__be32 *)(m + 4) = orig_dst;
		sum = (__u32)((__u16 *)m)[0] + ((__u16 *)m)[2] + ((__u16 *)m)[3];
		if (with_src) {
			*(__be32 *)(m + 8) = orig_src;
			sum += (__u32)((__u16 *)m)[4] + ((__u16 *)m)[5];
		}
		*(__u16 *)(m + 2) = csum_fold(sum);
	} else if (encap == MIP4_ENCAP_GRE) {
		__be16 *g = (__be16 *)(ip + 1);

		ip->protocol = IPPROTO_GRE;
		g[0] = bpf_htons((tflags & MIP4_TF_GRE_KEY) ? GRE_FLAG_K : 0);
		g[1] = bpf_htons(ETH_P_IP);
		if (tflags & MIP4_TF_GRE_KEY)
			*(__be32 *)(g + 2) = bpf_htonl(t->key);
	} else {
		ip->protocol = IPPROTO_IPIP;
	}
	ip->check = 0;
	ip->check = ip_csum20(ip);

	count(key, dir, inner_len);
	if (dir == MIP4_DIR_REVERSE && dec_ttl) /* a foreign agent's visitor */
		account(key, 0, inner_len);
	if (t->oif && leaving == t->oif)
		return event(MIP4_EV_ENCAP, TC_ACT_OK);
	return event(MIP4_EV_ENCAP, to_next_hop(eth, &fib, rc));
}

static __always_inline struct iphdr *ipv4_of(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);

	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP) || ip->version != 4)
		return NULL;
	return ip;
}

/* ---- programs --------------------------------------------------------- */

/* A datagram from a reverse-tunnelled source that is not to be tunnelled: to the
 * tunnel's own entry address (a visitor's Registration Request to its foreign
 * agent, RFC 5944 §3.7; an ICMP echo to the agent), or to a multicast or broadcast
 * address (an Agent Solicitation, RFC 5944 §2.4; the kernel's local and broadcast
 * routes come before the reverse tunnel's policy rule too). (The frames a daemon
 * sends on a link itself, AF_PACKET, bypass the qdisc layer and these programs:
 * mip4.io.rawsock.open_packet_sender.) */
static __always_inline int not_for_the_tunnel(const struct iphdr *ip, const struct mip4_tunnel *t)
{
	return ip->daddr == t->local || (bpf_ntohl(ip->daddr) >> 28) >= 0xe;
}

SEC("tc")
int mip4_ha_encap(struct __sk_buff *skb)
{
	struct iphdr *ip = ipv4_of(skb);
	struct mip4_tunnel *t;
	__be32 dst;

	if (!ip)
		return event(MIP4_EV_NOT_OURS, TC_ACT_OK);
	dst = ip->daddr;
	t = bpf_map_lookup_elem(&mip4_bindings, &dst);
	if (!t)
		return event(MIP4_EV_NOT_OURS, TC_ACT_OK);
	return encap(skb, t, dst, MIP4_DIR_HA, 1, 0);
}

SEC("tc")
int mip4_reverse_encap(struct __sk_buff *skb)
{
	struct iphdr *ip = ipv4_of(skb);
	struct mip4_tunnel *t;
	__be32 src;

	if (!ip)
		return event(MIP4_EV_NOT_OURS, TC_ACT_OK);
	src = ip->saddr;
	t = bpf_map_lookup_elem(&mip4_reverse, &src);
	if (!t)
		return event(MIP4_EV_NOT_OURS, TC_ACT_OK);
	if (not_for_the_tunnel(ip, t))
		return event(MIP4_EV_LOCAL, TC_ACT_OK);
	return encap(skb, t, src, MIP4_DIR_REVERSE, 1, 0);
}

SEC("tc")
int mip4_host_encap(struct __sk_buff *skb)
{
	struct iphdr *ip = ipv4_of(skb);
	struct mip4_tunnel *t;
	__be32 src;

	if (!ip)
		return event(MIP4_EV_NOT_OURS, TC_ACT_OK);
	src = ip->saddr;
	t = bpf_map_lookup_elem(&mip4_reverse, &src);
	if (!t)
		return event(MIP4_EV_NOT_OURS, TC_ACT_OK);
	if (not_for_the_tunnel(ip, t))
		return event(MIP4_EV_LOCAL, TC_ACT_OK);
	/* out of this device: on as it is (see encap()); redirected out of
	 * another, the encapsulated packet passes that device's hook with the
	 * care-of address as its source, not in mip4_reverse */
	return encap(skb, t, src, MIP4_DIR_REVERSE, 0, skb->ifindex);
}

/* forward()'s slow path: the datagram goes to the stack as decapsulated,
 * counted as decap and by the reason why. */
static __always_inline int to_stack(__u32 why)
{
	event(why, 0);
	return event(MIP4_EV_DECAP, TC_ACT_OK);
}

/* A decapsulated datagram (after the Ethernet header) that a home agent
 * forwards (MIP4_PF_FORWARD): what ip_forward would do for it, without the
 * stack. bpf_fib_lookup routes it from the interface it came in on (policy
 * rules included) and checks that interface forwards; TTL - 1 with an
 * incrementally updated checksum (RFC 791, RFC 1624); redirected to the next
 * hop's hardware address, or through the kernel's neighbour resolution when
 * it has no entry yet. The stack forwards (TC_ACT_OK, the datagram as it was
 * decapsulated) whatever this does not do as it would: options (ip_forward
 * processes them), a TTL that expires here (time exceeded), a datagram too
 * big for the next hop (fragmentation needed, or fragmented), no route
 * (unreachable), forwarding off, and a destination that is local, broadcast
 * or multicast. A GSO packet is held to the next hop's MTU segment by
 * segment (gso_segment_len), as ip_forward holds it. Like the forward direction's
 * redirect, this skips the stack's netfilter forward and postrouting hooks,
 * its XFRM forward policy and its reverse-path filter (the daemon's
 * fast_path_forwarding = false leaves all of it to the stack). The slow paths
 * count their reason (slow_ttl, slow_too_big, slow_fwd_disabled,
 * slow_no_route) besides decap. */
static __always_inline int forward(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct bpf_fib_lookup fib = {};
	__u16 old_word;
	long rc;

	if ((void *)(ip + 1) > data_end || ip->ihl != 5)
		return event(MIP4_EV_DECAP, TC_ACT_OK);
	if (ip->ttl <= 1)
		return to_stack(MIP4_EV_SLOW_TTL);
	fib.family = AF_INET;
	fib.tos = ip->tos;
	fib.l4_protocol = ip->protocol;
	fib.tot_len = skb->gso_size ? gso_segment_len(skb, ip, data_end) : bpf_ntohs(ip->tot_len);
	fib.ipv4_src = ip->saddr;
	fib.ipv4_dst = ip->daddr;
	fib.ifindex = skb->ingress_ifindex ? skb->ingress_ifindex : skb->ifindex;
	rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED)
		return to_stack(MIP4_EV_SLOW_TOO_BIG);
	if (rc == BPF_FIB_LKUP_RET_FWD_DISABLED)
		return to_stack(MIP4_EV_SLOW_FWD_DISABLED);
	if (rc == BPF_FIB_LKUP_RET_NOT_FWDED) /* local, broadcast, multicast, no route */
		return event(MIP4_EV_DECAP, TC_ACT_OK);
	if ((rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH) || !fib.ifindex)
		return to_stack(MIP4_EV_SLOW_NO_ROUTE); /* blackhole, unreachable, prohibit, ... */
	/* (bpf_fib_lookup leaves the packet's pointers valid) */
	old_word = *(__u16 *)&ip->ttl;
	ip->ttl -= 1;
	ip->check = csum_replace2(ip->check, old_word, *(__u16 *)&ip->ttl);
	return event(MIP4_EV_DECAP_FORWARD, to_next_hop(eth, &fib, rc));
}

/* The decapsulated datagram (after the Ethernet header) goes to a visitor's
 * hardware address when mip4_visitors names its destination (redirected out
 * of the visitor's interface as it is, as the user-space plane delivers it),
 * else, from a MIP4_PF_FORWARD peer, is forwarded (forward()), else goes to
 * the stack. */
static __always_inline int deliver(struct __sk_buff *skb, __u32 pflags)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct mip4_visitor *v;
	__be32 dst;

	if ((void *)(ip + 1) > data_end)
		return event(MIP4_EV_DECAP, TC_ACT_OK);
	dst = ip->daddr;
	account(dst, 1, bpf_ntohs(ip->tot_len));
	v = bpf_map_lookup_elem(&mip4_visitors, &dst);
	if (!v) {
		if (pflags & MIP4_PF_FORWARD)
			return forward(skb);
		return event(MIP4_EV_DECAP, TC_ACT_OK);
	}
	__builtin_memcpy(eth->h_dest, v->mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, v->smac, ETH_ALEN);
	return event(MIP4_EV_DECAP_VISITOR, bpf_redirect(v->ifindex, 0));
}

/* RFC 3024 §4.3: at a reverse tunnel's exit (a home agent) the decapsulated
 * datagram must come from a home address whose binding is this tunnel: its
 * care-of address the outer source, the agent the outer destination. A home
 * address with simultaneous bindings is not in mip4_bindings: the slow path
 * (the user-space plane) decides for it. */
static __always_inline int source_bound(const struct mip4_peer *peer, __be32 inner_src,
					__be32 local, __be32 remote)
{
	struct mip4_tunnel *t;

	if (!(peer->flags & MIP4_PF_BOUND_SRC))
		return 1;
	t = bpf_map_lookup_elem(&mip4_bindings, &inner_src);
	return t && t->remote == remote && t->local == local;
}

/* Mobile node to mobile node through the home agent (RFC 5944 §4.2.3: the
 * home agent tunnels what it forwards to a bound home address): a reverse-
 * tunnelled datagram (IP in IP or GRE, outer header without options, GRE
 * header of glen bytes) from a MIP4_PF_FORWARD peer whose destination is in
 * mip4_bindings with the same encapsulation -- the same header length: GRE
 * with a key when the binding has one, without sequence numbers -- leaves
 * again as the stack's forwarding and mip4_ha_encap would send it, without
 * being decapsulated: the outer header is rewritten in place (RFC 2003
 * §3.1: TOS and DF from the inner header, the Identification as encap()
 * copies it, this agent's TTL, the binding's tunnel source and care-of
 * address, its checksum; the binding's GRE key), the inner TTL - 1 with an
 * incrementally updated checksum, and the route to the care-of address
 * looked up first. Rewriting in place needs no bpf_skb_adjust_room: a
 * packet the kernel has already marked as encapsulated (every tunnelled
 * packet that crossed a veth from a BPF or kernel tunnel) could not be
 * encapsulated again by it (-EALREADY), and a GSO packet keeps the GSO type
 * of its tunnel. Returns -1, with the packet untouched, for anything else:
 * the caller decapsulates as before, and forward() or the stack takes it
 * (another encapsulation, minimal encapsulation, options, a TTL that
 * expires here, a visitor's address, no route or too big for it, a source
 * that is the care-of address (RFC 2003 §3.2)). */
static __always_inline int hairpin(struct __sk_buff *skb, __u8 proto, __u32 glen, __be32 remote)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *o = data + sizeof(*eth);
	struct bpf_fib_lookup fib = {};
	struct mip4_tunnel *t;
	struct iphdr *in;
	__u16 old_word, inner_len;
	__u32 tot, seg;
	__be16 *g;
	__be32 dst;
	long rc = 0;

	if ((void *)(o + 1) > data_end || o->ihl != 5)
		return -1;
	g = (__be16 *)(o + 1);
	glen &= 0xc;
	in = (void *)(o + 1) + glen;
	if ((void *)(in + 1) > data_end || in->ihl != 5 || in->ttl <= 1)
		return -1;
	dst = in->daddr;
	if (bpf_map_lookup_elem(&mip4_visitors, &dst))
		return -1;
	t = bpf_map_lookup_elem(&mip4_bindings, &dst);
	if (!t || in->saddr == t->remote)
		return -1;
	if (proto == IPPROTO_IPIP) {
		if (t->encap != MIP4_ENCAP_IPIP || glen)
			return -1;
	} else {
		__u16 want = (t->flags & MIP4_TF_GRE_KEY) ? GRE_FLAG_K : 0;

		if (t->encap != MIP4_ENCAP_GRE || (void *)(g + 4) > data_end ||
		    bpf_ntohs(g[0]) != want || glen != (want ? 8 : 4))
			return -1;
	}
	/* as one packet, or (GSO: gso_size stays) each segment with this header */
	tot = bpf_ntohs(o->tot_len);
	if (skb->gso_size) {
		seg = gso_segment_len(skb, in, data_end);
		tot = seg ? sizeof(*o) + glen + seg : 0;
	}
	inner_len = bpf_ntohs(in->tot_len);
	if (route_to_exit(skb, t, in->tos, proto, tot, &fib, &rc))
		return -1;
	/* (bpf_fib_lookup leaves the packet's pointers valid) */
	old_word = *(__u16 *)&in->ttl;
	in->ttl -= 1;
	in->check = csum_replace2(in->check, old_word, *(__u16 *)&in->ttl);
	o->tos = in->tos;
	o->id = in->id;
	o->frag_off = in->frag_off & bpf_htons(IP_DF);
	o->ttl = t->ttl ? t->ttl : DEFAULT_TTL;
	o->saddr = t->local;
	o->daddr = t->remote;
	if (proto == IPPROTO_GRE && (t->flags & MIP4_TF_GRE_KEY))
		*(__be32 *)(g + 2) = bpf_htonl(t->key);
	o->check = 0;
	o->check = ip_csum20(o);

	count(remote, MIP4_DIR_DECAP, inner_len);
	account(dst, 1, inner_len);
	count(dst, MIP4_DIR_HA, inner_len);
	event(MIP4_EV_DECAP_FORWARD, 0);
	return event(MIP4_EV_ENCAP, to_next_hop(eth, &fib, rc));
}

/* Strip the tunnel header of ip (protocol 4/47/55, from the registered peer
 * pk.remote to pk.local). */
static __always_inline int decap(struct __sk_buff *skb, struct iphdr *ip,
				 const struct mip4_peer *peer, __be32 remote)
{
	void *data_end;
	__u32 hlen, strip, inner_len;
	__u8 *l4;

	if (bpf_ntohs(ip->frag_off) & (IP_MF | IP_OFFMASK)) /* the stack reassembles */
		return event(MIP4_EV_DECAP_BAD, TC_ACT_OK);
	hlen = ip->ihl * 4;
	if (hlen < 20 || hlen > 60)
		return event(MIP4_EV_DECAP_BAD, TC_ACT_OK);
	data_end = (void *)(long)skb->data_end;
	l4 = (__u8 *)ip + hlen;

	if (ip->protocol == IPPROTO_IPIP) {
		/* RFC 2003 §3.1: an inner TTL of 0 MUST be discarded: left to the stack */
		if ((void *)(l4 + 20) > data_end || (l4[0] >> 4) != 4 || l4[8] == 0)
			return event(MIP4_EV_DECAP_BAD, TC_ACT_OK);
		if (!source_bound(peer, *(__be32 *)(l4 + 12), ip->daddr, remote))
			return event(MIP4_EV_DECAP_NOT_BOUND, TC_ACT_OK);
		strip = hlen;
	} else if (ip->protocol == IPPROTO_GRE) {
		__u16 gflags;
		__u32 glen = 4;

		if ((void *)(l4 + 16) > data_end)
			return event(MIP4_EV_DECAP_BAD, TC_ACT_OK);
		gflags = bpf_ntohs(*(__be16 *)l4);
		/* RFC 2784 §2.3: version 0, bits 1 and 4-5 zero; the checksum
		 * (C) is left to the stack, which verifies it. */
		if ((gflags & (GRE_VERSION | GRE_MUST_BE_ZERO | GRE_FLAG_C)) ||
		    *(__be16 *)(l4 + 2) != bpf_htons(ETH_P_IP))
			return event(MIP4_EV_DECAP_BAD, TC_ACT_OK);
		if (peer->flags & MIP4_PF_ANY_KEY) {
			/* a foreign agent is not told the key (RFC 3115 §3.3
			 * negotiates it with the home agent): as the
			 * user-space plane, any key or none */
			if (gflags & GRE_FLAG_K)
				glen += 4;
		} else if (gflags & GRE_FLAG_K) {
			if (!(peer->flags & MIP4_PF_GRE_KEY) ||
			    bpf_ntohl(*(__be32 *)(l4 + 4)) != peer->key)
				return event(MIP4_EV_DECAP_KEY, TC_ACT_OK);
			glen += 4;
		} else if (peer->flags & MIP4_PF_GRE_KEY) {
			return event(MIP4_EV_DECAP_KEY, TC_ACT_OK);
		}
		if (gflags & GRE_FLAG_S)
			glen += 4;
		if ((void *)(l4 + glen + 20) > data_end || (l4[glen] >> 4) != 4 ||
		    l4[glen + 8] == 0)
			return event(MIP4_EV_DECAP_BAD, TC_ACT_OK);
		if (!source_bound(peer, *(__be32 *)(l4 + glen + 12), ip->daddr, remote))
			return event(MIP4_EV_DECAP_NOT_BOUND, TC_ACT_OK);
		strip = hlen + glen;
	} else {
		/* RFC 2004 §3: rebuild the original header in front of the
		 * payload, then remove the forwarding header's length. */
		struct iphdr *n;
		__u32 sum, mlen;
		__be32 saddr;
		__u16 tot;
		struct iphdr o;

		if (hlen != 20 || (void *)(l4 + 12) > data_end || ip->ttl == 0)
			return event(MIP4_EV_DECAP_BAD, TC_ACT_OK);
		mlen = (l4[1] & MINIMAL_S) ? 12 : 8;
		sum = (__u32)((__u16 *)l4)[0] + ((__u16 *)l4)[1] + ((__u16 *)l4)[2] +
		      ((__u16 *)l4)[3];
		if (mlen == 12)
			sum += (__u32)((__u16 *)l4)[4] + ((__u16 *)l4)[5];
		if (csum_fold(sum) != 0)
			return event(MIP4_EV_DECAP_BAD, TC_ACT_OK);
		saddr = mlen == 12 ? *(__be32 *)(l4 + 8) : ip->saddr;
		tot = bpf_ntohs(ip->tot_len);
		if (tot < 20 + mlen)
			return event(MIP4_EV_DECAP_BAD, TC_ACT_OK);
		if (!source_bound(peer, saddr, ip->daddr, remote))
			return event(MIP4_EV_DECAP_NOT_BOUND, TC_ACT_OK);
		o = *ip;
		o.protocol = l4[0];
		o.daddr = *(__be32 *)(l4 + 4);
		o.saddr = saddr;
		o.tot_len = bpf_htons(tot - mlen);
		o.check = 0;
		o.check = ip_csum20(&o);
		n = (struct iphdr *)((__u8 *)ip + mlen);
		if ((void *)(n + 1) > data_end)
			return event(MIP4_EV_DECAP_BAD, TC_ACT_OK);
		*n = o;
		count(remote, MIP4_DIR_DECAP, tot - mlen);
		if (bpf_skb_adjust_room(skb, -(__s32)mlen, BPF_ADJ_ROOM_MAC,
					BPF_F_ADJ_ROOM_FIXED_GSO))
			return event(MIP4_EV_ERROR, TC_ACT_SHOT);
		return deliver(skb, peer->flags);
	}
	/* IP in IP or GRE: another bound node's may go on in place */
	if (peer->flags & MIP4_PF_FORWARD) {
		int r = hairpin(skb, ip->protocol, strip - hlen, remote);

		if (r >= 0)
			return r;
	}
	inner_len = bpf_ntohs(ip->tot_len) - strip;
	if (bpf_skb_adjust_room(skb, -(__s32)strip, BPF_ADJ_ROOM_MAC, BPF_F_ADJ_ROOM_FIXED_GSO))
		return event(MIP4_EV_SLOW_ADJUST, TC_ACT_OK);
	count(remote, MIP4_DIR_DECAP, inner_len);
	return deliver(skb, peer->flags);
}

static __always_inline int is_tunnel(const struct iphdr *ip)
{
	return ip->protocol == IPPROTO_IPIP || ip->protocol == IPPROTO_GRE ||
	       ip->protocol == IPPROTO_MINIMAL;
}

SEC("tc")
int mip4_decap(struct __sk_buff *skb)
{
	struct iphdr *ip = ipv4_of(skb);
	struct mip4_peer_key pk;
	struct mip4_peer *peer;

	if (!ip)
		return event(MIP4_EV_NOT_OURS, TC_ACT_OK);
	if (!is_tunnel(ip))
		return event(MIP4_EV_NOT_OURS, TC_ACT_OK);
	pk.local = ip->daddr;
	pk.remote = ip->saddr;
	peer = bpf_map_lookup_elem(&mip4_peers, &pk);
	if (!peer) /* RFC 2003 §3.1 / RFC 5944 §3.8: only from registered peers */
		return event(MIP4_EV_DECAP_UNKNOWN_PEER, TC_ACT_OK);
	return decap(skb, ip, peer, pk.remote);
}

/* An Ethernet/IPv4 ARP packet (RFC 826); the addresses are not aligned. */
struct mip4_arp {
	__be16 htype;
	__be16 ptype;
	__u8 hlen;
	__u8 plen;
	__be16 op;
	__u8 sha[ETH_ALEN];
	__u8 spa[4];
	__u8 tha[ETH_ALEN];
	__u8 tpa[4];
} __attribute__((packed));

/* Proxy ARP (see the header): answer an ARP request for an address in
 * mip4_proxy on the interface it arrived on, as the kernel answers for a proxy
 * neighbour entry; anything else goes on untouched. */
static __always_inline int proxy_arp(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct mip4_arp *arp = data + sizeof(*eth);
	struct mip4_proxy_key k = {};
	struct mip4_proxy *p;
	__be32 sip, tip;

	if ((void *)(arp + 1) > data_end)
		return event(MIP4_EV_NOT_OURS, TC_ACT_OK);
	if (arp->htype != bpf_htons(ARPHRD_ETHER) || arp->ptype != bpf_htons(ETH_P_IP) ||
	    arp->hlen != ETH_ALEN || arp->plen != 4 || arp->op != bpf_htons(ARPOP_REQUEST))
		return event(MIP4_EV_NOT_OURS, TC_ACT_OK);
	/* arp_rcv: not for another host's hardware address, not looped back; a
	 * VLAN-tagged request is for the VLAN's device, not this one */
	if (skb->pkt_type == PACKET_OTHERHOST || skb->pkt_type == PACKET_LOOPBACK ||
	    skb->vlan_present)
		return event(MIP4_EV_NOT_OURS, TC_ACT_OK);
	__builtin_memcpy(&sip, arp->spa, 4);
	__builtin_memcpy(&tip, arp->tpa, 4);
	/* RFC 5227 §2.1.1: a probe (sender 0) is answered by the address's owner
	 * only; a gratuitous request (sender = target) announces, asks nothing */
	if (sip == 0 || sip == tip)
		return event(MIP4_EV_NOT_OURS, TC_ACT_OK);
	k.addr = tip;
	k.ifindex = skb->ingress_ifindex;
	p = bpf_map_lookup_elem(&mip4_proxy, &k);
	if (!p)
		return event(MIP4_EV_NOT_OURS, TC_ACT_OK);
	/* RFC 826: swap sender and target, ours as the sender; to the requester's
	 * hardware address (arp_send_dst: the request's sha, as the kernel) */
	__builtin_memcpy(eth->h_dest, arp->sha, ETH_ALEN);
	__builtin_memcpy(eth->h_source, p->mac, ETH_ALEN);
	__builtin_memcpy(arp->tha, arp->sha, ETH_ALEN);
	__builtin_memcpy(arp->sha, p->mac, ETH_ALEN);
	__builtin_memcpy(arp->tpa, &sip, 4);
	__builtin_memcpy(arp->spa, &tip, 4);
	arp->op = bpf_htons(ARPOP_REPLY);
	return event(MIP4_EV_PROXY_ARP, bpf_redirect(k.ifindex, 0));
}

/* ---- registration relay (foreign agent, issue 13; see the header) ---------- */

#define MIP_PORT 434	/* RFC 5944 §3.1 */
#define MIP4_EXT_MN_HA 32 /* Mobile-Home Authentication extension, RFC 5944 §3.5.2 */
#define MIP4_AUTH_LEN 20  /* its Length: SPI (4) and a 16-byte authenticator */
/* the usual layouts: the fixed part and one MN-HA extension (2 + 20 bytes) */
#define RRQ_LEN (24 + 2 + MIP4_AUTH_LEN) /* RFC 5944 §3.3 */
#define RRP_LEN (20 + 2 + MIP4_AUTH_LEN) /* RFC 5944 §3.4 */

/* RFC 1624 eqn. 3 for a 32-bit field, to add to ~HC: ~m + m', word by word
 * (as loaded: the one's complement sum does not depend on the byte order). */
static __always_inline __u32 csum_diff4(__be32 old, __be32 new)
{
	return (__u32)(__u16)~old + (__u16)~(old >> 16) + (new & 0xffff) + (new >> 16);
}

static __always_inline __u32 csum_diff2(__be16 old, __be16 new)
{
	return (__u32)(__u16)~old + new;
}

/* The UDP checksum after changes whose csum_diff*() sum is diff (RFC 1624
 * eqn. 3): no checksum (0, RFC 768) stays none; a result of 0 is sent as all
 * ones (RFC 768). */
static __always_inline __u16 udp_csum_replace(__u16 check, __u32 diff)
{
	__u16 c;

	if (!check)
		return 0;
	c = csum_fold((__u16)~check + diff);
	return c ? c : 0xffff;
}

static __always_inline int mac_eq(const __u8 *a, const __u8 *b)
{
	return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3] && a[4] == b[4] &&
	       a[5] == b[5];
}

/* The datagram after the Ethernet header is a plain IPv4/UDP datagram of len
 * bytes of payload, as the stack would take it for this host: a valid header
 * checksum (ip_rcv drops the others), no options, not a fragment, the IP and
 * UDP lengths those of the usual layout, not a frame for another host's
 * hardware address (ip_rcv drops it) nor VLAN-tagged (for the VLAN's device). */
static __always_inline int plain_udp(const struct __sk_buff *skb, const struct iphdr *ip,
				     const struct udphdr *udp, __u32 len)
{
	return ip->ihl == 5 && !(bpf_ntohs(ip->frag_off) & (IP_MF | IP_OFFMASK)) &&
	       bpf_ntohs(ip->tot_len) == sizeof(*ip) + sizeof(*udp) + len &&
	       bpf_ntohs(udp->len) == sizeof(*udp) + len && skb->pkt_type != PACKET_OTHERHOST &&
	       !skb->vlan_present && ip_csum20(ip) == 0;
}

/* The record of a relayed datagram, from its headers as they came in; the
 * caller copies the payload (a constant length). */
static __always_inline void relayed_headers(struct mip4_relayed *rec, const struct __sk_buff *skb,
					    const struct ethhdr *eth, const struct iphdr *ip,
					    const struct udphdr *udp, __u8 kind, __u16 len)
{
	rec->ifindex = skb->ingress_ifindex;
	rec->kind = kind;
	rec->ttl = ip->ttl;
	rec->len = len;
	rec->saddr = ip->saddr;
	rec->daddr = ip->daddr;
	rec->sport = udp->source;
	rec->dport = udp->dest;
	__builtin_memcpy(rec->mac, eth->h_source, ETH_ALEN);
	rec->pad[0] = 0;
	rec->pad[1] = 0;
}

/* A visitor's renewal (UDP to port 434, type 1) that repeats the request in
 * its mip4_relay entry, from the same visitor: relayed to its home agent as
 * the daemon relays it (RFC 5944 §3.7.2.2), the datagram copied into
 * mip4_relayed first. Returns -1, the packet untouched, for anything else. */
static __always_inline int relay_request(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct udphdr *udp = (void *)(ip + 1);
	__u8 *p = (void *)(udp + 1);
	struct bpf_fib_lookup fib = {};
	struct mip4_relayed *rec;
	struct mip4_relay *r;
	__be32 home, ha, old_src, old_dst;
	__be16 old_port;
	__u32 diff;
	long rc, verdict;

	if ((void *)(p + RRQ_LEN) > data_end || !plain_udp(skb, ip, udp, RRQ_LEN))
		return -1;
	home = *(__be32 *)(p + 4);
	r = bpf_map_lookup_elem(&mip4_relay, &home);
	if (!r)
		return -1;
	/* the visitor (where, from which hardware and IP address and port, to
	 * the agent's address it registered through), the same request (type,
	 * flags, lifetime, home address, home agent, care-of address: nothing to
	 * check again), then MN-HA (RFC 5944 §3.5.2) and, for a reverse tunnel,
	 * IP TTL 255 (RFC 3024 §4.2.1: else the daemon denies it, 76) */
	if (skb->ingress_ifindex != r->ifindex || !mac_eq(eth->h_source, r->node_mac) ||
	    ip->saddr != r->node || ip->daddr != r->agent || udp->source != r->node_port)
		return -1;
	if (*(__u32 *)p != *(__u32 *)r->request || *(__u32 *)(p + 4) != *(__u32 *)(r->request + 4) ||
	    *(__u32 *)(p + 8) != *(__u32 *)(r->request + 8) ||
	    *(__u32 *)(p + 12) != *(__u32 *)(r->request + 12))
		return -1;
	if (p[24] != MIP4_EXT_MN_HA || p[25] != MIP4_AUTH_LEN)
		return -1;
	if ((r->flags & MIP4_RF_TTL255) && ip->ttl != 255)
		return -1;
	/* the route to the home agent from the agent's address, before anything
	 * is touched (as the agent's own datagram would take it) */
	ha = *(__be32 *)(r->request + 8);
	fib.family = AF_INET;
	fib.l4_protocol = IPPROTO_UDP;
	fib.sport = r->relay_port;
	fib.dport = bpf_htons(MIP_PORT);
	fib.tot_len = bpf_ntohs(ip->tot_len);
	fib.ipv4_src = r->relay_src;
	fib.ipv4_dst = ha;
	fib.ifindex = skb->ingress_ifindex;
	rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	if ((rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH) || !fib.ifindex)
		return -1;
	/* the engine must see every relayed datagram: no room, no relay */
	rec = bpf_ringbuf_reserve(&mip4_relayed, sizeof(*rec), 0);
	if (!rec)
		return event(MIP4_EV_RELAY_RING_FULL, TC_ACT_OK);
	/* (bpf_fib_lookup and bpf_ringbuf_reserve leave the packet's pointers valid) */
	relayed_headers(rec, skb, eth, ip, udp, MIP4_RELAYED_REQUEST, RRQ_LEN);
	__builtin_memcpy(rec->payload, p, RRQ_LEN);
	__builtin_memset(rec->payload + RRQ_LEN, 0, sizeof(rec->payload) - RRQ_LEN);

	/* RFC 5944 §3.7.2.2: from the agent to the home agent's port 434, the
	 * payload as it came; the Identification and DF as they came */
	old_src = ip->saddr;
	old_dst = ip->daddr;
	old_port = udp->source;
	ip->tos = 0;
	ip->ttl = DEFAULT_TTL;
	ip->saddr = r->relay_src;
	ip->daddr = ha;
	ip->check = 0;
	ip->check = ip_csum20(ip);
	udp->source = r->relay_port;
	diff = csum_diff4(old_src, ip->saddr) + csum_diff4(old_dst, ha) +
	       csum_diff2(old_port, udp->source);
	udp->check = udp_csum_replace(udp->check, diff);

	verdict = to_next_hop(eth, &fib, rc);
	if (verdict != TC_ACT_REDIRECT) {
		bpf_ringbuf_discard(rec, 0);
		return event(MIP4_EV_ERROR, TC_ACT_SHOT);
	}
	/* RFC 5944 §3.7.1: pending, until the reply. (A visitor's datagrams come
	 * in on one CPU while they hash to one receive queue; were two of its
	 * requests relayed at once on two CPUs, pending would hold either's low
	 * word, and a reply to the other would go to the daemon.) */
	__builtin_memcpy(r->pending, p + 16, sizeof(r->pending));
	r->pending_set = 1;
	bpf_ringbuf_submit(rec, relayed_wakeup());
	return event(MIP4_EV_RELAY_REQUEST, verdict);
}

/* A home agent's reply (UDP from port 434, type 3) accepting the request
 * relayed last for a visitor in mip4_relay: relayed to the visitor as the
 * daemon relays it (RFC 5944 §3.7.3.2), the datagram copied into
 * mip4_relayed first. Returns -1, the packet untouched, for anything else. */
static __always_inline int relay_reply(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct udphdr *udp = (void *)(ip + 1);
	__u8 *p = (void *)(udp + 1);
	struct mip4_relayed *rec;
	struct mip4_relay *r;
	__be32 home, old_src, old_dst;
	__be16 old_port;
	__u32 diff;

	/* the usual layout: no FA-HA (the daemon verifies it, RFC 5944 §3.7.3.1) */
	if ((void *)(p + RRP_LEN) > data_end || !plain_udp(skb, ip, udp, RRP_LEN))
		return -1;
	/* accepted (codes 0, 1), not a deregistration's acceptance (lifetime 0) */
	if (p[1] > 1 || (p[2] | p[3]) == 0 || p[20] != MIP4_EXT_MN_HA || p[21] != MIP4_AUTH_LEN)
		return -1;
	home = *(__be32 *)(p + 4);
	r = bpf_map_lookup_elem(&mip4_relay, &home);
	if (!r)
		return -1;
	/* to the relayed request's source address and port, answering it: the
	 * low-order 32 bits of the Identification (RFC 5944 §3.7.3.1), the home
	 * agent it was relayed to */
	if (ip->daddr != r->relay_src || udp->dest != r->relay_port || r->pending_set != 1 ||
	    *(__u32 *)(p + 16) != *(__u32 *)(r->pending + 4) ||
	    *(__u32 *)(p + 8) != *(__u32 *)(r->request + 8))
		return -1;
	rec = bpf_ringbuf_reserve(&mip4_relayed, sizeof(*rec), 0);
	if (!rec)
		return event(MIP4_EV_RELAY_RING_FULL, TC_ACT_OK);
	relayed_headers(rec, skb, eth, ip, udp, MIP4_RELAYED_REPLY, RRP_LEN);
	__builtin_memcpy(rec->payload, p, RRP_LEN);
	__builtin_memset(rec->payload + RRP_LEN, 0, sizeof(rec->payload) - RRP_LEN);

	/* RFC 5944 §3.7.3.2: from the agent's address the visitor sent to and
	 * port 434 to the visitor's address and port, at its hardware address,
	 * with the header the agent's own link-layer sender writes (ID 0, no
	 * flags, TOS 0, TTL 64: mip4.io.rawsock) */
	old_src = ip->saddr;
	old_dst = ip->daddr;
	old_port = udp->dest;
	ip->tos = 0;
	ip->id = 0;
	ip->frag_off = 0;
	ip->ttl = DEFAULT_TTL;
	ip->saddr = r->agent;
	ip->daddr = r->node;
	ip->check = 0;
	ip->check = ip_csum20(ip);
	udp->dest = r->node_port;
	diff = csum_diff4(old_src, ip->saddr) + csum_diff4(old_dst, ip->daddr) +
	       csum_diff2(old_port, udp->dest);
	udp->check = udp_csum_replace(udp->check, diff);
	__builtin_memcpy(eth->h_dest, r->node_mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, r->own_mac, ETH_ALEN);

	r->pending_set = 0;
	bpf_ringbuf_submit(rec, relayed_wakeup());
	return event(MIP4_EV_RELAY_REPLY, bpf_redirect(r->ifindex, 0));
}

/* The registration relay for a UDP datagram: a verdict, or -1 (untouched:
 * the caller goes on). Anything not to or from port 434 costs one test. */
static __always_inline int relay(struct __sk_buff *skb, const struct iphdr *ip)
{
	void *data_end = (void *)(long)skb->data_end;
	struct udphdr *udp = (void *)(ip + 1);
	__u8 *p = (void *)(udp + 1);

	if ((void *)(p + 1) > data_end)
		return -1;
	if (udp->dest == bpf_htons(MIP_PORT) && p[0] == 1)
		return relay_request(skb);
	if (udp->source == bpf_htons(MIP_PORT) && p[0] == 3)
		return relay_reply(skb);
	return -1;
}

SEC("tc")
int mip4_agent(struct __sk_buff *skb)
{
	struct iphdr *ip = ipv4_of(skb);
	struct mip4_peer_key pk;
	struct mip4_peer *peer;
	struct mip4_tunnel *t;
	__be32 addr;

	if (!ip) {
		struct ethhdr *eth = (void *)(long)skb->data;

		if ((void *)(eth + 1) <= (void *)(long)skb->data_end &&
		    eth->h_proto == bpf_htons(ETH_P_ARP))
			return proxy_arp(skb);
		return event(MIP4_EV_NOT_OURS, TC_ACT_OK);
	}
	if (ip->protocol == IPPROTO_UDP) {
		int r = relay(skb, ip);

		if (r >= 0)
			return r;
	}
	if (is_tunnel(ip)) {
		pk.local = ip->daddr;
		pk.remote = ip->saddr;
		peer = bpf_map_lookup_elem(&mip4_peers, &pk);
		if (peer)
			return decap(skb, ip, peer, pk.remote);
		/* RFC 2003 §3.1 / RFC 5944 §3.8: never decapsulated from an
		 * unregistered peer; it may still be for a bound address */
		event(MIP4_EV_DECAP_UNKNOWN_PEER, 0);
	}
	addr = ip->daddr;
	t = bpf_map_lookup_elem(&mip4_bindings, &addr);
	if (t)
		return encap(skb, t, addr, MIP4_DIR_HA, 1, 0);
	addr = ip->saddr;
	t = bpf_map_lookup_elem(&mip4_reverse, &addr);
	if (t) {
		if (not_for_the_tunnel(ip, t))
			return event(MIP4_EV_LOCAL, TC_ACT_OK);
		return encap(skb, t, addr, MIP4_DIR_REVERSE, 1, 0);
	}
	return event(MIP4_EV_NOT_OURS, TC_ACT_OK);
}

char _license[] SEC("license") = "GPL";
