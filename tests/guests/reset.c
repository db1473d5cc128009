/* Prints "resetting" and pulses the i8042 reset line (0xFE to port 0x64). */
#include "runtime.h"

int main(struct hvm_start_info *si)
{
	(void)si;
	puts("resetting\n");
	reset();
}
