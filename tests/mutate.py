"""``make mutate``: broad mutation testing of the security core with mutmut (issue 18).

Not part of ``make test``: it takes long and reads no verdict of its own. The named guarantee
mutants (``tests/mutants``) are the check that runs every time; this explores.

Each module of :data:`MODULES` is mutated on its own, in a scratch copy of the tree
(``$SLUIS_MUTATE_DIR``, default ``<tmp>/sluis-mutate/<module>``), and its mutants run against
that module's own tests only (mutmut then narrows each mutant to the tests that reach the
mutated function). mutmut runs with one worker: the machine is shared. At the end a table
per module: killed, survived, timeouts, mutants no test reached, and the score (killed and
timeouts over all mutants the tests reach).

    python -m tests.mutate                    # every module, most security-relevant first
    python -m tests.mutate gateway/auth       # one (or a few)
    python -m tests.mutate --list
    python -m tests.mutate --survivors gateway/auth   # the last run's survivors
    python -m tests.mutate --again gateway/auth       # rerun them, "no tests" and timeouts
    python -m tests.mutate --functions _entry,ExchangeService.__init__ gateway/exchange/service

``--functions`` runs (and with ``--again`` reruns) only the mutants of the named functions:
``name`` is a module-level function or a method of any class, ``Class.name`` one class's
method. The other mutants of the module stay "not checked" and out of the table.

docs/testing.md#mutation-score reports the last run and explains each survivor left.
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRATCH = Path(os.environ.get("SLUIS_MUTATE_DIR", Path(tempfile.gettempdir()) / "sluis-mutate"))
PACKAGES = ("gateway", "policies", "connectors", "certs")
COPY_IGNORE = shutil.ignore_patterns(
    ".venv", ".git", "mutants", ".mypy_cache", ".ruff_cache", ".pytest_cache", "__pycache__",
    ".sluis", "*.egg-info", "node_modules",
)  # fmt: skip


@dataclass(frozen=True)
class Module:
    """Files to mutate (globs under the repository) and the tests that defend them."""

    name: str
    mutate: tuple[str, ...]
    tests: tuple[str, ...]
    args: tuple[str, ...] = ()  # more pytest arguments (``-k``), for this module's runs only
    # mutmut's CPU-time limit per mutant is (tests' duration + 1 s) x this x 2; the tests'
    # duration is of their calls only, so tests with costly fixtures need a larger factor.
    timeout_multiplier: float = 2.0


# Most security-relevant first: token checks, the audit log's proofs, the policy engine.
MODULES = (
    # gateway/auth, its pure tests only: test_token_windows.py runs each case on SQLite and
    # PostgreSQL (seconds per mutant); the named mutants cover what it defends.
    Module(
        "gateway/auth/tokens+jose",
        ("gateway/auth/tokens.py", "gateway/auth/jose.py"),
        (
            "tests/gateway/test_tokens.py",
            "tests/gateway/test_token_algorithms.py",
            "tests/gateway/test_token_claims.py",
            "tests/gateway/test_jose_inputs.py",
        ),
    ),
    Module(
        "gateway/auth/assertions+windows",
        ("gateway/auth/assertions.py", "gateway/auth/windows.py"),
        ("tests/gateway/test_assertions.py", "tests/gateway/test_assertion_refusals.py"),
    ),
    Module(
        "gateway/audit/merkle",
        ("gateway/audit/merkle.py",),
        (
            "tests/audit/test_merkle_vectors.py",
            "tests/audit/test_merkle_attacks.py",
            "tests/audit/test_merkle_probes.py",
        ),
    ),
    # The offline verifier, against its pure tests: logs built in memory. The hand-over and
    # truncation tests run a log on SQLite (and PostgreSQL), seconds a mutant on a shared
    # machine; the score is measured without them, so it can only be lower.
    Module(
        "gateway/audit/verify",
        ("gateway/audit/verify.py",),
        ("tests/audit/test_verify_offline.py",),
    ),
    Module(
        "gateway/audit/checkpoint+note",
        ("gateway/audit/checkpoint.py", "gateway/audit/note.py"),
        (
            "tests/audit/test_checkpoint.py",
            "tests/audit/test_note.py",
            "tests/audit/test_note_refusals.py",
        ),
    ),
    # The rest of gateway/audit in parts, the tamper-evidence core first. What an entry is:
    # its canonical bytes (RFC 8785), redaction of secret lookalikes, the token digest, the
    # strict base64 of notes and checkpoints; against the pure tests (test_entry_sort.py
    # and test_writer_rows.py write entries to a database, seconds a mutant).
    Module(
        "gateway/audit/entry+jcs+encoding",
        ("gateway/audit/entry.py", "gateway/audit/jcs.py", "gateway/audit/encoding.py"),
        (
            "tests/audit/test_entry.py",
            "tests/audit/test_note.py",
            "tests/audit/test_note_refusals.py",
            "tests/audit/test_checkpoint.py",
            "tests/audit/test_verify_offline.py",
        ),
    ),
    # The signing keys: key strings, a rotation (a log on SQLite per test), and a checkpoint
    # held against an export (truncation). test_handover.py and test_truncation.py run on
    # SQLite only here (PostgreSQL doubles the set-up per mutant).
    Module(
        "gateway/audit/keys+rotation+anchor",
        ("gateway/audit/keys.py", "gateway/audit/rotation.py", "gateway/audit/anchor.py"),
        (
            "tests/audit/test_note.py",
            "tests/audit/test_note_refusals.py",
            "tests/audit/test_checkpoint.py",
            "tests/audit/test_verify_offline.py",
            "tests/audit/test_handover.py",
            "tests/audit/test_truncation.py",
            "tests/audit/test_anchor.py",
        ),
        ("-k", "not postgresql"),
        timeout_multiplier=8.0,
    ),
    # What officers export and verify: the bundle (zip) and its reader, the export
    # formats, the compact range (frontier, proof plans) and the key hand-overs followed,
    # against their pure tests. The database tests (test_handover.py, test_export_api.py,
    # tests/audit/test_cli.py) reach the Frontier through every append: a first run with
    # them did 353 of 609 mutants in 25 minutes under load (load 13-15), so the score is
    # measured without them, and can only be lower. The officer's end-to-end tests
    # (tests/gateway/test_audit_bundle_cli.py, test_audit_officer_export.py) start a gateway.
    Module(
        "gateway/audit/bundle+export+compact+handover",
        (
            "gateway/audit/bundle.py",
            "gateway/audit/export.py",
            "gateway/audit/compact.py",
            "gateway/audit/handover.py",
        ),
        (
            "tests/audit/test_compact.py",
            "tests/audit/test_verify_offline.py",
            "tests/audit/test_anchor.py",
            "tests/audit/test_bundle.py",
            "tests/audit/test_export_formats.py",
        ),
    ),
    # The group commit and its SQL, against the log's tests on SQLite; the hand-over, the
    # officer's API (filters, sorting, paging) and the export reach the rest. PostgreSQL's
    # own path (``execute_one`` past SQLite's) is then reached by no test here.
    Module(
        "gateway/audit/log+repository",
        ("gateway/audit/log.py", "gateway/audit/repository.py"),
        (
            "tests/audit/test_log.py",
            "tests/audit/test_log_effects.py",
            "tests/audit/test_batch_checkpoint.py",
            "tests/audit/test_writer_rows.py",
            "tests/audit/test_handover.py",
            "tests/audit/test_endpoints.py",
            "tests/audit/test_console_api.py",
            "tests/audit/test_export_api.py",
        ),
        ("-k", "not postgresql"),
        timeout_multiplier=8.0,
    ),
    # The log's identity (origin and key, reconciled with the settings at start), the
    # entries API's keyset cursors, the export read a page at a time and the values the
    # log hands out; against the tests that reach them on SQLite: the hand-over and wiring
    # tests (a log's identity), the export API and the sorted listing (cursors). The
    # gateway-level identity tests (tests/gateway/test_audit_identity.py) start a gateway.
    Module(
        "gateway/audit/identity+cursor+streams+records",
        (
            "gateway/audit/identity.py",
            "gateway/audit/cursor.py",
            "gateway/audit/streams.py",
            "gateway/audit/records.py",
        ),
        (
            "tests/audit/test_handover.py",
            "tests/audit/test_wiring.py",
            "tests/audit/test_export_api.py",
            "tests/audit/test_entry_sort.py",
            "tests/audit/test_identity.py",
            "tests/audit/test_cursor.py",
            "tests/audit/test_streams.py",
        ),
        ("-k", "not postgresql"),
        timeout_multiplier=8.0,
    ),
    # The audit log's HTTP glue: the officer's /v1/audit/* API (filters, paging, sorting,
    # proofs, counts), the export endpoint, their bodies and the log built from settings;
    # the real routers in a small app over a log on SQLite, the role check overridden.
    # test_audit_http.py, test_audit_officer_export.py and the console tests run the same
    # through a whole gateway (seconds a mutant), and are left out. mutmut mutates neither
    # decorated functions (every route handler: all of export_api.py) nor class bodies and
    # module constants (the parameters' bounds): those were mutated by hand (docs/testing.md).
    Module(
        "gateway/audit/endpoints+export_api+schemas+wiring",
        (
            "gateway/audit/endpoints.py",
            "gateway/audit/export_api.py",
            "gateway/audit/schemas.py",
            "gateway/audit/wiring.py",
        ),
        (
            "tests/audit/test_endpoints.py",
            "tests/audit/test_console_api.py",
            "tests/audit/test_entry_sort.py",
            "tests/audit/test_export_api.py",
            "tests/audit/test_wiring.py",
            "tests/audit/test_audit_api_bounds.py",
        ),
        ("-k", "not postgresql"),
        timeout_multiplier=8.0,
    ),
    # The same in two parts, scored apart: the combined one did not finish in one run. The
    # group commit alone, against the log's tests on SQLite and the hand-over (the stale
    # key's checkpoints, which log.py refuses to store or serve); test_log_exact.py was
    # written from the combined run's survivors before this part's first run.
    # The audit error family (its code, detail and message) and the package's exports.
    Module(
        "gateway/audit/errors",
        ("gateway/audit/errors.py", "gateway/audit/__init__.py"),
        (
            "tests/audit/test_errors.py",
            "tests/audit/test_entry.py",
            "tests/audit/test_note_refusals.py",
            "tests/audit/test_verify_offline.py",
        ),
    ),
    Module(
        "gateway/audit/log",
        ("gateway/audit/log.py",),
        (
            "tests/audit/test_log.py",
            "tests/audit/test_log_effects.py",
            "tests/audit/test_batch_checkpoint.py",
            "tests/audit/test_writer_rows.py",
            "tests/audit/test_handover.py",
            "tests/audit/test_log_exact.py",
        ),
        ("-k", "not postgresql"),
        # Not 8: a mutant that stops the writer leaves an append waiting for ever, and its
        # tests' 22 s estimate times 8 was three minutes of wall time per such mutant.
        timeout_multiplier=2.0,
    ),
    # repository.py alone (the officer's queries, hand-over, checkpoints), on SQLite.
    Module(
        "gateway/audit/repository",
        ("gateway/audit/repository.py",),
        (
            "tests/audit/test_log.py",
            "tests/audit/test_writer_rows.py",
            "tests/audit/test_handover.py",
            "tests/audit/test_endpoints.py",
            "tests/audit/test_console_api.py",
            "tests/audit/test_export_api.py",
            "tests/audit/test_entry_sort.py",
            "tests/audit/test_log_effects.py",
            "tests/audit/test_batch_checkpoint.py",
            "tests/audit/test_repository.py",
            "tests/console/test_charts.py",
        ),
        ("-k", "not postgresql"),
        timeout_multiplier=8.0,
    ),
    # Its PostgreSQL-only path (run with --functions): the unnest insert, execute_one.
    Module(
        "gateway/audit/repository (PostgreSQL)",
        ("gateway/audit/repository.py",),
        (
            "tests/audit/test_log.py",
            "tests/audit/test_writer_rows.py",
            "tests/audit/test_log_effects.py",
            "tests/audit/test_batch_checkpoint.py",
            "tests/audit/test_repository.py",
        ),
        ("-k", "postgresql"),
        timeout_multiplier=8.0,
    ),
    # Every file of policies/ is now in one of the parts below; the whole package at once
    # (3,800 lines against all of tests/policies) is hours at one worker and was not run.
    Module("policies", ("policies/*.py", "policies/operands/*.py"), ("tests/policies",)),
    # policies/ in parts, the decision first: all of it (3,800 lines) against all of
    # tests/policies is hours at one worker, since nearly every test reaches the engine.
    # test_compiled.py (34 s a run: every conformance case compared with the reference
    # engine) is left out of the parts: its only own target is ``evaluate_reference``,
    # the oracle, which is then "no tests" here.
    Module(
        "policies/engine+compiled",
        ("policies/engine.py", "policies/compiled.py"),
        (
            "tests/policies/test_decide.py",
            "tests/policies/test_refusal.py",
            "tests/policies/test_conformance.py",
            "tests/policies/test_properties.py",
        ),
    ),
    Module(
        "policies/limits+operands",
        (
            "policies/limits.py",
            "policies/operands/data.py",
            "policies/operands/privacy.py",
            "policies/operands/temporal.py",
            "policies/operands/parties.py",
        ),
        (
            "tests/policies/test_operand_limits.py",
            "tests/policies/test_privacy_terms.py",
            "tests/policies/test_sluis_profile.py",
            "tests/policies/test_operands.py",
            "tests/policies/test_bounds.py",
        ),
    ),
    Module(
        "policies/rules+operators",
        ("policies/rules.py", "policies/operators.py"),
        (
            "tests/policies/test_decide.py",
            "tests/policies/test_operators.py",
            "tests/policies/test_operands.py",
            "tests/policies/test_refusal.py",
            "tests/policies/test_conformance.py",
        ),
    ),
    # The YAML parser and validator: the refusals of a malformed or unknown policy file,
    # with their line, against the test files that parse policies (10 to 16 s a run).
    Module(
        "policies/yaml",
        ("policies/yaml_policy.py", "policies/yaml_source.py", "policies/yaml_schema.py"),
        (
            "tests/policies/test_strict_yaml.py",
            "tests/policies/test_sluis_profile.py",
            "tests/policies/test_operands.py",
            "tests/policies/test_privacy_terms.py",
            "tests/policies/test_yaml_exact.py",
        ),
    ),
    # The RDF/JSON-LD reader in two parts (730 mutants together, over an hour at one worker
    # under load): the graph to the model (rules, what a rule inherits, RDF lists, actions,
    # constraints), then the terms it refuses to drop, literals to values and the documents
    # (Turtle, JSON-LD, embedded contexts). Against the test files that parse Turtle or
    # JSON-LD (3 s a run together); test_rdf_exact.py was written before their first run.
    Module(
        "policies/rdf_policy",
        ("policies/rdf_policy.py",),
        (
            "tests/policies/test_rdf_exact.py",
            "tests/policies/test_strict_rdf.py",
            "tests/policies/test_sluis_profile.py",
            "tests/policies/test_conformance.py",
            "tests/policies/test_examples_horizon.py",
        ),
    ),
    Module(
        "policies/rdf_terms+values+documents",
        (
            "policies/rdf_terms.py",
            "policies/rdf_values.py",
            "policies/documents.py",
            "policies/jsonld_contexts.py",
        ),
        (
            "tests/policies/test_rdf_exact.py",
            "tests/policies/test_strict_rdf.py",
            "tests/policies/test_sluis_profile.py",
            "tests/policies/test_conformance.py",
            "tests/policies/test_examples_horizon.py",
        ),
    ),
    # Validation on write (the profile's terms, each left operand's usable right operands)
    # and the canonical form a policy's hash is taken of.
    Module(
        "policies/profile+right_operands+canonical",
        ("policies/profile.py", "policies/right_operands.py", "policies/canonical.py"),
        (
            "tests/policies/test_yaml_exact.py",
            "tests/policies/test_strict_rdf.py",
            "tests/policies/test_sluis_profile.py",
            "tests/policies/test_privacy_terms.py",
            "tests/policies/test_strict_yaml.py",
            "tests/policies/test_validation_exact.py",
        ),
    ),
    # The world of a policy test or conformance case: parties, collections, the request and
    # the state built from them, the W3C evaluation request, the target check and policy
    # tests (785 mutants: 19 minutes at one worker under load 7-13).
    Module(
        "policies/world+request",
        (
            "policies/world.py",
            "policies/request.py",
            "policies/w3c_request.py",
            "policies/targets.py",
            "policies/policy_tests.py",
        ),
        (
            "tests/policies/test_conformance.py",
            "tests/policies/test_yaml_exact.py",
            "tests/policies/test_operators.py",
            "tests/policies/test_strict_yaml.py",
            "tests/policies/test_sluis_profile.py",
            "tests/policies/test_world_exact.py",
        ),
    ),
    # The use limit's cap (the conditional increment the exchange spends a use with), what
    # a refused consumer is told, and the left operands a request declares about itself.
    Module(
        "policies/bounds+refusal+context",
        ("policies/bounds.py", "policies/refusal.py", "policies/operands/context.py"),
        (
            "tests/policies/test_bounds.py",
            "tests/policies/test_refusal.py",
            "tests/policies/test_operands.py",
            "tests/policies/test_sluis_profile.py",
            "tests/policies/test_bounds_refusal_exact.py",
        ),
    ),
    # What every other part builds on: the model, its error family (codes, line, column and
    # key), the decision and its written report (``explain``), the vocabulary (the action
    # hierarchy, short names) and the operand registry; against the test files that decide,
    # refuse, explain and report errors (a second or two a run; every part's tests reach
    # these files, none mutated them).
    Module(
        "policies/decision+model+vocab",
        (
            "policies/decision.py",
            "policies/errors.py",
            "policies/explain.py",
            "policies/model.py",
            "policies/vocab.py",
            "policies/__init__.py",
            "policies/operands/__init__.py",
            "policies/operands/registry.py",
        ),
        (
            "tests/policies/test_decide.py",
            "tests/policies/test_refusal.py",
            "tests/policies/test_operands.py",
            "tests/policies/test_sluis_profile.py",
            "tests/policies/test_privacy_terms.py",
            "tests/policies/test_strict_yaml.py",
            "tests/policies/test_yaml_exact.py",
            "tests/policies/test_validation_exact.py",
            "tests/policies/test_decision_exact.py",
        ),
    ),
    Module("certs", ("certs/*.py",), ("tests/certs",)),
    # The error family every certs refusal is raised as (its code, detail and message) and the
    # package's exports, against the pure tests that read codes and details.
    Module(
        "certs/errors",
        ("certs/errors.py", "certs/__init__.py"),
        (
            "tests/certs/test_certs_store_exact.py",
            "tests/certs/test_certs_issue_exact.py",
            "tests/certs/test_certs_profile_exact.py",
            "tests/certs/test_certs_verify.py",
            "tests/certs/test_certs_errors.py",
        ),
    ),
    # The part of certs/ a handshake runs (path validation, revocation, the checks of one
    # certificate), against its two fast test files: a first score while all of certs/
    # (1,800 lines) waits for a quieter machine.
    Module(
        "certs/path+verify+revocation",
        ("certs/path.py", "certs/verify.py", "certs/revocation.py"),
        (
            "tests/certs/test_certs_verify.py",
            "tests/certs/test_certs_verify_path.py",
            "tests/certs/test_certs_revocation.py",
        ),
    ),
    # The rest of certs/ in two parts, each against the few test files that reach it (all of
    # tests/certs is 15 s a run; the CLI and property tests are the slow ones). Issuance and
    # the CRLs: what a CA signs. certs/signing.py is left out: its tests are the iSHARE
    # assertion tests in tests/gateway (RSA keys made per module).
    Module(
        "certs/issue+crl",
        ("certs/issue.py", "certs/crl.py", "certs/crl_refresh.py", "certs/extensions.py"),
        (
            "tests/certs/test_certs_issue.py",
            "tests/certs/test_crl_refresh.py",
            "tests/certs/test_cert_manager_ca.py",
            "tests/certs/test_certs_revocation.py",
            "tests/certs/test_certs_issue_exact.py",
        ),
    ),
    # The profile every certificate on a path is checked against, and the signing-leaf
    # profile of iSHARE client assertions: against the path tests and two test files that
    # hand each check its certificate (EC keys). A first run against the iSHARE assertion
    # tests too (tests/gateway, RSA keys made in module fixtures) did 114 of 247 mutants in
    # 12 minutes under load 10-12 (the signature-algorithm check's mutants 40 s each).
    Module(
        "certs/signing+profile",
        ("certs/signing.py", "certs/profile.py"),
        (
            "tests/certs/test_certs_verify.py",
            "tests/certs/test_certs_verify_path.py",
            "tests/certs/test_certs_revocation.py",
            "tests/certs/test_certs_signing.py",
            "tests/certs/test_certs_profile_exact.py",
        ),
        timeout_multiplier=8.0,
    ),
    # The CA directory and what reads participants: the files, keys, ledger, CSRs and trust
    # bundles the directory keeps, and the identity a certificate names.
    Module(
        "certs/store+identity",
        (
            "certs/store.py",
            "certs/identity.py",
            "certs/files.py",
            "certs/keys.py",
            "certs/index.py",
            "certs/csr.py",
            "certs/trust.py",
        ),
        (
            "tests/certs/test_certs_store.py",
            "tests/certs/test_certs_identity.py",
            "tests/certs/test_ca_key_mounts.py",
            "tests/certs/test_certs_issue.py",
            "tests/certs/test_certs_key_files.py",
            "tests/certs/test_certs_store_exact.py",
        ),
        # Most tests here make a CA directory (keys, files) in a function-scoped fixture,
        # which mutmut's per-test estimate does not see: at 2.0, under load, mutants that
        # survive (and equivalent ones) were reported as timeouts.
        timeout_multiplier=8.0,
    ),
    # The guards' own tests, not all of tests/connectors (SQL, memory and spill tests reach
    # neither file, and a first run over them costs minutes on a shared machine).
    Module(
        "connectors guards",
        ("connectors/http_guard.py", "connectors/paths.py"),
        (
            "tests/connectors/test_http_guard.py",
            "tests/connectors/test_paths.py",
            "tests/connectors/test_http.py",
            "tests/connectors/test_http_hostile.py",
            "tests/connectors/test_files.py",
            "tests/connectors/test_files_hostile.py",
        ),
    ),
    # The audited exchange, against its in-process tests on SQLite (the service called with
    # a real database, audit log and loopback upstream, no HTTP in front; one set-up per
    # run, copied per test). The end-to-end tests (a gateway over mTLS per test module, TLS
    # upstreams) cost seconds of set-up per mutant that mutmut's time limit does not see,
    # so under load every mutant they reached timed out: left out, as is
    # test_write_path.py (a migration per test, seconds per surviving mutant; its
    # guarantees, the use counter across replicas, are named mutants in tests/mutants).
    Module(
        "gateway/exchange/service",
        ("gateway/exchange/service.py",),
        ("tests/gateway/test_exchange_service.py", "tests/gateway/test_stream_end.py"),
        ("-k", "not postgresql"),
        timeout_multiplier=8.0,
    ),
    Module(
        "gateway/exchange/private+input+repository",
        (
            "gateway/exchange/private.py",
            "gateway/exchange/policy_input.py",
            "gateway/exchange/repository.py",
        ),
        (
            "tests/gateway/test_exchange_service.py",
            "tests/gateway/test_policy_state.py",
            "tests/gateway/test_write_path.py",
        ),
        ("-k", "not postgresql and not kill_9 and not statements_per_request"),
        timeout_multiplier=8.0,
    ),
    # The exchange's HTTP layer: the query from JSON or URL parameters, the receipt's
    # headers, the stream, the pass-through; the real router in a small app, the bearer
    # check overridden and the service a recording stand-in answering with real Outcome
    # and Rest objects. test_exchange.py runs the same over mTLS.
    # The data route's fast path (issue 10): which requests it takes instead of the declared
    # route (differential: the same query strings through both) and the dependencies it
    # resolves by hand, in FastAPI's order.
    Module(
        "gateway/exchange/fast_data",
        ("gateway/exchange/fast_data.py",),
        ("tests/gateway/test_fast_data.py",),
    ),
    Module(
        "gateway/exchange/endpoints+schemas",
        ("gateway/exchange/endpoints.py", "gateway/exchange/schemas.py"),
        ("tests/gateway/test_exchange_endpoints.py", "tests/gateway/test_exchange_schemas.py"),
        timeout_multiplier=8.0,
    ),
    # gateway/http in parts, the security-relevant ones first, each against the tests that
    # reach it. Most gateway/http tests start a real gateway (seconds a mutant on a shared
    # machine, and mutmut's CPU-time limit does not see a module fixture's start-up), so
    # each part names the few that defend it. Proxy trust: who may vouch for a client
    # certificate, and how the forwarded headers are read, against the pure tests (the
    # middleware handed ASGI scopes). The same over real sockets, test_proxy_trust.py and
    # test_proxy_mode.py, start two gateways each (SQLite, PostgreSQL): a first run over
    # them did 37 mutants of 228 in 7 minutes here. The named mutant proxy-trust runs them.
    Module(
        "gateway/http/proxy",
        ("gateway/http/client_cert.py", "gateway/http/forwarded.py"),
        ("tests/gateway/test_forwarded.py", "tests/gateway/test_client_cert.py"),
    ),
    # The head, body and connection caps against their pure tests: the real-socket ones
    # (test_http_guard.py, test_body_limits.py) reach them through a running gateway, seconds
    # a mutant; the score is measured without them, so it can only be lower.
    Module(
        "gateway/http/limits",
        (
            "gateway/http/head_meter.py",
            "gateway/http/connection_limits.py",
            "gateway/http/limits.py",
        ),
        (
            "tests/gateway/test_head_meter.py",
            "tests/gateway/test_connection_limits.py",
            "tests/gateway/test_body_limit_middleware.py",
        ),
    ),
    # One connection's guard (timeouts, 503 over the caps, 400/408/414/431 answers) against
    # its pure test: a transport and a clock that fire when told. test_http_guard.py runs
    # the same over real sockets, with timeouts of seconds, too slow to run per mutant.
    Module(
        "gateway/http/guard",
        ("gateway/http/guard.py",),
        ("tests/gateway/test_connection_guard.py",),
    ),
    # The client certificate into the ASGI scope: a TLS handshake in memory, and both HTTP
    # parsers over real sockets.
    Module(
        "gateway/http/tls_scope",
        ("gateway/http/tls_scope.py",),
        ("tests/gateway/test_tls_scope.py", "tests/gateway/test_tls_modes.py"),
    ),
    # The handshake counted from accept and the refused handshake's alert: the accept, the
    # hand-over, and real handshakes on a loopback listener of its own (refused for an unknown
    # CA, not TLS, timed out, reset, good) in test_tls_accept.py. test_mtls.py (the whole
    # gateway) took 22 minutes a run and test_http_guard.py (handshakes counted under load)
    # longer; the named mutant handshakes-counted runs the latter.
    Module(
        "gateway/http/tls_accept",
        ("gateway/http/tls_accept.py", "gateway/http/tls_alert.py"),
        ("tests/gateway/test_tls_accept.py",),
    ),
    # Every error through the real handlers of a small FastAPI app (ASGI, no socket).
    Module(
        "gateway/http/problems",
        ("gateway/http/problems.py", "gateway/http/problem_types.py"),
        ("tests/gateway/test_problem_handlers.py", "tests/gateway/test_problem_types.py"),
    ),
    # Who the caller is: the certificate's holder cached per TLS connection, the throttle,
    # the role checks, where a bearer token may come from and its memo, the OAuth error
    # fields; through a small FastAPI app with the real dependencies and problem handlers
    # (ASGI, no socket), the verification, registry and token check recorded stand-ins.
    # test_mtls.py, test_registry_cache.py and test_oauth.py run the same over real mTLS.
    Module(
        "gateway/http/bearer+deps+oauth_errors",
        ("gateway/http/bearer.py", "gateway/http/deps.py", "gateway/http/oauth_errors.py"),
        ("tests/gateway/test_http_deps.py", "tests/gateway/test_token_memo.py"),
    ),
    # The refusal throttle in front of everything (ASGI scopes, a stand-in for the counters)
    # and the OAuth endpoints' strict form bodies (Starlette requests): test_rate_limits.py
    # and test_oauth.py reach both through a running gateway, seconds a mutant.
    Module(
        "gateway/http/throttle+forms",
        ("gateway/http/throttle.py", "gateway/http/forms.py"),
        ("tests/gateway/test_refusal_throttle.py", "tests/gateway/test_oauth_forms.py"),
    ),
    # The server certificate re-read on change (a real SSLContext, files swapped in, the
    # presented certificate read from a handshake in memory), uvicorn's protocols behind the
    # connection guard (a protocol instance on a transport of the test's, no socket), and
    # what the HTTP layer writes to the audit log (Starlette requests, the problem
    # handlers). test_cert_reload.py (a gateway per test) and test_http_guard.py (real
    # sockets, timeouts of seconds) reach the first two end to end.
    Module(
        "gateway/http/cert_reload+guarded+audit_events",
        (
            "gateway/http/cert_reload.py",
            "gateway/http/guarded.py",
            "gateway/http/audit_events.py",
        ),
        (
            "tests/gateway/test_server_certificate.py",
            "tests/gateway/test_guarded_protocol.py",
            "tests/gateway/test_http_audit_events.py",
            "tests/gateway/test_problem_handlers.py",
        ),
        # At 2.0, under load (14 on 2 cores), killed mutants (checked by hand: a test
        # failed in its first second, the run took 54 s of wall time) were timeouts.
        timeout_multiplier=8.0,
    ),
    # The probes and the health port's filter (the router in a small app, ASGI scopes), and
    # the OpenAPI document's additions on a small app of known routes. test_health_port.py
    # runs a gateway on SQLite and PostgreSQL; test_openapi.py builds the whole app.
    Module(
        "gateway/http/health+openapi",
        ("gateway/http/health.py", "gateway/http/health_port.py", "gateway/http/openapi.py"),
        ("tests/gateway/test_health_probes.py", "tests/gateway/test_openapi_document.py"),
        timeout_multiplier=8.0,
    ),
)


# In the scratch copy only: mutmut's trampolines slow every call, so hypothesis' deadlines
# would fail unmutated tests; derandomized, a mutant's verdict does not depend on luck; 25
# examples a property (of 100) keep a mutant's run short.
HYPOTHESIS_PROFILE = """

import hypothesis as _hypothesis

_hypothesis.settings.register_profile(
    "mutate", deadline=None, derandomize=True, max_examples=25
)
_hypothesis.settings.load_profile("mutate")
"""


# mutmut makes no mutants in a decorated function (but for a lone ``@staticmethod`` or
# ``@classmethod``): route handlers, policy operands registered by decorator, properties,
# validators, context managers. In the scratch copy each is written as the same function
# undecorated, the decorators applied by an assignment right after it (``f = d1(d2(f))``,
# what ``@d1 @d2 def f`` means), so mutmut wraps the function and the decorators wrap its
# trampoline. The repository's own files are never changed.
_KEPT = ("staticmethod", "classmethod")
# A cache is dropped instead: mutmut forks each mutant's run from a process that has run the
# tests unmutated, so a cached function would answer from the original's results.
_CACHES = ("lru_cache", "functools.lru_cache", "cache", "functools.cache")


def _decorator_name(decorator: ast.expr) -> str:
    return ast.unparse(decorator.func if isinstance(decorator, ast.Call) else decorator)


_Function = ast.FunctionDef | ast.AsyncFunctionDef


def _movable(function: _Function, names: list[str]) -> bool:
    decorators = [_decorator_name(d) for d in function.decorator_list]
    if not decorators or (len(decorators) == 1 and decorators[0] in _KEPT):
        return False
    if any(d.rsplit(".", 1)[-1] == "overload" for d in decorators):
        return False  # a stub: nothing to mutate, and its name is defined again below
    return names.count(function.name) == 1  # a ``@x.setter`` reuses the name: left


def _moves(
    source: str, body: list[ast.stmt], owner: str | None, moved: list[str]
) -> list[tuple[int, int, str]]:
    """Line edits ``(first, end, text)``: lines ``first`` to ``end`` (0-based, end excluded)
    replaced by ``text``; for each movable function of ``body`` and of its classes."""
    names = [s.name for s in body if isinstance(s, _Function)]
    edits: list[tuple[int, int, str]] = []
    for statement in body:
        if isinstance(statement, ast.ClassDef) and owner is None:
            edits += _moves(source, statement.body, statement.name, moved)
        if not (isinstance(statement, _Function) and _movable(statement, names)):
            continue
        line = source.splitlines()[statement.lineno - 1]  # the ``def`` line
        indent = line[: len(line) - len(line.lstrip())]
        applied = statement.name
        for decorator in reversed(statement.decorator_list):
            if _decorator_name(decorator) not in _CACHES:
                applied = f"({ast.get_source_segment(source, decorator)})({applied})"
        first = statement.decorator_list[0].lineno - 1
        edits.append((first, statement.lineno - 1, ""))  # the decorator lines go
        assert statement.end_lineno is not None
        edits.append(
            (statement.end_lineno, statement.end_lineno, f"{indent}{statement.name} = {applied}\n")
        )
        moved.append(f"{owner}.{statement.name}" if owner else statement.name)
    return edits


def undecorated(source: str) -> tuple[str, list[str]]:
    """``source`` with the decorators of its functions and methods applied by assignment
    (see above; comments and pragmas kept), and the functions so rewritten (``name`` or
    ``Class.name``)."""
    moved: list[str] = []
    edits = _moves(source, ast.parse(source).body, None, moved)
    lines = source.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    for first, end, text in sorted(edits, reverse=True):
        lines[first:end] = [text] if text else []
    return "".join(lines), moved


def prepared(module: Module) -> dict[Path, tuple[str, list[str]]]:
    """Each file ``module`` mutates (relative path), as the scratch copy holds it."""
    files = sorted({source for pattern in module.mutate for source in REPO.glob(pattern)})
    return {f.relative_to(REPO): undecorated(f.read_text(encoding="utf-8")) for f in files}


def decorated_functions(module: Module) -> tuple[str, ...]:
    """The functions of ``module``'s files that carry a decorator mutmut would skip."""
    return tuple(name for _, moved in prepared(module).values() for name in moved)


def scratch_tree(module: Module) -> Path:
    """A fresh copy of the tree for ``module``, with mutmut's settings in its pyproject."""
    target = tree_of(module)
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(REPO, target, ignore=COPY_IGNORE)
    for relative, (text, _) in prepared(module).items():
        (target / relative).write_text(text, encoding="utf-8")
    with (target / "tests" / "conftest.py").open("a", encoding="utf-8") as handle:
        handle.write(HYPOTHESIS_PROFILE)
    write_settings(target / "pyproject.toml", module)
    return target


def write_settings(pyproject: Path, module: Module) -> None:
    """The repository's pyproject with mutmut's settings for ``module`` appended."""
    settings = {
        "source_paths": list(PACKAGES),  # all copied (imports), only ``only_mutate`` mutated
        "only_mutate": list(module.mutate),
        "also_copy": ["examples", "docs", "helm", "bench", ".ci"],
        # Its own temporary root: under the shared ``pytest-of-<user>`` a cleanup racing
        # another run left pytest's own directory scan open, an unraisable ResourceWarning
        # (an error here) that failed a clean run.
        "pytest_add_cli_args": [
            "-p",
            "no:cacheprovider",
            "-q",
            f"--basetemp={tree_of(module)}-tmp",
            *module.args,
        ],
        "pytest_add_cli_args_test_selection": list(module.tests),
        "use_git_change_detection": False,
        # A mutant that loops (a split point moved the wrong way) is a timeout, not a
        # minute of CPU: mutmut's limit is (estimate + 1 s) x multiplier x 2 per mutant.
        "timeout_multiplier": module.timeout_multiplier,
    }
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8") + "\n[tool.mutmut]\n"
    text += "".join(f"{key} = {json.dumps(value)}\n" for key, value in settings.items())
    pyproject.write_text(text, encoding="utf-8")


def name_globs(functions: tuple[str, ...]) -> list[str]:
    """mutmut's mutant-name globs for ``functions`` (``name`` or ``Class.name``)."""
    globs = []
    for function in functions:
        owner, _, name = function.rpartition(".")
        if owner:
            globs.append(f"*.x\u01c1{owner}\u01c1{name}__mutmut_*")
        else:
            globs += [f"*.x_{name}__mutmut_*", f"*\u01c1{name}__mutmut_*"]
    return globs


def picked(name: str, functions: tuple[str, ...]) -> bool:
    """Whether mutant ``name`` is of one of ``functions`` (all when none are named)."""
    return not functions or any(fnmatch.fnmatchcase(name, g) for g in name_globs(functions))


def run(module: Module, functions: tuple[str, ...] = ()) -> dict[str, int]:
    """Run mutmut over ``module`` (only ``functions``' mutants if named) with one worker;
    the count of each verdict."""
    tree = scratch_tree(module)
    env = dict(os.environ)
    shared = REPO.parent / "shared"
    if "SLUIS_SHARED" not in env and shared.is_dir():
        env["SLUIS_SHARED"] = str(shared)  # the scratch copy has no ../shared beside it
    mutmut = Path(sys.executable).with_name("mutmut")
    command = [str(mutmut), "run", "--max-children", "1", *name_globs(functions)]
    subprocess.run(command, cwd=tree, env=env, check=False)
    return verdicts(tree, functions)


def tree_of(module: Module) -> Path:
    """Where ``module``'s scratch copy is."""
    return SCRATCH / module.name.replace("/", "_").replace(" ", "_").replace("+", "_")


def again(module: Module, functions: tuple[str, ...] = ()) -> dict[str, int]:
    """Run the last run's survivors, timeouts and unreached mutants again, against today's
    tests (and today's time limit)."""
    tree = tree_of(module)
    for copy in (tree / "tests", tree / "mutants" / "tests"):
        shutil.copytree(REPO / "tests", copy, ignore=COPY_IGNORE, dirs_exist_ok=True)
        with (copy / "conftest.py").open("a", encoding="utf-8") as handle:
            handle.write(HYPOTHESIS_PROFILE)
    # Today's code of the mutated files (a fix a new test asked for): copied with a new
    # time, mutmut makes that file's mutants again and forgets the verdicts of the functions
    # that changed ("not checked", run below); the others keep theirs.
    mutated = {source for pattern in module.mutate for source in REPO.glob(pattern)}
    for relative, (text, _) in prepared(module).items():
        copy = tree / relative
        if copy.read_text(encoding="utf-8") != text:
            copy.write_text(text, encoding="utf-8")
    # Today's code of the other files too (a fix elsewhere that a new test needs), in the
    # tree and in mutmut's own copy, which holds them unmutated.
    for package in PACKAGES:
        for source in (REPO / package).rglob("*.py"):
            if source in mutated:
                continue
            for copy in (
                tree / source.relative_to(REPO),
                tree / "mutants" / source.relative_to(REPO),
            ):
                if copy.exists() and copy.read_bytes() != source.read_bytes():
                    shutil.copyfile(source, copy)
    # Today's test selection (a new test file must be run too), and which tests reach which
    # function collected again: mutmut runs a mutant only against the tests its stats name.
    write_settings(tree / "pyproject.toml", module)
    (tree / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)
    # The survivors, the mutants no test reached then (a new test may reach them now), and
    # the timeouts: under load a mutant whose tests pay a slow set-up times out and counts as
    # killed (in certs/store+identity 25 of 58 timeouts survived when run again).
    # Then the mutants of the functions whose code changed: mutmut makes them in the first
    # pass, "not checked" until a second one runs them.
    again_verdicts = ("survived", "no tests", "timeout")
    mutmut = Path(sys.executable).with_name("mutmut")
    for verdicts_run in (again_verdicts, ("not checked",)):
        survivors = [
            name
            for name, verdict in results(tree)
            if verdict in verdicts_run and picked(name, functions)
        ]
        if survivors:
            subprocess.run(
                [str(mutmut), "run", "--max-children", "1", *survivors], cwd=tree, check=False
            )
    return verdicts(tree, functions)


def results(tree: Path) -> list[tuple[str, str]]:
    """Each mutant's name and verdict, from ``mutmut results --all true``."""
    mutmut = Path(sys.executable).with_name("mutmut")
    done = subprocess.run(
        [str(mutmut), "results", "--all", "true"],
        cwd=tree,
        capture_output=True,
        text=True,
        check=False,
    )
    out = []
    for line in done.stdout.splitlines():
        name, _, verdict = line.strip().rpartition(": ")
        if name:
            out.append((name, verdict.strip()))
    return out


def verdicts(tree: Path, functions: tuple[str, ...] = ()) -> dict[str, int]:
    """Counts per verdict (of ``functions``' mutants if named)."""
    counts: dict[str, int] = {}
    for name, verdict in results(tree):
        if picked(name, functions):
            counts[verdict] = counts.get(verdict, 0) + 1
    return counts


def score(counts: dict[str, int]) -> str:
    """Killed (and timed out) over every mutant the tests reach."""
    killed = counts.get("killed", 0) + counts.get("timeout", 0)
    reached = killed + counts.get("survived", 0)
    return f"{100 * killed / reached:.1f}%" if reached else "-"


def table(results: dict[str, dict[str, int]]) -> str:
    """The report's table (markdown), one row per module."""
    rows = [
        "| module | killed | survived | timeout | no tests | score |",
        "|---|---|---|---|---|---|",
    ]
    for name, counts in results.items():
        rows.append(
            f"| {name} | {counts.get('killed', 0)} | {counts.get('survived', 0)} | "
            f"{counts.get('timeout', 0)} | {counts.get('no tests', 0)} | {score(counts)} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.mutate", description=__doc__)
    parser.add_argument("modules", nargs="*", help="module names (default: all)")
    parser.add_argument("--list", action="store_true", help="print the modules and exit")
    parser.add_argument("--survivors", action="store_true", help="show the last run's survivors")
    parser.add_argument(
        "--again", action="store_true", help="rerun the last run's survivors with today's tests"
    )
    parser.add_argument(
        "--functions",
        default="",
        help="only these functions' mutants: name or Class.name, comma-separated",
    )
    parser.add_argument(
        "--decorated",
        action="store_true",
        help="only the mutants of decorated functions (those mutmut alone would skip)",
    )
    args = parser.parse_args(argv)
    functions = tuple(f for f in args.functions.split(",") if f)
    if args.list:
        for module in MODULES:
            print(f"{module.name}: {' '.join(module.mutate)} <- {' '.join(module.tests)}")
        return 0
    chosen = [m for m in MODULES if not args.modules or m.name in args.modules]
    unknown = set(args.modules) - {m.name for m in MODULES}
    if unknown:
        print(f"unknown module: {', '.join(sorted(unknown))} (see --list)", file=sys.stderr)
        return 2
    if args.survivors:
        mutmut = Path(sys.executable).with_name("mutmut")
        for module in chosen:
            subprocess.run([str(mutmut), "results"], cwd=tree_of(module), check=False)
        return 0
    step = again if args.again else run
    counts: dict[str, dict[str, int]] = {}
    for module in chosen:
        picked_functions = functions
        if args.decorated:
            picked_functions = functions + decorated_functions(module)
            if not picked_functions:
                print(f"{module.name}: no decorated functions")
                continue
        counts[module.name] = step(module, picked_functions)
    print(table(counts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
