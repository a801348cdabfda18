"""A live Keystone for the tests (``tools/keystone/keystone.sh``).

``DELIMITER_TEST_KEYSTONE_URL`` (``http://127.0.0.1:5055/v3``) names it;
unset, every test that needs it is skipped with that reason.
``DELIMITER_TEST_KEYSTONE_ACCESS_LOG`` (gunicorn's access log: one line per
request, in order) lets tests count and compare the requests a library
made, between two marker requests. ``DELIMITER_TEST_KEYSTONE_CONTROL`` (the
script) lets the strict_two_level tests restart Keystone in that model.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from typing import Iterator, Optional

import pytest

URL = os.environ.get("DELIMITER_TEST_KEYSTONE_URL", "")
PASSWORD = os.environ.get("DELIMITER_TEST_KEYSTONE_PASSWORD", "delimiter-admin")
ACCESS_LOG = os.environ.get("DELIMITER_TEST_KEYSTONE_ACCESS_LOG", "")
CONTROL = os.environ.get("DELIMITER_TEST_KEYSTONE_CONTROL", "")

requires_keystone = pytest.mark.skipif(
    not URL,
    reason="DELIMITER_TEST_KEYSTONE_URL is not set: no live Keystone (`just test-keystone` starts one)",
)
requires_access_log = pytest.mark.skipif(
    not ACCESS_LOG, reason="DELIMITER_TEST_KEYSTONE_ACCESS_LOG is not set: requests cannot be counted"
)


def admin():
    """openstacksdk, as Keystone's bootstrap admin with system scope."""
    import openstack

    return openstack.connection.Connection(
        auth_url=URL,
        username="admin",
        password=PASSWORD,
        user_domain_id="default",
        system_scope="all",
        identity_api_version="3",
    ).identity


def configure_oslo_limit(endpoint_id: str) -> None:
    """The ``[oslo_limit]`` options both libraries read: the admin's
    password, system scope, the service's endpoint by id; and both
    libraries' per-process connections dropped, so the next Enforcer of
    each makes a fresh one."""
    from keystoneauth1 import loading
    from oslo_config import cfg

    import oslo_limit.limit as real

    from delimiter.openstack import connection as ours
    from delimiter.openstack import keystone as ours_keystone

    conf = cfg.CONF
    ours.conf()
    with contextlib.suppress(Exception):
        conf.register_opts(loading.get_auth_plugin_conf_options("password"), group="oslo_limit")
    for key, value in {
        "auth_type": "password",
        "auth_url": URL,
        "username": "admin",
        "password": PASSWORD,
        "user_domain_id": "default",
        "system_scope": "all",
        "endpoint_id": endpoint_id,
    }.items():
        conf.set_override(key, value, group="oslo_limit")
    real._SDK_CONNECTION = None
    ours._SDK_CONNECTION = None
    ours_keystone.KeystoneLimits._shared.clear()


@dataclass
class Service:
    """One service's corner of Keystone, with unique names."""

    service_id: str
    endpoint_id: str
    region_id: str
    domains: dict[str, str] = field(default_factory=dict)  # name -> id
    projects: dict[str, str] = field(default_factory=dict)  # name -> id
    limits: dict[tuple[str, str], str] = field(default_factory=dict)  # (owner, resource) -> limit id


def make_service(conn, registered: dict[str, int]) -> Service:
    sfx = uuid.uuid4().hex[:8]
    service = conn.create_service(type=f"compute-{sfx}", name=f"nova-{sfx}")
    endpoint = conn.create_endpoint(
        service_id=service.id, interface="public", url=f"http://127.0.0.1:9/{sfx}", region_id="RegionOne"
    )
    for resource, limit in registered.items():
        conn.create_registered_limit(
            service_id=service.id, region_id="RegionOne", resource_name=resource, default_limit=limit
        )
    return Service(service.id, endpoint.id, "RegionOne")


def add_domain(conn, svc: Service, name: str) -> str:
    dom = conn.create_domain(name=f"{name}-{uuid.uuid4().hex[:8]}")
    svc.domains[name] = dom.id
    return dom.id


def add_project(conn, svc: Service, name: str, parent: str) -> str:
    """``parent``: a domain or project name of ``svc``."""
    if parent in svc.domains:
        proj = conn.create_project(name=f"{name}-{uuid.uuid4().hex[:8]}", domain_id=svc.domains[parent])
    else:
        parent_id = svc.projects[parent]
        domain_id = conn.get_project(parent_id).domain_id
        proj = conn.create_project(name=f"{name}-{uuid.uuid4().hex[:8]}", domain_id=domain_id, parent_id=parent_id)
    svc.projects[name] = proj.id
    return proj.id


def set_limit(conn, svc: Service, owner: str, resource: str, value: int) -> None:
    """Creates or updates the project or domain limit of ``owner`` (a name)."""
    key = (owner, resource)
    if key in svc.limits:
        conn.update_limit(svc.limits[key], resource_limit=value)
        return
    where = {"domain_id": svc.domains[owner]} if owner in svc.domains else {"project_id": svc.projects[owner]}
    lim = conn.create_limit(
        service_id=svc.service_id, region_id=svc.region_id, resource_name=resource, resource_limit=value, **where
    )
    svc.limits[key] = lim.id


def build(registered: dict[str, int], tree: dict[str, Optional[str]], limits: str = ""):
    """A service on a fresh admin connection: its ``registered`` limits,
    then ``tree`` in order (name -> parent; None makes a domain), then
    ``limits``, "owner resource value" triples separated by commas (e.g.
    "dom servers 8, a servers -1"). Returns the Service, with the
    connection as ``conn`` for tests that change limits later."""
    conn = admin()
    svc = make_service(conn, registered)
    for name, parent in tree.items():
        if parent is None:
            add_domain(conn, svc, name)
        else:
            add_project(conn, svc, name, parent)
    for triple in filter(None, (t.split() for t in limits.split(","))):
        owner, resource, value = triple
        set_limit(conn, svc, owner, resource, int(value))
    svc.conn = conn  # type: ignore[attr-defined]
    return svc


# ---- counting requests -----------------------------------------------------------


def _mark() -> str:
    tag = uuid.uuid4().hex
    urllib.request.urlopen(f"{URL}?mark={tag}", timeout=10).read()
    return tag


_LINE = re.compile(r'"(GET|POST|PUT|PATCH|DELETE|HEAD) ([^ ]+) HTTP')


@dataclass
class Requests:
    """The requests Keystone served between two markers, in order, as
    ``METHOD path`` (query string kept, token ids and uuids as they are)."""

    lines: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.lines)

    def paths(self) -> list[str]:
        """Each request without its query string and with ids replaced by
        ``{id}`` (for comparing two runs on different objects)."""
        return [re.sub(r"[0-9a-f]{32}", "{id}", line) for line in self.lines]


@contextlib.contextmanager
def counting() -> Iterator[Requests]:
    """Counts the Keystone requests made inside the block (from the access log)."""
    out = Requests()
    start = _mark()
    yield out
    end = _mark()
    for _ in range(100):
        text = open(ACCESS_LOG).read()
        if f"mark={end}" in text:
            break
        time.sleep(0.05)
    inside = text.split(f"mark={start}", 1)[1].split(f"mark={end}", 1)[0]
    for line in inside.splitlines()[1:]:
        m = _LINE.search(line)
        if m and "mark=" not in line:
            out.lines.append(f"{m.group(1)} {m.group(2)}")


def keystone_model() -> Optional[str]:
    """Keystone's enforcement model now (``GET /v3/limits/model``)."""
    return admin().get("/limits/model").json()["model"]["name"]
