"""The README: its settings table is generated from hks.config, and its commands work as written."""

import os
import re
import subprocess
import sys
from pathlib import Path

from hks.config import markdown_table

ROOT = Path(__file__).resolve().parents[1]


def test_readme_settings_table_is_current():
    readme = (ROOT / "README.md").read_text()
    found = re.search(r"<!-- settings:begin -->\n(.*?)\n<!-- settings:end -->", readme, flags=re.S)
    assert found, "README.md lost its settings markers"
    assert found.group(1) == markdown_table(), (
        "README.md's settings table is stale: regenerate it from `python -m hks settings`")


def test_every_doc_the_readme_links_exists():
    readme = (ROOT / "README.md").read_text()
    for target in re.findall(r"\]\(((?:docs/)?[A-Za-z_]+\.md)\)", readme):
        assert (ROOT / target).is_file(), target


# --- the README's commands, run as written --------------------------------------------------------
#
# Every line of the README's ```bash blocks runs in a throw-away copy of the project, in order, inside
# the project's virtual environment (as after `source .venv/bin/activate`), on the mini CIFAR-100
# archive (HKS_DATA_DIR, HKS_DOWNLOAD=0), with HKS_EPOCHS=1 and HKS_DATASET_SIZE=200 in the environment.
# Only the budget shrinks: numbers after --max-evals and HKS_MAX_EVALS= become 1 (the budget may change
# between runs of one search; what changes scores, such as --epochs, may not, so it is left as written),
# and the `make` targets that take ARGS get a tiny budget there. Lines that cannot run here are checked
# as far as they can be, for the reason given in CHECK_ONLY.

COPIED = ("hks", "tests", "hyperopt_optimize.py", "Makefile", "local_infra", "delete_results.sh", "requirements.txt",
          "requirements-bo.txt", "pyproject.toml")
TINY = "--max-evals 1 --epochs 1 --dataset-size 200"
CHECK_ONLY = {
    "make install": ("make -n install", "installs packages from the network"),
    "make test": ("make -n test", "runs this very test suite"),
    "python -m hks report --watch": ("python -m hks report --help", "refreshes the report until interrupted"),
    "docker compose": (None, "needs Docker and its compose plugin"),
}


def readme_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    lines = [line for block in re.findall(r"```bash\n(.*?)```", readme, flags=re.S) for line in block.splitlines()]
    return [re.sub(r"\s+#.*$", "", line).strip() for line in lines if line.strip()]


def shrink_budget(command: str) -> str:
    command = re.sub(r"(--max-evals |HKS_MAX_EVALS=)\d+", r"\g<1>1", command)
    if command.startswith("make ") and command.split()[1] in ("demo", "run_hyperopt"):
        command += f' ARGS="{TINY}"'
    return command


def _project_copy(tmp_path: Path) -> Path:
    import shutil

    project = tmp_path / "project"
    project.mkdir()
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, project / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, project / name)
    (project / ".venv").symlink_to(Path(sys.prefix))  # the environment `make install` would have made
    return project


def _environment(project: Path, data_dir: Path) -> dict[str, str]:
    # A user's shell: no hks settings, and no variables of a `make test ARGS=...` around this run (make
    # passes them on to the README's own `make` commands).
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HKS_", "MONGO_DB_", "EXPERIMENT_NAME", "MAKE", "MFLAGS")) and k != "ARGS"}
    return {**env, "PATH": f"{project / '.venv' / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}",
            "VIRTUAL_ENV": str(project / ".venv"), "PYTHONPATH": str(project), "HKS_DATA_DIR": str(data_dir),
            "HKS_DOWNLOAD": "0", "HKS_MAX_EVALS": "1", "HKS_EPOCHS": "1", "HKS_DATASET_SIZE": "200",
            "HKS_THREADS": "1", "HKS_N_STARTUP_TRIALS": "1", "HKS_PLOTS": "0"}


def _run(command: str, project: Path, env: dict[str, str], timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", command], cwd=project, env=env, capture_output=True, text=True,
                          timeout=timeout)


def _check_only(command: str, project: Path, env: dict[str, str]) -> None:
    prefix = next(prefix for prefix in CHECK_ONLY if prefix in command)
    substitute, reason = CHECK_ONLY[prefix]
    if substitute is None:  # the compose file it names exists and defines the service it scales
        compose = project / re.search(r"-f (\S+)", command).group(1)
        service = re.search(r"--scale (\w+)=", command).group(1)
        assert re.search(rf"^  {service}:", compose.read_text(), flags=re.M), (command, reason)
        return
    done = _run(substitute, project, env)
    assert done.returncode == 0, f"{command!r} (checked as {substitute!r}: it {reason}) failed:\n{done.stderr}"


def test_the_readme_has_commands_to_run():
    commands = readme_commands()
    assert commands[:3] == ["make install", "source .venv/bin/activate", "python3 hyperopt_optimize.py"]
    assert any(c.startswith("python -m hks retrain-best") for c in commands)


def test_every_readme_command_works_as_written(tmp_path, cifar100_dir, cifar10_dir):
    project = _project_copy(tmp_path)
    data_dir = tmp_path / "ml_req"  # both mini archives, as ml_req/ holds both real ones
    data_dir.mkdir()
    for archive in (*cifar100_dir.glob("*.tar.gz"), *cifar10_dir.glob("*.tar.gz")):
        (data_dir / archive.name).symlink_to(archive)
    env = _environment(project, data_dir)
    ran = []
    for command in readme_commands():
        if any(prefix in command for prefix in CHECK_ONLY):
            _check_only(command, project, env)
            continue
        if command == "source .venv/bin/activate":  # what it does, the environment above already does
            done = _run(f"{command} && command -v python3", project, env)
            assert done.returncode == 0
            assert Path(done.stdout.strip()).parent.resolve() == (Path(sys.prefix) / "bin").resolve()
            continue
        if command == "make run_hyperopt_worker":  # a worker for the store of the `--workers 2` search above
            env_worker = {**env, "HKS_STORE": f"sqlite:///{project / 'results' / 'store.sqlite3'}",
                          "HKS_IDLE_TIMEOUT": "2"}
            done = _run(command, project, env_worker)
        else:
            done = _run(shrink_budget(command), project, env)
        assert done.returncode == 0, f"README command {command!r} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        assert "Traceback" not in done.stderr, (command, done.stderr[-3000:])
        if command == "python3 hyperopt_optimize.py" and command not in ran:  # trains with the default sampler
            assert "(--algo mtpe)" in done.stdout and "search done: 1 trial," in done.stdout, done.stdout[-2000:]
        ran.append(command)
    assert (project / "results" / "report.html").is_file()
    assert list((project / "results").glob("*_retrained.keras")) and (project / "results" / "confusion.png").is_file()
    assert len(ran) >= 10
