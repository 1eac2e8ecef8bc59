"""Database TLS for real (issue 9, item 8): a throwaway PostgreSQL with ssl=on, listening on
a non-loopback address of this machine, so the service's default applies (sslmode=verify-full
off this machine). With the server's CA as sslrootcert the connection is TLS, verified; with
another CA it is refused with a clear error that never shows the password."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.db.connection import connect
from ingest.errors import DatabaseError
from tests.tls_support import outside_address, self_signed

# Its own cluster runs on the native engine's build (engines/native.sh start): a database test.
pytestmark = pytest.mark.db
REPO = Path(__file__).resolve().parent.parent
NATIVE = REPO / "engines" / "native.sh"
PASSWORD = "tls-Pa55-w0rd-real"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(command: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{' '.join(command)}: {done.stderr}"


@pytest.fixture
def tls_server() -> Iterator[tuple[str, int, Path]]:
    """(address, port, CA file) of a TLS-only PostgreSQL cluster on a non-loopback address."""
    if not Path("/usr/lib/postgresql/15/bin/pg_ctl").exists():
        pytest.skip("needs the PostgreSQL 15 server binaries of engines/native.sh on this machine")
    address = outside_address()
    # Not under pytest's tmp_path: as root the cluster belongs to the postgres OS user, who
    # cannot enter pytest's private directory.
    cluster, port = Path(tempfile.mkdtemp(prefix="tcpd-tls-")), free_port()
    cluster.chmod(0o755)
    key, cert = self_signed(cluster, address)
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        for path in (cluster, key, cert):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    env = {
        **os.environ,
        "ENGINE_SETTINGS": f"listen_addresses = '127.0.0.1,{address}'\nssl = on\n"
        f"ssl_cert_file = '{cert}'\nssl_key_file = '{key}'",
    }
    ctl = [str(NATIVE), "--dir", str(cluster), "--port", str(port)]
    try:
        run([*ctl, "start"], env)
        hba = cluster / "data" / "pg_hba.conf"
        hba.write_text(f"hostssl all all {address}/32 trust\n" + hba.read_text())
        run([*ctl, "restart"], env)
        yield address, port, cert
    finally:
        subprocess.run([*ctl, "stop"], env=env, check=False, capture_output=True)
        shutil.rmtree(cluster, ignore_errors=True)


async def test_the_default_off_this_machine_is_verified_tls(tls_server: tuple[str, int, Path]) -> None:
    address, port, ca = tls_server
    conn = await connect(f"postgresql://postgres:{PASSWORD}@{address}:{port}/postgres?sslrootcert={ca}")
    async with conn:
        cur = await conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        assert await cur.fetchone() == (True,)
        assert conn.info.get_parameters().get("sslmode") == "verify-full"


async def test_a_server_certificate_from_another_ca_is_refused_clearly(
    tls_server: tuple[str, int, Path], tmp_path: Path
) -> None:
    address, port, _ca = tls_server
    other = tmp_path / "other"
    other.mkdir()
    _key, wrong_ca = self_signed(other, address)
    with pytest.raises(DatabaseError) as refused:
        await connect(f"postgresql://postgres:{PASSWORD}@{address}:{port}/postgres?sslrootcert={wrong_ca}")
    text = str(refused.value)
    assert "certificate verify failed" in text
    assert f"host={address} port={port}" in text
    assert PASSWORD not in text
