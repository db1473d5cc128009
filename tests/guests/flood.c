/* Serial flood: prints numbered lines as fast as it can, forever; any input byte powers off.
 * For the tests of a serial reader that stops reading (the guest must never notice). */
#include "runtime.h"

int main(struct hvm_start_info *si)
{
	(void)si;
	for (u32 n = 0;; n++) {
		puts("flood "); put_dec(n); puts("\n");
		if (serial_getc_poll() >= 0)
			return 0;
	}
}
