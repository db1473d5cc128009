/* Reads the CMOS RTC (waiting out update-in-progress) and prints "rtc YYYY-MM-DD HH:MM:SS". */
#include "runtime.h"

static u8 cmos(u8 reg) { outb(LAYOUT_RTC_INDEX, reg); return inb(LAYOUT_RTC_DATA); }
static u32 bcd(u8 v, int binary) { return binary ? v : (u32)((v >> 4) * 10 + (v & 15)); }
static void put2(u32 v) { putc((char)('0' + v / 10 % 10)); putc((char)('0' + v % 10)); }

int main(struct hvm_start_info *si)
{
	(void)si;
	while (cmos(0x0A) & 0x80)
		;
	int binary = cmos(0x0B) & 0x04;
	u32 sec = bcd(cmos(0x00), binary), min = bcd(cmos(0x02), binary), hour = bcd(cmos(0x04), binary);
	u32 day = bcd(cmos(0x07), binary), mon = bcd(cmos(0x08), binary), year = bcd(cmos(0x09), binary);
	u32 century = bcd(cmos(0x32), binary);
	puts("rtc ");
	put_dec(century * 100 + year); putc('-'); put2(mon); putc('-'); put2(day); putc(' ');
	put2(hour); putc(':'); put2(min); putc(':'); put2(sec); putc('\n');
	return 0;
}
