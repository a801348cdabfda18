#!/usr/bin/env python3
"""A small Nova-like service on Keystone unified limits, race-free.

The service keeps an ``instances`` table (SQLite) and counts it for usage,
as Nova counts its instances; Keystone holds the limits and the project
tree. Projects ``web`` and ``batch`` live in the Keystone domain ``acme``,
whose domain limit caps the two together. Workers boot and delete servers
concurrently through ``delimiter.consume`` with a
``delimiter.openstack.KeystoneStore``: the tree and limits come from
Keystone (cached, bulk), usage and generations from the service's database,
and every boot commits its instance row together with the generation
compare-and-update, so no interleaving can exceed a limit. At the end one
more boot is refused at the domain, and the refusal says why.

Needs a Keystone (``just demo-keystone`` starts one; or
``just keystone-start`` and the variables ``tools/keystone/keystone.sh env``
prints).
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
import threading
import uuid
from pathlib import Path

import openstack
from oslo_config import cfg
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, delete, insert, literal, select, union_all

import delimiter as d
from delimiter.openstack import KeystoneLimits, KeystoneStore
from delimiter.openstack import connection as oslo_options

URL = os.environ.get("DELIMITER_TEST_KEYSTONE_URL")
PASSWORD = os.environ.get("DELIMITER_TEST_KEYSTONE_PASSWORD", "delimiter-admin")
if not URL:
    sys.exit("DELIMITER_TEST_KEYSTONE_URL is not set: start Keystone with `just demo-keystone`")

# ---- the cloud's administrator sets up Keystone ------------------------------------

admin = openstack.connection.Connection(
    auth_url=URL, username="admin", password=PASSWORD, user_domain_id="default",
    system_scope="all", identity_api_version="3",
).identity
sfx = uuid.uuid4().hex[:6]
service = admin.create_service(type=f"compute-{sfx}", name=f"nova-{sfx}")
endpoint = admin.create_endpoint(service_id=service.id, interface="public",
                                 url=f"http://127.0.0.1:8774/{sfx}", region_id="RegionOne")
for resource, default in {"servers": 10, "cores": 20}.items():
    admin.create_registered_limit(service_id=service.id, region_id="RegionOne",
                                  resource_name=resource, default_limit=default)
acme = admin.create_domain(name=f"acme-{sfx}")
web = admin.create_project(name=f"web-{sfx}", domain_id=acme.id)
batch = admin.create_project(name=f"batch-{sfx}", domain_id=acme.id)
names = {acme.id: "domain acme", web.id: "web", batch.id: "batch"}
admin.create_limit(service_id=service.id, region_id="RegionOne", domain_id=acme.id,
                   resource_name="servers", resource_limit=6)
admin.create_limit(service_id=service.id, region_id="RegionOne", project_id=web.id,
                   resource_name="servers", resource_limit=4)
print(f"Keystone: registered servers 10, cores 20; domain acme servers 6; web servers 4; batch none")

# ---- the service: its [oslo_limit] options, as for oslo.limit --------------------------

oslo_options.register_opts(cfg.CONF)
for key, value in {"auth_type": "password", "auth_url": URL, "username": "admin", "password": PASSWORD,
                   "user_domain_id": "default", "system_scope": "all", "endpoint_id": endpoint.id}.items():
    try:
        cfg.CONF.set_override(key, value, group="oslo_limit")
    except cfg.NoSuchOptError:
        from keystoneauth1 import loading

        cfg.CONF.register_opts(loading.get_auth_plugin_conf_options("password"), group="oslo_limit")
        cfg.CONF.set_override(key, value, group="oslo_limit")

db = Path(tempfile.mkdtemp()) / "nova.db"
engine = create_engine(f"sqlite:///{db}")
meta = MetaData()
instances = Table("instances", meta, Column("id", String, primary_key=True),
                  Column("project_id", String, nullable=False), Column("vcpus", Integer, nullable=False))
meta.create_all(engine)
# Usage is counted from the service's own rows, as Nova counts.
counted = union_all(
    select(instances.c.project_id, literal("servers").label("resource"), literal(1).label("usage")),
    select(instances.c.project_id, literal("cores").label("resource"), instances.c.vcpus.label("usage")),
)

limits = KeystoneLimits(ttl=60)  # one per process, shared by every request
store = KeystoneStore(engine, limits, counted_usage=counted, write_rows=lambda conn, req: None)
store.create_schema()
config = store.config("nested")  # Keystone says flat; the service wants the domain to count
policy = d.RetryPolicy(max_attempts=50)


def boot(project_id: str, vcpus: int = 2) -> bool:
    def write_rows(conn, request):
        conn.execute(insert(instances).values(id=uuid.uuid4().hex, project_id=project_id, vcpus=vcpus))

    try:
        d.consume(store.with_rows(write_rows), d.Request(project_id, {"servers": 1, "cores": vcpus}), config, policy)
        return True
    except d.OverLimit:
        return False


def delete_one(project_id: str) -> bool:
    with engine.connect() as conn:
        row = conn.execute(select(instances.c.id, instances.c.vcpus)
                           .where(instances.c.project_id == project_id).limit(1)).first()
    if row is None:
        return False

    def write_rows(conn, request):
        if conn.execute(delete(instances).where(instances.c.id == row.id)).rowcount != 1:
            raise d.StorageError("already deleted")

    try:
        d.consume(store.with_rows(write_rows), d.Request(project_id, {"servers": -1, "cores": -row.vcpus}), config, policy)
        return True
    except d.StorageError:
        return False  # another worker deleted it first


tally = {"booted": 0, "refused": 0, "deleted": 0}
lock = threading.Lock()


def worker(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(12):
        project = rng.choice([web.id, batch.id])
        if rng.random() < 0.7:
            outcome = "booted" if boot(project) else "refused"
        else:
            outcome = "deleted" if delete_one(project) else None
        if outcome:
            with lock:
                tally[outcome] += 1


threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
for t in threads:
    t.start()
for t in threads:
    t.join()

with engine.connect() as conn:
    count = {p: len(conn.execute(select(instances.c.id).where(instances.c.project_id == p)).all())
             for p in (web.id, batch.id)}
print(f"6 workers, 72 operations: {tally['booted']} boots, {tally['refused']} refused, "
      f"{tally['deleted']} deletes")
print(f"instances now: web {count[web.id]} (limit 4), batch {count[batch.id]} (registered 10), "
      f"domain acme {count[web.id] + count[batch.id]} (limit 6)")
assert count[web.id] <= 4 and count[web.id] + count[batch.id] <= 6, count

# Fill the domain, then one more boot in batch: batch is under its own limit,
# the domain is not.
while count[web.id] + count[batch.id] < 6 and boot(batch.id):
    count[batch.id] += 1
try:
    d.consume(store.with_rows(lambda conn, req: None), d.Request(batch.id, {"servers": 1, "cores": 2}), config)
except d.OverLimit as refusal:
    print(f"one more boot in batch ({count[batch.id]} of its 10) is refused:")
    for v in refusal.violations:
        print(f"  {v.resource} at {names.get(v.project, v.project)}: limit {v.limit}, "
              f"usage {v.usage}, delta {v.delta}")
stats = limits.stats
print(f"Keystone requests made by the service: {stats['requests']} "
      f"({', '.join(f'{k} {v}' for k, v in stats.items() if k != 'requests')}), "
      f"for {sum(tally.values()) + 1} consumes")
