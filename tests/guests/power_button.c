/* Power button: polls the ACPI generic event device's event register (read clears it) and,
 * when the power-button bit is set, prints "power button" and powers off through the ACPI
 * sleep-control port -- what a Linux guest does on the GED interrupt, without an AML VM. */
#include "runtime.h"

#define GED_EVENT_POWER_BUTTON 1u

int main(struct hvm_start_info *si)
{
	(void)si;
	puts("waiting for power button\n");
	for (;;) {
		if (mmio_read32(LAYOUT_ACPI_GED_BASE) & GED_EVENT_POWER_BUTTON)
			break;
		for (volatile u32 i = 0; i < 2000; i++)
			;
	}
	puts("power button\n");
	return 0;
}
