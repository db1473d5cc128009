/* Two (or more) vCPUs: the BSP starts the APs with INIT-SIPI-SIPI through its LAPIC (the
 * trampoline in runtime/entry.S brings them to 32-bit mode); each AP reports its APIC ID.
 * Prints "cpu <apic id> up" per CPU, then "cpus <n>" and powers off. */
#include "runtime.h"

#define WANT_DEFAULT 2

static volatile u32 lock;
static volatile u32 up = 1;

static void take(void) { while (__atomic_exchange_n(&lock, 1, __ATOMIC_ACQUIRE)) pause(); }
static void give(void) { __atomic_store_n(&lock, 0, __ATOMIC_RELEASE); }

static void report(void)
{
	take();
	puts("cpu ");
	put_dec(lapic_id());
	puts(" up\n");
	give();
}

void ap_main(u32 index)
{
	(void)index;
	report();
	__atomic_add_fetch(&up, 1, __ATOMIC_SEQ_CST);
	for (;;) { cli(); hlt(); }
}

int main(struct hvm_start_info *si)
{
	(void)si;
	report();
	ap_start(WANT_DEFAULT - 1);
	for (u32 i = 0; i < 2000000 && up < WANT_DEFAULT; i++)
		pause();
	take();
	puts("cpus ");
	put_dec(up);
	puts("\n");
	give();
	return 0;
}
