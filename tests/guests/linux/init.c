/* /init for the real-Linux boot test: prints a marker on the console, leaves the framebuffer
 * console two seconds to show the kernel's text, then powers off (ACPI S5 ends the VMM). */
#define SYS_write 1
#define SYS_nanosleep 35
#define SYS_reboot 169
#define MARKER "VMGUI-LINUX-BOOT-OK\n"

static long syscall3(long n, long a, long b, long c)
{
	long ret;
	__asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
	return ret;
}

void _start(void)
{
	struct { long sec, nsec; } two = { 2, 0 };
	syscall3(SYS_write, 1, (long)MARKER, sizeof(MARKER) - 1);
	syscall3(SYS_nanosleep, (long)&two, 0, 0);
	syscall3(SYS_reboot, 0xfee1dead, 672274793, 0x4321FEDC);  /* LINUX_REBOOT_CMD_POWER_OFF */
	for (;;)
		;
}
