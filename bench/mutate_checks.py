"""Mutation run over the VMM's guest-memory and virtqueue checks: does the suite notice when any
single check is weakened?

Every `if COND: raise/return ...` in the target modules is a check, and so is a `raise` that ends
a function. Each becomes mutants, one at a time: the whole check removed (COND -> False, or the
final raise gone), one `or`-clause of it removed, and each comparison in it moved by one
(`>` <-> `>=`, `<` <-> `<=`). A mutant is tested in a scratch copy
of the repository (the worktree is never touched) with the tests that cover these modules; it is
"killed" when they fail, "survived" otherwise. Survivors are printed with the mutated line, to
be explained or killed by a better test.

Usage: .venv/bin/python -m bench.mutate_checks [--fuzz-only] [MODULE ...]
(default modules: memory.py, queue.py; --fuzz-only: judge by the device fuzzer alone).
Exit status 0 when every mutant was killed.
"""

from __future__ import annotations

import ast
import copy
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGETS = ("vmgui/vmm/memory.py", "vmgui/vmm/virtio/queue.py")
#: The tests that own these checks (unit tests, the device-level fuzzers).
TESTS = (
    "tests/vmm/test_memory.py",
    "tests/vmm/devices/test_framebuffer.py",
    "tests/vmm/virtio/test_queue.py",
    "tests/vmm/virtio/test_fuzz.py",
    "tests/vmm/virtio/test_mmio.py",
    "tests/vmm/virtio/test_block.py",
    "tests/vmm/virtio/test_rng.py",
)
FUZZ_TESTS = ("tests/vmm/virtio/test_fuzz.py",)
#: One mutant's test run; a mutant that makes the tests hang (e.g. a loop bound removed) is killed.
RUN_TIMEOUT = 600
#: The same fuzz cases for every mutant, so a verdict never depends on luck.
HYPOTHESIS_SEED = 0
_FLIPS: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Lt: ast.LtE, ast.LtE: ast.Lt,
}


def _decides(node: ast.If) -> bool:
    """A check: an `if` that refuses (raise) or accepts/returns early."""
    return any(isinstance(s, (ast.Raise, ast.Return)) for s in node.body)


def _mutations(test: ast.expr) -> Iterator[tuple[str, ast.expr]]:
    """(description, mutated condition) for one check's condition."""
    yield "check removed", ast.Constant(False)
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.Or) and len(test.values) > 1:
        for i, clause in enumerate(test.values):
            rest = [v for j, v in enumerate(test.values) if j != i]
            cond = rest[0] if len(rest) == 1 else ast.BoolOp(ast.Or(), rest)
            yield f"clause removed: {ast.unparse(clause)}", cond
    compares = [n for n in ast.walk(test) if isinstance(n, ast.Compare)]
    for ci, cmp_node in enumerate(compares):
        for oi, op in enumerate(cmp_node.ops):
            flipped = _FLIPS.get(type(op))
            if flipped is None:
                continue
            mutated = copy.deepcopy(test)
            target = [n for n in ast.walk(mutated) if isinstance(n, ast.Compare)][ci]
            target.ops[oi] = flipped()
            yield f"boundary moved: {ast.unparse(target)}", mutated


def mutants(source: str) -> Iterator[tuple[int, str, str]]:
    """(line, description, mutated module source) for every check in `source`."""
    tree = ast.parse(source)
    checks = [n for n in ast.walk(tree) if isinstance(n, ast.If) and _decides(n)]
    for node in checks:
        for what, cond in _mutations(node.test):
            original = node.test
            node.test = cond
            try:
                yield node.lineno, what, ast.unparse(tree)
            finally:
                node.test = original
    # A refusal that ends a function (after a loop found nothing acceptable) removed.
    for fn in [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]:
        last = fn.body[-1]
        if isinstance(last, ast.Raise):
            fn.body[-1] = ast.Pass()
            try:
                yield last.lineno, "final raise removed", ast.unparse(tree)
            finally:
                fn.body[-1] = last


def scratch_copy() -> Path:
    root = Path(tempfile.mkdtemp(prefix="vmgui-mutants-"))
    for part in ("vmgui", "tests", "pyproject.toml"):
        src = REPO / part
        if src.is_dir():
            shutil.copytree(src, root / part, ignore=shutil.ignore_patterns("__pycache__", ".cache"))
        else:
            shutil.copy2(src, root / part)
    return root


def run_tests(root: Path, tests: tuple[str, ...] = TESTS) -> bool:
    """True when the tests pass (the mutant survived)."""
    env = dict(os.environ, PYTHONPATH=str(root), PYTHONDONTWRITEBYTECODE="1")
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
           f"--hypothesis-seed={HYPOTHESIS_SEED}", *tests]
    try:
        r = subprocess.run(cmd, cwd=root, env=env, capture_output=True, timeout=RUN_TIMEOUT,
                           check=False)
    except subprocess.TimeoutExpired:
        return False
    return r.returncode == 0


def main() -> int:
    args = sys.argv[1:]
    tests = FUZZ_TESTS if "--fuzz-only" in args else TESTS
    targets = [a for a in args if a != "--fuzz-only"] or list(TARGETS)
    root = scratch_copy()
    survivors: list[str] = []
    total = 0
    start = time.monotonic()
    try:
        if not run_tests(root, tests):
            print("the tests fail without any mutation: fix that first")
            return 2
        for rel in targets:
            path = root / rel
            original = path.read_text()
            lines = original.splitlines()
            for lineno, what, mutated in mutants(original):
                total += 1
                path.write_text(mutated)
                survived = run_tests(root, tests)
                path.write_text(original)
                verdict = "SURVIVED" if survived else "killed"
                print(f"{verdict:8s} {rel}:{lineno}: {what}    | {lines[lineno - 1].strip()}",
                      flush=True)
                if survived:
                    survivors.append(f"{rel}:{lineno}: {what}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"mutate_checks: {total} mutants, {total - len(survivors)} killed, "
          f"{len(survivors)} survived, {time.monotonic() - start:.0f} s")
    for s in survivors:
        print(f"  survivor: {s}")
    return 1 if survivors else 0


if __name__ == "__main__":
    raise SystemExit(main())
