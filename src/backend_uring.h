/* SPDX-License-Identifier: MIT */
/*
 * The io_uring backend's part of a context's batched send that runs on
 * every send (zc_ctx_sendmmsg()): ctx.c queues each zero-copy send's SQE
 * inline as it checks the send, so that the call walks its sends once to
 * queue them, as backend_scm.h gives the core the scm backend's hot
 * parts. A backend: it stands on backend.h.
 */
#ifndef ZC_BACKEND_URING_H
#define ZC_BACKEND_URING_H

#include "backend.h"

#ifdef ZC_HAVE_URING
#include <linux/io_uring.h>

#pragma GCC visibility push(hidden)

#define URING_SLOT0		4u	/* user_data >> 32 of slot 0 */
/* The batch index's place in user_data >> 32: 64 + 1 values above it. */
#define URING_BIDX_SHIFT	25
#define URING_SLOT_MASK		((1u << URING_BIDX_SHIFT) - 1)
_Static_assert(ZC_URING_BATCH < 1u << (32 - URING_BIDX_SHIFT),
	       "a batch's index + 1 fits above the slot");

/* backend_priv of a member (zc__ops_uring_member). */
struct uring_member {
	struct zc_uring_shared *sh;	/* NULL until it joins */
	uint64_t ud;			/* m_ud(slot, 0), for a batch's sends */
	uint32_t slot;			/* in sh->slots */
	bool nonblock;			/* O_NONBLOCK, as last seen */
};

/*
 * A batch being queued, from its first send (zc__uring_open()) to its
 * submit (zc__uring_send_batch()): the shared ring's lock held all along,
 * its SQ ours. Its sends' SQEs go at tail, up to end: the room the batch
 * has in the CQ and the SQ. Only a plain SEND_ZC is built inline
 * (zc__uring_queue()); anything else out of line.
 */
struct zc_uring_q {
	struct zc_uring_shared *sh;	/* NULL: no send goes (not joined) */
	struct io_uring_sqe *sqes;
	uint32_t mask;			/* the SQ's */
	uint32_t tail0, tail, end;	/* the batch's first, next, past last */
	uint16_t ioprio;		/* the ring's SEND_ZC flags */
	bool plain;			/* no registered buffers to look up */
};

/*
 * The first send of a batch, on member zs: take the shared ring's lock
 * and open q (no call between here and zc__uring_send_batch() may take
 * it, or the context's lock: the caller flushes the batch first).
 */
void zc__uring_open(struct zc_uring_q *q, struct zc_sock *zs);
/*
 * zc__uring_queue() of anything but a plain send with room (b's caller
 * and zs set): its SQE, or res -ENOBUFS (the core copies) and ud 0 (none
 * submitted).
 */
void zc__uring_queue_other(struct zc_uring_q *q, struct zc_batch_send *b,
			   unsigned int i);

/*
 * The batch q, v[0] to v[n - 1], queued (zc__uring_queue()): zero-copy
 * sends of members of one context's ring, submitted with one
 * io_uring_enter(): each v[i].zs at most once, n <= ZC_URING_BATCH
 * (struct zc_batch_send), and room for v[n] (a guard). Fills each res:
 * bytes sent or -errno (nothing sent). Gives the lock back. Returns how many it ended itself
 * (ZC_BS_DONE).
 */
unsigned int zc__uring_send_batch(struct zc_uring_q *q,
				  struct zc_batch_send *v, unsigned int n);

/* m_ud() of the send of member m at index i of a batch. */
static inline uint64_t m_ud_batch(const struct uring_member *m, uint32_t id,
				  unsigned int i)
{
	return m->ud | (uint64_t)(i + 1) << (32 + URING_BIDX_SHIFT) | id;
}

/*
 * Send b, at index i of the batch, of member zs, queued by the first half
 * (zc__send_start_fast(): one buffer, base, of len bytes, no address or
 * control messages; flags for the syscall): its SQE, user_data with the
 * index above the slot (batch_drain_as() finds the send by it), or
 * zc__uring_queue_other().
 */
static inline __attribute__((always_inline)) void
zc__uring_queue(struct zc_uring_q *q, struct zc_batch_send *b,
		struct zc_sock *zs, void *base, size_t len, int flags,
		unsigned int i)
{
	const struct uring_member *m = zs->backend_priv;
	uint64_t ud;

	b->st = 0;
	if (__builtin_expect(m->sh != q->sh || q->tail == q->end ||
			     !q->plain, 0)) {
		zc__uring_queue_other(q, b, i);
		return;
	}
	ud = m_ud_batch(m, zs->zc_next, i);
	b->ud = ud;
	/*
	 * io_uring_prep_send_zc(), whole: the SQE built at once (a few wide
	 * stores), not field by field.
	 */
	q->sqes[q->tail++ & q->mask] = (struct io_uring_sqe){
		.opcode = IORING_OP_SEND_ZC,
		.ioprio = q->ioprio,
		.fd = zs->fd,
		.addr = (unsigned long)base,
		.len = (__u32)len,
		.msg_flags = (__u32)flags,
		.user_data = ud,
	};
}

#pragma GCC visibility pop

#endif /* ZC_HAVE_URING */

#endif /* ZC_BACKEND_URING_H */
