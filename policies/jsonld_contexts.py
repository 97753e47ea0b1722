"""JSON-LD contexts the engine knows by URL, embedded so that parsing never touches the network.

Any other remote ``@context`` is refused (``jsonld_remote_context``): the engine does no IO.
The ODRL context below is a faithful subset of https://www.w3.org/ns/odrl.jsonld (every
term the engine reads, with the same ``@type`` coercions).
"""

from __future__ import annotations

from typing import Any, Final

from policies.errors import PolicySyntaxError
from policies.vocab import ACTION_NAMES, ODRL, OPERATOR_NAMES, SOTW

_ID = "@id"
_ACTIONS: Final = list(ACTION_NAMES)  # every action of the ODRL hierarchy in vocab
_LEFT_OPERANDS: Final = [
    "absolutePosition",
    "absoluteSpatialPosition",
    "absoluteTemporalPosition",
    "absoluteSize",
    "count",
    "dateTime",
    "delayPeriod",
    "deliveryChannel",
    "elapsedTime",
    "event",
    "fileFormat",
    "industry",
    "language",
    "media",
    "meteredTime",
    "payAmount",
    "percentage",
    "product",
    "purpose",
    "recipient",
    "relativePosition",
    "relativeSpatialPosition",
    "relativeTemporalPosition",
    "relativeSize",
    "resolution",
    "spatial",
    "spatialCoordinates",
    "systemDevice",
    "timeInterval",
    "unitOfCount",
    "version",
    "virtualLocation",
]
# The constraint operators, plus the conflict strategies that share the odrl: namespace.
_OPERATORS: Final = [*OPERATOR_NAMES, "perm", "prohibit", "invalid"]
_CLASSES: Final = [
    "Policy",
    "Set",
    "Offer",
    "Agreement",
    "Privacy",
    "Ticket",
    "Assertion",
    "Request",
    "Rule",
    "Permission",
    "Prohibition",
    "Duty",
    "Constraint",
    "LogicalConstraint",
    "Action",
    "Asset",
    "AssetCollection",
    "Party",
    "PartyCollection",
]
_IDS: Final = [
    "target",
    "assignee",
    "assigner",
    "output",
    "partOf",
    "source",
    "profile",
    "inheritFrom",
    "permission",
    "prohibition",
    "obligation",
    "duty",
    "remedy",
    "consequence",
    "constraint",
    "refinement",
    "includedIn",
    "implies",
    "rightOperandReference",
    "dataType",
    "or",
    "xone",
    "and",
    "hasPolicy",
    "informedParty",
    "compensatedParty",
    "attributedParty",
    "consentingParty",
    "trackingParty",
]
_VOCAB: Final = ("action", "operator", "leftOperand", "conflict", "function")

ODRL_CONTEXT: Final[dict[str, Any]] = {
    "odrl": ODRL,
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "dct": "http://purl.org/dc/terms/",
    "skos": "http://www.w3.org/2004/02/skos/core#",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "uid": "@id",
    "type": "@type",
    **{t: f"odrl:{t}" for t in _ACTIONS + _LEFT_OPERANDS + _OPERATORS + _CLASSES},
    **{t: {_ID: f"odrl:{t}", "@type": "@id"} for t in _IDS},
    **{t: {_ID: f"odrl:{t}", "@type": "@vocab"} for t in _VOCAB},
    "andSequence": {_ID: "odrl:andSequence", "@type": "@id", "@container": "@list"},
    "rightOperand": "odrl:rightOperand",
    "unit": "odrl:unit",
    "status": "odrl:status",
}

EVALUATION_REQUEST_CONTEXT: Final[dict[str, Any]] = {
    "sotw": SOTW,
    "EvaluationRequest": SOTW + "EvaluationRequest",
    "evaluatedAction": {_ID: SOTW + "evaluatedAction", "@type": "@id"},
    "evaluatedParty": {_ID: SOTW + "evaluatedParty", "@type": "@id"},
    "evaluatedTarget": {_ID: SOTW + "evaluatedTarget", "@type": "@id"},
    "requestParameters": {_ID: SOTW + "requestParameter"},
    "RequestParameter": "sotw:RequestParameter",
    "value": {_ID: SOTW + "value"},
    "describesFeature": {_ID: SOTW + "describesFeature", "@type": "@id"},
}

STOW_CONTEXT: Final[dict[str, Any]] = {
    "sotw": SOTW,
    "SotW": "sotw:SotW",
    "context": {_ID: "sotw:context"},
    "conditionId": {_ID: "sotw:conditionID", "@type": "@id"},
}

_FS = "https://raw.githubusercontent.com/w3c/odrl/refs/heads/master/formal-semantics/ontology/"
KNOWN_CONTEXTS: Final[dict[str, dict[str, Any]]] = {
    "http://www.w3.org/ns/odrl.jsonld": ODRL_CONTEXT,
    "https://www.w3.org/ns/odrl.jsonld": ODRL_CONTEXT,
    _FS + "evaluation_request.json": EVALUATION_REQUEST_CONTEXT,
    _FS + "stow.json": STOW_CONTEXT,
}


def inline_contexts(node: Any) -> Any:
    """``node`` with every known remote ``@context`` URL replaced by its embedded copy."""
    if isinstance(node, list):
        return [inline_contexts(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: inline_contexts(value) for key, value in node.items() if key != "@context"}
    if "@context" in node:
        out["@context"] = _resolve(node["@context"])
    return out


def _resolve(context: Any) -> Any:
    if isinstance(context, str):
        if context not in KNOWN_CONTEXTS:
            raise PolicySyntaxError(
                f"remote JSON-LD context {context} is not embedded", code="jsonld_remote_context"
            )
        return KNOWN_CONTEXTS[context]
    if isinstance(context, list):
        return [_resolve(item) for item in context]
    if isinstance(context, dict):
        return inline_contexts(context)
    return context
