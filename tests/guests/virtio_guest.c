/* Minimal virtio-mmio (version 2) driver guest for the virtio tests and bench.
 *
 * Devices come from the command line exactly as a Linux guest would see them:
 * "virtio_mmio.device=4K@0xd0000000:5" (one per device), or "vscan=BASE,STRIDE,COUNT" to probe
 * fixed slots (QEMU microvm puts its transports at 0xfeb00000 + n*0x200 and does not list them).
 * "vt=MODE" picks the test; "irq=1" waits for used buffers with hlt + the device interrupt
 * (IOAPIC, vector 40 + slot) instead of polling the used ring.
 *
 * Modes (output lines are parsed by tests/vmm/virtio/test_guest_virtio.py and bench/bench_virtio.py):
 *   blk-read   "blk capacity=N ro=R" + "blk sector0 fnv=0x........" (FNV-1a of sector 0)
 *   blk-write  writes sector 2 with (i*7+3)&255, flushes: "blk write status=S flush status=S"
 *              then "blk readback ok|bad"
 *   rng        "rng got=N distinct=D"
 *   net        ARP who-has 192.0.2.1 through passt: "net arp-reply ip=192.0.2.1 ok|none"
 *   net-flood  "net flooding", then keeps the tx queue full of 1514-byte frames forever,
 *              reading a transport register between kicks (a stalled backend stalls this vCPU)
 *   evil       a request into non-RAM: "evil blk status=0x0000004f" (DEVICE_NEEDS_RESET), then
 *              the rng and, after a reset, the disk still work (rng + blk-read lines)
 *   probe      "slot N base=B magic=M version=V id=I" per slot
 *   bench      "T seq64k" / "E seq64k n=..." around each phase (seq64k, seq1m, rand4k);
 *              the host times the lines. "mb=N" MiB per sequential phase, "rq=N" random reads.
 * Every mode ends with "irqs N completions M" and powers off. */
#include "runtime.h"

#define MAGIC 0x74726976
#define R_MAGIC 0x000
#define R_VERSION 0x004
#define R_DEVICE_ID 0x008
#define R_DEV_FEATURES 0x010
#define R_DEV_FEATURES_SEL 0x014
#define R_DRV_FEATURES 0x020
#define R_DRV_FEATURES_SEL 0x024
#define R_QUEUE_SEL 0x030
#define R_QUEUE_NUM_MAX 0x034
#define R_QUEUE_NUM 0x038
#define R_QUEUE_READY 0x044
#define R_QUEUE_NOTIFY 0x050
#define R_ISR 0x060
#define R_ISR_ACK 0x064
#define R_STATUS 0x070
#define R_DESC_LO 0x080
#define R_DESC_HI 0x084
#define R_DRIVER_LO 0x090
#define R_DRIVER_HI 0x094
#define R_DEVICE_LO 0x0a0
#define R_DEVICE_HI 0x0a4
#define R_CONFIG 0x100

#define S_ACK 1
#define S_DRIVER 2
#define S_DRIVER_OK 4
#define S_FEATURES_OK 8

#define F_NEXT 1
#define F_WRITE 2

#define QSZ 16
#define MAX_DEVS 32
#define VECTOR_BASE 40

struct desc { u64 addr; u32 len; u16 flags; u16 next; };
struct avail { u16 flags; u16 idx; u16 ring[QSZ]; u16 used_event; };
struct used_elem { u32 id; u32 len; };
struct used { u16 flags; u16 idx; struct used_elem ring[QSZ]; u16 avail_event; };

struct vq {
	struct desc desc[QSZ] __attribute__((aligned(16)));
	struct avail avail __attribute__((aligned(4)));
	struct used used __attribute__((aligned(4)));
	u16 avail_idx, used_seen;
};

struct vdev {
	u32 base, irq;
	struct vq *q[2];
};

static struct vq queues[2 * MAX_DEVS] __attribute__((aligned(4096)));
static u8 big[1 << 20] __attribute__((aligned(4096)));
static u8 small[4096] __attribute__((aligned(4096)));
static u8 hdr[16];
static volatile u8 status_byte;
static volatile u32 irq_count;
static u32 completions;
static int use_irq;
static const char *cmdline = "";

static u32 slot_base[MAX_DEVS], slot_irq[MAX_DEVS];
static int slots;

#define barrier() __asm__ volatile("" ::: "memory")

static u32 rd(struct vdev *d, u32 r) { return mmio_read32(d->base + r); }
static void wr(struct vdev *d, u32 r, u32 v) { mmio_write32(d->base + r, v); }

/* ---- command line ---- */

static const char *find_opt(const char *name)
{
	for (const char *c = cmdline; *c; c++) {
		if (c != cmdline && c[-1] != ' ')
			continue;
		const char *n = name, *p = c;
		while (*n && *p == *n) { n++; p++; }
		if (!*n)
			return p;
	}
	return 0;
}

static u32 parse_num(const char **p)
{
	u32 v = 0;
	if ((*p)[0] == '0' && (*p)[1] == 'x') {
		*p += 2;
		for (;; (*p)++) {
			char ch = **p;
			if (ch >= '0' && ch <= '9') v = v * 16 + (u32)(ch - '0');
			else if (ch >= 'a' && ch <= 'f') v = v * 16 + (u32)(ch - 'a' + 10);
			else break;
		}
	} else {
		while (**p >= '0' && **p <= '9') v = v * 10 + (u32)(*(*p)++ - '0');
	}
	if (**p == 'K') { v <<= 10; (*p)++; }
	return v;
}

static int opt_is(const char *name, const char *value)
{
	const char *p = find_opt(name);
	if (!p) return 0;
	while (*value && *p == *value) { p++; value++; }
	return !*value && (*p == ' ' || *p == 0);
}

static u32 opt_num(const char *name, u32 dflt)
{
	const char *p = find_opt(name);
	return p ? parse_num(&p) : dflt;
}

static void find_slots(void)
{
	for (const char *c = cmdline; *c && slots < MAX_DEVS; c++) {
		const char *key = "virtio_mmio.device=", *p = c, *k = key;
		while (*k && *p == *k) { k++; p++; }
		if (*k) continue;
		parse_num(&p);                       /* size */
		if (*p++ != '@') continue;
		u32 base = parse_num(&p);
		if (*p++ != ':') continue;
		slot_base[slots] = base;
		slot_irq[slots++] = parse_num(&p);
	}
	const char *s = find_opt("vscan=");
	if (s) {
		u32 base = parse_num(&s); s++;
		u32 stride = parse_num(&s); s++;
		u32 count = parse_num(&s);
		for (u32 i = 0; i < count && slots < MAX_DEVS; i++) {
			slot_base[slots] = base + i * stride;
			slot_irq[slots++] = 0;
		}
	}
}

/* ---- transport ---- */

static void on_irq(u32 vector)
{
	u32 slot = vector - VECTOR_BASE;
	if (slot < MAX_DEVS) {
		u32 isr = mmio_read32(slot_base[slot] + R_ISR);
		mmio_write32(slot_base[slot] + R_ISR_ACK, isr);
	}
	irq_count++;
	lapic_eoi();
}

static int find_device(u32 id, struct vdev *d)
{
	for (int i = 0; i < slots; i++) {
		u32 b = slot_base[i];
		if (mmio_read32(b + R_MAGIC) != MAGIC || mmio_read32(b + R_VERSION) != 2)
			continue;
		if (mmio_read32(b + R_DEVICE_ID) != id)
			continue;
		d->base = b;
		d->irq = slot_irq[i];
		d->q[0] = &queues[2 * i];
		d->q[1] = &queues[2 * i + 1];
		if (use_irq && d->irq) {
			isr_set(VECTOR_BASE + (u32)i, on_irq);
			ioapic_route(d->irq, VECTOR_BASE + (u32)i, lapic_id());
		}
		return 1;
	}
	return 0;
}

/* Negotiate VERSION_1 plus `want` (low 32 bits) and bring up `nq` queues. */
static int dev_init(struct vdev *d, u32 want, int nq)
{
	wr(d, R_STATUS, 0);
	wr(d, R_STATUS, S_ACK);
	wr(d, R_STATUS, S_ACK | S_DRIVER);
	wr(d, R_DEV_FEATURES_SEL, 1);
	if (!(rd(d, R_DEV_FEATURES) & 1))
		return 0;
	wr(d, R_DEV_FEATURES_SEL, 0);
	u32 have = rd(d, R_DEV_FEATURES);
	wr(d, R_DRV_FEATURES_SEL, 0);
	wr(d, R_DRV_FEATURES, have & want);
	wr(d, R_DRV_FEATURES_SEL, 1);
	wr(d, R_DRV_FEATURES, 1);
	wr(d, R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
	if (!(rd(d, R_STATUS) & S_FEATURES_OK))
		return 0;
	for (int i = 0; i < nq; i++) {
		struct vq *q = d->q[i];
		memset(q, 0, sizeof(*q));
		if (!use_irq || !d->irq)
			q->avail.flags = 1;  /* VIRTQ_AVAIL_F_NO_INTERRUPT: we poll the used ring */
		wr(d, R_QUEUE_SEL, (u32)i);
		if (rd(d, R_QUEUE_NUM_MAX) < QSZ)
			return 0;
		wr(d, R_QUEUE_NUM, QSZ);
		wr(d, R_DESC_LO, (u32)q->desc);
		wr(d, R_DESC_HI, 0);
		wr(d, R_DRIVER_LO, (u32)&q->avail);
		wr(d, R_DRIVER_HI, 0);
		wr(d, R_DEVICE_LO, (u32)&q->used);
		wr(d, R_DEVICE_HI, 0);
		wr(d, R_QUEUE_READY, 1);
	}
	wr(d, R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	return 1;
}

/* Post a chain on queue `qi` using descriptors start..start+n-1. */
static void post(struct vdev *d, int qi, int start, const u32 *addr, const u32 *len,
		 const u16 *flags, int n)
{
	struct vq *q = d->q[qi];
	for (int i = 0; i < n; i++) {
		int k = start + i;
		q->desc[k].addr = addr[i];
		q->desc[k].len = len[i];
		q->desc[k].flags = (u16)(flags[i] | (i + 1 < n ? F_NEXT : 0));
		q->desc[k].next = (u16)(k + 1);
	}
	q->avail.ring[q->avail_idx % QSZ] = (u16)start;
	barrier();
	q->avail_idx++;
	q->avail.idx = q->avail_idx;
	barrier();
}

static void kick(struct vdev *d, int qi) { wr(d, R_QUEUE_NOTIFY, (u32)qi); }

/* Wait for the next used element (at most `spins` polls when not 0); its length, or -1. */
static int wait_used(struct vdev *d, int qi, u32 spins)
{
	struct vq *q = d->q[qi];
	volatile u16 *idx = &q->used.idx;
	if (use_irq && d->irq) {
		cli();
		while (*idx == q->used_seen)
			{ sti_hlt(); cli(); }
		sti();
	} else {
		for (u32 i = 0; *idx == q->used_seen; i++)
			if (spins && i >= spins)
				return -1;
	}
	barrier();
	int len = (int)q->used.ring[q->used_seen % QSZ].len;
	q->used_seen++;
	completions++;
	return len;
}

/* ---- block ---- */

static u32 blk_request(struct vdev *d, u32 type, u32 sector, u8 *buf, u32 len)
{
	u32 *h = (u32 *)hdr;
	h[0] = type; h[1] = 0; h[2] = sector; h[3] = 0;
	status_byte = 0xff;
	u32 addr[3] = {(u32)hdr, (u32)buf, (u32)&status_byte};
	u32 lens[3] = {16, len, 1};
	u16 flags[3] = {0, type == 0 ? F_WRITE : 0, F_WRITE};
	if (len) {
		post(d, 0, 0, addr, lens, flags, 3);
	} else {
		u32 a2[2] = {addr[0], addr[2]}, l2[2] = {16, 1};
		u16 f2[2] = {0, F_WRITE};
		post(d, 0, 0, a2, l2, f2, 2);
	}
	kick(d, 0);
	wait_used(d, 0, 0);
	return status_byte;
}

static u32 fnv(const u8 *p, u32 n)
{
	u32 h = 0x811c9dc5;
	while (n--) { h ^= *p++; h *= 0x01000193; }
	return h;
}

static int blk_open(struct vdev *d)
{
	if (!find_device(2, d) || !dev_init(d, 1u << 5 | 1u << 9, 1)) {
		puts("blk missing\n");
		return 0;
	}
	return 1;
}

static void test_blk_read(void)
{
	struct vdev d;
	if (!blk_open(&d)) return;
	puts("blk capacity="); put_dec(mmio_read32(d.base + R_CONFIG));
	puts(" ro="); wr(&d, R_DEV_FEATURES_SEL, 0); put_dec((rd(&d, R_DEV_FEATURES) >> 5) & 1);
	puts("\n");
	u32 s = blk_request(&d, 0, 0, small, 512);
	puts("blk read status="); put_dec(s);
	puts(" sector0 fnv="); put_hex(fnv(small, 512)); puts("\n");
}

static void test_blk_write(void)
{
	struct vdev d;
	if (!blk_open(&d)) return;
	for (u32 i = 0; i < 512; i++) small[i] = (u8)(i * 7 + 3);
	u32 ws = blk_request(&d, 1, 2, small, 512);
	u32 fs = blk_request(&d, 4, 0, 0, 0);
	puts("blk write status="); put_dec(ws); puts(" flush status="); put_dec(fs); puts("\n");
	memset(small, 0, 512);
	blk_request(&d, 0, 2, small, 512);
	int ok = 1;
	for (u32 i = 0; i < 512; i++) if (small[i] != (u8)(i * 7 + 3)) ok = 0;
	puts(ok ? "blk readback ok\n" : "blk readback bad\n");
}

static u32 lcg = 12345;

static void bench(void)
{
	struct vdev d;
	if (!blk_open(&d)) return;
	u32 cap = mmio_read32(d.base + R_CONFIG);  /* sectors */
	u32 mb = opt_num("mb=", 64), rq = opt_num("rq=", 2000);
	static const struct { const char *name; u32 size; } seq[2] = {{"seq64k", 65536}, {"seq1m", 1 << 20}};
	for (int p = 0; p < 2; p++) {
		u32 n = (mb << 20) / seq[p].size, sector = 0, bad = 0;
		puts("T "); puts(seq[p].name); puts("\n");
		for (u32 i = 0; i < n; i++) {
			if (sector + seq[p].size / 512 > cap) sector = 0;
			bad += blk_request(&d, 0, sector, big, seq[p].size) != 0;
			sector += seq[p].size / 512;
		}
		puts("E "); puts(seq[p].name); puts(" n="); put_dec(n); puts(" bad="); put_dec(bad); puts("\n");
	}
	u32 bad = 0, blocks = cap / 8;
	puts("T rand4k\n");
	for (u32 i = 0; i < rq; i++) {
		lcg = lcg * 1103515245u + 12345u;
		bad += blk_request(&d, 0, ((lcg >> 8) % blocks) * 8, small, 4096) != 0;
	}
	puts("E rand4k n="); put_dec(rq); puts(" bad="); put_dec(bad); puts("\n");
}

/* A request whose data buffer is not guest RAM: the disk must mark itself DEVICE_NEEDS_RESET,
 * the rng must keep working, and a driver reset must bring the disk back. */
static void test_rng(void);

static void test_evil(void)
{
	struct vdev d;
	if (!blk_open(&d)) return;
	u32 *h = (u32 *)hdr;
	h[0] = 0; h[1] = 0; h[2] = 0; h[3] = 0;
	u32 addr[3] = {(u32)hdr, 0xfffff000, (u32)&status_byte}, lens[3] = {16, 512, 1};
	u16 flags[3] = {0, F_WRITE, F_WRITE};
	post(&d, 0, 0, addr, lens, flags, 3);
	kick(&d, 0);
	u32 st = 0;
	for (u32 i = 0; i < 5000000 && !((st = rd(&d, R_STATUS)) & 0x40); i++)
		pause();
	puts("evil blk status="); put_hex(st); puts("\n");
	test_rng();
	test_blk_read();  /* blk_open() resets the device first */
}

/* ---- rng ---- */

static void test_rng(void)
{
	struct vdev d;
	if (!find_device(4, &d) || !dev_init(&d, 0, 1)) { puts("rng missing\n"); return; }
	memset(small, 0, 64);
	u32 addr[1] = {(u32)small}, len[1] = {64};
	u16 flags[1] = {F_WRITE};
	post(&d, 0, 0, addr, len, flags, 1);
	kick(&d, 0);
	int got = wait_used(&d, 0, 0);
	u8 seen[256];
	memset(seen, 0, sizeof(seen));
	u32 distinct = 0;
	for (int i = 0; i < 64; i++) if (!seen[small[i]]++) distinct++;
	puts("rng got="); put_dec((u32)got); puts(" distinct="); put_dec(distinct); puts("\n");
}

/* ---- net ---- */

static void test_net(void)
{
	struct vdev d;
	if (!find_device(1, &d) || !dev_init(&d, 1u << 5 | 1u << 16, 2)) { puts("net missing\n"); return; }
	u8 mac[6];
	for (int i = 0; i < 6; i++) mac[i] = mmio_read8(d.base + R_CONFIG + (u32)i);
	/* Four 2 KiB receive buffers in `big`. */
	for (int i = 0; i < 4; i++) {
		u32 addr[1] = {(u32)big + (u32)i * 2048}, len[1] = {2048};
		u16 flags[1] = {F_WRITE};
		post(&d, 0, i, addr, len, flags, 1);
	}
	kick(&d, 0);
	u8 *f = small;
	memset(f, 0, 12 + 60);
	u8 *e = f + 12;
	for (int i = 0; i < 6; i++) { e[i] = 0xff; e[6 + i] = mac[i]; e[22 + i] = mac[i]; }
	static const u8 arp_head[8] = {0, 1, 8, 0, 6, 4, 0, 1};
	e[12] = 0x08; e[13] = 0x06;
	memcpy(e + 14, arp_head, 8);
	static const u8 me[4] = {192, 0, 2, 2}, router[4] = {192, 0, 2, 1};
	memcpy(e + 28, me, 4);
	memcpy(e + 38, router, 4);
	u32 addr[1] = {(u32)f}, len[1] = {12 + 60};
	u16 flags[1] = {0};
	post(&d, 1, 0, addr, len, flags, 1);
	kick(&d, 1);
	wait_used(&d, 1, 0);
	for (int tries = 0; tries < 8; tries++) {
		int n = wait_used(&d, 0, use_irq ? 0 : 20000000);
		if (n < 0) break;
		u8 *r = big + ((d.q[0]->used.ring[(u16)(d.q[0]->used_seen - 1) % QSZ].id) * 2048) + 12;
		if (r[12] == 0x08 && r[13] == 0x06 && r[21] == 2 && r[28] == 192 && r[29] == 0 &&
		    r[30] == 2 && r[31] == 1) {
			puts("net arp-reply ip=192.0.2.1 ok\n");
			return;
		}
	}
	puts("net arp-reply ip=192.0.2.1 none\n");
}

static void test_net_flood(void)
{
	struct vdev d;
	if (!find_device(1, &d) || !dev_init(&d, 1u << 5 | 1u << 16, 2)) { puts("net missing\n"); return; }
	u8 *f = big;  /* the 12-byte virtio-net header, then a broadcast frame of a local ethertype */
	memset(f, 0, 12 + 1514);
	u8 *e = f + 12;
	for (int i = 0; i < 6; i++) e[i] = 0xff;
	e[6] = 0x02; e[12] = 0x88; e[13] = 0xb5;
	u32 addr[1] = {(u32)f}, len[1] = {12 + 1514};
	u16 flags[1] = {0};
	for (int i = 0; i < QSZ; i++)
		post(&d, 1, i, addr, len, flags, 1);
	kick(&d, 1);
	puts("net flooding\n");
	struct vq *q = d.q[1];
	volatile u16 *used = &q->used.idx;
	for (;;) {
		while (*used != q->used_seen) {
			barrier();
			int id = (int)q->used.ring[q->used_seen % QSZ].id;
			q->used_seen++;
			post(&d, 1, id, addr, len, flags, 1);
		}
		kick(&d, 1);
		(void)rd(&d, R_STATUS);
	}
}

/* "slot N base=... magic=... version=... id=..." for every slot, to see what a VMM offers. */
static void probe(void)
{
	for (int i = 0; i < slots; i++) {
		u32 b = slot_base[i];
		puts("slot "); put_dec((u32)i); puts(" base="); put_hex(b);
		puts(" magic="); put_hex(mmio_read32(b + R_MAGIC));
		puts(" version="); put_dec(mmio_read32(b + R_VERSION));
		puts(" id="); put_dec(mmio_read32(b + R_DEVICE_ID)); puts("\n");
	}
}

int main(struct hvm_start_info *si)
{
	if (si->cmdline_paddr)
		cmdline = (const char *)(u32)si->cmdline_paddr;
	use_irq = opt_is("irq=", "1");
	if (use_irq) {
		idt_init();
		pic_init();
		lapic_enable();
	}
	find_slots();
	puts("virtio guest: "); put_dec((u32)slots); puts(" slots\n");
	if (opt_is("vt=", "blk-read")) test_blk_read();
	else if (opt_is("vt=", "blk-write")) test_blk_write();
	else if (opt_is("vt=", "rng")) test_rng();
	else if (opt_is("vt=", "net")) test_net();
	else if (opt_is("vt=", "net-flood")) test_net_flood();
	else if (opt_is("vt=", "bench")) bench();
	else if (opt_is("vt=", "probe")) probe();
	else if (opt_is("vt=", "evil")) test_evil();
	else puts("no vt= mode\n");
	if (use_irq) {
		/* irqfd injection can trail the used-ring update the guest already saw: give late
		 * interrupts a bounded moment so "irqs" counts them. */
		sti();
		for (u32 i = 0; i < 2000000 && irq_count < completions; i++)
			pause();
		cli();
	}
	puts("irqs "); put_dec(irq_count); puts(" completions "); put_dec(completions); puts("\n");
	return 0;
}
