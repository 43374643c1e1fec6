// SPDX-License-Identifier: MIT
/*
 * The fake kernel behind the unit tests: see fake_kernel.h. It follows the
 * kernel's own code: one id per successful MSG_ZEROCOPY call that sent
 * bytes, none for a failed call; error-queue records copied out by
 * put_cmsg() rules (a cmsg that does not fit is cut, cmsg_len keeps the
 * full length, MSG_CTRUNC is set); recv of an empty error queue is EAGAIN.
 */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <time.h>

#include "compat.h"
#include "fake_kernel.h"

struct fake_kernel fk = { .fd = -1 };

ssize_t __real_sendmsg(int fd, const struct msghdr *msg, int flags);
ssize_t __real_recvmsg(int fd, struct msghdr *msg, int flags);
int __real_recvmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags,
		    struct timespec *tmo);
int __real_poll(struct pollfd *fds, nfds_t n, int timeout);

ssize_t __wrap_sendmsg(int fd, const struct msghdr *msg, int flags);
ssize_t __real_send(int fd, const void *buf, size_t len, int flags);
ssize_t __wrap_send(int fd, const void *buf, size_t len, int flags);
ssize_t __wrap_recvmsg(int fd, struct msghdr *msg, int flags);
int __wrap_recvmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags,
		    struct timespec *tmo);
int __wrap_poll(struct pollfd *fds, nfds_t n, int timeout);

void fk_reset(int fd)
{
	memset(&fk, 0, sizeof(fk));
	fk.fd = fd;
	fk.scm_type = 78;
	fk.last_mark = -1;
}

static bool is_zc(const struct fk_rec *r)
{
	return r->ee.ee_errno == 0 && r->ee.ee_origin == SO_EE_ORIGIN_ZEROCOPY;
}

void fk_push(const struct fk_rec *r)
{
	if (fk.coalesce && fk.qlen && is_zc(r) && !r->ctrunc && !r->cut_ee) {
		struct fk_rec *t = &fk.q[(fk.qhead + fk.qlen - 1) % FK_MAX_RECS];

		if (is_zc(t) && !t->ctrunc && !t->cut_ee &&
		    t->level == r->level && t->ee.ee_data + 1 == r->ee.ee_info) {
			t->ee.ee_data = r->ee.ee_data;
			return;
		}
	}
	if (fk.qlen == FK_MAX_RECS)
		return;
	fk.q[(fk.qhead + fk.qlen) % FK_MAX_RECS] = *r;
	fk.qlen++;
}

static void complete(int level, int type, uint32_t lo, uint32_t hi,
		     bool copied)
{
	struct fk_rec r = {
		.level = level,
		.type = type,
		.ee = {
			.ee_errno = 0,
			.ee_origin = SO_EE_ORIGIN_ZEROCOPY,
			.ee_code = copied ? SO_EE_CODE_ZEROCOPY_COPIED : 0,
			.ee_info = lo,
			.ee_data = hi,
		},
	};

	fk_push(&r);
}

void fk_complete(uint32_t lo, uint32_t hi, bool copied)
{
	complete(SOL_IP, IP_RECVERR, lo, hi, copied);
}

void fk_complete6(uint32_t lo, uint32_t hi, bool copied)
{
	complete(SOL_IPV6, IPV6_RECVERR, lo, hi, copied);
}

void fk_foreign(uint32_t err, uint8_t origin)
{
	struct fk_rec r = {
		.level = SOL_IP,
		.type = IP_RECVERR,
		.ee = {
			.ee_errno = err,
			.ee_origin = origin,
			.ee_type = 3,	/* ICMP_DEST_UNREACH */
			.ee_code = 3,	/* ICMP_PORT_UNREACH */
		},
	};

	fk_push(&r);
}

void fk_script_send_errors(const int *errs, unsigned int n)
{
	for (unsigned int i = 0; i < n && fk.nsend_err < FK_MAX_SCRIPT; i++)
		fk.send_err[fk.nsend_err++] = errs[i];
}

unsigned int fk_count_sends(bool zerocopy)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < fk.nsends && i < FK_MAX_SENDS; i++)
		if (!!(fk.sends[i].flags & MSG_ZEROCOPY) == zerocopy)
			n++;
	return n;
}

/*
 * __sock_cmsg_send() with the v5 patch: take up to n zero-copy records off
 * the error queue, in order, leaving the others; write the header and the
 * elements at the start of msg_control; write nothing if none was taken.
 */
static int scm_harvest(const struct msghdr *msg, const struct cmsghdr *c)
{
	size_t dlen = c->cmsg_len - CMSG_LEN(0);
	unsigned int n, i = 0, left;
	unsigned char out[CMSG_LEN(16 * 12)];
	struct cmsghdr h;

	if (!fk.scm || fk.no_sockzc || dlen % 12)
		return -EINVAL;
	n = (unsigned int)(dlen / 12);
	if (n == 0 || n > 16)
		return -EINVAL;
	if (fk.scm_calls < FK_MAX_SENDS)
		fk.scm_asked[fk.scm_calls] = n;
	fk.scm_calls++;

	memset(out, 0, sizeof(out));
	left = fk.qlen;
	for (unsigned int k = 0; k < left; k++) {
		struct fk_rec r = fk.q[fk.qhead];

		fk.qhead = (fk.qhead + 1) % FK_MAX_RECS;
		fk.qlen--;
		if (i < n && r.ee.ee_errno == 0 &&
		    r.ee.ee_origin == SO_EE_ORIGIN_ZEROCOPY) {
			unsigned char *e = out + CMSG_LEN(0) + i * 12;
			uint8_t zc = !(r.ee.ee_code & SO_EE_CODE_ZEROCOPY_COPIED);

			memcpy(e, &r.ee.ee_info, 4);
			memcpy(e + 4, &r.ee.ee_data, 4);
			e[8] = zc;
			memset(e + 9, fk.pad_garbage, 3);
			i++;
			continue;
		}
		fk_push(&r);	/* not ours: back in line, order kept */
	}
	if (!i)
		return 0;
	h.cmsg_len = CMSG_LEN(i * 12);
	h.cmsg_level = SOL_SOCKET;
	h.cmsg_type = fk.scm_type;
	memcpy(out, &h, sizeof(h));
	memcpy(msg->msg_control, out, CMSG_LEN(i * 12));
	fk.scm_taken += i;
	return 0;
}

static int process_cmsgs(const struct msghdr *msg)
{
	unsigned char copy[sizeof(fk.last_ctrl)];
	struct msghdr m = *msg;

	fk.last_mark = -1;
	fk.last_ctrllen = 0;
	if (!msg->msg_control || !msg->msg_controllen)
		return 0;
	/* Walk a copy: the harvest may overwrite the start of the buffer. */
	/* sock_kmalloc() past optmem_max: ENOBUFS, before reading a byte. */
	if (msg->msg_controllen > sizeof(copy))
		return -ENOBUFS;
	memcpy(copy, msg->msg_control, msg->msg_controllen);
	/*
	 * The kernel copies in all of msg_control: branch on every byte, so
	 * that valgrind (valgrind-scm) reports one the library left
	 * undefined, as it would at the real syscall.
	 */
	for (size_t i = 0; i < msg->msg_controllen; i++)
		if (copy[i] == 0xa5)
			fk.ctrl_a5++;
	memcpy(fk.last_ctrl, copy, msg->msg_controllen);
	fk.last_ctrllen = msg->msg_controllen;
	m.msg_control = copy;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
		int ret = 0;

		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == fk.scm_type)
			ret = scm_harvest(msg, c);
		else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_MARK)
			memcpy(&fk.last_mark, CMSG_DATA(c), sizeof(int));
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_MARK &&
		    fk.reject_mark)
			ret = -EINVAL;
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * What a sanitizer's sendmsg() interceptor reads of msg after the call
 * (compiler-rt's read_msghdr_control(), LLVM 14): cmsgs from the start,
 * each cmsg_len rounded up to 8 on, until the next header or its length
 * would pass msg_controllen. A cmsg_len of 0 goes nowhere: it loops for
 * ever there; count it (fk.ctrl_walk_stuck) and stop.
 */
static void ctrl_walk(const struct msghdr *msg)
{
	const unsigned char *p = msg->msg_control, *end;

	if (!p)
		return;
	end = p + msg->msg_controllen;
	while ((size_t)(end - p) >= sizeof(struct cmsghdr)) {
		struct cmsghdr c;
		size_t step;

		memcpy(&c, p, sizeof(c));
		step = (c.cmsg_len + 7) & ~(size_t)7;
		if (step > (size_t)(end - p))
			return;
		if (!step) {
			fk.ctrl_walk_stuck++;
			return;
		}
		p += step;
	}
}

static ssize_t send_fail(struct fk_send *s, int err)
{
	s->ret = -1;
	if (fk.nsends < FK_MAX_SENDS)
		fk.sends[fk.nsends] = *s;
	fk.nsends++;
	errno = err;
	return -1;
}

/* The library's send(2) path (one buffer, no control): the same fake. */
ssize_t __wrap_send(int fd, const void *buf, size_t len, int flags)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (fd != fk.fd)
		return __real_send(fd, buf, len, flags);
	return __wrap_sendmsg(fd, &msg, flags);
}

ssize_t __wrap_sendmsg(int fd, const struct msghdr *msg, int flags)
{
	struct fk_send s = { .flags = flags, .id = -1 };
	int ret;

	if (fd != fk.fd)
		return __real_sendmsg(fd, msg, flags);
	if (fk.before_copy_send && !(flags & MSG_ZEROCOPY)) {
		void (*fn)(void *) = fk.before_copy_send;

		fk.before_copy_send = NULL;
		fn(fk.before_copy_arg);
	}
	for (size_t i = 0; i < msg->msg_iovlen; i++)
		s.len += msg->msg_iov[i].iov_len;
	if (fk.nsend_err && fk.err_before_cmsg &&
	    (!fk.err_only_zc || (flags & MSG_ZEROCOPY))) {
		int err = fk.send_err[0];

		memmove(fk.send_err, fk.send_err + 1,
			--fk.nsend_err * sizeof(fk.send_err[0]));
		return send_fail(&s, err);
	}
	/*
	 * ____sys_sendmsg(): a control length past INT_MAX is ENOBUFS; one
	 * with no buffer is copied from NULL: EFAULT, nothing sent.
	 */
	if (msg->msg_controllen > INT_MAX)
		return send_fail(&s, ENOBUFS);
	if (!msg->msg_control && msg->msg_controllen)
		return send_fail(&s, EFAULT);
	ret = process_cmsgs(msg);
	ctrl_walk(msg);
	if (ret)
		return send_fail(&s, -ret);
	if (fk.nsend_err && (!fk.err_only_zc || (flags & MSG_ZEROCOPY))) {
		int err = fk.send_err[0];

		memmove(fk.send_err, fk.send_err + 1,
			--fk.nsend_err * sizeof(fk.send_err[0]));
		return send_fail(&s, err);
	}
	if (fk.drop_enobufs && (flags & MSG_ZEROCOPY) && s.len) {
		fk.drop_enobufs--;
		s.id = fk.next_id++;
		fk_complete((uint32_t)s.id, (uint32_t)s.id, false);
		return send_fail(&s, fk.drop_err ? fk.drop_err : ENOBUFS);
	}
	s.ret = fk.send_cap && s.len > fk.send_cap ? fk.send_cap : s.len;
	if ((flags & MSG_ZEROCOPY) && s.ret > 0)
		s.id = fk.next_id++;
	if (fk.nsends < FK_MAX_SENDS)
		fk.sends[fk.nsends] = s;
	fk.nsends++;
	return s.ret;
}

/* put_cmsg(): copy what fits, keep the full cmsg_len, flag MSG_CTRUNC. */
static void put_cmsg(struct msghdr *m, size_t *used, int level, int type,
		     const void *data, size_t len, size_t limit)
{
	struct cmsghdr h = {
		.cmsg_len = CMSG_LEN(len),
		.cmsg_level = level,
		.cmsg_type = type,
	};
	size_t room = m->msg_controllen - *used;
	size_t cm = CMSG_LEN(len);
	unsigned char *dst = (unsigned char *)m->msg_control + *used;

	if (limit < room)
		room = limit;
	if (room < sizeof(h)) {
		m->msg_flags |= MSG_CTRUNC;
		return;
	}
	if (room < cm) {
		m->msg_flags |= MSG_CTRUNC;
		cm = room;
	}
	memcpy(dst, &h, sizeof(h));
	memcpy(dst + sizeof(h), data, cm - sizeof(h));
	if (cm == CMSG_LEN(len))	/* whole: the kernel pads to SPACE */
		cm = CMSG_SPACE(len) < room ? CMSG_SPACE(len) : room;
	*used += cm;
}

/* One record into one msghdr, as ip_recv_error()/ipv6_recv_error() do. */
static void deliver(const struct fk_rec *r, struct msghdr *m)
{
	unsigned char errhdr[sizeof(struct sock_extended_err) +
			     sizeof(struct sockaddr_in6)] = { 0 };
	size_t errlen = sizeof(struct sock_extended_err) +
		(r->level == SOL_IPV6 ? sizeof(struct sockaddr_in6)
				      : sizeof(struct sockaddr_in));
	size_t used = 0, limit = (size_t)-1;

	m->msg_flags = MSG_ERRQUEUE;
	memcpy(errhdr, &r->ee, sizeof(r->ee));
	if (r->with_ts) {
		struct timespec ts[3] = { { 1, 2 }, { 3, 4 }, { 5, 6 } };

		put_cmsg(m, &used, SOL_SOCKET, SCM_TIMESTAMPING, ts,
			 sizeof(ts), limit);
	}
	if (r->cut_ee)
		limit = CMSG_LEN(8);
	else if (r->ctrunc)
		limit = CMSG_LEN(sizeof(struct sock_extended_err));
	if (r->ctrunc || r->cut_ee)
		m->msg_flags |= MSG_CTRUNC;
	put_cmsg(m, &used, r->level, r->type, errhdr, errlen, limit);
	m->msg_controllen = used;
	if (m->msg_flags & MSG_CTRUNC)
		fk.ctrunc_delivered++;
}

static int pop_into(struct msghdr *m)
{
	if (!fk.qlen)
		return -1;
	deliver(&fk.q[fk.qhead], m);
	fk.qhead = (fk.qhead + 1) % FK_MAX_RECS;
	fk.qlen--;
	return 0;
}

ssize_t __wrap_recvmsg(int fd, struct msghdr *msg, int flags)
{
	if (fd != fk.fd)
		return __real_recvmsg(fd, msg, flags);
	fk.recvmsg_calls++;
	if ((flags & MSG_ERRQUEUE) && fk.recv_err) {
		errno = fk.recv_err;
		fk.recv_err = 0;
		return -1;
	}
	if (!(flags & MSG_ERRQUEUE) || pop_into(msg)) {
		errno = EAGAIN;
		return -1;
	}
	return 0;
}

int __wrap_recvmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags,
		    struct timespec *tmo)
{
	unsigned int n = 0;

	if (fd != fk.fd)
		return __real_recvmmsg(fd, vec, vlen, flags, tmo);
	fk.recvmmsg_calls++;
	if (!(flags & MSG_ERRQUEUE)) {
		errno = EAGAIN;
		return -1;
	}
	if (fk.recv_err) {
		errno = fk.recv_err;
		fk.recv_err = 0;
		return -1;
	}
	while (n < vlen && !pop_into(&vec[n].msg_hdr))
		vec[n++].msg_len = 0;
	if (!n) {
		errno = EAGAIN;
		return -1;
	}
	return (int)n;
}

/* POLLERR on fk.fd while the queue holds records; other fds are real. */
int __wrap_poll(struct pollfd *fds, nfds_t n, int timeout)
{
	int ours = -1, ready = 0, r;

	fk.poll_calls++;
	for (nfds_t i = 0; i < n; i++) {
		if (fds[i].fd == fk.fd && fk.fd >= 0) {
			ours = (int)i;
			fds[i].fd = -1;	/* real poll skips it */
		}
	}
	if (ours >= 0 && !fk.qlen && timeout && fk.before_poll_sleep) {
		void (*fn)(void *) = fk.before_poll_sleep;

		fk.before_poll_sleep = NULL;
		fn(fk.before_poll_arg);
	}
	if (ours >= 0 && fk.qlen)
		ready = 1;
	r = __real_poll(fds, n, ready ? 0 : timeout);
	fk.last_poll_real = r;
	if (ours >= 0) {
		fds[ours].fd = fk.fd;
		fds[ours].revents = fk.qlen ? POLLERR : 0;
	}
	if (r < 0)
		return r;
	return r + ready;
}
