// SPDX-License-Identifier: MIT
/*
 * epoll-server: stream one file to many TCP clients from one epoll loop,
 * zero-copy, with libzcnotify.
 *
 * Each connection owns a small pool of buffers. A chunk of the file is read
 * into a free buffer and sent with zc_send(); the buffer goes back to the
 * pool only when the completion of every send made from it has been reaped
 * (its cookie is the buffer's index). Until then the kernel may still read
 * its pages, so it must not be written.
 *
 *   epoll-server [-f file] [-6] [-b bufsize] [-p pool] [-m max_inflight]
 *                [-n clients] [-t clients] [-x]
 *
 *   -f  the file to serve (default: this program's own binary)
 *   -n  serve this many clients, then exit (default 0: forever); the
 *       server listens on 127.0.0.1 (::1 with -6) and prints the port
 *   -t  test mode: this many clients, which connect, read the whole file
 *       and check it byte by byte; exit 0 if every one got it all. They
 *       run in forked processes (one per 1000 clients, at most 16), each
 *       reading its connections from an epoll loop of its own
 *   -x  one context for all connections (zc_ctx_new(3)): its fd in the
 *       epoll set says when any of them has completions, and one
 *       zc_ctx_completions() reaps them all; no per-connection reaping.
 *       The loop then touches only the connections that have something
 *       to do: an event (room to send) or a buffer back from a completion,
 *       and sends their next chunks together, up to 64 in one
 *       zc_ctx_sendmmsg(3) (one io_uring_enter(2) for uring sockets)
 *
 * The file descriptor limit (RLIMIT_NOFILE) is raised to what the clients
 * need, up to the hard limit.
 *
 * Build: cc -o epoll-server epoll-server.c $(pkg-config --cflags --libs libzcnotify)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <zcnotify.h>

#define MAX_POOL	64
#define MAX_CLIENTS	100000
#define DRAIN_MS	5000	/* how long a finished connection may drain */
#define CLIENTS_PER_PROC 1000	/* test mode: connections per client process */
#define TEST_SECONDS	120	/* test mode: never hang a test run */

struct conn {
	int fd;
	struct zc_sock *zs;
	off_t next;			/* next file offset to read */
	int cur;			/* buffer being sent, or -1 */
	size_t pos, len;		/* ... bytes sent of len */
	bool queued;			/* on the run queue, or finishing */
	unsigned int idx;		/* in conns[] */
	unsigned int nfree;
	unsigned int free[MAX_POOL];	/* stack of free buffers */
	unsigned int refs[MAX_POOL];	/* unreaped sends per buffer */
	char *buf[MAX_POOL];
};

static int file_fd;
static off_t file_size;
static size_t buf_size = 16384;
static unsigned int pool = 8, max_inflight = 16;
static struct zc_ctx *ctx;	/* -x: every connection's completions */
/* The library's work for the closed connections: sends, syscalls. */
static uint64_t lib_sends, lib_syscalls;
/* Connections to pump, each once (conn.queued): a stack. */
static struct conn **runq;
static unsigned int nrun;

static void run(struct conn *c)
{
	if (!c->queued) {
		c->queued = true;
		runq[nrun++] = c;
	}
}

static void warn_zc(const char *what, long err)
{
	fprintf(stderr, "epoll-server: %s: %s (%s)\n", what, strerror((int)-err),
		zc_last_error());
}

/* A send from buffer b of c is complete: the kernel is done with it. */
static void put_buf(struct conn *c, unsigned int b)
{
	if (--c->refs[b] == 0 && (int)b != c->cur)
		c->free[c->nfree++] = b;
}

/*
 * Put back the buffers whose sends are complete. Returns the count or
 * -errno. With a context (-x) the context reaps, for every connection.
 */
static int reap(struct conn *c)
{
	struct zc_completion comp[32];
	int n;

	if (ctx)
		return 0;
	n = zc_completions(c->zs, comp, 32);
	for (int i = 0; i < n; i++)
		put_buf(c, (unsigned int)comp[i].cookie);
	return n;
}

/* -x: hand each completion to its connection (the tag). */
static void ctx_dispatch(const struct zc_ctx_completion *cc, int n)
{
	for (int i = 0; i < n; i++) {
		struct conn *c = (struct conn *)(uintptr_t)cc[i].tag;

		if (cc[i].flags & ZC_CTX_ERROR) {
			warn_zc("reaping a connection", cc[i].error);
			continue;
		}
		/* A buffer may be free again: pump the connection. */
		put_buf(c, (unsigned int)cc[i].cookie);
		run(c);
	}
}

/* -x: reap what every connection has. Returns 0 or -errno. */
static int ctx_reap(void)
{
	struct zc_ctx_completion cc[64];
	int n;

	do {
		n = zc_ctx_completions(ctx, cc, 64);
		if (n < 0)
			return n;
		ctx_dispatch(cc, n);
	} while (n == 64);
	return 0;
}

static void conn_free(struct conn *c)
{
	for (unsigned int i = 0; i < pool; i++)
		free(c->buf[i]);
	free(c);
}

/* Before zc_close(): what zs cost, into the totals. */
static void account(const struct zc_sock *zs)
{
	struct zc_stats st = { .sz = sizeof(st) };

	if (!zc_get_stats(zs, &st)) {
		lib_sends += st.sends;
		lib_syscalls += st.syscalls;
	}
}

/*
 * The connection is done (sent all, or failed): wait for the completions
 * still out, then zc_close() and close(). A busy server would rather keep
 * the connection in its loop until zc_inflight() is 0; over a LAN this
 * takes about one round trip.
 */
static int conn_finish(int ep, struct conn *c, int ret)
{
	struct zc_completion comp[32];
	int n;

	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	shutdown(c->fd, SHUT_WR);
	while (zc_inflight(c->zs)) {
		if (ctx) {	/* the others' completions come too */
			struct zc_ctx_completion cc[64];

			n = zc_ctx_wait(ctx, cc, 64, DRAIN_MS);
			if (n > 0)
				ctx_dispatch(cc, n);
		} else {
			n = zc_wait(c->zs, comp, 32, DRAIN_MS);
		}
		if (n <= 0) {
			/* The kernel may still read the buffers: leak them. */
			fprintf(stderr, "epoll-server: %u sends never completed\n",
				zc_inflight(c->zs));
			zc_close(c->zs);
			close(c->fd);
			return -1;
		}
	}
	account(c->zs);
	zc_close(c->zs);
	close(c->fd);
	conn_free(c);
	return ret;
}

/*
 * The bytes c sends next: c->cur, from pos to len, read into a free
 * buffer if none is being sent. Returns 1 when there are some, 0 when
 * every buffer is in flight (wait for a completion), 2 when the whole
 * file is sent, -1 on an error.
 */
static int next_chunk(struct conn *c)
{
	ssize_t n;

	if (c->cur >= 0)
		return 1;
	if (c->next >= file_size)
		return 2;
	if (!c->nfree)
		return 0;	/* every buffer in flight: wait */
	c->cur = (int)c->free[--c->nfree];
	n = pread(file_fd, c->buf[c->cur], buf_size, c->next);
	if (n <= 0) {
		perror("epoll-server: pread");
		return -1;
	}
	c->next += n;
	c->pos = 0;
	c->len = (size_t)n;
	return 1;
}

/* A send from c->cur accepted n bytes. */
static void sent(struct conn *c, size_t n)
{
	c->refs[c->cur]++;
	c->pos += n;
	if (c->pos == c->len) {
		/* Sent; the buffer comes back with its completions. */
		if (c->refs[c->cur] == 0)
			c->free[c->nfree++] = (unsigned int)c->cur;
		c->cur = -1;
	}
}

/*
 * Send as much as the socket takes. Returns 1 when the whole file is sent,
 * 0 to be called again later, -1 on an error.
 */
static int pump(struct conn *c)
{
	int ret = reap(c);

	if (ret < 0) {
		warn_zc("zc_completions", ret);
		return -1;
	}
	for (;;) {
		ssize_t n;

		ret = next_chunk(c);
		if (ret != 1)
			return ret == 2 ? 1 : ret;
		n = zc_send(c->zs, c->buf[c->cur] + c->pos, c->len - c->pos,
			    MSG_NOSIGNAL, (uint64_t)c->cur);
		if (n == -EAGAIN || n == -EWOULDBLOCK)
			return 0;	/* full: EPOLLOUT's edge says when not */
		if (n == -ENOBUFS) {
			/*
			 * max_inflight sends unreaped (nothing was sent), or
			 * the kernel is short of memory: reap, retry later.
			 */
			ret = reap(c);
			if (ret < 0) {
				warn_zc("zc_completions", ret);
				return -1;
			}
			if (ret == 0)
				return 0;	/* try again on the next round */
			continue;
		}
		if (n < 0) {
			warn_zc("zc_send", n);
			return -1;
		}
		sent(c, (size_t)n);
	}
}

#define BATCH	64

/*
 * -x: the next send of up to BATCH connections of the run queue, in one
 * zc_ctx_sendmmsg() (uring members: one io_uring_enter() for all). A
 * connection that sent goes back on the queue for its next chunk; one
 * that would block waits for EPOLLOUT, one whose sends are all unreaped
 * for a completion (ctx_dispatch() runs it). done[] (BATCH entries) gets
 * those that finished, queued set so that nothing runs them again, with
 * fin[] 1 (sent all) or -1 (failed). At most BATCH connections leave the
 * queue per call, whether they send or finish, so done[] cannot overflow.
 */
static void pump_batch(struct conn **done, int *fin, unsigned int *ndone)
{
	static struct zc_ctx_send v[BATCH];
	static struct conn *vc[BATCH];
	static struct iovec iov[BATCH];
	static struct msghdr msg[BATCH];
	unsigned int n = 0;

	*ndone = 0;
	while (nrun && n + *ndone < BATCH) {
		struct conn *c = runq[--nrun];
		int r;

		c->queued = false;
		r = next_chunk(c);
		if (r == 0)
			continue;
		if (r != 1) {
			c->queued = true;	/* finishing: no run() */
			done[*ndone] = c;
			fin[(*ndone)++] = r == 2 ? 1 : -1;
			continue;
		}
		iov[n] = (struct iovec){ c->buf[c->cur] + c->pos,
					 c->len - c->pos };
		msg[n] = (struct msghdr){ .msg_iov = &iov[n], .msg_iovlen = 1 };
		v[n] = (struct zc_ctx_send){ .zs = c->zs, .msg = &msg[n],
					     .flags = MSG_NOSIGNAL,
					     .cookie = (uint64_t)c->cur };
		vc[n++] = c;
	}
	if (n && zc_ctx_sendmmsg(ctx, v, n) < 0)
		return;		/* cannot happen: ctx and v are set */
	for (unsigned int i = 0; i < n; i++) {
		struct conn *c = vc[i];
		ssize_t r = v[i].result;

		if (r >= 0) {
			sent(c, (size_t)r);
			run(c);			/* its next chunk */
		} else if (r != -EAGAIN && r != -ENOBUFS) {
			warn_zc("zc_ctx_sendmmsg", r);
			c->queued = true;
			done[*ndone] = c;
			fin[(*ndone)++] = -1;
		}
		/*
		 * -EAGAIN: EPOLLOUT's edge runs it. -ENOBUFS: max_inflight
		 * sends unreaped, or the kernel short of memory: a
		 * completion runs it.
		 */
	}
}

static struct conn *conn_new(int ep, int fd)
{
	struct zc_opts opts = { .sz = sizeof(opts), .max_inflight = max_inflight,
				.ctx = ctx };
	/*
	 * Edge-triggered: an event when the socket gets room again after a
	 * send found it full (EPOLLOUT), or has news in its error queue
	 * (EPOLLERR, without a context); nothing to re-arm.
	 */
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLET };
	struct conn *c = calloc(1, sizeof(*c));
	int ret;

	if (!c)
		return NULL;
	c->fd = fd;
	c->cur = -1;
	for (unsigned int i = 0; i < pool; i++) {
		c->buf[i] = malloc(buf_size);
		if (!c->buf[i])
			goto fail;
		c->free[c->nfree++] = i;
	}
	/* The socket is non-blocking: zc_send() returns -EAGAIN when full. */
	opts.tag = (uintptr_t)c;	/* -x: whose completion it is */
	ret = zc_open(fd, &opts, &c->zs);
	if (ret == -EOPNOTSUPP) {	/* e.g. ZCNOTIFY_BACKEND=scm, no support */
		fprintf(stderr, "epoll-server: skipped: %s\n", zc_last_error());
		exit(77);
	}
	if (ret) {
		warn_zc("zc_open", ret);
		goto fail;
	}
	ev.data.ptr = c;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev)) {
		perror("epoll-server: epoll_ctl");
		zc_close(c->zs);
		goto fail;
	}
	return c;
fail:
	conn_free(c);
	return NULL;
}

/*
 * A client process of the test mode: open n connections, read each to the
 * end from one epoll loop, compare every byte with the file. Returns 0 if
 * every connection got it all.
 */
static int client(const struct sockaddr_storage *ss, socklen_t len,
		  unsigned int n)
{
	struct cli { int fd; off_t off; } *cl = calloc(n, sizeof(*cl));
	char *want = malloc(buf_size), *got = malloc(buf_size);
	int ep = epoll_create1(EPOLL_CLOEXEC), bad = 0;
	unsigned int left = n;

	if (!cl || !want || !got || ep < 0) {
		perror("client");
		return 1;
	}
	for (unsigned int i = 0; i < n; i++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = i };
		int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

		/* Blocking connect: the server accepts as it goes. */
		if (fd < 0 || connect(fd, (const struct sockaddr *)ss, len) ||
		    fcntl(fd, F_SETFL, O_NONBLOCK) ||
		    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev)) {
			perror("client: connect");
			return 1;
		}
		cl[i].fd = fd;
	}
	while (left) {
		struct epoll_event evs[64];
		int ne = epoll_wait(ep, evs, 64, -1);

		if (ne < 0 && errno != EINTR) {
			perror("client: epoll_wait");
			return 1;
		}
		for (int e = 0; e < ne; e++) {
			struct cli *c = &cl[evs[e].data.u32];
			ssize_t r;

			while ((r = recv(c->fd, got, buf_size, 0)) > 0) {
				if (pread(file_fd, want, (size_t)r, c->off) != r ||
				    memcmp(want, got, (size_t)r)) {
					fprintf(stderr, "client: wrong data at "
						"offset %lld (a buffer reused "
						"too early?)\n",
						(long long)c->off);
					return 1;
				}
				c->off += r;
			}
			if (r < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (r < 0 || c->off != file_size) {
				fprintf(stderr, "client: got %lld of %lld bytes"
					" (%s)\n", (long long)c->off,
					(long long)file_size,
					r < 0 ? strerror(errno) : "EOF");
				bad++;
			}
			close(c->fd);
			left--;
		}
	}
	return bad ? 1 : 0;
}

/*
 * Room for want file descriptors: raise the soft limit, up to the hard
 * one. Returns 0, or -1 if the hard limit is too low.
 */
static int want_fds(rlim_t want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return -1;
	if (rl.rlim_cur >= want)
		return 0;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want)
		return -1;
	rl.rlim_cur = want;
	return setrlimit(RLIMIT_NOFILE, &rl);
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
	const char *path = "/proc/self/exe";
	unsigned int clients = 0, served = 0, active = 0, failed = 0, test = 0;
	unsigned int procs = 0, cap;
	struct sockaddr_storage ss = { 0 };
	socklen_t sslen;
	struct stat st;
	struct conn **conns;
	unsigned int nconns = 0;
	bool v6 = false;
	int opt, lfd, ep;

	while ((opt = getopt(argc, argv, "f:6b:p:m:n:t:x")) != -1) {
		switch (opt) {
		case 'f': path = optarg; break;
		case '6': v6 = true; break;
		case 'b': buf_size = num(opt, optarg, 1ul << 30); break;
		case 'p': pool = (unsigned int)num(opt, optarg, UINT_MAX); break;
		case 'm': max_inflight = (unsigned int)num(opt, optarg, UINT_MAX); break;
		case 'n': clients = (unsigned int)num(opt, optarg, UINT_MAX); break;
		case 't': clients = test = (unsigned int)num(opt, optarg, UINT_MAX); break;
		case 'x':
			if (!ctx && (opt = zc_ctx_new(NULL, &ctx))) {
				warn_zc("zc_ctx_new", opt);
				return 1;
			}
			break;
		default:
			fprintf(stderr, "usage: %s [-f file] [-6] [-b bufsize] "
				"[-p pool] [-m max_inflight] [-n clients] "
				"[-t clients] [-x]\n", argv[0]);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "epoll-server: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (!buf_size || !pool || pool > MAX_POOL || clients > MAX_CLIENTS) {
		fprintf(stderr, "epoll-server: bad -b, -p or -n/-t (at most "
			"%u clients)\n", MAX_CLIENTS);
		return 2;
	}
	/* Serving for ever: up to 1024 connections at a time. */
	cap = clients ? clients : 1024;
	conns = calloc(cap, sizeof(*conns));
	runq = calloc(cap, sizeof(*runq));
	if (!conns || !runq) {
		perror("epoll-server");
		return 1;
	}
	/* The server's connections (each client process has fewer). */
	if (want_fds((rlim_t)cap + 64)) {
		fprintf(stderr, "epoll-server: %s: RLIMIT_NOFILE's hard limit is "
			"below the %u file descriptors %u clients need\n",
			test ? "skipped" : "error", cap + 64, cap);
		return test ? 77 : 1;
	}
	file_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (file_fd < 0 || fstat(file_fd, &st)) {
		perror(path);
		return 1;
	}
	file_size = st.st_size;

	/* Listen on loopback, on a port the kernel picks. */
	if (v6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		a->sin6_family = AF_INET6;
		a->sin6_addr = in6addr_loopback;
		sslen = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		a->sin_family = AF_INET;
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sslen = sizeof(*a);
	}
	lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&ss, sslen) ||
	    listen(lfd, SOMAXCONN) ||
	    getsockname(lfd, (struct sockaddr *)&ss, &sslen)) {
		perror("epoll-server: listen");
		return 1;
	}
	printf("epoll-server: serving %s (%lld bytes) on port %u\n", path,
	       (long long)file_size, ntohs(((struct sockaddr_in *)&ss)->sin_port));
	fflush(stdout);

	/* Test mode: the clients, CLIENTS_PER_PROC per process, <= 16. */
	procs = (test + CLIENTS_PER_PROC - 1) / CLIENTS_PER_PROC;
	if (procs > 16)
		procs = 16;
	for (unsigned int p = 0; p < procs; p++) {
		pid_t pid = fork();

		if (pid < 0) {
			perror("fork");
			return 1;
		}
		if (pid == 0) {
			alarm(TEST_SECONDS);
			_exit(client(&ss, sslen, test / procs +
				     (p < test % procs)));
		}
	}
	if (test)
		alarm(TEST_SECONDS);

	ep = epoll_create1(EPOLL_CLOEXEC);
	{
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };

		if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev)) {
			perror("epoll-server: epoll");
			return 1;
		}
		/* -x: one fd for the completions of every connection. */
		ev.data.ptr = &ctx;
		if (ctx && epoll_ctl(ep, EPOLL_CTL_ADD, zc_ctx_fd(ctx), &ev)) {
			perror("epoll-server: epoll_ctl(zc_ctx_fd)");
			return 1;
		}
	}

	while (!clients || served < clients || active) {
		struct epoll_event evs[64];
		/*
		 * With sends in flight, come back soon to reap them; with a
		 * context, its fd says when.
		 */
		int n = epoll_wait(ep, evs, 64, active && !ctx ? 10 : -1);

		if (n < 0 && errno != EINTR) {
			perror("epoll_wait");
			return 1;
		}
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;

			if ((void *)c == &ctx) {	/* -x: completions */
				int r = ctx_reap();

				if (r < 0) {
					warn_zc("zc_ctx_completions", r);
					return 1;
				}
				continue;
			}
			if (c) {
				run(c);		/* room, or (no -x) news */
				continue;
			}
			for (;;) {
				int fd = accept4(lfd, NULL, NULL,
						 SOCK_NONBLOCK | SOCK_CLOEXEC);

				if (fd < 0)
					break;
				if (nconns == cap || !(c = conn_new(ep, fd))) {
					close(fd);
					continue;
				}
				c->idx = nconns;
				conns[nconns++] = c;
				run(c);
				active++;
				served++;
			}
		}
		/*
		 * Without a context, pump every connection: the uring
		 * backend's completions come without an event, so reap
		 * regularly whatever the events were. With one, the run
		 * queue holds what has something to do.
		 */
		if (!ctx) {
			for (unsigned int i = 0; i < nconns; i++)
				run(conns[i]);
		}
		while (nrun) {
			struct conn *fin[BATCH];
			int res[BATCH];
			unsigned int nfin = 0;

			if (ctx) {
				pump_batch(fin, res, &nfin);
			} else {
				fin[0] = runq[--nrun];
				fin[0]->queued = false;
				res[0] = pump(fin[0]);
				nfin = res[0] != 0;
			}
			for (unsigned int i = 0; i < nfin; i++) {
				struct conn *c = fin[i];

				/*
				 * Its completions may still come: no run()
				 * (nor for the others of fin[]: queued set).
				 */
				c->queued = true;
				conns[c->idx] = conns[--nconns];
				conns[c->idx]->idx = c->idx;
				if (conn_finish(ep, c, res[i] > 0 ? 0 : -1))
					failed++;
				active--;
			}
		}
	}

	for (unsigned int i = 0; i < procs; i++) {
		int status;

		if (wait(&status) < 0 || !WIFEXITED(status) ||
		    WEXITSTATUS(status)) {
			fprintf(stderr, "epoll-server: a client failed\n");
			failed++;
		}
	}
	printf("epoll-server: %u clients served, %u failed\n", served, failed);
	if (ctx) {	/* and the context's own: its epoll_wait() each reap */
		struct zc_ctx_stats cs = { .sz = sizeof(cs) };

		if (!zc_ctx_get_stats(ctx, &cs))
			lib_syscalls += cs.syscalls;
	}
	if (lib_sends)
		printf("epoll-server: %llu sends, %.2f system calls a send\n",
		       (unsigned long long)lib_sends,
		       (double)lib_syscalls / (double)lib_sends);
	if (zc_ctx_free(ctx))	/* every connection closed: 0 */
		failed++;
	free(conns);
	free(runq);
	close(ep);
	close(lfd);
	return failed ? 1 : 0;
}
