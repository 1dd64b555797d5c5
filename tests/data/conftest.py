"""Fixtures for tinyeff.data tests: an isolated data environment and a local HTTP file server."""
import pytest

from local_http import FileServer


@pytest.fixture(autouse=True)
def isolated_data_env(tmp_path, monkeypatch):
    """Point $TINYEFF_DATA and the cache at empty temp dirs so the user's files never leak in."""
    monkeypatch.setenv("TINYEFF_DATA", str(tmp_path / "env-data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.delenv("TINYEFF_DATA_MIRROR", raising=False)


@pytest.fixture
def file_server():
    """Factory: ``file_server(files, **options)`` starts a FileServer that is shut down after the test."""
    servers = []

    def start(files, **options):
        servers.append(FileServer(files, **options))
        return servers[-1]

    yield start
    for server in servers:
        server.close()
