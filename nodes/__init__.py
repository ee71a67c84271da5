"""Nodes: city, province and national gateways linked into one network (issue 18).

A node is a whole gateway. ``nodes.core`` is the pure part (identity, peers, routing by
the USCC's division code, the node assertion and message envelope rules); ``nodes.store``
persists peers, the durable outbox and the inbox; the HTTP side lives in
``gateway.relay`` (the one relay hook) and ``gateway.api.nodes`` (what peers call).
"""
