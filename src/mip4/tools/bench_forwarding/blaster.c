/* mip4 bench forwarding: UDP blaster and sink (sendmmsg / recvmmsg).
 *
 * Python senders cannot fill a tunnel the kernel forwards at line rate (issue 12): this
 * program is the packet-rate half of the benchmark, compiled from source by the benchmark
 * (build.py) with the system C compiler. It speaks the workers' protocol: JSON lines on
 * stdout ("ready", then "result"), and the sender waits for a line on stdin ("go") before
 * it starts, so start-up is not measured.
 *
 *   mip4-blaster send DST PORT SIZE DURATION COUNT RATE
 *       SIZE-byte datagrams to DST:PORT, at most COUNT, for at most DURATION seconds;
 *       RATE > 0 paces to that many per second, 0 sends as fast as sendmmsg goes.
 *   mip4-blaster recv PORT DEADLINE IDLE
 *       count datagrams on PORT until IDLE seconds without one after the first, or
 *       DEADLINE seconds in all.
 *
 * Every loop is bounded in count and time.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define MAX_SIZE 1472

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

static int wait_go(double timeout)
{
	struct pollfd p = {.fd = 0, .events = POLLIN};
	char line[64];

	if (poll(&p, 1, (int)(timeout * 1000)) <= 0)
		return -1;
	return read(0, line, sizeof(line)) > 0 ? 0 : -1;
}

static int blast(const char *dst, int port, int size, double duration, long count, double rate)
{
	static char payload[MAX_SIZE];
	struct mmsghdr msgs[BATCH];
	struct iovec iov = {.iov_base = payload, .iov_len = (size_t)size};
	struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port)};
	long sent = 0, errors = 0;
	double start, deadline, t;
	int fd;

	if (size < 0 || size > MAX_SIZE || inet_pton(AF_INET, dst, &to.sin_addr) != 1) {
		printf("{\"event\": \"error\", \"error\": \"bad arguments\"}\n");
		return 2;
	}
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&to, sizeof(to)) < 0) {
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
	printf("{\"event\": \"result\", \"sent\": %ld, \"errors\": %ld, \"elapsed\": %.6f}\n", sent,
	       errors, now() - start);
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
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int got = 0, r;

		if (deadline - t < wait)
			wait = deadline - t;
		if (wait <= 0)
			break;
		if (poll(&p, 1, (int)(wait * 1000) + 1) <= 0)
			continue;
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
	if (argc == 8 && strcmp(argv[1], "send") == 0)
		return blast(argv[2], atoi(argv[3]), atoi(argv[4]), atof(argv[5]), atol(argv[6]),
			     atof(argv[7]));
	if (argc == 5 && strcmp(argv[1], "recv") == 0)
		return sink(atoi(argv[2]), atof(argv[3]), atof(argv[4]));
	fprintf(stderr, "usage: %s send DST PORT SIZE DURATION COUNT RATE | recv PORT DEADLINE IDLE\n",
		argv[0]);
	return 2;
}
