"""The DSP catalog: the Sluis catalog's datasets, each with its policy as an ``odrl:Offer``.

``filter`` in a CatalogRequestMessage is accepted and ignored (the spec leaves its syntax to
the provider): every participant with a certificate sees every active dataset, as on
``/v1/catalog``. A dataset whose policy cannot be shown faithfully as a DSP Offer (or no
longer loads) is left out and logged, never shown weaker than it is.
"""

from __future__ import annotations

import logging
from typing import Any

from gateway.datasets.schemas import Dataset
from gateway.dsp.messages import DSP_PATH, HTTP_PULL, context
from gateway.dsp.offers import OfferError, offer
from gateway.errors import GatewayError, NotFound
from gateway.services import Services
from policies import SLUIS_PROFILE

log = logging.getLogger("sluis.dsp")


def service_id(services: Services) -> str:
    """The DSP DataService: this gateway's DSP base URL."""
    return services.settings.public_url + DSP_PATH


def participant_id(services: Services) -> str:
    """Who this gateway is in a dataspace: its iSHARE party id, else its public URL."""
    return services.settings.ishare_party_id or services.settings.public_url


async def dataset_entry(services: Services, dataset: Dataset) -> dict[str, Any]:
    """One DSP Dataset; OfferError (or a GatewayError) when its Offer cannot be made."""
    policy = await services.datasets.policy(dataset.policy_hash)
    return {
        "@id": dataset.id,
        "@type": "Dataset",
        "dct:identifier": dataset.id,
        "dct:title": dataset.title,
        "dct:description": dataset.description,
        "dct:publisher": {"@id": f"urn:sluis:participant:{dataset.provider_id}"},
        "hasPolicy": [offer(policy, dataset.id, dataset.policy_hash, SLUIS_PROFILE.iri)],
        "distribution": [
            {"@type": "Distribution", "format": HTTP_PULL, "accessService": service_id(services)}
        ],
    }


async def catalog(services: Services) -> dict[str, Any]:
    """The root Catalog."""
    entries = []
    for dataset in await services.datasets.list():
        try:
            entries.append(await dataset_entry(services, dataset))
        except (OfferError, GatewayError) as exc:
            log.warning("dsp catalog: dataset %s left out: %s", dataset.id, exc)
    body: dict[str, Any] = {
        "@context": context(),
        "@id": services.settings.public_url + DSP_PATH + "/catalog",
        "@type": "Catalog",
        "participantId": participant_id(services),
        "service": [
            {"@id": service_id(services), "@type": "DataService",
             "endpointURL": service_id(services)}
        ],
    }  # fmt: skip
    if entries:  # the schema wants at least one, or no member at all
        body["dataset"] = entries
    return body


async def dataset(services: Services, dataset_id: str) -> dict[str, Any]:
    """One Dataset with its context; NotFound when unknown or not offerable."""
    found = await services.datasets.get(dataset_id)
    try:
        entry = await dataset_entry(services, found)
    except OfferError as exc:
        log.warning("dsp catalog: dataset %s has no DSP Offer: %s", dataset_id, exc)
        raise NotFound("dataset-not-found", f"no dataset {dataset_id}") from exc
    return {"@context": context(), **entry}
