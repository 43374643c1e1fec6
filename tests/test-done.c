// SPDX-License-Identifier: MIT
/*
 * Done entries of a context's uring members (backend_uring.c), seen from
 * inside: the internal static library, so that the test reads the
 * socket's counters (sock.h) and fails allocations (fail_alloc.c).
 *
 *   made   zc_ctx_sendmmsg() on UDP members over loopback, whose sends
 *          complete in their batch: done entries are made (done_made
 *          grows; the member's ring takes no slot for them), and each
 *          comes back once, in its socket's order, done_taken catching up
 *   del    zc_ctx_del() of a member with done entries forwarded, each of
 *          its allocations failing in turn (done_put_back()'s among
 *          them): -ENOMEM with a message, nothing changed (the member
 *          still sends and is deleted after); then every completion once,
 *          in order, from the socket's own ring
 *
 * Real sockets; skips (77) without io_uring SEND_ZC.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "zcnotify.h"
#include "testutil.h"
#include "internal.h"		/* struct zc_sock: done_made, done_taken */
#include "fail_alloc.h"

#define MSG	4096
#define NSOCK	4
static unsigned char payload[MSG];

static uint32_t made(const struct zc_sock *zs)
{
	return atomic_load_explicit(&zs->done_made, memory_order_relaxed);
}

static uint32_t taken(const struct zc_sock *zs)
{
	return atomic_load_explicit(&zs->done_taken, memory_order_relaxed);
}

static void open_members(struct zc_ctx *ctx, unsigned int k,
			 struct zc_sock **zs, int *tx, int *rx)
{
	struct zc_opts o = {
		.sz = sizeof(o), .backend = ZC_BACKEND_URING, .copy_below = 1,
		.flags = ZC_OPT_NO_ADAPT, .ctx = ctx,
	};

	for (unsigned int i = 0; i < k; i++) {
		assert_int_equal(loopback_pair(AF_INET, SOCK_DGRAM, &tx[i],
					       &rx[i], NULL, NULL), 0);
		assert_int_equal(fcntl(tx[i], F_SETFL,
				       fcntl(tx[i], F_GETFL) | O_NONBLOCK), 0);
		assert_int_equal(zc_open(tx[i], &o, &zs[i]), 0);
	}
}

/* One send on each of the k members, in one call; cookie: member, count. */
static void send_all(struct zc_ctx *ctx, struct zc_sock **zs, unsigned int k,
		     uint64_t *sent)
{
	struct iovec iov = { payload, MSG };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct zc_ctx_send v[NSOCK];

	for (unsigned int i = 0; i < k; i++)
		v[i] = (struct zc_ctx_send){ .zs = zs[i], .msg = &msg,
					     .cookie = (uint64_t)i << 32 |
						       sent[i] };
	assert_int_equal(zc_ctx_sendmmsg(ctx, v, k), (int)k);
	for (unsigned int i = 0; i < k; i++) {
		assert_int_equal(v[i].result, MSG);
		sent[i]++;
	}
}

static void drain_rx(int fd)
{
	char sink[MSG];

	while (recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0)
		;
}

static void test_made(void **state)
{
	struct zc_sock *zs[NSOCK];
	struct zc_ctx_completion c[16];
	uint64_t sent[NSOCK] = { 0 }, next[NSOCK] = { 0 }, left = 0;
	uint32_t sum = 0;
	int tx[NSOCK], rx[NSOCK];
	struct zc_ctx *ctx;

	(void)state;
	assert_int_equal(zc_ctx_new(NULL, &ctx), 0);
	open_members(ctx, NSOCK, zs, tx, rx);
	for (unsigned int round = 0; round < 8; round++) {
		uint32_t before = 0, after = 0;

		for (unsigned int i = 0; i < NSOCK; i++)
			before += made(zs[i]);
		send_all(ctx, zs, NSOCK, sent);
		for (unsigned int i = 0; i < NSOCK; i++) {
			after += made(zs[i]);
			assert_int_equal(zc_inflight(zs[i]), sent[i] - next[i]);
			drain_rx(rx[i]);
		}
		sum += after - before;
	}
	/*
	 * Over loopback a UDP send's notification comes before
	 * io_uring_enter() returns: the batch's drain reads both its CQEs,
	 * and the send is complete before it is published.
	 */
	assert_true(sum > 0);
	for (unsigned int i = 0; i < NSOCK; i++)
		left += sent[i];
	while (left) {
		int n = zc_ctx_wait(ctx, c, 16, 5000);

		assert_true(n > 0);
		for (int j = 0; j < n; j++) {
			unsigned int i = (unsigned int)(c[j].cookie >> 32);

			assert_true(i < NSOCK);
			assert_ptr_equal(c[j].zs, zs[i]);
			assert_int_equal(c[j].cookie, (uint64_t)i << 32 | next[i]);
			assert_int_equal(c[j].bytes, MSG);
			next[i]++;
			left--;
		}
	}
	for (unsigned int i = 0; i < NSOCK; i++) {
		assert_int_equal(zc_inflight(zs[i]), 0);
		assert_int_equal(taken(zs[i]), made(zs[i]));
		zc_close(zs[i]);
		close(tx[i]);
		close(rx[i]);
	}
	assert_int_equal(zc_ctx_free(ctx), 0);
}

static void test_del(void **state)
{
	struct zc_sock *zs[1];
	struct zc_completion one[16];
	uint64_t sent[1] = { 0 }, next = 0;
	bool put_back_failed = false;
	int tx[1], rx[1], r = -1;
	struct zc_ctx *ctx;

	(void)state;
	assert_int_equal(zc_ctx_new(NULL, &ctx), 0);
	open_members(ctx, 1, zs, tx, rx);
	for (unsigned int i = 0; i < 6; i++)
		send_all(ctx, zs, 1, sent);
	drain_rx(rx[0]);
	assert_true(made(zs[0]) != taken(zs[0]));	/* forwarded, out */
	for (unsigned int skip = 0; skip < 64; skip++) {
		fa_fail(skip, 1);
		r = zc_ctx_del(ctx, zs[0]);
		if (!fa_failed())
			break;
		fa_fail(0, 0);
		assert_int_equal(r, -ENOMEM);
		assert_true(strlen(zc_last_error()) > 0);
		if (strstr(zc_last_error(), "sends complete in the context"))
			put_back_failed = true;
		/* Nothing changed: still a member, its entries still out. */
		assert_int_equal(zc_inflight(zs[0]), sent[0]);
		send_all(ctx, zs, 1, sent);
		drain_rx(rx[0]);
	}
	fa_fail(0, 0);
	assert_int_equal(r, 0);
	/* done_put_back()'s own allocation was among those failed. */
	assert_true(put_back_failed);
	assert_int_equal(zc_inflight(zs[0]), sent[0]);
	while (next < sent[0]) {
		int n = zc_wait(zs[0], one, 16, 5000);

		assert_true(n > 0);
		for (int j = 0; j < n; j++) {
			assert_int_equal(one[j].cookie, next);
			assert_int_equal(one[j].bytes, MSG);
			next++;
		}
	}
	assert_int_equal(zc_inflight(zs[0]), 0);
	zc_close(zs[0]);
	close(tx[0]);
	close(rx[0]);
	assert_int_equal(zc_ctx_free(ctx), 0);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest all[] = {
		cmocka_unit_test(test_made),
		cmocka_unit_test(test_del),
	};
	const char *names[] = { "made", "del" };
	struct CMUnitTest tests[2];
	size_t n = 0;

	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (unsigned char)i;
	if (uring_skip())
		return 77;
	for (size_t i = 0; i < 2; i++) {
		bool want = argc < 2;

		for (int a = 1; a < argc; a++)
			want |= !strcmp(argv[a], names[i]);
		if (want)
			tests[n++] = all[i];
	}
	return _cmocka_run_group_tests("done", tests, n, NULL, NULL);
}
