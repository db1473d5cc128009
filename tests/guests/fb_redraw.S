/* 64-bit part of fb_redraw.c: long mode entry, the drop to ring 3 and the ring-3 drawing loop.
 * Ring 0 is emulated on some KVM hosts (kvm_pvm), ring 3 under paging runs natively, so the
 * drawing runs in 64-bit user mode. */
	.text
	.code32
	.globl enter_long_mode
/* enter_long_mode(u32 pml4, struct redraw_args *args): never returns. */
enter_long_mode:
	movl 4(%esp), %eax
	movl 8(%esp), %esi		/* args stay in %esi across the switch */
	movl %eax, %cr3
	movl %cr4, %eax
	orl $0x20, %eax			/* PAE */
	movl %eax, %cr4
	movl $0xC0000080, %ecx		/* EFER */
	rdmsr
	orl $0x100, %eax		/* LME */
	wrmsr
	movl %cr0, %eax
	orl $0x80000000, %eax		/* PG: long mode active (compatibility) */
	movl %eax, %cr0
	ljmp $0x08, $long_entry

	.code64
long_entry:
	movw $0x10, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	movl $0x174, %ecx		/* IA32_SYSENTER_CS: sysexit derives the user selectors */
	movl $0x08, %eax
	xorl %edx, %edx
	wrmsr
	pushfq
	orq $0x3000, (%rsp)		/* IOPL 3: ring 3 may write the serial port */
	popfq
	movl 0(%rsi), %ecx		/* user stack top */
	movl 4(%rsi), %edx		/* user entry */
	movq %rsi, %rdi			/* args for the user loop */
	.byte 0x48, 0x0f, 0x35		/* sysexitq: CS = 0x28|3, SS = 0x30|3, RIP = RDX, RSP = RCX */

/* Ring 3, 64-bit. %rdi = args: [8] fb base, [12] pixels, [16] delay loops, [20] frames (0: for
 * ever). Frame n (from 1) fills the screen with (n * 0x010305) & 0xffffff. */
	.globl user_loop
user_loop:
	movq %rdi, %rbx
	xorl %r8d, %r8d			/* n */
1:	incl %r8d
	imull $0x010305, %r8d, %eax
	andl $0xffffff, %eax
	movl 8(%rbx), %edi
	movl 12(%rbx), %ecx
	cld
	rep stosl
	movl 16(%rbx), %ecx
2:	testl %ecx, %ecx
	jz 3f
	pause
	decl %ecx
	jmp 2b
3:	movl 20(%rbx), %ecx
	testl %ecx, %ecx
	jz 1b
	cmpl %ecx, %r8d
	jb 1b
4:	pause				/* all frames drawn: a still screen */
	jmp 4b
	.code32
