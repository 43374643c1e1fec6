// SPDX-License-Identifier: MIT
/*
 * Contexts (zc_ctx_new(3)) on real sockets over loopback, public API only:
 *
 *   join       members reaped through the context alone, tag and zs in
 *              every record, -EINVAL from zc_completions()/zc_wait() on a
 *              member, -EBUSY from zc_ctx_free() while members remain
 *   leave      zc_ctx_del() with sends in flight: zc_wait() reaps them
 *   ready      zc_ctx_fd() readable when there is news, not otherwise
 *              (idle, all reaped, a socket closed with a dup of its fd)
 *   queue      an errqueue member with several records queued (ICMP
 *              errors among the completions), read one an edge: each
 *              completion once, in order, the errors from zc_foreign()
 *   many       2000 UDP sockets (fewer if RLIMIT_NOFILE says so), sends in
 *              flight on each, some copied: every cookie exactly once, each
 *              socket's in send order; then closed with sends in flight
 *   sendmmsg   zc_ctx_sendmmsg(): bad arguments and entries, then rounds
 *              of sends on TCP and UDP members, some sockets twice a
 *              round: bytes at the peers in order, cookies once; on the
 *              context's ring, a round in a few syscalls
 *   quiet      a send that took an id makes its one syscall; an scm
 *              send whose harvest took records writes the eventfd too
 *   threads    one thread sends on members, one reaps through the
 *              context, one opens, sends on and closes members of its own
 *              while the reaper reaps (run it under TSan too)
 *   uring-fds  500 TCP uring members (fewer if RLIMIT_NOFILE says so): no
 *              fd each (the context's one ring), every cookie once
 *   uring-close a uring member closed with notifications to come while
 *              others send: nothing of it reaches them, nor a new member
 *   uring-full a small shared CQ (ZCNOTIFY_URING_CTX_CQ): sends beyond it
 *              are copied, and all complete once
 *   uring-fixed zc_ctx_register_buffers(): sends inside, outside and
 *              across registered buffers, the bytes checked at the peer
 *   uring-threads three senders on uring members of their own (one with
 *              zc_ctx_sendmmsg()), one reaper (run it under TSan too)
 *   uring-done zc_ctx_sendmmsg() on UDP members, whose sends complete in
 *              their batch (done entries of the forward ring), with a TCP
 *              member whose notifications wait, zc_send() between the
 *              batches and reaps of 1 to 64 records: every cookie once,
 *              each socket's in send order, zc_inflight() exact; then a
 *              member closed, and one taken out (zc_ctx_del()), with done
 *              entries still forwarded (run it under ASan too)
 *   uring-done-limit a member's done entries count against max_inflight
 *              (zc_inflight(), -ENOBUFS past it), go back in its ring on
 *              zc_ctx_del() and are counted in its stats as they were
 *
 * Usage: test-ctx [join|leave|ready|many|threads|uring-*]... (none: all
 * but threads and uring-*). ZCNOTIFY_BACKEND applies, as everywhere.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "zcnotify.h"
#include "testutil.h"

#define MSG	4096
static unsigned char payload[MSG];

/* Every send of one byte or more through a kernel id (when it can). */
static int open_member(int fd, struct zc_ctx *ctx, uint64_t tag, int backend,
		       struct zc_sock **zs)
{
	struct zc_opts o = {
		.sz = sizeof(o), .backend = backend, .copy_below = 1,
		.flags = ZC_OPT_NO_ADAPT, .ctx = ctx, .tag = tag,
	};

	return zc_open(fd, &o, zs);
}

static bool readable(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN);
}

/* Reap through ctx until want records came; check order by cookie. */
static void reap_expect(struct zc_ctx *ctx, struct zc_sock *zs, uint64_t tag,
			uint64_t first, unsigned int want)
{
	struct zc_ctx_completion c[16];
	unsigned int got = 0;

	while (got < want) {
		int n = zc_ctx_wait(ctx, c, 16, 5000);

		assert_true(n > 0);
		for (int i = 0; i < n; i++) {
			assert_ptr_equal(c[i].zs, zs);
			assert_int_equal(c[i].tag, tag);
			assert_int_equal(c[i].flags & ZC_CTX_ERROR, 0);
			assert_int_equal(c[i].error, 0);
			assert_int_equal(c[i].cookie, first + got);
			assert_int_equal(c[i].bytes, MSG);
			got++;
		}
	}
	assert_int_equal(got, want);
}

/*
 * Records of members tagged 0..n-1 whose cookies are tag << 8 | k, each
 * member's k in send order (next[tag]): check a batch, count it.
 */
static unsigned int expect_in_order(const struct zc_ctx_completion *c, int r,
				    struct zc_sock *const *zs, unsigned int n,
				    unsigned int *next)
{
	for (int j = 0; j < r; j++) {
		unsigned int i = (unsigned int)c[j].tag;

		assert_true(i < n);
		assert_int_equal(c[j].flags & ZC_CTX_ERROR, 0);
		assert_ptr_equal(c[j].zs, zs[i]);
		assert_int_equal(c[j].cookie, (uint64_t)i << 8 | next[i]);
		next[i]++;
	}
	return (unsigned int)r;
}

static void test_join(void **state)
{
	struct zc_completion one;
	struct zc_ctx *ctx;
	struct zc_sock *zs;
	int tx, rx;
	char sink[65536];

	(void)state;
	assert_int_equal(zc_ctx_new(NULL, &ctx), 0);
	assert_true(zc_ctx_fd(ctx) >= 0);
	assert_int_equal(loopback_pair(AF_INET, SOCK_STREAM, &tx, &rx, NULL,
				       NULL), 0);
	assert_int_equal(open_member(tx, ctx, 42, 0, &zs), 0);
	assert_int_equal(zc_completions(zs, &one, 1), -EINVAL);
	assert_int_equal(zc_wait(zs, &one, 1, 0), -EINVAL);
	/* max 0 too, as zc_wait() does: a member is never reaped so. */
	assert_int_equal(zc_completions(zs, &one, 0), -EINVAL);
	assert_int_equal(zc_completions(zs, NULL, 0), -EINVAL);
	assert_int_equal(zc_wait(zs, NULL, 0, 0), -EINVAL);
	/* Named for the call made (zc_ctx_completions up to 46113ca). */
	assert_int_equal(zc_ctx_wait(NULL, (struct zc_ctx_completion[1]){ 0 }, 1, 0),
			 -EINVAL);
	assert_int_equal(strncmp(zc_last_error(), "zc_ctx_wait: ", 13), 0);
	assert_int_equal(zc_ctx_wait(ctx, NULL, 1, 0), -EINVAL);
	assert_int_equal(strncmp(zc_last_error(), "zc_ctx_wait: ", 13), 0);
	assert_int_equal(zc_ctx_free(ctx), -EBUSY);
	for (int i = 0; i < 8; i++)
		assert_int_equal(zc_send(zs, payload, MSG, 0, 100 + i), MSG);
	reap_expect(ctx, zs, 42, 100, 8);
	assert_int_equal(zc_inflight(zs), 0);
	while (recv(rx, sink, sizeof(sink), MSG_DONTWAIT) > 0)
		;
	zc_close(zs);
	assert_int_equal(zc_ctx_free(ctx), 0);
	assert_int_equal(zc_ctx_free(NULL), 0);
	close(tx);
	close(rx);
}

/*
 * zc_ctx_get_stats(): the context's members, and its own syscalls, which
 * no member counts: each zc_ctx_completions() asks epoll_wait(2) (one at
 * least), a join and a leave each change the epoll set (one epoll_ctl).
 * The members' stats do not grow with the context's reaps.
 */
static void test_stats(void **state)
{
	struct zc_ctx_stats st = { .sz = sizeof(st) }, st2;
	struct zc_stats ms = { .sz = sizeof(ms) };
	struct zc_ctx_completion c[4];
	struct zc_ctx *ctx;
	struct zc_sock *zs;
	uint64_t before, member;
	int tx, rx;

	(void)state;
	assert_int_equal(zc_ctx_new(NULL, &ctx), 0);
	assert_int_equal(zc_ctx_get_stats(ctx, &st), 0);
	assert_int_equal(st.sz, sizeof(st));
	assert_int_equal(st.members, 0);
	assert_true(st.syscalls >= 1);	/* its epoll set and eventfd */
	before = st.syscalls;
	assert_int_equal(loopback_pair(AF_INET, SOCK_STREAM, &tx, &rx, NULL,
				       NULL), 0);
	assert_int_equal(open_member(tx, ctx, 1, ZC_BACKEND_ERRQUEUE, &zs), 0);
	assert_int_equal(zc_ctx_get_stats(ctx, &st), 0);
	assert_int_equal(st.members, 1);
	assert_int_equal(st.syscalls, before + 1);	/* epoll_ctl() */
	assert_int_equal(zc_get_stats(zs, &ms), 0);
	member = ms.syscalls;
	before = st.syscalls;
	for (int i = 0; i < 10; i++)
		assert_int_equal(zc_ctx_completions(ctx, c, 4), 0);
	assert_int_equal(zc_ctx_get_stats(ctx, &st), 0);
	assert_true(st.syscalls >= before + 10);
	assert_int_equal(zc_get_stats(zs, &ms), 0);
	assert_int_equal(ms.syscalls, member);
	/* An older caller's struct: only the fields it knows. */
	memset(&st2, 0xa5, sizeof(st2));
	st2.sz = offsetof(struct zc_ctx_stats, members);
	assert_int_equal(zc_ctx_get_stats(ctx, &st2), 0);
	assert_int_equal(st2.syscalls, st.syscalls);
	assert_int_equal(st2.members, 0xa5a5a5a5);
	st2.sz = 1;
	assert_int_equal(zc_ctx_get_stats(ctx, &st2), -EINVAL);
	assert_non_null(strstr(zc_last_error(), "st->sz"));
	assert_int_equal(zc_ctx_get_stats(NULL, &st), -EINVAL);
	assert_int_equal(zc_ctx_get_stats(ctx, NULL), -EINVAL);
	before = st.syscalls;
	zc_close(zs);
	assert_int_equal(zc_ctx_get_stats(ctx, &st), 0);
	assert_int_equal(st.members, 0);
	assert_true(st.syscalls >= before + 1);	/* epoll_ctl() */
	assert_int_equal(zc_ctx_free(ctx), 0);
	close(tx);
	close(rx);
}

/* The member's own syscalls (zc_get_stats()). */
static uint64_t member_syscalls(struct zc_sock *zs)
{
	struct zc_stats st = { .sz = sizeof(st) };

	assert_int_equal(zc_get_stats(zs, &st), 0);
	return st.syscalls;
}

/*
 * quiet: a member's send that took a kernel id is no news (its record
 * raises EPOLLERR): it makes its syscall and no other, no write of the
 * context's eventfd. An scm member's send whose harvest took records
 * from the kernel is news (they raise no event any more): it wakes the
 * reaper, once, and they come, in order. errqueue and scm (UDP: the
 * record queued before the send returns); any other backend skips.
 */
static void test_quiet(void **state)
{
	struct zc_opts o = {
		.sz = sizeof(o), .copy_below = 1, .flags = ZC_OPT_NO_ADAPT,
		.harvest_every = 1, .tag = 7,
	};
	struct zc_ctx *ctx;
	struct zc_sock *zs;
	uint64_t s0;
	int tx, rx, b;

	(void)state;
	assert_int_equal(zc_ctx_new(NULL, &ctx), 0);
	o.ctx = ctx;
	assert_int_equal(loopback_pair(AF_INET, SOCK_DGRAM, &tx, &rx, NULL,
				       NULL), 0);
	assert_int_equal(zc_open(tx, &o, &zs), 0);
	b = zc_backend(zs);
	if (b != ZC_BACKEND_ERRQUEUE && b != ZC_BACKEND_SCM) {
		zc_close(zs);
		zc_ctx_free(ctx);
		close(tx);
		close(rx);
		skip();
	}
	/* Sends reaped one by one: the first ones set up (scm's buffer). */
	for (uint64_t i = 0; i < 4; i++) {
		assert_int_equal(zc_send(zs, payload, MSG, 0, i), MSG);
		reap_expect(ctx, zs, 7, i, 1);
	}
	for (uint64_t i = 4; i < 20; i += 2) {
		/* Nothing left to harvest: the send alone. */
		s0 = member_syscalls(zs);
		assert_int_equal(zc_send(zs, payload, MSG, 0, i), MSG);
		assert_int_equal(member_syscalls(zs) - s0, 1);
		/*
		 * Its record still queued: scm's next send takes it (and
		 * writes the eventfd); errqueue's does not.
		 */
		s0 = member_syscalls(zs);
		assert_int_equal(zc_send(zs, payload, MSG, 0, i + 1), MSG);
		assert_int_equal(member_syscalls(zs) - s0,
				 b == ZC_BACKEND_SCM ? 2 : 1);
		assert_true(readable(zc_ctx_fd(ctx), 5000));
		reap_expect(ctx, zs, 7, i, 2);
	}
	assert_int_equal(zc_inflight(zs), 0);
	zc_close(zs);
	assert_int_equal(zc_ctx_free(ctx), 0);
	close(tx);
	close(rx);
}

static void test_leave(void **state)
{
	struct zc_completion c[16];
	struct zc_ctx *ctx, *other;
	struct zc_sock *zs;
	unsigned int got = 0;
	int tx, rx;

	(void)state;
	assert_int_equal(zc_ctx_new(NULL, &ctx), 0);
	assert_int_equal(zc_ctx_new(NULL, &other), 0);
	assert_int_equal(loopback_pair(AF_INET6, SOCK_STREAM, &tx, &rx, NULL,
				       NULL), 0);
	assert_int_equal(open_member(tx, ctx, 7, 0, &zs), 0);
	for (int i = 0; i < 8; i++)
		assert_int_equal(zc_send(zs, payload, MSG, 0, i), MSG);
	assert_int_equal(zc_ctx_del(other, zs), -EINVAL);
	if (zc_backend(zs) == ZC_BACKEND_URING) {
		/*
		 * Its own ring cannot be made (the setting is read then):
		 * it stays, as it was. Up to cddefaa the failure freed the
		 * member's state, and zc_close() freed it again.
		 */
		setenv("ZCNOTIFY_URING_USAGE", "bogus", 1);
		assert_int_equal(zc_ctx_del(ctx, zs), -EINVAL);
		unsetenv("ZCNOTIFY_URING_USAGE");
		assert_int_equal(zc_completions(zs, c, 16), -EINVAL);
		assert_int_equal(zc_send(zs, payload, MSG, 0, 8), MSG);
		assert_int_equal(zc_ctx_free(ctx), -EBUSY);
	}
	assert_int_equal(zc_ctx_del(ctx, zs), 0);
	assert_int_equal(zc_ctx_del(ctx, zs), -EINVAL);
	assert_int_equal(zc_ctx_free(ctx), 0);
	/* A socket of its own again: its completions come to zc_wait(). */
	while (got < (zc_backend(zs) == ZC_BACKEND_URING ? 9u : 8u)) {
		int n = zc_wait(zs, c, 16, 5000);

		assert_true(n > 0);
		for (int i = 0; i < n; i++)
			assert_int_equal(c[i].cookie, got++);
	}
	zc_close(zs);
	assert_int_equal(zc_ctx_free(other), 0);
	close(tx);
	close(rx);
}

/*
 * A member whose fd the caller closed before zc_close(), its number a new
 * member's since: closing the first leaves the second in the context's
 * epoll set. Up to 5c74c76 it took the number's registration out, the
 * second's, whose completions then never came (errqueue, scm).
 */
static void test_fd_reuse(void **state)
{
	struct zc_ctx *ctx;
	struct zc_sock *a, *b;
	int txa, rxa, txb, rxb;

	(void)state;
	assert_int_equal(zc_ctx_new(NULL, &ctx), 0);
	assert_int_equal(loopback_pair(AF_INET, SOCK_STREAM, &txa, &rxa, NULL,
				       NULL), 0);
	assert_int_equal(loopback_pair(AF_INET, SOCK_STREAM, &txb, &rxb, NULL,
				       NULL), 0);
	assert_int_equal(open_member(txa, ctx, 1, 0, &a), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(zc_send(a, payload, MSG, 0, i), MSG);
	reap_expect(ctx, a, 1, 0, 4);
	/* Behind the library's back; then b's socket at a's number. */
	close(txa);
	assert_int_equal(dup2(txb, txa), txa);
	close(txb);
	txb = txa;
	assert_int_equal(open_member(txb, ctx, 2, 0, &b), 0);
	zc_close(a);
	for (int i = 0; i < 8; i++)
		assert_int_equal(zc_send(b, payload, MSG, 0, i), MSG);
	reap_expect(ctx, b, 2, 0, 8);
	zc_close(b);
	assert_int_equal(zc_ctx_free(ctx), 0);
	close(txb);
	close(rxa);
	close(rxb);
}

static void test_ready(void **state)
{
	struct zc_ctx_completion c[4];
	struct zc_ctx *ctx;
	struct zc_sock *zs, *cp;
	int tx, rx, tx2, rx2, dupfd, fd;
	unsigned int got;
	char sink[65536];

	(void)state;
	assert_int_equal(zc_ctx_new(NULL, &ctx), 0);
	fd = zc_ctx_fd(ctx);
	assert_int_equal(loopback_pair(AF_INET, SOCK_STREAM, &tx, &rx, NULL,
				       NULL), 0);
	assert_int_equal(loopback_pair(AF_INET, SOCK_STREAM, &tx2, &rx2, NULL,
				       NULL), 0);
	assert_int_equal(open_member(tx, ctx, 1, 0, &zs), 0);
	assert_int_equal(open_member(tx2, ctx, 2, ZC_BACKEND_COPY, &cp), 0);
	assert_false(readable(fd, 0));		/* idle */
	assert_int_equal(zc_ctx_completions(ctx, c, 4), 0);

	/* News from the kernel: readable once it came, not after reaping. */
	assert_int_equal(zc_send(zs, payload, MSG, 0, 5), MSG);
	assert_true(readable(fd, 5000));
	reap_expect(ctx, zs, 1, 5, 1);
	assert_false(readable(fd, 0));

	/* Complete at once (copy backend): readable at once. */
	for (int i = 0; i < 10; i++)
		assert_int_equal(zc_send(cp, payload, MSG, 0, 20 + i), MSG);
	assert_true(readable(fd, 0));
	/* Reaped in part: still readable until all is reaped. */
	for (got = 0; got < 10;) {
		int n;

		assert_true(readable(fd, 0));
		n = zc_ctx_completions(ctx, c, 3);
		assert_true(n > 0 && n <= 3);
		for (int i = 0; i < n; i++) {
			assert_ptr_equal(c[i].zs, cp);
			assert_int_equal(c[i].tag, 2);
			assert_int_equal(c[i].cookie, 20 + got++);
			assert_true(c[i].flags & ZC_LIB_COPY);
		}
	}
	/* A stale wake-up may leave it readable once; then it is quiet. */
	zc_ctx_completions(ctx, c, 4);
	assert_false(readable(fd, 0));

	/*
	 * Closed with a send in flight, its fd alive in a dup: no longer in
	 * the epoll set (zc_close() took it out), so the record the kernel
	 * queues for it wakes nobody, and nothing refers to the freed handle.
	 */
	assert_int_equal(zc_send(zs, payload, MSG, 0, 6), MSG);
	dupfd = dup(tx);
	assert_true(dupfd >= 0);
	zc_close(zs);
	close(tx);
	assert_int_equal(send(dupfd, payload, MSG, MSG_ZEROCOPY), MSG);
	{
		struct pollfd p = { .fd = dupfd, .events = 0 };

		assert_int_equal(poll(&p, 1, 5000), 1);	/* POLLERR: queued */
	}
	assert_false(readable(fd, 0));
	assert_int_equal(zc_ctx_completions(ctx, c, 4), 0);
	while (recv(rx, sink, sizeof(sink), MSG_DONTWAIT) > 0)
		;
	zc_close(cp);
	assert_int_equal(zc_ctx_free(ctx), 0);
	close(dupfd);
	close(rx);
	close(tx2);
	close(rx2);
}

/*
 * An errqueue member reaped after every send or two, over UDP: the
 * kernel's record of a lone send is handed out by the read itself
 * (zc__eq_read_member()); a record with sends behind it that are
 * complete already (a short send the library copies), or one covering
 * two ids, takes the general reap. Either way: every send once, in
 * order, with its own byte count.
 */
#define ONE_ROUNDS	300

static void test_reap_one(void **state)
{
	struct zc_ctx_completion c[8];
	struct zc_stats st = { .sz = sizeof(st) };
	struct zc_ctx *ctx;
	struct zc_sock *zs;
	uint64_t cookie = 0, reaped = 0;
	size_t lens[3];
	int tx, rx;
	char sink[MSG];

	(void)state;
	assert_int_equal(zc_ctx_new(NULL, &ctx), 0);
	assert_int_equal(loopback_pair(AF_INET, SOCK_DGRAM, &tx, &rx, NULL,
				       NULL), 0);
	assert_int_equal(open_member(tx, ctx, 7, ZC_BACKEND_ERRQUEUE, &zs), 0);
	for (unsigned int round = 0; round < ONE_ROUNDS; round++) {
		unsigned int n = 0, got = 0;

		/* One send; one and a short one; two. */
		lens[n++] = MSG;
		if (round % 3 == 1)
			lens[n++] = 0;
		else if (round % 3 == 2)
			lens[n++] = MSG / 2;
		for (unsigned int i = 0; i < n; i++)
			assert_int_equal(zc_send(zs, payload, lens[i], 0,
						 cookie + i),
					 (ssize_t)lens[i]);
		while (got < n) {
			int r = zc_ctx_wait(ctx, c, round % 2 ? 1 : 8, 5000);

			assert_true(r > 0);
			for (int i = 0; i < r; i++, got++) {
				assert_true(got < n);
				assert_ptr_equal(c[i].zs, zs);
				assert_int_equal(c[i].tag, 7);
				assert_int_equal(c[i].flags & ZC_CTX_ERROR, 0);
				assert_int_equal(c[i].cookie, cookie + got);
				assert_int_equal(c[i].bytes, lens[got]);
			}
		}
		reaped += got;
		cookie += n;
		assert_int_equal(zc_inflight(zs), 0);
		while (recv(rx, sink, sizeof(sink), MSG_DONTWAIT) > 0)
			;
	}
	/* Nothing left over, nothing twice. */
	assert_int_equal(zc_ctx_completions(ctx, c, 8), 0);
	assert_int_equal(zc_get_stats(zs, &st), 0);
	assert_int_equal(st.completions, reaped);
	assert_int_equal(st.sends, cookie);
	zc_close(zs);
	assert_int_equal(zc_ctx_free(ctx), 0);
	close(tx);
	close(rx);
}

/*
 * An errqueue member whose error queue holds several records when it is
 * reaped: an unconnected UDP socket with IP_RECVERR sends to a closed
 * port, then to a live one, round after round, so that the queue holds
 * the first send's completion, the ICMP error, the second's completion.
 * The reaper reads one record an edge and hands the first one out alone:
 * the rest must come from the edge the kernel raises when its read leaves
 * records behind. Every completion once, in order; the ICMP errors from
 * zc_foreign(); nothing left.
 */
#define QUEUE_ROUNDS	32

static void queue_run(int family)
{
	struct zc_ctx_completion c[16];
	struct zc_errrec rec[64];
	struct zc_stats st = { .sz = sizeof(st) };
	struct sockaddr_storage live, dead;
	socklen_t live_len, dead_len, el = sizeof(int);
	struct zc_ctx *ctx;
	struct zc_sock *zs;
	unsigned int got = 0, calls = 0, nfor = 0;
	int d, rx, tx, one = 1, err;
	char sink[MSG];

	assert_int_equal(zc_ctx_new(NULL, &ctx), 0);
	rx = bound_socket(family, SOCK_DGRAM, &live, &live_len);
	assert_true(rx >= 0);
	d = bound_socket(family, SOCK_DGRAM, &dead, &dead_len);
	assert_true(d >= 0);
	close(d);	/* nobody listens there now */
	tx = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(tx >= 0);
	assert_int_equal(setsockopt(tx, family == AF_INET ? SOL_IP : SOL_IPV6,
				    family == AF_INET ? IP_RECVERR :
				    IPV6_RECVERR, &one, sizeof(one)), 0);
	assert_int_equal(open_member(tx, ctx, 3, ZC_BACKEND_ERRQUEUE, &zs), 0);
	for (unsigned int round = 0; round < QUEUE_ROUNDS; round++) {
		/* No reap while sending: the records pile up. */
		for (unsigned int k = 0; k < 2; k++) {
			struct iovec iov = { payload, MSG };
			struct msghdr m = {
				.msg_name = k ? &live : &dead,
				.msg_namelen = k ? live_len : dead_len,
				.msg_iov = &iov, .msg_iovlen = 1,
			};

			assert_int_equal(zc_sendmsg(zs, &m, 0, 2 * round + k),
					 MSG);
			/* The ICMP error's sk_err, which the next send
			 * would return: cleared. */
			assert_int_equal(getsockopt(tx, SOL_SOCKET, SO_ERROR,
						    &err, &el), 0);
		}
		while (got < 2 * (round + 1)) {
			int n = zc_ctx_wait(ctx, c, 16, 5000);

			assert_true(n > 0);
			calls++;
			for (int i = 0; i < n; i++, got++) {
				assert_true(got < 2 * (round + 1));
				assert_ptr_equal(c[i].zs, zs);
				assert_int_equal(c[i].tag, 3);
				assert_int_equal(c[i].flags & ZC_CTX_ERROR, 0);
				assert_int_equal(c[i].cookie, got);
				assert_int_equal(c[i].bytes, MSG);
			}
		}
		while (recv(rx, sink, sizeof(sink), MSG_DONTWAIT) > 0)
			;
		for (;;) {
			int k = zc_foreign(zs, rec, 64);

			assert_true(k >= 0);
			if (!k)
				break;
			for (int j = 0; j < k; j++)
				assert_int_equal(rec[j].ee_errno,
						 ECONNREFUSED);
			nfor += (unsigned int)k;
		}
	}
	assert_int_equal(zc_get_stats(zs, &st), 0);
	printf("udp%d: %u sent, %u foreign records; %u reaps, %llu "
	       "error-queue reads\n", family == AF_INET ? 4 : 6, got, nfor,
	       calls, (unsigned long long)st.errqueue_reads);
	assert_true(nfor > 0);
	assert_int_equal(zc_inflight(zs), 0);
	/* Nothing left over, nothing twice. */
	assert_int_equal(zc_ctx_wait(ctx, c, 16, 50), 0);
	assert_int_equal(st.completions, got);
	zc_close(zs);
	assert_int_equal(zc_ctx_free(ctx), 0);
	close(tx);
	close(rx);
}

static void test_queue(void **state)
{
	(void)state;
	queue_run(AF_INET);
	queue_run(AF_INET6);
}

/* As many sockets as RLIMIT_NOFILE allows, up to want. */
static unsigned int fd_budget(unsigned int want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return 100;
	if (rl.rlim_cur < want + 64 && rl.rlim_max > rl.rlim_cur) {
		rl.rlim_cur = rl.rlim_max < want + 64 ? rl.rlim_max : want + 64;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	return rl.rlim_cur < want + 64 ? (unsigned int)rl.rlim_cur - 64 : want;
}

#define MANY_SENDS	4

static void test_many(void **state)
{
	unsigned int n = fd_budget(2000), closed = 0;
	struct sockaddr_storage a;
	socklen_t alen;
	struct zc_ctx_completion c[256];
	struct zc_ctx *ctx;
	struct zc_sock **zs = calloc(n, sizeof(*zs));
	unsigned int *next = calloc(n, sizeof(*next));
	int *fds = calloc(n, sizeof(*fds));
	uint64_t total = 0, want = 0;
	int rx, big = 1 << 20;

	(void)state;
	assert_non_null(zs);
	assert_non_null(next);
	assert_non_null(fds);
	fprintf(stderr, "many: %u sockets\n", n);
	assert_int_equal(zc_ctx_new(NULL, &ctx), 0);
	rx = bound_socket(AF_INET, SOCK_DGRAM, &a, &alen);
	assert_true(rx >= 0);
	setsockopt(rx, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	for (unsigned int i = 0; i < n; i++) {
		fds[i] = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		assert_true(fds[i] >= 0);
		assert_int_equal(connect(fds[i], (struct sockaddr *)&a, alen), 0);
		/* Every tenth copies: news that raises no EPOLLERR. */
		assert_int_equal(open_member(fds[i], ctx, i, i % 10 == 9 ?
					     ZC_BACKEND_COPY : 0, &zs[i]), 0);
	}
	for (unsigned int k = 0; k < MANY_SENDS; k++)
		for (unsigned int i = 0; i < n; i++) {
			/* Some short ones: the library copies those. */
			size_t len = (i + k) % 7 == 0 ? 0 : 1400;

			assert_int_equal(zc_send(zs[i], payload, len, 0,
						 (uint64_t)i << 8 | k),
					 (ssize_t)len);
			want++;
		}
	/*
	 * Reap, with small batches now and then (members left with work);
	 * after a while close every fourth socket with its sends in flight,
	 * or some of them reaped.
	 */
	for (unsigned int round = 0; total < want; round++) {
		int r = zc_ctx_wait(ctx, c, round % 3 ? 256 : 5, 5000);
		char sink[2048];

		assert_true(r > 0);
		total += expect_in_order(c, r, zs, n, next);
		while (recv(rx, sink, sizeof(sink), MSG_DONTWAIT) > 0)
			;
		if (round == 10) {
			for (unsigned int i = 0; i < n; i += 4) {
				want -= MANY_SENDS - next[i];
				zc_close(zs[i]);
				close(fds[i]);
				zs[i] = NULL;
				closed++;
			}
			assert_int_equal(zc_ctx_free(ctx), -EBUSY);
		}
	}
	assert_int_equal(total, want);
	for (unsigned int i = 0; i < n; i++) {
		if (!zs[i])
			continue;
		assert_int_equal(next[i], MANY_SENDS);
		assert_int_equal(zc_inflight(zs[i]), 0);
		zc_close(zs[i]);
		close(fds[i]);
	}
	fprintf(stderr, "many: %llu completions, %u sockets closed early\n",
		(unsigned long long)total, closed);
	assert_int_equal(zc_ctx_completions(ctx, c, 256), 0);
	assert_int_equal(zc_ctx_free(ctx), 0);
	close(rx);
	free(zs);
	free(next);
	free(fds);
}

/* ---- threads ---- */

#define T_SOCKS		32	/* the sender's */
#define T_SENDS		(ZC_HAS_TSAN ? 2000 : 20000)	/* per its socket */
#define T_CHURN		(ZC_HAS_TSAN ? 50 : 400)	/* the churner's */

struct tstate {
	struct zc_ctx *ctx;
	struct sockaddr_storage a;
	socklen_t alen;
	struct zc_sock *zs[T_SOCKS];
	unsigned int next[T_SOCKS];
	_Atomic uint64_t inflight[T_SOCKS];	/* sent, not reaped */
	_Atomic bool sender_done, churn_done;
	_Atomic uint64_t churn_sent, churn_reaped;
	_Atomic int failed;
};

static void *t_sender(void *arg)
{
	struct tstate *t = arg;

	for (unsigned int k = 0; k < T_SENDS; k++)
		for (unsigned int i = 0; i < T_SOCKS; i++) {
			ssize_t r;

			/* Bounded: the reaper keeps up, or we wait. */
			while (atomic_load(&t->inflight[i]) >= 64)
				sched_yield();
			r = zc_send(t->zs[i], payload, k % 5 ? 1400 : 100, 0,
				    (uint64_t)i << 32 | k);
			if (r == -ENOBUFS) {
				i--;
				sched_yield();
				continue;
			}
			if (r < 0) {
				fprintf(stderr, "send: %zd\n", r);
				atomic_store(&t->failed, 1);
				return NULL;
			}
			atomic_fetch_add(&t->inflight[i], 1);
		}
	atomic_store(&t->sender_done, true);
	return NULL;
}

/*
 * Members of its own: open, send, close with sends in flight, while the
 * reaper reaps (a socket's handle is the churner's alone: no other thread
 * sends on it).
 */
static void *t_churn(void *arg)
{
	struct tstate *t = arg;

	for (unsigned int j = 0; j < T_CHURN; j++) {
		struct zc_sock *zs;
		int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

		if (fd < 0 || connect(fd, (struct sockaddr *)&t->a, t->alen) ||
		    open_member(fd, t->ctx, UINT64_MAX - j, j % 3 == 2 ?
				ZC_BACKEND_COPY : 0, &zs)) {
			atomic_store(&t->failed, 1);
			break;
		}
		for (unsigned int k = 0; k < 8; k++)
			if (zc_send(zs, payload, 1400, 0, k) == 1400)
				atomic_fetch_add(&t->churn_sent, 1);
		if (j % 2)
			sched_yield();
		zc_close(zs);
		close(fd);
	}
	atomic_store(&t->churn_done, true);
	return NULL;
}

static void test_threads(void **state)
{
	struct tstate *t = calloc(1, sizeof(*t));
	struct zc_ctx_completion c[128];
	pthread_t snd, churn;
	int rx, fds[T_SOCKS];
	uint64_t total = 0;

	(void)state;
	assert_non_null(t);
	assert_int_equal(zc_ctx_new(NULL, &t->ctx), 0);
	rx = bound_socket(AF_INET, SOCK_DGRAM, &t->a, &t->alen);
	assert_true(rx >= 0);
	for (unsigned int i = 0; i < T_SOCKS; i++) {
		fds[i] = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		assert_true(fds[i] >= 0);
		assert_int_equal(connect(fds[i], (struct sockaddr *)&t->a,
					 t->alen), 0);
		assert_int_equal(open_member(fds[i], t->ctx, i, i % 8 == 7 ?
					     ZC_BACKEND_COPY : 0, &t->zs[i]), 0);
	}
	assert_int_equal(pthread_create(&snd, NULL, t_sender, t), 0);
	assert_int_equal(pthread_create(&churn, NULL, t_churn, t), 0);
	while (!atomic_load(&t->failed)) {
		bool done = atomic_load(&t->sender_done);
		int n = zc_ctx_wait(t->ctx, c, 128, 100);
		char sink[2048];

		assert_true(n >= 0);
		for (int j = 0; j < n; j++) {
			uint64_t tag = c[j].tag;

			assert_int_equal(c[j].flags & ZC_CTX_ERROR, 0);
			if (tag >= T_SOCKS) {	/* the churner's */
				atomic_fetch_add(&t->churn_reaped, 1);
				continue;
			}
			assert_ptr_equal(c[j].zs, t->zs[tag]);
			assert_int_equal(c[j].cookie,
					 tag << 32 | t->next[tag]);
			t->next[tag]++;
			atomic_fetch_sub(&t->inflight[tag], 1);
			total++;
		}
		while (recv(rx, sink, sizeof(sink), MSG_DONTWAIT) > 0)
			;
		if (done && total == (uint64_t)T_SOCKS * T_SENDS &&
		    atomic_load(&t->churn_done))
			break;
	}
	pthread_join(snd, NULL);
	pthread_join(churn, NULL);
	assert_int_equal(atomic_load(&t->failed), 0);
	assert_int_equal(total, (uint64_t)T_SOCKS * T_SENDS);
	/* Closed with sends in flight: some of theirs came, never more. */
	assert_true(atomic_load(&t->churn_reaped) <= atomic_load(&t->churn_sent));
	fprintf(stderr, "threads: %llu completions; churner %llu of %llu\n",
		(unsigned long long)total,
		(unsigned long long)atomic_load(&t->churn_reaped),
		(unsigned long long)atomic_load(&t->churn_sent));
	for (unsigned int i = 0; i < T_SOCKS; i++) {
		assert_int_equal(zc_inflight(t->zs[i]), 0);
		zc_close(t->zs[i]);
		close(fds[i]);
	}
	assert_int_equal(zc_ctx_free(t->ctx), 0);
	close(rx);
	free(t);
}

/* ---- uring members: one ring for the context ---- */

static unsigned int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	unsigned int n = 0;

	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static int open_uring(int fd, struct zc_ctx *ctx, uint64_t tag,
		      struct zc_sock **zs)
{
	return open_member(fd, ctx, tag, ZC_BACKEND_URING, zs);
}

static void set_nonblock(int fd)
{
	assert_int_equal(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK),
			 0);
}

static void drain_fd(int fd)
{
	char sink[65536];

	while (recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0)
		;
}

#define UF_SENDS	4
#define UF_LEN		(16 * 1024)
static unsigned char big_payload[UF_LEN];

/*
 * Many TCP members (500, fewer if RLIMIT_NOFILE says so): joining costs
 * no fd after the first (the context's ring), every send completes once,
 * with its cookie, in each socket's order.
 */
static void test_uring_fds(void **state)
{
	unsigned int n = fd_budget(1000) / 2, f_before, f_first, f_all;
	struct zc_ctx_completion c[256];
	struct zc_ctx *ctx;
	struct zc_sock **zs = calloc(n, sizeof(*zs));
	unsigned int *next = calloc(n, sizeof(*next));
	int *tx = calloc(n, sizeof(*tx)), *rx = calloc(n, sizeof(*rx));
	uint64_t total = 0, zc = 0;

	(void)state;
	assert_true(zs && next && tx && rx);
	assert_int_equal(zc_ctx_new(NULL, &ctx), 0);
	for (unsigned int i = 0; i < n; i++) {
		assert_int_equal(loopback_pair(AF_INET, SOCK_STREAM, &tx[i],
					       &rx[i], NULL, NULL), 0);
		set_nonblock(tx[i]);
	}
	f_before = count_fds();
	assert_int_equal(open_uring(tx[0], ctx, 0, &zs[0]), 0);
	f_first = count_fds();
	for (unsigned int i = 1; i < n; i++)
		assert_int_equal(open_uring(tx[i], ctx, i, &zs[i]), 0);
	f_all = count_fds();
	fprintf(stderr, "uring-fds: %u members; fds: %u for the first "
		"(the context's ring and its eventfd), %u for the %u others\n",
		n,
		f_first - f_before, f_all - f_first, n - 1);
	assert_true(f_first - f_before <= 2);
	assert_int_equal(f_all, f_first);

	for (unsigned int k = 0; k < UF_SENDS; k++)
		for (unsigned int i = 0; i < n; i++) {
			ssize_t r;

			while ((r = zc_send(zs[i], big_payload, UF_LEN, 0,
					    (uint64_t)i << 8 | k)) == -EAGAIN)
				drain_fd(rx[i]);
			assert_int_equal(r, UF_LEN);
		}
	while (total < (uint64_t)n * UF_SENDS) {
		int r = zc_ctx_wait(ctx, c, 256, 5000);

		assert_true(r > 0);
		total += expect_in_order(c, r, zs, n, next);
		for (unsigned int i = 0; i < n; i++)
			drain_fd(rx[i]);
	}
	assert_int_equal(zc_ctx_wait(ctx, c, 256, 50), 0);
	for (unsigned int i = 0; i < n; i++) {
		struct zc_stats st = { .sz = sizeof(st) };

		assert_int_equal(next[i], UF_SENDS);
		assert_int_equal(zc_inflight(zs[i]), 0);
		assert_int_equal(zc_get_stats(zs[i], &st), 0);
		zc += st.sends_zc;
		zc_close(zs[i]);
		close(tx[i]);
		close(rx[i]);
	}
	fprintf(stderr, "uring-fds: %llu completions, %llu sends zero-copy\n",
		(unsigned long long)total, (unsigned long long)zc);
	assert_true(zc > 0);
	assert_int_equal(zc_ctx_free(ctx), 0);
	free(zs);
	free(next);
	free(tx);
	free(rx);
}

/* Reap until want[] completions came for b and d; nothing for others. */
static void reap_two(struct zc_ctx *ctx, struct zc_sock *b, struct zc_sock *d,
		     unsigned int *next_b, unsigned int *next_d,
		     unsigned int want_b, unsigned int want_d, int peer_a)
{
	struct zc_ctx_completion c[64];

	while (*next_b < want_b || *next_d < want_d) {
		int r = zc_ctx_wait(ctx, c, 64, 5000);

		assert_true(r > 0);
		for (int j = 0; j < r; j++) {
			assert_int_equal(c[j].flags & ZC_CTX_ERROR, 0);
			if (c[j].zs == b) {
				assert_int_equal(c[j].tag, 2);
				assert_int_equal(c[j].cookie, (*next_b)++);
			} else {
				assert_ptr_equal(c[j].zs, d);
				assert_int_equal(c[j].tag, 3);
				assert_int_equal(c[j].cookie, (*next_d)++);
			}
		}
		if (peer_a >= 0)
			drain_fd(peer_a);
	}
}

/*
 * A batch on the context's ring with one entry the kernel refuses as it
 * takes the SQE (an address no user buffer has): that entry fails, the
 * others are sent. Up to 5c028d1 the kernel stopped taking the batch at
 * that entry and every later one failed with -EAGAIN, though the sockets
 * had room: a server waiting for EPOLLOUT would wait for ever.
 */
static void test_uring_bad_entry(void **state)
{
	enum { N = 8, BAD = 2 };
	struct zc_ctx *ctx;
	struct zc_sock *zs[N];
	int tx[N], rx[N];
	struct iovec iov[N];
	struct msghdr msg[N];
	struct zc_ctx_send v[N];
	unsigned int next[N] = { 0 }, got = 0;
	struct zc_ctx_completion c[64];

	(void)state;
	assert_int_equal(zc_ctx_new(NULL, &ctx), 0);
	for (unsigned int i = 0; i < N; i++) {
		assert_int_equal(loopback_pair(AF_INET, SOCK_STREAM, &tx[i],
					       &rx[i], NULL, NULL), 0);
		assert_int_equal(open_uring(tx[i], ctx, i, &zs[i]), 0);
		iov[i] = (struct iovec){
			.iov_base = i == BAD ? (void *)(uintptr_t)
				    0xffff888000000000ull : (void *)payload,
			.iov_len = MSG,
		};
		msg[i] = (struct msghdr){ .msg_iov = &iov[i], .msg_iovlen = 1 };
		v[i] = (struct zc_ctx_send){ .zs = zs[i], .msg = &msg[i],
					     .cookie = (uint64_t)i << 8 };
	}
	assert_int_equal(zc_ctx_sendmmsg(ctx, v, N), N - 1);
	for (unsigned int i = 0; i < N; i++) {
		if (i == BAD)
			assert_int_equal(v[i].result, -EFAULT);
		else
			assert_int_equal(v[i].result, MSG);
	}
	while (got < N - 1) {
		int r = zc_ctx_wait(ctx, c, 64, 5000);

		assert_true(r > 0);
		got += expect_in_order(c, r, zs, N, next);
	}
	assert_int_equal(zc_ctx_wait(ctx, c, 64, 50), 0);
	for (unsigned int i = 0; i < N; i++) {
		assert_int_equal(next[i], i == BAD ? 0u : 1u);
		zc_close(zs[i]);
		close(tx[i]);
		close(rx[i]);
	}
	assert_int_equal(zc_ctx_free(ctx), 0);
}

/* A reaper's look while another thread's zc_ctx_del() waits. */
struct del_look {
	struct zc_ctx *ctx;
	struct timespec start;
	int64_t took_ms;	/* from start to the reaper's return */
	int n;
};

static int64_t ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)(t.tv_sec - t0->tv_sec) * 1000 +
	       (t.tv_nsec - t0->tv_nsec) / 1000000;
}

static void *del_look(void *arg)
{
	struct del_look *l = arg;
	struct zc_ctx_completion c[8];

	usleep(200 * 1000);	/* zc_ctx_del() is waiting by now */
	l->n = zc_ctx_completions(l->ctx, c, 8);
	l->took_ms = ms_since(&l->start);
	return NULL;
}

/*
 * A member closed with notifications to come (its peer does not read)
 * while the others send: its late notifications reach nobody, and a
 * member that joins then (and one that joins once they came) gets its
 * own completions only.
 */
static void test_uring_close(void **state)
{
	struct zc_ctx *ctx;
	struct zc_sock *a, *b, *d;
	int txa, rxa, txb, rxb, txd, rxd, small = 4096;
	unsigned int sent_a = 0, next_b = 0, next_d = 0;
	struct zc_ctx_completion c[64];

	(void)state;
	assert_int_equal(zc_ctx_new(NULL, &ctx), 0);
	assert_int_equal(loopback_pair(AF_INET, SOCK_STREAM, &txa, &rxa, NULL,
				       NULL), 0);
	assert_int_equal(loopback_pair(AF_INET6, SOCK_STREAM, &txb, &rxb,
				       NULL, NULL), 0);
	setsockopt(rxa, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	set_nonblock(txa);
	set_nonblock(txb);
	assert_int_equal(open_uring(txa, ctx, 1, &a), 0);
	assert_int_equal(open_uring(txb, ctx, 2, &b), 0);
	/* Fill a's peer, then its send queue: those wait for the peer. */
	for (unsigned int k = 0; k < 512; k++) {
		ssize_t r = zc_send(a, big_payload, UF_LEN, 0, k);

		if (r == -EAGAIN || r == -ENOBUFS)
			break;
		assert_true(r > 0);
		sent_a++;
	}
	for (unsigned int k = 0; k < 8; k++)
		assert_int_equal(zc_send(b, payload, MSG, 0, k), MSG);
	/* Reap what came (a's too), and b's all. */
	for (int round = 0; round < 50 && next_b < 8; round++) {
		int r = zc_ctx_wait(ctx, c, 64, 100);

		for (int j = 0; j < r; j++)
			if (c[j].zs == b)
				assert_int_equal(c[j].cookie, next_b++);
		drain_fd(rxb);
	}
	assert_int_equal(next_b, 8);
	fprintf(stderr, "uring-close: %u sends on a, %u in flight at close\n",
		sent_a, zc_inflight(a));
	assert_true(zc_inflight(a) > 0);
	/*
	 * Its notifications do not come: it cannot leave, it stays. Its
	 * 2 s of waiting do not hold up the context's other calls: a
	 * reaper's look meanwhile returns at once (up to cddefaa it waited
	 * for the context's lock until zc_ctx_del() gave up).
	 */
	{
		struct del_look l = { .ctx = ctx };
		pthread_t th;
		int64_t del_ms;

		clock_gettime(CLOCK_MONOTONIC, &l.start);
		assert_int_equal(pthread_create(&th, NULL, del_look, &l), 0);
		assert_int_equal(zc_ctx_del(ctx, a), -EBUSY);
		del_ms = ms_since(&l.start);
		assert_int_equal(pthread_join(th, NULL), 0);
		fprintf(stderr, "uring-close: zc_ctx_del() -EBUSY after %lld "
			"ms, a zc_ctx_completions() meanwhile returned %d "
			"after %lld ms\n", (long long)del_ms, l.n,
			(long long)l.took_ms);
		assert_true(del_ms >= 2000);
		assert_true(l.n >= 0);
		/* 200 ms of sleep, then one look: far below the 2 s. */
		assert_true(l.took_ms < 1500);
	}
	assert_int_equal(zc_completions(a, (struct zc_completion[1]){ 0 }, 1),
			 -EINVAL);
	zc_close(a);
	close(txa);

	/* A new member while a's notifications are still to come. */
	assert_int_equal(loopback_pair(AF_INET, SOCK_STREAM, &txd, &rxd, NULL,
				       NULL), 0);
	set_nonblock(txd);
	assert_int_equal(open_uring(txd, ctx, 3, &d), 0);
	for (unsigned int k = 8; k < 16; k++)
		assert_int_equal(zc_send(b, payload, MSG, 0, k), MSG);
	for (unsigned int k = 0; k < 8; k++)
		assert_int_equal(zc_send(d, payload, MSG, 0, k), MSG);
	/* a's peer reads now: a's notifications come, for nobody. */
	reap_two(ctx, b, d, &next_b, &next_d, 16, 8, rxa);
	for (int i = 0; i < 20; i++) {
		drain_fd(rxa);
		drain_fd(rxb);
		drain_fd(rxd);
		assert_int_equal(zc_ctx_wait(ctx, c, 64, 10), 0);
	}
	/* A member that may take a's slot, now free. */
	zc_close(d);
	close(txd);
	close(rxd);
	assert_int_equal(loopback_pair(AF_INET, SOCK_STREAM, &txd, &rxd, NULL,
				       NULL), 0);
	assert_int_equal(open_uring(txd, ctx, 3, &d), 0);
	next_d = 0;
	for (unsigned int k = 0; k < 8; k++) {
		assert_int_equal(zc_send(d, payload, MSG, 0, k), MSG);
		assert_int_equal(zc_send(b, payload, MSG, 0, 16 + k), MSG);
	}
	reap_two(ctx, b, d, &next_b, &next_d, 24, 8, rxa);
	assert_int_equal(zc_ctx_wait(ctx, c, 64, 50), 0);
	zc_close(b);
	zc_close(d);
	assert_int_equal(zc_ctx_free(ctx), 0);
	close(txb);
	close(rxb);
	close(txd);
	close(rxd);
	close(rxa);
}

/*
 * The context's ring with a small CQ (ZCNOTIFY_URING_CTX_CQ=64: 56
 * notifications may be out): sends beyond it are copied, never lost, and
 * every one completes once when the peers read.
 */
static void test_uring_full(void **state)
{
	struct zc_ctx_completion c[64];
	struct zc_stats st = { .sz = sizeof(st) };
	struct zc_ctx *ctx;
	struct zc_sock *zs[2];
	int tx[2], rx[2], big = 8 << 20;
	unsigned int sent[2] = { 0 }, next[2] = { 0 }, copied = 0;

	(void)state;
	assert_int_equal(setenv("ZCNOTIFY_URING_CTX_CQ", "64", 1), 0);
	assert_int_equal(zc_ctx_new(NULL, &ctx), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(loopback_pair(AF_INET, SOCK_STREAM, &tx[i],
					       &rx[i], NULL, NULL), 0);
		setsockopt(tx[i], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
		set_nonblock(tx[i]);
		assert_int_equal(open_uring(tx[i], ctx, (uint64_t)i, &zs[i]),
				 0);
	}
	/*
	 * The peers do not read: the notifications stay out. Every other
	 * round both sends go in one zc_ctx_sendmmsg() (one io_uring_enter()
	 * for the two), which must leave room for their results too.
	 */
	for (unsigned int k = 0; k < 150; k++) {
		struct iovec iov = { big_payload, UF_LEN };
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
		struct zc_ctx_send v[2];

		for (int i = 0; i < 2; i++)
			v[i] = (struct zc_ctx_send){ .zs = zs[i], .msg = &msg,
						     .cookie = sent[i] };
		if (k % 2)
			assert_true(zc_ctx_sendmmsg(ctx, v, 2) >= 0);
		else
			for (int i = 0; i < 2; i++)
				v[i].result = zc_send(zs[i], big_payload,
						      UF_LEN, 0, sent[i]);
		for (int i = 0; i < 2; i++) {
			if (v[i].result == -EAGAIN)
				continue;
			assert_int_equal(v[i].result, UF_LEN);
			sent[i]++;
		}
	}
	for (int i = 0; i < 2; i++) {
		assert_int_equal(zc_get_stats(zs[i], &st), 0);
		copied += (unsigned int)st.enobufs_fallback;
	}
	fprintf(stderr, "uring-full: %u + %u sends, %u copied for want of "
		"room in the CQ\n", sent[0], sent[1], copied);
	assert_true(copied > 0);
	while (next[0] < sent[0] || next[1] < sent[1]) {
		int r;

		drain_fd(rx[0]);
		drain_fd(rx[1]);
		r = zc_ctx_wait(ctx, c, 64, 5000);
		assert_true(r > 0);
		for (int j = 0; j < r; j++) {
			unsigned int i = (unsigned int)c[j].tag;

			assert_true(i < 2);
			assert_ptr_equal(c[j].zs, zs[i]);
			assert_int_equal(c[j].flags & ZC_CTX_ERROR, 0);
			assert_int_equal(c[j].cookie, next[i]++);
		}
	}
	assert_int_equal(zc_ctx_wait(ctx, c, 64, 50), 0);
	for (int i = 0; i < 2; i++) {
		zc_close(zs[i]);
		close(tx[i]);
		close(rx[i]);
	}
	assert_int_equal(zc_ctx_free(ctx), 0);
	unsetenv("ZCNOTIFY_URING_CTX_CQ");
}

/*
 * Registered buffers: sends from inside a registered buffer (fixed), from
 * outside, and across a buffer's end, on two members; every cookie once,
 * the bytes intact at the peer. Then new buffers in place of the old.
 */
static void test_uring_fixed(void **state)
{
	enum { PARTS = 4, PART = 64 * 1024 };
	unsigned char *pool = aligned_alloc(4096, PARTS * PART);
	unsigned char *other = malloc(PART);
	struct iovec iov[PARTS];
	struct zc_ctx_completion c[64];
	struct zc_ctx *ctx;
	struct zc_sock *zs[2];
	int tx[2], rx[2];
	unsigned int next[2] = { 0 }, sent[2] = { 0 };
	size_t got[2] = { 0 }, want[2] = { 0 };
	uint32_t sum_tx[2] = { 0 }, sum_rx[2] = { 0 };

	(void)state;
	assert_true(pool && other);
	for (size_t i = 0; i < PARTS * PART; i++)
		pool[i] = (unsigned char)(i * 7 + i / 251);
	for (size_t i = 0; i < PART; i++)
		other[i] = (unsigned char)(i * 13);
	for (int i = 0; i < PARTS; i++)
		iov[i] = (struct iovec){ pool + i * PART, PART };
	assert_int_equal(zc_ctx_new(NULL, &ctx), 0);
	assert_int_equal(zc_ctx_register_buffers(NULL, iov, 1), -EINVAL);
	/* Overlapping buffers are refused. */
	assert_int_equal(zc_ctx_register_buffers(ctx, (struct iovec[]){
		{ pool, PART }, { pool + PART / 2, PART } }, 2), -EINVAL);
	/* Before any member joins: the ring is made now. */
	assert_int_equal(zc_ctx_register_buffers(ctx, iov, PARTS), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(loopback_pair(i ? AF_INET6 : AF_INET,
					       SOCK_STREAM, &tx[i], &rx[i],
					       NULL, NULL), 0);
		set_nonblock(tx[i]);
		assert_int_equal(open_uring(tx[i], ctx, (uint64_t)i, &zs[i]),
				 0);
	}
	for (unsigned int k = 0; k < 200; k++) {
		int i = k % 2;
		/* inside a buffer, outside all, across two buffers */
		const unsigned char *p = k % 3 == 0 ? pool + (k * 4099) %
				(PARTS * PART - 20000) :
			k % 3 == 1 ? other + k % 1000 :
			pool + PART - 5000;
		size_t len = k % 3 == 1 ? 20000 : 10000 + k;
		ssize_t r;

		if (k % 3 == 0 && (size_t)(p - pool) / PART !=
		    (size_t)(p + len - 1 - pool) / PART)
			p = pool + ((size_t)(p - pool) / PART) * PART;
		while ((r = zc_send(zs[i], p, len, 0, sent[i])) == -EAGAIN) {
			ssize_t n;
			unsigned char buf[65536];

			while ((n = recv(rx[i], buf, sizeof(buf),
					 MSG_DONTWAIT)) > 0) {
				for (ssize_t j = 0; j < n; j++)
					sum_rx[i] = sum_rx[i] * 31 + buf[j];
				got[i] += (size_t)n;
			}
		}
		assert_int_equal(r, (ssize_t)len);
		for (size_t j = 0; j < len; j++)
			sum_tx[i] = sum_tx[i] * 31 + p[j];
		want[i] += len;
		sent[i]++;
	}
	while (next[0] < sent[0] || next[1] < sent[1] || got[0] < want[0] ||
	       got[1] < want[1]) {
		int r = zc_ctx_wait(ctx, c, 64, 10);

		assert_true(r >= 0);
		for (int j = 0; j < r; j++) {
			unsigned int i = (unsigned int)c[j].tag;

			assert_true(i < 2);
			assert_ptr_equal(c[j].zs, zs[i]);
			assert_int_equal(c[j].flags & ZC_CTX_ERROR, 0);
			assert_int_equal(c[j].cookie, next[i]++);
		}
		for (int i = 0; i < 2; i++) {
			unsigned char buf[65536];
			ssize_t n;

			while ((n = recv(rx[i], buf, sizeof(buf),
					 MSG_DONTWAIT)) > 0) {
				for (ssize_t j = 0; j < n; j++)
					sum_rx[i] = sum_rx[i] * 31 + buf[j];
				got[i] += (size_t)n;
			}
		}
	}
	for (int i = 0; i < 2; i++) {
		assert_int_equal(got[i], want[i]);
		assert_int_equal(sum_rx[i], sum_tx[i]);
	}
	/* Other buffers in place of those, then none. */
	assert_int_equal(zc_ctx_register_buffers(ctx, &(struct iovec){
		other, PART }, 1), 0);
	assert_int_equal(zc_send(zs[0], other, 30000, 0, sent[0]++), 30000);
	assert_int_equal(zc_ctx_register_buffers(ctx, NULL, 0), 0);
	assert_int_equal(zc_send(zs[0], other, 30000, 0, sent[0]++), 30000);
	while (next[0] < sent[0]) {
		int r = zc_ctx_wait(ctx, c, 64, 5000);

		assert_true(r > 0);
		drain_fd(rx[0]);
		for (int j = 0; j < r; j++)
			assert_int_equal(c[j].cookie, next[0]++);
	}
	for (int i = 0; i < 2; i++) {
		zc_close(zs[i]);
		close(tx[i]);
		close(rx[i]);
	}
	assert_int_equal(zc_ctx_free(ctx), 0);
	free(pool);
	free(other);
}

/* Senders on members of their own, one reaper: run it under TSan too. */
#define UT_SENDERS	3
#define UT_SOCKS	8	/* per sender */
#define UT_SENDS	(ZC_HAS_TSAN ? 500 : 5000)	/* per socket */

struct ut_sender {
	struct zc_ctx *batch;		/* zc_ctx_sendmmsg() on it, or NULL */
	struct zc_sock *zs[UT_SOCKS];
	_Atomic uint64_t inflight[UT_SOCKS];
	unsigned int base;
	_Atomic int failed, done;
};

/* Send k on each socket, all of them in zc_ctx_sendmmsg() calls. */
static bool ut_send_batch(struct ut_sender *s, unsigned int k)
{
	struct iovec iov = { payload, k % 5 ? 1400 : 100 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	bool done[UT_SOCKS] = { false };
	unsigned int left = UT_SOCKS;

	while (left) {
		struct zc_ctx_send v[UT_SOCKS];
		unsigned int n = 0;

		for (unsigned int i = 0; i < UT_SOCKS; i++)
			if (!done[i] && atomic_load(&s->inflight[i]) < 64)
				v[n++] = (struct zc_ctx_send){
					.zs = s->zs[i], .msg = &msg,
					.cookie = (uint64_t)(s->base + i) << 32 | k,
				};
		if (!n || zc_ctx_sendmmsg(s->batch, v, n) < (int)n)
			sched_yield();
		for (unsigned int j = 0; j < n; j++) {
			unsigned int i = (unsigned int)(v[j].cookie >> 32) -
					 s->base;

			if (v[j].result == -ENOBUFS || v[j].result == -EAGAIN)
				continue;
			if (v[j].result < 0) {
				fprintf(stderr, "sendmmsg: %zd\n", v[j].result);
				return false;
			}
			atomic_fetch_add(&s->inflight[i], 1);
			done[i] = true;
			left--;
		}
	}
	return true;
}

static void *ut_send(void *arg)
{
	struct ut_sender *s = arg;

	for (unsigned int k = 0; s->batch && k < UT_SENDS; k++)
		if (!ut_send_batch(s, k)) {
			atomic_store(&s->failed, 1);
			return NULL;
		}
	for (unsigned int k = 0; !s->batch && k < UT_SENDS; k++)
		for (unsigned int i = 0; i < UT_SOCKS; i++) {
			ssize_t r;

			while (atomic_load(&s->inflight[i]) >= 64)
				sched_yield();
			r = zc_send(s->zs[i], payload, k % 5 ? 1400 : 100, 0,
				    (uint64_t)(s->base + i) << 32 | k);
			if (r == -ENOBUFS) {
				i--;
				sched_yield();
				continue;
			}
			if (r < 0) {
				fprintf(stderr, "send: %zd\n", r);
				atomic_store(&s->failed, 1);
				return NULL;
			}
			atomic_fetch_add(&s->inflight[i], 1);
		}
	atomic_store(&s->done, 1);
	return NULL;
}

static void test_uring_threads(void **state)
{
	static struct ut_sender snd[UT_SENDERS];
	unsigned int next[UT_SENDERS * UT_SOCKS] = { 0 };
	struct zc_ctx_completion c[128];
	struct sockaddr_storage a;
	socklen_t alen;
	pthread_t th[UT_SENDERS];
	int fds[UT_SENDERS * UT_SOCKS], rx, big = 1 << 20;
	uint64_t total = 0, want = (uint64_t)UT_SENDERS * UT_SOCKS * UT_SENDS;
	struct zc_ctx *ctx;

	(void)state;
	assert_int_equal(zc_ctx_new(NULL, &ctx), 0);
	rx = bound_socket(AF_INET, SOCK_DGRAM, &a, &alen);
	assert_true(rx >= 0);
	setsockopt(rx, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	for (unsigned int t = 0; t < UT_SENDERS; t++) {
		memset(&snd[t], 0, sizeof(snd[t]));
		snd[t].base = t * UT_SOCKS;
		/* The first sender sends with zc_ctx_sendmmsg(). */
		snd[t].batch = t ? NULL : ctx;
		for (unsigned int i = 0; i < UT_SOCKS; i++) {
			unsigned int g = t * UT_SOCKS + i;

			fds[g] = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
			assert_true(fds[g] >= 0);
			assert_int_equal(connect(fds[g], (struct sockaddr *)&a,
						 alen), 0);
			assert_int_equal(open_uring(fds[g], ctx, g,
						    &snd[t].zs[i]), 0);
		}
	}
	for (unsigned int t = 0; t < UT_SENDERS; t++)
		assert_int_equal(pthread_create(&th[t], NULL, ut_send,
						&snd[t]), 0);
	while (total < want) {
		int n = zc_ctx_wait(ctx, c, 128, 5000), failed = 0;

		for (unsigned int t = 0; t < UT_SENDERS; t++)
			failed |= atomic_load(&snd[t].failed);
		assert_int_equal(failed, 0);
		if (n == -EINTR)
			continue;
		if (n <= 0) {
			/* Say what was out: a lost wake-up, or an error. */
			fprintf(stderr, "uring-threads: zc_ctx_wait: %d (%s) "
				"after %llu of %llu completions\n", n,
				n < 0 ? zc_last_error() : "5 s without news",
				(unsigned long long)total,
				(unsigned long long)want);
			for (unsigned int g = 0; g < UT_SENDERS * UT_SOCKS; g++)
				fprintf(stderr, "  socket %u: sent %u reaped, "
					"%llu out, zc_inflight %u, sender %s\n",
					g, next[g], (unsigned long long)
					atomic_load(&snd[g / UT_SOCKS].inflight[g % UT_SOCKS]),
					zc_inflight(snd[g / UT_SOCKS].zs[g % UT_SOCKS]),
					atomic_load(&snd[g / UT_SOCKS].done) ?
					"done" : "sending");
		}
		assert_true(n > 0);
		for (int j = 0; j < n; j++) {
			unsigned int g = (unsigned int)c[j].tag;
			struct ut_sender *s = &snd[g / UT_SOCKS];

			assert_true(g < UT_SENDERS * UT_SOCKS);
			assert_int_equal(c[j].flags & ZC_CTX_ERROR, 0);
			assert_ptr_equal(c[j].zs, s->zs[g % UT_SOCKS]);
			assert_int_equal(c[j].cookie, (uint64_t)g << 32 | next[g]);
			next[g]++;
			atomic_fetch_sub(&s->inflight[g % UT_SOCKS], 1);
			total++;
		}
		drain_fd(rx);
	}
	for (unsigned int t = 0; t < UT_SENDERS; t++)
		pthread_join(th[t], NULL);
	assert_int_equal(zc_ctx_wait(ctx, c, 128, 50), 0);
	fprintf(stderr, "uring-threads: %llu completions from %d senders\n",
		(unsigned long long)total, UT_SENDERS);
	for (unsigned int g = 0; g < UT_SENDERS * UT_SOCKS; g++) {
		struct zc_sock *zs = snd[g / UT_SOCKS].zs[g % UT_SOCKS];

		assert_int_equal(zc_inflight(zs), 0);
		zc_close(zs);
		close(fds[g]);
	}
	assert_int_equal(zc_ctx_free(ctx), 0);
	close(rx);
}


/*
 * uring-done: members tagged i send cookies i << 32 | k, k in send order.
 * Reap up to max records (1 to 64) without waiting long; check each
 * member's order against next[]; returns the count.
 */
#define UD_N	4
static unsigned int ud_reap(struct zc_ctx *ctx, unsigned int max,
			    struct zc_sock *const *zs, unsigned int *next,
			    int timeout_ms)
{
	struct zc_ctx_completion c[64];
	int r = zc_ctx_wait(ctx, c, max, timeout_ms);

	assert_true(r >= 0 && (unsigned int)r <= max);
	for (int j = 0; j < r; j++) {
		unsigned int i = (unsigned int)c[j].tag;

		assert_true(i < UD_N);
		assert_non_null(zs[i]);
		assert_ptr_equal(c[j].zs, zs[i]);
		assert_int_equal(c[j].flags & ZC_CTX_ERROR, 0);
		assert_int_equal(c[j].bytes, MSG);
		assert_int_equal(c[j].cookie, (uint64_t)i << 32 | next[i]);
		next[i]++;
	}
	return (unsigned int)r;
}

static void ud_open(struct zc_ctx *ctx, int type, unsigned int i,
		    struct zc_sock **zs, int *tx, int *rx)
{
	assert_int_equal(loopback_pair(AF_INET, type, &tx[i], &rx[i], NULL,
				       NULL), 0);
	set_nonblock(tx[i]);
	assert_int_equal(open_uring(tx[i], ctx, i, &zs[i]), 0);
}

static void test_uring_done(void **state)
{
	struct iovec iov = { payload, MSG };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct zc_sock *zs[UD_N] = { NULL };
	unsigned int sent[UD_N] = { 0 }, next[UD_N] = { 0 };
	struct zc_completion one[16];
	struct zc_ctx *ctx;
	int tx[UD_N], rx[UD_N];

	(void)state;
	assert_int_equal(zc_ctx_new(NULL, &ctx), 0);
	ud_open(ctx, SOCK_DGRAM, 0, zs, tx, rx);
	ud_open(ctx, SOCK_DGRAM, 1, zs, tx, rx);
	ud_open(ctx, SOCK_STREAM, 2, zs, tx, rx);
	for (unsigned int k = 0; k < 400; k++) {
		struct zc_ctx_send v[3];

		for (unsigned int i = 0; i < 3; i++)
			v[i] = (struct zc_ctx_send){
				.zs = zs[i], .msg = &msg,
				.cookie = (uint64_t)i << 32 | sent[i],
			};
		assert_true(zc_ctx_sendmmsg(ctx, v, 3) >= 2);
		for (unsigned int i = 0; i < 3; i++) {
			if (i == 2 && v[i].result == -EAGAIN)
				continue;	/* TCP, its peer slow */
			assert_int_equal(v[i].result, MSG);
			sent[i]++;
		}
		/* One at a time between the batches: after their done ones. */
		if (k % 3 == 1) {
			assert_int_equal(zc_send(zs[0], payload, MSG, 0,
						 (uint64_t)0 << 32 | sent[0]),
					 MSG);
			sent[0]++;
		}
		/* Done entries not handed out yet count. */
		for (unsigned int i = 0; i < 3; i++)
			assert_int_equal(zc_inflight(zs[i]), sent[i] - next[i]);
		/* Reaps of 1 to 4 records (a done entry left for the next)... */
		if (k % 4 != 3)
			ud_reap(ctx, 1 + k % 4, zs, next, 0);
		else	/* ... and of up to 64 */
			ud_reap(ctx, 64, zs, next, 0);
		for (unsigned int i = 0; i < 3; i++)
			assert_int_equal(zc_inflight(zs[i]), sent[i] - next[i]);
		drain_fd(rx[0]);
		drain_fd(rx[1]);
		if (k % 8 == 7)		/* the TCP peer reads now and then */
			drain_fd(rx[2]);
	}
	fprintf(stderr, "uring-done: %u + %u + %u sends\n", sent[0], sent[1],
		sent[2]);
	while (next[0] < sent[0] || next[1] < sent[1] || next[2] < sent[2]) {
		drain_fd(rx[2]);
		ud_reap(ctx, 7, zs, next, 100);
	}
	for (unsigned int i = 0; i < 3; i++)
		assert_int_equal(zc_inflight(zs[i]), 0);

	/*
	 * A member closed with done entries forwarded, and a send after
	 * them: nothing of it reaches the reaper (ASan: no read of it), nor
	 * a member that joins after it (its slot, perhaps).
	 */
	for (unsigned int k = 0; k < 3; k++) {
		struct zc_ctx_send v[2] = {
			{ .zs = zs[0], .msg = &msg,
			  .cookie = (uint64_t)0 << 32 | sent[0] },
			{ .zs = zs[1], .msg = &msg,
			  .cookie = (uint64_t)1 << 32 | sent[1] },
		};

		assert_int_equal(zc_ctx_sendmmsg(ctx, v, 2), 2);
		sent[0]++;
		sent[1]++;
	}
	assert_int_equal(zc_send(zs[1], payload, MSG, 0, 0), MSG);
	assert_int_equal(zc_inflight(zs[1]), 4);
	zc_close(zs[1]);
	zs[1] = NULL;
	close(tx[1]);
	close(rx[1]);
	ud_open(ctx, SOCK_DGRAM, 3, zs, tx, rx);
	for (unsigned int k = 0; k < 3; k++) {
		struct zc_ctx_send v[1] = {
			{ .zs = zs[3], .msg = &msg,
			  .cookie = (uint64_t)3 << 32 | sent[3] },
		};

		assert_int_equal(zc_ctx_sendmmsg(ctx, v, 1), 1);
		sent[3]++;
	}
	while (next[0] < sent[0] || next[3] < sent[3])
		ud_reap(ctx, 2, zs, next, 100);
	assert_int_equal(ud_reap(ctx, 64, zs, next, 50), 0);

	/*
	 * zc_ctx_del() with done entries forwarded, and sends after them:
	 * a socket of its own, it reaps them all, in order.
	 */
	for (unsigned int k = 0; k < 5; k++) {
		struct zc_ctx_send v[1] = {
			{ .zs = zs[0], .msg = &msg,
			  .cookie = (uint64_t)0 << 32 | sent[0] },
		};

		assert_int_equal(zc_ctx_sendmmsg(ctx, v, 1), 1);
		sent[0]++;
		if (k == 2) {
			assert_int_equal(zc_send(zs[0], payload, MSG, 0,
						 (uint64_t)0 << 32 | sent[0]),
					 MSG);
			sent[0]++;
		}
	}
	assert_int_equal(zc_inflight(zs[0]), sent[0] - next[0]);
	assert_int_equal(zc_ctx_del(ctx, zs[0]), 0);
	assert_int_equal(zc_inflight(zs[0]), sent[0] - next[0]);
	while (next[0] < sent[0]) {
		int n = zc_wait(zs[0], one, 16, 5000);

		assert_true(n > 0);
		for (int j = 0; j < n; j++) {
			assert_int_equal(one[j].cookie,
					 (uint64_t)0 << 32 | next[0]);
			assert_int_equal(one[j].bytes, MSG);
			next[0]++;
		}
	}
	assert_int_equal(zc_inflight(zs[0]), 0);
	zc_close(zs[0]);
	zc_close(zs[2]);
	zc_close(zs[3]);
	assert_int_equal(zc_ctx_free(ctx), 0);
	for (unsigned int i = 0; i < UD_N; i++) {
		if (i == 1)
			continue;
		close(tx[i]);
		close(rx[i]);
	}
}

/*
 * uring-done-limit: a UDP member of max_inflight DL_MAX whose batched
 * sends complete in their batch (done entries): sent and not reaped, they
 * count against max_inflight as the ring's do (zc_inflight(3)), so the
 * send past it fails with -ENOBUFS until some are reaped. Then
 * zc_ctx_del() with max_inflight of them forwarded: they fit back in the
 * socket's ring (no -EBUSY), and its stats count each as it was, zero-copy
 * or copied, as the records say (run it with ZCNOTIFY_URING_USAGE=no too:
 * every one zero-copy then).
 */
#define DL_MAX	8u
static int dl_send(struct zc_ctx *ctx, struct zc_sock *zs, uint64_t cookie)
{
	struct iovec iov = { payload, MSG };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct zc_ctx_send v = { .zs = zs, .msg = &msg, .cookie = cookie };

	zc_ctx_sendmmsg(ctx, &v, 1);
	return (int)v.result;
}

static void test_uring_done_limit(void **state)
{
	struct zc_opts o = {
		.sz = sizeof(o), .backend = ZC_BACKEND_URING, .copy_below = 1,
		.flags = ZC_OPT_NO_ADAPT, .max_inflight = DL_MAX,
	};
	struct zc_stats st = { .sz = sizeof(st) };
	struct zc_ctx_completion c[DL_MAX];
	struct zc_completion one[DL_MAX];
	uint64_t sent = 0, next = 0, zc = 0, copied = 0;
	struct zc_sock *zs;
	struct zc_ctx *ctx;
	int tx, rx, n;

	(void)state;
	assert_int_equal(zc_ctx_new(NULL, &ctx), 0);
	o.ctx = ctx;
	assert_int_equal(loopback_pair(AF_INET, SOCK_DGRAM, &tx, &rx, NULL,
				       NULL), 0);
	set_nonblock(tx);
	assert_int_equal(zc_open(tx, &o, &zs), 0);
	for (unsigned int round = 0; round < 3; round++) {
		while (sent - next < DL_MAX) {
			assert_int_equal(dl_send(ctx, zs, sent), MSG);
			sent++;
			assert_int_equal(zc_inflight(zs), sent - next);
			drain_fd(rx);
		}
		/* Full: done entries hold their slots as the ring's do. */
		assert_int_equal(dl_send(ctx, zs, sent), -ENOBUFS);
		assert_int_equal(zc_send(zs, payload, MSG, 0, sent), -ENOBUFS);
		assert_int_equal(zc_inflight(zs), DL_MAX);
		/* Three reaped: three sends more, and no more. */
		for (unsigned int got = 0; got < 3; got += (unsigned int)n) {
			n = zc_ctx_wait(ctx, c, 3 - got, 1000);
			assert_true(n > 0);
			for (int j = 0; j < n; j++) {
				assert_ptr_equal(c[j].zs, zs);
				assert_int_equal(c[j].cookie, next);
				next++;
				if (c[j].flags & ZC_COPIED)
					copied++;
				else
					zc++;
			}
		}
		assert_int_equal(zc_inflight(zs), DL_MAX - 3);
	}
	while (sent - next < DL_MAX) {
		assert_int_equal(dl_send(ctx, zs, sent), MSG);
		sent++;
	}
	drain_fd(rx);
	/* Out of the context with max_inflight unreaped: they fit back. */
	assert_int_equal(zc_ctx_del(ctx, zs), 0);
	assert_int_equal(zc_inflight(zs), DL_MAX);
	while (next < sent) {
		n = zc_wait(zs, one, DL_MAX, 5000);
		assert_true(n > 0);
		for (int j = 0; j < n; j++) {
			assert_int_equal(one[j].cookie, next);
			assert_int_equal(one[j].bytes, MSG);
			next++;
			if (one[j].flags & ZC_COPIED)
				copied++;
			else
				zc++;
		}
	}
	assert_int_equal(zc_inflight(zs), 0);
	/* Counted as the records said. */
	assert_int_equal(zc_get_stats(zs, &st), 0);
	assert_int_equal(st.completions_zc, zc);
	assert_int_equal(st.completions_copied, copied);
	assert_int_equal(st.completions, sent);
	zc_close(zs);
	assert_int_equal(zc_ctx_free(ctx), 0);
	close(tx);
	close(rx);
}

/*
 * zc_ctx_sendmmsg(): bad arguments; bad entries among good ones, each
 * -EINVAL without stopping the rest; then rounds over TCP and UDP members,
 * every socket once and some twice a round (a socket's second send waits
 * for its first): each accepted byte at its peer in send order, every
 * accepted cookie completes once, in each socket's order, and a refused
 * one never. Each send has a buffer of its own, overwritten when its
 * completion comes: where loopback keeps the pages (the rig's bench
 * kernel) an early completion shows as wrong bytes at the peer. On the
 * context's ring (uring), a round's sends share io_uring_enter() calls:
 * counted.
 */
#define SM_TCP		6
#define SM_N		(2 * SM_TCP)		/* then as many UDP */
#define SM_ROUNDS	80
#define SM_LEN		6000
#define SM_PAT		(64 * 1024)

static unsigned char sm_pat[SM_PAT];
static unsigned char *sm_buf;	/* SM_LEN bytes a cookie */

/* The bytes at rx: TCP, a stream; UDP, datagrams of SM_LEN or fewer. */
static void sm_drain(int rx, uint32_t *hash, uint64_t *got)
{
	unsigned char buf[65536];
	ssize_t n;

	while ((n = recv(rx, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
		for (ssize_t j = 0; j < n; j++)
			*hash = *hash * 31 + buf[j];
		*got += (uint64_t)n;
	}
}

static void test_sendmmsg(void **state)
{
	struct zc_ctx *ctx, *other;
	struct zc_sock *zs[SM_N], *stranger;
	struct zc_ctx_send v[SM_N + SM_N / 3 + 4];
	struct zc_ctx_completion c[64];
	struct iovec iov[SM_N + SM_N / 3];
	struct msghdr msg[SM_N + SM_N / 3];
	static uint64_t expect[SM_N][2 * SM_ROUNDS];
	unsigned int nexp[SM_N] = { 0 }, next[SM_N] = { 0 };
	uint32_t htx[SM_N] = { 0 }, hrx[SM_N] = { 0 };
	uint64_t want[SM_N] = { 0 }, got[SM_N] = { 0 }, cookie = 0;
	unsigned int eagain = 0, rounds_batched = 0, pending;
	int tx[SM_N], rx[SM_N], ftx, frx, big = 4 << 20;
	bool ring;

	(void)state;
	for (size_t i = 0; i < SM_PAT; i++)
		sm_pat[i] = (unsigned char)(i * 7 + i / 253);
	sm_buf = malloc((size_t)SM_ROUNDS * (SM_N + SM_N / 3) * SM_LEN);
	assert_non_null(sm_buf);
	assert_int_equal(zc_ctx_new(NULL, &ctx), 0);
	assert_int_equal(zc_ctx_new(NULL, &other), 0);
	/* Bad arguments: the call fails, says why. */
	assert_int_equal(zc_ctx_sendmmsg(NULL, v, 1), -EINVAL);
	assert_int_equal(zc_ctx_sendmmsg(ctx, NULL, 1), -EINVAL);
	assert_non_null(strstr(zc_last_error(), "zc_ctx_sendmmsg"));
	assert_int_equal(zc_ctx_sendmmsg(ctx, NULL, 0), 0);
	for (int i = 0; i < SM_N; i++) {
		bool tcp = i < SM_TCP;

		assert_int_equal(loopback_pair(i % 2 ? AF_INET6 : AF_INET,
					       tcp ? SOCK_STREAM : SOCK_DGRAM,
					       &tx[i], &rx[i], NULL, NULL), 0);
		setsockopt(rx[i], SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
		assert_int_equal(open_member(tx[i], ctx, (uint64_t)i, 0,
					     &zs[i]), 0);
	}
	ring = zc_backend(zs[0]) == ZC_BACKEND_URING;
	assert_int_equal(loopback_pair(AF_INET, SOCK_DGRAM, &ftx, &frx, NULL,
				       NULL), 0);
	assert_int_equal(open_member(ftx, other, 99, 0, &stranger), 0);

	for (unsigned int r = 0; r < SM_ROUNDS; r++) {
		uint64_t sys0 = 0, sys1 = 0;
		unsigned int n = 0, m = 0, bad = 0;
		int ok;

		/* Every socket once, then every third again. */
		for (int k = 0; k < SM_N + SM_N / 3; k++) {
			int i = k < SM_N ? k : 3 * (k - SM_N);
			size_t off = ((size_t)r * 4099 + (size_t)k * 577) %
				     (SM_PAT - SM_LEN);

			unsigned char *b = sm_buf + cookie * SM_LEN;

			memcpy(b, sm_pat + off, SM_LEN);
			iov[m] = (struct iovec){ b, SM_LEN };
			msg[m] = (struct msghdr){ .msg_iov = &iov[m],
						  .msg_iovlen = 1 };
			v[n++] = (struct zc_ctx_send){
				.zs = zs[i], .msg = &msg[m++],
				.cookie = cookie++, .result = 12345,
			};
			/* Bad entries in the middle, the first round. */
			if (r == 0 && k == 4) {
				v[n++] = (struct zc_ctx_send){ .zs = NULL,
					.msg = &msg[0], .result = 12345 };
				v[n++] = (struct zc_ctx_send){ .zs = stranger,
					.msg = &msg[0], .result = 12345 };
				v[n++] = (struct zc_ctx_send){ .zs = zs[1],
					.msg = NULL, .result = 12345 };
				v[n++] = (struct zc_ctx_send){ .zs = zs[2],
					.msg = &msg[0], .flags = MSG_OOB,
					.result = 12345 };
				bad = 4;
			}
		}
		for (int i = 0; i < SM_N; i++) {
			struct zc_stats st = { .sz = sizeof(st) };

			assert_int_equal(zc_get_stats(zs[i], &st), 0);
			sys0 += st.syscalls;
		}
		ok = zc_ctx_sendmmsg(ctx, v, n);
		assert_true(ok >= 0);
		for (int i = 0; i < SM_N; i++) {
			struct zc_stats st = { .sz = sizeof(st) };

			assert_int_equal(zc_get_stats(zs[i], &st), 0);
			sys1 += st.syscalls;
		}
		for (unsigned int j = 0, seen_ok = 0; j < n; j++) {
			struct zc_ctx_send *e = &v[j];
			int i;

			if (r == 0 && j >= 5 && j < 5 + bad) {
				assert_int_equal(e->result, -EINVAL);
				continue;
			}
			for (i = 0; zs[i] != e->zs; i++)
				;
			assert_true(e->result != 12345);
			if (e->result == -EAGAIN) {	/* TCP: peer behind */
				eagain++;
				continue;
			}
			assert_true(e->result > 0);
			assert_true(e->result <= SM_LEN);
			if (i >= SM_TCP)
				assert_int_equal(e->result, SM_LEN);
			for (ssize_t b = 0; b < e->result; b++)
				htx[i] = htx[i] * 31 +
					 ((const unsigned char *)
					  e->msg->msg_iov->iov_base)[b];
			want[i] += (uint64_t)e->result;
			expect[i][nexp[i]++] = e->cookie;
			seen_ok++;
			if (j == n - 1)
				assert_int_equal(ok, (int)seen_ok);
		}
		/*
		 * One io_uring_enter() before the first repeated socket, one
		 * for the rest; its eventfd write perhaps. Not one a send.
		 */
		if (ring && sys1 - sys0 <= 4)
			rounds_batched++;
		for (int i = 0; i < SM_N; i++)
			sm_drain(rx[i], &hrx[i], &got[i]);
		for (int k; (k = zc_ctx_completions(ctx, c, 64)) > 0;)
			for (int j = 0; j < k; j++) {
				int i = (int)c[j].tag;

				assert_true(i >= 0 && i < SM_N);
				assert_int_equal(c[j].flags & ZC_CTX_ERROR, 0);
				assert_true(next[i] < nexp[i]);
				assert_int_equal(c[j].cookie,
						 expect[i][next[i]++]);
				/* The pages are ours again. */
				memset(sm_buf + c[j].cookie * SM_LEN, 0xee,
				       SM_LEN);
			}
	}
	for (unsigned int idle = 0;; ) {
		int k = zc_ctx_wait(ctx, c, 64, 20);

		assert_true(k >= 0);
		/* 10 s without a completion or a byte: lost, say so. */
		idle = k ? 0 : idle + 1;
		for (int j = 0; j < k; j++) {
			int i = (int)c[j].tag;

			assert_true(i >= 0 && i < SM_N);
			assert_true(next[i] < nexp[i]);
			assert_int_equal(c[j].cookie, expect[i][next[i]++]);
			memset(sm_buf + c[j].cookie * SM_LEN, 0xee, SM_LEN);
		}
		pending = 0;
		for (int i = 0; i < SM_N; i++) {
			uint64_t before = got[i];

			sm_drain(rx[i], &hrx[i], &got[i]);
			idle = got[i] != before ? 0 : idle;
			pending += next[i] < nexp[i] || got[i] < want[i];
		}
		if (!pending)
			break;
		if (idle == 500) {
			for (int i = 0; i < SM_N; i++)
				fprintf(stderr, "sendmmsg: socket %d: %u of %u "
					"completions, %llu of %llu bytes\n", i,
					next[i], nexp[i],
					(unsigned long long)got[i],
					(unsigned long long)want[i]);
			fail_msg("nothing came for 10 s");
		}
	}
	for (int i = 0; i < SM_N; i++) {
		assert_int_equal(got[i], want[i]);
		assert_int_equal(hrx[i], htx[i]);
		assert_int_equal(zc_inflight(zs[i]), 0);
	}
	fprintf(stderr, "sendmmsg: %u rounds of %d sends, %u would block%s",
		SM_ROUNDS, SM_N + SM_N / 3, eagain, ring ? "" : "\n");
	if (ring) {
		fprintf(stderr, ", %u rounds in <= 4 syscalls\n",
			rounds_batched);
		/* Most rounds: a send that copied (the CQ) adds syscalls. */
		assert_true(rounds_batched >= SM_ROUNDS / 2);
	}
	assert_int_equal(zc_ctx_wait(ctx, c, 64, 20), 0);
	for (int i = 0; i < SM_N; i++) {
		zc_close(zs[i]);
		close(tx[i]);
		close(rx[i]);
	}
	zc_close(stranger);
	close(ftx);
	close(frx);
	assert_int_equal(zc_ctx_free(ctx), 0);
	assert_int_equal(zc_ctx_free(other), 0);
	free(sm_buf);
}

static const struct {
	const char *name;
	struct CMUnitTest test;
	bool by_default;
} all[] = {
	{ "join", cmocka_unit_test(test_join), true },
	{ "leave", cmocka_unit_test(test_leave), true },
	{ "fd-reuse", cmocka_unit_test(test_fd_reuse), true },
	{ "stats", cmocka_unit_test(test_stats), true },
	{ "ready", cmocka_unit_test(test_ready), true },
	{ "many", cmocka_unit_test(test_many), true },
	{ "reap-one", cmocka_unit_test(test_reap_one), true },
	{ "queue", cmocka_unit_test(test_queue), true },
	{ "sendmmsg", cmocka_unit_test(test_sendmmsg), true },
	{ "quiet", cmocka_unit_test(test_quiet), true },
	{ "threads", cmocka_unit_test(test_threads), false },
	{ "uring-fds", cmocka_unit_test(test_uring_fds), false },
	{ "uring-close", cmocka_unit_test(test_uring_close), false },
	{ "uring-full", cmocka_unit_test(test_uring_full), false },
	{ "uring-fixed", cmocka_unit_test(test_uring_fixed), false },
	{ "uring-threads", cmocka_unit_test(test_uring_threads), false },
	{ "uring-bad-entry", cmocka_unit_test(test_uring_bad_entry), false },
	{ "uring-done", cmocka_unit_test(test_uring_done), false },
	{ "uring-done-limit", cmocka_unit_test(test_uring_done_limit), false },
};
#define NALL (sizeof(all) / sizeof(all[0]))

int main(int argc, char **argv)
{
	struct CMUnitTest tests[NALL];
	size_t n = 0;
	struct zc_sock *zs;
	int sv[2];

	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (unsigned char)i;
	/* ZCNOTIFY_BACKEND=scm on a kernel without it, uring without liburing. */
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0) {
		int fd = socket(AF_INET, SOCK_STREAM, 0), r;

		r = zc_open(fd, NULL, &zs);
		if (r == -EOPNOTSUPP) {
			fprintf(stderr, "SKIP: %s\n", zc_last_error());
			return 77;
		}
		if (!r)
			zc_close(zs);
		close(fd);
		close(sv[0]);
		close(sv[1]);
	}
	/* The uring-* tests: io_uring SEND_ZC, in a library with liburing. */
	for (int a = 1; a < argc; a++) {
		if (strncmp(argv[a], "uring-", 6))
			continue;
		if (uring_skip())
			return 77;
		break;
	}
	for (size_t i = 0; i < NALL; i++) {
		bool want = argc < 2 && all[i].by_default;

		for (int a = 1; a < argc; a++)
			want |= !strcmp(argv[a], all[i].name);
		if (want)
			tests[n++] = all[i].test;
	}
	if (!n) {
		fprintf(stderr, "usage: %s [join|leave|ready|many|sendmmsg|quiet|threads|"
			"uring-fds|uring-close|uring-full|uring-fixed|"
			"uring-threads|uring-bad-entry|uring-done|"
			"uring-done-limit]...\n",
			argv[0]);
		return 1;
	}
	return _cmocka_run_group_tests("ctx", tests, n, NULL, NULL);
}
