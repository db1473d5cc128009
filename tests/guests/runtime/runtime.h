/* Shared runtime for freestanding test guests (PVH ELF, 32-bit protected mode, no paging).
 *
 * A guest defines `int main(struct hvm_start_info *si)`; returning powers the VM off.
 * Addresses and ports come from vmgui/vmm/layout.py as LAYOUT_* macros (build.py passes them),
 * so guests and the VMM cannot disagree. Build with tests/guests/build.py. */
#ifndef GUEST_RUNTIME_H
#define GUEST_RUNTIME_H

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef unsigned int size_t;

struct hvm_start_info {
	u32 magic; /* 0x336ec578 */
	u32 version;
	u32 flags;
	u32 nr_modules;
	u64 modlist_paddr;
	u64 cmdline_paddr;
	u64 rsdp_paddr;
	u64 memmap_paddr;
	u32 memmap_entries;
	u32 reserved;
};

struct hvm_memmap_entry {
	u64 addr;
	u64 size;
	u32 type;
	u32 reserved;
};

#define HVM_START_MAGIC 0x336ec578

extern struct hvm_start_info *start_info;

/* --- port and memory-mapped I/O --- */
static inline void outb(u16 port, u8 v) { __asm__ volatile("outb %0, %1" ::"a"(v), "Nd"(port)); }
static inline void outw(u16 port, u16 v) { __asm__ volatile("outw %0, %1" ::"a"(v), "Nd"(port)); }
static inline void outl(u16 port, u32 v) { __asm__ volatile("outl %0, %1" ::"a"(v), "Nd"(port)); }
static inline u8 inb(u16 port) { u8 v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline u16 inw(u16 port) { u16 v; __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline u32 inl(u16 port) { u32 v; __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline u32 mmio_read32(u32 addr) { return *(volatile u32 *)addr; }
static inline void mmio_write32(u32 addr, u32 v) { *(volatile u32 *)addr = v; }
static inline u8 mmio_read8(u32 addr) { return *(volatile u8 *)addr; }
static inline void mmio_write8(u32 addr, u8 v) { *(volatile u8 *)addr = v; }
static inline void cli(void) { __asm__ volatile("cli" ::: "memory"); }
static inline void sti(void) { __asm__ volatile("sti" ::: "memory"); }
static inline void hlt(void) { __asm__ volatile("hlt" ::: "memory"); }
/* sti;hlt is atomic: an interrupt arriving between them still wakes the hlt. */
static inline void sti_hlt(void) { __asm__ volatile("sti; hlt" ::: "memory"); }
static inline void pause(void) { __asm__ volatile("pause" ::: "memory"); }

/* --- serial console (COM1, 8250) --- */
void serial_init(void);
void putc(char c);
void puts(const char *s);          /* no newline added */
void put_hex(u32 v);               /* 0x-prefixed, 8 digits */
void put_dec(u32 v);
int serial_getc_poll(void);        /* -1 when nothing is waiting */

/* --- power --- */
void poweroff(void) __attribute__((noreturn));  /* ACPI S5, then i8042 reset (QEMU), then halt */
void reset(void) __attribute__((noreturn));     /* i8042 pulse reset line (0xFE) */

/* --- interrupts: vectors 32..63 are routable; handlers run with interrupts off --- */
typedef void (*isr_fn)(u32 vector);
void idt_init(void);                            /* loads the IDT; call before sti() */
void isr_set(u32 vector, isr_fn fn);
void pic_init(void);                            /* 8259 pair remapped to vectors 32..47, all masked */
void pic_unmask(u32 irq);
void pic_eoi(u32 irq);
void ioapic_route(u32 irq, u32 vector, u32 apic_id);  /* edge, active high, fixed delivery */
void lapic_enable(void);
void lapic_eoi(void);
u32 lapic_id(void);

/* --- SMP: INIT-SIPI every other CPU into ap_main(index); returns how many were kicked --- */
void ap_main(u32 index);                        /* weak default halts; a guest may define it */
void ap_start(u32 count);

/* --- misc --- */
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
void delay_io(u32 n);                            /* n port-0x80 writes */

#endif
