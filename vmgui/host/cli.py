"""`vmgui host-check [--json] [--connect URI]...`: can this computer run VMs, and how fast?

Exit status: 0 when VMs can run at all (even if emulated and slow), 1 when they cannot (no
/dev/kvm, or no permission to use it) -- the reason is printed, 2 for bad arguments.

JSON output (`--json`), stable keys (`schema` changes only if a key changes meaning or goes):

| key | type | meaning |
|---|---|---|
| `schema` | int | format version, currently 1 |
| `verdict` | string | `hardware-assisted`, `emulated`, `unknown-speed` or `unavailable` |
| `can_run_vms` | bool | false only for `unavailable` (same as exit status 1) |
| `headline` | string | one sentence, verdict first |
| `reason` | string | the evidence (measured speeds, or the /dev/kvm problem) |
| `advice` | list of strings | what to do, most useful first |
| `cpu.vendor`, `cpu.model` | string or null | from /proc/cpuinfo |
| `cpu.logical_cpus` | int | |
| `cpu.virt_extension` | `vmx`, `svm` or null | VT-x / AMD-V flag visible to this OS |
| `cpu.hypervisor_flag` | bool | the CPU says we are a guest ourselves |
| `cpu.hypervisor` | string or null | which one (systemd-detect-virt names: `kvm`, `vmware`, ...) |
| `cpu.container` | string or null | container runtime (`docker`, `lxc`, ...) |
| `kvm.device` | string | path checked (normally `/dev/kvm`) |
| `kvm.present`, `kvm.readable`, `kvm.writable`, `kvm.usable` | bool | usable = opened read/write and has what the VMM needs |
| `kvm.problem`, `kvm.fix` | string or null | one line each when not usable |
| `kvm.api_version` | int or null | KVM_GET_API_VERSION (12) |
| `kvm.module` | string or null | `kvm_intel`, `kvm_amd`, or another provider such as `kvm_pvm` |
| `kvm.nested` | bool or null | kvm_intel/kvm_amd `nested` parameter |
| `kvm.capabilities` | object name -> int | KVM_CHECK_EXTENSION: `irqchip`, `pit2`, `irqfd`, `ioeventfd`, `irq_routing`, `user_memory`, `readonly_mem`, `manual_dirty_log_protect`, `dirty_log_ring`, `immediate_exit`, `set_tss_addr`, `set_identity_map_addr`, `tsc_deadline_timer`, `x2apic_api`, `nested_state`, `nr_vcpus`, `max_vcpus`, `nr_memslots` (0 = unsupported) |
| `speed` | object or null | null when /dev/kvm is not usable |
| `speed.host_instructions_per_second` | int or null | the loop run natively |
| `speed.ring0`, `speed.ring3` | object or null | guest kernel-mode / user-mode run |
| `speed.ringN.instructions_per_second` | int | |
| `speed.ringN.ratio_to_host` | float or null | 1.0 = native speed |
| `speed.ringN.iterations`, `speed.ringN.seconds` | int, float | raw measurement |
| `speed.error` | string or null | why a measurement is missing |
| `connections[]` | list | one per `--connect URI` |
| `connections[].uri`, `.ok`, `.error` | string, bool, string or null | |
| `connections[].domain_types` | list of strings | `kvm` (hardware-assisted), `qemu` (TCG) |
| `connections[].kvm` | bool | `kvm` is among them |
| `connections[].arch`, `.emulator`, `.max_vcpus` | string, string, int | |
| `connections[].machines` | list of strings | aliases (`pc`, `q35`) first, then newest first |
| `connections[].firmware` | list of strings | `bios`, `efi` and firmware image paths |
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable

from vmgui.host.probe import CapsFetcher, probe_host_async
from vmgui.host.report import format_text, to_json
from vmgui.model.host import HostStatus

#: Checks a --connect URI before anything connects: returns it cleaned, or raises ValueError
#: with a sentence. The app passes the backends' rule (host/ sits below backends/).
UriCheck = Callable[[str], str]


def _parser(check_uri: UriCheck | None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="vmgui host-check",
        description="Can this computer run virtual machines, and how fast? (measured)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output (stable keys)")

    def uri(text: str) -> str:
        if check_uri is None:
            raise argparse.ArgumentTypeError("--connect needs the full app: run `vmgui host-check`")
        try:
            return check_uri(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    p.add_argument(
        "--connect",
        type=uri,
        metavar="URI",
        action="append",
        default=[],
        help="also report a libvirt connection's domain capabilities (repeatable)",
    )
    p.add_argument("--device", default="/dev/kvm", help=argparse.SUPPRESS)
    p.add_argument("--no-measure", action="store_true", help="skip the speed measurement")
    return p


def run(
    device: str, connections: list[str], measure: bool, fetch: CapsFetcher | None = None
) -> HostStatus:
    return asyncio.run(probe_host_async(device, connections, fetch, measure))


def main(
    argv: list[str], fetch: CapsFetcher | None = None, check_uri: UriCheck | None = None
) -> int:
    """`fetch` reads a --connect URI's capabilities and `check_uri` vets it (both from the app:
    without them only this computer is checked)."""
    args = _parser(check_uri).parse_args(argv)
    status = run(args.device, args.connect, not args.no_measure, fetch)
    if args.json:
        json.dump(to_json(status), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(format_text(status))
    return 0 if status.can_run_vms else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
