// SPDX-License-Identifier: MIT
/*
 * Helpers shared by the real-socket test programs: see testutil.h.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "testutil.h"
#include "zcnotify.h"

/* ---- deterministic data ------------------------------------------------ */

void fill_msg(uint8_t *p, uint64_t seed, uint64_t i, size_t len)
{
	uint64_t w = mix64(seed + 0x632BE59BD9B4E019ull * (i + 1));
	uint64_t step = mix64(w) | 1;
	size_t k = 0;

	for (; k + 8 <= len; k += 8, w += step)
		memcpy(p + k, &w, 8);
	if (k < len)
		memcpy(p + k, &w, len - k);
}

/* ---- loopback sockets ---------------------------------------------------- */

static socklen_t loopback(int family, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;

		a->sin_family = AF_INET;
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		return sizeof(*a);
	}
	((struct sockaddr_in6 *)ss)->sin6_family = AF_INET6;
	((struct sockaddr_in6 *)ss)->sin6_addr = in6addr_loopback;
	return sizeof(struct sockaddr_in6);
}

int bound_socket(int family, int type, struct sockaddr_storage *ss,
		 socklen_t *len)
{
	int fd = socket(family, type | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	*len = loopback(family, ss);
	if (bind(fd, (struct sockaddr *)ss, *len) ||
	    getsockname(fd, (struct sockaddr *)ss, len)) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

int loopback_pair(int family, int type, int *tx, int *rx,
		  struct sockaddr_storage *peer, socklen_t *peerlen)
{
	struct sockaddr_storage a, b;
	socklen_t alen, blen;
	int l, s, err;

	*tx = *rx = -1;
	l = bound_socket(family, type, &a, &alen);
	if (l < 0)
		return l;
	if (peer) {
		*peer = a;
		*peerlen = alen;
	}
	if (type == SOCK_STREAM) {
		if (listen(l, 1))
			goto fail_l;
		s = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (s < 0)
			goto fail_l;
		if (connect(s, (struct sockaddr *)&a, alen))
			goto fail_s;
		*rx = accept4(l, NULL, NULL, SOCK_CLOEXEC);
		if (*rx < 0)
			goto fail_s;
		close(l);
		*tx = s;
		return 0;
	}
	s = bound_socket(family, type, &b, &blen);
	if (s < 0) {
		close(l);
		return s;
	}
	if (connect(s, (struct sockaddr *)&a, alen) ||
	    connect(l, (struct sockaddr *)&b, blen))
		goto fail_s;
	*tx = s;
	*rx = l;
	return 0;
fail_s:
	err = -errno;
	close(s);
	close(l);
	return err;
fail_l:
	err = -errno;
	close(l);
	return err;
}

/* ---- the environment ----------------------------------------------------- */

int parse_test_sends(uint64_t *nsends)
{
	const char *env = getenv("ZC_TEST_SENDS");
	char *end;
	unsigned long long v;

	if (!env || !*env)
		return 0;
	v = strtoull(env, &end, 10);
	if (*end || v == 0) {
		fprintf(stderr, "ZC_TEST_SENDS=\"%s\": want a positive "
			"number\n", env);
		return -1;
	}
	*nsends = v;
	return 0;
}

int uring_skip(void)
{
	struct zc_sock *zs;
	int fd = socket(AF_INET, SOCK_DGRAM, 0), r;

	r = zc_open(fd, &(struct zc_opts){ .sz = sizeof(struct zc_opts),
			.backend = ZC_BACKEND_URING }, &zs);
	close(fd);
	if (r == -EOPNOTSUPP) {
		fprintf(stderr, "SKIP: %s\n", zc_last_error());
		return 77;
	}
	if (!r)
		zc_close(zs);
	return 0;
}
