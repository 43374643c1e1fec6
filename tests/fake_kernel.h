/* SPDX-License-Identifier: MIT */
/*
 * A fake kernel for unit tests: the test binary links the library's
 * internal static copy with -Wl,--wrap=sendmsg,--wrap=recvmsg,
 * --wrap=recvmmsg,--wrap=poll, and these wrappers answer for one socket
 * (fk.fd) exactly as the kernel would, from state the test controls. Calls
 * on any other fd go to the real syscall.
 */
#ifndef FAKE_KERNEL_H
#define FAKE_KERNEL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <linux/errqueue.h>

#define FK_MAX_RECS	4096
#define FK_MAX_SCRIPT	256
#define FK_MAX_SENDS	8192

struct fk_rec {
	int level;			/* SOL_IP or SOL_IPV6 */
	int type;			/* IP_RECVERR or IPV6_RECVERR */
	struct sock_extended_err ee;
	bool ctrunc;			/* deliver cut short, with MSG_CTRUNC */
	bool cut_ee;			/* ... and cut inside the ee itself */
	bool with_ts;			/* add an SCM_TIMESTAMPING cmsg */
};

struct fk_send {
	int flags;			/* flags sendmsg was called with */
	size_t len;			/* bytes the caller offered */
	ssize_t ret;			/* what the fake returned */
	int64_t id;			/* zero-copy id taken, or -1 */
};

struct fake_kernel {
	int fd;				/* the socket we answer for; -1: none */
	uint32_t next_id;		/* the socket's zerocopy counter */
	/* Error queue, FIFO. */
	struct fk_rec q[FK_MAX_RECS];
	unsigned int qhead, qlen;
	/* Scripted errors for the next sendmsg calls (0: answer normally). */
	int send_err[FK_MAX_SCRIPT];
	unsigned int nsend_err;
	/* Only MSG_ZEROCOPY calls take the next scripted error. */
	bool err_only_zc;
	/*
	 * The next n MSG_ZEROCOPY sends take an id, are dropped by the device
	 * queue (their completion is queued at once) and fail with ENOBUFS,
	 * as UDP does with IP_RECVERR set.
	 */
	unsigned int drop_enobufs;
	/* ... failing with this errno instead (0: ENOBUFS); netfilter's
	 * drop is EPERM, whatever IP_RECVERR says. */
	int drop_err;
	/* Cap on the bytes one sendmsg accepts (0: all), for partial sends. */
	size_t send_cap;
	/* Log of sendmsg calls. */
	struct fk_send sends[FK_MAX_SENDS];
	unsigned int nsends;
	unsigned int recvmmsg_calls, recvmsg_calls, poll_calls;

	/*
	 * SCM_ZC_NOTIFICATION as the v5 series defines it (ABI.md section 2).
	 * With scm false the type is unknown: EINVAL, as on a mainline kernel.
	 */
	bool scm;
	int scm_type;			/* 78 unless set */
	bool no_sockzc;			/* the socket lacks SO_ZEROCOPY */
	bool err_before_cmsg;		/* scripted errors hit before cmsgs */
	unsigned char pad_garbage;	/* written into elements' padding */
	unsigned int scm_calls;		/* sendmsg calls that carried it */
	unsigned int scm_asked[FK_MAX_SENDS];	/* n asked, per such call */
	unsigned int scm_taken;		/* records handed over in all */
	/* The control buffer of the last sendmsg, as the kernel got it. */
	unsigned char last_ctrl[1024];
	size_t last_ctrllen;
	unsigned long ctrl_a5;		/* 0xa5 control bytes seen (a use) */
	/*
	 * Calls whose control buffer, as the kernel left it, walked by
	 * cmsg_len as the sanitizers' sendmsg() interceptors walk it after
	 * the call (read_msghdr_control() in compiler-rt), met a cmsg_len
	 * of 0 before its end: there they loop for ever.
	 */
	unsigned long ctrl_walk_stuck;
	int last_mark;			/* SO_MARK of the last call, or -1 */
	bool reject_mark;		/* SO_MARK is EINVAL (not permitted) */
	/*
	 * Called once, then cleared, at the next call without MSG_ZEROCOPY:
	 * another thread's work (the reap side) landing inside a send.
	 */
	void (*before_copy_send)(void *arg);
	void *before_copy_arg;
	/*
	 * Called once, then cleared, when a poll() that watches the socket
	 * is about to sleep: the send side's work landing while the reaper
	 * sleeps. last_poll_real: what the real poll() of the other fds
	 * returned at the last poll() (1: the reaper's eventfd was written).
	 */
	void (*before_poll_sleep)(void *arg);
	void *before_poll_arg;
	int last_poll_real;
	/*
	 * Coalesce as the kernel does (ABI.md section 1): a zero-copy
	 * record pushed while the newest queued one is a zero-copy record
	 * of the same level ending at its lo - 1 extends that one, which
	 * keeps its COPIED bit. Off unless a test asks.
	 */
	bool coalesce;
	/* Error-queue reads answered with MSG_CTRUNC. */
	unsigned int ctrunc_delivered;
	/* The next error-queue read fails with this errno (0: none). */
	int recv_err;
};

extern struct fake_kernel fk;

void fk_reset(int fd);
/* Queue a zero-copy completion of [lo, hi]. */
void fk_complete(uint32_t lo, uint32_t hi, bool copied);
/* The same at IPv6 level. */
void fk_complete6(uint32_t lo, uint32_t hi, bool copied);
/* Queue a foreign record (an ICMP error). */
void fk_foreign(uint32_t err, uint8_t origin);
/* Queue an arbitrary record. */
void fk_push(const struct fk_rec *r);
/* Next sendmsg calls fail with these errno values, in order. */
void fk_script_send_errors(const int *errs, unsigned int n);
/* Number of sendmsg calls with/without MSG_ZEROCOPY. */
unsigned int fk_count_sends(bool zerocopy);

#endif /* FAKE_KERNEL_H */
