// SPDX-License-Identifier: MIT
/*
 * A program built against an installed libzcnotify with nothing but
 * `pkg-config --cflags --libs libzcnotify`: one zero-copy send over a
 * loopback TCP connection, its completion, the data at the other end.
 * Prints the backend; exits 0 when all went as the API says.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <zcnotify.h>

#define LEN	(64 * 1024)

static int die(const char *what, const char *why)
{
	fprintf(stderr, "consumer: %s: %s\n", what, why);
	return 1;
}

int main(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	struct zc_opts opts = { .sz = sizeof(opts) };
	struct zc_completion c;
	struct zc_sock *zs;
	static unsigned char buf[LEN], got[LEN];
	size_t have = 0;
	ssize_t n;
	int l, tx, rx, ret;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	l = socket(AF_INET, SOCK_STREAM, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&a, alen) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&a, &alen))
		return die("listen on 127.0.0.1", strerror(errno));
	tx = socket(AF_INET, SOCK_STREAM, 0);
	if (tx < 0 || connect(tx, (struct sockaddr *)&a, alen))
		return die("connect", strerror(errno));
	rx = accept(l, NULL, NULL);
	if (rx < 0)
		return die("accept", strerror(errno));

	ret = zc_open(tx, &opts, &zs);
	if (ret)
		return die("zc_open", zc_last_error());
	for (size_t i = 0; i < LEN; i++)
		buf[i] = (unsigned char)(i * 7 + 3);
	n = zc_send(zs, buf, LEN, MSG_NOSIGNAL, 42);
	if (n <= 0)
		return die("zc_send", n ? zc_last_error() : "sent nothing");
	ret = zc_wait(zs, &c, 1, 5000);
	if (ret != 1)
		return die("zc_wait", ret < 0 ? zc_last_error() :
			   "no completion within 5 s");
	if (c.cookie != 42 || c.bytes != (uint32_t)n)
		return die("zc_wait", "wrong cookie or byte count");
	if (zc_inflight(zs) != 0)
		return die("zc_inflight", "not 0 after the only completion");
	while (have < (size_t)n) {
		ssize_t r = recv(rx, got + have, (size_t)n - have, 0);

		if (r <= 0)
			return die("recv", r ? strerror(errno) : "EOF");
		have += (size_t)r;
	}
	if (memcmp(buf, got, have))
		return die("recv", "the data differs");
	printf("libzcnotify %d.%d: backend %s; sent %zd bytes, completion "
	       "flags 0x%x\n", ZCNOTIFY_VERSION_MAJOR, ZCNOTIFY_VERSION_MINOR,
	       zc_backend_name(zc_backend(zs)), n, c.flags);
	zc_close(zs);
	close(tx);
	close(rx);
	close(l);
	return 0;
}
