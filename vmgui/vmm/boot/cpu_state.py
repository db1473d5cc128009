"""The vCPU state a loader asks for, as plain data the machine copies into KVM_SET_SREGS/REGS.

What each entry protocol requires (and what the loaders return):

- Linux 64-bit boot protocol (Documentation/arch/x86/boot.rst, "64-bit BOOT PROTOCOL"): long mode
  with paging on; the kernel, zero page and command line identity-mapped; a GDT holding 4 GiB flat
  __BOOT_CS (0x10, execute/read) and __BOOT_DS (0x18, read/write); CS = __BOOT_CS and DS, ES, SS =
  __BOOT_DS; interrupts off; %rsi = address of boot_params (the zero page). Entry = the address the
  protected-mode kernel was loaded at + 0x200.
- PVH (xen/include/public/arch-x86/hvm/start_info.h): 32-bit protected mode, paging off (CR0.PE
  only); CS a flat 32-bit execute/read segment, DS/ES/SS flat 32-bit read/write; TR a 32-bit TSS
  (base 0, limit 0x67); EFLAGS 0x2 (IF clear); %ebx = physical address of hvm_start_info; entry =
  the address in the XEN_ELFNOTE_PHYS32_ENTRY note.
- real16: the reset state (CS base 0xF0000 with IP 0xFFF0 style), for firmware; no loader here
  returns it yet.
"""

from __future__ import annotations

from vmgui.vmm.record import TYPE_CHECKING, field, record

if TYPE_CHECKING:  # not at run time: importing typing costs the VMM's start-up ~4 ms
    from typing import Literal

    Mode = Literal["long64", "protected32", "real16"]

# Control-register and EFER bits the loaders set.
CR0_PE = 1 << 0
CR0_ET = 1 << 4
CR0_PG = 1 << 31
CR4_PAE = 1 << 5
EFER_LME = 1 << 8
EFER_LMA = 1 << 10
RFLAGS_RESERVED = 1 << 1  # bit 1 always reads as one


@record(frozen=True)
class Segment:
    """A segment register's hidden part, field for field as in struct kvm_segment."""

    base: int = 0
    limit: int = 0xFFFF_FFFF
    selector: int = 0
    type: int = 0  # 4-bit descriptor type: 0xB code exec/read accessed, 0x3 data r/w accessed
    present: int = 1
    dpl: int = 0
    db: int = 0  # default operand size 32 bit (must be 0 for a 64-bit code segment)
    s: int = 1  # 1 = code/data, 0 = system (TSS)
    l: int = 0  # 64-bit code segment  # noqa: E741 -- the architectural name
    g: int = 1  # limit in 4 KiB units
    avl: int = 0
    unusable: int = 0


@record(frozen=True)
class DescriptorTable:
    base: int = 0
    limit: int = 0xFFFF


@record
class CpuState:
    """Everything the boot vCPU needs; registers not named here start as zero."""

    mode: Mode
    rip: int
    rsp: int = 0
    rflags: int = RFLAGS_RESERVED
    rsi: int = 0  # Linux: boot_params
    rbx: int = 0  # PVH: hvm_start_info
    rdi: int = 0
    rbp: int = 0
    cr0: int = 0
    cr3: int = 0
    cr4: int = 0
    efer: int = 0
    cs: Segment = field(default_factory=Segment)
    ds: Segment = field(default_factory=Segment)
    es: Segment = field(default_factory=Segment)
    fs: Segment = field(default_factory=Segment)
    gs: Segment = field(default_factory=Segment)
    ss: Segment = field(default_factory=Segment)
    tr: Segment = field(default_factory=Segment)
    gdt: DescriptorTable = field(default_factory=DescriptorTable)
    idt: DescriptorTable = field(default_factory=DescriptorTable)
