"""Stored policies as DSP Offers (pure): every example policy converts schema-valid."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.datasets.service import FORMATS, parse
from gateway.dsp.offers import OfferError, offer, offer_id, parse_offer_id
from policies import SLUIS_PROFILE, Action, Policy, Rule, RuleKind, policy_hash
from policies.vocab import ODRL
from tests.support.dsp import validate_definition

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "policies"
POLICIES = [p for p in sorted(EXAMPLES.iterdir()) if p.suffix in FORMATS and "_test" not in p.stem]


@pytest.mark.parametrize("path", POLICIES, ids=lambda p: p.name)
def test_example_policies_are_schema_valid_offers(path: Path) -> None:
    policy = parse(path.read_text(encoding="utf-8"), FORMATS[path.suffix])
    made = offer(policy, "x", policy_hash(policy), SLUIS_PROFILE.iri)
    validate_definition(made, "negotiation/contract-schema.json", "Offer")
    assert "target" not in made  # a catalog Offer names no target: the dataset is it


def test_a_rule_the_offer_cannot_carry_is_refused_not_weakened() -> None:
    two_actions = Rule(RuleKind.PERMISSION, actions=(Action(f"{ODRL}read"), Action(f"{ODRL}use")))
    with pytest.raises(OfferError):
        offer(Policy("urn:p", "Offer", permissions=(two_actions,)), "x", "h", "p")
    with pytest.raises(OfferError):  # obligations only: no permission, no prohibition
        offer(Policy("urn:p", "Offer"), "x", "h", "p")


def test_offer_ids_round_trip() -> None:
    assert parse_offer_id(offer_id("machines", "sha256:ab")) == ("machines", "sha256:ab")
    assert parse_offer_id("urn:other:machines") is None
    assert parse_offer_id("urn:sluis:offer:machines") is None


def test_a_refined_duty_keeps_its_refinement_under_the_sluis_namespace() -> None:
    policy = parse((EXAMPLES / "machine_sensors.yaml").read_text(encoding="utf-8"), "yaml")
    made = offer(policy, "x", "h", SLUIS_PROFILE.iri)
    delete = next(d for d in made["permission"][0]["duty"] if d["action"] == "odrl:delete")
    assert delete["https://w3id.org/sluis/odrl#actionRefinement"] == [
        {"leftOperand": "odrl:elapsedTime", "operator": "lteq", "rightOperand": "P1Y"}
    ]
