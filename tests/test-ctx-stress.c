// SPDX-License-Identifier: MIT
/*
 * A randomized stress of contexts (zc_ctx_new(3)) under real kernel
 * faults, in a private network namespace (77 where unshare(CLONE_NEWNET)
 * is refused). Public API only; one sender thread and one reaper thread,
 * the contract the man pages allow, plus a thread that only changes the
 * namespace's network (no library call) and a parent that only watches.
 *
 * The sender owns every socket: it opens members of one context (TCP
 * and UDP, IPv4 and IPv6, backends errqueue, copy, uring and scm where
 * they open; random max_inflight, copy_below, ZC_OPT_NO_ADAPT, send
 * buffer), sends on them with zc_sendmsg() and zc_ctx_sendmmsg() (a
 * socket perhaps twice in one call, now and then an entry that must be
 * refused), half of them from a pool that it registers anew now and then
 * (zc_ctx_register_buffers(): none, whole, in quarters), reads the peers
 * and checks every byte, resets peers (SO_LINGER 0), points UDP members
 * at closed ports (ICMP errors, with and without IP_RECVERR), takes
 * members out with zc_ctx_del() and reaps them itself with
 * zc_completions(), closes members and deleted sockets with sends in
 * flight (now and then closing the fd first, a dup of it perhaps kept
 * open until after zc_close()). Sockets are non-blocking (an event-driven
 * server), but for a fifth of the UDP ones.
 *
 * The reaper loops on zc_ctx_wait() / zc_ctx_completions() with random
 * max and timeout, and calls zc_foreign() on members.
 *
 * The fault thread, every 50-400 ms: tbf on lo (holds zero-copy pages
 * in the qdisc, drops datagrams over its burst; sch_netem is not in
 * every kernel), nftables drops (every UDP datagram: EPERM after the id
 * was used; a share of TCP segments: retransmits), net.core.optmem_max
 * lowered to 0 or a few KiB (zero-copy refused: ENOBUFS), each undone at
 * random.
 *
 * Checked: every send that returned >= 0 completes exactly once, with
 * its cookie and byte count, each socket's in send order, from the
 * context while the socket is a member and from zc_completions() after
 * zc_ctx_del(), never after zc_close() or zc_ctx_del() returned; no
 * completion of a send that failed; zc_inflight() equal to the sends not
 * yet reaped whenever the reaper is between calls; flags valid
 * (ZC_COPIED on every copy); ZC_CTX_ERROR only -EBADF of a member whose
 * fd the test closed; bad_ranges 0; each buffer poisoned when its
 * completion is reaped, so a completion that comes while the kernel still
 * holds its pages (in the qdisc, in TCP's retransmit queue) shows as
 * poisoned bytes at the peer; at the end, everything reaped once the
 * faults are gone, zc_ctx_free() 0 and no file descriptor left.
 *
 * A run that does not end within its seconds plus 90 is a hang: the
 * parent prints every thread's stack (gdb, if installed), then kills it.
 * On 17bcde2 three runs in ten hung so (zc_ctx_sendmmsg() waiting
 * for the notification of a uring send that failed with -EAGAIN: see
 * test-uring eagain-linked).
 *
 * Usage: test-ctx-stress [SEED]. ZC_STRESS_SEED, ZC_STRESS_SECONDS
 * (default 25) as well; ZC_STRESS_NEED_SCM=1: skip (77) unless the scm
 * backend opens (tests/meson.build preloads bench/scm-emu.c). A failure
 * prints the seed; the choices replay from it (the threads' timing does
 * not).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <zcnotify.h>

#include "testutil.h"

extern char **environ;

#define MAX_INC		16384	/* socket incarnations, all runs */
#define NSLOT		24	/* live sockets at once */
#define POISON		0xEE
#define UDP_HDR		16	/* tag, seq */
#define NO_RESULT	((ssize_t)-123456789)	/* v[i].result before the call */

static uint64_t g_seed;
static unsigned int g_seconds = 25;
static struct zc_ctx *ctx;
static _Atomic int stop_reaper, stop_faults;
static _Atomic uint64_t epoch;	/* the reaper's calls */
static pthread_mutex_t M = PTHREAD_MUTEX_INITIALIZER;	/* a reaper batch */
static bool have_be[5];

static struct {
	_Atomic uint64_t sends_ok, sends_fail, compl_ctx, compl_own,
		err_records, foreign, closes, closes_fdfirst, dels, dels_busy,
		resets, mmsg_calls, faults, poisoned_bufs, partial, held_bytes,
		inflight_checks, dropped_unreaped;
	_Atomic uint64_t errs[160];
} st;

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "ctx-stress: FAIL: ");
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nctx-stress: seed %" PRIu64 " (ZC_STRESS_SEED=%"
		PRIu64 " to replay)\n", g_seed, g_seed);
	fflush(stderr);
	_exit(1);
}

/* ---- a socket's sends, as the test knows them ---------------------------- */

enum est { E_PENDING, E_SENT, E_EARLY, E_REAPED, E_FAILED };

struct ent {
	uint64_t cookie;
	uint8_t *buf;
	size_t len;
	uint32_t bytes;		/* E_SENT: the send's result */
	uint32_t rbytes, rflags;	/* E_EARLY: the completion's */
	uint8_t st;
	bool skipped;		/* a later cookie of the socket came first */
};

enum ist { I_MEMBER, I_DETACHED, I_GONE };

struct inc {
	uint64_t tag;
	struct zc_sock *zs;	/* as opened; compared, never used after close */
	int fd, rx, type, family, backend;
	bool icmp, recverr, peer_reset, stalled, verify;
	uint32_t max_inflight;
	pthread_mutex_t life;	/* zc_foreign() (reaper) vs close/del (sender) */
	pthread_mutex_t lock;	/* the fields below */
	int state;
	bool fd_closed;
	uint64_t gone_epoch;	/* left: reaper calls after it must not see it */
	struct ent *q;
	uint64_t cap, head, tail, rc;	/* absolute positions; rc: reaper's */
	uint64_t unreaped;	/* E_SENT entries */
	uint64_t seq;		/* sender: next send */
	uint64_t tx_off, rx_off, useq;
	unsigned int stall_ops;
};

static struct inc *incs[MAX_INC];
static _Atomic uint32_t ninc;
static struct inc *slot[NSLOT];

/* Buffers of sends forgotten by zc_close(): kept until the end. */
static pthread_mutex_t leak_lock = PTHREAD_MUTEX_INITIALIZER;
static uint8_t **leaks;
static size_t nleaks, capleaks;

/*
 * A pool of buffers for sends, registered with the context's ring now
 * and then (zc_ctx_register_buffers()): a slot per send, given back (and
 * poisoned) when it completes.
 */
#define POOL_SLOT	(64u << 10)
#define POOL_SLOTS	512u
static uint8_t *pool;
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static bool pool_used[POOL_SLOTS];

static bool in_pool(const uint8_t *b)
{
	return pool && b >= pool && b < pool + POOL_SLOT * POOL_SLOTS;
}

static uint8_t *pool_get(void)
{
	uint8_t *b = NULL;

	pthread_mutex_lock(&pool_lock);
	for (unsigned int i = 0; i < POOL_SLOTS && !b; i++)
		if (!pool_used[i]) {
			pool_used[i] = true;
			b = pool + (size_t)i * POOL_SLOT;
		}
	pthread_mutex_unlock(&pool_lock);
	return b;
}

static void buf_free(uint8_t *b)
{
	if (!in_pool(b)) {
		free(b);
		return;
	}
	pthread_mutex_lock(&pool_lock);
	pool_used[(size_t)(b - pool) / POOL_SLOT] = false;
	pthread_mutex_unlock(&pool_lock);
}

static void leak(uint8_t *b)
{
	if (in_pool(b))
		return;		/* its slot stays taken */
	pthread_mutex_lock(&leak_lock);
	if (nleaks == capleaks) {
		capleaks = capleaks ? capleaks * 2 : 1024;
		leaks = realloc(leaks, capleaks * sizeof(*leaks));
		if (!leaks)
			fail("out of memory");
	}
	leaks[nleaks++] = b;
	pthread_mutex_unlock(&leak_lock);
}

static inline uint8_t pat(uint64_t tag, uint64_t off)
{
	uint64_t w = mix64(tag * 0x100000001b3ull + (off >> 3));

	return (uint8_t)(w >> ((off & 7) * 8));
}

static void fill_pat(uint8_t *p, uint64_t tag, uint64_t off, size_t len)
{
	size_t i = 0;

	for (; i < len && ((off + i) & 7); i++)
		p[i] = pat(tag, off + i);
	for (; i + 8 <= len; i += 8) {
		uint64_t w = mix64(tag * 0x100000001b3ull + ((off + i) >> 3));

		memcpy(p + i, &w, 8);	/* little-endian: pat()'s order */
	}
	for (; i < len; i++)
		p[i] = pat(tag, off + i);
}

/* The first byte of p[0..len) that is not the pattern at off, or len. */
static size_t bad_pat(const uint8_t *p, uint64_t tag, uint64_t off,
		      size_t len)
{
	uint8_t want[4096];

	for (size_t i = 0; i < len; i += sizeof(want)) {
		size_t n = len - i < sizeof(want) ? len - i : sizeof(want);

		fill_pat(want, tag, off + i, n);
		if (memcmp(want, p + i, n))
			for (size_t j = 0; j < n; j++)
				if (want[j] != p[i + j])
					return i + j;
	}
	return len;
}

static struct ent *at(struct inc *in, uint64_t pos)
{
	return &in->q[pos & (in->cap - 1)];
}

/* Sender, under in->lock: a new entry at the tail. Returns its position. */
static uint64_t q_push(struct inc *in, uint64_t cookie, uint8_t *buf,
		       size_t len)
{
	if (in->tail - in->head == in->cap) {
		uint64_t ncap = in->cap ? in->cap * 2 : 16;
		struct ent *nq = calloc(ncap, sizeof(*nq));

		if (!nq)
			fail("out of memory");
		for (uint64_t p = in->head; p < in->tail; p++)
			nq[p & (ncap - 1)] = *at(in, p);
		free(in->q);
		in->q = nq;
		in->cap = ncap;
	}
	*at(in, in->tail) = (struct ent){ .cookie = cookie, .buf = buf,
					  .len = len, .st = E_PENDING };
	return in->tail++;
}

static void q_compact(struct inc *in)
{
	while (in->head < in->rc &&
	       (at(in, in->head)->st == E_REAPED ||
		at(in, in->head)->st == E_FAILED))
		in->head++;
	/* Failed sends at the tail the reaper has not passed. */
	while (in->tail > in->head && in->tail > in->rc &&
	       at(in, in->tail - 1)->st == E_FAILED)
		in->tail--;
}

/* The completion's buffer is free: poison it, then let it go. */
static void release(struct ent *e)
{
	if (e->buf) {
		memset(e->buf, POISON, e->len);
		buf_free(e->buf);
		e->buf = NULL;
	}
}

static void check_flags(struct inc *in, uint32_t flags, uint64_t cookie)
{
	if (flags & ~(uint32_t)(ZC_COPIED | ZC_LIB_COPY))
		fail("tag %" PRIu64 " cookie %#" PRIx64 ": flags %#x",
		     in->tag, cookie, flags);
	if ((flags & ZC_LIB_COPY) && !(flags & ZC_COPIED))
		fail("tag %" PRIu64 " cookie %#" PRIx64 ": ZC_LIB_COPY "
		     "without ZC_COPIED", in->tag, cookie);
	if (in->backend == ZC_BACKEND_COPY && !(flags & ZC_COPIED))
		fail("tag %" PRIu64 " (copy backend) cookie %#" PRIx64
		     ": not ZC_COPIED", in->tag, cookie);
}

/* Under in->lock: one completion of in (reaper, or sender if detached). */
static void complete(struct inc *in, uint64_t cookie, uint32_t bytes,
		     uint32_t flags, const char *who)
{
	uint64_t p = in->rc;
	struct ent *e = NULL;

	for (; p < in->tail; p++) {
		e = at(in, p);
		if (e->st == E_FAILED)
			continue;
		if (e->cookie == cookie)
			break;
		if (e->st == E_PENDING) {
			e->skipped = true;
			continue;
		}
		fail("%s: tag %" PRIu64 " (%s %s): cookie %#" PRIx64 " came "
		     "where %#" PRIx64 " (state %d, %u bytes) was due: out of "
		     "order, duplicated or mis-attributed", who, in->tag,
		     in->type == SOCK_STREAM ? "tcp" : "udp",
		     zc_backend_name(in->backend), cookie, e->cookie, e->st,
		     e->bytes);
	}
	if (p == in->tail)
		fail("%s: tag %" PRIu64 " (%s %s): cookie %#" PRIx64 " (%u "
		     "bytes): no such send pending (duplicate, or of a failed "
		     "send)", who, in->tag, in->type == SOCK_STREAM ? "tcp" :
		     "udp", zc_backend_name(in->backend), cookie, bytes);
	check_flags(in, flags, cookie);
	if (e->st == E_PENDING) {
		e->st = E_EARLY;
		e->rbytes = bytes;
		e->rflags = flags;
	} else {
		if (e->bytes != bytes)
			fail("%s: tag %" PRIu64 " cookie %#" PRIx64 ": %u bytes, "
			     "the send returned %u", who, in->tag, cookie, bytes,
			     e->bytes);
		e->st = E_REAPED;
		in->unreaped--;
		release(e);
	}
	in->rc = p + 1;
	q_compact(in);
}

/* Sender, under in->lock: the send at pos returned r. */
static void sent(struct inc *in, uint64_t pos, ssize_t r)
{
	struct ent *e = at(in, pos);

	if (r < 0) {
		if (e->st == E_EARLY)
			fail("tag %" PRIu64 " cookie %#" PRIx64 ": completed "
			     "(%u bytes), but the send failed: %zd", in->tag,
			     e->cookie, e->rbytes, r);
		if (e->buf)
			buf_free(e->buf);
		e->buf = NULL;
		e->st = E_FAILED;
		atomic_fetch_add(&st.sends_fail, 1);
		if (-r < 160)
			atomic_fetch_add(&st.errs[-r], 1);
	} else {
		atomic_fetch_add(&st.sends_ok, 1);
		if (e->skipped)
			fail("tag %" PRIu64 " cookie %#" PRIx64 " returned %zd "
			     "but a later send of the socket completed first",
			     in->tag, e->cookie, r);
		if ((size_t)r < e->len)
			atomic_fetch_add(&st.partial, 1);
		if (e->st == E_EARLY) {
			if (e->rbytes != (uint64_t)r)
				fail("tag %" PRIu64 " cookie %#" PRIx64 ": %u "
				     "bytes completed, the send returned %zd",
				     in->tag, e->cookie, e->rbytes, r);
			e->st = E_REAPED;
			release(e);
		} else {
			e->st = E_SENT;
			e->bytes = (uint32_t)r;
			in->unreaped++;
		}
	}
	q_compact(in);
}

/* ---- network set-up ---------------------------------------------------- */

/*
 * The environment of tc, nft and gdb: ours without LD_PRELOAD (scm-emu,
 * built with a sanitizer's runtime, would not load into them).
 */
static char **tool_env;

static void tool_env_init(void)
{
	size_t n = 0, k = 0;

	while (environ[n])
		n++;
	tool_env = calloc(n + 1, sizeof(*tool_env));
	if (!tool_env)
		abort();
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "LD_PRELOAD=", 11))
			tool_env[k++] = environ[i];
}

static int run(const char *const argv[], bool quiet)
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int status, r;

	posix_spawn_file_actions_init(&fa);
	if (quiet) {
		posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
		posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	}
	r = posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv,
			 tool_env);
	posix_spawn_file_actions_destroy(&fa);
	if (r)
		return -1;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, s, strlen(s));
	close(fd);
	return n == (ssize_t)strlen(s) ? 0 : -EIO;
}

static int lo_up(void)
{
	struct ifreq ifr = { 0 };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), r;

	if (fd < 0)
		return -errno;
	strcpy(ifr.ifr_name, "lo");
	r = ioctl(fd, SIOCGIFFLAGS, &ifr);
	ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
	if (!r)
		r = ioctl(fd, SIOCSIFFLAGS, &ifr);
	r = r ? -errno : 0;
	close(fd);
	return r;
}

static bool have_tc, have_nft;
static char optmem_default[32];

static void faults_clear(void)
{
	if (have_tc)
		run((const char *[]){ "tc", "qdisc", "del", "dev", "lo", "root",
				      NULL }, true);
	if (have_nft)
		run((const char *[]){ "nft", "flush", "chain", "inet", "zcs",
				      "out", NULL }, true);
	write_file("/proc/sys/net/core/optmem_max", optmem_default);
}

static void *fault_main(void *arg)
{
	struct prng p = { g_seed ^ 0xFA017ull };
	char a[32], b[32], c[32];

	(void)arg;
	while (!atomic_load(&stop_faults)) {
		unsigned int k = prng_below(&p, 10);

		usleep(50000 + prng_below(&p, 350000));
		atomic_fetch_add(&st.faults, 1);
		if (k < 3 && have_tc) {
			/* Holds: a rate; drops: datagrams over the burst. */
			snprintf(a, sizeof(a), "%umbit", 5 + prng_below(&p, 400));
			snprintf(b, sizeof(b), "%u", 3000 + prng_below(&p, 200000));
			snprintf(c, sizeof(c), "%u", 20000 + prng_below(&p, 4000000));
			run((const char *[]){ "tc", "qdisc", "replace", "dev", "lo",
					      "root", "tbf", "rate", a, "burst", b,
					      "limit", c, NULL }, false);
		} else if (k < 5 && have_tc) {
			run((const char *[]){ "tc", "qdisc", "del", "dev", "lo",
					      "root", NULL }, true);
		} else if (k == 5 && have_nft) {
			run((const char *[]){ "nft", "add", "rule", "inet", "zcs",
					      "out", "meta", "l4proto", "udp",
					      "drop", NULL }, false);
		} else if (k == 6 && have_nft) {
			snprintf(a, sizeof(a), "%u", 1 + prng_below(&p, 15));
			run((const char *[]){ "nft", "add", "rule", "inet", "zcs",
					      "out", "tcp", "flags", "!", "syn",
					      "numgen", "random", "mod", "100",
					      "<", a, "drop", NULL }, false);
		} else if (k == 7 && have_nft) {
			run((const char *[]){ "nft", "flush", "chain", "inet",
					      "zcs", "out", NULL }, false);
		} else if (k == 8) {
			static const char *const v[] = { "0", "1024", "4096",
							 "20000" };

			write_file("/proc/sys/net/core/optmem_max",
				   v[prng_below(&p, 4)]);
		} else {
			write_file("/proc/sys/net/core/optmem_max",
				   optmem_default);
		}
	}
	return NULL;
}

/* ---- sockets ------------------------------------------------------------ */

/* bound_socket() (testutil.c), or the test fails. */
static int bound(int family, int type, struct sockaddr_storage *ss,
		 socklen_t *len)
{
	int fd = bound_socket(family, type, ss, len);

	if (fd < 0)
		fail("socket/bind: %s", strerror(-fd));
	return fd;
}

static void nonblock(int fd)
{
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* A TCP pair over loopback, within 1 s (SYNs may be dropped). */
static int tcp_pair(int family, int *tx, int *rx)
{
	struct sockaddr_storage a;
	socklen_t alen;
	int l = bound(family, SOCK_STREAM, &a, &alen), s;
	struct pollfd pf;

	*tx = *rx = -1;
	if (listen(l, 1))
		fail("listen: %s", strerror(errno));
	s = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s < 0)
		fail("socket: %s", strerror(errno));
	if (connect(s, (struct sockaddr *)&a, alen) && errno != EINPROGRESS)
		fail("connect: %s", strerror(errno));
	pf = (struct pollfd){ .fd = l, .events = POLLIN };
	if (poll(&pf, 1, 1000) != 1) {
		close(s);
		close(l);
		return -1;
	}
	*rx = accept4(l, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	close(l);
	if (*rx < 0) {
		close(s);
		return -1;
	}
	pf = (struct pollfd){ .fd = s, .events = POLLOUT };
	poll(&pf, 1, 1000);
	*tx = s;
	return 0;
}

static const int backends[] = { ZC_BACKEND_ERRQUEUE, ZC_BACKEND_COPY,
				ZC_BACKEND_URING, ZC_BACKEND_SCM };

/* A new member in slot i. Returns false if the network refused. */
static bool inc_new(struct prng *p, unsigned int i)
{
	uint32_t tag = atomic_load(&ninc);
	struct inc *in;
	struct zc_opts o = { .sz = sizeof(o) };
	struct zc_sock *zs;
	int r;

	if (tag >= MAX_INC)
		return false;
	in = calloc(1, sizeof(*in));
	if (!in)
		fail("out of memory");
	in->tag = tag;
	in->type = prng_below(p, 2) ? SOCK_STREAM : SOCK_DGRAM;
	in->family = prng_below(p, 3) ? AF_INET : AF_INET6;
	do
		in->backend = backends[prng_below(p, 4)];
	while (!have_be[in->backend]);
	in->verify = true;
	in->rx = -1;
	pthread_mutex_init(&in->lock, NULL);
	pthread_mutex_init(&in->life, NULL);
	if (in->type == SOCK_STREAM) {
		if (tcp_pair(in->family, &in->fd, &in->rx)) {
			pthread_mutex_destroy(&in->lock);
			pthread_mutex_destroy(&in->life);
			free(in);
			return false;
		}
		if (prng_below(p, 3) == 0) {
			int sb = 4096 << prng_below(p, 5);

			setsockopt(in->fd, SOL_SOCKET, SO_SNDBUF, &sb, sizeof(sb));
		}
		if (prng_below(p, 4) == 0) {
			int one = 1;

			setsockopt(in->fd, IPPROTO_TCP, TCP_NODELAY, &one,
				   sizeof(one));
		}
	} else {
		struct sockaddr_storage a, b;
		socklen_t alen, blen;

		in->fd = bound(in->family, SOCK_DGRAM, &b, &blen);
		in->rx = bound(in->family, SOCK_DGRAM, &a, &alen);
		/* The scm emulation aborts on a record not a completion. */
		in->icmp = prng_below(p, 6) == 0 &&
			   in->backend != ZC_BACKEND_SCM;
		if (in->icmp) {	/* a closed port */
			close(in->rx);
			in->rx = -1;
		}
		if (connect(in->fd, (struct sockaddr *)&a, alen))
			fail("connect: %s", strerror(errno));
		if (in->backend != ZC_BACKEND_SCM && prng_below(p, 2)) {
			int one = 1;

			in->recverr = true;
			if (in->family == AF_INET)
				setsockopt(in->fd, SOL_IP, IP_RECVERR, &one,
					   sizeof(one));
			else
				setsockopt(in->fd, SOL_IPV6, IPV6_RECVERR, &one,
					   sizeof(one));
		}
		if (in->rx >= 0) {
			int rb = 4 << 20;

			setsockopt(in->rx, SOL_SOCKET, SO_RCVBUF, &rb, sizeof(rb));
			nonblock(in->rx);
		}
		/*
		 * Blocking now and then: a UDP send waits for room at most
		 * while the qdisc holds its datagrams (TCP would wait for
		 * the peer, which this thread reads).
		 */
		if (prng_below(p, 5))
			nonblock(in->fd);
	}
	o.backend = in->backend;
	o.max_inflight = 1u << (1 + prng_below(p, 10));
	o.copy_below = prng_below(p, 3) ? 1 : prng_below(p, 2) ? 0 : 4096;
	o.flags = prng_below(p, 2) ? ZC_OPT_NO_ADAPT : 0;
	o.ctx = ctx;
	o.tag = tag;
	in->max_inflight = o.max_inflight;
	in->state = I_MEMBER;
	/* Visible to the reaper through the context's lock (zc_open()). */
	incs[tag] = in;
	atomic_store(&ninc, tag + 1);
	r = zc_open(in->fd, &o, &zs);
	if (r)
		fail("zc_open(%s %s, max_inflight %u): %s: %s",
		     in->type == SOCK_STREAM ? "tcp" : "udp",
		     zc_backend_name(in->backend), o.max_inflight, strerror(-r),
		     zc_last_error());
	/* The reaper's zc_foreign() reads it under in->lock. */
	pthread_mutex_lock(&in->lock);
	in->zs = zs;
	pthread_mutex_unlock(&in->lock);
	slot[i] = in;
	return true;
}

/* Sender: zc_inflight() is exact while the reaper waits (M held). */
static void check_inflight(struct inc *in)
{
	unsigned int n;

	if (in->state == I_GONE)
		return;
	pthread_mutex_lock(&M);
	pthread_mutex_lock(&in->lock);
	n = zc_inflight(in->zs);
	if (n != in->unreaped)
		fail("tag %" PRIu64 " (%s %s, %s): zc_inflight() %u, %" PRIu64
		     " sends unreaped", in->tag, in->type == SOCK_STREAM ?
		     "tcp" : "udp", zc_backend_name(in->backend),
		     in->state == I_MEMBER ? "member" : "deleted", n,
		     in->unreaped);
	if (n > in->max_inflight)
		fail("tag %" PRIu64 ": zc_inflight() %u > max_inflight %u",
		     in->tag, n, in->max_inflight);
	pthread_mutex_unlock(&in->lock);
	pthread_mutex_unlock(&M);
	atomic_fetch_add(&st.inflight_checks, 1);
}

/* ---- the peers ---------------------------------------------------------- */

static uint8_t rxbuf[1 << 16];

static void rx_drain(struct inc *in, int reads)
{
	for (int k = 0; k < reads && in->rx >= 0; k++) {
		ssize_t n = recv(in->rx, rxbuf, sizeof(rxbuf), MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EAGAIN || errno == ECONNREFUSED)
				return;
			if (errno == ECONNRESET)
				return;
			fail("tag %" PRIu64 ": peer recv: %s", in->tag,
			     strerror(errno));
		}
		if (in->type == SOCK_STREAM) {
			if (n == 0)
				return;
			if (in->verify) {
				size_t j = bad_pat(rxbuf, in->tag, in->rx_off, n);

				if (j < (size_t)n)
					fail("tag %" PRIu64 " (tcp %s): stream "
					     "byte %" PRIu64 " is %#x, not %#x%s",
					     in->tag, zc_backend_name(in->backend),
					     in->rx_off + j, rxbuf[j],
					     pat(in->tag, in->rx_off + j),
					     rxbuf[j] == POISON ? " (poisoned: "
					     "completed early)" : "");
			}
			in->rx_off += n;
			continue;
		}
		if (n == 0)
			continue;
		{
			uint64_t h[2];

			if (n < UDP_HDR)
				fail("tag %" PRIu64 ": datagram of %zd bytes",
				     in->tag, n);
			memcpy(h, rxbuf, sizeof(h));
			if (h[0] != in->tag || h[1] >= in->useq)
				fail("tag %" PRIu64 " (udp %s): datagram header "
				     "%#" PRIx64 "/%" PRIu64 "%s", in->tag,
				     zc_backend_name(in->backend), h[0], h[1],
				     rxbuf[0] == POISON ? " (poisoned: "
				     "completed early)" : "");
			{
				size_t j = UDP_HDR + bad_pat(rxbuf + UDP_HDR,
					in->tag, (h[1] << 16) + UDP_HDR,
					n - UDP_HDR);

				if (j < (size_t)n)
					fail("tag %" PRIu64 " (udp %s): datagram "
					     "%" PRIu64 " byte %zu is %#x%s",
					     in->tag, zc_backend_name(in->backend),
					     h[1], j, rxbuf[j], rxbuf[j] == POISON ?
					     " (poisoned: completed early)" : "");
			}
		}
	}
}

/* ---- sending ------------------------------------------------------------ */

struct prep {
	uint8_t *buf;
	size_t len;
	struct iovec iov[3];
	struct msghdr msg;
	uint64_t pos, cookie;
};

/* The message of in's next send, its entry pushed. off: TCP offset. */
static void prep(struct prng *p, struct inc *in, struct prep *x,
		 uint64_t off)
{
	size_t len;
	unsigned int k = prng_below(p, 8);
	uint64_t cookie = in->tag << 32 | (in->seq++ & 0xffffffff);

	if (in->type == SOCK_STREAM)
		len = k == 0 ? 0 : k < 3 ? 1 + prng_below(p, 200) :
		      k < 6 ? 200 + prng_below(p, 16000) :
		      16000 + prng_below(p, 100000);
	else
		len = k == 0 ? 0 : k < 4 ? UDP_HDR + prng_below(p, 1500) :
		      k < 7 ? 1500 + prng_below(p, 9000) :
		      10000 + prng_below(p, 50000);
	x->buf = len && len <= POOL_SLOT && prng_below(p, 2) ? pool_get() :
		 NULL;
	if (len && !x->buf)
		x->buf = malloc(len);
	if (len && !x->buf)
		fail("out of memory");
	x->len = len;
	if (in->type == SOCK_STREAM) {
		fill_pat(x->buf, in->tag, off, len);
	} else if (len) {
		uint64_t h[2] = { in->tag, in->useq };

		fill_pat(x->buf, in->tag, (in->useq << 16), len);
		memcpy(x->buf, h, sizeof(h));
		in->useq++;
	}
	memset(&x->msg, 0, sizeof(x->msg));
	x->msg.msg_iov = x->iov;
	if (len > 2 && prng_below(p, 3) == 0) {
		size_t a = 1 + prng_below(p, len - 2);
		size_t b = a + prng_below(p, len - a);

		x->iov[0] = (struct iovec){ x->buf, a };
		x->iov[1] = (struct iovec){ x->buf + a, b - a };
		x->iov[2] = (struct iovec){ x->buf + b, len - b };
		x->msg.msg_iovlen = 3;
	} else {
		x->iov[0] = (struct iovec){ x->buf, len };
		x->msg.msg_iovlen = 1;
	}
	x->cookie = cookie;
	pthread_mutex_lock(&in->lock);
	x->pos = q_push(in, cookie, x->buf, len);
	pthread_mutex_unlock(&in->lock);
}

static bool unexpected(struct inc *in, ssize_t r)
{
	switch (-r) {
	case EAGAIN: case ENOBUFS: case ENOMEM: case EPIPE: case ECONNRESET:
	case ECONNREFUSED: case EPERM:
		return false;
	case EBADF: case ENOTCONN:
		return !in->fd_closed;
	}
	return true;
}

static void after_send(struct inc *in, struct prep *x, ssize_t r,
		       const char *how)
{
	if (r >= 0 && (size_t)r > x->len)
		fail("%s: tag %" PRIu64 ": %zd bytes of %zu", how, in->tag, r,
		     x->len);
	if (r < 0 && unexpected(in, r))
		fail("%s: tag %" PRIu64 " (%s %s%s): %s: %s", how, in->tag,
		     in->type == SOCK_STREAM ? "tcp" : "udp",
		     zc_backend_name(in->backend),
		     in->state == I_DETACHED ? ", deleted" : "", strerror(-r),
		     zc_last_error());
	pthread_mutex_lock(&in->lock);
	sent(in, x->pos, r);
	pthread_mutex_unlock(&in->lock);
}

static void send_one(struct prng *p, struct inc *in)
{
	struct prep x;
	ssize_t r;

	prep(p, in, &x, in->tx_off);
	r = zc_sendmsg(in->zs, &x.msg, MSG_NOSIGNAL |
		       (prng_below(p, 2) ? MSG_DONTWAIT : 0),
		       x.cookie);
	after_send(in, &x, r, "zc_sendmsg");
	if (r > 0 && in->type == SOCK_STREAM)
		in->tx_off += r;
}

static struct inc *pick(struct prng *p, int state)
{
	for (int t = 0; t < 3 * NSLOT; t++) {
		struct inc *in = slot[prng_below(p, NSLOT)];

		if (in && in->state == state && !in->fd_closed)
			return in;
	}
	return NULL;
}

static void send_mmsg(struct prng *p)
{
	struct zc_ctx_send v[12];
	struct prep x[12];
	struct inc *who[12];
	uint64_t off[12];
	unsigned int n = 1 + prng_below(p, 12), ok = 0;
	int r;

	for (unsigned int j = 0; j < n; j++) {
		struct inc *in = j && prng_below(p, 3) == 0 ? who[j - 1] :
				 pick(p, I_MEMBER);

		if (!in)
			in = pick(p, I_DETACHED);	/* must be refused */
		if (!in) {
			n = j;
			break;
		}
		who[j] = in;
		/* The offset if the socket's earlier sends here take all. */
		off[j] = in->tx_off;
		for (unsigned int i = 0; i < j; i++)
			if (who[i] == in)
				off[j] += x[i].len;
		prep(p, in, &x[j], off[j]);
		v[j] = (struct zc_ctx_send){ .zs = in->zs, .msg = &x[j].msg,
					     .cookie = x[j].cookie,
					     .flags = MSG_NOSIGNAL,
					     .result = NO_RESULT };
	}
	if (!n)
		return;
	atomic_fetch_add(&st.mmsg_calls, 1);
	r = zc_ctx_sendmmsg(ctx, v, n);
	for (unsigned int j = 0; j < n; j++) {
		struct inc *in = who[j];
		ssize_t res = v[j].result;

		if (res == NO_RESULT) {
			for (unsigned int i = 0; i < n; i++)
				fprintf(stderr, "  entry %u: tag %" PRIu64 " %s %s "
					"%s, %zu bytes: result %zd\n", i,
					who[i]->tag, who[i]->type == SOCK_STREAM ?
					"tcp" : "udp",
					zc_backend_name(who[i]->backend),
					who[i]->state == I_MEMBER ? "member" :
					"deleted", x[i].len, v[i].result);
			fail("zc_ctx_sendmmsg: entry %u of %u: no result "
			     "(returned %d)", j, n, r);
		}
		ok += res >= 0;
		if (in->state == I_DETACHED) {
			if (res != -EINVAL)
				fail("zc_ctx_sendmmsg: entry %u, a deleted "
				     "socket: %zd, not -EINVAL", j, res);
			pthread_mutex_lock(&in->lock);
			sent(in, x[j].pos, res);
			pthread_mutex_unlock(&in->lock);
			continue;
		}
		after_send(in, &x[j], res, "zc_ctx_sendmmsg");
		if (in->type != SOCK_STREAM)
			continue;
		/* An earlier send of the socket here fell short: the
		 * offsets the later ones were made for are wrong. */
		if (res >= 0 && off[j] != in->tx_off)
			in->verify = false;
		if (res > 0)
			in->tx_off += res;
	}
	if (r != (int)ok)
		fail("zc_ctx_sendmmsg: returned %d, %u results >= 0", r, ok);
}

/* Sender: reap a deleted socket itself. */
static void reap_own(struct prng *p, struct inc *in, int timeout_ms)
{
	struct zc_completion c[64];
	unsigned int max = 1 + prng_below(p, 64);
	int n = timeout_ms ? zc_wait(in->zs, c, max, timeout_ms) :
			     zc_completions(in->zs, c, max);

	if (n < 0 && n != -EINTR)
		fail("tag %" PRIu64 " (deleted): zc_%s: %s: %s", in->tag,
		     timeout_ms ? "wait" : "completions", strerror(-n),
		     zc_last_error());
	pthread_mutex_lock(&in->lock);
	for (int j = 0; j < n; j++)
		complete(in, c[j].cookie, c[j].bytes, c[j].flags,
			 "zc_completions");
	pthread_mutex_unlock(&in->lock);
	atomic_fetch_add(&st.compl_own, n > 0 ? n : 0);
}

/* ---- leaving ------------------------------------------------------------ */

static void mark_left(struct inc *in, int state)
{
	uint64_t e = atomic_load(&epoch);

	pthread_mutex_lock(&in->lock);
	in->gone_epoch = e;
	pthread_mutex_unlock(&in->lock);
	/* Every reaper call begun before we returned is over and checked. */
	pthread_mutex_lock(&M);
	pthread_mutex_lock(&in->lock);
	in->state = state;
	pthread_mutex_unlock(&in->lock);
	pthread_mutex_unlock(&M);
}

static void check_stats(struct inc *in)
{
	struct zc_stats s = { .sz = sizeof(s) };

	if (zc_get_stats(in->zs, &s))
		fail("zc_get_stats: %s", zc_last_error());
	if (s.bad_ranges)
		fail("tag %" PRIu64 " (%s %s): bad_ranges %" PRIu64, in->tag,
		     in->type == SOCK_STREAM ? "tcp" : "udp",
		     zc_backend_name(in->backend), s.bad_ranges);
}

static void inc_close(struct prng *p, unsigned int i)
{
	struct inc *in = slot[i];
	bool fd_first = !in->fd_closed && prng_below(p, 8) == 0;
	int dupfd = -1;

	if (prng_below(p, 2))
		check_inflight(in);
	if (!in->fd_closed)
		check_stats(in);
	pthread_mutex_lock(&in->life);
	if (fd_first) {
		/* Behind the library's back: the man page's -EBADF. */
		pthread_mutex_lock(&in->lock);
		in->fd_closed = true;
		pthread_mutex_unlock(&in->lock);
		/*
		 * Now and then a dup lives on: the socket stays in the epoll
		 * set under the closed number until zc_close() (its events
		 * must reach no other member).
		 */
		if (prng_below(p, 2))
			dupfd = fcntl(in->fd, F_DUPFD_CLOEXEC, 0);
		close(in->fd);
		atomic_fetch_add(&st.closes_fdfirst, 1);
		if (prng_below(p, 2))
			usleep(prng_below(p, 3000));
	}
	zc_close(in->zs);
	mark_left(in, I_GONE);
	pthread_mutex_unlock(&in->life);
	if (!fd_first) {
		if (prng_below(p, 2)) {
			struct linger lg = { 1, 0 };

			setsockopt(in->fd, SOL_SOCKET, SO_LINGER, &lg,
				   sizeof(lg));
		}
		close(in->fd);
	}
	if (dupfd >= 0)
		close(dupfd);
	if (in->rx >= 0)
		close(in->rx);
	in->rx = -1;
	/* Forgotten: their buffers are kept to the end (zc_close(3)). */
	pthread_mutex_lock(&in->lock);
	for (uint64_t q = in->head; q < in->tail; q++) {
		struct ent *e = at(in, q);

		if (e->st == E_SENT) {
			atomic_fetch_add(&st.dropped_unreaped, 1);
			if (e->buf)
				leak(e->buf);
			e->buf = NULL;
		}
	}
	free(in->q);
	in->q = NULL;
	in->head = in->tail = in->rc = in->cap = 0;
	pthread_mutex_unlock(&in->lock);
	atomic_fetch_add(&st.closes, 1);
	slot[i] = NULL;
}

static void inc_del(struct inc *in)
{
	int r;

	pthread_mutex_lock(&in->life);
	r = zc_ctx_del(ctx, in->zs);
	if (r == -EBUSY && in->backend == ZC_BACKEND_URING) {
		pthread_mutex_unlock(&in->life);
		atomic_fetch_add(&st.dels_busy, 1);
		return;
	}
	if (r)
		fail("zc_ctx_del(tag %" PRIu64 ", %s %s): %s: %s", in->tag,
		     in->type == SOCK_STREAM ? "tcp" : "udp",
		     zc_backend_name(in->backend), strerror(-r),
		     zc_last_error());
	/* Held: the reaper's zc_foreign() must not see it as a member. */
	mark_left(in, I_DETACHED);
	pthread_mutex_unlock(&in->life);
	atomic_fetch_add(&st.dels, 1);
	{
		struct zc_completion c;

		if (zc_wait(in->zs, &c, 0, 0) != 0)
			fail("zc_wait(max 0) on a deleted socket");
	}
	check_inflight(in);
}

static void peer_reset(struct inc *in)
{
	if (in->rx < 0)
		return;
	if (in->type == SOCK_STREAM) {
		struct linger lg = { 1, 0 };

		setsockopt(in->rx, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		in->peer_reset = true;
		in->verify = false;
	}
	close(in->rx);		/* UDP: the port closes; ICMP from now on */
	in->rx = -1;
	atomic_fetch_add(&st.resets, 1);
}

/* ---- the reaper ----------------------------------------------------------- */

static void *reap_main(void *arg)
{
	struct prng p = { g_seed ^ 0x5EA9E5ull };
	struct zc_ctx_completion c[160];
	struct zc_errrec fr[8];

	(void)arg;
	while (!atomic_load(&stop_reaper)) {
		unsigned int max = prng_below(&p, 4) ? 1 + prng_below(&p, 160) :
				   1 + prng_below(&p, 3);
		uint64_t e;
		int n;

		pthread_mutex_lock(&M);
		e = atomic_fetch_add(&epoch, 1) + 1;
		if (prng_below(&p, 3))
			n = zc_ctx_wait(ctx, c, max, prng_below(&p, 20));
		else
			n = zc_ctx_completions(ctx, c, max);
		if (n < 0 && n != -EINTR)
			fail("zc_ctx_wait/completions: %s: %s", strerror(-n),
			     zc_last_error());
		if (n > (int)max)
			fail("zc_ctx_completions: %d records, max %u", n, max);
		for (int j = 0; j < n; j++) {
			struct inc *in = c[j].tag < atomic_load(&ninc) ?
					 incs[c[j].tag] : NULL;

			if (!in)
				fail("record of unknown tag %" PRIu64, c[j].tag);
			if (c[j].zs != in->zs)
				fail("record of tag %" PRIu64 " with zs %p, "
				     "not %p", c[j].tag, (void *)c[j].zs,
				     (void *)in->zs);
			pthread_mutex_lock(&in->lock);
			if (in->state != I_MEMBER || (in->gone_epoch &&
						      e > in->gone_epoch))
				fail("tag %" PRIu64 " (%s %s): record (cookie "
				     "%#" PRIx64 ", flags %#x, error %d) from "
				     "the context after zc_%s() returned",
				     in->tag, in->type == SOCK_STREAM ? "tcp" :
				     "udp", zc_backend_name(in->backend),
				     c[j].cookie, c[j].flags, c[j].error,
				     in->state == I_GONE ? "close" : "ctx_del");
			if (c[j].flags & ZC_CTX_ERROR) {
				if (!(in->fd_closed && c[j].error == -EBADF))
					fail("tag %" PRIu64 " (%s %s): "
					     "ZC_CTX_ERROR %d (%s)", in->tag,
					     in->type == SOCK_STREAM ? "tcp" :
					     "udp", zc_backend_name(in->backend),
					     c[j].error, strerror(-c[j].error));
				atomic_fetch_add(&st.err_records, 1);
			} else {
				if (c[j].error)
					fail("tag %" PRIu64 ": error %d without "
					     "ZC_CTX_ERROR", in->tag, c[j].error);
				complete(in, c[j].cookie, c[j].bytes,
					 c[j].flags, "zc_ctx_completions");
			}
			pthread_mutex_unlock(&in->lock);
		}
		atomic_fetch_add(&st.compl_ctx, n > 0 ? n : 0);
		pthread_mutex_unlock(&M);
		/* zc_foreign() on a member: reap side, the context's lock. */
		if (prng_below(&p, 8) == 0) {
			uint32_t nn = atomic_load(&ninc);
			struct inc *in = nn ? incs[prng_below(&p, nn)] : NULL;

			if (in && !pthread_mutex_trylock(&in->life)) {
				struct zc_sock *zs;

				/* NULL until its zc_open() returned. */
				pthread_mutex_lock(&in->lock);
				zs = in->state == I_MEMBER ? in->zs : NULL;
				pthread_mutex_unlock(&in->lock);
				if (zs) {
					n = zc_foreign(zs, fr, 8);
					if (n == -EBADF && in->fd_closed)
						n = 0;
					if (n < 0)
						fail("zc_foreign(tag %" PRIu64
						     "): %s: %s", in->tag,
						     strerror(-n),
						     zc_last_error());
					atomic_fetch_add(&st.foreign, n);
				}
				pthread_mutex_unlock(&in->life);
			}
		}
		if (prng_below(&p, 50) == 0)
			usleep(prng_below(&p, 20000));	/* lag behind */
	}
	return NULL;
}

/* ---- the sender ------------------------------------------------------------ */

static unsigned int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	unsigned int n = 0;

	if (!d)
		fail("/proc/self/fd: %s", strerror(errno));
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static void drain_all(struct prng *p, bool all)
{
	for (unsigned int i = 0; i < NSLOT; i++) {
		struct inc *in = slot[i];

		if (!in)
			continue;
		if (in->stall_ops) {
			in->stall_ops--;
			if (!all)
				continue;
		}
		rx_drain(in, 16);
		if (in->state == I_DETACHED)
			reap_own(p, in, 0);
	}
}

static bool all_reaped(void)
{
	bool done = true;

	for (unsigned int i = 0; i < NSLOT; i++) {
		struct inc *in = slot[i];

		if (!in)
			continue;
		pthread_mutex_lock(&in->lock);
		if (in->unreaped)
			done = false;
		pthread_mutex_unlock(&in->lock);
	}
	return done;
}

/* The pool registered anew: none, whole, or in quarters. */
static void register_pool(struct prng *p)
{
	struct iovec v[4];
	unsigned int n = prng_below(p, 3), k = n == 2 ? 4 : n;
	size_t part = POOL_SLOT * POOL_SLOTS / (k ? k : 1);
	int r;

	for (unsigned int i = 0; i < k; i++)
		v[i] = (struct iovec){ pool + i * part, part };
	r = zc_ctx_register_buffers(ctx, k ? v : NULL, k);
	if (r && r != -EOPNOTSUPP)
		fail("zc_ctx_register_buffers(%u): %s: %s", k, strerror(-r),
		     zc_last_error());
}

static void sender(void)
{
	struct prng p = { g_seed };
	double end = now_s() + g_seconds;
	uint64_t ops = 0;

	while (now_s() < end) {
		unsigned int k = prng_below(&p, 1000), i = prng_below(&p, NSLOT);
		struct inc *in;

		ops++;
		if (!slot[i]) {
			inc_new(&p, i);
			continue;
		}
		in = slot[i];
		if (k < 450) {
			if (!in->fd_closed)
				send_one(&p, in);
		} else if (k < 560) {
			send_mmsg(&p);
		} else if (k < 800) {
			drain_all(&p, false);
		} else if (k < 840) {
			if (in->state == I_DETACHED)
				reap_own(&p, in, prng_below(&p, 3));
		} else if (k < 850) {
			if (in->state == I_MEMBER && !in->fd_closed)
				inc_del(in);
		} else if (k < 862) {
			inc_close(&p, i);
		} else if (k < 866) {
			peer_reset(in);
		} else if (k < 880) {
			in->stall_ops = 20 + prng_below(&p, 400);
		} else if (k < 890) {
			check_inflight(in);
		} else if (k < 894) {
			register_pool(&p);
		}
	}
	fprintf(stderr, "ctx-stress: %" PRIu64 " operations; draining\n", ops);
	atomic_store(&stop_faults, 1);
}

static void drain_end(struct prng *p)
{
	double until = now_s() + 30;

	faults_clear();
	while (!all_reaped()) {
		if (now_s() > until) {
			for (unsigned int i = 0; i < NSLOT; i++) {
				struct inc *in = slot[i];

				if (in && in->unreaped)
					fprintf(stderr, "tag %" PRIu64 " (%s %s "
						"%s%s%s): %" PRIu64 " unreaped, "
						"zc_inflight %u\n", in->tag,
						in->type == SOCK_STREAM ? "tcp" :
						"udp", zc_backend_name(in->backend),
						in->state == I_MEMBER ? "member" :
						"deleted", in->peer_reset ?
						", peer reset" : "", in->icmp ?
						", icmp" : "", in->unreaped,
						zc_inflight(in->zs));
			}
			fail("sends never completed (30 s after the faults "
			     "ended)");
		}
		drain_all(p, true);
		usleep(1000);
	}
	for (unsigned int i = 0; i < NSLOT; i++)
		if (slot[i])
			check_inflight(slot[i]);
}

static int child(void)
{
	pthread_t rt, ft;
	struct prng p = { g_seed ^ 0xC105Eull };
	unsigned int fds0, fds1;
	int r;
	bool any = false;

	if (unshare(CLONE_NEWNET)) {
		fprintf(stderr, "ctx-stress: unshare(CLONE_NEWNET): %s: skip\n",
			strerror(errno));
		return 77;
	}
	if ((r = lo_up()))
		fail("lo up: %s", strerror(-r));
	{
		int fd = open("/proc/sys/net/core/optmem_max", O_RDONLY);
		ssize_t n = fd >= 0 ? read(fd, optmem_default,
					   sizeof(optmem_default) - 1) : -1;

		if (fd >= 0)
			close(fd);
		if (n <= 0)
			strcpy(optmem_default, "131072");
		else
			optmem_default[n] = 0;
	}
	have_tc = run((const char *[]){ "tc", "qdisc", "show", "dev", "lo",
					NULL }, true) == 0;
	have_nft = run((const char *[]){ "nft", "add", "table", "inet", "zcs",
					 NULL }, true) == 0 &&
		   run((const char *[]){ "nft", "add", "chain", "inet", "zcs",
					 "out", "{ type filter hook output "
					 "priority 0; }", NULL }, true) == 0;
	if (!have_tc)
		fprintf(stderr, "ctx-stress: no tc: no qdisc faults\n");
	if (!have_nft)
		fprintf(stderr, "ctx-stress: no nft: no netfilter drops\n");
	/* The backends that open here (scm: a kernel with it, or scm-emu). */
	for (unsigned int b = 0; b < 4; b++) {
		struct zc_opts o = { .sz = sizeof(o), .backend = backends[b] };
		struct zc_sock *zs;
		int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

		have_be[backends[b]] = zc_open(fd, &o, &zs) == 0;
		if (have_be[backends[b]])
			zc_close(zs);
		close(fd);
	}
	fprintf(stderr, "ctx-stress: seed %" PRIu64 ", %u s; backends:%s%s%s%s\n",
		g_seed, g_seconds, have_be[ZC_BACKEND_ERRQUEUE] ? " errqueue" : "",
		have_be[ZC_BACKEND_COPY] ? " copy" : "",
		have_be[ZC_BACKEND_URING] ? " uring" : "",
		have_be[ZC_BACKEND_SCM] ? " scm" : "");
	if (!have_be[ZC_BACKEND_ERRQUEUE])
		return 77;
	if (getenv("ZC_STRESS_NEED_SCM") && !have_be[ZC_BACKEND_SCM]) {
		fprintf(stderr, "ctx-stress: no scm backend here: skip\n");
		return 77;
	}
	pool = mmap(NULL, POOL_SLOT * POOL_SLOTS, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (pool == MAP_FAILED)
		fail("mmap: %s", strerror(errno));
	fds0 = count_fds();
	if ((r = zc_ctx_new(NULL, &ctx)))
		fail("zc_ctx_new: %s", strerror(-r));
	if (pthread_create(&rt, NULL, reap_main, NULL) ||
	    pthread_create(&ft, NULL, fault_main, NULL))
		fail("pthread_create");
	sender();
	pthread_join(ft, NULL);
	drain_end(&p);
	atomic_store(&stop_reaper, 1);
	pthread_join(rt, NULL);
	for (unsigned int i = 0; i < NSLOT; i++)
		if (slot[i]) {
			any = true;
			inc_close(&p, i);
		}
	(void)any;
	if ((r = zc_ctx_free(ctx)))
		fail("zc_ctx_free: %s: %s", strerror(-r), zc_last_error());
	fds1 = count_fds();
	if (fds1 != fds0)
		fail("%u file descriptors before, %u after", fds0, fds1);
	fprintf(stderr, "ctx-stress: %u sockets; sends %" PRIu64 " ok, %" PRIu64
		" failed (%" PRIu64 " partial); completions %" PRIu64 " from the "
		"context, %" PRIu64 " after zc_ctx_del(); %" PRIu64 " closes "
		"(%" PRIu64 " fd first), %" PRIu64 " forgotten; %" PRIu64 " dels "
		"(%" PRIu64 " -EBUSY); %" PRIu64 " peer resets; %" PRIu64
		" sendmmsg; %" PRIu64 " error records; %" PRIu64 " foreign; "
		"%" PRIu64 " faults; %" PRIu64 " inflight checks\n",
		atomic_load(&ninc), st.sends_ok, st.sends_fail, st.partial,
		st.compl_ctx, st.compl_own, st.closes, st.closes_fdfirst,
		st.dropped_unreaped, st.dels, st.dels_busy, st.resets,
		st.mmsg_calls, st.err_records, st.foreign, st.faults,
		st.inflight_checks);
	fprintf(stderr, "ctx-stress: send errors:");
	for (int e = 0; e < 160; e++)
		if (st.errs[e])
			fprintf(stderr, " %s %" PRIu64, strerror(e), st.errs[e]);
	fprintf(stderr, "\n");
	free(tool_env);
	munmap(pool, POOL_SLOT * POOL_SLOTS);
	for (size_t j = 0; j < nleaks; j++)
		free(leaks[j]);
	free(leaks);
	for (uint32_t t = 0; t < atomic_load(&ninc); t++) {
		pthread_mutex_destroy(&incs[t]->lock);
		pthread_mutex_destroy(&incs[t]->life);
		free(incs[t]->q);
		free(incs[t]);
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *s = argc > 1 ? argv[1] : getenv("ZC_STRESS_SEED");
	const char *d = getenv("ZC_STRESS_SECONDS");
	pid_t pid;
	int status;
	double deadline;

	g_seed = s && *s ? strtoull(s, NULL, 0) : (uint64_t)time(NULL) ^
		 ((uint64_t)getpid() << 32);
	if (d && *d)
		g_seconds = (unsigned int)strtoul(d, NULL, 10);
	setvbuf(stderr, NULL, _IOLBF, 0);
	tool_env_init();
	pid = fork();
	if (pid < 0) {
		perror("fork");
		return 1;
	}
	if (!pid)
		exit(child());	/* exit(): LeakSanitizer's check runs */
	/* The run's bound: its seconds, the drain's 30, and some slack. */
	deadline = now_s() + g_seconds + 90;
	for (;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);

		if (w == pid)
			break;
		if (now_s() > deadline) {
			char p[32];

			fprintf(stderr, "ctx-stress: FAIL: hung; seed %" PRIu64
				" (ZC_STRESS_SEED=%" PRIu64 " to replay)\n",
				g_seed, g_seed);
			/* Where: the threads' stacks, if gdb is here. */
			snprintf(p, sizeof(p), "%d", (int)pid);
			run((const char *[]){ "gdb", "-p", p, "-batch", "-ex",
					      "thread apply all bt", NULL }, false);
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return 1;
		}
		usleep(100000);
	}
	if (WIFSIGNALED(status)) {
		fprintf(stderr, "ctx-stress: FAIL: killed by signal %d; seed %"
			PRIu64 " (ZC_STRESS_SEED=%" PRIu64 " to replay)\n",
			WTERMSIG(status), g_seed, g_seed);
		return 1;
	}
	return WEXITSTATUS(status);
}
