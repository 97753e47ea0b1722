"""Every database write in gateway/ is classified: audited with its change, or why not (issue 11).

A source scan (the stdlib ``ast``, no import of the code) finds each function that writes:
``session.add/add_all/delete/merge``, SQLAlchemy ``insert/update/delete`` (and
``insert_unless_present``), or an assignment to a loaded ``row``'s attribute. Each must be
listed below, either as a change of who may do what, with the only functions allowed to call
it (each one the *effect* of an audit entry, or a relay to one), or with the reason it is not
such a change. A new write, or a new caller of an audited write, fails here until classified.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

GATEWAY = Path(__file__).resolve().parents[2] / "gateway"
SESSION_WRITES = {"add", "add_all", "delete", "merge"}
SQL_WRITES = {
    "update", "insert", "delete", "insert_unless_present", "insert_or_add", "insert_or_replace",
    "stage", "staged_delete",
}  # fmt: skip
DIALECTS = {"postgresql", "sqlite"}
#: The dialects' INSERTs imported under a name of their own, often chosen by a conditional
#: (``insert_ = pg_insert if ... else sqlite_insert``): any use of the name is a write.
DIALECT_INSERTS = {"pg_insert", "sqlite_insert"}

#: Writes that change who may do what, and the only functions that may call them.
AUDITED: dict[str, set[str]] = {
    # Agreements: each transition is the effect of its agreement-changed entry.
    "agreements/repository.py:add": {"agreements/service.py:_insert.change"},
    "agreements/repository.py:move": {"agreements/service.py:AgreementService._transition.change"},
    "agreements/service.py:AgreementService._after": {
        "agreements/service.py:AgreementService._transition.change"
    },
    "agreements/repository.py:hold": {"agreements/service.py:AgreementService._after"},
    "agreements/repository.py:release": {"agreements/service.py:AgreementService._after"},
    # Token revocation and token keys: the effects of their admin-change entries.
    "oauth/repository.py:revoke": {
        "oauth/service.py:OAuthService.revoke.change",
        "dsp/transfer.py:TransferService._commit.change",  # a transfer's token, with its entry
    },
    # DSP negotiations and transfers (issue 14): each state change is the effect of its
    # agreement-changed (or token-issued) entry.
    "dsp/repository.py:add": {"dsp/negotiation.py:NegotiationService._start.change"},
    "dsp/consumer_repository.py:add": {"dsp/consumer.py:ConsumerBase._add.change"},
    "dsp/consumer_repository.py:move": {"dsp/consumer.py:ConsumerBase._move.change"},
    "dsp/repository.py:move": {"dsp/negotiation.py:NegotiationService._move.change"},
    "dsp/transfer.py:TransferService.request.change": set(),  # the effect itself
    "dsp/transfer_repository.py:move": {"dsp/transfer.py:TransferService._commit.change"},
    "oauth/keyring.py:KeyRing._record.change": set(),  # the effect itself (KeyRing.start)
    # The registry: the effects AdminChanges passes to its entries. ParticipantService and
    # ClientService also call them in their own transactions, for seeding and tests only:
    # test_admin_changes.test_no_entry_point_calls_an_unaudited_mutator keeps them there.
    "participants/service.py:create_participant": {
        "admin/service.py:AdminChanges.create_participant",
        "participants/service.py:ParticipantService.create",
    },
    "participants/service.py:update_participant": {
        "admin/service.py:AdminChanges.update_participant",
        "participants/service.py:ParticipantService.update",
    },
    "participants/repository.py:add": {"participants/service.py:create_participant"},
    "oauth/clients.py:create_client": {
        "admin/service.py:AdminChanges.create_client",
        "oauth/clients.py:ClientService.create",
    },
    "oauth/clients.py:update_client": {
        "admin/service.py:AdminChanges.update_client",
        "oauth/clients.py:ClientService.update",
    },
    "datasets/service.py:store_dataset": {
        "admin/service.py:AdminChanges.register_dataset",
        "datasets/service.py:DatasetService.register",
    },
}

#: Writes that do not change who may do what, and why.
NOT_A_CHANGE = {
    "agreements/service.py:_decide": "fills in the new row that the request's effect inserts",
    "agreements/usage.py:start": "usage state (what was used), not permission; begun in an "
    "agreement's effect, or repaired by the exchange when missing",
    "agreements/usage.py:spend": "usage state: a use spent by a permitted access-decision",
    "agreements/usage.py:_spend_statement": "builds spend's conditional UPDATE (run by spend)",
    "agreements/usage.py:prune": "usage state: rate buckets and use rows no window of the "
    "policy can read any more, deleted in a spend's transaction (use counts are kept)",
    "agreements/privacy.py:spend": "usage state: the epsilon a permitted private query spent, "
    "with its use (recorded in the access-decision entry)",
    "audit/repository.py:lock_sequencer": "the audit log's own sequencer",
    "audit/repository.py:grow": "the audit log's own head",
    "audit/repository.py:_checkpoint_insert": "builds add_checkpoint's INSERT: the audit log's "
    "own signed checkpoints (the log itself, not a change of who may do what)",
    "audit/repository.py:add_identity": "the audit log's own identity (origin, first key), "
    "stored once when the log begins; a later key change is a hand-over, itself an entry",
    "audit/repository.py:insert_batch": "the audit log's entries and Merkle nodes",
    "audit/log.py:stage": "a helper: rows an effect stages (its callers are classified)",
    "audit/repository.py:write_rows": "writes the rows a batch's effects staged (their "
    "callers, stage's and staged_delete's, are classified) in the batch's transaction",
    "audit/repository.py:_deleting": "builds write_rows' DELETE (run by write_rows)",
    "audit/repository.py:hand_over": "the audit log's own signing key: the hand-over is "
    "committed with its key-rotation entry (gateway/audit/rotation.py)",
    "audit/repository.py:replace_note": "more signatures (a cosignature) over the same "
    "checkpoint: the tree and its entries do not change",
    "ratelimit/counters.py:DatabaseCounters.hit": "rate-limit counters: traffic, not who may "
    "do what (refusals over the limit are summarised in the log)",
    "oauth/repository.py:spend_assertion": "replay protection: a client assertion's jti is "
    "spent once (the token-issued entry records the issue)",
    "oauth/repository.py:purge_revoked": "forgets revocations of tokens that no longer "
    "verify anyway (expired past the leeway)",
    "oauth/repository.py:remember_certificate": "the certificate an issued token is bound to, "
    "kept for introspection (the token-issued entry records the issue)",
    "registry.py:_before_commit": "the registry's version counter, incremented inside the "
    "transaction of a change that is itself classified here",
    "storage/sql.py:_insert_on": "a helper (the dialect's INSERT ... ON CONFLICT for insert_unless_"
    "present, insert_or_add, insert_or_replace): their callers are classified",
    "exchange/repository.py:seen": "a gateway process says it is alive: no change of who may "
    "do what (the interruptions it leads to, for processes that stop, are audited)",
    "exchange/repository.py:forget_instances": "forgets the liveness rows of processes gone "
    "for good, once their open exchanges were recorded as interrupted",
    "exchange/repository.py:open_exchange": "bookkeeping of a permitted exchange, written "
    "in its access-decision entry's transaction (the effect)",
    "exchange/repository.py:close_exchange": "bookkeeping: the exchange ended, in its "
    "completion (or interruption) entry's transaction",
    "exchange/repository.py:end_exchange": "bookkeeping: the exchange ended, staged with "
    "its completion entry's batch",
    "dsp/consumer_repository.py:set_provider_pid": "a consumer-side process learns the "
    "provider's id for it (from the provider's answer or first callback): bookkeeping of a "
    "process whose requests and moves are audited, not a change of who may do what",
    "dsp/outbox_repository.py:add": "a DSP message to a consumer, stored in the transaction "
    "of the negotiation or transfer change (and its entry) it announces",
    "dsp/outbox_repository.py:claim": "delivery bookkeeping: a lease on a stored message",
    "dsp/outbox_repository.py:purge": "forgets messages delivered or given up a week ago",
    "dsp/outbox_repository.py:finish": "delivery bookkeeping (delivered, next round); a "
    "give-up is the effect of its dsp-callback-given-up entry",
}


def _modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(GATEWAY.rglob("*.py")):
        if "migrations" not in path.parts:  # the schema, not who may do what
            yield path.relative_to(GATEWAY).as_posix(), ast.parse(path.read_text("utf-8"))


def _functions(tree: ast.AST, prefix: str = "") -> Iterator[tuple[str, list[ast.stmt]]]:
    """(qualified name, own statements without nested definitions) of every function."""
    nested = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield prefix + node.name, [n for n in node.body if not isinstance(n, nested)]
            yield from _functions(node, f"{prefix}{node.name}.")
        elif isinstance(node, ast.ClassDef):
            yield from _functions(node, f"{prefix}{node.name}.")


def _is_write(node: ast.AST) -> bool:
    if isinstance(node, ast.Name) and node.id in DIALECT_INSERTS:
        return True
    if isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Name):
            return func.id in SQL_WRITES
        if isinstance(func, ast.Attribute):
            owner = ast.unparse(func.value)
            return (func.attr in SESSION_WRITES and "session" in owner) or (
                func.attr in SQL_WRITES and owner in DIALECTS
            )
    if isinstance(node, ast.Assign | ast.AugAssign):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        flat = [e for t in targets for e in (t.elts if isinstance(t, ast.Tuple) else [t])]
        return any(
            isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "row"
            for t in flat
        )
    return False


def _statements(tree: ast.Module) -> set[str]:
    """Module-level names bound to a write built once (``_CLOSE = delete(...)``)."""
    return {
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None
        if any(_is_write(inner) for inner in ast.walk(node.value))
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name)
    }


def _writers() -> set[str]:
    """Functions whose own statements write, or use a write built at module level."""
    found = set()
    for module, tree in _modules():
        built = _statements(tree)
        for name, body in _functions(tree):
            nodes = [node for statement in body for node in ast.walk(statement)]
            if any(_is_write(n) or (isinstance(n, ast.Name) and n.id in built) for n in nodes):
                found.add(f"{module}:{name}")
    return found


def test_a_write_built_at_module_level_counts_for_the_function_that_runs_it() -> None:
    tree = ast.parse(
        "_CLOSE = delete(table).where(table.c.id == 1)\n"
        "async def close(session):\n    await session.execute(_CLOSE)\n"
        "async def read(session):\n    await session.execute(select(table))\n"
    )
    assert _statements(tree) == {"_CLOSE"}
    assert "exchange/repository.py:close_exchange" in _writers()


def test_a_dialect_insert_chosen_by_a_condition_is_a_write() -> None:
    """``insert_ = pg_insert if ... else sqlite_insert`` writes wherever it is called."""
    code = "def f(s):\n    insert_ = pg_insert if s else sqlite_insert\n    return insert_(t)\n"
    assert any(_is_write(node) for node in ast.walk(ast.parse(code)))
    assert "audit/repository.py:add_identity" in _writers()


def _imports(module: str, tree: ast.Module) -> dict[str, str]:
    """Local name -> module file (``x/y.py``) or function key (``x/y.py:f``)."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("gateway."):
            package = (node.module or "").removeprefix("gateway.").replace(".", "/")
            for alias in node.names:
                local = alias.asname or alias.name
                if (GATEWAY / package / f"{alias.name}.py").exists():
                    names[local] = f"{package}/{alias.name}.py"
                else:
                    names[local] = f"{package}.py:{alias.name}"
    names.setdefault("__module__", module)
    return names


def _callee(call: ast.Call, module: str, cls: str | None, names: dict[str, str]) -> str | None:
    func = call.func
    if isinstance(func, ast.Name):
        return names.get(func.id, f"{module}:{func.id}")
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        owner = func.value.id
        if owner == "self" and cls is not None:
            return f"{module}:{cls}.{func.attr}"
        if owner in names and names[owner].endswith(".py"):
            return f"{names[owner]}:{func.attr}"
    return None


def _callers() -> dict[str, set[str]]:
    """Function key -> the functions (qualified names) whose own statements call it."""
    found: dict[str, set[str]] = {}
    for module, tree in _modules():
        names = _imports(module, tree)
        for name, body in _functions(tree):
            parts = name.split(".")
            cls = parts[0] if len(parts) > 1 and parts[0][:1].isupper() else None
            for statement in body:
                for node in ast.walk(statement):
                    if isinstance(node, ast.Call):
                        callee = _callee(node, module, cls, names)
                        if callee is not None:
                            found.setdefault(callee, set()).add(f"{module}:{name}")
    return found


def test_every_write_is_audited_or_says_why_not() -> None:
    assert not AUDITED.keys() & NOT_A_CHANGE.keys()
    writers = _writers()
    unclassified = writers - AUDITED.keys() - NOT_A_CHANGE.keys()
    assert not unclassified, "classify each new write: audited (AUDITED) or why not"
    relays = {key for key in AUDITED if any(key in allowed for allowed in AUDITED.values())}
    stale = (AUDITED.keys() | NOT_A_CHANGE.keys()) - writers - relays
    assert not stale, "remove what no longer writes"


def test_audited_writes_are_called_only_from_their_effects() -> None:
    callers = _callers()
    for key, allowed in AUDITED.items():
        assert callers.get(key, set()) == allowed, key


def test_the_scan_sees_a_new_unaudited_write() -> None:
    """The scan's own check: a write added outside the lists is found."""
    tree = ast.parse(
        "async def sneaky(session):\n    session.add(Row())\n"
        "def quiet(row):\n    row.status = 'active'\n"
        "async def fine(session):\n    await session.get(Row, 1)\n"
    )
    found = {
        name for name, body in _functions(tree) for s in body for n in ast.walk(s) if _is_write(n)
    }
    assert found == {"sneaky", "quiet"}
