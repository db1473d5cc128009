"""/dev/kvm: can this user open it, what does it support, and if not, the exact fix.

`diagnose` is a pure function of what was observed (device access, its owner group and mode,
the user's groups, the CPU and module facts), so every branch is testable without root.
"""

from __future__ import annotations

import errno
import grp
import os
import pwd
import stat
from dataclasses import dataclass

from vmgui.model.host import HostCpu, KvmDevice, KvmModule
from vmgui.vmm import kvm as k

#: KVM_CHECK_EXTENSION capabilities shown to the user, by the name used in JSON output.
CAPABILITIES: dict[str, int] = {
    "irqchip": k.KVM_CAP_IRQCHIP,
    "pit2": k.KVM_CAP_PIT2,
    "irqfd": k.KVM_CAP_IRQFD,
    "ioeventfd": k.KVM_CAP_IOEVENTFD,
    "irq_routing": k.KVM_CAP_IRQ_ROUTING,
    "user_memory": k.KVM_CAP_USER_MEMORY,
    "readonly_mem": k.KVM_CAP_READONLY_MEM,
    "manual_dirty_log_protect": k.KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
    "dirty_log_ring": k.KVM_CAP_DIRTY_LOG_RING,
    "immediate_exit": k.KVM_CAP_IMMEDIATE_EXIT,
    "set_tss_addr": k.KVM_CAP_SET_TSS_ADDR,
    "set_identity_map_addr": k.KVM_CAP_SET_IDENTITY_MAP_ADDR,
    "tsc_deadline_timer": k.KVM_CAP_TSC_DEADLINE_TIMER,
    "x2apic_api": k.KVM_CAP_X2APIC_API,
    "nested_state": k.KVM_CAP_NESTED_STATE,
    "nr_vcpus": k.KVM_CAP_NR_VCPUS,
    "max_vcpus": k.KVM_CAP_MAX_VCPUS,
    "nr_memslots": k.KVM_CAP_NR_MEMSLOTS,
}
#: What the built-in VMM cannot do without (a missing one is reported as a problem).
REQUIRED_CAPABILITIES = ("user_memory", "irqchip", "irqfd", "ioeventfd", "immediate_exit")

_MODULE_FOR_EXTENSION = {"vmx": "kvm_intel", "svm": "kvm_amd"}
_EXTENSION_NAME = {"vmx": "VT-x", "svm": "AMD-V (SVM)"}


@dataclass(frozen=True)
class DeviceAccess:
    """What opening the device node showed."""

    path: str
    present: bool
    readable: bool = False
    writable: bool = False
    open_errno: int = 0  # 0 when O_RDWR open succeeded
    group: str = ""  # owner group name (or gid as text)
    mode: int = 0  # permission bits


@dataclass(frozen=True)
class UserGroups:
    """The user's groups: active in this session vs. configured in /etc/group."""

    user: str
    active: frozenset[str]
    configured: frozenset[str]


def observe_device(path: str) -> tuple[DeviceAccess, int]:
    """Stat and open `path`; returns the observation and an open fd (or -1)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return DeviceAccess(path, present=False), -1
    except OSError as e:
        return DeviceAccess(path, present=True, open_errno=e.errno or errno.EIO), -1
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = str(st.st_gid)
    fd, err = -1, 0
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError as e:
        err = e.errno or errno.EIO
    access = DeviceAccess(
        path=path,
        present=True,
        readable=os.access(path, os.R_OK),
        writable=os.access(path, os.W_OK),
        open_errno=err,
        group=group,
        mode=stat.S_IMODE(st.st_mode),
    )
    return access, fd


def current_user_groups() -> UserGroups:
    """Group names active in this process and those /etc/group gives the user."""
    uid = os.getuid()
    try:
        pw = pwd.getpwuid(uid)
        user, primary = pw.pw_name, pw.pw_gid
    except KeyError:
        user, primary = str(uid), os.getgid()

    def names(gids: set[int]) -> frozenset[str]:
        out = set()
        for gid in gids:
            try:
                out.add(grp.getgrgid(gid).gr_name)
            except KeyError:
                out.add(str(gid))
        return frozenset(out)

    active = names(set(os.getgroups()) | {os.getegid()})
    configured = {g.gr_name for g in grp.getgrall() if user in g.gr_mem} | names({primary})
    return UserGroups(user, active, frozenset(configured))


def diagnose(
    access: DeviceAccess, cpu: HostCpu, module: KvmModule, groups: UserGroups
) -> tuple[str, str]:
    """(problem, fix): one line each, both "" when the device opened."""
    path = access.path
    ext = cpu.virt_extension
    if not access.present:
        if cpu.container:
            return (
                f"{path} does not exist inside this {cpu.container} container",
                f"start the container with the device passed in (e.g. --device {path})",
            )
        if module.name:
            return (
                f"{path} does not exist although module {module.name} is loaded",
                f"reload it (sudo modprobe -r {module.name} && sudo modprobe {module.name}) "
                "and check `sudo dmesg | grep -i kvm` for the reason",
            )
        if ext:
            mod = _MODULE_FOR_EXTENSION[ext]
            return (
                f"{path} does not exist: the {mod} module is not loaded",
                f"sudo modprobe {mod} (if it reports 'disabled by bios', enable "
                f"{_EXTENSION_NAME[ext]} in the firmware setup)",
            )
        if cpu.hypervisor_flag or cpu.hypervisor:
            under = f" ({cpu.hypervisor})" if cpu.hypervisor else ""
            return (
                f"{path} does not exist: this computer is a virtual machine{under} whose CPU "
                "shows no VT-x/AMD-V",
                "enable nested virtualization for this VM in the outer hypervisor, then restart it",
            )
        return (
            f"{path} does not exist: the CPU shows no VT-x/AMD-V",
            "enable VT-x (Intel) or AMD-V/SVM (AMD) in the firmware (BIOS/UEFI) setup, "
            "then sudo modprobe kvm_intel or kvm_amd",
        )
    if access.open_errno == 0:
        return "", ""
    if access.open_errno in (errno.EACCES, errno.EPERM):
        return _permission_fix(access, groups)
    if access.open_errno in (errno.ENXIO, errno.ENODEV):
        mod = module.name or _MODULE_FOR_EXTENSION.get(ext, "kvm_intel or kvm_amd")
        return (
            f"{path} exists but no driver answers it",
            f"sudo modprobe {mod}",
        )
    return f"cannot open {path}: {os.strerror(access.open_errno)}", ""


def _permission_fix(access: DeviceAccess, groups: UserGroups) -> tuple[str, str]:
    path, group = access.path, access.group
    problem = f"permission denied opening {path} (owner group '{group}', mode {access.mode:04o})"
    group_rw = access.mode & 0o060 == 0o060
    if group_rw and group in groups.active:
        return problem, (
            "the permissions allow it, so a security policy or the container's device rules "
            f"block it: check SELinux/AppArmor or start the container with --device {path}"
        )
    if group_rw and group in groups.configured:
        return problem, (
            f"log out and log in again (or run `newgrp {group}`): you were added to group "
            f"'{group}' after this session started"
        )
    if group_rw and group != "root":
        return problem, f"sudo usermod -aG {group} $USER, then log out and log in again"
    return problem, (
        f"sudo chgrp kvm {path} && sudo chmod 0660 {path} (udev's kvm rule normally does this), "
        "then sudo usermod -aG kvm $USER and log in again"
    )


def query_capabilities(fd: int) -> tuple[int, dict[str, int]]:
    """KVM API version and the CAPABILITIES values, through the VMM's KVM layer."""
    version = k.ioctl_int(fd, k.KVM_GET_API_VERSION)
    caps: dict[str, int] = {}
    for name, cap in CAPABILITIES.items():
        try:
            caps[name] = k.ioctl_int(fd, k.KVM_CHECK_EXTENSION, cap)
        except k.KvmError:
            caps[name] = 0
    return version, caps


def check_kvm(
    cpu: HostCpu,
    module: KvmModule,
    path: str = "/dev/kvm",
    groups: UserGroups | None = None,
) -> KvmDevice:
    """Everything about `path` for this user, with the fix when it cannot be used."""
    access, fd = observe_device(path)
    api_version: int | None = None
    caps: dict[str, int] = {}
    problem, fix = diagnose(access, cpu, module, groups or current_user_groups())
    if fd >= 0:
        try:
            api_version, caps = query_capabilities(fd)
        except k.KvmError as e:
            problem, fix = f"{path} is not a KVM device ({e})", ""
        finally:
            os.close(fd)
    if not problem and api_version is not None and api_version != k.KVM_API_VERSION:
        problem = f"KVM API version {api_version} is not the stable version {k.KVM_API_VERSION}"
        fix = "update the kernel"
    if not problem:
        missing = [c for c in REQUIRED_CAPABILITIES if not caps.get(c)]
        if missing:
            problem = f"{path} lacks KVM features the built-in VMM needs: {', '.join(missing)}"
            fix = "use a newer kernel, or run VMs through libvirt instead"
    return KvmDevice(
        path=path,
        present=access.present,
        readable=access.readable,
        writable=access.writable,
        opened=fd >= 0,
        api_version=api_version,
        capabilities=caps,
        problem=problem,
        fix=fix,
    )
