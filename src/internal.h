/* SPDX-License-Identifier: MIT */
/*
 * The top floor's header: what the entry points (zcnotify.c) and contexts
 * (ctx.c) share, and every floor below them, bottom up: sys.h (syscalls,
 * zc_last_error()), ring.h (the completion ring), errqueue.h (the error
 * queue), backend.h and backend_scm.h (the backends). Nothing below the
 * top includes it (tests/layering.sh).
 */
#ifndef ZC_INTERNAL_H
#define ZC_INTERNAL_H

#include "sys.h"
#include "ring.h"
#include "errqueue.h"
#include "backend.h"
#include "backend_scm.h"

#pragma GCC visibility push(hidden)

#define ZC_DEFAULT_MAX_INFLIGHT	1024u
#define ZC_MAX_MAX_INFLIGHT	(1u << 20)
/*
 * Documentation/networking/msg_zerocopy.rst: "zerocopy is generally only
 * effective at writes over around 10 KB". Pinning and notification cost
 * more than copying a smaller buffer.
 */
#define ZC_DEFAULT_COPY_BELOW	10240u
/*
 * After this many consecutive ids the kernel reported COPIED, stop pinning
 * pages and copy; retry zero-copy once every ZC_ADAPT_RETRY sends.
 */
#define ZC_ADAPT_THRESHOLD	64u
#define ZC_ADAPT_RETRY		256u

/* zc_sock.amb: did the failed send in ring slot amb_slot use its id? */
enum { ZC_AMB_NONE, ZC_AMB_PENDING, ZC_AMB_TAKEN, ZC_AMB_NOT_TAKEN };

/* zcnotify.c, for ctx.c */
int zc__opts_copy(const void *opts, void *dst, size_t known, const char *what);
int zc__completions_member(struct zc_sock *zs, struct zc_completion *out,
			  unsigned int max);
int zc__foreign_member(struct zc_sock *zs, struct zc_errrec *out,
		      unsigned int max);
/* zc_ctx_sendmmsg()'s sends in two halves (struct zc_batch_send) */
ssize_t zc__send_start(struct zc_sock *zs, const struct msghdr *msg,
		       int flags, uint64_t cookie, struct zc_batch_send *h,
		       bool *queued);
ssize_t zc__send_finish(const struct zc_batch_send *h);

/* ctx.c: contexts of many sockets */
int zc__ctx_join(struct zc_ctx *ctx, struct zc_sock *zs, uint64_t tag);
void zc__ctx_leave(struct zc_sock *zs);
void zc__ctx_wake(struct zc_sock *zs);
int zc__ctx_foreign(struct zc_sock *zs, struct zc_errrec *out,
		   unsigned int max);

#pragma GCC visibility pop

#endif /* ZC_INTERNAL_H */
