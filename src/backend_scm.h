/* SPDX-License-Identifier: MIT */
/*
 * The SCM_ZC_NOTIFICATION backend's state, and the parts of it that run on
 * every send and every reap: the core (zcnotify.c) calls them inline, not
 * through struct zc_ops, because each call and its register saves were a
 * tenth of the library's instructions per send at k=1. A backend: it
 * stands on errqueue.h (zc__eq_drain() when no send harvests) and the
 * floors below it.
 */
#ifndef ZC_BACKEND_SCM_H
#define ZC_BACKEND_SCM_H

#include "backend.h"
#include "errqueue.h"

#pragma GCC visibility push(hidden)

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

/* backend_scm.c: the parser (fuzzed), the probe and the cmsg type */
int zc__scm_parse(const unsigned char *buf, size_t len, int type,
		 unsigned int asked, struct zc_range *out);
int zc__scm_supported(int type);
int zc__scm_type(int *type);
void zc__scm_probe_reset(void);

/* struct zc_info_elem of the v5 series: 12 bytes, alignment 4. */
struct zc_info_elem {
	uint32_t lo;
	uint32_t hi;
	uint8_t zerocopy;
};
_Static_assert(sizeof(struct zc_info_elem) == 12, "v5 element is 12 bytes");

#define SCM_ELEM		sizeof(struct zc_info_elem)
#define SCM_INFO_MAX		16	/* SOCK_ZC_INFO_MAX */
/*
 * The range ring; a power of two. One harvest's worth: the reap side
 * applies them on its next call, and a send asks for no more than there
 * is room for (zc_scm_want()), so at most SCM_RANGES elements a cmsg
 * where v5 allows SCM_INFO_MAX. 64 made struct scm_priv 896 bytes of each
 * socket's; 16 made an idle scm socket ~1,100 bytes, over issue #16's
 * 1 KiB; 8 (224 bytes) keeps it under. The kernel coalesces in-order
 * completions, so a harvest is one or two ranges but after reordering.
 */
#define SCM_RANGES		8
#define SCM_SENTINEL		0xff	/* never a valid zerocopy byte */
#define SCM_FILL		0x01	/* a new control buffer's bytes (grow_ctrl()) */

/*
 * No cache-line alignment (that cost an aligned_alloc() and its slack,
 * about 100 bytes of each socket's): the range ring lies between the two
 * sides' fields and keeps them more than a cache line apart.
 */
struct scm_priv {
	/* Send side. */
	/*
	 * Ranges pushed, ever: the range ring's tail in its low 32 bits,
	 * and zc_get_stats()'s harvest_cmsg (zc_scm_harvested()), so that a
	 * harvest needs no counter of its own.
	 */
	_Atomic uint64_t rtail;
	uint32_t harvest_every;
	uint32_t tick;			/* counts down to a harvest */
	uint32_t ids_harvested;		/* live ids the send side collected */
	_Atomic bool broken;		/* kernel refused the cmsg: stop */
	/*
	 * A zero-copy datagram with our cmsg failed with EINVAL, nothing
	 * harvested: ours refused, or the datagram dropped after it used
	 * its id (zc__scm_einval()). In the hole after broken.
	 */
	bool einval;
	/*
	 * A context's member: rtail's low bits at its last wake-up of the
	 * reaper (zc__ctx_wake(); zc__took_id_quiet_other()). A send pushes
	 * at most SCM_INFO_MAX ranges before its wake test, so 16 bits tell
	 * moved from not. In the hole after broken.
	 */
	uint16_t rtail_woken;
	size_t ctrl_cap;
	/* Our cmsg, then the caller's; made by the first harvest. */
	unsigned char *ctrl;
	/*
	 * zc_send()'s message, kept: msg_iov is &iov, msg_control is ctrl
	 * (grow_ctrl()); a send fills in iov and msg_controllen only.
	 */
	struct msghdr m;
	struct iovec iov;
	int flags;			/* the send's, across the syscall */
	int type;			/* the cmsg type (beside flags: no hole) */
	/*
	 * The most caller control bytes we put ours in front of: the kernel
	 * refuses a control buffer past net.core.optmem_max (ENOBUFS) before
	 * it reads a byte of it, so a larger one goes through as it is.
	 */
	size_t ctrl_max;
	/*
	 * The header the kernel writes over ours when it hands back one
	 * element (cmsg_len CMSG_LEN(SCM_ELEM), SOL_SOCKET, type): the
	 * common answer, recognised with one compare (zc_scm_take_one()).
	 */
	unsigned char one[sizeof(struct cmsghdr)];

	/* Written by the send side, read by the reap side. */
	struct zc_range ranges[SCM_RANGES];

	/* Reap side. */
	_Atomic uint32_t rhead;
	uint32_t last_tail;		/* send ring tail at the last collect */
};
_Static_assert(offsetof(struct scm_priv, rhead) -
	       offsetof(struct scm_priv, ctrl_max) >= ZC_CACHELINE,
	       "the two sides' fields share no cache line");

/* ---- the send side ---- */

/*
 * Send side: ids the kernel may still report (issued, less those read
 * from it by a send's harvest or a read of the error queue); as an int,
 * <= 0 means none. Relaxed: an estimate.
 */
static inline uint32_t zc_scm_ids_out(const struct zc_sock *zs,
				      const struct scm_priv *p)
{
	return zs->zc_next - p->ids_harvested -
	       atomic_load_explicit(&zs->ids_by_recvmsg, memory_order_relaxed);
}

/*
 * How many elements to ask for on this send: 0 for none. amb_clear: the
 * caller knows amb_local is false (send_one() tested it). p is
 * zs->backend_priv, passed: a caller that holds it needs no load.
 */
static inline __attribute__((always_inline)) unsigned int
zc_scm_want_p(struct zc_sock *zs, struct scm_priv *p, bool amb_clear)
{
	uint32_t out, room;

	if (atomic_load_explicit(&p->broken, memory_order_relaxed) ||
	    (!amb_clear && zs->amb_local))	/* amb_resolve() must see
						 * every record */
		return 0;
	/*
	 * Ids the kernel may still report. Relaxed: an estimate; a wrong one
	 * costs a cmsg that finds nothing, or a later harvest.
	 */
	out = zc_scm_ids_out(zs, p);
	if ((int32_t)out <= 0)
		return 0;
	/* Every harvest_every-th time: a count down, one test. */
	if (--p->tick)
		return 0;
	p->tick = p->harvest_every;
	/* Acquire: pairs with the release of rhead in zc_scm_collect(). */
	room = SCM_RANGES - ((uint32_t)atomic_load_explicit(&p->rtail,
							    memory_order_relaxed) -
			     atomic_load_explicit(&p->rhead,
						  memory_order_acquire));
	/* No test when the ring is no larger than a harvest (room <= it). */
	return SCM_RANGES <= SCM_INFO_MAX || room < SCM_INFO_MAX ?
	       room : SCM_INFO_MAX;
}

static inline __attribute__((always_inline)) unsigned int
zc_scm_want_as(struct zc_sock *zs, bool amb_clear)
{
	return zc_scm_want_p(zs, zs->backend_priv, amb_clear);
}

static inline unsigned int zc_scm_want(struct zc_sock *zs)
{
	return zc_scm_want_as(zs, false);
}

ssize_t zc__scm_send(struct zc_sock *zs, const struct msghdr *msg,
		    const void *buf, size_t len, int flags, unsigned int n);
ssize_t zc__scm_sent(struct zc_sock *zs, int flags, ssize_t ret);
int zc__scm_harvest_enobufs(struct zc_sock *zs);
bool zc__scm_einval(struct zc_sock *zs);
void zc__scm_refused(struct zc_sock *zs);

/*
 * zc__scm_send()'s common case, inline in the core's send of zc_send()
 * (send_scm()): the kept message (struct scm_priv), whose control buffer
 * exists (p->ctrl), asks for n elements. Level and type of our header
 * stay from send to send: grow_ctrl() wrote them, the kernel writes the
 * same ones over them, and zc__scm_sent() writes them again after any
 * other answer. So a send stores cmsg_len and the sentinel only. Returns
 * msg_controllen.
 */
static inline __attribute__((always_inline)) size_t
zc_scm_prepare_kept(struct scm_priv *p, unsigned int n)
{
	/* size_t in glibc, socklen_t (and padding) in musl */
	__typeof__(((struct cmsghdr *)0)->cmsg_len) len;
	/* Once: a store through it could change p->ctrl, for all gcc knows */
	unsigned char *c = p->ctrl;

	/* The common n, the ring empty: constants, on the straight path. */
	len = __builtin_expect(n == SCM_RANGES, 1) ?
	      CMSG_LEN(SCM_RANGES * SCM_ELEM) : CMSG_LEN(n * SCM_ELEM);
	memcpy(c + offsetof(struct cmsghdr, cmsg_len), &len, sizeof(len));
	c[CMSG_LEN(0) + offsetof(struct zc_info_elem, zerocopy)] =
		SCM_SENTINEL;
	/* CMSG_SPACE(n * SCM_ELEM), from len: the header is aligned. */
	_Static_assert(CMSG_ALIGN(sizeof(struct cmsghdr)) ==
		       sizeof(struct cmsghdr), "CMSG_LEN(0) is aligned");
	return CMSG_ALIGN((size_t)len);
}

/*
 * The kernel's answer to a send of the kept message, in its two common
 * cases: nothing written (the sentinel survives), or one element (the
 * header is p->one), which goes straight into the range ring. Returns
 * false for anything else, with nothing taken: zc__scm_sent() parses it.
 */
static inline __attribute__((always_inline)) bool
zc_scm_take_one(struct scm_priv *p)
{
	const unsigned char *c = p->ctrl, *e = c + CMSG_LEN(0);
	uint8_t zerocopy = e[offsetof(struct zc_info_elem, zerocopy)];
	__typeof__(((struct cmsghdr *)0)->cmsg_len) len;
	uint64_t t;
	uint32_t lo, hi;
	struct zc_range *r;

	if (zerocopy > 1)
		return zerocopy == SCM_SENTINEL;
	/* cmsg_len a constant, the rest (level, type) as p->one's */
	memcpy(&len, c, sizeof(len));
	if (len != CMSG_LEN(SCM_ELEM) ||
	    memcmp(c + sizeof(len), p->one + sizeof(len),
		   sizeof(p->one) - sizeof(len)))
		return false;
	/* Field by field: three bytes of tail padding may be garbage. */
	memcpy(&lo, e + offsetof(struct zc_info_elem, lo), sizeof(lo));
	memcpy(&hi, e + offsetof(struct zc_info_elem, hi), sizeof(hi));
	t = atomic_load_explicit(&p->rtail, memory_order_relaxed);
	r = &p->ranges[t & (SCM_RANGES - 1)];
	/* lo and hi in one copy: the same layout in both. */
	_Static_assert(offsetof(struct zc_range, hi) == 4 &&
		       offsetof(struct zc_info_elem, hi) == 4,
		       "lo, hi: two u32 in a row");
	memcpy(&r->lo, e, 2 * sizeof(uint32_t));
	/*
	 * copied is !zerocopy, and zerocopy is 0 or 1 here: its flip is the
	 * bool's byte as it is, with no test to make one of it.
	 */
	zerocopy ^= 1;
	memcpy(&r->copied, &zerocopy, sizeof(r->copied));
	p->ids_harvested += hi - lo + 1;
	/*
	 * Release: pairs with the acquire of rtail in zc_scm_collect(). The
	 * send succeeded: the push of its entry that follows (zc_publish())
	 * wakes a waiting reaper. Seq_cst all the same, as zc__scm_send()'s,
	 * so that zc_wait()'s load of rtail, before that of tail, cannot
	 * miss the range and still see the entry.
	 */
	atomic_store_explicit(&p->rtail, t + 1, memory_order_seq_cst);
	return true;
}

/* zc_get_stats()'s harvest_cmsg, from any thread: see rtail. */
static inline uint64_t zc_scm_harvested(const struct zc_sock *zs)
{
	const struct scm_priv *p = zs->backend_priv;

	/* Relaxed: a count, that only grows. */
	return atomic_load_explicit(&p->rtail, memory_order_relaxed);
}

/* ---- the reap side ---- */

/*
 * Apply the ranges the send side collected; returns how many. blocked:
 * zc_ring_blocked() said true just before (see zc_apply_range_blocked()),
 * which holds for the first range.
 */
static inline __attribute__((always_inline)) int
zc_scm_apply_as(struct zc_sock *zs, bool blocked)
{
	struct scm_priv *p = zs->backend_priv;
	uint32_t h = atomic_load_explicit(&p->rhead, memory_order_relaxed);
	/* Acquire (seq_cst for zc_wait()): pairs with zc__scm_send()'s store. */
	uint32_t t = (uint32_t)atomic_load_explicit(&p->rtail,
						    memory_order_seq_cst);
	int n = (int)(t - h);

	if (blocked && h != t) {
		const struct zc_range *r = &p->ranges[h & (SCM_RANGES - 1)];

		zc_apply_range_blocked(zs, r->lo, r->hi, r->copied);
		h++;
	}
	for (; h != t; h++) {
		const struct zc_range *r = &p->ranges[h & (SCM_RANGES - 1)];

		zc_apply_range(zs, r->lo, r->hi, r->copied);
	}
	/* Release: pairs with the acquire of rhead in zc_scm_want(). */
	atomic_store_explicit(&p->rhead, h, memory_order_release);
	return n;
}

static inline __attribute__((always_inline)) int
zc_scm_apply(struct zc_sock *zs)
{
	return zc_scm_apply_as(zs, false);
}

static inline __attribute__((always_inline)) int
zc_scm_collect_as(struct zc_sock *zs, bool force, bool blocked)
{
	struct scm_priv *p = zs->backend_priv;
	uint32_t tail = atomic_load_explicit(&zs->tail, memory_order_relaxed);
	int n = zc_scm_apply_as(zs, blocked), ret;

	/*
	 * Sends ran since we last looked: they will carry the news; a read
	 * now would cost the syscall SCM is there to save. Otherwise no send
	 * runs (or sends no longer ask): read the queue ourselves.
	 */
	if (!force && (n || tail != p->last_tail) &&
	    !atomic_load_explicit(&p->broken, memory_order_relaxed)) {
		p->last_tail = tail;
		return n;
	}
	p->last_tail = tail;
	ret = zc__eq_drain(zs);
	if (ret < 0)
		return n ? n : ret;
	return n + ret;
}

static inline __attribute__((always_inline)) int
zc_scm_collect(struct zc_sock *zs, bool force)
{
	return zc_scm_collect_as(zs, force, false);
}

/*
 * amb_resolve(): the ranges the sends collected, then the whole error
 * queue, whose read's error is returned even when ranges came (the
 * collect above drops it then): settling a failed send's id needs the
 * queue read, or an id used is taken for unused.
 */
static inline int zc_scm_collect_all(struct zc_sock *zs)
{
	struct scm_priv *p = zs->backend_priv;
	int n = zc_scm_apply(zs), ret;

	p->last_tail = atomic_load_explicit(&zs->tail, memory_order_relaxed);
	ret = zc__eq_drain(zs);
	return ret < 0 ? ret : n + ret;
}

#pragma GCC visibility pop

#endif /* ZC_BACKEND_SCM_H */
