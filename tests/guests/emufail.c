/* Jumps into the 32-bit MMIO hole: fetching instructions from non-RAM is an emulation failure
 * under every KVM, so the VMM must stop with KVM_EXIT_INTERNAL_ERROR and the guest RIP. */
#include "runtime.h"

int main(struct hvm_start_info *si)
{
	(void)si;
	puts("jumping\n");
	((void (*)(void))0xD8000000)();
	return 0;
}
