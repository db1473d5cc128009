/* Framebuffer pattern for the QMP screendump / dirty-log tests.
 *
 * Reads "fb=WxH" from its command line (default 320x200), fills the x8r8g8b8 framebuffer at
 * LAYOUT_FRAMEBUFFER_BASE with fb_pixel(x, y) and prints "drawn WxH". Each key press (a make
 * code on the i8042) then runs the next step: the first writes exactly two pixels (see main)
 * and prints "poked"; the second powers off. tests/vmm/test_qmp_machine.py computes the same
 * values, so keep the formulas in sync. */
#include "runtime.h"

static u32 fb_pixel(u32 x, u32 y)
{
	return (((x * 7 + y * 3) & 0xff) << 16) | (((x ^ y) & 0xff) << 8) | ((x + y * 5) & 0xff);
}

static u32 parse_num(const char **p)
{
	u32 v = 0;
	while (**p >= '0' && **p <= '9')
		v = v * 10 + (u32)(*(*p)++ - '0');
	return v;
}

static void parse_mode(const char *cmd, u32 *w, u32 *h)
{
	for (; cmd && *cmd; cmd++) {
		if (cmd[0] == 'f' && cmd[1] == 'b' && cmd[2] == '=') {
			const char *p = cmd + 3;
			u32 a = parse_num(&p);
			if (*p++ != 'x')
				return;
			u32 b = parse_num(&p);
			if (a && b) {
				*w = a;
				*h = b;
			}
			return;
		}
	}
}

/* Wait for a key press: any make code (break codes and E0/E1 prefixes are skipped). */
static void wait_key(void)
{
	for (;;) {
		while (!(inb(LAYOUT_I8042_COMMAND) & 1))
			pause();
		if (inb(LAYOUT_I8042_DATA) < 0x80)
			return;
	}
}

int main(struct hvm_start_info *si)
{
	u32 w = 320, h = 200;
	parse_mode((const char *)(u32)si->cmdline_paddr, &w, &h);
	volatile u32 *fb = (volatile u32 *)LAYOUT_FRAMEBUFFER_BASE;
	for (u32 y = 0; y < h; y++)
		for (u32 x = 0; x < w; x++)
			fb[y * w + x] = fb_pixel(x, y);
	puts("drawn ");
	put_dec(w);
	puts("x");
	put_dec(h);
	puts("\n");
	wait_key();
	/* Two pixels, far apart: row 10 and row h/2 (the test turns them into pages). */
	fb[10 * w + 5] = 0x00ff0000;
	fb[(h / 2) * w + (w - 20)] = 0x0000ff00;
	puts("poked\n");
	wait_key();
	return 0;
}
