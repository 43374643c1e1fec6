// SPDX-License-Identifier: MIT
/*
 * zc_nic_test - prove real MSG_ZEROCOPY over a NIC in the rig's guest.
 *
 * A receiver runs in the network namespace of the second NIC (entered
 * through /proc/$ZC_RIG_PEER_NETNS_PID/ns/net); the sender sends 64 KiB
 * buffers with MSG_ZEROCOPY from the first NIC, so every packet crosses
 * the emulated wire. Completions are collected twice, on two connections:
 * with recvmsg(MSG_ERRQUEUE) and, if the kernel has it, with the
 * SCM_ZC_NOTIFICATION cmsg. Each phase passes when every call completed
 * exactly once and at least one completion says "not copied".
 *
 * That flag only means the kernel did not fall back to copying the user
 * pages. It is real zero-copy only if the NIC does scatter-gather (else
 * the stack linearizes the packets, copying them, and still reports
 * zero-copy), so the sending NIC's offloads are checked too.
 *
 * Exit status: 0 pass, 1 fail, 77 not in the rig (no peer namespace).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/errqueue.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "raw.h"

#define PORT		5201
#define CHUNK		(64 * 1024)
#define NSEND		64
#define MAX_IDS		(4 * NSEND)
#define WAIT_MS		15000

enum mode { MODE_ERRQUEUE, MODE_SCM };

struct phase {
	enum mode mode;
	const char *name;
	unsigned int next_id;		/* ids taken so far */
	unsigned char seen[MAX_IDS];
	unsigned int completed, zerocopy, copied, records, errors;
	size_t sent;
	int unsupported;
};

static void die(const char *what)
{
	printf("FAIL: %s: %s\n", what, strerror(errno));
	exit(1);
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* ---- the NIC ------------------------------------------------------------- */

static int ethtool_get(const char *ifname, uint32_t cmd, uint32_t *val)
{
	struct ethtool_value ev = { .cmd = cmd };
	struct ifreq ifr;
	int fd, ret;

	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0)
		return -1;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	ifr.ifr_data = (void *)&ev;
	ret = ioctl(fd, SIOCETHTOOL, &ifr);
	close(fd);
	*val = ev.data;
	return ret;
}

/* Returns 1 if the device does scatter-gather. */
static int show_nic(const char *ifname)
{
	uint32_t sg = 0, csum = 0, tso = 0;
	char path[128], link[128];
	const char *driver = "?";
	ssize_t n;

	snprintf(path, sizeof(path), "/sys/class/net/%s/device/driver", ifname);
	n = readlink(path, link, sizeof(link) - 1);
	if (n > 0) {
		link[n] = 0;
		driver = strrchr(link, '/') ? strrchr(link, '/') + 1 : link;
	}
	if (ethtool_get(ifname, ETHTOOL_GSG, &sg) ||
	    ethtool_get(ifname, ETHTOOL_GTXCSUM, &csum) ||
	    ethtool_get(ifname, ETHTOOL_GTSO, &tso)) {
		printf("%s: cannot read offloads: %s\n", ifname, strerror(errno));
		return 0;
	}
	printf("%s (driver %s): scatter-gather %s, tx-checksum %s, tso %s\n",
	       ifname, driver, sg ? "on" : "off", csum ? "on" : "off",
	       tso ? "on" : "off");
	return sg != 0;
}

/* ---- receiver in the peer namespace --------------------------------------- */

/*
 * Accepts two connections one after the other and reports, through
 * result_fd, the number of bytes read from each.
 */
static void receiver(const char *pid, const char *addr, int ready_fd,
		     int result_fd)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_port = htons(PORT) };
	char path[64], *buf;
	int ns, lfd, fd, i, one = 1;
	uint64_t total;
	ssize_t r;

	snprintf(path, sizeof(path), "/proc/%s/ns/net", pid);
	ns = open(path, O_RDONLY);
	if (ns < 0 || setns(ns, CLONE_NEWNET))
		die("receiver: setns");
	close(ns);
	if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1)
		die("receiver: bad ZC_RIG_PEER_ADDR");
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0)
		die("receiver: socket");
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) || listen(lfd, 2))
		die("receiver: bind/listen");
	if (write(ready_fd, "r", 1) != 1)
		die("receiver: write");
	buf = malloc(CHUNK);
	if (!buf)
		die("receiver: malloc");
	for (i = 0; i < 2; i++) {
		fd = accept(lfd, NULL, NULL);
		if (fd < 0)
			die("receiver: accept");
		total = 0;
		while ((r = read(fd, buf, CHUNK)) > 0)
			total += r;
		if (r < 0)
			die("receiver: read");
		close(fd);
		if (write(result_fd, &total, sizeof(total)) != sizeof(total))
			die("receiver: write");
	}
	exit(0);
}

/* ---- completions ---------------------------------------------------------- */

static void record(struct phase *p, uint32_t lo, uint32_t hi, int zerocopy)
{
	uint32_t id = lo;

	p->records++;
	for (;;) {
		if (id >= p->next_id || id >= MAX_IDS) {
			printf("  %s: completion [%u, %u] names id %u, not taken yet\n",
			       p->name, lo, hi, id);
			p->errors++;
		} else if (p->seen[id]) {
			printf("  %s: id %u completed twice\n", p->name, id);
			p->errors++;
		} else {
			p->seen[id] = 1;
			p->completed++;
			if (zerocopy)
				p->zerocopy++;
			else
				p->copied++;
		}
		if (id == hi)
			break;
		id++;
	}
}

static void drain_errqueue(int fd, struct phase *p)
{
	struct sock_extended_err *ee;
	char control[128];
	struct msghdr msg;
	struct cmsghdr *cm;

	for (;;) {
		memset(&msg, 0, sizeof(msg));
		msg.msg_control = control;
		msg.msg_controllen = sizeof(control);
		if (recvmsg(fd, &msg, MSG_ERRQUEUE) < 0) {
			if (errno != EAGAIN)
				die("recvmsg(MSG_ERRQUEUE)");
			return;
		}
		cm = CMSG_FIRSTHDR(&msg);
		if (!cm || (msg.msg_flags & MSG_CTRUNC)) {
			printf("  %s: unexpected error queue message\n", p->name);
			p->errors++;
			continue;
		}
		ee = (struct sock_extended_err *)CMSG_DATA(cm);
		if (ee->ee_errno || ee->ee_origin != SO_EE_ORIGIN_ZEROCOPY) {
			printf("  %s: foreign error queue record (errno %u origin %u)\n",
			       p->name, ee->ee_errno, ee->ee_origin);
			p->errors++;
			continue;
		}
		record(p, ee->ee_info, ee->ee_data,
		       !(ee->ee_code & SO_EE_CODE_ZEROCOPY_COPIED));
	}
}

/*
 * sendmsg() with a SCM_ZC_NOTIFICATION cmsg for SOCK_ZC_INFO_MAX elements
 * and the given payload; records what the kernel wrote back.
 */
static ssize_t send_scm(int fd, struct phase *p, const void *data, size_t len)
{
	union {
		char buf[CMSG_SPACE(SOCK_ZC_INFO_MAX *
				    sizeof(struct zc_info_elem))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = (void *)data, .iov_len = len };
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = len ? 1 : 0,
		.msg_control = u.buf,
		.msg_controllen = sizeof(u.buf),
	};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
	struct zc_info_elem *elem = (struct zc_info_elem *)CMSG_DATA(cm);
	size_t want = CMSG_LEN(SOCK_ZC_INFO_MAX * sizeof(*elem));
	ssize_t ret;
	int i, n, err;

	memset(u.buf, 0, sizeof(u.buf));
	cm->cmsg_len = want;
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_ZC_NOTIFICATION;
	elem[0].zerocopy = 0xff;	/* sentinel: nothing written */

	ret = sendmsg(fd, &msg, len ? MSG_ZEROCOPY : 0);
	err = errno;
	if (elem[0].zerocopy != 0xff) {
		if (cm->cmsg_level != SOL_SOCKET ||
		    cm->cmsg_type != SCM_ZC_NOTIFICATION ||
		    cm->cmsg_len < CMSG_LEN(sizeof(*elem)) || cm->cmsg_len > want ||
		    (cm->cmsg_len - CMSG_LEN(0)) % sizeof(*elem)) {
			printf("  %s: malformed control message written back (len %zu level %d type %d)\n",
			       p->name, (size_t)cm->cmsg_len, cm->cmsg_level,
			       cm->cmsg_type);
			p->errors++;
		} else {
			n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(*elem);
			for (i = 0; i < n; i++) {
				if (elem[i].zerocopy > 1) {
					printf("  %s: zerocopy byte %u\n", p->name,
					       elem[i].zerocopy);
					p->errors++;
				}
				record(p, elem[i].lo, elem[i].hi,
				       elem[i].zerocopy == 1);
			}
		}
	}
	errno = err;
	return ret;
}

static int wait_pollerr(int fd, int ms)
{
	struct pollfd pfd = { .fd = fd, .events = 0 };

	return poll(&pfd, 1, ms) == 1 && (pfd.revents & POLLERR);
}

static void collect(int fd, struct phase *p)
{
	if (p->mode == MODE_ERRQUEUE)
		drain_errqueue(fd, p);
	else if (send_scm(fd, p, NULL, 0) < 0)
		die("zero-length sendmsg with SCM_ZC_NOTIFICATION");
}

/* ---- sender ---------------------------------------------------------------- */

static int run_phase(struct phase *p, const char *local, const char *peer,
		     char *buf)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	long long deadline;
	int fd, one = 1, k;
	size_t off;
	ssize_t r;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		die("socket");
	if (setsockopt(fd, SOL_SOCKET, SO_ZEROCOPY, &one, sizeof(one)))
		die("SO_ZEROCOPY");
	inet_pton(AF_INET, local, &sin.sin_addr);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)))
		die("bind ZC_RIG_LOCAL_ADDR");
	sin.sin_port = htons(PORT);
	inet_pton(AF_INET, peer, &sin.sin_addr);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)))
		die("connect to the peer namespace");

	for (k = 0; k < NSEND; k++) {
		off = 0;
		while (off < CHUNK) {
			char *data = buf + (size_t)k * CHUNK + off;

			if (p->mode == MODE_SCM)
				r = send_scm(fd, p, data, CHUNK - off);
			else
				r = send(fd, data, CHUNK - off, MSG_ZEROCOPY);
			if (r < 0 && errno == EINVAL && p->mode == MODE_SCM &&
			    p->next_id == 0) {
				p->unsupported = 1;
				close(fd);
				return 0;
			}
			if (r < 0 && errno == ENOBUFS) {
				/* optmem full: wait for completions */
				wait_pollerr(fd, 1000);
				collect(fd, p);
				continue;
			}
			if (r <= 0)
				die("send MSG_ZEROCOPY");
			if (p->next_id >= MAX_IDS) {
				printf("FAIL: too many partial sends\n");
				exit(1);
			}
			p->next_id++;
			p->sent += r;
			off += r;
			if (p->mode == MODE_ERRQUEUE)
				drain_errqueue(fd, p);
		}
	}

	deadline = now_ms() + WAIT_MS;
	while (p->completed + p->errors < p->next_id && now_ms() < deadline) {
		wait_pollerr(fd, 200);
		collect(fd, p);
	}
	if (p->mode == MODE_SCM) {
		char control[128];
		struct msghdr msg = { .msg_control = control,
				      .msg_controllen = sizeof(control) };

		if (recvmsg(fd, &msg, MSG_ERRQUEUE) >= 0 || errno != EAGAIN) {
			printf("  %s: error queue not empty at the end\n", p->name);
			p->errors++;
		}
	}
	close(fd);
	return 0;
}

static int report(struct phase *p, int sg, uint64_t received)
{
	int ok = 1;

	printf("%s: %u calls, %zu bytes; %u records completing %u calls: %u zero-copy, %u copied; receiver got %llu bytes\n",
	       p->name, p->next_id, p->sent, p->records, p->completed,
	       p->zerocopy, p->copied, (unsigned long long)received);
	if (p->errors) {
		printf("FAIL: %s: %u inconsistencies (see above)\n", p->name,
		       p->errors);
		ok = 0;
	}
	if (p->completed != p->next_id) {
		printf("FAIL: %s: %u of %u calls completed within %d ms\n",
		       p->name, p->completed, p->next_id, WAIT_MS);
		ok = 0;
	}
	if (received != p->sent) {
		printf("FAIL: %s: receiver got %llu of %zu bytes\n", p->name,
		       (unsigned long long)received, p->sent);
		ok = 0;
	}
	if (!p->zerocopy) {
		printf("FAIL: %s: every completion says the data was copied\n",
		       p->name);
		ok = 0;
	} else if (!sg) {
		printf("FAIL: %s: completions say zero-copy, but the NIC has no scatter-gather: the stack copied the data anyway\n",
		       p->name);
		ok = 0;
	} else {
		printf("ok: %s: real zero-copy over the NIC\n", p->name);
	}
	return ok;
}

int main(void)
{
	const char *pid = getenv("ZC_RIG_PEER_NETNS_PID");
	const char *local = getenv("ZC_RIG_LOCAL_ADDR");
	const char *peer = getenv("ZC_RIG_PEER_ADDR");
	const char *ifname = getenv("ZC_RIG_LOCAL_IF");
	const char *variant = getenv("ZC_RIG_VARIANT");
	struct phase *p;
	int ready[2], result[2], sg, ok = 1, status;
	uint64_t received;
	pid_t child;
	char *buf, c;
	int i;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!pid || !local || !peer) {
		printf("skip: ZC_RIG_PEER_NETNS_PID, ZC_RIG_LOCAL_ADDR, ZC_RIG_PEER_ADDR not set (not in the rig?)\n");
		return 77;
	}
	sg = show_nic(ifname ? ifname : "eth0");

	if (pipe(ready) || pipe(result))
		die("pipe");
	child = fork();
	if (child < 0)
		die("fork");
	if (child == 0) {
		close(ready[0]);
		close(result[0]);
		receiver(pid, peer, ready[1], result[1]);
	}
	close(ready[1]);
	close(result[1]);
	if (read(ready[0], &c, 1) != 1) {
		printf("FAIL: receiver did not start\n");
		return 1;
	}

	buf = mmap(NULL, (size_t)NSEND * CHUNK, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED)
		die("mmap");
	memset(buf, 'z', (size_t)NSEND * CHUNK);

	for (i = 0; i < 2; i++) {
		p = calloc(1, sizeof(*p));
		if (!p)
			die("calloc");
		p->mode = i ? MODE_SCM : MODE_ERRQUEUE;
		p->name = i ? "SCM_ZC_NOTIFICATION" : "recvmsg(MSG_ERRQUEUE)";
		run_phase(p, local, peer, buf);
		if (read(result[0], &received, sizeof(received)) !=
		    sizeof(received)) {
			printf("FAIL: no byte count from the receiver\n");
			return 1;
		}
		if (p->unsupported) {
			printf("%s: not supported by this kernel (EINVAL)\n",
			       p->name);
			if (variant && !strcmp(variant, "patched")) {
				printf("FAIL: the rig's patched kernel must support it\n");
				ok = 0;
			}
		} else {
			ok &= report(p, sg, received);
		}
		free(p);
	}
	waitpid(child, &status, 0);
	return ok ? 0 : 1;
}
