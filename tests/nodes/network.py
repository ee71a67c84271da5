"""Three real gateways linked as nodes: province ``32`` and two cities ``320281`` and
``320282``, each its own database (SQLite file, or a PostgreSQL schema when
XINYI_TEST_DATABASE_URL is set) and its own port on loopback, each started as
``xinyi serve`` (tests/live.py, bench/load.py)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.load import Server, instance_env
from common.uscc import complete
from tests.live import free_port, xinyi

BANK_ID = "bank-prov"
PASSWORD = "correct horse battery"


def city_uscc(division: str, serial: int) -> str:
    """A valid USCC of a company registered in ``division`` (GB 32100)."""
    return complete(f"91{division}{serial:08d}X")


@dataclass
class Node:
    name: str
    region: str
    home: Path
    database_url: str
    port: int
    env: dict[str, str] = field(default_factory=dict)
    server: Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cli(self, *args: str, stdin: str | None = None) -> str:
        return xinyi(self.env, *args, stdin=stdin)

    def start(self) -> None:
        self.server = Server(self.env, self.port, 1)
        self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def kill(self) -> None:
        """SIGKILL the server's process group: no clean shut-down."""
        import os
        import signal

        assert self.server is not None and self.server.proc is not None
        os.killpg(self.server.proc.pid, signal.SIGKILL)
        self.server.proc.wait(timeout=10)
        self.server = None


def make_node(root: Path, name: str, region: str, database_url: str | None, **config: Any) -> Node:
    home = root / name
    url = database_url or f"sqlite:///{home / 'xinyi.db'}"
    port = free_port()
    node = Node(name, region, home, url, port)
    node.env = instance_env(home, url, port, audit={"checkpoint_interval_seconds": 0.5}, **config)
    node.cli("init")
    node.cli("node", "init", "--name", name, "--region", region)
    return node


def link(parent: Node, child: Node) -> None:
    for a, b, relation in ((parent, child, "child"), (child, parent, "parent")):
        jwk = b.home / "node.jwk"
        jwk.write_text(b.cli("node", "key"), encoding="utf-8")
        a.cli(
            "node", "add-peer", b.name, "--url", b.url, "--jwk", str(jwk),
            "--relation", relation, "--region", b.region,
        )  # fmt: skip


def pg_schema_url(admin_url: str) -> str:
    """A fresh PostgreSQL schema of its own for one node."""
    import sqlalchemy as sa

    from common.db import make_engine
    from tests.conftest import _pg_schema_url

    schema = "node_" + uuid.uuid4().hex[:12]
    engine = make_engine(admin_url)
    with engine.begin() as c:
        c.execute(sa.text(f"CREATE SCHEMA {schema}"))
    engine.dispose()
    return _pg_schema_url(schema)


def drop_schema(admin_url: str, database_url: str) -> None:
    import sqlalchemy as sa

    from common.db import make_engine

    schema = database_url.rsplit("search_path%3D", 1)[1]
    engine = make_engine(admin_url)
    with engine.begin() as c:
        c.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    engine.dispose()


PARENT_DEPARTMENT = "jiangsu_platform"


def takes_province_data() -> dict[str, Any]:
    """Config of a city that loads data sent down by the province as a department
    named for it (with one category of its own)."""
    import yaml

    from common.settings import DEFAULT_CONFIG

    raw = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    return {
        "nodes": {"parent_departments": [PARENT_DEPARTMENT]},
        "departments": [
            *raw["departments"],
            {"id": PARENT_DEPARTMENT, "name": "江苏省平台", "name_en": "Jiangsu platform"},
        ],
        "categories": {
            "provincial": {
                "department": PARENT_DEPARTMENT,
                "visibility": "non_public",
                "name": "省级平台信息",
                "name_en": "Provincial platform",
                "features": {
                    "subsidies_12m": {
                        "type": "amount",
                        "unit": "CNY",
                        "description": "省级补贴近12个月",
                        "description_en": "Provincial subsidies, last 12 months",
                        "verify_ops": [">="],
                        "bands": [0, 100000, 1000000],
                    }
                },
            }
        },
    }


@dataclass
class Network:
    province: Node
    jiangyin: Node
    zhangjg: Node
    bank_key: Any
    enterprise: str  # held by jiangyin (320281)
    enterprise_login: str


@contextmanager
def three_nodes(root: Path, pg_admin_url: str | None, **config: Any) -> Iterator[Network]:
    """The network, started; ``config`` is merged into every node's config.yaml."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from bank.profile import public_jwk

    urls = [pg_schema_url(pg_admin_url) if pg_admin_url else None for _ in range(3)]
    nodes = [
        make_node(root, "jiangsu", "32", urls[0], **config),
        make_node(root, "jiangyin", "320281", urls[1], **takes_province_data(), **config),
        make_node(root, "zhangjg", "320282", urls[2], **{"nodes": {"batch_max": 50}, **config}),
    ]
    province, jiangyin, zhangjg = nodes
    try:
        link(province, jiangyin)
        link(province, zhangjg)
        # A bank registered at the province only.
        key = Ed25519PrivateKey.generate()
        (root / "bank.jwk").write_text(json.dumps(public_jwk(key)), encoding="utf-8")
        province.cli(
            "admin",
            "add-institution",
            BANK_ID,
            "--name",
            "省级银行",
            "--jwk",
            str(root / "bank.jwk"),
        )
        # An enterprise of Jiangyin: its tax data and its sign-in account at Jiangyin.
        enterprise = city_uscc("320281", 1)
        csv = root / "tax.csv"
        csv.write_text(f"uscc,tax.paid_12m\n{enterprise},250000\n", encoding="utf-8")
        jiangyin.cli("data", "import", "tax", str(csv))
        login = "jy-enterprise"
        jiangyin.cli(
            "admin", "add-user", "--role", "enterprise", "--login", login,
            "--password-stdin", "--uscc", enterprise, stdin=PASSWORD + "\n",
        )  # fmt: skip
        for n in nodes:
            n.start()
        yield Network(province, jiangyin, zhangjg, key, enterprise, login)
    finally:
        for n in nodes:
            n.stop()
        if pg_admin_url:
            for n in nodes:
                drop_schema(pg_admin_url, n.database_url)
