"""Where the dashboard reads from: command-line flags after ``--``, then environment variables,
then defaults relative to the working directory (the repository root)::

    streamlit run dashboard                                   # ./results.db, ./tasks.toml
    streamlit run dashboard -- --db postgresql+psycopg://me@host/poolrepro
    POOLREPRO_DB=sqlite:///out/results.db streamlit run dashboard

=================  ===================  ==========================================
flag               environment          default
=================  ===================  ==========================================
``--db``           ``$POOLREPRO_DB``    ``sqlite:///results.db``
``--tasks``        ``$POOLREPRO_TASKS`` ``tasks.toml``
``--optuna``       ``$POOLREPRO_OPTUNA`` ``sqlite:///optuna.db`` (Optuna RDB storage)
``--mlflow-ui``    ``$POOLREPRO_MLFLOW_UI`` ``http://127.0.0.1:5000`` (links to runs)
=================  ===================  ==========================================

Pure: no Streamlit import, so the parsing is unit-tested directly.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

DEFAULT_DB = "sqlite:///results.db"
DEFAULT_TASKS = "tasks.toml"
DEFAULT_OPTUNA = "sqlite:///optuna.db"
DEFAULT_MLFLOW_UI = "http://127.0.0.1:5000"


@dataclass(frozen=True)
class Settings:
    db: str = DEFAULT_DB
    tasks: str = DEFAULT_TASKS
    optuna: str = DEFAULT_OPTUNA
    mlflow_ui: str = DEFAULT_MLFLOW_UI


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="streamlit run dashboard --",
        description="Read-only dashboard over the poolrepro results database.",
        epilog="examples:\n  streamlit run dashboard\n"
               "  streamlit run dashboard -- --db sqlite:///out/results.db\n"
               "  POOLREPRO_DB=postgresql+psycopg://me@host/poolrepro streamlit run dashboard",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", help=f"results DB URL or SQLite path ($POOLREPRO_DB; {DEFAULT_DB})")
    ap.add_argument("--tasks", help=f"claims file ($POOLREPRO_TASKS; {DEFAULT_TASKS})")
    ap.add_argument("--optuna", help=f"Optuna storage URL ($POOLREPRO_OPTUNA; {DEFAULT_OPTUNA})")
    ap.add_argument("--mlflow-ui", help=f"MLflow UI address for run links "
                                        f"($POOLREPRO_MLFLOW_UI; {DEFAULT_MLFLOW_UI})")
    return ap


def from_args(argv: Sequence[str] = (), environ: Mapping[str, str] | None = None) -> Settings:
    """Flags win over environment variables, which win over the defaults. Unknown flags are
    ignored (Streamlit's own flags never reach here, but a stray one must not kill the app)."""
    env = os.environ if environ is None else environ
    args, _ = parser().parse_known_args(list(argv))

    def pick(flag: str | None, var: str, default: str) -> str:
        return flag or env.get(var) or default

    db = pick(args.db, "POOLREPRO_DB", DEFAULT_DB)
    if "://" not in db:  # a bare path means SQLite, as in the CLI
        db = f"sqlite:///{db}"
    optuna = pick(args.optuna, "POOLREPRO_OPTUNA", DEFAULT_OPTUNA)
    if "://" not in optuna:
        optuna = f"sqlite:///{optuna}"
    return Settings(db=db, tasks=pick(args.tasks, "POOLREPRO_TASKS", DEFAULT_TASKS),
                    optuna=optuna,
                    mlflow_ui=pick(args.mlflow_ui, "POOLREPRO_MLFLOW_UI",
                                   DEFAULT_MLFLOW_UI).rstrip("/"))
