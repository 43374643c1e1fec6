/* SPDX-License-Identifier: MIT */
#ifndef ZC_INTERNAL_H
#define ZC_INTERNAL_H

#include <errno.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "zcnotify.h"
#include "compat.h"

/*
 * Internal: the objects are built -fvisibility=hidden, and these
 * declarations say so too, so that calls and data references between
 * the library's files go direct, not through the PLT and GOT.
 */
#pragma GCC visibility push(hidden)

/*
 * Exported functions are zc_* and carry ZC_EXPORT; every other global is
 * zc__*, so that the static archive cannot clash with a program's names
 * (tests/install-test.sh checks libzcnotify.a).
 */
#define ZC_EXPORT	__attribute__((visibility("default")))
#define ZC_CACHELINE	64

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

/*
 * SCM backend: harvest on every k-th send while ids are out. Over UDP
 * each SOL_SOCKET cmsg costs a route lookup (the connected-socket route
 * cache is bypassed), so harvest less often there.
 *
 * Measured in the kernel rig's guest (qemu TCG, e1000 pair, 3000 sends,
 * 3 alternating rounds): syscalls per send 1.01 (TCP, 64 KiB) and
 * 1.16-1.25 (UDP, 1400 B) for every k from 1 to 16, against 2.01 and 2.27
 * with the error queue: the reap side reads the queue only when sends
 * stop, so k does not change the syscall count. CPU differences between
 * k values (0.90x-1.29x of the error queue's) were within TCG's noise.
 * So k trades route lookups against how soon completions arrive; these
 * defaults stand until zcbench measures them on real hardware.
 */
#define ZC_DEFAULT_HARVEST_TCP	1u
#define ZC_DEFAULT_HARVEST_UDP	4u
#ifndef ZC_SCM_TYPE_DEFAULT
#define ZC_SCM_TYPE_DEFAULT	78	/* asm-generic; see ABI.md section 2 */
#endif

/*
 * The send ring is a chain of chunks of this many entries (ring.c): 8
 * entries and the link, 136 bytes a chunk. 16 cost 3 instructions a send
 * less (a hand-off every 16 sends, not 8), but an idle socket that has
 * streamed holds its tail's chunk and the spare: 1073 bytes with the
 * socket then, 831 at 8 (zcbench -c 1000, RSS).
 */
#define ZC_CHUNK_SHIFT		3
#define ZC_CHUNK		(1u << ZC_CHUNK_SHIFT)
#define ZC_CHUNK_MASK		(ZC_CHUNK - 1)

#define ZC_EQ_BATCH		16	/* records per recvmmsg() */
#define ZC_EQ_CTRL		512	/* control bytes per record */
#define ZC_FOREIGN_MAX		64	/* foreign records kept for zc_foreign() */

/* Ring entry flags (zc_entry.flags); the low bits are the public ZC_*. */
#define ZC_ENT_PENDING	(1u << 31)	/* waits for its kernel id */
/*
 * A send that failed (nothing for the caller to reap) but may have used up
 * its kernel id: a UDP datagram that netfilter or the qdisc dropped
 * after the skb, and with it the id, existed (ABI.md section 1). It holds
 * its slot, and its id's place in the window, until the reap side has
 * settled the id (amb_resolve()) and, if it was used, seen its record.
 */
#define ZC_ENT_GHOST	(1u << 30)

/* zc_sock.amb: did the failed send in ring slot amb_slot use its id? */
enum { ZC_AMB_NONE, ZC_AMB_PENDING, ZC_AMB_TAKEN, ZC_AMB_NOT_TAKEN };

/* Mark of a kernel id in zc_sock.done[] */
#define ZC_DONE		1u
#define ZC_DONE_COPIED	2u

/*
 * A send record: laid out as struct zc_completion, so that the reap side
 * hands it out as it is. The kernel id of a PENDING one is implied: the
 * PENDING entries from head on wait for zc_head, zc_head + 1, ...
 */
struct zc_entry {
	uint64_t cookie;
	uint32_t bytes;
	uint32_t flags;
};

/*
 * ZC_CHUNK ring slots, those of numbers c * ZC_CHUNK ... c * ZC_CHUNK +
 * ZC_CHUNK_MASK for some c: the entry of slot t is e[t & ZC_CHUNK_MASK].
 * next is the chunk of the following slots, NULL until the send side
 * needs them (ring.c).
 */
struct zc_chunk {
	struct zc_entry e[ZC_CHUNK];
	struct zc_chunk *next;
};

/* The chunk whose last entry e is. */
static inline struct zc_chunk *zc_chunk_of_last(struct zc_entry *e)
{
	_Static_assert(offsetof(struct zc_chunk, e) == 0, "e[] first");
	return (struct zc_chunk *)(e - ZC_CHUNK_MASK);
}

/* A completed range of kernel ids, inclusive; may wrap (hi < lo). */
struct zc_range {
	uint32_t lo;
	uint32_t hi;
	bool copied;
};

/*
 * Counters of one side, the struct zc_stats fields that side counts;
 * written by that side only, read by anyone (zc_get_stats() adds the
 * two). Three are never counted, zc_get_stats() derives them: sends
 * (sends_zc + sends_copy), completions (completions_zc +
 * completions_copied), and the errqueue_reads part of syscalls. Every
 * increment is on the hot path. Two sets of the 16 fields of struct
 * zc_stats were 256 bytes of each socket's; these are 128.
 */
struct zc_tx_stats {
	_Atomic uint64_t sends_zc, sends_copy, enobufs_fallback, adapt_copy,
		harvest_cmsg, syscalls, bad_ranges;
};
struct zc_rx_stats {
	_Atomic uint64_t completions_zc, completions_copied, harvest_recvmsg,
		errqueue_reads, syscalls, foreign, foreign_dropped, ctrunc,
		bad_ranges;
};

/* Single-writer increment: no read-modify-write needed, no lock prefix. */
#define ZC_STAT_ADD(zs_side, field, n)					\
	atomic_store_explicit(&(zs_side)->field,			\
		atomic_load_explicit(&(zs_side)->field,			\
				     memory_order_relaxed) + (n),	\
		memory_order_relaxed)
#define ZC_STAT_INC(side, field)	ZC_STAT_ADD(side, field, 1)

struct zc_sock;

/*
 * A socket's membership of a context (ctx.c). A member keeps waiting set,
 * so that zc_publish() calls zc__wake_reaper(), which puts it on the
 * context's ready stack when the send may be news that raises no POLLERR.
 */
struct zc_member {
	/* Send side, and the context's reaper (under its lock). */
	alignas(ZC_CACHELINE) _Atomic uint32_t ready;	/* on the ready stack */
	/*
	 * Set by the reaper when the kernel reported ids whose entries it has
	 * not seen yet: every publish is news then (errqueue). Seq_cst, with
	 * the send side's seq_cst load in zc__ctx_wake().
	 */
	_Atomic uint32_t any;
	struct zc_sock *next_ready;	/* ready stack link */
	uint64_t tx_zc;			/* send side: sends_zc at the last wake */
	/* The context's reaper, under its lock. */
	uint64_t tag;
	uint32_t slot;			/* index in the context's table */
	bool queued;			/* on the reaper's queue */
	bool read;			/* ... with an epoll event: read the queue */
	struct zc_sock *qprev, *qnext;
};

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
#endif

struct zc_sock {
	/* Read-only after zc_open(). */
	int fd;
	int family;
	int type;
	uint32_t mask;			/* max_inflight - 1 */
	/* Sends shorter than this are copied: opts' copy_below (>= 1), or
	 * SIZE_MAX when the backend cannot send zero-copy. */
	size_t copy_below;
	uint32_t opt_flags;
	/* copied_streak from which sends copy: UINT32_MAX with NO_ADAPT. */
	uint32_t adapt_at;
	bool tx_direct;			/* the send is the syscall (not uring) */
	bool tx_scm;			/* ... with zc_scm_want()'s cmsg (scm) */
	int scm_type;			/* SCM_ZC_NOTIFICATION's cmsg type */
	const struct zc_ops *ops;
	/* The context it belongs to (ctx.c), or NULL; see struct zc_member. */
	struct zc_ctx *ctx;
	void *backend_priv;
	/*
	 * The send records, up to max_inflight of them, are in chunks
	 * (ring.c): tx_e and rx_e below. The PENDING ones wait for
	 * kernel ids zc_head, zc_head + 1, ... in ring order: every id the
	 * kernel may have used has its entry, in send order.
	 */

	/* Send side. */
	alignas(ZC_CACHELINE) _Atomic uint32_t tail;	/* next ring slot */
	struct zc_entry *tx_e;		/* the entry of slot tail */
	/*
	 * Ids up to (not including) this value may have been handed out by
	 * the kernel; a range beyond it is bogus. Release: pairs with the
	 * acquire in zc_apply_range().
	 */
	_Atomic uint32_t zc_issued;
	uint32_t zc_next;		/* id the next zero-copy send takes */
	uint32_t adapt_tick;
	bool amb_local;			/* a failed send's id is unsettled */
	/*
	 * A failed UDP zero-copy send that may have used up its id: its ring
	 * entry is in slot amb_slot (PENDING on that id). Send side sets
	 * PENDING and sends no zero-copy meanwhile; the reap side settles it
	 * (amb_resolve()); the send side clears it (amb_poll()). amb_id is
	 * the id it may have used.
	 */
	_Atomic int amb;
	_Atomic uint32_t amb_slot;
	_Atomic uint32_t amb_id;
	/*
	 * Ghost entries published: zc_inflight() leaves them out (they are
	 * no sends), the ring limit counts them (they hold kernel ids).
	 * Release, after tail: pairs with the acquire in zc_inflight().
	 */
	_Atomic uint32_t ghosts_made;
	struct zc_tx_stats tx;

	/* Reap side. */
	alignas(ZC_CACHELINE) _Atomic uint32_t head;	/* oldest unreaped slot */
	struct zc_entry *rx_e;		/* the entry of slot head */
	/*
	 * A chunk the reap side left, for the send side's next; exchanged by
	 * both, once a chunk (here, not with the read-only fields both read
	 * on every call). nchunks: chunks allocated, the spare included
	 * (both sides add, on malloc() and free() only).
	 */
	_Atomic(struct zc_chunk *) spare;
	_Atomic uint32_t nchunks;
	uint32_t zc_head;		/* oldest unreaped kernel id */
	/*
	 * What the kernel reported: ids [zc_head, done_to) are complete, all
	 * with run_flags (ZC_COPIED or 0); the ids past it that were reported
	 * out of that order carry marks in done[] (nmarks of them; done[]
	 * is there while nmarks is not 0, by id & mask, ring.c). done_to is
	 * relaxed-atomic, so that the send side may read it.
	 */
	_Atomic uint32_t done_to;
	uint32_t run_flags;
	uint32_t nmarks;
	uint8_t *done;
	/* No memory for a mark: completions lost, pending_err stays. */
	bool broken;
	/* Ghost entries reaped; stored before head (see zc_inflight()). */
	_Atomic uint32_t ghosts_reaped;
	/* Consecutive ids reported COPIED; read by the send side. */
	_Atomic uint32_t copied_streak;
	/* Set while zc_wait() sleeps; full fence both sides (see zc_publish). */
	_Atomic uint32_t waiting;
	/*
	 * eventfd that wakes a sleeping zc_wait(); made by the first zc_wait()
	 * (most servers never wait), or by the uring backend's setup (the
	 * ring signals it too). Release: pairs with the acquire in
	 * zc__wake_reaper().
	 */
	_Atomic int efd;
	int pending_err;		/* reported once by zc_completions() */
	bool rx_dry;			/* the last read of the queue found none */
	/* Ids reported through recvmsg(MSG_ERRQUEUE); read by the SCM send
	 * side to estimate how many ids are still out. */
	_Atomic uint32_t ids_by_recvmsg;
	struct zc_rx_stats rx;
	/*
	 * Foreign records kept for zc_foreign(): ZC_FOREIGN_MAX of them,
	 * allocated by the first one (most sockets never see one), freed by
	 * zc_close().
	 */
	struct zc_errrec *foreign;
	unsigned int nforeign;
	unsigned int foreign_first;

	struct zc_member ctxm;		/* ctx.c, when ctx is set */
};

/* zcnotify.c */
int zc__err(int err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void zc__wake_reaper(struct zc_sock *zs);
ssize_t zc__sys_sendmsg(struct zc_sock *zs, const struct msghdr *msg, int flags);

/* zcnotify.c, for ctx.c */
int zc__opts_copy(const void *opts, void *dst, size_t known, const char *what);
int zc__completions_member(struct zc_sock *zs, struct zc_completion *out,
			  unsigned int max);
int zc__foreign_member(struct zc_sock *zs, struct zc_errrec *out,
		      unsigned int max);

/* ctx.c: contexts of many sockets */
int zc__ctx_join(struct zc_ctx *ctx, struct zc_sock *zs, uint64_t tag);
void zc__ctx_leave(struct zc_sock *zs);
void zc__ctx_wake(struct zc_sock *zs);
int zc__ctx_foreign(struct zc_sock *zs, struct zc_errrec *out,
		   unsigned int max);

/* ring.c: the completion ring, kernel ids -> done marks */
uint32_t zc__apply_range_slow(struct zc_sock *zs, uint32_t lo, uint32_t hi,
			     bool copied);
int zc__ring_init(struct zc_sock *zs);
int zc__tx_chunk_next(struct zc_sock *zs);
struct zc_entry *zc__rx_chunk_next(struct zc_sock *zs,
				   const struct zc_entry *end);
struct zc_chunk *zc__rx_chunk(const struct zc_sock *zs);
struct zc_entry *zc__rx_entry_at(struct zc_sock *zs, uint32_t slot);
void zc__ring_free(struct zc_sock *zs);
unsigned int zc__ring_chunks(const struct zc_sock *zs);

/* backend_scm.c */
int zc__scm_parse(const unsigned char *buf, size_t len, int type,
		 unsigned int asked, struct zc_range *out);
int zc__scm_supported(int type);
int zc__scm_type(int *type);
void zc__scm_probe_reset(void);
size_t zc__optmem_max(void);

#ifdef ZC_HAVE_URING
/* backend_uring.c */
void zc__uring_probe_reset(void);
#endif

/* errqueue.c */
enum zc_rec_kind { ZC_REC_NONE, ZC_REC_RANGE, ZC_REC_FOREIGN };
enum zc_rec_kind zc__parse_errmsg(const struct msghdr *m, struct zc_range *r,
				 struct zc_errrec *rec);
int zc__eq_drain(struct zc_sock *zs);
void zc__stash_foreign(struct zc_sock *zs, const struct zc_errrec *rec);

/*
 * The send syscall, with its count and -errno. Inline in the send paths;
 * zc__sys_sendmsg() is the same out of line.
 */
static inline __attribute__((always_inline)) ssize_t
zc_sys_send(struct zc_sock *zs, const struct msghdr *msg, int flags)
{
	ssize_t ret;

	/*
	 * One buffer, no address, no control: send(2) takes the kernel's
	 * single-buffer path and skips copying in the msghdr and its iovec
	 * array (measured: 3-4% of a 16 KiB TCP send over loopback). Not
	 * past 1 GiB: send(2) clamps a length sendmsg(2) would refuse.
	 */
	if (msg->msg_iovlen == 1 && msg->msg_iov[0].iov_len <= (1u << 30) &&
	    !msg->msg_name && !msg->msg_namelen &&
	    !msg->msg_control && !msg->msg_controllen)
		ret = send(zs->fd, msg->msg_iov[0].iov_base,
			   msg->msg_iov[0].iov_len, flags);
	else
		ret = sendmsg(zs->fd, msg, flags);

	ZC_STAT_INC(&zs->tx, syscalls);
	return ret < 0 ? -errno : ret;
}

/*
 * Send side: publish the record written in slot t (the tail), entry e
 * (zc_tx_entry(): passed, not reloaded, as stores to it may alias zs).
 */
static inline void zc_publish(struct zc_sock *zs, uint32_t t,
			      struct zc_entry *e)
{
	/*
	 * The last slot of its chunk: the next one (zc_tx_reserve()) is the
	 * tail's now; the reap side may free this one once it sees the slot,
	 * so its link is read before.
	 */
	if (__builtin_expect((t + 1) & ZC_CHUNK_MASK, 1))
		zs->tx_e = e + 1;
	else
		zs->tx_e = zc_chunk_of_last(e)->next->e;
	/*
	 * Release (and more): pairs with the acquire of tail in
	 * zc_ring_reap(). Seq_cst store of tail, then seq_cst load of waiting;
	 * zc_wait() stores waiting, then loads tail, both seq_cst: one of
	 * the two sides sees the other's store.
	 */
	atomic_store_explicit(&zs->tail, t + 1, memory_order_seq_cst);
	if (atomic_load_explicit(&zs->waiting, memory_order_seq_cst))
		zc__wake_reaper(zs);
}

/* The end of the run of reported ids (relaxed: see done_to). */
static inline uint32_t zc_done_to(const struct zc_sock *zs)
{
	return atomic_load_explicit(&zs->done_to, memory_order_relaxed);
}

/* Send side: the entry of slot tail. */
static inline struct zc_entry *zc_tx_entry(struct zc_sock *zs)
{
	return zs->tx_e;
}

/*
 * Send side, before a send into slot t (the tail) that zc_publish() may
 * publish: the last slot of a chunk needs the next chunk linked (ring.c).
 * Returns 0 or -ENOMEM (then send nothing).
 */
static inline int zc_tx_reserve(struct zc_sock *zs, uint32_t t)
{
	if (__builtin_expect((t & ZC_CHUNK_MASK) != ZC_CHUNK_MASK, 1))
		return 0;
	return zc__tx_chunk_next(zs);
}

/* Reap side: is the oldest unreaped entry still waiting for the kernel? */
static inline bool zc_ring_blocked(const struct zc_sock *zs)
{
	uint32_t h = atomic_load_explicit(&zs->head, memory_order_relaxed);
	/* Acquire: pairs with the store of tail in zc_publish(). */
	uint32_t t = atomic_load_explicit(&zs->tail, memory_order_acquire);
	const struct zc_entry *e;

	if (h == t)
		return false;
	e = zs->rx_e;
	/* A PENDING entry at head waits for id zc_head (see ring). */
	return (e->flags & ZC_ENT_PENDING) && zs->zc_head == zc_done_to(zs) &&
	       !(zs->nmarks && zs->done[zs->zc_head & zs->mask]);
}

/* Reap side: has the kernel reported id (not reaped yet)? */
static inline bool zc_id_done(const struct zc_sock *zs, uint32_t id)
{
	return id - zs->zc_head < zc_done_to(zs) - zs->zc_head ||
	       (zs->nmarks && zs->done[id & zs->mask]);
}

/*
 * Reap side: feed the send side's choice of zero-copy or copy: good more
 * ids were reported, copied or not. Nobody reads the streak of a socket
 * that does not adapt (ZC_OPT_NO_ADAPT).
 */
static inline void zc_feed_streak(struct zc_sock *zs, uint32_t good,
				  bool copied)
{
	/* Relaxed: a hint, read by want_zerocopy(). */
	uint32_t streak = atomic_load_explicit(&zs->copied_streak,
					       memory_order_relaxed);

	if (!copied) {
		if (streak)
			atomic_store_explicit(&zs->copied_streak, 0,
					      memory_order_relaxed);
	} else if (zs->adapt_at != UINT32_MAX && streak < UINT32_MAX - good) {
		atomic_store_explicit(&zs->copied_streak, streak + good,
				      memory_order_relaxed);
	}
}

/*
 * Reap side: apply the kernel's completion of ids [lo, hi]. Returns the
 * number of live ids it completed. Inline: the common range, the next
 * ids in order (it extends the run [zc_head, done_to)) with the run's
 * COPIED state, no mark out, every id issued; zc__apply_range_slow() the
 * rest.
 */
static inline uint32_t zc_apply_range(struct zc_sock *zs, uint32_t lo,
				      uint32_t hi, bool copied)
{
	/* Acquire: pairs with the release of zc_issued in zc_sendmsg(). */
	uint32_t issued = atomic_load_explicit(&zs->zc_issued,
					       memory_order_acquire);
	uint32_t f = copied ? ZC_COPIED : 0, n = hi - lo;	/* n + 1 ids */

	if (lo != zc_done_to(zs) || n >= issued - lo || zs->nmarks ||
	    (f != zs->run_flags && lo != zs->zc_head))
		return zc__apply_range_slow(zs, lo, hi, copied);
	atomic_store_explicit(&zs->done_to, hi + 1, memory_order_relaxed);
	zs->run_flags = f;
	zc_feed_streak(zs, n + 1, copied);
	return n + 1;
}

/* ring.c: the PENDING entry at head waits for a mark (see zc_ring_reap()). */
uint32_t zc__ring_take_mark(struct zc_sock *zs);

/*
 * Reap side: hand out up to max complete entries, in send order. Inline:
 * it runs on every zc_completions().
 */
static inline __attribute__((always_inline)) int
zc_ring_reap(struct zc_sock *zs, struct zc_completion *out, unsigned int max)
{
	/*
	 * Locals: the stores to out[] could alias *zs, and the compiler
	 * would reload every field after each one.
	 */
	const uint32_t run_flags = zs->run_flags;
	uint32_t zc_head = zs->zc_head, done_to = zc_done_to(zs);
	const uint32_t h0 = atomic_load_explicit(&zs->head,
						 memory_order_relaxed);
	/* Acquire (seq_cst for zc_wait()): pairs with zc_publish()'s store. */
	uint32_t end = atomic_load_explicit(&zs->tail, memory_order_seq_cst);
	/* The entry of slot h: walked, the chunk changes every ZC_CHUNK. */
	const struct zc_entry *e = zs->rx_e;
	uint32_t h;
	unsigned int nzc = 0, n, ghosts = 0;

	if (end - h0 > max)
		end = h0 + max;
	for (h = h0; h != end;) {
		uint32_t flags = e->flags;

		if (flags & ZC_ENT_PENDING) {
			/*
			 * Every id the kernel used has its entry, in send
			 * order: this one's is zc_head, in the run of
			 * reported ids, or marked, or not reported yet.
			 */
			if (zc_head != done_to) {
				flags |= run_flags;
			} else {
				uint32_t f;

				if (!zs->nmarks)
					break;	/* the kernel has not said */
				zs->zc_head = zc_head;
				f = zc__ring_take_mark(zs);
				if (!f)
					break;
				if (f & ZC_DONE_COPIED)
					flags |= ZC_COPIED;
				done_to++;
			}
			zc_head++;
			flags &= ~ZC_ENT_PENDING;
			/* A copy that waited for a failed send's id: not. */
			nzc += !(flags & ZC_COPIED);
		}
		if (flags & ZC_ENT_GHOST) {
			ghosts++;		/* a failed send: no completion */
		} else {
			memcpy(out, e, sizeof(*out));	/* the same layout */
			out->flags = flags;
			out++;
		}
		/*
		 * The chunk's last slot reaped: on to the next, linked
		 * before that slot was published (ring.c).
		 */
		e++;
		if (__builtin_expect(!(++h & ZC_CHUNK_MASK), 0))
			e = zc__rx_chunk_next(zs, e);
	}
	zs->zc_head = zc_head;
	if (h == h0)
		return 0;
	zs->rx_e = (struct zc_entry *)e;
	n = h - h0 - ghosts;
	if (ghosts)	/* before head: zc_inflight() never counts one twice */
		atomic_store_explicit(&zs->ghosts_reaped,
				      atomic_load_explicit(&zs->ghosts_reaped,
							   memory_order_relaxed) +
				      ghosts, memory_order_relaxed);
	/* Release: pairs with the acquire of head in zc_sendmsg(). */
	atomic_store_explicit(&zs->head, h, memory_order_release);
	/* completions is derived: see struct zc_rx_stats. */
	ZC_STAT_ADD(&zs->rx, completions_zc, nzc);
	ZC_STAT_ADD(&zs->rx, completions_copied, n - nzc);
	return (int)n;
}

#pragma GCC visibility pop

#endif /* ZC_INTERNAL_H */
