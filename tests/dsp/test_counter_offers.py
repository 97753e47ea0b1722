"""The consumer side's reading of a provider's counter-offer (pure): the same Offer is
accepted whatever the order of its rules; another id, dataset or rule is a reason to end."""

from __future__ import annotations

from typing import Any

from gateway.dsp.counter_offers import difference

READ = {"action": "odrl:read", "constraint": [
    {"leftOperand": "odrl:purpose", "operator": "odrl:isAnyOf",
     "rightOperand": {"@id": "https://w3id.org/dpv#AcademicResearch"}},
    {"leftOperand": "odrl:count", "operator": "odrl:lteq",
     "rightOperand": {"@value": "6", "@type": "xsd:integer"}},
]}  # fmt: skip
USE = {"action": "odrl:use"}
ASKED: dict[str, Any] = {"@id": "urn:sluis:offer:machines:sha256:ab", "@type": "Offer",
                         "target": "machines", "permission": [READ, USE]}  # fmt: skip


def test_the_same_offer_is_accepted_whatever_the_order_of_its_rules() -> None:
    assert difference(ASKED, ASKED, "machines") is None
    reordered = {**ASKED, "permission": [USE, {**READ}], "assigner": "urn:sluis:participant:P"}
    assert difference(ASKED, reordered, "machines") is None
    untargeted = {k: v for k, v in ASKED.items() if k != "target"}
    assert difference(ASKED, untargeted, "machines") is None


def test_any_other_offer_is_a_reason_to_end() -> None:
    looser = {"action": "odrl:read", "constraint": READ["constraint"][:1]}
    assert difference(ASKED, {**ASKED, "@id": "urn:other"}, "machines") == (
        "the counter-offer names another offer"
    )
    assert difference(ASKED, {**ASKED, "target": "other"}, "machines") == (
        "the counter-offer is for another dataset"
    )
    assert difference(ASKED, {**ASKED, "permission": [looser, USE]}, "machines") == (
        "the counter-offer changes the permission rules"
    )
    assert difference(ASKED, {**ASKED, "permission": READ}, "machines") == (
        "the counter-offer changes the permission rules"
    )
    duty = {**ASKED, "obligation": [{"action": "odrl:delete"}]}
    assert difference(ASKED, duty, "machines") == "the counter-offer changes the obligation rules"
    assert difference(None, ASKED, "machines") == "the offer asked for is not known here"
