// SPDX-License-Identifier: MIT
/*
 * The io_uring backend (ABI.md section 3): each zero-copy send is one
 * IORING_OP_SEND_ZC (one iovec, no address, no control) or
 * IORING_OP_SENDMSG_ZC on a ring of the socket's own, and zc_sendmsg()
 * stays synchronous: it submits the request and waits for its result CQE.
 * The request's notification CQE (IORING_CQE_F_NOTIF, same user_data)
 * completes the send.
 *
 * Ids. io_uring does not use the socket's MSG_ZEROCOPY counter: the ids
 * are ours. A send's user_data is the id the core gives it, zs->zc_next,
 * and a notification becomes the range [id, id]. A send that fails takes
 * no id, so the next send reuses it, when its notification came with its
 * result (dropped there, so that it can never be taken for the next
 * send's). It need not: over TCP the kernel may chain the failed send's
 * notification to that of an earlier send whose data waits in the same
 * skb (io_link_skb()), and post it only once that data is acknowledged,
 * which a peer that stopped reading never does. A blocking send waits for
 * it; a non-blocking one (MSG_DONTWAIT) does not: it takes its id all the
 * same (zc_sock.tx_ghost_id), the core gives the id a ghost entry, and
 * the notification, when it comes, completes that, as any other. A result
 * without IORING_CQE_F_MORE has no notification: the send side completes
 * its id at once, the same way, as a range (copied: the kernel no longer
 * holds the pages).
 *
 * Who reads the CQ. It has one consumer at a time, and cq_owner says which:
 * CQ_FREE, CQ_SEND or CQ_REAP.
 * - The send side takes it for the whole of a send (it must read the CQ to
 *   find its result) and forwards the notifications of earlier sends that
 *   it meets to the reap side through a private single-producer, single-
 *   consumer range ring, as the SCM backend does.
 * - The reap side (collect) applies that range ring, then takes the CQ
 *   only if it is free, and applies what it reads itself. It holds the CQ
 *   for a short drain that never blocks, so a send that finds the CQ taken
 *   spins (then yields) until it is free: in steady state the only
 *   contention is a send racing a reaper's drain. If the CQ is taken by a
 *   send, the reap side does not wait: that send forwards what it reads.
 * - When the send side gives the CQ back it looks at the CQ tail again:
 *   a CQE that came after its last read may have been missed by a reaper
 *   that found the CQ taken (see cq_give()).
 * Sleeping: the ring has zs->efd registered as its eventfd, so the kernel
 * wakes a zc_wait() for every CQE it posts, and the send side wakes it
 * (zc__wake_reaper()) when it forwards ranges and no push follows.
 *
 * Notifications are posted by task work of the thread that submitted the
 * request. The ring is set up without IORING_SETUP_COOP_TASKRUN or
 * DEFER_TASKRUN, so the kernel interrupts that thread (or posts from a
 * kernel worker if it has exited) and the CQE comes even while no send runs.
 * That interruption also cuts short a blocking sendmsg(2) of this thread
 * that waits for room: a copying send sends the rest (copy_send()).
 *
 * The CQ never fills (ring_init()): the kernel never holds a CQE back nor
 * drops one. Should it hold some back all the same (IORING_SQ_CQ_OVERFLOW),
 * the send side's wait and the reap side's io_uring_get_events() flush
 * them. tests/test-uring.c's fake-* tests run this file against a fake
 * io_uring (the liburing calls wrapped) for what real kernels do not post.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <liburing.h>

#include "backend.h"
#include "backend_uring.h"
#include "errqueue.h"

/* user_data of our own requests: above every 32-bit id. */
#define URING_UD_CANCEL		(1ull << 32)	/* cancels a parked send */
#define URING_UD_IGNORE		(2ull << 32)	/* withdrawn send, probe */
#define URING_UD_NONE		(3ull << 32)	/* no send waits for a CQE */
#define URING_SQ		4u	/* a send, its cancel, a withdrawn send */
#define URING_REAP_BATCH	64u	/* CQEs per hold of the CQ (reap side) */
#define URING_TRIES		4	/* submits refused with -EBUSY/-EAGAIN */

enum { CQ_FREE, CQ_SEND, CQ_REAP };

struct uring_priv {
	/*
	 * The SQ is the send side's. The CQ is read by whoever holds
	 * cq_owner. The rest of the struct is read-only after setup.
	 */
	struct io_uring ring;
	struct zc_range *ranges;	/* the range ring, rmask + 1 slots */
	uint32_t rmask;
	unsigned int zc_flags;		/* IORING_SEND_ZC_REPORT_USAGE or 0 */
	bool ring_ok;			/* ring set up: queue_exit it */

	/* CQ_FREE, CQ_SEND or CQ_REAP; both sides CAS it. */
	alignas(ZC_CACHELINE) _Atomic uint32_t cq_owner;

	/* Send side. */
	alignas(ZC_CACHELINE) _Atomic uint32_t rtail;
	bool nonblock;			/* O_NONBLOCK, as last seen */

	/* Reap side. */
	alignas(ZC_CACHELINE) _Atomic uint32_t rhead;
};

/* One send in progress (send side). */
struct uring_op {
	uint64_t ud;		/* its user_data: the id it would take */
	int res;		/* its result CQE's res */
	bool have_res;		/* the result CQE came */
	bool more;		/* ... with F_MORE: a notification follows */
	bool notif;		/* the notification came */
	bool notif_copied;	/* ... and said the data was copied */
	bool cancel_out;	/* our cancel request's CQE is still to come */
	bool cancelled;		/* we asked the kernel to cancel it */
	uint32_t t0;		/* rtail published before this batch */
	uint32_t t;		/* rtail with this batch */
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

static bool notif_copied(const struct uring_priv *p,
			 const struct io_uring_cqe *cqe)
{
	/* Without REPORT_USAGE the kernel does not say: never COPIED. */
	return (p->zc_flags & IORING_SEND_ZC_REPORT_USAGE) &&
	       ((uint32_t)cqe->res & IORING_NOTIF_USAGE_ZC_COPIED);
}

/* ---- the range ring (send side -> reap side) ---- */

/*
 * Send side: queue [id, id], merged into the previous range if it fits,
 * at either end (a task-work run's notifications may come newest first:
 * see struct notif_run).
 */
static void fwd(struct zc_sock *zs, struct uring_priv *p, struct uring_op *op,
		uint32_t id, bool copied)
{
	if (op->t != op->t0) {
		/* Not published yet: still ours to change. */
		struct zc_range *last = &p->ranges[(op->t - 1) & p->rmask];

		if (last->copied == copied) {
			if (last->hi + 1 == id) {
				last->hi = id;
				return;
			}
			if (last->lo - 1 == id) {
				last->lo = id;
				return;
			}
		}
	}
	/*
	 * Never full: each queued range holds at least one id whose entry
	 * is not reaped yet, and at most max_inflight (rmask + 1) such ids
	 * exist (zc_sendmsg() refuses a send beyond that). Acquire: pairs
	 * with the release of rhead in uring_collect().
	 */
	if (op->t - atomic_load_explicit(&p->rhead, memory_order_acquire) >
	    p->rmask) {
		ZC_STAT_INC(&zs->tx, bad_ranges);
		return;
	}
	p->ranges[op->t & p->rmask] = (struct zc_range){ id, id, copied };
	op->t++;
}

/* Send side: publish the queued ranges; wake a sleeping reaper if asked. */
static void publish(struct zc_sock *zs, struct uring_priv *p,
		    struct uring_op *op, bool wake)
{
	if (op->t == op->t0)
		return;
	/*
	 * Release (and more): pairs with the acquire of rtail in
	 * uring_collect(). As in zc_publish(): seq_cst store of rtail, then
	 * seq_cst load of waiting; zc_wait() stores waiting, then loads rtail
	 * (uring_collect()), both seq_cst: one side sees the other's store.
	 */
	atomic_store_explicit(&p->rtail, op->t, memory_order_seq_cst);
	op->t0 = op->t;
	if (wake && atomic_load_explicit(&zs->waiting, memory_order_seq_cst))
		zc__wake_reaper(zs);
}

/* ---- the send side ---- */

/*
 * A send (or batch) that holds the CQ sleeps until a CQE comes; the
 * caller then drains. Its requests are the kernel's until their results
 * come: it cannot return without them, whatever the wait says (EINTR,
 * EAGAIN, ETIME: wait again); any other failure yields the CPU first,
 * so that the caller's loop does not spin.
 */
static __attribute__((noinline)) void
cq_sleep(struct zc_sock *zs, struct io_uring *ring)
{
	int r = io_uring_wait_cqe(ring, &(struct io_uring_cqe *){ NULL });

	ZC_STAT_INC(&zs->tx, syscalls);
	if (r < 0 && r != -EINTR && r != -EAGAIN && r != -ETIME) {
		sched_yield();
		ZC_STAT_INC(&zs->tx, syscalls);
	}
}

/* Read every CQE there is (the send side holds the CQ). */
static unsigned int send_drain(struct zc_sock *zs, struct uring_priv *p,
			       struct uring_op *op)
{
	struct io_uring_cqe *cqe;
	unsigned int head, n = 0;

	io_uring_for_each_cqe(&p->ring, head, cqe) {
		uint64_t ud = cqe->user_data;

		n++;
		if (cqe->flags & IORING_CQE_F_NOTIF) {
			if (ud == op->ud) {
				op->notif = true;
				op->notif_copied = notif_copied(p, cqe);
			} else if (ud <= UINT32_MAX) {
				fwd(zs, p, op, (uint32_t)ud,
				    notif_copied(p, cqe));
			}
			/* else: a withdrawn send's or the probe's: drop */
		} else if (ud == op->ud) {
			op->have_res = true;
			op->res = cqe->res;
			op->more = cqe->flags & IORING_CQE_F_MORE;
		} else if (ud == URING_UD_CANCEL) {
			op->cancel_out = false;
		} else if (ud <= UINT32_MAX) {
			/* A result no send waits for: cannot happen. */
			ZC_STAT_INC(&zs->tx, bad_ranges);
		}
	}
	io_uring_cq_advance(&p->ring, n);
	return n;
}

/*
 * Is the send (made with flags) over, with nothing of it left to come but
 * a failed non-blocking send's notification?
 */
static bool op_done(const struct uring_op *op, int flags)
{
	if (!op->have_res || op->cancel_out)
		return false;
	/*
	 * A failed send's notification is dropped here, never forwarded;
	 * a non-blocking send that failed does not wait for it (see the
	 * top: it may wait for the peer), and takes its id (op_ghost()).
	 */
	return !op->more || op->res > 0 || op->notif ||
	       (op->res < 0 && (flags & MSG_DONTWAIT));
}

/*
 * Over, failed, its notification still to come (a non-blocking send's:
 * op_done()): it takes its id.
 */
static bool op_ghost(const struct uring_op *op)
{
	return op->have_res && op->more && op->res < 0 && !op->notif &&
	       !op->cancel_out;
}

/*
 * Submit what is in the SQ (the send side holds the CQ). -EBUSY: an older
 * kernel refuses requests while it holds CQEs back (CQ overflow, which our
 * CQ size rules out); -EAGAIN: it is short of memory. Either way nothing
 * was taken: read the CQ, have the kernel flush what it holds, try again.
 * The SQE must not stay there if it still fails: the next submit would
 * send it later, from a buffer the caller has reused, so it becomes a
 * no-op.
 */
static int submit(struct zc_sock *zs, struct uring_priv *p,
		  struct uring_op *op, struct io_uring_sqe *sqe)
{
	int r, tries = 0;

	for (;;) {
		r = io_uring_submit(&p->ring);
		ZC_STAT_INC(&zs->tx, syscalls);
		if (r == -EINTR)
			continue;
		if ((r != -EBUSY && r != -EAGAIN) || ++tries > URING_TRIES)
			break;
		send_drain(zs, p, op);
		io_uring_get_events(&p->ring);
		ZC_STAT_INC(&zs->tx, syscalls);
		if (tries > 1) {
			sched_yield();
			ZC_STAT_INC(&zs->tx, syscalls);
		}
	}
	if (r > 0 && !io_uring_sq_ready(&p->ring))
		return 0;
	io_uring_prep_nop(sqe);
	sqe->user_data = URING_UD_IGNORE;
	return r < 0 ? r : -EAGAIN;
}

/* The caller's O_NONBLOCK, asked again (a slow path: the send parked). */
static bool nonblock_now(struct zc_sock *zs, bool *nonblock)
{
	int fl = fcntl(zs->fd, F_GETFL);

	ZC_STAT_INC(&zs->tx, syscalls);
	if (fl >= 0)
		*nonblock = fl & O_NONBLOCK;
	return *nonblock;
}

/* The kernel parked the send to wait for room: cancel it. */
static void cancel(struct zc_sock *zs, struct uring_priv *p,
		   struct uring_op *op)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&p->ring);

	if (!sqe)
		return;
	io_uring_prep_cancel64(sqe, op->ud, 0);
	sqe->user_data = URING_UD_CANCEL;
	if (!submit(zs, p, op, sqe)) {
		op->cancel_out = true;
		op->cancelled = true;
	}
}

/*
 * One request: submit, then read the CQ until its result (and, if it
 * failed, its notification) came. Returns its result.
 */
static int send_one(struct zc_sock *zs, struct uring_priv *p,
		    struct uring_op *op, const struct msghdr *msg, int flags)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&p->ring);
	const struct iovec *iov = msg->msg_iov;
	bool checked = false;
	int r;

	if (!sqe)	/* cannot happen: each send empties the SQ */
		return -EBUSY;
	if (msg->msg_iovlen == 1 && !msg->msg_name && !msg->msg_controllen &&
	    iov->iov_len <= INT32_MAX) {
		io_uring_prep_send_zc(sqe, zs->fd, iov->iov_base, iov->iov_len,
				      flags, p->zc_flags);
	} else {
		/* io_uring_prep_sendmsg_zc() is not in every liburing 2.3. */
		io_uring_prep_sendmsg(sqe, zs->fd, msg, (unsigned int)flags);
		sqe->opcode = IORING_OP_SENDMSG_ZC;
		sqe->ioprio = (__u16)p->zc_flags;
	}
	sqe->user_data = op->ud;
	r = submit(zs, p, op, sqe);
	if (r < 0)
		return r;

	for (;;) {
		send_drain(zs, p, op);
		if (op_done(op, flags))
			break;
		/*
		 * No result yet: the socket had no room and the kernel armed
		 * a poll to retry (io_uring does not look at O_NONBLOCK). Fine
		 * for a blocking socket; if the caller made it non-blocking
		 * since zc_open(), take the send back.
		 */
		if (!op->have_res && !checked && !(flags & MSG_DONTWAIT)) {
			checked = true;
			if (nonblock_now(zs, &p->nonblock)) {
				cancel(zs, p, op);
				continue;
			}
		}
		/* About to sleep: what we forwarded must not wait for us. */
		publish(zs, p, op, true);
		cq_sleep(zs, &p->ring);
	}
	if (op->cancelled && op->res == -ECANCELED)
		return -EAGAIN;		/* as a non-blocking sendmsg() */
	return op->res;
}

/*
 * Send side: take the CQ. The reap side holds it only for a drain that
 * never blocks, so wait for that.
 */
static void cq_take(struct zc_sock *zs, struct uring_priv *p)
{
	unsigned int spins = 0;
	uint32_t want = CQ_FREE;

	/* Acquire: pairs with the release of cq_owner in uring_collect(). */
	while (!atomic_compare_exchange_weak_explicit(&p->cq_owner, &want,
			CQ_SEND, memory_order_acquire, memory_order_relaxed)) {
		want = CQ_FREE;
		if (++spins % 128) {
			cpu_relax();
		} else {
			sched_yield();
			ZC_STAT_INC(&zs->tx, syscalls);
		}
	}
}

/*
 * Send side: give the CQ back. A CQE the kernel posted after our last
 * read woke a sleeping reaper through the eventfd, but that reaper may
 * have found the CQ still ours and gone back to sleep. So: store CQ_FREE,
 * then load the CQ tail, both seq_cst (a full barrier between them). If
 * a CQE is there, read it ourselves unless the reaper took the CQ in the
 * meantime. If none is there, any later CQE is posted after our store,
 * and its eventfd wake-up leads the reaper (through the eventfd's lock
 * in poll(2) and read(2), which orders it after the kernel's tail store)
 * to a CAS that sees CQ_FREE.
 */
static void cq_give(struct zc_sock *zs, struct uring_priv *p,
		    struct uring_op *op)
{
	for (;;) {
		/* Ours to read plainly: we hold the CQ. */
		unsigned int head = *p->ring.cq.khead;
		uint32_t want = CQ_FREE;

		/*
		 * Release (seq_cst for the load below): pairs with the
		 * acquire of the CAS in uring_collect() and cq_take().
		 */
		atomic_store_explicit(&p->cq_owner, CQ_FREE,
				      memory_order_seq_cst);
		if (atomic_load_explicit((_Atomic unsigned int *)
					 p->ring.cq.ktail,
					 memory_order_seq_cst) == head)
			return;
		if (!atomic_compare_exchange_strong_explicit(&p->cq_owner,
				&want, CQ_SEND, memory_order_acquire,
				memory_order_relaxed))
			return;		/* the reap side reads it now */
		send_drain(zs, p, op);
		publish(zs, p, op, true);
	}
}

static size_t msg_len(const struct msghdr *msg)
{
	size_t len = 0;

	for (size_t i = 0; i < msg->msg_iovlen; i++)
		len += msg->msg_iov[i].iov_len;
	return len;
}

#define URING_IOV_WINDOW	64	/* iovecs per sendmsg() in copy_rest() */

/*
 * Send side: the rest of a short copying send on a blocking stream socket,
 * from byte done on. Returns the bytes it sent; stops at an error (which
 * the next call meets again) or when a send comes back empty, not at a
 * signal: the caller's blocking send is not done.
 */
static size_t copy_rest(struct zc_sock *zs, const struct msghdr *msg,
			int flags, size_t done)
{
	size_t sent = 0;

	for (;;) {
		struct iovec win[URING_IOV_WINDOW];
		struct msghdr m = { .msg_iov = win };
		size_t i = 0, off = done + sent, want = 0;
		ssize_t r;

		/* The iovec and offset where the rest begins. */
		while (i < msg->msg_iovlen && off >= msg->msg_iov[i].iov_len)
			off -= msg->msg_iov[i++].iov_len;
		for (; i < msg->msg_iovlen && m.msg_iovlen < URING_IOV_WINDOW;
		     i++, off = 0) {
			const struct iovec *v = &msg->msg_iov[i];

			if (v->iov_len == off)
				continue;
			win[m.msg_iovlen].iov_base = (char *)v->iov_base + off;
			win[m.msg_iovlen++].iov_len = v->iov_len - off;
			want += v->iov_len - off;
		}
		if (!want)
			return sent;
		r = zc__sys_sendmsg(zs, &m, flags);
		if (r == -EINTR)
			continue;	/* a signal: sendmsg(2) sent nothing */
		if (r <= 0)
			return sent;
		sent += (size_t)r;
	}
}

/*
 * A copying send (short, or the library chose to copy). On a blocking
 * stream socket sendmsg(2) waits for room, and the ring's task work (each
 * notification is posted by task work of this thread, which sets
 * TIF_NOTIFY_SIGNAL) interrupts that wait: sendmsg(2) returns what it had
 * sent so far. Measured: ~1% of copying sends that had to wait came back
 * short. Send the rest, as a blocking sendmsg(2) without io_uring would
 * have, and as a zero-copy send does (MSG_WAITALL).
 */
static ssize_t copy_send(struct zc_sock *zs, bool nonblock,
			 const struct msghdr *msg, int flags)
{
	ssize_t ret = zc__sys_sendmsg(zs, msg, flags);
	size_t len;

	if (ret <= 0 || zs->type != SOCK_STREAM || (flags & MSG_DONTWAIT) ||
	    nonblock)
		return ret;
	len = msg_len(msg);
	if ((size_t)ret >= len)
		return ret;
	return ret + (ssize_t)copy_rest(zs, msg, flags, (size_t)ret);
}

/*
 * A non-blocking send failed with its notification still to come, and is
 * made again, blocking, with the same id: wait for the notification
 * first (a blocking send may wait).
 */
static __attribute__((noinline, cold)) void
wait_notif(struct zc_sock *zs, struct uring_priv *p, struct uring_op *op)
{
	while (op_ghost(op)) {
		publish(zs, p, op, true);
		cq_sleep(zs, &p->ring);
		send_drain(zs, p, op);
	}
}

static ssize_t uring_send(struct zc_sock *zs, const struct msghdr *msg,
			 int flags)
{
	struct uring_priv *p = zs->backend_priv;
	struct uring_op op;
	int added = 0, ret;

	if (!(flags & MSG_ZEROCOPY))
		return copy_send(zs, p->nonblock, msg, flags);
	flags &= ~MSG_ZEROCOPY;
	/*
	 * io_uring parks a send that would block and retries it on its own,
	 * O_NONBLOCK or not: a non-blocking socket needs MSG_DONTWAIT. A
	 * blocking stream socket needs MSG_WAITALL, or a send that fills the
	 * buffer returns short where sendmsg(2) would have waited.
	 */
	if (!(flags & MSG_DONTWAIT) && p->nonblock)
		added = MSG_DONTWAIT;
	else if (!(flags & MSG_DONTWAIT) && zs->type == SOCK_STREAM)
		added = MSG_WAITALL;

	cq_take(zs, p);
	for (;;) {
		op = (struct uring_op){ .ud = zs->zc_next };
		op.t = op.t0 = atomic_load_explicit(&p->rtail,
						    memory_order_relaxed);
		ret = send_one(zs, p, &op, msg, flags | added);
		if (added != MSG_DONTWAIT)
			break;
		/*
		 * Our MSG_DONTWAIT, from an O_NONBLOCK the caller may have
		 * cleared since: look again when it made a difference. After
		 * -EAGAIN, send again, blocking; a short send stays short
		 * (the next one blocks).
		 */
		if (ret > 0 && (zs->type != SOCK_STREAM ||
				(size_t)ret == msg_len(msg)))
			break;
		if (nonblock_now(zs, &p->nonblock) || ret != -EAGAIN)
			break;
		wait_notif(zs, p, &op);
		publish(zs, p, &op, false);
		added = zs->type == SOCK_STREAM ? MSG_WAITALL : 0;
	}
	if (ret > 0 && op.have_res && (!op.more || op.notif)) {
		/* Complete now: no notification follows, or it came. */
		fwd(zs, p, &op, (uint32_t)op.ud, op.more ? op.notif_copied : true);
	}
	/*
	 * -ENOMEM: io_uring charges the pages to RLIMIT_MEMLOCK itself
	 * (io_notif_account_mem()) and fails before sending anything (a
	 * negative result means no byte went). The core copies on -ENOBUFS,
	 * MSG_ZEROCOPY's answer to the same limit. A failed send whose
	 * notification comes later takes its id: that notification is
	 * forwarded as any other's.
	 */
	if (ret < 0) {
		if (op_ghost(&op))
			zs->tx_ghost_id = true;
		if (ret == -ENOMEM)
			ret = -ENOBUFS;
	}
	/*
	 * Settled: a notification of this send that comes from now on (in
	 * cq_give() or a later send) is forwarded like any other.
	 */
	op.ud = URING_UD_NONE;
	/* On success the core's push follows and wakes the reaper. */
	publish(zs, p, &op, ret < 0);
	cq_give(zs, p, &op);
	return ret;
}

/* ---- the reap side ---- */

static int uring_collect(struct zc_sock *zs, bool force)
{
	struct uring_priv *p = zs->backend_priv;
	uint32_t h = atomic_load_explicit(&p->rhead, memory_order_relaxed);
	/* Acquire (seq_cst for zc_wait()): pairs with the store in publish(). */
	uint32_t t = atomic_load_explicit(&p->rtail, memory_order_seq_cst);
	uint32_t want = CQ_FREE;
	int n = (int)(t - h);

	for (; h != t; h++) {
		const struct zc_range *r = &p->ranges[h & p->rmask];

		zc_apply_range(zs, r->lo, r->hi, r->copied);
	}
	/* Release: pairs with the acquire of rhead in fwd(). */
	atomic_store_explicit(&p->rhead, h, memory_order_release);

	/*
	 * zc_foreign(): the error queue holds no zero-copy records here (no
	 * MSG_ZEROCOPY sendmsg runs on this socket), only foreign ones.
	 */
	if (force) {
		int r = zc__eq_drain(zs);

		if (r < 0 && !n)
			return r;
	}

	/*
	 * Take the CQ if it is free; if a send holds it, that send forwards
	 * what it reads. Acquire: pairs with the release in cq_give().
	 */
	while (atomic_compare_exchange_strong_explicit(&p->cq_owner, &want,
			CQ_REAP, memory_order_acquire, memory_order_relaxed)) {
		struct io_uring_cqe *cqe;
		unsigned int head, k = 0;
		/* A run of consecutive ids, either order: as fwd() merges. */
		struct zc_range run = { 0 };
		bool live = false;

		if (io_uring_cq_has_overflow(&p->ring)) {
			/* Only if CLAMP shrank the CQ: flush the backlog. */
			io_uring_get_events(&p->ring);
			ZC_STAT_INC(&zs->rx, syscalls);
		}
		io_uring_for_each_cqe(&p->ring, head, cqe) {
			uint64_t ud = cqe->user_data;

			if ((cqe->flags & IORING_CQE_F_NOTIF) &&
			    ud <= UINT32_MAX) {
				uint32_t id = (uint32_t)ud;
				bool copied = notif_copied(p, cqe);

				n++;
				if (live && copied == run.copied &&
				    run.hi + 1 == id) {
					run.hi = id;
				} else if (live && copied == run.copied &&
					   run.lo - 1 == id) {
					run.lo = id;
				} else {
					if (live)
						zc_apply_range(zs, run.lo,
							       run.hi,
							       run.copied);
					run = (struct zc_range){ id, id,
								 copied };
					live = true;
				}
			} else if (ud <= UINT32_MAX) {
				/* A result: only the send side reads those. */
				ZC_STAT_INC(&zs->rx, bad_ranges);
			}
			if (++k == URING_REAP_BATCH)
				break;
		}
		if (live)
			zc_apply_range(zs, run.lo, run.hi, run.copied);
		io_uring_cq_advance(&p->ring, k);
		/* Release: pairs with the acquire of the CAS in cq_take(). */
		atomic_store_explicit(&p->cq_owner, CQ_FREE,
				      memory_order_release);
		if (k < URING_REAP_BATCH)
			break;
		want = CQ_FREE;
	}
	return n;
}

/* ---- setup ---- */

#define PROBE_DONE	1
#define PROBE_SEND_ZC	2	/* IORING_OP_SEND_ZC and SENDMSG_ZC */
#define PROBE_USAGE	4	/* IORING_SEND_ZC_REPORT_USAGE */

static _Atomic int probe_state;

/* Forget the probe's answer (tests: the next ring asks again). */
void zc__uring_probe_reset(void)
{
	atomic_store_explicit(&probe_state, 0, memory_order_relaxed);
}

/*
 * What the kernel supports, asked once per process on the first ring.
 * REPORT_USAGE: a SEND_ZC with the flag on fd -1 fails in prep with EINVAL
 * if the flag is unknown (before 6.2), else at issue with EBADF.
 */
static int probe_run(struct io_uring *ring)
{
	struct io_uring_probe *pr = io_uring_get_probe_ring(ring);
	struct __kernel_timespec ts = { .tv_sec = 1 };
	struct io_uring_cqe *cqe;
	struct io_uring_sqe *sqe;
	int st = PROBE_DONE;
	bool more = true;

	if (!pr)
		return 0;	/* no answer (out of memory?): ask again later */
	if (io_uring_opcode_supported(pr, IORING_OP_SEND_ZC) &&
	    io_uring_opcode_supported(pr, IORING_OP_SENDMSG_ZC))
		st |= PROBE_SEND_ZC;
	io_uring_free_probe(pr);
	if (!(st & PROBE_SEND_ZC))
		return st;

	sqe = io_uring_get_sqe(ring);
	io_uring_prep_send_zc(sqe, -1, &st, 1, MSG_DONTWAIT,
			      IORING_SEND_ZC_REPORT_USAGE);
	sqe->user_data = URING_UD_IGNORE;
	if (io_uring_submit(ring) != 1)
		return st;
	/* The result, then (F_MORE) the notification; both come at once. */
	while (more && !io_uring_wait_cqe_timeout(ring, &cqe, &ts)) {
		if (!(cqe->flags & IORING_CQE_F_NOTIF)) {
			if (cqe->res == -EBADF)
				st |= PROBE_USAGE;
			more = cqe->flags & IORING_CQE_F_MORE;
		} else {
			more = false;
		}
		io_uring_cqe_seen(ring, cqe);
	}
	/* A late notification has user_data URING_UD_IGNORE: dropped. */
	return st;
}

/* ZCNOTIFY_URING_USAGE=no turns REPORT_USAGE off (tests, diagnosis). */
static int usage_env(bool *off)
{
	const char *env = getenv("ZCNOTIFY_URING_USAGE");

	*off = false;
	if (!env || !*env || !strcmp(env, "auto"))
		return 0;
	if (!strcmp(env, "no")) {
		*off = true;
		return 0;
	}
	return zc__err(-EINVAL, "ZCNOTIFY_URING_USAGE=\"%s\": want no or auto",
		      env);
}

/*
 * CQEs that can sit in the CQ besides the notifications of unreaped sends:
 * the result and notification of the send in progress, a cancel's, a
 * NOP's (a withdrawn SQE), the probe's late notification.
 */
#define URING_CQ_OWN	(2 * URING_SQ)

/*
 * io_uring_setup()'s -ENOMEM: the ring's memory is charged to
 * RLIMIT_MEMLOCK in a process without CAP_IPC_LOCK; what makes it
 * smaller.
 */
#define URING_ENOMEM_WHY(smaller)					\
	" (a process without CAP_IPC_LOCK pays for the ring's memory "	\
	"from RLIMIT_MEMLOCK: raise it, or ask for a smaller ring with a " \
	"smaller " smaller ")"

static int ring_init(struct zc_sock *zs, struct uring_priv *p)
{
	/*
	 * CQ: at most max_inflight notifications are unread (one per id not
	 * yet reaped) plus URING_CQ_OWN of our own. Sized so that it can
	 * never fill: then the kernel never has to hold CQEs back (overflow)
	 * or drop them (when it cannot allocate an overflow entry).
	 */
	uint32_t need = zs->mask + 1 + URING_CQ_OWN, twice = 2 * (zs->mask + 1);
	struct io_uring_params par = {
		.flags = IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP,
		.cq_entries = need > twice ? need : twice,
	};
	int r = io_uring_queue_init_params(URING_SQ, &p->ring, &par);

	if (r == -ENOSYS || r == -EPERM || r == -EINVAL)
		return zc__err(-EOPNOTSUPP, "zc_open: backend \"uring\": "
			      "io_uring_setup: %s (no io_uring in this kernel, "
			      "or disabled by kernel.io_uring_disabled or a "
			      "seccomp filter)", strerror(-r));
	if (r < 0)
		return zc__err(r, "zc_open: backend \"uring\": "
			      "io_uring_setup: %s%s", strerror(-r),
			      r == -ENOMEM ? URING_ENOMEM_WHY("max_inflight") :
			      "");
	p->ring_ok = true;
	/* Every kernel with SEND_ZC (6.0) has NODROP (5.5): a safeguard. */
	if (!(par.features & IORING_FEAT_NODROP))
		return zc__err(-EOPNOTSUPP, "zc_open: backend \"uring\": this "
			      "kernel's io_uring lacks IORING_FEAT_NODROP (it "
			      "may drop completion events)");
	if (par.cq_entries < need)
		return zc__err(-EINVAL, "zc_open: backend \"uring\": "
			      "max_inflight %u needs a completion queue of %u "
			      "entries; this kernel allows %u (use a "
			      "max_inflight of at most %u)", zs->mask + 1, need,
			      par.cq_entries,
			      par.cq_entries > URING_CQ_OWN ?
			      1u << (31 - __builtin_clz(par.cq_entries -
							 URING_CQ_OWN)) : 1u);
	return 0;
}

/* What the kernel supports (asked once per process): the zc_flags to use. */
static int probe_check(struct io_uring *ring, bool usage_off,
		       unsigned int *zc_flags)
{
	int st = atomic_load_explicit(&probe_state, memory_order_acquire);

	if (!st) {
		/* Two threads may both probe: same answer, no harm. */
		st = probe_run(ring);
		if (st)
			atomic_store_explicit(&probe_state, st,
					      memory_order_release);
	}
	if (!st)
		return zc__err(-EOPNOTSUPP, "zc_open: backend \"uring\": "
			      "io_uring_get_probe_ring() failed: cannot tell "
			      "whether this kernel has IORING_OP_SEND_ZC");
	if (!(st & PROBE_SEND_ZC))
		return zc__err(-EOPNOTSUPP, "zc_open: backend \"uring\": this "
			      "kernel's io_uring lacks IORING_OP_SEND_ZC and "
			      "SENDMSG_ZC (Linux 6.0 and later have them)");
	*zc_flags = (st & PROBE_USAGE) && !usage_off ?
		    IORING_SEND_ZC_REPORT_USAGE : 0;
	return 0;
}

static int sock_setup(struct zc_sock *zs)
{
	struct uring_priv *p;
	bool usage_off;
	int r, efd, fl;

	if ((r = usage_env(&usage_off)))
		return r;
	p = aligned_alloc(ZC_CACHELINE, (sizeof(*p) + ZC_CACHELINE - 1) &
				       ~(size_t)(ZC_CACHELINE - 1));
	if (!p)
		return zc__err(-ENOMEM, "zc_open: out of memory");
	memset(p, 0, sizeof(*p));
	p->rmask = zs->mask;
	zs->backend_priv = p;
	p->ranges = calloc(p->rmask + 1, sizeof(*p->ranges));
	if (!p->ranges)
		return zc__err(-ENOMEM, "zc_open: out of memory");
	if ((r = ring_init(zs, p)))
		return r;

	if ((r = probe_check(&p->ring, usage_off, &p->zc_flags)))
		return r;

	efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (efd < 0)
		return zc__err(-errno, "zc_open: eventfd: %s", strerror(errno));
	/* Not yet shared: zc_close() closes it, as one zc_wait() made. */
	atomic_store_explicit(&zs->efd, efd, memory_order_relaxed);
	if ((r = io_uring_register_eventfd(&p->ring, efd)) < 0)
		return zc__err(r, "zc_open: io_uring_register_eventfd: %s",
			      strerror(-r));

	fl = fcntl(zs->fd, F_GETFL);
	if (fl < 0)
		return zc__err(-errno, "zc_open: fcntl(F_GETFL): %s",
			      strerror(errno));
	p->nonblock = fl & O_NONBLOCK;
	return 0;
}

static void uring_teardown(struct zc_sock *zs)
{
	struct uring_priv *p = zs->backend_priv;

	if (!p)
		return;
	if (p->ring_ok)
		io_uring_queue_exit(&p->ring);
	free(p->ranges);
	free(p);
	zs->backend_priv = NULL;
}

/* ---- a context's members: one ring for all (zc_ctx_new(3)) ---- */

/*
 * A socket that joins a context (zc_opts.ctx) has no ring and no eventfd
 * of its own: the context has one ring, made when the first uring member
 * joins, with an eventfd of the context's registered (so zc_ctx_fd() polls
 * readable on every CQE), shared by all its uring members.
 *
 * user_data: the member's slot in the ring's table, plus URING_SLOT0, in
 * the low URING_BIDX_SHIFT bits of the high 32, its id in the low 32;
 * below URING_SLOT0 our own requests (URING_UD_*). A send of a batch
 * (zc__uring_send_batch()) has its index in the batch, plus one, in the
 * top bits (0 outside a batch): its CQEs find their send there, in the
 * batch's array (zc_uring_shared.batch), not through the member's slot,
 * which the batch then neither writes nor clears. A slot is not reused
 * while notifications of its member are still to come (uring_slot.out):
 * the late notification of a member that left (zc_close() with sends in
 * flight) is dropped, never applied to a new member.
 *
 * The lock (zc_uring_shared.lock) covers the SQ, the CQ, the table and
 * the writing end of the forward ring. A send holds it for the whole of
 * the send, as the socket's own ring's send side holds its CQ (it reads
 * the CQ until its result), and forwards the notifications of any member
 * that it meets to the context's reaper through the forward ring (one
 * producer at a time: the lock holder; one consumer: the reaper, under
 * the context's lock). The reaper (zc__uring_reap(), from
 * zc_ctx_completions()) only ever tries the lock: if it gets it, it
 * applies what it reads itself; if a send holds it, it sets missed, and
 * that send, having forwarded something, writes the ring's eventfd
 * (sh_wake()). A send that gives the lock back looks at the CQ tail again
 * (sh_give()), as cq_give() does, so that no CQE is stranded by a reaper
 * that found the lock taken.
 *
 * The CQ never fills: out counts the notifications that may still be in
 * the CQ or the forward ring, and a send that would take it past cap
 * fails with -ENOBUFS before it is submitted, which the core answers by
 * copying.
 *
 * A blocking member whose send must wait for room holds the lock while it
 * waits (io_uring_wait_cqe()): the other members' sends wait for it; the
 * reaper does not.
 */
/* URING_SLOT0, URING_BIDX_SHIFT: backend_uring.h */
#define URING_SLOTS_MAX		(URING_SLOT_MASK + 1 - URING_SLOT0)
#define URING_CTX_CQ		32768u	/* CQ entries asked for (CLAMP) */
#define URING_CTX_BATCH		256u	/* CQEs per hold of the lock (reaper) */
#define URING_CTX_ROUNDS	8	/* holds per zc__uring_reap() */
/* A batch (zc__uring_send_batch()), a send, its cancel, no-ops left over. */
#define URING_CTX_SQ		(2 * ZC_URING_BATCH)

struct uring_slot {
	struct zc_sock *zs;	/* NULL: free, or its member left */
	uint32_t out;		/* its notification CQEs still to come */
	uint32_t next_free;	/* free list; UINT32_MAX: the end */
	bool used;		/* taken (by a member, or its late CQEs) */
};

/*
 * A drain's notifications of others' sends, gathered into runs: one
 * member's consecutive ids with one COPIED state, come in either order,
 * routed as one range (sh_drain_as()). The kernel may post the
 * notifications of one task-work run newest first (Linux 6.1 and 6.18
 * do, the list a LIFO): over TCP, where an ACK frees many sends at
 * once, a member's ids then come k + n, ..., k + 1, k (faults-drops-uring
 * makes such bursts). One at a time, each but the last would land past
 * the oldest id not yet reported, as a mark, and go the general way
 * (zc__apply_range_slow()); a run is the in-order range they make.
 */
struct notif_run {
	uint32_t slot, lo, more;	/* ids lo ... lo + more */
	bool copied;
	bool live;			/* false: no run */
};

struct zc_uring_shared {
	/* Under lock: the SQ, the CQ, the table, ftail_w. */
	pthread_mutex_t lock;
	struct io_uring ring;
	struct uring_slot *slots;	/* also read by the reaper: see join */
	uint32_t nslots, slot_cap, free_slot;
	uint32_t ftail_w;		/* the next forward ring entry to write */
	struct notif_run run;		/* the drain's (sh_drain_as()) */
	/*
	 * The batch being sent (zc__uring_send_batch()): its sends, bn of
	 * them, by the index in their user_data (bn is 0 outside it); bwait
	 * of them still wait for a CQE (batch_drain_as()).
	 */
	struct zc_batch_send *batch;
	uint32_t bn, bwait;
	/*
	 * The batch's drains' counts: its sends still waiting for their
	 * notification (to come: batch_to_come()), its done entries.
	 */
	uint32_t bpend, bdone;
	zc_due_fn *due;			/* the reaper's, set by each of its calls */
	/*
	 * The reaper's records (zc__uring_reap()): rec[nrec], up to maxrec;
	 * maxrec is 0 outside its call.
	 */
	struct zc_ctx_completion *rec;
	unsigned int nrec, maxrec;
	bool ring_ok;
	bool lock_ok;
	/* Registered buffers (zc_ctx_register_buffers()), by address. */
	struct uring_buf *bufs;
	unsigned int nbufs;
	/* Read-only after setup. */
	uint64_t *fwd;			/* forward ring, fmask + 1 entries */
	uint32_t fmask;
	uint32_t cap;			/* notifications that may be out */
	unsigned int zc_flags;		/* IORING_SEND_ZC_REPORT_USAGE or 0 */
	int efd;			/* the ring's eventfd (the context's) */

	/*
	 * Notifications not yet applied: senders add (under lock), CQ
	 * readers and the reaper subtract. Relaxed: a count, never an index
	 * (the forward ring's own indexes order its entries).
	 */
	alignas(ZC_CACHELINE) _Atomic uint32_t out;
	/* The reaper found the lock taken (see sh_wake()). */
	_Atomic uint32_t missed;
	alignas(ZC_CACHELINE) _Atomic uint32_t ftail;	/* published */
	alignas(ZC_CACHELINE) _Atomic uint32_t fhead;	/* the reaper's */
};

/* A registered buffer: [base, base + len), its index in the ring's table. */
struct uring_buf {
	uintptr_t base;
	size_t len;
	unsigned int idx;
};

/* struct uring_member: backend_uring.h */

static uint64_t m_ud(uint32_t slot, uint32_t id)
{
	return (uint64_t)(slot + URING_SLOT0) << 32 | id;
}

static inline bool sh_copied(const struct zc_uring_shared *sh,
			     const struct io_uring_cqe *cqe)
{
	return (sh->zc_flags & IORING_SEND_ZC_REPORT_USAGE) &&
	       ((uint32_t)cqe->res & IORING_NOTIF_USAGE_ZC_COPIED);
}

static bool cq_empty(struct zc_uring_shared *sh)
{
	/* Acquire: pairs with the kernel's release of the tail. */
	return atomic_load_explicit((_Atomic unsigned int *)sh->ring.cq.ktail,
				    memory_order_acquire) ==
	       atomic_load_explicit((_Atomic unsigned int *)sh->ring.cq.khead,
				    memory_order_relaxed);
}

/* Under lock: a slot for a member. */
static int slot_alloc(struct zc_uring_shared *sh, uint32_t *slot)
{
	if (sh->free_slot != UINT32_MAX) {
		*slot = sh->free_slot;
		sh->free_slot = sh->slots[*slot].next_free;
		return 0;
	}
	if (sh->nslots == sh->slot_cap) {
		uint32_t cap = sh->slot_cap ? sh->slot_cap * 2 : 64;
		struct uring_slot *s;

		/* The slot must fit below the batch index (m_ud_batch()). */
		if (cap > URING_SLOTS_MAX)
			cap = URING_SLOTS_MAX;
		if (cap <= sh->nslots)
			return -ENOMEM;
		/* Behind the table, its guard (fwd_run_mark()): slot -1. */
		s = realloc(sh->slots ? sh->slots - 1 : NULL,
			    (cap + 1) * sizeof(*s));
		if (!s)
			return -ENOMEM;
		s[0] = (struct uring_slot){ .next_free = UINT32_MAX };
		sh->slots = s + 1;
		sh->slot_cap = cap;
	}
	*slot = sh->nslots++;
	return 0;
}

/* Under lock: nothing of the slot's member can come any more. */
static void slot_free(struct zc_uring_shared *sh, uint32_t slot)
{
	sh->slots[slot] = (struct uring_slot){ .next_free = sh->free_slot };
	sh->free_slot = slot;
}

/*
 * Lock holder: the forward ring's writing end, in locals for a run of
 * pushes (fwd_put()): sh's fields, which the stores to the ring could
 * alias, are loaded once, not every push.
 */
struct fwd_writer {
	uint64_t *fwd;
	uint32_t mask;
	uint32_t head;		/* fhead when the run began */
	uint32_t tail;		/* ftail_w */
};

static inline __attribute__((always_inline)) struct fwd_writer
fwd_writer(const struct zc_uring_shared *sh)
{
	/*
	 * Acquire: pairs with the release of fhead in fwd_take(), which has
	 * read the entries we overwrite. Once a run: the reaper only ever
	 * frees room, so a head read before the run's pushes counts at most
	 * what there is in the ring.
	 */
	return (struct fwd_writer){
		.fwd = sh->fwd, .mask = sh->fmask,
		.head = atomic_load_explicit(&sh->fhead, memory_order_acquire),
		.tail = sh->ftail_w,
	};
}

/*
 * A forward ring entry: the notification's user_data without the batch
 * index (m_ud(): its slot and id), and copied in the top bit, where the
 * index was: the sender has it so, and the reaper reads the slot and id
 * where they are.
 */
#define FWD_COPIED	(1ull << 63)
#define FWD_UD_MASK	((1ull << (32 + URING_BIDX_SHIFT)) - 1)
_Static_assert(!(FWD_COPIED & FWD_UD_MASK), "copied takes an index bit");
/*
 * A run of notifications (struct notif_run) is forwarded as two entries:
 * this mark, with the run's further ids (more, >= 1) in the id's place,
 * then the entry of its first id. The mark's slot is -1 (fwd_slot()),
 * the table's guard, whose member is always NULL: fwd_take() looks for a
 * mark only where an entry's member is NULL, not on every entry.
 */
static inline uint64_t fwd_run_mark(uint32_t more, bool copied)
{
	return (uint64_t)(URING_SLOT0 - 1) << 32 | more |
	       (copied ? FWD_COPIED : 0);
}

/*
 * A done entry: a send of a batch whose result and notification both
 * came in the batch's own drain, on a member with nothing unreaped before
 * it (its ring slot was the head), is complete before it is published.
 * It is not published: its completion is forwarded, ready-made, in two
 * entries: this one, FWD_DONE with the member's slot where an entry has
 * it (fwd_slot()), the bytes sent in the id's place and copied in the top
 * bit, then the send's cookie. The reaper writes its record from them
 * (take_done()), in the forward ring's order with the member's other
 * forwarded entries; the member's own later sends wait for it
 * (zs->done_made, zs->done_taken). Counted two in out: two entries,
 * where the send had counted its notification and its result in the
 * batch's room (zc__uring_send_batch()).
 */
#define FWD_DONE	(1ull << 62)
#define FWD_SLOT_BITS	((uint64_t)URING_SLOT_MASK << 32)
_Static_assert(!(FWD_DONE & (FWD_UD_MASK | FWD_COPIED)), "a bit of its own");

/* The forward ring entry of the notification of user_data ud. */
static inline uint64_t fwd_ent(uint64_t ud, bool copied)
{
	return (ud & FWD_UD_MASK) | (copied ? FWD_COPIED : 0);
}

/*
 * The slot of forward ring entry e (the id: (uint32_t)e); -1 for a run's
 * mark (fwd_run_mark()), the table's guard. Signed, for an index: the
 * compiler folds the - URING_SLOT0 into the address.
 */
static inline ptrdiff_t fwd_slot(uint64_t e)
{
	return (ptrdiff_t)((e >> 32) & URING_SLOT_MASK) - URING_SLOT0;
}

/* Queue a notification, fwd_ent(), for the reaper (counted in out). */
static inline __attribute__((always_inline)) void
fwd_put(struct fwd_writer *w, uint64_t ent)
{
	/*
	 * Never full: each entry stands for a notification counted in out
	 * (a run's two for two or more), which stays at most cap <= fmask
	 * + 1.
	 */
	if (w->tail - w->head > w->mask)
		return;
	w->fwd[w->tail++ & w->mask] = ent;
}

/*
 * A batch's drain's writer of the forward ring (batch_drain_as()): flat,
 * a pointer, where the ring has room for all the drain may put, up to
 * the array's end (the test once a drain: the common case); else
 * fwd_put()'s test each put.
 */
struct batch_writer {
	uint64_t *p;		/* flat: the next entry */
	struct fwd_writer w;	/* else */
};

static inline __attribute__((always_inline)) void
bw_put(struct batch_writer *bw, uint64_t ent, bool flat)
{
	if (flat)
		*bw->p++ = ent;
	else
		fwd_put(&bw->w, ent);
}

/* Lock holder: publish what fwd_put() queued; true if anything. */
static bool fwd_publish(struct zc_uring_shared *sh)
{
	/* Ours: only lock holders store it. */
	if (atomic_load_explicit(&sh->ftail, memory_order_relaxed) ==
	    sh->ftail_w)
		return false;
	/*
	 * Release (seq_cst for the load of missed in sh_wake()): pairs with
	 * the acquire of ftail in fwd_take().
	 */
	atomic_store_explicit(&sh->ftail, sh->ftail_w, memory_order_seq_cst);
	return true;
}

/*
 * A send, after it published forwarded notifications: the reaper may have
 * found the lock taken and gone to sleep (zc__uring_reap()). Seq_cst load
 * of missed after the seq_cst store of ftail; the reaper stores missed,
 * then loads ftail: it sees our entries, or we see missed.
 */
static void sh_wake(struct zc_sock *zs, struct zc_uring_shared *sh)
{
	uint64_t one = 1;

	if (!atomic_load_explicit(&sh->missed, memory_order_seq_cst) ||
	    !atomic_exchange_explicit(&sh->missed, 0, memory_order_relaxed))
		return;
	if (write(sh->efd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is non-zero already, the fd readable. */
	}
	ZC_STAT_INC(&zs->tx, syscalls);
}

/*
 * cq_sleep() on the shared ring, by its lock holder: what it forwarded
 * must not wait for it, so published first (and the reaper woken if it
 * missed them).
 */
static __attribute__((noinline)) void
sh_sleep(struct zc_sock *zs, struct zc_uring_shared *sh)
{
	if (fwd_publish(sh))
		sh_wake(zs, sh);
	cq_sleep(zs, &sh->ring);
}

/*
 * Reaper: the notification of member zs's id, handed out at once as a
 * record of the reaper's (sh->rec) when that is what the member's reap
 * would do with it and nothing more: it completes the PENDING entry at
 * head, and only that one (zc_ring_reap_id(), which tests it); no error
 * to report, no read of the member's error queue due (completions_slow()'s
 * rare work comes first: the general way then). The member needs no reap
 * of its own for it: nothing of it is left to hand out (the entry after
 * it, if pushed, waits for an id not reported). Returns whether it did;
 * false changes nothing.
 */
static inline __attribute__((always_inline)) bool
reap_direct(struct zc_uring_shared *sh, struct zc_sock *zs, uint32_t id,
	    bool copied)
{
	struct zc_completion c;

	/*
	 * No failed send's id to settle (zs->amb) ever: the ids are ours,
	 * a failed send takes none (no kernel_ids).
	 */
	if (sh->nrec == sh->maxrec || zs->rx_rare || zs->ctxm.read ||
	    !zc_ring_reap_id(zs, &c, id, copied))
		return false;
	sh->rec[sh->nrec++] = (struct zc_ctx_completion){
		.zs = zs, .tag = zs->ctxm.tag, .cookie = c.cookie,
		.bytes = c.bytes, .flags = c.flags,
	};
	/*
	 * As finish_member() leaves a member reaped dry with every reported
	 * id's entry seen (the run empty, no mark): no publish is news now.
	 */
	if (atomic_load_explicit(&zs->ctxm.any, memory_order_relaxed))
		atomic_store_explicit(&zs->ctxm.any, 0, memory_order_relaxed);
	return true;
}

/*
 * fwd_take() of the run whose mark is entry h (fwd_run_mark(): ids more
 * past the first): its ids as one range. Returns the index of its second
 * entry (published with the mark), which fwd_take() then passes; takes
 * the run's ids beyond its two entries off out (fwd_take() counts one an
 * entry).
 */
static __attribute__((noinline)) uint32_t
take_run(struct zc_uring_shared *sh, uint32_t h, uint32_t more)
{
	uint64_t e = sh->fwd[++h & sh->fmask];
	struct zc_sock *zs = sh->slots[fwd_slot(e)].zs;

	if (zs) {
		zc_apply_range(zs, (uint32_t)e, (uint32_t)e + more, e >> 63);
		sh->due(zs);
	}
	atomic_fetch_sub_explicit(&sh->out, more - 1, memory_order_relaxed);
	return h;
}

/*
 * Reaper: hand out done entry e (FWD_DONE) of member zs, with cookie,
 * as zc_ring_hand_out() would have handed out its ring entry.
 */
static inline __attribute__((always_inline)) void
take_done(struct zc_ctx_completion *rec, struct zc_sock *zs, uint64_t e,
	  uint64_t cookie)
{
	const bool copied = e >> 63;

	*rec = (struct zc_ctx_completion){
		.zs = zs, .tag = zs->ctxm.tag, .cookie = cookie,
		.bytes = (uint32_t)e, .flags = copied ? ZC_COPIED : 0,
	};
	/* completions is derived: see struct zc_rx_stats. */
	if (copied)
		ZC_STAT_INC(&zs->rx, completions_copied);
	else
		ZC_STAT_INC(&zs->rx, completions_zc);
	zc_feed_streak(zs, 1, copied);
	/* Release: pairs with the acquire in zc_inflight(). */
	atomic_store_explicit(&zs->done_taken,
			      atomic_load_explicit(&zs->done_taken,
						   memory_order_relaxed) + 1,
			      memory_order_release);
}

/*
 * take_done() of done entry e, with cookie, at r, unless its member left.
 * Returns where the next record goes.
 */
static inline __attribute__((always_inline)) struct zc_ctx_completion *
take_done_slot(struct zc_ctx_completion *r, const struct uring_slot *slots,
	       uint64_t e, uint64_t cookie)
{
	/*
	 * The table changes only under both locks (join, leave), and a
	 * member's entries are taken, or forgotten (fwd_forget()), before
	 * it leaves.
	 */
	struct zc_sock *zs = slots[fwd_slot(e)].zs;

	if (!zs)		/* its member left */
		return r;
	take_done(r, zs, e, cookie);
	return r + 1;
}

/*
 * fwd_take() of the done entries from h, up to t, as many as come in a
 * row (a batch's): their records. Returns the index of the first entry
 * past them, or of the one it stopped at for want of room in rec: then
 * the ring's eventfd is written, so that the context's fd stays readable
 * for what is left (one syscall, only then: nothing to test on the
 * common way).
 */
static __attribute__((noinline)) uint32_t
take_dones(struct zc_uring_shared *sh, uint32_t h, uint32_t t)
{
	/*
	 * Locals: the stores to the records could alias sh, and the
	 * compiler would load its fields again every entry. The table does
	 * not move meanwhile (join, under both locks).
	 */
	const uint64_t *const fwd = sh->fwd;
	const uint32_t mask = sh->fmask;
	const struct uring_slot *const slots = sh->slots;
	struct zc_ctx_completion *const rec = sh->rec;
	const unsigned int maxrec = sh->maxrec;
	unsigned int nrec = sh->nrec;
	uint64_t e;

	for (;;) {
		/*
		 * As many as rec has room for, with no test of the room each
		 * entry: an entry dropped (its member left) takes none, so
		 * the loop may come round again.
		 */
		const uint32_t end = (t - h) / 2 > maxrec - nrec ?
				     h + 2 * (maxrec - nrec) : t;
		struct zc_ctx_completion *r = &rec[nrec];
		/*
		 * Those whose two words come before the array's end, by
		 * pointer (the common case: no mask); then any left, by
		 * index (one across the end).
		 */
		const uint32_t before = (mask + 1 - (h & mask)) & ~1u;
		const uint64_t *const p0 = &fwd[h & mask];
		const uint64_t *const pe = p0 + ((end - h < before ? end - h :
						  before) & ~1u);
		const uint64_t *p = p0;

		for (; p != pe && ((e = *p) & FWD_DONE); p += 2)
			r = take_done_slot(r, slots, e, p[1]);
		h += (uint32_t)(p - p0);
		for (; h != end && ((e = fwd[h & mask]) & FWD_DONE); h += 2)
			r = take_done_slot(r, slots, e, fwd[(h + 1) & mask]);
		nrec = (unsigned int)(r - rec);
		if (h == t || !(fwd[h & mask] & FWD_DONE))
			break;
		if (nrec == maxrec) {
			uint64_t one = 1;

			if (write(sh->efd, &one, sizeof(one)) < 0) {
				/* EAGAIN: the counter is non-zero already. */
			}
			break;
		}
	}
	sh->nrec = nrec;
	return h;
}

/*
 * Reaper (the context's lock): apply the forwarded notifications, and
 * hand out the done entries. It stops at a done entry for want of room
 * in rec (or outside zc__uring_reap(): maxrec 0): the entries from there
 * on stay, in order, for the next call; so may the notifications it
 * routes meanwhile, which reap_direct() cannot hand out either (rec
 * full): those are applied, their members due, and a member with done
 * entries out takes the forward ring first (zc__uring_take()).
 */
static void fwd_take(struct zc_uring_shared *sh)
{
	uint32_t h = atomic_load_explicit(&sh->fhead, memory_order_relaxed);
	/* Acquire (seq_cst: see sh_wake()): pairs with fwd_publish(). */
	uint32_t t = atomic_load_explicit(&sh->ftail, memory_order_seq_cst);
	const uint32_t h0 = h;

	if (h == t)
		return;
	for (; h != t; h++) {
		uint64_t e = sh->fwd[h & sh->fmask];
		/*
		 * The table changes only under both locks (join, leave), and
		 * a member's entries are taken, or forgotten (fwd_forget()),
		 * before it leaves.
		 */
		struct zc_sock *zs = sh->slots[fwd_slot(e)].zs;

		if (e & FWD_DONE) {
			h = take_dones(sh, h, t);
			/* Stopped at a done entry (rec full), or at the end. */
			if (h == t || (sh->fwd[h & sh->fmask] & FWD_DONE))
				break;
			h--;		/* the loop's h++ */
			continue;
		}
		if (!zs) {
			/*
			 * A run's mark, or an entry of a member that left (or
			 * forgotten: the guard's slot, no run).
			 */
			if (fwd_slot(e) == -1 && (uint32_t)e)
				h = take_run(sh, h, (uint32_t)e);
			continue;
		}
		if (reap_direct(sh, zs, (uint32_t)e, e >> 63))
			continue;
		zc_apply_range(zs, (uint32_t)e, (uint32_t)e, e >> 63);
		sh->due(zs);
	}
	/* Release: pairs with the acquire of fhead in fwd_writer(). */
	atomic_store_explicit(&sh->fhead, h, memory_order_release);
	atomic_fetch_sub_explicit(&sh->out, h - h0, memory_order_relaxed);
}

/*
 * Under both locks (no send, no reaper): member slot s leaves, and the
 * forward ring may still hold entries of it past a done entry that
 * fwd_take() stopped at. Make them name the table's guard, whose member
 * is NULL: dropped when taken. A normal entry becomes the guard's with no
 * run (id 0: fwd_take() tells it from a run's mark).
 */
static void fwd_forget(struct zc_uring_shared *sh, uint32_t s)
{
	const uint64_t guard = (uint64_t)(URING_SLOT0 - 1) << 32;
	uint32_t h = atomic_load_explicit(&sh->fhead, memory_order_relaxed);
	const uint32_t t = atomic_load_explicit(&sh->ftail,
					       memory_order_relaxed);

	while (h != t) {
		uint64_t *p = &sh->fwd[h & sh->fmask];

		if (*p & FWD_DONE) {		/* and its cookie */
			if (fwd_slot(*p) == (ptrdiff_t)s)
				*p = (*p & ~FWD_SLOT_BITS) | guard;
			h += 2;
		} else if (fwd_slot(*p) == -1 && (uint32_t)*p) {
			/* A run's mark, and its first id's entry. */
			uint64_t *q = &sh->fwd[(h + 1) & sh->fmask];

			if (fwd_slot(*q) == (ptrdiff_t)s)
				*q = (*q & ~FWD_SLOT_BITS) | guard;
			h += 2;
		} else {
			if (fwd_slot(*p) == (ptrdiff_t)s)
				*p = guard;
			h++;
		}
	}
}

/*
 * Lock holder: the notifications of member slot s, ids lo ... lo + more
 * (a run, struct notif_run: more 0 for one). direct: we are the reaper
 * (the context's lock too), apply them; else forward them.
 */
static void route(struct zc_uring_shared *sh, uint32_t s, uint32_t lo,
		  uint32_t more, bool copied, bool direct)
{
	struct uring_slot *sl;

	if (s >= sh->nslots || !sh->slots[s].used)
		return;		/* not one of ours: cannot happen */
	sl = &sh->slots[s];
	sl->out = sl->out > more ? sl->out - more - 1 : 0;
	if (!sl->zs) {
		/* Its member left: drop them; the last one frees the slot. */
		atomic_fetch_sub_explicit(&sh->out, more + 1,
					  memory_order_relaxed);
		if (!sl->out)
			slot_free(sh, s);
		return;
	}
	if (!direct) {
		struct fwd_writer w = fwd_writer(sh);

		if (more)
			fwd_put(&w, fwd_run_mark(more, copied));
		fwd_put(&w, fwd_ent(m_ud(s, lo), copied));
		sh->ftail_w = w.tail;
		return;
	}
	if (more || !reap_direct(sh, sl->zs, lo, copied)) {
		zc_apply_range(sl->zs, lo, lo + more, copied);
		sh->due(sl->zs);
	}
	atomic_fetch_sub_explicit(&sh->out, more + 1, memory_order_relaxed);
}

/*
 * Lock holder: add notification cqe, of a member's send (user_data
 * m_ud()), to the drain's run (sh->run, struct notif_run).
 */
static void run_add(struct zc_uring_shared *sh,
		    const struct io_uring_cqe *cqe, bool direct)
{
	struct notif_run *r = &sh->run;
	uint32_t s = (uint32_t)(cqe->user_data >> 32 & URING_SLOT_MASK) -
		     URING_SLOT0;
	uint32_t id = (uint32_t)cqe->user_data;
	bool copied = sh_copied(sh, cqe);

	if (r->live && s == r->slot && copied == r->copied) {
		if (id == r->lo + r->more + 1) {
			r->more++;
			return;
		}
		if (id == r->lo - 1) {
			r->lo = id;
			r->more++;
			return;
		}
	}
	if (r->live)
		route(sh, r->slot, r->lo, r->more, r->copied, direct);
	*r = (struct notif_run){ .slot = s, .lo = id, .copied = copied,
				 .live = true };
}

/* Lock holder: route the drain's run (sh->run.live). */
static void run_end(struct zc_uring_shared *sh, bool direct)
{
	struct notif_run *r = &sh->run;

	r->live = false;
	route(sh, r->slot, r->lo, r->more, r->copied, direct);
}

/* A CQE of a send in progress: its result, or its notification. */
static inline void op_cqe(const struct zc_uring_shared *sh,
			  struct uring_op *op, const struct io_uring_cqe *cqe)
{
	if (cqe->flags & IORING_CQE_F_NOTIF) {
		op->notif = true;
		op->notif_copied = sh_copied(sh, cqe);
	} else {
		op->have_res = true;
		op->res = cqe->res;
		op->more = cqe->flags & IORING_CQE_F_MORE;
	}
}

/* The batch's state of a send (zc_batch_send.st). */
#define BS_RES		1u	/* its result CQE came (res) */
#define BS_MORE		2u	/* ... with F_MORE: a notification follows */
#define BS_NOTIF	4u	/* the notification came */
#define BS_WAIT		8u	/* sent 0 bytes, and waits for the notification */
/*
 * The notification said the data was copied: its own bit, taken as is,
 * and FWD_COPIED's 32 bits lower.
 */
#define BS_COPIED	IORING_NOTIF_USAGE_ZC_COPIED
_Static_assert((uint64_t)BS_COPIED << 32 == FWD_COPIED, "copied, shifted");
_Static_assert(!(ZC_BS_DONE & (BS_RES | BS_MORE | BS_NOTIF | BS_WAIT |
			       BS_COPIED)), "the core's bit of st");

/* Who drains (sh_drain_as()); a batch drains with batch_drain(). */
enum drain_as { AS_REAPER, AS_SEND };

/*
 * Lock holder: read up to max CQEs. op: the holder's send in progress, or
 * NULL; as: the reaper applies what it reads, a send forwards it. Only a
 * batch's own drains (batch_drain()) look for its sends (it holds the
 * lock from its first SQE to its last CQE). Inline, so that each has a
 * copy of its own, with no test of op or as every CQE.
 */
static inline __attribute__((always_inline)) unsigned int
sh_drain_as(struct zc_uring_shared *sh, struct uring_op *op, unsigned int max,
	    enum drain_as as)
{
	/*
	 * io_uring_for_each_cqe() loads the tail again and tests for
	 * CQE32 every CQE: one look at the tail (the caller looks again
	 * before it waits or gives the CQ up), plain 16-byte CQEs (sh_new()).
	 * Ours to read plainly: head (we hold the CQ). Acquire tail: pairs
	 * with the kernel's release.
	 */
	const unsigned int head = *sh->ring.cq.khead;
	unsigned int n = atomic_load_explicit((_Atomic unsigned int *)
					      sh->ring.cq.ktail,
					      memory_order_acquire) - head;
	const struct io_uring_cqe *cqes = sh->ring.cq.cqes;
	const unsigned int mask = sh->ring.cq.ring_mask;

	if (n > max)
		n = max;
	for (unsigned int i = 0; i < n; i++) {
		const struct io_uring_cqe *cqe = &cqes[(head + i) & mask];
		uint64_t ud = cqe->user_data;
		uint32_t hi = (uint32_t)(ud >> 32);

		if (op && ud == op->ud) {
			op_cqe(sh, op, cqe);
			continue;
		}
		if (hi >= URING_SLOT0) {
			/* A result no send waits for cannot happen. */
			if (cqe->flags & IORING_CQE_F_NOTIF)
				run_add(sh, cqe, as == AS_REAPER);
		} else if (op && ud == URING_UD_CANCEL) {
			op->cancel_out = false;
		}
		/* else: a withdrawn send's, the probe's: drop */
	}
	if (n) {
		if (sh->run.live)
			run_end(sh, as == AS_REAPER);
		io_uring_cq_advance(&sh->ring, n);
	}
	return n;
}

/* sh_drain_as(): op NULL is the reaper. */
static unsigned int sh_drain(struct zc_uring_shared *sh, struct uring_op *op,
			     unsigned int max)
{
	if (!op)
		return sh_drain_as(sh, NULL, max, AS_REAPER);
	return sh_drain_as(sh, op, max, AS_SEND);
}

/*
 * batch_drain() of n CQEs from head: those not of the batch's sends, in
 * order, sh_drain_as()'s way (out of the drain's loop: a call there would
 * cost it the registers it keeps its state in). Their notifications are
 * forwarded after what the drain forwarded of the batch's: a member's
 * notifications may come in any order (see struct notif_run).
 */
static __attribute__((noinline)) void
batch_others(struct zc_uring_shared *sh, unsigned int head, unsigned int n)
{
	const struct io_uring_cqe *const cqes = sh->ring.cq.cqes;
	const unsigned int mask = sh->ring.cq.ring_mask;

	for (unsigned int i = 0; i < n; i++) {
		const struct io_uring_cqe *cqe = &cqes[(head + i) & mask];
		const uint64_t ud = cqe->user_data;
		const uint32_t bi = (uint32_t)(ud >> (32 +
						URING_BIDX_SHIFT)) - 1;

		if (bi < sh->bn && sh->batch[bi].ud == ud)
			continue;	/* the batch's */
		/* A result no send waits for cannot happen. */
		if ((uint32_t)(ud >> 32) >= URING_SLOT0 &&
		    (cqe->flags & IORING_CQE_F_NOTIF))
			run_add(sh, cqe, false);
		/* else: a withdrawn send's, the probe's: drop */
	}
	if (sh->run.live)
		run_end(sh, false);
}

static void batch_drain(struct zc_uring_shared *sh);

/*
 * Lock holder: io_uring_submit(), retried as submit() retries it; op the
 * send's, or NULL for a batch's.
 */
static inline __attribute__((always_inline)) int
sh_enter(struct zc_sock *zs, struct zc_uring_shared *sh, struct uring_op *op)
{
	int r, tries = 0;

	for (;;) {
		r = io_uring_submit(&sh->ring);
		ZC_STAT_INC(&zs->tx, syscalls);
		if (r == -EINTR)
			continue;
		if ((r != -EBUSY && r != -EAGAIN) || ++tries > URING_TRIES)
			return r;
		if (op)
			sh_drain(sh, op, UINT32_MAX);
		else
			batch_drain(sh);
		io_uring_get_events(&sh->ring);
		ZC_STAT_INC(&zs->tx, syscalls);
		if (tries > 1) {
			sched_yield();
			ZC_STAT_INC(&zs->tx, syscalls);
		}
	}
}

/* submit(), on the shared ring. */
static int sh_submit(struct zc_sock *zs, struct zc_uring_shared *sh,
		     struct uring_op *op, struct io_uring_sqe *sqe)
{
	int r = sh_enter(zs, sh, op);

	if (r > 0 && !io_uring_sq_ready(&sh->ring))
		return 0;
	io_uring_prep_nop(sqe);
	sqe->user_data = URING_UD_IGNORE;
	return r < 0 ? r : -EAGAIN;
}

/* cancel(), on the shared ring. */
static void sh_cancel(struct zc_sock *zs, struct zc_uring_shared *sh,
		      struct uring_op *op)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&sh->ring);

	if (!sqe)
		return;
	io_uring_prep_cancel64(sqe, op->ud, 0);
	sqe->user_data = URING_UD_CANCEL;
	if (!sh_submit(zs, sh, op, sqe)) {
		op->cancel_out = true;
		op->cancelled = true;
	}
}

/*
 * Lock holder: the registered buffer that holds all of iov, or NULL
 * (bufs sorted by base, not overlapping).
 */
static const struct uring_buf *buf_find(const struct zc_uring_shared *sh,
					const struct iovec *iov)
{
	uintptr_t a = (uintptr_t)iov->iov_base;
	unsigned int lo = 0, hi = sh->nbufs;

	while (lo < hi) {	/* the first buffer with base > a */
		unsigned int mid = lo + (hi - lo) / 2;

		if (sh->bufs[mid].base > a)
			hi = mid;
		else
			lo = mid + 1;
	}
	if (!lo)
		return NULL;
	lo--;
	if (a - sh->bufs[lo].base > sh->bufs[lo].len ||
	    iov->iov_len > sh->bufs[lo].len - (a - sh->bufs[lo].base))
		return NULL;
	return &sh->bufs[lo];
}

/* Lock holder: sqe, the zero-copy send of msg on member zs, user_data ud. */
static inline __attribute__((always_inline)) void
sh_prep(const struct zc_uring_shared *sh, struct io_uring_sqe *sqe,
	const struct zc_sock *zs, const struct msghdr *msg, int flags,
	uint64_t ud)
{
	const struct iovec *iov = msg->msg_iov;

	if (msg->msg_iovlen == 1 && !msg->msg_name && !msg->msg_controllen &&
	    iov->iov_len <= INT32_MAX) {
		const struct uring_buf *b = sh->nbufs ? buf_find(sh, iov) : NULL;

		if (b) {
			io_uring_prep_send_zc_fixed(sqe, zs->fd, iov->iov_base,
						    iov->iov_len, flags,
						    sh->zc_flags, b->idx);
		} else {
			/*
			 * io_uring_prep_send_zc(), whole: the SQE built at
			 * once (a few wide stores), not field by field.
			 */
			*sqe = (struct io_uring_sqe){
				.opcode = IORING_OP_SEND_ZC,
				.ioprio = (__u16)sh->zc_flags,
				.fd = zs->fd,
				.addr = (unsigned long)iov->iov_base,
				.len = (__u32)iov->iov_len,
				.msg_flags = (__u32)flags,
				.user_data = ud,
			};
			return;
		}
	} else {
		io_uring_prep_sendmsg(sqe, zs->fd, msg, (unsigned int)flags);
		sqe->opcode = IORING_OP_SENDMSG_ZC;
		sqe->ioprio = (__u16)sh->zc_flags;
	}
	sqe->user_data = ud;
}

/* send_one(), on the shared ring (the lock held). */
static int sh_send_one(struct zc_sock *zs, struct uring_member *m,
		       struct uring_op *op, const struct msghdr *msg, int flags)
{
	struct zc_uring_shared *sh = m->sh;
	struct io_uring_sqe *sqe = io_uring_get_sqe(&sh->ring);
	bool checked = false;
	int r;

	if (!sqe)	/* cannot happen: each send empties the SQ */
		return -EBUSY;
	sh_prep(sh, sqe, zs, msg, flags, op->ud);
	r = sh_submit(zs, sh, op, sqe);
	if (r < 0)
		return r;

	for (;;) {
		sh_drain(sh, op, UINT32_MAX);
		if (op_done(op, flags))
			break;
		/* As in send_one(): parked; non-blocking since? */
		if (!op->have_res && !checked && !(flags & MSG_DONTWAIT)) {
			checked = true;
			if (nonblock_now(zs, &m->nonblock)) {
				sh_cancel(zs, sh, op);
				continue;
			}
		}
		sh_sleep(zs, sh);
	}
	if (op->cancelled && op->res == -ECANCELED)
		return -EAGAIN;
	return op->res;
}

/*
 * A send gives the lock back: publish what it forwarded, then look at the
 * CQ tail again (after a full fence), as cq_give() does: a reaper that
 * found the lock taken after a CQE came relies on us to read it.
 */
static void sh_give(struct zc_sock *zs, struct zc_uring_shared *sh,
		    struct uring_op *op)
{
	bool fwded = false;

	for (;;) {
		fwded |= fwd_publish(sh);
		pthread_mutex_unlock(&sh->lock);
		atomic_thread_fence(memory_order_seq_cst);
		if (cq_empty(sh) || pthread_mutex_trylock(&sh->lock))
			break;	/* nothing, or its holder reads it */
		sh_drain(sh, op, UINT32_MAX);
	}
	if (fwded)
		sh_wake(zs, sh);
}

/*
 * Lock holder: the send op of member slot took its id: its notification,
 * forwarded or to come. The caller counts it in out (sh_sent()), before
 * the reaper can see it: before fwd_publish().
 */
static inline __attribute__((always_inline)) void
sh_note(struct zc_uring_shared *sh, struct fwd_writer *w, uint32_t slot,
	const struct uring_op *op)
{
	if (!op->more || op->notif)	/* complete now */
		fwd_put(w, fwd_ent(op->ud, op->more ? op->notif_copied : true));
	else				/* its notification to come */
		sh->slots[slot].out++;
}

/* Lock holder: the send op of member slot took its id: count it. */
static inline __attribute__((always_inline)) void
sh_sent(struct zc_uring_shared *sh, uint32_t slot, const struct uring_op *op)
{
	struct fwd_writer w = fwd_writer(sh);

	/* Counted before the reaper can see it (fwd_take()). */
	atomic_fetch_add_explicit(&sh->out, 1, memory_order_relaxed);
	sh_note(sh, &w, slot, op);
	sh->ftail_w = w.tail;
}

/* wait_notif() on the shared ring (the lock held). */
static __attribute__((noinline, cold)) void
sh_wait_notif(struct zc_sock *zs, struct zc_uring_shared *sh,
	      struct uring_op *op)
{
	while (op_ghost(op)) {
		sh_sleep(zs, sh);
		sh_drain(sh, op, UINT32_MAX);
	}
}

static ssize_t member_send(struct zc_sock *zs, struct uring_member *m,
			   const struct msghdr *msg, int flags)
{
	struct zc_uring_shared *sh = m->sh;
	struct uring_op op;
	int added = 0, ret;

	if (!(flags & MSG_ZEROCOPY))
		return copy_send(zs, m->nonblock, msg, flags);
	if (!sh)
		return -ENOBUFS;	/* not in the context (cannot happen) */
	flags &= ~MSG_ZEROCOPY;
	/* As in uring_send(). */
	if (!(flags & MSG_DONTWAIT) && m->nonblock)
		added = MSG_DONTWAIT;
	else if (!(flags & MSG_DONTWAIT) && zs->type == SOCK_STREAM)
		added = MSG_WAITALL;

	pthread_mutex_lock(&sh->lock);
	op = (struct uring_op){ .ud = URING_UD_NONE };
	/* No room in the CQ for one more notification: the core copies. */
	if (atomic_load_explicit(&sh->out, memory_order_relaxed) >= sh->cap) {
		sh_give(zs, sh, &op);
		return -ENOBUFS;
	}
	for (;;) {
		op = (struct uring_op){ .ud = m_ud(m->slot, zs->zc_next) };
		ret = sh_send_one(zs, m, &op, msg, flags | added);
		if (added != MSG_DONTWAIT)
			break;
		if (ret > 0 && (zs->type != SOCK_STREAM ||
				(size_t)ret == msg_len(msg)))
			break;
		if (nonblock_now(zs, &m->nonblock) || ret != -EAGAIN)
			break;
		sh_wait_notif(zs, sh, &op);
		added = zs->type == SOCK_STREAM ? MSG_WAITALL : 0;
	}
	/*
	 * A failed send whose notification is still to come takes its id:
	 * counted as a send that took one (the core makes it a ghost).
	 */
	if (ret > 0) {
		sh_sent(sh, m->slot, &op);
	} else if (op_ghost(&op)) {
		sh_sent(sh, m->slot, &op);
		zs->tx_ghost_id = true;
	}
	if (ret == -ENOMEM)
		ret = -ENOBUFS;		/* see uring_send() */
	op.ud = URING_UD_NONE;
	sh_give(zs, sh, &op);
	return ret;
}

/* A failed send's result, as the core takes it (see uring_send()). */
static inline int batch_failed(int res)
{
	return res == -ENOMEM ? -ENOBUFS : res;
}

/*
 * Submit what the batch put in the SQ after pre entries of others; what
 * the kernel did not take becomes a no-op (as in sh_submit()) and fails
 * with the submit's error.
 */
static void batch_submit(struct zc_sock *zs, struct zc_uring_shared *sh,
			 struct zc_batch_send *v, unsigned int n)
{
	struct io_uring_sq *const sq = &sh->ring.sq;
	int r = sh_enter(zs, sh, NULL);
	unsigned int left, tail = sq->sqe_tail;

	/*
	 * The kernel takes the SQ in order: ours last, in v's order, the
	 * last not taken.
	 */
	left = io_uring_sq_ready(&sh->ring);
	for (unsigned int i = n; i-- > 0 && left;) {
		struct io_uring_sqe *sqe;

		if (!v[i].ud)	/* not submitted */
			continue;
		sqe = &sq->sqes[--tail & sq->ring_mask];
		io_uring_prep_nop(sqe);
		sqe->user_data = URING_UD_IGNORE;
		v[i].ud = 0;	/* no CQE of its own comes */
		v[i].res = r < 0 ? batch_failed(r) : -EAGAIN;
		sh->bwait--;
		left--;
	}
}

/*
 * Lock holder, batch_end(): send b, complete (its notification came:
 * st), on member zs whose ring has nothing unreaped before it (its slot
 * is the head: every older send handed out, or a done entry forwarded
 * before): forward its completion as a done entry (FWD_DONE), and count
 * it sent, as zc__send_finish() and the wake-up test would have: the
 * second half publishes nothing (ZC_BS_DONE).
 */
static inline __attribute__((always_inline)) void
batch_done(struct batch_writer *w, struct zc_batch_send *b,
	   struct zc_sock *zs, uint64_t ud, uint32_t st, ssize_t res, bool flat)
{
	struct zc_ctx_send *const caller = b->caller;
	uint64_t sends = atomic_load_explicit(&zs->tx.sends_zc,
					      memory_order_relaxed) + 1;

	bw_put(w, FWD_DONE | (ud & FWD_SLOT_BITS) |
		  (uint64_t)(st & BS_COPIED) << 32 | (uint32_t)res, flat);
	/* The caller's (the first half wrote it in the entry too). */
	bw_put(w, caller->cookie, flat);
	b->st = st | ZC_BS_DONE;
	/* The second half's part: the caller's result, the batch left. */
	caller->result = res;
	zs->tx_batched = false;
	/* zc_tx_took_id()'s count; no id taken: zc_next stays. */
	atomic_store_explicit(&zs->tx.sends_zc, sends, memory_order_relaxed);
	/* As zc_member_took_id_quiet() leaves it: no news of a send. */
	zs->ctxm.tx_zc = sends;
	zs->adapt_tick++;
	/*
	 * It holds a slot of max_inflight until handed out (sock.h). Not
	 * tx_room_end: a uring socket's sends take send_general() (never
	 * tx_direct), whose send_begin() sets it from tx_room.
	 */
	zs->tx_room--;
	/*
	 * Before the reaper can see the entry (fwd_publish()). Release:
	 * pairs with the acquire in zc_inflight().
	 */
	atomic_store_explicit(&zs->done_made,
			      atomic_load_explicit(&zs->done_made,
						   memory_order_relaxed) + 1,
			      memory_order_release);
}

/*
 * A batch's drain counts in one word (batch_drain_as()), each change one
 * add: its done entries and its sends done (for bwait), at most the
 * batch's sends each; the CQEs not of the batch's sends; and (signed, on
 * top) the change in its sends whose notification is to come.
 */
_Static_assert(ZC_URING_BATCH < 256, "a batch's sends count in 8 bits");
#define BD_DONE_ENT	1ull
#define BD_DONE		(1ull << 8)
#define BD_OTHER	(1ull << 16)
#define BD_PEND		(1ull << 40)

/*
 * Lock holder, the batch's drain: send b (user_data ud), which sent (res
 * > 0) and took its id, is complete: its notification came (st). On a
 * member whose ring has nothing unreaped before it, a done entry
 * (batch_done()); else its notification forwarded, the id's window opened
 * first. Adds add to the drain's counts *cnt, and BD_DONE_ENT for a done
 * entry.
 */
static inline __attribute__((always_inline)) void
batch_end(struct batch_writer *w, struct zc_batch_send *b, uint64_t ud,
	  uint32_t st, ssize_t res, uint64_t *cnt, uint64_t add, bool flat)
{
	struct zc_sock *zs = b->zs;

	/*
	 * Relaxed: the reaper's; it only grows to the tail. Not flat, room
	 * for its two entries first (cannot fail: see fwd_put()): a done
	 * entry dropped would be a completion lost.
	 */
	if (b->slot == atomic_load_explicit(&zs->head, memory_order_relaxed) &&
	    (flat || w->w.tail + 1 - w->w.head <= w->w.mask)) {
		batch_done(w, b, zs, ud, st, res, flat);
		*cnt += add + BD_DONE_ENT;
		return;
	}
	/*
	 * It took its id (the first half left this to us): open the id's
	 * window before its notification can be seen (forwarded here,
	 * published by fwd_publish()). Release: pairs with the acquire in
	 * zc_apply_range().
	 */
	atomic_store_explicit(&zs->zc_issued, zs->zc_next + 1,
			      memory_order_release);
	b->st = st;
	bw_put(w, (ud & FWD_UD_MASK) | (uint64_t)(st & BS_COPIED) << 32, flat);
	*cnt += add;
}

/*
 * The batch's drain: all the CQEs there are. Its sends' CQEs find them by
 * the index in their user_data (index + 1 above the slot: m_ud_batch());
 * any other is counted, and goes sh_drain_as()'s way after the loop
 * (batch_others()). The CQE that completes a send ends it there
 * (batch_end()): its notification forwarded, or its completion (a done
 * entry); a send whose notification is still to come when the batch's
 * CQEs are all in waits for batch_to_come() (bpend counts them). A send
 * is done (for bwait) once: its result came, and if it failed and a
 * notification follows, that too (BS_WAIT; its id is taken again: see
 * the top). The CQ walked by pointer, in its (at most two) runs of
 * adjacent CQEs. Fixed while we drain, in locals: the stores to the sends
 * could alias sh, and the compiler would load its fields every CQE. flat:
 * see struct batch_writer. Each entry the batch's sends forward counts
 * one in out (a done entry's two, for its notification and its result):
 * counted, from the tail it moved, before anyone can publish them.
 */
static inline __attribute__((always_inline)) void
batch_drain_as(struct zc_uring_shared *sh, unsigned int head, unsigned int n,
	       struct batch_writer w, bool flat)
{
	const struct io_uring_cqe *const cqes = sh->ring.cq.cqes;
	const unsigned int mask = sh->ring.cq.ring_mask;
	struct zc_batch_send *const batch = sh->batch;
	const uint32_t bn = sh->bn;
	const uint32_t copied_bit = sh->zc_flags & IORING_SEND_ZC_REPORT_USAGE ?
				    IORING_NOTIF_USAGE_ZC_COPIED : 0;
	/* The send whose CQE likely comes next: they come in order. */
	const struct zc_batch_send *nx = batch;
	unsigned int left = n, at = head & mask;
	uint64_t cnt = 0;

	while (left) {
		const unsigned int run = left < mask + 1 - at ? left :
					 mask + 1 - at;
		const struct io_uring_cqe *cqe = &cqes[at];
		const struct io_uring_cqe *const end = cqe + run;

		for (; cqe != end; cqe++) {
			const uint64_t ud = cqe->user_data;
			struct zc_batch_send *b;
			uint32_t st;
			int res;

			/*
			 * The next send's, or found by the index in ud: + 1
			 * (see sh_drain_as()). nx is at most the guard past
			 * the batch, batch[bn], whose ud 0 none has.
			 */
			if (nx->ud == ud) {
				b = (struct zc_batch_send *)nx;
			} else {
				const uint32_t bi = (uint32_t)(ud >> (32 +
						URING_BIDX_SHIFT)) - 1;

				if (bi >= bn || batch[bi].ud != ud) {
					/* After the loop. */
					cnt += BD_OTHER;
					continue;
				}
				b = &batch[bi];
			}
			nx = b + 1;
			st = b->st;
			res = cqe->res;
			if (cqe->flags & IORING_CQE_F_NOTIF) {
				st |= BS_NOTIF | ((uint32_t)res & copied_bit);
				res = (int)b->res;
				if ((st & (BS_RES | BS_WAIT)) == BS_RES &&
				    res > 0) {
					/* It sent: complete now. */
					batch_end(&w, b, ud, st, res, &cnt,
						  -BD_PEND, flat);
					continue;
				}
				/* Its result to come; or failed, now done. */
				if (st & BS_WAIT)
					cnt += BD_DONE;
				else if ((st & BS_RES) && res < 0)
					cnt -= BD_PEND;	/* no ghost id */
				b->st = st;
				continue;
			}
			if (__builtin_expect(res <= 0, 0)) {
				b->res = batch_failed(res);
				if (!(cqe->flags & IORING_CQE_F_MORE)) {
					st |= BS_RES;
					cnt += BD_DONE;
				} else if (st & BS_NOTIF) {
					st |= BS_RES | BS_MORE;
					cnt += BD_DONE;
				} else if (res < 0) {
					/*
					 * Failed, its notification to come:
					 * done, it takes its id unless that
					 * comes in the batch (batch_ghost()).
					 */
					st |= BS_RES | BS_MORE;
					cnt += BD_DONE + BD_PEND;
				} else {
					/* 0 bytes: done once it came. */
					st |= BS_RES | BS_MORE | BS_WAIT;
				}
				b->st = st;
				continue;
			}
			b->res = res;
			if (!(cqe->flags & IORING_CQE_F_MORE)) {
				/* No notification: complete now, copied. */
				atomic_store_explicit(&b->zs->zc_issued,
						      b->zs->zc_next + 1,
						      memory_order_release);
				b->st = st | BS_RES;
				bw_put(&w, fwd_ent(ud, true), flat);
				cnt += BD_DONE;
				continue;
			}
			st |= BS_RES | BS_MORE;
			if (st & BS_NOTIF) {	/* it came first */
				batch_end(&w, b, ud, st, res, &cnt, BD_DONE,
					  flat);
				continue;
			}
			b->st = st;
			cnt += BD_DONE + BD_PEND;	/* to come */
		}
		left -= run;
		at = 0;
	}
	/*
	 * Counted before the reaper can see them (fwd_publish()): the
	 * entries the batch's sends forwarded, from ftail_w, where the
	 * drain began.
	 */
	if (flat)
		w.w.tail += (uint32_t)(w.p - &w.w.fwd[w.w.tail & w.w.mask]);
	if (w.w.tail != sh->ftail_w) {
		atomic_fetch_add_explicit(&sh->out, w.w.tail - sh->ftail_w,
					  memory_order_relaxed);
		sh->ftail_w = w.w.tail;
	}
	/* Others' notifications after them (batch_others()). */
	if ((cnt >> 16) & 0xffffff)
		batch_others(sh, head, n);
	io_uring_cq_advance(&sh->ring, n);
	sh->bwait -= (uint8_t)(cnt >> 8);
	sh->bpend += (uint32_t)((int64_t)cnt >> 40);
	sh->bdone += (uint8_t)cnt;
}

/* batch_drain() where the ring wraps (or without the room): rarer. */
static __attribute__((noinline)) void
batch_drain_wraps(struct zc_uring_shared *sh, unsigned int head,
		  unsigned int n, struct batch_writer w)
{
	batch_drain_as(sh, head, n, w, false);
}

static void batch_drain(struct zc_uring_shared *sh)
{
	/* As in sh_drain_as(): ours to read plainly; acquire tail. */
	const unsigned int head = *sh->ring.cq.khead;
	const unsigned int n = atomic_load_explicit((_Atomic unsigned int *)
						    sh->ring.cq.ktail,
						    memory_order_acquire) - head;
	struct batch_writer w;
	uint32_t need;

	if (!n)
		return;
	w.w = fwd_writer(sh);
	w.p = &w.w.fwd[w.w.tail & w.w.mask];
	/*
	 * Two entries a send and a CQE at most (see fwd_put(); a run routed
	 * puts at most two a CQE), in the ring and before its end: then
	 * flat, the tests once, not each put.
	 */
	need = 2 * (sh->bn + n);
	if (w.w.mask + 1 - (w.w.tail - w.w.head) >= need &&
	    w.w.mask + 1 - (w.w.tail & w.w.mask) >= need)
		batch_drain_as(sh, head, n, w, true);
	else
		batch_drain_wraps(sh, head, n, w);
}

/*
 * batch_to_come() of a send that failed with its notification still to
 * come (see the top): it takes its id all the same, the core makes it a
 * ghost (send_failed()), and the notification, counted as a sent one's,
 * completes that when it comes. Returns 1.
 */
static __attribute__((noinline, cold)) unsigned int
batch_ghost(struct zc_uring_shared *sh, struct zc_batch_send *b)
{
	struct zc_sock *zs = b->zs;

	zs->tx_ghost_id = true;
	/*
	 * Its id's window opened before the notification can be seen (as
	 * batch_end()'s); send_failed() keeps it. Release: pairs with the
	 * acquire in zc_apply_range().
	 */
	atomic_store_explicit(&zs->zc_issued, zs->zc_next + 1,
			      memory_order_release);
	sh->slots[fwd_slot(b->ud)].out++;
	return 1;
}

/*
 * Lock holder, the batch's CQEs in: each send that sent and whose
 * notification is still to come (bpend of them): its id's window opened
 * (batch_end()'s), its notification counted to come. Returns how many.
 */
static __attribute__((noinline)) unsigned int
batch_to_come(struct zc_uring_shared *sh, struct zc_batch_send *v,
	      unsigned int n)
{
	unsigned int sent = 0;

	for (unsigned int i = 0; i < n; i++) {
		struct zc_batch_send *b = &v[i];

		/* Its notification to come, and only that. */
		if (!b->ud || (b->st & (BS_RES | BS_MORE | BS_NOTIF)) !=
		    (BS_RES | BS_MORE) || !b->res)
			continue;
		if (b->res < 0) {
			sent += batch_ghost(sh, b);
			continue;
		}
		/* Release: pairs with the acquire in zc_apply_range(). */
		atomic_store_explicit(&b->zs->zc_issued, b->zs->zc_next + 1,
				      memory_order_release);
		sh->slots[fwd_slot(b->ud)].out++;
		sent++;
	}
	return sent;
}

void zc__uring_open(struct zc_uring_q *q, struct zc_sock *zs)
{
	const struct uring_member *m = zs->backend_priv;
	struct zc_uring_shared *sh = m->sh;
	struct io_uring_sq *sq;
	unsigned int room, free_sqes;
	uint32_t out;

	q->sh = sh;
	if (!sh) {	/* not in the context (cannot happen): no room */
		q->tail0 = q->tail = q->end = 0;
		return;
	}
	sq = &sh->ring.sq;
	pthread_mutex_lock(&sh->lock);
	out = atomic_load_explicit(&sh->out, memory_order_relaxed);
	/*
	 * How many sends the batch may submit: room in the CQ for each one's
	 * notification and, this once, its result beside the batch's others
	 * (k sends need out + 2k <= cap), and free SQEs. Those are taken
	 * as io_uring_get_sqe() takes them, without its tests of the ring's
	 * flags every SQE (no SQPOLL, no SQE128: sh_new()). The SQ is ours
	 * (the lock); the kernel moves its head (relaxed, as liburing reads
	 * it without SQPOLL).
	 */
	room = out + 2 <= sh->cap ? (sh->cap - out) / 2 : 0;
	free_sqes = sq->ring_entries - (sq->sqe_tail -
		atomic_load_explicit((_Atomic unsigned int *)sq->khead,
				     memory_order_relaxed));
	if (room > free_sqes)
		room = free_sqes;
	*q = (struct zc_uring_q){
		.sh = sh, .sqes = sq->sqes, .mask = sq->ring_mask,
		.tail0 = sq->sqe_tail, .tail = sq->sqe_tail,
		.end = sq->sqe_tail + room, .ioprio = (uint16_t)sh->zc_flags,
		.plain = !sh->nbufs,
	};
}

void zc__uring_queue_other(struct zc_uring_q *q, struct zc_batch_send *b,
			   unsigned int i)
{
	struct zc_sock *zs = b->zs;
	const struct uring_member *m = zs->backend_priv;

	b->st = 0;
	/* No room (above): the core copies. ud 0: none submitted. */
	if (m->sh != q->sh || q->tail == q->end) {
		b->ud = 0;
		b->res = -ENOBUFS;
		return;
	}
	b->ud = m_ud_batch(m, zs->zc_next, i);
	sh_prep(q->sh, &q->sqes[q->tail++ & q->mask], zs, b->caller->msg,
		zc_batch_flags(b), b->ud);
}

unsigned int zc__uring_send_batch(struct zc_uring_q *q,
				  struct zc_batch_send *v, unsigned int n)
{
	struct zc_uring_shared *sh = q->sh;
	struct uring_op none = { .ud = URING_UD_NONE };
	const unsigned int k = q->tail - q->tail0;
	unsigned int done;

	if (!sh)	/* not in the context: none went (-ENOBUFS) */
		return 0;
	sh->ring.sq.sqe_tail = q->tail;
	v[n].ud = 0;	/* the guard: no CQE's (batch_drain_as()) */
	/* The CQEs of v find their sends by their index (batch_drain()). */
	sh->batch = v;
	sh->bn = n;
	sh->bwait = k;
	sh->bpend = sh->bdone = 0;
	if (k)
		batch_submit(v[0].zs, sh, v, n);
	for (;;) {
		batch_drain(sh);
		if (!sh->bwait)
			break;
		sh_sleep(v[0].zs, sh);
	}
	sh->bn = 0;	/* v is ours again */
	/*
	 * sh_sent()'s count of the sends whose notification is to come:
	 * before the reaper can see them (routed once sh_give() gives the
	 * lock back). The drains counted the others. At most the 2k the
	 * batch had room for.
	 */
	if (sh->bpend)
		atomic_fetch_add_explicit(&sh->out, batch_to_come(sh, v, n),
					  memory_order_relaxed);
	done = sh->bdone;
	sh_give(v[0].zs, sh, &none);
	return done;
}

static void sh_free(struct zc_uring_shared *sh)
{
	if (!sh)
		return;
	if (sh->ring_ok)
		io_uring_queue_exit(&sh->ring);
	if (sh->lock_ok)
		pthread_mutex_destroy(&sh->lock);
	free(sh->slots ? sh->slots - 1 : NULL);	/* and the guard */
	free(sh->fwd);
	free(sh->bufs);
	free(sh);
}

/*
 * ZCNOTIFY_URING_CTX_CQ=N: the context's ring asks for a CQ of N entries
 * (tests: a small one fills up; diagnosis). Unset: URING_CTX_CQ.
 */
static int ctx_cq_env(uint32_t *cq)
{
	const char *env = getenv("ZCNOTIFY_URING_CTX_CQ");
	char *end;
	unsigned long v;

	*cq = URING_CTX_CQ;
	if (!env || !*env)
		return 0;
	v = strtoul(env, &end, 10);
	if (*end || v < 4 * URING_CQ_OWN || v > 65536)
		return zc__err(-EINVAL, "ZCNOTIFY_URING_CTX_CQ=\"%s\": want "
			      "%u to 65536 entries", env, 4 * URING_CQ_OWN);
	*cq = (uint32_t)v;
	return 0;
}

/* The context's ring, for its first uring member. */
static int sh_new(struct zc_uring_shared **out, int efd)
{
	/*
	 * SUBMIT_ALL (5.18; every kernel with SEND_ZC has it): a batch's
	 * SQE that fails as the kernel takes it (a bad address, an
	 * RLIMIT_MEMLOCK refusal) gets its CQE, and the kernel takes the
	 * ones after it too; without it, it stopped there, and the rest of
	 * the batch failed with -EAGAIN (batch_submit()).
	 */
	struct io_uring_params par = {
		.flags = IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP |
			 IORING_SETUP_SUBMIT_ALL,
		.cq_entries = URING_CTX_CQ,
	};
	struct zc_uring_shared *sh;
	bool usage_off;
	int r;

	if ((r = usage_env(&usage_off)) || (r = ctx_cq_env(&par.cq_entries)))
		return r;
	sh = aligned_alloc(ZC_CACHELINE, (sizeof(*sh) + ZC_CACHELINE - 1) &
			   ~(size_t)(ZC_CACHELINE - 1));
	if (!sh)
		return zc__err(-ENOMEM, "zc_open: out of memory");
	memset(sh, 0, sizeof(*sh));
	sh->free_slot = UINT32_MAX;
	sh->efd = efd;
	/* The kernel wants a CQ no smaller than the SQ. */
	r = io_uring_queue_init_params(par.cq_entries / 2 < URING_CTX_SQ ?
				       par.cq_entries / 2 : URING_CTX_SQ,
				       &sh->ring, &par);
	if (r < 0) {
		sh_free(sh);
		if (r == -ENOSYS || r == -EPERM || r == -EINVAL)
			return zc__err(-EOPNOTSUPP, "zc_open: backend "
				      "\"uring\": io_uring_setup: %s (no "
				      "io_uring in this kernel, or disabled)",
				      strerror(-r));
		return zc__err(r, "zc_open: backend \"uring\": the context's "
			      "ring: io_uring_setup: %s%s", strerror(-r),
			      r == -ENOMEM ?
			      URING_ENOMEM_WHY("ZCNOTIFY_URING_CTX_CQ") : "");
	}
	sh->ring_ok = true;
	if (!(par.features & IORING_FEAT_NODROP) ||
	    par.cq_entries <= 2 * URING_CQ_OWN) {
		sh_free(sh);
		return zc__err(-EOPNOTSUPP, "zc_open: backend \"uring\": this "
			      "kernel's io_uring lacks IORING_FEAT_NODROP or "
			      "a completion queue of some size");
	}
	if ((r = probe_check(&sh->ring, usage_off, &sh->zc_flags))) {
		sh_free(sh);
		return r;
	}
	sh->cap = par.cq_entries - URING_CQ_OWN;
	sh->fmask = (1u << (32 - __builtin_clz(sh->cap - 1))) - 1;
	sh->fwd = malloc(((size_t)sh->fmask + 1) * sizeof(*sh->fwd));
	r = pthread_mutex_init(&sh->lock, NULL);
	sh->lock_ok = !r;
	if (!sh->fwd || r) {
		sh_free(sh);
		return zc__err(-ENOMEM, "zc_open: out of memory");
	}
	if ((r = io_uring_register_eventfd(&sh->ring, efd)) < 0) {
		sh_free(sh);
		return zc__err(r, "zc_open: io_uring_register_eventfd: %s",
			      strerror(-r));
	}
	*out = sh;
	return 0;
}

void zc__uring_shared_free(struct zc_uring_shared *sh)
{
	sh_free(sh);
}

static int buf_cmp(const void *a, const void *b)
{
	const struct uring_buf *x = a, *y = b;

	return x->base < y->base ? -1 : x->base > y->base;
}

/*
 * zc_ctx_register_buffers(), the context's lock held: iov (n of them, 0:
 * none) become the ring's registered buffers, in place of any before.
 */
int zc__uring_register(struct zc_uring_shared **shp, int efd,
		       const struct iovec *iov, unsigned int n)
{
	struct zc_uring_shared *sh = *shp;
	struct uring_buf *bufs = NULL;
	int r;

	if (n > UINT16_MAX + 1u)
		return zc__err(-EINVAL, "zc_ctx_register_buffers: %u buffers: "
			      "io_uring takes at most 65536", n);
	if (n) {
		bufs = calloc(n, sizeof(*bufs));
		if (!bufs)
			return zc__err(-ENOMEM, "zc_ctx_register_buffers: out "
				      "of memory");
	}
	for (unsigned int i = 0; i < n; i++) {
		if (!iov[i].iov_base || !iov[i].iov_len ||
		    iov[i].iov_len > UINTPTR_MAX - (uintptr_t)iov[i].iov_base) {
			free(bufs);
			return zc__err(-EINVAL, "zc_ctx_register_buffers: "
				      "buffer %u is empty or NULL", i);
		}
		bufs[i] = (struct uring_buf){ (uintptr_t)iov[i].iov_base,
					      iov[i].iov_len, i };
	}
	if (n > 1)	/* not qsort(NULL, 0): its pointer must not be NULL */
		qsort(bufs, n, sizeof(*bufs), buf_cmp);
	for (unsigned int i = 1; i < n; i++) {
		if (bufs[i].base - bufs[i - 1].base < bufs[i - 1].len) {
			unsigned int a = bufs[i - 1].idx, b = bufs[i].idx;

			free(bufs);
			return zc__err(-EINVAL, "zc_ctx_register_buffers: "
				      "buffers %u and %u overlap", a, b);
		}
	}
	if (!sh) {
		if ((r = sh_new(&sh, efd))) {
			free(bufs);
			return r;
		}
		*shp = sh;
	}
	/*
	 * Under the ring's lock: no send looks at the table meanwhile. Sends
	 * in flight keep the pages of the old buffers (the kernel holds a
	 * reference for each request).
	 */
	pthread_mutex_lock(&sh->lock);
	r = 0;
	if (sh->nbufs)
		r = io_uring_unregister_buffers(&sh->ring);
	if (!r) {
		free(sh->bufs);
		sh->bufs = NULL;
		sh->nbufs = 0;
	}
	if (!r && n) {
		r = io_uring_register_buffers(&sh->ring, iov, n);
		if (!r) {
			sh->bufs = bufs;
			sh->nbufs = n;
			bufs = NULL;
		}
	}
	pthread_mutex_unlock(&sh->lock);
	free(bufs);
	if (r < 0)
		return zc__err(r, "zc_ctx_register_buffers: io_uring_register: "
			      "%s%s", strerror(-r), r == -ENOMEM ?
			      " (RLIMIT_MEMLOCK?)" : "");
	return 0;
}

int zc__uring_join(struct zc_uring_shared **shp, int efd, struct zc_sock *zs)
{
	struct uring_member *m = zs->backend_priv;
	struct zc_uring_shared *sh = *shp;
	uint32_t s;
	int r;

	if (zs->ops != &zc__ops_uring_member || !m)
		return 0;
	if (!sh) {
		if ((r = sh_new(&sh, efd)))
			return r;
		*shp = sh;
	}
	pthread_mutex_lock(&sh->lock);
	r = slot_alloc(sh, &s);
	if (!r) {
		sh->slots[s] = (struct uring_slot){ .zs = zs, .used = true };
		m->sh = sh;
		m->slot = s;
		m->ud = m_ud(s, 0);
	}
	pthread_mutex_unlock(&sh->lock);
	return r ? zc__err(r, "zc_open: joining the context's ring: out of "
			  "memory") : 1;
}

/* Under both locks: m's member leaves the table. */
static void detach_locked(struct zc_uring_shared *sh, struct uring_member *m)
{
	struct uring_slot *sl = &sh->slots[m->slot];

	/*
	 * Forwarded ones first: they name the slot (fwd_take()). Those
	 * past a done entry fwd_take() stops at (no rec here) name the
	 * guard from now on.
	 */
	fwd_take(sh);
	fwd_forget(sh, m->slot);
	sl->zs = NULL;
	if (!sl->out)
		slot_free(sh, m->slot);
	m->sh = NULL;
}

void zc__uring_leave(struct zc_uring_shared *sh, struct zc_sock *zs,
		     zc_due_fn *due)
{
	struct uring_member *m = zs->backend_priv;

	if (zs->ops != &zc__ops_uring_member || !m || !m->sh)
		return;
	pthread_mutex_lock(&sh->lock);
	sh->due = due;
	detach_locked(sh, m);
	pthread_mutex_unlock(&sh->lock);
}

/*
 * zc_ctx_del() of a member, under the context's lock (we are the
 * reaper): one look at whether every notification of its sends has come
 * through the context's ring and been applied to its own records; false
 * if some are still out, or a send holds the ring's lock. The caller
 * waits between looks without the context's lock, so that its reaper and
 * the other members are not held up meanwhile.
 */
bool zc__uring_settled(struct zc_uring_shared *sh, struct zc_sock *zs,
		       zc_due_fn *due)
{
	struct uring_member *m = zs->backend_priv;
	bool settled;

	if (zs->ops != &zc__ops_uring_member || !m || !m->sh)
		return true;
	if (pthread_mutex_trylock(&sh->lock))
		return false;
	sh->due = due;
	fwd_take(sh);
	sh_drain(sh, NULL, UINT32_MAX);
	settled = !sh->slots[m->slot].out;
	pthread_mutex_unlock(&sh->lock);
	return settled;
}

/*
 * zc__uring_unshare(), under both locks, every notification of member zs
 * (slot s) in: the forward ring may still hold entries of it past a done
 * entry fwd_take() stopped at (no rec here). Its done entries go back in
 * its ring, before what it published since (their sends were older), as
 * complete entries; its notifications there are applied. Then the
 * forward ring forgets them (fwd_forget()). Returns 0 or -errno (nothing
 * changed).
 */
static int done_put_back(struct zc_uring_shared *sh, struct zc_sock *zs,
			 uint32_t s)
{
	uint32_t k = atomic_load_explicit(&zs->done_made, memory_order_relaxed) -
		     atomic_load_explicit(&zs->done_taken, memory_order_relaxed);
	uint32_t h = atomic_load_explicit(&sh->fhead, memory_order_relaxed);
	const uint32_t t = atomic_load_explicit(&sh->ftail,
					       memory_order_relaxed);
	struct zc_entry *d = NULL;
	uint32_t i = 0;
	int r;

	if (k && !(d = malloc(k * sizeof(*d))))
		return -ENOMEM;
	for (uint32_t p = h; p != t && i < k; p++) {
		uint64_t e = sh->fwd[p & sh->fmask];

		if (!(e & FWD_DONE)) {
			if (fwd_slot(e) == -1 && (uint32_t)e)
				p++;		/* a run: its mark and first */
			continue;
		}
		if (fwd_slot(e) == (ptrdiff_t)s)
			d[i++] = (struct zc_entry){
				.cookie = sh->fwd[(p + 1) & sh->fmask],
				.bytes = (uint32_t)e,
				/* The reap counts it as it was. */
				.flags = e >> 63 ? ZC_COPIED : ZC_ENT_ZC,
			};
		p++;
	}
	r = i == k ? zc__ring_put_front(zs, d, k) : -EIO;
	/* As take_done(); the stats the reap's (ZC_ENT_ZC). */
	for (i = 0; !r && i < k; i++)
		zc_feed_streak(zs, 1, d[i].flags & ZC_COPIED);
	free(d);
	if (r)
		return r;
	/* Now in its ring: zc_inflight() counts them there. */
	atomic_store_explicit(&zs->done_taken,
			      atomic_load_explicit(&zs->done_made,
						   memory_order_relaxed),
			      memory_order_release);
	/* Its notifications past the stop: applied, in order. */
	for (; h != t; h++) {
		uint64_t e = sh->fwd[h & sh->fmask];

		if (e & FWD_DONE) {
			h++;
		} else if (fwd_slot(e) == -1 && (uint32_t)e) {
			uint64_t f = sh->fwd[++h & sh->fmask];

			if (fwd_slot(f) == (ptrdiff_t)s)
				zc_apply_range(zs, (uint32_t)f,
					       (uint32_t)f + (uint32_t)e,
					       f >> 63);
		} else if (fwd_slot(e) == (ptrdiff_t)s) {
			zc_apply_range(zs, (uint32_t)e, (uint32_t)e, e >> 63);
		}
	}
	fwd_forget(sh, s);
	return 0;
}

/*
 * zc_ctx_del() of a member that zc__uring_settled() found settled, the
 * context's lock held since (no send runs on zs: nothing of it can come
 * any more): a ring of its own, then out of the table. Nothing changes
 * if the ring cannot be made.
 */
int zc__uring_unshare(struct zc_uring_shared *sh, struct zc_sock *zs)
{
	struct uring_member *m = zs->backend_priv;
	int r, efd;

	if (zs->ops != &zc__ops_uring_member || !m || !m->sh)
		return 0;
	/*
	 * No send runs on zs, and the reaper is us: nothing else reads ops,
	 * backend_priv or efd. backend_priv NULL, so that uring_teardown()
	 * frees only what sock_setup() made, whenever it failed.
	 */
	zs->backend_priv = NULL;
	zs->ops = &zc__ops_uring;
	r = sock_setup(zs);
	if (!r) {
		pthread_mutex_lock(&sh->lock);
		/*
		 * Its done entries still in the forward ring back in its own
		 * ring first: if they cannot go, nothing has changed.
		 */
		r = done_put_back(sh, zs, m->slot);
		if (!r) {
			detach_locked(sh, m);
			pthread_mutex_unlock(&sh->lock);
			free(m);
			return 0;
		}
		pthread_mutex_unlock(&sh->lock);
		r = zc__err(r, "zc_ctx_del: the socket's sends complete in the "
			    "context (%s); reap them with zc_ctx_completions() "
			    "and try again", r == -EBUSY ?
			    "more than max_inflight" : r == -ENOMEM ?
			    "out of memory" : "not all of them found");
	}
	/* Failed: back to the context's ring, as it was. */
	uring_teardown(zs);
	efd = atomic_load_explicit(&zs->efd, memory_order_relaxed);
	if (efd >= 0)
		close(efd);
	atomic_store_explicit(&zs->efd, -1, memory_order_relaxed);
	zs->backend_priv = m;
	zs->ops = &zc__ops_uring_member;
	return r;
}

/* zc__uring_reap()'s drain: true if the CQ may hold more. */
static bool reap_rounds(struct zc_uring_shared *sh)
{
	fwd_take(sh);
	for (int round = 0; round < URING_CTX_ROUNDS; round++) {
		unsigned int k;

		/*
		 * The eventfd read (take_events()) before the lock's test:
		 * see sh_give().
		 */
		atomic_thread_fence(memory_order_seq_cst);
		if (pthread_mutex_trylock(&sh->lock)) {
			/*
			 * A send holds it and forwards what it reads. Seq_cst
			 * store of missed, then seq_cst load of ftail in
			 * fwd_take(): see sh_wake().
			 */
			atomic_store_explicit(&sh->missed, 1,
					      memory_order_seq_cst);
			fwd_take(sh);
			return false;
		}
		fwd_take(sh);	/* forwarded before we took it: first */
		if (io_uring_cq_has_overflow(&sh->ring))
			io_uring_get_events(&sh->ring);
		k = sh_drain(sh, NULL, URING_CTX_BATCH);
		pthread_mutex_unlock(&sh->lock);
		/*
		 * A CQE that comes from now on writes the eventfd, which
		 * take_events() read before we looked.
		 */
		if (k < URING_CTX_BATCH)
			return false;
	}
	return true;
}

unsigned int zc__uring_reap(struct zc_uring_shared *sh, zc_due_fn *due,
			    struct zc_ctx_completion *rec, unsigned int max,
			    bool *more)
{
	sh->due = due;
	sh->rec = rec;
	sh->nrec = 0;
	sh->maxrec = max;
	*more = reap_rounds(sh);
	max = sh->nrec;
	/* Outside the call nothing goes to rec (leave, unshare). */
	sh->nrec = sh->maxrec = 0;
	return max;
}

unsigned int zc__uring_take(struct zc_uring_shared *sh, zc_due_fn *due,
			    struct zc_ctx_completion *rec, unsigned int max)
{
	sh->due = due;
	sh->rec = rec;
	sh->nrec = 0;
	sh->maxrec = max;
	fwd_take(sh);
	max = sh->nrec;
	sh->nrec = sh->maxrec = 0;
	return max;
}

static ssize_t member_send_op(struct zc_sock *zs, const struct msghdr *msg,
			      int flags)
{
	return member_send(zs, zs->backend_priv, msg, flags);
}

static int member_collect(struct zc_sock *zs, bool force)
{
	int r;

	/*
	 * The context's reaper brought the ring's news already
	 * (zc__uring_reap()). The error queue holds foreign records only.
	 */
	if (!force)
		return 0;
	r = zc__eq_drain(zs);
	return r < 0 ? r : 0;
}

static int uring_setup(struct zc_sock *zs, const struct zc_opts *o)
{
	struct uring_member *m;
	int fl;

	if (!o->ctx)
		return sock_setup(zs);
	/*
	 * A member of ctx: it joins the context's ring in zc__uring_join(),
	 * and sends and reaps through zc__ops_uring_member from now on.
	 */
	zs->ops = &zc__ops_uring_member;
	m = calloc(1, sizeof(*m));
	if (!m)
		return zc__err(-ENOMEM, "zc_open: out of memory");
	zs->backend_priv = m;
	fl = fcntl(zs->fd, F_GETFL);
	if (fl < 0)
		return zc__err(-errno, "zc_open: fcntl(F_GETFL): %s",
			      strerror(errno));
	m->nonblock = fl & O_NONBLOCK;
	return 0;
}

static void member_teardown(struct zc_sock *zs)
{
	free(zs->backend_priv);
	zs->backend_priv = NULL;
}

const struct zc_ops zc__ops_uring = {
	.id = ZC_BACKEND_URING,
	.zerocopy = true,
	.news_on_efd = true,
	.send = uring_send,
	.collect = uring_collect,
	.setup = uring_setup,
	.teardown = uring_teardown,
};

/* A member of a context: zc_open() sets it up through zc__ops_uring. */
const struct zc_ops zc__ops_uring_member = {
	.id = ZC_BACKEND_URING,
	.zerocopy = true,
	.news_on_efd = true,
	.send = member_send_op,
	.collect = member_collect,
	.teardown = member_teardown,
};
