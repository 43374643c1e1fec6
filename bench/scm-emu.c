// SPDX-License-Identifier: MIT
/*
 * scm-emu: SCM_ZC_NOTIFICATION (v5, ABI.md section 2) emulated over the
 * error queue, preloaded, so that zcbench's raw-scm (and the library's
 * scm backend) can run on a kernel without the patch: the smoke test's
 * only way to execute raw-scm's loop outside the kernel rig. Not
 * installed; test use only.
 *
 *   LD_PRELOAD=build/bench/libscm-emu.so zcbench -m raw-scm ...
 *
 * A sendmsg(2) whose first cmsg is {SOL_SOCKET, the type (78, or
 * ZCNOTIFY_SCM_TYPE)} is checked as v5 checks it (EINVAL: no SO_ZEROCOPY,
 * a length not a multiple of 12, 0 or more than 16 elements); then up to
 * n records are taken from the error queue with recvmsg(MSG_ERRQUEUE),
 * written as a fresh cmsg header and elements at the start of msg_control
 * (nothing when there were none), and the call goes on without that cmsg.
 * Unlike the kernel it cannot leave a record that is not a zero-copy
 * completion queued: it aborts on one (zcbench over loopback makes none).
 * Timing under it means nothing: each harvest costs real syscalls.
 * At exit it prints how many records it handed over, on stderr.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <time.h>	/* struct timespec, for linux/errqueue.h */
#include <dlfcn.h>
#include <errno.h>
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#ifndef SO_ZEROCOPY
#define SO_ZEROCOPY		60
#endif
#ifndef SO_EE_ORIGIN_ZEROCOPY
#define SO_EE_ORIGIN_ZEROCOPY	5
#endif
#ifndef SO_EE_CODE_ZEROCOPY_COPIED
#define SO_EE_CODE_ZEROCOPY_COPIED 1
#endif
#ifndef ZC_SCM_TYPE_DEFAULT
#define ZC_SCM_TYPE_DEFAULT	78
#endif

#define ELEM	12
#define MAXN	16

static _Atomic unsigned long calls, records;

static int emu_type(void)
{
	const char *env = getenv("ZCNOTIFY_SCM_TYPE");

	return env && *env ? (int)strtol(env, NULL, 0) : ZC_SCM_TYPE_DEFAULT;
}

/* One zero-copy completion off the error queue: 1, 0 if none, -1. */
static int take(int fd, uint32_t *lo, uint32_t *hi, uint8_t *zerocopy)
{
	alignas(struct cmsghdr) char ctl[CMSG_SPACE(sizeof(struct
					sock_extended_err)) + 64];
	struct msghdr m = { .msg_control = ctl, .msg_controllen = sizeof(ctl) };
	struct sock_extended_err ee;
	struct cmsghdr *cm;

	if (recvmsg(fd, &m, MSG_ERRQUEUE | MSG_DONTWAIT) < 0)
		return errno == EAGAIN ? 0 : -1;
	cm = CMSG_FIRSTHDR(&m);
	if (!cm || !((cm->cmsg_level == SOL_IP && cm->cmsg_type == IP_RECVERR) ||
		     (cm->cmsg_level == SOL_IPV6 &&
		      cm->cmsg_type == IPV6_RECVERR))) {
		fprintf(stderr, "scm-emu: an error-queue record without "
			"IP_RECVERR\n");
		abort();
	}
	memcpy(&ee, CMSG_DATA(cm), sizeof(ee));
	if (ee.ee_errno || ee.ee_origin != SO_EE_ORIGIN_ZEROCOPY) {
		fprintf(stderr, "scm-emu: a record that is not a zero-copy "
			"completion (errno %u, origin %u): cannot requeue it\n",
			ee.ee_errno, ee.ee_origin);
		abort();
	}
	*lo = ee.ee_info;
	*hi = ee.ee_data;
	*zerocopy = !(ee.ee_code & SO_EE_CODE_ZEROCOPY_COPIED);
	return 1;
}

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	static ssize_t (*real)(int, const struct msghdr *, int);
	unsigned char *ctl = msg->msg_control;
	struct msghdr rest = *msg;
	struct cmsghdr c;
	size_t dlen, n, i;
	int zc = 0;
	socklen_t zl = sizeof(zc);

	if (!real)
		real = (ssize_t (*)(int, const struct msghdr *, int))
			dlsym(RTLD_NEXT, "sendmsg");
	if (!ctl || msg->msg_controllen < CMSG_LEN(0))
		return real(fd, msg, flags);
	memcpy(&c, ctl, sizeof(c));
	if (c.cmsg_level != SOL_SOCKET || c.cmsg_type != emu_type())
		return real(fd, msg, flags);
	dlen = c.cmsg_len >= CMSG_LEN(0) ? c.cmsg_len - CMSG_LEN(0) : 1;
	n = dlen / ELEM;
	if (dlen % ELEM || n == 0 || n > MAXN ||
	    c.cmsg_len > msg->msg_controllen ||
	    getsockopt(fd, SOL_SOCKET, SO_ZEROCOPY, &zc, &zl) || !zc) {
		errno = EINVAL;
		return -1;
	}
	/* Before the send, as v5 does: taken even if the send fails. */
	for (i = 0; i < n; i++) {
		uint32_t lo, hi;
		uint8_t zerocopy;
		unsigned char *e = ctl + CMSG_LEN(0) + i * ELEM;
		int r = take(fd, &lo, &hi, &zerocopy);

		if (r < 0)
			return -1;
		if (r == 0)
			break;
		memcpy(e, &lo, 4);
		memcpy(e + 4, &hi, 4);
		e[8] = zerocopy;
	}
	calls++;
	if (i) {
		c.cmsg_len = CMSG_LEN(i * ELEM);
		memcpy(ctl, &c, sizeof(c));
		records += i;
	}
	/* The rest of the control, if any, goes on. */
	rest.msg_control = ctl + CMSG_SPACE(n * ELEM);
	rest.msg_controllen = msg->msg_controllen > CMSG_SPACE(n * ELEM) ?
			      msg->msg_controllen - CMSG_SPACE(n * ELEM) : 0;
	if (!rest.msg_controllen)
		rest.msg_control = NULL;
	return real(fd, &rest, flags);
}

__attribute__((destructor)) static void report(void)
{
	if (calls)
		fprintf(stderr, "scm-emu: %lu records handed over in %lu "
			"calls\n", (unsigned long)records,
			(unsigned long)calls);
}
