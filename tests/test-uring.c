// SPDX-License-Identifier: MIT
/*
 * The io_uring backend (ZC_BACKEND_URING) on the running kernel, over
 * loopback, through the public API only.
 *
 * stream-{tcp4,tcp6,udp4,udp6}: ZC_TEST_SENDS messages (default 20000,
 *   10000 under sanitizers) of varied sizes, copy_below = 1 and
 *   ZC_OPT_NO_ADAPT so that every send is an io_uring zero-copy request;
 *   a receiver thread checks every byte. Calls come with one to three
 *   iovecs (SEND_ZC or SENDMSG_ZC), UDP ones now and then with msg_name or
 *   a control message, a quarter with MSG_DONTWAIT. Each buffer serves one
 *   call and is poisoned when that call's completion is reaped. Every call
 *   that returned > 0 completes exactly once, in send order, with its byte
 *   count and (REPORT_USAGE: loopback copies) ZC_COPIED; no failed call
 *   completes.
 * threads-{tcp4,udp6}: the same with a sender and a reaper thread on one
 *   zc_sock (no lock between them; run it under ThreadSanitizer).
 * eagain-*: a full socket returns -EAGAIN and no completion: with
 *   MSG_DONTWAIT, with O_NONBLOCK set before zc_open(), and set after it
 *   (the parked request is cancelled); eagain-linked{,-ctx,-mmsg}: at
 *   once also when the kernel chained the failed send's notification to
 *   unsent data of earlier sends (see eagain_linked()); -late: the socket
 *   made blocking since, the same send waits for that notification, then
 *   sends.
 * blocking, blocking-late: a blocking socket (also one that was
 *   non-blocking at zc_open()) waits for room and sends everything.
 * blocking-mixed: copying and zero-copy sends on a blocking TCP socket:
 *   every call sends everything (the ring's task work interrupts a copying
 *   sendmsg(2) that waits for room; the library sends the rest).
 * blocking-signals: the same for copying sends while signals without
 *   SA_RESTART keep arriving: -EINTR before any byte, never a short count.
 * peer-closed-{tcp,udp}: error CQEs (-ECONNRESET/-EPIPE, -ECONNREFUSED):
 *   the call fails, nothing completes for it, earlier sends still do.
 * idle-{same,thread,exited}: notifications that arrive while no send
 *   runs reach zc_wait(): the submitting thread is the waiter, is asleep
 *   elsewhere, or has exited.
 * no-usage: ZCNOTIFY_URING_USAGE=no: the kernel is not asked, so no
 *   completion says ZC_COPIED.
 * basics: backend id, AUTO never picks uring, AF_UNIX is refused, empty
 *   and short sends are library copies, zc_close() with sends in flight,
 *   max_inflight 1.
 * fake-* (test-uring-fake only): the backend against a fake io_uring, for
 *   what the host kernel cannot produce; see "a fake io_uring" below.
 *
 * Usage: test-uring [name...] (no argument: all). Exits 77 if this build
 * or this kernel lacks the backend.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "zcnotify.h"
#include "testutil.h"
#ifdef ZC_URING_FAKE
#include <liburing.h>
#include "internal.h"		/* zc__uring_probe_reset() */
#endif

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define DEFAULT_SENDS	10000
#else
#define DEFAULT_SENDS	20000
#endif

#define BUF_SIZE	65536u
#define TCP_MAX		65536u
#define UDP_MAX		65000u
#define UDP_MIN		8u
#define UDP_WINDOW	16u	/* datagrams ahead of the receiver */
#define WAIT_MS		5000	/* a completion later than this is a bug */
#define STALL_S		20
#define NONE		UINT32_MAX

static uint64_t nsends = DEFAULT_SENDS;

/* ---- data ---------------------------------------------------------------- */

/* Byte off of the stream seed: a TCP stream, or the body of a datagram. */
static void fill(uint8_t *p, uint64_t seed, uint64_t off, size_t len)
{
	size_t i = 0;

	while (i < len) {
		uint64_t o = off + i, w = mix64(seed ^ (o >> 3));

		for (unsigned int sh = o & 7; sh < 8 && i < len; sh++)
			p[i++] = (uint8_t)(w >> (sh * 8));
	}
}

/* Index of the first byte that differs from the stream, or len. */
static size_t check(const uint8_t *p, uint64_t seed, uint64_t off, size_t len)
{
	uint8_t want[4096];

	for (size_t done = 0; done < len; done += sizeof(want)) {
		size_t n = len - done < sizeof(want) ? len - done : sizeof(want);

		fill(want, seed, off + done, n);
		if (memcmp(p + done, want, n))
			for (size_t i = 0; i < n; i++)
				if (p[done + i] != want[i])
					return done + i;
	}
	return len;
}

static uint64_t dgram_seed(uint64_t seed, uint64_t i)
{
	return mix64(seed ^ (i * 0xD6E8FEB86659FD93ull));
}

/* Datagram i: its sequence number, then its own stream. */
static void fill_dgram(uint8_t *p, uint64_t seed, uint64_t i, size_t len)
{
	memcpy(p, &i, sizeof(i));
	fill(p + 8, dgram_seed(seed, i), 8, len - 8);
}

static size_t msg_size(uint64_t seed, bool udp, uint64_t i)
{
	uint64_t h = mix64(seed + i);
	uint32_t pick = h & 3, max = udp ? UDP_MAX : TCP_MAX;
	size_t min = udp ? UDP_MIN : 1, n;

	h >>= 2;
	if (pick < 2)
		n = 1 + h % 4096;
	else if (pick == 2)
		n = 4096 + h % 28672;
	else
		n = 32768 + h % (max - 32768 + 1);
	return n < min ? min : n;
}

/* ---- sockets ------------------------------------------------------------- */

/* A connected loopback pair; *peer gets rx's address (for msg_name). */
static void make_pair(int family, int type, int *tx, int *rx,
		      struct sockaddr_storage *peer, socklen_t *peerlen)
{
	int ret = loopback_pair(family, type, tx, rx, peer, peerlen);

	if (ret)
		fail_msg("loopback pair: %s", strerror(-ret));
}

static struct zc_sock *open_uring(int fd, uint32_t max_inflight)
{
	struct zc_opts o = {
		.sz = sizeof(o), .backend = ZC_BACKEND_URING,
		.copy_below = 1, .flags = ZC_OPT_NO_ADAPT,
		.max_inflight = max_inflight,
	};
	struct zc_sock *zs = NULL;
	int ret = zc_open(fd, &o, &zs);

	if (ret)
		fail_msg("zc_open(URING): %s (%s)", strerror(-ret),
			 zc_last_error());
	assert_int_equal(zc_backend(zs), ZC_BACKEND_URING);
	return zs;
}

/* Does the running kernel report usage? (Read from a first completion.) */
static bool usage_reported(void)
{
	const char *env = getenv("ZCNOTIFY_URING_USAGE");

	return !(env && !strcmp(env, "no"));
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void stats_of(struct zc_sock *zs, struct zc_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->sz = sizeof(*st);
	assert_int_equal(zc_get_stats(zs, st), 0);
}

/* ---- the streaming runs -------------------------------------------------- */

struct meta {
	uint32_t buf;		/* the call's buffer */
	uint32_t asked;		/* bytes it offered */
};

struct run {
	int family, type, tx, rx;
	bool udp, threaded;
	uint64_t seed;
	struct zc_sock *zs;
	struct prng rnd;		/* send side (and reaping, unthreaded) */
	struct prng rrnd;		/* the reaper thread's */
	struct sockaddr_storage peer;
	socklen_t peerlen;

	/* Per cookie, preallocated (the reaper reads what the sender
	 * wrote before the send: ordered by the library). */
	uint64_t cap, ncookies, ncalls;
	struct meta *meta;
	int32_t *sent;		/* send side: bytes returned, -1 failed */
	uint32_t *got;		/* reap side: bytes the completion said */
	uint8_t *done;		/* reap side */
	uint64_t last;		/* reap side: last cookie completed + 1 */
	uint64_t reaped, libcopy, notcopied;

	/* Buffers: one call each; freed by the reap side through an SPSC
	 * queue back to the send side. */
	uint8_t *mem;
	uint32_t nbuf, qmask;
	uint32_t *q;
	alignas(64) _Atomic uint32_t qtail;	/* reap side */
	alignas(64) _Atomic uint32_t qhead;	/* send side */
	uint32_t spare;				/* send side */

	/* Threads. */
	_Atomic uint64_t nok_final;		/* set when the sender is done */
	_Atomic int sender_done, failed;
	_Atomic uint64_t rx_count, rx_bytes;
	uint64_t total;				/* TCP bytes sent */
	char err[512];
	char rx_err[256];
};

static void run_fail(struct run *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void run_fail(struct run *r, const char *fmt, ...)
{
	va_list ap;
	int expect = 0;

	if (!atomic_compare_exchange_strong(&r->failed, &expect, 1))
		return;
	va_start(ap, fmt);
	vsnprintf(r->err, sizeof(r->err), fmt, ap);
	va_end(ap);
}

#define RCHECK(r, cond, ...) do {				\
		if (!(cond)) {					\
			run_fail((r), __VA_ARGS__);		\
			return -1;				\
		}						\
	} while (0)

static uint8_t *bufp(struct run *r, uint32_t b)
{
	return r->mem + (size_t)b * BUF_SIZE;
}

/* Reap side: one completion. */
static int on_completion(struct run *r, const struct zc_completion *c)
{
	uint64_t k = c->cookie;
	const struct meta *m;

	RCHECK(r, k < r->cap, "completion with cookie %llu out of range",
	       (unsigned long long)k);
	RCHECK(r, !r->done[k], "cookie %llu completed twice",
	       (unsigned long long)k);
	RCHECK(r, k >= r->last, "cookie %llu completed after %llu (out of "
	       "send order)", (unsigned long long)k,
	       (unsigned long long)r->last - 1);
	m = &r->meta[k];
	RCHECK(r, c->bytes >= 1 && c->bytes <= m->asked, "cookie %llu: %u "
	       "bytes of %u", (unsigned long long)k, c->bytes, m->asked);
	RCHECK(r, !(c->flags & ~(ZC_COPIED | ZC_LIB_COPY)), "cookie %llu: "
	       "flags 0x%x", (unsigned long long)k, c->flags);
	if (c->flags & ZC_LIB_COPY)
		r->libcopy++;
	else if (!(c->flags & ZC_COPIED))
		r->notcopied++;
	r->done[k] = 1;
	r->got[k] = c->bytes;
	r->last = k + 1;
	r->reaped++;

	/* The kernel is done with the pages: poison, give back. */
	memset(bufp(r, m->buf), 0xEE, m->asked);
	{
		uint32_t t = atomic_load_explicit(&r->qtail,
						  memory_order_relaxed);

		r->q[t & r->qmask] = m->buf;
		/* Release: pairs with the acquire in get_buf(). */
		atomic_store_explicit(&r->qtail, t + 1, memory_order_release);
	}
	return 0;
}

static int take(struct run *r, const struct zc_completion *out, int n,
		const char *what)
{
	RCHECK(r, n >= 0, "%s: %s (%s)", what, strerror(-n), zc_last_error());
	for (int i = 0; i < n; i++)
		if (on_completion(r, &out[i]))
			return -1;
	return n;
}

static int reap_some(struct run *r)
{
	struct zc_completion out[64];
	unsigned int max = 1 + prng_below(&r->rnd, 64);

	if (prng_below(&r->rnd, 4) == 0)
		return take(r, out, zc_wait(r->zs, out, max, 0), "zc_wait(0)");
	return take(r, out, zc_completions(r->zs, out, max), "zc_completions");
}

static int reap_wait(struct run *r)
{
	struct zc_completion out[64];
	unsigned int inflight = zc_inflight(r->zs);
	int n = zc_wait(r->zs, out, 64, WAIT_MS);

	if (n == 0) {
		struct zc_stats st;

		stats_of(r->zs, &st);
		run_fail(r, "zc_wait: nothing within %d ms with %u in flight "
			 "(a lost notification or wake-up; sends_zc %llu, "
			 "completions %llu, bad_ranges %llu)", WAIT_MS, inflight,
			 (unsigned long long)st.sends_zc,
			 (unsigned long long)st.completions,
			 (unsigned long long)st.bad_ranges);
		return -1;
	}
	return take(r, out, n, "zc_wait");
}

/* Send side: a free buffer, or NONE. */
static uint32_t get_buf(struct run *r)
{
	uint32_t h = atomic_load_explicit(&r->qhead, memory_order_relaxed);

	if (r->spare != NONE) {
		uint32_t b = r->spare;

		r->spare = NONE;
		return b;
	}
	/* Acquire: pairs with the release in on_completion(). */
	if (h == atomic_load_explicit(&r->qtail, memory_order_acquire))
		return NONE;
	atomic_store_explicit(&r->qhead, h + 1, memory_order_relaxed);
	return r->q[h & r->qmask];
}

static void *rx_main(void *arg)
{
	struct run *r = arg;
	size_t cap = 256 * 1024;
	uint8_t *buf = malloc(cap);
	uint64_t off = 0, i = 0;
	int idle = 0;

	if (!buf) {
		run_fail(r, "receiver: out of memory");
		return NULL;
	}
	while (!r->udp || i < nsends) {
		ssize_t n = recv(r->rx, buf, cap, r->udp ? MSG_TRUNC : 0);
		size_t bad;

		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			if (atomic_load(&r->failed))
				break;
			if (++idle >= STALL_S) {
				snprintf(r->rx_err, sizeof(r->rx_err),
					 "receiver: nothing for %d s", STALL_S);
				break;
			}
			continue;
		}
		idle = 0;
		if (n < 0) {
			snprintf(r->rx_err, sizeof(r->rx_err), "recv: %s",
				 strerror(errno));
			break;
		}
		if (!r->udp) {
			if (n == 0)
				break;
			bad = check(buf, r->seed, off, (size_t)n);
			if (bad < (size_t)n) {
				snprintf(r->rx_err, sizeof(r->rx_err), "stream "
					 "byte %llu: got 0x%02x (buffer reused "
					 "before the kernel let go of it?)",
					 (unsigned long long)(off + bad),
					 buf[bad]);
				break;
			}
			off += (uint64_t)n;
			atomic_store(&r->rx_bytes, off);
			continue;
		}
		{
			size_t want = msg_size(r->seed, true, i);
			uint64_t seq;

			memcpy(&seq, buf, sizeof(seq));
			if ((size_t)n != want || seq != i) {
				snprintf(r->rx_err, sizeof(r->rx_err), "datagram "
					 "%llu: %zd bytes, sequence %llu (want "
					 "%zu)", (unsigned long long)i, n,
					 (unsigned long long)seq, want);
				break;
			}
			bad = check(buf + 8, dgram_seed(r->seed, i), 8, want - 8);
			if (bad < want - 8) {
				snprintf(r->rx_err, sizeof(r->rx_err), "datagram "
					 "%llu, byte %zu: got 0x%02x (buffer "
					 "reused early?)", (unsigned long long)i,
					 bad + 8, buf[bad + 8]);
				break;
			}
			i++;
			atomic_store_explicit(&r->rx_count, i,
					      memory_order_release);
		}
	}
	free(buf);
	if (r->rx_err[0])
		run_fail(r, "%s", r->rx_err);
	return NULL;
}

static void *reaper_main(void *arg)
{
	struct run *r = arg;
	double last_progress = now_s();
	uint64_t seen = 0;

	while (!atomic_load(&r->failed)) {
		struct zc_completion out[64];
		int n = zc_wait(r->zs, out, 1 + prng_below(&r->rrnd, 64), 200);

		if (take(r, out, n, "zc_wait (reaper)") < 0)
			break;
		if (n > 0 || r->reaped != seen) {
			seen = r->reaped;
			last_progress = now_s();
		}
		/* Acquire: pairs with the release when the sender is done. */
		if (atomic_load_explicit(&r->sender_done, memory_order_acquire) &&
		    r->reaped == atomic_load(&r->nok_final))
			break;
		if (zc_inflight(r->zs) && now_s() - last_progress > WAIT_MS / 1e3) {
			run_fail(r, "reaper: no completion for %d ms with %u in "
				 "flight", WAIT_MS, zc_inflight(r->zs));
			break;
		}
		/* Now and then nap, so that the ring fills up. */
		if (prng_below(&r->rrnd, 512) == 0)
			usleep(2000);
	}
	return NULL;
}

/* Send side: no free buffer; wait for one. */
static int wait_buf(struct run *r, uint32_t *b)
{
	double t0 = now_s();

	while ((*b = get_buf(r)) == NONE) {
		RCHECK(r, !atomic_load(&r->failed), "failed elsewhere");
		if (!r->threaded) {
			if (reap_wait(r) < 0)
				return -1;
			continue;
		}
		RCHECK(r, now_s() - t0 < STALL_S, "no buffer came back for %d s",
		       STALL_S);
		sched_yield();
	}
	return 0;
}

static int udp_window(struct run *r, uint64_t i)
{
	double t0 = now_s();

	/* Acquire: pairs with the release in rx_main(). */
	while (i - atomic_load_explicit(&r->rx_count, memory_order_acquire) >=
	       UDP_WINDOW) {
		RCHECK(r, !atomic_load(&r->failed), "failed elsewhere");
		RCHECK(r, now_s() - t0 < STALL_S, "UDP: receiver stuck at %llu",
		       (unsigned long long)atomic_load(&r->rx_count));
		if (!r->threaded && zc_inflight(r->zs) && reap_some(r) < 0)
			return -1;
		usleep(50);
	}
	return 0;
}

/* One call: bytes [off, off + len) of message i (TCP: of the stream). */
static ssize_t send_call(struct run *r, uint64_t i, uint64_t off, size_t len,
			 uint32_t b, uint64_t k, int *flagsp)
{
	alignas(struct cmsghdr) unsigned char ctrl[CMSG_SPACE(sizeof(int))];
	struct iovec iov[3];
	struct msghdr m = { .msg_iov = iov };
	uint8_t *p = bufp(r, b);
	int flags = MSG_NOSIGNAL;
	unsigned int parts = 1 + (prng_below(&r->rnd, 3) == 0 ?
				  prng_below(&r->rnd, 3) : 0);
	size_t at = 0;

	if (r->udp)
		fill_dgram(p, r->seed, i, len);
	else
		fill(p, r->seed, off, len);
	r->meta[k] = (struct meta){ .buf = b, .asked = (uint32_t)len };
	/*
	 * A zero-copy datagram must fit in MAX_SKB_FRAGS (17) page
	 * fragments, or the kernel says EMSGSIZE (MSG_ZEROCOPY as well):
	 * several unaligned iovecs only for datagrams up to 32 KiB.
	 */
	if (parts > len || (r->udp && len > 32768))
		parts = 1;
	for (unsigned int j = 0; j < parts; j++) {
		size_t n = j + 1 == parts ? len - at :
			   1 + prng_below(&r->rnd, (uint32_t)(len - at - (parts - 1 - j)));

		iov[j] = (struct iovec){ .iov_base = p + at, .iov_len = n };
		at += n;
	}
	m.msg_iovlen = parts;
	if (r->udp && prng_below(&r->rnd, 8) == 0) {
		m.msg_name = &r->peer;
		m.msg_namelen = r->peerlen;
	}
	if (r->udp && prng_below(&r->rnd, 16) == 0) {
		struct cmsghdr *c = (struct cmsghdr *)ctrl;
		int ttl = 64;

		c->cmsg_len = CMSG_LEN(sizeof(int));
		c->cmsg_level = r->family == AF_INET ? IPPROTO_IP : IPPROTO_IPV6;
		c->cmsg_type = r->family == AF_INET ? IP_TTL : IPV6_HOPLIMIT;
		memcpy(CMSG_DATA(c), &ttl, sizeof(ttl));
		m.msg_control = ctrl;
		m.msg_controllen = sizeof(ctrl);
	}
	if (prng_below(&r->rnd, 4) == 0)
		flags |= MSG_DONTWAIT;
	*flagsp = flags;
	return zc_sendmsg(r->zs, &m, flags, k);
}

static int sender(struct run *r, uint64_t *nok)
{
	uint64_t stream = 0;

	for (uint64_t i = 0; i < nsends; i++) {
		size_t size = msg_size(r->seed, r->udp, i), off = 0;

		while (off < size) {
			uint64_t k = r->ncookies;
			ssize_t ret;
			uint32_t b;
			int flags;

			RCHECK(r, !atomic_load(&r->failed), "failed elsewhere");
			RCHECK(r, k < r->cap, "more than %llu cookies",
			       (unsigned long long)r->cap);
			if (r->udp && udp_window(r, i))
				return -1;
			if (wait_buf(r, &b))
				return -1;
			r->ncookies++;
			r->ncalls++;
			r->sent[k] = -1;
			ret = send_call(r, i, stream + off, size - off, b, k,
					&flags);
			if (ret == -ENOBUFS || ret == -EAGAIN) {
				struct pollfd pfd = { .fd = r->tx,
						      .events = POLLOUT };

				/*
				 * Nothing was sent from the buffer, and the
				 * retry takes the same cookie: a completion
				 * of the failed call would come twice.
				 */
				r->spare = b;
				r->ncookies = k;
				if (ret == -EAGAIN)
					RCHECK(r, flags & MSG_DONTWAIT, "-EAGAIN "
					       "without MSG_DONTWAIT on a "
					       "blocking socket");
				if (r->threaded) {
					sched_yield();
				} else if (ret == -ENOBUFS) {
					if (reap_wait(r) < 0)
						return -1;
				} else {
					if (zc_inflight(r->zs) &&
					    reap_some(r) < 0)
						return -1;
					poll(&pfd, 1, 100);
				}
				continue;
			}
			RCHECK(r, ret > 0 && (size_t)ret <= size - off,
			       "zc_sendmsg(%zu bytes) returned %zd (%s)",
			       size - off, ret, ret < 0 ? zc_last_error() : "");
			if (r->udp)
				RCHECK(r, (size_t)ret == size, "UDP: %zd of %zu",
				       ret, size);
			if (!(flags & MSG_DONTWAIT) && !r->udp)
				RCHECK(r, (size_t)ret == size - off, "blocking "
				       "TCP send returned %zd of %zu", ret,
				       size - off);
			r->sent[k] = (int32_t)ret;
			(*nok)++;
			off += (size_t)ret;
			if (!r->threaded && prng_below(&r->rnd, 4) == 0 &&
			    reap_some(r) < 0)
				return -1;
		}
		stream += size;
	}
	r->total = stream;
	return 0;
}

static void stream_run(int family, int type, bool threaded)
{
	struct run *r = calloc(1, sizeof(*r));
	uint32_t max_inflight = threaded ? 64 : 256;
	struct timeval tv = { .tv_sec = 1 };
	pthread_t rxt, rpt;
	struct zc_stats st;
	uint64_t nok = 0;
	double t0, t1;
	int big = 8 << 20;

	assert_non_null(r);
	r->family = family;
	r->type = type;
	r->udp = type == SOCK_DGRAM;
	r->threaded = threaded;
	r->seed = mix64((uint64_t)family * 31 + (uint64_t)type * 7 + threaded);
	r->rnd.s = r->seed ^ 0x5EED;
	r->rrnd.s = r->seed ^ 0xEAE;
	r->nbuf = max_inflight + 64;
	r->qmask = 1023;
	r->cap = nsends * 8 + 4096;
	r->meta = calloc(r->cap, sizeof(*r->meta));
	r->sent = calloc(r->cap, sizeof(*r->sent));
	r->got = calloc(r->cap, sizeof(*r->got));
	r->done = calloc(r->cap, 1);
	r->q = calloc(r->qmask + 1, sizeof(*r->q));
	r->mem = malloc((size_t)r->nbuf * BUF_SIZE);
	assert_true(r->meta && r->sent && r->got && r->done && r->q && r->mem);
	r->spare = NONE;
	for (uint32_t b = 0; b < r->nbuf; b++)
		r->q[b] = b;
	atomic_store(&r->qtail, r->nbuf);

	make_pair(family, type, &r->tx, &r->rx, &r->peer, &r->peerlen);
	if (r->udp) {
		if (setsockopt(r->rx, SOL_SOCKET, SO_RCVBUFFORCE, &big,
			       sizeof(big)))
			setsockopt(r->rx, SOL_SOCKET, SO_RCVBUF, &big,
				   sizeof(big));
	} else {
		int small = 256 << 10;

		setsockopt(r->tx, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
		setsockopt(r->rx, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	}
	setsockopt(r->rx, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	r->zs = open_uring(r->tx, max_inflight);

	t0 = now_s();
	assert_int_equal(pthread_create(&rxt, NULL, rx_main, r), 0);
	if (threaded)
		assert_int_equal(pthread_create(&rpt, NULL, reaper_main, r), 0);
	if (sender(r, &nok) == 0 && !threaded)
		while (r->reaped < nok && reap_wait(r) >= 0)
			;
	atomic_store(&r->nok_final, nok);
	/* Release: pairs with the acquire in reaper_main(). */
	atomic_store_explicit(&r->sender_done, 1, memory_order_release);
	if (threaded)
		pthread_join(rpt, NULL);
	if (!r->udp)
		shutdown(r->tx, SHUT_WR);
	pthread_join(rxt, NULL);
	t1 = now_s();

	stats_of(r->zs, &st);
	fprintf(stderr, "  %s%s: %llu messages, %llu calls (%llu ok), %.2f s; "
		"sends_zc %llu, sends_copy %llu, completions_copied %llu, "
		"%.2f syscalls per completion\n",
		r->udp ? "udp" : "tcp", family == AF_INET ? "4" : "6",
		(unsigned long long)nsends, (unsigned long long)r->ncalls,
		(unsigned long long)nok, t1 - t0,
		(unsigned long long)st.sends_zc,
		(unsigned long long)st.sends_copy,
		(unsigned long long)st.completions_copied,
		st.completions ? (double)st.syscalls / (double)st.completions : 0);
	if (atomic_load(&r->failed))
		fail_msg("%s", r->err);

	/* Exactly once, with the bytes the call returned; failed: never. */
	assert_int_equal(zc_inflight(r->zs), 0);
	for (uint64_t k = 0; k < r->ncookies; k++) {
		if (r->done[k] != (r->sent[k] > 0))
			fail_msg("cookie %llu (returned %d) %s",
				 (unsigned long long)k, r->sent[k],
				 r->done[k] ? "completed" : "never completed");
		if (r->done[k] && r->got[k] != (uint32_t)r->sent[k])
			fail_msg("cookie %llu: completion says %u bytes, the "
				 "call returned %d", (unsigned long long)k,
				 r->got[k], r->sent[k]);
	}
	assert_int_equal(r->reaped, nok);
	if (!r->udp)
		assert_int_equal(atomic_load(&r->rx_bytes), r->total);
	else
		assert_int_equal(atomic_load(&r->rx_count), nsends);
	assert_int_equal(st.sends, nok);
	assert_int_equal(st.completions, nok);
	assert_int_equal(st.sends_zc + st.sends_copy, st.sends);
	/* Only a refused pin is copied by the library (ENOBUFS fallback). */
	assert_int_equal(st.sends_copy, st.enobufs_fallback);
	assert_int_equal(r->libcopy, st.sends_copy);
	assert_int_equal(st.adapt_copy, 0);
	assert_int_equal(st.bad_ranges, 0);
	if (usage_reported()) {
		/* Loopback copies every zero-copy send, and says so. */
		assert_int_equal(r->notcopied, 0);
		assert_int_equal(st.completions_copied, st.completions);
	}

	zc_close(r->zs);
	close(r->tx);
	close(r->rx);
	free(r->meta);
	free(r->sent);
	free(r->got);
	free(r->done);
	free(r->q);
	free(r->mem);
	free(r);
}

static void t_stream_tcp4(void **s) { (void)s; stream_run(AF_INET, SOCK_STREAM, false); }
static void t_stream_tcp6(void **s) { (void)s; stream_run(AF_INET6, SOCK_STREAM, false); }
static void t_stream_udp4(void **s) { (void)s; stream_run(AF_INET, SOCK_DGRAM, false); }
static void t_stream_udp6(void **s) { (void)s; stream_run(AF_INET6, SOCK_DGRAM, false); }
static void t_threads_tcp4(void **s) { (void)s; stream_run(AF_INET, SOCK_STREAM, true); }
static void t_threads_udp6(void **s) { (void)s; stream_run(AF_INET6, SOCK_DGRAM, true); }

/* ---- edge cases ---------------------------------------------------------- */

static uint8_t big_buf[1 << 20];

static void on_alarm(int sig)
{
	static const char msg[] = "FAIL: a send blocked (no -EAGAIN)\n";

	(void)sig;
	if (write(2, msg, sizeof(msg) - 1) < 0) {
		/* nothing more to do */
	}
	_exit(1);
}

/*
 * A TCP pair with small buffers; the receiver does not read yet. (Not
 * tiny: a receive buffer far below the MSS leaves TCP probing a zero
 * window on its persist timer, a few KB a second.)
 */
static void tiny_pair(int *tx, int *rx)
{
	int small = 64 << 10;

	make_pair(AF_INET, SOCK_STREAM, tx, rx, NULL, NULL);
	setsockopt(*tx, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	setsockopt(*rx, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
}

/* Read n bytes from fd. */
static void read_all(int fd, uint64_t n)
{
	static uint8_t sink[1 << 16];

	while (n) {
		ssize_t r = recv(fd, sink, n < sizeof(sink) ? n : sizeof(sink), 0);

		if (r < 0 && errno == EINTR)
			continue;
		assert_true(r > 0);
		n -= (uint64_t)r;
	}
}

/*
 * Reap until every cookie with ok[k] completed; none with !ok[k] may.
 * Returns the number of completions.
 */
static uint64_t reap_all(struct zc_sock *zs, const bool *ok, uint64_t n)
{
	uint64_t want = 0, got = 0;

	for (uint64_t k = 0; k < n; k++)
		want += ok[k];
	while (got < want) {
		struct zc_completion out[64];
		int m = zc_wait(zs, out, 64, WAIT_MS);

		if (m <= 0)
			fail_msg("zc_wait returned %d with %llu of %llu "
				 "completed (%s)", m, (unsigned long long)got,
				 (unsigned long long)want, zc_last_error());
		for (int i = 0; i < m; i++) {
			assert_true(out[i].cookie < n);
			if (!ok[out[i].cookie])
				fail_msg("cookie %llu completed, but its call "
					 "failed", (unsigned long long)out[i].cookie);
		}
		got += (uint64_t)m;
	}
	assert_int_equal(zc_inflight(zs), 0);
	assert_int_equal(zc_completions(zs, (struct zc_completion[1]){ 0 }, 1), 0);
	return got;
}

enum { EA_DONTWAIT, EA_NONBLOCK, EA_NONBLOCK_LATE };

static void eagain_run(int how)
{
	int tx, rx, eagain = 0;
	bool ok[4096] = { false };
	uint64_t bytes = 0, k;
	struct zc_sock *zs;
	struct zc_stats st;

	tiny_pair(&tx, &rx);
	if (how == EA_NONBLOCK)
		fcntl(tx, F_SETFL, fcntl(tx, F_GETFL) | O_NONBLOCK);
	zs = open_uring(tx, 4096);
	if (how == EA_NONBLOCK_LATE)
		fcntl(tx, F_SETFL, fcntl(tx, F_GETFL) | O_NONBLOCK);

	signal(SIGALRM, on_alarm);
	for (k = 0; k < 4096 && eagain < 3; k++) {
		ssize_t ret;

		alarm(10);
		ret = zc_send(zs, big_buf, 65536,
			      how == EA_DONTWAIT ? MSG_DONTWAIT : 0, k);
		alarm(0);
		if (ret == -EAGAIN) {
			eagain++;
			continue;
		}
		if (ret <= 0)
			fail_msg("zc_send: %zd (%s)", ret, zc_last_error());
		ok[k] = true;
		bytes += (uint64_t)ret;
	}
	assert_int_equal(eagain, 3);
	stats_of(zs, &st);
	fprintf(stderr, "  %llu calls, %llu bytes before -EAGAIN\n",
		(unsigned long long)k, (unsigned long long)bytes);

	read_all(rx, bytes);
	reap_all(zs, ok, k);
	stats_of(zs, &st);
	assert_int_equal(st.sends, k - 3);
	assert_int_equal(st.completions, k - 3);
	zc_close(zs);
	close(tx);
	close(rx);
}

/*
 * eagain-linked: non-blocking zero-copy sends of 50 bytes, each from a
 * page of its own, into a TCP connection whose peer (receive buffer 2 KB,
 * so an MSS of 1 KB) stopped reading: they gather in the unsent tail skb
 * until its 17 fragments are taken, and the send that finds no room for
 * the next skb fails with -EAGAIN. The kernel had chained that send's
 * notification to the tail skb's (io_link_skb()): it comes only once the
 * peer reads and acknowledges. Up to this fix the send waited for it
 * (its id was to be reused), for ever: zc_send(MSG_DONTWAIT) hung, on a
 * socket of its own, as a context's member and in zc_ctx_sendmmsg().
 * Now each returns -EAGAIN at once; once the peer reads, every send that
 * returned > 0 completes once, in order, and nothing is left in flight.
 */
enum { EL_OWN, EL_MEMBER, EL_MMSG, EL_OWN_LATE, EL_MEMBER_LATE };

/* Read n bytes from fd after 200 ms (the -late runs' peer). */
struct late_read {
	int fd;
	uint64_t n;
};

static void *late_reader(void *arg)
{
	struct late_read *r = arg;

	usleep(200000);
	read_all(r->fd, r->n);
	return NULL;
}

static void eagain_linked(int how)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	int l, tx, rx, rb = 2048, sb = 65536, eagain = 0;
	uint64_t k, bytes = 0, ok = 0, next = 0;
	struct zc_ctx *ctx = NULL;
	struct zc_opts o = {
		.sz = sizeof(o), .backend = ZC_BACKEND_URING, .copy_below = 1,
		.flags = ZC_OPT_NO_ADAPT, .max_inflight = 4096,
	};
	struct zc_sock *zs;
	uint8_t *pages;
	struct zc_stats st;
	double until;

	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(l >= 0);
	/* Before listen(): the small window (and MSS) of the peer. */
	assert_int_equal(setsockopt(l, SOL_SOCKET, SO_RCVBUF, &rb, sizeof(rb)), 0);
	assert_int_equal(bind(l, (struct sockaddr *)&a, alen), 0);
	assert_int_equal(getsockname(l, (struct sockaddr *)&a, &alen), 0);
	assert_int_equal(listen(l, 1), 0);
	tx = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(tx >= 0);
	setsockopt(tx, SOL_SOCKET, SO_SNDBUF, &sb, sizeof(sb));
	assert_int_equal(connect(tx, (struct sockaddr *)&a, alen), 0);
	rx = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	assert_true(rx >= 0);
	close(l);
	fcntl(tx, F_SETFL, fcntl(tx, F_GETFL) | O_NONBLOCK);
	if (how != EL_OWN && how != EL_OWN_LATE) {
		assert_int_equal(zc_ctx_new(NULL, &ctx), 0);
		o.ctx = ctx;
		o.tag = 7;
	}
	if (zc_open(tx, &o, &zs))
		fail_msg("zc_open(URING): %s", zc_last_error());
	pages = mmap(NULL, 4096 << 12, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(pages != MAP_FAILED);
	memset(pages, 'z', 4096 << 12);

	signal(SIGALRM, on_alarm);
	for (k = 0; k < 4096 && eagain < 50; k++) {
		struct iovec iov = { pages + k * 4096, 50 };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
		struct zc_ctx_send v = { .zs = zs, .msg = &m, .cookie = k };
		ssize_t ret;

		alarm(10);
		if (how == EL_MMSG) {
			int r = zc_ctx_sendmmsg(ctx, &v, 1);

			ret = v.result;
			assert_int_equal(r, ret >= 0);
		} else {
			ret = zc_send(zs, iov.iov_base, 50, MSG_DONTWAIT, k);
		}
		alarm(0);
		if (ret == -EAGAIN) {
			eagain++;
			continue;
		}
		if (ret != 50)
			fail_msg("send %llu: %zd (%s)", (unsigned long long)k,
				 ret, zc_last_error());
		bytes += 50;
		ok++;
	}
	assert_int_equal(eagain, 50);
	fprintf(stderr, "  %llu sends, %llu bytes, then -EAGAIN\n",
		(unsigned long long)ok, (unsigned long long)bytes);
	if (how == EL_OWN_LATE || how == EL_MEMBER_LATE) {
		/*
		 * O_NONBLOCK cleared since zc_open(): the library's own
		 * MSG_DONTWAIT send fails as above, then is made again,
		 * blocking, with the same id: it waits for the failed one's
		 * notification first, which comes once the peer reads.
		 */
		struct late_read r = { rx, bytes + 50 };
		pthread_t t;

		fcntl(tx, F_SETFL, fcntl(tx, F_GETFL) & ~O_NONBLOCK);
		assert_int_equal(pthread_create(&t, NULL, late_reader, &r), 0);
		alarm(10);
		assert_int_equal(zc_send(zs, pages + k * 4096, 50, 0, k), 50);
		alarm(0);
		pthread_join(t, NULL);
		ok++;
		k++;
	} else {
		read_all(rx, bytes);
	}
	/* Every send that returned 50 once, in order (cookies rise). */
	until = now_s() + 10;
	while (next < ok) {
		uint64_t c[64];
		int n = 0;

		if (!ctx) {
			struct zc_completion out[64];

			n = zc_wait(zs, out, 64, 100);
			for (int i = 0; i < n; i++) {
				assert_int_equal(out[i].bytes, 50);
				c[i] = out[i].cookie;
			}
		} else {
			struct zc_ctx_completion out[64];

			n = zc_ctx_wait(ctx, out, 64, 100);
			for (int i = 0; i < n; i++) {
				assert_int_equal(out[i].flags & ZC_CTX_ERROR, 0);
				assert_ptr_equal(out[i].zs, zs);
				assert_int_equal(out[i].bytes, 50);
				c[i] = out[i].cookie;
			}
		}
		assert_true(n >= 0);
		for (int i = 0; i < n; i++) {
			static uint64_t last;

			if (next && c[i] <= last)
				fail_msg("cookie %llu after %llu",
					 (unsigned long long)c[i],
					 (unsigned long long)last);
			last = c[i];
			next++;
		}
		if (now_s() > until)
			fail_msg("%llu of %llu sends completed",
				 (unsigned long long)next, (unsigned long long)ok);
	}
	assert_int_equal(zc_inflight(zs), 0);
	stats_of(zs, &st);
	assert_int_equal(st.bad_ranges, 0);
	assert_int_equal(st.completions, ok);
	zc_close(zs);
	assert_int_equal(zc_ctx_free(ctx), 0);
	munmap(pages, 4096 << 12);
	close(tx);
	close(rx);
}

static void t_eagain_linked(void **s) { (void)s; eagain_linked(EL_OWN); }
static void t_eagain_linked_ctx(void **s) { (void)s; eagain_linked(EL_MEMBER); }
static void t_eagain_linked_mmsg(void **s) { (void)s; eagain_linked(EL_MMSG); }
static void t_eagain_linked_late(void **s) { (void)s; eagain_linked(EL_OWN_LATE); }
static void t_eagain_linked_ctx_late(void **s)
{
	(void)s;
	eagain_linked(EL_MEMBER_LATE);
}

static void t_eagain_dontwait(void **s) { (void)s; eagain_run(EA_DONTWAIT); }
static void t_eagain_nonblock(void **s) { (void)s; eagain_run(EA_NONBLOCK); }
static void t_eagain_nonblock_late(void **s) { (void)s; eagain_run(EA_NONBLOCK_LATE); }

struct drain_arg {
	int fd;
	uint64_t bytes;
	int delay_ms;
};

/* Read d->bytes, or (0) until EOF. */
static void *drain_main(void *arg)
{
	struct drain_arg *d = arg;
	static uint8_t sink[1 << 16];

	usleep((useconds_t)d->delay_ms * 1000);
	if (d->bytes) {
		read_all(d->fd, d->bytes);
		return NULL;
	}
	while (recv(d->fd, sink, sizeof(sink), 0) > 0)
		;
	return NULL;
}

/* A blocking socket (late: non-blocking at zc_open()) sends everything. */
static void blocking_run(bool late)
{
	enum { N = 32 };
	struct drain_arg d = { .bytes = 0, .delay_ms = 200 };
	bool ok[N];
	struct zc_sock *zs;
	pthread_t t;
	int tx, rx;

	tiny_pair(&tx, &rx);
	if (late)
		fcntl(tx, F_SETFL, fcntl(tx, F_GETFL) | O_NONBLOCK);
	zs = open_uring(tx, 64);
	if (late)
		fcntl(tx, F_SETFL, fcntl(tx, F_GETFL) & ~O_NONBLOCK);
	d.fd = rx;
	assert_int_equal(pthread_create(&t, NULL, drain_main, &d), 0);
	for (int k = 0; k < N; k++) {
		ssize_t ret = zc_send(zs, big_buf, sizeof(big_buf), 0, (uint64_t)k);

		/*
		 * late: the library saw O_NONBLOCK at zc_open() and learns
		 * otherwise when a send comes back short or -EAGAIN: the
		 * first may be short, every later one is whole.
		 */
		if (late && k == 0 && ret > 0 && ret < (ssize_t)sizeof(big_buf)) {
			fprintf(stderr, "  first send after the change: %zd\n",
				ret);
		} else if (ret != (ssize_t)sizeof(big_buf)) {
			fail_msg("blocking zc_send of %zu: %zd (%s)",
				 sizeof(big_buf), ret, zc_last_error());
		}
		ok[k] = true;
	}
	shutdown(tx, SHUT_WR);
	pthread_join(t, NULL);
	reap_all(zs, ok, N);
	zc_close(zs);
	close(tx);
	close(rx);
}

/*
 * Copying sends (below copy_below) mixed with zero-copy ones on a blocking
 * TCP socket, the receiver slower than the sender: a copying sendmsg(2)
 * that waits for room is interrupted by the ring's task work (a
 * notification) and comes back short; the library sends the rest. Every
 * call sends everything. (Before the fix: ~1% of such calls were short.)
 */
static void t_blocking_mixed(void **s)
{
	struct zc_opts o = { .sz = sizeof(o), .backend = ZC_BACKEND_URING,
			     .copy_below = 40000, .flags = ZC_OPT_NO_ADAPT,
			     .max_inflight = 256 };
	struct drain_arg d = { .delay_ms = 0 };
	uint64_t n = nsends, seed = 7, copies = 0;
	struct zc_completion c[64];
	struct zc_sock *zs;
	struct zc_stats st;
	pthread_t t;
	int tx, rx;

	(void)s;
	make_pair(AF_INET, SOCK_STREAM, &tx, &rx, NULL, NULL);
	assert_int_equal(zc_open(tx, &o, &zs), 0);
	d.fd = rx;
	assert_int_equal(pthread_create(&t, NULL, drain_main, &d), 0);
	for (uint64_t k = 0; k < n; k++) {
		size_t len = 10240 + mix64(seed + k) % (65536 - 10240);
		struct iovec iov[3] = {
			{ big_buf, len / 3 }, { big_buf + 70000, len / 3 },
			{ big_buf + 140000, len - 2 * (len / 3) },
		};
		struct msghdr m = { .msg_iov = iov, .msg_iovlen = 3 };
		ssize_t ret = zc_sendmsg(zs, &m, 0, k);

		if (ret == -ENOBUFS) {
			assert_true(zc_wait(zs, c, 64, WAIT_MS) > 0);
			k--;
			continue;
		}
		if (ret != (ssize_t)len)
			fail_msg("blocking zc_sendmsg %llu of %zu (%s): %zd",
				 (unsigned long long)k, len,
				 len < 40000 ? "copy" : "zero-copy", ret);
		copies += len < 40000;
		if (k % 16 == 0)
			assert_true(zc_completions(zs, c, 64) >= 0);
	}
	while (zc_inflight(zs))
		assert_true(zc_wait(zs, c, 64, WAIT_MS) > 0);
	stats_of(zs, &st);
	assert_int_equal(st.sends, n);
	assert_int_equal(st.completions, n);
	fprintf(stderr, "  %llu calls, %llu copying; %llu syscalls\n",
		(unsigned long long)n, (unsigned long long)copies,
		(unsigned long long)st.syscalls);
	shutdown(tx, SHUT_WR);
	pthread_join(t, NULL);
	zc_close(zs);
	close(tx);
	close(rx);
}

/*
 * Signals (SIGUSR1, a handler without SA_RESTART, every 200 us) while
 * copying sends wait for room on a blocking TCP socket: a call may fail
 * with -EINTR before any byte went, but never return short. On 2e0f1e5
 * copy_rest() stopped at the -EINTR of its resend and returned a short
 * count.
 */
static void on_usr1(int sig) { (void)sig; }

struct kicker {
	pthread_t target;
	_Atomic int stop;
};

static void *kick_main(void *arg)
{
	struct kicker *k = arg;

	while (!atomic_load(&k->stop)) {
		pthread_kill(k->target, SIGUSR1);
		usleep(200);
	}
	return NULL;
}

static void t_blocking_signals(void **s)
{
	struct zc_opts o = { .sz = sizeof(o), .backend = ZC_BACKEND_URING,
			     .copy_below = 1u << 30, .max_inflight = 256 };
	struct sigaction sa = { .sa_handler = on_usr1 }, old;
	struct drain_arg d = { .delay_ms = 0 };
	struct kicker k = { .target = pthread_self() };
	uint64_t n = nsends < 2000 ? nsends : 2000, eintr = 0;
	struct zc_completion c[64];
	struct zc_sock *zs;
	struct zc_stats st;
	pthread_t t, kt;
	int tx, rx;

	(void)s;
	make_pair(AF_INET, SOCK_STREAM, &tx, &rx, NULL, NULL);
	assert_int_equal(zc_open(tx, &o, &zs), 0);
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
	d.fd = rx;
	assert_int_equal(pthread_create(&t, NULL, drain_main, &d), 0);
	assert_int_equal(pthread_create(&kt, NULL, kick_main, &k), 0);
	for (uint64_t i = 0; i < n; i++) {
		size_t len = 65536 + mix64(i) % (sizeof(big_buf) - 65536);
		ssize_t ret = zc_send(zs, big_buf, len, 0, i);

		if (ret == -ENOBUFS) {
			assert_true(zc_wait(zs, c, 64, WAIT_MS) > 0);
			i--;
			continue;
		}
		if (ret == -EINTR) {	/* before any byte: nothing sent */
			eintr++;
			i--;
			continue;
		}
		if (ret != (ssize_t)len)
			fail_msg("blocking copying zc_send %llu of %zu: %zd",
				 (unsigned long long)i, len, ret);
		assert_true(zc_completions(zs, c, 64) >= 0);
	}
	atomic_store(&k.stop, 1);
	pthread_join(kt, NULL);
	while (zc_inflight(zs))
		assert_true(zc_wait(zs, c, 64, WAIT_MS) > 0);
	stats_of(zs, &st);
	assert_int_equal(st.sends, n);
	assert_int_equal(st.completions, n);
	fprintf(stderr, "  %llu calls, %llu -EINTR before any byte\n",
		(unsigned long long)n, (unsigned long long)eintr);
	shutdown(tx, SHUT_WR);
	pthread_join(t, NULL);
	sigaction(SIGUSR1, &old, NULL);
	zc_close(zs);
	close(tx);
	close(rx);
}

static void t_blocking(void **s) { (void)s; blocking_run(false); }
static void t_blocking_late(void **s) { (void)s; blocking_run(true); }

/* Error CQEs: the call fails, no completion; earlier sends complete. */
static void t_peer_closed_tcp(void **s)
{
	bool ok[256] = { false };
	struct zc_sock *zs;
	int tx, rx, errs = 0, k;
	ssize_t ret = 0;

	(void)s;
	make_pair(AF_INET, SOCK_STREAM, &tx, &rx, NULL, NULL);
	zs = open_uring(tx, 256);
	for (k = 0; k < 4; k++) {
		ret = zc_send(zs, big_buf, 4096, 0, (uint64_t)k);
		assert_int_equal(ret, 4096);
		ok[k] = true;
	}
	/* Unread data: close() sends a reset. */
	close(rx);
	usleep(50000);
	for (; k < 256 && errs < 4; k++) {
		ret = zc_send(zs, big_buf, 4096, 0, (uint64_t)k);
		if (ret > 0) {
			ok[k] = true;
			continue;
		}
		if (ret != -ECONNRESET && ret != -EPIPE)
			fail_msg("send to a closed peer: %zd (%s)", ret,
				 zc_last_error());
		errs++;
	}
	assert_int_equal(errs, 4);
	reap_all(zs, ok, (uint64_t)k);
	zc_close(zs);
	close(tx);
}

static void t_peer_closed_udp(void **s)
{
	bool ok[256] = { false };
	struct zc_sock *zs;
	int tx, rx, errs = 0, k;

	(void)s;
	make_pair(AF_INET6, SOCK_DGRAM, &tx, &rx, NULL, NULL);
	zs = open_uring(tx, 256);
	close(rx);	/* port unreachable: the next send fails */
	for (k = 0; k < 256 && errs < 3; k++) {
		ssize_t ret = zc_send(zs, big_buf, 1000, 0, (uint64_t)k);

		if (ret > 0) {
			ok[k] = true;
			usleep(1000);	/* let the ICMP error come back */
			continue;
		}
		if (ret != -ECONNREFUSED)
			fail_msg("UDP send to a closed port: %zd (%s)", ret,
				 zc_last_error());
		errs++;
	}
	assert_int_equal(errs, 3);
	reap_all(zs, ok, (uint64_t)k);
	zc_close(zs);
	close(tx);
}

/* ---- notifications while no send runs ------------------------------------ */

enum { IDLE_SAME, IDLE_THREAD, IDLE_EXITED };

struct idle {
	struct zc_sock *zs;
	bool ok[4096];
	uint64_t calls, bytes;
	int pipefd[2];
	_Atomic int parked;	/* the sender is done sending */
};

static void *idle_sender(void *arg)
{
	struct idle *id = arg;
	char c;

	for (uint64_t k = 0; k < 4096; k++) {
		ssize_t ret = zc_send(id->zs, big_buf, 65536, MSG_DONTWAIT, k);

		id->calls = k + 1;
		if (ret == -EAGAIN)
			break;
		if (ret <= 0)
			break;
		id->ok[k] = true;
		id->bytes += (uint64_t)ret;
	}
	/* Release: pairs with the acquire in idle_run(). */
	atomic_store_explicit(&id->parked, 1, memory_order_release);
	if (id->pipefd[0] >= 0 && read(id->pipefd[0], &c, 1) < 0) {
		/* asleep here until the end */
	}
	return NULL;
}

static void idle_run(int how)
{
	struct idle *id = calloc(1, sizeof(*id));
	struct drain_arg d = { .delay_ms = 0 };
	struct zc_completion out[64];
	pthread_t snd, drn;
	int tx, rx, n;
	uint64_t early = 0;

	assert_non_null(id);
	tiny_pair(&tx, &rx);
	id->zs = open_uring(tx, 4096);
	id->pipefd[0] = id->pipefd[1] = -1;
	if (how == IDLE_THREAD)
		assert_int_equal(pipe(id->pipefd), 0);
	if (how == IDLE_SAME) {
		idle_sender(id);
	} else {
		assert_int_equal(pthread_create(&snd, NULL, idle_sender, id), 0);
		if (how == IDLE_EXITED) {
			pthread_join(snd, NULL);
		} else {
			/* Wait until it sleeps in read(). */
			while (!atomic_load_explicit(&id->parked,
						     memory_order_acquire))
				usleep(1000);
			usleep(20000);
		}
	}
	assert_true(id->bytes > 0);
	while ((n = zc_completions(id->zs, out, 64)) > 0)
		early += (uint64_t)n;
	fprintf(stderr, "  %llu calls; %llu completed before the receiver read,"
		" the rest come while no send runs\n",
		(unsigned long long)id->calls, (unsigned long long)early);

	/* The peer reads now: the kernel lets go of the pages, and posts. */
	d.fd = rx;
	d.bytes = id->bytes;
	assert_int_equal(pthread_create(&drn, NULL, drain_main, &d), 0);
	{
		uint64_t got = early, want = 0;

		for (uint64_t k = 0; k < id->calls; k++)
			want += id->ok[k];
		while (got < want) {
			n = zc_wait(id->zs, out, 64, WAIT_MS);
			if (n <= 0)
				fail_msg("zc_wait: %d with %llu of %llu done: a "
					 "notification never reached it", n,
					 (unsigned long long)got,
					 (unsigned long long)want);
			got += (uint64_t)n;
		}
		assert_int_equal(zc_inflight(id->zs), 0);
	}
	pthread_join(drn, NULL);
	if (how == IDLE_THREAD) {
		assert_int_equal(write(id->pipefd[1], "x", 1), 1);
		pthread_join(snd, NULL);
		close(id->pipefd[0]);
		close(id->pipefd[1]);
	}
	zc_close(id->zs);
	close(tx);
	close(rx);
	free(id);
}

static void t_idle_same(void **s) { (void)s; idle_run(IDLE_SAME); }
static void t_idle_thread(void **s) { (void)s; idle_run(IDLE_THREAD); }
static void t_idle_exited(void **s) { (void)s; idle_run(IDLE_EXITED); }

/* ---- the rest ------------------------------------------------------------ */

/* Without REPORT_USAGE nobody knows: never ZC_COPIED. */
static void t_no_usage(void **s)
{
	struct zc_opts o = { .sz = sizeof(o), .backend = ZC_BACKEND_URING };
	struct drain_arg d = { .delay_ms = 0 };
	enum { N = 512 };
	struct zc_completion out[64];
	struct zc_sock *zs;
	struct zc_stats st;
	pthread_t t;
	uint64_t got = 0;
	int tx, rx;

	(void)s;
	make_pair(AF_INET, SOCK_STREAM, &tx, &rx, NULL, NULL);
	setenv("ZCNOTIFY_URING_USAGE", "maybe", 1);
	assert_int_equal(zc_open(tx, &o, &zs), -EINVAL);
	setenv("ZCNOTIFY_URING_USAGE", "no", 1);
	zs = open_uring(tx, 1024);
	unsetenv("ZCNOTIFY_URING_USAGE");
	d.fd = rx;
	d.bytes = (uint64_t)N * 20000;
	assert_int_equal(pthread_create(&t, NULL, drain_main, &d), 0);
	for (int k = 0; k < N; k++) {
		assert_int_equal(zc_send(zs, big_buf, 20000, 0, (uint64_t)k),
				 20000);
	}
	pthread_join(t, NULL);
	while (got < N) {
		int n = zc_wait(zs, out, 64, WAIT_MS);

		assert_true(n > 0);
		for (int i = 0; i < n; i++)
			assert_int_equal(out[i].flags, 0);
		got += (uint64_t)n;
	}
	stats_of(zs, &st);
	assert_int_equal(st.completions_zc, N);
	assert_int_equal(st.completions_copied, 0);
	zc_close(zs);
	close(tx);
	close(rx);
}

static void t_basics(void **s)
{
	struct zc_opts o = { .sz = sizeof(o), .backend = ZC_BACKEND_URING };
	struct zc_completion c[4];
	struct zc_sock *zs;
	int tx, rx, sp[2];

	(void)s;
	make_pair(AF_INET, SOCK_STREAM, &tx, &rx, NULL, NULL);

	/* AUTO never picks io_uring. */
	o.backend = ZC_BACKEND_AUTO;
	assert_int_equal(zc_open(tx, &o, &zs), 0);
	assert_int_not_equal(zc_backend(zs), ZC_BACKEND_URING);
	zc_close(zs);

	/* A socket that cannot send zero-copy. */
	o.backend = ZC_BACKEND_URING;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	assert_int_equal(zc_open(sp[0], &o, &zs), -EOPNOTSUPP);
	close(sp[0]);
	close(sp[1]);

	/* Default copy_below: short sends and empty ones are library copies. */
	assert_int_equal(zc_open(tx, &o, &zs), 0);
	assert_string_equal(zc_backend_name(zc_backend(zs)), "uring");
	assert_int_equal(zc_send(zs, big_buf, 0, 0, 1), 0);
	assert_int_equal(zc_send(zs, big_buf, 100, 0, 2), 100);
	assert_int_equal(zc_completions(zs, c, 4), 2);
	assert_int_equal(c[0].cookie, 1);
	assert_int_equal(c[0].flags, ZC_COPIED | ZC_LIB_COPY);
	assert_int_equal(c[1].cookie, 2);
	assert_int_equal(c[1].flags, ZC_COPIED | ZC_LIB_COPY);
	/* A long one goes through the ring. */
	assert_int_equal(zc_send(zs, big_buf, 20000, 0, 3), 20000);
	assert_int_equal(zc_wait(zs, c, 4, WAIT_MS), 1);
	assert_int_equal(c[0].cookie, 3);
	assert_false(c[0].flags & ZC_LIB_COPY);
	/* Closed with sends in flight: forgotten, nothing hangs. */
	for (int k = 0; k < 8; k++)
		assert_int_equal(zc_send(zs, big_buf, 20000, MSG_DONTWAIT,
					 (uint64_t)(10 + k)) > 0, 1);
	zc_close(zs);

	close(tx);
	close(rx);

	/* The CQ holds max_inflight notifications, or zc_open() refuses. */
	make_pair(AF_INET, SOCK_STREAM, &tx, &rx, NULL, NULL);
	o.max_inflight = 1u << 20;
	assert_int_equal(zc_open(tx, &o, &zs), -EINVAL);
	fprintf(stderr, "  %s\n", zc_last_error());
	o.max_inflight = 1u << 15;
	assert_int_equal(zc_open(tx, &o, &zs), 0);
	zc_close(zs);
	close(tx);
	close(rx);

	/* The smallest max_inflight: the CQ still holds the SQ's CQEs. */
	make_pair(AF_INET, SOCK_STREAM, &tx, &rx, NULL, NULL);
	o.max_inflight = 1;
	assert_int_equal(zc_open(tx, &o, &zs), 0);
	for (uint64_t k = 0; k < 3; k++) {
		assert_int_equal(zc_send(zs, big_buf, 20000, 0, 20 + k), 20000);
		assert_int_equal(zc_send(zs, big_buf, 20000, 0, 99), -ENOBUFS);
		read_all(rx, 20000);
		assert_int_equal(zc_wait(zs, c, 4, WAIT_MS), 1);
		assert_int_equal(c[0].cookie, 20 + k);
	}
	zc_close(zs);
	close(tx);
	close(rx);
}

/* ---- a fake io_uring (test-uring-fake only) ------------------------------ */

#ifdef ZC_URING_FAKE
/*
 * Built with -DZC_URING_FAKE against the internal static library, with
 * the liburing calls of src/backend_uring.c wrapped (-Wl,--wrap): while
 * fk.on is set, the rings zc_open() sets up are ours, in plain memory, and
 * this fake kernel answers each request as the test says. It produces
 * what the host kernel cannot: a result CQE without IORING_CQE_F_MORE,
 * error CQEs with and without a notification, a notification that comes
 * late, CQEs held back (CQ overflow), -EBUSY from io_uring_enter(), a
 * kernel without SEND_ZC, REPORT_USAGE or IORING_FEAT_NODROP. Otherwise
 * the wrappers pass through to liburing.
 */
#define FK_SQ		4u
#define FK_CQ_MAX	4096u
#define FK_REQS		4096u

enum fk_mode {
	FK_OK,			/* result (F_MORE), notification later */
	FK_OK_NOTIF,		/* result (F_MORE) and notification at once */
	FK_NOMORE,		/* result without F_MORE: no notification */
	FK_ERR_MORE,		/* error (F_MORE), notification at once */
	FK_ERR_MORE_LATE,	/* error (F_MORE), notification on a wait */
	FK_ERR_NOMORE,		/* error result without F_MORE */
	FK_PARK,		/* no room: result (F_MORE) on the next wait */
};

static struct fk {
	bool on;
	/* the kernel */
	unsigned int features;
	unsigned int cq_max;		/* IORING_MAX_CQ_ENTRIES */
	bool no_send_zc, no_usage, probe_null;
	/* the rings */
	unsigned int sq_khead, sq_ktail, sq_flags, sq_dropped, sq_array[FK_SQ];
	struct io_uring_sqe sqes[FK_SQ];
	_Atomic unsigned int cq_ktail;
	unsigned int cq_khead, cq_flags, cq_overflow, cq_entries;
	struct io_uring_cqe cqes[FK_CQ_MAX];
	struct io_uring_cqe backlog[FK_CQ_MAX];	/* held back (overflow) */
	unsigned int nbacklog;
	struct io_uring_cqe onwait[8];	/* posted when the library waits */
	unsigned int nonwait;
	bool hold;			/* post as if the CQ were full */
	int efd;
	/* the sends */
	enum fk_mode mode;
	int err;			/* res of an error result */
	int busy;			/* this many submits fail with -EBUSY */
	uint64_t due[FK_REQS];		/* sends whose notification is due */
	bool due_usage[FK_REQS];
	unsigned int ndue;
	uint64_t last_ud;
	unsigned int last_zc_flags, last_msg_flags;
	/* what happened */
	unsigned int sends, probes, waits, get_events, submits, full, exits;
	struct io_uring_probe *probe;
} fk;

static bool fk_ring(const struct io_uring *ring)
{
	return ring->sq.khead == &fk.sq_khead;
}

static unsigned int fk_used(void)
{
	return atomic_load_explicit(&fk.cq_ktail, memory_order_relaxed) -
	       fk.cq_khead;
}

static void fk_cq_put(const struct io_uring_cqe *c)
{
	unsigned int t = atomic_load_explicit(&fk.cq_ktail,
					      memory_order_relaxed);

	fk.cqes[t & (fk.cq_entries - 1)] = *c;
	/* Release: pairs with the acquire in io_uring_for_each_cqe(). */
	atomic_store_explicit(&fk.cq_ktail, t + 1, memory_order_release);
}

/* As the kernel does on io_uring_enter(GETEVENTS): flush the backlog. */
static void fk_flush(void)
{
	unsigned int k = 0;

	while (k < fk.nbacklog && fk_used() < fk.cq_entries)
		fk_cq_put(&fk.backlog[k++]);
	memmove(fk.backlog, fk.backlog + k,
		(fk.nbacklog - k) * sizeof(fk.backlog[0]));
	fk.nbacklog -= k;
	if (!fk.nbacklog)
		fk.sq_flags &= ~IORING_SQ_CQ_OVERFLOW;
}

static void fk_post(uint64_t ud, int32_t res, uint32_t flags)
{
	struct io_uring_cqe c = { .user_data = ud, .res = res, .flags = flags };
	uint64_t one = 1;

	if (fk_used() == fk.cq_entries)
		fk.full++;
	if (fk.hold || fk.nbacklog || fk_used() == fk.cq_entries) {
		if (!(fk.features & IORING_FEAT_NODROP)) {
			fk.cq_overflow++;	/* dropped */
			return;
		}
		assert_true(fk.nbacklog < FK_CQ_MAX);
		fk.backlog[fk.nbacklog++] = c;
		fk.sq_flags |= IORING_SQ_CQ_OVERFLOW;
	} else {
		fk_cq_put(&c);
	}
	if (fk.efd >= 0 && !(fk.cq_flags & IORING_CQ_EVENTFD_DISABLED))
		assert_int_equal(write(fk.efd, &one, sizeof(one)), 8);
}

static void fk_post_onwait(uint64_t ud, int32_t res, uint32_t flags)
{
	assert_true(fk.nonwait < 8);
	fk.onwait[fk.nonwait++] = (struct io_uring_cqe){
		.user_data = ud, .res = res, .flags = flags };
}

/* The kernel posts what it held for a wait (a chained notification). */
static void fk_post_held(void)
{
	for (unsigned int i = 0; i < fk.nonwait; i++)
		fk_post(fk.onwait[i].user_data, fk.onwait[i].res,
			fk.onwait[i].flags);
	fk.nonwait = 0;
}

/* The kernel lets go of the pages of the oldest n due sends. */
static void fk_release(unsigned int n, bool copied)
{
	if (n > fk.ndue)
		n = fk.ndue;
	for (unsigned int i = 0; i < n; i++)
		fk_post(fk.due[i], copied && fk.due_usage[i] ?
			(int32_t)IORING_NOTIF_USAGE_ZC_COPIED : 0,
			IORING_CQE_F_NOTIF);
	memmove(fk.due, fk.due + n, (fk.ndue - n) * sizeof(fk.due[0]));
	memmove(fk.due_usage, fk.due_usage + n,
		(fk.ndue - n) * sizeof(fk.due_usage[0]));
	fk.ndue -= n;
}

static void fk_due(uint64_t ud, bool usage)
{
	assert_true(fk.ndue < FK_REQS);
	fk.due_usage[fk.ndue] = usage;
	fk.due[fk.ndue++] = ud;
}

static uint32_t fk_len(const struct io_uring_sqe *sqe)
{
	const struct msghdr *m = (const void *)(uintptr_t)sqe->addr;
	uint32_t len = 0;

	if (sqe->opcode == IORING_OP_SEND_ZC)
		return sqe->len;
	for (size_t i = 0; i < m->msg_iovlen; i++)
		len += (uint32_t)m->msg_iov[i].iov_len;
	return len;
}

static void fk_send(const struct io_uring_sqe *sqe)
{
	uint64_t ud = sqe->user_data;
	bool usage = sqe->ioprio & IORING_SEND_ZC_REPORT_USAGE;
	int32_t len = (int32_t)fk_len(sqe);

	if (sqe->fd == -1) {		/* the probe */
		fk.probes++;
		if (fk.no_usage && usage) {
			fk_post(ud, -EINVAL, 0);
		} else {
			fk_post(ud, -EBADF, IORING_CQE_F_MORE);
			fk_post(ud, 0, IORING_CQE_F_NOTIF);
		}
		return;
	}
	fk.sends++;
	fk.last_ud = ud;
	fk.last_zc_flags = sqe->ioprio;
	fk.last_msg_flags = sqe->msg_flags;
	switch (fk.mode) {
	case FK_OK:
		fk_post(ud, len, IORING_CQE_F_MORE);
		fk_due(ud, usage);
		break;
	case FK_OK_NOTIF:
		fk_post(ud, len, IORING_CQE_F_MORE);
		fk_post(ud, 0, IORING_CQE_F_NOTIF);
		break;
	case FK_NOMORE:
		fk_post(ud, len, 0);
		break;
	case FK_ERR_MORE:
		fk_post(ud, fk.err, IORING_CQE_F_MORE);
		fk_post(ud, 0, IORING_CQE_F_NOTIF);
		break;
	case FK_ERR_MORE_LATE:
		fk_post(ud, fk.err, IORING_CQE_F_MORE);
		fk_post_onwait(ud, 0, IORING_CQE_F_NOTIF);
		break;
	case FK_ERR_NOMORE:
		fk_post(ud, fk.err, 0);
		break;
	case FK_PARK:
		fk_post_onwait(ud, len, IORING_CQE_F_MORE);
		fk_due(ud, usage);
		break;
	}
}

int __real_io_uring_queue_init_params(unsigned int entries,
				      struct io_uring *ring,
				      struct io_uring_params *p);
int __wrap_io_uring_queue_init_params(unsigned int entries,
				      struct io_uring *ring,
				      struct io_uring_params *p);
int __wrap_io_uring_queue_init_params(unsigned int entries,
				      struct io_uring *ring,
				      struct io_uring_params *p)
{
	unsigned int cq = 2 * entries;

	if (!fk.on)
		return __real_io_uring_queue_init_params(entries, ring, p);
	assert_int_equal(entries, FK_SQ);
	if (p->flags & IORING_SETUP_CQSIZE) {
		cq = p->cq_entries;
		if (cq > fk.cq_max) {
			if (!(p->flags & IORING_SETUP_CLAMP))
				return -EINVAL;
			cq = fk.cq_max;
		}
	}
	while (cq & (cq - 1))
		cq++;
	if (cq < entries || cq > FK_CQ_MAX)
		return -EINVAL;
	memset(ring, 0, sizeof(*ring));
	fk.sq_khead = fk.sq_ktail = fk.cq_khead = 0;
	atomic_store(&fk.cq_ktail, 0);
	fk.sq_flags = fk.cq_flags = fk.cq_overflow = 0;
	fk.nbacklog = fk.nonwait = fk.ndue = 0;
	fk.cq_entries = cq;
	fk.efd = -1;
	ring->sq.khead = &fk.sq_khead;
	ring->sq.ktail = &fk.sq_ktail;
	ring->sq.kflags = &fk.sq_flags;
	ring->sq.kdropped = &fk.sq_dropped;
	ring->sq.array = fk.sq_array;
	ring->sq.sqes = fk.sqes;
	ring->sq.ring_mask = FK_SQ - 1;
	ring->sq.ring_entries = FK_SQ;
	ring->cq.khead = &fk.cq_khead;
	ring->cq.ktail = (unsigned int *)&fk.cq_ktail;
	ring->cq.kflags = &fk.cq_flags;
	ring->cq.koverflow = &fk.cq_overflow;
	ring->cq.cqes = fk.cqes;
	ring->cq.ring_mask = cq - 1;
	ring->cq.ring_entries = cq;
	ring->ring_fd = -1;
	ring->enter_ring_fd = -1;
	ring->features = fk.features;
	p->sq_entries = FK_SQ;
	p->cq_entries = cq;
	p->features = fk.features;
	return 0;
}

void __real_io_uring_queue_exit(struct io_uring *ring);
void __wrap_io_uring_queue_exit(struct io_uring *ring);
void __wrap_io_uring_queue_exit(struct io_uring *ring)
{
	if (!fk_ring(ring)) {
		__real_io_uring_queue_exit(ring);
		return;
	}
	fk.exits++;
	fk.efd = -1;
}

int __real_io_uring_register_eventfd(struct io_uring *ring, int fd);
int __wrap_io_uring_register_eventfd(struct io_uring *ring, int fd);
int __wrap_io_uring_register_eventfd(struct io_uring *ring, int fd)
{
	if (!fk_ring(ring))
		return __real_io_uring_register_eventfd(ring, fd);
	fk.efd = fd;
	return 0;
}

struct io_uring_probe *__real_io_uring_get_probe_ring(struct io_uring *ring);
struct io_uring_probe *__wrap_io_uring_get_probe_ring(struct io_uring *ring);
struct io_uring_probe *__wrap_io_uring_get_probe_ring(struct io_uring *ring)
{
	struct io_uring_probe *pr;

	if (!fk_ring(ring))
		return __real_io_uring_get_probe_ring(ring);
	if (fk.probe_null)
		return NULL;
	pr = calloc(1, sizeof(*pr) + 256 * sizeof(pr->ops[0]));
	assert_non_null(pr);
	pr->last_op = 255;
	pr->ops_len = 255;
	for (unsigned int i = 0; i < 256; i++) {
		pr->ops[i].op = (uint8_t)i;
		pr->ops[i].flags = IO_URING_OP_SUPPORTED;
	}
	if (fk.no_send_zc) {
		pr->ops[IORING_OP_SEND_ZC].flags = 0;
		pr->ops[IORING_OP_SENDMSG_ZC].flags = 0;
	}
	fk.probe = pr;
	return pr;
}

void __real_io_uring_free_probe(struct io_uring_probe *probe);
void __wrap_io_uring_free_probe(struct io_uring_probe *probe);
void __wrap_io_uring_free_probe(struct io_uring_probe *probe)
{
	if (probe && probe == fk.probe) {
		fk.probe = NULL;
		free(probe);
		return;
	}
	__real_io_uring_free_probe(probe);
}

int __real_io_uring_submit(struct io_uring *ring);
int __wrap_io_uring_submit(struct io_uring *ring);
int __wrap_io_uring_submit(struct io_uring *ring)
{
	unsigned int n = 0;

	if (!fk_ring(ring))
		return __real_io_uring_submit(ring);
	fk.submits++;
	if (fk.busy) {
		fk.busy--;
		return -EBUSY;
	}
	for (; fk.sq_khead != ring->sq.sqe_tail; fk.sq_khead++, n++) {
		const struct io_uring_sqe *sqe =
			&fk.sqes[fk.sq_khead & (FK_SQ - 1)];

		switch (sqe->opcode) {
		case IORING_OP_SEND_ZC:
		case IORING_OP_SENDMSG_ZC:
			fk_send(sqe);
			break;
		case IORING_OP_NOP:
			fk_post(sqe->user_data, 0, 0);
			break;
		default:
			fail_msg("fake kernel: opcode %u", sqe->opcode);
		}
	}
	ring->sq.sqe_head = ring->sq.sqe_tail;
	fk.sq_ktail = ring->sq.sqe_tail;
	return (int)n;
}

static int fk_get(struct io_uring_cqe **cqe_ptr, bool wait)
{
	fk.waits += wait;
	fk_flush();
	if (!fk_used() && wait) {
		for (unsigned int i = 0; i < fk.nonwait; i++)
			fk_post(fk.onwait[i].user_data, fk.onwait[i].res,
				fk.onwait[i].flags);
		fk.nonwait = 0;
		fk_flush();
	}
	if (!fk_used()) {
		*cqe_ptr = NULL;
		/* A wait nothing can end: the library would hang. */
		if (wait)
			fail_msg("fake kernel: the library waits for a CQE "
				 "that never comes");
		return -EAGAIN;
	}
	*cqe_ptr = &fk.cqes[fk.cq_khead & (fk.cq_entries - 1)];
	return 0;
}

int __real___io_uring_get_cqe(struct io_uring *ring,
			      struct io_uring_cqe **cqe_ptr,
			      unsigned int submit, unsigned int wait_nr,
			      sigset_t *sigmask);
int __wrap___io_uring_get_cqe(struct io_uring *ring,
			      struct io_uring_cqe **cqe_ptr,
			      unsigned int submit, unsigned int wait_nr,
			      sigset_t *sigmask);
int __wrap___io_uring_get_cqe(struct io_uring *ring,
			      struct io_uring_cqe **cqe_ptr,
			      unsigned int submit, unsigned int wait_nr,
			      sigset_t *sigmask)
{
	if (!fk_ring(ring))
		return __real___io_uring_get_cqe(ring, cqe_ptr, submit,
						 wait_nr, sigmask);
	return fk_get(cqe_ptr, wait_nr > 0);
}

int __real_io_uring_wait_cqe_timeout(struct io_uring *ring,
				     struct io_uring_cqe **cqe_ptr,
				     struct __kernel_timespec *ts);
int __wrap_io_uring_wait_cqe_timeout(struct io_uring *ring,
				     struct io_uring_cqe **cqe_ptr,
				     struct __kernel_timespec *ts);
int __wrap_io_uring_wait_cqe_timeout(struct io_uring *ring,
				     struct io_uring_cqe **cqe_ptr,
				     struct __kernel_timespec *ts)
{
	if (!fk_ring(ring))
		return __real_io_uring_wait_cqe_timeout(ring, cqe_ptr, ts);
	return fk_get(cqe_ptr, false) ? -ETIME : 0;
}

int __real_io_uring_get_events(struct io_uring *ring);
int __wrap_io_uring_get_events(struct io_uring *ring);
int __wrap_io_uring_get_events(struct io_uring *ring)
{
	if (!fk_ring(ring))
		return __real_io_uring_get_events(ring);
	fk.get_events++;
	fk_flush();
	return 0;
}

/* A fresh fake kernel of today (SEND_ZC, REPORT_USAGE, NODROP). */
static void fk_start(void)
{
	memset(&fk, 0, sizeof(fk));
	fk.on = true;
	fk.features = IORING_FEAT_NODROP;
	fk.cq_max = FK_CQ_MAX;
	fk.efd = -1;
	fk.err = -ECONNRESET;
	zc__uring_probe_reset();
}

static void fk_stop(void)
{
	fk.on = false;
	zc__uring_probe_reset();
}
#endif /* ZC_URING_FAKE */

#ifdef ZC_URING_FAKE
/* zc_open(URING) on a fresh loopback TCP socket, against the fake. */
static struct zc_sock *fk_open(int *tx, int *rx, uint32_t max_inflight)
{
	struct zc_opts o = {
		.sz = sizeof(o), .backend = ZC_BACKEND_URING,
		.copy_below = 1, .flags = ZC_OPT_NO_ADAPT,
		.max_inflight = max_inflight,
	};
	struct zc_sock *zs = NULL;
	int ret;

	make_pair(AF_INET, SOCK_STREAM, tx, rx, NULL, NULL);
	ret = zc_open(*tx, &o, &zs);
	if (ret)
		fail_msg("zc_open(URING) on the fake: %s (%s)", strerror(-ret),
			 zc_last_error());
	return zs;
}

static void fk_close(struct zc_sock *zs, int tx, int rx)
{
	zc_close(zs);
	close(tx);
	close(rx);
	assert_int_equal(fk.exits, 1);
	fk_stop();
}

/* Reap what there is now; check cookies first..first+n-1, in order. */
static void fk_expect(struct zc_sock *zs, uint64_t first, int n,
		      const uint32_t *flags)
{
	struct zc_completion c[64];
	int m = zc_completions(zs, c, 64);

	if (m != n)
		fail_msg("%d completions, want %d (cookie %llu on)", m, n,
			 (unsigned long long)first);
	for (int i = 0; i < n; i++) {
		assert_int_equal(c[i].cookie, first + (uint64_t)i);
		assert_int_equal(c[i].bytes, 20000);
		if (flags)
			assert_int_equal(c[i].flags, flags[i]);
	}
}

/*
 * A first CQE without F_MORE: no notification follows, the send completes
 * from that CQE alone, once, in order, with ZC_COPIED (the kernel holds no
 * page of it; with or without REPORT_USAGE).
 */
static void t_fake_nomore(void **s)
{
	static const uint32_t want[] = { 0, ZC_COPIED, 0 };
	struct zc_stats st;
	struct zc_sock *zs;
	int tx, rx;

	(void)s;
	for (int usage = 1; usage >= 0; usage--) {
		fk_start();
		if (!usage)
			setenv("ZCNOTIFY_URING_USAGE", "no", 1);
		zs = fk_open(&tx, &rx, 64);
		unsetenv("ZCNOTIFY_URING_USAGE");

		fk.mode = FK_NOMORE;
		assert_int_equal(zc_send(zs, big_buf, 20000, 0, 0), 20000);
		assert_int_equal(!!(fk.last_zc_flags &
				    IORING_SEND_ZC_REPORT_USAGE), usage);
		fk_expect(zs, 0, 1, (const uint32_t[]){ ZC_COPIED });
		assert_int_equal(zc_inflight(zs), 0);

		/* Between two sends that wait for their notifications. */
		fk.mode = FK_OK;
		assert_int_equal(zc_send(zs, big_buf, 20000, 0, 1), 20000);
		fk.mode = FK_NOMORE;
		assert_int_equal(zc_send(zs, big_buf, 20000, 0, 2), 20000);
		fk.mode = FK_OK;
		assert_int_equal(zc_send(zs, big_buf, 20000, 0, 3), 20000);
		fk_expect(zs, 1, 0, NULL);	/* 1 holds back 2 */
		fk_release(1, false);
		fk_expect(zs, 1, 2, want);
		fk_expect(zs, 3, 0, NULL);
		fk_release(1, false);
		fk_expect(zs, 3, 1, want);
		assert_int_equal(zc_inflight(zs), 0);
		stats_of(zs, &st);
		assert_int_equal(st.sends, 4);
		assert_int_equal(st.sends_zc, 4);
		assert_int_equal(st.completions, 4);
		assert_int_equal(st.completions_copied, 2);
		assert_int_equal(st.bad_ranges, 0);
		fk_close(zs, tx, rx);
	}
}

/*
 * Error CQEs. With F_MORE the notification follows (at once, or only when
 * the library waits): the call fails, nothing completes for it, and its
 * notification is never taken for the next send's, which reuses its id.
 * Without F_MORE: the call fails at once, nothing waits. -ENOMEM: copied.
 */
static void t_fake_errors(void **s)
{
	static const enum fk_mode modes[] = {
		FK_ERR_MORE, FK_ERR_MORE_LATE, FK_ERR_NOMORE };
	struct zc_stats st;
	struct zc_sock *zs;
	int tx, rx;

	(void)s;
	for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
		uint64_t ud, ghost = 0;
		unsigned int waits;

		fk_start();
		zs = fk_open(&tx, &rx, 64);
		fk.mode = FK_OK;
		assert_int_equal(zc_send(zs, big_buf, 20000, 0, 0), 20000);
		ud = fk.last_ud;

		fk.mode = modes[m];
		waits = fk.waits;
		assert_int_equal(zc_send(zs, big_buf, 20000, 0, 100),
				 -ECONNRESET);
		assert_int_equal(fk.last_ud, ud + 1);
		/* Only the late notification needs a wait for it. */
		assert_int_equal(fk.waits - waits,
				 modes[m] == FK_ERR_MORE_LATE);
		assert_int_equal(fk.nonwait, 0);
		assert_int_equal(zc_inflight(zs), 1);
		assert_int_equal(zc_send(zs, big_buf, 20000, MSG_DONTWAIT,
					 101), -ECONNRESET);
		assert_int_equal(fk.last_ud, ud + 1);
		/*
		 * A non-blocking send does not wait for a notification still
		 * to come (the kernel may hold it until the peer acknowledges
		 * earlier data: eagain-linked): it takes its id, a ghost that
		 * the notification completes, unseen.
		 */
		if (modes[m] == FK_ERR_MORE_LATE) {
			assert_int_equal(fk.nonwait, 1);
			ghost = 1;
		}
		assert_int_equal(zc_inflight(zs), 1);

		/*
		 * The next send takes the same id (the ghost's next); its
		 * notification is held.
		 */
		fk.mode = FK_OK;
		assert_int_equal(zc_send(zs, big_buf, 20000, 0, 1), 20000);
		assert_int_equal(fk.last_ud, ud + 1 + ghost);
		fk_expect(zs, 0, 0, NULL);
		fk_release(1, false);
		fk_expect(zs, 0, 1, NULL);
		fk_expect(zs, 1, 0, NULL);	/* not the failed send's */
		fk_release(1, false);
		if (ghost) {
			/* Ids in order: not before the ghost's came. */
			fk_expect(zs, 1, 0, NULL);
			fk_post_held();
		}
		fk_expect(zs, 1, 1, NULL);
		assert_int_equal(zc_inflight(zs), 0);
		stats_of(zs, &st);
		assert_int_equal(st.sends, 2);
		assert_int_equal(st.completions, 2);
		assert_int_equal(st.bad_ranges, 0);
		fk_close(zs, tx, rx);
	}

	/*
	 * -ENOMEM (io_uring's own RLIMIT_MEMLOCK charge, before a byte went):
	 * the call sends by copy instead, as for MSG_ZEROCOPY's ENOBUFS.
	 */
	fk_start();
	zs = fk_open(&tx, &rx, 64);
	fk.mode = FK_ERR_MORE;
	fk.err = -ENOMEM;
	assert_int_equal(zc_send(zs, big_buf, 20000, 0, 0), 20000);
	assert_int_equal(fk.sends, 1);
	fk_expect(zs, 0, 1, (const uint32_t[]){ ZC_COPIED | ZC_LIB_COPY });
	read_all(rx, 20000);
	stats_of(zs, &st);
	assert_int_equal(st.enobufs_fallback, 1);
	fk_close(zs, tx, rx);
}

/*
 * The CQ. (1) zc_open() sizes it for max_inflight notifications plus our
 * own CQEs, and refuses a max_inflight the kernel's CQ (clamped) cannot
 * hold, or a kernel without IORING_FEAT_NODROP (which drops CQEs when the
 * CQ is full): so the kernel never holds CQEs back nor drops one. (2) The
 * worst case fills no more than that: max_inflight - 1 notifications
 * unread, then a send whose result and notification come at once. (3)
 * CQEs held back all the same (IORING_SQ_CQ_OVERFLOW) are flushed, by the
 * send side's wait and the reap side's io_uring_get_events(): every
 * completion comes once. (4) -EBUSY from io_uring_enter() (a kernel that
 * refuses requests while it holds CQEs back): flushed and retried; if it
 * persists the call fails, nothing completes for it, the ring goes on.
 */
static void t_fake_cq(void **s)
{
	struct zc_opts o = { .sz = sizeof(o), .backend = ZC_BACKEND_URING,
			     .copy_below = 1 };
	struct zc_completion c[64];
	struct zc_sock *zs;
	uint64_t k, got;
	int tx, rx, n;

	(void)s;
	/* (1) */
	for (uint32_t mi = 1; mi <= 1024; mi *= 4) {
		fk_start();
		zs = fk_open(&tx, &rx, mi);
		assert_true(fk.cq_entries >= mi + 8);
		fk_close(zs, tx, rx);
	}
	fk_start();
	fk.cq_max = 64;
	make_pair(AF_INET, SOCK_STREAM, &tx, &rx, NULL, NULL);
	o.max_inflight = 64;
	assert_int_equal(zc_open(tx, &o, &zs), -EINVAL);
	fprintf(stderr, "  %s\n", zc_last_error());
	assert_non_null(strstr(zc_last_error(), "max_inflight"));
	o.max_inflight = 32;
	assert_int_equal(zc_open(tx, &o, &zs), 0);
	zc_close(zs);
	fk.features = 0;
	assert_int_equal(zc_open(tx, &o, &zs), -EOPNOTSUPP);
	fprintf(stderr, "  %s\n", zc_last_error());
	assert_non_null(strstr(zc_last_error(), "NODROP"));
	close(tx);
	close(rx);
	fk_stop();

	/* (2) */
	fk_start();
	zs = fk_open(&tx, &rx, 64);
	fk.mode = FK_OK;
	for (k = 0; k < 63; k++)
		assert_int_equal(zc_send(zs, big_buf, 20000, 0, k), 20000);
	fk_release(63, false);
	fk.mode = FK_OK_NOTIF;
	assert_int_equal(zc_send(zs, big_buf, 20000, 0, k++), 20000);
	assert_int_equal(zc_send(zs, big_buf, 20000, 0, k), -ENOBUFS);
	assert_int_equal(fk.full, 0);
	assert_int_equal(fk.nbacklog, 0);
	for (got = 0; got < 64; got += (uint64_t)n) {
		n = zc_completions(zs, c, 64);
		assert_true(n > 0);
		for (int i = 0; i < n; i++)
			assert_int_equal(c[i].cookie, got + (uint64_t)i);
	}
	fk_close(zs, tx, rx);

	/* (3) */
	fk_start();
	zs = fk_open(&tx, &rx, 64);
	fk.hold = true;
	fk.mode = FK_OK;
	for (k = 0; k < 40; k++)
		assert_int_equal(zc_send(zs, big_buf, 20000, 0, k), 20000);
	fk.mode = FK_OK_NOTIF;
	for (; k < 50; k++)
		assert_int_equal(zc_send(zs, big_buf, 20000, 0, k), 20000);
	fk_release(40, false);
	assert_true(fk.nbacklog > 0);
	assert_true(fk.sq_flags & IORING_SQ_CQ_OVERFLOW);
	for (got = 0; got < 50; got += (uint64_t)n) {
		n = zc_wait(zs, c, 64, WAIT_MS);
		assert_true(n > 0);
		for (int i = 0; i < n; i++)
			assert_int_equal(c[i].cookie, got + (uint64_t)i);
	}
	assert_int_equal(zc_completions(zs, c, 64), 0);
	assert_true(fk.get_events > 0);
	assert_int_equal(fk.nbacklog, 0);
	fk_close(zs, tx, rx);

	/* (4) */
	fk_start();
	zs = fk_open(&tx, &rx, 64);
	fk.mode = FK_OK_NOTIF;
	fk.busy = 1;
	assert_int_equal(zc_send(zs, big_buf, 20000, 0, 0), 20000);
	assert_int_equal(fk.sends, 1);
	fk.busy = 1000;
	assert_int_equal(zc_send(zs, big_buf, 20000, 0, 100), -EBUSY);
	assert_int_equal(fk.sends, 1);
	fk.busy = 0;
	assert_int_equal(zc_send(zs, big_buf, 20000, 0, 1), 20000);
	assert_int_equal(fk.sends, 2);
	fk_expect(zs, 0, 2, NULL);
	assert_int_equal(zc_inflight(zs), 0);
	fk_close(zs, tx, rx);
}

/*
 * What the kernel supports. Without IORING_OP_SEND_ZC (or when the probe
 * cannot tell), ZC_BACKEND_URING, from the options or from
 * ZCNOTIFY_BACKEND=uring, fails with -EOPNOTSUPP and says why; AUTO never
 * asks. The answer is kept for the process. Without REPORT_USAGE, sends do
 * not ask for it and no completion says ZC_COPIED.
 */
static void t_fake_probe(void **s)
{
	struct zc_opts o = { .sz = sizeof(o), .backend = ZC_BACKEND_URING };
	struct zc_sock *zs;
	int tx, rx;

	(void)s;
	fk_start();
	fk.no_send_zc = true;
	make_pair(AF_INET, SOCK_STREAM, &tx, &rx, NULL, NULL);
	assert_int_equal(zc_open(tx, &o, &zs), -EOPNOTSUPP);
	fprintf(stderr, "  %s\n", zc_last_error());
	assert_non_null(strstr(zc_last_error(), "IORING_OP_SEND_ZC"));
	o.backend = ZC_BACKEND_AUTO;
	setenv("ZCNOTIFY_BACKEND", "uring", 1);
	assert_int_equal(zc_open(tx, &o, &zs), -EOPNOTSUPP);
	assert_non_null(strstr(zc_last_error(), "IORING_OP_SEND_ZC"));
	unsetenv("ZCNOTIFY_BACKEND");
	assert_int_equal(fk.probes, 0);		/* the opcode list said no */
	assert_int_equal(zc_open(tx, &o, &zs), 0);
	assert_int_not_equal(zc_backend(zs), ZC_BACKEND_URING);
	zc_close(zs);
	fk_stop();

	fk_start();
	fk.probe_null = true;
	o.backend = ZC_BACKEND_URING;
	assert_int_equal(zc_open(tx, &o, &zs), -EOPNOTSUPP);
	assert_non_null(strstr(zc_last_error(), "cannot tell"));
	fk.probe_null = false;		/* asked again: no answer was kept */
	assert_int_equal(zc_open(tx, &o, &zs), 0);
	zc_close(zs);
	fk_stop();
	close(tx);
	close(rx);

	/* Linux 6.0, 6.1: SEND_ZC without REPORT_USAGE. */
	fk_start();
	fk.no_usage = true;
	zs = fk_open(&tx, &rx, 64);
	assert_int_equal(fk.probes, 1);
	fk.mode = FK_OK;
	assert_int_equal(zc_send(zs, big_buf, 20000, 0, 0), 20000);
	assert_int_equal(fk.last_zc_flags & IORING_SEND_ZC_REPORT_USAGE, 0);
	fk_release(1, true);
	fk_expect(zs, 0, 1, (const uint32_t[]){ 0 });
	zc_close(zs);
	close(tx);
	close(rx);
	/* Kept: the next ring does not ask again. */
	fk.exits = 0;
	zs = fk_open(&tx, &rx, 64);
	assert_int_equal(fk.probes, 1);
	fk_close(zs, tx, rx);

	/* Today's kernel: asked for, and COPIED reported. */
	fk_start();
	zs = fk_open(&tx, &rx, 64);
	fk.mode = FK_OK;
	assert_int_equal(zc_send(zs, big_buf, 20000, 0, 0), 20000);
	assert_true(fk.last_zc_flags & IORING_SEND_ZC_REPORT_USAGE);
	fk_release(1, true);
	fk_expect(zs, 0, 1, (const uint32_t[]){ ZC_COPIED });
	fk_close(zs, tx, rx);
}

/* A send the kernel parks (no room) completes when its result comes. */
static void t_fake_park(void **s)
{
	struct zc_sock *zs;
	int tx, rx;

	(void)s;
	fk_start();
	zs = fk_open(&tx, &rx, 64);
	fk.mode = FK_PARK;
	assert_int_equal(zc_send(zs, big_buf, 20000, 0, 0), 20000);
	assert_true(fk.waits > 0);
	assert_true(fk.last_msg_flags & MSG_WAITALL);	/* blocking TCP */
	fk_expect(zs, 0, 0, NULL);
	fk_release(1, false);
	fk_expect(zs, 0, 1, NULL);
	fk_close(zs, tx, rx);
}
#endif /* ZC_URING_FAKE */

/* ---- main ---------------------------------------------------------------- */

static const struct {
	const char *name;
	struct CMUnitTest test;
} all[] = {
#define T(n, f) { n, cmocka_unit_test(f) }
	T("basics", t_basics),
	T("stream-tcp4", t_stream_tcp4),
	T("stream-tcp6", t_stream_tcp6),
	T("stream-udp4", t_stream_udp4),
	T("stream-udp6", t_stream_udp6),
	T("threads-tcp4", t_threads_tcp4),
	T("threads-udp6", t_threads_udp6),
	T("eagain-dontwait", t_eagain_dontwait),
	T("eagain-nonblock", t_eagain_nonblock),
	T("eagain-nonblock-late", t_eagain_nonblock_late),
	T("eagain-linked", t_eagain_linked),
	T("eagain-linked-ctx", t_eagain_linked_ctx),
	T("eagain-linked-mmsg", t_eagain_linked_mmsg),
	T("eagain-linked-late", t_eagain_linked_late),
	T("eagain-linked-ctx-late", t_eagain_linked_ctx_late),
	T("blocking", t_blocking),
	T("blocking-late", t_blocking_late),
	T("blocking-mixed", t_blocking_mixed),
	T("blocking-signals", t_blocking_signals),
	T("peer-closed-tcp", t_peer_closed_tcp),
	T("peer-closed-udp", t_peer_closed_udp),
	T("idle-same", t_idle_same),
	T("idle-thread", t_idle_thread),
	T("idle-exited", t_idle_exited),
	T("no-usage", t_no_usage),
#ifdef ZC_URING_FAKE
	T("fake-nomore", t_fake_nomore),
	T("fake-errors", t_fake_errors),
	T("fake-cq", t_fake_cq),
	T("fake-probe", t_fake_probe),
	T("fake-park", t_fake_park),
#endif
#undef T
};
#define NALL (sizeof(all) / sizeof(all[0]))

/* 0 if the backend works here, else 77 (after saying why). */
static int available(void)
{
	struct zc_opts o = { .sz = sizeof(o), .backend = ZC_BACKEND_URING };
	struct zc_sock *zs;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), ret;

	if (fd < 0)
		return 77;
	ret = zc_open(fd, &o, &zs);
	close(fd);
	if (ret == -EOPNOTSUPP) {
		fprintf(stderr, "SKIP: %s\n", zc_last_error());
		return 77;
	}
	if (ret) {
		fprintf(stderr, "zc_open(URING): %s (%s)\n", strerror(-ret),
			zc_last_error());
		return 1;
	}
	zc_close(zs);
	return 0;
}

int main(int argc, char **argv)
{
	struct CMUnitTest tests[NALL];
	bool fake_only = argc > 1;
	size_t n = 0;
	int ret;

	/* The backend comes from the options here, not the environment. */
	unsetenv("ZCNOTIFY_BACKEND");
	unsetenv("ZCNOTIFY_URING_USAGE");
	signal(SIGPIPE, SIG_IGN);
	if (parse_test_sends(&nsends))
		return 1;
	for (size_t i = 0; i < NALL; i++) {
		bool want = argc < 2;

		for (int a = 1; a < argc; a++)
			want |= !strcmp(argv[a], all[i].name);
		if (want)
			tests[n++] = all[i].test;
		if (want && strncmp(all[i].name, "fake-", 5))
			fake_only = false;
	}
	if (!n) {
		fprintf(stderr, "no test matches\n");
		return 1;
	}
	/* The fake kernel's tests need no io_uring in this one. */
	ret = fake_only ? 0 : available();
	if (ret)
		return ret;
	return _cmocka_run_group_tests("uring", tests, n, NULL, NULL);
}
