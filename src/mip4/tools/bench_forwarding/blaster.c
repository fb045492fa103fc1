/* mip4 bench forwarding: UDP blaster and sink (sendmmsg / recvmmsg).
 *
 * Python senders cannot fill a tunnel the kernel forwards at line rate (issue 12): this
 * program is the packet-rate half of the benchmark, compiled from source by the benchmark
 * (build.py) with the system C compiler. It speaks the workers' protocol: JSON lines on
 * stdout ("ready", then "result"), and the sender waits for a line on stdin ("go") before
 * it starts, so start-up is not measured.
 *
 *   mip4-blaster send DST PORT SIZE DURATION COUNT RATE [CPU]
 *       SIZE-byte datagrams to DST:PORT, at most COUNT, for at most DURATION seconds;
 *       RATE > 0 paces to that many per second, 0 sends as fast as sendmmsg goes.
 *   mip4-blaster recv PORT DEADLINE IDLE [CPU]
 *       count datagrams on PORT until IDLE seconds without one after the first, or
 *       DEADLINE seconds in all.
 *
 * CPU >= 0 pins the process to that CPU (sched_setaffinity); -1 or absent: not pinned.
 *
 * The sink never sleeps on its socket: when a drain finds the queue empty it naps NAP_US
 * on a timer and drains again. A receiver blocked in poll() has to be woken by the
 * sender, and on veth the sender's CPU runs the whole path in its softirq, so every
 * datagram that finds the sink asleep costs the sender a wake-up (try_to_wake_up and an
 * IPI: 0.6-3.4 us per datagram in perf, varying from run to run with how often the sink
 * caught up) -- a cost of the instrument, not of the path, that moved the packet rate of
 * two equal paths by up to 15 % (benchmarks/README.md, "GRE against IP in IP"). With no
 * sleeper on the socket, sock_def_readable wakes no one; the queue holds NAP_US of
 * traffic (~40 datagrams at 200k/s) in a receive buffer of 8 MiB.
 *
 * Every loop is bounded in count and time.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define MAX_SIZE 1472
#define NAP_US 200

/* Pin this process to cpu (>= 0); 0 on success or when not asked, -1 on failure. */
static int pin(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return 0;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Udp: RcvbufErrors of this namespace (/proc/net/snmp), -1 if unknown */
static long rcvbuf_errors(void)
{
	char head[1024], vals[1024];
	FILE *f = fopen("/proc/net/snmp", "r");
	long out = -1;

	if (!f)
		return -1;
	while (fgets(head, sizeof(head), f)) {
		if (strncmp(head, "Udp:", 4) != 0)
			continue;
		if (!fgets(vals, sizeof(vals), f))
			break;
		char *hs, *vs, *h = strtok_r(head, " \n", &hs), *v = strtok_r(vals, " \n", &vs);

		while (h && v) {
			if (strcmp(h, "RcvbufErrors") == 0) {
				out = atol(v);
				break;
			}
			h = strtok_r(NULL, " \n", &hs);
			v = strtok_r(NULL, " \n", &vs);
		}
		break;
	}
	fclose(f);
	return out;
}

/* CPU seconds (user + system) this process has used: their sum is the scheduler's exact
 * runtime of the process (only the split is from ticks), and without IRQ_TIME_ACCOUNTING
 * a softirq run in this process's context -- on veth the whole path the datagram takes
 * after the sender -- is part of it. */
static double cpu_used(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) < 0)
		return 0;
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

static int wait_go(double timeout)
{
	struct pollfd p = {.fd = 0, .events = POLLIN};
	char line[64];

	if (poll(&p, 1, (int)(timeout * 1000)) <= 0)
		return -1;
	return read(0, line, sizeof(line)) > 0 ? 0 : -1;
}

static int blast(const char *dst, int port, int size, double duration, long count, double rate,
		 const char *src)
{
	static char payload[MAX_SIZE];
	struct mmsghdr msgs[BATCH];
	struct iovec iov = {.iov_base = payload, .iov_len = (size_t)size};
	struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port)};
	struct sockaddr_in from = {.sin_family = AF_INET};
	long sent = 0, errors = 0;
	double start, deadline, t, cpu0;
	int fd;

	if (size < 0 || size > MAX_SIZE || inet_pton(AF_INET, dst, &to.sin_addr) != 1 ||
	    (src != NULL && inet_pton(AF_INET, src, &from.sin_addr) != 1)) {
		printf("{\"event\": \"error\", \"error\": \"bad arguments\"}\n");
		return 2;
	}
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	/* from SRC (the source address the traffic must have), when one is given */
	if (fd < 0 || (src != NULL && bind(fd, (struct sockaddr *)&from, sizeof(from)) < 0) ||
	    connect(fd, (struct sockaddr *)&to, sizeof(to)) < 0) {
		printf("{\"event\": \"error\", \"error\": \"socket: %s\"}\n", strerror(errno));
		return 1;
	}
	memset(msgs, 0, sizeof(msgs));
	for (int i = 0; i < BATCH; i++) {
		msgs[i].msg_hdr.msg_iov = &iov;
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	printf("{\"event\": \"ready\"}\n");
	fflush(stdout);
	if (wait_go(30) < 0) {
		printf("{\"event\": \"error\", \"error\": \"no go from the parent\"}\n");
		return 1;
	}
	cpu0 = cpu_used();
	start = t = now();
	deadline = start + duration;
	while (sent < count && t < deadline) {
		int n = count - sent < BATCH ? (int)(count - sent) : BATCH;
		int r;

		if (rate > 0) {
			double ahead = start + sent / rate - t;

			if (ahead > 0) {
				struct timespec ts = {(time_t)ahead, (long)((ahead - (time_t)ahead) * 1e9)};

				nanosleep(&ts, NULL);
			}
			n = 1;
		}
		r = sendmmsg(fd, msgs, n, 0);
		if (r < 0) {
			errors++; /* ENOBUFS, or ECONNREFUSED from an ICMP error */
			if (errors > 100000000)
				break;
		} else {
			sent += r;
		}
		t = now();
	}
	t = now();
	printf("{\"event\": \"result\", \"sent\": %ld, \"errors\": %ld, \"elapsed\": %.6f, "
	       "\"cpu\": %.6f}\n",
	       sent, errors, t - start, cpu_used() - cpu0);
	close(fd);
	return 0;
}

static int sink(int port, double deadline_s, double idle_s)
{
	static char bufs[BATCH][2048];
	struct mmsghdr msgs[BATCH];
	struct iovec iovs[BATCH];
	struct sockaddr_in me = {.sin_family = AF_INET, .sin_port = htons(port)};
	int size = 8 << 20, fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	long packets = 0, nbytes = 0, errors0 = rcvbuf_errors(), errors1;
	double start, deadline, first = 0, last = 0;

	if (fd < 0 || bind(fd, (struct sockaddr *)&me, sizeof(me)) < 0) {
		printf("{\"event\": \"error\", \"error\": \"socket: %s\"}\n", strerror(errno));
		return 1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	for (int i = 0; i < BATCH; i++) {
		iovs[i].iov_base = bufs[i];
		iovs[i].iov_len = sizeof(bufs[i]);
		memset(&msgs[i], 0, sizeof(msgs[i]));
		msgs[i].msg_hdr.msg_iov = &iovs[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	printf("{\"event\": \"ready\"}\n");
	fflush(stdout);
	start = now();
	deadline = start + deadline_s;
	for (;;) {
		double t = now(), wait = (packets ? last + idle_s : deadline) - t;
		int got = 0, r;

		if (deadline - t < wait)
			wait = deadline - t;
		if (wait <= 0)
			break;
		while ((r = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, NULL)) > 0) {
			for (int i = 0; i < r; i++)
				nbytes += msgs[i].msg_len;
			got += r;
		}
		if (got) {
			last = now();
			if (!packets)
				first = last;
			packets += got;
		} else {
			/* the queue is empty: a timer nap, never a sleep on the socket */
			double nap = wait < NAP_US / 1e6 ? wait : NAP_US / 1e6;
			struct timespec ts = {0, (long)(nap * 1e9)};

			nanosleep(&ts, NULL);
		}
	}
	errors1 = rcvbuf_errors();
	printf("{\"event\": \"result\", \"packets\": %ld, \"bytes\": %ld, \"window\": %.6f, "
	       "\"rcvbuf_errors\": %ld}\n",
	       packets, nbytes, last - first, errors0 >= 0 && errors1 >= 0 ? errors1 - errors0 : 0);
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	int send = argc >= 8 && argc <= 10 && strcmp(argv[1], "send") == 0;
	int recv = argc >= 5 && argc <= 6 && strcmp(argv[1], "recv") == 0;
	int cpu = -1;

	if (send && argc >= 9)
		cpu = atoi(argv[8]);
	if (recv && argc == 6)
		cpu = atoi(argv[5]);
	if ((send || recv) && pin(cpu) < 0) {
		printf("{\"event\": \"error\", \"error\": \"cpu %d: %s\"}\n", cpu, strerror(errno));
		return 2;
	}
	if (send)
		return blast(argv[2], atoi(argv[3]), atoi(argv[4]), atof(argv[5]), atol(argv[6]),
			     atof(argv[7]), argc == 10 ? argv[9] : NULL);
	if (recv)
		return sink(atoi(argv[2]), atof(argv[3]), atof(argv[4]));
	fprintf(stderr,
		"usage: %s send DST PORT SIZE DURATION COUNT RATE [CPU [SRC]] | recv PORT DEADLINE IDLE "
		"[CPU]\n",
		argv[0]);
	return 2;
}
