/* PVH entry for test guests: 32-bit protected mode, paging off, %ebx = hvm_start_info.
 * Carries the Xen ELF note XEN_ELFNOTE_PHYS32_ENTRY (type 18) so both vmgui-vmm and
 * `qemu-system-x86_64 -M microvm -kernel guest.elf` find the entry point. */

	.section .note.Xen, "a", @note
	.balign 4
	.long 4			/* namesz: "Xen\0" */
	.long 4			/* descsz */
	.long 18		/* XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz "Xen"
	.balign 4
	.long _start

	.text
	.code32
	.globl _start
_start:
	cli
	lgdt gdt_desc
	ljmp $0x08, $1f
1:	movw $0x10, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	movw %ax, %fs
	movw %ax, %gs
	movl $boot_stack_top, %esp
	pushl %ebx
	call guest_entry		/* runtime.c: saves start_info, calls main(), powers off */
2:	hlt
	jmp 2b

/* Interrupt stubs for vectors 32..63: save registers, call isr_dispatch(vector), return.
 * No iret: KVM's instruction emulator (all of guest ring 0 on a kvm_pvm host) implements iret
 * in real mode only. Same privilege level, so the frame is just EIP, CS, EFLAGS: restore
 * EFLAGS with popf, then `ret $8` jumps to EIP and drops CS and EFLAGS. */
	.macro isr vec
	.globl isr_\vec
isr_\vec:
	pushal
	pushl $\vec
	call isr_dispatch
	addl $4, %esp
	popal
	pushl 8(%esp)
	popfl
	ret $8
	.endm
	.irp v, 32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,58,59,60,61,62,63
	isr \v
	.endr

	.section .rodata
	.globl isr_table
	.balign 4
isr_table:
	.irp v, 32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,58,59,60,61,62,63
	.long isr_\v
	.endr

/* AP trampoline: copied by ap_start() to AP_TRAMPOLINE (4 KiB aligned, below 1 MiB) and
 * entered in real mode after INIT-SIPI; switches to the flat protected-mode GDT and calls
 * ap_entry(apic id order) on its own stack. Position-dependent only on AP_TRAMPOLINE. */
	.globl ap_trampoline_start, ap_trampoline_end
	.code16
ap_trampoline_start:
	cli
	movw $(AP_TRAMPOLINE >> 4), %ax
	movw %ax, %ds
	lgdtl (ap_gdt_desc - ap_trampoline_start)
	movl %cr0, %eax
	orl $1, %eax
	movl %eax, %cr0
	.byte 0x66, 0xea		/* ljmpl $0x08, ap_pm (32-bit offset from 16-bit code) */
	.long AP_TRAMPOLINE + (ap_pm - ap_trampoline_start)
	.word 0x08
	.code32
ap_pm:
	movw $0x10, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	movw %ax, %fs
	movw %ax, %gs
	movl $1, %eax
	lock xaddl %eax, ap_next_stack	/* each AP takes the next stack slot */
	movl %eax, %ebx
	shll $12, %eax
	addl $ap_stacks, %eax
	movl %eax, %esp
	pushl %ebx
	movl $ap_entry, %eax
	call *%eax
3:	hlt
	jmp 3b
	.balign 8
ap_gdt:
	.quad 0
	.quad 0x00cf9a000000ffff	/* 0x08: code, flat 4 GiB */
	.quad 0x00cf92000000ffff	/* 0x10: data, flat 4 GiB */
ap_gdt_desc:
	.word ap_gdt_desc - ap_gdt - 1
	.long AP_TRAMPOLINE + (ap_gdt - ap_trampoline_start)
ap_trampoline_end:

	.data
	.balign 8
gdt:
	.quad 0
	.quad 0x00cf9a000000ffff
	.quad 0x00cf92000000ffff
gdt_desc:
	.word gdt_desc - gdt - 1
	.long gdt
	.globl ap_next_stack
ap_next_stack:
	.long 1

	.bss
	.balign 4096
	.space 16384
boot_stack_top:
	.globl ap_stacks
ap_stacks:
	.space 4096 * 8
