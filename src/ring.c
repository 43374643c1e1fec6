// SPDX-License-Identifier: MIT
/*
 * The completion ring and the mirror of the kernel's zero-copy ids.
 *
 * The send side appends one zc_entry per successful send at tail; the reap
 * side consumes them at head, in send order. An entry that went zero-copy
 * carries the kernel id its send took and stays until the kernel reports
 * that id; the others are complete when pushed. Kernel ranges are applied
 * on the reap side as marks in done[], indexed by id & mask: at most
 * max_inflight ids can be unreaped at once, because a send is refused
 * while the ring is full, so the marks of live ids never collide.
 */
#include "internal.h"

/* Mark offsets [from, to) of the window starting at zc_head. */
static uint32_t mark(struct zc_sock *zs, uint32_t from, uint32_t to,
		     uint8_t m)
{
	uint32_t dup = 0;

	for (uint32_t off = from; off < to; off++) {
		uint8_t *d = &zs->done[(zs->zc_head + off) & zs->mask];

		if (*d)
			dup++;
		*d = m;
	}
	return dup;
}

/*
 * Apply the kernel's completion of ids [lo, hi] (serial numbers: the range
 * may wrap past 2^32). Only ids in [zc_head, zc_issued) can be live; the
 * rest of a range is counted as bad and ignored, so a bogus or foreign
 * range costs at most the window, never 2^32 steps. Returns the number of
 * live ids it completed.
 */
uint32_t zc_apply_range(struct zc_sock *zs, uint32_t lo, uint32_t hi,
		       bool copied)
{
	/* Acquire: pairs with the release of zc_issued in zc_sendmsg(). */
	uint32_t issued = atomic_load_explicit(&zs->zc_issued,
					       memory_order_acquire);
	uint32_t span = issued - zs->zc_head;
	uint32_t a = lo - zs->zc_head;
	uint64_t cnt = (uint64_t)(uint32_t)(hi - lo) + 1;
	uint64_t end = (uint64_t)a + cnt;
	uint64_t good = 0, dup = 0;
	uint8_t m = ZC_DONE | (copied ? ZC_DONE_COPIED : 0);
	uint32_t streak;

	if (a < span) {
		uint32_t to = end < span ? (uint32_t)end : span;

		dup += mark(zs, a, to, m);
		good += to - a;
	}
	if (end > (1ull << 32)) {
		/* The range wraps past the window's base: offsets 0... */
		uint64_t w = end - (1ull << 32);
		uint32_t to = w < span ? (uint32_t)w : span;

		dup += mark(zs, 0, to, m);
		good += to;
	}
	if (cnt - good + dup)
		ZC_STAT_ADD(&zs->rx, bad_ranges, 1);
	if (!good)
		return 0;

	/* Feed the send side's choice of zero-copy or copy (relaxed: a hint). */
	streak = atomic_load_explicit(&zs->copied_streak, memory_order_relaxed);
	if (!copied)
		streak = 0;
	else if (streak < UINT32_MAX - good)
		streak += (uint32_t)good;
	atomic_store_explicit(&zs->copied_streak, streak, memory_order_relaxed);
	return (uint32_t)good;
}

/* Reap side: hand out up to max complete entries, in send order. */
int zc_ring_reap(struct zc_sock *zs, struct zc_completion *out,
		 unsigned int max)
{
	/*
	 * Locals: the stores to out[] could alias *zs, and the compiler
	 * would reload every field after each one.
	 */
	const struct zc_entry *ring = zs->ring;
	uint8_t *done = zs->done;
	const uint32_t mask = zs->mask;
	uint32_t zc_head = zs->zc_head;
	uint32_t h = atomic_load_explicit(&zs->head, memory_order_relaxed);
	/* Acquire (seq_cst for zc_wait()): pairs with the store in zc_push(). */
	uint32_t t = atomic_load_explicit(&zs->tail, memory_order_seq_cst);
	unsigned int n = 0, nzc = 0, ncopied = 0;

	while (n < max && h != t) {
		const struct zc_entry *e = &ring[h & mask];
		uint32_t flags = e->flags;

		if (flags & ZC_ENT_PENDING) {
			const uint32_t id = e->id;
			uint8_t *d;

			/*
			 * Ids below this entry's with no entry of their own
			 * were taken by a send that failed with ENOBUFS after
			 * all (amb_resolve() saw their records): step over.
			 */
			while (zc_head != id && done[zc_head & mask]) {
				done[zc_head & mask] = 0;
				zc_head++;
			}
			d = &done[id & mask];
			if (zc_head != id || !*d)
				break;
			if (*d & ZC_DONE_COPIED)
				flags |= ZC_COPIED;
			else
				nzc++;
			*d = 0;
			zc_head++;
		}
		if (flags & ZC_COPIED)
			ncopied++;
		out[n].cookie = e->cookie;
		out[n].bytes = e->bytes;
		out[n].flags = flags & ~ZC_ENT_PENDING;
		n++;
		h++;
	}
	zs->zc_head = zc_head;
	if (!n)
		return 0;
	/* Release: pairs with the acquire of head in zc_sendmsg(). */
	atomic_store_explicit(&zs->head, h, memory_order_release);
	ZC_STAT_ADD(&zs->rx, completions, n);
	if (nzc)
		ZC_STAT_ADD(&zs->rx, completions_zc, nzc);
	if (ncopied)
		ZC_STAT_ADD(&zs->rx, completions_copied, ncopied);
	return (int)n;
}
