"""Where a number came from: code version and environment, recorded with every run.

No hostname or user name is recorded. Standard library only (torch facts are added by the
worker, which has torch).
"""

from __future__ import annotations

import platform
import subprocess
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


@lru_cache(maxsize=1)
def git_state(repo: str = str(REPO)) -> dict[str, Any]:
    """``{"git_sha": ..., "git_dirty": bool}``; empty sha outside a git checkout."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", repo, *args], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()

    try:
        sha = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return {"git_sha": "", "git_dirty": False}
    return {"git_sha": sha, "git_dirty": dirty}


def environment() -> dict[str, Any]:
    """Python, OS and (when importable without cost) torch facts of this process."""
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
    }
    torch = sys.modules.get("torch")
    if torch is not None:
        info["torch"] = torch.__version__
        info["cuda"] = torch.version.cuda or ""
    return info


def device_name(device: str) -> str:
    """A human name of the device a run used (GPU model, or the CPU and its thread count)."""
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"CPU {cpu} ({torch.get_num_threads()} threads)"
