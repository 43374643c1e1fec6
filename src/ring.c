// SPDX-License-Identifier: MIT
/*
 * The completion ring and the mirror of the kernel's zero-copy ids.
 *
 * The send side appends one zc_entry per successful send at tail; the reap
 * side consumes them at head, in send order. An entry that went zero-copy
 * is PENDING and stays until the kernel reports the id its send took; the
 * others are complete when published. Ids are not stored: the kernel
 * numbers zero-copy calls one by one, so the PENDING entries from head on
 * wait for zc_head, zc_head + 1, ... (the reap side's next id). Kernel
 * ranges are applied on the reap side: the ids reported in order extend
 * the run [zc_head, done_to); the others are marks in done[], indexed by
 * id & mask, allocated by the first such id and freed when the last mark
 * is taken (most sockets never need one). Every id the
 * kernel may have used has its entry, in order (a failed UDP send that
 * may have used one keeps a ghost entry until it is settled), and a send
 * is refused while the ring is full, so at most max_inflight ids are
 * unreaped at once and the marks of live ids never collide.
 *
 * What runs on every call is inline, in internal.h: zc_publish(),
 * zc_ring_blocked(), zc_ring_reap() and the common case of
 * zc_apply_range(). This file holds the general case.
 */
#include <stdlib.h>

#include "internal.h"

/*
 * The marks, made by the first id that needs one. Without memory for
 * them the id's completion cannot be kept, and it must not be lost
 * without a word: the socket is broken, zc_completions() says -ENOMEM
 * from now on (its caller closes it). Returns false then.
 */
static __attribute__((noinline, cold)) bool marks_make(struct zc_sock *zs)
{
	zs->done = calloc((size_t)zs->mask + 1, sizeof(*zs->done));
	if (zs->done)
		return true;
	zs->broken = true;
	zs->pending_err = -ENOMEM;
	return false;
}

/*
 * Mark offsets [from, to) of the window starting at zc_head. Offsets
 * below run are in the run of reported ids already: a second report.
 * Returns how many ids were reported twice, or UINT32_MAX if there was
 * no memory for the marks (marks_make()).
 */
static uint32_t mark(struct zc_sock *zs, uint32_t from, uint32_t to,
		     uint32_t run, uint8_t m)
{
	uint32_t dup = 0;

	if (to > run && !zs->done && !marks_make(zs))
		return UINT32_MAX;
	for (uint32_t off = from; off < to; off++) {
		uint8_t *d;

		if (off < run) {
			dup++;
			continue;
		}
		d = &zs->done[(zs->zc_head + off) & zs->mask];
		if (*d) {
			dup++;
			*d = m;
		} else {
			zs->nmarks++;
			*d = m;
		}
	}
	return dup;
}

/*
 * zc_apply_range() for any range (its inline part takes the common one):
 * the kernel's completion of ids [lo, hi], serial numbers, so the range
 * may wrap past 2^32. Only ids in [zc_head, zc_issued) can be live; the
 * rest of a range is counted as bad and ignored, so a bogus or foreign
 * range costs at most the window, never 2^32 steps. Ids out of the run's
 * order (or of its COPIED state) are marked in done[]; the reap side
 * takes a mark when the run reaches it. Returns the number of live ids it
 * completed.
 */
uint32_t zc__apply_range_slow(struct zc_sock *zs, uint32_t lo, uint32_t hi,
			     bool copied)
{
	/* Acquire: pairs with the release of zc_issued in zc_sendmsg(). */
	uint32_t issued = atomic_load_explicit(&zs->zc_issued,
					       memory_order_acquire);
	uint32_t span = issued - zs->zc_head;
	uint32_t run = zc_done_to(zs) - zs->zc_head;
	uint32_t a = lo - zs->zc_head;
	uint64_t cnt = (uint64_t)(uint32_t)(hi - lo) + 1;
	uint64_t end = (uint64_t)a + cnt;
	uint64_t good = 0, dup = 0;
	uint32_t d;
	uint8_t m = ZC_DONE | (copied ? ZC_DONE_COPIED : 0);

	if (zs->broken)
		return 0;
	if (a < span) {
		uint32_t to = end < span ? (uint32_t)end : span;

		if ((d = mark(zs, a, to, run, m)) == UINT32_MAX)
			return 0;
		dup += d;
		good += to - a;
	}
	if (end > (1ull << 32)) {
		/* The range wraps past the window's base: offsets 0... */
		uint64_t w = end - (1ull << 32);
		uint32_t to = w < span ? (uint32_t)w : span;

		if ((d = mark(zs, 0, to, run, m)) == UINT32_MAX)
			return 0;
		dup += d;
		good += to;
	}
	if (cnt - good + dup)
		ZC_STAT_ADD(&zs->rx, bad_ranges, 1);
	if (!good)
		return 0;

	zc_feed_streak(zs, (uint32_t)good, copied);
	return (uint32_t)good;
}

/*
 * zc_ring_reap(): the PENDING entry at head waits for id zc_head, past
 * the run of reported ids. Was it reported out of order (a mark)? Then
 * take it, extend the run over it, and return it (ZC_DONE, with
 * ZC_DONE_COPIED if copied); else 0: the kernel has not said.
 */
uint32_t zc__ring_take_mark(struct zc_sock *zs)
{
	uint8_t *d;
	uint32_t f;

	if (!zs->nmarks)	/* no done[] then */
		return 0;
	d = &zs->done[zs->zc_head & zs->mask];
	f = *d;
	if (!f)
		return 0;
	*d = 0;
	/* The last mark taken: the memory goes back (marks_make()). */
	if (!--zs->nmarks) {
		free(zs->done);
		zs->done = NULL;
	}
	atomic_store_explicit(&zs->done_to, zs->zc_head + 1,
			      memory_order_relaxed);
	return f;
}
