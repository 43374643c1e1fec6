// SPDX-License-Identifier: MIT
/*
 * Public entry points: open/close, the send path, reaping and waiting.
 * The top floor (internal.h): a send goes down from here to a backend or
 * straight to sys.c, a reap to the error queue, a backend and the ring;
 * nothing below calls back up. ctx.c, beside it, calls in for a member.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <assert.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "backend_scm.h"
#include "errqueue.h"

static_assert(sizeof(struct zc_entry) == sizeof(struct zc_completion) &&
	      offsetof(struct zc_entry, bytes) ==
	      offsetof(struct zc_completion, bytes) &&
	      offsetof(struct zc_entry, flags) ==
	      offsetof(struct zc_completion, flags),
	      "zc_ring_reap() copies a struct zc_entry out as it is");
static_assert(offsetof(struct zc_stats, enobufs_waited) + sizeof(uint64_t) ==
	      sizeof(struct zc_stats),
	      "zc_get_stats() fills every field of struct zc_stats");

/*
 * The same pointer, as far as the compiler knows a new one: addresses of
 * its fields are computed again from it, not kept in registers across a
 * syscall (gcc kept &zs->tail in one more callee-saved register).
 */
#define ZC_OPAQUE(p)	__asm__("" : "+r"(p))

ZC_EXPORT const char *zc_backend_name(int backend)
{
	static const char *const names[] = {
		[ZC_BACKEND_AUTO] = "auto",
		[ZC_BACKEND_ERRQUEUE] = "errqueue",
		[ZC_BACKEND_SCM] = "scm",
		[ZC_BACKEND_URING] = "uring",
		[ZC_BACKEND_COPY] = "copy",
	};

	if (backend < 0 || backend >= (int)(sizeof(names) / sizeof(names[0])))
		return NULL;
	return names[backend];
}

/*
 * The part of struct zc_opts this library knows: up to the end of its last
 * field, not its tail padding, so that a field a later version puts there
 * is told apart from an old caller's garbage (libbpf's OPTS_VALID checks up
 * to offsetofend of the last field too).
 */
#define ZC_OPTS_KNOWN	(offsetof(struct zc_opts, tag) + \
			 sizeof(((struct zc_opts *)0)->tag))

/*
 * Options struct that can grow (libbpf's OPTS_VALID): a short struct reads
 * as zeros; non-zero bytes past the part this version knows are -E2BIG.
 */
int zc__opts_copy(const void *opts, void *dst, size_t known,
		  const char *what)
{
	size_t sz;

	memset(dst, 0, known);
	if (!opts)
		return 0;
	memcpy(&sz, opts, sizeof(sz));
	if (sz < sizeof(size_t))
		return zc__err(-EINVAL, "%s: sz is %zu, must be sizeof(struct %s)",
			      what, sz, what);
	for (size_t i = known; i < sz; i++)
		if (((const unsigned char *)opts)[i])
			return zc__err(-E2BIG, "%s: non-zero byte at offset %zu, "
				      "past the %zu bytes this libzcnotify knows",
				      what, i, known);
	memcpy(dst, opts, sz < known ? sz : known);
	return 0;
}

static int parse_backend(const char *s)
{
	for (int b = ZC_BACKEND_AUTO; b <= ZC_BACKEND_COPY; b++)
		if (!strcmp(s, zc_backend_name(b)))
			return b;
	return -1;
}

/* The caller's backend, unless ZCNOTIFY_BACKEND overrides it. */
static int choose_backend(int asked, int *backend)
{
	const char *env = getenv("ZCNOTIFY_BACKEND");

	if (env && *env) {
		int b = parse_backend(env);

		if (b < 0)
			return zc__err(-EINVAL, "ZCNOTIFY_BACKEND=\"%s\": want one "
				      "of auto, errqueue, scm, uring, copy", env);
		*backend = b;
		return 0;
	}
	if (asked < ZC_BACKEND_AUTO || asked > ZC_BACKEND_COPY)
		return zc__err(-EINVAL, "zc_opts.backend %d is not a "
			      "ZC_BACKEND_* value", asked);
	*backend = asked;
	return 0;
}

/*
 * Enable SO_ZEROCOPY. Returns 0, 1 if this socket cannot do zero-copy, or
 * -errno.
 */
static int enable_zerocopy(int fd, int family, int type)
{
	int one = 1, on = 0;
	socklen_t len = sizeof(on);

	if ((family != AF_INET && family != AF_INET6) ||
	    (type != SOCK_STREAM && type != SOCK_DGRAM))
		return 1;
	/* Already on (set by the caller, or inherited from a listener):
	 * old kernels refuse to set it again once connected. */
	if (!getsockopt(fd, SOL_SOCKET, SO_ZEROCOPY, &on, &len) && on)
		return 0;
	if (!setsockopt(fd, SOL_SOCKET, SO_ZEROCOPY, &one, sizeof(one)))
		return 0;
	/* 524 is the kernel's ENOTSUPP: UDP on kernels before 5.0. */
	if (errno == EOPNOTSUPP || errno == ENOPROTOOPT || errno == 524)
		return 1;
	if (errno == EBUSY)
		return zc__err(-EBUSY, "SO_ZEROCOPY: this kernel accepts it only "
			      "before connect(); call zc_open() before "
			      "connecting, or set SO_ZEROCOPY on the listening "
			      "socket so that accepted sockets inherit it");
	return zc__err(-errno, "setsockopt(SO_ZEROCOPY): %s", strerror(errno));
}

static int sock_int(int fd, int opt, int *val, const char *name)
{
	socklen_t len = sizeof(*val);

	if (getsockopt(fd, SOL_SOCKET, opt, val, &len))
		return zc__err(-errno, "getsockopt(%s): %s", name,
			      strerror(errno));
	return 0;
}

/* zc_send() past its argument checks: tx_send (below). */
static ssize_t send_one_scm(struct zc_sock *zs, const void *buf, size_t len,
			    int flags, uint64_t cookie);
static ssize_t send_one_plain(struct zc_sock *zs, const void *buf,
			      size_t len, int flags, uint64_t cookie);
static ssize_t send_one_general(struct zc_sock *zs, const void *buf,
				size_t len, int flags, uint64_t cookie);

/* Send side: tx_send, after each change of tx_general. */
static void tx_choose(struct zc_sock *zs)
{
	zs->tx_send = zs->tx_general ? send_one_general :
		      zs->tx_scm ? send_one_scm : send_one_plain;
}

/* zc_completions() of each backend past its rare checks (below). */
static int completions_eq(struct zc_sock *zs, struct zc_completion *out,
			  unsigned int max);
static int completions_scm(struct zc_sock *zs, struct zc_completion *out,
			   unsigned int max);
static int completions_ops(struct zc_sock *zs, struct zc_completion *out,
			   unsigned int max);
static int completions_ready(struct zc_sock *zs, struct zc_completion *out,
			     unsigned int max);
static int completions_refused(struct zc_sock *zs, struct zc_completion *out,
			       unsigned int max);

/* zc_open() of ZC_BACKEND_SCM where it is not supported: who said so. */
static int scm_refused(int scm_type)
{
	const char *env = getenv("ZCNOTIFY_SCM_PROBE");

	if (env && !strcmp(env, "no"))
		return zc__err(-EOPNOTSUPP, "zc_open: ZCNOTIFY_SCM_PROBE=no: "
			      "SCM_ZC_NOTIFICATION taken as not supported");
	return zc__err(-EOPNOTSUPP, "zc_open: this kernel does not support "
		      "SCM_ZC_NOTIFICATION (probed with cmsg type %d)",
		      scm_type);
}

ZC_EXPORT int zc_open(int fd, const struct zc_opts *opts, struct zc_sock **out)
{
	struct zc_opts o;
	struct zc_sock *zs;
	struct stat st;
	int backend = ZC_BACKEND_AUTO, family, type, listening = 0, ret;
	int scm_type;
	size_t sz;

	if (!out)
		return zc__err(-EINVAL, "zc_open: out is NULL");
	*out = NULL;
	ret = zc__opts_copy(opts, &o, ZC_OPTS_KNOWN, "zc_opts");
	if (ret)
		return ret;
	ret = choose_backend(o.backend, &backend);
	if (ret)
		return ret;
	if (o.max_inflight == 0)
		o.max_inflight = ZC_DEFAULT_MAX_INFLIGHT;
	if (o.max_inflight & (o.max_inflight - 1) ||
	    o.max_inflight > ZC_MAX_MAX_INFLIGHT)
		return zc__err(-EINVAL, "zc_opts.max_inflight %u: want a power "
			      "of two up to %u", o.max_inflight,
			      ZC_MAX_MAX_INFLIGHT);
	if (o.copy_below == 0)
		o.copy_below = ZC_DEFAULT_COPY_BELOW;
	if (o.flags & ~ZC_OPT_NO_ADAPT)
		return zc__err(-EINVAL, "zc_opts.flags 0x%x: unknown bits",
			      o.flags & ~ZC_OPT_NO_ADAPT);

	if (fstat(fd, &st))
		return zc__err(-errno, "zc_open: fd %d: %s", fd, strerror(errno));
	if (!S_ISSOCK(st.st_mode))
		return zc__err(-ENOTSOCK, "zc_open: fd %d is not a socket", fd);
	if ((ret = sock_int(fd, SO_DOMAIN, &family, "SO_DOMAIN")) ||
	    (ret = sock_int(fd, SO_TYPE, &type, "SO_TYPE")))
		return ret;
	if (type == SOCK_STREAM &&
	    (ret = sock_int(fd, SO_ACCEPTCONN, &listening, "SO_ACCEPTCONN")))
		return ret;
	if (listening)
		return zc__err(-EINVAL, "zc_open: fd %d is a listening socket; "
			      "wrap the sockets accept() returns", fd);

	if (backend != ZC_BACKEND_COPY) {
		ret = enable_zerocopy(fd, family, type);
		if (ret < 0)
			return ret;
		if (ret == 1 && backend != ZC_BACKEND_AUTO)
			return zc__err(-EOPNOTSUPP, "zc_open: fd %d cannot send "
				      "zero-copy (only TCP and UDP over IPv4 "
				      "and IPv6 can)", fd);
		if (ret == 1)
			backend = ZC_BACKEND_COPY;
	}
	if ((ret = zc__scm_type(&scm_type)))
		return ret;
	if (backend == ZC_BACKEND_AUTO || backend == ZC_BACKEND_SCM) {
		ret = zc__scm_supported(scm_type);
		if (ret < 0)
			return ret;
		if (!ret && backend == ZC_BACKEND_SCM)
			return scm_refused(scm_type);
		if (backend == ZC_BACKEND_AUTO)
			backend = ret ? ZC_BACKEND_SCM : ZC_BACKEND_ERRQUEUE;
	}
#ifndef ZC_HAVE_URING
	if (backend == ZC_BACKEND_URING)
		return zc__err(-EOPNOTSUPP, "zc_open: backend \"uring\" is not "
			      "available: this libzcnotify was built without "
			      "liburing");
#endif

	sz = (sizeof(*zs) + ZC_CACHELINE - 1) & ~(size_t)(ZC_CACHELINE - 1);
	zs = aligned_alloc(ZC_CACHELINE, sz);
	if (!zs)
		return zc__err(-ENOMEM, "zc_open: out of memory");
	memset(zs, 0, sizeof(*zs));
	zs->fd = fd;
	zs->ino = st.st_ino;
	zs->family = family;
	zs->type = type;
	zs->mask = o.max_inflight - 1;
	zs->tx_room_end = o.max_inflight;	/* head 0 */
	zs->tx_room = o.max_inflight;
	zs->opt_flags = o.flags;
	zs->scm_type = scm_type;
	zs->ops = backend == ZC_BACKEND_COPY ? &zc__ops_copy :
		  backend == ZC_BACKEND_SCM ? &zc__ops_scm : &zc__ops_errqueue;
#ifdef ZC_HAVE_URING
	if (backend == ZC_BACKEND_URING)
		zs->ops = &zc__ops_uring;
#endif
	zs->copy_below = zs->ops->zerocopy ? o.copy_below : SIZE_MAX;
	zs->tx_scm = zs->ops == &zc__ops_scm;
	zs->tx_direct = zs->ops == &zc__ops_errqueue || zs->tx_scm ||
			zs->ops == &zc__ops_copy;
	zs->tx_general = !zs->tx_direct;
	tx_choose(zs);
	/*
	 * The copy backend's sends are complete when published: no test
	 * of whether the oldest waits, completions_ready() takes every case.
	 */
	zs->rx_reap = zs->ops == &zc__ops_errqueue ? completions_eq :
		      zs->tx_scm ? completions_scm :
		      zs->ops == &zc__ops_copy ? completions_ready :
		      completions_ops;
	zs->adapt_at = o.flags & ZC_OPT_NO_ADAPT ? UINT32_MAX :
		       ZC_ADAPT_THRESHOLD;
	atomic_init(&zs->efd, -1);
	/* The ring's first chunk; the others come with the sends (ring.c). */
	ret = zc__ring_init(zs);
	if (ret)
		ret = zc__err(ret, "zc_open: out of memory");
	else if (zs->ops->setup)
		ret = zs->ops->setup(zs, &o);	/* sets zc_last_error() */
	if (!ret && o.ctx) {
		/* zc__wake_reaper()'s way up to ctx.c: see struct zc_member. */
		zs->ctxm.wake = zc__ctx_wake;
		/* A member is reaped by its context's reaper alone. */
		zs->rx_reap = completions_refused;
		ret = zc__ctx_join(o.ctx, zs, o.tag);	/* last: may fail */
	}
	if (ret) {
		zc_close(zs);
		return ret;
	}
	*out = zs;
	return 0;
}

ZC_EXPORT void zc_close(struct zc_sock *zs)
{
	int efd;

	if (!zs)
		return;
	if (zs->ctx)	/* first: out of its epoll set before the fd goes */
		zc__ctx_leave(zs);
	if (zs->ops && zs->ops->teardown)
		zs->ops->teardown(zs);
	efd = atomic_load_explicit(&zs->efd, memory_order_relaxed);
	if (efd >= 0)
		close(efd);
	zc__ring_free(zs);
	free(zs->done);
	free(zs->foreign);
	free(zs->eqh);
	free(zs);
}

/* zc_send()'s buffer to a backend's own send, or past 1 GiB: a msghdr. */
static __attribute__((noinline)) ssize_t
send_buf(struct zc_sock *zs, const void *buf, size_t len, int flags)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (zs->ops->send)
		return zs->ops->send(zs, &msg, flags);
	return zc_sys_send(zs, &msg, flags);
}

/*
 * send(2) of one buffer, zc_sys_send()'s choice made here (its count
 * too: a failed call only; a successful one is derived from the send
 * counts). Returns bytes or -errno.
 */
static inline __attribute__((always_inline)) ssize_t
send_plain(struct zc_sock *zs, const void *buf, size_t len, int flags)
{
	ssize_t ret;

	if (len > (1u << 30))
		return send_buf(zs, buf, len, flags);
	ret = send(zs->fd, buf, len, flags);
	if (__builtin_expect(ret < 0, 0)) {
		ZC_STAT_INC(&zs->tx, syscalls);
		return -errno;
	}
	return ret;
}

/*
 * send_one()'s syscall: the backend's send is the syscall itself, with
 * SCM's cmsg when zc_scm_want() asks for one. Returns bytes or -errno.
 * amb_clear: the caller knows amb_local is false.
 */
static inline __attribute__((always_inline)) ssize_t
direct_send_as(struct zc_sock *zs, const struct msghdr *msg, const void *buf,
	       size_t len, int flags, bool amb_clear, bool scm_off)
{
	unsigned int n;

	if (!scm_off && zs->tx_scm && (n = zc_scm_want_as(zs, amb_clear)) != 0)
		return zc__scm_send(zs, msg, buf, len, flags, n);
	if (msg)
		return zc_sys_send(zs, msg, flags);
	return send_plain(zs, buf, len, flags);
}

static inline __attribute__((always_inline)) ssize_t
direct_send(struct zc_sock *zs, const struct msghdr *msg, const void *buf,
	    size_t len, int flags)
{
	return direct_send_as(zs, msg, buf, len, flags, false, false);
}

/*
 * A backend's send (uring: ops->send), or the syscall (direct_send()).
 * msg NULL: the message is the one buffer buf, len (zc_send()).
 */
static inline __attribute__((always_inline)) ssize_t
backend_send(struct zc_sock *zs, const struct msghdr *msg, const void *buf,
	     size_t len, int flags)
{
	if (!zs->tx_direct) {
		if (msg)
			return zs->ops->send(zs, msg, flags);
		return send_buf(zs, buf, len, flags);
	}
	return direct_send(zs, msg, buf, len, flags);
}

enum zc_choice { ZC_CHOOSE_ZC, ZC_CHOOSE_COPY, ZC_CHOOSE_ADAPT };

/* Send side: zero-copy for this send, or copy? */
static inline enum zc_choice want_zerocopy(struct zc_sock *zs, size_t len)
{
	uint32_t streak;

	/* Also a backend that cannot (copy_below SIZE_MAX), and len 0. */
	if (len < zs->copy_below || zs->amb_local)
		return ZC_CHOOSE_COPY;
	/* Relaxed: a hint from the reap side (zc_feed_streak()). */
	streak = atomic_load_explicit(&zs->copied_streak, memory_order_relaxed);
	if (streak < zs->adapt_at)	/* UINT32_MAX: ZC_OPT_NO_ADAPT */
		return ZC_CHOOSE_ZC;
	/* The kernel keeps copying: copy too, but try again now and then. */
	if ((zs->adapt_tick + 1) % ZC_ADAPT_RETRY == 0)
		return ZC_CHOOSE_ZC;
	return ZC_CHOOSE_ADAPT;
}

/*
 * Did a UDP socket ask for IP_RECVERR (or IPV6_RECVERR)? Only then does
 * the kernel return the ENOBUFS of a qdisc drop, after the send used its
 * id; without it that ENOBUFS is turned into success, and ENOBUFS means
 * option memory or RLIMIT_MEMLOCK, before any id was taken.
 */
static bool recverr_set(struct zc_sock *zs)
{
	int on = 0;
	socklen_t len = sizeof(on);

	if (!getsockopt(zs->fd, SOL_IP, IP_RECVERR, &on, &len) && on)
		return true;
	len = sizeof(on);
	return zs->family == AF_INET6 &&
	       !getsockopt(zs->fd, SOL_IPV6, IPV6_RECVERR, &on, &len) && on;
}

/*
 * May a zero-copy send that failed with err have used up its kernel id?
 * (ABI.md section 1, read in linux-source-6.1.) TCP gives the id back
 * whenever a call sends nothing (net_zcopy_put_abort() in
 * tcp_sendmsg_locked()). UDP takes it when __ip_append_data() builds the
 * skb, and keeps it if the skb is dropped after that: netfilter (EPERM),
 * the qdisc (ENOBUFS, with IP_RECVERR), udp_send_skb()'s GSO checks
 * (EMSGSIZE, EINVAL, EIO), the neighbour layer (EINVAL), a device that is
 * down (ENETDOWN), a cgroup egress program (EPERM); errors before the skb
 * (routing, EMSGSIZE, EAGAIN, EFAULT, option memory, a pending ICMP
 * error) give it back. The errno alone cannot tell, except for a few
 * that only come before (below), and ENOBUFS without IP_RECVERR, which
 * only option memory or RLIMIT_MEMLOCK return. The reap side settles the
 * rest from the error queue: a dropped skb queued its record before
 * sendmsg() returned (amb_resolve()).
 */
static bool failed_send_may_use_id(struct zc_sock *zs, ssize_t err)
{
	if (!zs->ops->kernel_ids || zs->type != SOCK_DGRAM)
		return false;
	switch (err) {
	case -EAGAIN:		/* sock_alloc_send_skb() */
	case -EDESTADDRREQ:	/* udp_sendmsg()'s address checks */
	case -ENOTCONN:
	case -EAFNOSUPPORT:
		return false;
	case -ENOBUFS:
		return recverr_set(zs);
	default:
		return true;
	}
}

/* Send side: has the reap side settled a failed send's id? */
static void amb_poll(struct zc_sock *zs)
{
	/* Acquire: pairs with the release in amb_resolve(). */
	int st = atomic_load_explicit(&zs->amb, memory_order_acquire);

	if (st == ZC_AMB_PENDING)
		return;
	if (st == ZC_AMB_TAKEN)
		zs->zc_next++;		/* its entry waits for that id */
	else	/* not used: the window shrinks back */
		atomic_store_explicit(&zs->zc_issued, zs->zc_next,
				      memory_order_release);
	atomic_store_explicit(&zs->amb, ZC_AMB_NONE, memory_order_relaxed);
	zs->amb_local = false;
	zs->tx_general = !zs->tx_direct;
	tx_choose(zs);
}

/*
 * Send side: the entry of slot t, published, may hold the id zc_next that
 * a failed send may have used: ask the reap side to settle it. Only after
 * the entry is published: amb_resolve() writes its flags, and before that
 * the send side still did (on 622c97f the reap side could clear PENDING
 * of an entry not yet written, and the send side then set it again,
 * leaving the ids of the entries after it one off).
 */
static void amb_publish(struct zc_sock *zs, uint32_t t)
{
	atomic_store_explicit(&zs->amb_slot, t, memory_order_relaxed);
	atomic_store_explicit(&zs->amb_id, zs->zc_next, memory_order_relaxed);
	/* Release: pairs with the acquire in amb_resolve(). */
	atomic_store_explicit(&zs->amb, ZC_AMB_PENDING, memory_order_release);
}

/*
 * send_failed(): a zero-copy send over TCP was refused with ENOBUFS (it
 * used no id and sent nothing). Take the completions queued for us, whose
 * notifications hold option memory until read: errqueue reads the queue,
 * SCM sends no bytes with its cmsg (not with the caller's control bytes:
 * their own size may be what the kernel refused). Each returns 0 for
 * UDP. Returns true if some were taken.
 */
static bool take_queued(struct zc_sock *zs, const struct msghdr *msg)
{
	if (zs->tx_scm)
		return (!msg || !msg->msg_controllen) &&
		       zc__scm_harvest_enobufs(zs) > 0;
	if (zs->ops == &zc__ops_errqueue)
		return zc__eq_harvest_enobufs(zs) > 0;
	return false;
}

/*
 * The longest a blocking zero-copy send over TCP refused for option
 * memory waits for the kernel to report sends of ours (enobufs_wait()).
 */
#define ZC_ENOBUFS_WAIT_MS	50

/* Send side: may the kernel still report ids of ours? */
static bool ids_out(struct zc_sock *zs)
{
	if (zs->tx_scm)
		return (int32_t)zc_scm_ids_out(zs, zs->backend_priv) > 0;
	return zs->ops == &zc__ops_errqueue && zc__eq_ids_out(zs);
}

/*
 * send_failed(): a blocking zero-copy send over TCP was refused for option
 * memory again, with nothing queued left to take (take_queued()). Sends of
 * ours the kernel has not reported yet hold option memory (and pinned
 * pages) until it does, and their records come: wait for one, as the raw
 * pattern does, so that the caller's send can go zero-copy after all.
 * Returns 1 when a record came (POLLERR: take it), 0 after a slice of
 * 1 ms without one (a reaper thread may have read it first, and the memory
 * is free without POLLERR: try again), or -1 to copy: a non-blocking call,
 * nothing of ours out (no record would ever come: ABI.md section 1), or
 * ZC_ENOBUFS_WAIT_MS spent (*deadline, 0 before the first wait).
 */
static int enobufs_wait(struct zc_sock *zs, int flags, int64_t *deadline)
{
	struct pollfd pf = { .fd = zs->fd };	/* POLLERR: always reported */
	int64_t now;
	int r;

	if (zs->type != SOCK_STREAM || (flags & MSG_DONTWAIT) || !ids_out(zs))
		return -1;
	now = zc_now_ms();
	if (!*deadline) {
		int fl = fcntl(zs->fd, F_GETFL);

		ZC_STAT_INC(&zs->tx, syscalls);
		if (fl < 0 || (fl & O_NONBLOCK))
			return -1;
		*deadline = now + ZC_ENOBUFS_WAIT_MS;
		ZC_STAT_INC(&zs->tx, enobufs_waited);
	}
	if (now >= *deadline)
		return -1;
	r = poll(&pf, 1, 1);
	ZC_STAT_INC(&zs->tx, syscalls);
	if (r < 0)
		return errno == EINTR ? 0 : -1;
	return r > 0 && (pf.revents & POLLERR);
}

/*
 * zc_publish() of a send that took an id: its wake-up of a context
 * (a member keeps waiting set) is most often no news, tested here
 * (zc_ctx_took_id_quiet()), not through zc__wake_reaper().
 */
static inline __attribute__((always_inline)) void
publish_took_id(struct zc_sock *zs, uint32_t t, struct zc_entry *e)
{
	zc_publish_quiet(zs, t, e);
	if (atomic_load_explicit(&zs->waiting, memory_order_seq_cst) &&
	    !zc_ctx_took_id_quiet(zs))
		zc__wake_reaper(zs);
}

/*
 * A zero-copy send in ring slot t failed with err. Settle its kernel id
 * (above): not used, or perhaps used, and then its entry stays in the ring
 * on that id until the reap side knows. ENOBUFS (option memory,
 * RLIMIT_MEMLOCK, a full qdisc) and EMSGSIZE on a datagram (its pages need
 * more fragments than an skb holds) are refusals of zero-copy, not of the
 * data: send the same bytes by copy. Returns what the call returns.
 */
static __attribute__((noinline, cold)) ssize_t
send_failed(struct zc_sock *zs, const struct msghdr *msg, const void *buf,
	    size_t len, int flags, ssize_t err, uint32_t t, const char *why)
{
	struct zc_entry *e = zc_tx_entry(zs);
	/* Taken for sure (uring: the backend knows): nothing to settle. */
	bool took = zs->tx_ghost_id;
	bool maybe_id = took || failed_send_may_use_id(zs, err);
	/* A datagram's EINVAL with our cmsg (zc__scm_einval()): copy it. */
	bool scm_einval = err == -EINVAL && zs->tx_scm && zc__scm_einval(zs);
	ssize_t ret = err;

	zs->tx_ghost_id = false;
	if (took) {
		/* Its entry, below, waits for the id; the window stays. */
		zs->zc_next++;
	} else if (maybe_id) {
		/*
		 * No zero-copy and no harvest (the copy below is an SCM send
		 * too) until the reap side has settled the id: see
		 * amb_resolve(). It learns of the id only once the entry is
		 * published (amb_publish()).
		 */
		zs->amb_local = true;
		zs->tx_general = true;
		tx_choose(zs);
	} else {
		/* No id used: the window shrinks back. */
		atomic_store_explicit(&zs->zc_issued, zs->zc_next,
				      memory_order_release);
	}
	/*
	 * The option memory the kernel refused may be held by completions
	 * not yet taken: take them (take_queued()) and try zero-copy again
	 * before the copy; with none queued, a blocking call waits for the
	 * sends of ours still out (enobufs_wait()). Only where the failed
	 * send used no id.
	 */
	for (int64_t deadline = 0; err == -ENOBUFS && !maybe_id;) {
		if (!take_queued(zs, msg)) {
			int w = enobufs_wait(zs, flags, &deadline);

			/*
			 * A record came and we cannot take it (a foreign one
			 * waits for zc_foreign(), or the reap side has not
			 * caught up): waiting more would spin. Copy.
			 */
			if (w < 0 || (w > 0 && !take_queued(zs, msg)))
				break;
		}
		/* Release: as in send_begin(), the window open again. */
		atomic_store_explicit(&zs->zc_issued, zs->zc_next + 1,
				      memory_order_release);
		ret = backend_send(zs, msg, buf, len, flags | MSG_ZEROCOPY);
		if (ret > 0) {
			zs->adapt_tick++;
			publish_took_id(zs, t, zc_tx_took_id(zs, ret));
			return ret;
		}
		atomic_store_explicit(&zs->zc_issued, zs->zc_next,
				      memory_order_release);
		if (ret == 0)
			break;
		err = ret;	/* ENOBUFS again: take, wait, or copy */
	}
	if (err == -ENOBUFS || (err == -EMSGSIZE && zs->type == SOCK_DGRAM) ||
	    scm_einval)
		ret = backend_send(zs, msg, buf, len, flags);
	if (scm_einval && ret >= 0)
		zc__scm_refused(zs);	/* as scm_sent() would: stop asking */
	if (ret >= 0) {
		e->bytes = (uint32_t)ret;
		e->flags = ZC_COPIED | ZC_LIB_COPY |
			   (maybe_id ? ZC_ENT_PENDING : 0);
		ZC_STAT_INC(&zs->tx, sends_copy);
		if (err == -ENOBUFS)
			ZC_STAT_INC(&zs->tx, enobufs_fallback);
		zs->adapt_tick++;
		zc_publish(zs, t, e);
		if (maybe_id && !took)
			amb_publish(zs, t);
		return ret;
	}
	if (maybe_id) {
		e->bytes = 0;
		/* ZC_COPIED: zc_ring_reap() counts no zero-copy send for it. */
		e->flags = ZC_ENT_PENDING | ZC_ENT_GHOST | ZC_COPIED;
		zc_publish(zs, t, e);
		/* Release: pairs with the acquire in zc_inflight(). */
		atomic_store_explicit(&zs->ghosts_made,
				      atomic_load_explicit(&zs->ghosts_made,
							   memory_order_relaxed) + 1,
				      memory_order_release);
		if (!took)
			amb_publish(zs, t);
	}
	return zc_err_lit(ret, why);
}

/* No memory for the chunk of the send's ring slot (zc__tx_chunk_next()). */
static __attribute__((noinline, cold)) ssize_t send_no_chunk(void)
{
	return zc_err_lit(-ENOMEM, "zc_sendmsg: out of memory for the send's "
			  "record in the ring; nothing was sent");
}

/*
 * send_begin() found no room in tx_room: count the done entries of a
 * context's uring member again (sock.h), some may have been handed out
 * since. Returns whether slot t (head h) has room now.
 */
static __attribute__((noinline, cold)) bool room_again(struct zc_sock *zs,
						       uint32_t t, uint32_t h)
{
	/*
	 * Ours; acquire: pairs with the release in take_done() (the reaper
	 * only ever hands out, so this counts at most what is out).
	 */
	uint32_t out = atomic_load_explicit(&zs->done_made,
					    memory_order_relaxed) -
		       atomic_load_explicit(&zs->done_taken,
					    memory_order_acquire);

	zs->tx_room = zs->mask + 1 - out;
	zs->tx_room_end = h + zs->tx_room;
	return t - h < zs->tx_room;
}

/*
 * send_general()'s first half: room in the ring, the chunk of its slot,
 * the cookie, the choice; for zero-copy, the id window opened. Returns 0
 * with *tp (the slot) and *choice, or -errno (reported).
 */
static inline __attribute__((always_inline)) ssize_t
send_begin(struct zc_sock *zs, size_t len, uint64_t cookie, uint32_t *tp,
	   enum zc_choice *choice)
{
	uint32_t t, h;

	t = atomic_load_explicit(&zs->tail, memory_order_relaxed);
	/* Acquire: pairs with the release of head in zc_ring_reap(). */
	h = atomic_load_explicit(&zs->head, memory_order_acquire);
	zs->tx_room_end = h + zs->tx_room;	/* for send_one() */
	if (t - h >= zs->tx_room && !room_again(zs, t, h))
		return zc_err_lit(-ENOBUFS, "zc_sendmsg: max_inflight sends "
				  "(or failed UDP sends whose kernel id is not "
				  "settled yet) await reaping; reap with "
				  "zc_completions() and retry");
	/* The next chunk first if it will be needed: no memory, no send. */
	if (zc_tx_reserve(zs, t))
		return send_no_chunk();
	/*
	 * Not full: slot t is the send side's until tail moves past it.
	 * Fill it now: fewer values live across the syscall.
	 */
	zc_tx_entry(zs)->cookie = cookie;

	if (zs->amb_local)
		amb_poll(zs);	/* may move zc_next */
	*choice = want_zerocopy(zs, len);
	if (*choice == ZC_CHOOSE_ZC)
		/*
		 * Release: pairs with the acquire in zc_apply_range(); the
		 * reap side may see this send's id before we push its entry.
		 */
		atomic_store_explicit(&zs->zc_issued, zs->zc_next + 1,
				      memory_order_release);
	*tp = t;
	return 0;
}

/*
 * send_general()'s second half: the backend's send of slot t, made as
 * choice asked (MSG_ZEROCOPY for ZC_CHOOSE_ZC), returned ret. Returns what
 * the call returns.
 */
static inline __attribute__((always_inline)) ssize_t
send_end(struct zc_sock *zs, const struct msghdr *msg, const void *buf,
	 size_t len, int flags, uint32_t t, enum zc_choice choice,
	 ssize_t ret, const char *why)
{
	struct zc_entry *e = zc_tx_entry(zs);
	bool zc = choice == ZC_CHOOSE_ZC;

	if (ret < 0) {
		if (zc)
			return send_failed(zs, msg, buf, len, flags, ret, t,
					   why);
		return zc_err_lit(ret, why);
	}
	e->bytes = (uint32_t)ret;
	if (zc && ret > 0) {
		e->flags = ZC_ENT_PENDING;
		zs->zc_next++;
		ZC_STAT_INC(&zs->tx, sends_zc);
		zs->adapt_tick++;
		publish_took_id(zs, t, e);
		return ret;
	}
	e->flags = ZC_COPIED | ZC_LIB_COPY;
	ZC_STAT_INC(&zs->tx, sends_copy);
	if (choice == ZC_CHOOSE_ADAPT)
		ZC_STAT_INC(&zs->tx, adapt_copy);
	if (choice != ZC_CHOOSE_COPY)
		zs->adapt_tick++;
	zc_publish(zs, t, e);
	return ret;
}

/*
 * The send path, once the arguments are checked: len is the message's
 * length, flags carry no MSG_ZEROCOPY; why is the message of a failed
 * sendmsg(2). Every case; send_one() takes the common one inline.
 */
static __attribute__((noinline)) ssize_t
send_general(struct zc_sock *zs, const struct msghdr *msg, const void *buf,
	     size_t len, int flags, uint64_t cookie, const char *why)
{
	enum zc_choice choice = ZC_CHOOSE_COPY;
	uint32_t t = 0;
	ssize_t ret;

	ret = send_begin(zs, len, cookie, &t, &choice);
	if (ret < 0)
		return ret;
	ret = backend_send(zs, msg, buf, len, choice == ZC_CHOOSE_ZC ?
			   flags | MSG_ZEROCOPY : flags);
	return send_end(zs, msg, buf, len, flags, t, choice, ret, why);
}

/*
 * A zero-copy send of send_one() that sent nothing: ret is 0 (nothing
 * pinned: complete at once) or -errno (send_failed()).
 */
static __attribute__((noinline, cold)) ssize_t
send_zc_nothing(struct zc_sock *zs, const struct msghdr *msg, const void *buf,
		size_t len, int flags, const char *why, ssize_t ret)
{
	/* Slot tail, its cookie written (send_one()). */
	uint32_t t = atomic_load_explicit(&zs->tail, memory_order_relaxed);
	struct zc_entry *e = zc_tx_entry(zs);

	if (ret < 0)
		return send_failed(zs, msg, buf, len, flags, ret, t, why);
	e->bytes = 0;
	e->flags = ZC_COPIED | ZC_LIB_COPY;
	ZC_STAT_INC(&zs->tx, sends_copy);
	zc_publish(zs, t, e);
	return 0;
}

/*
 * send_zc_nothing() for send_slot()'s send(2) of buf, len, which
 * returned ret: 0, or -1 with errno (counted as zc_sys_send() counts).
 */
static __attribute__((noinline, cold)) ssize_t
send_zc_nothing_sys(struct zc_sock *zs, const void *buf, size_t len,
		    int flags, const char *why, ssize_t ret)
{
	if (ret < 0) {
		ret = -errno;
		ZC_STAT_INC(&zs->tx, syscalls);
	}
	return send_zc_nothing(zs, NULL, buf, len, flags, why, ret);
}

/* send_slot()'s wake-up of a waiting reaper, after the send: ret. */
static __attribute__((noinline)) ssize_t send_wake(struct zc_sock *zs,
						   ssize_t ret)
{
	zc__wake_reaper(zs);
	return ret;
}

/*
 * zc_ctx_took_id_quiet() of a socket that is no errqueue or uring member.
 * scm: the ranges a member's harvests took from the kernel raise no
 * event, so its send is news if they pushed any since the last wake-up
 * (rtail_woken, which zc__ctx_wake() moves). Ours to read plainly: the
 * send side writes rtail. No side effect but
 * zc_member_took_id_quiet()'s: zc__ctx_wake() asks again.
 */
bool zc__took_id_quiet_other(struct zc_sock *zs)
{
	const struct scm_priv *p;

	if (zs->ctxm.ids_report != ZC_IDS_SCM)
		return false;
	p = zs->backend_priv;
	if ((uint16_t)atomic_load_explicit(&p->rtail, memory_order_relaxed) !=
	    p->rtail_woken)
		return false;
	return zc_member_took_id_quiet(zs);
}

/*
 * send_wake() of a send that took an id: none if that is no news
 * (zc_ctx_took_id_quiet()), tested out of line, as the wake-up is.
 */
static __attribute__((noinline)) ssize_t send_wake_took_id(struct zc_sock *zs,
							   ssize_t ret)
{
	if (!zc_ctx_took_id_quiet(zs))
		zc__wake_reaper(zs);
	return ret;
}

/*
 * send_one() past its tests: the send into slot tail, whose chunk is
 * linked (last: the slot is the last of its chunk, and the next one is
 * linked too). zc: a zero-copy send.
 */
static inline __attribute__((always_inline)) ssize_t
send_slot(struct zc_sock *zs, const struct msghdr *msg, const void *buf,
	  size_t len, int flags, uint64_t cookie, const char *why, bool zc,
	  bool last, bool scm_off)
{
	/*
	 * The message, for send_zc_nothing() alone (a failed send may be
	 * made again by copy): in memory across the syscall (the asm), not
	 * in registers saved for the whole call.
	 */
	struct {
		const struct msghdr *msg;
		const void *buf;
		size_t len;
		int flags;
	} a = { msg, buf, len, flags };
	struct zc_entry *e;
	uint32_t t;
	ssize_t ret;
	bool wake;

	/*
	 * Slot t is the send side's until tail moves past it: its cookie
	 * now, and tail read again after the syscall, so that neither is
	 * live across it (fewer registers saved).
	 */
	zc_tx_entry(zs)->cookie = cookie;
	if (!zc) {
		ret = direct_send_as(zs, msg, buf, len, flags, true, scm_off);
		if (ret < 0)
			return zc_err_lit(ret, why);
		ZC_OPAQUE(zs);
		t = atomic_load_explicit(&zs->tail, memory_order_relaxed);
		e = zc_tx_entry(zs);
		e->bytes = (uint32_t)ret;
		e->flags = ZC_COPIED | ZC_LIB_COPY;	/* complete now */
		ZC_STAT_INC(&zs->tx, sends_copy);
		goto publish;
	}
	/*
	 * Release: pairs with the acquire in zc_apply_range(); the reap side
	 * may see this send's id before we push its entry.
	 */
	atomic_store_explicit(&zs->zc_issued, zs->zc_next + 1,
			      memory_order_release);
	__asm__("" : : "m"(a));
	if (msg || (!scm_off && zs->tx_scm) || len > (1u << 30)) {
		ret = direct_send_as(zs, msg, buf, len, flags | MSG_ZEROCOPY,
				     true, scm_off);
		if (__builtin_expect(ret <= 0, 0)) {
			__asm__("" : "+m"(a));
			return send_zc_nothing(zs, a.msg, a.buf, a.len,
					       a.flags, why, ret);
		}
	} else {
		/*
		 * direct_send_as()'s send(2), and one test of what it
		 * returned, not two: -1 (errno) goes the same way as 0.
		 */
		ret = send(zs->fd, buf, len, flags | MSG_ZEROCOPY);
		if (__builtin_expect(ret <= 0, 0)) {
			__asm__("" : "+m"(a));
			return send_zc_nothing_sys(zs, a.buf, a.len, a.flags,
						   why, ret);
		}
	}
	ZC_OPAQUE(zs);
	t = atomic_load_explicit(&zs->tail, memory_order_relaxed);
	e = zc_tx_took_id(zs, ret);
publish:
	/*
	 * The wake-up of a member's send that took an id (zc: this path) is
	 * most often no news: tested here, not through zc__wake_reaper().
	 */
	if (last) {
		if (zc)
			publish_took_id(zs, t, e);
		else
			zc_publish(zs, t, e);
		return ret;
	}
	wake = zc_publish_mid(zs, t, e);
	if (wake && !(zc && zc_ctx_took_id_quiet(zs)))
		return send_wake(zs, ret);
	return ret;
}

/*
 * send_one()'s zero-copy send of one buffer (zc_send()) over scm, into
 * slot t, the tail: send_slot() with the backend's send and the common
 * cases of its harvest inline (zc_scm_prepare_kept(), zc_scm_take_one()).
 */
static inline __attribute__((always_inline)) ssize_t
send_scm_slot(struct zc_sock *zs, uint32_t t, const void *buf, size_t len,
	      int flags, uint64_t cookie, const char *why)
{
	struct scm_priv *p = zs->backend_priv;
	struct zc_entry *e;
	unsigned int n;
	ssize_t ret;

	/*
	 * buf, len and flags in memory, not in registers saved for the
	 * whole call: the kept message's, and for after the syscall.
	 */
	p->iov.iov_base = (void *)buf;
	p->iov.iov_len = len;
	p->flags = flags;
	/* Before the atomic store below: p and zc_next in registers. */
	n = zc_scm_want_p(zs, p, true);
	zc_tx_entry(zs)->cookie = cookie;
	/*
	 * Release: pairs with the acquire in zc_apply_range(); the reap side
	 * may see this send's id before we push its entry.
	 */
	atomic_store_explicit(&zs->zc_issued, zs->zc_next + 1,
			      memory_order_release);
	if (__builtin_expect(n && p->ctrl, 1)) {
		p->m.msg_controllen = zc_scm_prepare_kept(p, n);
		ret = sendmsg(zs->fd, &p->m, flags | MSG_ZEROCOPY);
		/* Loaded again, not kept in a register saved for the call. */
		p = zs->backend_priv;
		if (__builtin_expect(ret <= 0, 0) || !zc_scm_take_one(p))
			ret = zc__scm_sent(zs, p->flags | MSG_ZEROCOPY, ret);
	} else if (n) {
		/* The first harvest: no buffer yet. */
		ret = zc__scm_send(zs, NULL, buf, len, flags | MSG_ZEROCOPY, n);
	} else {
		/* Nothing to harvest. */
		ret = send_plain(zs, buf, len, flags | MSG_ZEROCOPY);
	}
	ZC_OPAQUE(zs);
	if (__builtin_expect(ret <= 0, 0)) {
		p = zs->backend_priv;
		return send_zc_nothing(zs, NULL, p->iov.iov_base,
				       p->iov.iov_len, p->flags, why, ret);
	}
	t = atomic_load_explicit(&zs->tail, memory_order_relaxed);
	e = zc_tx_took_id(zs, ret);
	/*
	 * The wake a tail call: ret lives in no register saved for a call.
	 * A member's send that took an id and harvested nothing since the
	 * last wake is no news (zc_ctx_took_id_quiet()).
	 */
	if (zc_publish_nowake(zs, t, e))
		return send_wake_took_id(zs, ret);
	return ret;
}

#define ZC_SEND_WHY	"zc_send: send(2) failed; nothing was sent, no " \
			"completion will come"

/*
 * send_scm_slot() into the last slot of its chunk when the reap side
 * left no spare (zc_tx_link_spare() took the others): the next chunk
 * linked first (zc__tx_chunk_next(): malloc()), no memory, no send.
 * Out of line: no value lives across the call in the common send.
 */
static __attribute__((noinline)) ssize_t
send_scm_last(struct zc_sock *zs, uint32_t t, const void *buf, size_t len,
	      int flags, uint64_t cookie)
{
	struct scm_priv *p = zs->backend_priv;

	/*
	 * The arguments in memory across the call, not in saved registers:
	 * where send_scm_slot() stores them (the entry of slot t is there
	 * already: the call links the next chunk).
	 */
	p->iov.iov_base = (void *)buf;
	p->iov.iov_len = len;
	p->flags = flags;
	zc_tx_entry(zs)->cookie = cookie;
	if (zc__tx_chunk_next(zs))
		return send_no_chunk();
	p = zs->backend_priv;
	return send_scm_slot(zs, t, p->iov.iov_base, p->iov.iov_len, p->flags,
			     zc_tx_entry(zs)->cookie, ZC_SEND_WHY);
}


/*
 * send_one() into the last slot of its chunk, one send in ZC_CHUNK: the
 * next chunk linked first (zc_tx_reserve()), no memory, no send.
 */
static __attribute__((noinline)) ssize_t
send_last_slot(struct zc_sock *zs, const struct msghdr *msg, const void *buf,
	       size_t len, int flags, uint64_t cookie, const char *why)
{
	if (zc__tx_chunk_next(zs))
		return send_no_chunk();
	return send_slot(zs, msg, buf, len, flags, cookie, why,
			 len >= zs->copy_below, true, false);
}

/*
 * send_one()'s send shorter than copy_below, into slot t, the tail (every
 * send of the copy backend). scm_off: not scm, or no harvest wanted.
 */
static inline __attribute__((always_inline)) ssize_t
send_copy(struct zc_sock *zs, uint32_t t, const struct msghdr *msg,
	  const void *buf, size_t len, int flags, uint64_t cookie,
	  const char *why, bool scm_off)
{
	if (t - atomic_load_explicit(&zs->head, memory_order_acquire) >=
	    zs->tx_room)
		return send_general(zs, msg, buf, len, flags, cookie, why);
	if (__builtin_expect((t & ZC_CHUNK_MASK) == ZC_CHUNK_MASK, 0))
		return send_last_slot(zs, msg, buf, len, flags, cookie, why);
	return send_slot(zs, msg, buf, len, flags, cookie, why, false, false,
			 scm_off);
}

/*
 * send_copy() of zc_send() over scm, out of line: its error's message
 * (zc_err_lit()) would keep the return value in a register saved for
 * the whole of send_one_scm().
 */
static __attribute__((noinline)) ssize_t
send_scm_copy(struct zc_sock *zs, const void *buf, size_t len, int flags,
	      uint64_t cookie)
{
	return send_copy(zs, atomic_load_explicit(&zs->tail,
						  memory_order_relaxed),
			 NULL, buf, len, flags, cookie, ZC_SEND_WHY, false);
}

/*
 * send_general() for any send; inline here, the common ones: a backend
 * whose send is the syscall (errqueue; scm, with its cmsg now and then;
 * copy), no failed send to settle, room in the ring, and either a send
 * shorter than copy_below (always, for the copy backend) or zero-copy
 * wanted (the kernel not copying, or adapting off). Inlined into
 * zc_send() and zc_sendmsg().
 */
static inline __attribute__((always_inline)) ssize_t
send_one(struct zc_sock *zs, const struct msghdr *msg, const void *buf,
	 size_t len, int flags, uint64_t cookie, const char *why, bool scm)
{
	uint32_t t = atomic_load_explicit(&zs->tail, memory_order_relaxed);

	/* zc_send() (msg NULL) came by tx_send, chosen by it (tx_choose()). */
	if (msg && zs->tx_general)	/* !tx_direct || amb_local */
		return send_general(zs, msg, buf, len, flags, cookie, why);
	/*
	 * Relaxed streak: a hint from the reap side (zc_feed_streak()).
	 * Room in the ring by tx_room_end: serial numbers, a tail within
	 * max_inflight of it (send_general() reads head and sends, or
	 * refuses). The tests twice, once each way: one test of len, and
	 * send_slot() knows which send it makes.
	 */
	if (len >= zs->copy_below) {	/* never: the copy backend */
		if (atomic_load_explicit(&zs->copied_streak,
					 memory_order_relaxed) >= zs->adapt_at ||
		    (int32_t)(t - zs->tx_room_end) >= 0)
			return send_general(zs, msg, buf, len, flags, cookie,
					    why);
		if (scm) {
			/*
			 * The next chunk linked inline from the spare, so
			 * that the last slot takes the common send too.
			 */
			if (__builtin_expect((t & ZC_CHUNK_MASK) ==
					     ZC_CHUNK_MASK, 0) &&
			    !zc_tx_link_spare(zs))
				return send_scm_last(zs, t, buf, len, flags,
						     cookie);
			return send_scm_slot(zs, t, buf, len, flags, cookie,
					     why);
		}
		/*
		 * The last slot of its chunk needs the next chunk linked
		 * first: send_last_slot(), so that no call comes before the
		 * syscall here (the arguments need no registers saved
		 * around one), and the publish knows its next entry
		 * (zc_publish_mid()).
		 */
		if (__builtin_expect((t & ZC_CHUNK_MASK) == ZC_CHUNK_MASK, 0))
			return send_last_slot(zs, msg, buf, len, flags, cookie,
					      why);
		return send_slot(zs, msg, buf, len, flags, cookie, why, true,
				 false, !msg);
	}
	/* scm's copy: out of line, see send_scm_copy(). */
	if (scm)
		return send_scm_copy(zs, buf, len, flags, cookie);
	return send_copy(zs, t, msg, buf, len, flags, cookie, why, !msg);
}

/*
 * zc_send()'s tx_send (tx_choose()) when not tx_general: the
 * common sends inline, each backend in a function of its own, so that
 * zc_send() needs no frame and what scm's harvest keeps across the
 * syscall costs the other backends no register. send_one_scm(): its
 * zero-copy send with the harvest inline (send_scm_slot()).
 */
static __attribute__((noinline)) ssize_t
send_one_scm(struct zc_sock *zs, const void *buf, size_t len, int flags,
	     uint64_t cookie)
{
	return send_one(zs, NULL, buf, len, flags, cookie, ZC_SEND_WHY, true);
}

/* zc_send()'s tx_send of errqueue and copy. */
static __attribute__((noinline)) ssize_t
send_one_plain(struct zc_sock *zs, const void *buf, size_t len, int flags,
	       uint64_t cookie)
{
	return send_one(zs, NULL, buf, len, flags, cookie, ZC_SEND_WHY, false);
}

/* zc_send()'s tx_send while tx_general: uring's, or a failed send's id out. */
static __attribute__((noinline)) ssize_t
send_one_general(struct zc_sock *zs, const void *buf, size_t len, int flags,
		 uint64_t cookie)
{
	return send_general(zs, NULL, buf, len, flags, cookie, ZC_SEND_WHY);
}

static int bad_flags(const char *fn, int flags)
{
	return zc__err(-EINVAL, "%s: flags 0x%x not supported", fn,
		      flags & ~ZC_SEND_FLAGS);
}

enum msg_fault { MSG_NO_IOV, MSG_IOV_MAX, MSG_CONTROLLEN, MSG_FLAGS,
		 MSG_OVERFLOW };

/* What msg_check() found wrong, reported for fn. */
static __attribute__((noinline, cold)) int
msg_bad(const char *fn, enum msg_fault f, int flags)
{
	switch (f) {
	case MSG_NO_IOV:
		return zc__err(-EINVAL, "%s: msg_iov is NULL", fn);
	case MSG_IOV_MAX:
		return zc__err(-EMSGSIZE, "%s: msg_iovlen is larger than "
			      "IOV_MAX (1024)", fn);
	case MSG_CONTROLLEN:
		return zc__err(-EINVAL, "%s: msg_controllen is larger than "
			      "INT_MAX", fn);
	case MSG_FLAGS:
		return bad_flags(fn, flags);
	default:
		return zc__err(-EINVAL, "%s: iovec lengths overflow", fn);
	}
}

/*
 * A message and flags as sendmsg(2) would take them; *len its length.
 * Returns 0 or -errno (reported, for fn).
 */
static inline __attribute__((always_inline)) int
msg_check(const char *fn, const struct msghdr *msg, int flags, size_t *lenp)
{
	size_t len = 0;

	if (msg->msg_iovlen && !msg->msg_iov)
		return msg_bad(fn, MSG_NO_IOV, flags);
	/* sendmsg(2)'s answer, before we walk an array it would refuse. */
	if (msg->msg_iovlen > IOV_MAX)
		return msg_bad(fn, MSG_IOV_MAX, flags);
	/* The kernel takes at most INT_MAX; the SCM backend adds its own
	 * cmsg to the length, which must not wrap. */
	if (msg->msg_control && msg->msg_controllen > INT_MAX)
		return msg_bad(fn, MSG_CONTROLLEN, flags);
	if (flags & ~ZC_SEND_FLAGS)
		return msg_bad(fn, MSG_FLAGS, flags);
	for (size_t i = 0; i < msg->msg_iovlen; i++) {
		if (msg->msg_iov[i].iov_len > SIZE_MAX - len)
			return msg_bad(fn, MSG_OVERFLOW, flags);
		len += msg->msg_iov[i].iov_len;
	}
	*lenp = len;
	return 0;
}

ZC_EXPORT ssize_t zc_sendmsg(struct zc_sock *zs, const struct msghdr *msg,
			     int flags, uint64_t cookie)
{
	size_t len = 0;
	int r;

	if (!zs || !msg)
		return zc_err_lit(-EINVAL, "zc_sendmsg: zs or msg is NULL");
	if ((r = msg_check("zc_sendmsg", msg, flags, &len)))
		return r;
	return send_one(zs, msg, NULL, len, flags & ~MSG_ZEROCOPY, cookie,
			"zc_sendmsg: sendmsg(2) failed; nothing was sent, no "
			"completion will come", false);
}

#define CTX_SEND_WHY	"zc_ctx_sendmmsg: the send failed; nothing was " \
			"sent, no completion will come"

/*
 * zc_ctx_sendmmsg()'s send of a uring member, in two halves around the
 * batch's io_uring_enter(). The first: the send made now (a copy, or an
 * error), returning what the call returns with *queued false; or the
 * zero-copy send for the caller to submit (h's zs and slot; its msg
 * and flags are h->caller's, set by the caller), 0 and *queued.
 * Non-blocking: MSG_DONTWAIT is added. msg is not NULL (ctx.c checks).
 * Every case here; zc__send_start_fast() (internal.h) takes the common one
 * inline.
 */
ssize_t zc__send_start_general(struct zc_sock *zs, const struct msghdr *msg,
			       int flags, uint64_t cookie,
			       struct zc_batch_send *h, bool *queued)
{
	enum zc_choice choice = ZC_CHOOSE_COPY;
	size_t len = 0;
	uint32_t t = 0;
	ssize_t ret;

	*queued = false;
	if ((ret = msg_check("zc_ctx_sendmmsg", msg, flags, &len)))
		return ret;
	flags = (flags & ~MSG_ZEROCOPY) | MSG_DONTWAIT;
	ret = send_begin(zs, len, cookie, &t, &choice);
	if (ret < 0)
		return ret;
	if (choice == ZC_CHOOSE_ZC) {
		zc_half_fill(h, zs, t);
		*queued = true;
		return 0;
	}
	ret = backend_send(zs, msg, NULL, len, flags);
	return send_end(zs, msg, NULL, len, flags, t, choice, ret,
			CTX_SEND_WHY);
}

/* zc__send_finish() of a send that sent nothing: res 0 or -errno. */
ssize_t zc__send_finish_nothing(const struct zc_batch_send *h)
{
	const struct msghdr *msg = h->caller->msg;
	size_t len = 0;

	/* The first half checked it: its length again. */
	for (size_t i = 0; i < msg->msg_iovlen; i++)
		len += msg->msg_iov[i].iov_len;
	return send_end(h->zs, msg, NULL, len, zc_batch_flags(h), h->slot,
			ZC_CHOOSE_ZC, h->res, CTX_SEND_WHY);
}

/*
 * Which of zc_send()'s arguments is wrong. ssize_t, zc_send()'s: a tail
 * call, so that zc_send() needs no frame before its tests.
 */
static __attribute__((noinline, cold)) ssize_t
send_bad_args(const struct zc_sock *zs, int flags)
{
	if (!zs)
		return zc_err_lit(-EINVAL, "zc_send: zs is NULL");
	if (flags & ~ZC_SEND_FLAGS)
		return bad_flags("zc_send", flags);
	return zc_err_lit(-EINVAL, "zc_send: buf is NULL");
}

ZC_EXPORT ssize_t zc_send(struct zc_sock *zs, const void *buf, size_t len,
			  int flags, uint64_t cookie)
{
	if (!zs || (flags & ~ZC_SEND_FLAGS) || (!buf && len))
		return send_bad_args(zs, flags);
	/* send_general() while tx_general: see tx_send. */
	return zs->tx_send(zs, buf, len, flags & ~MSG_ZEROCOPY, cookie);
}

/*
 * Reap side: a failed UDP send in ring slot amb_slot may have used up its
 * id X (see failed_send_may_use_id()). If it did, the skb was freed before
 * sendmsg() returned and queued X's record then; and the send side sends
 * no zero-copy and harvests nothing until we answer. So a full read of
 * the queue now sees that record, or it never existed. Returns 1 when it
 * settled one (there may be news to hand out), 0, or -errno.
 */
static __attribute__((noinline, cold)) int amb_resolve(struct zc_sock *zs)
{
	uint32_t slot, x, head;
	bool taken;
	int ret;

	/* Acquire: pairs with the release in send_failed(). */
	if (atomic_load_explicit(&zs->amb, memory_order_acquire) !=
	    ZC_AMB_PENDING)
		return 0;
	slot = atomic_load_explicit(&zs->amb_slot, memory_order_relaxed);
	x = atomic_load_explicit(&zs->amb_id, memory_order_relaxed);
	/* The whole queue, or its error (scm: zc_scm_collect_all()). */
	ret = zs->tx_scm ? zc_scm_collect_all(zs) : zs->ops->collect(zs, true);
	if (ret < 0)
		return ret;
	head = atomic_load_explicit(&zs->head, memory_order_relaxed);
	/*
	 * Reaped already: that took X's mark. Otherwise the entry still
	 * waits, and no other send holds X, so its mark is X's record.
	 */
	taken = (int32_t)(head - slot) > 0 || zc_id_done(zs, x);
	if (!taken)	/* a copy complete now, or a failure to drop */
		zc__rx_entry_at(zs, slot)->flags &= ~ZC_ENT_PENDING;
	/* Release: pairs with the acquire in amb_poll(). */
	atomic_store_explicit(&zs->amb, taken ? ZC_AMB_TAKEN :
			      ZC_AMB_NOT_TAKEN, memory_order_release);
	return 1;
}

/*
 * Reap side: ask the kernel for news of the sends. Returns > 0 if some id
 * may have been marked done, 0 if none was, or -errno. Inline in
 * zc_completions() only.
 */
static inline __attribute__((always_inline)) int
collect_news(struct zc_sock *zs)
{
	/*
	 * Relaxed: our caller's acquire of tail saw the entry that amb
	 * describes, or a later call will see amb (amb_resolve() reads it
	 * again with acquire).
	 */
	if (atomic_load_explicit(&zs->amb, memory_order_relaxed) ==
	    ZC_AMB_PENDING)
		return amb_resolve(zs);
	if (zs->ops == &zc__ops_errqueue)
		return zc_eq_read(zs, false);
	if (zs->ops == &zc__ops_scm)
		return zc_scm_collect(zs, false);
	return zs->ops->collect(zs, false);
}

/*
 * zc_completions()'s rare work first: bad arguments, an error to report,
 * or a failed send's id to settle. Returns 0 or -errno (reported).
 */
static __attribute__((noinline)) int completions_first(struct zc_sock *zs,
						      const void *out,
						      unsigned int max,
						      bool member)
{
	int ret;

	if (!zs || (!out && max))
		return zc_err_lit(-EINVAL, "zc_completions: zs or out is NULL");
	if (zs->ctx && !member)
		return zc_err_lit(-EINVAL, "zc_completions: the socket belongs "
				  "to a context: reap it with "
				  "zc_ctx_completions()");
	ret = zs->pending_err;
	if (ret && zs->broken)	/* for good: see marks_make() */
		return zc_err_lit(ret, "zc_completions: out of memory for the "
				  "marks of ids the kernel reported out of "
				  "order: completions of this socket are lost; "
				  "close it");
	if (ret) {
		zs->pending_err = 0;
		return zc_err_lit(ret, "zc_completions: an error-queue record "
				  "was truncated (MSG_CTRUNC)");
	}
	ret = amb_resolve(zs);
	/*
	 * A failed read leaves the id unsettled (the next call tries again)
	 * and is reported only when no completion is ready, as any failed
	 * read of the queue (zc_completions(3)).
	 */
	if (ret < 0 && zc_ring_blocked(zs))
		return zc__err(ret, "zc_completions: reading the error queue: %s",
			      strerror(-ret));
	return 0;
}

/*
 * zc_completions() when the oldest send is complete (or none is out): hand
 * out what is ready, and ask the kernel only if that stops at a send that
 * still waits. Out of line: the common call finds the oldest send waiting.
 */
static __attribute__((noinline)) int
completions_ready(struct zc_sock *zs, struct zc_completion *out,
		  unsigned int max)
{
	int n = zc_ring_reap(zs, out, max);

	if ((unsigned int)n == max || !zc_ring_blocked(zs))
		return n;
	/*
	 * An error reading the queue waits for the next call. The error
	 * queue through ops, not collect_news(): its read is inlined in
	 * zc_completions() alone (measured: inlined twice, gcc keeps neither
	 * copy inline). SCM's look inline: at k = 1 every call comes here
	 * (the last send's news comes with the next send).
	 */
	if (atomic_load_explicit(&zs->amb, memory_order_relaxed) ==
	    ZC_AMB_PENDING ? amb_resolve(zs) <= 0 :
	    zs->ops == &zc__ops_scm ? zc_scm_collect(zs, false) <= 0 :
	    zs->ops->collect(zs, false) <= 0)
		return n;
	return n + zc_ring_reap(zs, out + n, max - (unsigned int)n);
}

/* zc_completions(): reading the queue failed with err (-errno). */
static __attribute__((noinline, cold)) int completions_read_error(int err)
{
	return zc__err(err, "zc_completions: reading the error queue: %s",
		      strerror(-err));
}

/*
 * zc_completions() with its rare work first: bad arguments, max 0 or past
 * INT_MAX, an error to report, or a failed send's id to settle.
 */
static __attribute__((noinline)) int
completions_slow(struct zc_sock *zs, struct zc_completion *out,
		 unsigned int max, bool member)
{
	int ret;

	if (max - 1 >= INT_MAX) {
		/* max 0: nothing to do, but the arguments still checked. */
		if (!max)
			return zs && (!zs->ctx || member) ? 0 :
			       completions_first(zs, out, max, member);
		max = INT_MAX;
	}
	ret = completions_first(zs, out, max, member);
	if (ret < 0)
		return ret;
	if (!zc_ring_blocked(zs))
		return completions_ready(zs, out, max);
	ret = collect_news(zs);
	if (ret <= 0)
		return ret ? completions_read_error(ret) : 0;
	return zc_ring_reap(zs, out, max);
}

/*
 * The rx_reap of a context's member (zc_open()): zc_completions() refuses
 * it, as completions_first() says, so that the entry point does not test
 * ctx itself.
 */
static __attribute__((noinline)) int
completions_refused(struct zc_sock *zs, struct zc_completion *out,
		    unsigned int max)
{
	return completions_slow(zs, out, max, false);
}

/*
 * zc_completions() when the oldest send waits for the kernel, the
 * arguments checked and no rare work to do: ask the kernel, then hand
 * out. One function a backend (the error queue's read and SCM's inline),
 * so that each path gets its own registers and the entry point needs
 * none: it ends in tail calls.
 */
#define COMPLETIONS_BLOCKED(name, collect)				\
static __attribute__((noinline)) int					\
name(struct zc_sock *zs, struct zc_completion *out, unsigned int max)	\
{									\
	int ret = collect;						\
									\
	if (ret <= 0)	/* 0: no news, the oldest send still waits */	\
		return ret ? completions_read_error(ret) : 0;		\
	return zc_ring_reap(zs, out, max);				\
}
COMPLETIONS_BLOCKED(completions_eq_general, zc_eq_read_blocked(zs))
COMPLETIONS_BLOCKED(completions_scm_general,
		    zc_scm_collect_as(zs, false, true))
COMPLETIONS_BLOCKED(completions_ops_blocked, zs->ops->collect(zs, false))
#undef COMPLETIONS_BLOCKED

/*
 * zc_completions() past its rare checks (no mark out: rx_rare), for
 * rx_reap: does the oldest send not wait for the kernel, or is none out?
 * Then completions_ready() takes the call. That is !zc_ring_blocked()
 * without its test of the marks: relaxed head (ours); acquire tail,
 * pairs with the store of tail in zc_publish().
 */
static inline __attribute__((always_inline)) bool
completions_unblocked(const struct zc_sock *zs)
{
	uint32_t h = atomic_load_explicit(&zs->head, memory_order_relaxed);
	uint32_t t = atomic_load_explicit(&zs->tail, memory_order_acquire);

	return h == t || !(zs->rx_e->flags & ZC_ENT_PENDING) ||
	       zs->zc_head != zc_done_to(zs);
}

/*
 * An rx_reap whose backend has no common case inline: completions_ready()
 * or, when the oldest send waits, blocked().
 */
static inline __attribute__((always_inline)) int
completions_reap_as(struct zc_sock *zs, struct zc_completion *out,
		    unsigned int max,
		    int (*blocked)(struct zc_sock *zs,
				   struct zc_completion *out, unsigned int max))
{
	if (completions_unblocked(zs))
		return completions_ready(zs, out, max);
	return blocked(zs, out, max);
}

/* The rx_reap of uring (without a context), and any other. */
static __attribute__((noinline)) int
completions_ops(struct zc_sock *zs, struct zc_completion *out,
		unsigned int max)
{
	return completions_reap_as(zs, out, max, completions_ops_blocked);
}

/* completions_scm()'s general way: every case it does not take inline. */
static __attribute__((noinline)) int
completions_scm_other(struct zc_sock *zs, struct zc_completion *out,
		      unsigned int max)
{
	return completions_reap_as(zs, out, max, completions_scm_general);
}

/*
 * completions_eq()'s record, when zc_ring_reap_range() does not take it:
 * the general way, as zc_eq_read_blocked() and zc_ring_reap() do.
 */
static __attribute__((noinline)) int
completions_eq_apply(struct zc_sock *zs, struct zc_completion *out,
		     unsigned int max, uint32_t lo, uint32_t hi, bool copied)
{
	zc_apply_range_blocked(zs, lo, hi, copied);
	return zc_ring_reap(zs, out, max);
}

/*
 * completions_eq()'s read past its common case: recvmmsg() returned n
 * (-1: errno says why), not the one record in the exact layout. Counted
 * here (a read of eq_one is not).
 */
static __attribute__((noinline)) int
completions_eq_more(struct zc_sock *zs, struct zc_completion *out,
		    unsigned int max, int n)
{
	/* errno as recvmmsg() left it: nothing ran since but the count. */
	int ret = zc__eq_read_more(zs, n, n < 0 ? -errno : 0, false);

	if (ret <= 0)	/* 0: no news, the oldest send still waits */
		return ret ? completions_read_error(ret) : 0;
	return zc_ring_reap(zs, out, max);
}

/*
 * completions_eq()'s read of the queue, the oldest send waiting: one
 * recvmmsg(), with its common case inline (one record, in the exact
 * layout, that completes the PENDING entry at head: zc_ring_reap_one()).
 * Apart from completions_eq(), so that the calls that read nothing (at
 * k = 1 over TCP most of them) do not pay for this one's registers.
 */
static __attribute__((noinline)) int
completions_eq_read(struct zc_sock *zs, struct zc_completion *out,
		    unsigned int max)
{
	struct zc_eq *eq = zc__tl_eq;
	struct msghdr *m;
	struct zc_range r;
	int n;

	if (__builtin_expect(!eq, 0))	/* this thread's first read */
		return completions_eq_general(zs, out, max);
	zs->rx_max = max;
	n = recvmmsg(zs->fd, eq->msgs, ZC_EQ_BATCH,
		     MSG_ERRQUEUE | MSG_DONTWAIT, NULL);
	m = &eq->msgs[0].msg_hdr;
	if (__builtin_expect(n != 1, 0) || !eq_record_fast(m, &r)) {
		ZC_STAT_INC(&zs->rx, errqueue_reads);	/* and a syscall */
		/*
		 * The queue empty: at k = 1 over TCP most reaps (a
		 * completion waits for the ACK), and nothing else to do
		 * (zc__eq_read_more() would learn the same in 60
		 * instructions more).
		 */
		if (n < 0 && errno == EAGAIN) {
			zs->rx_dry = true;
			return 0;
		}
		return completions_eq_more(zs, out, zs->rx_max, n);
	}
	/*
	 * recvmmsg() rewrote msg_controllen and msg_flags of the header it
	 * filled, and only those: restore them (zc_eq_read_as()).
	 */
	m->msg_controllen = ZC_EQ_CTRL;
	m->msg_flags = 0;
	zs->rx_dry = false;
	/* A read (and a syscall) and a record: see eq_one. */
	ZC_STAT_INC(&zs->rx, eq_one);
	if (__builtin_expect(!zc_ring_reap_one(zs, out, r.lo, r.hi, r.copied),
			     0)) {
		return completions_eq_apply(zs, out, zs->rx_max, r.lo, r.hi,
					    r.copied);
	}
	return 1;
}

/*
 * completions_eq() after a read that found nothing (at k = 1 over TCP
 * most reaps: a completion waits for the ACK): ask poll() first, as the
 * raw pattern does; POLLERR is level-triggered, raised while a record is
 * queued. Cheaper in the kernel than an empty recvmmsg(), and the same
 * one syscall. A failed poll reads.
 */
static __attribute__((noinline)) int
completions_eq_dry(struct zc_sock *zs, struct zc_completion *out,
		   unsigned int max)
{
	struct pollfd pf = { .fd = zs->fd };

	ZC_STAT_INC(&zs->rx, syscalls);
	if (!poll(&pf, 1, 0))
		return 0;
	return completions_eq_read(zs, out, max);
}

/*
 * The error queue's rx_reap: completions_ready() unless the oldest send
 * waits, then a read (completions_eq_read(), or completions_eq_dry() when
 * the last found nothing). Only tail calls: no registers to save. At
 * k = 1 over UDP every call reads.
 */
static __attribute__((noinline)) int
completions_eq(struct zc_sock *zs, struct zc_completion *out, unsigned int max)
{
	if (completions_unblocked(zs))
		return completions_ready(zs, out, max);
	/* Records the send side took on ENOBUFS: the general way. */
	if (__builtin_expect(zc_eq_harvest_news(zs), 0))
		return completions_eq_general(zs, out, max);
	if (zs->rx_dry)
		return completions_eq_dry(zs, out, max);
	return completions_eq_read(zs, out, max);
}

/*
 * completions_scm()'s hand-out left the chunk of e, its last entry
 * (zc_ring_hand_out()): let the chunk go. Returns 1, the completion
 * handed out, so that the call is a tail call and completions_scm()
 * needs no frame.
 */
static __attribute__((noinline)) int
completions_chunk_left(struct zc_sock *zs, struct zc_entry *e)
{
	zc__rx_chunk_left(zs, zc_chunk_of_last(e));
	return 1;
}

/*
 * SCM's rx_reap, with its common case inline: the oldest send waits for
 * its id (zc_ring_blocked()), one range collected by a send is there
 * (zc_scm_collect_as()), and it completes that send and no more
 * (zc_ring_reap_one()). At k = 1 over UDP every call (each send brings
 * the one before it's news). Everything is tested before anything is
 * taken; any other case goes the general way (completions_scm_other(),
 * or completions_scm_general() once the oldest send is known to wait).
 * No mark is out (zc_completions() tested rx_rare).
 */
static __attribute__((noinline)) int
completions_scm(struct zc_sock *zs, struct zc_completion *out,
		unsigned int max)
{
	struct scm_priv *p = zs->backend_priv;
	const uint32_t h = atomic_load_explicit(&zs->head,
						memory_order_relaxed);
	/*
	 * Once for all: acquire (seq_cst for zc_wait(), as zc_ring_reap()'s)
	 * pairs with zc_publish()'s store. Loaded before the ranges, it is
	 * zc_scm_collect_as()'s last_tail too.
	 */
	const uint32_t t = atomic_load_explicit(&zs->tail,
						memory_order_seq_cst);
	const uint32_t zc_head = zs->zc_head;
	const uint32_t rh = atomic_load_explicit(&p->rhead,
						 memory_order_relaxed);
	struct zc_entry *e = zs->rx_e, *next;
	const struct zc_range *r;
	uint32_t lo, hi, rt;
	bool copied;

	/*
	 * The oldest send, published, is a plain PENDING entry that waits
	 * for id zc_head, the run empty: zc_ring_blocked() is true, what
	 * completions_scm_general() needs.
	 */
	if (h == t || e->flags != ZC_ENT_PENDING || zc_head != zc_done_to(zs))
		return completions_scm_other(zs, out, max);
	/*
	 * The ranges the sends collected: acquire (seq_cst for zc_wait())
	 * rtail, pairs with zc__scm_send()'s store, as in
	 * zc_scm_apply_as().
	 */
	rt = (uint32_t)atomic_load_explicit(&p->rtail, memory_order_seq_cst);
	/*
	 * None, and sends ran since the last look: they will bring the news
	 * (zc_scm_collect_as()'s answer, without its frame). At k = 1 over
	 * TCP most reaps: a completion waits for the ACK.
	 */
	if (rt == rh && t != p->last_tail &&
	    !atomic_load_explicit(&p->broken, memory_order_relaxed)) {
		p->last_tail = t;
		return 0;
	}
	/*
	 * Exactly one range. No test of broken: a broken socket's sends
	 * push no range, so it reads the queue (zc_scm_collect_as()) on
	 * the next call, when the ring is empty, where the general way
	 * would have read it on this one.
	 */
	if (rt - rh != 1)
		return completions_scm_general(zs, out, max);
	r = &p->ranges[rh & (SCM_RANGES - 1)];
	lo = r->lo;
	hi = r->hi;
	copied = r->copied;
	/*
	 * The range is the one id zc_head. That id was issued, with no test
	 * of zc_issued (zc_ring_reap_one()'s): the PENDING entry at head,
	 * published (below the tail acquired), is the send that took it.
	 * The next entry is the tail or waits too.
	 */
	if (lo != zc_head || hi != lo)
		return completions_scm_general(zs, out, max);
	next = zc_ring_next_waits(e, h + 1, t);
	if (!next)
		return completions_scm_general(zs, out, max);
	/*
	 * The range taken, as zc_scm_apply_as() and zc_scm_collect_as()
	 * leave it. Release: pairs with the acquire of rhead in
	 * zc_scm_want(), after the range was read.
	 */
	atomic_store_explicit(&p->rhead, rh + 1, memory_order_release);
	p->last_tail = t;
	if (zc_ring_hand_out(zs, out, e, next, h + 1, lo, copied))
		return completions_chunk_left(zs, e);
	return 1;
}

ZC_EXPORT int zc_completions(struct zc_sock *zs, struct zc_completion *out,
			     unsigned int max)
{
	/*
	 * Relaxed amb: see collect_news(). A context's member: refused, by
	 * its rx_reap (completions_refused()). rx_rare: an error to report,
	 * or a mark out (ids reported out of order): the slow way, which
	 * takes any case.
	 */
	if (!zs || !out || max - 1 >= INT_MAX || zs->rx_rare ||
	    atomic_load_explicit(&zs->amb, memory_order_relaxed) ==
	    ZC_AMB_PENDING)
		return completions_slow(zs, out, max, false);
	/*
	 * Completions come in send order: while the oldest send waits for
	 * the kernel, nothing can be handed out before asking it. The
	 * backend's rx_reap tests that (completions_unblocked()), each with
	 * its common case inline, so that no index is loaded twice.
	 */
	return zs->rx_reap(zs, out, max);
}

/* zc_completions() for a context's reaper (ctx.c), under its lock. */
int zc__completions_member(struct zc_sock *zs, struct zc_completion *out,
			  unsigned int max)
{
	return completions_slow(zs, out, max, true);
}

/*
 * The read of an errqueue member's queue by a context's reaper, which
 * reaps the member next (ctx.c's reap_member()): zc__eq_drain(), except
 * that the record of the common read (one; at k = 1 every one) that
 * completes the oldest send and no more goes straight to *one, *handed
 * set, and the member has nothing else ready (zc_ring_reap_id()). That
 * skips applying the range to the ring and reaping it back, the general
 * reap's checks and its copy of the record. Only with no rare work to do
 * first (an error to report, a mark out, a failed send's id to settle),
 * which the general reap does before any completion.
 */
int zc__eq_read_member(struct zc_sock *zs, struct zc_completion *one,
		       bool *handed)
{
	*handed = false;
	if (zs->rx_rare ||
	    atomic_load_explicit(&zs->amb, memory_order_relaxed) ==
	    ZC_AMB_PENDING)
		return zc__eq_drain(zs);
	return zc_eq_read_as(zs, true, false, one, handed);
}

/*
 * zc__eq_read_member() of an scm member: with ranges its sends harvested
 * (or rare work), the backend's collect with force, as before; with
 * none, its error queue read as an errqueue member's, the record of the
 * common read handed out at once (the ids counted for the send side's
 * estimate, as zc__eq_drain() counts them). Seq_cst load of rtail, as
 * zc_scm_apply_as()'s; rhead is ours.
 */
int zc__scm_read_member(struct zc_sock *zs, struct zc_completion *one,
			bool *handed)
{
	struct scm_priv *p = zs->backend_priv;

	*handed = false;
	if ((uint32_t)atomic_load_explicit(&p->rtail, memory_order_seq_cst) !=
	    atomic_load_explicit(&p->rhead, memory_order_relaxed) ||
	    zs->rx_rare ||
	    atomic_load_explicit(&zs->amb, memory_order_relaxed) ==
	    ZC_AMB_PENDING)
		return zs->ops->collect(zs, true);
	p->last_tail = atomic_load_explicit(&zs->tail, memory_order_relaxed);
	return zc_eq_read_as(zs, true, false, one, handed);
}

/* Reap side: may the kernel still report ids we have not seen? */
static bool ids_outstanding(struct zc_sock *zs)
{
	/* Acquire: pairs with the release of zc_issued in zc_sendmsg(). */
	return atomic_load_explicit(&zs->zc_issued, memory_order_acquire) !=
	       zs->zc_head;
}

/*
 * zc_wait()'s look after a wake-up: hand out what the send side pushed or
 * the last read brought, without reading the error queue again. A record
 * that comes later raises POLLERR, and zc_wait() reads once then. The
 * backends whose news costs no syscall (uring's CQ, copy) and the rare
 * work (an error to report, a failed send to settle) take
 * zc_completions().
 */
static int completions_no_read(struct zc_sock *zs, struct zc_completion *out,
			       unsigned int max)
{
	if (zs->pending_err || atomic_load_explicit(&zs->amb,
			memory_order_relaxed) == ZC_AMB_PENDING)
		return zc_completions(zs, out, max);
	if (zs->ops == &zc__ops_scm)
		zc_scm_apply(zs);
	else if (zs->ops == &zc__ops_errqueue)
		zc__eq_take_harvest(zs, false);	/* the send side's, if any */
	else
		return zc_completions(zs, out, max);
	return zc_ring_reap(zs, out, max > INT_MAX ? INT_MAX : max);
}

/*
 * Reap side: did zc_completions() make room (head moved from h0) by
 * reaping failed sends alone, leaving no send in flight? Then no
 * completion will come to wait for, and a caller that waits because the
 * ring was full may send again.
 */
static bool ghosts_only(struct zc_sock *zs, uint32_t h0)
{
	return atomic_load_explicit(&zs->head, memory_order_relaxed) != h0 &&
	       !zc_inflight(zs);
}

ZC_EXPORT int zc_wait(struct zc_sock *zs, struct zc_completion *out,
		      unsigned int max, int timeout_ms)
{
	int64_t deadline = timeout_ms >= 0 ? zc_now_ms() + timeout_ms : 0;
	bool watch_fd;
	uint32_t h0;
	int n;

	/* Checked here, not by zc_completions(): the message names us. */
	if (!zs || (!out && max))
		return zc_err_lit(-EINVAL, "zc_wait: zs or out is NULL");
	if (timeout_ms < -1)
		return zc__err(-EINVAL, "zc_wait: timeout_ms %d", timeout_ms);
	if (zs->ctx)
		return zc_err_lit(-EINVAL, "zc_wait: the socket belongs to a "
				  "context: wait with zc_ctx_wait()");
	watch_fd = zs->ops->zerocopy && !zs->ops->news_on_efd;
	/* Relaxed: head is ours (the reap side's). */
	h0 = atomic_load_explicit(&zs->head, memory_order_relaxed);
	/*
	 * If the last read of the queue found nothing (a caller that reaps
	 * after each send, then waits), another read now would most likely
	 * find nothing either: hand out what is ready and let poll() say
	 * when a record is queued (POLLERR is level-triggered: at once if
	 * one already is). max 0 or past INT_MAX goes there.
	 */
	n = watch_fd && zs->rx_dry && max - 1 < INT_MAX ?
	    completions_no_read(zs, out, max) : zc_completions(zs, out, max);
	if (n || !max || ghosts_only(zs, h0))
		return n;
	if (atomic_load_explicit(&zs->efd, memory_order_relaxed) < 0) {
		int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

		if (efd < 0)
			return zc__err(-errno, "zc_wait: eventfd: %s",
				      strerror(errno));
		/* Release: pairs with the acquire in zc__wake_reaper(). */
		atomic_store_explicit(&zs->efd, efd, memory_order_release);
	}

	for (;;) {
		struct pollfd pfd[2] = {
			{ .fd = atomic_load_explicit(&zs->efd,
						     memory_order_relaxed),
			  .events = POLLIN },
			{ .fd = zs->fd, .events = 0 },	/* POLLERR: news */
		};
		int tmo = -1, nfds = 1, r;

		/*
		 * Store waiting, then load tail (seq_cst, in zc_ring_reap()):
		 * the send side stores tail, then loads waiting (zc_publish()).
		 * In the single total order of these seq_cst accesses one side
		 * sees the other: we see the entry, or the sender wakes us.
		 */
		atomic_store_explicit(&zs->waiting, 1, memory_order_seq_cst);
		/*
		 * The queue was read just before (above, or on POLLERR
		 * below): only where POLLERR cannot be watched, look again.
		 */
		n = watch_fd ? completions_no_read(zs, out, max) :
			       zc_completions(zs, out, max);
		if (n || ghosts_only(zs, h0))
			break;
		if (timeout_ms >= 0) {
			int64_t left = deadline - zc_now_ms();

			if (left <= 0)
				break;
			tmo = left > INT_MAX ? INT_MAX : (int)left;
		}
		if (watch_fd && ids_outstanding(zs))
			nfds = 2;
		else if (zs->ops->zerocopy && !zs->ops->news_on_efd &&
			 ids_outstanding(zs) && (tmo < 0 || tmo > 10))
			tmo = 10;	/* POLLERR is stuck on: look now and then */
		r = poll(pfd, nfds, tmo);
		ZC_STAT_INC(&zs->rx, syscalls);
		atomic_store_explicit(&zs->waiting, 0, memory_order_relaxed);
		if (r < 0) {
			n = zc__err(-errno, "zc_wait: poll: %s", strerror(errno));
			break;
		}
		if (pfd[0].revents & POLLIN) {
			uint64_t v;

			if (read(pfd[0].fd, &v, sizeof(v)) < 0) {
				/* EAGAIN: another wake already consumed it */
			}
			ZC_STAT_INC(&zs->rx, syscalls);
		}
		if (nfds == 2 && pfd[1].revents) {
			/*
			 * Read the queue even if the oldest send is not
			 * blocked: foreign records must not keep POLLERR on.
			 * POLLERR or POLLHUP with nothing queued is a socket
			 * error (sk_err) or a hang-up that stays: stop
			 * watching the fd and look every 10 ms instead.
			 */
			int ret = zs->ops->collect(zs, true);

			if (ret < 0) {
				n = zc__err(ret, "zc_wait: reading the error "
					   "queue: %s", strerror(-ret));
				break;
			}
			if (ret == 0)
				watch_fd = false;
		}
	}
	atomic_store_explicit(&zs->waiting, 0, memory_order_relaxed);
	return n;
}

ZC_EXPORT unsigned int zc_inflight(const struct zc_sock *zs)
{
	uint32_t h, t, g, d;

	if (!zs)
		return 0;
	/*
	 * From any thread: head, then tail, then head again. If head did not
	 * move, tail - head is a count that was true at some instant (tail
	 * never passes head + max_inflight); if it moved, look again. Less
	 * the ghost entries (failed sends): reaped ones are counted before
	 * head moves past them, made ones after tail does, so g never
	 * exceeds those between the two.
	 */
	do {
		/* Acquire: pairs with the release of head in zc_ring_reap(). */
		h = atomic_load_explicit(&zs->head, memory_order_acquire);
		g = -atomic_load_explicit(&zs->ghosts_reaped,
					  memory_order_relaxed);
		/* Acquire: pairs with the release in send_failed(). */
		g += atomic_load_explicit(&zs->ghosts_made,
					  memory_order_acquire);
		/*
		 * Done entries not handed out yet (a context's uring member:
		 * sends complete in their batch, not in the ring): taken
		 * first, then made, so that the count is never negative
		 * (both only grow, taken never past made).
		 */
		d = -atomic_load_explicit(&zs->done_taken,
					  memory_order_acquire);
		d += atomic_load_explicit(&zs->done_made, memory_order_acquire);
		t = atomic_load_explicit(&zs->tail, memory_order_acquire);
	} while (h != atomic_load_explicit(&zs->head, memory_order_acquire));
	return (t - h > g ? t - h - g : 0) + d;
}

ZC_EXPORT int zc_backend(const struct zc_sock *zs)
{
	if (!zs)
		return zc_err_lit(-EINVAL, "zc_backend: zs is NULL");
	return zs->ops->id;
}

ZC_EXPORT int zc_foreign(struct zc_sock *zs, struct zc_errrec *out,
			 unsigned int max)
{
	if (!zs || (!out && max))
		return zc_err_lit(-EINVAL, "zc_foreign: zs or out is NULL");
	if (zs->ctx)	/* under the context's lock */
		return zc__ctx_foreign(zs, out, max);
	return zc__foreign_member(zs, out, max);
}

/* zc_foreign(), its arguments checked; ctx.c calls it under its lock. */
int zc__foreign_member(struct zc_sock *zs, struct zc_errrec *out,
		      unsigned int max)
{
	unsigned int n = 0;

	if (zs->ops->zerocopy) {
		int ret = zs->ops->collect(zs, true);

		if (ret < 0 && !zs->nforeign)
			return zc__err(ret, "zc_foreign: reading the error "
				      "queue: %s", strerror(-ret));
	}
	while (n < max && zs->nforeign) {
		out[n++] = zs->foreign[zs->foreign_first];
		zs->foreign_first = (zs->foreign_first + 1) % ZC_FOREIGN_MAX;
		zs->nforeign--;
	}
	return (int)n;
}

ZC_EXPORT int zc_get_stats(const struct zc_sock *zs, struct zc_stats *st)
{
	struct zc_stats s = { .sz = sizeof(s) };
	size_t sz;

	if (!zs || !st)
		return zc_err_lit(-EINVAL, "zc_get_stats: zs or st is NULL");
	sz = st->sz;
	if (sz < sizeof(size_t))
		return zc__err(-EINVAL, "zc_get_stats: st->sz is %zu, must be "
			      "sizeof(struct zc_stats)", sz);
	/* Each side's counters; relaxed: each only grows. */
#define TX(f)	atomic_load_explicit(&zs->tx.f, memory_order_relaxed)
#define RX(f)	atomic_load_explicit(&zs->rx.f, memory_order_relaxed)
	s.sends_zc = TX(sends_zc);
	s.sends_copy = TX(sends_copy);
	s.enobufs_fallback = TX(enobufs_fallback);
	s.adapt_copy = TX(adapt_copy);
	s.enobufs_waited = TX(enobufs_waited);
	s.completions_zc = RX(completions_zc);
	s.completions_copied = RX(completions_copied);
	/* Counted by the range ring's tail: see struct scm_priv. */
	s.harvest_cmsg = zs->ops == &zc__ops_scm ? zc_scm_harvested(zs) : 0;
	s.harvest_recvmsg = RX(harvest_recvmsg) + RX(eq_one);
	s.errqueue_reads = RX(errqueue_reads) + RX(eq_one);
	s.syscalls = TX(syscalls) + RX(syscalls);
	s.foreign = RX(foreign);
	s.foreign_dropped = RX(foreign_dropped);
	s.ctrunc = RX(ctrunc);
	s.bad_ranges = TX(bad_ranges) + RX(bad_ranges);
#undef TX
#undef RX
	/* Never counted on the hot paths: see struct zc_tx_stats. */
	s.sends = s.sends_zc + s.sends_copy;
	s.completions = s.completions_zc + s.completions_copied;
	s.syscalls += s.errqueue_reads;
	/* One for each send where the send is the syscall (sys.h). */
	if (zs->tx_direct)
		s.syscalls += s.sends;
	zc__copy_sized(st, sz, &s, sizeof(s));
	return 0;
}
