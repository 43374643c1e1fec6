/* SPDX-License-Identifier: MIT */
/*
 * The error queue (errqueue.c), one floor above the ring: the parser of
 * its records, and the read that applies their ranges to the ring. The
 * part of the read that runs on every zc_completions() of the errqueue
 * backend is here, inline there (zcnotify.c) and in zc__eq_drain().
 */
#ifndef ZC_ERRQUEUE_H
#define ZC_ERRQUEUE_H

#include <errno.h>
#include <string.h>

#include "ring.h"

#pragma GCC visibility push(hidden)

#define ZC_EQ_BATCH		16	/* records per recvmmsg() */
#define ZC_EQ_CTRL		512	/* control bytes per record */
#define ZC_FOREIGN_MAX		64	/* foreign records kept for zc_foreign() */

/* errqueue.c: one record parsed, the queue drained, a foreign record kept */
enum zc_rec_kind { ZC_REC_NONE, ZC_REC_RANGE, ZC_REC_FOREIGN };
enum zc_rec_kind zc__parse_errmsg(const struct msghdr *m, struct zc_range *r,
				 struct zc_errrec *rec);
int zc__eq_drain(struct zc_sock *zs);
void zc__stash_foreign(struct zc_sock *zs, const struct zc_errrec *rec);

/*
 * recvmmsg()'s headers and control buffers (9 KiB), used only during a
 * read: one set per reaping thread, not per socket (errqueue.c). Initial
 * exec: a load from the thread pointer, no __tls_get_addr() call, for 8
 * bytes of static TLS.
 */
struct zc_eq {
	struct mmsghdr msgs[ZC_EQ_BATCH];
	alignas(struct cmsghdr) unsigned char ctrl[ZC_EQ_BATCH][ZC_EQ_CTRL];
};
extern _Thread_local struct zc_eq *zc__tl_eq
	__attribute__((tls_model("initial-exec")));
/*
 * zc_eq_read_as() in a thread with no zc_eq yet: make this thread's, then
 * read. -ENOMEM: no memory for it.
 */
int zc__eq_read_first(struct zc_sock *zs, bool count_ids, bool blocked);

/*
 * What ip_recv_error() and ipv6_recv_error() write for a zero-copy
 * completion: one cmsg, the extended error and an empty offender
 * (struct sockaddr_in or sockaddr_in6), padded to CMSG_SPACE.
 */
#define ZC_EE_V4	(sizeof(struct sock_extended_err) + \
			 sizeof(struct sockaddr_in))
#define ZC_EE_V6	(sizeof(struct sock_extended_err) + \
			 sizeof(struct sockaddr_in6))

/*
 * zc_eq_read()'s test: is m exactly such a record, whole? Anything else
 * (a foreign record, another layout, MSG_CTRUNC) takes
 * zc__eq_record_slow(), which parses any bytes safely.
 */
static inline bool eq_record_fast(const struct msghdr *m, struct zc_range *r)
{
	const unsigned char *ctrl = m->msg_control;
	struct cmsghdr c;
	struct sock_extended_err ee;

	memcpy(&c, ctrl, sizeof(c));
	if (!((m->msg_controllen == CMSG_SPACE(ZC_EE_V4) &&
	       c.cmsg_len == CMSG_LEN(ZC_EE_V4) &&
	       c.cmsg_level == SOL_IP && c.cmsg_type == IP_RECVERR) ||
	      (m->msg_controllen == CMSG_SPACE(ZC_EE_V6) &&
	       c.cmsg_len == CMSG_LEN(ZC_EE_V6) &&
	       c.cmsg_level == SOL_IPV6 && c.cmsg_type == IPV6_RECVERR)) ||
	    (m->msg_flags & MSG_CTRUNC))
		return false;
	/*
	 * Field by field, each loaded as it is tested (the struct at once
	 * was one load, and shifts and masks for each field).
	 */
#define EE_FIELD(f)	(ctrl + CMSG_LEN(0) + \
			 offsetof(struct sock_extended_err, f))
	memcpy(&ee.ee_errno, EE_FIELD(ee_errno), sizeof(ee.ee_errno));
	ee.ee_origin = *EE_FIELD(ee_origin);
	if (ee.ee_errno != 0 || ee.ee_origin != SO_EE_ORIGIN_ZEROCOPY)
		return false;
	memcpy(&r->lo, EE_FIELD(ee_info), sizeof(r->lo));
	memcpy(&r->hi, EE_FIELD(ee_data), sizeof(r->hi));
	r->copied = *EE_FIELD(ee_code) & SO_EE_CODE_ZEROCOPY_COPIED;
#undef EE_FIELD
	return true;
}

/* A record eq_record_fast() did not take: errqueue.c. */
int zc__eq_record_slow(struct zc_sock *zs, const struct msghdr *m);
/* recvmmsg() failed with err (-errno), after nrec records: errqueue.c. */
int zc__eq_read_error(int err, int nrec);
/*
 * zc_eq_read() past its common case: the first recvmmsg() returned n
 * (err: -errno if it failed); handle what it read, and read on (errqueue.c).
 */
int zc__eq_read_more(struct zc_sock *zs, int n, int err, bool count_ids);

/*
 * The records the send side took from the error queue when the kernel
 * refused a zero-copy send over TCP with ENOBUFS (zc__eq_harvest_enobufs()):
 * queued completions hold the socket's option memory until they are read
 * (ABI.md section 1), so the send side reads them, as the raw pattern
 * does, and sends zero-copy again. They go to the reap side through this
 * single-producer, single-consumer ring, as SCM's ranges do (struct
 * scm_priv); zs->eqh_news says it holds some. A foreign record among them
 * waits in foreign (one: the send side reads no further while it is
 * there). Made by the send side's first such read: most sockets never
 * need it.
 */
#define ZC_EQH_ITEMS		16
enum {
	ZC_EQH_COPIED = 1,	/* a range the kernel reported COPIED */
	ZC_EQH_FOREIGN = 2,	/* not a range: foreign holds the record */
	ZC_EQH_CTRUNC = 4,	/* read with MSG_CTRUNC: see pending_err */
};
struct zc_eqh {
	_Atomic uint32_t tail;		/* send side */
	_Atomic uint32_t head;		/* reap side */
	/* Set by the send side with a FOREIGN item, cleared by the reap side. */
	_Atomic bool foreign_full;
	struct {
		uint32_t lo, hi;
		uint8_t kind;		/* ZC_EQH_* */
	} items[ZC_EQH_ITEMS];
	struct zc_errrec foreign;
};

/* Send side: take what is queued; returns the ranges taken (errqueue.c). */
int zc__eq_harvest_enobufs(struct zc_sock *zs);
/* Send side: may the kernel still report ids of ours? (errqueue.c) */
bool zc__eq_ids_out(struct zc_sock *zs);
/*
 * Reap side: apply what the send side took (ranges to the ring, a foreign
 * record to the stash), if eqh_news says there is any. Returns the number
 * of records applied. count_ids: as zc_eq_read()'s.
 */
int zc__eq_take_harvest(struct zc_sock *zs, bool count_ids);
/* zc_eq_read() when eqh_news is set: what the send side took, then a read. */
int zc__eq_read_harvested(struct zc_sock *zs, bool count_ids);

/*
 * Reap side: has the send side taken records for us? Relaxed: a hint,
 * zc__eq_take_harvest() orders what it reads. Seq_cst in zc_wait(),
 * where a store of waiting comes before it (see zc__eq_harvest_enobufs()).
 */
static inline bool zc_eq_harvest_news(const struct zc_sock *zs)
{
	return atomic_load_explicit(&zs->eqh_news, memory_order_relaxed);
}

/* Add ids completed to ids_by_recvmsg (see zc_eq_read()). */
static inline void zc_count_ids(struct zc_sock *zs, uint32_t ids)
{
	/* Relaxed: the send side only estimates what is still out. */
	atomic_store_explicit(&zs->ids_by_recvmsg,
			      atomic_load_explicit(&zs->ids_by_recvmsg,
						   memory_order_relaxed) +
			      ids, memory_order_relaxed);
}

/*
 * Read everything on the error queue, ZC_EQ_BATCH records a syscall.
 * Returns the number of records consumed, or -errno. Inline in
 * zc_completions()'s ways for the errqueue backend (completions_eq()
 * has its common case written out, with the reap: zc_ring_reap_one());
 * zc__eq_drain() elsewhere.
 * count_ids: add the ids completed to ids_by_recvmsg (only the SCM
 * backend reads it; zc__eq_drain() always counts, the errqueue backend's
 * inline read does not). Inline, the common read only: one record, a
 * completion in the exact layout (at k = 1 every read); the rest, in
 * zc__eq_read_more(), reads on as long as batches come full.
 * one: a context's reaper (zc__eq_read_member()); if that one record
 * completes the oldest send and no more (zc_ring_reap_id()), hand it out
 * into *one and set *handed; NULL for every other caller.
 */
static inline __attribute__((always_inline)) int
zc_eq_read_as(struct zc_sock *zs, bool count_ids, bool blocked,
	      struct zc_completion *one, bool *handed)
{
	struct mmsghdr *msgs;
	struct msghdr *m;
	struct zc_range r;
	uint32_t ids;
	int n;

	if (__builtin_expect(zc_eq_harvest_news(zs), 0))
		return zc__eq_read_harvested(zs, count_ids);
	if (__builtin_expect(!zc__tl_eq, 0))
		return zc__eq_read_first(zs, count_ids, blocked);
	msgs = zc__tl_eq->msgs;
	/*
	 * A context's reaper reads one record an edge: the kernel's dequeue
	 * of a record that leaves others behind raises an edge of its own
	 * (sock_dequeue_err_skb(): sk_error_report()), and the reaper comes
	 * back for them. recvmmsg() would try once more after the first
	 * record, a whole recvmsg() in the kernel that finds nothing: at one
	 * record a read (a connection's one send in flight, or TCP's
	 * coalesced range), that is most of what a read costs it beyond the
	 * record. -1 and errno as recvmmsg() when there is none.
	 */
	if (one)
		n = recvmsg(zs->fd, &msgs[0].msg_hdr,
			    MSG_ERRQUEUE | MSG_DONTWAIT) < 0 ? -1 : 1;
	else
		n = recvmmsg(zs->fd, msgs, ZC_EQ_BATCH,
			     MSG_ERRQUEUE | MSG_DONTWAIT, NULL);
	ZC_STAT_INC(&zs->rx, errqueue_reads);	/* and a syscall */
	m = &msgs[0].msg_hdr;
	if (__builtin_expect(n != 1, 0) || !eq_record_fast(m, &r))
		return zc__eq_read_more(zs, n, n < 0 ? -errno : 0, count_ids);
	/*
	 * recvmmsg() rewrote msg_controllen and msg_flags of the header it
	 * filled, and only those: restore them.
	 */
	m->msg_controllen = ZC_EQ_CTRL;
	m->msg_flags = 0;
	if (one && r.lo == r.hi && zc_ring_reap_id(zs, one, r.lo, r.copied)) {
		*handed = true;
		ids = 1;
	} else {
		ids = blocked ? zc_apply_range_blocked(zs, r.lo, r.hi,
						       r.copied) :
				zc_apply_range(zs, r.lo, r.hi, r.copied);
	}
	zs->rx_dry = false;
	ZC_STAT_INC(&zs->rx, harvest_recvmsg);
	if (count_ids && ids)
		zc_count_ids(zs, ids);
	/* Fewer than ZC_EQ_BATCH: the queue is read to its end. */
	return 1;
}

static inline __attribute__((always_inline)) int
zc_eq_read(struct zc_sock *zs, bool count_ids)
{
	return zc_eq_read_as(zs, count_ids, false, NULL, NULL);
}

/*
 * zc_eq_read() right after zc_ring_blocked() said true, with nothing
 * applied since (zc_completions()): see zc_apply_range_blocked().
 */
static inline __attribute__((always_inline)) int
zc_eq_read_blocked(struct zc_sock *zs)
{
	return zc_eq_read_as(zs, false, true, NULL, NULL);
}

#pragma GCC visibility pop

#endif /* ZC_ERRQUEUE_H */
