// SPDX-License-Identifier: MIT
/*
 * zcstream: stream data over a loopback connection with libzcnotify and
 * say what the library did.
 *
 * The sender (main thread) sends from a small pool of buffers and puts a
 * buffer back in the pool only when the completion of every send from it
 * has been reaped: until then the kernel may still read its pages. A
 * receiver thread reads everything (and with -c checks every byte).
 *
 *   zcstream [-s size] [-n MiB] [-b backend] [-p buffers] [-z] [-6] [-u] [-c]
 *
 * Over loopback the kernel copies the data of every zero-copy send (see the
 * note printed at the end), so this shows the mechanics and the costs, not
 * the gain: that needs a NIC.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <zcnotify.h>

#define DEFAULT_COPY_BELOW	10240u	/* zc_opts.copy_below = 0 */
#define MAX_POOL		4096u
#define UDP_MAX_V4		65507u
#define UDP_MAX_V6		65527u
#define WAIT_MS			5000

struct opts {
	size_t size;		/* bytes per send */
	uint64_t total;		/* bytes to stream */
	unsigned int pool;
	int backend;
	bool zc, v6, udp, check;
};

/* The receiver's side. */
struct rx {
	int fd;
	const struct opts *o;
	uint64_t ndgrams;		/* UDP: datagrams to expect */
	_Atomic uint64_t got;		/* UDP: datagrams read (flow control) */
	_Atomic uint64_t bytes;
	_Atomic int done;
	char err[256];
};

/* ---- data --------------------------------------------------------------- */

/* Byte o of the stream: byte (o % 8) of the word o / 8. */
static uint64_t word_at(uint64_t k)
{
	return (k + 1) * 0x9E3779B97F4A7C15ull ^ 0x5A5A5A5A5A5A5A5Aull;
}

/* Fill p with the len bytes of the stream from offset off. */
static void fill(uint8_t *p, uint64_t off, size_t len)
{
	while (len && off % 8) {
		uint64_t w = word_at(off / 8);

		*p++ = (uint8_t)(w >> (8 * (off % 8)));
		off++;
		len--;
	}
	for (; len >= 8; p += 8, off += 8, len -= 8) {
		uint64_t w = word_at(off / 8);

		memcpy(p, &w, 8);
	}
	for (; len; p++, off++, len--)
		*p = (uint8_t)(word_at(off / 8) >> (8 * (off % 8)));
}

static bool matches(const uint8_t *p, uint64_t off, size_t len,
		    uint8_t *scratch)
{
	fill(scratch, off, len);
	return !memcmp(p, scratch, len);
}

/* ---- the receiver ------------------------------------------------------- */

static void *receiver(void *arg)
{
	struct rx *r = arg;
	const struct opts *o = r->o;
	size_t cap = o->udp ? 65536 : 256 * 1024;
	uint8_t *buf = malloc(cap), *scratch = malloc(cap);
	uint64_t off = 0;

	if (!buf || !scratch) {
		snprintf(r->err, sizeof(r->err), "out of memory");
		goto out;
	}
	for (;;) {
		ssize_t n = recv(r->fd, buf, cap, o->udp ? MSG_TRUNC : 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				snprintf(r->err, sizeof(r->err), "receiver: "
					 "nothing for 5 s after %llu bytes%s",
					 (unsigned long long)off, o->udp ?
					 " (datagrams dropped?)" : "");
			else
				snprintf(r->err, sizeof(r->err), "recv: %s",
					 strerror(errno));
			break;
		}
		if (!o->udp && n == 0)
			break;
		if (o->udp) {
			uint64_t seq;

			memcpy(&seq, buf, sizeof(seq));
			if ((size_t)n < sizeof(seq) || seq * o->size != off) {
				snprintf(r->err, sizeof(r->err), "datagram %llu: "
					 "sequence %llu, %zd bytes (lost or "
					 "reordered)", (unsigned long long)
					 (off / o->size), (unsigned long long)seq,
					 n);
				break;
			}
			if (o->check && n > 8 &&
			    !matches(buf + 8, off + 8, (size_t)n - 8, scratch)) {
				snprintf(r->err, sizeof(r->err), "datagram %llu: "
					 "bad data", (unsigned long long)seq);
				break;
			}
		} else if (o->check && !matches(buf, off, (size_t)n, scratch)) {
			snprintf(r->err, sizeof(r->err), "bad data in bytes "
				 "%llu-%llu (a buffer reused too early?)",
				 (unsigned long long)off,
				 (unsigned long long)(off + (uint64_t)n - 1));
			break;
		}
		off += (uint64_t)n;
		atomic_store_explicit(&r->bytes, off, memory_order_relaxed);
		if (o->udp) {
			uint64_t got = atomic_load_explicit(&r->got,
							    memory_order_relaxed) + 1;

			/* Release: pairs with the acquire in udp_pace(). */
			atomic_store_explicit(&r->got, got, memory_order_release);
			if (got == r->ndgrams)
				break;
		}
	}
out:
	free(buf);
	free(scratch);
	atomic_store(&r->done, 1);
	return NULL;
}

/* ---- sockets ------------------------------------------------------------ */

static socklen_t loopback(bool v6, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (!v6) {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;

		a->sin_family = AF_INET;
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		return sizeof(*a);
	}
	((struct sockaddr_in6 *)ss)->sin6_family = AF_INET6;
	((struct sockaddr_in6 *)ss)->sin6_addr = in6addr_loopback;
	return sizeof(struct sockaddr_in6);
}

static int bound(bool v6, int type, struct sockaddr_storage *ss, socklen_t *len)
{
	int fd = socket(v6 ? AF_INET6 : AF_INET, type | SOCK_CLOEXEC, 0);

	*len = loopback(v6, ss);
	if (fd < 0 || bind(fd, (struct sockaddr *)ss, *len) ||
	    getsockname(fd, (struct sockaddr *)ss, len)) {
		perror(v6 ? "socket on ::1" : "socket on 127.0.0.1");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* tx and rx connected to each other over loopback. */
static int pair(const struct opts *o, int *tx, int *rx)
{
	struct sockaddr_storage a, b;
	socklen_t alen, blen;
	int l = bound(o->v6, o->udp ? SOCK_DGRAM : SOCK_STREAM, &a, &alen);

	if (l < 0)
		return -1;
	if (o->udp) {
		int s = bound(o->v6, SOCK_DGRAM, &b, &blen), sz = 8 << 20;

		if (s < 0 || connect(s, (struct sockaddr *)&a, alen) ||
		    connect(l, (struct sockaddr *)&b, blen)) {
			perror("connect");
			return -1;
		}
		/* Root may go past net.core.rmem_max; others get that much. */
		if (setsockopt(l, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)))
			setsockopt(l, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
		*tx = s;
		*rx = l;
		return 0;
	}
	*tx = socket(o->v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (listen(l, 1) || *tx < 0 ||
	    connect(*tx, (struct sockaddr *)&a, alen) ||
	    (*rx = accept4(l, NULL, NULL, SOCK_CLOEXEC)) < 0) {
		perror("TCP over loopback");
		return -1;
	}
	close(l);
	return 0;
}

/* ---- the sender --------------------------------------------------------- */

struct tx {
	const struct opts *o;
	struct zc_sock *zs;
	struct rx *rx;
	uint8_t **buf;
	unsigned int *refs;	/* sends from the buffer not yet reaped */
	unsigned int *free;	/* stack of free buffers */
	unsigned int nfree;
	uint64_t calls, partial, enobufs, eagain;
	uint64_t reaps, reaps_nonempty, completions;
	uint64_t c_zc, c_kernel_copied, c_lib_copy;
	uint64_t rcvbuf;	/* UDP: the receiver's buffer */
	char err[256];
};

static int handle(struct tx *t, const struct zc_completion *c, int n)
{
	for (int i = 0; i < n; i++) {
		unsigned int b = (unsigned int)(c[i].cookie & 0xffff);

		if (!(c[i].flags & ZC_COPIED))
			t->c_zc++;		/* sent from our pages */
		else if (c[i].flags & ZC_LIB_COPY)
			t->c_lib_copy++;	/* the library chose to copy */
		else
			t->c_kernel_copied++;	/* zero-copy asked, kernel copied */
		if (--t->refs[b] == 0)
			t->free[t->nfree++] = b;	/* the kernel is done */
	}
	t->completions += (uint64_t)n;
	return 0;
}

static int reap(struct tx *t, bool wait)
{
	struct zc_completion c[64];
	int n = wait ? zc_wait(t->zs, c, 64, WAIT_MS) : zc_completions(t->zs, c, 64);

	t->reaps++;
	if (n < 0) {
		snprintf(t->err, sizeof(t->err), "reaping: %s", zc_last_error());
		return -1;
	}
	if (n == 0 && wait) {
		snprintf(t->err, sizeof(t->err), "no completion for %d ms with "
			 "%u sends in flight", WAIT_MS, zc_inflight(t->zs));
		return -1;
	}
	if (n)
		t->reaps_nonempty++;
	return handle(t, c, n);
}

/* UDP: stay within the receiver's buffer, so that nothing is dropped. */
static int udp_pace(struct tx *t, uint64_t seq)
{
	uint64_t per = t->o->size + t->o->size / 2 + 8192;
	uint64_t ahead = t->rcvbuf / 2 / per;

	if (ahead < 1)
		ahead = 1;
	/* Acquire: pairs with the release in receiver(). */
	while (seq - atomic_load_explicit(&t->rx->got, memory_order_acquire) >=
	       ahead) {
		if (atomic_load(&t->rx->done)) {
			snprintf(t->err, sizeof(t->err), "the receiver stopped");
			return -1;
		}
		if (!zc_inflight(t->zs)) {
			sched_yield();
			continue;
		}
		/*
		 * Sleep until news or 1 ms, not a read of the error queue a
		 * turn: where loopback keeps the pages, completions come only
		 * as the receiver reads, and polling for them cost 5 reads a
		 * send.
		 */
		struct zc_completion c[64];
		int n = zc_wait(t->zs, c, 64, 1);

		t->reaps++;
		if (n < 0) {
			snprintf(t->err, sizeof(t->err), "reaping: %s",
				 zc_last_error());
			return -1;
		}
		if (n)
			t->reaps_nonempty++;
		if (handle(t, c, n))
			return -1;
	}
	return 0;
}

static int stream(struct tx *t, int fd)
{
	const struct opts *o = t->o;
	uint64_t off = 0, seq = 0;

	while (off < o->total) {
		size_t len = o->total - off < o->size ? (size_t)(o->total - off) :
			     o->size, done = 0;
		unsigned int b;

		while (!t->nfree)	/* every buffer is in flight: reap */
			if (reap(t, true))
				return -1;
		b = t->free[--t->nfree];
		/* The buffer is ours again: write the next data into it. */
		if (o->check)
			fill(t->buf[b], off, len);
		if (o->udp)
			memcpy(t->buf[b], &seq, sizeof(seq));
		if (o->udp && udp_pace(t, seq))
			return -1;
		while (done < len) {
			uint64_t cookie = (t->calls++ << 16) | b;
			ssize_t n = zc_send(t->zs, t->buf[b] + done, len - done,
					    MSG_NOSIGNAL, cookie);

			if (n == -ENOBUFS) {	/* max_inflight unreaped */
				t->enobufs++;
				if (reap(t, true))
					return -1;
				continue;
			}
			if (n == -EAGAIN) {
				struct pollfd p = { .fd = fd, .events = POLLOUT };

				t->eagain++;
				poll(&p, 1, 100);
				continue;
			}
			if (n < 0) {
				snprintf(t->err, sizeof(t->err), "zc_send: %s",
					 zc_last_error());
				return -1;
			}
			t->refs[b]++;
			if ((size_t)n < len - done)
				t->partial++;	/* the rest in a new send */
			done += (size_t)n;
		}
		off += len;
		seq++;
		/* Take what is ready now; do not wait for it. */
		if (zc_inflight(t->zs) && reap(t, false))
			return -1;
	}
	while (zc_inflight(t->zs))
		if (reap(t, true))
			return -1;
	return 0;
}

/* ---- main --------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
"usage: zcstream [-s size] [-n MiB] [-b backend] [-p buffers] [-z] [-6] [-u] [-c]\n"
"  -s size     bytes per send (k and m suffixes; default 64k, 65000 with -u)\n"
"  -n MiB      how much to stream (default 256)\n"
"  -b backend  auto, errqueue, scm, uring or copy (default auto;\n"
"              the ZCNOTIFY_BACKEND environment variable overrides it)\n"
"  -p buffers  the pool the sender sends from (default 16)\n"
"  -z          force zero-copy attempts: copy_below = 1, ZC_OPT_NO_ADAPT\n"
"  -6          IPv6 (::1) instead of 127.0.0.1\n"
"  -u          UDP instead of TCP\n"
"  -c          check every byte received; exit 1 on a mismatch\n"
"exit status: 0 done, 1 failed, 2 bad usage, 77 the backend is not available\n");
}

static int parse_size(const char *s, uint64_t unit, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *s == '-')
		return -1;
	if (*end == 'k' || *end == 'K')
		unit = 1024, end++;
	else if (*end == 'm' || *end == 'M')
		unit = 1024 * 1024, end++;
	if (*end || v == 0 || v > UINT64_MAX / unit)
		return -1;
	*out = v * unit;
	return 0;
}

static int parse_backend(const char *s)
{
	for (int b = 0; zc_backend_name(b); b++)
		if (!strcmp(s, zc_backend_name(b)))
			return b;
	return -1;
}

static double secs(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) +
	       (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

static void report(const struct opts *o, const struct tx *t,
		   const struct zc_stats *st, uint64_t bytes, double s)
{
	uint32_t copy_below = o->zc ? 1 : DEFAULT_COPY_BELOW;
	uint64_t other = st->adapt_copy + st->enobufs_fallback;
	uint64_t below = st->sends_copy > other ? st->sends_copy - other : 0;
	double per = (double)(st->completions ? st->completions : 1);

	printf("zcstream: %s over %s, %.1f MiB in sends of %zu bytes from a "
	       "pool of %u buffers\n", o->udp ? "UDP" : "TCP",
	       o->v6 ? "::1" : "127.0.0.1", (double)o->total / 1048576.0,
	       o->size, o->pool);
	printf("backend:           %s%s\n", zc_backend_name(zc_backend(t->zs)),
	       getenv("ZCNOTIFY_BACKEND") ? " (from ZCNOTIFY_BACKEND)" : "");
	printf("options:           copy_below %u, %s\n", copy_below, o->zc ?
	       "ZC_OPT_NO_ADAPT (keep trying zero-copy)" :
	       "adapt (copy while the kernel keeps copying)");
	printf("sends:             %llu (%llu calls: %llu partial, %llu "
	       "-ENOBUFS, %llu -EAGAIN)\n", (unsigned long long)st->sends,
	       (unsigned long long)t->calls, (unsigned long long)t->partial,
	       (unsigned long long)t->enobufs, (unsigned long long)t->eagain);
	printf("  zero-copy:       %llu (pages pinned, a kernel id taken; "
	       "%llu waited out ENOBUFS)\n", (unsigned long long)st->sends_zc,
	       (unsigned long long)st->enobufs_waited);
	/* A copy backend copies all: none of those is "shorter". */
	if (zc_backend(t->zs) == ZC_BACKEND_COPY)
		printf("  library copy:    %llu (the copy backend copies every "
		       "send)\n", (unsigned long long)st->sends_copy);
	else
		printf("  library copy:    %llu (%llu shorter than copy_below, "
		       "%llu adapted because the kernel kept copying, %llu "
		       "after ENOBUFS from the kernel)\n",
		       (unsigned long long)st->sends_copy,
		       (unsigned long long)below,
		       (unsigned long long)st->adapt_copy,
		       (unsigned long long)st->enobufs_fallback);
	printf("completions:       %llu\n", (unsigned long long)st->completions);
	printf("  zero-copy:       %llu (the NIC read our pages)\n",
	       (unsigned long long)t->c_zc);
	printf("  kernel COPIED:   %llu (zero-copy asked, the kernel copied)\n",
	       (unsigned long long)t->c_kernel_copied);
	printf("  library copy:    %llu (complete when sent)\n",
	       (unsigned long long)t->c_lib_copy);
	printf("reaping:           %llu calls, %llu with completions, %.1f "
	       "completions per reap\n", (unsigned long long)t->reaps,
	       (unsigned long long)t->reaps_nonempty,
	       (double)t->completions /
	       (double)(t->reaps_nonempty ? t->reaps_nonempty : 1));
	printf("syscalls:          %llu by the library, %.2f per completed "
	       "send (%llu error-queue reads)\n",
	       (unsigned long long)st->syscalls, (double)st->syscalls / per,
	       (unsigned long long)st->errqueue_reads);
	printf("throughput:        %.1f MB/s (%.1f MB in %.3f s)%s\n",
	       (double)bytes / 1e6 / (s > 0 ? s : 1e-9), (double)bytes / 1e6, s,
	       o->check ? ", every byte checked" : "");
	printf("\n"
	       "Note: this is loopback. The kernel copies the data of every zero-copy\n"
	       "send that is delivered to a local socket, so each zero-copy completion\n"
	       "says COPIED: that is expected here, not a fault. Real zero-copy\n"
	       "(completions without COPIED) needs the data to leave through a NIC.\n");
	if (!o->zc)
		printf("By default the library notices the copying and sends by copy itself\n"
		       "(\"adapted\" above); -z keeps it trying zero-copy.\n");
}

int main(int argc, char **argv)
{
	struct opts o = { .pool = 16, .backend = ZC_BACKEND_AUTO };
	struct zc_opts zo = { .sz = sizeof(zo) };
	struct zc_stats st = { .sz = sizeof(st) };
	struct rx rx = { 0 };
	struct tx t = { 0 };
	uint64_t size = 0, mib = 256;
	struct timespec t0, t1;
	struct timeval tv = { .tv_sec = 5 };
	pthread_t thr;
	int c, fd, rfd, ret, status = 0, rcv;
	socklen_t rl = sizeof(rcv);

	while ((c = getopt(argc, argv, "s:n:b:p:z6uch")) != -1) {
		uint64_t v;

		switch (c) {
		case 's':
			if (parse_size(optarg, 1, &size)) {
				fprintf(stderr, "zcstream: bad size \"%s\"\n",
					optarg);
				return 2;
			}
			break;
		case 'n':
			if (parse_size(optarg, 1, &mib) || mib > (1ull << 30)) {
				fprintf(stderr, "zcstream: bad MiB \"%s\"\n",
					optarg);
				return 2;
			}
			break;
		case 'b':
			o.backend = parse_backend(optarg);
			if (o.backend < 0) {
				fprintf(stderr, "zcstream: unknown backend "
					"\"%s\"\n", optarg);
				return 2;
			}
			break;
		case 'p':
			if (parse_size(optarg, 1, &v) || v > MAX_POOL) {
				fprintf(stderr, "zcstream: pool of 1 to %u "
					"buffers\n", MAX_POOL);
				return 2;
			}
			o.pool = (unsigned int)v;
			break;
		case 'z': o.zc = true; break;
		case '6': o.v6 = true; break;
		case 'u': o.udp = true; break;
		case 'c': o.check = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	o.size = size ? (size_t)size : o.udp ? 65000 : 65536;
	o.total = mib * 1024 * 1024;
	if (o.udp && o.size > (o.v6 ? UDP_MAX_V6 : UDP_MAX_V4)) {
		fprintf(stderr, "zcstream: a UDP datagram over IPv%c holds at "
			"most %u bytes\n", o.v6 ? '6' : '4',
			o.v6 ? UDP_MAX_V6 : UDP_MAX_V4);
		return 2;
	}
	if (o.udp && o.size < 8) {
		fprintf(stderr, "zcstream: -u needs -s 8 or more (each datagram "
			"starts with its sequence number)\n");
		return 2;
	}
	if (o.size > (64u << 20)) {
		fprintf(stderr, "zcstream: -s at most 64m\n");
		return 2;
	}

	if (pair(&o, &fd, &rfd))
		return 1;
	setsockopt(rfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	zo.backend = o.backend;
	if (o.zc) {
		zo.copy_below = 1;
		zo.flags = ZC_OPT_NO_ADAPT;
	}
	ret = zc_open(fd, &zo, &t.zs);
	if (ret) {
		fprintf(stderr, "zcstream: %s\n", zc_last_error());
		return ret == -EOPNOTSUPP ? 77 : 1;
	}

	t.o = &o;
	t.rx = &rx;
	t.buf = calloc(o.pool, sizeof(*t.buf));
	t.refs = calloc(o.pool, sizeof(*t.refs));
	t.free = calloc(o.pool, sizeof(*t.free));
	if (!t.buf || !t.refs || !t.free) {
		fprintf(stderr, "zcstream: out of memory\n");
		return 1;
	}
	for (unsigned int i = 0; i < o.pool; i++) {
		t.buf[i] = aligned_alloc(4096, (o.size + 4095) & ~(size_t)4095);
		if (!t.buf[i]) {
			fprintf(stderr, "zcstream: out of memory\n");
			return 1;
		}
		memset(t.buf[i], 0, o.size);
		t.free[t.nfree++] = o.pool - 1 - i;
	}
	getsockopt(rfd, SOL_SOCKET, SO_RCVBUF, &rcv, &rl);
	t.rcvbuf = (uint64_t)rcv;

	rx.fd = rfd;
	rx.o = &o;
	rx.ndgrams = (o.total + o.size - 1) / o.size;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (pthread_create(&thr, NULL, receiver, &rx)) {
		fprintf(stderr, "zcstream: pthread_create failed\n");
		return 1;
	}
	if (stream(&t, fd)) {
		fprintf(stderr, "zcstream: %s\n", t.err);
		status = 1;
	}
	shutdown(fd, SHUT_WR);
	pthread_join(thr, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);

	if (rx.err[0]) {
		fprintf(stderr, "zcstream: %s\n", rx.err);
		status = 1;
	}
	if (!status && atomic_load(&rx.bytes) != o.total) {
		fprintf(stderr, "zcstream: received %llu of %llu bytes\n",
			(unsigned long long)atomic_load(&rx.bytes),
			(unsigned long long)o.total);
		status = 1;
	}
	ret = zc_get_stats(t.zs, &st);
	if (ret) {
		fprintf(stderr, "zcstream: zc_get_stats: %s\n", zc_last_error());
		status = 1;
	} else if (!status && (zc_inflight(t.zs) || st.completions != st.sends ||
			       t.completions != st.sends ||
			       st.sends_zc + st.sends_copy != st.sends ||
			       t.nfree != o.pool)) {
		fprintf(stderr, "zcstream: the books do not balance: %llu "
			"sends, %llu completions (%llu reaped), %u in flight, "
			"%u of %u buffers back\n", (unsigned long long)st.sends,
			(unsigned long long)st.completions,
			(unsigned long long)t.completions, zc_inflight(t.zs),
			t.nfree, o.pool);
		status = 1;
	}
	if (!ret)
		report(&o, &t, &st, atomic_load(&rx.bytes), secs(&t0, &t1));

	zc_close(t.zs);
	close(fd);
	close(rfd);
	for (unsigned int i = 0; i < o.pool; i++)
		free(t.buf[i]);
	free(t.buf);
	free(t.refs);
	free(t.free);
	return status;
}
