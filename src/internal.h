/* SPDX-License-Identifier: MIT */
#ifndef ZC_INTERNAL_H
#define ZC_INTERNAL_H

#include "sys.h"
#include "ring.h"
#include "errqueue.h"

#pragma GCC visibility push(hidden)

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

/* zc_sock.amb: did the failed send in ring slot amb_slot use its id? */
enum { ZC_AMB_NONE, ZC_AMB_PENDING, ZC_AMB_TAKEN, ZC_AMB_NOT_TAKEN };

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

/* backend_scm.c */
int zc__scm_parse(const unsigned char *buf, size_t len, int type,
		 unsigned int asked, struct zc_range *out);
int zc__scm_supported(int type);
int zc__scm_type(int *type);
void zc__scm_probe_reset(void);

#ifdef ZC_HAVE_URING
/* backend_uring.c */
void zc__uring_probe_reset(void);
#endif

#pragma GCC visibility pop

#endif /* ZC_INTERNAL_H */
