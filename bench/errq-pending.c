// SPDX-License-Identifier: MIT
/*
 * errq-pending: what a MSG_ZEROCOPY send costs the kernel while many
 * other sockets each hold an unread completion. Bare syscalls, no
 * library: a reproduction for the kernel's side of zcbench's figures at
 * 10,000 connections (README, "At 4689d6a"). Not installed.
 *
 *   errq-pending SOCKETS SENDS now|later
 *
 * SOCKETS connected UDP sockets send 4 KiB datagrams in turn to one
 * receiver over loopback, with MSG_ZEROCOPY. now: each send's completion
 * is read from its socket's error queue right after it (as the error
 * queue backend reads at k=1); later: just before that socket's next send
 * (as the SCM backend leaves it for the next send's control message), so
 * each socket holds one completion all the while. Prints the process's
 * CPU time per send (user + system). Needs SOCKETS + 16 file descriptors
 * (it raises RLIMIT_NOFILE as far as it may).
 *
 * Linux 6.1 in the rig's icount guest (tests/kernel/rig.sh --icount),
 * 60,000 sends, with the kernel's SLOB allocator (tinyconfig's, the rig's
 * until it took SLUB): now 20.7-21.7 us a send at 100 to 10,000 sockets;
 * later 22.5 (100 sockets), 28.7 (1,000), 46.0 (3,000), 78.3 (10,000),
 * patched or not: SLOB's first-fit walk over its partly free pages grows
 * with the small objects (queued completions) live. With SLUB, as
 * distributions build: 20.2-20.9 us both ways at every count. Linux 6.18
 * on the host: 5.4 and 5.7 us at 1,000 sockets.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef SO_ZEROCOPY
#define SO_ZEROCOPY	60
#endif
#ifndef MSG_ZEROCOPY
#define MSG_ZEROCOPY	0x4000000
#endif

static double cpu_s(void)
{
	struct rusage u;

	getrusage(RUSAGE_SELF, &u);
	return (double)(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
	       (double)(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

/* One completion record off fd's error queue, if there is one. */
static void read_one(int fd)
{
	char ctl[128];
	struct msghdr m = { .msg_control = ctl, .msg_controllen = sizeof(ctl) };

	if (recvmsg(fd, &m, MSG_ERRQUEUE | MSG_DONTWAIT) < 0 &&
	    errno != EAGAIN) {
		perror("errq-pending: recvmsg(MSG_ERRQUEUE)");
		exit(1);
	}
}

int main(int argc, char **argv)
{
	static char buf[4096], rbuf[65536];
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	long n, sends;
	int rx, one = 1, rcvbuf = 1 << 22, later, *fd;
	struct rlimit rl;
	double t0;

	if (argc != 4 || (n = atol(argv[1])) < 1 || (sends = atol(argv[2])) < 1 ||
	    (strcmp(argv[3], "now") && strcmp(argv[3], "later"))) {
		fprintf(stderr, "usage: errq-pending SOCKETS SENDS now|later\n");
		return 2;
	}
	later = !strcmp(argv[3], "later");
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < (rlim_t)n + 16) {
		rl.rlim_cur = (rlim_t)n + 16;
		if (rl.rlim_max < rl.rlim_cur)
			rl.rlim_max = rl.rlim_cur;	/* root may */
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	fd = calloc((size_t)n, sizeof(*fd));
	rx = socket(AF_INET, SOCK_DGRAM, 0);
	if (!fd || rx < 0 || bind(rx, (struct sockaddr *)&a, sizeof(a)) ||
	    getsockname(rx, (struct sockaddr *)&a, &alen)) {
		perror("errq-pending: receiver");
		return 1;
	}
	setsockopt(rx, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	for (long i = 0; i < n; i++) {
		fd[i] = socket(AF_INET, SOCK_DGRAM, 0);
		if (fd[i] < 0 || connect(fd[i], (struct sockaddr *)&a,
					 sizeof(a)) ||
		    setsockopt(fd[i], SOL_SOCKET, SO_ZEROCOPY, &one,
			       sizeof(one))) {
			fprintf(stderr, "errq-pending: socket %ld of %ld: %s\n",
				i, n, strerror(errno));
			return 1;
		}
	}
	t0 = cpu_s();
	for (long i = 0; i < sends; i++) {
		int f = fd[i % n];

		if (later)
			read_one(f);
		if (send(f, buf, sizeof(buf), MSG_ZEROCOPY) < 0) {
			perror("errq-pending: send");
			return 1;
		}
		if (!later)
			read_one(f);
		while (recv(rx, rbuf, sizeof(rbuf), MSG_DONTWAIT | MSG_TRUNC) > 0)
			;
	}
	printf("errq-pending: %ld sockets, %ld sends, completions read %s: "
	       "%.2f us CPU a send\n", n, sends, later ?
	       "before the socket's next send" : "at once",
	       (cpu_s() - t0) * 1e6 / (double)sends);
	return 0;
}
