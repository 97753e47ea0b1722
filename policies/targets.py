"""Whether a policy can govern an asset at all: checked when a dataset is registered.

A rule applies to a request only when its target is the requested asset or a collection the
state places it in (``policies.rules``). A policy registered for an asset that no rule can
reach is a typo that fails silently: every request denied, or worse, a prohibition or
obligation that never restricts the dataset it was written for. ``check_targets`` refuses:

* a policy with permissions none of which can reach the asset;
* a prohibition or a top-level obligation that names targets, none of which is the asset.

A rule without a target applies to any asset. A collection reaches the asset only when
``state`` (the facts the gateway keeps about assets) places the asset in it.
"""

from __future__ import annotations

from policies.errors import PolicyStructureError
from policies.model import Policy, Rule
from policies.request import State


def check_targets(policy: Policy, asset: str, state: State | None = None) -> Policy:
    """``policy`` if it can govern ``asset``; else a ``PolicyStructureError`` (target_mismatch)."""
    facts = state or State()
    problems = unreachable(policy, asset, facts)
    if problems:
        raise PolicyStructureError(problems[0], code="target_mismatch")
    return policy


def unreachable(policy: Policy, asset: str, state: State) -> list[str]:
    """Why ``policy`` cannot govern ``asset``, one line per problem (empty: it can)."""
    found: list[str] = []
    if policy.permissions and not any(_reaches(r, asset, state) for r in policy.permissions):
        elsewhere = ", ".join(sorted({t.uid for r in policy.permissions for t in r.targets}))
        found.append(f"no permission targets {asset} (they target {elsewhere})")
    for rule in policy.prohibitions + policy.obligations:
        if not _reaches(rule, asset, state):
            named = ", ".join(t.uid for t in rule.targets)
            found.append(f"{rule.kind.value} {rule.uid} targets {named}, never {asset}")
    return found


def _reaches(rule: Rule, asset: str, state: State) -> bool:
    if not rule.targets:
        return True
    return any(
        t.uid == asset or (t.collection and state.within(asset, t.uid)) for t in rule.targets
    )
