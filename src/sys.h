/* SPDX-License-Identifier: MIT */
/*
 * The bottom floor (sys.c): the syscalls the floors above make for a
 * socket, the wake-up of a sleeping reaper, and the message of a failed
 * call for zc_last_error(). It knows struct zc_sock, and nothing of the
 * ring, the error queue or a backend.
 */
#ifndef ZC_SYS_H
#define ZC_SYS_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <time.h>

#include "sock.h"

#pragma GCC visibility push(hidden)

/* Record why a call fails, for zc_last_error(); returns err. */
int zc__err(int err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* CLOCK_MONOTONIC in milliseconds: deadlines of waits (probe, zc_wait(),
 * zc_ctx_wait(), zc_ctx_del(), the ENOBUFS wait). */
static inline int64_t zc_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* zc_last_error()'s answer, this thread's (sys.c). */
extern _Thread_local const char *zc__last_err;

/* The same as zc__err() for a fixed message: no formatting on hot error
 * paths. */
static inline int zc_err_lit(int err, const char *msg)
{
	zc__last_err = msg;
	return err;
}

/*
 * The send syscall, counted whatever it returns, and -errno: for a
 * backend whose sends are not the syscall (uring's copies).
 */
ssize_t zc__sys_sendmsg(struct zc_sock *zs, const struct msghdr *msg, int flags);

/*
 * The send syscall of a tx_direct socket (errqueue, scm, copy), and
 * -errno. Counted in tx.syscalls only if it fails: zc_get_stats() counts
 * one syscall for each send the send side counted, and every send that
 * succeeded is counted as one (sends_zc or sends_copy). Inline in the
 * send paths.
 */
static inline __attribute__((always_inline)) ssize_t
zc_sys_send(struct zc_sock *zs, const struct msghdr *msg, int flags)
{
	ssize_t ret;

	/*
	 * One buffer, no address, no control: send(2) takes the kernel's
	 * single-buffer path and skips copying in the msghdr and its iovec
	 * array (measured: 3-4% of a 16 KiB TCP send over loopback). Not
	 * past 1 GiB: send(2) clamps a length sendmsg(2) would refuse.
	 */
	if (msg->msg_iovlen == 1 && msg->msg_iov[0].iov_len <= (1u << 30) &&
	    !msg->msg_name && !msg->msg_namelen &&
	    !msg->msg_control && !msg->msg_controllen)
		ret = send(zs->fd, msg->msg_iov[0].iov_base,
			   msg->msg_iov[0].iov_len, flags);
	else
		ret = sendmsg(zs->fd, msg, flags);

	if (ret < 0) {
		ZC_STAT_INC(&zs->tx, syscalls);
		return -errno;
	}
	return ret;
}

/*
 * Wake a zc_wait() that sleeps on zs (zs->waiting set), or, for a member
 * of a context, the context (through zs->ctxm.wake).
 */
void zc__wake_reaper(struct zc_sock *zs);

/*
 * Copy out a struct that begins with its size (size_t sz, as zc_stats):
 * len bytes of src to a caller whose struct is sz bytes (at least a
 * size_t): the fields both know, zero for those only its newer header
 * knows, and sz as the caller set it.
 */
void zc__copy_sized(void *dst, size_t sz, const void *src, size_t len);

/* net.core.optmem_max: the largest control buffer sendmsg(2) takes. */
size_t zc__optmem_max(void);

/*
 * A thread's own memory freed when the thread exits: a pthread key whose
 * destructor (exit) runs for each thread that set it, made at the first
 * zc__thread_key_set(). The per-thread error-queue buffers (errqueue.c)
 * and chunk cache (ring.c) use one each. Static, ZC_THREAD_KEY(exit).
 */
struct zc_thread_key {
	void (*exit)(void *value);
	pthread_key_t key;
	_Atomic int state;	/* 0: not made yet, 1: made, -1: none to be had */
};
#define ZC_THREAD_KEY(fn)	{ .exit = (fn) }

/*
 * Set this thread's value of k (not NULL), making the key first if need
 * be. False: no key (PTHREAD_KEYS_MAX used up) or no memory for the
 * value; then exit will not run for this thread, and the caller frees
 * what it would have set.
 */
bool zc__thread_key_set(struct zc_thread_key *k, void *value);

/*
 * The library is unloaded (dlclose(), or exit): delete k, so that no
 * thread that exits later calls exit, gone with the library. Called from
 * a destructor, which frees the calling thread's value itself.
 */
void zc__thread_key_unload(struct zc_thread_key *k);

#pragma GCC visibility pop

#endif /* ZC_SYS_H */
