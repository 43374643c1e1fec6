// SPDX-License-Identifier: MIT
/*
 * Real sockets over loopback: TCP and UDP, IPv4 (127.0.0.1) and IPv6 (::1),
 * each with the default options and with copy_below = 1 + ZC_OPT_NO_ADAPT
 * (every send of one byte or more goes through a kernel id).
 *
 * The sender streams messages of varied sizes from a pool of buffers; a
 * receiver thread checks every byte. A buffer goes back to the pool only
 * when the completions of all the sends that used it were reaped, and is
 * then overwritten with garbage at once: a completion handed out before the
 * kernel let go of the pages shows up as garbage at the receiver (the TCP
 * retransmit queue still points at the pages until the data is ACKed).
 *
 * Checked for every send call: the cookie completes exactly once if the
 * call returned >= 0 and never if it failed, completions come in send order
 * with the byte count the call returned, and the flags agree with the
 * options; at the end nothing is in flight and the counters add up.
 *
 * Usage: test-loopback [tcp4|tcp6|udp4|udp6][-default|-zc] ...
 * (no argument: all eight). ZC_TEST_SENDS=n sets the messages per run
 * (default 100000; 20000 under ThreadSanitizer). Exits 77 when the kernel
 * lacks what a selected run needs.
 *
 * Loopback copies zero-copy pages (skb_orphan_frags_rx()), so a completion
 * that comes too early cannot corrupt anything there, and every kernel
 * completion must say COPIED. ZC_RIG_LOOPBACK_ZC=1 (the kernel rig's bench
 * kernel, tests/kernel/0002-*.patch) says loopback keeps the pages: then
 * the receiver reads the sender's pages themselves, the garbage written
 * into a released buffer shows up if a completion was early, and the
 * zero-copy runs must see completions that are not COPIED.
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
#include <linux/errqueue.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
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

#ifndef SO_EE_ORIGIN_ZEROCOPY
#define SO_EE_ORIGIN_ZEROCOPY 5
#endif

#if defined(__SANITIZE_THREAD__) || ZC_HAS_TSAN
#define DEFAULT_SENDS	20000
#else
#define DEFAULT_SENDS	100000
#endif

#define LIB_COPY_BELOW	10240u	/* the documented default of copy_below */
#define TCP_MAX		65536u
#define UDP_MAX		65000u
#define UDP_MIN		8u	/* room for the sequence number */
#define BUF_SIZE	65536u
#define DEFAULT_MAX_INFLIGHT	1024u	/* zc_open(3); the runs keep it */
#define NBUF		1088u	/* more than the default max_inflight (1024) */
#define RX_BUF		(256u * 1024)
#define WAIT_MS		5000	/* a completion later than this is a bug */
#define STALL_S		20	/* the receiver makes no progress: fail */
#define UDP_WINDOW	4096u	/* datagrams ahead of the receiver, at most */
#define NO_BUF		UINT32_MAX

static uint64_t nsends = DEFAULT_SENDS;
static bool loopback_zc;	/* ZC_RIG_LOOPBACK_ZC=1: loopback keeps pages */

/* ---- deterministic data ------------------------------------------------ */

/* Size of message i: half tiny, a fifth small, the rest large. */
static size_t msg_size(uint64_t seed, bool udp, uint64_t i)
{
	uint64_t h = mix64(seed ^ (i * 0xD6E8FEB86659FD93ull));
	uint32_t pick = h & 1023, max = udp ? UDP_MAX : TCP_MAX;
	size_t min = udp ? UDP_MIN : 1;

	h >>= 10;
	if (pick < 8) {		/* the edges */
		static const uint32_t edge[] = {
			LIB_COPY_BELOW - 1, LIB_COPY_BELOW, LIB_COPY_BELOW + 1,
			0 /* max */, 1, 4096, 4097, 32768,
		};
		uint32_t e = edge[pick];

		return e == 0 ? max : e < min ? min : e;
	}
	if (pick < 512)
		return min + h % (2048 - min);
	if (pick < 720)
		return 2048 + h % (LIB_COPY_BELOW - 2048);
	return LIB_COPY_BELOW + h % (max - LIB_COPY_BELOW + 1);
}

/*
 * Payload of message i: fill_msg(). For UDP the first 8 bytes are then
 * replaced by the sequence number.
 */
static void fill_payload(uint8_t *p, uint64_t seed, bool udp, uint64_t i,
			 size_t len)
{
	fill_msg(p, seed, i, len);
	if (udp)
		memcpy(p, &i, sizeof(i));
}

/* ---- the receiver ------------------------------------------------------- */

struct rx {
	int fd;
	bool udp;
	uint64_t seed, nmsg, total;
	pthread_t thread;
	_Atomic uint64_t count;		/* UDP: datagrams received and checked */
	_Atomic int stop;		/* the sender gave up */
	_Atomic int failed;
	_Atomic int sender_waiting;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t bytes;
	char err[512];
};

static void rx_fail(struct rx *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void rx_fail(struct rx *r, const char *fmt, ...)
{
	va_list ap;

	if (atomic_load(&r->failed))
		return;
	va_start(ap, fmt);
	vsnprintf(r->err, sizeof(r->err), fmt, ap);
	va_end(ap);
	atomic_store(&r->failed, 1);
}

static void rx_wake_sender(struct rx *r)
{
	if (!atomic_load(&r->sender_waiting))
		return;
	pthread_mutex_lock(&r->mu);
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

/* Index of the first differing byte of a and b (which differ). */
static size_t first_diff(const uint8_t *a, const uint8_t *b, size_t n)
{
	size_t k = 0;

	while (k < n && a[k] == b[k])
		k++;
	return k;
}

/* recv() that retries EINTR and tolerates STALL_S seconds of silence. */
static ssize_t rx_recv(struct rx *r, void *buf, size_t len, int flags)
{
	int idle = 0;

	for (;;) {
		ssize_t n = recv(r->fd, buf, len, flags);

		if (n >= 0)
			return n;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		if (atomic_load(&r->stop))
			return -ECANCELED;
		if (++idle >= STALL_S)	/* SO_RCVTIMEO is one second */
			return -ETIMEDOUT;
	}
}

/*
 * Now and then the receiver dozes off: the sender's socket buffer fills,
 * sends block or come back partial or -EAGAIN, and sent data waits in the
 * kernel, still on the sender's pages, which is when a completion that
 * comes too early lets the garbage through.
 */
static void rx_doze(struct prng *p)
{
	struct timespec ts = { 0, 0 };

	if (prng_below(p, 128))
		return;
	ts.tv_nsec = 50000 + prng_below(p, 1000000);
	nanosleep(&ts, NULL);
}

static void rx_tcp(struct rx *r, uint8_t *buf, uint8_t *expect)
{
	struct prng rnd = { r->seed ^ 0xD0E };
	uint64_t i = 0;
	size_t size = 0, off = 0;

	if (r->nmsg) {
		size = msg_size(r->seed, false, 0);
		fill_payload(expect, r->seed, false, 0, size);
	}
	for (;;) {
		ssize_t n = rx_recv(r, buf, RX_BUF, 0);
		const uint8_t *p = buf;

		if (n < 0) {
			rx_fail(r, "recv: %s after %llu bytes", strerror((int)-n),
				(unsigned long long)r->bytes);
			return;
		}
		if (n == 0)
			break;
		if (atomic_load(&r->failed)) {	/* drain so the sender never blocks */
			r->bytes += (uint64_t)n;
			continue;
		}
		if (r->bytes + (uint64_t)n > r->total) {
			rx_fail(r, "%llu bytes past the %llu sent",
				(unsigned long long)(r->bytes + (uint64_t)n - r->total),
				(unsigned long long)r->total);
			continue;
		}
		r->bytes += (uint64_t)n;
		rx_doze(&rnd);
		while (n > 0) {
			size_t take;

			if (off == size) {
				i++;
				size = msg_size(r->seed, false, i);
				fill_payload(expect, r->seed, false, i, size);
				off = 0;
			}
			take = size - off < (size_t)n ? size - off : (size_t)n;
			if (memcmp(p, expect + off, take)) {
				size_t k = first_diff(p, expect + off, take);

				rx_fail(r, "message %llu (%zu bytes), byte %zu: "
					"got 0x%02x, want 0x%02x (buffer reused "
					"before the kernel let go of it?)",
					(unsigned long long)i, size, off + k,
					p[k], expect[off + k]);
				break;
			}
			p += take;
			n -= (ssize_t)take;
			off += take;
		}
	}
	if (!atomic_load(&r->failed) && r->bytes != r->total)
		rx_fail(r, "EOF after %llu of %llu bytes",
			(unsigned long long)r->bytes,
			(unsigned long long)r->total);
}

static void rx_udp(struct rx *r, uint8_t *buf, uint8_t *expect)
{
	for (uint64_t i = 0; i < r->nmsg; i++) {
		size_t size = msg_size(r->seed, true, i);
		ssize_t n = rx_recv(r, buf, RX_BUF, MSG_TRUNC);
		uint64_t seq;

		if (n < 0) {
			rx_fail(r, "waiting for datagram %llu: %s%s",
				(unsigned long long)i, strerror((int)-n),
				n == -ETIMEDOUT ? " (dropped?)" : "");
			return;
		}
		memcpy(&seq, buf, sizeof(seq));
		if (n < (ssize_t)UDP_MIN || seq != i) {
			rx_fail(r, "datagram %llu: got %zd bytes, sequence "
				"%llu (%s)", (unsigned long long)i, n,
				(unsigned long long)seq,
				n >= (ssize_t)UDP_MIN && seq > i ?
				"datagrams lost" : "out of order");
			return;
		}
		if ((size_t)n != size) {
			rx_fail(r, "datagram %llu: %zd bytes, want %zu",
				(unsigned long long)i, n, size);
			return;
		}
		fill_payload(expect, r->seed, true, i, size);
		if (memcmp(buf, expect, size)) {
			size_t k = first_diff(buf, expect, size);

			rx_fail(r, "datagram %llu (%zu bytes), byte %zu: got "
				"0x%02x, want 0x%02x (buffer reused before the "
				"kernel let go of it?)", (unsigned long long)i,
				size, k, buf[k], expect[k]);
			return;
		}
		r->bytes += (uint64_t)n;
		/* Release: pairs with the acquire in udp_window(). */
		atomic_store_explicit(&r->count, i + 1, memory_order_release);
		rx_wake_sender(r);
	}
}

static void *rx_main(void *arg)
{
	struct rx *r = arg;
	uint8_t *buf = malloc(RX_BUF), *expect = malloc(BUF_SIZE);

	if (!buf || !expect)
		rx_fail(r, "out of memory");
	else if (r->udp)
		rx_udp(r, buf, expect);
	else
		rx_tcp(r, buf, expect);
	free(buf);
	free(expect);
	atomic_store(&r->stop, 1);
	rx_wake_sender(r);
	return NULL;
}

/* ---- sockets ------------------------------------------------------------ */

/*
 * Can this kernel run the combination? Returns NULL, or why not (the run
 * is then skipped).
 */
static const char *probe(int family, int type)
{
	static char why[256];
	struct sockaddr_storage ss;
	socklen_t len;
	int one = 1, fd = bound_socket(family, type, &ss, &len);
	const char *env = getenv("ZCNOTIFY_BACKEND");

	if (fd < 0) {
		snprintf(why, sizeof(why), "cannot bind a %s %s socket to %s: %s",
			 family == AF_INET ? "IPv4" : "IPv6",
			 type == SOCK_STREAM ? "TCP" : "UDP",
			 family == AF_INET ? "127.0.0.1" : "::1",
			 strerror(-fd));
		return why;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_ZEROCOPY, &one, sizeof(one)) &&
	    !(env && !strcmp(env, "copy"))) {
		snprintf(why, sizeof(why), "SO_ZEROCOPY on a %s socket: %s "
			 "(the kernel lacks MSG_ZEROCOPY for it)",
			 type == SOCK_STREAM ? "TCP" : "UDP", strerror(errno));
		close(fd);
		return why;
	}
	close(fd);
	return NULL;
}

/* ---- the sender --------------------------------------------------------- */

enum { C_FAILED = -1 };

struct run {
	int family, type, txfd;
	bool udp, zc;
	const char *name;
	uint64_t seed;
	uint32_t copy_below;
	struct zc_sock *zs;
	struct rx rx;
	struct prng rnd;

	/* Per cookie (the cookie is the index of the send call). */
	uint64_t ncookies, cap;
	int32_t *sent;		/* bytes the call returned, or C_FAILED */
	uint32_t *asked;	/* bytes the call asked to send */
	uint32_t *cbuf;		/* buffer of the call, or NO_BUF */
	uint8_t *done;
	uint64_t next;		/* the cookie the next completion must carry */
	uint64_t nok, reaped;

	/* The pool. */
	uint8_t *mem;
	uint32_t refs[NBUF];	/* unreaped sends from the buffer */
	uint32_t len[NBUF];	/* bytes of the message in it */
	bool filling[NBUF];	/* the message is not fully sent yet */
	uint32_t freelist[NBUF], nfree;

	/* UDP flow control: cost of datagrams not yet received. */
	uint32_t cost[UDP_WINDOW];
	uint64_t ahead_from, ahead_bytes, budget;

	/* What happened. */
	uint64_t enobufs, eagain, eagain_long, partial, zero, einval, lazy_runs;
	uint64_t full_sends;		/* sends made at max_inflight */
	uint64_t c_libcopy, c_kernel, c_small, c_long;
	uint64_t stat_checks;
	char err[512];
};

static int run_fail(struct run *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int run_fail(struct run *r, const char *fmt, ...)
{
	va_list ap;

	if (!r->err[0]) {
		va_start(ap, fmt);
		vsnprintf(r->err, sizeof(r->err), fmt, ap);
		va_end(ap);
	}
	return -1;
}

#define CHECK(r, cond, ...) do {				\
		if (!(cond))					\
			return run_fail((r), __VA_ARGS__);		\
	} while (0)

static uint8_t *bufp(struct run *r, uint32_t b)
{
	return r->mem + (size_t)b * BUF_SIZE;
}

/* The buffer is free: overwrite it so that a late kernel read shows. */
static void release_buf(struct run *r, uint32_t b)
{
	memset(bufp(r, b), 0xEE, r->len[b]);
	r->freelist[r->nfree++] = b;
}

static int new_cookie(struct run *r, uint32_t asked, uint32_t b,
		      uint64_t *cookie)
{
	if (r->ncookies == r->cap) {
		uint64_t cap = r->cap ? r->cap * 2 : 4096;
		int32_t *s = realloc(r->sent, cap * sizeof(*s));
		uint32_t *a = s ? realloc(r->asked, cap * sizeof(*a)) : NULL;
		uint32_t *c = a ? realloc(r->cbuf, cap * sizeof(*c)) : NULL;
		uint8_t *d = c ? realloc(r->done, cap) : NULL;

		if (s)
			r->sent = s;
		if (a)
			r->asked = a;
		if (c)
			r->cbuf = c;
		if (!d)
			return run_fail(r, "out of memory for %llu cookies",
				    (unsigned long long)cap);
		r->done = d;
		r->cap = cap;
	}
	*cookie = r->ncookies++;
	r->sent[*cookie] = C_FAILED;
	r->asked[*cookie] = asked;
	r->cbuf[*cookie] = b;
	r->done[*cookie] = 0;
	return 0;
}

static int check_completion(struct run *r, const struct zc_completion *c)
{
	uint64_t k = c->cookie;
	uint32_t b;

	CHECK(r, k < r->ncookies, "completion with cookie %llu, but only %llu "
	      "send calls were made", (unsigned long long)k,
	      (unsigned long long)r->ncookies);
	CHECK(r, !r->done[k], "cookie %llu completed twice",
	      (unsigned long long)k);
	CHECK(r, r->sent[k] != C_FAILED, "completion for cookie %llu, whose "
	      "send failed", (unsigned long long)k);
	while (r->next < r->ncookies && r->sent[r->next] == C_FAILED)
		r->next++;
	CHECK(r, k == r->next, "completion for cookie %llu before cookie %llu "
	      "(out of send order)", (unsigned long long)k,
	      (unsigned long long)r->next);
	CHECK(r, c->bytes == (uint32_t)r->sent[k], "cookie %llu: completion "
	      "says %u bytes, the send returned %d", (unsigned long long)k,
	      c->bytes, r->sent[k]);
	CHECK(r, !(c->flags & ~(ZC_COPIED | ZC_LIB_COPY)), "cookie %llu: "
	      "unknown flags 0x%x", (unsigned long long)k, c->flags);
	CHECK(r, !(c->flags & ZC_LIB_COPY) || (c->flags & ZC_COPIED),
	      "cookie %llu: ZC_LIB_COPY without ZC_COPIED",
	      (unsigned long long)k);
	CHECK(r, loopback_zc || (c->flags & ZC_COPIED), "cookie %llu (%u "
	      "bytes): not COPIED, but over loopback the kernel copies every "
	      "zero-copy send", (unsigned long long)k, c->bytes);
	if (r->asked[k] < r->copy_below) {
		r->c_small++;
		CHECK(r, c->flags & ZC_LIB_COPY, "cookie %llu: a %u-byte send "
		      "(copy_below %u) did not complete as ZC_LIB_COPY",
		      (unsigned long long)k, r->asked[k], r->copy_below);
	} else {
		r->c_long++;
	}
	if (c->flags & ZC_LIB_COPY)
		r->c_libcopy++;
	else
		r->c_kernel++;
	r->done[k] = 1;
	r->next = k + 1;
	r->reaped++;

	b = r->cbuf[k];
	if (b != NO_BUF && --r->refs[b] == 0 && !r->filling[b])
		release_buf(r, b);
	return 0;
}

static int take(struct run *r, const struct zc_completion *out, int n,
		const char *what)
{
	CHECK(r, n >= 0, "%s: %s (%s)", what, strerror(-n), zc_last_error());
	for (int i = 0; i < n; i++)
		if (check_completion(r, &out[i]))
			return -1;
	return n;
}

/* Reap without blocking, at most max. */
static int reap_some(struct run *r, unsigned int max)
{
	struct zc_completion out[64];

	if (max > 64)
		max = 64;
	if (prng_below(&r->rnd, 8) == 0)
		return take(r, out, zc_wait(r->zs, out, max, 0), "zc_wait(0)");
	return take(r, out, zc_completions(r->zs, out, max), "zc_completions");
}

/* Wait for at least one completion; there must be one within WAIT_MS. */
static int reap_wait(struct run *r)
{
	struct zc_completion out[64];
	unsigned int inflight = zc_inflight(r->zs);
	int n = zc_wait(r->zs, out, 1 + prng_below(&r->rnd, 64), WAIT_MS);

	CHECK(r, n != 0, "zc_wait: no completion within %d ms with %u sends "
	      "in flight (a lost completion or wake-up)", WAIT_MS, inflight);
	return take(r, out, n, "zc_wait");
}

/* Every successful call completes: reap until the last one did. */
static int drain(struct run *r)
{
	while (r->reaped < r->nok)
		if (reap_wait(r) < 0)
			return -1;
	return 0;
}

static int stats_now(struct run *r, struct zc_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->sz = sizeof(*st);
	CHECK(r, zc_get_stats(r->zs, st) == 0, "zc_get_stats: %s",
	      zc_last_error());
	return 0;
}

/* UDP: keep the datagrams the receiver has not read within its buffer. */
static int udp_window(struct run *r, uint64_t seq, size_t len)
{
	uint32_t c = (uint32_t)(len + len / 2 + 8192);
	time_t stall = time(NULL) + STALL_S;
	uint64_t last = 0;

	for (;;) {
		/* Acquire: pairs with the release in rx_udp(). */
		uint64_t got = atomic_load_explicit(&r->rx.count,
						    memory_order_acquire);
		struct timespec ts;

		while (r->ahead_from < got) {
			r->ahead_bytes -= r->cost[r->ahead_from % UDP_WINDOW];
			r->ahead_from++;
		}
		if (seq - got < UDP_WINDOW &&
		    (r->ahead_bytes + c <= r->budget || seq == got))
			break;
		CHECK(r, !atomic_load(&r->rx.stop), "the receiver stopped");
		if (got != last) {
			last = got;
			stall = time(NULL) + STALL_S;
		}
		CHECK(r, time(NULL) < stall, "UDP: the receiver is stuck at "
		      "datagram %llu for %d s (dropped?)",
		      (unsigned long long)got, STALL_S);
		if (zc_inflight(r->zs) && reap_some(r, 64) < 0)
			return -1;
		atomic_store(&r->rx.sender_waiting, 1);
		pthread_mutex_lock(&r->rx.mu);
		if (atomic_load(&r->rx.count) == got && !atomic_load(&r->rx.stop)) {
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 1000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&r->rx.cv, &r->rx.mu, &ts);
		}
		pthread_mutex_unlock(&r->rx.mu);
		atomic_store(&r->rx.sender_waiting, 0);
	}
	r->cost[seq % UDP_WINDOW] = c;
	r->ahead_bytes += c;
	return 0;
}

/* Calls that must fail and never complete. */
static int odd_calls(struct run *r, uint32_t b)
{
	uint64_t k;
	ssize_t ret;

	if (prng_below(&r->rnd, 1024) == 0) {
		/* MSG_OOB is not a flag zc_sendmsg() passes on. */
		if (new_cookie(r, 16, NO_BUF, &k))
			return -1;
		ret = zc_send(r->zs, bufp(r, b), 16, MSG_OOB, k);
		CHECK(r, ret == -EINVAL, "zc_send(MSG_OOB) returned %zd, want "
		      "-EINVAL", ret);
		r->einval++;
	}
	if (!r->udp && prng_below(&r->rnd, 512) == 0) {
		/* Zero bytes: returns 0, and that is a completion too. */
		if (new_cookie(r, 0, NO_BUF, &k))
			return -1;
		ret = zc_send(r->zs, bufp(r, b), 0, MSG_NOSIGNAL, k);
		if (ret == -ENOBUFS) {
			r->enobufs++;
			return reap_wait(r) < 0 ? -1 : 0;
		}
		CHECK(r, ret == 0, "zc_send of 0 bytes returned %zd (%s)", ret,
		      ret < 0 ? strerror((int)-ret) : "");
		r->sent[k] = 0;
		r->nok++;
		r->zero++;
	}
	return 0;
}

/* Send message i from buffer b, in as many calls as it takes. */
static int send_msg(struct run *r, uint64_t i, uint32_t b)
{
	size_t len = r->len[b], off = 0;

	r->filling[b] = true;
	while (off < len) {
		int flags = MSG_NOSIGNAL;
		uint64_t k;
		ssize_t ret;
		bool full;

		if (odd_calls(r, b))
			return -1;
		if (r->udp && udp_window(r, i, len))
			return -1;
		if (prng_below(&r->rnd, 4) == 0)
			flags |= MSG_DONTWAIT;
		if (new_cookie(r, (uint32_t)(len - off), b, &k))
			return -1;
		/* Single-threaded: zc_inflight() is exact. */
		full = zc_inflight(r->zs) == DEFAULT_MAX_INFLIGHT;
		ret = zc_send(r->zs, bufp(r, b) + off, len - off, flags, k);
		CHECK(r, !full || ret == -ENOBUFS, "zc_send with max_inflight "
		      "sends in flight returned %zd, not -ENOBUFS", ret);
		if (ret == -ENOBUFS) {
			/* max_inflight sends await reaping: nothing was sent. */
			r->enobufs++;
			r->full_sends += full;
			CHECK(r, zc_inflight(r->zs) > 0, "-ENOBUFS with nothing "
			      "in flight");
			if (reap_wait(r) < 0)
				return -1;
			continue;
		}
		if (ret == -EAGAIN) {
			/* MSG_DONTWAIT and a full send buffer: wait a bit. */
			struct pollfd pfd = { .fd = r->txfd, .events = POLLOUT };

			r->eagain++;
			if (len - off >= r->copy_below)
				r->eagain_long++;
			if (zc_inflight(r->zs) && reap_some(r, 64) < 0)
				return -1;
			CHECK(r, !atomic_load(&r->rx.stop), "the receiver "
			      "stopped");
			poll(&pfd, 1, 100);
			continue;
		}
		CHECK(r, ret >= 0, "zc_send(%zu bytes, message %llu): %s (%s)",
		      len - off, (unsigned long long)i, strerror((int)-ret),
		      zc_last_error());
		CHECK(r, (size_t)ret <= len - off, "zc_send returned %zd for "
		      "%zu bytes", ret, len - off);
		CHECK(r, ret > 0, "zc_send returned 0 for %zu bytes",
		      len - off);
		if (r->udp)
			CHECK(r, (size_t)ret == len, "UDP send of %zu bytes "
			      "returned %zd", len, ret);
		r->sent[k] = (int32_t)ret;
		r->refs[b]++;
		r->nok++;
		if ((size_t)ret < len - off)
			r->partial++;
		off += (size_t)ret;
	}
	r->filling[b] = false;
	if (r->refs[b] == 0)
		release_buf(r, b);
	return 0;
}

static int sender(struct run *r)
{
	uint64_t lazy = 0;

	for (uint32_t b = 0; b < NBUF; b++)
		r->freelist[r->nfree++] = NBUF - 1 - b;

	for (uint64_t i = 0; i < r->rx.nmsg; i++) {
		uint32_t b;

		if (atomic_load(&r->rx.failed))
			return run_fail(r, "the receiver failed");
		while (!r->nfree)
			if (reap_wait(r) < 0)
				return -1;
		b = r->freelist[--r->nfree];
		r->len[b] = (uint32_t)msg_size(r->seed, r->udp, i);
		fill_payload(bufp(r, b), r->seed, r->udp, i, r->len[b]);
		if (send_msg(r, i, b))
			return -1;

		/*
		 * Mostly reap a little after each send; now and then not at
		 * all for a while, so the ring fills up and sends get ENOBUFS.
		 */
		if (lazy) {
			if (--lazy == 0)
				r->lazy_runs++;	/* a whole one: ENOBUFS due */
		} else if (prng_below(&r->rnd, 2000) == 0) {
			lazy = 1100 + prng_below(&r->rnd, 2000);
		} else if (prng_below(&r->rnd, 4) == 0) {
			if (reap_some(r, 1 + prng_below(&r->rnd, 64)) < 0)
				return -1;
		}
		if ((i & 4095) == 0) {
			struct zc_stats st;

			if (stats_now(r, &st))
				return -1;
			CHECK(r, st.sends == r->nok, "stats: sends %llu, but "
			      "%llu calls succeeded",
			      (unsigned long long)st.sends,
			      (unsigned long long)r->nok);
			CHECK(r, st.completions == r->reaped, "stats: "
			      "completions %llu, but %llu were reaped",
			      (unsigned long long)st.completions,
			      (unsigned long long)r->reaped);
			CHECK(r, zc_inflight(r->zs) == r->nok - r->reaped,
			      "zc_inflight %u, want %llu", zc_inflight(r->zs),
			      (unsigned long long)(r->nok - r->reaped));
			r->stat_checks++;
		}
	}
	return drain(r);
}

/*
 * Every send completed, so the kernel reported every id and the library
 * read every report: a zero-copy record still on (or coming to) the error
 * queue means a send was completed before the kernel said so.
 */
static int leftover_record(struct run *r)
{
	alignas(struct cmsghdr) unsigned char ctrl[512];
	struct pollfd pfd = { .fd = r->txfd, .events = 0 };
	struct sock_extended_err ee;
	struct msghdr m = {
		.msg_control = ctrl, .msg_controllen = sizeof(ctrl),
	};
	struct cmsghdr *c;

	if (poll(&pfd, 1, 50) <= 0 || !(pfd.revents & POLLERR))
		return 0;
	if (recvmsg(r->txfd, &m, MSG_ERRQUEUE | MSG_DONTWAIT) < 0)
		return 0;	/* sk_err, not a record */
	for (c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
		if (!((c->cmsg_level == SOL_IP && c->cmsg_type == IP_RECVERR) ||
		      (c->cmsg_level == SOL_IPV6 &&
		       c->cmsg_type == IPV6_RECVERR)))
			continue;
		memcpy(&ee, CMSG_DATA(c), sizeof(ee));
		if (ee.ee_origin == SO_EE_ORIGIN_ZEROCOPY)
			return run_fail(r, "the kernel reported ids %u-%u after "
					"every send had completed (completed "
					"before the kernel was done with them)",
					ee.ee_info, ee.ee_data);
	}
	return run_fail(r, "a foreign record (origin %u, errno %u) on the "
			"error queue of a quiet loopback socket", ee.ee_origin,
			ee.ee_errno);
}

/* At the end: nothing in flight, and the counters add up. */
static int final_checks(struct run *r)
{
	struct zc_completion out[8];
	struct zc_stats st;
	const char *env = getenv("ZCNOTIFY_BACKEND");
	int backend = zc_backend(r->zs);
	bool zcb = backend == ZC_BACKEND_ERRQUEUE || backend == ZC_BACKEND_SCM ||
		   backend == ZC_BACKEND_URING;
	uint64_t ndone = 0;
	int n;

	CHECK(r, zc_inflight(r->zs) == 0, "zc_inflight %u at the end",
	      zc_inflight(r->zs));
	n = zc_completions(r->zs, out, 8);
	CHECK(r, n == 0, "zc_completions returned %d with nothing in flight",
	      n);
	n = zc_wait(r->zs, out, 8, 0);
	CHECK(r, n == 0, "zc_wait(0) returned %d with nothing in flight", n);
	for (uint64_t k = 0; k < r->ncookies; k++) {
		CHECK(r, r->done[k] == (r->sent[k] != C_FAILED), "cookie %llu "
		      "(send returned %d) %s", (unsigned long long)k,
		      r->sent[k], r->done[k] ? "completed" : "never completed");
		ndone += r->done[k];
	}
	CHECK(r, ndone == r->nok, "%llu completions for %llu sends",
	      (unsigned long long)ndone, (unsigned long long)r->nok);
	CHECK(r, r->nfree == NBUF, "%u buffers never came back", NBUF - r->nfree);

	if (zcb && leftover_record(r))
		return -1;
	if (stats_now(r, &st))
		return -1;
	fprintf(stderr, "  %s: backend %s; %llu sends (%llu zero-copy, %llu "
		"copied: %llu adapt, %llu ENOBUFS fallback); %llu calls failed "
		"(%llu -ENOBUFS, %llu -EAGAIN, %llu -EINVAL); %llu partial, "
		"%llu empty; %llu lazy runs, %llu sends at max_inflight; "
		"%llu syscalls, %llu error-queue "
		"reads\n", r->name, zc_backend_name(backend),
		(unsigned long long)st.sends, (unsigned long long)st.sends_zc,
		(unsigned long long)st.sends_copy,
		(unsigned long long)st.adapt_copy,
		(unsigned long long)st.enobufs_fallback,
		(unsigned long long)(r->ncookies - r->nok),
		(unsigned long long)r->enobufs, (unsigned long long)r->eagain,
		(unsigned long long)r->einval, (unsigned long long)r->partial,
		(unsigned long long)r->zero, (unsigned long long)r->lazy_runs,
		(unsigned long long)r->full_sends,
		(unsigned long long)st.syscalls,
		(unsigned long long)st.errqueue_reads);

	CHECK(r, st.sends == r->nok, "stats: sends %llu, want %llu",
	      (unsigned long long)st.sends, (unsigned long long)r->nok);
	CHECK(r, st.completions == st.sends, "stats: completions %llu != "
	      "sends %llu", (unsigned long long)st.completions,
	      (unsigned long long)st.sends);
	/* sends and completions are sums (zc + copy): check them against
	 * what this test saw. */
	CHECK(r, st.completions == r->c_libcopy + r->c_kernel, "stats: "
	      "completions %llu, but the test got %llu",
	      (unsigned long long)st.completions,
	      (unsigned long long)(r->c_libcopy + r->c_kernel));
	CHECK(r, loopback_zc || st.completions_zc == 0, "stats: %llu "
	      "completions not copied over loopback",
	      (unsigned long long)st.completions_zc);
	/* The bench kernel: zero-copy must really have happened. */
	CHECK(r, !loopback_zc || !r->zc || r->c_kernel == 0 ||
	      st.completions_zc > 0, "ZC_RIG_LOOPBACK_ZC=1, yet all %llu "
	      "kernel completions say COPIED", (unsigned long long)r->c_kernel);
	CHECK(r, st.sends_copy == r->c_libcopy && st.sends_zc == r->c_kernel,
	      "stats: sends_copy %llu / sends_zc %llu, but %llu / %llu "
	      "completions had / lacked ZC_LIB_COPY",
	      (unsigned long long)st.sends_copy,
	      (unsigned long long)st.sends_zc,
	      (unsigned long long)r->c_libcopy,
	      (unsigned long long)r->c_kernel);
	CHECK(r, st.bad_ranges == 0 && st.ctrunc == 0 && st.foreign == 0,
	      "stats: %llu bad ranges, %llu truncated reads, %llu foreign "
	      "records over a quiet loopback",
	      (unsigned long long)st.bad_ranges, (unsigned long long)st.ctrunc,
	      (unsigned long long)st.foreign);
	CHECK(r, st.syscalls >= st.sends, "stats: %llu syscalls for %llu "
	      "sends", (unsigned long long)st.syscalls,
	      (unsigned long long)st.sends);
	/*
	 * Each send made at max_inflight got -ENOBUFS (checked as it was
	 * made). A lazy run (no reaping for more than max_inflight sends)
	 * usually makes some, but not always: EAGAIN and the UDP window
	 * reap too, and under valgrind on a busy machine often enough.
	 */
	CHECK(r, r->full_sends <= r->enobufs, "%llu sends at max_inflight, "
	      "%llu -ENOBUFS", (unsigned long long)r->full_sends,
	      (unsigned long long)r->enobufs);

	if (env && !strcmp(env, "copy")) {
		CHECK(r, backend == ZC_BACKEND_COPY, "ZCNOTIFY_BACKEND=copy, "
		      "but the backend is %s", zc_backend_name(backend));
	} else if (!env || !*env || !strcmp(env, "auto")) {
		CHECK(r, zcb, "zero-copy works here, but the backend is %s",
		      zc_backend_name(backend));
	}
	if (!zcb) {
		CHECK(r, st.sends_zc == 0 && r->c_kernel == 0, "backend %s "
		      "made %llu zero-copy sends", zc_backend_name(backend),
		      (unsigned long long)st.sends_zc);
		return 0;
	}
	if (r->zc) {
		/* Only an empty send or a refused pin may be copied. */
		CHECK(r, st.adapt_copy == 0, "ZC_OPT_NO_ADAPT, yet %llu sends "
		      "adapted to copying", (unsigned long long)st.adapt_copy);
		CHECK(r, st.sends_copy == r->zero + st.enobufs_fallback,
		      "copy_below 1: %llu copies, but only %llu empty sends "
		      "and %llu ENOBUFS fallbacks",
		      (unsigned long long)st.sends_copy,
		      (unsigned long long)r->zero,
		      (unsigned long long)st.enobufs_fallback);
		CHECK(r, st.sends_zc > 0, "copy_below 1: no zero-copy send");
	} else {
		/*
		 * Short sends are copied; the kernel reports COPIED for every
		 * long one, so after a few the library copies those too.
		 */
		uint64_t want = r->c_small + st.adapt_copy + st.enobufs_fallback;

		/*
		 * adapt_copy also counts calls that then failed (-EAGAIN):
		 * allow for those among the long calls that failed.
		 */
		CHECK(r, st.sends_copy <= want &&
		      st.sends_copy + r->eagain_long >= want, "defaults: %llu "
		      "copies, but %llu short + %llu adapt + %llu ENOBUFS "
		      "fallback (%llu long calls failed with -EAGAIN)",
		      (unsigned long long)st.sends_copy,
		      (unsigned long long)r->c_small,
		      (unsigned long long)st.adapt_copy,
		      (unsigned long long)st.enobufs_fallback,
		      (unsigned long long)r->eagain_long);
		CHECK(r, st.sends_zc > 0 || r->c_long == 0, "defaults: no "
		      "zero-copy send at all");
		if (st.sends - r->c_small > 2000 && !loopback_zc)
			CHECK(r, st.adapt_copy > st.sends_zc, "defaults: "
			      "%llu zero-copy sends, only %llu adapted copies; "
			      "the library did not adapt to loopback's copying",
			      (unsigned long long)st.sends_zc,
			      (unsigned long long)st.adapt_copy);
	}
	return 0;
}

static void run_one(int family, int type, bool zc, const char *name)
{
	struct run *r = calloc(1, sizeof(*r));
	struct zc_opts opts = {
		.sz = sizeof(opts), .copy_below = 1, .flags = ZC_OPT_NO_ADAPT,
	};
	struct timespec t0, t1;
	int tx, rxfd, ret, sz = 8 << 20;
	struct timeval tv = { .tv_sec = 1 };
	socklen_t sl = sizeof(sz);
	bool ok;

	assert_non_null(r);
	r->family = family;
	r->type = type;
	r->udp = type == SOCK_DGRAM;
	r->zc = zc;
	r->name = name;
	r->seed = mix64((uint64_t)family * 1000 + (uint64_t)type * 10 + zc);
	r->rnd.s = r->seed ^ 0x5EED;
	r->copy_below = zc ? 1 : LIB_COPY_BELOW;
	r->mem = malloc((size_t)NBUF * BUF_SIZE);
	assert_non_null(r->mem);

	ret = loopback_pair(family, type, &tx, &rxfd, NULL, NULL);
	if (ret)
		fail_msg("%s: loopback pair: %s", name, strerror(-ret));
	if (r->udp) {
		/* Root may exceed rmem_max; others get what it allows. */
		if (setsockopt(rxfd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)))
			setsockopt(rxfd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
		getsockopt(rxfd, SOL_SOCKET, SO_RCVBUF, &sz, &sl);
		r->budget = (uint64_t)sz / 2;
	} else {
		/* Small buffers, so that the sender runs into them often. */
		int snd = 256 << 10, rcv = 256 << 10;

		setsockopt(tx, SOL_SOCKET, SO_SNDBUF, &snd, sizeof(snd));
		setsockopt(rxfd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	}
	setsockopt(rxfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));

	r->txfd = tx;
	ret = zc_open(tx, zc ? &opts : NULL, &r->zs);
	if (ret == -EBUSY || (ret == -EOPNOTSUPP && getenv("ZCNOTIFY_BACKEND"))) {
		/*
		 * An old kernel (SO_ZEROCOPY only before connect()), or a
		 * backend this kernel or build lacks forced from outside.
		 */
		fprintf(stderr, "SKIP %s: %s\n", name, zc_last_error());
		exit(77);
	}
	if (ret)
		fail_msg("%s: zc_open: %s (%s)", name, strerror(-ret),
			 zc_last_error());

	r->rx.fd = rxfd;
	r->rx.udp = r->udp;
	r->rx.seed = r->seed;
	r->rx.nmsg = nsends;
	for (uint64_t i = 0; i < nsends; i++)
		r->rx.total += msg_size(r->seed, r->udp, i);
	pthread_mutex_init(&r->rx.mu, NULL);
	pthread_cond_init(&r->rx.cv, NULL);
	assert_int_equal(pthread_create(&r->rx.thread, NULL, rx_main, &r->rx), 0);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	ok = sender(r) == 0;
	if (ok)
		ok = final_checks(r) == 0;
	if (!ok)
		atomic_store(&r->rx.stop, 1);
	if (!r->udp)
		shutdown(tx, SHUT_WR);	/* EOF for the receiver */
	pthread_join(r->rx.thread, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	fprintf(stderr, "  %s: %llu messages, %.1f MB in %.2f s\n", name,
		(unsigned long long)nsends, (double)r->rx.total / 1e6,
		(double)(t1.tv_sec - t0.tv_sec) +
		(double)(t1.tv_nsec - t0.tv_nsec) / 1e9);

	zc_close(r->zs);
	close(tx);
	close(rxfd);
	pthread_mutex_destroy(&r->rx.mu);
	pthread_cond_destroy(&r->rx.cv);
	free(r->mem);
	free(r->sent);
	free(r->asked);
	free(r->cbuf);
	free(r->done);
	if (r->err[0] || atomic_load(&r->rx.failed)) {
		static char msg[1100];

		snprintf(msg, sizeof(msg), "%s: %s%s%s", name,
			 r->err[0] ? r->err : "",
			 r->err[0] && r->rx.err[0] ? "; receiver: " :
			 r->rx.err[0] ? "receiver: " : "", r->rx.err);
		free(r);
		fail_msg("%s", msg);
	}
	free(r);
}

#define RUN(fam, type, zc, name)					\
	static void t_##name(void **state)				\
	{								\
		(void)state;						\
		run_one(fam, type, zc, #name);				\
	}
RUN(AF_INET, SOCK_STREAM, false, tcp4_default)
RUN(AF_INET, SOCK_STREAM, true, tcp4_zc)
RUN(AF_INET6, SOCK_STREAM, false, tcp6_default)
RUN(AF_INET6, SOCK_STREAM, true, tcp6_zc)
RUN(AF_INET, SOCK_DGRAM, false, udp4_default)
RUN(AF_INET, SOCK_DGRAM, true, udp4_zc)
RUN(AF_INET6, SOCK_DGRAM, false, udp6_default)
RUN(AF_INET6, SOCK_DGRAM, true, udp6_zc)

static const struct {
	const char *name;
	int family, type;
	struct CMUnitTest test;
} all[] = {
#define T(n, f, t) { #n, f, t, cmocka_unit_test(t_##n) }
	T(tcp4_default, AF_INET, SOCK_STREAM),
	T(tcp4_zc, AF_INET, SOCK_STREAM),
	T(tcp6_default, AF_INET6, SOCK_STREAM),
	T(tcp6_zc, AF_INET6, SOCK_STREAM),
	T(udp4_default, AF_INET, SOCK_DGRAM),
	T(udp4_zc, AF_INET, SOCK_DGRAM),
	T(udp6_default, AF_INET6, SOCK_DGRAM),
	T(udp6_zc, AF_INET6, SOCK_DGRAM),
#undef T
};
#define NALL (sizeof(all) / sizeof(all[0]))

/* "tcp4" selects both modes, "tcp4-zc" or "tcp4_zc" one. */
static bool selected(const char *name, int argc, char **argv)
{
	if (argc < 2)
		return true;
	for (int a = 1; a < argc; a++) {
		char want[64];
		size_t n;

		snprintf(want, sizeof(want), "%s", argv[a]);
		for (char *p = want; *p; p++)
			if (*p == '-')
				*p = '_';
		n = strlen(want);
		if (!strcmp(name, want) ||
		    (!strncmp(name, want, n) && name[n] == '_'))
			return true;
	}
	return false;
}

int main(int argc, char **argv)
{
	struct CMUnitTest tests[NALL];
	size_t n = 0, skipped = 0;

	if (parse_test_sends(&nsends))
		return 1;
	loopback_zc = getenv("ZC_RIG_LOOPBACK_ZC") &&
		      !strcmp(getenv("ZC_RIG_LOOPBACK_ZC"), "1");
	if (loopback_zc)
		fprintf(stderr, "ZC_RIG_LOOPBACK_ZC=1: loopback keeps zero-copy "
			"pages; an early completion corrupts the data\n");
	for (size_t i = 0; i < NALL; i++) {
		const char *why;

		if (!selected(all[i].name, argc, argv))
			continue;
		why = probe(all[i].family, all[i].type);
		if (why) {
			fprintf(stderr, "SKIP %s: %s\n", all[i].name, why);
			skipped++;
			continue;
		}
		tests[n++] = all[i].test;
	}
	if (!n && !skipped) {
		fprintf(stderr, "no run matches; want tcp4, tcp6, udp4, udp6, "
			"optionally with -default or -zc\n");
		return 1;
	}
	if (!n)
		return 77;
	fprintf(stderr, "%llu messages per run\n", (unsigned long long)nsends);
	return _cmocka_run_group_tests("loopback", tests, n, NULL, NULL);
}
