/* SPDX-License-Identifier: MIT */
/*
 * The ground floor: struct zc_sock, the state of one socket that every
 * layer above works on (sys.c, ring.c, errqueue.c, the backends, the entry
 * points), with its counters. Data only: no layer's functions.
 */
#ifndef ZC_SOCK_H
#define ZC_SOCK_H

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

/* Defined by the layers that own them: ring.h, errqueue.h, backend.h. */
struct zc_entry;
struct zc_chunk;
struct zc_ops;
struct zc_eqh;

/*
 * Counters of one side, the struct zc_stats fields that side counts;
 * written by that side only, read by anyone (zc_get_stats() adds the
 * two). Some are never counted, zc_get_stats() derives them: sends
 * (sends_zc + sends_copy), completions (completions_zc +
 * completions_copied), harvest_cmsg (the scm range ring's tail counts
 * them: struct scm_priv), the errqueue_reads part of syscalls, and,
 * where the send is the syscall itself (tx_direct: errqueue, scm, copy),
 * the syscalls of the sends: each counted send is one syscall that
 * succeeded, so tx.syscalls counts only the others there (the failed
 * ones, a wake-up's write). Every increment is on the hot path. Two
 * sets of the 16 fields of struct zc_stats were 256 bytes of each
 * socket's; these are 128 (eq_one: in the padding before ctxm, struct
 * zc_sock stays 512 bytes).
 */
struct zc_tx_stats {
	_Atomic uint64_t sends_zc, sends_copy, enobufs_fallback, adapt_copy,
		syscalls, bad_ranges, enobufs_waited;
};
struct zc_rx_stats {
	_Atomic uint64_t completions_zc, completions_copied, harvest_recvmsg,
		errqueue_reads, syscalls, foreign, foreign_dropped, ctrunc,
		bad_ranges;
	/*
	 * Reads of the error queue that brought one completion record in
	 * the exact layout (completions_eq(), every one at k = 1): each is
	 * one of errqueue_reads and one of harvest_recvmsg, which
	 * zc_get_stats() adds it to; one increment, not two.
	 */
	_Atomic uint64_t eq_one;
};

/* Single-writer increment: no read-modify-write needed, no lock prefix. */
#define ZC_STAT_ADD(zs_side, field, n)					\
	atomic_store_explicit(&(zs_side)->field,			\
		atomic_load_explicit(&(zs_side)->field,			\
				     memory_order_relaxed) + (n),	\
		memory_order_relaxed)
#define ZC_STAT_INC(side, field)	ZC_STAT_ADD(side, field, 1)

struct zc_sock;

/* zc_member.ids_report */
enum {
	ZC_IDS_NONE,		/* every publish may be news (copy, outside) */
	ZC_IDS_REPORTED,	/* errqueue, uring on the context's ring */
	ZC_IDS_SCM,		/* scm: as errqueue, but for its harvests */
};

/*
 * A socket's membership of a context (ctx.c). A member keeps waiting set,
 * so that zc_publish() calls zc__wake_reaper(), which puts it on the
 * context's ready stack (through wake) when the send may be news that
 * raises no POLLERR.
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
	/*
	 * zc__ctx_wake(), set by zc_open() before the socket joins: a hook,
	 * so that zc__wake_reaper() (sys.c) calls up into ctx.c without
	 * naming it. Read-only while the socket is a member.
	 */
	void (*wake)(struct zc_sock *zs);
	/* The context's reaper, under its lock. */
	uint64_t tag;
	uint32_t slot;			/* index in the context's table */
	bool queued;			/* on the reaper's queue */
	bool read;			/* ... with an epoll event: read the queue */
	/*
	 * Read-only while a member (ZC_IDS_*): a send that took an id is no
	 * news, its completion comes with news of its own (errqueue:
	 * EPOLLERR; uring on the context's ring: the reaper's drain; scm:
	 * EPOLLERR, or the harvest of a later send, which is news of that
	 * send's). In the padding.
	 */
	uint8_t ids_report;
	struct zc_sock *qprev, *qnext;
};
_Static_assert(sizeof(struct zc_member) == ZC_CACHELINE,
	       "the hook fills the member's cache line, no more");

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
	/*
	 * zc_completions() past its rare checks: its backend's
	 * completions_eq(), completions_scm() or completions_ops(), or
	 * completions_ready() (copy) (zcnotify.c), chosen by zc_open(): one
	 * indirect jump, not tests of ops, and each tests whether the oldest
	 * send waits with its own common case.
	 */
	int (*rx_reap)(struct zc_sock *zs, struct zc_completion *out,
		       unsigned int max);
	/* The context it belongs to (ctx.c), or NULL; see struct zc_member. */
	struct zc_ctx *ctx;
	void *backend_priv;
	/*
	 * The socket's inode number (fstat() in zc_open()): leaving a
	 * context takes fd out of its epoll set only if fd is still this
	 * socket. In the hole before the send side's line: no memory.
	 */
	uint64_t ino;
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
	/*
	 * The slot at which the ring was full when the send side last read
	 * head (send_begin()): head + tx_room then. Head only grows, so a
	 * tail below it has room, and send_one() tests that with no load of
	 * head, the reap side's cache line; at it, send_general() reads head
	 * again.
	 */
	uint32_t tx_room_end;
	/*
	 * The slots a send may take from head on: max_inflight, less the
	 * done entries of a context's uring member (done_made, below) not
	 * yet handed out, as the send side last counted them. Each done
	 * entry takes one off (and off tx_room_end) when it is made; a send
	 * that finds no room counts them again (room_again(), zcnotify.c).
	 * So the ring and the done entries together stay within
	 * max_inflight (zc_inflight(3)), and no test of the done entries
	 * costs the common send anything.
	 */
	uint32_t tx_room;
	/*
	 * zc_send() past its argument checks: send_one_general() while
	 * tx_general, else send_one_scm() or send_one_plain() (zcnotify.c),
	 * set with tx_general (tx_choose()): one indirect jump, not tests of
	 * tx_general and tx_scm, and zc_send() needs no frame.
	 */
	ssize_t (*tx_send)(struct zc_sock *zs, const void *buf, size_t len,
			   int flags, uint64_t cookie);
	bool amb_local;			/* a failed send's id is unsettled */
	/* !tx_direct || amb_local: send_one() takes send_general(). */
	bool tx_general;
	/* Its zero-copy send waits in zc_ctx_sendmmsg()'s batch (ctx.c). */
	bool tx_batched;
	/*
	 * The backend's zero-copy send failed but took its id all the same
	 * (uring: its notification is still to come): send_failed() gives
	 * the id a ghost entry, which that notification completes.
	 */
	bool tx_ghost_id;
	/*
	 * The send side read the error queue on ENOBUFS (errqueue over TCP):
	 * what it took waits in eqh for the reap side, which clears this.
	 * Here, in the line of tail that the reap side reads anyway: its
	 * test costs no cache line (errqueue.h).
	 */
	_Atomic bool eqh_news;
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
	/*
	 * A context's uring member: sends complete within their batch that
	 * were never published in the ring, handed to the context's reaper
	 * as ready-made completions instead (backend_uring.c, "done"
	 * entries of the forward ring). The send side counts those it made,
	 * the reaper (done_taken, below) those it handed out or put back in
	 * the ring (zc_ctx_del()). zc_inflight() counts the difference.
	 * Release: pairs with the acquire in zc_inflight().
	 */
	_Atomic uint32_t done_made;
	struct zc_tx_stats tx;
	/*
	 * The records the send side took on ENOBUFS (struct zc_eqh,
	 * errqueue.h): made by its first such read, freed by zc_close().
	 */
	struct zc_eqh *eqh;

	/* Reap side. */
	alignas(ZC_CACHELINE) _Atomic uint32_t head;	/* oldest unreaped slot */
	struct zc_entry *rx_e;		/* the entry of slot head */
	/*
	 * A chunk the reap side left, for the send side's next; exchanged by
	 * both, once a chunk (here, not with the read-only fields both read
	 * on every call). nchunks: chunks held, the spare included (both
	 * sides add, when they take a chunk or let one go: ring.c).
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
	/*
	 * nmarks, and pending_err (reported once by zc_completions()), in
	 * one word: zc_completions() sends a call with either to its slow
	 * way with one test (rx_rare).
	 */
	union {
		struct {
			uint32_t nmarks;
			int pending_err;
		};
		uint64_t rx_rare;
	};
	uint8_t *done;
	/* No memory for a mark: completions lost, pending_err stays. */
	bool broken;
	/* Ghost entries reaped; stored before head (see zc_inflight()). */
	_Atomic uint32_t ghosts_reaped;
	/* Done entries handed out (see done_made); the context's reaper's. */
	_Atomic uint32_t done_taken;
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
	bool rx_dry;			/* the last read of the queue found none */
	/*
	 * completions_eq()'s max, for its other ways alone: kept here
	 * across its syscall, not in a register saved for the whole call.
	 */
	unsigned int rx_max;
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

#pragma GCC visibility pop

#endif /* ZC_SOCK_H */
