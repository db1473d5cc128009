/* Port-I/O exit benchmark: "start", then PORTBENCH_COUNT writes to an unused port, "done". */
#include "runtime.h"

#ifndef PORTBENCH_COUNT
#define PORTBENCH_COUNT 100000
#endif
#define BENCH_PORT 0x5F0

int main(struct hvm_start_info *si)
{
	(void)si;
	puts("start\n");
	for (u32 i = 0; i < PORTBENCH_COUNT; i++)
		outb(BENCH_PORT, (u8)i);
	puts("done\n");
	return 0;
}
