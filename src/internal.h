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

#include <limits.h>

#include "sys.h"
#include "ring.h"
#include "errqueue.h"
#include "backend.h"
#include "backend_scm.h"
#include "backend_uring.h"

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
int zc__eq_read_member(struct zc_sock *zs, struct zc_completion *one,
		       bool *handed);
int zc__scm_read_member(struct zc_sock *zs, struct zc_completion *one,
			bool *handed);
int zc__foreign_member(struct zc_sock *zs, struct zc_errrec *out,
		      unsigned int max);

/* Flags zc_sendmsg() passes through to sendmsg(2). */
#define ZC_SEND_FLAGS	(MSG_DONTWAIT | MSG_MORE | MSG_NOSIGNAL | \
			 MSG_DONTROUTE | MSG_EOR | MSG_CONFIRM | MSG_ZEROCOPY)

/*
 * zc_ctx_sendmmsg()'s sends in two halves (struct zc_batch_send): what
 * runs on every send inline here, for ctx.c (no call, no frame, nothing
 * through memory between the halves and the caller); zcnotify.c the rest.
 */
ssize_t zc__send_start_general(struct zc_sock *zs, const struct msghdr *msg,
			       int flags, uint64_t cookie,
			       struct zc_batch_send *h, bool *queued);
ssize_t zc__send_finish_nothing(const struct zc_batch_send *h);

/*
 * The first half's part of h: field by field, as the rest of h is the
 * caller's and the backend's (a whole-struct store would zero it).
 */
static inline __attribute__((always_inline)) void
zc_half_fill(struct zc_batch_send *h, struct zc_sock *zs, uint32_t t)
{
	h->zs = zs;
	h->slot = t;
}

/*
 * The first half's common send (zc__send_start_general() says what the
 * first half does), which zc__send_start_general() would queue with no
 * call on its way, and which the backend sends as one buffer: one iovec
 * (*base, *lenp) of at most INT32_MAX bytes, no address, no control
 * messages. Queued (h filled), true; else false, nothing done:
 * zc__send_start_general()'s.
 */
static inline __attribute__((always_inline)) bool
zc__send_start_fast(struct zc_sock *zs, const struct msghdr *msg, int flags,
		    uint64_t cookie, struct zc_batch_send *h, void **base,
		    size_t *lenp)
{
	const struct iovec *iov = msg->msg_iov;
	uint32_t t = atomic_load_explicit(&zs->tail, memory_order_relaxed);
	size_t len;

	/*
	 * One iovec, no address, no control messages, flags msg_check()
	 * takes, a length the backend sends in one; zero-copy wanted
	 * (want_zerocopy(): at least copy_below, no failed send's id to
	 * settle, the kernel not copying or adapting off; the streak
	 * relaxed: a hint); room in the ring (tx_room, sock.h; acquire
	 * head: pairs with the release of head in zc_ring_reap()); and the
	 * slot's chunk linked to the next if it is its last (zc_tx_reserve()'s common case,
	 * zc_tx_link_spare(): the spare the reap side left).
	 */
	if (msg->msg_iovlen != 1 || !iov || msg->msg_name ||
	    msg->msg_controllen || (flags & ~ZC_SEND_FLAGS) ||
	    (len = iov->iov_len) < zs->copy_below || len > INT32_MAX ||
	    zs->amb_local ||
	    atomic_load_explicit(&zs->copied_streak, memory_order_relaxed) >=
	    zs->adapt_at ||
	    t - atomic_load_explicit(&zs->head, memory_order_acquire) >=
	    zs->tx_room || (__builtin_expect((t & ZC_CHUNK_MASK) == ZC_CHUNK_MASK,
					  0) && !zc_tx_link_spare(zs)))
		return false;
	/*
	 * As send_begin(), for ZC_CHOOSE_ZC, but zc_issued: the backend
	 * opens the id's window once the send took it (zc__uring_send_batch(),
	 * before anyone can see its notification); a send complete in its
	 * batch takes none (a done entry).
	 */
	*base = iov->iov_base;
	*lenp = len;
	zc_tx_entry(zs)->cookie = cookie;
	zc_half_fill(h, zs, t);
	return true;
}

/*
 * The second half: the zero-copy send of h returned h->res. One that
 * sent (> 0) took an id and is published without zc_publish()'s wake-up:
 * the caller (ctx.c, which knows the member's) does it.
 */
static inline __attribute__((always_inline)) ssize_t
zc__send_finish(const struct zc_batch_send *h)
{
	struct zc_sock *zs = h->zs;
	ssize_t ret = h->res;
	struct zc_entry *e;

	if (__builtin_expect(ret <= 0, 0))
		return zc__send_finish_nothing(h);
	/* send_end()'s zero-copy send that took its id. */
	e = zc_tx_took_id(zs, ret);
	zs->adapt_tick++;
	zc_publish_quiet(zs, h->slot, e);
	return ret;
}

/* ctx.c: contexts of many sockets */
int zc__ctx_join(struct zc_ctx *ctx, struct zc_sock *zs, uint64_t tag);
void zc__ctx_leave(struct zc_sock *zs);
void zc__ctx_wake(struct zc_sock *zs);
int zc__ctx_foreign(struct zc_sock *zs, struct zc_errrec *out,
		   unsigned int max);

/*
 * The wake-up of a send of member zs that took an id, just published (its
 * tail stored, seq_cst), whose ids are reported (ids_report: errqueue,
 * uring on the context's ring): true if it is no news, as zc__ctx_wake()
 * would find, without the calls down to sys.c and back up to ctx.c. Its
 * record raises news of its own, unless the reaper asked for every
 * publish (any; seq_cst, after the store of tail: see finish_member() in
 * ctx.c). tx_zc as zc__ctx_wake() leaves it.
 */
static inline __attribute__((always_inline)) bool
zc_member_took_id_quiet(struct zc_sock *zs)
{
	if (atomic_load_explicit(&zs->ctxm.any, memory_order_seq_cst))
		return false;
	/* Only the send side writes sends_zc: its own counter. */
	zs->ctxm.tx_zc = atomic_load_explicit(&zs->tx.sends_zc,
					      memory_order_relaxed);
	return true;
}

/*
 * zc_ctx_took_id_quiet() past its common case (zcnotify.c): scm members'
 * test, false for any other socket.
 */
bool zc__took_id_quiet_other(struct zc_sock *zs);

/*
 * zc_member_took_id_quiet() of any socket (ids_report: ZC_IDS_NONE
 * outside); scm members out of line, so that the others' test stays one
 * compare.
 */
static inline __attribute__((always_inline)) bool
zc_ctx_took_id_quiet(struct zc_sock *zs)
{
	if (__builtin_expect(zs->ctxm.ids_report == ZC_IDS_REPORTED, 1))
		return zc_member_took_id_quiet(zs);
	return zc__took_id_quiet_other(zs);
}

#pragma GCC visibility pop

#endif /* ZC_INTERNAL_H */
