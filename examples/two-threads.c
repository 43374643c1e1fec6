// SPDX-License-Identifier: MIT
/*
 * two-threads: one zc_sock, a sender thread and a reaper thread.
 *
 * The library lets the send side (zc_send, zc_sendmsg) and the reap side
 * (zc_completions, zc_wait) of one zc_sock run in two threads without a
 * lock between them. What the two threads share is the caller's own state:
 * here a pool of buffers. The sender takes a free buffer, fills it and
 * sends it; the reaper gives the buffer back when every send made from it
 * has completed. That pool needs the caller's lock (a mutex and a
 * condition variable), the library calls do not.
 *
 * The main thread receives over loopback TCP and checks every byte, so a
 * buffer given back too early shows up as wrong data.
 *
 *   two-threads [-6] [-n MiB] [-s size] [-p pool] [-m max_inflight]
 *
 * Build: cc -o two-threads two-threads.c $(pkg-config --cflags --libs libzcnotify)
 * (glibc 2.34 and later have pthreads in libc; older ones need -pthread.)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <zcnotify.h>

#define MAX_POOL	64

static struct zc_sock *zs;
static int tx_fd;
static uint64_t total = 8 << 20;
static size_t size = 65536;
static unsigned int pool = 8;

/* The buffer pool: shared by sender and reaper, under the caller's lock. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t freed = PTHREAD_COND_INITIALIZER;
static unsigned char *buf[MAX_POOL];
static int refs[MAX_POOL];		/* sends from the buffer not yet reaped */
static bool busy[MAX_POOL];		/* the sender is still sending from it */
static unsigned int freelist[MAX_POOL], nfree;
static unsigned long reaped;		/* completions the reaper handed back */

static atomic_bool sent_all;		/* the sender made its last send */
static atomic_int failed;

static unsigned char pattern(uint64_t off)
{
	return (unsigned char)(off * 131 + (off >> 12));
}

static void fail(const char *who, const char *what, long err)
{
	fprintf(stderr, "two-threads: %s: %s: %s (%s)\n", who, what,
		strerror((int)-err), zc_last_error());
	atomic_store(&failed, 1);
}

/* Under lock: back to the pool if no send from it is still out. */
static void maybe_free(unsigned int b)
{
	if (!busy[b] && refs[b] == 0) {
		freelist[nfree++] = b;
		pthread_cond_signal(&freed);
	}
}

/* Wait (bounded) until the reaper gives something back. Under lock. */
static int wait_freed(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 5;
	return pthread_cond_timedwait(&freed, &lock, &ts);
}

static void *sender(void *arg)
{
	uint64_t off = 0;

	(void)arg;
	while (off < total && !atomic_load(&failed)) {
		size_t len = total - off < size ? (size_t)(total - off) : size;
		size_t done = 0;
		unsigned int b;

		pthread_mutex_lock(&lock);
		while (!nfree) {
			if (wait_freed()) {
				pthread_mutex_unlock(&lock);
				fail("sender", "no buffer back for 5 s", -ETIMEDOUT);
				goto out;
			}
		}
		b = freelist[--nfree];
		busy[b] = true;
		pthread_mutex_unlock(&lock);

		/* Ours alone until its completions come back. */
		for (size_t i = 0; i < len; i++)
			buf[b][i] = pattern(off + i);

		while (done < len) {
			unsigned long seen;
			ssize_t n;

			/*
			 * Count the send before making it: the reaper may
			 * see its completion before zc_send() returns.
			 */
			pthread_mutex_lock(&lock);
			refs[b]++;
			seen = reaped;
			pthread_mutex_unlock(&lock);
			n = zc_send(zs, buf[b] + done, len - done, MSG_NOSIGNAL, b);
			if (n < 0) {
				pthread_mutex_lock(&lock);
				refs[b]--;	/* no send, no completion */
				if (n == -ENOBUFS) {
					/*
					 * max_inflight unreaped: let the reaper
					 * work, unless it did since the send
					 * (its signal came before this wait).
					 */
					int t = 0;

					while (reaped == seen && !t)
						t = wait_freed();

					pthread_mutex_unlock(&lock);
					if (t && zc_inflight(zs) == 0) {
						fail("sender", "zc_send", n);
						goto out;
					}
					continue;
				}
				pthread_mutex_unlock(&lock);
				fail("sender", "zc_send", n);
				goto out;
			}
			done += (size_t)n;
		}
		pthread_mutex_lock(&lock);
		busy[b] = false;
		maybe_free(b);
		pthread_mutex_unlock(&lock);
		off += len;
	}
out:
	atomic_store(&sent_all, true);
	shutdown(tx_fd, SHUT_WR);	/* the receiver sees the end */
	return NULL;
}

static void *reaper(void *arg)
{
	struct zc_completion c[64];

	(void)arg;
	/* Until the sender is done and every send has completed. */
	while (!atomic_load(&sent_all) || zc_inflight(zs)) {
		int n = zc_wait(zs, c, 64, 100);

		if (n < 0) {
			fail("reaper", "zc_wait", n);
			break;
		}
		pthread_mutex_lock(&lock);
		for (int i = 0; i < n; i++) {
			unsigned int b = (unsigned int)c[i].cookie;

			refs[b]--;
			maybe_free(b);
		}
		reaped += (unsigned long)n;
		/* The sender may wait after -ENOBUFS with nothing to free. */
		if (n)
			pthread_cond_signal(&freed);
		pthread_mutex_unlock(&lock);
	}
	return NULL;
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
	struct sockaddr_storage ss = { 0 };
	socklen_t sslen;
	struct zc_opts opts = { .sz = sizeof(opts) };
	pthread_t ts, tr;
	unsigned char rbuf[65536];
	uint64_t off = 0;
	bool v6 = false;
	int opt, l, rx, ret;
	ssize_t n;

	while ((opt = getopt(argc, argv, "6n:s:p:m:")) != -1) {
		switch (opt) {
		case '6': v6 = true; break;
		case 'n': total = (uint64_t)num(opt, optarg, UINT64_MAX >> 20) << 20; break;
		case 's': size = num(opt, optarg, 1ul << 30); break;
		case 'p': pool = (unsigned int)num(opt, optarg, UINT_MAX); break;
		case 'm': opts.max_inflight = (uint32_t)num(opt, optarg, UINT32_MAX); break;
		default:
			fprintf(stderr, "usage: %s [-6] [-n MiB] [-s size] "
				"[-p pool] [-m max_inflight]\n", argv[0]);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "two-threads: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (!size || !pool || pool > MAX_POOL) {
		fprintf(stderr, "two-threads: bad -s or -p\n");
		return 2;
	}

	/* A TCP connection over loopback: tx_fd sends, rx receives. */
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
	l = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	tx_fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0 || tx_fd < 0 || bind(l, (struct sockaddr *)&ss, sslen) ||
	    listen(l, 1) || getsockname(l, (struct sockaddr *)&ss, &sslen) ||
	    connect(tx_fd, (struct sockaddr *)&ss, sslen) ||
	    (rx = accept4(l, NULL, NULL, SOCK_CLOEXEC)) < 0) {
		perror("two-threads: TCP over loopback");
		return 1;
	}

	ret = zc_open(tx_fd, &opts, &zs);
	if (ret == -EOPNOTSUPP) {	/* e.g. ZCNOTIFY_BACKEND=scm, no support */
		fprintf(stderr, "two-threads: skipped: %s\n", zc_last_error());
		return 77;
	}
	if (ret) {
		fail("main", "zc_open", ret);
		return 1;
	}
	for (unsigned int i = 0; i < pool; i++) {
		buf[i] = malloc(size);
		if (!buf[i]) {
			fprintf(stderr, "two-threads: out of memory\n");
			return 1;
		}
		freelist[nfree++] = i;
	}

	if (pthread_create(&ts, NULL, sender, NULL) ||
	    pthread_create(&tr, NULL, reaper, NULL)) {
		fprintf(stderr, "two-threads: pthread_create failed\n");
		return 1;
	}

	/*
	 * Receive and check until the sender shuts the connection down
	 * (after a failure, go on reading so that the sender never blocks).
	 */
	while ((n = recv(rx, rbuf, sizeof(rbuf), 0)) > 0) {
		for (ssize_t i = 0; i < n && !atomic_load(&failed); i++) {
			if (rbuf[i] != pattern(off + (uint64_t)i)) {
				fprintf(stderr, "two-threads: wrong byte at "
					"%llu (a buffer reused too early?)\n",
					(unsigned long long)(off + (uint64_t)i));
				atomic_store(&failed, 1);
				break;
			}
		}
		off += (uint64_t)n;
	}
	pthread_join(ts, NULL);
	pthread_join(tr, NULL);
	if (!atomic_load(&failed) && off != total) {
		fprintf(stderr, "two-threads: received %llu of %llu bytes\n",
			(unsigned long long)off, (unsigned long long)total);
		atomic_store(&failed, 1);
	}
	printf("two-threads: backend %s, %llu bytes over %s in sends of %zu "
	       "from %u buffers: %s\n", zc_backend_name(zc_backend(zs)),
	       (unsigned long long)off, v6 ? "::1" : "127.0.0.1", size, pool,
	       atomic_load(&failed) ? "FAILED" : "ok");

	/* Both threads are done and nothing is in flight: close. */
	zc_close(zs);
	close(tx_fd);
	close(rx);
	close(l);
	for (unsigned int i = 0; i < pool; i++)
		free(buf[i]);
	return atomic_load(&failed) ? 1 : 0;
}
