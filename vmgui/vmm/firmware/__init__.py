"""Firmware boot: SeaBIOS (Debian's `bios-microvm.bin`) instead of a kernel loader.

The pieces a PCI-less SeaBIOS needs from the machine, one module each: the ROM image and its
reset-time copy (image.py, memory.py), fw_cfg with DMA (fw_cfg.py) and what it serves
(seabios.py: e820, ACPI through the table loader, boot order), the ramfb display (ramfb.py),
the legacy ports it and GRUB poll (legacy_ports.py) and keyboard input through SeaBIOS's serial
console until the OS takes the i8042 (keyboard.py). board.py assembles them into a Board.
"""
