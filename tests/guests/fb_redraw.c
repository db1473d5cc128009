/* Full-screen redraws for bench/bench_console.py. Command line: "fb=WxH delay=N frames=M"
 * (defaults 1024x768, 0, 0). Prints "redraw ready", then from ring 3 in 64-bit mode (native
 * speed even where ring 0 is emulated) fills the whole framebuffer with frame n's colour
 * (n * 0x010305) & 0xffffff for n = 1, 2, ..., spinning `delay` pause loops between frames;
 * after `frames` frames (0: never) the screen stays still. A viewer reading any pixel knows
 * which frame it shows. */
#include "runtime.h"

struct redraw_args {
	u32 stack_top, entry, fb, pixels, delay, frames;
};

void enter_long_mode(u32 pml4, struct redraw_args *args);
void user_loop(void);

static u64 pml4[512] __attribute__((aligned(4096)));
static u64 pdpt[512] __attribute__((aligned(4096)));
static u64 pd[4][512] __attribute__((aligned(4096)));
static u8 user_stack[4096] __attribute__((aligned(16)));
static u64 gdt[] __attribute__((aligned(8))) = {
	0,
	0x00AF9A000000FFFFULL, /* 0x08 kernel code, 64-bit */
	0x00CF92000000FFFFULL, /* 0x10 kernel data */
	0, 0,                  /* 0x18, 0x20: sysexit's 32-bit user selectors, unused */
	0x00AFFA000000FFFFULL, /* 0x28 user code, 64-bit, DPL 3 */
	0x00CFF2000000FFFFULL, /* 0x30 user data, DPL 3 */
};
static struct { u16 limit; u32 base; } __attribute__((packed)) gdt_ptr = { sizeof(gdt) - 1, 0 };
static struct redraw_args args;

static u32 number_after(const char *cmd, const char *key, u32 fallback)
{
	for (; cmd && *cmd; cmd++) {
		const char *k = key, *p = cmd;
		while (*k && *p == *k) {
			k++;
			p++;
		}
		if (*k)
			continue;
		u32 v = 0;
		while (*p >= '0' && *p <= '9')
			v = v * 10 + (u32)(*p++ - '0');
		return v;
	}
	return fallback;
}

int main(struct hvm_start_info *si)
{
	const char *cmd = (const char *)(u32)si->cmdline_paddr;
	u32 w = number_after(cmd, "fb=", 1024);
	u32 h = 768;
	for (const char *p = cmd; p && *p; p++)
		if (p[0] == 'x' && p[-1] >= '0' && p[-1] <= '9') {
			h = number_after(p, "x", 768);
			break;
		}
	/* Identity map 4 GiB with 2 MiB pages, user-accessible (the framebuffer is in the hole). */
	for (u32 i = 0; i < 4; i++) {
		pdpt[i] = (u32)pd[i] | 7;
		for (u32 j = 0; j < 512; j++)
			pd[i][j] = ((u64)(i * 512 + j) << 21) | 0x87;
	}
	pml4[0] = (u32)pdpt | 7;
	gdt_ptr.base = (u32)gdt;
	__asm__ volatile("lgdt %0" : : "m"(gdt_ptr));
	args.stack_top = (u32)(user_stack + sizeof(user_stack));
	args.entry = (u32)user_loop;
	args.fb = LAYOUT_FRAMEBUFFER_BASE;
	args.pixels = w * h;
	args.delay = number_after(cmd, "delay=", 0);
	args.frames = number_after(cmd, "frames=", 0);
	puts("redraw ready\n");
	enter_long_mode((u32)pml4, &args);
	return 0;
}
