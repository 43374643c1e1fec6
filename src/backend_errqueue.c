// SPDX-License-Identifier: MIT
/*
 * The error-queue backend: MSG_ZEROCOPY sends, completions read with
 * recvmmsg(MSG_ERRQUEUE) on the reap side. TCP since Linux 4.14, UDP since 5.0.
 */
#include "backend.h"
#include "errqueue.h"

static int eq_collect(struct zc_sock *zs, bool force)
{
	(void)force;
	return zc__eq_drain(zs);
}

const struct zc_ops zc__ops_errqueue = {
	.id = ZC_BACKEND_ERRQUEUE,
	.zerocopy = true,
	.kernel_ids = true,
	.send = NULL,		/* the syscall, inlined in the send path */
	.collect = eq_collect,
};
