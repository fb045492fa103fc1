/*
 * mip4 registration load generator (``mip4 bench registrations``).
 *
 * Sends Registration Requests (RFC 5944 §3.3) signed with the Mobile-Home Authentication
 * extension (type 32, HMAC-MD5 over the message through the SPI, §3.5.1/§3.5.2) for many
 * simulated mobile nodes, many requests outstanding, batched with sendmmsg/recvmmsg, and
 * counts the Registration Replies by code.
 *
 * Node i (0-based, absolute) has home address home_base + i, SPI spi_base + i and a 16-byte
 * key from the seed: mix(seed ^ 2i) || mix(seed ^ (2i+1)), big endian, where mix is
 * splitmix64's output function (the Python side, ``keys.py``, computes the same).
 * Identifications are timestamps (RFC 5944 §5.7): NTP seconds in the high word, the NTP
 * fraction in the low word, bumped by one when the clock has not moved, so every node's
 * values increase strictly, across runs too.
 *
 * Modes: first/renew (lifetime --lifetime), dereg (lifetime 0), echo (the same bytes to a
 * UDP echo server; a reply is any datagram that comes back with the home address and low
 * identification word of an outstanding request). first and dereg send each node once
 * (again after a timeout); renew and echo cycle over the nodes. --flags sets the flags
 * byte (default 0x20, D: co-located care-of address; 0 through a foreign agent). Every loop is bounded by
 * --duration seconds and --max requests. --dump N prints N requests in hex and exits.
 *
 * forge: forged renewals for the same nodes (same home addresses, same SPIs, timestamp
 * Identifications) whose authenticators are computed with keys from another seed
 * (seed ^ FORGE_XOR), so every one fails the home agent's check (code 131, RFC 5944 §3.4).
 * Open loop: batches of 64 with sendmmsg as fast as they go (or --rate datagrams/s), no
 * window, no timeouts; replies are drained and counted by code (any Registration Reply for
 * one of the nodes). "rate" is then the offered rate, datagrams sent per second.
 *
 * Waiting for replies, the generator never sleeps on its socket: when a drain finds the
 * queue empty it naps NAP_US on a timer (PR_SET_TIMERSLACK 1 ns, so the nap is NAP_US) and
 * drains again. A receiver asleep in poll() is woken by each datagram's sender, and on veth
 * the sender's CPU runs the whole delivery in its softirq: every reply that found the
 * generator asleep cost the server being measured a wake-up (try_to_wake_up and an IPI),
 * ~22 us of kernel time per reply for the asyncio echo server on this VM against 4.9 us when
 * the generator was not asleep, which made the echo baseline bistable (36-40k/s or
 * 122-137k/s from run to run, benchmarks/README.md). The forwarding sink (bench_forwarding's
 * blaster.c) does the same for the same reason. The window holds NAP_US of work for the
 * server (128 requests: ~1 ms at 130k/s), so a nap never starves it.
 *
 * Many sources (--sources N --source-base IP, issue 13): node j (0-based in this run) sends
 * from source address source_base + (j % N), and that address is its co-located care-of
 * address in the request; without --source-base (the default) every request leaves from the
 * socket's address and carries --coa, as before. The generator's namespace must make the
 * whole range local (``ip route add local RANGE dev lo``: AnyIP); the socket is bound to
 * 0.0.0.0 (no --bind) and each message of a sendmmsg batch carries an IP_PKTINFO control
 * message whose ipi_spec_dst is its node's source. Replies are read with IP_PKTINFO too:
 * one whose destination address is not its node's source (RFC 5944 §3.8.3.1: the home agent
 * replies to the request's source address and port; the port is this socket's) is counted
 * in "wrong_dst" and not as a reply. Matching per node is unchanged (home address and low
 * identification word).
 *
 * Output: one JSON object on stdout. "gap_max_ms" (closed-loop modes): the longest time
 * with requests outstanding and no reply arriving -- an upper bound of the server's longest
 * pause (the generator's own delays are in it too). With --run-delay, also
 * "gap_max_waiting_ms": how much of that longest silence the generator itself was runnable
 * and waiting for a CPU (its run delay, the second field of /proc/thread-self/schedstat,
 * read after each batch of replies; 0 and absent where the kernel has no schedstat): the
 * part of the silence that is the generator's, not the server's.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------------------------- */
/* MD5 (RFC 1321), compact                                                             */
/* ---------------------------------------------------------------------------------- */

typedef struct {
    uint32_t h[4];
} md5_state;

static const uint32_t K[64] = {
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613,
    0xfd469501, 0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193,
    0xa679438e, 0x49b40821, 0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d,
    0x02441453, 0xd8a1e681, 0xe7d3fbc8, 0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed,
    0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a, 0xfffa3942, 0x8771f681, 0x6d9d6122,
    0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70, 0x289b7ec6, 0xeaa127fa,
    0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665, 0xf4292244,
    0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb,
    0xeb86d391};
static const uint8_t R[64] = {7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
                              5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20,
                              4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
                              6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21};

static void md5_init(md5_state *s) {
    s->h[0] = 0x67452301;
    s->h[1] = 0xefcdab89;
    s->h[2] = 0x98badcfe;
    s->h[3] = 0x10325476;
}

static void md5_block(md5_state *s, const uint8_t *p) {
    uint32_t w[16], a = s->h[0], b = s->h[1], c = s->h[2], d = s->h[3];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 |
               (uint32_t)p[4 * i + 3] << 24;
    for (int i = 0; i < 64; i++) {
        uint32_t f;
        int g;
        if (i < 16) {
            f = (b & c) | (~b & d);
            g = i;
        } else if (i < 32) {
            f = (d & b) | (~d & c);
            g = (5 * i + 1) & 15;
        } else if (i < 48) {
            f = b ^ c ^ d;
            g = (3 * i + 5) & 15;
        } else {
            f = c ^ (b | ~d);
            g = (7 * i) & 15;
        }
        uint32_t t = d;
        d = c;
        c = b;
        uint32_t x = a + f + K[i] + w[g];
        b = b + ((x << R[i]) | (x >> (32 - R[i])));
        a = t;
    }
    s->h[0] += a;
    s->h[1] += b;
    s->h[2] += c;
    s->h[3] += d;
}

/* MD5 of one 64-byte prefix already absorbed in s, then len more bytes (len < 56+64). */
static void md5_finish(const md5_state *s0, const uint8_t *data, size_t len, uint8_t out[16]) {
    md5_state s = *s0;
    uint8_t buf[128];
    size_t total = 64 + len, n = len <= 55 ? 64 : 128;
    memset(buf, 0, sizeof buf);
    memcpy(buf, data, len);
    buf[len] = 0x80;
    uint64_t bits = (uint64_t)total * 8;
    for (int i = 0; i < 8; i++) buf[n - 8 + i] = (uint8_t)(bits >> (8 * i));
    md5_block(&s, buf);
    if (n == 128) md5_block(&s, buf + 64);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) out[4 * i + j] = (uint8_t)(s.h[i] >> (8 * j));
}

/* HMAC-MD5 (RFC 2104) with the inner and outer pad blocks absorbed once per key. */
typedef struct {
    md5_state inner, outer;
} hmac_key;

static void hmac_init(hmac_key *k, const uint8_t key[16]) {
    uint8_t ipad[64], opad[64];
    memset(ipad, 0x36, 64);
    memset(opad, 0x5c, 64);
    for (int i = 0; i < 16; i++) {
        ipad[i] ^= key[i];
        opad[i] ^= key[i];
    }
    md5_init(&k->inner);
    md5_block(&k->inner, ipad);
    md5_init(&k->outer);
    md5_block(&k->outer, opad);
}

static void hmac_md5(const hmac_key *k, const uint8_t *data, size_t len, uint8_t out[16]) {
    uint8_t inner[16];
    md5_finish(&k->inner, data, len, inner);
    md5_finish(&k->outer, inner, 16, out);
}

/* ---------------------------------------------------------------------------------- */
/* Nodes                                                                               */
/* ---------------------------------------------------------------------------------- */

static uint64_t mix(uint64_t z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

enum { REQ_LEN = 46, AUTH_COVERED = 30, BATCH = 64 };

/* forge mode's keys: those of seed ^ FORGE_XOR ("forged" in ASCII) */
#define FORGE_XOR 0x666f72676564ULL
/* the nap while waiting for replies (see the header) */
#define NAP_US 100

typedef struct {
    hmac_key key;
    uint32_t spi;
    uint32_t home; /* host order */
    uint32_t low;  /* low identification word of the outstanding request */
    double sent_at;
    uint32_t source; /* host order: the care-of address and source (--sources), else coa */
    uint8_t outstanding;
    uint8_t done;
} node;

static double now_mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t last_id;

/* NTP timestamp (RFC 5905: seconds since 1900, 32-bit fraction), strictly increasing. */
static uint64_t next_identification(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t secs = (uint64_t)ts.tv_sec + 2208988800ULL;
    uint64_t frac = ((uint64_t)ts.tv_nsec << 32) / 1000000000ULL;
    uint64_t id = (secs << 32) | (frac & 0xffffffffULL);
    if (id <= last_id) id = last_id + 1;
    last_id = id;
    return id;
}

static void put32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint32_t ha_addr, coa_addr;
static int lifetime_s = 1800;
static uint8_t flags = 0x20; /* D: co-located care-of address (RFC 5944 §3.3) */

/* RFC 5944 §3.3 Registration Request + §3.5.2 Mobile-Home Authentication Extension. */
static void build_request(node *n, uint8_t *p, int lifetime) {
    uint64_t id = next_identification();
    p[0] = 1;
    p[1] = flags;
    p[2] = (uint8_t)(lifetime >> 8);
    p[3] = (uint8_t)lifetime;
    put32(p + 4, n->home);
    put32(p + 8, ha_addr);
    put32(p + 12, n->source);
    put32(p + 16, (uint32_t)(id >> 32));
    put32(p + 20, (uint32_t)id);
    p[24] = 32; /* Mobile-Home Authentication */
    p[25] = 20; /* SPI + 16-byte authenticator */
    put32(p + 26, n->spi);
    hmac_md5(&n->key, p, AUTH_COVERED, p + AUTH_COVERED);
    n->low = (uint32_t)id;
}

/* Many sources: a message leaves from src (its IP_PKTINFO's ipi_spec_dst). */
static void set_source(struct in_pktinfo *pi, uint32_t src) {
    memset(pi, 0, sizeof *pi);
    pi->ipi_spec_dst.s_addr = htonl(src);
}

/* The destination address of a received message (IP_PKTINFO's ipi_addr), 0 if none. */
static uint32_t reply_dst(struct mmsghdr *m) {
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&m->msg_hdr); cm; cm = CMSG_NXTHDR(&m->msg_hdr, cm))
        if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO)
            return ntohl(((struct in_pktinfo *)CMSG_DATA(cm))->ipi_addr.s_addr);
    return 0;
}

static void usage(void) {
    fprintf(stderr,
            "usage: loadgen --server IP --port N --home-base IP --ha IP --coa IP --nodes N\n"
            "  [--first I] [--seed S] [--spi-base N] [--mode first|renew|dereg|echo|forge]\n"
            "  [--duration S] [--max N] [--window N] [--lifetime S] [--timeout S]\n"
            "  [--bind IP] [--flags N] [--dump N] [--rate N] [--sources N --source-base IP]\n"
            "  [--run-delay]\n");
    exit(2);
}

static uint32_t parse_ip(const char *s) {
    struct in_addr a;
    if (inet_pton(AF_INET, s, &a) != 1) {
        fprintf(stderr, "loadgen: bad address %s\n", s);
        exit(2);
    }
    return ntohl(a.s_addr);
}

/* the calling thread's run delay in seconds (time runnable, waiting for a CPU), or -1 */
static double run_delay(int fd) {
    char b[128];
    unsigned long long on_cpu, waiting;
    ssize_t k = fd < 0 ? -1 : pread(fd, b, sizeof b - 1, 0);
    if (k <= 0) return -1;
    b[k] = 0;
    if (sscanf(b, "%llu %llu", &on_cpu, &waiting) != 2) return -1;
    return waiting / 1e9;
}

static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

int main(int argc, char **argv) {
    const char *server = NULL, *bind_ip = NULL, *mode = "renew";
    uint32_t home_base = 0, spi_base = 0x10000, port = 434;
    uint64_t seed = 1;
    long nodes_n = 0, first = 0, max_req = 1000000, window = 128, dump = -1;
    double duration = 2.0, timeout = 1.0, rate_limit = 0;
    long sources_n = 1;
    uint32_t source_base = 0;
    int want_delay = 0;
    static struct option opts[] = {
        {"server", 1, 0, 's'}, {"port", 1, 0, 'p'},     {"home-base", 1, 0, 'h'},
        {"ha", 1, 0, 'a'},     {"coa", 1, 0, 'c'},      {"nodes", 1, 0, 'n'},
        {"first", 1, 0, 'f'},  {"seed", 1, 0, 'S'},     {"spi-base", 1, 0, 'P'},
        {"mode", 1, 0, 'm'},   {"duration", 1, 0, 'd'}, {"max", 1, 0, 'M'},
        {"window", 1, 0, 'w'}, {"lifetime", 1, 0, 'l'}, {"timeout", 1, 0, 't'},
        {"bind", 1, 0, 'b'},   {"dump", 1, 0, 'D'},     {"flags", 1, 0, 'F'},
        {"rate", 1, 0, 'r'},   {"sources", 1, 0, 'N'}, {"source-base", 1, 0, 'B'},
        {"run-delay", 0, 0, 'R'}, {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 's': server = optarg; break;
        case 'p': port = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'h': home_base = parse_ip(optarg); break;
        case 'a': ha_addr = parse_ip(optarg); break;
        case 'c': coa_addr = parse_ip(optarg); break;
        case 'n': nodes_n = strtol(optarg, NULL, 10); break;
        case 'f': first = strtol(optarg, NULL, 10); break;
        case 'S': seed = strtoull(optarg, NULL, 10); break;
        case 'P': spi_base = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'm': mode = optarg; break;
        case 'd': duration = strtod(optarg, NULL); break;
        case 'M': max_req = strtol(optarg, NULL, 10); break;
        case 'w': window = strtol(optarg, NULL, 10); break;
        case 'l': lifetime_s = atoi(optarg); break;
        case 't': timeout = strtod(optarg, NULL); break;
        case 'b': bind_ip = optarg; break;
        case 'D': dump = strtol(optarg, NULL, 10); break;
        case 'F': flags = (uint8_t)strtoul(optarg, NULL, 0); break;
        case 'r': rate_limit = strtod(optarg, NULL); break;
        case 'N': sources_n = strtol(optarg, NULL, 10); break;
        case 'B': source_base = parse_ip(optarg); break;
        case 'R': want_delay = 1; break;
        default: usage();
        }
    }
    int m_first = !strcmp(mode, "first"), m_renew = !strcmp(mode, "renew");
    int m_dereg = !strcmp(mode, "dereg"), m_echo = !strcmp(mode, "echo");
    int m_forge = !strcmp(mode, "forge");
    if (nodes_n <= 0 || !home_base || !(m_first || m_renew || m_dereg || m_echo || m_forge))
        usage();
    if (window < 1) window = 1;
    /* many sources: a range of at most 2^16 addresses, inside one /16 of the base's */
    if (sources_n < 1 || sources_n > 65536 || (sources_n > 1 && !source_base) ||
        (source_base && (uint64_t)source_base + (uint64_t)sources_n > 0xffffffffULL))
        usage();
    int many = source_base != 0;
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL); /* a nap of NAP_US, not NAP_US + 50 us */
    if (duration > 600) duration = 600; /* every loop bounded in time */
    int once = m_first || m_dereg;
    int lifetime = m_dereg ? 0 : lifetime_s;

    node *nodes = calloc((size_t)nodes_n, sizeof(node));
    if (!nodes) return 1;
    uint64_t key_seed = m_forge ? seed ^ FORGE_XOR : seed;
    for (long j = 0; j < nodes_n; j++) {
        uint64_t i = (uint64_t)(first + j);
        uint8_t key[16];
        uint64_t k0 = mix(key_seed ^ (2 * i)), k1 = mix(key_seed ^ (2 * i + 1));
        for (int b = 0; b < 8; b++) {
            key[b] = (uint8_t)(k0 >> (56 - 8 * b));
            key[8 + b] = (uint8_t)(k1 >> (56 - 8 * b));
        }
        hmac_init(&nodes[j].key, key);
        nodes[j].spi = spi_base + (uint32_t)i;
        nodes[j].home = home_base + (uint32_t)i;
        nodes[j].source = many ? source_base + (uint32_t)(j % sources_n) : coa_addr;
    }

    if (dump >= 0) {
        uint8_t p[REQ_LEN];
        for (long j = 0; j < dump && j < nodes_n; j++) {
            build_request(&nodes[j], p, lifetime);
            for (int b = 0; b < REQ_LEN; b++) printf("%02x", p[b]);
            printf("\n");
        }
        return 0;
    }
    if (!server) usage();

    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        perror("socket");
        return 1;
    }
    int one = 1;
    if (many && setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one) < 0) {
        perror("IP_PKTINFO");
        return 1;
    }
    int big = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    struct sockaddr_in local = {.sin_family = AF_INET};
    if (bind_ip) local.sin_addr.s_addr = htonl(parse_ip(bind_ip));
    if (bind(fd, (struct sockaddr *)&local, sizeof local) < 0) {
        perror("bind");
        return 1;
    }
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    dst.sin_addr.s_addr = htonl(parse_ip(server));

    static uint8_t sbuf[BATCH][REQ_LEN], rbuf[BATCH][256];
    /* IP_PKTINFO control messages (many sources): one to send each message from its node's
     * source, one per received message for its destination address */
    static union {
        char buf[CMSG_SPACE(sizeof(struct in_pktinfo))];
        struct cmsghdr align;
    } sctl[BATCH], rctl[BATCH];
    static struct in_pktinfo *spi[BATCH];
    memset(sctl, 0, sizeof sctl);
    struct mmsghdr smsg[BATCH], rmsg[BATCH];
    struct iovec siov[BATCH], riov[BATCH];
    memset(smsg, 0, sizeof smsg);
    memset(rmsg, 0, sizeof rmsg);
    for (int b = 0; b < BATCH; b++) {
        siov[b].iov_base = sbuf[b];
        siov[b].iov_len = REQ_LEN;
        smsg[b].msg_hdr.msg_iov = &siov[b];
        smsg[b].msg_hdr.msg_iovlen = 1;
        smsg[b].msg_hdr.msg_name = &dst;
        smsg[b].msg_hdr.msg_namelen = sizeof dst;
        riov[b].iov_base = rbuf[b];
        riov[b].iov_len = sizeof rbuf[b];
        rmsg[b].msg_hdr.msg_iov = &riov[b];
        rmsg[b].msg_hdr.msg_iovlen = 1;
        if (many) {
            smsg[b].msg_hdr.msg_control = sctl[b].buf;
            smsg[b].msg_hdr.msg_controllen = sizeof sctl[b].buf;
            struct cmsghdr *cm = CMSG_FIRSTHDR(&smsg[b].msg_hdr);
            cm->cmsg_level = IPPROTO_IP;
            cm->cmsg_type = IP_PKTINFO;
            cm->cmsg_len = CMSG_LEN(sizeof(struct in_pktinfo));
            spi[b] = (struct in_pktinfo *)CMSG_DATA(cm);
        }
    }

    long sent = 0, replies = 0, accepted = 0, timeouts = 0, stray = 0, send_errors = 0;
    long wrong_dst = 0;
    long codes[256], late_accepted = 0;
    memset(codes, 0, sizeof codes);
    if (m_forge) {
        /* open loop: no window, no outstanding state; bounded by --duration and --max */
        long cursor_f = 0;
        double cpu0f = cpu_seconds(), t0f = now_mono(), endf = t0f + duration;
        while (1) {
            double t = now_mono();
            if (t >= endf || sent >= max_req) break;
            long allowed = BATCH;
            if (rate_limit > 0) allowed = (long)(rate_limit * (t - t0f)) - sent;
            if (allowed > BATCH) allowed = BATCH;
            if (allowed > max_req - sent) allowed = max_req - sent;
            int nb = 0;
            for (; nb < allowed; nb++) {
                build_request(&nodes[cursor_f], sbuf[nb], lifetime);
                if (many) set_source(spi[nb], nodes[cursor_f].source);
                cursor_f = (cursor_f + 1) % nodes_n;
            }
            if (nb > 0) {
                int k = sendmmsg(fd, smsg, (unsigned)nb, 0);
                if (k < 0) k = 0, send_errors++;
                sent += k;
            }
            /* drain the replies (131s), counting them by code */
            if (nb == 0) { /* paced and ahead: a timer nap, never a sleep on the socket */
                struct timespec ts = {0, NAP_US * 1000L};
                nanosleep(&ts, NULL);
            }
            while (1) {
                int r = recvmmsg(fd, rmsg, BATCH, MSG_DONTWAIT, NULL);
                if (r <= 0) break;
                for (int b = 0; b < r; b++) {
                    uint8_t *p = rbuf[b];
                    long j = rmsg[b].msg_len >= 20
                                 ? (long)get32(p + 4) - (long)home_base - first
                                 : -1;
                    if (p[0] != 3 || j < 0 || j >= nodes_n) {
                        stray++;
                        continue;
                    }
                    replies++;
                    codes[p[1]]++;
                    if (p[1] <= 1) accepted++;
                }
                if (r < BATCH) break;
            }
        }
        double elapsed = now_mono() - t0f;
        printf("{\"mode\": \"forge\", \"nodes\": %ld, \"sent\": %ld, \"replies\": %ld, "
               "\"accepted\": %ld, \"stray\": %ld, \"send_errors\": %ld, "
               "\"elapsed_s\": %.6f, \"rate\": %.1f, \"cpu_s\": %.6f, \"codes\": {",
               nodes_n, sent, replies, accepted, stray, send_errors, elapsed,
               elapsed > 0 ? sent / elapsed : 0.0, cpu_seconds() - cpu0f);
        int comma = 0;
        for (int i = 0; i < 256; i++)
            if (codes[i]) {
                printf("%s\"%d\": %ld", comma ? ", " : "", i, codes[i]);
                comma = 1;
            }
        printf("}}\n");
        return 0;
    }
    long outstanding = 0, remaining = nodes_n, cursor = 0;
    double cpu0 = cpu_seconds(), t0 = now_mono(), end = t0 + duration, t_last = t0;
    /* the longest silence of the server while requests were outstanding: from a batch of
     * replies (or a send into an empty window) to the next batch of replies -- an upper
     * bound of the server's longest pause (it includes the generator's own delays, a nap
     * of NAP_US among them) */
    double gap_max = 0, quiet_since = -1;
    double last_check = t0;
    /* --run-delay: the generator's run delay when the silence began, and within the longest */
    int rd_fd = want_delay ? open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC) : -1;
    double quiet_rd = -1, gap_max_waiting = 0;

    while (1) {
        double t = now_mono();
        if (t >= end) break;
        if (once && remaining == 0) break;
        if (!once && sent >= max_req && outstanding == 0) break;
        /* timeouts: at most every 50 ms, a full sweep */
        if (t - last_check > 0.05) {
            last_check = t;
            for (long j = 0; j < nodes_n; j++)
                if (nodes[j].outstanding && t - nodes[j].sent_at > timeout) {
                    nodes[j].outstanding = 0;
                    outstanding--;
                    timeouts++;
                }
        }
        /* fill the window */
        int nb = 0;
        long scanned = 0;
        while (outstanding + nb < window && nb < BATCH && sent + nb < max_req &&
               scanned < nodes_n) {
            node *n = &nodes[cursor];
            cursor = (cursor + 1) % nodes_n;
            scanned++;
            if (n->outstanding || n->done) continue;
            build_request(n, sbuf[nb], lifetime);
            if (many) set_source(spi[nb], n->source);
            n->outstanding = 1;
            n->sent_at = t;
            nb++;
        }
        if (nb > 0) {
            int k = sendmmsg(fd, smsg, (unsigned)nb, 0);
            if (k < 0) k = 0, send_errors++;
            /* those not sent are not outstanding */
            for (int b = k; b < nb; b++) {
                uint32_t home = get32(sbuf[b] + 4);
                node *n = &nodes[home - home_base - (uint32_t)first];
                n->outstanding = 0;
            }
            if (outstanding == 0 && k > 0) {
                quiet_since = t;
                quiet_rd = run_delay(rd_fd);
            }
            sent += k;
            outstanding += k;
        }
        /* never asleep on the socket: an empty queue while waiting for replies means a
         * timer nap (see the header) */
        if (many)
            for (int b = 0; b < BATCH; b++) {
                rmsg[b].msg_hdr.msg_control = rctl[b].buf;
                rmsg[b].msg_hdr.msg_controllen = sizeof rctl[b].buf;
            }
        int r = recvmmsg(fd, rmsg, BATCH, MSG_DONTWAIT, NULL);
        if (r <= 0) {
            if (outstanding >= window || nb == 0) {
                struct timespec ts = {0, NAP_US * 1000L};
                nanosleep(&ts, NULL);
            }
            continue;
        }
        t_last = now_mono();
        double rd = run_delay(rd_fd);
        if (quiet_since >= 0 && t_last - quiet_since > gap_max) {
            gap_max = t_last - quiet_since;
            gap_max_waiting = rd >= 0 && quiet_rd >= 0 ? rd - quiet_rd : 0;
        }
        quiet_since = t_last;
        quiet_rd = rd;
        for (int b = 0; b < r; b++) {
            uint8_t *p = rbuf[b];
            if (rmsg[b].msg_len < 20) {
                stray++;
                continue;
            }
            uint32_t home = get32(p + 4), low = get32(p + (m_echo ? 20 : 16));
            long j = (long)home - (long)home_base - first;
            if (j < 0 || j >= nodes_n || !nodes[j].outstanding || nodes[j].low != low) {
                stray++;
                /* an accepting reply to a request already timed out and sent again */
                if (!m_echo && j >= 0 && j < nodes_n && p[0] == 3 && p[1] <= 1) late_accepted++;
                continue;
            }
            node *n = &nodes[j];
            if (many && reply_dst(&rmsg[b]) != n->source) {
                wrong_dst++; /* RFC 5944 §3.8.3.1: to the request's source address */
                continue;
            }
            n->outstanding = 0;
            outstanding--;
            replies++;
            int code = m_echo ? 0 : p[1];
            if (!m_echo && p[0] != 3) {
                stray++;
                continue;
            }
            codes[code]++;
            if (code <= 1) {
                accepted++;
                if (once) {
                    n->done = 1;
                    remaining--;
                }
            }
        }
        if (outstanding == 0) quiet_since = -1; /* nothing asked: no silence to count */
    }
    double elapsed = t_last - t0;
    if (elapsed <= 0) elapsed = now_mono() - t0;
    double cpu = cpu_seconds() - cpu0;
    printf("{\"mode\": \"%s\", \"nodes\": %ld, \"sent\": %ld, \"replies\": %ld, "
           "\"accepted\": %ld, \"timeouts\": %ld, \"stray\": %ld, \"send_errors\": %ld, "
           "\"outstanding\": %ld, \"late_accepted\": %ld, \"elapsed_s\": %.6f, "
           "\"rate\": %.1f, \"cpu_s\": %.6f, \"gap_max_ms\": %.3f, ",
           mode, nodes_n, sent, replies, accepted, timeouts, stray, send_errors, outstanding,
           late_accepted, elapsed, accepted / elapsed, cpu, gap_max * 1e3);
    if (many) printf("\"sources\": %ld, \"wrong_dst\": %ld, ", sources_n, wrong_dst);
    if (rd_fd >= 0) printf("\"gap_max_waiting_ms\": %.3f, ", gap_max_waiting * 1e3);
    printf("\"codes\": {");
    int comma = 0;
    for (int i = 0; i < 256; i++)
        if (codes[i]) {
            printf("%s\"%d\": %ld", comma ? ", " : "", i, codes[i]);
            comma = 1;
        }
    printf("}}\n");
    return 0;
}
