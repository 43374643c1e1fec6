/* SPDX-License-Identifier: MIT */
/*
 * What a backend is to the entry points: struct zc_ops, and the backends
 * there are (backend_*.c). A backend stands on the floors below it
 * (errqueue.h, ring.h, sys.h) and includes what it uses of them; none of
 * them calls up into a backend.
 */
#ifndef ZC_BACKEND_H
#define ZC_BACKEND_H

#include <stdbool.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "sock.h"

#pragma GCC visibility push(hidden)

struct zc_ops {
	int id;
	bool zerocopy;		/* sends take kernel ids; POLLERR means news */
	/*
	 * Sends are MSG_ZEROCOPY calls, numbered by the kernel's per-socket
	 * counter, whose value a failed UDP send may have used up (errqueue,
	 * scm). uring numbers its requests itself.
	 */
	bool kernel_ids;
	/*
	 * The kernel itself signals zs->efd when it has news (uring: the
	 * ring's registered eventfd), and POLLERR does not mean news:
	 * zc_wait() sleeps on zs->efd alone.
	 */
	bool news_on_efd;
	/*
	 * Send side: one sendmsg with flags (MSG_ZEROCOPY set or not). NULL:
	 * the core makes the syscall itself, inline (errqueue, copy; and scm,
	 * whose backend_scm.h parts the core calls directly).
	 */
	ssize_t (*send)(struct zc_sock *zs, const struct msghdr *msg, int flags);
	/*
	 * Reap side: bring what the kernel reported into the done marks;
	 * force: read the error queue even if the backend would rather not
	 * (POLLERR fired, or zc_foreign() asks). Returns the number of kernel
	 * records consumed or -errno: 0 only if no id was marked done.
	 */
	int (*collect)(struct zc_sock *zs, bool force);
	/* Set up backend_priv; called by zc_open(). Optional. */
	int (*setup)(struct zc_sock *zs, const struct zc_opts *o);
	/* Reap side, optional: called by zc_close(). */
	void (*teardown)(struct zc_sock *zs);
};

extern const struct zc_ops zc__ops_errqueue;
extern const struct zc_ops zc__ops_copy;
extern const struct zc_ops zc__ops_scm;
#ifdef ZC_HAVE_URING
extern const struct zc_ops zc__ops_uring;
extern const struct zc_ops zc__ops_uring_member;	/* in a context */
#endif

/*
 * A zero-copy send between its two halves (zc_ctx_sendmmsg()): the
 * caller's entry (caller: its msg and flags; its result goes there); the
 * core's first half (zc__send_start_fast() and zc__send_start_general())
 * fills zs and slot; the backend's batch makes the send, writes res and
 * keeps its own state in ud and st meanwhile; the core's second half
 * (zc__send_finish()) ends it. One array entry a send, which each of
 * them walks in turn, none copying another's fields.
 */
struct zc_batch_send {
	struct zc_sock *zs;
	struct zc_ctx_send *caller;
	uint32_t slot;			/* its ring slot */
	uint32_t st;			/* the backend's, and ZC_BS_DONE */
	ssize_t res;
	uint64_t ud;			/* the backend's */
};

/* The flags of h's syscall: MSG_DONTWAIT, no MSG_ZEROCOPY. */
static inline int zc_batch_flags(const struct zc_batch_send *h)
{
	return (h->caller->flags & ~MSG_ZEROCOPY) | MSG_DONTWAIT;
}
/*
 * zc_batch_send.st: the send (res > 0) is complete, and its completion
 * is the backend's to hand out (backend_uring.c, done entries): the
 * backend ended it (counted it sent, wrote caller->result, cleared the
 * socket's tx_batched); the second half has nothing to do.
 */
#define ZC_BS_DONE	(1u << 16)

#ifdef ZC_HAVE_URING
/* backend_uring.c: forget the probe's answer (unit tests). */
void zc__uring_probe_reset(void);
/*
 * backend_uring.c: a context's ring, shared by its uring members; ctx.c
 * calls these under the context's lock. due(zs): the reaper is to reap zs
 * (ctx.c's, passed down: a backend does not call up).
 */
struct zc_uring_shared;
typedef void zc_due_fn(struct zc_sock *zs);
int zc__uring_join(struct zc_uring_shared **sh, int efd, struct zc_sock *zs);
void zc__uring_leave(struct zc_uring_shared *sh, struct zc_sock *zs,
		     zc_due_fn *due);
/*
 * zc_ctx_del() of a member, under the context's lock: zc__uring_settled()
 * until it says true (the member's notifications all in), sleeping in
 * between without the lock; then, the lock held since,
 * zc__uring_unshare() gives it a ring of its own and takes it out of the
 * shared one's table (-errno, nothing changed, if the ring cannot be
 * made).
 */
bool zc__uring_settled(struct zc_uring_shared *sh, struct zc_sock *zs,
		       zc_due_fn *due);
int zc__uring_unshare(struct zc_uring_shared *sh, struct zc_sock *zs);
/*
 * The reaper's look at the ring: a notification that completes its
 * member's oldest send, and nothing else of the member waits, becomes a
 * record in rec (up to max) at once; any other is applied and its member
 * due. Returns the records written; *more: the CQ may hold more.
 */
unsigned int zc__uring_reap(struct zc_uring_shared *sh, zc_due_fn *due,
			    struct zc_ctx_completion *rec, unsigned int max,
			    bool *more);
/*
 * The reaper, before it reaps member zs's ring the general way while
 * done entries of zs are out (zs->done_made != zs->done_taken): take the
 * forward ring up to max records, so that they come before the ring's
 * later entries. Returns the records written.
 */
unsigned int zc__uring_take(struct zc_uring_shared *sh, zc_due_fn *due,
			    struct zc_ctx_completion *rec, unsigned int max);
int zc__uring_register(struct zc_uring_shared **sh, int efd,
		       const struct iovec *iov, unsigned int n);
void zc__uring_shared_free(struct zc_uring_shared *sh);
/* Sends a batch may hold (zc__uring_send_batch(), backend_uring.h). */
#define ZC_URING_BATCH	64u
#endif

#pragma GCC visibility pop

#endif /* ZC_BACKEND_H */
