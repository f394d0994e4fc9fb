"""Start Azurite's Table service for the tests (and stop it): the real emulator, over a real socket."""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path

ACCOUNT = "devstoreaccount1"
# Azurite's published development account key (not a secret: it is the same in every installation).
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
ROOT = Path(__file__).resolve().parent.parent


def connection_string(port: int) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
        f"TableEndpoint=http://127.0.0.1:{port}/{ACCOUNT};"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class AzuriteTables:
    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    def start(self) -> str:
        binary = os.environ.get("AZURITE_TABLE_BIN") or str(ROOT / "node_modules" / ".bin" / "azurite-table")
        if not Path(binary).exists():
            raise RuntimeError(f"Azurite is not installed ({binary} is missing): run `npm install` (make test does)")
        self.port = _free_port()
        self._dir = tempfile.TemporaryDirectory(prefix="azurite-")
        self.process = subprocess.Popen(
            [
                binary,
                "--tableHost",
                "127.0.0.1",
                "--tablePort",
                str(self.port),
                "--location",
                self._dir.name,
                "--silent",
                "--skipApiVersionCheck",
                "--disableTelemetry",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                error = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(f"Azurite exited with {self.process.returncode}: {error}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return connection_string(self.port)
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("Azurite did not accept connections within 30 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None
