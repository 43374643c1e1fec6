// SPDX-License-Identifier: MIT
/*
 * zcbench: every libzcnotify backend measured against bare syscalls, side
 * by side, in one run. See zcbench(1).
 *
 * The receiver is a forked child (so that getrusage(RUSAGE_SELF) in the
 * sender counts the sender alone) that accepts TCP connections and reads
 * a UDP socket, counting the bytes it gets in shared memory; it discards
 * them in the kernel (MSG_TRUNC) so that the sender is the bottleneck,
 * or with -V copies and checks every byte. For every
 * configuration (protocol, family, size, k) each round runs every mode
 * once, one after the other, so slow drifts of a shared machine hit every
 * mode alike; ratios are taken within a round, then the median is kept.
 *
 * Modes:
 *   raw-copy  send(2), nothing else
 *   raw-zc    MSG_ZEROCOPY; every k sends poll(2) and recvmsg(MSG_ERRQUEUE)
 *             until EAGAIN (the kernel selftest msg_zerocopy's pattern)
 *   raw-scm   MSG_ZEROCOPY; every k-th send is a sendmsg(2) carrying an
 *             SCM_ZC_NOTIFICATION cmsg that collects completions (the
 *             patch series' selftest -n mode); the error queue only when
 *             the sender must wait and the cmsg brought nothing, and at
 *             the end
 *   raw-uring IORING_OP_SEND_ZC by hand (liburing), one ring for every
 *             connection: --batch SQEs per io_uring_enter() (default 1),
 *             each on the next connection; the sender waits for their
 *             results and reads every CQE there is, notifications too
 *             (k has no say); built where the library has liburing
 *   copy, errqueue, scm, uring
 *             zc_send(); every k sends zc_completions(); harvest_every = k
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <linux/errqueue.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef __GLIBC__
#include <malloc.h>		/* malloc_trim() */
#endif

#include <zcnotify.h>

#ifdef ZCBENCH_HAVE_URING
#include <liburing.h>
/* Linux 6.2's, which liburing 2.3's headers lack. */
#ifndef IORING_SEND_ZC_REPORT_USAGE
#define IORING_SEND_ZC_REPORT_USAGE	(1U << 3)
#endif
#ifndef IORING_NOTIF_USAGE_ZC_COPIED
#define IORING_NOTIF_USAGE_ZC_COPIED	(1U << 31)
#endif
#endif

#ifndef SO_ZEROCOPY
#define SO_ZEROCOPY		60
#endif
#ifndef MSG_ZEROCOPY
#define MSG_ZEROCOPY		0x4000000
#endif
#ifndef UDP_SEGMENT
#define UDP_SEGMENT		103
#endif
#ifndef SOL_UDP
#define SOL_UDP			17
#endif
#ifndef SO_EE_ORIGIN_ZEROCOPY
#define SO_EE_ORIGIN_ZEROCOPY	5
#endif
#ifndef SO_EE_CODE_ZEROCOPY_COPIED
#define SO_EE_CODE_ZEROCOPY_COPIED 1
#endif

/* SCM_ZC_NOTIFICATION (ABI.md section 2): the build's number, as the
 * library's (meson option scm_type); ZCNOTIFY_SCM_TYPE overrides both. */
#ifndef ZC_SCM_TYPE_DEFAULT
#define ZC_SCM_TYPE_DEFAULT	78
#endif

#define EXIT_SKIP		77
#define MAX_LIST		16
#define RX_EVENTS		256
#define FD_SPARE		16	/* -c: fds besides the connections */
#define REAP_BATCH		256
#define WAIT_MS			5000
#define UDP_MAX_V4		65507u
#define UDP_MAX_V6		65527u
#define DEFAULT_PORT		7878
#define PATTERN			0x5a	/* every byte sent */
#define BATCH_MAX		64	/* --batch */

enum mode {
	M_RAW_COPY, M_RAW_ZC, M_RAW_SCM, M_RAW_URING, M_COPY, M_ERRQUEUE,
	M_SCM, M_URING, M_NR
};

static const struct {
	const char *name;
	int backend;		/* -1: bare syscalls */
	bool zc;
} modes[M_NR] = {
	[M_RAW_COPY] = { "raw-copy", -1, false },
	[M_RAW_ZC] = { "raw-zc", -1, true },
	[M_RAW_SCM] = { "raw-scm", -1, true },
	[M_RAW_URING] = { "raw-uring", -1, true },
	[M_COPY] = { "copy", ZC_BACKEND_COPY, false },
	[M_ERRQUEUE] = { "errqueue", ZC_BACKEND_ERRQUEUE, true },
	[M_SCM] = { "scm", ZC_BACKEND_SCM, true },
	[M_URING] = { "uring", ZC_BACKEND_URING, true },
};

struct cfg {
	int type;		/* SOCK_STREAM, SOCK_DGRAM */
	int family;		/* AF_INET, AF_INET6 */
	size_t size;
	unsigned int k;
	unsigned int conns;	/* connections the sends are spread over */
};

struct result {
	int mode;
	struct cfg c;
	int round;
	double secs, utime, stime;
	uint64_t bytes, sends, syscalls;
	uint64_t completions, completions_zc, harvests, lib_copies;
	uint64_t short_sends;	/* returned fewer bytes than asked */
	uint64_t rx_bytes;
	bool rx_known, harvests_known;
	/* Per-round ratios to the reference mode; NAN if not measured. */
	double r_mbps, r_cpu;
	/* -c, per connection: the RSS (bytes) zc_open() added, and that
	 * with the stream run; open fds, set up and after the stream. */
	double rss_idle, rss_stream, fds_idle, fds_stream;
};

/* The receiver's numbers, in memory shared with the child. */
struct rxshared {
	_Atomic uint64_t bytes;
	_Atomic uint64_t bad;	/* --check: bytes that were not PATTERN */
	_Atomic uint64_t accepted, closed;	/* TCP connections */
	uint16_t tcp_port, udp_port;
	char err[256];
};

struct bench {
	int modes[M_NR], nmodes;
	int types[2], ntypes;
	int families[2], nfamilies;
	size_t sizes[MAX_LIST];
	int nsizes;
	unsigned int ks[MAX_LIST];
	int nks;
	unsigned int conns[MAX_LIST];
	int nconns;
	bool conns_given;	/* -c: the per-connection figures too */
	double duration;
	uint64_t count;
	int rounds;
	int ref;		/* reference mode for the ratios, -1: none */
	const char *address;	/* NULL: loopback, local receiver */
	uint16_t port;
	const char *rx_netns;
	bool listen_only, adapt, quiet, progress;
	bool ctx;		/* -x: library connections in one context */
	bool fixed;		/* --fixed: ... with the buffer registered */
	unsigned int batch;	/* --batch: sends per zc_ctx_sendmmsg(); 0: none */
	int sndbuf;		/* --sndbuf: SO_SNDBUF of each sender; 0: none */
	bool check;		/* the receiver copies and checks every byte */
	uint32_t max_inflight;
	int gso;		/* UDP_SEGMENT size for UDP sends, 0: none */
	int cpu_tx, cpu_rx;	/* pinned to these CPUs; -1: not pinned */
	const char *csv, *json;

	struct rxshared *rx;	/* NULL when the receiver is remote */
	pid_t rx_pid;
	int rx_ctl;		/* closing it stops the receiver */
	uint8_t *buf;
	size_t buflen;
	struct result *res;
	size_t nres, capres;
	int run_no, runs_total;
};

static volatile sig_atomic_t stop_now;

static void on_signal(int sig)
{
	(void)sig;
	stop_now = 1;
}

static void die(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("zcbench: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double tv_s(const struct timeval *tv)
{
	return (double)tv->tv_sec + (double)tv->tv_usec / 1e6;
}

/* ---- addresses -------------------------------------------------------- */

static socklen_t make_addr(int family, const char *host, uint16_t port,
			   struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;

		a->sin_family = AF_INET;
		a->sin_port = htons(port);
		if (!host)
			a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		else if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
			return 0;
		return sizeof(*a);
	}
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;

	a6->sin6_family = AF_INET6;
	a6->sin6_port = htons(port);
	if (!host)
		a6->sin6_addr = in6addr_loopback;
	else if (inet_pton(AF_INET6, host, &a6->sin6_addr) != 1)
		return 0;
	return sizeof(*a6);
}

static uint16_t port_of(const struct sockaddr_storage *ss)
{
	return ntohs(ss->ss_family == AF_INET ?
		     ((const struct sockaddr_in *)ss)->sin_port :
		     ((const struct sockaddr_in6 *)ss)->sin6_port);
}

/* ---- the receiver ------------------------------------------------------ */

static int rx_socket(int family, int type, const char *host, uint16_t port,
		     uint16_t *bound_port, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t len = make_addr(family, host, port, &ss);
	int fd, one = 1, sz = 8 << 20;

	if (!len) {
		snprintf(err, errlen, "'%s' is not an IPv%d address", host,
			 family == AF_INET ? 4 : 6);
		return -1;
	}
	fd = socket(family, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	/* Root may go past net.core.rmem_max; others get that much. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)))
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	if (bind(fd, (struct sockaddr *)&ss, len) ||
	    (type == SOCK_STREAM && listen(fd, SOMAXCONN)) ||
	    getsockname(fd, (struct sockaddr *)&ss, &len)) {
		snprintf(err, errlen, "%s socket on %s port %u: %s",
			 type == SOCK_STREAM ? "TCP" : "UDP",
			 host ? host : "loopback", port, strerror(errno));
		close(fd);
		return -1;
	}
	*bound_port = port_of(&ss);
	return fd;
}

/* --check: bytes of p that are not PATTERN. */
static uint64_t count_bad(const uint8_t *p, size_t n)
{
	uint64_t bad = 0;

	for (size_t i = 0; i < n; i++)
		bad += p[i] != PATTERN;
	return bad;
}

/* Where the receiver's accepted connections are, by fd: closed at the end. */
struct rx_conns {
	uint8_t *open;
	size_t cap;
};

static bool rx_conn_add(struct rx_conns *rc, int fd)
{
	if ((size_t)fd >= rc->cap) {
		size_t cap = rc->cap ? rc->cap : 64;
		uint8_t *p;

		while (cap <= (size_t)fd)
			cap *= 2;
		p = realloc(rc->open, cap);
		if (!p)
			return false;
		memset(p + rc->cap, 0, cap - rc->cap);
		rc->open = p;
		rc->cap = cap;
	}
	rc->open[fd] = 1;
	return true;
}

/*
 * Accept what the listener has. Out of fds, it stops listening (a
 * level-triggered listener would wake us for nothing) until a connection
 * closes; *paused says so. Returns 0, or -1 with sh->err set.
 */
static int rx_accept(struct rxshared *sh, int ep, int lfd, struct rx_conns *rc,
		     bool *paused)
{
	for (;;) {
		struct epoll_event ev = { .events = EPOLLIN };
		int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (c < 0 && (errno == EMFILE || errno == ENFILE ||
			      errno == ENOBUFS || errno == ENOMEM)) {
			snprintf(sh->err, sizeof(sh->err), "accept: %s (%llu "
				 "connections open)", strerror(errno),
				 (unsigned long long)
				 (atomic_load(&sh->accepted) -
				  atomic_load(&sh->closed)));
			epoll_ctl(ep, EPOLL_CTL_DEL, lfd, NULL);
			*paused = true;
			return 0;
		}
		if (c < 0)
			return 0;	/* EAGAIN, or a connection gone */
		ev.data.fd = c;
		if (!rx_conn_add(rc, c) || epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev)) {
			snprintf(sh->err, sizeof(sh->err), "accept: %s",
				 strerror(errno ? errno : ENOMEM));
			if ((size_t)c < rc->cap)
				rc->open[c] = 0;
			close(c);
			return -1;
		}
		atomic_fetch_add_explicit(&sh->accepted, 1,
					  memory_order_relaxed);
	}
}

/*
 * Serve until ctl (if >= 0) reports POLLHUP: accept TCP connections and
 * read them to EOF, read datagrams, count every byte. Returns 0, or -1
 * with sh->err set. One epoll loop, so that thousands of connections
 * (zcbench -c) cost what their events cost.
 *
 * By default the data is discarded in the kernel (MSG_TRUNC: TCP drops
 * the bytes without copying them, UDP returns a datagram's real length
 * and copies nothing into a zero-length buffer), as the msg_zerocopy
 * selftest's receiver does: so the receiver keeps up with any sender and
 * the sender is what is measured. check copies every byte out and counts
 * those that are not PATTERN in sh->bad: a receiver that costs more than
 * the sender, so the sender ends up waiting for it. Every byte sent on
 * every connection is PATTERN, so the check holds for any number of them.
 */
static int rx_serve(struct rxshared *sh, int family, const char *host,
		    uint16_t port, int ctl, int ready, bool check)
{
	struct epoll_event ev[RX_EVENTS];
	struct rx_conns rc = { 0 };
	size_t cap = 1 << 20;
	uint8_t *buf = malloc(cap);
	int lfd = -1, ufd = -1, ep = -1, ret = -1;
	bool paused = false;
	/* Discarding: TCP ignores the buffer; UDP gets no room in it. */
	const int rflags = check ? 0 : MSG_TRUNC;
	const size_t ucap = check ? cap : 0;

	if (!buf) {
		snprintf(sh->err, sizeof(sh->err), "out of memory");
		goto out;
	}
	lfd = rx_socket(family, SOCK_STREAM, host, port, &sh->tcp_port,
			sh->err, sizeof(sh->err));
	if (lfd < 0)
		goto out;
	/* Same port number for UDP when one was given, else any. */
	ufd = rx_socket(family, SOCK_DGRAM, host, port, &sh->udp_port,
			sh->err, sizeof(sh->err));
	if (ufd < 0)
		goto out;
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0) {
		snprintf(sh->err, sizeof(sh->err), "epoll_create1: %s",
			 strerror(errno));
		goto out;
	}
	for (int i = 0; i < 3; i++) {
		int fd = i == 0 ? ctl : i == 1 ? lfd : ufd;
		struct epoll_event e = { .events = EPOLLIN, .data.fd = fd };

		if (fd >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e)) {
			snprintf(sh->err, sizeof(sh->err), "epoll_ctl: %s",
				 strerror(errno));
			goto out;
		}
	}
	if (ready >= 0) {
		char c = 1;

		if (write(ready, &c, 1) != 1)
			goto out;
	}
	for (;;) {
		/*
		 * A signal that lands while we recv() only sets stop_now: look
		 * at it on every turn, and wake now and then to do so (a wait
		 * with -1 slept on after a ^C that came between two waits).
		 */
		int n = stop_now ? 0 : epoll_wait(ep, ev, RX_EVENTS, 200);

		if (stop_now)
			break;
		if (n == 0 || (n < 0 && errno == EINTR))
			continue;
		if (n < 0) {
			snprintf(sh->err, sizeof(sh->err), "epoll_wait: %s",
				 strerror(errno));
			goto out;
		}
		for (int i = 0; i < n; i++)
			if (ctl >= 0 && ev[i].data.fd == ctl)
				goto done;	/* the sender is done */
		for (int i = 0; i < n; i++) {
			int fd = ev[i].data.fd;
			ssize_t r;

			if (fd == lfd) {
				if (rx_accept(sh, ep, lfd, &rc, &paused))
					goto out;
				continue;
			}
			if (fd == ufd) {
				for (int j = 0; j < 64; j++) {
					/* MSG_TRUNC: the datagram's length. */
					r = recv(ufd, buf, ucap, MSG_TRUNC);
					if (r < 0)
						break;
					atomic_fetch_add_explicit(&sh->bytes,
						(uint64_t)r,
						memory_order_relaxed);
					if (check)
						atomic_fetch_add_explicit(
							&sh->bad, count_bad(buf,
							(size_t)r < cap ?
							(size_t)r : cap),
							memory_order_relaxed);
				}
				continue;
			}
			while ((r = recv(fd, buf, cap, rflags)) > 0) {
				atomic_fetch_add_explicit(&sh->bytes,
					(uint64_t)r, memory_order_relaxed);
				if (check)
					atomic_fetch_add_explicit(&sh->bad,
						count_bad(buf, (size_t)r),
						memory_order_relaxed);
			}
			if (r == 0 || (r < 0 && errno != EAGAIN &&
				       errno != EINTR)) {
				/* EOF or error (a reset): closing it also
				 * takes it out of the epoll set. */
				struct epoll_event e = { .events = EPOLLIN,
							 .data.fd = lfd };

				close(fd);
				rc.open[fd] = 0;
				atomic_fetch_add_explicit(&sh->closed, 1,
							  memory_order_relaxed);
				if (paused &&
				    !epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &e))
					paused = false;
			}
		}
	}
done:
	ret = 0;
out:
	for (size_t fd = 0; fd < rc.cap; fd++)
		if (rc.open[fd])
			close((int)fd);
	free(rc.open);
	if (ep >= 0)
		close(ep);
	if (ufd >= 0)
		close(ufd);
	if (lfd >= 0)
		close(lfd);
	if (ready >= 0)
		close(ready);
	free(buf);
	return ret;
}

/* Pin the calling process to one CPU (-1: leave it). */
static void pin(int cpu, const char *who)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		die("--cpus: pinning the %s to CPU %d: %s", who, cpu,
		    strerror(errno));
}

static void rx_start(struct bench *b, int family)
{
	int ctl[2], ready[2];
	char c;

	b->rx = mmap(NULL, sizeof(*b->rx), PROT_READ | PROT_WRITE,
		     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (b->rx == MAP_FAILED)
		die("mmap: %s", strerror(errno));
	memset(b->rx, 0, sizeof(*b->rx));
	if (pipe2(ctl, O_CLOEXEC) || pipe2(ready, O_CLOEXEC))
		die("pipe: %s", strerror(errno));
	b->rx_pid = fork();
	if (b->rx_pid < 0)
		die("fork: %s", strerror(errno));
	if (b->rx_pid == 0) {
		close(ctl[1]);
		close(ready[0]);
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		pin(b->cpu_rx, "receiver");
		if (b->rx_netns) {
			int ns = open(b->rx_netns, O_RDONLY | O_CLOEXEC);

			if (ns < 0 || setns(ns, CLONE_NEWNET)) {
				snprintf(b->rx->err, sizeof(b->rx->err),
					 "entering network namespace %s: %s",
					 b->rx_netns, strerror(errno));
				_exit(1);
			}
			close(ns);
		}
		_exit(rx_serve(b->rx, family, b->address,
			       b->address ? b->port : 0, ctl[0],
			       ready[1], b->check) ? 1 : 0);
	}
	close(ctl[0]);
	close(ready[1]);
	b->rx_ctl = ctl[1];
	if (read(ready[0], &c, 1) != 1) {
		waitpid(b->rx_pid, NULL, 0);
		die("receiver: %s", b->rx->err[0] ? b->rx->err : "died");
	}
	close(ready[0]);
}

static void rx_stop(struct bench *b)
{
	int st;

	if (!b->rx)
		return;
	close(b->rx_ctl);
	waitpid(b->rx_pid, &st, 0);
	if (b->rx->err[0])
		fprintf(stderr, "zcbench: receiver: %s\n", b->rx->err);
	munmap(b->rx, sizeof(*b->rx));
	b->rx = NULL;
}

static uint64_t rx_bytes(const struct bench *b)
{
	return atomic_load_explicit(&b->rx->bytes, memory_order_relaxed);
}

static uint64_t rx_bad(const struct bench *b)
{
	return atomic_load_explicit(&b->rx->bad, memory_order_relaxed);
}

/* ---- one run ------------------------------------------------------------ */

/* One of a run's connections. */
struct conn {
	int fd;
	struct zc_sock *zs;			/* library modes */
	unsigned int since;			/* sends since its last harvest */
	uint64_t issued, completions;		/* raw-zc, raw-scm */
};

struct run {
	struct bench *b;
	const struct cfg *c;
	int mode;
	struct conn *conns;			/* c->conns of them */
	struct zc_ctx *ctx;			/* -x: they joined it */
	unsigned int cur;			/* the one the next send goes to */
	uint64_t sends, bytes, syscalls, short_sends;
	uint64_t issued, completions, copied, harvests;	/* raw-zc, raw-scm */
	int scm_type;					/* raw-scm */
	double t0, deadline, next_progress;
	/* -c: resident bytes and open fds around the setup and the stream. */
	double rss_bare, rss_wrapped, rss_streamed;
	long fds_before, fds_wrapped, fds_streamed;
	char err[256];
};

/* A connected socket to the receiver, or -errno with r->err set. */
static int connect_to(struct run *r)
{
	const struct bench *b = r->b;
	struct sockaddr_storage ss;
	uint16_t port = b->rx ? (r->c->type == SOCK_STREAM ?
				 b->rx->tcp_port : b->rx->udp_port) : b->port;
	socklen_t len = make_addr(r->c->family, b->address, port, &ss);
	int fd, err;

	if (!len) {
		snprintf(r->err, sizeof(r->err), "'%s' is not an IPv%d address",
			 b->address, r->c->family == AF_INET ? 4 : 6);
		return -EINVAL;
	}
	fd = socket(r->c->family, r->c->type | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&ss, len)) {
		err = errno;
		snprintf(r->err, sizeof(r->err), "%s: %s", fd < 0 ? "socket" :
			 "connect", strerror(err));
		if (fd >= 0)
			close(fd);
		return -err;
	}
	/*
	 * --sndbuf: a fixed send buffer (the kernel doubles it), as the
	 * series' selftest sets one (1 << 21): no autotuning, which grows
	 * each connection's buffer along its own path.
	 */
	if (b->sndbuf && setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &b->sndbuf,
				    sizeof(b->sndbuf))) {
		err = errno;
		snprintf(r->err, sizeof(r->err), "SO_SNDBUF %d: %s", b->sndbuf,
			 strerror(err));
		close(fd);
		return -err;
	}
	/* UDP GSO: one send of size bytes leaves as gso-byte datagrams. */
	if (b->gso && r->c->type == SOCK_DGRAM && (size_t)b->gso < r->c->size &&
	    setsockopt(fd, SOL_UDP, UDP_SEGMENT, &b->gso, sizeof(b->gso))) {
		err = errno;
		snprintf(r->err, sizeof(r->err), "UDP_SEGMENT %d: %s", b->gso,
			 strerror(err));
		close(fd);
		return -err;
	}
	return fd;
}

static void progress(struct run *r, double t)
{
	const struct bench *b = r->b;
	double el = t - r->t0;

	if (!b->progress || t < r->next_progress)
		return;
	r->next_progress = t + 0.5;
	fprintf(stderr, "\r[%d/%d] %-8s %s%d %zu B k=%u", b->run_no,
		b->runs_total, modes[r->mode].name,
		r->c->type == SOCK_STREAM ? "tcp" : "udp",
		r->c->family == AF_INET ? 4 : 6, r->c->size, r->c->k);
	if (b->conns_given)
		fprintf(stderr, " c=%u", r->c->conns);
	fprintf(stderr, ": %5.1f s %9.1f MB/s  ", el,
		el > 0 ? (double)r->bytes / 1e6 / el : 0.0);
}

/* Go on sending? Looks at the clock every 16 sends. */
static bool more(struct run *r)
{
	const struct bench *b = r->b;
	double t;

	if (stop_now)
		return false;
	if (r->sends % 16)
		return b->count ? r->sends < b->count : true;
	t = now_s();
	progress(r, t);
	return b->count ? r->sends < b->count : t < r->deadline;
}

/* ---- raw-scm: SCM_ZC_NOTIFICATION by hand ------------------------------ */

/*
 * The v5 ABI (ABI.md section 2), without the library (its parser is
 * private): struct zc_info_elem { __u32 lo, hi; __u8 zerocopy; } is 12
 * bytes, alignment 4, 3 bytes of tail padding the kernel may leave
 * uninitialised; at most 16 per call. The kernel writes a fresh cmsg
 * header and 1..n elements at the start of msg_control, or nothing.
 */
#define SCM_ELEM		12
#define SCM_MAX			16	/* SOCK_ZC_INFO_MAX */
#define SCM_OFF_ZEROCOPY	8
#define SCM_SENTINEL		0xff	/* never a valid zerocopy byte */
#define SCM_CTL_SPACE		CMSG_SPACE(SCM_MAX * SCM_ELEM)

struct scm_range {
	uint32_t lo, hi;
	bool copied;
};

/* Our cmsg asking for n elements, sentinel preset: its msg_controllen. */
static size_t scm_prepare(unsigned char *buf, int type, unsigned int n)
{
	struct cmsghdr c = {
		.cmsg_len = CMSG_LEN(n * SCM_ELEM),
		.cmsg_level = SOL_SOCKET,
		.cmsg_type = type,
	};

	memcpy(buf, &c, sizeof(c));
	/* "Nothing written" and "all n written" would look alike. */
	buf[CMSG_LEN(0) + SCM_OFF_ZEROCOPY] = SCM_SENTINEL;
	return CMSG_SPACE(n * SCM_ELEM);
}

/*
 * What the kernel wrote into buf (len bytes) after a call that asked for
 * asked elements: the number of ranges put in out, 0 if it wrote nothing
 * (the sentinel survived), -1 if what it wrote makes no sense.
 */
static int scm_parse(const unsigned char *buf, size_t len, int type,
		     unsigned int asked, struct scm_range *out)
{
	struct cmsghdr c;
	size_t dlen, n;

	if (asked == 0 || asked > SCM_MAX || len < CMSG_LEN(SCM_ELEM))
		return -1;
	if (buf[CMSG_LEN(0) + SCM_OFF_ZEROCOPY] == SCM_SENTINEL)
		return 0;
	memcpy(&c, buf, sizeof(c));
	if (c.cmsg_level != SOL_SOCKET || c.cmsg_type != type ||
	    c.cmsg_len < CMSG_LEN(SCM_ELEM) || c.cmsg_len > len)
		return -1;
	dlen = c.cmsg_len - CMSG_LEN(0);
	n = dlen / SCM_ELEM;
	if (dlen % SCM_ELEM || n > asked)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const unsigned char *e = buf + CMSG_LEN(0) + i * SCM_ELEM;
		uint8_t zerocopy = e[SCM_OFF_ZEROCOPY];

		if (zerocopy > 1)
			return -1;
		/* Field by field: the tail padding may be garbage. */
		memcpy(&out[i].lo, e, sizeof(out[i].lo));
		memcpy(&out[i].hi, e + 4, sizeof(out[i].hi));
		out[i].copied = !zerocopy;
	}
	return (int)n;
}

/* The cmsg type: ZCNOTIFY_SCM_TYPE, as the library reads it, else ours. */
static int scm_type(void)
{
	const char *env = getenv("ZCNOTIFY_SCM_TYPE");
	char *end;
	long v;

	if (!env || !*env)
		return ZC_SCM_TYPE_DEFAULT;
	errno = 0;
	v = strtol(env, &end, 0);
	if (errno || *end || v <= 0 || v > 0xffff)
		die("ZCNOTIFY_SCM_TYPE=\"%s\": want a cmsg type number such "
		    "as 78", env);
	return (int)v;
}

/* Wait up to the deadline (CLOCK_MONOTONIC seconds) for events on fd;
 * events 0: for POLLERR. */
static bool probe_wait(int fd, short events, double deadline)
{
	for (;;) {
		struct pollfd pf = { .fd = fd, .events = events };
		double left = deadline - now_s();
		int n;

		if (left <= 0)
			return false;
		n = poll(&pf, 1, (int)(left * 1000) + 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n != 1)
			return false;
		return pf.revents & (events ? events : POLLERR);
	}
}

/*
 * Does this kernel speak SCM_ZC_NOTIFICATION v5 with cmsg type `type`?
 * The number alone proves nothing (mainline gave 78 to SO_DEVMEM_LINEAR),
 * so ask by behaviour (ABI.md section 4): on a private loopback TCP pair,
 * one zero-copy byte, its completion queued, then a zero-length sendmsg
 * carrying the cmsg must return 0, write exactly {lo 0, hi 0} and leave
 * the error queue empty. Non-blocking against one 2 s deadline. Once per
 * process. Returns true, or false with why set.
 */
static bool scm_probe(int type, char *why, size_t whylen)
{
	static int cached;		/* 0 unknown, 1 yes, 2 no */
	static char cached_why[200];
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a), elen;
	alignas(struct cmsghdr) unsigned char ctl[CMSG_SPACE(SCM_ELEM)];
	struct msghdr m = { .msg_control = ctl };
	double deadline = now_s() + 2;
	struct scm_range got;
	int l = -1, c = -1, s = -1, one = 1, err = 0, n;
	char byte = 'z';
	ssize_t ret;

	if (cached) {
		snprintf(why, whylen, "%s", cached_why);
		return cached == 1;
	}
	cached = 2;
	memset(ctl, 0, sizeof(ctl));
	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (l < 0 || c < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) ||
	    listen(l, 1) || getsockname(l, (struct sockaddr *)&a, &alen) ||
	    setsockopt(c, SOL_SOCKET, SO_ZEROCOPY, &one, sizeof(one))) {
		snprintf(cached_why, sizeof(cached_why), "probe: loopback "
			 "TCP with SO_ZEROCOPY: %s", strerror(errno));
		goto out;
	}
	elen = sizeof(err);
	if ((connect(c, (struct sockaddr *)&a, sizeof(a)) &&
	     (errno != EINPROGRESS || !probe_wait(c, POLLOUT, deadline) ||
	      getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &elen) || err)) ||
	    !probe_wait(l, POLLIN, deadline) ||
	    (s = accept4(l, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) < 0 ||
	    send(c, &byte, 1, MSG_ZEROCOPY | MSG_DONTWAIT) != 1 ||
	    !probe_wait(s, POLLIN, deadline) ||
	    recv(s, &byte, 1, MSG_DONTWAIT) != 1 ||
	    !probe_wait(c, 0, deadline)) {
		snprintf(cached_why, sizeof(cached_why), "probe: no loopback "
			 "TCP pair with a zero-copy completion within 2 s");
		goto out;
	}
	/* From here on the kernel gives the answer. */
	m.msg_controllen = scm_prepare(ctl, type, 1);
	ret = sendmsg(c, &m, MSG_DONTWAIT);
	if (ret < 0) {
		snprintf(cached_why, sizeof(cached_why), "the kernel refuses "
			 "SCM_ZC_NOTIFICATION (cmsg type %d): %s", type,
			 strerror(errno));
		goto out;
	}
	n = scm_parse(ctl, sizeof(ctl), type, 1, &got);
	if (ret != 0 || n != 1 || got.lo != 0 || got.hi != 0) {
		snprintf(cached_why, sizeof(cached_why), "cmsg type %d is not "
			 "SCM_ZC_NOTIFICATION v5 here (the kernel %s)", type,
			 n == 0 ? "wrote nothing" : "wrote something else");
		goto out;
	}
	/* The record was taken, not copied: the queue must be empty. */
	m = (struct msghdr){ .msg_control = ctl,
			     .msg_controllen = sizeof(ctl) };
	if (recvmsg(c, &m, MSG_ERRQUEUE | MSG_DONTWAIT) >= 0 ||
	    errno != EAGAIN) {
		snprintf(cached_why, sizeof(cached_why), "cmsg type %d: the "
			 "completion stayed on the error queue", type);
		goto out;
	}
	cached = 1;
out:
	if (s >= 0)
		close(s);
	if (c >= 0)
		close(c);
	if (l >= 0)
		close(l);
	snprintf(why, whylen, "%s", cached_why);
	return cached == 1;
}

/* raw-zc: poll(), then recvmsg(MSG_ERRQUEUE) until EAGAIN, on one socket. */
static int raw_harvest(struct run *r, struct conn *cn, int timeout_ms)
{
	struct pollfd pf = { .fd = cn->fd };
	char ctl[CMSG_SPACE(sizeof(struct sock_extended_err)) + 64];
	struct msghdr m = { .msg_control = ctl };
	int n;

	r->syscalls++;
	n = poll(&pf, 1, timeout_ms);
	if (n < 0 && errno != EINTR) {
		snprintf(r->err, sizeof(r->err), "poll: %s", strerror(errno));
		return -1;
	}
	if (n <= 0 || !(pf.revents & POLLERR))
		return 0;
	for (;;) {
		struct cmsghdr *cm;

		m.msg_controllen = sizeof(ctl);
		r->syscalls++;
		if (recvmsg(cn->fd, &m, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return 0;
			snprintf(r->err, sizeof(r->err), "recvmsg(MSG_ERRQUEUE): "
				 "%s", strerror(errno));
			return -1;
		}
		for (cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm)) {
			struct sock_extended_err ee;
			uint32_t cnt;

			if (!((cm->cmsg_level == SOL_IP &&
			       cm->cmsg_type == IP_RECVERR) ||
			      (cm->cmsg_level == SOL_IPV6 &&
			       cm->cmsg_type == IPV6_RECVERR)))
				continue;
			memcpy(&ee, CMSG_DATA(cm), sizeof(ee));
			if (ee.ee_origin != SO_EE_ORIGIN_ZEROCOPY) {
				snprintf(r->err, sizeof(r->err), "error queue: "
					 "%s", strerror((int)ee.ee_errno));
				return -1;
			}
			cnt = ee.ee_data - ee.ee_info + 1;	/* may wrap */
			r->completions += cnt;
			cn->completions += cnt;
			r->harvests++;
			if (ee.ee_code & SO_EE_CODE_ZEROCOPY_COPIED)
				r->copied += cnt;
		}
	}
}

/*
 * raw-scm: the ranges the kernel wrote into ctl, asked for SCM_MAX.
 * Returns how many, or -1 (r->err set) if it wrote nonsense.
 */
static int scm_harvest(struct run *r, struct conn *cn,
		       const unsigned char *ctl)
{
	struct scm_range got[SCM_MAX];
	int n = scm_parse(ctl, SCM_CTL_SPACE, r->scm_type, SCM_MAX, got);

	if (n < 0) {
		snprintf(r->err, sizeof(r->err), "sendmsg: the kernel's "
			 "SCM_ZC_NOTIFICATION answer makes no sense");
		return -1;
	}
	for (int i = 0; i < n; i++) {
		uint32_t cnt = got[i].hi - got[i].lo + 1;	/* may wrap */

		r->completions += cnt;
		cn->completions += cnt;
		if (got[i].copied)
			r->copied += cnt;
	}
	r->harvests += (unsigned int)n;
	return n;
}

/*
 * The last byte is out: half-close each TCP connection whose sends are
 * not all complete. A TCP zero-copy send completes when its ACK frees the
 * retransmit queue's hold on the pages, and the receiver may delay the
 * ACK of a run's last segment by 40 ms (its delayed-ACK timer) or not,
 * whichever way that segment falls: rounds of one mode then differed by
 * that much. The FIN makes the receiver close, and its FIN acknowledges
 * everything at once, as when a server ends a response. Not counted as a
 * syscall of the mode: the harness's, not the send path's.
 */
static void conns_sent_all(struct run *r)
{
	const bool raw = modes[r->mode].backend < 0;

	if (r->c->type != SOCK_STREAM)
		return;
	for (unsigned int i = 0; i < r->c->conns; i++) {
		const struct conn *cn = &r->conns[i];

		if (raw ? cn->completions < cn->issued : zc_inflight(cn->zs))
			shutdown(cn->fd, SHUT_WR);
	}
}

/*
 * raw-copy, raw-zc and raw-scm. raw-scm puts its cmsg on every k-th send
 * (the series' selftest -n mode) and parses the answer whatever sendmsg
 * returned: in v5 the records are taken before the send can fail. It
 * reads the error queue only when it must: when the kernel is out of
 * option memory (ENOBUFS with sends in flight, the window raw-zc waits
 * on too) and the failed call's cmsg brought nothing, and at the end.
 *
 * With several connections the sends go round-robin, one each, and every
 * rule above holds per socket: k counts that socket's sends, a harvest
 * reads that socket's error queue, ENOBUFS waits for its completions.
 */
static int raw_loop(struct run *r)
{
	const struct cfg *c = r->c;
	const bool zc = modes[r->mode].zc, scm = r->mode == M_RAW_SCM;
	alignas(struct cmsghdr) unsigned char ctl[SCM_CTL_SPACE];
	struct iovec iov = { .iov_base = r->b->buf, .iov_len = c->size };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1,
			    .msg_control = ctl };

	/* The kernel reads every byte it is handed: make them defined. */
	memset(ctl, 0, sizeof(ctl));
	while (more(r)) {
		struct conn *cn = &r->conns[r->cur];
		/* raw-scm: this is the k-th send since the last harvest. */
		const bool ask = scm && cn->since + 1 >= c->k;
		int got = 0, err = 0;
		ssize_t n;

		r->syscalls++;
		if (ask) {
			m.msg_controllen = scm_prepare(ctl, r->scm_type,
						       SCM_MAX);
			n = sendmsg(cn->fd, &m, MSG_ZEROCOPY);
			err = errno;
			got = scm_harvest(r, cn, ctl);
			if (got < 0)
				return -1;
		} else {
			n = send(cn->fd, r->b->buf, c->size,
				 zc ? MSG_ZEROCOPY : 0);
			err = errno;
		}
		if (n < 0 && err == EINTR)
			continue;
		if (n < 0 && err == ENOBUFS && zc &&
		    (got || cn->issued != cn->completions)) {
			/*
			 * Out of option memory: completions must be read. If
			 * the cmsg took some (UDP reads it before building
			 * the skb; TCP fails before it), try again at once;
			 * else wait for them on the error queue.
			 */
			uint64_t before = cn->completions;

			if (got)
				continue;
			if (raw_harvest(r, cn, WAIT_MS))
				return -1;
			if (cn->completions == before) {
				snprintf(r->err, sizeof(r->err), "ENOBUFS, and "
					 "no completion for %d ms with %llu "
					 "sends in flight", WAIT_MS,
					 (unsigned long long)
					 (cn->issued - cn->completions));
				return -1;
			}
			continue;
		}
		if (n < 0 && err == ENOBUFS && zc) {
			r->syscalls++;
			n = send(cn->fd, r->b->buf, c->size, 0);
			err = errno;
		} else if (zc && n >= 0) {
			r->issued++;
			cn->issued++;
		}
		if (n < 0) {
			snprintf(r->err, sizeof(r->err), "%s: %s", ask ?
				 "sendmsg with SCM_ZC_NOTIFICATION" : "send",
				 strerror(err));
			return -1;
		}
		r->sends++;
		r->bytes += (uint64_t)n;
		r->short_sends += (size_t)n < c->size;
		if (scm) {
			cn->since = ask ? 0 : cn->since + 1;
		} else if (zc && ++cn->since >= c->k) {
			cn->since = 0;
			if (raw_harvest(r, cn, 0))
				return -1;
		}
		if (++r->cur == c->conns)
			r->cur = 0;
	}
	conns_sent_all(r);
	/* What is still out: from the error queue (the selftest does so). */
	for (unsigned int i = 0; zc && i < c->conns; i++) {
		struct conn *cn = &r->conns[i];

		for (int idle = 0; cn->completions < cn->issued; ) {
			uint64_t before = cn->completions;

			if (raw_harvest(r, cn, 1000))
				return -1;
			if (cn->completions == before &&
			    ++idle == WAIT_MS / 1000) {
				snprintf(r->err, sizeof(r->err), "%llu "
					 "completions missing",
					 (unsigned long long)
					 (cn->issued - cn->completions));
				return -1;
			}
		}
	}
	/* raw-scm's parser is zcbench's own: check its sums. */
	if (scm && r->completions != r->issued) {
		snprintf(r->err, sizeof(r->err), "%llu completions for %llu "
			 "zero-copy sends", (unsigned long long)r->completions,
			 (unsigned long long)r->issued);
		return -1;
	}
	return 0;
}

#ifdef ZCBENCH_HAVE_URING
/*
 * raw-uring: IORING_OP_SEND_ZC by hand, on one ring for every connection
 * (liburing's examples/send-zerocopy.c, with a notification CQE a send):
 * a batch of SQEs, each on the next connection (at most one a connection,
 * as the library's batches), one io_uring_enter() that submits them and
 * waits, then every CQE there is until each of the batch's results has
 * come. The CQ never fills: a batch goes only when there is room for its
 * results beside every notification still to come.
 */
#define RAWU_SQ		BATCH_MAX
#define RAWU_CQ		4096u

struct rawu {
	struct io_uring ring;
	unsigned int zc_flags;	/* IORING_SEND_ZC_REPORT_USAGE, or 0 */
	unsigned int waiting;	/* results of the batch still to come */
	unsigned int out;	/* notifications still to come */
	unsigned int stalled;	/* the batch's sends refused for now */
};

/* Every CQE in the CQ. Returns 0, or -1 with r->err set. */
static int rawu_cqes(struct run *r, struct rawu *u)
{
	struct io_uring_cqe *cqe;
	unsigned int head, n = 0;
	int err = 0;

	io_uring_for_each_cqe(&u->ring, head, cqe) {
		struct conn *cn = &r->conns[cqe->user_data];

		n++;
		if (cqe->flags & IORING_CQE_F_NOTIF) {
			u->out--;
			r->completions++;
			cn->completions++;
			r->harvests++;
			if ((u->zc_flags & IORING_SEND_ZC_REPORT_USAGE) &&
			    ((uint32_t)cqe->res & IORING_NOTIF_USAGE_ZC_COPIED))
				r->copied++;
			continue;
		}
		u->waiting--;
		/* F_MORE: a notification follows, whatever the result. */
		if (cqe->flags & IORING_CQE_F_MORE) {
			u->out++;
			r->issued++;
			cn->issued++;
		}
		if (cqe->res > 0) {
			r->sends++;
			r->bytes += (uint64_t)cqe->res;
			r->short_sends += (size_t)cqe->res < r->c->size;
		} else if (cqe->res == -EINVAL && u->zc_flags && !r->sends) {
			u->zc_flags = 0;	/* before 6.2: no usage report */
			u->stalled++;
		} else if (cqe->res == -EAGAIN || cqe->res == -ENOBUFS ||
			   cqe->res == -EINTR || cqe->res == -ENOMEM) {
			u->stalled++;		/* sent again in a later batch */
		} else if (!err) {
			err = cqe->res ? -cqe->res : EPIPE;
		}
	}
	io_uring_cq_advance(&u->ring, n);
	if (err) {
		snprintf(r->err, sizeof(r->err), "IORING_OP_SEND_ZC: %s",
			 strerror(err));
		return -1;
	}
	return 0;
}

/* Wait for one CQE (timeout_ms; -1: none), then read them all. */
static int rawu_wait(struct run *r, struct rawu *u, int timeout_ms)
{
	struct __kernel_timespec ts = {
		.tv_sec = timeout_ms / 1000,
		.tv_nsec = (long long)(timeout_ms % 1000) * 1000000,
	};
	struct io_uring_cqe *cqe;
	int ret;

	if (!io_uring_cq_ready(&u->ring)) {
		r->syscalls++;
		ret = timeout_ms < 0 ? io_uring_wait_cqe(&u->ring, &cqe) :
		      io_uring_wait_cqe_timeout(&u->ring, &cqe, &ts);
		if (ret < 0 && ret != -EINTR && ret != -ETIME) {
			snprintf(r->err, sizeof(r->err), "io_uring_wait_cqe: "
				 "%s", strerror(-ret));
			return -1;
		}
	}
	return rawu_cqes(r, u);
}

static int rawu_run(struct run *r, struct rawu *u, bool fixed)
{
	const struct cfg *c = r->c;
	/* As the library's batches: never two sends of one connection. */
	const unsigned int batch = !r->b->batch ? 1 :
				   r->b->batch < c->conns ? r->b->batch :
				   c->conns;
	double progress = now_s();

	while (more(r)) {
		uint64_t left = r->b->count ? r->b->count - r->sends : batch;
		unsigned int n = 0;
		int ret;

		while (u->out + 2 * batch > RAWU_CQ)
			if (rawu_wait(r, u, -1))
				return -1;
		for (; n < batch && n < left; n++) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);

			if (fixed)
				io_uring_prep_send_zc_fixed(sqe,
					r->conns[r->cur].fd, r->b->buf,
					c->size, 0, u->zc_flags, 0);
			else
				io_uring_prep_send_zc(sqe, r->conns[r->cur].fd,
						      r->b->buf, c->size, 0,
						      u->zc_flags);
			sqe->user_data = r->cur;
			if (++r->cur == c->conns)
				r->cur = 0;
		}
		u->waiting = n;
		u->stalled = 0;
		/* EINTR: only from the wait, once the SQEs are taken. */
		do {
			r->syscalls++;
			ret = io_uring_submit_and_wait(&u->ring, n);
		} while (ret == -EINTR && io_uring_sq_ready(&u->ring));
		if ((ret < 0 && ret != -EINTR) || io_uring_sq_ready(&u->ring)) {
			snprintf(r->err, sizeof(r->err), "io_uring_submit: %s",
				 ret < 0 ? strerror(-ret) :
				 "the kernel took some of the SQEs only");
			return -1;
		}
		if (rawu_cqes(r, u))
			return -1;
		while (u->waiting)
			if (rawu_wait(r, u, -1))
				return -1;
		if (u->stalled < n) {
			progress = now_s();
			continue;
		}
		/* Nothing went: wait for a notification, or a moment. */
		if (u->out ? rawu_wait(r, u, 10) : (usleep(1000), 0))
			return -1;
		if (now_s() - progress > WAIT_MS / 1000.0) {
			snprintf(r->err, sizeof(r->err), "every send refused "
				 "for %d ms", WAIT_MS);
			return -1;
		}
	}
	conns_sent_all(r);
	/* What is still out. */
	for (unsigned int waited = 0; u->out; ) {
		unsigned int before = u->out;

		if (rawu_wait(r, u, 1000))
			return -1;
		if (u->out == before && ++waited == WAIT_MS / 1000) {
			snprintf(r->err, sizeof(r->err), "%u completions "
				 "missing", u->out);
			return -1;
		}
	}
	return 0;
}

/* raw-uring's run. Returns 0, -1 (r->err set), -EOPNOTSUPP. */
static int raw_uring_loop(struct run *r)
{
	struct io_uring_params p = {
		.flags = IORING_SETUP_CQSIZE, .cq_entries = RAWU_CQ,
	};
	struct rawu u = { .zc_flags = IORING_SEND_ZC_REPORT_USAGE };
	struct io_uring_probe *pr;
	bool fixed = r->b->fixed;
	int ret = io_uring_queue_init_params(RAWU_SQ, &u.ring, &p);

	if (ret) {
		snprintf(r->err, sizeof(r->err), "io_uring_queue_init: %s",
			 strerror(-ret));
		return ret == -ENOSYS || ret == -EPERM ? -EOPNOTSUPP : -1;
	}
	pr = io_uring_get_probe_ring(&u.ring);
	if (!pr || !io_uring_opcode_supported(pr, IORING_OP_SEND_ZC)) {
		snprintf(r->err, sizeof(r->err), "this kernel has no "
			 "IORING_OP_SEND_ZC (Linux 6.0 and later)");
		ret = -EOPNOTSUPP;
	}
	if (pr)
		io_uring_free_probe(pr);
	/* --fixed: every send is from the one buffer, registered. */
	if (!ret && fixed &&
	    (ret = io_uring_register_buffers(&u.ring, &(struct iovec){
						r->b->buf, r->b->buflen }, 1))) {
		snprintf(r->err, sizeof(r->err), "io_uring_register_buffers: "
			 "%s", strerror(-ret));
		ret = -1;
	}
	if (!ret)
		ret = rawu_run(r, &u, fixed);
	io_uring_queue_exit(&u.ring);
	return ret;
}
#else
static int raw_uring_loop(struct run *r)
{
	snprintf(r->err, sizeof(r->err), "zcbench was built without liburing");
	return -EOPNOTSUPP;
}
#endif

/* -x: reap through the context, whatever the connection. */
static int ctx_reap(struct run *r, int timeout_ms)
{
	struct zc_ctx_completion c[REAP_BATCH];

	return timeout_ms ? zc_ctx_wait(r->ctx, c, REAP_BATCH, timeout_ms) :
	       zc_ctx_completions(r->ctx, c, REAP_BATCH);
}

static int lib_reap(struct run *r, struct conn *cn, int timeout_ms)
{
	struct zc_completion c[REAP_BATCH];
	int n = r->ctx ? ctx_reap(r, timeout_ms) :
		timeout_ms ? zc_wait(cn->zs, c, REAP_BATCH, timeout_ms) :
		zc_completions(cn->zs, c, REAP_BATCH);

	if (n < 0) {
		snprintf(r->err, sizeof(r->err), "reaping: %s", zc_last_error());
		return -1;
	}
	if (n == 0 && timeout_ms) {
		snprintf(r->err, sizeof(r->err), "no completion for %d ms with "
			 "%u sends in flight", timeout_ms, zc_inflight(cn->zs));
		return -1;
	}
	return 0;
}

/* The library modes: the last byte is out, wait for what is in flight. */
static int lib_drain(struct run *r)
{
	conns_sent_all(r);
	for (unsigned int i = 0; i < r->c->conns; i++)
		while (zc_inflight(r->conns[i].zs))
			if (lib_reap(r, &r->conns[i], WAIT_MS))
				return -1;
	return 0;
}

/* The library modes; several connections as raw_loop() has them. */
static int lib_loop(struct run *r)
{
	const struct cfg *c = r->c;

	while (more(r)) {
		struct conn *cn = &r->conns[r->cur];
		ssize_t n = zc_send(cn->zs, r->b->buf, c->size, 0, r->sends);

		if (n == -EINTR)
			continue;
		if (n == -ENOBUFS && zc_inflight(cn->zs)) {
			/* max_inflight sends await reaping */
			if (lib_reap(r, cn, WAIT_MS))
				return -1;
			continue;
		}
		if (n < 0) {
			snprintf(r->err, sizeof(r->err), "zc_send: %s",
				 zc_last_error());
			return -1;
		}
		r->sends++;
		r->bytes += (uint64_t)n;
		r->short_sends += (size_t)n < c->size;
		if (++cn->since >= c->k) {
			cn->since = 0;
			if (lib_reap(r, cn, 0))
				return -1;
		}
		if (++r->cur == c->conns)
			r->cur = 0;
	}
	return lib_drain(r);
}

/*
 * --batch: the library modes with -x, b->batch sends per
 * zc_ctx_sendmmsg(), each on the next connection. A send that would block
 * waits for room (POLLOUT) and is made again.
 */
static int batch_loop(struct run *r)
{
	const struct cfg *c = r->c;
	struct zc_ctx_send v[BATCH_MAX];
	struct iovec iov = { .iov_base = r->b->buf, .iov_len = c->size };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	unsigned int since = 0, retry = 0;

	while (more(r)) {
		unsigned int n = 0, cur = r->cur;

		/* A send that would have blocked goes first, on its socket. */
		if (retry)
			n = 1;
		else
			v[0].zs = NULL;
		for (; n < r->b->batch; n++) {
			uint64_t left = r->b->count ? r->b->count - r->sends : 1;

			if (n >= left)
				break;
			v[n] = (struct zc_ctx_send){
				.zs = r->conns[cur].zs, .msg = &msg,
				.cookie = r->sends + n,
			};
			if (++cur == c->conns)
				cur = 0;
		}
		if (!n)
			break;
		r->cur = cur;
		retry = 0;
		if (zc_ctx_sendmmsg(r->ctx, v, n) < 0) {
			snprintf(r->err, sizeof(r->err), "zc_ctx_sendmmsg: %s",
				 zc_last_error());
			return -1;
		}
		for (unsigned int i = 0; i < n; i++) {
			ssize_t k = v[i].result;

			if (k == -EAGAIN || k == -ENOBUFS) {
				/*
				 * Would block, or max_inflight await
				 * reaping: reap, wait for room, send it again
				 * (first in the next call); the rest go on.
				 */
				struct pollfd p = { .events = POLLOUT };
				struct conn *cn = NULL;

				for (unsigned int j = 0; j < c->conns; j++)
					if (r->conns[j].zs == v[i].zs)
						cn = &r->conns[j];
				if (lib_reap(r, cn, 0))
					return -1;
				p.fd = cn->fd;
				if (k == -EAGAIN)
					poll(&p, 1, 10);
				if (!retry) {
					v[0] = v[i];
					retry = 1;
				}
				continue;
			}
			if (k < 0) {
				snprintf(r->err, sizeof(r->err),
					 "zc_ctx_sendmmsg: %s",
					 strerror((int)-k));
				return -1;
			}
			r->sends++;
			r->bytes += (uint64_t)k;
			r->short_sends += (size_t)k < c->size;
		}
		since += n;
		if (since >= c->k) {
			since = 0;
			if (lib_reap(r, &r->conns[0], 0))
				return -1;
		}
	}
	return lib_drain(r);
}

static int open_lib(struct run *r, struct conn *cn)
{
	const struct bench *b = r->b;
	struct zc_opts o = {
		.sz = sizeof(o), .backend = modes[r->mode].backend,
		.max_inflight = b->max_inflight,
		.harvest_every = r->c->k,
		.ctx = r->ctx,
	};

	if (!b->adapt) {
		/* Measure the backend: every send zero-copy. */
		o.copy_below = 1;
		o.flags = ZC_OPT_NO_ADAPT;
	}
	return zc_open(cn->fd, &o, &cn->zs);
}

/* The library's counters, summed over the run's connections. */
static void stats_sum(const struct run *r, struct zc_stats *sum)
{
	*sum = (struct zc_stats){ .sz = sizeof(*sum) };
	for (unsigned int i = 0; i < r->c->conns; i++) {
		struct zc_stats s = { .sz = sizeof(s) };

		zc_get_stats(r->conns[i].zs, &s);
		sum->syscalls += s.syscalls;
		sum->completions += s.completions;
		sum->completions_zc += s.completions_zc;
		sum->sends_copy += s.sends_copy;
		sum->harvest_cmsg += s.harvest_cmsg;
		sum->harvest_recvmsg += s.harvest_recvmsg;
	}
	/* With -x, the context's own too: its epoll_wait(2) each reap... */
	if (r->ctx) {
		struct zc_ctx_stats cs = { .sz = sizeof(cs) };

		if (!zc_ctx_get_stats(r->ctx, &cs))
			sum->syscalls += cs.syscalls;
	}
}

/* ---- many connections (-c) -------------------------------------------- */

/*
 * The resident set in bytes: Rss of /proc/self/smaps_rollup, exact (the
 * kernel walks the page tables; statm's counters may lag by a batch per
 * CPU), else statm; NAN if neither reads. Into a static buffer: memory
 * taken here would move the figure between two readings.
 */
static double rss_bytes(void)
{
	static char buf[4096];
	unsigned long long kb, pages;
	ssize_t n = -1;
	char *p;
	int fd = open("/proc/self/smaps_rollup", O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
	}
	if (n > 0) {
		buf[n] = 0;
		p = strstr(buf, "\nRss:");
		if (p && sscanf(p, "\nRss: %llu kB", &kb) == 1)
			return (double)kb * 1024;
	}
	fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NAN;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return NAN;
	buf[n] = 0;
	if (sscanf(buf, "%*u %llu", &pages) != 1)
		return NAN;
	return (double)pages * (double)sysconf(_SC_PAGESIZE);
}

/* Open fds: the entries of /proc/self/fd, less the one reading it; -1 if
 * it does not read. getdents64 into a static buffer, as rss_bytes(). */
static long fd_count(void)
{
	static char buf[32768];
	long count = -1;
	int fd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	long n;

	if (fd < 0)
		return -1;
	while ((n = syscall(SYS_getdents64, fd, buf, sizeof(buf))) > 0) {
		for (long off = 0; off < n; ) {
			/* struct linux_dirent64: d_reclen at 16, d_name at 19 */
			unsigned short reclen;
			const char *name = buf + off + 19;

			memcpy(&reclen, buf + off + 16, sizeof(reclen));
			if (strcmp(name, ".") && strcmp(name, ".."))
				count++;
			off += reclen;
		}
	}
	close(fd);
	return n < 0 ? -1 : count;	/* -1: this fd was counted too */
}

/* Give the allocator's free pages back, so that memory a library takes
 * shows in the RSS even where an earlier run's freed memory could serve. */
static void trim(void)
{
#ifdef __GLIBC__
	malloc_trim(0);
#endif
}

static uint64_t rx_accepted(const struct bench *b)
{
	return atomic_load_explicit(&b->rx->accepted, memory_order_relaxed);
}

/* The local receiver's TCP connections still open. */
static uint64_t rx_open(const struct bench *b)
{
	/* closed first: both only grow, so accepted >= closed here. */
	uint64_t closed = atomic_load_explicit(&b->rx->closed,
					       memory_order_relaxed);

	return rx_accepted(b) - closed;
}

/*
 * Wait until the local receiver has accepted want connections since
 * base, as long as it keeps accepting (WAIT_MS without one: false, with
 * r->err set).
 */
static bool rx_wait_accepted(struct run *r, uint64_t base, uint64_t want)
{
	const struct bench *b = r->b;
	uint64_t last = rx_accepted(b);
	double still = now_s();

	while (rx_accepted(b) - base < want) {
		uint64_t v = rx_accepted(b);
		double t = now_s();

		if (stop_now) {
			snprintf(r->err, sizeof(r->err), "interrupted");
			return false;
		}
		if (v != last) {
			last = v;
			still = t;
		} else if (t - still > WAIT_MS / 1000.0) {
			snprintf(r->err, sizeof(r->err), "the receiver accepted "
				 "%llu of %llu connections%s%.150s",
				 (unsigned long long)(v - base),
				 (unsigned long long)want,
				 b->rx->err[0] ? ": " : "", b->rx->err);
			return false;
		}
		usleep(200);
	}
	return true;
}

/* Errors that say this machine's limits were reached, not that the bench
 * or the library is wrong. */
static bool is_limit(int err)
{
	return err == EMFILE || err == ENFILE || err == ENOMEM ||
	       err == ENOBUFS || err == EADDRNOTAVAIL;
}

#define RUN_LIMIT	1	/* a limit stopped the run's connections */
#define RX_AHEAD	512	/* connects the receiver may have to accept */

/*
 * Open the run's connections, outside the timed part: every socket
 * connected (TCP to a local receiver: accepted too, so that the receiver
 * does no setup work while the sender is timed), then set up for the
 * mode: SO_ZEROCOPY for the raw zero-copy modes, zc_open() for the
 * library's. With -c, the open fds are counted before the sockets and
 * after zc_open(), and the RSS is read after the sockets and after
 * zc_open(): what the library adds per connection, apart from the
 * sockets.
 *
 * Returns 0; -EOPNOTSUPP if the mode cannot run here; RUN_LIMIT if a
 * limit of this machine (open files, ports, memory) stopped it, r->err
 * saying at which connection and why; -1 on failure (r->err).
 */
static int conns_open(struct run *r)
{
	struct bench *b = r->b;
	const struct cfg *c = r->c;
	const bool tcp_rx = b->rx && c->type == SOCK_STREAM;
	uint64_t base = 0;
	char why[256];
	int one = 1;

	r->conns = calloc(c->conns, sizeof(*r->conns));
	if (!r->conns) {
		snprintf(r->err, sizeof(r->err), "out of memory");
		return -1;
	}
	for (unsigned int i = 0; i < c->conns; i++)
		r->conns[i].fd = -1;
	if (tcp_rx) {
		/* The last run's connections first: their fds count too. */
		for (double until = now_s() + WAIT_MS / 1000.0;
		     rx_open(b) && now_s() < until; )
			usleep(1000);
		base = rx_accepted(b);
	}
	if (b->conns_given)
		r->fds_before = fd_count();
	for (unsigned int i = 0; i < c->conns; i++) {
		int fd = connect_to(r);

		if (fd < 0) {
			if (!is_limit(-fd))
				return -1;
			snprintf(why, sizeof(why), "%s", r->err);
			snprintf(r->err, sizeof(r->err), "connection %u of %u "
				 "failed (%u opened): %.150s", i + 1, c->conns,
				 i, why);
			return RUN_LIMIT;
		}
		r->conns[i].fd = fd;
		/* A backlog that overflows drops SYNs: a second's retry. */
		if (tcp_rx && i + 1 - (rx_accepted(b) - base) >= RX_AHEAD &&
		    !rx_wait_accepted(r, base, i + 1 - RX_AHEAD / 2))
			return -1;
	}
	if (tcp_rx && !rx_wait_accepted(r, base, c->conns))
		return -1;
	for (unsigned int i = 0; modes[r->mode].backend < 0 &&
				  modes[r->mode].zc && i < c->conns; i++) {
		if (setsockopt(r->conns[i].fd, SOL_SOCKET, SO_ZEROCOPY, &one,
			       sizeof(one))) {
			snprintf(r->err, sizeof(r->err), "SO_ZEROCOPY: %s",
				 strerror(errno));
			return -1;
		}
	}
	if (b->ctx && modes[r->mode].backend >= 0 &&
	    zc_ctx_new(NULL, &r->ctx)) {
		snprintf(r->err, sizeof(r->err), "%s", zc_last_error());
		return -1;
	}
	/* --fixed: every send is from the one buffer, registered. */
	if (r->ctx && b->fixed && modes[r->mode].backend == ZC_BACKEND_URING &&
	    zc_ctx_register_buffers(r->ctx, &(struct iovec){ b->buf,
						b->buflen }, 1)) {
		snprintf(r->err, sizeof(r->err), "%s", zc_last_error());
		return -1;
	}
	if (b->conns_given && modes[r->mode].backend >= 0) {
		/*
		 * With -x the first one makes the context's ring: memory and
		 * an fd of the context, not of each connection.
		 *
		 * One zc_open() and zc_close() first: the library's code
		 * paged in and its once-a-process probes are not memory
		 * per connection. (Errors: the loop below reports them.)
		 */
		struct conn w = { .fd = r->conns[0].fd };

		if (!open_lib(r, &w))
			zc_close(w.zs);
	}
	if (b->conns_given) {
		trim();
		r->rss_bare = rss_bytes();
	}
	for (unsigned int i = 0; modes[r->mode].backend >= 0 &&
				 i < c->conns; i++) {
		int ret = open_lib(r, &r->conns[i]);

		if (!ret)
			continue;
		if (ret == -EOPNOTSUPP || !is_limit(-ret)) {
			snprintf(r->err, sizeof(r->err), "%s", zc_last_error());
			return ret == -EOPNOTSUPP ? ret : -1;
		}
		snprintf(r->err, sizeof(r->err), "zc_open failed at connection "
			 "%u of %u (%u opened): %s", i + 1, c->conns, i,
			 zc_last_error());
		return RUN_LIMIT;
	}
	if (b->conns_given) {
		r->rss_wrapped = rss_bytes();
		r->fds_wrapped = fd_count();
	}
	return 0;
}

/*
 * Close the run's connections. reset: with an RST (SO_LINGER 0), when the
 * receiver has had every byte: thousands of connections a run would
 * otherwise leave as many ports in TIME_WAIT, and the next run's connects
 * would search the port range past them.
 */
static void conns_close(struct run *r, bool reset)
{
	const struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	for (unsigned int i = 0; r->conns && i < r->c->conns; i++) {
		struct conn *cn = &r->conns[i];

		if (cn->zs)
			zc_close(cn->zs);
		if (cn->fd < 0)
			continue;
		if (reset)
			setsockopt(cn->fd, SOL_SOCKET, SO_LINGER, &lg,
				   sizeof(lg));
		close(cn->fd);
	}
	free(r->conns);
	r->conns = NULL;
	zc_ctx_free(r->ctx);
	r->ctx = NULL;
}

/*
 * What the local receiver got of a run: TCP all of it (wait for it), UDP
 * what it kept up with (wait until it stops growing). Returns 0, or -1
 * (r->err set) if TCP bytes are missing or a byte was not the one sent.
 */
static int rx_settle(struct run *r, struct result *res, uint64_t rx0,
		     uint64_t bad0)
{
	const struct bench *b = r->b;
	uint64_t last = rx_bytes(b), want = rx0 + res->bytes;
	double t = now_s(), until = t + 5, still = t;

	for (; t < until; t = now_s()) {
		uint64_t v = rx_bytes(b);

		if (r->c->type == SOCK_STREAM && v >= want)
			break;
		if (r->c->type == SOCK_DGRAM) {
			if (v != last) {
				last = v;
				still = t;
			} else if (t - still > 0.05) {
				break;
			}
		}
		usleep(1000);
	}
	res->rx_bytes = rx_bytes(b) - rx0;
	res->rx_known = true;
	if (r->c->type == SOCK_STREAM && res->rx_bytes != res->bytes) {
		snprintf(r->err, sizeof(r->err), "the receiver got %llu of "
			 "%llu bytes", (unsigned long long)res->rx_bytes,
			 (unsigned long long)res->bytes);
		return -1;
	}
	if (rx_bad(b) != bad0) {
		snprintf(r->err, sizeof(r->err), "the receiver got %llu bytes "
			 "that were not sent", (unsigned long long)
			 (rx_bad(b) - bad0));
		return -1;
	}
	return 0;
}

/*
 * Run one mode on one configuration. Returns 0, -EOPNOTSUPP if the mode
 * cannot run here, RUN_LIMIT if a limit stopped its connections, or -1 on
 * failure; why says why.
 */
static int run_one(struct bench *b, const struct cfg *c, int mode, int round,
		   struct result *res, char *why, size_t whylen)
{
	struct run r = { .b = b, .c = c, .mode = mode };
	const bool lib = modes[mode].backend >= 0;
	struct zc_stats s0, s1;
	struct rusage u0, u1;
	uint64_t rx0 = b->rx ? rx_bytes(b) : 0, bad0 = b->rx ? rx_bad(b) : 0;
	int ret = -1;
	double t1;

	if (mode == M_RAW_SCM) {
		r.scm_type = scm_type();
		if (!scm_probe(r.scm_type, r.err, sizeof(r.err))) {
			ret = -EOPNOTSUPP;
			goto out;
		}
	}
	ret = conns_open(&r);
	if (ret)
		goto out;
	ret = -1;
	if (lib)
		stats_sum(&r, &s0);
	getrusage(RUSAGE_SELF, &u0);
	r.t0 = now_s();
	r.next_progress = r.t0 + 0.5;
	r.deadline = r.t0 + b->duration;
	ret = lib ? (r.ctx && b->batch ? batch_loop(&r) : lib_loop(&r)) :
	      mode == M_RAW_URING ? raw_uring_loop(&r) : raw_loop(&r);
	if (ret) {
		if (ret != -EOPNOTSUPP)
			ret = -1;
		goto out;
	}
	ret = -1;
	t1 = now_s();
	getrusage(RUSAGE_SELF, &u1);
	if (b->conns_given) {
		r.rss_streamed = rss_bytes();
		r.fds_streamed = fd_count();
	}

	*res = (struct result){
		.mode = mode, .c = *c, .round = round,
		.secs = t1 - r.t0,
		.utime = tv_s(&u1.ru_utime) - tv_s(&u0.ru_utime),
		.stime = tv_s(&u1.ru_stime) - tv_s(&u0.ru_stime),
		.bytes = r.bytes, .sends = r.sends,
		.short_sends = r.short_sends,
		.r_mbps = NAN, .r_cpu = NAN,
		.rss_idle = NAN, .rss_stream = NAN,
		.fds_idle = NAN, .fds_stream = NAN,
	};
	if (b->conns_given) {
		const double n = c->conns;

		res->rss_idle = (r.rss_wrapped - r.rss_bare) / n;
		res->rss_stream = (r.rss_streamed - r.rss_bare) / n;
		if (r.fds_before >= 0 && r.fds_wrapped >= 0)
			res->fds_idle = (double)(r.fds_wrapped -
						 r.fds_before) / n;
		if (r.fds_before >= 0 && r.fds_streamed >= 0)
			res->fds_stream = (double)(r.fds_streamed -
						   r.fds_before) / n;
	}
	if (lib) {
		stats_sum(&r, &s1);
		res->syscalls = s1.syscalls - s0.syscalls;
		res->completions = s1.completions - s0.completions;
		res->completions_zc = s1.completions_zc - s0.completions_zc;
		res->lib_copies = s1.sends_copy - s0.sends_copy;
		res->harvests = (s1.harvest_cmsg - s0.harvest_cmsg) +
				(s1.harvest_recvmsg - s0.harvest_recvmsg);
		/* io_uring: one notification CQE per send, no ranges. */
		res->harvests_known = mode != M_URING && mode != M_COPY;
	} else {
		res->syscalls = r.syscalls;
		res->completions = modes[mode].zc ? r.completions : r.sends;
		res->completions_zc = modes[mode].zc ?
				      r.completions - r.copied : 0;
		res->harvests = r.harvests;
		/* raw-uring: a notification CQE a send, as uring. */
		res->harvests_known = modes[mode].zc && mode != M_RAW_URING;
	}
	ret = b->rx ? rx_settle(&r, res, rx0, bad0) : 0;
out:
	conns_close(&r, !ret && b->rx && c->type == SOCK_STREAM &&
		    c->conns > 1);
	if (ret)
		snprintf(why, whylen, "%s", r.err[0] ? r.err : "failed");
	return ret;
}

/* ---- figures ---------------------------------------------------------- */

static double mbps(const struct result *x)
{
	return x->secs > 0 ? (double)x->bytes / 1e6 / x->secs : 0;
}

/* Sender CPU in microseconds per MB sent. */
static double cpu_per_mb(const struct result *x)
{
	return x->bytes ? (x->utime + x->stime) * 1e6 / ((double)x->bytes / 1e6)
			: NAN;
}

static double per(uint64_t a, uint64_t b)
{
	return b ? (double)a / (double)b : NAN;
}

static bool same_cfg(const struct cfg *a, const struct cfg *b)
{
	return a->type == b->type && a->family == b->family &&
	       a->size == b->size && a->k == b->k && a->conns == b->conns;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Median of the finite values; NAN if there is none. */
static double median(double *v, int n)
{
	int m = 0;

	for (int i = 0; i < n; i++)
		if (!isnan(v[i]))
			v[m++] = v[i];
	if (!m)
		return NAN;
	qsort(v, (size_t)m, sizeof(*v), cmp_double);
	return m % 2 ? v[m / 2] : (v[m / 2 - 1] + v[m / 2]) / 2;
}

/*
 * The figures of a run, and of the medians over runs, in output order.
 * Those from F_NR_BASE on are -c's: in the CSV they follow short_sends
 * (and conns), so that the columns before them keep their places.
 */
enum {
	F_MBPS, F_SENDS_S, F_UTIME, F_STIME, F_CPU_MB, F_SYS_SEND,
	F_PER_HARVEST, F_ZC_SHARE, F_RX_SHARE, F_R_MBPS, F_R_CPU,
	F_NR_BASE,
	F_RSS_IDLE = F_NR_BASE, F_RSS_STREAM, F_FDS_IDLE, F_FDS_STREAM,
	F_NR
};

static const struct {
	const char *key;	/* CSV column and JSON key */
	int decimals;		/* in the CSV */
} figs[F_NR] = {
	[F_MBPS] = { "mbps", 3 },
	[F_SENDS_S] = { "sends_per_s", 1 },
	[F_UTIME] = { "utime", 6 },
	[F_STIME] = { "stime", 6 },
	[F_CPU_MB] = { "cpu_us_per_mb", 3 },
	[F_SYS_SEND] = { "syscalls_per_send", 4 },
	[F_PER_HARVEST] = { "completions_per_harvest", 3 },
	[F_ZC_SHARE] = { "zc_share", 4 },
	[F_RX_SHARE] = { "rx_share", 4 },
	[F_R_MBPS] = { "ratio_mbps", 4 },
	[F_R_CPU] = { "ratio_cpu", 4 },
	[F_RSS_IDLE] = { "rss_idle_per_conn", 1 },
	[F_RSS_STREAM] = { "rss_stream_per_conn", 1 },
	[F_FDS_IDLE] = { "fds_per_conn", 4 },
	[F_FDS_STREAM] = { "fds_stream_per_conn", 4 },
};

/* Every figure of one run; NAN for what it did not measure. */
static void figures(const struct result *x, double v[F_NR])
{
	v[F_MBPS] = mbps(x);
	v[F_SENDS_S] = (double)x->sends / x->secs;
	v[F_UTIME] = x->utime;
	v[F_STIME] = x->stime;
	v[F_CPU_MB] = cpu_per_mb(x);
	v[F_SYS_SEND] = per(x->syscalls, x->sends);
	v[F_PER_HARVEST] = x->harvests_known ?
		per(x->completions - x->lib_copies, x->harvests) : NAN;
	v[F_ZC_SHARE] = per(x->completions_zc, x->completions);
	v[F_RX_SHARE] = x->rx_known ? per(x->rx_bytes, x->bytes) : NAN;
	v[F_R_MBPS] = x->r_mbps;
	v[F_R_CPU] = x->r_cpu;
	v[F_RSS_IDLE] = x->rss_idle;
	v[F_RSS_STREAM] = x->rss_stream;
	v[F_FDS_IDLE] = x->fds_idle;
	v[F_FDS_STREAM] = x->fds_stream;
}

struct summary {
	int mode;
	struct cfg c;
	int n;
	double v[F_NR];		/* medians over the rounds */
	double mbps_min, mbps_max;
};

/* Medians over the rounds of one mode on one configuration. */
static bool summarize(const struct bench *b, const struct cfg *c, int mode,
		      struct summary *s)
{
	double v[F_NR][256], one[F_NR];
	int n = 0;

	for (size_t i = 0; i < b->nres && n < 256; i++) {
		const struct result *x = &b->res[i];

		if (x->mode != mode || !same_cfg(&x->c, c))
			continue;
		figures(x, one);
		for (int f = 0; f < F_NR; f++)
			v[f][n] = one[f];
		n++;
	}
	if (!n)
		return false;
	*s = (struct summary){ .mode = mode, .c = *c, .n = n };
	s->mbps_min = s->mbps_max = v[F_MBPS][0];
	for (int i = 1; i < n; i++) {
		s->mbps_min = fmin(s->mbps_min, v[F_MBPS][i]);
		s->mbps_max = fmax(s->mbps_max, v[F_MBPS][i]);
	}
	for (int f = 0; f < F_NR; f++)
		s->v[f] = median(v[f], n);
	return true;
}

/* Ratios of every mode of a finished round to the reference mode. */
static void round_ratios(struct bench *b, size_t first)
{
	const struct result *ref = NULL;

	if (b->ref < 0)
		return;
	for (size_t i = first; i < b->nres; i++)
		if (b->res[i].mode == b->ref)
			ref = &b->res[i];
	if (!ref)
		return;
	for (size_t i = first; i < b->nres; i++) {
		struct result *x = &b->res[i];

		x->r_mbps = mbps(ref) > 0 ? mbps(x) / mbps(ref) : NAN;
		x->r_cpu = cpu_per_mb(x) / cpu_per_mb(ref);
	}
}

static const char *cfg_name(const struct cfg *c, char *out, size_t len)
{
	snprintf(out, len, "%s%d", c->type == SOCK_STREAM ? "tcp" : "udp",
		 c->family == AF_INET ? 4 : 6);
	return out;
}

/* v with d decimals, or "-" when it was not measured. */
static void fmt_num(char *out, size_t len, int d, double v)
{
	if (isnan(v))
		snprintf(out, len, "-");
	else
		snprintf(out, len, "%.*f", d, v);
}

static void print_table(const struct bench *b, const struct cfg *c, FILE *f)
{
	char name[16], h[16], z[16], rx[16], rm[16], rc[16];
	char mi[16], ms[16], fi[16], fs[16];
	struct summary s;

	fprintf(f, "\n%s, %zu B per send, harvest every %u, ",
		cfg_name(c, name, sizeof(name)), c->size, c->k);
	if (b->conns_given)
		fprintf(f, "%u connection%s, ", c->conns,
			c->conns == 1 ? "" : "s");
	fprintf(f, "%d round%s, median:\n", b->rounds,
		b->rounds == 1 ? "" : "s");
	fprintf(f, "  %-9s %9s %10s %7s %7s %9s %8s %8s %6s %6s %7s %7s",
		"mode", "MB/s", "sends/s", "usr s", "sys s", "cpu us/MB",
		"sys/send", "per harv", "zc%", "rx%",
		b->ref >= 0 ? "MB/s x" : "", b->ref >= 0 ? "cpu x" : "");
	if (b->conns_given)
		fprintf(f, " %9s %9s %6s %6s", "idle B/c", "strm B/c",
			"fds/c", "strm");
	fputc('\n', f);
	for (int i = 0; i < b->nmodes; i++) {
		if (!summarize(b, c, b->modes[i], &s))
			continue;
		fmt_num(h, sizeof(h), 1, s.v[F_PER_HARVEST]);
		fmt_num(z, sizeof(z), 1, s.v[F_ZC_SHARE] * 100);
		fmt_num(rx, sizeof(rx), 1, s.v[F_RX_SHARE] * 100);
		fmt_num(rm, sizeof(rm), 3, s.v[F_R_MBPS]);
		fmt_num(rc, sizeof(rc), 3, s.v[F_R_CPU]);
		fprintf(f, "  %-9s %9.1f %10.0f %7.3f %7.3f %9.1f %8.3f %8s "
			"%6s %6s %7s %7s", modes[s.mode].name, s.v[F_MBPS],
			s.v[F_SENDS_S], s.v[F_UTIME], s.v[F_STIME], s.v[F_CPU_MB],
			s.v[F_SYS_SEND], h, z, rx, rm, rc);
		if (b->conns_given) {
			fmt_num(mi, sizeof(mi), 0, s.v[F_RSS_IDLE]);
			fmt_num(ms, sizeof(ms), 0, s.v[F_RSS_STREAM]);
			fmt_num(fi, sizeof(fi), 2, s.v[F_FDS_IDLE]);
			fmt_num(fs, sizeof(fs), 2, s.v[F_FDS_STREAM]);
			fprintf(f, " %9s %9s %6s %6s", mi, ms, fi, fs);
		}
		fputc('\n', f);
	}
	if (b->ref >= 0)
		fprintf(f, "  (x: median of per-round ratios to %s; cpu = sender "
			"CPU per byte)\n", modes[b->ref].name);
}

/* The comparisons the project's targets are about, where both ran. */
static void print_pairs(const struct bench *b, const struct cfg *c, FILE *f)
{
	static const int pairs[][2] = {
		{ M_ERRQUEUE, M_RAW_ZC }, { M_RAW_SCM, M_RAW_ZC },
		{ M_SCM, M_RAW_SCM }, { M_SCM, M_ERRQUEUE },
		{ M_SCM, M_RAW_ZC }, { M_URING, M_ERRQUEUE },
		{ M_URING, M_RAW_URING }, { M_RAW_URING, M_RAW_ZC },
		{ M_COPY, M_RAW_COPY }, { M_ERRQUEUE, M_RAW_COPY },
	};

	for (size_t p = 0; p < sizeof(pairs) / sizeof(pairs[0]); p++) {
		double rm[256], rc[256];
		int n = 0;

		/* Per-round ratios between the two, then the median. */
		for (int round = 0; round < b->rounds; round++) {
			const struct result *x = NULL, *y = NULL;

			for (size_t i = 0; i < b->nres; i++) {
				const struct result *t = &b->res[i];

				if (t->round != round || !same_cfg(&t->c, c))
					continue;
				if (t->mode == pairs[p][0])
					x = t;
				if (t->mode == pairs[p][1])
					y = t;
			}
			if (x && y && n < 256 && mbps(y) > 0) {
				rm[n] = mbps(x) / mbps(y);
				rc[n] = cpu_per_mb(x) / cpu_per_mb(y);
				n++;
			}
		}
		if (n)
			fprintf(f, "  %s vs %s: throughput %.3fx, cpu per byte "
				"%.3fx\n", modes[pairs[p][0]].name,
				modes[pairs[p][1]].name, median(rm, n),
				median(rc, n));
	}
}

/*
 * -c: every mode at each count against itself at the smallest count of
 * the list, same protocol, size and k (ratios of the medians: runs of
 * different counts are not in the same round).
 */
static void print_conns(const struct bench *b, const struct cfg *c, FILE *f)
{
	struct cfg base = *c, at = *c;

	for (int i = 0; i < b->nconns; i++)
		if (b->conns[i] < base.conns || i == 0)
			base.conns = b->conns[i];
	for (int i = 0; i < b->nmodes; i++) {
		struct summary s0, s;

		if (!summarize(b, &base, b->modes[i], &s0))
			continue;
		for (int j = 0; j < b->nconns; j++) {
			at.conns = b->conns[j];
			if (at.conns == base.conns ||
			    !summarize(b, &at, b->modes[i], &s))
				continue;
			fprintf(f, "  %s: c=%u vs c=%u: throughput %.3fx, cpu "
				"per byte %.3fx\n", modes[b->modes[i]].name,
				at.conns, base.conns,
				s.v[F_MBPS] / s0.v[F_MBPS],
				s.v[F_CPU_MB] / s0.v[F_CPU_MB]);
		}
	}
}

/* A CSV field: the number, or nothing when it was not measured. */
static void csv_num(FILE *f, double v, int d)
{
	if (!isnan(v) && !isinf(v))
		fprintf(f, "%.*f", d, v);
}

/* The figures before short_sends, each followed by a comma. */
static void csv_figures(FILE *f, const double v[F_NR])
{
	for (int i = 0; i < F_NR_BASE; i++) {
		csv_num(f, v[i], figs[i].decimals);
		fputc(',', f);
	}
}

/* -c: the fields after short_sends, each after a comma. */
static void csv_conns(FILE *f, const struct bench *b, unsigned int conns,
		      const double v[F_NR])
{
	if (!b->conns_given)
		return;
	fprintf(f, ",%u", conns);
	for (int i = F_NR_BASE; i < F_NR; i++) {
		fputc(',', f);
		csv_num(f, v[i], figs[i].decimals);
	}
}

static void write_csv(const struct bench *b, const struct cfg *cfgs, int ncfg)
{
	FILE *f = strcmp(b->csv, "-") ? fopen(b->csv, "w") : stdout;
	char name[16];
	double v[F_NR];

	if (!f)
		die("%s: %s", b->csv, strerror(errno));
	fprintf(f, "mode,proto,size,k,round,secs,bytes,sends,");
	for (int i = 0; i < F_NR_BASE; i++)
		fprintf(f, "%s,", figs[i].key);
	fprintf(f, "short_sends");
	if (b->conns_given) {
		fprintf(f, ",conns");
		for (int i = F_NR_BASE; i < F_NR; i++)
			fprintf(f, ",%s", figs[i].key);
	}
	fputc('\n', f);
	for (size_t i = 0; i < b->nres; i++) {
		const struct result *x = &b->res[i];

		fprintf(f, "%s,%s,%zu,%u,%d,%.6f,%llu,%llu,",
			modes[x->mode].name, cfg_name(&x->c, name, sizeof(name)),
			x->c.size, x->c.k, x->round + 1, x->secs,
			(unsigned long long)x->bytes,
			(unsigned long long)x->sends);
		figures(x, v);
		csv_figures(f, v);
		fprintf(f, "%llu", (unsigned long long)x->short_sends);
		csv_conns(f, b, x->c.conns, v);
		fputc('\n', f);
	}
	/* The medians, as rows of round "median" (what zcbench-plot draws). */
	for (int j = 0; j < ncfg; j++) {
		for (int i = 0; i < b->nmodes; i++) {
			struct summary s;

			if (!summarize(b, &cfgs[j], b->modes[i], &s))
				continue;
			fprintf(f, "%s,%s,%zu,%u,median,,,,", modes[s.mode].name,
				cfg_name(&s.c, name, sizeof(name)), s.c.size, s.c.k);
			csv_figures(f, s.v);
			csv_conns(f, b, s.c.conns, s.v);	/* after an
							 * empty short_sends */
			fputc('\n', f);
		}
	}
	if (f != stdout && fclose(f))
		die("%s: %s", b->csv, strerror(errno));
}

static void json_num(FILE *f, const char *key, double v, bool last)
{
	if (isnan(v) || isinf(v))
		fprintf(f, "\"%s\": null%s", key, last ? "" : ", ");
	else
		fprintf(f, "\"%s\": %.6g%s", key, v, last ? "" : ", ");
}

/* The figures; -c's only with -c. */
static void json_figures(FILE *f, const struct bench *b, const double v[F_NR],
			 bool last)
{
	const int n = b->conns_given ? F_NR : F_NR_BASE;

	for (int i = 0; i < n; i++)
		json_num(f, figs[i].key, v[i], last && i == n - 1);
}

static void write_json(const struct bench *b, const struct cfg *cfgs, int ncfg)
{
	FILE *f = strcmp(b->json, "-") ? fopen(b->json, "w") : stdout;
	struct utsname u;
	char name[16];
	bool first = true;
	double v[F_NR];

	if (!f)
		die("%s: %s", b->json, strerror(errno));
	uname(&u);
	fprintf(f, "{\n  \"tool\": \"zcbench\", \"kernel\": \"%s\", "
		"\"reference\": ", u.release);
	if (b->ref >= 0)
		fprintf(f, "\"%s\",\n", modes[b->ref].name);
	else
		fprintf(f, "null,\n");
	fprintf(f, "  \"runs\": [\n");
	for (size_t i = 0; i < b->nres; i++) {
		const struct result *x = &b->res[i];

		fprintf(f, "    {\"mode\": \"%s\", \"proto\": \"%s\", \"size\": "
			"%zu, \"k\": %u, \"round\": %d, \"bytes\": %llu, "
			"\"sends\": %llu, \"short_sends\": %llu, "
			"\"syscalls\": %llu, ",
			modes[x->mode].name, cfg_name(&x->c, name, sizeof(name)),
			x->c.size, x->c.k, x->round + 1,
			(unsigned long long)x->bytes,
			(unsigned long long)x->sends,
			(unsigned long long)x->short_sends,
			(unsigned long long)x->syscalls);
		if (b->conns_given)
			fprintf(f, "\"conns\": %u, ", x->c.conns);
		json_num(f, "secs", x->secs, false);
		figures(x, v);
		json_figures(f, b, v, true);
		fprintf(f, "}%s\n", i + 1 < b->nres ? "," : "");
	}
	fprintf(f, "  ],\n  \"summary\": [\n");
	for (int j = 0; j < ncfg; j++) {
		for (int i = 0; i < b->nmodes; i++) {
			struct summary s;

			if (!summarize(b, &cfgs[j], b->modes[i], &s))
				continue;
			fprintf(f, "%s    {\"mode\": \"%s\", \"proto\": \"%s\", "
				"\"size\": %zu, \"k\": %u, \"rounds\": %d, ",
				first ? "" : ",\n", modes[s.mode].name,
				cfg_name(&s.c, name, sizeof(name)), s.c.size,
				s.c.k, s.n);
			if (b->conns_given)
				fprintf(f, "\"conns\": %u, ", s.c.conns);
			first = false;
			json_num(f, "mbps_min", s.mbps_min, false);
			json_num(f, "mbps_max", s.mbps_max, false);
			json_figures(f, b, s.v, true);
			fprintf(f, "}");
		}
	}
	fprintf(f, "\n  ]\n}\n");
	if (f != stdout && fclose(f))
		die("%s: %s", b->json, strerror(errno));
}

/* ---- --self-test: raw-scm's parser against hand-built answers --------- */

/* A buffer as the kernel leaves it: n elements {lo, hi, zc} and a header
 * of cmsg_len CMSG_LEN(n * 12), tail padding filled with garbage. */
static void st_answer(unsigned char *buf, int type, size_t cmsg_len,
		      const uint32_t (*e)[3], int n)
{
	struct cmsghdr c = { .cmsg_len = cmsg_len, .cmsg_level = SOL_SOCKET,
			     .cmsg_type = type };

	memcpy(buf, &c, sizeof(c));
	for (int i = 0; i < n; i++) {
		unsigned char *p = buf + CMSG_LEN(0) + (size_t)i * SCM_ELEM;

		memcpy(p, &e[i][0], 4);
		memcpy(p + 4, &e[i][1], 4);
		p[SCM_OFF_ZEROCOPY] = (uint8_t)e[i][2];
		memset(p + SCM_OFF_ZEROCOPY + 1, 0xa5, 3);
	}
}

static int self_test(void)
{
	alignas(struct cmsghdr) unsigned char buf[SCM_CTL_SPACE];
	static const uint32_t one[][3] = { { 5, 7, 1 } };
	static const uint32_t two[][3] = { { 0xfffffffe, 1, 0 }, { 9, 9, 1 } };
	static const uint32_t bad_zc[][3] = { { 1, 1, 2 } };
	uint32_t many[SCM_MAX + 1][3];
	struct scm_range out[SCM_MAX + 1];
	const int T = ZC_SCM_TYPE_DEFAULT;
	int fails = 0, checks = 0, n;

#define ST(cond, what) do {						\
		checks++;						\
		if (!(cond)) {						\
			fprintf(stderr, "self-test: FAIL: %s\n", what);	\
			fails++;					\
		}							\
	} while (0)

	for (int i = 0; i <= SCM_MAX; i++) {
		many[i][0] = many[i][1] = (uint32_t)(10 * i);
		many[i][2] = (uint32_t)(i & 1);
	}
	/* What we send: the header, the sentinel, nothing else read. */
	memset(buf, 0, sizeof(buf));
	ST(scm_prepare(buf, T, SCM_MAX) == sizeof(buf), "prepare: length");
	ST(((struct cmsghdr *)buf)->cmsg_len == CMSG_LEN(SCM_MAX * 12) &&
	   ((struct cmsghdr *)buf)->cmsg_level == SOL_SOCKET &&
	   ((struct cmsghdr *)buf)->cmsg_type == T, "prepare: header");
	ST(scm_parse(buf, sizeof(buf), T, SCM_MAX, out) == 0,
	   "untouched (sentinel): nothing");
	/* One element; the answer's header replaces ours. */
	scm_prepare(buf, T, SCM_MAX);
	st_answer(buf, T, CMSG_LEN(SCM_ELEM), one, 1);
	n = scm_parse(buf, sizeof(buf), T, SCM_MAX, out);
	ST(n == 1 && out[0].lo == 5 && out[0].hi == 7 && !out[0].copied,
	   "one element, zero-copy");
	/* Two, the first wrapping and copied. */
	st_answer(buf, T, CMSG_LEN(2 * SCM_ELEM), two, 2);
	n = scm_parse(buf, sizeof(buf), T, SCM_MAX, out);
	ST(n == 2 && out[0].lo == 0xfffffffe && out[0].hi == 1 &&
	   out[0].copied && (uint32_t)(out[0].hi - out[0].lo + 1) == 4 &&
	   out[1].lo == 9 && !out[1].copied, "two, wrapping and copied");
	/* All sixteen. */
	st_answer(buf, T, CMSG_LEN(SCM_MAX * SCM_ELEM), many, SCM_MAX);
	n = scm_parse(buf, sizeof(buf), T, SCM_MAX, out);
	ST(n == SCM_MAX && out[15].lo == 150 && !out[15].copied &&
	   out[14].copied, "sixteen");
	/* More than asked, or than the buffer holds. */
	ST(scm_parse(buf, sizeof(buf), T, 4, out) < 0, "more than asked");
	ST(scm_parse(buf, CMSG_LEN(SCM_ELEM) + 4, T, SCM_MAX, out) < 0,
	   "past the buffer");
	/* Malformed headers and elements. */
	st_answer(buf, T, CMSG_LEN(SCM_ELEM) + 5, one, 1);
	ST(scm_parse(buf, sizeof(buf), T, SCM_MAX, out) < 0,
	   "length not a multiple of 12");
	st_answer(buf, T, CMSG_LEN(0), one, 1);
	ST(scm_parse(buf, sizeof(buf), T, SCM_MAX, out) < 0,
	   "header without an element");
	st_answer(buf, T, 3, one, 1);
	ST(scm_parse(buf, sizeof(buf), T, SCM_MAX, out) < 0,
	   "cmsg_len below a header");
	st_answer(buf, T + 1, CMSG_LEN(SCM_ELEM), one, 1);
	ST(scm_parse(buf, sizeof(buf), T, SCM_MAX, out) < 0, "other type");
	st_answer(buf, T, CMSG_LEN(SCM_ELEM), one, 1);
	((struct cmsghdr *)buf)->cmsg_level = SOL_IP;
	ST(scm_parse(buf, sizeof(buf), T, SCM_MAX, out) < 0, "other level");
	st_answer(buf, T, CMSG_LEN(SCM_ELEM), bad_zc, 1);
	ST(scm_parse(buf, sizeof(buf), T, SCM_MAX, out) < 0,
	   "zerocopy byte 2");
	ST(scm_parse(buf, sizeof(buf), T, 0, out) < 0, "asked for none");
#undef ST
	printf("zcbench: self-test: %d of %d checks passed\n",
	       checks - fails, checks);
	return fails ? 1 : 0;
}

/* ---- options ---------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
"usage: zcbench [options]\n"
"  -m, --mode LIST      modes to run, alternately (default: all):\n"
"                       raw-copy raw-zc raw-scm raw-uring copy errqueue\n"
"                       scm uring\n"
"  -t, --proto LIST     tcp, udp or tcp,udp (default tcp)\n"
"  -4, -6, --family LIST  IPv4, IPv6 or 4,6 (default 4)\n"
"  -s, --size LIST      bytes per send, K/M suffixes (default 64K)\n"
"  -k, --harvest LIST   collect completions every k sends (default 1)\n"
"  -c, --conns LIST     connections per run, sends round-robin over them\n"
"                       (default 1); adds memory and fds per connection\n"
"  -x, --ctx            library modes: the connections join one context\n"
"                       (zc_ctx_new(3)) and are reaped through it\n"
"      --fixed          with -x, uring: the send buffer registered\n"
"                       (zc_ctx_register_buffers(3)); raw-uring: too\n"
"      --batch N        with -x: N sends per zc_ctx_sendmmsg(3) call, each\n"
"                       on the next connection (1 to 64); raw-uring: N\n"
"                       SQEs per io_uring_enter(2)\n"
"      --sndbuf BYTES   SO_SNDBUF of every sending socket, K/M suffixes;\n"
"                       0: the kernel's autotuning (default 0)\n"
"  -d, --duration SEC   seconds per run (default 1)\n"
"  -n, --count N        sends per run instead of a duration\n"
"  -r, --rounds N       rounds of every mode (default 3)\n"
"      --ref MODE       ratios are to MODE (default raw-zc if run)\n"
"  -a, --address ADDR   send to ADDR (a zcbench -l there, or the receiver\n"
"                       of --rx-netns); default loopback\n"
"  -p, --port N         port at ADDR (default %d)\n"
"  -N, --rx-netns PATH  run the receiver in that network namespace\n"
"  -l, --listen         be the receiver only (at -a ADDR, default any)\n"
"  -V, --check          the receiver copies every byte out and checks it\n"
"                       (default: it discards the data, MSG_TRUNC)\n"
"  -i, --max-inflight N zc_opts.max_inflight (default: the library's)\n"
"  -C, --cpus S,R       pin the sender to CPU S, the local receiver to R\n"
"  -g, --gso N          UDP: send with UDP_SEGMENT N (GSO), so one send\n"
"                       leaves as datagrams of N bytes\n"
"      --adapt          library defaults for copy_below and adaptation\n"
"                       (default: every library send zero-copy)\n"
"      --csv FILE       every run and the medians as CSV ('-': stdout)\n"
"      --json FILE      the same as JSON ('-': stdout)\n"
"  -q, --quiet          no progress line\n"
"  -P, --progress       a progress line even when stderr is not a tty\n"
"      --self-test      check raw-scm's SCM_ZC_NOTIFICATION parser, exit\n"
"  -h, --help\n"
"Exit status: 0, 1 if a run failed, 2 on bad usage, 77 if no mode could run.\n",
		DEFAULT_PORT);
}

static int mode_by_name(const char *s)
{
	for (int i = 0; i < M_NR; i++)
		if (!strcmp(s, modes[i].name))
			return i;
	return -1;
}

static unsigned long long parse_num(const char *opt, const char *s,
				    unsigned long long max, bool suffix)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (suffix && (*end == 'K' || *end == 'k'))
		v <<= 10, end++;
	else if (suffix && (*end == 'M' || *end == 'm'))
		v <<= 20, end++;
	if (errno || end == s || *end || *s == '-' || v == 0 || v > max)
		die("%s: '%s' is not a number from 1 to %llu", opt, s, max);
	return v;
}

/* Split a comma-separated list, calling fn on each item. */
static void each(const char *opt, const char *list, void (*fn)(struct bench *,
		 const char *, const char *), struct bench *b)
{
	char *dup = strdup(list), *save = NULL, *tok;

	if (!dup)
		die("out of memory");
	for (tok = strtok_r(dup, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save))
		fn(b, opt, tok);
	free(dup);
}

static void add_mode(struct bench *b, const char *opt, const char *s)
{
	int m = mode_by_name(s);

	if (!strcmp(s, "all")) {
		for (int i = 0; i < M_NR; i++)
			add_mode(b, opt, modes[i].name);
		return;
	}
	if (m < 0)
		die("%s: unknown mode '%s'", opt, s);
	for (int i = 0; i < b->nmodes; i++)
		if (b->modes[i] == m)
			return;
	b->modes[b->nmodes++] = m;
}

static void add_proto(struct bench *b, const char *opt, const char *s)
{
	int t = !strcmp(s, "tcp") ? SOCK_STREAM :
		!strcmp(s, "udp") ? SOCK_DGRAM : -1;

	if (t < 0)
		die("%s: '%s' is neither tcp nor udp", opt, s);
	if (b->ntypes < 2 && (b->ntypes == 0 || b->types[0] != t))
		b->types[b->ntypes++] = t;
}

static void add_family(struct bench *b, const char *opt, const char *s)
{
	int f = !strcmp(s, "4") ? AF_INET : !strcmp(s, "6") ? AF_INET6 : -1;

	if (f < 0)
		die("%s: '%s' is neither 4 nor 6", opt, s);
	if (b->nfamilies < 2 && (b->nfamilies == 0 || b->families[0] != f))
		b->families[b->nfamilies++] = f;
}

static void add_size(struct bench *b, const char *opt, const char *s)
{
	if (b->nsizes == MAX_LIST)
		die("%s: at most %d sizes", opt, MAX_LIST);
	b->sizes[b->nsizes++] = parse_num(opt, s, 64u << 20, true);
}

static void add_k(struct bench *b, const char *opt, const char *s)
{
	if (b->nks == MAX_LIST)
		die("%s: at most %d values", opt, MAX_LIST);
	b->ks[b->nks++] = (unsigned int)parse_num(opt, s, 1u << 20, false);
}

static void add_conns(struct bench *b, const char *opt, const char *s)
{
	if (b->nconns == MAX_LIST)
		die("%s: at most %d counts", opt, MAX_LIST);
	b->conns[b->nconns++] = (unsigned int)parse_num(opt, s, 1u << 20,
							false);
}

static void parse(struct bench *b, int argc, char **argv)
{
	enum { O_REF = 256, O_ADAPT, O_CSV, O_JSON, O_SELF_TEST, O_FIXED,
	       O_BATCH, O_SNDBUF };
	static const struct option lo[] = {
		{ "mode", required_argument, NULL, 'm' },
		{ "proto", required_argument, NULL, 't' },
		{ "family", required_argument, NULL, 'F' },
		{ "size", required_argument, NULL, 's' },
		{ "harvest", required_argument, NULL, 'k' },
		{ "conns", required_argument, NULL, 'c' },
		{ "duration", required_argument, NULL, 'd' },
		{ "count", required_argument, NULL, 'n' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "ref", required_argument, NULL, O_REF },
		{ "address", required_argument, NULL, 'a' },
		{ "port", required_argument, NULL, 'p' },
		{ "rx-netns", required_argument, NULL, 'N' },
		{ "listen", no_argument, NULL, 'l' },
		{ "check", no_argument, NULL, 'V' },
		{ "max-inflight", required_argument, NULL, 'i' },
		{ "gso", required_argument, NULL, 'g' },
		{ "cpus", required_argument, NULL, 'C' },
		{ "adapt", no_argument, NULL, O_ADAPT },
		{ "ctx", no_argument, NULL, 'x' },
		{ "fixed", no_argument, NULL, O_FIXED },
		{ "batch", required_argument, NULL, O_BATCH },
		{ "sndbuf", required_argument, NULL, O_SNDBUF },
		{ "csv", required_argument, NULL, O_CSV },
		{ "json", required_argument, NULL, O_JSON },
		{ "quiet", no_argument, NULL, 'q' },
		{ "progress", no_argument, NULL, 'P' },
		{ "self-test", no_argument, NULL, O_SELF_TEST },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *ref = NULL;
	char *end;
	int o;

	b->duration = 1;
	b->rounds = 3;
	b->cpu_tx = b->cpu_rx = -1;
	b->port = DEFAULT_PORT;
	b->ref = -1;
	while ((o = getopt_long(argc, argv, "m:t:46F:s:k:c:d:n:r:a:p:N:lVi:g:C:qPhx",
				lo, NULL)) != -1) {
		switch (o) {
		case 'm': each("--mode", optarg, add_mode, b); break;
		case 't': each("--proto", optarg, add_proto, b); break;
		case '4': add_family(b, "-4", "4"); break;
		case '6': add_family(b, "-6", "6"); break;
		case 'F': each("--family", optarg, add_family, b); break;
		case 's': each("--size", optarg, add_size, b); break;
		case 'k': each("--harvest", optarg, add_k, b); break;
		case 'c':
			each("--conns", optarg, add_conns, b);
			b->conns_given = true;
			break;
		case 'd':
			errno = 0;
			b->duration = strtod(optarg, &end);
			if (errno || *end || !(b->duration > 0) ||
			    b->duration > 86400)
				die("--duration: '%s' is not a number of seconds "
				    "above 0", optarg);
			break;
		case 'n':
			b->count = parse_num("--count", optarg, ULLONG_MAX >> 1,
					     false);
			break;
		case 'r':
			b->rounds = (int)parse_num("--rounds", optarg, 256,
						   false);
			break;
		case O_REF: ref = optarg; break;
		case 'a': b->address = optarg; break;
		case 'p':
			b->port = (uint16_t)parse_num("--port", optarg, 65535,
						      false);
			break;
		case 'N': b->rx_netns = optarg; break;
		case 'l': b->listen_only = true; break;
		case 'V': b->check = true; break;
		case 'i':
			b->max_inflight = (uint32_t)parse_num("--max-inflight",
							      optarg, 1u << 20,
							      false);
			break;
		case 'g':
			b->gso = (int)parse_num("--gso", optarg, UDP_MAX_V6,
						false);
			break;
		case 'C':
			if (sscanf(optarg, "%d,%d%c", &b->cpu_tx, &b->cpu_rx,
				   &(char){ 0 }) != 2 || b->cpu_tx < 0 ||
			    b->cpu_rx < 0 || b->cpu_tx >= CPU_SETSIZE ||
			    b->cpu_rx >= CPU_SETSIZE)
				die("--cpus: '%s' is not two CPU numbers S,R",
				    optarg);
			break;
		case O_ADAPT: b->adapt = true; break;
		case O_FIXED: b->fixed = true; break;
		case O_BATCH:
			if (sscanf(optarg, "%u%c", &b->batch, &(char){ 0 }) != 1 ||
			    !b->batch || b->batch > BATCH_MAX)
				die("--batch: '%s' is not 1 to %d", optarg,
				    BATCH_MAX);
			break;
		case O_SNDBUF:
			/* 0: the kernel's default and autotuning. */
			b->sndbuf = strcmp(optarg, "0") ?
				(int)parse_num("--sndbuf", optarg, 1u << 30,
					       true) : 0;
			break;
		case O_CSV: b->csv = optarg; break;
		case O_JSON: b->json = optarg; break;
		case 'q': b->quiet = true; break;
		case 'x': b->ctx = true; break;
		case 'P': b->progress = true; break;
		case O_SELF_TEST: exit(self_test());
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); exit(2);
		}
	}
	if (optind < argc)
		die("unexpected argument '%s' (see --help)", argv[optind]);
	if (b->batch && !b->ctx)
		die("--batch sends through a context: give -x too");
	if (!b->nmodes)
		add_mode(b, "--mode", "all");
	if (!b->ntypes)
		add_proto(b, "--proto", "tcp");
	if (!b->nfamilies)
		add_family(b, "--family", "4");
	if (!b->nsizes)
		add_size(b, "--size", "64K");
	if (!b->nks)
		add_k(b, "--harvest", "1");
	if (!b->nconns)
		add_conns(b, "--conns", "1");
	for (int i = 0; i < b->nsizes; i++)
		for (int j = 0; j < b->ntypes; j++)
			for (int f = 0; f < b->nfamilies; f++)
				if (b->types[j] == SOCK_DGRAM &&
				    b->sizes[i] > (b->families[f] == AF_INET ?
						   UDP_MAX_V4 : UDP_MAX_V6))
					die("--size: %zu bytes do not fit in a "
					    "UDP/IPv%d datagram (at most %u)",
					    b->sizes[i],
					    b->families[f] == AF_INET ? 4 : 6,
					    b->families[f] == AF_INET ?
					    UDP_MAX_V4 : UDP_MAX_V6);
	b->ref = -1;
	for (int i = 0; i < b->nmodes; i++)
		if (b->modes[i] == (ref ? mode_by_name(ref) : M_RAW_ZC))
			b->ref = b->modes[i];
	if (ref && b->ref < 0)
		die("--ref: '%s' is not one of the modes run", ref);
	if (b->gso && (b->ntypes != 1 || b->types[0] != SOCK_DGRAM))
		die("--gso is for UDP alone (-t udp)");
	if (b->rx_netns && b->listen_only)
		die("--rx-netns and --listen do not go together");
	if (b->rx_netns && !b->address)
		die("--rx-netns needs the receiver's address there (-a)");
	if (b->nfamilies > 1 && b->address)
		die("-a: one address is of one family: give -4 or -6");
	if (b->csv && b->json && !strcmp(b->csv, "-") && !strcmp(b->json, "-"))
		die("--csv - and --json - cannot both go to stdout");
	/*
	 * zc_open() takes ZCNOTIFY_BACKEND over the backend a library mode
	 * asks for: every library mode's row would be that backend's,
	 * under the mode's name.
	 */
	for (int i = 0; !b->listen_only && i < b->nmodes; i++) {
		const char *env = getenv("ZCNOTIFY_BACKEND");

		if (modes[b->modes[i]].backend >= 0 && env && *env)
			die("ZCNOTIFY_BACKEND=\"%s\" would replace the backend of "
			    "mode %s (and of every library mode): unset it; "
			    "-m picks the backends", env,
			    modes[b->modes[i]].name);
	}
	if (!b->quiet && isatty(STDERR_FILENO))
		b->progress = true;
	if (b->quiet)
		b->progress = false;
}

/* ---- main --------------------------------------------------------------- */

static void add_result(struct bench *b, const struct result *x)
{
	if (b->nres == b->capres) {
		size_t cap = b->capres ? 2 * b->capres : 64;
		struct result *r = realloc(b->res, cap * sizeof(*r));

		if (!r)
			die("out of memory");
		b->res = r;
		b->capres = cap;
	}
	b->res[b->nres++] = *x;
}

/*
 * Raise RLIMIT_NOFILE, into *rl: both limits to at least, where the hard
 * limit is lower and the process may raise it (root: CAP_SYS_RESOURCE, up
 * to fs.nr_open), else the soft one to the hard. How many fds a library
 * mode takes per connection is part of what -c measures, so the bench
 * cannot size the limit exactly: it takes what it may.
 */
static void raise_nofile(struct rlimit *rl, rlim_t at_least)
{
	struct rlimit want;

	if (getrlimit(RLIMIT_NOFILE, rl)) {
		rl->rlim_cur = rl->rlim_max = RLIM_INFINITY;
		return;
	}
	want = (struct rlimit){ at_least, at_least };
	if (rl->rlim_max < at_least && !setrlimit(RLIMIT_NOFILE, &want)) {
		*rl = want;
		return;
	}
	want = (struct rlimit){ rl->rlim_max, rl->rlim_max };
	if (rl->rlim_cur < rl->rlim_max && !setrlimit(RLIMIT_NOFILE, &want))
		*rl = want;
}

/*
 * -c with more than one connection: raise the open-file limit, in the
 * sender and (inherited) in the local receiver, which needs a socket per
 * TCP connection too. Drop the counts whose sockets alone cannot fit.
 */
static void fit_conns(struct bench *b)
{
	struct rlimit rl;
	unsigned int most = 0;
	long open_now;
	int n = 0;

	for (int i = 0; i < b->nconns; i++)
		if (b->conns[i] > most)
			most = b->conns[i];
	if (most <= 1)
		return;
	/* Room for 4 fds a connection (uring outside a context: 3) and more. */
	raise_nofile(&rl, (rlim_t)most * 4 + 1024);
	open_now = fd_count();
	for (int i = 0; i < b->nconns; i++) {
		unsigned long long need = (unsigned long long)b->conns[i] +
			(open_now > 0 ? (unsigned long long)open_now : 0) +
			FD_SPARE;

		if (rl.rlim_cur == RLIM_INFINITY || need <= rl.rlim_cur) {
			b->conns[n++] = b->conns[i];
			continue;
		}
		fprintf(stderr, "zcbench: c=%u: skipped: %u connections need "
			"%llu open files, RLIMIT_NOFILE allows %llu (hard "
			"limit)\n", b->conns[i], b->conns[i], need,
			(unsigned long long)rl.rlim_cur);
	}
	b->nconns = n;
}

/* Same but for the connection count: one group of print_conns(). */
static bool same_group(const struct cfg *a, const struct cfg *b)
{
	struct cfg x = *b;

	x.conns = a->conns;
	return same_cfg(a, &x);
}

static int listen_main(struct bench *b)
{
	struct rlimit rl;
	struct rxshared sh = { 0 };
	int family = b->nfamilies ? b->families[0] : AF_INET;

	if (b->address && strchr(b->address, ':'))
		family = AF_INET6;
	if (!b->address)
		b->address = family == AF_INET ? "0.0.0.0" : "::";
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	/* A sender's -c may open thousands of connections. */
	raise_nofile(&rl, 0);
	printf("zcbench: receiving on %s port %u (TCP and UDP, %s); ^C "
	       "stops\n", b->address, b->port,
	       b->check ? "checking every byte" : "discarding the data");
	fflush(stdout);
	if (rx_serve(&sh, family, b->address, b->port, -1, -1, b->check)) {
		fprintf(stderr, "zcbench: %s\n", sh.err);
		return 1;
	}
	printf("zcbench: %llu bytes received\n",
	       (unsigned long long)atomic_load(&sh.bytes));
	if (b->check && atomic_load(&sh.bad)) {
		printf("zcbench: %llu of them were not the bytes sent\n",
		       (unsigned long long)atomic_load(&sh.bad));
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct bench b = { 0 };
	struct cfg *cfgs;
	bool runnable[M_NR], failed = false;
	/* -c: the smallest count at which a limit stopped the mode. */
	unsigned int limit_at[M_NR];
	int ncfg = 0, nrun = 0;
	size_t maxsize = 0;

	parse(&b, argc, argv);
	if (b.listen_only)
		return listen_main(&b);
	fit_conns(&b);
	if (b.conns_given) {
		/* Their own code paged in before they count anything. */
		rss_bytes();
		fd_count();
	}
	cfgs = calloc((size_t)(b.ntypes * b.nfamilies * b.nsizes * b.nks) *
		      (size_t)(b.nconns ? b.nconns : 1), sizeof(*cfgs));
	if (!cfgs)
		die("out of memory");
	/* Counts innermost: a group's tables and print_conns() together. */
	for (int t = 0; t < b.ntypes; t++)
		for (int f = 0; f < b.nfamilies; f++)
			for (int s = 0; s < b.nsizes; s++)
				for (int k = 0; k < b.nks; k++)
					for (int n = 0; n < b.nconns; n++)
						cfgs[ncfg++] = (struct cfg){
							.type = b.types[t],
							.family =
							b.families[f],
							.size = b.sizes[s],
							.k = b.ks[k],
							.conns = b.conns[n] };
	for (int s = 0; s < b.nsizes; s++)
		if (b.sizes[s] > maxsize)
			maxsize = b.sizes[s];
	/* One buffer for every send: its content does not matter here. */
	b.buflen = maxsize;
	b.buf = mmap(NULL, maxsize, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (b.buf == MAP_FAILED)
		die("mmap %zu bytes: %s", maxsize, strerror(errno));
	memset(b.buf, 0x5a, maxsize);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_signal);
	pin(b.cpu_tx, "sender");
	for (int i = 0; i < M_NR; i++) {
		runnable[i] = true;
		limit_at[i] = UINT_MAX;
	}
	b.runs_total = ncfg * b.rounds * b.nmodes;

	for (int fam = 0; fam < b.nfamilies; fam++) {
		/* A receiver per family: it binds an address of it. */
		if (!b.address || b.rx_netns)
			rx_start(&b, b.families[fam]);
		for (int j = 0; j < ncfg && !stop_now; j++) {
			if (cfgs[j].family != b.families[fam])
				continue;
			for (int round = 0; round < b.rounds && !stop_now;
			     round++) {
				size_t first = b.nres;

				for (int i = 0; i < b.nmodes && !stop_now;
				     i++) {
					int m = b.modes[i], ret;
					char why[256];
					struct result x;

					b.run_no++;
					if (!runnable[m] ||
					    cfgs[j].conns >= limit_at[m])
						continue;
					ret = run_one(&b, &cfgs[j], m, round, &x,
						      why, sizeof(why));
					if (ret == -EOPNOTSUPP) {
						if (b.progress)
							fputc('\n', stderr);
						fprintf(stderr, "zcbench: %s: "
							"skipped: %s\n",
							modes[m].name, why);
						runnable[m] = false;
						continue;
					}
					if (ret == RUN_LIMIT) {
						char name[16];

						if (b.progress)
							fputc('\n', stderr);
						fprintf(stderr, "zcbench: %s "
							"%s %zu B k=%u: c=%u "
							"skipped: %s; not "
							"tried again with %u "
							"connections or more\n",
							modes[m].name,
							cfg_name(&cfgs[j], name,
								 sizeof(name)),
							cfgs[j].size,
							cfgs[j].k,
							cfgs[j].conns, why,
							cfgs[j].conns);
						limit_at[m] = cfgs[j].conns;
						continue;
					}
					if (ret) {
						if (b.progress)
							fputc('\n', stderr);
						fprintf(stderr, "zcbench: %s "
							"%s %zu B: %s\n",
							modes[m].name,
							cfgs[j].type ==
							SOCK_STREAM ? "tcp" :
							"udp", cfgs[j].size,
							why);
						failed = true;
						continue;
					}
					add_result(&b, &x);
					nrun++;
				}
				round_ratios(&b, first);
			}
		}
		rx_stop(&b);
	}
	if (b.progress)
		fprintf(stderr, "\r%*s\r", 78, "");
	if (!nrun) {
		fprintf(stderr, "zcbench: no mode could run\n");
		free(cfgs);	/* LeakSanitizer would turn 77 into 1 */
		return failed ? 1 : EXIT_SKIP;
	}
	{
		FILE *out = (b.csv && !strcmp(b.csv, "-")) ||
			    (b.json && !strcmp(b.json, "-")) ? stderr : stdout;
		struct utsname u;

		uname(&u);
		fprintf(out, "zcbench: Linux %s, %s%s", u.release,
			b.address ? b.address : "loopback",
			b.rx_netns ? " (receiver in another netns)" : "");
		if (!b.address || b.rx_netns)	/* a local receiver */
			fprintf(out, ", receiver %s", b.check ?
				"checks every byte" : "discards (MSG_TRUNC)");
		if (b.gso)
			fprintf(out, ", UDP GSO %d", b.gso);
		fputc('\n', out);
		for (int j = 0; j < ncfg; j++) {
			print_table(&b, &cfgs[j], out);
			print_pairs(&b, &cfgs[j], out);
			if (b.conns_given && b.nconns > 1 &&
			    (j + 1 == ncfg || !same_group(&cfgs[j],
							  &cfgs[j + 1])))
				print_conns(&b, &cfgs[j], out);
		}
	}
	if (b.csv)
		write_csv(&b, cfgs, ncfg);
	if (b.json)
		write_json(&b, cfgs, ncfg);
	free(b.res);
	free(cfgs);
	munmap(b.buf, b.buflen);
	return failed || stop_now ? 1 : 0;
}
