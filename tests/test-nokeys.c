// SPDX-License-Identifier: MIT
/*
 * The library in a process that has used up its pthread keys
 * (PTHREAD_KEYS_MAX) before the library made its own: the per-thread
 * memory it frees at thread exit (the error queue's read buffers, the
 * chunk cache) then has no key to be freed by. Sends and reaps must work
 * all the same, in the main thread and in threads that come and go, and
 * nothing may leak (run under valgrind too). A program of its own: the
 * library makes its keys at its first read, once per process.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include <zcnotify.h>

#include "testutil.h"

#define SENDS	256
#define LEN	16384

static pthread_key_t keys[PTHREAD_KEYS_MAX + 1];
static unsigned int nkeys;
static char buf[LEN];

/* Every pthread key the process can still make, taken. */
static void take_all_keys(void)
{
	while (nkeys < PTHREAD_KEYS_MAX + 1 &&
	       !pthread_key_create(&keys[nkeys], NULL))
		nkeys++;
	assert_true(nkeys < PTHREAD_KEYS_MAX + 1);
}

static void give_back_keys(void)
{
	while (nkeys)
		pthread_key_delete(keys[--nkeys]);
}

/* Drain what the receiver got, so that TCP never stalls the sender. */
static void drain(int rx)
{
	static char sink[1 << 16];

	while (recv(rx, sink, sizeof(sink), MSG_DONTWAIT) > 0)
		;
}

/*
 * A stream of SENDS sends over a loopback TCP pair with backend b, reaped
 * every few sends and at the end: each cookie exactly once, in order.
 * Returns NULL, or what went wrong.
 */
static const char *stream(int b)
{
	struct zc_opts o = { .sz = sizeof(o), .backend = b };
	struct zc_completion c[64];
	struct zc_sock *zs;
	uint64_t next = 0;
	int tx, rx, n;

	if (loopback_pair(AF_INET, SOCK_STREAM, &tx, &rx, NULL, NULL))
		return "no loopback TCP pair";
	if (zc_open(tx, &o, &zs)) {
		close(tx);
		close(rx);
		return zc_last_error();
	}
	for (uint64_t i = 0; i < SENDS; i++) {
		ssize_t r = zc_send(zs, buf, LEN, 0, i);

		if (r != LEN)
			return r < 0 ? zc_last_error() : "a short send";
		drain(rx);
		if (i % 4 != 3)
			continue;
		n = zc_completions(zs, c, 64);
		if (n < 0)
			return zc_last_error();
		for (int k = 0; k < n; k++)
			if (c[k].cookie != next++)
				return "a cookie out of order";
	}
	while (zc_inflight(zs)) {
		drain(rx);
		n = zc_wait(zs, c, 64, 5000);
		if (n <= 0)
			return n < 0 ? zc_last_error() : "no completion in 5 s";
		for (int k = 0; k < n; k++)
			if (c[k].cookie != next++)
				return "a cookie out of order";
	}
	zc_close(zs);
	close(tx);
	close(rx);
	return next == SENDS ? NULL : "completions missing";
}

static void *thread_main(void *arg)
{
	return (void *)stream(*(int *)arg);
}

static void t_nokeys(void **state)
{
	int backends[] = { ZC_BACKEND_ERRQUEUE, ZC_BACKEND_COPY };

	(void)state;
	take_all_keys();
	for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
		const char *err = stream(backends[i]);
		void *ret;

		if (err)
			fail_msg("backend %d, main thread: %s", backends[i],
				 err);
		for (int t = 0; t < 3; t++) {
			pthread_t th;

			assert_int_equal(pthread_create(&th, NULL, thread_main,
							&backends[i]), 0);
			assert_int_equal(pthread_join(th, &ret), 0);
			if (ret)
				fail_msg("backend %d, thread %d: %s",
					 backends[i], t, (const char *)ret);
		}
	}
	give_back_keys();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_nokeys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
