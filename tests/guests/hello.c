/* Serial hello: prints a greeting and the start_info magic, then powers off. */
#include "runtime.h"

int main(struct hvm_start_info *si)
{
	puts("hello from guest\n");
	puts("magic ");
	put_hex(si->magic);
	puts("\n");
	return 0;
}
