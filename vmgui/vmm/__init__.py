"""The built-in KVM virtual machine monitor. Imports nothing from Qt or any vmgui layer above."""
