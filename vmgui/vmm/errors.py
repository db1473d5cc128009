"""The VMM's user-facing error: one line that says what is wrong and, where there is one, the fix."""

from __future__ import annotations


class VmmError(Exception):
    """Raised for anything the user can fix (bad option, missing file, no /dev/kvm, image too big)
    and for a guest the VMM had to stop; the CLI prints str(e) as its single line of output."""

    def __init__(self, message: str, exit_status: int = 1) -> None:
        super().__init__(message)
        self.exit_status = exit_status


#: Exit statuses of `vmgui-vmm run`.
EXIT_OK = 0  # guest powered off, reset with --on-reboot stop, or QMP quit
EXIT_ERROR = 1  # the VM could not start or had to be stopped (message on stderr)
EXIT_USAGE = 2  # bad command line (argparse's convention)
