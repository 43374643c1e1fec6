// SPDX-License-Identifier: MIT
/*
 * One zc_sock, two threads: a sender and a reaper, without a lock between
 * them, as the threading contract allows; a third thread receives and
 * checks every byte over a loopback TCP connection.
 *
 * Phase "zc": copy_below = 1, ZC_OPT_NO_ADAPT and max_inflight = 64, with a
 * pool of 96 buffers: every send takes a kernel id, the ring fills up
 * (the reaper naps now and then) and the sender backs off on -ENOBUFS; the
 * reaper sleeps in zc_wait() on POLLERR.
 * Phase "default": the default options, so most sends are copies complete
 * at once, with a zero-copy send now and then.
 * Phase "copy": copy_below 1 MiB, so every send is a copy complete at its
 * push: a reaper asleep in zc_wait() is woken by the sender's push (the
 * eventfd) and by nothing else, so a lost wake-up shows as a wait that
 * sleeps on long after a completion was there.
 *
 * Lost wake-ups are told by evidence, not by the clock: under load (a
 * starved qemu TCG guest) a woken reaper may get no CPU for seconds. A
 * fourth thread, the watcher, looks at the reaper while it is inside
 * zc_wait(): /proc/self/task/TID/syscall names the syscall a thread is
 * blocked in, only when it is off the run queue (the kernel waits until
 * a preempted thread runs again or sleeps), and /proc/.../stat says 'S'
 * only for a thread not woken (one woken but not yet on a run queue,
 * TASK_WAKING, whose wake-up waits for an IPI to its CPU, reads 'R'):
 * blocked in poll(), then 'S', then blocked again is asleep, and a woken
 * reaper that waits for a CPU never reads so. Asleep in
 * poll() after the sender's zc_send() of a library copy (complete at its
 * push, which wakes a waiter before zc_send() returns) had returned, that
 * copy still the oldest unreaped send: a lost wake-up, whatever the
 * clock says. Asleep in poll() through POLLERR on the socket (a
 * completion record queued), one sleep seen so in looks over 100 ms: a
 * lost wake-up on POLLERR (tolerated 3 times: the kernel queues the
 * record, then wakes, and the waker may be preempted in between). The
 * wall clock only counts slow wakes, except where the watcher cannot
 * see (io_uring's kernel completions, or /proc blind): there a slack
 * that grows with the watcher's own oversleeping decides.
 *
 * The reaper checks each completion as it comes: a cookie the sender has
 * started to send, never twice, in send order; a buffer goes back to the
 * pool only when every send from it completed, and is overwritten with
 * garbage first, so an early completion shows up at the receiver. After
 * the threads are done, every call that succeeded completed exactly once
 * with the bytes it returned, and no failed call completed.
 *
 * Built with -fsanitize=thread in CI: the buffer hand-off from the reaper
 * back to the sender goes through the library's own ordering.
 *
 * Phases "zc-small" and "zc-large": "zc" with max_inflight 4 and 1024.
 * The send ring's memory comes in chunks of 16 entries that the sender
 * links and the reaper lets go (src/ring.c): at 4 every chunk is crossed
 * with the ring full and the reaper close behind, the chunk it leaves
 * handed back to the sender; at 1024 many chunks are in flight at once.
 * Run with "chunks"; under ThreadSanitizer they check that hand-off.
 *
 * t_getters: "the getters may be called from any thread": a third thread
 * calls zc_inflight() (never more than max_inflight) and zc_get_stats()
 * (counters only grow) while a sender and a reaper run flat out.
 *
 * Usage: test-threads [phases] [chunks] [getters] (no argument: all).
 * ZC_TEST_SENDS=n sets the messages per phase (default 50000; 20000 under
 * ThreadSanitizer). ZC_RIG_LOOPBACK_ZC=1 (the kernel rig's bench kernel,
 * where loopback keeps zero-copy pages): a kernel completion is due only
 * when the receiver has read the data, which the reaper cannot time, so
 * late kernel completions are counted, not failed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "zcnotify.h"
#include "testutil.h"

#if defined(__SANITIZE_THREAD__) || ZC_HAS_TSAN
#define DEFAULT_SENDS	20000
#else
#define DEFAULT_SENDS	50000
#endif

#define MAX_INFLIGHT	64u
#define NBUF		96u
#define BUF_SIZE	65536u
#define MAX_SIZE	65536u
#define RX_BUF		(256u * 1024)
#define STALL_NS	(10 * 1000000000ll)	/* no completion for this long */
#define LONG_WAIT_MS	1000	/* a long zc_wait(): must wake on a push */
#define WAKE_SLACK_NS	(500 * 1000000ll)	/* a slow wake, by the clock */
#define WATCH_US	2000	/* the watcher's nap between two looks */
/* POLLERR up while the reaper sleeps on it: this often, this long. */
#define PERR_LOOKS	3
#define PERR_SPAN_NS	(100 * 1000000ll)
#define NO_BUF		UINT32_MAX

static uint64_t nsends = DEFAULT_SENDS;
static bool loopback_zc;	/* ZC_RIG_LOOPBACK_ZC=1: loopback keeps pages */

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void nap_us(unsigned int us)
{
	struct timespec ts = { us / 1000000, (long)(us % 1000000) * 1000 };

	nanosleep(&ts, NULL);
}

/* Half below the default copy_below (10240), the rest up to 64 KiB. */
static size_t msg_size(uint64_t seed, uint64_t i)
{
	uint64_t h = mix64(seed ^ (i * 0xD6E8FEB86659FD93ull));

	if (h & 1)
		return 1 + (h >> 1) % 10239;
	return 10240 + (h >> 1) % (MAX_SIZE - 10240 + 1);
}

struct buf {
	_Atomic uint32_t refs;	/* the sender's hold + one per unreaped send */
	_Atomic int free;	/* release: the reaper hands it back */
	uint32_t len;
};

enum phase { P_ZC, P_DEFAULT, P_COPY, P_ZC_SMALL, P_ZC_LARGE };
static const char *const phase_name[] = {
	"zc", "default", "copy", "zc-small", "zc-large",
};
static const unsigned int phase_inflight[] = {
	MAX_INFLIGHT, 0, 0, 4, 1024,
};

struct ctx {
	bool zc;			/* phase P_ZC */
	enum phase phase;
	uint64_t seed, nmsg, total;
	int tx, rx;
	struct zc_sock *zs;
	uint8_t *mem;
	struct buf bufs[NBUF];

	/* Per cookie (= index of the send call); cap entries. */
	uint64_t cap;
	uint32_t *cbuf;			/* sender, before the call */
	int32_t *sent;			/* sender, after: bytes or -1 */
	_Atomic int64_t *ret_ns;	/* sender: when the call returned */
	uint32_t *cbytes, *cflags;	/* reaper */
	uint8_t *done;			/* reaper */

	/* Release: the sender publishes before each call. */
	_Atomic uint64_t started;	/* cookies handed to zc_send so far */
	_Atomic uint64_t final;		/* cookie of the last send, + 1 */
	_Atomic uint64_t returned;	/* last cookie whose send returned +1 */
	_Atomic int abort;
	_Atomic int tx_done;
	_Atomic int saw_enobufs;	/* the sender met a full ring */

	/* Sender's tallies. */
	uint64_t ncookies, nok, enobufs, eagain, partial;
	/* Reaper's tallies. */
	uint64_t reaped, waits, woken, timeouts, late_kernel, naps, libcopy,
		 kernel, slow_copy, asleep, lost_pollerr, late_judged;

	/*
	 * The watcher's looks at the reaper (watch_main()). wait_gen is odd
	 * while the reaper is inside zc_wait(); it changes, and wit is read
	 * and reset, under wlock, so a look counts for the wait it saw.
	 */
	_Atomic int reaper_tid;
	_Atomic int reap_done;
	_Atomic int probe_blind;	/* /proc cannot tell: clock judges */
	_Atomic int64_t worst_oversleep;	/* the watcher's, ns */
	_Atomic int64_t nap_from;		/* its nap began */
	pthread_mutex_t wlock;
	_Atomic uint64_t wait_gen;
	struct witness {
		uint64_t frontier;	/* c->returned, last look asleep */
		uint32_t asleep;	/* looks that found it in poll() */
		uint32_t perr;		/* ... in one sleep through POLLERR */
		uint64_t perr_sleep;	/* its voluntary context switches */
		int64_t perr_first, perr_last;
	} wit;

	char err_tx[512], err_reap[512], err_rx[512];
	uint64_t rx_bytes;
};

static void set_err(struct ctx *c, char *err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(struct ctx *c, char *err, const char *fmt, ...)
{
	va_list ap;

	if (!err[0]) {
		va_start(ap, fmt);
		vsnprintf(err, 512, fmt, ap);
		va_end(ap);
	}
	atomic_store(&c->abort, 1);
}

static uint8_t *bufp(struct ctx *c, uint32_t b)
{
	return c->mem + (size_t)b * BUF_SIZE;
}

/* Drop one reference to b; the last one trashes it and frees it. */
static void put_buf(struct ctx *c, uint32_t b)
{
	struct buf *B = &c->bufs[b];

	if (atomic_fetch_sub_explicit(&B->refs, 1, memory_order_acq_rel) != 1)
		return;
	memset(bufp(c, b), 0xEE, B->len);
	/* Release: pairs with the acquire in the sender's wait for it. */
	atomic_store_explicit(&B->free, 1, memory_order_release);
}

/* ---- receiver ----------------------------------------------------------- */

static void *rx_main(void *arg)
{
	struct ctx *c = arg;
	uint8_t *buf = malloc(RX_BUF), *expect = malloc(BUF_SIZE);
	struct prng rnd = { c->seed ^ 0xD0E };
	uint64_t i = 0, last_sends = 0, reads = 0;
	size_t size = 0, off = 0;
	int idle = 0;

	if (!buf || !expect) {
		set_err(c, c->err_rx, "out of memory");
		goto out;
	}
	if (c->nmsg) {
		size = msg_size(c->seed, 0);
		fill_msg(expect, c->seed, 0, size);
	}
	for (;;) {
		ssize_t n = recv(c->rx, buf, RX_BUF, 0);
		const uint8_t *p = buf;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
		    !atomic_load(&c->abort) && ++idle < 20)
			continue;
		if (n < 0) {
			set_err(c, c->err_rx, "recv: %s after %llu bytes",
				strerror(errno),
				(unsigned long long)c->rx_bytes);
			break;
		}
		idle = 0;
		if (n == 0)
			break;
		c->rx_bytes += (uint64_t)n;
		if (c->err_rx[0])
			continue;	/* drain, so that the sender never blocks */
		if (c->rx_bytes > c->total) {
			set_err(c, c->err_rx, "%llu bytes past the %llu sent",
				(unsigned long long)(c->rx_bytes - c->total),
				(unsigned long long)c->total);
			continue;
		}
		while (n > 0) {
			size_t take;

			if (off == size) {
				size = msg_size(c->seed, ++i);
				fill_msg(expect, c->seed, i, size);
				off = 0;
			}
			take = size - off < (size_t)n ? size - off : (size_t)n;
			if (memcmp(p, expect + off, take)) {
				size_t k = 0;

				while (p[k] == expect[off + k])
					k++;
				set_err(c, c->err_rx, "message %llu (%zu bytes), "
					"byte %zu: got 0x%02x, want 0x%02x "
					"(buffer reused before the kernel let "
					"go of it?)", (unsigned long long)i,
					size, off + k, p[k], expect[off + k]);
				break;
			}
			p += take;
			n -= (ssize_t)take;
			off += take;
		}
		if (prng_below(&rnd, 128) == 0)
			nap_us(50 + prng_below(&rnd, 1000));
		/* The getters may be called from any thread. */
		if ((++reads & 63) == 0) {
			struct zc_stats st = { .sz = sizeof(st) };

			if (zc_get_stats(c->zs, &st))
				set_err(c, c->err_rx, "zc_get_stats: %s",
					zc_last_error());
			else if (st.sends < last_sends)
				set_err(c, c->err_rx, "stats: sends went back "
					"from %llu to %llu",
					(unsigned long long)last_sends,
					(unsigned long long)st.sends);
			last_sends = st.sends;
			(void)zc_inflight(c->zs);	/* t_getters checks it */
		}
	}
	if (!c->err_rx[0] && c->rx_bytes != c->total && !atomic_load(&c->abort))
		set_err(c, c->err_rx, "EOF after %llu of %llu bytes",
			(unsigned long long)c->rx_bytes,
			(unsigned long long)c->total);
out:
	free(buf);
	free(expect);
	return NULL;
}

/* ---- reaper ------------------------------------------------------------- */

static int reap_one(struct ctx *c, const struct zc_completion *z,
		    uint64_t *next_min, bool *finished)
{
	/* Acquire: pairs with the sender's release before zc_send(). */
	uint64_t started = atomic_load_explicit(&c->started,
						memory_order_acquire);
	uint64_t k = z->cookie;
	uint32_t b;

	if (k >= started) {
		set_err(c, c->err_reap, "completion for cookie %llu, but only "
			"%llu sends were started", (unsigned long long)k,
			(unsigned long long)started);
		return -1;
	}
	if (c->done[k]) {
		set_err(c, c->err_reap, "cookie %llu completed twice",
			(unsigned long long)k);
		return -1;
	}
	if (k < *next_min) {
		set_err(c, c->err_reap, "cookie %llu completed after cookie "
			"%llu (out of send order)", (unsigned long long)k,
			(unsigned long long)(*next_min - 1));
		return -1;
	}
	if ((z->flags & ~(ZC_COPIED | ZC_LIB_COPY)) ||
	    ((z->flags & ZC_LIB_COPY) && !(z->flags & ZC_COPIED))) {
		set_err(c, c->err_reap, "cookie %llu: flags 0x%x",
			(unsigned long long)k, z->flags);
		return -1;
	}
	*next_min = k + 1;
	c->done[k] = 1;
	c->cbytes[k] = z->bytes;
	c->cflags[k] = z->flags;
	c->reaped++;
	if (z->flags & ZC_LIB_COPY)
		c->libcopy++;
	else
		c->kernel++;
	b = c->cbuf[k];
	if (b != NO_BUF)
		put_buf(c, b);
	/* Acquire: pairs with the sender's release before its last call. */
	if (k + 1 == atomic_load_explicit(&c->final, memory_order_acquire))
		*finished = true;
	return 0;
}

/* ---- the watcher -------------------------------------------------------- */

/* The whole of a small /proc file into buf, NUL-ended: its length, or -1. */
static ssize_t read_proc(const char *path, char *buf, size_t size)
{
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	return n;
}

/*
 * Is the thread whose syscall file is path blocked in poll() (or ppoll())?
 * 1 if so, and *tmo_ms, poll()'s timeout (-1 for ppoll(): not known), 0
 * if not (running, runnable, or blocked elsewhere), -1 if /proc cannot
 * tell. The kernel (proc_pid_syscall(), task_current_syscall(),
 * wait_task_inactive()) answers "running" unless the thread is off the
 * run queue: for one on it (woken and waiting for a CPU, or preempted on
 * its way to sleep) it waits until the thread runs again, and then says
 * "running". A thread woken but not yet on a run queue (TASK_WAKING)
 * reads as blocked: see read_state().
 */
static int probe_poll(const char *path, int *tmo_ms)
{
	char buf[256];
	unsigned long a0, a1, a2;
	long nr;

	if (read_proc(path, buf, sizeof(buf)) < 0)
		return -1;
	/* "NR 0xARG0 0xARG1 ... SP PC", "-1 SP PC" (no syscall), "running" */
	if (sscanf(buf, "%ld 0x%lx 0x%lx 0x%lx", &nr, &a0, &a1, &a2) != 4)
		return 0;
#ifdef SYS_poll
	if (nr == SYS_poll) {
		*tmo_ms = (int)a2;
		return 1;
	}
#endif
#ifdef SYS_ppoll
	if (nr == SYS_ppoll) {
		*tmo_ms = -1;
		return 1;
	}
#endif
	return 0;
}

/*
 * The state letter of the thread whose stat file is path ('S': asleep,
 * interruptibly; 'R' also for a thread woken but not yet on a run queue),
 * or 0 if /proc cannot tell.
 */
static char read_state(const char *path)
{
	char buf[512], *p;

	if (read_proc(path, buf, sizeof(buf)) < 0)
		return 0;
	p = strrchr(buf, ')');	/* "TID (COMM) STATE ..." */
	return p && p[1] == ' ' ? p[2] : 0;
}

/*
 * The voluntary context switches of the thread whose status file is path
 * (it went to sleep that often), or -1 if /proc cannot tell.
 */
static int64_t read_nvcsw(const char *path)
{
	char buf[4096], *p;

	if (read_proc(path, buf, sizeof(buf)) < 0)
		return -1;
	p = strstr(buf, "\nvoluntary_ctxt_switches:");
	return p ? strtoll(p + strlen("\nvoluntary_ctxt_switches:"), NULL,
			   10) : -1;
}

/*
 * Look at the reaper now and then while it is inside zc_wait(); a look
 * counts for the wait it began and ended in (wait_gen unchanged). Each
 * look is evidence of a state, not a duration: the reaper asleep although
 * what it waits for had happened. check_wake() weighs it when the wait
 * is over.
 *
 * The sender's frontier (c->returned) is read before the reaper is found
 * asleep: those sends had returned while it slept. POLLERR is looked at
 * between two looks that find the reaper asleep in poll() with no
 * voluntary context switch between them (the status reads around them):
 * one sleep through POLLERR, not a wake-up, a read and a new sleep
 * before a new record. Looks in one sleep (same count) make a run.
 */
static void *watch_main(void *arg)
{
	struct ctx *c = arg;
	char path[64], status[64], stat[64];
	int64_t before, after;
	int tid;

	while (!(tid = atomic_load(&c->reaper_tid)) &&
	       !atomic_load(&c->reap_done))
		nap_us(100);
	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", tid);
	snprintf(status, sizeof(status), "/proc/self/task/%d/status", tid);
	snprintf(stat, sizeof(stat), "/proc/self/task/%d/stat", tid);
	before = now_ns();
	atomic_store(&c->nap_from, before);
	while (!atomic_load(&c->reap_done)) {
		struct pollfd pfd = { .fd = c->tx, .events = 0 };
		int64_t t, sw0;
		uint64_t g, f;
		bool perr;
		int r, tmo = -1, tmo2;
		char st;

		nap_us(WATCH_US);
		/* How starved are we? (the clock's slack, if /proc is blind) */
		after = now_ns();
		if (after - before - WATCH_US * 1000ll >
		    atomic_load(&c->worst_oversleep))
			atomic_store(&c->worst_oversleep,
				     after - before - WATCH_US * 1000ll);
		before = after;
		atomic_store(&c->nap_from, after);	/* (close enough) */
		g = atomic_load(&c->wait_gen);
		if (!(g & 1) || atomic_load(&c->probe_blind))
			continue;
		/* Acquire: pairs with the sender's release after zc_send(). */
		f = atomic_load_explicit(&c->returned, memory_order_acquire);
		sw0 = read_nvcsw(status);
		r = probe_poll(path, &tmo);
		if (r < 0 && atomic_load(&c->wait_gen) == g) {
			/* (not a reaper that left the wait and exited) */
			fprintf(stderr, "  cannot read %s: %s; lost wake-ups "
				"are judged by the clock\n", path,
				strerror(errno));
			atomic_store(&c->probe_blind, 1);
			continue;
		}
		if (r <= 0)
			continue;
		t = now_ns();
		perr = poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLERR);
		/*
		 * Blocked in poll() is asleep, or woken and not yet on a run
		 * queue (TASK_WAKING: the wake-up waits for an IPI to the
		 * reaper's CPU, slow in a starved TCG guest). Asleep is the
		 * state 'S' after that: a woken reaper reads 'R' until it
		 * runs, and then, in this wait, it sleeps again only if it
		 * had nothing to return (so not with a library copy ready),
		 * and only after a voluntary switch (counted). Blocked again
		 * after 'S': not one preempted just before it would sleep,
		 * which reads 'S' while on the run queue.
		 */
		st = read_state(stat);
		if (!st && atomic_load(&c->wait_gen) == g) {
			fprintf(stderr, "  cannot read %s; lost wake-ups are "
				"judged by the clock\n", stat);
			atomic_store(&c->probe_blind, 1);
			continue;
		}
		if (st != 'S' || probe_poll(path, &tmo2) != 1)
			continue;
		/*
		 * A record is queued: the socket's waiters are woken, or the
		 * one that waits on the eventfd alone (no zero-copy send out
		 * when it went to sleep) was woken by the push of the send.
		 * Not the 10 ms naps of a zc_wait() that stopped watching a
		 * POLLERR stuck on. One sleep through it: no voluntary switch
		 * from before POLLERR was seen until after 'S'.
		 */
		perr = perr && (tmo < 0 || tmo > 10) && sw0 >= 0 &&
		       read_nvcsw(status) == sw0;
		pthread_mutex_lock(&c->wlock);
		if (atomic_load(&c->wait_gen) == g) {
			c->wit.asleep++;
			c->wit.frontier = f;
			/* The first run long enough stays (check_wake()). */
			if (perr && c->wit.perr >= PERR_LOOKS &&
			    c->wit.perr_last - c->wit.perr_first >=
			    PERR_SPAN_NS) {
				/* evidence enough */
			} else if (perr && (!c->wit.perr ||
				   c->wit.perr_sleep != (uint64_t)sw0)) {
				c->wit.perr = 1;	/* a new sleep */
				c->wit.perr_sleep = (uint64_t)sw0;
				c->wit.perr_first = c->wit.perr_last = t;
			} else if (perr) {
				c->wit.perr++;
				c->wit.perr_last = t;
			}
		}
		pthread_mutex_unlock(&c->wlock);
	}
	return NULL;
}

static void wait_begin(struct ctx *c)
{
	pthread_mutex_lock(&c->wlock);
	memset(&c->wit, 0, sizeof(c->wit));
	atomic_fetch_add(&c->wait_gen, 1);	/* odd: inside zc_wait() */
	pthread_mutex_unlock(&c->wlock);
}

static void wait_end(struct ctx *c, struct witness *w)
{
	pthread_mutex_lock(&c->wlock);
	*w = c->wit;
	atomic_fetch_add(&c->wait_gen, 1);
	pthread_mutex_unlock(&c->wlock);
	c->asleep += w->asleep;
}

/*
 * Did zc_wait() miss a wake-up? z[0] is the oldest send not yet reaped
 * when the wait began (zc_wait() returns as soon as it hands out any), so
 * from its push on, the wait had news to return.
 *
 * Evidence (w, the watcher's looks during the wait): a library copy is
 * complete at its push, and the push wakes a waiter before zc_send()
 * returns (eventfd: the reaper is runnable from then on). Found asleep in
 * poll() after the send of z[0], a library copy, had returned, zc_wait()
 * had missed the wake-up: a fault however slow the machine. POLLERR up
 * on the socket while zc_wait() slept, in PERR_LOOKS looks over
 * PERR_SPAN_NS: a wake-up missed, on POLLERR or by the push of the
 * zero-copy send that made zc_wait() start watching it (the kernel
 * queues the record, then wakes: a waker preempted in between can look
 * like one, so 3 are tolerated).
 *
 * The clock: a wait that returned z[i] more than WAKE_SLACK_NS after it
 * was pushed (its send returned: ret_ns) is counted, not failed: a
 * starved machine does that. It decides only where the watcher cannot
 * see: io_uring's kernel completions (the CQ signals the eventfd; no
 * POLLERR) and a blind /proc; then with a slack of WAKE_SLACK_NS or 8
 * times the watcher's worst oversleep (so far, or the nap it is in now),
 * whichever is more, and kernel completions 3 times late are tolerated
 * as before (the kernel may be late for its own reasons).
 */
static int check_wake(struct ctx *c, const struct zc_completion *z, int n,
		      int64_t t0, int64_t t1, const struct witness *w)
{
	int64_t slack = WAKE_SLACK_NS, starved, nap;
	bool blind = atomic_load(&c->probe_blind);
	bool uring = zc_backend(c->zs) == ZC_BACKEND_URING;

	if ((z[0].flags & ZC_LIB_COPY) && z[0].cookie < w->frontier) {
		int64_t t = atomic_load_explicit(&c->ret_ns[z[0].cookie],
						 memory_order_relaxed);

		set_err(c, c->err_reap, "lost wake-up: zc_wait() was found "
			"asleep in poll() after the send of cookie %llu (a "
			"library copy, complete when pushed, the oldest "
			"unreaped) had returned; it returned %.0f ms after "
			"that send (%u looks found it asleep in this wait)",
			(unsigned long long)z[0].cookie,
			(double)(t1 - (t > t0 ? t : t0)) / 1e6, w->asleep);
		return -1;
	}
	if (w->perr >= PERR_LOOKS &&
	    w->perr_last - w->perr_first >= PERR_SPAN_NS &&
	    ++c->lost_pollerr > 3) {
		set_err(c, c->err_reap, "%llu times zc_wait() slept in poll() "
			"through POLLERR on the socket (the last time seen for "
			"%.0f ms in %u looks of one sleep): lost wake-ups on "
			"POLLERR or on the push of a zero-copy send",
			(unsigned long long)c->lost_pollerr,
			(double)(w->perr_last - w->perr_first) / 1e6, w->perr);
		return -1;
	}
	/* The clock's slack: 500 ms, or 8 times the watcher's worst nap. */
	starved = atomic_load(&c->worst_oversleep);
	nap = now_ns() - atomic_load(&c->nap_from) - WATCH_US * 1000ll;
	if (nap > starved)
		starved = nap;
	if (8 * starved > slack)
		slack = 8 * starved;
	for (int i = 0; i < n; i++) {
		int64_t t = atomic_load_explicit(&c->ret_ns[z[i].cookie],
						 memory_order_relaxed);

		if (!t)		/* the sender has not noted it yet */
			return 0;
		if (t < t0)
			t = t0;
		if (!(z[i].flags & ZC_LIB_COPY)) {
			if (t1 - t > WAKE_SLACK_NS)
				c->late_kernel++;
			/*
			 * io_uring's CQ wakes through the eventfd: no POLLERR
			 * to see, so only the clock can tell.
			 */
			if (t1 - t > slack && ++c->late_judged > 3 &&
			    (blind || uring) && !loopback_zc) {
				set_err(c, c->err_reap, "%llu times zc_wait() "
					"slept on for more than %lld ms after "
					"a kernel completion was due (lost "
					"wake-ups on %s?)",
					(unsigned long long)c->late_judged,
					(long long)(slack / 1000000),
					uring ? "the CQ's eventfd" : "POLLERR");
				return -1;
			}
			return 0;
		}
		if (t1 - t > WAKE_SLACK_NS)
			c->slow_copy++;
		if (t1 - t > slack && blind) {
			set_err(c, c->err_reap, "lost wake-up: zc_wait() slept "
				"%.0f ms after cookie %llu (a library copy, "
				"complete when pushed) was sent",
				(double)(t1 - t) / 1e6,
				(unsigned long long)z[i].cookie);
			return -1;
		}
	}
	return 0;
}

static void *reap_main(void *arg)
{
	struct ctx *c = arg;
	struct zc_completion out[64];
	struct prng rnd = { c->seed ^ 0xAEA9 };
	uint64_t next_min = 0;
	int64_t progress = now_ns();
	bool finished = false;

	atomic_store(&c->reaper_tid, (int)syscall(SYS_gettid));
	while (!finished && !atomic_load(&c->abort)) {
		unsigned int max = 1 + prng_below(&rnd, 64);
		uint32_t pick = prng_below(&rnd, 16);
		int64_t t0 = now_ns();
		int n, tmo;

		if (pick < 3) {
			n = zc_completions(c->zs, out, max);
		} else {
			struct witness w;
			int64_t t1;

			tmo = pick < 6 ? LONG_WAIT_MS : (int)prng_below(&rnd, 20);
			wait_begin(c);
			n = zc_wait(c->zs, out, max, tmo);
			t1 = now_ns();
			wait_end(c, &w);
			c->waits++;
			if (n > 0 && t1 - t0 > 50000)
				c->woken++;
			if (n == 0 && tmo == LONG_WAIT_MS) {
				c->timeouts++;
				n = zc_completions(c->zs, out, max);
			}
			if (n > 0 && check_wake(c, out, n, t0, t1, &w))
				break;
		}
		if (n < 0) {
			set_err(c, c->err_reap, "reaping: %s (%s)",
				strerror(-n), zc_last_error());
			break;
		}
		if (n > (int)max) {
			set_err(c, c->err_reap, "asked for %u, got %d", max, n);
			break;
		}
		for (int i = 0; i < n; i++)
			if (reap_one(c, &out[i], &next_min, &finished))
				goto out;
		if (n) {
			progress = now_ns();
		} else if (zc_inflight(c->zs) && now_ns() - progress > STALL_NS) {
			set_err(c, c->err_reap, "no completion for %lld s with "
				"%u sends in flight", STALL_NS / 1000000000,
				zc_inflight(c->zs));
			break;
		}
		/* Now and then fall behind, so the ring fills up. */
		if (c->zc && prng_below(&rnd, 256) == 0) {
			nap_us(2000 + prng_below(&rnd, 3000));
			c->naps++;
		}
		/*
		 * At least once, however fast or slow the machine (qemu's TCG
		 * is slow): stop reaping until the sender has met -ENOBUFS.
		 * Not at max_inflight 1024: the pool of buffers runs out
		 * first.
		 */
		if (c->zc && c->phase != P_ZC_LARGE && c->reaped >= 64 &&
		    !atomic_load(&c->saw_enobufs) && !atomic_load(&c->tx_done)) {
			int64_t since = now_ns();

			while (!atomic_load(&c->saw_enobufs) &&
			       !atomic_load(&c->tx_done) &&
			       !atomic_load(&c->abort) &&
			       now_ns() - since < 10LL * 1000000000)
				nap_us(1000);
			c->naps++;
		}
	}
out:
	atomic_store(&c->reap_done, 1);
	return NULL;
}

/* ---- sender ------------------------------------------------------------- */

static int backoff(struct ctx *c, unsigned int *spins)
{
	if (atomic_load(&c->abort))
		return -1;
	if (++*spins < 64)
		sched_yield();
	else
		nap_us(*spins < 256 ? 20 : *spins < 1024 ? 200 : 1000);
	return 0;
}

static int new_cookie(struct ctx *c, uint32_t b, uint64_t *k)
{
	if (c->ncookies == c->cap) {
		set_err(c, c->err_tx, "more than %llu send calls",
			(unsigned long long)c->cap);
		return -1;
	}
	*k = c->ncookies++;
	c->cbuf[*k] = b;
	c->sent[*k] = -1;
	/* Release: pairs with the acquire in reap_one(). */
	atomic_store_explicit(&c->started, *k + 1, memory_order_release);
	return 0;
}

/* One send call; returns its result, after -ENOBUFS back-offs. */
static ssize_t send_call(struct ctx *c, uint32_t b, size_t off, size_t len,
			 int flags, bool last)
{
	unsigned int spins = 0;

	for (;;) {
		uint64_t k;
		ssize_t ret;

		if (new_cookie(c, b, &k))
			return -ECANCELED;
		if (last)	/* Release: pairs with the acquire in reap_one() */
			atomic_store_explicit(&c->final, k + 1,
					      memory_order_release);
		if (b != NO_BUF)
			atomic_fetch_add_explicit(&c->bufs[b].refs, 1,
						  memory_order_relaxed);
		ret = zc_send(c->zs, b == NO_BUF ? bufp(c, 0) : bufp(c, b) + off,
			      len, flags, k);
		if (ret >= 0) {
			atomic_store_explicit(&c->ret_ns[k], now_ns(),
					      memory_order_relaxed);
			/* Release: pairs with the acquire in watch_main(). */
			atomic_store_explicit(&c->returned, k + 1,
					      memory_order_release);
			c->sent[k] = (int32_t)ret;
			c->nok++;
			return ret;
		}
		if (b != NO_BUF)	/* never the last reference: ours */
			atomic_fetch_sub_explicit(&c->bufs[b].refs, 1,
						  memory_order_relaxed);
		if (ret == -ENOBUFS) {
			c->enobufs++;
			atomic_store(&c->saw_enobufs, 1);
		} else if (ret == -EAGAIN) {
			c->eagain++;
		} else {
			set_err(c, c->err_tx, "zc_send(%zu bytes): %s (%s)", len,
				strerror((int)-ret), zc_last_error());
			return ret;
		}
		if (backoff(c, &spins))
			return -ECANCELED;
	}
}

static void *tx_main(void *arg)
{
	struct ctx *c = arg;
	struct prng rnd = { c->seed ^ 0x5E4D };
	uint32_t b = 0;

	for (uint32_t i = 0; i < NBUF; i++)
		atomic_init(&c->bufs[i].free, 1);

	for (uint64_t i = 0; i < c->nmsg; i++, b = (b + 1) % NBUF) {
		struct buf *B = &c->bufs[b];
		unsigned int spins = 0;
		size_t off = 0;

		/* Acquire: pairs with the release in put_buf(). */
		while (!atomic_load_explicit(&B->free, memory_order_acquire))
			if (backoff(c, &spins))
				goto out;
		atomic_store_explicit(&B->free, 0, memory_order_relaxed);
		atomic_store_explicit(&B->refs, 1, memory_order_relaxed);
		B->len = (uint32_t)msg_size(c->seed, i);
		fill_msg(bufp(c, b), c->seed, i, B->len);
		while (off < B->len) {
			int flags = MSG_NOSIGNAL;
			ssize_t ret;

			if (prng_below(&rnd, 4) == 0)
				flags |= MSG_DONTWAIT;
			ret = send_call(c, b, off, B->len - off, flags, false);
			if (ret < 0)
				goto out;
			if (ret == 0 || (size_t)ret > B->len - off) {
				set_err(c, c->err_tx, "zc_send of %zu bytes "
					"returned %zd", B->len - off, ret);
				goto out;
			}
			if ((size_t)ret < B->len - off)
				c->partial++;
			off += (size_t)ret;
		}
		put_buf(c, b);	/* the sender's hold */
	}
	/*
	 * A last empty send: it completes like any other (bytes 0), and its
	 * push wakes the reaper for the last time.
	 */
	if (send_call(c, NO_BUF, 0, 0, MSG_NOSIGNAL, true) != 0)
		set_err(c, c->err_tx, "the last, empty, send failed");
out:
	atomic_store(&c->tx_done, 1);
	return NULL;
}

/* ---- the phases --------------------------------------------------------- */

static void final_checks(struct ctx *c, char *err)
{
	struct zc_stats st = { .sz = sizeof(st) };
	uint64_t ndone = 0;

	if (zc_inflight(c->zs)) {
		snprintf(err, 512, "zc_inflight %u at the end",
			 zc_inflight(c->zs));
		return;
	}
	for (uint64_t k = 0; k < c->ncookies; k++) {
		if (c->done[k] != (c->sent[k] >= 0)) {
			snprintf(err, 512, "cookie %llu (send returned %d) %s",
				 (unsigned long long)k, c->sent[k], c->done[k] ?
				 "completed" : "never completed");
			return;
		}
		if (c->done[k] && c->cbytes[k] != (uint32_t)c->sent[k]) {
			snprintf(err, 512, "cookie %llu: the send returned %d, "
				 "the completion says %u",
				 (unsigned long long)k, c->sent[k], c->cbytes[k]);
			return;
		}
		ndone += c->done[k];
	}
	for (uint32_t b = 0; b < NBUF; b++)
		if (!atomic_load(&c->bufs[b].free)) {
			snprintf(err, 512, "buffer %u never came back", b);
			return;
		}
	if (zc_get_stats(c->zs, &st)) {
		snprintf(err, 512, "zc_get_stats: %s", zc_last_error());
		return;
	}
	fprintf(stderr, "  %s: backend %s; %llu sends (%llu zero-copy, %llu "
		"copied), %llu -ENOBUFS, %llu -EAGAIN, %llu partial; reaper: "
		"%llu waits, %llu woken, %llu long timeouts, %llu late kernel "
		"completions, %llu slow copies, %llu naps; watcher: %llu looks "
		"found it asleep, %llu waits slept through POLLERR, worst "
		"oversleep %.0f ms%s\n",
		phase_name[c->phase], zc_backend_name(zc_backend(c->zs)),
		(unsigned long long)st.sends, (unsigned long long)st.sends_zc,
		(unsigned long long)st.sends_copy,
		(unsigned long long)c->enobufs, (unsigned long long)c->eagain,
		(unsigned long long)c->partial, (unsigned long long)c->waits,
		(unsigned long long)c->woken, (unsigned long long)c->timeouts,
		(unsigned long long)c->late_kernel,
		(unsigned long long)c->slow_copy, (unsigned long long)c->naps,
		(unsigned long long)c->asleep,
		(unsigned long long)c->lost_pollerr,
		(double)atomic_load(&c->worst_oversleep) / 1e6,
		atomic_load(&c->probe_blind) ? " (blind: the clock judged)" :
		"");
	if (ndone != c->nok || st.sends != c->nok || st.completions != c->nok ||
	    st.sends_zc + st.sends_copy != st.sends ||
	    st.sends_copy != c->libcopy || st.sends_zc != c->kernel) {
		snprintf(err, 512, "counts: %llu calls succeeded, %llu "
			 "completed; stats: sends %llu = zc %llu + copy %llu, "
			 "completions %llu; reaped %llu library copies, %llu "
			 "kernel", (unsigned long long)c->nok,
			 (unsigned long long)ndone,
			 (unsigned long long)st.sends,
			 (unsigned long long)st.sends_zc,
			 (unsigned long long)st.sends_copy,
			 (unsigned long long)st.completions,
			 (unsigned long long)c->libcopy,
			 (unsigned long long)c->kernel);
		return;
	}
	if (zc_backend(c->zs) == ZC_BACKEND_COPY)
		return;		/* ZCNOTIFY_BACKEND=copy: no kernel ids */
	/* 1024 in flight: the pool of buffers runs out first. */
	if (c->zc && c->nmsg >= 2000 && c->phase != P_ZC_LARGE &&
	    (st.sends_zc == 0 || c->enobufs == 0 || c->naps == 0))
		snprintf(err, 512, "%llu zero-copy sends, %llu -ENOBUFS, %llu "
			 "reaper naps: the ring never filled up",
			 (unsigned long long)st.sends_zc,
			 (unsigned long long)c->enobufs,
			 (unsigned long long)c->naps);
	if (!c->zc && c->nmsg >= 1000 && c->woken == 0)
		snprintf(err, 512, "the reaper was never woken from zc_wait() "
			 "by a send");
	if (c->phase == P_COPY && st.sends_zc)
		snprintf(err, 512, "copy_below 1 MiB, yet %llu zero-copy "
			 "sends", (unsigned long long)st.sends_zc);

}

static void run_phase(enum phase phase)
{
	struct zc_opts opts = {
		.sz = sizeof(opts), .max_inflight = phase_inflight[phase],
		.copy_below = 1, .flags = ZC_OPT_NO_ADAPT,
	};
	struct zc_opts copy_opts = { .sz = sizeof(opts), .copy_below = 1u << 20 };
	const char *name = phase_name[phase];
	bool zc = phase == P_ZC || phase == P_ZC_SMALL || phase == P_ZC_LARGE;
	struct ctx *c = calloc(1, sizeof(*c));
	pthread_t t_tx, t_reap, t_rx, t_watch;
	struct timeval tv = { .tv_sec = 1 };
	int snd = 256 << 10, ret;
	char err[512] = "";
	int64_t t0;

	assert_non_null(c);
	assert_int_equal(pthread_mutex_init(&c->wlock, NULL), 0);
	c->zc = zc;
	c->phase = phase;
	c->seed = mix64(0x2C + phase);
	c->nmsg = nsends;
	for (uint64_t i = 0; i < c->nmsg; i++)
		c->total += msg_size(c->seed, i);
	/*
	 * Every call takes a cookie, the failed ones too (so that a
	 * completion for one of them is caught): under load the sender
	 * retries -ENOBUFS and -EAGAIN many times while the reaper naps.
	 * calloc() maps pages as they are touched, so the room costs only
	 * address space; backoff() slows the retries down as they last.
	 */
	c->cap = c->nmsg * 8 + (4u << 20);
	c->mem = malloc((size_t)NBUF * BUF_SIZE);
	c->cbuf = calloc(c->cap, sizeof(*c->cbuf));
	c->sent = calloc(c->cap, sizeof(*c->sent));
	c->ret_ns = calloc(c->cap, sizeof(*c->ret_ns));
	c->cbytes = calloc(c->cap, sizeof(*c->cbytes));
	c->cflags = calloc(c->cap, sizeof(*c->cflags));
	c->done = calloc(c->cap, 1);
	assert_true(c->mem && c->cbuf && c->sent && c->ret_ns && c->cbytes &&
		    c->cflags && c->done);
	ret = loopback_pair(AF_INET, SOCK_STREAM, &c->tx, &c->rx, NULL, NULL);
	if (ret) {
		fprintf(stderr, "loopback TCP pair: %s\n", strerror(-ret));
		fail_msg("cannot make a loopback TCP connection");
	}
	setsockopt(c->tx, SOL_SOCKET, SO_SNDBUF, &snd, sizeof(snd));
	setsockopt(c->rx, SOL_SOCKET, SO_RCVBUF, &snd, sizeof(snd));
	setsockopt(c->rx, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	ret = zc_open(c->tx, zc ? &opts : phase == P_COPY ? &copy_opts : NULL,
		      &c->zs);
	if (ret == -EOPNOTSUPP && getenv("ZCNOTIFY_BACKEND")) {
		/* A backend this kernel or build lacks, forced from outside. */
		fprintf(stderr, "SKIP: %s\n", zc_last_error());
		exit(77);
	}
	if (ret)
		fail_msg("zc_open: %s (%s)", strerror(-ret), zc_last_error());

	t0 = now_ns();
	atomic_store(&c->nap_from, t0);
	assert_int_equal(pthread_create(&t_rx, NULL, rx_main, c), 0);
	assert_int_equal(pthread_create(&t_reap, NULL, reap_main, c), 0);
	assert_int_equal(pthread_create(&t_tx, NULL, tx_main, c), 0);
	assert_int_equal(pthread_create(&t_watch, NULL, watch_main, c), 0);
	pthread_join(t_tx, NULL);
	pthread_join(t_reap, NULL);
	pthread_join(t_watch, NULL);
	shutdown(c->tx, SHUT_WR);	/* EOF for the receiver */
	pthread_join(t_rx, NULL);
	fprintf(stderr, "  %s: %llu messages, %.1f MB, %llu calls in %.2f s\n",
		name, (unsigned long long)c->nmsg,
		(double)c->total / 1e6, (unsigned long long)c->ncookies,
		(double)(now_ns() - t0) / 1e9);

	if (!c->err_tx[0] && !c->err_reap[0] && !c->err_rx[0])
		final_checks(c, err);
	zc_close(c->zs);
	close(c->tx);
	close(c->rx);
	if (c->err_tx[0] || c->err_reap[0] || c->err_rx[0] || err[0]) {
		static char msg[2200];

		snprintf(msg, sizeof(msg), "%s%s%s%s%s%s%s", err,
			 c->err_tx[0] ? "sender: " : "", c->err_tx,
			 c->err_reap[0] ? "; reaper: " : "", c->err_reap,
			 c->err_rx[0] ? "; receiver: " : "", c->err_rx);
		fail_msg("phase %s: %s", name, msg);
	}
	free(c->mem);
	free(c->cbuf);
	free(c->sent);
	free(c->ret_ns);
	free(c->cbytes);
	free(c->cflags);
	free(c->done);
	pthread_mutex_destroy(&c->wlock);
	free(c);
}

static void t_zc(void **state)
{
	(void)state;
	run_phase(P_ZC);
}

static void t_zc_small(void **state)
{
	(void)state;
	run_phase(P_ZC_SMALL);
}

static void t_zc_large(void **state)
{
	(void)state;
	run_phase(P_ZC_LARGE);
}

static void t_default(void **state)
{
	(void)state;
	run_phase(P_DEFAULT);
}

static void t_copy(void **state)
{
	(void)state;
	run_phase(P_COPY);
}

/* ---- the getters from a third thread ------------------------------------ */

struct getters {
	struct zc_sock *zs;
	_Atomic int stop;
	uint64_t sends, reaped;
	char err[256];
};

static void *g_send(void *arg)
{
	struct getters *g = arg;
	static const char buf[64];

	while (!atomic_load(&g->stop)) {
		ssize_t n = zc_send(g->zs, buf, sizeof(buf), MSG_DONTWAIT,
				    g->sends);

		if (n == sizeof(buf))
			g->sends++;
		else if (n != -ENOBUFS && n != -EAGAIN && !g->err[0])
			snprintf(g->err, sizeof(g->err), "zc_send: %s",
				 zc_last_error());
	}
	return NULL;
}

static void *g_reap(void *arg)
{
	struct getters *g = arg;
	struct zc_completion out[64];

	while (!atomic_load(&g->stop)) {
		int n = zc_completions(g->zs, out, 64);

		for (int i = 0; i < n; i++)
			if (out[i].cookie != g->reaped++ && !g->err[0])
				snprintf(g->err, sizeof(g->err), "cookie %llu "
					 "out of order",
					 (unsigned long long)out[i].cookie);
	}
	return NULL;
}

/*
 * "The getters may be called from any thread": while a sender and a reaper
 * move the ring as fast as they can (short sends are copies, complete at
 * once), a third thread reads zc_inflight(), which can never be more than
 * max_inflight, and the counters, which only grow.
 */
static void t_getters(void **state)
{
	struct zc_opts opts = { .sz = sizeof(opts), .max_inflight = MAX_INFLIGHT };
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	struct getters *g = calloc(1, sizeof(*g));
	struct zc_stats last = { .sz = sizeof(last) };
	uint64_t calls = 0, bad = 0;
	unsigned int worst = 0;
	int64_t end = now_ns() + 1000000000;
	pthread_t ts, tr;
	int rfd, sfd, ret;

	(void)state;
	assert_non_null(g);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	rfd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	sfd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	/* Nobody reads rfd: once its buffer is full the kernel drops. */
	assert_int_equal(bind(rfd, (struct sockaddr *)&a, alen), 0);
	assert_int_equal(getsockname(rfd, (struct sockaddr *)&a, &alen), 0);
	assert_int_equal(connect(sfd, (struct sockaddr *)&a, alen), 0);
	ret = zc_open(sfd, &opts, &g->zs);
	if (ret == -EOPNOTSUPP && getenv("ZCNOTIFY_BACKEND")) {
		fprintf(stderr, "SKIP: %s\n", zc_last_error());
		exit(77);
	}
	assert_int_equal(ret, 0);
	assert_int_equal(pthread_create(&ts, NULL, g_send, g), 0);
	assert_int_equal(pthread_create(&tr, NULL, g_reap, g), 0);
	while (now_ns() < end) {
		for (int i = 0; i < 4096; i++, calls++) {
			unsigned int n = zc_inflight(g->zs);

			if (n > MAX_INFLIGHT) {
				bad++;
				worst = n > worst ? n : worst;
			}
		}
		{
			struct zc_stats st = { .sz = sizeof(st) };
			const uint64_t *now = &st.sends, *was = &last.sends;

			assert_int_equal(zc_get_stats(g->zs, &st), 0);
			for (size_t f = 0; f < (sizeof(st) - offsetof(struct
			     zc_stats, sends)) / sizeof(uint64_t); f++)
				if (now[f] < was[f] && !bad)
					bad = 1, worst = 0;
			last = st;
		}
	}
	atomic_store(&g->stop, 1);
	pthread_join(ts, NULL);
	pthread_join(tr, NULL);
	fprintf(stderr, "  getters: %llu zc_inflight() calls while %llu sends "
		"were made and %llu reaped\n", (unsigned long long)calls,
		(unsigned long long)g->sends, (unsigned long long)g->reaped);
	zc_close(g->zs);
	close(sfd);
	close(rfd);
	if (g->err[0])
		fail_msg("%s", g->err);
	if (bad && worst)
		fail_msg("zc_inflight() from a third thread returned more than "
			 "max_inflight %u in %llu of %llu calls (worst %u: "
			 "head and tail read at moments between which both "
			 "moved)",
			 MAX_INFLIGHT, (unsigned long long)bad,
			 (unsigned long long)calls, worst);
	if (bad)
		fail_msg("a zc_get_stats() counter went down");
	free(g);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest phases[] = {
		cmocka_unit_test(t_zc),
		cmocka_unit_test(t_default),
		cmocka_unit_test(t_copy),
	}, chunks[] = {
		cmocka_unit_test(t_zc_small),
		cmocka_unit_test(t_zc_large),
	}, getters[] = {
		cmocka_unit_test(t_getters),
	};
	bool all = argc < 2, run_phases = all, run_chunks = all;
	bool run_getters = all;
	int one = 1, fd, failed = 0;

	for (int a = 1; a < argc; a++) {
		if (!strcmp(argv[a], "phases")) {
			run_phases = true;
		} else if (!strcmp(argv[a], "chunks")) {
			run_chunks = true;
		} else if (!strcmp(argv[a], "getters")) {
			run_getters = true;
		} else {
			fprintf(stderr, "usage: %s [phases] [chunks] [getters]\n",
				argv[0]);
			return 1;
		}
	}
	if (parse_test_sends(&nsends))
		return 1;
	loopback_zc = getenv("ZC_RIG_LOOPBACK_ZC") &&
		      !strcmp(getenv("ZC_RIG_LOOPBACK_ZC"), "1");
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_ZEROCOPY, &one, sizeof(one))) {
		fprintf(stderr, "SKIP: no MSG_ZEROCOPY for TCP here: %s\n",
			strerror(errno));
		return 77;
	}
	close(fd);
	if (run_phases) {
		fprintf(stderr, "%llu messages per phase\n",
			(unsigned long long)nsends);
		failed += cmocka_run_group_tests_name("phases", phases, NULL,
						      NULL);
	}
	if (run_chunks)
		failed += cmocka_run_group_tests_name("chunks", chunks, NULL,
						      NULL);
	if (run_getters)
		failed += cmocka_run_group_tests_name("getters", getters, NULL,
						      NULL);
	return failed ? 1 : 0;
}
