/* Wild I/O: reads and writes ports and MMIO addresses no device decodes. The VMM must answer
 * reads with all-ones, drop writes and keep running. Prints what it read, then "survived". */
#include "runtime.h"

int main(struct hvm_start_info *si)
{
	(void)si;
	u32 acc = 0xFFFFFFFF;
	for (u16 port = 0x200; port < 0x240; port++) {
		outb(port, 0x5A);
		acc &= inb(port);
	}
	outw(0x2F0, 0x1234);
	outl(0xCF8, 0x80000000);  /* PCI config address: there is no PCI */
	acc &= inl(0xCFC);
	acc &= inw(0x2F0);
	puts("ports "); put_hex(acc); puts("\n");
	u32 mm = 0xFFFFFFFF;
	mmio_write32(0xD8000000, 0xDEADBEEF);   /* 32-bit hole, no device */
	mm &= mmio_read32(0xD8000000);
	mmio_write8(0xFED00000, 1);              /* HPET: not emulated */
	mm &= mmio_read8(0xFED00000) | 0xFFFFFF00;
	mm &= mmio_read32(0xF0000000);
	puts("mmio "); put_hex(mm); puts("\n");
	puts("survived\n");
	return 0;
}
