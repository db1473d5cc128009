"""The built-in backend: VMs of this computer, each run by its own `vmgui-vmm` process."""

from vmgui.backends.builtin.backend import BuiltinBackend

__all__ = ["BuiltinBackend"]
