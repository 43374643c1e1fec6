// SPDX-License-Identifier: MIT
/*
 * Real zero-copy over a NIC: only the kernel rig has one. Its guest joins
 * two virtio-net devices on a qemu hub and puts the second in a network
 * namespace (ZC_RIG_PEER_NETNS_PID, ZC_RIG_PEER_ADDR). A receiver forked
 * into that namespace checks every byte of a TCP stream that we send with
 * the library, copy_below = 1 and ZC_OPT_NO_ADAPT; buffers are recycled
 * only when their completion is reaped, and poisoned then, so a completion
 * that came early shows up as corrupt bytes at the receiver. Loopback can
 * never show a completion that is not COPIED; this test requires some.
 *
 * Without the rig's environment it exits 77 (skip).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "zcnotify.h"

#define PORT		7777
#define BUFSZ		(64 * 1024)
#define NBUF		64

static unsigned char pattern(uint64_t off)
{
	return (unsigned char)(off ^ (off >> 8) ^ (off >> 19));
}

static int fail(const char *what)
{
	fprintf(stderr, "test-nic: FAIL: %s\n", what);
	return 1;
}

/* The receiver, inside the peer's namespace. Exit 0: every byte right. */
static int receiver(const char *nspid, const char *addr, uint64_t total,
		    int ready_fd)
{
	char path[64];
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(PORT) };
	static unsigned char buf[BUFSZ];
	uint64_t off = 0;
	int ns, l, s, one = 1;

	snprintf(path, sizeof(path), "/proc/%s/ns/net", nspid);
	ns = open(path, O_RDONLY);
	if (ns < 0 || setns(ns, CLONE_NEWNET))
		return fail("setns into the peer namespace");
	inet_pton(AF_INET, addr, &a.sin_addr);
	l = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1))
		return fail("bind/listen in the peer namespace");
	if (write(ready_fd, "r", 1) != 1)
		return fail("signal ready");
	s = accept(l, NULL, NULL);
	if (s < 0)
		return fail("accept");
	while (off < total) {
		ssize_t n = read(s, buf, sizeof(buf));

		if (n <= 0)
			return fail("stream ended early");
		for (ssize_t i = 0; i < n; i++, off++)
			if (buf[i] != pattern(off)) {
				fprintf(stderr, "test-nic: byte %llu is 0x%02x, "
					"want 0x%02x\n", (unsigned long long)off,
					buf[i], pattern(off));
				return 1;
			}
	}
	return 0;
}

static struct zc_sock *zs;
static unsigned char bufs[NBUF][BUFSZ];
static int pending[NBUF], free_list[NBUF], nfree;
static uint64_t zc_done, copied_done, done;

/* Reap; a buffer goes back to the pool when all its sends completed. */
static int reap(int timeout_ms)
{
	struct zc_completion c[NBUF];
	int n = timeout_ms ? zc_wait(zs, c, NBUF, timeout_ms)
			   : zc_completions(zs, c, NBUF);

	for (int k = 0; k < n; k++) {
		int b = (int)(c[k].cookie >> 32);

		done++;
		if (c[k].flags & ZC_COPIED)
			copied_done++;
		else
			zc_done++;
		if (--pending[b] == 0) {
			/* Poison: if the kernel still reads it, we see it. */
			memset(bufs[b], 0xee, BUFSZ);
			free_list[nfree++] = b;
		}
	}
	return n;
}

int main(void)
{
	const char *nspid = getenv("ZC_RIG_PEER_NETNS_PID");
	const char *peer = getenv("ZC_RIG_PEER_ADDR");
	const char *nsends_env = getenv("ZC_TEST_SENDS");
	const char *variant = getenv("ZC_RIG_VARIANT");
	unsigned int nsends = nsends_env ? (unsigned int)atoi(nsends_env) : 2000;
	int ready[2], fd, status, ret, backend;
	uint64_t total = (uint64_t)nsends * BUFSZ, off = 0;
	struct zc_opts o = { .sz = sizeof(o), .copy_below = 1,
			     .flags = ZC_OPT_NO_ADAPT };
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(PORT) };
	struct zc_stats st = { .sz = sizeof(st) };
	pid_t child;
	char c;

	if (!nspid || !peer) {
		printf("SKIP: needs the kernel rig's virtio-net peer "
		       "(ZC_RIG_PEER_NETNS_PID, ZC_RIG_PEER_ADDR)\n");
		return 77;
	}
	if (pipe(ready))
		return fail("pipe");
	child = fork();
	if (child == 0)
		_exit(receiver(nspid, peer, total, ready[1]));
	if (read(ready[0], &c, 1) != 1)
		return fail("receiver did not start");

	inet_pton(AF_INET, peer, &a.sin_addr);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)))
		return fail("connect to the peer");
	ret = zc_open(fd, &o, &zs);
	if (ret) {
		fprintf(stderr, "zc_open: %s: %s\n", strerror(-ret),
			zc_last_error());
		return 1;
	}
	printf("backend %s\n", zc_backend_name(zc_backend(zs)));
	for (nfree = 0; nfree < NBUF; nfree++)
		free_list[nfree] = nfree;

	for (unsigned int i = 0; i < nsends || zc_inflight(zs);) {
		if (i < nsends && nfree) {
			int b = free_list[--nfree];
			size_t sent = 0;

			for (size_t k = 0; k < BUFSZ; k++)
				bufs[b][k] = pattern(off + k);
			while (sent < BUFSZ) {
				ssize_t r = zc_send(zs, bufs[b] + sent,
						    BUFSZ - sent, 0,
						    ((uint64_t)b << 32) | i);

				if (r == -ENOBUFS) {	/* ring full */
					if (reap(1000) < 0)
						return fail("zc_wait");
					continue;
				}
				if (r < 0)
					return fail("zc_send");
				sent += (size_t)r;	/* partial: go on */
				pending[b]++;
			}
			off += BUFSZ;
			i++;
			if (reap(0) < 0)
				return fail("zc_completions");
		} else if (reap(5000) <= 0) {
			return fail("no completion within 5 s");
		}
	}
	zc_get_stats(zs, &st);
	backend = zc_backend(zs);
	zc_close(zs);
	close(fd);
	if (waitpid(child, &status, 0) != child || !WIFEXITED(status) ||
	    WEXITSTATUS(status))
		return fail("the receiver saw wrong bytes or failed");
	printf("sends %llu completions %llu: zero-copy %llu, copied %llu; "
	       "syscalls per completion %.3f; harvests cmsg %llu recvmsg %llu\n",
	       (unsigned long long)st.sends, (unsigned long long)done,
	       (unsigned long long)zc_done, (unsigned long long)copied_done,
	       done ? (double)st.syscalls / (double)done : 0.0,
	       (unsigned long long)st.harvest_cmsg,
	       (unsigned long long)st.harvest_recvmsg);
	if (done != st.sends)
		return fail("completions != sends");
	if (zc_done == 0)
		return fail("no completion without COPIED: no real zero-copy");
	if (variant && !strcmp(variant, "patched") &&
	    !getenv("ZCNOTIFY_BACKEND") && backend != ZC_BACKEND_SCM)
		return fail("patched kernel, but AUTO did not pick SCM");
	if (backend == ZC_BACKEND_SCM && st.harvest_cmsg == 0)
		return fail("SCM in use, but no completion came by cmsg");
	printf("PASS\n");
	return 0;
}
