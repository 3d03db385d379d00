"""nox sessions: ``nox -s tests`` (default), ``lint``, ``validate``, ``reproduce-<paper>``,
``reproduce`` (all papers), ``bench``, ``regression``.

    nox -s tests                                   # the test suite
    nox -s reproduce-poolskip -- --tier mini       # one paper's claims at a tier
    nox -s reproduce -- --tier smoke --jobs 2      # every paper; extra args go to the CLI

All sessions share one virtualenv, ``.venv`` (or ``$POOLREPRO_VENV``): torch is 5 GB, installed
once and reused. The install step pins the matching pair torch==2.14.1 torchvision==0.29.1.
uv creates and fills it where present (pip's local wheel locations are handed to it),
venv + pip otherwise.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["tests"]

TORCH_PAIR = ("torch==2.14.1", "torchvision==0.29.1")
VENV = os.environ.get("POOLREPRO_VENV", ".venv")
PAPERS = ("poolskip", "softpool", "allconv", "s3net")
# Fashion-MNIST (mini tier data), PostgreSQL (real-DB tests), FFCV's build dependencies,
# Chromium and its driver (the dashboard's browser test; selenium never downloads a browser).
APT_PACKAGES = ("dataset-fashion-mnist", "postgresql", "pkg-config", "libopencv-dev",
                "libturbojpeg0-dev", "build-essential", "chromium", "chromium-driver")


def _uv_env() -> dict[str, str]:
    """Hand pip's configured local wheel locations (find-links, extra indexes) to uv."""
    env: dict[str, str] = {}
    try:
        cfg = subprocess.run(["python3", "-m", "pip", "config", "list"], capture_output=True,
                             text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return env
    for line in cfg.splitlines():
        key, _, value = line.partition("=")
        value = value.strip().strip("'\"")
        if key.endswith("find-links"):
            env["UV_FIND_LINKS"] = value.replace(" ", ",")
        elif key.endswith("extra-index-url"):
            env["UV_EXTRA_INDEX_URL"] = value
    return env


def ensure_system_packages(session: nox.Session) -> None:
    """Install the Debian packages the suite reads (Fashion-MNIST) when missing."""
    missing = [p for p in APT_PACKAGES
               if subprocess.run(["dpkg", "-s", p], capture_output=True).returncode != 0]
    if not missing or shutil.which("dpkg") is None:
        return
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    if sudo and shutil.which("sudo") is None:
        session.error(f"missing Debian packages {missing}: run "
                      f"`apt-get install {' '.join(missing)}` as root")
    session.run(*sudo, "apt-get", "update", "-qq", external=True)
    session.run(*sudo, "apt-get", "install", "-y", "-qq", *missing, external=True,
                env={"DEBIAN_FRONTEND": "noninteractive"})


def install(session: nox.Session, extras: str = "all") -> str:
    """Create (once) and update the shared project venv; return its python.

    The venv is rebuilt only when pyproject.toml or the pinned pair changes (a stamp file
    records what was installed), so a second session starts in seconds.
    """
    py = os.path.join(VENV, "bin", "python")
    uv = shutil.which("uv")
    if not os.path.exists(py):
        if uv:
            session.run(uv, "venv", "--python", "3.11", VENV, external=True)
        else:
            session.run("python3", "-m", "venv", VENV, external=True)
    with open("pyproject.toml", "rb") as f:
        stamp = hashlib.sha256(f.read() + repr((TORCH_PAIR, extras)).encode()).hexdigest()
    stamp_file = os.path.join(VENV, ".poolrepro-stamp")
    if os.path.exists(stamp_file):
        with open(stamp_file) as f:
            if f.read() == stamp:
                return py
    if uv:
        pip = [uv, "pip", "install", "--python", py]
        env = _uv_env()
    else:
        pip = [py, "-m", "pip", "install", "-q"]
        env = {}
        session.run(py, "-m", "pip", "install", "-q", "--upgrade", "pip", external=True)
    session.run(*pip, *TORCH_PAIR, external=True, env=env)
    session.run(*pip, "-e", f".[{extras}]", *TORCH_PAIR, external=True, env=env)
    with open(stamp_file, "w") as f:
        f.write(stamp)
    return py


def _session(name: str | None = None, **kw):
    # One shared venv managed by install(): nox itself creates none.
    return nox.session(name=name, venv_backend="none", **kw)


@_session()
def tests(session: nox.Session) -> None:
    """Run the test suite (pytest); extra args go to pytest."""
    ensure_system_packages(session)
    py = install(session)
    session.run(py, "-m", "pytest", "-q", *session.posargs, external=True)


@_session()
def lint(session: nox.Session) -> None:
    """ruff over the whole project."""
    py = install(session)
    session.run(py, "-m", "ruff", "check", ".", *session.posargs, external=True)


@_session()
def validate(session: nox.Session) -> None:
    """Validate tasks.toml (schema, names, argument signatures)."""
    py = install(session)
    session.run(py, "-m", "suite", "validate", *session.posargs, external=True)


def _reproduce(session: nox.Session, paper: str | None) -> None:
    ensure_system_packages(session)
    py = install(session)
    args = list(session.posargs)
    if "--tier" not in args:
        args = ["--tier", "mini", *args]
    if not {"--jobs", "--devices", "--backend"} & {a.split("=")[0] for a in args}:
        # on CPU one run per core (each gets one thread): the timings in the README are
        # measured that way; capped so that many cores do not mean many dataset copies
        args += ["--jobs", str(max(1, min(8, os.cpu_count() or 1)))]
    selector = ["--paper", paper] if paper else []
    if paper is not None:
        session.log(f"running the {paper} claims; `python -m suite ls claims --paper {paper}` "
                    f"lists them")
    session.run(py, "-m", "suite", "run", *selector, "--export", "results.jsonl", *args,
                success_codes=[0, 1], external=True)


for _paper in PAPERS:
    def _make(paper: str):
        def reproduce_paper(session: nox.Session) -> None:
            _reproduce(session, paper)

        reproduce_paper.__doc__ = (f"Run the {paper} claims (default --tier mini) and export "
                                   f"results.jsonl; args after -- go to `suite run`.")
        return reproduce_paper

    _session(name=f"reproduce-{_paper}")(_make(_paper))


@_session(name="reproduce")
def reproduce_all(session: nox.Session) -> None:
    """Run every paper's claims (default --tier mini); args after -- go to `suite run`."""
    _reproduce(session, None)


@_session()
def bench(session: nox.Session) -> None:
    """Scheduler overhead per run (cold vs warm workers), the kernel and loader benchmarks
    (ratios against a baseline measured in the same run), and the dashboard's overview
    render time over a synthetic 10,000-run database.

    Run it alone on the machine (``flock /work/cpu.lock nox -s bench`` here). Prints the
    verdicts, the loader metrics, and SoftPool's whole shape grid (ratio to avg and max
    pooling, speed-up over the plain formula, at 1 and 2 threads), saying where a shape still
    misses the target and why.
    """
    py = install(session)
    session.run(py, "-m", "suite.overhead", external=True)
    args = list(session.posargs) or ["--tier", "mini"]
    session.run(py, "-m", "suite", "run", "--tag", "bench", *args, success_codes=[0, 1],
                external=True)
    tier = args[args.index("--tier") + 1] if "--tier" in args else "mini"
    session.run(py, "-m", "suite", "report", "--tag", "bench", "--tier", tier, external=True)
    session.run(py, "-m", "suite", "report", "--tag", "loader", "--tier", tier, "--metrics",
                external=True)
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        runs = os.path.join(tmp, "runs.jsonl")
        session.run(py, "-m", "suite", "export", runs, external=True, silent=True)
        session.run(py, "-m", "tasks.kernel_bench", "--from-jsonl", runs, "--tier", tier,
                    success_codes=[0, 1], external=True)
    # the dashboard's overview over a synthetic 10,000-run database (target: < 2 s)
    session.run(py, "-m", "dashboard.bench", external=True)


@_session()
def regression(session: nox.Session) -> None:
    """Rerun the claims of regression/subset.toml with their committed seeds; fail when a
    verdict changes or a metric leaves its committed band (regression/reference.json)."""
    ensure_system_packages(session)
    py = install(session)
    session.run(py, "-m", "suite", "regression", "check", *session.posargs, external=True)
