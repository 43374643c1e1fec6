// SPDX-License-Identifier: MIT
/*
 * abi_test - raw check of the SCM_ZC_NOTIFICATION sendmsg() ABI (patch
 * series "net: A lightweight zero-copy notification", v5 semantics; see
 * docs/ABI.md section 2). No library: plain syscalls over loopback.
 *
 * Exit status: 0 all checks passed, 1 a check failed, 77 the kernel does
 * not implement SCM_ZC_NOTIFICATION (for example an unpatched kernel).
 * Not for the rig's bench kernel: there a loopback completion waits until
 * the peer has read the data, and the TCP checks do not read it.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/errqueue.h>
#include <linux/net_tstamp.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "raw.h"

#define ELEM_SIZE	sizeof(struct zc_info_elem)
#define CTL_SIZE	(CMSG_SPACE(ELEM_SIZE * (SOCK_ZC_INFO_MAX + 2)) + \
			 CMSG_SPACE(sizeof(int)) * 2)
#define SENTINEL	0xa5
#define WAIT_MS		3000

static int failures;
static const char *section = "";

static void fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	printf("FAIL: %s: ", section);
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	fflush(stdout);
	failures++;
}

static void pass(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	printf("ok:   %s: ", section);
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	fflush(stdout);
}

#define CHECK(cond, ...)			\
	do {					\
		if (cond)			\
			pass(__VA_ARGS__);	\
		else				\
			fail(__VA_ARGS__);	\
	} while (0)

static void die(const char *what)
{
	printf("FAIL: %s: %s: %s\n", section, what, strerror(errno));
	exit(1);
}

/* ---- sockets ---------------------------------------------------------- */

static socklen_t loopback(int family, uint16_t port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr = in6addr_loopback;
		sin6->sin6_port = htons(port);
		return sizeof(*sin6);
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sin->sin_port = htons(port);
		return sizeof(*sin);
	}
}

static void set_int(int fd, int level, int opt, int val, const char *name)
{
	if (setsockopt(fd, level, opt, &val, sizeof(val)))
		die(name);
}

/* A bound socket on loopback; *addr receives its address. */
static int bound_socket(int family, int type, struct sockaddr_storage *addr,
			socklen_t *len)
{
	int fd = socket(family, type, 0);

	if (fd < 0)
		die("socket");
	*len = loopback(family, 0, addr);
	if (bind(fd, (struct sockaddr *)addr, *len))
		die("bind");
	if (getsockname(fd, (struct sockaddr *)addr, len))
		die("getsockname");
	return fd;
}

/* A connected loopback TCP pair; SO_ZEROCOPY on the client if zerocopy. */
static void tcp_pair(int family, int zerocopy, int *client, int *server)
{
	struct sockaddr_storage addr;
	socklen_t len;
	int lfd;

	lfd = bound_socket(family, SOCK_STREAM, &addr, &len);
	if (listen(lfd, 1))
		die("listen");
	*client = socket(family, SOCK_STREAM, 0);
	if (*client < 0)
		die("socket");
	if (zerocopy)
		set_int(*client, SOL_SOCKET, SO_ZEROCOPY, 1, "SO_ZEROCOPY");
	if (connect(*client, (struct sockaddr *)&addr, len))
		die("connect");
	*server = accept(lfd, NULL, NULL);
	if (*server < 0)
		die("accept");
	close(lfd);
}

static int wait_pollerr(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = 0 };
	int n = poll(&pfd, 1, WAIT_MS);

	return n == 1 && (pfd.revents & POLLERR);
}

static int has_pollerr(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = 0 };

	return poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLERR);
}

static int send_zc(int fd, const struct sockaddr_storage *to, socklen_t tolen)
{
	char byte = 'z';

	return sendto(fd, &byte, 1, MSG_ZEROCOPY, (const struct sockaddr *)to,
		      tolen);
}

static int so_error(int fd)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len))
		die("SO_ERROR");
	return err;
}

/*
 * Read one record with recvmsg(MSG_ERRQUEUE). Returns 0 and fills *ee, or
 * -1 with errno set (EAGAIN: queue empty).
 */
static int read_errqueue(int fd, struct sock_extended_err *ee)
{
	char control[512];
	struct msghdr msg = {
		.msg_control = control,
		.msg_controllen = sizeof(control),
	};
	struct cmsghdr *cm;

	if (recvmsg(fd, &msg, MSG_ERRQUEUE) < 0)
		return -1;
	if (msg.msg_flags & MSG_CTRUNC) {
		errno = ENOSPC;
		return -1;
	}
	for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
		if ((cm->cmsg_level == SOL_IP && cm->cmsg_type == IP_RECVERR) ||
		    (cm->cmsg_level == SOL_IPV6 &&
		     cm->cmsg_type == IPV6_RECVERR)) {
			memcpy(ee, CMSG_DATA(cm), sizeof(*ee));
			return 0;
		}
	}
	errno = ENOMSG;
	return -1;
}

static int errqueue_is_zc(const struct sock_extended_err *ee, uint32_t lo,
			  uint32_t hi)
{
	return ee->ee_errno == 0 && ee->ee_origin == SO_EE_ORIGIN_ZEROCOPY &&
	       ee->ee_info == lo && ee->ee_data == hi;
}

/* ---- the SCM_ZC_NOTIFICATION call -------------------------------------- */

struct harvest {
	/* request */
	int n;			/* elements asked for */
	size_t cmsg_len;	/* 0: CMSG_LEN(n * 12) */
	int extra;		/* add an int cmsg after (or before) ours */
	int extra_level;
	int extra_type;
	int extra_val;
	int extra_first;	/* put the extra cmsg before ours */
	const void *data;
	size_t len;
	int flags;
	const struct sockaddr_storage *to;
	socklen_t tolen;
	/* result */
	ssize_t ret;
	int err;
	int untouched;		/* buffer exactly as before the call */
	int count;		/* elements written, when !untouched */
	int tail_intact;	/* nothing written past cmsg_len */
	struct cmsghdr hdr;	/* header found at the start of the buffer */
	struct zc_info_elem elem[SOCK_ZC_INFO_MAX + 2];
};

static void harvest(int fd, struct harvest *h)
{
	union {
		char buf[CTL_SIZE];
		struct cmsghdr align;
	} u, before;
	struct msghdr msg = {
		.msg_control = u.buf,
		.msg_name = (void *)h->to,
		.msg_namelen = h->to ? h->tolen : 0,
	};
	struct iovec iov = {
		.iov_base = (void *)h->data,
		.iov_len = h->len,
	};
	size_t zc_len = h->cmsg_len ? h->cmsg_len : CMSG_LEN(h->n * ELEM_SIZE);
	struct cmsghdr *cm;
	size_t written;
	int i;

	if (h->len) {
		msg.msg_iov = &iov;
		msg.msg_iovlen = 1;
	}
	memset(u.buf, SENTINEL, sizeof(u.buf));
	msg.msg_controllen = CMSG_ALIGN(zc_len);
	if (h->extra)
		msg.msg_controllen += CMSG_SPACE(sizeof(int));
	cm = CMSG_FIRSTHDR(&msg);
	if (h->extra && h->extra_first) {
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		cm->cmsg_level = h->extra_level;
		cm->cmsg_type = h->extra_type;
		memcpy(CMSG_DATA(cm), &h->extra_val, sizeof(int));
		cm = (struct cmsghdr *)((char *)cm + CMSG_SPACE(sizeof(int)));
	}
	cm->cmsg_len = zc_len;
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_ZC_NOTIFICATION;
	if (h->extra && !h->extra_first) {
		cm = (struct cmsghdr *)((char *)cm + CMSG_ALIGN(zc_len));
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		cm->cmsg_level = h->extra_level;
		cm->cmsg_type = h->extra_type;
		memcpy(CMSG_DATA(cm), &h->extra_val, sizeof(int));
	}
	memcpy(before.buf, u.buf, sizeof(u.buf));

	h->ret = sendmsg(fd, &msg, h->flags);
	h->err = h->ret < 0 ? errno : 0;

	h->untouched = !memcmp(before.buf, u.buf, sizeof(u.buf));
	h->count = 0;
	h->tail_intact = 1;
	memcpy(&h->hdr, u.buf, sizeof(h->hdr));
	if (h->untouched)
		return;
	if (h->hdr.cmsg_len >= CMSG_LEN(0))
		h->count = (h->hdr.cmsg_len - CMSG_LEN(0)) / ELEM_SIZE;
	if (h->count > SOCK_ZC_INFO_MAX + 2)
		h->count = SOCK_ZC_INFO_MAX + 2;
	for (i = 0; i < h->count; i++)
		memcpy(&h->elem[i], u.buf + CMSG_LEN(0) + i * ELEM_SIZE,
		       ELEM_SIZE);
	written = h->hdr.cmsg_len < sizeof(u.buf) ? h->hdr.cmsg_len :
						    sizeof(u.buf);
	h->tail_intact = !memcmp(before.buf + written, u.buf + written,
				 sizeof(u.buf) - written);
}

/* Check that h wrote exactly the given [lo, hi] pairs, all copied. */
static void check_elems(const struct harvest *h, int count,
			const uint32_t (*want)[2], const char *what)
{
	int i, ok;

	CHECK(!h->untouched, "%s: kernel wrote a control message", what);
	if (h->untouched)
		return;
	CHECK(h->hdr.cmsg_level == SOL_SOCKET &&
	      h->hdr.cmsg_type == SCM_ZC_NOTIFICATION,
	      "%s: header at the start of msg_control is SOL_SOCKET/SCM_ZC_NOTIFICATION (got %d/%d)",
	      what, h->hdr.cmsg_level, h->hdr.cmsg_type);
	CHECK(h->hdr.cmsg_len == CMSG_LEN(count * ELEM_SIZE),
	      "%s: cmsg_len == CMSG_LEN(%d * 12) == %zu (got %zu)", what,
	      count, (size_t)CMSG_LEN(count * ELEM_SIZE),
	      (size_t)h->hdr.cmsg_len);
	CHECK(h->tail_intact, "%s: nothing written past cmsg_len", what);
	ok = h->count == count;
	for (i = 0; ok && i < count; i++)
		ok = h->elem[i].lo == want[i][0] && h->elem[i].hi == want[i][1] &&
		     h->elem[i].zerocopy == 0;
	if (ok) {
		pass("%s: %d element(s) as expected, zerocopy byte 0 (loopback copies)",
		     what, count);
		return;
	}
	fail("%s: elements differ from the expected %d:", what, count);
	for (i = 0; i < h->count; i++)
		printf("      got [%u, %u] zerocopy %u\n", h->elem[i].lo,
		       h->elem[i].hi, h->elem[i].zerocopy);
	for (i = 0; i < count; i++)
		printf("      want [%u, %u] zerocopy 0\n", want[i][0], want[i][1]);
}

/* ---- probe ------------------------------------------------------------- */

/*
 * The rig exports ZC_RIG_VARIANT: on its patched kernel "unsupported" is a
 * failure, on its unpatched kernel "supported" is. Elsewhere, exit 77.
 */
static void unsupported(const char *why)
{
	const char *variant = getenv("ZC_RIG_VARIANT");

	printf("unsupported: %s\n", why);
	if (variant && !strcmp(variant, "patched")) {
		printf("FAIL: probe: the rig's patched kernel must support SCM_ZC_NOTIFICATION\n");
		exit(1);
	}
	exit(77);
}

static void probe(void)
{
	const char *variant = getenv("ZC_RIG_VARIANT");
	struct harvest h = { .n = 1 };
	int c, s;

	section = "probe";
	tcp_pair(AF_INET, 1, &c, &s);
	if (send_zc(c, NULL, 0) != 1)
		die("send MSG_ZEROCOPY");
	if (!wait_pollerr(c)) {
		fail("no POLLERR after a MSG_ZEROCOPY send");
		exit(1);
	}
	harvest(c, &h);
	if (h.ret < 0 && h.err == EINVAL)
		unsupported("sendmsg with SOL_SOCKET/SCM_ZC_NOTIFICATION fails with EINVAL");
	if (h.ret == 0 && h.untouched)
		unsupported("sendmsg with SOL_SOCKET/SCM_ZC_NOTIFICATION writes nothing");
	if (variant && !strcmp(variant, "unpatched")) {
		printf("FAIL: probe: the rig's unpatched kernel answers SCM_ZC_NOTIFICATION (ret %zd, %s)\n",
		       h.ret, strerror(h.err));
		exit(1);
	}
	CHECK(h.ret == 0, "zero-length harvest returns 0 (ret %zd, %s)", h.ret,
	      strerror(h.err));
	check_elems(&h, 1, (const uint32_t[][2]){ { 0, 0 } }, "first harvest");
	close(c);
	close(s);
}

/* ---- TCP --------------------------------------------------------------- */

static void test_tcp(int family)
{
	struct sock_extended_err ee;
	struct harvest h;
	char buf[256];
	int c, s, c2, s2;
	int i;

	section = family == AF_INET6 ? "tcp6" : "tcp4";
	tcp_pair(family, 1, &c, &s);

	/* id 0: harvest it */
	if (send_zc(c, NULL, 0) != 1)
		die("send MSG_ZEROCOPY");
	CHECK(wait_pollerr(c), "POLLERR after MSG_ZEROCOPY send");
	h = (struct harvest){ .n = 4 };
	harvest(c, &h);
	CHECK(h.ret == 0, "zero-length harvest returns 0 (ret %zd)", h.ret);
	check_elems(&h, 1, (const uint32_t[][2]){ { 0, 0 } }, "n=4, 1 queued");
	CHECK(!has_pollerr(c), "no POLLERR once the queue is drained");
	CHECK(read_errqueue(c, &ee) < 0 && errno == EAGAIN,
	      "error queue empty after the harvest");

	/* empty queue: nothing written */
	h = (struct harvest){ .n = 4 };
	harvest(c, &h);
	CHECK(h.ret == 0 && h.untouched,
	      "empty queue: returns 0 and leaves the buffer untouched (ret %zd, untouched %d)",
	      h.ret, h.untouched);

	/* id 1 (the zero-length calls took no id): via recvmsg(MSG_ERRQUEUE) */
	if (send_zc(c, NULL, 0) != 1)
		die("send MSG_ZEROCOPY");
	CHECK(wait_pollerr(c), "POLLERR after second send");
	CHECK(read_errqueue(c, &ee) == 0 && errqueue_is_zc(&ee, 1, 1),
	      "recvmsg(MSG_ERRQUEUE) still works: [1, 1]");

	/* id 2: harvest again after the recvmsg path */
	if (send_zc(c, NULL, 0) != 1)
		die("send MSG_ZEROCOPY");
	CHECK(wait_pollerr(c), "POLLERR after third send");
	h = (struct harvest){ .n = 16 };
	harvest(c, &h);
	check_elems(&h, 1, (const uint32_t[][2]){ { 2, 2 } },
		    "n=16 after recvmsg(MSG_ERRQUEUE)");

	/* id 3 stays queued across invalid requests */
	if (send_zc(c, NULL, 0) != 1)
		die("send MSG_ZEROCOPY");
	CHECK(wait_pollerr(c), "POLLERR after fourth send");
	h = (struct harvest){ .cmsg_len = CMSG_LEN(13) };
	harvest(c, &h);
	CHECK(h.ret < 0 && h.err == EINVAL && h.untouched,
	      "data length 13 (not a multiple of 12): EINVAL, buffer untouched (ret %zd, %s)",
	      h.ret, strerror(h.err));
	h = (struct harvest){ .n = 0 };
	harvest(c, &h);
	CHECK(h.ret < 0 && h.err == EINVAL && h.untouched,
	      "n=0: EINVAL, buffer untouched (ret %zd, %s)", h.ret,
	      strerror(h.err));
	h = (struct harvest){ .n = SOCK_ZC_INFO_MAX + 1 };
	harvest(c, &h);
	CHECK(h.ret < 0 && h.err == EINVAL && h.untouched,
	      "n=17: EINVAL, buffer untouched (ret %zd, %s)", h.ret,
	      strerror(h.err));
	CHECK(read_errqueue(c, &ee) == 0 && errqueue_is_zc(&ee, 3, 3),
	      "invalid requests took nothing: [3, 3] still queued");

	/* a payload and a harvest in one call */
	memset(buf, 'p', sizeof(buf));
	if (send_zc(c, NULL, 0) != 1)	/* id 4 */
		die("send MSG_ZEROCOPY");
	CHECK(wait_pollerr(c), "POLLERR after fifth send");
	h = (struct harvest){ .n = 2, .data = buf, .len = 100,
			      .flags = MSG_ZEROCOPY };	/* id 5 */
	harvest(c, &h);
	CHECK(h.ret == 100, "harvest with 100 bytes of MSG_ZEROCOPY payload sends them (ret %zd)",
	      h.ret);
	check_elems(&h, 1, (const uint32_t[][2]){ { 4, 4 } },
		    "harvest riding on a data send");
	CHECK(wait_pollerr(c), "POLLERR for the data send");
	h = (struct harvest){ .n = 2 };
	harvest(c, &h);
	check_elems(&h, 1, (const uint32_t[][2]){ { 5, 5 } },
		    "completion of the data send that carried a harvest");

	/*
	 * A second cmsg after ours is still applied: SO_TIMESTAMPING with a
	 * software TX timestamp. Its record (origin TIMESTAMPING) is queued
	 * before the zerocopy completion and must be skipped and left alone.
	 */
	set_int(c, SOL_SOCKET, SO_TIMESTAMPING,
		SOF_TIMESTAMPING_SOFTWARE | SOF_TIMESTAMPING_OPT_TSONLY,
		"SO_TIMESTAMPING");
	h = (struct harvest){ .n = 1, .data = buf, .len = 1,
			      .flags = MSG_ZEROCOPY,	/* id 6 */
			      .extra = 1, .extra_level = SOL_SOCKET,
			      .extra_type = SO_TIMESTAMPING,
			      .extra_val = SOF_TIMESTAMPING_TX_SOFTWARE };
	harvest(c, &h);
	CHECK(h.ret == 1 && h.untouched,
	      "send with [SCM_ZC_NOTIFICATION, SO_TIMESTAMPING] on an empty queue (ret %zd, %s, untouched %d)",
	      h.ret, strerror(h.err), h.untouched);
	CHECK(wait_pollerr(c), "POLLERR for the timestamped send");
	for (i = 0; i < 100; i++) {
		h = (struct harvest){ .n = 4 };
		harvest(c, &h);
		if (!h.untouched || h.ret)
			break;
		usleep(10000);
	}
	check_elems(&h, 1, (const uint32_t[][2]){ { 6, 6 } },
		    "zerocopy record taken from behind a timestamp record");
	CHECK(read_errqueue(c, &ee) == 0 && ee.ee_errno == ENOMSG &&
	      ee.ee_origin == SO_EE_ORIGIN_TIMESTAMPING,
	      "the trailing SO_TIMESTAMPING cmsg was applied and its record left queued (errno %d, origin %d)",
	      ee.ee_errno, ee.ee_origin);
	CHECK(read_errqueue(c, &ee) < 0 && errno == EAGAIN,
	      "error queue empty at the end");
	CHECK(!has_pollerr(c), "no POLLERR at the end");

	/*
	 * TCP fails a send on a socket that is not connected (here: shut
	 * down for writing) with EPIPE before it parses the control
	 * messages: nothing is taken.
	 */
	if (send_zc(c, NULL, 0) != 1)	/* id 7 */
		die("send MSG_ZEROCOPY");
	CHECK(wait_pollerr(c), "POLLERR after the last send");
	shutdown(c, SHUT_WR);
	h = (struct harvest){ .n = 1, .data = buf, .len = 1,
			      .flags = MSG_NOSIGNAL };
	harvest(c, &h);
	CHECK(h.ret < 0 && h.err == EPIPE && h.untouched,
	      "after shutdown(SHUT_WR): EPIPE, buffer untouched (ret %zd, %s)",
	      h.ret, strerror(h.err));
	CHECK(read_errqueue(c, &ee) == 0 && errqueue_is_zc(&ee, 7, 7),
	      "that EPIPE took nothing: [7, 7] still queued");

	/* the peer got every byte */
	{
		size_t want = 1 + 1 + 1 + 1 + 1 + 100 + 1 + 1, got = 0;
		ssize_t r;

		while ((r = read(s, buf, sizeof(buf))) > 0)
			got += r;
		CHECK(got == want, "peer received %zu bytes (want %zu)", got,
		      want);
	}
	close(c);
	close(s);

	/* without SO_ZEROCOPY */
	tcp_pair(family, 0, &c2, &s2);
	h = (struct harvest){ .n = 1 };
	harvest(c2, &h);
	CHECK(h.ret < 0 && h.err == EINVAL && h.untouched,
	      "socket without SO_ZEROCOPY: EINVAL (ret %zd, %s)", h.ret,
	      strerror(h.err));
	close(c2);
	close(s2);
}

/*
 * sendmmsg(): each message's own msg_control receives what its cmsg took.
 * Message 0 takes the queued completion, message 1 finds nothing.
 */
static void test_sendmmsg(void)
{
	union {
		char buf[CMSG_SPACE(ELEM_SIZE)];
		struct cmsghdr align;
	} ctl[2];
	struct zc_info_elem elem;
	struct mmsghdr mm[2];
	struct iovec iov[2];
	struct cmsghdr *cm;
	char data[2] = "mm", sink[8];
	int c, s, i, r;

	section = "sendmmsg";
	tcp_pair(AF_INET, 1, &c, &s);
	if (send_zc(c, NULL, 0) != 1)
		die("send MSG_ZEROCOPY");
	CHECK(wait_pollerr(c), "POLLERR after MSG_ZEROCOPY send");
	memset(mm, 0, sizeof(mm));
	for (i = 0; i < 2; i++) {
		memset(ctl[i].buf, SENTINEL, sizeof(ctl[i].buf));
		cm = &ctl[i].align;
		cm->cmsg_len = CMSG_LEN(ELEM_SIZE);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_ZC_NOTIFICATION;
		iov[i].iov_base = &data[i];
		iov[i].iov_len = 1;
		mm[i].msg_hdr.msg_iov = &iov[i];
		mm[i].msg_hdr.msg_iovlen = 1;
		mm[i].msg_hdr.msg_control = ctl[i].buf;
		mm[i].msg_hdr.msg_controllen = sizeof(ctl[i].buf);
	}
	r = sendmmsg(c, mm, 2, 0);
	CHECK(r == 2, "sendmmsg sent both messages (ret %d)", r);
	memcpy(&elem, CMSG_DATA(&ctl[0].align), sizeof(elem));
	CHECK(ctl[0].align.cmsg_len == CMSG_LEN(ELEM_SIZE) &&
	      ctl[0].align.cmsg_type == SCM_ZC_NOTIFICATION &&
	      elem.lo == 0 && elem.hi == 0 && elem.zerocopy == 0,
	      "message 0's buffer got [0, 0] (got [%u, %u] zerocopy %u)",
	      elem.lo, elem.hi, elem.zerocopy);
	memcpy(&elem, CMSG_DATA(&ctl[1].align), sizeof(elem));
	CHECK(elem.zerocopy == SENTINEL,
	      "message 1's buffer untouched (queue was empty by then)");
	shutdown(c, SHUT_WR);
	r = 0;
	while ((i = read(s, sink, sizeof(sink))) > 0)
		r += i;
	CHECK(r == 3, "peer received 3 bytes (got %d)", r);
	close(c);
	close(s);
}

/* ---- UDP --------------------------------------------------------------- */

static int wait_so_error(int fd, int want)
{
	int i, err;

	for (i = 0; i < WAIT_MS / 10; i++) {
		err = so_error(fd);
		if (err == want)
			return 1;
		if (err)
			return 0;
		usleep(10000);
	}
	return 0;
}

/*
 * Records from three sends to a closed port: Z0 I0 Z1 I1 Z2 I2 (Z: zerocopy
 * completion, I: ICMP port unreachable). The ICMP records keep the
 * completions from being coalesced.
 */
static void test_udp_order(void)
{
	struct sockaddr_storage sink_addr, closed_addr;
	socklen_t sink_len, closed_len;
	struct sock_extended_err ee;
	struct harvest h;
	int u, sink, closed, k;
	char byte = 'h';
	ssize_t r;

	section = "udp4-order";
	sink = bound_socket(AF_INET, SOCK_DGRAM, &sink_addr, &sink_len);
	closed = bound_socket(AF_INET, SOCK_DGRAM, &closed_addr, &closed_len);
	close(closed);
	u = socket(AF_INET, SOCK_DGRAM, 0);
	if (u < 0)
		die("socket");
	set_int(u, SOL_SOCKET, SO_ZEROCOPY, 1, "SO_ZEROCOPY");
	set_int(u, SOL_IP, IP_RECVERR, 1, "IP_RECVERR");

	for (k = 0; k < 3; k++) {
		if (send_zc(u, &closed_addr, closed_len) != 1)
			die("sendto closed port");
		if (!wait_so_error(u, ECONNREFUSED)) {
			fail("no ICMP error for send %d to a closed port", k);
			return;
		}
	}
	pass("queued Z0 I0 Z1 I1 Z2 I2");

	/*
	 * Take two: Z0 and Z1. I0 becomes the head of the queue; as in v5,
	 * the harvest leaves sk_err alone (wait_so_error() cleared it), so
	 * the datagram of this very call is sent (recvmsg(MSG_ERRQUEUE)
	 * taking Z1 would have raised it: sock_dequeue_err_skb()).
	 */
	h = (struct harvest){ .n = 2, .data = &byte, .len = 1,
			      .to = &sink_addr, .tolen = sink_len };
	harvest(u, &h);
	check_elems(&h, 2, (const uint32_t[][2]){ { 0, 0 }, { 1, 1 } },
		    "n=2 takes the first two completions, skipping I0");
	CHECK(h.ret == 1, "the datagram was sent: the harvest did not raise sk_err again (ret %zd, %s)",
	      h.ret, strerror(h.err));
	CHECK(so_error(u) == 0, "SO_ERROR 0 after the harvest");
	CHECK(has_pollerr(u), "POLLERR while foreign records remain");

	/* I0 I1 Z2 I2 */
	CHECK(read_errqueue(u, &ee) == 0 && ee.ee_origin == SO_EE_ORIGIN_ICMP &&
	      ee.ee_errno == ECONNREFUSED, "recvmsg(MSG_ERRQUEUE) 1: I0");
	/* recvmsg itself raises I1's error: the head is an ICMP record */
	k = so_error(u);
	CHECK(k == ECONNREFUSED,
	      "recvmsg(MSG_ERRQUEUE) raised sk_err for I1, now the head (SO_ERROR %d)",
	      k);

	h = (struct harvest){ .n = 16, .data = &byte, .len = 1,
			      .to = &sink_addr, .tolen = sink_len };
	harvest(u, &h);
	check_elems(&h, 1, (const uint32_t[][2]){ { 2, 2 } },
		    "n=16 takes the remaining completion Z2 only, from behind I1");
	CHECK(h.ret == 1, "that datagram was sent too (ret %zd, %s)", h.ret,
	      strerror(h.err));
	CHECK(so_error(u) == 0, "SO_ERROR still 0");
	CHECK(read_errqueue(u, &ee) == 0 && ee.ee_origin == SO_EE_ORIGIN_ICMP,
	      "recvmsg(MSG_ERRQUEUE) 2: I1 (left in place, in order)");
	CHECK(read_errqueue(u, &ee) == 0 && ee.ee_origin == SO_EE_ORIGIN_ICMP,
	      "recvmsg(MSG_ERRQUEUE) 3: I2");
	CHECK(read_errqueue(u, &ee) < 0 && errno == EAGAIN,
	      "error queue empty");

	for (k = 0; k < 2; k++) {
		r = recv(sink, &byte, 1, MSG_DONTWAIT);
		CHECK(r == 1, "sink got datagram %d", k);
	}
	r = recv(sink, &byte, 1, MSG_DONTWAIT);
	CHECK(r < 0 && errno == EAGAIN, "and no other");
	close(u);
	close(sink);
}

/*
 * A UDP socket (SO_ZEROCOPY, IP_RECVERR) with Z0 I0 ... Z(k-1) I(k-1) in
 * its error queue, and a bound sink to send real datagrams to.
 */
static int udp_zc_icmp(int k, int *sink, struct sockaddr_storage *sink_addr,
		       socklen_t *sink_len)
{
	struct sockaddr_storage closed_addr;
	socklen_t closed_len;
	int u, closed, i;

	*sink = bound_socket(AF_INET, SOCK_DGRAM, sink_addr, sink_len);
	closed = bound_socket(AF_INET, SOCK_DGRAM, &closed_addr, &closed_len);
	close(closed);
	u = socket(AF_INET, SOCK_DGRAM, 0);
	if (u < 0)
		die("socket");
	set_int(u, SOL_SOCKET, SO_ZEROCOPY, 1, "SO_ZEROCOPY");
	set_int(u, SOL_IP, IP_RECVERR, 1, "IP_RECVERR");
	for (i = 0; i < k; i++) {
		if (send_zc(u, &closed_addr, closed_len) != 1)
			die("sendto closed port");
		if (!wait_so_error(u, ECONNREFUSED))
			die("no ICMP error for a send to a closed port");
	}
	return u;
}

static struct cmsghdr *put_hdr(char *at, size_t len, int level, int type)
{
	struct cmsghdr *cm = (struct cmsghdr *)at;

	cm->cmsg_len = len;
	cm->cmsg_level = level;
	cm->cmsg_type = type;
	return cm;
}

/*
 * Two SCM_ZC_NOTIFICATION cmsgs in one call, after an IP_TOS cmsg. As in
 * v5 (put_cmsg_user_tx() advances msg_control_user_tx), the first result
 * goes to the start of msg_control, over the IP_TOS cmsg, and the second
 * right after it: at CMSG_SPACE(12), which is where neither request was.
 */
static void test_two_cmsgs(void)
{
	union {
		char buf[256];
		struct cmsghdr align;
	} u, before;
	struct sockaddr_storage sink_addr;
	socklen_t sink_len;
	struct sock_extended_err ee;
	struct iovec iov;
	struct msghdr msg;
	struct zc_info_elem e[3];
	struct cmsghdr *cm;
	size_t off1 = CMSG_SPACE(ELEM_SIZE), end;
	char byte = '2';
	int fd, sink, tos = 0x28, ok;
	ssize_t r;

	section = "udp4-two-cmsgs";
	fd = udp_zc_icmp(3, &sink, &sink_addr, &sink_len);
	pass("queued Z0 I0 Z1 I1 Z2 I2");

	memset(u.buf, SENTINEL, sizeof(u.buf));
	cm = put_hdr(u.buf, CMSG_LEN(sizeof(int)), SOL_IP, IP_TOS);
	memcpy(CMSG_DATA(cm), &tos, sizeof(int));
	put_hdr(u.buf + CMSG_SPACE(sizeof(int)), CMSG_LEN(ELEM_SIZE),
		SOL_SOCKET, SCM_ZC_NOTIFICATION);
	put_hdr(u.buf + CMSG_SPACE(sizeof(int)) + CMSG_SPACE(ELEM_SIZE),
		CMSG_LEN(2 * ELEM_SIZE), SOL_SOCKET, SCM_ZC_NOTIFICATION);
	memcpy(before.buf, u.buf, sizeof(u.buf));
	iov = (struct iovec){ .iov_base = &byte, .iov_len = 1 };
	msg = (struct msghdr){
		.msg_name = &sink_addr, .msg_namelen = sink_len,
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = u.buf,
		.msg_controllen = CMSG_SPACE(sizeof(int)) +
				  CMSG_SPACE(ELEM_SIZE) +
				  CMSG_SPACE(2 * ELEM_SIZE),
	};
	r = sendmsg(fd, &msg, 0);
	CHECK(r == 1, "sendmsg with [IP_TOS, ZC n=1, ZC n=2] sends (ret %zd, %s)",
	      r, strerror(r < 0 ? errno : 0));

	cm = (struct cmsghdr *)u.buf;
	memcpy(&e[0], u.buf + CMSG_LEN(0), ELEM_SIZE);
	CHECK(cm->cmsg_len == CMSG_LEN(ELEM_SIZE) &&
	      cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_ZC_NOTIFICATION &&
	      e[0].lo == 0 && e[0].hi == 0,
	      "first result at offset 0: {CMSG_LEN(12), SOL_SOCKET, SCM_ZC_NOTIFICATION} [0, 0] (got len %zu, %d/%d, [%u, %u])",
	      (size_t)cm->cmsg_len, cm->cmsg_level, cm->cmsg_type, e[0].lo,
	      e[0].hi);
	cm = (struct cmsghdr *)(u.buf + off1);
	memcpy(&e[1], u.buf + off1 + CMSG_LEN(0), ELEM_SIZE);
	memcpy(&e[2], u.buf + off1 + CMSG_LEN(0) + ELEM_SIZE, ELEM_SIZE);
	ok = cm->cmsg_len == CMSG_LEN(2 * ELEM_SIZE) &&
	     cm->cmsg_level == SOL_SOCKET &&
	     cm->cmsg_type == SCM_ZC_NOTIFICATION && e[1].lo == 1 &&
	     e[1].hi == 1 && e[2].lo == 2 && e[2].hi == 2;
	CHECK(ok, "second result right after it, at CMSG_SPACE(12) = %zu: {CMSG_LEN(24), ...} [1, 1] [2, 2] (got len %zu, %d/%d, [%u, %u] [%u, %u])",
	      off1, (size_t)cm->cmsg_len, cm->cmsg_level, cm->cmsg_type,
	      e[1].lo, e[1].hi, e[2].lo, e[2].hi);
	end = off1 + CMSG_LEN(2 * ELEM_SIZE);
	CHECK(!memcmp(u.buf + end, before.buf + end, sizeof(u.buf) - end),
	      "nothing written after the second result");
	CHECK(read_errqueue(fd, &ee) == 0 && ee.ee_origin == SO_EE_ORIGIN_ICMP,
	      "the ICMP records stay queued: I0 at the head");
	CHECK(recv(sink, &byte, 1, MSG_DONTWAIT) == 1, "sink got the datagram");
	close(fd);
	close(sink);
}

/*
 * The write to the user's buffer fails (msg_control on a read-only page:
 * the kernel can read the request but not write the result). As in v5, the
 * records taken go back to the head of the error queue, in order, and the
 * call fails before sending: EINVAL from TCP, which maps every cmsg error
 * to EINVAL. UDP returns EFAULT; v5 returns +EFAULT there, which UDP takes
 * for success (see tests/kernel/README.md): not reproduced.
 */
static void test_efault(void)
{
	struct sockaddr_storage sink_addr;
	socklen_t sink_len;
	struct sock_extended_err ee;
	struct iovec iov;
	struct msghdr msg;
	char byte = 'f', *page;
	long pagesz = sysconf(_SC_PAGESIZE);
	int c, s, fd, sink;
	ssize_t r;

	section = "efault";
	page = mmap(NULL, pagesz, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (page == MAP_FAILED)
		die("mmap");

	/* TCP: one record [0, 0] */
	tcp_pair(AF_INET, 1, &c, &s);
	if (send_zc(c, NULL, 0) != 1)
		die("send MSG_ZEROCOPY");
	CHECK(wait_pollerr(c), "POLLERR after MSG_ZEROCOPY send");
	if (recv(s, &byte, 1, 0) != 1)	/* send_zc()'s byte */
		die("recv");
	memset(page, SENTINEL, pagesz);
	put_hdr(page, CMSG_LEN(2 * ELEM_SIZE), SOL_SOCKET, SCM_ZC_NOTIFICATION);
	if (mprotect(page, pagesz, PROT_READ))
		die("mprotect");
	iov = (struct iovec){ .iov_base = &byte, .iov_len = 1 };
	msg = (struct msghdr){ .msg_iov = &iov, .msg_iovlen = 1,
			       .msg_control = page,
			       .msg_controllen = CMSG_SPACE(2 * ELEM_SIZE) };
	r = sendmsg(c, &msg, MSG_DONTWAIT);
	CHECK(r < 0 && errno == EINVAL,
	      "TCP, read-only msg_control: EINVAL (ret %zd, %s)", r,
	      strerror(r < 0 ? errno : 0));
	CHECK(read_errqueue(c, &ee) == 0 && errqueue_is_zc(&ee, 0, 0),
	      "TCP: the record went back to the queue: [0, 0]");
	CHECK(recv(s, &byte, 1, MSG_DONTWAIT) < 0 && errno == EAGAIN,
	      "TCP: nothing was sent");
	close(c);
	close(s);

	/* UDP: Z0 I0 Z1 I1 */
	fd = udp_zc_icmp(2, &sink, &sink_addr, &sink_len);
	msg.msg_name = &sink_addr;
	msg.msg_namelen = sink_len;
	r = sendmsg(fd, &msg, 0);
	CHECK(r < 0 && errno == EFAULT,
	      "UDP, read-only msg_control: EFAULT (ret %zd, %s)", r,
	      strerror(r < 0 ? errno : 0));
	CHECK(so_error(fd) == 0, "UDP: SO_ERROR untouched (0)");
	CHECK(read_errqueue(fd, &ee) == 0 && errqueue_is_zc(&ee, 0, 0),
	      "UDP: Z0 back at the head");
	CHECK(read_errqueue(fd, &ee) == 0 && errqueue_is_zc(&ee, 1, 1),
	      "UDP: then Z1 (both put back at the head, ahead of I0, as v5 does)");
	CHECK(read_errqueue(fd, &ee) == 0 && ee.ee_origin == SO_EE_ORIGIN_ICMP,
	      "UDP: then I0");
	CHECK(read_errqueue(fd, &ee) == 0 && ee.ee_origin == SO_EE_ORIGIN_ICMP,
	      "UDP: then I1");
	CHECK(read_errqueue(fd, &ee) < 0 && errno == EAGAIN,
	      "UDP: then nothing");
	CHECK(recv(sink, &byte, 1, MSG_DONTWAIT) < 0 && errno == EAGAIN,
	      "UDP: nothing was sent");
	close(fd);
	close(sink);
	munmap(page, pagesz);
}

/* IP_TOS next to our cmsg is applied, whichever comes first. */
static void test_udp_cmsg(int extra_first)
{
	struct sockaddr_storage raddr;
	socklen_t rlen;
	struct harvest h;
	char byte = 't', control[256];
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = control,
		.msg_controllen = sizeof(control),
	};
	struct cmsghdr *cm;
	int u, r, tos = -1;

	section = extra_first ? "udp4-tos-first" : "udp4-tos-after";
	r = bound_socket(AF_INET, SOCK_DGRAM, &raddr, &rlen);
	set_int(r, SOL_IP, IP_RECVTOS, 1, "IP_RECVTOS");
	u = socket(AF_INET, SOCK_DGRAM, 0);
	if (u < 0)
		die("socket");
	set_int(u, SOL_SOCKET, SO_ZEROCOPY, 1, "SO_ZEROCOPY");
	if (send_zc(u, &raddr, rlen) != 1)
		die("sendto");
	CHECK(wait_pollerr(u), "POLLERR after MSG_ZEROCOPY send");
	if (recv(r, &byte, 1, 0) != 1)
		die("recv");

	h = (struct harvest){ .n = 1, .data = &byte, .len = 1,
			      .to = &raddr, .tolen = rlen,
			      .extra = 1, .extra_level = SOL_IP,
			      .extra_type = IP_TOS,
			      .extra_val = 0x28, .extra_first = extra_first };
	harvest(u, &h);
	CHECK(h.ret == 1, "send with IP_TOS %s the harvest (ret %zd, %s)",
	      extra_first ? "before" : "after", h.ret, strerror(h.err));
	check_elems(&h, 1, (const uint32_t[][2]){ { 0, 0 } },
		    "written at the start of msg_control");

	if (recvmsg(r, &msg, 0) != 1)
		die("recvmsg");
	for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm))
		if (cm->cmsg_level == SOL_IP && cm->cmsg_type == IP_TOS)
			tos = *(unsigned char *)CMSG_DATA(cm);
	CHECK(tos == 0x28, "receiver saw TOS 0x28 (got 0x%x)", tos);

	/* without SO_ZEROCOPY, over UDP the cmsg error is returned as is */
	set_int(u, SOL_SOCKET, SO_ZEROCOPY, 0, "SO_ZEROCOPY off");
	h = (struct harvest){ .n = 1, .data = &byte, .len = 1,
			      .to = &raddr, .tolen = rlen };
	harvest(u, &h);
	CHECK(h.ret < 0 && h.err == EINVAL && h.untouched,
	      "SO_ZEROCOPY off: EINVAL (ret %zd, %s)", h.ret,
	      strerror(h.err));
	close(u);
	close(r);
}

static void test_udp6(void)
{
	struct sockaddr_storage sink_addr;
	socklen_t sink_len;
	struct harvest h;
	char byte = '6';
	int u, sink, k;

	section = "udp6";
	sink = bound_socket(AF_INET6, SOCK_DGRAM, &sink_addr, &sink_len);
	u = socket(AF_INET6, SOCK_DGRAM, 0);
	if (u < 0)
		die("socket");
	set_int(u, SOL_SOCKET, SO_ZEROCOPY, 1, "SO_ZEROCOPY");
	if (send_zc(u, &sink_addr, sink_len) != 1)
		die("sendto");
	CHECK(wait_pollerr(u), "POLLERR after MSG_ZEROCOPY send");
	h = (struct harvest){ .n = 3, .data = &byte, .len = 1,
			      .to = &sink_addr, .tolen = sink_len };
	harvest(u, &h);
	CHECK(h.ret == 1, "harvest riding on a datagram (ret %zd, %s)", h.ret,
	      strerror(h.err));
	check_elems(&h, 1, (const uint32_t[][2]){ { 0, 0 } },
		    "ip6_datagram_send_ctl path");
	h = (struct harvest){ .n = 3, .cmsg_len = CMSG_LEN(25), .data = &byte,
			      .len = 1, .to = &sink_addr, .tolen = sink_len };
	harvest(u, &h);
	CHECK(h.ret < 0 && h.err == EINVAL && h.untouched,
	      "data length 25: EINVAL (ret %zd, %s)", h.ret, strerror(h.err));
	for (k = 0; k < 2; k++)
		CHECK(recv(sink, &byte, 1, MSG_DONTWAIT) == 1,
		      "sink got datagram %d", k);
	close(u);
	close(sink);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("abi_test: SCM_ZC_NOTIFICATION = %d, element size %zu\n",
	       SCM_ZC_NOTIFICATION, ELEM_SIZE);
	probe();
	test_tcp(AF_INET);
	test_tcp(AF_INET6);
	test_sendmmsg();
	test_udp_order();
	test_two_cmsgs();
	test_efault();
	test_udp_cmsg(0);
	test_udp_cmsg(1);
	test_udp6();
	if (failures) {
		printf("abi_test: %d check(s) FAILED\n", failures);
		return 1;
	}
	printf("abi_test: all checks passed\n");
	return 0;
}
