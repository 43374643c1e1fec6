// SPDX-License-Identifier: MIT
/*
 * The SCM_ZC_NOTIFICATION backend (proposed ABI, patch series v5; see
 * ABI.md section 2): the send side asks each k-th sendmsg to hand back up
 * to n completion records in its own control buffer, so a steady stream
 * needs one syscall per send. The ranges go to the reap side through a
 * second single-producer/single-consumer ring. When no send runs, the reap
 * side reads the error queue like the errqueue backend: the kernel hands
 * each record to exactly one of the two paths.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "backend_scm.h"

/*
 * The element parser: n elements written by the kernel at the start of
 * buf, or nothing (the sentinel survives). Returns the number of ranges
 * written to out (at most asked), 0 if the kernel wrote nothing, -1 if
 * what it wrote makes no sense. Separate from the send path so that it
 * can be fuzzed, and so that a later ABI variant (v7's struct zc_info)
 * is one more small parser.
 */
static inline int scm_parse(const unsigned char *buf, size_t len, int type,
			    unsigned int asked, struct zc_range *out)
{
	struct cmsghdr c;
	size_t dlen, n;

	if (len < CMSG_LEN(SCM_ELEM) || asked == 0)
		return -1;
	if (buf[CMSG_LEN(0) + offsetof(struct zc_info_elem, zerocopy)] ==
	    SCM_SENTINEL)
		return 0;
	memcpy(&c, buf, sizeof(c));
	/* 1 to asked elements, inside len (a cmsg_len below CMSG_LEN(0)
	 * wraps dlen to a huge value, refused with the rest). */
	dlen = c.cmsg_len - CMSG_LEN(0);
	if (c.cmsg_level != SOL_SOCKET || c.cmsg_type != type ||
	    dlen - SCM_ELEM > (size_t)(asked - 1) * SCM_ELEM ||
	    dlen > len - CMSG_LEN(0) || dlen % SCM_ELEM)
		return -1;
	n = dlen / SCM_ELEM;
	for (size_t i = 0; i < n; i++) {
		struct zc_info_elem e;

		/* Three bytes of tail padding may be garbage: read fields. */
		memcpy(&e, buf + CMSG_LEN(0) + i * SCM_ELEM, SCM_ELEM);
		if (e.zerocopy > 1)
			return -1;
		out[i].lo = e.lo;
		out[i].hi = e.hi;
		out[i].copied = !e.zerocopy;
	}
	return (int)n;
}

int zc__scm_parse(const unsigned char *buf, size_t len, int type,
		 unsigned int asked, struct zc_range *out)
{
	return scm_parse(buf, len, type, asked, out);
}

/* The header of our cmsg asking for n elements (zc_scm_take_one()'s
 * p->one for n 1). */
static void scm_header(unsigned char *buf, int type, unsigned int n)
{
	/* size_t in glibc, socklen_t (and padding) in musl */
	__typeof__(((struct cmsghdr *)0)->cmsg_len) len =
		CMSG_LEN(n * SCM_ELEM);
	int level = SOL_SOCKET;

	/* Field by field: a struct built on the stack cost a copy. */
	memcpy(buf + offsetof(struct cmsghdr, cmsg_len), &len, sizeof(len));
	memcpy(buf + offsetof(struct cmsghdr, cmsg_level), &level,
	       sizeof(level));
	memcpy(buf + offsetof(struct cmsghdr, cmsg_type), &type, sizeof(type));
}

/*
 * Our cmsg asking for n elements, with the sentinel preset. The kernel
 * (and valgrind) reads all of it: the bytes past the header must be
 * defined, as they are in a buffer from grow_ctrl() or a previous send.
 */
static size_t scm_prepare(unsigned char *buf, int type, unsigned int n)
{
	scm_header(buf, type, n);
	buf[CMSG_LEN(0) + offsetof(struct zc_info_elem, zerocopy)] =
		SCM_SENTINEL;
	return CMSG_SPACE(n * SCM_ELEM);
}

/* ---- detection by behaviour (ABI.md section 4) ---- */

static _Atomic int probe_state;		/* 0 unknown, 1 yes, 2 no */

#define PROBE_MS	2000	/* zc_open(3) promises no more */

/* Wait until fd reports events (0: POLLERR), or the deadline passes. */
static bool probe_wait(int fd, short events, int64_t deadline)
{
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = events };
		int64_t left = deadline - zc_now_ms();
		int r;

		if (left <= 0)
			return false;
		r = poll(&pfd, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r != 1)
			return false;
		return events ? (pfd.revents & events) != 0 :
				(pfd.revents & POLLERR) != 0;
	}
}

/*
 * A private loopback TCP pair: send one byte zero-copy, let the other end
 * read it (where loopback keeps the pages, the completion waits for
 * that), wait for the completion to be queued, then a zero-length sendmsg
 * carrying the cmsg must return 0 and write exactly one element {0, 0}
 * with a valid zerocopy byte, and leave the error queue empty. Anything
 * else: no. Every wait is non-blocking against one deadline: a loopback
 * that drops the handshake costs PROBE_MS, not TCP's connect timeout.
 * Returns 1 (yes), 0 (no), or -1 if the process is out of file
 * descriptors or memory: that answer is not cached.
 */
static int probe_run(int type)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	alignas(struct cmsghdr) unsigned char ctrl[CMSG_SPACE(SCM_ELEM)];
	struct msghdr m = { .msg_control = ctrl };
	int64_t deadline = zc_now_ms() + PROBE_MS;
	struct zc_range r;
	int l, c = -1, s = -1, one = 1, ok = 0, err = 0;
	socklen_t elen = sizeof(err);
	char byte = 'z';

	memset(ctrl, 0, sizeof(ctrl));	/* defined, for scm_prepare() */

	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (l < 0)
		goto out_sys;
	if (bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&a, &alen))
		goto out;
	c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (c < 0)
		goto out_sys;
	if (setsockopt(c, SOL_SOCKET, SO_ZEROCOPY, &one, sizeof(one)))
		goto out;
	if (connect(c, (struct sockaddr *)&a, sizeof(a)) &&
	    (errno != EINPROGRESS || !probe_wait(c, POLLOUT, deadline) ||
	     getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &elen) || err))
		goto out;
	if (!probe_wait(l, POLLIN, deadline))
		goto out;
	s = accept4(l, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (s < 0) {
		if (errno == EMFILE || errno == ENFILE || errno == ENOMEM)
			goto out_sys;
		goto out;
	}
	if (send(c, &byte, 1, MSG_ZEROCOPY | MSG_DONTWAIT) != 1 ||
	    !probe_wait(s, POLLIN, deadline) ||
	    recv(s, &byte, 1, MSG_DONTWAIT) != 1 ||
	    !probe_wait(c, 0, deadline))
		goto out;

	/* From here on the kernel gives the answer. */
	m.msg_controllen = scm_prepare(ctrl, type, 1);
	if (sendmsg(c, &m, MSG_DONTWAIT) != 0)
		goto out;
	if (zc__scm_parse(ctrl, sizeof(ctrl), type, 1, &r) != 1 ||
	    r.lo != 0 || r.hi != 0)
		goto out;
	/* The record was taken, not copied: the queue must be empty now. */
	m = (struct msghdr){ .msg_control = ctrl,
			     .msg_controllen = sizeof(ctrl) };
	ok = recvmsg(c, &m, MSG_ERRQUEUE | MSG_DONTWAIT) < 0 &&
	     errno == EAGAIN ? 1 : 0;
	goto out;
out_sys:
	if (errno == EMFILE || errno == ENFILE || errno == ENOMEM ||
	    errno == ENOBUFS)
		ok = -1;
out:
	if (s >= 0)
		close(s);
	if (c >= 0)
		close(c);
	if (l >= 0)
		close(l);
	return ok;
}

/* Reset the cached answer (unit tests). */
void zc__scm_probe_reset(void)
{
	atomic_store(&probe_state, 0);
}

/*
 * Is SCM_ZC_NOTIFICATION supported? Once per process; ZCNOTIFY_SCM_PROBE
 * (yes, no) forces the answer. Returns 1, 0, or -EINVAL for a bad value.
 */
int zc__scm_supported(int type)
{
	const char *env = getenv("ZCNOTIFY_SCM_PROBE");
	int st;

	if (env && *env && strcmp(env, "auto")) {
		if (!strcmp(env, "yes"))
			return 1;
		if (!strcmp(env, "no"))
			return 0;
		return zc__err(-EINVAL, "ZCNOTIFY_SCM_PROBE=\"%s\": want yes, "
			      "no or auto", env);
	}
	st = atomic_load_explicit(&probe_state, memory_order_acquire);
	if (!st) {
		/* Two threads may both probe: same answer, no harm. */
		int r = probe_run(type);

		if (r < 0)
			return 0;	/* out of fds or memory: ask again later */
		st = r ? 1 : 2;
		atomic_store_explicit(&probe_state, st, memory_order_release);
	}
	return st == 1;
}

/* The cmsg type: ZCNOTIFY_SCM_TYPE, else the build's default. */
int zc__scm_type(int *type)
{
	const char *env = getenv("ZCNOTIFY_SCM_TYPE");
	char *end;
	long v;

	*type = ZC_SCM_TYPE_DEFAULT;
	if (!env || !*env)
		return 0;
	errno = 0;
	v = strtol(env, &end, 0);
	if (errno || *end || v <= 0 || v > 0xffff)
		return zc__err(-EINVAL, "ZCNOTIFY_SCM_TYPE=\"%s\": want a cmsg "
			      "type number such as 78", env);
	*type = (int)v;
	return 0;
}

/* ---- the send side ---- */

static bool grow_ctrl(struct scm_priv *p, size_t need)
{
	unsigned char *n;

	if (need <= p->ctrl_cap)
		return true;
	n = realloc(p->ctrl, need);
	if (!n)
		return false;
	/*
	 * Defined bytes from the start: see scm_prepare(). Not zeros: the
	 * kernel shortens our cmsg to the elements it wrote and leaves
	 * msg_controllen as it was, and what follows is then walked as
	 * cmsgs by whatever reads the message after the call, such as
	 * the sanitizers' sendmsg() interceptors (read_msghdr_control()
	 * in compiler-rt, LLVM 14 and later), which step by cmsg_len and
	 * loop for ever on a cmsg_len of 0. Bytes of 0x01 read as a
	 * length past the buffer's end: the walk stops there.
	 */
	memset(n + p->ctrl_cap, SCM_FILL, need - p->ctrl_cap);
	if (!p->ctrl)	/* level and type, for zc_scm_prepare_kept() */
		scm_header(n, p->type, 1);
	p->ctrl = n;
	p->ctrl_cap = need;
	p->m.msg_control = n;
	return true;
}

/*
 * The kernel's answer to a send that asked for n elements, parsed as
 * scm_parse() does, straight into the range ring at t (zc_scm_want() left
 * room for n): returns the number of ranges (0: it wrote nothing), or -1
 * if what it wrote makes no sense.
 */
static inline int scm_take(struct scm_priv *p, unsigned int n, uint32_t t)
{
	const unsigned char *buf = p->ctrl;
	struct cmsghdr c;
	size_t dlen, k;
	uint32_t ids = 0;

	if (buf[CMSG_LEN(0) + offsetof(struct zc_info_elem, zerocopy)] ==
	    SCM_SENTINEL)
		return 0;
	memcpy(&c, buf, sizeof(c));
	if (c.cmsg_level != SOL_SOCKET || c.cmsg_type != p->type)
		return -1;
	/*
	 * 1 to n elements (a cmsg_len below CMSG_LEN(0) wraps dlen). One
	 * is the common answer: no division for it.
	 */
	dlen = c.cmsg_len - CMSG_LEN(0);
	if (dlen == SCM_ELEM) {
		k = 1;
	} else {
		if (dlen - SCM_ELEM > (size_t)(n - 1) * SCM_ELEM ||
		    dlen % SCM_ELEM)
			return -1;
		k = dlen / SCM_ELEM;
	}
	for (size_t i = 0; i < k; i++) {
		struct zc_range *r = &p->ranges[(t + i) & (SCM_RANGES - 1)];
		const unsigned char *e = buf + CMSG_LEN(0) + i * SCM_ELEM;
		uint32_t lo, hi;
		uint8_t zerocopy = e[offsetof(struct zc_info_elem, zerocopy)];

		/*
		 * Field by field: three bytes of tail padding may be
		 * garbage, and a copy of the whole element to the stack
		 * cost a store and loads more.
		 */
		if (zerocopy > 1) {
			p->ids_harvested += ids;	/* as they came */
			return -1;
		}
		memcpy(&lo, e + offsetof(struct zc_info_elem, lo), sizeof(lo));
		memcpy(&hi, e + offsetof(struct zc_info_elem, hi), sizeof(hi));
		r->lo = lo;
		r->hi = hi;
		r->copied = !zerocopy;
		ids += hi - lo + 1;
	}
	p->ids_harvested += ids;
	return (int)k;
}

/*
 * A send of the caller's msg that asks for n elements: our cmsg first
 * (the kernel writes its answer at the start of msg_control), the
 * caller's cmsgs after it, unchanged. Returns sendmsg()'s result, or 1
 * (with *res set) when it went without ours.
 */
static __attribute__((noinline)) ssize_t
scm_sendmsg_ctrl(struct zc_sock *zs, struct scm_priv *p,
		 const struct msghdr *msg, int flags, unsigned int n,
		 bool *without)
{
	struct msghdr m = *msg;		/* the caller's msghdr is not touched */
	size_t cctllen = msg->msg_control ? msg->msg_controllen : 0, ours;

	*without = false;
	/*
	 * More than the kernel takes, or a length with no buffer: its
	 * answer (ENOBUFS, EFAULT), no harvest, no copy. No memory for
	 * both: the caller's alone.
	 */
	if (cctllen > p->ctrl_max || (!msg->msg_control && msg->msg_controllen) ||
	    !grow_ctrl(p, CMSG_SPACE(SCM_INFO_MAX * SCM_ELEM) + cctllen)) {
		*without = true;
		return zc_sys_send(zs, &m, flags);
	}
	ours = scm_prepare(p->ctrl, p->type, n);
	if (cctllen)
		memcpy(p->ctrl + ours, msg->msg_control, cctllen);
	m.msg_control = p->ctrl;
	m.msg_controllen = ours + cctllen;
	return sendmsg(zs->fd, &m, flags);
}

/*
 * After a send that asked for n elements: take the kernel's answer into
 * the range ring and publish it. wake: no entry push follows (the send
 * failed, or sent nothing) to wake a reaper. Returns the number of ranges
 * (-1: nonsense, counted).
 */
static int scm_push(struct zc_sock *zs, struct scm_priv *p, unsigned int n,
		    bool wake)
{
	uint64_t t = atomic_load_explicit(&p->rtail, memory_order_relaxed);
	int k = scm_take(p, n, (uint32_t)t);

	/* Level and type of ours again, whatever the kernel wrote over it. */
	scm_header(p->ctrl, p->type, 1);
	/*
	 * Elements past the first back to grow_ctrl()'s bytes: a shorter
	 * answer later leaves them after its cmsg, where a range of ids
	 * near 0 would read as a cmsg_len of 0 (see grow_ctrl()). The
	 * first is never read so: the header before it says where the next
	 * cmsg is.
	 */
	if (__builtin_expect(k > 1 || k < 0, 0))
		memset(p->ctrl + CMSG_LEN(SCM_ELEM), SCM_FILL,
		       (n - 1) * SCM_ELEM);
	if (k > 0) {
		/*
		 * Release: pairs with the acquire of rtail in zc_scm_collect().
		 * Seq_cst, then a seq_cst load of waiting, as in zc_publish():
		 * when no entry push follows, we wake a reaper ourselves.
		 */
		atomic_store_explicit(&p->rtail, t + (uint64_t)k,
				      memory_order_seq_cst);
		if (wake && atomic_load_explicit(&zs->waiting,
						 memory_order_seq_cst))
			zc__wake_reaper(zs);
	} else if (k < 0) {
		ZC_STAT_INC(&zs->tx, bad_ranges);
	}
	return k;
}

/*
 * After a send that asked for n elements returned ret (sendmsg()'s: -1
 * with errno): take the kernel's answer, and send again without our cmsg
 * if the kernel refused it. msg NULL: the kept message (zc_send()).
 * Returns what the send returns: bytes or -errno.
 */
static ssize_t scm_sent(struct zc_sock *zs, const struct msghdr *msg,
			int flags, unsigned int n, ssize_t ret)
{
	struct scm_priv *p = zs->backend_priv;
	int k;

	if (ret < 0) {
		/* A send that succeeds is counted as a syscall (sys.h). */
		ZC_STAT_INC(&zs->tx, syscalls);
		ret = -errno;
	}

	/*
	 * In v5 the records are taken before the send can fail: read them
	 * whatever sendmsg returned.
	 */
	k = scm_push(zs, p, n, ret < 0);
	if (ret == -EINVAL && k <= 0 && zs->type == SOCK_DGRAM &&
	    (flags & MSG_ZEROCOPY)) {
		/*
		 * A zero-copy datagram: its EINVAL may also come after it
		 * used its id (the neighbour layer, ABI.md section 1), and
		 * the same send again would take a second one. The core
		 * settles the id and sends the data again by copy, without
		 * our cmsg (send_failed(), zc__scm_einval()).
		 */
		p->einval = true;
		return ret;
	}
	if (ret == -EINVAL && k <= 0) {
		/*
		 * EINVAL: our cmsg or the caller's? Send as the caller meant.
		 * If that works, the kernel refused ours (the probe passed, so
		 * a kernel that changed under us, or a socket that lost
		 * SO_ZEROCOPY): stop asking on this socket.
		 */
		if (msg) {
			ret = zc_sys_send(zs, msg, flags);
		} else {
			/* buf and len, kept in p->iov: fewer registers. */
			struct msghdr m = { .msg_iov = &p->iov,
					    .msg_iovlen = 1 };

			ret = zc_sys_send(zs, &m, flags);
		}
		if (ret != -EINVAL)
			atomic_store_explicit(&p->broken, true,
					      memory_order_relaxed);
	}
	return ret;
}

/*
 * scm_sent() for a send of the kept message whose answer
 * zc_scm_take_one() did not take, or that failed: the elements it asked
 * for, from the msg_controllen it set (CMSG_SPACE(n * SCM_ELEM): n is
 * its whole twelfths past the header).
 */
ssize_t zc__scm_sent(struct zc_sock *zs, int flags, ssize_t ret)
{
	struct scm_priv *p = zs->backend_priv;
	unsigned int n = (unsigned int)((p->m.msg_controllen - CMSG_LEN(0)) /
					SCM_ELEM);

	return scm_sent(zs, NULL, flags, n, ret);
}

/*
 * A send that asks for n (from zc_scm_want()) completion elements. msg
 * NULL: the message is the one buffer buf, len (zc_send()).
 */
ssize_t zc__scm_send(struct zc_sock *zs, const struct msghdr *msg,
		    const void *buf, size_t len, int flags, unsigned int n)
{
	struct scm_priv *p = zs->backend_priv;
	ssize_t ret;

	if (msg) {
		bool without;

		ret = scm_sendmsg_ctrl(zs, p, msg, flags, n, &without);
		if (without)
			return ret;
	} else {
		/* The first harvest: no memory, the send alone. */
		if (__builtin_expect(!p->ctrl, 0) &&
		    !grow_ctrl(p, CMSG_SPACE(SCM_INFO_MAX * SCM_ELEM))) {
			struct iovec iov = { .iov_base = (void *)buf,
					     .iov_len = len };
			struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };

			return zc_sys_send(zs, &m, flags);
		}
		/* The kept message (struct scm_priv): fewer stores a send. */
		p->iov.iov_base = (void *)buf;
		p->iov.iov_len = len;
		p->m.msg_controllen = scm_prepare(p->ctrl, p->type, n);
		ret = sendmsg(zs->fd, &p->m, flags);
	}
	return scm_sent(zs, msg, flags, n, ret);
}

/*
 * A zero-copy send over TCP failed with ENOBUFS: the socket's option
 * memory is full. Queued completions hold it until they are read (the
 * notification is the skb sock_omalloc() charged), and TCP fails before
 * it reads our cmsg, so the failed send took none. Take them now with a
 * send of no bytes (TCP sends nothing; v5 harvests in sock_cmsg_send(),
 * which a TCP send reaches whatever its length), so that the caller can
 * send zero-copy again (the raw pattern's read of the error queue, in
 * the send side's own way). Returns the number of ranges taken (0: none,
 * or not TCP, or no room in the range ring).
 */
int zc__scm_harvest_enobufs(struct zc_sock *zs)
{
	struct scm_priv *p = zs->backend_priv;
	struct msghdr m = { 0 };
	unsigned int n;
	uint32_t t;
	int k;

	if (zs->type != SOCK_STREAM ||
	    atomic_load_explicit(&p->broken, memory_order_relaxed) ||
	    (!p->ctrl && !grow_ctrl(p, CMSG_SPACE(SCM_INFO_MAX * SCM_ELEM))))
		return 0;
	/* Acquire: pairs with the release of rhead in zc_scm_collect(). */
	t = (uint32_t)atomic_load_explicit(&p->rtail, memory_order_relaxed);
	n = SCM_RANGES - (t - atomic_load_explicit(&p->rhead,
						   memory_order_acquire));
	if (!n)
		return 0;
	if (n > SCM_INFO_MAX)
		n = SCM_INFO_MAX;
	m.msg_control = p->ctrl;
	m.msg_controllen = scm_prepare(p->ctrl, p->type, n);
	ZC_STAT_INC(&zs->tx, syscalls);
	/*
	 * Whatever it returned: v5 takes the records before the send can
	 * fail (EPIPE, a connection shut meanwhile), as in scm_sent().
	 * Nothing taken (EINVAL before the cmsg, say): the sentinel stands.
	 */
	(void)sendmsg(zs->fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
	k = scm_push(zs, p, n, true);
	return k > 0 ? k : 0;
}

/*
 * send_failed(): did its zero-copy send's EINVAL come back with our cmsg
 * refused or the datagram dropped after its id (scm_sent())? Then its
 * copy goes without ours. Asks once.
 */
bool zc__scm_einval(struct zc_sock *zs)
{
	struct scm_priv *p = zs->backend_priv;
	bool e = p->einval;

	p->einval = false;
	return e;
}

/* send_failed(): that copy went; ours may be what the kernel refused. */
void zc__scm_refused(struct zc_sock *zs)
{
	struct scm_priv *p = zs->backend_priv;

	atomic_store_explicit(&p->broken, true, memory_order_relaxed);
}

/* ---- the reap side ---- */

static int scm_collect(struct zc_sock *zs, bool force)
{
	return zc_scm_collect(zs, force);
}

static int scm_setup(struct zc_sock *zs, const struct zc_opts *o)
{
	struct scm_priv *p;
	size_t ours = CMSG_SPACE(SCM_INFO_MAX * SCM_ELEM), max;

	p = malloc(sizeof(*p));
	if (!p)
		return zc__err(-ENOMEM, "zc_open: out of memory");
	memset(p, 0, sizeof(*p));
	p->type = zs->scm_type;
	/* The answer of one element: see zc_scm_take_one(). */
	scm_header(p->one, p->type, 1);
	p->m.msg_iov = &p->iov;
	p->m.msg_iovlen = 1;
	/*
	 * The control buffer comes with the first harvest (zc__scm_send()),
	 * for ours alone, and zc_sendmsg() grows it for the caller's: an
	 * idle socket does not hold it.
	 */
	max = zc__optmem_max();
	p->ctrl_max = max > ours ? max - ours : 0;
	p->harvest_every = o->harvest_every;
	if (!p->harvest_every)
		p->harvest_every = zs->type == SOCK_DGRAM ?
			ZC_DEFAULT_HARVEST_UDP : ZC_DEFAULT_HARVEST_TCP;
	p->tick = p->harvest_every;
	zs->backend_priv = p;
	return 0;
}

static void scm_teardown(struct zc_sock *zs)
{
	struct scm_priv *p = zs->backend_priv;

	if (!p)
		return;
	free(p->ctrl);
	free(p);
	zs->backend_priv = NULL;
}

const struct zc_ops zc__ops_scm = {
	.id = ZC_BACKEND_SCM,
	.zerocopy = true,
	.kernel_ids = true,
	.send = NULL,		/* the core calls zc_scm_want(), zc__scm_send() */
	.collect = scm_collect,
	.setup = scm_setup,
	.teardown = scm_teardown,
};
