"""vmgui: a desktop virtual machine manager (libvirt hosts and a built-in KVM VMM)."""

__version__ = "0.1.0"
