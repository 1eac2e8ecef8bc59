"""docker-compose.yml wiring: services, start order, secrets from .env, real tcpd commands."""

from __future__ import annotations

import re
import shlex
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parent.parent
COMPOSE = REPO / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def service(compose: dict[str, Any], name: str) -> dict[str, Any]:
    services = compose["services"]
    assert name in services, f"service {name!r} missing; has {sorted(services)}"
    value = services[name]
    assert isinstance(value, dict)
    return value


def command_words(svc: dict[str, Any]) -> list[str]:
    cmd = svc["command"]
    return shlex.split(cmd) if isinstance(cmd, str) else [str(part) for part in cmd]


def env_files(svc: dict[str, Any]) -> list[str]:
    files = svc.get("env_file", [])
    files = [files] if isinstance(files, str) else files
    return [f if isinstance(f, str) else f["path"] for f in files]


def example_env() -> dict[str, str]:
    pairs = {}
    for line in (REPO / ".env.example").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


def test_database_service(compose: dict[str, Any]) -> None:
    db = service(compose, "timescaledb")
    assert db["image"] == "timescale/timescaledb:latest-pg17"
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    volume = db["volumes"][0].split(":")[0]
    assert volume in compose["volumes"], "the data volume must be a named volume"
    assert ".env" in env_files(db)
    for port in db.get("ports", []):
        assert str(port).startswith("127.0.0.1:"), f"database port exposed beyond loopback: {port}"


def test_start_order(compose: dict[str, Any]) -> None:
    migrate = service(compose, "migrate")
    ingester = service(compose, "ingester")
    assert migrate["depends_on"]["timescaledb"]["condition"] == "service_healthy"
    assert ingester["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert ingester["restart"] == "unless-stopped"
    assert migrate.get("restart", "no") == "no", "a one-shot job must not be restarted"


def test_secrets_come_from_the_env_file(compose: dict[str, Any]) -> None:
    example = example_env()
    for name in ("timescaledb", "migrate", "ingester"):
        assert env_files(service(compose, name)) == [".env"]
    for key in ("POSTGRES_PASSWORD", "TCPD_DATABASE_URL"):
        assert key in example, f".env.example lacks {key}"
    # no secret written into the compose file itself: only ${VAR} references to .env
    text = COMPOSE.read_text(encoding="utf-8")
    assert not re.search(r"(PASSWORD|DATABASE_URL)\s*[:=]\s*(?!\$\{)\S", text)
    # the example holds placeholders only, and the real .env is never committed
    assert "change-me" in example["POSTGRES_PASSWORD"]
    assert example["POSTGRES_PASSWORD"] in example["TCPD_DATABASE_URL"]
    assert "@timescaledb:" in example["TCPD_DATABASE_URL"]
    ignored = (REPO / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert ".env" in ignored


def test_config_mounted_read_only_and_exists(compose: dict[str, Any]) -> None:
    ingester = service(compose, "ingester")
    assert "./config:/app/config:ro" in ingester["volumes"]
    words = command_words(ingester)
    config = Path(words[words.index("--config") + 1])
    assert config.parent == Path("/app/config")
    assert (REPO / "config" / config.name).is_file(), f"config/{config.name} is not in the repo"


@pytest.mark.parametrize("name", ["migrate", "ingester"])
def test_commands_are_real_tcpd_commands(compose: dict[str, Any], name: str) -> None:
    from cli.main import app

    words = command_words(service(compose, name))
    assert words[0] == "tcpd"
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert scripts["tcpd"] == "cli.main:main"
    # the same arguments plus --help: typer exits 0 only if every command and option exists
    result = CliRunner().invoke(app, [*words[1:], "--help"])
    assert result.exit_code == 0, result.output


def backup_script(compose: dict[str, Any]) -> str:
    """The backup service's shell loop as the container's shell sees it ($$ is compose's $)."""
    words = service(compose, "backup")["command"]
    assert words[:2] == ["sh", "-c"]
    return str(words[2]).replace("$$", "$")


def test_backup_service_is_opt_in_and_wired(compose: dict[str, Any]) -> None:
    backup = service(compose, "backup")
    assert backup["profiles"] == ["backup"], "backups need a passphrase first: opt-in profile"
    assert backup["image"] == service(compose, "ingester")["image"]
    assert env_files(backup) == [".env"]
    assert backup["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert backup["restart"] == "unless-stopped"
    volume, _, mount = backup["volumes"][1].partition(":")
    assert volume in compose["volumes"], "backups must live in a named volume"
    assert f"--dir {mount} " in backup_script(compose)
    example = example_env()
    for key in ("TCPD_BACKUP_PASSPHRASE", "TCPD_BACKUP_INTERVAL", "TCPD_BACKUP_KEEP"):
        assert example.get(key) == "", f".env.example must list {key} empty"
    # the image creates the mount point owned by its user, so the named volume is writable
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(rf"mkdir -p [^\n]*{mount}", dockerfile)
    assert re.search(rf"chown tcpd [^\n]*{mount}", dockerfile)


def test_backup_loop_runs_a_real_tcpd_command(compose: dict[str, Any]) -> None:
    from cli.main import app

    line = next(
        line.strip() for line in backup_script(compose).splitlines() if line.strip().startswith("tcpd ")
    )
    words = shlex.split(line.split("||")[0].replace('"$keep"', "7"))
    assert words[:3] == ["tcpd", "db", "backup"]
    assert "--keep" in words
    result = CliRunner().invoke(app, [*words[1:], "--help"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("variable", ["TCPD_BACKUP_INTERVAL", "TCPD_BACKUP_KEEP"])
def test_backup_loop_stops_on_a_bad_number(compose: dict[str, Any], variable: str) -> None:
    """Not a busy loop of backups when `sleep` would fail at once."""
    env = {"PATH": "/usr/bin:/bin", variable: "1d"}
    done = subprocess.run(
        ["sh", "-c", backup_script(compose)], env=env, capture_output=True, text=True, timeout=10
    )
    assert done.returncode == 2
    assert "must be whole numbers" in done.stderr


def test_image_pg_dump_matches_the_compose_server(compose: dict[str, Any]) -> None:
    """pg_dump must be at least the server's major version: the image installs the client of
    the major the compose database image names (…-pg17 -> postgresql-client-17), and gpg."""
    image = service(compose, "timescaledb")["image"]
    match = re.search(r"-pg(\d+)$", image)
    assert match, image
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert f"postgresql-client-{match[1]}" in dockerfile
    assert re.search(r"apt-get install [^\n]*\bgnupg\b", dockerfile)
    assert "FROM python:3.11-slim-trixie" in dockerfile, "trixie ships postgresql-client-17"


def test_dockerfile_installs_the_package() -> None:
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert text.count("FROM ") == 1
    assert "FROM python:3.11-slim" in text
    assert re.search(r"pip install /src\b", text)
    for folder in ("ingest", "cli", "sql"):
        assert f"COPY {folder} " in text, f"Dockerfile does not copy {folder}/"


# -- the monitoring profile ---------------------------------------------------------------------

MONITORING = ("grafana-role", "prometheus", "grafana")


def test_monitoring_services_only_in_their_profile(compose: dict[str, Any]) -> None:
    for name, svc in compose["services"].items():
        assert (svc.get("profiles") == ["monitoring"]) == (name in MONITORING), name
    assert service(compose, "prometheus")["image"].startswith("prom/prometheus:")
    assert service(compose, "grafana")["image"].startswith("grafana/grafana:")
    for name in MONITORING:
        for port in service(compose, name).get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name}: port exposed beyond loopback: {port}"


def test_monitoring_start_order(compose: dict[str, Any]) -> None:
    role = service(compose, "grafana-role")
    grafana = service(compose, "grafana")
    assert role["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert role.get("restart", "no") == "no"
    assert grafana["depends_on"]["grafana-role"]["condition"] == "service_completed_successfully"
    assert "prometheus" in grafana["depends_on"]


def test_monitoring_mounts_exist_read_only(compose: dict[str, Any]) -> None:
    targets: dict[str, str] = {}
    for name in MONITORING:
        for volume in service(compose, name)["volumes"]:
            source, target, *mode = str(volume).split(":")
            if source in compose["volumes"]:
                continue  # a named volume for the service's own data
            assert mode == ["ro"], f"{name}: {volume} must be read-only"
            assert (REPO / source).exists(), f"{name}: {source} is not in the repo"
            targets[target] = source
    assert targets["/etc/prometheus/prometheus.yml"] == "./monitoring/prometheus.yml"
    # the provisioned dashboard provider reads the folder the dashboards are mounted on
    provider = yaml.safe_load((REPO / "monitoring/grafana/provisioning/dashboards/tcpd.yml").read_text())
    path = provider["providers"][0]["options"]["path"]
    assert targets[path] == "./monitoring/grafana/dashboards"
    assert targets["/etc/grafana/provisioning"] == "./monitoring/grafana/provisioning"
    script = service(compose, "grafana-role")["entrypoint"][-1]
    assert "/monitoring/grafana-role.sql" in script
    assert "/monitoring/grafana-role.sql" in targets


def test_monitoring_variables_are_in_the_example_and_empty(compose: dict[str, Any]) -> None:
    example = example_env()
    grafana = service(compose, "grafana")
    referenced = set(re.findall(r"\$\{(\w+)", yaml.safe_dump(grafana["environment"])))
    assert {"TCPD_GRAFANA_ADMIN_PASSWORD", "TCPD_GRAFANA_DB_PASSWORD", "POSTGRES_DB"} <= referenced
    for key in referenced:
        assert key in example, f".env.example lacks {key}"
    for key in ("TCPD_GRAFANA_ADMIN_PASSWORD", "TCPD_GRAFANA_DB_PASSWORD"):
        assert example[key] == "", f"{key} must be empty in .env.example: each install picks its own"
    # what the provisioned data source reads from Grafana's environment, compose passes on
    datasources = (REPO / "monitoring/grafana/provisioning/datasources/tcpd.yml").read_text()
    assert set(re.findall(r"\$\{(\w+)\}", datasources)) <= set(grafana["environment"])
    script = " ".join(service(compose, "grafana-role")["entrypoint"])
    assert ".env" in env_files(service(compose, "grafana-role"))
    assert "TCPD_GRAFANA_ADMIN_PASSWORD" in script
    assert "TCPD_DATABASE_URL" in script
