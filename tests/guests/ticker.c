/* Prints "tick <n>" forever with a port-0x80 delay loop between lines (for pause/resume and
 * QMP tests); a byte on the serial port makes it power off. */
#include "runtime.h"

int main(struct hvm_start_info *si)
{
	(void)si;
	for (u32 n = 0;; n++) {
		puts("tick "); put_dec(n); puts("\n");
		for (u32 i = 0; i < 2000; i++) {
			outb(0x80, 0);
			if (serial_getc_poll() >= 0)
				return 0;
		}
	}
}
