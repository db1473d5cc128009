/* Runtime for test guests; see runtime.h. */
#include "runtime.h"

struct hvm_start_info *start_info;
int main(struct hvm_start_info *si);

void *memset(void *d, int c, size_t n) { u8 *p = d; while (n--) *p++ = (u8)c; return d; }
void *memcpy(void *d, const void *s, size_t n) { u8 *p = d; const u8 *q = s; while (n--) *p++ = *q++; return d; }
void delay_io(u32 n) { while (n--) outb(0x80, 0); }

#define COM1 LAYOUT_SERIAL_COM1

void serial_init(void)
{
	outb(COM1 + 1, 0x00);  /* IER: no interrupts */
	outb(COM1 + 3, 0x80);  /* DLAB */
	outb(COM1 + 0, 0x01);  /* 115200 baud */
	outb(COM1 + 1, 0x00);
	outb(COM1 + 3, 0x03);  /* 8N1 */
	outb(COM1 + 2, 0xC7);  /* FIFO on, cleared */
	outb(COM1 + 4, 0x0B);  /* DTR RTS OUT2 */
}

void putc(char c)
{
	for (int i = 0; i < 100000 && !(inb(COM1 + 5) & 0x20); i++)
		;
	outb(COM1, (u8)c);
}

void puts(const char *s) { while (*s) putc(*s++); }

void put_hex(u32 v)
{
	puts("0x");
	for (int i = 28; i >= 0; i -= 4) putc("0123456789abcdef"[(v >> i) & 0xF]);
}

void put_dec(u32 v)
{
	char buf[11];
	int i = 10;
	buf[i] = 0;
	do { buf[--i] = (char)('0' + v % 10); v /= 10; } while (v);
	puts(buf + i);
}

int serial_getc_poll(void) { return (inb(COM1 + 5) & 1) ? inb(COM1) : -1; }

void reset(void)
{
	for (;;) {
		outb(LAYOUT_I8042_COMMAND, 0xFE);
		cli();
		hlt();
	}
}

void poweroff(void)
{
	/* Reduced-hardware ACPI sleep control: SLP_EN (bit 5) | SLP_TYP=5 (S5) << 2. */
	outb(LAYOUT_ACPI_SLEEP_CONTROL, (1 << 5) | (5 << 2));
	reset();  /* QEMU microvm has no such port; with -no-reboot its reset ends the VM */
}

void guest_entry(struct hvm_start_info *si)
{
	start_info = si;
	serial_init();
	main(si);
	poweroff();
}

/* --- interrupts --- */
struct idt_gate { u16 off_lo, sel; u8 zero, type; u16 off_hi; } __attribute__((packed));
static struct idt_gate idt[64] __attribute__((aligned(8)));
static isr_fn handlers[64];
extern const u32 isr_table[32];

void isr_set(u32 vector, isr_fn fn) { if (vector >= 32 && vector < 64) handlers[vector] = fn; }

void isr_dispatch(u32 vector)
{
	if (handlers[vector]) handlers[vector](vector);
}

void idt_init(void)
{
	for (u32 v = 32; v < 64; v++) {
		u32 a = isr_table[v - 32];
		idt[v] = (struct idt_gate){ (u16)a, 0x08, 0, 0x8E, (u16)(a >> 16) };
	}
	struct { u16 limit; u32 base; } __attribute__((packed)) d = { sizeof(idt) - 1, (u32)idt };
	__asm__ volatile("lidt %0" ::"m"(d));
}

void pic_init(void)
{
	outb(0x20, 0x11); outb(0xA0, 0x11);  /* ICW1: init, ICW4 needed */
	outb(0x21, 32);   outb(0xA1, 40);    /* ICW2: vector bases */
	outb(0x21, 4);    outb(0xA1, 2);     /* ICW3: cascade on IRQ2 */
	outb(0x21, 1);    outb(0xA1, 1);     /* ICW4: 8086 mode */
	outb(0x21, 0xFB); outb(0xA1, 0xFF);  /* mask all but the cascade */
}

void pic_unmask(u32 irq)
{
	u16 port = irq < 8 ? 0x21 : 0xA1;
	outb(port, inb(port) & (u8)~(1u << (irq & 7)));
}

void pic_eoi(u32 irq)
{
	if (irq >= 8) outb(0xA0, 0x20);
	outb(0x20, 0x20);
}

#define IOAPIC LAYOUT_IOAPIC_BASE
#define LAPIC LAYOUT_LAPIC_BASE

void ioapic_route(u32 irq, u32 vector, u32 apic_id)
{
	mmio_write32(IOAPIC, 0x10 + 2 * irq + 1);
	mmio_write32(IOAPIC + 0x10, apic_id << 24);
	mmio_write32(IOAPIC, 0x10 + 2 * irq);
	mmio_write32(IOAPIC + 0x10, vector);  /* fixed, physical, edge, high, unmasked */
}

void lapic_enable(void) { mmio_write32(LAPIC + 0xF0, 0x1FF); }  /* SVR: enable, spurious 0xFF */
void lapic_eoi(void) { mmio_write32(LAPIC + 0xB0, 0); }
u32 lapic_id(void) { return mmio_read32(LAPIC + 0x20) >> 24; }

/* --- SMP --- */
extern const u8 ap_trampoline_start[], ap_trampoline_end[];

__attribute__((weak)) void ap_main(u32 index) { (void)index; for (;;) { cli(); hlt(); } }

void ap_entry(u32 index) { ap_main(index); }

static void lapic_icr(u32 low)
{
	mmio_write32(LAPIC + 0x300, low);
	for (int i = 0; i < 100000 && (mmio_read32(LAPIC + 0x300) & (1 << 12)); i++)
		;
}

void ap_start(u32 count)
{
	(void)count;
	memcpy((void *)AP_TRAMPOLINE, ap_trampoline_start, (size_t)(ap_trampoline_end - ap_trampoline_start));
	lapic_enable();
	lapic_icr(0x000C4500);  /* INIT, all excluding self */
	delay_io(100);
	lapic_icr(0x000C4600 | (AP_TRAMPOLINE >> 12));  /* SIPI */
	delay_io(10);
	lapic_icr(0x000C4600 | (AP_TRAMPOLINE >> 12));
}
