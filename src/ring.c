// SPDX-License-Identifier: MIT
/*
 * The completion ring and the mirror of the kernel's zero-copy ids.
 *
 * The send side appends one zc_entry per successful send at tail; the reap
 * side consumes them at head, in send order (in chunks that come and go
 * with the sends in flight: see zc__tx_chunk_next()). An entry that went
 * zero-copy is PENDING and stays until the kernel reports the id its send
 * took; the others are complete when published. Ids are not stored: the kernel
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
 * What runs on every call is inline, in ring.h: zc_publish(),
 * zc_ring_blocked(), zc_ring_reap(), zc_ring_reap_one() and the common
 * case of zc_apply_range(). This file holds the general case.
 */
#include <stdlib.h>

#include "ring.h"

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

/*
 * The ring's memory follows the sends in flight. Its slots are numbered
 * by the free-running tail and head, and kept in a chain of chunks of
 * ZC_CHUNK entries, the first made by zc_open(). Before it sends into
 * the last slot of its chunk, the send side links the next chunk
 * (zc_tx_reserve(), zc__tx_chunk_next(), zc_tx_link_spare()); when it
 * publishes that slot it moves on to it (zc_publish()). When the reap
 * side has reaped the last slot of a chunk it moves on too, and lets the
 * chunk go (zc__rx_chunk_next(), zc__rx_chunk_left()). So each side keeps the
 * entry of its own index (tx_e of tail, rx_e of head), and neither looks
 * for a chunk on its hot path. A chain, not a table of max_inflight /
 * ZC_CHUNK pointers: an idle socket holds no table, and no table slot is
 * ever reused, so the wrap of the slot numbers needs no care (ZC_CHUNK
 * divides 2^32). max_inflight stays the limit on sends in flight
 * (zc_sendmsg() checks tail - head), no longer a size: at most
 * max_inflight / ZC_CHUNK + 2 chunks are held, and the spare.
 *
 * Ordering. The link to the next chunk is written before the last slot
 * of a chunk is published: the release of tail publishes both, and the
 * reap side follows the link only after it has reaped that slot (below
 * the tail it acquired). The send side never touches a chunk again once
 * it has published its last slot. So the reap side, when it moves on,
 * may let the chunk it leaves go. One chunk goes back and forth instead
 * (spare): a steady stream crosses a chunk boundary every ZC_CHUNK sends,
 * and malloc() on one thread with free() on another would cost a
 * contended arena each time.
 *
 * The chunks a socket lets go past its spare go to its reaping thread's
 * cache (below), up to ZC_CHUNK_CACHE of them, and a send that finds no
 * spare takes one from its thread's cache before it calls malloc(). Where
 * the pages really stay in flight, TCP completions come in bursts (one
 * record for hundreds of sends when the receiver catches up), so a socket
 * leaves tens of chunks at once and needs as many again for its next
 * burst: malloc() and free() of each (a bin's, past glibc's per-thread
 * cache of 7) cost 37 instructions a send at 4 KiB, k = 16, where the
 * library's own code costs 120 (callgrind, zcbench -m errqueue under
 * chrt -b 0 taskset -c 1). A cache per thread, not per socket: an idle
 * socket holds no more than before (its tail's chunk and the spare),
 * however many it once had in flight, and a thread holds at most
 * ZC_CHUNK_CACHE, shared by every socket it sends and reaps on (the
 * common event loop). A reaper and a sender on different threads fill
 * one cache and empty the other: malloc() and free() then, as before.
 */

/* Chunks a thread keeps for its sockets' next sends: 18 KiB. */
#define ZC_CHUNK_CACHE	128

/*
 * The cache, a list linked by next, and its length; initial exec, as
 * zc__tl_eq. Freed when the thread exits, by the destructor of a key set
 * by its first chunk (tl_keyed).
 */
static _Thread_local struct zc_chunk *tl_cache
	__attribute__((tls_model("initial-exec")));
static _Thread_local unsigned int tl_ncache
	__attribute__((tls_model("initial-exec")));
static _Thread_local bool tl_keyed
	__attribute__((tls_model("initial-exec")));

/* This thread's cache: every chunk freed. */
void zc__chunk_cache_flush(void)
{
	while (tl_cache) {
		struct zc_chunk *c = tl_cache;

		tl_cache = c->next;
		free(c);
	}
	tl_ncache = 0;
}

/* Thread exit (the key's destructor; its value is only a flag). */
static void cache_exit(void *unused)
{
	(void)unused;
	zc__chunk_cache_flush();
	tl_keyed = false;
}

static struct zc_thread_key cache_key = ZC_THREAD_KEY(cache_exit);

/*
 * The first chunk this thread caches: set the key, so that the cache is
 * freed when the thread exits. False: no key (PTHREAD_KEYS_MAX used up),
 * the chunk is freed instead (it would leak at exit).
 */
static __attribute__((noinline, cold)) bool cache_key_set(void)
{
	/* The value is only a flag: any pointer but NULL. */
	if (!zc__thread_key_set(&cache_key, &cache_key))
		return false;
	tl_keyed = true;
	return true;
}

/* dlclose() and exit: as eq_unload() (errqueue.c), for this thread's. */
static __attribute__((destructor)) void cache_unload(void)
{
	zc__thread_key_unload(&cache_key);
	zc__chunk_cache_flush();
}

/* A chunk for zs: from this thread's cache, or malloc(). NULL: none. */
static struct zc_chunk *chunk_get(struct zc_sock *zs)
{
	struct zc_chunk *c = tl_cache;

	if (c) {
		tl_cache = c->next;
		tl_ncache--;
	} else if (!(c = malloc(sizeof(*c)))) {
		return NULL;
	}
	/* Relaxed: a count, for tests. */
	atomic_fetch_add_explicit(&zs->nchunks, 1, memory_order_relaxed);
	c->next = NULL;
	return c;
}

/* zs lets chunk c go: into this thread's cache, or free(). */
static void chunk_put(struct zc_sock *zs, struct zc_chunk *c)
{
	atomic_fetch_sub_explicit(&zs->nchunks, 1, memory_order_relaxed);
	if (tl_ncache < ZC_CHUNK_CACHE && (tl_keyed || cache_key_set())) {
		c->next = tl_cache;
		tl_cache = c;
		tl_ncache++;
		return;
	}
	free(c);
}

/* zc_open(): the first chunk, both sides' own. Returns 0 or -ENOMEM. */
int zc__ring_init(struct zc_sock *zs)
{
	struct zc_chunk *c;

	atomic_init(&zs->nchunks, 0);
	c = chunk_get(zs);
	if (!c)
		return -ENOMEM;
	zs->tx_e = c->e;
	zs->rx_e = c->e;
	return 0;
}

/*
 * Send side: the tail is the last slot of its chunk: link the next chunk,
 * unless a send into that slot that failed linked it already. Returns 0
 * or -ENOMEM.
 */
int zc__tx_chunk_next(struct zc_sock *zs)
{
	struct zc_chunk *c;

	/* Linked already, or the spare the reap side left: linked now. */
	if (zc_tx_link_spare(zs))
		return 0;
	c = chunk_get(zs);
	if (!c)
		return -ENOMEM;
	/* Published by the release of tail with the last slot's entry. */
	zc_chunk_of_last(zs->tx_e)->next = c;
	return 0;
}

/*
 * Reap side: the last slot of chunk old is reaped, and the reap side has
 * moved on to the next chunk. The chunk left behind holds reaped slots
 * only, and the send side is done with it: it becomes the spare, and the
 * spare it replaces goes to this thread's cache.
 */
void zc__rx_chunk_left(struct zc_sock *zs, struct zc_chunk *old)
{
	/*
	 * Release: pairs with the acquire in zc__tx_chunk_next(). What comes
	 * back was put there by us (the send side only takes): ours.
	 */
	old = atomic_exchange_explicit(&zs->spare, old, memory_order_release);
	if (old)
		chunk_put(zs, old);
}

/*
 * Reap side: zc_ring_reap() reaped the last slot of a chunk, and end is
 * one past its last entry. Its link was published with that slot: return
 * the next chunk's first entry, and let the chunk go (zc__rx_chunk_left()).
 */
struct zc_entry *zc__rx_chunk_next(struct zc_sock *zs,
				   const struct zc_entry *end)
{
	struct zc_chunk *old = zc_chunk_of_last((struct zc_entry *)end - 1);
	struct zc_entry *next = old->next->e;

	zc__rx_chunk_left(zs, old);
	return next;
}

/* Reap side: the chunk of slot head. */
struct zc_chunk *zc__rx_chunk(const struct zc_sock *zs)
{
	uint32_t head = atomic_load_explicit(&zs->head, memory_order_relaxed);

	return (struct zc_chunk *)(zs->rx_e - (head & ZC_CHUNK_MASK));
}

/*
 * Reap side: the entry of a slot from head on, below the tail (or one the
 * send side published the chunk of by a release the caller acquired:
 * amb_resolve()). Out of line: rare.
 */
struct zc_entry *zc__rx_entry_at(struct zc_sock *zs, uint32_t slot)
{
	uint32_t base = atomic_load_explicit(&zs->head, memory_order_relaxed) &
			~ZC_CHUNK_MASK;	/* the first slot of head's chunk */
	struct zc_chunk *c = zc__rx_chunk(zs);

	for (; slot - base >= ZC_CHUNK; base += ZC_CHUNK)
		c = c->next;
	return &c->e[slot & ZC_CHUNK_MASK];
}

/*
 * Both sides at once (no send runs, and the caller is the reap side:
 * zc_ctx_del() of a context's uring member): put k complete entries d[]
 * in the ring before those from head on, as if they had been published
 * first (their sends were older: done entries, backend_uring.c). Returns
 * 0, or -EBUSY (no room for them in max_inflight) or -ENOMEM (a chunk)
 * with nothing changed.
 */
int zc__ring_put_front(struct zc_sock *zs, const struct zc_entry *d,
		       uint32_t k)
{
	const uint32_t h = atomic_load_explicit(&zs->head, memory_order_relaxed);
	const uint32_t t = atomic_load_explicit(&zs->tail, memory_order_relaxed);
	struct zc_entry *const tx0 = zs->tx_e;

	if (k > zs->mask + 1 - (t - h))
		return -EBUSY;
	/* The tail's entry k slots on, as k publishes would leave it. */
	for (uint32_t i = 0; i < k; i++) {
		struct zc_entry *e = zs->tx_e;

		if (zc_tx_reserve(zs, t + i)) {
			zs->tx_e = tx0;	/* a chunk linked ahead stays: harmless */
			return -ENOMEM;
		}
		zs->tx_e = (t + i + 1) & ZC_CHUNK_MASK ? e + 1 :
			   zc_chunk_of_last(e)->next->e;
	}
	for (uint32_t j = t - h; j-- > 0;)
		*zc__rx_entry_at(zs, h + k + j) = *zc__rx_entry_at(zs, h + j);
	for (uint32_t i = 0; i < k; i++)
		*zc__rx_entry_at(zs, h + i) = d[i];
	atomic_store_explicit(&zs->tail, t + k, memory_order_seq_cst);
	return 0;
}

/*
 * zc_close(): every chunk, from the reap side's on, and the spare, to
 * this thread's cache (the next zc_open() takes its first chunk there).
 */
void zc__ring_free(struct zc_sock *zs)
{
	/* None when zc__ring_init() found no memory (zc_open() failing). */
	struct zc_chunk *c = zs->rx_e ? zc__rx_chunk(zs) : NULL,
			*spare = atomic_load_explicit(&zs->spare,
						      memory_order_relaxed);

	while (c) {
		struct zc_chunk *next = c->next;

		chunk_put(zs, c);
		c = next;
	}
	if (spare)
		chunk_put(zs, spare);
}

/* Chunks zs holds, the spare included (tests). */
unsigned int zc__ring_chunks(const struct zc_sock *zs)
{
	return atomic_load_explicit(&zs->nchunks, memory_order_relaxed);
}
