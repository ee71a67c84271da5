"""Errors of node-to-node traffic, each with a stable code (docs/contract.md, Additions)."""

from __future__ import annotations

from common.errors import AuthenticationFailed, Conflict, Forbidden, InvalidInput, Unavailable


class NodeNotInitialized(Conflict):
    code = "node_not_initialized"


class PeerInvalid(InvalidInput):
    """A peer definition (name, URL, JWK, relation, region) that cannot be used."""

    code = "node_peer_invalid"


class NodeUnknown(AuthenticationFailed):
    """A node assertion from a node that is not a peer of this one."""

    code = "node_unknown"


class NodeAssertionInvalid(AuthenticationFailed):
    """A node assertion that does not verify (signature, typ, aud, dates, body hash)."""

    code = "node_assertion_invalid"


class NodeAssertionReplayed(AuthenticationFailed):
    code = "node_assertion_replayed"


class NodeSuspended(Forbidden):
    """A suspended child (有进有出, AH 11; JS 4): refused everything."""

    code = "node_suspended"


class RegionNotServed(Forbidden):
    """The enterprise's division code is not served by the node asked."""

    code = "node_region_not_served"


class RelayRefused(Forbidden):
    """A call that cannot be relayed (not a relayable call, or a second hop)."""

    code = "node_relay_refused"


class MessageInvalid(InvalidInput):
    code = "node_message_invalid"


class PeerUnreachable(Unavailable):
    """The holding node did not answer; nothing was served."""

    code = "node_unreachable"
