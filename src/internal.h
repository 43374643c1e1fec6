/* SPDX-License-Identifier: MIT */
#ifndef ZC_INTERNAL_H
#define ZC_INTERNAL_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "zcnotify.h"
#include "compat.h"

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

#define ZC_EQ_BATCH		16	/* records per recvmmsg() */
#define ZC_EQ_CTRL		512	/* control bytes per record */
#define ZC_FOREIGN_MAX		64	/* foreign records kept for zc_foreign() */

/* Ring entry flags (zc_entry.flags); the low bits are the public ZC_*. */
#define ZC_ENT_PENDING	(1u << 31)	/* waits for kernel id .id */

/* zc_sock.amb */
enum { ZC_AMB_NONE, ZC_AMB_PENDING, ZC_AMB_TAKEN, ZC_AMB_NOT_TAKEN };

/* Mark of a kernel id in zc_sock.done[] */
#define ZC_DONE		1u
#define ZC_DONE_COPIED	2u

struct zc_entry {
	uint64_t cookie;
	uint32_t bytes;
	uint32_t flags;
	uint32_t id;
};

/* A completed range of kernel ids, inclusive; may wrap (hi < lo). */
struct zc_range {
	uint32_t lo;
	uint32_t hi;
	bool copied;
};

/* Counters of one side; written by that side only, read by anyone. */
struct zc_side_stats {
	_Atomic uint64_t sends, sends_zc, sends_copy, enobufs_fallback,
		adapt_copy, completions, completions_zc, completions_copied,
		harvest_cmsg, harvest_recvmsg, errqueue_reads, syscalls,
		foreign, foreign_dropped, ctrunc, bad_ranges;
};

/* Single-writer increment: no read-modify-write needed, no lock prefix. */
#define ZC_STAT_ADD(zs_side, field, n)					\
	atomic_store_explicit(&(zs_side)->field,			\
		atomic_load_explicit(&(zs_side)->field,			\
				     memory_order_relaxed) + (n),	\
		memory_order_relaxed)
#define ZC_STAT_INC(side, field)	ZC_STAT_ADD(side, field, 1)

struct zc_sock;

struct zc_ops {
	int id;
	bool zerocopy;		/* sends take kernel ids; POLLERR means news */
	/*
	 * The kernel itself signals zs->efd when it has news (uring: the
	 * ring's registered eventfd), and POLLERR does not mean news:
	 * zc_wait() sleeps on zs->efd alone.
	 */
	bool news_on_efd;
	/* Send side: one sendmsg with flags (MSG_ZEROCOPY set or not). */
	ssize_t (*send)(struct zc_sock *zs, const struct msghdr *msg, int flags);
	/*
	 * Reap side: bring what the kernel reported into the done marks;
	 * force: read the error queue even if the backend would rather not
	 * (POLLERR fired, or zc_foreign() asks). Returns the number of kernel
	 * records consumed or -errno.
	 */
	int (*collect)(struct zc_sock *zs, bool force);
	/* Set up backend_priv; called by zc_open(). Optional. */
	int (*setup)(struct zc_sock *zs, const struct zc_opts *o);
	/* Reap side, optional: called by zc_close(). */
	void (*teardown)(struct zc_sock *zs);
};

extern const struct zc_ops zc_ops_errqueue;
extern const struct zc_ops zc_ops_copy;
extern const struct zc_ops zc_ops_scm;
#ifdef ZC_HAVE_URING
extern const struct zc_ops zc_ops_uring;
#endif

struct zc_sock {
	/* Read-only after zc_open(). */
	int fd;
	int family;
	int type;
	uint32_t mask;			/* max_inflight - 1 */
	uint32_t copy_below;
	uint32_t opt_flags;
	int scm_type;			/* SCM_ZC_NOTIFICATION's cmsg type */
	const struct zc_ops *ops;
	struct zc_entry *ring;		/* max_inflight send records */
	uint8_t *done;			/* reap side: marks by kernel id & mask */
	void *backend_priv;

	/* Send side. */
	alignas(ZC_CACHELINE) _Atomic uint32_t tail;	/* next ring slot */
	/*
	 * Ids up to (not including) this value may have been handed out by
	 * the kernel; a range beyond it is bogus. Release: pairs with the
	 * acquire in zc_apply_range().
	 */
	_Atomic uint32_t zc_issued;
	uint32_t zc_next;		/* id the next zero-copy send takes */
	uint32_t adapt_tick;
	bool amb_local;			/* an ambiguous ENOBUFS is unsettled */
	/*
	 * An ENOBUFS that may have taken id amb_id (UDP with IP_RECVERR):
	 * send side sets PENDING, reap side settles it, send side clears.
	 */
	_Atomic int amb;
	_Atomic uint32_t amb_id;
	struct zc_side_stats tx;

	/* Reap side. */
	alignas(ZC_CACHELINE) _Atomic uint32_t head;	/* oldest unreaped slot */
	uint32_t zc_head;		/* oldest unreaped kernel id */
	/* Consecutive ids reported COPIED; read by the send side. */
	_Atomic uint32_t copied_streak;
	/* Set while zc_wait() sleeps; full fence both sides (see zc_push). */
	_Atomic uint32_t waiting;
	/*
	 * eventfd that wakes a sleeping zc_wait(); made by the first zc_wait()
	 * (most servers never wait), or by the uring backend's setup (the
	 * ring signals it too). Release: pairs with the acquire in
	 * zc_wake_reaper().
	 */
	_Atomic int efd;
	int pending_err;		/* reported once by zc_completions() */
	/* Ids reported through recvmsg(MSG_ERRQUEUE); read by the SCM send
	 * side to estimate how many ids are still out. */
	_Atomic uint32_t ids_by_recvmsg;
	struct zc_side_stats rx;
	void *eq;			/* error-queue read buffers (errqueue.c) */
	unsigned int nforeign;
	unsigned int foreign_first;
	struct zc_errrec foreign[ZC_FOREIGN_MAX];
};

/* zcnotify.c */
int zc_err(int err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void zc_wake_reaper(struct zc_sock *zs);
ssize_t zc_sys_sendmsg(struct zc_sock *zs, const struct msghdr *msg, int flags);

/* ring.c: the completion ring, kernel ids -> done marks */
uint32_t zc_apply_range(struct zc_sock *zs, uint32_t lo, uint32_t hi,
		       bool copied);
int zc_ring_reap(struct zc_sock *zs, struct zc_completion *out,
		 unsigned int max);

/* backend_scm.c */
int zc_scm_parse(const unsigned char *buf, size_t len, int type,
		 unsigned int asked, struct zc_range *out);
int zc_scm_supported(int type);
int zc_scm_type(int *type);
void zc_scm_probe_reset(void);

#ifdef ZC_HAVE_URING
/* backend_uring.c */
void zc_uring_probe_reset(void);
#endif

/* errqueue.c */
enum zc_rec_kind { ZC_REC_NONE, ZC_REC_RANGE, ZC_REC_FOREIGN };
enum zc_rec_kind zc_parse_errmsg(const struct msghdr *m, struct zc_range *r,
				 struct zc_errrec *rec);
int zc_eq_init(struct zc_sock *zs);
void zc_eq_fini(struct zc_sock *zs);
int zc_eq_drain(struct zc_sock *zs);
void zc_stash_foreign(struct zc_sock *zs, const struct zc_errrec *rec);

/* Send side: publish a record. */
static inline void zc_push(struct zc_sock *zs, const struct zc_entry *e)
{
	uint32_t t = atomic_load_explicit(&zs->tail, memory_order_relaxed);

	zs->ring[t & zs->mask] = *e;
	/*
	 * Release (and more): pairs with the acquire of tail in
	 * zc_ring_reap(). Seq_cst store of tail, then seq_cst load of waiting;
	 * zc_wait() stores waiting, then loads tail, both seq_cst: one of
	 * the two sides sees the other's store.
	 */
	atomic_store_explicit(&zs->tail, t + 1, memory_order_seq_cst);
	if (atomic_load_explicit(&zs->waiting, memory_order_seq_cst))
		zc_wake_reaper(zs);
}

/* Reap side: is the oldest unreaped entry still waiting for the kernel? */
static inline bool zc_ring_blocked(const struct zc_sock *zs)
{
	uint32_t h = atomic_load_explicit(&zs->head, memory_order_relaxed);
	/* Acquire: pairs with the store of tail in zc_push(). */
	uint32_t t = atomic_load_explicit(&zs->tail, memory_order_acquire);
	const struct zc_entry *e;

	if (h == t)
		return false;
	e = &zs->ring[h & zs->mask];
	return (e->flags & ZC_ENT_PENDING) && !zs->done[e->id & zs->mask];
}

#endif /* ZC_INTERNAL_H */
