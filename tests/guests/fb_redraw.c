/* Whole-screen redraw loop for bench/bench_console.py: fills the framebuffer ("fb=WxH" on the
 * command line, default 1024x768) with one colour per frame, forever, and prints "frame N" on
 * COM1 every 64 frames. Frame n's colour is 0x00RRGGBB = n * 0x010305 (mod 2^24): a viewer that
 * reads a pixel knows which frame it shows. */
#include "runtime.h"

static u32 parse_num(const char **p)
{
	u32 v = 0;
	while (**p >= '0' && **p <= '9')
		v = v * 10 + (u32)(*(*p)++ - '0');
	return v;
}

int main(struct hvm_start_info *si)
{
	u32 w = 1024, h = 768;
	const char *cmd = (const char *)(u32)si->cmdline_paddr;
	for (; cmd && *cmd; cmd++) {
		if (cmd[0] == 'f' && cmd[1] == 'b' && cmd[2] == '=') {
			const char *p = cmd + 3;
			w = parse_num(&p);
			p++;
			h = parse_num(&p);
			break;
		}
	}
	puts("redraw ready\n");
	for (u32 n = 1;; n++) {
		u32 colour = (n * 0x010305u) & 0xffffff;
		u32 count = w * h;
		void *dst = (void *)LAYOUT_FRAMEBUFFER_BASE;
		__asm__ volatile("rep stosl" : "+D"(dst), "+c"(count) : "a"(colour) : "memory");
		if ((n & 63) == 0) {
			puts("frame ");
			put_dec(n);
			puts("\n");
		}
	}
	return 0;
}
