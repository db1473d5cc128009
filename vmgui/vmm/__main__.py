"""`python -m vmgui.vmm` and the `vmgui-vmm` console script."""

from __future__ import annotations

import sys

from vmgui.vmm.cli import main as _main


def main() -> None:
    sys.exit(_main())


if __name__ == "__main__":
    main()
