"""virtio-mmio devices (block, net, rng) for the built-in VMM.

Layout (rust-vmm style, one job per module): queue.py parses split virtqueues and checks every
guest value; mmio.py is the virtio-mmio v2 transport (a Bus device); block.py, net.py
(+ net_backends.py: passt, TAP) and rng.py are device models; iothread.py runs a device's
requests off the vCPU threads; attach.py wires devices into a VM (MMIO window, ioeventfd per
queue, irqfd); options.py turns --disk/--net/--mac/--rng into MachineConfig.virtio factories.

How the machine uses it (board.py): `add_virtio_devices(vm, mem, mmio_bus, cfg.virtio)` after
the legacy devices and before loading the kernel; its `.cmdline` (virtio_mmio.device=...) is
appended to the kernel command line (PVH: hvm_start_info), and the ACPI DSDT does not list the
devices again; `.close()` after the vCPUs stopped and before the VM fd closes. It raises
VmmError (one line) for an image that is missing, not a file or in use by another VM, or a network
backend that cannot start.
"""
