// SPDX-License-Identifier: MIT
/*
 * A downstream program: wrap an AF_UNIX socket (the copy backend), send,
 * reap the one completion. Exits 0 when it all works.
 */
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include <zcnotify.h>

int main(void)
{
	struct zc_completion c;
	struct zc_sock *zs;
	char msg[] = "hello", got[sizeof(msg)];
	int sv[2], ret;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		return 1;
	ret = zc_open(sv[0], NULL, &zs);
	if (ret) {
		fprintf(stderr, "zc_open: %s\n", zc_last_error());
		return 1;
	}
	if (zc_send(zs, msg, sizeof(msg), 0, 7) != (ssize_t)sizeof(msg) ||
	    zc_wait(zs, &c, 1, 1000) != 1 || c.cookie != 7 ||
	    read(sv[1], got, sizeof(got)) != (ssize_t)sizeof(got)) {
		fprintf(stderr, "send/wait: %s\n", zc_last_error());
		return 1;
	}
	printf("downstream: libzcnotify %d.%d, backend %s: ok\n",
	       ZCNOTIFY_VERSION_MAJOR, ZCNOTIFY_VERSION_MINOR,
	       zc_backend_name(zc_backend(zs)));
	zc_close(zs);
	close(sv[0]);
	close(sv[1]);
	return 0;
}
