/* Keyboard echo: polls the i8042 and prints every byte the guest reads from port 0x60 as
 * "sc 0x000000XX". It sets the controller's command byte itself (translation to set 1 on,
 * interrupts off), so it behaves the same under QEMU, whose i8042 powers on untranslated.
 * Powers off after the Esc break code (0x81). */
#include "runtime.h"

int main(struct hvm_start_info *si)
{
	(void)si;
	while (inb(LAYOUT_I8042_COMMAND) & 1) /* drop anything left from power-on */
		(void)inb(LAYOUT_I8042_DATA);
	outb(LAYOUT_I8042_COMMAND, 0x60); /* write command byte: */
	outb(LAYOUT_I8042_DATA, 0x44);    /* translate (bit 6) + system flag (bit 2), no IRQs */
	puts("kbd ready\n");
	for (;;) {
		while (!(inb(LAYOUT_I8042_COMMAND) & 1))
			pause();
		u8 b = inb(LAYOUT_I8042_DATA);
		puts("sc ");
		put_hex(b);
		puts("\n");
		if (b == 0x81)
			return 0;
	}
}
