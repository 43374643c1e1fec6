// SPDX-License-Identifier: MIT
/*
 * The bottom floor: the syscalls of the layers above (the send, the
 * eventfd write that wakes a sleeping reaper, a sysctl read), the
 * message behind zc_last_error(), and the thread-exit keys of per-thread
 * memory. Every layer calls down to here; this file calls nothing of the
 * library's but a hook (zc__wake_reaper()).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "sys.h"

static _Thread_local char last_err_buf[256];
_Thread_local const char *zc__last_err = "";

int zc__err(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_err_buf, sizeof(last_err_buf), fmt, ap);
	va_end(ap);
	zc__last_err = last_err_buf;
	return err;
}

ZC_EXPORT const char *zc_last_error(void)
{
	return zc__last_err;
}

ssize_t zc__sys_sendmsg(struct zc_sock *zs, const struct msghdr *msg, int flags)
{
	ssize_t ret = zc_sys_send(zs, msg, flags);

	if (ret >= 0)	/* zc_sys_send() counted a failure */
		ZC_STAT_INC(&zs->tx, syscalls);
	return ret;
}

void zc__wake_reaper(struct zc_sock *zs)
{
	/* Acquire: pairs with the release of efd in zc_wait(). */
	int efd = atomic_load_explicit(&zs->efd, memory_order_acquire);
	uint64_t one = 1;

	/*
	 * A member keeps waiting set: see ctx.c. Its wake-up is the
	 * context's, one floor up: called through the hook zc_open() set.
	 */
	if (zs->ctx) {
		zs->ctxm.wake(zs);
		return;
	}
	if (efd < 0)
		return;
	if (write(efd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is already non-zero, the reaper wakes. */
	}
	ZC_STAT_INC(&zs->tx, syscalls);
}

/*
 * net.core.optmem_max, read once per process: the largest control buffer
 * sendmsg(2) accepts (sock_kmalloc()). 20480 if it cannot be read (the
 * default on 64-bit kernels before 6.9).
 */
size_t zc__optmem_max(void)
{
	static _Atomic long cached;
	long v = atomic_load_explicit(&cached, memory_order_relaxed);
	FILE *f;

	if (v > 0)
		return (size_t)v;
	f = fopen("/proc/sys/net/core/optmem_max", "re");
	if (!f || fscanf(f, "%ld", &v) != 1 || v <= 0)
		v = 20480;
	if (f)
		fclose(f);
	atomic_store_explicit(&cached, v, memory_order_relaxed);
	return (size_t)v;
}

void zc__copy_sized(void *dst, size_t sz, const void *src, size_t len)
{
	memcpy(dst, src, sz < len ? sz : len);
	if (sz > len)
		memset((char *)dst + len, 0, sz - len);
	memcpy(dst, &sz, sizeof(sz));
}

/* Serialises the making of keys: once per key and process. */
static pthread_mutex_t key_lock = PTHREAD_MUTEX_INITIALIZER;

bool zc__thread_key_set(struct zc_thread_key *k, void *value)
{
	/* Acquire: pairs with the release below (k->key written before). */
	int state = atomic_load_explicit(&k->state, memory_order_acquire);

	if (!state) {
		pthread_mutex_lock(&key_lock);
		state = atomic_load_explicit(&k->state, memory_order_relaxed);
		if (!state) {
			state = pthread_key_create(&k->key, k->exit) ? -1 : 1;
			atomic_store_explicit(&k->state, state,
					      memory_order_release);
		}
		pthread_mutex_unlock(&key_lock);
	}
	return state > 0 && !pthread_setspecific(k->key, value);
}

void zc__thread_key_unload(struct zc_thread_key *k)
{
	if (atomic_load_explicit(&k->state, memory_order_relaxed) > 0)
		pthread_key_delete(k->key);
}
