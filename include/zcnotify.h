/* SPDX-License-Identifier: MIT */
/*
 * libzcnotify: MSG_ZEROCOPY sends with exactly one completion per send.
 *
 * Every function returns 0, a count, or a negative errno value; errno is
 * never the channel. The full contract of each function is in its man page
 * (zc_open(3), zc_sendmsg(3), zc_completions(3), ... and zcnotify(7)).
 *
 * Threading: the send side (zc_send, zc_sendmsg) and the reap side
 * (zc_completions, zc_wait, zc_foreign) of one zc_sock may each run in
 * their own thread, without a lock. Two threads on the same side need the
 * caller's lock. The getters may be called from any thread. A socket in a
 * context (struct zc_ctx) is reaped through the context alone, whose calls
 * serialize on its own lock; its sends may run in any one thread.
 */
#ifndef ZCNOTIFY_H
#define ZCNOTIFY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <time.h>
/*
 * struct timespec (zc_errrec.ts): <time.h> declares it in strict ISO C
 * modes only from C11 on, or with a POSIX feature macro; POSIX has
 * <sched.h> define it in any mode. So -std=c99 -pedantic works.
 */
#include <sched.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version of this header; zc_version() gives the library's. */
#define ZCNOTIFY_VERSION_MAJOR 0
#define ZCNOTIFY_VERSION_MINOR 2
#define ZCNOTIFY_VERSION_PATCH 0
/* A comparable number: ZCNOTIFY_VERSION_CODE >= ZCNOTIFY_VERSION(0, 1, 0) */
#define ZCNOTIFY_VERSION(major, minor, patch) \
	(((major) << 16) + ((minor) << 8) + (patch))
#define ZCNOTIFY_VERSION_CODE \
	ZCNOTIFY_VERSION(ZCNOTIFY_VERSION_MAJOR, ZCNOTIFY_VERSION_MINOR, \
			 ZCNOTIFY_VERSION_PATCH)

struct zc_sock;				/* opaque, one per socket */
struct zc_ctx;				/* opaque, shared by many sockets */

enum {
	ZC_BACKEND_AUTO = 0,		/* choose: SCM, else error queue */
	ZC_BACKEND_ERRQUEUE,		/* MSG_ZEROCOPY + recvmsg(MSG_ERRQUEUE) */
	ZC_BACKEND_SCM,			/* MSG_ZEROCOPY + SCM_ZC_NOTIFICATION */
	ZC_BACKEND_URING,		/* io_uring SENDMSG_ZC / SEND_ZC */
	ZC_BACKEND_COPY		/* plain copying sends */
};

/* zc_completion.flags */
#define ZC_COPIED	(1u << 0)	/* data was copied, not sent from the pages */
#define ZC_LIB_COPY	(1u << 1)	/* the library chose to copy (ZC_COPIED is set too) */

/* zc_opts.flags */
#define ZC_OPT_NO_ADAPT	(1u << 0)	/* keep trying zero-copy even when the
					 * kernel keeps reporting COPIED */

struct zc_opts {
	size_t   sz;		/* sizeof(struct zc_opts); lets the struct grow */
	int      backend;	/* ZC_BACKEND_*; 0 = choose automatically */
	uint32_t max_inflight;	/* sends tracked until reaped; power of two; 0 = default */
	uint32_t copy_below;	/* shorter sends are copied; 0 = default */
	uint32_t flags;		/* ZC_OPT_* */
	uint32_t harvest_every;	/* SCM: collect on every k-th send while
				 * sends are in flight; 0 = default */
	/* Since 0.2: */
	struct zc_ctx *ctx;	/* join this context (zc_ctx_new); NULL = none */
	uint64_t tag;		/* the caller's tag for the socket, in its
				 * zc_ctx_completion records */
};

struct zc_completion {
	uint64_t cookie;	/* as given to the send */
	uint32_t bytes;		/* bytes that send accepted */
	uint32_t flags;		/* ZC_COPIED, ZC_LIB_COPY */
};

/*
 * An error-queue record that is not a zero-copy completion (an ICMP error,
 * a TX timestamp, ...), kept for the caller: see zc_foreign(3).
 */
#define ZC_ERRREC_OFFENDER	(1u << 0)	/* offender holds an address */
#define ZC_ERRREC_TIMESTAMP	(1u << 1)	/* ts[] holds SCM_TIMESTAMPING */

struct zc_errrec {
	int      level;		/* cmsg level: SOL_IP or SOL_IPV6 */
	int      type;		/* cmsg type: IP_RECVERR or IPV6_RECVERR */
	uint32_t ee_errno;	/* struct sock_extended_err, field by field */
	uint8_t  ee_origin;
	uint8_t  ee_type;
	uint8_t  ee_code;
	uint8_t  ee_pad;
	uint32_t ee_info;
	uint32_t ee_data;
	uint32_t flags;		/* ZC_ERRREC_* */
	struct sockaddr_storage offender;
	struct timespec ts[3];
};

/*
 * Counters; each only grows. Read with zc_get_stats(). "Syscalls per
 * completed send" is syscalls / completions.
 */
struct zc_stats {
	size_t   sz;			/* sizeof(struct zc_stats) */
	uint64_t sends;			/* send calls that returned >= 0 */
	uint64_t sends_zc;		/* ... that went zero-copy (took a kernel id) */
	uint64_t sends_copy;		/* ... that the library sent by copy */
	uint64_t enobufs_fallback;	/* zero-copy refused (ENOBUFS), resent by copy */
	uint64_t adapt_copy;		/* copied because the kernel kept copying */
	uint64_t completions;		/* completions handed to the caller */
	uint64_t completions_zc;	/* ... kernel-reported zero-copy */
	uint64_t completions_copied;	/* ... copied (by kernel or library) */
	uint64_t harvest_cmsg;		/* kernel ranges read from sendmsg's cmsg */
	uint64_t harvest_recvmsg;	/* kernel ranges read from the error queue */
	uint64_t errqueue_reads;	/* recvmmsg(MSG_ERRQUEUE) calls */
	uint64_t syscalls;		/* every syscall the library made */
	uint64_t foreign;		/* non-zero-copy error-queue records */
	uint64_t foreign_dropped;	/* ... lost because the stash was full */
	uint64_t ctrunc;		/* error-queue reads with MSG_CTRUNC */
	uint64_t bad_ranges;		/* kernel ids outside the in-flight window */
	/* Since 0.2: */
	uint64_t enobufs_waited;	/* zero-copy refused (ENOBUFS): waited for completions */
};

/*
 * Wrap a connected (or sendto-style UDP) socket. Enables SO_ZEROCOPY.
 * Does not take ownership of fd. opts may be NULL.
 * Returns 0 and *out, or -ENOTSOCK, -EOPNOTSUPP, -EINVAL, -E2BIG, -ENOMEM...
 */
int zc_open(int fd, const struct zc_opts *opts, struct zc_sock **out);

/* Free zs. Sends still in flight are forgotten: see zc_close(3). */
void zc_close(struct zc_sock *zs);

/*
 * Send like sendmsg(2), zero-copy when it pays. Returns the bytes sent, or
 * -errno (-ENOBUFS without sending when max_inflight sends await reaping).
 * Every call that returns >= 0 yields exactly one completion with cookie.
 * The pages of msg's iovecs must stay unmodified until then.
 */
ssize_t zc_sendmsg(struct zc_sock *zs, const struct msghdr *msg, int flags,
		   uint64_t cookie);
ssize_t zc_send(struct zc_sock *zs, const void *buf, size_t len, int flags,
		uint64_t cookie);

/*
 * Reap up to max completions without blocking. Returns the count or -errno
 * (-EINVAL for a socket in a context: reap it with zc_ctx_completions()).
 */
int zc_completions(struct zc_sock *zs, struct zc_completion *out,
		   unsigned int max);

/*
 * Like zc_completions, but wait up to timeout_ms (-1: forever) for at least
 * one. Returns the count, 0 on timeout, or -errno.
 */
int zc_wait(struct zc_sock *zs, struct zc_completion *out, unsigned int max,
	    int timeout_ms);

/* Sends not yet reaped (in flight or completed but not yet returned). */
unsigned int zc_inflight(const struct zc_sock *zs);

/* The backend in use (ZC_BACKEND_*), never ZC_BACKEND_AUTO. */
int zc_backend(const struct zc_sock *zs);

/* "auto", "errqueue", "scm", "uring", "copy"; NULL for an unknown value. */
const char *zc_backend_name(int backend);

/* Non-zero-copy error-queue records, oldest first. Reap side. */
int zc_foreign(struct zc_sock *zs, struct zc_errrec *out, unsigned int max);

/* Copy the counters into *st (st->sz set by the caller). Returns 0 or -errno. */
int zc_get_stats(const struct zc_sock *zs, struct zc_stats *st);

/*
 * A context: one fd that reports completion news of many sockets, and one
 * call that reaps them all (zc_ctx_new(3)). Since 0.2.
 */
struct zc_ctx_opts {
	size_t   sz;		/* sizeof(struct zc_ctx_opts) */
	uint32_t flags;		/* none yet: 0 */
};

/* zc_ctx_completion.flags, besides ZC_COPIED and ZC_LIB_COPY */
#define ZC_CTX_ERROR	(1u << 16)	/* reaping zs failed: see error */

struct zc_ctx_completion {
	struct zc_sock *zs;	/* the socket the send was made on */
	uint64_t tag;		/* its zc_opts.tag */
	uint64_t cookie;	/* as given to the send */
	uint32_t bytes;		/* bytes that send accepted */
	uint32_t flags;		/* ZC_COPIED, ZC_LIB_COPY; or ZC_CTX_ERROR */
	int      error;		/* with ZC_CTX_ERROR: -errno; else 0 */
};

/*
 * Make a context (opts may be NULL). Sockets join it through zc_opts.ctx
 * in zc_open() and leave it with zc_ctx_del() or zc_close(); its calls may
 * come from any thread and serialize on the context's lock. Returns 0 and
 * *out, or -EINVAL, -E2BIG, -ENOMEM, -EMFILE...
 */
int zc_ctx_new(const struct zc_ctx_opts *opts, struct zc_ctx **out);

/* Free ctx (NULL: nothing). Returns 0, or -EBUSY while sockets belong to it. */
int zc_ctx_free(struct zc_ctx *ctx);

/*
 * A file descriptor that polls readable (POLLIN) while a member socket may
 * have news: put it in your epoll set, then call zc_ctx_completions().
 */
int zc_ctx_fd(const struct zc_ctx *ctx);

/*
 * Reap up to max completions of the member sockets without blocking, each
 * socket's in send order, sockets served in turn. Returns the count or
 * -errno.
 */
int zc_ctx_completions(struct zc_ctx *ctx, struct zc_ctx_completion *out,
		       unsigned int max);

/* The same, waiting up to timeout_ms (-1: forever) for at least one. */
int zc_ctx_wait(struct zc_ctx *ctx, struct zc_ctx_completion *out,
		unsigned int max, int timeout_ms);

/*
 * Take zs out of ctx: it becomes a socket of its own, reaped with
 * zc_completions(). No send may run on zs meanwhile. Returns 0 or -EINVAL;
 * a uring member, which gets its own ring, also -EBUSY (its sends not all
 * reported within 2 s), -EMFILE, -ENOMEM...: it stays in ctx then.
 */
int zc_ctx_del(struct zc_ctx *ctx, struct zc_sock *zs);

/* One send of zc_ctx_sendmmsg(). Since 0.2. */
struct zc_ctx_send {
	struct zc_sock *zs;		/* a member of the context */
	const struct msghdr *msg;	/* as for zc_sendmsg() */
	uint64_t cookie;		/* as for zc_sendmsg() */
	int      flags;			/* as for zc_sendmsg(); MSG_DONTWAIT
					 * is implied */
	ssize_t  result;		/* set: what zc_sendmsg() would return */
};

/*
 * Make the n sends of v without blocking, each as zc_sendmsg() with
 * MSG_DONTWAIT would, its result in v[i].result: the zero-copy sends of
 * uring members go to the context's ring together, many per
 * io_uring_enter(2); a socket's sends go in the order of v. Returns the
 * number of sends whose result is >= 0, or -EINVAL. Since 0.2.
 */
int zc_ctx_sendmmsg(struct zc_ctx *ctx, struct zc_ctx_send *v,
		    unsigned int n);

/* A context's own counters (zc_ctx_get_stats(3)). Since 0.2. */
struct zc_ctx_stats {
	size_t   sz;		/* sizeof(struct zc_ctx_stats): set before the call */
	uint64_t syscalls;	/* the context's own (epoll_wait, its eventfd,
				 * epoll_ctl...); a member's are in its
				 * zc_stats */
	uint32_t members;	/* sockets in the context now */
};

/* Copy ctx's counters into *st (st->sz set by the caller). Returns 0 or -errno. */
int zc_ctx_get_stats(struct zc_ctx *ctx, struct zc_ctx_stats *st);

/*
 * Register n buffers (iov) with the context's io_uring, in place of any
 * registered before (n 0: none). A send of a uring member from one
 * buffer that lies inside a registered one then uses it
 * (IORING_RECVSEND_FIXED_BUF: no page pinning per send). Since 0.2.
 * Returns 0 or -EINVAL, -ENOMEM, -EOPNOTSUPP (no io_uring)...
 */
int zc_ctx_register_buffers(struct zc_ctx *ctx, const struct iovec *iov,
			    unsigned int n);

/*
 * A message that says why the last failing call of this thread failed,
 * or "" if none did. Valid until the thread's next libzcnotify call.
 */
const char *zc_last_error(void);

/*
 * The version of the library running, as ZCNOTIFY_VERSION(major, minor,
 * patch): it may be newer than the ZCNOTIFY_VERSION_CODE built against.
 */
uint32_t zc_version(void);

#ifdef __cplusplus
}
#endif

#endif /* ZCNOTIFY_H */
