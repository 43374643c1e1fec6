// SPDX-License-Identifier: MIT
/*
 * Unit tests of the core against the fake kernel (fake_kernel.c): exact
 * kernel answers for coalesced, out-of-order and wrapping ranges,
 * MSG_CTRUNC, foreign records, ENOBUFS and bad options.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "internal.h"
#include "fake_kernel.h"
#include "fail_alloc.h"
#include "errqueue.h"

static char buf[65536];

struct fixture {
	int fd;
	struct zc_sock *zs;
};

/* A real TCP socket for zc_open(); the fake kernel answers its sends. */
static int open_zs(struct fixture *f, const struct zc_opts *o)
{
	f->fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(f->fd >= 0);
	fk_reset(f->fd);
	return zc_open(f->fd, o, &f->zs);
}

static int setup_default(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct zc_opts o = {
		.sz = sizeof(o), .copy_below = 1, .flags = ZC_OPT_NO_ADAPT,
		.backend = ZC_BACKEND_ERRQUEUE,
	};

	unsetenv("ZCNOTIFY_BACKEND");
	assert_int_equal(open_zs(f, &o), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	zc_close(f->zs);
	close(f->fd);
	fk_reset(-1);
	free(f);
	return 0;
}

static void send_n(struct zc_sock *zs, unsigned int n, uint64_t first_cookie,
		   size_t len)
{
	for (unsigned int i = 0; i < n; i++)
		assert_int_equal(zc_send(zs, buf, len, 0, first_cookie + i),
				 (ssize_t)len);
}

/* Reap and check cookies first..first+n-1 in order, then nothing more. */
static void expect_cookies(struct zc_sock *zs, uint64_t first, unsigned int n,
			   uint32_t flags)
{
	struct zc_completion c[64];
	unsigned int got = 0;

	while (got < n) {
		int r = zc_completions(zs, c, 64);

		assert_true(r > 0);
		for (int i = 0; i < r; i++, got++) {
			assert_int_equal(c[i].cookie, first + got);
			assert_int_equal(c[i].flags, flags);
		}
	}
	assert_int_equal(got, n);
	assert_int_equal(zc_completions(zs, c, 64), 0);
}

static void test_never_early(void **state)
{
	struct fixture *f = *state;
	struct zc_completion c[8];

	send_n(f->zs, 3, 100, 20000);
	assert_int_equal(fk_count_sends(true), 3);
	assert_int_equal(zc_inflight(f->zs), 3);
	/* The kernel has said nothing: nothing may complete. */
	assert_int_equal(zc_completions(f->zs, c, 8), 0);
	fk_complete(0, 0, false);
	assert_int_equal(zc_completions(f->zs, c, 8), 1);
	assert_int_equal(c[0].cookie, 100);
	assert_int_equal(c[0].bytes, 20000);
	assert_int_equal(c[0].flags, 0);
	assert_int_equal(zc_completions(f->zs, c, 8), 0);
	fk_complete(1, 2, false);
	expect_cookies(f->zs, 101, 2, 0);
	assert_int_equal(zc_inflight(f->zs), 0);
}

static void test_coalesced(void **state)
{
	struct fixture *f = *state;

	send_n(f->zs, 50, 0, 16384);
	fk_complete(0, 49, false);
	expect_cookies(f->zs, 0, 50, 0);
}

static void test_copied_flag(void **state)
{
	struct fixture *f = *state;
	struct zc_completion c[4];

	send_n(f->zs, 2, 7, 16384);
	fk_complete(0, 0, true);
	fk_complete(1, 1, false);
	assert_int_equal(zc_completions(f->zs, c, 4), 2);
	assert_int_equal(c[0].flags, ZC_COPIED);
	assert_int_equal(c[1].flags, 0);
}

static void test_out_of_order(void **state)
{
	struct fixture *f = *state;
	struct zc_completion c[8];

	send_n(f->zs, 6, 10, 16384);
	fk_complete(4, 5, false);
	fk_complete(2, 3, true);
	/* Ids 2..5 are done, but send order waits for 0 and 1. */
	assert_int_equal(zc_completions(f->zs, c, 8), 0);
	fk_complete(1, 1, false);
	assert_int_equal(zc_completions(f->zs, c, 8), 0);
	fk_complete(0, 0, false);
	assert_int_equal(zc_completions(f->zs, c, 8), 6);
	for (int i = 0; i < 6; i++)
		assert_int_equal(c[i].cookie, 10 + i);
	assert_int_equal(c[2].flags, ZC_COPIED);
	assert_int_equal(c[3].flags, ZC_COPIED);
	assert_int_equal(c[4].flags, 0);
}

/* Start the socket's id counter (and the library's mirror) at base. */
static void set_id_base(struct fixture *f, uint32_t base)
{
	f->zs->zc_next = base;
	f->zs->zc_head = base;
	atomic_store(&f->zs->done_to, base);
	atomic_store(&f->zs->zc_issued, base);
	fk.next_id = base;
}

static void test_wrap_coalesced(void **state)
{
	struct fixture *f = *state;

	set_id_base(f, 0xfffffffdu);
	send_n(f->zs, 6, 0, 16384);	/* ids fffffffd..2 */
	assert_int_equal(fk.sends[5].id, 2);
	fk_complete(0xfffffffdu, 2, false);	/* hi < lo: wraps */
	expect_cookies(f->zs, 0, 6, 0);
	/* And on past the wrap. */
	send_n(f->zs, 2, 6, 16384);
	fk_complete(3, 4, false);
	expect_cookies(f->zs, 6, 2, 0);
}

/*
 * Marks for ids reported out of order: made by the first one, not by
 * zc_open() nor by reports in order, and given back with the last mark.
 */
static void test_marks_lazy(void **state)
{
	struct fixture *f = *state;
	struct zc_completion c[8];

	send_n(f->zs, 4, 0, 16384);
	fk_complete(0, 1, false);
	expect_cookies(f->zs, 0, 2, 0);
	assert_null(f->zs->done);
	fk_complete(3, 3, false);
	assert_int_equal(zc_completions(f->zs, c, 8), 0);
	assert_non_null(f->zs->done);
	assert_int_equal(f->zs->nmarks, 1);
	fk_complete(2, 2, false);
	expect_cookies(f->zs, 2, 2, 0);
	assert_int_equal(f->zs->nmarks, 0);
	assert_null(f->zs->done);
}

/*
 * No memory for the marks: the completion cannot be kept, and is not
 * dropped without a word: zc_completions() fails with -ENOMEM, every
 * time, and hands out nothing it would hand out wrong.
 */
static void test_marks_no_memory(void **state)
{
	struct fixture *f = *state;
	struct zc_completion c[8];

	send_n(f->zs, 3, 0, 16384);
	fk_complete(0, 0, false);
	expect_cookies(f->zs, 0, 1, 0);
	fk_complete(2, 2, false);
	fa_fail(0, 1);
	/* Said by the next call, as a truncated record is (pending_err). */
	assert_int_equal(zc_completions(f->zs, c, 8), 0);
	assert_int_equal(fa_failed(), 1);
	fa_fail(0, 0);
	assert_int_equal(zc_completions(f->zs, c, 8), -ENOMEM);
	assert_non_null(strstr(zc_last_error(), "out of memory"));
	fk_complete(1, 1, false);
	assert_int_equal(zc_completions(f->zs, c, 8), -ENOMEM);
	assert_int_equal(zc_wait(f->zs, c, 8, 0), -ENOMEM);
	/*
	 * A truncated record read since (zc_foreign() reads the queue)
	 * does not turn that into a one-time -EMSGSIZE: the loss stays.
	 */
	fk_push(&(struct fk_rec){
		.level = SOL_IP, .type = IP_RECVERR, .ctrunc = true,
		.ee = { .ee_origin = SO_EE_ORIGIN_ICMP,
			.ee_errno = ECONNREFUSED },
	});
	assert_true(zc_foreign(f->zs, (struct zc_errrec[1]){ 0 }, 1) >= 0);
	assert_int_equal(zc_completions(f->zs, c, 8), -ENOMEM);
	assert_non_null(strstr(zc_last_error(), "out of memory"));
	assert_int_equal(zc_completions(f->zs, c, 8), -ENOMEM);
}

static void test_wrap_out_of_order(void **state)
{
	struct fixture *f = *state;
	struct zc_completion c[8];

	set_id_base(f, 0xfffffffeu);
	send_n(f->zs, 4, 0, 16384);	/* ids fffffffe, ffffffff, 0, 1 */
	fk_complete(0, 1, false);
	assert_int_equal(zc_completions(f->zs, c, 8), 0);
	fk_complete(0xffffffffu, 0xffffffffu, false);
	fk_complete(0xfffffffeu, 0xfffffffeu, false);
	expect_cookies(f->zs, 0, 4, 0);
}

static void test_ipv6_level(void **state)
{
	struct fixture *f = *state;

	send_n(f->zs, 3, 0, 16384);
	fk_complete6(0, 1, false);
	fk_complete(2, 2, false);	/* v4-mapped traffic: either level */
	expect_cookies(f->zs, 0, 3, 0);
}

static void test_bogus_ranges(void **state)
{
	struct fixture *f = *state;
	struct zc_completion c[8];
	struct zc_stats st = { .sz = sizeof(st) };
	clock_t t0 = clock();

	send_n(f->zs, 2, 0, 16384);
	fk_complete(5, 9, false);		/* never sent */
	fk_complete(1, 0, false);		/* 2^32 ids: bounded work */
	assert_int_equal(zc_completions(f->zs, c, 8), 2);
	assert_true(clock() - t0 < CLOCKS_PER_SEC);	/* no 2^32 loop */
	fk_complete(0, 1, false);		/* both already reported */
	/* Nothing waits for the kernel: the queue is not even read. */
	assert_int_equal(zc_completions(f->zs, c, 8), 0);
	assert_int_equal(fk.qlen, 1);
	/* Nothing was marked for the future: new sends wait for the kernel. */
	send_n(f->zs, 8, 2, 16384);
	assert_int_equal(zc_completions(f->zs, c, 8), 0);
	assert_int_equal(fk.qlen, 0);
	assert_int_equal(zc_get_stats(f->zs, &st), 0);
	assert_int_equal(st.bad_ranges, 3);
	assert_int_equal(st.completions, 2);
	fk_complete(2, 9, false);
	expect_cookies(f->zs, 2, 8, 0);
}

static void test_duplicate_range(void **state)
{
	struct fixture *f = *state;
	struct zc_completion c[8];
	struct zc_stats st = { .sz = sizeof(st) };

	send_n(f->zs, 3, 0, 16384);
	fk_complete(1, 2, false);
	fk_complete(1, 2, false);	/* the same ids twice */
	assert_int_equal(zc_completions(f->zs, c, 8), 0);
	fk_complete(0, 0, false);
	assert_int_equal(zc_completions(f->zs, c, 8), 3);
	assert_int_equal(zc_completions(f->zs, c, 8), 0);
	assert_int_equal(zc_get_stats(f->zs, &st), 0);
	assert_int_equal(st.bad_ranges, 1);
}

static void test_foreign_records(void **state)
{
	struct fixture *f = *state;
	struct zc_errrec rec[4];
	struct zc_stats st = { .sz = sizeof(st) };
	struct fk_rec ts = {
		.level = SOL_IP, .type = IP_RECVERR, .with_ts = true,
		.ee = { .ee_origin = SO_EE_ORIGIN_TIMESTAMPING, .ee_info = 42,
			.ee_errno = ENOMSG },
	};

	send_n(f->zs, 2, 0, 16384);
	fk_complete(0, 0, false);
	fk_foreign(ECONNREFUSED, SO_EE_ORIGIN_ICMP);
	fk_push(&ts);
	fk_complete(1, 1, false);
	expect_cookies(f->zs, 0, 2, 0);
	assert_int_equal(zc_get_stats(f->zs, &st), 0);
	assert_int_equal(st.foreign, 2);
	assert_int_equal(zc_foreign(f->zs, rec, 4), 2);
	assert_int_equal(rec[0].ee_errno, ECONNREFUSED);
	assert_int_equal(rec[0].ee_origin, SO_EE_ORIGIN_ICMP);
	assert_int_equal(rec[0].level, SOL_IP);
	assert_int_equal(rec[0].type, IP_RECVERR);
	assert_int_equal(rec[0].flags & ZC_ERRREC_TIMESTAMP, 0);
	assert_int_equal(rec[1].ee_origin, SO_EE_ORIGIN_TIMESTAMPING);
	assert_int_equal(rec[1].ee_info, 42);
	assert_true(rec[1].flags & ZC_ERRREC_TIMESTAMP);
	assert_int_equal(rec[1].ts[2].tv_sec, 5);
	assert_int_equal(zc_foreign(f->zs, rec, 4), 0);
}

static void test_foreign_overflow_counted(void **state)
{
	struct fixture *f = *state;
	struct zc_errrec rec[ZC_FOREIGN_MAX];
	struct zc_stats st = { .sz = sizeof(st) };

	for (int i = 0; i < ZC_FOREIGN_MAX + 5; i++)
		fk_foreign(EHOSTUNREACH + 0 * i, SO_EE_ORIGIN_ICMP);
	assert_int_equal(zc_foreign(f->zs, rec, ZC_FOREIGN_MAX),
			 ZC_FOREIGN_MAX);
	assert_int_equal(zc_get_stats(f->zs, &st), 0);
	assert_int_equal(st.foreign, ZC_FOREIGN_MAX + 5);
	assert_int_equal(st.foreign_dropped, 5);
}

/* The stash for foreign records is made by the first one, not by zc_open(). */
static void test_foreign_stash_lazy(void **state)
{
	struct fixture *f = *state;
	struct zc_errrec rec[2];
	struct zc_stats st = { .sz = sizeof(st) };

	send_n(f->zs, 1, 0, 16384);
	fk_complete(0, 0, false);
	expect_cookies(f->zs, 0, 1, 0);
	assert_null(f->zs->foreign);
	fk_foreign(ECONNREFUSED, SO_EE_ORIGIN_ICMP);
	assert_int_equal(zc_foreign(f->zs, rec, 2), 1);
	assert_non_null(f->zs->foreign);
	assert_int_equal(rec[0].ee_errno, ECONNREFUSED);
	assert_int_equal(zc_get_stats(f->zs, &st), 0);
	assert_int_equal(st.foreign, 1);
	assert_int_equal(st.foreign_dropped, 0);
}

/* No memory for the stash: the record is dropped and counted, no more. */
static void test_foreign_stash_no_memory(void **state)
{
	struct fixture *f = *state;
	struct zc_errrec rec[2];
	struct zc_stats st = { .sz = sizeof(st) };

	fk_foreign(ECONNREFUSED, SO_EE_ORIGIN_ICMP);
	fa_fail(0, 1);
	assert_int_equal(zc_foreign(f->zs, rec, 2), 0);
	assert_int_equal(fa_failed(), 1);
	fa_fail(0, 0);
	assert_null(f->zs->foreign);
	assert_int_equal(zc_get_stats(f->zs, &st), 0);
	assert_int_equal(st.foreign, 1);
	assert_int_equal(st.foreign_dropped, 1);
	/* The next one finds memory. */
	fk_foreign(EHOSTUNREACH, SO_EE_ORIGIN_ICMP);
	assert_int_equal(zc_foreign(f->zs, rec, 2), 1);
	assert_int_equal(rec[0].ee_errno, EHOSTUNREACH);
}

static void *reap_in_thread(void *arg)
{
	struct zc_sock *zs = arg;
	struct zc_completion c[4];
	void *mine;

	if (zc__tl_eq)		/* a new thread has none yet */
		return NULL;
	if (zc_completions(zs, c, 4) != 1)
		return NULL;
	mine = zc__tl_eq;	/* freed when this thread exits */
	return mine;
}

/*
 * recvmmsg()'s buffers are the reaping thread's, made by its first read,
 * shared by every socket it reads; none is made by zc_open(). No memory
 * for them: that read fails, the next one tries again.
 */
static void test_eq_per_thread(void **state)
{
	struct fixture *f = *state;
	struct zc_completion c[4];
	struct zc_eq *eq;
	pthread_t th;
	void *theirs;

	send_n(f->zs, 3, 0, 16384);
	fk_complete(0, 0, false);
	if (!zc__tl_eq) {	/* this thread's first read */
		fa_fail(0, 1);
		assert_int_equal(zc_completions(f->zs, c, 4), -ENOMEM);
		fa_fail(0, 0);
		assert_null(zc__tl_eq);
	}
	expect_cookies(f->zs, 0, 1, 0);
	eq = zc__tl_eq;
	assert_non_null(eq);
	/* Another thread: its own. */
	fk_complete(1, 1, false);
	assert_int_equal(pthread_create(&th, NULL, reap_in_thread, f->zs), 0);
	assert_int_equal(pthread_join(th, &theirs), 0);
	assert_non_null(theirs);
	assert_ptr_not_equal(theirs, eq);
	/* This thread's stay, for every later read. */
	assert_ptr_equal(zc__tl_eq, eq);
	fk_complete(2, 2, false);
	expect_cookies(f->zs, 2, 1, 0);
	assert_ptr_equal(zc__tl_eq, eq);
}

/* Found by fuzz-errqueue: a cmsg_len near SIZE_MAX made CMSG_ALIGN() 0. */
static void test_parser_hostile_len(void **state)
{
	alignas(struct cmsghdr) unsigned char b[64];
	struct cmsghdr h = { .cmsg_len = SIZE_MAX - 6, .cmsg_level = SOL_IP,
			     .cmsg_type = IP_RECVERR };
	struct msghdr m = { .msg_control = b, .msg_controllen = sizeof(b) };
	struct sock_extended_err ee = { .ee_origin = SO_EE_ORIGIN_ZEROCOPY,
					.ee_info = 3, .ee_data = 4 };
	struct zc_range r;
	struct zc_errrec rec;

	(void)state;
	memset(b, 0, sizeof(b));
	memcpy(b, &h, sizeof(h));
	memcpy(b + sizeof(h), &ee, sizeof(ee));
	/* Terminates, and reads the ee that is there. */
	assert_int_equal(zc__parse_errmsg(&m, &r, &rec), ZC_REC_RANGE);
	assert_int_equal(r.lo, 3);
	h.cmsg_len = 3;		/* shorter than a header */
	memcpy(b, &h, sizeof(h));
	assert_int_equal(zc__parse_errmsg(&m, &r, &rec), ZC_REC_NONE);
	m.msg_controllen = 5;	/* not even a header */
	assert_int_equal(zc__parse_errmsg(&m, &r, &rec), ZC_REC_NONE);
}

/* Put one cmsg at off in b; returns the offset after it. */
static size_t put_cmsg(unsigned char *b, size_t off, int level, int type,
		       const void *data, size_t len)
{
	struct cmsghdr h = { .cmsg_len = CMSG_LEN(len), .cmsg_level = level,
			     .cmsg_type = type };

	memcpy(b + off, &h, sizeof(h));
	memcpy(b + off + CMSG_LEN(0), data, len);
	return off + CMSG_SPACE(len);
}

/*
 * The kernel's layouts: struct sock_extended_err then the offender
 * (sockaddr_in or sockaddr_in6, zeroed for a zero-copy completion). A lone
 * completion cmsg takes the parser's fast path, one with company the full
 * walk; both must agree, and an ICMP record must keep its offender.
 */
static void test_parser_layouts(void **state)
{
	alignas(struct cmsghdr) unsigned char b[256];
	struct {
		struct sock_extended_err ee;
		struct sockaddr_in6 off;
	} e6 = { .ee = { .ee_origin = SO_EE_ORIGIN_ZEROCOPY, .ee_info = 7,
			 .ee_data = 9, .ee_code = SO_EE_CODE_ZEROCOPY_COPIED } };
	struct {
		struct sock_extended_err ee;
		struct sockaddr_in off;
	} e4 = { .ee = { .ee_origin = SO_EE_ORIGIN_ZEROCOPY,
			 .ee_info = UINT32_MAX, .ee_data = 1 } };
	struct timespec ts[3] = { { 1, 2 } };
	struct msghdr m = { .msg_control = b };
	struct zc_range r;
	struct zc_errrec rec;

	(void)state;
	memset(b, 0, sizeof(b));
	m.msg_controllen = put_cmsg(b, 0, SOL_IP, IP_RECVERR, &e4, sizeof(e4));
	assert_int_equal(zc__parse_errmsg(&m, &r, &rec), ZC_REC_RANGE);
	assert_int_equal(r.lo, UINT32_MAX);	/* a wrapping range */
	assert_int_equal(r.hi, 1);
	assert_false(r.copied);

	m.msg_controllen = put_cmsg(b, 0, SOL_IPV6, IPV6_RECVERR, &e6,
				    sizeof(e6));
	assert_int_equal(zc__parse_errmsg(&m, &r, &rec), ZC_REC_RANGE);
	assert_int_equal(r.lo, 7);
	assert_int_equal(r.hi, 9);
	assert_true(r.copied);

	/* With a timestamp after it: the full walk, the same answer. */
	m.msg_controllen = put_cmsg(b, m.msg_controllen, SOL_SOCKET,
				    SO_TIMESTAMPING_OLD, ts, sizeof(ts));
	memset(&r, 0, sizeof(r));
	assert_int_equal(zc__parse_errmsg(&m, &r, &rec), ZC_REC_RANGE);
	assert_int_equal(r.lo, 7);
	assert_int_equal(r.hi, 9);
	assert_true(r.copied);

	/* An ICMP error alone: foreign, with its offender. */
	e6.ee = (struct sock_extended_err){ .ee_errno = EHOSTUNREACH,
		.ee_origin = SO_EE_ORIGIN_ICMP6, .ee_type = 1 };
	e6.off.sin6_family = AF_INET6;
	e6.off.sin6_addr = in6addr_loopback;
	m.msg_controllen = put_cmsg(b, 0, SOL_IPV6, IPV6_RECVERR, &e6,
				    sizeof(e6));
	assert_int_equal(zc__parse_errmsg(&m, &r, &rec), ZC_REC_FOREIGN);
	assert_int_equal(rec.ee_errno, EHOSTUNREACH);
	assert_true(rec.flags & ZC_ERRREC_OFFENDER);
	assert_int_equal(rec.offender.ss_family, AF_INET6);
	assert_memory_equal(&((struct sockaddr_in6 *)&rec.offender)->sin6_addr,
			    &in6addr_loopback, sizeof(in6addr_loopback));

	/* An offender too short to hold a family: none reported. */
	m.msg_controllen = put_cmsg(b, 0, SOL_IPV6, IPV6_RECVERR, &e6,
				    sizeof(e6.ee) + 1);
	assert_int_equal(zc__parse_errmsg(&m, &r, &rec), ZC_REC_FOREIGN);
	assert_false(rec.flags & ZC_ERRREC_OFFENDER);
	assert_int_equal(rec.offender.ss_family, AF_UNSPEC);
}

static void test_ctrunc(void **state)
{
	struct fixture *f = *state;
	struct zc_completion c[8];
	struct zc_stats st = { .sz = sizeof(st) };
	struct fk_rec cut = {
		.level = SOL_IP, .type = IP_RECVERR, .ctrunc = true,
		.ee = { .ee_origin = SO_EE_ORIGIN_ZEROCOPY, .ee_info = 0,
			.ee_data = 1 },
	};

	send_n(f->zs, 2, 0, 16384);
	fk_push(&cut);		/* offender cut off, ee still whole */
	/* The legible range is applied: two completions now... */
	assert_int_equal(zc_completions(f->zs, c, 8), 2);
	/* ...and the truncation is reported once. */
	assert_int_equal(zc_completions(f->zs, c, 8), -EMSGSIZE);
	assert_true(strstr(zc_last_error(), "MSG_CTRUNC") != NULL);
	assert_int_equal(zc_completions(f->zs, c, 8), 0);
	assert_int_equal(zc_get_stats(f->zs, &st), 0);
	assert_int_equal(st.ctrunc, 1);

	/* Cut inside the ee: the range is lost, and that is reported. */
	send_n(f->zs, 1, 2, 16384);
	cut.cut_ee = true;
	cut.ee.ee_info = cut.ee.ee_data = 2;
	fk_push(&cut);
	assert_int_equal(zc_completions(f->zs, c, 8), 0);
	assert_int_equal(zc_completions(f->zs, c, 8), -EMSGSIZE);
	assert_int_equal(zc_inflight(f->zs), 1);
}

static void test_recvmmsg_batches(void **state)
{
	struct fixture *f = *state;

	send_n(f->zs, 40, 0, 16384);
	/* Completions of every other id cannot coalesce: 40 records. */
	for (uint32_t i = 0; i < 40; i += 2)
		fk_complete(i + 1, i + 1, false);
	for (uint32_t i = 0; i < 40; i += 2)
		fk_complete(i, i, false);
	fk.recvmmsg_calls = 0;
	expect_cookies(f->zs, 0, 40, 0);
	/*
	 * 40 records at 16 a call: 3 calls (the last one short, so no fourth
	 * to meet EAGAIN); the final zc_completions() has nothing pending
	 * and makes no call at all.
	 */
	assert_int_equal(fk.recvmmsg_calls, 3);
}

static void test_no_syscall_when_idle(void **state)
{
	struct fixture *f = *state;
	struct zc_completion c[8];
	struct zc_stats st = { .sz = sizeof(st) };

	assert_int_equal(zc_completions(f->zs, c, 8), 0);
	send_n(f->zs, 1, 0, 100);	/* zero-copy: copy_below is 1 */
	fk.recvmmsg_calls = 0;
	fk_complete(0, 0, false);
	assert_int_equal(zc_completions(f->zs, c, 8), 1);
	assert_int_equal(fk.recvmmsg_calls, 1);
	assert_int_equal(zc_completions(f->zs, c, 8), 0);
	assert_int_equal(fk.recvmmsg_calls, 1);
	assert_int_equal(zc_get_stats(f->zs, &st), 0);
	assert_int_equal(st.syscalls, 2);	/* one send, one recvmmsg */
}

static void test_send_error_no_completion(void **state)
{
	struct fixture *f = *state;
	struct zc_completion c[8];
	int errs[] = { EAGAIN, EPIPE };

	fk_script_send_errors(errs, 2);
	assert_int_equal(zc_send(f->zs, buf, 16384, MSG_DONTWAIT, 1), -EAGAIN);
	assert_int_equal(zc_send(f->zs, buf, 16384, 0, 2), -EPIPE);
	assert_int_equal(zc_inflight(f->zs), 0);
	assert_int_equal(zc_completions(f->zs, c, 8), 0);
	/* No id was taken: the next send gets id 0. */
	send_n(f->zs, 1, 3, 16384);
	assert_int_equal(fk.sends[2].id, 0);
	fk_complete(0, 0, false);
	expect_cookies(f->zs, 3, 1, 0);
}

static void test_enobufs_resends_by_copy(void **state)
{
	struct fixture *f = *state;
	struct zc_completion c[8];
	struct zc_stats st = { .sz = sizeof(st) };
	int errs[] = { ENOBUFS };

	fk.err_only_zc = true;
	fk_script_send_errors(errs, 1);
	assert_int_equal(zc_send(f->zs, buf, 16384, 0, 9), 16384);
	/* Two calls: refused zero-copy, then the same bytes by copy. */
	assert_int_equal(fk.nsends, 2);
	assert_true(fk.sends[0].flags & MSG_ZEROCOPY);
	assert_false(fk.sends[1].flags & MSG_ZEROCOPY);
	assert_int_equal(fk.sends[1].len, 16384);
	/* Complete at once, with no kernel record and no wait. */
	fk.recvmmsg_calls = 0;
	assert_int_equal(zc_completions(f->zs, c, 8), 1);
	assert_int_equal(c[0].cookie, 9);
	assert_int_equal(c[0].bytes, 16384);
	assert_int_equal(c[0].flags, ZC_COPIED | ZC_LIB_COPY);
	assert_int_equal(fk.recvmmsg_calls, 0);
	assert_int_equal(zc_get_stats(f->zs, &st), 0);
	assert_int_equal(st.enobufs_fallback, 1);
	/* The id counter did not move. */
	send_n(f->zs, 1, 10, 16384);
	assert_int_equal(fk.sends[2].id, 0);
}

/*
 * ENOBUFS over TCP with completions queued: they hold the socket's option
 * memory until they are read (ABI.md section 1). The send side reads them
 * and sends zero-copy again, and the reap side hands them out, though no
 * POLLERR is left to say so (its last read found the queue empty: a poll
 * would find nothing). At f5e8b34 the send was copied; this test fails
 * there.
 */
static void test_enobufs_takes_queued_then_zerocopy(void **state)
{
	struct fixture *f = *state;
	struct zc_completion c[8];
	struct zc_stats st = { .sz = sizeof(st) };
	int errs[] = { ENOBUFS };
	unsigned int calls;

	send_n(f->zs, 3, 0, 16384);		/* ids 0..2 */
	assert_int_equal(zc_completions(f->zs, c, 8), 0);	/* none yet */
	fk_complete(0, 2, false);		/* queued, not read */
	fk.err_only_zc = true;
	fk_script_send_errors(errs, 1);
	calls = fk.nsends;
	assert_int_equal(zc_send(f->zs, buf, 16384, 0, 3), 16384);
	/* The refused send, then zero-copy again, with the next id. */
	assert_int_equal(fk.nsends, calls + 2);
	assert_true(fk.sends[calls + 1].flags & MSG_ZEROCOPY);
	assert_int_equal(fk.sends[calls + 1].id, 3);
	assert_int_equal(fk.qlen, 0);		/* the send side read them */
	assert_int_equal(zc_get_stats(f->zs, &st), 0);
	assert_int_equal(st.enobufs_fallback, 0);
	assert_int_equal(st.sends_zc, 4);
	assert_int_equal(st.harvest_recvmsg, 0);	/* not applied yet */
	assert_int_equal(zc_completions(f->zs, c, 8), 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(c[i].cookie, i);
		assert_int_equal(c[i].flags, 0);
	}
	assert_int_equal(zc_get_stats(f->zs, &st), 0);
	assert_int_equal(st.harvest_recvmsg, 1);
	assert_int_equal(st.completions, 3);
	fk_complete(3, 3, false);
	expect_cookies(f->zs, 3, 1, 0);
	/* Nothing queued: the copy, as before. */
	fk_script_send_errors(errs, 1);
	assert_int_equal(zc_send(f->zs, buf, 16384, 0, 4), 16384);
	assert_false(fk.sends[fk.nsends - 1].flags & MSG_ZEROCOPY);
	assert_int_equal(zc_get_stats(f->zs, &st), 0);
	assert_int_equal(st.enobufs_fallback, 1);
	expect_cookies(f->zs, 4, 1, ZC_COPIED | ZC_LIB_COPY);
}

/*
 * The same with a foreign record in the queue: the send side keeps one
 * (for zc_foreign()) and reads no further; while it is not handed over,
 * it reads nothing and copies. zc_wait() finds what the send side took
 * without sleeping on a POLLERR that will not come.
 */
static void test_enobufs_takes_foreign_once(void **state)
{
	struct fixture *f = *state;
	struct zc_completion c[8];
	struct zc_errrec rec[4];
	struct zc_stats st = { .sz = sizeof(st) };
	int errs[] = { ENOBUFS };
	unsigned int reads;

	send_n(f->zs, 2, 0, 16384);		/* ids 0, 1 */
	assert_int_equal(zc_completions(f->zs, c, 8), 0);
	fk_complete(0, 0, false);
	fk_foreign(ECONNREFUSED, SO_EE_ORIGIN_ICMP);
	fk_complete(1, 1, false);
	fk.err_only_zc = true;
	fk_script_send_errors(errs, 1);
	reads = fk.recvmsg_calls;
	assert_int_equal(zc_send(f->zs, buf, 16384, 0, 2), 16384);
	assert_int_equal(fk.recvmsg_calls, reads + 2);	/* [0, 0], foreign */
	assert_int_equal(fk.qlen, 1);			/* [1, 1] left */
	assert_true(fk.sends[fk.nsends - 1].flags & MSG_ZEROCOPY);
	assert_int_equal(fk.sends[fk.nsends - 1].id, 2);
	/* The foreign record not handed over yet: no read, a copy. */
	fk_script_send_errors(errs, 1);
	assert_int_equal(zc_send(f->zs, buf, 16384, 0, 3), 16384);
	assert_int_equal(fk.recvmsg_calls, reads + 2);
	assert_false(fk.sends[fk.nsends - 1].flags & MSG_ZEROCOPY);
	assert_int_equal(zc_get_stats(f->zs, &st), 0);
	assert_int_equal(st.enobufs_fallback, 1);
	/* At once: without the send side's records it would sleep 5 s. */
	assert_int_equal(zc_wait(f->zs, c, 8, 5000), 1);
	assert_int_equal(c[0].cookie, 0);
	assert_int_equal(zc_foreign(f->zs, rec, 4), 1);
	assert_int_equal(rec[0].ee_errno, ECONNREFUSED);
	assert_int_equal(rec[0].ee_origin, SO_EE_ORIGIN_ICMP);
	assert_int_equal(zc_completions(f->zs, c, 8), 1);	/* read [1, 1] */
	assert_int_equal(c[0].cookie, 1);
	fk_complete(2, 2, false);
	assert_int_equal(zc_completions(f->zs, c, 8), 2);
	assert_int_equal(c[0].cookie, 2);
	assert_int_equal(c[0].flags, 0);
	assert_int_equal(c[1].cookie, 3);
	assert_int_equal(c[1].flags, ZC_COPIED | ZC_LIB_COPY);
	/* The slot is free again: the next ENOBUFS reads the queue. */
	fk_complete(3, 3, false);	/* a record no send is waiting for */
	fk_script_send_errors(errs, 1);
	reads = fk.recvmsg_calls;
	send_n(f->zs, 1, 4, 16384);
	assert_true(fk.recvmsg_calls > reads);
}

/*
 * The reaper asleep in zc_wait() (no record queued) when a completion
 * comes and a refused send (ENOBUFS) takes it from the queue before the
 * reaper looks, then sends nothing: its retry fails with another error,
 * so no publish wakes the reaper. POLLERR is gone with the record, so the
 * harvest itself must write the reaper's eventfd (zc__eq_harvest_enobufs()),
 * or the reaper sleeps out its timeout with a completion ready. One
 * thread: the fake poll() runs the send side as the reaper goes to sleep.
 */
static ssize_t harvest_send_ret;

static void harvest_then_fail(void *zs)
{
	int errs[] = { ENOBUFS, EPIPE };

	fk_complete(0, 0, false);
	fk.err_only_zc = true;
	fk_script_send_errors(errs, 2);
	harvest_send_ret = zc_send(zs, buf, 16384, 0, 1);
}

static void test_enobufs_harvest_wakes_reaper(void **state)
{
	struct fixture *f = *state;
	struct zc_completion c[8];
	unsigned int calls;

	send_n(f->zs, 1, 0, 16384);		/* id 0 */
	assert_int_equal(zc_completions(f->zs, c, 8), 0);
	calls = fk.nsends;
	fk.before_poll_sleep = harvest_then_fail;
	fk.before_poll_arg = f->zs;
	assert_int_equal(zc_wait(f->zs, c, 8, 10000), 1);
	assert_null(fk.before_poll_sleep);	/* the send side ran */
	/* Refused, then the retry with the queue read: both zero-copy. */
	assert_int_equal(harvest_send_ret, -EPIPE);
	assert_int_equal(fk.nsends, calls + 2);
	assert_true(fk.sends[calls + 1].flags & MSG_ZEROCOPY);
	assert_int_equal(fk.qlen, 0);		/* the send side read it */
	/* Woken by the eventfd, not by the timeout. */
	assert_int_equal(fk.last_poll_real, 1);
	assert_int_equal(c[0].cookie, 0);
	assert_int_equal(c[0].flags, 0);
	assert_int_equal(zc_inflight(f->zs), 0);
}

/*
 * ENOBUFS over TCP with nothing queued but sends of ours out: their
 * records will free option memory, so a blocking send waits for one
 * (poll() for POLLERR), takes it and sends zero-copy after all, as the raw
 * pattern does. At b07f18a the send was copied at once; this test fails
 * there.
 */
static void complete_0_1(void *arg)
{
	(void)arg;
	fk_complete(0, 1, false);
}

static void test_enobufs_waits_for_inflight(void **state)
{
	struct fixture *f = *state;
	struct zc_stats st = { .sz = sizeof(st) };
	int errs[] = { ENOBUFS };
	unsigned int calls, polls;

	send_n(f->zs, 2, 0, 16384);		/* ids 0, 1: out */
	fk.err_only_zc = true;
	fk_script_send_errors(errs, 1);
	fk.before_poll_sleep = complete_0_1;	/* they complete while we wait */
	calls = fk.nsends;
	polls = fk.poll_calls;
	assert_int_equal(zc_send(f->zs, buf, 16384, 0, 2), 16384);
	assert_null(fk.before_poll_sleep);	/* it waited */
	assert_true(fk.poll_calls > polls);
	assert_int_equal(fk.nsends, calls + 2);
	assert_true(fk.sends[calls + 1].flags & MSG_ZEROCOPY);
	assert_int_equal(fk.sends[calls + 1].id, 2);
	assert_int_equal(fk.qlen, 0);		/* the send side read [0, 1] */
	assert_int_equal(zc_get_stats(f->zs, &st), 0);
	assert_int_equal(st.enobufs_waited, 1);
	assert_int_equal(st.enobufs_fallback, 0);
	assert_int_equal(st.sends_zc, 3);
	expect_cookies(f->zs, 0, 2, 0);
	fk_complete(2, 2, false);
	expect_cookies(f->zs, 2, 1, 0);
}

/*
 * The same, but no record comes: the wait is bounded (50 ms), then the
 * copy. With MSG_DONTWAIT, or on a non-blocking socket, no wait at all.
 */
static void test_enobufs_wait_bounded(void **state)
{
	struct fixture *f = *state;
	struct zc_stats st = { .sz = sizeof(st) };
	int errs[FK_MAX_SCRIPT];
	unsigned int polls;
	struct timespec t0, t1;
	long ms;

	for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++)
		errs[i] = ENOBUFS;
	send_n(f->zs, 1, 0, 16384);		/* id 0: out, never reported */
	fk.err_only_zc = true;
	/* MSG_DONTWAIT: the copy at once. */
	fk_script_send_errors(errs, 1);
	polls = fk.poll_calls;
	assert_int_equal(zc_send(f->zs, buf, 16384, MSG_DONTWAIT, 1), 16384);
	assert_int_equal(fk.poll_calls, polls);
	assert_false(fk.sends[fk.nsends - 1].flags & MSG_ZEROCOPY);
	/* A non-blocking socket: the same. */
	fk_script_send_errors(errs, 1);
	assert_int_equal(fcntl(f->fd, F_SETFL, O_NONBLOCK), 0);
	assert_int_equal(zc_send(f->zs, buf, 16384, 0, 2), 16384);
	assert_int_equal(fcntl(f->fd, F_SETFL, 0), 0);
	assert_int_equal(fk.poll_calls, polls);
	assert_false(fk.sends[fk.nsends - 1].flags & MSG_ZEROCOPY);
	assert_int_equal(zc_get_stats(f->zs, &st), 0);
	assert_int_equal(st.enobufs_waited, 0);
	assert_int_equal(st.enobufs_fallback, 2);
	/* Blocking: waits, refused every time, then copies. */
	fk_script_send_errors(errs, FK_MAX_SCRIPT);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(zc_send(f->zs, buf, 16384, 0, 3), 16384);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	assert_true(fk.poll_calls > polls);
	assert_false(fk.sends[fk.nsends - 1].flags & MSG_ZEROCOPY);
	assert_int_equal(zc_get_stats(f->zs, &st), 0);
	assert_int_equal(st.enobufs_waited, 1);
	assert_int_equal(st.enobufs_fallback, 3);
	/* Bounded: not far past 50 ms (generous: a loaded machine). */
	assert_true(ms >= 45 && ms < 5000);
	assert_true(fk.nsend_err > 0);	/* refused to the end */
	fk.nsend_err = 0;
	fk_complete(0, 0, false);
	{
		struct zc_completion c[8];

		assert_int_equal(zc_completions(f->zs, c, 8), 4);
		for (int i = 0; i < 4; i++) {
			assert_int_equal(c[i].cookie, i);
			assert_int_equal(c[i].flags, i ? ZC_COPIED | ZC_LIB_COPY : 0);
		}
	}
}

/* ENOBUFS with every send of ours reported: nothing to wait for, copy. */
static void test_enobufs_all_reported_copies(void **state)
{
	struct fixture *f = *state;
	struct zc_completion c[8];
	int errs[] = { ENOBUFS };

	send_n(f->zs, 1, 0, 16384);
	fk_complete(0, 0, false);
	/* Reported (read), not reaped: it holds no memory any more. */
	assert_int_equal(zc_completions(f->zs, c, 0), 0);
	assert_int_equal(zc_completions(f->zs, c, 1), 1);
	send_n(f->zs, 1, 1, 16384);
	fk_complete(1, 1, false);
	assert_int_equal(zc_completions(f->zs, c, 1), 1);
	fk.err_only_zc = true;
	fk_script_send_errors(errs, 1);
	assert_int_equal(zc_send(f->zs, buf, 16384, 0, 2), 16384);
	assert_false(fk.sends[fk.nsends - 1].flags & MSG_ZEROCOPY);
}

/*
 * UDP with IP_RECVERR: ENOBUFS may come after the send took its id (the
 * device queue dropped it). The library copies, sends no zero-copy until
 * the reap side has read the queue, and then follows what it found.
 */
static void udp_recverr_fixture(struct fixture *f)
{
	struct zc_opts o = { .sz = sizeof(o), .copy_below = 1,
			     .flags = ZC_OPT_NO_ADAPT };
	int one = 1;

	f->fd = socket(AF_INET, SOCK_DGRAM, 0);
	assert_int_equal(setsockopt(f->fd, SOL_IP, IP_RECVERR, &one,
				    sizeof(one)), 0);
	fk_reset(f->fd);
	assert_int_equal(zc_open(f->fd, &o, &f->zs), 0);
}

/* The reap side's turn, inside the send side's copy after a failure. */
static void reap_now(void *arg)
{
	struct zc_completion c[8];

	assert_true(zc_completions(arg, c, 8) >= 0);
}

/*
 * The reap side settles a failed send's id while the send side is still
 * sending the data again by copy (two threads: here, the copy's syscall
 * runs the reap). The id was not used: the copy completes, and the next
 * zero-copy send, which takes that id, completes on its record. On
 * 64d660f the reap side saw the failed send before its entry was written
 * and cleared PENDING there; the send side then set it again, and the
 * next send's completion waited for an id that never came.
 */
static void test_ambiguous_settled_during_copy(void **state)
{
	struct fixture f;
	struct zc_completion c[8];
	int errs[] = { ENOBUFS };

	(void)state;
	udp_recverr_fixture(&f);
	fk.err_only_zc = true;
	fk_script_send_errors(errs, 1);		/* no id used */
	fk.before_copy_send = reap_now;
	fk.before_copy_arg = f.zs;
	assert_int_equal(zc_send(f.zs, buf, 16384, 0, 0), 16384);
	assert_null(fk.before_copy_send);	/* the reap ran */
	assert_int_equal(zc_completions(f.zs, c, 8), 1);
	assert_int_equal(c[0].cookie, 0);
	send_n(f.zs, 1, 1, 16384);
	assert_true(fk.sends[fk.nsends - 1].flags & MSG_ZEROCOPY);
	assert_int_equal(fk.sends[fk.nsends - 1].id, 0);
	fk_complete(0, 0, false);
	assert_int_equal(zc_completions(f.zs, c, 8), 1);
	assert_int_equal(c[0].cookie, 1);
	assert_int_equal(zc_inflight(f.zs), 0);
	zc_close(f.zs);
	close(f.fd);
}

static void test_enobufs_ambiguous_taken(void **state)
{
	struct fixture f;
	struct zc_completion c[8];

	(void)state;
	udp_recverr_fixture(&f);
	send_n(f.zs, 1, 0, 16384);			/* id 0 */
	fk.drop_enobufs = 1;
	assert_int_equal(zc_send(f.zs, buf, 16384, 0, 1), 16384); /* id 1 */
	assert_int_equal(fk.sends[1].id, 1);
	assert_false(fk.sends[2].flags & MSG_ZEROCOPY);	/* resent by copy */
	/* Unsettled: no zero-copy. */
	send_n(f.zs, 1, 2, 16384);
	assert_false(fk.sends[3].flags & MSG_ZEROCOPY);
	/* The reap side reads the queue (id 1's record is there) ... */
	assert_int_equal(zc_completions(f.zs, c, 8), 0);	/* 0 waits */
	assert_int_equal(fk.qlen, 0);
	/* ... and the next zero-copy send is labelled 2, as the kernel has it. */
	send_n(f.zs, 1, 3, 16384);
	assert_true(fk.sends[4].flags & MSG_ZEROCOPY);
	assert_int_equal(fk.sends[4].id, 2);
	fk_complete(2, 2, false);
	assert_int_equal(zc_completions(f.zs, c, 8), 0);	/* 0 still out */
	fk_complete(0, 0, false);
	assert_int_equal(zc_completions(f.zs, c, 8), 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(c[i].cookie, i);
	assert_int_equal(c[1].flags, ZC_COPIED | ZC_LIB_COPY);
	assert_int_equal(c[3].flags, 0);
	assert_int_equal(zc_inflight(f.zs), 0);
	zc_close(f.zs);
	close(f.fd);
}

static void test_enobufs_ambiguous_not_taken(void **state)
{
	struct fixture f;
	struct zc_completion c[8];
	int errs[] = { ENOBUFS };

	(void)state;
	udp_recverr_fixture(&f);
	send_n(f.zs, 1, 0, 16384);			/* id 0 */
	fk.err_only_zc = true;
	fk_script_send_errors(errs, 1);			/* optmem: no id */
	assert_int_equal(zc_send(f.zs, buf, 16384, 0, 1), 16384);
	assert_int_equal(zc_completions(f.zs, c, 8), 0);	/* settles */
	send_n(f.zs, 1, 2, 16384);
	assert_int_equal(fk.sends[fk.nsends - 1].id, 1);
	fk_complete(0, 1, false);
	assert_int_equal(zc_completions(f.zs, c, 8), 3);
	zc_close(f.zs);
	close(f.fd);
}

/*
 * A failed datagram's id waits to be settled, and the read of the queue
 * that would settle it fails: a completion that is ready comes all the
 * same, the error dropped, as for any failed read (zc_completions(3)).
 * On main the settling read's error came back first, with the completion
 * ready. Seen in fuzz-model's trace of its seed scm-udp-read-fails.
 */
static void test_settle_read_fails_ready_comes(void **state)
{
	struct fixture f;
	struct zc_completion c[8];

	(void)state;
	udp_recverr_fixture(&f);
	send_n(f.zs, 2, 0, 16384);			/* ids 0, 1 */
	fk_complete(0, 1, false);
	assert_int_equal(zc_completions(f.zs, c, 1), 1);	/* 1 ready */
	fk.drop_enobufs = 1;				/* id 2, dropped */
	fk.drop_err = EPERM;
	assert_int_equal(zc_send(f.zs, buf, 16384, 0, 2), -EPERM);
	fk.recv_err = ENOMEM;
	assert_int_equal(zc_completions(f.zs, c, 8), 1);
	assert_int_equal(c[0].cookie, 1);
	assert_int_equal(fk.recv_err, 0);		/* a read failed */
	/*
	 * Settled (by this call's read after the completion, or the next
	 * call's): id 2 was used, the next send takes 3.
	 */
	assert_int_equal(zc_completions(f.zs, c, 8), 0);
	assert_int_equal(fk.qlen, 0);
	send_n(f.zs, 1, 3, 16384);
	assert_int_equal(fk.sends[fk.nsends - 1].id, 3);
	fk_complete(3, 3, false);
	assert_int_equal(zc_completions(f.zs, c, 8), 1);
	assert_int_equal(c[0].cookie, 3);
	assert_int_equal(zc_inflight(f.zs), 0);
	zc_close(f.zs);
	close(f.fd);
}

/* UDP: too many page fragments for zero-copy, fine by copy. */
static void test_udp_emsgsize_resends_by_copy(void **state)
{
	struct fixture f;
	struct zc_completion c[4];
	struct zc_opts o = { .sz = sizeof(o), .copy_below = 1,
			     .flags = ZC_OPT_NO_ADAPT };
	int errs[] = { EMSGSIZE, EMSGSIZE };

	(void)state;
	f.fd = socket(AF_INET, SOCK_DGRAM, 0);
	fk_reset(f.fd);
	assert_int_equal(zc_open(f.fd, &o, &f.zs), 0);
	fk.err_only_zc = true;
	fk_script_send_errors(errs, 1);
	assert_int_equal(zc_send(f.zs, buf, 30000, 0, 1), 30000);
	assert_false(fk.sends[1].flags & MSG_ZEROCOPY);
	assert_int_equal(zc_completions(f.zs, c, 4), 1);
	assert_int_equal(c[0].flags, ZC_COPIED | ZC_LIB_COPY);
	/* Too big by copy too: the caller hears it, nothing completes. */
	fk.err_only_zc = false;
	fk_script_send_errors(errs, 2);
	assert_int_equal(zc_send(f.zs, buf, 30000, 0, 2), -EMSGSIZE);
	/*
	 * Over UDP an EMSGSIZE may come after the id was used (GSO checks in
	 * udp_send_skb()): the failed send holds its ring slot until the reap
	 * side has read the queue, and then yields nothing. It is no send:
	 * zc_inflight() does not count it.
	 */
	assert_int_equal(zc_inflight(f.zs), 0);
	assert_int_equal(zc_completions(f.zs, c, 4), 0);
	/* No id was taken. */
	send_n(f.zs, 1, 3, 16384);
	assert_int_equal(fk.sends[fk.nsends - 1].id, 0);
	zc_close(f.zs);
	close(f.fd);
}

/*
 * A UDP datagram that netfilter drops (EPERM, IP_RECVERR or not) used up
 * its kernel id, and its record is queued at once (ABI.md section 1). The
 * sends after it must be labelled as the kernel numbered them (on 2e0f1e5
 * send C was taken for id 1 and completed by the dropped send's record
 * while the kernel still held C's pages).
 */
static void udp_fixture(struct fixture *f, unsigned int max_inflight,
			bool recverr)
{
	struct zc_opts o = { .sz = sizeof(o), .copy_below = 1,
			     .max_inflight = max_inflight,
			     .flags = ZC_OPT_NO_ADAPT };
	int one = 1;

	f->fd = socket(AF_INET, SOCK_DGRAM, 0);
	assert_true(f->fd >= 0);
	if (recverr)
		assert_int_equal(setsockopt(f->fd, SOL_IP, IP_RECVERR, &one,
					    sizeof(one)), 0);
	fk_reset(f->fd);
	assert_int_equal(zc_open(f->fd, &o, &f->zs), 0);
}

static void expect_stats_clean(struct zc_sock *zs, uint64_t sends)
{
	struct zc_stats st = { .sz = sizeof(st) };

	assert_int_equal(zc_get_stats(zs, &st), 0);
	assert_int_equal(st.bad_ranges, 0);
	assert_int_equal(st.sends, sends);
	assert_int_equal(st.completions, sends);
	assert_int_equal(zc_inflight(zs), 0);
}

static void test_udp_eperm_used_id(void **state)
{
	struct fixture f;
	struct zc_completion c[8];

	(void)state;
	udp_fixture(&f, 0, false);
	send_n(f.zs, 1, 0, 16384);			/* A: id 0, held */
	fk.drop_enobufs = 1;
	fk.drop_err = EPERM;				/* B: id 1, dropped */
	assert_int_equal(zc_send(f.zs, buf, 16384, 0, 1), -EPERM);
	assert_int_equal(fk.sends[1].id, 1);
	assert_int_equal(fk.qlen, 1);			/* [1, 1] queued */
	assert_int_equal(zc_completions(f.zs, c, 8), 0);  /* A still out */
	send_n(f.zs, 1, 2, 16384);			/* C */
	assert_true(fk.sends[2].flags & MSG_ZEROCOPY);
	assert_int_equal(fk.sends[2].id, 2);
	assert_int_equal(zc_completions(f.zs, c, 8), 0);	/* nor is C */
	fk_complete(0, 0, false);
	assert_int_equal(zc_completions(f.zs, c, 8), 1);
	assert_int_equal(c[0].cookie, 0);
	assert_int_equal(zc_completions(f.zs, c, 8), 0);	/* C waits */
	fk_complete(2, 2, false);
	assert_int_equal(zc_completions(f.zs, c, 8), 1);
	assert_int_equal(c[0].cookie, 2);
	expect_stats_clean(f.zs, 2);
	zc_close(f.zs);
	close(f.fd);
}

/* A failure that used no id (EHOSTUNREACH from routing) settles as such. */
static void test_udp_error_no_id(void **state)
{
	struct fixture f;
	struct zc_completion c[8];
	int errs[] = { EHOSTUNREACH };

	(void)state;
	udp_fixture(&f, 0, false);
	fk.err_only_zc = true;
	fk_script_send_errors(errs, 1);
	assert_int_equal(zc_send(f.zs, buf, 16384, 0, 0), -EHOSTUNREACH);
	assert_string_equal(zc_last_error(), "zc_send: send(2) failed; "
			    "nothing was sent, no completion will come");
	assert_int_equal(zc_completions(f.zs, c, 8), 0);
	send_n(f.zs, 1, 1, 16384);
	assert_int_equal(fk.sends[1].id, 0);
	fk_complete(0, 0, false);
	expect_cookies(f.zs, 1, 1, 0);
	expect_stats_clean(f.zs, 1);
	zc_close(f.zs);
	close(f.fd);
}

/*
 * IP_RECVERR: the qdisc drops a datagram after its id was used; the data
 * goes again by copy. That id counts against max_inflight until reaped,
 * and its mark never outlives it (before: with max_inflight 2 a later
 * send's mark was eaten and it never completed; with 1, a send completed
 * at once while the kernel held it).
 */
static void test_udp_used_id_max_inflight_2(void **state)
{
	struct fixture f;
	struct zc_completion c[8];

	(void)state;
	udp_fixture(&f, 2, true);
	send_n(f.zs, 1, 0, 16384);			/* A: id 0 */
	fk.drop_enobufs = 1;
	assert_int_equal(zc_send(f.zs, buf, 16384, 0, 1), 16384); /* id 1 */
	assert_int_equal(zc_completions(f.zs, c, 8), 0);	/* settles */
	assert_int_equal(zc_send(f.zs, buf, 16384, 0, 9), -ENOBUFS); /* full */
	fk_complete(0, 0, false);
	assert_int_equal(zc_completions(f.zs, c, 8), 2);
	assert_int_equal(c[0].cookie, 0);
	assert_int_equal(c[1].cookie, 1);
	assert_int_equal(c[1].flags, ZC_COPIED | ZC_LIB_COPY);
	send_n(f.zs, 2, 2, 16384);			/* ids 2, 3 */
	assert_int_equal(fk.sends[fk.nsends - 1].id, 3);
	fk_complete(3, 3, false);
	assert_int_equal(zc_completions(f.zs, c, 8), 0);
	fk_complete(2, 2, false);
	assert_int_equal(zc_completions(f.zs, c, 8), 2);
	assert_int_equal(c[0].cookie, 2);
	assert_int_equal(c[1].cookie, 3);
	expect_stats_clean(f.zs, 4);
	zc_close(f.zs);
	close(f.fd);
}

/*
 * A failed send that may have used its id, in a later chunk of the ring
 * than head's: amb_resolve() finds its entry there (zc__rx_entry_at()).
 */
static void test_udp_used_id_later_chunk(void **state)
{
	struct fixture f;
	struct zc_completion c[64];

	(void)state;
	udp_fixture(&f, 64, true);
	send_n(f.zs, ZC_CHUNK + 4, 0, 16384);	/* two chunks */
	fk.drop_enobufs = 1;
	assert_int_equal(zc_send(f.zs, buf, 16384, 0, 99), 16384);
	assert_int_equal(zc_completions(f.zs, c, 64), 0);	/* settles */
	fk_complete(0, ZC_CHUNK + 3, false);
	assert_int_equal(zc_completions(f.zs, c, 64), ZC_CHUNK + 5);
	assert_int_equal(c[ZC_CHUNK + 4].cookie, 99);
	assert_int_equal(c[ZC_CHUNK + 4].flags, ZC_COPIED | ZC_LIB_COPY);
	zc_close(f.zs);
	close(f.fd);
}

/*
 * The send ring's memory follows the sends in flight: one chunk at
 * zc_open(), one more for each ZC_CHUNK sends out, and after reaping the
 * chunk of the tail and the spare the reap side handed back.
 */
static void test_ring_chunks_follow_sends(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(zc__ring_chunks(f->zs), 1);
	send_n(f->zs, 100, 0, 16384);		/* slots 0..99 */
	assert_int_equal(zc__ring_chunks(f->zs), 100 / ZC_CHUNK + 1);
	fk_complete(0, 99, false);
	expect_cookies(f->zs, 0, 100, 0);
	assert_int_equal(zc__ring_chunks(f->zs), 2);
	/* The next chunk is the spare: no new memory. */
	send_n(f->zs, 100, 100, 16384);
	assert_int_equal(zc__ring_chunks(f->zs), 200 / ZC_CHUNK -
			 100 / ZC_CHUNK + 1);
	fk_complete(100, 199, false);
	expect_cookies(f->zs, 100, 100, 0);
	assert_true(zc__ring_chunks(f->zs) <= 2);
}

/*
 * Where the pages stay in flight, TCP completions come in bursts: a
 * socket reaps a hundred sends at once, and sends a hundred more. The
 * second burst takes the chunks the first one let go, from the thread's
 * cache: no malloc() (every one would fail), and the socket itself
 * holds no more than before.
 */
static void test_ring_chunks_cached(void **state)
{
	struct fixture *f = *state;

	send_n(f->zs, 100, 0, 16384);
	fk_complete(0, 99, false);
	expect_cookies(f->zs, 0, 100, 0);
	assert_int_equal(zc__ring_chunks(f->zs), 2);
	fa_fail(0, UINT_MAX);
	send_n(f->zs, 100, 100, 16384);
	fk_complete(100, 199, false);
	expect_cookies(f->zs, 100, 100, 0);
	assert_int_equal(fa_failed(), 0);
	fa_fail(0, 0);
	assert_true(zc__ring_chunks(f->zs) <= 2);
}

/* What the library holds for zs: each block and its malloc header. */
static size_t held(struct zc_sock *zs)
{
	struct zc_chunk *spare = atomic_load(&zs->spare);
	size_t n = malloc_usable_size(zs) + 8;

	for (struct zc_chunk *c = zc__rx_chunk(zs); c; c = c->next)
		n += malloc_usable_size(c) + 8;
	if (spare)
		n += malloc_usable_size(spare) + 8;
	return n;
}

/*
 * An idle handle (errqueue, max_inflight 1024) holds at most 1 KiB,
 * after zc_open() and after a stream once everything is reaped: struct
 * zc_sock, the tail's chunk and the spare; nothing else.
 */
static void test_idle_memory(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(f->zs->mask, 1023);
	assert_true(held(f->zs) <= 1024);
	for (uint32_t i = 0; i < 1000; i += 100) {
		send_n(f->zs, 100, i, 16384);
		fk_complete(i, i + 99, false);
		expect_cookies(f->zs, i, 100, 0);
	}
	assert_int_equal(zc__ring_chunks(f->zs), 2);
	assert_null(f->zs->done);
	assert_null(f->zs->foreign);
	assert_true(held(f->zs) <= 1024);
}

/*
 * max_inflight 2, slot numbers that wrap past 2^32: chunk after chunk is
 * entered and left, and never more than the tail's and the spare held.
 */
static void test_ring_chunks_wrap_small(void **state)
{
	struct fixture f;
	struct zc_opts o = { .sz = sizeof(o), .copy_below = 1,
			     .max_inflight = 2, .flags = ZC_OPT_NO_ADAPT,
			     .backend = ZC_BACKEND_ERRQUEUE };

	(void)state;
	assert_int_equal(open_zs(&f, &o), 0);
	/* Slot numbers near the wrap (a chunk's first: tx_e is slot 0's). */
	atomic_store(&f.zs->tail, 0u - 5 * ZC_CHUNK);
	atomic_store(&f.zs->head, 0u - 5 * ZC_CHUNK);
	/* and the send side's view of head: where the ring is full. */
	f.zs->tx_room_end = 0u - 5 * ZC_CHUNK + 2;
	for (uint32_t i = 0; i < 10 * ZC_CHUNK; i += 2) {
		send_n(f.zs, 2, i, 16384);
		assert_int_equal(zc_send(f.zs, buf, 16384, 0, 0), -ENOBUFS);
		fk_complete(i, i + 1, false);
		expect_cookies(f.zs, i, 2, 0);
		assert_true(zc__ring_chunks(f.zs) <= 2);
	}
	assert_int_equal(atomic_load(&f.zs->tail), 5 * ZC_CHUNK);
	zc_close(f.zs);
	close(f.fd);
}

/*
 * No memory for the next chunk: the send into a chunk's last slot fails
 * with -ENOMEM before the syscall, and the next one tries again.
 */
static void test_ring_chunk_no_memory(void **state)
{
	struct fixture *f = *state;
	unsigned int calls;

	send_n(f->zs, ZC_CHUNK - 1, 0, 16384);
	calls = fk.nsends;
	zc__chunk_cache_flush();	/* no chunk but from malloc() */
	fa_fail(0, 1);
	assert_int_equal(zc_send(f->zs, buf, 16384, 0, 99), -ENOMEM);
	assert_int_equal(fa_failed(), 1);
	fa_fail(0, 0);
	assert_int_equal(fk.nsends, calls);		/* nothing sent */
	assert_non_null(strstr(zc_last_error(), "nothing was sent"));
	assert_int_equal(zc_inflight(f->zs), ZC_CHUNK - 1);
	send_n(f->zs, 2, ZC_CHUNK - 1, 16384);	/* then it links one */
	fk_complete(0, ZC_CHUNK, false);
	expect_cookies(f->zs, 0, ZC_CHUNK + 1, 0);
}

/* No memory for the first chunk: zc_open() fails, and leaks nothing. */
static void test_open_no_memory(void **state)
{
	struct fixture f;

	(void)state;
	zc__chunk_cache_flush();	/* no chunk but from malloc() */
	fa_fail(0, 1);
	assert_int_equal(open_zs(&f, NULL), -ENOMEM);
	assert_int_equal(fa_failed(), 1);
	fa_fail(0, 0);
	assert_null(f.zs);
	close(f.fd);
}

static void test_udp_used_id_max_inflight_1(void **state)
{
	struct fixture f;
	struct zc_completion c[8];

	(void)state;
	udp_fixture(&f, 1, true);
	fk.drop_enobufs = 1;
	assert_int_equal(zc_send(f.zs, buf, 16384, 0, 0), 16384); /* id 0 */
	assert_int_equal(zc_completions(f.zs, c, 8), 1);	/* settled */
	assert_int_equal(c[0].flags, ZC_COPIED | ZC_LIB_COPY);
	send_n(f.zs, 1, 1, 16384);			/* id 1 */
	assert_int_equal(fk.sends[fk.nsends - 1].id, 1);
	assert_int_equal(zc_completions(f.zs, c, 8), 0);	/* held */
	fk_complete(1, 1, false);
	expect_cookies(f.zs, 1, 1, 0);
	/* A dropped send whose copy fails too holds the only slot. */
	fk.drop_enobufs = 1;
	fk.drop_err = EPERM;
	assert_int_equal(zc_send(f.zs, buf, 16384, 0, 2), -EPERM);
	assert_int_equal(zc_inflight(f.zs), 0);		/* no send ... */
	assert_int_equal(zc_send(f.zs, buf, 16384, 0, 9), -ENOBUFS); /* ... */
	assert_non_null(strstr(zc_last_error(), "failed UDP sends"));
	assert_int_equal(zc_completions(f.zs, c, 8), 0);	/* settles */
	send_n(f.zs, 1, 3, 16384);
	assert_int_equal(fk.sends[fk.nsends - 1].id, 3);
	fk_complete(3, 3, false);
	expect_cookies(f.zs, 3, 1, 0);
	expect_stats_clean(f.zs, 3);
	zc_close(f.zs);
	close(f.fd);
}

/*
 * The ring is full of failed sends only: zc_wait() settles them and
 * returns (0) at once, so a caller that waits for room is not stuck until
 * its timeout (or forever, with -1) for a completion that cannot come.
 */
static void test_wait_for_room_after_failed_send(void **state)
{
	struct fixture f;
	struct zc_completion c[8];
	struct timespec t0, t1;
	long ms;

	(void)state;
	udp_fixture(&f, 1, false);
	fk.drop_enobufs = 1;
	fk.drop_err = EPERM;
	assert_int_equal(zc_send(f.zs, buf, 16384, 0, 0), -EPERM);
	assert_int_equal(zc_send(f.zs, buf, 16384, 0, 1), -ENOBUFS);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(zc_wait(f.zs, c, 8, 5000), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	assert_true(ms < 1000);
	send_n(f.zs, 1, 1, 16384);
	assert_int_equal(fk.sends[fk.nsends - 1].id, 1);
	fk_complete(1, 1, false);
	assert_int_equal(zc_wait(f.zs, c, 8, -1), 1);
	expect_stats_clean(f.zs, 1);
	zc_close(f.zs);
	close(f.fd);
}

/* max 0 stores nothing and does not read the queue (zc_completions(3)). */
static void test_completions_max0(void **state)
{
	struct fixture *f = *state;

	send_n(f->zs, 1, 0, 16384);
	fk_complete(0, 0, false);
	fk.recvmmsg_calls = 0;
	assert_int_equal(zc_completions(f->zs, NULL, 0), 0);
	assert_int_equal(zc_completions(f->zs, (struct zc_completion *)buf, 0),
			 0);
	assert_int_equal(fk.recvmmsg_calls, 0);
	assert_int_equal(fk.qlen, 1);
	expect_cookies(f->zs, 0, 1, 0);
}

/* msg_iovlen past IOV_MAX: EMSGSIZE as sendmsg(2), the array untouched. */
static void test_iovlen_past_iov_max(void **state)
{
	struct fixture *f = *state;
	long pg = sysconf(_SC_PAGESIZE);
	char *map = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct iovec *iov;
	struct msghdr m;

	assert_true(map != MAP_FAILED);
	assert_int_equal(munmap(map + pg, pg), 0);	/* a hole after it */
	iov = (struct iovec *)(map + pg) - 1;
	*iov = (struct iovec){ buf, 1 };
	m = (struct msghdr){ .msg_iov = iov, .msg_iovlen = (size_t)1 << 24 };
	assert_int_equal(zc_sendmsg(f->zs, &m, 0, 0), -EMSGSIZE);
	assert_non_null(strstr(zc_last_error(), "IOV_MAX"));
	m.msg_iovlen = IOV_MAX + 1;
	assert_int_equal(zc_sendmsg(f->zs, &m, 0, 0), -EMSGSIZE);
	assert_int_equal(fk.nsends, 0);
	munmap(map, pg);
}

/* A failed sendmsg(2) sets a message naming the call the caller made. */
static void test_send_error_message(void **state)
{
	struct fixture *f = *state;
	struct iovec iov = { buf, 100 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	int errs[] = { EPIPE, EPIPE };

	fk_script_send_errors(errs, 2);
	assert_int_equal(zc_send(f->zs, buf, 100, 0, 0), -EPIPE);
	assert_string_equal(zc_last_error(), "zc_send: send(2) failed; "
			    "nothing was sent, no completion will come");
	assert_int_equal(zc_sendmsg(f->zs, &m, 0, 0), -EPIPE);
	assert_string_equal(zc_last_error(), "zc_sendmsg: sendmsg(2) failed; "
			    "nothing was sent, no completion will come");
}

static void test_enobufs_then_error(void **state)
{
	struct fixture *f = *state;
	struct zc_completion c[8];
	int errs[] = { ENOBUFS, EAGAIN };

	fk_script_send_errors(errs, 2);
	assert_int_equal(zc_send(f->zs, buf, 16384, MSG_DONTWAIT, 9), -EAGAIN);
	assert_int_equal(zc_completions(f->zs, c, 8), 0);
	assert_int_equal(zc_inflight(f->zs), 0);
}

static void test_partial_send(void **state)
{
	struct fixture *f = *state;
	struct zc_completion c[8];

	fk.send_cap = 1000;
	assert_int_equal(zc_send(f->zs, buf, 16384, MSG_DONTWAIT, 5), 1000);
	fk_complete(0, 0, false);
	assert_int_equal(zc_completions(f->zs, c, 8), 1);
	assert_int_equal(c[0].bytes, 1000);
}

static void test_max_inflight(void **state)
{
	struct fixture f;
	struct zc_completion c[8];
	struct zc_opts o = {
		.sz = sizeof(o), .max_inflight = 4, .copy_below = 1,
		.flags = ZC_OPT_NO_ADAPT,
	};

	(void)state;
	assert_int_equal(open_zs(&f, &o), 0);
	send_n(f.zs, 4, 0, 16384);
	/* Full: refused without a syscall, nothing lost. */
	assert_int_equal(zc_send(f.zs, buf, 16384, 0, 4), -ENOBUFS);
	assert_int_equal(zc_send(f.zs, buf, 10, 0, 4), -ENOBUFS);
	assert_int_equal(fk.nsends, 4);
	assert_int_equal(zc_inflight(f.zs), 4);
	fk_complete(0, 1, false);
	assert_int_equal(zc_completions(f.zs, c, 8), 2);
	send_n(f.zs, 2, 4, 16384);	/* ids 4, 5 reuse slots of 0, 1 */
	assert_int_equal(zc_send(f.zs, buf, 16384, 0, 6), -ENOBUFS);
	fk_complete(4, 5, false);
	assert_int_equal(zc_completions(f.zs, c, 8), 0); /* 2, 3 first */
	fk_complete(2, 3, false);
	assert_int_equal(zc_completions(f.zs, c, 8), 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(c[i].cookie, 2 + i);
	zc_close(f.zs);
	close(f.fd);
}

/*
 * Ids reported twice, in order and out of it, with the window wrapping
 * onto the same done[] slots: counted as bad, and never a completion for
 * the later sends that reuse those slots (no mark may stay behind).
 */
static void test_repeat_reports_leave_no_mark(void **state)
{
	struct fixture f;
	struct zc_completion c[8];
	struct zc_stats st = { .sz = sizeof(st) };
	struct zc_opts o = {
		.sz = sizeof(o), .max_inflight = 4, .copy_below = 1,
		.flags = ZC_OPT_NO_ADAPT,
	};

	(void)state;
	assert_int_equal(open_zs(&f, &o), 0);
	send_n(f.zs, 4, 0, 16384);
	fk_complete(0, 1, false);
	fk_complete(1, 1, false);	/* again, inside the run */
	fk_complete(3, 3, true);	/* out of order: a mark */
	fk_complete(3, 3, true);	/* the mark again */
	assert_int_equal(zc_completions(f.zs, c, 8), 2);
	fk_complete(2, 2, false);
	assert_int_equal(zc_completions(f.zs, c, 8), 2);
	assert_int_equal(c[0].flags, 0);
	assert_int_equal(c[1].flags, ZC_COPIED);
	assert_int_equal(zc_get_stats(f.zs, &st), 0);
	assert_int_equal(st.bad_ranges, 2);
	/* Ids 4..7 use the slots of 0..3: none is complete yet. */
	send_n(f.zs, 4, 4, 16384);
	assert_int_equal(zc_completions(f.zs, c, 8), 0);
	assert_int_equal(zc_inflight(f.zs), 4);
	fk_complete(4, 4, false);
	assert_int_equal(zc_completions(f.zs, c, 8), 1);
	assert_int_equal(c[0].cookie, 4);
	fk_complete(7, 7, false);	/* out of order */
	fk_complete(5, 5, true);	/* in order, copied */
	assert_int_equal(zc_completions(f.zs, c, 8), 1);
	assert_int_equal(c[0].cookie, 5);
	assert_int_equal(c[0].flags, ZC_COPIED);
	fk_complete(6, 6, false);
	assert_int_equal(zc_completions(f.zs, c, 8), 2);
	assert_int_equal(c[0].cookie, 6);
	assert_int_equal(c[1].cookie, 7);
	assert_int_equal(zc_get_stats(f.zs, &st), 0);
	assert_int_equal(st.bad_ranges, 2);
	zc_close(f.zs);
	close(f.fd);
}

static void test_copy_below(void **state)
{
	struct fixture f;
	struct zc_completion c[8];
	struct zc_opts o = { .sz = sizeof(o), .copy_below = 4096 };

	(void)state;
	assert_int_equal(open_zs(&f, &o), 0);
	assert_int_equal(zc_send(f.zs, buf, 4095, 0, 1), 4095);
	assert_int_equal(zc_send(f.zs, buf, 4096, 0, 2), 4096);
	assert_int_equal(zc_send(f.zs, buf, 0, 0, 3), 0);
	assert_false(fk.sends[0].flags & MSG_ZEROCOPY);
	assert_true(fk.sends[1].flags & MSG_ZEROCOPY);
	assert_false(fk.sends[2].flags & MSG_ZEROCOPY);
	assert_int_equal(zc_completions(f.zs, c, 8), 1);
	assert_int_equal(c[0].cookie, 1);
	assert_int_equal(c[0].flags, ZC_COPIED | ZC_LIB_COPY);
	fk_complete(0, 0, true);
	assert_int_equal(zc_completions(f.zs, c, 8), 2);
	assert_int_equal(c[0].cookie, 2);
	assert_int_equal(c[0].flags, ZC_COPIED);
	assert_int_equal(c[1].cookie, 3);
	assert_int_equal(c[1].bytes, 0);
	zc_close(f.zs);
	close(f.fd);
}

/* Default options: after ZC_ADAPT_THRESHOLD copied ids, copy instead. */
static void test_adapt_to_copying(void **state)
{
	struct fixture f;
	struct zc_completion c[64];
	struct zc_opts o = { .sz = sizeof(o), .copy_below = 1 };
	unsigned int zc_before, i, tries = 0;

	(void)state;
	assert_int_equal(open_zs(&f, &o), 0);
	for (i = 0; i < ZC_ADAPT_THRESHOLD; i++) {
		send_n(f.zs, 1, i, 16384);
		fk_complete(i, i, true);
		assert_int_equal(zc_completions(f.zs, c, 64), 1);
	}
	assert_int_equal(fk_count_sends(true), ZC_ADAPT_THRESHOLD);
	/* Now mostly copies, with a zero-copy try every ZC_ADAPT_RETRY. */
	zc_before = fk_count_sends(true);
	for (i = 0; i < 2 * ZC_ADAPT_RETRY; i++) {
		send_n(f.zs, 1, 1000 + i, 16384);
		if (fk.sends[fk.nsends - 1].flags & MSG_ZEROCOPY) {
			uint32_t id = (uint32_t)fk.sends[fk.nsends - 1].id;

			fk_complete(id, id, true);	/* still copied */
			tries++;
		}
		while (zc_completions(f.zs, c, 64) > 0)
			;
	}
	assert_int_equal(fk_count_sends(true) - zc_before, tries);
	assert_int_equal(tries, 2);
	/* A try that really went zero-copy switches zero-copy back on. */
	for (i = 0; i < ZC_ADAPT_RETRY; i++) {
		send_n(f.zs, 1, 5000 + i, 16384);
		if (fk.sends[fk.nsends - 1].flags & MSG_ZEROCOPY) {
			uint32_t id = (uint32_t)fk.sends[fk.nsends - 1].id;

			fk_complete(id, id, false);
			while (zc_completions(f.zs, c, 64) > 0)
				;
			break;
		}
		while (zc_completions(f.zs, c, 64) > 0)
			;
	}
	assert_true(i < ZC_ADAPT_RETRY);
	zc_before = fk_count_sends(true);
	send_n(f.zs, 3, 9000, 16384);
	assert_int_equal(fk_count_sends(true) - zc_before, 3);
	zc_close(f.zs);
	close(f.fd);
}

static void test_no_adapt_keeps_zerocopy(void **state)
{
	struct fixture *f = *state;
	struct zc_completion c[64];

	for (uint32_t i = 0; i < 4 * ZC_ADAPT_THRESHOLD; i++) {
		send_n(f->zs, 1, i, 16384);
		fk_complete(i, i, true);
		assert_int_equal(zc_completions(f->zs, c, 64), 1);
	}
	assert_int_equal(fk_count_sends(true), 4 * ZC_ADAPT_THRESHOLD);
}

static void test_wait(void **state)
{
	struct fixture *f = *state;
	struct zc_completion c[8];
	struct timespec t0, t1;
	long ms;

	send_n(f->zs, 2, 0, 16384);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(zc_wait(f->zs, c, 8, 50), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	assert_true(ms >= 45);
	fk_complete(0, 1, false);
	assert_int_equal(zc_wait(f->zs, c, 8, -1), 2);
	assert_int_equal(zc_wait(f->zs, c, 8, -2), -EINVAL);
	/* Foreign records alone must not make zc_wait() spin or lose them. */
	fk_foreign(ECONNREFUSED, SO_EE_ORIGIN_ICMP);
	send_n(f->zs, 1, 2, 16384);
	assert_int_equal(zc_wait(f->zs, c, 8, 20), 0);
	assert_int_equal(fk.qlen, 0);
}

/*
 * zc_wait() reads the error queue once, then only on POLLERR: while the
 * oldest send still waits, looking again finds nothing (on 2e0f1e5 it read
 * before every poll and once more after it: 3 reads for a 50 ms wait).
 */
static void test_wait_reads_once(void **state)
{
	struct fixture *f = *state;
	struct zc_completion c[8];

	send_n(f->zs, 2, 0, 16384);
	fk_complete(1, 1, false);		/* id 0 is still out */
	fk.recvmmsg_calls = 0;
	assert_int_equal(zc_wait(f->zs, c, 8, 50), 0);
	assert_int_equal(fk.recvmmsg_calls, 1);
	fk_complete(0, 0, false);		/* POLLERR: one read, both out */
	fk.recvmmsg_calls = 0;
	assert_int_equal(zc_wait(f->zs, c, 8, 1000), 2);
	assert_int_equal(fk.recvmmsg_calls, 1);
}

/*
 * A caller that reaps after each send, then waits: its zc_completions()
 * read found nothing, so zc_wait() polls before it reads again. One read
 * in the wait, not two (the zcstream -u pattern where loopback keeps the
 * pages: 3 reads a send before).
 */
static void test_wait_after_dry_read(void **state)
{
	struct fixture *f = *state;
	struct zc_completion c[8];

	send_n(f->zs, 1, 0, 16384);
	fk.recvmmsg_calls = 0;
	assert_int_equal(zc_completions(f->zs, c, 8), 0);
	assert_int_equal(fk.recvmmsg_calls, 1);
	fk_complete(0, 0, false);
	fk.recvmmsg_calls = 0;
	fk.poll_calls = 0;
	assert_int_equal(zc_wait(f->zs, c, 8, 1000), 1);
	assert_int_equal(fk.recvmmsg_calls, 1);
	assert_int_equal(fk.poll_calls, 1);
	/* That read found a record: the next wait reads first, no poll. */
	send_n(f->zs, 1, 1, 16384);
	fk_complete(1, 1, false);
	fk.recvmmsg_calls = 0;
	fk.poll_calls = 0;
	assert_int_equal(zc_wait(f->zs, c, 8, 1000), 1);
	assert_int_equal(fk.recvmmsg_calls, 1);
	assert_int_equal(fk.poll_calls, 0);
}

static void test_bad_options(void **state)
{
	struct zc_sock *zs = (void *)1;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct {
		struct zc_opts o;
		uint64_t future;
	} big = { .o = { .sz = sizeof(big) } };
	struct zc_opts o;

	(void)state;
	unsetenv("ZCNOTIFY_BACKEND");
	assert_int_equal(zc_open(fd, NULL, NULL), -EINVAL);
	o = (struct zc_opts){ .sz = 0 };
	assert_int_equal(zc_open(fd, &o, &zs), -EINVAL);
	assert_null(zs);
	assert_true(strstr(zc_last_error(), "sz") != NULL);
	o = (struct zc_opts){ .sz = sizeof(o), .max_inflight = 3 };
	assert_int_equal(zc_open(fd, &o, &zs), -EINVAL);
	assert_true(strstr(zc_last_error(), "max_inflight") != NULL);
	o = (struct zc_opts){ .sz = sizeof(o), .max_inflight = 1u << 21 };
	assert_int_equal(zc_open(fd, &o, &zs), -EINVAL);
	o = (struct zc_opts){ .sz = sizeof(o), .backend = 42 };
	assert_int_equal(zc_open(fd, &o, &zs), -EINVAL);
	o = (struct zc_opts){ .sz = sizeof(o), .flags = 0x80 };
	assert_int_equal(zc_open(fd, &o, &zs), -EINVAL);
	/* A newer caller's struct: zero tail is fine, non-zero is E2BIG. */
	big.future = 1;
	assert_int_equal(zc_open(fd, &big.o, &zs), -E2BIG);
	assert_true(strstr(zc_last_error(), "offset") != NULL);
	big.future = 0;
	assert_int_equal(zc_open(fd, &big.o, &zs), 0);
	zc_close(zs);
	/* An older caller's struct: the missing fields read as zero. */
	o = (struct zc_opts){ .sz = offsetof(struct zc_opts, copy_below),
			      .max_inflight = 8, .copy_below = 7 };
	assert_int_equal(zc_open(fd, &o, &zs), 0);
	assert_int_equal(zs->copy_below, ZC_DEFAULT_COPY_BELOW);
	assert_int_equal(zs->mask, 7);
	zc_close(zs);
	close(fd);
}

static void test_bad_fds(void **state)
{
	struct zc_sock *zs;
	struct zc_opts eq = { .sz = sizeof(eq), .backend = ZC_BACKEND_ERRQUEUE };
	int p[2], u[2], l;
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };

	(void)state;
	unsetenv("ZCNOTIFY_BACKEND");
	assert_int_equal(pipe(p), 0);
	assert_int_equal(zc_open(p[0], NULL, &zs), -ENOTSOCK);
	assert_true(strstr(zc_last_error(), "not a socket") != NULL);
	close(p[0]);
	close(p[1]);
	assert_int_equal(zc_open(p[0], NULL, &zs), -EBADF);
	assert_int_equal(zc_open(-1, NULL, &zs), -EBADF);

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, u), 0);
	assert_int_equal(zc_open(u[0], &eq, &zs), -EOPNOTSUPP);
	assert_int_equal(zc_open(u[0], NULL, &zs), 0);
	assert_int_equal(zc_backend(zs), ZC_BACKEND_COPY);
	/* The copy backend still gives one completion per send. */
	assert_int_equal(zc_send(zs, "hi", 2, 0, 77), 2);
	{
		struct zc_completion c;

		assert_int_equal(zc_completions(zs, &c, 1), 1);
		assert_int_equal(c.cookie, 77);
		assert_int_equal(c.flags, ZC_COPIED | ZC_LIB_COPY);
	}
	zc_close(zs);
	close(u[0]);
	close(u[1]);

	l = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(l, 1), 0);
	assert_int_equal(zc_open(l, NULL, &zs), -EINVAL);
	assert_true(strstr(zc_last_error(), "listening") != NULL);
	close(l);
}

static void test_env_backend(void **state)
{
	struct zc_sock *zs;
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	(void)state;
	setenv("ZCNOTIFY_BACKEND", "bogus", 1);
	assert_int_equal(zc_open(fd, NULL, &zs), -EINVAL);
	assert_true(strstr(zc_last_error(), "ZCNOTIFY_BACKEND") != NULL);
	setenv("ZCNOTIFY_BACKEND", "copy", 1);
	assert_int_equal(zc_open(fd, NULL, &zs), 0);
	assert_int_equal(zc_backend(zs), ZC_BACKEND_COPY);
	zc_close(zs);
	setenv("ZCNOTIFY_BACKEND", "errqueue", 1);
	assert_int_equal(zc_open(fd, NULL, &zs), 0);
	assert_int_equal(zc_backend(zs), ZC_BACKEND_ERRQUEUE);
	zc_close(zs);
	unsetenv("ZCNOTIFY_BACKEND");
	close(fd);
}

static void test_bad_send_args(void **state)
{
	struct fixture *f = *state;
	struct msghdr m = { .msg_iovlen = 1 };
	struct iovec iov[2] = { { buf, SIZE_MAX }, { buf, 2 } };

	assert_int_equal(zc_sendmsg(NULL, &m, 0, 0), -EINVAL);
	assert_int_equal(zc_sendmsg(f->zs, NULL, 0, 0), -EINVAL);
	assert_int_equal(zc_sendmsg(f->zs, &m, 0, 0), -EINVAL); /* iov NULL */
	m.msg_iov = iov;
	m.msg_iovlen = 2;
	assert_int_equal(zc_sendmsg(f->zs, &m, 0, 0), -EINVAL); /* overflow */
	assert_int_equal(zc_send(f->zs, buf, 10, MSG_OOB, 0), -EINVAL);
	assert_int_equal(zc_send(f->zs, NULL, 10, 0, 0), -EINVAL);
	assert_int_equal(fk.nsends, 0);
	assert_int_equal(zc_inflight(f->zs), 0);
	assert_int_equal(zc_completions(f->zs, NULL, 1), -EINVAL);
	/* Each message names the call that was made. */
	assert_int_equal(zc_wait(NULL, (struct zc_completion[1]){ 0 }, 1, 0),
			 -EINVAL);
	assert_int_equal(strncmp(zc_last_error(), "zc_wait: ", 9), 0);
	assert_int_equal(zc_wait(f->zs, NULL, 1, 0), -EINVAL);
	assert_int_equal(strncmp(zc_last_error(), "zc_wait: ", 9), 0);
	assert_int_equal(zc_completions(NULL, NULL, 0), -EINVAL);
	assert_int_equal(strncmp(zc_last_error(), "zc_completions: ", 16), 0);
}

static void test_names_and_stats(void **state)
{
	struct fixture *f = *state;
	struct zc_stats st = { .sz = sizeof(st) };
	struct zc_stats small = { .sz = offsetof(struct zc_stats, sends_copy) };

	(void)state;
	assert_string_equal(zc_backend_name(ZC_BACKEND_AUTO), "auto");
	assert_string_equal(zc_backend_name(ZC_BACKEND_ERRQUEUE), "errqueue");
	assert_string_equal(zc_backend_name(ZC_BACKEND_SCM), "scm");
	assert_string_equal(zc_backend_name(ZC_BACKEND_URING), "uring");
	assert_string_equal(zc_backend_name(ZC_BACKEND_COPY), "copy");
	assert_null(zc_backend_name(-1));
	assert_null(zc_backend_name(5));
	send_n(f->zs, 3, 0, 16384);
	fk_complete(0, 2, true);
	expect_cookies(f->zs, 0, 3, ZC_COPIED);
	assert_int_equal(zc_send(f->zs, buf, 0, 0, 3), 0);
	expect_cookies(f->zs, 3, 1, ZC_COPIED | ZC_LIB_COPY);
	assert_int_equal(zc_get_stats(f->zs, &st), 0);
	assert_int_equal(st.sends, 4);
	assert_int_equal(st.sends_zc, 3);
	assert_int_equal(st.sends_copy, 1);
	assert_int_equal(st.completions, 4);
	assert_int_equal(st.completions_copied, 4);
	assert_int_equal(st.harvest_recvmsg, 1);
	assert_int_equal(zc_get_stats(f->zs, &small), 0);
	assert_int_equal(small.sends_zc, 3);
	assert_int_equal(small.sz, offsetof(struct zc_stats, sends_copy));
	small.sz = 2;
	assert_int_equal(zc_get_stats(f->zs, &small), -EINVAL);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup_default, teardown)

int main(void)
{
	/*
	 * These tests pin the error-queue core: AUTO must not pick SCM even
	 * on a kernel that has it (the kernel rig's patched guest).
	 */
	setenv("ZCNOTIFY_SCM_PROBE", "no", 1);
	const struct CMUnitTest tests[] = {
		T(test_never_early),
		T(test_coalesced),
		T(test_copied_flag),
		T(test_out_of_order),
		T(test_wrap_coalesced),
		T(test_wrap_out_of_order),
		T(test_marks_lazy),
		T(test_marks_no_memory),
		T(test_ipv6_level),
		T(test_bogus_ranges),
		T(test_duplicate_range),
		T(test_foreign_records),
		T(test_foreign_overflow_counted),
		T(test_foreign_stash_lazy),
		T(test_foreign_stash_no_memory),
		T(test_eq_per_thread),
		T(test_ctrunc),
		cmocka_unit_test(test_parser_hostile_len),
		cmocka_unit_test(test_parser_layouts),
		T(test_recvmmsg_batches),
		T(test_no_syscall_when_idle),
		T(test_send_error_no_completion),
		T(test_enobufs_resends_by_copy),
		T(test_enobufs_takes_queued_then_zerocopy),
		T(test_enobufs_takes_foreign_once),
		T(test_enobufs_harvest_wakes_reaper),
		T(test_enobufs_all_reported_copies),
		T(test_enobufs_waits_for_inflight),
		T(test_enobufs_wait_bounded),
		T(test_enobufs_then_error),
		cmocka_unit_test(test_udp_emsgsize_resends_by_copy),
		cmocka_unit_test(test_ambiguous_settled_during_copy),
		cmocka_unit_test(test_enobufs_ambiguous_taken),
		cmocka_unit_test(test_enobufs_ambiguous_not_taken),
		cmocka_unit_test(test_settle_read_fails_ready_comes),
		cmocka_unit_test(test_udp_eperm_used_id),
		cmocka_unit_test(test_udp_error_no_id),
		cmocka_unit_test(test_udp_used_id_max_inflight_2),
		cmocka_unit_test(test_udp_used_id_max_inflight_1),
		cmocka_unit_test(test_udp_used_id_later_chunk),
		T(test_ring_chunks_follow_sends),
		T(test_ring_chunks_cached),
		T(test_idle_memory),
		cmocka_unit_test(test_ring_chunks_wrap_small),
		T(test_ring_chunk_no_memory),
		cmocka_unit_test(test_open_no_memory),
		cmocka_unit_test(test_wait_for_room_after_failed_send),
		T(test_completions_max0),
		T(test_iovlen_past_iov_max),
		T(test_send_error_message),
		T(test_partial_send),
		cmocka_unit_test(test_max_inflight),
		cmocka_unit_test(test_repeat_reports_leave_no_mark),
		cmocka_unit_test(test_copy_below),
		cmocka_unit_test(test_adapt_to_copying),
		T(test_no_adapt_keeps_zerocopy),
		T(test_wait),
		T(test_wait_reads_once),
		T(test_wait_after_dry_read),
		cmocka_unit_test(test_bad_options),
		cmocka_unit_test(test_bad_fds),
		cmocka_unit_test(test_env_backend),
		T(test_bad_send_args),
		T(test_names_and_stats),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
