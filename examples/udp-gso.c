// SPDX-License-Identifier: MIT
/*
 * udp-gso: UDP sends with segmentation offload (UDP_SEGMENT) through
 * zc_sendmsg().
 *
 * Each zc_sendmsg() carries a UDP_SEGMENT control message: one call sends
 * one buffer of up to 64 segments, which the stack (or the NIC) cuts into
 * datagrams of gso_size bytes. The control message goes in msg_control as
 * for sendmsg(2); the library passes it on unchanged (with the scm backend
 * it puts its own SCM_ZC_NOTIFICATION first and the caller's after it).
 * One call is one send: one completion, whatever the number of segments.
 *
 * A receiver socket in the same process reads the datagrams back and
 * checks them, so the program is self-contained over loopback.
 *
 *   udp-gso [-6] [-g gso_size] [-k segments] [-n sends] [-p pool]
 *
 * Exit: 0 all datagrams arrived intact, 1 failed, 2 bad usage, 77 the
 * kernel does not do UDP GSO.
 *
 * Build: cc -o udp-gso udp-gso.c $(pkg-config --cflags --libs libzcnotify)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <zcnotify.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT	103
#endif
#ifndef SOL_UDP
#define SOL_UDP		17
#endif

#define MAX_POOL	64

/* The first 8 bytes of every datagram: send number and segment number. */
struct hdr {
	uint32_t send;
	uint32_t seg;
};

static int fail_zc(const char *what, long err)
{
	fprintf(stderr, "udp-gso: %s: %s (%s)\n", what, strerror((int)-err),
		zc_last_error());
	return 1;
}

static socklen_t loopback(bool v6, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (v6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

		a->sin6_family = AF_INET6;
		a->sin6_addr = in6addr_loopback;
		return sizeof(*a);
	}
	((struct sockaddr_in *)ss)->sin_family = AF_INET;
	((struct sockaddr_in *)ss)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return sizeof(struct sockaddr_in);
}

/* Read the k datagrams of send number i and check them. */
static int receive(int rx, char *dgram, uint32_t i, unsigned int k,
		   size_t gso)
{
	for (unsigned int j = 0; j < k; j++) {
		ssize_t n = recv(rx, dgram, gso + 1, MSG_TRUNC);
		struct hdr h;

		if (n < 0) {
			perror("udp-gso: recv (datagram lost?)");
			return 1;
		}
		memcpy(&h, dgram, sizeof(h));
		if ((size_t)n != gso || h.send != i || h.seg != j ||
		    dgram[gso - 1] != (char)(i + j)) {
			fprintf(stderr, "udp-gso: send %u: datagram %u wrong "
				"(%zd bytes, send %u, segment %u)\n", i, j, n,
				h.send, h.seg);
			return 1;
		}
	}
	return 0;
}

/*
 * optarg of option opt, a whole number up to max, or exit 2: strtoul()
 * alone takes "abc" as 0 and "-1" as ULONG_MAX.
 */
static unsigned long num(int opt, const char *s, unsigned long max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 0);
	if (*s < '0' || *s > '9' || *end || errno || v > max) {
		fprintf(stderr, "-%c: '%s' is not a number up to %lu\n", opt,
			s, max);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	size_t gso = 1400;
	unsigned int k = 16, sends = 100, pool = 4, nfree = 0, copied = 0;
	unsigned int freelist[MAX_POOL], refs[MAX_POOL];
	char *buf[MAX_POOL], *dgram;
	struct sockaddr_storage a, b;
	socklen_t alen, blen;
	struct zc_opts opts = { .sz = sizeof(opts) };
	struct zc_completion comp[MAX_POOL];
	struct zc_sock *zs;
	struct timeval tv = { .tv_sec = 5 };
	bool v6 = false;
	int opt, tx, rx, ret, rcvbuf = 4 << 20;

	while ((opt = getopt(argc, argv, "6g:k:n:p:")) != -1) {
		switch (opt) {
		case '6': v6 = true; break;
		case 'g': gso = num(opt, optarg, 65000); break;
		case 'k': k = (unsigned int)num(opt, optarg, 64); break;
		case 'n': sends = (unsigned int)num(opt, optarg, UINT32_MAX); break;
		case 'p': pool = (unsigned int)num(opt, optarg, UINT_MAX); break;
		default:
			fprintf(stderr, "usage: %s [-6] [-g gso_size] "
				"[-k segments] [-n sends] [-p pool]\n", argv[0]);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "udp-gso: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	/* At most 64 segments, and one UDP payload of at most 64 KiB. */
	if (gso < sizeof(struct hdr) + 1 || gso > 65000 || !k || k > 64 ||
	    gso * k > 65000 || !pool || pool > MAX_POOL) {
		fprintf(stderr, "udp-gso: bad -g, -k or -p\n");
		return 2;
	}

	/* rx bound to loopback; tx connected to it (and rx to tx). */
	alen = loopback(v6, &a);
	blen = loopback(v6, &b);
	rx = socket(a.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	tx = socket(a.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (rx < 0 || tx < 0 ||
	    bind(rx, (struct sockaddr *)&a, alen) ||
	    getsockname(rx, (struct sockaddr *)&a, &alen) ||
	    bind(tx, (struct sockaddr *)&b, blen) ||
	    getsockname(tx, (struct sockaddr *)&b, &blen) ||
	    connect(tx, (struct sockaddr *)&a, alen) ||
	    connect(rx, (struct sockaddr *)&b, blen)) {
		perror("udp-gso: sockets on loopback");
		return 1;
	}
	setsockopt(rx, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	setsockopt(rx, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));

	ret = zc_open(tx, &opts, &zs);
	if (ret == -EOPNOTSUPP) {	/* e.g. ZCNOTIFY_BACKEND=scm, no support */
		fprintf(stderr, "udp-gso: skipped: %s\n", zc_last_error());
		return 77;
	}
	if (ret)
		return fail_zc("zc_open", ret);
	dgram = malloc(gso + 1);
	for (unsigned int p = 0; p < pool; p++) {
		buf[p] = malloc(gso * k);
		if (!buf[p] || !dgram) {
			fprintf(stderr, "udp-gso: out of memory\n");
			return 1;
		}
		refs[p] = 0;
		freelist[nfree++] = p;
	}

	for (uint32_t i = 0; i < sends; i++) {
		union {		/* aligned for struct cmsghdr */
			char buf[CMSG_SPACE(sizeof(uint16_t))];
			struct cmsghdr align;
		} ctrl = { { 0 } };	/* the padding after the cmsg too */
		struct iovec iov;
		struct msghdr msg = {
			.msg_iov = &iov,
			.msg_iovlen = 1,
			.msg_control = ctrl.buf,
			.msg_controllen = sizeof(ctrl.buf),
		};
		struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
		uint16_t seg = (uint16_t)gso;
		unsigned int p;
		ssize_t n;

		/* No free buffer: wait for a completion to give one back. */
		while (!nfree) {
			ret = zc_wait(zs, comp, MAX_POOL, 5000);
			if (ret <= 0)
				return ret ? fail_zc("zc_wait", ret) :
				       fail_zc("zc_wait", -ETIMEDOUT);
			for (int c = 0; c < ret; c++) {
				unsigned int q = (unsigned int)comp[c].cookie;

				copied += !!(comp[c].flags & ZC_COPIED);
				if (--refs[q] == 0)
					freelist[nfree++] = q;
			}
		}
		p = freelist[--nfree];

		/* Write the buffer only now that the kernel is done with it. */
		for (unsigned int j = 0; j < k; j++) {
			struct hdr h = { .send = i, .seg = j };
			char *d = buf[p] + j * gso;

			memset(d, 0, gso);
			memcpy(d, &h, sizeof(h));
			d[gso - 1] = (char)(i + j);
		}
		iov.iov_base = buf[p];
		iov.iov_len = gso * k;

		/* UDP_SEGMENT: cut this payload into datagrams of gso bytes. */
		cm->cmsg_level = SOL_UDP;
		cm->cmsg_type = UDP_SEGMENT;
		cm->cmsg_len = CMSG_LEN(sizeof(seg));
		memcpy(CMSG_DATA(cm), &seg, sizeof(seg));

		n = zc_sendmsg(zs, &msg, 0, p);
		if (n == -EIO || n == -ENOPROTOOPT) {	/* no checksum offload */
			fprintf(stderr, "udp-gso: no UDP GSO here: %s\n",
				zc_last_error());
			return 77;
		}
		if (n < 0)
			return fail_zc("zc_sendmsg", n);
		refs[p]++;
		/* The receiver reads them now, so nothing overflows. */
		if (receive(rx, dgram, i, k, gso))
			return 1;
	}

	/* Drain: every send's completion, before zc_close(). */
	while (zc_inflight(zs)) {
		ret = zc_wait(zs, comp, MAX_POOL, 5000);
		if (ret <= 0)
			return fail_zc("zc_wait", ret ? ret : -ETIMEDOUT);
		for (int c = 0; c < ret; c++)
			copied += !!(comp[c].flags & ZC_COPIED);
	}
	printf("udp-gso: backend %s: %u sends of %u x %zu bytes over %s, "
	       "%u datagrams checked, %u completions said copied\n",
	       zc_backend_name(zc_backend(zs)), sends, k, gso,
	       v6 ? "::1" : "127.0.0.1", sends * k, copied);
	zc_close(zs);
	close(tx);
	close(rx);
	for (unsigned int p = 0; p < pool; p++)
		free(buf[p]);
	free(dgram);
	return 0;
}
