// SPDX-License-Identifier: MIT
/*
 * The copy backend: plain sends, each complete on return. Used for sockets
 * that cannot do zero-copy (AF_UNIX, ...) when the caller asked for
 * ZC_BACKEND_AUTO, and as the baseline.
 */
#include "backend.h"

static int copy_collect(struct zc_sock *zs, bool force)
{
	(void)zs;
	(void)force;
	return 0;
}

const struct zc_ops zc__ops_copy = {
	.id = ZC_BACKEND_COPY,
	.zerocopy = false,
	.send = NULL,		/* the syscall, inlined in the send path */
	.collect = copy_collect,
};
