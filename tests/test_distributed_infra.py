"""local_infra/: the compose files describe the topology the end-to-end tests run with plain
processes (no Docker engine here), and every variable they use is documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from hks.config import resolve
from hks.store import store_url

INFRA = Path(__file__).resolve().parents[1] / "local_infra"
COMPOSE_FILES = ["docker-compose.yml", "docker-compose.postgres.yml"]


def _compose(name: str) -> dict:
    return yaml.safe_load((INFRA / name).read_text())


def _environment(service: dict, env_file: dict[str, str]) -> dict[str, str]:
    """The service's environment with ${VAR:-default} filled in as compose would from .env."""
    def fill(text: str) -> str:
        return re.sub(r"\$\{(\w+)(?::[-?]([^}]*))?\}", lambda m: env_file.get(m.group(1), m.group(2) or ""), text)

    return {key: fill(str(value)) for key, value in service["environment"].items()}


def _env_example() -> dict[str, str]:
    lines = (INFRA / ".env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


@pytest.mark.parametrize("name, database", [("docker-compose.yml", "hks_mongo_db"),
                                            ("docker-compose.postgres.yml", "hks_postgres_db")])
def test_compose_has_a_database_a_master_and_scalable_workers(name, database):
    compose = _compose(name)
    services = compose["services"]
    assert set(services) == {database, "hks_hyperopt", "hks_hyperopt_worker"}
    db = services[database]
    assert re.search(r":\d+\.\d+(\.\d+)?$", db["image"]), "the database image must be pinned to a version"
    assert "ports" not in db, "the database must not be published by default"
    assert db["healthcheck"]["test"]
    volume = db["volumes"][0].split(":")[0]
    assert volume in compose["volumes"], "database files must live on a named volume (kept by `down`)"
    worker, master = services["hks_hyperopt_worker"], services["hks_hyperopt"]
    assert "container_name" not in worker, "a container name would prevent --scale"
    assert worker["command"][-2:] == ["hks", "worker"] and master["command"][-1] == "hyperopt_optimize.py"
    for service in (worker, master):
        assert service["depends_on"][database]["condition"] == "service_healthy"
        assert "hks_results:/data/results" in service["volumes"]
        assert service["build"]["dockerfile"] == "local_infra/Dockerfile"


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_the_containers_settings_name_the_database_service_and_get_the_password_as_a_secret_file(name):
    compose = _compose(name)
    services, env = compose["services"], _env_example()
    [secret] = compose["secrets"]
    password_variable = compose["secrets"][secret]["environment"]
    assert password_variable in env and "PASSWORD" in password_variable
    for service_name in ("hks_hyperopt", "hks_hyperopt_worker"):
        environment = _environment(services[service_name], env)
        settings = resolve({}, environment)
        url = store_url(settings)
        assert ("hks_mongo_db:27017" in url) if "postgres" not in name else ("hks_postgres_db:5432" in url)
        assert env[password_variable] not in url and env[password_variable] not in environment.values()
        assert "HKS_STORE_PASSWORD" not in environment
        assert environment["HKS_STORE_PASSWORD_FILE"] == f"/run/secrets/{secret}"
        assert services[service_name]["secrets"] == [secret]
        assert settings.workers == 0
    database = next(s for n, s in services.items() if n.endswith("_db"))
    assert database["secrets"] == [secret]
    files = {key: value for key, value in database["environment"].items() if key.endswith("PASSWORD_FILE")}
    assert list(files.values()) == [f"/run/secrets/{secret}"], database["environment"]


def test_every_variable_the_compose_files_use_is_documented_in_env_example():
    used = set()
    for name in [*COMPOSE_FILES, "docker-compose.gpu.yml"]:
        used |= set(re.findall(r"\$\{(\w+)", (INFRA / name).read_text()))
        used |= {secret["environment"] for secret in (_compose(name).get("secrets") or {}).values()}
    documented = set(_env_example())
    assert used <= documented, f"undocumented in .env.example: {sorted(used - documented)}"
    assert "MONGO_PASSWORD" in used and "POSTGRES_PASSWORD" in used


def test_gpu_override_gives_the_master_every_gpu_and_one_pinned_local_worker_per_gpu():
    # Compose reserves the same GPU for every replica of a scaled service, so the override does not scale workers
    services = _compose("docker-compose.gpu.yml")["services"]
    device = services["hks_hyperopt"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert device["count"] == "all" and device["capabilities"] == ["gpu"]
    assert services["hks_hyperopt"]["environment"]["HKS_WORKERS"] == "auto"
    assert services["hks_hyperopt_worker"]["scale"] == 0
    from hks.config import resolve

    assert resolve({}, environ={"HKS_WORKERS": "auto"}).workers == "auto"  # what the master reads


def test_the_image_is_tensorflow_with_graphviz_and_the_package():
    dockerfile = (INFRA / "Dockerfile").read_text()
    assert re.search(r"^ARG TF_IMAGE=tensorflow/tensorflow:[\d.]+", dockerfile, re.M)
    assert "graphviz" in dockerfile and "pip install --no-cache-dir ." in dockerfile
    assert re.search(r"^USER hks$", dockerfile, re.M)


def test_the_app_containers_are_restarted_a_few_times_not_forever():
    # a refused setting exits 2 at once: an endless restart loop would keep the workers waiting for ever
    for name in COMPOSE_FILES:
        for service in ("hks_hyperopt", "hks_hyperopt_worker"):
            assert re.fullmatch(r"on-failure:\d+", _compose(name)["services"][service]["restart"]), (name, service)
