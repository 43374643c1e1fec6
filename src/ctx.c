// SPDX-License-Identifier: MIT
/*
 * Contexts: one fd that says "news" for many sockets, and one call that
 * reaps them all (zc_ctx_new(3)).
 *
 * How news reaches the context:
 * - errqueue and scm members: the socket fd is in the context's epoll set
 *   with EPOLLET (EPOLLERR comes without asking). The kernel wakes the
 *   socket's waiters every time it queues (or extends) a completion
 *   record, so each record gives an edge; the reaper then reads the
 *   error queue, foreign records too. An scm member's whole queue
 *   (collect with force); an errqueue member's one record, the common
 *   case (zc__eq_read_member()): the kernel's dequeue of a record that
 *   leaves others behind raises another edge (sock_dequeue_err_skb()),
 *   which brings the reaper back for them; any other record is applied
 *   and the member reaped the general way (which reads on while its
 *   oldest send waits for the kernel). Level-triggered, a socket error
 *   (sk_err) or a hang-up would report EPOLLERR or EPOLLHUP for ever with
 *   nothing to read.
 * - uring members: no fd of their own. They share the context's ring
 *   (backend_uring.c), whose registered eventfd is in the epoll set,
 *   EPOLLIN with EPOLLET: the kernel signals it for each CQE; the reaper drains the ring (or takes
 *   what a send forwarded) and queues the members it brought news of
 *   (zc__ctx_due()). A send that took an id is no news, as with errqueue.
 * - News that raises no event: a send complete at once (copy backend, a
 *   send the library copied, a failed send to settle), ranges the send
 *   side collected (scm) or forwarded (uring), and ids the reaper read
 *   before their sends were pushed (a send racing the reaper). A member
 *   keeps zc_sock.waiting set, so zc_publish() calls zc__wake_reaper() and
 *   with it zc__ctx_wake(): the member goes on the context's ready stack
 *   (lock-free, many pushers, the reaper takes it whole), and the push
 *   that finds the stack empty writes the context's eventfd, which is in
 *   the epoll set with EPOLLET: each write is an edge, which the reaper's
 *   epoll_wait() takes, so nobody reads its counter (level-triggered, a
 *   read(2) every time: for a copy member, a syscall a send). An errqueue
 *   send that took a kernel id is no news (its record will raise
 *   EPOLLERR), unless the reaper has said otherwise (zc_member.any).
 * - Work left over (a member reaped up to max) stays on the reaper's queue,
 *   and the eventfd is written so that the context's fd stays readable.
 *
 * The reaper's state (the member table, the queue, the epoll set) is under
 * the context's lock: zc_ctx_completions(), zc_ctx_wait() (not while it
 * sleeps), joining (zc_open()), leaving (zc_ctx_del(), zc_close()) and
 * zc_foreign() of a member take it. Sends never do.
 *
 * epoll data is a slot of the member table and its generation, not a
 * pointer: an event of a socket that left can never reach freed memory
 * (its fd closed before zc_close(), and still open elsewhere through a
 * dup, keeps its epoll registration).
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define CTX_EFD_TAG	UINT64_MAX	/* epoll data of the eventfd */
#define CTX_URING_TAG	(UINT64_MAX - 1)	/* ... of the ring's eventfd */
#define CTX_EVENTS	64		/* epoll events per epoll_wait() */
#define CTX_BATCH	64		/* completions per member reap */

struct ctx_slot {
	struct zc_sock *zs;		/* NULL: free */
	uint32_t gen;			/* bumped when the slot is freed */
	uint32_t next_free;
};

struct zc_ctx {
	/* Send side of every member: the ready stack, then the eventfd. */
	alignas(ZC_CACHELINE) struct zc_sock *_Atomic ready;
	int efd;
	int ep;				/* read-only after zc_ctx_new() */

	/* The reaper, under lock. */
	alignas(ZC_CACHELINE) pthread_mutex_t lock;
	struct ctx_slot *slots;
	uint32_t nslots, cap, free_slot;	/* free_slot: UINT32_MAX none */
	unsigned int members;
	struct zc_sock *qhead, *qtail;	/* members to reap, in turn */
	/*
	 * The context's own syscalls (zc_ctx_get_stats()): the reaper's,
	 * and zc_ctx_wait()'s sleep outside the lock. A member's send that
	 * signals the eventfd counts it in its own stats (zc__ctx_wake()).
	 */
	_Atomic uint64_t syscalls;
#ifdef ZC_HAVE_URING
	/* The uring members' ring, made when the first one joins. */
	struct zc_uring_shared *uring;
	int uefd;			/* its eventfd, or -1 */
#endif
};

/* Count n syscalls of the context's own. */
static void ctx_sys(struct zc_ctx *ctx, unsigned int n)
{
	atomic_fetch_add_explicit(&ctx->syscalls, n, memory_order_relaxed);
}

/*
 * Make the context's fd readable: a write to its eventfd, an edge (see
 * the top), not counted. Its counter only grows: the write could fail
 * (EAGAIN) only once 2^64 - 2 of them were made.
 */
static void efd_signal(struct zc_ctx *ctx)
{
	uint64_t one = 1;

	if (write(ctx->efd, &one, sizeof(one)) < 0) {
		/* Cannot happen: see above. */
	}
}

/* efd_signal() for the reaper or a member's arrival or departure. */
static void ctx_signal(struct zc_ctx *ctx)
{
	efd_signal(ctx);
	ctx_sys(ctx, 1);
}

ZC_EXPORT int zc_ctx_new(const struct zc_ctx_opts *opts, struct zc_ctx **out)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET,
				  .data.u64 = CTX_EFD_TAG };
	struct zc_ctx_opts o;
	struct zc_ctx *ctx;
	int ret;

	if (!out)
		return zc__err(-EINVAL, "zc_ctx_new: out is NULL");
	*out = NULL;
	ret = zc__opts_copy(opts, &o, offsetof(struct zc_ctx_opts, flags) +
			    sizeof(o.flags), "zc_ctx_opts");
	if (ret)
		return ret;
	if (o.flags)
		return zc__err(-EINVAL, "zc_ctx_opts.flags 0x%x: unknown bits",
			      o.flags);
	ctx = aligned_alloc(ZC_CACHELINE, (sizeof(*ctx) + ZC_CACHELINE - 1) &
			    ~(size_t)(ZC_CACHELINE - 1));
	if (!ctx)
		return zc__err(-ENOMEM, "zc_ctx_new: out of memory");
	memset(ctx, 0, sizeof(*ctx));
	atomic_init(&ctx->ready, NULL);
	ctx->free_slot = UINT32_MAX;
#ifdef ZC_HAVE_URING
	ctx->uefd = -1;
#endif
	ctx->ep = epoll_create1(EPOLL_CLOEXEC);
	if (ctx->ep < 0) {
		ret = zc__err(-errno, "zc_ctx_new: epoll_create1: %s",
			      strerror(errno));
		free(ctx);
		return ret;
	}
	ctx->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (ctx->efd < 0 || epoll_ctl(ctx->ep, EPOLL_CTL_ADD, ctx->efd, &ev)) {
		ret = zc__err(-errno, "zc_ctx_new: eventfd: %s", strerror(errno));
		if (ctx->efd >= 0)
			close(ctx->efd);
		close(ctx->ep);
		free(ctx);
		return ret;
	}
	ctx_sys(ctx, 3);	/* epoll_create1(), eventfd(), epoll_ctl() */
	ret = pthread_mutex_init(&ctx->lock, NULL);
	if (ret) {
		close(ctx->efd);
		close(ctx->ep);
		free(ctx);
		return zc__err(-ret, "zc_ctx_new: pthread_mutex_init: %s",
			      strerror(ret));
	}
	*out = ctx;
	return 0;
}

ZC_EXPORT int zc_ctx_free(struct zc_ctx *ctx)
{
	if (!ctx)
		return 0;
	pthread_mutex_lock(&ctx->lock);
	if (ctx->members) {
		unsigned int n = ctx->members;

		pthread_mutex_unlock(&ctx->lock);
		return zc__err(-EBUSY, "zc_ctx_free: %u sockets still belong to "
			      "the context: zc_close() or zc_ctx_del() them "
			      "first", n);
	}
	pthread_mutex_unlock(&ctx->lock);
	pthread_mutex_destroy(&ctx->lock);
#ifdef ZC_HAVE_URING
	zc__uring_shared_free(ctx->uring);
	if (ctx->uefd >= 0)
		close(ctx->uefd);
#endif
	close(ctx->efd);
	close(ctx->ep);
	free(ctx->slots);
	free(ctx);
	return 0;
}

ZC_EXPORT int zc_ctx_fd(const struct zc_ctx *ctx)
{
	if (!ctx)
		return zc__err(-EINVAL, "zc_ctx_fd: ctx is NULL");
	return ctx->ep;
}

/* Reaper: queue zs (at the tail) for reaping, once. */
static void q_add(struct zc_ctx *ctx, struct zc_sock *zs)
{
	struct zc_member *m = &zs->ctxm;

	if (m->queued)
		return;
	m->queued = true;
	m->qnext = NULL;
	m->qprev = ctx->qtail;
	if (ctx->qtail)
		ctx->qtail->ctxm.qnext = zs;
	else
		ctx->qhead = zs;
	ctx->qtail = zs;
}

static void q_del(struct zc_ctx *ctx, struct zc_sock *zs)
{
	struct zc_member *m = &zs->ctxm;

	if (!m->queued)
		return;
	if (m->qprev)
		m->qprev->ctxm.qnext = m->qnext;
	else
		ctx->qhead = m->qnext;
	if (m->qnext)
		m->qnext->ctxm.qprev = m->qprev;
	else
		ctx->qtail = m->qprev;
	m->queued = false;
	m->qprev = m->qnext = NULL;
}

/* q_del() of the queue's head, zs. */
static inline void q_pop(struct zc_ctx *ctx, struct zc_sock *zs)
{
	struct zc_sock *next = zs->ctxm.qnext;

	ctx->qhead = next;
	if (next)
		next->ctxm.qprev = NULL;
	else
		ctx->qtail = NULL;
	zs->ctxm.queued = false;
	zs->ctxm.qnext = NULL;	/* qprev: NULL at the head */
}

#ifdef ZC_HAVE_URING
/* Reaper, under the lock (backends): zs has news; reap it. */
static void ctx_due(struct zc_sock *zs)
{
	q_add(zs->ctx, zs);
}
#endif

/* Reaper: move the ready stack onto the queue. */
static void take_ready(struct zc_ctx *ctx)
{
	/*
	 * Acquire: pairs with the release of the push's CAS in
	 * zc__ctx_wake() (and the release sequence of later pushes): the
	 * next_ready links are visible.
	 */
	struct zc_sock *zs = atomic_exchange_explicit(&ctx->ready, NULL,
						      memory_order_acquire);

	while (zs) {
		struct zc_sock *next = zs->ctxm.next_ready;

		/*
		 * Seq_cst, before reaping it: the send side stores tail, then
		 * loads ready (zc__ctx_wake()); we store ready, then load tail:
		 * we see its entry, or it pushes the member again.
		 */
		atomic_store_explicit(&zs->ctxm.ready, 0, memory_order_seq_cst);
		q_add(ctx, zs);
		zs = next;
	}
}

/*
 * Send side (zc_publish() and the backends, through zc__wake_reaper()):
 * the send just pushed may be news that raises no event; if so, put the
 * member on the ready stack.
 */
void zc__ctx_wake(struct zc_sock *zs)
{
	struct zc_ctx *ctx;
	struct zc_sock *head;

	/*
	 * A send that took an id: its record raises EPOLLERR (uring on the
	 * context's ring: the reaper applies its notification and reaps the
	 * member), unless the reaper had it already: the test the send side
	 * makes inline. scm: and unless its harvests took ranges since the
	 * last wake. Only the send side writes sends_zc: its own counter,
	 * loaded again after the test (nothing kept across its call).
	 */
	if (zs->ctxm.ids_report) {
		if (atomic_load_explicit(&zs->tx.sends_zc,
					 memory_order_relaxed) !=
		    zs->ctxm.tx_zc && zc_ctx_took_id_quiet(zs))
			return;
		zs->ctxm.tx_zc = atomic_load_explicit(&zs->tx.sends_zc,
						      memory_order_relaxed);
		/*
		 * scm: the ranges pushed so far are the reaper's to collect
		 * now: it takes the member from the ready stack, then loads
		 * rtail (seq_cst: stored seq_cst before our load of ready
		 * below, as tail is; see take_ready()).
		 */
		if (zs->ctxm.ids_report == ZC_IDS_SCM) {
			struct scm_priv *p = zs->backend_priv;

			p->rtail_woken = (uint16_t)atomic_load_explicit(
				&p->rtail, memory_order_relaxed);
		}
	}
	ctx = zs->ctx;
	/* Seq_cst: see take_ready(). Already on the stack: nothing to do. */
	if (atomic_load_explicit(&zs->ctxm.ready, memory_order_seq_cst) ||
	    atomic_exchange_explicit(&zs->ctxm.ready, 1, memory_order_seq_cst))
		return;
	head = atomic_load_explicit(&ctx->ready, memory_order_relaxed);
	do {
		zs->ctxm.next_ready = head;
		/* Release: pairs with the acquire in take_ready(). */
	} while (!atomic_compare_exchange_weak_explicit(&ctx->ready, &head, zs,
			memory_order_release, memory_order_relaxed));
	if (!head) {	/* the stack was empty: the reaper must look */
		efd_signal(ctx);
		ZC_STAT_INC(&zs->tx, syscalls);
	}
}

static int slot_get(struct zc_ctx *ctx, uint32_t *slot)
{
	if (ctx->free_slot != UINT32_MAX) {
		*slot = ctx->free_slot;
		ctx->free_slot = ctx->slots[*slot].next_free;
		return 0;
	}
	if (ctx->nslots == ctx->cap) {
		uint32_t cap = ctx->cap ? ctx->cap * 2 : 64;
		struct ctx_slot *s;

		if (cap > (1u << 30))
			return -ENOMEM;
		s = realloc(ctx->slots, cap * sizeof(*s));
		if (!s)
			return -ENOMEM;
		ctx->slots = s;
		ctx->cap = cap;
	}
	*slot = ctx->nslots++;
	ctx->slots[*slot].gen = 0;
	return 0;
}

static void slot_put(struct zc_ctx *ctx, uint32_t slot)
{
	ctx->slots[slot].zs = NULL;
	ctx->slots[slot].gen++;
	ctx->slots[slot].next_free = ctx->free_slot;
	ctx->free_slot = slot;
}

/* The fd that tells of zs's news in the epoll set, or -1 (copy). */
static int member_fd(const struct zc_sock *zs)
{
	if (!zs->ops->zerocopy)
		return -1;
	if (zs->ops->news_on_efd)
		return atomic_load_explicit(&zs->efd, memory_order_relaxed);
	return zs->fd;
}

#ifdef ZC_HAVE_URING
/*
 * Under the lock: the eventfd for the uring members' ring, in the epoll
 * set with EPOLLET, as a socket's own ring's eventfd is: the kernel
 * signals it for each CQE, and each signal is an edge, so nobody reads
 * its counter (a level-triggered one would cost a read(2) every reap).
 */
static int uring_efd(struct zc_ctx *ctx)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET,
				  .data.u64 = CTX_URING_TAG };
	int fd, ret;

	if (ctx->uefd >= 0)
		return ctx->uefd;
	ctx_sys(ctx, 2);	/* eventfd(), epoll_ctl() */
	fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (fd < 0 || epoll_ctl(ctx->ep, EPOLL_CTL_ADD, fd, &ev)) {
		ret = -errno;
		if (fd >= 0)
			close(fd);
		return zc__err(ret, "the context's ring: eventfd: %s",
			      strerror(-ret));
	}
	ctx->uefd = fd;
	return fd;
}
#endif

/* zc_open(): zs joins ctx; nothing was sent on it yet. */
int zc__ctx_join(struct zc_ctx *ctx, struct zc_sock *zs, uint64_t tag)
{
	struct epoll_event ev = { .events = EPOLLET };
	uint32_t slot;
	int fd = member_fd(zs), ret;

	if (zs->ops->news_on_efd)
		ev.events |= EPOLLIN;
	pthread_mutex_lock(&ctx->lock);
	ret = slot_get(ctx, &slot);
	if (ret) {
		pthread_mutex_unlock(&ctx->lock);
		return zc__err(ret, "zc_open: joining the context: out of "
			      "memory");
	}
	ev.data.u64 = (uint64_t)ctx->slots[slot].gen << 32 | slot;
	if (fd >= 0)
		ctx_sys(ctx, 1);
	if (fd >= 0 && epoll_ctl(ctx->ep, EPOLL_CTL_ADD, fd, &ev)) {
		ret = -errno;
		ctx->slots[slot].zs = NULL;
		slot_put(ctx, slot);
		pthread_mutex_unlock(&ctx->lock);
		return zc__err(ret, "zc_open: adding fd %d to the context's "
			      "epoll set: %s", fd, strerror(-ret));
	}
#ifdef ZC_HAVE_URING
	/* A uring member has no fd of its own: it joins the ring. */
	if (zs->ops == &zc__ops_uring_member && (ret = uring_efd(ctx)) >= 0 &&
	    (ret = zc__uring_join(&ctx->uring, ret, zs)) > 0) {
		zs->ctxm.ids_report = ZC_IDS_REPORTED;	/* see zc__ctx_wake() */
		ret = 0;
	} else if (ret) {
		ctx->slots[slot].zs = NULL;
		slot_put(ctx, slot);
		pthread_mutex_unlock(&ctx->lock);
		return ret;
	}
#endif
	if (zs->ops == &zc__ops_errqueue)
		zs->ctxm.ids_report = ZC_IDS_REPORTED;
	else if (zs->ops == &zc__ops_scm)
		zs->ctxm.ids_report = ZC_IDS_SCM;
	ctx->slots[slot].zs = zs;
	ctx->members++;
	zs->ctxm.slot = slot;
	zs->ctxm.tag = tag;
	zs->ctx = ctx;
	/* Every publish calls zc__wake_reaper(): see zc__ctx_wake(). */
	atomic_store_explicit(&zs->waiting, 1, memory_order_seq_cst);
	pthread_mutex_unlock(&ctx->lock);
	return 0;
}

/* Under the lock: zs leaves; no send runs on it. */
static void leave_locked(struct zc_ctx *ctx, struct zc_sock *zs)
{
	int fd = member_fd(zs);
	struct stat st;

	/*
	 * Out of the epoll set now: closing the fd would not take it out
	 * while a dup of it lives. Only if the fd is still the socket: the
	 * caller may have closed it already (EBADF), and its number may be
	 * another socket's since, perhaps a member's, whose registration
	 * EPOLL_CTL_DEL of the number would take away. What remains of ours
	 * then (a dup of the socket lives on) the slot's generation guards
	 * against.
	 */
	if (fd >= 0) {
		ctx_sys(ctx, 1);
		if (!fstat(fd, &st) && S_ISSOCK(st.st_mode) &&
		    st.st_ino == zs->ino) {
			epoll_ctl(ctx->ep, EPOLL_CTL_DEL, fd, NULL);
			ctx_sys(ctx, 1);
		}
	}
#ifdef ZC_HAVE_URING
	/* Out of the ring's table: no send forwards its news any more. */
	if (zs->ops == &zc__ops_uring_member)
		zc__uring_leave(ctx->uring, zs, ctx_due);
#endif
	/* Off the ready stack (no send pushes it again), off the queue. */
	take_ready(ctx);
	q_del(ctx, zs);
	if (ctx->qhead)
		ctx_signal(ctx);	/* the others stay due */
	slot_put(ctx, zs->ctxm.slot);
	ctx->members--;
	atomic_store_explicit(&zs->waiting, 0, memory_order_relaxed);
	zs->ctx = NULL;
	memset(&zs->ctxm, 0, sizeof(zs->ctxm));
}

/* zc_close() of a member. */
void zc__ctx_leave(struct zc_sock *zs)
{
	struct zc_ctx *ctx = zs->ctx;

	pthread_mutex_lock(&ctx->lock);
	leave_locked(ctx, zs);
	pthread_mutex_unlock(&ctx->lock);
}

/* zc_ctx_del() of a uring member: how long its notifications may take. */
#define CTX_DEL_WAIT_MS	2000

ZC_EXPORT int zc_ctx_del(struct zc_ctx *ctx, struct zc_sock *zs)
{
	if (!ctx || !zs)
		return zc__err(-EINVAL, "zc_ctx_del: ctx or zs is NULL");
	pthread_mutex_lock(&ctx->lock);
	if (zs->ctx != ctx) {
		pthread_mutex_unlock(&ctx->lock);
		return zc__err(-EINVAL, "zc_ctx_del: the socket does not belong "
			      "to this context");
	}
#ifdef ZC_HAVE_URING
	/*
	 * A ring of its own, once the context's has brought all its news.
	 * Each look holds the lock for a drain; the waits between them do
	 * not, so that the context's other calls never wait for this one
	 * (zc_ctx_completions() never blocks). No send runs on zs, and it
	 * stays a member meanwhile (its news may be reaped by another
	 * thread); whoever holds the lock next may be another zc_ctx_del().
	 */
	if (zs->ops == &zc__ops_uring_member) {
		int64_t deadline = zc_now_ms() + CTX_DEL_WAIT_MS;
		int ret;

		while (!zc__uring_settled(ctx->uring, zs, ctx_due)) {
			if (zc_now_ms() > deadline) {
				pthread_mutex_unlock(&ctx->lock);
				return zc__err(-EBUSY, "zc_ctx_del: the kernel "
					       "has not reported some of the "
					       "socket's sends for %d ms; try "
					       "again later, or zc_close() it",
					       CTX_DEL_WAIT_MS);
			}
			pthread_mutex_unlock(&ctx->lock);
			nanosleep(&(struct timespec){ .tv_nsec = 1000000 },
				  NULL);
			pthread_mutex_lock(&ctx->lock);
		}
		ret = zc__uring_unshare(ctx->uring, zs);
		if (ret) {
			pthread_mutex_unlock(&ctx->lock);
			return ret;
		}
	}
#endif
	leave_locked(ctx, zs);
	pthread_mutex_unlock(&ctx->lock);
	return 0;
}

ZC_EXPORT int zc_ctx_register_buffers(struct zc_ctx *ctx,
				      const struct iovec *iov, unsigned int n)
{
	int ret;

	if (!ctx || (!iov && n))
		return zc__err(-EINVAL, "zc_ctx_register_buffers: ctx or iov "
			      "is NULL");
#ifdef ZC_HAVE_URING
	pthread_mutex_lock(&ctx->lock);
	ret = uring_efd(ctx);
	if (ret >= 0)
		ret = zc__uring_register(&ctx->uring, ret, iov, n);
	pthread_mutex_unlock(&ctx->lock);
#else
	ret = zc__err(-EOPNOTSUPP, "zc_ctx_register_buffers: this libzcnotify "
		      "was built without liburing");
#endif
	return ret;
}

int zc__ctx_foreign(struct zc_sock *zs, struct zc_errrec *out,
		    unsigned int max)
{
	struct zc_ctx *ctx = zs->ctx;
	int ret;

	pthread_mutex_lock(&ctx->lock);
	ret = zc__foreign_member(zs, out, max);
	/*
	 * Reading the queue may have taken completion records whose edge
	 * the reaper will not see again: reap the member on the next call.
	 */
	if (zs->ops->zerocopy) {
		q_add(ctx, zs);
		ctx_signal(ctx);
	}
	pthread_mutex_unlock(&ctx->lock);
	return ret;
}

/*
 * Reaper, after reaping zs dry (fewer than asked): are there ids the
 * kernel reported whose sends we have not seen pushed yet (a send racing
 * the read)? Then their push is news that raises no event: say so to
 * zc__ctx_wake() (any), and look at tail again.
 *
 * A push may also land between the reap's load of tail and ours here: its
 * send found any clear and raised nothing (zc__ctx_wake()), and the
 * kernel's report of its id was applied already, so none will come
 * either. Reap the member again then, unless its oldest entry waits for
 * an id the kernel has not reported: that report queues it (route(),
 * fwd_take(), the error queue's edge). failed: the reap ended in an
 * error record.
 */
static void finish_member(struct zc_ctx *ctx, struct zc_sock *zs,
			  bool failed)
{
	uint32_t h;
	bool moved;

	if (!zs->ctxm.ids_report)
		return;
	h = atomic_load_explicit(&zs->head, memory_order_relaxed);
	moved = atomic_load_explicit(&zs->tail, memory_order_acquire) != h;
	if (moved || (zc_done_to(zs) == zs->zc_head && !zs->nmarks)) {
		if (atomic_load_explicit(&zs->ctxm.any, memory_order_relaxed))
			atomic_store_explicit(&zs->ctxm.any, 0,
					      memory_order_relaxed);
		/*
		 * Pushed since the reap, and ready: nobody else says so.
		 * Not after an error: it would come again at once.
		 */
		if (moved && !failed && !zc_ring_blocked(zs))
			q_add(ctx, zs);
		return;
	}
	/*
	 * Seq_cst store of any, then seq_cst load of tail; the send side
	 * stores tail, then loads any (zc_publish(), zc__ctx_wake()): we see
	 * its entry, or it wakes us.
	 */
	atomic_store_explicit(&zs->ctxm.any, 1, memory_order_seq_cst);
	if (atomic_load_explicit(&zs->tail, memory_order_seq_cst) != h)
		q_add(ctx, zs);
}

/*
 * Reaper: up to max completions of zs into out. Returns the count (max:
 * there may be more), with an error as a ZC_CTX_ERROR record.
 */
static unsigned int reap_member(struct zc_sock *zs,
				struct zc_ctx_completion *out, unsigned int max)
{
	struct zc_completion c[CTX_BATCH];
	unsigned int got = 0;
	int n;

#ifdef ZC_HAVE_URING
	/*
	 * Done entries of zs still in the forward ring (backend_uring.c):
	 * they are older than anything in its ring. Take the forward ring
	 * first; if some are out still (not forwarded yet), zs's ring holds
	 * nothing after them yet: the send that made them has not returned.
	 */
	if (atomic_load_explicit(&zs->done_made, memory_order_relaxed) !=
	    atomic_load_explicit(&zs->done_taken, memory_order_relaxed)) {
		got = zc__uring_take(zs->ctx->uring, ctx_due, out, max);
		if (got == max ||
		    atomic_load_explicit(&zs->done_made,
					 memory_order_acquire) !=
		    atomic_load_explicit(&zs->done_taken,
					 memory_order_relaxed))
			return got;
	}
#endif
	if (zs->ctxm.read) {
		bool handed = false;

		zs->ctxm.read = false;
		/*
		 * The edge is spent: read (see the top); for uring the CQ,
		 * whether or not a send waits for it. The error queue's
		 * common record may come out as a completion at once.
		 */
		n = zs->ops == &zc__ops_errqueue ?
		    zc__eq_read_member(zs, c, &handed) :
		    zs->ops == &zc__ops_scm ?
		    zc__scm_read_member(zs, c, &handed) :
		    zs->ops->collect(zs, !zs->ops->news_on_efd);
		if (n < 0) {
			out[got++] = (struct zc_ctx_completion){
				.zs = zs, .tag = zs->ctxm.tag,
				.flags = ZC_CTX_ERROR, .error = n,
			};
			return got;
		}
		if (handed) {
			/* Nothing else of zs is ready: zc__eq_read_member(). */
			out[got++] = (struct zc_ctx_completion){
				.zs = zs, .tag = zs->ctxm.tag,
				.cookie = c[0].cookie, .bytes = c[0].bytes,
				.flags = c[0].flags,
			};
			return got;
		}
	}
	while (got < max) {
		unsigned int want = max - got < CTX_BATCH ? max - got : CTX_BATCH;

		n = zc__completions_member(zs, c, want);
		if (n < 0) {
			out[got++] = (struct zc_ctx_completion){
				.zs = zs, .tag = zs->ctxm.tag,
				.flags = ZC_CTX_ERROR, .error = n,
			};
			break;
		}
		for (int i = 0; i < n; i++)
			out[got++] = (struct zc_ctx_completion){
				.zs = zs, .tag = zs->ctxm.tag,
				.cookie = c[i].cookie, .bytes = c[i].bytes,
				.flags = c[i].flags,
			};
		if ((unsigned int)n < want)
			break;
	}
	return got;
}

/* Reaper: the epoll events onto the queue. Returns 1 if there may be more. */
static int take_events(struct zc_ctx *ctx)
{
	struct epoll_event ev[CTX_EVENTS];
	int n = epoll_wait(ctx->ep, ev, CTX_EVENTS, 0);

	ctx_sys(ctx, 1);
	if (n < 0)
		return errno == EINTR ? 1 : -errno;
	for (int i = 0; i < n; i++) {
		uint64_t d = ev[i].data.u64;
		uint32_t slot = (uint32_t)d;
		struct zc_sock *zs;

		if (d == CTX_URING_TAG)
			continue;	/* the ring: ctx_reap() drains it */
		/* The eventfd's edge (EPOLLET): its counter is never read. */
		if (d == CTX_EFD_TAG)
			continue;
		/* A member that left since: its slot moved on. */
		if (slot >= ctx->nslots || ctx->slots[slot].gen != d >> 32 ||
		    !(zs = ctx->slots[slot].zs))
			continue;
		zs->ctxm.read = true;
		q_add(ctx, zs);
	}
	return n == CTX_EVENTS;
}

static int ctx_reap(struct zc_ctx *ctx, struct zc_ctx_completion *out,
		    unsigned int max)
{
	unsigned int n = 0;
	bool umore = false;
	int more;

	do {
		more = take_events(ctx);
		if (more < 0)
			return zc__err(more, "zc_ctx_completions: epoll_wait: %s",
				      strerror(-more));
#ifdef ZC_HAVE_URING
		/*
		 * After the eventfd's read: see zc__uring_reap(). Its records
		 * first: a member's later ones come from its reap below.
		 */
		if (ctx->uring) {
			bool m;

			n += zc__uring_reap(ctx->uring, ctx_due, out + n,
					    max - n, &m);
			umore |= m;
		}
#endif
		take_ready(ctx);
		/*
		 * In turn: a member that fills what is left goes to the back
		 * of the queue, and the next call starts with the others.
		 */
		while (n < max && ctx->qhead) {
			struct zc_sock *zs = ctx->qhead;
			unsigned int room = max - n, got;

			q_pop(ctx, zs);
			got = reap_member(zs, out + n, room);
			n += got;
			if (got == room)
				q_add(ctx, zs);	/* perhaps more */
			else
				finish_member(ctx, zs, got && (out[n - 1].flags &
							       ZC_CTX_ERROR));
		}
	} while (more && n < max);
	/* Left over: keep the context's fd readable. */
	if (ctx->qhead || more || umore)
		ctx_signal(ctx);
	return (int)n;
}

ZC_EXPORT int zc_ctx_completions(struct zc_ctx *ctx,
				 struct zc_ctx_completion *out,
				 unsigned int max)
{
	int n;

	if (!ctx || (!out && max))
		return zc__err(-EINVAL, "zc_ctx_completions: ctx or out is NULL");
	if (!max)
		return 0;
	if (max > INT_MAX)
		max = INT_MAX;
	pthread_mutex_lock(&ctx->lock);
	n = ctx_reap(ctx, out, max);
	pthread_mutex_unlock(&ctx->lock);
	return n;
}

ZC_EXPORT int zc_ctx_get_stats(struct zc_ctx *ctx, struct zc_ctx_stats *st)
{
	struct zc_ctx_stats s = { .sz = sizeof(s) };
	size_t sz;

	if (!ctx || !st)
		return zc_err_lit(-EINVAL, "zc_ctx_get_stats: ctx or st is NULL");
	sz = st->sz;
	if (sz < sizeof(size_t))
		return zc__err(-EINVAL, "zc_ctx_get_stats: st->sz is %zu, must "
			      "be sizeof(struct zc_ctx_stats)", sz);
	/* Relaxed: a count that only grows. */
	s.syscalls = atomic_load_explicit(&ctx->syscalls, memory_order_relaxed);
	pthread_mutex_lock(&ctx->lock);
	s.members = ctx->members;
	pthread_mutex_unlock(&ctx->lock);
	zc__copy_sized(st, sz, &s, sizeof(s));
	return 0;
}

#ifdef ZC_HAVE_URING
/*
 * zc_ctx_sendmmsg()'s sends on the shared ring, not yet submitted; ok:
 * the call's sends that succeeded so far (counted as each result is
 * written, not in a pass over v at the end).
 */
struct ctx_batch {
	unsigned int n, ok;
	struct zc_uring_q q;		/* while n: the ring's lock held */
	/* And the guard zc__uring_send_batch() puts past the last. */
	struct zc_batch_send s[ZC_URING_BATCH + 1];
};

/*
 * zc__ctx_wake() for a send of uring member zs (ids_report) that took an
 * id, published by zc__send_finish() without zc_publish()'s wake-up (a
 * member keeps waiting set: the wake-up would come here).
 */
static inline void ctx_took_id(struct zc_sock *zs)
{
	if (!zc_member_took_id_quiet(zs))
		zc__ctx_wake(zs);
}

/* One io_uring_enter() for the batch, then each send's second half. */
static void batch_flush(struct ctx_batch *b)
{
	unsigned int done;

	if (!b->n)
		return;
	done = zc__uring_send_batch(&b->q, b->s, b->n);
	b->ok += done;
	/* Every send ended by the backend (done entries): nothing left. */
	for (unsigned int i = 0; done != b->n && i < b->n; i++) {
		const struct zc_batch_send *h = &b->s[i];
		struct zc_sock *zs = h->zs;
		ssize_t r;

		/*
		 * Complete already, its completion with the reaper (a done
		 * entry), ended by the backend: nothing to publish, no news.
		 */
		if (h->st & ZC_BS_DONE)
			continue;
		zs->tx_batched = false;
		r = zc__send_finish(h);
		h->caller->result = r;
		b->ok += r >= 0;
		if (r > 0)
			ctx_took_id(zs);
	}
	b->n = 0;
}
#endif

/*
 * The send of s: on the shared ring, a uring member's zero-copy send
 * joins the batch (a socket already there flushes it first: its sends go
 * in order, one at a time), its SQE written as it is checked: the batch's
 * first takes the ring's lock (zc__uring_open()), held until the batch
 * is flushed; any other send is made now, the batch flushed first (what
 * it calls may take that lock, or the context's). Returns 1 if a send
 * made now succeeded, else 0 (a batched one is counted by batch_flush()).
 */
static unsigned int ctx_send(struct zc_ctx *ctx, struct zc_ctx_send *s, unsigned int i,
		     void *batch)
{
	struct zc_sock *zs = s->zs;

	if (!zs || zs->ctx != ctx) {
		s->result = zc__err(-EINVAL, "zc_ctx_sendmmsg: entry %u: zs %s",
				    i, zs ? "is not a member of ctx" :
				    "is NULL");
		return 0;
	}
	if (!s->msg) {
		s->result = zc__err(-EINVAL, "zc_ctx_sendmmsg: entry %u: msg "
				    "is NULL", i);
		return 0;
	}
#ifdef ZC_HAVE_URING
	if (zs->ops == &zc__ops_uring_member) {
		struct ctx_batch *b = batch;
		struct zc_batch_send *h;
		const struct msghdr *msg = s->msg;
		const int flags = s->flags;
		size_t len;
		void *base;
		bool queued;
		ssize_t r;

		if (zs->tx_batched)
			batch_flush(b);
		h = &b->s[b->n];
		h->caller = s;
		if (zc__send_start_fast(zs, msg, flags, s->cookie, h, &base,
					&len)) {
			/* Its SQE as it is checked: one walk of the sends. */
			if (!b->n)
				zc__uring_open(&b->q, zs);
			zc__uring_queue(&b->q, h, zs, base, len,
					(flags & ~MSG_ZEROCOPY) | MSG_DONTWAIT,
					b->n);
		} else {
			/*
			 * What it calls may take the ring's lock, or the
			 * context's: the batch's given back first.
			 */
			batch_flush(b);
			h = &b->s[0];
			h->caller = s;
			r = zc__send_start_general(zs, msg, flags, s->cookie, h,
						   &queued);
			if (!queued) {
				s->result = r;
				return r >= 0;
			}
			zc__uring_open(&b->q, zs);
			zc__uring_queue_other(&b->q, h, 0);
		}
		zs->tx_batched = true;
		if (++b->n == ZC_URING_BATCH)
			batch_flush(b);
		return 0;
	}
	/* As above: the batch's lock given back first. */
	batch_flush(batch);
#else
	(void)batch;
#endif
	s->result = zc_sendmsg(zs, s->msg, s->flags | MSG_DONTWAIT, s->cookie);
	return s->result >= 0;
}

ZC_EXPORT int zc_ctx_sendmmsg(struct zc_ctx *ctx, struct zc_ctx_send *v,
			      unsigned int n)
{
#ifdef ZC_HAVE_URING
	struct ctx_batch b;
#else
	char b;
#endif
	unsigned int ok = 0;

	if (!ctx || (!v && n))
		return zc__err(-EINVAL, "zc_ctx_sendmmsg: ctx or v is NULL");
	if (n > INT_MAX)
		n = INT_MAX;
#ifdef ZC_HAVE_URING
	b.n = b.ok = 0;
#endif
	for (unsigned int i = 0; i < n; i++)
		ok += ctx_send(ctx, &v[i], i, &b);
#ifdef ZC_HAVE_URING
	batch_flush(&b);
	ok += b.ok;
#endif
	return (int)ok;
}

ZC_EXPORT int zc_ctx_wait(struct zc_ctx *ctx, struct zc_ctx_completion *out,
			  unsigned int max, int timeout_ms)
{
	int64_t deadline = timeout_ms >= 0 ? zc_now_ms() + timeout_ms : 0;

	if (!ctx || (!out && max))
		return zc__err(-EINVAL, "zc_ctx_wait: ctx or out is NULL");
	if (timeout_ms < -1)
		return zc__err(-EINVAL, "zc_ctx_wait: timeout_ms %d", timeout_ms);
	for (;;) {
		struct pollfd pfd = { .fd = ctx ? ctx->ep : -1, .events = POLLIN };
		int n = zc_ctx_completions(ctx, out, max), tmo = -1;

		if (n || !max)
			return n;
		if (timeout_ms >= 0) {
			int64_t left = deadline - zc_now_ms();

			if (left <= 0)
				return 0;
			tmo = left > INT_MAX ? INT_MAX : (int)left;
		}
		/* Readable while an event (the eventfd's edge too) is pending. */
		if (poll(&pfd, 1, tmo) < 0)
			return zc__err(-errno, "zc_ctx_wait: poll: %s",
				      strerror(errno));
		ctx_sys(ctx, 1);
	}
}
