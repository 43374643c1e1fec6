/* SPDX-License-Identifier: MIT */
/*
 * The completion ring (ring.c), one floor above sys.c: the send records
 * in their chunks, the mirror of the kernel's zero-copy ids, publishing a
 * send and reaping completions. What runs on every call is here, inline:
 * zc_publish() (zc_publish_mid() within a chunk), zc_ring_blocked(),
 * zc_apply_range()'s common case, zc_ring_reap(), and zc_ring_reap_one()
 * (zc_ring_reap_id() for a context's reaper) for the common record;
 * ring.c holds the rest.
 */
#ifndef ZC_RING_H
#define ZC_RING_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "sys.h"

#pragma GCC visibility push(hidden)

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
/*
 * Complete, and zero-copy: a context's done entry put back in the ring
 * (zc__ring_put_front()). The reap counts it as zero-copy, not as the
 * copy a complete entry otherwise is, and hands it out without the bit.
 */
#define ZC_ENT_ZC	(1u << 29)

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

/* ring.c: the completion ring, kernel ids -> done marks */
uint32_t zc__apply_range_slow(struct zc_sock *zs, uint32_t lo, uint32_t hi,
			     bool copied);
int zc__ring_init(struct zc_sock *zs);
int zc__tx_chunk_next(struct zc_sock *zs);
struct zc_entry *zc__rx_chunk_next(struct zc_sock *zs,
				   const struct zc_entry *end);
void zc__rx_chunk_left(struct zc_sock *zs, struct zc_chunk *old);
struct zc_chunk *zc__rx_chunk(const struct zc_sock *zs);
struct zc_entry *zc__rx_entry_at(struct zc_sock *zs, uint32_t slot);
void zc__ring_free(struct zc_sock *zs);
int zc__ring_put_front(struct zc_sock *zs, const struct zc_entry *d,
		       uint32_t k);
unsigned int zc__ring_chunks(const struct zc_sock *zs);
void zc__chunk_cache_flush(void);


/*
 * zc_publish() without the wake-up: the caller knows no zc_wait() can
 * sleep on zs (a context's member: zc_wait() refuses it) and does what
 * the context needs itself (ctx.c). Seq_cst all the same: the context's
 * reaper pairs with it (finish_member()).
 */
static inline void zc_publish_quiet(struct zc_sock *zs, uint32_t t,
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
	 * zc_ring_reap(). Seq_cst store of tail, then (zc_publish()) seq_cst
	 * load of waiting; zc_wait() stores waiting, then loads tail, both
	 * seq_cst: one of the two sides sees the other's store.
	 */
	atomic_store_explicit(&zs->tail, t + 1, memory_order_seq_cst);
}

/*
 * Send side: publish the record written in slot t (the tail), entry e
 * (zc_tx_entry(): passed, not reloaded, as stores to it may alias zs),
 * and wake a reaper that waits in zc_wait().
 */
static inline void zc_publish(struct zc_sock *zs, uint32_t t,
			      struct zc_entry *e)
{
	zc_publish_quiet(zs, t, e);
	if (atomic_load_explicit(&zs->waiting, memory_order_seq_cst))
		zc__wake_reaper(zs);
}

/*
 * zc_publish() where the caller knows slot t is not the last of its
 * chunk (zc_tx_reserve() had nothing to do): the next entry is e + 1.
 * Returns whether a reaper waits: then the caller calls
 * zc__wake_reaper(), in a tail call of its own.
 */
static inline bool zc_publish_mid(struct zc_sock *zs, uint32_t t,
				  struct zc_entry *e)
{
	zs->tx_e = e + 1;
	/* As in zc_publish(): release, and the seq_cst pair with zc_wait(). */
	atomic_store_explicit(&zs->tail, t + 1, memory_order_seq_cst);
	return atomic_load_explicit(&zs->waiting, memory_order_seq_cst);
}

/*
 * zc_publish() whose wake is the caller's, as zc_publish_mid()'s, for any
 * slot t: returns whether a reaper waits.
 */
static inline bool zc_publish_nowake(struct zc_sock *zs, uint32_t t,
				     struct zc_entry *e)
{
	zc_publish_quiet(zs, t, e);
	/* The seq_cst pair with zc_wait(), as in zc_publish(). */
	return atomic_load_explicit(&zs->waiting, memory_order_seq_cst);
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
 * Send side: the zero-copy send of the tail's entry took its id and sent
 * ret > 0 bytes: the entry becomes PENDING (published by the caller).
 */
static inline __attribute__((always_inline)) struct zc_entry *
zc_tx_took_id(struct zc_sock *zs, ssize_t ret)
{
	struct zc_entry *e = zc_tx_entry(zs);

	e->bytes = (uint32_t)ret;
	e->flags = ZC_ENT_PENDING;
	zs->zc_next++;
	ZC_STAT_INC(&zs->tx, sends_zc);
	return e;
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

/*
 * zc_tx_reserve()'s common case, inline, for a send that has its
 * arguments in registers (no call before its syscall): the tail is the
 * last slot of its chunk, whose next chunk is not linked yet, and the
 * reap side left a spare (a steady stream: the chunk it reaped last).
 * Link that. Returns false, with nothing done, when it takes
 * zc__tx_chunk_next() (no spare: the thread's cache, or malloc()).
 */
static inline __attribute__((always_inline)) bool
zc_tx_link_spare(struct zc_sock *zs)
{
	struct zc_chunk *last = zc_chunk_of_last(zs->tx_e), *c;

	if (last->next)		/* a send into the slot that failed linked it */
		return true;
	/*
	 * Acquire: pairs with the release in zc__rx_chunk_left(): the reap
	 * side's reads of a spare chunk happen before we write it again.
	 */
	c = atomic_exchange_explicit(&zs->spare, NULL, memory_order_acquire);
	if (!c)
		return false;
	c->next = NULL;
	/* Published by the release of tail with the last slot's entry. */
	last->next = c;
	return true;
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

/*
 * zc_apply_range() where the caller knows what zc_ring_blocked() said,
 * and nothing was applied since: the run is empty (done_to is zc_head).
 * Then the common range is the one that starts at zc_head, whatever its
 * COPIED state (marks of other ids may be out: still tested).
 */
static inline uint32_t zc_apply_range_blocked(struct zc_sock *zs, uint32_t lo,
					      uint32_t hi, bool copied)
{
	/* Acquire: pairs with the release of zc_issued in zc_sendmsg(). */
	uint32_t issued = atomic_load_explicit(&zs->zc_issued,
					       memory_order_acquire);
	uint32_t n = hi - lo;	/* n + 1 ids */

	/* lo is zc_head and no mark is out: one test */
	if (((lo - zs->zc_head) | zs->nmarks) || n >= issued - lo)
		return zc__apply_range_slow(zs, lo, hi, copied);
	atomic_store_explicit(&zs->done_to, hi + 1, memory_order_relaxed);
	zs->run_flags = copied ? ZC_COPIED : 0;
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

		/*
		 * The common case first: plain PENDING entries whose ids are
		 * in the run (reported in order, below done_to), as far as
		 * the run, this chunk and end allow. Each is handed out with
		 * run_flags; they are counted once, after. Anything else
		 * (a ghost, a copy that waited for an id, a mark, an entry
		 * not reported) takes the loop's general way below, and so
		 * does a run of one (uring's reap at k = 1 over UDP), which
		 * the loop's setup would cost more than it saves.
		 */
		if (flags == ZC_ENT_PENDING && done_to - zc_head > 1) {
			const uint32_t h1 = h;
			uint32_t lim = end - h, k;

			if (lim > ZC_CHUNK - (h & ZC_CHUNK_MASK))
				lim = ZC_CHUNK - (h & ZC_CHUNK_MASK);
			if (lim > done_to - zc_head)
				lim = done_to - zc_head;
			do {
				memcpy(out, e, sizeof(*out));	/* same layout */
				out->flags = run_flags;
				out++;
				e++;
				h++;
			} while (--lim && e->flags == ZC_ENT_PENDING);
			k = h - h1;
			zc_head += k;
			if (!(run_flags & ZC_COPIED))
				nzc += k;
			/* As below: the chunk's last slot reaped. */
			if (__builtin_expect(!(h & ZC_CHUNK_MASK), 0))
				e = zc__rx_chunk_next(zs, e);
			continue;
		}
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
		} else if (__builtin_expect(flags & ZC_ENT_ZC, 0)) {
			flags &= ~ZC_ENT_ZC;
			nzc++;
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

/*
 * The end of zc_ring_reap_one() and zc_ring_reap_id(): hand out entry e,
 * the one at head (h is head + 1), which id completes; next is the entry
 * of slot h (the next chunk's first when e was its chunk's last: linked
 * before that slot was published), the run empty, no mark out. Returns
 * whether e was the last of its chunk: then the caller lets that chunk
 * go, zc__rx_chunk_left(zs, zc_chunk_of_last(e)), last of all, so that
 * the call can be a tail call (no frame for the common hand-out).
 */
static inline __attribute__((always_inline)) bool
zc_ring_hand_out(struct zc_sock *zs, struct zc_completion *out,
		 struct zc_entry *e, struct zc_entry *next, uint32_t h,
		 uint32_t id, bool copied)
{
	memcpy(out, e, sizeof(*out));	/* the same layout */
	out->flags = copied ? ZC_COPIED : 0;
	zs->zc_head = id + 1;
	/*
	 * run_flags is not written: the run is empty, and nothing reads it
	 * then (zc_apply_range() tests it only past zc_head, zc_ring_reap()
	 * only while zc_head != done_to).
	 */
	atomic_store_explicit(&zs->done_to, id + 1, memory_order_relaxed);
	zc_feed_streak(zs, 1, copied);
	zs->rx_e = next;
	/*
	 * Release: pairs with the acquire of head in zc_sendmsg(). Before
	 * the chunk is let go, or after: the send side reuses a chunk it
	 * took from spare (zc__tx_chunk_next()), never a slot below head.
	 */
	atomic_store_explicit(&zs->head, h, memory_order_release);
	/* completions is derived: see struct zc_rx_stats. */
	if (copied)
		ZC_STAT_INC(&zs->rx, completions_copied);
	else
		ZC_STAT_INC(&zs->rx, completions_zc);
	return !(h & ZC_CHUNK_MASK);
}

/*
 * Reap side, for a hand-out of entry e, the one at head (h is head + 1),
 * the tail t acquired: the entry of slot h, if it is the tail or another
 * PENDING entry (which waits for an id past e's, not reported yet if
 * e's was the last: where zc_ring_reap() would stop too); else NULL. When
 * it is the next chunk's, its link was published with slot h - 1 (ring.c).
 */
static inline __attribute__((always_inline)) struct zc_entry *
zc_ring_next_waits(struct zc_entry *e, uint32_t h, uint32_t t)
{
	struct zc_entry *next = h & ZC_CHUNK_MASK ? e + 1 :
				zc_chunk_of_last(e)->next->e;

	return t == h || (next->flags & ZC_ENT_PENDING) ? next : NULL;
}

/*
 * Reap side, in place of zc_apply_range_blocked() and zc_ring_reap():
 * zc_ring_blocked() said true just before and nothing was applied since,
 * and the kernel reported ids [lo, hi]. The common record (every one at
 * k = 1 over UDP) completes the PENDING entry at head and no more: its
 * range is the one id zc_head, no mark is out, the entry is a plain
 * PENDING one, and after it comes the tail or another PENDING entry
 * (which then waits for zc_head + 1, not reported: where zc_ring_reap()
 * would stop too; max >= 1 is all it may ask). Then hand that one out,
 * with the state both would have left (done_to = zc_head, one on; the
 * run empty), without the run and the done marks between them. Returns
 * true, or false with nothing changed: the caller takes the general way.
 */
static inline __attribute__((always_inline)) bool
zc_ring_reap_one(struct zc_sock *zs, struct zc_completion *out,
		 uint32_t lo, uint32_t hi, bool copied)
{
	const uint32_t h = atomic_load_explicit(&zs->head,
						memory_order_relaxed) + 1;
	struct zc_entry *e = zs->rx_e, *next;

	/*
	 * One id, zc_head, issued; no mark out; the entry at head waits for
	 * it alone: no ghost, no copy. Acquire zc_issued: pairs with its
	 * release in zc_sendmsg() (issued - lo >= 1: lo was issued).
	 */
	if (((lo ^ hi) | (lo - zs->zc_head) | zs->nmarks) ||
	    atomic_load_explicit(&zs->zc_issued, memory_order_acquire) == lo ||
	    e->flags != ZC_ENT_PENDING)
		return false;
	/*
	 * Acquire (seq_cst for zc_wait()): pairs with zc_publish()'s store,
	 * as in zc_ring_reap(); the tail is above head (zc_ring_blocked() saw
	 * the entry).
	 */
	next = zc_ring_next_waits(e, h, atomic_load_explicit(&zs->tail,
							  memory_order_seq_cst));
	if (!next)
		return false;
	if (zc_ring_hand_out(zs, out, e, next, h, lo, copied))
		zc__rx_chunk_left(zs, zc_chunk_of_last(e));
	return true;
}

/*
 * Reap side, a context's reaper (backend_uring.c), for the notification
 * of the one id id: zc_ring_blocked() and zc_ring_reap_one() in one, each
 * index and the entry looked at once. The oldest unreaped entry is a
 * plain PENDING one (published: below the tail) that waits for id (the
 * run empty: zc_head is done_to; no mark out; id issued), and after it
 * comes the tail or another PENDING entry: hand it out as
 * zc_ring_reap_one() does, and return true. Otherwise false, nothing
 * changed.
 */
static inline __attribute__((always_inline)) bool
zc_ring_reap_id(struct zc_sock *zs, struct zc_completion *out, uint32_t id,
		bool copied)
{
	const uint32_t h = atomic_load_explicit(&zs->head,
						memory_order_relaxed) + 1;
	/* Acquire (seq_cst as zc_ring_reap()'s): pairs with zc_publish(). */
	const uint32_t t = atomic_load_explicit(&zs->tail,
						memory_order_seq_cst);
	struct zc_entry *e = zs->rx_e, *next;

	/* Acquire zc_issued: pairs with its release in zc_sendmsg(). */
	if (t == h - 1 || ((id - zs->zc_head) | (id - zc_done_to(zs)) |
			   zs->nmarks) ||
	    e->flags != ZC_ENT_PENDING ||
	    atomic_load_explicit(&zs->zc_issued, memory_order_acquire) == id)
		return false;
	next = zc_ring_next_waits(e, h, t);
	if (!next)
		return false;
	if (zc_ring_hand_out(zs, out, e, next, h, id, copied))
		zc__rx_chunk_left(zs, zc_chunk_of_last(e));
	return true;
}

#pragma GCC visibility pop

#endif /* ZC_RING_H */
