"""scripts/kernels.sh: the kernel set it names is the one libtorch runs in the command it starts
(what the claims are checked under to see other machines' floats on this one)."""
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "kernels.sh"
PROBE = ("import os, torch; print(torch.backends.cpu.get_cpu_capability(), "
         "os.environ.get('MKL_ENABLE_INSTRUCTIONS', '-'), os.environ.get('ONEDNN_MAX_CPU_ISA', '-'))")


def cpu_has(flag: str) -> bool:
    return flag in Path("/proc/cpuinfo").read_text().split()


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True)


@pytest.mark.parametrize("name, want", [
    ("default", "DEFAULT SSE4_2 SSE41"),
    ("avx2", "AVX2 AVX2 AVX2"),
    ("avx512", "AVX512 - -"),
])
def test_libtorch_runs_the_named_kernel_set(name, want):
    if name == "avx512" and not cpu_has("avx512f"):
        out = run(name, sys.executable, "-c", PROBE)
        assert out.returncode == 2 and "no AVX-512" in out.stderr, out
        return
    out = run(name, sys.executable, "-c", PROBE)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == want.split()


def test_an_unknown_kernel_set_is_refused_by_name():
    out = run("avx9000", "true")
    assert out.returncode == 2
    assert "unknown kernel set `avx9000`" in out.stderr


def test_the_command_s_exit_status_is_kept():
    assert run("default", "bash", "-c", "exit 7").returncode == 7
