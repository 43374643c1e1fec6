// SPDX-License-Identifier: MIT
/*
 * libFuzzer harness: the library's promise against a reference model.
 *
 * The input drives one socket, over the fake kernel (tests/fake_kernel.c,
 * -Wl,--wrap): zc_send()/zc_sendmsg() of random sizes and flags that the
 * fake accepts, refuses (EAGAIN, ENOBUFS, EMSGSIZE, ECONNREFUSED, ...),
 * takes in part (TCP), or drops after the id was taken (UDP: EPERM,
 * ENOBUFS with IP_RECVERR, EMSGSIZE, EINVAL...), ids taken as ABI.md
 * section 1 says; zero-copy records released in any grouping and order
 * (ranges, coalesced with the newest queued one or not, COPIED or not,
 * IPv4 or IPv6 level, cut short with MSG_CTRUNC), foreign records between
 * them, ranges far outside the window; reaps with zc_completions() or
 * zc_wait() (timeout 0 or 1) of any max; zc_foreign(); allocation
 * failures (tests/fail_alloc.c); a reap inside a send's copy (the reaper
 * thread's turn) and records released while a blocking send waits for
 * one; then everything released, drained, zc_close().
 *
 * The model (struct model) abort()s when the promise breaks: every send
 * that returned >= 0 completes exactly once, with its cookie and byte
 * count, in send order, never before the records of the ids its call took
 * were queued, COPIED as its record said (ZC_LIB_COPY | ZC_COPIED for one
 * that took no id); a send that failed sent nothing and never completes;
 * errors only where the man pages allow them (-EMSGSIZE after MSG_CTRUNC,
 * -ENOMEM after an allocation failed, -ENOBUFS at max_inflight...);
 * zc_inflight() exact; nothing lost after the final drain.
 *
 * Input: 8 bytes of configuration (see setup()), then operations, one
 * byte each plus their arguments; a byte past the end reads as 0.
 * ZC_MODEL_TRACE=1 prints every step as the C of a unit test (fk_*()
 * calls, zc_*() calls and what they returned): the way from a crash file
 * to a cmocka test in tests/test-unit.c or tests/test-scm.c.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "fake_kernel.h"
#include "fail_alloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define MAX_OPS		600
#define MAX_ATTEMPTS	2048
#define ID_SLOTS	16384		/* > FK_MAX_SENDS: ids of one input */

static char payload[65536];

enum { ID_FREE, ID_TAKEN, ID_REPORTED };

struct attempt {
	uint64_t cookie;
	int64_t ret;		/* what the send returned */
	uint32_t bytes;
	bool own_id;		/* a MSG_ZEROCOPY sendmsg that sent took id */
	uint32_t id;
	uint32_t nextra;	/* ids dropped sends of the call took */
	uint32_t extra[8];
	bool done;
};

static struct model {
	const uint8_t *p;
	size_t n;
	const uint8_t *input;	/* the whole input, for the report */
	size_t size;
	bool trace;
	int fd;
	struct zc_sock *zs;
	int backend, type, family;
	bool recverr;
	uint32_t max_inflight;
	uint32_t base;		/* the first kernel id */
	uint8_t id_state[ID_SLOTS];
	uint8_t id_copied[ID_SLOTS];
	unsigned int synced;	/* fk.sends entries seen */
	struct attempt att[MAX_ATTEMPTS];
	unsigned int natt;
	unsigned int ok[MAX_ATTEMPTS];	/* attempts that returned >= 0 */
	unsigned int nok, ndone;
	uint32_t foreign_seq, foreign_seen;
	unsigned int emsgsize;	/* -EMSGSIZE returned */
	bool alloc_failed;	/* some allocation failed so far */
	bool maybe_broken;	/* -ENOMEM from a reap after that */
	int in_call;		/* attempt being sent, or -1 */
	unsigned int op;
} m;

static __attribute__((format(printf, 1, 2))) void trace(const char *fmt, ...)
{
	va_list ap;

	if (!m.trace)
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
}

/*
 * stderr, and with ZC_MODEL_REPORTS=file one line more there: the message
 * and the input in hex (libFuzzer's -fork mode keeps no job's output).
 */
static __attribute__((noreturn, format(printf, 1, 2))) void
violation(const char *fmt, ...)
{
	const char *rep = getenv("ZC_MODEL_REPORTS");
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "fuzz-model: VIOLATION at op %u: %s (zc_last_error: "
		"\"%s\")\n", m.op, msg, zc_last_error());
	if (rep) {
		FILE *f = fopen(rep, "a");

		if (f) {
			fprintf(f, "op %u: %s |", m.op, msg);
			for (size_t i = 0; i < m.size; i++)
				fprintf(f, "%02x", m.input[i]);
			fprintf(f, "\n");
			fclose(f);
		}
	}
	abort();
}

static unsigned int in8(void)
{
	if (!m.n)
		return 0;
	m.n--;
	return *m.p++;
}

static unsigned int in16(void)
{
	unsigned int v = in8();

	return v | in8() << 8;
}

static uint8_t *id_st(uint32_t id)
{
	uint32_t k = id - m.base;

	if (k >= ID_SLOTS)
		violation("kernel id %u beyond the model's room", id);
	return &m.id_state[k];
}

/* New entries of the fake's send log: the ids they took. */
static void sync_kernel(void)
{
	for (; m.synced < fk.nsends && m.synced < FK_MAX_SENDS; m.synced++) {
		const struct fk_send *s = &fk.sends[m.synced];

		if (s->id < 0)
			continue;
		/* A send that failed after taking its id queued its record. */
		*id_st((uint32_t)s->id) = s->ret < 0 ? ID_REPORTED : ID_TAKEN;
	}
}

/* ---- the kernel's side: records released ---- */

static void push_foreign_rec(unsigned int how);

static void push_zc(uint32_t lo, uint32_t hi, bool copied, bool v6,
		    bool ctrunc)
{
	struct fk_rec r = {
		.level = v6 ? SOL_IPV6 : SOL_IP,
		.type = v6 ? IPV6_RECVERR : IP_RECVERR,
		.ee = {
			.ee_origin = SO_EE_ORIGIN_ZEROCOPY,
			.ee_code = copied ? SO_EE_CODE_ZEROCOPY_COPIED : 0,
			.ee_info = lo,
			.ee_data = hi,
		},
		.ctrunc = ctrunc,
	};
	const struct fk_rec *t;

	if (fk.qlen == FK_MAX_RECS)
		violation("fake queue full");
	fk_push(&r);
	trace("\tfk_push(&(struct fk_rec){ .level = %s, .type = %s, "
	      ".ee = { .ee_origin = SO_EE_ORIGIN_ZEROCOPY, .ee_code = %d, "
	      ".ee_info = %#x, .ee_data = %#x }%s });\n",
	      v6 ? "SOL_IPV6" : "SOL_IP", v6 ? "IPV6_RECVERR" : "IP_RECVERR",
	      copied, lo, hi, ctrunc ? ", .ctrunc = true" : "");
	/* Coalesced or not, the newest record now holds lo..hi. */
	t = &fk.q[(fk.qhead + fk.qlen - 1) % FK_MAX_RECS];
	for (uint32_t id = lo;; id++) {
		uint32_t k = id - m.base;

		if (k < ID_SLOTS) {
			m.id_state[k] = ID_REPORTED;
			m.id_copied[k] = t->ee.ee_code & SO_EE_CODE_ZEROCOPY_COPIED;
		}
		if (id == hi)
			break;
	}
}

/* The k-th id (mod their number) taken and not yet reported, or false. */
static bool pick_pending(unsigned int k, uint32_t *out)
{
	uint32_t next = fk.next_id, cnt = 0;

	for (uint32_t id = m.base; id != next; id++)
		cnt += *id_st(id) == ID_TAKEN;
	if (!cnt)
		return false;
	k %= cnt;
	for (uint32_t id = m.base; id != next; id++)
		if (*id_st(id) == ID_TAKEN && !k--) {
			*out = id;
			return true;
		}
	return false;
}

/* Release a run of up to len pending ids from the one picked by sel. */
static bool release(unsigned int sel, unsigned int len, bool copied, bool v6,
		    bool ctrunc)
{
	uint32_t lo, hi;

	sync_kernel();
	if (!pick_pending(sel, &lo))
		return false;
	hi = lo;
	while (len-- > 1 && hi + 1 != fk.next_id && *id_st(hi + 1) == ID_TAKEN)
		hi++;
	push_zc(lo, hi, copied, v6 && m.family == AF_INET6, ctrunc);
	return true;
}

static void push_foreign(unsigned int how)
{
	if ((how & 0xe0) == 0xe0) {
		/* Not a record: the next read of the queue fails. */
		fk.recv_err = ENOMEM;
		trace("\tfk.recv_err = ENOMEM;\n");
		return;
	}
	push_foreign_rec(how);
}

static void push_foreign_rec(unsigned int how)
{
	bool v6 = m.family == AF_INET6 && (how & 1);
	struct fk_rec r = {
		.level = v6 ? SOL_IPV6 : SOL_IP,
		.type = v6 ? IPV6_RECVERR : IP_RECVERR,
		.ee = {
			.ee_errno = how & 2 ? ENOMSG : ECONNREFUSED,
			.ee_origin = how & 2 ? SO_EE_ORIGIN_TIMESTAMPING :
				     v6 ? SO_EE_ORIGIN_ICMP6 :
				     SO_EE_ORIGIN_ICMP,
			.ee_type = 3, .ee_code = 3,
			.ee_info = ++m.foreign_seq,
		},
		.with_ts = how & 2,
		.ctrunc = (how & 0x1c) == 4,
		.cut_ee = (how & 0x1c) == 8,
	};

	if (fk.qlen == FK_MAX_RECS)
		return;
	fk_push(&r);
	trace("\tfk_push(&(struct fk_rec){ .level = %s, .type = %s, "
	      ".ee = { .ee_errno = %u, .ee_origin = %u, .ee_type = 3, "
	      ".ee_code = 3, .ee_info = %u }, .with_ts = %d, .ctrunc = %d, "
	      ".cut_ee = %d });\n", v6 ? "SOL_IPV6" : "SOL_IP",
	      v6 ? "IPV6_RECVERR" : "IP_RECVERR", r.ee.ee_errno,
	      r.ee.ee_origin, r.ee.ee_info, r.with_ts, r.ctrunc, r.cut_ee);
}

/* ---- the reap side ---- */

static void check_completion(const struct zc_completion *c)
{
	const struct attempt *a;

	for (unsigned int i = 0; i < m.natt; i++) {
		if (m.att[i].cookie != c->cookie)
			continue;
		if ((int)i == m.in_call)
			violation("completion of cookie %#llx before its "
				  "send returned", (unsigned long long)c->cookie);
		if (m.att[i].ret < 0)
			violation("completion of cookie %#llx, whose send "
				  "failed (%lld)", (unsigned long long)c->cookie,
				  (long long)m.att[i].ret);
		if (m.att[i].done)
			violation("second completion of cookie %#llx",
				  (unsigned long long)c->cookie);
		break;
	}
	if (m.ndone >= m.nok)
		violation("completion of cookie %#llx, which no send left "
			  "to complete", (unsigned long long)c->cookie);
	a = &m.att[m.ok[m.ndone]];
	if (a->cookie != c->cookie)
		violation("completion of cookie %#llx out of order: send "
			  "order wants %#llx next",
			  (unsigned long long)c->cookie,
			  (unsigned long long)a->cookie);
	if (c->bytes != a->bytes)
		violation("cookie %#llx: bytes %u, its send returned %u",
			  (unsigned long long)c->cookie, c->bytes, a->bytes);
	if (a->own_id && *id_st(a->id) != ID_REPORTED)
		violation("cookie %#llx completed early: its id %u is not "
			  "reported yet", (unsigned long long)c->cookie, a->id);
	for (uint32_t i = 0; i < a->nextra; i++)
		if (*id_st(a->extra[i]) != ID_REPORTED)
			violation("cookie %#llx completed before the record of "
				  "id %u its call used", (unsigned long long)
				  c->cookie, a->extra[i]);
	if (a->own_id) {
		uint32_t want = m.id_copied[a->id - m.base] ? ZC_COPIED : 0;

		if (c->flags != want)
			violation("cookie %#llx (id %u): flags %#x, its record "
				  "says %#x", (unsigned long long)c->cookie,
				  a->id, c->flags, want);
	} else if (c->flags != (ZC_COPIED | ZC_LIB_COPY)) {
		violation("cookie %#llx took no id: flags %#x, not "
			  "ZC_COPIED | ZC_LIB_COPY", (unsigned long long)
			  c->cookie, c->flags);
	}
	m.att[m.ok[m.ndone]].done = true;
	m.ndone++;
}

/*
 * A reap's error: what the man pages allow, else a violation. read_err:
 * the error of a read of the queue that failed in this call.
 */
static void reap_error(const char *fn, int r, bool failed_now, int read_err)
{
	/* zc_completions(3): a failed read, with nothing ready. */
	if (read_err && r == -read_err)
		return;
	if (r == -EMSGSIZE && m.emsgsize < fk.ctrunc_delivered) {
		m.emsgsize++;
		return;
	}
	/*
	 * Now, or a broken socket: marks_make() failed in an earlier call
	 * (a send's harvest applies ranges too).
	 */
	if (r == -ENOMEM && (failed_now || m.alloc_failed)) {
		m.maybe_broken = true;
		return;
	}
	/* zc_wait(3): a signal (libFuzzer's -timeout is a SIGALRM). */
	if (r == -EINTR && !strcmp(fn, "zc_wait"))
		return;
	violation("%s returned %d (%s)", fn, r, strerror(-r));
}

static int reap(unsigned int how, unsigned int max)
{
	struct zc_completion c[80];
	const char *fn = how & 1 ? "zc_wait" : "zc_completions";
	unsigned int before = m.alloc_failed ? fa_failed() : 0;
	int r, read_err;

	sync_kernel();
	if (max > 80)
		max = 80;
	memset(c, 0xa5, sizeof(c));
	read_err = fk.recv_err;
	if (how & 1)
		r = zc_wait(m.zs, c, max, how & 2 ? 1 : 0);
	else
		r = zc_completions(m.zs, c, max);
	trace("\tr = %s(zs, c, %u%s); /* %d */\n", fn, max,
	      how & 1 ? (how & 2 ? ", 1" : ", 0") : "", r);
	if (r < 0) {
		reap_error(fn, r, fa_failed() > before,
			   fk.recv_err ? 0 : read_err);
		return r;
	}
	if ((unsigned int)r > max)
		violation("%s returned %d for max %u", fn, r, max);
	for (int i = 0; i < r; i++) {
		trace("\t/* cookie %#llx bytes %u flags %#x */\n",
		      (unsigned long long)c[i].cookie, c[i].bytes, c[i].flags);
		check_completion(&c[i]);
	}
	return r;
}

static void foreign(unsigned int max)
{
	struct zc_errrec rec[8];
	int r;

	if (max > 8)
		max = 8;
	int read_err = fk.recv_err;

	r = zc_foreign(m.zs, rec, max);
	trace("\tr = zc_foreign(zs, rec, %u); /* %d */\n", max, r);
	if (r < 0) {
		if (r == -ENOMEM && m.alloc_failed)
			return;
		if (read_err && !fk.recv_err && r == -read_err)
			return;
		violation("zc_foreign returned %d", r);
	}
	for (int i = 0; i < r; i++) {
		if (rec[i].ee_errno == 0 &&
		    rec[i].ee_origin == SO_EE_ORIGIN_ZEROCOPY)
			violation("zc_foreign returned a zero-copy completion "
				  "[%u, %u]", rec[i].ee_info, rec[i].ee_data);
		if (!rec[i].ee_info)
			continue;	/* cut before ee_info */
		if (rec[i].ee_info <= m.foreign_seen ||
		    rec[i].ee_info > m.foreign_seq)
			violation("zc_foreign: record %u after %u (of %u)",
				  rec[i].ee_info, m.foreign_seen,
				  m.foreign_seq);
		m.foreign_seen = rec[i].ee_info;
	}
}

/* ---- hooks: the other thread's turn inside a call ---- */

static unsigned int hook_sel, hook_len;

/* A reap inside the send's copy, as the reaper thread may run it. */
static void hook_reap(void *arg)
{
	(void)arg;
	trace("\t/* inside the copy's sendmsg: */\n");
	reap(0, 16);
}

/*
 * A blocking send waits for a record (poll for POLLERR): the kernel
 * reports one of the pending ids. Armed again, so that each slice sees
 * one (the wait stays short and deterministic).
 */
static void hook_poll(void *arg)
{
	(void)arg;
	trace("\t/* while a poll() sleeps: */\n");
	release(hook_sel++, hook_len, false, false, false);
	fk.before_poll_sleep = hook_poll;
}

/* ---- the send side ---- */

static const int send_errs[] = {
	EAGAIN, ENOBUFS, EMSGSIZE, ECONNREFUSED, EPIPE, EINTR, ECONNRESET,
	EPERM, EINVAL, ENETUNREACH,
};
/* UDP drops after the skb was built: the id stays used (ABI.md). */
static const int drop_errs[] = { EPERM, EMSGSIZE, EINVAL, ENETDOWN, EIO,
				 ENOBUFS };

static void do_send(unsigned int opb)
{
	unsigned int sz = in16(), how = in8(), fault = in8(), fa = 0;
	int errs[3] = { 0 }, nerr = 0, flags = 0, cmsg_mark = 0;
	unsigned int first = fk.nsends, fa_before, fa_after;
	struct attempt *a;
	size_t len;
	ssize_t r;
	int64_t pos = 0;

	if (m.natt == MAX_ATTEMPTS)
		return;
	len = (opb & 0x10) ? sz % 64 : sz;	/* short ones too */
	if (how & 1)
		flags |= MSG_DONTWAIT;
	if (how & 2)
		flags |= MSG_NOSIGNAL;
	/* The kernel's answer. */
	switch (fault & 7) {
	case 0: case 1: case 2:
		break;			/* takes it all */
	case 3:				/* errors, in turn */
		nerr = 1 + (fault >> 6) % 3;
		for (int i = 0; i < nerr; i++)
			errs[i] = send_errs[in8() % (sizeof(send_errs) /
						     sizeof(send_errs[0]))];
		fk_script_send_errors(errs, (unsigned int)nerr);
		fk.err_only_zc = fault & 8;
		break;
	case 4:				/* TCP: takes part */
		if (m.type == SOCK_STREAM)
			fk.send_cap = 1 + in16() % 32768;
		break;
	case 5:				/* UDP: dropped after its id */
		if (m.type == SOCK_DGRAM) {
			fk.drop_enobufs = 1 + ((fault >> 4) & 1);
			fk.drop_err = drop_errs[(fault >> 5) % (m.recverr ? 6 : 5)];
		}
		break;
	case 6:				/* the reap side runs in the copy */
		fk.before_copy_send = hook_reap;
		break;
	case 7:				/* an allocation fails */
		fa = 1 + in8();
		break;
	}
	if (how & 4) {
		hook_sel = in8();
		hook_len = 1 + in8() % 8;
		fk.before_poll_sleep = hook_poll;
	}
	if (fk.before_copy_send)
		trace("\tfk.before_copy_send = reap_now;\n");
	cmsg_mark = (how & 0x18) == 0x18;

	a = &m.att[m.natt];
	memset(a, 0, sizeof(*a));
	a->cookie = 0xc0de000000000000ull | m.natt;
	m.in_call = (int)m.natt;
	m.natt++;
	trace("\t/* send %u: fault %u errs %d:%d,%d,%d cap %zu drop %u/%d */\n",
	      m.natt - 1, fault & 7, nerr, errs[0], nerr > 1 ? errs[1] : 0,
	      nerr > 2 ? errs[2] : 0, fk.send_cap, fk.drop_enobufs,
	      fk.drop_err);
	if (fa) {
		fa_fail((fa >> 1) & 3, 1 + (fa & 1));
		trace("\tfa_fail(%u, %u);\n", (fa >> 1) & 3, 1 + (fa & 1));
		m.alloc_failed = true;
	}
	fa_before = fa_failed();
	if (how & 0x20 || cmsg_mark) {
		struct iovec iov[3];
		union {
			char buf[CMSG_SPACE(sizeof(int))];
			struct cmsghdr align;
		} u;
		struct msghdr msg = { .msg_iov = iov };
		size_t left = len;

		pos = (int64_t)(in8() * 97);
		for (int i = 0; i < 3 && (i == 0 || left); i++) {
			size_t part = i == 2 ? left : left / 2;

			iov[i].iov_base = payload + pos;
			iov[i].iov_len = part;
			left -= part;
			msg.msg_iovlen = (size_t)i + 1;
		}
		if (cmsg_mark) {
			struct cmsghdr *c;
			int mark = 7;

			memset(&u, 0, sizeof(u));
			msg.msg_control = u.buf;
			msg.msg_controllen = sizeof(u.buf);
			c = CMSG_FIRSTHDR(&msg);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SO_MARK;
			c->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(c), &mark, sizeof(mark));
		}
		r = zc_sendmsg(m.zs, &msg, flags, a->cookie);
		trace("\tr = zc_sendmsg(zs, &msg /* %zu bytes in %zu iovecs%s */"
		      ", %#x, %#llx); /* %zd */\n", len, msg.msg_iovlen,
		      cmsg_mark ? ", SO_MARK" : "", flags,
		      (unsigned long long)a->cookie, r);
	} else {
		r = zc_send(m.zs, payload, len, flags, a->cookie);
		trace("\tr = zc_send(zs, buf, %zu, %#x, %#llx); /* %zd */\n",
		      len, flags, (unsigned long long)a->cookie, r);
	}
	m.in_call = -1;
	fa_after = fa_failed();
	fa_fail(0, 0);
	sync_kernel();
	a->ret = r;

	/* What the fake did in the call. */
	{
		ssize_t sent = 0;
		unsigned int nsent = 0;

		for (unsigned int i = first; i < fk.nsends && i < FK_MAX_SENDS;
		     i++) {
			const struct fk_send *s = &fk.sends[i];

			if (s->ret > 0) {
				sent += s->ret;
				nsent++;
			}
			if (s->id < 0)
				continue;
			if (s->ret > 0) {
				a->own_id = true;
				a->id = (uint32_t)s->id;
			} else if (a->nextra < 8) {
				a->extra[a->nextra++] = (uint32_t)s->id;
			}
		}
		if (r < 0 && sent)
			violation("send failed (%zd) but sendmsg took %zd bytes",
				  r, sent);
		if (r >= 0 && (sent != r || nsent > 1))
			violation("send returned %zd, sendmsg took %zd bytes in "
				  "%u calls", r, sent, nsent);
	}
	if (r >= 0) {
		a->bytes = (uint32_t)r;
		m.ok[m.nok++] = m.natt - 1;
	} else {
		bool scripted = false;

		for (int i = 0; i < nerr; i++)
			scripted |= r == -errs[i];
		if (fk.drop_err && r == -fk.drop_err)
			scripted = true;
		if (r == -ENOMEM && fa_after > fa_before)
			scripted = true;
		if (r == -ENOBUFS &&
		    (zc_inflight(m.zs) == m.max_inflight ||
		     strstr(zc_last_error(), "await reaping")))
			scripted = true;
		if (!scripted)
			violation("send failed with %zd, which nothing explains",
				  r);
	}
	/* What was not used stays for no one. */
	fk.nsend_err = 0;
	fk.err_only_zc = false;
	fk.send_cap = 0;
	fk.drop_enobufs = 0;
	fk.drop_err = 0;
	fk.before_copy_send = NULL;
	fk.before_poll_sleep = NULL;
}

/* ---- one input ---- */

/*
 * Configuration, 8 bytes: backend and socket; max_inflight; copy_below;
 * options; the first kernel id; harvest_every; fake switches.
 */
static int setup(void)
{
	unsigned int b0 = in8(), b1 = in8(), b2 = in8(), b3 = in8();
	unsigned int b4 = in8(), b5 = in8(), b6 = in8();
	struct zc_opts o = { .sz = sizeof(o) };
	int one = 1, ret;

	(void)in8();	/* spare */
	m.backend = b0 & 1 ? ZC_BACKEND_SCM : ZC_BACKEND_ERRQUEUE;
	m.type = b0 & 2 ? SOCK_DGRAM : SOCK_STREAM;
	m.family = b0 & 4 ? AF_INET6 : AF_INET;
	m.recverr = m.type == SOCK_DGRAM && (b0 & 8);
	m.max_inflight = 1u << (b1 % 12);
	o.backend = m.backend;
	o.max_inflight = m.max_inflight;
	o.copy_below = b2 % 4 == 0 ? 1 : b2 % 4 == 1 ? 0 : 1 + b2 * 64;
	o.flags = b3 & 1 ? ZC_OPT_NO_ADAPT : 0;
	o.harvest_every = b5 % 6;
	m.fd = socket(m.family, m.type, 0);
	if (m.fd < 0)
		return -1;
	if (m.recverr) {
		if (m.family == AF_INET6)
			setsockopt(m.fd, SOL_IPV6, IPV6_RECVERR, &one,
				   sizeof(one));
		else
			setsockopt(m.fd, SOL_IP, IP_RECVERR, &one, sizeof(one));
	}
	fk_reset(m.fd);
	fk.scm = m.backend == ZC_BACKEND_SCM;
	fk.coalesce = b6 & 1;
	fk.err_before_cmsg = b6 & 2;
	fk.pad_garbage = (uint8_t)(b6 & 4 ? 0xee : 0);
	ret = zc_open(m.fd, &o, &m.zs);
	trace("/* %s %s%s%s, max_inflight %u, copy_below %u, flags %#x, "
	      "harvest_every %u, coalesce %d, err_before_cmsg %d */\n",
	      m.backend == ZC_BACKEND_SCM ? "scm" : "errqueue",
	      m.type == SOCK_DGRAM ? "udp" : "tcp",
	      m.family == AF_INET6 ? "6" : "4",
	      m.recverr ? " IP_RECVERR" : "", o.max_inflight, o.copy_below,
	      o.flags, o.harvest_every, fk.coalesce, fk.err_before_cmsg);
	if (ret) {
		fprintf(stderr, "fuzz-model: zc_open: %s\n", zc_last_error());
		abort();
	}
	/* Ids near the wrap: the counter is 32 bits. */
	m.base = 0;
	if (b4 & 1) {
		m.base = 0xffffffffu - (b4 >> 1);
		m.zs->zc_next = m.zs->zc_head = m.base;
		atomic_store(&m.zs->done_to, m.base);
		atomic_store(&m.zs->zc_issued, m.base);
		if (m.backend == ZC_BACKEND_SCM)
			((struct scm_priv *)m.zs->backend_priv)->ids_harvested =
				m.base;
		fk.next_id = m.base;
	}
	trace("/* first id %#x */\n", m.base);
	return 0;
}

/* Release everything, reap until nothing moves, check nothing is lost. */
static void drain(void)
{
	unsigned int quiet = 0;

	trace("\t/* drain */\n");
	fa_fail(0, 0);
	fk.recv_err = 0;
	while (release(0, 1 + in8() % 64, in8() & 1, false, false))
		;
	for (int round = 0; round < 200 && quiet < 4; round++) {
		unsigned int before = m.ndone;
		int r = reap(0, 64);

		foreign(8);
		if (r == -ENOMEM && m.maybe_broken && round > 20)
			break;
		if (m.ndone == before && r >= 0 && !fk.qlen)
			quiet++;
		else
			quiet = 0;
	}
	if (m.ndone != m.nok) {
		struct zc_completion c;

		if (m.maybe_broken && zc_completions(m.zs, &c, 1) == -ENOMEM)
			return;	/* a broken socket, as documented */
		violation("after the drain %u of %u sends completed; next "
			  "cookie %#llx (id %u, own %d)", m.ndone, m.nok,
			  (unsigned long long)m.att[m.ok[m.ndone]].cookie,
			  m.att[m.ok[m.ndone]].id, m.att[m.ok[m.ndone]].own_id);
	}
	if (zc_inflight(m.zs))
		violation("after the drain zc_inflight() is %u",
			  zc_inflight(m.zs));
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	setenv("ZCNOTIFY_SCM_PROBE", "yes", 1);
	unsetenv("ZCNOTIFY_BACKEND");
	unsetenv("ZCNOTIFY_SCM_TYPE");
	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (char)i;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool init;

	if (!init) {
		LLVMFuzzerInitialize(NULL, NULL);
		init = true;
	}
	/*
	 * Every input as in a new thread: no chunk in this thread's cache,
	 * no error-queue buffers (made by its first read), so that an
	 * allocation failure hits the same allocation in a replay.
	 */
	zc__chunk_cache_flush();
	free(zc__tl_eq);
	zc__tl_eq = NULL;
	memset(&m, 0, sizeof(m));
	m.p = m.input = data;
	m.n = m.size = size;
	m.in_call = -1;
	m.trace = getenv("ZC_MODEL_TRACE") != NULL;
	if (size < 8 || setup())
		return 0;
	for (m.op = 0; m.n && m.op < MAX_OPS &&
	     fk.nsends < FK_MAX_SENDS - 64; m.op++) {
		unsigned int op = in8();
		unsigned int before = m.nok - m.ndone;

		switch (op % 8) {
		case 0: case 1: case 2:
			do_send(op);
			break;
		case 3: {
			unsigned int a = in8(), b = in8();

			release(a, 1 + b % 16, b & 0x10, b & 0x20,
				(b & 0xc0) == 0xc0);
			break;
		}
		case 4: {
			unsigned int a = in8();

			if (a & 0x80) {
				fa_fail((a >> 4) & 7, 1);
				trace("\tfa_fail(%u, 1);\n", (a >> 4) & 7);
				m.alloc_failed = true;
			}
			reap(a & 3, (a >> 2) % 20);
			fa_fail(0, 0);
			break;
		}
		case 5:
			push_foreign(in8());
			break;
		case 6:
			foreign(in8() % 9);
			break;
		case 7: {
			/*
			 * A range far from any id of ours: to be ignored. Not
			 * for scm, whose count of ids out takes every range
			 * harvested as ours (left alone: no kernel sends one).
			 */
			uint32_t lo = fk.next_id + 0x40000000u + in16();

			if (m.backend == ZC_BACKEND_SCM)
				break;
			push_zc(lo, lo + in8(), false, false, false);
			/* Not ours: the model knows none of these ids. */
			break;
		}
		}
		(void)before;
		if (zc_inflight(m.zs) != m.nok - m.ndone)
			violation("zc_inflight() %u, the model has %u unreaped",
				  zc_inflight(m.zs), m.nok - m.ndone);
	}
	drain();
	zc_close(m.zs);
	close(m.fd);
	fk_reset(-1);
	return 0;
}
