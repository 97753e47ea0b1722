"""Registering datasets, keeping policy versions, and building their connectors."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from connectors import Connector, ConnectorError
from connectors.http_passthrough import HttpPassThrough
from connectors.jsonpaths import compile_paths
from gateway.datasets import repository
from gateway.datasets.cache import ClosingCache, Lease
from gateway.datasets.factory import PASSTHROUGH, create_passthrough
from gateway.datasets.schemas import DATASET_ID, Dataset, DatasetSpec
from gateway.errors import BadRequest, Conflict, NotFound, ServiceUnavailable
from gateway.participants import repository as participants
from gateway.registry import registry_of
from gateway.storage.db import Database
from gateway.storage.models import DatasetRow, PolicyVersionRow
from policies import (
    SLUIS_PROFILE,
    CompiledPolicy,
    Policy,
    PolicyError,
    check_targets,
    compile_policy,
    parse_policy,
    parse_yaml_policy,
    policy_hash,
    validate,
)
from policies.model import AnyConstraint, Constraint
from policies.operands.data import COLUMNS

ConnectorFactory = Callable[[str, Mapping[str, Any]], Connector]
FORMATS = {
    ".yaml": "yaml",
    ".yml": "yaml",
    ".ttl": "turtle",
    ".jsonld": "json-ld",
    ".json": "json-ld",
}


_ID = re.compile(DATASET_ID.removeprefix("^").removesuffix("$"))


def parse(text: str, fmt: str) -> Policy:
    """A policy from its text, validated against the Sluis profile (PolicyError otherwise)."""
    if fmt == "yaml":
        return parse_yaml_policy(text)
    return validate(parse_policy(text, fmt))  # type: ignore[arg-type]  # "turtle" | "json-ld"


def read_policy_file(path: Path) -> tuple[str, str]:
    """(text, format) of a policy file; BadRequest for an unknown extension or unreadable file."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise BadRequest("policy-format", f"{path.name}: use .yaml, .ttl or .jsonld")
    try:
        return path.read_text(encoding="utf-8"), fmt
    except (OSError, UnicodeDecodeError) as exc:
        raise BadRequest("policy-unreadable", f"{path}: {exc}") from exc


def _to_model(row: DatasetRow) -> Dataset:
    return Dataset.model_validate(row, from_attributes=True)


class DatasetService:
    """Datasets in the database; parsed policies and connectors cached in the process."""

    def __init__(self, db: Database, connector_factory: ConnectorFactory) -> None:
        self.db = db
        self.connector_factory = connector_factory
        self._policies: dict[str, CompiledPolicy] = {}  # by version (hash): compiled once
        self._connectors: ClosingCache[Connector] = ClosingCache(lambda c: c.aclose())
        self._passthroughs: ClosingCache[HttpPassThrough] = ClosingCache(lambda p: p.aclose())

    async def register(
        self, spec: DatasetSpec, policy_text: str, fmt: str, *, now: datetime
    ) -> Dataset:
        """Add a dataset or a new policy version, UNAUDITED: for seeding and tests only.

        Every entry point (CLI, admin API, demo) goes through
        :class:`gateway.admin.service.AdminChanges`, which commits the change with its entry.
        """
        policy = await self.prepare(spec, policy_text, fmt)
        async with self.db.session() as session:
            return await store_dataset(session, spec, policy_text, fmt, policy, now=now)

    async def prepare(self, spec: DatasetSpec, policy_text: str, fmt: str) -> Policy:
        """The parsed policy; BadRequest for a bad policy or connector configuration.

        Runs before any transaction: it parses, checks that the policy can govern the
        dataset's asset (``policies.check_targets``), and builds (and closes) the connector.
        """
        try:
            policy = parse(policy_text, fmt)
        except PolicyError as exc:
            raise BadRequest("policy-invalid", f"{spec.policy}: {exc}") from exc
        asset = spec.asset or f"urn:sluis:dataset:{spec.id}"
        try:
            check_targets(policy, asset)
        except PolicyError as exc:
            raise BadRequest("policy-target-mismatch", f"{spec.policy}: {exc.reason}") from exc
        await self._check_connector(spec, policy)
        return policy

    async def _check_connector(self, spec: DatasetSpec, policy: Policy) -> None:
        """Build the connector once and close it: a bad configuration is refused now (400).

        A files dataset's data is read once too: a missing file, or a path out of the root,
        is the provider's to fix now, not a consumer's error later.

        For a pass-through API, the policy's columns must be JSON paths it can use.
        """
        try:
            if spec.connector.get("type") == PASSTHROUGH:
                await create_passthrough(spec.id, spec.connector).aclose()
                for columns in _columns(policy):
                    compile_paths(columns)
            else:
                connector = self.connector_factory(spec.id, spec.connector)
                try:
                    if connector.kind == "files":  # its data is local: it must be there now
                        await connector.schema()
                finally:
                    await connector.aclose()
        except ConnectorError as exc:
            raise BadRequest("connector-config", f"{spec.id}: {exc.reason}") from exc

    async def get(self, dataset_id: str) -> Dataset:
        """An active dataset; NotFound otherwise (an id no dataset can have never reaches SQL)."""
        if not _ID.fullmatch(dataset_id):  # NUL and the like: PostgreSQL would refuse the text
            raise NotFound("dataset-not-found", f"no dataset {dataset_id}")
        registry = registry_of(self.db)  # in memory; see gateway/registry.py
        found = (await registry.current()).datasets.get(dataset_id)
        if found is None:  # a refusal asks the database first: registered a moment ago?
            found = (await registry.refresh()).datasets.get(dataset_id)
        if found is None:
            raise NotFound("dataset-not-found", f"no dataset {dataset_id}")
        return found

    async def list(self) -> list[Dataset]:
        """Every active dataset."""
        async with self.db.session() as session:
            return [_to_model(row) for row in await repository.list_active(session)]

    async def policy(self, digest: str) -> Policy:
        """The policy version ``digest`` (parsed once per process)."""
        return (await self.compiled(digest)).policy

    async def compiled(self, digest: str) -> CompiledPolicy:
        """The policy version ``digest``, parsed and compiled once per process.

        A version an older, more lenient release stored may no longer validate: it is not
        served under any reading (``policy-unloadable``) until the provider registers a
        corrected policy.
        """
        if digest not in self._policies:
            async with self.db.session() as session:
                row = await repository.policy_version(session, digest)
            if row is None:
                raise NotFound("policy-not-found", f"no policy version {digest}")
            try:
                policy = parse(row.text, row.format)
            except PolicyError as exc:
                detail = f"policy version {digest} no longer validates: {exc}"
                raise ServiceUnavailable("policy-unloadable", detail) from exc
            self._policies[digest] = compile_policy(policy, SLUIS_PROFILE)
        return self._policies[digest]

    async def policy_document(self, digest: str) -> tuple[str, str]:
        """(text, format) of a stored policy version."""
        async with self.db.session() as session:
            row = await repository.policy_version(session, digest)
        if row is None:
            raise NotFound("policy-not-found", f"no policy version {digest}")
        return row.text, row.format

    @staticmethod
    def is_passthrough(dataset: Dataset) -> bool:
        """Whether the dataset is a pass-through API rather than a table."""
        return dataset.connector.get("type") == PASSTHROUGH

    async def lease_passthrough(self, dataset: Dataset) -> Lease[HttpPassThrough]:
        """A lease on the dataset's pass-through proxy, rebuilt when its configuration changed."""
        return await self._passthroughs.lease(
            dataset.id, _key(dataset), lambda: create_passthrough(dataset.id, dataset.connector)
        )

    async def lease_connector(self, dataset: Dataset) -> Lease[Connector]:
        """A lease on the dataset's connector, rebuilt when its configuration changed.

        The replaced connector is closed once its last lease is released.
        """
        return await self._connectors.lease(
            dataset.id, _key(dataset), lambda: self.connector_factory(dataset.id, dataset.connector)
        )

    async def aclose(self) -> None:
        """Close every connector."""
        await self._connectors.aclose()
        await self._passthroughs.aclose()


async def store_dataset(
    session: AsyncSession,
    spec: DatasetSpec,
    policy_text: str,
    fmt: str,
    policy: Policy,
    *,
    now: datetime,
) -> Dataset:
    """Add a dataset, or replace its spec and policy (a new policy version), in ``session``."""
    digest = policy_hash(policy)
    provider = await participants.get(session, spec.provider)
    if provider is None:
        raise NotFound("participant-not-found", f"no participant {spec.provider}")
    if "provider" not in provider.roles:
        raise BadRequest(
            "provider-role-required",
            f"{spec.provider} does not have the provider role: "
            f"sluis participants set-roles {spec.provider} --role provider (with its other roles)",
        )
    if await repository.policy_version(session, digest) is None:
        session.add(
            PolicyVersionRow(
                hash=digest, uid=policy.uid or "", format=fmt, text=policy_text, created_at=now
            )
        )
    row = await repository.get(session, spec.id)
    if row is None:
        row = DatasetRow(id=spec.id, created_at=now, status="active")
        session.add(row)
    elif row.provider_id != spec.provider:
        raise Conflict("dataset-provider", f"dataset {spec.id} belongs to {row.provider_id}")
    row.title, row.description, row.provider_id = spec.title, spec.description, spec.provider
    row.asset = spec.asset or f"urn:sluis:dataset:{spec.id}"
    row.connector, row.policy_hash, row.approval = spec.connector, digest, spec.approval
    row.status, row.updated_at = "active", now
    await session.flush()
    return _to_model(row)


def _columns(policy: Policy) -> list[list[str]]:
    """The right operands of every ``sluis:columns`` constraint in the policy's rules."""
    found: list[list[str]] = []

    def walk(constraints: tuple[AnyConstraint, ...]) -> None:
        for c in constraints:
            if not isinstance(c, Constraint):
                walk(c.operands)
            elif c.left_operand == COLUMNS:
                found.append([str(v) for v in c.right_operand])

    for rule in policy.rules():
        walk(rule.constraints)
    return found


def _key(dataset: Dataset) -> str:
    return repr(sorted(dataset.connector.items()))
