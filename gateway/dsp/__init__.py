"""The Dataspace Protocol 2025-1 (Eclipse DSP) HTTPS binding: another surface, same core.

The DSP paths live under :data:`gateway.dsp.messages.DSP_PATH` (``/dsp``); the version
object at ``/.well-known/dspace-version`` points there. The catalog is the Sluis catalog, each
dataset's usage policy shown as an ``odrl:Offer`` generated from the stored policy
(:mod:`gateway.dsp.offers`, pure). No second policy engine and no second audit path: what
DSP decides is decided by the agreements and exchange services. See docs/dataspace.md.
"""
