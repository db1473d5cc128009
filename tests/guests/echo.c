/* Serial echo driven by RX interrupts: IRQ 4 through the IOAPIC to vector 36 on the BSP.
 * Prints "ready", then halts until the UART interrupts; echoes each byte as "<c>";
 * a 'q' powers off. Proves: IER RX interrupt, IOAPIC routing, LAPIC EOI, hlt wake-up. */
#include "runtime.h"

#define COM1 LAYOUT_SERIAL_COM1
#define VECTOR 36

static volatile int quit;
static volatile unsigned interrupts;

static void on_serial(u32 vector)
{
	(void)vector;
	interrupts++;
	int c;
	while ((c = serial_getc_poll()) >= 0) {
		putc('<'); putc((char)c); putc('>');
		if (c == 'q') quit = 1;
	}
	lapic_eoi();
}

int main(struct hvm_start_info *si)
{
	(void)si;
	idt_init();
	pic_init();  /* 8259s masked: the IOAPIC delivers */
	lapic_enable();
	isr_set(VECTOR, on_serial);
	ioapic_route(LAYOUT_SERIAL_COM1_IRQ, VECTOR, lapic_id());
	outb(COM1 + 1, 0x01);  /* IER: received data available */
	puts("ready\n");
	while (!quit)
		sti_hlt();
	cli();
	puts("\nirqs ");
	put_dec(interrupts);
	puts("\n");
	return 0;
}
