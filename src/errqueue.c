// SPDX-License-Identifier: MIT
/*
 * The socket error queue: parse one record, drain the queue in batches.
 *
 * A zero-copy completion is a sock_extended_err with ee_errno 0 and origin
 * SO_EE_ORIGIN_ZEROCOPY, for the inclusive range [ee_info, ee_data]. It
 * arrives as SOL_IP/IP_RECVERR or SOL_IPV6/IPV6_RECVERR (an IPv6 socket with
 * IPv4-mapped traffic may use either). Anything else on the queue (ICMP
 * errors, TX timestamps) is a foreign record: kept for zc_foreign(), never
 * silently dropped.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "errqueue.h"

#ifndef SO_TIMESTAMPING_NEW
#define SO_TIMESTAMPING_NEW	65
#endif

/*
 * Parse one error-queue message. Bounds-checks every cmsg against
 * msg_controllen, so it is safe on any bytes (it is fuzzed).
 */
enum zc_rec_kind zc__parse_errmsg(const struct msghdr *m, struct zc_range *r,
				 struct zc_errrec *rec)
{
	const unsigned char *ctrl = m->msg_control;
	size_t len = m->msg_control ? m->msg_controllen : 0;
	bool have_ee = false, have_ts = false;
	struct sock_extended_err ee;
	struct timespec ts[3];
	const unsigned char *off = NULL;
	int level = 0, type = 0;
	size_t offlen = 0;

	for (size_t pos = 0; pos + sizeof(struct cmsghdr) <= len;) {
		struct cmsghdr c;
		size_t dlen;
		const unsigned char *data;

		memcpy(&c, ctrl + pos, sizeof(c));
		if (c.cmsg_len < CMSG_LEN(0))
			break;	/* malformed: stop here */
		/*
		 * With MSG_CTRUNC the kernel keeps the full cmsg_len in the
		 * header but copies only what fits: use what is there.
		 */
		data = ctrl + pos + CMSG_LEN(0);
		dlen = (c.cmsg_len < len - pos ? c.cmsg_len : len - pos) -
		       CMSG_LEN(0);

		if (((c.cmsg_level == SOL_IP && c.cmsg_type == IP_RECVERR) ||
		     (c.cmsg_level == SOL_IPV6 && c.cmsg_type == IPV6_RECVERR)) &&
		    dlen >= sizeof(ee) && !have_ee) {
			memcpy(&ee, data, sizeof(ee));
			have_ee = true;
			level = c.cmsg_level;
			type = c.cmsg_type;
			/* The offender: copied only for a foreign record. */
			off = data + sizeof(ee);
			offlen = dlen - sizeof(ee);
			if (offlen > sizeof(struct sockaddr_storage))
				offlen = sizeof(struct sockaddr_storage);
		} else if (c.cmsg_level == SOL_SOCKET &&
			   (c.cmsg_type == SO_TIMESTAMPING_OLD ||
			    c.cmsg_type == SO_TIMESTAMPING_NEW) &&
			   dlen >= sizeof(ts)) {
			memcpy(ts, data, sizeof(ts));
			have_ts = true;
		}
		/*
		 * A cmsg_len past the end was cut (or is hostile): it was the
		 * last. Checked before CMSG_ALIGN, which wraps to 0 near
		 * SIZE_MAX and would never move on (found by fuzzing).
		 */
		if (c.cmsg_len >= len - pos)
			break;
		pos += CMSG_ALIGN(c.cmsg_len);
	}

	if (!have_ee)
		return ZC_REC_NONE;
	if (ee.ee_errno == 0 && ee.ee_origin == SO_EE_ORIGIN_ZEROCOPY) {
		r->lo = ee.ee_info;
		r->hi = ee.ee_data;
		r->copied = ee.ee_code & SO_EE_CODE_ZEROCOPY_COPIED;
		return ZC_REC_RANGE;
	}
	memset(rec, 0, sizeof(*rec));
	rec->level = level;
	rec->type = type;
	rec->ee_errno = ee.ee_errno;
	rec->ee_origin = ee.ee_origin;
	rec->ee_type = ee.ee_type;
	rec->ee_code = ee.ee_code;
	rec->ee_pad = ee.ee_pad;
	rec->ee_info = ee.ee_info;
	rec->ee_data = ee.ee_data;
	memcpy(&rec->offender, off, offlen);
	if (offlen >= sizeof(sa_family_t) &&
	    rec->offender.ss_family != AF_UNSPEC)
		rec->flags |= ZC_ERRREC_OFFENDER;
	else
		memset(&rec->offender, 0, sizeof(rec->offender));
	if (have_ts) {
		memcpy(rec->ts, ts, sizeof(ts));
		rec->flags |= ZC_ERRREC_TIMESTAMP;
	}
	return ZC_REC_FOREIGN;
}

void zc__stash_foreign(struct zc_sock *zs, const struct zc_errrec *rec)
{
	ZC_STAT_INC(&zs->rx, foreign);
	if (!zs->foreign)	/* the first: 13 KiB no socket pays before */
		zs->foreign = malloc(ZC_FOREIGN_MAX * sizeof(*zs->foreign));
	/* Out of memory: dropped, as when zc_foreign() is not called. */
	if (!zs->foreign || zs->nforeign == ZC_FOREIGN_MAX) {
		ZC_STAT_INC(&zs->rx, foreign_dropped);
		return;
	}
	zs->foreign[(zs->foreign_first + zs->nforeign) % ZC_FOREIGN_MAX] = *rec;
	zs->nforeign++;
}

_Thread_local struct zc_eq *zc__tl_eq
	__attribute__((tls_model("initial-exec")));

/*
 * Each thread's zc_eq is freed when the thread exits, by the destructor of
 * a key it is set in. A read leaves the buffers as it found them (the
 * headers it filled are restored), so any socket's next read, in the same
 * thread, can use them: a thread reads one socket at a time.
 */
static void eq_free(void *eq)
{
	free(eq);
	zc__tl_eq = NULL;
}

static struct zc_thread_key eq_key = ZC_THREAD_KEY(eq_free);

int zc__eq_read_first(struct zc_sock *zs, bool count_ids, bool blocked)
{
	struct zc_eq *eq = calloc(1, sizeof(*eq));
	int n;

	if (!eq)
		return -ENOMEM;
	for (int i = 0; i < ZC_EQ_BATCH; i++) {
		eq->msgs[i].msg_hdr.msg_control = eq->ctrl[i];
		eq->msgs[i].msg_hdr.msg_controllen = ZC_EQ_CTRL;
	}
	zc__tl_eq = eq;
	if (zc__thread_key_set(&eq_key, eq))
		return zc_eq_read_as(zs, count_ids, blocked, NULL, NULL);
	/*
	 * No key (the process used up PTHREAD_KEYS_MAX): nothing would free
	 * a kept one when the thread exits. This read's own, then.
	 */
	n = zc_eq_read_as(zs, count_ids, blocked, NULL, NULL);
	zc__tl_eq = NULL;
	free(eq);
	return n;
}

/*
 * dlclose() of the library: no thread that exits later may call eq_free(),
 * gone with the library (their buffers are lost then); this one's is
 * freed. At exit the same frees the main thread's.
 */
static __attribute__((destructor)) void eq_unload(void)
{
	zc__thread_key_unload(&eq_key);
	free(zc__tl_eq);
	zc__tl_eq = NULL;
}

/*
 * A record eq_record_fast() did not take, or cut short (MSG_CTRUNC): parse it
 * the careful way, and count it. Returns 1 if it was a record.
 */
/*
 * A read came back with MSG_CTRUNC: zc_completions() says -EMSGSIZE once.
 * Not on a broken socket (marks_make()): its -ENOMEM, completions lost,
 * stays for every call, and must not turn into a one-time error.
 */
static void note_ctrunc(struct zc_sock *zs)
{
	ZC_STAT_INC(&zs->rx, ctrunc);
	if (!zs->broken)
		zs->pending_err = -EMSGSIZE;
}

int zc__eq_record_slow(struct zc_sock *zs, const struct msghdr *m)
{
	struct zc_range r;
	struct zc_errrec rec;
	uint32_t ids;

	if (m->msg_flags & MSG_CTRUNC)
		note_ctrunc(zs);
	switch (zc__parse_errmsg(m, &r, &rec)) {
	case ZC_REC_RANGE:
		ids = zc_apply_range(zs, r.lo, r.hi, r.copied);
		ZC_STAT_INC(&zs->rx, harvest_recvmsg);
		zc_count_ids(zs, ids);
		return 1;
	case ZC_REC_FOREIGN:
		zc__stash_foreign(zs, &rec);
		return 1;
	case ZC_REC_NONE:
		break;
	}
	return 0;
}

/*
 * zc_eq_read()'s recvmmsg() returned nothing (err -EAGAIN) or failed
 * (err -errno) after nrec records. Returns 0 (all read), 1 (read again:
 * EINTR) or -errno: an error is returned only if no record came before it
 * (those are news; the error comes back at the next read).
 */
int zc__eq_read_error(int err, int nrec)
{
	if (err == -EAGAIN || err == -EWOULDBLOCK)
		return 0;
	if (err == -EINTR)
		return 1;
	return nrec ? 0 : err;
}

int zc__eq_read_more(struct zc_sock *zs, int n, int err, bool count_ids)
{
	int nrec = 0;
	uint32_t ids = 0, ranges = 0;

	for (;;) {
		/* From the thread pointer: zc__eq_read_first() made it. */
		struct mmsghdr *msgs = zc__tl_eq->msgs;

		if (n <= 0) {
			/* EAGAIN: all read; else an error */
			n = zc__eq_read_error(n < 0 ? err : -EAGAIN,
					      nrec + (int)ranges);
			if (n < 0)
				return n;
			/*
			 * 0: all read. 1 (EINTR) ends the read too, as the
			 * loop this replaced did (its continue tested for
			 * a full batch): the next call reads again.
			 */
			break;
		} else {
			for (int i = 0; i < n; i++) {
				struct msghdr *m = &msgs[i].msg_hdr;
				struct zc_range r;

				if (eq_record_fast(m, &r)) {
					ids += zc_apply_range(zs, r.lo, r.hi,
							      r.copied);
					ranges++;
				} else {
					nrec += zc__eq_record_slow(zs, m);
				}
				/*
				 * recvmmsg() rewrote msg_controllen and
				 * msg_flags of the headers it filled, and
				 * only those: restore them.
				 */
				m->msg_controllen = ZC_EQ_CTRL;
				m->msg_flags = 0;
			}
			if (n != ZC_EQ_BATCH)
				break;
		}
		n = recvmmsg(zs->fd, msgs, ZC_EQ_BATCH,
			     MSG_ERRQUEUE | MSG_DONTWAIT, NULL);
		err = n < 0 ? -errno : 0;
		ZC_STAT_INC(&zs->rx, errqueue_reads);	/* and a syscall */
	}
	zs->rx_dry = !(nrec + ranges);
	ZC_STAT_ADD(&zs->rx, harvest_recvmsg, ranges);
	if (count_ids && ids)
		zc_count_ids(zs, ids);
	return nrec + (int)ranges;
}

int zc__eq_drain(struct zc_sock *zs)
{
	return zc_eq_read(zs, true);
}

/* ---- records the send side takes on ENOBUFS (struct zc_eqh) ---- */

/*
 * Send side, after the kernel refused a zero-copy send over TCP with
 * ENOBUFS. The failed send took no id (6.1 fails msg_zerocopy_realloc()
 * before one is given out) and sent nothing. Read what the error queue
 * holds, one record a recvmsg() (a record read is ours: the kernel has no
 * peek for the error queue), until it is empty, the ring is full, or a
 * foreign record came (it waits in the one slot there is). Reading frees
 * the option memory each record held, so the caller tries zero-copy once
 * more. The reap side gets the records through eqh and is woken as a
 * send would wake it: the queue may now be empty, and no POLLERR comes for
 * what we took. Returns the number of ranges taken (0: none, or not TCP,
 * or no memory for eqh, or the foreign slot still full).
 */
int zc__eq_harvest_enobufs(struct zc_sock *zs)
{
	struct zc_eqh *q = zs->eqh;
	alignas(struct cmsghdr) unsigned char ctrl[ZC_EQ_CTRL];
	uint32_t t, t0, room;
	int ranges = 0;

	if (zs->type != SOCK_STREAM)
		return 0;
	if (!q) {
		q = calloc(1, sizeof(*q));
		if (!q)
			return 0;
		/* Published to the reap side by the release of q->tail. */
		zs->eqh = q;
	}
	/* Acquire: pairs with the release in zc__eq_take_harvest(). */
	if (atomic_load_explicit(&q->foreign_full, memory_order_acquire))
		return 0;
	t = t0 = atomic_load_explicit(&q->tail, memory_order_relaxed);
	/* Acquire: pairs with the release of head in zc__eq_take_harvest(). */
	room = ZC_EQH_ITEMS - (t - atomic_load_explicit(&q->head,
						       memory_order_acquire));
	for (unsigned int reads = 0; room && reads < ZC_EQH_ITEMS; reads++) {
		struct msghdr m = { .msg_control = ctrl,
				    .msg_controllen = sizeof(ctrl) };
		struct zc_range r;
		uint8_t kind;

		ZC_STAT_INC(&zs->tx, syscalls);
		if (recvmsg(zs->fd, &m, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) {
			if (errno == EINTR)
				continue;
			break;		/* EAGAIN: all read; or an error */
		}
		kind = m.msg_flags & MSG_CTRUNC ? ZC_EQH_CTRUNC : 0;
		if (!eq_record_fast(&m, &r)) {
			switch (zc__parse_errmsg(&m, &r, &q->foreign)) {
			case ZC_REC_RANGE:
				break;
			case ZC_REC_FOREIGN:
				kind |= ZC_EQH_FOREIGN;
				break;
			case ZC_REC_NONE:	/* as the reap side: ignored */
			default:
				continue;
			}
		}
		q->items[t % ZC_EQH_ITEMS].kind = kind |
			(!(kind & ZC_EQH_FOREIGN) && r.copied ? ZC_EQH_COPIED : 0);
		if (kind & ZC_EQH_FOREIGN) {
			/* Relaxed: the release of tail below publishes it. */
			atomic_store_explicit(&q->foreign_full, true,
					      memory_order_relaxed);
			t++;
			break;
		}
		q->items[t % ZC_EQH_ITEMS].lo = r.lo;
		q->items[t % ZC_EQH_ITEMS].hi = r.hi;
		t++;
		room--;
		ranges++;
	}
	if (t == t0)
		return 0;
	/* Release: pairs with the acquire in zc__eq_take_harvest(). */
	atomic_store_explicit(&q->tail, t, memory_order_release);
	/*
	 * Seq_cst, then a seq_cst load of waiting, as in zc_publish(): the
	 * reaper in zc_wait() stores waiting, then loads eqh_news. One of us
	 * sees the other.
	 */
	atomic_store_explicit(&zs->eqh_news, true, memory_order_seq_cst);
	if (atomic_load_explicit(&zs->waiting, memory_order_seq_cst))
		zc__wake_reaper(zs);
	return ranges;
}

/*
 * Send side: ids issued that the reap side has not applied (below
 * done_to) and that no harvest holds for it (eqh): ids the kernel may
 * still report. An estimate that errs low, not high: eqh's head is read
 * before done_to, so a range the reap side applies in between counts
 * twice, never not at all. It errs high only by ids reported out of order
 * (marks past done_to) or read and not yet applied: a caller that waits
 * on it must bound the wait.
 */
bool zc__eq_ids_out(struct zc_sock *zs)
{
	struct zc_eqh *q = zs->eqh;
	uint32_t taken = 0;

	if (q) {
		/* Acquire: pairs with the release in zc__eq_take_harvest(). */
		uint32_t h = atomic_load_explicit(&q->head,
						  memory_order_acquire);
		uint32_t t = atomic_load_explicit(&q->tail,
						  memory_order_relaxed);

		for (; h != t; h++) {
			uint8_t kind = q->items[h % ZC_EQH_ITEMS].kind;

			if (!(kind & ZC_EQH_FOREIGN))
				taken += q->items[h % ZC_EQH_ITEMS].hi -
					 q->items[h % ZC_EQH_ITEMS].lo + 1;
		}
	}
	return (int32_t)(zs->zc_next - zc_done_to(zs) - taken) > 0;
}

int zc__eq_take_harvest(struct zc_sock *zs, bool count_ids)
{
	struct zc_eqh *q;
	uint32_t h, t, ids = 0, ranges = 0;
	int n = 0;

	/*
	 * Cleared before tail is read: records pushed after that read set
	 * it again (their push stores tail, then eqh_news), so none waits
	 * unseen. Seq_cst: the acquire pairs with that store, which orders
	 * zs->eqh too.
	 */
	if (!atomic_exchange_explicit(&zs->eqh_news, false,
				      memory_order_seq_cst))
		return 0;
	q = zs->eqh;
	h = atomic_load_explicit(&q->head, memory_order_relaxed);
	/* Acquire: pairs with the release in zc__eq_harvest_enobufs(). */
	t = atomic_load_explicit(&q->tail, memory_order_acquire);
	for (; h != t; h++, n++) {
		uint8_t kind = q->items[h % ZC_EQH_ITEMS].kind;

		if (kind & ZC_EQH_CTRUNC)
			note_ctrunc(zs);
		if (kind & ZC_EQH_FOREIGN) {
			zc__stash_foreign(zs, &q->foreign);
			/* Release: the send side may read into it again. */
			atomic_store_explicit(&q->foreign_full, false,
					      memory_order_release);
			continue;
		}
		ids += zc_apply_range(zs, q->items[h % ZC_EQH_ITEMS].lo,
				      q->items[h % ZC_EQH_ITEMS].hi,
				      kind & ZC_EQH_COPIED);
		ranges++;
	}
	/* Release: pairs with the acquire in zc__eq_harvest_enobufs(). */
	atomic_store_explicit(&q->head, h, memory_order_release);
	ZC_STAT_ADD(&zs->rx, harvest_recvmsg, ranges);
	if (count_ids && ids)
		zc_count_ids(zs, ids);
	return n;
}

int zc__eq_read_harvested(struct zc_sock *zs, bool count_ids)
{
	int k = zc__eq_take_harvest(zs, count_ids), n;

	/* The queue too: what came since, and a foreign record's POLLERR. */
	if (__builtin_expect(!zc__tl_eq, 0)) {
		n = zc__eq_read_first(zs, count_ids, false);
	} else {
		n = recvmmsg(zs->fd, zc__tl_eq->msgs, ZC_EQ_BATCH,
			     MSG_ERRQUEUE | MSG_DONTWAIT, NULL);
		ZC_STAT_INC(&zs->rx, errqueue_reads);	/* and a syscall */
		n = zc__eq_read_more(zs, n, n < 0 ? -errno : 0, count_ids);
	}
	if (n < 0)
		return k ? k : n;	/* the error comes back next time */
	return k + n;
}
